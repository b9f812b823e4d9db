//! socket(9) services behind macros or locks: upcall registration under the
//! right lock, `so_state` bits under `SOCK_LOCK`, dequeuing from a
//! listening socket (C side: `kmod/glue_socket.c`).

use core::ffi::c_int;

use fbsd_sys::socket;

use super::errno::{Errno, KResult};
use super::netgraph::Node;
use super::ngpriv::Upcall;
use super::socket::KSocket;

use super::ffi::{
    ngsock_so_cantrcvmore, ngsock_so_connect_result, ngsock_so_dequeue, ngsock_so_listen_upcall,
    ngsock_so_listening, ngsock_so_state, ngsock_so_state_change, ngsock_so_type,
    ngsock_so_upcalls_clear, ngsock_so_upcalls_set,
};

// The socket-state bits, as `int`s (small positive constants).
#[allow(clippy::cast_possible_wrap)]
const SS_ISCONNECTED: c_int = fbsd_sys::SS_ISCONNECTED as c_int;
#[allow(clippy::cast_possible_wrap)]
const SS_ISCONNECTING: c_int = fbsd_sys::SS_ISCONNECTING as c_int;
#[allow(clippy::cast_possible_wrap)]
const SS_NBIO: c_int = fbsd_sys::SS_NBIO as c_int;

impl KSocket {
    /// Registers `f(so, node, waitflag)` on the receive and the send buffer,
    /// each under its own buffer lock (`soupcall_set(SO_RCV/SO_SND)`).
    /// The socket must not be listening.
    pub fn set_upcalls(&self, f: Upcall, node: Node<'_>) {
        // SAFETY: the socket is owned; the glue takes the buffer locks; the
        // node pointer is only handed back to `f`.
        unsafe { ngsock_so_upcalls_set(self.as_ptr(), f, node.as_ptr().cast()) }
    }

    /// Removes both buffer upcalls, each under its lock (`soupcall_clear`).
    /// Call only when [`KSocket::set_upcalls`] was called and the socket is
    /// not listening (the kernel asserts both). Once this returns no
    /// invocation of the upcall is running or will start.
    pub fn clear_upcalls(&self) {
        // SAFETY: the socket is owned; the glue takes the buffer locks.
        unsafe { ngsock_so_upcalls_clear(self.as_ptr()) }
    }

    /// `solisten_upcall_set(so, f, node)` under `SOLISTEN_LOCK`. The socket
    /// must be listening.
    pub fn set_listen_upcall(&self, f: Upcall, node: Node<'_>) {
        // SAFETY: the socket is owned and listening (caller); the glue takes
        // the listen lock; the node pointer is only handed back to `f`.
        unsafe { ngsock_so_listen_upcall(self.as_ptr(), Some(f), node.as_ptr().cast()) }
    }

    /// Removes the listen upcall under `SOLISTEN_LOCK`; afterwards no
    /// invocation is running or will start. The socket must be listening.
    pub fn clear_listen_upcall(&self) {
        // SAFETY: the socket is owned and listening (caller); the glue takes
        // the listen lock; NULL removes the upcall.
        unsafe { ngsock_so_listen_upcall(self.as_ptr(), None, core::ptr::null_mut()) }
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

    /// The socket is listening (`SOLISTENING`: `SO_ACCEPTCONN` in `so_options`).
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

    /// Connect-completion check, under `SOCK_LOCK`: takes (reads and clears)
    /// `so_error`, clearing `SS_ISCONNECTING` too when there was one. Returns
    /// that error (0 for none) and whether the socket is still connecting.
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

    /// Takes one completed connection off a listening socket without
    /// sleeping (`solisten_dequeue(head, &so, SOCK_NONBLOCK)` under
    /// `SOLISTEN_LOCK`). `EWOULDBLOCK` when none is queued. The new socket is
    /// non-blocking and owned by the caller.
    pub fn dequeue(&self) -> KResult<KSocket> {
        let mut so: *mut socket = core::ptr::null_mut();
        // SAFETY: the socket is owned and listening (caller); the glue takes
        // the listen lock, which solisten_dequeue releases on every path.
        let err = unsafe { ngsock_so_dequeue(self.as_ptr(), &mut so) };
        Errno::check(err)?;
        // SAFETY: on success solisten_dequeue hands us the queue's reference.
        unsafe { KSocket::from_raw(so) }.ok_or(Errno::ENOMEM)
    }
}
