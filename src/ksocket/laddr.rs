//! The local-address tag (an ngsock addition): which local address, and
//! for IPv6 which interface, a datagram arrived on; and, on a datagram sent
//! into the hook, which local address it must leave from.
//!
//! Layout (`include/netgraph/ng_ksocket_ext.h`, `struct
//! ng_ksocket_laddr_tag`), after the `struct m_tag` header, host byte
//! order:
//!
//! ```text
//! offset 0  ng_ID_t  id       node that made the tag (0: any node)
//! offset 4  uint32_t ifindex  receiving interface (IPv6), else 0
//! offset 8  struct sockaddr   sockaddr_in (16 bytes) or sockaddr_in6 (28)
//! ```
//!
//! The cookie is ngsock's own ([`LADDR_COOKIE`]), so the tag can never be
//! taken for one of FreeBSD's. The node makes it from the control data
//! `soreceive` returns when `IP_RECVDSTADDR` (IPv4) or `IPV6_RECVPKTINFO`
//! (IPv6) is on; the address's port is 0, and an IPv6 link-local address
//! carries its interface in `sin6_scope_id` too.
//!
//! On the way out (while the option is on; otherwise the tag is not
//! looked at) a tag is used under the ID rule of FreeBSD's address tag
//! (this node's ID or 0), and only if it is well formed: an
//! address of exactly `sizeof(struct sockaddr_in)` or `sizeof(struct
//! sockaddr_in6)` bytes, within the tag, of the socket's own family.
//! The port and (IPv6) the flow label and scope ID in the address are not
//! used: the interface of an IPv6 source is `ifindex`.

use crate::pure::cmsg::LocalAddr;
use crate::pure::consts::{PF_INET, PF_INET6};

/// `NGM_KSOCKET_LADDR_COOKIE`: the cookie of ngsock's ksocket tags (the
/// time it was chosen, as netgraph cookies are).
pub const LADDR_COOKIE: u32 = 1_796_573_268;
/// `NG_KSOCKET_TAG_LADDR`: the local-address tag's type.
pub const TAG_LADDR: u16 = 1;
/// Offset of `ifindex` in the tag's payload.
pub const TAG_IFINDEX_OFF: usize = 4;
/// Offset of the address in the tag's payload.
pub const TAG_ADDR_OFF: usize = 8;
/// `sizeof(struct sockaddr_in)`.
pub const SIN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub const SIN6_LEN: usize = 28;

/// Payload length of a tag carrying `a`.
pub const fn tag_len(a: &LocalAddr) -> u16 {
    #[allow(clippy::cast_possible_truncation)]
    match a {
        LocalAddr::V4(_) => (TAG_ADDR_OFF + SIN_LEN) as u16,
        LocalAddr::V6(..) => (TAG_ADDR_OFF + SIN6_LEN) as u16,
    }
}

fn is_link_local(a: &[u8; 16]) -> bool {
    matches!(a, [0xfe, b, ..] if b & 0xc0 == 0x80)
}

/// Writes `src` at `off` in `dst` if it fits there.
fn put(dst: &mut [u8], off: usize, src: &[u8]) {
    if let Some(d) = off
        .checked_add(src.len())
        .and_then(|end| dst.get_mut(off..end))
    {
        d.copy_from_slice(src);
    }
}

/// Fills a tag payload of [`tag_len`] bytes (zeroed by the caller).
pub fn fill_tag(payload: &mut [u8], id: u32, a: &LocalAddr) {
    put(payload, 0, &id.to_ne_bytes());
    let sa = TAG_ADDR_OFF;
    match a {
        LocalAddr::V4(addr) => {
            // sin_len, sin_family; port 0; sin_addr; sin_zero.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            put(payload, sa, &[SIN_LEN as u8, PF_INET as u8]);
            put(payload, sa.saturating_add(4), addr);
        }
        LocalAddr::V6(addr, ifindex) => {
            put(payload, TAG_IFINDEX_OFF, &ifindex.to_ne_bytes());
            // sin6_len, sin6_family; port, flowinfo 0; sin6_addr;
            // sin6_scope_id for a link-local address.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            put(payload, sa, &[SIN6_LEN as u8, PF_INET6 as u8]);
            put(payload, sa.saturating_add(8), addr);
            if is_link_local(addr) {
                put(payload, sa.saturating_add(24), &ifindex.to_ne_bytes());
            }
        }
    }
}

/// What a local-address tag on outgoing data means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagSource {
    /// Send from this address.
    Use(LocalAddr),
    /// Made by another node (another non-zero ID): ignored.
    Ignore,
    /// For this node, but not a well-formed address of the socket's family:
    /// the datagram is dropped (EINVAL).
    Malformed,
}

fn word(b: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    b.get(off..end)
        .and_then(|x| <[u8; 4]>::try_from(x).ok())
        .map(u32::from_ne_bytes)
}

/// Reads a local-address tag payload for a socket of `family`, on behalf
/// of node `my_id`.
pub fn tag_source(payload: &[u8], my_id: u32, family: i32) -> TagSource {
    let (Some(id), Some(ifindex)) = (word(payload, 0), word(payload, TAG_IFINDEX_OFF)) else {
        return TagSource::Malformed;
    };
    if id != my_id && id != 0 {
        return TagSource::Ignore;
    }
    let sa = payload.get(TAG_ADDR_OFF..).unwrap_or(&[]);
    let (Some(&sa_len), Some(&sa_family)) = (sa.first(), sa.get(1)) else {
        return TagSource::Malformed;
    };
    let (sa_len, sa_family) = (usize::from(sa_len), i32::from(sa_family));
    if sa_family != family || sa_len > sa.len() {
        return TagSource::Malformed;
    }
    match family {
        PF_INET if sa_len == SIN_LEN => sa
            .get(4..8)
            .and_then(|a| <[u8; 4]>::try_from(a).ok())
            .map_or(TagSource::Malformed, |a| TagSource::Use(LocalAddr::V4(a))),
        PF_INET6 if sa_len == SIN6_LEN => sa
            .get(8..24)
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .map_or(TagSource::Malformed, |a| {
                TagSource::Use(LocalAddr::V6(a, ifindex))
            }),
        _ => TagSource::Malformed,
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn tag(id: u32, a: &LocalAddr) -> Vec<u8> {
        let mut p = vec![0u8; usize::from(tag_len(a))];
        fill_tag(&mut p, id, a);
        p
    }

    #[test]
    fn layout_v4() {
        let a = LocalAddr::V4([127, 0, 0, 2]);
        let p = tag(0x1b, &a);
        assert_eq!(p.len(), 24);
        assert_eq!(&p[..4], &0x1bu32.to_ne_bytes());
        assert_eq!(&p[4..8], &[0; 4]);
        assert_eq!(
            &p[8..],
            &[16, 2, 0, 0, 127, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(tag_source(&p, 0x1b, PF_INET), TagSource::Use(a));
    }

    #[test]
    fn layout_v6() {
        let mut addr = [0u8; 16];
        addr[15] = 1;
        let a = LocalAddr::V6(addr, 1);
        let p = tag(7, &a);
        assert_eq!(p.len(), 36);
        assert_eq!(&p[4..8], &1u32.to_ne_bytes());
        assert_eq!(&p[8..12], &[28, 28, 0, 0]);
        assert_eq!(&p[16..32], &addr);
        // ::1 is not link-local: no scope.
        assert_eq!(&p[32..36], &[0; 4]);
        assert_eq!(tag_source(&p, 7, PF_INET6), TagSource::Use(a));
        // A link-local address carries its interface as scope too.
        let ll = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
        let p = tag(7, &LocalAddr::V6(ll, 3));
        assert_eq!(&p[32..36], &3u32.to_ne_bytes());
    }

    #[test]
    fn id_rule() {
        let a = LocalAddr::V4([10, 1, 2, 3]);
        assert_eq!(tag_source(&tag(5, &a), 5, PF_INET), TagSource::Use(a));
        assert_eq!(tag_source(&tag(0, &a), 5, PF_INET), TagSource::Use(a));
        assert_eq!(tag_source(&tag(6, &a), 5, PF_INET), TagSource::Ignore);
        // Foreign tags are ignored even when malformed.
        assert_eq!(tag_source(&tag(6, &a)[..9], 5, PF_INET), TagSource::Ignore);
    }

    #[test]
    fn malformed() {
        let a = LocalAddr::V4([10, 1, 2, 3]);
        let p = tag(5, &a);
        let bad = |p: &[u8], fam| tag_source(p, 5, fam) == TagSource::Malformed;
        // Too short for the header, the address header, or the address.
        for n in 0..p.len() {
            assert!(bad(&p[..n], PF_INET), "cut at {n}");
        }
        // Wrong family for the socket.
        assert!(bad(&p, PF_INET6));
        let mut q = p.clone();
        q[9] = 28;
        assert!(bad(&q, PF_INET));
        // A length other than the family's.
        for l in [0u8, 1, 2, 8, 15, 17, 28, 255] {
            let mut q = p.clone();
            q[8] = l;
            q.resize(8 + 40, 0);
            assert!(bad(&q, PF_INET), "sa_len {l}");
        }
        // Longer payloads are fine (the address is what sa_len says).
        let mut q = p.clone();
        q.extend_from_slice(&[0xee; 8]);
        assert_eq!(tag_source(&q, 5, PF_INET), TagSource::Use(a));
        // Other families are never used.
        let mut q = p.clone();
        q[9] = 1;
        assert!(bad(&q, 1));
        let v6 = tag(5, &LocalAddr::V6([1; 16], 2));
        assert!(bad(&v6[..35], PF_INET6));
        assert!(bad(&v6, PF_INET));
    }

    proptest! {
        #[test]
        fn never_panics(p in prop::collection::vec(any::<u8>(), 0..64), id in 0u32..3, fam in prop_oneof![Just(2), Just(28), any::<i32>()]) {
            match tag_source(&p, id, fam) {
                TagSource::Use(LocalAddr::V4(_)) => prop_assert!(fam == 2 && p.len() >= 24),
                TagSource::Use(LocalAddr::V6(..)) => prop_assert!(fam == 28 && p.len() >= 36),
                _ => {}
            }
        }

        #[test]
        fn roundtrip(v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>(), ifx in any::<u32>(), id in any::<u32>()) {
            let a = LocalAddr::V4(v4);
            prop_assert_eq!(tag_source(&tag(id, &a), id, PF_INET), TagSource::Use(a));
            let a = LocalAddr::V6(v6, ifx);
            prop_assert_eq!(tag_source(&tag(id, &a), id, PF_INET6), TagSource::Use(a));
        }
    }
}
