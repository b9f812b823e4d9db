//! Error numbers, as FreeBSD defines them.

use core::fmt;

/// A FreeBSD errno value (always positive).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(i32);

/// Result of a kernel operation.
pub type KResult<T> = Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[allow(clippy::cast_possible_wrap)]
                pub const $name: Errno = Errno(fbsd_sys::$name as i32);
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
    pub const fn from_raw(raw: i32) -> Option<Errno> {
        if raw == 0 {
            None
        } else {
            Some(Errno(raw))
        }
    }

    /// Converts a kernel function's int result into a `KResult`.
    pub const fn check(raw: i32) -> KResult<()> {
        match Self::from_raw(raw) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// The raw value, for returning to the kernel.
    pub const fn raw(self) -> i32 {
        self.0
    }
}

/// Converts a result into the int a kernel method returns.
pub fn to_raw(r: KResult<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.raw(),
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errno {}", self.0)
    }
}
