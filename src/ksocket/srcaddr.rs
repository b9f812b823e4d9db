//! Local addresses of datagrams (an ngsock addition; `laddr` has the tag's
//! layout and rules).
//!
//! * Receive: with `IP_RECVDSTADDR` (IPv4) or `IPV6_RECVPKTINFO` (IPv6)
//!   on, the node asks `soreceive` for the control data of what an
//!   unconnected socket receives, and tags each datagram with the local
//!   address (and IPv6 interface) the control data names.
//! * Send: while the option is on, a datagram with a usable local-address
//!   tag leaves from that address: `sosend` gets `IP_SENDSRCADDR` or
//!   `IPV6_PKTINFO` control data. With the option off the tag is not even
//!   looked for, as in FreeBSD.
//!
//! `sosend` consumes control data in an mbuf of its own. The control mbufs
//! `soreceive` returns are kept in the node's [`Cache`] and rewritten for
//! the answers: as long as a node answers no more datagrams than it
//! received, sending with a source address allocates nothing (an mbuf is
//! allocated only when the cache is empty).
//!
//! Everything here runs only when the option is on: the data path's cost
//! without it is one flag test per receive run and per packet sent.

use super::flags::KsFlags;
use super::laddr::{self, LADDR_COOKIE, TAG_LADDR};
use super::node;
use super::stats::{Counter, Stats};
use super::types::{COOKIE, TAG_SOCKADDR};
use crate::kern::ctlmbuf::{self, Control, ControlCache};
use crate::kern::errno::{Errno, KResult};
use crate::kern::mbuf::{Mbuf, Packet};
use crate::kern::socket::{KSocket, SockAddr};
use crate::kern::thread::PRIV_NETINET_BINDANY;
use crate::pure::cmsg::{self, LocalAddr};
use crate::pure::consts::{
    IPPROTO_IP, IPPROTO_IPV6, IPV6_BINDANY, IPV6_RECVPKTINFO, IP_BINDANY, IP_RECVDSTADDR, PF_INET,
    PF_INET6,
};

/// The control mbufs a node keeps for its answers.
pub(super) type Cache = ControlCache<4>;

/// The option that turns the tag on for a socket of `family`.
fn recv_option(family: i32) -> Option<(i32, i32)> {
    match family {
        PF_INET => Some((IPPROTO_IP, IP_RECVDSTADDR)),
        PF_INET6 => Some((IPPROTO_IPV6, IPV6_RECVPKTINFO)),
        _ => None,
    }
}

/// Before a SETOPT: turning `IP_BINDANY` / `IPV6_BINDANY` on needs
/// `PRIV_NETINET_BINDANY` of the credential the socket was made with.
/// (The protocol checks the thread that sets the option, and a kernel
/// caller passes none: FreeBSD's ksocket lets anyone who can send it
/// messages, root of a jail included, bind to any address.)
pub(super) fn check_setopt(so: &KSocket, level: i32, name: i32, value: &[u8]) -> KResult<()> {
    let bindany = matches!(
        (level, name),
        (IPPROTO_IP, IP_BINDANY) | (IPPROTO_IPV6, IPV6_BINDANY)
    );
    // A value too short for an int is the protocol's to refuse.
    let on = value.get(..4).is_some_and(|v| v.iter().any(|&b| b != 0));
    if bindany && on {
        so.priv_check_cred(PRIV_NETINET_BINDANY)?;
    }
    Ok(())
}

/// After a successful SETOPT: whether received datagrams carry the tag,
/// as the socket reports its option.
pub(super) fn after_setopt(flags: &mut KsFlags, so: &KSocket, family: i32, level: i32, name: i32) {
    if recv_option(family) != Some((level, name)) {
        return;
    }
    let mut v = [0u8; 4];
    let on = matches!(so.getopt(level, name, &mut v), Ok(4)) && v != [0; 4];
    flags.set(KsFlags::LOCALADDR, on);
}

/// The local address in a datagram's control data: the first
/// `IP_RECVDSTADDR` record (IPv4 socket) or `IPV6_PKTINFO` record (IPv6).
fn local_addr(control: &Mbuf, family: i32) -> Option<LocalAddr> {
    ctlmbuf::segments(control)
        .flat_map(cmsg::records)
        .filter_map(|r| cmsg::local_addr(&r))
        .find(|a| match a {
            LocalAddr::V4(_) => family == PF_INET,
            LocalAddr::V6(..) => family == PF_INET6,
        })
}

/// Tags a received datagram with its local address (node `id`), from its
/// control data, which is then kept for answers. Without memory for the
/// tag the datagram is dropped (`None`): an answer to it could not leave
/// from the right address. Without control data (the kernel could not
/// allocate it) the datagram goes on untagged.
#[cold]
#[inline(never)]
pub(super) fn tag_local(
    id: u32,
    stats: &Stats,
    cache: &Cache,
    mut m: Packet,
    control: Option<Mbuf>,
    family: i32,
) -> Option<Packet> {
    let Some(control) = control else {
        return Some(m);
    };
    let a = local_addr(&control, family);
    cache.recycle(control);
    let Some(a) = a else {
        return Some(m);
    };
    match m.prepend_tag(LADDR_COOKIE, TAG_LADDR, laddr::tag_len(&a), |p| {
        laddr::fill_tag(p, id, &a)
    }) {
        Ok(()) => Some(m),
        Err(_) => {
            stats.inc(Counter::RxDropNobufs);
            None
        }
    }
}

/// What a send with a local-address tag needs of its node.
pub(super) struct Ctx<'a> {
    /// The node's ID (the tag's ID rule).
    pub id: u32,
    /// The socket's family, and whether it is a datagram socket.
    pub family: i32,
    pub dgram: bool,
    pub stats: &'a Stats,
    pub cache: &'a Cache,
}

/// The data path of a node with local addresses on (`rcvdata` for it): to
/// the destination of its address tag as any packet, from the address of
/// its local-address tag if it has one for this node (its ID or 0) and the
/// socket is a datagram socket, as if untagged if the tag is another
/// node's. A malformed tag drops the packet (`EINVAL`, counted as
/// `tx_drop_badaddr`).
#[cold]
#[inline(never)]
pub(super) fn send_tagged(so: &KSocket, cx: &Ctx<'_>, m: Mbuf) -> KResult<()> {
    let (sa_tag, tag) = match m.packet() {
        Some(p) => p.tag_payloads(COOKIE, TAG_SOCKADDR, LADDR_COOKIE, TAG_LADDR),
        None => (None, None),
    };
    let src = match tag.filter(|_| cx.dgram) {
        None => None,
        Some(t) => match laddr::tag_source(t, cx.id, cx.family) {
            laddr::TagSource::Use(a) => Some(a),
            laddr::TagSource::Ignore => None,
            laddr::TagSource::Malformed => {
                cx.stats.inc(Counter::TxDropBadaddr);
                return Err(Errno::EINVAL);
            }
        },
    };
    let dest = node::tag_destination(sa_tag, cx.id, cx.stats)?;
    match src {
        None => node::send_packet(so, cx.stats, m, dest.as_ref(), |so, m, d| so.send(m, d)),
        Some(a) => node::send_packet(so, cx.stats, m, dest.as_ref(), |so, m, d| {
            send_from(so, cx.cache, m, d, &a)
        }),
    }
}

/// `sosend` of `m` to `dest` from the local address `src`: the control
/// data is written into a kept control mbuf, or a new one (`ENOBUFS`
/// without memory, the packet then dropped).
fn send_from(
    so: &KSocket,
    cache: &Cache,
    m: Mbuf,
    dest: Option<&SockAddr>,
    src: &LocalAddr,
) -> KResult<()> {
    let mut c = match cache.take() {
        Some(c) => c,
        None => Control::new()?,
    };
    if c.write(|buf| cmsg::write_source(buf, src)).is_none() {
        return Err(Errno::ENOBUFS);
    }
    so.send_control(m, dest, c)
}
