//! Shared helpers of the socket-layer tests (`sock_*.rs`): a protocol family
//! defined in Rust that stands in for a module (its methods call the kernel
//! entry points exactly as module code would), and test serialisation.
//!
//! Violations, the mbuf/malloc tables and the fault plan are process-global,
//! so the tests of one binary run one at a time ([`setup`]); the socket
//! layer's own state is per OS thread, so every test starts with no domain
//! and no socket.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_short};
use std::ptr::{self, null_mut};
use std::sync::{Mutex, MutexGuard};

use fbsd_sys::{domain, mbuf, protosw, sockaddr, socket, thread, SO_RCV};
use ngharness::kern::domain::testing;
use ngharness::kern::mbuf::{self as kmbuf};
use ngharness::kern::thread::{self as kthread, Cred};
use ngharness::kern::{domain as kdomain, fault, malloc, sockbuf, take_violations};

/// The test family.
pub const FAM: i32 = 77;
/// Protocol numbers (like NG_CONTROL / NG_DATA).
pub const P_CTL: i32 = 2;
pub const P_DATA: i32 = 1;
pub const DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;
/// Buffer sizes the test protocol reserves at attach.
pub const SNDBUF: u64 = 2048;
pub const RCVBUF: u64 = 4096;

pub const EPERM: i32 = fbsd_sys::EPERM as i32;
pub const EINVAL: i32 = fbsd_sys::EINVAL as i32;
pub const EIO: i32 = fbsd_sys::EIO as i32;
pub const ENOMEM: i32 = fbsd_sys::ENOMEM as i32;
pub const ENOBUFS: i32 = fbsd_sys::ENOBUFS as i32;
pub const EISCONN: i32 = fbsd_sys::EISCONN as i32;

/// What the test protocol's `pr_send` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendMode {
    /// Appends the datagram to its own receive buffer (source = destination
    /// address or "peer"), like a loopback; ENOBUFS (and frees) when full.
    Echo,
    /// Frees everything, returns 0.
    Drop,
    /// Returns 0 and keeps the mbufs (a leak: H4).
    LeakOk,
    /// Returns EIO without freeing the mbufs (H4).
    LeakErr,
    /// Frees the mbufs and the borrowed address (H4).
    FreeAddr,
    /// Records (payload, address) and frees.
    Record,
}

/// What the test protocol's attach/detach do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Normal,
    /// Allocates the PCB, links it, then fails with ENOMEM (a leak).
    FailLeaky,
    /// Fails cleanly with ENOMEM.
    FailClean,
    /// Detach frees the PCB but leaves so_pcb set.
    DetachLeavesPcb,
    /// Attach returns with the receive-buffer mutex held.
    HoldLock,
}

/// What the recording protocol saw: (payload, address, pr_send flags).
pub type Sent = (Vec<u8>, Option<Vec<u8>>, c_int);

ngharness::kernel_local! {
    pub static SEND_MODE: Cell<SendMode> = Cell::new(SendMode::Echo);
    pub static ATTACH_MODE: Cell<AttachMode> = Cell::new(AttachMode::Normal);
    pub static RECORDED: RefCell<Vec<Sent>> = RefCell::new(Vec::new());
    pub static CALLS: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
}

pub fn set_send_mode(m: SendMode) {
    SEND_MODE.with(|c| c.set(m));
}

pub fn set_attach_mode(m: AttachMode) {
    ATTACH_MODE.with(|c| c.set(m));
}

pub fn calls() -> Vec<&'static str> {
    CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

fn note(what: &'static str) {
    CALLS.with(|c| c.borrow_mut().push(what));
}

fn pcb_type() -> *mut fbsd_sys::malloc_type {
    malloc::harness_type("pcb")
}

fn soname_type() -> *mut fbsd_sys::malloc_type {
    malloc::harness_type("soname")
}

/// The "peer" address the echo protocol uses when sent without one.
pub const PEER: &[u8] = &[7, FAM as u8, b'p', b'e', b'e', b'r', 0];
/// What the test protocol's getsockname returns.
pub const NAME: &[u8] = &[6, FAM as u8, b'n', b'a', b'm', b'e'];

// ---- the protocol's methods (module stand-ins) ---------------------------------

unsafe extern "C" fn t_attach(so: *mut socket, proto: c_int, td: *mut thread) -> c_int {
    note("attach");
    // SAFETY: the socket layer passes a fresh socket and the calling thread.
    unsafe {
        let prot = c_int::from((*(*so).so_proto).pr_protocol);
        if prot == P_CTL && (*(*td).td_ucred).cr_uid != 0 {
            // priv_check(td, PRIV_NETGRAPH_CONTROL)
            return EPERM;
        }
        let _ = proto;
        if !(*so).so_pcb.is_null() {
            return EISCONN;
        }
        let mode = ATTACH_MODE.with(|c| c.get());
        if mode == AttachMode::FailClean {
            return ENOMEM;
        }
        let e = sockbuf::abi::soreserve(so, SNDBUF, RCVBUF);
        if e != 0 {
            return e;
        }
        let pcb = malloc::kmalloc(
            64,
            pcb_type(),
            (fbsd_sys::M_WAITOK | fbsd_sys::M_ZERO) as i32,
        );
        (*so).so_pcb = pcb.cast();
        if mode == AttachMode::FailLeaky {
            return ENOMEM;
        }
        if mode == AttachMode::HoldLock {
            testing::mtx_lock(testing::buf_mtx(so, SO_RCV));
        }
    }
    0
}

unsafe extern "C" fn t_detach(so: *mut socket) {
    note("detach");
    // SAFETY: the socket layer passes a live socket whose PCB we set.
    unsafe {
        let pcb = (*so).so_pcb;
        malloc::kfree(pcb.cast(), pcb_type());
        if ATTACH_MODE.with(|c| c.get()) != AttachMode::DetachLeavesPcb {
            (*so).so_pcb = null_mut();
        }
    }
}

unsafe extern "C" fn t_close(_so: *mut socket) {
    note("close");
}

unsafe extern "C" fn t_bind(so: *mut socket, nam: *mut sockaddr, _td: *mut thread) -> c_int {
    note("bind");
    // SAFETY: a borrowed sockaddr of sa_len bytes; our PCB.
    unsafe {
        if (*nam).sa_len < 4 {
            return EINVAL;
        }
        *(*so).so_pcb.cast::<u8>() = (*nam).sa_len;
    }
    0
}

unsafe extern "C" fn t_connect(so: *mut socket, nam: *mut sockaddr, _td: *mut thread) -> c_int {
    note("connect");
    // SAFETY: a borrowed sockaddr of sa_len bytes.
    let ok = unsafe {
        (*nam).sa_len >= 4 && (*nam).sa_data[0] as u8 == b'o' && (*nam).sa_data[1] as u8 == b'k'
    };
    if !ok {
        return EINVAL;
    }
    // SAFETY: the kernel entry point, as a module calls it.
    unsafe { kdomain::abi::soisconnected(so) };
    0
}

unsafe extern "C" fn t_disconnect(so: *mut socket) -> c_int {
    note("disconnect");
    // SAFETY: as above.
    unsafe { kdomain::abi::soisdisconnected(so) };
    0
}

unsafe extern "C" fn t_sockaddr(_so: *mut socket, sa: *mut sockaddr) -> c_int {
    note("sockaddr");
    // SAFETY: caller storage with sa_len preset to its size (128).
    unsafe {
        assert!((*sa).sa_len as usize >= NAME.len());
        ptr::copy_nonoverlapping(NAME.as_ptr(), sa.cast::<u8>(), NAME.len());
    }
    0
}

unsafe extern "C" fn t_send(
    so: *mut socket,
    flags: c_int,
    m: *mut mbuf,
    addr: *mut sockaddr,
    control: *mut mbuf,
    _td: *mut thread,
) -> c_int {
    note("send");
    let mode = SEND_MODE.with(|c| c.get());
    // SAFETY: the socket layer hands over `m`/`control` and lends `addr`.
    unsafe {
        match mode {
            SendMode::Echo => {
                if !control.is_null() {
                    kmbuf::abi::m_freem(control);
                    kmbuf::abi::m_freem(m);
                    return EINVAL;
                }
                let src: *const sockaddr = if addr.is_null() {
                    PEER.as_ptr().cast()
                } else {
                    addr
                };
                let rcv = testing::buf(so, SO_RCV);
                testing::mtx_lock(testing::buf_mtx(so, SO_RCV));
                if sockbuf::abi::sbappendaddr_locked(rcv, src, m, null_mut()) == 0 {
                    sockbuf::abi::soroverflow_locked(so);
                    kmbuf::abi::m_freem(m);
                    return ENOBUFS;
                }
                sockbuf::abi::sorwakeup_locked(so);
                0
            }
            SendMode::Drop => {
                kmbuf::abi::m_freem(m);
                kmbuf::abi::m_freem(control);
                0
            }
            SendMode::LeakOk => 0,
            SendMode::LeakErr => EIO,
            SendMode::FreeAddr => {
                malloc::abi::free(addr.cast(), soname_type());
                kmbuf::abi::m_freem(m);
                kmbuf::abi::m_freem(control);
                0
            }
            SendMode::Record => {
                let data = kmbuf::to_vec(m);
                let a = if addr.is_null() {
                    None
                } else {
                    Some(
                        std::slice::from_raw_parts(addr.cast::<u8>(), usize::from((*addr).sa_len))
                            .to_vec(),
                    )
                };
                RECORDED.with(|r| r.borrow_mut().push((data, a, flags)));
                kmbuf::abi::m_freem(m);
                kmbuf::abi::m_freem(control);
                0
            }
        }
    }
}

/// The test domain: `struct domain` followed by its two protosw pointers
/// (the flexible `dom_protosw[]` array), like a module's static.
#[repr(C)]
pub struct TestDomain {
    pub dom: domain,
    pub protos: [*mut protosw; 2],
}

fn protosw(protocol: i32) -> *mut protosw {
    // SAFETY: an all-zero protosw is its C initial state.
    let mut p: protosw = unsafe { std::mem::zeroed() };
    p.pr_type = DGRAM as c_short;
    p.pr_protocol = protocol as c_short;
    p.pr_flags = (fbsd_sys::PR_ATOMIC | fbsd_sys::PR_ADDR) as c_short;
    p.pr_attach = Some(t_attach);
    p.pr_detach = Some(t_detach);
    p.pr_close = Some(t_close);
    p.pr_bind = Some(t_bind);
    p.pr_connect = Some(t_connect);
    p.pr_disconnect = Some(t_disconnect);
    p.pr_send = Some(t_send);
    p.pr_sockaddr = Some(t_sockaddr);
    Box::into_raw(Box::new(p))
}

/// Builds (and leaks, like a module static) the test domain.
pub fn test_domain(flags: i32) -> *mut TestDomain {
    // SAFETY: an all-zero domain is its C initial state.
    let mut d: domain = unsafe { std::mem::zeroed() };
    d.dom_family = FAM;
    d.dom_name = c"testfam".as_ptr().cast_mut();
    d.dom_flags = flags;
    d.dom_nprotosw = 2;
    Box::into_raw(Box::new(TestDomain {
        dom: d,
        protos: [protosw(P_CTL), protosw(P_DATA)],
    }))
}

/// Registers a fresh test domain on this thread; returns it.
pub fn register_domain() -> *mut TestDomain {
    let d = test_domain(fbsd_sys::DOMF_UNLOADABLE as i32);
    // SAFETY: `d` is leaked (valid and writable for the process lifetime).
    unsafe { testing::domain_add(ptr::addr_of_mut!((*d).dom)) };
    d
}

static LOCK: Mutex<()> = Mutex::new(());

/// Serialises the test, installs a root user thread as curthread, clears
/// violations/fault plan, resets the protocol modes and registers the test
/// domain. Returns the guard and the domain.
pub fn setup() -> (MutexGuard<'static, ()>, *mut TestDomain) {
    let g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    kthread::init();
    kthread::set_curthread(kthread::new_thread(Cred::Root));
    fault::clear();
    let _ = take_violations();
    set_send_mode(SendMode::Echo);
    set_attach_mode(AttachMode::Normal);
    let _ = calls();
    RECORDED.with(|r| r.borrow_mut().clear());
    kdomain::set_blocking_bound(Some(kdomain::DEFAULT_BLOCKING_BOUND));
    let d = register_domain();
    (g, d)
}

/// Runs `f` as a new user thread with uid `uid`.
pub fn as_user<R>(uid: u32, f: impl FnOnce() -> R) -> R {
    kthread::with_curthread(kthread::new_thread(Cred::User(uid)), f)
}

/// Asserts that no violation was recorded.
#[track_caller]
pub fn expect_clean() {
    let v = take_violations();
    assert!(v.is_empty(), "unexpected violations: {v:#?}");
}

/// Asserts that exactly the recorded violations each contain one of the
/// `needles` (in order), and returns them.
#[track_caller]
pub fn expect_violations(needles: &[&str]) -> Vec<String> {
    let v = take_violations();
    assert_eq!(
        v.len(),
        needles.len(),
        "violations {v:#?} expected to match {needles:?}"
    );
    for (msg, needle) in v.iter().zip(needles) {
        assert!(
            msg.contains(needle),
            "violation {msg:?} does not contain {needle:?}"
        );
    }
    v
}

/// Live counts that must return to their start values.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Counts {
    pub sockets: usize,
    pub mbufs: usize,
    pub soname: usize,
    pub pcb: usize,
}

pub fn counts() -> Counts {
    Counts {
        sockets: kdomain::open_sockets(),
        mbufs: kmbuf::live(),
        soname: malloc::live(soname_type()),
        pcb: malloc::live(pcb_type()),
    }
}

/// A sockaddr of the test family: len, family, text.
pub fn addr(text: &str) -> Vec<u8> {
    let mut v = vec![0u8, FAM as u8];
    v.extend_from_slice(text.as_bytes());
    v.push(0);
    v[0] = v.len() as u8;
    v
}
