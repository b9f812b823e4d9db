//! Values a fuzz case builds from its input: socket addresses of every
//! family (true and lying lengths), socket options with values of the
//! right and wrong sizes, ksocket and generic messages, and their ASCII
//! forms. Tables hold what FreeBSD defines, so mutations move between
//! meaningful values instead of guessing 32-bit constants.

use super::input::Input;

macro_rules! c {
    ($($n:ident),+) => { $(const $n: i32 = fbsd_sys::$n as i32;)+ };
}
c!(
    SOL_SOCKET,
    SO_DEBUG,
    SO_REUSEADDR,
    SO_KEEPALIVE,
    SO_DONTROUTE,
    SO_BROADCAST,
    SO_LINGER,
    SO_OOBINLINE,
    SO_REUSEPORT,
    SO_TIMESTAMP,
    SO_SNDBUF,
    SO_RCVBUF,
    SO_SNDLOWAT,
    SO_RCVLOWAT,
    SO_SNDTIMEO,
    SO_RCVTIMEO,
    SO_ERROR,
    SO_TYPE,
    SO_USER_COOKIE,
    SO_PROTOCOL,
    SO_DOMAIN,
    SO_ACCEPTFILTER,
    IPPROTO_IP,
    IP_OPTIONS,
    IP_HDRINCL,
    IP_TOS,
    IP_TTL,
    IP_RECVDSTADDR,
    IP_MULTICAST_IF,
    IP_MULTICAST_TTL,
    IP_MULTICAST_LOOP,
    IP_ADD_MEMBERSHIP,
    IP_DROP_MEMBERSHIP,
    IP_PORTRANGE,
    IP_ONESBCAST,
    IP_BINDANY,
    IP_MINTTL,
    IP_DONTFRAG,
    IPPROTO_TCP,
    TCP_NODELAY,
    TCP_MAXSEG,
    TCP_NOPUSH,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_KEEPCNT,
    TCP_INFO,
    TCP_CONGESTION,
    TCP_FUNCTION_BLK,
    TCP_FUNCTION_ALIAS,
    IPPROTO_IPV6,
    IPV6_V6ONLY,
    IPV6_UNICAST_HOPS,
    IPV6_MULTICAST_IF,
    IPV6_MULTICAST_HOPS,
    IPV6_MULTICAST_LOOP,
    IPV6_JOIN_GROUP,
    IPV6_LEAVE_GROUP,
    IPPROTO_UDP
);

pub const AF_LOCAL: u8 = fbsd_sys::AF_UNIX as u8;
pub const AF_INET: u8 = fbsd_sys::AF_INET as u8;
pub const AF_INET6: u8 = fbsd_sys::AF_INET6 as u8;
pub const AF_NETGRAPH: u8 = fbsd_sys::AF_NETGRAPH as u8;

/// Ports and paths a case has learned (its ksockets' own, its peers').
#[derive(Default, Clone)]
pub struct Known {
    pub ports: Vec<u16>,
    /// Node IDs seen (ksockets, clones, the socket node).
    pub ids: Vec<u32>,
}

/// Local socket names a case may use: relative names in the case's
/// directory, so nothing outside it is touched.
pub const LOCAL_NAMES: [&str; 4] = ["s0", "s1", "sock.a", "d/x"];

/// A port: 0, a known one, a privileged one or any.
pub fn port(inp: &mut Input, k: &Known) -> u16 {
    match inp.below(6) {
        0 => 0,
        1..=3 if !k.ports.is_empty() => k.ports[inp.below(k.ports.len())],
        4 => inp.pick(&[7u16, 9, 53, 1023, 65535]),
        _ => inp.u16(),
    }
}

/// A `struct sockaddr_in`.
pub fn sin(inp: &mut Input, k: &Known) -> Vec<u8> {
    let addr = match inp.below(6) {
        0..=2 => [127, 0, 0, 1],
        3 => [0, 0, 0, 0],
        4 => inp.pick(&[
            [255, 255, 255, 255],
            [239, 1, 2, 3],
            [127, 255, 255, 255],
            [10, 0, 0, 1],
        ]),
        _ => [inp.u8(), inp.u8(), inp.u8(), inp.u8()],
    };
    let p = port(inp, k);
    let mut v = vec![16u8, AF_INET];
    v.extend_from_slice(&p.to_be_bytes());
    v.extend_from_slice(&addr);
    v.extend_from_slice(&[0u8; 8]);
    v
}

/// A `struct sockaddr_in6`.
pub fn sin6(inp: &mut Input, k: &Known) -> Vec<u8> {
    let mut addr = [0u8; 16];
    match inp.below(5) {
        0..=2 => addr[15] = 1,
        3 => {}
        _ => {
            for b in addr.iter_mut() {
                *b = inp.u8();
            }
        }
    }
    let p = port(inp, k);
    let mut v = vec![28u8, AF_INET6];
    v.extend_from_slice(&p.to_be_bytes());
    v.extend_from_slice(&[0u8; 4]);
    v.extend_from_slice(&addr);
    let scope = if inp.below(8) == 0 { inp.u32() } else { 0 };
    v.extend_from_slice(&scope.to_ne_bytes());
    v
}

/// A `struct sockaddr_un` with one of the case's names, or other bytes.
pub fn sun(inp: &mut Input) -> Vec<u8> {
    let path: Vec<u8> = match inp.below(5) {
        0..=2 => LOCAL_NAMES[inp.below(LOCAL_NAMES.len())]
            .as_bytes()
            .to_vec(),
        3 => Vec::new(),
        _ => inp
            .short_bytes(120)
            .iter()
            .map(|&b| if b == b'/' { b'_' } else { b })
            .collect(),
    };
    let mut v = vec![0u8, AF_LOCAL];
    v.extend_from_slice(&path);
    if inp.below(4) != 0 {
        v.push(0);
    }
    v[0] = v.len().min(255) as u8;
    v
}

/// A socket address of any family, sometimes with a false `sa_len`.
pub fn sockaddr(inp: &mut Input, k: &Known) -> Vec<u8> {
    let mut v = match inp.below(8) {
        0..=2 => sin(inp, k),
        3 => sin6(inp, k),
        4 => sun(inp),
        5 => {
            let mut v = vec![0u8, AF_NETGRAPH];
            v.extend_from_slice(inp.short_bytes(40));
            v[0] = v.len() as u8;
            v
        }
        _ => {
            let mut v = vec![0u8, inp.u8()];
            v.extend_from_slice(inp.short_bytes(60));
            v[0] = v.len() as u8;
            v
        }
    };
    match inp.below(10) {
        0 => v[0] = inp.u8(),
        1 => v.truncate(inp.below(v.len() + 1)),
        _ => {}
    }
    v
}

/// One socket option: level, name and the size of value it takes.
#[derive(Clone, Copy)]
pub struct Opt {
    pub level: i32,
    pub name: i32,
    /// Bytes of a well-formed value.
    pub size: usize,
}

const fn o(level: i32, name: i32, size: usize) -> Opt {
    Opt { level, name, size }
}

/// The options FreeBSD's inet, inet6, local and TCP sockets take.
pub const OPTS: &[Opt] = &[
    o(SOL_SOCKET, SO_DEBUG, 4),
    o(SOL_SOCKET, SO_REUSEADDR, 4),
    o(SOL_SOCKET, SO_KEEPALIVE, 4),
    o(SOL_SOCKET, SO_DONTROUTE, 4),
    o(SOL_SOCKET, SO_BROADCAST, 4),
    o(SOL_SOCKET, SO_LINGER, 8),
    o(SOL_SOCKET, SO_OOBINLINE, 4),
    o(SOL_SOCKET, SO_REUSEPORT, 4),
    o(SOL_SOCKET, SO_TIMESTAMP, 4),
    o(SOL_SOCKET, SO_SNDBUF, 4),
    o(SOL_SOCKET, SO_RCVBUF, 4),
    o(SOL_SOCKET, SO_SNDLOWAT, 4),
    o(SOL_SOCKET, SO_RCVLOWAT, 4),
    o(SOL_SOCKET, SO_SNDTIMEO, 16),
    o(SOL_SOCKET, SO_RCVTIMEO, 16),
    o(SOL_SOCKET, SO_ERROR, 4),
    o(SOL_SOCKET, SO_TYPE, 4),
    o(SOL_SOCKET, SO_USER_COOKIE, 4),
    o(SOL_SOCKET, SO_PROTOCOL, 4),
    o(SOL_SOCKET, SO_DOMAIN, 4),
    o(SOL_SOCKET, SO_ACCEPTFILTER, 256),
    o(IPPROTO_IP, IP_OPTIONS, 40),
    o(IPPROTO_IP, IP_HDRINCL, 4),
    o(IPPROTO_IP, IP_TOS, 4),
    o(IPPROTO_IP, IP_TTL, 4),
    o(IPPROTO_IP, IP_RECVDSTADDR, 4),
    o(IPPROTO_IP, IP_MULTICAST_IF, 4),
    o(IPPROTO_IP, IP_MULTICAST_TTL, 1),
    o(IPPROTO_IP, IP_MULTICAST_LOOP, 1),
    o(IPPROTO_IP, IP_ADD_MEMBERSHIP, 8),
    o(IPPROTO_IP, IP_DROP_MEMBERSHIP, 8),
    o(IPPROTO_IP, IP_PORTRANGE, 4),
    o(IPPROTO_IP, IP_ONESBCAST, 4),
    o(IPPROTO_IP, IP_BINDANY, 4),
    o(IPPROTO_IP, IP_MINTTL, 4),
    o(IPPROTO_IP, IP_DONTFRAG, 4),
    o(IPPROTO_TCP, TCP_NODELAY, 4),
    o(IPPROTO_TCP, TCP_MAXSEG, 4),
    o(IPPROTO_TCP, TCP_NOPUSH, 4),
    o(IPPROTO_TCP, TCP_KEEPIDLE, 4),
    o(IPPROTO_TCP, TCP_KEEPINTVL, 4),
    o(IPPROTO_TCP, TCP_KEEPCNT, 4),
    o(IPPROTO_TCP, TCP_INFO, 240),
    o(IPPROTO_TCP, TCP_CONGESTION, 16),
    o(IPPROTO_TCP, TCP_FUNCTION_BLK, 36),
    o(IPPROTO_TCP, TCP_FUNCTION_ALIAS, 36),
    o(IPPROTO_IPV6, IPV6_V6ONLY, 4),
    o(IPPROTO_IPV6, IPV6_UNICAST_HOPS, 4),
    o(IPPROTO_IPV6, IPV6_MULTICAST_IF, 4),
    o(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 4),
    o(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 4),
    o(IPPROTO_IPV6, IPV6_JOIN_GROUP, 20),
    o(IPPROTO_IPV6, IPV6_LEAVE_GROUP, 20),
    o(IPPROTO_UDP, 1, 4),
    // The socket model's own option with a value beyond 1 KiB.
    o(SOL_SOCKET, crate::kern::inet::SO_HARNESS_LONG, 3000),
];

/// A `struct ng_ksocket_sockopt`: level, name, value.
pub fn sockopt(inp: &mut Input) -> Vec<u8> {
    let (level, name, size) = if inp.below(8) == 0 {
        (inp.u32() as i32, inp.u32() as i32, 4)
    } else {
        let op = OPTS[inp.below(OPTS.len())];
        (op.level, op.name, op.size)
    };
    let mut v = level.to_ne_bytes().to_vec();
    v.extend_from_slice(&name.to_ne_bytes());
    match inp.below(8) {
        0 => {}
        1 => v.extend_from_slice(&inp.payload(6000)),
        2 => v.extend_from_slice(inp.short_bytes(size.saturating_sub(1))),
        3 => {
            // A multicast group on the loopback interface.
            v.extend_from_slice(&[239, 1, 2, 3, 127, 0, 0, 1]);
        }
        _ => {
            let mut val = inp.bytes(size).to_vec();
            val.resize(size, 0);
            if size == 4 && inp.bool() {
                val = inp
                    .pick(&[0i32, 1, 2, 100, 4096, 65536, -1])
                    .to_ne_bytes()
                    .to_vec();
            }
            v.extend_from_slice(&val);
        }
    }
    v
}

/// ksocket's command numbers (and its statistics messages).
pub const KS_CMDS: [u32; 11] = [
    fbsd_sys::NGM_KSOCKET_BIND,
    fbsd_sys::NGM_KSOCKET_LISTEN,
    fbsd_sys::NGM_KSOCKET_ACCEPT,
    fbsd_sys::NGM_KSOCKET_CONNECT,
    fbsd_sys::NGM_KSOCKET_GETNAME,
    fbsd_sys::NGM_KSOCKET_GETPEERNAME,
    fbsd_sys::NGM_KSOCKET_SETOPT,
    fbsd_sys::NGM_KSOCKET_GETOPT,
    100,
    101,
    102,
];

/// ksocket's ASCII command names.
pub const KS_NAMES: [&str; 11] = [
    "bind",
    "listen",
    "accept",
    "connect",
    "getname",
    "getpeername",
    "setopt",
    "getopt",
    "getstats",
    "clrstats",
    "getclrstats",
];

/// A ksocket command number: one of its own, or any.
pub fn ks_cmd(inp: &mut Input) -> u32 {
    if inp.below(12) == 0 {
        inp.u32()
    } else {
        inp.pick(&KS_CMDS)
    }
}

/// The argument of ksocket command `cmd` (a reply's when `resp`).
pub fn ks_args(inp: &mut Input, k: &Known, cmd: u32, resp: bool) -> Vec<u8> {
    if inp.below(10) == 0 {
        return inp.payload(300);
    }
    let id = || k.ids.first().copied().unwrap_or(0);
    match cmd {
        fbsd_sys::NGM_KSOCKET_BIND | fbsd_sys::NGM_KSOCKET_CONNECT if !resp => sockaddr(inp, k),
        fbsd_sys::NGM_KSOCKET_CONNECT => inp.pick(&[0i32, 61, 35, 36]).to_ne_bytes().to_vec(),
        fbsd_sys::NGM_KSOCKET_LISTEN => inp
            .pick(&[0i32, 1, 5, -1, 128, 100000])
            .to_ne_bytes()
            .to_vec(),
        fbsd_sys::NGM_KSOCKET_ACCEPT if resp => {
            let mut v = id().to_ne_bytes().to_vec();
            v.extend(sockaddr(inp, k));
            v
        }
        fbsd_sys::NGM_KSOCKET_GETNAME | fbsd_sys::NGM_KSOCKET_GETPEERNAME if resp => {
            sockaddr(inp, k)
        }
        fbsd_sys::NGM_KSOCKET_SETOPT | fbsd_sys::NGM_KSOCKET_GETOPT => sockopt(inp),
        100 | 102 if resp => inp.payload(160),
        _ => Vec::new(),
    }
}

/// An ASCII rendering of a socket address, well formed or not.
pub fn sockaddr_text(inp: &mut Input, k: &Known) -> String {
    let p = port(inp, k);
    match inp.below(10) {
        0 | 1 => format!("inet/127.0.0.1:{p}"),
        2 => format!("inet/0.0.0.0:{p}"),
        3 => format!("inet6/::1:{p}"),
        4 => format!("inet6/[::1]:{p}"),
        5 => format!("local/{}", LOCAL_NAMES[inp.below(LOCAL_NAMES.len())]),
        6 => format!("\"local/{}\"", LOCAL_NAMES[inp.below(LOCAL_NAMES.len())]),
        7 => format!(
            "{{ len={} family={} data=[ {} ] }}",
            inp.u8(),
            inp.u8(),
            inp.short_bytes(20)
                .iter()
                .map(|b| format!("0x{b:x}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        8 => format!(
            "inet/{}.{}.{}.{}:{p}",
            inp.u8(),
            inp.u8(),
            inp.u8(),
            inp.u8()
        ),
        _ => String::from_utf8_lossy(inp.short_bytes(60)).into_owned(),
    }
}

/// An ASCII socket option (`{ level=.. name=.. value=.. }`).
pub fn sockopt_text(inp: &mut Input) -> String {
    let op = OPTS[inp.below(OPTS.len())];
    let level = match inp.below(6) {
        0 => "socket".to_string(),
        1 => match op.level {
            IPPROTO_TCP => "tcp".to_string(),
            IPPROTO_IP => "ip".to_string(),
            _ => op.level.to_string(),
        },
        _ => op.level.to_string(),
    };
    let name = match inp.below(5) {
        0 => "reuseaddr".to_string(),
        1 => "nodelay".to_string(),
        _ => op.name.to_string(),
    };
    let value = match inp.below(5) {
        0 => String::new(),
        1 => format!(" value={}", inp.u32() as i32),
        2 => format!(
            " value=[ {} ]",
            inp.short_bytes(40)
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        3 => format!(" value=\"{}\"", inp.name(40).replace('"', "")),
        _ => format!(" value={}", inp.pick(&[0, 1, 4096, 65536])),
    };
    match inp.below(8) {
        0 => String::from_utf8_lossy(inp.short_bytes(80)).into_owned(),
        _ => format!("{{ level={level} name={name}{value} }}"),
    }
}

/// An ASCII argument for ksocket command `name`.
pub fn ks_text(inp: &mut Input, k: &Known, name: &str) -> String {
    if inp.below(10) == 0 {
        return String::from_utf8_lossy(inp.short_bytes(200)).into_owned();
    }
    match name {
        "bind" | "connect" => sockaddr_text(inp, k),
        "listen" => inp
            .pick(&["0", "1", "5", "-1", "128", "0x7fffffff"])
            .to_string(),
        "setopt" | "getopt" => sockopt_text(inp),
        _ => String::new(),
    }
}

/// Hook names a ksocket is created with (`family/type/proto`), well formed
/// and not.
pub const KS_HOOKS: [&str; 14] = [
    "inet/dgram/udp",
    "inet/stream/tcp",
    "inet6/dgram/udp",
    "inet6/stream/tcp",
    "local/dgram/0",
    "local/stream/0",
    "local/seqpacket/0",
    "inet/raw/icmp",
    "inet/dgram/udplite",
    "2/2/17",
    "inet/dgram/0",
    "inet/seqpacket/sctp",
    "bogus/dgram/udp",
    "inet/stream/udp",
];

/// A generic netgraph command number (with the flags FreeBSD gives them).
pub const GEN_CMDS: [u32; 14] = [
    fbsd_sys::NGM_SHUTDOWN,
    fbsd_sys::NGM_MKPEER,
    fbsd_sys::NGM_CONNECT,
    fbsd_sys::NGM_NAME,
    fbsd_sys::NGM_RMHOOK,
    fbsd_sys::NGM_NODEINFO,
    fbsd_sys::NGM_LISTHOOKS,
    fbsd_sys::NGM_LISTNAMES,
    fbsd_sys::NGM_LISTNODES,
    fbsd_sys::NGM_LISTTYPES,
    fbsd_sys::NGM_TEXT_STATUS,
    fbsd_sys::NGM_BINARY2ASCII,
    fbsd_sys::NGM_ASCII2BINARY,
    fbsd_sys::NGM_TEXT_CONFIG,
];
