//! The strict userspace model of the FreeBSD kernel services the modules use.
//!
//! Every submodule exports its symbols through `register`. A broken contract
//! (a leak, double free, use after free, bad lock use...) is reported through
//! [`violation`]: it is printed, recorded, and fails the scenario that caused it.
//! A kernel `panic()` from a module ends the process (one process runs one
//! scenario) after printing the message; see [`kernel_panic`].

use std::sync::Mutex;

use crate::exports::Exports;

pub mod domain;
pub mod fault;
pub mod inet;
pub mod libkern;
pub mod loader;
pub mod lock;
pub mod malloc;
pub mod mbuf;
pub mod printf;
pub mod sched;
pub mod sockbuf;
pub mod sysctl;
pub mod thread;

static VIOLATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records a contract violation: printed at once, and counted so the scenario fails.
pub fn violation(msg: impl Into<String>) {
    let msg = msg.into();
    eprintln!("harness: VIOLATION: {msg}");
    VIOLATIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(msg);
}

/// Violations recorded so far (and clears the list).
pub fn take_violations() -> Vec<String> {
    std::mem::take(&mut *VIOLATIONS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Number of violations recorded so far.
pub fn violation_count() -> usize {
    VIOLATIONS.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Exit status of a harness process that ended in a kernel panic.
pub const PANIC_EXIT: i32 = 86;

/// A kernel panic: print it like FreeBSD does and end this process.
pub fn kernel_panic(msg: &str) -> ! {
    eprintln!("panic: {msg}");
    eprintln!("harness: kernel panic; the scenario fails");
    std::process::exit(PANIC_EXIT);
}

/// Exports every kernel service of the model.
pub fn register_all(ex: &mut Exports) {
    thread::register(ex);
    printf::register(ex);
    libkern::register(ex);
    sysctl::register(ex);
    lock::register(ex);
    loader::register(ex);
    malloc::register(ex);
    mbuf::register(ex);
    sched::register(ex);
    domain::register(ex);
    inet::register(ex);
    sockbuf::register(ex);
    crate::netgraph::core::register(ex);
    crate::netgraph::parse::register(ex);
}
