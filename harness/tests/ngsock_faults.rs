//! Allocation failure injected at every allocation site ng_socket's paths
//! reach: a fixed sequence (create, bind, attach a data socket, mkpeer,
//! request/reply, unsolicited message, data out and back, NOLINGER node
//! removal, close) is run once per allocation, with the N-th `M_NOWAIT`
//! allocation of a class failing, for N = 1, 2, ... until a run completes
//! without any injection. Every run must end with each step succeeding or
//! failing with an errno the specification allows for it, and with no
//! leak, no violation and no panic (a kernel panic ends the process).

mod ngsock_util;

use ngharness::kern::domain::{self as kd, Fd};
use ngharness::kern::fault::{self, Class, FaultPlan, Rule, Trigger};
use ngharness::kern::{malloc, mbuf as kmbuf, sched, take_violations};
use ngharness::netgraph::core::check;
use ngharness::scenario::msg::{cmd, NgMsg};
use ngsock_util::*;

/// Errors an allocation failure may surface as.
const NOMEM: &[Errno] = &[ENOMEM, ENOBUFS];

/// One step's outcome: success, or one of `allowed`.
#[track_caller]
fn step<T: std::fmt::Debug>(
    log: &mut Vec<String>,
    what: &str,
    r: Result<T, Errno>,
    allowed: &[Errno],
) -> Option<T> {
    log.push(format!("{what}: {r:?}"));
    match r {
        Ok(v) => Some(v),
        Err(e) if allowed.contains(&e) => None,
        Err(e) => panic!("{what}: unexpected errno {e}\n{}", log.join("\n")),
    }
}

/// Receives one datagram without waiting: Some(data) or None.
fn take(fd: Fd, log: &[String]) -> Option<Vec<u8>> {
    match kd::recvfrom(fd, 65536, MSG_DONTWAIT) {
        Ok((d, _addr, _)) => Some(d),
        Err(e) if e == EWOULDBLOCK => None,
        Err(e) => panic!("recvfrom: errno {e}\n{}", log.join("\n")),
    }
}

fn also(base: &[Errno], more: &[Errno]) -> Vec<Errno> {
    base.iter().chain(more).copied().collect()
}

/// The sequence. Returns its log. Panics on an outcome the specification
/// does not allow; `clean` (no injection happened) additionally requires
/// every step to succeed.
fn sequence(clean: bool) -> Vec<String> {
    let mut log = Vec::new();
    let l = &mut log;
    let none: &[Errno] = &[];
    let nomem = if clean { none } else { NOMEM };
    let Some(cs) = step(
        l,
        "socket(NG_CONTROL)",
        kd::socket(FAM, DGRAM, NG_CONTROL),
        nomem,
    ) else {
        return log;
    };
    // Naming and attaching a data socket allocate nothing that can fail.
    step(l, "bind", kd::bind(cs, &sa("flt")), none);
    let ds = step(l, "socket(NG_DATA)", kd::socket(FAM, DGRAM, NG_DATA), nomem);
    let attached = match ds {
        Some(ds) => step(l, "connect", kd::connect(ds, &sa("flt:")), none).is_some(),
        None => false,
    };
    let peered = step(l, "mkpeer echo", mkpeer(cs, ".", "echo", "e", "e"), nomem).is_some();

    // Request and synchronous reply: the reply may be lost on its way back.
    if step(
        l,
        "nodeinfo",
        send(cs, ".", GENERIC, cmd::NODEINFO, &[]),
        nomem,
    )
    .is_some()
    {
        match take(cs, l) {
            Some(r) => {
                let m = NgMsg::decode(&r);
                assert!(m.is_resp() && m.cmd == cmd::NODEINFO, "{m:?}");
            }
            None => assert!(!clean, "reply missing without injection\n{}", l.join("\n")),
        }
    }
    // An unsolicited message to ourselves is queued to our control socket;
    // failing to queue it is ENOBUFS to the sender (docs/socket.md §5.5 step 5).
    if step(
        l,
        "textstatus to self",
        send(cs, ".", GENERIC, cmd::TEXT_STATUS, &[]),
        nomem,
    )
    .is_some()
    {
        let got = take(cs, l);
        assert!(
            got.is_some(),
            "delivered when sendto succeeded\n{}",
            l.join("\n")
        );
    }

    // Data out through the echo and back.
    if let Some(ds) = ds {
        let mut ok_errs = nomem.to_vec();
        if !attached {
            ok_errs.push(ENOTCONN);
        } else if !peered {
            ok_errs.push(EHOSTUNREACH);
        }
        if step(
            l,
            "data sendto",
            kd::sendto(ds, b"ping", Some(&sa("e")), 0),
            &ok_errs,
        )
        .is_some()
        {
            assert_eq!(
                take(ds, l).as_deref(),
                Some(&b"ping"[..]),
                "{}",
                l.join("\n")
            );
        }
        let write_errs = also(&ok_errs, &[EDESTADDRREQ]);
        if step(
            l,
            "data write",
            kd::sendto(ds, b"pong", None, 0),
            &write_errs,
        )
        .is_some()
        {
            assert_eq!(
                take(ds, l).as_deref(),
                Some(&b"pong"[..]),
                "{}",
                l.join("\n")
            );
        }
    }
    assert_eq!(take(cs, l), None, "nothing else queued\n{}", l.join("\n"));

    // NOLINGER, a second hook, then remove both: the node goes away with
    // its last hook, and both sockets are disconnected.
    let nolinger = step(
        l,
        "nolinger",
        send(cs, ".", SOCK_COOKIE, NOLINGER, &[]),
        nomem,
    )
    .is_some();
    let holed = step(l, "mkpeer hole", mkpeer(cs, ".", "hole", "h", "h"), nomem).is_some();
    if holed {
        step(l, "rmhook h", rmhook(cs, ".", "h"), nomem);
    }
    if peered {
        step(l, "rmhook e", rmhook(cs, ".", "e"), nomem);
    }
    sched::run_until_idle();
    let gone = kd::getsockname(cs) == Err(EINVAL);
    if clean {
        assert!(nolinger && holed && gone, "{}", l.join("\n"));
    }
    if gone {
        let m = msg(GENERIC, cmd::NODEINFO, &[]);
        assert_eq!(kd::sendto(cs, &m, Some(&sa(".")), 0), Err(EPIPE));
        if let Some(ds) = ds {
            assert_eq!(kd::sendto(ds, b"x", Some(&sa("e")), 0), Err(EPIPE));
        }
    }
    // Close the data socket first, then the control socket.
    if let Some(ds) = ds {
        step(l, "close data", kd::close(ds), none);
    }
    step(l, "close control", kd::close(cs), none);
    log
}

/// Runs the sequence once per `rule` trigger value N = 1, 2, ... until a
/// run sees no injection; checks every run for leaks and violations.
/// Returns how many runs injected a failure.
fn sweep(name: &str, mk: impl Fn(u64) -> Rule) -> u64 {
    let (m0, b0) = (malloc::live_total(), kmbuf::live());
    let mut n = 1;
    loop {
        fault::configure(FaultPlan::rule(mk(n)));
        let log = sequence(false);
        let injected = fault::injections();
        fault::clear();
        kd::close_all();
        sched::run_until_idle();
        let why = || format!("{name} n={n}: injected {injected:?}\n{}", log.join("\n"));
        assert_eq!(kd::open_sockets_of(FAM), 0, "{}", why());
        // A failed ng_rmhook_self() inside netgraph's own ng_destroy_hook
        // leaves the far node (echo, hole) with a dangling hook until it is
        // shut down (docs/netgraph-model.md §4.4): shut down whatever is left, as
        // an administrator would. No socket node may be left.
        let admin = ctl();
        for node in list(admin) {
            if node.id == nodeinfo(admin, ".").unwrap().id {
                continue;
            }
            assert_ne!(
                node.ty,
                "socket",
                "socket node left behind: {node:?}\n{}",
                why()
            );
            shutdown(admin, &format!("[{:x}]:", node.id)).unwrap();
        }
        kd::close(admin).unwrap();
        sched::run_until_idle();
        let q = check::check_quiescent();
        assert!(q.is_empty(), "{q:#?}\n{}", why());
        if (malloc::live_total(), kmbuf::live()) != (m0, b0) {
            let all = malloc::check_all();
            panic!("leak: {all:#?}\n{}", why());
        }
        let v = take_violations();
        assert!(v.is_empty(), "violations {v:#?}\n{}", why());
        if injected.is_empty() {
            eprintln!("{name}: {} run(s) with an injected failure", n - 1);
            return n - 1;
        }
        n += 1;
        assert!(n < 500, "{name}: the sequence never completes");
    }
}

#[test]
fn allocation_failure_at_every_site() {
    let Some(k) = boot() else { return };
    // The sequence itself, with nothing failing.
    let log = sequence(true);
    assert!(log.iter().all(|l| l.contains("Ok(")), "{log:#?}");
    sched::run_until_idle();
    let _ = check::check_quiescent();
    expect_clean();

    // Each malloc(9) / mbuf allocation in turn (the classes the module's
    // own code and the socket buffers use), then netgraph's item zones and
    // the socket layer's own allocation.
    let runs = sweep("malloc+mbuf nth", |n| {
        Rule::new(Class::All, Trigger::Nth(n))
    });
    assert!(runs >= 10, "only {runs} allocation sites reached");
    sweep("malloc+mbuf from", |n| {
        Rule::new(Class::All, Trigger::From(n))
    });
    sweep("malloc nth", |n| Rule::new(Class::Malloc, Trigger::Nth(n)));
    sweep("mbuf nth", |n| Rule::new(Class::Mbuf, Trigger::Nth(n)));
    // A data socket's item is allocated sleeping (docs/socket.md §6.3 step 5): the data
    // item zone's non-sleeping failures are never offered on these paths.
    let runs = sweep("ng_data_item nth", |n| {
        Rule::new(Class::Other("ng_data_item".into()), Trigger::Nth(n))
    });
    assert_eq!(runs, 0);
    sweep("socket nth", |n| {
        Rule::new(Class::Other("socket".into()), Trigger::Nth(n))
    });
    k.finish();
}

/// The module's own allocation types, failing alone: the PCB (M_PCB), the
/// node private data (netgraph_sock) and the message copies
/// (netgraph_msg).
#[test]
fn allocation_failure_by_malloc_type() {
    let Some(k) = boot() else { return };
    for ty in [
        "pcb",
        "netgraph_sock",
        "netgraph_msg",
        "netgraph_node",
        "netgraph_hook",
    ] {
        sweep(ty, |n| {
            Rule::new(Class::Malloc, Trigger::Nth(n)).with_type(ty)
        });
        sweep(ty, |n| {
            Rule::new(Class::Malloc, Trigger::From(n)).with_type(ty)
        });
    }
    k.finish();
}

/// Runs `f` with netgraph's function-item allocations (the `ng_item` zone
/// without `NG_WAITOK`: what `ng_rmnode_self` and `ng_rmhook_self` use)
/// failing as `trigger` says; returns the injections made.
fn fn_items_fail<R>(trigger: Trigger, f: impl FnOnce() -> R) -> (R, Vec<String>) {
    fault::configure(FaultPlan::rule(Rule::new(
        Class::Other("ng_item".into()),
        trigger,
    )));
    let r = f();
    let n = fault::injections();
    fault::clear();
    (r, n)
}

/// The socket node must go away when its last socket closes (and, with
/// NOLINGER, when its last hook goes) even when netgraph cannot allocate a
/// function item without sleeping: `ng_rmnode_self` marks the node invalid
/// before it tries, so a failure there would leave the node (and its
/// private data) behind for ever. Closing uses sleeping allocations
/// instead; a NOLINGER removal that fails is completed when the sockets
/// close.
#[test]
fn node_removal_survives_function_item_failure() {
    let Some(k) = boot() else { return };
    let (m0, b0) = (malloc::live_total(), kmbuf::live());
    let settle = |what: &str| {
        sched::run_until_idle();
        assert_eq!(kd::open_sockets_of(FAM), 0, "{what}");
        let q = check::check_quiescent();
        assert!(q.is_empty(), "{what}: {q:#?}");
        assert_eq!(
            (malloc::live_total(), kmbuf::live()),
            (m0, b0),
            "{what}: leak"
        );
        expect_clean();
    };
    let lister = || {
        let c = ctl();
        let v = list(c);
        kd::close(c).unwrap();
        v
    };

    // 1. Only a control socket: closing it removes the node.
    let cs = ctl();
    fn_items_fail(Trigger::Always, || kd::close(cs).unwrap());
    settle("control socket alone");

    // 2. Control and data socket; control closes first, then data.
    let (cs, ds, _) = sock_node("fi2");
    fn_items_fail(Trigger::Always, || kd::close(cs).unwrap());
    assert!(lister().iter().any(|x| x.name == "fi2"));
    fn_items_fail(Trigger::Always, || kd::close(ds).unwrap());
    settle("data socket last");

    // 3. Data closes first, then control.
    let (cs, ds, _) = sock_node("fi3");
    fn_items_fail(Trigger::Always, || kd::close(ds).unwrap());
    assert!(lister().iter().any(|x| x.name == "fi3"));
    fn_items_fail(Trigger::Always, || kd::close(cs).unwrap());
    settle("control socket last");

    // 4. A socket whose attach fails after its node was made (the private
    // data cannot be allocated) removes that node.
    fault::configure(
        FaultPlan::rule(Rule::new(Class::Malloc, Trigger::Always).with_type("netgraph_sock"))
            .and(Rule::new(Class::Other("ng_item".into()), Trigger::Always)),
    );
    assert_eq!(kd::socket(FAM, DGRAM, NG_CONTROL), Err(ENOMEM));
    assert_eq!(fault::injections().len(), 1, "{:?}", fault::injections());
    fault::clear();
    settle("attach failure");

    // 5. NOLINGER: the node removes itself (ng_rmnode_self, from inside
    // netgraph where nothing may sleep) when its last hook goes. The
    // function items: the removal of the echo's end of the hook, the
    // echo's own removal, then the socket node's removal: make that one
    // fail. The node is then invalid (unlisted) but not shut down (its
    // sockets still work) until its sockets close.
    let (cs, ds, id) = sock_node("fi5");
    send(cs, ".", SOCK_COOKIE, NOLINGER, &[]).unwrap();
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    let (r, inj) = fn_items_fail(Trigger::Nth(3), || rmhook(cs, ".", "e"));
    assert_eq!((r, inj.len()), (Ok(()), 1), "{inj:?}");
    sched::run_until_idle();
    assert!(lister().iter().all(|x| x.id != id && x.ty != "echo"));
    assert_eq!(sockname(cs), Ok("fi5".into()), "not shut down");
    kd::close(ds).unwrap();
    kd::close(cs).unwrap();
    settle("NOLINGER, removal failed");
    k.finish();
}

/// docs/socket.md §6.3 step 5: a data socket's send packages its data item with a
/// sleeping allocation (FreeBSD's ngd_send uses NG_WAITOK), so the item
/// zone's non-sleeping failures never reach the sender.
#[test]
fn data_send_item_allocation_sleeps() {
    let Some(k) = boot() else { return };
    let (cs, ds, _) = sock_node("dsend");
    mkpeer(cs, ".", "echo", "e", "e").unwrap();
    fault::configure(FaultPlan::rule(Rule::new(
        Class::Other("ng_data_item".into()),
        Trigger::Always,
    )));
    assert_eq!(kd::sendto(ds, b"abc", Some(&sa("e")), 0), Ok(3));
    assert_eq!(kd::sendto(ds, b"def", None, 0), Ok(3));
    assert_eq!(fault::injections(), Vec::<String>::new());
    fault::clear();
    assert_eq!(recv(ds), Some((b"abc".to_vec(), sa("e"))));
    assert_eq!(recv(ds), Some((b"def".to_vec(), sa("e"))));
    k.finish();
}
