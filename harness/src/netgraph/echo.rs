//! The `echo` node type (docs/netgraph-model.md §8.1), built into the harness.
//!
//! Every message that reaches rcvmsg is sent straight back to its return
//! address with NGF_RESP set; data is sent back out of the hook it arrived
//! on; the node shuts down when its last hook goes.

use std::ffi::c_int;

use fbsd_sys::{hook_p, item_p, ng_type, node_p};

use super::core::exports as k;
use super::macros::{fwd_item_hook, hook_node, ngi_get_msg, node_is_valid, numhooks, respond_msg};

/// NGM_ECHO_COOKIE.
pub const NGM_ECHO_COOKIE: u32 = fbsd_sys::NGM_ECHO_COOKIE;

/// A new `struct ng_type` for echo (arena object, not yet registered).
pub(crate) fn new_type() -> *mut ng_type {
    let t = crate::arena::alloc_obj::<ng_type>();
    // SAFETY: fresh zeroed arena type object.
    unsafe {
        (*t).version = fbsd_sys::NG_ABI_VERSION;
        (*t).name = crate::arena::alloc_cstr("echo");
        (*t).constructor = Some(nge_constructor);
        (*t).rcvmsg = Some(nge_rcvmsg);
        (*t).rcvdata = Some(nge_rcvdata);
        (*t).disconnect = Some(nge_disconnect);
    }
    t
}

unsafe extern "C" fn nge_constructor(_node: node_p) -> c_int {
    0
}

unsafe extern "C" fn nge_rcvmsg(node: node_p, item: item_p, _lasthook: hook_p) -> c_int {
    // SAFETY: the core hands us a live message item we now own.
    unsafe {
        let msg = ngi_get_msg(item);
        (*msg).header.flags |= fbsd_sys::NGF_RESP;
        respond_msg(node, item, msg).unwrap_or(0)
    }
}

unsafe extern "C" fn nge_rcvdata(hook: hook_p, item: item_p) -> c_int {
    // SAFETY: the core hands us a live data item and its arrival hook.
    unsafe { fwd_item_hook(item, hook, 0) }
}

unsafe extern "C" fn nge_disconnect(hook: hook_p) -> c_int {
    // SAFETY: the core calls disconnect with the hook still pointing at its node.
    unsafe {
        let node = hook_node(hook);
        if numhooks(node) == 0 && node_is_valid(node) {
            k::ngk_rmnode_self(node);
        }
    }
    0
}
