//! The system-call side (what `socket(2)`, `sendto(2)`, `recvfrom(2)`, ...
//! do above a registered family) and the generic protocol methods `pr_init`
//! installs (`sosend_generic`, `soreceive_generic`, `sopoll_generic`,
//! `sbsetopt`, the `*_notsupp` stubs).
//!
//! User buffers live in this process, so `copyin`/`copyout` are plain copies;
//! a sockaddr passed in is copied into `malloc(M_SONAME)` memory like
//! `getsockaddr()` does (with `sa_len` overwritten by the length passed), and
//! handed to the protocol as a borrowed pointer that must be neither freed nor
//! kept.
//!
//! Files: `mod.rs` constants and helpers; `open.rs` socket, bind, connect,
//! close; `send.rs` and `recv.rs` the data paths; `opts.rs` names and
//! options; `defaults.rs` the methods `pr_init` fills in.

pub(crate) mod defaults;
mod open;
mod opts;
mod recv;
mod send;

use std::ffi::{c_int, c_short, c_ulong, c_void};
use std::ptr::{self, null_mut};

use fbsd_sys::{
    ifnet, iovec, kaiocb, mbuf, protosw, shutdown_how, sockaddr, socket, sockopt, thread, uio,
    SO_RCV, SO_SND,
};

use super::locks::{mtx_lock, mtx_unlock, sx_owner, sx_xlock_free, sx_xunlock};
use super::*;
use crate::kern::fbsd_consts;
use crate::kern::mbuf::fields::*;
use crate::kern::mbuf::{self as kmbuf};
use crate::kern::sockbuf as sbuf;
pub use open::*;
pub use opts::*;
pub use recv::*;
pub use send::*;

fbsd_consts! {
    c_int: MSG_OOB, MSG_PEEK, MSG_EOR, MSG_TRUNC, MSG_DONTWAIT, MSG_NBIO, MSG_EOF, MSG_MORETOCOME,
        MSG_SOCALLBCK;
    i32: PR_ATOMIC, PR_ADDR, PR_CONNREQUIRED, PR_WANTRCVD, PR_IMPLOPCL, PR_SOCKBUF;
    c_int: PRUS_OOB, PRUS_EOF, PRUS_MORETOCOME, PRUS_NOTREADY;
    c_short: SBS_CANTSENDMORE, SBS_CANTRCVMORE;
    c_int: M_WAITOK, M_NOWAIT, SOL_SOCKET, SOCK_NONBLOCK, SOCK_CLOEXEC, SOCK_CLOFORK;
    c_int: EMSGSIZE, EPIPE, EDESTADDRREQ, EISCONN, EINPROGRESS, EINTR, ENAMETOOLONG, ENOPROTOOPT,
        EDOM;
}
const MT_SONAME: u32 = fbsd_sys::MT_SONAME;
const MT_CONTROL: u32 = fbsd_sys::MT_CONTROL;
/// `ERESTART`: a kernel-internal errno (restart the system call).
const ERESTART: c_int = -1;
/// `SOCK_MAXADDRLEN`.
const SOCK_MAXADDRLEN: usize = fbsd_sys::SOCK_MAXADDRLEN as usize;
/// `sizeof(struct sockaddr_storage)`.
const SS_MAXSIZE: usize = 128;
/// `sizeof(struct cmsghdr)` on amd64.
const CMSGHDR_SIZE: usize = 12;
/// `max_hdr` of the model (`max_linkhdr + max_protohdr`).
const MAX_HDR: c_int = (kmbuf::MAX_LINKHDR + kmbuf::MAX_PROTOHDR) as c_int;

const POLLIN: c_int = 0x0001;
const POLLOUT: c_int = 0x0004;
const POLLHUP: c_int = 0x0010;
const POLLRDNORM: c_int = 0x0040;
const POLLWRNORM: c_int = POLLOUT;

// ---------------------------------------------------------------------------
// Helpers

fn so_of(fd: Fd) -> Result<*mut socket, Errno> {
    let so = fd_socket(fd)?;
    if proto_of(so).is_none() {
        // The module that implemented it is gone (already reported).
        return Err(EBADF);
    }
    Ok(so)
}

/// `getsockaddr()`: an M_SONAME copy of a user sockaddr, `sa_len` = length.
fn getsockaddr(addr: &[u8]) -> Result<*mut sockaddr, Errno> {
    if addr.len() > SOCK_MAXADDRLEN {
        return Err(ENAMETOOLONG);
    }
    if addr.len() < 2 {
        return Err(EINVAL);
    }
    let p = malloc::kmalloc(addr.len(), malloc::harness_type("soname"), M_WAITOK);
    // SAFETY: `p` has addr.len() bytes.
    unsafe {
        ptr::copy_nonoverlapping(addr.as_ptr(), p, addr.len());
        *p = addr.len() as u8;
    }
    Ok(p.cast())
}

/// Frees a `getsockaddr` copy after the protocol borrowed it, checking the
/// protocol did not free it (H4: `addr` is borrowed).
fn free_sockaddr(sa: *mut sockaddr, what: &str, so: *mut socket) {
    if sa.is_null() {
        return;
    }
    if malloc::is_live(sa.cast()) {
        malloc::kfree(sa.cast(), malloc::harness_type("soname"));
    } else {
        violation(format!(
            "{what}(socket #{}): the protocol freed the sockaddr it was lent (the caller owns it; it must \
             neither be freed nor kept)",
            serial_of(so)
        ));
    }
}

/// Takes a socket I/O sx (`SOCK_IO_SEND_LOCK` / `SOCK_IO_RECV_LOCK`).
fn io_lock(so: *mut socket, which: fbsd_sys::sb_which, flags: c_int) -> c_int {
    let s = so_sx_pub(so, which);
    if flags & MSG_DONTWAIT == 0 && crate::kern::epoch::in_net_epoch() {
        violation(format!(
            "socket #{}: the sleepable {} I/O sx lock taken with a wait inside the network epoch \
             (only MSG_DONTWAIT, a try-lock, is allowed there)",
            serial_of(so),
            which_name(which)
        ));
    }
    loop {
        match sx_owner(s) {
            None => {
                sx_xlock_free(s);
                return 0;
            }
            Some(o) if o == curthread() as usize => {
                violation(format!(
                    "socket #{}: {} I/O lock taken recursively by the same thread (sosend/soreceive called \
                     from inside the protocol on its own socket?)",
                    serial_of(so),
                    which_name(which)
                ));
                return EWOULDBLOCK;
            }
            Some(_) => {
                if flags & MSG_DONTWAIT != 0 {
                    return EWOULDBLOCK;
                }
                let r = sleep(s as usize, blocking_bound(), "sblock");
                if r != 0 {
                    return r;
                }
            }
        }
    }
}

fn io_unlock(so: *mut socket, which: fbsd_sys::sb_which) {
    let s = so_sx_pub(so, which);
    sx_xunlock(s);
    wakeup(s as usize);
}

fn so_sx_pub(so: *mut socket, which: fbsd_sys::sb_which) -> *mut fbsd_sys::sx {
    // SAFETY: only computes field addresses inside `so`.
    unsafe {
        if which == SO_RCV {
            ptr::addr_of_mut!((*so).so_rcv_sx)
        } else {
            ptr::addr_of_mut!((*so).so_snd_sx)
        }
    }
}

fn chain_ptrs(mut m: *mut mbuf, out: &mut Vec<usize>) {
    while !m.is_null() && kmbuf::is_live(m) {
        out.push(m as usize);
        // SAFETY: `m` is live.
        m = unsafe { next(m) };
    }
}
