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
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicI16, AtomicI32, AtomicU16, AtomicU32, Ordering};

use fbsd_sys::{sockaddr, sockaddr_storage, socket, sockopt, uio};

use super::ctlmbuf::Control;
use super::errno::{Errno, KResult};
use super::ffi::{
    ngsock_so_connect_result, ngsock_so_dequeue, ngsock_so_listen_upcall, ngsock_so_state_change,
    ngsock_so_upcalls_clear, ngsock_so_upcalls_set,
};
use super::malloc::{KBox, MallocType};
use super::mbuf::{Mbuf, Packet};
use super::netgraph::{Installed, Node, NodeFn, NodeRef, NodeType, SendFlags};
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
#[allow(clippy::cast_possible_wrap)]
const SS_ISDISCONNECTING: c_int = fbsd_sys::SS_ISDISCONNECTING as c_int;
#[allow(clippy::cast_possible_wrap)]
const SO_ACCEPTCONN: c_int = fbsd_sys::SO_ACCEPTCONN as c_int;
#[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
const SBS_CANTRCVMORE: i16 = fbsd_sys::SBS_CANTRCVMORE as i16;
#[allow(clippy::cast_possible_wrap)]
const PR_CONNREQUIRED: c_int = fbsd_sys::PR_CONNREQUIRED as c_int;

/// `SOCK_STREAM`.
#[allow(clippy::cast_possible_wrap)]
pub const SOCK_STREAM: i32 = fbsd_sys::SOCK_STREAM as i32;
/// `SOCK_DGRAM`.
#[allow(clippy::cast_possible_wrap)]
pub const SOCK_DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;

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
    /// What the socket is ([`Kind`]), read once: neither its type nor its
    /// protocol ever changes.
    kind: Kind,
}

/// Facts about a socket that never change, kept with it so that the
/// receive loop tests a byte instead of following `so_proto`.
#[derive(Clone, Copy)]
struct Kind(u8);

impl Kind {
    /// `so_type` is `SOCK_STREAM`.
    const STREAM: u8 = 1;
    /// The protocol requires a connection (`PR_CONNREQUIRED`).
    const CONNREQ: u8 = 2;

    fn of(so: NonNull<socket>) -> Kind {
        // SAFETY: a live socket; so_type, so_proto and the protocol's flags
        // never change.
        let (ty, flags) = unsafe {
            let p = so.as_ptr();
            (
                i32::from((*p).so_type),
                c_int::from((*(*p).so_proto).pr_flags),
            )
        };
        let mut k = 0;
        if ty == SOCK_STREAM {
            k |= Kind::STREAM;
        }
        if flags & PR_CONNREQUIRED != 0 {
            k |= Kind::CONNREQ;
        }
        Kind(k)
    }
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
            .map(|so| Self::wrap(so, events))
            .ok_or(Errno::ENOMEM)
    }

    /// A socket the caller owns the reference of, with its upcall record.
    fn wrap(so: NonNull<socket>, events: KBox<Events>) -> Self {
        KSocket {
            so,
            events,
            kind: Kind::of(so),
        }
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

    /// `priv_check_cred(so->so_cred, privilege)`: the privilege of the
    /// credential the socket was created with. Only where sleeping is
    /// allowed.
    pub fn priv_check_cred(&self, privilege: i32) -> KResult<()> {
        // SAFETY: the socket is owned; so_cred holds a reference for the
        // socket's lifetime.
        Errno::check(unsafe { fbsd_sys::priv_check_cred((*self.as_ptr()).so_cred, privilege) })
    }

    /// Non-blocking `soreceive`: [`SocketInput::recv`].
    #[inline]
    pub fn recv(&self, budget: isize, want_addr: bool) -> KResult<Received> {
        self.input().recv(budget, want_addr)
    }

    /// [`SocketInput::surely_drained`].
    #[inline]
    pub fn surely_drained(&self) -> bool {
        self.input().surely_drained()
    }

    /// The receive side, for a loop of reads ([`SocketInput::recv`]). The
    /// socket must not be listening.
    #[inline]
    pub fn input(&self) -> SocketInput<'_> {
        SocketInput {
            so: self.so,
            ks: self,
            _sock: PhantomData,
        }
    }

    /// `solisten(so, backlog, curthread)`. Listening destroys the socket
    /// buffers, and with them their upcalls. (Through [`SocketSlot::listen`],
    /// which keeps the slot's send handle right.)
    fn listen(&mut self, backlog: i32) -> KResult<()> {
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
            Ok(events) => Ok(Self::wrap(so, events)),
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
    /// its own buffer lock, `soupcall_set`) that queue `T::event(e, A)` as
    /// a writer of `node` (see the module docs). Replaces upcalls
    /// registered before (and leaves the same ones as they are). The socket
    /// must not be listening.
    pub fn set_upcalls<T: NodeType, const A: i32>(&mut self, node: Installed<'_, T>) {
        let f = NodeFn::event::<T, A>();
        if self.registered(Upcalls::Buffers, node.node(), f, A) {
            return;
        }
        let ev = self.set_target(node.node(), f, A);
        // SAFETY: the socket is owned and not listening (caller); the glue
        // takes the buffer locks; `ev` stays valid until the upcalls are
        // removed (Drop, or a later registration); its target is a node of
        // type T with its private data installed, as buf_upcall::<T, A>
        // requires.
        unsafe { ngsock_so_upcalls_set(self.as_ptr(), buf_upcall::<T, A>, ev) };
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

    /// `so_state`, read as FreeBSD's lockless checks do (one load).
    #[inline]
    fn state(&self) -> c_int {
        state(self.so)
    }

    /// `SS_ISCONNECTED` is set.
    #[inline]
    pub fn is_connected(&self) -> bool {
        self.state() & SS_ISCONNECTED != 0
    }

    /// `SS_ISCONNECTING` is set.
    #[inline]
    pub fn is_connecting(&self) -> bool {
        self.state() & SS_ISCONNECTING != 0
    }

    /// The socket is listening (`SOLISTENING`).
    #[inline]
    pub fn is_listening(&self) -> bool {
        // SAFETY: the socket is owned; one atomic load of so_options.
        let o = unsafe {
            AtomicI32::from_ptr(&raw mut (*self.as_ptr()).so_options).load(Ordering::Relaxed)
        };
        o & SO_ACCEPTCONN != 0
    }

    /// `so_type` is `SOCK_STREAM`.
    #[inline]
    pub fn is_stream(&self) -> bool {
        self.input().is_stream()
    }

    /// The receive side is shut (`SBS_CANTRCVMORE` on `so_rcv`), read
    /// without the buffer lock as FreeBSD's end-of-file checks do (the flag
    /// only ever goes on, and setting it wakes the buffer's upcall). The
    /// socket must not be listening.
    #[inline]
    pub fn cant_rcv_more(&self) -> bool {
        cant_rcv_more(self.so)
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

/// The receive side of a [`KSocket`] for a loop of reads. What it reads
/// of the socket it reads there, where it is needed (a register holding it
/// across the loop's calls would cost more than the load).
///
/// # Invariants
///
/// `so` is the socket of a [`KSocket`] borrowed for `'a`, not listening,
/// and `ks` points to that `KSocket`.
#[derive(Clone, Copy)]
pub struct SocketInput<'a> {
    so: NonNull<socket>,
    ks: *const KSocket,
    _sock: PhantomData<&'a KSocket>,
}

impl SocketInput<'_> {
    /// `so_type` is `SOCK_STREAM`.
    #[inline]
    pub fn is_stream(self) -> bool {
        self.kind().0 & Kind::STREAM != 0
    }

    /// The protocol requires a connection (`PR_CONNREQUIRED`).
    #[inline]
    fn connreq(self) -> bool {
        self.kind().0 & Kind::CONNREQ != 0
    }

    /// The socket's [`Kind`], read where it is tested (a volatile read, so
    /// that it is not kept in a register, or on the stack, across the
    /// loop's calls: a test of the byte in memory is one instruction).
    #[inline(always)]
    fn kind(self) -> Kind {
        // SAFETY: a field of the KSocket borrowed for the input's lifetime.
        unsafe { core::ptr::read_volatile(&raw const (*self.ks).kind) }
    }

    /// `SS_ISCONNECTED` is set.
    #[inline]
    pub fn is_connected(&self) -> bool {
        state(self.so) & SS_ISCONNECTED != 0
    }

    /// The receive side is shut (see [`KSocket::cant_rcv_more`]).
    #[inline]
    pub fn cant_rcv_more(&self) -> bool {
        cant_rcv_more(self.so)
    }

    /// Non-blocking `soreceive` (mbuf form) of at most `budget` bytes.
    /// Returns the data (None at EOF), the source address when asked for
    /// and available, and whether the record was truncated.
    #[inline]
    pub fn recv(self, budget: isize, want_addr: bool) -> KResult<Received> {
        self.soreceive(budget, want_addr, core::ptr::null_mut())
    }

    /// [`SocketInput::recv`] that also returns the datagram's control data
    /// (`soreceive`'s `*controlp`: a chain of `MT_CONTROL` mbufs, one
    /// record each), if any, in `control`.
    pub fn recv_control(
        self,
        budget: isize,
        want_addr: bool,
        control: &mut Option<Mbuf>,
    ) -> KResult<Received> {
        let mut c: *mut fbsd_sys::mbuf = core::ptr::null_mut();
        let r = self.soreceive(budget, want_addr, &mut c);
        // SAFETY: a non-NULL control chain returned by soreceive belongs to
        // the caller (also when it failed after returning one).
        *control = unsafe { Mbuf::from_raw(c) };
        r
    }

    #[inline(always)]
    fn soreceive(
        self,
        budget: isize,
        want_addr: bool,
        controlp: *mut *mut fbsd_sys::mbuf,
    ) -> KResult<Received> {
        // soreceive reads only uio_resid and uio_td of a uio whose data goes
        // to an mbuf chain (`mp0`): those are all that is set, as FreeBSD's
        // own callers do.
        let mut u = MaybeUninit::<uio>::uninit();
        let up = u.as_mut_ptr();
        // SAFETY: field writes into the local uio.
        unsafe {
            (&raw mut (*up).uio_resid).write(budget);
            (&raw mut (*up).uio_td).write(core::ptr::null_mut());
        }
        let mut m: *mut fbsd_sys::mbuf = core::ptr::null_mut();
        let mut sa: *mut sockaddr = core::ptr::null_mut();
        #[allow(clippy::cast_possible_wrap)]
        let mut flags: i32 = fbsd_sys::MSG_DONTWAIT as i32;
        let psa: *mut *mut sockaddr = if want_addr {
            &mut sa
        } else {
            core::ptr::null_mut()
        };
        // SAFETY: the socket is owned by the borrowed KSocket; the uio's
        // resid and td are set and
        // nothing else of it is read in the mbuf form; the out pointers are
        // valid for the call (`controlp` NULL or the caller's).
        let err =
            unsafe { fbsd_sys::soreceive(self.so.as_ptr(), psa, up, &mut m, controlp, &mut flags) };
        // Take ownership of whatever came back before looking at the error.
        // SAFETY: a non-NULL chain returned by soreceive belongs to the
        // caller, and so does a non-NULL address (an M_SONAME allocation).
        let (data, addr) = unsafe { (Mbuf::from_raw(m), SoName::from_raw(sa)) };
        Errno::check(err)?;
        #[allow(clippy::cast_possible_wrap)]
        let truncated = flags & (fbsd_sys::MSG_TRUNC as i32) != 0;
        Ok(Received {
            data,
            addr,
            truncated,
        })
    }

    /// True when a `soreceive` now would certainly find nothing and change
    /// nothing (it would return `EWOULDBLOCK`, or 0 without data at end of
    /// file): nothing is buffered (no mbuf is charged to the receive
    /// buffer), no error is pending, and the protocol needs no connection
    /// or the socket has (had) one. Read without the buffer lock, as a
    /// hint: anything appended after this read wakes the buffer's upcall,
    /// which queues another run of the reader once it has re-armed
    /// ([`KSocket::rearm`]). The socket must not be listening.
    #[inline]
    pub fn surely_drained(self) -> bool {
        let p = self.so.as_ptr();
        // SAFETY: the socket is owned and not listening (invariant): so_rcv is
        // the buffer member of the union. The fields are read atomically
        // without their locks, as FreeBSD's own lockless peeks do.
        let (mbcnt, error) = unsafe {
            let rcv = &raw mut (*p).__bindgen_anon_1.__bindgen_anon_1.so_rcv;
            (
                AtomicU32::from_ptr(&raw mut (*rcv).sb_mbcnt).load(Ordering::Relaxed),
                AtomicU16::from_ptr(&raw mut (*p).so_error).load(Ordering::Relaxed),
            )
        };
        // (One test for both: nothing charged, no error.)
        (mbcnt | error as u32) == 0
            && (!self.connreq()
                || state(self.so) & (SS_ISCONNECTED | SS_ISCONNECTING | SS_ISDISCONNECTING) != 0
                || cant_rcv_more(self.so))
    }
}

/// `so_state`, read as FreeBSD's lockless checks do (one load), of a live
/// socket.
#[inline]
fn state(so: NonNull<socket>) -> c_int {
    // SAFETY: callers pass a socket they hold alive; a single atomic load
    // of a field the socket layer changes under its lock.
    c_int::from(unsafe {
        AtomicI16::from_ptr(&raw mut (*so.as_ptr()).so_state).load(Ordering::Relaxed)
    })
}

/// `SBS_CANTRCVMORE` of a live socket that is not listening, read without
/// the buffer lock.
#[inline]
fn cant_rcv_more(so: NonNull<socket>) -> bool {
    // SAFETY: callers pass a socket they hold alive and know is not
    // listening, so so_rcv is the live union member; one atomic load.
    let st = unsafe {
        let rcv = &raw mut (*so.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.so_rcv;
        AtomicI16::from_ptr(&raw mut (*rcv).sb_state).load(Ordering::Relaxed)
    };
    st & SBS_CANTRCVMORE != 0
}

/// A kernel socket's send side, borrowed: what [`SocketSlot::sender`]
/// hands out for a socket that is not listening.
///
/// # Invariants
///
/// `so` is a socket owned by a [`KSocket`] borrowed for `'a`, not
/// listening.
#[derive(Clone, Copy)]
pub struct Sender<'a> {
    so: NonNull<socket>,
    _sock: PhantomData<&'a KSocket>,
}

impl Sender<'_> {
    /// `sosend` of an mbuf chain to the connected peer (or to `dest`, an
    /// address the caller owns). The chain is consumed on success and on
    /// every error.
    #[inline]
    pub fn send(&self, m: impl Into<Mbuf>, dest: Option<&SockAddr>) -> KResult<()> {
        let mut d = dest.copied();
        let dp = d
            .as_mut()
            .map_or(core::ptr::null_mut(), SockAddr::as_sockaddr);
        // SAFETY: `dp` is NULL or a copy of a valid sockaddr living for the
        // call.
        unsafe { self.sosend(m.into(), dp, core::ptr::null_mut()) }
    }

    /// [`Sender::send`] with control data (`sosend`'s `control`), which is
    /// consumed too.
    pub fn send_control(
        &self,
        m: impl Into<Mbuf>,
        dest: Option<&SockAddr>,
        control: Control,
    ) -> KResult<()> {
        let mut d = dest.copied();
        let dp = d
            .as_mut()
            .map_or(core::ptr::null_mut(), SockAddr::as_sockaddr);
        // SAFETY: `dp` is NULL or a copy of a valid sockaddr living for the
        // call; the control mbuf is owned and handed over.
        unsafe { self.sosend(m.into(), dp, control.into_raw()) }
    }

    /// `sosend` of a packet to an address held in the packet itself (in one
    /// of its tags, as `ng_ksocket` addresses datagrams): `dest` picks the
    /// address bytes out of the packet, or `None` for the connected peer.
    /// The kernel reads the destination before it frees the packet, so no
    /// copy is made. The bytes are checked to hold a whole `struct sockaddr`
    /// (`sa_len` of at least 2, within the bytes): `EINVAL` otherwise, and
    /// the packet is freed, as on every path.
    #[inline]
    pub fn send_packet<F>(&self, m: Packet, dest: F) -> KResult<()>
    where
        F: for<'p> FnOnce(&'p Packet) -> KResult<Option<&'p [u8]>>,
    {
        let dp = match dest(&m)? {
            None => core::ptr::null_mut(),
            Some(b) => match b.first() {
                Some(&l) if l >= 2 && usize::from(l) <= b.len() => {
                    b.as_ptr().cast::<sockaddr>().cast_mut()
                }
                _ => return Err(Errno::EINVAL),
            },
        };
        // SAFETY: `dp` is NULL or a whole sockaddr inside the packet's own
        // storage, which stays valid until sosend consumes the packet, and
        // sosend reads the destination before it frees the packet (the
        // kernel's contract: pr_send uses the address while it still owns
        // the chain).
        unsafe { self.sosend(Mbuf::from(m), dp, core::ptr::null_mut()) }
    }

    /// `sosend(so, addr, NULL, m, control, 0, curthread)`.
    ///
    /// # Safety
    ///
    /// `addr` is NULL or a valid sockaddr (`sa_len` readable bytes) that
    /// stays valid until sosend has read it; `control` is NULL or a control
    /// mbuf the caller owns and hands over.
    #[inline]
    unsafe fn sosend(
        &self,
        m: Mbuf,
        addr: *mut sockaddr,
        control: *mut fbsd_sys::mbuf,
    ) -> KResult<()> {
        // SAFETY: the socket is owned; sosend consumes the chain and the
        // control mbuf; the address is valid for the call (caller).
        Errno::check(unsafe {
            fbsd_sys::sosend(
                self.so.as_ptr(),
                addr,
                core::ptr::null_mut(),
                m.into_raw(),
                control,
                0,
                CurThread::get().as_ptr(),
            )
        })
    }
}

/// The socket a node owns, if any, with its send side cached: `sender()`
/// is one load, `None` both without a socket and while the socket is
/// listening (a listening socket must not reach `sosend`, which would
/// refuse it with `ENOTCONN` and leak the chain). The socket can only be
/// made to listen through the slot, so the cache is always right.
///
/// # Invariants
///
/// `tx` is the socket of `sock` when `sock` is `Some` and not listening,
/// else `None`.
#[derive(Default)]
pub struct SocketSlot {
    tx: Option<NonNull<socket>>,
    sock: Option<KSocket>,
}

// SAFETY: `tx` is a copy of the pointer `sock` owns (see KSocket's Send and
// Sync); it is only used through borrows of the slot.
unsafe impl Send for SocketSlot {}
// SAFETY: as above.
unsafe impl Sync for SocketSlot {}

impl SocketSlot {
    /// A slot holding `so`.
    pub fn with(so: KSocket) -> Self {
        let mut s = SocketSlot::default();
        s.set(so);
        s
    }

    /// Puts `so` in the slot (closing the socket it held, if any).
    pub fn set(&mut self, so: KSocket) {
        self.tx = (!so.is_listening()).then_some(so.so);
        drop(self.sock.replace(so));
    }

    /// Takes the socket out.
    pub fn take(&mut self) -> Option<KSocket> {
        self.tx = None;
        self.sock.take()
    }

    /// The socket.
    #[inline]
    pub fn get(&self) -> Option<&KSocket> {
        self.sock.as_ref()
    }

    /// The socket, writable (everything but listening: [`SocketSlot::listen`]).
    pub fn get_mut(&mut self) -> Option<&mut KSocket> {
        self.sock.as_mut()
    }

    /// The socket, unless it is listening: the one a reader of data uses.
    #[inline]
    pub fn receiver(&self) -> Option<&KSocket> {
        self.tx?;
        // SAFETY: `tx` is Some only while `sock` is (invariant).
        Some(unsafe { self.sock.as_ref().unwrap_unchecked() })
    }

    /// The send side of the socket: `None` without a socket or while it is
    /// listening.
    #[inline]
    pub fn sender(&self) -> Option<Sender<'_>> {
        self.tx.map(|so| Sender {
            so,
            _sock: PhantomData,
        })
    }

    /// `solisten` of the socket (`ENXIO` without one); from then on it has
    /// no send side.
    pub fn listen(&mut self, backlog: i32) -> KResult<&mut KSocket> {
        let so = self.sock.as_mut().ok_or(Errno::ENXIO)?;
        let r = so.listen(backlog);
        self.tx = (!so.is_listening()).then_some(so.so);
        r.map(|()| so)
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

/// The buffer upcall: queues `T::event(e, A)` on the target node unless a
/// run is pending.
///
/// # Safety
///
/// Called by the socket layer only, with the socket-buffer lock held, and
/// `arg` the upcall record of the [`KSocket`] that registered it (which
/// removes it, under that lock, before the record changes or goes away),
/// whose target is an [`Installed`] node of type `T`.
unsafe extern "C" fn buf_upcall<T: NodeType, const A: i32>(
    _so: *mut socket,
    arg: *mut c_void,
    waitflag: c_int,
) -> c_int {
    // SAFETY: see above: the record is live and unchanged during the call,
    // and its target is set whenever its upcalls are registered.
    let ev = unsafe { &*arg.cast::<Events>() };
    // SAFETY: the target is set before any upcall is registered and kept
    // while one is (KSocket's invariant).
    let (node, _, _) = unsafe { ev.target.as_ref().unwrap_unchecked() };
    // The target is an Installed node of type T (caller), as the event entry
    // requires.
    if !ev.pending.swap(true, Ordering::AcqRel)
        && node
            .node()
            .send_fn(NodeFn::event::<T, A>(), A, upcall_flags(waitflag))
            .is_err()
    {
        ev.pending.store(false, Ordering::Release);
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

/// What [`KSocket::recv`] returned.
pub struct Received {
    /// The data; `None` at end of file or when nothing was returned.
    pub data: Option<Mbuf>,
    /// The source address, when asked for and available.
    pub addr: Option<SoName>,
    /// The datagram was longer than the budget and was cut (`MSG_TRUNC`).
    pub truncated: bool,
}

/// A socket address `soreceive` allocated (`M_SONAME`), owned: freed on
/// drop.
///
/// # Invariants
///
/// `sa` is an `M_SONAME` allocation this value owns, holding a sockaddr of
/// `sa_len` bytes (at least the 2 header bytes).
pub struct SoName {
    sa: NonNull<sockaddr>,
}

impl SoName {
    /// Takes ownership of an address returned by `soreceive`.
    ///
    /// # Safety
    ///
    /// `sa` is NULL or an `M_SONAME` allocation the caller owns, with
    /// `sa_len` valid bytes.
    #[inline]
    unsafe fn from_raw(sa: *mut sockaddr) -> Option<SoName> {
        NonNull::new(sa).map(|sa| SoName { sa })
    }

    /// The address bytes (`sa_len` of them).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the allocation holds sa_len bytes (invariant).
        unsafe {
            let len = usize::from((*self.sa.as_ptr()).sa_len);
            core::slice::from_raw_parts(self.sa.as_ptr().cast::<u8>(), len)
        }
    }
}

impl Drop for SoName {
    fn drop(&mut self) {
        // SAFETY: owned M_SONAME allocation, freed once.
        unsafe { M_SONAME.free(self.sa.cast::<u8>()) }
    }
}
