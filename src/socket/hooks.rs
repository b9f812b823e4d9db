//! The hooks of a socket node by name: a hash table for nodes with many
//! hooks (mpd5's carry thousands). Hashing is `hash32_str(name, HASHINIT)`
//! (`h * 33 + byte`, from 5381), as FreeBSD's; the table doubles when hooks
//! outnumber half its buckets. Each entry holds a reference on its hook, so
//! a hook the table still names is never freed; the node's `disconnect`
//! removes it.

use crate::kern::errno::KResult;
use crate::kern::malloc::{KBox, KSlice};
use crate::kern::netgraph::{Hook, HookRef};

use super::M_NETGRAPH_SOCK;

struct Entry {
    hook: HookRef,
    hash: u32,
    next: Option<KBox<Entry>>,
}

type Bucket = Option<KBox<Entry>>;

/// The table.
pub struct HookTable {
    buckets: KSlice<Bucket>,
    count: u32,
    /// The bucket of the only hook, when there is exactly one.
    single: Option<usize>,
}

const INITIAL: usize = 16;

/// `hash32_str(name, HASHINIT)`.
pub fn hash32_str(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &b| {
        h.wrapping_mul(33).wrapping_add(u32::from(b))
    })
}

fn buckets(n: usize) -> KResult<KSlice<Bucket>> {
    KSlice::try_new_with(n, M_NETGRAPH_SOCK, |_| None)
}

impl HookTable {
    /// An empty table of 16 buckets.
    pub fn new() -> KResult<Self> {
        Ok(HookTable {
            buckets: buckets(INITIAL)?,
            count: 0,
            single: None,
        })
    }

    fn index(&self, hash: u32) -> usize {
        // The bucket count is a power of two.
        (hash as usize) & self.buckets.len().saturating_sub(1)
    }

    fn link(&mut self, mut e: KBox<Entry>) -> usize {
        let i = self.index(e.hash);
        if let Some(b) = self.buckets.get_mut(i) {
            e.next = b.take();
            *b = Some(e);
        }
        i
    }

    /// Doubles the table (best effort: keeps the old one if memory is
    /// short).
    fn grow(&mut self) {
        let Some(n) = self.buckets.len().checked_mul(2) else {
            return;
        };
        let Ok(new) = buckets(n) else {
            return;
        };
        let mut old = core::mem::replace(&mut self.buckets, new);
        for b in old.iter_mut() {
            let mut cur = b.take();
            while let Some(mut e) = cur {
                cur = e.next.take();
                self.link(e);
            }
        }
    }

    /// Adds `hook` (named `name`); `ENOMEM` if no entry can be had without
    /// sleeping.
    pub fn insert(&mut self, hook: Hook<'_>, name: &[u8]) -> KResult<()> {
        let e = KBox::try_new(
            Entry {
                hook: hook.to_ref(),
                hash: hash32_str(name),
                next: None,
            },
            M_NETGRAPH_SOCK,
        )?;
        if (self.count as usize).saturating_mul(2) >= self.buckets.len() {
            self.grow();
        }
        let i = self.link(e);
        self.count = self.count.saturating_add(1);
        self.single = if self.count == 1 { Some(i) } else { None };
        Ok(())
    }

    /// Removes `hook`, if present, and hands its entry back (to be dropped
    /// once the caller's lock is released).
    pub fn remove(&mut self, hook: Hook<'_>) -> Option<impl Drop> {
        let i = self.index(hash32_str(hook.name().to_bytes()));
        let mut cur = self.buckets.get_mut(i)?;
        while cur.as_ref().is_some_and(|e| !e.hook.hook().ptr_eq(hook)) {
            cur = &mut cur.as_mut()?.next;
        }
        let mut e = cur.take()?;
        *cur = e.next.take();
        self.count = self.count.saturating_sub(1);
        self.single = if self.count == 1 {
            self.buckets.iter().position(Option::is_some)
        } else {
            None
        };
        Some(e)
    }

    /// The hook named `name`.
    pub fn find(&self, name: &[u8]) -> Option<&HookRef> {
        let h = hash32_str(name);
        let mut cur = self.buckets.get(self.index(h))?.as_ref();
        while let Some(e) = cur {
            if e.hash == h && e.hook.hook().name_is(name) {
                return Some(&e.hook);
            }
            cur = e.next.as_ref();
        }
        None
    }

    /// The only hook, when there is exactly one.
    pub fn only(&self) -> Option<&HookRef> {
        let b = self.buckets.get(self.single?)?;
        b.as_ref().map(|e| &e.hook)
    }
}
