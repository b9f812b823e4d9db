//! The embryos of listening nodes: clone nodes created by accept that have
//! no hook yet and must die with their parent.
//!
//! FreeBSD links the children into a list in the parent's private data and
//! edits it from both the parent's and the children's contexts without a
//! common lock; its parent shutdown then loops until each child's shutdown
//! has unlinked itself, which spins if a child's removal is queued. Here
//! one module-wide list, under its own mutex, holds every embryo:
//! * every entry holds a node reference, so the child's memory outlives the
//!   entry even if the child shuts down on another CPU meanwhile;
//! * entries are linked and unlinked only under the mutex, never held while
//!   calling into netgraph (references are dropped after unlocking);
//! * the parent unlinks a child (taking over the entry's reference) before
//!   asking netgraph to remove it, so nothing waits for anything.

use crate::kern::errno::KResult;
use crate::kern::malloc::KBox;
use crate::kern::netgraph::{Node, NodeRef};

use super::node::M_NETGRAPH_KSOCKET;

struct Entry {
    next: Option<KBox<Entry>>,
    /// The child; `None` only in a [`Reservation`].
    node: Option<NodeRef>,
    /// The parent's node ID.
    owner: u32,
}

/// The list.
pub struct Embryos {
    head: Option<KBox<Entry>>,
}

crate::module_statics! {
    /// Every embryo of every node of the module. Its mutex is initialised by
    /// the module's glue at load, before the node type is registered.
    mutex EMBRYOS: Embryos = Embryos { head: None }, symbol "ngsock_ks_embryos";
}

/// Memory for one entry, allocated ahead so that inserting cannot fail.
pub struct Reservation(KBox<Entry>);

/// Allocates an entry without sleeping (`ENOMEM`).
pub fn reserve() -> KResult<Reservation> {
    KBox::try_new(
        Entry {
            next: None,
            node: None,
            owner: 0,
        },
        M_NETGRAPH_KSOCKET,
    )
    .map(Reservation)
}

/// Adds `node` (taking a reference on it) as an embryo of node `owner`.
pub fn insert(r: Reservation, node: Node<'_>, owner: u32) {
    let Reservation(mut e) = r;
    e.node = Some(node.to_ref());
    e.owner = owner;
    let mut list = EMBRYOS.lock();
    e.next = list.head.take();
    list.head = Some(e);
}

/// Unlinks the first entry matching `pred`.
fn unlink(list: &mut Embryos, pred: impl Fn(&Entry) -> bool) -> Option<KBox<Entry>> {
    let mut cur = &mut list.head;
    while cur.as_ref().is_some_and(|e| !pred(e)) {
        cur = &mut cur.as_mut()?.next;
    }
    let mut e = cur.take()?;
    *cur = e.next.take();
    Some(e)
}

fn is_node(e: &Entry, node: Node<'_>) -> bool {
    e.node.as_ref().is_some_and(|n| n.node().id() == node.id())
}

/// Removes `node`'s entry, if any, dropping its reference (after the list
/// is unlocked).
pub fn remove(node: Node<'_>) {
    let found = unlink(&mut EMBRYOS.lock(), |e| is_node(e, node));
    drop(found);
}

/// Unlinks one embryo of node `owner` and hands its reference over.
pub fn pop_owned_by(owner: u32) -> Option<NodeRef> {
    let found = unlink(&mut EMBRYOS.lock(), |e| e.owner == owner);
    found.and_then(|mut e| e.node.take())
}
