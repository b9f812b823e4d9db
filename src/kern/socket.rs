//! socket(9), the consumer side: a kernel socket owned by a node.
//!
//! [`KSocket`] owns the reference `socreate` (or `solisten_dequeue`)
//! returns; dropping it removes its upcalls and calls `soclose`, which
//! consumes that reference on every path. Data handed to [`KSocket::send`]
//! is consumed on success and on error, as `sosend` does. Received data
//! comes back as an owned [`Mbuf`], and the source address (an `M_SONAME`
//! allocation) is copied out and freed before returning.
//!
//! Socket events reach the owning node through upcalls that never touch
//! the node's private data: each queues a function item on the node (a
//! writer of the node, where the socket work is done). Buffer upcalls
//! coalesce: one queued run serves any number of upcalls until the node
//! calls [`KSocket::rearm`].

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use fbsd_sys::{sockaddr, sockaddr_storage, socket, sockopt, uio};

use super::errno::{Errno, KResult};
use super::ffi::{
    ngsock_so_cantrcvmore, ngsock_so_connect_result, ngsock_so_dequeue, ngsock_so_listen_upcall,
    ngsock_so_listening, ngsock_so_state, ngsock_so_state_change, ngsock_so_type,
    ngsock_so_upcalls_clear, ngsock_so_upcalls_set, SoUpcall,
};
use super::malloc::{KBox, MallocType};
use super::mbuf::Mbuf;
use super::netgraph::{Node, NodeFn, NodeRef, SendFlags};
use super::thread::CurThread;

crate::module_statics! {
    /// The kernel's malloc type for socket addresses.
    malloc_type M_SONAME = "M_SONAME";
}

// The socket-state bits, as `int`s (small positive constants).
#[allow(clippy::cast_possible_wrap)]
const SS_ISCONNECTED: c_int = fbsd_sys::SS_ISCONNECTED as c_int;
#[allow(clippy::cast_possible_wrap)]
const SS_ISCONNECTING: c_int = fbsd_sys::SS_ISCONNECTING as c_int;
#[allow(clippy::cast_possible_wrap)]
const SS_NBIO: c_int = fbsd_sys::SS_NBIO as c_int;

/// `SOCK_STREAM`.
#[allow(clippy::cast_possible_wrap)]
pub const SOCK_STREAM: i32 = fbsd_sys::SOCK_STREAM as i32;

/// Size of `struct sockaddr_storage`.
pub const SS_MAXSIZE: usize = core::mem::size_of::<sockaddr_storage>();

/// A socket address in a `struct sockaddr_storage` buffer.
#[derive(Clone, Copy)]
pub struct SockAddr {
    ss: sockaddr_storage,
}

impl SockAddr {
    /// An empty address whose `ss_len` is preset to the storage size, as
    /// `sosockaddr`/`sopeeraddr`/`soaccept` expect.
    fn empty() -> Self {
        let mut ss = sockaddr_storage::default();
        #[allow(clippy::cast_possible_truncation)]
        {
            ss.ss_len = SS_MAXSIZE as u8;
        }
        SockAddr { ss }
    }

    /// Copies a binary sockaddr (at least 2 bytes, `sa_len` ≤ the slice and
    /// the storage); `EINVAL` otherwise.
    pub fn from_bytes(b: &[u8]) -> KResult<Self> {
        let len = usize::from(*b.first().ok_or(Errno::EINVAL)?);
        if b.len() < 2 || len < 2 || len > b.len() || len > SS_MAXSIZE {
            return Err(Errno::EINVAL);
        }
        let mut s = SockAddr {
            ss: sockaddr_storage::default(),
        };
        if let (Some(d), Some(v)) = (s.as_bytes_mut_full().get_mut(..len), b.get(..len)) {
            d.copy_from_slice(v);
        }
        Ok(s)
    }

    fn as_bytes_mut_full(&mut self) -> &mut [u8] {
        // SAFETY: sockaddr_storage is plain bytes of size SS_MAXSIZE.
        unsafe { core::slice::from_raw_parts_mut((&raw mut self.ss).cast::<u8>(), SS_MAXSIZE) }
    }

    /// The meaningful bytes (`sa_len` of them, capped to the storage).
    pub fn as_bytes(&self) -> &[u8] {
        let len = usize::from(self.ss.ss_len).min(SS_MAXSIZE);
        // SAFETY: sockaddr_storage is plain bytes of size SS_MAXSIZE ≥ len.
        unsafe { core::slice::from_raw_parts((&raw const self.ss).cast::<u8>(), len) }
    }

    fn as_sockaddr(&mut self) -> *mut sockaddr {
        (&raw mut self.ss).cast::<sockaddr>()
    }
}

/// The upcalls of a socket: which are registered, and what they do
/// (queue `f(arg)` on `node`).
struct Events {
    /// The node the upcalls queue work on; `None` until registered.
    target: Option<(NodeRef, NodeFn, i32)>,
    /// A run queued by a buffer upcall has not started yet.
    pending: AtomicBool,
    /// Which upcalls are registered.
    upcalls: Upcalls,
}

/// Which upcalls a socket has registered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upcalls {
    None,
    /// On the receive and the send buffer.
    Buffers,
    /// On the listen queue.
    Listen,
}

/// An owned kernel socket.
///
/// # Invariants
///
/// `so` is a socket on which this value owns the reference `soclose`
/// consumes; `events.upcalls` says which upcalls are registered on it, each
/// with the address of `*events` as argument; `events.target` is not
/// changed while any is.
pub struct KSocket {
    so: NonNull<socket>,
    events: KBox<Events>,
}

// SAFETY: a kernel socket may be used from any thread: the socket layer
// serialises every operation with its own locks, and the owner closes it
// exactly once. The upcall record is only changed through `&mut self`.
unsafe impl Send for KSocket {}
// SAFETY: as above; concurrent `sosend` calls from several netgraph readers
// of one node are serialised by the socket's send I/O lock.
unsafe impl Sync for KSocket {}

impl KSocket {
    fn events(mt: MallocType) -> KResult<KBox<Events>> {
        KBox::try_new(
            Events {
                target: None,
                pending: AtomicBool::new(false),
                upcalls: Upcalls::None,
            },
            mt,
        )
    }

    /// `socreate(family, type, proto)` with the current thread's
    /// credentials; the socket's upcall record is allocated with `mt`.
    ///
    /// Must be called from a context that may sleep (a netgraph message or
    /// node method), never from an upcall.
    pub fn create(family: i32, ty: i32, proto: i32, mt: MallocType) -> KResult<Self> {
        let events = Self::events(mt)?;
        let td = CurThread::get().as_ptr();
        let mut so: *mut socket = core::ptr::null_mut();
        // SAFETY: `td` is the running thread; its credential stays valid for
        // the call; socreate leaves `so` untouched on error.
        let err = unsafe { fbsd_sys::socreate(family, &mut so, ty, proto, (*td).td_ucred, td) };
        Errno::check(err)?;
        NonNull::new(so)
            .map(|so| KSocket { so, events })
            .ok_or(Errno::ENOMEM)
    }

    fn as_ptr(&self) -> *mut socket {
        self.so.as_ptr()
    }

    /// `sobind`; the address is borrowed.
    pub fn bind(&self, addr: &SockAddr) -> KResult<()> {
        let mut a = *addr;
        // SAFETY: the socket is owned; the address buffer is valid for the call.
        Errno::check(unsafe {
            fbsd_sys::sobind(self.as_ptr(), a.as_sockaddr(), CurThread::get().as_ptr())
        })
    }

    /// `soconnect`; the address is borrowed.
    pub fn connect(&self, addr: &SockAddr) -> KResult<()> {
        let mut a = *addr;
        // SAFETY: as for `bind`.
        Errno::check(unsafe {
            fbsd_sys::soconnect(self.as_ptr(), a.as_sockaddr(), CurThread::get().as_ptr())
        })
    }

    /// `sosockaddr` into caller storage.
    pub fn sockname(&self) -> KResult<SockAddr> {
        let mut a = SockAddr::empty();
        // SAFETY: the socket is owned; the storage's ss_len is preset.
        Errno::check(unsafe { fbsd_sys::sosockaddr(self.as_ptr(), a.as_sockaddr()) })?;
        Ok(a)
    }

    /// `sopeeraddr` into caller storage.
    pub fn peername(&self) -> KResult<SockAddr> {
        let mut a = SockAddr::empty();
        // SAFETY: as for `sockname`.
        Errno::check(unsafe { fbsd_sys::sopeeraddr(self.as_ptr(), a.as_sockaddr()) })?;
        Ok(a)
    }

    /// `sosetopt` from a kernel buffer (`sopt_td` NULL).
    pub fn setopt(&self, level: i32, name: i32, val: &[u8]) -> KResult<()> {
        let mut s = sockopt {
            sopt_dir: fbsd_sys::SOPT_SET,
            sopt_level: level,
            sopt_name: name,
            sopt_val: val.as_ptr().cast_mut().cast::<c_void>(),
            sopt_valsize: val.len(),
            ..Default::default()
        };
        // SAFETY: the socket is owned; with sopt_td NULL the value is copied
        // from kernel memory, which the slice keeps valid for the call.
        Errno::check(unsafe { fbsd_sys::sosetopt(self.as_ptr(), &mut s) })
    }

    /// `sogetopt` into a kernel buffer; returns the length produced.
    pub fn getopt(&self, level: i32, name: i32, out: &mut [u8]) -> KResult<usize> {
        let mut s = sockopt {
            sopt_dir: fbsd_sys::SOPT_GET,
            sopt_level: level,
            sopt_name: name,
            sopt_val: out.as_mut_ptr().cast::<c_void>(),
            sopt_valsize: out.len(),
            ..Default::default()
        };
        // SAFETY: as for `setopt`; the kernel writes at most `out.len()` bytes.
        Errno::check(unsafe { fbsd_sys::sogetopt(self.as_ptr(), &mut s) })?;
        Ok(s.sopt_valsize.min(out.len()))
    }

    /// `sosend` of an mbuf chain to `dest` (or the connected peer). The
    /// chain is consumed on success and on every error.
    pub fn send(&self, m: impl Into<Mbuf>, dest: Option<&SockAddr>) -> KResult<()> {
        let mut d = dest.copied();
        let dp = d
            .as_mut()
            .map_or(core::ptr::null_mut(), SockAddr::as_sockaddr);
        // SAFETY: the socket is owned; sosend consumes the chain; the address
        // is borrowed for the call.
        Errno::check(unsafe {
            fbsd_sys::sosend(
                self.as_ptr(),
                dp,
                core::ptr::null_mut(),
                m.into().into_raw(),
                core::ptr::null_mut(),
                0,
                CurThread::get().as_ptr(),
            )
        })
    }

    /// Non-blocking `soreceive` (mbuf form) of at most `budget` bytes.
    /// Returns the data (None at EOF), the source address when asked for
    /// and available, and whether the record was truncated.
    pub fn recv(&self, budget: isize, want_addr: bool) -> KResult<Received> {
        let mut u = uio {
            uio_resid: budget,
            ..Default::default()
        };
        let mut m: *mut fbsd_sys::mbuf = core::ptr::null_mut();
        let mut sa: *mut sockaddr = core::ptr::null_mut();
        #[allow(clippy::cast_possible_wrap)]
        let mut flags: i32 = fbsd_sys::MSG_DONTWAIT as i32;
        let psa: *mut *mut sockaddr = if want_addr {
            &mut sa
        } else {
            core::ptr::null_mut()
        };
        // SAFETY: the socket is owned; uio is valid and only its resid is
        // read; the out pointers are valid for the call.
        let err = unsafe {
            fbsd_sys::soreceive(
                self.as_ptr(),
                psa,
                &mut u,
                &mut m,
                core::ptr::null_mut(),
                &mut flags,
            )
        };
        // Take ownership of whatever came back before looking at the error.
        // SAFETY: a non-NULL chain returned by soreceive belongs to the caller.
        let data = unsafe { Mbuf::from_raw(m) };
        let addr = NonNull::new(sa).and_then(|p| {
            // SAFETY: *psa is an M_SONAME allocation owned by the caller with
            // at least sa_len valid bytes; it is freed right after the copy.
            unsafe {
                let len = usize::from((*p.as_ptr()).sa_len);
                let bytes = core::slice::from_raw_parts(p.as_ptr().cast::<u8>(), len);
                let copy = SockAddr::from_bytes(bytes).ok();
                M_SONAME.free(p.cast::<u8>());
                copy
            }
        });
        Errno::check(err)?;
        #[allow(clippy::cast_possible_wrap)]
        let truncated = flags & (fbsd_sys::MSG_TRUNC as i32) != 0;
        Ok(Received {
            data,
            addr,
            truncated,
        })
    }

    /// `solisten(so, backlog, curthread)`. Listening destroys the socket
    /// buffers, and with them their upcalls.
    pub fn listen(&mut self, backlog: i32) -> KResult<()> {
        // SAFETY: the socket is owned; curthread is the running thread.
        Errno::check(unsafe {
            fbsd_sys::solisten(self.as_ptr(), backlog, CurThread::get().as_ptr())
        })?;
        if self.events.upcalls == Upcalls::Buffers {
            self.events.upcalls = Upcalls::None;
        }
        Ok(())
    }

    /// Takes one completed connection off a listening socket without
    /// sleeping (`solisten_dequeue(head, &so, SOCK_NONBLOCK)` under
    /// `SOLISTEN_LOCK`): the new socket, non-blocking, its upcall record
    /// allocated with `mt` (when that fails the socket is closed).
    /// `EWOULDBLOCK` when none is queued.
    pub fn dequeue(&self, mt: MallocType) -> KResult<KSocket> {
        let mut so: *mut socket = core::ptr::null_mut();
        // SAFETY: the socket is owned and listening (caller); the glue takes
        // the listen lock, which solisten_dequeue releases on every path.
        Errno::check(unsafe { ngsock_so_dequeue(self.as_ptr(), &mut so) })?;
        let so = NonNull::new(so).ok_or(Errno::ENOMEM)?;
        match Self::events(mt) {
            Ok(events) => Ok(KSocket { so, events }),
            Err(e) => {
                // SAFETY: solisten_dequeue handed us the queue's reference,
                // which soclose consumes.
                let _ = unsafe { fbsd_sys::soclose(so.as_ptr()) };
                Err(e)
            }
        }
    }

    /// `soaccept` on a dequeued socket: the peer's address. On error the
    /// caller still owns the socket (dropping it closes it).
    pub fn accept_peer(&self) -> KResult<SockAddr> {
        let mut a = SockAddr::empty();
        // SAFETY: the socket is owned; the storage's ss_len is preset.
        Errno::check(unsafe { fbsd_sys::soaccept(self.as_ptr(), a.as_sockaddr()) })?;
        Ok(a)
    }

    fn clear_upcalls(&mut self) {
        match self.events.upcalls {
            Upcalls::None => {}
            // SAFETY: the socket is owned and not listening (its buffer
            // upcalls are registered); the glue takes the buffer locks.
            Upcalls::Buffers => unsafe { ngsock_so_upcalls_clear(self.as_ptr()) },
            // SAFETY: the socket is owned and listening; the glue takes the
            // listen lock; NULL removes the upcall.
            Upcalls::Listen => unsafe {
                ngsock_so_listen_upcall(self.as_ptr(), None, core::ptr::null_mut())
            },
        }
        // Once removed (under the lock a running upcall holds), no upcall
        // runs or will start.
        self.events.upcalls = Upcalls::None;
    }

    fn set_target(&mut self, node: Node<'_>, f: NodeFn, arg: i32) -> *mut c_void {
        self.clear_upcalls();
        let ev = &mut *self.events;
        ev.target = Some((node.to_ref(), f, arg));
        ev.pending.store(false, Ordering::Release);
        (&raw const *ev).cast_mut().cast::<c_void>()
    }

    /// True if the registered upcalls are `kind`, for `f(arg)` on `node`.
    fn registered(&self, kind: Upcalls, node: Node<'_>, f: NodeFn, arg: i32) -> bool {
        self.events.upcalls == kind
            && self.events.target.as_ref().is_some_and(|(n, g, a)| {
                n.node().id() == node.id() && g.raw() as usize == f.raw() as usize && *a == arg
            })
    }

    /// Registers upcalls on the receive and the send buffer (each under
    /// its own buffer lock, `soupcall_set`) that queue `f(arg)` as a writer
    /// of `node` (see the module docs). Replaces upcalls registered before
    /// (and leaves the same ones as they are). The socket must not be
    /// listening.
    pub fn set_upcalls(&mut self, node: Node<'_>, f: NodeFn, arg: i32) {
        if self.registered(Upcalls::Buffers, node, f, arg) {
            return;
        }
        let ev = self.set_target(node, f, arg);
        // SAFETY: the socket is owned and not listening (caller); the glue
        // takes the buffer locks; `ev` stays valid until the upcalls are
        // removed (Drop, or a later registration).
        unsafe { ngsock_so_upcalls_set(self.as_ptr(), buf_upcall, ev) };
        self.events.upcalls = Upcalls::Buffers;
    }

    /// Registers a listen upcall (`solisten_upcall_set`, under
    /// `SOLISTEN_LOCK`) that queues `f(arg)` as a writer of `node` for
    /// every completed connection. The socket must be listening.
    pub fn set_listen_upcall(&mut self, node: Node<'_>, f: NodeFn, arg: i32) {
        let ev = self.set_target(node, f, arg);
        // SAFETY: as for `set_upcalls`; the socket is listening (caller).
        unsafe { ngsock_so_listen_upcall(self.as_ptr(), Some(listen_upcall), ev) };
        self.events.upcalls = Upcalls::Listen;
    }

    /// Lets the next buffer upcall queue a run again (called by the run).
    pub fn rearm(&self) {
        self.events.pending.store(false, Ordering::Release);
    }

    /// Sets `SS_NBIO` under `SOCK_LOCK`.
    pub fn set_nbio(&self) {
        // SAFETY: the socket is owned; the glue takes the socket lock.
        unsafe { ngsock_so_state_change(self.as_ptr(), SS_NBIO, 0) }
    }

    fn state(&self) -> c_int {
        // SAFETY: the socket is owned; a single int read, as the C node does.
        unsafe { ngsock_so_state(self.as_ptr()) }
    }

    /// `SS_ISCONNECTED` is set.
    pub fn is_connected(&self) -> bool {
        self.state() & SS_ISCONNECTED != 0
    }

    /// `SS_ISCONNECTING` is set.
    pub fn is_connecting(&self) -> bool {
        self.state() & SS_ISCONNECTING != 0
    }

    /// The socket is listening (`SOLISTENING`).
    pub fn is_listening(&self) -> bool {
        // SAFETY: the socket is owned; a single int read.
        unsafe { ngsock_so_listening(self.as_ptr()) != 0 }
    }

    /// `so_type` (`SOCK_STREAM`, `SOCK_DGRAM`, …).
    pub fn sock_type(&self) -> i32 {
        // SAFETY: the socket is owned; so_type never changes.
        unsafe { ngsock_so_type(self.as_ptr()) }
    }

    /// The receive side is shut (`SBS_CANTRCVMORE` on `so_rcv`), read under
    /// the receive-buffer lock. The socket must not be listening.
    pub fn cant_rcv_more(&self) -> bool {
        // SAFETY: the socket is owned and not listening (caller); the glue
        // takes the receive-buffer lock.
        unsafe { ngsock_so_cantrcvmore(self.as_ptr()) != 0 }
    }

    /// Connect-completion check, under `SOCK_LOCK`: takes (reads and
    /// clears) `so_error`, clearing `SS_ISCONNECTING` too when there was
    /// one. Returns that error (0 for none) and whether the socket is still
    /// connecting.
    pub fn take_connect_result(&self) -> (i32, bool) {
        let mut still: c_int = 0;
        // SAFETY: the socket is owned; `still` is valid for the call.
        let err = unsafe { ngsock_so_connect_result(self.as_ptr(), &mut still) };
        (err, still != 0)
    }

    /// Clears `SS_ISCONNECTING` under `SOCK_LOCK` (after a failed connect).
    pub fn clear_connecting(&self) {
        // SAFETY: the socket is owned; the glue takes the socket lock.
        unsafe { ngsock_so_state_change(self.as_ptr(), 0, SS_ISCONNECTING) }
    }
}

impl Drop for KSocket {
    fn drop(&mut self) {
        // No upcall may run (or be running) once the socket is closed.
        self.clear_upcalls();
        // SAFETY: the socket is owned; soclose consumes our reference on
        // every path, and the pointer is not used again.
        let _ = unsafe { fbsd_sys::soclose(self.as_ptr()) };
    }
}

fn upcall_flags(waitflag: c_int) -> SendFlags {
    #[allow(clippy::cast_possible_wrap)]
    const M_WAITOK: c_int = fbsd_sys::M_WAITOK as c_int;
    if waitflag & M_WAITOK != 0 {
        SendFlags::QUEUE | SendFlags::WAITOK
    } else {
        SendFlags::QUEUE
    }
}

#[allow(clippy::cast_possible_wrap)]
const SU_OK: c_int = fbsd_sys::SU_OK as c_int;

/// The buffer upcall: queues the target function unless a run is pending.
///
/// # Safety
///
/// Called by the socket layer only, with the socket-buffer lock held, and
/// `arg` the upcall record of the [`KSocket`] that registered it (which
/// removes it, under that lock, before the record changes or goes away).
unsafe extern "C" fn buf_upcall(_so: *mut socket, arg: *mut c_void, waitflag: c_int) -> c_int {
    // SAFETY: see above: the record is live and unchanged during the call.
    let ev = unsafe { &*arg.cast::<Events>() };
    if let Some((node, f, a)) = &ev.target {
        if ev
            .pending
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
            && node.node().send_fn(*f, *a, upcall_flags(waitflag)).is_err()
        {
            ev.pending.store(false, Ordering::Release);
        }
    }
    SU_OK
}

/// The listen upcall: queues the target function.
///
/// # Safety
///
/// As for [`buf_upcall`], with the listen lock held.
unsafe extern "C" fn listen_upcall(_so: *mut socket, arg: *mut c_void, waitflag: c_int) -> c_int {
    // SAFETY: as in `buf_upcall`.
    let ev = unsafe { &*arg.cast::<Events>() };
    if let Some((node, f, a)) = &ev.target {
        let _ = node.node().send_fn(*f, *a, upcall_flags(waitflag));
    }
    SU_OK
}

const _: SoUpcall = buf_upcall;

/// What [`KSocket::recv`] returned.
pub struct Received {
    /// The data; `None` at end of file or when nothing was returned.
    pub data: Option<Mbuf>,
    /// The source address, when asked for and available.
    pub addr: Option<SockAddr>,
    /// The datagram was longer than the budget and was cut (`MSG_TRUNC`).
    pub truncated: bool,
}
