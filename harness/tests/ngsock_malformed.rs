//! Malformed input to ng_socket, as a table: short and oversized socket
//! addresses, missing NULs, truncated or lying message headers, oversized
//! and zero-length datagrams on control and data sockets. Each row must give
//! its specified errno (or succeed), leave no allocation or mbuf behind once
//! whatever it queued has been read, record no violation, and not panic.

mod ngsock_util;

use ngharness::kern::domain::{self as kd, Fd};
use ngharness::kern::{malloc, mbuf as kmbuf, sched, take_violations};
use ngharness::scenario::msg::{self as wire, cmd};
use ngsock_util::*;

/// What a row expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The call fails with this errno; nothing is queued anywhere.
    Err(Errno),
    /// The call succeeds (returns this many bytes for a send) and queues
    /// nothing.
    Ok(usize),
    /// The call succeeds and exactly one datagram comes back on the socket
    /// used (a reply, or the echoed packet) of this length.
    OkReply(usize, usize),
}

struct Env {
    cs: Fd,
    ds: Fd,
    spare: Fd,
}

type Call = Box<dyn Fn(&Env) -> Result<usize, Errno>>;

struct Row {
    what: &'static str,
    call: Call,
    want: Want,
}

fn row(
    what: &'static str,
    want: Want,
    call: impl Fn(&Env) -> Result<usize, Errno> + 'static,
) -> Row {
    Row {
        what,
        call: Box::new(call),
        want,
    }
}

fn info() -> Vec<u8> {
    msg(GENERIC, cmd::NODEINFO, &[])
}

/// A NODEINFO reply: header + struct nodeinfo.
const INFO_REPLY: usize = HDR + 72;

/// `sockaddr_ng` with an explicit sg_len byte but `len` bytes long.
fn sa_len(len: usize, text: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; len];
    if let Some(b) = v.get_mut(1) {
        *b = FAM as u8;
    }
    for (d, s) in v.iter_mut().skip(2).zip(text) {
        *d = *s;
    }
    v
}

fn rows() -> Vec<Row> {
    use Want::*;
    let cmsg: [u8; 12] = [12, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    let v = NG_VERSION;
    let mkp = wire::mkpeer("hole", "x", "x");
    vec![
        // --- control socket: destination address ---------------------------
        row("ctl sendto, sockaddr len 0", Err(EINVAL), |e| {
            kd::sendto(e.cs, &info(), Some(&[]), 0)
        }),
        row("ctl sendto, sockaddr len 1", Err(EINVAL), |e| {
            kd::sendto(e.cs, &info(), Some(&[1]), 0)
        }),
        row(
            "ctl sendto, sockaddr len 2 (empty path = own node)",
            OkReply(HDR, INFO_REPLY),
            |e| kd::sendto(e.cs, &info(), Some(&sa_len(2, b"")), 0),
        ),
        row(
            "ctl sendto, path without NUL",
            OkReply(HDR, INFO_REPLY),
            |e| kd::sendto(e.cs, &info(), Some(&sa_raw(b"mal:")), 0),
        ),
        row(
            "ctl sendto, embedded NUL ends the path",
            OkReply(HDR, INFO_REPLY),
            |e| kd::sendto(e.cs, &info(), Some(&sa_raw(b".\0nosuch:")), 0),
        ),
        row("ctl sendto, sg_len 34 of garbage", Err(ENOENT), |e| {
            kd::sendto(e.cs, &info(), Some(&sa_raw(&[b'q'; 32])), 0)
        }),
        row("ctl sendto, sg_len 35", Err(EINVAL), |e| {
            kd::sendto(e.cs, &info(), Some(&sa_len(35, b"mal:")), 0)
        }),
        row("ctl sendto, sg_len 255", Err(EINVAL), |e| {
            kd::sendto(e.cs, &info(), Some(&sa_len(255, b"mal:")), 0)
        }),
        row(
            "ctl sendto, sockaddr longer than SOCK_MAXADDRLEN",
            Err(ENAMETOOLONG),
            |e| kd::sendto(e.cs, &info(), Some(&sa_len(256, b"mal:")), 0),
        ),
        row("ctl sendto, malformed path", Err(EINVAL), |e| {
            kd::sendto(e.cs, &info(), Some(&sa("a:b:c")), 0)
        }),
        row("ctl sendto, empty node part", Err(EINVAL), |e| {
            kd::sendto(e.cs, &info(), Some(&sa(":")), 0)
        }),
        row("ctl sendto, '..' in path", Err(EINVAL), |e| {
            kd::sendto(e.cs, &info(), Some(&sa(".:e..e")), 0)
        }),
        row("ctl send, no address", Err(EDESTADDRREQ), |e| {
            kd::sendto(e.cs, &info(), None, 0)
        }),
        row("ctl sendmsg with control data", Err(EINVAL), move |e| {
            kd::sendmsg(e.cs, &info(), Some(&sa(".")), Some(&cmsg), 0)
        }),
        // --- control socket: payload ----------------------------------------
        row("ctl zero-length datagram", Err(EINVAL), |e| {
            kd::sendto(e.cs, &[], Some(&sa(".")), 0)
        }),
        row("ctl 1-byte payload", Err(EINVAL), move |e| {
            kd::sendto(e.cs, &[v], Some(&sa(".")), 0)
        }),
        row("ctl 55-byte payload", Err(EINVAL), |e| {
            kd::sendto(e.cs, &info()[..55], Some(&sa(".")), 0)
        }),
        row("ctl header only (valid)", OkReply(HDR, INFO_REPLY), |e| {
            kd::sendto(e.cs, &info(), Some(&sa(".")), 0)
        }),
        row("ctl arglen 1 beyond the payload", Err(EINVAL), move |e| {
            kd::sendto(
                e.cs,
                &msg_raw(v, 5, GENERIC, cmd::NODEINFO, 1, &[0; 4]),
                Some(&sa(".")),
                0,
            )
        }),
        row("ctl arglen 1 short of the payload", Err(EINVAL), move |e| {
            kd::sendto(
                e.cs,
                &msg_raw(v, 3, GENERIC, cmd::NODEINFO, 1, &[0; 4]),
                Some(&sa(".")),
                0,
            )
        }),
        row("ctl arglen 0 with trailing bytes", Err(EINVAL), move |e| {
            kd::sendto(
                e.cs,
                &msg_raw(v, 0, GENERIC, cmd::NODEINFO, 1, &[0; 10]),
                Some(&sa(".")),
                0,
            )
        }),
        row("ctl arglen 0xffffffff", Err(EINVAL), move |e| {
            kd::sendto(
                e.cs,
                &msg_raw(v, u32::MAX, GENERIC, cmd::NODEINFO, 1, &[]),
                Some(&sa(".")),
                0,
            )
        }),
        row(
            "ctl header-only MKPEER claiming a 96-byte argument",
            Err(EINVAL),
            move |e| {
                kd::sendto(
                    e.cs,
                    &msg_raw(v, 96, GENERIC, cmd::MKPEER, 1, &[]),
                    Some(&sa(".")),
                    0,
                )
            },
        ),
        row("ctl version 7", Err(EINVAL), |e| {
            kd::sendto(
                e.cs,
                &msg_raw(7, 0, GENERIC, cmd::NODEINFO, 1, &[]),
                Some(&sa(".")),
                0,
            )
        }),
        row("ctl version 9", Err(EINVAL), |e| {
            kd::sendto(
                e.cs,
                &msg_raw(9, 0, GENERIC, cmd::NODEINFO, 1, &[]),
                Some(&sa(".")),
                0,
            )
        }),
        row("ctl version 0, all-zero header", Err(EINVAL), |e| {
            kd::sendto(e.cs, &[0; HDR], Some(&sa(".")), 0)
        }),
        row("ctl MKPEER with a 95-byte argument", Err(EINVAL), {
            let a = mkp.clone();
            move |e| {
                kd::sendto(
                    e.cs,
                    &msg(GENERIC, cmd::MKPEER, &a[..95]),
                    Some(&sa(".")),
                    0,
                )
            }
        }),
        row("ctl MKPEER with a 97-byte argument", Err(EINVAL), {
            let mut a = mkp.clone();
            a.push(0);
            move |e| kd::sendto(e.cs, &msg(GENERIC, cmd::MKPEER, &a), Some(&sa(".")), 0)
        }),
        row(
            "ctl MKPEER, type name without NUL (32 bytes)",
            Err(ENOENT),
            |e| {
                let mut a = wire::mkpeer("", "x", "x");
                a[..32].fill(b't');
                kd::sendto(e.cs, &msg(GENERIC, cmd::MKPEER, &a), Some(&sa(".")), 0)
            },
        ),
        row("ctl MKPEER, empty type name", Err(ENOENT), |e| {
            let a = wire::mkpeer("", "x", "x");
            kd::sendto(e.cs, &msg(GENERIC, cmd::MKPEER, &a), Some(&sa(".")), 0)
        }),
        row("ctl MKPEER of an unknown type (S22)", Err(ENOENT), |e| {
            let a = wire::mkpeer("nosuchtype", "x", "x");
            kd::sendto(e.cs, &msg(GENERIC, cmd::MKPEER, &a), Some(&sa(".")), 0)
        }),
        row("ctl MKPEER of type socket (S24)", Err(EINVAL), |e| {
            let a = wire::mkpeer("socket", "x", "x");
            kd::sendto(e.cs, &msg(GENERIC, cmd::MKPEER, &a), Some(&sa(".")), 0)
        }),
        row("ctl NAME with an empty argument", Err(EINVAL), |e| {
            kd::sendto(e.cs, &msg(GENERIC, cmd::NAME, &[]), Some(&sa(".")), 0)
        }),
        row("ctl CONNECT with a 575-byte argument", Err(EINVAL), |e| {
            let a = wire::connect("spare:", "a", "b");
            kd::sendto(
                e.cs,
                &msg(GENERIC, cmd::CONNECT, &a[..575]),
                Some(&sa(".")),
                0,
            )
        }),
        row("ctl socket-cookie command 3 (S28)", Err(EINVAL), |e| {
            kd::sendto(e.cs, &msg(SOCK_COOKIE, 3, &[]), Some(&sa(".")), 0)
        }),
        row("ctl socket-cookie command 0xffffffff", Err(EINVAL), |e| {
            kd::sendto(e.cs, &msg(SOCK_COOKIE, u32::MAX, &[]), Some(&sa(".")), 0)
        }),
        row("ctl 20481-byte datagram", Err(EMSGSIZE), |e| {
            kd::sendto(
                e.cs,
                &msg(GENERIC, cmd::NODEINFO, &[0; 20481 - HDR]),
                Some(&sa(".")),
                0,
            )
        }),
        row("ctl 20480-byte datagram", OkReply(20480, INFO_REPLY), |e| {
            kd::sendto(
                e.cs,
                &msg(GENERIC, cmd::NODEINFO, &[0; 20480 - HDR]),
                Some(&sa(".")),
                0,
            )
        }),
        row(
            "ctl unsolicited message to another socket node",
            OkReply(HDR + 3, HDR + 3),
            |e| {
                // Queued to `spare`, not to the sender; read back below.
                kd::sendto(e.cs, &msg(0x4242, 9, &[1, 2, 3]), Some(&sa("spare:")), 0)
            },
        ),
        // --- data socket ------------------------------------------------------
        row("data sendto, sockaddr len 0", Err(EINVAL), |e| {
            kd::sendto(e.ds, b"x", Some(&[]), 0)
        }),
        row("data sendto, sockaddr len 1", Err(EINVAL), |e| {
            kd::sendto(e.ds, b"x", Some(&[1]), 0)
        }),
        row(
            "data sendto, sockaddr len 2 (the only hook)",
            OkReply(1, 1),
            |e| kd::sendto(e.ds, b"x", Some(&sa_len(2, b"")), 0),
        ),
        row("data sendto, hook name without NUL", OkReply(1, 1), |e| {
            kd::sendto(e.ds, b"x", Some(&sa_raw(b"e")), 0)
        }),
        row(
            "data sendto, embedded NUL ends the hook name",
            OkReply(1, 1),
            |e| kd::sendto(e.ds, b"x", Some(&sa_raw(b"e\0junk")), 0),
        ),
        row("data sendto, unknown hook", Err(EHOSTUNREACH), |e| {
            kd::sendto(e.ds, b"x", Some(&sa("ee")), 0)
        }),
        row("data sendto, 31-byte hook name", Err(EHOSTUNREACH), |e| {
            kd::sendto(e.ds, b"x", Some(&sa_raw(&[b'e'; 31])), 0)
        }),
        row("data sendto, 32-byte hook name", Err(EINVAL), |e| {
            kd::sendto(e.ds, b"x", Some(&sa_raw(&[b'e'; 32])), 0)
        }),
        row("data sendto, sg_len 35", Err(EINVAL), |e| {
            kd::sendto(e.ds, b"x", Some(&sa_len(35, b"e")), 0)
        }),
        row("data sendto, sg_len 255", Err(EINVAL), |e| {
            kd::sendto(e.ds, b"x", Some(&sa_len(255, b"e")), 0)
        }),
        row("data sendmsg with control data", Err(EINVAL), move |e| {
            kd::sendmsg(e.ds, b"x", Some(&sa("e")), Some(&cmsg), 0)
        }),
        row("data zero-length datagram to a hook", OkReply(0, 0), |e| {
            kd::sendto(e.ds, &[], Some(&sa("e")), 0)
        }),
        row("data zero-length write (one hook)", OkReply(0, 0), |e| {
            kd::sendto(e.ds, &[], None, 0)
        }),
        row("data 20481-byte datagram", Err(EMSGSIZE), |e| {
            kd::sendto(e.ds, &[0; 20481], Some(&sa("e")), 0)
        }),
        row("data 20481-byte write", Err(EMSGSIZE), |e| {
            kd::sendto(e.ds, &[0; 20481], None, 0)
        }),
        row("data 20000-byte datagram", OkReply(20000, 20000), |e| {
            kd::sendto(e.ds, &[0; 20000], Some(&sa("e")), 0)
        }),
        row("floating data socket sendto", Err(ENOTCONN), |e| {
            kd::sendto(e.spare, b"x", Some(&sa("e")), 0)
        }),
        row("floating data socket write", Err(EDESTADDRREQ), |e| {
            kd::sendto(e.spare, b"x", None, 0)
        }),
        row(
            "floating data socket zero-length sendto",
            Err(ENOTCONN),
            |e| kd::sendto(e.spare, &[], Some(&sa("e")), 0),
        ),
        // --- data socket connect ----------------------------------------------
        row("data connect, sockaddr len 0", Err(EINVAL), |e| {
            kd::connect(e.spare, &[]).map(|()| 0)
        }),
        row("data connect, sockaddr len 1", Err(EINVAL), |e| {
            kd::connect(e.spare, &[1]).map(|()| 0)
        }),
        row("data connect, sockaddr len 2", Err(EINVAL), |e| {
            kd::connect(e.spare, &sa_len(2, b"")).map(|()| 0)
        }),
        row("data connect, relative path", Err(EINVAL), |e| {
            kd::connect(e.spare, &sa("mal")).map(|()| 0)
        }),
        row("data connect, 253 bytes without NUL", Err(EINVAL), |e| {
            kd::connect(e.spare, &sa_raw(&[b'x'; 253])).map(|()| 0)
        }),
        row(
            "data connect, long unknown absolute path",
            Err(ENOENT),
            |e| {
                let mut p = b"nosuch:".to_vec();
                p.resize(253, b'h');
                kd::connect(e.spare, &sa_raw(&p)).map(|()| 0)
            },
        ),
        row(
            "data connect, path through a missing hook",
            Err(ENOENT),
            |e| kd::connect(e.spare, &sa("mal:nosuchhook")).map(|()| 0),
        ),
        row(
            "data connect, node with a data socket",
            Err(EADDRINUSE),
            |e| kd::connect(e.spare, &sa_raw(b"mal:")).map(|()| 0),
        ),
        row("data connect, non-socket node", Err(EINVAL), |e| {
            kd::connect(e.spare, &sa("mal:e")).map(|()| 0)
        }),
        row("data connect, attached socket", Err(EISCONN), |e| {
            kd::connect(e.ds, &sa("spare:")).map(|()| 0)
        }),
        // --- control socket bind / connect -------------------------------------
        row("ctl bind, sockaddr len 2", Err(EINVAL), |e| {
            kd::bind(e.cs, &sa_len(2, b"")).map(|()| 0)
        }),
        row("ctl bind, sg_len 3", Err(EINVAL), |e| {
            kd::bind(e.cs, &sa_len(3, b"")).map(|()| 0)
        }),
        row("ctl bind, no NUL at sg_len - 3", Err(EINVAL), |e| {
            kd::bind(e.cs, &sa_raw(b"mal")).map(|()| 0)
        }),
        row("ctl bind, sg_len 35", Err(EINVAL), |e| {
            kd::bind(e.cs, &sa_len(35, b"mal")).map(|()| 0)
        }),
        row(
            "ctl bind, name held by another node",
            Err(EADDRINUSE),
            |e| kd::bind(e.cs, &sa("spare")).map(|()| 0),
        ),
        row("ctl bind, its own name again", Ok(0), |e| {
            kd::bind(e.cs, &sa("mal")).map(|()| 0)
        }),
        row("ctl connect", Err(EINVAL), |e| {
            kd::connect(e.cs, &sa("spare:")).map(|()| 0)
        }),
        row("ctl connect, sockaddr len 2", Err(EINVAL), |e| {
            kd::connect(e.cs, &sa_len(2, b"")).map(|()| 0)
        }),
        row("data bind", Err(EOPNOTSUPP), |e| {
            kd::bind(e.ds, &sa("x")).map(|()| 0)
        }),
    ]
}

#[test]
fn malformed_input_table() {
    let Some(k) = boot() else { return };
    let (cs, ds, _) = sock_node("mal");
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    let (spare_cs, _spare_ds, _) = sock_node("spare");
    let spare = data();
    let env = Env { cs, ds, spare };
    let mut failures = Vec::new();
    let rows = rows();
    assert!(rows.len() > 70, "{}", rows.len());
    for r in rows {
        sched::run_until_idle();
        let (m0, b0) = (malloc::live_total(), kmbuf::live());
        let got = (r.call)(&env);
        sched::run_until_idle();
        let mut problems = Vec::new();
        match (r.want, got) {
            (Want::Err(e), Err(g)) if e == g => {}
            (Want::Ok(n), Ok(g)) | (Want::OkReply(n, _), Ok(g)) if n == g => {}
            (w, g) => problems.push(format!("wanted {w:?}, got {g:?}")),
        }
        // What came back, on the socket that sent, or on `spare` for the
        // unsolicited message.
        let mut back: Vec<usize> = Vec::new();
        for fd in [cs, ds, spare_cs] {
            while let Some((d, _)) = recv(fd) {
                back.push(d.len());
            }
        }
        let want_back: Vec<usize> = match r.want {
            Want::OkReply(_, n) => vec![n],
            _ => vec![],
        };
        if back != want_back {
            problems.push(format!("queued {back:?}, wanted {want_back:?}"));
        }
        let (m1, b1) = (malloc::live_total(), kmbuf::live());
        if (m1, b1) != (m0, b0) {
            problems.push(format!("malloc blocks {m0} -> {m1}, mbufs {b0} -> {b1}"));
        }
        let v = take_violations();
        if !v.is_empty() {
            problems.push(format!("violations {v:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", r.what, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The node and its sockets are intact after all that.
    assert_eq!(nodeinfo(cs, ".").unwrap().name, "mal");
    assert_eq!(kd::sendto(ds, b"ok", None, 0), Ok(2));
    assert_eq!(recv(ds), Some((b"ok".to_vec(), sa("e"))));
    k.finish();
}
