//! Shared helpers of the loader tests: building the C fixture modules with the
//! FreeBSD kernel flags, and serialising tests that touch the (process-wide)
//! harness kernel.
#![allow(dead_code)]

#[path = "../kmod_util/mod.rs"]
mod kmod_util;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the test lock and boots the harness kernel on this OS thread
/// (installs GS, thread0 as curthread). Clears leftover violations and console.
pub fn kernel() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ngharness::netgraph::boot();
    ngharness::kern::thread::set_curthread(ngharness::kern::thread::thread0());
    let _ = ngharness::kern::take_violations();
    let _ = ngharness::kern::printf::console_take();
    g
}

fn fixtures_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Directory the fixtures are built into.
pub fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("loader-fixtures");
    std::fs::create_dir_all(&d).expect("create fixture dir");
    d
}

static BUILD: Mutex<()> = Mutex::new(());

/// How a fixture is built.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `clang -c` then `ld.lld -r` into `<name>.ko` (like bsd.kmod.mk).
    Module,
    /// `clang -c` only, into `<name>.o`.
    Object,
    /// Like `Module` but with `-mcmodel=small` (not a valid kernel module).
    SmallModel,
}

/// Builds fixture `name` (tests/fixtures/<name>.c). Returns `None`, after
/// printing why, when the FreeBSD sysroot or the LLVM tools are missing.
pub fn fixture(name: &str, kind: Kind) -> Option<PathBuf> {
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let inc = kmod_util::sysroot_include("sys/module.h")?;
    let out = out_dir();
    let src = fixtures_src().join(format!("{name}.c"));
    // Unique temporaries, renamed into place: test binaries may build the
    // same fixture at the same time.
    let pid = std::process::id();
    let obj = out.join(format!("{name}.o"));
    let obj_tmp = out.join(format!("{name}.{pid}.o.tmp"));
    let model = if kind == Kind::SmallModel {
        kmod_util::Model::Small
    } else {
        kmod_util::Model::Kernel
    };
    kmod_util::compile(&src, &obj_tmp, &inc, model, &["-Wno-format"])?;
    if kind == Kind::Object {
        std::fs::rename(&obj_tmp, &obj).expect("rename object");
        return Some(obj);
    }
    let ko = out.join(format!("{name}.ko"));
    let ko_tmp = out.join(format!("{name}.{pid}.ko.tmp"));
    let linked = kmod_util::link(&obj_tmp, &ko_tmp);
    let _ = std::fs::remove_file(&obj_tmp);
    linked?;
    std::fs::rename(&ko_tmp, &ko).expect("rename module");
    Some(ko)
}

/// `fixture(name, Kind::Module)`, returning from the test if unavailable.
#[macro_export]
macro_rules! module_or_skip {
    ($name:expr) => {
        match loader_util::fixture($name, loader_util::Kind::Module) {
            Some(p) => p,
            None => return,
        }
    };
    ($name:expr, $kind:expr) => {
        match loader_util::fixture($name, $kind) {
            Some(p) => p,
            None => return,
        }
    };
}

/// Reads a C string at `addr`.
pub fn cstr_at(addr: usize) -> String {
    // SAFETY: test helper; `addr` is a NUL-terminated string in a loaded module.
    unsafe { std::ffi::CStr::from_ptr(addr as *const std::ffi::c_char) }
        .to_string_lossy()
        .into_owned()
}

/// Calls a module function `fn() -> R` by address.
pub fn call0<R>(addr: usize) -> R {
    // SAFETY: test helper; `addr` is a module function of that signature.
    let f: extern "C" fn() -> R = unsafe { std::mem::transmute_copy(&addr) };
    f()
}

/// The exported host function `name` as a typed function pointer.
///
/// # Safety
/// `F` must be the function's true signature.
pub unsafe fn export_fn<F: Copy>(ex: &ngharness::exports::Exports, name: &str) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
    let a = ex
        .get(name)
        .unwrap_or_else(|| panic!("{name} not exported"))
        .addr;
    // SAFETY: the caller guarantees `F` is the function pointer type of `name`.
    unsafe { std::mem::transmute_copy::<usize, F>(&a) }
}
