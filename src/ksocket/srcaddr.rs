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
//! Everything here runs only when the option is on, and costs nothing when
//! it is off: the option picks the hook's data-path variant and the
//! socket upcalls' event (as traffic counting does), so the usual paths do
//! not even test a flag.

use super::args::{self, TagDest};
use super::laddr::{self, LADDR_COOKIE, TAG_LADDR};
use super::stats::{Counter, RxStats, Tx, TxStats};
use super::types::{COOKIE, TAG_SOCKADDR};
use crate::kern::ctlmbuf::{self, Control, ControlCache};
use crate::kern::errno::{Errno, KResult};
use crate::kern::mbuf::{Mbuf, Packet};
use crate::kern::socket::{KSocket, Sender, SockAddr};
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

/// After a successful SETOPT: whether received datagrams carry the tag, as
/// the socket reports its option, if the option set was the one of the
/// socket's family (`None` for any other option).
pub(super) fn local_option_on(so: &KSocket, family: i32, level: i32, name: i32) -> Option<bool> {
    if recv_option(family) != Some((level, name)) {
        return None;
    }
    let mut v = [0u8; 4];
    Some(matches!(so.getopt(level, name, &mut v), Ok(4)) && v != [0; 4])
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
/// tag the datagram is dropped (`None`, counted as `rx_drop_nobufs`): an
/// answer to it could not leave from the right address. Without control
/// data (the kernel could not allocate it) the datagram goes on untagged.
#[cold]
#[inline(never)]
pub(super) fn tag_local(
    id: u32,
    rx: &mut RxStats,
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
    // The payload after the ID: interface index and address.
    let mut buf = [0u8; laddr::SIN6_LEN + laddr::TAG_ADDR_OFF];
    let len = usize::from(laddr::tag_len(&a));
    laddr::fill_tag(&mut buf, id, &a);
    let tail = buf.get(4..len).unwrap_or(&[]);
    match m.prepend_tag_with(LADDR_COOKIE, TAG_LADDR, &id, tail) {
        Ok(()) => Some(m),
        Err(_) => {
            rx.inc(Counter::RxDropNobufs);
            None
        }
    }
}

/// What a send with local addresses on needs of its node.
pub(super) struct Ctx<'a> {
    /// The node's ID (the tags' ID rule).
    pub id: u32,
    /// The socket's family, and whether it is a datagram socket.
    pub family: i32,
    pub dgram: bool,
    pub tx: &'a TxStats,
    pub cache: &'a Cache,
    /// Traffic is counted.
    pub count: bool,
}

/// The data path of a tagged packet while local addresses are on
/// (`rcvdata` for it): to the destination of its address tag as any
/// packet, from the address of its local-address tag if it has one for
/// this node (its ID or 0) and the socket is a datagram socket, as if it
/// had none if the tag is another node's. A malformed tag of either kind
/// drops the packet (`EINVAL`, counted as `tx_drop_badaddr`).
#[cold]
#[inline(never)]
pub(super) fn send_tagged(tx: Sender<'_>, cx: &Ctx<'_>, p: Packet) -> KResult<()> {
    let len = p.byte_len();
    let src = match p.tag_payload(LADDR_COOKIE, TAG_LADDR).filter(|_| cx.dgram) {
        None => None,
        Some(t) => match laddr::tag_source(t, cx.id, cx.family) {
            laddr::TagSource::Use(a) => Some(a),
            laddr::TagSource::Ignore => None,
            laddr::TagSource::Malformed => return Err(failed(cx, Errno::EINVAL, true)),
        },
    };
    let dest = match p.tag_payload(COOKIE, TAG_SOCKADDR) {
        None => None,
        Some(tag) => match args::tag_dest(tag, cx.id) {
            TagDest::Ignore => None,
            TagDest::Use(sa) => match SockAddr::from_bytes(sa) {
                Ok(a) => Some(a),
                Err(e) => return Err(failed(cx, e, true)),
            },
            TagDest::Malformed => return Err(failed(cx, Errno::EINVAL, true)),
        },
    };
    let r = match src {
        None => tx.send(p, dest.as_ref()),
        Some(a) => send_from(tx, cx.cache, p, dest.as_ref(), &a),
    };
    match r {
        Ok(()) => {
            if cx.count {
                cx.tx.inc(Tx::Packets);
                cx.tx.add(Tx::Bytes, len);
            }
            Ok(())
        }
        Err(e) => Err(failed(cx, e, false)),
    }
}

/// Counts a packet not sent: a malformed tag (`tx_drop_badaddr`) or a
/// refusal of the socket (`tx_errors`).
fn failed(cx: &Ctx<'_>, e: Errno, badaddr: bool) -> Errno {
    cx.tx
        .inc(if badaddr { Tx::DropBadaddr } else { Tx::Errors });
    e
}

/// `sosend` of `m` to `dest` from the local address `src`: the control
/// data is written into a kept control mbuf, or a new one (`ENOBUFS`
/// without memory, the packet then dropped).
fn send_from(
    tx: Sender<'_>,
    cache: &Cache,
    m: Packet,
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
    tx.send_control(m, dest, c)
}
