//! The linker functions exported to modules.

use super::*;

pub(super) unsafe extern "C" fn k_kern_kldload(
    td: *mut thread,
    file: *const c_char,
    fileid: *mut c_int,
) -> c_int {
    if td.is_null() || file.is_null() {
        violation("kern_kldload: NULL thread or file name");
        return EINVAL;
    }
    crate::kern::lock::assert_may_sleep("kern_kldload");
    // SAFETY: a NUL-terminated name from the caller (kern_kldload's contract).
    let name = unsafe { CStr::from_ptr(file) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: forwarding the caller's thread to the privilege check.
    let e = unsafe { priv_check_fn()(td, fbsd_sys::PRIV_KLD_LOAD as c_int) };
    if e != 0 {
        return e;
    }
    let r = kthread::with_curthread(td, || kldload(&name));
    match r {
        Ok(id) => {
            if !fileid.is_null() {
                // SAFETY: the caller's out parameter.
                unsafe { *fileid = id };
            }
            0
        }
        Err(e) => e.errno,
    }
}

pub(super) unsafe extern "C" fn k_kern_kldunload(
    td: *mut thread,
    fileid: c_int,
    flags: c_int,
) -> c_int {
    if td.is_null() {
        violation("kern_kldunload: NULL thread");
        return EINVAL;
    }
    crate::kern::lock::assert_may_sleep("kern_kldunload");
    // SAFETY: forwarding the caller's thread to the privilege check.
    let e = unsafe { priv_check_fn()(td, fbsd_sys::PRIV_KLD_UNLOAD as c_int) };
    if e != 0 {
        return e;
    }
    match kthread::with_curthread(td, || kldunload(fileid, flags)) {
        Ok(()) => 0,
        Err(e) => e,
    }
}

pub(super) type PrivCheck = unsafe extern "C" fn(*mut thread, c_int) -> c_int;

pub(super) fn priv_check_fn() -> PrivCheck {
    let a = with(|s| s.exports.get("priv_check").map(|e| e.addr)).expect("priv_check is exported");
    // SAFETY: the export table maps "priv_check" to a host function with the
    // kernel's `priv_check` signature.
    unsafe { std::mem::transmute::<usize, PrivCheck>(a) }
}

/// Exports `module_register_init`, `kern_kldload` and `kern_kldunload`.
pub fn register(ex: &mut Exports) {
    ex.func(
        "module_register_init",
        k_module_register_init as *const () as usize,
    );
    ex.func("kern_kldload", k_kern_kldload as *const () as usize);
    ex.func("kern_kldunload", k_kern_kldunload as *const () as usize);
}
