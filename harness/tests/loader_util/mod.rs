//! Shared helpers of the loader tests: building the C fixture modules with the
//! FreeBSD kernel flags, and serialising tests that touch the (process-wide)
//! harness kernel.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
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

fn sysroot() -> Option<PathBuf> {
    if let Ok(s) = std::env::var("FREEBSD_SYSROOT") {
        return Some(PathBuf::from(s));
    }
    let home = std::env::var("HOME").ok()?;
    let cache = std::env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{home}/.cache"));
    Some(PathBuf::from(format!(
        "{cache}/ngsock/freebsd-15.0-sysroot"
    )))
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
    let sysroot = sysroot()?;
    let inc = sysroot.join("include");
    if !inc.join("sys/module.h").exists() {
        eprintln!(
            "SKIP: FreeBSD 15.0 sysroot not found at {} (run scripts/bootstrap.sh)",
            sysroot.display()
        );
        return None;
    }
    let out = out_dir();
    let src = fixtures_src().join(format!("{name}.c"));
    // Unique temporaries, renamed into place: test binaries may build the
    // same fixture at the same time.
    let pid = std::process::id();
    let obj = out.join(format!("{name}.o"));
    let obj_tmp = out.join(format!("{name}.{pid}.o.tmp"));
    let model = if kind == Kind::SmallModel {
        "-mcmodel=small"
    } else {
        "-mcmodel=kernel"
    };
    let st = Command::new("clang-19")
        .args([
            "--target=x86_64-unknown-freebsd15.0",
            "-c",
            "-O2",
            "-fno-pic",
            model,
        ])
        .args([
            "-mno-red-zone",
            "-mno-sse",
            "-msoft-float",
            "-ffreestanding",
            "-nostdinc",
        ])
        .arg("-isystem")
        .arg(&inc)
        .args([
            "-D_KERNEL",
            "-DKLD_MODULE",
            "-D__FreeBSD_version=1500068",
            "-Wno-format",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&obj_tmp)
        .status();
    match st {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("clang-19 failed on {}: {s}", src.display()),
        Err(e) => {
            eprintln!("SKIP: cannot run clang-19: {e}");
            return None;
        }
    }
    if kind == Kind::Object {
        std::fs::rename(&obj_tmp, &obj).expect("rename object");
        return Some(obj);
    }
    let ko = out.join(format!("{name}.ko"));
    let ko_tmp = out.join(format!("{name}.{pid}.ko.tmp"));
    let st = Command::new("ld.lld-19")
        .arg("-r")
        .arg("-o")
        .arg(&ko_tmp)
        .arg(&obj_tmp)
        .status();
    let _ = std::fs::remove_file(&obj_tmp);
    match st {
        Ok(s) if s.success() => {
            std::fs::rename(&ko_tmp, &ko).expect("rename module");
            Some(ko)
        }
        Ok(s) => panic!("ld.lld-19 -r failed for {name}: {s}"),
        Err(e) => {
            eprintln!("SKIP: cannot run ld.lld-19: {e}");
            None
        }
    }
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
