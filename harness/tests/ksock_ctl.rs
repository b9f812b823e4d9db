//! ng_ksocket control messages in binary form (docs/ksocket.md §2, §5, §11 K35,
//! K37, K43): built as `struct ng_mesg` by the test and sent on a
//! `PF_NETGRAPH` control socket through `ng_socket.ko`, as libnetgraph
//! programs (and FreeBSD's tests/sys/netgraph/ksocket.c) do; plus every
//! control message with a short, oversized or inconsistent argument.

mod ksock_util;

use std::net::TcpListener;

use ksock_util::*;
use ngharness::kern::{malloc, mbuf as kmbuf};

const LOOP: [u8; 4] = [127, 0, 0, 1];

/// K35: binary CONNECT of a TCP ksocket to a listening port. sendto() fails
/// with EINPROGRESS; the asynchronous response comes from the ksocket with
/// the request's token.
#[test]
fn k35_binary_connect_async_response() {
    isolated("k35_binary_connect_async_response", || {
        let srv = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = srv.local_addr().unwrap().port();
        let mut ng = Ng::open();
        let id = ng.ksocket("k", "inet/stream/tcp");
        let (t, r) = ng.send(".:k", KS_COOKIE, ks::CONNECT, &sin(LOOP, port));
        assert_eq!(r, Err(EINPROGRESS));
        let rep = ng.recv(2000).expect("asynchronous CONNECT response");
        assert_eq!(rep.from, idpath(id));
        let m = rep.msg;
        assert_eq!(m.cookie, 942_710_669);
        assert_eq!(m.cmd, 4);
        assert_ne!(m.flags & NGF_RESP, 0);
        assert_eq!(m.token, t);
        assert_eq!(m.arglen, 4);
        assert_eq!(m.int(), 0);
        assert_eq!(m.cmdstr, "NGM_KSOCKET_CONNECT");
        // Exactly one response.
        assert!(!ng.msg_pending());
        // Connected now: a second CONNECT is refused by the protocol and
        // getpeername names the server.
        assert_eq!(ng.ks(".:k", ks::CONNECT, &sin(LOOP, port)), Err(EISCONN));
        let p = ng.ks_reply(".:k", ks::GETPEERNAME, &[]);
        assert_eq!(p.data, sin(LOOP, port));
        assert!(!ng.msg_pending());
    });
}

/// K35 with a refused connection: the response carries ECONNREFUSED.
#[test]
fn k35_connect_refused_response() {
    isolated("k35_connect_refused_response", || {
        // A port nobody listens on.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut ng = Ng::open();
        let id = ng.ksocket("k", "inet/stream/tcp");
        let (t, r) = ng.send(&idpath(id), KS_COOKIE, ks::CONNECT, &sin(LOOP, port));
        match r {
            // Reported the asynchronous way.
            Err(e) if e == EINPROGRESS => {
                let rep = ng.recv(2000).expect("CONNECT response");
                assert_eq!(rep.msg.token, t);
                assert_eq!(rep.msg.cmdstr, "NGM_KSOCKET_CONNECT");
                assert_eq!(rep.msg.int(), ECONNREFUSED);
            }
            other => assert_eq!(other, Err(ECONNREFUSED)),
        }
        assert_eq!(ng.ks(&idpath(id), ks::GETPEERNAME, &[]), Err(ENOTCONN));
    });
}

/// A second CONNECT while the first is pending: EALREADY.
#[test]
fn connect_while_connecting_is_ealready() {
    isolated("connect_while_connecting_is_ealready", || {
        let srv = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = srv.local_addr().unwrap().port();
        let mut ng = Ng::open();
        ng.ksocket("k", "inet/stream/tcp");
        assert_eq!(
            ng.ks(".:k", ks::CONNECT, &sin(LOOP, port)),
            Err(EINPROGRESS)
        );
        // Nothing has run the event loop yet: the connect is still pending.
        assert_eq!(ng.ks(".:k", ks::CONNECT, &sin(LOOP, port)), Err(EALREADY));
        let rep = ng.recv(2000).expect("CONNECT response");
        assert_eq!(rep.msg.int(), 0);
    });
}

/// K37: binary SETOPT SO_REUSEADDR = 1, then binary GETOPT (arglen 8): the
/// reply has arglen 12 and level and name zero (as FreeBSD's, which never
/// copies them into the reply). The value is the `so_options` bit, 4, not
/// 1: that is what FreeBSD's sogetopt returns for boolean
/// socket-level options (`optval = so->so_options & sopt->sopt_name`); an
/// int option (SO_RCVBUF) comes back as set.
#[test]
fn k37_binary_setopt_getopt() {
    isolated("k37_binary_setopt_getopt", || {
        let mut ng = Ng::open();
        ng.ksocket("k", "inet/dgram/udp");
        let one = 1i32.to_ne_bytes();
        assert_eq!(
            ng.ks(".:k", ks::SETOPT, &sockopt(SOL_SOCKET, SO_REUSEADDR, &one)),
            Ok(())
        );
        assert!(!ng.msg_pending(), "SETOPT has no reply");
        let (t, r) = ng.send(
            ".:k",
            KS_COOKIE,
            ks::GETOPT,
            &sockopt(SOL_SOCKET, SO_REUSEADDR, &[]),
        );
        assert_eq!(r, Ok(()));
        let m = ng.recv_token(t, 2000).expect("GETOPT reply").msg;
        assert_eq!((m.cookie, m.cmd), (KS_COOKIE, ks::GETOPT));
        assert_ne!(m.flags & NGF_RESP, 0);
        assert_eq!(m.arglen, 12);
        assert_eq!(m.data, [0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]);
        // Off again.
        let zero = 0i32.to_ne_bytes();
        assert_eq!(
            ng.ks(".:k", ks::SETOPT, &sockopt(SOL_SOCKET, SO_REUSEADDR, &zero)),
            Ok(())
        );
        let m = ng.ks_reply(".:k", ks::GETOPT, &sockopt(SOL_SOCKET, SO_REUSEADDR, &[]));
        assert_eq!(&m.data[8..], &[0, 0, 0, 0]);
        // SO_RCVBUF round trip.
        let v = 65536i32.to_ne_bytes();
        assert_eq!(
            ng.ks(".:k", ks::SETOPT, &sockopt(SOL_SOCKET, SO_RCVBUF, &v)),
            Ok(())
        );
        let m = ng.ks_reply(".:k", ks::GETOPT, &sockopt(SOL_SOCKET, SO_RCVBUF, &[]));
        assert_eq!(m.arglen, 12);
        assert_eq!(&m.data[..8], &[0; 8]);
        assert!(i32::from_ne_bytes(m.data[8..12].try_into().unwrap()) >= 65536);
        // Improvement 3: an all-zero value (what ASCII getopt produces) is
        // accepted; the reply then names the option.
        let m = ng.ks_reply(
            ".:k",
            ks::GETOPT,
            &sockopt(SOL_SOCKET, SO_REUSEADDR, &[0; 4]),
        );
        assert_eq!(m.arglen, 12);
        assert_eq!(m.data, sockopt(SOL_SOCKET, SO_REUSEADDR, &[0, 0, 0, 0]));
        let m = ng.ks_reply(".:k", ks::GETOPT, &sockopt(SOL_SOCKET, SO_RCVBUF, &[0; 32]));
        assert_eq!(&m.data[..8], &sockopt(SOL_SOCKET, SO_RCVBUF, &[])[..]);
        // Socket-layer errors pass through.
        assert_eq!(
            ng.ks(".:k", ks::SETOPT, &sockopt(SOL_SOCKET, 0x7777, &one)),
            Err(ENOPROTOOPT)
        );
        assert_eq!(
            ng.ks(".:k", ks::GETOPT, &sockopt(SOL_SOCKET, 0x7777, &[])),
            Err(ENOPROTOOPT)
        );
        assert!(!ng.msg_pending());
    });
}

/// The ASCII form a ksocket gives for a binary message (NGM_BINARY2ASCII).
fn ascii_of(ng: &mut Ng, path: &str, inner: &[u8]) -> String {
    let (t, r) = ng.send(path, GEN_COOKIE, fbsd_sys::NGM_BINARY2ASCII, inner);
    assert_eq!(r, Ok(()));
    let m = ng.recv_token(t, 2000).expect("BINARY2ASCII reply").msg;
    cstr(&Msg::decode(&m.data).data)
}

/// By default every output is FreeBSD's: a SETOPT request and a GETOPT reply
/// in FreeBSD's form (level and name zero) print in the generic form; only a
/// GETOPT reply that names its option (the reply to the ASCII request form)
/// is printed typed. IPv6 addresses print in the generic form unless
/// net.graph.ksocket.inet6_ascii is set; IPv4 ones as inet/.
#[test]
fn binary_to_ascii_is_freebsds_by_default() {
    isolated("binary_to_ascii_is_freebsds_by_default", || {
        let mut ng = Ng::open();
        ng.ksocket("k", "inet/dgram/udp");
        let one = 1i32.to_ne_bytes();
        let setopt = encode(
            KS_COOKIE,
            ks::SETOPT,
            1,
            &sockopt(SOL_SOCKET, SO_REUSEADDR, &one),
        );
        assert_eq!(
            ascii_of(&mut ng, ".:k", &setopt),
            "{ level=65535 name=4 value=[ 0x1 ] }"
        );
        let reply =
            |data: &[u8]| encode_raw(KS_COOKIE, ks::GETOPT, NGF_RESP, 1, data.len() as u32, data);
        let compat = reply(&sockopt(0, 0, &4i32.to_ne_bytes()));
        assert_eq!(ascii_of(&mut ng, ".:k", &compat), "{ value=[ 0x4 ] }");
        let named = reply(&sockopt(SOL_SOCKET, SO_REUSEADDR, &4i32.to_ne_bytes()));
        assert_eq!(
            ascii_of(&mut ng, ".:k", &named),
            "{ level=SOL_SOCKET name=SO_REUSEADDR value=1 }"
        );
        // GETNAME replies.
        let name_reply =
            |sa: &[u8]| encode_raw(KS_COOKIE, ks::GETNAME, NGF_RESP, 1, sa.len() as u32, sa);
        let mut sin6 = vec![0u8; 28];
        sin6[0] = 28;
        sin6[1] = 28;
        sin6[2..4].copy_from_slice(&7777u16.to_be_bytes());
        sin6[23] = 1;
        let generic = "{ len=28 family=28 data=[ 0x1e 0x61 21=0x1 ] }";
        assert_eq!(ascii_of(&mut ng, ".:k", &name_reply(&sin6)), generic);
        let mut any6 = vec![0u8; 28];
        any6[0] = 28;
        any6[1] = 28;
        assert_eq!(
            ascii_of(&mut ng, ".:k", &name_reply(&any6)),
            "{ len=28 family=28 }"
        );
        assert_eq!(
            ascii_of(&mut ng, ".:k", &name_reply(&sin(LOOP, 7777))),
            "inet/127.0.0.1:7777"
        );
        let knob = "net.graph.ksocket.inet6_ascii";
        assert_eq!(
            ngharness::kern::sysctl::get(knob),
            Some(0),
            "off by default"
        );
        assert!(ngharness::kern::sysctl::set(knob, 1));
        assert_eq!(
            ascii_of(&mut ng, ".:k", &name_reply(&sin6)),
            "inet6/[::1]:7777"
        );
        assert_eq!(ascii_of(&mut ng, ".:k", &name_reply(&any6)), "inet6/::");
        assert!(ngharness::kern::sysctl::set(knob, 0));
        assert_eq!(ascii_of(&mut ng, ".:k", &name_reply(&sin6)), generic);
    });
}

/// K43: any cookie but NGM_KSOCKET_COOKIE is EINVAL, whatever the command;
/// so are the generic text-status/config messages the core passes on (K50).
#[test]
fn k43_foreign_cookie_is_einval() {
    isolated("k43_foreign_cookie_is_einval", || {
        let mut ng = Ng::open();
        let id = ng.ksocket("k", "inet/dgram/udp");
        for cookie in [12345u32, 0, KS_COOKIE + 1, u32::MAX] {
            for (cmd, args) in [
                (ks::BIND, sin(LOOP, 0)),
                (ks::GETNAME, vec![]),
                (ks::GETSTATS, vec![]),
            ] {
                let (_, r) = ng.send(&idpath(id), cookie, cmd, &args);
                assert_eq!(r, Err(EINVAL), "cookie {cookie} cmd {cmd}");
            }
        }
        for cmd in [fbsd_sys::NGM_TEXT_STATUS, fbsd_sys::NGM_TEXT_CONFIG] {
            let (_, r) = ng.send(&idpath(id), GEN_COOKIE, cmd, &[]);
            assert_eq!(r, Err(EINVAL), "generic cmd {cmd:#x}");
        }
        assert!(!ng.msg_pending());
        // The node is unharmed: bind still works.
        assert_eq!(ng.ks(&idpath(id), ks::BIND, &sin(LOOP, 0)), Ok(()));
    });
}

/// One row of the malformed-argument table.
struct Row {
    what: &'static str,
    cmd: u32,
    args: Vec<u8>,
    want: Result<(), i32>,
}

fn row(what: &'static str, cmd: u32, args: Vec<u8>, want: Result<(), i32>) -> Row {
    Row {
        what,
        cmd,
        args,
        want,
    }
}

/// Sends every row to `path`; each must give its errno, no reply, and no
/// memory or mbuf left behind.
fn run_table(ng: &mut Ng, path: &str, rows: &[Row]) {
    for r in rows {
        settle();
        let mem = malloc::live_total();
        let mbufs = kmbuf::live();
        let got = ng.ks(path, r.cmd, &r.args);
        assert_eq!(
            got,
            r.want,
            "{path} {} (cmd {}, arglen {})",
            r.what,
            r.cmd,
            r.args.len()
        );
        if r.want.is_err() {
            assert!(!ng.msg_pending(), "{}: a reply to a failed request", r.what);
        } else {
            ng.drain();
        }
        settle();
        assert_eq!(malloc::live_total(), mem, "{}: malloc leak", r.what);
        assert_eq!(kmbuf::live(), mbufs, "{}: mbuf leak", r.what);
    }
}

/// The sockaddr rules of BIND and CONNECT (docs/ksocket.md §5.1, §5.4): arglen
/// below 2 or below `sa_len` is EINVAL; so is an `sa_len` the socket layer
/// rejects (0, 1, not a sockaddr_in's, beyond sockaddr_storage).
fn sockaddr_rows(cmd: u32) -> Vec<Row> {
    let good = sin(LOOP, 0);
    let mut len0 = good.clone();
    len0[0] = 0;
    let mut len1 = good.clone();
    len1[0] = 1;
    let mut len2 = good.clone();
    len2[0] = 2;
    let mut len20 = good.clone();
    len20[0] = 20;
    let mut big = vec![200u8, 2];
    big.resize(200, 0);
    let mut huge = vec![255u8, 2];
    huge.resize(300, 0);
    vec![
        row("arglen 0", cmd, vec![], Err(EINVAL)),
        row("arglen 1", cmd, vec![16], Err(EINVAL)),
        row("arglen 1 (sa_len 0)", cmd, vec![0], Err(EINVAL)),
        row("sa_len 16 > arglen 2", cmd, vec![16, 2], Err(EINVAL)),
        row(
            "sa_len 16 > arglen 15",
            cmd,
            good[..15].to_vec(),
            Err(EINVAL),
        ),
        row("sa_len 20 > arglen 16", cmd, len20, Err(EINVAL)),
        row("sa_len 0", cmd, len0, Err(EINVAL)),
        row("sa_len 1", cmd, len1, Err(EINVAL)),
        row("sa_len 2", cmd, len2, Err(EINVAL)),
        row(
            "sa_len 200 (beyond sockaddr_storage)",
            cmd,
            big,
            Err(EINVAL),
        ),
        row("sa_len 255, arglen 300", cmd, huge, Err(EINVAL)),
    ]
}

fn no_arg_rows(cmd: u32) -> Vec<Row> {
    vec![
        row("arglen 1", cmd, vec![0], Err(EINVAL)),
        row("arglen 4", cmd, vec![0; 4], Err(EINVAL)),
        row("arglen 16", cmd, sin(LOOP, 0), Err(EINVAL)),
    ]
}

fn int(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Item 2 of the conformance table: every binary control message with a
/// short, oversized or inconsistent argument, on an unbound UDP ksocket.
#[test]
fn malformed_arguments_udp() {
    isolated("malformed_arguments_udp", || {
        let mut ng = Ng::open();
        let id = ng.ksocket("k", "inet/dgram/udp");
        let p = idpath(id);
        let mut rows = sockaddr_rows(ks::BIND);
        rows.extend(sockaddr_rows(ks::CONNECT));
        rows.extend([
            row("listen arglen 0", ks::LISTEN, vec![], Err(EINVAL)),
            row("listen arglen 3", ks::LISTEN, vec![5, 0, 0], Err(EINVAL)),
            row(
                "listen arglen 5",
                ks::LISTEN,
                vec![5, 0, 0, 0, 0],
                Err(EINVAL),
            ),
            row(
                "listen arglen 8",
                ks::LISTEN,
                vec![5, 0, 0, 0, 0, 0, 0, 0],
                Err(EINVAL),
            ),
            // Well-formed, but UDP cannot listen.
            row("listen 5 on UDP", ks::LISTEN, int(5), Err(EOPNOTSUPP)),
            row("accept on a non-listener", ks::ACCEPT, vec![], Err(EINVAL)),
            row(
                "getpeername unconnected",
                ks::GETPEERNAME,
                vec![],
                Err(ENOTCONN),
            ),
        ]);
        rows.extend(no_arg_rows(ks::ACCEPT));
        rows.extend(no_arg_rows(ks::GETNAME));
        rows.extend(no_arg_rows(ks::GETPEERNAME));
        let so = |v: &[u8]| sockopt(SOL_SOCKET, SO_RCVBUF, v);
        rows.extend([
            row("getopt arglen 0", ks::GETOPT, vec![], Err(EINVAL)),
            row(
                "getopt arglen 4",
                ks::GETOPT,
                so(&[])[..4].to_vec(),
                Err(EINVAL),
            ),
            row(
                "getopt arglen 7",
                ks::GETOPT,
                so(&[])[..7].to_vec(),
                Err(EINVAL),
            ),
            row(
                "getopt arglen 9, value 01",
                ks::GETOPT,
                so(&[1]),
                Err(EINVAL),
            ),
            row(
                "getopt arglen 12, value 1",
                ks::GETOPT,
                so(&int(1)),
                Err(EINVAL),
            ),
            row(
                "getopt arglen 40, last byte set",
                ks::GETOPT,
                so(&{
                    let mut v = vec![0u8; 32];
                    v[31] = 0x80;
                    v
                }),
                Err(EINVAL),
            ),
            row("setopt arglen 0", ks::SETOPT, vec![], Err(EINVAL)),
            row(
                "setopt arglen 4",
                ks::SETOPT,
                so(&[])[..4].to_vec(),
                Err(EINVAL),
            ),
            row(
                "setopt arglen 7",
                ks::SETOPT,
                so(&[])[..7].to_vec(),
                Err(EINVAL),
            ),
            // No value: the socket layer's int option wants 4 bytes.
            row(
                "setopt arglen 8 (no value)",
                ks::SETOPT,
                so(&[]),
                Err(EINVAL),
            ),
            row(
                "setopt arglen 10 (short int)",
                ks::SETOPT,
                so(&[1, 0]),
                Err(EINVAL),
            ),
        ]);
        for cmd in [0u32, 9, 10, 99, 103, 104, 0xffff, u32::MAX] {
            rows.push(row("unknown command", cmd, vec![], Err(EINVAL)));
            rows.push(row(
                "unknown command with an argument",
                cmd,
                int(1),
                Err(EINVAL),
            ));
        }
        // The read-only and has-reply bits do not make a command known.
        rows.push(row(
            "GETNAME|NGM_READONLY",
            ks::GETNAME | fbsd_sys::NGM_READONLY,
            vec![],
            Err(EINVAL),
        ));
        rows.push(row(
            "GETNAME|NGM_HASREPLY",
            ks::GETNAME | fbsd_sys::NGM_HASREPLY,
            vec![],
            Err(EINVAL),
        ));
        for cmd in [ks::GETSTATS, ks::CLRSTATS, ks::GETCLRSTATS] {
            rows.push(row("stats with arglen 1", cmd, vec![0], Err(EINVAL)));
            rows.push(row("stats with arglen 8", cmd, vec![0; 8], Err(EINVAL)));
        }
        run_table(&mut ng, &p, &rows);

        // Accepted variants, for contrast (each gives a reply or none).
        let mut long = sin(LOOP, 0);
        long.extend_from_slice(&[0xee; 100]);
        run_table(
            &mut ng,
            &p,
            &[
                row("bind, 100 bytes beyond sa_len", ks::BIND, long, Ok(())),
                row("getopt arglen 8", ks::GETOPT, so(&[]), Ok(())),
                row("getopt arglen 9, zero", ks::GETOPT, so(&[0]), Ok(())),
                row("getopt arglen 40, zero", ks::GETOPT, so(&[0; 32]), Ok(())),
                row("setopt arglen 12", ks::SETOPT, so(&int(65536)), Ok(())),
                row(
                    "setopt arglen 40 (int, then zeros)",
                    ks::SETOPT,
                    so(&{
                        let mut v = int(65536);
                        v.resize(32, 0);
                        v
                    }),
                    Ok(()),
                ),
                row("getname", ks::GETNAME, vec![], Ok(())),
                row("getstats", ks::GETSTATS, vec![], Ok(())),
                row("clrstats", ks::CLRSTATS, vec![], Ok(())),
                row("getclrstats", ks::GETCLRSTATS, vec![], Ok(())),
            ],
        );
        // The bind with trailing bytes bound 127.0.0.1.
        let name = ng.ks_reply(&p, ks::GETNAME, &[]);
        assert_eq!(&name.data[..2], &[16, 2]);
        assert_eq!(&name.data[4..8], &LOOP);
        // A GETOPT whose value is all zero echoes level and name; one with
        // arglen 8 does not (FreeBSD's reply).
        let m = ng.ks_reply(&p, ks::GETOPT, &so(&[0; 32]));
        assert_eq!(m.arglen, 12);
        assert_eq!(&m.data[..8], &so(&[])[..]);
        let m = ng.ks_reply(&p, ks::GETOPT, &so(&[]));
        assert_eq!(&m.data[..8], &[0; 8]);
    });
}

/// The same rules on TCP: a plain socket, then a listener (EALREADY for a
/// second ACCEPT; listen's argument rules unchanged).
#[test]
fn malformed_arguments_tcp() {
    isolated("malformed_arguments_tcp", || {
        let mut ng = Ng::open();
        let id = ng.ksocket("k", "inet/stream/tcp");
        let p = idpath(id);
        let mut rows = sockaddr_rows(ks::BIND);
        rows.extend(sockaddr_rows(ks::CONNECT));
        rows.extend([
            row("listen arglen 0", ks::LISTEN, vec![], Err(EINVAL)),
            row("listen arglen 3", ks::LISTEN, vec![5, 0, 0], Err(EINVAL)),
            row(
                "listen arglen 5",
                ks::LISTEN,
                vec![5, 0, 0, 0, 0],
                Err(EINVAL),
            ),
            row(
                "listen arglen 8",
                ks::LISTEN,
                vec![5, 0, 0, 0, 0, 0, 0, 0],
                Err(EINVAL),
            ),
            row("accept on a non-listener", ks::ACCEPT, vec![], Err(EINVAL)),
        ]);
        rows.extend(no_arg_rows(ks::ACCEPT));
        run_table(&mut ng, &p, &rows);
        let one = int(1);
        run_table(
            &mut ng,
            &p,
            &[
                row(
                    "setopt SO_REUSEADDR",
                    ks::SETOPT,
                    sockopt(SOL_SOCKET, SO_REUSEADDR, &one),
                    Ok(()),
                ),
                row("bind", ks::BIND, sin(LOOP, 0), Ok(())),
                row("bind again", ks::BIND, sin(LOOP, 0), Err(EINVAL)),
                row("listen 5", ks::LISTEN, int(5), Ok(())),
            ],
        );
        let mut rows = vec![
            row(
                "listen arglen 3 on a listener",
                ks::LISTEN,
                vec![5, 0, 0],
                Err(EINVAL),
            ),
            row(
                "listen arglen 8 on a listener",
                ks::LISTEN,
                vec![0; 8],
                Err(EINVAL),
            ),
            row(
                "connect on a listener",
                ks::CONNECT,
                sin(LOOP, 9),
                Err(fbsd_sys::EOPNOTSUPP as i32),
            ),
        ];
        rows.extend(no_arg_rows(ks::ACCEPT));
        rows.extend(no_arg_rows(ks::GETNAME));
        run_table(&mut ng, &p, &rows);
        // One ACCEPT waits; a second is EALREADY.
        run_table(
            &mut ng,
            &p,
            &[
                row("accept", ks::ACCEPT, vec![], Ok(())),
                row("second accept", ks::ACCEPT, vec![], Err(EALREADY)),
                row(
                    "accept arglen 4 while accepting",
                    ks::ACCEPT,
                    vec![0; 4],
                    Err(EINVAL),
                ),
            ],
        );
    });
}
