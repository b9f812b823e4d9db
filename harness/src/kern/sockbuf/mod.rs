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
//! Files: `mod.rs` field access, accounting and lock checks; `append.rs`
//! the record queue; `reserve.rs` limits; `wakeup.rs` wakeups and state
//! changes; `entries.rs` the exported functions and the Rust API.
//!
//! Simplification: `sbcompress` does not coalesce small mbufs (it only drops
//! empty ones, like the kernel), so `sb_mbcnt` can be higher than FreeBSD's
//! for stream appends of many tiny mbufs; datagram records (`sbappendaddr`)
//! are never compressed by FreeBSD either.

mod append;
mod entries;
mod reserve;
mod wakeup;

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
pub(crate) use append::*;
pub use entries::*;
pub(crate) use reserve::*;
pub use wakeup::set_drop_wakeups;
pub(crate) use wakeup::*;

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
