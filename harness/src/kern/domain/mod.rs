//! Protocol families registered by loaded modules (`domain_add`,
//! `domain_remove`, `protosw_register`, ...) and the socket layer above them:
//! `struct socket` objects with the FreeBSD 15 layout, the socket state
//! transitions the protocol side calls (`soisconnected`, `soisdisconnected`,
//! `sorele_locked`, `sodupsockaddr`, `sooptcopyin/out`), and the system-call
//! side user-space clients use ([`socket`], [`bind`], [`connect`], [`sendto`],
//! [`recvfrom`], [`getsockname`], [`setsockopt`], [`close`], ...) — this is how
//! the scenario runner's ngctl emulation talks to `ng_socket.ko`, exactly as
//! libnetgraph does. Socket buffers are in [`crate::kern::sockbuf`].
//!
//! Semantics follow FreeBSD 15 `uipc_domain.c`, `uipc_socket.c`,
//! `uipc_syscalls.c` (read for facts; independent implementation) and the
//! contracts of `docs/kernel-contracts.md` §2.3, §3 and rules H4, H7–H9,
//! H26–H30. Every broken contract is a [`violation`]; memory the protocol
//! hands back wrongly is never reused (freed sockets are poisoned and
//! quarantined).
//!
//! State is per OS thread (one harness process runs one scenario on one OS
//! thread; parallel unit tests stay independent).
//!
//! Files: `mod.rs` state and field access; `proto.rs` domains and protocol
//! switches; `sockets.rs` socket objects and their state transitions;
//! `locks.rs` the socket and buffer locks; `syscalls/` the system-call side
//! and the generic protocol methods; `api.rs` the Rust API; `entries.rs` the
//! exported functions.

pub(crate) mod locks;
mod sockctl;
mod syscalls;

mod api;
mod entries;
mod proto;
mod sockets;

use std::alloc::Layout;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_int, c_void, CStr};
use std::mem::size_of;
use std::ptr::{self, null_mut};
use std::sync::Once;

use fbsd_sys::{
    domain, mtx, protosw, sb_which, sockaddr, sockbuf, socket, sockopt, sx, vnet, SO_RCV, SO_SND,
};

use self::locks::{mtx_destroy, mtx_init, mtx_lock, mtx_owned, mtx_unlock, sx_destroy, sx_init};
use crate::exports::Exports;
use crate::kern::entry::kernel_functions;
use crate::kern::fault::Caller;
use crate::kern::klocal::kernel_local;
use crate::kern::sockbuf as sbuf;
use crate::kern::thread::{curthread, set_curvnet};
use crate::kern::{kernel_panic, malloc, violation};

pub use self::sockctl::{fionread, shutdown};
pub use self::syscalls::{
    bind, close, close_all, connect, getpeername, getsockname, getsockopt, getsockopt_int,
    poll_readable, readable, recvfrom, sendmsg, sendto, set_blocking_bound, set_nonblocking,
    setsockopt, setsockopt_int, socket, Received,
};
pub use api::*;
pub use entries::*;
use proto::*;
pub use sockets::*;

/// A socket descriptor of the harness's single process-wide descriptor table.
pub type Fd = i32;
/// An errno value (FreeBSD numbering).
pub type Errno = i32;

pub(crate) const EINVAL: c_int = fbsd_sys::EINVAL as c_int;
pub(crate) const EBADF: c_int = fbsd_sys::EBADF as c_int;
pub(crate) const ENOBUFS: c_int = fbsd_sys::ENOBUFS as c_int;
pub(crate) const EOPNOTSUPP: c_int = fbsd_sys::EOPNOTSUPP as c_int;
pub(crate) const ENOTCONN: c_int = fbsd_sys::ENOTCONN as c_int;
pub(crate) const EALREADY: c_int = fbsd_sys::EALREADY as c_int;
pub(crate) const EEXIST: c_int = fbsd_sys::EEXIST as c_int;
pub(crate) const ENOMEM: c_int = fbsd_sys::ENOMEM as c_int;
pub(crate) const EAFNOSUPPORT: c_int = fbsd_sys::EAFNOSUPPORT as c_int;
pub(crate) const EPROTOTYPE: c_int = fbsd_sys::EPROTOTYPE as c_int;
pub(crate) const EPROTONOSUPPORT: c_int = fbsd_sys::EPROTONOSUPPORT as c_int;
pub(crate) const EWOULDBLOCK: c_int = fbsd_sys::EWOULDBLOCK as c_int;

pub(crate) const SS_ISCONNECTED: i16 = fbsd_sys::SS_ISCONNECTED as i16;
pub(crate) const SS_ISCONNECTING: i16 = fbsd_sys::SS_ISCONNECTING as i16;
pub(crate) const SS_ISDISCONNECTING: i16 = fbsd_sys::SS_ISDISCONNECTING as i16;
pub(crate) const SS_ISDISCONNECTED: i16 = fbsd_sys::SS_ISDISCONNECTED as i16;
pub(crate) const SS_NBIO: i16 = fbsd_sys::SS_NBIO as i16;
pub(crate) const SS_ASYNC: i16 = fbsd_sys::SS_ASYNC as i16;
/// The `so_state` bits FreeBSD 15 defines (`SS_ISCONFIRMING`, 0x400, is gone).
const SS_VALID: i16 =
    SS_ISCONNECTED | SS_ISCONNECTING | SS_ISDISCONNECTING | SS_NBIO | SS_ASYNC | SS_ISDISCONNECTED;

/// Model ticks a blocking receive or send waits when the socket has no
/// timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO`), before giving up with EWOULDBLOCK.
pub const DEFAULT_BLOCKING_BOUND: u64 = 60_000;

/// Alignment of harness-allocated sockets (a cache line, like the UMA zone).
const SOCKET_ALIGN: usize = 64;

// The FreeBSD 15 amd64 layout the modules are compiled against.
const _: () = {
    assert!(size_of::<socket>() == 1024);
    assert!(size_of::<sockbuf>() == 208);
    assert!(size_of::<protosw>() == 264);
    assert!(size_of::<domain>() == 80);
};

// ---------------------------------------------------------------------------
// State

#[derive(Clone, Debug)]
struct Dom {
    ptr: usize,
    family: i32,
    name: String,
}

pub(crate) struct Sock {
    pub(crate) serial: u64,
    pub(crate) family: i32,
    pub(crate) ty: i32,
    pub(crate) protocol: i32,
    /// The protocol's memory is gone (module unloaded): never touch `so_proto`.
    pub(crate) dead: bool,
    pub(crate) fd: Option<Fd>,
    /// pr_attach succeeded (pr_detach is owed).
    pub(crate) attached: bool,
    pub(crate) last_state: i16,
}

struct Pending {
    mbufs: Vec<usize>,
    what: String,
}

struct State {
    /// Registered domains, list head first (`SLIST_INSERT_HEAD`).
    domains: Vec<Dom>,
    /// Live sockets (harness-allocated `struct socket`).
    sockets: HashMap<usize, Sock>,
    /// Freed socket memory, poisoned and kept (never reused): (address, serial).
    freed: Vec<(usize, u64)>,
    fds: BTreeMap<Fd, usize>,
    next_fd: Fd,
    serial: u64,
    gencnt: u64,
    /// Mbufs handed to a `pr_send` that returned 0 and were still live then.
    pending: Vec<Pending>,
    source: bool,
    blocking_bound: Option<u64>,
}

impl State {
    fn new() -> State {
        State {
            domains: Vec::new(),
            sockets: HashMap::new(),
            freed: Vec::new(),
            fds: BTreeMap::new(),
            next_fd: 3,
            serial: 0,
            gencnt: 0,
            pending: Vec::new(),
            source: false,
            blocking_bound: Some(DEFAULT_BLOCKING_BOUND),
        }
    }
}

kernel_local! {
    static STATE: RefCell<State> = RefCell::new(State::new());
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

// ---------------------------------------------------------------------------
// Field access helpers

/// `&so->so_rcv`.
pub(crate) fn so_rcv(so: *mut socket) -> *mut sockbuf {
    // SAFETY: only computes a field address inside `so`.
    unsafe { ptr::addr_of_mut!((*so).__bindgen_anon_1.__bindgen_anon_1.so_rcv) }
}

/// `&so->so_snd`.
pub(crate) fn so_snd(so: *mut socket) -> *mut sockbuf {
    // SAFETY: only computes a field address inside `so`.
    unsafe { ptr::addr_of_mut!((*so).__bindgen_anon_1.__bindgen_anon_1.so_snd) }
}

/// `sobuf(so, which)`.
pub(crate) fn sobuf(so: *mut socket, which: sb_which) -> *mut sockbuf {
    if which == SO_RCV {
        so_rcv(so)
    } else {
        so_snd(so)
    }
}

/// `soeventmtx(so, which)`: the embedded buffer mutex.
pub(crate) fn soeventmtx(so: *mut socket, which: sb_which) -> *mut mtx {
    // SAFETY: only computes field addresses inside `so`.
    unsafe {
        if which == SO_RCV {
            ptr::addr_of_mut!((*so).so_rcv_mtx)
        } else {
            ptr::addr_of_mut!((*so).so_snd_mtx)
        }
    }
}

/// `&so->so_lock`.
pub(crate) fn so_lock(so: *mut socket) -> *mut mtx {
    // SAFETY: only computes a field address inside `so`.
    unsafe { ptr::addr_of_mut!((*so).so_lock) }
}

fn so_sx(so: *mut socket, which: sb_which) -> *mut sx {
    // SAFETY: only computes field addresses inside `so`.
    unsafe {
        if which == SO_RCV {
            ptr::addr_of_mut!((*so).so_rcv_sx)
        } else {
            ptr::addr_of_mut!((*so).so_snd_sx)
        }
    }
}

pub(crate) fn which_name(which: sb_which) -> &'static str {
    if which == SO_RCV {
        "receive"
    } else {
        "send"
    }
}

/// Reads `so->so_state`.
pub(crate) fn state_of(so: *mut socket) -> i16 {
    // SAFETY: `so` is a live harness socket (callers check).
    unsafe { ptr::addr_of!((*so).so_state).read_volatile() }
}

/// True if `so` is a live socket of this layer.
pub(crate) fn is_socket(so: *const socket) -> bool {
    with(|s| s.sockets.contains_key(&(so as usize)))
}

fn was_freed(p: usize) -> Option<u64> {
    with(|s| {
        s.freed
            .iter()
            .find(|(a, _)| p >= *a && p < *a + size_of::<socket>())
            .map(|x| x.1)
    })
}

/// Checks that `so` is a live socket for `what`; reports a violation if not.
pub(crate) fn check_socket(so: *mut socket, what: &str, c: Caller) -> bool {
    if so.is_null() {
        violation(format!("{what}(NULL) from {c}: NULL socket"));
        return false;
    }
    if is_socket(so) {
        check_state_bits(so, what, c);
        return true;
    }
    match was_freed(so as usize) {
        Some(n) => violation(format!(
            "{what}({so:p}) from {c}: use after free of socket #{n} (freed by the socket layer)"
        )),
        None => violation(format!(
            "{what}({so:p}) from {c}: not a socket of the harness socket layer"
        )),
    }
    false
}

/// The socket whose `so_rcv`/`so_snd` is `sb`, if any.
pub(crate) fn sock_of_sb(sb: *mut sockbuf) -> Option<(*mut socket, sb_which)> {
    let base = std::mem::offset_of!(socket, __bindgen_anon_1);
    let rcv_off = base + std::mem::offset_of!(fbsd_sys::socket__bindgen_ty_1__bindgen_ty_1, so_rcv);
    let snd_off = base + std::mem::offset_of!(fbsd_sys::socket__bindgen_ty_1__bindgen_ty_1, so_snd);
    let a = sb as usize;
    with(|s| {
        if let Some(so) = a
            .checked_sub(rcv_off)
            .filter(|so| s.sockets.contains_key(so))
        {
            return Some((so as *mut socket, SO_RCV));
        }
        a.checked_sub(snd_off)
            .filter(|so| s.sockets.contains_key(so))
            .map(|so| (so as *mut socket, SO_SND))
    })
}

/// Like [`sock_of_sb`], reporting a violation for a sockbuf that belongs to no
/// live socket.
pub(crate) fn check_sockbuf(
    sb: *mut sockbuf,
    what: &str,
    c: Caller,
) -> Option<(*mut socket, sb_which)> {
    if sb.is_null() {
        violation(format!("{what}(NULL) from {c}: NULL socket buffer"));
        return None;
    }
    let r = sock_of_sb(sb);
    if r.is_none() {
        match was_freed(sb as usize) {
            Some(n) => violation(format!(
                "{what}({sb:p}) from {c}: use after free: socket buffer of freed socket #{n}"
            )),
            None => violation(format!(
                "{what}({sb:p}) from {c}: not a socket buffer of a harness socket"
            )),
        }
    }
    r
}

/// H26: `SS_ISCONFIRMING` and other unknown bits do not exist in FreeBSD 15.
fn check_state_bits(so: *mut socket, what: &str, c: Caller) {
    let st = state_of(so);
    let bad = st & !SS_VALID;
    let changed = with(|s| {
        let k = s.sockets.get_mut(&(so as usize))?;
        let old = k.last_state;
        k.last_state = st;
        Some(old != st)
    });
    if bad != 0 && changed == Some(true) {
        let extra = if bad & 0x400 != 0 {
            " (SS_ISCONFIRMING was removed in FreeBSD 15)"
        } else {
            ""
        };
        violation(format!(
            "{what}({so:p}) from {c}: so_state {st:#x} has undefined bits {bad:#x}{extra}"
        ));
    }
}

/// Records the state the socket layer itself just wrote.
pub(crate) fn note_state(so: *mut socket) {
    let st = state_of(so);
    with(|s| {
        if let Some(k) = s.sockets.get_mut(&(so as usize)) {
            k.last_state = st;
        }
    });
}

/// The protocol switch of `so`, unless its module's memory is gone.
pub(crate) fn proto_of(so: *mut socket) -> Option<*mut protosw> {
    let dead = with(|s| s.sockets.get(&(so as usize)).map(|k| k.dead))?;
    if dead {
        return None;
    }
    // SAFETY: `so` is a live harness socket.
    Some(unsafe { (*so).so_proto })
}

/// `pr_flags` of `so`'s protocol (0 if the protocol is gone).
pub(crate) fn pr_flags(so: *mut socket) -> i32 {
    match proto_of(so) {
        // SAFETY: the protosw of a live socket of a registered domain.
        Some(p) => i32::from(unsafe { (*p).pr_flags }),
        None => 0,
    }
}

/// Runs `f` with `curvnet` set to the socket's vnet (`CURVNET_SET`).
pub(crate) fn with_so_vnet<R>(so: *mut socket, f: impl FnOnce() -> R) -> R {
    // SAFETY: `so` is a live harness socket.
    let v = unsafe { (*so).so_vnet };
    let old = set_curvnet(v);
    let r = f();
    set_curvnet(old);
    r
}

/// Calls into the protocol and checks it returned without a mutex held or a
/// critical section entered that it did not have before.
pub(crate) fn call_proto<R>(what: &str, so: *mut socket, f: impl FnOnce() -> R) -> R {
    let before = crate::kern::lock::held_names();
    let crit = crate::kern::thread::critnest(curthread());
    let r = with_so_vnet(so, f);
    let after = crate::kern::lock::held_names();
    if after.len() > before.len() {
        let extra: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
        violation(format!(
            "{what}(so {so:p}) returned with mutex(es) {extra:?} held"
        ));
    }
    let crit2 = crate::kern::thread::critnest(curthread());
    if crit2 != crit {
        violation(format!(
            "{what}(so {so:p}) returned with td_critnest {crit2} (was {crit}): unbalanced critical section"
        ));
    }
    note_state(so);
    r
}

/// `wakeup(chan)` into the harness scheduler.
pub(crate) fn wakeup(chan: usize) {
    crate::kern::sched::wakeup_chan(chan, false);
}

/// `sleep_on(chan)` keeping the current thread across the event loop.
pub(crate) fn sleep(chan: usize, timeout: Option<u64>, wmesg: &str) -> c_int {
    crate::kern::lock::assert_may_sleep(wmesg);
    let td = curthread();
    let r = crate::kern::sched::sleep_on(chan, timeout, wmesg);
    crate::kern::thread::set_curthread(td);
    r
}

/// The bound for blocking waits without a socket timeout.
pub(crate) fn blocking_bound() -> Option<u64> {
    with(|s| s.blocking_bound)
}

pub(crate) fn set_bound(b: Option<u64>) {
    with(|s| s.blocking_bound = b);
}
