//! `ngharness bench`: the data-path benchmark (`make bench`).
//!
//! ```text
//! ngharness bench [--quick] [-n PACKETS] [--cg-packets PACKETS] [--size BYTES]
//!                 [--callgrind | --no-callgrind] [--reference DIR]
//!                 [NG_SOCKET.ko NG_KSOCKET.ko]
//! ```
//!
//! UDP through a socket node (our `ng_socket.ko`, reached through
//! `PF_NETGRAPH` control and data sockets) ↔ ksocket (our `ng_ksocket.ko`,
//! `inet/dgram/udp` bound to 127.0.0.1) ↔ a real Linux UDP socket on
//! loopback, and back. Cases:
//!
//! * **send, connected**: data socket → socket node → ksocket (connected to
//!   the peer) → `sosend` → the peer;
//! * **receive, connected**: the peer → that ksocket → socket node → data
//!   socket (no source address is asked for);
//! * **receive, unconnected**: the peer → a bound, unconnected ksocket, whose
//!   packets carry the source-address tag → data socket;
//! * **echo, unconnected**: the peer → a ksocket hooked to an echo node →
//!   echo → the ksocket sends to the tag's address → the peer: an
//!   unconnected receive and a tag-addressed send in one round trip. A user
//!   process cannot attach mbuf tags, so the tag-addressed send is only
//!   reachable through a kernel node; its cost alone is shown as the round
//!   trip minus the unconnected receive;
//! * **receive, local address** and **echo, local address**: the same as
//!   the unconnected receive and the echo, on a ksocket bound to the
//!   wildcard address with `IP_RECVDSTADDR` on (an ngsock addition:
//!   datagrams also carry the local-address tag, answers leave from its
//!   address with `IP_SENDSRCADDR` control data). FreeBSD has no such
//!   path: their instructions are information, their allocations a budget
//!   (the two tags, nothing more for the answer);
//! * **end to end** (reported, not a budget): the data socket → socket
//!   node → the connected ksocket → UDP → the peer, which sends it back →
//!   ksocket → socket node → the data socket: round trips per second (native
//!   run) and instructions per round trip in the whole harness process, of
//!   which the modules' share.
//!
//! Measured per packet, over the modules' own execution:
//!
//! * **allocations** (malloc(9), mbufs, clusters, mbuf tags) and **payload
//!   copies** (`memcpy`/`memmove`/`bcopy`/`m_copydata`/`m_copyback`/
//!   `m_copym`/`m_dup`/`m_pullup`/`m_append`/`uiomove`... of at least the
//!   payload size) whose calling site lies in a module image, from the
//!   kernel model's probes ([`probe`]) during a native run. What the
//!   harness's own socket layer, netgraph core and Linux I/O allocate or
//!   copy is attributed to harness call sites, shown separately and not
//!   counted;
//! * **instructions executed inside each module image**, from a child run
//!   of this command under callgrind (`--collect-atstart=no`, collection
//!   switched on around each measured phase by client requests,
//!   `--dump-instr=yes`): the Ir of every instruction address inside the
//!   module's image, divided by the packets.
//!
//! `NGBENCH_KEEP=FILE` keeps the callgrind child's raw results (per
//! module, per function and per instruction: `ins CASE MODULE SYMBOL
//! OFFSET IR`) for a closer look with `llvm-objdump -d`.
//!
//! Budgets: 0 payload copies; 0 allocations per packet on the connected
//! send path (and on the connected receive path, which has no tag), at most
//! 1 (the address tag) per unconnected received datagram; and per row of
//! [`ROWS`], instructions per packet of the module at most FreeBSD's: the
//! figures of FreeBSD's own `ng_ksocket.c` and `ng_socket.c` built with the
//! project's toolchain and measured by this bench (the [`ROWS`] figures),
//! or, with `--reference DIR` (`make bench FREEBSD_SRC=...`), those modules
//! built from a FreeBSD source tree into DIR (`scripts/build-ref.sh`) and
//! measured in the same run, side by side. Exit status 1 if a budget is
//! exceeded, 2 on a usage error, 3 if the bench itself failed.

pub mod callgrind;
pub mod hostsyms;
mod instr;
pub mod net;
pub mod probe;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::kern::fault::Caller;
use crate::kern::loader;
use instr::*;
use net::{UdpGraph, HOOK_CONNECTED, HOOK_LOCALADDR, HOOK_UNCONNECTED};

/// A measured case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Case {
    /// Data socket → ksocket (connected) → peer.
    SendConnected,
    /// Peer → connected ksocket → data socket.
    RecvConnected,
    /// Peer → unconnected ksocket (source tag) → data socket.
    RecvUnconnected,
    /// Peer → ksocket → echo → ksocket (tag-addressed send) → peer.
    EchoUnconnected,
    /// Peer → unconnected ksocket with `IP_RECVDSTADDR` (address and
    /// local-address tags) → data socket.
    RecvLocalAddr,
    /// Peer → ksocket with `IP_RECVDSTADDR` → echo → ksocket (sent from
    /// the local-address tag's address) → peer.
    EchoLocalAddr,
    /// Data socket → ksocket → peer → ksocket → data socket.
    EndToEnd,
}

/// Every case, in report order.
pub const CASES: [Case; 7] = [
    Case::SendConnected,
    Case::RecvConnected,
    Case::RecvUnconnected,
    Case::EchoUnconnected,
    Case::RecvLocalAddr,
    Case::EchoLocalAddr,
    Case::EndToEnd,
];

/// A row of the instruction table: a module's instructions per packet in a
/// case, and FreeBSD's figure for it (the budget).
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Report label.
    pub label: &'static str,
    /// The case measured.
    pub case: Case,
    /// The module file.
    pub module: &'static str,
    /// FreeBSD's own module, measured by this bench: FreeBSD 15-CURRENT's
    /// `sys/netgraph/ng_ksocket.c` and `ng_socket.c` built with the
    /// project's toolchain (`scripts/build-ref.sh`), 512-byte packets.
    pub freebsd: f64,
}

/// The rows, in report order.
pub const ROWS: [Row; 6] = [
    Row {
        label: "ng_ksocket send, connected",
        case: Case::SendConnected,
        module: "ng_ksocket.ko",
        freebsd: 39.0,
    },
    Row {
        label: "ng_ksocket receive, connected",
        case: Case::RecvConnected,
        module: "ng_ksocket.ko",
        freebsd: 114.0,
    },
    Row {
        label: "ng_ksocket receive, unconnected (tag)",
        case: Case::RecvUnconnected,
        module: "ng_ksocket.ko",
        freebsd: 147.0,
    },
    Row {
        label: "ng_ksocket echo (receive + tag send)",
        case: Case::EchoUnconnected,
        module: "ng_ksocket.ko",
        freebsd: 193.0,
    },
    Row {
        label: "ng_socket send (data socket -> hook)",
        case: Case::SendConnected,
        module: "ng_socket.ko",
        freebsd: 133.0,
    },
    Row {
        label: "ng_socket receive (hook -> data socket)",
        case: Case::RecvConnected,
        module: "ng_socket.ko",
        freebsd: 55.0,
    },
];

impl Case {
    /// Short key (dump triggers, child output).
    pub fn key(self) -> &'static str {
        match self {
            Case::SendConnected => "send-connected",
            Case::RecvConnected => "recv-connected",
            Case::RecvUnconnected => "recv-unconnected",
            Case::EchoUnconnected => "echo-unconnected",
            Case::RecvLocalAddr => "recv-localaddr",
            Case::EchoLocalAddr => "echo-localaddr",
            Case::EndToEnd => "end-to-end",
        }
    }

    fn from_key(s: &str) -> Option<Case> {
        CASES.iter().copied().find(|c| c.key() == s)
    }

    /// Report label.
    pub fn label(self) -> &'static str {
        match self {
            Case::SendConnected => "send, connected",
            Case::RecvConnected => "receive, connected",
            Case::RecvUnconnected => "receive, unconnected",
            Case::EchoUnconnected => "echo, unconnected",
            Case::RecvLocalAddr => "receive, local address",
            Case::EchoLocalAddr => "echo, local address",
            Case::EndToEnd => "end to end (round trip)",
        }
    }

    /// Allocation budget per packet (both modules together).
    pub fn alloc_budget(self) -> Option<f64> {
        match self {
            Case::SendConnected | Case::RecvConnected => Some(0.0),
            Case::RecvUnconnected => Some(1.0),
            // The address tag and the local-address tag; the send from the
            // tag's address allocates nothing (a kept control mbuf).
            Case::RecvLocalAddr | Case::EchoLocalAddr => Some(2.0),
            Case::EchoUnconnected | Case::EndToEnd => None,
        }
    }

    fn run(self, g: &mut UdpGraph, payload: &[u8]) -> Result<(), String> {
        match self {
            Case::SendConnected => g.send_connected(payload),
            Case::RecvConnected => g.receive(HOOK_CONNECTED, g.connected, payload),
            Case::RecvUnconnected => g.receive(HOOK_UNCONNECTED, g.unconnected, payload),
            Case::EchoUnconnected => g.echo_round_trip(payload),
            Case::RecvLocalAddr => g.receive(HOOK_LOCALADDR, g.localaddr, payload),
            Case::EchoLocalAddr => g.echo_localaddr_round_trip(payload),
            Case::EndToEnd => g.round_trip(payload),
        }
    }
}

/// Module files under test: ng_socket.ko first (ng_ksocket.ko does not
/// depend on it, but the graph needs both).
const MODULES: [&str; 2] = ["ng_socket.ko", "ng_ksocket.ko"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CgMode {
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone)]
struct Opts {
    packets: usize,
    cg_packets: usize,
    warmup: usize,
    size: usize,
    callgrind: CgMode,
    kos: Vec<PathBuf>,
    /// Internal: run as the callgrind child, writing results here.
    child: Option<PathBuf>,
    /// Internal: run as the native end-to-end child, writing results here.
    child_native: Option<PathBuf>,
    /// FreeBSD's own modules (`ng_socket.ko`, `ng_ksocket.ko` in DIR), to
    /// measure side by side.
    reference: Option<PathBuf>,
}

fn usage() -> i32 {
    eprintln!(
        "usage: ngharness bench [--quick] [-n PACKETS] [--cg-packets PACKETS] [--size BYTES]\n\
         \x20                      [--callgrind | --no-callgrind] [--reference DIR]\n\
         \x20                      [NG_SOCKET.ko NG_KSOCKET.ko]"
    );
    2
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        packets: 2000,
        cg_packets: 50,
        warmup: 20,
        size: 512,
        callgrind: CgMode::Auto,
        kos: Vec::new(),
        child: None,
        child_native: None,
        reference: None,
    };
    let mut it = args.iter();
    let num = |v: Option<&String>, what: &str| -> Result<usize, String> {
        v.and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{what} needs a positive number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {
                o.packets = 50;
                o.warmup = 5;
                o.callgrind = CgMode::Off;
            }
            "-n" | "--packets" => o.packets = num(it.next(), a)?,
            "--cg-packets" => o.cg_packets = num(it.next(), a)?,
            "--warmup" => o.warmup = num(it.next(), a)?,
            "--size" => o.size = num(it.next(), a)?,
            "--callgrind" => o.callgrind = CgMode::On,
            "--no-callgrind" => o.callgrind = CgMode::Off,
            "--child" => {
                o.child = Some(PathBuf::from(it.next().ok_or("--child needs a file")?));
            }
            "--child-native" => {
                o.child_native = Some(PathBuf::from(
                    it.next().ok_or("--child-native needs a file")?,
                ));
            }
            "--reference" => {
                o.reference = Some(PathBuf::from(
                    it.next().ok_or("--reference needs a directory")?,
                ));
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => o.kos.push(PathBuf::from(s)),
        }
    }
    if o.size > 9000 {
        return Err("--size: at most 9000 bytes (net.inet.udp.maxdgram is 9216)".into());
    }
    if o.kos.is_empty() {
        o.kos = MODULES.iter().map(|m| Path::new("build").join(m)).collect();
    }
    Ok(o)
}

/// `ngharness bench ...`; returns the exit status.
pub fn cli(args: &[String]) -> i32 {
    let o = match parse_opts(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ngharness bench: {e}");
            return usage();
        }
    };
    for k in &o.kos {
        if !k.exists() {
            eprintln!(
                "ngharness bench: {} not found (build the modules first: make)",
                k.display()
            );
            return 3;
        }
    }
    if let Some(dir) = &o.reference {
        for m in MODULES {
            if !dir.join(m).exists() {
                eprintln!(
                    "ngharness bench: {} not found (scripts/build-ref.sh FREEBSD_SRC {} builds it)",
                    dir.join(m).display(),
                    dir.display()
                );
                return 3;
            }
        }
    }
    if let Some(out) = &o.child_native {
        return match child_native(&o, out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ngharness bench (end-to-end child): {e}");
                3
            }
        };
    }
    if let Some(out) = &o.child {
        return match child(&o, out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ngharness bench (callgrind child): {e}");
                3
            }
        };
    }
    match parent(&o) {
        Ok(pass) => i32::from(!pass),
        Err(e) => {
            eprintln!("ngharness bench: {e}");
            3
        }
    }
}

// ---------------------------------------------------------------------------
// Attribution

/// Who made a call: a module image (by file name) or the harness.
fn owner_of(c: Caller, files: &[loader::FileInfo]) -> Option<String> {
    let a = c.addr()?;
    files
        .iter()
        .find(|f| f.contains(a))
        .map(|f| f.filename.clone())
}

/// `file.ko:sym+0x1c` → a readable function name.
fn function_of(addr: usize) -> String {
    let Some(s) = loader::symbolize(addr) else {
        return format!("{addr:#x}");
    };
    let s = s.split_once(':').map_or(s.as_str(), |(_, r)| r);
    let sym = s.rsplit_once('+').map_or(s, |(l, _)| l);
    short_name(sym)
}

/// Demangled, with the crate paths of the module dropped.
fn short_name(sym: &str) -> String {
    let d = format!("{:#}", rustc_demangle::demangle(sym));
    d.replace("ngsock::", "")
        .replace("core::", "")
        .replace("kern::ngpriv::", "")
}

/// Per-packet counters of one case, from the probes.
#[derive(Debug, Default, Clone)]
struct Counters {
    /// Module file → (allocations, payload copies, bytes copied).
    modules: BTreeMap<String, (usize, usize, usize)>,
    /// Module allocation/copy sites: (module, site, what) → count.
    module_sites: BTreeMap<(String, String, String), usize>,
    /// Harness allocations and payload copies.
    harness_allocs: usize,
    harness_copies: usize,
    /// Harness sites: (site, what) → count.
    harness_sites: BTreeMap<(String, String), usize>,
}

fn kind_name(k: probe::Kind) -> String {
    match k {
        probe::Kind::Malloc => "malloc".into(),
        probe::Kind::Mbuf => "mbuf".into(),
        probe::Kind::Cluster => "cluster".into(),
        probe::Kind::Tag => "m_tag_alloc".into(),
        probe::Kind::Copy(w) => w.into(),
    }
}

fn harness_site(c: Caller, hs: Option<&hostsyms::HostSyms>) -> String {
    match c {
        Caller::Rust(l) => {
            let f = l.file();
            let f = f.split("src/").last().unwrap_or(f);
            format!("{f}:{}", l.line())
        }
        Caller::Addr(a) => loader::symbolize(a)
            .or_else(|| hs.and_then(|h| h.name(a)))
            .unwrap_or_else(|| format!("{a:#x}")),
        Caller::Unknown => "?".into(),
    }
}

fn attribute(events: &[probe::Event], payload: usize, hs: Option<&hostsyms::HostSyms>) -> Counters {
    let files = loader::files();
    let mut c = Counters::default();
    for m in MODULES {
        c.modules.insert(m.to_string(), (0, 0, 0));
    }
    for e in events {
        let payload_copy = matches!(e.kind, probe::Kind::Copy(_)) && e.bytes >= payload;
        let what = kind_name(e.kind);
        match owner_of(e.caller, &files) {
            Some(m) => {
                let ent = c.modules.entry(m.clone()).or_default();
                if e.kind.is_alloc() {
                    ent.0 += 1;
                } else {
                    ent.2 += e.bytes;
                    if payload_copy {
                        ent.1 += 1;
                    }
                }
                if e.kind.is_alloc() || payload_copy {
                    let site = e.caller.addr().map(function_of).unwrap_or_default();
                    let what = if payload_copy {
                        format!("{what} {} B", e.bytes)
                    } else {
                        what
                    };
                    *c.module_sites.entry((m, site, what)).or_default() += 1;
                }
            }
            None => {
                if e.kind.is_alloc() {
                    c.harness_allocs += 1;
                } else if payload_copy {
                    c.harness_copies += 1;
                } else {
                    continue;
                }
                *c.harness_sites
                    .entry((harness_site(e.caller, hs), what))
                    .or_default() += 1;
            }
        }
    }
    c
}

// ---------------------------------------------------------------------------
// Runs

fn boot_and_build(kos: &[PathBuf]) -> Result<(Vec<net::Loaded>, UdpGraph), String> {
    let loaded = net::boot(kos)?;
    for m in MODULES {
        if !loaded
            .iter()
            .any(|l| l.path.file_name().and_then(|f| f.to_str()) == Some(m))
        {
            return Err(format!("{m} is not among the modules given"));
        }
    }
    // Quiet idle waits: the bench's waits end on events, not timeouts.
    crate::kern::inet::set_idle_wait_ms(5, 1);
    let g = UdpGraph::build()?;
    Ok((loaded, g))
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

/// Unloads everything and runs the end checks; returns the problems.
fn finish(g: UdpGraph) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = g.teardown() {
        problems.push(e);
    }
    let mut k = crate::scenario::kernel::HarnessKernel::boot(&[]).expect("booted kernel");
    use crate::scenario::kernel::Kernel as _;
    problems.extend(k.end_checks());
    problems
}

struct Native {
    counters: BTreeMap<Case, Counters>,
    secs: f64,
}

/// Times `o.packets` end-to-end round trips (after the warm-up), probes
/// off: (count, seconds).
fn time_round_trips(o: &Opts, g: &mut UdpGraph, p: &[u8]) -> Result<(usize, f64), String> {
    for _ in 0..o.warmup {
        g.round_trip(p)
            .map_err(|e| format!("end to end (warm-up): {e}"))?;
    }
    let start = Instant::now();
    for _ in 0..o.packets {
        g.round_trip(p).map_err(|e| format!("end to end: {e}"))?;
    }
    Ok((o.packets, start.elapsed().as_secs_f64()))
}

/// The native end-to-end child (the reference modules cannot be loaded in
/// the parent, which has its own): round trips per second, written to
/// `out` as `e2e COUNT SECONDS`.
fn child_native(o: &Opts, out: &Path) -> Result<(), String> {
    let (_, mut g) = boot_and_build(&o.kos)?;
    let p = payload(o.size);
    let (n, secs) = time_round_trips(o, &mut g, &p)?;
    let problems = finish(g);
    if !problems.is_empty() {
        return Err(format!(
            "the kernel was not left clean:\n  {}",
            problems.join("\n  ")
        ));
    }
    std::fs::write(out, format!("e2e\t{n}\t{secs}\n"))
        .map_err(|e| format!("{}: {e}", out.display()))
}

/// Runs [`child_native`] in a child process on `kos`.
fn run_native_child(o: &Opts, kos: &[PathBuf]) -> Result<(usize, f64), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = std::env::temp_dir().join(format!("ngbench-native-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = dir.join("result.tsv");
    let out = Command::new(exe)
        .arg("bench")
        .arg("--child-native")
        .arg(&result)
        .arg("-n")
        .arg(o.packets.to_string())
        .arg("--warmup")
        .arg(o.warmup.to_string())
        .arg("--size")
        .arg(o.size.to_string())
        .args(kos)
        .output()
        .map_err(|e| format!("cannot run the end-to-end child: {e}"))?;
    let text = std::fs::read_to_string(&result);
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!(
            "the end-to-end child failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = text.map_err(|e| format!("{}: {e}", result.display()))?;
    let f: Vec<&str> = text.trim().split('\t').collect();
    match f.as_slice() {
        ["e2e", n, secs] => Ok((
            n.parse().map_err(|_| "bad end-to-end result")?,
            secs.parse().map_err(|_| "bad end-to-end result")?,
        )),
        _ => Err(format!("bad end-to-end result: {text}")),
    }
}

fn native(o: &Opts) -> Result<(Vec<net::Loaded>, Native), String> {
    let (loaded, mut g) = boot_and_build(&o.kos)?;
    let p = payload(o.size);
    let start = Instant::now();
    let mut counters = BTreeMap::new();
    let hs = hostsyms::HostSyms::load();
    for case in CASES {
        for _ in 0..o.warmup {
            case.run(&mut g, &p)
                .map_err(|e| format!("{} (warm-up): {e}", case.label()))?;
        }
        let _ = probe::take();
        probe::set_enabled(true);
        let r = (0..o.packets).try_for_each(|_| case.run(&mut g, &p));
        probe::set_enabled(false);
        r.map_err(|e| format!("{}: {e}", case.label()))?;
        counters.insert(case, attribute(&probe::take(), o.size, hs.as_ref()));
    }
    let secs = start.elapsed().as_secs_f64();
    let problems = finish(g);
    if !problems.is_empty() {
        return Err(format!(
            "the kernel was not left clean:\n  {}",
            problems.join("\n  ")
        ));
    }
    Ok((loaded, Native { counters, secs }))
}

/// The callgrind child: the same cases, with collection switched on around
/// each measured phase and the phase dumped; then the dumps are read back
/// (collection off) and the module Ir written to `out`.
fn child(o: &Opts, out: &Path) -> Result<(), String> {
    if !callgrind::running_on_valgrind() {
        return Err("--child must run under valgrind --tool=callgrind".into());
    }
    let dump_base = std::env::var("NGBENCH_CG_OUT").map_err(|_| "NGBENCH_CG_OUT not set")?;
    let (_, mut g) = boot_and_build(&o.kos)?;
    let p = payload(o.size);
    let mut phases = Vec::new();
    for case in CASES {
        for _ in 0..o.warmup {
            case.run(&mut g, &p)
                .map_err(|e| format!("{} (warm-up): {e}", case.label()))?;
        }
        callgrind::zero_stats();
        callgrind::toggle_collect();
        let r = (0..o.cg_packets).try_for_each(|_| case.run(&mut g, &p));
        callgrind::toggle_collect();
        callgrind::dump_stats_at(case.key());
        r.map_err(|e| format!("{}: {e}", case.label()))?;
        phases.push(case);
    }
    // Read the dumps while the modules are still loaded (for symbols).
    let files = loader::files();
    let mut text = String::new();
    let dir = Path::new(&dump_base)
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let base_name = Path::new(&dump_base)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("")
        .to_string();
    let mut found = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&base_name))
        })
        .collect();
    entries.sort();
    for path in entries {
        let t = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let d = callgrind::parse_dump(&t).map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(case) = d
            .trigger
            .rsplit(':')
            .next()
            .map(str::trim)
            .and_then(Case::from_key)
        else {
            continue;
        };
        found += 1;
        let mut per_mod: BTreeMap<String, u64> = BTreeMap::new();
        let mut per_fn: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (&a, &ir) in &d.ir {
            let Some(f) = files.iter().find(|f| f.contains(a as usize)) else {
                continue;
            };
            *per_mod.entry(f.filename.clone()).or_default() += ir;
            *per_fn
                .entry((f.filename.clone(), function_of(a as usize)))
                .or_default() += ir;
            if let Some((sym, off)) = loader::symbolize(a as usize)
                .as_deref()
                .and_then(|s| s.split_once(':'))
                .and_then(|(_, r)| r.rsplit_once("+0x"))
                .and_then(|(s, o)| Some((s.to_string(), usize::from_str_radix(o, 16).ok()?)))
            {
                let _ = writeln!(
                    text,
                    "ins\t{}\t{}\t{sym}\t{off}\t{ir}",
                    case.key(),
                    f.filename
                );
            }
        }
        for m in MODULES {
            let ir = per_mod.get(m).copied().unwrap_or(0);
            let _ = writeln!(text, "ir\t{}\t{m}\t{ir}\t{}", case.key(), o.cg_packets);
        }
        for ((m, f), ir) in per_fn {
            let _ = writeln!(text, "fn\t{}\t{m}\t{ir}\t{f}", case.key());
        }
        let _ = writeln!(text, "total\t{}\t{}", case.key(), d.total.unwrap_or(0));
    }
    if found != phases.len() {
        return Err(format!(
            "found {found} callgrind dumps for {} phases in {}",
            phases.len(),
            dir.display()
        ));
    }
    let problems = finish(g);
    if !problems.is_empty() {
        return Err(format!(
            "the kernel was not left clean:\n  {}",
            problems.join("\n  ")
        ));
    }
    std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))
}

// ---------------------------------------------------------------------------
// The report

fn per(n: usize, packets: usize) -> f64 {
    n as f64 / packets as f64
}

fn parent(o: &Opts) -> Result<bool, String> {
    println!(
        "ngsock bench: UDP through socket node <-> ksocket <-> 127.0.0.1, {}-byte payload",
        o.size
    );
    let (loaded, nat) = native(o)?;
    for l in &loaded {
        println!("  module {} (file id {})", l.path.display(), l.id);
    }
    let pk = o.packets;
    println!();
    println!(
        "Per packet, module call sites only ({pk} packets per case after {} warm-up, native run, {:.1} s):",
        o.warmup, nat.secs
    );
    println!(
        "  {:<26} {:<14} {:>10} {:>14} {:>15}",
        "case", "module", "allocs", "payload copies", "bytes copied"
    );
    let mut fails: Vec<String> = Vec::new();
    let mut copies_total = 0usize;
    for (case, c) in &nat.counters {
        let mut first = true;
        let mut allocs = 0usize;
        for (m, (a, cp, bytes)) in &c.modules {
            println!(
                "  {:<26} {:<14} {:>10.2} {:>14.2} {:>15.1}",
                if first { case.label() } else { "" },
                m,
                per(*a, pk),
                per(*cp, pk),
                *bytes as f64 / pk as f64
            );
            first = false;
            allocs += a;
            copies_total += cp;
            if *cp > 0 {
                fails.push(format!(
                    "{}: {} makes {:.2} payload copies per packet",
                    case.label(),
                    m,
                    per(*cp, pk)
                ));
            }
        }
        if let Some(b) = case.alloc_budget() {
            if per(allocs, pk) > b + 1e-9 {
                fails.push(format!(
                    "{}: {:.2} allocations per packet in the modules (budget {b})",
                    case.label(),
                    per(allocs, pk)
                ));
            }
        }
        for ((m, site, what), n) in &c.module_sites {
            println!("      {m}: {:.2} x {what} from {site}", per(*n, pk));
        }
    }
    // The probes must see module call sites at all: every unconnected
    // datagram gets its address tag from ng_ksocket.ko.
    let tags = nat.counters.get(&Case::RecvUnconnected).map_or(0, |c| {
        c.module_sites
            .iter()
            .filter(|((m, _, w), _)| m == "ng_ksocket.ko" && w == "m_tag_alloc")
            .map(|(_, n)| *n)
            .sum()
    });
    if tags == 0 {
        println!(
            "  warning: no address tag allocated by ng_ksocket.ko on unconnected receive: \
             are the allocation probes attributing module call sites?"
        );
    }
    println!();
    println!("Not module costs (harness socket layer, netgraph core, Linux I/O), per packet, excluded above:");
    for (case, c) in &nat.counters {
        let sites: Vec<String> = c
            .harness_sites
            .iter()
            .map(|((s, w), n)| format!("{:.2} {w} ({s})", per(*n, pk)))
            .collect();
        println!(
            "  {:<26} {:.2} allocs, {:.2} payload copies: {}",
            case.label(),
            per(c.harness_allocs, pk),
            per(c.harness_copies, pk),
            sites.join(", ")
        );
    }

    let want_cg = o.callgrind != CgMode::Off;
    let ref_kos: Option<Vec<PathBuf>> = o
        .reference
        .as_ref()
        .map(|d| MODULES.iter().map(|m| d.join(m)).collect());
    let mut instr: Option<Instr> = None;
    let mut c_instr: Option<Instr> = None;
    println!();
    if want_cg {
        match find_valgrind() {
            Some(v) => {
                instr = Some(run_callgrind(o, &v, &o.kos, "")?);
                if let Some(k) = &ref_kos {
                    match run_callgrind(o, &v, k, ".freebsd") {
                        Ok(ci) => c_instr = Some(ci),
                        Err(e) => println!(
                            "FreeBSD's modules: not measured, so the budgets are the figures of ROWS:\n  {}",
                            e.lines().take(12).collect::<Vec<_>>().join("\n  ")
                        ),
                    }
                }
            }
            None if o.callgrind == CgMode::On => {
                return Err("valgrind not found on PATH (apt-get install valgrind)".into());
            }
            None => println!("Instructions: not measured (valgrind not found on PATH)."),
        }
    } else {
        println!("Instructions: not measured (--quick / --no-callgrind).");
    }
    let mut summary = Vec::new();
    if let Some(i) = &instr {
        let source = match (&o.reference, &c_instr) {
            (Some(d), Some(_)) => format!("FreeBSD's modules from {}, measured now", d.display()),
            _ => "FreeBSD 15-CURRENT's modules as measured by this bench (ROWS)".into(),
        };
        println!(
            "Instructions executed inside the module per {}-byte packet (callgrind, {} packets per case, {:.1} s):",
            o.size, i.packets, i.secs
        );
        println!("  FreeBSD: {source}; budget = the FreeBSD figure");
        println!("  {:<42} {:>8} {:>8}  verdict", "row", "FreeBSD", "ngsock");
        for row in ROWS {
            let ours = i
                .per_pkt
                .get(&(row.case, row.module.into()))
                .copied()
                .unwrap_or(0.0);
            let c = match &c_instr {
                Some(ci) => ci
                    .per_pkt
                    .get(&(row.case, row.module.into()))
                    .copied()
                    .unwrap_or(0.0),
                None => row.freebsd,
            };
            let verdict = if ours <= c + 0.05 {
                "ok"
            } else {
                fails.push(format!(
                    "{}: {ours:.0} instructions per packet in {} (FreeBSD: {c:.0})",
                    row.label, row.module
                ));
                "OVER"
            };
            println!("  {:<42} {c:>8.0} {ours:>8.0}  {verdict}", row.label);
            summary.push(format!("{} {ours:.0}/{c:.0}", row.label));
        }
        // The tag-addressed send alone: the echo round trip minus the
        // unconnected receive (information: the row is the round trip).
        let tag_send = |per: &BTreeMap<(Case, String), f64>| -> Option<f64> {
            let k = "ng_ksocket.ko".to_string();
            Some(
                per.get(&(Case::EchoUnconnected, k.clone()))?
                    - per.get(&(Case::RecvUnconnected, k))?,
            )
        };
        let c_tag = match &c_instr {
            Some(ci) => tag_send(&ci.per_pkt),
            None => Some(46.0),
        };
        if let (Some(t), Some(c)) = (tag_send(&i.per_pkt), c_tag) {
            println!(
                "  {:<42} {:>8} {:>8}  (echo - receive unconnected; information)",
                "  tag-addressed send alone",
                format!("~{c:.0}"),
                format!("~{t:.0}")
            );
        }
        // Local addresses (IP_RECVDSTADDR): an ngsock addition, no FreeBSD
        // figure; information.
        for (label, case) in [
            ("ng_ksocket receive, local address", Case::RecvLocalAddr),
            ("ng_ksocket echo, local address", Case::EchoLocalAddr),
        ] {
            if let Some(ours) = i.per_pkt.get(&(case, "ng_ksocket.ko".into())) {
                println!(
                    "  {label:<42} {:>8} {ours:>8.0}  (IP_RECVDSTADDR on; information)",
                    "-"
                );
            }
        }
        println!();
        let e2e = |ins: &Instr| -> Option<String> {
            let total = ins.total.get(&Case::EndToEnd).copied()?;
            let s = ins
                .per_pkt
                .get(&(Case::EndToEnd, "ng_socket.ko".into()))
                .copied()
                .unwrap_or(0.0);
            let k = ins
                .per_pkt
                .get(&(Case::EndToEnd, "ng_ksocket.ko".into()))
                .copied()
                .unwrap_or(0.0);
            Some(format!(
                "{total:.0} instructions per round trip in the harness process, of which ng_socket.ko {s:.0} ({:.1}%), ng_ksocket.ko {k:.0} ({:.1}%)",
                100.0 * s / total.max(1.0),
                100.0 * k / total.max(1.0)
            ))
        };
        println!("End to end (reported, not a budget): data socket -> ng_socket -> ksocket -> UDP -> the peer,");
        println!(
            "which sends it back -> ksocket -> ng_socket -> data socket; {}-byte payload:",
            o.size
        );
        // Timed in child processes, each the best of three runs taken in
        // turn (the machine's other work only ever slows a run down).
        let mut sets: Vec<(&str, &[PathBuf], Option<&Instr>)> = vec![("ngsock", &o.kos, Some(i))];
        if let Some(k) = &ref_kos {
            sets.push(("FreeBSD", k, c_instr.as_ref()));
        }
        let mut best: Vec<Result<f64, String>> = vec![Err(String::new()); sets.len()];
        for _ in 0..3 {
            for (j, (_, kos, _)) in sets.iter().enumerate() {
                match run_native_child(o, kos) {
                    Ok((n, secs)) => {
                        let r = n as f64 / secs.max(1e-9);
                        if best[j].as_ref().map_or(true, |b| r > *b) {
                            best[j] = Ok(r);
                        }
                    }
                    Err(e) => best[j] = Err(e),
                }
            }
        }
        for ((who, _, ins), rate) in sets.iter().zip(&best) {
            match rate {
                Ok(r) => println!(
                    "  {who:<8} {r:.0} round trips/s ({:.0} packets/s; native run, best of 3 x {} round trips)",
                    2.0 * r,
                    o.packets
                ),
                Err(e) => println!("  {who:<8} not timed: {e}"),
            }
            if let Some(t) = ins.and_then(e2e) {
                println!("           {t}");
            }
        }
        println!(
            "  (the harness process: its kernel model, netgraph core and Linux I/O, {} build; the Linux\n   kernel's own UDP work is not counted. NGSOCK_BENCH_PROFILE=release builds the harness optimized.)",
            if cfg!(debug_assertions) { "debug" } else { "optimized" }
        );
        println!();
        println!("Where the instructions go (per packet: top functions, and loops inside them):");
        let mut profiles: Vec<(&str, &Instr, &[PathBuf])> = vec![("ngsock", i, &o.kos)];
        if let (Some(ci), Some(k)) = (&c_instr, &ref_kos) {
            profiles.push(("FreeBSD", ci, k));
        }
        for (who, ins, kos) in profiles {
            for ((case, m), fns) in &ins.top {
                if *case == Case::EndToEnd {
                    continue;
                }
                println!("  {who} {} / {m}:", case.label());
                for (ir, f) in fns.iter().take(6) {
                    println!("      {ir:>6.0}  {f}");
                    let Some((sym, prof)) = ins.ins.get(&(*case, m.clone(), f.clone())) else {
                        continue;
                    };
                    let ranges = hot_ranges(prof, ins.packets);
                    let shown: Vec<&HotRange> = ranges.iter().filter(|r| r.ir >= 20.0).collect();
                    for r in &shown {
                        println!(
                            "              {:>5.0} in a loop at +{:#x}..+{:#x} ({} instructions, {:.0} iterations per packet)",
                            r.ir, r.start, r.end, r.instructions, r.times
                        );
                    }
                    if !shown.is_empty() {
                        let rest = ir - shown.iter().map(|r| r.ir).sum::<f64>();
                        println!("              {rest:>5.0} elsewhere in the function");
                        let path = kos
                            .iter()
                            .find(|k| k.file_name().and_then(|f| f.to_str()) == Some(m.as_str()))
                            .map_or(m.clone(), |k| k.display().to_string());
                        println!("              (llvm-objdump-19 -d --no-show-raw-insn --disassemble-symbols={sym} {path})");
                    }
                }
            }
        }
    }
    println!();
    let pass = fails.is_empty();
    let instr_txt = if instr.is_some() {
        format!(
            "instructions/packet (ngsock/FreeBSD) {}",
            summary.join(", ")
        )
    } else {
        "instructions not measured".into()
    };
    if pass {
        println!(
            "bench: PASS: {copies_total} payload copies, allocations within budget, {instr_txt}"
        );
    } else {
        for f in &fails {
            println!("over budget: {f}");
        }
        println!("bench: FAIL: {} budget(s) exceeded", fails.len());
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_runs_of_adjacent_instructions_with_one_count() {
        // 10 packets: a 3-instruction loop run 12 times per packet, one
        // instruction run once, a 4-instruction loop run 24 times, then a
        // distant instruction with the same count (not adjacent).
        let prof = vec![
            (0x10, 10),
            (0x20, 120),
            (0x23, 120),
            (0x27, 120),
            (0x29, 10),
            (0x40, 240),
            (0x44, 240),
            (0x48, 240),
            (0x4b, 240),
            (0x100, 240),
        ];
        let r = hot_ranges(&prof, 10);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!((r[0].start, r[0].end, r[0].instructions), (0x40, 0x4b, 4));
        assert_eq!((r[0].times, r[0].ir), (24.0, 96.0));
        assert_eq!((r[1].start, r[1].end, r[1].instructions), (0x20, 0x27, 3));
        assert!(hot_ranges(&[(0, 10), (2, 10), (4, 10)], 10).is_empty());
        // A conditional instruction inside a loop stays part of it.
        let r = hot_ranges(&[(0, 120), (3, 120), (6, 5), (8, 120), (11, 10)], 10);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].start, r[0].end, r[0].instructions), (0, 8, 4));
        assert_eq!((r[0].times, r[0].ir), (12.0, 36.5));
    }

    #[test]
    fn budgets_are_freebsds_figures() {
        let b: Vec<(&str, f64)> = ROWS.iter().map(|r| (r.module, r.freebsd)).collect();
        assert_eq!(
            b,
            [
                ("ng_ksocket.ko", 39.0),
                ("ng_ksocket.ko", 114.0),
                ("ng_ksocket.ko", 147.0),
                ("ng_ksocket.ko", 193.0),
                ("ng_socket.ko", 133.0),
                ("ng_socket.ko", 55.0),
            ]
        );
        assert!(ROWS.iter().all(|r| r.case != Case::EndToEnd));
        assert_eq!(Case::SendConnected.alloc_budget(), Some(0.0));
        assert_eq!(Case::RecvUnconnected.alloc_budget(), Some(1.0));
        assert_eq!(Case::EndToEnd.alloc_budget(), None);
        assert_eq!(Case::RecvLocalAddr.alloc_budget(), Some(2.0));
        assert_eq!(Case::EchoLocalAddr.alloc_budget(), Some(2.0));
        assert!(ROWS
            .iter()
            .all(|r| r.case != Case::RecvLocalAddr && r.case != Case::EchoLocalAddr));
        for c in CASES {
            assert_eq!(Case::from_key(c.key()), Some(c));
        }
    }

    #[test]
    fn options() {
        let a = |v: &[&str]| parse_opts(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = a(&["--quick"]).expect("quick");
        assert_eq!((o.packets, o.callgrind), (50, CgMode::Off));
        assert_eq!(o.kos.len(), 2);
        let o = a(&["-n", "7", "--size", "100", "x.ko", "y.ko"]).expect("opts");
        assert_eq!((o.packets, o.size, o.kos.len()), (7, 100, 2));
        assert!(a(&["--size", "0"]).is_err());
        assert!(a(&["--size", "10000"]).is_err());
        assert!(a(&["--frob"]).is_err());
        let o = a(&["--reference", "build/ref"]).expect("reference");
        assert_eq!(o.reference, Some(PathBuf::from("build/ref")));
        assert!(a(&["--reference"]).is_err());
        assert_eq!(
            short_name("_RNvNtNtCsae6jOJlM3Uz_6ngsock7ksocket4node7receive"),
            "ksocket::node::receive"
        );
    }
}
