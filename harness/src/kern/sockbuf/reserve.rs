//! Buffer limits: `soreserve`, `sbreserve_locked`, `sbrelease*`, `sbsetopt`.

use super::*;

/// `sbreserve_locked(so, which, cc, td)`.
pub(crate) fn reserve_locked(so: *mut socket, which: sb_which, cc: u64) -> bool {
    if cc > sb_max_adj() {
        return false;
    }
    let sb = sobuf(so, which);
    // SAFETY: `so` is a live harness socket whose buffer mutex is held.
    unsafe {
        (*sb).sb_hiwat = cc as u32;
        (*sb).sb_mbmax = (cc * SB_EFFICIENCY).min(maxsockbuf()) as u32;
        if (*sb).sb_lowat > (*sb).sb_hiwat {
            (*sb).sb_lowat = (*sb).sb_hiwat;
        }
    }
    true
}

/// `sbrelease_locked(so, which)`: flush and give the reservation back.
pub(crate) fn release_locked(so: *mut socket, which: sb_which) {
    let sb = sobuf(so, which);
    flush_locked(sb);
    // SAFETY: `so` is a live harness socket.
    unsafe {
        (*sb).sb_hiwat = 0;
        (*sb).sb_mbmax = 0;
    }
}

/// `sbdestroy(so, which)`.
pub(crate) fn sbdestroy_impl(so: *mut socket, which: sb_which) {
    release_locked(so, which);
}

pub(super) fn soreserve_impl(so: *mut socket, sndcc: u64, rcvcc: u64, c: Caller) -> c_int {
    if !check_socket(so, "soreserve", c) {
        return ENOBUFS;
    }
    let (snd, rcv) = (soeventmtx(so, SO_SND), soeventmtx(so, SO_RCV));
    let (hs, hr) = (mtx_owned(snd), mtx_owned(rcv));
    if hs || hr {
        violation(format!(
            "soreserve from {c}: called with the socket's {} buffer mutex held (soreserve takes the send \
             and then the receive buffer mutex itself; H28)",
            if hs && hr { "send and receive" } else if hs { "send" } else { "receive" }
        ));
    }
    if !hs {
        mtx_lock(snd);
    }
    if !hr {
        mtx_lock(rcv);
    }
    let mut err = 0;
    if !reserve_locked(so, SO_SND, sndcc) {
        err = ENOBUFS;
    } else if !reserve_locked(so, SO_RCV, rcvcc) {
        release_locked(so, SO_SND);
        err = ENOBUFS;
    } else {
        let (r, s) = (sobuf(so, SO_RCV), sobuf(so, SO_SND));
        // SAFETY: both buffer mutexes are held.
        unsafe {
            if (*r).sb_lowat == 0 {
                (*r).sb_lowat = 1;
            }
            if (*s).sb_lowat == 0 {
                (*s).sb_lowat = MCLBYTES as u32;
            }
            if (*s).sb_lowat > (*s).sb_hiwat {
                (*s).sb_lowat = (*s).sb_hiwat;
            }
        }
    }
    if !hr {
        mtx_unlock(rcv);
    }
    if !hs {
        mtx_unlock(snd);
    }
    err
}

/// `sbsetopt(so, sopt)`: SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT.
pub(crate) fn sbsetopt_impl(so: *mut socket, sopt: *mut sockopt, c: Caller) -> c_int {
    if !check_socket(so, "sbsetopt", c) {
        return EINVAL;
    }
    let mut optval: c_int = 0;
    // SAFETY: `sopt` is the caller's option; `optval` has 4 bytes.
    let e = unsafe {
        crate::kern::domain::abi::sooptcopyin(sopt, (&mut optval as *mut c_int).cast(), 4, 4)
    };
    if e != 0 {
        return e;
    }
    if optval < 1 {
        return EINVAL;
    }
    let cc = optval as u32;
    // SAFETY: `sopt` is valid (read by sooptcopyin above).
    let name = unsafe { (*sopt).sopt_name } as u32;
    let which = match name {
        fbsd_sys::SO_SNDBUF | fbsd_sys::SO_SNDLOWAT => SO_SND,
        fbsd_sys::SO_RCVBUF | fbsd_sys::SO_RCVLOWAT => SO_RCV,
        _ => return fbsd_sys::ENOPROTOOPT as c_int,
    };
    mtx_lock(so_lock(so));
    mtx_lock(soeventmtx(so, which));
    let sb = sobuf(so, which);
    let mut err = 0;
    match name {
        fbsd_sys::SO_SNDBUF | fbsd_sys::SO_RCVBUF => {
            if !reserve_locked(so, which, u64::from(cc)) {
                err = ENOBUFS;
            } else {
                // SAFETY: the buffer mutex is held.
                unsafe { (*sb).sb_flags &= !SB_AUTOSIZE };
            }
        }
        // SAFETY: the buffer mutex is held.
        _ => unsafe { (*sb).sb_lowat = cc.min((*sb).sb_hiwat) },
    }
    mtx_unlock(soeventmtx(so, which));
    mtx_unlock(so_lock(so));
    err
}
