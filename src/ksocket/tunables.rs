//! The node type's sysctls, under `net.graph.ksocket` (the glue,
//! `kmod/ng_ksocket_glue.c`, defines the variables and their OIDs).
//!
//! Each one opts into an improvement that changes what FreeBSD's module
//! would print or return; all are off by default, so that by default every
//! output is FreeBSD's. The node reads the current setting once per use.

use crate::pure::Dialect;

crate::module_statics! {
    /// `net.graph.ksocket.inet6_ascii`: 1 prints IPv6 socket addresses in
    /// the `inet6/...` text form; 0 (default) in FreeBSD's generic form.
    int INET6_ASCII = "ngsock_ks_inet6_ascii";
    /// `net.graph.ksocket.accept_to_requester`: 1 sends the ACCEPT response
    /// for a connection that was already waiting to the node that asked; 0
    /// (default) to the previous requester, as FreeBSD does.
    int ACCEPT_TO_REQUESTER = "ngsock_ks_accept_to_requester";
}

/// The dialect in which socket addresses are printed.
pub fn sockaddr_output() -> Dialect {
    if INET6_ASCII.get() != 0 {
        Dialect::Extended
    } else {
        Dialect::FreeBsd
    }
}

/// Does an ACCEPT response go to the requester even when a connection was
/// already queued?
pub fn accept_to_requester() -> bool {
    ACCEPT_TO_REQUESTER.get() != 0
}
