//! Shared helpers of the socket(9) model tests (`inet_*.rs`): they drive
//! the exported functions directly, acting as a module would.
//!
//! Violations, the lock model and the mbuf/malloc tables are process-global,
//! so the tests of one binary run one at a time ([`setup`]).

#![allow(dead_code)]

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use fbsd_sys::{mbuf, sb_which, sockaddr, sockaddr_storage, socket, sockopt, thread, ucred, uio};
use ngharness::kern::inet::{self, api};
use ngharness::kern::{lock, malloc, mbuf as kmbuf, take_violations, thread as kthread};

pub const PF_LOCAL: c_int = 1;
pub const PF_INET: c_int = 2;
pub const PF_INET6: c_int = 28;
pub const SOCK_STREAM: c_int = 1;
pub const SOCK_DGRAM: c_int = 2;
pub const SOCK_RAW: c_int = 3;
pub const SOCK_SEQPACKET: c_int = 5;
pub const MSG_DONTWAIT: c_int = 0x80;
pub const MSG_TRUNC: c_int = 0x10;
pub const SS_ISCONNECTED: i16 = 0x2;
pub const SS_ISCONNECTING: i16 = 0x4;
pub const SS_NBIO: i16 = 0x100;
pub const SS_ISDISCONNECTED: i16 = 0x2000;
pub const SBS_CANTRCVMORE: i16 = 0x20;
pub const M_NOWAIT: c_int = 1;
pub const SO_RCV: sb_which = fbsd_sys::SO_RCV;
pub const SO_SND: sb_which = fbsd_sys::SO_SND;
pub const LOOP4: [u8; 4] = [127, 0, 0, 1];
pub const WAIT_MS: u64 = 3000;

static LOCK: Mutex<()> = Mutex::new(());

/// One test's environment: a "user process" thread with a root credential
/// made current, the vnet set, violations cleared.
pub struct Env {
    pub td: *mut thread,
    pub cred: *mut ucred,
    _g: MutexGuard<'static, ()>,
}

pub fn setup() -> Env {
    let g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    kthread::init();
    let _ = take_violations();
    let td = kthread::new_thread(kthread::Cred::Root);
    kthread::set_curthread(td);
    kthread::set_curvnet(kthread::vnet0());
    // SAFETY: a fresh harness thread.
    let cred = unsafe { (*td).td_ucred };
    Env { td, cred, _g: g }
}

impl Drop for Env {
    fn drop(&mut self) {
        inet::reset();
    }
}

/// Asserts that no violation was recorded.
#[track_caller]
pub fn expect_clean() {
    let v = take_violations();
    assert!(v.is_empty(), "unexpected violations: {v:#?}");
}

/// Asserts the recorded violations, each containing its needle (in order).
#[track_caller]
pub fn expect_violations(needles: &[&str]) {
    let v = take_violations();
    assert_eq!(
        v.len(),
        needles.len(),
        "violations {v:#?} expected to match {needles:?}"
    );
    for (m, n) in v.iter().zip(needles) {
        assert!(m.contains(n), "violation {m:?} does not contain {n:?}");
    }
}

impl Env {
    pub fn socreate(&self, dom: c_int, ty: c_int, proto: c_int) -> Result<*mut socket, c_int> {
        self.socreate_cred(dom, ty, proto, self.cred)
    }

    pub fn socreate_cred(
        &self,
        dom: c_int,
        ty: c_int,
        proto: c_int,
        cred: *mut ucred,
    ) -> Result<*mut socket, c_int> {
        let mut so = null_mut();
        // SAFETY: valid arguments.
        let e = unsafe { api::socreate(dom, &mut so, ty, proto, cred, self.td) };
        if e == 0 {
            assert!(!so.is_null());
            Ok(so)
        } else {
            Err(e)
        }
    }

    pub fn bind(&self, so: *mut socket, a: &[u8]) -> c_int {
        let mut ss = storage(a);
        // SAFETY: valid socket and address.
        unsafe { api::sobind(so, (&mut ss as *mut sockaddr_storage).cast(), self.td) }
    }

    pub fn connect(&self, so: *mut socket, a: &[u8]) -> c_int {
        let mut ss = storage(a);
        // SAFETY: valid socket and address.
        unsafe { api::soconnect(so, (&mut ss as *mut sockaddr_storage).cast(), self.td) }
    }

    pub fn listen(&self, so: *mut socket, backlog: c_int) -> c_int {
        // SAFETY: valid socket.
        unsafe { api::solisten(so, backlog, self.td) }
    }

    /// `sosend` of a packet-header chain holding `data`.
    pub fn send(&self, so: *mut socket, to: Option<&[u8]>, data: &[u8]) -> c_int {
        let m = kmbuf::from_bytes(data);
        self.send_chain(so, to, m)
    }

    pub fn send_chain(&self, so: *mut socket, to: Option<&[u8]>, m: *mut mbuf) -> c_int {
        let mut ss = to.map(storage);
        let a = ss.as_mut().map_or(null_mut(), |s| {
            (s as *mut sockaddr_storage).cast::<sockaddr>()
        });
        // SAFETY: valid socket, chain and address.
        unsafe { api::sosend(so, a, null_mut(), m, null_mut(), 0, self.td) }
    }
}

/// A `sockaddr_storage` holding FreeBSD sockaddr bytes.
pub fn storage(a: &[u8]) -> sockaddr_storage {
    let mut ss = sockaddr_storage::default();
    // SAFETY: `a` is at most 128 bytes (a sockaddr).
    unsafe {
        std::ptr::copy_nonoverlapping(
            a.as_ptr(),
            (&mut ss as *mut sockaddr_storage).cast::<u8>(),
            a.len(),
        )
    };
    ss
}

/// Result of [`recv`].
pub struct Recv {
    pub err: c_int,
    pub data: Option<Vec<u8>>,
    pub pkthdr: bool,
    /// `m_flags` of the first mbuf returned.
    pub mflags: u32,
    pub addr: Option<Vec<u8>>,
    pub flags: c_int,
    pub resid_left: isize,
}

/// `soreceive` in the mbuf form ng_ksocket uses (`MSG_DONTWAIT`).
pub fn recv(so: *mut socket, resid: isize, want_addr: bool) -> Recv {
    recv_flags(so, resid, want_addr, MSG_DONTWAIT)
}

pub fn recv_flags(so: *mut socket, resid: isize, want_addr: bool, flags: c_int) -> Recv {
    let mut u = uio {
        uio_resid: resid,
        ..Default::default()
    };
    let mut m: *mut mbuf = null_mut();
    let mut sa: *mut sockaddr = null_mut();
    let mut fl = flags;
    let psa = if want_addr {
        &mut sa as *mut *mut sockaddr
    } else {
        null_mut()
    };
    // SAFETY: valid out-pointers.
    let err = unsafe { api::soreceive(so, psa, &mut u, &mut m, null_mut(), &mut fl) };
    let (data, pkthdr, mflags) = if m.is_null() {
        (None, false, 0)
    } else {
        // SAFETY: a live chain handed to us.
        let mf = unsafe { kmbuf::fields::flags(m) };
        let d = kmbuf::to_vec(m);
        kmbuf::free_chain(m);
        (Some(d), mf & fbsd_sys::M_PKTHDR != 0, mf)
    };
    let addr = if sa.is_null() {
        None
    } else {
        // SAFETY: an M_SONAME sockaddr handed to us.
        let b = unsafe { inet_bytes(sa) };
        malloc::kfree(sa.cast(), malloc::harness_type("soname"));
        Some(b)
    };
    Recv {
        err,
        data,
        pkthdr,
        mflags,
        addr,
        flags: fl,
        resid_left: u.uio_resid,
    }
}

/// The `sa_len` bytes of a sockaddr.
///
/// # Safety
/// `sa` must be a readable sockaddr.
pub unsafe fn inet_bytes(sa: *const sockaddr) -> Vec<u8> {
    // SAFETY: caller's contract.
    unsafe {
        let n = usize::from((*sa).sa_len);
        std::slice::from_raw_parts(sa.cast::<u8>(), n).to_vec()
    }
}

pub fn sockname(so: *mut socket) -> Vec<u8> {
    let mut ss = sockaddr_storage {
        ss_len: 128,
        ..Default::default()
    };
    // SAFETY: valid socket and storage.
    let e = unsafe { api::sosockaddr(so, (&mut ss as *mut sockaddr_storage).cast()) };
    assert_eq!(e, 0, "sosockaddr");
    // SAFETY: filled sockaddr.
    unsafe { inet_bytes((&ss as *const sockaddr_storage).cast()) }
}

pub fn peername(so: *mut socket) -> (c_int, Vec<u8>) {
    let mut ss = sockaddr_storage {
        ss_len: 128,
        ..Default::default()
    };
    // SAFETY: valid socket and storage.
    let e = unsafe { api::sopeeraddr(so, (&mut ss as *mut sockaddr_storage).cast()) };
    // SAFETY: filled sockaddr.
    (e, unsafe {
        inet_bytes((&ss as *const sockaddr_storage).cast())
    })
}

pub fn port_of(a: &[u8]) -> u16 {
    u16::from_be_bytes([a[2], a[3]])
}

pub fn so_state(so: *mut socket) -> i16 {
    // SAFETY: live socket.
    unsafe { (*so).so_state }
}

pub fn so_error(so: *mut socket) -> u16 {
    // SAFETY: live socket.
    unsafe { (*so).so_error }
}

pub fn rcv_sb_state(so: *mut socket) -> i16 {
    // SAFETY: live, non-listening socket.
    unsafe { (*so).__bindgen_anon_1.__bindgen_anon_1.so_rcv.sb_state }
}

pub fn set_nbio(so: *mut socket) {
    inet::sock_lock(so);
    // SAFETY: live socket, SOCK_LOCK held.
    unsafe { (*so).so_state |= SS_NBIO };
    inet::sock_unlock(so);
}

pub fn close(so: *mut socket) -> c_int {
    // SAFETY: the caller's reference.
    unsafe { api::soclose(so) }
}

/// What an upcall saw.
#[derive(Default)]
pub struct Rec {
    pub calls: AtomicUsize,
    pub bad_waitflag: AtomicBool,
    pub lock_missing: AtomicBool,
    pub last_so: AtomicUsize,
}

impl Rec {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn assert_sane(&self) {
        assert!(
            !self.bad_waitflag.load(Ordering::SeqCst),
            "upcall got a waitflag other than M_NOWAIT"
        );
        assert!(
            !self.lock_missing.load(Ordering::SeqCst),
            "upcall ran without its lock held"
        );
    }
}

/// A module-style upcall recording into the `Rec` behind `arg`.
///
/// # Safety
/// `arg` must point at a live `Rec`.
pub unsafe extern "C" fn rec_upcall(so: *mut socket, arg: *mut c_void, waitflag: c_int) -> c_int {
    // SAFETY: the test registers a live Rec.
    let r = unsafe { &*(arg as *const Rec) };
    r.calls.fetch_add(1, Ordering::SeqCst);
    r.last_so.store(so as usize, Ordering::SeqCst);
    if waitflag != M_NOWAIT {
        r.bad_waitflag.store(true, Ordering::SeqCst);
    }
    if lock::held_count() == 0 {
        r.lock_missing.store(true, Ordering::SeqCst);
    }
    0
}

pub fn set_upcall(so: *mut socket, which: sb_which, rec: &Rec) {
    inet::buf_lock(so, which);
    // SAFETY: valid socket; the buffer mutex is held.
    unsafe {
        api::soupcall_set(
            so,
            which,
            Some(rec_upcall),
            (rec as *const Rec).cast_mut().cast(),
        )
    };
    inet::buf_unlock(so, which);
}

pub fn clear_upcall(so: *mut socket, which: sb_which) {
    inet::buf_lock(so, which);
    // SAFETY: valid socket; the buffer mutex is held.
    unsafe { api::soupcall_clear(so, which) };
    inet::buf_unlock(so, which);
}

pub fn set_listen_upcall(so: *mut socket, rec: Option<&Rec>) {
    inet::sock_lock(so);
    let (f, a): (fbsd_sys::so_upcall_t, *mut c_void) = match rec {
        Some(r) => (Some(rec_upcall), (r as *const Rec).cast_mut().cast()),
        None => (None, null_mut()),
    };
    // SAFETY: valid socket; the listen lock is held.
    unsafe { api::solisten_upcall_set(so, f, a) };
    inet::sock_unlock(so);
}

/// `sosetopt` with an int value; returns the error.
pub fn setopt_int(so: *mut socket, level: c_int, name: c_int, v: c_int) -> c_int {
    setopt_bytes(so, level, name, &v.to_ne_bytes())
}

pub fn setopt_bytes(so: *mut socket, level: c_int, name: c_int, v: &[u8]) -> c_int {
    let mut val = v.to_vec();
    let mut s = sockopt {
        sopt_dir: fbsd_sys::SOPT_SET,
        sopt_level: level,
        sopt_name: name,
        sopt_val: val.as_mut_ptr().cast(),
        sopt_valsize: val.len(),
        ..Default::default()
    };
    // SAFETY: valid socket and sockopt.
    unsafe { api::sosetopt(so, &mut s) }
}

/// `sogetopt` into a `room`-byte buffer: (error, bytes, valsize out).
pub fn getopt(so: *mut socket, level: c_int, name: c_int, room: usize) -> (c_int, Vec<u8>, usize) {
    let mut val = vec![0u8; room];
    let mut s = sockopt {
        sopt_dir: fbsd_sys::SOPT_GET,
        sopt_level: level,
        sopt_name: name,
        sopt_val: val.as_mut_ptr().cast(),
        sopt_valsize: room,
        ..Default::default()
    };
    // SAFETY: valid socket and sockopt.
    let e = unsafe { api::sogetopt(so, &mut s) };
    (e, val, s.sopt_valsize)
}

pub fn getopt_int(so: *mut socket, level: c_int, name: c_int) -> (c_int, c_int) {
    let (e, v, n) = getopt(so, level, name, 4);
    if e != 0 {
        return (e, 0);
    }
    assert_eq!(n, 4);
    (0, c_int::from_ne_bytes([v[0], v[1], v[2], v[3]]))
}

/// A fresh directory for local-socket paths.
pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ngharness-inet-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
