//! Shared helpers of the netgraph core tests (ng_*.rs).
//!
//! The harness runs kernel code on one OS thread at a time and the per-CPU
//! block (curthread) is process-wide, so tests of one file are serialised;
//! each runs on a fresh OS thread, which gives it a fresh netgraph core and
//! event loop (their state is per thread).

#![allow(dead_code)]

#[path = "../kmod_util/mod.rs"]
mod kmod_util;

use std::sync::Mutex;

use ngharness::kern;
use ngharness::netgraph::client::Client;
use ngharness::netgraph::core;

static LOCK: Mutex<()> = Mutex::new(());

/// Runs `f` on a fresh thread; returns its result and the violations it caused.
pub fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> (R, Vec<String>) {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    kern::take_violations();
    let r = match std::thread::spawn(f).join() {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e),
    };
    (r, kern::take_violations())
}

/// Runs `f` with a client, then closes it, drains the event loop and checks
/// that netgraph is quiescent and that nothing broke a contract.
pub fn clean(f: impl FnOnce(&Client) + Send + 'static) {
    let ((), v) = run(move || {
        let c = Client::new().expect("client");
        f(&c);
        drop(c);
        let problems = core::check::quiesce();
        assert!(problems.is_empty(), "not quiescent: {problems:#?}");
        let live = kern::malloc::live(core::item::msg_type());
        assert_eq!(live, 0, "netgraph_msg blocks leaked");
    });
    assert!(v.is_empty(), "violations: {v:#?}");
}

/// FreeBSD errno values (not Linux's).
pub const EINVAL: i32 = fbsd_sys::EINVAL as i32;
pub const ENOENT: i32 = fbsd_sys::ENOENT as i32;
pub const EEXIST: i32 = fbsd_sys::EEXIST as i32;
pub const ENXIO: i32 = fbsd_sys::ENXIO as i32;
pub const ENETDOWN: i32 = fbsd_sys::ENETDOWN as i32;
pub const EIO: i32 = fbsd_sys::EIO as i32;
pub const EADDRINUSE: i32 = fbsd_sys::EADDRINUSE as i32;
pub const ENOMEM: i32 = fbsd_sys::ENOMEM as i32;
pub const EBUSY: i32 = fbsd_sys::EBUSY as i32;
pub const ENOSYS: i32 = fbsd_sys::ENOSYS as i32;
pub const EOPNOTSUPP: i32 = fbsd_sys::EOPNOTSUPP as i32;
pub const EHOSTUNREACH: i32 = fbsd_sys::EHOSTUNREACH as i32;
pub const EWOULDBLOCK: i32 = fbsd_sys::EWOULDBLOCK as i32;
pub const ENOBUFS: i32 = fbsd_sys::ENOBUFS as i32;

use std::cell::RefCell;
use std::ffi::{c_int, c_void};

use fbsd_sys::{ng_apply_info, ng_type};

ngharness::kernel_local! {
    static LOG: RefCell<Vec<String>> = RefCell::new(Vec::new());
    static APPLIED: RefCell<Vec<i32>> = RefCell::new(Vec::new());
}

/// Appends a line to this thread's event log.
pub fn log(s: impl Into<String>) {
    LOG.with(|l| l.borrow_mut().push(s.into()));
}

/// Takes this thread's event log.
pub fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

unsafe extern "C" fn on_apply(_ctx: *mut c_void, error: c_int) {
    APPLIED.with(|a| a.borrow_mut().push(error));
    log(format!("apply({error})"));
}

/// A fresh apply record whose callback logs `apply(<error>)` and records the error.
pub fn new_apply() -> *mut ng_apply_info {
    Box::leak(Box::new(ng_apply_info {
        apply: Some(on_apply),
        context: std::ptr::null_mut(),
        refs: 0,
        error: 0,
    }))
}

/// Errors the apply callbacks of [`new_apply`] records received.
pub fn take_applied() -> Vec<i32> {
    APPLIED.with(|a| std::mem::take(&mut *a.borrow_mut()))
}

/// A new node type (leaked, ABI version set) configured by `f`; not registered.
pub fn new_type(name: &str, f: impl FnOnce(&mut ng_type)) -> *mut ng_type {
    let t: &'static mut ng_type = Box::leak(Box::default());
    t.version = fbsd_sys::NG_ABI_VERSION;
    t.name = Box::leak(format!("{name}\0").into_boxed_str())
        .as_ptr()
        .cast();
    f(t);
    t
}

/// Registers a type built with [`new_type`].
pub fn register_type(t: *mut ng_type) {
    // SAFETY: a valid type structure.
    let e = unsafe { ngharness::netgraph::core::exports::ngk_newtype(t) };
    assert_eq!(e, 0, "ng_newtype");
}

/// A NUL-terminated C string kept alive for the test.
pub fn cs(s: &str) -> *const std::ffi::c_char {
    Box::leak(format!("{s}\0").into_boxed_str()).as_ptr().cast()
}

/// The hook `name` of `node` (NULL if none).
pub fn findhook(node: fbsd_sys::node_p, name: &str) -> fbsd_sys::hook_p {
    // SAFETY: a live node; a C string.
    unsafe { ngharness::netgraph::core::exports::ngk_findhook(node, cs(name)) }
}

/// Builds `tests/ng_common/<name>.c` into a `.ko` with the FreeBSD kernel
/// flags (clang-19 + ld.lld-19 -r). `None` (after saying why) when the
/// FreeBSD sysroot or the tools are missing.
pub fn build_module(name: &str) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let inc = kmod_util::sysroot_include("netgraph/netgraph.h")?;
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/ng_common/{name}.c"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ng-modules");
    std::fs::create_dir_all(&out).ok()?;
    let pid = std::process::id();
    let obj = out.join(format!("{name}.{pid}.o"));
    let ko = out.join(format!("{name}.ko"));
    let warnings = ["-Wall", "-Werror"];
    kmod_util::compile(&src, &obj, &inc, kmod_util::Model::Kernel, &warnings)?;
    let tmp = out.join(format!("{name}.{pid}.ko.tmp"));
    let linked = kmod_util::link(&obj, &tmp);
    let _ = std::fs::remove_file(&obj);
    linked?;
    std::fs::rename(&tmp, &ko).ok()?;
    Some(ko)
}
