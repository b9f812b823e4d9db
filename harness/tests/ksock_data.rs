//! ng_ksocket's datagram path, seen from user space (docs/ksocket.md §6): the
//! source-address tag of unconnected receives (an echo node sends every
//! datagram back to its own sender), unconnected sends without a tag,
//! datagram boundaries, and the drop of datagrams larger than 65535 bytes.

mod ksock_util;

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;

use ksock_util::*;

const LOOP: [u8; 4] = [127, 0, 0, 1];

/// An echo node `ec` with a UDP ksocket `ks` bound to 127.0.0.1:0; the
/// test's own hook to the echo node is removed again (echo nodes survive
/// losing hooks). Returns (ksocket ID, port).
fn udp_echo(ng: &mut Ng) -> (u32, u16) {
    ng.mkpeer(".", "echo", "e", "x").unwrap();
    ng.name(".:e", "ec").unwrap();
    ng.mkpeer("ec:", "ksocket", "k", "inet/dgram/udp").unwrap();
    let id = ng.nodeid("ec:k").unwrap();
    assert_eq!(ng.ks(&idpath(id), ks::BIND, &sin(LOOP, 0)), Ok(()));
    let name = ng.ks_reply(&idpath(id), ks::GETNAME, &[]);
    assert_eq!(name.arglen, 16);
    ng.rmhook(".", "e").unwrap();
    (id, sin_port(&name.data))
}

/// Unconnected UDP: each received datagram carries its source address in a
/// tag made by the node; the echo node hands the packet (tag included) back,
/// and the node sends it to that address. Two clients, each gets its own.
#[test]
fn unconnected_udp_replies_go_to_each_source() {
    isolated("unconnected_udp_replies_go_to_each_source", || {
        let mut ng = Ng::open();
        let (id, port) = udp_echo(&mut ng);
        let c1 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let c2 = UdpSocket::bind("127.0.0.1:0").unwrap();
        c1.send_to(b"one", ("127.0.0.1", port)).unwrap();
        c2.send_to(b"two", ("127.0.0.1", port)).unwrap();
        c1.send_to(b"three", ("127.0.0.1", port)).unwrap();
        let (d, from) = udp_recv(&c2, 2000).expect("echo to c2");
        assert_eq!((d.as_slice(), from.port()), (&b"two"[..], port));
        let (d, _) = udp_recv(&c1, 2000).expect("echo to c1");
        assert_eq!(d, b"one");
        let (d, _) = udp_recv(&c1, 2000).expect("second echo to c1");
        assert_eq!(d, b"three");
        assert!(udp_recv(&c2, 50).is_none());
        // A zero-length datagram is a datagram too.
        c2.send_to(b"", ("127.0.0.1", port)).unwrap();
        let (d, _) = udp_recv(&c2, 2000).expect("empty echo");
        assert!(d.is_empty());
        let s = ng.stats(&idpath(id));
        assert_eq!(s[st::RX_PACKETS], 4);
        assert_eq!(s[st::TX_PACKETS], 4);
        assert_eq!(s[st::RX_BYTES], 11);
        assert_eq!(s[st::TAG_FAILURES], 0);
        assert_eq!(s[st::TX_ERRORS], 0);
        ng.shutdown("ec:").unwrap();
        assert!(ng.ksockets().is_empty());
    });
}

/// Unconnected UDP hooked to the data socket: datagrams arrive whole, one
/// per packet, from the hook; what the user writes back carries no address
/// tag (ng_socket cannot make one), so the node cannot send it
/// (EDESTADDRREQ inside the node, counted; the writer sees success). After
/// a binary CONNECT the same write reaches the peer.
#[test]
fn unconnected_udp_through_the_data_socket() {
    isolated("unconnected_udp_through_the_data_socket", || {
        let mut ng = Ng::open();
        let id = ng.ksocket("k", "inet/dgram/udp");
        assert_eq!(ng.ks(".:k", ks::BIND, &sin(LOOP, 0)), Ok(()));
        let port = sin_port(&ng.ks_reply(".:k", ks::GETNAME, &[]).data);
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        let big: Vec<u8> = (0..9000u32).map(|i| i as u8).collect();
        c.send_to(b"a", ("127.0.0.1", port)).unwrap();
        c.send_to(&big, ("127.0.0.1", port)).unwrap();
        c.send_to(b"bc", ("127.0.0.1", port)).unwrap();
        for want in [&b"a"[..], &big, b"bc"] {
            let (hook, d) = ng.recv_data(2000).expect("datagram");
            assert_eq!(hook, "k");
            assert_eq!(d, want);
        }
        assert_eq!(ng.send_data("k", b"nowhere"), Ok(()));
        settle();
        assert!(udp_recv(&c, 50).is_none());
        let s = ng.stats(&idpath(id));
        assert_eq!((s[st::TX_ERRORS], s[st::TX_PACKETS]), (1, 0));
        // Connected: writes go to the peer, receives need no tag.
        assert_eq!(
            ng.ks(".:k", ks::CONNECT, &sin_of(c.local_addr().unwrap())),
            Ok(())
        );
        assert!(!ng.msg_pending(), "UDP connects at once: no response");
        ng.send_data("k", b"hi").unwrap();
        let (d, from) = udp_recv(&c, 2000).expect("datagram from the node");
        assert_eq!((d.as_slice(), from.port()), (&b"hi"[..], port));
        c.send_to(b"back", ("127.0.0.1", port)).unwrap();
        assert_eq!(ng.recv_data(2000).expect("reply").1, b"back");
        let p = ng.ks_reply(".:k", ks::GETPEERNAME, &[]);
        assert_eq!(p.data, sin_of(c.local_addr().unwrap()));
    });
}

/// A datagram longer than 65535 bytes (IP_MAXPACKET, one soreceive) is
/// truncated by the socket layer and dropped; the next one still arrives.
/// Producible with a local datagram socket (UDP over IPv4 stops at 65507).
#[test]
fn datagram_over_65535_bytes_is_dropped() {
    isolated("datagram_over_65535_bytes_is_dropped", || {
        let dir = std::env::temp_dir().join(format!("ksock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.sock");
        let _ = std::fs::remove_file(&path);
        let mut ng = Ng::open();
        ngharness::kern::domain::setsockopt_int(ng.ds, SOL_SOCKET, SO_RCVBUF, 1 << 20)
            .expect("SO_RCVBUF on the data socket");
        let id = ng.ksocket("k", "local/dgram/0");
        let mut sun = vec![0u8, 1];
        sun.extend_from_slice(path.to_str().unwrap().as_bytes());
        sun[0] = sun.len() as u8;
        assert_eq!(ng.ks(".:k", ks::BIND, &sun), Ok(()));
        let tx = UnixDatagram::unbound().unwrap();
        // Room for a 70000-byte datagram in the sender's buffer.
        let sz: libc::c_int = 1 << 20;
        // SAFETY: a valid descriptor and option buffer.
        let r = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&tx),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&sz as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        let max: Vec<u8> = vec![7u8; 65535];
        let over: Vec<u8> = vec![9u8; 70_000];
        tx.send_to(&over, &path).expect("send 70000 bytes");
        tx.send_to(&max, &path).expect("send 65535 bytes");
        tx.send_to(b"small", &path).expect("send small");
        let (_, d) = ng.recv_data(2000).expect("the 65535-byte datagram");
        assert_eq!(d.len(), 65535);
        let (_, d) = ng.recv_data(2000).expect("the small datagram");
        assert_eq!(d, b"small");
        assert!(ng.recv_data(50).is_none());
        let s = ng.stats(&idpath(id));
        assert_eq!(s[st::RX_DROP_TRUNC], 1);
        assert_eq!(s[st::RX_PACKETS], 2);
        drop(tx);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// When netgraph cannot queue a ksocket's removal after its hook is gone
/// (no item for `ng_rmnode_self`), the node is revived, stays reachable
/// with no hook, and removes itself a few ticks later, closing its socket
/// (FreeBSD leaves it unreachable forever, its port bound). The failure is
/// injected at each of the first netgraph item allocations of an `rmhook`.
#[test]
fn lost_removal_is_retried() {
    isolated("lost_removal_is_retried", || {
        use ngharness::kern::fault::{self, FaultPlan};
        let mut revived = 0;
        for n in 1..=6 {
            let mut ng = Ng::open();
            let id = ng.ksocket("k", "inet/dgram/udp");
            assert_eq!(ng.ks(".:k", ks::BIND, &sin(LOOP, 0)), Ok(()));
            let port = sin_port(&ng.ks_reply(".:k", ks::GETNAME, &[]).data);
            fault::configure(FaultPlan::parse(&format!("ng_item:nth={n}")).unwrap());
            let r = ng.rmhook(".", "k");
            settle();
            let injected = fault::injected();
            fault::clear();
            let left: Vec<NodeInfo> = ng.ksockets();
            if r.is_ok() && injected == 1 && left.iter().any(|x| x.id == id && x.hooks == 0) {
                // Revived: reachable, hook-less, socket still open ...
                revived += 1;
                assert_eq!(ng.nodeid(&idpath(id)), Ok(id));
                // ... until the retry a few ticks later.
                assert!(pump_until(1000, || ng.ksockets().is_empty()));
            } else if !left.is_empty() {
                // A lost hook removal (netgraph's ng_rmhook_self): the node
                // keeps a dead hook; it can still be shut down.
                assert!(left.iter().all(|x| x.id == id && x.hooks == 1), "{left:?}");
                ng.shutdown(&idpath(id)).unwrap();
            }
            // The port is free again.
            let u = UdpSocket::bind(("127.0.0.1", port));
            assert!(u.is_ok(), "nth={n}: port {port} still bound");
            drop(u);
            ng.close();
            settle();
        }
        assert!(revived >= 1, "no run lost the node's own removal");
    });
}
