//! Rust equivalents of the netgraph.h / ng_message.h macros that node modules
//! compile inline (NG_MKMESSAGE, NG_RESPOND_MSG, NG_FWD_ITEM_HOOK, NGI_GET_M,
//! NG_NODE_REF...), for node types written in Rust inside the harness (echo,
//! hole, harnessctl, test types). They go through the same exported entry
//! points a loaded module reaches, so the core sees exactly what it would see
//! from C module code.
//!
//! All functions are `unsafe`: they take raw netgraph pointers that must be
//! live, as the C macros do.

use std::ffi::c_int;

use fbsd_sys::{hook_p, item_p, mbuf, ng_mesg, ng_mesg_ng_msghdr, node_p};

use super::core::exports as k;
use super::core::item::msg_type;
use crate::kern::malloc;

/// Size of `struct ng_mesg`'s header.
pub const NG_MESG_SIZE: usize = std::mem::size_of::<ng_mesg_ng_msghdr>();

/// NG_MKMESSAGE: zeroed message of `len` argument bytes (M_NETGRAPH_MSG),
/// version 8, cookie, cmd, arglen and cmdstr set. NULL on M_NOWAIT failure.
pub fn mk_message(cookie: u32, cmd: u32, len: usize, cmdstr: &str, how: c_int) -> *mut ng_mesg {
    let p = malloc::kmalloc(
        NG_MESG_SIZE + len,
        msg_type(),
        how | fbsd_sys::M_ZERO as c_int,
    )
    .cast::<ng_mesg>();
    if p.is_null() {
        return p;
    }
    // SAFETY: fresh zeroed allocation large enough for the header.
    unsafe {
        let h = &mut (*p).header;
        h.version = fbsd_sys::NG_VERSION as u8;
        h.typecookie = cookie;
        h.cmd = cmd;
        h.arglen = len as u32;
        let b = cmdstr.as_bytes();
        let n = b.len().min(h.cmdstr.len() - 1);
        h.cmdstr[..n].copy_from_slice(&b[..n]);
    }
    p
}

/// NG_MKRESPONSE: a response to `msg` with `len` argument bytes.
///
/// # Safety
/// `msg` must be a live message.
pub unsafe fn mk_response(msg: *const ng_mesg, len: usize, how: c_int) -> *mut ng_mesg {
    let p = malloc::kmalloc(
        NG_MESG_SIZE + len,
        msg_type(),
        how | fbsd_sys::M_ZERO as c_int,
    )
    .cast::<ng_mesg>();
    if p.is_null() {
        return p;
    }
    // SAFETY: fresh allocation; `msg` is live.
    unsafe {
        let h = &mut (*p).header;
        let q = &(*msg).header;
        h.version = fbsd_sys::NG_VERSION as u8;
        h.arglen = len as u32;
        h.token = q.token;
        h.typecookie = q.typecookie;
        h.cmd = q.cmd;
        h.cmdstr = q.cmdstr;
        h.flags |= fbsd_sys::NGF_RESP;
    }
    p
}

/// The argument bytes of a message (`msg->data`).
///
/// # Safety
/// `msg` must be a live message.
pub unsafe fn msg_data(msg: *mut ng_mesg) -> *mut u8 {
    // SAFETY: the data follows the header.
    unsafe { msg.cast::<u8>().add(NG_MESG_SIZE) }
}

/// NG_FREE_MSG.
pub fn free_msg(msg: *mut ng_mesg) {
    if !msg.is_null() {
        malloc::kfree(msg.cast(), msg_type());
    }
}

/// NG_FREE_M.
pub fn free_m(m: *mut mbuf) {
    if !m.is_null() {
        super::core::item::free_mbuf(m);
    }
}

/// NGI_GET_MSG: moves the message out of the item.
///
/// # Safety
/// `item` must be a live message item.
pub unsafe fn ngi_get_msg(item: item_p) -> *mut ng_mesg {
    // SAFETY: guaranteed by the caller.
    unsafe { std::mem::replace(&mut (*item).body.msg.msg_msg, std::ptr::null_mut()) }
}

/// NGI_MSG: peeks at the message (the item still owns it).
///
/// # Safety
/// `item` must be a live message item.
pub unsafe fn ngi_msg(item: item_p) -> *mut ng_mesg {
    // SAFETY: guaranteed by the caller.
    unsafe { (*item).body.msg.msg_msg }
}

/// NGI_GET_M: moves the mbuf out of the item.
///
/// # Safety
/// `item` must be a live data item.
pub unsafe fn ngi_get_m(item: item_p) -> *mut mbuf {
    // SAFETY: guaranteed by the caller.
    unsafe { std::mem::replace(&mut (*item).body.da_m, std::ptr::null_mut()) }
}

/// NGI_RETADDR.
///
/// # Safety
/// `item` must be a live message item.
pub unsafe fn ngi_retaddr(item: item_p) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { (*item).body.msg.msg_retaddr }
}

/// NG_FREE_ITEM.
///
/// # Safety
/// `item` must be an item the caller owns.
pub unsafe fn free_item(item: item_p) {
    // SAFETY: forwarded to ng_free_item.
    unsafe { k::ngk_free_item(item) }
}

/// NG_RESPOND_MSG(error, here, item, resp): with a response, re-uses the item
/// to send it (queued) to the return address and returns `Some(result)`;
/// without one, frees the item and returns `None` (error untouched).
///
/// # Safety
/// `item` is the (message taken out) request item the caller owns.
pub unsafe fn respond_msg(here: node_p, item: item_p, resp: *mut ng_mesg) -> Option<c_int> {
    // SAFETY: forwarded to the exported entry points as the macro does.
    unsafe {
        if resp.is_null() {
            k::ngk_free_item(item);
            return None;
        }
        let dest = (*item).body.msg.msg_retaddr;
        (*item).body.msg.msg_retaddr = 0;
        (*item).body.msg.msg_msg = resp;
        let mut e = k::ngk_address_id(here, item, dest, 0);
        if e == 0 {
            e = k::ngk_snd_item(item, fbsd_sys::NG_QUEUE as c_int);
        }
        Some(e)
    }
}

/// NG_FWD_ITEM_HOOK_FLAGS(error, item, hook, flags).
///
/// # Safety
/// `item` is an item the caller owns; `hook` one of its node's hooks.
pub unsafe fn fwd_item_hook(item: item_p, hook: hook_p, flags: c_int) -> c_int {
    // SAFETY: forwarded to the exported entry points.
    unsafe {
        let e = k::ngk_address_hook(std::ptr::null_mut(), item, hook, 0);
        if e != 0 {
            return e;
        }
        k::ngk_snd_item(item, flags)
    }
}

/// NG_SEND_DATA_FLAGS(error, hook, m, flags): the mbuf is always consumed.
/// The data travels inside the network epoch (entered here if the caller
/// is not inside it, as a node sending data would be).
///
/// # Safety
/// `hook` is a hook of the caller's node; `m` a packet-header chain it owns.
pub unsafe fn send_data(hook: hook_p, m: *mut mbuf, flags: c_int) -> c_int {
    // SAFETY: forwarded to the exported entry points.
    unsafe {
        let item = k::ngk_package_data(m, flags);
        if item.is_null() {
            return fbsd_sys::ENOMEM as c_int;
        }
        crate::kern::epoch::in_net(|| fwd_item_hook(item, hook, flags))
    }
}

/// NG_SEND_MSG_PATH(error, here, msg, path, retaddr).
///
/// # Safety
/// `here` is the sending node; `msg` a message the caller owns.
pub unsafe fn send_msg_path(here: node_p, msg: *mut ng_mesg, path: &str, retaddr: u32) -> c_int {
    let mut p = path.as_bytes().to_vec();
    p.push(0);
    // SAFETY: forwarded to the exported entry points.
    unsafe {
        let item = k::ngk_package_msg(msg, fbsd_sys::NG_NOFLAGS as c_int);
        if item.is_null() {
            return fbsd_sys::ENOMEM as c_int;
        }
        let e = k::ngk_address_path(here, item, p.as_ptr().cast(), retaddr);
        if e != 0 {
            return e;
        }
        k::ngk_snd_item(item, 0)
    }
}

/// NG_SEND_MSG_ID(error, here, msg, ID, retaddr).
///
/// # Safety
/// As `send_msg_path`.
pub unsafe fn send_msg_id(here: node_p, msg: *mut ng_mesg, id: u32, retaddr: u32) -> c_int {
    // SAFETY: forwarded to the exported entry points.
    unsafe {
        let item = k::ngk_package_msg(msg, fbsd_sys::NG_NOFLAGS as c_int);
        if item.is_null() {
            return fbsd_sys::ENOMEM as c_int;
        }
        let e = k::ngk_address_id(here, item, id, retaddr);
        if e != 0 {
            return e;
        }
        k::ngk_snd_item(item, 0)
    }
}

/// NG_SEND_MSG_HOOK(error, here, msg, hook, retaddr).
///
/// # Safety
/// As `send_msg_path`; `hook` is one of `here`'s hooks.
pub unsafe fn send_msg_hook(here: node_p, msg: *mut ng_mesg, hook: hook_p, retaddr: u32) -> c_int {
    // SAFETY: forwarded to the exported entry points.
    unsafe {
        let item = k::ngk_package_msg(msg, fbsd_sys::NG_NOFLAGS as c_int);
        if item.is_null() {
            return fbsd_sys::ENOMEM as c_int;
        }
        let e = k::ngk_address_hook(here, item, hook, retaddr);
        if e != 0 {
            return e;
        }
        k::ngk_snd_item(item, 0)
    }
}

/// NG_NODE_REF (inline atomic increment).
///
/// # Safety
/// `node` must be live.
pub unsafe fn node_ref(node: node_p) {
    super::core::node_ref(node);
}

/// NG_NODE_UNREF.
///
/// # Safety
/// `node` must be live and referenced by the caller.
pub unsafe fn node_unref(node: node_p) {
    // SAFETY: forwarded.
    unsafe { k::ngk_unref_node(node) }
}

/// NG_HOOK_REF.
///
/// # Safety
/// `hook` must be live.
pub unsafe fn hook_ref(hook: hook_p) {
    super::core::hook_ref(hook);
}

/// NG_HOOK_UNREF.
///
/// # Safety
/// `hook` must be live and referenced by the caller.
pub unsafe fn hook_unref(hook: hook_p) {
    // SAFETY: forwarded.
    unsafe { k::ngk_unref_hook(hook) }
}

/// NG_NODE_NUMHOOKS.
///
/// # Safety
/// `node` must be live.
pub unsafe fn numhooks(node: node_p) -> i32 {
    // SAFETY: guaranteed by the caller.
    unsafe { (*node).nd_numhooks }
}

/// NG_NODE_IS_VALID.
///
/// # Safety
/// `node` must be live.
pub unsafe fn node_is_valid(node: node_p) -> bool {
    // SAFETY: guaranteed by the caller.
    unsafe { (*node).nd_flags & fbsd_sys::NGF_INVALID as c_int == 0 }
}

/// NG_HOOK_NODE.
///
/// # Safety
/// `hook` must be live.
pub unsafe fn hook_node(hook: hook_p) -> node_p {
    // SAFETY: guaranteed by the caller.
    unsafe { (*hook).hk_node }
}

/// NG_HOOK_NAME as bytes.
///
/// # Safety
/// `hook` must be live.
pub unsafe fn hook_name<'a>(hook: hook_p) -> &'a [u8] {
    // SAFETY: guaranteed by the caller.
    super::core::field_str(unsafe { &(*hook).hk_name })
}
