//! malloc(9): fallible, typed kernel allocations.
//!
//! The crate has no global allocator: every allocation goes through
//! [`KBox::try_new`], which never sleeps (`M_NOWAIT`) and reports failure as
//! `ENOMEM`, so running out of memory can never become a panic.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use fbsd_sys::malloc_type;

use super::errno::{Errno, KResult};

/// A kernel malloc type (`struct malloc_type`), by address.
///
/// # Invariants
///
/// The address is that of a malloc type registered with the kernel for as
/// long as the module is loaded.
#[derive(Clone, Copy)]
pub struct MallocType(*mut malloc_type);

// SAFETY: a malloc type is a kernel-global record, safe to name from any thread.
unsafe impl Send for MallocType {}
// SAFETY: as above; the kernel synchronises its statistics itself.
unsafe impl Sync for MallocType {}

impl MallocType {
    /// Wraps the address of a malloc type record (see
    /// [`module_statics!`](crate::module_statics)).
    ///
    /// # Safety
    ///
    /// `ty` must point to a `struct malloc_type` registered with the kernel
    /// (a `MALLOC_DEFINE` of this module or a kernel export) for as long as
    /// the value is used.
    #[doc(hidden)]
    pub const unsafe fn from_raw(ty: *mut malloc_type) -> Self {
        MallocType(ty)
    }

    /// Allocates `size` zeroed bytes without sleeping.
    pub(in crate::kern) fn alloc_zeroed(self, size: usize) -> KResult<NonNull<u8>> {
        #[allow(clippy::cast_possible_truncation)]
        let flags = (fbsd_sys::M_NOWAIT | fbsd_sys::M_ZERO) as i32;
        // SAFETY: malloc(9) with M_NOWAIT may be called in any non-interrupt
        // context and returns NULL on failure; `self.0` is a registered type.
        let p = unsafe { fbsd_sys::malloc(size, self.0, flags) };
        NonNull::new(p.cast::<u8>()).ok_or(Errno::ENOMEM)
    }

    /// Frees memory obtained from [`MallocType::alloc_zeroed`] with this type.
    ///
    /// # Safety
    ///
    /// `p` must come from `alloc_zeroed` on the same type and not be used
    /// again.
    pub(in crate::kern) unsafe fn free(self, p: NonNull<u8>) {
        // SAFETY: guaranteed by the caller.
        unsafe { fbsd_sys::free(p.as_ptr().cast::<c_void>(), self.0) }
    }
}

/// An owned, heap-allocated `T` in kernel memory of a given malloc type.
///
/// # Invariants
///
/// `ptr` points to an initialised `T` in memory allocated with `ty`, owned
/// by this value; it never moves while the box exists.
pub struct KBox<T> {
    ptr: NonNull<T>,
    ty: MallocType,
    _owns: PhantomData<T>,
}

// SAFETY: a KBox owns its T like a Box does.
unsafe impl<T: Send> Send for KBox<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for KBox<T> {}

impl<T> KBox<T> {
    const ALIGN_OK: () = assert!(
        core::mem::align_of::<T>() <= 16,
        "kernel malloc aligns to 16"
    );

    /// Moves `v` into a new allocation; `ENOMEM` if none can be had without sleeping.
    pub fn try_new(v: T, ty: MallocType) -> KResult<Self> {
        let () = Self::ALIGN_OK;
        let p = ty
            .alloc_zeroed(core::mem::size_of::<T>().max(1))?
            .cast::<T>();
        // SAFETY: `p` is a fresh allocation of the size and alignment of `T`.
        unsafe { p.as_ptr().write(v) };
        Ok(KBox {
            ptr: p,
            ty,
            _owns: PhantomData,
        })
    }

    /// Gives up ownership; the pointer must come back through [`KBox::from_raw`].
    pub(in crate::kern) fn into_raw(b: Self) -> *mut T {
        let p = b.ptr.as_ptr();
        core::mem::forget(b);
        p
    }

    /// Retakes ownership of a pointer produced by [`KBox::into_raw`].
    ///
    /// # Safety
    ///
    /// `p` must come from `into_raw` of a `KBox<T>` with the same malloc
    /// type, and no other owner may exist.
    pub(in crate::kern) unsafe fn from_raw(p: NonNull<T>, ty: MallocType) -> Self {
        KBox {
            ptr: p,
            ty,
            _owns: PhantomData,
        }
    }
}

impl<T> Deref for KBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the box owns a valid, initialised `T`.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for KBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the box owns a valid `T` and `&mut self` makes access unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for KBox<T> {
    fn drop(&mut self) {
        // SAFETY: the value is valid and dropped exactly once here; the memory
        // came from `alloc_zeroed` on `self.ty`.
        unsafe {
            core::ptr::drop_in_place(self.ptr.as_ptr());
            self.ty.free(self.ptr.cast::<u8>());
        }
    }
}

/// An owned array of `T`, its length chosen at run time, in kernel memory
/// of a given malloc type.
///
/// # Invariants
///
/// `ptr` points to `len` initialised `T`s in memory allocated with `ty`,
/// owned by this value.
pub struct KSlice<T> {
    ptr: NonNull<T>,
    len: usize,
    ty: MallocType,
}

// SAFETY: a KSlice owns its elements like a Box<[T]> does.
unsafe impl<T: Send> Send for KSlice<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for KSlice<T> {}

impl<T> KSlice<T> {
    const ALIGN_OK: () = assert!(
        core::mem::align_of::<T>() <= 16,
        "kernel malloc aligns to 16"
    );

    /// `len` elements, element `i` being `f(i)`, allocated without sleeping;
    /// `ENOMEM` if the memory cannot be had.
    pub fn try_new_with(
        len: usize,
        ty: MallocType,
        mut f: impl FnMut(usize) -> T,
    ) -> KResult<Self> {
        let () = Self::ALIGN_OK;
        let size = len
            .checked_mul(core::mem::size_of::<T>())
            .ok_or(Errno::ENOMEM)?
            .max(1);
        let ptr = ty.alloc_zeroed(size)?.cast::<T>();
        for i in 0..len {
            // SAFETY: `i < len`: inside the fresh allocation, sized and
            // aligned for `len` values of `T`.
            unsafe { ptr.as_ptr().add(i).write(f(i)) };
        }
        Ok(KSlice { ptr, len, ty })
    }
}

impl<T> Deref for KSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised values (invariant).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> DerefMut for KSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes access unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for KSlice<T> {
    fn drop(&mut self) {
        // SAFETY: the values are valid and dropped exactly once here; the
        // memory came from `alloc_zeroed` on `self.ty`.
        unsafe {
            core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len,
            ));
            self.ty.free(self.ptr.cast::<u8>());
        }
    }
}
