//! Allocation and copy probes for `ngharness bench`.
//!
//! The kernel model calls [`alloc`] and [`copy`] where it allocates memory
//! (malloc(9), mbufs, clusters, mbuf tags) and where it moves bytes for a
//! caller (`m_copydata`, `m_copyback`, `m_copym`, `m_dup`, `m_pullup`,
//! `m_append`, `m_uiotombuf`, `m_mbuftouio`, `uiomove`, `memcpy`,
//! `memmove`, `bcopy`), with the calling site ([`Caller`]: a return address
//! into module code, or a harness source location). Nothing is recorded
//! unless a bench switched the probes on: when off, each probe is one
//! relaxed atomic load and a not-taken branch.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::kern::fault::Caller;

static ON: AtomicBool = AtomicBool::new(false);

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

/// One recorded event.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// Bytes allocated or copied.
    pub bytes: usize,
    /// Who asked for it.
    pub caller: Caller,
}

thread_local! {
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
}

/// Are the probes recording?
#[inline(always)]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Switches recording on or off (the events recorded so far are kept).
pub fn set_enabled(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Takes the events recorded on this OS thread so far.
pub fn take() -> Vec<Event> {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

#[cold]
#[inline(never)]
fn record(kind: Kind, bytes: usize, caller: Caller) {
    // A re-entrant borrow (a probe inside a probe) cannot happen: recording
    // allocates only host memory.
    EVENTS.with(|e| {
        if let Ok(mut v) = e.try_borrow_mut() {
            v.push(Event {
                kind,
                bytes,
                caller,
            });
        }
    });
}

/// An allocation of `bytes` of kind `kind` for `caller`.
#[inline(always)]
pub fn alloc(kind: Kind, bytes: usize, caller: Caller) {
    if enabled() {
        record(kind, bytes, caller);
    }
}

/// `what` copied `bytes` bytes for `caller`.
#[inline(always)]
pub fn copy(what: &'static str, bytes: usize, caller: Caller) {
    if enabled() && bytes > 0 {
        record(Kind::Copy(what), bytes, caller);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_records_nothing_on_records_everything() {
        set_enabled(false);
        let _ = take();
        alloc(Kind::Mbuf, 256, Caller::Addr(1));
        copy("memcpy", 10, Caller::Addr(2));
        assert!(take().is_empty());
        set_enabled(true);
        alloc(Kind::Tag, 48, Caller::Addr(3));
        copy("memcpy", 0, Caller::Addr(4));
        copy("m_copydata", 512, Caller::Addr(5));
        set_enabled(false);
        let v = take();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].kind, Kind::Tag);
        assert_eq!((v[1].kind, v[1].bytes), (Kind::Copy("m_copydata"), 512));
        assert!(Kind::Tag.is_alloc() && !Kind::Copy("x").is_alloc());
    }
}
