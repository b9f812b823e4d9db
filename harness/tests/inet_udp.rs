//! socket(9) model: datagram sockets (UDP over 127.0.0.1 / ::1, local dgram).

mod inet_util;

use inet_util::*;
use ngharness::kern::inet::{self, sockaddr_in, sockaddr_in6, sockaddr_un};
use ngharness::kern::{malloc, mbuf as kmbuf};

fn udp_pair(
    env: &Env,
) -> (
    *mut fbsd_sys::socket,
    *mut fbsd_sys::socket,
    Vec<u8>,
    Vec<u8>,
) {
    let a = env.socreate(PF_INET, SOCK_DGRAM, 0).expect("udp a");
    let b = env.socreate(PF_INET, SOCK_DGRAM, 17).expect("udp b");
    assert_eq!(env.bind(a, &sockaddr_in(LOOP4, 0)), 0);
    assert_eq!(env.bind(b, &sockaddr_in(LOOP4, 0)), 0);
    let an = sockname(a);
    let bn = sockname(b);
    assert_eq!(an[0], 16);
    assert_eq!(an[1], 2);
    assert_ne!(port_of(&an), 0);
    (a, b, an, bn)
}

#[test]
fn udp_bind_sendto_receive_with_source() {
    let env = setup();
    let mbufs = kmbuf::live();
    let names = malloc::live(malloc::harness_type("soname"));
    let (a, b, an, bn) = udp_pair(&env);
    // SAFETY: live sockets.
    unsafe {
        assert_eq!((*a).so_type, SOCK_DGRAM as i16);
        assert_eq!((*(*a).so_proto).pr_type, SOCK_DGRAM as i16);
        assert_eq!((*(*a).so_proto).pr_protocol, 17);
        assert_eq!((*a).so_count, 1);
        assert_eq!((*a).so_cred, env.cred);
    }
    let rb = Box::new(Rec::default());
    set_upcall(b, SO_RCV, &rb);
    assert_eq!(env.send(a, Some(&bn), b"hello, world"), 0);
    assert!(
        inet::pump_until(WAIT_MS, || rb.calls() > 0),
        "receive upcall never ran"
    );
    rb.assert_sane();
    let r = recv(b, 65535, true);
    assert_eq!(r.err, 0);
    assert_eq!(r.data.as_deref(), Some(&b"hello, world"[..]));
    assert!(r.pkthdr, "datagram records keep M_PKTHDR");
    assert_eq!(r.addr.as_deref(), Some(&an[..]), "source address");
    assert_eq!(r.flags & MSG_TRUNC, 0);
    assert_eq!(r.resid_left, 65535 - 12);
    // Empty now.
    let r = recv(b, 65535, true);
    assert_eq!(r.err, 35, "EWOULDBLOCK");
    assert!(r.data.is_none() && r.addr.is_none());
    // A zero-length datagram is a zero-length record.
    assert_eq!(env.send(a, Some(&bn), b""), 0);
    assert!(inet::pump_until(WAIT_MS, || rb.calls() > 1));
    let r = recv(b, 100, false);
    assert_eq!(r.err, 0);
    assert_eq!(r.data.as_deref(), Some(&b""[..]));
    clear_upcall(b, SO_RCV);
    assert_eq!(close(a), 0);
    assert_eq!(close(b), 0);
    assert_eq!(inet::live_sockets(), 0);
    assert_eq!(kmbuf::live(), mbufs, "mbuf leak");
    assert_eq!(
        malloc::live(malloc::harness_type("soname")),
        names,
        "M_SONAME leak"
    );
    assert!(inet::check_all().is_empty());
    expect_clean();
}

#[test]
fn udp_connect_and_send() {
    let env = setup();
    let mbufs = kmbuf::live();
    let (a, b, an, bn) = udp_pair(&env);
    // Unconnected without a destination: EDESTADDRREQ.
    assert_eq!(env.send(a, None, b"x"), 39);
    assert_eq!(
        env.connect(a, &sockaddr_in(LOOP4, 0)),
        49,
        "port 0: EADDRNOTAVAIL"
    );
    assert_eq!(env.connect(a, &bn), 0);
    assert_ne!(so_state(a) & SS_ISCONNECTED, 0);
    let (e, p) = peername(a);
    assert_eq!(e, 0);
    assert_eq!(p, bn);
    assert_eq!(env.send(a, None, b"connected"), 0);
    // A destination on a connected socket: EISCONN (udp_send).
    assert_eq!(env.send(a, Some(&bn), b"x"), 56);
    let rb = Box::new(Rec::default());
    set_upcall(b, SO_RCV, &rb);
    assert!(inet::pump_until(WAIT_MS, || recv_ready(b)));
    let r = recv(b, 1000, true);
    assert_eq!(r.data.as_deref(), Some(&b"connected"[..]));
    assert_eq!(r.addr.as_deref(), Some(&an[..]));
    // Reconnecting a datagram socket disconnects it first.
    assert_eq!(env.connect(a, &an), 0);
    clear_upcall(b, SO_RCV);
    close(a);
    close(b);
    assert_eq!(kmbuf::live(), mbufs);
    expect_clean();
}

/// The destination may live inside the packet being sent: ng_ksocket
/// passes `sosend` the address of an `NG_KSOCKET_TAG_SOCKADDR` tag on the
/// packet itself. The kernel reads it before the packet is freed, so the
/// datagram must reach that address (not a freed, poisoned copy of it).
#[test]
fn udp_destination_inside_the_packets_own_tag() {
    use kmbuf::abi;
    use kmbuf::fields::{set_tag_next, set_tags_first, tags_first};
    let env = setup();
    let mbufs = kmbuf::live();
    let (a, b, an, bn) = udp_pair(&env);
    let m = kmbuf::from_bytes(b"addressed by my tag");
    // SAFETY: a module-style tag: allocated, filled (4-byte id, then the
    // sockaddr), prepended; from then on it belongs to the chain.
    let sa = unsafe {
        let t = abi::m_tag_alloc(0x3830_9f8d, 1, (4 + bn.len()) as i32, 1);
        assert!(!t.is_null());
        let payload = t.add(1).cast::<u8>();
        payload.write_bytes(0, 4);
        payload
            .add(4)
            .copy_from_nonoverlapping(bn.as_ptr(), bn.len());
        set_tag_next(t, tags_first(m));
        set_tags_first(m, t);
        payload.add(4).cast::<fbsd_sys::sockaddr>()
    };
    // SAFETY: live socket, owned chain; the address lives in its tag.
    let e = unsafe {
        inet::api::sosend(
            a,
            sa,
            std::ptr::null_mut(),
            m,
            std::ptr::null_mut(),
            0,
            env.td,
        )
    };
    assert_eq!(e, 0, "sosend to the tag's address");
    assert!(
        inet::pump_until(WAIT_MS, || recv_ready(b)),
        "the datagram never arrived"
    );
    let r = recv(b, 1000, true);
    assert_eq!(r.data.as_deref(), Some(&b"addressed by my tag"[..]));
    assert_eq!(r.addr.as_deref(), Some(&an[..]));
    close(a);
    close(b);
    assert_eq!(kmbuf::live(), mbufs, "mbuf leak");
    expect_clean();
}

fn recv_ready(so: *mut fbsd_sys::socket) -> bool {
    // SAFETY: live socket.
    unsafe { (*so).__bindgen_anon_1.__bindgen_anon_1.so_rcv.sb_ccc > 0 }
}

#[test]
fn udp_truncation_and_emsgsize() {
    let env = setup();
    let mbufs = kmbuf::live();
    let (a, b, _an, bn) = udp_pair(&env);
    assert_eq!(env.send(a, Some(&bn), &[7u8; 100]), 0);
    assert!(inet::pump_until(WAIT_MS, || recv_ready(b)));
    let r = recv(b, 10, false);
    assert_eq!(r.err, 0);
    assert_eq!(r.data.as_deref(), Some(&[7u8; 10][..]));
    assert_ne!(r.flags & MSG_TRUNC, 0, "MSG_TRUNC");
    assert_eq!(r.resid_left, 0);
    assert_eq!(
        recv(b, 100, false).err,
        35,
        "the rest of the record was dropped"
    );
    // net.inet.udp.maxdgram = 9216: one byte more is EMSGSIZE, chain consumed.
    assert_eq!(env.send(a, Some(&bn), &vec![1u8; 9217]), 40);
    assert_eq!(env.send(a, Some(&bn), &vec![1u8; 9216]), 0);
    assert_eq!(setopt_int(a, 0xffff, 0x1001, 20000), 0, "SO_SNDBUF");
    assert_eq!(env.send(a, Some(&bn), &vec![1u8; 9217]), 0);
    assert!(inet::pump_until(WAIT_MS, || {
        let r = recv(b, 65535, false);
        r.err == 0 && r.data.as_ref().is_some_and(|d| d.len() == 9217)
    }));
    close(a);
    close(b);
    assert_eq!(kmbuf::live(), mbufs, "mbuf leak");
    expect_clean();
}

#[test]
fn udp_connected_refused_sets_so_error() {
    let env = setup();
    let (a, b, _an, bn) = udp_pair(&env);
    close(b);
    assert_eq!(env.connect(a, &bn), 0);
    let ra = Box::new(Rec::default());
    set_upcall(a, SO_RCV, &ra);
    assert_eq!(env.send(a, None, b"anyone?"), 0);
    // The ICMP port unreachable becomes so_error (udp_notify) and wakes both buffers.
    assert!(inet::pump_until(WAIT_MS, || so_error(a) != 0 || ra.calls() > 0));
    inet::pump(20);
    ra.assert_sane();
    let r = recv(a, 100, false);
    assert_eq!(r.err, 61, "ECONNREFUSED from so_error");
    assert_eq!(so_error(a), 0, "so_error cleared by soreceive");
    assert_eq!(recv(a, 100, false).err, 35);
    clear_upcall(a, SO_RCV);
    close(a);
    expect_clean();
}

#[test]
fn udp6_roundtrip() {
    let env = setup();
    let mut lo6 = [0u8; 16];
    lo6[15] = 1;
    let a = env.socreate(PF_INET6, SOCK_DGRAM, 0).expect("udp6");
    let b = env.socreate(PF_INET6, SOCK_DGRAM, 0).expect("udp6");
    assert_eq!(env.bind(a, &sockaddr_in6(lo6, 0)), 0);
    assert_eq!(env.bind(b, &sockaddr_in6(lo6, 0)), 0);
    let an = sockname(a);
    assert_eq!((an[0], an[1]), (28, 28));
    let bn = sockname(b);
    // An inet address on an inet6 socket.
    assert_eq!(
        env.send(a, Some(&sockaddr_in(LOOP4, port_of(&bn))), b"v4?"),
        47
    );
    assert_eq!(env.send(a, Some(&bn), b"v6"), 0);
    assert!(inet::pump_until(WAIT_MS, || recv_ready(b)));
    let r = recv(b, 100, true);
    assert_eq!(r.data.as_deref(), Some(&b"v6"[..]));
    assert_eq!(r.addr.as_deref(), Some(&an[..]));
    // IPV6_V6ONLY defaults to 1 (FreeBSD).
    assert_eq!(getopt_int(a, 41, 27), (0, 1));
    close(a);
    close(b);
    expect_clean();
}

#[test]
fn local_dgram_roundtrip() {
    let env = setup();
    let dir = tempdir("dgram");
    let pa = dir.join("a");
    let pb = dir.join("b");
    // `a` binds with a full-size sockaddr_un (sun_len 106, NUL padded):
    // FreeBSD hands these very bytes back as the source address.
    let mut sa = sockaddr_un(pa.to_str().unwrap().as_bytes());
    sa[0] = 106;
    sa.resize(106, 0);
    let sb = sockaddr_un(pb.to_str().unwrap().as_bytes());
    let a = env.socreate(PF_LOCAL, SOCK_DGRAM, 0).expect("local dgram");
    let b = env.socreate(PF_LOCAL, SOCK_DGRAM, 0).expect("local dgram");
    assert_eq!(
        sockname(a),
        vec![16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "sun_noname"
    );
    assert_eq!(env.bind(a, &sa), 0);
    assert_eq!(env.bind(b, &sb), 0);
    assert_eq!(sockname(b), sb, "the bound address, verbatim");
    assert_eq!(env.bind(a, &sa), 22, "already bound");
    assert_eq!(env.send(a, Some(&sb), b"local"), 0);
    assert!(inet::pump_until(WAIT_MS, || recv_ready(b)));
    let r = recv(b, 100, true);
    assert_eq!(r.data.as_deref(), Some(&b"local"[..]));
    assert_eq!(r.addr.as_deref(), Some(&sa[..]));
    // net.local.dgram.maxdgram = 8192
    assert_eq!(env.send(a, Some(&sb), &vec![0u8; 8193]), 40);
    close(a);
    close(b);
    let _ = std::fs::remove_dir_all(&dir);
    expect_clean();
}

#[test]
fn blocking_receive_sleeps_until_data_or_timeout() {
    let env = setup();
    let b = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    assert_eq!(env.bind(b, &sockaddr_in(LOOP4, 0)), 0);
    let bn = sockname(b);
    // A datagram sent by "someone else" 5 model ticks from now.
    let port = port_of(&bn);
    ngharness::kern::sched::add_timer(
        5,
        Box::new(move || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.send_to(b"late", ("127.0.0.1", port)).unwrap();
        }),
    );
    // No SS_NBIO, no MSG_DONTWAIT: soreceive sleeps in sbwait.
    let r = recv_flags(b, 100, false, 0);
    assert_eq!(r.err, 0);
    assert_eq!(r.data.as_deref(), Some(&b"late"[..]));
    // SO_RCVTIMEO bounds the wait: EWOULDBLOCK when it passes.
    let mut tv = [0u8; 16];
    tv[8..].copy_from_slice(&20_000i64.to_ne_bytes());
    assert_eq!(setopt_bytes(b, 0xffff, 0x1006, &tv), 0);
    let (e, v, n) = getopt(b, 0xffff, 0x1006, 16);
    assert_eq!((e, n), (0, 16));
    assert_eq!(i64::from_ne_bytes(v[8..].try_into().unwrap()), 20_000);
    let r = recv_flags(b, 100, false, 0);
    assert_eq!(r.err, 35);
    close(b);
    expect_clean();
}
