//! How the kernel model exports a function that wants to know its caller.
//!
//! Most checks report *who* broke a contract (`m_freem from
//! ng_ksocket.ko:ng_ksocket_rcvdata+0x4f`), and fault injection and the
//! probes match on the caller. A C function cannot pass its return address,
//! so each such kernel function has a naked entry point that loads it
//! (`[rsp]` on entry) into the register of one extra trailing argument and
//! jumps to the implementation, which returns straight to the caller.
//!
//! [`kernel_functions!`] declares a part's functions of this kind once each:
//! the implementation, the entry point in the part's `abi` module (callable
//! from Rust with the C signature), a compile-time check that the signature
//! is the one bindgen produced from the FreeBSD headers, and the line of the
//! export table (`abi::register`).

/// The register of the first argument after `n` integer arguments in the
/// SysV ABI (rdi, rsi, rdx, rcx, r8, r9), for `n` identifiers.
macro_rules! ra_reg {
    () => {
        "rdi"
    };
    ($a:ident) => {
        "rsi"
    };
    ($a:ident $b:ident) => {
        "rdx"
    };
    ($a:ident $b:ident $c:ident) => {
        "rcx"
    };
    ($a:ident $b:ident $c:ident $d:ident) => {
        "r8"
    };
    ($a:ident $b:ident $c:ident $d:ident $e:ident) => {
        "r9"
    };
}
pub(crate) use ra_reg;

/// Captures the caller's return address in a naked entry point and tail-jumps
/// to the implementation with that address as one extra trailing argument.
///
/// `entry!(fn NAME(args..) -> R => IMPL);` defines
/// `pub unsafe extern "C" fn NAME(args..) -> R` whose body loads the return
/// address (`[rsp]` on entry) into the register of the first argument after
/// the declared ones and jumps to `IMPL`, which must take the declared
/// arguments plus a trailing `usize`. The stack is untouched, so `IMPL`
/// returns straight to the caller.
macro_rules! entry {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $imp:path) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// Same contract as the FreeBSD kernel function of this name.
        #[unsafe(naked)]
        #[allow(unused_variables)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            core::arch::naked_asm!(
                concat!("mov ", $crate::kern::entry::ra_reg!($($arg)*), ", qword ptr [rsp]"),
                "jmp {imp}",
                imp = sym $imp,
            )
        }
    };
}
pub(crate) use entry;

/// Declares kernel functions that receive their caller (see the module
/// documentation):
///
/// ```text
/// kernel_functions! {
///     /// `void m_freem(struct mbuf *m)`
///     fn m_freem(m: *mut mbuf) [c] { freem(m, c) }
///     ...
/// }
/// ```
///
/// Each body runs in an `unsafe extern "C" fn` with the declared arguments
/// and `c`, the [`Caller`](crate::kern::fault::Caller) (a return address),
/// in a descendant module that sees everything the declaring module sees. The
/// macro defines `pub mod abi` with one entry point per function and
/// `abi::register(ex)`, which exports them all under their names; every
/// signature is checked at compile time against `fbsd_sys::NAME`.
macro_rules! kernel_functions {
    ($(
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? [$c:ident] $body:block
    )*) => {
        /// The implementations behind the entry points of [`abi`], each in a
        /// module of its name (so a body may call a function of the same
        /// name in the declaring module).
        mod imp {
            $(
                pub(super) mod $name {
                    #[allow(unused_imports)]
                    use super::super::*;
                    pub(in super::super) unsafe extern "C" fn call($($arg: $ty,)* ra: usize) $(-> $ret)? {
                        let $c = $crate::kern::fault::Caller::Addr(ra);
                        $body
                    }
                }
            )*
        }

        /// The kernel entry points (callable from Rust with the C signatures).
        pub mod abi {
            #[allow(unused_imports)]
            use super::*;
            $(
                $crate::kern::entry::entry!(
                    $(#[$meta])*
                    fn $name($($arg: $ty),*) $(-> $ret)? => super::imp::$name::call
                );
            )*

            /// Exports every function of this part's `abi` under its name.
            pub fn register(ex: &mut $crate::exports::Exports) {
                $( ex.func(stringify!($name), $name as *const () as usize); )*
            }
        }

        // The C signatures are the ones the FreeBSD headers declare.
        const _: () = {
            $(
                let _f: [unsafe extern "C" fn($($ty),*) $(-> $ret)?; 2] =
                    [fbsd_sys::$name, abi::$name];
            )*
        };
    };
}
pub(crate) use kernel_functions;
