//! `ngharness`: the host kernel harness command line.
//!
//! ```text
//! ngharness load [-q] A.ko [B.ko ...]
//! ngharness run ...     (scenarios: see `scenario`)
//! ngharness race ...    (race scenarios under seeded schedules: see `race`)
//! ngharness bench ...   (data-path benchmark: see `bench`)
//! ngharness demo ...    (UDP echo server demo: see `demo`)
//! ngharness serve ...   (PF_NETGRAPH sockets for other processes: see `serve`)
//! ngharness fuzz ...    (fuzz targets, fork server, replay, minimizing: see `fuzz`)
//! ngharness coverage DATADIR MODULE.ko.full...  (edges no test reached)
//! ```
//! `load` boots the harness kernel, loads the modules in order (printing one
//! `kld:` line per linker step on stderr, and the kernel console), then
//! unloads them in reverse order and reports violations (leaks included).
//! Exit status: 0 on success, 1 on any load/unload failure or violation,
//! 2 on a usage error, `kern::PANIC_EXIT` on a kernel panic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ngharness::kern::{self, loader, printf, thread};

fn usage() -> ExitCode {
    eprintln!("usage: ngharness load [-q] A.ko [B.ko ...]");
    eprintln!("       ngharness run [options] SCENARIO...");
    eprintln!("       ngharness race [options] (race scenarios under many schedules: see `race`)");
    eprintln!("       ngharness bench [--quick] [options] [NG_SOCKET.ko NG_KSOCKET.ko]");
    eprintln!("       ngharness demo [--port N] [NG_SOCKET.ko NG_KSOCKET.ko]");
    eprintln!("       ngharness serve [--ko FILE]... [--listen PATH] [--clock real|manual]");
    eprintln!("       ngharness fuzz replay|run|min|cmin ... (see ngharness fuzz)");
    eprintln!("       ngharness coverage DATADIR MODULE.ko.full...");
    ExitCode::from(2)
}

fn cmd_load(args: &[String]) -> ExitCode {
    let mut quiet = false;
    let mut files: Vec<PathBuf> = Vec::new();
    for a in args {
        match a.as_str() {
            "-q" => quiet = true,
            s if s.starts_with('-') => return usage(),
            s => files.push(PathBuf::from(s)),
        }
    }
    if files.is_empty() {
        return usage();
    }
    ngharness::netgraph::boot();
    loader::set_trace(!quiet);
    printf::set_console_echo(true);
    // Names without '/' resolve against the directories of the given files
    // (and NGHARNESS_MODULE_PATH), e.g. for dependencies and autoloads.
    let mut path = loader::module_path();
    for f in &files {
        let dir = f
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !path.iter().any(|p| p == dir) {
            path.push(dir.to_path_buf());
        }
    }
    loader::set_module_path(path);
    // kldload(8) runs as a root user process.
    thread::set_curthread(thread::new_thread(thread::Cred::Root));

    let mut ok = true;
    let mut loaded: Vec<(i32, PathBuf)> = Vec::new();
    for f in &files {
        match loader::load(f) {
            Ok(id) => {
                println!("loaded {} (file id {id})", f.display());
                loaded.push((id, f.clone()));
            }
            Err(e) => {
                println!(
                    "kldload: can't load {}: {}",
                    f.display(),
                    printf::strerror(e.errno)
                );
                if !e.missing.is_empty() {
                    println!("  undefined symbols: {}", e.missing.join(" "));
                }
                ok = false;
                break;
            }
        }
    }
    // ng_socket, like FreeBSD's, refuses to unload unless allowed to (as
    // `make unload` does on FreeBSD).
    if ngharness::kern::sysctl::set("net.graph.socket.allow_unload", 1) {
        println!("sysctl net.graph.socket.allow_unload=1");
    }
    for (id, f) in loaded.iter().rev() {
        match loader::unload(*id) {
            Ok(()) => println!("unloaded {}", f.display()),
            Err(e) => {
                println!(
                    "kldunload: can't unload file: {} ({})",
                    printf::strerror(e),
                    f.display()
                );
                ok = false;
            }
        }
    }
    kern::lock::check_none_held("ngharness load");
    thread::check_not_critical("ngharness load");
    let v = kern::take_violations();
    if v.is_empty() {
        println!("violations: none");
    } else {
        println!("violations: {}", v.len());
        for m in &v {
            println!("  {m}");
        }
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("load") => cmd_load(&args[1..]),
        Some("run" | "run-one") => ExitCode::from(ngharness::scenario::cli(&args) as u8),
        Some("race" | "race-one") => ExitCode::from(ngharness::race::cli(&args) as u8),
        Some("bench") => ExitCode::from(ngharness::bench::cli(&args[1..]) as u8),
        Some("demo") => ExitCode::from(ngharness::demo::cli(&args[1..]) as u8),
        Some("serve") => ExitCode::from(ngharness::serve::cli(&args[1..]) as u8),
        Some("fuzz") => ExitCode::from(ngharness::fuzz::cli(&args[1..]) as u8),
        Some("coverage") => ExitCode::from(ngharness::fuzz::coverage::cli(&args[1..]) as u8),
        _ => usage(),
    }
}
