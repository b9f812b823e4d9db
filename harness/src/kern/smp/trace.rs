//! The trace of a machine's run: which kernel thread, on which CPU, passed
//! which preemption point (the kernel function a module called, and from
//! where), blocked, woke another thread, or got the CPU.
//!
//! Events are recorded compactly (kernel function names are interned, call
//! sites kept as return addresses) and turned into text only when printed,
//! so tracing every call costs little. Without `full`, only the most recent
//! events are kept.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Events kept when the whole trace is not asked for.
const RECENT: usize = 4096;

/// One event.
#[derive(Clone, Debug)]
pub enum Ev {
    /// A module called kernel function `site` (see [`site_name`]) from `ra`.
    Call(u32, usize),
    /// A preemption point of the model (mutex release, wakeup, enqueue...).
    Point(&'static str),
    /// The thread blocked for this reason.
    Block(String),
    /// The thread made thread `n` runnable.
    Wake(usize),
    /// The thread gave the CPU to thread `n`.
    Run(usize),
    /// The thread started thread `n`.
    Spawn(usize),
    /// The thread exited.
    Exit,
    /// A contract violation was reported here.
    Violation(String),
}

struct Rec {
    step: u64,
    task: usize,
    ev: Ev,
}

/// The trace of one machine.
pub struct Trace {
    full: bool,
    /// Also print each event at once, unresolved (`NGHARNESS_TRACE_LIVE`):
    /// the trace of a run that crashes.
    live: bool,
    recs: VecDeque<Rec>,
    dropped: u64,
}

impl Trace {
    pub fn new(full: bool) -> Trace {
        Trace {
            full,
            live: std::env::var_os("NGHARNESS_TRACE_LIVE").is_some(),
            recs: VecDeque::new(),
            dropped: 0,
        }
    }

    pub fn push(&mut self, step: u64, task: usize, ev: Ev) {
        if self.live {
            let what = match &ev {
                Ev::Call(site, ra) => format!("{} from {ra:#x}", site_name(*site)),
                other => format!("{other:?}"),
            };
            eprintln!("trace: {step:>8} #{task} {what}");
        }
        if !self.full && self.recs.len() >= RECENT {
            self.recs.pop_front();
            self.dropped += 1;
        }
        self.recs.push_back(Rec { step, task, ev });
    }

    /// The last `n` events as text without naming call sites (takes no
    /// lock: for a panic report).
    pub fn tail_raw(&self, n: usize, names: &[(String, usize)]) -> Vec<String> {
        self.recs
            .iter()
            .skip(self.recs.len().saturating_sub(n))
            .map(|r| {
                let who = names.get(r.task).map_or("?", |(n, _)| n.as_str());
                let what = match &r.ev {
                    Ev::Call(_, ra) => format!("kernel call from {ra:#x}"),
                    other => format!("{other:?}"),
                };
                format!("{:>8} {who:<16} {what}", r.step)
            })
            .collect()
    }

    /// The events as text; `names` gives each thread's name and CPU.
    pub fn lines(&self, names: &[(String, usize)]) -> Vec<String> {
        let name = |i: usize| {
            names
                .get(i)
                .map_or_else(|| format!("#{i}"), |(n, _)| n.clone())
        };
        let mut out = Vec::with_capacity(self.recs.len() + 1);
        if self.dropped > 0 {
            out.push(format!("({} earlier events not kept)", self.dropped));
        }
        for r in &self.recs {
            let cpu = names.get(r.task).map_or(0, |(_, c)| *c);
            let what = match &r.ev {
                Ev::Call(site, ra) => format!(
                    "{} from {}",
                    site_name(*site),
                    crate::kern::loader::symbolize(*ra)
                        .map(|s| demangled(&s))
                        .unwrap_or_else(|| format!("{ra:#x}"))
                ),
                Ev::Point(p) => format!("[{p}]"),
                Ev::Block(why) => format!("blocks: {why}"),
                Ev::Wake(n) => format!("wakes {}", name(*n)),
                Ev::Run(n) => format!("-> {}", name(*n)),
                Ev::Spawn(n) => format!("starts {}", name(*n)),
                Ev::Exit => "exits".to_string(),
                Ev::Violation(m) => format!("*** VIOLATION: {m}"),
            };
            out.push(format!(
                "{:>8} cpu{cpu} {:<16} {what}",
                r.step,
                name(r.task)
            ));
        }
        out
    }
}

/// `file.ko:symbol+0x1c` with a Rust symbol demangled (`ksocket::node::accept`).
fn demangled(site: &str) -> String {
    let Some((file, rest)) = site.split_once(':') else {
        return site.to_string();
    };
    let (sym, off) = match rest.rfind('+') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    format!("{file}:{:#}{off}", rustc_demangle::demangle(sym))
}

static SITES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Interns a kernel function name for [`Ev::Call`].
pub fn register_site(name: &str) -> u32 {
    let mut g = SITES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = g.iter().position(|n| n == name) {
        return i as u32;
    }
    g.push(name.to_string());
    (g.len() - 1) as u32
}

/// The kernel function name of a site.
pub fn site_name(site: u32) -> String {
    SITES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(site as usize)
        .cloned()
        .unwrap_or_else(|| format!("site#{site}"))
}
