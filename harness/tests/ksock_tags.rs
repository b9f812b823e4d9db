//! The `NG_KSOCKET_TAG_SOCKADDR` mbuf tag (docs/ksocket.md §2.4, §6), seen from
//! inside the kernel: a small node type defined here ("tagcap") sits on a
//! UDP ksocket's hook, records the tags of what the ksocket forwards and
//! sends packets with hand-made tags back. User space cannot see or make
//! these tags (ng_socket drops them), so this is the only place the byte
//! layout and the ID rule are checked directly.

mod ksock_util;

use std::cell::RefCell;
use std::ffi::{c_char, c_int};
use std::net::UdpSocket;

use fbsd_sys::{hook_p, item_p, ng_type, node_p};
use ksock_util::{idpath, settle, sin, sin_of, sin_port, udp_recv, KS_COOKIE};
use ngharness::kern::mbuf as kmbuf;
use ngharness::netgraph::client::Client;
use ngharness::netgraph::core::exports as k;

const TAG_SOCKADDR: u16 = fbsd_sys::NG_KSOCKET_TAG_SOCKADDR as u16;
const LOOP: [u8; 4] = [127, 0, 0, 1];

/// (payload, tags) of one packet the tagcap node received.
type Packet = (Vec<u8>, Vec<(u32, u16, Vec<u8>)>);

ngharness::kernel_local! {
    static GOT: RefCell<Vec<Packet>> = RefCell::new(Vec::new());
    static HOOK: RefCell<hook_p> = RefCell::new(std::ptr::null_mut());
}

unsafe extern "C" fn tc_constructor(_node: node_p) -> c_int {
    0
}

unsafe extern "C" fn tc_shutdown(node: node_p) -> c_int {
    // SAFETY: the creation reference, dropped once.
    unsafe { k::ngk_unref_node(node) };
    0
}

unsafe extern "C" fn tc_newhook(_node: node_p, hook: hook_p, _name: *const c_char) -> c_int {
    HOOK.with(|h| *h.borrow_mut() = hook);
    0
}

unsafe extern "C" fn tc_rcvdata(_hook: hook_p, item: item_p) -> c_int {
    // SAFETY: a data item we own; its mbuf is read, then both are freed.
    unsafe {
        let m = (*item).body.da_m;
        let rec = (kmbuf::to_vec(m), kmbuf::tags_of(m));
        GOT.with(|g| g.borrow_mut().push(rec));
        k::ngk_free_item(item);
    }
    0
}

unsafe extern "C" fn tc_disconnect(hook: hook_p) -> c_int {
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

fn register_tagcap() -> *mut ng_type {
    let t: &'static mut ng_type = Box::leak(Box::default());
    t.version = fbsd_sys::NG_ABI_VERSION;
    t.name = c"tagcap".as_ptr();
    t.constructor = Some(tc_constructor);
    t.shutdown = Some(tc_shutdown);
    t.newhook = Some(tc_newhook);
    t.rcvdata = Some(tc_rcvdata);
    t.disconnect = Some(tc_disconnect);
    // SAFETY: a complete, leaked type record.
    assert_eq!(unsafe { k::ngk_newtype(t) }, 0);
    t
}

/// Sends `data` from the tagcap node to the ksocket, with a tag of `cookie`,
/// `ty` and `payload` if given.
fn send(data: &[u8], tag: Option<(u32, u16, &[u8])>) {
    let hook = HOOK.with(|h| *h.borrow());
    assert!(!hook.is_null(), "tagcap has no hook");
    let m = kmbuf::from_bytes(data);
    if let Some((cookie, ty, payload)) = tag {
        kmbuf::add_tag(m, cookie, ty, payload);
    }
    // SAFETY: a fresh chain we own and the tagcap node's hook.
    let e = unsafe { ngharness::netgraph::macros::send_data(hook, m, 0) };
    assert_eq!(e, 0, "send to the ksocket");
    settle();
}

/// A `struct sa_tag` payload: node ID, then the address.
fn sa_tag(id: u32, sa: &[u8]) -> Vec<u8> {
    let mut v = id.to_ne_bytes().to_vec();
    v.extend_from_slice(sa);
    v
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

/// Receive: an unconnected UDP ksocket tags each datagram with (its own
/// node ID, the source address); a connected one does not tag. Transmit:
/// the tag's address is used when its ID is the ksocket's or 0, ignored
/// when it is another node's (the datagram then has no destination and is
/// dropped), and a malformed address drops the packet.
#[test]
fn sockaddr_tags_both_ways() {
    ksock_util::isolated("sockaddr_tags_both_ways", || {
        let tagcap = register_tagcap();
        let c = Client::new().expect("client");
        c.mkpeer(".", "tagcap", "t", "x").expect("mkpeer tagcap");
        let tid = c.nodeinfo(".:t").expect("tagcap").id;
        c.mkpeer(&idpath(tid), "ksocket", "k", "inet/dgram/udp")
            .expect("mkpeer ksocket");
        let kid = c
            .nodeinfo(&format!("{}k", idpath(tid)))
            .expect("ksocket")
            .id;
        let kp = idpath(kid);
        c.send_msg(&kp, KS_COOKIE, 1, &sin(LOOP, 0)).expect("bind");
        let name = c
            .request(&kp, KS_COOKIE, 5, &[])
            .expect("getname")
            .expect("getname reply");
        let port = sin_port(&name.data);

        // Receive side: one tag, cookie/type/length/ID/address exact.
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"from a", ("127.0.0.1", port)).unwrap();
        assert!(ksock_util::pump_until(2000, || GOT.with(|g| !g.borrow().is_empty())));
        let (data, tags) = GOT.with(|g| g.borrow_mut().remove(0));
        assert_eq!(data, b"from a");
        assert_eq!(tags.len(), 1, "{tags:?}");
        let (cookie, ty, payload) = &tags[0];
        assert_eq!((*cookie, *ty), (942_710_669, TAG_SOCKADDR));
        assert_eq!(payload.len(), 4 + 16, "m_tag_len = 4 + sa_len");
        assert_eq!(payload, &sa_tag(kid, &sin_of(a.local_addr().unwrap())));

        // Transmit side.
        let to_a = sin_of(a.local_addr().unwrap());
        let to_b = sin_of(b.local_addr().unwrap());
        send(
            b"own id",
            Some((KS_COOKIE, TAG_SOCKADDR, &sa_tag(kid, &to_a))),
        );
        assert_eq!(udp_recv(&a, 2000).expect("own-ID tag").0, b"own id");
        send(
            b"third party",
            Some((KS_COOKIE, TAG_SOCKADDR, &sa_tag(0, &to_b))),
        );
        assert_eq!(udp_recv(&b, 2000).expect("ID-0 tag").0, b"third party");
        // The received packet, tag and all, sent back: goes to its source.
        send(b"echo", Some((KS_COOKIE, TAG_SOCKADDR, payload)));
        assert_eq!(udp_recv(&a, 2000).expect("echoed tag").0, b"echo");
        let s0 = stats(&c, &kp);
        // Another node's tag: ignored, so no destination (EDESTADDRREQ).
        send(
            b"foreign",
            Some((KS_COOKIE, TAG_SOCKADDR, &sa_tag(kid + 1000, &to_a))),
        );
        // Other cookies and types are not address tags.
        send(
            b"cookie",
            Some((KS_COOKIE + 1, TAG_SOCKADDR, &sa_tag(kid, &to_a))),
        );
        send(b"type", Some((KS_COOKIE, 2, &sa_tag(kid, &to_a))));
        send(b"untagged", None);
        assert!(udp_recv(&a, 50).is_none());
        assert!(udp_recv(&b, 50).is_none());
        let s1 = stats(&c, &kp);
        assert_eq!(s1[4] - s0[4], 4, "tx_errors: {s0:?} -> {s1:?}");
        // Malformed addresses in our own tag: dropped before the socket.
        let mut short = to_a.clone();
        short[0] = 1;
        send(
            b"len1",
            Some((KS_COOKIE, TAG_SOCKADDR, &sa_tag(kid, &short))),
        );
        send(
            b"cut",
            Some((KS_COOKIE, TAG_SOCKADDR, &sa_tag(kid, &to_a)[..12])),
        );
        send(
            b"idonly",
            Some((KS_COOKIE, TAG_SOCKADDR, &kid.to_ne_bytes()[..3])),
        );
        let mut huge = vec![200u8, 2];
        huge.resize(200, 0);
        send(
            b"huge",
            Some((KS_COOKIE, TAG_SOCKADDR, &sa_tag(kid, &huge))),
        );
        assert!(udp_recv(&a, 50).is_none());
        let s2 = stats(&c, &kp);
        assert_eq!(s2[10] - s1[10], 4, "tx_drop_badaddr: {s1:?} -> {s2:?}");
        // A foreign node's malformed tag is ignored like any foreign tag.
        send(
            b"foreign bad",
            Some((KS_COOKIE, TAG_SOCKADDR, &sa_tag(kid + 1, &short))),
        );
        assert_eq!(stats(&c, &kp)[10], s2[10]);

        // Connected: datagrams arrive untagged (the peer is known).
        c.send_msg(&kp, KS_COOKIE, 4, &to_b).expect("connect");
        b.send_to(b"from b", ("127.0.0.1", port)).unwrap();
        assert!(ksock_util::pump_until(2000, || GOT.with(|g| !g.borrow().is_empty())));
        let (data, tags) = GOT.with(|g| g.borrow_mut().remove(0));
        assert_eq!((data.as_slice(), tags.len()), (&b"from b"[..], 0));
        send(b"to peer", None);
        assert_eq!(udp_recv(&b, 2000).expect("connected send").0, b"to peer");

        c.shutdown(&idpath(tid)).expect("shutdown tagcap");
        settle();
        drop(c);
        settle();
        // SAFETY: no node of the type is left.
        let e = unsafe { k::ngk_rmtype(tagcap) };
        assert_eq!(e, 0);
    });
}
