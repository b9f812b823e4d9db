//! Moving bytes between chains and memory outside them: uiomove(9),
//! `m_uiotombuf`, `m_mbuftouio`, `m_devget`, `m_append`.

use super::*;

/// `uiomove(cp, n, uio)` for kernel (and, in this process, user) addresses.
/// Safety: `u` must be a valid uio whose iovecs describe accessible memory,
/// and `cp` must be valid for `n` bytes.
pub(super) unsafe fn uiomove_inner(cp: *mut u8, n: c_int, u: *mut uio) -> c_int {
    let mut n = n.max(0) as usize;
    let mut cp = cp;
    while n > 0 && (*u).uio_resid > 0 && (*u).uio_iovcnt > 0 {
        let iov: *mut iovec = (*u).uio_iov;
        let cnt = (*iov).iov_len.min(n);
        if cnt == 0 {
            (*u).uio_iov = iov.add(1);
            (*u).uio_iovcnt -= 1;
            continue;
        }
        if (*u).uio_segflg != UIO_NOCOPY {
            if (*u).uio_rw == UIO_READ {
                ptr::copy(cp, (*iov).iov_base.cast::<u8>(), cnt);
            } else {
                ptr::copy((*iov).iov_base.cast::<u8>(), cp, cnt);
            }
        }
        (*iov).iov_base = (*iov).iov_base.cast::<u8>().add(cnt).cast();
        (*iov).iov_len -= cnt;
        (*u).uio_resid -= cnt as isize;
        (*u).uio_offset += cnt as i64;
        cp = cp.add(cnt);
        n -= cnt;
    }
    0
}

pub(super) fn uiotombuf(
    u: *mut uio,
    w: How,
    len0: c_int,
    lspace: c_int,
    fl: c_int,
    c: Caller,
) -> *mut mbuf {
    let fl = fl as u32;
    if fl & M_EXTPG != 0 {
        violation(format!(
            "m_uiotombuf(M_EXTPG) from {c}: unmapped mbufs are not supported"
        ));
        return null_mut();
    }
    if lspace != 0 && fl & M_PKTHDR == 0 {
        violation(format!(
            "m_uiotombuf from {c}: leading space {lspace} without M_PKTHDR"
        ));
    }
    // SAFETY: the caller passes a valid uio; mbufs are fresh and sized by m_getm2.
    unsafe {
        let resid = (*u).uio_resid;
        let total: isize = if len0 > 0 {
            resid.min(len0 as isize)
        } else {
            resid
        };
        if lspace.max(0) as usize >= MHLEN {
            return null_mut();
        }
        probe::copy("m_uiotombuf", total.max(0) as usize, c);
        let m = getm2(
            null_mut(),
            (total + lspace as isize).max(1) as c_int,
            w,
            MT_DATA,
            fl,
            c,
        );
        if m.is_null() {
            return m;
        }
        set_data(m, data(m).add(lspace.max(0) as usize));
        let mut progress: isize = 0;
        let mut mb = m;
        while !mb.is_null() {
            let l = trailingspace(mb).min(total - progress).max(0);
            let err = uiomove_inner(data(mb), l as c_int, u);
            if err != 0 {
                freem(m, c);
                return null_mut();
            }
            set_len(mb, l as i32);
            progress += l;
            if fl & M_PKTHDR != 0 {
                set_ph_len(m, ph_len(m) + l as i32);
                let extra = if flags(mb) & M_EXT != 0 {
                    ext_size(mb)
                } else {
                    0
                };
                (*ph(m)).__bindgen_anon_4.memlen += MSIZE as u32 + extra;
            }
            mb = next(mb);
        }
        m
    }
}

pub(super) fn mbuftouio(u: *mut uio, m: *mut mbuf, len0: c_int, c: Caller) -> c_int {
    // SAFETY: the caller passes a valid uio; each mbuf is checked live.
    unsafe {
        let resid = (*u).uio_resid;
        let total: isize = if len0 > 0 {
            resid.min(len0 as isize)
        } else {
            resid
        };
        let mut progress: isize = 0;
        let mut p = m;
        while !p.is_null() {
            if !check_live(p, "m_mbuftouio", c, Use::Access) {
                return libc::EFAULT;
            }
            let l = (len(p) as isize).min(total - progress).max(0);
            if !seg_ok(p, 0, l as usize, "m_mbuftouio", c) {
                return libc::EFAULT;
            }
            let err = uiomove_inner(data(p), l as c_int, u);
            if err != 0 {
                return err;
            }
            progress += l;
            p = next(p);
        }
        probe::copy("m_mbuftouio", progress.max(0) as usize, c);
    }
    0
}

/// The `copy` callback of `m_devget`.
pub type DevCopy = Option<unsafe extern "C" fn(*mut c_char, caddr_t, c_uint)>;

pub(super) fn devget(
    buf: *mut c_char,
    totlen: c_int,
    off: c_int,
    ifp: *mut ifnet,
    copy: DevCopy,
    c: Caller,
) -> *mut mbuf {
    if off < 0 || off as usize > MHLEN {
        return null_mut();
    }
    let mut top: *mut mbuf = null_mut();
    let mut tail: *mut mbuf = null_mut();
    let mut tot = totlen.max(0) as usize;
    probe::copy("m_devget", tot, c);
    let mut off = off as usize;
    let mut buf = buf;
    // SAFETY: fresh mbufs; `buf` holds `totlen` readable bytes (caller contract).
    unsafe {
        while tot > 0 {
            let (m, mut room);
            if top.is_null() {
                if tot + off >= MINCLSIZE {
                    m = zalloc_pack(How::NoWait, MT_DATA, M_PKTHDR, c);
                    room = MCLBYTES;
                } else {
                    m = zalloc_mbuf(How::NoWait, MT_DATA, M_PKTHDR, c);
                    room = MHLEN;
                    if !m.is_null() && tot + off + MAX_LINKHDR as usize <= MHLEN {
                        set_data(m, data(m).add(MAX_LINKHDR as usize));
                        room -= MAX_LINKHDR as usize;
                    }
                }
                if m.is_null() {
                    return null_mut();
                }
                (*ph(m)).__bindgen_anon_1.rcvif = ifp;
                set_ph_len(m, tot as i32);
            } else {
                if tot + off >= MINCLSIZE {
                    m = zalloc_pack(How::NoWait, MT_DATA, 0, c);
                    room = MCLBYTES;
                } else {
                    m = zalloc_mbuf(How::NoWait, MT_DATA, 0, c);
                    room = MLEN;
                }
                if m.is_null() {
                    freem(top, c);
                    return null_mut();
                }
            }
            if off != 0 {
                set_data(m, data(m).add(off));
                room -= off;
                off = 0;
            }
            let l = tot.min(room);
            set_len(m, l as i32);
            match copy {
                Some(f) => f(buf, data(m).cast(), l as c_uint),
                None => ptr::copy_nonoverlapping(buf.cast::<u8>(), data(m), l),
            }
            buf = buf.add(l);
            if tail.is_null() {
                top = m;
            } else {
                set_next(tail, m);
            }
            tail = m;
            tot -= l;
        }
    }
    top
}

pub(super) fn append(m0: *mut mbuf, l: c_int, cp: *const u8, c: Caller) -> c_int {
    let ch = chain(m0, "m_append", c);
    let Some(&last) = ch.last() else { return 0 };
    let mut m = last;
    let mut remainder = l.max(0) as usize;
    probe::copy("m_append", remainder, c);
    let mut cp = cp;
    // SAFETY: writes are bounded by the trailing space / fresh mbuf size.
    unsafe {
        let space = trailingspace(m).max(0) as usize;
        if space > 0 {
            let s = space.min(remainder);
            ptr::copy(cp, data(m).add(len(m) as usize), s);
            set_len(m, len(m) + s as i32);
            cp = cp.add(s);
            remainder -= s;
        }
        while remainder > 0 {
            let n = zalloc_mbuf(How::NoWait, mtype(m), 0, c);
            if n.is_null() {
                break;
            }
            let s = MLEN.min(remainder);
            set_len(n, s as i32);
            ptr::copy(cp, data(n), s);
            cp = cp.add(s);
            remainder -= s;
            set_next(m, n);
            m = n;
        }
        if flags(m0) & M_PKTHDR != 0 {
            set_ph_len(m0, ph_len(m0) + (l.max(0) as usize - remainder) as i32);
        }
    }
    c_int::from(remainder == 0)
}
