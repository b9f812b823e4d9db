//! Netgraph callouts (`ng_callout(9)`): run a node function, as a netgraph
//! function item on the node, after a number of ticks.
//!
//! [`NgCallout`] keeps its `struct callout` in an allocation of its own, so
//! the handle may move (it lives in node private data) while the kernel's
//! timer refers to the structure; dropping the handle cancels a pending run
//! before freeing the structure.

use core::ptr::NonNull;

use fbsd_sys::{callout, ng_node};

use super::ngtype::NodeFn;
use super::node::Node;
use crate::kern::errno::{Errno, KResult};
use crate::kern::ffi::ngsock_callout_init;
use crate::kern::malloc::MallocType;

/// A callout for one node (see the module docs).
///
/// # Invariants
///
/// `c` is an initialised `struct callout` allocated with `ty`, owned by
/// this value; `node` is NULL (never armed) or the node it was last armed
/// for, which a pending run's item keeps referenced.
pub struct NgCallout {
    c: NonNull<callout>,
    ty: MallocType,
    node: *mut ng_node,
}

// SAFETY: the structure is owned by the handle and changed only through
// `&mut self`; the kernel's timer code synchronises its own accesses.
unsafe impl Send for NgCallout {}
// SAFETY: no `&self` method touches the structure.
unsafe impl Sync for NgCallout {}

impl NgCallout {
    /// Allocates and initialises an idle callout without sleeping (ENOMEM).
    pub fn new(ty: MallocType) -> KResult<Self> {
        let c = ty
            .alloc_zeroed(core::mem::size_of::<callout>())?
            .cast::<callout>();
        // SAFETY: a fresh, zeroed allocation of a `struct callout`, at the
        // address it keeps for its whole life.
        unsafe { ngsock_callout_init(c.as_ptr()) };
        Ok(NgCallout {
            c,
            ty,
            node: core::ptr::null_mut(),
        })
    }

    /// `ng_callout(c, node, NULL, ticks, f, NULL, arg2)`: runs `f(node,
    /// NULL, NULL, arg2)` as a writer of `node` after `ticks` ticks,
    /// replacing a pending run. ENOMEM when no netgraph item is available
    /// (`f` then does not run).
    pub fn arm(&mut self, node: Node<'_>, ticks: i32, f: NodeFn, arg2: i32) -> KResult<()> {
        let prev = self.node;
        if !prev.is_null() && prev != node.as_ptr() {
            // One callout serves one node: stop a run pending for another.
            self.cancel_raw(prev);
        }
        self.node = node.as_ptr();
        // SAFETY: the structure is initialised and outlives any pending run
        // (`Drop` cancels it); netgraph takes its own node reference for
        // the item; arg1 is NULL, so the item owns nothing else.
        Errno::check(unsafe {
            fbsd_sys::ng_callout(
                self.c.as_ptr(),
                node.as_ptr(),
                core::ptr::null_mut(),
                ticks,
                Some(f.raw()),
                core::ptr::null_mut(),
                arg2,
            )
        })
    }

    fn cancel_raw(&self, node: *mut ng_node) -> bool {
        // SAFETY: `node` is the node a run was armed for; while one is
        // pending its item holds a reference on the node, and when none is
        // pending ng_uncallout only looks at the callout structure.
        unsafe { fbsd_sys::ng_uncallout(self.c.as_ptr(), node) != 0 }
    }

    /// `ng_uncallout`: cancels a pending run; true if there was one.
    pub fn cancel(&mut self) -> bool {
        let node = self.node;
        !node.is_null() && self.cancel_raw(node)
    }
}

impl Drop for NgCallout {
    fn drop(&mut self) {
        self.cancel();
        // SAFETY: the structure came from `alloc_zeroed` on `self.ty` and no
        // timer refers to it any more.
        unsafe { self.ty.free(self.c.cast::<u8>()) };
    }
}
