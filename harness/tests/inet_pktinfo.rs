//! socket(9) model: control data of `soreceive` and `sosend` on UDP
//! sockets (`IP_RECVDSTADDR` / `IP_SENDSRCADDR`, `IPV6_RECVPKTINFO` /
//! `IPV6_PKTINFO`), the modelled host's local addresses (lo0 aliases), and
//! `IP_BINDANY` / `IPV6_BINDANY` with their privilege check.

mod inet_util;

use std::ffi::c_int;
use std::net::{SocketAddr, UdpSocket};
use std::ptr::null_mut;

use fbsd_sys::{mbuf, sockaddr, sockaddr_storage, sockopt, uio};
use inet_util::*;
use ngharness::kern::fault::{self, FaultPlan};
use ngharness::kern::inet::{api, ifaddr, pump_until, sockaddr_in, sockaddr_in6};
use ngharness::kern::mbuf as kmbuf;
use ngharness::kern::thread as kthread;

const IPPROTO_IP: c_int = 0;
const IPPROTO_IPV6: c_int = 41;
const IP_RECVDSTADDR: c_int = 7;
const IP_SENDSRCADDR: c_int = 7;
const IP_TOS: c_int = 3;
const IP_BINDANY: c_int = 24;
const IPV6_V6ONLY: c_int = 27;
const IPV6_RECVPKTINFO: c_int = 36;
const IPV6_PKTINFO: c_int = 46;
const IPV6_BINDANY: c_int = 64;
const MT_CONTROL: u32 = fbsd_sys::MT_CONTROL;
const EINVAL: c_int = 22;
const EPERM: c_int = 1;
const EADDRNOTAVAIL: c_int = 49;
const ENOPROTOOPT: c_int = 42;
const ENXIO: c_int = 6;

const ANY4: [u8; 4] = [0, 0, 0, 0];
const TWO: [u8; 4] = [127, 0, 0, 2];
const LOOP6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn mapped(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..].copy_from_slice(&v4);
    a
}

/// A FreeBSD control record (`CMSG_SPACE` bytes).
fn record(level: c_int, ty: c_int, data: &[u8]) -> Vec<u8> {
    let space = 16 + data.len().div_ceil(8) * 8;
    let mut r = vec![0u8; space];
    r[..4].copy_from_slice(&((16 + data.len()) as u32).to_ne_bytes());
    r[4..8].copy_from_slice(&level.to_ne_bytes());
    r[8..12].copy_from_slice(&ty.to_ne_bytes());
    r[16..16 + data.len()].copy_from_slice(data);
    r
}

fn pktinfo6(a: [u8; 16], ifindex: u32) -> Vec<u8> {
    let mut d = a.to_vec();
    d.extend_from_slice(&ifindex.to_ne_bytes());
    d
}

/// `sosend` of `data` to `to` with `control` (one mbuf per record given).
fn send_ctl(
    env: &Env,
    so: *mut fbsd_sys::socket,
    to: &[u8],
    data: &[u8],
    ctl: &[Vec<u8>],
) -> c_int {
    let mut head: *mut mbuf = null_mut();
    for r in ctl.iter().rev() {
        let m = kmbuf::try_control(r).expect("control mbuf");
        // SAFETY: a fresh mbuf; `head` is the chain built so far.
        unsafe { kmbuf::fields::set_next(m, head) };
        head = m;
    }
    let mut ss = storage(to);
    let m = kmbuf::from_bytes(data);
    // SAFETY: valid socket, chains and address; sosend consumes both chains.
    unsafe {
        api::sosend(
            so,
            (&mut ss as *mut sockaddr_storage).cast::<sockaddr>(),
            null_mut(),
            m,
            head,
            0,
            env.td,
        )
    }
}

/// Control mbufs as (m_type, bytes), one per mbuf.
type ControlMbufs = Vec<(u32, Vec<u8>)>;

/// `soreceive` with `controlp`: (error, data, control records).
fn recv_ctl(so: *mut fbsd_sys::socket) -> (c_int, Option<Vec<u8>>, ControlMbufs) {
    let mut u = uio {
        uio_resid: 65535,
        ..Default::default()
    };
    let mut m: *mut mbuf = null_mut();
    let mut ctl: *mut mbuf = null_mut();
    let mut fl = MSG_DONTWAIT;
    // SAFETY: valid out-pointers.
    let e = unsafe { api::soreceive(so, null_mut(), &mut u, &mut m, &mut ctl, &mut fl) };
    let data = (!m.is_null()).then(|| {
        let d = kmbuf::to_vec(m);
        kmbuf::free_chain(m);
        d
    });
    let mut recs = Vec::new();
    let mut c = ctl;
    while !c.is_null() {
        // SAFETY: a live control chain handed to us.
        unsafe {
            let n = kmbuf::fields::len(c) as usize;
            let b = std::slice::from_raw_parts(kmbuf::fields::data(c), n).to_vec();
            recs.push((kmbuf::fields::mtype(c), b));
            c = kmbuf::fields::next(c);
        }
    }
    if !ctl.is_null() {
        kmbuf::free_chain(ctl);
    }
    (e, data, recs)
}

fn wait_readable(so: *mut fbsd_sys::socket) {
    // The datagram is on the Linux socket once the event loop says so.
    assert!(pump_until(WAIT_MS, || {
        // SAFETY: live socket.
        unsafe { (*so).__bindgen_anon_1.__bindgen_anon_1.so_rcv.sb_acc > 0 }
    }));
}

fn udp_peer(ip: &str) -> UdpSocket {
    let u = UdpSocket::bind((ip, 0)).unwrap();
    u.set_read_timeout(Some(std::time::Duration::from_millis(WAIT_MS)))
        .unwrap();
    u
}

/// An unconnected UDP socket bound to the wildcard address: the socket
/// and its port.
fn wildcard(env: &Env, family: c_int) -> (*mut fbsd_sys::socket, u16) {
    let s = env.socreate(family, SOCK_DGRAM, 0).unwrap();
    let a = if family == PF_INET {
        sockaddr_in(ANY4, 0)
    } else {
        assert_eq!(setopt_int(s, IPPROTO_IPV6, IPV6_V6ONLY, 0), 0);
        sockaddr_in6([0; 16], 0)
    };
    assert_eq!(env.bind(s, &a), 0);
    let port = port_of(&sockname(s));
    (s, port)
}

#[test]
fn recvdstaddr_gives_each_datagrams_local_address() {
    let env = setup();
    let (s, port) = wildcard(&env, PF_INET);
    let c = udp_peer("127.0.0.1");
    // Off: no control data even when asked for.
    c.send_to(b"off", ("127.0.0.1", port)).unwrap();
    wait_readable(s);
    let (e, d, recs) = recv_ctl(s);
    assert_eq!((e, d.as_deref()), (0, Some(&b"off"[..])));
    assert!(recs.is_empty(), "{recs:?}");

    assert_eq!(setopt_int(s, IPPROTO_IP, IP_RECVDSTADDR, 1), 0);
    assert_eq!(getopt_int(s, IPPROTO_IP, IP_RECVDSTADDR), (0, 1));
    c.send_to(b"one", ("127.0.0.1", port)).unwrap();
    wait_readable(s);
    let (e, d, recs) = recv_ctl(s);
    assert_eq!((e, d.as_deref()), (0, Some(&b"one"[..])));
    assert_eq!(
        recs,
        vec![(
            MT_CONTROL,
            record(IPPROTO_IP, IP_RECVDSTADDR, &[127, 0, 0, 1])
        )]
    );
    // To an alias of lo0.
    ifaddr::add_alias("127.0.0.2".parse().unwrap()).unwrap();
    c.send_to(b"two", ("127.0.0.2", port)).unwrap();
    wait_readable(s);
    let (_, d, recs) = recv_ctl(s);
    assert_eq!(d.as_deref(), Some(&b"two"[..]));
    assert_eq!(
        recs,
        vec![(MT_CONTROL, record(IPPROTO_IP, IP_RECVDSTADDR, &TWO))]
    );
    // Without controlp, the control data is the kernel's to free.
    c.send_to(b"three", ("127.0.0.2", port)).unwrap();
    wait_readable(s);
    let r = recv(s, 65535, true);
    assert_eq!(r.data.as_deref(), Some(&b"three"[..]));
    // No mbuf for the control data (M_NOWAIT): the datagram comes without.
    fault::configure(FaultPlan::parse("mbuf:site=inet/ctl.rs:always").unwrap());
    c.send_to(b"four", ("127.0.0.2", port)).unwrap();
    wait_readable(s);
    let (_, d, recs) = recv_ctl(s);
    fault::configure(FaultPlan::default());
    assert_eq!(d.as_deref(), Some(&b"four"[..]));
    assert!(recs.is_empty());
    close(s);
    expect_clean();
}

#[test]
fn sendsrcaddr_chooses_the_source() {
    let env = setup();
    let (s, port) = wildcard(&env, PF_INET);
    let c = udp_peer("127.0.0.1");
    let to = match c.local_addr().unwrap() {
        SocketAddr::V4(a) => sockaddr_in(a.ip().octets(), a.port()),
        _ => unreachable!(),
    };
    let src = |a: [u8; 4]| record(IPPROTO_IP, IP_SENDSRCADDR, &a);
    let from = |c: &UdpSocket| {
        let mut b = [0u8; 64];
        let (n, f) = c.recv_from(&mut b).expect("datagram");
        (b[..n].to_vec(), f)
    };
    // 127.0.0.2 is not FreeBSD's until it is configured.
    assert_eq!(send_ctl(&env, s, &to, b"x", &[src(TWO)]), EADDRNOTAVAIL);
    ifaddr::add_alias("127.0.0.2".parse().unwrap()).unwrap();
    assert_eq!(send_ctl(&env, s, &to, b"from two", &[src(TWO)]), 0);
    let (d, f) = from(&c);
    assert_eq!(d, b"from two");
    assert_eq!(f, format!("127.0.0.2:{port}").parse().unwrap());
    assert_eq!(
        send_ctl(&env, s, &to, b"from one", &[src([127, 0, 0, 1])]),
        0
    );
    assert_eq!(from(&c).1, format!("127.0.0.1:{port}").parse().unwrap());
    // Without control data: the source routing chooses.
    assert_eq!(env.send(s, Some(&to), b"plain"), 0);
    assert_eq!(from(&c).1, format!("127.0.0.1:{port}").parse().unwrap());
    // IP_TOS next to it; records of other levels are skipped.
    let tos = record(IPPROTO_IP, IP_TOS, &[0x10]);
    let other = record(IPPROTO_IPV6, IPV6_PKTINFO, &pktinfo6(LOOP6, 0));
    assert_eq!(
        send_ctl(&env, s, &to, b"tos", &[[src(TWO), tos, other].concat()]),
        0
    );
    assert_eq!(from(&c).1, format!("127.0.0.2:{port}").parse().unwrap());

    // udp_send's refusals, each freeing both chains.
    let mut short = src(TWO);
    short[..4].copy_from_slice(&19u32.to_ne_bytes());
    assert_eq!(send_ctl(&env, s, &to, b"x", &[short]), EINVAL);
    let mut zero = src(TWO);
    zero[..4].copy_from_slice(&0u32.to_ne_bytes());
    assert_eq!(send_ctl(&env, s, &to, b"x", &[zero]), EINVAL);
    let mut over = src(TWO);
    over[..4].copy_from_slice(&25u32.to_ne_bytes());
    assert_eq!(send_ctl(&env, s, &to, b"x", &[over]), EINVAL);
    assert_eq!(
        send_ctl(&env, s, &to, b"x", &[src(TWO), src(TWO)]),
        EINVAL,
        "two mbufs"
    );
    assert_eq!(
        send_ctl(&env, s, &to, b"x", &[record(IPPROTO_IP, 99, &[0; 4])]),
        ENOPROTOOPT
    );
    assert_eq!(
        send_ctl(&env, s, &to, b"x", &[src(ANY4)]),
        EINVAL,
        "any with any"
    );
    assert_eq!(
        send_ctl(&env, s, &to, b"x", &[src([127, 0, 0, 3])]),
        EADDRNOTAVAIL
    );
    // IP_BINDANY lifts the locality check.
    assert_eq!(setopt_int(s, IPPROTO_IP, IP_BINDANY, 1), 0);
    assert_eq!(send_ctl(&env, s, &to, b"three", &[src([127, 0, 0, 3])]), 0);
    assert_eq!(from(&c).1, format!("127.0.0.3:{port}").parse().unwrap());
    close(s);

    // A socket bound to one address, or not bound at all: EINVAL.
    let b = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    assert_eq!(send_ctl(&env, b, &to, b"x", &[src(TWO)]), EINVAL, "no port");
    assert_eq!(env.bind(b, &sockaddr_in(LOOP4, 0)), 0);
    assert_eq!(
        send_ctl(&env, b, &to, b"x", &[src(TWO)]),
        EINVAL,
        "bound address"
    );
    close(b);
    assert!(c.set_nonblocking(true).is_ok());
    assert!(from_nothing(&c));
    expect_clean();
}

fn from_nothing(c: &UdpSocket) -> bool {
    let mut b = [0u8; 64];
    c.recv_from(&mut b).is_err()
}

#[test]
fn ipv6_pktinfo_both_ways_and_mapped_ipv4() {
    let env = setup();
    let (s, port) = wildcard(&env, PF_INET6);
    assert_eq!(setopt_int(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1), 0);
    let lo = ifaddr::lo_index();
    let c6 = udp_peer("::1");
    c6.send_to(b"six", ("::1", port)).unwrap();
    wait_readable(s);
    let (_, d, recs) = recv_ctl(s);
    assert_eq!(d.as_deref(), Some(&b"six"[..]));
    assert_eq!(
        recs,
        vec![(
            MT_CONTROL,
            record(IPPROTO_IPV6, IPV6_PKTINFO, &pktinfo6(LOOP6, lo))
        )]
    );
    // The same record sends from ::1 on lo0.
    let to6 = match c6.local_addr().unwrap() {
        SocketAddr::V6(a) => sockaddr_in6(a.ip().octets(), a.port()),
        _ => unreachable!(),
    };
    let pi = |a, i| record(IPPROTO_IPV6, IPV6_PKTINFO, &pktinfo6(a, i));
    assert_eq!(send_ctl(&env, s, &to6, b"back", &[pi(LOOP6, lo)]), 0);
    let mut b = [0u8; 64];
    let (n, f) = c6.recv_from(&mut b).unwrap();
    assert_eq!(&b[..n], b"back");
    assert_eq!(f, format!("[::1]:{port}").parse().unwrap());
    // ip6_setpktopt / in6_selectsrc refusals.
    let mut far = [0u8; 16];
    far[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    assert_eq!(send_ctl(&env, s, &to6, b"x", &[pi(far, 0)]), EADDRNOTAVAIL);
    assert_eq!(
        send_ctl(&env, s, &to6, b"x", &[pi(LOOP6, 0x7fff_fff0)]),
        ENXIO
    );
    assert_eq!(
        send_ctl(&env, s, &to6, b"x", &[pi(mapped(LOOP4), lo)]),
        EADDRNOTAVAIL
    );

    // A dual-stack socket: an IPv4 datagram's address is IPv4-mapped, and
    // it answers from it.
    ifaddr::add_alias("127.0.0.2".parse().unwrap()).unwrap();
    let c4 = udp_peer("127.0.0.1");
    c4.send_to(b"four", ("127.0.0.2", port)).unwrap();
    wait_readable(s);
    let (_, d, recs) = recv_ctl(s);
    assert_eq!(d.as_deref(), Some(&b"four"[..]));
    assert_eq!(
        recs,
        vec![(
            MT_CONTROL,
            record(IPPROTO_IPV6, IPV6_PKTINFO, &pktinfo6(mapped(TWO), lo))
        )]
    );
    let to4 = match c4.local_addr().unwrap() {
        SocketAddr::V4(a) => sockaddr_in6(mapped(a.ip().octets()), a.port()),
        _ => unreachable!(),
    };
    assert_eq!(
        send_ctl(&env, s, &to4, b"mapped", &[pi(mapped(TWO), lo)]),
        0
    );
    let (n, f) = c4.recv_from(&mut b).unwrap();
    assert_eq!(&b[..n], b"mapped");
    assert_eq!(f, format!("127.0.0.2:{port}").parse().unwrap());
    // udp_v4mapped_pktinfo: a native IPv6 address is refused, an address
    // not on the interface too.
    assert_eq!(send_ctl(&env, s, &to4, b"x", &[pi(LOOP6, 0)]), EINVAL);
    assert_eq!(
        send_ctl(&env, s, &to4, b"x", &[pi(mapped([127, 0, 0, 9]), lo)]),
        EADDRNOTAVAIL
    );
    close(s);
    expect_clean();
}

#[test]
fn local_addresses_and_bindany() {
    let env = setup();
    let s = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    // Linux would take any address of 127/8; FreeBSD only its own.
    assert_eq!(env.bind(s, &sockaddr_in(TWO, 0)), EADDRNOTAVAIL);
    assert_eq!(env.bind(s, &sockaddr_in([192, 0, 2, 1], 0)), EADDRNOTAVAIL);
    assert_eq!(setopt_int(s, IPPROTO_IP, IP_BINDANY, 1), 0);
    assert_eq!(getopt_int(s, IPPROTO_IP, IP_BINDANY), (0, 1));
    assert_eq!(env.bind(s, &sockaddr_in([192, 0, 2, 1], 0)), 0);
    close(s);
    let s = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    ifaddr::add_alias("127.0.0.2".parse().unwrap()).unwrap();
    assert_eq!(env.bind(s, &sockaddr_in(TWO, 0)), 0);
    close(s);
    let s6 = env.socreate(PF_INET6, SOCK_DGRAM, 0).unwrap();
    assert_eq!(
        env.bind(s6, &sockaddr_in6(mapped([127, 0, 0, 3]), 0)),
        EADDRNOTAVAIL
    );
    // IPv6 options take exactly an int.
    assert_eq!(
        setopt_bytes(s6, IPPROTO_IPV6, IPV6_BINDANY, &[1, 0, 0, 0, 0, 0, 0, 0]),
        EINVAL
    );
    assert_eq!(setopt_int(s6, IPPROTO_IPV6, IPV6_BINDANY, 1), 0);
    assert_eq!(getopt_int(s6, IPPROTO_IPV6, IPV6_BINDANY), (0, 1));
    let mut far = [0u8; 16];
    far[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    far[15] = 7;
    assert_eq!(env.bind(s6, &sockaddr_in6(far, 0)), 0);
    close(s6);
    expect_clean();
}

/// `ip_ctloutput` / `ip6_ctloutput` check `PRIV_NETINET_BINDANY` of the
/// thread that sets the option; a kernel caller (`sopt_td` NULL, as
/// ng_ksocket) is not checked.
#[test]
fn bindany_privilege() {
    let env = setup();
    let user = kthread::new_thread(kthread::Cred::User(1001));
    // SAFETY: a fresh harness thread.
    let ucred = unsafe { (*user).td_ucred };
    for (dom, level, name) in [
        (PF_INET, IPPROTO_IP, IP_BINDANY),
        (PF_INET6, IPPROTO_IPV6, IPV6_BINDANY),
    ] {
        let s = env.socreate_cred(dom, SOCK_DGRAM, 0, ucred).unwrap();
        let mut v = 1i32.to_ne_bytes();
        let mut so = sockopt {
            sopt_dir: fbsd_sys::SOPT_SET,
            sopt_level: level,
            sopt_name: name,
            sopt_val: v.as_mut_ptr().cast(),
            sopt_valsize: 4,
            sopt_td: user,
            ..Default::default()
        };
        // SAFETY: valid socket and sockopt.
        assert_eq!(unsafe { api::sosetopt(s, &mut so) }, EPERM);
        assert_eq!(getopt_int(s, level, name), (0, 0));
        // The kernel caller's form: allowed, whoever made the socket.
        assert_eq!(setopt_int(s, level, name, 1), 0);
        assert_eq!(getopt_int(s, level, name), (0, 1));
        close(s);
    }
    expect_clean();
}
