//! ngsock: FreeBSD 15 netgraph `ksocket` and `socket` node types in `no_std` Rust.
//!
//! Layers (`docs/kernel-layer.md`):
//! * [`pure`]: plain functions with no kernel dependency and no bindings
//!   (hook names, ASCII forms of socket addresses and options); unit-tested
//!   on the host.
//! * `kern` (kernel target only): the single, generic layer of thin safe
//!   wrappers over the kernel services (malloc, mutexes, mbufs and tags,
//!   sockets, protocols, netgraph nodes, hooks, items, messages, node types
//!   and parse types). All `unsafe` code and every use of the bindings
//!   lives there.
//! * `ksocket`, `socket` (kernel target only, one per module, selected by the
//!   cargo feature of the same name): the node types, in safe Rust.
//! * `abi` (kernel target only): compile-time checks of the numbers the
//!   other layers write out against the bindings; `rules` (host tests): the
//!   layering rules, checked on the sources.
#![cfg_attr(target_os = "none", no_std)]
// The kernel layer's declaration macros expand `unsafe` code (exported
// symbols, extern statics) into node-type modules that forbid it, as
// `std`'s own macros do.
#![cfg_attr(target_os = "none", feature(allow_internal_unsafe))]
#![cfg_attr(target_os = "none", allow(internal_features))]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    clippy::todo,
    clippy::unimplemented,
    clippy::unreachable
)]

pub mod pure;

#[cfg(target_os = "none")]
pub mod kern;

// Host test builds compile the node's plain logic (`ksocket::{args, flags,
// opttext, stats}`) too; its kernel parts stay kernel-only.
#[cfg(any(test, all(target_os = "none", feature = "ksocket")))]
mod ksocket;

#[cfg(all(target_os = "none", feature = "socket"))]
mod socket;

#[cfg(target_os = "none")]
mod abi;

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::string_slice
)]
mod rules;
