//! The kernel layer: thin safe wrappers over FreeBSD's kernel services,
//! for node types written in safe Rust.
//!
//! This is the only place in the crate with `unsafe` code and the only one
//! that names the bindings (`fbsd_sys`). It knows no node type: what it
//! offers is what any netgraph node type or protocol family would use.
//! Each wrapper encodes the rule of the service it wraps in a type: an
//! owned mbuf chain, item or message is freed exactly once by `Drop` unless
//! it is handed to a kernel function that consumes it; a borrowed node,
//! hook or socket carries the lifetime it is valid for; a node's private
//! data is reached only through the gate token its method was given.
//! `docs/kernel-layer.md` describes the rules.

pub mod cell;
pub mod epoch;
pub mod errno;
pub(crate) mod ffi;
pub mod list;
pub mod malloc;
pub mod mbuf;
pub mod module;
pub mod netgraph;
pub mod panic;
pub mod print;
pub mod socket;
pub mod sockproto;
pub mod sync;
pub mod thread;

pub use errno::{Errno, KResult};

/// Reads a C string out of a fixed `char` buffer (up to the first NUL or
/// the end).
pub(crate) fn cstr_bytes(buf: &[core::ffi::c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let b = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len()) };
    crate::pure::c_str(b)
}
