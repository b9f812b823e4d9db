//! Socket buffers (`struct sockbuf`) of the sockets of [`crate::kern::domain`]:
//! the record queue, its accounting, and the helpers protocols call —
//! `sbappendaddr(_locked)`, `sbappendrecord(_locked)`, `sbappend(_locked)`,
//! `sbflush`, `sbdroprecord`, `sbreserve_locked`, `sbrelease`, `sbdestroy`,
//! `sballoc`/`sbfree`, `soreserve`, `sbsetopt`, `sbwait`, the wakeups
//! `sorwakeup_locked`/`sowwakeup_locked`, `soroverflow(_locked)` and
//! `socantsendmore`/`socantrcvmore` (+ `_locked`).
//!
//! Layout and semantics are FreeBSD 15's (`sys/sockbuf.h`, `uipc_sockbuf.c`,
//! read for facts; independent implementation). Records are chained through
//! `m_nextpkt` of their first mbuf, the mbufs of a record through `m_next`;
//! `sb_mb`, `sb_mbtail` and `sb_lastrecord` are maintained like the kernel
//! does, so module code may walk them. Accounting (rule H9): appending an mbuf
//! adds `m_len` to `sb_ccc`/`sb_acc` (and to `sb_ctl` for non-data mbufs),
//! `MSIZE` plus the external storage size to `sb_mbcnt`; `sb_mbmax` is
//! `min(8 × hiwat, kern.ipc.maxsockbuf)`; `sbspace` is computed in `int` and
//! may be negative.
//!
//! Contract checks: the buffer mutex must be held by the caller of every
//! `_locked` function (H8; `sorwakeup_locked`, `sowwakeup_locked`,
//! `soroverflow_locked`, `socant*_locked` always release it, the append
//! functions keep it); `soreserve` takes both mutexes itself and must be
//! called with neither held (H28); `sbappendaddr_locked` panics on a data
//! chain without `M_PKTHDR`, returns 0 leaving the caller the owner of `m0`
//! and `control` (nothing freed, nothing modified) or 1 with the record
//! queued, its tags deleted and `rcvif`/`flowid`/`csum_flags`/`fibnum`/
//! `rsstype` cleared (H7). Wakeups reach sleeping readers through the harness
//! scheduler.
//!
//! Simplification: `sbcompress` does not coalesce small mbufs (it only drops
//! empty ones, like the kernel), so `sb_mbcnt` can be higher than FreeBSD's
//! for stream appends of many tiny mbufs; datagram records (`sbappendaddr`)
//! are never compressed by FreeBSD either.

use std::collections::HashSet;
use std::ffi::{c_int, c_short};
use std::sync::atomic::{AtomicU64, Ordering};

use fbsd_sys::{
    mbuf, sb_which, sockaddr, sockbuf, socket, sockopt, thread, u_long, SO_RCV, SO_SND,
};

use crate::exports::Exports;
use crate::kern::domain::locks::{mtx_lock, mtx_owned, mtx_unlock};
use crate::kern::domain::{
    check_sockbuf, check_socket, note_state, so_lock, sobuf, soeventmtx, soisconnected_impl,
    which_name,
};
use crate::kern::entry::kernel_functions;
use crate::kern::fault::Caller;
use crate::kern::mbuf::fields::*;
use crate::kern::mbuf::{self as kmbuf, MLEN, MSIZE};
use crate::kern::{kernel_panic, violation};

const M_EXT: u32 = fbsd_sys::M_EXT;
const M_PKTHDR: u32 = fbsd_sys::M_PKTHDR;
const M_EOR: u32 = fbsd_sys::M_EOR;
const M_PROTOFLAGS: u32 = fbsd_sys::M_PROTOFLAGS;
const MT_DATA: u32 = fbsd_sys::MT_DATA;
const MT_OOBDATA: u32 = fbsd_sys::MT_OOBDATA;
const MT_SONAME: u32 = fbsd_sys::MT_SONAME;
const MCLBYTES: u64 = fbsd_sys::MCLBYTES as u64;
const SB_WAIT: c_short = fbsd_sys::SB_WAIT as c_short;
const SB_SEL: c_short = fbsd_sys::SB_SEL as c_short;
const SB_ASYNC: c_short = fbsd_sys::SB_ASYNC as c_short;
const SB_UPCALL: c_short = fbsd_sys::SB_UPCALL as c_short;
const SB_AIO: c_short = fbsd_sys::SB_AIO as c_short;
const SB_KNOTE: c_short = fbsd_sys::SB_KNOTE as c_short;
const SB_AUTOSIZE: c_short = fbsd_sys::SB_AUTOSIZE as c_short;
const SBS_CANTSENDMORE: c_short = fbsd_sys::SBS_CANTSENDMORE as c_short;
const SBS_CANTRCVMORE: c_short = fbsd_sys::SBS_CANTRCVMORE as c_short;
const SU_ISCONNECTED: c_int = fbsd_sys::SU_ISCONNECTED as c_int;
const SO_RERROR: c_int = fbsd_sys::SO_RERROR as c_int;
const ENOBUFS: c_int = fbsd_sys::ENOBUFS as c_int;
const EINVAL: c_int = fbsd_sys::EINVAL as c_int;
const M_NOWAIT: c_int = fbsd_sys::M_NOWAIT as c_int;
/// `sb_efficiency`: `sb_mbmax = hiwat × 8`.
const SB_EFFICIENCY: u64 = 8;

/// `kern.ipc.maxsockbuf` (`sb_max`); FreeBSD 15's `SB_MAX` is 8 MiB.
static SB_MAX: AtomicU64 = AtomicU64::new(fbsd_sys::SB_MAX as u64);

/// `kern.ipc.maxsockbuf`.
pub fn maxsockbuf() -> u64 {
    SB_MAX.load(Ordering::Relaxed)
}

/// Sets `kern.ipc.maxsockbuf` (EINVAL below `MSIZE + MCLBYTES`, as the sysctl).
pub fn set_maxsockbuf(v: u64) -> Result<(), i32> {
    if v < MSIZE as u64 + MCLBYTES {
        return Err(EINVAL);
    }
    SB_MAX.store(v, Ordering::Relaxed);
    Ok(())
}

/// `sb_max_adj`: the largest reservation (`sb_max × MCLBYTES / (MSIZE + MCLBYTES)`).
pub fn sb_max_adj() -> u64 {
    maxsockbuf() * MCLBYTES / (MSIZE as u64 + MCLBYTES)
}

// ---------------------------------------------------------------------------
// Field access

/// `sb->sb_mb`.
///
/// # Safety
/// `sb` must be a live socket buffer.
pub(crate) unsafe fn sb_mb(sb: *mut sockbuf) -> *mut mbuf {
    // SAFETY: the classic-sockbuf variant of the union (all harness sockets).
    unsafe { (*sb).__bindgen_anon_1.__bindgen_anon_1.sb_mb }
}

unsafe fn set_sb_mb(sb: *mut sockbuf, m: *mut mbuf) {
    // SAFETY: as in `sb_mb`.
    unsafe { (*sb).__bindgen_anon_1.__bindgen_anon_1.sb_mb = m };
}

unsafe fn set_sb_mbtail(sb: *mut sockbuf, m: *mut mbuf) {
    // SAFETY: as in `sb_mb`.
    unsafe { (*sb).__bindgen_anon_1.__bindgen_anon_1.sb_mbtail = m };
}

unsafe fn sb_lastrecord(sb: *mut sockbuf) -> *mut mbuf {
    // SAFETY: as in `sb_mb`.
    unsafe { (*sb).__bindgen_anon_1.__bindgen_anon_1.sb_lastrecord }
}

unsafe fn set_sb_lastrecord(sb: *mut sockbuf, m: *mut mbuf) {
    // SAFETY: as in `sb_mb`.
    unsafe { (*sb).__bindgen_anon_1.__bindgen_anon_1.sb_lastrecord = m };
}

/// `sb->sb_mtx` (the compat mutex pointer SOCKBUF_LOCK goes through).
unsafe fn sb_mtx(sb: *mut sockbuf) -> *mut fbsd_sys::mtx {
    // SAFETY: as in `sb_mb`.
    unsafe { (*sb).__bindgen_anon_1.__bindgen_anon_1.sb_mtx }
}

/// Points `sb_mtx` of both buffers at the embedded mutexes (socreate for
/// protocols without `PR_SOCKBUF`).
pub(crate) fn init_mtx_pointers(so: *mut socket) {
    for which in [SO_RCV, SO_SND] {
        let sb = sobuf(so, which);
        // SAFETY: `so` is a fresh harness socket.
        unsafe { (*sb).__bindgen_anon_1.__bindgen_anon_1.sb_mtx = soeventmtx(so, which) };
    }
}

/// `sbspace(sb)`: `min(hiwat − ccc, mbmax − mbcnt)` computed in `int` (may be
/// negative).
///
/// # Safety
/// `sb` must be a live socket buffer.
pub unsafe fn sbspace(sb: *mut sockbuf) -> i64 {
    // SAFETY: per the function contract.
    unsafe {
        let bleft = ((*sb).sb_hiwat as i32).wrapping_sub((*sb).sb_ccc as i32);
        let mleft = ((*sb).sb_mbmax as i32).wrapping_sub((*sb).sb_mbcnt as i32);
        i64::from(bleft.min(mleft))
    }
}

/// `sb_notify(sb)`: does anybody need a wakeup?
unsafe fn sb_notify(sb: *mut sockbuf) -> bool {
    // SAFETY: `sb` is live.
    unsafe { (*sb).sb_flags & (SB_WAIT | SB_SEL | SB_ASYNC | SB_UPCALL | SB_AIO | SB_KNOTE) != 0 }
}

// ---------------------------------------------------------------------------
// Accounting

/// `sballoc(sb, m)`.
///
/// # Safety
/// `sb` is a live socket buffer and `m` a live mbuf.
pub(crate) unsafe fn sballoc(sb: *mut sockbuf, m: *mut mbuf) {
    // SAFETY: per the function contract.
    unsafe {
        let l = len(m) as u32;
        (*sb).sb_ccc = (*sb).sb_ccc.wrapping_add(l);
        (*sb).sb_acc = (*sb).sb_acc.wrapping_add(l);
        let t = mtype(m);
        if t != MT_DATA && t != MT_OOBDATA {
            (*sb).sb_ctl = (*sb).sb_ctl.wrapping_add(l);
        }
        (*sb).sb_mbcnt = (*sb).sb_mbcnt.wrapping_add(MSIZE as u32);
        if flags(m) & M_EXT != 0 {
            (*sb).sb_mbcnt = (*sb).sb_mbcnt.wrapping_add(ext_size(m));
        }
    }
}

/// `sbfree(sb, m)`.
///
/// # Safety
/// As for [`sballoc`].
pub(crate) unsafe fn sbfree(sb: *mut sockbuf, m: *mut mbuf) {
    // SAFETY: per the function contract.
    unsafe {
        let l = len(m) as u32;
        (*sb).sb_ccc = (*sb).sb_ccc.wrapping_sub(l);
        (*sb).sb_acc = (*sb).sb_acc.wrapping_sub(l);
        let t = mtype(m);
        if t != MT_DATA && t != MT_OOBDATA {
            (*sb).sb_ctl = (*sb).sb_ctl.wrapping_sub(l);
        }
        (*sb).sb_mbcnt = (*sb).sb_mbcnt.wrapping_sub(MSIZE as u32);
        if flags(m) & M_EXT != 0 {
            (*sb).sb_mbcnt = (*sb).sb_mbcnt.wrapping_sub(ext_size(m));
        }
    }
}

/// `m_clrprotoflags(m)` over the chain.
unsafe fn clrprotoflags(mut m: *mut mbuf) {
    while !m.is_null() {
        // SAFETY: the caller's live chain.
        unsafe {
            set_flags(m, flags(m) & !M_PROTOFLAGS);
            m = next(m);
        }
    }
}

/// `m_length(m)`: the bytes of a chain.
unsafe fn chain_len(mut m: *mut mbuf) -> (i64, *mut mbuf) {
    let mut n = 0i64;
    let mut last = std::ptr::null_mut();
    while !m.is_null() {
        // SAFETY: the caller's live chain.
        unsafe {
            n += i64::from(len(m));
            last = m;
            m = next(m);
        }
    }
    (n, last)
}

/// `SBLINKRECORD(sb, m0)`.
unsafe fn link_record(sb: *mut sockbuf, m0: *mut mbuf) {
    // SAFETY: `sb` is live and locked; `m0` is the new record head.
    unsafe {
        let last = sb_lastrecord(sb);
        if last.is_null() {
            set_sb_mb(sb, m0);
        } else {
            set_nextpkt(last, m0);
        }
        set_sb_lastrecord(sb, m0);
    }
}

/// Mbufs queued in `sb` (every record, every mbuf), added to `out`.
pub(crate) fn collect_mbufs(sb: *mut sockbuf, out: &mut HashSet<usize>) {
    // SAFETY: `sb` belongs to a live harness socket; its chains are the
    // buffer's own (checked live before reading the links).
    unsafe {
        let mut rec = sb_mb(sb);
        while !rec.is_null() && kmbuf::is_live(rec) {
            let mut m = rec;
            while !m.is_null() && kmbuf::is_live(m) {
                out.insert(m as usize);
                m = next(m);
            }
            rec = nextpkt(rec);
        }
    }
}

/// Number of records and bytes (`sb_ccc`) queued in `sb`.
pub(crate) fn records(sb: *mut sockbuf) -> usize {
    let mut n = 0;
    // SAFETY: as in `collect_mbufs`.
    unsafe {
        let mut rec = sb_mb(sb);
        while !rec.is_null() {
            n += 1;
            rec = nextpkt(rec);
        }
    }
    n
}

// ---------------------------------------------------------------------------
// Lock assertions

/// SOCKBUF_LOCK_ASSERT: reports a violation (H8) unless the buffer's mutex is
/// held by the current thread.
fn assert_locked(so: *mut socket, which: sb_which, what: &str, c: Caller) -> bool {
    if mtx_owned(soeventmtx(so, which)) {
        return true;
    }
    violation(format!(
        "{what} from {c}: the {} buffer mutex of socket {so:p} is not held (SOCK_{}BUF_LOCK required on entry)",
        which_name(which),
        if which == SO_RCV { "RECV" } else { "SEND" }
    ));
    false
}

/// The mutex `SOCKBUF_LOCK(sb)` takes (`sb->sb_mtx`), checked against the
/// embedded one.
fn sockbuf_mtx(so: *mut socket, which: sb_which, what: &str, c: Caller) -> *mut fbsd_sys::mtx {
    let emb = soeventmtx(so, which);
    // SAFETY: `so` is a live harness socket.
    let p = unsafe { sb_mtx(sobuf(so, which)) };
    if p != emb {
        violation(format!(
            "{what} from {c}: sb_mtx of the {} buffer of socket {so:p} is {p:p}, not the embedded mutex {emb:p}",
            which_name(which)
        ));
    }
    emb
}

/// How an entry point meets the buffer lock: the `_locked` forms assert the
/// caller holds it (SOCKBUF_LOCK_ASSERT); the plain forms take it around the
/// work (SOCKBUF_LOCK / SOCKBUF_UNLOCK).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Locking {
    Held,
    Take,
}

/// Runs `f` on the buffer `sb` of a live socket, its lock met as `lock` says;
/// `dflt` (after a violation) when `sb` is not such a buffer.
fn on_sockbuf<R>(
    sb: *mut sockbuf,
    lock: Locking,
    what: &str,
    c: Caller,
    dflt: R,
    f: impl FnOnce() -> R,
) -> R {
    let Some((so, which)) = check_sockbuf(sb, what, c) else {
        return dflt;
    };
    match lock {
        Locking::Held => {
            assert_locked(so, which, what, c);
            f()
        }
        Locking::Take => {
            let m = sockbuf_mtx(so, which, what, c);
            mtx_lock(m);
            let r = f();
            mtx_unlock(m);
            r
        }
    }
}

/// [`on_sockbuf`] for the functions that name the buffer by socket and side.
fn on_socket_buf<R>(
    so: *mut socket,
    which: sb_which,
    lock: Locking,
    what: &str,
    c: Caller,
    dflt: R,
    f: impl FnOnce() -> R,
) -> R {
    if !check_socket(so, what, c) {
        return dflt;
    }
    match lock {
        Locking::Held => {
            assert_locked(so, which, what, c);
            f()
        }
        Locking::Take => {
            mtx_lock(soeventmtx(so, which));
            let r = f();
            mtx_unlock(soeventmtx(so, which));
            r
        }
    }
}

// ---------------------------------------------------------------------------
// Appending

/// Checks a chain handed to an append function; false if it must not be used.
fn chain_ok(m: *mut mbuf, what: &str, c: Caller, need_pkthdr: bool) -> bool {
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
fn append_addr(
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
unsafe fn compress(sb: *mut sockbuf, mut m: *mut mbuf, mut n: *mut mbuf) {
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
fn append_record(sb: *mut sockbuf, m0: *mut mbuf) {
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
fn append(sb: *mut sockbuf, m: *mut mbuf, prflags: c_int) {
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

// ---------------------------------------------------------------------------
// Reservation

/// `sbreserve_locked(so, which, cc, td)`.
pub(crate) fn reserve_locked(so: *mut socket, which: sb_which, cc: u64) -> bool {
    if cc > sb_max_adj() {
        return false;
    }
    let sb = sobuf(so, which);
    // SAFETY: `so` is a live harness socket whose buffer mutex is held.
    unsafe {
        (*sb).sb_hiwat = cc as u32;
        (*sb).sb_mbmax = (cc * SB_EFFICIENCY).min(maxsockbuf()) as u32;
        if (*sb).sb_lowat > (*sb).sb_hiwat {
            (*sb).sb_lowat = (*sb).sb_hiwat;
        }
    }
    true
}

/// `sbrelease_locked(so, which)`: flush and give the reservation back.
pub(crate) fn release_locked(so: *mut socket, which: sb_which) {
    let sb = sobuf(so, which);
    flush_locked(sb);
    // SAFETY: `so` is a live harness socket.
    unsafe {
        (*sb).sb_hiwat = 0;
        (*sb).sb_mbmax = 0;
    }
}

/// `sbdestroy(so, which)`.
pub(crate) fn sbdestroy_impl(so: *mut socket, which: sb_which) {
    release_locked(so, which);
}

fn soreserve_impl(so: *mut socket, sndcc: u64, rcvcc: u64, c: Caller) -> c_int {
    if !check_socket(so, "soreserve", c) {
        return ENOBUFS;
    }
    let (snd, rcv) = (soeventmtx(so, SO_SND), soeventmtx(so, SO_RCV));
    let (hs, hr) = (mtx_owned(snd), mtx_owned(rcv));
    if hs || hr {
        violation(format!(
            "soreserve from {c}: called with the socket's {} buffer mutex held (soreserve takes the send \
             and then the receive buffer mutex itself; H28)",
            if hs && hr { "send and receive" } else if hs { "send" } else { "receive" }
        ));
    }
    if !hs {
        mtx_lock(snd);
    }
    if !hr {
        mtx_lock(rcv);
    }
    let mut err = 0;
    if !reserve_locked(so, SO_SND, sndcc) {
        err = ENOBUFS;
    } else if !reserve_locked(so, SO_RCV, rcvcc) {
        release_locked(so, SO_SND);
        err = ENOBUFS;
    } else {
        let (r, s) = (sobuf(so, SO_RCV), sobuf(so, SO_SND));
        // SAFETY: both buffer mutexes are held.
        unsafe {
            if (*r).sb_lowat == 0 {
                (*r).sb_lowat = 1;
            }
            if (*s).sb_lowat == 0 {
                (*s).sb_lowat = MCLBYTES as u32;
            }
            if (*s).sb_lowat > (*s).sb_hiwat {
                (*s).sb_lowat = (*s).sb_hiwat;
            }
        }
    }
    if !hr {
        mtx_unlock(rcv);
    }
    if !hs {
        mtx_unlock(snd);
    }
    err
}

/// `sbsetopt(so, sopt)`: SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT.
pub(crate) fn sbsetopt_impl(so: *mut socket, sopt: *mut sockopt, c: Caller) -> c_int {
    if !check_socket(so, "sbsetopt", c) {
        return EINVAL;
    }
    let mut optval: c_int = 0;
    // SAFETY: `sopt` is the caller's option; `optval` has 4 bytes.
    let e = unsafe {
        crate::kern::domain::abi::sooptcopyin(sopt, (&mut optval as *mut c_int).cast(), 4, 4)
    };
    if e != 0 {
        return e;
    }
    if optval < 1 {
        return EINVAL;
    }
    let cc = optval as u32;
    // SAFETY: `sopt` is valid (read by sooptcopyin above).
    let name = unsafe { (*sopt).sopt_name } as u32;
    let which = match name {
        fbsd_sys::SO_SNDBUF | fbsd_sys::SO_SNDLOWAT => SO_SND,
        fbsd_sys::SO_RCVBUF | fbsd_sys::SO_RCVLOWAT => SO_RCV,
        _ => return fbsd_sys::ENOPROTOOPT as c_int,
    };
    mtx_lock(so_lock(so));
    mtx_lock(soeventmtx(so, which));
    let sb = sobuf(so, which);
    let mut err = 0;
    match name {
        fbsd_sys::SO_SNDBUF | fbsd_sys::SO_RCVBUF => {
            if !reserve_locked(so, which, u64::from(cc)) {
                err = ENOBUFS;
            } else {
                // SAFETY: the buffer mutex is held.
                unsafe { (*sb).sb_flags &= !SB_AUTOSIZE };
            }
        }
        // SAFETY: the buffer mutex is held.
        _ => unsafe { (*sb).sb_lowat = cc.min((*sb).sb_hiwat) },
    }
    mtx_unlock(soeventmtx(so, which));
    mtx_unlock(so_lock(so));
    err
}

// ---------------------------------------------------------------------------
// Wakeups

/// Channel sleepers on a buffer wait on (`&sb->sb_acc`, as `sbwait`).
pub(crate) fn chan(sb: *mut sockbuf) -> usize {
    // SAFETY: only computes a field address.
    unsafe { std::ptr::addr_of!((*sb).sb_acc) as usize }
}

/// `sowakeup(so, which)`: entered with the buffer mutex held, returns with it
/// released. Wakes sleepers/selectors through the harness scheduler and runs
/// the buffer upcall (with the mutex held, `M_NOWAIT`).
fn sowakeup(so: *mut socket, which: sb_which, c: Caller) {
    let sb = sobuf(so, which);
    let m = soeventmtx(so, which);
    // SAFETY: `so` is live and its buffer mutex is held.
    let (upcall, arg) = unsafe {
        if (*sb).sb_flags & (SB_WAIT | SB_SEL) != 0 {
            (*sb).sb_flags &= !(SB_WAIT | SB_SEL);
            crate::kern::sched::wakeup_chan(chan(sb), false);
        }
        ((*sb).sb_upcall, (*sb).sb_upcallarg)
    };
    let mut ret = 0;
    if let Some(f) = upcall {
        // SAFETY: an upcall registered with soupcall_set: `int (*)(struct
        // socket *, void *, int)`, called with the buffer mutex held.
        ret = unsafe { f(so, arg, M_NOWAIT) };
        if !mtx_owned(m) {
            violation(format!(
                "{} buffer upcall of socket {so:p} returned without the buffer mutex it was called with (H19)",
                which_name(which)
            ));
            return;
        }
        if ret == SU_ISCONNECTED {
            if which == SO_SND {
                violation(format!(
                    "send buffer upcall of socket {so:p} returned SU_ISCONNECTED"
                ));
                ret = 0;
            } else {
                // soupcall_clear(so, SO_RCV)
                // SAFETY: the buffer mutex is held.
                unsafe {
                    (*sb).sb_upcall = None;
                    (*sb).sb_upcallarg = std::ptr::null_mut();
                    (*sb).sb_flags &= !SB_UPCALL;
                }
            }
        }
    }
    mtx_unlock(m);
    if ret == SU_ISCONNECTED {
        soisconnected_impl(so, c);
    }
}

/// `sorwakeup_locked(so)`: receive mutex held on entry, released on exit.
pub(crate) fn rwakeup_locked(so: *mut socket, c: Caller) {
    wakeup_locked(so, SO_RCV, "sorwakeup_locked", c);
}

/// `sowwakeup_locked(so)`: send mutex held on entry, released on exit.
pub(crate) fn wwakeup_locked(so: *mut socket, c: Caller) {
    wakeup_locked(so, SO_SND, "sowwakeup_locked", c);
}

fn wakeup_locked(so: *mut socket, which: sb_which, what: &str, c: Caller) {
    if !assert_locked(so, which, what, c) {
        return;
    }
    // SAFETY: `so` is live and its buffer mutex is held.
    if unsafe { sb_notify(sobuf(so, which)) } {
        sowakeup(so, which, c);
    } else {
        mtx_unlock(soeventmtx(so, which));
    }
}

/// `socantsendmore_locked(so)`.
pub(crate) fn cantsendmore_locked(so: *mut socket, c: Caller) {
    if !assert_locked(so, SO_SND, "socantsendmore_locked", c) {
        return;
    }
    // SAFETY: the send buffer mutex is held.
    unsafe { (*sobuf(so, SO_SND)).sb_state |= SBS_CANTSENDMORE };
    wwakeup_locked(so, c);
}

/// `socantrcvmore_locked(so)`.
pub(crate) fn cantrcvmore_locked(so: *mut socket, c: Caller) {
    if !assert_locked(so, SO_RCV, "socantrcvmore_locked", c) {
        return;
    }
    // SAFETY: the receive buffer mutex is held.
    unsafe { (*sobuf(so, SO_RCV)).sb_state |= SBS_CANTRCVMORE };
    rwakeup_locked(so, c);
}

fn overflow_locked(so: *mut socket, c: Caller) {
    if !assert_locked(so, SO_RCV, "soroverflow_locked", c) {
        return;
    }
    // SAFETY: `so` is live; so_options/so_rerror are socket fields.
    let rerror = unsafe { (*so).so_options } & SO_RERROR != 0;
    if rerror {
        // SAFETY: as above.
        unsafe { (*so).so_rerror = ENOBUFS as u16 };
        rwakeup_locked(so, c);
    } else {
        mtx_unlock(soeventmtx(so, SO_RCV));
    }
}

/// `sbwait(so, which)` with an optional bound for sockets without a timeout:
/// buffer mutex held on entry and on return.
pub(crate) fn wait(so: *mut socket, which: sb_which, bound: Option<u64>) -> c_int {
    let sb = sobuf(so, which);
    let m = soeventmtx(so, which);
    // SAFETY: the buffer mutex is held.
    let timeo = unsafe {
        (*sb).sb_flags |= SB_WAIT;
        (*sb).sb_timeo
    };
    let timeout = if timeo > 0 {
        Some(crate::kern::sched::sbt_to_ticks(timeo).max(1))
    } else {
        bound
    };
    mtx_unlock(m);
    let r = crate::kern::domain::sleep(chan(sb), timeout, "sbwait");
    mtx_lock(m);
    r
}

/// Marks the buffer as selected (`SB_SEL`) so the next wakeup reaches a poller.
pub(crate) fn set_sel(sb: *mut sockbuf) {
    // SAFETY: the caller holds the buffer mutex of a live socket.
    unsafe { (*sb).sb_flags |= SB_SEL };
}

// ---------------------------------------------------------------------------
// Exported kernel functions

/// `sbappendrecord[_locked](sb, m0)`.
fn appendrecord(sb: *mut sockbuf, m0: *mut mbuf, lock: Locking, what: &str, c: Caller) {
    on_sockbuf(sb, lock, what, c, (), || {
        if chain_ok(m0, what, c, false) {
            append_record(sb, m0);
        }
    });
}

/// `sbappend[_locked](sb, m, flags)`.
fn append_chain(sb: *mut sockbuf, m: *mut mbuf, fl: c_int, lock: Locking, what: &str, c: Caller) {
    on_sockbuf(sb, lock, what, c, (), || {
        if chain_ok(m, what, c, false) {
            append(sb, m, fl);
        }
    });
}

kernel_functions! {
    /// `int sbappendaddr_locked(struct sockbuf *, const struct sockaddr *, struct mbuf *, struct mbuf *)`
    fn sbappendaddr_locked(sb: *mut sockbuf, asa: *const sockaddr, m0: *mut mbuf, control: *mut mbuf) -> c_int [c] {
        let what = "sbappendaddr_locked";
        on_sockbuf(sb, Locking::Held, what, c, 0, || append_addr(sb, asa, m0, control, true, what, c))
    }

    /// `int sbappendaddr_nospacecheck_locked(struct sockbuf *, const struct sockaddr *, struct mbuf *, struct mbuf *)`
    fn sbappendaddr_nospacecheck_locked(sb: *mut sockbuf, asa: *const sockaddr, m0: *mut mbuf, control: *mut mbuf) -> c_int [c] {
        let what = "sbappendaddr_nospacecheck_locked";
        on_sockbuf(sb, Locking::Held, what, c, 0, || append_addr(sb, asa, m0, control, false, what, c))
    }

    /// `int sbappendaddr(struct sockbuf *, const struct sockaddr *, struct mbuf *, struct mbuf *)`
    fn sbappendaddr(sb: *mut sockbuf, asa: *const sockaddr, m0: *mut mbuf, control: *mut mbuf) -> c_int [c] {
        let what = "sbappendaddr";
        on_sockbuf(sb, Locking::Take, what, c, 0, || append_addr(sb, asa, m0, control, true, what, c))
    }

    /// `void sbappendrecord_locked(struct sockbuf *, struct mbuf *)`
    fn sbappendrecord_locked(sb: *mut sockbuf, m0: *mut mbuf) [c] {
        appendrecord(sb, m0, Locking::Held, "sbappendrecord_locked", c);
    }

    /// `void sbappendrecord(struct sockbuf *, struct mbuf *)`
    fn sbappendrecord(sb: *mut sockbuf, m0: *mut mbuf) [c] {
        appendrecord(sb, m0, Locking::Take, "sbappendrecord", c);
    }

    /// `void sbappend_locked(struct sockbuf *, struct mbuf *, int flags)`
    fn sbappend_locked(sb: *mut sockbuf, m: *mut mbuf, fl: c_int) [c] {
        append_chain(sb, m, fl, Locking::Held, "sbappend_locked", c);
    }

    /// `void sbappend(struct sockbuf *, struct mbuf *, int flags)`
    fn sbappend(sb: *mut sockbuf, m: *mut mbuf, fl: c_int) [c] {
        append_chain(sb, m, fl, Locking::Take, "sbappend", c);
    }

    /// `void sbflush_locked(struct sockbuf *)`
    fn sbflush_locked(sb: *mut sockbuf) [c] {
        on_sockbuf(sb, Locking::Held, "sbflush_locked", c, (), || flush_locked(sb));
    }

    /// `void sbflush(struct sockbuf *)`
    fn sbflush(sb: *mut sockbuf) [c] {
        on_sockbuf(sb, Locking::Take, "sbflush", c, (), || flush_locked(sb));
    }

    /// `void sbdroprecord_locked(struct sockbuf *)`
    fn sbdroprecord_locked(sb: *mut sockbuf) [c] {
        on_sockbuf(sb, Locking::Held, "sbdroprecord_locked", c, (), || droprecord_locked(sb));
    }

    /// `void sbdroprecord(struct sockbuf *)`
    fn sbdroprecord(sb: *mut sockbuf) [c] {
        on_sockbuf(sb, Locking::Take, "sbdroprecord", c, (), || droprecord_locked(sb));
    }

    /// `bool sbreserve_locked(struct socket *, sb_which, u_long, struct thread *)`
    fn sbreserve_locked(so: *mut socket, which: sb_which, cc: u_long, _td: *mut thread) -> bool [c] {
        on_socket_buf(so, which, Locking::Held, "sbreserve_locked", c, false, || reserve_locked(so, which, cc))
    }

    /// `void sbrelease_locked(struct socket *, sb_which)`
    fn sbrelease_locked(so: *mut socket, which: sb_which) [c] {
        on_socket_buf(so, which, Locking::Held, "sbrelease_locked", c, (), || release_locked(so, which));
    }

    /// `void sbrelease(struct socket *, sb_which)`
    fn sbrelease(so: *mut socket, which: sb_which) [c] {
        on_socket_buf(so, which, Locking::Take, "sbrelease", c, (), || release_locked(so, which));
    }

    /// `void sbdestroy(struct socket *, sb_which)`
    fn sbdestroy(so: *mut socket, which: sb_which) [c] {
        if check_socket(so, "sbdestroy", c) {
            sbdestroy_impl(so, which);
        }
    }

    /// `void sballoc(struct sockbuf *, struct mbuf *)`
    fn sballoc(sb: *mut sockbuf, m: *mut mbuf) [c] {
        let Some((so, which)) = check_sockbuf(sb, "sballoc", c) else {
            return;
        };
        assert_locked(so, which, "sballoc", c);
        if kmbuf::is_live(m) {
            // SAFETY: live buffer (locked) and live mbuf.
            unsafe { sballoc(sb, m) };
        } else {
            violation(format!("sballoc from {c}: mbuf {m:p} is not live"));
        }
    }

    /// `void sbfree(struct sockbuf *, struct mbuf *)`
    fn sbfree(sb: *mut sockbuf, m: *mut mbuf) [c] {
        let Some(_) = check_sockbuf(sb, "sbfree", c) else {
            return;
        };
        if kmbuf::is_live(m) {
            // SAFETY: live buffer and live mbuf.
            unsafe { sbfree(sb, m) };
        } else {
            violation(format!("sbfree from {c}: mbuf {m:p} is not live"));
        }
    }

    /// `void sorwakeup_locked(struct socket *)`
    fn sorwakeup_locked(so: *mut socket) [c] {
        if check_socket(so, "sorwakeup_locked", c) {
            rwakeup_locked(so, c);
        }
    }

    /// `void sowwakeup_locked(struct socket *)`
    fn sowwakeup_locked(so: *mut socket) [c] {
        if check_socket(so, "sowwakeup_locked", c) {
            wwakeup_locked(so, c);
        }
    }

    /// `void soroverflow_locked(struct socket *)`
    fn soroverflow_locked(so: *mut socket) [c] {
        if check_socket(so, "soroverflow_locked", c) {
            overflow_locked(so, c);
        }
    }

    /// `void soroverflow(struct socket *)`
    fn soroverflow(so: *mut socket) [c] {
        if check_socket(so, "soroverflow", c) {
            mtx_lock(soeventmtx(so, SO_RCV));
            overflow_locked(so, c);
        }
    }

    /// `void socantsendmore_locked(struct socket *)`
    fn socantsendmore_locked(so: *mut socket) [c] {
        if check_socket(so, "socantsendmore_locked", c) {
            cantsendmore_locked(so, c);
            note_state(so);
        }
    }

    /// `void socantsendmore(struct socket *)`
    fn socantsendmore(so: *mut socket) [c] {
        if check_socket(so, "socantsendmore", c) {
            mtx_lock(soeventmtx(so, SO_SND));
            cantsendmore_locked(so, c);
        }
    }

    /// `void socantrcvmore_locked(struct socket *)`
    fn socantrcvmore_locked(so: *mut socket) [c] {
        if check_socket(so, "socantrcvmore_locked", c) {
            cantrcvmore_locked(so, c);
        }
    }

    /// `void socantrcvmore(struct socket *)`
    fn socantrcvmore(so: *mut socket) [c] {
        if check_socket(so, "socantrcvmore", c) {
            mtx_lock(soeventmtx(so, SO_RCV));
            cantrcvmore_locked(so, c);
        }
    }

    /// `int soreserve(struct socket *, u_long sndcc, u_long rcvcc)`
    fn soreserve(so: *mut socket, sndcc: u_long, rcvcc: u_long) -> c_int [c] {
        soreserve_impl(so, sndcc, rcvcc, c)
    }

    /// `int sbsetopt(struct socket *, struct sockopt *)`
    fn sbsetopt(so: *mut socket, sopt: *mut sockopt) -> c_int [c] {
        sbsetopt_impl(so, sopt, c)
    }

    /// `int sbwait(struct socket *, sb_which)`
    fn sbwait(so: *mut socket, which: sb_which) -> c_int [c] {
        if !check_socket(so, "sbwait", c) || !assert_locked(so, which, "sbwait", c) {
            return EINVAL;
        }
        wait(so, which, None)
    }
}

/// Exports the socket-buffer functions.
pub fn register(ex: &mut Exports) {
    abi::register(ex);
}

/// Counters of one socket buffer (for tests and diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SbStats {
    pub ccc: u32,
    pub acc: u32,
    pub ctl: u32,
    pub mbcnt: u32,
    pub hiwat: u32,
    pub lowat: u32,
    pub mbmax: u32,
    pub state: i16,
    pub records: usize,
    pub space: i64,
}

/// The counters of `so`'s buffer `which` (`SO_RCV` / `SO_SND`).
pub fn stats(so: *mut socket, which: sb_which) -> SbStats {
    if !crate::kern::domain::is_socket(so) {
        return SbStats::default();
    }
    let sb = sobuf(so, which);
    // SAFETY: `so` is a live harness socket.
    unsafe {
        SbStats {
            ccc: (*sb).sb_ccc,
            acc: (*sb).sb_acc,
            ctl: (*sb).sb_ctl,
            mbcnt: (*sb).sb_mbcnt,
            hiwat: (*sb).sb_hiwat,
            lowat: (*sb).sb_lowat,
            mbmax: (*sb).sb_mbmax,
            state: (*sb).sb_state,
            records: records(sb),
            space: sbspace(sb),
        }
    }
}
