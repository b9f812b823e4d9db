//! The benchmark's recorder of the kernel model's allocation and copy probes
//! (`kern::probe`): while switched on, every report is kept, per kernel
//! (whichever of its threads made it), until [`take`]n.

use std::cell::RefCell;

use crate::kern::probe::{self, Probe};
pub use crate::kern::probe::{Event, Kind};

crate::kern::klocal::kernel_local! {
    static EVENTS: RefCell<Vec<Event>> = RefCell::new(Vec::new());
}

struct Recorder;

impl Probe for Recorder {
    fn event(&self, e: Event) {
        // A re-entrant borrow (a probe inside a probe) cannot happen:
        // recording allocates only host memory.
        EVENTS.with(|v| {
            if let Ok(mut v) = v.try_borrow_mut() {
                v.push(e);
            }
        });
    }
}

static RECORDER: Recorder = Recorder;

/// Switches recording on or off (the events recorded so far are kept).
pub fn set_enabled(on: bool) {
    probe::install(if on { Some(&RECORDER) } else { None });
}

/// Takes the events recorded by this kernel so far.
pub fn take() -> Vec<Event> {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kern::fault::Caller;
    use crate::kern::probe::{alloc, copy};

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
