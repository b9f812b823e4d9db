//! Appending to a socket buffer (`sbappend*`), dropping and flushing
//! records.

use super::*;

/// Checks a chain handed to an append function; false if it must not be used.
pub(super) fn chain_ok(m: *mut mbuf, what: &str, c: Caller, need_pkthdr: bool) -> bool {
    if m.is_null() {
        return true;
    }
    if !kmbuf::is_live(m) {
        violation(format!(
            "{what} from {c}: mbuf {m:p} is not live (freed or not an mbuf)"
        ));
        return false;
    }
    let mut ok = true;
    for p in kmbuf::chain_problems(m) {
        if !need_pkthdr && p.contains("M_PKTHDR") && p.starts_with("first mbuf") {
            continue;
        }
        if p.contains("m_pkthdr.len") && !need_pkthdr {
            continue;
        }
        violation(format!("{what} from {c}: {p}"));
        if p.contains("freed") || p.contains("not an mbuf") || p.contains("does not end") {
            ok = false;
        }
    }
    ok
}

/// `sbappendaddr_locked_internal` plus the space check of
/// `sbappendaddr_locked` (`check_space`).
pub(super) fn append_addr(
    sb: *mut sockbuf,
    asa: *const sockaddr,
    m0: *mut mbuf,
    control: *mut mbuf,
    check_space: bool,
    what: &str,
    c: Caller,
) -> c_int {
    if asa.is_null() {
        kernel_panic(&format!(
            "{what}(asa = NULL) from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    if !m0.is_null() && kmbuf::is_live(m0) {
        // SAFETY: `m0` is live.
        if unsafe { flags(m0) } & M_PKTHDR == 0 {
            kernel_panic(&format!(
                "sbappendaddr_locked (called from {c}: m0 {m0:p} has no M_PKTHDR)"
            ));
        }
    }
    if !chain_ok(m0, what, c, true) || !chain_ok(control, what, c, false) {
        return 0;
    }
    if !m0.is_null() {
        // SAFETY: `m0` is live (checked).
        let np = unsafe { nextpkt(m0) };
        if !np.is_null() {
            violation(format!(
                "{what} from {c}: data chain {m0:p} has m_nextpkt {np:p} set (a packet list is not a record)"
            ));
        }
    }
    // SAFETY: `asa` is the caller's sockaddr (sa_len readable bytes); `sb`
    // is live and locked; the chains are live (checked above).
    unsafe {
        let salen = usize::from((*asa).sa_len);
        let (clen, ctrl_last) = chain_len(control);
        if check_space {
            let space = salen as i64
                + if m0.is_null() {
                    0
                } else {
                    i64::from(ph_len(m0))
                }
                + clen;
            if space > sbspace(sb) {
                return 0;
            }
        }
        if salen > MLEN {
            return 0;
        }
        let m = kmbuf::abi::m_get2(salen as c_int, M_NOWAIT, MT_SONAME as c_short, 0);
        if m.is_null() {
            return 0;
        }
        set_len(m, salen as i32);
        std::ptr::copy_nonoverlapping(asa.cast::<u8>(), data(m), salen);
        if !m0.is_null() {
            clrprotoflags(m0);
            kmbuf::abi::m_tag_delete_chain(m0, std::ptr::null_mut());
            let ph = ph(m0);
            (*ph).__bindgen_anon_1.rcvif = std::ptr::null_mut();
            (*ph).flowid = 0;
            (*ph).csum_flags = 0;
            (*ph).fibnum = 0;
            (*ph).rsstype = 0;
        }
        let rest = if ctrl_last.is_null() {
            m0
        } else {
            set_next(ctrl_last, m0);
            control
        };
        set_next(m, rest);
        let mut n = m;
        loop {
            sballoc(sb, n);
            if next(n).is_null() {
                break;
            }
            n = next(n);
        }
        link_record(sb, m);
        set_sb_mbtail(sb, n);
    }
    1
}

/// `sbcompress(sb, m, n)` without coalescing: links `m`'s chain after `n`
/// (or as the buffer's first mbufs), dropping empty mbufs as the kernel does.
pub(super) unsafe fn compress(sb: *mut sockbuf, mut m: *mut mbuf, mut n: *mut mbuf) {
    let mut eor = 0;
    // SAFETY: `sb` is live and locked; `m` is a live chain handed over.
    unsafe {
        while !m.is_null() {
            eor |= flags(m) & M_EOR;
            let o = if !next(m).is_null() { next(m) } else { n };
            if len(m) == 0 && (eor == 0 || (!o.is_null() && mtype(o) == mtype(m))) {
                if sb_lastrecord(sb) == m {
                    set_sb_lastrecord(sb, next(m));
                }
                m = kmbuf::free_one_mbuf(m);
                continue;
            }
            if n.is_null() {
                set_sb_mb(sb, m);
            } else {
                set_next(n, m);
            }
            set_sb_mbtail(sb, m);
            sballoc(sb, m);
            n = m;
            set_flags(m, flags(m) & !M_EOR);
            m = next(m);
            set_next(n, std::ptr::null_mut());
        }
        if eor != 0 && !n.is_null() {
            set_flags(n, flags(n) | eor);
        }
    }
}

/// `sbappendrecord_locked(sb, m0)`.
pub(super) fn append_record(sb: *mut sockbuf, m0: *mut mbuf) {
    if m0.is_null() {
        return;
    }
    // SAFETY: `sb` is live and locked; `m0` is a live chain handed over.
    unsafe {
        clrprotoflags(m0);
        sballoc(sb, m0);
        link_record(sb, m0);
        set_sb_mbtail(sb, m0);
        let m = next(m0);
        set_next(m0, std::ptr::null_mut());
        if !m.is_null() && flags(m0) & M_EOR != 0 {
            set_flags(m0, flags(m0) & !M_EOR);
            set_flags(m, flags(m) | M_EOR);
        }
        compress(sb, m, m0);
    }
}

/// `sbappend_locked(sb, m, flags)`.
pub(super) fn append(sb: *mut sockbuf, m: *mut mbuf, prflags: c_int) {
    if m.is_null() {
        return;
    }
    // SAFETY: `sb` is live and locked; `m` is a live chain handed over.
    unsafe {
        let keep_notready = prflags & fbsd_sys::PRUS_NOTREADY as c_int != 0;
        let mut p = m;
        while !p.is_null() {
            let mask = if keep_notready {
                !M_PROTOFLAGS | fbsd_sys::M_PROTO1
            } else {
                !M_PROTOFLAGS
            };
            set_flags(p, flags(p) & mask);
            p = next(p);
        }
        let mut n = sb_mb(sb);
        if !n.is_null() {
            while !nextpkt(n).is_null() {
                n = nextpkt(n);
            }
            loop {
                if flags(n) & M_EOR != 0 {
                    append_record(sb, m);
                    return;
                }
                if next(n).is_null() {
                    break;
                }
                n = next(n);
            }
        } else {
            set_sb_lastrecord(sb, m);
        }
        compress(sb, m, n);
    }
}

/// `sbflush_locked(sb)`: frees every queued record and checks the accounting
/// returns to zero.
pub(crate) fn flush_locked(sb: *mut sockbuf) {
    // SAFETY: `sb` belongs to a live harness socket; the chains are the buffer's.
    unsafe {
        let mut rec = sb_mb(sb);
        while !rec.is_null() {
            let nextrec = nextpkt(rec);
            set_nextpkt(rec, std::ptr::null_mut());
            let mut m = rec;
            while !m.is_null() {
                sbfree(sb, m);
                m = next(m);
            }
            kmbuf::free_chain(rec);
            rec = nextrec;
        }
        set_sb_mb(sb, std::ptr::null_mut());
        set_sb_mbtail(sb, std::ptr::null_mut());
        set_sb_lastrecord(sb, std::ptr::null_mut());
        if (*sb).sb_ccc != 0 || (*sb).sb_acc != 0 || (*sb).sb_mbcnt != 0 || (*sb).sb_ctl != 0 {
            violation(format!(
                "socket buffer {sb:p}: accounting does not match its contents after a flush (ccc {}, acc {}, \
                 mbcnt {}, ctl {}): somebody changed the counters or the chains behind the socket layer",
                (*sb).sb_ccc,
                (*sb).sb_acc,
                (*sb).sb_mbcnt,
                (*sb).sb_ctl
            ));
            (*sb).sb_ccc = 0;
            (*sb).sb_acc = 0;
            (*sb).sb_mbcnt = 0;
            (*sb).sb_ctl = 0;
        }
    }
}

/// Unlinks the first record of `sb` (fixing `sb_lastrecord`/`sb_mbtail`) and
/// returns it with its accounting removed, or NULL.
pub(crate) fn take_first_record(sb: *mut sockbuf) -> *mut mbuf {
    // SAFETY: `sb` belongs to a live harness socket and is locked.
    unsafe {
        let rec = sb_mb(sb);
        if rec.is_null() {
            return rec;
        }
        let nextrec = nextpkt(rec);
        set_nextpkt(rec, std::ptr::null_mut());
        set_sb_mb(sb, nextrec);
        if nextrec.is_null() {
            set_sb_mbtail(sb, std::ptr::null_mut());
            set_sb_lastrecord(sb, std::ptr::null_mut());
        }
        let mut m = rec;
        while !m.is_null() {
            sbfree(sb, m);
            m = next(m);
        }
        rec
    }
}

/// Replaces the head mbuf of the first record by `m` (the rest of that
/// record, or NULL if the record is used up); used by soreceive.
pub(crate) fn set_first_record_head(sb: *mut sockbuf, old: *mut mbuf, m: *mut mbuf) {
    // SAFETY: `sb` is live and locked; `old` is its current first record head.
    unsafe {
        let nextrec = nextpkt(old);
        set_nextpkt(old, std::ptr::null_mut());
        let was_last = sb_lastrecord(sb) == old;
        if m.is_null() {
            set_sb_mb(sb, nextrec);
            if was_last {
                set_sb_lastrecord(sb, std::ptr::null_mut());
            }
        } else {
            set_nextpkt(m, nextrec);
            set_sb_mb(sb, m);
            if was_last {
                set_sb_lastrecord(sb, m);
            }
        }
        if sb_mb(sb).is_null() {
            set_sb_mbtail(sb, std::ptr::null_mut());
            set_sb_lastrecord(sb, std::ptr::null_mut());
        }
    }
}

/// `sbdroprecord_locked(sb)`.
pub(crate) fn droprecord_locked(sb: *mut sockbuf) {
    let rec = take_first_record(sb);
    if !rec.is_null() {
        kmbuf::free_chain(rec);
    }
}
