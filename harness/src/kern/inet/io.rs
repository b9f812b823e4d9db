//! `sosend` and `soreceive`.
//!
//! `sosend` follows `sosend_dgram` (UDP, UDP-Lite, local datagram) or
//! `sosend_generic` (TCP, raw IP, local stream/seqpacket): the same checks
//! in the same order (H3), `top`/`control` consumed on every path except
//! the listening-socket one that the 15-era split implementation leaks
//! (H1). Stream data accepted by `sosend` but not yet taken by Linux is the
//! occupancy of the modelled `so_snd` (so `EWOULDBLOCK`/`EMSGSIZE` follow
//! FreeBSD's `sb_hiwat`, not Linux's buffer).
//!
//! `soreceive` implements `soreceive_generic` (datagram and local stream
//! sockets) and `soreceive_stream` (TCP) in both the mbuf form (`mp0`, the
//! ng_ksocket form) and the uio form (kernel-space iovecs).
//!
//! Link-layer flags: a datagram received for a multicast group carries
//! `M_MCAST`, one for the limited broadcast address `M_BCAST`, as the
//! input path leaves them on the mbufs it delivers (the destination comes
//! from Linux's `IP_PKTINFO` / `IPV6_PKTINFO`). They describe how a packet
//! arrived, not how to send it: a chain handed to `sosend` on an inet or
//! inet6 socket with either flag is a violation (IP output would address
//! it to the link's broadcast or multicast address; FreeBSD's ng_ksocket
//! clears both before `sosend` for this reason).

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use fbsd_sys::{mbuf, sockaddr, socket, thread, uio, M_PKTHDR, SO_RCV, SO_SND, UIO_SYSSPACE};

use super::addr::{self, AF_LOCAL};
use super::errno::{self, fb};
use super::events::{self, flush, sb_chan, sync_rcv_count};
use super::proto::{self, Kind};
use super::{
    check_no_locks, check_not_in_upcall, listening, sb, sb_hiwat, sb_state, set_so_error, so_error,
    state, target, with_sock, Target, VnetGuard, LOCAL_MAXDGRAM, MSG_DONTWAIT, MSG_EOR, MSG_NBIO,
    MSG_OOB, MSG_PEEK, MSG_TRUNC, SBS_CANTRCVMORE, SBS_CANTSENDMORE, SS_ISCONNECTED,
    SS_ISCONNECTING, SS_ISDISCONNECTED, SS_NBIO,
};
use crate::kern::mbuf::{self as kmbuf, fields};
use crate::kern::{lock, malloc, sched, thread as kthread, violation};

/// Largest datagram the model reads in one go (any loopback datagram fits).
const DGRAM_BUF: usize = 256 * 1024;
/// Largest stream chunk one `soreceive` returns.
const STREAM_CHUNK: usize = 256 * 1024;

fn free_chain(m: *mut mbuf) {
    if !m.is_null() {
        kmbuf::free_chain(m);
    }
}

/// Bytes of a uio over kernel-space iovecs (the sosend uio form).
fn uio_take(u: *mut uio) -> Result<Vec<u8>, c_int> {
    // SAFETY: the caller passes a valid uio.
    let (iov, cnt, seg, resid) = unsafe {
        (
            (*u).uio_iov,
            (*u).uio_iovcnt,
            (*u).uio_segflg,
            (*u).uio_resid,
        )
    };
    if seg != UIO_SYSSPACE {
        violation("sosend/soreceive: only kernel-space (UIO_SYSSPACE) uios can be modelled");
        return Err(fb::EFAULT);
    }
    let mut out = Vec::with_capacity(resid.max(0) as usize);
    for k in 0..cnt.max(0) as usize {
        // SAFETY: `iov` has `cnt` entries describing readable kernel memory.
        unsafe {
            let v = &mut *iov.add(k);
            if v.iov_len > 0 {
                out.extend_from_slice(std::slice::from_raw_parts(
                    v.iov_base.cast::<u8>(),
                    v.iov_len,
                ));
                v.iov_base = v.iov_base.cast::<u8>().add(v.iov_len).cast::<c_void>();
                v.iov_len = 0;
            }
        }
    }
    // SAFETY: valid uio.
    unsafe {
        (*u).uio_offset += out.len() as i64;
        (*u).uio_resid = 0;
    }
    Ok(out)
}

/// Copies `data` into a kernel-space uio (the soreceive uio form).
fn uio_put(u: *mut uio, data: &[u8]) -> Result<(), c_int> {
    // SAFETY: the caller passes a valid uio.
    let (iov, cnt, seg) = unsafe { ((*u).uio_iov, (*u).uio_iovcnt, (*u).uio_segflg) };
    if seg != UIO_SYSSPACE {
        violation("soreceive: only kernel-space (UIO_SYSSPACE) uios can be modelled");
        return Err(fb::EFAULT);
    }
    let mut off = 0;
    for k in 0..cnt.max(0) as usize {
        if off == data.len() {
            break;
        }
        // SAFETY: `iov` has `cnt` entries describing writable kernel memory.
        unsafe {
            let v = &mut *iov.add(k);
            let n = v.iov_len.min(data.len() - off);
            std::ptr::copy_nonoverlapping(data.as_ptr().add(off), v.iov_base.cast::<u8>(), n);
            v.iov_base = v.iov_base.cast::<u8>().add(n).cast::<c_void>();
            v.iov_len -= n;
            off += n;
        }
    }
    // SAFETY: valid uio.
    unsafe {
        (*u).uio_offset += off as i64;
    }
    Ok(())
}

fn would_block(so: *mut socket, flags: c_int) -> bool {
    state(so) & SS_NBIO != 0 || flags & (MSG_DONTWAIT | MSG_NBIO) != 0
}

/// `sbwait()`: sleeps until the buffer is woken or its timeout passes.
fn sbwait(so: *mut socket, which: fbsd_sys::sb_which, what: &str) -> c_int {
    lock::assert_may_sleep(what);
    // SAFETY: live non-listening socket.
    let timeo = unsafe { (*sb(so, which)).sb_timeo };
    let timeout = if timeo > 0 {
        Some(sched::sbt_to_ticks(timeo).max(1))
    } else {
        None
    };
    let td = kthread::curthread();
    let r = sched::sleep_on(sb_chan(so, which), timeout, "sbwait");
    kthread::set_curthread(td);
    if !super::is_mine(so) {
        return fb::EBADF;
    }
    r
}

/// `sosend(so, addr, uio, top, control, flags, td)`.
///
/// # Safety
/// Kernel ABI: `top`/`control` are mbuf chains the caller hands over.
pub unsafe extern "C" fn sosend(
    so: *mut socket,
    addr: *mut sockaddr,
    uio: *mut uio,
    top: *mut mbuf,
    control: *mut mbuf,
    flags: c_int,
    td: *mut thread,
) -> c_int {
    match target(so, "sosend") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.sosend)(so, addr, uio, top, control, flags, td) },
        Target::Bad => {
            free_chain(top);
            free_chain(control);
            return fb::EBADF;
        }
    }
    let _v = VnetGuard::set(so);
    check_no_locks("sosend");
    check_not_in_upcall("sosend");
    if listening(so) {
        // sosend_generic: SOCK_IO_SEND_LOCK fails with ENOTCONN before the
        // body that frees top/control runs (H1).
        violation(format!(
            "sosend({so:p}) on a listening socket: the kernel returns ENOTCONN and leaks top/control (H1)"
        ));
        return fb::ENOTCONN;
    }
    let kind = with_sock(so, |s| s.kind).expect("live socket");
    // Take the data and consume the chains: from here on every path has
    // released them, as FreeBSD's do.
    let mut pkthdr_len: Option<i64> = None;
    let data = if !uio.is_null() {
        if !top.is_null() {
            violation("sosend: both uio and top given");
            free_chain(top);
        }
        match uio_take(uio) {
            Ok(d) => d,
            Err(e) => {
                free_chain(control);
                return e;
            }
        }
    } else if top.is_null() {
        violation("sosend: neither uio nor top given");
        free_chain(control);
        return fb::EINVAL;
    } else {
        let d = kmbuf::to_vec(top);
        // SAFETY: `top` is a live mbuf (to_vec checked the chain).
        unsafe {
            if fields::flags(top) & M_PKTHDR != 0 {
                pkthdr_len = Some(i64::from(fields::ph_len(top)));
            }
        }
        d
    };
    let clen = if control.is_null() {
        0
    } else {
        // SAFETY: `control` is a live mbuf handed over by the caller.
        i64::from(unsafe { fields::len(control) })
    };
    let had_top = !top.is_null();
    if had_top {
        for p in kmbuf::chain_problems(top) {
            // sosend_generic takes chains without a packet header (and
            // sosend_dgram's own M_PKTHDR rule is H2 below).
            if !p.starts_with("first mbuf") && !p.starts_with("m_pkthdr.len") {
                violation(format!("sosend({so:p}): {p}"));
            }
        }
        let family = with_sock(so, |s| s.family).unwrap_or(0);
        // SAFETY: `top` is live (to_vec checked the chain).
        let lflags = unsafe { fields::flags(top) } & (fbsd_sys::M_BCAST | fbsd_sys::M_MCAST);
        if lflags != 0 && family != AF_LOCAL {
            violation(format!(
                "sosend({so:p}): top carries {} from where it was received; IP output would send it to the link's {} address (clear M_BCAST|M_MCAST before sosend, as ng_ksocket does)",
                if lflags & fbsd_sys::M_BCAST != 0 { "M_BCAST" } else { "M_MCAST" },
                if lflags & fbsd_sys::M_BCAST != 0 { "broadcast" } else { "multicast" },
            ));
        }
        if kind.dgram_send() {
            match pkthdr_len {
                None => violation(format!("sosend_dgram({so:p}): top has no M_PKTHDR (H2)")),
                Some(l) if l != data.len() as i64 => violation(format!(
                    "sosend_dgram({so:p}): m_pkthdr.len {l} differs from the chain length {} (H2)",
                    data.len()
                )),
                _ => {}
            }
        }
        free_chain(top);
    }
    free_chain(control);
    // sosend_dgram uses m_pkthdr.len; sosend_generic too when present,
    // else m_length(top).
    let resid = pkthdr_len.unwrap_or(data.len() as i64);
    send_body(so, kind, addr, data, resid, clen, had_top, flags)
}

#[allow(clippy::too_many_arguments)]
fn send_body(
    so: *mut socket,
    kind: Kind,
    addr: *mut sockaddr,
    data: Vec<u8>,
    resid: i64,
    clen: i64,
    had_top: bool,
    flags: c_int,
) -> c_int {
    let pflags = proto::flags(kind);
    let connreq = pflags & fbsd_sys::PR_CONNREQUIRED as c_int != 0;
    let implopcl = pflags & fbsd_sys::PR_IMPLOPCL as c_int != 0;
    let atomic = pflags & fbsd_sys::PR_ATOMIC as c_int != 0 || had_top;
    if resid < 0 || (!kind.dgram_send() && kind.is_stream() && flags & MSG_EOR != 0) {
        return fb::EINVAL;
    }
    loop {
        if sb_state(so, SO_SND) & SBS_CANTSENDMORE != 0 {
            return fb::EPIPE;
        }
        if !connreq && so_error(so) == 0 {
            // A pending ICMP error on a connected datagram socket is what
            // udp_notify() would have stored in so_error.
            let fd = with_sock(so, |s| s.fd).unwrap_or(-1);
            let e = events::take_linux_error(fd);
            if e != 0 {
                set_so_error(so, e);
            }
        }
        let e = so_error(so);
        if e != 0 {
            set_so_error(so, 0);
            return c_int::from(e);
        }
        if state(so) & SS_ISCONNECTED == 0 {
            if connreq && !implopcl {
                if !(resid == 0 && clen != 0) {
                    return fb::ENOTCONN;
                }
            } else if addr.is_null() {
                return if connreq {
                    fb::ENOTCONN
                } else {
                    fb::EDESTADDRREQ
                };
            }
        }
        let hiwat = i64::from(sb_hiwat(so, SO_SND));
        if kind.dgram_send() {
            let limit = if kind == Kind::LocalDgram {
                LOCAL_MAXDGRAM as i64
            } else {
                hiwat - clen
            };
            if resid > limit {
                return fb::EMSGSIZE;
            }
            break;
        }
        if (atomic && resid > hiwat) || clen > hiwat {
            return fb::EMSGSIZE;
        }
        let used = with_sock(so, |s| s.pending.len() as i64).unwrap_or(0);
        let space = hiwat - used;
        // SAFETY: live non-listening socket.
        let lowat = i64::from(unsafe { (*sb(so, SO_SND)).sb_lowat });
        if space < resid + clen && (atomic || space < lowat || space < clen) {
            if would_block(so, flags) {
                return fb::EWOULDBLOCK;
            }
            if let Ok(n) = flush(so) {
                if n > 0 {
                    continue;
                }
            }
            let r = sbwait(so, SO_SND, "sosend");
            if r != 0 {
                return r;
            }
            continue;
        }
        break;
    }
    pr_send(so, kind, addr, data, flags)
}

fn pr_send(so: *mut socket, kind: Kind, addr: *mut sockaddr, data: Vec<u8>, flags: c_int) -> c_int {
    let (fd, family) = with_sock(so, |s| (s.fd, s.family)).expect("live socket");
    let connected = state(so) & SS_ISCONNECTED != 0;
    let dest = if addr.is_null() {
        None
    } else {
        // SAFETY: borrowed caller sockaddr.
        Some(unsafe { addr::read_fbsd(addr) })
    };
    match kind {
        Kind::Udp | Kind::UdpLite | Kind::Raw | Kind::LocalDgram => {
            let la = match &dest {
                Some(_) if connected => return fb::EISCONN,
                Some(b) if family == AF_LOCAL => {
                    match addr::local_path(b).and_then(|p| addr::local_to_linux(&p)) {
                        Ok(a) => Some(a),
                        Err(e) => return e,
                    }
                }
                Some(b) => {
                    let a = match addr::inet_to_linux(b, family) {
                        Ok(a) => a,
                        Err(e) => return e,
                    };
                    if kind != Kind::Raw && addr::inet_port(b) == 0 {
                        return fb::EADDRNOTAVAIL;
                    }
                    Some(a)
                }
                None => None,
            };
            let (p, l) = la
                .as_ref()
                .map_or((null_mut(), 0), |a| (a.as_ptr().cast_mut(), a.len));
            // SAFETY: sends an owned buffer to a valid (or no) address.
            let n = unsafe {
                libc::sendto(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                    p,
                    l,
                )
            };
            if n < 0 {
                return match errno::last_linux() {
                    // A full interface queue / receiver: ENOBUFS on FreeBSD.
                    libc::EAGAIN => fb::ENOBUFS,
                    e => errno::linux_to_fbsd(e),
                };
            }
            0
        }
        Kind::LocalSeqpacket => {
            // SAFETY: sends an owned buffer.
            let n = unsafe {
                libc::send(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                return errno::last();
            }
            0
        }
        Kind::Tcp | Kind::LocalStream => {
            if flags & MSG_OOB != 0 {
                // SAFETY: sends an owned buffer.
                let n = unsafe {
                    libc::send(
                        fd,
                        data.as_ptr().cast(),
                        data.len(),
                        libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT | libc::MSG_OOB,
                    )
                };
                return if n < 0 { errno::last() } else { 0 };
            }
            if !connected {
                // PR_IMPLOPCL: sendto() on an unconnected TCP socket connects.
                let Some(b) = dest else { return fb::ENOTCONN };
                if state(so) & SS_ISCONNECTING == 0 {
                    let r = implied_connect(so, fd, family, &b);
                    if r != 0 {
                        return r;
                    }
                }
                with_sock(so, |s| s.pending.extend_from_slice(&data));
                events::sync_snd_count(so);
                return 0;
            }
            with_sock(so, |s| s.pending.extend_from_slice(&data));
            match flush(so) {
                Ok(_) => 0,
                Err(e) => {
                    // The peer reset the connection before FreeBSD's input
                    // path would have let this send through.
                    if e == fb::ECONNRESET {
                        set_so_error(so, e);
                    }
                    events::soisdisconnected(so);
                    fb::EPIPE
                }
            }
        }
    }
}

fn implied_connect(so: *mut socket, fd: c_int, family: c_int, b: &[u8]) -> c_int {
    let la = match addr::inet_to_linux(b, family) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if addr::inet_port(b) == 0 {
        return fb::EADDRNOTAVAIL;
    }
    // SAFETY: valid sockaddr for the descriptor.
    let r = unsafe { libc::connect(fd, la.as_ptr(), la.len) };
    if r != 0 {
        let e = errno::last_linux();
        if e != libc::EINPROGRESS {
            return errno::linux_to_fbsd(e);
        }
    }
    super::set_state(so, SS_ISCONNECTING, 0);
    0
}

/// A received stream chunk as an mbuf chain without packet header
/// (`sbappendstream` demotes the header).
fn stream_chain(data: &[u8]) -> *mut mbuf {
    let m = kmbuf::from_bytes(data);
    // SAFETY: `m` is a fresh packet-header chain without tags.
    unsafe {
        fields::set_flags(m, fields::flags(m) & !M_PKTHDR);
        std::ptr::write_bytes(fields::ph(m), 0, 1);
    }
    m
}

/// `soreceive(so, psa, uio, mp0, controlp, flagsp)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn soreceive(
    so: *mut socket,
    psa: *mut *mut sockaddr,
    uio: *mut uio,
    mp0: *mut *mut mbuf,
    controlp: *mut *mut mbuf,
    flagsp: *mut c_int,
) -> c_int {
    match target(so, "soreceive") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.soreceive)(so, psa, uio, mp0, controlp, flagsp) },
        Target::Bad => return fb::EBADF,
    }
    let _v = VnetGuard::set(so);
    check_no_locks("soreceive");
    check_not_in_upcall("soreceive");
    // SAFETY: out-pointers supplied by the caller (NULL allowed).
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
    if uio.is_null() {
        violation(format!(
            "soreceive({so:p}): NULL uio (the byte budget is uio_resid, H5)"
        ));
        return fb::EINVAL;
    }
    if listening(so) {
        return fb::ENOTCONN;
    }
    // SAFETY: valid pointer or NULL.
    let flags = if flagsp.is_null() {
        0
    } else {
        (unsafe { *flagsp }) & !MSG_EOR
    };
    let kind = with_sock(so, |s| s.kind).expect("live socket");
    let r = if kind.is_stream() {
        receive_stream(so, kind, uio, mp0, flags)
    } else {
        receive_dgram(so, kind, psa, uio, mp0, flags)
    };
    match r {
        Ok(out) => {
            if !flagsp.is_null() {
                // SAFETY: valid pointer.
                unsafe { *flagsp |= out };
            }
            0
        }
        Err(e) => e,
    }
}

fn resid_of(u: *mut uio) -> i64 {
    // SAFETY: valid uio.
    unsafe { (*u).uio_resid as i64 }
}

fn set_resid(u: *mut uio, r: i64) {
    // SAFETY: valid uio.
    unsafe { (*u).uio_resid = r as isize };
}

/// Hands received bytes to the caller: an mbuf chain in `*mp0` (with
/// `mflags` added to its first mbuf), or a copy into the uio.
fn deliver(
    u: *mut uio,
    mp0: *mut *mut mbuf,
    data: &[u8],
    stream: bool,
    mflags: u32,
) -> Result<(), c_int> {
    if mp0.is_null() {
        return uio_put(u, data);
    }
    let m = if stream {
        stream_chain(data)
    } else {
        kmbuf::from_bytes(data)
    };
    if mflags != 0 {
        // SAFETY: `m` is a fresh chain of ours.
        unsafe { fields::set_flags(m, fields::flags(m) | mflags) };
    }
    // SAFETY: `mp0` is the caller's out-pointer.
    unsafe { *mp0 = m };
    Ok(())
}

/// Marks a stream socket dropped without upcalls (the caller is reading and
/// learns it from the return value).
fn mark_dropped(so: *mut socket) {
    super::set_state(so, SS_ISDISCONNECTED, SS_ISCONNECTED | SS_ISCONNECTING);
    // SAFETY: live non-listening socket.
    unsafe {
        (*sb(so, SO_RCV)).sb_state |= SBS_CANTRCVMORE;
        (*sb(so, SO_SND)).sb_state |= SBS_CANTSENDMORE;
    }
}

fn receive_stream(
    so: *mut socket,
    kind: Kind,
    u: *mut uio,
    mp0: *mut *mut mbuf,
    flags: c_int,
) -> Result<c_int, c_int> {
    let tcp = kind == Kind::Tcp;
    let resid = resid_of(u);
    if tcp {
        // soreceive_stream()
        if resid == 0 {
            return Err(fb::EINVAL);
        }
        if state(so) & (SS_ISCONNECTED | SS_ISDISCONNECTED) == 0 {
            return Err(fb::ENOTCONN);
        }
    }
    let mut buf = vec![0u8; (resid.max(0) as usize).clamp(1, STREAM_CHUNK)];
    loop {
        let (fd, rd_shut) = with_sock(so, |s| (s.fd, s.rd_shut)).ok_or(fb::EBADF)?;
        let mut n: isize = -1;
        let mut err = libc::EAGAIN;
        if rd_shut {
            super::ops::drain(fd);
        } else if resid > 0 {
            let lflags = libc::MSG_DONTWAIT
                | if flags & MSG_PEEK != 0 {
                    libc::MSG_PEEK
                } else {
                    0
                };
            // SAFETY: reads into an owned buffer.
            n = unsafe {
                libc::recv(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len().min(resid as usize),
                    lflags,
                )
            };
            if n < 0 {
                err = errno::last_linux();
            }
        }
        if n > 0 {
            let n = n as usize;
            deliver(u, mp0, &buf[..n], true, 0)?;
            set_resid(u, resid - n as i64);
            sync_rcv_count(so, fd);
            return Ok(0);
        }
        if n < 0 && err == libc::ENOTCONN {
            // A connection that never was or is gone: nothing to read.
            err = libc::EAGAIN;
        }
        if n == 0 {
            // The peer's FIN: the input path would have set CANTRCVMORE.
            // SAFETY: live non-listening socket.
            unsafe { (*sb(so, SO_RCV)).sb_state |= SBS_CANTRCVMORE };
        } else if err != libc::EAGAIN && err != libc::EINTR {
            let e = errno::linux_to_fbsd(err);
            if matches!(e, fb::ECONNRESET | fb::ETIMEDOUT | fb::ECONNABORTED) {
                set_so_error(so, e);
                mark_dropped(so);
            } else {
                return Err(e);
            }
        }
        // The buffer is empty.
        let e = so_error(so);
        if e != 0 {
            if flags & MSG_PEEK == 0 {
                set_so_error(so, 0);
            }
            return Err(c_int::from(e));
        }
        if sb_state(so, SO_RCV) & SBS_CANTRCVMORE != 0 {
            return Ok(0);
        }
        if !tcp {
            // soreceive_generic order for local streams.
            if state(so) & (SS_ISCONNECTED | SS_ISCONNECTING) == 0 {
                return Err(fb::ENOTCONN);
            }
            if resid == 0 {
                return Ok(0);
            }
        }
        if would_block(so, flags) {
            return Err(fb::EWOULDBLOCK);
        }
        let r = sbwait(so, SO_RCV, "soreceive");
        if r != 0 {
            return Err(r);
        }
    }
}

/// `M_MCAST` for a datagram sent to a multicast group, `M_BCAST` for one
/// sent to the limited broadcast address (the destination is the
/// `IP_PKTINFO` / `IPV6_PKTINFO` control message of `msg`).
fn link_flags(msg: &libc::msghdr) -> u32 {
    let mut out = 0;
    // SAFETY: walks the control messages recvmsg() filled in, within
    // msg_controllen, with the libc CMSG macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let pi = data.cast::<libc::in_pktinfo>().read_unaligned();
                let dst = u32::from_be(pi.ipi_addr.s_addr);
                if dst >> 28 == 0xe {
                    out |= fbsd_sys::M_MCAST;
                } else if dst == u32::MAX {
                    out |= fbsd_sys::M_BCAST;
                }
            } else if (*c).cmsg_level == libc::IPPROTO_IPV6 && (*c).cmsg_type == libc::IPV6_PKTINFO
            {
                let pi = data.cast::<libc::in6_pktinfo>().read_unaligned();
                if pi.ipi6_addr.s6_addr[0] == 0xff {
                    out |= fbsd_sys::M_MCAST;
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    out
}

fn receive_dgram(
    so: *mut socket,
    kind: Kind,
    psa: *mut *mut sockaddr,
    u: *mut uio,
    mp0: *mut *mut mbuf,
    flags: c_int,
) -> Result<c_int, c_int> {
    let pflags = proto::flags(kind);
    let want_addr = pflags & fbsd_sys::PR_ADDR as c_int != 0 && !psa.is_null();
    let connreq = pflags & fbsd_sys::PR_CONNREQUIRED as c_int != 0;
    let mut buf = vec![0u8; DGRAM_BUF];
    loop {
        let (fd, rd_shut) = with_sock(so, |s| (s.fd, s.rd_shut)).ok_or(fb::EBADF)?;
        let resid = resid_of(u);
        // SAFETY: sockaddr_storage / msghdr are plain data.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        let mut cbuf = [0u64; 16];
        msg.msg_name = (&mut ss as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let mut n: isize = -1;
        let mut err = libc::EAGAIN;
        if rd_shut {
            super::ops::drain(fd);
        } else {
            let lflags = libc::MSG_DONTWAIT
                | libc::MSG_TRUNC
                | if flags & MSG_PEEK != 0 {
                    libc::MSG_PEEK
                } else {
                    0
                };
            // SAFETY: `msg` describes owned buffers.
            n = unsafe { libc::recvmsg(fd, &mut msg, lflags) };
            if n < 0 {
                err = errno::last_linux();
            }
        }
        if n >= 0 {
            let full = n as usize;
            let got = full.min(buf.len());
            if want_addr {
                let a = if msg.msg_namelen == 0 {
                    if kind.is_local() {
                        addr::NONAME.to_vec()
                    } else {
                        with_sock(so, |s| s.peer.clone())
                            .flatten()
                            .unwrap_or_else(|| addr::NONAME.to_vec())
                    }
                } else {
                    super::local_name_fixup(addr::from_linux(&ss, msg.msg_namelen))
                };
                // sodupsockaddr(sa, M_NOWAIT): may fail under memory pressure.
                let p = malloc::kmalloc(a.len(), malloc::harness_type("soname"), super::M_NOWAIT);
                if !p.is_null() {
                    // SAFETY: `p` is a fresh block of a.len() bytes.
                    unsafe { std::ptr::copy_nonoverlapping(a.as_ptr(), p, a.len()) };
                }
                // SAFETY: caller's out-pointer.
                unsafe { *psa = p.cast() };
            }
            let mut out = 0;
            let take = (resid.max(0) as usize).min(got);
            if resid > 0 {
                deliver(u, mp0, &buf[..take], false, link_flags(&msg))?;
            }
            let mut left = resid - take as i64;
            if full > take || resid <= 0 {
                // The rest of the record is dropped.
                out |= MSG_TRUNC;
                if flags & MSG_TRUNC != 0 {
                    left -= (full - take) as i64;
                }
            }
            set_resid(u, left);
            sync_rcv_count(so, fd);
            return Ok(out);
        }
        if err != libc::EAGAIN && err != libc::EINTR {
            // An asynchronous error Linux reports on receive (ICMP on a
            // connected socket): FreeBSD's so_error.
            let e = errno::linux_to_fbsd(err);
            set_so_error(so, e);
        } else if !connreq && so_error(so) == 0 {
            let e = events::take_linux_error(fd);
            if e != 0 {
                set_so_error(so, e);
            }
        }
        let e = so_error(so);
        if e != 0 {
            if flags & MSG_PEEK == 0 {
                set_so_error(so, 0);
            }
            return Err(c_int::from(e));
        }
        if sb_state(so, SO_RCV) & SBS_CANTRCVMORE != 0 {
            return Ok(0);
        }
        if connreq && state(so) & (SS_ISCONNECTED | SS_ISCONNECTING) == 0 {
            return Err(fb::ENOTCONN);
        }
        if resid == 0 {
            return Ok(0);
        }
        if would_block(so, flags) {
            return Err(fb::EWOULDBLOCK);
        }
        let r = sbwait(so, SO_RCV, "soreceive");
        if r != 0 {
            return Err(r);
        }
    }
}
