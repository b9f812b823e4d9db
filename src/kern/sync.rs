//! Shared kernel objects: a reference-counted kernel-heap box ([`KArc`])
//! and a kernel mutex that owns the data it protects ([`Mutex`]).
//!
//! A `KArc`'s contents never move until the last reference is dropped, so a
//! [`Mutex`] inside one can be initialised in place through [`KArc::pin`].

use core::cell::UnsafeCell;
use core::ffi::{c_void, CStr};
use core::marker::PhantomPinned;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fbsd_sys::mtx;

use super::errno::{Errno, KResult};
use super::malloc::MallocType;

use super::ffi::{
    ngsock_msleep, ngsock_mtx_destroy, ngsock_mtx_init, ngsock_mtx_lock, ngsock_mtx_unlock,
};

#[repr(C)]
struct ArcInner<T> {
    refs: AtomicUsize,
    ty: MallocType,
    val: T,
}

/// A reference-counted object in kernel memory of a given malloc type.
pub struct KArc<T> {
    p: NonNull<ArcInner<T>>,
}

// SAFETY: like `Arc`, sharing requires the contents to be Send + Sync.
unsafe impl<T: Send + Sync> Send for KArc<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for KArc<T> {}

impl<T> KArc<T> {
    /// Allocates without sleeping; `ENOMEM` on failure.
    pub fn try_new(val: T, ty: MallocType) -> KResult<Self> {
        const {
            assert!(
                core::mem::align_of::<ArcInner<T>>() <= 16,
                "kernel malloc aligns to 16"
            )
        };
        let p = ty
            .alloc_zeroed(core::mem::size_of::<ArcInner<T>>())?
            .cast::<ArcInner<T>>();
        // SAFETY: a fresh allocation of the right size and alignment.
        unsafe {
            p.as_ptr().write(ArcInner {
                refs: AtomicUsize::new(1),
                ty,
                val,
            })
        };
        Ok(KArc { p })
    }

    fn inner(&self) -> &ArcInner<T> {
        // SAFETY: a KArc holds a reference, so the allocation is live.
        unsafe { self.p.as_ref() }
    }

    /// The contents, pinned: they never move while any reference exists.
    pub fn pin(&self) -> Pin<&T> {
        // SAFETY: the value is never moved out of its allocation (KArc has
        // no DerefMut and frees in place).
        unsafe { Pin::new_unchecked(&self.inner().val) }
    }

    /// Initialises, in place, a mutex stored inside the object.
    pub fn init_mutex<U>(
        &self,
        field: impl for<'a> FnOnce(&'a T) -> &'a Mutex<U>,
        name: &'static CStr,
    ) {
        self.pinned_field(field).init(name);
    }

    /// A pinned reference to a part of the object (it never moves).
    pub fn pinned_field<U>(&self, field: impl for<'a> FnOnce(&'a T) -> &'a U) -> Pin<&U> {
        // SAFETY: the object never moves while referenced, so neither does
        // anything reached through it for the duration of the borrow.
        unsafe { Pin::new_unchecked(field(&self.inner().val)) }
    }

    /// True if both refer to the same object.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.p == b.p
    }

    /// An opaque address identifying the object (e.g. a sleep channel).
    pub fn addr(&self) -> *const c_void {
        self.p.as_ptr().cast::<c_void>()
    }

    /// Gives the reference up as a raw pointer (for a kernel slot).
    pub(crate) fn into_raw(self) -> *mut c_void {
        let p = self.p.as_ptr().cast::<c_void>();
        core::mem::forget(self);
        p
    }

    /// Retakes a reference given up with [`KArc::into_raw`].
    ///
    /// # Safety
    /// `p` must come from `into_raw` of a `KArc<T>` and carry its reference.
    pub(crate) unsafe fn from_raw(p: *mut c_void) -> Option<Self> {
        NonNull::new(p.cast::<ArcInner<T>>()).map(|p| KArc { p })
    }

    /// A new reference from a raw pointer whose reference stays where it is.
    ///
    /// # Safety
    /// `p` must come from `into_raw` of a `KArc<T>` whose reference is still
    /// held (by the slot it was stored in) for the duration of this call.
    pub(crate) unsafe fn clone_raw(p: *mut c_void) -> Option<Self> {
        let p = NonNull::new(p.cast::<ArcInner<T>>())?;
        // SAFETY: guaranteed by the caller: the object is live.
        unsafe { p.as_ref() }.refs.fetch_add(1, Ordering::Relaxed);
        Some(KArc { p })
    }
}

impl<T> Clone for KArc<T> {
    fn clone(&self) -> Self {
        self.inner().refs.fetch_add(1, Ordering::Relaxed);
        KArc { p: self.p }
    }
}

impl<T> Deref for KArc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner().val
    }
}

impl<T> Drop for KArc<T> {
    fn drop(&mut self) {
        if self.inner().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        core::sync::atomic::fence(Ordering::Acquire);
        let ty = self.inner().ty;
        // SAFETY: this was the last reference: drop the value in place and
        // free the allocation it came from.
        unsafe {
            core::ptr::drop_in_place(self.p.as_ptr());
            ty.free(self.p.cast::<u8>());
        }
    }
}

/// A kernel mutex (`MTX_DEF`) owning the data it protects.
pub struct Mutex<T> {
    m: UnsafeCell<mtx>,
    inited: AtomicBool,
    v: UnsafeCell<T>,
    _pin: PhantomPinned,
}

// SAFETY: the data is only reached through the lock.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// A mutex that must be initialised with [`Mutex::init`] before use.
    pub const fn new(v: T) -> Self {
        Mutex {
            // SAFETY: all-zero is the "not initialised" state of struct mtx.
            m: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            inited: AtomicBool::new(false),
            v: UnsafeCell::new(v),
            _pin: PhantomPinned,
        }
    }

    /// Initialises the mutex in place (once; later calls do nothing).
    pub fn init(self: Pin<&Self>, name: &'static CStr) {
        if self.inited.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: pinned, so the mutex never moves while initialised; done once.
        unsafe { ngsock_mtx_init(self.m.get(), name.as_ptr(), 0) }
    }

    /// Locks the mutex; `EINVAL` if it was never initialised.
    pub fn lock(&self) -> KResult<MutexGuard<'_, T>> {
        if !self.inited.load(Ordering::Acquire) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: initialised (above) and not yet destroyed (Drop needs &mut).
        unsafe { ngsock_mtx_lock(self.m.get()) };
        Ok(MutexGuard { m: self })
    }
}

impl<T> Drop for Mutex<T> {
    fn drop(&mut self) {
        if *self.inited.get_mut() {
            // SAFETY: initialised and, with `&mut self`, not held.
            unsafe { ngsock_mtx_destroy(self.m.get()) }
        }
    }
}

/// Holds a [`Mutex`] locked and gives access to its data.
pub struct MutexGuard<'a, T> {
    m: &'a Mutex<T>,
}

impl<T> MutexGuard<'_, T> {
    /// `chan` is an address used only as a key.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    /// Sleeps on `chan` (`msleep`), releasing the mutex while asleep; it is
    /// held again on return. Must be called where sleeping is allowed.
    pub fn sleep(&mut self, chan: *const c_void, wmesg: &'static CStr) -> i32 {
        // SAFETY: this guard holds the mutex, which msleep drops and retakes.
        unsafe { ngsock_msleep(chan, self.m.m.get(), wmesg.as_ptr()) }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.m.v.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes access unique.
        unsafe { &mut *self.m.v.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock.
        unsafe { ngsock_mtx_unlock(self.m.m.get()) }
    }
}

/// Wakes every thread sleeping on `chan` (an address used only as a key).
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn wakeup(chan: *const c_void) {
    // SAFETY: wakeup(9) accepts any channel value and never sleeps.
    unsafe { fbsd_sys::wakeup(chan) }
}
