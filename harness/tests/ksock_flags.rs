//! Link-layer mbuf flags through ng_ksocket, as FreeBSD handles them:
//! packets arriving on the hook with `M_BCAST` or `M_MCAST` leave through
//! the socket without them (the socket model reports a flagged chain given
//! to `sosend`, see inet_flags.rs); a datagram received for a multicast
//! group is forwarded to the hook with `M_MCAST`, as the input path left
//! it. The packets come from the fuzzer's `fzinject` node, which can set
//! flags a user process cannot.

mod ksock_util;

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use ksock_util::*;
use ngharness::fuzz::inject;
use ngharness::kern::take_violations;

const LOOP: [u8; 4] = [127, 0, 0, 1];

/// socket node -> fzinject (f/up) -> ksocket (k/inet/dgram/udp); the
/// ksocket's path.
fn injected_ksocket(ng: &mut Ng) -> String {
    inject::register();
    ng.mkpeer(".", inject::TYPE, "f", "up")
        .expect("mkpeer fzinject");
    let inj = ng.nodeid(".:f").expect("fzinject");
    ng.mkpeer(&idpath(inj), "ksocket", inject::HOOK_NAME, "inet/dgram/udp")
        .expect("mkpeer ksocket");
    idpath(ng.nodeid(&format!("{}k", idpath(inj))).expect("ksocket"))
}

#[test]
fn link_flags_are_cleared_before_the_socket() {
    isolated("link_flags_are_cleared_before_the_socket", || {
        let mut ng = Ng::open();
        let k = injected_ksocket(&mut ng);
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sin_of(peer.local_addr().unwrap());
        assert_eq!(ng.ks(&k, ks::CONNECT, &to), Ok(()));
        settle();
        for (i, f) in [
            fbsd_sys::M_BCAST,
            fbsd_sys::M_MCAST,
            fbsd_sys::M_BCAST | fbsd_sys::M_MCAST,
        ]
        .into_iter()
        .enumerate()
        {
            let data = format!("flagged {i}").into_bytes();
            let p = inject::Packet {
                data: data.clone(),
                chunk: 0,
                flags: f,
                tags: Vec::new(),
            };
            assert_eq!(inject::send(&p), 0);
            settle();
            assert_eq!(udp_recv(&peer, 2000).expect("datagram").0, data);
            let v = take_violations();
            assert!(v.is_empty(), "flags {f:#x}: {v:#?}");
        }
        inject::shutdown_all();
        settle();
    });
}

#[test]
fn multicast_datagram_reaches_the_hook_with_m_mcast() {
    isolated("multicast_datagram_reaches_the_hook_with_m_mcast", || {
        let mut ng = Ng::open();
        let k = injected_ksocket(&mut ng);
        assert_eq!(ng.ks(&k, ks::BIND, &sin([0, 0, 0, 0], 0)), Ok(()));
        let name = ng.ks_reply(&k, ks::GETNAME, &[]);
        let port = u16::from_be_bytes([name.data[2], name.data[3]]);
        let mut mreq = vec![239, 1, 2, 3];
        mreq.extend_from_slice(&LOOP);
        let opt = sockopt(
            fbsd_sys::IPPROTO_IP as i32,
            fbsd_sys::IP_ADD_MEMBERSHIP as i32,
            &mreq,
        );
        assert_eq!(ng.ks(&k, ks::SETOPT, &opt), Ok(()));
        settle();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let lo: [u8; 4] = LOOP;
        // SAFETY: setsockopt with a 4-byte in_addr on our own descriptor.
        let r = unsafe {
            libc::setsockopt(
                tx.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                lo.as_ptr().cast(),
                4,
            )
        };
        assert_eq!(r, 0);
        tx.send_to(b"group", ("239.1.2.3", port)).unwrap();
        assert!(pump_until(2000, || inject::received() > 0));
        let got = inject::take_last().expect("packet");
        assert_eq!(got.data, b"group");
        assert_ne!(got.flags & fbsd_sys::M_MCAST, 0, "flags {:#x}", got.flags);
        tx.send_to(b"unicast", ("127.0.0.1", port)).unwrap();
        assert!(pump_until(2000, || inject::received() > 1));
        let got = inject::take_last().expect("packet");
        assert_eq!(got.flags & (fbsd_sys::M_MCAST | fbsd_sys::M_BCAST), 0);
        inject::shutdown_all();
        settle();
    });
}
