//! mbuf flags at the socket boundary, seen by the socket(9) model:
//!
//! * receive: a datagram sent to a multicast group arrives with `M_MCAST`
//!   (as ip_input leaves it), a unicast one with neither link flag;
//! * send: a chain handed to `sosend` on an inet socket still carrying
//!   `M_BCAST` or `M_MCAST` is a violation (IP output would address it to
//!   the link's broadcast or multicast address; FreeBSD's ng_ksocket clears
//!   both before `sosend`) — each test acts as a module that forgot;
//! * packet-header invariants: `M_PKTHDR` set by hand on a plain mbuf (its
//!   "packet header" is data), `M_PKTHDR` inside a chain, `M_EXT` without a
//!   cluster, `M_EXTPG` and `M_NOFREE` on ordinary mbufs.

mod inet_util;

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use inet_util::*;
use ngharness::kern::inet::{self, sockaddr_in};
use ngharness::kern::mbuf::{self as kmbuf, fields};

const M_BCAST: u32 = fbsd_sys::M_BCAST;
const M_MCAST: u32 = fbsd_sys::M_MCAST;
const M_PKTHDR: u32 = fbsd_sys::M_PKTHDR;
const IPPROTO_IP: i32 = fbsd_sys::IPPROTO_IP as i32;
const IP_ADD_MEMBERSHIP: i32 = fbsd_sys::IP_ADD_MEMBERSHIP as i32;
const GROUP: [u8; 4] = [239, 1, 2, 3];

/// A bound UDP socket and a Linux peer's address.
fn udp(env: &Env) -> (*mut fbsd_sys::socket, UdpSocket, Vec<u8>) {
    let so = env.socreate(PF_INET, SOCK_DGRAM, 0).expect("udp");
    assert_eq!(env.bind(so, &sockaddr_in(LOOP4, 0)), 0);
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
    peer.set_nonblocking(true).unwrap();
    let port = peer.local_addr().unwrap().port();
    (so, peer, sockaddr_in(LOOP4, port))
}

fn with_flags(data: &[u8], f: u32) -> *mut fbsd_sys::mbuf {
    let m = kmbuf::from_bytes(data);
    // SAFETY: a fresh chain of ours.
    unsafe { fields::set_flags(m, fields::flags(m) | f) };
    m
}

#[test]
fn link_flags_handed_to_sosend_are_violations() {
    let env = setup();
    let (so, peer, to) = udp(&env);
    assert_eq!(env.send_chain(so, Some(&to), with_flags(b"b", M_BCAST)), 0);
    expect_violations(&["top carries M_BCAST"]);
    assert_eq!(env.send_chain(so, Some(&to), with_flags(b"m", M_MCAST)), 0);
    expect_violations(&["top carries M_MCAST"]);
    // Cleared, as ng_ksocket does: nothing to report, and it arrives.
    assert_eq!(env.send_chain(so, Some(&to), with_flags(b"clean", 0)), 0);
    expect_clean();
    let mut buf = [0u8; 64];
    assert!(inet::pump_until(WAIT_MS, || peer.peek(&mut buf).is_ok()));
    // A local socket has no link layer: the flags mean nothing there.
    let dir = tempdir("flags");
    let path = dir.join("l").display().to_string();
    let a = env.socreate(PF_LOCAL, SOCK_DGRAM, 0).expect("local");
    let b = env.socreate(PF_LOCAL, SOCK_DGRAM, 0).expect("local");
    let sun = inet::sockaddr_un(path.as_bytes());
    assert_eq!(env.bind(b, &sun), 0);
    assert_eq!(env.send_chain(a, Some(&sun), with_flags(b"l", M_BCAST)), 0);
    expect_clean();
    for s in [so, a, b] {
        assert_eq!(close(s), 0);
    }
}

fn mcast_if(u: &UdpSocket) {
    let a: [u8; 4] = LOOP4;
    // SAFETY: setsockopt with a 4-byte in_addr on our own descriptor.
    let r = unsafe {
        libc::setsockopt(
            u.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            a.as_ptr().cast(),
            4,
        )
    };
    assert_eq!(r, 0);
}

#[test]
fn multicast_datagrams_arrive_with_m_mcast() {
    let env = setup();
    let so = env.socreate(PF_INET, SOCK_DGRAM, 0).expect("udp");
    assert_eq!(env.bind(so, &sockaddr_in([0, 0, 0, 0], 0)), 0);
    let port = port_of(&sockname(so));
    let mut mreq = GROUP.to_vec();
    mreq.extend_from_slice(&LOOP4);
    assert_eq!(setopt_bytes(so, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq), 0);
    let rec = Box::new(Rec::default());
    set_upcall(so, SO_RCV, &rec);
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    mcast_if(&tx);
    tx.set_multicast_loop_v4(true).unwrap();
    tx.send_to(b"to the group", ("239.1.2.3", port)).unwrap();
    assert!(inet::pump_until(WAIT_MS, || rec.calls() > 0));
    let r = recv(so, 1000, true);
    assert_eq!(r.data.as_deref(), Some(&b"to the group"[..]));
    assert_ne!(r.mflags & M_MCAST, 0, "flags {:#x}", r.mflags);
    assert_eq!(r.mflags & M_BCAST, 0);
    tx.send_to(b"unicast", ("127.0.0.1", port)).unwrap();
    assert!(inet::pump_until(WAIT_MS, || rec.calls() > 1));
    let r = recv(so, 1000, true);
    assert_eq!(r.data.as_deref(), Some(&b"unicast"[..]));
    assert_eq!(r.mflags & (M_MCAST | M_BCAST), 0, "flags {:#x}", r.mflags);
    clear_upcall(so, SO_RCV);
    assert_eq!(close(so), 0);
    expect_clean();
}

/// A two-mbuf chain (`from_bytes_chunked`) of 200 bytes of 0x5a.
fn two_mbufs() -> (*mut fbsd_sys::mbuf, *mut fbsd_sys::mbuf) {
    let m = kmbuf::from_bytes_chunked(&[0x5a; 200], 100);
    // SAFETY: a fresh chain of two mbufs.
    let n = unsafe { (*m).__bindgen_anon_1.m_next };
    assert!(!n.is_null());
    (m, n)
}

#[test]
fn packet_header_invariants() {
    let env = setup();
    let (so, _peer, to) = udp(&env);
    // M_PKTHDR set by hand on a plain mbuf: its "packet header" is the
    // data bytes (0x5a...), so its tag list is garbage (freeing
    // it would follow the garbage, so the flag goes before it is freed).
    let (m, n) = two_mbufs();
    // SAFETY: fresh mbufs of ours.
    unsafe { fields::set_flags(n, fields::flags(n) | M_PKTHDR) };
    let p = kmbuf::chain_problems(n);
    assert!(p.iter().any(|x| x.contains("tag list entry")), "{p:#?}");
    // Also inside the chain, where it must not be at all.
    let p = kmbuf::chain_problems(m);
    assert!(
        p.iter().any(|x| x.contains("M_PKTHDR on in-chain mbuf #1")),
        "{p:#?}"
    );
    // SAFETY: as above.
    unsafe { fields::set_flags(n, fields::flags(n) & !M_PKTHDR) };
    kmbuf::free_chain(m);
    // The same on the send path, with a zeroed data area (so the packet
    // header reads as empty and freeing stays safe): the chain check in
    // sosend sees the mbuf's data outside what M_PKTHDR makes its storage.
    let m = kmbuf::from_bytes_chunked(&[0; 200], 100);
    // SAFETY: a fresh chain of two mbufs; split by hand.
    let n = unsafe { (*m).__bindgen_anon_1.m_next };
    unsafe {
        (*m).__bindgen_anon_1.m_next = std::ptr::null_mut();
        fields::set_ph_len(m, fields::len(m));
        fields::set_flags(n, fields::flags(n) | M_PKTHDR);
    }
    kmbuf::free_chain(m);
    let _ = env.send_chain(so, Some(&to), n);
    let v = ngharness::kern::take_violations();
    assert!(
        v.iter()
            .any(|x| x.contains("sosend") && x.contains("outside its storage")),
        "{v:#?}"
    );
    // M_EXTPG / M_NOFREE on an ordinary mbuf.
    for (f, want) in [
        (fbsd_sys::M_EXTPG, "M_EXTPG"),
        (fbsd_sys::M_NOFREE, "M_NOFREE"),
    ] {
        let m = kmbuf::from_bytes(b"x");
        // SAFETY: a fresh mbuf of ours; the flag is removed before freeing.
        unsafe { fields::set_flags(m, fields::flags(m) | f) };
        let p = kmbuf::chain_problems(m);
        assert!(p.iter().any(|x| x.contains(want)), "{p:?}");
        // SAFETY: as above.
        unsafe { fields::set_flags(m, fields::flags(m) & !f) };
        kmbuf::free_chain(m);
    }
    // M_EXT on an mbuf without a cluster.
    let m = kmbuf::from_bytes(b"x");
    // SAFETY: as above; restored before freeing.
    unsafe { fields::set_flags(m, fields::flags(m) | fbsd_sys::M_EXT) };
    let p = kmbuf::chain_problems(m);
    assert!(
        p.iter().any(|x| x.contains("is not a live cluster")),
        "{p:?}"
    );
    // SAFETY: as above.
    unsafe { fields::set_flags(m, fields::flags(m) & !fbsd_sys::M_EXT) };
    kmbuf::free_chain(m);
    // A sound chain has no problem.
    let m = kmbuf::from_bytes_chunked(&[1; 5000], 2048);
    assert!(kmbuf::chain_problems(m).is_empty());
    kmbuf::free_chain(m);
    assert_eq!(close(so), 0);
    let _ = ngharness::kern::take_violations();
}
