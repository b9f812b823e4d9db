//! The symbols `netgraph.ko` exports to node modules (docs/netgraph-model.md §1.9),
//! as host functions with private Rust names, plus the exported data objects.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use fbsd_sys::{
    callout, hook_p, item_p, mbuf, module_t, ng_item_fn, ng_item_fn2, ng_mesg, ng_type, node_cp,
    node_p,
};

use super::{dispatch, hook, item, path};
use crate::exports::Exports;

/// `ng_address_ID`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_address_id(
    here: node_p,
    item: item_p,
    id: u32,
    retaddr: u32,
) -> c_int {
    crate::kern::lock::note_acquire("netgraph ID hash");
    // SAFETY: module-supplied pointers, checked by the core.
    unsafe { item::address_id(here, item, id, retaddr) }
}

/// `ng_address_hook`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_address_hook(
    here: node_p,
    item: item_p,
    hook: hook_p,
    retaddr: u32,
) -> c_int {
    // SAFETY: as above.
    unsafe { item::address_hook(here, item, hook, retaddr) }
}

/// `ng_address_path`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_address_path(
    here: node_p,
    item: item_p,
    address: *const c_char,
    retaddr: u32,
) -> c_int {
    crate::kern::lock::note_acquire("netgraph name hash");
    if address.is_null() {
        crate::kern::violation("ng_address_path: NULL address");
        // SAFETY: consumes the item as on every failure.
        unsafe { item::free_item(item) };
        return super::EINVAL;
    }
    // SAFETY: a C string from the module.
    unsafe { item::address_path(here, item, super::cbytes(address), retaddr) }
}

/// `ng_bypass`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_bypass(h1: hook_p, h2: hook_p) -> c_int {
    crate::kern::lock::note_acquire("netgraph topology");
    // SAFETY: as above.
    unsafe { hook::bypass(h1, h2) }
}

/// `ng_callout`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_callout(
    c: *mut callout,
    node: node_p,
    hook: hook_p,
    ticks: c_int,
    f: ng_item_fn,
    arg1: *mut c_void,
    arg2: c_int,
) -> c_int {
    // SAFETY: as above.
    unsafe { dispatch::ng_callout(c, node, hook, ticks, f, arg1, arg2) }
}

/// `callout_init(c, mpsafe)` (what `ng_callout_init` expands to): an idle
/// callout. The model keeps armed callouts in the event loop's timers
/// (`ng_callout`), so initialising only clears the structure.
///
/// # Safety
/// Called by node modules with the pointer the FreeBSD function takes.
pub unsafe extern "C" fn k_callout_init(c: *mut callout, _mpsafe: c_int) {
    if c.is_null() {
        crate::kern::violation("callout_init: NULL callout");
        return;
    }
    if dispatch::callout_is_armed(c) {
        crate::kern::violation(format!("callout_init({c:p}): the callout is armed"));
        return;
    }
    // SAFETY: the module passes its own callout structure.
    unsafe { std::ptr::write_bytes(c, 0, 1) };
}

/// `ng_uncallout`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_uncallout(c: *mut callout, node: node_p) -> c_int {
    // SAFETY: as above.
    unsafe { dispatch::ng_uncallout(c, node) }
}

/// `ng_uncallout_drain` (nothing runs concurrently in the model: as ng_uncallout).
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_uncallout_drain(c: *mut callout, node: node_p) -> c_int {
    // SAFETY: as above.
    unsafe { dispatch::ng_uncallout(c, node) }
}

/// `ng_findhook`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_findhook(node: node_p, name: *const c_char) -> hook_p {
    if !super::node_ok(node, "ng_findhook") || name.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: live node, C string.
    unsafe { hook::findhook(node, name) }
}

/// `ng_findtype`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_findtype(name: *const c_char) -> *mut ng_type {
    if name.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: a C string.
    super::findtype(unsafe { super::cbytes(name) })
}

/// `ng_free_item`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_free_item(item: item_p) {
    // SAFETY: checked by the core.
    unsafe { item::free_item(item) }
}

/// `ng_make_node_common`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_make_node_common(tp: *mut ng_type, nodep: *mut node_p) -> c_int {
    crate::kern::lock::note_acquire("netgraph ID hash");
    if tp.is_null() || nodep.is_null() {
        crate::kern::violation("ng_make_node_common: NULL argument");
        return super::EINVAL;
    }
    // SAFETY: the module's type structure and out pointer.
    unsafe {
        match super::make_node_common(tp) {
            Ok(n) => {
                *nodep = n;
                0
            }
            Err(e) => e,
        }
    }
}

/// `ng_make_node`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_make_node(typename: *const c_char, nodepp: *mut node_p) -> c_int {
    if nodepp.is_null() {
        return super::EINVAL;
    }
    // SAFETY: a C string (or NULL) and the caller's out pointer.
    unsafe {
        match super::make_node(typename) {
            Ok(n) => {
                *nodepp = n;
                0
            }
            Err(e) => e,
        }
    }
}

/// `ng_mod_event`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_mod_event(m: module_t, event: c_int, data: *mut c_void) -> c_int {
    // SAFETY: `data` is the module's struct ng_type.
    unsafe { super::mod_event(m, event, data) }
}

/// `ng_name2noderef`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_name2noderef(here: node_p, name: *const c_char) -> node_p {
    crate::kern::lock::note_acquire("netgraph name hash");
    if name.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: a C string.
    unsafe { super::name2noderef(here, super::cbytes(name)) }
}

/// `ng_name_node`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_name_node(node: node_p, name: *const c_char) -> c_int {
    crate::kern::lock::note_acquire("netgraph name hash");
    if !super::node_ok(node, "ng_name_node") || name.is_null() {
        return super::EINVAL;
    }
    // SAFETY: live node, C string.
    unsafe { super::name_node(node, name) }
}

/// `ng_newtype`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_newtype(tp: *mut ng_type) -> c_int {
    if tp.is_null() {
        return super::EINVAL;
    }
    // SAFETY: the module's type structure.
    unsafe { super::newtype(tp) }
}

/// `ng_rmtype`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_rmtype(tp: *mut ng_type) -> c_int {
    // SAFETY: the module's type structure.
    unsafe { super::rmtype(tp) }
}

/// `ng_node2ID`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_node2id(node: node_cp) -> u32 {
    super::node2id(node)
}

/// `ng_package_data`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_package_data(m: *mut mbuf, flags: c_int) -> item_p {
    // SAFETY: the module's mbuf (consumed on failure).
    unsafe { item::package_data(m, flags) }
}

/// `ng_package_msg`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_package_msg(msg: *mut ng_mesg, flags: c_int) -> item_p {
    // SAFETY: the module's message (consumed on failure).
    unsafe { item::package_msg(msg, flags) }
}

/// `ng_package_msg_self`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_package_msg_self(
    here: node_p,
    hook: hook_p,
    msg: *mut ng_mesg,
) -> item_p {
    if !super::node_ok(here, "ng_package_msg_self") {
        return std::ptr::null_mut();
    }
    // SAFETY: live node.
    unsafe { item::package_msg_self(here, hook, msg) }
}

/// `ng_replace_retaddr`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_replace_retaddr(here: node_p, item: item_p, retaddr: u32) {
    // SAFETY: checked by the core.
    unsafe { item::replace_retaddr(here, item, retaddr) }
}

/// `ng_rmhook_self`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_rmhook_self(hook: hook_p) -> c_int {
    crate::kern::lock::note_acquire("netgraph topology");
    // SAFETY: checked by the core.
    unsafe { hook::rmhook_self(hook) }
}

/// `ng_rmnode_self`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_rmnode_self(node: node_p) -> c_int {
    // SAFETY: checked by the core.
    unsafe { super::rmnode_self(node) }
}

/// `ng_snd_item`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_snd_item(item: item_p, flags: c_int) -> c_int {
    // SAFETY: checked by the core.
    unsafe { dispatch::snd_item(item, flags) }
}

/// `ng_send_fn`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_send_fn(
    node: node_p,
    hook: hook_p,
    f: ng_item_fn,
    arg1: *mut c_void,
    arg2: c_int,
) -> c_int {
    // SAFETY: checked by the core.
    unsafe { dispatch::send_fn1(node, hook, f, arg1, arg2, 0) }
}

/// `ng_send_fn1`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_send_fn1(
    node: node_p,
    hook: hook_p,
    f: ng_item_fn,
    arg1: *mut c_void,
    arg2: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: checked by the core.
    unsafe { dispatch::send_fn1(node, hook, f, arg1, arg2, flags) }
}

/// `ng_send_fn2`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_send_fn2(
    node: node_p,
    hook: hook_p,
    pitem: item_p,
    f: ng_item_fn2,
    arg1: *mut c_void,
    arg2: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: checked by the core.
    unsafe { dispatch::send_fn2(node, hook, pitem, f, arg1, arg2, flags) }
}

/// `ng_unref_hook`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_unref_hook(hook: hook_p) {
    hook::unref_hook(hook);
}

/// `ng_unref_node`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_unref_node(node: node_p) {
    super::unref_node(node);
}

/// `ng_destroy_hook`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_destroy_hook(hook: hook_p) {
    crate::kern::lock::note_acquire("netgraph topology");
    // SAFETY: checked by the core.
    unsafe { hook::destroy_hook(hook) }
}

/// `ng_path2noderef`.
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_path2noderef(
    here: node_p,
    address: *const c_char,
    destp: *mut node_p,
    lasthook: *mut hook_p,
) -> c_int {
    if destp.is_null() || address.is_null() {
        return super::EINVAL;
    }
    // SAFETY: the caller's out pointers and C string.
    unsafe {
        *destp = std::ptr::null_mut();
        match path::path2noderef(here, super::cbytes(address)) {
            Err(e) => e,
            Ok((node, h)) => {
                if lasthook.is_null() {
                    if !h.is_null() {
                        hook::unref_hook(h);
                    }
                } else {
                    *lasthook = h;
                }
                *destp = node;
                0
            }
        }
    }
}

/// `ng_path_parse` (in place; -1 when malformed).
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_path_parse(
    addr: *mut c_char,
    nodep: *mut *mut c_char,
    pathp: *mut *mut c_char,
    hookp: *mut *mut c_char,
) -> c_int {
    if addr.is_null() {
        return -1;
    }
    // SAFETY: `addr` is a writable C string owned by the caller.
    unsafe {
        let len = super::cbytes(addr).len();
        let buf = std::slice::from_raw_parts_mut(addr.cast::<u8>(), len + 1);
        let Some(pp) = path::path_parse(buf) else {
            return -1;
        };
        let at = |o: Option<usize>| o.map_or(std::ptr::null_mut(), |i| addr.add(i));
        if !nodep.is_null() {
            *nodep = at(pp.node);
        }
        if !pathp.is_null() {
            *pathp = at(pp.path);
        }
        if !hookp.is_null() {
            *hookp = at(pp.hook);
        }
    }
    0
}

/// `ng_rmnode(node, dummy1, dummy2, dummy3)`; also the function of the
/// shutdown item sent by ng_rmnode_self (the core compares against it).
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn rmnode_fn(node: node_p, _h: hook_p, _a1: *mut c_void, _a2: c_int) {
    // SAFETY: checked by the core.
    unsafe { super::rmnode(node) }
}

/// `ng_unname` (a no-op: names live until the node is freed).
///
/// # Safety
/// Called by node modules with the pointers the FreeBSD function takes.
pub unsafe extern "C" fn ngk_unname(_node: node_p) {}

struct DataObjs {
    sysctl: usize,
    qzone: usize,
    qdzone: usize,
}

fn data_objs() -> &'static DataObjs {
    static D: OnceLock<DataObjs> = OnceLock::new();
    D.get_or_init(|| {
        let oid = crate::arena::alloc_obj::<fbsd_sys::sysctl_oid>();
        // SAFETY: a fresh zeroed arena sysctl node, filled as SYSCTL_NODE(_net, graph) would.
        unsafe {
            (*oid).oid_number = -1;
            (*oid).oid_kind = fbsd_sys::CTLTYPE_NODE | fbsd_sys::CTLFLAG_RW;
            (*oid).oid_name = crate::arena::alloc_cstr("graph");
            (*oid).oid_fmt = crate::arena::alloc_cstr("N");
            (*oid).oid_descr = crate::arena::alloc_cstr("netgraph Family");
        }
        // uma_zone_t objects: opaque pointers to a (never used) zone blob.
        let zone = |name: &str| {
            let slot = crate::arena::alloc_obj::<usize>();
            let blob = crate::arena::alloc(256, 16);
            let _ = name;
            // SAFETY: fresh arena slot.
            unsafe { *slot = blob as usize };
            slot as usize
        };
        DataObjs {
            sysctl: oid as usize,
            qzone: zone("NetGraph items"),
            qdzone: zone("NetGraph data items"),
        }
    })
}

fn func_table() -> Vec<(&'static str, usize)> {
    vec![
        ("ng_address_ID", ngk_address_id as *const () as usize),
        ("ng_address_hook", ngk_address_hook as *const () as usize),
        ("ng_address_path", ngk_address_path as *const () as usize),
        ("ng_bypass", ngk_bypass as *const () as usize),
        ("ng_callout", ngk_callout as *const () as usize),
        ("callout_init", k_callout_init as *const () as usize),
        ("ng_uncallout", ngk_uncallout as *const () as usize),
        (
            "ng_uncallout_drain",
            ngk_uncallout_drain as *const () as usize,
        ),
        ("ng_findhook", ngk_findhook as *const () as usize),
        ("ng_findtype", ngk_findtype as *const () as usize),
        ("ng_free_item", ngk_free_item as *const () as usize),
        (
            "ng_make_node_common",
            ngk_make_node_common as *const () as usize,
        ),
        ("ng_make_node", ngk_make_node as *const () as usize),
        ("ng_mod_event", ngk_mod_event as *const () as usize),
        ("ng_name2noderef", ngk_name2noderef as *const () as usize),
        ("ng_name_node", ngk_name_node as *const () as usize),
        ("ng_newtype", ngk_newtype as *const () as usize),
        ("ng_rmtype", ngk_rmtype as *const () as usize),
        ("ng_node2ID", ngk_node2id as *const () as usize),
        ("ng_package_data", ngk_package_data as *const () as usize),
        ("ng_package_msg", ngk_package_msg as *const () as usize),
        (
            "ng_package_msg_self",
            ngk_package_msg_self as *const () as usize,
        ),
        (
            "ng_replace_retaddr",
            ngk_replace_retaddr as *const () as usize,
        ),
        ("ng_rmhook_self", ngk_rmhook_self as *const () as usize),
        ("ng_rmnode_self", ngk_rmnode_self as *const () as usize),
        ("ng_snd_item", ngk_snd_item as *const () as usize),
        ("ng_send_fn", ngk_send_fn as *const () as usize),
        ("ng_send_fn1", ngk_send_fn1 as *const () as usize),
        ("ng_send_fn2", ngk_send_fn2 as *const () as usize),
        ("ng_unref_hook", ngk_unref_hook as *const () as usize),
        ("ng_unref_node", ngk_unref_node as *const () as usize),
        ("ng_destroy_hook", ngk_destroy_hook as *const () as usize),
        ("ng_path2noderef", ngk_path2noderef as *const () as usize),
        ("ng_path_parse", ngk_path_parse as *const () as usize),
        ("ng_rmnode", rmnode_fn as *const () as usize),
        ("ng_unname", ngk_unname as *const () as usize),
    ]
}

fn data_table() -> Vec<(&'static str, usize)> {
    let d = data_objs();
    vec![
        ("ng_deadnode", super::dead_node() as usize),
        ("ng_deadhook", super::dead_hook() as usize),
        ("ng_deadtype", super::dead_type() as usize),
        ("M_NETGRAPH", item::netgraph_type() as usize),
        ("M_NETGRAPH_MSG", item::msg_type() as usize),
        // SYSCTL_DECL(_net_graph) in FreeBSD 15 names `sysctl___net_graph`;
        // the other two spellings are aliases of the same node.
        ("sysctl___net_graph", d.sysctl),
        ("sysctl__net_graph", d.sysctl),
        // SYSCTL_CHILDREN(&sysctl__net_graph): the oid_children list inside the node.
        (
            "sysctl__net_graph_children",
            d.sysctl + std::mem::offset_of!(fbsd_sys::sysctl_oid, oid_children),
        ),
        ("ng_qzone", d.qzone),
        ("ng_qdzone", d.qdzone),
    ]
}

/// Exports the netgraph core (functions and data objects).
pub fn register(ex: &mut Exports) {
    for (name, addr) in func_table() {
        ex.func(name, addr);
    }
    for (name, addr) in data_table() {
        ex.data(name, addr);
    }
}

/// Names of every symbol [`register`] exports (functions, then data).
pub fn exported_names() -> Vec<&'static str> {
    func_table()
        .into_iter()
        .chain(data_table())
        .map(|(n, _)| n)
        .collect()
}
