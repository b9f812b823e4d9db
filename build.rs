//! Compiles the C glue in `kmod/` for the kernel target (`x86_64-unknown-none`).
//!
//! The glue holds what Rust cannot express: module declaration macros, linker
//! set records, `MALLOC_DEFINE`, and wrappers for kernel macros and inline
//! functions. It is compiled with the flags FreeBSD's `bsd.kmod.mk` uses for
//! amd64 modules and bundled into the crate's static library, from which the
//! Makefile links the `.ko`. Host builds (unit tests) compile no C at all.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kmod");
    println!("cargo:rerun-if-env-changed=FREEBSD_SYSROOT");
    println!("cargo:rerun-if-env-changed=FREEBSD_SYSDIR");
    println!("cargo:rerun-if-env-changed=KMOD_CC");

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo:rerun-if-env-changed=NGSOCK_NO_GLUE");
    // Host builds compile no C; on FreeBSD, bsd.kmod.mk compiles the glue itself.
    if target_os != "none" || env::var_os("NGSOCK_NO_GLUE").is_some() {
        return;
    }
    let ksocket = env::var_os("CARGO_FEATURE_KSOCKET").is_some();
    let socket = env::var_os("CARGO_FEATURE_SOCKET").is_some();
    // Each module: its own declaration glue plus the service glue it uses.
    let (module, glue): (&str, &[&str]) = match (ksocket, socket) {
        (true, false) => (
            "ng_ksocket",
            &[
                "kmod/glue_common.c",
                "kmod/glue_socket.c",
                "kmod/ng_ksocket_glue.c",
            ],
        ),
        (false, true) => (
            "ng_socket",
            &["kmod/glue_common.c", "kmod/ng_socket_glue.c"],
        ),
        _ => panic!("build the kernel target with exactly one of the features `ksocket`, `socket`"),
    };

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut build = cc::Build::new();
    let compiler = env::var("KMOD_CC").unwrap_or_else(|_| {
        if cfg!(target_os = "freebsd") || which("clang-19").is_none() {
            "clang".into()
        } else {
            "clang-19".into()
        }
    });
    build
        .compiler(compiler)
        .no_default_flags(true)
        .cargo_metadata(false)
        .warnings(false)
        .include(manifest.join("kmod/include"))
        .include(manifest.join("kmod"));
    for flag in kernel_cflags() {
        build.flag(flag);
    }
    // __FILE__ (lock macros pass it to the kernel) and any debug info name
    // the checkout as "ngsock", wherever it is.
    build.flag(format!("-ffile-prefix-map={}=ngsock", manifest.display()));
    if let Ok(sysdir) = env::var("FREEBSD_SYSDIR") {
        let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
        let inc = out.join("machlinks");
        let _ = std::fs::create_dir_all(&inc);
        for (link, target) in [("machine", "amd64/include"), ("x86", "x86/include")] {
            let l = inc.join(link);
            let _ = std::fs::remove_file(&l);
            #[cfg(unix)]
            std::os::unix::fs::symlink(PathBuf::from(&sysdir).join(target), &l)
                .expect("symlink machine headers");
        }
        build.include(inc);
        build.include(&sysdir);
        build.include(format!("{sysdir}/contrib/ck/include"));
        build.flag(format!("-ffile-prefix-map={sysdir}=/usr/src/sys"));
    } else {
        let sysroot = env::var("FREEBSD_SYSROOT").unwrap_or_else(|_| {
            let home = env::var("HOME").unwrap_or_else(|_| "/root".into());
            let cache = env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{home}/.cache"));
            format!("{cache}/ngsock/freebsd-15.0-sysroot")
        });
        build.flag(format!("-isystem{sysroot}/include"));
        build.flag(format!("-ffile-prefix-map={sysroot}=freebsd-15.0-sysroot"));
    }
    for file in glue {
        build.file(manifest.join(file));
    }
    // Bundled into the staticlib; the Makefile extracts and links every glue object.
    build.cargo_metadata(true);
    build.compile(&format!("{module}_glue"));
}

/// The C flags of a FreeBSD amd64 kernel module: every flag of
/// `kmod/kernel-cflags` (the list the gate's and the harness's test objects
/// also use), in order.
fn kernel_cflags() -> Vec<String> {
    let path = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .join("kmod/kernel-cflags");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('['))
        .map(str::to_string)
        .collect()
}

fn which(name: &str) -> Option<PathBuf> {
    env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
