//! A hook-name hash for node types with many hooks (ng_socket nodes of mpd5
//! carry thousands): buckets of entries, one per hook, each entry kept in
//! the hook's private pointer so removal is O(1) apart from the bucket walk.
//! Hashing is `hash32_str(name, HASHINIT)` (`h * 33 + byte`, from 5381), as
//! FreeBSD's; the table doubles when hooks outnumber half its buckets.
//!
//! Contract (what makes the safe API sound): every hook inserted is removed
//! with [`HookHash::remove`] from its node's `disconnect` method, before the
//! hook can be freed, and the table belongs to that node's private data.

use core::ptr::NonNull;

use fbsd_sys::ng_hook;

use super::errno::{Errno, KResult};
use super::malloc::MallocType;
use super::netgraph::{Hook, Node};

struct Entry {
    hook: NonNull<ng_hook>,
    hash: u32,
    next: Option<NonNull<Entry>>,
}

/// The table.
pub struct HookHash {
    buckets: NonNull<Option<NonNull<Entry>>>,
    mask: u32,
    count: u32,
    ty: MallocType,
}

// SAFETY: the table is only used under its owner's lock; the hooks it points
// to are shared netgraph objects.
unsafe impl Send for HookHash {}

const INITIAL: u32 = 16;

/// `hash32_str(name, HASHINIT)`.
pub fn hash32_str(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &b| {
        h.wrapping_mul(33).wrapping_add(u32::from(b))
    })
}

fn alloc_buckets(n: u32, ty: MallocType) -> KResult<NonNull<Option<NonNull<Entry>>>> {
    let size = (n as usize)
        .checked_mul(core::mem::size_of::<Option<NonNull<Entry>>>())
        .ok_or(Errno::ENOMEM)?;
    // All-zero is `None` for `Option<NonNull<_>>`.
    Ok(ty.alloc_zeroed(size)?.cast())
}

impl HookHash {
    /// An empty table of 16 buckets.
    pub fn new(ty: MallocType) -> KResult<Self> {
        Ok(HookHash {
            buckets: alloc_buckets(INITIAL, ty)?,
            mask: INITIAL - 1,
            count: 0,
            ty,
        })
    }

    fn bucket(&self, hash: u32) -> *mut Option<NonNull<Entry>> {
        // SAFETY: `hash & mask` is below the number of buckets allocated.
        unsafe { self.buckets.as_ptr().add((hash & self.mask) as usize) }
    }

    fn link(&mut self, e: NonNull<Entry>) {
        // SAFETY: `e` is a live entry owned by the table; the bucket slot is
        // inside the table's array.
        unsafe {
            let slot = self.bucket((*e.as_ptr()).hash);
            (*e.as_ptr()).next = *slot;
            *slot = Some(e);
        }
    }

    /// Doubles the table (best effort: keeps the old one if memory is short).
    fn grow(&mut self) {
        let Some(n) = self.mask.checked_add(1).and_then(|n| n.checked_mul(2)) else {
            return;
        };
        let Ok(new) = alloc_buckets(n, self.ty) else {
            return;
        };
        let old = self.buckets;
        let old_n = (self.mask as usize).saturating_add(1);
        self.buckets = new;
        self.mask = n.saturating_sub(1);
        for i in 0..old_n {
            // SAFETY: `i` indexes the old array, still allocated.
            let mut cur = unsafe { *old.as_ptr().add(i) };
            while let Some(e) = cur {
                // SAFETY: entries in the old chains are live and owned here.
                cur = unsafe { (*e.as_ptr()).next };
                self.link(e);
            }
        }
        // SAFETY: the old array came from alloc_zeroed with this type and no
        // longer holds anything.
        unsafe { self.ty.free(old.cast()) };
    }

    /// Adds `hook` (named `name`); `ENOMEM` if no entry can be had without
    /// sleeping. The entry is kept in the hook's private pointer.
    pub fn insert(&mut self, hook: Hook<'_>, name: &[u8]) -> KResult<()> {
        let e = self
            .ty
            .alloc_zeroed(core::mem::size_of::<Entry>())?
            .cast::<Entry>();
        // SAFETY: a fresh allocation sized and aligned for an Entry.
        unsafe {
            e.as_ptr().write(Entry {
                hook: hook.as_nonnull(),
                hash: hash32_str(name),
                next: None,
            })
        };
        if self.count.saturating_mul(2) > self.mask {
            self.grow();
        }
        self.link(e);
        self.count = self.count.saturating_add(1);
        hook.set_private_raw(e.as_ptr().cast());
        Ok(())
    }

    /// Removes `hook`, if it was inserted, and frees its entry.
    pub fn remove(&mut self, hook: Hook<'_>) {
        let Some(e) = NonNull::new(hook.private_raw().cast::<Entry>()) else {
            return;
        };
        hook.set_private_raw(core::ptr::null_mut());
        // SAFETY: hk_private of a hook of this node holds its live entry
        // (module contract); the chain walk only visits live entries.
        unsafe {
            let mut slot = self.bucket((*e.as_ptr()).hash);
            while let Some(cur) = *slot {
                if cur == e {
                    *slot = (*cur.as_ptr()).next;
                    break;
                }
                slot = &raw mut (*cur.as_ptr()).next;
            }
            self.ty.free(e.cast());
        }
        self.count = self.count.saturating_sub(1);
    }

    /// Finds the hook named `name` of `node`.
    pub fn find<'a>(&self, _node: Node<'a>, name: &[u8]) -> Option<Hook<'a>> {
        let h = hash32_str(name);
        // SAFETY: the bucket array is live; entries are live and their hooks
        // attached to the node (removed in disconnect before being freed).
        unsafe {
            let mut cur = *self.bucket(h);
            while let Some(e) = cur {
                let entry = &*e.as_ptr();
                if entry.hash == h {
                    let hook = Hook::from_nonnull(entry.hook);
                    if hook.name().to_bytes() == name {
                        return Some(hook);
                    }
                }
                cur = entry.next;
            }
        }
        None
    }
}

impl Drop for HookHash {
    fn drop(&mut self) {
        for i in 0..=self.mask as usize {
            // SAFETY: `i` indexes the array; remaining entries (hooks never
            // disconnected, which netgraph does not allow) are freed here.
            let mut cur = unsafe { *self.buckets.as_ptr().add(i) };
            while let Some(e) = cur {
                // SAFETY: live entry owned by the table.
                unsafe {
                    cur = (*e.as_ptr()).next;
                    self.ty.free(e.cast());
                }
            }
        }
        // SAFETY: allocated by alloc_buckets with this type.
        unsafe { self.ty.free(self.buckets.cast()) };
    }
}
