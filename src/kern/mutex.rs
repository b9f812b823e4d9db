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

/// Locks a kernel mutex by address (for mutexes embedded in kernel objects).
///
/// # Safety
/// `m` must point to an initialised mutex that outlives the critical section.
pub unsafe fn raw_lock(m: *mut mtx) {
    // SAFETY: guaranteed by the caller.
    unsafe { ngsock_mtx_lock(m) }
}

/// Unlocks a kernel mutex locked with [`raw_lock`].
///
/// # Safety
/// The current thread must hold `m`.
pub unsafe fn raw_unlock(m: *mut mtx) {
    // SAFETY: guaranteed by the caller.
    unsafe { ngsock_mtx_unlock(m) }
}

/// Sleeps on `chan`, releasing `m` while asleep and holding it again on
/// return (`msleep(chan, m, 0, wmesg, 0)`).
///
/// # Safety
/// The current thread holds `m`, may sleep, and `chan` stays meaningful
/// until a matching `wakeup`.
pub unsafe fn msleep(chan: *const core::ffi::c_void, m: &KMutex, wmesg: &'static CStr) -> i32 {
    extern "C" {
        fn ngsock_msleep(
            chan: *const core::ffi::c_void,
            m: *mut mtx,
            wmesg: *const core::ffi::c_char,
        ) -> i32;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { ngsock_msleep(chan, m.m.get(), wmesg.as_ptr()) }
}

/// Wakes every thread sleeping on `chan` (an address used only as a key).
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn wakeup(chan: *const core::ffi::c_void) {
    // SAFETY: wakeup(9) accepts any channel value and never sleeps.
    unsafe { fbsd_sys::wakeup(chan) }
}
