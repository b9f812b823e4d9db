//! Linux → FreeBSD errno translation for the errors a Linux socket call can
//! return (`<asm-generic/errno*.h>` → FreeBSD `sys/errno.h`).

use std::ffi::c_int;

/// FreeBSD errno constants (the full set a socket call can map to).
#[allow(dead_code)]
pub(crate) mod fb {
    use std::ffi::c_int;
    crate::kern::fbsd_consts! {
        pub c_int: EPERM, ENOENT, EINTR, EIO, ENXIO, EBADF, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST,
            EINVAL, ENFILE, EMFILE, ENOSPC, EPIPE, EDOM, EAGAIN, EWOULDBLOCK, EINPROGRESS, EALREADY,
            ENOTSOCK, EDESTADDRREQ, EMSGSIZE, EPROTOTYPE, ENOPROTOOPT, EPROTONOSUPPORT,
            ESOCKTNOSUPPORT, EOPNOTSUPP, EPFNOSUPPORT, EAFNOSUPPORT, EADDRINUSE, EADDRNOTAVAIL,
            ENETDOWN, ENETUNREACH, ENETRESET, ECONNABORTED, ECONNRESET, ENOBUFS, EISCONN, ENOTCONN,
            ESHUTDOWN, ETOOMANYREFS, ETIMEDOUT, ECONNREFUSED, ELOOP, ENAMETOOLONG, EHOSTDOWN,
            EHOSTUNREACH, ENOTEMPTY, EUSERS, EDQUOT, ESTALE, EREMOTE, ENOLCK, ENOSYS, EIDRM, ENOMSG,
            EOVERFLOW, ECANCELED, EILSEQ, ENOATTR, EBADMSG, EMULTIHOP, ENOLINK, EPROTO,
            ENOTRECOVERABLE, EOWNERDEAD, EDEADLK, ENOTDIR, EISDIR, EROFS, ENOTTY, ETXTBSY, EFBIG,
            ESPIPE, EMLINK, ERANGE, ESRCH, E2BIG, ENOEXEC, ECHILD, ENOTBLK, EXDEV, ENODEV;
    }
}

/// Linux errno → FreeBSD errno. The table covers every errno a socket call
/// can produce; anything else (STREAMS, keyring, ... codes that have no
/// FreeBSD counterpart) becomes `EIO` and is reported on stderr.
pub fn linux_to_fbsd(e: c_int) -> c_int {
    use fb::*;
    match e {
        0 => 0,
        // Linux 11 is EAGAIN; FreeBSD 11 is EDEADLK and EAGAIN is 35.
        libc::EAGAIN => EAGAIN,
        // The rest of 1..=34 is numbered identically on both systems.
        1..=34 => e,
        libc::EDEADLK => EDEADLK,
        libc::ENAMETOOLONG => ENAMETOOLONG,
        libc::ENOLCK => ENOLCK,
        libc::ENOSYS => ENOSYS,
        libc::ENOTEMPTY => ENOTEMPTY,
        libc::ELOOP => ELOOP,
        libc::ENOMSG => ENOMSG,
        libc::EIDRM => EIDRM,
        libc::ENODATA => ENOATTR,
        libc::ENOLINK => ENOLINK,
        libc::EREMOTE => EREMOTE,
        libc::EPROTO => EPROTO,
        libc::EMULTIHOP => EMULTIHOP,
        libc::EBADMSG => EBADMSG,
        libc::EOVERFLOW => EOVERFLOW,
        libc::EILSEQ => EILSEQ,
        libc::EUSERS => EUSERS,
        libc::ENOTSOCK => ENOTSOCK,
        libc::EDESTADDRREQ => EDESTADDRREQ,
        libc::EMSGSIZE => EMSGSIZE,
        libc::EPROTOTYPE => EPROTOTYPE,
        libc::ENOPROTOOPT => ENOPROTOOPT,
        libc::EPROTONOSUPPORT => EPROTONOSUPPORT,
        libc::ESOCKTNOSUPPORT => ESOCKTNOSUPPORT,
        libc::EOPNOTSUPP => EOPNOTSUPP,
        libc::EPFNOSUPPORT => EPFNOSUPPORT,
        libc::EAFNOSUPPORT => EAFNOSUPPORT,
        libc::EADDRINUSE => EADDRINUSE,
        libc::EADDRNOTAVAIL => EADDRNOTAVAIL,
        libc::ENETDOWN => ENETDOWN,
        libc::ENETUNREACH => ENETUNREACH,
        libc::ENETRESET => ENETRESET,
        libc::ECONNABORTED => ECONNABORTED,
        libc::ECONNRESET => ECONNRESET,
        libc::ENOBUFS => ENOBUFS,
        libc::EISCONN => EISCONN,
        libc::ENOTCONN => ENOTCONN,
        libc::ESHUTDOWN => ESHUTDOWN,
        libc::ETOOMANYREFS => ETOOMANYREFS,
        libc::ETIMEDOUT => ETIMEDOUT,
        libc::ECONNREFUSED => ECONNREFUSED,
        libc::EHOSTDOWN => EHOSTDOWN,
        libc::EHOSTUNREACH => EHOSTUNREACH,
        libc::EALREADY => EALREADY,
        libc::EINPROGRESS => EINPROGRESS,
        libc::ESTALE => ESTALE,
        libc::EDQUOT => EDQUOT,
        libc::ECANCELED => ECANCELED,
        libc::EOWNERDEAD => EOWNERDEAD,
        libc::ENOTRECOVERABLE => ENOTRECOVERABLE,
        libc::ENOTUNIQ | libc::ENONET | libc::ENOPKG | libc::ENOSR | libc::ENOSTR | libc::ETIME => {
            EIO
        }
        other => {
            eprintln!(
                "harness: inet: Linux errno {other} has no FreeBSD counterpart; reporting EIO"
            );
            EIO
        }
    }
}

/// The calling thread's Linux `errno`, translated.
pub(crate) fn last() -> c_int {
    linux_to_fbsd(last_linux())
}

/// The calling thread's raw Linux `errno`.
pub(crate) fn last_linux() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            (libc::EAGAIN, 35),
            (libc::EINPROGRESS, 36),
            (libc::EALREADY, 37),
            (libc::EADDRINUSE, 48),
            (libc::EADDRNOTAVAIL, 49),
            (libc::ECONNREFUSED, 61),
            (libc::ENOTCONN, 57),
            (libc::EISCONN, 56),
            (libc::EOPNOTSUPP, 45),
            (libc::EPROTONOSUPPORT, 43),
            (libc::EAFNOSUPPORT, 47),
            (libc::EMSGSIZE, 40),
            (libc::EDESTADDRREQ, 39),
            (libc::ENOBUFS, 55),
            (libc::ECONNRESET, 54),
            (libc::ETIMEDOUT, 60),
            (libc::ENETUNREACH, 51),
            (libc::EHOSTUNREACH, 65),
            (libc::EACCES, 13),
            (libc::EPERM, 1),
            (libc::EPIPE, 32),
            (libc::EINVAL, 22),
            (libc::ENOENT, 2),
            (libc::ENOPROTOOPT, 42),
            (libc::EPROTOTYPE, 41),
            (libc::ECONNABORTED, 53),
            (libc::ENOTSOCK, 38),
            (libc::ELOOP, 62),
            (libc::ENAMETOOLONG, 63),
        ];
        for (l, f) in cases {
            assert_eq!(linux_to_fbsd(l), f, "linux errno {l}");
        }
    }
}
