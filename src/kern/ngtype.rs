//! Node types: a safe trait for the methods of a netgraph node type, and
//! the adapter that turns an implementation into the C method table
//! (`struct ng_type`) netgraph calls.
//!
//! The trampolines here are the only place where the raw pointers netgraph
//! passes to a method become [`Node`], [`Hook`] and [`Item`] values; the
//! node type itself is written in safe Rust against the trait.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::marker::PhantomData;

use fbsd_sys::{hook_p, item_p, module_t, ng_cmdlist, ng_hook, ng_type, node_p};

use super::errno::{to_raw, Errno, KResult};
use super::netgraph::{Hook, Item, Node};
use super::sync::KArc;

/// A module event delivered to a node type (`MOD_LOAD`, `MOD_UNLOAD`...).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ModEvent {
    Load,
    Unload,
    Quiesce,
    Shutdown,
    Other(i32),
}

/// The methods of a netgraph node type. Methods a type does not provide
/// keep netgraph's default; say which with the `HAS_*` constants.
pub trait NodeType: 'static {
    /// The node's private data, shared with whatever else refers to it.
    type Private: Send + Sync;

    /// The type record registered with netgraph (a `KernelCell` static).
    fn record() -> *mut ng_type;

    /// The type provides `mod_event`.
    const HAS_MOD_EVENT: bool = false;
    /// The type provides `findhook`.
    const HAS_FINDHOOK: bool = false;
    /// The type provides `connect`.
    const HAS_CONNECT: bool = false;

    /// Module load/unload of the type.
    fn mod_event(_ev: ModEvent) -> KResult<()> {
        Ok(())
    }
    /// A node of this type is being created (NGM_MKPEER or by the type itself).
    fn constructor(node: Node<'_>) -> KResult<()>;
    /// A control message arrived; the handler owns the item.
    fn rcvmsg(node: Node<'_>, item: Item, lasthook: Option<Hook<'_>>) -> KResult<()>;
    /// The node is being shut down: free private data. The adapter drops
    /// the node's creation reference afterwards (exactly once).
    fn shutdown(node: Node<'_>);
    /// A hook named `name` is being added.
    fn newhook(node: Node<'_>, hook: Hook<'_>, name: &[u8]) -> KResult<()>;
    /// Looks a hook up by name.
    fn findhook<'a>(_node: Node<'a>, _name: &[u8]) -> Option<Hook<'a>> {
        None
    }
    /// A hook finished connecting.
    fn connect(_hook: Hook<'_>) -> KResult<()> {
        Ok(())
    }
    /// Data arrived on a hook; the handler owns the item.
    fn rcvdata(hook: Hook<'_>, item: Item) -> KResult<()>;
    /// A hook is being removed.
    fn disconnect(hook: Hook<'_>);
}

/// Installs `p` as the private data of `node`, a node of type `T`
/// (`NG_NODE_SET_PRIVATE`). Refused with `EINVAL` for another type's node
/// or when private data is already installed.
pub fn set_private<T: NodeType>(node: Node<'_>, p: KArc<T::Private>) -> KResult<()> {
    if super::ngops::node_type(node) != T::record().cast_const() || !node.private_raw().is_null() {
        return Err(Errno::EINVAL);
    }
    node.set_private_raw(p.into_raw());
    Ok(())
}

/// A new reference to the private data of `node`, if it is a node of type
/// `T` that has some.
pub fn private<T: NodeType>(node: Node<'_>) -> Option<KArc<T::Private>> {
    if super::ngops::node_type(node) != T::record().cast_const() {
        return None;
    }
    // SAFETY: nodes of type T only ever hold a KArc<T::Private> (installed by
    // `set_private`) or NULL in nd_private, and the node's reference keeps
    // it for the duration of the call.
    unsafe { KArc::clone_raw(node.private_raw()) }
}

/// Removes and returns the private data of `node` (a node of type `T`).
pub fn take_private<T: NodeType>(node: Node<'_>) -> Option<KArc<T::Private>> {
    if super::ngops::node_type(node) != T::record().cast_const() {
        return None;
    }
    let p = node.private_raw();
    node.set_private_raw(core::ptr::null_mut());
    // SAFETY: as in `private`; the slot's reference moves to the caller.
    unsafe { KArc::from_raw(p) }
}

/// The adapter from a [`NodeType`] to the C method table.
pub struct Adapter<T: NodeType>(PhantomData<T>);

impl<T: NodeType> Adapter<T> {
    /// The `struct ng_type` record for `T`, named `name`, with `cmdlist`
    /// (NULL for none). Register it by address (a `KernelCell` static).
    pub const fn record(name: &'static CStr, cmdlist: *const ng_cmdlist) -> ng_type {
        ng_type {
            version: fbsd_sys::NG_ABI_VERSION,
            name: name.as_ptr(),
            mod_event: if T::HAS_MOD_EVENT {
                Some(Self::mod_event)
            } else {
                None
            },
            constructor: Some(Self::constructor),
            rcvmsg: Some(Self::rcvmsg),
            close: None,
            shutdown: Some(Self::shutdown),
            newhook: Some(Self::newhook),
            findhook: if T::HAS_FINDHOOK {
                Some(Self::findhook)
            } else {
                None
            },
            connect: if T::HAS_CONNECT {
                Some(Self::connect)
            } else {
                None
            },
            rcvdata: Some(Self::rcvdata),
            disconnect: Some(Self::disconnect),
            cmdlist,
            types: fbsd_sys::ng_type__bindgen_ty_1 {
                le_next: core::ptr::null_mut(),
                le_prev: core::ptr::null_mut(),
            },
            refs: 0,
        }
    }

    unsafe extern "C" fn mod_event(_m: module_t, event: c_int, _d: *mut c_void) -> c_int {
        #[allow(clippy::cast_sign_loss)]
        let ev = match event as u32 {
            fbsd_sys::MOD_LOAD => ModEvent::Load,
            fbsd_sys::MOD_UNLOAD => ModEvent::Unload,
            fbsd_sys::MOD_QUIESCE => ModEvent::Quiesce,
            fbsd_sys::MOD_SHUTDOWN => ModEvent::Shutdown,
            _ => ModEvent::Other(event),
        };
        to_raw(T::mod_event(ev))
    }

    unsafe extern "C" fn constructor(node: node_p) -> c_int {
        // SAFETY: netgraph passes a referenced node for the call.
        match unsafe { Node::from_raw(node) } {
            Some(n) => to_raw(T::constructor(n)),
            None => Errno::EINVAL.raw(),
        }
    }

    unsafe extern "C" fn rcvmsg(node: node_p, item: item_p, lasthook: hook_p) -> c_int {
        // SAFETY: rcvmsg owns the item whatever it returns; node and
        // lasthook (possibly NULL) are referenced for the call.
        let (item, node, hook) = unsafe {
            (
                Item::from_raw(item),
                Node::from_raw(node),
                Hook::from_raw(lasthook),
            )
        };
        match (node, item) {
            (Some(n), Some(i)) => to_raw(T::rcvmsg(n, i, hook)),
            _ => Errno::EINVAL.raw(),
        }
    }

    unsafe extern "C" fn shutdown(node: node_p) -> c_int {
        // SAFETY: netgraph passes a referenced node.
        if let Some(n) = unsafe { Node::from_raw(node) } {
            T::shutdown(n);
            // SAFETY: a shutdown method drops the creation reference exactly
            // once; none of our types revives its node.
            unsafe { n.unref() };
        }
        0
    }

    unsafe extern "C" fn newhook(node: node_p, hook: hook_p, name: *const c_char) -> c_int {
        // SAFETY: node and hook are referenced for the call; name is NULL or
        // a NUL-terminated string owned by netgraph for the call.
        let (n, h, name) = unsafe {
            (
                Node::from_raw(node),
                Hook::from_raw(hook),
                super::ngops::cstr_arg(name),
            )
        };
        match (n, h) {
            (Some(n), Some(h)) => to_raw(T::newhook(n, h, name)),
            _ => Errno::EINVAL.raw(),
        }
    }

    unsafe extern "C" fn findhook(node: node_p, name: *const c_char) -> hook_p {
        // SAFETY: as for newhook.
        let (n, name) = unsafe { (Node::from_raw(node), super::ngops::cstr_arg(name)) };
        n.and_then(|n| T::findhook(n, name))
            .map_or(core::ptr::null_mut::<ng_hook>(), Hook::as_ptr)
    }

    unsafe extern "C" fn connect(hook: hook_p) -> c_int {
        // SAFETY: netgraph passes a referenced hook.
        match unsafe { Hook::from_raw(hook) } {
            Some(h) => to_raw(T::connect(h)),
            None => Errno::EINVAL.raw(),
        }
    }

    unsafe extern "C" fn rcvdata(hook: hook_p, item: item_p) -> c_int {
        // SAFETY: rcvdata owns the item (and its mbuf) whatever it returns.
        let (h, i) = unsafe { (Hook::from_raw(hook), Item::from_raw(item)) };
        match (h, i) {
            (Some(h), Some(i)) => to_raw(T::rcvdata(h, i)),
            _ => Errno::EINVAL.raw(),
        }
    }

    unsafe extern "C" fn disconnect(hook: hook_p) -> c_int {
        // SAFETY: netgraph passes a referenced hook.
        if let Some(h) = unsafe { Hook::from_raw(hook) } {
            T::disconnect(h);
        }
        0
    }
}

/// A node just created by its own type (not through NGM_MKPEER), owning its
/// creation reference until it is handed to the node with
/// [`NewNode::into_creation_ref`]. Dropping it instead removes the node,
/// with sleeping allocations ([`super::ngops::shutdown_sleeping`]): create
/// and drop it only where sleeping is allowed (e.g. `pr_attach`).
pub struct NewNode {
    node: core::ptr::NonNull<fbsd_sys::ng_node>,
}

/// `ng_make_node_common` on `T`'s own record (the constructor is not run).
pub fn make_node<T: NodeType>() -> KResult<NewNode> {
    let mut n: *mut fbsd_sys::ng_node = core::ptr::null_mut();
    // SAFETY: T::record() is T's registered type record.
    Errno::check(unsafe { fbsd_sys::ng_make_node_common(T::record(), &mut n) })?;
    core::ptr::NonNull::new(n)
        .map(|node| NewNode { node })
        .ok_or(Errno::ENOMEM)
}

impl NewNode {
    /// Borrows the node.
    pub fn node(&self) -> Node<'_> {
        // SAFETY: this value owns the creation reference.
        unsafe { Node::from_nonnull(self.node) }
    }

    /// The creation reference now belongs to the node; its type's shutdown
    /// (through [`Adapter`]) drops it.
    pub fn into_creation_ref(self) {
        core::mem::forget(self);
    }
}

impl Drop for NewNode {
    fn drop(&mut self) {
        // Shutting the node down drops the creation reference via the adapter.
        let _ = super::ngops::shutdown_sleeping(self.node());
    }
}
