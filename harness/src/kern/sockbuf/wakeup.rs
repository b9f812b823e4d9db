//! Wakeups and state changes: `sorwakeup`/`sowwakeup`, `socantsendmore`,
//! `socantrcvmore`, `soroverflow`, `sbwait`, upcalls.

use super::*;

/// Channel sleepers on a buffer wait on (`&sb->sb_acc`, as `sbwait`).
pub(crate) fn chan(sb: *mut sockbuf) -> usize {
    // SAFETY: only computes a field address.
    unsafe { std::ptr::addr_of!((*sb).sb_acc) as usize }
}

/// `sowakeup(so, which)`: entered with the buffer mutex held, returns with it
/// released. Wakes sleepers/selectors through the harness scheduler and runs
/// the buffer upcall (with the mutex held, `M_NOWAIT`).
pub(super) fn sowakeup(so: *mut socket, which: sb_which, c: Caller) {
    let sb = sobuf(so, which);
    let m = soeventmtx(so, which);
    // SAFETY: `so` is live and its buffer mutex is held.
    let (upcall, arg) = unsafe {
        if (*sb).sb_flags & (SB_WAIT | SB_SEL) != 0 {
            (*sb).sb_flags &= !(SB_WAIT | SB_SEL);
            crate::kern::sched::wakeup_chan(chan(sb), false);
        }
        ((*sb).sb_upcall, (*sb).sb_upcallarg)
    };
    let mut ret = 0;
    if let Some(f) = upcall {
        // SAFETY: an upcall registered with soupcall_set: `int (*)(struct
        // socket *, void *, int)`, called with the buffer mutex held.
        ret = unsafe { f(so, arg, M_NOWAIT) };
        if !mtx_owned(m) {
            violation(format!(
                "{} buffer upcall of socket {so:p} returned without the buffer mutex it was called with (H19)",
                which_name(which)
            ));
            return;
        }
        if ret == SU_ISCONNECTED {
            if which == SO_SND {
                violation(format!(
                    "send buffer upcall of socket {so:p} returned SU_ISCONNECTED"
                ));
                ret = 0;
            } else {
                // soupcall_clear(so, SO_RCV)
                // SAFETY: the buffer mutex is held.
                unsafe {
                    (*sb).sb_upcall = None;
                    (*sb).sb_upcallarg = std::ptr::null_mut();
                    (*sb).sb_flags &= !SB_UPCALL;
                }
            }
        }
    }
    mtx_unlock(m);
    if ret == SU_ISCONNECTED {
        soisconnected_impl(so, c);
    }
}

/// `sorwakeup_locked(so)`: receive mutex held on entry, released on exit.
pub(crate) fn rwakeup_locked(so: *mut socket, c: Caller) {
    wakeup_locked(so, SO_RCV, "sorwakeup_locked", c);
}

/// `sowwakeup_locked(so)`: send mutex held on entry, released on exit.
pub(crate) fn wwakeup_locked(so: *mut socket, c: Caller) {
    wakeup_locked(so, SO_SND, "sowwakeup_locked", c);
}

/// Fault switch of the harness's self-tests: `sorwakeup_locked` /
/// `sowwakeup_locked` release the buffer mutex without waking anyone, as a
/// protocol that forgot its wakeup would behave.
static DROP_WAKEUPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns the dropped-wakeup fault on or off (harness self-tests).
pub fn set_drop_wakeups(on: bool) {
    DROP_WAKEUPS.store(on, std::sync::atomic::Ordering::SeqCst);
}

pub(super) fn wakeup_locked(so: *mut socket, which: sb_which, what: &str, c: Caller) {
    if !assert_locked(so, which, what, c) {
        return;
    }
    if DROP_WAKEUPS.load(std::sync::atomic::Ordering::SeqCst) {
        mtx_unlock(soeventmtx(so, which));
        return;
    }
    // SAFETY: `so` is live and its buffer mutex is held.
    if unsafe { sb_notify(sobuf(so, which)) } {
        sowakeup(so, which, c);
    } else {
        mtx_unlock(soeventmtx(so, which));
    }
}

/// `socantsendmore_locked(so)`.
pub(crate) fn cantsendmore_locked(so: *mut socket, c: Caller) {
    if !assert_locked(so, SO_SND, "socantsendmore_locked", c) {
        return;
    }
    // SAFETY: the send buffer mutex is held.
    unsafe { (*sobuf(so, SO_SND)).sb_state |= SBS_CANTSENDMORE };
    wwakeup_locked(so, c);
}

/// `socantrcvmore_locked(so)`.
pub(crate) fn cantrcvmore_locked(so: *mut socket, c: Caller) {
    if !assert_locked(so, SO_RCV, "socantrcvmore_locked", c) {
        return;
    }
    // SAFETY: the receive buffer mutex is held.
    unsafe { (*sobuf(so, SO_RCV)).sb_state |= SBS_CANTRCVMORE };
    rwakeup_locked(so, c);
}

pub(super) fn overflow_locked(so: *mut socket, c: Caller) {
    if !assert_locked(so, SO_RCV, "soroverflow_locked", c) {
        return;
    }
    // SAFETY: `so` is live; so_options/so_rerror are socket fields.
    let rerror = unsafe { (*so).so_options } & SO_RERROR != 0;
    if rerror {
        // SAFETY: as above.
        unsafe { (*so).so_rerror = ENOBUFS as u16 };
        rwakeup_locked(so, c);
    } else {
        mtx_unlock(soeventmtx(so, SO_RCV));
    }
}

/// `sbwait(so, which)` with an optional bound for sockets without a timeout:
/// buffer mutex held on entry and on return.
pub(crate) fn wait(so: *mut socket, which: sb_which, bound: Option<u64>) -> c_int {
    let sb = sobuf(so, which);
    let m = soeventmtx(so, which);
    // SAFETY: the buffer mutex is held.
    let timeo = unsafe {
        (*sb).sb_flags |= SB_WAIT;
        (*sb).sb_timeo
    };
    let timeout = if timeo > 0 {
        Some(crate::kern::sched::sbt_to_ticks(timeo).max(1))
    } else {
        bound
    };
    // msleep: releasing the buffer mutex and sleeping are one step (no
    // wakeup can slip in between).
    crate::kern::lock::release_for_sleep(m);
    let r = crate::kern::domain::sleep(chan(sb), timeout, "sbwait");
    crate::kern::lock::reacquire_after_sleep(m);
    r
}

/// Marks the buffer as selected (`SB_SEL`) so the next wakeup reaches a poller.
pub(crate) fn set_sel(sb: *mut sockbuf) {
    // SAFETY: the caller holds the buffer mutex of a live socket.
    unsafe { (*sb).sb_flags |= SB_SEL };
}
