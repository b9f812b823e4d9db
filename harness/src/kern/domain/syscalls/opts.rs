//! Names and options: `getsockname`, `getpeername`, `getsockopt`,
//! `setsockopt` and the socket-level options.

use super::*;

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

pub(super) fn sockname(so: *mut socket, peer: bool) -> Result<Vec<u8>, Errno> {
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

pub(super) fn sockopt_new(
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
        match unsafe { abi::sooptcopyin(sopt, (&mut x as *mut c_int).cast(), 4, 4) } {
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
            match unsafe { abi::sooptcopyin(&mut sopt, tv.as_mut_ptr().cast(), 16, 16) } {
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
            match unsafe { abi::sooptcopyin(&mut sopt, l.as_mut_ptr().cast(), 8, 8) } {
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
    unsafe { abi::sooptcopyout(&mut sopt, v.as_ptr().cast(), v.len()) };
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
