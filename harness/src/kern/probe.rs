//! Allocation and copy probes of the kernel model.
//!
//! The kernel services report here where they allocate memory (malloc(9),
//! mbufs, clusters, mbuf tags) and where they move bytes for a caller
//! (`m_copydata`, `m_copyback`, `m_copym`, `m_dup`, `m_pullup`, `m_append`,
//! `m_uiotombuf`, `m_mbuftouio`, `uiomove`, `memcpy`, `memmove`, `bcopy`),
//! with the calling site ([`Caller`]: a return address into module code, or a
//! harness source location). A layer above (the benchmark) receives the
//! reports by installing a [`Probe`]; with none installed each report is one
//! relaxed atomic load and a not-taken branch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use super::fault::Caller;

/// What a probe saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `malloc(9)` (any malloc type except the tag type).
    Malloc,
    /// An mbuf from the mbuf zone (plain, packet header or packet).
    Mbuf,
    /// A cluster (2 KB, page, 9 KB or 16 KB).
    Cluster,
    /// `m_tag_alloc` (malloc type `mbuf_tag`).
    Tag,
    /// Bytes moved on behalf of the caller; the name of the function.
    Copy(&'static str),
}

impl Kind {
    /// Is this an allocation (rather than a copy)?
    pub fn is_alloc(self) -> bool {
        !matches!(self, Kind::Copy(_))
    }
}

/// One reported event.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// Bytes allocated or copied.
    pub bytes: usize,
    /// Who asked for it.
    pub caller: Caller,
}

/// A receiver of the kernel model's reports, installed by an upper layer.
pub trait Probe: Sync {
    /// Called for every allocation, and every copy of at least one byte,
    /// while this probe is installed.
    fn event(&self, e: Event);
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static PROBE: RwLock<Option<&'static dyn Probe>> = RwLock::new(None);

/// Installs `p` as the receiver of every report (`None`: reports are dropped).
pub fn install(p: Option<&'static dyn Probe>) {
    *PROBE.write().unwrap_or_else(|e| e.into_inner()) = p;
    ACTIVE.store(p.is_some(), Ordering::Relaxed);
}

#[cold]
#[inline(never)]
fn report(e: Event) {
    let p = *PROBE.read().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = p {
        p.event(e);
    }
}

/// An allocation of `bytes` of kind `kind` for `caller`.
#[inline(always)]
pub fn alloc(kind: Kind, bytes: usize, caller: Caller) {
    if ACTIVE.load(Ordering::Relaxed) {
        report(Event {
            kind,
            bytes,
            caller,
        });
    }
}

/// `what` copied `bytes` bytes for `caller`.
#[inline(always)]
pub fn copy(what: &'static str, bytes: usize, caller: Caller) {
    if ACTIVE.load(Ordering::Relaxed) && bytes > 0 {
        report(Event {
            kind: Kind::Copy(what),
            bytes,
            caller,
        });
    }
}
