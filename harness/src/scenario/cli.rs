//! `ngharness run` and its hidden per-scenario child `ngharness run-one`.
//!
//! ```text
//! ngharness run [--ko FILE]... [--verbose] [--backend auto|socket|builtin|fake|bridge]
//!               [--bridge-lib FILE] [--ngctl FILE] [--timeout SECS] [--cpus N] [--seed S]
//!               [--reference [--man DIR]] SCENARIO...
//! ```
//! With `--backend bridge` the child runs with `LD_PRELOAD` of the bridge
//! library (`--bridge-lib`, default `libngbridge.so` beside the first
//! `--ko`) and the kernel runs in an `ngharness serve` of its own.
//! `--ngctl FILE` (which implies the bridge) runs the scenarios' `ngctl`
//! and `session` statements with that ngctl binary — FreeBSD's own, built
//! for Linux — instead of the emulation ([`super::extctl`]).
//! `--cpus N` (default 4) runs the kernel on N virtual CPUs (`kern::smp`;
//! 1: the single-CPU model), the schedule from seed `S` (default 1); a
//! failing scenario's console shows its schedule. The scenario's own
//! commands (the user processes) run until they block, so what a scenario
//! expects keeps its meaning; the kernel's threads (netgraph queues,
//! network, timers) interleave among themselves. Races of the user side
//! against the kernel are `ngharness race`'s.
//! Each scenario runs in its own child process (this binary re-executed as
//! `run-one`), so a kernel panic or a crash fails only that scenario. The
//! child boots the harness kernel, loads the `--ko` files in order (the
//! built-in netgraph, echo and hole are always there), runs the scenario,
//! tears it down, runs the end-of-scenario checks and unloads the modules.
//! The parent prints `PASS FILE` or `FAIL FILE: REASON` (with the child's
//! console) per scenario, then `scenarios: N passed, M failed`; its exit
//! status is 1 if any scenario failed, 2 on a usage error.
//!
//! The child reports to the parent with `@@ngharness ...` lines on stdout;
//! everything else it prints is the captured console.
//!
//! `--reference`: the `--ko` files are FreeBSD's own modules (built from a
//! FreeBSD source tree by `scripts/build-ref.sh`) and the question is
//! which scenarios behave differently with them. A command declared a
//! deviation (`deviation PAGE "PHRASE"`) may differ (the scenario goes on)
//! if the man page in `--man DIR` (default: `man` next to the scenarios'
//! directory) says so in its DEVIATIONS section. The parent prints `SAME
//! FILE`, `SAME FILE (documented deviations: N)` with each one, or
//! `DIFFERS FILE:LINE: REASON (not a documented deviation)`, then
//! `reference: N same, M with documented deviations, K differ`; its exit
//! status is 1 if any scenario differs where nothing documents it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::backend::{self, BuiltinPort, Choice};
use super::extctl::External;
use super::fake::FakeNet;
use super::kernel::{FakeKernel, HarnessKernel, Kernel};
use super::parse;
use super::port::{NgPort, SocketPort};
use super::runner::Runner;

const USAGE: &str = "usage: ngharness run [--ko FILE]... [--verbose] [--backend auto|socket|builtin|fake|bridge] [--bridge-lib FILE] [--ngctl FILE] [--timeout SECS] [--cpus N] [--seed S] [--reference [--man DIR]] SCENARIO...";
/// Default number of virtual CPUs of a scenario's kernel.
const DEFAULT_CPUS: u32 = 4;
/// Default wall-clock limit of one scenario.
const DEFAULT_TIMEOUT: u64 = 120;
/// Protocol prefix of the child's report lines.
const TAG: &str = "@@ngharness ";
/// Console lines shown for a failed scenario (the last ones).
const CONSOLE_LINES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Opts {
    kos: Vec<PathBuf>,
    verbose: bool,
    backend: Choice,
    timeout: u64,
    cpus: u32,
    seed: u64,
    bridge_lib: Option<PathBuf>,
    ngctl: Option<PathBuf>,
    scenarios: Vec<PathBuf>,
    /// Reference mode (see the module docs).
    reference: bool,
    /// The man pages deviations are checked against.
    man: Option<PathBuf>,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        kos: Vec::new(),
        verbose: false,
        backend: Choice::Auto,
        timeout: DEFAULT_TIMEOUT,
        cpus: DEFAULT_CPUS,
        seed: 1,
        bridge_lib: None,
        ngctl: None,
        scenarios: Vec::new(),
        reference: false,
        man: None,
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let value = |i: &mut usize| -> Result<String, String> {
            *i += 1;
            args.get(*i)
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--ko" => o.kos.push(PathBuf::from(value(&mut i)?)),
            "--verbose" | "-v" => o.verbose = true,
            "--backend" => {
                let v = value(&mut i)?;
                o.backend = Choice::parse(&v).ok_or_else(|| format!("unknown backend `{v}`"))?;
            }
            "--bridge-lib" => o.bridge_lib = Some(PathBuf::from(value(&mut i)?)),
            "--ngctl" => o.ngctl = Some(PathBuf::from(value(&mut i)?)),
            "--timeout" => {
                let v = value(&mut i)?;
                o.timeout = v.parse().map_err(|_| format!("bad --timeout `{v}`"))?;
            }
            "--reference" => o.reference = true,
            "--man" => o.man = Some(PathBuf::from(value(&mut i)?)),
            "--cpus" => {
                let v = value(&mut i)?;
                o.cpus = v
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("bad --cpus `{v}`"))?;
            }
            "--seed" => {
                let v = value(&mut i)?;
                o.seed = v.parse().map_err(|_| format!("bad --seed `{v}`"))?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s => o.scenarios.push(PathBuf::from(s)),
        }
        i += 1;
    }
    if o.scenarios.is_empty() {
        return Err("no scenario given".into());
    }
    if let Some(n) = &o.ngctl {
        // A real ngctl is a Linux process: it reaches the kernel only
        // through the bridge.
        match o.backend {
            Choice::Auto | Choice::Bridge => o.backend = Choice::Bridge,
            _ => return Err("--ngctl runs ngctl through the bridge (--backend bridge)".into()),
        }
        let abs = n
            .canonicalize()
            .map_err(|e| format!("--ngctl {}: {e}", n.display()))?;
        o.ngctl = Some(abs);
    }
    Ok(o)
}

/// Entry point of `ngharness run ...` and `ngharness run-one ...`; `args[0]`
/// is the subcommand. Returns the process exit status.
pub fn cli(args: &[String]) -> i32 {
    let (sub, rest) = match args.split_first() {
        Some((s, r)) => (s.as_str(), r),
        None => ("run", &[][..]),
    };
    let o = match parse_opts(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ngharness {sub}: {e}");
            eprintln!("{USAGE}");
            return 2;
        }
    };
    match sub {
        "run-one" if o.scenarios.len() == 1 => run_one(&o, &o.scenarios[0]),
        "run-one" => {
            eprintln!("ngharness run-one: exactly one scenario");
            2
        }
        _ => run_all(&o),
    }
}

// ---------------------------------------------------------------------------
// Parent

/// What a child reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Report {
    passed: bool,
    /// (line, message) of the failure.
    fail: Option<(usize, String)>,
    details: Vec<String>,
    /// Last command started: (line, text).
    at: Option<(usize, String)>,
    backend: Option<String>,
    console: Vec<String>,
    /// The runner's transcript (`--verbose`).
    log: Vec<String>,
    /// Reference mode: (line, page, phrase, what differed).
    deviations: Vec<(usize, String, String, String)>,
}

fn parse_report(out: &str) -> Report {
    let mut r = Report::default();
    for l in out.lines() {
        let Some(t) = l.strip_prefix(TAG) else {
            r.console.push(l.to_string());
            continue;
        };
        let (kw, rest) = t.split_once(' ').unwrap_or((t, ""));
        match kw {
            "pass" => r.passed = true,
            "fail" => {
                let (n, m) = rest.split_once('\t').unwrap_or(("0", rest));
                r.fail = Some((n.parse().unwrap_or(0), m.to_string()));
            }
            "detail" => r.details.push(rest.to_string()),
            "at" => {
                let (n, m) = rest.split_once(' ').unwrap_or((rest, ""));
                r.at = Some((n.parse().unwrap_or(0), m.to_string()));
            }
            "backend" => r.backend = Some(rest.to_string()),
            "log" => r.log.push(rest.to_string()),
            "deviation" => {
                let f: Vec<&str> = rest.splitn(4, '\t').collect();
                if let [l, page, phrase, msg] = f.as_slice() {
                    r.deviations.push((
                        l.parse().unwrap_or(0),
                        page.to_string(),
                        phrase.to_string(),
                        msg.to_string(),
                    ));
                }
            }
            _ => r.console.push(l.to_string()),
        }
    }
    r
}

fn signal_name(sig: i32) -> String {
    let n = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGABRT => "SIGABRT",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        _ => return format!("signal {sig}"),
    };
    format!("signal {sig} ({n})")
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
}

fn run_child(o: &Opts, scenario: &Path) -> Result<(Exit, String), String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the harness binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run-one");
    for k in &o.kos {
        cmd.arg("--ko").arg(k);
    }
    let b = match o.backend {
        Choice::Auto => "auto",
        Choice::Socket => "socket",
        Choice::Builtin => "builtin",
        Choice::Fake => "fake",
        Choice::Bridge => "bridge",
    };
    cmd.arg("--backend").arg(b);
    cmd.args(["--cpus", &o.cpus.to_string(), "--seed", &o.seed.to_string()]);
    if o.backend == Choice::Bridge {
        let lib = o
            .bridge_lib
            .clone()
            .unwrap_or_else(|| super::bridge::default_lib(&o.kos));
        let lib = lib
            .canonicalize()
            .map_err(|e| format!("the bridge library {}: {e}", lib.display()))?;
        cmd.env("LD_PRELOAD", lib);
    }
    if let Some(n) = &o.ngctl {
        cmd.arg("--ngctl").arg(n);
    }
    if o.verbose {
        cmd.arg("--verbose");
    }
    if o.reference {
        cmd.arg("--reference");
    }
    cmd.arg(scenario);
    let (reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let w2 = writer.try_clone().map_err(|e| format!("pipe: {e}"))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(w2));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the harness: {e}"))?;
    drop(cmd);
    let collector = std::thread::spawn(move || {
        let mut all = String::new();
        let mut r = BufReader::new(reader);
        let mut buf = Vec::new();
        while let Ok(n) = r.read_until(b'\n', &mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf));
            buf.clear();
        }
        all
    });
    let end = Instant::now() + Duration::from_secs(o.timeout);
    let exit = loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                use std::os::unix::process::ExitStatusExt;
                break match (st.code(), st.signal()) {
                    (Some(c), _) => Exit::Code(c),
                    (None, Some(s)) => Exit::Signal(s),
                    _ => Exit::Code(-1),
                };
            }
            Ok(None) if Instant::now() >= end => {
                // Our own child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                break Exit::TimedOut;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for the harness: {e}")),
        }
    };
    let out = collector.join().unwrap_or_default();
    Ok((exit, out))
}

/// Why a scenario failed (None: it passed), from how its child ended and
/// what it reported.
fn verdict(exit: Exit, r: &Report, name: &str, timeout: u64) -> Option<String> {
    let at =
        r.at.as_ref()
            .map(|(l, t)| format!(" at {name}:{l} (`{t}`)"))
            .unwrap_or_default();
    match (exit, &r.fail) {
        (Exit::Code(0), None) if r.passed => None,
        (_, Some((0, m))) => Some(format!("{name}: {m}")),
        (_, Some((l, m))) => Some(format!("{name}:{l}: {m}")),
        (Exit::Code(c), None) if c == crate::kern::PANIC_EXIT => {
            let p = r
                .console
                .iter()
                .find(|l| l.starts_with("panic: "))
                .cloned()
                .unwrap_or_else(|| "panic".into());
            Some(format!("{name}: kernel {p}{at}"))
        }
        (Exit::Code(c), None) => Some(format!("{name}: the harness exited with status {c}{at}")),
        (Exit::Signal(s), None) => Some(format!(
            "{name}: the harness was killed by {}{at}",
            signal_name(s)
        )),
        (Exit::TimedOut, None) => Some(format!("{name}: timed out after {timeout} s{at}")),
    }
}

fn print_block(so: &mut impl Write, title: &str, lines: &[String], max: usize) {
    if lines.is_empty() {
        return;
    }
    let skip = lines.len().saturating_sub(max);
    let note = if skip > 0 {
        format!(" (last {max} lines)")
    } else {
        String::new()
    };
    let _ = writeln!(so, "    {title}{note}:");
    for l in &lines[skip..] {
        let _ = writeln!(so, "      {l}");
    }
}

fn run_all(o: &Opts) -> i32 {
    if o.reference {
        return run_reference(o);
    }
    let (mut passed, mut failed) = (0, 0);
    let stdout = std::io::stdout();
    for sc in &o.scenarios {
        let name = sc.display().to_string();
        let (exit, out) = match run_child(o, sc) {
            Ok(x) => x,
            Err(e) => {
                println!("FAIL {name}: {e}");
                failed += 1;
                continue;
            }
        };
        let r = parse_report(&out);
        let reason = verdict(exit, &r, &name, o.timeout);
        let mut so = stdout.lock();
        match reason {
            None => {
                passed += 1;
                let _ = writeln!(so, "PASS {name}");
                if o.verbose {
                    print_block(&mut so, "transcript", &r.log, usize::MAX);
                    print_block(&mut so, "console", &r.console, usize::MAX);
                }
            }
            Some(reason) => {
                failed += 1;
                let _ = writeln!(so, "FAIL {reason}");
                for d in &r.details {
                    let _ = writeln!(so, "    {d}");
                }
                if let Some(b) = &r.backend {
                    let _ = writeln!(so, "    backend: {b}");
                }
                print_block(&mut so, "transcript", &r.log, usize::MAX);
                print_block(&mut so, "console", &r.console, CONSOLE_LINES);
            }
        }
    }
    println!("scenarios: {passed} passed, {failed} failed");
    if failed == 0 {
        0
    } else {
        1
    }
}

/// The man page directory of reference mode.
fn man_dir(o: &Opts) -> PathBuf {
    o.man.clone().unwrap_or_else(|| {
        o.scenarios
            .first()
            .and_then(|s| s.parent())
            .map_or_else(|| PathBuf::from("man"), |d| d.join("../man"))
    })
}

/// Reference mode (see the module docs); returns the exit status.
fn run_reference(o: &Opts) -> i32 {
    let man = man_dir(o);
    let (mut same, mut documented, mut differ) = (0, 0, 0);
    let stdout = std::io::stdout();
    for sc in &o.scenarios {
        let name = sc.display().to_string();
        let (exit, out) = match run_child(o, sc) {
            Ok(x) => x,
            Err(e) => {
                println!("DIFFERS {name}: {e}");
                differ += 1;
                continue;
            }
        };
        let r = parse_report(&out);
        let reason = verdict(exit, &r, &name, o.timeout);
        // Every deviation that showed must be in the man page.
        let mut shown = Vec::new();
        let mut undocumented = Vec::new();
        for (line, page, phrase, msg) in &r.deviations {
            match super::deviation::documented(&man, page, phrase) {
                Ok(()) => shown.push(format!("{name}:{line}: {page} \"{phrase}\": {msg}")),
                Err(e) => undocumented.push(format!("{name}:{line}: {msg} ({e})")),
            }
        }
        let mut so = stdout.lock();
        if let Some(reason) = reason {
            differ += 1;
            let _ = writeln!(so, "DIFFERS {reason} (not a documented deviation)");
            for d in &r.details {
                let _ = writeln!(so, "    {d}");
            }
            for d in shown.iter().chain(&undocumented) {
                let _ = writeln!(so, "    before that: {d}");
            }
            print_block(&mut so, "console", &r.console, 40);
        } else if !undocumented.is_empty() {
            differ += 1;
            for d in &undocumented {
                let _ = writeln!(so, "DIFFERS {d}");
            }
        } else if shown.is_empty() {
            same += 1;
            let _ = writeln!(so, "SAME {name}");
        } else {
            documented += 1;
            let _ = writeln!(so, "SAME {name} (documented deviations: {})", shown.len());
            for d in &shown {
                let _ = writeln!(so, "    {d}");
            }
        }
    }
    println!("reference: {same} same, {documented} with documented deviations, {differ} differ");
    i32::from(differ > 0)
}

// ---------------------------------------------------------------------------
// Child

fn report(kw: &str, text: &str) {
    let mut o = std::io::stdout().lock();
    if text.is_empty() {
        let _ = writeln!(o, "{TAG}{kw}");
    }
    for (i, l) in text.lines().enumerate() {
        let _ = if i == 0 {
            writeln!(o, "{TAG}{kw} {l}")
        } else {
            writeln!(o, "{TAG}detail {l}")
        };
    }
    let _ = o.flush();
}

fn fail(line: usize, msg: &str, details: &[String]) -> i32 {
    report("fail", &format!("{line}\t{msg}"));
    for d in details {
        report("detail", d);
    }
    1
}

/// The kernel and client backend for a child.
pub type Env = (Box<dyn Kernel>, Box<dyn NgPort>);

/// Sets up the kernel and backend a scenario runs against.
pub fn make_env(choice: Choice, kos: &[PathBuf]) -> Result<Env, String> {
    if choice == Choice::Fake {
        let net = FakeNet::new();
        return Ok((
            Box::new(FakeKernel::new(net.clone())),
            Box::new(SocketPort::new(net)),
        ));
    }
    if choice == Choice::Bridge {
        let (k, port) = super::bridge::start(kos)?;
        return Ok((Box::new(k), Box::new(port)));
    }
    let k = HarnessKernel::boot(kos)?;
    let port: Box<dyn NgPort> = match choice {
        Choice::Socket => backend::socket_port()?,
        Choice::Builtin => Box::new(BuiltinPort::new()),
        _ => {
            if k.module_loaded("ng_socket") {
                backend::socket_port().unwrap_or_else(|_| Box::new(BuiltinPort::new()))
            } else {
                Box::new(BuiltinPort::new())
            }
        }
    };
    Ok((Box::new(k), port))
}

fn run_one(o: &Opts, path: &Path) -> i32 {
    let sc = match parse::parse_file(path) {
        Ok(s) => s,
        Err(errs) => {
            let rest: Vec<String> = errs[1..].iter().map(|e| e.to_string()).collect();
            return fail(0, &format!("malformed scenario: {}", errs[0]), &rest);
        }
    };
    if !matches!(o.backend, Choice::Fake | Choice::Bridge) {
        crate::kern::smp::configure(crate::kern::smp::Config {
            preempt_driver: false,
            ..crate::kern::smp::Config::cpus(o.cpus, o.seed)
        });
    }
    let (mut k, mut port) = match make_env(o.backend, &o.kos) {
        Ok(x) => x,
        Err(e) => return fail(0, &e, &[]),
    };
    match &o.ngctl {
        Some(n) => report(
            "backend",
            &format!("{}; ngctl: {}", port.backend(), n.display()),
        ),
        None => report("backend", &port.backend()),
    }
    for m in &sc.requires {
        if !k.module_loaded(m) {
            return fail(
                0,
                &format!("the scenario requires {m}, which is not loaded (give it with --ko)"),
                &[],
            );
        }
    }
    let base = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut r = Runner::new(k.as_mut(), port.as_mut(), &base);
    r.markers = true;
    r.reference = o.reference;
    if let Some(n) = &o.ngctl {
        match External::new(n) {
            Ok(x) => r.use_external(x),
            Err(e) => return fail(0, &e, &[]),
        }
    }
    let result = r.run(&sc);
    for (d, f) in &r.deviations {
        report(
            "deviation",
            &format!(
                "{}\t{}\t{}\t{}",
                f.line,
                d.page,
                d.phrase,
                f.msg.replace('\n', " ")
            ),
        );
    }
    let problems = r.finish();
    if let Some(s) = crate::kern::smp::summary() {
        eprintln!("harness: schedule: {s}");
    }
    if o.verbose {
        let mut so = std::io::stdout().lock();
        for l in &r.transcript {
            let _ = writeln!(so, "{TAG}log {l}");
        }
    }
    match result {
        Err(f) => {
            let mut details = f.details.clone();
            if !problems.is_empty() {
                details.push("end-of-scenario checks also found:".into());
                details.extend(problems.iter().map(|p| format!("  {p}")));
            }
            fail(f.line, &f.msg, &details)
        }
        Ok(()) if !problems.is_empty() => {
            let msg = format!("end of scenario: {}", problems[0]);
            // Reference mode: a difference in what the module leaves behind
            // (netgraph not quiescent: a node or hook never freed, and so a
            // module that cannot unload its type), declared (`deviation ...
            // end`) at the command that causes it. Any other end-of-scenario
            // problem still fails.
            let declared = sc
                .cmds
                .iter()
                .find_map(|c| c.deviation.as_ref().filter(|d| d.end));
            let left_behind = problems.iter().all(|p| {
                p.starts_with("netgraph not quiescent")
                    || (p.starts_with("kldunload ")
                        && p.ends_with("at the end of the scenario: Device busy"))
            });
            match declared {
                Some(d) if o.reference && left_behind => {
                    report(
                        "deviation",
                        &format!(
                            "{}\t{}\t{}\t{}",
                            d.line,
                            d.page,
                            d.phrase,
                            msg.replace('\n', " ")
                        ),
                    );
                    report("pass", "");
                    0
                }
                _ => fail(0, &msg, &problems[1..]),
            }
        }
        Ok(()) => {
            report("pass", "");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options() {
        let o = parse_opts(&s(&[
            "--ko",
            "a.ko",
            "--ko",
            "b.ko",
            "--verbose",
            "x.ngs",
            "y.ngs",
        ]))
        .unwrap();
        assert_eq!(o.kos, vec![PathBuf::from("a.ko"), PathBuf::from("b.ko")]);
        assert!(o.verbose);
        assert_eq!(o.scenarios.len(), 2);
        assert_eq!(o.backend, Choice::Auto);
        let o = parse_opts(&s(&["--backend", "fake", "--timeout", "5", "x.ngs"])).unwrap();
        assert_eq!((o.backend, o.timeout), (Choice::Fake, 5));
        assert_eq!((o.cpus, o.seed), (DEFAULT_CPUS, 1));
        let o = parse_opts(&s(&["--cpus", "1", "--seed", "9", "x.ngs"])).unwrap();
        assert_eq!((o.cpus, o.seed), (1, 9));
        assert!(parse_opts(&s(&["--cpus", "0", "x.ngs"])).is_err());
        assert!(parse_opts(&s(&["--ko"])).is_err());
        assert!(parse_opts(&s(&["--frob", "x"])).is_err());
        assert!(parse_opts(&s(&[])).is_err());
        assert!(parse_opts(&s(&["--backend", "x", "a"])).is_err());
    }

    #[test]
    fn child_reports() {
        let out = "kld: x\n@@ngharness backend fake\n@@ngharness at 3 ngctl list\npanic: boom\n@@ngharness fail 4\tno line\n@@ngharness detail | a\n";
        let r = parse_report(out);
        assert_eq!(r.fail, Some((4, "no line".into())));
        assert_eq!(r.details, vec!["| a"]);
        assert_eq!(r.at, Some((3, "ngctl list".into())));
        assert_eq!(r.console, vec!["kld: x", "panic: boom"]);
        assert_eq!(r.backend.as_deref(), Some("fake"));
        assert!(!r.passed);
        assert!(parse_report("@@ngharness pass \n").passed);
        assert!(parse_report("@@ngharness pass\n").passed);
        assert_eq!(signal_name(libc::SIGSEGV), "signal 11 (SIGSEGV)");
    }

    #[test]
    fn verdicts() {
        let r = parse_report("@@ngharness at 7 ngctl list\nkernel: x\npanic: ng_rmnode: bad\nharness: kernel panic; the scenario fails\n");
        assert_eq!(
            verdict(Exit::Code(crate::kern::PANIC_EXIT), &r, "x.ngs", 5).unwrap(),
            "x.ngs: kernel panic: ng_rmnode: bad at x.ngs:7 (`ngctl list`)"
        );
        assert_eq!(
            verdict(Exit::Signal(libc::SIGSEGV), &r, "x.ngs", 5).unwrap(),
            "x.ngs: the harness was killed by signal 11 (SIGSEGV) at x.ngs:7 (`ngctl list`)"
        );
        assert_eq!(
            verdict(Exit::TimedOut, &r, "x.ngs", 5).unwrap(),
            "x.ngs: timed out after 5 s at x.ngs:7 (`ngctl list`)"
        );
        assert_eq!(
            verdict(Exit::Code(101), &r, "x.ngs", 5).unwrap(),
            "x.ngs: the harness exited with status 101 at x.ngs:7 (`ngctl list`)"
        );
        let pass = parse_report("@@ngharness pass\n");
        assert_eq!(verdict(Exit::Code(0), &pass, "x.ngs", 5), None);
        // A pass report from a child that then crashed is still a failure.
        assert!(verdict(Exit::Code(1), &pass, "x.ngs", 5).is_some());
        let f = parse_report("@@ngharness fail 3\tno line\n");
        assert_eq!(
            verdict(Exit::Code(1), &f, "x.ngs", 5).unwrap(),
            "x.ngs:3: no line"
        );
        let f = parse_report("@@ngharness fail 0\tend of scenario: leak\n");
        assert_eq!(
            verdict(Exit::Code(1), &f, "x.ngs", 5).unwrap(),
            "x.ngs: end of scenario: leak"
        );
    }
}
