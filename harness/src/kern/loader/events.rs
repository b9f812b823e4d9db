//! Module events: MOD_LOAD, MOD_QUIESCE and MOD_UNLOAD delivered to a
//! module's handler, with the module's recorded state.

use super::*;

pub(super) fn call_handler(mod_id: i32, event: c_int) -> i32 {
    let Some((handler, handle, arg)) = with(|s| {
        s.modules
            .iter()
            .find(|m| m.id == mod_id)
            .map(|m| (m.handler, m.handle, m.arg))
    }) else {
        return EINVAL;
    };
    if handler == 0 {
        // modevent_nop
        return match event {
            MOD_LOAD => 0,
            MOD_UNLOAD => EBUSY,
            _ => EOPNOTSUPP,
        };
    }
    // SAFETY: the relocated `modeventhand_t` of the module's moduledata.
    let f: unsafe extern "C" fn(*mut c_void, c_int, *mut c_void) -> c_int =
        unsafe { std::mem::transmute(handler) };
    // SAFETY: calling module code with the arguments the kernel passes.
    unsafe { f(handle as *mut c_void, event, arg as *mut c_void) }
}

pub(super) fn module_release(mod_id: i32) {
    with(|s| {
        if let Some(pos) = s.modules.iter().position(|m| m.id == mod_id) {
            let m = s.modules.remove(pos);
            if let Some(fid) = m.file {
                if let Some(f) = s.files.iter_mut().find(|f| f.id == fid) {
                    f.modules.retain(|&x| x != mod_id);
                }
            }
        }
    });
}

pub(super) fn mod_name(mod_id: i32) -> String {
    with(|s| {
        s.modules
            .iter()
            .find(|m| m.id == mod_id)
            .map(|m| m.name.clone())
            .unwrap_or_default()
    })
}

pub(super) unsafe extern "C" fn k_module_register_init(arg: *const c_void) {
    let data = arg as usize;
    let Some(md) = (!arg.is_null())
        .then(|| {
            // SAFETY: DECLARE_MODULE passes its static moduledata_t; checked to
            // lie in the arena before reading.
            arena::contains(data)
                .then(|| unsafe { std::ptr::read_unaligned(arg as *const moduledata) })
        })
        .flatten()
    else {
        violation(format!(
            "module_register_init({}): not a moduledata pointer",
            fmt_ptr(data)
        ));
        return;
    };
    let name = cstr_arena(md.name as usize).unwrap_or_default();
    let Some(mod_id) = with(|s| s.modules.iter().find(|m| m.name == name).map(|m| m.id)) else {
        crate::kern::kernel_panic(&format!(
            "module_register_init: module named {name} not found"
        ));
    };
    let error = call_handler(mod_id, MOD_LOAD);
    trace(format!("module_register_init({name}): MOD_LOAD -> {error}"));
    if error != 0 {
        let r = call_handler(mod_id, MOD_UNLOAD);
        trace(format!("module_register_init({name}): MOD_UNLOAD -> {r}"));
        module_release(mod_id);
        let evhand = md.evhand.map_or(0, |f| f as usize);
        kmsg(format!(
            "module_register_init: MOD_LOAD ({name}, {}, {}) error {error}",
            fmt_ptr(evhand),
            fmt_ptr(md.priv_ as usize)
        ));
    } else {
        with(|s| {
            let fid = s
                .modules
                .iter()
                .find(|m| m.id == mod_id)
                .and_then(|m| m.file);
            if let Some(f) = fid.and_then(|fid| s.files.iter_mut().find(|f| f.id == fid)) {
                f.modules.retain(|&x| x != mod_id);
                f.modules.insert(0, mod_id);
            }
        });
    }
}
