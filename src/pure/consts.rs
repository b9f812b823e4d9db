//! The FreeBSD 15 numbers the pure parsers use: error numbers, socket
//! families, types, protocols, option levels and names, sizes. Spelled out
//! here so that the parsers and their host tests need no FreeBSD headers;
//! each has the name of the kernel's definition, and the kernel builds
//! check every one against the bindings at compile time (`src/abi.rs`).

use super::Errno;

// Error numbers (`sys/errno.h`).
pub const E2BIG: Errno = 7;
pub const ENOENT: Errno = 2;
pub const ENOMEM: Errno = 12;
pub const EINVAL: Errno = 22;
pub const ERANGE: Errno = 34;
pub const EALREADY: Errno = 37;

// Address and protocol families (`sys/socket.h`).
pub const AF_UNIX: i32 = 1;
pub const PF_INET: i32 = 2;
pub const PF_INET6: i32 = 28;
pub const PF_ATM: i32 = 30;
pub const PF_DIVERT: i32 = 44;

// Socket types (`sys/socket.h`).
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
pub const SOCK_RDM: i32 = 4;
pub const SOCK_SEQPACKET: i32 = 5;

// Protocols (`netinet/in.h`).
pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_ICMP: i32 = 1;
pub const IPPROTO_IGMP: i32 = 2;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;
pub const IPPROTO_GRE: i32 = 47;
pub const IPPROTO_ESP: i32 = 50;
pub const IPPROTO_AH: i32 = 51;
pub const IPPROTO_SWIPE: i32 = 53;
pub const IPPROTO_ICMPV6: i32 = 58;
pub const IPPROTO_ENCAP: i32 = 98;
pub const IPPROTO_PIM: i32 = 103;
pub const IPPROTO_SCTP: i32 = 132;
pub const IPPROTO_RAW: i32 = 255;

// Socket-level options (`sys/socket.h`).
pub const SOL_SOCKET: i32 = 65_535;
pub const SO_DEBUG: i32 = 1;
pub const SO_ACCEPTCONN: i32 = 2;
pub const SO_REUSEADDR: i32 = 4;
pub const SO_KEEPALIVE: i32 = 8;
pub const SO_DONTROUTE: i32 = 16;
pub const SO_BROADCAST: i32 = 32;
pub const SO_OOBINLINE: i32 = 256;
pub const SO_REUSEPORT: i32 = 512;
pub const SO_REUSEPORT_LB: i32 = 65_536;
pub const SO_SNDBUF: i32 = 4097;
pub const SO_RCVBUF: i32 = 4098;
pub const SO_SNDLOWAT: i32 = 4099;
pub const SO_RCVLOWAT: i32 = 4100;
pub const SO_ERROR: i32 = 4103;
pub const SO_TYPE: i32 = 4104;
pub const SO_FIB: i32 = 4116;
pub const SO_PROTOCOL: i32 = 4118;
pub const SO_DOMAIN: i32 = 4121;

// IPv4 options (`netinet/in.h`).
pub const IP_HDRINCL: i32 = 2;
pub const IP_TOS: i32 = 3;
pub const IP_TTL: i32 = 4;
pub const IP_MULTICAST_TTL: i32 = 10;
pub const IP_MULTICAST_LOOP: i32 = 11;
pub const IP_BINDANY: i32 = 24;
pub const IP_MINTTL: i32 = 66;
pub const IP_DONTFRAG: i32 = 67;

// IPv6 options (`netinet6/in6.h`).
pub const IPV6_UNICAST_HOPS: i32 = 4;
pub const IPV6_MULTICAST_HOPS: i32 = 10;
pub const IPV6_MULTICAST_LOOP: i32 = 11;
pub const IPV6_V6ONLY: i32 = 27;
pub const IPV6_TCLASS: i32 = 61;
pub const IPV6_DONTFRAG: i32 = 62;
pub const IPV6_BINDANY: i32 = 64;
pub const IPV6_AUTOFLOWLABEL: i32 = 59;

// TCP options (`netinet/tcp.h`).
pub const TCP_NODELAY: i32 = 1;
pub const TCP_MAXSEG: i32 = 2;
pub const TCP_NOPUSH: i32 = 4;
pub const TCP_NOOPT: i32 = 8;
pub const TCP_KEEPINIT: i32 = 128;
pub const TCP_KEEPIDLE: i32 = 256;
pub const TCP_KEEPINTVL: i32 = 512;
pub const TCP_KEEPCNT: i32 = 1024;

// Sizes.
pub const NG_HOOKSIZ: usize = 32;
pub const NG_PATHSIZ: usize = 512;
pub const SOCK_MAXADDRLEN: usize = 255;

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
        let mut missing = names(&ours, "pub const ");
        missing.retain(|n| n != "UDP_ENCAP" && !listed.contains(n));
        assert!(missing.is_empty(), "not checked in src/abi.rs: {missing:?}");
    }
}
