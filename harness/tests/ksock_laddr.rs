//! The local-address tag (ngsock's `NGM_KSOCKET_LADDR_COOKIE` /
//! `NG_KSOCKET_TAG_LADDR`, include/netgraph/ng_ksocket_ext.h), seen from
//! inside the kernel by a node defined here ("lacap") on a UDP ksocket's
//! hook: the exact tag a datagram gets with IP_RECVDSTADDR or
//! IPV6_RECVPKTINFO on, sends from a tag's address (this node's ID or 0),
//! foreign tags ignored, malformed ones dropped, allocation failures, and
//! IP_BINDANY's privilege (docs/ksocket.md §6.3, rows K52, K53, K55,
//! K57).

mod ksock_util;

use std::cell::RefCell;
use std::ffi::{c_char, c_int};
use std::net::{SocketAddr, UdpSocket};

use fbsd_sys::{hook_p, item_p, ng_type, node_p};
use ksock_util::{idpath, settle, sin, sin_port, sockopt, udp_recv, KS_COOKIE};
use ngharness::kern::fault::{self, FaultPlan};
use ngharness::kern::inet::ifaddr;
use ngharness::kern::mbuf as kmbuf;
use ngharness::kern::thread as kthread;
use ngharness::netgraph::client::Client;
use ngharness::netgraph::core::exports as k;

const TAG_SOCKADDR: u16 = fbsd_sys::NG_KSOCKET_TAG_SOCKADDR as u16;
const LADDR_COOKIE: u32 = fbsd_sys::NGM_KSOCKET_LADDR_COOKIE;
const TAG_LADDR: u16 = fbsd_sys::NG_KSOCKET_TAG_LADDR as u16;
const SETOPT: u32 = fbsd_sys::NGM_KSOCKET_SETOPT;
const BIND: u32 = fbsd_sys::NGM_KSOCKET_BIND;
const GETNAME: u32 = fbsd_sys::NGM_KSOCKET_GETNAME;
const IPPROTO_IP: i32 = 0;
const IPPROTO_IPV6: i32 = 41;
const IP_RECVDSTADDR: i32 = 7;
const IP_BINDANY: i32 = 24;
const IPV6_V6ONLY: i32 = 27;
const IPV6_RECVPKTINFO: i32 = 36;
const IPV6_BINDANY: i32 = 64;
/// Counters of the statistics reply.
const TX_ERRORS: usize = 4;
const RX_DROP_NOBUFS: usize = 7;
const TX_DROP_BADADDR: usize = 10;
const TAG_FAILURES: usize = 12;

type Tags = Vec<(u32, u16, Vec<u8>)>;

ngharness::kernel_local! {
    static GOT: RefCell<Vec<(Vec<u8>, Tags)>> = RefCell::new(Vec::new());
    static HOOK: RefCell<hook_p> = RefCell::new(std::ptr::null_mut());
}

unsafe extern "C" fn lc_constructor(_node: node_p) -> c_int {
    0
}

unsafe extern "C" fn lc_shutdown(node: node_p) -> c_int {
    // SAFETY: the creation reference, dropped once.
    unsafe { k::ngk_unref_node(node) };
    0
}

unsafe extern "C" fn lc_newhook(_node: node_p, hook: hook_p, _name: *const c_char) -> c_int {
    HOOK.with(|h| *h.borrow_mut() = hook);
    0
}

unsafe extern "C" fn lc_rcvdata(_hook: hook_p, item: item_p) -> c_int {
    // SAFETY: a data item we own; its mbuf is read, then both are freed.
    unsafe {
        let m = (*item).body.da_m;
        let rec = (kmbuf::to_vec(m), kmbuf::tags_of(m));
        GOT.with(|g| g.borrow_mut().push(rec));
        k::ngk_free_item(item);
    }
    0
}

unsafe extern "C" fn lc_disconnect(hook: hook_p) -> c_int {
    HOOK.with(|h| *h.borrow_mut() = std::ptr::null_mut());
    // SAFETY: the hook's node is live during disconnect.
    unsafe {
        let node = (*hook).hk_node;
        if (*node).nd_numhooks == 0 && (*node).nd_flags & fbsd_sys::NGF_INVALID as c_int == 0 {
            k::ngk_rmnode_self(node);
        }
    }
    0
}

fn register_lacap() -> *mut ng_type {
    let t: &'static mut ng_type = Box::leak(Box::default());
    t.version = fbsd_sys::NG_ABI_VERSION;
    t.name = c"lacap".as_ptr();
    t.constructor = Some(lc_constructor);
    t.shutdown = Some(lc_shutdown);
    t.newhook = Some(lc_newhook);
    t.rcvdata = Some(lc_rcvdata);
    t.disconnect = Some(lc_disconnect);
    // SAFETY: a complete, leaked type record.
    assert_eq!(unsafe { k::ngk_newtype(t) }, 0);
    t
}

/// Sends `data` from the lacap node to the ksocket with these tags.
fn send(data: &[u8], tags: &[(u32, u16, Vec<u8>)]) {
    let hook = HOOK.with(|h| *h.borrow());
    assert!(!hook.is_null(), "lacap has no hook");
    let m = kmbuf::from_bytes(data);
    for (cookie, ty, payload) in tags {
        kmbuf::add_tag(m, *cookie, *ty, payload);
    }
    // SAFETY: a fresh chain we own and the lacap node's hook.
    let e = unsafe { ngharness::netgraph::macros::send_data(hook, m, 0) };
    assert_eq!(e, 0, "send to the ksocket");
    settle();
}

fn next_packet() -> (Vec<u8>, Tags) {
    assert!(
        ksock_util::pump_until(2000, || GOT.with(|g| !g.borrow().is_empty())),
        "nothing forwarded"
    );
    GOT.with(|g| g.borrow_mut().remove(0))
}

fn nothing_forwarded() -> bool {
    settle();
    GOT.with(|g| g.borrow().is_empty())
}

fn stats(c: &Client, path: &str) -> Vec<u64> {
    let r = c
        .request(path, KS_COOKIE, 100, &[])
        .expect("getstats")
        .expect("getstats reply");
    r.data
        .chunks_exact(8)
        .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
        .collect()
}

fn setopt(c: &Client, path: &str, level: i32, name: i32, v: i32) -> Result<u32, i32> {
    c.send_msg(
        path,
        KS_COOKIE,
        SETOPT,
        &sockopt(level, name, &v.to_ne_bytes()),
    )
}

/// A local-address tag payload: ID, interface index, address.
fn laddr(id: u32, ifindex: u32, sa: &[u8]) -> Vec<u8> {
    let mut v = id.to_ne_bytes().to_vec();
    v.extend_from_slice(&ifindex.to_ne_bytes());
    v.extend_from_slice(sa);
    v
}

fn sa_tag(id: u32, sa: &[u8]) -> Vec<u8> {
    let mut v = id.to_ne_bytes().to_vec();
    v.extend_from_slice(sa);
    v
}

fn sin6(a: [u8; 16], port: u16, scope: u32) -> Vec<u8> {
    let mut v = vec![28u8, 28];
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&a);
    v.extend_from_slice(&scope.to_ne_bytes());
    v
}

fn mapped(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..].copy_from_slice(&v4);
    a
}

fn find(tags: &Tags, cookie: u32, ty: u16) -> Option<Vec<u8>> {
    tags.iter()
        .find(|(c, t, _)| *c == cookie && *t == ty)
        .map(|(_, _, p)| p.clone())
}

/// A lacap node with a ksocket of `triple` on its hook, the ksocket bound
/// to `bind`: (client, ksocket path, ksocket ID, lacap path, port).
fn graph(
    triple: &str,
    opts: &[(i32, i32, i32)],
    bind: &[u8],
) -> (Client, String, u32, String, u16) {
    let c = Client::new().expect("client");
    c.mkpeer(".", "lacap", "t", "x").expect("mkpeer lacap");
    let tid = c.nodeinfo(".:t").expect("lacap").id;
    c.mkpeer(&idpath(tid), "ksocket", "k", triple)
        .expect("mkpeer ksocket");
    let kid = c
        .nodeinfo(&format!("{}k", idpath(tid)))
        .expect("ksocket")
        .id;
    let kp = idpath(kid);
    for &(l, n, v) in opts {
        setopt(&c, &kp, l, n, v).expect("setopt");
    }
    c.send_msg(&kp, KS_COOKIE, BIND, bind).expect("bind");
    let name = c
        .request(&kp, KS_COOKIE, GETNAME, &[])
        .expect("getname")
        .expect("getname reply");
    let port = sin_port(&name.data);
    (c, kp, kid, idpath(tid), port)
}

fn teardown(c: Client, lacap: &str, t: Option<*mut ng_type>) {
    c.shutdown(lacap).expect("shutdown lacap");
    settle();
    drop(c);
    settle();
    if let Some(t) = t {
        // SAFETY: no node of the type is left.
        assert_eq!(unsafe { k::ngk_rmtype(t) }, 0);
    }
}

fn peer(ip: &str) -> UdpSocket {
    UdpSocket::bind((ip, 0)).unwrap()
}

/// IPv4: the tag a datagram gets, answers from its address, the ID rule,
/// malformed and non-local tags, and the option switched off again (the
/// tag then ignored on sends too).
#[test]
fn ipv4_local_address_both_ways() {
    ksock_util::isolated("ipv4_local_address_both_ways", || {
        let t = register_lacap();
        ifaddr::add_alias("127.0.0.2".parse().unwrap()).unwrap();
        let (c, kp, kid, lacap, port) = graph("inet/dgram/udp", &[], &sin([0; 4], 0));
        let a = peer("127.0.0.1");
        let from = |s: &UdpSocket| udp_recv(s, 2000).expect("a datagram").1;
        let here = |ip: [u8; 4]| SocketAddr::from((ip, port));

        // Off: FreeBSD's tag only.
        a.send_to(b"off", ("127.0.0.2", port)).unwrap();
        let (d, tags) = next_packet();
        assert_eq!((d.as_slice(), tags.len()), (&b"off"[..], 1), "{tags:?}");

        setopt(&c, &kp, IPPROTO_IP, IP_RECVDSTADDR, 1).expect("IP_RECVDSTADDR");
        a.send_to(b"to two", ("127.0.0.2", port)).unwrap();
        let (d, tags) = next_packet();
        assert_eq!(d, b"to two");
        assert_eq!(tags.len(), 2, "{tags:?}");
        let la = find(&tags, LADDR_COOKIE, TAG_LADDR).expect("local-address tag");
        assert_eq!(
            la,
            laddr(kid, 0, &sin([127, 0, 0, 2], 0)),
            "m_tag_len 24, exact bytes"
        );
        assert!(find(&tags, KS_COOKIE, TAG_SOCKADDR).is_some());

        // The packet sent back with its tags: from 127.0.0.2.
        send(b"echo", &tags);
        assert_eq!(from(&a), here([127, 0, 0, 2]));
        // Without the local-address tag: routing's choice.
        let to_a = sin_of4(a.local_addr().unwrap());
        send(b"plain", &[(KS_COOKIE, TAG_SOCKADDR, sa_tag(kid, &to_a))]);
        assert_eq!(from(&a), here([127, 0, 0, 1]));
        // A third party's (ID 0) tags.
        let third = [
            (KS_COOKIE, TAG_SOCKADDR, sa_tag(0, &to_a)),
            (
                LADDR_COOKIE,
                TAG_LADDR,
                laddr(0, 0, &sin([127, 0, 0, 2], 7777)),
            ),
        ];
        send(b"third", &third);
        assert_eq!(
            from(&a),
            here([127, 0, 0, 2]),
            "the port in the tag is not used"
        );
        // Another node's: ignored, as FreeBSD's address tag is.
        let s0 = stats(&c, &kp);
        let foreign = [
            (KS_COOKIE, TAG_SOCKADDR, sa_tag(kid, &to_a)),
            (
                LADDR_COOKIE,
                TAG_LADDR,
                laddr(kid + 1000, 0, &sin([127, 0, 0, 2], 0)),
            ),
        ];
        send(b"foreign", &foreign);
        assert_eq!(from(&a), here([127, 0, 0, 1]));
        // Another node's malformed tag: ignored too.
        send(
            b"foreign bad",
            &[
                (KS_COOKIE, TAG_SOCKADDR, sa_tag(kid, &to_a)),
                (LADDR_COOKIE, TAG_LADDR, laddr(kid + 1, 0, &[1])),
            ],
        );
        assert_eq!(from(&a), here([127, 0, 0, 1]));
        assert_eq!(stats(&c, &kp)[TX_DROP_BADADDR], s0[TX_DROP_BADADDR]);
        // Malformed for this node: dropped before the socket.
        let good = laddr(kid, 0, &sin([127, 0, 0, 2], 0));
        let mut wrong_len = good.clone();
        wrong_len[8] = 15;
        let mut wrong_family = good.clone();
        wrong_family[9] = 28;
        for bad in [
            good[..7].to_vec(),
            good[..23].to_vec(),
            wrong_len,
            wrong_family,
        ] {
            send(
                b"bad",
                &[
                    (KS_COOKIE, TAG_SOCKADDR, sa_tag(kid, &to_a)),
                    (LADDR_COOKIE, TAG_LADDR, bad),
                ],
            );
        }
        assert!(udp_recv(&a, 50).is_none());
        let s1 = stats(&c, &kp);
        assert_eq!(
            s1[TX_DROP_BADADDR] - s0[TX_DROP_BADADDR],
            4,
            "{s0:?} -> {s1:?}"
        );
        // Not an address of the host: the socket refuses (EADDRNOTAVAIL).
        send(
            b"far",
            &[
                (KS_COOKIE, TAG_SOCKADDR, sa_tag(kid, &to_a)),
                (
                    LADDR_COOKIE,
                    TAG_LADDR,
                    laddr(kid, 0, &sin([127, 0, 0, 9], 0)),
                ),
            ],
        );
        assert!(udp_recv(&a, 50).is_none());
        assert_eq!(stats(&c, &kp)[TX_ERRORS], s1[TX_ERRORS] + 1);

        // Off again: no local-address tag, and one on a packet sent is
        // not looked at (FreeBSD's behaviour), even this node's or ID 0's,
        // even a malformed one.
        setopt(&c, &kp, IPPROTO_IP, IP_RECVDSTADDR, 0).expect("off");
        a.send_to(b"off again", ("127.0.0.2", port)).unwrap();
        let (_, tags) = next_packet();
        assert_eq!(tags.len(), 1, "{tags:?}");
        let s2 = stats(&c, &kp);
        for la in [
            laddr(kid, 0, &sin([127, 0, 0, 2], 0)),
            laddr(0, 0, &sin([127, 0, 0, 2], 0)),
            laddr(kid, 0, &sin([127, 0, 0, 2], 0))[..9].to_vec(),
        ] {
            send(
                b"untouched",
                &[
                    (KS_COOKIE, TAG_SOCKADDR, sa_tag(kid, &to_a)),
                    (LADDR_COOKIE, TAG_LADDR, la),
                ],
            );
            assert_eq!(from(&a), here([127, 0, 0, 1]));
        }
        let s3 = stats(&c, &kp);
        assert_eq!(s3[TX_DROP_BADADDR], s2[TX_DROP_BADADDR]);
        assert_eq!(s3[TX_ERRORS], s2[TX_ERRORS]);
        teardown(c, &lacap, Some(t));
    });
}

fn sin_of4(a: SocketAddr) -> Vec<u8> {
    match a {
        SocketAddr::V4(v) => sin(v.ip().octets(), v.port()),
        SocketAddr::V6(_) => panic!("IPv4 expected"),
    }
}

/// IPv6: the interface index, IPv4-mapped addresses of a dual-stack
/// socket, and an IPv4 tag on an IPv6 socket.
#[test]
fn ipv6_local_address_and_interface() {
    ksock_util::isolated("ipv6_local_address_and_interface", || {
        let t = register_lacap();
        ifaddr::add_alias("127.0.0.2".parse().unwrap()).unwrap();
        let lo = ifaddr::lo_index();
        let (c, kp, kid, lacap, port) = graph(
            "inet6/dgram/udp",
            &[
                (IPPROTO_IPV6, IPV6_V6ONLY, 0),
                (IPPROTO_IPV6, IPV6_RECVPKTINFO, 1),
            ],
            &sin6([0; 16], 0, 0),
        );
        let c6 = peer("::1");
        c6.send_to(b"six", ("::1", port)).unwrap();
        let (_, tags) = next_packet();
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(
            find(&tags, LADDR_COOKIE, TAG_LADDR).expect("tag"),
            laddr(kid, lo, &sin6(one, 0, 0)),
            "m_tag_len 36: ID, interface, sockaddr_in6"
        );
        send(b"back", &tags);
        assert_eq!(
            udp_recv(&c6, 2000).expect("reply").1,
            format!("[::1]:{port}").parse::<SocketAddr>().unwrap()
        );
        let c4 = peer("127.0.0.1");
        c4.send_to(b"four", ("127.0.0.2", port)).unwrap();
        let (_, tags) = next_packet();
        assert_eq!(
            find(&tags, LADDR_COOKIE, TAG_LADDR).expect("tag"),
            laddr(kid, lo, &sin6(mapped([127, 0, 0, 2]), 0, 0))
        );
        send(b"back4", &tags);
        assert_eq!(
            udp_recv(&c4, 2000).expect("reply").1,
            SocketAddr::from(([127, 0, 0, 2], port))
        );
        // An IPv4 local address on an IPv6 socket is malformed.
        let s0 = stats(&c, &kp);
        let sa = find(&tags, KS_COOKIE, TAG_SOCKADDR).unwrap();
        send(
            b"v4 tag",
            &[
                (KS_COOKIE, TAG_SOCKADDR, sa),
                (
                    LADDR_COOKIE,
                    TAG_LADDR,
                    laddr(kid, 0, &sin([127, 0, 0, 2], 0)),
                ),
            ],
        );
        assert!(udp_recv(&c4, 50).is_none());
        assert_eq!(stats(&c, &kp)[TX_DROP_BADADDR], s0[TX_DROP_BADADDR] + 1);
        // Well formed, but refused by the socket layer (IPV6_PKTINFO's
        // checks), each counted in tx_errors and not sent: an interface
        // that does not exist (ENXIO), an address the host does not have
        // (EADDRNOTAVAIL), ::1 on an interface it is not on (EADDRNOTAVAIL
        // when the interface is given).
        c6.send_to(b"six", ("::1", port)).unwrap();
        let (_, tags) = next_packet();
        let to_c6 = find(&tags, KS_COOKIE, TAG_SOCKADDR).unwrap();
        let s1 = stats(&c, &kp);
        let mut far = [0u8; 16];
        far[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        far[15] = 1;
        let no_if = (1..u32::MAX).find(|&i| !ifaddr::index_exists(i)).unwrap();
        for (what, tag) in [
            ("ENXIO", laddr(kid, no_if, &sin6(one, 0, 0))),
            ("EADDRNOTAVAIL", laddr(kid, 0, &sin6(far, 0, 0))),
            ("EADDRNOTAVAIL", laddr(kid, lo, &sin6(far, 0, 0))),
        ] {
            let e0 = stats(&c, &kp)[TX_ERRORS];
            send(
                what.as_bytes(),
                &[
                    (KS_COOKIE, TAG_SOCKADDR, to_c6.clone()),
                    (LADDR_COOKIE, TAG_LADDR, tag),
                ],
            );
            assert!(udp_recv(&c6, 50).is_none(), "{what}: sent");
            assert_eq!(stats(&c, &kp)[TX_ERRORS], e0 + 1, "{what}");
        }
        let s2 = stats(&c, &kp);
        assert_eq!(s2[TX_DROP_BADADDR], s1[TX_DROP_BADADDR]);
        // Still answering from a good tag.
        send(b"ok", &tags);
        assert_eq!(udp_recv(&c6, 2000).expect("reply").0, b"ok");
        teardown(c, &lacap, Some(t));
    });
}

/// An IPv4 socket bound to one address cannot choose another source
/// (IP_SENDSRCADDR needs the wildcard address: EINVAL, counted in
/// tx_errors), not even its own address; the option is for sockets bound
/// to the wildcard address, as ng_ksocket(4) says. A socket bound to no
/// port at all sends untagged datagrams as usual.
#[test]
fn specific_address_refuses_a_source() {
    ksock_util::isolated("specific_address_refuses_a_source", || {
        let t = register_lacap();
        ifaddr::add_alias("127.0.0.2".parse().unwrap()).unwrap();
        let (c, kp, kid, lacap, port) = graph(
            "inet/dgram/udp",
            &[(IPPROTO_IP, IP_RECVDSTADDR, 1)],
            &sin([127, 0, 0, 1], 0),
        );
        let a = peer("127.0.0.1");
        a.send_to(b"one", ("127.0.0.1", port)).unwrap();
        let (_, tags) = next_packet();
        assert_eq!(
            find(&tags, LADDR_COOKIE, TAG_LADDR).expect("tag"),
            laddr(kid, 0, &sin([127, 0, 0, 1], 0))
        );
        let to_a = find(&tags, KS_COOKIE, TAG_SOCKADDR).unwrap();
        for src in [[127, 0, 0, 1], [127, 0, 0, 2]] {
            let s0 = stats(&c, &kp);
            send(
                b"from",
                &[
                    (KS_COOKIE, TAG_SOCKADDR, to_a.clone()),
                    (LADDR_COOKIE, TAG_LADDR, laddr(kid, 0, &sin(src, 0))),
                ],
            );
            assert!(udp_recv(&a, 50).is_none(), "{src:?}: sent");
            let s1 = stats(&c, &kp);
            assert_eq!(s1[TX_ERRORS], s0[TX_ERRORS] + 1, "{src:?}");
            assert_eq!(s1[TX_DROP_BADADDR], s0[TX_DROP_BADADDR]);
        }
        // Without the local-address tag: sent from the bound address.
        send(b"plain", &[(KS_COOKIE, TAG_SOCKADDR, to_a)]);
        let (d, from) = udp_recv(&a, 2000).expect("reply");
        assert_eq!(d, b"plain");
        assert_eq!(from, SocketAddr::from(([127, 0, 0, 1], port)));
        teardown(c, &lacap, Some(t));
    });
}

/// No memory for the local-address tag: the datagram is dropped (counted),
/// nothing leaks; no memory for FreeBSD's tag: it goes on with ours only.
/// No control mbuf for a send (none kept, none to allocate): ENOBUFS.
#[test]
fn allocation_failures() {
    ksock_util::isolated("allocation_failures", || {
        let t = register_lacap();
        let (c, kp, kid, lacap, port) = graph(
            "inet/dgram/udp",
            &[(IPPROTO_IP, IP_RECVDSTADDR, 1)],
            &sin([0; 4], 0),
        );
        let a = peer("127.0.0.1");
        let s0 = stats(&c, &kp);
        // The second tag of the datagram (ours) fails.
        fault::configure(FaultPlan::parse("tag:nth=2").unwrap());
        a.send_to(b"no tag memory", ("127.0.0.1", port)).unwrap();
        ksock_util::pump_until(500, || false);
        assert!(nothing_forwarded(), "the datagram must be dropped");
        fault::configure(FaultPlan::default());
        let s1 = stats(&c, &kp);
        assert_eq!(
            s1[RX_DROP_NOBUFS],
            s0[RX_DROP_NOBUFS] + 1,
            "{s0:?} -> {s1:?}"
        );
        // The first (FreeBSD's) fails: forwarded with the local address only.
        fault::configure(FaultPlan::parse("tag:nth=1").unwrap());
        a.send_to(b"no sockaddr tag", ("127.0.0.1", port)).unwrap();
        let (d, tags) = next_packet();
        fault::configure(FaultPlan::default());
        assert_eq!(d, b"no sockaddr tag");
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].0, LADDR_COOKIE);
        assert_eq!(stats(&c, &kp)[TAG_FAILURES], s1[TAG_FAILURES] + 1);

        // A second node whose sends find no control mbuf kept, and none can
        // be allocated.
        let (c2, kp2, kid2, lacap2, _) = graph(
            "inet/dgram/udp",
            &[(IPPROTO_IP, IP_RECVDSTADDR, 1)],
            &sin([0; 4], 0),
        );
        let _ = (kid, port);
        let to_a = sin_of4(a.local_addr().unwrap());
        let tags = [
            (KS_COOKIE, TAG_SOCKADDR, sa_tag(kid2, &to_a)),
            (
                LADDR_COOKIE,
                TAG_LADDR,
                laddr(0, 0, &sin([127, 0, 0, 1], 0)),
            ),
        ];
        let e0 = stats(&c2, &kp2)[TX_ERRORS];
        fault::configure(FaultPlan::parse("mbuf:always").unwrap());
        send(b"no control mbuf", &tags);
        fault::configure(FaultPlan::default());
        assert!(udp_recv(&a, 50).is_none());
        assert_eq!(stats(&c2, &kp2)[TX_ERRORS], e0 + 1);
        // With memory: sent (an allocated control mbuf).
        send(b"control mbuf", &tags);
        assert_eq!(udp_recv(&a, 2000).expect("sent").0, b"control mbuf");
        teardown(c2, &lacap2, None);
        teardown(c, &lacap, Some(t));
    });
}

/// `IP_BINDANY` / `IPV6_BINDANY` need `PRIV_NETINET_BINDANY` of the
/// credential the socket was created with (the hook's creator); turning
/// them off does not.
#[test]
fn bindany_needs_the_sockets_privilege() {
    ksock_util::isolated("bindany_needs_the_sockets_privilege", || {
        let c = Client::new().expect("client");
        let root = kthread::curthread();
        for (triple, level, name) in [
            ("inet/dgram/udp", IPPROTO_IP, IP_BINDANY),
            ("inet6/dgram/udp", IPPROTO_IPV6, IPV6_BINDANY),
        ] {
            // The hook (and so the socket) made by an unprivileged thread.
            let user = kthread::new_thread(kthread::Cred::User(1001));
            kthread::set_curthread(user);
            let r = c.mkpeer(".", "ksocket", "u", triple);
            kthread::set_curthread(root);
            r.expect("mkpeer as a user");
            assert_eq!(setopt(&c, ".:u", level, name, 1), Err(1), "EPERM");
            assert_eq!(setopt(&c, ".:u", level, name, 0).map(|_| ()), Ok(()));
            c.rmhook(".", "u").expect("rmhook");
            // Root's socket may.
            c.mkpeer(".", "ksocket", "r", triple).expect("mkpeer");
            assert_eq!(setopt(&c, ".:r", level, name, 1).map(|_| ()), Ok(()));
            c.rmhook(".", "r").expect("rmhook");
            settle();
        }
        drop(c);
        settle();
    });
}
