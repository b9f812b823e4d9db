//! Allocation failure at every allocation site the ksocket paths reach
//! (item 3 of the conformance table): each path (UDP, TCP, control
//! messages) is run once per `M_NOWAIT` allocation it makes, with exactly
//! that allocation failing (`kern::fault` plans `all:nth=N`, then the
//! netgraph item zones `ng_item:nth=N` and `ng_data_item:nth=N`), until a
//! run reaches no N-th allocation. Every run must end with success, with
//! ENOMEM or ENOBUFS at the step that hit the failure, or with a packet,
//! reply or response that never arrives; and afterwards nothing may be
//! left: no node, no socket, no memory, no mbuf, no violation (the harness
//! kernel would also turn a panic into a failed child process).

mod ksock_util;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};

use ksock_util::*;
use ngharness::kern::fault::{self, FaultPlan};
use ngharness::kern::{malloc, mbuf as kmbuf, take_violations};

const LOOP: [u8; 4] = [127, 0, 0, 1];
const IPPROTO_IP: i32 = 0;
const IP_RECVDSTADDR: i32 = fbsd_sys::IP_RECVDSTADDR as i32;
/// How long a run waits for something that may have been dropped.
const WAIT: u64 = 150;

/// How a step of a path ended when it did not succeed.
#[derive(Debug)]
enum Fail {
    /// A system call failed with this errno.
    Errno(&'static str, i32),
    /// Something expected never arrived (dropped inside the kernel).
    Dropped(&'static str),
    /// Something arrived, but not what the path expects.
    Wrong(&'static str, String),
}

type R<T> = Result<T, Fail>;

fn sys<T>(what: &'static str, r: Result<T, i32>) -> R<T> {
    r.map_err(|e| Fail::Errno(what, e))
}

/// A control message that must succeed with a reply.
fn reply(ng: &mut Ng, what: &'static str, path: &str, cmd: u32, args: &[u8]) -> R<Msg> {
    let (t, r) = ng.send(path, KS_COOKIE, cmd, args);
    sys(what, r)?;
    ng.recv_token(t, WAIT)
        .map(|r| r.msg)
        .ok_or(Fail::Dropped(what))
}

/// A request that must fail with `errno` (an injected failure may make it
/// fail earlier, with ENOMEM or ENOBUFS).
fn refused(what: &'static str, r: Result<(), i32>, errno: i32) -> R<()> {
    match r {
        Err(e) if e == errno => Ok(()),
        Err(e) => Err(Fail::Errno(what, e)),
        Ok(()) => Err(Fail::Wrong(what, "accepted".into())),
    }
}

fn want(what: &'static str, ok: bool, detail: impl FnOnce() -> String) -> R<()> {
    if ok {
        Ok(())
    } else {
        Err(Fail::Wrong(what, detail()))
    }
}

/// The UDP path: echo-backed unconnected server (source-address tags both
/// ways), GETNAME, SETOPT/GETOPT, statistics, a connected ksocket on the
/// data socket (data both ways), shutdown.
fn udp_path(ng: &mut Ng) -> R<()> {
    sys("mkpeer echo", ng.mkpeer(".", "echo", "e", "x"))?;
    sys("name echo", ng.name(".:e", "ec"))?;
    sys(
        "mkpeer ksocket",
        ng.mkpeer("ec:", "ksocket", "k", "inet/dgram/udp"),
    )?;
    let id = sys("nodeinfo", ng.nodeid("ec:k"))?;
    let p = idpath(id);
    sys("bind", ng.ks(&p, ks::BIND, &sin(LOOP, 0)))?;
    let name = reply(ng, "getname", &p, ks::GETNAME, &[])?;
    want("getname", name.data.len() == 16, || format!("{name:?}"))?;
    let port = sin_port(&name.data);
    sys("rmhook", ng.rmhook(".", "e"))?;
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(b"one", ("127.0.0.1", port)).unwrap();
    let (d, _) = udp_recv(&c, WAIT).ok_or(Fail::Dropped("echo one"))?;
    want("echo one", d == b"one", || format!("{d:?}"))?;
    c.send_to(b"two", ("127.0.0.1", port)).unwrap();
    let (d, _) = udp_recv(&c, WAIT).ok_or(Fail::Dropped("echo two"))?;
    want("echo two", d == b"two", || format!("{d:?}"))?;
    let one = 1i32.to_ne_bytes();
    sys(
        "setopt",
        ng.ks(&p, ks::SETOPT, &sockopt(SOL_SOCKET, SO_REUSEADDR, &one)),
    )?;
    let o = reply(
        ng,
        "getopt",
        &p,
        ks::GETOPT,
        &sockopt(SOL_SOCKET, SO_RCVBUF, &[]),
    )?;
    want("getopt", o.arglen == 12, || format!("{o:?}"))?;
    let o = reply(
        ng,
        "getopt (ASCII form)",
        &p,
        ks::GETOPT,
        &sockopt(SOL_SOCKET, SO_RCVBUF, &[0; 4]),
    )?;
    want("getopt (ASCII form)", o.arglen == 12, || format!("{o:?}"))?;
    let s = reply(ng, "getstats", &p, ks::GETSTATS, &[])?;
    want("getstats", s.arglen == 120, || format!("{s:?}"))?;
    reply(ng, "getclrstats", &p, ks::GETCLRSTATS, &[])?;
    sys("clrstats", ng.ks(&p, ks::CLRSTATS, &[]))?;
    sys("shutdown echo", ng.shutdown("ec:"))?;

    // Connected UDP through the data socket.
    sys(
        "mkpeer ksocket 2",
        ng.mkpeer(".", "ksocket", "u", "inet/dgram/udp"),
    )?;
    sys("bind 2", ng.ks(".:u", ks::BIND, &sin(LOOP, 0)))?;
    let uport = sin_port(&reply(ng, "getname 2", ".:u", ks::GETNAME, &[])?.data);
    sys(
        "connect",
        ng.ks(".:u", ks::CONNECT, &sin_of(c.local_addr().unwrap())),
    )?;
    sys("write", ng.send_data("u", b"hello"))?;
    let (d, _) = udp_recv(&c, WAIT).ok_or(Fail::Dropped("datagram out"))?;
    want("datagram out", d == b"hello", || format!("{d:?}"))?;
    c.send_to(b"back", ("127.0.0.1", uport)).unwrap();
    let (_, d) = ng.recv_data(WAIT).ok_or(Fail::Dropped("datagram in"))?;
    want("datagram in", d == b"back", || format!("{d:?}"))?;
    let pn = reply(ng, "getpeername", ".:u", ks::GETPEERNAME, &[])?;
    want(
        "getpeername",
        pn.data == sin_of(c.local_addr().unwrap()),
        || format!("{pn:?}"),
    )?;
    sys("rmhook 2", ng.rmhook(".", "u"))?;
    Ok(())
}

/// The local-address path of ng_ksocket(4): an echo-backed UDP ksocket on
/// the wildcard address with `IP_RECVDSTADDR` (source and local-address
/// tags on every datagram, answers sent from the local address with kept
/// or new control mbufs), clients writing to 127.0.0.2 and 127.0.0.1. An
/// answer comes from the address written to; without memory for the
/// local-address tag or a control mbuf it is dropped. Only when the socket
/// layer had no memory for a datagram's control data (it then arrives with
/// no local address) may the answer come from routing's choice.
fn laddr_path(ng: &mut Ng) -> R<()> {
    sys("mkpeer echo", ng.mkpeer(".", "echo", "e", "x"))?;
    sys("name echo", ng.name(".:e", "ec"))?;
    sys(
        "mkpeer ksocket",
        ng.mkpeer("ec:", "ksocket", "k", "inet/dgram/udp"),
    )?;
    let id = sys("nodeinfo", ng.nodeid("ec:k"))?;
    let p = idpath(id);
    let one = 1i32.to_ne_bytes();
    sys(
        "setopt IP_RECVDSTADDR",
        ng.ks(&p, ks::SETOPT, &sockopt(IPPROTO_IP, IP_RECVDSTADDR, &one)),
    )?;
    sys("bind", ng.ks(&p, ks::BIND, &sin([0; 4], 0)))?;
    let port = sin_port(&reply(ng, "getname", &p, ks::GETNAME, &[])?.data);
    sys("rmhook", ng.rmhook(".", "e"))?;
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (to, what) in [
        ([127, 0, 0, 2], &b"to two"[..]),
        (LOOP, b"to one"),
        ([127, 0, 0, 2], b"to two again"),
    ] {
        c.send_to(what, (std::net::Ipv4Addr::from(to), port))
            .unwrap();
        let (d, from) = udp_recv(&c, WAIT).ok_or(Fail::Dropped("answer"))?;
        want("answer", d == what, || format!("{d:?}"))?;
        let want_from = std::net::SocketAddr::from((to, port));
        if from != want_from {
            let lost_control =
                !fault::injections().is_empty() && from == std::net::SocketAddr::from((LOOP, port));
            if !lost_control {
                return Err(Fail::Wrong(
                    "answer's source",
                    format!("{from} for a datagram to {want_from}"),
                ));
            }
            return Err(Fail::Dropped("the local address (no control data)"));
        }
    }
    sys("shutdown echo", ng.shutdown("ec:"))?;
    Ok(())
}

/// The TCP path: listener (setopt, bind, listen), ACCEPT, a client with
/// data written before the clone has a hook, the ACCEPT response, a hook to
/// the clone, data both ways, EOF; an outgoing connect with its
/// asynchronous response, data, peer close; shutdown.
fn tcp_path(ng: &mut Ng) -> R<()> {
    sys(
        "mkpeer listener",
        ng.mkpeer(".", "ksocket", "l", "inet/stream/tcp"),
    )?;
    let one = 1i32.to_ne_bytes();
    sys(
        "setopt",
        ng.ks(".:l", ks::SETOPT, &sockopt(SOL_SOCKET, SO_REUSEADDR, &one)),
    )?;
    sys("bind", ng.ks(".:l", ks::BIND, &sin(LOOP, 0)))?;
    sys("listen", ng.ks(".:l", ks::LISTEN, &5i32.to_ne_bytes()))?;
    let port = sin_port(&reply(ng, "getname", ".:l", ks::GETNAME, &[])?.data);
    let (t, r) = ng.send(".:l", KS_COOKIE, ks::ACCEPT, &[]);
    sys("accept", r)?;
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"early").unwrap();
    let rep = ng.recv(WAIT).ok_or(Fail::Dropped("accept response"))?;
    want(
        "accept response",
        rep.msg.token == t && rep.msg.arglen == 20,
        || format!("{rep:?}"),
    )?;
    let clone = u32::from_ne_bytes(rep.msg.data[..4].try_into().unwrap());
    sys(
        "connect to the clone",
        ng.connect(".", &idpath(clone), "c", "any"),
    )?;
    let (h, d) = ng.recv_data(WAIT).ok_or(Fail::Dropped("early data"))?;
    // (The source hook name is missing when recvfrom could not allocate it.)
    want(
        "early data",
        (h == "c" || h.is_empty()) && d == b"early",
        || format!("{h} {d:?}"),
    )?;
    sys("write to the clone", ng.send_data("c", b"pong"))?;
    let d = tcp_read(&mut c, 4, WAIT);
    want("data from the clone", d == b"pong", || format!("{d:?}"))?;
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let (_, d) = ng.recv_data(WAIT).ok_or(Fail::Dropped("EOF packet"))?;
    want("EOF packet", d.is_empty(), || format!("{d:?}"))?;
    reply(ng, "clone stats", &idpath(clone), ks::GETSTATS, &[])?;
    sys("rmhook clone", ng.rmhook(".", "c"))?;
    // (A lost ng_rmhook_self item leaves the clone with a dead hook.)
    if !tcp_eof(&mut c, WAIT) {
        return Err(Fail::Dropped("clone removal"));
    }

    // Outgoing connect (K35) to a listener outside netgraph.
    let srv = TcpListener::bind("127.0.0.1:0").unwrap();
    let sport = srv.local_addr().unwrap().port();
    sys(
        "mkpeer client",
        ng.mkpeer(".", "ksocket", "k", "inet/stream/tcp"),
    )?;
    let (t, r) = ng.send(".:k", KS_COOKIE, ks::CONNECT, &sin(LOOP, sport));
    match r {
        Err(e) if e == EINPROGRESS => {}
        other => sys("connect", other)?,
    }
    let rep = ng.recv(WAIT).ok_or(Fail::Dropped("connect response"))?;
    want(
        "connect response",
        rep.msg.token == t && rep.msg.data == [0; 4],
        || format!("{rep:?}"),
    )?;
    let (mut p, _) = srv.accept().unwrap();
    sys("write", ng.send_data("k", b"abc"))?;
    let d = tcp_read(&mut p, 3, WAIT);
    want("stream out", d == b"abc", || format!("{d:?}"))?;
    p.write_all(b"xyz").unwrap();
    let (_, d) = ng.recv_data(WAIT).ok_or(Fail::Dropped("stream in"))?;
    want("stream in", d == b"xyz", || format!("{d:?}"))?;
    let pn = reply(ng, "getpeername", ".:k", ks::GETPEERNAME, &[])?;
    want("getpeername", pn.data == sin(LOOP, sport), || {
        format!("{pn:?}")
    })?;
    drop(p);
    let (_, d) = ng.recv_data(WAIT).ok_or(Fail::Dropped("EOF packet 2"))?;
    want("EOF packet 2", d.is_empty(), || format!("{d:?}"))?;
    sys("shutdown client", ng.shutdown(".:k"))?;
    sys("shutdown listener", ng.shutdown(".:l"))?;
    Ok(())
}

/// Control messages that fail, and those that reply, on an embryo-owning
/// listener whose upcall-driven accepts create clones nobody asked for.
fn control_path(ng: &mut Ng) -> R<()> {
    sys("mkpeer", ng.mkpeer(".", "ksocket", "l", "inet/stream/tcp"))?;
    let p = ".:l";
    refused("bad bind", ng.ks(p, ks::BIND, &[16, 2]), EINVAL)?;
    refused("unknown cmd", ng.ks(p, 99, &[]), EINVAL)?;
    refused(
        "getopt arglen 9",
        ng.ks(p, ks::GETOPT, &[0, 0, 0, 0, 0, 0, 0, 0, 1]),
        EINVAL,
    )?;
    refused("accept before listen", ng.ks(p, ks::ACCEPT, &[]), EINVAL)?;
    refused("getpeername", ng.ks(p, ks::GETPEERNAME, &[]), ENOTCONN)?;
    sys("bind", ng.ks(p, ks::BIND, &sin(LOOP, 0)))?;
    sys("listen", ng.ks(p, ks::LISTEN, &5i32.to_ne_bytes()))?;
    let port = sin_port(&reply(ng, "getname", p, ks::GETNAME, &[])?.data);
    // Two connections nobody accepts: embryos, destroyed with the listener.
    let c1 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let c2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    settle();
    let s = reply(ng, "getstats", p, ks::GETSTATS, &[])?;
    want("getstats", s.arglen == 120, || format!("{s:?}"))?;
    reply(
        ng,
        "getopt",
        p,
        ks::GETOPT,
        &sockopt(SOL_SOCKET, SO_RCVBUF, &[]),
    )?;
    sys("shutdown", ng.shutdown(p))?;
    drop((c1, c2));
    Ok(())
}

/// Is this failure an acceptable outcome of an injected allocation failure?
fn acceptable(f: &Fail) -> bool {
    match f {
        Fail::Errno(_, e) => *e == ENOMEM || *e == ENOBUFS,
        Fail::Dropped(_) => true,
        Fail::Wrong(..) => false,
    }
}

/// Closes everything a run left, removes the nodes that survive their
/// creator (echo), and checks that the kernel is back at `base`.
///
/// One kind of node may be left, and only when a netgraph item could not be
/// allocated: a ksocket whose hook removal or self-removal was lost because
/// netgraph's `ng_rmhook_self` / `ng_rmnode_self` (FreeBSD's too) could not
/// queue its function item. Such a node is still reachable; it is shut down
/// here and counted. Returns how many there were.
fn cleanup(base: (usize, usize), label: &str, item_failed: bool) -> Vec<NodeInfo> {
    fault::clear();
    settle();
    // Retries of node removals run a few ticks later.
    ngharness::kern::sched::advance(50);
    settle();
    let mut admin = Ng::open();
    let _ = admin.shutdown("ec:");
    let left = admin.ksockets();
    if !left.is_empty() {
        assert!(
            item_failed,
            "{label}: ksocket nodes left: {left:?}; all nodes: {:?}",
            admin.list()
        );
        for n in &left {
            assert!(n.hooks <= 1, "{label}: {n:?}");
            admin
                .shutdown(&idpath(n.id))
                .expect("shutdown a left-over ksocket");
        }
        assert!(admin.ksockets().is_empty(), "{label}");
    }
    admin.close();
    settle();
    assert_eq!(kmbuf::live(), base.1, "{label}: mbufs left");
    if malloc::live_total() != base.0 {
        let leaks = malloc::check_all();
        let sites: Vec<String> = leaks
            .iter()
            .filter_map(|l| l.rsplit("allocated at ").next())
            .filter_map(|a| usize::from_str_radix(a.trim().trim_start_matches("0x"), 16).ok())
            .map(|a| format!("{a:#x} = {:?}", ngharness::kern::loader::symbolize(a)))
            .collect();
        panic!("{label}: memory left: {leaks:#?} {sites:#?}");
    }
    let v = take_violations();
    assert!(v.is_empty(), "{label}: violations: {v:#?}");
    left
}

/// Runs `path` once cleanly, then once per allocation it makes with that
/// allocation failing, for each allocation class. Prints a summary.
fn sweep(path: fn(&mut Ng) -> R<()>) {
    // Warm-up run: every lazily created kernel object exists afterwards.
    {
        let mut ng = Ng::open();
        if let Err(f) = path(&mut ng) {
            panic!("the path fails without injected failures: {f:?}");
        }
    }
    settle();
    let mut admin = Ng::open();
    let _ = admin.shutdown("ec:");
    drop(admin);
    settle();
    let base = (malloc::live_total(), kmbuf::live());
    let _ = take_violations();
    let mut summary: BTreeMap<String, usize> = BTreeMap::new();
    let mut sites: BTreeMap<String, usize> = BTreeMap::new();
    let mut runs = 0;
    for class in ["all", "ng_item", "ng_data_item"] {
        for n in 1.. {
            let label = format!("{class}:nth={n}");
            fault::configure(FaultPlan::parse(&label).unwrap());
            let r = match Ng::try_open() {
                Ok(mut ng) => path(&mut ng),
                Err(e) => Err(Fail::Errno("NgMkSockNode", e)),
            };
            let injected = fault::injections();
            fault::clear();
            runs += 1;
            for l in &injected {
                *sites.entry(site_of(l)).or_default() += 1;
            }
            let key = match &r {
                Ok(()) => "completed".to_string(),
                Err(f) => {
                    assert!(
                        acceptable(f),
                        "{label}: unexpected outcome {f:?} after {injected:#?}"
                    );
                    match f {
                        Fail::Errno(w, e) => format!("errno {e} at {w}"),
                        Fail::Dropped(w) => format!("lost {w}"),
                        Fail::Wrong(w, d) => format!("wrong {w}: {d}"),
                    }
                }
            };
            let ctx = format!("{label} ({key}; {injected:?})");
            *summary.entry(key).or_default() += 1;
            let item_failed = injected.iter().any(|l| l.contains(": ng_item M_NOWAIT"));
            for n in cleanup(base, &ctx, item_failed) {
                *summary
                    .entry(format!(
                        "ksocket left with {} hook(s) by a lost netgraph item",
                        n.hooks
                    ))
                    .or_default() += 1;
            }
            if injected.is_empty() {
                break;
            }
            assert!(n < 2000, "{label}: the path never runs out of allocations");
        }
    }
    eprintln!("{runs} runs:");
    for (k, v) in &summary {
        eprintln!("  {v:4}  {k}");
    }
    eprintln!("failures injected at:");
    for (k, v) in &sites {
        eprintln!("  {v:4}  {k}");
    }
    assert!(
        sites.keys().any(|k| k.starts_with("ng_ksocket.ko:")),
        "no allocation of ng_ksocket.ko itself was reached"
    );
}

/// "what from where" of an injection log line, with module addresses
/// resolved to `module:function`.
fn site_of(line: &str) -> String {
    let what = line
        .split(": ")
        .nth(1)
        .and_then(|w| w.split(" M_NOWAIT").next())
        .unwrap_or("?");
    let from = line.rsplit("from ").next().unwrap_or("?");
    let place = usize::from_str_radix(from.trim_start_matches("0x"), 16)
        .ok()
        .and_then(ngharness::kern::loader::symbolize)
        .map(|s| demangle(&s))
        .unwrap_or_else(|| {
            if from.starts_with("0x") {
                "harness".into()
            } else {
                from.into()
            }
        });
    format!("{place}: {what}")
}

/// `module:_RNv...name+0xoff` → `module:name` (the innermost Rust path
/// segments of a v0 symbol are enough to tell sites apart).
fn demangle(sym: &str) -> String {
    let (module, rest) = sym.split_once(':').unwrap_or(("", sym));
    let rest = rest.split('+').next().unwrap_or(rest);
    // v0 mangling: identifiers are <decimal length><bytes>.
    let mut names = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let n: usize = rest[i..j].parse().unwrap_or(0);
            if n > 0 && j + n <= b.len() {
                let id = &rest[j..j + n];
                if id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    names.push(id.to_string());
                    i = j + n;
                    continue;
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    let tail: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.starts_with("Cs") && n.len() > 1)
        .rev()
        .take(2)
        .collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "{module}:{}",
        if tail.is_empty() {
            rest.to_string()
        } else {
            tail.join("::")
        }
    )
}

#[test]
fn udp_path_survives_every_allocation_failure() {
    isolated("udp_path_survives_every_allocation_failure", || {
        sweep(udp_path)
    });
}

#[test]
fn tcp_path_survives_every_allocation_failure() {
    isolated("tcp_path_survives_every_allocation_failure", || {
        sweep(tcp_path)
    });
}

#[test]
fn local_address_path_survives_every_allocation_failure() {
    isolated(
        "local_address_path_survives_every_allocation_failure",
        || {
            ngharness::kern::inet::ifaddr::add_alias("127.0.0.2".parse().unwrap())
                .expect("alias 127.0.0.2");
            sweep(laddr_path)
        },
    );
}

#[test]
fn control_path_survives_every_allocation_failure() {
    isolated("control_path_survives_every_allocation_failure", || {
        sweep(control_path)
    });
}
