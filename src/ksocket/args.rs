//! Control-message argument rules and small binary layouts of the ksocket
//! node, as plain functions (host-tested).
//!
//! Every rule returns FreeBSD's errno for the inputs FreeBSD rejects
//! (docs/ksocket.md §5), except where an improvement documented here accepts an
//! input FreeBSD rejects.

use crate::pure::{Errno, EINVAL};

/// `sizeof(struct ng_ksocket_sockopt)`: level and name.
pub const SOCKOPT_HDR: usize = 8;
/// `NG_KSOCKET_MAX_OPTLEN`: FreeBSD's (only) GETOPT value buffer.
pub const OPTLEN_START: usize = 1024;
/// Largest GETOPT value this node returns (improvement: FreeBSD truncates
/// silently at 1024 bytes).
pub const OPTLEN_MAX: usize = 64 * 1024;
/// Offset of `addr` in `struct ng_ksocket_accept` (after `nodeid`).
pub const ACCEPT_ADDR_OFF: usize = 4;
/// Offset of the socket address in a `struct sa_tag` payload (after `id`,
/// once the `struct m_tag` header is skipped).
pub const TAG_ADDR_OFF: usize = 4;

// The numbers above are FreeBSD's; the kernel builds check them against
// the bindings' layouts (`src/abi.rs`).

/// BIND / CONNECT: the argument is a `struct sockaddr` of at least 2 bytes
/// whose `sa_len` does not exceed the argument (EINVAL otherwise).
pub fn sockaddr_arg(arg: &[u8]) -> Result<(), Errno> {
    match arg.first() {
        Some(&sa_len) if arg.len() >= 2 && arg.len() >= usize::from(sa_len) => Ok(()),
        _ => Err(EINVAL),
    }
}

/// LISTEN: exactly one `int32` (host order), the backlog.
pub fn listen_arg(arg: &[u8]) -> Result<i32, Errno> {
    <[u8; 4]>::try_from(arg)
        .map(i32::from_ne_bytes)
        .map_err(|_| EINVAL)
}

/// ACCEPT, GETNAME, GETPEERNAME and the statistics messages take no argument.
pub fn empty_arg(arg: &[u8]) -> Result<(), Errno> {
    if arg.is_empty() {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// Level and name of a `struct ng_ksocket_sockopt` (EINVAL when shorter).
pub fn sockopt_head(arg: &[u8]) -> Result<(i32, i32), Errno> {
    let level = arg
        .get(0..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or(EINVAL)?;
    let name = arg
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or(EINVAL)?;
    Ok((i32::from_ne_bytes(level), i32::from_ne_bytes(name)))
}

/// SETOPT: level, name and the value (`arglen − 8` bytes, possibly none).
pub fn setopt_arg(arg: &[u8]) -> Result<(i32, i32, &[u8]), Errno> {
    let (level, name) = sockopt_head(arg)?;
    Ok((level, name, arg.get(SOCKOPT_HDR..).unwrap_or(&[])))
}

/// How a GETOPT request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetoptForm {
    /// FreeBSD's form: exactly level and name (arglen 8). The reply carries
    /// the value with level and name left zero, as FreeBSD's does.
    Compat,
    /// Improvement: level and name followed by value bytes that are all zero
    /// (what every ASCII `getopt` produces, see `opttext`). FreeBSD rejects
    /// it with EINVAL; here the value is ignored and the reply echoes level
    /// and name, so that its ASCII form can name the option.
    Extended,
}

/// GETOPT: the accepted request forms (EINVAL for anything else, as in
/// FreeBSD: shorter than 8 bytes, or a value with a non-zero byte).
pub fn getopt_form(arg: &[u8]) -> Result<GetoptForm, Errno> {
    sockopt_head(arg)?;
    match arg.get(SOCKOPT_HDR..) {
        Some([]) => Ok(GetoptForm::Compat),
        Some(v) if v.iter().all(|&b| b == 0) => Ok(GetoptForm::Extended),
        _ => Err(EINVAL),
    }
}

/// GETOPT reply sizing. `sogetopt` truncates a value silently to the buffer
/// and reports the copied size, so a reply that filled its buffer may have
/// been cut: ask again with twice the room, up to [`OPTLEN_MAX`]. Returns the
/// next buffer size, or `None` when `got` is final.
pub fn next_optlen(cur: usize, got: usize) -> Option<usize> {
    if got >= cur && cur < OPTLEN_MAX {
        Some(cur.saturating_mul(2).min(OPTLEN_MAX))
    } else {
        None
    }
}

/// What an `NG_KSOCKET_TAG_SOCKADDR` tag on outgoing data means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagDest<'a> {
    /// Send to this socket address (`sa_len` bytes).
    Use(&'a [u8]),
    /// The tag was made by another ksocket node: ignore it.
    Ignore,
    /// The tag is for us but its address is cut short (`sa_len` below 2 or
    /// beyond the tag). FreeBSD would hand the kernel whatever follows; the
    /// packet is dropped (EINVAL) instead.
    Malformed,
}

/// Reads a `struct sa_tag` payload (`ng_ID_t id`, then the address): the
/// address is used only if `id` is `my_id` or 0 ("third party").
pub fn tag_dest(payload: &[u8], my_id: u32) -> TagDest<'_> {
    let Some(id) = payload
        .get(..TAG_ADDR_OFF)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_ne_bytes)
    else {
        return TagDest::Malformed;
    };
    if id != my_id && id != 0 {
        return TagDest::Ignore;
    }
    let sa = payload.get(TAG_ADDR_OFF..).unwrap_or(&[]);
    match sa.first().map(|&l| usize::from(l)) {
        Some(len) if len >= 2 => sa.get(..len).map_or(TagDest::Malformed, TagDest::Use),
        _ => TagDest::Malformed,
    }
}

/// Length of a source-address tag payload for `sa` (`4 + sa_len`).
pub fn tag_len(sa: &[u8]) -> Option<u16> {
    u16::try_from(TAG_ADDR_OFF.checked_add(sa.len())?).ok()
}

/// Fills a source-address tag payload: `id` (host order), then `sa`.
pub fn fill_tag(payload: &mut [u8], id: u32, sa: &[u8]) {
    let (head, tail) = payload.split_at_mut(payload.len().min(4));
    copy_prefix(head, &id.to_ne_bytes());
    copy_prefix(tail, sa);
}

/// Copies as much of `src` as fits at the start of `dst` (one memcpy).
fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
}

/// Length of an ACCEPT response for a peer address (`4 + sa_len`).
pub fn accept_reply_len(peer: &[u8]) -> Option<u32> {
    u32::try_from(ACCEPT_ADDR_OFF.checked_add(peer.len())?).ok()
}

/// Fills an ACCEPT response (`struct ng_ksocket_accept`): the clone's node
/// ID, then the peer address.
pub fn fill_accept_reply(out: &mut [u8], nodeid: u32, peer: &[u8]) {
    fill_tag(out, nodeid, peer);
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_rules() {
        assert_eq!(sockaddr_arg(&[]), Err(EINVAL));
        assert_eq!(sockaddr_arg(&[16]), Err(EINVAL));
        assert_eq!(sockaddr_arg(&[16, 2]), Err(EINVAL));
        assert_eq!(sockaddr_arg(&[16; 15]), Err(EINVAL));
        assert_eq!(sockaddr_arg(&[16; 16]), Ok(()));
        assert_eq!(sockaddr_arg(&[16; 20]), Ok(()));
        // sa_len 0 or 1 passes here (FreeBSD leaves it to the protocol).
        assert_eq!(sockaddr_arg(&[0, 2]), Ok(()));
    }

    #[test]
    fn fixed_size_args() {
        assert_eq!(listen_arg(&5i32.to_ne_bytes()), Ok(5));
        assert_eq!(listen_arg(&[]), Err(EINVAL));
        assert_eq!(listen_arg(&[0; 8]), Err(EINVAL));
        assert_eq!(empty_arg(&[]), Ok(()));
        assert_eq!(empty_arg(&[0]), Err(EINVAL));
    }

    fn opt(level: i32, name: i32, value: &[u8]) -> std::vec::Vec<u8> {
        let mut v = level.to_ne_bytes().to_vec();
        v.extend_from_slice(&name.to_ne_bytes());
        v.extend_from_slice(value);
        v
    }

    extern crate std;

    #[test]
    fn setopt_rules() {
        assert_eq!(setopt_arg(&[0; 7]), Err(EINVAL));
        let a = opt(0xffff, 4, &1i32.to_ne_bytes());
        assert_eq!(setopt_arg(&a), Ok((0xffff, 4, &1i32.to_ne_bytes()[..])));
        let a = opt(0xffff, 4, &[]);
        assert_eq!(setopt_arg(&a), Ok((0xffff, 4, &[][..])));
    }

    #[test]
    fn getopt_rules() {
        assert_eq!(getopt_form(&[0; 4]), Err(EINVAL));
        assert_eq!(
            getopt_form(&opt(0xffff, 0x1002, &[])),
            Ok(GetoptForm::Compat)
        );
        assert_eq!(
            getopt_form(&opt(0xffff, 0x1002, &[0; 4])),
            Ok(GetoptForm::Extended)
        );
        assert_eq!(
            getopt_form(&opt(0xffff, 0x1002, &[0; 33])),
            Ok(GetoptForm::Extended)
        );
        assert_eq!(getopt_form(&opt(0xffff, 0x1002, &[0, 1])), Err(EINVAL));
        assert_eq!(sockopt_head(&opt(-1, 7, &[])), Ok((-1, 7)));
    }

    #[test]
    fn getopt_sizing() {
        assert_eq!(OPTLEN_START, 1024);
        assert_eq!(next_optlen(1024, 4), None);
        assert_eq!(next_optlen(1024, 1023), None);
        assert_eq!(next_optlen(1024, 1024), Some(2048));
        assert_eq!(next_optlen(32768, 32768), Some(65536));
        assert_eq!(next_optlen(65536, 65536), None);
        // The sequence from 1024 ends at the cap.
        let mut n = OPTLEN_START;
        let mut steps = 0;
        while let Some(m) = next_optlen(n, n) {
            n = m;
            steps += 1;
        }
        assert_eq!((n, steps), (OPTLEN_MAX, 6));
    }

    fn tag(id: u32, sa: &[u8]) -> std::vec::Vec<u8> {
        let mut p = std::vec![0u8; usize::from(tag_len(sa).unwrap())];
        fill_tag(&mut p, id, sa);
        p
    }

    #[test]
    fn tags() {
        let sin = crate::pure::sockaddr::encode_sockaddr_in([127, 0, 0, 1], 7777);
        let p = tag(5, &sin);
        assert_eq!(p.len(), 20);
        assert_eq!(&p[..4], &5u32.to_ne_bytes());
        assert_eq!(tag_dest(&p, 5), TagDest::Use(&sin[..]));
        assert_eq!(tag_dest(&p, 6), TagDest::Ignore);
        assert_eq!(tag_dest(&tag(0, &sin), 6), TagDest::Use(&sin[..]));
        // Cut short.
        assert_eq!(tag_dest(&p[..19], 5), TagDest::Malformed);
        assert_eq!(tag_dest(&p[..3], 5), TagDest::Malformed);
        assert_eq!(tag_dest(&tag(5, &[1, 2]), 5), TagDest::Malformed);
        assert_eq!(tag_dest(&tag(5, &[]), 5), TagDest::Malformed);
        // A foreign tag is ignored even when malformed.
        assert_eq!(tag_dest(&tag(9, &[1]), 5), TagDest::Ignore);
        // Longer payload than sa_len: only sa_len bytes are the address.
        let mut long = p.clone();
        long.extend_from_slice(&[0xee; 8]);
        assert_eq!(tag_dest(&long, 5), TagDest::Use(&sin[..]));
    }

    use proptest::prelude::*;

    fn bytes(max: usize) -> impl Strategy<Value = std::vec::Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..max)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every argument rule is total (no input panics) and says exactly
        /// what docs/ksocket.md §5 says.
        #[test]
        fn argument_rules_are_total(arg in bytes(40)) {
            let sa_ok = arg.len() >= 2 && arg.len() >= usize::from(arg[0]);
            prop_assert_eq!(sockaddr_arg(&arg).is_ok(), sa_ok);
            prop_assert_eq!(listen_arg(&arg).is_ok(), arg.len() == 4);
            prop_assert_eq!(empty_arg(&arg).is_ok(), arg.is_empty());
            prop_assert_eq!(sockopt_head(&arg).is_ok(), arg.len() >= SOCKOPT_HDR);
            match setopt_arg(&arg) {
                Ok((l, n, v)) => {
                    prop_assert_eq!(v, &arg[SOCKOPT_HDR..]);
                    prop_assert_eq!(sockopt_head(&arg), Ok((l, n)));
                }
                Err(e) => {
                    prop_assert_eq!(e, EINVAL);
                    prop_assert!(arg.len() < SOCKOPT_HDR);
                }
            }
            let want = if arg.len() < SOCKOPT_HDR {
                Err(EINVAL)
            } else if arg.len() == SOCKOPT_HDR {
                Ok(GetoptForm::Compat)
            } else if arg[SOCKOPT_HDR..].iter().all(|&b| b == 0) {
                Ok(GetoptForm::Extended)
            } else {
                Err(EINVAL)
            };
            prop_assert_eq!(getopt_form(&arg), want);
        }

        #[test]
        fn listen_backlog_roundtrip(v in any::<i32>()) {
            prop_assert_eq!(listen_arg(&v.to_ne_bytes()), Ok(v));
        }

        #[test]
        fn sockopt_roundtrip(level in any::<i32>(), name in any::<i32>(), value in bytes(64)) {
            let a = opt(level, name, &value);
            prop_assert_eq!(setopt_arg(&a), Ok((level, name, &value[..])));
        }

        /// A tag made for an address reads back as that address for its
        /// own node and for "third party" ID 0, and is ignored by others.
        #[test]
        fn tag_roundtrip(
            id in 1u32..,
            other in 1u32..,
            sa_len in 2u8..=128,
            fill in any::<u8>(),
        ) {
            let mut sa = std::vec![fill; usize::from(sa_len)];
            sa[0] = sa_len;
            let p = tag(id, &sa);
            prop_assert_eq!(p.len(), 4 + sa.len());
            prop_assert_eq!(tag_dest(&p, id), TagDest::Use(&sa[..]));
            let third = tag(0, &sa);
            prop_assert_eq!(tag_dest(&third, other), TagDest::Use(&sa[..]));
            if other != id {
                prop_assert_eq!(tag_dest(&p, other), TagDest::Ignore);
            }
            let n = accept_reply_len(&sa).unwrap() as usize;
            let mut out = std::vec![0u8; n];
            fill_accept_reply(&mut out, id, &sa);
            prop_assert_eq!(&out[..4], &id.to_ne_bytes());
            prop_assert_eq!(&out[4..], &sa[..]);
        }

        /// Any tag payload, however malformed: no panic, and an address
        /// handed out is a prefix of the payload of at least 2 bytes.
        #[test]
        fn tag_dest_is_total(payload in bytes(80), my_id in any::<u32>()) {
            match tag_dest(&payload, my_id) {
                TagDest::Use(sa) => {
                    prop_assert!(sa.len() >= 2);
                    prop_assert_eq!(usize::from(sa[0]), sa.len());
                    prop_assert_eq!(sa, &payload[4..4 + sa.len()]);
                }
                TagDest::Ignore => {
                    let id = u32::from_ne_bytes(payload[..4].try_into().unwrap());
                    prop_assert!(id != 0 && id != my_id);
                }
                TagDest::Malformed => {}
            }
        }

        #[test]
        fn getopt_sizing_is_bounded(cur in 1usize..200_000, got in 0usize..200_000) {
            if let Some(n) = next_optlen(cur, got) {
                prop_assert!(n > cur && n <= OPTLEN_MAX);
            }
        }
    }

    #[test]
    fn accept_reply() {
        let sin = crate::pure::sockaddr::encode_sockaddr_in([127, 0, 0, 1], 54321);
        let n = accept_reply_len(&sin).unwrap();
        assert_eq!(n, 20);
        let mut out = std::vec![0u8; n as usize];
        fill_accept_reply(&mut out, 0x1b, &sin);
        assert_eq!(&out[..4], &0x1bu32.to_ne_bytes());
        assert_eq!(&out[4..], &sin[..]);
        assert_eq!(accept_reply_len(&[0; 28]), Some(32));
    }
}
