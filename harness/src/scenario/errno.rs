//! FreeBSD errno numbers, their symbolic names and `strerror(3)` texts
//! (lib/libc/gen/errlst.c), plus the mapping from Linux errnos (for the
//! outside sockets, which are real Linux sockets).

/// A FreeBSD errno value.
pub type Errno = i32;

macro_rules! errnos {
    ($( $name:ident => $text:expr ),* $(,)?) => {
        /// (name, FreeBSD number, strerror text), in number order.
        pub const TABLE: &[(&str, Errno, &str)] = &[
            $( (stringify!($name), fbsd_sys::$name as Errno, $text) ),*
        ];
    };
}

errnos! {
    EPERM => "Operation not permitted",
    ENOENT => "No such file or directory",
    ESRCH => "No such process",
    EINTR => "Interrupted system call",
    EIO => "Input/output error",
    ENXIO => "Device not configured",
    E2BIG => "Argument list too long",
    ENOEXEC => "Exec format error",
    EBADF => "Bad file descriptor",
    ECHILD => "No child processes",
    EDEADLK => "Resource deadlock avoided",
    ENOMEM => "Cannot allocate memory",
    EACCES => "Permission denied",
    EFAULT => "Bad address",
    ENOTBLK => "Block device required",
    EBUSY => "Device busy",
    EEXIST => "File exists",
    EXDEV => "Cross-device link",
    ENODEV => "Operation not supported by device",
    ENOTDIR => "Not a directory",
    EISDIR => "Is a directory",
    EINVAL => "Invalid argument",
    ENFILE => "Too many open files in system",
    EMFILE => "Too many open files",
    ENOTTY => "Inappropriate ioctl for device",
    ETXTBSY => "Text file busy",
    EFBIG => "File too large",
    ENOSPC => "No space left on device",
    ESPIPE => "Illegal seek",
    EROFS => "Read-only file system",
    EMLINK => "Too many links",
    EPIPE => "Broken pipe",
    EDOM => "Numerical argument out of domain",
    ERANGE => "Result too large",
    EAGAIN => "Resource temporarily unavailable",
    EINPROGRESS => "Operation now in progress",
    EALREADY => "Operation already in progress",
    ENOTSOCK => "Socket operation on non-socket",
    EDESTADDRREQ => "Destination address required",
    EMSGSIZE => "Message too long",
    EPROTOTYPE => "Protocol wrong type for socket",
    ENOPROTOOPT => "Protocol not available",
    EPROTONOSUPPORT => "Protocol not supported",
    ESOCKTNOSUPPORT => "Socket type not supported",
    EOPNOTSUPP => "Operation not supported",
    EPFNOSUPPORT => "Protocol family not supported",
    EAFNOSUPPORT => "Address family not supported by protocol family",
    EADDRINUSE => "Address already in use",
    EADDRNOTAVAIL => "Can't assign requested address",
    ENETDOWN => "Network is down",
    ENETUNREACH => "Network is unreachable",
    ENETRESET => "Network dropped connection on reset",
    ECONNABORTED => "Software caused connection abort",
    ECONNRESET => "Connection reset by peer",
    ENOBUFS => "No buffer space available",
    EISCONN => "Socket is already connected",
    ENOTCONN => "Socket is not connected",
    ESHUTDOWN => "Can't send after socket shutdown",
    ETOOMANYREFS => "Too many references: can't splice",
    ETIMEDOUT => "Operation timed out",
    ECONNREFUSED => "Connection refused",
    ELOOP => "Too many levels of symbolic links",
    ENAMETOOLONG => "File name too long",
    EHOSTDOWN => "Host is down",
    EHOSTUNREACH => "No route to host",
    ENOTEMPTY => "Directory not empty",
    EPROCLIM => "Too many processes",
    EUSERS => "Too many users",
    EDQUOT => "Disc quota exceeded",
    ESTALE => "Stale NFS file handle",
    EREMOTE => "Too many levels of remote in path",
    EBADRPC => "RPC struct is bad",
    ERPCMISMATCH => "RPC version wrong",
    EPROGUNAVAIL => "RPC prog. not avail",
    EPROGMISMATCH => "Program version wrong",
    EPROCUNAVAIL => "Bad procedure for program",
    ENOLCK => "No locks available",
    ENOSYS => "Function not implemented",
    EFTYPE => "Inappropriate file type or format",
    EAUTH => "Authentication error",
    ENEEDAUTH => "Need authenticator",
    EIDRM => "Identifier removed",
    ENOMSG => "No message of desired type",
    EOVERFLOW => "Value too large to be stored in data type",
    ECANCELED => "Operation canceled",
    EILSEQ => "Illegal byte sequence",
    ENOATTR => "Attribute not found",
    EDOOFUS => "Programming error",
    EBADMSG => "Bad message",
    EMULTIHOP => "Multihop attempted",
    ENOLINK => "Link has been severed",
    EPROTO => "Protocol error",
    ENOTCAPABLE => "Capabilities insufficient",
    ECAPMODE => "Not permitted in capability mode",
    ENOTRECOVERABLE => "State not recoverable",
    EOWNERDEAD => "Previous owner died",
    EINTEGRITY => "Integrity check failed",
}

/// Aliases accepted in scenario files besides the names in [`TABLE`].
const ALIASES: &[(&str, Errno)] = &[
    ("EWOULDBLOCK", fbsd_sys::EWOULDBLOCK as Errno),
    ("ENOTSUP", fbsd_sys::ENOTSUP as Errno),
];

/// The FreeBSD number of a symbolic errno name (`"EINVAL"` → 22).
pub fn by_name(name: &str) -> Option<Errno> {
    TABLE
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, e, _)| e)
        .or_else(|| ALIASES.iter().find(|(n, _)| *n == name).map(|&(_, e)| e))
}

/// The symbolic name of a FreeBSD errno (`22` → `"EINVAL"`), or `"errno N"`.
pub fn name(e: Errno) -> String {
    match TABLE.iter().find(|&&(_, n, _)| n == e) {
        Some((n, _, _)) => (*n).to_string(),
        None => format!("errno {e}"),
    }
}

/// FreeBSD's `strerror(e)`.
pub fn strerror(e: Errno) -> String {
    if e == 0 {
        return "No error: 0".to_string();
    }
    match TABLE.iter().find(|&&(_, n, _)| n == e) {
        Some((_, _, t)) => (*t).to_string(),
        None => format!("Unknown error: {e}"),
    }
}

/// Converts a Linux errno (from a real Linux socket) to the FreeBSD errno of
/// the same name; `None` if FreeBSD has no such name.
pub fn from_linux(e: i32) -> Option<Errno> {
    const L: &[(i32, &str)] = &[
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::EINTR, "EINTR"),
        (libc::EIO, "EIO"),
        (libc::EBADF, "EBADF"),
        (libc::EAGAIN, "EAGAIN"),
        (libc::ENOMEM, "ENOMEM"),
        (libc::EACCES, "EACCES"),
        (libc::EFAULT, "EFAULT"),
        (libc::EBUSY, "EBUSY"),
        (libc::EEXIST, "EEXIST"),
        (libc::EINVAL, "EINVAL"),
        (libc::EMFILE, "EMFILE"),
        (libc::EPIPE, "EPIPE"),
        (libc::ENOTSOCK, "ENOTSOCK"),
        (libc::EDESTADDRREQ, "EDESTADDRREQ"),
        (libc::EMSGSIZE, "EMSGSIZE"),
        (libc::EPROTOTYPE, "EPROTOTYPE"),
        (libc::ENOPROTOOPT, "ENOPROTOOPT"),
        (libc::EPROTONOSUPPORT, "EPROTONOSUPPORT"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::EAFNOSUPPORT, "EAFNOSUPPORT"),
        (libc::EADDRINUSE, "EADDRINUSE"),
        (libc::EADDRNOTAVAIL, "EADDRNOTAVAIL"),
        (libc::ENETDOWN, "ENETDOWN"),
        (libc::ENETUNREACH, "ENETUNREACH"),
        (libc::ECONNABORTED, "ECONNABORTED"),
        (libc::ECONNRESET, "ECONNRESET"),
        (libc::ENOBUFS, "ENOBUFS"),
        (libc::EISCONN, "EISCONN"),
        (libc::ENOTCONN, "ENOTCONN"),
        (libc::ETIMEDOUT, "ETIMEDOUT"),
        (libc::ECONNREFUSED, "ECONNREFUSED"),
        (libc::EHOSTUNREACH, "EHOSTUNREACH"),
        (libc::EALREADY, "EALREADY"),
        (libc::EINPROGRESS, "EINPROGRESS"),
        (libc::ENOSYS, "ENOSYS"),
    ];
    L.iter()
        .find(|&&(l, _)| l == e)
        .and_then(|&(_, n)| by_name(n))
}

/// The FreeBSD errno of a Linux I/O error (EIO if it has no errno or no
/// FreeBSD counterpart; a timeout becomes ETIMEDOUT).
pub fn from_io(e: &std::io::Error) -> Errno {
    if let Some(n) = e.raw_os_error() {
        if let Some(f) = from_linux(n) {
            return f;
        }
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            fbsd_sys::ETIMEDOUT as Errno
        }
        _ => fbsd_sys::EIO as Errno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_freebsd_numbers_and_texts() {
        // Every number from 1 to ELAST appears exactly once, in order.
        for (i, &(_, e, _)) in TABLE.iter().enumerate() {
            assert_eq!(e, i as Errno + 1);
        }
        assert_eq!(TABLE.len(), fbsd_sys::ELAST as usize);
        assert_eq!(strerror(22), "Invalid argument");
        assert_eq!(strerror(56), "Socket is already connected");
        assert_eq!(strerror(57), "Socket is not connected");
        assert_eq!(strerror(48), "Address already in use");
        assert_eq!(strerror(45), "Operation not supported");
        assert_eq!(strerror(78), "Function not implemented");
        assert_eq!(strerror(36), "Operation now in progress");
        assert_eq!(strerror(16), "Device busy");
        assert_eq!(strerror(65), "No route to host");
        assert_eq!(strerror(2), "No such file or directory");
        assert_eq!(
            strerror(47),
            "Address family not supported by protocol family"
        );
        assert_eq!(strerror(150), "Unknown error: 150");
        assert_eq!(by_name("EWOULDBLOCK"), Some(35));
        assert_eq!(by_name("EBOGUS"), None);
        assert_eq!(name(48), "EADDRINUSE");
        assert_eq!(from_linux(libc::EADDRINUSE), Some(48));
        assert_eq!(from_linux(libc::ECONNREFUSED), Some(61));
    }
}
