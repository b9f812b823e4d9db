//! Packet headers, shared clusters and the chain operations (`m_copydata`,
//! `m_copym`, `m_dup`, `m_adj`, `m_cat`, `m_pullup`, `m_prepend`, `m_defrag`,
//! `m_get2`, `m_getm2`...).

use super::*;

/// `m_move_pkthdr(to, from)` (MAC kernel: `to`'s tags are deleted first).
/// Safety: `to` and `from` must be live mbufs, `from` with M_PKTHDR.
pub(super) unsafe fn move_pkthdr(to: *mut mbuf, from: *mut mbuf, c: Caller) {
    if flags(to) & M_PKTHDR != 0 && !tags_first(to).is_null() {
        tag_delete_chain(to, null_mut(), c);
    }
    set_flags(to, (flags(from) & M_COPYFLAGS) | (flags(to) & M_EXT));
    if flags(to) & M_EXT == 0 {
        set_data(to, pktdat(to));
    }
    ptr::copy_nonoverlapping(ph(from), ph(to), 1);
    set_tags_first(from, null_mut());
    set_flags(from, flags(from) & !M_PKTHDR);
}

/// `m_dup_pkthdr(to, from, how)`: deep copy including tags; 1 or 0.
/// Safety: `to` and `from` must be live mbufs, `from` with M_PKTHDR.
pub(super) unsafe fn dup_pkthdr(to: *mut mbuf, from: *mut mbuf, how: c_int, c: Caller) -> c_int {
    if flags(to) & M_PKTHDR != 0 && !tags_first(to).is_null() {
        tag_delete_chain(to, null_mut(), c);
    }
    set_flags(to, (flags(from) & M_COPYFLAGS) | (flags(to) & M_EXT));
    if flags(to) & M_EXT == 0 {
        set_data(to, pktdat(to));
    }
    ptr::copy_nonoverlapping(ph(from), ph(to), 1);
    set_tags_first(to, null_mut());
    tag_copy_chain(to, from, how, c)
}

/// `m_demote_pkthdr(m)`.
/// Safety: `m` must be a live mbuf.
pub(super) unsafe fn demote_pkthdr(m: *mut mbuf, c: Caller) {
    if flags(m) & M_PKTHDR == 0 {
        violation(format!(
            "m_demote_pkthdr: no mbuf {m:p} packet header (from {c})"
        ));
        return;
    }
    tag_delete_chain(m, null_mut(), c);
    set_flags(m, flags(m) & !M_PKTHDR);
    ptr::write_bytes(ph(m), 0, 1);
}

/// `mb_dupcl(n, m)`: `n` shares `m`'s external storage.
/// Safety: `m` must be a live M_EXT mbuf, `n` a live mbuf without M_EXT.
pub(super) unsafe fn dupcl(n: *mut mbuf, m: *mut mbuf) {
    let src = ext(m).cast::<u8>();
    let dst = ext(n).cast::<u8>();
    if ext_type(m) == EXT_EXTREF {
        ptr::copy_nonoverlapping(src, dst, size_of::<m_ext>());
    } else {
        ptr::copy_nonoverlapping(src, dst, EXT_COPYLEN);
    }
    set_flags(n, flags(n) | M_EXT | (flags(m) & M_RDONLY));
    let refcnt;
    if ext_flags(m) & EXT_FLAG_EMBREF != 0 {
        refcnt = ptr::addr_of_mut!((*ext(m)).__bindgen_anon_1.ext_count);
        (*ext(n)).__bindgen_anon_1.ext_cnt = refcnt;
        m_ext::set_ext_flags_raw(ext(n), ext_flags(n) & !EXT_FLAG_EMBREF);
    } else {
        refcnt = (*ext(m)).__bindgen_anon_1.ext_cnt;
    }
    *refcnt += 1;
}

/// Walks `m`'s chain checking each mbuf; returns them (stops at a bad one).
pub(super) fn chain(m: *mut mbuf, what: &str, c: Caller) -> Vec<*mut mbuf> {
    let mut out = Vec::new();
    let mut p = m;
    while !p.is_null() {
        if !check_live(p, what, c, Use::Access) {
            break;
        }
        out.push(p);
        if out.len() > CHAIN_WALK_LIMIT {
            violation(format!("{what} from {c}: mbuf chain does not end (loop?)"));
            break;
        }
        // SAFETY: `p` is live.
        p = unsafe { next(p) };
    }
    out
}

pub(super) fn length(m: *mut mbuf, last: *mut *mut mbuf, c: Caller) -> c_uint {
    let ch = chain(m, "m_length", c);
    // SAFETY: every mbuf of `ch` is live.
    let total: i64 = ch.iter().map(|&p| i64::from(unsafe { len(p) })).sum();
    if !last.is_null() {
        // SAFETY: the caller passes a writable `struct mbuf **`.
        unsafe { *last = ch.last().copied().unwrap_or(null_mut()) };
    }
    total as c_uint
}

pub(super) fn fixhdr(m: *mut mbuf, c: Caller) -> c_uint {
    if !check_live(m, "m_fixhdr", c, Use::Access) {
        return 0;
    }
    let l = length(m, null_mut(), c);
    // SAFETY: `m` is live.
    unsafe {
        if flags(m) & M_PKTHDR == 0 {
            violation(format!(
                "m_fixhdr({m:p}) from {c}: mbuf has no packet header (m_pkthdr.len overwrites data)"
            ));
        }
        set_ph_len(m, l as i32);
    }
    l
}

pub(super) fn copydata(m: *mut mbuf, off: c_int, len0: c_int, cp: *mut u8, c: Caller) {
    if off < 0 || len0 < 0 {
        kernel_panic(&format!(
            "m_copydata, negative off {off} or len {len0} (from {c})"
        ));
    }
    probe::copy("m_copydata", len0 as usize, c);
    let (mut off, mut n, mut p) = (off as usize, len0 as usize, m);
    let mut cp = cp;
    // SAFETY: each mbuf is checked live before use; copies are bounded by
    // m_len and checked against the mbuf's storage.
    unsafe {
        while off > 0 {
            if p.is_null() {
                kernel_panic(&format!(
                    "m_copydata, offset > size of mbuf chain (off {off}, len {len0}, from {c}; \
                     page fault on a NULL m_next)"
                ));
            }
            if !check_live(p, "m_copydata", c, Use::Access) {
                kernel_panic("m_copydata: freed or foreign mbuf in the chain");
            }
            if off < len(p).max(0) as usize {
                break;
            }
            off -= len(p).max(0) as usize;
            p = next(p);
        }
        while n > 0 {
            if p.is_null() {
                kernel_panic(&format!(
                    "m_copydata, length > size of mbuf chain ({len0} bytes at offset requested, from {c}; \
                     page fault on a NULL m_next)"
                ));
            }
            if !check_live(p, "m_copydata", c, Use::Access) {
                kernel_panic("m_copydata: freed or foreign mbuf in the chain");
            }
            let count = (len(p).max(0) as usize - off).min(n);
            if !seg_ok(p, off, count, "m_copydata", c) {
                kernel_panic("m_copydata: mbuf data outside its storage");
            }
            ptr::copy(data(p).add(off), cp, count);
            n -= count;
            cp = cp.add(count);
            off = 0;
            p = next(p);
        }
    }
}

pub(super) fn copyback(m0: *mut mbuf, off: c_int, len0: c_int, cp: *const u8, c: Caller) {
    if m0.is_null() {
        return;
    }
    if !check_live(m0, "m_copyback", c, Use::Access) {
        return;
    }
    probe::copy("m_copyback", len0.max(0) as usize, c);
    let (mut off, mut n) = (off.max(0) as isize, len0.max(0) as isize);
    let mut cp = cp;
    let mut totlen: isize = 0;
    let mut m = m0;
    // SAFETY: every mbuf walked is checked live; writes are bounded by
    // m_len / trailing space of the mbuf written.
    unsafe {
        'out: {
            loop {
                let mlen = len(m) as isize;
                if off <= mlen {
                    break;
                }
                off -= mlen;
                totlen += mlen;
                if next(m).is_null() {
                    let nm = zalloc_mbuf(How::NoWait, mtype(m), 0, c);
                    if nm.is_null() {
                        break 'out;
                    }
                    ptr::write_bytes(data(nm), 0, MLEN);
                    set_len(nm, (MLEN as isize).min(n + off) as i32);
                    set_next(m, nm);
                }
                m = next(m);
                if !check_live(m, "m_copyback", c, Use::Access) {
                    return;
                }
            }
            while n > 0 {
                if next(m).is_null() && n > len(m) as isize - off {
                    let grow = (n - (len(m) as isize - off)).min(trailingspace(m));
                    set_len(m, len(m) + grow as i32);
                }
                let mlen = (len(m) as isize - off).min(n);
                if mlen > 0 {
                    if !seg_ok(m, off as usize, mlen as usize, "m_copyback", c) {
                        return;
                    }
                    ptr::copy(cp, data(m).add(off as usize), mlen as usize);
                }
                let mlen = mlen.max(0);
                cp = cp.add(mlen as usize);
                n -= mlen;
                totlen += mlen + off;
                off = 0;
                if n == 0 {
                    break;
                }
                if next(m).is_null() {
                    let nm = zalloc_mbuf(How::NoWait, mtype(m), 0, c);
                    if nm.is_null() {
                        break;
                    }
                    set_len(nm, (MLEN as isize).min(n) as i32);
                    set_next(m, nm);
                }
                m = next(m);
                if !check_live(m, "m_copyback", c, Use::Access) {
                    return;
                }
            }
        }
        if flags(m0) & M_PKTHDR != 0 && (ph_len(m0) as isize) < totlen {
            set_ph_len(m0, totlen as i32);
        }
    }
}

pub(super) fn copym(m0: *mut mbuf, off0: c_int, len0: c_int, w: How, c: Caller) -> *mut mbuf {
    if off0 < 0 || len0 < 0 {
        kernel_panic(&format!(
            "m_copym, negative off {off0} or len {len0} (from {c})"
        ));
    }
    if !check_live(m0, "m_copym", c, Use::Access) {
        return null_mut();
    }
    let copyall = len0 as u32 == M_COPYALL;
    let mut off = off0;
    let mut n = len0;
    let mut m = m0;
    // SAFETY: every mbuf walked is checked live; data copies are bounded by m_len.
    unsafe {
        let mut copyhdr = off == 0 && flags(m) & M_PKTHDR != 0;
        while off > 0 {
            if m.is_null() {
                kernel_panic(&format!(
                    "m_copym, offset > size of mbuf chain (from {c}; page fault on a NULL m_next)"
                ));
            }
            if !check_live(m, "m_copym", c, Use::Access) {
                return null_mut();
            }
            if off < len(m) {
                break;
            }
            off -= len(m);
            m = next(m);
        }
        let mut top: *mut mbuf = null_mut();
        let mut tail: *mut mbuf = null_mut();
        let mut copied = 0usize;
        while n > 0 {
            if m.is_null() {
                if !copyall {
                    violation(format!(
                        "m_copym({m0:p}, {off0}, {len0}) from {c}: length > size of mbuf chain"
                    ));
                }
                break;
            }
            if !check_live(m, "m_copym", c, Use::Access) {
                freem(top, c);
                return null_mut();
            }
            let nm = zalloc_mbuf(w, mtype(m), if copyhdr { M_PKTHDR } else { 0 }, c);
            if nm.is_null() {
                freem(top, c);
                return null_mut();
            }
            if tail.is_null() {
                top = nm;
            } else {
                set_next(tail, nm);
            }
            tail = nm;
            if copyhdr {
                let how = if w == How::NoWait { M_NOWAIT } else { M_WAITOK } as c_int;
                if dup_pkthdr(nm, m, how, c) == 0 {
                    freem(top, c);
                    return null_mut();
                }
                if copyall {
                    set_ph_len(nm, ph_len(nm) - off0);
                } else {
                    set_ph_len(nm, len0);
                }
                copyhdr = false;
            }
            let l = n.min(len(m) - off);
            set_len(nm, l);
            if flags(m) & M_EXT != 0 {
                set_data(nm, data(m).add(off as usize));
                dupcl(nm, m);
            } else {
                if !seg_ok(m, off as usize, l.max(0) as usize, "m_copym", c) {
                    freem(top, c);
                    return null_mut();
                }
                ptr::copy_nonoverlapping(data(m).add(off as usize), data(nm), l.max(0) as usize);
                copied += l.max(0) as usize;
            }
            if !copyall {
                n -= l;
            }
            off = 0;
            m = next(m);
        }
        probe::copy("m_copym", copied, c);
        top
    }
}

pub(super) fn dup(m: *mut mbuf, w: How, how: c_int, c: Caller) -> *mut mbuf {
    if m.is_null() {
        return null_mut();
    }
    if !check_live(m, "m_dup", c, Use::Access) {
        return null_mut();
    }
    // SAFETY: every source mbuf is checked live; copies are bounded by the
    // destination's capacity and the source's m_len.
    unsafe {
        if flags(m) & M_PKTHDR == 0 {
            violation(format!("m_dup({m:p}) from {c}: no mbuf packet header"));
        }
        let mut remain = ph_len(m) as isize;
        probe::copy("m_dup", remain.max(0) as usize, c);
        let mut moff = 0usize;
        let mut src = m;
        let mut top: *mut mbuf = null_mut();
        let mut tail: *mut mbuf = null_mut();
        while remain > 0 || top.is_null() {
            let (nm, mut nsize) = if remain >= MINCLSIZE as isize {
                (zalloc_pack(w, mtype(m), 0, c), MCLBYTES)
            } else {
                (zalloc_mbuf(w, mtype(m), 0, c), MLEN)
            };
            if nm.is_null() {
                freem(top, c);
                return null_mut();
            }
            if top.is_null() {
                if dup_pkthdr(nm, m, how, c) == 0 {
                    free_one(nm, c);
                    freem(top, c);
                    return null_mut();
                }
                if flags(nm) & M_EXT == 0 {
                    nsize = MHLEN;
                }
                set_flags(nm, flags(nm) & !M_RDONLY);
                top = nm;
            } else {
                set_next(tail, nm);
            }
            tail = nm;
            set_len(nm, 0);
            while (len(nm) as usize) < nsize && !src.is_null() {
                let chunk = (nsize - len(nm) as usize).min(len(src).max(0) as usize - moff);
                ptr::copy_nonoverlapping(
                    data(src).add(moff),
                    data(nm).add(len(nm) as usize),
                    chunk,
                );
                moff += chunk;
                set_len(nm, len(nm) + chunk as i32);
                remain -= chunk as isize;
                if moff == len(src).max(0) as usize {
                    src = next(src);
                    moff = 0;
                    if !src.is_null() && !check_live(src, "m_dup", c, Use::Access) {
                        src = null_mut();
                    }
                }
            }
            if src.is_null() && remain > 0 {
                violation(format!(
                    "m_dup({m:p}) from {c}: bogus m_pkthdr.len {} (chain is shorter)",
                    ph_len(m)
                ));
                break;
            }
        }
        top
    }
}

pub(super) fn adj(mp: *mut mbuf, req_len: c_int, c: Caller) {
    if mp.is_null() {
        return;
    }
    let ch = chain(mp, "m_adj", c);
    if ch.is_empty() {
        return;
    }
    // SAFETY: every mbuf in `ch` is live; lengths only shrink.
    unsafe {
        if req_len >= 0 {
            let mut l = req_len;
            for &m in &ch {
                if l <= 0 {
                    break;
                }
                if len(m) <= l {
                    l -= len(m);
                    set_len(m, 0);
                } else {
                    set_len(m, len(m) - l);
                    set_data(m, data(m).add(l as usize));
                    l = 0;
                }
            }
            if flags(mp) & M_PKTHDR != 0 {
                set_ph_len(mp, ph_len(mp) - (req_len - l));
            }
        } else {
            let l = -(req_len as i64);
            let count: i64 = ch.iter().map(|&m| i64::from(len(m))).sum();
            let last = *ch.last().expect("non-empty chain");
            if i64::from(len(last)) >= l {
                set_len(last, len(last) - l as i32);
                if flags(mp) & M_PKTHDR != 0 {
                    set_ph_len(mp, ph_len(mp) - l as i32);
                }
                return;
            }
            let mut count = (count - l).max(0);
            if flags(mp) & M_PKTHDR != 0 {
                set_ph_len(mp, count as i32);
            }
            for &m in &ch {
                if i64::from(len(m)) >= count {
                    set_len(m, count as i32);
                    let rest = next(m);
                    if !rest.is_null() {
                        set_next(m, null_mut());
                        freem(rest, c);
                    }
                    break;
                }
                count -= i64::from(len(m));
            }
        }
    }
}

pub(super) fn cat(m: *mut mbuf, n: *mut mbuf, c: Caller) {
    let ch = chain(m, "m_cat", c);
    let Some(&m) = ch.last() else { return };
    let mut n = n;
    // SAFETY: `m` and each `n` are checked live; copies fit the trailing space.
    unsafe {
        while !n.is_null() {
            if !check_live(n, "m_cat", c, Use::Access) {
                return;
            }
            if !m_writable(m) || trailingspace(m) < len(n) as isize {
                set_next(m, n);
                return;
            }
            if !seg_ok(n, 0, len(n).max(0) as usize, "m_cat", c) {
                set_next(m, n);
                return;
            }
            ptr::copy(
                data(n),
                data(m).add(len(m) as usize),
                len(n).max(0) as usize,
            );
            set_len(m, len(m) + len(n));
            n = free_one(n, c);
        }
    }
}

pub(super) fn pullup(n0: *mut mbuf, want: c_int, c: Caller) -> *mut mbuf {
    if !check_live(n0, "m_pullup", c, Use::Access) {
        return null_mut();
    }
    let mut n = n0;
    let mut want = want as isize;
    // SAFETY: `n` and its successors are live mbufs owned by the caller; all
    // copies stay inside the new head's m_dat and the source's m_len.
    unsafe {
        let m;
        let d_end = dat(n).add(MLEN);
        if flags(n) & M_EXT == 0 && (data(n) as isize + want) < d_end as isize && !next(n).is_null()
        {
            if len(n) as isize >= want {
                return n;
            }
            m = n;
            n = next(n);
            want -= len(m) as isize;
        } else {
            if want > MHLEN as isize {
                freem(n, c);
                return null_mut();
            }
            m = zalloc_mbuf(How::NoWait, mtype(n), 0, c);
            if m.is_null() {
                freem(n, c);
                return null_mut();
            }
            if flags(n) & M_PKTHDR != 0 {
                move_pkthdr(m, n, c);
            }
        }
        let mut space = dat(m).add(MLEN) as isize - (data(m) as isize + len(m) as isize);
        loop {
            if !check_live(n, "m_pullup", c, Use::Access) {
                return null_mut();
            }
            let count = want
                .max(MAX_PROTOHDR as isize)
                .min(space)
                .min(len(n) as isize)
                .max(0);
            ptr::copy(data(n), data(m).add(len(m) as usize), count as usize);
            probe::copy("m_pullup", count as usize, c);
            want -= count;
            set_len(m, len(m) + count as i32);
            set_len(n, len(n) - count as i32);
            space -= count;
            if len(n) != 0 {
                set_data(n, data(n).add(count as usize));
            } else {
                n = free_one(n, c);
            }
            if want <= 0 || n.is_null() {
                break;
            }
        }
        if want > 0 {
            free_one(m, c);
            freem(n, c);
            return null_mut();
        }
        set_next(m, n);
        m
    }
}

pub(super) fn prepend(m: *mut mbuf, plen: c_int, w: How, c: Caller) -> *mut mbuf {
    if !check_live(m, "m_prepend", c, Use::Access) {
        return null_mut();
    }
    // SAFETY: `m` is live and owned by the caller.
    unsafe {
        let hdr = flags(m) & M_PKTHDR != 0;
        let mn = zalloc_mbuf(w, mtype(m), if hdr { M_PKTHDR } else { 0 }, c);
        if mn.is_null() {
            freem(m, c);
            return null_mut();
        }
        if hdr {
            move_pkthdr(mn, m, c);
        }
        set_next(mn, m);
        let l = plen.max(0) as usize;
        if l > m_size(mn) {
            violation(format!(
                "m_prepend({m:p}, {plen}) from {c}: {plen} bytes do not fit a new mbuf ({} bytes)",
                m_size(mn)
            ));
        } else if l < m_size(mn) {
            m_align(mn, l);
        }
        set_len(mn, plen);
        mn
    }
}

pub(super) fn defrag(m0: *mut mbuf, w: How, how: c_int, c: Caller) -> *mut mbuf {
    if !check_live(m0, "m_defrag", c, Use::Access) {
        return null_mut();
    }
    // SAFETY: `m0` is live and owned by the caller; copies go through
    // `copydata`, which checks every source mbuf.
    unsafe {
        if flags(m0) & M_PKTHDR == 0 {
            return m0;
        }
        fixhdr(m0, c);
        let total = ph_len(m0) as usize;
        let m_final = if total > MHLEN {
            zalloc_pack(w, MT_DATA, M_PKTHDR, c)
        } else {
            zalloc_mbuf(w, MT_DATA, M_PKTHDR, c)
        };
        if m_final.is_null() {
            return null_mut();
        }
        if dup_pkthdr(m_final, m0, how, c) == 0 {
            freem(m_final, c);
            return null_mut();
        }
        let mut progress = 0usize;
        let mut m_new = m_final;
        while progress < total {
            let l = (total - progress).min(MCLBYTES);
            if m_new.is_null() {
                m_new = if l > MLEN {
                    zalloc_pack(w, MT_DATA, 0, c)
                } else {
                    zalloc_mbuf(w, MT_DATA, 0, c)
                };
                if m_new.is_null() {
                    freem(m_final, c);
                    return null_mut();
                }
            }
            copydata(m0, progress as c_int, l as c_int, data(m_new), c);
            progress += l;
            set_len(m_new, l as i32);
            if m_new != m_final {
                cat(m_final, m_new, c);
            }
            m_new = null_mut();
        }
        freem(m0, c);
        m_final
    }
}

pub(super) fn get2(size: c_int, w: How, mtype: u32, fl: u32, c: Caller) -> *mut mbuf {
    let size = size.max(0) as usize;
    if size <= MHLEN || (size <= MLEN && fl & M_PKTHDR == 0) {
        return zalloc_mbuf(w, mtype, fl, c);
    }
    if size <= MCLBYTES {
        return zalloc_pack(w, mtype, fl, c);
    }
    if size > MJUMPAGESIZE {
        return null_mut();
    }
    let m = zalloc_mbuf(w, mtype, fl, c);
    if m.is_null() {
        return m;
    }
    if zalloc_cluster(Zone::Jumbop, w, m, c).is_null() {
        zfree_mbuf(m, c);
        return null_mut();
    }
    m
}

pub(super) fn getm2(
    m: *mut mbuf,
    len0: c_int,
    w: How,
    mtype: u32,
    fl: u32,
    c: Caller,
) -> *mut mbuf {
    if len0 < 0 {
        violation(format!("m_getm2(len {len0}) from {c}: len is < 0"));
    }
    let mut fl = fl & (M_PKTHDR | M_EOR);
    if fl & M_PKTHDR != 0 && !m.is_null() {
        fl &= !M_PKTHDR;
    }
    let mut l = len0 as isize;
    let mut nm: *mut mbuf = null_mut();
    let mut mtail: *mut mbuf = null_mut();
    // SAFETY: every mbuf linked here is freshly allocated; `m` is checked live.
    unsafe {
        while l > 0 {
            let mut mb = null_mut();
            if l > MCLBYTES as isize {
                let nw = if w == How::Host {
                    How::Host
                } else {
                    How::NoWait
                };
                mb = getjcl(nw, mtype, fl & M_PKTHDR, MJUMPAGESIZE, c);
            }
            if mb.is_null() {
                mb = if l >= MINCLSIZE as isize {
                    zalloc_pack(w, mtype, fl & M_PKTHDR, c)
                } else {
                    zalloc_mbuf(w, mtype, fl & M_PKTHDR, c)
                };
                if mb.is_null() {
                    freem(nm, c);
                    return null_mut();
                }
            }
            l -= m_size(mb) as isize;
            if mtail.is_null() {
                nm = mb;
            } else {
                set_next(mtail, mb);
            }
            mtail = mb;
            fl &= !M_PKTHDR;
        }
        if fl & M_EOR != 0 && !mtail.is_null() {
            set_flags(mtail, flags(mtail) | M_EOR);
        }
        if !m.is_null() {
            let ch = chain(m, "m_getm2", c);
            let Some(&t) = ch.last() else { return nm };
            set_next(t, nm);
            set_flags(t, flags(t) & !M_EOR);
            m
        } else {
            nm
        }
    }
}
