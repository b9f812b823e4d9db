//! What a module declares about itself: the statics its C glue defines or
//! reads (malloc types, sysctl variables, mutexes initialised at load,
//! node type records), declared with [`module_statics!`](crate::module_statics).

use core::ffi::{c_int, c_ulong};

/// A scalar variable the module's C glue defines (e.g. the target of a
/// `SYSCTL_INT` or `SYSCTL_ULONG`), read by Rust; the kernel's sysctl
/// handler may write it at any time.
///
/// # Invariants
///
/// `p` is the address of that variable, valid while the module is loaded,
/// and `T` is a type the kernel reads and writes with single aligned
/// accesses (`int`, `u_long`).
pub struct ExternVar<T: Copy> {
    p: *const T,
}

/// A `u_long` variable of the glue (`ulong` in [`module_statics!`]).
///
/// [`module_statics!`]: crate::module_statics
pub type ExternULong = ExternVar<c_ulong>;

/// An `int` variable of the glue (`int` in [`module_statics!`]).
///
/// [`module_statics!`]: crate::module_statics
pub type ExternInt = ExternVar<c_int>;

// SAFETY: only read, with single aligned loads (an `int` or `u_long` write is
// atomic on amd64, as sysctl's handler does it).
unsafe impl<T: Copy> Sync for ExternVar<T> {}

impl<T: Copy> ExternVar<T> {
    /// The variable at `p`.
    ///
    /// # Safety
    ///
    /// `p` must be the address of a `T` of the module, accessed by the
    /// kernel with single aligned loads and stores.
    #[doc(hidden)]
    pub const unsafe fn new(p: *const T) -> Self {
        ExternVar { p }
    }

    /// The current value (each call reads it again: the kernel may have
    /// changed it).
    pub fn get(&self) -> T {
        // SAFETY: the variable lives as long as the module (invariant).
        unsafe { self.p.read_volatile() }
    }
}

/// Declares the statics a module shares with its C glue, each as a safe
/// `static` of a kernel-layer type:
///
/// * `malloc_type NAME = "SYM";`: a malloc type the glue defines
///   (`MALLOC_DEFINE`) or the kernel exports, as a
///   [`MallocType`](crate::kern::malloc::MallocType);
/// * `ulong NAME = "SYM";` / `int NAME = "SYM";`: a `u_long` / `int`
///   variable of the glue (a sysctl's target), as an [`ExternULong`] /
///   [`ExternInt`];
/// * `node_type NAME = "SYM": RECORD;`: a node type record
///   ([`TypeRecord`](crate::kern::netgraph::TypeRecord)) exported as `SYM`
///   for the glue's `NETGRAPH_INIT`;
/// * `mutex NAME: T = INIT, symbol "SYM";`: a
///   [`SysMutex<T>`](crate::kern::sync::SysMutex) exported as `SYM`, which
///   the glue must initialise with `NGSOCK_MTX_SYSINIT(SYM, ...)`.
///
/// ```ignore
/// kern::module_statics! {
///     pub malloc_type M_NETGRAPH_KSOCKET = "M_NETGRAPH_KSOCKET";
///     pub node_type KSOCKET_TYPE = "ngsock_ksocket_type":
///         TypeRecord::with_cmdlist::<Ksocket, 11>(c"ksocket", &CMDLIST);
/// }
/// ```
#[macro_export]
#[cfg_attr(target_os = "none", allow_internal_unsafe)]
macro_rules! module_statics {
    (@items) => {};
    (@items $(#[$m:meta])* $vis:vis malloc_type $name:ident = $sym:literal; $($tail:tt)*) => {
        $(#[$m])*
        $vis static $name: $crate::kern::malloc::MallocType = {
            extern "C" {
                #[link_name = $sym]
                static mut TY: [fbsd_sys::malloc_type; 1];
            }
            // SAFETY: `$sym` is a malloc type registered for as long as the
            // module is loaded (its own MALLOC_DEFINE, or a kernel export).
            unsafe { $crate::kern::malloc::MallocType::from_raw((&raw mut TY).cast()) }
        };
        $crate::module_statics!(@items $($tail)*);
    };
    (@items $(#[$m:meta])* $vis:vis ulong $name:ident = $sym:literal; $($tail:tt)*) => {
        $crate::module_statics!(@var $(#[$m])* $vis $name: core::ffi::c_ulong = $sym);
        $crate::module_statics!(@items $($tail)*);
    };
    (@items $(#[$m:meta])* $vis:vis int $name:ident = $sym:literal; $($tail:tt)*) => {
        $crate::module_statics!(@var $(#[$m])* $vis $name: core::ffi::c_int = $sym);
        $crate::module_statics!(@items $($tail)*);
    };
    (@var $(#[$m:meta])* $vis:vis $name:ident: $t:ty = $sym:literal) => {
        $(#[$m])*
        $vis static $name: $crate::kern::module::ExternVar<$t> = {
            extern "C" {
                #[link_name = $sym]
                static VAR: $t;
            }
            // SAFETY: `$sym` is a variable of the module's glue of type
            // `$t`, which sysctl reads and writes with aligned accesses.
            unsafe { $crate::kern::module::ExternVar::new(&raw const VAR) }
        };
    };
    (@items $(#[$m:meta])* $vis:vis node_type $name:ident = $sym:literal: $init:expr; $($tail:tt)*) => {
        $(#[$m])*
        #[export_name = $sym]
        $vis static $name: $crate::kern::netgraph::TypeRecord = $init;
        $crate::module_statics!(@items $($tail)*);
    };
    (@items $(#[$m:meta])* $vis:vis mutex $name:ident: $t:ty = $init:expr, symbol $sym:literal; $($tail:tt)*) => {
        $crate::static_mutex!($(#[$m])* $vis static $name: $t = $init; symbol $sym);
        $crate::module_statics!(@items $($tail)*);
    };
    ($($tail:tt)*) => {
        $crate::module_statics!(@items $($tail)*);
    };
}
