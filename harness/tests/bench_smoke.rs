//! Smoke test of `ngharness bench --quick` (allocation and copy counters,
//! no callgrind) and `ngharness demo` (the UDP echo server), run as
//! subprocesses against the built modules. Skips (with SKIP) when
//! `build/ng_socket.ko` or `build/ng_ksocket.ko` has not been built.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn modules() -> Option<[PathBuf; 2]> {
    // `$NGSOCK_BUILD` (the coverage run's build/cov), else build/.
    let build = std::env::var_os("NGSOCK_BUILD").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../build"),
        PathBuf::from,
    );
    let kos = [build.join("ng_socket.ko"), build.join("ng_ksocket.ko")];
    if let Some(missing) = kos.iter().find(|k| !k.exists()) {
        eprintln!("SKIP: {} not built (make ko)", missing.display());
        return None;
    }
    Some(kos)
}

fn ngharness(args: &[&str], kos: &[PathBuf; 2]) -> (Output, String) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ngharness"))
        .args(args)
        .args(kos)
        .output()
        .expect("run ngharness");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "ngharness {args:?} took {:?}",
        start.elapsed()
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[test]
fn bench_quick_counts_allocations_and_copies() {
    let Some(kos) = modules() else { return };
    let (out, text) = ngharness(&["bench", "--quick"], &kos);
    // The verdict line is there whatever the outcome.
    let verdict = text
        .lines()
        .find(|l| l.starts_with("bench: "))
        .unwrap_or_else(|| panic!("no verdict line in:\n{text}"));
    assert!(
        out.status.success(),
        "bench --quick failed ({}):\n{text}",
        out.status
    );
    assert!(
        verdict.starts_with("bench: PASS: 0 payload copies"),
        "{verdict}"
    );
    assert!(text.contains("instructions not measured"), "{text}");
    // Every case was measured, for both modules.
    for case in [
        "send, connected",
        "receive, connected",
        "receive, unconnected",
        "echo, unconnected",
    ] {
        let l = line_with(&text, case);
        assert!(l.contains(".ko"), "{l}");
    }
    // The probes see module call sites: the source-address tag of every
    // unconnected datagram is allocated by ng_ksocket.ko.
    assert!(
        text.contains("ng_ksocket.ko: 1.00 x m_tag_alloc"),
        "no module-attributed tag allocation:\n{text}"
    );
    // And harness costs are attributed to the harness, not the modules.
    let l = line_with(&text, "Not module costs");
    assert!(l.contains("excluded"), "{l}");
}

#[test]
fn bench_rejects_bad_usage() {
    let Some(kos) = modules() else { return };
    let (out, text) = ngharness(&["bench", "--size", "0"], &kos);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("usage: ngharness bench"), "{text}");
}

#[test]
fn demo_runs_the_udp_echo_server() {
    let Some(kos) = modules() else { return };
    let (out, text) = ngharness(&["demo", "--port", "0", "--count", "2"], &kos);
    assert!(
        out.status.success(),
        "demo failed ({}):\n{text}",
        out.status
    );
    for needle in [
        "kldload ",
        "MOD_LOAD -> 0",
        "+ mkpeer . echo tmp x",
        "+ mkpeer ec: ksocket k inet/dgram/udp",
        "+ msg ks: bind inet/127.0.0.1:0",
        "Rec'd response \"getname\" (5)",
        "Args:    inet/127.0.0.1:",
        "Type: ksocket",
        "2 of 2 datagram(s) echoed",
        "kldunload ",
        "0 leaks",
        "demo: ok",
    ] {
        line_with(&text, needle);
    }
    // Each datagram came back, from the server's address.
    let sent: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" -> 127.0.0.1:"))
        .collect();
    let back: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" <- 127.0.0.1:"))
        .collect();
    assert_eq!((sent.len(), back.len()), (2, 2), "{text}");
    assert!(back[0].ends_with("\"hello, ngsock #1\""), "{}", back[0]);
}
