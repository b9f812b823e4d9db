//! ng_ksocket and ng_socket paths that only unusual conditions reach:
//!
//! * data sent into a listening ksocket (dropped, counted, ENOTCONN);
//! * end of file, then a reset from the same peer (one zero-length packet);
//! * socket options whose values exceed 1 KiB (the GETOPT reply grows;
//!   the socket model's `SO_HARNESS_LONG` option stands for such options);
//! * a control message over 4 KiB copied to a control socket while mbufs
//!   cannot be allocated (a short copy: the message is dropped, no leak);
//! * a full send buffer on a non-blocking ksocket (EWOULDBLOCK, counted,
//!   data flows again once the peer reads);
//! * address tags on packets entering the ksocket from another node, after
//!   tags of other cookies and types.
//!
//! Each test ends with the harness's checks (no leak, no violation).

mod ksock_util;

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;

use ksock_util::*;
use ngharness::fuzz::inject;
use ngharness::kern::fault::{self, FaultPlan};
use ngharness::kern::inet::{SO_HARNESS_LONG, SO_HARNESS_LONG_DEFAULT};

const LOOP: [u8; 4] = [127, 0, 0, 1];

/// A TCP ksocket `k` connected to a Linux listener; (its path, the
/// accepted peer).
fn tcp_connected(ng: &mut Ng, peer_rcvbuf: Option<i32>) -> (String, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    if let Some(n) = peer_rcvbuf {
        // SAFETY: setsockopt with an int on our own descriptor.
        unsafe {
            libc::setsockopt(
                l.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&n as *const i32).cast(),
                4,
            )
        };
    }
    let k = idpath(ng.ksocket("k", "inet/stream/tcp"));
    let r = ng.ks(&k, ks::CONNECT, &sin_of(l.local_addr().unwrap()));
    assert!(matches!(r, Ok(()) | Err(EINPROGRESS)), "{r:?}");
    l.set_nonblocking(true).unwrap();
    let mut peer = None;
    assert!(pump_until(2000, || {
        peer = l.accept().ok().map(|(s, _)| s);
        peer.is_some()
    }));
    settle();
    ng.drain();
    (k, peer.unwrap())
}

#[test]
fn data_into_a_listening_ksocket_is_dropped() {
    isolated("data_into_a_listening_ksocket_is_dropped", || {
        let mut ng = Ng::open();
        let k = idpath(ng.ksocket("k", "inet/stream/tcp"));
        assert_eq!(ng.ks(&k, ks::BIND, &sin(LOOP, 0)), Ok(()));
        assert_eq!(ng.ks(&k, ks::LISTEN, &5i32.to_ne_bytes()), Ok(()));
        settle();
        for i in 0..3u8 {
            assert_eq!(ng.send_data("k", &[i; 100]), Ok(()));
        }
        settle();
        let s = ng.stats(&k);
        assert_eq!(s[st::TX_DROP_LISTEN], 3, "{s:?}");
        assert_eq!(s[st::TX_PACKETS], 0, "{s:?}");
        // The listener still listens.
        let name = ng.ks_reply(&k, ks::GETNAME, &[]);
        let c = TcpStream::connect(("127.0.0.1", sin_port(&name.data)));
        assert!(c.is_ok());
        ng.shutdown(&k).unwrap();
    });
}

#[test]
fn end_of_file_then_reset_gives_one_eof() {
    isolated("end_of_file_then_reset_gives_one_eof", || {
        let mut ng = Ng::open();
        let (k, mut peer) = tcp_connected(&mut ng, None);
        tcp_write(&mut peer, b"last words");
        assert_eq!(ng.recv_data(2000).expect("data").1, b"last words");
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let (hook, eof) = ng.recv_data(2000).expect("EOF packet");
        assert_eq!((hook.as_str(), eof.len()), ("k", 0));
        // Then the peer resets: no second zero-length packet.
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt with a struct linger on our own descriptor.
        unsafe {
            libc::setsockopt(
                peer.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&l as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as u32,
            )
        };
        drop(peer);
        settle();
        assert!(ng.recv_data(200).is_none(), "a second EOF packet");
        let s = ng.stats(&k);
        assert_eq!(s[st::EOFS], 1, "{s:?}");
        // Sending into the reset connection fails and is counted.
        assert_eq!(ng.send_data("k", b"too late"), Ok(()));
        settle();
        let s2 = ng.stats(&k);
        assert!(s2[st::TX_ERRORS] >= 1, "{s2:?}");
        ng.shutdown(&k).unwrap();
    });
}

/// SO_HARNESS_LONG as a `struct ng_ksocket_sockopt` (level, name, value).
fn long_opt(value: &[u8]) -> Vec<u8> {
    sockopt(SOL_SOCKET, SO_HARNESS_LONG, value)
}

#[test]
fn option_values_longer_than_a_kilobyte() {
    isolated("option_values_longer_than_a_kilobyte", || {
        let mut ng = Ng::open();
        let k = idpath(ng.ksocket("k", "inet/dgram/udp"));
        let pattern: Vec<u8> = (0..SO_HARNESS_LONG_DEFAULT)
            .map(|i| (i % 251) as u8)
            .collect();
        // FreeBSD's request form (level and name only): FreeBSD's reply,
        // cut at 1024 bytes, level and name zero.
        let r = ng.ks_reply(&k, ks::GETOPT, &long_opt(&[]));
        assert_eq!(r.arglen, 8 + 1024);
        assert_eq!(&r.data[8..], &pattern[..1024]);
        // The extended form (a zero value, as every ASCII getopt sends):
        // the reply grows until the value fits (1024, 2048, 4096).
        let r = ng.ks_reply(&k, ks::GETOPT, &long_opt(&[0; 4]));
        assert_eq!(r.arglen as usize, 8 + SO_HARNESS_LONG_DEFAULT);
        assert_eq!(&r.data[..8], &long_opt(&[])[..]);
        assert_eq!(&r.data[8..], &pattern[..]);
        // A longer value set, then read back whole (beyond 4 KiB).
        let big: Vec<u8> = (0..6000u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(ng.ks(&k, ks::SETOPT, &long_opt(&big)), Ok(()));
        let r = ng.ks_reply(&k, ks::GETOPT, &long_opt(&[0; 8]));
        assert_eq!(&r.data[8..], &big[..]);
        ng.shutdown(&k).unwrap();
    });
}

#[test]
fn long_reply_under_allocation_failure_is_dropped() {
    isolated("long_reply_under_allocation_failure_is_dropped", || {
        let mut ng = Ng::open();
        let k = idpath(ng.ksocket("k", "inet/dgram/udp"));
        let big: Vec<u8> = (0..6000u32).map(|i| (i * 3) as u8).collect();
        assert_eq!(ng.ks(&k, ks::SETOPT, &long_opt(&big)), Ok(()));
        settle();
        // The reply (6064 bytes) is copied by ng_socket into a 4 KiB chain
        // (m_get2: an mbuf and a cluster, ng_socket's first two mbuf-zone
        // allocations), then m_copyback extends the chain: that third
        // allocation fails, the copy is short and the reply is dropped with
        // ENOBUFS, which the responding ksocket hands back to the sender.
        fault::configure(FaultPlan::parse("mbuf:site=ng_socket.ko:nth=3").unwrap());
        let (t, r) = ng.send(&k, KS_COOKIE, ks::GETOPT, &long_opt(&[0; 4]));
        settle();
        let injected = fault::injections();
        fault::clear();
        assert_eq!(r, Err(ENOBUFS));
        assert_eq!(injected.len(), 1, "{injected:#?}");
        assert!(injected[0].contains("from ng_socket.ko:"), "{injected:#?}");
        assert!(ng.recv_token(t, 200).is_none(), "a short reply arrived");
        // Without the failure the same reply arrives whole.
        let r = ng.ks_reply(&k, ks::GETOPT, &long_opt(&[0; 4]));
        assert_eq!(&r.data[8..], &big[..]);
        ng.shutdown(&k).unwrap();
    });
}

#[test]
fn full_send_buffer_would_block() {
    isolated("full_send_buffer_would_block", || {
        let mut ng = Ng::open();
        let (k, mut peer) = tcp_connected(&mut ng, Some(4096));
        let small = sockopt(SOL_SOCKET, SO_SNDBUF, &4096i32.to_ne_bytes());
        assert_eq!(ng.ks(&k, ks::SETOPT, &small), Ok(()));
        let chunk = vec![0x42u8; 16 * 1024];
        for _ in 0..128 {
            assert_eq!(ng.send_data("k", &chunk), Ok(()));
            settle();
        }
        let s = ng.stats(&k);
        assert!(s[st::TX_ERRORS] > 0, "the send buffer never filled: {s:?}");
        let sent = s[st::TX_BYTES] as usize;
        assert!(sent < 128 * chunk.len(), "{s:?}");
        // Everything accepted arrives, and once the peer reads, sends work
        // again.
        let got = tcp_read(&mut peer, sent, 5000);
        assert_eq!(got.len(), sent);
        assert_eq!(ng.send_data("k", b"again"), Ok(()));
        settle();
        let s2 = ng.stats(&k);
        assert_eq!(s2[st::TX_PACKETS], s[st::TX_PACKETS] + 1, "{s2:?}");
        let mut buf = [0u8; 5];
        peer.set_nonblocking(false).unwrap();
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"again");
        ng.shutdown(&k).unwrap();
    });
}

#[test]
fn address_tag_after_other_tags_from_another_node() {
    isolated("address_tag_after_other_tags_from_another_node", || {
        inject::register();
        let mut ng = Ng::open();
        ng.mkpeer(".", inject::TYPE, "f", "up").unwrap();
        let inj = ng.nodeid(".:f").unwrap();
        ng.mkpeer(&idpath(inj), "ksocket", inject::HOOK_NAME, "inet/dgram/udp")
            .unwrap();
        let kid = ng.nodeid(&format!("{}k", idpath(inj))).unwrap();
        let k = idpath(kid);
        assert_eq!(ng.ks(&k, ks::BIND, &sin(LOOP, 0)), Ok(()));
        settle();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to_a = sin_of(a.local_addr().unwrap());
        let sa_tag = |id: u32, sa: &[u8]| {
            let mut v = id.to_ne_bytes().to_vec();
            v.extend_from_slice(sa);
            v
        };
        let tag = fbsd_sys::NG_KSOCKET_TAG_SOCKADDR as u16;
        let send = |tags: Vec<(u32, u16, Vec<u8>)>, data: &[u8]| {
            let p = inject::Packet {
                data: data.to_vec(),
                chunk: 7,
                flags: 0,
                tags,
            };
            assert_eq!(inject::send(&p), 0);
            settle();
        };
        // The address tag behind a foreign cookie and another type: found.
        send(
            vec![
                (0x1234_5678, tag, sa_tag(kid, &to_a)),
                (KS_COOKIE, 2, vec![0; 8]),
                (KS_COOKIE, tag, sa_tag(0, &to_a)),
            ],
            b"third tag",
        );
        assert_eq!(udp_recv(&a, 2000).expect("datagram").0, b"third tag");
        // Two address tags: the first one found counts (another node's:
        // ignored, so no destination).
        send(
            vec![
                (KS_COOKIE, tag, sa_tag(kid, &to_a)),
                (KS_COOKIE, tag, sa_tag(kid + 100, &to_a)),
            ],
            b"two tags",
        );
        assert!(udp_recv(&a, 100).is_none());
        let s = ng.stats(&k);
        assert_eq!(s[st::TX_PACKETS], 1, "{s:?}");
        assert_eq!(s[st::TX_ERRORS], 1, "{s:?}");
        inject::shutdown_all();
        settle();
    });
}

const SOL_SOCKET: i32 = fbsd_sys::SOL_SOCKET as i32;
const SO_SNDBUF: i32 = fbsd_sys::SO_SNDBUF as i32;
