//! Compile-time checks, in the kernel builds, that the FreeBSD numbers and
//! layouts the pure parsers and the node types spell out themselves (so that
//! they need no bindings) are those of the bindings: a mismatch does not
//! build. A host test (`pure::consts`) checks that every constant of
//! `pure::consts` is listed here.

/// Asserts that each `$m::NAME` equals `fbsd_sys::NAME`.
macro_rules! same {
    ($m:path: $($name:ident),* $(,)?) => {
        const _: () = {
            use $m as ours;
            $(
                #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
                let _ = assert!(ours::$name as i64 == fbsd_sys::$name as i64, stringify!($name));
            )*
        };
    };
}

// `pure::consts::UDP_ENCAP` is not in the bindings (`netinet/udp.h`).
same!(crate::pure::consts:
    E2BIG,
    ENOENT,
    ENOMEM,
    EINVAL,
    ERANGE,
    EALREADY,
    AF_UNIX,
    PF_INET,
    PF_INET6,
    PF_ATM,
    PF_DIVERT,
    SOCK_STREAM,
    SOCK_DGRAM,
    SOCK_RAW,
    SOCK_RDM,
    SOCK_SEQPACKET,
    IPPROTO_IP,
    IPPROTO_ICMP,
    IPPROTO_IGMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPPROTO_IPV6,
    IPPROTO_GRE,
    IPPROTO_ESP,
    IPPROTO_AH,
    IPPROTO_SWIPE,
    IPPROTO_ICMPV6,
    IPPROTO_ENCAP,
    IPPROTO_PIM,
    IPPROTO_SCTP,
    IPPROTO_RAW,
    SOL_SOCKET,
    SO_DEBUG,
    SO_ACCEPTCONN,
    SO_REUSEADDR,
    SO_KEEPALIVE,
    SO_DONTROUTE,
    SO_BROADCAST,
    SO_OOBINLINE,
    SO_REUSEPORT,
    SO_REUSEPORT_LB,
    SO_SNDBUF,
    SO_RCVBUF,
    SO_SNDLOWAT,
    SO_RCVLOWAT,
    SO_ERROR,
    SO_TYPE,
    SO_FIB,
    SO_PROTOCOL,
    SO_DOMAIN,
    IP_HDRINCL,
    IP_TOS,
    IP_TTL,
    IP_MULTICAST_TTL,
    IP_MULTICAST_LOOP,
    IP_BINDANY,
    IP_MINTTL,
    IP_DONTFRAG,
    IP_RECVDSTADDR,
    IP_SENDSRCADDR,
    IPV6_UNICAST_HOPS,
    IPV6_MULTICAST_HOPS,
    IPV6_MULTICAST_LOOP,
    IPV6_V6ONLY,
    IPV6_TCLASS,
    IPV6_DONTFRAG,
    IPV6_BINDANY,
    IPV6_AUTOFLOWLABEL,
    IPV6_RECVPKTINFO,
    IPV6_PKTINFO,
    TCP_NODELAY,
    TCP_MAXSEG,
    TCP_NOPUSH,
    TCP_NOOPT,
    TCP_KEEPINIT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_KEEPCNT,
    NG_HOOKSIZ,
    NG_PATHSIZ,
    SOCK_MAXADDRLEN,
    NG_NODESIZ,
    NG_TYPESIZ,
    NG_CMDSTRSIZ,
    NGM_GENERIC_COOKIE,
    NGF_RESP,
    NGM_SHUTDOWN,
    NGM_MKPEER,
    NGM_CONNECT,
    NGM_NAME,
    NGM_RMHOOK,
    NGM_NODEINFO,
    NGM_LISTHOOKS,
    NGM_LISTNAMES,
    NGM_LISTNODES,
    NGM_LISTTYPES,
    NGM_TEXT_STATUS,
    NGM_BINARY2ASCII,
    NGM_ASCII2BINARY,
    NGM_TEXT_CONFIG,
);

/// The control-data layout `pure::cmsg` writes and reads.
const _: () = {
    use crate::pure::cmsg;
    use core::mem::size_of;
    assert!(cmsg::HDR_LEN == size_of::<fbsd_sys::cmsghdr>());
    assert!(cmsg::IN_ADDR_LEN == size_of::<fbsd_sys::in_addr>());
    assert!(cmsg::IN6_PKTINFO_LEN == size_of::<fbsd_sys::in6_pktinfo>());
    assert!(core::mem::offset_of!(fbsd_sys::in6_pktinfo, ipi6_ifindex) == 16);
};

#[cfg(feature = "ksocket")]
mod ksocket {
    use core::mem::{offset_of, size_of};

    use crate::ksocket::args;
    use crate::ksocket::laddr;
    use crate::ksocket::stats::{self, Counter};
    use crate::ksocket::types::{cmd, COOKIE, TAG_SOCKADDR};
    use fbsd_sys::{ng_ksocket_laddr_tag as Laddr, ng_ksocket_stats as Stats};

    const _: () = {
        assert!(COOKIE == fbsd_sys::NGM_KSOCKET_COOKIE);
        assert!(TAG_SOCKADDR as u32 == fbsd_sys::NG_KSOCKET_TAG_SOCKADDR);
        assert!(cmd::BIND == fbsd_sys::NGM_KSOCKET_BIND);
        assert!(cmd::LISTEN == fbsd_sys::NGM_KSOCKET_LISTEN);
        assert!(cmd::ACCEPT == fbsd_sys::NGM_KSOCKET_ACCEPT);
        assert!(cmd::CONNECT == fbsd_sys::NGM_KSOCKET_CONNECT);
        assert!(cmd::GETNAME == fbsd_sys::NGM_KSOCKET_GETNAME);
        assert!(cmd::GETPEERNAME == fbsd_sys::NGM_KSOCKET_GETPEERNAME);
        assert!(cmd::SETOPT == fbsd_sys::NGM_KSOCKET_SETOPT);
        assert!(cmd::GETOPT == fbsd_sys::NGM_KSOCKET_GETOPT);
        assert!(args::SOCKOPT_HDR == size_of::<fbsd_sys::ng_ksocket_sockopt>());
        assert!(args::SOCKOPT_HDR == offset_of!(fbsd_sys::ng_ksocket_sockopt, value));
        assert!(args::OPTLEN_START == fbsd_sys::NG_KSOCKET_MAX_OPTLEN as usize);
        assert!(args::ACCEPT_ADDR_OFF == offset_of!(fbsd_sys::ng_ksocket_accept, addr));
        // Evaluated at compile time: an overflow is a build error.
        #[allow(clippy::arithmetic_side_effects)]
        let tag_addr = offset_of!(fbsd_sys::sa_tag, sa) - size_of::<fbsd_sys::m_tag>();
        assert!(args::TAG_ADDR_OFF == tag_addr);
        assert!(args::SA_MAXLEN == size_of::<fbsd_sys::sockaddr_storage>());
        assert!(offset_of!(fbsd_sys::sa_tag, id) == size_of::<fbsd_sys::m_tag>());
    };

    /// Offset of a counter in the statistics reply.
    #[allow(clippy::arithmetic_side_effects)]
    const fn at(c: Counter) -> usize {
        c as usize * 8
    }

    // ngsock's additions, as include/netgraph/ng_ksocket_ext.h has them.
    #[allow(clippy::arithmetic_side_effects)]
    const _: () = {
        assert!(cmd::GETSTATS == fbsd_sys::NGM_KSOCKET_GETSTATS);
        assert!(cmd::CLRSTATS == fbsd_sys::NGM_KSOCKET_CLRSTATS);
        assert!(cmd::GETCLRSTATS == fbsd_sys::NGM_KSOCKET_GETCLRSTATS);
        assert!(stats::REPLY_LEN == size_of::<Stats>());
        assert!(offset_of!(Stats, rx_packets) == at(Counter::RxPackets));
        assert!(offset_of!(Stats, rx_bytes) == at(Counter::RxBytes));
        assert!(offset_of!(Stats, tx_packets) == at(Counter::TxPackets));
        assert!(offset_of!(Stats, tx_bytes) == at(Counter::TxBytes));
        assert!(offset_of!(Stats, tx_errors) == at(Counter::TxErrors));
        assert!(offset_of!(Stats, rx_errors) == at(Counter::RxErrors));
        assert!(offset_of!(Stats, rx_drop_trunc) == at(Counter::RxDropTrunc));
        assert!(offset_of!(Stats, rx_drop_nobufs) == at(Counter::RxDropNobufs));
        assert!(offset_of!(Stats, rx_drop_hook) == at(Counter::RxDropHook));
        assert!(offset_of!(Stats, tx_drop_listen) == at(Counter::TxDropListen));
        assert!(offset_of!(Stats, tx_drop_badaddr) == at(Counter::TxDropBadaddr));
        assert!(offset_of!(Stats, tx_drop_nosock) == at(Counter::TxDropNosock));
        assert!(offset_of!(Stats, tag_failures) == at(Counter::TagFailures));
        assert!(offset_of!(Stats, eofs) == at(Counter::Eofs));
        assert!(offset_of!(Stats, accepts) == at(Counter::Accepts));

        assert!(laddr::LADDR_COOKIE == fbsd_sys::NGM_KSOCKET_LADDR_COOKIE);
        assert!(laddr::TAG_LADDR as u32 == fbsd_sys::NG_KSOCKET_TAG_LADDR);
        let base = size_of::<fbsd_sys::m_tag>();
        assert!(offset_of!(Laddr, id) == base);
        assert!(offset_of!(Laddr, ifindex) - base == laddr::TAG_IFINDEX_OFF);
        assert!(offset_of!(Laddr, sa) - base == laddr::TAG_ADDR_OFF);
        assert!(laddr::SIN_LEN == size_of::<fbsd_sys::sockaddr_in>());
        assert!(laddr::SIN6_LEN == size_of::<fbsd_sys::sockaddr_in6>());
    };
}

#[cfg(feature = "socket")]
mod socket {
    use crate::socket::{
        NGM_SOCKET_COOKIE, NGM_SOCK_CMD_LINGER, NGM_SOCK_CMD_NOLINGER, NG_CONTROL, NG_DATA,
    };

    #[allow(clippy::cast_possible_wrap)]
    const _: () = {
        assert!(NG_DATA == fbsd_sys::NG_DATA as i32);
        assert!(NG_CONTROL == fbsd_sys::NG_CONTROL as i32);
        assert!(NGM_SOCKET_COOKIE == fbsd_sys::NGM_SOCKET_COOKIE);
        assert!(NGM_SOCK_CMD_NOLINGER == fbsd_sys::NGM_SOCK_CMD_NOLINGER);
        assert!(NGM_SOCK_CMD_LINGER == fbsd_sys::NGM_SOCK_CMD_LINGER);
        assert!(core::mem::size_of::<fbsd_sys::ngpcb>() == 40);
    };
}
