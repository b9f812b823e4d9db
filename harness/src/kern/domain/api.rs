//! The Rust API of the socket layer beyond the system calls.

use super::*;

/// Number of live `struct socket`s (open descriptors and sockets kept alive
/// only by protocol references).
pub fn open_sockets() -> usize {
    with(|s| s.sockets.len())
}

/// Number of live sockets of address family `family`.
pub fn open_sockets_of(family: i32) -> usize {
    with(|s| s.sockets.values().filter(|k| k.family == family).count())
}

/// The `struct socket` behind descriptor `fd` (for tests and diagnostics).
pub fn socket_of(fd: Fd) -> Option<*mut socket> {
    with(|s| s.fds.get(&fd).map(|&so| so as *mut socket))
}

/// Families currently registered (list order, newest first).
pub fn registered_families() -> Vec<(i32, String)> {
    with(|s| {
        s.domains
            .iter()
            .map(|d| (d.family, d.name.clone()))
            .collect()
    })
}

pub(crate) fn fd_socket(fd: Fd) -> Result<*mut socket, Errno> {
    with(|s| s.fds.get(&fd).copied())
        .map(|so| so as *mut socket)
        .ok_or(EBADF)
}

pub(crate) fn install_fd(so: *mut socket) -> Fd {
    with(|s| {
        let fd = s.next_fd;
        s.next_fd += 1;
        s.fds.insert(fd, so as usize);
        if let Some(k) = s.sockets.get_mut(&(so as usize)) {
            k.fd = Some(fd);
        }
        fd
    })
}

pub(crate) fn remove_fd(fd: Fd) -> Option<*mut socket> {
    with(|s| {
        let so = s.fds.remove(&fd)?;
        if let Some(k) = s.sockets.get_mut(&so) {
            k.fd = None;
        }
        Some(so as *mut socket)
    })
}

pub(crate) fn all_fds() -> Vec<Fd> {
    with(|s| s.fds.keys().copied().collect())
}

/// End-of-scenario check: every `struct socket` must be freed (after the
/// descriptors were closed, e.g. by [`close_all`]), the deferred H4 checks
/// must pass, and freed sockets must not have been written after free. Each
/// finding is recorded as a violation and returned.
pub fn check_all() -> Vec<String> {
    let mut out = check_pending();
    let live: Vec<(u64, Option<Fd>, u32, i32)> = with(|s| {
        let mut v: Vec<_> = s
            .sockets
            .iter()
            .map(|(&so, k)| {
                // SAFETY: keys are live harness sockets.
                let cnt = unsafe { (*(so as *mut socket)).so_count };
                (k.serial, k.fd, cnt, k.family)
            })
            .collect();
        v.sort();
        v
    });
    for (serial, fd, cnt, fam) in live {
        let msg = match fd {
            Some(fd) => format!("socket #{serial} (family {fam}) still open as fd {fd} at the end of the scenario"),
            None => format!(
                "socket #{serial} (family {fam}) was closed but never freed: so_count {cnt} (a protocol \
                 reference was never released)"
            ),
        };
        violation(msg.clone());
        out.push(msg);
    }
    let freed: Vec<(usize, u64)> = with(|s| s.freed.clone());
    for (p, serial) in freed {
        // SAFETY: quarantined socket memory stays allocated for the process.
        let damage = unsafe { malloc::poison_damage(p as *const u8, size_of::<socket>(), 0) };
        if let Some((off, n)) = damage {
            let msg = format!(
                "use after free: {n} byte(s) of freed socket #{serial} ({p:#x}) were written after it was \
                 freed (first at offset {off})"
            );
            violation(msg.clone());
            out.push(msg);
            // SAFETY: as above; re-poison so the damage is reported once.
            unsafe { malloc::fill_poison(p as *mut u8, size_of::<socket>()) };
        }
    }
    out
}
