//! `shutdown(2)` and the `FIONREAD` ioctl above a registered family, as
//! FreeBSD 15's `soshutdown()` and `soo_ioctl()` do them.

use std::ffi::c_int;

use fbsd_sys::shutdown_how;

use super::locks::{mtx_lock, mtx_unlock};
use super::*;

const SHUT_RD: c_int = fbsd_sys::SHUT_RD as c_int;
const SHUT_WR: c_int = fbsd_sys::SHUT_WR as c_int;
const SHUT_RDWR: c_int = fbsd_sys::SHUT_RDWR as c_int;
const SOCK_DGRAM: i16 = fbsd_sys::SOCK_DGRAM as i16;

/// `shutdown(fd, how)`: EINVAL for an unknown `how`; on a socket that is
/// neither connected nor connecting, ENOTCONN (a datagram socket still has
/// `pr_shutdown` called first, as FreeBSD does); else `pr_shutdown`'s error.
pub fn shutdown(fd: Fd, how: i32) -> Result<(), Errno> {
    let so = fd_socket(fd)?;
    let pr = proto_of(so).ok_or(EBADF)?;
    if how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR {
        return Err(EINVAL);
    }
    let st = state_of(so);
    let mut enotconn = false;
    if st & (SS_ISCONNECTED | SS_ISCONNECTING | SS_ISDISCONNECTING) == 0 {
        // SAFETY: so_type is set at creation and never changes.
        if unsafe { (*so).so_type } != SOCK_DGRAM {
            return Err(ENOTCONN);
        }
        enotconn = true;
    }
    // SAFETY: the protosw of a live socket.
    let err = match unsafe { (*pr).pr_shutdown } {
        // SAFETY: the protocol's shutdown method (or the installed default).
        Some(f) => call_proto("pr_shutdown", so, || unsafe { f(so, how as shutdown_how) }),
        None => EOPNOTSUPP,
    };
    // SAFETY: channel address only.
    wakeup(unsafe { std::ptr::addr_of!((*so).so_timeo) } as usize);
    match (enotconn, err) {
        (true, _) => Err(ENOTCONN),
        (false, 0) => Ok(()),
        (false, e) => Err(e),
    }
}

/// `ioctl(fd, FIONREAD)`: the data bytes in the receive buffer
/// (`sbavail(&so->so_rcv) - so_rcv.sb_ctl`).
pub fn fionread(fd: Fd) -> Result<i32, Errno> {
    let so = fd_socket(fd)?;
    mtx_lock(soeventmtx(so, SO_RCV));
    let rcv = so_rcv(so);
    // SAFETY: `so` is live; read under the receive buffer mutex.
    let n = unsafe { (*rcv).sb_acc.wrapping_sub((*rcv).sb_ctl) };
    mtx_unlock(soeventmtx(so, SO_RCV));
    Ok(n as i32)
}
