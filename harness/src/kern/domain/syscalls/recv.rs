//! Receiving: `recvfrom` and the generic receive path (`soreceive_generic`
//! semantics: records, addresses, control data, peeking, blocking).

use super::*;

/// Default `pr_soreceive`: FreeBSD's `soreceive_generic`, uio form.
pub(super) unsafe extern "C" fn soreceive_generic_impl(
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
                // SAFETY: the receive buffer mutex is held again.
                if r == EWOULDBLOCK && !unsafe { sbuf::sb_mb(rcv) }.is_null() {
                    violation(format!(
                        "missing wakeup: data was queued on socket #{}'s receive buffer while \
                         soreceive slept on it, but no wakeup came (sorwakeup/wakeup not called)",
                        serial_of(so)
                    ));
                }
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
                        *psa = abi::sodupsockaddr(data(m).cast(), M_NOWAIT);
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

pub(super) fn flags_of(m: *mut mbuf) -> u32 {
    // SAFETY: `m` is a live buffer mbuf.
    unsafe { flags(m) }
}

/// Consumes mbuf `m` (the current head of the first record `head`) from the
/// receive buffer: accounting removed and the mbuf freed (unless peeking).
/// Returns the next mbuf of the record.
pub(super) unsafe fn consume_mbuf(
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
pub(super) unsafe fn sbuf_unlink_head(
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
pub(super) fn soreadable(so: *mut socket) -> bool {
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
        // Releasing the buffer mutex and sleeping are one step (selrecord +
        // the sleep of poll(2): a wakeup cannot slip in between).
        crate::kern::lock::release_for_sleep(soeventmtx(so, SO_RCV));
        let r = sleep(sbuf::chan(rcv), left, "select");
        if !is_socket(so) {
            return Err(EBADF);
        }
        if r != 0 {
            // Timed out: poll(2) returns "nothing ready" without looking
            // again. Readable now means data or EOF arrived without the
            // wakeup that had to come with it.
            mtx_lock(soeventmtx(so, SO_RCV));
            let ready = soreadable(so);
            mtx_unlock(soeventmtx(so, SO_RCV));
            if ready {
                violation(format!(
                    "missing wakeup: socket #{} became readable while poll(2) slept on it, but no \
                     wakeup came (sorwakeup/wakeup not called after queueing data)",
                    serial_of(so)
                ));
            }
            return Ok(false);
        }
    }
}

/// Sets the bound (model ticks) of blocking waits on sockets without a
/// timeout; `None`: wait forever (a wait nothing can end is then reported as
/// a deadlock).
pub fn set_blocking_bound(b: Option<u64>) {
    set_bound(b);
}
