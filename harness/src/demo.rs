//! `ngharness demo`: the UDP echo server of ng_ksocket(4) (docs/ksocket.md
//! §11), built and used step by step, for anyone without FreeBSD (`make
//! demo`).
//!
//! ```text
//! ngharness demo [--port N] [--count N] [NG_SOCKET.ko NG_KSOCKET.ko]
//! ```
//!
//! 1. loads both modules into the harness kernel (printing the loader's
//!    steps);
//! 2. runs, in an interactive ngctl (the harness's ngctl emulation over
//!    `PF_NETGRAPH` sockets, i.e. through `ng_socket.ko`), the commands of
//!    that example: an `echo` node, a `ksocket` peer `inet/dgram/udp`, `bind
//!    inet/127.0.0.1:PORT`, then `getname` and `list` as one-shot ngctls;
//! 3. a real Linux UDP client in another OS thread sends datagrams to
//!    127.0.0.1:PORT while this thread runs the harness's event loop (the
//!    harness kernel is single-threaded: only this thread enters it), and
//!    prints what comes back;
//! 4. shuts the echo node down (the ksocket goes with its hook), unloads
//!    both modules and prints the leak check.
//!
//! `--port 0` binds an ephemeral port (getname shows which). Exit status 0
//! on success, 1 on failure, 2 on a usage error.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bench::net;
use crate::kern::{self, loader, sched};
use crate::scenario::kernel::Kernel as _;
use crate::scenario::ngctl::{self, Session};
use crate::scenario::port::NgPort;

fn usage() -> i32 {
    eprintln!("usage: ngharness demo [--port N] [--count N] [NG_SOCKET.ko NG_KSOCKET.ko]");
    2
}

enum ClientEv {
    Bound(SocketAddr),
    Sent(String),
    Got(SocketAddr, Vec<u8>),
    Failed(String),
    Done,
}

/// The client: `count` datagrams, each waiting for its echo (2 s).
fn client(server: SocketAddr, count: usize, tx: mpsc::Sender<ClientEv>) {
    let s = match UdpSocket::bind("127.0.0.1:0") {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(ClientEv::Failed(format!("bind: {e}")));
            return;
        }
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if let Ok(a) = s.local_addr() {
        let _ = tx.send(ClientEv::Bound(a));
    }
    let mut buf = [0u8; 2048];
    for i in 1..=count {
        let msg = format!("hello, ngsock #{i}");
        if let Err(e) = s.send_to(msg.as_bytes(), server) {
            let _ = tx.send(ClientEv::Failed(format!("send_to {server}: {e}")));
            return;
        }
        let _ = tx.send(ClientEv::Sent(msg));
        match s.recv_from(&mut buf) {
            Ok((n, from)) => {
                let _ = tx.send(ClientEv::Got(from, buf[..n].to_vec()));
            }
            Err(e) => {
                let _ = tx.send(ClientEv::Failed(format!("no echo within 2 s: {e}")));
                return;
            }
        }
    }
    let _ = tx.send(ClientEv::Done);
}

fn show(lines: &[String]) {
    for l in lines {
        println!("      {}", l.replace('\t', "    "));
    }
}

/// `ngharness demo ...`; returns the exit status.
pub fn cli(args: &[String]) -> i32 {
    let mut port: u16 = 7777;
    let mut count: usize = 3;
    let mut kos: Vec<PathBuf> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => match it.next().and_then(|v| v.parse().ok()) {
                Some(p) => port = p,
                None => return usage(),
            },
            "--count" => match it.next().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 => count = n,
                _ => return usage(),
            },
            s if s.starts_with('-') => return usage(),
            s => kos.push(PathBuf::from(s)),
        }
    }
    if kos.is_empty() {
        kos = ["ng_socket.ko", "ng_ksocket.ko"]
            .iter()
            .map(|m| Path::new("build").join(m))
            .collect();
    }
    for k in &kos {
        if !k.exists() {
            eprintln!(
                "ngharness demo: {} not found (build the modules first: make)",
                k.display()
            );
            return 1;
        }
    }
    match run(&kos, port, count) {
        Ok(()) => {
            println!("demo: ok");
            0
        }
        Err(e) => {
            println!("demo: FAILED: {e}");
            1
        }
    }
}

fn step(n: &mut usize, what: &str) {
    *n += 1;
    println!();
    println!("[{n}] {what}");
}

fn run(kos: &[PathBuf], port: u16, count: usize) -> Result<(), String> {
    println!(
        "ngsock demo: the UDP echo server of ng_ksocket(4), echo node <-> ksocket on 127.0.0.1"
    );
    println!("No FreeBSD kernel runs here: the host kernel harness loads the .ko files into this");
    println!("Linux process and links them against its model of the FreeBSD 15 kernel.");
    let mut n = 0;

    // 1. kldload, one file at a time, with the loader's steps.
    let mut ids = Vec::new();
    for k in kos {
        step(&mut n, &format!("kldload {}", k.display()));
        let loaded = net::boot(std::slice::from_ref(k)).map_err(|e| {
            println!("      {e}");
            format!("kldload {} failed", k.display())
        })?;
        for l in loaded {
            for t in &l.trace {
                println!("      kld: {t}");
            }
            for c in l.console.lines() {
                println!("      console: {c}");
            }
            let mods: Vec<String> = loader::modules()
                .into_iter()
                .filter(|m| m.file == Some(l.id))
                .map(|m| m.name)
                .collect();
            println!(
                "      loaded {} as file id {} (modules: {})",
                l.path.display(),
                l.id,
                mods.join(", ")
            );
            ids.push((l.id, l.path.clone()));
        }
    }
    kern::inet::set_idle_wait_ms(20, 5);
    let mut port_api: Box<dyn NgPort> = crate::scenario::backend::socket_port()?;
    let port_api = port_api.as_mut();
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut pid = 1000u32;
    let mut next_pid = || {
        pid += 1;
        pid
    };

    // 2. The echo server, typed into an interactive ngctl.
    step(
        &mut n,
        "ngctl (interactive, through ng_socket.ko's PF_NETGRAPH control and data sockets):",
    );
    let mut out = Vec::new();
    let mut s = Session::start(port_api, next_pid(), &base, &mut out);
    if !s.alive() {
        show(&out);
        return Err("ngctl could not create its socket node".into());
    }
    let cmds = [
        "mkpeer . echo tmp x".to_string(),
        "name .:tmp ec".to_string(),
        "mkpeer ec: ksocket k inet/dgram/udp".to_string(),
        "name ec:k ks".to_string(),
        format!("msg ks: bind inet/127.0.0.1:{port}"),
    ];
    for c in &cmds {
        println!("    + {c}");
        let words: Vec<String> = c.split(' ').map(str::to_string).collect();
        let mut o = Vec::new();
        let st = s.command(port_api, &words, &mut o);
        sched::run_until_idle();
        show(&o);
        if st != 0 {
            if c.contains(" bind ") {
                println!("      (is port {port} in use? --port 0 takes any free port)");
            }
            return Err(format!("ngctl: {c}: exit status {st}"));
        }
    }
    println!("    + quit      (ngctl's own node goes away; the echo node keeps the ksocket)");
    s.close(port_api);
    sched::run_until_idle();

    // 3. getname and list, as one-shot ngctls.
    let mut oneshot = |words: &[&str], n: &mut usize| -> Result<Vec<String>, String> {
        step(n, &format!("ngctl {}", words.join(" ")));
        let args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let r = ngctl::oneshot(port_api, &args, next_pid(), &base);
        sched::run_until_idle();
        show(&r.lines);
        if r.status != 0 {
            return Err(format!(
                "ngctl {}: exit status {}",
                words.join(" "),
                r.status
            ));
        }
        Ok(r.lines)
    };
    let lines = oneshot(&["msg", "ks:", "getname"], &mut n)?;
    let server: SocketAddr = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("Args:"))
        .and_then(|a| a.trim().strip_prefix("inet/"))
        .and_then(|a| a.parse().ok())
        .ok_or("getname did not print the bound address")?;
    oneshot(&["list"], &mut n)?;

    // 4. The client, in another OS thread; the kernel runs here.
    step(
        &mut n,
        &format!(
            "a real UDP client (std::net::UdpSocket, own OS thread) sends {count} datagram(s) to {server};"
        ),
    );
    println!("    this thread runs the harness kernel's event loop meanwhile");
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || client(server, count, tx));
    let deadline = Instant::now() + Duration::from_secs(5 + 2 * count as u64);
    let mut me: Option<SocketAddr> = None;
    let mut last_sent = String::new();
    let mut echoed = 0usize;
    let mut failure: Option<String> = None;
    let mut done = false;
    while !done && failure.is_none() {
        if Instant::now() >= deadline {
            failure = Some("the client did not finish in time".into());
            break;
        }
        let mut evs = Vec::new();
        kern::inet::pump_until(100, || {
            while let Ok(e) = rx.try_recv() {
                evs.push(e);
            }
            !evs.is_empty()
        });
        for e in evs {
            match e {
                ClientEv::Bound(a) => {
                    me = Some(a);
                    println!("    client bound to {a}");
                }
                ClientEv::Sent(m) => {
                    println!(
                        "    client {} -> {server}: {m:?}",
                        me.map_or("?".into(), |a| a.to_string())
                    );
                    last_sent = m;
                }
                ClientEv::Got(from, data) => {
                    let text = String::from_utf8_lossy(&data).into_owned();
                    println!(
                        "    client {} <- {from}: {text:?}",
                        me.map_or("?".into(), |a| a.to_string())
                    );
                    if from != server || text != last_sent {
                        failure = Some(format!(
                            "expected {last_sent:?} back from {server}, got {text:?} from {from}"
                        ));
                    } else {
                        echoed += 1;
                    }
                }
                ClientEv::Failed(e) => failure = Some(format!("client: {e}")),
                ClientEv::Done => done = true,
            }
        }
    }
    let _ = h.join();
    if let Some(f) = failure {
        return Err(f);
    }
    println!("    {echoed} of {count} datagram(s) echoed by echo node <-> ksocket");

    // 5. Shut the graph down, unload, check for leaks.
    // The ksocket goes with its only hook (docs/ksocket.md §4.8).
    oneshot(&["shutdown", "ec:"], &mut n)?;
    let left = oneshot(&["list"], &mut n)?;
    if left
        .iter()
        .any(|l| l.contains("Type: ksocket") || l.contains("Type: echo"))
    {
        return Err("the echo server's nodes are still there".into());
    }
    for (id, path) in ids.iter().rev() {
        step(&mut n, &format!("kldunload {}", path.display()));
        sched::run_until_idle();
        // ng_socket, like FreeBSD's, unloads only when allowed to.
        let _ = kern::sysctl::set("net.graph.socket.allow_unload", 1);
        match loader::kldunload(*id, loader::LINKER_UNLOAD_NORMAL) {
            Ok(()) => println!("      unloaded (file id {id})"),
            Err(e) => {
                return Err(format!(
                    "kldunload {}: {}",
                    path.display(),
                    kern::printf::strerror(e)
                ))
            }
        }
    }
    step(&mut n, "leak check");
    let mut k = crate::scenario::kernel::HarnessKernel::boot(&[])?;
    let problems = k.end_checks();
    let mallocs = kern::malloc::live_total();
    let mbufs = kern::mbuf::live();
    let sockets = kern::domain::open_sockets() + kern::inet::live_sockets();
    println!(
        "      live malloc blocks: {mallocs}, live mbufs: {mbufs}, open sockets: {sockets}, contract violations: {}",
        problems.len()
    );
    show(&problems);
    if !problems.is_empty() || mbufs != 0 || sockets != 0 {
        return Err(format!("{} leak(s) or violation(s)", problems.len().max(1)));
    }
    println!("      0 leaks");
    Ok(())
}
