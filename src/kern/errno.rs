//! Error numbers, as FreeBSD defines them.

use core::fmt;
use core::num::NonZeroI32;

/// A FreeBSD errno value (always positive). Never zero, so a `KResult<()>`
/// is one `int`, 0 for success, exactly what a kernel method returns: no
/// conversion on the way in or out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(NonZeroI32);

/// An errno constant (the bindings' values are all positive).
const fn errno_const(v: u32) -> Errno {
    #[allow(clippy::cast_possible_wrap)]
    match NonZeroI32::new(v as i32) {
        Some(n) => Errno(n),
        None => Errno(NonZeroI32::MIN),
    }
}

/// Result of a kernel operation.
pub type KResult<T> = Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                pub const $name: Errno = errno_const(fbsd_sys::$name);
            )*
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    EIO,
    ENXIO,
    E2BIG,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EINVAL,
    ENOSPC,
    EPIPE,
    ERANGE,
    EAGAIN,
    EWOULDBLOCK,
    EINPROGRESS,
    EALREADY,
    ENOTSOCK,
    EDESTADDRREQ,
    EMSGSIZE,
    EPROTOTYPE,
    ENOPROTOOPT,
    EPROTONOSUPPORT,
    EOPNOTSUPP,
    EAFNOSUPPORT,
    EADDRINUSE,
    ENETDOWN,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    EHOSTUNREACH,
    ENOSYS,
    ENAMETOOLONG,
);

impl Errno {
    /// Wraps a raw errno; `None` for 0 (success).
    #[inline]
    pub const fn from_raw(raw: i32) -> Option<Errno> {
        match NonZeroI32::new(raw) {
            Some(n) => Some(Errno(n)),
            None => None,
        }
    }

    /// Converts a kernel function's int result into a `KResult`.
    #[inline]
    pub const fn check(raw: i32) -> KResult<()> {
        match Self::from_raw(raw) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// The raw value, for returning to the kernel.
    #[inline]
    pub const fn raw(self) -> i32 {
        self.0.get()
    }
}

/// Converts a result into the int a kernel method returns.
#[inline]
pub fn to_raw(r: KResult<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.raw(),
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errno {}", self.0.get())
    }
}
const _: () = assert!(core::mem::size_of::<KResult<()>>() == 4);
