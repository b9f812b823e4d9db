//! The fuzz corpus and the reproducers of past findings, replayed through
//! the fork server against the built modules (`ngharness fuzz replay`):
//! every input of `fuzz/corpus/<target>` and `fuzz/regress/<target>` must
//! end clean. And the fork server's own check: the `selftest` target
//! breaks the kernel's contracts on purpose and each kind of finding must
//! be reported (a replay that cannot fail proves nothing).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository top")
        .to_path_buf()
}

fn modules() -> Option<Vec<String>> {
    let build = std::env::var_os("NGSOCK_BUILD").map_or_else(|| top().join("build"), PathBuf::from);
    let kos: Vec<PathBuf> = ["ng_socket.ko", "ng_ksocket.ko"]
        .iter()
        .map(|m| build.join(m))
        .collect();
    if let Some(missing) = kos.iter().find(|k| !k.exists()) {
        eprintln!("SKIP: {} not built (run `make`)", missing.display());
        return None;
    }
    Some(kos.iter().map(|k| k.display().to_string()).collect())
}

fn replay(kos: &[String], extra: &[&str], target: &str, paths: &[PathBuf]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ngharness"));
    c.current_dir(top()).args(["fuzz", "replay"]);
    for k in kos {
        c.args(["--ko", k]);
    }
    c.args(extra).arg(target).args(paths);
    c.output().expect("run ngharness fuzz replay")
}

fn corpus_of(target: &str) {
    let Some(kos) = modules() else {
        return;
    };
    let dirs: Vec<PathBuf> = ["corpus", "regress"]
        .iter()
        .map(|d| top().join("fuzz").join(d).join(target))
        .filter(|d| d.is_dir())
        .collect();
    assert!(!dirs.is_empty(), "no corpus for {target}");
    let o = replay(&kos, &[], target, &dirs);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{}", out.lines().last().unwrap_or(""));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains(" 0 failed"), "{out}");
}

#[test]
fn corpus_ksock_msg() {
    corpus_of("ksock-msg");
}

#[test]
fn corpus_ngsock_calls() {
    corpus_of("ngsock-calls");
}

#[test]
fn corpus_ksock_data() {
    corpus_of("ksock-data");
}

/// Each deliberate bug of the self-test target is reported as what it is.
#[test]
fn fork_server_reports_every_kind_of_finding() {
    let Some(kos) = modules() else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-selftest");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let cases: &[(&str, &str)] = &[
        ("u", "ok"),
        ("l", "FINDING violation: harness: VIOLATION: leak: #"),
        (
            "v",
            "FINDING violation: harness: VIOLATION: selftest: a violation on purpose",
        ),
        ("p", "FINDING panic: panic: selftest: a panic on purpose"),
        ("h", "timeout"),
        ("r", "FINDING "),
    ];
    for (input, want) in cases {
        let f = dir.join(format!("case-{input}"));
        std::fs::write(&f, input).expect("write input");
        let o = replay(&kos, &["--timeout-ms", "1500"], "selftest", &[f]);
        let out = String::from_utf8_lossy(&o.stdout);
        if *want == "ok" {
            assert!(
                o.status.success() && out.contains(" 0 failed"),
                "{input}: {out}"
            );
        } else {
            assert!(!o.status.success(), "{input}: {out}");
            assert!(out.contains(want), "{input}: want {want:?} in:\n{out}");
        }
    }
}
