//! Control data (`struct cmsghdr` records) in FreeBSD's amd64 layout: what
//! `soreceive` returns in `*controlp` and `sosend` takes as `control`.
//!
//! A record is a 12-byte header (`cmsg_len`, `cmsg_level`, `cmsg_type`,
//! native byte order) padded to 8 bytes, then `cmsg_len − 16` bytes of
//! data; records follow each other at 8-byte boundaries (`CMSG_ALIGN`,
//! `_ALIGNBYTES` = 7 on amd64).
//!
//! This module reads records without trusting them (every length is checked
//! against the bytes present) and writes the two records a socket needs to
//! choose a datagram's source address: `IP_SENDSRCADDR` (a `struct
//! in_addr`) and `IPV6_PKTINFO` (a `struct in6_pktinfo`).

use super::consts::{IPPROTO_IP, IPPROTO_IPV6, IPV6_PKTINFO, IP_RECVDSTADDR, IP_SENDSRCADDR};

/// `sizeof(struct cmsghdr)`.
pub const HDR_LEN: usize = 12;
/// `_ALIGNBYTES` of amd64.
const ALIGN_MASK: usize = 7;

/// `CMSG_ALIGN(n)` (saturating: an absurd length never wraps).
pub const fn align(n: usize) -> usize {
    n.saturating_add(ALIGN_MASK) & !ALIGN_MASK
}

/// Offset of the data in a record (`CMSG_DATA(cmsg) − cmsg`).
pub const DATA_OFF: usize = align(HDR_LEN);

/// `CMSG_LEN(n)`: the `cmsg_len` of a record with `n` data bytes.
pub const fn len(n: usize) -> usize {
    DATA_OFF.saturating_add(n)
}

/// `CMSG_SPACE(n)`: the room a record with `n` data bytes takes.
pub const fn space(n: usize) -> usize {
    DATA_OFF.saturating_add(align(n))
}

/// `sizeof(struct in_addr)`.
pub const IN_ADDR_LEN: usize = 4;
/// `sizeof(struct in6_pktinfo)`: the address, then the interface index.
pub const IN6_PKTINFO_LEN: usize = 20;

/// One record: level, type and its data (`cmsg_len − 16` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// `cmsg_level`.
    pub level: i32,
    /// `cmsg_type`.
    pub ty: i32,
    /// The data, exactly as long as `cmsg_len` says.
    pub data: &'a [u8],
}

fn bytes4(b: &[u8], off: usize) -> Option<[u8; 4]> {
    let end = off.checked_add(4)?;
    b.get(off..end).and_then(|x| <[u8; 4]>::try_from(x).ok())
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    bytes4(b, off).map(u32::from_ne_bytes)
}

fn i32_at(b: &[u8], off: usize) -> Option<i32> {
    bytes4(b, off).map(i32::from_ne_bytes)
}

/// The records of `buf` in order. Iteration ends at the first record whose
/// header or data does not fit in what is left (a truncated or malformed
/// record is never returned), or whose `cmsg_len` is below the header.
pub fn records(buf: &[u8]) -> Records<'_> {
    Records { rest: buf }
}

/// Iterator of [`records`].
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let b = self.rest;
        let clen = usize::try_from(u32_at(b, 0)?).ok()?;
        let level = i32_at(b, 4)?;
        let ty = i32_at(b, 8)?;
        if clen < DATA_OFF || clen > b.len() {
            self.rest = &[];
            return None;
        }
        let data = b.get(DATA_OFF..clen)?;
        self.rest = b.get(align(clen)..).unwrap_or(&[]);
        Some(Record { level, ty, data })
    }
}

/// A local address as control data reports it: an IPv4 address
/// (`IP_RECVDSTADDR`) or an IPv6 one with its interface index
/// (`IPV6_PKTINFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalAddr {
    /// A `struct in_addr`, network byte order.
    V4([u8; 4]),
    /// A `struct in6_addr` and the interface index.
    V6([u8; 16], u32),
}

/// The local address in one record, if it is an `IP_RECVDSTADDR` record of
/// exactly a `struct in_addr`, or an `IPV6_PKTINFO` record of exactly a
/// `struct in6_pktinfo`.
pub fn local_addr(r: &Record<'_>) -> Option<LocalAddr> {
    match (r.level, r.ty) {
        (IPPROTO_IP, IP_RECVDSTADDR) => <[u8; 4]>::try_from(r.data).ok().map(LocalAddr::V4),
        (IPPROTO_IPV6, IPV6_PKTINFO) if r.data.len() == IN6_PKTINFO_LEN => {
            let addr = r
                .data
                .get(..16)
                .and_then(|a| <[u8; 16]>::try_from(a).ok())?;
            Some(LocalAddr::V6(addr, u32_at(r.data, 16)?))
        }
        _ => None,
    }
}

/// Writes one record (header, padding, data, zeroed tail padding) at the
/// start of `out`; returns its `CMSG_SPACE`, or `None` when it does not fit.
pub fn write(out: &mut [u8], level: i32, ty: i32, data: &[u8]) -> Option<usize> {
    let total = space(data.len());
    let end = DATA_OFF.checked_add(data.len())?;
    let clen = u32::try_from(end).ok()?;
    let rec = out.get_mut(..total)?;
    rec.fill(0);
    rec.get_mut(0..4)?.copy_from_slice(&clen.to_ne_bytes());
    rec.get_mut(4..8)?.copy_from_slice(&level.to_ne_bytes());
    rec.get_mut(8..12)?.copy_from_slice(&ty.to_ne_bytes());
    rec.get_mut(DATA_OFF..end)?.copy_from_slice(data);
    Some(total)
}

/// Room the source-address record of [`write_source`] takes, at most.
pub const SOURCE_MAX: usize = space(IN6_PKTINFO_LEN);

/// Writes the record that makes a datagram leave from `a`:
/// `IP_SENDSRCADDR` for an IPv4 address, `IPV6_PKTINFO` for an IPv6 one.
/// Returns its length, or `None` when `out` is too small.
pub fn write_source(out: &mut [u8], a: &LocalAddr) -> Option<usize> {
    match a {
        LocalAddr::V4(addr) => write(out, IPPROTO_IP, IP_SENDSRCADDR, addr),
        LocalAddr::V6(addr, ifindex) => {
            let mut pi = [0u8; IN6_PKTINFO_LEN];
            let (a, i) = pi.split_at_mut(16);
            a.copy_from_slice(addr);
            i.copy_from_slice(&ifindex.to_ne_bytes());
            write(out, IPPROTO_IPV6, IPV6_PKTINFO, &pi)
        }
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
    use std::vec::Vec;

    #[test]
    fn macros_match_freebsd_amd64() {
        // <sys/socket.h>: _ALIGN(sizeof(struct cmsghdr)) = 16 on amd64.
        assert_eq!(DATA_OFF, 16);
        assert_eq!(len(4), 20);
        assert_eq!(space(4), 24);
        assert_eq!(len(IN6_PKTINFO_LEN), 36);
        assert_eq!(space(IN6_PKTINFO_LEN), 40);
        assert_eq!(align(0), 0);
        assert_eq!(align(9), 16);
        assert_eq!(align(usize::MAX), usize::MAX & !7);
    }

    #[test]
    fn write_and_read_back() {
        let mut b = [0xaau8; 64];
        let n = write_source(&mut b, &LocalAddr::V4([127, 0, 0, 2])).unwrap();
        assert_eq!(n, 24);
        assert_eq!(&b[..4], &20u32.to_ne_bytes());
        assert_eq!(&b[4..8], &0i32.to_ne_bytes());
        assert_eq!(&b[8..12], &7i32.to_ne_bytes());
        assert_eq!(&b[12..16], &[0; 4]);
        assert_eq!(&b[16..20], &[127, 0, 0, 2]);
        assert_eq!(&b[20..24], &[0; 4]);
        assert_eq!(b[24], 0xaa);
        let r: Vec<_> = records(&b[..n]).collect();
        assert_eq!(r.len(), 1);
        // IP_SENDSRCADDR is IP_RECVDSTADDR's number: the record reads back.
        assert_eq!(local_addr(&r[0]), Some(LocalAddr::V4([127, 0, 0, 2])));

        let mut a6 = [0u8; 16];
        a6[15] = 1;
        let n = write_source(&mut b, &LocalAddr::V6(a6, 7)).unwrap();
        assert_eq!(n, 40);
        assert_eq!(&b[..4], &36u32.to_ne_bytes());
        assert_eq!(&b[4..8], &41i32.to_ne_bytes());
        assert_eq!(&b[8..12], &46i32.to_ne_bytes());
        assert_eq!(&b[32..36], &7u32.to_ne_bytes());
        let r: Vec<_> = records(&b[..n]).collect();
        assert_eq!(local_addr(&r[0]), Some(LocalAddr::V6(a6, 7)));
        assert_eq!(write_source(&mut b[..39], &LocalAddr::V6(a6, 7)), None);
        assert_eq!(
            write_source(&mut b[..23], &LocalAddr::V4([1, 2, 3, 4])),
            None
        );
    }

    #[test]
    fn several_records_and_bad_ones() {
        let mut b = [0u8; 128];
        let mut n = write(&mut b, 0xffff, 2, &[1; 16]).unwrap();
        n += write(&mut b[n..], IPPROTO_IP, IP_RECVDSTADDR, &[10, 0, 0, 1]).unwrap();
        let r: Vec<_> = records(&b[..n]).collect();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].level, r[0].ty, r[0].data.len()), (0xffff, 2, 16));
        assert_eq!(local_addr(&r[0]), None);
        assert_eq!(local_addr(&r[1]), Some(LocalAddr::V4([10, 0, 0, 1])));
        // The last record cut short: not returned.
        assert_eq!(records(&b[..n - 5]).count(), 1);
        // A length below the header, or beyond the buffer: iteration ends.
        let mut bad = b;
        bad[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(records(&bad[..n]).count(), 0);
        bad[..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(records(&bad[..n]).count(), 0);
        // A record of the right type with the wrong size is no address.
        let m = write(&mut b, IPPROTO_IP, IP_RECVDSTADDR, &[1, 2, 3]).unwrap();
        let r: Vec<_> = records(&b[..m]).collect();
        assert_eq!(local_addr(&r[0]), None);
        let m = write(&mut b, IPPROTO_IPV6, IPV6_PKTINFO, &[0; 16]).unwrap();
        let r: Vec<_> = records(&b[..m]).collect();
        assert_eq!(local_addr(&r[0]), None);
        assert_eq!(records(&[]).count(), 0);
    }

    proptest! {
        /// No input makes the reader panic or return bytes outside a
        /// record's stated length.
        #[test]
        fn reading_never_panics(b in prop::collection::vec(any::<u8>(), 0..200)) {
            for r in records(&b) {
                prop_assert!(r.data.len() <= b.len());
                let _ = local_addr(&r);
            }
        }
    }
}
