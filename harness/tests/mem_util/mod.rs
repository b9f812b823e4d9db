//! Shared helpers of the memory-model tests (`mem_*.rs`).
//!
//! Violations, live-object tables and the fault plan are process-global, so
//! the tests of one binary run one at a time ([`serial`]) and each starts and
//! ends with no pending violations. A test that expects a kernel panic
//! re-runs itself in a child process ([`panics_in_child`]).

#![allow(dead_code)]

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use ngharness::kern::{fault, take_violations, thread, PANIC_EXIT};

static LOCK: Mutex<()> = Mutex::new(());

/// Environment variable naming the test a child process should run.
pub const CHILD_ENV: &str = "NGHARNESS_MEM_TEST_CHILD";

/// Serialises the tests of this binary; installs the kernel thread model on
/// this OS thread; clears violations and the fault plan.
pub fn serial() -> MutexGuard<'static, ()> {
    let g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    thread::init();
    fault::clear();
    let _ = take_violations();
    g
}

/// Takes the violations recorded so far.
pub fn violations() -> Vec<String> {
    take_violations()
}

/// Asserts that no violation was recorded.
#[track_caller]
pub fn expect_clean() {
    let v = take_violations();
    assert!(v.is_empty(), "unexpected violations: {v:#?}");
}

/// Asserts that exactly the recorded violations each contain one of the
/// `needles` (in order), and returns them.
#[track_caller]
pub fn expect_violations(needles: &[&str]) -> Vec<String> {
    let v = take_violations();
    assert_eq!(
        v.len(),
        needles.len(),
        "violations {v:#?} expected to match {needles:?}"
    );
    for (msg, needle) in v.iter().zip(needles) {
        assert!(
            msg.contains(needle),
            "violation {msg:?} does not contain {needle:?}"
        );
    }
    v
}

/// True inside the child process started for test `name`.
pub fn is_child(name: &str) -> bool {
    let child = std::env::var(CHILD_ENV).is_ok_and(|v| v == name);
    if child {
        thread::init();
    }
    child
}

/// Runs test `name` in a child process (which must end in a kernel panic);
/// returns its stderr after checking the exit status.
#[track_caller]
pub fn panics_in_child(name: &str) -> String {
    let exe = std::env::current_exe().expect("test executable");
    let out = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .expect("run child test");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(PANIC_EXIT),
        "child {name} did not panic the kernel; stderr:\n{err}"
    );
    err
}
