//! The netgraph framework model (the part of `netgraph.ko` loaded modules use).
pub mod client;
pub mod core;
pub mod echo;
pub mod generic;
pub mod hole;
pub mod macros;
pub mod mbufx;
pub mod parse;
