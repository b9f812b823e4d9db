//! Statics the kernel writes to.
//!
//! Records such as `struct ng_type`, `struct malloc_type` or `struct protosw`
//! are handed to the kernel by address and updated by it (list linkage,
//! reference counts). They must live in writable, never-moving memory: a
//! `static` of this wrapper, which is `repr(transparent)` so the C glue can
//! declare the symbol with the plain C type.

use core::cell::UnsafeCell;

/// A static whose contents the kernel owns after registration.
#[repr(transparent)]
pub struct KernelCell<T>(UnsafeCell<T>);

// SAFETY: the Rust side only takes the address of the contents; every access
// to them happens in the kernel under the kernel's own locking rules.
unsafe impl<T> Sync for KernelCell<T> {}

impl<T> KernelCell<T> {
    /// Wraps an initial value.
    pub const fn new(v: T) -> Self {
        Self(UnsafeCell::new(v))
    }

    /// Address of the contents, for the kernel.
    pub const fn get(&self) -> *mut T {
        self.0.get()
    }
}

impl<T: Copy> KernelCell<T> {
    /// The contents, before the kernel has seen them (for `const`
    /// construction).
    pub const fn into_inner(self) -> T {
        self.0.into_inner()
    }
}
