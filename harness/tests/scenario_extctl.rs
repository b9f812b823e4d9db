//! `ngharness run --ngctl FILE` (the scenarios' ngctl statements run by an
//! external binary through the bridge) with the stand-in ngctl of the
//! vm-tests runtime tests (`vm-tests/tests/runtime/fakengctl`, a Python
//! script speaking ngctl's command language on a terminal and as a
//! one-shot): one-shot commands and their exit statuses, a session on a
//! pseudo-terminal with its markers, statuses read from the output, lines
//! typed only once ngctl is quiet at its prompt (the stand-in loses a line
//! typed while its "monitor" prints, as FreeBSD's ngctl does), and the
//! failure report of an unmet session expectation. Needs `make` (the
//! modules and the bridge library) and python3; skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The run's exit status and output, or None (skipped) without the build.
fn run(scenario: &str, monitor: bool, extra: &[&str]) -> Option<(i32, String)> {
    let t = top();
    let ko = t.join("build/ng_socket.ko");
    let lib = t.join("build/libngbridge.so");
    let python = Command::new("python3").arg("-c").arg("pass").status();
    if !ko.exists() || !lib.exists() || !python.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: needs build/ng_socket.ko and build/libngbridge.so (make) and python3");
        return None;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ngharness"))
        .current_dir(&t)
        .env("FAKENGCTL_MONITOR", if monitor { "1" } else { "0" })
        .args(["run", "--ngctl", "vm-tests/tests/runtime/fakengctl"])
        .args([
            "--bridge-lib",
            "build/libngbridge.so",
            "--ko",
            "build/ng_socket.ko",
        ])
        .args(extra)
        .arg(scenario)
        .output()
        .expect("run ngharness");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    Some((out.status.code().unwrap_or(-1), s))
}

#[test]
fn a_stand_in_ngctl_runs_the_plumbing_scenario() {
    let Some((code, out)) = run("vm-tests/tests/runtime/plumbing.ngs", false, &[]) else {
        return;
    };
    assert!(
        code == 0 && out.contains("PASS vm-tests/tests/runtime/plumbing.ngs"),
        "exit {code}\n{out}"
    );
}

#[test]
fn session_lines_wait_until_ngctl_is_quiet_at_its_prompt() {
    let Some((code, out)) = run("vm-tests/tests/runtime/plumbing.ngs", true, &[]) else {
        return;
    };
    assert!(
        code == 0 && out.contains("PASS vm-tests/tests/runtime/plumbing.ngs"),
        "exit {code}\n{out}"
    );
}

#[test]
fn an_unmet_session_expectation_names_file_and_line() {
    let Some((code, out)) = run("vm-tests/tests/runtime/failing.ngs", false, &[]) else {
        return;
    };
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "FAIL vm-tests/tests/runtime/failing.ngs:4: session s printed no line matching `0000:  42*`"
        ),
        "{out}"
    );
    assert!(out.contains("0000:  41"), "{out}");
}

#[test]
fn an_external_ngctl_needs_the_bridge() {
    let Some((code, out)) = run(
        "vm-tests/tests/runtime/plumbing.ngs",
        false,
        &["--backend", "builtin"],
    ) else {
        return;
    };
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("--ngctl runs ngctl through the bridge"),
        "{out}"
    );
}
