//! socket(9), consumer side, for the families the harness backs with real
//! Linux sockets on the loopback interface: `PF_INET` and `PF_INET6`
//! (TCP, UDP, UDP-Lite, raw IP) and `PF_LOCAL` (stream, datagram,
//! seqpacket). This is what `ng_ksocket.ko` calls: `socreate`, `sobind`,
//! `soconnect`, `solisten`, `solisten_dequeue`, `soaccept`, `sosend`,
//! `soreceive`, `soclose`, `sosetopt`, `sogetopt`, `sosockaddr`,
//! `sopeeraddr`, `soshutdown`, `soupcall_set`, `soupcall_clear`,
//! `solisten_upcall_set`.
//!
//! Every `struct socket` has the real FreeBSD 15 layout and is kept true for
//! the fields module code reads and writes inline (`so_state`,
//! `so_options`, `so_type`, `so_error`, `so_count`, `so_cred`, `so_vnet`,
//! `so_proto`, `sb_state`, the embedded mutexes, `sol_upcall`...). Behind it
//! is a non-blocking Linux socket; FreeBSD semantics are emulated where the
//! two systems differ observably (errnos, protocol lookup, `sosend` space
//! checks, `soreceive` forms, option encodings, socket-buffer limits).
//! Semantics follow FreeBSD 15 `uipc_socket.c`, `uipc_sockbuf.c`,
//! `uipc_domain.c`, `udp_usrreq.c`, `tcp_usrreq.c`, `uipc_usrreq.c` (read for
//! facts, independent implementation) and `docs/kernel-contracts.md` §2, H1–H3,
//! H5, H6, H18–H25, H34.
//!
//! Network events reach FreeBSD-visible state through an event source of
//! the harness loop ([`crate::kern::sched::add_source`]): the Linux
//! descriptors sit in an edge-triggered epoll set; each event updates the
//! socket (connect completion, `so_error`, `SBS_CANTRCVMORE`, the accept
//! queue) and runs the registered upcall exactly as `sowakeup()` /
//! `solisten_wakeup()` would (buffer mutex or listen lock held, `M_NOWAIT`),
//! on a "netisr" kernel thread. An idle hook blocks in `epoll_wait` for a
//! bounded time when nothing else is runnable.
//!
//! Sockets of other families (a module-registered domain such as
//! `PF_NETGRAPH`) are passed to the handler installed with
//! [`set_foreign_family_handler`]; without one, `socreate` fails with
//! `EAFNOSUPPORT` for them.
//!
//! State is per OS thread, like the scheduler's.

mod addr;
mod ctl;
mod errno;
mod events;
pub mod ifaddr;
mod io;
mod ops;
mod proto;
mod sockopt;

use crate::kern::klocal::kernel_local;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::offset_of;
use std::ptr::addr_of_mut;
use std::sync::{Mutex, OnceLock};

use fbsd_sys::{
    mtx, sb_which, sockaddr, sockbuf, socket, socket__bindgen_ty_1__bindgen_ty_1,
    socket__bindgen_ty_1__bindgen_ty_2, thread, ucred, uio, SO_RCV, SO_SND,
};

use crate::exports::Exports;
use crate::kern::{lock, thread as kthread, violation};

pub use addr::{sockaddr_in, sockaddr_in6, sockaddr_un};
pub use errno::linux_to_fbsd;
pub use events::{set_idle_wait_ms, IDLE_ACTIVE_MS, IDLE_QUIET_MS};
pub use proto::Kind;
pub use sockopt::{SO_HARNESS_LONG, SO_HARNESS_LONG_DEFAULT, SO_HARNESS_LONG_MAX};

// ---------------------------------------------------------------------------
// Constants (FreeBSD values)

pub(crate) const SS_ISCONNECTED: i16 = fbsd_sys::SS_ISCONNECTED as i16;
pub(crate) const SS_ISCONNECTING: i16 = fbsd_sys::SS_ISCONNECTING as i16;
pub(crate) const SS_ISDISCONNECTING: i16 = fbsd_sys::SS_ISDISCONNECTING as i16;
pub(crate) const SS_ISDISCONNECTED: i16 = fbsd_sys::SS_ISDISCONNECTED as i16;
pub(crate) const SS_NBIO: i16 = fbsd_sys::SS_NBIO as i16;
pub(crate) const SBS_CANTSENDMORE: i16 = fbsd_sys::SBS_CANTSENDMORE as i16;
pub(crate) const SBS_CANTRCVMORE: i16 = fbsd_sys::SBS_CANTRCVMORE as i16;
pub(crate) const SB_UPCALL: i16 = fbsd_sys::SB_UPCALL as i16;
pub(crate) const SO_ACCEPTCONN: c_int = fbsd_sys::SO_ACCEPTCONN as c_int;
pub(crate) const M_NOWAIT: c_int = fbsd_sys::M_NOWAIT as c_int;
pub(crate) const SU_OK: c_int = fbsd_sys::SU_OK as c_int;
pub(crate) const SU_ISCONNECTED: c_int = fbsd_sys::SU_ISCONNECTED as c_int;
pub(crate) const MSG_DONTWAIT: c_int = fbsd_sys::MSG_DONTWAIT as c_int;
pub(crate) const MSG_NBIO: c_int = fbsd_sys::MSG_NBIO as c_int;
pub(crate) const MSG_TRUNC: c_int = fbsd_sys::MSG_TRUNC as c_int;
pub(crate) const MSG_EOR: c_int = fbsd_sys::MSG_EOR as c_int;
pub(crate) const MSG_OOB: c_int = fbsd_sys::MSG_OOB as c_int;
pub(crate) const MSG_PEEK: c_int = fbsd_sys::MSG_PEEK as c_int;
/// `SOCK_NONBLOCK` (accept4 flag honoured by `solisten_dequeue`).
pub(crate) const SOCK_NONBLOCK: c_int = fbsd_sys::SOCK_NONBLOCK as c_int;
/// `ACCEPT4_INHERIT` (sys/socket.h; not in the generated bindings).
pub(crate) const ACCEPT4_INHERIT: c_int = 0x1;
/// `kern.ipc.soacceptqueue` default (`SOMAXCONN`).
pub(crate) const SOMAXCONN: c_int = fbsd_sys::SOMAXCONN as c_int;
/// `sb_max` (`kern.ipc.maxsockbuf` default, `SB_MAX`).
pub(crate) const SB_MAX: u64 = fbsd_sys::SB_MAX as u64;
/// `sb_max_adj` = `BUF_MAX_ADJ(sb_max)` = sb_max * MCLBYTES / (MSIZE + MCLBYTES).
pub(crate) const SB_MAX_ADJ: u64 =
    SB_MAX * fbsd_sys::MCLBYTES as u64 / (fbsd_sys::MSIZE as u64 + fbsd_sys::MCLBYTES as u64);

/// Default socket-buffer reservations (send, receive) of each kind, as the
/// protocols' attach routines pass them to `soreserve()`.
pub(crate) fn default_space(kind: Kind) -> (u32, u32) {
    match kind {
        // net.inet.tcp.sendspace / recvspace
        Kind::Tcp => (32 * 1024, 64 * 1024),
        // net.inet.udp.maxdgram / recvspace (40 * (1024 + sizeof(sockaddr_in6)))
        Kind::Udp | Kind::UdpLite => (9216, 40 * (1024 + 28)),
        // net.inet.raw.maxdgram / recvspace
        Kind::Raw => (9216, 9216),
        // net.local.stream.sendspace / recvspace (PIPSIZ)
        Kind::LocalStream => (8192, 8192),
        // net.local.dgram.recvspace for both buffers
        Kind::LocalDgram => (16 * 1024, 16 * 1024),
        // net.local.seqpacket.maxseqpacket / recvspace
        Kind::LocalSeqpacket => (8192, 8192),
    }
}

/// `net.local.dgram.maxdgram`: the largest local datagram.
pub(crate) const LOCAL_MAXDGRAM: usize = 8 * 1024;

// ---------------------------------------------------------------------------
// The lock model, reached through its exported entry points.
// TODO(integrate): replace with a kern::lock Rust API (mtx_lock/mtx_unlock/
// mtx_init/mtx_destroy) once it exists.

type MtxInitFn = unsafe extern "C" fn(*mut usize, *const c_char, *const c_char, c_int);
type MtxOpFn = unsafe extern "C" fn(*mut usize, c_int, *const c_char, c_int);
type MtxDestroyFn = unsafe extern "C" fn(*mut usize);

struct LockFns {
    init: MtxInitFn,
    destroy: MtxDestroyFn,
    lock: MtxOpFn,
    unlock: MtxOpFn,
}

fn lock_fns() -> &'static LockFns {
    static F: OnceLock<LockFns> = OnceLock::new();
    F.get_or_init(|| {
        let mut ex = Exports::new();
        lock::register(&mut ex);
        let get = |n: &str| {
            ex.get(n)
                .unwrap_or_else(|| panic!("kern::lock does not export {n}"))
                .addr
        };
        // SAFETY: kern::lock exports these names for host functions with
        // exactly these signatures (`_mtx_init(c, name, type, opts)`,
        // `_mtx_destroy(c)`, `__mtx_{lock,unlock}_flags(c, opts, file, line)`).
        unsafe {
            LockFns {
                init: std::mem::transmute::<usize, MtxInitFn>(get("_mtx_init")),
                destroy: std::mem::transmute::<usize, MtxDestroyFn>(get("_mtx_destroy")),
                lock: std::mem::transmute::<usize, MtxOpFn>(get("__mtx_lock_flags")),
                unlock: std::mem::transmute::<usize, MtxOpFn>(get("__mtx_unlock_flags")),
            }
        }
    })
}

/// The `mtx_lock` word of a mutex (the cookie the mutex functions take).
pub(crate) fn mtx_word(m: *mut mtx) -> *mut usize {
    (m as usize + offset_of!(mtx, mtx_lock)) as *mut usize
}

const FILE: &CStr = c"kern/inet";

pub(crate) fn mtx_init(m: *mut mtx, name: &'static CStr, opts: c_int) {
    // SAFETY: `m` is a mutex embedded in a live harness socket.
    unsafe { (lock_fns().init)(mtx_word(m), name.as_ptr(), std::ptr::null(), opts) }
}

pub(crate) fn mtx_destroy(m: *mut mtx) {
    // SAFETY: as above.
    unsafe { (lock_fns().destroy)(mtx_word(m)) }
}

pub(crate) fn mtx_lock(m: *mut mtx) {
    // SAFETY: as above.
    unsafe { (lock_fns().lock)(mtx_word(m), 0, FILE.as_ptr(), 0) }
}

pub(crate) fn mtx_unlock(m: *mut mtx) {
    // SAFETY: as above.
    unsafe { (lock_fns().unlock)(mtx_word(m), 0, FILE.as_ptr(), 0) }
}

/// Owner thread of a mutex (0 when free), from its lock word.
pub(crate) fn mtx_owner(m: *mut mtx) -> usize {
    // SAFETY: `m` is a mutex embedded in a live socket.
    let w = unsafe { mtx_word(m).read_volatile() };
    if w == fbsd_sys::MTX_DESTROYED as usize {
        0
    } else {
        w & !(fbsd_sys::MTX_FLAGMASK as usize)
    }
}

/// `mtx_owned(m)`.
pub(crate) fn mtx_owned(m: *mut mtx) -> bool {
    mtx_owner(m) == kthread::curthread() as usize
}

// ---------------------------------------------------------------------------
// struct socket field access

/// `&so->so_rcv` / `&so->so_snd`.
pub(crate) fn sb(so: *mut socket, which: sb_which) -> *mut sockbuf {
    // SAFETY: only computes field addresses of a socket the caller owns.
    unsafe {
        let u = addr_of_mut!((*so).__bindgen_anon_1.__bindgen_anon_1);
        if which == SO_RCV {
            addr_of_mut!((*u).so_rcv)
        } else {
            addr_of_mut!((*u).so_snd)
        }
    }
}

/// The non-listening union member (`so_list`, `so_listen`, `so_qstate`).
pub(crate) fn conn_part(so: *mut socket) -> *mut socket__bindgen_ty_1__bindgen_ty_1 {
    // SAFETY: only computes a field address.
    unsafe { addr_of_mut!((*so).__bindgen_anon_1.__bindgen_anon_1) }
}

/// The listening union member (`sol_*`).
pub(crate) fn sol(so: *mut socket) -> *mut socket__bindgen_ty_1__bindgen_ty_2 {
    // SAFETY: only computes a field address.
    unsafe { addr_of_mut!((*so).__bindgen_anon_1.__bindgen_anon_2) }
}

/// `SOCK_MTX(so)` (also `SOLISTEN_LOCK`).
pub(crate) fn so_lock(so: *mut socket) -> *mut mtx {
    // SAFETY: only computes a field address.
    unsafe { addr_of_mut!((*so).so_lock) }
}

/// `soeventmtx(so, which)`: the embedded buffer mutex.
pub(crate) fn buf_mtx(so: *mut socket, which: sb_which) -> *mut mtx {
    // SAFETY: only computes field addresses.
    unsafe {
        if which == SO_RCV {
            addr_of_mut!((*so).so_rcv_mtx)
        } else {
            addr_of_mut!((*so).so_snd_mtx)
        }
    }
}

pub(crate) fn state(so: *mut socket) -> i16 {
    // SAFETY: `so` is a live harness socket.
    unsafe { std::ptr::addr_of!((*so).so_state).read_volatile() }
}

/// Changes `so_state` under `SOCK_LOCK`, as the socket layer does.
pub(crate) fn set_state(so: *mut socket, set: i16, clear: i16) {
    let m = so_lock(so);
    let mine = mtx_owned(m);
    if !mine {
        mtx_lock(m);
    }
    // SAFETY: `so` is a live harness socket; its lock is held.
    unsafe { (*so).so_state = ((*so).so_state & !clear) | set };
    if !mine {
        mtx_unlock(m);
    }
}

pub(crate) fn options(so: *mut socket) -> c_int {
    // SAFETY: `so` is a live harness socket.
    unsafe { std::ptr::addr_of!((*so).so_options).read_volatile() }
}

/// `SOLISTENING(so)`.
pub(crate) fn listening(so: *mut socket) -> bool {
    options(so) & SO_ACCEPTCONN != 0
}

pub(crate) fn so_error(so: *mut socket) -> u16 {
    // SAFETY: `so` is a live harness socket.
    unsafe { std::ptr::addr_of!((*so).so_error).read_volatile() }
}

pub(crate) fn set_so_error(so: *mut socket, e: c_int) {
    // SAFETY: `so` is a live harness socket; a 16-bit store like the kernel's.
    unsafe { addr_of_mut!((*so).so_error).write_volatile(e as u16) }
}

pub(crate) fn sb_state(so: *mut socket, which: sb_which) -> i16 {
    // SAFETY: `so` is a live, non-listening harness socket.
    unsafe { std::ptr::addr_of!((*sb(so, which)).sb_state).read_volatile() }
}

pub(crate) fn sb_hiwat(so: *mut socket, which: sb_which) -> u32 {
    // SAFETY: as above.
    unsafe { (*sb(so, which)).sb_hiwat }
}

// ---------------------------------------------------------------------------
// Registry

/// Who holds the reference of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The module (from `socreate`, or handed over by `solisten_dequeue`).
    Caller,
    /// The complete queue of the listening socket at this address.
    Queue(usize),
}

/// Host-side state of one socket.
pub(crate) struct Sock {
    pub fd: c_int,
    pub family: c_int,
    pub kind: Kind,
    pub owner: Owner,
    pub serial: u64,
    /// Stream bytes accepted by `sosend` and not yet taken by Linux: the
    /// occupancy of the modelled `so_snd`.
    pub pending: Vec<u8>,
    /// The FreeBSD sockaddr a local socket was bound to (returned verbatim).
    pub bound: Option<Vec<u8>>,
    /// Last known peer (FreeBSD form).
    pub peer: Option<Vec<u8>>,
    /// Complete queue of a listening socket (child socket addresses).
    pub queue: VecDeque<usize>,
    /// Linux may hold further completed connections for this listener.
    pub accept_more: bool,
    /// `SHUT_RD` flushed the receive side.
    pub rd_shut: bool,
    /// `SHUT_WR` waits for the pending stream data to go out first.
    pub wr_shut_deferred: bool,
    /// A connect error Linux reported synchronously, delivered the
    /// asynchronous FreeBSD way from the event loop.
    pub deferred_err: c_int,
    /// Emulated option values (level, name) → FreeBSD-visible bytes.
    pub opts: HashMap<(c_int, c_int), Vec<u8>>,
    /// `soclose` ran but other references remain.
    pub zombie: bool,
    /// `soclose` is in progress: network input no longer reaches it.
    pub closing: bool,
}

impl Sock {
    pub fn describe(&self, so: usize) -> String {
        let fam = match self.family {
            addr::AF_INET => "inet",
            addr::AF_INET6 => "inet6",
            _ => "local",
        };
        format!(
            "socket {so:#x} #{} ({fam} {})",
            self.serial,
            self.kind.name()
        )
    }
}

pub(crate) struct Inet {
    pub socks: HashMap<usize, Sock>,
    pub freed: HashSet<usize>,
    pub epfd: c_int,
    /// The "netisr" kernel thread upcalls from network events run on.
    pub netisr: usize,
    /// Events taken by the idle hook, for the event source.
    pub pending_ev: Vec<(usize, u32)>,
    /// Depth of upcall invocations in progress.
    /// Sockets whose network input the network thread is processing (the
    /// inpcb lock of FreeBSD's input paths): `soclose` waits for it.
    pub busy: HashMap<usize, u32>,
    /// Upcall invocations in progress, by kernel thread (curthread).
    pub upcall_depth: HashMap<usize, u32>,
    pub serial: u64,
}

kernel_local! {
    static INET: RefCell<Option<Inet>> = RefCell::new(None);
}

fn init_thread() {
    kthread::init();
    // SAFETY: plain syscall.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epfd >= 0, "harness: inet: epoll_create1 failed");
    let td = kthread::new_thread(kthread::Cred::Kernel);
    kthread::set_thread_name(td, "swi1: netisr 0");
    INET.with(|c| {
        *c.borrow_mut() = Some(Inet {
            socks: HashMap::new(),
            freed: HashSet::new(),
            epfd,
            netisr: td as usize,
            pending_ev: Vec::new(),
            upcall_depth: HashMap::new(),
            busy: HashMap::new(),
            serial: 0,
        })
    });
    events::install();
}

/// Runs `f` on this OS thread's socket registry (set up on first use).
/// Never call module code or the event loop inside `f`.
pub(crate) fn with<R>(f: impl FnOnce(&mut Inet) -> R) -> R {
    if INET.with(|c| c.borrow().is_none()) {
        init_thread();
    }
    INET.with(|c| f(c.borrow_mut().as_mut().expect("inet state")))
}

fn initialized() -> bool {
    INET.with(|c| c.borrow().is_some())
}

/// Runs `f` on the host state of socket `so`, if it is one of ours.
pub(crate) fn with_sock<R>(so: *mut socket, f: impl FnOnce(&mut Sock) -> R) -> Option<R> {
    with(|i| i.socks.get_mut(&(so as usize)).map(f))
}

/// A local address as FreeBSD reports it: the very bytes the owner passed
/// to `sobind` when the path belongs to one of our sockets (`unp_addr` is a
/// copy of them), else the `SUN_LEN` form Linux gives.
pub(crate) fn local_name_fixup(b: Vec<u8>) -> Vec<u8> {
    if b.len() < 3 || c_int::from(b[1]) != addr::AF_LOCAL {
        return b;
    }
    let Ok(path) = addr::local_path(&b) else {
        return b;
    };
    with(|i| {
        i.socks
            .values()
            .filter_map(|s| s.bound.as_ref())
            .find(|bb| addr::local_path(bb).is_ok_and(|p| p == path))
            .cloned()
    })
    .unwrap_or(b)
}

pub(crate) fn is_mine(so: *mut socket) -> bool {
    initialized() && with(|i| i.socks.contains_key(&(so as usize)))
}

pub(crate) fn in_upcall() -> bool {
    let td = kthread::curthread() as usize;
    initialized() && with(|i| i.upcall_depth.get(&td).is_some_and(|&d| d > 0))
}

// ---------------------------------------------------------------------------
// Other families

/// Implementations of the consumer calls for sockets of families this
/// module does not back (a module-registered domain such as `PF_NETGRAPH`).
/// `socreate` is offered every family other than `PF_INET`, `PF_INET6` and
/// `PF_LOCAL`; every other call is offered sockets this module did not create.
#[derive(Clone, Copy)]
pub struct ForeignOps {
    pub socreate: unsafe extern "C" fn(
        c_int,
        *mut *mut socket,
        c_int,
        c_int,
        *mut ucred,
        *mut thread,
    ) -> c_int,
    pub sobind: unsafe extern "C" fn(*mut socket, *mut sockaddr, *mut thread) -> c_int,
    pub soconnect: unsafe extern "C" fn(*mut socket, *mut sockaddr, *mut thread) -> c_int,
    pub solisten: unsafe extern "C" fn(*mut socket, c_int, *mut thread) -> c_int,
    pub solisten_dequeue: unsafe extern "C" fn(*mut socket, *mut *mut socket, c_int) -> c_int,
    pub soaccept: unsafe extern "C" fn(*mut socket, *mut sockaddr) -> c_int,
    pub sosend: unsafe extern "C" fn(
        *mut socket,
        *mut sockaddr,
        *mut uio,
        *mut fbsd_sys::mbuf,
        *mut fbsd_sys::mbuf,
        c_int,
        *mut thread,
    ) -> c_int,
    pub soreceive: unsafe extern "C" fn(
        *mut socket,
        *mut *mut sockaddr,
        *mut uio,
        *mut *mut fbsd_sys::mbuf,
        *mut *mut fbsd_sys::mbuf,
        *mut c_int,
    ) -> c_int,
    pub soclose: unsafe extern "C" fn(*mut socket) -> c_int,
    pub sosetopt: unsafe extern "C" fn(*mut socket, *mut fbsd_sys::sockopt) -> c_int,
    pub sogetopt: unsafe extern "C" fn(*mut socket, *mut fbsd_sys::sockopt) -> c_int,
    pub sosockaddr: unsafe extern "C" fn(*mut socket, *mut sockaddr) -> c_int,
    pub sopeeraddr: unsafe extern "C" fn(*mut socket, *mut sockaddr) -> c_int,
    pub soshutdown: unsafe extern "C" fn(*mut socket, fbsd_sys::shutdown_how) -> c_int,
    pub soupcall_set:
        unsafe extern "C" fn(*mut socket, sb_which, fbsd_sys::so_upcall_t, *mut c_void),
    pub soupcall_clear: unsafe extern "C" fn(*mut socket, sb_which),
    pub solisten_upcall_set: unsafe extern "C" fn(*mut socket, fbsd_sys::so_upcall_t, *mut c_void),
}

static FOREIGN: Mutex<Option<ForeignOps>> = Mutex::new(None);

/// Installs (or removes) the implementation used for other families.
/// TODO(integrate): kern::domain installs its generic socket layer here.
pub fn set_foreign_family_handler(ops: Option<ForeignOps>) {
    *FOREIGN.lock().unwrap_or_else(|e| e.into_inner()) = ops;
}

pub(crate) fn foreign() -> Option<ForeignOps> {
    *FOREIGN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a call on `so` goes.
pub(crate) enum Target {
    Mine,
    Foreign(ForeignOps),
    /// Not a live socket: reported; the call fails.
    Bad,
}

pub(crate) fn target(so: *mut socket, what: &str) -> Target {
    if so.is_null() {
        violation(format!("{what}(NULL socket)"));
        return Target::Bad;
    }
    if initialized() {
        let (mine, freed, zombie) = with(|i| {
            let s = i.socks.get(&(so as usize));
            (
                s.is_some(),
                i.freed.contains(&(so as usize)),
                s.is_some_and(|s| s.zombie),
            )
        });
        if mine {
            if zombie {
                violation(format!("{what}({so:p}): socket used after soclose()"));
                return Target::Bad;
            }
            return Target::Mine;
        }
        if freed {
            violation(format!(
                "{what}({so:p}): socket used after soclose() freed it"
            ));
            return Target::Bad;
        }
    }
    match foreign() {
        Some(f) => Target::Foreign(f),
        None => {
            violation(format!(
                "{what}({so:p}): not a socket created by socreate()"
            ));
            Target::Bad
        }
    }
}

/// Reports the mutexes held on entry to a call that must be made without
/// any (`what` names the call).
pub(crate) fn check_no_locks(what: &str) {
    for n in lock::held_names() {
        violation(format!("{what}: called with mutex {n} held"));
    }
}

/// Reports a call made from inside a socket upcall that must not be.
pub(crate) fn check_not_in_upcall(what: &str) {
    if in_upcall() {
        violation(format!("{what}: called from inside a socket upcall"));
    }
}

/// `CURVNET_SET(so->so_vnet)` for the duration of a call.
pub(crate) struct VnetGuard(*mut fbsd_sys::vnet);

impl VnetGuard {
    pub fn set(so: *mut socket) -> VnetGuard {
        // SAFETY: `so` is a live harness socket.
        let v = unsafe { (*so).so_vnet };
        VnetGuard(kthread::set_curvnet(v))
    }
}

impl Drop for VnetGuard {
    fn drop(&mut self) {
        kthread::set_curvnet(self.0);
    }
}

// ---------------------------------------------------------------------------
// Export and Rust API

/// Exports the socket(9) consumer functions.
pub fn register(ex: &mut Exports) {
    let funcs: &[(&str, usize)] = &[
        ("socreate", ops::socreate as *const () as usize),
        ("sobind", ops::sobind as *const () as usize),
        ("soconnect", ops::soconnect as *const () as usize),
        ("solisten", ops::solisten as *const () as usize),
        (
            "solisten_dequeue",
            ops::solisten_dequeue as *const () as usize,
        ),
        ("soaccept", ops::soaccept as *const () as usize),
        ("sosend", io::sosend as *const () as usize),
        ("soreceive", io::soreceive as *const () as usize),
        ("soclose", ops::soclose as *const () as usize),
        ("sosetopt", sockopt::sosetopt as *const () as usize),
        ("sogetopt", sockopt::sogetopt as *const () as usize),
        ("sosockaddr", ops::sosockaddr as *const () as usize),
        ("sopeeraddr", ops::sopeeraddr as *const () as usize),
        ("soshutdown", ops::soshutdown as *const () as usize),
        ("soupcall_set", ops::soupcall_set as *const () as usize),
        ("soupcall_clear", ops::soupcall_clear as *const () as usize),
        (
            "solisten_upcall_set",
            ops::solisten_upcall_set as *const () as usize,
        ),
    ];
    for &(name, addr) in funcs {
        ex.func(name, addr);
    }
}

/// The exported functions, callable from Rust (tests and the runner act as
/// a module would).
pub mod api {
    pub use super::io::{soreceive, sosend};
    pub use super::ops::{
        soaccept, sobind, soclose, soconnect, socreate, solisten, solisten_dequeue,
        solisten_upcall_set, sopeeraddr, soshutdown, sosockaddr, soupcall_clear, soupcall_set,
    };
    pub use super::sockopt::{sogetopt, sosetopt};
}

/// Locks the socket's receive or send buffer mutex through the lock model
/// (`SOCK_RECVBUF_LOCK` / `SOCK_SENDBUF_LOCK`), as module code does.
pub fn buf_lock(so: *mut socket, which: sb_which) {
    mtx_lock(buf_mtx(so, which));
}

/// Unlocks what [`buf_lock`] locked.
pub fn buf_unlock(so: *mut socket, which: sb_which) {
    mtx_unlock(buf_mtx(so, which));
}

/// `SOCK_LOCK` / `SOLISTEN_LOCK`.
pub fn sock_lock(so: *mut socket) {
    mtx_lock(so_lock(so));
}

/// `SOCK_UNLOCK` / `SOLISTEN_UNLOCK`.
pub fn sock_unlock(so: *mut socket) {
    mtx_unlock(so_lock(so));
}

/// Number of live sockets of this module on this OS thread (including
/// sockets waiting on a listen queue).
pub fn live_sockets() -> usize {
    if !initialized() {
        return 0;
    }
    with(|i| i.socks.values().filter(|s| !s.zombie).count())
}

/// The epoll descriptor network events arrive on (readable when the event
/// source has work), once this OS thread has sockets; for servers that wait
/// in their own `poll(2)`.
pub fn event_fd() -> Option<c_int> {
    initialized().then(|| with(|i| i.epfd))
}

/// Runs the socket event source until it has nothing left to deliver,
/// waiting up to `ms` milliseconds (real time, in steps) for network events
/// to arrive. Returns true if anything was delivered.
pub fn pump(ms: u64) -> bool {
    events::pump(ms)
}

/// Runs the harness loop (waiting for network events, up to `ms`
/// milliseconds of real time) until `cond` holds; returns whether it did.
pub fn pump_until(ms: u64, cond: impl FnMut() -> bool) -> bool {
    events::pump_until(ms, cond)
}

/// End-of-scenario check: every socket still owned by a caller is a leak
/// (H23), every upcall still registered and every socket mutex still held
/// is reported. Each finding is recorded as a violation and returned.
pub fn check_all() -> Vec<String> {
    if !initialized() {
        return Vec::new();
    }
    let socks: Vec<(usize, String, Owner, bool)> = with(|i| {
        i.socks
            .iter()
            .map(|(&a, s)| (a, s.describe(a), s.owner, s.zombie))
            .collect()
    });
    let mut out = Vec::new();
    for (a, desc, owner, zombie) in socks {
        let so = a as *mut socket;
        if owner == Owner::Caller && !zombie {
            out.push(format!("leak: {desc} was never soclose()d"));
        }
        if zombie {
            // SAFETY: zombies stay allocated.
            let n = unsafe { (*so).so_count };
            out.push(format!(
                "{desc}: still referenced after soclose() (so_count {n})"
            ));
            continue;
        }
        out.extend(
            events::upcalls_set(so)
                .into_iter()
                .map(|w| format!("{desc}: {w} upcall still set")),
        );
        for (m, name) in [
            (so_lock(so), "socket"),
            (buf_mtx(so, SO_RCV), "so_rcv"),
            (buf_mtx(so, SO_SND), "so_snd"),
        ] {
            if mtx_owner(m) != 0 {
                out.push(format!("{desc}: mutex {name} still held"));
            }
        }
    }
    for m in &out {
        violation(m.clone());
    }
    out
}

/// Closes and frees every socket of this OS thread without any check (for
/// test teardown after [`check_all`]), and removes the interface aliases.
pub fn reset() {
    ifaddr::reset_aliases();
    if !initialized() {
        return;
    }
    let all: Vec<usize> = with(|i| i.socks.keys().copied().collect());
    for a in all {
        ops::destroy(a as *mut socket, false);
    }
    with(|i| i.pending_ev.clear());
}
