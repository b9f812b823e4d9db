//! The ngctl emulation (harness/src/scenario/ngctl/) against the fake
//! backend: command-line parsing, output formats, exit statuses, sessions.

use std::path::Path;

use ngharness::scenario::fake::FakeNet;
use ngharness::scenario::ngctl::{self, Ended, Session};
use ngharness::scenario::port::{NgPort, SocketPort};

fn port() -> SocketPort<FakeNet> {
    SocketPort::new(FakeNet::new())
}

fn run(p: &mut dyn NgPort, args: &str) -> ngctl::Outcome {
    let a: Vec<String> = args.split_whitespace().map(str::to_string).collect();
    ngctl::oneshot(p, &a, 4242, Path::new("."))
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn oneshot_list_and_show_formats() {
    let mut p = port();
    let mut out = Vec::new();
    let mut s = Session::start(&mut p, 100, Path::new("."), &mut out);
    assert_eq!(out[0], "Available commands:");
    assert_eq!(out.len(), 18);
    assert_eq!(s.command(&mut p, &words("mkpeer . echo e x"), &mut out), 0);
    assert_eq!(s.command(&mut p, &words("name .:e ec"), &mut out), 0);

    let o = run(&mut p, "list");
    assert_eq!(o.status, 0);
    assert_eq!(
        o.lines,
        vec![
            "There are 3 total nodes:",
            "  Name: ngctl100        Type: socket          ID: 00000001   Num hooks: 1",
            "  Name: ec              Type: echo            ID: 00000002   Num hooks: 1",
            "  Name: ngctl4242       Type: socket          ID: 00000003   Num hooks: 0",
        ]
    );
    let o = run(&mut p, "show ec:");
    assert_eq!(
        o.lines,
        vec![
            "  Name: ec              Type: echo            ID: 00000002   Num hooks: 1",
            "  Local hook      Peer name       Peer type    Peer ID         Peer hook      ",
            "  ----------      ---------       ---------    -------         ---------      ",
            "  x               ngctl100        socket       00000001        e              ",
        ]
    );
    let o = run(&mut p, "types");
    assert_eq!(o.lines[0], "There are 3 total types:");
    assert_eq!(o.lines[1], "      Type name   Number of living nodes");
    assert_eq!(o.lines[2], "      ---------   ----------------------");
    assert!(o.lines.contains(&"           echo       1".to_string()));
    s.close(&mut p);
    assert_eq!(p.open_sockets(), 0);
}

#[test]
fn msg_prints_the_reply_in_ascii() {
    let mut p = port();
    let mut out = Vec::new();
    let mut s = Session::start(&mut p, 7, Path::new("."), &mut out);
    s.command(&mut p, &words("mkpeer . echo e x"), &mut out);
    s.command(&mut p, &words("name .:e ec"), &mut out);
    let o = run(&mut p, "msg ec: nodeinfo");
    assert_eq!(o.status, 0);
    assert_eq!(
        o.lines,
        vec![
            "Rec'd response \"nodeinfo\" (805306374) from \"[2]:\":",
            "Args:\t{ name=\"ec\" type=\"echo\" id=0x2 hooks=1 }",
        ]
    );
    // No reply: nothing printed.
    let o = ngctl::oneshot(
        &mut p,
        &words("msg ec: name { name=\"ec2\" }"),
        1,
        Path::new("."),
    );
    assert_eq!((o.status, o.lines.len()), (0, 0), "{:?}", o.lines);
    let o = run(&mut p, "msg ec2: frobnicate");
    assert_eq!(o.status, 71);
    assert_eq!(o.lines, vec!["ngctl: send msg: Function not implemented"]);
    s.close(&mut p);
}

#[test]
fn usage_unknown_and_ambiguous() {
    let mut p = port();
    let o = run(&mut p, "mkpeer . echo");
    assert_eq!(o.status, 64);
    assert_eq!(
        o.lines,
        vec!["ngctl: usage: mkpeer [path] <type> <hook> <peerhook>"]
    );
    let o = run(&mut p, "frob");
    assert_eq!(
        (o.status, o.lines.clone()),
        (71, vec!["ngctl: \"frob\": unknown command".to_string()])
    );
    let o = run(&mut p, "s x");
    assert_eq!(o.lines, vec!["ngctl: \"s\": ambiguous command"]);
    let o = run(&mut p, "list -z");
    assert_eq!(o.status, 64);
    assert_eq!(
        o.lines,
        vec!["ngctl: illegal option -- z", "ngctl: usage: list [-ln]"]
    );
    let o = run(&mut p, "");
    assert_eq!(o.status, 64);
    assert_eq!(
        o.lines,
        vec![
            "ngctl: no command specified",
            "usage: ngctl [-j jail] [-d] [-f filename] [-n nodename] [command [argument ...]]"
        ]
    );
    let o = run(&mut p, "-x list");
    assert_eq!(o.status, 64);
    assert_eq!(o.lines[0], "ngctl: illegal option -- x");
    let o = run(&mut p, "-n");
    assert_eq!(o.lines[0], "ngctl: option requires an argument -- n");
    let o = run(&mut p, "-j foo list");
    assert_eq!(o.status, 68);
    assert_eq!(o.lines, vec!["ngctl: jail \"foo\" not found"]);
    let o = run(&mut p, "-j 7 list");
    assert_eq!(
        (o.status, o.lines[0].as_str()),
        (68, "ngctl: jail 7 not found")
    );
    let o = run(&mut p, "-j 0 list");
    assert_eq!(
        (o.status, o.lines[0].as_str()),
        (71, "ngctl: cannot attach to jail")
    );
    let o = ngctl::oneshot(
        &mut p,
        &["-j".to_string(), String::new()],
        1,
        Path::new("."),
    );
    assert_eq!(o.status, 64);
    assert_eq!(o.lines[0], "ngctl: invalid jail name");
    let o = run(&mut p, "-n foo show .");
    assert!(o.lines[0].starts_with("  Name: foo "), "{:?}", o.lines);
    let o = run(&mut p, "debug");
    assert_eq!(o.lines, vec!["Current debug level is 0"]);
    let o = run(&mut p, "-d -d debug");
    assert_eq!(o.lines, vec!["Current debug level is 2"]);
    let o = run(&mut p, "quit");
    assert_eq!((o.status, o.lines.len()), (0, 0));
    assert_eq!(p.open_sockets(), 0);
}

#[test]
fn help_texts() {
    let mut p = port();
    let o = run(&mut p, "help list");
    assert_eq!(
        o.lines,
        vec![
            "usage:    list [-ln]",
            "Aliases:  ls",
            "Summary:  Show information about all nodes",
            "Description:",
            "  The list command shows information about every node that",
            "  currently exists in the netgraph system. The optional -n",
            "  argument limits this list to only those nodes with a global",
            "  name assignment. The optional -l argument provides verbose",
            "  output that includes hook information as well.",
        ]
    );
    let o = run(&mut p, "help shutdown");
    assert_eq!(o.lines[1], "Aliases:  kill, rmnode");
    assert_eq!(o.lines.len(), 3);
}

#[test]
fn errors_and_status() {
    let mut p = port();
    let o = run(&mut p, "shutdown nosuch:");
    assert_eq!(
        (o.status, o.lines.clone()),
        (
            71,
            vec!["ngctl: shutdown: No such file or directory".to_string()]
        )
    );
    let o = run(&mut p, "mkpeer . socket a b");
    assert_eq!(o.lines, vec!["ngctl: send msg: Invalid argument"]);
    let o = run(&mut p, "write nosuch 1");
    assert_eq!(
        o.lines,
        vec!["ngctl: writing to hook \"nosuch\": No route to host"]
    );
    let o = run(&mut p, "write h 300");
    assert_eq!(o.lines, vec!["ngctl: invalid byte \"300\""]);
    let o = run(&mut p, "write h");
    assert_eq!(o.status, 64);
    let mut out = Vec::new();
    let mut s = Session::start(&mut p, 9, Path::new("."), &mut out);
    s.command(&mut p, &words("mkpeer . hole h y"), &mut out);
    s.command(&mut p, &words("name .:h ho"), &mut out);
    let o = run(&mut p, "status ho:");
    assert_eq!(
        (o.status, o.lines.clone()),
        (0, vec!["No status available for \"ho:\"".to_string()])
    );
    s.close(&mut p);
}

#[test]
fn session_prints_data_and_messages() {
    let mut p = port();
    let mut out = Vec::new();
    let mut s = Session::start(&mut p, 5, Path::new("."), &mut out);
    out.clear();
    assert_eq!(s.command(&mut p, &words("mkpeer . echo e x"), &mut out), 0);
    assert_eq!(
        s.command(&mut p, &words("write e 0x68 0x69 0x0a"), &mut out),
        0
    );
    assert!(out.is_empty());
    assert!(s.monitor(&mut p, &mut out));
    assert_eq!(out[0], "Rec'd data packet on hook \"e\":");
    assert_eq!(
        out[1],
        format!("0000:  68 69 0a {} hi.{}", "   ".repeat(13), " ".repeat(13))
    );
    out.clear();
    assert!(!s.monitor(&mut p, &mut out));
    // The session's own msg prints the reply as part of the command.
    assert_eq!(s.command(&mut p, &words("msg .:e nodeinfo"), &mut out), 0);
    assert!(
        out[0].starts_with("Rec'd response \"nodeinfo\" (805306374) from \"[2]:\":"),
        "{out:?}"
    );
    // Errors are the command's status.
    out.clear();
    assert_eq!(s.command(&mut p, &words("show nosuch:"), &mut out), 71);
    assert_eq!(out, vec!["ngctl: send msg: No such file or directory"]);
    // quit ends the session.
    assert_eq!(s.command(&mut p, &words("quit"), &mut out), 0);
    assert_eq!(s.ended, Ended::Exit(0));
    assert_eq!(p.open_sockets(), 0);
}

#[test]
fn session_dies_when_its_node_is_shut_down() {
    let mut p = port();
    let mut out = Vec::new();
    let mut s = Session::start(&mut p, 5, Path::new("."), &mut out);
    let o = run(&mut p, "shutdown ngctl5:");
    assert_eq!(o.status, 0);
    s.monitor(&mut p, &mut out);
    assert_eq!(s.ended, Ended::Signal("SIGPIPE"));
    s.close(&mut p);
    assert_eq!(p.open_sockets(), 0);
}

#[test]
fn non_root_cannot_create_the_node() {
    let net = FakeNet::new();
    net.0.borrow_mut().user = true;
    let mut p = SocketPort::new(net);
    let o = run(&mut p, "list");
    assert_eq!(
        (o.status, o.lines.clone()),
        (
            71,
            vec!["ngctl: can't create node: Operation not permitted".to_string()]
        )
    );
    let mut out = Vec::new();
    let s = Session::start(&mut p, 5, Path::new("."), &mut out);
    assert_eq!(s.ended, Ended::Exit(71));
}

#[test]
fn file_mode_and_read() {
    let dir = std::env::temp_dir().join(format!("ngs-ngctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cmds"),
        "# comment\nmkpeer . echo e x\nname .:e fe\n\nshow -n fe:\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad"), "show .\nfrob\nshow .\n").unwrap();
    let mut p = port();
    let a = |s: &str| words(s);
    let o = ngctl::oneshot(&mut p, &a("-f cmds"), 1, &dir);
    assert_eq!(o.status, 0, "{:?}", o.lines);
    assert!(o.lines[0].starts_with("  Name: fe "), "{:?}", o.lines);
    // A one-shot ngctl's stdout is fully buffered (a file): the warnings
    // come first, the first show's line when ngctl exits.
    let o = ngctl::oneshot(&mut p, &a("-f bad"), 1, &dir);
    assert_eq!(o.status, 71);
    assert_eq!(
        &o.lines[..2],
        &[
            "ngctl: \"frob\": unknown command",
            "ngctl: line 2: error in file"
        ]
    );
    assert!(o.lines[2].starts_with("  Name: ngctl1 "), "{:?}", o.lines);
    let o = ngctl::oneshot(&mut p, &a("read cmds"), 1, &dir);
    assert_eq!(o.status, 0);
    let o = ngctl::oneshot(&mut p, &a("-f nosuchfile"), 1, &dir);
    assert_eq!(
        (o.status, o.lines.clone()),
        (
            66,
            vec!["ngctl: nosuchfile: No such file or directory".to_string()]
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dot_output() {
    let mut p = port();
    let mut out = Vec::new();
    let mut s = Session::start(&mut p, 5, Path::new("."), &mut out);
    s.command(&mut p, &words("mkpeer . echo e x"), &mut out);
    let o = run(&mut p, "dot -c");
    assert_eq!(o.lines[0], "digraph netgraph {");
    assert!(
        o.lines
            .contains(&"\t\t\"2\" [ label = \"{\\<unnamed\\>:|{echo|[2]:}}\" ];".to_string()),
        "{:?}",
        o.lines
    );
    assert!(
        o.lines
            .contains(&"\t\"1\" -> \"2\" [ headlabel = \"x\", taillabel = \"e\" ] ;".to_string()),
        "{:?}",
        o.lines
    );
    assert_eq!(o.lines.last().unwrap(), "}");
    s.close(&mut p);
}

#[test]
fn libnetgraph_debug_log() {
    let mut p = port();
    // Level 1: the failed sendto, then ngctl's own message.
    let o = run(&mut p, "-d mkpeer . nosuchtype a b");
    assert_eq!(o.status, 71);
    assert_eq!(o.lines.len(), 2, "{:?}", o.lines);
    assert!(
        o.lines[0].starts_with("ngctl: sendto(.): "),
        "{:?}",
        o.lines
    );
    assert!(o.lines[1].starts_with("ngctl: send msg: "), "{:?}", o.lines);
    assert_eq!(
        o.lines[0].trim_start_matches("ngctl: sendto(.): "),
        o.lines[1].trim_start_matches("ngctl: send msg: ")
    );
    // Level 2: every message sent and received, header and bytes.
    let o = run(&mut p, "-d -d list");
    assert_eq!(o.status, 0);
    let want_start = [
        "ngctl: SENDING MESSAGE:",
        "ngctl: SOCKADDR: { fam=32 len=4 addr=\".\" }",
        "ngctl: NG_MESG :",
        "ngctl:   vers   8",
        "ngctl:   arglen 0",
        "ngctl:   flags  0",
        "ngctl:   token  0",
        "ngctl:   cookie GENERIC (1137070366)",
        "ngctl:   cmd    805306377",
        "ngctl:   args (0 bytes)",
        "ngctl: RECEIVED RESPONSE:",
    ];
    assert_eq!(
        &o.lines[..want_start.len()],
        &want_start[..],
        "{:#?}",
        o.lines
    );
    assert!(o.lines[want_start.len()].starts_with("ngctl: SOCKADDR: { fam=32 len="));
    assert!(
        o.lines.iter().any(|l| l == "ngctl:   flags  1"),
        "{:#?}",
        o.lines
    );
    assert!(
        o.lines.iter().any(|l| l.starts_with("ngctl: 0000:  ")),
        "{:#?}",
        o.lines
    );
    assert!(o.lines.iter().any(|l| l.starts_with("There are ")));
    // debug - never goes below 0.
    let o = run(&mut p, "debug -");
    assert_eq!((o.status, o.lines.len()), (0, 0));
}
