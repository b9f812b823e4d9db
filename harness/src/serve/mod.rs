//! `ngharness serve`: the harness kernel as a server of `PF_NETGRAPH`
//! sockets to other processes (docs/bridge.md).
//!
//! ```text
//! ngharness serve [--ko FILE]... [--listen PATH] [--clock real|manual] [--mode OCTAL]
//!                 [--cpus N]
//! ```
//! `--cpus N` (default 4) runs the kernel on N virtual CPUs (`kern::smp`);
//! each client request then runs as a system call on a kernel thread of
//! its own, concurrently with the kernel's threads.
//! Boots the harness kernel with the `--ko` modules (default
//! `build/ng_socket.ko build/ng_ksocket.ko`), listens on the Unix socket
//! `--listen` (default `$NGBRIDGE`, else `/tmp/ngbridge.sock`; mode 0666 by
//! default: any local user may open netgraph sockets, and the kernel's own
//! privilege checks apply to the credential of the caller), prints one line
//! `ngharness serve: ready on PATH (...)`, and serves until SIGINT, SIGTERM
//! or an `END` request. It then closes every client's sockets, runs the
//! end-of-scenario checks (leaks, locks, module unloads) and prints
//! `violations: none` or the list; exit status 1 if there is any, and the
//! kernel-panic status if the kernel panicked.
//!
//! Clients are processes running with `LD_PRELOAD=build/libngbridge.so`
//! (`bridge/`), or anything speaking [`crate::wire`] (the protocol, and a
//! Rust client of it in [`crate::wire::client`]). Parts:
//! * [`syscall`] — the single entry from a client request into the kernel;
//! * [`server`] — the loop, connections, readiness.

pub mod server;
pub mod syscall;

use std::path::PathBuf;

use server::{Clock, Options};

const USAGE: &str = "usage: ngharness serve [--ko FILE]... [--listen PATH] [--clock real|manual] [--mode OCTAL] [--cpus N]";

/// Default socket path when neither `--listen` nor `$NGBRIDGE` is given.
pub const DEFAULT_PATH: &str = "/tmp/ngbridge.sock";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        kos: Vec::new(),
        listen: std::env::var_os("NGBRIDGE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH)),
        clock: Clock::Real,
        mode: 0o666,
        cpus: 4,
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i).cloned().ok_or(format!("{a} needs a value"))
        };
        match a {
            "--ko" => o.kos.push(PathBuf::from(value()?)),
            "--listen" => o.listen = PathBuf::from(value()?),
            "--clock" => {
                o.clock = match value()?.as_str() {
                    "real" => Clock::Real,
                    "manual" => Clock::Manual,
                    v => return Err(format!("unknown clock `{v}`")),
                }
            }
            "--cpus" => {
                let v = value()?;
                o.cpus = v
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or(format!("bad --cpus `{v}`"))?;
            }
            "--mode" => {
                let v = value()?;
                o.mode = u32::from_str_radix(&v, 8).map_err(|_| format!("bad --mode `{v}`"))?;
            }
            s => return Err(format!("unknown argument `{s}`")),
        }
        i += 1;
    }
    if o.kos.is_empty() {
        o.kos = vec![
            PathBuf::from("build/ng_socket.ko"),
            PathBuf::from("build/ng_ksocket.ko"),
        ];
    }
    Ok(o)
}

/// Entry point of `ngharness serve ...` (`args` after the subcommand).
pub fn cli(args: &[String]) -> i32 {
    match parse(args) {
        Ok(o) => server::run(&o),
        Err(e) => {
            eprintln!("ngharness serve: {e}");
            eprintln!("{USAGE}");
            2
        }
    }
}
