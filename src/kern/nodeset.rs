//! A module-wide set of referenced nodes, each tagged with an owner node ID,
//! under one mutex.
//!
//! ksocket uses it for the "embryos" of a listening node: clone nodes created
//! by accept that have no hook yet and must die with their parent. FreeBSD
//! links the children's private data into a list in the parent's private
//! data and edits it from both the parent's and the children's contexts
//! without a common lock; its parent shutdown then loops until each child's
//! shutdown has unlinked itself, which spins if a child's removal is queued.
//! Here:
//! * every entry holds a node reference, so the child's memory outlives the
//!   entry even if the child shuts down on another CPU meanwhile;
//! * entries are linked and unlinked only under the set's mutex, never held
//!   while calling into netgraph;
//! * the parent unlinks a child (taking over the entry's reference) *before*
//!   asking netgraph to remove it, so nothing waits for anything.
//!
//! The mutex is a `struct mtx` at the start of the [`NodeSet`] static, which
//! the module's C glue initialises with `MTX_SYSINIT` (at load, before the
//! node type is registered) and destroys at unload.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use fbsd_sys::mtx;

use super::errno::KResult;
use super::malloc::{KBox, MallocType};
use super::netgraph::Node;
use super::ngops::NodeRef;

use super::ffi::{ngsock_mtx_lock, ngsock_mtx_unlock};

struct Entry {
    next: Option<NonNull<Entry>>,
    node: NodeRef,
    owner: u32,
    ty: MallocType,
}

/// A set of node references tagged with owner IDs (see the module docs).
#[repr(C)]
pub struct NodeSet {
    /// Must stay the first field: the glue sees the static as a `struct mtx`.
    mtx: UnsafeCell<mtx>,
    head: UnsafeCell<Option<NonNull<Entry>>>,
}

// SAFETY: `head` and every entry are only touched with `mtx` held.
unsafe impl Sync for NodeSet {}

/// Memory for one entry, allocated ahead so that inserting cannot fail.
pub struct Reservation {
    ty: MallocType,
    mem: KBox<MaybeUninit<Entry>>,
}

struct Locked<'a> {
    set: &'a NodeSet,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while this thread holds the mutex.
        unsafe { ngsock_mtx_unlock(self.set.mtx.get()) }
    }
}

impl NodeSet {
    /// An empty set with an uninitialised mutex.
    ///
    /// # Safety
    /// The value must be a `static` whose symbol the module's glue registers
    /// with `MTX_SYSINIT` (so the mutex is initialised before any node of the
    /// module exists and destroyed only after the last one is gone).
    pub const unsafe fn new() -> Self {
        NodeSet {
            // SAFETY: all-zero is the "not yet initialised" state of a mutex.
            mtx: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            head: UnsafeCell::new(None),
        }
    }

    fn lock(&self) -> Locked<'_> {
        // SAFETY: the mutex was initialised by MTX_SYSINIT (see `new`); no
        // caller holds it already (it is never held across calls out).
        unsafe { ngsock_mtx_lock(self.mtx.get()) };
        Locked { set: self }
    }

    /// Allocates an entry without sleeping (`ENOMEM`).
    pub fn reserve(&self, ty: MallocType) -> KResult<Reservation> {
        Ok(Reservation {
            ty,
            mem: KBox::try_new(MaybeUninit::uninit(), ty)?,
        })
    }

    /// Adds `node` (taking a reference on it) under `owner`.
    pub fn insert(&self, r: Reservation, node: Node<'_>, owner: u32) {
        let Reservation { ty, mut mem } = r;
        mem.write(Entry {
            next: None,
            node: NodeRef::clone_ref(node),
            owner,
            ty,
        });
        // `MaybeUninit<Entry>` has the layout of `Entry`, now initialised.
        let Some(entry) = NonNull::new(KBox::into_raw(mem).cast::<Entry>()) else {
            return;
        };
        let _g = self.lock();
        // SAFETY: `head` and the new entry are only touched under the mutex.
        unsafe {
            (*entry.as_ptr()).next = *self.head.get();
            *self.head.get() = Some(entry);
        }
    }

    /// Unlinks the first entry matching `pred`; `_g` proves the lock is held.
    fn unlink(&self, _g: &Locked<'_>, pred: impl Fn(&Entry) -> bool) -> Option<NonNull<Entry>> {
        // SAFETY: the lock is held, so the list is ours to walk and edit;
        // every linked entry is initialised and owned by the list.
        unsafe {
            let mut link: *mut Option<NonNull<Entry>> = self.head.get();
            while let Some(e) = *link {
                if pred(&*e.as_ptr()) {
                    *link = (*e.as_ptr()).next;
                    (*e.as_ptr()).next = None;
                    return Some(e);
                }
                link = &raw mut (*e.as_ptr()).next;
            }
        }
        None
    }

    /// Frees an unlinked entry and returns its node reference.
    fn release(e: NonNull<Entry>) -> NodeRef {
        // SAFETY: `e` is an initialised entry created by `insert` in a
        // `KBox<MaybeUninit<Entry>>`, unlinked and now owned by the caller.
        // The entry is moved out, then the box (whose `MaybeUninit` content
        // has no destructor) frees the memory.
        unsafe {
            let entry = core::ptr::read(e.as_ptr());
            drop(KBox::from_raw(e.cast::<MaybeUninit<Entry>>(), entry.ty));
            entry.node
        }
    }

    /// Removes `node`'s entry, if any, dropping its reference. Returns whether
    /// there was one.
    pub fn remove(&self, node: Node<'_>) -> bool {
        let target = node.as_nonnull();
        let found = {
            let g = self.lock();
            self.unlink(&g, |e| e.node.node().as_nonnull() == target)
        };
        match found {
            Some(e) => {
                drop(Self::release(e));
                true
            }
            None => false,
        }
    }

    /// Unlinks one entry owned by `owner` and hands its reference over.
    pub fn pop_owned_by(&self, owner: u32) -> Option<NodeRef> {
        let found = {
            let g = self.lock();
            self.unlink(&g, |e| e.owner == owner)
        };
        found.map(Self::release)
    }
}

/// The embryo set of `ng_ksocket`: its mutex is initialised by
/// `MTX_SYSINIT` in `kmod/ng_ksocket_glue.c`, which names this symbol.
#[cfg(feature = "ksocket")]
#[no_mangle]
#[allow(non_upper_case_globals)]
// SAFETY: the glue registers this static with MTX_SYSINIT (see `new`).
pub static ngsock_ks_embryos: NodeSet = unsafe { NodeSet::new() };
