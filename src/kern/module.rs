//! What a module declares about itself: the statics its C glue defines or
//! reads (malloc types, sysctl variables, mutexes initialised at load,
//! node type records), declared with [`module_statics!`](crate::module_statics).

use core::ffi::c_ulong;

/// A `u_long` variable the module's C glue defines (e.g. the target of a
/// `SYSCTL_ULONG`), read by Rust.
///
/// # Invariants
///
/// `p` is the address of that variable, valid while the module is loaded.
pub struct ExternULong {
    p: *const c_ulong,
}

// SAFETY: only read, with single aligned loads (a `u_long` write is atomic
// on amd64, as sysctl's handler does it).
unsafe impl Sync for ExternULong {}

impl ExternULong {
    /// The variable at `p`.
    ///
    /// # Safety
    ///
    /// `p` must be the address of a `u_long` of the module.
    #[doc(hidden)]
    pub const unsafe fn new(p: *const c_ulong) -> Self {
        ExternULong { p }
    }

    /// The current value.
    pub fn get(&self) -> u64 {
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
/// * `ulong NAME = "SYM";`: a `u_long` variable of the glue, as an
///   [`ExternULong`];
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
        $(#[$m])*
        $vis static $name: $crate::kern::module::ExternULong = {
            extern "C" {
                #[link_name = $sym]
                static VAR: core::ffi::c_ulong;
            }
            // SAFETY: `$sym` is a u_long of the module's glue.
            unsafe { $crate::kern::module::ExternULong::new(&raw const VAR) }
        };
        $crate::module_statics!(@items $($tail)*);
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
