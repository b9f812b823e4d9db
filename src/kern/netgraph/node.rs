//! Nodes: borrowed ([`Node`]), counted ([`NodeRef`]) and newly made by
//! their own type ([`NewNode`]).

use core::ffi::CStr;
use core::marker::PhantomData;
use core::ptr::NonNull;

use fbsd_sys::{ng_node, ng_type};

use super::hook::Hook;
use super::msg::Msg;
use super::ngtype::{NodeFn, NodeType, Private, SendFlags, TypeRecord};
use crate::kern::errno::{Errno, KResult};
use crate::kern::ffi::ngsock_node_ref;

#[allow(clippy::cast_possible_wrap)]
const NGF_INVALID: i32 = fbsd_sys::NGF_INVALID as i32;

/// A node, borrowed.
///
/// # Invariants
///
/// `raw` points to a node netgraph keeps referenced for `'a` (a method of
/// the node is running, or the borrow comes from a [`NodeRef`]).
#[derive(Clone, Copy)]
pub struct Node<'a> {
    raw: NonNull<ng_node>,
    _life: PhantomData<&'a ng_node>,
}

impl<'a> Node<'a> {
    /// Wraps a node pointer netgraph handed to a method.
    ///
    /// # Safety
    ///
    /// `raw` must be NULL or a node that stays referenced for `'a`.
    pub(in crate::kern) unsafe fn from_raw(raw: *mut ng_node) -> Option<Node<'a>> {
        NonNull::new(raw).map(|raw| Node {
            raw,
            _life: PhantomData,
        })
    }

    /// As [`Node::from_raw`], for a pointer known to be non-NULL.
    ///
    /// # Safety
    ///
    /// As for [`Node::from_raw`].
    pub(in crate::kern) unsafe fn from_nonnull(raw: NonNull<ng_node>) -> Node<'a> {
        Node {
            raw,
            _life: PhantomData,
        }
    }

    /// Raw pointer, for kernel calls.
    pub(in crate::kern) fn as_ptr(self) -> *mut ng_node {
        self.raw.as_ptr()
    }

    /// The node's ID (`NG_NODE_ID`).
    pub fn id(self) -> u32 {
        // SAFETY: the node is referenced for 'a (type invariant); nd_ID
        // never changes.
        unsafe { (*self.raw.as_ptr()).nd_ID }
    }

    /// Number of hooks (`NG_NODE_NUMHOOKS`).
    pub fn num_hooks(self) -> i32 {
        // SAFETY: the node is referenced for 'a; an int read.
        unsafe { (*self.raw.as_ptr()).nd_numhooks }
    }

    /// `NG_NODE_IS_VALID`: not being shut down.
    pub fn is_valid(self) -> bool {
        // SAFETY: the node is referenced for 'a; an int read.
        unsafe { (*self.raw.as_ptr()).nd_flags & NGF_INVALID == 0 }
    }

    /// The node's name, empty if unnamed.
    pub fn name(self) -> &'a [u8] {
        // SAFETY: nd_name is a NUL-terminated array inside the node, which
        // is referenced for 'a.
        let name = unsafe { &(*self.raw.as_ptr()).nd_name };
        crate::kern::cstr_bytes(name)
    }

    /// Names the node (`ng_name_node`).
    pub fn set_name(self, name: &CStr) -> KResult<()> {
        // SAFETY: the node is referenced; the name is copied.
        Errno::check(unsafe { fbsd_sys::ng_name_node(self.raw.as_ptr(), name.as_ptr()) })
    }

    /// True for nodes of the type registered with `record`.
    pub fn is_of(self, record: &'static TypeRecord) -> bool {
        self.type_ptr() == record.as_ptr().cast_const()
    }

    pub(in crate::kern) fn type_ptr(self) -> *const ng_type {
        // SAFETY: nd_type is set at creation and never changes.
        unsafe { (*self.raw.as_ptr()).nd_type }
    }

    /// The node's first hook. Only the node's own methods may walk its
    /// hooks (see [`super::Writer::first_hook`]).
    pub(in crate::kern) fn first_hook(self) -> Option<Hook<'a>> {
        // SAFETY: callers are methods of the node, during which its hook
        // list only changes under the node's writer gate: a hook found here
        // stays attached (hence referenced) for the borrow.
        unsafe { Hook::from_raw((*self.raw.as_ptr()).nd_hooks.lh_first) }
    }

    /// A counted reference (`NG_NODE_REF`).
    pub fn to_ref(self) -> NodeRef {
        // SAFETY: the node is referenced; NG_NODE_REF is an atomic add.
        unsafe { ngsock_node_ref(self.raw.as_ptr()) };
        NodeRef { raw: self.raw }
    }

    /// Asks netgraph to shut this node down (`ng_rmnode_self`): queued as a
    /// function item allocated without sleeping, so usable anywhere. The
    /// node is marked invalid first, even when the item cannot be had: the
    /// error then lets the caller revive it ([`RemoveFailed::revive`]).
    pub fn remove(self) -> Result<(), RemoveFailed<'a>> {
        // SAFETY: the node is referenced for 'a.
        match Errno::check(unsafe { fbsd_sys::ng_rmnode_self(self.raw.as_ptr()) }) {
            Ok(()) => Ok(()),
            Err(errno) => Err(RemoveFailed { node: self, errno }),
        }
    }

    /// Shuts the node down from a context that may sleep (a socket system
    /// call, no lock held), with allocations that cannot fail: an
    /// `NGM_SHUTDOWN` message from the node to itself, allocated with
    /// `M_WAITOK` and packaged with `NG_WAITOK`, applied at once when the
    /// node is idle. ([`Node::remove`] instead marks the node invalid and
    /// then queues an item allocated without sleeping: when that fails the
    /// node can never be reached again.) A node that is already invalid
    /// only accepts a removal, so it gets [`Node::remove`] again.
    pub fn remove_sleeping(self) -> KResult<()> {
        if !self.is_valid() {
            return self.remove().map_err(|f| f.errno());
        }
        match Msg::shutdown_sleeping().and_then(|msg| msg.send_to_self_sleeping(self)) {
            Some(r) => r,
            None => self.remove().map_err(|f| f.errno()),
        }
    }

    /// `ng_send_fn1(node, NULL, f, NULL, arg2, flags)`: asks netgraph to run
    /// `f` as a writer of the node (now if idle and `flags` lacks
    /// [`SendFlags::QUEUE`], otherwise from a queue thread). Without
    /// [`SendFlags::WAITOK`] this never sleeps. `ENOMEM` when no item is
    /// available; `f` then never runs.
    pub fn send_fn(self, f: NodeFn, arg2: i32, flags: SendFlags) -> KResult<()> {
        // SAFETY: the node is referenced for the borrow; netgraph takes its
        // own reference for the item; arg1 is NULL, so the item owns nothing.
        Errno::check(unsafe {
            fbsd_sys::ng_send_fn1(
                self.raw.as_ptr(),
                core::ptr::null_mut(),
                Some(f.raw()),
                core::ptr::null_mut(),
                arg2,
                flags.raw(),
            )
        })
    }

    /// Installs private data on a node that has none (constructor, or a
    /// node made by its type). Fails, handing `p` back, for a node of
    /// another type or one that already has private data.
    pub(in crate::kern) fn install<T: NodeType>(self, p: Private<T>) -> Result<(), Private<T>> {
        if !self.is_of(T::record()) {
            return Err(p);
        }
        p.install_on(self)
    }
}

/// A removal that netgraph could not queue ([`Node::remove`]): the node is
/// marked invalid, with nothing queued to remove it.
#[must_use]
pub struct RemoveFailed<'a> {
    node: Node<'a>,
    errno: Errno,
}

impl RemoveFailed<'_> {
    /// Why (`ENOMEM`: no item).
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// `NG_NODE_REVIVE`: clears the invalid flag, so that the node stays
    /// reachable instead of lingering unreachable for ever.
    pub fn revive(self) {
        // SAFETY: the node is referenced for 'a; its removal failed before
        // anything was queued, so nothing else acts on the flag.
        unsafe { (*self.node.raw.as_ptr()).nd_flags &= !NGF_INVALID }
    }
}

/// A counted node reference (`NG_NODE_REF`), dropped with `NG_NODE_UNREF`.
///
/// # Invariants
///
/// `raw` points to a node on which this value owns one reference.
pub struct NodeRef {
    raw: NonNull<ng_node>,
}

// SAFETY: netgraph nodes are shared between threads; the reference count is
// atomic.
unsafe impl Send for NodeRef {}
// SAFETY: `&NodeRef` only hands out `Node` borrows, whose operations are
// safe from any thread.
unsafe impl Sync for NodeRef {}

impl NodeRef {
    /// Borrows the node.
    pub fn node(&self) -> Node<'_> {
        // SAFETY: this value holds a reference on the node (invariant).
        unsafe { Node::from_nonnull(self.raw) }
    }

    /// Resolves an absolute path (`name:`, `[id]:`, `name:hook`...) to a
    /// node, as a data item addressed by that path would be
    /// (`ng_address_path` with no starting node). May sleep.
    ///
    /// There is no starting node, so an address relative to it fails with
    /// EINVAL: netgraph checks that itself for addresses without a node
    /// part, and this function for the node part `.` (`.:`, `.:hook`...),
    /// which FreeBSD's netgraph would resolve by dereferencing the missing
    /// node.
    pub fn resolve(path: &CStr) -> KResult<NodeRef> {
        #[allow(clippy::cast_possible_wrap)]
        const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;
        if crate::pure::ngpath::names_here(path.to_bytes()) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: a data item with no mbuf is only used to resolve the path:
        // ng_address_path frees it on error; on success its destination is
        // referenced by the item, we take our own reference, then free it.
        unsafe {
            let item = fbsd_sys::ng_package_data(core::ptr::null_mut(), NG_WAITOK);
            if item.is_null() {
                return Err(Errno::ENOMEM);
            }
            let err =
                fbsd_sys::ng_address_path(core::ptr::null_mut(), item, path.as_ptr().cast_mut(), 0);
            if err != 0 {
                return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
            }
            let r = Node::from_raw((*item).el_dest).map(Node::to_ref);
            fbsd_sys::ng_free_item(item);
            r.ok_or(Errno::ENOENT)
        }
    }
}

impl Clone for NodeRef {
    fn clone(&self) -> Self {
        self.node().to_ref()
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        // SAFETY: this value owns one reference (invariant), dropped once.
        unsafe { fbsd_sys::ng_unref_node(self.raw.as_ptr()) }
    }
}

/// A node made by its own type (`ng_make_node_common`, no constructor),
/// holding its creation reference until [`NewNode::commit`] hands it to the
/// node. Dropping it instead marks the node invalid and drops that
/// reference, which frees it without running any method (so no private
/// data may have been installed).
///
/// # Invariants
///
/// `raw` points to a node on which this value owns the creation reference.
pub struct NewNode {
    raw: NonNull<ng_node>,
}

impl NewNode {
    /// A node of type `T` (whose record must be registered: `EINVAL`
    /// otherwise), without private data.
    pub fn create<T: NodeType>() -> KResult<NewNode> {
        let mut raw: *mut ng_node = core::ptr::null_mut();
        // SAFETY: the record is a static of the module; ng_make_node_common
        // checks that it is registered and returns the node referenced once.
        Errno::check(unsafe { fbsd_sys::ng_make_node_common(T::record().as_ptr(), &mut raw) })?;
        NonNull::new(raw)
            .map(|raw| NewNode { raw })
            .ok_or(Errno::ENOMEM)
    }

    /// The node.
    pub fn node(&self) -> Node<'_> {
        // SAFETY: the creation reference is held while `self` lives.
        unsafe { Node::from_nonnull(self.raw) }
    }

    /// Installs the node's private data. Fails, handing `p` back, when
    /// the node is not of type `T` or already has private data, or when
    /// `p` is shared (cloned).
    pub fn install<T: NodeType>(&self, p: Private<T>) -> Result<(), Private<T>> {
        self.node().install(p)
    }

    /// Hands the creation reference to the node: from now on its shutdown
    /// drops it.
    pub fn commit(self) {
        core::mem::forget(self);
    }

    /// Removes the node through its shutdown method, with sleeping
    /// allocations ([`Node::remove_sleeping`]); for a node that may already
    /// have private data. Only where sleeping is allowed.
    pub fn remove_sleeping(self) {
        let node = self.node();
        let _ = node.remove_sleeping();
        // The shutdown method drops the creation reference.
        core::mem::forget(self);
    }
}

impl Drop for NewNode {
    fn drop(&mut self) {
        // SAFETY: the creation reference is owned (invariant) and dropped
        // once. The node is marked invalid first: it is being discarded, so
        // nothing that finds it by ID in the meantime may use it.
        unsafe {
            (*self.raw.as_ptr()).nd_flags |= NGF_INVALID;
            fbsd_sys::ng_unref_node(self.raw.as_ptr());
        }
    }
}
