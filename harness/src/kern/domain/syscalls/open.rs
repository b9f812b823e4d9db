//! `socket`, `bind`, `connect`, `close`: creating, naming, connecting and
//! closing sockets.

use super::*;

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
pub(super) fn sodisconnect(so: *mut socket) -> c_int {
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
pub(super) fn soclose(so: *mut socket) -> c_int {
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
