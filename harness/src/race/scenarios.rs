//! The race scenarios: the graph is built first (by the driver), then the
//! racing operations run at once on kernel threads of their own, together
//! with the netgraph queue threads, the network thread (upcalls) and the
//! timer thread; the schedule comes from the seed. Afterwards the runner
//! tears everything down and runs the end checks (leaks, locks, quiescence).
//!
//! A scenario fails on any contract violation, and on an outcome no
//! interleaving may produce (its `Err`).

use std::io::Write as _;
use std::net::TcpStream;

use super::client::{ngctl, ngctl_ok, port_in, tcp_listener, udp_peer, Proc, Sess};
use crate::kern::loader;
use crate::kern::smp;
use crate::kern::thread::{self as kthread, Cred};
use crate::scenario::msg;

/// A race scenario.
pub struct RaceScenario {
    /// Name (`--scenario NAME`).
    pub name: &'static str,
    /// What races.
    pub about: &'static str,
    /// Modules it needs (`--ko`).
    pub needs: &'static [&'static str],
    /// A self-test of the harness (needs a deliberately racy test module;
    /// not part of the default set).
    pub selftest: bool,
    /// The scenario.
    pub run: fn() -> Result<(), String>,
}

/// A racing operation: thread name and what it does.
pub type Op<'a> = (&'a str, Box<dyn FnOnce() + 'a>);

/// Runs the operations at once, each on a new kernel thread (a process of
/// its own), and waits for all of them.
pub fn race(ops: Vec<Op<'_>>) {
    let jobs = ops
        .into_iter()
        .map(|(name, f)| (name.to_string(), kthread::new_thread(Cred::Root), f))
        .collect();
    smp::parallel(jobs);
}

/// One [`RaceScenario`] a line: `NAME => RUN, [MODULES...], ABOUT;`.
macro_rules! race_scenarios {
    ($selftest:literal: $($name:literal => $run:ident, [$($need:literal),*], $about:literal;)*) => {
        &[$(RaceScenario {
            name: $name,
            about: $about,
            needs: &[$($need),*],
            selftest: $selftest,
            run: $run,
        }),*]
    };
}

/// The race scenarios, in the order `make race` runs them.
#[rustfmt::skip]
pub const RACES: &[RaceScenario] = race_scenarios! { false:
    "socket-close-vs-shutdown" => socket_close_vs_shutdown, ["ng_socket"], "a process exits (control and data socket close) while another shuts its socket node down, data in flight";
    "data-socket-close-vs-shutdown" => data_socket_close_vs_shutdown, ["ng_socket"], "the data socket of a socket node closes while its node is shut down and a hook is removed";
    "ksocket-upcall-vs-shutdown" => ksocket_upcall_vs_shutdown, ["ng_socket", "ng_ksocket"], "datagrams arrive (receive upcalls on the network thread) while the ksocket is shut down";
    "ksocket-upcall-vs-rmhook" => ksocket_upcall_vs_rmhook, ["ng_socket", "ng_ksocket"], "datagrams arrive while the ksocket's hook is removed";
    "listener-shutdown-vs-connections" => listener_shutdown_vs_connections, ["ng_socket", "ng_ksocket"], "connections arrive at a listening ksocket with an accept pending while it is shut down";
    "listener-shutdown-vs-embryonic-clones" => listener_shutdown_vs_embryonic_clones, ["ng_socket", "ng_ksocket"], "accepted clones without hooks yet are shut down, with their listener, while data and a close arrive on their connections";
    "accept-response-vs-requester-exit" => accept_response_vs_requester_exit, ["ng_socket", "ng_ksocket"], "the process that asked for an accept exits while the connection (and the response) arrives";
    "ksocket-accept-wait" => ksocket_accept_wait, ["ng_socket", "ng_ksocket"], "a process blocks (bounded) in recvfrom for the response of a ksocket accept while the connection arrives";
    "data-socket-blocking-recv" => data_socket_blocking_recv, ["ng_socket"], "a process blocks (bounded) in recvfrom on its data socket while another process's packet comes back through an echo node";
    "connect-response-vs-requester-exit" => connect_response_vs_requester_exit, ["ng_socket", "ng_ksocket"], "the process that asked a stream ksocket to connect exits while the connection completes";
    "ksocket-data-vs-peer-close" => ksocket_data_vs_peer_close, ["ng_socket", "ng_ksocket"], "data both ways on a connected stream ksocket while the outside peer closes";
    "kldunload-vs-traffic" => kldunload_vs_traffic, ["ng_socket", "ng_ksocket"], "kldunload of ng_ksocket and ng_socket while nodes, sockets and traffic exist and nodes go away";
    "kldunload-socket-vs-close" => kldunload_socket_vs_close, ["ng_socket"], "kldunload of ng_socket (unloading allowed by its sysctl) while processes send, close their sockets and open new ones";
    "ngctl-rename-remove" => ngctl_rename_remove, ["ng_socket", "ng_ksocket"], "two ngctl processes rename, unhook and remove the same nodes";
};

/// The harness's self-tests (deliberately racy modules or fault switches of
/// the model), run only when named.
#[rustfmt::skip]
pub const SELFTESTS: &[RaceScenario] = race_scenarios! { true:
    "selftest-reader-cache" => selftest_reader_cache, ["ng_socket", "ng_racy"], "harness self-test: data handlers (concurrent readers) share a one-slot cache without a lock";
    "selftest-upcall-after-free" => selftest_upcall_after_free, ["ng_socket", "ng_racy"], "harness self-test: shutdown frees the node's data before clearing the socket upcall that uses it";
    "selftest-lock-order" => selftest_lock_order, ["ng_socket", "ng_racy"], "harness self-test: two message paths take the module's two mutexes in opposite orders";
    "selftest-deadlock" => selftest_deadlock, ["ng_socket", "ng_racy"], "harness self-test: two nodes take two module-wide mutexes in opposite orders at once";
    "selftest-missing-wakeup-accept" => selftest_missing_wakeup_accept, ["ng_socket", "ng_ksocket"], "harness self-test: the accept response is queued without sorwakeup while its requester blocks";
    "selftest-missing-wakeup-data" => selftest_missing_wakeup_data, ["ng_socket"], "harness self-test: a datagram is queued on a data socket without sorwakeup while its reader blocks";
    "selftest-missing-wakeup" => selftest_missing_wakeup, ["ng_socket"], "harness self-test: replies queued on a control socket without sorwakeup (model fault switch)";
    "selftest-listener-upcall-after-free" => selftest_listener_upcall_after_free, ["ng_socket", "ng_racy"], "harness self-test: a listener's shutdown frees the node's data before clearing the listen upcall while connections arrive";
    "selftest-queued-item-after-shutdown" => selftest_queued_item_after_shutdown, ["ng_socket", "ng_racy"], "harness self-test: a function item queued to a peer node carries data of a node that is shut down meanwhile";
    "selftest-socket-close-unlocked" => selftest_socket_close_unlocked, ["ng_socket"], "harness self-test: socket-close-vs-shutdown with ng_socket's private-data mutex excluding nobody (model fault switch)";
    "selftest-kldunload-with-nodes" => selftest_kldunload_with_nodes, ["ng_socket", "ng_ksocket"], "harness self-test: kldunload-vs-traffic with a node type unloading while it still has nodes (model fault switch)";
};

/// Every scenario: the races, then the self-tests.
pub fn all() -> impl Iterator<Item = &'static RaceScenario> {
    RACES.iter().chain(SELFTESTS)
}

/// Schedules that once found a race, in the modules or in the kernel
/// model, kept as regression tests (scenario, seed, what it found);
/// `make race` runs them besides its seed range.
pub const REGRESSIONS: &[(&str, u64, &str)] = &[
    (
        "data-socket-close-vs-shutdown",
        10,
        "ng_socket: a hook's connect/disconnect marked the data socket after its private-data lock \
         was dropped, while the data socket was detached and freed",
    ),
    (
        "data-socket-close-vs-shutdown",
        18,
        "ng_socket: the same race, another interleaving",
    ),
    (
        "ksocket-data-vs-peer-close",
        6,
        "ng_socket: rcvdata queued a packet on a data socket that was detached and freed after \
         the private-data lock was dropped (holding the receive buffer does not keep it alive)",
    ),
    (
        "listener-shutdown-vs-embryonic-clones",
        1020,
        "kernel model: network input was still processed for a socket whose soclose had begun, \
         which then destroyed it under the network thread",
    ),
];

/// Builds a graph: one ngctl session runs `cmds` in order, then exits.
fn setup(cmds: &[&str]) -> Result<(), String> {
    let mut s = Sess::start()?;
    for c in cmds {
        s.cmd(c)?;
    }
    s.close();
    Ok(())
}

/// Two ngctl processes (their sessions started first) each send one
/// command at the same time: (thread name, command).
fn race_two(a: (&str, &str), b: (&str, &str)) -> Result<(), String> {
    let (mut sa, mut sb) = (Sess::start()?, Sess::start()?);
    race(vec![
        (
            a.0,
            Box::new(|| {
                let _ = sa.cmd(a.1);
            }),
        ),
        (
            b.0,
            Box::new(|| {
                let _ = sb.cmd(b.1);
            }),
        ),
    ]);
    Ok(())
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static RaceScenario> {
    all().find(|s| s.name == name)
}

fn ok<T>(r: Result<T, String>) {
    if let Err(e) = r {
        crate::kern::violation(format!("race operation: {e}"));
    }
}

/// A hole node named `hl` with a ksocket `ks` of `proto` on its hook `k`.
fn hole_and_ksocket(s: &mut Sess, proto: &str) -> Result<(), String> {
    s.cmd("mkpeer . hole tmp x")?;
    s.cmd("name .:tmp hl")?;
    s.cmd(&format!("mkpeer hl: ksocket k {proto}"))?;
    s.cmd("name hl:k ks")?;
    Ok(())
}

/// Binds `ks` to 127.0.0.1 (any port); the port.
fn bind_any(s: &mut Sess) -> Result<u16, String> {
    s.cmd("msg ks: bind inet/127.0.0.1:0")?;
    let out = s.cmd("msg ks: getname")?;
    port_in(&out).ok_or_else(|| format!("no port in the getname reply: {out:?}"))
}

// ---------------------------------------------------------------------------

fn socket_close_vs_shutdown() -> Result<(), String> {
    let mut p = Proc::open()?;
    let path = p.path();
    ngctl_ok(&format!("mkpeer {path} hole h in"))?;
    let mut s = Sess::start()?;
    race(vec![
        (
            "ngctl shutdown",
            Box::new(|| {
                // Succeeds, or the node is already gone (or going) with
                // its socket.
                if let Err(e) = s.cmd(&format!("shutdown {path}")) {
                    if !e.contains("No such file or directory") && !e.contains("Invalid argument") {
                        ok::<()>(Err(e));
                    }
                }
            }),
        ),
        (
            "process exit",
            Box::new(|| {
                let _ = p.send_data("h", b"in flight");
                let _ = p.send_msg(".", msg::NGM_GENERIC_COOKIE, msg::cmd::NODEINFO, &[]);
                p.close_data();
                p.close_control();
            }),
        ),
    ]);
    s.close();
    Ok(())
}

fn data_socket_close_vs_shutdown() -> Result<(), String> {
    let mut p = Proc::open()?;
    let path = p.path();
    ngctl_ok(&format!("mkpeer {path} echo e x"))?;
    ngctl_ok(&format!("mkpeer {path} hole h in"))?;
    let (mut s1, mut s2) = (Sess::start()?, Sess::start()?);
    race(vec![
        (
            "close data socket",
            Box::new(|| {
                let _ = p.send_data("e", b"echo me");
                p.close_data();
            }),
        ),
        (
            "ngctl rmhook",
            Box::new(|| {
                let _ = s1.cmd(&format!("rmhook {path} h"));
            }),
        ),
        (
            "ngctl shutdown",
            Box::new(|| {
                let _ = s2.cmd(&format!("shutdown {path}"));
            }),
        ),
    ]);
    p.close_control();
    Ok(())
}

fn ksocket_upcall_race(remove: &str) -> Result<(), String> {
    let mut s = Sess::start()?;
    hole_and_ksocket(&mut s, "inet/dgram/udp")?;
    let port = bind_any(&mut s)?;
    s.close();
    let peer = udp_peer();
    let target = ("127.0.0.1", port);
    for i in 0..3u8 {
        let _ = peer.send_to(&[i; 8], target);
    }
    let remove = remove.to_string();
    let mut s = Sess::start()?;
    race(vec![
        (
            "outside sender",
            Box::new(|| {
                for i in 3..8u8 {
                    let _ = peer.send_to(&[i; 8], target);
                    smp::preempt(smp::Ev::Point("datagram sent"));
                }
            }),
        ),
        (
            "ngctl",
            Box::new(|| {
                let _ = s.cmd(&remove);
            }),
        ),
    ]);
    Ok(())
}

fn ksocket_upcall_vs_shutdown() -> Result<(), String> {
    ksocket_upcall_race("shutdown ks:")
}

fn ksocket_upcall_vs_rmhook() -> Result<(), String> {
    ksocket_upcall_race("rmhook hl: k")
}

/// A listening stream ksocket `ks` (on hole `hl`); its port.
fn listener(s: &mut Sess) -> Result<u16, String> {
    hole_and_ksocket(s, "inet/stream/tcp")?;
    let port = bind_any(s)?;
    s.cmd("msg ks: listen 8")?;
    Ok(port)
}

fn listener_shutdown_vs_connections() -> Result<(), String> {
    let mut s = Sess::start()?;
    let port = listener(&mut s)?;
    // An accept request waits for the first connection.
    s.cmd("msg ks: accept")?;
    let mut conns = Vec::new();
    let mut s2 = Sess::start()?;
    race(vec![
        (
            "outside connects",
            Box::new(|| {
                for _ in 0..3 {
                    if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
                        conns.push(c);
                    }
                    smp::preempt(smp::Ev::Point("connected"));
                }
            }),
        ),
        (
            "ngctl shutdown",
            Box::new(|| {
                let _ = s2.cmd("shutdown ks:");
            }),
        ),
    ]);
    s.monitor();
    s.close();
    drop(conns);
    Ok(())
}

/// IDs of the ksocket nodes other than `ks` (accepted clones).
fn clone_ids() -> Result<Vec<u32>, String> {
    let out = ngctl_ok("list")?;
    Ok(out
        .iter()
        .filter(|l| l.contains("Type: ksocket") && !l.contains("Name: ks "))
        .filter_map(|l| l.split("ID: ").nth(1))
        .filter_map(|t| u32::from_str_radix(t.split_whitespace().next().unwrap_or(""), 16).ok())
        .collect())
}

fn listener_shutdown_vs_embryonic_clones() -> Result<(), String> {
    let mut s = Sess::start()?;
    let port = listener(&mut s)?;
    s.cmd("msg ks: accept")?;
    let mut first = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    crate::kern::sched::run_until_idle();
    s.monitor();
    let clones = clone_ids()?;
    let (mut a, mut b) = (Sess::start()?, Sess::start()?);
    let mut second = None;
    race(vec![
        (
            "ngctl shutdown listener",
            Box::new(|| {
                let _ = a.cmd("shutdown ks:");
            }),
        ),
        (
            "ngctl shutdown clones",
            Box::new(|| {
                for id in &clones {
                    let _ = b.cmd(&format!("shutdown [{id:x}]:"));
                }
            }),
        ),
        (
            "outside peers",
            Box::new(|| {
                let _ = first.write(b"early data");
                smp::preempt(smp::Ev::Point("peer wrote"));
                second = TcpStream::connect(("127.0.0.1", port)).ok();
                let _ = first.shutdown(std::net::Shutdown::Both);
            }),
        ),
        ("requester exits", Box::new(|| s.close())),
    ]);
    drop(second);
    Ok(())
}

fn accept_response_vs_requester_exit() -> Result<(), String> {
    let mut s = Sess::start()?;
    let port = listener(&mut s)?;
    s.close();
    let mut p = Proc::open()?;
    let t = p
        .send_msg(
            "ks:",
            fbsd_sys::NGM_KSOCKET_COOKIE,
            fbsd_sys::NGM_KSOCKET_ACCEPT,
            &[],
        )
        .map_err(|e| format!("accept request: errno {e}"))?;
    let _ = t;
    let mut conn = None;
    race(vec![
        (
            "outside connect",
            Box::new(|| conn = TcpStream::connect(("127.0.0.1", port)).ok()),
        ),
        ("requester exits", Box::new(|| p.close_control())),
    ]);
    drop(p);
    drop(conn);
    Ok(())
}

/// A process asks the listening `ks` for an accept and blocks in
/// `recvfrom` for the response (bounded by the socket layer) while an
/// outside client connects. `broken`: the model drops socket wakeups.
fn accept_wait(broken: bool) -> Result<(), String> {
    let mut s = Sess::start()?;
    let port = listener(&mut s)?;
    s.close();
    let mut p = Proc::open()?;
    p.send_msg(
        "ks:",
        fbsd_sys::NGM_KSOCKET_COOKIE,
        fbsd_sys::NGM_KSOCKET_ACCEPT,
        &[],
    )
    .map_err(|e| format!("accept request: errno {e}"))?;
    crate::kern::sockbuf::set_drop_wakeups(broken);
    let mut reply = None;
    let mut conn = None;
    race(vec![
        ("requester waits", Box::new(|| reply = Some(p.recv_msg()))),
        (
            "outside connect",
            Box::new(|| conn = TcpStream::connect(("127.0.0.1", port)).ok()),
        ),
    ]);
    crate::kern::sockbuf::set_drop_wakeups(false);
    drop(conn);
    p.close();
    match reply {
        Some(Ok(m)) if m.cookie == fbsd_sys::NGM_KSOCKET_COOKIE && m.is_resp() => Ok(()),
        Some(Ok(m)) => Err(format!("unexpected reply {:?}", m.cmdstr())),
        Some(Err(e)) if broken => {
            // The violation (missing wakeup) is what the self-test wants.
            let _ = e;
            Ok(())
        }
        Some(Err(e)) => Err(format!("no accept response: errno {e}")),
        None => Err("the requester did not run".into()),
    }
}

fn ksocket_accept_wait() -> Result<(), String> {
    accept_wait(false)
}

/// A process blocks in `recvfrom` on its data socket while another of its
/// threads sends a packet out of its hook into an echo node, which sends it
/// back. `broken`: the model drops socket wakeups.
fn data_wait(broken: bool) -> Result<(), String> {
    let q = Proc::open()?;
    let qp = q.path();
    ngctl_ok(&format!("mkpeer {qp} echo out x"))?;
    let ds = q.ds.ok_or("no data socket")?;
    crate::kern::sockbuf::set_drop_wakeups(broken);
    let mut got = None;
    race(vec![
        (
            "reader",
            Box::new(|| got = Some(crate::kern::domain::recvfrom(ds, 2048, 0))),
        ),
        (
            "sender",
            Box::new(|| {
                let _ = q.send_data("out", b"ping");
            }),
        ),
    ]);
    crate::kern::sockbuf::set_drop_wakeups(false);
    drop(q);
    match got {
        Some(Ok((b, _, _))) if b == b"ping" => Ok(()),
        Some(Ok((b, _, _))) => Err(format!("unexpected datagram {b:?}")),
        Some(Err(_)) if broken => Ok(()),
        Some(Err(e)) => Err(format!("no datagram: errno {e}")),
        None => Err("the reader did not run".into()),
    }
}

fn data_socket_blocking_recv() -> Result<(), String> {
    data_wait(false)
}

fn connect_response_vs_requester_exit() -> Result<(), String> {
    let (l, addr) = tcp_listener();
    let mut s = Sess::start()?;
    hole_and_ksocket(&mut s, "inet/stream/tcp")?;
    s.close();
    let mut p = Proc::open()?;
    let mut sin = [0u8; 16];
    sin[0] = 16;
    sin[1] = fbsd_sys::AF_INET as u8;
    sin[2..4].copy_from_slice(&addr.port().to_be_bytes());
    sin[4..8].copy_from_slice(&[127, 0, 0, 1]);
    match p.send_msg(
        "ks:",
        fbsd_sys::NGM_KSOCKET_COOKIE,
        fbsd_sys::NGM_KSOCKET_CONNECT,
        &sin,
    ) {
        Ok(_) => {}
        Err(e) if e == fbsd_sys::EINPROGRESS as i32 => {}
        Err(e) => return Err(format!("connect request: errno {e}")),
    }
    let mut accepted = None;
    race(vec![
        (
            "outside accept",
            Box::new(|| {
                for _ in 0..3 {
                    if let Ok((c, _)) = l.accept() {
                        accepted = Some(c);
                        break;
                    }
                    smp::preempt(smp::Ev::Point("accept polled"));
                }
            }),
        ),
        ("requester exits", Box::new(|| p.close_control())),
    ]);
    drop(p);
    drop(accepted);
    Ok(())
}

fn ksocket_data_vs_peer_close() -> Result<(), String> {
    let (l, addr) = tcp_listener();
    let p = Proc::open()?;
    let path = p.path();
    ngctl_ok(&format!("mkpeer {path} ksocket data inet/stream/tcp"))?;
    // A stream connect answers EINPROGRESS; the connection completes later.
    let _ = ngctl(&format!(
        "msg {path}data connect inet/127.0.0.1:{}",
        addr.port()
    ));
    crate::kern::sched::run_until_idle();
    let mut peer = None;
    for _ in 0..100 {
        if let Ok((c, _)) = l.accept() {
            peer = Some(c);
            break;
        }
        crate::kern::sched::advance(1);
    }
    let mut peer = peer.ok_or("the ksocket did not connect")?;
    let _ = peer.set_nonblocking(true);
    race(vec![
        (
            "process sends",
            Box::new(|| {
                for i in 0..6u8 {
                    let _ = p.send_data("data", &[i; 64]);
                    let _ = p.try_recv_data();
                }
            }),
        ),
        (
            "outside peer",
            Box::new(|| {
                for i in 0..3u8 {
                    let _ = peer.write(&[i; 100]);
                    smp::preempt(smp::Ev::Point("peer wrote"));
                }
                let _ = peer.shutdown(std::net::Shutdown::Both);
            }),
        ),
    ]);
    drop(peer);
    while p.try_recv_data().is_some() {}
    p.close();
    Ok(())
}

fn kldunload_vs_traffic() -> Result<(), String> {
    let mut s = Sess::start()?;
    hole_and_ksocket(&mut s, "inet/dgram/udp")?;
    let port = bind_any(&mut s)?;
    s.close();
    let peer = udp_peer();
    let p = Proc::open()?;
    let path = p.path();
    ngctl_ok(&format!("mkpeer {path} hole h in"))?;
    let mut s2 = Sess::start()?;
    race(vec![
        (
            "kldunload",
            Box::new(|| {
                for m in ["ng_ksocket", "ng_socket"] {
                    if let Some(id) = loader::file_id(m) {
                        let _ = loader::kldunload(id, loader::LINKER_UNLOAD_NORMAL);
                    }
                }
            }),
        ),
        (
            "traffic",
            Box::new(|| {
                for i in 0..4u8 {
                    let _ = peer.send_to(&[i; 16], ("127.0.0.1", port));
                    let _ = p.send_data("h", &[i; 16]);
                }
            }),
        ),
        (
            "ngctl shutdown",
            Box::new(|| {
                let _ = s2.cmd("shutdown ks:");
            }),
        ),
    ]);
    // ng_socket never unloads here: a process still has its sockets open,
    // and whether it may unload at all when none is left (FreeBSD's
    // MOD_UNLOAD always answers EBUSY) does not matter to this scenario.
    // ng_ksocket unloads only once no ksocket node is left.
    if loader::file_id("ng_socket").is_none() {
        return Err("ng_socket.ko was unloaded".into());
    }
    drop(p);
    Ok(())
}

fn kldunload_socket_vs_close() -> Result<(), String> {
    // The opt-in unload (net.graph.socket.allow_unload): unloadable once
    // no netgraph socket exists. Without the sysctl (FreeBSD's behaviour,
    // every unload refused) the race still runs, against EBUSY.
    let _ = crate::kern::sysctl::set("net.graph.socket.allow_unload", 1);
    let mut p = Proc::open()?;
    let path = p.path();
    ngctl_ok(&format!("mkpeer {path} hole h in"))?;
    let mut q = Proc::open()?;
    let mut unloaded = false;
    race(vec![
        (
            "kldunload",
            Box::new(|| {
                // Tries until it succeeds (the other processes are gone)
                // or for a while.
                for _ in 0..40 {
                    if let Some(id) = loader::file_id("ng_socket") {
                        if loader::kldunload(id, loader::LINKER_UNLOAD_NORMAL).is_ok() {
                            unloaded = true;
                            break;
                        }
                    }
                    // pause(9) for a tick: the others run meanwhile.
                    static CHAN: u8 = 0;
                    let _ = crate::kern::sched::sleep_on(
                        &CHAN as *const u8 as usize,
                        Some(1),
                        "kldunld",
                    );
                }
            }),
        ),
        (
            "process exits",
            Box::new(|| {
                let _ = p.send_data("h", b"in flight");
                p.close_data();
                p.close_control();
            }),
        ),
        (
            "process exits too",
            Box::new(|| {
                let _ = q.send_msg(".", msg::NGM_GENERIC_COOKIE, msg::cmd::NODEINFO, &[]);
                q.close_control();
                q.close_data();
            }),
        ),
        (
            "new process",
            Box::new(|| {
                // Fails cleanly once the family is gone.
                if let Ok(r) = Proc::open() {
                    r.close();
                }
            }),
        ),
    ]);
    crate::kern::sched::run_until_idle();
    drop(p);
    drop(q);
    if loader::file_id("ng_socket").is_none() {
        if !unloaded {
            return Err("ng_socket.ko is gone, but no kldunload succeeded".into());
        }
        // The rest of the schedule (its teardown) needs the family back.
        loader::kldload("ng_socket").map_err(|e| format!("kldload ng_socket again: {e:?}"))?;
    }
    Ok(())
}

fn ngctl_rename_remove() -> Result<(), String> {
    let mut s = Sess::start()?;
    hole_and_ksocket(&mut s, "inet/dgram/udp")?;
    s.cmd("mkpeer hl: echo e x")?;
    s.cmd("name hl:e ec")?;
    s.close();
    let (mut a, mut b) = (Sess::start()?, Sess::start()?);
    race(vec![
        (
            "ngctl A",
            Box::new(|| {
                let _ = a.cmd("name ks: a1");
                let _ = a.cmd("rmhook ec: x");
                let _ = a.cmd("shutdown a1:");
            }),
        ),
        (
            "ngctl B",
            Box::new(|| {
                let _ = b.cmd("name ks: b1");
                let _ = b.cmd("name hl: b2");
                let _ = b.cmd("shutdown b1:");
                let _ = b.cmd("shutdown ks:");
            }),
        ),
    ]);
    Ok(())
}

// ---------------------------------------------------------------------------
// Self-tests: each must be caught.

fn selftest_reader_cache() -> Result<(), String> {
    let p = Proc::open()?;
    let q = Proc::open()?;
    let (pp, qp) = (p.path(), q.path());
    ngctl_ok(&format!("mkpeer {pp} racy a cache"))?;
    ngctl_ok(&format!("connect {qp} {pp}a b cache2"))?;
    race(vec![
        (
            "sender A",
            Box::new(|| {
                for _ in 0..3 {
                    let _ = p.send_data("a", b"x");
                }
            }),
        ),
        (
            "sender B",
            Box::new(|| {
                for _ in 0..3 {
                    let _ = q.send_data("b", b"y");
                }
            }),
        ),
    ]);
    Ok(())
}

fn selftest_upcall_after_free() -> Result<(), String> {
    let mut s = Sess::start()?;
    s.cmd("mkpeer . hole tmp x")?;
    s.cmd("name .:tmp hl")?;
    s.cmd("mkpeer hl: racy r upcall")?;
    s.cmd("name hl:r rc")?;
    let out = s.cmd("msg rc: getport")?;
    s.close();
    let port = out
        .iter()
        .find_map(|l| l.trim().strip_prefix("Args:"))
        .and_then(|a| a.trim().parse::<u16>().ok())
        .ok_or_else(|| format!("no port: {out:?}"))?;
    let peer = udp_peer();
    let mut s2 = Sess::start()?;
    race(vec![
        (
            "outside sender",
            Box::new(|| {
                for i in 0..6u8 {
                    let _ = peer.send_to(&[i; 4], ("127.0.0.1", port));
                    smp::preempt(smp::Ev::Point("datagram sent"));
                }
            }),
        ),
        (
            "ngctl shutdown",
            Box::new(|| {
                let _ = s2.cmd("shutdown rc:");
            }),
        ),
    ]);
    Ok(())
}

fn selftest_lock_order() -> Result<(), String> {
    setup(&[
        "mkpeer . hole tmp x",
        "name .:tmp hl",
        "mkpeer hl: racy r lock",
        "name hl:r rc",
    ])?;
    race_two(("ngctl A", "msg rc: ab"), ("ngctl B", "msg rc: ba"))?;
    Ok(())
}

fn selftest_deadlock() -> Result<(), String> {
    setup(&[
        "mkpeer . hole tmp x",
        "name .:tmp hl",
        "mkpeer hl: racy r1 lock",
        "name hl:r1 r1",
        "mkpeer hl: racy r2 lock",
        "name hl:r2 r2",
    ])?;
    race_two(("ngctl A", "msg r1: gab"), ("ngctl B", "msg r2: gba"))?;
    Ok(())
}

fn selftest_missing_wakeup_data() -> Result<(), String> {
    data_wait(true)
}

fn selftest_missing_wakeup_accept() -> Result<(), String> {
    accept_wait(true)
}

fn selftest_missing_wakeup() -> Result<(), String> {
    let p = Proc::open()?;
    let cs = p.cs.ok_or("no control socket")?;
    // ng_socket queues the reply; its sorwakeup is dropped by the model.
    // When the receiver sleeps before the reply is queued, only the
    // bounded wait ends its sleep: a missing wakeup.
    crate::kern::sockbuf::set_drop_wakeups(true);
    race(vec![
        (
            "receiver",
            Box::new(|| {
                let _ = crate::kern::domain::recvfrom(cs, 65536, 0);
            }),
        ),
        (
            "requester",
            Box::new(|| {
                let m =
                    msg::NgMsg::request(msg::NGM_GENERIC_COOKIE, msg::cmd::NODEINFO, 7, Vec::new());
                let _ = crate::kern::domain::sendto(
                    cs,
                    &m.encode(),
                    Some(&crate::scenario::port::sockaddr_ng(".")),
                    0,
                );
            }),
        ),
    ]);
    crate::kern::sockbuf::set_drop_wakeups(false);
    p.close();
    Ok(())
}

fn selftest_listener_upcall_after_free() -> Result<(), String> {
    let mut s = Sess::start()?;
    s.cmd("mkpeer . hole tmp x")?;
    s.cmd("name .:tmp hl")?;
    s.cmd("mkpeer hl: racy r listen")?;
    s.cmd("name hl:r rc")?;
    let out = s.cmd("msg rc: getport")?;
    s.close();
    let port = out
        .iter()
        .find_map(|l| l.trim().strip_prefix("Args:"))
        .and_then(|a| a.trim().parse::<u16>().ok())
        .ok_or_else(|| format!("no port: {out:?}"))?;
    let mut conns = Vec::new();
    let mut s2 = Sess::start()?;
    race(vec![
        (
            "outside connects",
            Box::new(|| {
                for _ in 0..4 {
                    if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
                        conns.push(c);
                    }
                    smp::preempt(smp::Ev::Point("connected"));
                }
            }),
        ),
        (
            "ngctl shutdown",
            Box::new(|| {
                let _ = s2.cmd("shutdown rc:");
            }),
        ),
    ]);
    drop(conns);
    Ok(())
}

fn selftest_queued_item_after_shutdown() -> Result<(), String> {
    let mut s = Sess::start()?;
    s.cmd("mkpeer . hole tmp x")?;
    s.cmd("name .:tmp hl")?;
    // ra: on the hole; rb: its peer on hook defer, kept alive by a
    // second hook to the hole.
    s.cmd("mkpeer hl: racy a other")?;
    s.cmd("name hl:a ra")?;
    s.cmd("mkpeer ra: racy defer defer")?;
    s.cmd("name ra:defer rb")?;
    s.cmd("connect hl: rb: b other")?;
    s.close();
    let (mut a, mut b) = (Sess::start()?, Sess::start()?);
    race(vec![
        (
            "ngctl defer",
            Box::new(|| {
                for _ in 0..3 {
                    let _ = a.cmd("msg ra: defer");
                }
            }),
        ),
        (
            "ngctl defer, shutdown",
            Box::new(|| {
                // The item waits in rb's queue until a queue thread takes
                // it; the shutdown may come first.
                let _ = b.cmd("msg ra: defer");
                let _ = b.cmd("shutdown ra:");
            }),
        ),
    ]);
    Ok(())
}

fn selftest_socket_close_unlocked() -> Result<(), String> {
    crate::kern::lock::set_ineffective(Some("ng_socket"));
    let r = socket_close_vs_shutdown();
    crate::kern::sched::run_until_idle();
    crate::kern::lock::set_ineffective(None);
    r
}

fn selftest_kldunload_with_nodes() -> Result<(), String> {
    crate::netgraph::core::set_unload_ignores_nodes(true);
    let r = kldunload_vs_traffic();
    crate::netgraph::core::set_unload_ignores_nodes(false);
    r
}
