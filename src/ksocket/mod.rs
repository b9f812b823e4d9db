//! The `ksocket` node type (ng_ksocket(4)): a netgraph node that owns a
//! kernel socket. Drop-in replacement for FreeBSD 15's `ng_ksocket.ko`,
//! in safe Rust over the `kern` layer (`man/ng_ksocket.4` describes it).
//!
//! Layout:
//! * [`flags`], [`stats`], [`args`], [`opttext`]: plain logic (flag bits,
//!   statistics counters and layout, control-message argument rules, the
//!   typed ASCII form of socket options), compiled and unit-tested on the
//!   host as well;
//! * `node` (kernel only): the node type's methods, control messages, data
//!   path, accept and clone nodes;
//! * `embryos` (kernel only): the clones a listening node has accepted
//!   that have no hook yet;
//! * `tunables` (kernel only): the `net.graph.ksocket` sysctls;
//! * `types` (kernel only): the cookie and command numbers, the type
//!   record, the command list and the ASCII parse types.
//!
//! The C glue (`kmod/ng_ksocket_glue.c`) declares the kernel module around
//! the `ngsock_ksocket_type` record, the malloc type, the embryo-list
//! mutex and the `net.graph.ksocket` sysctls.
//!
//! Deliberate improvements over FreeBSD 15 (each only turns an input FreeBSD
//! rejects into an accepted one; the two that change an output FreeBSD
//! produces are off by default, behind the sysctls of `tunables`):
//! 1. `inet6/...` socket-address text (`crate::pure::sockaddr`): accepted
//!    on input; printed only with `net.graph.ksocket.inet6_ascii=1`;
//! 2. protocol aliases for `inet6` and `sctp` in hook names
//!    (`crate::pure::hookname`);
//! 3. socket options: typed ASCII (`opttext`), ASCII `getopt` (an all-zero
//!    value is accepted and ignored, `args::GetoptForm`), values beyond 1024
//!    bytes for the ASCII form (`args::next_optlen`); typed text only in
//!    replies to that form;
//! 4. with `net.graph.ksocket.accept_to_requester=1`, the ACCEPT response
//!    goes to the requester even when a connection was already queued (the
//!    response address is stored before accepting);
//! 5. statistics messages `getstats` (100), `clrstats` (101),
//!    `getclrstats` (102) ([`stats`]).
//!
//! Robustness fixes (no FreeBSD-accepted input behaves differently): the
//! socket of a failed `soaccept` is closed (FreeBSD leaks it); a listening
//! socket never reaches `sosend` (dropped with ENOTCONN); a truncated
//! datagram no longer stops the receive loop; a parent never spins waiting
//! for its embryonic clones; socket state bits are changed under the socket
//! lock; a clone drains the data that arrived before its hook one tick
//! after the hook is connected, so that an NGM_CONNECT sent to another node
//! has validated the far end of the link (FreeBSD's drain can run first and
//! lose that data); a node whose removal netgraph cannot queue (no item)
//! is revived and retried instead of being left unreachable with its socket
//! (FreeBSD's `ng_rmnode_self` failure); a clone discarded while being
//! created is marked invalid before its last reference is dropped.
#![forbid(unsafe_code)]
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

pub mod args;
pub mod flags;
pub mod opttext;
pub mod stats;

#[cfg(target_os = "none")]
mod embryos;
#[cfg(target_os = "none")]
mod node;
#[cfg(target_os = "none")]
mod tunables;
#[cfg(target_os = "none")]
pub(crate) mod types;
