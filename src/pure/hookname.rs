//! The ksocket hook-name grammar `<family>/<type>/<proto>` (docs/ksocket.md §3).
//!
//! A ksocket node's only hook names the `socket(2)` triple it creates. The
//! rules reproduced from FreeBSD 15 (§3.1):
//!
//! * only the first 31 bytes of the name count (`NG_HOOKSIZ` − 1);
//! * the family token ends at the first `/`, the type token at the next one,
//!   and the protocol token is everything after that (further slashes
//!   included); a missing `/` is an error;
//! * each token is first looked up, exactly and case-sensitively, in its alias
//!   table, where an alias only matches when its "family" column equals the
//!   family the lookup is made for (0 for the family and type tables, the
//!   numeric family already resolved for the protocol table);
//! * otherwise it is converted like FreeBSD's base-10 `strtoul`: the whole
//!   token must be consumed, leading whitespace and one sign are tolerated,
//!   the empty token is 0, and the result, truncated to a C `int`, must not
//!   be negative;
//! * any failure is EINVAL.
//!
//! **Deliberate improvement** ([`Dialect::Extended`]): FreeBSD binds every
//! protocol alias to `inet`, so `inet6/dgram/udp` is rejected and IPv6 users
//! must write `inet6/dgram/17`; and it has no `sctp` alias. The extended
//! dialect adds protocol aliases for `inet6` (`ip` = 0, `raw`, `icmp6`,
//! `tcp`, `udp`, `gre`, `esp`, `ah`, `encap`, `pim`, `sctp`) and `sctp` for
//! `inet`. No alias is a number and no FreeBSD alias changes meaning, so every
//! name FreeBSD accepts yields the same triple in both dialects; only names
//! FreeBSD rejects can become valid. The extension entries are marked
//! [`Origin::Extension`] in the tables.

use super::consts as c;
use super::{c_str, strtoul10, Dialect, Errno, EINVAL};

/// `NG_HOOKSIZ`: size of a netgraph hook-name buffer, NUL included.
pub const NG_HOOKSIZ: usize = super::consts::NG_HOOKSIZ;

/// Where an alias comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Present in FreeBSD 15's `ng_ksocket`.
    FreeBsd,
    /// A deliberate improvement of this crate (only in [`Dialect::Extended`]).
    Extension,
}

/// One row of an alias table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alias {
    /// The alias text (exact, case-sensitive).
    pub name: &'static str,
    /// The value it stands for.
    pub value: i32,
    /// The family the alias is bound to (0 for the family and type tables).
    pub family: i32,
    /// FreeBSD alias or extension.
    pub origin: Origin,
}

impl Alias {
    /// True when this alias takes part in lookups made in `dialect`.
    pub const fn in_dialect(&self, dialect: Dialect) -> bool {
        match self.origin {
            Origin::FreeBsd => true,
            Origin::Extension => dialect.extended(),
        }
    }
}

/// `PF_LOCAL` (1).
pub const PF_LOCAL: i32 = c::AF_UNIX;
/// `PF_INET` (2).
pub const PF_INET: i32 = c::PF_INET;
/// `PF_INET6` (28).
pub const PF_INET6: i32 = c::PF_INET6;
/// `PF_ATM` (30).
pub const PF_ATM: i32 = c::PF_ATM;
/// `PF_DIVERT` (44).
pub const PF_DIVERT: i32 = c::PF_DIVERT;

const fn freebsd(name: &'static str, value: i32, family: i32) -> Alias {
    Alias {
        name,
        value,
        family,
        origin: Origin::FreeBsd,
    }
}

const fn extension(name: &'static str, value: i32, family: i32) -> Alias {
    Alias {
        name,
        value,
        family,
        origin: Origin::Extension,
    }
}

/// Family aliases (family column 0), docs/ksocket.md §3.2.
pub static FAMILY_ALIASES: [Alias; 5] = [
    freebsd("local", c::AF_UNIX, 0),
    freebsd("inet", c::PF_INET, 0),
    freebsd("inet6", c::PF_INET6, 0),
    freebsd("atm", c::PF_ATM, 0),
    freebsd("divert", c::PF_DIVERT, 0),
];

/// Socket-type aliases (family column 0), docs/ksocket.md §3.3.
pub static TYPE_ALIASES: [Alias; 5] = [
    freebsd("stream", c::SOCK_STREAM, 0),
    freebsd("dgram", c::SOCK_DGRAM, 0),
    freebsd("raw", c::SOCK_RAW, 0),
    freebsd("rdm", c::SOCK_RDM, 0),
    freebsd("seqpacket", c::SOCK_SEQPACKET, 0),
];

/// Protocol aliases, docs/ksocket.md §3.4 (FreeBSD: all bound to `inet`), followed
/// by this crate's extensions ([`Origin::Extension`]).
pub static PROTOCOL_ALIASES: [Alias; 24] = [
    freebsd("ip", c::IPPROTO_IP, PF_INET),
    freebsd("raw", c::IPPROTO_RAW, PF_INET),
    freebsd("icmp", c::IPPROTO_ICMP, PF_INET),
    freebsd("igmp", c::IPPROTO_IGMP, PF_INET),
    freebsd("tcp", c::IPPROTO_TCP, PF_INET),
    freebsd("udp", c::IPPROTO_UDP, PF_INET),
    freebsd("gre", c::IPPROTO_GRE, PF_INET),
    freebsd("esp", c::IPPROTO_ESP, PF_INET),
    freebsd("ah", c::IPPROTO_AH, PF_INET),
    freebsd("swipe", c::IPPROTO_SWIPE, PF_INET),
    freebsd("encap", c::IPPROTO_ENCAP, PF_INET),
    freebsd("pim", c::IPPROTO_PIM, PF_INET),
    extension("sctp", c::IPPROTO_SCTP, PF_INET),
    // `ip` keeps meaning 0 (the family's default protocol) for inet6, not
    // IPPROTO_IPV6 (41).
    extension("ip", c::IPPROTO_IP, PF_INET6),
    extension("raw", c::IPPROTO_RAW, PF_INET6),
    extension("icmp6", c::IPPROTO_ICMPV6, PF_INET6),
    extension("tcp", c::IPPROTO_TCP, PF_INET6),
    extension("udp", c::IPPROTO_UDP, PF_INET6),
    extension("gre", c::IPPROTO_GRE, PF_INET6),
    extension("esp", c::IPPROTO_ESP, PF_INET6),
    extension("ah", c::IPPROTO_AH, PF_INET6),
    extension("encap", c::IPPROTO_ENCAP, PF_INET6),
    extension("pim", c::IPPROTO_PIM, PF_INET6),
    extension("sctp", c::IPPROTO_SCTP, PF_INET6),
];

/// The `socket(2)` triple a hook name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketTriple {
    /// Protocol family (`PF_*`).
    pub family: i32,
    /// Socket type (`SOCK_*`).
    pub sock_type: i32,
    /// Protocol number (`IPPROTO_*`, 0 = the default one).
    pub proto: i32,
}

/// Converts a token like FreeBSD's `(int)strtoul(token, &end, 10)` with the
/// checks of the alias routine: the whole token must be consumed (so the
/// empty token is 0) and the `int` must not be negative.
pub fn parse_number(token: &[u8]) -> Option<i32> {
    let r = strtoul10(token);
    if r.end != token.len() {
        return None;
    }
    // C's (int) cast keeps the low 32 bits.
    let v = r.value as u32 as i32;
    (v >= 0).then_some(v)
}

/// FreeBSD's alias routine: `token` (a C string: it ends at its first NUL, if
/// any) is matched against the aliases of `table` bound to `family` that are
/// enabled in `dialect`, then converted with [`parse_number`]. `None` is the C
/// routine's -1.
pub fn resolve(table: &[Alias], token: &[u8], family: i32, dialect: Dialect) -> Option<i32> {
    let token = c_str(token);
    table
        .iter()
        .find(|a| a.family == family && a.in_dialect(dialect) && a.name.as_bytes() == token)
        .map(|a| a.value)
        .or_else(|| parse_number(token))
}

/// Resolves a family token (alias table [`FAMILY_ALIASES`] or a number).
pub fn resolve_family(token: &[u8]) -> Option<i32> {
    resolve(&FAMILY_ALIASES, token, 0, Dialect::FreeBsd)
}

/// Resolves a socket-type token (alias table [`TYPE_ALIASES`] or a number).
pub fn resolve_type(token: &[u8]) -> Option<i32> {
    resolve(&TYPE_ALIASES, token, 0, Dialect::FreeBsd)
}

/// Resolves a protocol token for `family` ([`PROTOCOL_ALIASES`] or a number).
pub fn resolve_proto(token: &[u8], family: i32, dialect: Dialect) -> Option<i32> {
    resolve(&PROTOCOL_ALIASES, token, family, dialect)
}

/// Parses a ksocket hook name into its `socket(2)` triple.
///
/// `name` is taken as a C string (it ends at its first NUL) and truncated to
/// `NG_HOOKSIZ - 1` = 31 bytes, as FreeBSD does. Any error is [`EINVAL`].
pub fn parse_hook_name(name: &[u8], dialect: Dialect) -> Result<SocketTriple, Errno> {
    let name = c_str(name);
    let name = name.get(..NG_HOOKSIZ.saturating_sub(1)).unwrap_or(name);
    let mut parts = name.splitn(3, |&c| c == b'/');
    let (Some(fam), Some(ty), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(EINVAL);
    };
    let family = resolve_family(fam).ok_or(EINVAL)?;
    let sock_type = resolve_type(ty).ok_or(EINVAL)?;
    let proto = resolve_proto(proto, family, dialect).ok_or(EINVAL)?;
    Ok(SocketTriple {
        family,
        sock_type,
        proto,
    })
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
    use std::format;

    const F: Dialect = Dialect::FreeBsd;
    const X: Dialect = Dialect::Extended;

    fn t(family: i32, sock_type: i32, proto: i32) -> Result<SocketTriple, Errno> {
        Ok(SocketTriple {
            family,
            sock_type,
            proto,
        })
    }

    fn both(name: &str) -> Result<SocketTriple, Errno> {
        let f = parse_hook_name(name.as_bytes(), F);
        assert_eq!(f, parse_hook_name(name.as_bytes(), X), "{name}");
        f
    }

    #[test]
    fn constants_match_spec_2_5() {
        assert_eq!(
            (PF_LOCAL, PF_INET, PF_INET6, PF_ATM, PF_DIVERT),
            (1, 2, 28, 30, 44)
        );
        assert_eq!(NG_HOOKSIZ, 32);
        let vals: std::vec::Vec<i32> = TYPE_ALIASES.iter().map(|a| a.value).collect();
        assert_eq!(vals, [1, 2, 3, 4, 5]);
        let freebsd: std::vec::Vec<(&str, i32, i32)> = PROTOCOL_ALIASES
            .iter()
            .filter(|a| a.origin == Origin::FreeBsd)
            .map(|a| (a.name, a.value, a.family))
            .collect();
        assert_eq!(
            freebsd,
            [
                ("ip", 0, 2),
                ("raw", 255, 2),
                ("icmp", 1, 2),
                ("igmp", 2, 2),
                ("tcp", 6, 2),
                ("udp", 17, 2),
                ("gre", 47, 2),
                ("esp", 50, 2),
                ("ah", 51, 2),
                ("swipe", 53, 2),
                ("encap", 98, 2),
                ("pim", 103, 2),
            ]
        );
        let ext: std::vec::Vec<(&str, i32, i32)> = PROTOCOL_ALIASES
            .iter()
            .filter(|a| a.origin == Origin::Extension)
            .map(|a| (a.name, a.value, a.family))
            .collect();
        assert_eq!(
            ext,
            [
                ("sctp", 132, 2),
                ("ip", 0, 28),
                ("raw", 255, 28),
                ("icmp6", 58, 28),
                ("tcp", 6, 28),
                ("udp", 17, 28),
                ("gre", 47, 28),
                ("esp", 50, 28),
                ("ah", 51, 28),
                ("encap", 98, 28),
                ("pim", 103, 28),
                ("sctp", 132, 28),
            ]
        );
    }

    #[test]
    fn tables_are_well_formed() {
        for table in [
            &FAMILY_ALIASES[..],
            &TYPE_ALIASES[..],
            &PROTOCOL_ALIASES[..],
        ] {
            for (i, a) in table.iter().enumerate() {
                // No alias could be mistaken for a number, and none repeats
                // within its family.
                assert!(parse_number(a.name.as_bytes()).is_none(), "{}", a.name);
                assert!(a.name.len() < NG_HOOKSIZ);
                assert!(!a.name.contains('/'));
                for b in &table[..i] {
                    assert!(!(a.name == b.name && a.family == b.family), "{}", a.name);
                }
            }
        }
        for a in FAMILY_ALIASES.iter().chain(TYPE_ALIASES.iter()) {
            assert_eq!((a.family, a.origin), (0, Origin::FreeBsd));
        }
    }

    #[test]
    fn documented_examples() {
        assert_eq!(both("inet/dgram/udp"), t(2, 2, 17));
        assert_eq!(both("2/2/17"), t(2, 2, 17));
        assert_eq!(both("2/2/udp"), t(2, 2, 17));
        assert_eq!(both("inet/stream/tcp"), t(2, 1, 6));
        assert_eq!(both("inet/raw/raw"), t(2, 3, 255));
        assert_eq!(both("inet/dgram/"), t(2, 2, 0));
        assert_eq!(both("inet6/dgram/17"), t(28, 2, 17));
        assert_eq!(both("inet6/dgram/0"), t(28, 2, 0));
        assert_eq!(both("local/stream/0"), t(1, 1, 0));
        assert_eq!(both("divert/raw/0"), t(44, 3, 0));
        assert_eq!(both("atm/dgram/0"), t(30, 2, 0));
        assert_eq!(both("inet/seqpacket/132"), t(2, 5, 132));
        assert_eq!(both("inet/stream/udp"), t(2, 1, 17)); // socreate rejects it
        assert_eq!(both("99/dgram/0"), t(99, 2, 0)); // socreate rejects it
    }

    #[test]
    fn errors() {
        for name in [
            "foo",
            "inet/dgram",
            "INET/dgram/udp",
            "inet/DGRAM/udp",
            "inet/dgram/UDP",
            "inet/dgram/udp6",
            "/dgram/udp/x/",
            "inet/dgram/-1",
            "inet/dgram/2147483648",
            "inet/dgram/ 17 ",
            "inet/dgram/ ",
            "inet/dgram/+",
            "inet/dgram/0x11",
            "inet//udp/",
            "local/stream/udp",
            "1/2/ip",
            "",
            "/",
            "inet/dgram/18446744073709551616",
            "inet/dgram/99999999999999999999",
        ] {
            assert_eq!(parse_hook_name(name.as_bytes(), F), Err(EINVAL), "{name}");
            assert_eq!(parse_hook_name(name.as_bytes(), X), Err(EINVAL), "{name}");
        }
        // An empty family token is the number 0 (then socreate fails).
        assert_eq!(both("/dgram/udp/x/"), Err(EINVAL));
        assert_eq!(both("//"), t(0, 0, 0));
        assert_eq!(both("inet//udp/"), Err(EINVAL)); // protocol "udp/"
        assert_eq!(both("inet//udp"), t(2, 0, 17));
    }

    #[test]
    fn strtoul_quirks() {
        assert_eq!(both("inet/dgram/ 17"), t(2, 2, 17));
        assert_eq!(both("inet/dgram/+17"), t(2, 2, 17));
        assert_eq!(both("inet/dgram/\t\n17"), t(2, 2, 17));
        assert_eq!(both("inet/dgram/-0"), t(2, 2, 0));
        // Base 10, not octal.
        assert_eq!(both("inet/dgram/017"), t(2, 2, 17));
        // The cast to int keeps the low 32 bits.
        assert_eq!(both("inet/dgram/4294967313"), t(2, 2, 17));
        assert_eq!(both("inet/dgram/-4294967279"), t(2, 2, 17));
        assert_eq!(both("inet/dgram/2147483647"), t(2, 2, i32::MAX));
        assert_eq!(both("inet/dgram/4294967295"), Err(EINVAL));
    }

    #[test]
    fn truncation_at_31_bytes() {
        // 31 bytes exactly: "inet/dgram/" (11) + 20 digits.
        let name = format!("inet/dgram/{}", "0".repeat(19) + "7");
        assert_eq!(name.len(), 31);
        assert_eq!(both(&name), t(2, 2, 7));
        // A 32nd byte is ignored, whatever it is.
        assert_eq!(both(&(name.clone() + "x")), t(2, 2, 7));
        assert_eq!(both(&(name.clone() + "9999")), t(2, 2, 7));
        let name = format!("inet/{}/udp", "0".repeat(24));
        assert_eq!(name.len(), 33);
        assert_eq!(both(&name), Err(EINVAL)); // protocol token cut to "u"
        let name = format!("inet/{}/udp", "0".repeat(25));
        // Protocol token cut to "".
        assert_eq!(both(&name), t(2, 0, 0));
        // The second slash falls beyond the cut.
        let name = format!("inet/{}/0", "0".repeat(26));
        assert_eq!(both(&name), Err(EINVAL));
        // Input is a C string.
        assert_eq!(parse_hook_name(b"inet/dgram/udp\0garbage", F), t(2, 2, 17));
        assert_eq!(parse_hook_name(b"inet/dg\0ram/udp", F), Err(EINVAL));
    }

    #[test]
    fn protocol_aliases_are_family_bound() {
        assert_eq!(parse_hook_name(b"inet6/dgram/udp", F), Err(EINVAL));
        assert_eq!(parse_hook_name(b"inet6/stream/tcp", F), Err(EINVAL));
        assert_eq!(parse_hook_name(b"28/dgram/udp", F), Err(EINVAL));
        assert_eq!(parse_hook_name(b"inet/seqpacket/sctp", F), Err(EINVAL));
        assert_eq!(resolve_proto(b"udp", PF_INET, F), Some(17));
        assert_eq!(resolve_proto(b"udp", PF_LOCAL, X), None);
    }

    #[test]
    fn extensions() {
        let x = |s: &str| parse_hook_name(s.as_bytes(), X);
        assert_eq!(x("inet6/dgram/udp"), t(28, 2, 17));
        assert_eq!(x("inet6/stream/tcp"), t(28, 1, 6));
        assert_eq!(x("28/dgram/udp"), t(28, 2, 17));
        assert_eq!(x("inet6/raw/icmp6"), t(28, 3, 58));
        assert_eq!(x("inet6/raw/raw"), t(28, 3, 255));
        assert_eq!(x("inet6/dgram/ip"), t(28, 2, 0));
        assert_eq!(x("inet6/raw/gre"), t(28, 3, 47));
        assert_eq!(x("inet6/raw/esp"), t(28, 3, 50));
        assert_eq!(x("inet6/raw/ah"), t(28, 3, 51));
        assert_eq!(x("inet6/raw/encap"), t(28, 3, 98));
        assert_eq!(x("inet6/raw/pim"), t(28, 3, 103));
        assert_eq!(x("inet6/seqpacket/sctp"), t(28, 5, 132));
        assert_eq!(x("inet/stream/sctp"), t(2, 1, 132));
        assert_eq!(x("inet6/raw/icmp"), Err(EINVAL));
        assert_eq!(x("inet/raw/icmp6"), Err(EINVAL));
        assert_eq!(x("inet6/raw/swipe"), Err(EINVAL));
    }

    /// Every name FreeBSD accepts gives the same triple in the extended
    /// dialect (exhaustive over a grammar of interesting tokens).
    #[test]
    fn extended_agrees_wherever_freebsd_accepts() {
        let fams = ["inet", "inet6", "local", "2", "28", "0", "", "x", "INET6"];
        let types = ["dgram", "stream", "raw", "3", "", "q"];
        let mut protos: std::vec::Vec<&str> = PROTOCOL_ALIASES.iter().map(|a| a.name).collect();
        protos.extend(["0", "17", "", " 6", "+6", "-1", "udp/", "UDP"]);
        for f in fams {
            for ty in types {
                for p in &protos {
                    let name = format!("{f}/{ty}/{p}");
                    let fb = parse_hook_name(name.as_bytes(), F);
                    let ex = parse_hook_name(name.as_bytes(), X);
                    if fb.is_ok() {
                        assert_eq!(fb, ex, "{name}");
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_extension_only_adds(
            name in prop::collection::vec(any::<u8>(), 0..48),
        ) {
            let fb = parse_hook_name(&name, F);
            let ex = parse_hook_name(&name, X);
            if fb.is_ok() {
                prop_assert_eq!(fb, ex);
            }
        }

        #[test]
        fn grammar_near_misses(
            fam in "(inet6?|local|[0-9 +-]{0,3})",
            ty in "(dgram|stream|raw|[0-9 +-]{0,3})",
            proto in "([a-z0-9]{0,6}|[0-9 +-]{0,12})",
        ) {
            let name = format!("{fam}/{ty}/{proto}");
            let fb = parse_hook_name(name.as_bytes(), F);
            if fb.is_ok() {
                prop_assert_eq!(fb, parse_hook_name(name.as_bytes(), X));
            }
        }
    }
}
