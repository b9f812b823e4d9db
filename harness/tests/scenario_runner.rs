//! The scenario runner in-process against the fake backend: expectation
//! semantics, failure reports with file:line, outside UDP sockets, and the
//! end-of-scenario teardown.

use std::path::Path;

use ngharness::scenario::fake::FakeNet;
use ngharness::scenario::kernel::FakeKernel;
use ngharness::scenario::parse::parse_str;
use ngharness::scenario::port::SocketPort;
use ngharness::scenario::runner::{Failure, Runner};

/// Runs scenario text on a fresh fake; (result, end-of-scenario problems).
fn run(text: &str) -> (Result<(), Failure>, Vec<String>) {
    let sc = parse_str(Path::new("t.ngs"), text).unwrap_or_else(|e| panic!("{e:?}"));
    let net = FakeNet::new();
    let mut k = FakeKernel::new(net.clone());
    let mut p = SocketPort::new(net);
    let mut r = Runner::new(&mut k, &mut p, Path::new("."));
    let res = r.run(&sc);
    let problems = r.finish();
    (res, problems)
}

fn fails_at(text: &str, line: usize, msg_part: &str) {
    let (res, _) = run(text);
    let f = res.expect_err("the scenario should fail");
    assert_eq!(f.line, line, "{f:?}");
    assert!(f.msg.contains(msg_part), "{f:?}");
}

#[test]
fn passing_scenario_leaves_nothing_behind() {
    let (res, problems) = run("session s\n\
         s: mkpeer . echo e x\n\
         s: name .:e ec\n\
         ngctl show ec:\n\
         | Name: ec * Num hooks: 1\n\
         | x * ngctl* * socket * {id} * e\n\
         !| nothing*\n\
         ngctl show nosuch:\n\
         => error ENOENT\n\
         => exit 71\n\
         | ngctl: send msg: No such file or directory\n");
    assert_eq!(res, Ok(()));
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn implied_ok() {
    fails_at("ngctl show nosuch:\n| ngctl: *\n", 1, "should succeed");
}

#[test]
fn explicit_status_expectations() {
    fails_at(
        "ngctl show .\n=> error EINVAL\n",
        2,
        "expected a line `ngctl: ...: Invalid argument`",
    );
    fails_at("ngctl show nosuch:\n=> error EINVAL\n", 2, "exit status 71");
    fails_at(
        "ngctl show\n=> exit 71\n",
        2,
        "expected exit status 71, got 64",
    );
    fails_at(
        "ngctl show .\n=> ok\n=> exit 1\n",
        3,
        "expected exit status 1",
    );
}

#[test]
fn output_patterns_are_ordered() {
    let ok = "ngctl help\n| Available commands:\n| list *\n| quit *\n";
    assert_eq!(run(ok).0, Ok(()));
    fails_at(
        "ngctl help\n| quit *\n| list *\n",
        3,
        "no line matching `list *` after output line",
    );
    fails_at("ngctl help\n!| list *\n", 2, "matches `list *`");
}

#[test]
fn session_expect_waits_and_fails_with_line() {
    let ok = "session s\ns: mkpeer . echo e x\ns: write e 0x41\ns: expect Rec'd data packet on hook \"e\":\ns: expect 0000:  41 * A\n";
    assert_eq!(run(ok).0, Ok(()));
    // Matched lines are consumed: the same line cannot match twice.
    fails_at(
        "session s\ns: mkpeer . echo e x\ns: write e 0x41\ns: expect Rec'd data*\ns: expect Rec'd data*\n",
        5,
        "session s printed no line matching",
    );
}

#[test]
fn session_command_after_exit_fails() {
    fails_at("session s\ns: quit\ns: list\n", 3, "session s has ended");
}

#[test]
fn ngctl_that_would_hang_fails() {
    // TEXT_STATUS has NGM_HASREPLY: libnetgraph polls for a reply that the
    // interactive ngctl's node never sends (docs/socket.md S43).
    fails_at(
        "session s\ns: name . sn\nngctl msg sn: textstatus\n",
        3,
        "ngctl would block forever in poll()",
    );
    // The unsolicited command shows up in the session.
    let (res, _) =
        run("session s\ns: name . sn\ns: msg sn: nodeinfo\n| Rec'd response \"nodeinfo\" *\n");
    assert_eq!(res, Ok(()));
}

#[test]
fn config_without_a_reply() {
    // config sends TEXT_CONFIG (no HASREPLY); a hole refuses it (EINVAL):
    // "No config available".
    let (res, _) = run("session s\ns: mkpeer . hole h y\ns: name .:h ho\nngctl config ho:\n| No config available for \"ho:\"\n");
    assert_eq!(res, Ok(()));
}

#[test]
fn credentials() {
    let (res, _) =
        run("as user\nngctl list\n=> error EPERM\nsession s\n=> exit 71\nas root\nngctl list\n");
    assert_eq!(res, Ok(()));
}

#[test]
fn kld_commands() {
    let (res, _) = run(
        "kldload ng_echo\n=> error EEXIST\n| kldload: can't load ng_echo: module already loaded or in kernel\n\
         kldload ng_nosuch\n=> error ENOENT\n| kldload: can't load ng_nosuch: No such file or directory\n\
         kldunload ng_nosuch\n=> error ENOENT\n| kldunload: can't find file ng_nosuch\n\
         kldunload ng_socket\n=> error EBUSY\n=> exit 1\n| kldunload: can't unload file: Device busy\n",
    );
    assert_eq!(res, Ok(()));
}

#[test]
fn outside_udp_sockets() {
    // Two UDP sockets talking to each other on ports picked now.
    let a = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = format!(
        "udp a bind {a}\nudp b bind {b}\na silent\nudp b send {a} \"ping\"\na recv-from {b} \"ping\"\n\
         udp a send {b} 0x70 0x6f\nb recv \"po\"\nudp c bind {a}\n=> error EADDRINUSE\n"
    );
    assert_eq!(run(&text).0, Ok(()));
    let text = format!("udp a bind {a}\nudp b bind {b}\nudp b send {a} \"x\"\na recv \"y\"\n");
    let (res, _) = run(&text);
    let f = res.unwrap_err();
    assert_eq!(f.line, 4);
    assert_eq!(f.msg, "a received \"x\" instead of \"y\"");
}

#[test]
fn teardown_shuts_down_what_is_left() {
    // The echo/hole pair outlives the session (connected to each other).
    let (res, problems) = run("session s\ns: mkpeer . echo e x\ns: name .:e ec\ns: mkpeer ec: hole h y\nclose s\nngctl show ec:\n| Name: ec * Num hooks: 1\n");
    assert_eq!(res, Ok(()));
    assert!(problems.is_empty(), "{problems:?}");
}
