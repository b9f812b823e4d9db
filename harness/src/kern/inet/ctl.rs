//! Control data of `sosend` and `soreceive` for UDP (and UDP-Lite): the
//! FreeBSD records a module passes or gets, and the Linux ancillary data
//! behind them.
//!
//! Send (`udp_send` / `udp6_send`, read for facts): the control chain must
//! be one mbuf (`EINVAL` otherwise); records are walked as FreeBSD walks
//! them (`cmsg_len` 0 or beyond the mbuf: `EINVAL`), records of other
//! levels are skipped, unknown types are `ENOPROTOOPT`.
//! * IPv4 socket: `IP_SENDSRCADDR` (exactly a `struct in_addr`) sets the
//!   source; it needs a bound port and a socket bound to the wildcard
//!   address (`EINVAL`), and a local address unless `IP_BINDANY` is on
//!   (`EADDRNOTAVAIL`). `IP_TOS` sets the TOS; `IP_FLOWID`/`IP_FLOWTYPE`
//!   are checked and have no effect here. Linux gets `IP_PKTINFO` with
//!   `ipi_spec_dst` (and `IP_TOS`).
//! * IPv6 socket, IPv4-mapped destination: `IPV6_PKTINFO` with an
//!   IPv4-mapped (or unspecified) address is the IPv4 source
//!   (`udp_v4mapped_pktinfo`: `ENXIO` for an unknown interface,
//!   `EADDRNOTAVAIL` for an address not on it), then as IPv4.
//! * IPv6 socket, IPv6 destination (`ip6_setpktopts`): `IPV6_PKTINFO`
//!   (multicast address `EINVAL`, unknown interface `ENXIO`, an address
//!   not on the given interface or not local `EADDRNOTAVAIL`),
//!   `IPV6_HOPLIMIT`, `IPV6_TCLASS` (-1..255) and `IPV6_DONTFRAG`; other
//!   known types are not modelled (reported). Linux gets the same records.
//!
//! Receive (`ip_savecontrol` / `ip6_savecontrol`): with `IP_RECVDSTADDR`
//! (IPv4) or `IPV6_RECVPKTINFO` (IPv6) on, each datagram comes with an
//! `IP_RECVDSTADDR` record (the header's destination address) or an
//! `IPV6_PKTINFO` record (destination and receiving interface; an
//! IPv4-mapped address for an IPv4 datagram on a dual-stack socket), each
//! in its own `MT_CONTROL` mbuf allocated `M_NOWAIT` (`sbcreatecontrol`: a
//! record that cannot be allocated is left out). From Linux's
//! `IP_PKTINFO` (`ipi_addr`) and `IPV6_PKTINFO`.
//!
//! Interface indexes are Linux's (`lo0` is Linux's `lo`, [`super::ifaddr`]).

use std::ffi::c_int;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fbsd_sys::mbuf;

use super::addr::{self, AF_INET6};
use super::errno::fb;
use super::ifaddr;
use crate::kern::mbuf::{self as kmbuf, fields};
use crate::kern::violation;

crate::kern::fbsd_consts! {
    c_int: IPPROTO_IP, IPPROTO_IPV6, IP_SENDSRCADDR, IP_RECVDSTADDR, IP_TOS, IP_FLOWID,
        IP_FLOWTYPE, IPV6_PKTINFO, IPV6_2292PKTINFO, IPV6_HOPLIMIT, IPV6_TCLASS, IPV6_DONTFRAG,
        IPV6_NEXTHOP, IPV6_HOPOPTS, IPV6_DSTOPTS, IPV6_RTHDR, IPV6_RTHDRDSTOPTS,
        IPV6_PREFER_TEMPADDR, IPV6_2292HOPLIMIT, IPV6_2292NEXTHOP, IPV6_2292HOPOPTS,
        IPV6_2292DSTOPTS, IPV6_2292RTHDR, IPV6_USE_MIN_MTU;
}

/// `sizeof(struct cmsghdr)` on FreeBSD amd64.
const HDR: usize = 12;
/// `CMSG_ALIGN`: 8-byte alignment (`_ALIGNBYTES` 7).
const fn align(n: usize) -> usize {
    (n + 7) & !7
}
/// `CMSG_LEN(n)`.
const fn cmsg_len(n: usize) -> usize {
    align(HDR) + n
}
/// `sizeof(struct in6_pktinfo)`.
const PKTINFO6: usize = 20;

/// The control chain `sosend` was given, read before it is freed.
pub(crate) struct Control {
    /// The first mbuf's data (`m_len` bytes).
    bytes: Vec<u8>,
    /// The chain has more than one mbuf.
    more: bool,
}

/// Reads the control chain's first mbuf (the chain stays the caller's).
///
/// # Safety
/// `m` is a live mbuf chain.
pub(crate) unsafe fn read(m: *mut mbuf) -> Control {
    // SAFETY: the caller's contract; `m_len` bytes at `m_data` are readable.
    unsafe {
        let len = usize::try_from(fields::len(m)).unwrap_or(0);
        let bytes = std::slice::from_raw_parts(fields::data(m), len).to_vec();
        Control {
            bytes,
            more: !fields::next(m).is_null(),
        }
    }
}

/// One FreeBSD record as the send path walks it.
struct Rec<'a> {
    clen: usize,
    level: c_int,
    ty: c_int,
    /// `CMSG_DATA` up to `cmsg_len`.
    data: &'a [u8],
}

fn word(b: &[u8], off: usize) -> [u8; 4] {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        w.copy_from_slice(s);
    }
    w
}

/// Walks the records of a send's control mbuf the way `udp_send` and
/// `ip6_setpktopts` do; `min_len` is their check on what is left
/// (`sizeof(*cm)` and `CMSG_LEN(0)` respectively).
fn walk(c: &Control, min_len: usize, mut f: impl FnMut(&Rec<'_>) -> Result<(), c_int>) -> c_int {
    if c.more {
        return fb::EINVAL;
    }
    let b = &c.bytes;
    let mut off = 0usize;
    let mut left = b.len() as isize;
    while left > 0 {
        let rest = &b[off..];
        let clen = u32::from_ne_bytes(word(rest, 0)) as usize;
        if (left as usize) < min_len || clen == 0 || clen as isize > left {
            return fb::EINVAL;
        }
        let r = Rec {
            clen,
            level: c_int::from_ne_bytes(word(rest, 4)),
            ty: c_int::from_ne_bytes(word(rest, 8)),
            data: rest.get(align(HDR).min(clen)..clen).unwrap_or(&[]),
        };
        if let Err(e) = f(&r) {
            return e;
        }
        // `left` is what follows `off`: the loop ends before `off` passes
        // the end.
        off += align(clen);
        left -= align(clen) as isize;
    }
    0
}

/// What a send's control data asks of the Linux socket.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendOpts {
    /// The IPv4 source (`IP_SENDSRCADDR`, or an IPv4-mapped `IPV6_PKTINFO`).
    pub src4: Option<Ipv4Addr>,
    /// `IP_TOS`.
    pub tos: Option<u8>,
    /// `IPV6_PKTINFO`: source and interface.
    pub pktinfo6: Option<(Ipv6Addr, u32)>,
    /// `IPV6_HOPLIMIT`.
    pub hoplimit: Option<c_int>,
    /// `IPV6_TCLASS`.
    pub tclass: Option<c_int>,
    /// `IPV6_DONTFRAG`.
    pub dontfrag: Option<c_int>,
}

/// The local address and port of a Linux socket (FreeBSD's `inp_laddr`,
/// `inp_lport`): (address, port), the address `None` when unspecified.
fn local_of(fd: c_int) -> (Option<IpAddr>, u16) {
    let Ok(b) = addr::linux_sockname(fd, false) else {
        return (None, 0);
    };
    let port = addr::inet_port(&b);
    let a = match (b.get(1).map(|&f| c_int::from(f)), b.len()) {
        (Some(f), n) if f == AF_INET6 && n >= 24 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        (_, n) if n >= 8 => IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])),
        _ => return (None, port),
    };
    ((!a.is_unspecified()).then_some(a), port)
}

/// `udp_send`'s control loop and source checks (IPv4, or an IPv4-mapped
/// destination of an IPv6 socket when `mapped`).
pub(crate) fn udp4(c: &Control, fd: c_int, mapped: bool, bindany: bool) -> Result<SendOpts, c_int> {
    let mut o = SendOpts::default();
    let e = walk(c, HDR, |r| {
        if mapped && r.level == IPPROTO_IPV6 && (r.ty == IPV6_PKTINFO || r.ty == IPV6_2292PKTINFO) {
            // udp_v4mapped_pktinfo
            if r.clen != cmsg_len(PKTINFO6) {
                return Err(fb::EINVAL);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&r.data[..16]);
            let a6 = Ipv6Addr::from(a);
            let v4 = match a6.to_ipv4_mapped() {
                Some(v4) => v4,
                None if a6.is_unspecified() => Ipv4Addr::UNSPECIFIED,
                None => return Err(fb::EINVAL),
            };
            let ifindex = u32::from_ne_bytes(word(r.data, 16));
            if ifindex != 0 {
                if !ifaddr::index_exists(ifindex) {
                    return Err(fb::ENXIO);
                }
                if !v4.is_unspecified() && !ifaddr::on_interface(ifindex, IpAddr::V4(v4)) {
                    return Err(fb::EADDRNOTAVAIL);
                }
            }
            o.src4 = Some(v4);
        }
        if r.level != IPPROTO_IP {
            return Ok(());
        }
        match r.ty {
            IP_SENDSRCADDR => {
                if r.clen != cmsg_len(4) {
                    return Err(fb::EINVAL);
                }
                o.src4 = Some(Ipv4Addr::from(word(r.data, 0)));
            }
            IP_TOS => {
                if r.clen != cmsg_len(1) {
                    return Err(fb::EINVAL);
                }
                o.tos = r.data.first().copied();
            }
            IP_FLOWID | IP_FLOWTYPE => {
                if r.clen != cmsg_len(4) {
                    return Err(fb::EINVAL);
                }
            }
            _ => return Err(fb::ENOPROTOOPT),
        }
        Ok(())
    });
    if e != 0 {
        return Err(e);
    }
    if let Some(src) = o.src4 {
        let (laddr, lport) = local_of(fd);
        if lport == 0 || (laddr.is_none() && src.is_unspecified()) {
            return Err(fb::EINVAL);
        }
        // in_pcbbind_setup: the socket must be bound to the wildcard
        // address, the source must be local unless IP_BINDANY is on.
        if laddr.is_some() {
            return Err(fb::EINVAL);
        }
        if !src.is_unspecified()
            && !src.is_multicast()
            && !bindany
            && !ifaddr::is_local(IpAddr::V4(src))
        {
            return Err(fb::EADDRNOTAVAIL);
        }
    }
    Ok(o)
}

/// `ip6_setpktopts` on a send's control data, and the source check of
/// `in6_selectsrc` (IPv6 socket, IPv6 destination).
pub(crate) fn udp6(c: &Control, bindany: bool) -> Result<SendOpts, c_int> {
    let mut o = SendOpts::default();
    let e = walk(c, cmsg_len(0), |r| {
        if r.level != IPPROTO_IPV6 {
            return Ok(());
        }
        let len = r.clen - cmsg_len(0).min(r.clen);
        let int = || -> Result<c_int, c_int> {
            if len != 4 {
                return Err(fb::EINVAL);
            }
            Ok(c_int::from_ne_bytes(word(r.data, 0)))
        };
        match r.ty {
            IPV6_PKTINFO | IPV6_2292PKTINFO => {
                if len != PKTINFO6 {
                    return Err(fb::EINVAL);
                }
                let mut a = [0u8; 16];
                a.copy_from_slice(&r.data[..16]);
                let a6 = Ipv6Addr::from(a);
                let ifindex = u32::from_ne_bytes(word(r.data, 16));
                if a6.is_multicast() {
                    return Err(fb::EINVAL);
                }
                if ifindex != 0 {
                    if !ifaddr::index_exists(ifindex) {
                        return Err(fb::ENXIO);
                    }
                    if !a6.is_unspecified()
                        && (a6.to_ipv4_mapped().is_some()
                            || !ifaddr::on_interface(ifindex, IpAddr::V6(a6)))
                    {
                        return Err(fb::EADDRNOTAVAIL);
                    }
                }
                o.pktinfo6 = Some((a6, ifindex));
            }
            IPV6_HOPLIMIT | IPV6_2292HOPLIMIT => {
                let v = int()?;
                if !(-1..=255).contains(&v) {
                    return Err(fb::EINVAL);
                }
                o.hoplimit = Some(v);
            }
            IPV6_TCLASS => {
                let v = int()?;
                if !(-1..=255).contains(&v) {
                    return Err(fb::EINVAL);
                }
                o.tclass = Some(v);
            }
            IPV6_DONTFRAG => o.dontfrag = Some(int()?),
            IPV6_NEXTHOP | IPV6_HOPOPTS | IPV6_DSTOPTS | IPV6_RTHDR | IPV6_RTHDRDSTOPTS
            | IPV6_PREFER_TEMPADDR | IPV6_USE_MIN_MTU | IPV6_2292NEXTHOP | IPV6_2292HOPOPTS
            | IPV6_2292DSTOPTS | IPV6_2292RTHDR => {
                violation(format!(
                    "sosend: IPv6 control data of type {} is not modelled",
                    r.ty
                ));
                return Err(fb::EINVAL);
            }
            _ => return Err(fb::ENOPROTOOPT),
        }
        Ok(())
    });
    if e != 0 {
        return Err(e);
    }
    if let Some((a6, _)) = o.pktinfo6 {
        // in6_selectsrc: a given source must be one of ours.
        if !a6.is_unspecified()
            && !bindany
            && (a6.to_ipv4_mapped().is_some() || !ifaddr::is_local(IpAddr::V6(a6)))
        {
            return Err(fb::EADDRNOTAVAIL);
        }
    }
    Ok(o)
}

/// Appends one Linux ancillary record to `buf`.
fn push_linux(buf: &mut Vec<u8>, level: c_int, ty: c_int, data: &[u8]) {
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
    let (space, clen) = unsafe {
        (
            libc::CMSG_SPACE(data.len() as u32) as usize,
            libc::CMSG_LEN(data.len() as u32) as usize,
        )
    };
    let start = buf.len();
    buf.resize(start + space, 0);
    let hdr = libc::cmsghdr {
        cmsg_len: clen as _,
        cmsg_level: level,
        cmsg_type: ty,
    };
    // SAFETY: `buf` has `space` bytes from `start`; the header is copied
    // unaligned, then the data after it.
    unsafe {
        std::ptr::write_unaligned(buf.as_mut_ptr().add(start).cast::<libc::cmsghdr>(), hdr);
        let d = clen - data.len();
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf.as_mut_ptr().add(start + d), data.len());
    }
}

/// The Linux ancillary data for `o`.
pub(crate) fn to_linux(o: &SendOpts) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(src) = o.src4 {
        let pi = libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from_ne_bytes(src.octets()),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        // SAFETY: in_pktinfo is plain data.
        let b = unsafe {
            std::slice::from_raw_parts(
                (&pi as *const libc::in_pktinfo).cast::<u8>(),
                std::mem::size_of::<libc::in_pktinfo>(),
            )
        };
        push_linux(&mut buf, libc::IPPROTO_IP, libc::IP_PKTINFO, b);
    }
    if let Some(t) = o.tos {
        push_linux(
            &mut buf,
            libc::IPPROTO_IP,
            libc::IP_TOS,
            &c_int::from(t).to_ne_bytes(),
        );
    }
    if let Some((a, i)) = o.pktinfo6 {
        let mut b = a.octets().to_vec();
        b.extend_from_slice(&i.to_ne_bytes());
        push_linux(&mut buf, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &b);
    }
    for (v, ty) in [
        (o.hoplimit, libc::IPV6_HOPLIMIT),
        (o.tclass, libc::IPV6_TCLASS),
        (o.dontfrag, libc::IPV6_DONTFRAG),
    ] {
        if let Some(v) = v {
            push_linux(&mut buf, libc::IPPROTO_IPV6, ty, &v.to_ne_bytes());
        }
    }
    buf
}

/// One FreeBSD control record (`sbcreatecontrol`'s layout: `CMSG_SPACE`
/// bytes, padding zeroed).
fn fbsd_record(level: c_int, ty: c_int, data: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; align(HDR) + align(data.len())];
    r[..4].copy_from_slice(&(cmsg_len(data.len()) as u32).to_ne_bytes());
    r[4..8].copy_from_slice(&level.to_ne_bytes());
    r[8..12].copy_from_slice(&ty.to_ne_bytes());
    r[align(HDR)..align(HDR) + data.len()].copy_from_slice(data);
    r
}

/// The FreeBSD control records of a received datagram, from the Linux
/// ancillary data of `msg`: `IP_RECVDSTADDR` when `dstaddr4`,
/// `IPV6_PKTINFO` when `pktinfo6`.
pub(crate) fn from_linux(msg: &libc::msghdr, dstaddr4: bool, pktinfo6: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // SAFETY: `msg` was filled by recvmsg; the CMSG_* walk stays within
    // msg_control/msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let h = std::ptr::read_unaligned(c);
            let data = libc::CMSG_DATA(c);
            let n = (h.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            let d = std::slice::from_raw_parts(data, n);
            match (h.cmsg_level, h.cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) if dstaddr4 => {
                    if n >= std::mem::size_of::<libc::in_pktinfo>() {
                        let pi: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                        out.push(fbsd_record(
                            IPPROTO_IP,
                            IP_RECVDSTADDR,
                            &pi.ipi_addr.s_addr.to_ne_bytes(),
                        ));
                    }
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if pktinfo6 && n >= PKTINFO6 => {
                    out.push(fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &d[..PKTINFO6]));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    out
}

/// The records as a chain of `MT_CONTROL` mbufs, one each, allocated
/// `M_NOWAIT` (a record whose mbuf cannot be had is left out, as
/// `ip_savecontrol` leaves it); NULL for none. (The allocations' site is
/// this file: `mbuf:site=inet/ctl.rs` fails them.)
pub(crate) fn chain(records: &[Vec<u8>]) -> *mut mbuf {
    let mut head: *mut mbuf = std::ptr::null_mut();
    let mut tail: *mut mbuf = std::ptr::null_mut();
    for r in records {
        let Some(m) = kmbuf::try_control(r) else {
            continue;
        };
        if tail.is_null() {
            head = m;
        } else {
            // SAFETY: `tail` is the last mbuf of the chain being built.
            unsafe { fields::set_next(tail, m) };
        }
        tail = m;
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl(recs: &[Vec<u8>]) -> Control {
        Control {
            bytes: recs.concat(),
            more: false,
        }
    }

    #[test]
    fn freebsd_records() {
        let r = fbsd_record(IPPROTO_IP, IP_SENDSRCADDR, &[127, 0, 0, 2]);
        assert_eq!(r.len(), 24);
        assert_eq!(&r[..4], &20u32.to_ne_bytes());
        assert_eq!(&r[16..20], &[127, 0, 0, 2]);
        let r = fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &[0; 20]);
        assert_eq!(r.len(), 40);
        assert_eq!(&r[..4], &36u32.to_ne_bytes());
    }

    #[test]
    fn v6_walk_rules() {
        let mut pi = [0u8; 20];
        pi[15] = 1;
        let ok = udp6(&ctl(&[fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &pi)]), false).unwrap();
        assert_eq!(ok.pktinfo6, Some((Ipv6Addr::LOCALHOST, 0)));
        // Other levels are skipped; unknown types refused.
        let skip = udp6(&ctl(&[fbsd_record(IPPROTO_IP, IP_TOS, &[1])]), false).unwrap();
        assert_eq!(skip, SendOpts::default());
        assert_eq!(
            udp6(&ctl(&[fbsd_record(IPPROTO_IPV6, 9999, &[0; 4])]), false),
            Err(fb::ENOPROTOOPT)
        );
        // A short pktinfo, a multicast or a non-local source.
        assert_eq!(
            udp6(
                &ctl(&[fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &pi[..16])]),
                false
            ),
            Err(fb::EINVAL)
        );
        let mut m = pi;
        m[0] = 0xff;
        assert_eq!(
            udp6(&ctl(&[fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &m)]), false),
            Err(fb::EINVAL)
        );
        let mut far = [0u8; 20];
        far[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(
            udp6(
                &ctl(&[fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &far)]),
                false
            ),
            Err(fb::EADDRNOTAVAIL)
        );
        assert!(udp6(&ctl(&[fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &far)]), true).is_ok());
        // An unknown interface.
        let mut bad_if = pi;
        bad_if[16..].copy_from_slice(&0x7fff_fff0u32.to_ne_bytes());
        assert_eq!(
            udp6(
                &ctl(&[fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &bad_if)]),
                false
            ),
            Err(fb::ENXIO)
        );
        // Two mbufs, a zero or oversized cmsg_len.
        let mut c = ctl(&[fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &pi)]);
        c.more = true;
        assert_eq!(udp6(&c, false), Err(fb::EINVAL));
        let mut c = ctl(&[fbsd_record(IPPROTO_IPV6, IPV6_PKTINFO, &pi)]);
        c.bytes[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(udp6(&c, false), Err(fb::EINVAL));
        c.bytes[..4].copy_from_slice(&41u32.to_ne_bytes());
        assert_eq!(udp6(&c, false), Err(fb::EINVAL));
    }
}
