//! ng_ksocket against hostile input, and the known bug classes of FreeBSD's
//! own node shown harmless here:
//!
//! * socket addresses whose `sa_len` claims more than the message holds,
//!   converted to ASCII (FreeBSD prints the memory after the message);
//! * socket options shorter than their level and name (FreeBSD computes a
//!   negative value length);
//! * `local` addresses with `sun_len` 0 or 1 (FreeBSD copies `sun_len - 2`
//!   bytes into a stack buffer) and paths without a NUL;
//! * a ksocket whose packets are sent to its own address.
//!
//! Every conversion runs through netgraph's BINARY2ASCII / ASCII2BINARY on
//! a ksocket node, whose reads the harness checks against the message; the
//! test process ends with the harness's checks (no leak, no violation, no
//! lock held, modules unload).

mod ksock_util;

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use ksock_util::*;
use ngharness::kern::take_violations;

const LOOP: [u8; 4] = [127, 0, 0, 1];
const AF_LOCAL: u8 = 1;
const AF_INET6: u8 = fbsd_sys::AF_INET6 as u8;

/// BINARY2ASCII at `path` of a ksocket message `cmd` (a reply when `resp`)
/// whose header says `arglen` and whose argument is `args`: the text.
fn b2a(ng: &mut Ng, path: &str, cmd: u32, resp: bool, args: &[u8]) -> Result<String, i32> {
    let flags = if resp { NGF_RESP } else { 0 };
    let inner = encode_raw(KS_COOKIE, cmd, flags, 7, args.len() as u32, args);
    let (t, r) = ng.send(path, GEN_COOKIE, fbsd_sys::NGM_BINARY2ASCII, &inner);
    r?;
    let rep = ng.recv_token(t, 2000).expect("BINARY2ASCII reply");
    let ascii = Msg::decode(&rep.msg.data);
    assert_eq!(ascii.data.last(), Some(&0), "{ascii:?}");
    Ok(cstr(&ascii.data))
}

/// ASCII2BINARY at `path` of `cmd text`: the binary argument.
fn a2b(ng: &mut Ng, path: &str, cmd: &str, resp: bool, text: &str) -> Result<Vec<u8>, i32> {
    let flags = if resp { NGF_RESP } else { 0 };
    let mut args = text.as_bytes().to_vec();
    args.push(0);
    let mut inner = encode_raw(KS_COOKIE, 0, flags, 7, args.len() as u32, &args);
    inner[24..56].copy_from_slice(&cfield(cmd, 32));
    let (t, r) = ng.send(path, GEN_COOKIE, fbsd_sys::NGM_ASCII2BINARY, &inner);
    r?;
    let rep = ng.recv_token(t, 2000).expect("ASCII2BINARY reply");
    let bin = Msg::decode(&rep.msg.data);
    assert_eq!(bin.arglen as usize, bin.data.len());
    Ok(bin.data)
}

#[track_caller]
fn no_violation() {
    let v = take_violations();
    assert!(v.is_empty(), "violations: {v:#?}");
}

/// A UDP ksocket `k` hooked to the test's socket node; its path.
fn ksocket(ng: &mut Ng) -> String {
    let id = ng.ksocket("k", "inet/dgram/udp");
    idpath(id)
}

/// A generic socket address: `sa_len`, family, then `data`.
fn generic(sa_len: u8, family: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![sa_len, family];
    v.extend_from_slice(data);
    v
}

/// A socket address in the generic form whose `sa_len` exceeds the message
/// prints only the bytes the message holds, in every message that carries
/// one: BIND and CONNECT requests, GETNAME / GETPEERNAME replies, ACCEPT
/// replies. (FreeBSD prints up to 253 bytes of whatever follows.)
#[test]
fn sockaddr_length_is_capped_at_the_message() {
    isolated("sockaddr_length_is_capped_at_the_message", || {
        let mut ng = Ng::open();
        let k = ksocket(&mut ng);
        let short = generic(255, 99, &[1, 2, 3, 4]);
        let want = "{ len=255 family=99 data=[ 0x1 0x2 0x3 0x4 ] }";
        for (cmd, resp) in [
            (ks::BIND, false),
            (ks::CONNECT, false),
            (ks::GETNAME, true),
            (ks::GETPEERNAME, true),
        ] {
            assert_eq!(
                b2a(&mut ng, &k, cmd, resp, &short).as_deref(),
                Ok(want),
                "cmd {cmd}"
            );
            no_violation();
        }
        // Nothing but len and family.
        assert_eq!(
            b2a(&mut ng, &k, ks::BIND, false, &generic(200, 99, &[])).as_deref(),
            Ok("{ len=200 family=99 }")
        );
        no_violation();
        // An inet6 address whose sa_len is not 28 is generic too.
        let six = generic(255, AF_INET6, &[0; 26]);
        let text = b2a(&mut ng, &k, ks::GETNAME, true, &six).unwrap();
        assert!(text.starts_with("{ len=255 family=28"), "{text}");
        no_violation();
        // ACCEPT reply: node ID, then the address.
        let mut acc = 0x1234u32.to_ne_bytes().to_vec();
        acc.extend_from_slice(&generic(250, 99, &[9, 8]));
        assert_eq!(
            b2a(&mut ng, &k, ks::ACCEPT, true, &acc).as_deref(),
            Ok("{ nodeid=0x1234 addr={ len=250 family=99 data=[ 0x9 0x8 ] } }")
        );
        no_violation();
        // A truthful sa_len prints every byte, as FreeBSD does.
        let full = generic(6, 99, &[1, 2, 3, 4]);
        assert_eq!(
            b2a(&mut ng, &k, ks::BIND, false, &full).as_deref(),
            Ok("{ len=6 family=99 data=[ 0x1 0x2 0x3 0x4 ] }")
        );
        // Text to binary is unchanged: a len beyond the given data is
        // filled with zeros, as in FreeBSD.
        let b = a2b(&mut ng, &k, "bind", false, "{ len=200 family=99 }").unwrap();
        assert_eq!(b.len(), 200);
        assert_eq!(&b[..2], &[200, 99]);
        assert!(b[2..].iter().all(|&x| x == 0));
        no_violation();
        ng.shutdown(&k).unwrap();
    });
}

/// A socket option message shorter than its level and name (8 bytes) is
/// refused with EINVAL before the parse engine sees it, in both directions.
/// (FreeBSD computes its value length as `arglen - 8`, negative here.)
#[test]
fn sockopt_shorter_than_its_header_is_refused() {
    isolated("sockopt_shorter_than_its_header_is_refused", || {
        let mut ng = Ng::open();
        let k = ksocket(&mut ng);
        for n in 0..8 {
            let arg = vec![0x11u8; n];
            for (cmd, resp) in [(ks::SETOPT, false), (ks::GETOPT, false), (ks::GETOPT, true)] {
                assert_eq!(
                    b2a(&mut ng, &k, cmd, resp, &arg),
                    Err(EINVAL),
                    "{n} bytes, cmd {cmd}"
                );
                no_violation();
            }
            // The messages themselves.
            assert_eq!(ng.ks(&k, ks::SETOPT, &arg), Err(EINVAL));
            assert_eq!(ng.ks(&k, ks::GETOPT, &arg), Err(EINVAL));
        }
        // Texts shorter than 7 characters: arglen below 8.
        for text in ["", "{}", "{ }", "x", "{    }"] {
            assert_eq!(
                a2b(&mut ng, &k, "setopt", false, text),
                Err(EINVAL),
                "{text:?}"
            );
            assert_eq!(
                a2b(&mut ng, &k, "getopt", false, text),
                Err(EINVAL),
                "{text:?}"
            );
            no_violation();
        }
        // Exactly level and name: an empty value, as in FreeBSD.
        let head = sockopt(0xffff, 4, &[]);
        assert_eq!(
            b2a(&mut ng, &k, ks::GETOPT, false, &head).as_deref(),
            Ok("{ level=65535 name=4 }")
        );
        assert_eq!(
            a2b(&mut ng, &k, "setopt", false, "{ level=1 }").unwrap(),
            sockopt(1, 0, &[0, 0, 0, 0])
        );
        no_violation();
        ng.shutdown(&k).unwrap();
    });
}

/// Messages shorter than their fixed-size fields (LISTEN's backlog, the
/// CONNECT result, the ACCEPT reply's node ID and address header, the
/// statistics) are refused with EINVAL instead of printed from whatever
/// follows them; whole ones print as before.
#[test]
fn messages_shorter_than_their_fields_are_refused() {
    isolated("messages_shorter_than_their_fields_are_refused", || {
        let mut ng = Ng::open();
        let k = ksocket(&mut ng);
        let stats_len = 15 * 8;
        for (cmd, resp, whole) in [
            (ks::LISTEN, false, 4),
            (ks::CONNECT, true, 4),
            (ks::ACCEPT, true, 6),
            (ks::GETSTATS, true, stats_len),
            (ks::GETCLRSTATS, true, stats_len),
            (ks::BIND, false, 2),
            (ks::GETNAME, true, 2),
        ] {
            for n in 0..whole {
                assert_eq!(
                    b2a(&mut ng, &k, cmd, resp, &vec![0x5a; n]),
                    Err(EINVAL),
                    "cmd {cmd}, {n} bytes"
                );
                no_violation();
            }
            assert!(
                b2a(&mut ng, &k, cmd, resp, &vec![0; whole]).is_ok(),
                "cmd {cmd}"
            );
            no_violation();
        }
        assert_eq!(
            b2a(&mut ng, &k, ks::LISTEN, false, &7i32.to_ne_bytes()).as_deref(),
            Ok("7")
        );
        assert_eq!(
            b2a(&mut ng, &k, ks::CONNECT, true, &(-1i32).to_ne_bytes()).as_deref(),
            Ok("-1")
        );
        assert_eq!(
            b2a(&mut ng, &k, ks::ACCEPT, true, &[1, 0, 0, 0, 2, 99]).as_deref(),
            Ok("{ nodeid=0x1 addr={ len=2 family=99 } }")
        );
        let mut st = vec![0u8; stats_len];
        st[0] = 3;
        assert_eq!(
            b2a(&mut ng, &k, ks::GETSTATS, true, &st).as_deref(),
            Ok("{ rx_packets=3 }")
        );
        // Text to binary is unchanged (netgraph's signed int32).
        let a = |ng: &mut Ng, cmd: &str, resp: bool, text: &str| a2b(ng, &k, cmd, resp, text);
        assert_eq!(
            a(&mut ng, "listen", false, "5").unwrap(),
            5i32.to_ne_bytes()
        );
        assert_eq!(
            a(&mut ng, "listen", false, "-5").unwrap(),
            (-5i32).to_ne_bytes()
        );
        let max = a(&mut ng, "listen", false, "0x7fffffff").unwrap();
        assert_eq!(max, i32::MAX.to_ne_bytes());
        assert_eq!(a(&mut ng, "listen", false, "x"), Err(EINVAL));
        assert_eq!(
            a(&mut ng, "connect", true, "-1").unwrap(),
            (-1i32).to_ne_bytes()
        );
        let text = b2a(&mut ng, &k, ks::LISTEN, false, &(-5i32).to_ne_bytes());
        assert_eq!(text.as_deref(), Ok("-5"));
        no_violation();
        ng.shutdown(&k).unwrap();
    });
}

/// `local` addresses: `sun_len` 0 or 1 (shorter than the header FreeBSD
/// subtracts, a stack overwrite there) print in the generic form; a path
/// without a NUL prints exactly its `sun_len - 2` bytes; a `sun_len` beyond
/// the message fails with EINVAL. Nothing outside the message is read.
#[test]
fn local_addresses_with_short_lengths_and_no_nul() {
    isolated("local_addresses_with_short_lengths_and_no_nul", || {
        let mut ng = Ng::open();
        let k = ksocket(&mut ng);
        for (cmd, resp) in [(ks::BIND, false), (ks::GETNAME, true)] {
            let t = |ng: &mut Ng, a: &[u8]| b2a(ng, &k, cmd, resp, a);
            assert_eq!(t(&mut ng, &[0, AF_LOCAL]).as_deref(), Ok("{ family=1 }"));
            assert_eq!(
                t(&mut ng, &[1, AF_LOCAL]).as_deref(),
                Ok("{ len=1 family=1 }")
            );
            assert_eq!(
                t(&mut ng, &[1, AF_LOCAL, b'a', b'b']).as_deref(),
                Ok("{ len=1 family=1 }")
            );
            assert_eq!(t(&mut ng, &[2, AF_LOCAL]).as_deref(), Ok("local/\"\""));
            no_violation();
            // Paths without a NUL, up to the longest sun_path (104 bytes).
            assert_eq!(
                t(&mut ng, &[6, AF_LOCAL, b'a', b'b', b'c', b'd']).as_deref(),
                Ok("local/\"abcd\"")
            );
            let mut long = vec![106u8, AF_LOCAL];
            long.resize(106, b'x');
            assert_eq!(
                t(&mut ng, &long),
                Ok(format!("local/\"{}\"", "x".repeat(104)))
            );
            let mut longest = vec![255u8, AF_LOCAL];
            longest.resize(255, b'y');
            assert_eq!(
                t(&mut ng, &longest),
                Ok(format!("local/\"{}\"", "y".repeat(253)))
            );
            // Bytes after sun_len are not part of the path; NULs inside it are.
            assert_eq!(
                t(&mut ng, &[4, AF_LOCAL, b'p', 0, b'q']).as_deref(),
                Ok("local/\"p\\x00\"")
            );
            no_violation();
            // sun_len beyond the message: refused, nothing read.
            assert_eq!(t(&mut ng, &[200, AF_LOCAL, b'z']), Err(EINVAL));
            assert_eq!(t(&mut ng, &[255, AF_LOCAL]), Err(EINVAL));
            no_violation();
        }
        ng.shutdown(&k).unwrap();
    });
}

/// A UDP ksocket connected to its own address: what it sends comes back to
/// it. Sending never re-enters the node (the datagram arrives through a
/// later upcall), so a packet written into the hook comes back out of it
/// once, however many laps are driven.
#[test]
fn ksocket_sending_to_itself_one_lap_at_a_time() {
    isolated("ksocket_sending_to_itself_one_lap_at_a_time", || {
        let mut ng = Ng::open();
        let k = ksocket(&mut ng);
        assert_eq!(ng.ks(&k, ks::BIND, &sin(LOOP, 0)), Ok(()));
        let me = ng.ks_reply(&k, ks::GETNAME, &[]).data;
        assert_eq!(ng.ks(&k, ks::CONNECT, &me), Ok(()));
        let peer = ng.ks_reply(&k, ks::GETPEERNAME, &[]).data;
        assert_eq!(peer, me);
        let mut pkt = b"lap".to_vec();
        for lap in 0..50u32 {
            ng.send_data("k", &pkt).unwrap();
            let (hook, back) = ng.recv_data(2000).unwrap_or_else(|| panic!("lap {lap}"));
            assert_eq!((hook.as_str(), back.as_slice()), ("k", pkt.as_slice()));
            no_violation();
            pkt.extend_from_slice(&lap.to_ne_bytes());
        }
        // A burst: every packet comes back once, in order.
        for i in 0..20u8 {
            ng.send_data("k", &[i; 3]).unwrap();
        }
        for i in 0..20u8 {
            assert_eq!(ng.recv_data(2000), Some(("k".into(), vec![i; 3])));
        }
        assert_eq!(ng.recv_data(50), None);
        let s = ng.stats(&k);
        assert_eq!((s[st::TX_PACKETS], s[st::RX_PACKETS]), (70, 70));
        assert_eq!(s[st::TX_ERRORS] + s[st::RX_ERRORS], 0);
        no_violation();
        ng.shutdown(&k).unwrap();
    });
}

/// The same ksocket with an echo node on its hook: a datagram that reaches
/// it is sent back to itself forever. Each lap is a new upcall and a new
/// queued run of the node, never a nested call: the loop runs for as long
/// as it is allowed to, with no violation (no sleep with a lock held, no
/// lock order reversal), until the node is shut down.
#[test]
fn ksocket_routing_back_into_itself_forever() {
    isolated("ksocket_routing_back_into_itself_forever", || {
        let mut ng = Ng::open();
        // The injector holds the port first; the ksocket shares it and, being
        // connected to exactly that address, gets every datagram to it.
        let inj = reuse_udp_socket();
        let port = inj.local_addr().unwrap().port();
        ng.mkpeer(".", "echo", "e", "x").unwrap();
        ng.name(".:e", "ec").unwrap();
        ng.mkpeer("ec:", "ksocket", "k", "inet/dgram/udp").unwrap();
        let id = ng.nodeid("ec:k").unwrap();
        let k = idpath(id);
        ng.rmhook(".", "e").unwrap();
        let one = 1i32.to_ne_bytes();
        assert_eq!(
            ng.ks(&k, ks::SETOPT, &sockopt(SOL_SOCKET, SO_REUSEADDR, &one)),
            Ok(())
        );
        assert_eq!(ng.ks(&k, ks::BIND, &sin(LOOP, port)), Ok(()));
        assert_eq!(ng.ks(&k, ks::CONNECT, &sin(LOOP, port)), Ok(()));
        inj.send_to(b"around and around", ("127.0.0.1", port))
            .unwrap();
        let mut laps = 0;
        let looped = pump_until(10_000, || {
            laps = ng.stats(&k)[st::RX_PACKETS];
            laps >= 200
        });
        assert!(looped, "only {laps} laps");
        let s = ng.stats(&k);
        assert!(s[st::TX_PACKETS] + 1 >= s[st::RX_PACKETS], "{s:?}");
        assert_eq!(s[st::TX_ERRORS], 0, "{s:?}");
        no_violation();
        // The injector got nothing: the ksocket took every datagram.
        inj.set_nonblocking(true).unwrap();
        assert!(inj.recv_from(&mut [0u8; 64]).is_err());
        ng.shutdown(&k).unwrap();
        // The echo node went with its last hook.
        assert_eq!(ng.shutdown("ec:"), Err(ENOENT));
        assert!(ng.ksockets().is_empty());
    });
}

/// A UDP socket on 127.0.0.1 (ephemeral port) with SO_REUSEADDR set
/// before it is bound.
fn reuse_udp_socket() -> UdpSocket {
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // descriptor is handed to UdpSocket, which closes it.
    unsafe {
        use std::os::fd::FromRawFd;
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0);
        let s = UdpSocket::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let r = libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(r, 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes(LOOP);
        let r = libc::bind(
            s.as_raw_fd(),
            (&a as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0);
        s
    }
}
