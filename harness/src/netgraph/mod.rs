//! The netgraph framework model (the part of `netgraph.ko` loaded modules use).
//!
//! It sits on the kernel services (`kern`) and plugs into them as a
//! [`Subsystem`]: its exported symbols (the core and the parse engine), the
//! `netgraph` module version, and its queue "thread" run by the event loop.
//! It installs itself when first used; [`boot`] boots the kernel with it.

pub mod client;
pub mod core;
pub mod echo;
pub mod generic;
pub mod hole;
pub mod macros;
pub mod mbufx;
pub mod parse;

use std::sync::Once;

use crate::exports::Exports;
use crate::kern::{self, Subsystem};

/// Version of the `netgraph` module the harness provides (`NG_ABI_VERSION`).
pub const NETGRAPH_VERSION: i32 = 12;

struct Netgraph;

impl Subsystem for Netgraph {
    fn name(&self) -> &'static str {
        "netgraph"
    }
    fn modules(&self) -> &'static [(&'static str, i32)] {
        &[("netgraph", NETGRAPH_VERSION)]
    }
    fn register(&self, ex: &mut Exports) {
        core::register(ex);
        parse::register(ex);
    }
    fn run_once(&self) -> bool {
        core::run_queue_once()
    }
    fn pending(&self) -> bool {
        core::dispatch::worklist_len() > 0
    }
}

/// Plugs the netgraph model into the kernel (once; later calls do nothing).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| kern::install(&Netgraph));
}

/// Boots the harness kernel (`kern::loader::boot`) with the netgraph model
/// installed: what a process that loads netgraph modules calls first.
pub fn boot() {
    install();
    kern::loader::boot();
}
