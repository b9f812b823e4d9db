//! Several CPUs: the kernel runs on real OS threads, one at a time, under a
//! deterministic scheduler that explores interleavings from a seed.
//!
//! A kernel instance (`kern::klocal`) either runs "free" — one OS thread,
//! the event loop of `kern::sched` run inline, exactly the single-CPU model —
//! or on a [`Machine`]: N virtual CPUs, each with its own `struct pcpu`
//! installed as the GS base of the threads bound to it, and kernel threads
//! that are real OS threads:
//!
//! * the driver (the thread that started the kernel: a test, the scenario
//!   runner) — a user process making system calls;
//! * one netgraph queue thread per CPU (`ng_queue0`...), running the
//!   installed subsystems' deferred work (queued netgraph items);
//! * the network thread (`swi1: netisr 0`), delivering socket events and
//!   upcalls from the Linux sockets behind kernel sockets;
//! * the timer thread (`clock`), firing callouts as model time passes;
//! * client threads started with [`spawn`] (e.g. two ngctl processes).
//!
//! Exactly one thread holds the run token. It gives the token away only at
//! preemption points — every call a module makes into the kernel model (the
//! loader routes module imports through [`stub_hook`]), and the points where
//! FreeBSD lets another CPU in: lock release, wakeup, item enqueue — and
//! when it blocks (`_sleep`, a contended mutex, waiting for work). At each
//! point the [`choose`] strategy of the seed picks the next runnable thread,
//! so one seed replays one interleaving, and [`trace`] records who ran what.
//!
//! Time is model time (`kern::sched`): it only moves when no thread can run,
//! to the next timer or sleep deadline. When nothing can run and nothing is
//! due, real network events are waited for (bounded); if none come, the
//! blocked threads are reported as a deadlock.
//!
//! Files: `mod.rs` the machine and its API; `choose.rs` strategies;
//! `trace.rs` the trace; `threads.rs` kernel threads, spawning and the
//! service loops.

pub mod choose;
mod threads;
pub mod trace;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use self::choose::Chooser;
pub use self::threads::{join, parallel, scoped, spawn, TaskId};
pub use self::trace::Ev;
use self::trace::Trace;
use crate::kern::klocal::{self, Instance};
use crate::kern::{thread as kthread, violation};

/// Default PCT horizon (preemption points of one run).
pub const DEFAULT_HORIZON: u64 = 4000;
/// Real time a waiting thread waits for the token before reporting that the
/// machine is stuck (the token holder blocks outside the model).
const STALL: Duration = Duration::from_secs(120);
/// Deadlocks recovered from (by timing a sleeper out) before giving up.
const MAX_DEADLOCKS: u32 = 100;
/// Preemption points other threads may pass while a thread waits for
/// quiescence before it runs again anyway (a kernel that never becomes idle,
/// e.g. a packet looping for ever, must not hang the waiter).
const QUIESCE_BUDGET: u64 = 20_000;

/// How a kernel instance runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Virtual CPUs.
    pub cpus: u32,
    /// Seed of the schedule.
    pub seed: u64,
    /// Run on a machine even with one CPU (a preemptive uniprocessor); with
    /// one CPU and `machine` false the kernel runs free (single-threaded).
    pub machine: bool,
    /// Keep the whole trace (else only the most recent events).
    pub full_trace: bool,
    /// Expected preemption points of one run (PCT change points).
    pub horizon: u64,
    /// The driver thread may be preempted at its preemption points. When
    /// false it runs until it blocks, and gets the CPU back only when the
    /// running thread blocks (the other threads still interleave among
    /// themselves): code written for one CPU, such as a test that checks
    /// that a queued item has not run yet, keeps its meaning.
    pub preempt_driver: bool,
    /// The network thread may run at any preemption point (network input
    /// arrives while other CPUs work); when false it runs when the other
    /// threads are idle or blocked (a slow network: input is processed
    /// between operations, as a single CPU would).
    pub eager_net: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            cpus: 1,
            seed: 1,
            machine: false,
            full_trace: false,
            horizon: DEFAULT_HORIZON,
            preempt_driver: true,
            eager_net: false,
        }
    }
}

impl Config {
    /// `cpus` CPUs, seed `seed`.
    pub fn cpus(cpus: u32, seed: u64) -> Config {
        Config {
            cpus: cpus.max(1),
            seed,
            ..Config::default()
        }
    }

    /// From `NGHARNESS_CPUS` and `NGHARNESS_SEED` (how the whole test suite
    /// is run on several CPUs). The test's own thread is the driver and is
    /// preempted only when it blocks, unless `NGHARNESS_PREEMPT_DRIVER=1`.
    pub fn from_env() -> Option<Config> {
        let cpus: u32 = std::env::var("NGHARNESS_CPUS").ok()?.trim().parse().ok()?;
        let seed = std::env::var("NGHARNESS_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1);
        let preempt = std::env::var("NGHARNESS_PREEMPT_DRIVER").is_ok_and(|v| v.trim() == "1");
        Some(Config {
            preempt_driver: preempt,
            ..Config::cpus(cpus, seed)
        })
    }

    fn wants_machine(&self) -> bool {
        self.cpus > 1 || self.machine
    }
}

thread_local! {
    /// Configuration for the instance this thread will start.
    static PENDING: RefCell<Option<Config>> = const { RefCell::new(None) };
    /// This OS thread's kernel thread: its machine and index.
    static ME: RefCell<Option<(Arc<Machine>, usize)>> = const { RefCell::new(None) };
    /// Shuts the machine down when the driver thread exits.
    static DRIVER: RefCell<Option<DriverGuard>> = const { RefCell::new(None) };
}

/// Chooses how the kernel of this OS thread runs, starting it (its
/// instance) if it has not started yet; a machine starts at once (if the
/// kernel was already running free, nothing may be sleeping then).
pub fn configure(cfg: Config) {
    if let Some(inst) = klocal::try_current() {
        if inst.smp.get().is_none() && cfg.wants_machine() {
            start(&inst, cfg);
        }
        return;
    }
    PENDING.with(|p| *p.borrow_mut() = Some(cfg));
    drop(klocal::current());
}

/// Called by `kern::klocal` when this thread starts a kernel instance.
pub(crate) fn instance_started(inst: &Arc<Instance>) {
    let cfg = PENDING
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()
        .or_else(Config::from_env);
    if let Some(cfg) = cfg {
        if cfg.wants_machine() {
            start(inst, cfg);
        }
    }
}

/// The machine of this thread's kernel thread, if it runs on one.
fn me() -> Option<(Arc<Machine>, usize)> {
    ME.try_with(|m| m.borrow().clone()).ok().flatten()
}

/// True if this OS thread is a kernel thread of a machine (the kernel runs
/// on several CPUs); false for a free-running kernel.
pub fn active() -> bool {
    ME.try_with(|m| m.borrow().is_some()).unwrap_or(false)
}

/// Number of CPUs of this thread's kernel (1 when free).
pub fn ncpus() -> u32 {
    me().map_or(1, |(m, _)| m.lock().cfg.cpus)
}

/// The CPU this kernel thread runs on (0 when free).
pub fn curcpu() -> u32 {
    me().map_or(0, |(m, i)| m.lock().tasks[i].cpu as u32)
}

// ---------------------------------------------------------------------------
// The machine

/// What a kernel thread is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Driver,
    Worker,
    Net,
    Timer,
    Client,
}

/// Why a thread is blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Why {
    /// `_sleep` on a channel, until an absolute model time.
    Chan {
        chan: usize,
        deadline: Option<u64>,
        wmesg: String,
    },
    /// A contended mutex.
    Mutex { m: usize },
    /// A service thread with nothing to do.
    Idle,
    /// Waiting until no other thread can run.
    Quiescent,
    /// Waiting for a thread to exit.
    Join(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Ready,
    Blocked(Why, String),
    Exited,
}

/// How a block ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Woken (wakeup, released mutex, work, quiescence, exit of the joined thread).
    Woken,
    /// The sleep's deadline passed.
    TimedOut,
    /// Nothing could ever wake it (reported as a deadlock).
    Deadlock,
}

struct Task {
    name: String,
    kind: Kind,
    cpu: usize,
    /// The thread's `curthread` while it does not run.
    td: usize,
    state: State,
    wake: Wake,
    cv: Arc<Condvar>,
    /// Order of blocking (wakeup_one wakes the longest sleeper).
    seq: u64,
    /// Times this thread was given the token.
    given: u64,
    /// Panic payload of a client thread, for `join`.
    panic: Option<Box<dyn std::any::Any + Send>>,
}

struct St {
    cfg: Config,
    tasks: Vec<Task>,
    /// The thread holding the run token.
    cur: usize,
    chooser: Chooser,
    /// Preemption points passed.
    step: u64,
    trace: Trace,
    /// `struct pcpu` of each CPU.
    pcpus: Vec<usize>,
    /// The network thread found nothing to do since the others last ran.
    net_clean: bool,
    shutting_down: bool,
    deadlocks: u32,
    seq: u64,
    /// Token grants in total.
    given: u64,
    /// Preemption points passed and network events handled (what
    /// [`quiesce`] reports as "something ran").
    progress: u64,
    /// A thread waiting for quiescence, and the step at which it runs
    /// again even if the kernel is still busy.
    quiesce_until: Option<(usize, u64)>,
}

/// A machine: the CPUs and kernel threads of one kernel instance.
pub struct Machine {
    st: Mutex<St>,
    /// Real time of the last token handover (stall detection).
    last_move: Mutex<Instant>,
}

fn start(inst: &Arc<Instance>, cfg: Config) {
    kthread::init();
    let cpus = cfg.cpus.max(1) as usize;
    let pcpus: Vec<usize> = (0..cpus).map(|c| kthread::new_pcpu(c as u32)).collect();
    let td = kthread::curthread() as usize;
    let mut chooser = Chooser::new(cfg.seed, cfg.horizon);
    chooser.add_thread(0);
    let full = cfg.full_trace;
    let m = Arc::new(Machine {
        st: Mutex::new(St {
            cfg,
            tasks: vec![Task {
                name: "main".into(),
                kind: Kind::Driver,
                cpu: 0,
                td,
                state: State::Ready,
                wake: Wake::Woken,
                cv: Arc::new(Condvar::new()),
                seq: 0,
                given: 1,
                panic: None,
            }],
            cur: 0,
            chooser,
            step: 0,
            trace: Trace::new(full),
            pcpus: pcpus.clone(),
            net_clean: false,
            shutting_down: false,
            deadlocks: 0,
            seq: 0,
            given: 1,
            progress: 0,
            quiesce_until: None,
        }),
        last_move: Mutex::new(Instant::now()),
    });
    if inst.smp.set(m.clone()).is_err() {
        return;
    }
    // The driver moves to CPU 0 of the machine, keeping its curthread.
    kthread::install_pcpu(pcpus[0]);
    kthread::set_curthread(td as *mut fbsd_sys::thread);
    ME.with(|me| *me.borrow_mut() = Some((m.clone(), 0)));
    let _ = DRIVER.try_with(|d| *d.borrow_mut() = Some(DriverGuard(m.clone())));
    crate::kern::add_panic_hook(panic_report);
    threads::start_services(inst, &m, cpus);
}

impl Machine {
    fn lock(&self) -> MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a kernel thread (not yet started: `Ready`, waiting for the token).
    fn add_task(&self, name: &str, kind: Kind, td: usize, cpu: Option<usize>) -> usize {
        let mut g = self.lock();
        let i = g.tasks.len();
        let ncpu = g.pcpus.len();
        let cpu = cpu.unwrap_or(i % ncpu) % ncpu;
        g.tasks.push(Task {
            name: name.to_string(),
            kind,
            cpu,
            td,
            state: State::Ready,
            wake: Wake::Woken,
            cv: Arc::new(Condvar::new()),
            seq: 0,
            given: 0,
            panic: None,
        });
        g.chooser.add_thread(i);
        let step = g.step;
        let cur = g.cur;
        g.trace.push(step, cur, Ev::Spawn(i));
        i
    }

    fn pcpu_of(g: &St, i: usize) -> *mut fbsd_sys::pcpu {
        g.pcpus[g.tasks[i].cpu] as *mut fbsd_sys::pcpu
    }

    /// `td_critnest` of thread `i` (its current curthread).
    fn critnest(g: &St, i: usize) -> u32 {
        let td = if i == g.cur {
            // SAFETY: the pcpu blocks live as long as the machine.
            unsafe { (*Self::pcpu_of(g, i)).pc_curthread as usize }
        } else {
            g.tasks[i].td
        };
        if td == 0 {
            return 0;
        }
        // SAFETY: harness thread objects are never freed.
        unsafe { (*(td as *mut fbsd_sys::thread)).td_critnest }
    }

    /// Threads that may run now: ready, and their CPU not held by another
    /// thread inside a critical section.
    fn eligible(g: &St) -> Vec<usize> {
        Self::eligible_at(g, false)
    }

    /// [`Self::eligible`] at a preemption point (`point`): a driver that is
    /// not preemptible does not take the CPU from a running thread either.
    fn eligible_at(g: &St, point: bool) -> Vec<usize> {
        let keep_driver_out = point && !g.cfg.preempt_driver;
        let busy: Vec<usize> = (0..g.tasks.len())
            .filter(|&i| g.tasks[i].state != State::Exited && Self::critnest(g, i) > 0)
            .collect();
        (0..g.tasks.len())
            .filter(|&i| g.tasks[i].state == State::Ready)
            .filter(|&i| !(keep_driver_out && g.tasks[i].kind == Kind::Driver && i != g.cur))
            .filter(|&i| {
                busy.iter()
                    .all(|&b| b == i || g.tasks[b].cpu != g.tasks[i].cpu)
            })
            .collect()
    }

    /// Gives the token to `next` and waits until it comes back to `me`.
    fn transfer<'a>(
        &'a self,
        mut g: MutexGuard<'a, St>,
        me: usize,
        next: usize,
    ) -> MutexGuard<'a, St> {
        // SAFETY: the pcpu blocks live as long as the machine.
        unsafe {
            g.tasks[me].td = (*Self::pcpu_of(&g, me)).pc_curthread as usize;
        }
        self.hand(&mut g, next);
        self.wait_token(g, me)
    }

    /// Makes `next` the token holder and wakes its OS thread.
    fn hand(&self, g: &mut St, next: usize) {
        let step = g.step;
        let from = g.cur;
        g.trace.push(step, from, Ev::Run(next));
        g.cur = next;
        g.given += 1;
        g.tasks[next].given += 1;
        g.tasks[next].cv.notify_one();
        *self.last_move.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Waits until thread `me` holds the token; installs its curthread.
    fn wait_token<'a>(&'a self, mut g: MutexGuard<'a, St>, me: usize) -> MutexGuard<'a, St> {
        let cv = g.tasks[me].cv.clone();
        while g.cur != me {
            let (g2, to) = cv.wait_timeout(g, STALL).unwrap_or_else(|e| e.into_inner());
            g = g2;
            if to.timed_out() && g.cur != me {
                let last = *self.last_move.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= STALL {
                    eprintln!(
                        "harness: SMP machine stuck: thread {} has held the run token for {:?} \
                         (blocked outside the kernel model?)\n{}",
                        g.tasks[g.cur].name,
                        last.elapsed(),
                        describe(&g)
                    );
                    std::process::abort();
                }
            }
        }
        // SAFETY: the pcpu blocks live as long as the machine.
        unsafe {
            (*Self::pcpu_of(&g, me)).pc_curthread = g.tasks[me].td as *mut fbsd_sys::thread;
        }
        g
    }

    /// A preemption point of the running thread `me`.
    fn preempt(&self, me: usize, ev: Ev) {
        let mut g = self.lock();
        debug_assert_eq!(g.cur, me, "preemption point of a thread without the token");
        g.step += 1;
        g.progress += 1;
        let step = g.step;
        g.trace.push(step, me, ev);
        if let Some((t, until)) = g.quiesce_until {
            if step >= until {
                g.quiesce_until = None;
                Self::make_ready(&mut g, t, Wake::TimedOut);
            }
        }
        if g.tasks[me].kind != Kind::Net {
            // Network input may have arrived (a send to a local peer, an
            // outside sender): the network thread may run at any point
            // from now on, as a netisr thread on another CPU would.
            g.net_clean = false;
            if g.cfg.eager_net
                && matches!(
                    g.tasks
                        .iter()
                        .find(|t| t.kind == Kind::Net)
                        .map(|t| &t.state),
                    Some(State::Blocked(Why::Idle, _))
                )
            {
                kick_kind(&mut g, Kind::Net);
            }
        }
        if g.tasks[me].kind == Kind::Driver && !g.cfg.preempt_driver {
            return;
        }
        g.chooser.on_step(step, me);
        let el = Self::eligible_at(&g, true);
        if el.is_empty() {
            return;
        }
        let cur = el.contains(&me).then_some(me);
        let next = g.chooser.choose(&el, cur);
        if next != me {
            drop(self.transfer(g, me, next));
        }
    }

    /// Blocks the running thread `me` for `why` until something makes it
    /// ready again; returns how the block ended.
    fn block(&self, me: usize, why: Why, what: String) -> Wake {
        let mut g = self.lock();
        g.seq += 1;
        let seq = g.seq;
        let step = g.step;
        g.trace.push(step, me, Ev::Block(what.clone()));
        g.tasks[me].seq = seq;
        g.tasks[me].wake = Wake::Woken;
        if !matches!(why, Why::Idle | Why::Quiescent) {
            // It may have changed socket state the network thread must see.
            g.net_clean = false;
        }
        g.tasks[me].state = State::Blocked(why, what);
        loop {
            let el = Self::eligible(&g);
            if el.is_empty() {
                g = self.idle_step(g, me);
                continue;
            }
            let next = g.chooser.choose(&el, None);
            if next != me {
                g = self.transfer(g, me, next);
            }
            debug_assert_eq!(g.tasks[me].state, State::Ready);
            return g.tasks[me].wake;
        }
    }

    /// Runs `f` with the machine lock released (the caller still holds the
    /// run token, so nobody else touches the machine meanwhile).
    fn unlocked<'a, R>(
        &'a self,
        g: MutexGuard<'a, St>,
        f: impl FnOnce() -> R,
    ) -> (MutexGuard<'a, St>, R) {
        drop(g);
        let r = f();
        (self.lock(), r)
    }

    /// Makes blocked thread `i` ready with `w`.
    fn make_ready(g: &mut St, i: usize, w: Wake) {
        if matches!(g.tasks[i].state, State::Blocked(..)) {
            g.tasks[i].state = State::Ready;
            g.tasks[i].wake = w;
            let step = g.step;
            let cur = g.cur;
            g.trace.push(step, cur, Ev::Wake(i));
        }
    }

    /// Nothing can run: let network events arrive, service threads look for
    /// work, a quiescence waiter go on, or model time move; else report a
    /// deadlock and time out a sleeper.
    fn idle_step<'a>(&'a self, mut g: MutexGuard<'a, St>, me: usize) -> MutexGuard<'a, St> {
        // 1. The network thread looks at the sockets once after others ran.
        if !g.net_clean && kick_kind(&mut g, Kind::Net) {
            return g;
        }
        // 2. Pending subsystem work with an idle queue thread.
        let (mut g, pending) = self.unlocked(g, crate::kern::subsystems_pending);
        if pending && kick_kind(&mut g, Kind::Worker) {
            return g;
        }
        // 3. A thread waiting for quiescence (idle checks first).
        if let Some(i) = (0..g.tasks.len())
            .find(|&i| matches!(g.tasks[i].state, State::Blocked(Why::Quiescent, _)))
        {
            let (mut g, ()) = self.unlocked(g, crate::kern::sched::run_idle_checks);
            Self::make_ready(&mut g, i, Wake::Woken);
            return g;
        }
        // 4. Model time moves to the next timer or sleep deadline (after a
        //    bounded real wait for network events).
        let (g, (now, timer)) = self.unlocked(g, || {
            (
                crate::kern::sched::now_ticks(),
                crate::kern::sched::next_deadline(),
            )
        });
        let sleeper = g
            .tasks
            .iter()
            .filter_map(|t| match &t.state {
                State::Blocked(Why::Chan { deadline, .. }, _) => *deadline,
                _ => None,
            })
            .min();
        let next = match (timer, sleeper) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = next.map(|d| d.saturating_sub(now));
        let (mut g, events) = self.unlocked(g, || crate::kern::sched::call_idle_hook(wait));
        if events {
            g.net_clean = false;
            kick_kind(&mut g, Kind::Net);
            return g;
        }
        if let Some(d) = next {
            return self.advance_locked(g, d.max(now));
        }
        // 5. Deadlock.
        g.deadlocks += 1;
        let n = g.deadlocks;
        let report = describe(&g);
        let victim = (0..g.tasks.len())
            .filter(|&i| matches!(g.tasks[i].state, State::Blocked(Why::Chan { .. }, _)))
            .min_by_key(|&i| g.tasks[i].seq);
        let msg = match victim.map(|v| (v, &g.tasks[v].state)) {
            Some((v, State::Blocked(Why::Chan { chan, wmesg, .. }, _))) => format!(
                "deadlock: sleeping on \"{wmesg}\" (chan {chan:#x}) with nothing runnable \
                 (thread {}, timed out)\n{report}",
                g.tasks[v].name
            ),
            _ => format!("deadlock: no thread can run\n{report}"),
        };
        let (mut g, ()) = self.unlocked(g, || violation(msg));
        match victim {
            Some(v) if n < MAX_DEADLOCKS => {
                Self::make_ready(&mut g, v, Wake::Deadlock);
                g
            }
            _ => {
                let _ = me;
                drop(g);
                crate::kern::kernel_panic("harness: deadlock, no thread can ever run again");
            }
        }
    }

    /// Sets model time to `t`: due timers wake the timer thread, sleepers
    /// whose deadline passed time out.
    fn advance_locked<'a>(&'a self, g: MutexGuard<'a, St>, t: u64) -> MutexGuard<'a, St> {
        let (mut g, due) = self.unlocked(g, || {
            crate::kern::sched::set_now(t);
            crate::kern::sched::timer_due()
        });
        if due {
            kick_kind(&mut g, Kind::Timer);
        }
        for i in 0..g.tasks.len() {
            if let State::Blocked(
                Why::Chan {
                    deadline: Some(d), ..
                },
                _,
            ) = g.tasks[i].state
            {
                if d <= t {
                    Self::make_ready(&mut g, i, Wake::TimedOut);
                }
            }
        }
        g
    }
}

/// Wakes one idle service thread of `kind`; false if none is idle.
fn kick_kind(g: &mut St, kind: Kind) -> bool {
    let idle: Vec<usize> = (0..g.tasks.len())
        .filter(|&i| {
            g.tasks[i].kind == kind && matches!(g.tasks[i].state, State::Blocked(Why::Idle, _))
        })
        .collect();
    if idle.is_empty() {
        return false;
    }
    let pick = idle[g.chooser.rng.below(idle.len() as u64) as usize];
    Machine::make_ready(g, pick, Wake::Woken);
    true
}

/// The threads and what each one waits for (deadlock and stall reports).
fn describe(g: &St) -> String {
    let mut s = String::new();
    for (i, t) in g.tasks.iter().enumerate() {
        let st = match &t.state {
            State::Ready if i == g.cur => "running".to_string(),
            State::Ready => "runnable".to_string(),
            State::Blocked(_, what) => format!("blocked: {what}"),
            State::Exited => "exited".to_string(),
        };
        let _ = writeln!(s, "  cpu{} {:<16} {st}", t.cpu, t.name);
    }
    s
}

struct DriverGuard(Arc<Machine>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        threads::shutdown(&self.0);
    }
}

// ---------------------------------------------------------------------------
// The API the kernel model uses

/// A preemption point of the running kernel thread (no-op for a free
/// kernel, and inside model state accesses).
pub fn preempt(ev: Ev) {
    if klocal::in_model() {
        return;
    }
    if let Some((m, me)) = me() {
        m.preempt(me, ev);
    }
}

/// Entry hook of every module import (see the loader's jump stubs): a
/// preemption point recording which kernel function was called from where.
pub extern "C" fn stub_hook(site: u32, ra: usize) {
    if !klocal::in_model() && active() {
        preempt(Ev::Call(site, ra));
    }
}

/// `_sleep` on a machine: blocks until `wakeup(chan)`, or until model time
/// reaches `deadline` (absolute ticks).
pub fn sleep(chan: usize, deadline: Option<u64>, wmesg: &str) -> Option<Wake> {
    let (m, me) = me()?;
    let what = match deadline {
        Some(d) => format!("sleep \"{wmesg}\" (chan {chan:#x}, until tick {d})"),
        None => format!("sleep \"{wmesg}\" (chan {chan:#x})"),
    };
    let why = Why::Chan {
        chan,
        deadline,
        wmesg: wmesg.to_string(),
    };
    Some(m.block(me, why, what))
}

/// `wakeup` / `wakeup_one` on a machine; false for a free kernel.
pub fn wakeup(chan: usize, one: bool) -> bool {
    let Some((m, _)) = me() else { return false };
    {
        let mut g = m.lock();
        let mut sleepers: Vec<usize> = (0..g.tasks.len())
            .filter(|&i| {
                matches!(&g.tasks[i].state,
                    State::Blocked(Why::Chan { chan: c, .. }, _) if *c == chan)
            })
            .collect();
        sleepers.sort_by_key(|&i| g.tasks[i].seq);
        if one {
            sleepers.truncate(1);
        }
        for i in sleepers {
            Machine::make_ready(&mut g, i, Wake::Woken);
        }
    }
    preempt(Ev::Point("wakeup"));
    true
}

/// The earliest sleep deadline of a blocked thread.
pub fn next_sleep_deadline() -> Option<u64> {
    let (m, _) = me()?;
    let g = m.lock();
    g.tasks
        .iter()
        .filter_map(|t| match &t.state {
            State::Blocked(Why::Chan { deadline, .. }, _) => *deadline,
            _ => None,
        })
        .min()
}

/// Number of threads sleeping on a channel.
pub fn sleeping() -> usize {
    me().map_or(0, |(m, _)| {
        m.lock()
            .tasks
            .iter()
            .filter(|t| matches!(t.state, State::Blocked(Why::Chan { .. }, _)))
            .count()
    })
}

/// Is `td` the curthread of a live kernel thread of this machine (other
/// than the running one)? A mutex such a thread holds will be released.
pub fn td_runs(td: usize) -> bool {
    me().is_some_and(|(m, me)| {
        let g = m.lock();
        (0..g.tasks.len())
            .any(|i| i != me && g.tasks[i].state != State::Exited && g.tasks[i].td == td)
    })
}

/// Blocks the running thread until mutex `m` (named `name`) is released by
/// `owner`. Reports a lock cycle (a deadlock FreeBSD would hang in).
pub fn mutex_wait(m: usize, name: &str, owner: usize) -> Wake {
    let Some((mach, me)) = me() else {
        return Wake::Deadlock;
    };
    if klocal::in_model() {
        violation(format!(
            "harness: mutex {name} contended inside a kernel-model state access (cannot block there)"
        ));
        return Wake::Deadlock;
    }
    if let Some(cycle) = mach.lock_cycle(me, name, owner) {
        violation(format!("deadlock: {cycle}"));
        return Wake::Deadlock;
    }
    let what = format!("mutex {name} (owner td {owner:#x})");
    mach.block(me, Why::Mutex { m }, what)
}

impl Machine {
    /// The cycle of mutex waits thread `me` would close by waiting for
    /// mutex `name` held by `owner`, described; None if there is none.
    fn lock_cycle(&self, me: usize, name: &str, owner: usize) -> Option<String> {
        let g = self.lock();
        // SAFETY: the pcpu blocks live as long as the machine.
        let my_td = unsafe { (*Self::pcpu_of(&g, me)).pc_curthread as usize };
        let mut text = format!("{} waits for mutex {name}", g.tasks[me].name);
        let mut owner = owner;
        for _ in 0..g.tasks.len() {
            let t = (0..g.tasks.len()).find(|&i| {
                i != me && g.tasks[i].state != State::Exited && g.tasks[i].td == owner
            })?;
            let State::Blocked(Why::Mutex { m }, _) = g.tasks[t].state else {
                return None;
            };
            // SAFETY: a mutex a blocked thread waits for (its lock word).
            let w = unsafe {
                std::ptr::addr_of!((*(m as *const fbsd_sys::mtx)).mtx_lock).read_volatile()
            };
            let next = w as usize & !(fbsd_sys::MTX_FLAGMASK as usize);
            let mname = crate::kern::lock::mutex_name(m as *mut fbsd_sys::mtx);
            let _ = write!(
                text,
                " held by {}, which waits for mutex {mname}",
                g.tasks[t].name
            );
            if next == my_td {
                let _ = write!(text, " held by {}: a lock cycle", g.tasks[me].name);
                return Some(text);
            }
            owner = next;
        }
        None
    }
}

/// Mutex `m` was released: its waiters become ready (they retry).
pub fn mutex_released(m: usize) {
    let Some((mach, _)) = me() else { return };
    let mut g = mach.lock();
    for i in 0..g.tasks.len() {
        if matches!(&g.tasks[i].state, State::Blocked(Why::Mutex { m: x }, _) if *x == m) {
            Machine::make_ready(&mut g, i, Wake::Woken);
        }
    }
}

/// Waits until no other kernel thread can run (the driver's "run the kernel
/// until idle"). True if another thread ran meanwhile; None when free.
pub fn quiesce() -> Option<bool> {
    let (m, me) = me()?;
    let before = {
        let mut g = m.lock();
        // The caller may have touched sockets outside any module call.
        g.net_clean = false;
        g.quiesce_until = Some((me, g.step + QUIESCE_BUDGET));
        g.progress
    };
    m.block(me, Why::Quiescent, "quiescence".into());
    let mut g = m.lock();
    g.quiesce_until = None;
    Some(g.progress > before)
}

/// Sets model time to `t` (waking the timer thread and timed-out sleepers);
/// false when free.
pub fn advance_clock(t: u64) -> bool {
    let Some((m, _)) = me() else { return false };
    let g = m.lock();
    drop(m.advance_locked(g, t));
    true
}

/// New deferred work (an item enqueued): an idle queue thread is woken.
pub fn kick_work() {
    let Some((m, _)) = me() else { return };
    {
        let mut g = m.lock();
        kick_kind(&mut g, Kind::Worker);
    }
    preempt(Ev::Point("enqueue"));
}

/// Socket state changed in a way the network thread must look at.
pub fn kick_net() {
    if let Some((m, _)) = me() {
        m.lock().net_clean = false;
    }
}

/// The trace of this machine's run so far (all of it with `full_trace`,
/// else the most recent events), one line per event.
pub fn trace_lines() -> Vec<String> {
    me().map_or_else(Vec::new, |(m, _)| {
        let g = m.lock();
        let names: Vec<(String, usize)> = g.tasks.iter().map(|t| (t.name.clone(), t.cpu)).collect();
        g.trace.lines(&names)
    })
}

/// Summary of the schedule: seed, strategy, preemption points, switches.
pub fn summary() -> Option<String> {
    let (m, _) = me()?;
    let g = m.lock();
    Some(format!(
        "seed {} on {} CPUs: {}; {} preemption points, {} thread switches, {} threads",
        g.cfg.seed,
        g.cfg.cpus,
        g.chooser.strategy.describe(),
        g.step,
        g.given,
        g.tasks.len()
    ))
}

/// Number of preemption points passed so far.
pub fn steps() -> u64 {
    me().map_or(0, |(m, _)| m.lock().step)
}

/// "cpuN thread-name" of the running kernel thread on a machine (for
/// messages); None when free or when the machine is busy.
pub fn whereami() -> Option<String> {
    let (m, i) = me()?;
    let g = m.st.try_lock().ok()?;
    Some(format!("cpu{} {}", g.tasks[i].cpu, g.tasks[i].name))
}

/// Records a violation in the trace (where in the schedule it happened).
pub fn note_violation(msg: &str) {
    if let Some((m, i)) = me() {
        if let Ok(mut g) = m.st.try_lock() {
            let step = g.step;
            g.trace.push(step, i, Ev::Violation(msg.to_string()));
        }
        // NGHARNESS_TRACE_TAIL=N: the last N events, at once (a run that
        // crashes later never prints its trace).
        let tail: usize = std::env::var("NGHARNESS_TRACE_TAIL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if tail > 0 {
            let lines = trace_lines();
            for l in &lines[lines.len().saturating_sub(tail)..] {
                eprintln!("trace: {l}");
            }
        }
    }
}

/// Panic hook: the schedule and its last events, so a panicking schedule
/// can be told apart and replayed (no lock is waited for).
fn panic_report() {
    let Some((m, _)) = me() else { return };
    let Ok(g) = m.st.try_lock() else { return };
    eprintln!(
        "harness: schedule: seed {} on {} CPUs: {}; {} preemption points",
        g.cfg.seed,
        g.cfg.cpus,
        g.chooser.strategy.describe(),
        g.step
    );
    let names: Vec<(String, usize)> = g.tasks.iter().map(|t| (t.name.clone(), t.cpu)).collect();
    for l in g.trace.tail_raw(30, &names) {
        eprintln!("harness: trace: {l}");
    }
}

/// The name of the running kernel thread ("main" when free).
pub fn thread_name() -> String {
    me().map_or_else(|| "main".into(), |(m, i)| m.lock().tasks[i].name.clone())
}
