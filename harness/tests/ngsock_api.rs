//! ng_socket's PF_NETGRAPH system-call interface, row by row of
//! docs/socket.md §13 (and the sections it cites) that are not
//! plain ngctl scenarios: `build/ng_socket.ko` in the harness kernel, driven
//! through `socket`/`bind`/`connect`/`sendto`/`recvfrom`/`getsockname`/
//! `close` exactly as libnetgraph does. Every test ends with the harness's
//! strict end checks (see `ngsock_util`).

mod ngsock_util;

use ngharness::kern::domain as kd;
use ngharness::kern::{printf, sched, sysctl};
use ngharness::scenario::msg::{self as wire, NgMsg};
use ngsock_util::*;

/// S4: an unprivileged process may open data sockets (and attach them to a
/// socket node: §6.2 has no privilege check) but not control sockets.
#[test]
fn s4_unprivileged_data_ok_control_eperm() {
    let Some(k) = boot() else { return };
    let (cs, _ds, _) = sock_node("s4root");
    let cs2 = ctl();
    let ds = as_user(|| {
        assert_eq!(kd::socket(FAM, DGRAM, NG_CONTROL), Err(EPERM));
        // Protocol 0 is the first datagram entry: the control protocol.
        assert_eq!(kd::socket(FAM, DGRAM, 0), Err(EPERM));
        let ds = kd::socket(FAM, DGRAM, NG_DATA).expect("unprivileged data socket");
        assert_eq!(
            kd::connect(ds, &sa(&format!("{}:", sockname(cs2).unwrap()))),
            Ok(())
        );
        ds
    });
    mkpeer(cs2, ".", "echo", "e", "e").unwrap();
    assert_eq!(as_user(|| kd::sendto(ds, b"u", Some(&sa("e")), 0)), Ok(1));
    assert_eq!(recv(ds), Some((b"u".to_vec(), sa("e"))));
    let _ = cs;
    k.finish();
}

/// S7: only SOCK_DGRAM with protocol NG_DATA, NG_CONTROL or 0 (= control).
#[test]
fn s7_protocol_selection() {
    let Some(k) = boot() else { return };
    assert_eq!(kd::socket(FAM, STREAM, NG_CONTROL), Err(EPROTONOSUPPORT));
    assert_eq!(kd::socket(FAM, DGRAM, 3), Err(EPROTONOSUPPORT));
    let s0 = kd::socket(FAM, DGRAM, 0).expect("protocol 0");
    // It is a control socket: it has a node and answers messages.
    let me = nodeinfo(s0, ".").expect("control socket node");
    assert_eq!((me.ty.as_str(), me.hooks), ("socket", 0));
    assert_eq!(sockname(s0), Ok(format!("[{:x}]", me.id)));
    k.finish();
}

/// S6: the sysctls ng_socket owns, and the buffer sizes of a new socket.
#[test]
fn s6_sysctls_and_buffer_sizes() {
    let Some(k) = boot() else { return };
    assert_eq!(sysctl::get("net.graph.family"), Some(32));
    assert_eq!(sysctl::get("net.graph.data.proto"), Some(1));
    assert_eq!(sysctl::get("net.graph.control.proto"), Some(2));
    assert_eq!(sysctl::get("net.graph.maxdgram"), Some(20480));
    assert_eq!(sysctl::get("net.graph.recvspace"), Some(20480));
    let cs = ctl();
    let ds = data();
    for fd in [cs, ds] {
        assert_eq!(kd::getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF), Ok(20480));
        assert_eq!(kd::getsockopt_int(fd, SOL_SOCKET, SO_RCVBUF), Ok(20480));
    }
    k.finish();
}

/// §5.1 step 3 / §6.1: the buffers are reserved at creation from the
/// sysctls; a size above kern.ipc.maxsockbuf makes socket() fail with
/// ENOBUFS (and leaves nothing behind: no node, no PCB).
#[test]
fn buffer_reservation_above_maxsockbuf_is_enobufs() {
    let Some(k) = boot() else { return };
    let lister = ctl();
    let before = list(lister).len();
    assert!(sysctl::set("net.graph.recvspace", 1 << 40));
    assert_eq!(kd::socket(FAM, DGRAM, NG_CONTROL), Err(ENOBUFS));
    assert_eq!(kd::socket(FAM, DGRAM, NG_DATA), Err(ENOBUFS));
    assert!(sysctl::set("net.graph.recvspace", 20480));
    assert!(sysctl::set("net.graph.maxdgram", 1 << 40));
    assert_eq!(kd::socket(FAM, DGRAM, NG_CONTROL), Err(ENOBUFS));
    assert!(sysctl::set("net.graph.maxdgram", 20480));
    assert_eq!(
        list(lister).len(),
        before,
        "no node left by the failed attach"
    );
    assert_eq!(kd::open_sockets_of(FAM), 1);
    let cs = ctl();
    assert_eq!(kd::getsockopt_int(cs, SOL_SOCKET, SO_RCVBUF), Ok(20480));
    k.finish();
}

/// S8: a control socket is an unnamed socket node with no hooks, listed
/// while the socket is open and gone once it is closed.
#[test]
fn s8_control_socket_node_lifetime() {
    let Some(k) = boot() else { return };
    let lister = ctl();
    let cs = ctl();
    let id = nodeinfo(cs, ".").unwrap().id;
    let nodes = list(lister);
    let me = nodes.iter().find(|n| n.id == id).expect("node listed");
    assert_eq!(
        (me.name.as_str(), me.ty.as_str(), me.hooks),
        ("", "socket", 0)
    );
    kd::close(cs).unwrap();
    assert!(list(lister).iter().all(|n| n.id != id), "node gone");
    assert_eq!(nodeinfo(lister, &format!("[{id:x}]:")), Err(ENOENT));
    k.finish();
}

/// S12 / §5.6: getsockname is always a 34-byte sockaddr_ng: the name, or
/// `[id]` (no colon) when unnamed, zero-padded; a 31-character name fits.
#[test]
fn s12_getsockname_forms() {
    let Some(k) = boot() else { return };
    let cs = ctl();
    let id = nodeinfo(cs, ".").unwrap().id;
    let raw = kd::getsockname(cs).unwrap();
    let mut want = vec![34u8, FAM as u8];
    want.extend_from_slice(format!("[{id:x}]").as_bytes());
    want.resize(34, 0);
    assert_eq!(raw, want);
    kd::bind(cs, &sa("gsn")).unwrap();
    assert_eq!(sockname(cs), Ok("gsn".into()));
    let long = "a234567890123456789012345678901"; // 31 characters
    assert_eq!(long.len(), 31);
    kd::bind(cs, &sa(long)).unwrap();
    let raw = kd::getsockname(cs).unwrap();
    assert_eq!((raw.len(), raw[0], raw[1]), (34, 34, FAM as u8));
    assert_eq!(&raw[2..33], long.as_bytes());
    assert_eq!(raw[33], 0);
    // The data socket reports its node; floating, it has none.
    let ds = data();
    assert_eq!(kd::getsockname(ds), Err(EINVAL));
    kd::connect(ds, &sa(&format!("[{id:x}]:"))).unwrap();
    assert_eq!(sockname(ds), Ok(long.into()));
    k.finish();
}

/// S17 / §5.4: connect on a control socket is refused with a console line.
#[test]
fn s17_control_connect_einval_and_console_message() {
    let Some(k) = boot() else { return };
    let (cs, _ds, _) = sock_node("s17");
    let _ = printf::console_take();
    assert_eq!(kd::connect(cs, &sa("s17:")), Err(EINVAL));
    let console = printf::console_take();
    assert!(
        console.contains("program tried to connect control socket to remote node"),
        "{console:?}"
    );
    // The node is unaffected.
    assert_eq!(nodeinfo(cs, ".").unwrap().name, "s17");
    k.finish();
}

/// S18 / §5.3 steps 1–2: no destination → EDESTADDRREQ; control data
/// (cmsg) → EINVAL.
#[test]
fn s18_control_send_without_address() {
    let Some(k) = boot() else { return };
    let cs = ctl();
    let m = msg(GENERIC, wire::cmd::NODEINFO, &[]);
    assert_eq!(kd::sendto(cs, &m, None, 0), Err(EDESTADDRREQ));
    let cmsg = [12u8, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    assert_eq!(
        kd::sendmsg(cs, &m, Some(&sa(".")), Some(&cmsg), 0),
        Err(EINVAL)
    );
    assert_eq!(recv(cs), None, "nothing was sent");
    k.finish();
}

/// S20 / §5.3 step 8: addressing errors come back from sendto.
#[test]
fn s20_messages_to_missing_nodes() {
    let Some(k) = boot() else { return };
    let cs = ctl();
    assert_eq!(nodeinfo(cs, "nonexistent:"), Err(ENOENT));
    assert_eq!(nodeinfo(cs, "[fffff]:"), Err(ENOENT));
    assert_eq!(nodeinfo(cs, ".:nosuchhook"), Err(ENOENT));
    assert_eq!(recv(cs), None);
    k.finish();
}

/// S27 / S28 / §2.1 / §7 disconnect: LINGER is the default (the node
/// survives with zero hooks); NOLINGER makes it go away with its last
/// hook; LINGER undoes NOLINGER; any other socket-cookie command is EINVAL.
/// None of them queues anything to the control socket.
#[test]
fn s27_s28_linger_nolinger_and_unknown_commands() {
    let Some(k) = boot() else { return };
    let (cs, ds, id) = sock_node("ling");
    mkpeer(cs, ".", "hole", "h", "h").unwrap();
    rmhook(cs, ".", "h").unwrap();
    assert_eq!(nodeinfo(cs, ".").unwrap().hooks, 0, "LINGER: node survives");

    assert_eq!(send(cs, ".", SOCK_COOKIE, 3, &[]), Err(EINVAL));
    assert_eq!(send(cs, ".", SOCK_COOKIE, 0, &[]), Err(EINVAL));
    // NOLINGER then LINGER again: still lingers.
    send(cs, ".", SOCK_COOKIE, NOLINGER, &[]).unwrap();
    send(cs, ".", SOCK_COOKIE, LINGER, &[1, 2, 3, 4]).unwrap();
    mkpeer(cs, ".", "hole", "h", "h").unwrap();
    rmhook(cs, ".", "h").unwrap();
    assert_eq!(nodeinfo(cs, ".").unwrap().id, id);
    assert_eq!(recv(cs), None, "socket-cookie messages are consumed");

    // Another node's socket-cookie messages are handled the same way.
    let other = ctl();
    assert_eq!(send(other, "ling:", SOCK_COOKIE, 3, &[]), Err(EINVAL));
    send(other, "ling:", SOCK_COOKIE, NOLINGER, &[]).unwrap();
    assert_eq!(recv(cs), None);
    mkpeer(cs, ".", "hole", "h", "h").unwrap();
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    rmhook(cs, ".", "h").unwrap();
    assert_eq!(nodeinfo(other, "ling:").unwrap().hooks, 1, "one hook left");
    rmhook(cs, ".", "e").unwrap();
    // The node removes itself from a queued function item: let it run.
    sched::run_until_idle();
    // The node went away with its last hook: both sockets are disconnected.
    assert_eq!(nodeinfo(other, "ling:"), Err(ENOENT));
    assert_eq!(kd::getsockname(cs), Err(EINVAL));
    assert_eq!(kd::getsockname(ds), Err(EINVAL));
    assert_eq!(
        kd::sendto(
            cs,
            &msg(GENERIC, wire::cmd::NODEINFO, &[]),
            Some(&sa(".")),
            0
        ),
        Err(EPIPE)
    );
    assert_eq!(kd::sendto(ds, b"x", Some(&sa("e")), 0), Err(EPIPE));
    assert_eq!(kd::recvfrom(ds, 100, 0), Ok((vec![], None, 0)), "EOF");
    assert_eq!(kd::recvfrom(cs, 100, 0), Ok((vec![], None, 0)), "EOF");
    k.finish();
}

/// S29 / §6.3 step 3 / §6.4 / §6.5: with exactly one hook, write() without
/// an address uses it; the echo's reply arrives from hook "e" (sg_len 4).
#[test]
fn s29_data_write_and_read_with_one_hook() {
    let Some(k) = boot() else { return };
    let (cs, ds, _) = sock_node("s29");
    // No hook yet: write() without address fails in the socket layer.
    assert_eq!(kd::sendto(ds, b"x", None, 0), Err(EDESTADDRREQ));
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    assert_eq!(kd::sendto(ds, b"x", None, 0), Ok(1));
    let (d, a) = recv(ds).expect("echoed");
    assert_eq!(d, b"x");
    assert_eq!(a, vec![4u8, FAM as u8, b'e', 0]);
    // An address with an empty name also means "the only hook".
    assert_eq!(kd::sendto(ds, b"y", Some(&sa_raw(&[])), 0), Ok(1));
    assert_eq!(kd::sendto(ds, b"z", Some(&sa("")), 0), Ok(1));
    assert_eq!(recv(ds).unwrap().0, b"y");
    assert_eq!(recv(ds).unwrap().0, b"z");
    // Zero-length packets are delivered as zero-length datagrams.
    assert_eq!(kd::sendto(ds, b"", Some(&sa("e")), 0), Ok(0));
    assert_eq!(recv(ds), Some((vec![], sa("e"))));
    // Datagram boundaries are kept; a short read truncates.
    kd::sendto(ds, b"hello", Some(&sa("e")), 0).unwrap();
    let (d, _, fl) = kd::recvfrom(ds, 2, 0).unwrap();
    assert_eq!((d.as_slice(), fl & MSG_TRUNC), (&b"he"[..], MSG_TRUNC));
    // Two hooks: the socket is no longer "connected", and the module
    // refuses an empty name.
    mkpeer(cs, ".", "hole", "h", "h").unwrap();
    assert_eq!(kd::sendto(ds, b"x", None, 0), Err(EDESTADDRREQ));
    assert_eq!(kd::sendto(ds, b"x", Some(&sa("")), 0), Err(EDESTADDRREQ));
    assert_eq!(
        kd::sendto(ds, b"x", Some(&sa_raw(&[])), 0),
        Err(EDESTADDRREQ)
    );
    assert_eq!(kd::sendto(ds, b"x", Some(&sa("e")), 0), Ok(1));
    assert_eq!(recv(ds).unwrap().0, b"x");
    // Back to one hook: write() works again.
    rmhook(cs, ".", "h").unwrap();
    assert_eq!(kd::sendto(ds, b"w", None, 0), Ok(1));
    assert_eq!(recv(ds).unwrap().0, b"w");
    assert_eq!(recv(ds), None);
    k.finish();
}

/// S31 / §6.3 steps 2 and 4: unknown hook → EHOSTUNREACH; a hook name of
/// 32 or more bytes → EINVAL; an address longer than 34 → EINVAL.
#[test]
fn s31_data_send_to_unknown_hook() {
    let Some(k) = boot() else { return };
    let (cs, ds, _) = sock_node("s31");
    assert_eq!(
        kd::sendto(ds, b"1", Some(&sa("nosuchhook")), 0),
        Err(EHOSTUNREACH)
    );
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    assert_eq!(
        kd::sendto(ds, b"1", Some(&sa("nosuchhook")), 0),
        Err(EHOSTUNREACH)
    );
    mkpeer(cs, ".", "hole", "h", "h").unwrap();
    assert_eq!(
        kd::sendto(ds, b"1", Some(&sa("nosuchhook")), 0),
        Err(EHOSTUNREACH)
    );
    let n32 = [b'h'; 32];
    assert_eq!(kd::sendto(ds, b"1", Some(&sa_raw(&n32)), 0), Err(EINVAL));
    assert_eq!(
        kd::sendto(ds, b"1", Some(&sa_raw(&[b'h'; 33])), 0),
        Err(EINVAL)
    );
    assert_eq!(recv(ds), None);
    k.finish();
}

/// S33 / §5.3 step 10 / §6.3 step 6 / §8: datagrams above net.graph.maxdgram
/// are EMSGSIZE; raising it affects only sockets created afterwards.
#[test]
fn s33_maxdgram() {
    let Some(mut k) = boot() else { return };
    let (cs, ds, _) = sock_node("old");
    mkpeer(cs, ".", "hole", "h", "h").unwrap();
    let big = vec![0x5a; 20481];
    assert_eq!(kd::sendto(ds, &big, Some(&sa("h")), 0), Err(EMSGSIZE));
    assert_eq!(kd::sendto(ds, &big[..20480], Some(&sa("h")), 0), Ok(20480));
    let bigmsg = msg(GENERIC, wire::cmd::NODEINFO, &big[..20481 - HDR]);
    assert_eq!(kd::sendto(cs, &bigmsg, Some(&sa(".")), 0), Err(EMSGSIZE));

    assert!(sysctl::set("net.graph.maxdgram", 65536));
    let (cs2, ds2, _) = sock_node("new");
    mkpeer(cs2, ".", "hole", "h", "h").unwrap();
    assert_eq!(kd::getsockopt_int(ds2, SOL_SOCKET, SO_SNDBUF), Ok(65536));
    assert_eq!(kd::sendto(ds2, &big, Some(&sa("h")), 0), Ok(20481));
    assert_eq!(
        kd::sendto(ds, &big, Some(&sa("h")), 0),
        Err(EMSGSIZE),
        "old socket"
    );
    // A control message of that size goes through on the new socket (the
    // generic NODEINFO ignores its argument) and not on the old one.
    let info = msg(GENERIC, wire::cmd::NODEINFO, &big[..20481 - HDR]);
    assert_eq!(kd::sendto(cs2, &info, Some(&sa(".")), 0), Ok(20481));
    assert!(recv_msg(cs2).is_some());
    assert_eq!(kd::sendto(cs, &info, Some(&sa(".")), 0), Err(EMSGSIZE));
    assert!(sysctl::set("net.graph.maxdgram", 20480));
    // A reload starts from the default again.
    kd::close_all();
    k.allow_unload();
    k.unload().unwrap();
    k.load();
    assert_eq!(sysctl::get("net.graph.maxdgram"), Some(20480));
    k.finish();
}

/// Two socket nodes, `a` and `b`, with a:out connected to b:in.
fn two_nodes() -> ((i32, i32), (i32, i32)) {
    let (ca, da, _) = sock_node("a");
    let (cb, db, _) = sock_node("b");
    connect_hooks(ca, ".", "b:", "out", "in").unwrap();
    ((ca, da), (cb, db))
}

/// S34 / §6.5: data arriving while the receiving data socket's buffer is
/// full is dropped and the (synchronous) sender sees ENOBUFS; what was
/// queued is read back intact; nothing leaks.
#[test]
fn s34_data_receive_buffer_full_enobufs() {
    let Some(k) = boot() else { return };
    let ((_ca, da), (_cb, db)) = two_nodes();
    let mut ok = 0;
    let mut refused = 0;
    for i in 0..100u8 {
        match kd::sendto(da, &[i; 1000], Some(&sa("out")), 0) {
            Ok(1000) => {
                assert_eq!(refused, 0, "nothing is accepted once the buffer is full");
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e, ENOBUFS);
                refused += 1;
            }
            Ok(n) => panic!("short send {n}"),
        }
    }
    assert!((15..=20).contains(&ok), "about 20 KB queued: {ok} packets");
    assert_eq!(ok + refused, 100);
    for i in 0..ok {
        assert_eq!(recv(db), Some((vec![i as u8; 1000], sa("in"))));
    }
    assert_eq!(recv(db), None);
    // Room again.
    assert_eq!(kd::sendto(da, b"again", Some(&sa("out")), 0), Ok(5));
    assert_eq!(recv(db), Some((b"again".to_vec(), sa("in"))));
    k.finish();
}

/// S41 / §5.5 step 5: a control message that does not fit the receiving
/// control socket's buffer is lost and the sender gets ENOBUFS.
#[test]
fn s41_control_receive_buffer_full_enobufs() {
    let Some(k) = boot() else { return };
    assert!(sysctl::set("net.graph.maxdgram", 65536));
    let sender = ctl();
    assert!(sysctl::set("net.graph.maxdgram", 20480));
    let (cb, _db, _) = sock_node("rcv");
    let cookie = 0x1234_5678;
    let big = vec![7u8; 21000];
    assert_eq!(send(sender, "rcv:", cookie, 1, &big), Err(ENOBUFS));
    assert_eq!(recv(cb), None, "the message was lost");
    // Fill it with 8000-byte messages: two fit, the third does not.
    let mid = vec![8u8; 8000];
    assert_eq!(send(sender, "rcv:", cookie, 2, &mid), Ok(()));
    assert_eq!(send(sender, "rcv:", cookie, 3, &mid), Ok(()));
    assert_eq!(send(sender, "rcv:", cookie, 4, &mid), Err(ENOBUFS));
    let sender_id = nodeinfo(sender, ".").unwrap().id;
    for cmd in [2, 3] {
        let (m, from) = recv_msg(cb).expect("queued message");
        assert_eq!((m.cookie, m.cmd, m.data.len()), (cookie, cmd, 8000));
        assert_eq!(from, format!("[{sender_id:x}]:"));
    }
    assert_eq!(recv(cb), None);
    k.finish();
}

/// S43 / §5.5 step 4: an unsolicited command to a socket node is queued to
/// its control socket as-is (header + arglen bytes) from `[sender id]:`,
/// even when the sender has a name; sendto returns once it is queued.
#[test]
fn s43_unsolicited_command_is_delivered() {
    let Some(k) = boot() else { return };
    let (target, _ds, _) = sock_node("tgt");
    let (sender, _ds2, sid) = sock_node("snd");
    let m = msg(GENERIC, wire::cmd::TEXT_STATUS, &[]);
    assert_eq!(kd::sendto(sender, &m, Some(&sa("tgt:")), 0), Ok(m.len()));
    let (d, a) = recv(target).expect("delivered before sendto returned");
    assert_eq!(d, m, "payload is exactly the message");
    let mut from = vec![34u8, FAM as u8];
    from.extend_from_slice(format!("[{sid:x}]:").as_bytes());
    from.resize(34, 0);
    assert_eq!(a, from);
    // A response to it goes back to the sender's control socket.
    let mut resp = NgMsg::decode(&m);
    resp.flags = wire::NGF_RESP;
    resp.data = b"ok\0".to_vec();
    resp.arglen = 3;
    kd::sendto(target, &resp.encode(), Some(&sa(&format!("[{sid:x}]:"))), 0).unwrap();
    let (r, _) = recv_msg(sender).expect("response");
    assert!(r.is_resp());
    assert_eq!((r.token, r.data.as_slice()), (resp.token, &b"ok\0"[..]));
    // NODEINFO to a socket node is answered by the netgraph core.
    assert_eq!(nodeinfo(sender, "tgt:").unwrap().name, "tgt");
    assert_eq!(recv(target), None);
    k.finish();
}

/// S36 / §4: closing the control socket first leaves the node to the data
/// socket (hooks still work, messages to it fail EINVAL); closing the data
/// socket then removes it.
#[test]
fn s36_control_closed_data_stays() {
    let Some(k) = boot() else { return };
    let (cs, ds, id) = sock_node("orphan");
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    kd::close(cs).unwrap();
    let other = ctl();
    let me = nodeinfo(other, "orphan:").expect("node still there");
    assert_eq!((me.id, me.hooks), (id, 1));
    assert!(list(other).iter().any(|n| n.id == id));
    // Unsolicited messages to it are refused with EINVAL (and lost).
    assert_eq!(send(other, "orphan:", 0x1234, 1, &[]), Err(EINVAL));
    assert_eq!(
        send(other, "orphan:", GENERIC, wire::cmd::TEXT_STATUS, &[]),
        Err(EINVAL)
    );
    // Data still flows through its hook.
    assert_eq!(kd::sendto(ds, b"d", Some(&sa("e")), 0), Ok(1));
    assert_eq!(recv(ds), Some((b"d".to_vec(), sa("e"))));
    assert_eq!(sockname(ds), Ok("orphan".into()));
    kd::close(ds).unwrap();
    assert_eq!(nodeinfo(other, "orphan:"), Err(ENOENT));
    assert!(list(other).iter().all(|n| n.id != id));
    // The echo hung only off it: gone too.
    assert!(list(other).iter().all(|n| n.ty != "echo"));
    k.finish();
}

/// Closing the data socket first leaves the node to the control socket.
#[test]
fn close_data_first_node_stays() {
    let Some(k) = boot() else { return };
    let (cs, ds, id) = sock_node("keep");
    kd::close(ds).unwrap();
    assert_eq!(nodeinfo(cs, ".").unwrap().id, id);
    // Another data socket may attach now.
    let ds2 = data();
    assert_eq!(kd::connect(ds2, &sa("keep:")), Ok(()));
    k.finish();
}

/// S40 / §5.3 step 3: a control destination longer than 34 bytes of
/// sockaddr (NG_NODESIZ + 2) is EINVAL, even if the path exists.
#[test]
fn s40_control_destination_longer_than_34() {
    let Some(k) = boot() else { return };
    let long = "n234567890123456789012345678901"; // 31 characters
    let (cs, _ds, _) = sock_node(long);
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    // libnetgraph's form: strlen + 3 = 2 + 32 + 1 = 35.
    let path = format!("{long}:");
    assert_eq!(sa(&path).len(), 35);
    assert_eq!(nodeinfo(cs, &path), Err(EINVAL));
    assert_eq!(nodeinfo(cs, &format!("{long}:e")), Err(EINVAL));
    // Exactly 34 (no NUL) still works.
    let m = msg(GENERIC, wire::cmd::NODEINFO, &[]);
    assert_eq!(
        kd::sendto(cs, &m, Some(&sa_raw(path.as_bytes())), 0),
        Ok(m.len())
    );
    let (r, _) = recv_msg(cs).unwrap();
    assert_eq!(wire::NodeInfo::decode_at(&r.data, 0).name, long);
    assert_eq!(recv(cs), None);
    k.finish();
}

/// §4 / §7 shutdown: the node is shut down while both sockets are open:
/// sends fail EPIPE, receives drain then report EOF, getsockname EINVAL;
/// closing them afterwards frees everything.
#[test]
fn node_shutdown_while_sockets_open() {
    let Some(k) = boot() else { return };
    let (cs, ds, id) = sock_node("victim");
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    // Something queued on each socket before the shutdown.
    kd::sendto(ds, b"queued", Some(&sa("e")), 0).unwrap();
    send(cs, ".", GENERIC, wire::cmd::NODEINFO, &[]).unwrap();
    let killer = ctl();
    assert_eq!(shutdown(killer, "victim:"), Ok(()));
    assert_eq!(nodeinfo(killer, &format!("[{id:x}]:")), Err(ENOENT));
    assert!(list(killer).iter().all(|n| n.ty != "echo"));
    assert_eq!(kd::getsockname(cs), Err(EINVAL));
    assert_eq!(kd::getsockname(ds), Err(EINVAL));
    assert_eq!(kd::sendto(ds, b"x", Some(&sa("e")), 0), Err(EPIPE));
    assert_eq!(kd::sendto(ds, b"x", None, 0), Err(EPIPE));
    let m = msg(GENERIC, wire::cmd::NODEINFO, &[]);
    assert_eq!(kd::sendto(cs, &m, Some(&sa(".")), 0), Err(EPIPE));
    assert_eq!(recv(ds), Some((b"queued".to_vec(), sa("e"))));
    assert!(recv_msg(cs).is_some(), "the earlier reply drains first");
    assert_eq!(kd::recvfrom(ds, 100, 0), Ok((vec![], None, 0)), "then EOF");
    assert_eq!(kd::recvfrom(cs, 100, 0), Ok((vec![], None, 0)), "then EOF");
    assert!(kd::readable(cs) && kd::readable(ds));
    // A data socket cannot attach to the dead node, and bind has no node.
    let ds2 = data();
    assert_eq!(kd::connect(ds2, &sa("victim:")), Err(ENOENT));
    assert_eq!(kd::bind(cs, &sa("again")), Err(EINVAL));
    k.finish();
}

/// §6.1–§6.3, §6.6: data socket connect and send errors.
#[test]
fn data_socket_connect_errors() {
    let Some(k) = boot() else { return };
    let (cs, ds, id) = sock_node("dc");
    // Already attached.
    assert_eq!(kd::connect(ds, &sa("dc:")), Err(EISCONN));
    let (_cs2, _ds2, _) = sock_node("dc2");
    assert_eq!(kd::connect(ds, &sa("dc2:")), Err(EISCONN));
    // A second data socket for the same node.
    let d2 = data();
    assert_eq!(kd::connect(d2, &sa("dc:")), Err(EADDRINUSE));
    assert_eq!(kd::connect(d2, &sa(&format!("[{id:x}]:"))), Err(EADDRINUSE));
    // Not a socket node.
    mkpeer(cs, ".", "hole", "h", "h").unwrap();
    name(cs, ".:h", "aHole").unwrap();
    assert_eq!(kd::connect(d2, &sa("aHole:")), Err(EINVAL));
    // A path through a hook to a socket node is fine as a path, but that
    // node has its data socket.
    assert_eq!(kd::connect(d2, &sa("aHole:h")), Err(EADDRINUSE));
    // Unknown node, relative path, malformed path.
    assert_eq!(kd::connect(d2, &sa("nosuch:")), Err(ENOENT));
    assert_eq!(kd::connect(d2, &sa("[ffff]:")), Err(ENOENT));
    assert_eq!(kd::connect(d2, &sa("dc")), Err(EINVAL));
    assert_eq!(kd::connect(d2, &sa(".")), Err(EINVAL));
    assert_eq!(kd::connect(d2, &sa("")), Err(EINVAL));
    // Still floating: sendto with an address is ENOTCONN, without one the
    // socket layer says EDESTADDRREQ; getsockname has no node; bind is
    // not supported on data sockets.
    assert_eq!(kd::sendto(d2, b"x", Some(&sa("h")), 0), Err(ENOTCONN));
    assert_eq!(kd::sendto(d2, b"x", None, 0), Err(EDESTADDRREQ));
    assert_eq!(kd::getsockname(d2), Err(EINVAL));
    assert_eq!(kd::bind(d2, &sa("x")), Err(EOPNOTSUPP));
    assert_eq!(kd::bind(ds, &sa("x")), Err(EOPNOTSUPP));
    // After the first data socket closes, the second may attach.
    kd::close(ds).unwrap();
    assert_eq!(kd::connect(d2, &sa("dc:")), Ok(()));
    assert_eq!(kd::sendto(d2, b"x", Some(&sa("h")), 0), Ok(1));
    k.finish();
}

/// §5.2 / §10.5: bind address and name rules.
#[test]
fn bind_rules() {
    let Some(k) = boot() else { return };
    let cs = ctl();
    // Length rules (sg_len is the length passed, as getsockaddr sets it).
    assert_eq!(
        kd::bind(cs, &[]),
        Err(EINVAL),
        "shorter than a sockaddr header"
    );
    assert_eq!(kd::bind(cs, &[1]), Err(EINVAL));
    assert_eq!(kd::bind(cs, &sa_raw(&[])), Err(EINVAL), "sg_len 2");
    assert_eq!(kd::bind(cs, &sa_raw(b"\0")), Err(EINVAL), "sg_len 3");
    assert_eq!(kd::bind(cs, &sa_raw(b"\0\0")), Err(EINVAL), "empty name");
    assert_eq!(kd::bind(cs, &sa("")), Err(EINVAL), "empty name, sg_len 3");
    // The NUL must be exactly at sg_data[sg_len - 3].
    assert_eq!(kd::bind(cs, &sa_raw(b"abc")), Err(EINVAL), "no NUL");
    assert_eq!(
        kd::bind(cs, &sa_raw(b"abc\0d")),
        Err(EINVAL),
        "NUL not last"
    );
    // Longest name: 31 characters + NUL = sg_len 34; 32 characters: 35.
    let n31 = "b".repeat(31);
    let n32 = "b".repeat(32);
    assert_eq!(kd::bind(cs, &sa(&n32)), Err(EINVAL));
    assert_eq!(kd::bind(cs, &sa_raw(n32.as_bytes())), Err(EINVAL));
    assert_eq!(kd::bind(cs, &vec![0u8; 255]), Err(EINVAL));
    assert_eq!(kd::bind(cs, &vec![0u8; 256]), Err(ENAMETOOLONG));
    // Name syntax.
    for bad in ["a.b", "a:b", ":", ".", "[1f]", "[0123abc]"] {
        assert_eq!(kd::bind(cs, &sa(bad)), Err(EINVAL), "{bad:?}");
    }
    assert_eq!(
        sockname(cs).unwrap().chars().next(),
        Some('['),
        "still unnamed"
    );
    // Valid names; rebinding renames; the same name again is a no-op.
    assert_eq!(kd::bind(cs, &sa(&n31)), Ok(()));
    assert_eq!(sockname(cs), Ok(n31.clone()));
    assert_eq!(kd::bind(cs, &sa("first")), Ok(()));
    assert_eq!(kd::bind(cs, &sa("first")), Ok(()));
    assert_eq!(sockname(cs), Ok("first".into()));
    assert_eq!(
        nodeinfo(cs, &format!("{n31}:")).map(|_| ()),
        Err(EINVAL),
        "(path too long anyway)"
    );
    // Duplicates.
    let cs2 = ctl();
    assert_eq!(kd::bind(cs2, &sa("first")), Err(EADDRINUSE));
    assert_eq!(kd::bind(cs, &sa("second")), Ok(()));
    assert_eq!(kd::bind(cs2, &sa("first")), Ok(()), "old name released");
    assert_eq!(nodeinfo(cs2, "second:").unwrap().name, "second");
    assert_eq!(nodeinfo(cs, "first:").unwrap().name, "first");
    // "[0]" does not parse as an ID, so it is an ordinary name.
    assert_eq!(kd::bind(cs, &sa("[0]")), Ok(()));
    // Only sg_data[sg_len - 3] is checked: an earlier NUL ends the name.
    assert_eq!(kd::bind(cs, &sa_raw(b"ab\0\0")), Ok(()));
    assert_eq!(sockname(cs), Ok("ab".into()));
    k.finish();
}

/// Deliberate improvement (ng_socket.4 DEVIATIONS): a control payload that
/// is not exactly a header plus `arglen` bytes is refused with EINVAL
/// before anything reads it; a correct one of the same kind works.
#[test]
fn deviation_control_payload_must_match_arglen() {
    let Some(k) = boot() else { return };
    let cs = ctl();
    let to = sa(".");
    let info = |arglen: u32, args: &[u8]| {
        msg_raw(NG_VERSION, arglen, GENERIC, wire::cmd::NODEINFO, 1, args)
    };
    let good = info(0, &[]);
    for len in [0usize, 1, 4, 55] {
        assert_eq!(
            kd::sendto(cs, &good[..len], Some(&to), 0),
            Err(EINVAL),
            "{len}"
        );
    }
    assert_eq!(kd::sendto(cs, &info(1, &[]), Some(&to), 0), Err(EINVAL));
    assert_eq!(kd::sendto(cs, &info(0, &[0]), Some(&to), 0), Err(EINVAL));
    assert_eq!(kd::sendto(cs, &info(3, &[1, 2]), Some(&to), 0), Err(EINVAL));
    assert_eq!(
        kd::sendto(cs, &info(u32::MAX, &[1, 2]), Some(&to), 0),
        Err(EINVAL)
    );
    assert_eq!(recv(cs), None);
    assert_eq!(kd::sendto(cs, &info(2, &[1, 2]), Some(&to), 0), Ok(58));
    assert!(recv_msg(cs).is_some());
    k.finish();
}

/// S2: by default the module, like FreeBSD's, refuses every unload, with or
/// without netgraph sockets.
#[test]
fn unload_refused_by_default() {
    let Some(mut k) = boot() else { return };
    assert_eq!(k.unload(), Err(EBUSY), "no socket exists");
    let (cs, _ds, _) = sock_node("pinned");
    assert_eq!(k.unload(), Err(EBUSY), "sockets exist");
    kd::close(cs).unwrap();
    assert_eq!(
        ngharness::kern::sysctl::get("net.graph.socket.allow_unload"),
        Some(0)
    );
    k.finish();
}

/// Opt-in improvement (ng_socket.4 DEVIATIONS, S2): with
/// net.graph.socket.allow_unload=1 the module still refuses to unload while
/// any netgraph socket exists — a floating data socket too — unloads when
/// none does, and works again after a new load, which starts with the
/// default (every unload refused) again. Without the module,
/// `socket(PF_NETGRAPH, ...)` is EAFNOSUPPORT, on which libnetgraph loads
/// the module (the kernel's half of S1).
#[test]
fn deviation_unload_refused_while_sockets_exist() {
    let Some(mut k) = boot() else { return };
    k.allow_unload();
    let (cs, ds, _) = sock_node("busy");
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    assert_eq!(k.unload(), Err(EBUSY));
    kd::close(cs).unwrap();
    assert_eq!(
        k.unload(),
        Err(EBUSY),
        "the data socket still holds the node"
    );
    kd::close(ds).unwrap();
    let floating = data();
    assert_eq!(k.unload(), Err(EBUSY), "a floating data socket counts");
    kd::close(floating).unwrap();
    assert_eq!(k.unload(), Ok(()));
    assert!(!kd::registered_families().iter().any(|(f, _)| *f == FAM));
    assert_eq!(kd::socket(FAM, DGRAM, NG_CONTROL), Err(EAFNOSUPPORT));
    assert_eq!(kd::socket(FAM, DGRAM, NG_DATA), Err(EAFNOSUPPORT));
    expect_clean();
    // Load again and use it again.
    k.load();
    let (cs, ds, _) = sock_node("busy");
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    assert_eq!(kd::sendto(ds, b"again", None, 0), Ok(5));
    assert_eq!(recv(ds), Some((b"again".to_vec(), sa("e"))));
    assert_eq!(k.unload(), Err(EBUSY));
    kd::close(cs).unwrap();
    kd::close(ds).unwrap();
    assert_eq!(
        k.unload(),
        Err(EBUSY),
        "a new load starts with net.graph.socket.allow_unload=0"
    );
    k.finish();
}

/// §7 newhook/findhook: a node with many hooks finds each by name through
/// the hook hash (grown several times from 16 buckets), and a removed hook is
/// gone (EHOSTUNREACH) while the others stay reachable.
#[test]
fn many_hooks_found_by_name() {
    let Some(k) = boot() else { return };
    let (cs, ds, _) = sock_node("manyhooks");
    const N: usize = 300;
    for i in 0..N {
        let h = format!("h{i}");
        mkpeer(cs, ".", "hole", &h, "x").unwrap();
    }
    for i in (0..N).step_by(7) {
        let h = format!("h{i}");
        assert_eq!(kd::sendto(ds, b"1", Some(&sa(&h)), 0), Ok(1), "hook {h}");
    }
    for i in (0..N).step_by(3) {
        rmhook(cs, ".", &format!("h{i}")).unwrap();
    }
    for i in 0..N {
        let h = format!("h{i}");
        let want = if i % 3 == 0 { Err(EHOSTUNREACH) } else { Ok(1) };
        assert_eq!(kd::sendto(ds, b"1", Some(&sa(&h)), 0), want, "hook {h}");
    }
    k.finish();
}
