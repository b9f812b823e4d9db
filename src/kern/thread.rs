//! The current thread.

use fbsd_sys::thread;

use super::ffi::ngsock_curthread;

/// A borrowed reference to the running kernel thread.
#[derive(Clone, Copy)]
pub struct CurThread(*mut thread);

impl CurThread {
    /// The thread executing this code.
    pub fn get() -> Self {
        // SAFETY: reading curthread has no preconditions in kernel context.
        CurThread(unsafe { ngsock_curthread() })
    }

    /// Raw pointer, for kernel calls that take `struct thread *`.
    pub fn as_ptr(self) -> *mut thread {
        self.0
    }
}
