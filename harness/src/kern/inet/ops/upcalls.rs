//! Socket upcalls: `soupcall_set`, `soupcall_clear`, `solisten_upcall_set`,
//! their contract checks and the delivery of deferred upcalls.

use super::*;

pub(super) fn clear_upcalls(so: *mut socket) {
    if listening(so) {
        // SAFETY: live listening socket.
        unsafe {
            (*sol(so)).sol_upcall = None;
            (*sol(so)).sol_upcallarg = null_mut();
        }
        return;
    }
    for which in [SO_RCV, SO_SND] {
        let b = sb(so, which);
        // SAFETY: live non-listening socket.
        unsafe {
            (*b).sb_upcall = None;
            (*b).sb_upcallarg = null_mut();
            (*b).sb_flags &= !SB_UPCALL;
        }
    }
}

pub(super) fn which_name(which: sb_which) -> &'static str {
    if which == SO_RCV {
        "SO_RCV"
    } else {
        "SO_SND"
    }
}

/// Common checks of `soupcall_set`/`soupcall_clear` (H18).
pub(super) fn upcall_checks(so: *mut socket, which: sb_which, what: &str) -> bool {
    if which != SO_RCV && which != SO_SND {
        violation(format!("{what}({so:p}): invalid buffer selector {which}"));
        return false;
    }
    if listening(so) {
        violation(format!(
            "{what}({so:p}, {}): socket is listening (only solisten_upcall_set applies)",
            which_name(which)
        ));
        return false;
    }
    if !mtx_owned(buf_mtx(so, which)) {
        let m = if which == SO_RCV { "so_rcv" } else { "so_snd" };
        violation(format!(
            "{what}({so:p}, {}): the {m} mutex is not held",
            which_name(which)
        ));
    }
    true
}

/// `soupcall_set(so, which, func, arg)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn soupcall_set(
    so: *mut socket,
    which: sb_which,
    func: fbsd_sys::so_upcall_t,
    arg: *mut c_void,
) {
    match target(so, "soupcall_set") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.soupcall_set)(so, which, func, arg) },
        Target::Bad => return,
    }
    if !upcall_checks(so, which, "soupcall_set") {
        return;
    }
    if func.is_none() {
        violation(format!(
            "soupcall_set({so:p}, {}): NULL function",
            which_name(which)
        ));
    }
    let b = sb(so, which);
    // SAFETY: live non-listening socket.
    unsafe {
        (*b).sb_upcall = func;
        (*b).sb_upcallarg = arg;
        (*b).sb_flags |= SB_UPCALL;
    }
}

/// `soupcall_clear(so, which)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn soupcall_clear(so: *mut socket, which: sb_which) {
    match target(so, "soupcall_clear") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.soupcall_clear)(so, which) },
        Target::Bad => return,
    }
    if !upcall_checks(so, which, "soupcall_clear") {
        return;
    }
    let b = sb(so, which);
    // SAFETY: live non-listening socket.
    unsafe {
        if (*b).sb_upcall.is_none() {
            violation(format!(
                "soupcall_clear({so:p}, {}): no upcall to clear",
                which_name(which)
            ));
        }
        (*b).sb_upcall = None;
        (*b).sb_upcallarg = null_mut();
        (*b).sb_flags &= !SB_UPCALL;
    }
}

/// `solisten_upcall_set(so, func, arg)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn solisten_upcall_set(
    so: *mut socket,
    func: fbsd_sys::so_upcall_t,
    arg: *mut c_void,
) {
    match target(so, "solisten_upcall_set") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.solisten_upcall_set)(so, func, arg) },
        Target::Bad => return,
    }
    if !mtx_owned(so_lock(so)) {
        violation(format!(
            "solisten_upcall_set({so:p}): the listen lock is not held"
        ));
    }
    if !listening(so) {
        violation(format!(
            "solisten_upcall_set({so:p}): socket is not listening"
        ));
        return;
    }
    let q = sol(so);
    // SAFETY: live listening socket.
    unsafe {
        (*q).sol_upcall = func;
        (*q).sol_upcallarg = arg;
    }
}

/// Deferred-connect-error delivery (a synchronous Linux refusal is reported
/// the asynchronous FreeBSD way).
pub(crate) fn deliver_deferred(so: *mut socket) -> bool {
    let e = with_sock(so, |s| std::mem::take(&mut s.deferred_err)).unwrap_or(0);
    if e == 0 {
        return false;
    }
    set_so_error(so, e);
    events::soisdisconnected(so);
    true
}
