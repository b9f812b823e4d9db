//! mutex(9) as compiled into a module: calls through the C glue, which
//! expands the `mtx_*` macros to the kernel's out-of-line lock functions.

use core::cell::UnsafeCell;
use core::ffi::CStr;

use fbsd_sys::mtx;

extern "C" {
    fn ngsock_mtx_init(m: *mut mtx, name: *const core::ffi::c_char, opts: i32);
    fn ngsock_mtx_destroy(m: *mut mtx);
    fn ngsock_mtx_lock(m: *mut mtx);
    fn ngsock_mtx_unlock(m: *mut mtx);
}

/// A default (sleep) mutex embedded in a structure that never moves while
/// the mutex is initialised (kernel heap memory or a static).
pub struct KMutex {
    m: UnsafeCell<mtx>,
}

// SAFETY: the kernel mutex is designed to be shared between threads.
unsafe impl Sync for KMutex {}
// SAFETY: as above.
unsafe impl Send for KMutex {}

impl KMutex {
    /// An uninitialised mutex (all zero, as `M_ZERO` memory would hold).
    pub const fn zeroed() -> Self {
        // SAFETY: `struct mtx` is plain data for which all-zero is the
        // "not initialised" state the kernel expects before mtx_init.
        let m = unsafe { core::mem::zeroed() };
        KMutex {
            m: UnsafeCell::new(m),
        }
    }

    /// Initialises the mutex.
    ///
    /// # Safety
    /// Called once, before any other use, and the mutex must not move until
    /// [`KMutex::destroy`] has been called.
    pub unsafe fn init(&self, name: &'static CStr) {
        // SAFETY: guaranteed by the caller; opts 0 = MTX_DEF.
        unsafe { ngsock_mtx_init(self.m.get(), name.as_ptr(), 0) }
    }

    /// Destroys the mutex.
    ///
    /// # Safety
    /// The mutex is initialised, not held, and not used again unless re-initialised.
    pub unsafe fn destroy(&self) {
        // SAFETY: guaranteed by the caller.
        unsafe { ngsock_mtx_destroy(self.m.get()) }
    }

    /// Locks the mutex until the guard is dropped.
    ///
    /// # Safety
    /// The mutex must be initialised and not destroyed.
    pub unsafe fn lock(&self) -> KMutexGuard<'_> {
        // SAFETY: guaranteed by the caller.
        unsafe { ngsock_mtx_lock(self.m.get()) };
        KMutexGuard { m: self }
    }
}

/// Holds a [`KMutex`] locked.
pub struct KMutexGuard<'a> {
    m: &'a KMutex,
}

impl Drop for KMutexGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while this thread holds the mutex.
        unsafe { ngsock_mtx_unlock(self.m.m.get()) }
    }
}
