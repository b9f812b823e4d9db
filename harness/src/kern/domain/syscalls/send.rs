//! Sending: `sendto`/`sendmsg` and the generic send path (`sosend_generic`
//! semantics: space, atomicity, blocking).

use super::*;

/// `sendto(fd, data, addr, flags)`; returns the number of bytes sent.
pub fn sendto(fd: Fd, data: &[u8], addr: Option<&[u8]>, flags: i32) -> Result<usize, Errno> {
    sendmsg(fd, data, addr, None, flags)
}

/// `sendmsg(fd, {data, addr, control}, flags)`: `control` is the raw
/// `msg_control` bytes (cmsg headers included).
pub fn sendmsg(
    fd: Fd,
    data: &[u8],
    addr: Option<&[u8]>,
    control: Option<&[u8]>,
    flags: i32,
) -> Result<usize, Errno> {
    let so = so_of(fd)?;
    let to = match addr {
        Some(a) => getsockaddr(a)?,
        None => null_mut(),
    };
    let mut ctl: *mut mbuf = null_mut();
    if let Some(c) = control {
        // sendit(): shorter than a cmsghdr → EINVAL; sockargs(): above
        // MCLBYTES → EMSGSIZE.
        if c.len() < CMSGHDR_SIZE || c.len() > kmbuf::MCLBYTES {
            free_sockaddr(to, "sendmsg", so);
            return Err(if c.len() < CMSGHDR_SIZE {
                EINVAL
            } else {
                EMSGSIZE
            });
        }
        // SAFETY: sockargs(): one mbuf (or cluster) of the control length.
        unsafe {
            ctl = kmbuf::abi::m_get2(c.len() as c_int, M_WAITOK, MT_CONTROL as c_short, 0);
            ptr::copy_nonoverlapping(c.as_ptr(), kmbuf::fields::data(ctl), c.len());
            set_len(ctl, c.len() as i32);
        }
    }
    let td = curthread();
    let mut iov = iovec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    let mut u = uio {
        uio_iov: &mut iov,
        uio_iovcnt: 1,
        uio_offset: 0,
        uio_resid: data.len() as isize,
        uio_segflg: fbsd_sys::UIO_USERSPACE,
        uio_rw: fbsd_sys::UIO_WRITE,
        uio_td: td,
    };
    let Some(pr) = proto_of(so) else {
        free_sockaddr(to, "sendmsg", so);
        if !ctl.is_null() {
            kmbuf::free_chain(ctl);
        }
        return Err(EBADF);
    };
    // SAFETY: the protocol's sosend (normally the installed sosend_generic).
    let err = match unsafe { (*pr).pr_sosend } {
        // SAFETY: as above; `u` and `to` stay valid during the call.
        Some(f) => with_so_vnet(so, || unsafe {
            f(so, to, &mut u, null_mut(), ctl, flags, td)
        }),
        None => {
            if !ctl.is_null() {
                kmbuf::free_chain(ctl);
            }
            EOPNOTSUPP
        }
    };
    free_sockaddr(to, "pr_send", so);
    let sent = data.len() - u.uio_resid.max(0) as usize;
    match err {
        0 => Ok(data.len()),
        e if (e == EINTR || e == ERESTART || e == EWOULDBLOCK) && sent > 0 && sent < data.len() => {
            Ok(sent)
        }
        e => Err(e),
    }
}

/// `pr_send(so, flags, m, addr, control, td)` with the H4 checks: the
/// protocol owns `m` and `control` on every return — freed, or passed on.
pub(super) fn call_pr_send(
    so: *mut socket,
    pr: *mut protosw,
    flags: c_int,
    m: *mut mbuf,
    addr: *mut sockaddr,
    control: *mut mbuf,
    td: *mut thread,
) -> c_int {
    let mut ptrs = Vec::new();
    chain_ptrs(m, &mut ptrs);
    chain_ptrs(control, &mut ptrs);
    // SAFETY: the protocol's send method (or the installed default).
    let Some(f) = (unsafe { (*pr).pr_send }) else {
        kmbuf::free_chain(m);
        kmbuf::free_chain(control);
        return EOPNOTSUPP;
    };
    // SAFETY: as above. A freed `addr` is reported by the syscall layer.
    let err = call_proto("pr_send", so, || unsafe {
        f(so, flags, m, addr, control, td)
    });
    let (fam, ty, proto) = with(|s| {
        s.sockets
            .get(&(so as usize))
            .map_or((0, 0, 0), |k| (k.family, k.ty, k.protocol))
    });
    let what = format!(
        "pr_send of protocol ({fam}, {ty}, {proto}) on socket #{}",
        serial_of(so)
    );
    let live: Vec<usize> = ptrs
        .into_iter()
        .filter(|&p| kmbuf::is_live(p as *const mbuf))
        .collect();
    if live.is_empty() {
        return err;
    }
    if flags & PRUS_NOTREADY != 0 {
        return err;
    }
    if err != 0 {
        let held = buffered_mbufs();
        let kept: Vec<usize> = live.into_iter().filter(|p| !held.contains(p)).collect();
        if !kept.is_empty() {
            violation(format!(
                "{what}: returned error {err} without freeing {} of the mbuf(s) it was given (pr_send must \
                 free m and control on every return; H4): {kept:x?}",
                kept.len()
            ));
        }
    } else {
        add_pending(live, what);
    }
    err
}

/// Default `pr_sosend`: FreeBSD's `sosend_generic` checks, then `pr_send`.
/// `top` and `control` are consumed on every path.
pub(super) unsafe extern "C" fn sosend_generic_impl(
    so: *mut socket,
    addr: *mut sockaddr,
    uio: *mut uio,
    top: *mut mbuf,
    control: *mut mbuf,
    flags: c_int,
    td: *mut thread,
) -> c_int {
    let mut top = top;
    let mut control = control;
    let free_both = |t: *mut mbuf, c: *mut mbuf| {
        if !t.is_null() {
            kmbuf::free_chain(t);
        }
        if !c.is_null() {
            kmbuf::free_chain(c);
        }
    };
    if !check_socket(so, "sosend", Caller::here()) {
        return EBADF;
    }
    let Some(pr) = proto_of(so) else {
        free_both(top, control);
        return EBADF;
    };
    let prf = pr_flags(so);
    // SAFETY: `uio`/`top` come from the caller (sosend contract).
    let resid: isize = unsafe {
        if !uio.is_null() {
            (*uio).uio_resid
        } else if !top.is_null() && kmbuf::fields::flags(top) & fbsd_sys::M_PKTHDR != 0 {
            ph_len(top) as isize
        } else {
            let mut n = 0isize;
            let mut p = top;
            while !p.is_null() {
                n += len(p) as isize;
                p = next(p);
            }
            n
        }
    };
    // SAFETY: `so` is live.
    let ty = i32::from(unsafe { (*so).so_type });
    if resid < 0 || (ty == fbsd_sys::SOCK_STREAM as i32 && flags & MSG_EOR != 0) {
        free_both(top, control);
        return EINVAL;
    }
    let atomic = prf & PR_ATOMIC != 0 || !top.is_null();
    let clen: i64 = if control.is_null() {
        0
    } else {
        // SAFETY: `control` is the caller's mbuf.
        i64::from(unsafe { len(control) })
    };
    let e = io_lock(so, SO_SND, flags);
    if e != 0 {
        // The split 15-era implementation returns without freeing here (H1);
        // the model frees to keep leak reports about the protocol.
        free_both(top, control);
        return e;
    }
    let snd = so_snd(so);
    let err = 'release: loop {
        mtx_lock(soeventmtx(so, SO_SND));
        // SAFETY: the send buffer mutex is held.
        let (state, hiwat, lowat) = unsafe { ((*snd).sb_state, (*snd).sb_hiwat, (*snd).sb_lowat) };
        if state & SBS_CANTSENDMORE != 0 {
            mtx_unlock(soeventmtx(so, SO_SND));
            break 'release EPIPE;
        }
        // SAFETY: so_error is a plain u_short.
        let soerr = unsafe { std::mem::replace(&mut (*so).so_error, 0) };
        if soerr != 0 {
            mtx_unlock(soeventmtx(so, SO_SND));
            break 'release c_int::from(soerr);
        }
        if state_of(so) & SS_ISCONNECTED == 0 {
            if prf & PR_CONNREQUIRED != 0 && prf & PR_IMPLOPCL == 0 {
                if !(resid == 0 && clen != 0) {
                    mtx_unlock(soeventmtx(so, SO_SND));
                    break 'release ENOTCONN;
                }
            } else if addr.is_null() {
                mtx_unlock(soeventmtx(so, SO_SND));
                break 'release if prf & PR_CONNREQUIRED != 0 {
                    ENOTCONN
                } else {
                    EDESTADDRREQ
                };
            }
        }
        // SAFETY: the send buffer mutex is held.
        let mut space = unsafe { sbuf::sbspace(snd) };
        if flags & MSG_OOB != 0 {
            space += 1024;
        }
        if (atomic && resid as i64 > i64::from(hiwat)) || clen > i64::from(hiwat) {
            mtx_unlock(soeventmtx(so, SO_SND));
            break 'release EMSGSIZE;
        }
        if space < resid as i64 + clen && (atomic || space < i64::from(lowat) || space < clen) {
            if state_of(so) & SS_NBIO != 0 || flags & (MSG_NBIO | MSG_DONTWAIT) != 0 {
                mtx_unlock(soeventmtx(so, SO_SND));
                break 'release EWOULDBLOCK;
            }
            let r = sbuf::wait(so, SO_SND, blocking_bound());
            mtx_unlock(soeventmtx(so, SO_SND));
            if r != 0 {
                break 'release r;
            }
            continue;
        }
        mtx_unlock(soeventmtx(so, SO_SND));
        space -= clen;
        if uio.is_null() {
            if flags & MSG_EOR != 0 {
                // SAFETY: `top` is the caller's chain.
                unsafe { set_flags(top, kmbuf::fields::flags(top) | fbsd_sys::M_EOR) };
            }
        } else {
            let fl = if atomic {
                fbsd_sys::M_PKTHDR as c_int
            } else {
                0
            } | if flags & MSG_EOR != 0 {
                fbsd_sys::M_EOR as c_int
            } else {
                0
            };
            // SAFETY: `uio` describes the caller's buffer.
            top = unsafe {
                kmbuf::abi::m_uiotombuf(
                    uio,
                    M_WAITOK,
                    space.clamp(0, c_int::MAX as i64) as c_int,
                    if atomic { MAX_HDR } else { 0 },
                    fl,
                )
            };
            if top.is_null() {
                break 'release fbsd_sys::EFAULT as c_int;
            }
        }
        let left = if uio.is_null() {
            0
        } else {
            // SAFETY: the caller's uio.
            unsafe { (*uio).uio_resid }
        };
        let prus = if flags & MSG_OOB != 0 {
            PRUS_OOB
        } else if flags & MSG_EOF != 0 && prf & PR_IMPLOPCL != 0 && left <= 0 {
            PRUS_EOF
        } else if flags & MSG_MORETOCOME != 0 || (left > 0 && space > 0) {
            PRUS_MORETOCOME
        } else {
            0
        };
        let (t, c) = (
            std::mem::replace(&mut top, null_mut()),
            std::mem::replace(&mut control, null_mut()),
        );
        let e = call_pr_send(so, pr, prus, t, addr, c, td);
        if e != 0 || left <= 0 || atomic {
            break 'release e;
        }
    };
    io_unlock(so, SO_SND);
    free_both(top, control);
    err
}
