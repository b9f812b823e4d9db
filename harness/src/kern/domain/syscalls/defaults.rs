//! The default methods `pr_init` installs (host functions; only the socket
//! layer calls them).

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
        if (*so_rcv(so)).sb_state & SBS_CANTRCVMORE != 0 && (*snd).sb_state & SBS_CANTSENDMORE != 0
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

pub(crate) unsafe extern "C" fn pr_accept_notsupp(_so: *mut socket, _sa: *mut sockaddr) -> c_int {
    EOPNOTSUPP
}
pub(crate) unsafe extern "C" fn pr_aio_queue_notsupp(_so: *mut socket, _job: *mut kaiocb) -> c_int {
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
pub(crate) unsafe extern "C" fn pr_shutdown_notsupp(_so: *mut socket, _how: shutdown_how) -> c_int {
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
