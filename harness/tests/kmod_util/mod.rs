//! Building C test modules as FreeBSD amd64 kernel objects, as the modules
//! themselves are built: clang-19 with the kernel C flags of
//! `kmod/kernel-cflags` (through `kelf::kernel_cflags`), then `ld.lld-19 -r`
//! into a `.ko` as bsd.kmod.mk links one. Each step returns `None`, after a
//! `SKIP:` line, when its tool or the FreeBSD sysroot is missing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The FreeBSD 15.0 sysroot: `$FREEBSD_SYSROOT`, else the bootstrap cache.
pub fn sysroot() -> PathBuf {
    if let Ok(s) = std::env::var("FREEBSD_SYSROOT") {
        return PathBuf::from(s);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cache = std::env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{home}/.cache"));
    PathBuf::from(format!("{cache}/ngsock/freebsd-15.0-sysroot"))
}

/// The sysroot's include directory, if it holds `probe` (a header path).
pub fn sysroot_include(probe: &str) -> Option<PathBuf> {
    let inc = sysroot().join("include");
    if inc.join(probe).exists() {
        Some(inc)
    } else {
        eprintln!(
            "SKIP: FreeBSD 15.0 sysroot not found at {} (run scripts/bootstrap.sh)",
            sysroot().display()
        );
        None
    }
}

/// Code model of a test object.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// `-mcmodel=kernel`, as every kernel module.
    Kernel,
    /// `-mcmodel=small` (not a valid kernel module: absolute 32-bit addresses).
    Small,
}

/// `clang-19 -c` of `src` into `obj` with the kernel flags (target, kernel
/// headers from `inc`, code generation) and `extra`. Panics if clang
/// rejects the source.
pub fn compile(src: &Path, obj: &Path, inc: &Path, model: Model, extra: &[&str]) -> Option<()> {
    let flags = kelf::kernel_cflags(&["target", "kernel", "codegen"]);
    let flags = flags.into_iter().map(|f| match (f, model) {
        ("-mcmodel=kernel", Model::Small) => "-mcmodel=small",
        (f, _) => f,
    });
    let st = Command::new("clang-19")
        .args(flags)
        .arg("-c")
        .arg("-isystem")
        .arg(inc)
        .args(extra)
        .arg(src)
        .arg("-o")
        .arg(obj)
        .status();
    match st {
        Ok(s) if s.success() => Some(()),
        Ok(s) => panic!("clang-19 failed on {}: {s}", src.display()),
        Err(e) => {
            eprintln!("SKIP: cannot run clang-19: {e}");
            None
        }
    }
}

/// `ld.lld-19 -r -o ko obj`. Panics if the link fails.
pub fn link(obj: &Path, ko: &Path) -> Option<()> {
    let st = Command::new("ld.lld-19")
        .arg("-r")
        .arg("-o")
        .arg(ko)
        .arg(obj)
        .status();
    match st {
        Ok(s) if s.success() => Some(()),
        Ok(s) => panic!("ld.lld-19 -r failed for {}: {s}", obj.display()),
        Err(e) => {
            eprintln!("SKIP: cannot run ld.lld-19: {e}");
            None
        }
    }
}
