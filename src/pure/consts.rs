//! The FreeBSD 15 numbers the pure parsers use: error numbers, socket
//! families, types, protocols, option levels and names, sizes. Spelled out
//! here so that the parsers and their host tests need no FreeBSD headers;
//! each has the name of the kernel's definition, and the kernel builds
//! check every one against the bindings at compile time (`src/abi.rs`).

use super::Errno;

/// Defines each `NAME = value` as a `pub const` of type `$ty`.
macro_rules! consts {
    ($ty:ty: $($name:ident = $v:expr),* $(,)?) => {
        $(pub const $name: $ty = $v;)*
    };
}

// Error numbers (`sys/errno.h`).
consts! { Errno:
    E2BIG = 7, ENOENT = 2, ENOMEM = 12, EINVAL = 22,
    ERANGE = 34, EALREADY = 37,
}

// Address and protocol families (`sys/socket.h`).
consts! { i32:
    AF_UNIX = 1, PF_INET = 2, PF_INET6 = 28, PF_ATM = 30,
    PF_DIVERT = 44,
}

// Socket types (`sys/socket.h`).
consts! { i32:
    SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_RAW = 3, SOCK_RDM = 4,
    SOCK_SEQPACKET = 5,
}

// Protocols (`netinet/in.h`).
consts! { i32:
    IPPROTO_IP = 0, IPPROTO_ICMP = 1, IPPROTO_IGMP = 2, IPPROTO_TCP = 6,
    IPPROTO_UDP = 17, IPPROTO_IPV6 = 41, IPPROTO_GRE = 47, IPPROTO_ESP = 50,
    IPPROTO_AH = 51, IPPROTO_SWIPE = 53, IPPROTO_ICMPV6 = 58, IPPROTO_ENCAP = 98,
    IPPROTO_PIM = 103, IPPROTO_SCTP = 132, IPPROTO_RAW = 255,
}

// Socket-level options (`sys/socket.h`).
consts! { i32:
    SOL_SOCKET = 0xffff, SO_DEBUG = 1, SO_ACCEPTCONN = 2, SO_REUSEADDR = 4,
    SO_KEEPALIVE = 8, SO_DONTROUTE = 16, SO_BROADCAST = 32, SO_OOBINLINE = 256,
    SO_REUSEPORT = 512, SO_REUSEPORT_LB = 0x10000, SO_SNDBUF = 4097, SO_RCVBUF = 4098,
    SO_SNDLOWAT = 4099, SO_RCVLOWAT = 4100, SO_ERROR = 4103, SO_TYPE = 4104,
    SO_FIB = 4116, SO_PROTOCOL = 4118, SO_DOMAIN = 4121,
}

// IPv4 options (`netinet/in.h`).
consts! { i32:
    IP_HDRINCL = 2, IP_TOS = 3, IP_TTL = 4, IP_MULTICAST_TTL = 10,
    IP_MULTICAST_LOOP = 11, IP_BINDANY = 24, IP_MINTTL = 66, IP_DONTFRAG = 67,
    IP_RECVDSTADDR = 7, IP_SENDSRCADDR = 7,
}

// IPv6 options (`netinet6/in6.h`).
consts! { i32:
    IPV6_UNICAST_HOPS = 4, IPV6_MULTICAST_HOPS = 10, IPV6_MULTICAST_LOOP = 11, IPV6_V6ONLY = 27,
    IPV6_TCLASS = 61, IPV6_DONTFRAG = 62, IPV6_BINDANY = 64, IPV6_AUTOFLOWLABEL = 59,
    IPV6_RECVPKTINFO = 36, IPV6_PKTINFO = 46,
}

// TCP options (`netinet/tcp.h`).
consts! { i32:
    TCP_NODELAY = 1, TCP_MAXSEG = 2, TCP_NOPUSH = 4, TCP_NOOPT = 8,
    TCP_KEEPINIT = 128, TCP_KEEPIDLE = 256, TCP_KEEPINTVL = 512, TCP_KEEPCNT = 1024,
}

// Sizes.
consts! { usize:
    NG_HOOKSIZ = 32, NG_PATHSIZ = 512, SOCK_MAXADDRLEN = 255,
    NG_NODESIZ = 32, NG_TYPESIZ = 32, NG_CMDSTRSIZ = 32,
}

// Netgraph's generic messages (`netgraph/ng_message.h`).
consts! { u32:
    NGM_GENERIC_COOKIE = 1_137_070_366, NGF_RESP = 1,
    NGM_SHUTDOWN = 1, NGM_MKPEER = 2, NGM_CONNECT = 3, NGM_NAME = 4, NGM_RMHOOK = 5,
    NGM_NODEINFO = 0x3000_0006, NGM_LISTHOOKS = 0x3000_0007, NGM_LISTNAMES = 0x3000_0008,
    NGM_LISTNODES = 0x3000_0009, NGM_LISTTYPES = 0x3000_000a, NGM_TEXT_STATUS = 0x3000_000b,
    NGM_BINARY2ASCII = 0x3000_000c, NGM_ASCII2BINARY = 0x3000_000d, NGM_TEXT_CONFIG = 14,
}

/// `UDP_ENCAP` (`netinet/udp.h`, which the bindings do not include).
pub const UDP_ENCAP: i32 = 1;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    extern crate std;
    use std::string::String;
    use std::vec::Vec;

    fn names(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(prefix))
            .filter_map(|l| {
                l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
            })
            .map(String::from)
            .collect()
    }

    /// Every constant here is checked against the bindings by the kernel
    /// builds (`src/abi.rs`), except the one the bindings lack.
    #[test]
    fn every_constant_is_checked_against_the_bindings() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let ours = std::fs::read_to_string(std::format!("{dir}/src/pure/consts.rs")).unwrap();
        let abi = std::fs::read_to_string(std::format!("{dir}/src/abi.rs")).unwrap();
        let listed: Vec<String> = abi
            .lines()
            .map(|l| l.trim().trim_end_matches(','))
            .filter(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .map(String::from)
            .collect();
        let defs = ours.split("#[cfg(test)]").next().unwrap_or("");
        let mut missing: Vec<String> = defs
            .lines()
            .filter(|l| l.starts_with("    ") && l.contains(" = "))
            .flat_map(|l| l.split(','))
            .filter_map(|a| a.split('=').next())
            .map(|n| String::from(n.trim()))
            .filter(|n| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .chain(names(defs, "pub const "))
            .collect();
        missing.retain(|n| n != "UDP_ENCAP" && !listed.contains(n));
        assert!(missing.is_empty(), "not checked in src/abi.rs: {missing:?}");
    }
}
