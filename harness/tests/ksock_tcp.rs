//! ng_ksocket over TCP, seen from user space (docs/ksocket.md §4.4, §5.3, §6.2):
//! ACCEPT responses and clone nodes, data that reaches a clone before its
//! hook, stream re-chunking, the single zero-length EOF packet.

mod ksock_util;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};

use ksock_util::*;
use ngharness::kern::fault::{self, FaultPlan};

const LOOP: [u8; 4] = [127, 0, 0, 1];

/// A listening TCP ksocket hooked to this node by hook `l`: (ID, port).
fn listener(ng: &mut Ng) -> (u32, u16) {
    let id = ng.ksocket("l", "inet/stream/tcp");
    let p = idpath(id);
    let one = 1i32.to_ne_bytes();
    assert_eq!(
        ng.ks(&p, ks::SETOPT, &sockopt(SOL_SOCKET, SO_REUSEADDR, &one)),
        Ok(())
    );
    assert_eq!(ng.ks(&p, ks::BIND, &sin(LOOP, 0)), Ok(()));
    assert_eq!(ng.ks(&p, ks::LISTEN, &5i32.to_ne_bytes()), Ok(()));
    let name = ng.ks_reply(&p, ks::GETNAME, &[]);
    (id, sin_port(&name.data))
}

/// Checks an ACCEPT response for `token` from a client at `client`; returns
/// the clone's node ID.
#[track_caller]
fn check_accept(rep: &Reply, token: u32, client: std::net::SocketAddr) -> u32 {
    let m = &rep.msg;
    assert_eq!((m.cookie, m.cmd), (KS_COOKIE, ks::ACCEPT), "{rep:?}");
    assert_ne!(m.flags & NGF_RESP, 0);
    assert_eq!(m.token, token);
    assert_eq!(m.cmdstr, "NGM_KSOCKET_ACCEPT");
    // struct ng_ksocket_accept: nodeid, then the peer's sockaddr_in.
    assert_eq!(m.arglen, 20);
    let clone = u32::from_ne_bytes(m.data[..4].try_into().unwrap());
    assert_eq!(&m.data[4..], &sin_of(client)[..]);
    // Sent from the clone itself.
    assert_eq!(rep.from, idpath(clone));
    clone
}

/// K29 in binary: ACCEPT waits; each connection creates a clone that sends
/// the response with the requester's token (every later connection too:
/// "one ACCEPT, many responses"). Data that reached a clone before it had a
/// hook is delivered once a hook is connected (with any name); the peer's
/// close gives one zero-length packet; removing the hook kills the clone.
#[test]
fn accept_clone_drains_early_data_then_eof() {
    isolated("accept_clone_drains_early_data_then_eof", || {
        let mut ng = Ng::open();
        let (lid, port) = listener(&mut ng);
        let (t, r) = ng.send(&idpath(lid), KS_COOKIE, ks::ACCEPT, &[]);
        assert_eq!(r, Ok(()));
        assert!(!ng.msg_pending(), "nothing queued yet: no response");
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"early data").unwrap();
        let rep = ng.recv(2000).expect("ACCEPT response");
        let clone = check_accept(&rep, t, c.local_addr().unwrap());
        // The embryo: a ksocket with no hook; its data waits in the socket.
        settle();
        let ks = ng.ksockets();
        assert_eq!(ks.len(), 2, "{ks:?}");
        assert!(ks.iter().any(|n| n.id == clone && n.hooks == 0), "{ks:?}");
        assert!(ng.recv_data(50).is_none());
        // A second connection: another clone, same (old) token.
        let mut c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let rep2 = ng.recv(2000).expect("second ACCEPT response");
        let clone2 = check_accept(&rep2, t, c2.local_addr().unwrap());
        assert_ne!(clone2, clone);
        let st = ng.stats(&idpath(lid));
        assert_eq!(st[st::ACCEPTS], 2);

        // Any hook name; the early data comes out first.
        ng.connect(".", &idpath(clone), "c", "whatever/name/at-all")
            .expect("connect to the clone");
        let (hook, data) = ng
            .recv_data(2000)
            .expect("data that arrived before the hook");
        assert_eq!((hook.as_str(), data.as_slice()), ("c", &b"early data"[..]));
        // Both ways now.
        c.write_all(b"more").unwrap();
        let (_, data) = ng.recv_data(2000).expect("more data");
        assert_eq!(data, b"more");
        ng.send_data("c", b"reply").unwrap();
        assert_eq!(tcp_read(&mut c, 5, 2000), b"reply");
        // EOF: exactly one zero-length packet.
        c.shutdown(Shutdown::Write).unwrap();
        let (hook, data) = ng.recv_data(2000).expect("EOF packet");
        assert_eq!((hook.as_str(), data.len()), ("c", 0));
        c.write_all(b"").unwrap();
        assert!(ng.recv_data(100).is_none(), "a single EOF packet");
        let cst = ng.stats(&idpath(clone));
        assert_eq!(cst[st::EOFS], 1);
        assert_eq!(cst[st::RX_PACKETS], 2);
        // The clone still sends after the peer's half-close.
        ng.send_data("c", b"bye").unwrap();
        assert_eq!(tcp_read(&mut c, 3, 2000), b"bye");
        // Removing the hook destroys the clone (its peer sees EOF).
        ng.rmhook(".", "c").unwrap();
        assert!(tcp_eof(&mut c, 2000));
        let ids: Vec<u32> = ng.ksockets().iter().map(|n| n.id).collect();
        assert!(!ids.contains(&clone), "{ids:?}");
        assert!(ids.contains(&clone2) && ids.contains(&lid), "{ids:?}");
        // Shutting the listener down takes its embryo with it.
        ng.shutdown(&idpath(lid)).unwrap();
        assert!(tcp_eof(&mut c2, 2000));
        assert!(ng.ksockets().is_empty());
        ng.drain();
    });
}

/// A listener whose listen upcall cannot accept (its function item cannot
/// be allocated), so that a connection stays on the listen queue: returns
/// (listener ID, client).
fn listener_with_queued_connection(ng: &mut Ng) -> (u32, u16, TcpStream) {
    let (lid, port) = listener(ng);
    fault::configure(FaultPlan::parse("ng_item:always").unwrap());
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    settle();
    let injected = fault::injected();
    fault::clear();
    assert!(
        injected >= 1,
        "the listen upcall's function item was refused"
    );
    assert_eq!(ng.ksockets().len(), 1, "no clone yet");
    (lid, port, c)
}

/// FreeBSD records the requester of an ACCEPT after accepting: the
/// response for a connection already queued when ACCEPT arrives goes to the
/// previous requester (none here: it is lost), as by default here. The
/// clone exists all the same, and the requester gets later responses.
#[test]
fn accept_response_for_an_already_queued_connection_as_freebsd() {
    isolated(
        "accept_response_for_an_already_queued_connection_as_freebsd",
        || {
            let mut ng = Ng::open();
            let (lid, port, c) = listener_with_queued_connection(&mut ng);
            let (_, r) = ng.send(&idpath(lid), KS_COOKIE, ks::ACCEPT, &[]);
            assert_eq!(r, Ok(()));
            settle();
            assert!(ng.recv(200).is_none(), "FreeBSD's response goes elsewhere");
            assert_eq!(ng.ksockets().len(), 2, "the clone was made");
            // The request is satisfied: a new ACCEPT may be sent (no EALREADY).
            let (t2, r) = ng.send(&idpath(lid), KS_COOKIE, ks::ACCEPT, &[]);
            assert_eq!(r, Ok(()));
            let c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let rep = ng.recv(2000).expect("ACCEPT response");
            check_accept(&rep, t2, c2.local_addr().unwrap());
            drop((c, c2));
        },
    );
}

/// Improvement 4, opt-in (net.graph.ksocket.accept_to_requester=1): a
/// connection already queued when ACCEPT arrives is reported to that
/// requester.
#[test]
fn accept_response_for_an_already_queued_connection_to_the_requester() {
    isolated(
        "accept_response_for_an_already_queued_connection_to_the_requester",
        || {
            let knob = "net.graph.ksocket.accept_to_requester";
            assert_eq!(
                ngharness::kern::sysctl::get(knob),
                Some(0),
                "off by default"
            );
            assert!(ngharness::kern::sysctl::set(knob, 1));
            let mut ng = Ng::open();
            let (lid, port, c) = listener_with_queued_connection(&mut ng);
            let (t, r) = ng.send(&idpath(lid), KS_COOKIE, ks::ACCEPT, &[]);
            assert_eq!(r, Ok(()));
            let rep = ng
                .recv(2000)
                .expect("ACCEPT response for the queued connection");
            let clone = check_accept(&rep, t, c.local_addr().unwrap());
            assert!(ng.ksockets().iter().any(|n| n.id == clone && n.hooks == 0));
            // The request is satisfied: a new ACCEPT may be sent (no EALREADY).
            let (t2, r) = ng.send(&idpath(lid), KS_COOKIE, ks::ACCEPT, &[]);
            assert_eq!(r, Ok(()));
            let c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let rep = ng.recv(2000).expect("ACCEPT response");
            check_accept(&rep, t2, c2.local_addr().unwrap());
            drop((c, c2));
        },
    );
}

/// K33: an interactive ngctl whose data hook is connected to an accepted
/// clone; when the TCP peer closes, the clone forwards one zero-length
/// packet and ngctl exits (status 71) with `EOF from hook "c"?`. Through
/// the ngctl emulation over our ng_socket.ko, as scenarios run it.
#[test]
fn k33_ngctl_data_hook_on_a_clone_sees_eof() {
    isolated("k33_ngctl_data_hook_on_a_clone_sees_eof", || {
        use ngharness::scenario::backend::DomainApi;
        use ngharness::scenario::ngctl::{Ended, Session};
        use ngharness::scenario::port::SocketPort;
        use std::path::Path;

        let mut ng = Ng::open();
        let (lid, port) = listener(&mut ng);
        let (t, r) = ng.send(&idpath(lid), KS_COOKIE, ks::ACCEPT, &[]);
        assert_eq!(r, Ok(()));
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let rep = ng.recv(2000).expect("ACCEPT response");
        let clone = check_accept(&rep, t, c.local_addr().unwrap());

        let mut p = SocketPort::new(DomainApi);
        let mut out = Vec::new();
        let mut s = Session::start(&mut p, 33, Path::new("."), &mut out);
        let cmd = format!("connect . {} c x", idpath(clone));
        let words: Vec<String> = cmd.split(' ').map(str::to_string).collect();
        assert_eq!(s.command(&mut p, &words, &mut out), 0, "{out:?}");
        c.write_all(b"hi").unwrap();
        let got = pump_until(2000, || {
            s.monitor(&mut p, &mut out);
            out.iter().any(|l| l.starts_with("0000:  68 69 "))
        });
        assert!(got, "the clone's data reaches the ngctl hook: {out:?}");
        assert_eq!(
            out.iter()
                .filter(|l| l.as_str() == "Rec'd data packet on hook \"c\":")
                .count(),
            1
        );
        drop(c);
        let ended = pump_until(2000, || {
            s.monitor(&mut p, &mut out);
            !s.alive()
        });
        assert!(ended, "ngctl still running: {out:?}");
        assert_eq!(
            out.last().map(String::as_str),
            Some("ngctl: EOF from hook \"c\"?")
        );
        assert_eq!(s.ended, Ended::Exit(71));
        // ngctl's node is gone with its sockets, and the clone with its hook.
        settle();
        let ids: Vec<u32> = ng.ksockets().iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![lid]);
        ng.drain();
    });
}

/// Stream data has no boundaries: what the peer wrote in several pieces
/// before the node read comes out as one packet, a write larger than 64 KiB
/// as several of at most 65535 bytes; all bytes arrive in order, then one
/// zero-length EOF packet.
#[test]
fn stream_rechunking_and_single_eof() {
    isolated("stream_rechunking_and_single_eof", || {
        let srv = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = srv.local_addr().unwrap().port();
        let mut ng = Ng::open();
        // Room for whole 64 KiB packets on the data socket (K49).
        ngharness::kern::domain::setsockopt_int(ng.ds, SOL_SOCKET, SO_RCVBUF, 1 << 20)
            .expect("SO_RCVBUF on the data socket");
        ng.ksocket("k", "inet/stream/tcp");
        assert_eq!(
            ng.ks(".:k", ks::CONNECT, &sin(LOOP, port)),
            Err(EINPROGRESS)
        );
        let rep = ng.recv(2000).expect("CONNECT response");
        assert_eq!(rep.msg.int(), 0);
        let (mut p, _) = srv.accept().unwrap();
        // Three writes before the node gets to read: one packet.
        p.write_all(b"abc").unwrap();
        p.write_all(b"defg").unwrap();
        p.write_all(b"hi").unwrap();
        let (_, d) = ng.recv_data(2000).expect("stream data");
        let mut got = d;
        while got.len() < 9 {
            got.extend(ng.recv_data(2000).expect("rest of the stream data").1);
        }
        assert_eq!(got, b"abcdefghi");
        // One large write: packets of at most 65535 bytes, in order.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        tcp_write(&mut p, &big);
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while got.len() < big.len() {
            let (_, d) = ng.recv_data(3000).expect("big stream data");
            assert!(!d.is_empty(), "no EOF in the middle");
            assert!(d.len() <= 65535, "packet of {} bytes", d.len());
            sizes.push(d.len());
            got.extend(d);
        }
        assert_eq!(got, big);
        assert!(sizes.len() >= 4, "{sizes:?}");
        // The peer closes: one zero-length packet, once.
        drop(p);
        let (_, d) = ng.recv_data(2000).expect("EOF packet");
        assert!(d.is_empty());
        assert!(ng.recv_data(200).is_none(), "a single EOF packet");
        let s = ng.stats(".:k");
        assert_eq!(s[st::EOFS], 1);
        assert_eq!(s[st::RX_BYTES], 9 + big.len() as u64);
        // Writing after EOF still works while the connection is half open?
        // The peer has gone completely: the write fails inside the node
        // (counted, not reported to the sender).
        ng.send_data("k", b"late").unwrap();
        settle();
    });
}

/// Two clones joined to each other make a TCP relay: every clone accepts
/// any hook name, and data each peer wrote before the join is delivered.
#[test]
fn clones_joined_into_a_relay() {
    isolated("clones_joined_into_a_relay", || {
        let mut ng = Ng::open();
        let (lid, port) = listener(&mut ng);
        let (t, _) = ng.send(&idpath(lid), KS_COOKIE, ks::ACCEPT, &[]);
        let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let ra = ng.recv(2000).expect("first ACCEPT response");
        let ca = check_accept(&ra, t, a.local_addr().unwrap());
        let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let rb = ng.recv(2000).expect("second ACCEPT response");
        let cb = check_accept(&rb, t, b.local_addr().unwrap());
        a.write_all(b"from a").unwrap();
        b.write_all(b"from b").unwrap();
        settle();
        ng.connect(&idpath(ca), &idpath(cb), "x", "y")
            .expect("join the clones");
        assert_eq!(tcp_read(&mut b, 6, 2000), b"from a");
        assert_eq!(tcp_read(&mut a, 6, 2000), b"from b");
        a.write_all(b"ping").unwrap();
        assert_eq!(tcp_read(&mut b, 4, 2000), b"ping");
        // A third hook on a clone is refused.
        assert_eq!(ng.connect(".", &idpath(ca), "z", "w"), Err(EISCONN));
        // One side closes: its clone sends EOF (a zero-length packet) to the
        // other clone, which forwards nothing; the relay stays up the
        // other way until a hook goes.
        drop(a);
        settle();
        b.write_all(b"x").unwrap();
        settle();
        ng.shutdown(&idpath(ca)).unwrap();
        assert!(tcp_eof(&mut b, 2000), "the relay is gone");
        assert_eq!(ng.ksockets().len(), 1);
    });
}
