//! `ngharness race`: the race scenarios ([`scenarios`]) run under many
//! seeds on an SMP machine (`kern::smp`), each schedule in a child process.
//!
//! ```text
//! ngharness race [--ko FILE]... [--seeds N] [--first S] [--cpus N] [--jobs J]
//!                [--scenario NAME]... [--stop-at-first] [--timeout SECS]
//! ngharness race [--ko FILE]... --seed S [--scenario NAME]... [--trace]
//! ngharness race --list
//! ```
//! Without `--seed`, every scenario (or each one named) runs once per seed
//! `first .. first+N` (and the regression seeds kept for it, see
//! [`scenarios::REGRESSIONS`]), and the output ends with
//! `race: N schedules, M violations` (M: schedules that broke a contract).
//! A failing schedule is printed with the command that replays it.
//! `--seed S` runs that one schedule (of each scenario); `--trace` prints
//! the whole trace (who ran what, on which CPU). Exit status 0 if no
//! schedule failed.
//!
//! Self-test scenarios (`selftest-...`, which need the harness's racy test
//! module) run only when named.

pub mod client;
pub mod scenarios;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use self::client::Proc;
use self::scenarios::{RaceScenario, RACES};
use crate::kern::smp;
use crate::scenario::kernel::{HarnessKernel, Kernel};
use crate::scenario::msg;

const USAGE: &str = "usage: ngharness race [--ko FILE]... [--seeds N] [--first S] [--cpus N] [--jobs J] [--scenario NAME]... [--stop-at-first] [--timeout SECS]\n       ngharness race [--ko FILE]... --seed S [--scenario NAME]... [--trace]\n       ngharness race --list";
/// Report lines of a child.
const TAG: &str = "@@race ";
/// PCT horizon of a race schedule: about the preemption points of the
/// longest scenario (they run from a few hundred to about a thousand).
const RACE_HORIZON: u64 = 1200;

#[derive(Debug, Clone)]
struct Opts {
    kos: Vec<PathBuf>,
    seeds: u64,
    first: u64,
    seed: Option<u64>,
    cpus: u32,
    jobs: usize,
    names: Vec<String>,
    trace: bool,
    stop_at_first: bool,
    timeout: u64,
    list: bool,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        kos: Vec::new(),
        seeds: 8,
        first: 1,
        seed: None,
        cpus: 4,
        jobs: 2,
        names: Vec::new(),
        trace: false,
        stop_at_first: false,
        timeout: 60,
        list: false,
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut value = || -> Result<String, String> {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        let num = |v: String| -> Result<u64, String> {
            v.parse().map_err(|_| format!("bad number `{v}` for {a}"))
        };
        match a {
            "--ko" => o.kos.push(PathBuf::from(value()?)),
            "--seeds" => o.seeds = num(value()?)?,
            "--first" => o.first = num(value()?)?,
            "--seed" => o.seed = Some(num(value()?)?),
            "--cpus" => o.cpus = num(value()?)?.max(1) as u32,
            "--jobs" => o.jobs = num(value()?)?.max(1) as usize,
            "--timeout" => o.timeout = num(value()?)?,
            "--scenario" => o.names.push(value()?),
            "--trace" => o.trace = true,
            "--stop-at-first" => o.stop_at_first = true,
            "--list" => o.list = true,
            s => return Err(format!("unknown argument `{s}`")),
        }
        i += 1;
    }
    for n in &o.names {
        if scenarios::find(n).is_none() {
            return Err(format!("no race scenario `{n}` (see --list)"));
        }
    }
    Ok(o)
}

fn selected(o: &Opts) -> Vec<&'static RaceScenario> {
    if o.names.is_empty() {
        RACES.iter().collect()
    } else {
        o.names.iter().filter_map(|n| scenarios::find(n)).collect()
    }
}

/// Entry point of `ngharness race ...` / `race-one ...` (`args[0]`).
pub fn cli(args: &[String]) -> i32 {
    let (sub, rest) = match args.split_first() {
        Some((s, r)) => (s.as_str(), r),
        None => ("race", &[][..]),
    };
    let o = match parse_opts(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ngharness {sub}: {e}");
            eprintln!("{USAGE}");
            return 2;
        }
    };
    if o.list {
        for s in scenarios::all() {
            println!("{:<36} {}", s.name, s.about);
        }
        return 0;
    }
    match (sub, o.seed) {
        ("race-one", Some(seed)) if o.names.len() == 1 => run_one(&o, &o.names[0], seed),
        ("race-one", _) => {
            eprintln!("ngharness race-one: one --scenario and one --seed");
            2
        }
        (_, Some(seed)) if o.trace && selected(&o).len() == 1 => {
            // Replay in this process, trace on stdout.
            PLAIN.store(true, std::sync::atomic::Ordering::Relaxed);
            let name = selected(&o)[0].name;
            let r = run_one(&o, name, seed);
            println!("race: 1 schedules, {} violations", i32::from(r != 0));
            r
        }
        _ => run_all(&o),
    }
}

// ---------------------------------------------------------------------------
// One schedule (the child)

/// Reports for a person (a replay in this process) rather than a parent.
static PLAIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn report(kind: &str, text: &str) {
    let plain = PLAIN.load(std::sync::atomic::Ordering::Relaxed);
    if plain && kind == "done" {
        return;
    }
    let mut so = std::io::stdout().lock();
    for l in text.lines() {
        if plain {
            let _ = writeln!(so, "{kind}: {l}");
        } else {
            let _ = writeln!(so, "{TAG}{kind} {l}");
        }
    }
    let _ = so.flush();
}

/// Shuts down every node except socket nodes (the teardown of a schedule).
fn teardown() -> Result<(), String> {
    let mut p = Proc::open()?;
    p.send_msg(".", msg::NGM_GENERIC_COOKIE, msg::cmd::LISTNODES, &[])
        .map_err(|e| format!("LISTNODES: errno {e}"))?;
    let r = p
        .recv_msg()
        .map_err(|e| format!("LISTNODES reply: errno {e}"))?;
    for ni in msg::decode_namelist(&r.data) {
        if ni.ty == "socket" || ni.ty == "harnessctl" || ni.id == p.id {
            continue;
        }
        let _ = p.send_msg(
            &format!("[{:x}]:", ni.id),
            msg::NGM_GENERIC_COOKIE,
            msg::cmd::SHUTDOWN,
            &[],
        );
    }
    crate::kern::sched::run_until_idle();
    p.close();
    crate::kern::sched::run_until_idle();
    Ok(())
}

fn run_one(o: &Opts, name: &str, seed: u64) -> i32 {
    let Some(sc) = scenarios::find(name) else {
        eprintln!("ngharness race: no scenario {name}");
        return 2;
    };
    smp::configure(smp::Config {
        cpus: o.cpus,
        seed,
        machine: true,
        full_trace: o.trace,
        horizon: RACE_HORIZON,
        preempt_driver: true,
        eager_net: true,
    });
    let mut k = match HarnessKernel::boot(&o.kos) {
        Ok(k) => k,
        Err(e) => {
            report("problem", &e);
            report("done", "1");
            return 1;
        }
    };
    for m in sc.needs {
        if !k.module_loaded(m) {
            report(
                "problem",
                &format!("the scenario needs {m}, which is not loaded (give it with --ko)"),
            );
            report("done", "1");
            return 1;
        }
    }
    let mut problems = Vec::new();
    if let Err(e) = (sc.run)() {
        problems.push(format!("outcome: {e}"));
    }
    crate::kern::sched::run_until_idle();
    problems.extend(k.take_violations());
    if let Err(e) = teardown() {
        problems.push(format!("teardown: {e}"));
    }
    // The trace is rendered while the modules are loaded (call sites are
    // named by module symbols).
    let trace = if o.trace {
        smp::trace_lines()
    } else {
        Vec::new()
    };
    problems.extend(k.end_checks());
    if let Some(s) = smp::summary() {
        report("schedule", &s);
    }
    if o.trace {
        let mut so = std::io::stdout().lock();
        for l in trace {
            let _ = writeln!(so, "{l}");
        }
    }
    for p in &problems {
        report("problem", p);
    }
    report("done", &problems.len().to_string());
    i32::from(!problems.is_empty())
}

// ---------------------------------------------------------------------------
// Many schedules (the parent)

struct Outcome {
    name: &'static str,
    seed: u64,
    problems: Vec<String>,
    schedule: String,
    /// The child's other output (its trace, with `--trace`).
    console: Vec<String>,
}

fn child_cmd(o: &Opts, name: &str, seed: u64) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ngharness"));
    let mut cmd = Command::new(exe);
    cmd.arg("race-one");
    for k in &o.kos {
        cmd.arg("--ko").arg(k);
    }
    cmd.args(["--cpus", &o.cpus.to_string()]);
    cmd.args(["--scenario", name, "--seed", &seed.to_string()]);
    if o.trace {
        cmd.arg("--trace");
    }
    cmd
}

fn run_child(o: &Opts, name: &'static str, seed: u64) -> Outcome {
    let mut out = Outcome {
        name,
        seed,
        problems: Vec::new(),
        schedule: String::new(),
        console: Vec::new(),
    };
    let mut cmd = child_cmd(o, name, seed);
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            out.problems.push(format!("pipe: {e}"));
            return out;
        }
    };
    let w2 = writer.try_clone();
    cmd.stdin(Stdio::null()).stdout(Stdio::from(writer));
    match w2 {
        Ok(w) => cmd.stderr(Stdio::from(w)),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            out.problems.push(format!("cannot start the child: {e}"));
            return out;
        }
    };
    drop(cmd);
    let lines = std::thread::spawn(move || {
        BufReader::new(reader)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let deadline = Instant::now() + Duration::from_secs(o.timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let lines = lines.join().unwrap_or_default();
    let mut done = false;
    let mut console = Vec::new();
    for l in &lines {
        if let Some(r) = l.strip_prefix(TAG) {
            let (kind, text) = r.split_once(' ').unwrap_or((r, ""));
            match kind {
                "problem" => out.problems.push(text.to_string()),
                "schedule" => out.schedule = text.to_string(),
                "done" => done = true,
                _ => {}
            }
        } else {
            console.push(l.clone());
        }
    }
    // The last output, the panic message and violations first (a panic
    // ends with the schedule's last events, which would crowd them out).
    let tail = || {
        let is_trace = |l: &String| l.starts_with("harness: trace:");
        let other: Vec<&String> = console.iter().filter(|l| !is_trace(l)).collect();
        let trace: Vec<&String> = console.iter().filter(|l| is_trace(l)).collect();
        other[other.len().saturating_sub(20)..]
            .iter()
            .chain(trace[trace.len().saturating_sub(12)..].iter())
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match status {
        None => out.problems.push(format!(
            "still running after {} s (a hang); last output:\n{}",
            o.timeout,
            tail()
        )),
        Some(s) if !done => {
            let why = match s.code() {
                Some(c) if c == crate::kern::PANIC_EXIT => "ended in a kernel panic".to_string(),
                Some(c) => format!("exited with status {c} before finishing"),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    format!("killed by signal {}", s.signal().unwrap_or(0))
                }
            };
            out.problems
                .push(format!("{why}; last output:\n{}", tail()));
        }
        _ => {}
    }
    out.console = console;
    out
}

fn replay_cmd(o: &Opts, name: &str, seed: u64) -> String {
    let mut s = String::from("ngharness race");
    for k in &o.kos {
        s.push_str(&format!(" --ko {}", k.display()));
    }
    s.push_str(&format!(
        " --cpus {} --scenario {name} --seed {seed} --trace",
        o.cpus
    ));
    s
}

fn run_all(o: &Opts) -> i32 {
    let scs = selected(o);
    let range: Vec<u64> = match o.seed {
        Some(s) => vec![s],
        None => (o.first..o.first + o.seeds).collect(),
    };
    let mut schedules = 0u64;
    let mut failing = 0u64;
    for sc in scs {
        // The seed range, and the regression seeds of this scenario.
        let mut seeds = range.clone();
        if o.seed.is_none() {
            for &(name, seed, _) in scenarios::REGRESSIONS {
                if name == sc.name && !seeds.contains(&seed) {
                    seeds.push(seed);
                }
            }
        }
        let mut results: Vec<Outcome> = Vec::new();
        let mut stop = false;
        for chunk in seeds.chunks(o.jobs) {
            if stop {
                break;
            }
            let outs: Vec<Outcome> = std::thread::scope(|s| {
                let hs: Vec<_> = chunk
                    .iter()
                    .map(|&seed| s.spawn(move || run_child(o, sc.name, seed)))
                    .collect();
                hs.into_iter().filter_map(|h| h.join().ok()).collect()
            });
            for r in outs {
                if o.trace {
                    println!("== {} seed {}", r.name, r.seed);
                    for l in &r.console {
                        println!("{l}");
                    }
                }
                schedules += 1;
                if !r.problems.is_empty() {
                    failing += 1;
                    stop |= o.stop_at_first;
                }
                results.push(r);
            }
        }
        let bad: Vec<&Outcome> = results.iter().filter(|r| !r.problems.is_empty()).collect();
        let mut so = std::io::stdout().lock();
        if bad.is_empty() {
            let _ = writeln!(so, "PASS {} ({} schedules)", sc.name, results.len());
        } else {
            let _ = writeln!(
                so,
                "FAIL {} ({} of {} schedules; first at seed {})",
                sc.name,
                bad.len(),
                results.len(),
                bad[0].seed
            );
            for r in bad.iter().take(3) {
                let _ = writeln!(so, "  seed {}: {}", r.seed, r.problems[0]);
                for p in r.problems.iter().skip(1).take(4) {
                    let _ = writeln!(so, "    {p}");
                }
                if !r.schedule.is_empty() {
                    let _ = writeln!(so, "    schedule: {}", r.schedule);
                }
                let _ = writeln!(so, "    replay: {}", replay_cmd(o, r.name, r.seed));
            }
        }
    }
    println!("race: {schedules} schedules, {failing} violations");
    i32::from(failing > 0)
}
