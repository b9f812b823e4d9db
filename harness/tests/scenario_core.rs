//! Runs the repository's scenario files through `ngharness run`: the core
//! scenarios (echo/hole graphs, no modules of ours) through the built-in
//! netgraph client and, when `build/ng_socket.ko` exists, through
//! `ng_socket.ko`; every scenario file through the fake backend; and the
//! failure reports (file:line, exit status) of deliberately broken files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The directory holding the modules: `$NGSOCK_BUILD` (the coverage run
/// points it at `build/cov`), else `build/` of this checkout.
fn build_dir() -> PathBuf {
    std::env::var_os("NGSOCK_BUILD").map_or_else(|| top().join("build"), PathBuf::from)
}

fn scenarios(prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(top().join("scenarios"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        n.starts_with(prefix) && n.ends_with(".ngs")
    });
    v.sort();
    v
}

fn ngharness(args: &[&str], files: &[PathBuf]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ngharness"))
        .args(args)
        .args(files)
        .output()
        .expect("run ngharness");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), s)
}

fn all_pass(args: &[&str], files: &[PathBuf]) {
    assert!(!files.is_empty(), "no scenario files found");
    let (code, out) = ngharness(args, files);
    let want = format!("scenarios: {} passed, 0 failed", files.len());
    assert!(
        out.contains(&want) && code == 0,
        "ngharness run {args:?}: exit {code}\n{out}"
    );
}

#[test]
fn core_scenarios_through_the_builtin_client() {
    all_pass(&["run", "--backend", "builtin"], &scenarios("core-"));
}

#[test]
fn core_scenarios_through_ng_socket() {
    let ko = build_dir().join("ng_socket.ko");
    if !ko.exists() {
        eprintln!(
            "SKIP: {} not built (run `make`); core scenarios through ng_socket.ko not run",
            ko.display()
        );
        return;
    }
    let ko = ko.display().to_string();
    all_pass(
        &["run", "--backend", "socket", "--ko", &ko],
        &scenarios("core-"),
    );
}

#[test]
fn socket_scenarios_through_ng_socket() {
    let ko = build_dir().join("ng_socket.ko");
    if !ko.exists() {
        eprintln!(
            "SKIP: {} not built (run `make`); socket-*.ngs not run",
            ko.display()
        );
        return;
    }
    let ko = ko.display().to_string();
    all_pass(&["run", "--ko", &ko], &scenarios("socket-"));
}

#[test]
fn core_scenarios_through_the_fake() {
    all_pass(&["run", "--backend", "fake"], &scenarios("core-"));
}

#[test]
fn failures_are_reported_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("ngs-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.ngs");
    std::fs::write(
        &bad,
        "scenario fails on purpose\nngctl list\n| no such line\n",
    )
    .unwrap();
    let malformed = dir.join("malformed.ngs");
    std::fs::write(&malformed, "ngctl list\nfrobnicate\n=> error EBOGUS\n").unwrap();
    let missing = dir.join("missing.ngs");
    std::fs::write(&missing, "require ng_nosuchmodule\nngctl list\n").unwrap();
    let good = dir.join("good.ngs");
    std::fs::write(&good, "ngctl list\n| There are * total nodes:\n").unwrap();
    let (code, out) = ngharness(
        &["run", "--backend", "builtin"],
        &[
            bad.clone(),
            malformed.clone(),
            missing.clone(),
            good.clone(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    let line = |p: &Path| {
        out.lines()
            .find(|l| l.contains(&*p.display().to_string()))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        line(&bad).starts_with(&format!(
            "FAIL {}:3: no line matching `no such line`",
            bad.display()
        )),
        "{out}"
    );
    assert!(
        line(&malformed).starts_with(&format!(
            "FAIL {}: malformed scenario: {}:2: unknown statement",
            malformed.display(),
            malformed.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{}:3: unknown errno name `EBOGUS`",
            malformed.display()
        )),
        "{out}"
    );
    assert!(line(&missing).contains("requires ng_nosuchmodule"), "{out}");
    assert_eq!(line(&good), format!("PASS {}", good.display()));
    assert!(out.contains("scenarios: 1 passed, 3 failed"), "{out}");
    let (code, out) = ngharness(&["run"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("usage: ngharness run"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
