//! The protocol side of the socket layer: what a protocol family's methods
//! (`struct protosw`) may do with the `struct socket` the socket layer hands
//! them, and the kernel services around it (privilege, module loading).
//!
//! A [`ProtoSocket`] is borrowed for the duration of one protocol method
//! (the socket layer holds a reference). Receive-buffer operations go through
//! [`RcvBufGuard`], which holds the buffer mutex and releases it exactly as
//! the kernel functions require: `sorwakeup_locked` and `soroverflow_locked`
//! release it themselves, so they consume the guard.

use core::ffi::{c_char, c_void, CStr};
use core::ptr::NonNull;

use fbsd_sys::{sockaddr, socket};

use super::errno::{Errno, KResult};
use super::mbuf::Mbuf;
use super::thread::CurThread;

use super::ffi::{ngsock_so_rcvbuf_lock, ngsock_so_rcvbuf_unlock, ngsock_so_state_change};

/// A socket borrowed by a protocol method.
#[derive(Clone, Copy)]
pub struct ProtoSocket {
    so: NonNull<socket>,
}

// SAFETY: a `struct socket` is shared between threads by design; every field
// access below follows the kernel's locking rules.
unsafe impl Send for ProtoSocket {}

impl ProtoSocket {
    /// Wraps a socket handed to a protocol method.
    ///
    /// # Safety
    /// `so` must be a socket the socket layer keeps referenced while the
    /// value is used (during a protocol method, or while the protocol's PCB
    /// links it: the PCB is freed in `pr_detach`, before the socket).
    pub unsafe fn from_raw(so: *mut socket) -> Option<Self> {
        NonNull::new(so).map(|so| ProtoSocket { so })
    }

    /// Wraps a socket pointer known to be non-NULL.
    ///
    /// # Safety
    /// As for [`ProtoSocket::from_raw`].
    pub unsafe fn from_nonnull(so: NonNull<socket>) -> Self {
        ProtoSocket { so }
    }

    /// The non-NULL pointer.
    pub fn as_nonnull(self) -> NonNull<socket> {
        self.so
    }

    /// Raw pointer.
    pub fn as_ptr(self) -> *mut socket {
        self.so.as_ptr()
    }

    /// The protocol control block pointer (`so_pcb`).
    pub fn pcb(self) -> *mut c_void {
        // SAFETY: the socket is referenced; so_pcb is written only by the
        // protocol's own attach and detach, which the socket layer serialises.
        unsafe { (*self.so.as_ptr()).so_pcb }
    }

    /// `soreserve(so, snd, rcv)`; `ENOBUFS` above the system limit.
    pub fn reserve(self, snd: u64, rcv: u64) -> KResult<()> {
        // SAFETY: called from pr_attach with no socket-buffer lock held, as
        // soreserve requires (it takes both buffer mutexes itself).
        Errno::check(unsafe { fbsd_sys::soreserve(self.so.as_ptr(), snd, rcv) })
    }

    /// `soisdisconnected`: further sends fail with EPIPE, reads drain then EOF.
    pub fn set_disconnected(self) {
        // SAFETY: the socket is referenced; no socket lock is held by the caller.
        unsafe { fbsd_sys::soisdisconnected(self.so.as_ptr()) }
    }

    /// Sets or clears `SS_ISCONNECTED` under the socket lock.
    pub fn set_connected_flag(self, connected: bool) {
        #[allow(clippy::cast_possible_wrap)]
        const SS_ISCONNECTED: i32 = fbsd_sys::SS_ISCONNECTED as i32;
        let (set, clear) = if connected {
            (SS_ISCONNECTED, 0)
        } else {
            (0, SS_ISCONNECTED)
        };
        // SAFETY: the socket is referenced; the glue changes so_state under
        // the socket lock.
        unsafe { ngsock_so_state_change(self.so.as_ptr(), set, clear) }
    }

    /// Locks the receive buffer.
    pub fn lock_rcvbuf(self) -> RcvBufGuard {
        // SAFETY: the socket is referenced; its receive mutex is initialised.
        unsafe { ngsock_so_rcvbuf_lock(self.so.as_ptr()) };
        RcvBufGuard {
            so: self,
            held: true,
        }
    }
}

/// The receive buffer of a [`ProtoSocket`], locked.
pub struct RcvBufGuard {
    so: ProtoSocket,
    held: bool,
}

impl RcvBufGuard {
    /// `sbappendaddr_locked`: queues `m` as one datagram from `from`. On
    /// success the buffer owns the chain; on failure (no space, or no mbuf
    /// for the address) the chain comes back to the caller.
    pub fn append_addr(&mut self, from: &[u8], m: Mbuf) -> Result<(), Mbuf> {
        let raw = m.into_raw();
        // SAFETY: the receive mutex is held; `from` is a valid sockaddr of
        // sa_len bytes that the kernel copies; on 0 the chain was not touched.
        let ok = unsafe {
            let so = self.so.as_ptr();
            fbsd_sys::sbappendaddr_locked(
                &raw mut (*so).__bindgen_anon_1.__bindgen_anon_1.so_rcv,
                from.as_ptr().cast::<sockaddr>(),
                raw,
                core::ptr::null_mut(),
            )
        };
        if ok != 0 {
            Ok(())
        } else {
            // SAFETY: sbappendaddr_locked returned 0: the caller still owns the chain.
            match unsafe { Mbuf::from_raw(raw) } {
                Some(m) => Err(m),
                None => Ok(()),
            }
        }
    }

    /// `sorwakeup_locked`: wakes readers and releases the buffer mutex.
    pub fn wakeup(mut self) {
        self.held = false;
        // SAFETY: the receive mutex is held; sorwakeup_locked releases it.
        unsafe { fbsd_sys::sorwakeup_locked(self.so.as_ptr()) }
    }

    /// `soroverflow_locked`: records the overflow and releases the mutex.
    pub fn overflow(mut self) {
        self.held = false;
        // SAFETY: the receive mutex is held; soroverflow_locked releases it.
        unsafe { fbsd_sys::soroverflow_locked(self.so.as_ptr()) }
    }
}

impl Drop for RcvBufGuard {
    fn drop(&mut self) {
        if self.held {
            // SAFETY: the guard holds the receive mutex.
            unsafe { ngsock_so_rcvbuf_unlock(self.so.as_ptr()) }
        }
    }
}

/// `priv_check(curthread, priv)`.
pub fn priv_check(privilege: i32) -> KResult<()> {
    // SAFETY: the running thread is valid; called from pr_attach (sleepable).
    Errno::check(unsafe { fbsd_sys::priv_check(CurThread::get().as_ptr(), privilege) })
}

/// A module loaded by [`kldload`]; [`LoadedModule::unload`] undoes it.
pub struct LoadedModule(i32);

/// `kern_kldload(curthread, name)`: must run in a syscall thread with no
/// lock held and outside the network epoch.
pub fn kldload(name: &CStr) -> KResult<LoadedModule> {
    let mut id: i32 = 0;
    // SAFETY: called from pr_send in the sending process's thread, no locks held.
    Errno::check(unsafe {
        fbsd_sys::kern_kldload(CurThread::get().as_ptr(), name.as_ptr(), &mut id)
    })?;
    Ok(LoadedModule(id))
}

impl LoadedModule {
    /// `kern_kldunload(curthread, id, LINKER_UNLOAD_NORMAL)`.
    pub fn unload(self) {
        // SAFETY: as for kldload; the id came from kern_kldload.
        let _ = unsafe { fbsd_sys::kern_kldunload(CurThread::get().as_ptr(), self.0, 0) };
    }
}

/// True if a netgraph node type of this name is registered (`ng_findtype`).
pub fn type_exists(name: &CStr) -> bool {
    // SAFETY: ng_findtype only reads the type list under netgraph's lock.
    !unsafe { fbsd_sys::ng_findtype(name.as_ptr()) }.is_null()
}

/// Writes `s` plus NUL into `buf`, truncating; returns the C string length.
pub fn copy_cstr(buf: &mut [u8], s: &[u8]) -> usize {
    let n = s.len().min(buf.len().saturating_sub(1));
    for (d, v) in buf.iter_mut().zip(s.iter().take(n)) {
        *d = *v;
    }
    if let Some(z) = buf.get_mut(n) {
        *z = 0;
    }
    n
}

/// Reads a C string out of a fixed buffer (up to the first NUL or the end).
pub fn cstr_bytes(buf: &[c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let b = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len()) };
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b.get(..end).unwrap_or(b)
}

/// Protocol control blocks a protocol keeps in `so_pcb`, per family.
pub trait ProtoPcb: Send + Sync + 'static {
    /// The family whose sockets carry this PCB type.
    const FAMILY: i32;
}

impl ProtoSocket {
    fn family(self) -> i32 {
        // SAFETY: so_proto and its domain are set by socreate and stay valid
        // for the socket's life (the domain is registered while sockets exist).
        unsafe {
            let pr = (*self.so.as_ptr()).so_proto;
            if pr.is_null() || (*pr).pr_domain.is_null() {
                return -1;
            }
            (*(*pr).pr_domain).dom_family
        }
    }

    /// Installs the protocol's PCB (`so_pcb`). `EINVAL` for a socket of
    /// another family; `EISCONN` if one is already installed.
    pub fn set_pcb<P: ProtoPcb>(self, p: super::sync::KArc<P>) -> KResult<()> {
        if self.family() != P::FAMILY {
            return Err(Errno::EINVAL);
        }
        if !self.pcb().is_null() {
            return Err(Errno::EISCONN);
        }
        self.set_pcb_raw(p.into_raw());
        Ok(())
    }

    fn set_pcb_raw(self, p: *mut c_void) {
        // SAFETY: so_pcb is written only by the protocol's attach and detach.
        unsafe { (*self.so.as_ptr()).so_pcb = p }
    }

    /// A new reference to the PCB, if the socket has one of type `P`.
    pub fn pcb_of<P: ProtoPcb>(self) -> Option<super::sync::KArc<P>> {
        if self.family() != P::FAMILY {
            return None;
        }
        // SAFETY: sockets of P::FAMILY only ever hold a KArc<P> (installed
        // by `set_pcb`) or NULL in so_pcb; the socket layer keeps the socket,
        // hence the PCB reference, alive during the protocol method.
        unsafe { super::sync::KArc::clone_raw(self.pcb()) }
    }

    /// Removes and returns the PCB (from `pr_detach`).
    pub fn take_pcb<P: ProtoPcb>(self) -> Option<super::sync::KArc<P>> {
        if self.family() != P::FAMILY {
            return None;
        }
        let p = self.pcb();
        self.set_pcb_raw(core::ptr::null_mut());
        // SAFETY: as in `pcb_of`; the slot's reference moves to the caller.
        unsafe { super::sync::KArc::from_raw(p) }
    }

    /// Bytes queued in the receive buffer.
    pub fn rcv_cc(self) -> u32 {
        // SAFETY: a racy read of a counter, for diagnostics only.
        unsafe {
            (*self.so.as_ptr())
                .__bindgen_anon_1
                .__bindgen_anon_1
                .so_rcv
                .sb_ccc
        }
    }
}

/// Converts a borrowed `struct sockaddr` argument into its bytes (`sa_len`
/// of them, at least 2).
///
/// # Safety
/// `sa` must be NULL or point to at least `sa_len` readable bytes for `'a`.
pub unsafe fn sockaddr_bytes<'a>(sa: *const sockaddr) -> Option<&'a [u8]> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    unsafe {
        let len = usize::from((*sa).sa_len).max(2);
        Some(core::slice::from_raw_parts(sa.cast::<u8>(), len))
    }
}

/// Declares the C entry points of a protocol switch, each forwarding to a
/// safe Rust function. The socket layer guarantees what every `SAFETY`
/// comment below relies on: the socket is referenced for the call, and
/// address arguments are valid for `sa_len` bytes.
#[macro_export]
macro_rules! protosw_entries {
    (attach $sym:ident => $f:path) => {
        #[no_mangle]
        pub unsafe extern "C" fn $sym(
            so: *mut fbsd_sys::socket,
            proto: core::ffi::c_int,
            _td: *mut fbsd_sys::thread,
        ) -> core::ffi::c_int {
            // SAFETY: pr_attach receives a referenced socket.
            match unsafe { $crate::kern::sockproto::ProtoSocket::from_raw(so) } {
                Some(s) => $crate::kern::errno::to_raw($f(s, proto)),
                None => $crate::kern::errno::Errno::EINVAL.raw(),
            }
        }
    };
    (addr $sym:ident => $f:path) => {
        #[no_mangle]
        pub unsafe extern "C" fn $sym(
            so: *mut fbsd_sys::socket,
            nam: *mut fbsd_sys::sockaddr,
            _td: *mut fbsd_sys::thread,
        ) -> core::ffi::c_int {
            // SAFETY: the socket is referenced; `nam` is the kernel's copy of
            // the caller's address, valid for sa_len bytes during the call.
            let (s, a) = unsafe {
                (
                    $crate::kern::sockproto::ProtoSocket::from_raw(so),
                    $crate::kern::sockproto::sockaddr_bytes(nam),
                )
            };
            match (s, a) {
                (Some(s), Some(a)) => $crate::kern::errno::to_raw($f(s, a)),
                _ => $crate::kern::errno::Errno::EINVAL.raw(),
            }
        }
    };
    (detach $sym:ident => $f:path) => {
        #[no_mangle]
        pub unsafe extern "C" fn $sym(so: *mut fbsd_sys::socket) {
            // SAFETY: pr_detach receives the socket being freed, still valid.
            if let Some(s) = unsafe { $crate::kern::sockproto::ProtoSocket::from_raw(so) } {
                $f(s);
            }
        }
    };
    (disconnect $sym:ident => $f:path) => {
        #[no_mangle]
        pub unsafe extern "C" fn $sym(so: *mut fbsd_sys::socket) -> core::ffi::c_int {
            // SAFETY: the socket is referenced for the call.
            match unsafe { $crate::kern::sockproto::ProtoSocket::from_raw(so) } {
                Some(s) => $crate::kern::errno::to_raw($f(s)),
                None => $crate::kern::errno::Errno::EINVAL.raw(),
            }
        }
    };
    (send $sym:ident => $f:path) => {
        #[no_mangle]
        pub unsafe extern "C" fn $sym(
            so: *mut fbsd_sys::socket,
            _flags: core::ffi::c_int,
            m: *mut fbsd_sys::mbuf,
            nam: *mut fbsd_sys::sockaddr,
            control: *mut fbsd_sys::mbuf,
            _td: *mut fbsd_sys::thread,
        ) -> core::ffi::c_int {
            // SAFETY: pr_send owns `m` and `control` on every path: they
            // become owned values here and are freed when dropped unless
            // passed on. The socket is referenced; `nam` is borrowed.
            let (s, m, a, c) = unsafe {
                (
                    $crate::kern::sockproto::ProtoSocket::from_raw(so),
                    $crate::kern::mbuf::Mbuf::from_raw(m),
                    $crate::kern::sockproto::sockaddr_bytes(nam),
                    $crate::kern::mbuf::Mbuf::from_raw(control),
                )
            };
            match s {
                Some(s) => $crate::kern::errno::to_raw($f(s, m, a, c)),
                None => $crate::kern::errno::Errno::EINVAL.raw(),
            }
        }
    };
    (sockaddr $sym:ident => $f:path) => {
        #[no_mangle]
        pub unsafe extern "C" fn $sym(
            so: *mut fbsd_sys::socket,
            sa: *mut fbsd_sys::sockaddr,
        ) -> core::ffi::c_int {
            // SAFETY: the caller's storage is valid for its preset sa_len.
            let (s, buf) = unsafe {
                (
                    $crate::kern::sockproto::ProtoSocket::from_raw(so),
                    $crate::kern::sockproto::sockaddr_storage_mut(sa),
                )
            };
            match (s, buf) {
                (Some(s), Some(b)) => $crate::kern::errno::to_raw($f(s, b)),
                _ => $crate::kern::errno::Errno::EINVAL.raw(),
            }
        }
    };
}

/// The caller-provided storage of `pr_sockaddr`: `sa_len` bytes.
///
/// # Safety
/// `sa` must be NULL or writable for its preset `sa_len` bytes during `'a`.
pub unsafe fn sockaddr_storage_mut<'a>(sa: *mut sockaddr) -> Option<&'a mut [u8]> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    unsafe {
        let len = usize::from((*sa).sa_len);
        Some(core::slice::from_raw_parts_mut(sa.cast::<u8>(), len))
    }
}

/// The bytes of `b` up to its first NUL (or all of it).
pub fn cstr_bytes_u8(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b.get(..end).unwrap_or(b)
}
