//! `ngsock-fuzz`: coverage-guided fuzzing of the ngsock modules with LibAFL.
//!
//! The modules are the `fuzz` flavour (`scripts/build-ko.sh <..> fuzz`:
//! SanitizerCoverage inline 8-bit counters and PC tables in their own
//! code). The harness's fork server (`ngharness::fuzz::Server`) boots the
//! kernel once with them loaded and runs each input in a fresh child, which
//! copies its edge counters into a map shared with this process. LibAFL
//! observes that map (hit counts), keeps inputs that reach new edges or
//! counts, and mutates them (havoc plus a dictionary of the modules' ASCII
//! words); an input whose case ends in a violation, a kernel panic, a
//! harness crash or a hang is a finding. Findings are told apart by their
//! signature (their first violation or panic line with numbers masked);
//! each new one is saved, minimized by the harness and reported at the
//! end with the executions and the edges reached in each module.
//!
//! ```text
//! ngsock-fuzz --target NAME [--secs N] [--seed N] [--timeout-ms N]
//!             [--corpus DIR]... [--out DIR] [--ko A.ko]...
//! ```
//! Defaults: the seed corpus `fuzz/corpus/NAME`, output in
//! `build/fuzz/NAME` (`queue/` the grown corpus, `findings/`), modules
//! `build/fuzz/ng_socket.ko build/fuzz/ng_ksocket.ko`.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libafl::corpus::{Corpus, InMemoryOnDiskCorpus, OnDiskCorpus};
use libafl::events::SimpleEventManager;
use libafl::executors::{Executor, ExitKind, HasObservers};
use libafl::feedbacks::{CrashFeedback, MaxMapFeedback, TimeoutFeedback};
use libafl::generators::RandBytesGenerator;
use libafl::inputs::{BytesInput, HasTargetBytes};
use libafl::monitors::SimpleMonitor;
use libafl::mutators::{havoc_mutations, tokens_mutations, HavocScheduledMutator, Tokens};
use libafl::observers::{CanTrack, HitcountsMapObserver, StdMapObserver};
use libafl::schedulers::{IndexesLenTimeMinimizerScheduler, QueueScheduler};
use libafl::stages::StdMutationalStage;
use libafl::state::{HasCorpus, HasExecutions, HasSolutions, StdState};
use libafl::{feedback_or_fast, Error, Fuzzer, HasMetadata, StdFuzzer};
use libafl_bolts::rands::StdRand;
use libafl_bolts::tuples::{tuple_list, Merge, RefIndexable};
use libafl_bolts::ToSlice;
use ngharness::fuzz::{self, Outcome, Server, Target};

/// A finding, first seen.
struct Seen {
    kind: String,
    input: Vec<u8>,
    report: String,
    count: u64,
}

/// Runs inputs through the harness's fork server.
struct ServerExecutor<OT> {
    server: Server,
    target: Target,
    observers: OT,
    /// Union of every clean case's coverage (edges reached so far).
    union: Vec<u8>,
    findings: BTreeMap<String, Seen>,
}

impl<OT> HasObservers for ServerExecutor<OT> {
    type Observers = OT;
    fn observers(&self) -> RefIndexable<&OT, OT> {
        RefIndexable::from(&self.observers)
    }
    fn observers_mut(&mut self) -> RefIndexable<&mut OT, OT> {
        RefIndexable::from(&mut self.observers)
    }
}

impl<EM, I, S, Z, OT> Executor<EM, I, S, Z> for ServerExecutor<OT>
where
    I: HasTargetBytes,
    S: HasExecutions,
{
    fn run_target(
        &mut self,
        _: &mut Z,
        state: &mut S,
        _: &mut EM,
        input: &I,
    ) -> Result<ExitKind, Error> {
        *state.executions_mut() += 1;
        let bytes = input.target_bytes();
        let data = bytes.to_slice();
        let (sig, kind, report) = match self.server.run(self.target, data) {
            Outcome::Ok => {
                for (u, &m) in self.union.iter_mut().zip(self.server.map().iter()) {
                    *u |= m;
                }
                return Ok(ExitKind::Ok);
            }
            Outcome::Finding(f) => (f.signature, ExitKind::Crash, f.report),
            Outcome::Timeout(r) => ("timeout".to_string(), ExitKind::Timeout, r),
        };
        match self.findings.get_mut(&sig) {
            Some(s) => {
                s.count += 1;
                Ok(ExitKind::Ok)
            }
            None => {
                eprintln!("ngsock-fuzz: new finding: {sig}");
                self.findings.insert(
                    sig,
                    Seen {
                        kind: format!("{kind:?}"),
                        input: data.to_vec(),
                        report,
                        count: 1,
                    },
                );
                Ok(kind)
            }
        }
    }
}

/// Words of the modules' ASCII forms and hook names.
fn dictionary() -> Tokens {
    let words: &[&str] = &[
        "bind",
        "listen",
        "accept",
        "connect",
        "getname",
        "getpeername",
        "setopt",
        "getopt",
        "getstats",
        "clrstats",
        "inet",
        "inet6",
        "local",
        "dgram",
        "stream",
        "raw",
        "seqpacket",
        "udp",
        "tcp",
        "icmp",
        "/",
        ":",
        "127.0.0.1",
        "::1",
        "[",
        "]",
        "{",
        "}",
        "=",
        "\"",
        "level=",
        "name=",
        "value=",
        "len=",
        "family=",
        "data=",
        "socket",
        "reuseaddr",
        "nodelay",
        "0x",
        "[ ",
        " ]",
        "ksocket",
        "echo",
        "hole",
        ".:",
        "[1]:",
    ];
    Tokens::from(
        words
            .iter()
            .map(|w| w.as_bytes().to_vec())
            .collect::<Vec<_>>(),
    )
}

struct Args {
    target: Target,
    secs: u64,
    seed: u64,
    timeout_ms: u64,
    corpus: Vec<PathBuf>,
    out: PathBuf,
    kos: Vec<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: ngsock-fuzz --target NAME [--secs N] [--seed N] [--timeout-ms N] [--corpus DIR]... [--out DIR] [--ko A.ko]..."
    );
    eprintln!(
        "targets: {}",
        fuzz::TARGETS
            .iter()
            .map(|t| t.0)
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = std::env::args().skip(1);
    let mut target = None;
    let (mut secs, mut seed, mut timeout_ms) = (60, 0, 10_000);
    let (mut corpus, mut out, mut kos) = (Vec::new(), None, Vec::new());
    while let Some(x) = a.next() {
        let mut val = || a.next().unwrap_or_else(|| usage());
        match x.as_str() {
            "--target" => target = Target::by_name(&val()),
            "--secs" => secs = val().parse().unwrap_or_else(|_| usage()),
            "--seed" => seed = val().parse().unwrap_or_else(|_| usage()),
            "--timeout-ms" => timeout_ms = val().parse().unwrap_or_else(|_| usage()),
            "--corpus" => corpus.push(PathBuf::from(val())),
            "--out" => out = Some(PathBuf::from(val())),
            "--ko" => kos.push(PathBuf::from(val())),
            _ => usage(),
        }
    }
    let target = target.unwrap_or_else(|| usage());
    if corpus.is_empty() {
        corpus.push(PathBuf::from(format!("fuzz/corpus/{}", target.name())));
    }
    if kos.is_empty() {
        kos = vec![
            PathBuf::from("build/fuzz/ng_socket.ko"),
            PathBuf::from("build/fuzz/ng_ksocket.ko"),
        ];
    }
    Args {
        target,
        secs,
        seed,
        timeout_ms,
        corpus,
        out: out.unwrap_or_else(|| PathBuf::from(format!("build/fuzz/{}", target.name()))),
        kos,
    }
}

fn edges_line(exec: &ServerExecutor<impl Sized>) -> String {
    exec.server
        .modules()
        .iter()
        .map(|m| {
            let n = exec.union[m.offset..m.offset + m.len]
                .iter()
                .filter(|&&c| c != 0)
                .count();
            format!("{} {n}/{}", m.name, m.len)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    let args = parse_args();
    let mut server = Server::boot(&args.kos).unwrap_or_else(|e| {
        eprintln!("ngsock-fuzz: {e}");
        std::process::exit(1)
    });
    server.timeout = Duration::from_millis(args.timeout_ms);
    if server.modules().is_empty() {
        eprintln!(
            "ngsock-fuzz: the modules carry no coverage counters (build them with `make ko-fuzz`)"
        );
        std::process::exit(1);
    }
    if !server.sandboxed_network() {
        eprintln!(
            "ngsock-fuzz: warning: no private network namespace; the cases use the host's loopback"
        );
    }
    let (ptr, len) = server.map_raw();
    // SAFETY: the server's shared map lives as long as the server, which
    // the executor owns for the rest of the run.
    let observer =
        HitcountsMapObserver::new(unsafe { StdMapObserver::from_mut_ptr("edges", ptr, len) })
            .track_indices();
    let mut feedback = MaxMapFeedback::new(&observer);
    let mut objective = feedback_or_fast!(CrashFeedback::new(), TimeoutFeedback::new());
    let queue = args.out.join("queue");
    let crashes = args.out.join("crashes");
    let corpus = InMemoryOnDiskCorpus::<BytesInput>::new(&queue).expect("queue directory");
    let solutions = OnDiskCorpus::<BytesInput>::new(&crashes).expect("crashes directory");
    let mut state = StdState::new(
        StdRand::with_seed(args.seed),
        corpus,
        solutions,
        &mut feedback,
        &mut objective,
    )
    .expect("fuzzer state");
    state.add_metadata(dictionary());
    let monitor = SimpleMonitor::new(|_s: &str| {});
    let mut mgr = SimpleEventManager::new(monitor);
    let scheduler = IndexesLenTimeMinimizerScheduler::new(&observer, QueueScheduler::new());
    let mut fuzzer = StdFuzzer::new(scheduler, feedback, objective);
    let mut executor = ServerExecutor {
        server,
        target: args.target,
        observers: tuple_list!(observer),
        union: vec![0; len],
        findings: BTreeMap::new(),
    };
    let seeds: Vec<PathBuf> = args.corpus.iter().filter(|d| d.is_dir()).cloned().collect();
    if !seeds.is_empty() {
        state
            .load_initial_inputs(&mut fuzzer, &mut executor, &mut mgr, &seeds)
            .unwrap_or_else(|e| eprintln!("ngsock-fuzz: loading the seed corpus: {e}"));
    }
    if state.corpus().count() == 0 {
        let mut generator = RandBytesGenerator::new(NonZeroUsize::new(256).expect("non-zero"));
        state
            .generate_initial_inputs(&mut fuzzer, &mut executor, &mut generator, &mut mgr, 64)
            .expect("initial inputs");
    }
    let mutator = HavocScheduledMutator::new(havoc_mutations().merge(tokens_mutations()));
    let mut stages = tuple_list!(StdMutationalStage::new(mutator));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.secs);
    let mut last = Instant::now();
    println!(
        "ngsock-fuzz {}: {} seed inputs, {} s, seed {}, edges: {}",
        args.target.name(),
        state.corpus().count(),
        args.secs,
        args.seed,
        edges_line(&executor)
    );
    while Instant::now() < deadline {
        if let Err(e) = fuzzer.fuzz_one(&mut stages, &mut executor, &mut state, &mut mgr) {
            eprintln!("ngsock-fuzz: {e}");
            break;
        }
        if last.elapsed() >= Duration::from_secs(30) {
            last = Instant::now();
            let t = start.elapsed().as_secs_f64();
            println!(
                "[{:>5.0}s] execs {} ({:.0}/s), corpus {}, findings {}, edges: {}",
                t,
                state.executions(),
                *state.executions() as f64 / t,
                state.corpus().count(),
                executor.findings.len(),
                edges_line(&executor)
            );
        }
    }
    let t = start.elapsed().as_secs_f64();
    let findings = std::mem::take(&mut executor.findings);
    println!(
        "ngsock-fuzz {}: {} executions in {:.0} s ({:.0}/s), corpus {} inputs, {} solutions, edges: {}",
        args.target.name(),
        state.executions(),
        t,
        *state.executions() as f64 / t,
        state.corpus().count(),
        state.solutions().count(),
        edges_line(&executor)
    );
    report_findings(&mut executor.server, args.target, &args.out, findings);
}

/// Saves, minimizes and prints every finding.
fn report_findings(
    server: &mut Server,
    target: Target,
    out: &Path,
    findings: BTreeMap<String, Seen>,
) {
    println!("findings: {}", findings.len());
    let dir = out.join("findings");
    let _ = std::fs::create_dir_all(&dir);
    for (i, (sig, s)) in findings.into_iter().enumerate() {
        let min = if s.kind == "Timeout" {
            s.input.clone()
        } else {
            fuzz::minimize(server, target, &s.input, &sig)
        };
        let base = dir.join(format!("{}-{i}", target.name()));
        let _ = std::fs::write(base.with_extension("input"), &s.input);
        let _ = std::fs::write(base.with_extension("min"), &min);
        let _ = std::fs::write(base.with_extension("txt"), format!("{sig}\n\n{}", s.report));
        println!(
            "  [{i}] {sig} ({} times; {} bytes, minimized to {} bytes: {})",
            s.count,
            s.input.len(),
            min.len(),
            base.with_extension("min").display()
        );
    }
}
