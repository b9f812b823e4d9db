//! The protocol side of the socket layer: a protocol family's methods
//! (`struct protosw`) written in safe Rust.
//!
//! * A [`Protocol`] names its protocol control block type; the entry points
//!   ([`protosw_entries!`](crate::protosw_entries)) hand each method a
//!   [`ProtoSocket`], the socket borrowed for the call.
//! * The PCB lives in `so_pcb`, in kernel memory this layer owns: methods
//!   borrow it ([`ProtoSocket::pcb`], pinned: it never moves), `pr_detach`
//!   gets it last ([`Detaching`]) and it is freed when that returns.
//! * Code outside the socket's methods (a netgraph node the socket is
//!   attached to) keeps a [`SocketLink`]: a counted link that `pr_detach`
//!   waits for, so a linked socket is never freed. Receive-buffer operations
//!   go through [`RcvBufGuard`], which holds the buffer mutex and releases
//!   it exactly as the kernel functions require: `sorwakeup_locked` and
//!   `soroverflow_locked` release it themselves, so they consume the guard.

use core::ffi::{c_int, c_void, CStr};
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;

use fbsd_sys::{sockaddr, socket};

use super::errno::{Errno, KResult};
use super::ffi::{ngsock_so_rcvbuf_lock, ngsock_so_rcvbuf_unlock, ngsock_so_state_change};
use super::malloc::{KBox, MallocType};
use super::mbuf::Mbuf;
use super::sync::{wakeup, ArcSlot, Mutex, SlotPtr};

/// `AF_NETGRAPH`.
pub const AF_NETGRAPH: u8 = fbsd_sys::AF_NETGRAPH as u8;

/// A protocol whose methods are written in Rust.
pub trait Protocol: 'static {
    /// The protocol control block each socket carries (`so_pcb`).
    type Pcb: Send + Sync;
    /// The malloc type of the PCBs.
    fn malloc_type() -> MallocType;
}

/// What `so_pcb` points to: the protocol's PCB and this layer's count of
/// the socket's links.
struct PcbCell<P> {
    /// Live [`SocketLink`]s of the socket; `pr_detach` waits for zero.
    links: Mutex<u32>,
    pcb: P,
}

/// A socket borrowed by a method of protocol `P`.
///
/// # Invariants
///
/// `so` is a socket of protocol `P` the socket layer keeps referenced for
/// `'a` (a method of it is running), whose `so_pcb` is NULL or a
/// `PcbCell<P::Pcb>` installed by [`ProtoSocket::set_pcb`]. No method runs
/// concurrently with its `pr_detach`.
pub struct ProtoSocket<'a, P: Protocol> {
    so: NonNull<socket>,
    _life: PhantomData<&'a socket>,
    _proto: PhantomData<fn() -> P>,
}

impl<P: Protocol> Clone for ProtoSocket<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Protocol> Copy for ProtoSocket<'_, P> {}

impl<'a, P: Protocol> ProtoSocket<'a, P> {
    /// Wraps the socket a protocol method was handed.
    ///
    /// # Safety
    ///
    /// `so` must be NULL or a socket of protocol `P` for which a method
    /// other than `pr_detach` is running for `'a`.
    #[doc(hidden)]
    pub unsafe fn from_raw(so: *mut socket) -> Option<Self> {
        NonNull::new(so).map(|so| ProtoSocket {
            so,
            _life: PhantomData,
            _proto: PhantomData,
        })
    }

    fn cell(self) -> Option<&'a PcbCell<P::Pcb>> {
        // SAFETY: so_pcb is NULL or a PcbCell<P::Pcb> (invariant), freed only
        // after pr_detach, which does not run during 'a.
        unsafe {
            let p = (*self.so.as_ptr()).so_pcb;
            p.cast::<PcbCell<P::Pcb>>().as_ref()
        }
    }

    /// The socket's PCB, if it has one (it never moves).
    pub fn pcb(self) -> Option<Pin<&'a P::Pcb>> {
        // SAFETY: the cell is in kernel memory that never moves until it
        // is freed after pr_detach.
        self.cell().map(|c| unsafe { Pin::new_unchecked(&c.pcb) })
    }

    /// Installs the socket's PCB (from `pr_attach`); `EISCONN` if one is
    /// installed already, `ENOMEM` without memory.
    pub fn set_pcb(self, pcb: P::Pcb) -> KResult<Pin<&'a P::Pcb>> {
        if self.cell().is_some() {
            return Err(Errno::EISCONN);
        }
        let cell = KBox::try_new(
            PcbCell {
                links: Mutex::new(0),
                pcb,
            },
            P::malloc_type(),
        )?;
        let raw = KBox::into_raw(cell);
        // SAFETY: the cell is fresh kernel memory that never moves; its
        // mutex is initialised once, in place. so_pcb is written only by
        // this method and by pr_detach, which the socket layer serialises.
        unsafe {
            Pin::new_unchecked(&(*raw).links).init(c"ngsock pcb links");
            (*self.so.as_ptr()).so_pcb = raw.cast::<c_void>();
        }
        self.pcb().ok_or(Errno::EINVAL)
    }

    /// A link to the socket for use outside its methods (see
    /// [`SocketLink`]); `None` without a PCB.
    pub fn link(self) -> Option<SocketLink> {
        let cell = self.cell()?;
        let mut n = cell.links.lock().ok()?;
        *n = n.checked_add(1)?;
        drop(n);
        Some(SocketLink {
            so: self.so,
            links: NonNull::from(&cell.links),
        })
    }

    /// An opaque identity of the socket (what a PCB records for netstat).
    pub fn id(self) -> SocketId {
        SocketId(self.so)
    }

    /// `soreserve(so, snd, rcv)`; `ENOBUFS` above the system limit.
    pub fn reserve(self, snd: u64, rcv: u64) -> KResult<()> {
        // SAFETY: called from pr_attach with no socket-buffer lock held, as
        // soreserve requires (it takes both buffer mutexes itself).
        Errno::check(unsafe { fbsd_sys::soreserve(self.so.as_ptr(), snd, rcv) })
    }
}

/// The socket being detached (`pr_detach`): no other method of it runs,
/// and its PCB is freed (after its links are gone) when the method returns.
///
/// # Invariants
///
/// `pcb` is the PCB of a socket in its `pr_detach`; the PCB is reachable
/// only through this value (no method of the socket runs any more).
pub struct Detaching<'a, P: Protocol> {
    pcb: Pin<&'a P::Pcb>,
}

impl<'a, P: Protocol> Detaching<'a, P> {
    /// The socket's PCB, for as long as `self` is borrowed.
    pub fn pcb(&self) -> Pin<&P::Pcb> {
        self.pcb
    }

    /// Ends the detach by emptying a slot of the PCB (`field` picks it):
    /// what it holds is handed over. `None` for an empty slot, or one that
    /// is not part of the PCB.
    pub fn take<T: SlotPtr>(self, field: impl FnOnce(&P::Pcb) -> &ArcSlot<T>) -> Option<T> {
        let pcb = self.pcb.get_ref();
        let slot = field(pcb);
        let (base, at) = (
            pcb as *const P::Pcb as usize,
            slot as *const ArcSlot<T> as usize,
        );
        let inside = at >= base
            && at
                .checked_add(core::mem::size_of::<ArcSlot<T>>())
                .is_some_and(|end| end <= base.saturating_add(core::mem::size_of::<P::Pcb>()));
        if !inside {
            return None;
        }
        // SAFETY: the slot is part of the PCB (checked above), reachable only
        // through this value (invariant), which is consumed: no borrow of
        // what the slot holds (`ArcSlot::get` through the PCB) is left.
        unsafe { slot.take_shared() }
    }
}

/// Runs `pr_attach`: `f`, and when it fails after installing a PCB, `undo`
/// as `pr_detach` would (the socket layer does not call `pr_detach` after
/// a failed attach).
///
/// # Safety
///
/// `so` must be a referenced socket of protocol `P` in its `pr_attach`.
#[doc(hidden)]
pub unsafe fn attach<P: Protocol>(
    so: *mut socket,
    proto: c_int,
    f: impl FnOnce(ProtoSocket<'_, P>, i32) -> KResult<()>,
    undo: impl FnOnce(Detaching<'_, P>),
) -> c_int {
    // SAFETY: a method of the socket runs (pr_attach) for the call.
    let Some(s) = (unsafe { ProtoSocket::<P>::from_raw(so) }) else {
        return Errno::EINVAL.raw();
    };
    let had_pcb = s.cell().is_some();
    match f(s, proto) {
        Ok(()) => 0,
        Err(e) => {
            if !had_pcb {
                // SAFETY: the attach failed: as in pr_detach, nothing else
                // uses the PCB any more, and `f`'s borrows have ended.
                unsafe { detach::<P>(so, undo) };
            }
            e.raw()
        }
    }
}

/// Runs `pr_detach`: hands the PCB to `f`, waits until the socket has no
/// link left, then frees the PCB.
///
/// # Safety
///
/// `so` must be a socket of protocol `P` in its `pr_detach`.
#[doc(hidden)]
pub unsafe fn detach<P: Protocol>(so: *mut socket, f: impl FnOnce(Detaching<'_, P>)) {
    // SAFETY: so_pcb is NULL or a PcbCell<P::Pcb> from `set_pcb`; taking it
    // out here is the last access.
    let raw = unsafe {
        let p = (*so).so_pcb.cast::<PcbCell<P::Pcb>>();
        (*so).so_pcb = core::ptr::null_mut();
        p
    };
    let Some(raw) = NonNull::new(raw) else {
        return;
    };
    // SAFETY: the cell came from `KBox::into_raw` with P's malloc type and
    // is owned here from now on.
    let cell = unsafe { KBox::from_raw(raw, P::malloc_type()) };
    // SAFETY: the cell's memory does not move before it is freed below; no
    // method of the socket runs any more (the PCB is only reachable here).
    let pcb = unsafe { Pin::new_unchecked(&cell.pcb) };
    f(Detaching { pcb });
    // A link left somewhere keeps the socket: wait for it to go.
    if let Ok(mut n) = cell.links.lock() {
        let chan = (&raw const cell.links).cast::<c_void>();
        while *n != 0 {
            n.sleep(chan, c"ngslink");
        }
    }
    drop(cell);
}

/// An opaque socket identity: what a PCB records for tools that read
/// kernel memory (netstat). Never dereferenced.
#[repr(transparent)]
pub struct SocketId(NonNull<socket>);

// SAFETY: never dereferenced; only compared and stored.
unsafe impl Send for SocketId {}
// SAFETY: as above.
unsafe impl Sync for SocketId {}

/// A socket linked to something outside its methods (a netgraph node).
/// While a link exists, `pr_detach` of the socket waits: the socket is not
/// freed. Drop links from the protocol's `pr_detach` (or earlier).
///
/// # Invariants
///
/// `so` is a socket whose PCB cell's link count (`links`) counts this
/// value; the cell is freed only once the count is zero.
pub struct SocketLink {
    so: NonNull<socket>,
    links: NonNull<Mutex<u32>>,
}

// SAFETY: the socket is shared between threads by design; every operation
// below takes the lock the kernel requires.
unsafe impl Send for SocketLink {}
// SAFETY: as above.
unsafe impl Sync for SocketLink {}

impl SocketLink {
    /// True if this links the socket `so` is.
    pub fn is<P: Protocol>(&self, so: ProtoSocket<'_, P>) -> bool {
        self.so == so.so
    }

    /// `soisdisconnected`: further sends fail with EPIPE, reads drain then
    /// EOF.
    pub fn set_disconnected(&self) {
        // SAFETY: the socket is alive (invariant); no socket lock is held
        // by the caller.
        unsafe { fbsd_sys::soisdisconnected(self.so.as_ptr()) }
    }

    /// Sets or clears `SS_ISCONNECTED` under the socket lock.
    pub fn set_connected(&self, connected: bool) {
        #[allow(clippy::cast_possible_wrap)]
        const SS_ISCONNECTED: i32 = fbsd_sys::SS_ISCONNECTED as i32;
        let (set, clear) = if connected {
            (SS_ISCONNECTED, 0)
        } else {
            (0, SS_ISCONNECTED)
        };
        // SAFETY: the socket is alive (invariant); the glue changes
        // so_state under the socket lock.
        unsafe { ngsock_so_state_change(self.so.as_ptr(), set, clear) }
    }

    /// Locks the receive buffer.
    pub fn lock_rcvbuf(&self) -> RcvBufGuard<'_> {
        // SAFETY: the socket is alive (invariant); its receive mutex is
        // initialised.
        unsafe { ngsock_so_rcvbuf_lock(self.so.as_ptr()) };
        RcvBufGuard {
            so: self.so,
            held: true,
            _link: PhantomData,
        }
    }
}

impl Drop for SocketLink {
    fn drop(&mut self) {
        // SAFETY: the cell (and its mutex) lives until the count is zero,
        // and this value is still counted (invariant).
        let links = unsafe { self.links.as_ref() };
        if let Ok(mut n) = links.lock() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                wakeup(self.links.as_ptr().cast::<c_void>());
            }
        }
    }
}

/// The receive buffer of a linked socket, locked.
///
/// # Invariants
///
/// While `held`, the current thread holds the receive-buffer mutex of `so`,
/// which the link it borrows keeps alive.
pub struct RcvBufGuard<'l> {
    so: NonNull<socket>,
    held: bool,
    _link: PhantomData<&'l SocketLink>,
}

impl RcvBufGuard<'_> {
    /// `sbappendaddr_locked`: queues `m` as one datagram from `from`. On
    /// success the buffer owns the chain; on failure (no space, or no mbuf
    /// for the address) the chain comes back to the caller.
    pub fn append_addr(&mut self, from: &[u8], m: impl Into<Mbuf>) -> Result<(), Mbuf> {
        let raw = m.into().into_raw();
        // SAFETY: the receive mutex is held; `from` is a sockaddr of sa_len
        // bytes that the kernel copies; on 0 the chain was not touched.
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
            // SAFETY: sbappendaddr_locked returned 0: the caller still owns
            // the chain.
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

impl Drop for RcvBufGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            // SAFETY: the guard holds the receive mutex (invariant).
            unsafe { ngsock_so_rcvbuf_unlock(self.so.as_ptr()) }
        }
    }
}

/// A borrowed `struct sockaddr` argument as bytes (`sa_len` of them, at
/// least 2).
///
/// # Safety
///
/// `sa` must be NULL or point to at least `sa_len` readable bytes for `'a`.
#[doc(hidden)]
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

/// The caller-provided storage of `pr_sockaddr`: `sa_len` bytes.
///
/// # Safety
///
/// `sa` must be NULL or writable for its preset `sa_len` bytes during `'a`.
#[doc(hidden)]
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

/// Declares the C entry points of protocol `$proto`'s methods (named as
/// the module's C glue lists them in its `struct protosw`), each
/// forwarding to a safe function. The socket layer guarantees what every
/// `SAFETY` comment relies on: the socket is referenced for the call, and
/// address arguments are valid for `sa_len` bytes.
///
/// ```ignore
/// kern::protosw_entries! {
///     NgProto;
///     attach ngsock_ctl_attach => ctl_attach;
///     detach ngsock_detach => detach;
/// }
/// ```
#[macro_export]
#[cfg_attr(target_os = "none", allow_internal_unsafe)]
macro_rules! protosw_entries {
    ($proto:ty; $($kind:ident $sym:ident => $f:path $(, $undo:path)?;)*) => {
        $($crate::protosw_entries!(@one $proto, $kind $sym => $f $(, $undo)?);)*
    };
    (@one $proto:ty, attach $sym:ident => $f:path, $undo:path) => {
        /// `pr_attach` entry point.
        ///
        /// # Safety
        ///
        /// Called by the socket layer only, with a referenced socket.
        #[no_mangle]
        pub unsafe extern "C" fn $sym(
            so: *mut fbsd_sys::socket,
            proto: core::ffi::c_int,
            _td: *mut fbsd_sys::thread,
        ) -> core::ffi::c_int {
            // SAFETY: pr_attach of a referenced socket of this protocol.
            unsafe { $crate::kern::sockproto::attach::<$proto>(so, proto, $f, $undo) }
        }
    };
    (@one $proto:ty, addr $sym:ident => $f:path) => {
        /// `pr_bind` / `pr_connect` entry point.
        ///
        /// # Safety
        ///
        /// Called by the socket layer only, with a referenced socket and the
        /// kernel's copy of the caller's address.
        #[no_mangle]
        pub unsafe extern "C" fn $sym(
            so: *mut fbsd_sys::socket,
            nam: *mut fbsd_sys::sockaddr,
            _td: *mut fbsd_sys::thread,
        ) -> core::ffi::c_int {
            // SAFETY: the socket is referenced; `nam` is valid for sa_len
            // bytes during the call.
            let (s, a) = unsafe {
                (
                    $crate::kern::sockproto::ProtoSocket::<$proto>::from_raw(so),
                    $crate::kern::sockproto::sockaddr_bytes(nam),
                )
            };
            match (s, a) {
                (Some(s), Some(a)) => $crate::kern::errno::to_raw($f(s, a)),
                _ => $crate::kern::errno::Errno::EINVAL.raw(),
            }
        }
    };
    (@one $proto:ty, detach $sym:ident => $f:path) => {
        /// `pr_detach` entry point.
        ///
        /// # Safety
        ///
        /// Called by the socket layer only, once, for a socket being freed.
        #[no_mangle]
        pub unsafe extern "C" fn $sym(so: *mut fbsd_sys::socket) {
            // SAFETY: pr_detach of a socket of this protocol.
            unsafe { $crate::kern::sockproto::detach::<$proto>(so, $f) }
        }
    };
    (@one $proto:ty, disconnect $sym:ident => $f:path) => {
        /// `pr_disconnect` entry point.
        ///
        /// # Safety
        ///
        /// Called by the socket layer only, with a referenced socket.
        #[no_mangle]
        pub unsafe extern "C" fn $sym(so: *mut fbsd_sys::socket) -> core::ffi::c_int {
            // SAFETY: the socket is referenced for the call.
            match unsafe { $crate::kern::sockproto::ProtoSocket::<$proto>::from_raw(so) } {
                Some(s) => $crate::kern::errno::to_raw($f(s)),
                None => $crate::kern::errno::Errno::EINVAL.raw(),
            }
        }
    };
    (@one $proto:ty, send $sym:ident => $f:path) => {
        /// `pr_send` entry point.
        ///
        /// # Safety
        ///
        /// Called by the socket layer only, with a referenced socket, handing
        /// over `m` and `control`; `nam` is NULL or a borrowed address.
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
                    $crate::kern::sockproto::ProtoSocket::<$proto>::from_raw(so),
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
    (@one $proto:ty, sockaddr $sym:ident => $f:path) => {
        /// `pr_sockaddr` entry point.
        ///
        /// # Safety
        ///
        /// Called by the socket layer only, with a referenced socket and
        /// storage writable for its preset `sa_len`.
        #[no_mangle]
        pub unsafe extern "C" fn $sym(
            so: *mut fbsd_sys::socket,
            sa: *mut fbsd_sys::sockaddr,
        ) -> core::ffi::c_int {
            // SAFETY: the caller's storage is valid for its preset sa_len.
            let (s, buf) = unsafe {
                (
                    $crate::kern::sockproto::ProtoSocket::<$proto>::from_raw(so),
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

/// `kern_kldload(curthread, name)`: must run in a syscall thread with no
/// lock held and outside the network epoch.
pub fn kldload(name: &CStr) -> KResult<LoadedModule> {
    let mut id: i32 = 0;
    // SAFETY: called from a protocol method in the calling process's
    // thread, no locks held.
    Errno::check(unsafe {
        fbsd_sys::kern_kldload(
            super::thread::CurThread::get().as_ptr(),
            name.as_ptr(),
            &mut id,
        )
    })?;
    Ok(LoadedModule(id))
}

/// A module loaded by [`kldload`]; [`LoadedModule::unload`] undoes it.
pub struct LoadedModule(i32);

impl LoadedModule {
    /// `kern_kldunload(curthread, id, LINKER_UNLOAD_NORMAL)`.
    pub fn unload(self) {
        // SAFETY: as for kldload; the id came from kern_kldload.
        let _ = unsafe {
            fbsd_sys::kern_kldunload(super::thread::CurThread::get().as_ptr(), self.0, 0)
        };
    }
}
