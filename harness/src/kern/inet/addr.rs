//! FreeBSD ↔ Linux socket addresses.
//!
//! FreeBSD sockaddrs start with a length byte and a one-byte family
//! (`sa_len`, `sa_family`); Linux ones with a 16-bit family. `AF_INET6` is 28
//! on FreeBSD and 10 on Linux; `AF_INET` (2) and `AF_LOCAL` (1) agree.

use std::ffi::c_int;
use std::mem::{size_of, zeroed};

use fbsd_sys::sockaddr;

use super::errno::fb;

pub(crate) const AF_LOCAL: c_int = fbsd_sys::AF_UNIX as c_int;
pub(crate) const AF_INET: c_int = fbsd_sys::AF_INET as c_int;
pub(crate) const AF_INET6: c_int = fbsd_sys::AF_INET6 as c_int;
/// `sizeof(struct sockaddr_in)`.
pub(crate) const SIN_LEN: usize = size_of::<fbsd_sys::sockaddr_in>();
/// `sizeof(struct sockaddr_in6)`.
pub(crate) const SIN6_LEN: usize = size_of::<fbsd_sys::sockaddr_in6>();
/// `sizeof(struct sockaddr_un)` (106).
pub(crate) const SUN_LEN_MAX: usize = size_of::<fbsd_sys::sockaddr_un>();
/// `offsetof(struct sockaddr_un, sun_path)`.
const SUN_PATH_OFF: usize = 2;
/// `sun_noname` of uipc_usrreq.c: a 16-byte `struct sockaddr` of family AF_LOCAL, all zero.
pub(crate) const NONAME: [u8; 16] = [16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

const _: () = assert!(SIN_LEN == 16 && SIN6_LEN == 28 && SUN_LEN_MAX == 106);

/// A Linux socket address ready for `bind`/`connect`/`sendto`.
pub(crate) struct LinuxAddr {
    pub storage: libc::sockaddr_storage,
    pub len: libc::socklen_t,
}

impl LinuxAddr {
    pub fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }
}

fn empty_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    unsafe { zeroed() }
}

/// Copies the FreeBSD sockaddr at `sa` (its `sa_len` bytes, at least the
/// two header bytes) out of module memory.
///
/// # Safety
/// `sa` must point at a readable sockaddr of at least `sa_len` bytes (and 2).
pub(crate) unsafe fn read_fbsd(sa: *const sockaddr) -> Vec<u8> {
    let p = sa.cast::<u8>();
    // SAFETY: the caller guarantees the header bytes are readable.
    let len = usize::from(unsafe { *p }).max(2);
    // SAFETY: the caller guarantees `sa_len` readable bytes.
    unsafe { std::slice::from_raw_parts(p, len) }.to_vec()
}

/// Checks a FreeBSD inet/inet6 address the way `udp_bind`/`tcp_usr_bind`/
/// `*_connect` do (family first: `EAFNOSUPPORT`; then `sa_len`: `EINVAL`)
/// and converts it for Linux.
pub(crate) fn inet_to_linux(b: &[u8], family: c_int) -> Result<LinuxAddr, c_int> {
    if b.len() < 2 || c_int::from(b[1]) != family {
        return Err(fb::EAFNOSUPPORT);
    }
    let mut ss = empty_storage();
    if family == AF_INET {
        if usize::from(b[0]) != SIN_LEN || b.len() < SIN_LEN {
            return Err(fb::EINVAL);
        }
        // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
        let sin =
            unsafe { &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = u16::from_ne_bytes([b[2], b[3]]);
        sin.sin_addr.s_addr = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        Ok(LinuxAddr {
            storage: ss,
            len: size_of::<libc::sockaddr_in>() as libc::socklen_t,
        })
    } else {
        if usize::from(b[0]) != SIN6_LEN || b.len() < SIN6_LEN {
            return Err(fb::EINVAL);
        }
        // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
        let sin6 =
            unsafe { &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
        sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sin6.sin6_port = u16::from_ne_bytes([b[2], b[3]]);
        sin6.sin6_flowinfo = u32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        sin6.sin6_addr.s6_addr.copy_from_slice(&b[8..24]);
        sin6.sin6_scope_id = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
        Ok(LinuxAddr {
            storage: ss,
            len: size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        })
    }
}

/// The port (host order) of a FreeBSD inet/inet6 sockaddr.
pub(crate) fn inet_port(b: &[u8]) -> u16 {
    if b.len() < 4 {
        0
    } else {
        u16::from_be_bytes([b[2], b[3]])
    }
}

/// The path of a FreeBSD `sockaddr_un`, checked like `uipc_bindat` /
/// `unp_connectat`: `sun_len` above 106 or without path bytes is `EINVAL`,
/// another family `EAFNOSUPPORT`. The path ends at the first NUL.
pub(crate) fn local_path(b: &[u8]) -> Result<Vec<u8>, c_int> {
    if b.len() < 2 || c_int::from(b[1]) != AF_LOCAL {
        return Err(fb::EAFNOSUPPORT);
    }
    let len = usize::from(b[0]);
    if len > SUN_LEN_MAX || len <= SUN_PATH_OFF {
        return Err(fb::EINVAL);
    }
    let raw = &b[SUN_PATH_OFF..len.min(b.len())];
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    Ok(raw[..end].to_vec())
}

/// A Linux `sockaddr_un` for a file-system path (never the abstract namespace).
pub(crate) fn local_to_linux(path: &[u8]) -> Result<LinuxAddr, c_int> {
    if path.is_empty() {
        // namei("") fails with ENOENT.
        return Err(fb::ENOENT);
    }
    let mut ss = empty_storage();
    // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_un.
    let sun = unsafe { &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
    if path.len() >= sun.sun_path.len() {
        return Err(fb::ENAMETOOLONG);
    }
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sun.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = SUN_PATH_OFF + path.len() + 1;
    Ok(LinuxAddr {
        storage: ss,
        len: len as libc::socklen_t,
    })
}

/// Converts a Linux address (as returned by `getsockname`, `getpeername`,
/// `recvfrom`, `accept`) to FreeBSD form. An unnamed local address becomes
/// `sun_noname`; a named one uses the `SUN_LEN` form (no trailing NUL).
pub(crate) fn from_linux(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Vec<u8> {
    let len = len as usize;
    match c_int::from(ss.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let mut v = vec![0u8; SIN_LEN];
            v[0] = SIN_LEN as u8;
            v[1] = AF_INET as u8;
            v[2..4].copy_from_slice(&sin.sin_port.to_ne_bytes());
            v[4..8].copy_from_slice(&sin.sin_addr.s_addr.to_ne_bytes());
            v
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let mut v = vec![0u8; SIN6_LEN];
            v[0] = SIN6_LEN as u8;
            v[1] = AF_INET6 as u8;
            v[2..4].copy_from_slice(&sin6.sin6_port.to_ne_bytes());
            v[4..8].copy_from_slice(&sin6.sin6_flowinfo.to_ne_bytes());
            v[8..24].copy_from_slice(&sin6.sin6_addr.s6_addr);
            v[24..28].copy_from_slice(&sin6.sin6_scope_id.to_ne_bytes());
            v
        }
        libc::AF_UNIX => {
            // SAFETY: the family says the storage holds a sockaddr_un.
            let sun =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
            let n = len.saturating_sub(SUN_PATH_OFF).min(sun.sun_path.len());
            let path: Vec<u8> = sun.sun_path[..n]
                .iter()
                .map(|&c| c as u8)
                .take_while(|&c| c != 0)
                .collect();
            if path.is_empty() || path.len() + SUN_PATH_OFF > SUN_LEN_MAX {
                return NONAME.to_vec();
            }
            let mut v = Vec::with_capacity(SUN_PATH_OFF + path.len());
            v.push((SUN_PATH_OFF + path.len()) as u8);
            v.push(AF_LOCAL as u8);
            v.extend_from_slice(&path);
            v
        }
        _ => NONAME.to_vec(),
    }
}

/// The all-zero address of `family` (`in_getpeeraddr` of an unconnected
/// socket, `in_getsockaddr` of an unbound one).
pub(crate) fn zero_addr(family: c_int) -> Vec<u8> {
    match family {
        AF_INET6 => {
            let mut v = vec![0u8; SIN6_LEN];
            v[0] = SIN6_LEN as u8;
            v[1] = AF_INET6 as u8;
            v
        }
        AF_INET => {
            let mut v = vec![0u8; SIN_LEN];
            v[0] = SIN_LEN as u8;
            v[1] = AF_INET as u8;
            v
        }
        _ => NONAME.to_vec(),
    }
}

/// `getsockname(2)` on a Linux descriptor, in FreeBSD form.
pub(crate) fn linux_sockname(fd: c_int, peer: bool) -> Result<Vec<u8>, c_int> {
    let mut ss = empty_storage();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
    // SAFETY: `ss`/`len` describe a writable sockaddr_storage.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if r != 0 {
        return Err(super::errno::last());
    }
    Ok(from_linux(&ss, len))
}

/// Builds a FreeBSD `sockaddr_in` (test helper and scenario helper).
pub fn sockaddr_in(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = zero_addr(AF_INET);
    v[2..4].copy_from_slice(&port.to_be_bytes());
    v[4..8].copy_from_slice(&ip);
    v
}

/// Builds a FreeBSD `sockaddr_in6`.
pub fn sockaddr_in6(ip: [u8; 16], port: u16) -> Vec<u8> {
    let mut v = zero_addr(AF_INET6);
    v[2..4].copy_from_slice(&port.to_be_bytes());
    v[8..24].copy_from_slice(&ip);
    v
}

/// Builds a FreeBSD `sockaddr_un` in `SUN_LEN` form.
pub fn sockaddr_un(path: &[u8]) -> Vec<u8> {
    let mut v = vec![(SUN_PATH_OFF + path.len()) as u8, AF_LOCAL as u8];
    v.extend_from_slice(path);
    v
}
