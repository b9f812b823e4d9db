//! The current thread.

use fbsd_sys::thread;

use super::ffi::ngsock_curthread;

/// The running kernel thread.
#[derive(Clone, Copy)]
pub(in crate::kern) struct CurThread(*mut thread);

impl CurThread {
    /// The thread executing this code.
    pub(in crate::kern) fn get() -> Self {
        // SAFETY: reading curthread has no preconditions in kernel context.
        CurThread(unsafe { ngsock_curthread() })
    }

    /// Raw pointer, for kernel calls that take `struct thread *`.
    pub(in crate::kern) fn as_ptr(self) -> *mut thread {
        self.0
    }
}

/// `PRIV_NETGRAPH_CONTROL`: the privilege of opening a netgraph control
/// socket.
#[allow(clippy::cast_possible_wrap)]
pub const PRIV_NETGRAPH_CONTROL: i32 = fbsd_sys::PRIV_NETGRAPH_CONTROL as i32;

/// `priv_check(curthread, privilege)`: `EPERM` (or another errno) when the
/// running thread lacks it. Only where sleeping is allowed.
pub fn priv_check(privilege: i32) -> crate::kern::errno::KResult<()> {
    // SAFETY: the running thread is valid for the call.
    crate::kern::errno::Errno::check(unsafe {
        fbsd_sys::priv_check(CurThread::get().as_ptr(), privilege)
    })
}
