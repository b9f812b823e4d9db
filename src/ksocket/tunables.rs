//! The node type's sysctls, under `net.graph.ksocket` (the glue declares
//! the OIDs, `kmod/ng_ksocket_glue.c`, pointing at these variables).
//!
//! Each one opts into an improvement that changes what FreeBSD's module
//! would print or return; all are off by default, so that by default every
//! output is FreeBSD's.
//!
//! The kernel writes them as plain `int`s through the sysctl handler; an
//! `AtomicI32` has the same size and alignment as an `int`, and the node
//! reads it once per use with a relaxed load (no ordering with anything
//! else is needed: each reader just takes the current setting).

use core::sync::atomic::{AtomicI32, Ordering};

use crate::pure::Dialect;

/// `net.graph.ksocket.inet6_ascii`: 1 prints IPv6 socket addresses in the
/// `inet6/...` text form; 0 (default) in FreeBSD's generic form.
#[no_mangle]
pub static ngsock_ks_inet6_ascii: AtomicI32 = AtomicI32::new(0);

/// `net.graph.ksocket.accept_to_requester`: 1 sends the ACCEPT response for
/// a connection that was already waiting to the node that asked; 0
/// (default) to the previous requester, as FreeBSD does.
#[no_mangle]
pub static ngsock_ks_accept_to_requester: AtomicI32 = AtomicI32::new(0);

/// The dialect in which socket addresses are printed.
pub fn sockaddr_output() -> Dialect {
    if ngsock_ks_inet6_ascii.load(Ordering::Relaxed) != 0 {
        Dialect::Extended
    } else {
        Dialect::FreeBsd
    }
}

/// Does an ACCEPT response go to the requester even when a connection was
/// already queued?
pub fn accept_to_requester() -> bool {
    ngsock_ks_accept_to_requester.load(Ordering::Relaxed) != 0
}
