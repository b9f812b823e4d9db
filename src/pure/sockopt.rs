//! Symbolic socket-option tables for `setopt` / `getopt`.
//!
//! **This whole module is a deliberate improvement.** FreeBSD's ksocket only
//! takes `struct ng_ksocket_sockopt` as raw numbers plus a byte array
//! (its raw form), so an integer option is spelt `[ 1 ]` on little-endian
//! and `[ 3=1 ]` on big-endian hosts. These tables name the common levels and
//! options, say whether a value is an integer or a boolean and whether it can
//! be set, and convert values to and from the 4-byte native-endian `int` the
//! kernel expects. They add names only: numeric levels and options keep
//! working unchanged.
//!
//! Every number is FreeBSD 15's (`sys/socket.h`, `netinet/in.h`,
//! `netinet6/in6.h`, `netinet/tcp.h`, `netinet/udp.h`), from [`super::consts`];
//! the tests pin each value.

use super::consts as s;
use super::{is_space, Errno, Writer, EINVAL, ERANGE};
use core::fmt::Write as _;

/// The kind of value an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A C `int`.
    Int,
    /// A C `int` used as a boolean (0 = off, anything else = on; the kernel
    /// may report "on" as a value other than 1, e.g. the option's flag bit).
    Bool,
}

/// Whether an option can be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `getsockopt` and `setsockopt`.
    ReadWrite,
    /// `getsockopt` only (`setsockopt` fails with ENOPROTOOPT).
    ReadOnly,
}

/// An option level (second argument of `setsockopt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Symbolic name, as in the C headers.
    pub name: &'static str,
    /// Numeric value.
    pub value: i32,
}

/// A socket option (third argument of `setsockopt`) at a given level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOpt {
    /// The level the option belongs to.
    pub level: i32,
    /// Symbolic name, as in the C headers.
    pub name: &'static str,
    /// Numeric value.
    pub value: i32,
    /// Kind of value.
    pub kind: ValueKind,
    /// Settable or get-only.
    pub access: Access,
}

/// `SOL_SOCKET` (0xffff).
pub const SOL_SOCKET: i32 = s::SOL_SOCKET;
/// `IPPROTO_IP` (0).
pub const IPPROTO_IP: i32 = s::IPPROTO_IP;
/// `IPPROTO_IPV6` (41).
pub const IPPROTO_IPV6: i32 = s::IPPROTO_IPV6;
/// `IPPROTO_TCP` (6).
pub const IPPROTO_TCP: i32 = s::IPPROTO_TCP;
/// `IPPROTO_UDP` (17).
pub const IPPROTO_UDP: i32 = s::IPPROTO_UDP;

/// The option levels, by name.
pub static LEVELS: [Level; 5] = [
    Level {
        name: "SOL_SOCKET",
        value: SOL_SOCKET,
    },
    Level {
        name: "IPPROTO_IP",
        value: IPPROTO_IP,
    },
    Level {
        name: "IPPROTO_IPV6",
        value: IPPROTO_IPV6,
    },
    Level {
        name: "IPPROTO_TCP",
        value: IPPROTO_TCP,
    },
    Level {
        name: "IPPROTO_UDP",
        value: IPPROTO_UDP,
    },
];

const fn opt(
    level: i32,
    name: &'static str,
    value: i32,
    kind: ValueKind,
    access: Access,
) -> SockOpt {
    SockOpt {
        level,
        name,
        value,
        kind,
        access,
    }
}

use Access::{ReadOnly as RO, ReadWrite as RW};
use ValueKind::{Bool, Int};

/// The option table: for each level, each option's name (also the name
/// of its constant in [`super::consts`]), value kind and access.
macro_rules! options {
    ($($level:ident: $($name:ident $kind:ident $access:ident,)* ;)*) => {
        [$($(opt($level, stringify!($name), s::$name, $kind, $access),)*)*]
    };
}

/// The known options, by level: name, kind of value, access. Options
/// whose value is a structure (`SO_LINGER`, `SO_SNDTIMEO`, multicast group
/// requests, …) are left out. `IP_MULTICAST_TTL` is a `u_char` in the
/// header comment; the kernel also takes and returns an int when the value
/// is 4 bytes long.
pub static OPTIONS: [SockOpt; 43] = options! {
    SOL_SOCKET:
        SO_DEBUG Bool RW, SO_ACCEPTCONN Bool RO, SO_REUSEADDR Bool RW,
        SO_KEEPALIVE Bool RW, SO_DONTROUTE Bool RW, SO_BROADCAST Bool RW,
        SO_OOBINLINE Bool RW, SO_REUSEPORT Bool RW, SO_REUSEPORT_LB Bool RW,
        SO_SNDBUF Int RW, SO_RCVBUF Int RW, SO_SNDLOWAT Int RW,
        SO_RCVLOWAT Int RW, SO_ERROR Int RO, SO_TYPE Int RO,
        SO_FIB Int RW, SO_PROTOCOL Int RO, SO_DOMAIN Int RO,
    ;
    IPPROTO_IP:
        IP_HDRINCL Bool RW, IP_TOS Int RW, IP_TTL Int RW,
        IP_MULTICAST_TTL Int RW, IP_MULTICAST_LOOP Bool RW, IP_BINDANY Bool RW,
        IP_MINTTL Int RW, IP_DONTFRAG Bool RW,
    ;
    IPPROTO_IPV6:
        IPV6_UNICAST_HOPS Int RW, IPV6_MULTICAST_HOPS Int RW, IPV6_MULTICAST_LOOP Bool RW,
        IPV6_V6ONLY Bool RW, IPV6_TCLASS Int RW, IPV6_DONTFRAG Bool RW,
        IPV6_BINDANY Bool RW, IPV6_AUTOFLOWLABEL Bool RW,
    ;
    IPPROTO_TCP:
        TCP_NODELAY Bool RW, TCP_MAXSEG Int RW, TCP_NOPUSH Bool RW,
        TCP_NOOPT Bool RW, TCP_KEEPINIT Int RW, TCP_KEEPIDLE Int RW,
        TCP_KEEPINTVL Int RW, TCP_KEEPCNT Int RW,
    ;
    IPPROTO_UDP:
        UDP_ENCAP Int RW,
    ;
};

/// The level called `name` (exact, case-sensitive).
pub fn level_by_name(name: &[u8]) -> Option<&'static Level> {
    LEVELS.iter().find(|l| l.name.as_bytes() == name)
}

/// The level numbered `value`.
pub fn level_by_value(value: i32) -> Option<&'static Level> {
    LEVELS.iter().find(|l| l.value == value)
}

/// The option called `name` (exact, case-sensitive) at `level`.
pub fn option_by_name(level: i32, name: &[u8]) -> Option<&'static SockOpt> {
    OPTIONS
        .iter()
        .find(|o| o.level == level && o.name.as_bytes() == name)
}

/// The option numbered `value` at `level`.
pub fn option_by_value(level: i32, value: i32) -> Option<&'static SockOpt> {
    OPTIONS
        .iter()
        .find(|o| o.level == level && o.value == value)
}

/// The options of `level`, in table order.
pub fn options_of(level: i32) -> impl Iterator<Item = &'static SockOpt> {
    OPTIONS.iter().filter(move |o| o.level == level)
}

/// Size of an integer option value (`sizeof(int)`).
pub const INT_VALUE_LEN: usize = 4;

/// An integer option value as the kernel stores it: 4 bytes, native order.
pub const fn encode_int(value: i32) -> [u8; INT_VALUE_LEN] {
    value.to_ne_bytes()
}

/// Reads an integer option value: the first 4 bytes, native order, as
/// `sooptcopyin` does for an `int` option (longer values are accepted and
/// the rest ignored). EINVAL when shorter than 4 bytes.
pub fn decode_int(value: &[u8]) -> Result<i32, Errno> {
    let bytes = value
        .get(..INT_VALUE_LEN)
        .and_then(|b| <[u8; INT_VALUE_LEN]>::try_from(b).ok())
        .ok_or(EINVAL)?;
    Ok(i32::from_ne_bytes(bytes))
}

/// Parses an option value from text.
///
/// Int: an optional sign and a decimal, `0x` hexadecimal or `0` octal number
/// (like netgraph's `int32` type) from −2^31 to 2^32 − 1, values above
/// `i32::MAX` being taken modulo 2^32; surrounding whitespace is allowed,
/// anything else is EINVAL. Bool: `true`/`false`, `on`/`off`, `yes`/`no` or
/// a number as above (any non-zero number is 1).
pub fn parse_value(kind: ValueKind, text: &[u8]) -> Result<i32, Errno> {
    let text = trim(text);
    if kind == ValueKind::Bool {
        match text {
            b"true" | b"on" | b"yes" => return Ok(1),
            b"false" | b"off" | b"no" => return Ok(0),
            _ => {}
        }
    }
    let v = parse_int(text).ok_or(EINVAL)?;
    Ok(match kind {
        ValueKind::Int => v,
        ValueKind::Bool => i32::from(v != 0),
    })
}

/// Formats an option value: Int as signed decimal, Bool as `1` or `0`.
/// Returns the text length (no NUL); ERANGE when `out` is too small.
pub fn format_value(kind: ValueKind, value: i32, out: &mut [u8]) -> Result<usize, Errno> {
    let mut w = Writer::new(out);
    let shown = match kind {
        ValueKind::Int => value,
        ValueKind::Bool => i32::from(value != 0),
    };
    write!(w, "{shown}").map_err(|_| ERANGE)?;
    Ok(w.len())
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().take_while(|&&c| is_space(c)).count();
    let s = s.get(start..).unwrap_or(&[]);
    let end = s
        .iter()
        .rposition(|&c| !is_space(c))
        .map_or(0, |i| i.saturating_add(1));
    s.get(..end).unwrap_or(&[])
}

/// A whole-token integer in the `int32` range [−2^31, 2^32 − 1], wrapped to
/// `i32`.
fn parse_int(s: &[u8]) -> Option<i32> {
    let (neg, s) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let (radix, digits) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (16, rest),
        [b'0', rest @ ..] if !rest.is_empty() => (8, rest),
        _ => (10, s),
    };
    if digits.is_empty() {
        return None;
    }
    let magnitude = digits.iter().try_fold(0u64, |acc, &c| {
        let d = char::from(c).to_digit(radix)?;
        acc.checked_mul(u64::from(radix))?.checked_add(u64::from(d))
    })?;
    let value = if neg {
        i64::try_from(magnitude).ok()?.checked_neg()?
    } else {
        i64::try_from(magnitude).ok()?
    };
    if value < i64::from(i32::MIN) || value > i64::from(u32::MAX) {
        return None;
    }
    // Values above i32::MAX wrap, as netgraph's int32 type stores them.
    Some(value as i32)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    /// Values checked against the FreeBSD 15 headers in the sysroot.
    #[test]
    fn header_values() {
        let expect: &[(&str, i32, i32)] = &[
            ("SO_DEBUG", 0xffff, 0x1),
            ("SO_ACCEPTCONN", 0xffff, 0x2),
            ("SO_REUSEADDR", 0xffff, 0x4),
            ("SO_KEEPALIVE", 0xffff, 0x8),
            ("SO_DONTROUTE", 0xffff, 0x10),
            ("SO_BROADCAST", 0xffff, 0x20),
            ("SO_OOBINLINE", 0xffff, 0x100),
            ("SO_REUSEPORT", 0xffff, 0x200),
            ("SO_REUSEPORT_LB", 0xffff, 0x10000),
            ("SO_SNDBUF", 0xffff, 0x1001),
            ("SO_RCVBUF", 0xffff, 0x1002),
            ("SO_SNDLOWAT", 0xffff, 0x1003),
            ("SO_RCVLOWAT", 0xffff, 0x1004),
            ("SO_ERROR", 0xffff, 0x1007),
            ("SO_TYPE", 0xffff, 0x1008),
            ("SO_FIB", 0xffff, 0x1014),
            ("SO_PROTOCOL", 0xffff, 0x1016),
            ("SO_DOMAIN", 0xffff, 0x1019),
            ("IP_HDRINCL", 0, 2),
            ("IP_TOS", 0, 3),
            ("IP_TTL", 0, 4),
            ("IP_MULTICAST_TTL", 0, 10),
            ("IP_MULTICAST_LOOP", 0, 11),
            ("IP_BINDANY", 0, 24),
            ("IP_MINTTL", 0, 66),
            ("IP_DONTFRAG", 0, 67),
            ("IPV6_UNICAST_HOPS", 41, 4),
            ("IPV6_MULTICAST_HOPS", 41, 10),
            ("IPV6_MULTICAST_LOOP", 41, 11),
            ("IPV6_V6ONLY", 41, 27),
            ("IPV6_TCLASS", 41, 61),
            ("IPV6_DONTFRAG", 41, 62),
            ("IPV6_BINDANY", 41, 64),
            ("IPV6_AUTOFLOWLABEL", 41, 59),
            ("TCP_NODELAY", 6, 1),
            ("TCP_MAXSEG", 6, 2),
            ("TCP_NOPUSH", 6, 4),
            ("TCP_NOOPT", 6, 8),
            ("TCP_KEEPINIT", 6, 128),
            ("TCP_KEEPIDLE", 6, 256),
            ("TCP_KEEPINTVL", 6, 512),
            ("TCP_KEEPCNT", 6, 1024),
            ("UDP_ENCAP", 17, 1),
        ];
        assert_eq!(expect.len(), OPTIONS.len());
        for (o, &(name, level, value)) in OPTIONS.iter().zip(expect) {
            assert_eq!((o.name, o.level, o.value), (name, level, value));
        }
        let levels: std::vec::Vec<(&str, i32)> = LEVELS.iter().map(|l| (l.name, l.value)).collect();
        assert_eq!(
            levels,
            [
                ("SOL_SOCKET", 0xffff),
                ("IPPROTO_IP", 0),
                ("IPPROTO_IPV6", 41),
                ("IPPROTO_TCP", 6),
                ("IPPROTO_UDP", 17)
            ]
        );
    }

    #[test]
    fn tables_are_consistent() {
        for (i, o) in OPTIONS.iter().enumerate() {
            assert!(level_by_value(o.level).is_some(), "{}", o.name);
            for p in &OPTIONS[..i] {
                assert!(!(p.level == o.level && p.value == o.value), "{}", o.name);
                assert_ne!(p.name, o.name);
            }
            assert_eq!(option_by_name(o.level, o.name.as_bytes()), Some(o));
            assert_eq!(option_by_value(o.level, o.value), Some(o));
        }
        for l in &LEVELS {
            assert_eq!(level_by_name(l.name.as_bytes()), Some(l));
            assert_eq!(level_by_value(l.value), Some(l));
            assert!(options_of(l.value).count() > 0);
        }
        let get_only: std::vec::Vec<&str> = OPTIONS
            .iter()
            .filter(|o| o.access == Access::ReadOnly)
            .map(|o| o.name)
            .collect();
        assert_eq!(
            get_only,
            [
                "SO_ACCEPTCONN",
                "SO_ERROR",
                "SO_TYPE",
                "SO_PROTOCOL",
                "SO_DOMAIN"
            ]
        );
    }

    #[test]
    fn lookups() {
        assert_eq!(level_by_name(b"SOL_SOCKET").unwrap().value, 0xffff);
        assert_eq!(level_by_name(b"sol_socket"), None);
        assert_eq!(level_by_value(255), None);
        let o = option_by_name(SOL_SOCKET, b"SO_RCVBUF").unwrap();
        assert_eq!(
            (o.value, o.kind, o.access),
            (0x1002, ValueKind::Int, Access::ReadWrite)
        );
        // Option numbers are per level: 4 is SO_REUSEADDR, IP_TTL and
        // IPV6_UNICAST_HOPS.
        assert_eq!(option_by_value(SOL_SOCKET, 4).unwrap().name, "SO_REUSEADDR");
        assert_eq!(option_by_value(IPPROTO_IP, 4).unwrap().name, "IP_TTL");
        assert_eq!(
            option_by_value(IPPROTO_IPV6, 4).unwrap().name,
            "IPV6_UNICAST_HOPS"
        );
        assert_eq!(option_by_value(IPPROTO_TCP, 4).unwrap().name, "TCP_NOPUSH");
        assert_eq!(option_by_name(IPPROTO_IP, b"SO_REUSEADDR"), None);
        assert_eq!(option_by_value(SOL_SOCKET, 0x80), None); // SO_LINGER: a struct
    }

    #[test]
    fn int_values() {
        assert_eq!(encode_int(1), 1i32.to_ne_bytes());
        assert_eq!(decode_int(&encode_int(-7)), Ok(-7));
        assert_eq!(decode_int(&[1, 0, 0]), Err(EINVAL));
        let mut long = std::vec::Vec::from(encode_int(65536));
        long.extend_from_slice(&[9; 28]);
        assert_eq!(decode_int(&long), Ok(65536));
    }

    #[test]
    fn text_values() {
        use ValueKind::{Bool, Int};
        assert_eq!(parse_value(Int, b"65536"), Ok(65536));
        assert_eq!(parse_value(Int, b" -1 "), Ok(-1));
        assert_eq!(parse_value(Int, b"0x10"), Ok(16));
        assert_eq!(parse_value(Int, b"010"), Ok(8));
        assert_eq!(parse_value(Int, b"0"), Ok(0));
        assert_eq!(parse_value(Int, b"+7"), Ok(7));
        assert_eq!(parse_value(Int, b"4294967295"), Ok(-1));
        assert_eq!(parse_value(Int, b"-2147483648"), Ok(i32::MIN));
        for bad in [
            &b""[..],
            b" ",
            b"-",
            b"0x",
            b"08",
            b"1 2",
            b"12abc",
            b"4294967296",
            b"-2147483649",
            b"true",
            b"--1",
        ] {
            assert_eq!(parse_value(Int, bad), Err(EINVAL), "{bad:?}");
        }
        for (t, v) in [
            (&b"true"[..], 1),
            (b"on", 1),
            (b"yes", 1),
            (b"false", 0),
            (b"off", 0),
            (b"no", 0),
            (b"1", 1),
            (b"0", 0),
            (b"4", 1),
            (b" on\n", 1),
        ] {
            assert_eq!(parse_value(Bool, t), Ok(v), "{t:?}");
        }
        assert_eq!(parse_value(Bool, b"TRUE"), Err(EINVAL));
        let mut buf = [0u8; 16];
        let n = format_value(Int, i32::MIN, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"-2147483648");
        let n = format_value(Bool, 4, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"1");
        let n = format_value(Bool, 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"0");
        assert_eq!(format_value(Int, 100, &mut buf[..2]), Err(ERANGE));
    }

    proptest! {
        #[test]
        fn int_text_roundtrip(v in any::<i32>()) {
            let mut buf = [0u8; 16];
            let n = format_value(ValueKind::Int, v, &mut buf).unwrap();
            prop_assert_eq!(parse_value(ValueKind::Int, &buf[..n]), Ok(v));
            prop_assert_eq!(decode_int(&encode_int(v)), Ok(v));
        }

        /// Booleans: every int formats as 0/1 and reads back as `v != 0`;
        /// every integer spelling (decimal, hex, octal, signed) reads back.
        #[test]
        fn bool_and_radix_roundtrip(v in any::<i32>()) {
            let mut buf = [0u8; 16];
            let n = format_value(ValueKind::Bool, v, &mut buf).unwrap();
            prop_assert_eq!(parse_value(ValueKind::Bool, &buf[..n]), Ok(i32::from(v != 0)));
            let u = v as u32;
            for t in [
                std::format!("{u:#x}"),
                std::format!("{u:#X}"),
                std::format!("0{u:o}"),
                std::format!("+{u}"),
                std::format!(" \t{v}\n"),
            ] {
                prop_assert_eq!(parse_value(ValueKind::Int, t.as_bytes()), Ok(v), "{}", t);
                prop_assert_eq!(
                    parse_value(ValueKind::Bool, t.as_bytes()),
                    Ok(i32::from(v != 0)),
                    "{}",
                    t
                );
            }
        }

        #[test]
        fn parse_value_never_panics(t in prop::collection::vec(any::<u8>(), 0..24)) {
            let _ = parse_value(ValueKind::Int, &t);
            let _ = parse_value(ValueKind::Bool, &t);
        }
    }
}
