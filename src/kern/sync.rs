//! Shared kernel objects: a reference-counted kernel-heap box ([`KArc`]), a
//! slot that holds one set at most once ([`ArcSlot`]), a kernel mutex that
//! owns the data it protects ([`Mutex`]), and one that lives in a module
//! `static` ([`SysMutex`], declared with [`static_mutex!`]).
//!
//! A `KArc`'s contents never move until the last reference is dropped, so a
//! [`Mutex`] inside one can be initialised in place ([`KArc::init_mutex`]).

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

/// The allocation of a [`KArc`].
#[repr(C)]
struct ArcInner<T> {
    refs: AtomicUsize,
    ty: MallocType,
    val: T,
}

/// A reference-counted object in kernel memory of a given malloc type.
///
/// # Invariants
///
/// `p` points to a live `ArcInner<T>` allocated with its `ty`, on which this
/// value owns one of `refs` references; the value inside never moves.
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

    /// The contents, writable, when this is the only reference. Not
    /// public: what was pinned through [`KArc::pinned_field`] must not be
    /// moved out through it (node private data exposes only its unpinned
    /// part this way).
    pub(in crate::kern) fn get_mut(&mut self) -> Option<&mut T> {
        if self.inner().refs.load(Ordering::Acquire) != 1 {
            return None;
        }
        // SAFETY: the only reference, held mutably: no other access exists.
        Some(unsafe { &mut (*self.p.as_ptr()).val })
    }

    /// Gives the reference up as a raw pointer (for a kernel slot).
    pub(in crate::kern) fn into_raw(self) -> *mut c_void {
        let p = self.p.as_ptr().cast::<c_void>();
        core::mem::forget(self);
        p
    }

    /// Retakes a reference given up with [`KArc::into_raw`].
    ///
    /// # Safety
    /// `p` must come from `into_raw` of a `KArc<T>` and carry its reference.
    pub(in crate::kern) unsafe fn from_raw(p: *mut c_void) -> Option<Self> {
        NonNull::new(p.cast::<ArcInner<T>>()).map(|p| KArc { p })
    }

    /// A new reference from a raw pointer whose reference stays where it is.
    ///
    /// # Safety
    /// `p` must come from `into_raw` of a `KArc<T>` whose reference is still
    /// held (by the slot it was stored in) for the duration of this call.
    pub(in crate::kern) unsafe fn clone_raw(p: *mut c_void) -> Option<Self> {
        let p = NonNull::new(p.cast::<ArcInner<T>>())?;
        // SAFETY: guaranteed by the caller: the object is live.
        unsafe { p.as_ref() }.refs.fetch_add(1, Ordering::Relaxed);
        Some(KArc { p })
    }

    /// The contents behind a raw pointer whose reference stays where it is.
    ///
    /// # Safety
    ///
    /// `p` must be NULL or come from `into_raw` of a `KArc<T>` whose
    /// reference stays held (by the slot it was stored in) for `'b`.
    pub(in crate::kern) unsafe fn borrow_raw<'b>(p: *mut c_void) -> Option<&'b T> {
        if p.is_null() {
            return None;
        }
        // SAFETY: guaranteed by the caller: the object is live for 'b.
        Some(unsafe { &(*p.cast::<ArcInner<T>>()).val })
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
///
/// # Invariants
///
/// `m` is initialised exactly when `inited` is set, then never moves (the
/// mutex is pinned) until it is dropped.
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
///
/// # Invariants
///
/// The current thread holds `m`'s kernel mutex while the guard exists.
pub struct MutexGuard<'a, T> {
    m: &'a Mutex<T>,
}

impl<T> MutexGuard<'_, T> {
    /// Sleeps on `chan` (`msleep`; an address used only as a key),
    /// releasing the mutex while asleep; it is held again on return. Must
    /// be called where sleeping is allowed.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
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

/// A counted pointer an [`ArcSlot`] can hold: a [`KArc`], or a node's
/// private data.
///
/// # Safety
///
/// `into_raw` gives up one reference as a non-NULL pointer that
/// `from_raw` takes back; while that reference is held, `borrow` may
/// return a reference to the target.
pub unsafe trait SlotPtr: Sized {
    /// What a borrow of the slot reaches.
    type Target;
    /// Gives the reference up.
    fn into_raw(self) -> *mut c_void;
    /// Takes a reference given up with `into_raw` back.
    ///
    /// # Safety
    ///
    /// `p` must be NULL or come from `into_raw`, carrying its reference.
    unsafe fn from_raw(p: *mut c_void) -> Option<Self>;
    /// The target behind `p`.
    ///
    /// # Safety
    ///
    /// `p` must be NULL or come from `into_raw`, its reference held for `'b`.
    unsafe fn borrow<'b>(p: *mut c_void) -> Option<&'b Self::Target>;
}

// SAFETY: KArc's raw forms keep the reference (see its methods).
unsafe impl<T> SlotPtr for KArc<T> {
    type Target = T;
    fn into_raw(self) -> *mut c_void {
        KArc::into_raw(self)
    }
    unsafe fn from_raw(p: *mut c_void) -> Option<Self> {
        // SAFETY: guaranteed by the caller.
        unsafe { KArc::from_raw(p) }
    }
    unsafe fn borrow<'b>(p: *mut c_void) -> Option<&'b T> {
        // SAFETY: guaranteed by the caller.
        unsafe { KArc::borrow_raw(p) }
    }
}

/// A slot holding at most one counted reference: set once (atomically),
/// borrowed by anyone who can reach the slot, emptied only by its unique
/// owner.
///
/// # Invariants
///
/// `p` is NULL or holds one reference given up by `P::into_raw`.
pub struct ArcSlot<P: SlotPtr> {
    p: core::sync::atomic::AtomicPtr<c_void>,
    _t: core::marker::PhantomData<P>,
}

// SAFETY: the slot hands out `&P::Target` to any thread and moves `P`s in
// and out.
unsafe impl<P: SlotPtr + Send + Sync> Sync for ArcSlot<P> where P::Target: Sync {}
// SAFETY: as above.
unsafe impl<P: SlotPtr + Send> Send for ArcSlot<P> {}

impl<P: SlotPtr> ArcSlot<P> {
    /// An empty slot.
    pub const fn new() -> Self {
        ArcSlot {
            p: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
            _t: core::marker::PhantomData,
        }
    }

    /// Stores `v` if the slot is empty; hands it back otherwise.
    pub fn set(&self, v: P) -> Result<(), P> {
        let raw = v.into_raw();
        match self.p.compare_exchange(
            core::ptr::null_mut(),
            raw,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            // SAFETY: `raw` came from `into_raw` just above and was not
            // stored: the reference comes back.
            Err(_) => match unsafe { P::from_raw(raw) } {
                Some(v) => Err(v),
                None => Ok(()),
            },
        }
    }

    /// What the slot holds, if anything, for as long as the slot is
    /// borrowed (it can only be emptied through `&mut`, or by its owner
    /// when no borrow can exist).
    pub fn get(&self) -> Option<&P::Target> {
        // SAFETY: the slot holds a reference (invariant) that is removed
        // only when no borrow of the slot exists.
        unsafe { P::borrow(self.p.load(Ordering::Acquire)) }
    }

    /// Empties the slot through a shared borrow.
    ///
    /// # Safety
    ///
    /// No borrow returned by [`ArcSlot::get`] may be live, nor be made
    /// during the call.
    pub(in crate::kern) unsafe fn take_shared(&self) -> Option<P> {
        let raw = self.p.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: the slot's reference moves to the caller; no borrow of it
        // exists (guaranteed by the caller).
        unsafe { P::from_raw(raw) }
    }

    /// Empties the slot, handing its reference over.
    pub fn take(&mut self) -> Option<P> {
        let raw = core::mem::replace(self.p.get_mut(), core::ptr::null_mut());
        // SAFETY: the slot's reference moves to the caller.
        unsafe { P::from_raw(raw) }
    }
}

impl<P: SlotPtr> Default for ArcSlot<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: SlotPtr> Drop for ArcSlot<P> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// A kernel mutex in a module `static`, initialised by the module's C glue
/// at load and destroyed at unload (`NGSOCK_MTX_SYSINIT` in
/// `kmod/ngsock_glue.h`). Declare it with [`static_mutex!`].
///
/// # Invariants
///
/// `m` is initialised before any code of the module can reach the static
/// and destroyed only after none can; it is the first member, so the glue
/// sees the static as a `struct mtx`.
#[repr(C)]
pub struct SysMutex<T> {
    m: UnsafeCell<mtx>,
    v: UnsafeCell<T>,
    /// The symbol the glue's initialisation defines, referenced so that a
    /// static without it does not link.
    _sysinit: *const u8,
}

// SAFETY: the data is only reached through the lock.
unsafe impl<T: Send> Sync for SysMutex<T> {}

impl<T> SysMutex<T> {
    /// A mutex holding `v`.
    ///
    /// # Safety
    ///
    /// The value must be a `static` exported under a symbol the module's
    /// glue initialises with `NGSOCK_MTX_SYSINIT`, and `sysinit` the
    /// address of the companion symbol that macro defines.
    pub const unsafe fn new(v: T, sysinit: *const u8) -> Self {
        SysMutex {
            // SAFETY: all-zero is the "not yet initialised" state of a mutex;
            // the glue initialises it before use.
            m: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            v: UnsafeCell::new(v),
            _sysinit: sysinit,
        }
    }

    /// Locks the mutex until the guard is dropped.
    pub fn lock(&self) -> SysMutexGuard<'_, T> {
        // SAFETY: initialised at load (invariant); not held by this thread
        // (guards are not held across calls that could lock it again).
        unsafe { ngsock_mtx_lock(self.m.get()) };
        SysMutexGuard { m: self }
    }
}

/// Holds a [`SysMutex`] locked and gives access to its data.
///
/// # Invariants
///
/// The current thread holds `m`'s kernel mutex while the guard exists.
pub struct SysMutexGuard<'a, T> {
    m: &'a SysMutex<T>,
}

impl<T> Deref for SysMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.m.v.get() }
    }
}

impl<T> DerefMut for SysMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes access unique.
        unsafe { &mut *self.m.v.get() }
    }
}

impl<T> Drop for SysMutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock.
        unsafe { ngsock_mtx_unlock(self.m.m.get()) }
    }
}

/// Declares a [`SysMutex`] `static` under the symbol `$sym`, which the
/// module's glue must initialise with `NGSOCK_MTX_SYSINIT($sym, ...)`: the
/// static refers to the `$sym_sysinit` symbol that macro defines, so a
/// static without its initialisation fails the kernel-linker gate.
///
/// ```ignore
/// kern::static_mutex!(pub static EMBRYOS: List = List::new(); symbol "ngsock_ks_embryos");
/// ```
#[macro_export]
#[cfg_attr(target_os = "none", allow_internal_unsafe)]
macro_rules! static_mutex {
    ($(#[$m:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; symbol $sym:literal) => {
        $(#[$m])*
        #[export_name = $sym]
        $vis static $name: $crate::kern::sync::SysMutex<$t> = {
            extern "C" {
                #[link_name = concat!($sym, "_sysinit")]
                static SYSINIT: u8;
            }
            let v: $t = $init;
            // SAFETY: exported as `$sym`, which the glue initialises with
            // NGSOCK_MTX_SYSINIT (the companion symbol proves it).
            unsafe { $crate::kern::sync::SysMutex::new(v, &raw const SYSINIT) }
        };
    };
}
