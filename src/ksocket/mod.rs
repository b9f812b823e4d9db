//! The `ksocket` node type (ng_ksocket(4)): a netgraph node that owns a kernel socket.
//!
//! This module is safe Rust over the `kern` layer. The C glue
//! (`kmod/ng_ksocket_glue.c`) declares the kernel module around the
//! `ngsock_ksocket_type` record defined here.

use core::ffi::{c_char, c_int, c_void};
use core::ptr::NonNull;

use fbsd_sys::{hook_p, item_p, malloc_type, ng_type, node_p};

use crate::kern::cell::KernelCell;
use crate::kern::errno::{to_raw, Errno, KResult};
use crate::kern::malloc::{KBox, MallocType};
use crate::kern::netgraph::{Hook, Item, Node};

extern "C" {
    /// `MALLOC_DEFINE(M_NETGRAPH_KSOCKET, "netgraph_ksock", ...)` in the glue.
    static mut M_NETGRAPH_KSOCKET: [malloc_type; 1];
}

fn mtype() -> MallocType {
    // SAFETY: the glue defines and registers this malloc type for the module's lifetime.
    unsafe { MallocType::from_raw((&raw mut M_NETGRAPH_KSOCKET).cast()) }
}

/// Per-node private state.
struct Priv {
    /// The node's single hook, if connected.
    hook: Option<NonNull<fbsd_sys::ng_hook>>,
}

/// The node type record registered with netgraph.
#[no_mangle]
pub static ngsock_ksocket_type: KernelCell<ng_type> = KernelCell::new(ng_type {
    version: fbsd_sys::NG_ABI_VERSION,
    name: c"ksocket".as_ptr(),
    mod_event: None,
    constructor: Some(ks_constructor),
    rcvmsg: Some(ks_rcvmsg),
    close: None,
    shutdown: Some(ks_shutdown),
    newhook: Some(ks_newhook),
    findhook: None,
    connect: None,
    rcvdata: Some(ks_rcvdata),
    disconnect: Some(ks_disconnect),
    cmdlist: core::ptr::null(),
    types: fbsd_sys::ng_type__bindgen_ty_1 {
        le_next: core::ptr::null_mut(),
        le_prev: core::ptr::null_mut(),
    },
    refs: 0,
});

fn private<'a>(node: Node<'a>) -> Option<&'a mut Priv> {
    // SAFETY: nd_private is either NULL or the `Priv` installed by the
    // constructor, which lives until shutdown; netgraph runs writers of
    // this node one at a time.
    unsafe { node.private_raw().cast::<Priv>().as_mut() }
}

fn constructor(node: Node<'_>) -> KResult<()> {
    let p = KBox::try_new(Priv { hook: None }, mtype())?;
    node.set_private_raw(KBox::into_raw(p).cast::<c_void>());
    Ok(())
}

fn newhook(node: Node<'_>, hook: Hook<'_>) -> KResult<()> {
    let p = private(node).ok_or(Errno::EINVAL)?;
    if p.hook.is_some() {
        return Err(Errno::EISCONN);
    }
    // Socket creation from the hook name is not implemented yet.
    let _ = hook;
    Err(Errno::EPROTONOSUPPORT)
}

fn shutdown(node: Node<'_>) {
    if let Some(p) = NonNull::new(node.private_raw().cast::<Priv>()) {
        node.set_private_raw(core::ptr::null_mut());
        // SAFETY: the pointer was produced by KBox::into_raw in the
        // constructor with this malloc type and is released once, here.
        drop(unsafe { KBox::from_raw(p, mtype()) });
    }
    // SAFETY: shutdown drops the creation reference exactly once.
    unsafe { node.unref() };
}

unsafe extern "C" fn ks_constructor(node: node_p) -> c_int {
    // SAFETY: netgraph passes a referenced node.
    match unsafe { Node::from_raw(node) } {
        Some(n) => to_raw(constructor(n)),
        None => Errno::EINVAL.raw(),
    }
}

unsafe extern "C" fn ks_newhook(node: node_p, hook: hook_p, _name: *const c_char) -> c_int {
    // SAFETY: netgraph passes a referenced node and hook for the call.
    match unsafe { (Node::from_raw(node), Hook::from_raw(hook)) } {
        (Some(n), Some(h)) => to_raw(newhook(n, h)),
        _ => Errno::EINVAL.raw(),
    }
}

unsafe extern "C" fn ks_rcvmsg(_node: node_p, item: item_p, _lasthook: hook_p) -> c_int {
    // SAFETY: rcvmsg owns the item whatever it returns.
    drop(unsafe { Item::from_raw(item) });
    Errno::EINVAL.raw()
}

unsafe extern "C" fn ks_rcvdata(_hook: hook_p, item: item_p) -> c_int {
    // SAFETY: rcvdata owns the item (and its mbuf) whatever it returns.
    drop(unsafe { Item::from_raw(item) });
    Errno::ENOTCONN.raw()
}

unsafe extern "C" fn ks_shutdown(node: node_p) -> c_int {
    // SAFETY: netgraph passes a referenced node.
    if let Some(n) = unsafe { Node::from_raw(node) } {
        shutdown(n);
    }
    0
}

unsafe extern "C" fn ks_disconnect(hook: hook_p) -> c_int {
    // SAFETY: netgraph passes a referenced hook.
    if let Some(node) = unsafe { Hook::from_raw(hook) }.and_then(Hook::node) {
        if node.is_valid() {
            let _ = node.rmnode_self();
        }
    }
    0
}
