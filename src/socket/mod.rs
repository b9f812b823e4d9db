//! The `socket` node type (ng_socket(4)) and the `PF_NETGRAPH` protocol family.
//!
//! This module is safe Rust over the `kern` layer. The C glue
//! (`kmod/ng_socket_glue.c`) declares the kernel module around the
//! `ngsock_socket_type` record defined here.

use core::ffi::{c_char, c_int, c_void};

use fbsd_sys::{hook_p, item_p, module_t, ng_type, node_p};

use crate::kern::cell::KernelCell;
use crate::kern::errno::Errno;
use crate::kern::netgraph::{Hook, Item, Node};

/// The node type record registered with netgraph.
#[no_mangle]
pub static ngsock_socket_type: KernelCell<ng_type> = KernelCell::new(ng_type {
    version: fbsd_sys::NG_ABI_VERSION,
    name: c"socket".as_ptr(),
    mod_event: Some(ngs_mod_event),
    constructor: Some(ngs_constructor),
    rcvmsg: Some(ngs_rcvmsg),
    close: None,
    shutdown: Some(ngs_shutdown),
    newhook: Some(ngs_newhook),
    findhook: None,
    connect: None,
    rcvdata: Some(ngs_rcvdata),
    disconnect: Some(ngs_disconnect),
    cmdlist: core::ptr::null(),
    types: fbsd_sys::ng_type__bindgen_ty_1 {
        le_next: core::ptr::null_mut(),
        le_prev: core::ptr::null_mut(),
    },
    refs: 0,
});

unsafe extern "C" fn ngs_mod_event(_m: module_t, event: c_int, _data: *mut c_void) -> c_int {
    #[allow(clippy::cast_possible_wrap)]
    match event as u32 {
        fbsd_sys::MOD_LOAD | fbsd_sys::MOD_UNLOAD => 0,
        _ => Errno::EOPNOTSUPP.raw(),
    }
}

/// Socket nodes are created only by opening a control socket: mkpeer is refused.
unsafe extern "C" fn ngs_constructor(_node: node_p) -> c_int {
    Errno::EINVAL.raw()
}

unsafe extern "C" fn ngs_newhook(_node: node_p, _hook: hook_p, _name: *const c_char) -> c_int {
    Errno::EINVAL.raw()
}

unsafe extern "C" fn ngs_rcvmsg(_node: node_p, item: item_p, _lasthook: hook_p) -> c_int {
    // SAFETY: rcvmsg owns the item whatever it returns.
    drop(unsafe { Item::from_raw(item) });
    Errno::EINVAL.raw()
}

unsafe extern "C" fn ngs_rcvdata(_hook: hook_p, item: item_p) -> c_int {
    // SAFETY: rcvdata owns the item whatever it returns.
    drop(unsafe { Item::from_raw(item) });
    Errno::ENOTCONN.raw()
}

unsafe extern "C" fn ngs_shutdown(node: node_p) -> c_int {
    // SAFETY: netgraph passes a referenced node; shutdown drops the creation reference once.
    if let Some(n) = unsafe { Node::from_raw(node) } {
        // SAFETY: as above.
        unsafe { n.unref() };
    }
    0
}

unsafe extern "C" fn ngs_disconnect(hook: hook_p) -> c_int {
    // SAFETY: netgraph passes a referenced hook.
    let _ = unsafe { Hook::from_raw(hook) };
    0
}
