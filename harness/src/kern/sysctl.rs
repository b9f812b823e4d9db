//! Static sysctls of loaded modules (`set_sysctl_set`): registered when a
//! file is linked and removed before it is unloaded, as FreeBSD's linker
//! does, with a by-name read/write API for scenarios and tests.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::sync::Mutex;

use fbsd_sys::sysctl_oid;

use crate::exports::Exports;
use crate::kern::loader::{FileInfo, Phase};

/// Registered OIDs: full name → (file id, oid address).
static OIDS: Mutex<BTreeMap<String, (i32, usize)>> = Mutex::new(BTreeMap::new());

const CTLTYPE: u32 = 0xf;
const CTLTYPE_INT: u32 = 2;
const CTLTYPE_LONG: u32 = 7;
const CTLTYPE_ULONG: u32 = 8;

fn oid_name(oid: *const sysctl_oid) -> String {
    // SAFETY: OIDs of a loaded file are live, with NUL-terminated names or NULL.
    unsafe {
        let n = (*oid).oid_name;
        if n.is_null() {
            String::new()
        } else {
            CStr::from_ptr(n).to_string_lossy().into_owned()
        }
    }
}

/// Full dotted name: each parent list is the `oid_children` of its owner
/// (at offset 0), up to the harness's `net.graph` node (named "graph",
/// with no parent of its own in the harness).
fn full_name(oid: *const sysctl_oid) -> String {
    let mut parts = vec![oid_name(oid)];
    let mut cur = oid;
    for _ in 0..8 {
        // SAFETY: as above; a parent list pointer points at its owner OID.
        let parent = unsafe { (*cur).oid_parent }.cast::<sysctl_oid>();
        if parent.is_null() {
            break;
        }
        let n = oid_name(parent);
        // SAFETY: as above.
        let top = unsafe { (*parent).oid_parent }.is_null();
        if n.is_empty() || (top && n == "graph") {
            // The harness's own `net.graph` node (exported by the netgraph
            // core, the only parent a module's static OIDs hang from).
            parts.push("graph".into());
            parts.push("net".into());
            break;
        }
        parts.push(n);
        cur = parent;
    }
    parts.reverse();
    parts.join(".")
}

fn on_phase(phase: Phase, f: &FileInfo) {
    match phase {
        Phase::Linked => {
            let Some((start, end)) = f.linker_set("sysctl_set") else {
                return;
            };
            let mut map = OIDS.lock().unwrap_or_else(|e| e.into_inner());
            let mut p = start;
            while p + 8 <= end {
                // SAFETY: the set is an array of pointers to the file's OIDs.
                let oid = unsafe { *(p as *const *const sysctl_oid) };
                if !oid.is_null() {
                    map.insert(full_name(oid), (f.id, oid as usize));
                }
                p += 8;
            }
        }
        Phase::Unloading => {
            OIDS.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, (id, _)| *id != f.id);
        }
        _ => {}
    }
}

/// Reads an integer sysctl registered by a loaded module.
pub fn get(name: &str) -> Option<i64> {
    let map = OIDS.lock().unwrap_or_else(|e| e.into_inner());
    let &(_, addr) = map.get(name)?;
    let oid = addr as *const sysctl_oid;
    // SAFETY: a registered OID of a loaded file; arg1 points at the variable
    // of the OID's type, or is NULL for constants (value in arg2).
    unsafe {
        let kind = (*oid).oid_kind & CTLTYPE;
        let arg1 = (*oid).oid_arg1;
        if arg1.is_null() {
            return Some((*oid).oid_arg2);
        }
        match kind {
            CTLTYPE_INT => Some(i64::from(*(arg1 as *const i32))),
            CTLTYPE_LONG | CTLTYPE_ULONG => Some(*(arg1 as *const i64)),
            _ => None,
        }
    }
}

/// Width in bytes of an integer sysctl's value (4 for `int`, 8 for
/// `long`/`u_long`), as `sysctlbyname(3)` copies it out.
pub fn width(name: &str) -> Option<usize> {
    let map = OIDS.lock().unwrap_or_else(|e| e.into_inner());
    let &(_, addr) = map.get(name)?;
    let oid = addr as *const sysctl_oid;
    // SAFETY: a registered OID of a loaded file.
    let kind = unsafe { (*oid).oid_kind } & CTLTYPE;
    match kind {
        CTLTYPE_INT => Some(4),
        CTLTYPE_LONG | CTLTYPE_ULONG => Some(8),
        _ => None,
    }
}

/// Writes an integer sysctl (only writable variables); false if refused.
pub fn set(name: &str, v: i64) -> bool {
    let map = OIDS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(&(_, addr)) = map.get(name) else {
        return false;
    };
    let oid = addr as *const sysctl_oid;
    // SAFETY: as in `get`.
    unsafe {
        let kind = (*oid).oid_kind;
        let arg1 = (*oid).oid_arg1;
        if arg1.is_null() || kind & fbsd_sys::CTLFLAG_WR == 0 {
            return false;
        }
        match kind & CTLTYPE {
            CTLTYPE_INT => *(arg1 as *mut i32) = v as i32,
            CTLTYPE_LONG | CTLTYPE_ULONG => *(arg1 as *mut i64) = v,
            _ => return false,
        }
    }
    true
}

/// Is a registered integer sysctl writable (CTLFLAG_WR, with a variable)?
pub fn writable(name: &str) -> bool {
    let map = OIDS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(&(_, addr)) = map.get(name) else {
        return false;
    };
    let oid = addr as *const sysctl_oid;
    // SAFETY: a registered OID of a loaded file.
    unsafe { !(*oid).oid_arg1.is_null() && (*oid).oid_kind & fbsd_sys::CTLFLAG_WR != 0 }
}

/// Names of all registered sysctls.
pub fn names() -> Vec<String> {
    OIDS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .cloned()
        .collect()
}

unsafe extern "C" fn k_sysctl_handle(
    _oidp: *mut sysctl_oid,
    _arg1: *mut std::ffi::c_void,
    _arg2: i64,
    _req: *mut fbsd_sys::sysctl_req,
) -> i32 {
    // Requests go through `get`/`set`, never through the handler.
    0
}

/// Exports the handler functions static OIDs reference and installs the
/// loader hook that registers them.
pub fn register(ex: &mut Exports) {
    ex.func("sysctl_handle_int", k_sysctl_handle as *const () as usize);
    ex.func("sysctl_handle_long", k_sysctl_handle as *const () as usize);
    ex.func(
        "sysctl_handle_string",
        k_sysctl_handle as *const () as usize,
    );
    static HOOKED: std::sync::Once = std::sync::Once::new();
    HOOKED.call_once(|| crate::kern::loader::add_hook(on_phase));
}
