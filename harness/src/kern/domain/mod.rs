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
//! contracts of `spec/kpi-contracts.md` §2.3, §3 and rules H4, H7–H9,
//! H26–H30. Every broken contract is a [`violation`]; memory the protocol
//! hands back wrongly is never reused (freed sockets are poisoned and
//! quarantined).
//!
//! State is per OS thread (one harness process runs one scenario on one OS
//! thread; parallel unit tests stay independent).

pub(crate) mod locks;
mod syscalls;

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
use crate::kern::sockbuf as sbuf;
use crate::kern::thread::{curthread, set_curvnet};
use crate::kern::{kernel_panic, malloc, violation};

pub use self::syscalls::{
    bind, close, close_all, connect, getpeername, getsockname, getsockopt, getsockopt_int,
    poll_readable, readable, recvfrom, sendmsg, sendto, set_blocking_bound, set_nonblocking,
    setsockopt, setsockopt_int, socket, Received,
};

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

thread_local! {
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

// ---------------------------------------------------------------------------
// Domains and protocol switches

fn cstr_lossy(p: *const core::ffi::c_char) -> String {
    if p.is_null() {
        "(null)".into()
    } else {
        // SAFETY: the module's domain name is a NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// `dom_protosw[i]` pointers of `dp`.
///
/// # Safety
/// `dp` must point at a readable `struct domain` with `dom_nprotosw` slots.
unsafe fn protosws(dp: *mut domain) -> Vec<*mut protosw> {
    // SAFETY: per the function contract.
    unsafe {
        let n = (*dp).dom_nprotosw as usize;
        let base = (*dp).dom_protosw.as_ptr();
        (0..n).map(|i| *base.add(i)).collect()
    }
}

/// `pr_init()`: links the protosw to its domain and installs the defaults for
/// NULL methods. The kernel writes into the module's protosw, which therefore
/// has to stay valid (and writable) while registered.
fn pr_init(dp: *mut domain, pr: *mut protosw, c: Caller) {
    use self::syscalls::defaults as d;
    // SAFETY: `pr` is a protosw the module registers; the kernel writes it.
    unsafe {
        if (*pr).pr_attach.is_none() {
            violation(format!(
                "pr_init from {c}: protocol (type {}, protocol {}) of domain {} has no pr_attach \
                 (KASSERT \"protocol doesn't have pr_attach\")",
                (*pr).pr_type,
                (*pr).pr_protocol,
                cstr_lossy((*dp).dom_name)
            ));
        }
        (*pr).pr_domain = dp;
        macro_rules! dflt {
            ($f:ident, $v:expr) => {
                if (*pr).$f.is_none() {
                    (*pr).$f = Some($v);
                }
            };
        }
        dflt!(pr_sosend, d::sosend_generic);
        dflt!(pr_soreceive, d::soreceive_generic);
        dflt!(pr_sopoll, d::sopoll_generic);
        dflt!(pr_setsbopt, d::sbsetopt_default);
        dflt!(pr_accept, d::pr_accept_notsupp);
        dflt!(pr_aio_queue, d::pr_aio_queue_notsupp);
        dflt!(pr_bind, d::pr_bind_notsupp);
        dflt!(pr_bindat, d::pr_bindat_notsupp);
        dflt!(pr_connect, d::pr_connect_notsupp);
        dflt!(pr_connect2, d::pr_connect2_notsupp);
        dflt!(pr_connectat, d::pr_connectat_notsupp);
        dflt!(pr_control, d::pr_control_notsupp);
        dflt!(pr_disconnect, d::pr_disconnect_notsupp);
        dflt!(pr_listen, d::pr_listen_notsupp);
        dflt!(pr_peeraddr, d::pr_peeraddr_notsupp);
        dflt!(pr_rcvd, d::pr_rcvd_notsupp);
        dflt!(pr_rcvoob, d::pr_rcvoob_notsupp);
        dflt!(pr_send, d::pr_send_notsupp);
        dflt!(pr_shutdown, d::pr_shutdown_notsupp);
        dflt!(pr_sockaddr, d::pr_sockaddr_notsupp);
        dflt!(pr_ready, d::pr_ready_notsupp);
    }
}

fn domain_add_impl(dp: *mut domain, c: Caller) {
    if dp.is_null() {
        kernel_panic(&format!(
            "domain_add(NULL) from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    let v = crate::kern::thread::curvnet();
    if !v.is_null() && v != crate::kern::thread::vnet0() {
        violation(format!(
            "domain_add({dp:p}) from {c}: curvnet {v:p} is not the default vnet (MPASS)"
        ));
    }
    // SAFETY: DOMAIN_SET hands the module's writable `struct domain`.
    let (family, name, probe) = unsafe {
        (
            (*dp).dom_family,
            cstr_lossy((*dp).dom_name),
            (*dp).dom_probe,
        )
    };
    if with(|s| s.domains.iter().any(|d| d.ptr == dp as usize)) {
        violation(format!(
            "domain_add({name}) from {c}: domain {dp:p} is already registered"
        ));
        return;
    }
    if let Some(probe) = probe {
        // SAFETY: the module's probe function, `int (*)(void)`.
        let r = unsafe { probe() };
        if r != 0 {
            eprintln!("harness: domain_add: dom_probe of domain {name} (family {family}) returned {r}; not added");
            return;
        }
    }
    // SAFETY: as above; dom_protosw has dom_nprotosw slots.
    for pr in unsafe { protosws(dp) } {
        if !pr.is_null() {
            pr_init(dp, pr, c);
        }
    }
    let dup = with(|s| s.domains.iter().find(|d| d.family == family).cloned());
    if let Some(d) = dup {
        violation(format!(
            "domain_add({name}) from {c}: family {family} is already registered by domain {} \
             (INVARIANTS: MPASS(tmp->dom_family != dp->dom_family))",
            d.name
        ));
    }
    let head = with(|s| s.domains.first().map_or(0, |d| d.ptr));
    // SAFETY: the kernel links the domain into its SLIST through `dom_next`.
    unsafe { (*dp).dom_next.sle_next = head as *mut domain };
    with(|s| {
        s.domains.insert(
            0,
            Dom {
                ptr: dp as usize,
                family,
                name,
            },
        )
    });
}

fn domain_remove_impl(dp: *mut domain, c: Caller) {
    if dp.is_null() {
        kernel_panic(&format!(
            "domain_remove(NULL) from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    // SAFETY: SYSUNINIT hands the module's domain, still mapped.
    let flags = unsafe { (*dp).dom_flags };
    if flags & fbsd_sys::DOMF_UNLOADABLE as c_int == 0 {
        return;
    }
    let Some(d) = with(|s| {
        let i = s.domains.iter().position(|d| d.ptr == dp as usize)?;
        Some(s.domains.remove(i))
    }) else {
        violation(format!(
            "domain_remove({dp:p}) from {c}: domain is not registered"
        ));
        return;
    };
    relink_domains();
    let live = with(|s| {
        s.sockets
            .values()
            .filter(|k| k.family == d.family && !k.dead)
            .count()
    });
    if live > 0 {
        violation(format!(
            "domain_remove({}) from {c}: {live} socket(s) of the domain are still open; their so_proto \
             would dangle once the module is unloaded",
            d.name
        ));
    }
}

/// Rewrites the `dom_next` links of the registered domains.
fn relink_domains() {
    let ptrs: Vec<usize> = with(|s| s.domains.iter().map(|d| d.ptr).collect());
    for (i, &p) in ptrs.iter().enumerate() {
        let next = ptrs.get(i + 1).copied().unwrap_or(0);
        // SAFETY: registered domains are live module memory.
        unsafe { (*(p as *mut domain)).dom_next.sle_next = next as *mut domain };
    }
}

/// `pffinddomain(family)`.
pub(crate) fn finddomain(family: c_int) -> Option<*mut domain> {
    with(|s| {
        s.domains
            .iter()
            .find(|d| d.family == family)
            .map(|d| d.ptr as *mut domain)
    })
}

/// `pffindproto(family, type, proto)`: the first protosw of the domain with
/// that type whose protocol is 0 or `proto`, or any if `proto` is 0.
pub(crate) fn findproto(family: c_int, ty: c_int, proto: c_int) -> Option<*mut protosw> {
    let dp = finddomain(family)?;
    // SAFETY: registered domains and their protosws are live module memory.
    unsafe {
        protosws(dp).into_iter().find(|&pr| {
            !pr.is_null()
                && i32::from((*pr).pr_type) == ty
                && ((*pr).pr_protocol == 0 || proto == 0 || i32::from((*pr).pr_protocol) == proto)
        })
    }
}

fn protosw_register_impl(dp: *mut domain, npr: *mut protosw, c: Caller) -> c_int {
    if dp.is_null() || npr.is_null() {
        violation(format!(
            "protosw_register({dp:p}, {npr:p}) from {c}: NULL argument (MPASS)"
        ));
        return EINVAL;
    }
    // SAFETY: the module's domain and protosw.
    unsafe {
        if (*npr).pr_type <= 0 || (*npr).pr_protocol <= 0 {
            violation(format!(
                "protosw_register from {c}: pr_type {} / pr_protocol {} must be positive (MPASS)",
                (*npr).pr_type,
                (*npr).pr_protocol
            ));
        }
        let n = (*dp).dom_nprotosw as usize;
        let base = (*dp).dom_protosw.as_mut_ptr();
        let mut slot = None;
        for i in 0..n {
            let p = *base.add(i);
            if p.is_null() {
                slot.get_or_insert(i);
            } else if (*p).pr_type == (*npr).pr_type && (*p).pr_protocol == (*npr).pr_protocol {
                return EEXIST;
            }
        }
        let Some(i) = slot else { return ENOMEM };
        pr_init(dp, npr, c);
        *base.add(i) = npr;
    }
    0
}

fn protosw_unregister_impl(pr: *mut protosw, c: Caller) -> c_int {
    if pr.is_null() {
        violation(format!("protosw_unregister(NULL) from {c}"));
        return EINVAL;
    }
    // SAFETY: the module's protosw, linked by pr_init.
    unsafe {
        let dp = (*pr).pr_domain;
        if dp.is_null() {
            return fbsd_sys::EPROTONOSUPPORT as c_int;
        }
        let n = (*dp).dom_nprotosw as usize;
        let base = (*dp).dom_protosw.as_mut_ptr();
        let Some(i) = (0..n).find(|&i| *base.add(i) == pr) else {
            return fbsd_sys::EPROTONOSUPPORT as c_int;
        };
        *base.add(i) = null_mut();
    }
    let live = with(|s| {
        s.sockets
            .keys()
            .filter(|&&so| unsafe_proto(so) == pr as usize)
            .count()
    });
    if live > 0 {
        violation(format!(
            "protosw_unregister({pr:p}) from {c}: {live} socket(s) of this protocol are still open"
        ));
    }
    0
}

fn unsafe_proto(so: usize) -> usize {
    // SAFETY: keys of the socket table are live harness sockets.
    unsafe { (*(so as *mut socket)).so_proto as usize }
}

/// Loader hook: a module image went away. Any domain still registered from
/// it, and any socket whose protocol lived there, now points into unmapped
/// memory: report it and make sure the socket layer never follows them.
fn module_unloaded(name: &str, base: usize, size: usize) {
    let inside = |p: usize| p >= base && p < base + size;
    let gone: Vec<Dom> = with(|s| {
        let (gone, keep): (Vec<Dom>, Vec<Dom>) = s.domains.drain(..).partition(|d| inside(d.ptr));
        s.domains = keep;
        gone
    });
    if !gone.is_empty() {
        relink_domains();
    }
    for d in &gone {
        violation(format!(
            "{name} was unloaded while its domain \"{}\" (family {}) is still registered (no \
             DOMF_UNLOADABLE, or domain_remove did not run): the kernel would call into unmapped memory",
            d.name, d.family
        ));
    }
    let dead: Vec<(u64, Option<Fd>)> = with(|s| {
        let mut v = Vec::new();
        for (&so, k) in s.sockets.iter_mut() {
            if !k.dead && (inside(unsafe_proto(so)) || gone.iter().any(|d| d.family == k.family)) {
                k.dead = true;
                v.push((k.serial, k.fd));
            }
        }
        v
    });
    for (serial, fd) in dead {
        violation(format!(
            "{name} was unloaded with socket #{serial} (fd {fd:?}) still open: its so_proto points into \
             the unloaded image"
        ));
    }
}

// ---------------------------------------------------------------------------
// Socket objects

/// `soalloc()`: a zeroed 1024-byte `struct socket` with its locks initialised.
pub(crate) fn soalloc(v: *mut vnet) -> *mut socket {
    let layout = Layout::from_size_align(size_of::<socket>(), SOCKET_ALIGN).expect("socket layout");
    // SAFETY: non-zero size.
    let so = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<socket>();
    if so.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    mtx_init(
        so_lock(so),
        c"socket",
        fbsd_sys::MTX_DEF | fbsd_sys::MTX_DUPOK,
    );
    mtx_init(soeventmtx(so, SO_SND), c"so_snd", fbsd_sys::MTX_DEF);
    mtx_init(soeventmtx(so, SO_RCV), c"so_rcv", fbsd_sys::MTX_DEF);
    sx_init(so_sx(so, SO_SND), c"so_snd_sx");
    sx_init(so_sx(so, SO_RCV), c"so_rcv_sx");
    let gen = with(|s| {
        s.gencnt += 1;
        s.gencnt
    });
    // SAFETY: `so` is fresh and exclusively ours.
    unsafe {
        (*so_snd(so)).sb_sel = ptr::addr_of_mut!((*so).so_wrsel);
        (*so_rcv(so)).sb_sel = ptr::addr_of_mut!((*so).so_rdsel);
        (*so).so_vnet = v;
        (*so).so_gencnt = gen;
    }
    so
}

/// Registers a fresh socket in the table (before pr_attach runs).
pub(crate) fn track(so: *mut socket, family: i32, ty: i32, protocol: i32) -> u64 {
    with(|s| {
        s.serial += 1;
        let serial = s.serial;
        s.sockets.insert(
            so as usize,
            Sock {
                serial,
                family,
                ty,
                protocol,
                dead: false,
                fd: None,
                attached: false,
                last_state: 0,
            },
        );
        serial
    })
}

pub(crate) fn set_attached(so: *mut socket) {
    with(|s| {
        if let Some(k) = s.sockets.get_mut(&(so as usize)) {
            k.attached = true;
        }
    });
}

pub(crate) fn serial_of(so: *mut socket) -> u64 {
    with(|s| s.sockets.get(&(so as usize)).map_or(0, |k| k.serial))
}

/// `sodealloc()`: releases the credential, destroys the locks and frees the
/// memory (poisoned, quarantined, never reused).
pub(crate) fn sodealloc(so: *mut socket) {
    let serial = serial_of(so);
    // SAFETY: `so` is a live harness socket being destroyed.
    unsafe {
        if (*so).so_count != 0 {
            violation(format!(
                "sodealloc: socket #{serial} still has so_count {}",
                (*so).so_count
            ));
        }
        if !(*so).so_pcb.is_null() {
            violation(format!(
                "socket #{serial}: so_pcb is still {:p} when the socket is freed (pr_detach, or a failed \
                 pr_attach, must release the PCB and clear so_pcb)",
                (*so).so_pcb
            ));
        }
        for which in [SO_SND, SO_RCV] {
            let sb = sobuf(so, which);
            if !sbuf::sb_mb(sb).is_null() {
                violation(format!(
                    "socket #{serial}: {} buffer not empty when freed",
                    which_name(which)
                ));
                sbuf::flush_locked(sb);
            }
        }
        let cr = (*so).so_cred;
        if !cr.is_null() {
            if (*cr).cr_ref <= 1 {
                violation(format!(
                    "socket #{serial}: credential {cr:p} over-released (cr_ref {})",
                    (*cr).cr_ref
                ));
            } else {
                (*cr).cr_ref -= 1;
            }
        }
    }
    mtx_destroy(so_lock(so));
    mtx_destroy(soeventmtx(so, SO_SND));
    mtx_destroy(soeventmtx(so, SO_RCV));
    sx_destroy(so_sx(so, SO_SND));
    sx_destroy(so_sx(so, SO_RCV));
    // SAFETY: the whole socket is ours again; poison it so a stale use shows.
    unsafe { malloc::fill_poison(so.cast(), size_of::<socket>()) };
    let fd = with(|s| {
        let k = s.sockets.remove(&(so as usize));
        s.freed.push((so as usize, serial));
        k.and_then(|k| k.fd)
    });
    if let Some(fd) = fd {
        with(|s| s.fds.remove(&fd));
    }
}

/// `sofree()`: the last reference is gone (socket lock held on entry).
fn sofree(so: *mut socket) {
    mtx_unlock(so_lock(so));
    // SAFETY: `so` is a live harness socket.
    let dtor = unsafe { (*so).so_dtor };
    if let Some(f) = dtor {
        // SAFETY: a destructor the protocol installed, `void (*)(struct socket *)`.
        call_proto("so_dtor", so, || unsafe { f(so) });
    }
    let attached = with(|s| s.sockets.get(&(so as usize)).is_some_and(|k| k.attached));
    match proto_of(so) {
        Some(pr) => {
            // SAFETY: the live protosw of a registered domain.
            let (detach, flags) = unsafe { ((*pr).pr_detach, i32::from((*pr).pr_flags)) };
            if let (Some(f), true) = (detach, attached) {
                // SAFETY: the protocol's detach method.
                call_proto("pr_detach", so, || unsafe { f(so) });
            }
            if flags & fbsd_sys::PR_SOCKBUF as i32 == 0 {
                sbuf::sbdestroy_impl(so, SO_SND);
                sbuf::sbdestroy_impl(so, SO_RCV);
            }
        }
        None => {
            // The protocol is gone: nothing of it may run. Drop the buffers.
            sbuf::sbdestroy_impl(so, SO_SND);
            sbuf::sbdestroy_impl(so, SO_RCV);
            // SAFETY: clear the dangling PCB pointer so sodealloc does not report it twice.
            unsafe { (*so).so_pcb = null_mut() };
        }
    }
    sodealloc(so);
}

/// `sorele_locked()`: drops a reference with the socket lock held; unlocks.
pub(crate) fn sorele_locked_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "sorele_locked", c) {
        return;
    }
    if !mtx_owned(so_lock(so)) {
        violation(format!(
            "sorele_locked(socket #{}) from {c}: SOCK_LOCK not held",
            serial_of(so)
        ));
        mtx_lock(so_lock(so));
    }
    // SAFETY: `so` is a live harness socket; so_count is protected by SOCK_LOCK.
    let cnt = unsafe { (*so).so_count };
    if cnt == 0 {
        violation(format!(
            "sorele_locked(socket #{}) from {c}: so_count is already 0 (released more often than referenced)",
            serial_of(so)
        ));
        mtx_unlock(so_lock(so));
        return;
    }
    // SAFETY: as above.
    unsafe { (*so).so_count = cnt - 1 };
    if cnt == 1 {
        sofree(so);
    } else {
        mtx_unlock(so_lock(so));
    }
}

// ---------------------------------------------------------------------------
// State transitions called by protocols

fn soisconnecting_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "soisconnecting", c) {
        return;
    }
    mtx_lock(so_lock(so));
    // SAFETY: so_state is protected by SOCK_LOCK (held).
    unsafe {
        (*so).so_state &= !(SS_ISCONNECTED | SS_ISDISCONNECTING);
        (*so).so_state |= SS_ISCONNECTING;
    }
    note_state(so);
    mtx_unlock(so_lock(so));
}

pub(crate) fn soisconnected_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "soisconnected", c) {
        return;
    }
    mtx_lock(so_lock(so));
    // SAFETY: as above.
    unsafe {
        (*so).so_state &= !(SS_ISCONNECTING | SS_ISDISCONNECTING);
        (*so).so_state |= SS_ISCONNECTED;
    }
    note_state(so);
    mtx_unlock(so_lock(so));
    // SAFETY: only the address of so_timeo is used as the channel.
    wakeup(unsafe { ptr::addr_of!((*so).so_timeo) } as usize);
    mtx_lock(soeventmtx(so, SO_RCV));
    sbuf::rwakeup_locked(so, c);
    mtx_lock(soeventmtx(so, SO_SND));
    sbuf::wwakeup_locked(so, c);
}

fn soisdisconnecting_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "soisdisconnecting", c) {
        return;
    }
    mtx_lock(so_lock(so));
    // SAFETY: as above.
    unsafe {
        (*so).so_state &= !SS_ISCONNECTING;
        (*so).so_state |= SS_ISDISCONNECTING;
    }
    note_state(so);
    mtx_unlock(so_lock(so));
    mtx_lock(soeventmtx(so, SO_RCV));
    sbuf::cantrcvmore_locked(so, c);
    mtx_lock(soeventmtx(so, SO_SND));
    sbuf::cantsendmore_locked(so, c);
    // SAFETY: channel address only.
    wakeup(unsafe { ptr::addr_of!((*so).so_timeo) } as usize);
}

fn soisdisconnected_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "soisdisconnected", c) {
        return;
    }
    mtx_lock(so_lock(so));
    // SAFETY: as above.
    unsafe {
        (*so).so_state &= !(SS_ISCONNECTING | SS_ISCONNECTED | SS_ISDISCONNECTING);
        (*so).so_state |= SS_ISDISCONNECTED;
    }
    note_state(so);
    mtx_unlock(so_lock(so));
    mtx_lock(soeventmtx(so, SO_RCV));
    sbuf::cantrcvmore_locked(so, c);
    mtx_lock(soeventmtx(so, SO_SND));
    sbuf::flush_locked(so_snd(so));
    sbuf::cantsendmore_locked(so, c);
    // SAFETY: channel address only.
    wakeup(unsafe { ptr::addr_of!((*so).so_timeo) } as usize);
}

/// `sodupsockaddr(sa, mflags)`: a `malloc(M_SONAME)` copy.
fn sodupsockaddr_impl(sa: *const sockaddr, mflags: c_int, c: Caller) -> *mut sockaddr {
    if sa.is_null() {
        kernel_panic(&format!(
            "sodupsockaddr(NULL) from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    // SAFETY: the caller's sockaddr; sa_len bytes are readable.
    let len = usize::from(unsafe { (*sa).sa_len });
    let p = malloc::alloc(
        len,
        malloc::harness_type("soname"),
        mflags,
        1,
        c,
        None,
        "sodupsockaddr",
    );
    if !p.is_null() {
        // SAFETY: `p` has `len` bytes; `sa` has sa_len readable bytes.
        unsafe { ptr::copy_nonoverlapping(sa.cast::<u8>(), p, len) };
    }
    p.cast()
}

fn sooptcopyin_impl(
    sopt: *mut sockopt,
    buf: *mut c_void,
    len: usize,
    minlen: usize,
    c: Caller,
) -> c_int {
    if sopt.is_null() || buf.is_null() {
        violation(format!(
            "sooptcopyin({sopt:p}, {buf:p}) from {c}: NULL argument"
        ));
        return EINVAL;
    }
    // SAFETY: the caller's sockopt; sopt_val has sopt_valsize bytes (kernel
    // or, in this process, user memory alike) and `buf` has `len` bytes.
    unsafe {
        let valsize = (*sopt).sopt_valsize;
        if valsize < minlen {
            return EINVAL;
        }
        let n = valsize.min(len);
        if valsize > len {
            (*sopt).sopt_valsize = len;
        }
        if n > 0 {
            if (*sopt).sopt_val.is_null() {
                return fbsd_sys::EFAULT as c_int;
            }
            ptr::copy_nonoverlapping((*sopt).sopt_val.cast::<u8>(), buf.cast::<u8>(), n);
        }
    }
    0
}

fn sooptcopyout_impl(sopt: *mut sockopt, buf: *const c_void, len: usize, c: Caller) -> c_int {
    if sopt.is_null() {
        violation(format!("sooptcopyout(NULL) from {c}"));
        return EINVAL;
    }
    // SAFETY: as in sooptcopyin.
    unsafe {
        let n = (*sopt).sopt_valsize.min(len);
        (*sopt).sopt_valsize = n;
        if !(*sopt).sopt_val.is_null() && n > 0 {
            ptr::copy_nonoverlapping(buf.cast::<u8>(), (*sopt).sopt_val.cast::<u8>(), n);
        }
    }
    0
}

// ---------------------------------------------------------------------------
// H4 bookkeeping: mbufs handed to pr_send that were still live when it
// returned 0 (passed on to netgraph, say). Once the event loop is idle they
// must have been freed or be queued in some socket buffer.

pub(crate) fn add_pending(mbufs: Vec<usize>, what: String) {
    let need_source = with(|s| {
        s.pending.push(Pending { mbufs, what });
        !std::mem::replace(&mut s.source, true)
    });
    if need_source {
        crate::kern::sched::add_source(Box::new(|| {
            if crate::kern::sched::pending_timers() == 0 {
                check_pending();
            }
            false
        }));
    }
}

/// All mbufs queued in the socket buffers of live sockets.
pub(crate) fn buffered_mbufs() -> std::collections::HashSet<usize> {
    let socks: Vec<usize> = with(|s| s.sockets.keys().copied().collect());
    let mut out = std::collections::HashSet::new();
    for so in socks {
        for which in [SO_RCV, SO_SND] {
            sbuf::collect_mbufs(sobuf(so as *mut socket, which), &mut out);
        }
    }
    out
}

/// Checks the deferred H4 entries now (also done whenever the event loop is
/// idle with no timers pending, and at [`check_all`]).
pub fn check_pending() -> Vec<String> {
    let pend = with(|s| std::mem::take(&mut s.pending));
    if pend.is_empty() {
        return Vec::new();
    }
    let held = buffered_mbufs();
    let mut out = Vec::new();
    for p in pend {
        let kept: Vec<usize> = p
            .mbufs
            .iter()
            .copied()
            .filter(|&m| crate::kern::mbuf::is_live(m as *const _) && !held.contains(&m))
            .collect();
        if !kept.is_empty() {
            let msg = format!(
                "{}: returned 0 but {} of the mbuf(s) it was given are still live and owned by nobody once \
                 the system is idle (pr_send must free m and control or pass them on; H4): {:x?}",
                p.what,
                kept.len(),
                kept
            );
            violation(msg.clone());
            out.push(msg);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Rust API (beyond the system calls)

/// Number of live `struct socket`s (open descriptors and sockets kept alive
/// only by protocol references).
pub fn open_sockets() -> usize {
    with(|s| s.sockets.len())
}

/// Number of live sockets of address family `family`.
pub fn open_sockets_of(family: i32) -> usize {
    with(|s| s.sockets.values().filter(|k| k.family == family).count())
}

/// The `struct socket` behind descriptor `fd` (for tests and diagnostics).
pub fn socket_of(fd: Fd) -> Option<*mut socket> {
    with(|s| s.fds.get(&fd).map(|&so| so as *mut socket))
}

/// Families currently registered (list order, newest first).
pub fn registered_families() -> Vec<(i32, String)> {
    with(|s| {
        s.domains
            .iter()
            .map(|d| (d.family, d.name.clone()))
            .collect()
    })
}

pub(crate) fn fd_socket(fd: Fd) -> Result<*mut socket, Errno> {
    with(|s| s.fds.get(&fd).copied())
        .map(|so| so as *mut socket)
        .ok_or(EBADF)
}

pub(crate) fn install_fd(so: *mut socket) -> Fd {
    with(|s| {
        let fd = s.next_fd;
        s.next_fd += 1;
        s.fds.insert(fd, so as usize);
        if let Some(k) = s.sockets.get_mut(&(so as usize)) {
            k.fd = Some(fd);
        }
        fd
    })
}

pub(crate) fn remove_fd(fd: Fd) -> Option<*mut socket> {
    with(|s| {
        let so = s.fds.remove(&fd)?;
        if let Some(k) = s.sockets.get_mut(&so) {
            k.fd = None;
        }
        Some(so as *mut socket)
    })
}

pub(crate) fn all_fds() -> Vec<Fd> {
    with(|s| s.fds.keys().copied().collect())
}

/// End-of-scenario check: every `struct socket` must be freed (after the
/// descriptors were closed, e.g. by [`close_all`]), the deferred H4 checks
/// must pass, and freed sockets must not have been written after free. Each
/// finding is recorded as a violation and returned.
pub fn check_all() -> Vec<String> {
    let mut out = check_pending();
    let live: Vec<(u64, Option<Fd>, u32, i32)> = with(|s| {
        let mut v: Vec<_> = s
            .sockets
            .iter()
            .map(|(&so, k)| {
                // SAFETY: keys are live harness sockets.
                let cnt = unsafe { (*(so as *mut socket)).so_count };
                (k.serial, k.fd, cnt, k.family)
            })
            .collect();
        v.sort();
        v
    });
    for (serial, fd, cnt, fam) in live {
        let msg = match fd {
            Some(fd) => format!("socket #{serial} (family {fam}) still open as fd {fd} at the end of the scenario"),
            None => format!(
                "socket #{serial} (family {fam}) was closed but never freed: so_count {cnt} (a protocol \
                 reference was never released)"
            ),
        };
        violation(msg.clone());
        out.push(msg);
    }
    let freed: Vec<(usize, u64)> = with(|s| s.freed.clone());
    for (p, serial) in freed {
        // SAFETY: quarantined socket memory stays allocated for the process.
        let damage = unsafe { malloc::poison_damage(p as *const u8, size_of::<socket>(), 0) };
        if let Some((off, n)) = damage {
            let msg = format!(
                "use after free: {n} byte(s) of freed socket #{serial} ({p:#x}) were written after it was \
                 freed (first at offset {off})"
            );
            violation(msg.clone());
            out.push(msg);
            // SAFETY: as above; re-poison so the damage is reported once.
            unsafe { malloc::fill_poison(p as *mut u8, size_of::<socket>()) };
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Exported kernel functions

kernel_functions! {
    /// `void domain_add(struct domain *)` (DOMAIN_SET's SYSINIT)
    fn domain_add(dp: *mut domain) [c] {
        domain_add_impl(dp, c);
    }

    /// `void domain_remove(struct domain *)` (DOMAIN_SET's SYSUNINIT)
    fn domain_remove(dp: *mut domain) [c] {
        domain_remove_impl(dp, c);
    }

    /// `struct domain *pffinddomain(int family)`
    fn pffinddomain(family: c_int) -> *mut domain [_c] {
        finddomain(family).unwrap_or(null_mut())
    }

    /// `struct protosw *pffindproto(int family, int type, int proto)`
    fn pffindproto(family: c_int, ty: c_int, proto: c_int) -> *mut protosw [_c] {
        findproto(family, ty, proto).unwrap_or(null_mut())
    }

    /// `int protosw_register(struct domain *, struct protosw *)`
    fn protosw_register(dp: *mut domain, pr: *mut protosw) -> c_int [c] {
        protosw_register_impl(dp, pr, c)
    }

    /// `int protosw_unregister(struct protosw *)`
    fn protosw_unregister(pr: *mut protosw) -> c_int [c] {
        protosw_unregister_impl(pr, c)
    }

    /// `void soisconnected(struct socket *so)`
    fn soisconnected(so: *mut socket) [c] {
        soisconnected_impl(so, c);
    }

    /// `void soisconnecting(struct socket *so)`
    fn soisconnecting(so: *mut socket) [c] {
        soisconnecting_impl(so, c);
    }

    /// `void soisdisconnected(struct socket *so)`
    fn soisdisconnected(so: *mut socket) [c] {
        soisdisconnected_impl(so, c);
    }

    /// `void soisdisconnecting(struct socket *so)`
    fn soisdisconnecting(so: *mut socket) [c] {
        soisdisconnecting_impl(so, c);
    }

    /// `struct sockaddr *sodupsockaddr(const struct sockaddr *sa, int mflags)`
    fn sodupsockaddr(sa: *const sockaddr, mflags: c_int) -> *mut sockaddr [c] {
        sodupsockaddr_impl(sa, mflags, c)
    }

    /// `void sorele_locked(struct socket *so)`
    fn sorele_locked(so: *mut socket) [c] {
        sorele_locked_impl(so, c);
    }

    /// `int sooptcopyin(struct sockopt *sopt, void *buf, size_t len, size_t minlen)`
    fn sooptcopyin(sopt: *mut sockopt, buf: *mut c_void, len: usize, minlen: usize) -> c_int [c] {
        sooptcopyin_impl(sopt, buf, len, minlen, c)
    }

    /// `int sooptcopyout(struct sockopt *sopt, const void *buf, size_t len)`
    fn sooptcopyout(sopt: *mut sockopt, buf: *const c_void, len: usize) -> c_int [c] {
        sooptcopyout_impl(sopt, buf, len, c)
    }
}

/// Exports the domain and socket-state functions, and hooks module unloads.
pub fn register(ex: &mut Exports) {
    abi::register(ex);
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        crate::kern::loader::add_hook(|phase, info| {
            if phase == crate::kern::loader::Phase::Unloaded {
                module_unloaded(&info.filename, info.base, info.size);
            }
        });
    });
}

/// Helpers for tests written in Rust (a protocol family defined by the test).
pub mod testing {
    use super::*;

    /// Registers a domain as its module's DOMAIN_SET SYSINIT would.
    ///
    /// # Safety
    /// `dp` must point at a `struct domain` (and protosws) that stay valid
    /// and writable while registered.
    #[track_caller]
    pub unsafe fn domain_add(dp: *mut domain) {
        domain_add_impl(dp, Caller::here());
    }

    /// Unregisters a domain as its module's SYSUNINIT would.
    ///
    /// # Safety
    /// As for [`domain_add`].
    #[track_caller]
    pub unsafe fn domain_remove(dp: *mut domain) {
        domain_remove_impl(dp, Caller::here());
    }

    /// Reports a module image `[base, base+size)` as unloaded (what the
    /// loader hook does).
    pub fn module_unloaded(name: &str, base: usize, size: usize) {
        super::module_unloaded(name, base, size);
    }

    /// `soisconnected(so)` as a protocol calls it.
    #[track_caller]
    pub fn soisconnected(so: *mut socket) {
        soisconnected_impl(so, Caller::here());
    }

    /// `soisdisconnected(so)` as a protocol calls it.
    #[track_caller]
    pub fn soisdisconnected(so: *mut socket) {
        soisdisconnected_impl(so, Caller::here());
    }

    /// `sodupsockaddr(sa, mflags)`.
    ///
    /// # Safety
    /// `sa` must point at a readable sockaddr of `sa_len` bytes.
    #[track_caller]
    pub unsafe fn sodupsockaddr(sa: *const sockaddr, mflags: c_int) -> *mut sockaddr {
        sodupsockaddr_impl(sa, mflags, Caller::here())
    }

    /// `sorele_locked(so)` (socket lock held on entry).
    #[track_caller]
    pub fn sorele_locked(so: *mut socket) {
        sorele_locked_impl(so, Caller::here());
    }

    /// `mtx_lock`/`mtx_unlock` through the lock model (like module code).
    #[track_caller]
    pub fn mtx_lock(m: *mut mtx) {
        locks::mtx_lock(m);
    }

    /// See [`mtx_lock`].
    #[track_caller]
    pub fn mtx_unlock(m: *mut mtx) {
        locks::mtx_unlock(m);
    }

    /// `SOCK_RECVBUF_MTX(so)` / `SOCK_SENDBUF_MTX(so)`.
    pub fn buf_mtx(so: *mut socket, which: sb_which) -> *mut mtx {
        soeventmtx(so, which)
    }

    /// `SOCK_MTX(so)`.
    pub fn sock_mtx(so: *mut socket) -> *mut mtx {
        so_lock(so)
    }

    /// `&so->so_rcv` / `&so->so_snd`.
    pub fn buf(so: *mut socket, which: sb_which) -> *mut sockbuf {
        sobuf(so, which)
    }
}
