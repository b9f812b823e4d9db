//! The kernel-service layer: thin safe wrappers over FreeBSD's KPIs.
//!
//! This is the only place in the crate with `unsafe` code. Each wrapper
//! encodes the ownership rule of the service it wraps in a Rust type:
//! an owned mbuf chain, item or message is freed exactly once by `Drop`
//! unless it is handed over to a kernel function that consumes it.

pub mod cell;
pub mod copy;
#[cfg(feature = "socket")]
pub mod epoch;
pub mod errno;
pub mod hookhash;
pub mod malloc;
pub mod mbuf;
pub mod mutex;
pub mod netgraph;
pub mod ngops;
pub mod ngpcb;
pub mod ngtype;
pub mod panic;
pub mod print;
pub mod socket;
pub mod sockproto;
pub mod sync;
pub mod thread;

pub use errno::{Errno, KResult};
#[cfg(feature = "ksocket")]
pub mod ngcallout;
pub mod ngparse;
pub mod ngpriv;
pub mod nodeset;
#[cfg(feature = "ksocket")]
pub mod soext;
