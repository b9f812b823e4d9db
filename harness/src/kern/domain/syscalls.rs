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

use std::ffi::{c_int, c_short, c_ulong, c_void};
use std::ptr::{self, null_mut};

use fbsd_sys::{
    ifnet, iovec, kaiocb, mbuf, protosw, shutdown_how, sockaddr, socket, sockopt, thread, uio,
    SO_RCV, SO_SND,
};

use super::locks::{mtx_lock, mtx_unlock, sx_owner, sx_xlock_free, sx_xunlock};
use super::*;
use crate::kern::mbuf::fields::*;
use crate::kern::mbuf::{self as kmbuf};
use crate::kern::sockbuf as sbuf;

const MSG_OOB: c_int = fbsd_sys::MSG_OOB as c_int;
const MSG_PEEK: c_int = fbsd_sys::MSG_PEEK as c_int;
const MSG_EOR: c_int = fbsd_sys::MSG_EOR as c_int;
const MSG_TRUNC: c_int = fbsd_sys::MSG_TRUNC as c_int;
const MSG_DONTWAIT: c_int = fbsd_sys::MSG_DONTWAIT as c_int;
const MSG_NBIO: c_int = fbsd_sys::MSG_NBIO as c_int;
const MSG_EOF: c_int = fbsd_sys::MSG_EOF as c_int;
const MSG_MORETOCOME: c_int = fbsd_sys::MSG_MORETOCOME as c_int;
const MSG_SOCALLBCK: c_int = fbsd_sys::MSG_SOCALLBCK as c_int;
const PR_ATOMIC: i32 = fbsd_sys::PR_ATOMIC as i32;
const PR_ADDR: i32 = fbsd_sys::PR_ADDR as i32;
const PR_CONNREQUIRED: i32 = fbsd_sys::PR_CONNREQUIRED as i32;
const PR_WANTRCVD: i32 = fbsd_sys::PR_WANTRCVD as i32;
const PR_IMPLOPCL: i32 = fbsd_sys::PR_IMPLOPCL as i32;
const PR_SOCKBUF: i32 = fbsd_sys::PR_SOCKBUF as i32;
const PRUS_OOB: c_int = fbsd_sys::PRUS_OOB as c_int;
const PRUS_EOF: c_int = fbsd_sys::PRUS_EOF as c_int;
const PRUS_MORETOCOME: c_int = fbsd_sys::PRUS_MORETOCOME as c_int;
const PRUS_NOTREADY: c_int = fbsd_sys::PRUS_NOTREADY as c_int;
const SBS_CANTSENDMORE: c_short = fbsd_sys::SBS_CANTSENDMORE as c_short;
const SBS_CANTRCVMORE: c_short = fbsd_sys::SBS_CANTRCVMORE as c_short;
const M_WAITOK: c_int = fbsd_sys::M_WAITOK as c_int;
const M_NOWAIT: c_int = fbsd_sys::M_NOWAIT as c_int;
const MT_SONAME: u32 = fbsd_sys::MT_SONAME;
const MT_CONTROL: u32 = fbsd_sys::MT_CONTROL;
const SOL_SOCKET: c_int = fbsd_sys::SOL_SOCKET as c_int;
const SOCK_NONBLOCK: c_int = fbsd_sys::SOCK_NONBLOCK as c_int;
const SOCK_CLOEXEC: c_int = fbsd_sys::SOCK_CLOEXEC as c_int;
const SOCK_CLOFORK: c_int = fbsd_sys::SOCK_CLOFORK as c_int;
const EMSGSIZE: c_int = fbsd_sys::EMSGSIZE as c_int;
const EPIPE: c_int = fbsd_sys::EPIPE as c_int;
const EDESTADDRREQ: c_int = fbsd_sys::EDESTADDRREQ as c_int;
const EISCONN: c_int = fbsd_sys::EISCONN as c_int;
const EINPROGRESS: c_int = fbsd_sys::EINPROGRESS as c_int;
const EINTR: c_int = fbsd_sys::EINTR as c_int;
const ERESTART: c_int = -1;
const ENAMETOOLONG: c_int = fbsd_sys::ENAMETOOLONG as c_int;
const ENOPROTOOPT: c_int = fbsd_sys::ENOPROTOOPT as c_int;
const EDOM: c_int = fbsd_sys::EDOM as c_int;
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

// ---------------------------------------------------------------------------
// socket / bind / connect / close

/// `socket(domain, type, protocol)` as the current thread (whose credential
/// is the socket's): `EAFNOSUPPORT` without such a family, `EPROTOTYPE` /
/// `EPROTONOSUPPORT` (H27), `ENOBUFS` (fault site `socket`), or `pr_attach`'s
/// error (e.g. EPERM for an unprivileged NG_CONTROL socket).
pub fn socket(domain: i32, ty: i32, protocol: i32) -> Result<Fd, Errno> {
    crate::kern::thread::init();
    let extra = ty & (SOCK_NONBLOCK | SOCK_CLOEXEC | SOCK_CLOFORK);
    let ty = ty & !extra;
    let td = curthread();
    let Some(pr) = findproto(domain, ty, protocol) else {
        if finddomain(domain).is_none() {
            return Err(EAFNOSUPPORT);
        }
        if protocol == 0 && ty != 0 {
            return Err(EPROTOTYPE);
        }
        return Err(EPROTONOSUPPORT);
    };
    // SAFETY: `pr` is a protosw of a registered domain.
    let (attach, prflags) = unsafe { ((*pr).pr_attach, i32::from((*pr).pr_flags)) };
    let Some(attach) = attach else {
        return Err(EPROTONOSUPPORT);
    };
    if crate::kern::fault::should_fail(&crate::kern::fault::Site::Other("socket")) {
        return Err(ENOBUFS);
    }
    // SAFETY: `td` is the current thread; its credential and prison are
    // harness objects that live for the whole process.
    let (cred, vnet) = unsafe {
        let cred = (*td).td_ucred;
        let pr = if cred.is_null() {
            null_mut()
        } else {
            (*cred).cr_prison
        };
        (
            cred,
            if pr.is_null() {
                null_mut()
            } else {
                (*pr).pr_vnet
            },
        )
    };
    let so = soalloc(vnet);
    track(so, domain, ty, protocol);
    // SAFETY: `so` is fresh; the credential gets a reference (crhold).
    unsafe {
        (*so).so_type = ty as c_short;
        if !cred.is_null() {
            (*cred).cr_ref += 1;
        }
        (*so).so_cred = cred;
        (*so).so_proto = pr;
    }
    if prflags & PR_SOCKBUF == 0 {
        sbuf::init_mtx_pointers(so);
    }
    // SAFETY: the protocol's attach method.
    let err = call_proto("pr_attach", so, || unsafe { attach(so, protocol, td) });
    if err != 0 {
        // pr_detach is not called after a failed attach; the socket is
        // deallocated (sodealloc checks so_pcb is NULL again).
        sbuf::sbdestroy_impl(so, SO_SND);
        sbuf::sbdestroy_impl(so, SO_RCV);
        sodealloc(so);
        return Err(err);
    }
    set_attached(so);
    // SAFETY: soref(): the descriptor's reference.
    unsafe { (*so).so_count += 1 };
    if extra & SOCK_NONBLOCK != 0 {
        mtx_lock(so_lock(so));
        // SAFETY: so_state under SOCK_LOCK.
        unsafe { (*so).so_state |= SS_NBIO };
        note_state(so);
        mtx_unlock(so_lock(so));
    }
    Ok(install_fd(so))
}

/// `fcntl(fd, F_SETFL, O_NONBLOCK)` / `FIONBIO`: sets or clears `SS_NBIO`.
pub fn set_nonblocking(fd: Fd, on: bool) -> Result<(), Errno> {
    let so = so_of(fd)?;
    mtx_lock(so_lock(so));
    // SAFETY: so_state under SOCK_LOCK.
    unsafe {
        if on {
            (*so).so_state |= SS_NBIO;
        } else {
            (*so).so_state &= !SS_NBIO;
        }
    }
    note_state(so);
    mtx_unlock(so_lock(so));
    Ok(())
}

/// `bind(fd, addr)` → `pr_bind` (the address is borrowed by the protocol).
pub fn bind(fd: Fd, addr: &[u8]) -> Result<(), Errno> {
    let so = so_of(fd)?;
    let sa = getsockaddr(addr)?;
    let pr = proto_of(so).ok_or(EBADF)?;
    let td = curthread();
    // SAFETY: the protocol's bind method (or the installed default).
    let err = match unsafe { (*pr).pr_bind } {
        // SAFETY: as above.
        Some(f) => call_proto("pr_bind", so, || unsafe { f(so, sa, td) }),
        None => EOPNOTSUPP,
    };
    free_sockaddr(sa, "pr_bind", so);
    if err != 0 {
        Err(err)
    } else {
        Ok(())
    }
}

/// `sodisconnect(so)`.
fn sodisconnect(so: *mut socket) -> c_int {
    let st = state_of(so);
    if st & SS_ISCONNECTED == 0 {
        return ENOTCONN;
    }
    if st & SS_ISDISCONNECTING != 0 {
        return EALREADY;
    }
    let Some(pr) = proto_of(so) else {
        return ENOTCONN;
    };
    // SAFETY: the protocol's disconnect method (or the installed default).
    match unsafe { (*pr).pr_disconnect } {
        // SAFETY: as above.
        Some(f) => call_proto("pr_disconnect", so, || unsafe { f(so) }),
        None => EOPNOTSUPP,
    }
}

/// `connect(fd, addr)` → `soconnect` → `pr_connect`; waits (bounded) while a
/// connection is in progress on a blocking socket.
pub fn connect(fd: Fd, addr: &[u8]) -> Result<(), Errno> {
    let so = so_of(fd)?;
    let sa = getsockaddr(addr)?;
    let st = state_of(so);
    let err = if st & SS_ISCONNECTING != 0 {
        EALREADY
    } else if st & (SS_ISCONNECTED | SS_ISCONNECTING) != 0
        && (pr_flags(so) & PR_CONNREQUIRED != 0 || sodisconnect(so) != 0)
    {
        EISCONN
    } else {
        // SAFETY: so_error is a plain u_short ("not locked").
        unsafe { (*so).so_error = 0 };
        let pr = proto_of(so).ok_or(EBADF)?;
        let td = curthread();
        // SAFETY: the protocol's connect method (or the installed default).
        match unsafe { (*pr).pr_connect } {
            // SAFETY: as above.
            Some(f) => call_proto("pr_connect", so, || unsafe { f(so, sa, td) }),
            None => EOPNOTSUPP,
        }
    };
    free_sockaddr(sa, "pr_connect", so);
    if err != 0 {
        return Err(err);
    }
    let st = state_of(so);
    if st & SS_NBIO != 0 && st & SS_ISCONNECTING != 0 {
        return Err(EINPROGRESS);
    }
    // SAFETY: channel address only.
    let chan = unsafe { ptr::addr_of!((*so).so_timeo) } as usize;
    // SAFETY: so_error read without lock, as the kernel does.
    while state_of(so) & SS_ISCONNECTING != 0 && unsafe { (*so).so_error } == 0 {
        if sleep(chan, blocking_bound(), "connec") != 0 {
            return Err(EINTR);
        }
    }
    // SAFETY: as above.
    let e = unsafe { std::mem::replace(&mut (*so).so_error, 0) };
    if e != 0 {
        Err(c_int::from(e))
    } else {
        Ok(())
    }
}

/// `soclose(so)`: the descriptor's reference is consumed even on error.
fn soclose(so: *mut socket) -> c_int {
    let mut error = 0;
    let pr = proto_of(so);
    if pr.is_some() {
        let st = state_of(so);
        if st & SS_ISCONNECTED != 0 && st & SS_ISDISCONNECTING == 0 {
            error = sodisconnect(so);
            if error == ENOTCONN {
                error = 0;
            }
        }
        // SAFETY: so_options/so_linger are socket fields.
        let (opts, linger) = unsafe { ((*so).so_options, (*so).so_linger) };
        if error == 0
            && state_of(so) & SS_ISCONNECTED != 0
            && opts & fbsd_sys::SO_LINGER as c_int != 0
            && linger != 0
        {
            let st = state_of(so);
            if !(st & SS_ISDISCONNECTING != 0 && st & SS_NBIO != 0) {
                // SAFETY: channel address only.
                let chan = unsafe { ptr::addr_of!((*so).so_timeo) } as usize;
                let ticks = (linger.max(0) as u64) * crate::kern::sched::HZ as u64;
                while state_of(so) & SS_ISCONNECTED != 0 {
                    let r = sleep(chan, Some(ticks.max(1)), "soclos");
                    if r != 0 {
                        error = r;
                        break;
                    }
                }
            }
        }
    }
    if let Some(pr) = proto_of(so) {
        // SAFETY: the protocol's close method, if any.
        if let Some(f) = unsafe { (*pr).pr_close } {
            // SAFETY: as above.
            call_proto("pr_close", so, || unsafe { f(so) });
        }
    }
    mtx_lock(so_lock(so));
    sorele_locked_impl(so, Caller::here());
    error
}

/// `close(fd)` → `soclose`: disconnect if connected, `pr_close`, drop the
/// descriptor's reference; the last reference runs `pr_detach`, flushes both
/// buffers and frees the socket.
pub fn close(fd: Fd) -> Result<(), Errno> {
    let so = remove_fd(fd).ok_or(EBADF)?;
    let e = soclose(so);
    if e != 0 {
        Err(e)
    } else {
        Ok(())
    }
}

/// Closes every open descriptor (a process exit); returns how many.
pub fn close_all() -> usize {
    let fds = all_fds();
    for &fd in &fds {
        let _ = close(fd);
    }
    fds.len()
}

// ---------------------------------------------------------------------------
// Sending

/// `sendto(fd, data, addr, flags)`; returns the number of bytes sent.
pub fn sendto(fd: Fd, data: &[u8], addr: Option<&[u8]>, flags: i32) -> Result<usize, Errno> {
    sendmsg(fd, data, addr, None, flags)
}

/// `sendmsg(fd, {data, addr, control}, flags)`: `control` is the raw
/// `msg_control` bytes (cmsg headers included).
pub fn sendmsg(
    fd: Fd,
    data: &[u8],
    addr: Option<&[u8]>,
    control: Option<&[u8]>,
    flags: i32,
) -> Result<usize, Errno> {
    let so = so_of(fd)?;
    let to = match addr {
        Some(a) => getsockaddr(a)?,
        None => null_mut(),
    };
    let mut ctl: *mut mbuf = null_mut();
    if let Some(c) = control {
        // sendit(): shorter than a cmsghdr → EINVAL; sockargs(): above
        // MCLBYTES → EMSGSIZE.
        if c.len() < CMSGHDR_SIZE || c.len() > kmbuf::MCLBYTES {
            free_sockaddr(to, "sendmsg", so);
            return Err(if c.len() < CMSGHDR_SIZE {
                EINVAL
            } else {
                EMSGSIZE
            });
        }
        // SAFETY: sockargs(): one mbuf (or cluster) of the control length.
        unsafe {
            ctl = kmbuf::abi::m_get2(c.len() as c_int, M_WAITOK, MT_CONTROL as c_short, 0);
            ptr::copy_nonoverlapping(c.as_ptr(), kmbuf::fields::data(ctl), c.len());
            set_len(ctl, c.len() as i32);
        }
    }
    let td = curthread();
    let mut iov = iovec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    let mut u = uio {
        uio_iov: &mut iov,
        uio_iovcnt: 1,
        uio_offset: 0,
        uio_resid: data.len() as isize,
        uio_segflg: fbsd_sys::UIO_USERSPACE,
        uio_rw: fbsd_sys::UIO_WRITE,
        uio_td: td,
    };
    let Some(pr) = proto_of(so) else {
        free_sockaddr(to, "sendmsg", so);
        if !ctl.is_null() {
            kmbuf::free_chain(ctl);
        }
        return Err(EBADF);
    };
    // SAFETY: the protocol's sosend (normally the installed sosend_generic).
    let err = match unsafe { (*pr).pr_sosend } {
        // SAFETY: as above; `u` and `to` stay valid during the call.
        Some(f) => with_so_vnet(so, || unsafe {
            f(so, to, &mut u, null_mut(), ctl, flags, td)
        }),
        None => {
            if !ctl.is_null() {
                kmbuf::free_chain(ctl);
            }
            EOPNOTSUPP
        }
    };
    free_sockaddr(to, "pr_send", so);
    let sent = data.len() - u.uio_resid.max(0) as usize;
    match err {
        0 => Ok(data.len()),
        e if (e == EINTR || e == ERESTART || e == EWOULDBLOCK) && sent > 0 && sent < data.len() => {
            Ok(sent)
        }
        e => Err(e),
    }
}

/// `pr_send(so, flags, m, addr, control, td)` with the H4 checks: the
/// protocol owns `m` and `control` on every return — freed, or passed on.
fn call_pr_send(
    so: *mut socket,
    pr: *mut protosw,
    flags: c_int,
    m: *mut mbuf,
    addr: *mut sockaddr,
    control: *mut mbuf,
    td: *mut thread,
) -> c_int {
    let mut ptrs = Vec::new();
    chain_ptrs(m, &mut ptrs);
    chain_ptrs(control, &mut ptrs);
    // SAFETY: the protocol's send method (or the installed default).
    let Some(f) = (unsafe { (*pr).pr_send }) else {
        kmbuf::free_chain(m);
        kmbuf::free_chain(control);
        return EOPNOTSUPP;
    };
    // SAFETY: as above. A freed `addr` is reported by the syscall layer.
    let err = call_proto("pr_send", so, || unsafe {
        f(so, flags, m, addr, control, td)
    });
    let (fam, ty, proto) = with(|s| {
        s.sockets
            .get(&(so as usize))
            .map_or((0, 0, 0), |k| (k.family, k.ty, k.protocol))
    });
    let what = format!(
        "pr_send of protocol ({fam}, {ty}, {proto}) on socket #{}",
        serial_of(so)
    );
    let live: Vec<usize> = ptrs
        .into_iter()
        .filter(|&p| kmbuf::is_live(p as *const mbuf))
        .collect();
    if live.is_empty() {
        return err;
    }
    if flags & PRUS_NOTREADY != 0 {
        return err;
    }
    if err != 0 {
        let held = buffered_mbufs();
        let kept: Vec<usize> = live.into_iter().filter(|p| !held.contains(p)).collect();
        if !kept.is_empty() {
            violation(format!(
                "{what}: returned error {err} without freeing {} of the mbuf(s) it was given (pr_send must \
                 free m and control on every return; H4): {kept:x?}",
                kept.len()
            ));
        }
    } else {
        add_pending(live, what);
    }
    err
}

/// Default `pr_sosend`: FreeBSD's `sosend_generic` checks, then `pr_send`.
/// `top` and `control` are consumed on every path.
unsafe extern "C" fn sosend_generic_impl(
    so: *mut socket,
    addr: *mut sockaddr,
    uio: *mut uio,
    top: *mut mbuf,
    control: *mut mbuf,
    flags: c_int,
    td: *mut thread,
) -> c_int {
    let mut top = top;
    let mut control = control;
    let free_both = |t: *mut mbuf, c: *mut mbuf| {
        if !t.is_null() {
            kmbuf::free_chain(t);
        }
        if !c.is_null() {
            kmbuf::free_chain(c);
        }
    };
    if !check_socket(so, "sosend", Caller::here()) {
        return EBADF;
    }
    let Some(pr) = proto_of(so) else {
        free_both(top, control);
        return EBADF;
    };
    let prf = pr_flags(so);
    // SAFETY: `uio`/`top` come from the caller (sosend contract).
    let resid: isize = unsafe {
        if !uio.is_null() {
            (*uio).uio_resid
        } else if !top.is_null() && kmbuf::fields::flags(top) & fbsd_sys::M_PKTHDR != 0 {
            ph_len(top) as isize
        } else {
            let mut n = 0isize;
            let mut p = top;
            while !p.is_null() {
                n += len(p) as isize;
                p = next(p);
            }
            n
        }
    };
    // SAFETY: `so` is live.
    let ty = i32::from(unsafe { (*so).so_type });
    if resid < 0 || (ty == fbsd_sys::SOCK_STREAM as i32 && flags & MSG_EOR != 0) {
        free_both(top, control);
        return EINVAL;
    }
    let atomic = prf & PR_ATOMIC != 0 || !top.is_null();
    let clen: i64 = if control.is_null() {
        0
    } else {
        // SAFETY: `control` is the caller's mbuf.
        i64::from(unsafe { len(control) })
    };
    let e = io_lock(so, SO_SND, flags);
    if e != 0 {
        // The split 15-era implementation returns without freeing here (H1);
        // the model frees to keep leak reports about the protocol.
        free_both(top, control);
        return e;
    }
    let snd = so_snd(so);
    let err = 'release: loop {
        mtx_lock(soeventmtx(so, SO_SND));
        // SAFETY: the send buffer mutex is held.
        let (state, hiwat, lowat) = unsafe { ((*snd).sb_state, (*snd).sb_hiwat, (*snd).sb_lowat) };
        if state & SBS_CANTSENDMORE != 0 {
            mtx_unlock(soeventmtx(so, SO_SND));
            break 'release EPIPE;
        }
        // SAFETY: so_error is a plain u_short.
        let soerr = unsafe { std::mem::replace(&mut (*so).so_error, 0) };
        if soerr != 0 {
            mtx_unlock(soeventmtx(so, SO_SND));
            break 'release c_int::from(soerr);
        }
        if state_of(so) & SS_ISCONNECTED == 0 {
            if prf & PR_CONNREQUIRED != 0 && prf & PR_IMPLOPCL == 0 {
                if !(resid == 0 && clen != 0) {
                    mtx_unlock(soeventmtx(so, SO_SND));
                    break 'release ENOTCONN;
                }
            } else if addr.is_null() {
                mtx_unlock(soeventmtx(so, SO_SND));
                break 'release if prf & PR_CONNREQUIRED != 0 {
                    ENOTCONN
                } else {
                    EDESTADDRREQ
                };
            }
        }
        // SAFETY: the send buffer mutex is held.
        let mut space = unsafe { sbuf::sbspace(snd) };
        if flags & MSG_OOB != 0 {
            space += 1024;
        }
        if (atomic && resid as i64 > i64::from(hiwat)) || clen > i64::from(hiwat) {
            mtx_unlock(soeventmtx(so, SO_SND));
            break 'release EMSGSIZE;
        }
        if space < resid as i64 + clen && (atomic || space < i64::from(lowat) || space < clen) {
            if state_of(so) & SS_NBIO != 0 || flags & (MSG_NBIO | MSG_DONTWAIT) != 0 {
                mtx_unlock(soeventmtx(so, SO_SND));
                break 'release EWOULDBLOCK;
            }
            let r = sbuf::wait(so, SO_SND, blocking_bound());
            mtx_unlock(soeventmtx(so, SO_SND));
            if r != 0 {
                break 'release r;
            }
            continue;
        }
        mtx_unlock(soeventmtx(so, SO_SND));
        space -= clen;
        if uio.is_null() {
            if flags & MSG_EOR != 0 {
                // SAFETY: `top` is the caller's chain.
                unsafe { set_flags(top, kmbuf::fields::flags(top) | fbsd_sys::M_EOR) };
            }
        } else {
            let fl = if atomic {
                fbsd_sys::M_PKTHDR as c_int
            } else {
                0
            } | if flags & MSG_EOR != 0 {
                fbsd_sys::M_EOR as c_int
            } else {
                0
            };
            // SAFETY: `uio` describes the caller's buffer.
            top = unsafe {
                kmbuf::abi::m_uiotombuf(
                    uio,
                    M_WAITOK,
                    space.clamp(0, c_int::MAX as i64) as c_int,
                    if atomic { MAX_HDR } else { 0 },
                    fl,
                )
            };
            if top.is_null() {
                break 'release fbsd_sys::EFAULT as c_int;
            }
        }
        let left = if uio.is_null() {
            0
        } else {
            // SAFETY: the caller's uio.
            unsafe { (*uio).uio_resid }
        };
        let prus = if flags & MSG_OOB != 0 {
            PRUS_OOB
        } else if flags & MSG_EOF != 0 && prf & PR_IMPLOPCL != 0 && left <= 0 {
            PRUS_EOF
        } else if flags & MSG_MORETOCOME != 0 || (left > 0 && space > 0) {
            PRUS_MORETOCOME
        } else {
            0
        };
        let (t, c) = (
            std::mem::replace(&mut top, null_mut()),
            std::mem::replace(&mut control, null_mut()),
        );
        let e = call_pr_send(so, pr, prus, t, addr, c, td);
        if e != 0 || left <= 0 || atomic {
            break 'release e;
        }
    };
    io_unlock(so, SO_SND);
    free_both(top, control);
    err
}

// ---------------------------------------------------------------------------
// Receiving

/// Default `pr_soreceive`: FreeBSD's `soreceive_generic`, uio form.
unsafe extern "C" fn soreceive_generic_impl(
    so: *mut socket,
    psa: *mut *mut sockaddr,
    uio: *mut uio,
    mp0: *mut *mut mbuf,
    controlp: *mut *mut mbuf,
    flagsp: *mut c_int,
) -> c_int {
    let c = Caller::here();
    // SAFETY: the out-pointers are the caller's (NULL or valid).
    unsafe {
        if !psa.is_null() {
            *psa = null_mut();
        }
        if !controlp.is_null() {
            *controlp = null_mut();
        }
        if !mp0.is_null() {
            *mp0 = null_mut();
        }
    }
    if !check_socket(so, "soreceive", c) {
        return EBADF;
    }
    if !mp0.is_null() {
        violation(
            "soreceive_generic: the mbuf form (mp0 != NULL) is not modelled for harness sockets"
                .to_string(),
        );
        return EOPNOTSUPP;
    }
    if uio.is_null() {
        violation("soreceive_generic: NULL uio".to_string());
        return EINVAL;
    }
    let mut flags = if flagsp.is_null() {
        0
    } else {
        // SAFETY: the caller's flags word.
        (unsafe { *flagsp }) & !MSG_EOR
    };
    if flags & MSG_OOB != 0 {
        // Out-of-band receive (pr_rcvoob) is not modelled.
        return EOPNOTSUPP;
    }
    let prf = pr_flags(so);
    let e = io_lock(so, SO_RCV, flags);
    if e != 0 {
        return e;
    }
    let rcv = so_rcv(so);
    let rmtx = soeventmtx(so, SO_RCV);
    mtx_lock(rmtx);
    let mut error = 0;
    'out: {
        loop {
            // SAFETY: the receive buffer mutex is held.
            let first = unsafe { sbuf::sb_mb(rcv) };
            if !first.is_null() {
                break;
            }
            // SAFETY: socket fields; the buffer mutex is held.
            let (soerr, rerr, state) =
                unsafe { ((*so).so_error, (*so).so_rerror, (*rcv).sb_state) };
            if soerr != 0 || rerr != 0 {
                // SAFETY: as above.
                unsafe {
                    if soerr != 0 {
                        error = c_int::from(soerr);
                        if flags & MSG_PEEK == 0 {
                            (*so).so_error = 0;
                        }
                    } else {
                        error = c_int::from(rerr);
                        if flags & MSG_PEEK == 0 {
                            (*so).so_rerror = 0;
                        }
                    }
                }
                break 'out;
            }
            if state & SBS_CANTRCVMORE != 0 {
                break 'out;
            }
            let st = state_of(so);
            if st & (SS_ISCONNECTED | SS_ISCONNECTING | SS_ISDISCONNECTING | SS_ISDISCONNECTED) == 0
                && prf & PR_CONNREQUIRED != 0
            {
                error = ENOTCONN;
                break 'out;
            }
            // SAFETY: the caller's uio.
            if unsafe { (*uio).uio_resid } == 0 {
                break 'out;
            }
            if st & SS_NBIO != 0 || flags & (MSG_DONTWAIT | MSG_NBIO) != 0 {
                error = EWOULDBLOCK;
                break 'out;
            }
            let r = sbuf::wait(so, SO_RCV, blocking_bound());
            if r != 0 {
                error = r;
                break 'out;
            }
        }
        // SAFETY: the receive buffer mutex is held; the record chain belongs
        // to the buffer and is unlinked piecewise exactly as the kernel does.
        unsafe {
            let head = sbuf::sb_mb(rcv);
            let mut m = head;
            let peek = flags & MSG_PEEK != 0;
            // The address.
            if prf & PR_ADDR != 0 {
                if mtype(m) != MT_SONAME {
                    violation(format!(
                        "soreceive(socket #{}): record does not start with an MT_SONAME mbuf (type {}) on a \
                         PR_ADDR protocol",
                        serial_of(so),
                        mtype(m)
                    ));
                } else {
                    if !psa.is_null() {
                        *psa = super::abi::sodupsockaddr(data(m).cast(), M_NOWAIT);
                    }
                    m = consume_mbuf(rcv, head, m, peek);
                }
            }
            // Control.
            let mut ctl_tail: *mut mbuf = null_mut();
            while !m.is_null() && mtype(m) == MT_CONTROL {
                let cur = m;
                let head_now = if peek { head } else { sbuf::sb_mb(rcv) };
                if peek {
                    m = next(m);
                    continue;
                }
                let rest = next(cur);
                sbuf_unlink_head(rcv, head_now, cur, rest);
                if !controlp.is_null() {
                    if ctl_tail.is_null() {
                        *controlp = cur;
                    } else {
                        set_next(ctl_tail, cur);
                    }
                    ctl_tail = cur;
                } else {
                    kmbuf::free_one_mbuf(cur);
                }
                m = rest;
            }
            // Data.
            let mut eor = false;
            while !m.is_null() && (*uio).uio_resid > 0 {
                let t = mtype(m);
                if t != fbsd_sys::MT_DATA && t != fbsd_sys::MT_OOBDATA {
                    break;
                }
                let l = len(m) as isize;
                let n = (*uio).uio_resid.min(l);
                mtx_unlock(rmtx);
                let ue = kmbuf::abi::uiomove(data(m).cast(), n as c_int, uio);
                mtx_lock(rmtx);
                if ue != 0 {
                    error = ue;
                    break 'out;
                }
                if n == l {
                    eor |= flags_of(m) & fbsd_sys::M_EOR != 0;
                    m = consume_mbuf(rcv, if peek { head } else { sbuf::sb_mb(rcv) }, m, peek);
                } else {
                    if !peek {
                        set_data(m, data(m).add(n as usize));
                        set_len(m, len(m) - n as i32);
                        (*rcv).sb_ccc -= n as u32;
                        (*rcv).sb_acc -= n as u32;
                    }
                    break;
                }
            }
            // Zero-length mbufs left at the end of the record.
            while !peek && !m.is_null() && len(m) == 0 && mtype(m) == fbsd_sys::MT_DATA {
                eor |= flags_of(m) & fbsd_sys::M_EOR != 0;
                m = consume_mbuf(rcv, sbuf::sb_mb(rcv), m, false);
            }
            if eor {
                flags |= MSG_EOR;
            }
            let still_in_record = if peek {
                !m.is_null()
            } else {
                !m.is_null() && sbuf::sb_mb(rcv) == m
            };
            if still_in_record && prf & PR_ATOMIC != 0 {
                flags |= MSG_TRUNC;
                if !peek {
                    sbuf::droprecord_locked(rcv);
                }
            }
        }
        if flags & MSG_PEEK == 0 && prf & PR_WANTRCVD != 0 && flags & MSG_SOCALLBCK == 0 {
            mtx_unlock(rmtx);
            if let Some(pr) = proto_of(so) {
                // SAFETY: the protocol's rcvd method.
                if let Some(f) = unsafe { (*pr).pr_rcvd } {
                    // SAFETY: as above.
                    call_proto("pr_rcvd", so, || unsafe { f(so, flags) });
                }
            }
            mtx_lock(rmtx);
        }
    }
    mtx_unlock(rmtx);
    io_unlock(so, SO_RCV);
    if !flagsp.is_null() {
        // SAFETY: the caller's flags word.
        unsafe { *flagsp |= flags };
    }
    error
}

fn flags_of(m: *mut mbuf) -> u32 {
    // SAFETY: `m` is a live buffer mbuf.
    unsafe { flags(m) }
}

/// Consumes mbuf `m` (the current head of the first record `head`) from the
/// receive buffer: accounting removed and the mbuf freed (unless peeking).
/// Returns the next mbuf of the record.
unsafe fn consume_mbuf(
    sb: *mut fbsd_sys::sockbuf,
    head: *mut mbuf,
    m: *mut mbuf,
    peek: bool,
) -> *mut mbuf {
    // SAFETY: per the caller: `sb` locked, `m` its first record's head mbuf.
    unsafe {
        let rest = next(m);
        if peek {
            return rest;
        }
        sbuf_unlink_head(sb, head, m, rest);
        kmbuf::free_one_mbuf(m);
        rest
    }
}

/// Unlinks the head mbuf `m` of the first record (`head == m`) from the
/// buffer, making `rest` the record's head; removes its accounting.
unsafe fn sbuf_unlink_head(
    sb: *mut fbsd_sys::sockbuf,
    head: *mut mbuf,
    m: *mut mbuf,
    rest: *mut mbuf,
) {
    // SAFETY: per the caller.
    unsafe {
        debug_assert_eq!(head, m);
        sbuf::sbfree(sb, m);
        sbuf::set_first_record_head(sb, m, rest);
        set_next(m, null_mut());
    }
}

/// What [`recvfrom`] returns: (data, source address, msg_flags).
pub type Received = (Vec<u8>, Option<Vec<u8>>, i32);

/// `recvfrom(fd, max_len, flags)` → (data, source address, msg_flags).
/// Blocking sockets sleep (bounded, see [`set_blocking_bound`]) until data,
/// EOF or an error; EWOULDBLOCK for non-blocking sockets or MSG_DONTWAIT;
/// EOF is `Ok` with no data and no address; a datagram longer than `max_len`
/// is truncated with `MSG_TRUNC` in the flags.
pub fn recvfrom(fd: Fd, max_len: usize, flags: i32) -> Result<Received, Errno> {
    let so = so_of(fd)?;
    let mut buf = vec![0u8; max_len];
    let mut iov = iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: max_len,
    };
    let mut u = uio {
        uio_iov: &mut iov,
        uio_iovcnt: 1,
        uio_offset: 0,
        uio_resid: max_len as isize,
        uio_segflg: fbsd_sys::UIO_USERSPACE,
        uio_rw: fbsd_sys::UIO_READ,
        uio_td: curthread(),
    };
    let mut psa: *mut sockaddr = null_mut();
    let mut fl: c_int = flags;
    let pr = proto_of(so).ok_or(EBADF)?;
    // SAFETY: the protocol's soreceive (normally the installed default).
    let err = match unsafe { (*pr).pr_soreceive } {
        // SAFETY: as above; all out-pointers are valid locals.
        Some(f) => with_so_vnet(so, || unsafe {
            f(so, &mut psa, &mut u, null_mut(), null_mut(), &mut fl)
        }),
        None => EOPNOTSUPP,
    };
    let got = max_len - u.uio_resid.max(0) as usize;
    let addr = if psa.is_null() {
        None
    } else {
        // SAFETY: an M_SONAME sockaddr from sodupsockaddr (sa_len bytes).
        let v = unsafe {
            std::slice::from_raw_parts(psa.cast::<u8>(), usize::from((*psa).sa_len)).to_vec()
        };
        malloc::kfree(psa.cast(), malloc::harness_type("soname"));
        Some(v)
    };
    let err = if (err == EINTR || err == ERESTART || err == EWOULDBLOCK) && got > 0 {
        0
    } else {
        err
    };
    if err != 0 {
        return Err(err);
    }
    buf.truncate(got);
    Ok((buf, addr, fl))
}

/// `soreadable(so)`: data at or above the low-water mark, a pending error,
/// or EOF.
fn soreadable(so: *mut socket) -> bool {
    let rcv = so_rcv(so);
    // SAFETY: `so` is live; read under the receive buffer mutex.
    unsafe {
        (*rcv).sb_acc >= (*rcv).sb_lowat
            || (*so).so_error != 0
            || (*so).so_rerror != 0
            || (*rcv).sb_state & SBS_CANTRCVMORE != 0
    }
}

/// poll(POLLIN) without waiting.
pub fn readable(fd: Fd) -> bool {
    let Ok(so) = so_of(fd) else { return false };
    mtx_lock(soeventmtx(so, SO_RCV));
    let r = soreadable(so);
    mtx_unlock(soeventmtx(so, SO_RCV));
    r
}

/// poll(POLLIN) with a timeout in model ticks (`None`: forever; waiting
/// forever with nothing able to make progress is reported as a deadlock).
pub fn poll_readable(fd: Fd, timeout: Option<u64>) -> Result<bool, Errno> {
    let so = so_of(fd)?;
    let start = crate::kern::sched::now_ticks();
    loop {
        mtx_lock(soeventmtx(so, SO_RCV));
        if soreadable(so) {
            mtx_unlock(soeventmtx(so, SO_RCV));
            return Ok(true);
        }
        let left = match timeout {
            Some(t) => {
                let el = crate::kern::sched::now_ticks() - start;
                if el >= t {
                    mtx_unlock(soeventmtx(so, SO_RCV));
                    return Ok(false);
                }
                Some(t - el)
            }
            None => None,
        };
        let rcv = so_rcv(so);
        sbuf::set_sel(rcv);
        mtx_unlock(soeventmtx(so, SO_RCV));
        sleep(sbuf::chan(rcv), left, "select");
        if !is_socket(so) {
            return Err(EBADF);
        }
    }
}

/// Sets the bound (model ticks) of blocking waits on sockets without a
/// timeout; `None`: wait forever (a wait nothing can end is then reported as
/// a deadlock).
pub fn set_blocking_bound(b: Option<u64>) {
    set_bound(b);
}

// ---------------------------------------------------------------------------
// Names and options

/// `getsockname(fd)` → `pr_sockaddr` into a 128-byte `sockaddr_storage`.
pub fn getsockname(fd: Fd) -> Result<Vec<u8>, Errno> {
    let so = so_of(fd)?;
    sockname(so, false)
}

/// `getpeername(fd)`: ENOTCONN unless connected, then `pr_peeraddr`
/// (EOPNOTSUPP by default).
pub fn getpeername(fd: Fd) -> Result<Vec<u8>, Errno> {
    let so = so_of(fd)?;
    if state_of(so) & SS_ISCONNECTED == 0 {
        return Err(ENOTCONN);
    }
    sockname(so, true)
}

fn sockname(so: *mut socket, peer: bool) -> Result<Vec<u8>, Errno> {
    let mut ss = [0u8; SS_MAXSIZE];
    ss[0] = SS_MAXSIZE as u8;
    let sa: *mut sockaddr = ss.as_mut_ptr().cast();
    let pr = proto_of(so).ok_or(EBADF)?;
    // SAFETY: the protocol's method (or the installed default).
    let f = unsafe {
        if peer {
            (*pr).pr_peeraddr
        } else {
            (*pr).pr_sockaddr
        }
    };
    let what = if peer { "pr_peeraddr" } else { "pr_sockaddr" };
    let err = match f {
        // SAFETY: `sa` points at 128 bytes with sa_len preset.
        Some(f) => call_proto(what, so, || unsafe { f(so, sa) }),
        None => EOPNOTSUPP,
    };
    if err != 0 {
        return Err(err);
    }
    let l = usize::from(ss[0]);
    if l > SS_MAXSIZE {
        violation(format!(
            "{what}(socket #{}): sa_len {l} exceeds the storage it was given",
            serial_of(so)
        ));
    }
    Ok(ss[..l.min(SS_MAXSIZE)].to_vec())
}

fn sockopt_new(
    dir: fbsd_sys::sopt_dir,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    size: usize,
) -> sockopt {
    sockopt {
        sopt_dir: dir,
        sopt_level: level,
        sopt_name: name,
        sopt_val: val,
        sopt_valsize: size,
        sopt_rights: ptr::null(),
        sopt_td: curthread(),
    }
}

/// `setsockopt(fd, level, name, val)` (`sosetopt`): SOL_SOCKET buffer sizes
/// and low-water marks (through `pr_setsbopt`, default `sbsetopt`: EINVAL
/// below 1, ENOBUFS above `kern.ipc.maxsockbuf`), timeouts, linger and the
/// boolean options; other levels go to `pr_ctloutput`.
pub fn setsockopt(fd: Fd, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
    let so = so_of(fd)?;
    let mut v = val.to_vec();
    let mut sopt = sockopt_new(
        fbsd_sys::SOPT_SET,
        level,
        name,
        v.as_mut_ptr().cast(),
        v.len(),
    );
    let pr = proto_of(so).ok_or(EBADF)?;
    // SAFETY: the protosw of a live socket.
    let ctl = unsafe { (*pr).pr_ctloutput };
    if level != SOL_SOCKET {
        return match ctl {
            // SAFETY: the protocol's ctloutput method.
            Some(f) => match call_proto("pr_ctloutput", so, || unsafe { f(so, &mut sopt) }) {
                0 => Ok(()),
                e => Err(e),
            },
            None => Err(ENOPROTOOPT),
        };
    }
    let int_in = |sopt: &mut sockopt| -> Result<c_int, Errno> {
        let mut x: c_int = 0;
        // SAFETY: `sopt` describes `v`; `x` has 4 bytes.
        match unsafe { super::abi::sooptcopyin(sopt, (&mut x as *mut c_int).cast(), 4, 4) } {
            0 => Ok(x),
            e => Err(e),
        }
    };
    let n = name as u32;
    let r: Result<(), Errno> = match n {
        fbsd_sys::SO_SNDBUF
        | fbsd_sys::SO_RCVBUF
        | fbsd_sys::SO_SNDLOWAT
        | fbsd_sys::SO_RCVLOWAT => {
            // SAFETY: the protosw of a live socket.
            match unsafe { (*pr).pr_setsbopt } {
                // SAFETY: the protocol's (or default) setsbopt.
                Some(f) => match call_proto("pr_setsbopt", so, || unsafe { f(so, &mut sopt) }) {
                    0 => Ok(()),
                    e => Err(e),
                },
                None => Err(ENOPROTOOPT),
            }
        }
        fbsd_sys::SO_SNDTIMEO | fbsd_sys::SO_RCVTIMEO => {
            let mut tv = [0i64; 2];
            // SAFETY: `tv` has 16 bytes (struct timeval).
            match unsafe { super::abi::sooptcopyin(&mut sopt, tv.as_mut_ptr().cast(), 16, 16) } {
                0 => {
                    if tv[0] < 0 || tv[1] < 0 || tv[1] >= 1_000_000 {
                        Err(EDOM)
                    } else {
                        let sbt = tv[0].saturating_mul(crate::kern::sched::SBT_1S)
                            + tv[1] * (crate::kern::sched::SBT_1S / 1_000_000);
                        let which = if n == fbsd_sys::SO_SNDTIMEO {
                            SO_SND
                        } else {
                            SO_RCV
                        };
                        mtx_lock(soeventmtx(so, which));
                        // SAFETY: the buffer mutex is held.
                        unsafe { (*sobuf(so, which)).sb_timeo = sbt };
                        mtx_unlock(soeventmtx(so, which));
                        Ok(())
                    }
                }
                e => Err(e),
            }
        }
        fbsd_sys::SO_LINGER => {
            let mut l = [0i32; 2];
            // SAFETY: `l` has 8 bytes (struct linger).
            match unsafe { super::abi::sooptcopyin(&mut sopt, l.as_mut_ptr().cast(), 8, 8) } {
                0 => {
                    if l[1] < 0 || l[1] > i32::from(i16::MAX) {
                        Err(EDOM)
                    } else {
                        mtx_lock(so_lock(so));
                        // SAFETY: so_options/so_linger under SOCK_LOCK.
                        unsafe {
                            if l[0] != 0 {
                                (*so).so_options |= fbsd_sys::SO_LINGER as c_int;
                            } else {
                                (*so).so_options &= !(fbsd_sys::SO_LINGER as c_int);
                            }
                            (*so).so_linger = l[1] as c_short;
                        }
                        mtx_unlock(so_lock(so));
                        Ok(())
                    }
                }
                e => Err(e),
            }
        }
        fbsd_sys::SO_DEBUG
        | fbsd_sys::SO_KEEPALIVE
        | fbsd_sys::SO_DONTROUTE
        | fbsd_sys::SO_USELOOPBACK
        | fbsd_sys::SO_BROADCAST
        | fbsd_sys::SO_REUSEADDR
        | fbsd_sys::SO_REUSEPORT
        | fbsd_sys::SO_OOBINLINE
        | fbsd_sys::SO_TIMESTAMP
        | fbsd_sys::SO_BINTIME
        | fbsd_sys::SO_NOSIGPIPE
        | fbsd_sys::SO_NO_DDP
        | fbsd_sys::SO_NO_OFFLOAD
        | fbsd_sys::SO_RERROR => int_in(&mut sopt).map(|x| {
            mtx_lock(so_lock(so));
            // SAFETY: so_options under SOCK_LOCK.
            unsafe {
                if x != 0 {
                    (*so).so_options |= name;
                } else {
                    (*so).so_options &= !name;
                }
            }
            mtx_unlock(so_lock(so));
        }),
        _ => Err(ENOPROTOOPT),
    };
    if r.is_ok() {
        if let Some(f) = ctl {
            // The protocol sees successful SOL_SOCKET sets too (result ignored).
            // SAFETY: the protocol's ctloutput method.
            call_proto("pr_ctloutput", so, || unsafe { f(so, &mut sopt) });
        }
    }
    r
}

/// `setsockopt` with an `int` value.
pub fn setsockopt_int(fd: Fd, level: i32, name: i32, v: i32) -> Result<(), Errno> {
    setsockopt(fd, level, name, &v.to_ne_bytes())
}

/// `getsockopt(fd, level, name, max_len)` (`sogetopt`): values are truncated
/// to `max_len` silently.
pub fn getsockopt(fd: Fd, level: i32, name: i32, max_len: usize) -> Result<Vec<u8>, Errno> {
    let so = so_of(fd)?;
    let mut out = vec![0u8; max_len];
    let mut sopt = sockopt_new(
        fbsd_sys::SOPT_GET,
        level,
        name,
        out.as_mut_ptr().cast(),
        max_len,
    );
    let pr = proto_of(so).ok_or(EBADF)?;
    if level != SOL_SOCKET {
        // SAFETY: the protosw of a live socket.
        return match unsafe { (*pr).pr_ctloutput } {
            // SAFETY: the protocol's ctloutput method.
            Some(f) => match call_proto("pr_ctloutput", so, || unsafe { f(so, &mut sopt) }) {
                0 => {
                    out.truncate(sopt.sopt_valsize);
                    Ok(out)
                }
                e => Err(e),
            },
            None => Err(ENOPROTOOPT),
        };
    }
    let n = name as u32;
    let int_out = |x: c_int| -> Vec<u8> { x.to_ne_bytes().to_vec() };
    // SAFETY: socket and buffer fields of a live socket (reads).
    let v: Vec<u8> = unsafe {
        match n {
            fbsd_sys::SO_SNDBUF => int_out((*so_snd(so)).sb_hiwat as c_int),
            fbsd_sys::SO_RCVBUF => int_out((*so_rcv(so)).sb_hiwat as c_int),
            fbsd_sys::SO_SNDLOWAT => int_out((*so_snd(so)).sb_lowat as c_int),
            fbsd_sys::SO_RCVLOWAT => int_out((*so_rcv(so)).sb_lowat as c_int),
            fbsd_sys::SO_TYPE => int_out(c_int::from((*so).so_type)),
            fbsd_sys::SO_PROTOCOL => int_out(c_int::from((*pr).pr_protocol)),
            fbsd_sys::SO_DOMAIN => int_out(with(|s| {
                s.sockets.get(&(so as usize)).map_or(0, |k| k.family)
            })),
            fbsd_sys::SO_ERROR => {
                let e = if (*so).so_error != 0 {
                    std::mem::replace(&mut (*so).so_error, 0)
                } else {
                    std::mem::replace(&mut (*so).so_rerror, 0)
                };
                int_out(c_int::from(e))
            }
            fbsd_sys::SO_ACCEPTCONN => int_out(c_int::from(
                (*so).so_options & fbsd_sys::SO_ACCEPTCONN as c_int != 0,
            )),
            fbsd_sys::SO_LINGER => {
                let on = (*so).so_options & fbsd_sys::SO_LINGER as c_int;
                let mut b = on.to_ne_bytes().to_vec();
                b.extend_from_slice(&c_int::from((*so).so_linger).to_ne_bytes());
                b
            }
            fbsd_sys::SO_SNDTIMEO | fbsd_sys::SO_RCVTIMEO => {
                let sbt = if n == fbsd_sys::SO_SNDTIMEO {
                    (*so_snd(so)).sb_timeo
                } else {
                    (*so_rcv(so)).sb_timeo
                };
                let s = sbt / crate::kern::sched::SBT_1S;
                let us =
                    (sbt % crate::kern::sched::SBT_1S) * 1_000_000 / crate::kern::sched::SBT_1S;
                let mut b = s.to_ne_bytes().to_vec();
                b.extend_from_slice(&us.to_ne_bytes());
                b
            }
            fbsd_sys::SO_DEBUG
            | fbsd_sys::SO_KEEPALIVE
            | fbsd_sys::SO_DONTROUTE
            | fbsd_sys::SO_USELOOPBACK
            | fbsd_sys::SO_BROADCAST
            | fbsd_sys::SO_REUSEADDR
            | fbsd_sys::SO_REUSEPORT
            | fbsd_sys::SO_OOBINLINE
            | fbsd_sys::SO_TIMESTAMP
            | fbsd_sys::SO_BINTIME
            | fbsd_sys::SO_NOSIGPIPE
            | fbsd_sys::SO_NO_DDP
            | fbsd_sys::SO_NO_OFFLOAD
            | fbsd_sys::SO_RERROR => int_out((*so).so_options & name),
            _ => return Err(ENOPROTOOPT),
        }
    };
    // SAFETY: `sopt` describes `out`; `v` is a local buffer.
    unsafe { super::abi::sooptcopyout(&mut sopt, v.as_ptr().cast(), v.len()) };
    out.truncate(sopt.sopt_valsize);
    Ok(out)
}

/// `getsockopt` of an `int` option.
pub fn getsockopt_int(fd: Fd, level: i32, name: i32) -> Result<i32, Errno> {
    let v = getsockopt(fd, level, name, 4)?;
    let mut b = [0u8; 4];
    b[..v.len().min(4)].copy_from_slice(&v[..v.len().min(4)]);
    Ok(i32::from_ne_bytes(b))
}

// ---------------------------------------------------------------------------
// Methods pr_init installs for NULL protosw entries

/// The default methods `pr_init` installs (host functions; only the socket
/// layer calls them).
pub(crate) mod defaults {
    use super::*;

    pub(crate) unsafe extern "C" fn sosend_generic(
        so: *mut socket,
        addr: *mut sockaddr,
        uio: *mut uio,
        top: *mut mbuf,
        control: *mut mbuf,
        flags: c_int,
        td: *mut thread,
    ) -> c_int {
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { sosend_generic_impl(so, addr, uio, top, control, flags, td) }
    }

    pub(crate) unsafe extern "C" fn soreceive_generic(
        so: *mut socket,
        psa: *mut *mut sockaddr,
        uio: *mut uio,
        mp0: *mut *mut mbuf,
        controlp: *mut *mut mbuf,
        flagsp: *mut c_int,
    ) -> c_int {
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { soreceive_generic_impl(so, psa, uio, mp0, controlp, flagsp) }
    }

    pub(crate) unsafe extern "C" fn sopoll_generic(
        so: *mut socket,
        events: c_int,
        _td: *mut thread,
    ) -> c_int {
        if !is_socket(so) {
            return 0;
        }
        let mut rev = 0;
        mtx_lock(soeventmtx(so, SO_SND));
        mtx_lock(soeventmtx(so, SO_RCV));
        if events & (POLLIN | POLLRDNORM) != 0 && soreadable(so) {
            rev |= events & (POLLIN | POLLRDNORM);
        }
        let snd = so_snd(so);
        // SAFETY: both buffer mutexes are held.
        unsafe {
            let writable = (sbuf::sbspace(snd) >= i64::from((*snd).sb_lowat)
                && (state_of(so) & SS_ISCONNECTED != 0 || pr_flags(so) & PR_CONNREQUIRED == 0))
                || (*snd).sb_state & SBS_CANTSENDMORE != 0;
            if events & (POLLOUT | POLLWRNORM) != 0 && writable {
                rev |= events & (POLLOUT | POLLWRNORM);
            }
            if (*so_rcv(so)).sb_state & SBS_CANTRCVMORE != 0
                && (*snd).sb_state & SBS_CANTSENDMORE != 0
            {
                rev |= POLLHUP;
            }
        }
        mtx_unlock(soeventmtx(so, SO_RCV));
        mtx_unlock(soeventmtx(so, SO_SND));
        rev
    }

    pub(crate) unsafe extern "C" fn sbsetopt_default(so: *mut socket, sopt: *mut sockopt) -> c_int {
        sbuf::sbsetopt_impl(so, sopt, Caller::here())
    }

    pub(crate) unsafe extern "C" fn pr_accept_notsupp(
        _so: *mut socket,
        _sa: *mut sockaddr,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_aio_queue_notsupp(
        _so: *mut socket,
        _job: *mut kaiocb,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_bind_notsupp(
        _so: *mut socket,
        _nam: *mut sockaddr,
        _td: *mut thread,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_bindat_notsupp(
        _fd: c_int,
        _so: *mut socket,
        _nam: *mut sockaddr,
        _td: *mut thread,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_connect_notsupp(
        _so: *mut socket,
        _nam: *mut sockaddr,
        _td: *mut thread,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_connect2_notsupp(_a: *mut socket, _b: *mut socket) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_connectat_notsupp(
        _fd: c_int,
        _so: *mut socket,
        _nam: *mut sockaddr,
        _td: *mut thread,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_control_notsupp(
        _so: *mut socket,
        _cmd: c_ulong,
        _data: *mut c_void,
        _ifp: *mut ifnet,
        _td: *mut thread,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_disconnect_notsupp(_so: *mut socket) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_listen_notsupp(
        _so: *mut socket,
        _backlog: c_int,
        _td: *mut thread,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_peeraddr_notsupp(
        _so: *mut socket,
        _nam: *mut sockaddr,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_rcvd_notsupp(_so: *mut socket, _flags: c_int) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_rcvoob_notsupp(
        _so: *mut socket,
        _m: *mut mbuf,
        _flags: c_int,
    ) -> c_int {
        EOPNOTSUPP
    }
    /// Frees `control`, and `m` unless `PRUS_NOTREADY`.
    pub(crate) unsafe extern "C" fn pr_send_notsupp(
        _so: *mut socket,
        flags: c_int,
        m: *mut mbuf,
        _addr: *mut sockaddr,
        control: *mut mbuf,
        _td: *mut thread,
    ) -> c_int {
        if !control.is_null() {
            kmbuf::free_chain(control);
        }
        if flags & PRUS_NOTREADY == 0 {
            kmbuf::free_chain(m);
        }
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_shutdown_notsupp(
        _so: *mut socket,
        _how: shutdown_how,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_sockaddr_notsupp(
        _so: *mut socket,
        _nam: *mut sockaddr,
    ) -> c_int {
        EOPNOTSUPP
    }
    pub(crate) unsafe extern "C" fn pr_ready_notsupp(
        _so: *mut socket,
        _m: *mut mbuf,
        _count: c_int,
    ) -> c_int {
        EOPNOTSUPP
    }

    // Compile-time checks that the defaults fit the protosw slots.
    const _: () = {
        let _a: fbsd_sys::pr_sosend_t = Some(sosend_generic);
        let _b: fbsd_sys::pr_soreceive_t = Some(soreceive_generic);
        let _c: fbsd_sys::pr_sopoll_t = Some(sopoll_generic);
        let _d: fbsd_sys::pr_setsbopt_t = Some(sbsetopt_default);
        let _e: fbsd_sys::pr_send_t = Some(pr_send_notsupp);
        let _f: fbsd_sys::pr_ready_t = Some(pr_ready_notsupp);
    };
}
