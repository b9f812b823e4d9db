//! The harness event loop, sleep/wakeup and the virtual clock.
//!
//! A free-running kernel (one CPU, see `kern::smp`) runs everything on one
//! OS thread. "Blocking" is `_sleep()`: it runs the event loop
//! ([`run_once`]) until the channel is woken, the timeout passes in model
//! time, or nothing can make progress. Model time only moves when the loop
//! is idle: it then jumps to the next timer (or the sleep's deadline).
//!
//! One unit of work, in this order: the installed subsystems' deferred work
//! (the netgraph queue "thread": one node's runnable items), then the
//! registered event sources (the socket layer's Linux poll loop plugs in
//! here), then due timers. When nothing is runnable, an optional idle hook
//! may block for real (e.g. `poll(2)`) before the clock is advanced.
//!
//! On an SMP machine the same work is done by kernel threads of their own
//! (netgraph queue threads, the network thread, the timer thread), sleeping
//! blocks the calling thread for real, and "run until idle" means waiting
//! until no other thread can run ([`crate::kern::smp::quiesce`]); the clock,
//! timers, sources and idle hook stay here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use fbsd_sys::{lock_object, sbintime_t};

use crate::exports::Exports;
use crate::kern::klocal::kernel_local;
use crate::kern::lock as lock_api;
use crate::kern::smp;
use crate::kern::thread as thread_api;

/// Clock frequency of the model (`hz`).
pub const HZ: i32 = 1000;
/// One second in `sbintime_t` units (32.32 fixed point).
pub const SBT_1S: i64 = 1 << 32;
/// `tick_sbt`: one tick in sbintime units.
pub const TICK_SBT: i64 = SBT_1S / HZ as i64;

/// callout(9) flag: `sbt` is an absolute uptime.
const C_ABSOLUTE: c_int = 0x0200;
/// Consecutive deadlocks after which the scenario is ended with a panic.
const MAX_DEADLOCKS: u32 = 100;
/// Work units `run_until_idle` runs before reporting a livelock.
const LIVELOCK_LIMIT: usize = 10_000_000;

/// Identifier of a timer registered with [`add_timer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(u64);

/// Identifier of an event source registered with [`add_source`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceId(usize);

type Source = Box<dyn FnMut() -> bool>;
type IdleCheck = Box<dyn FnMut()>;
type IdleHook = Box<dyn FnMut(Option<u64>) -> bool>;

struct Sleeper {
    id: u64,
    chan: usize,
    woken: bool,
}

#[derive(Default)]
struct Sched {
    now: u64,
    seq: u64,
    timers: BTreeMap<(u64, u64), Box<dyn FnOnce()>>,
    timer_keys: std::collections::HashMap<u64, (u64, u64)>,
    sources: Vec<Option<Source>>,
    removed: Vec<bool>,
    idle: Option<IdleHook>,
    idle_busy: bool,
    sleepers: Vec<Sleeper>,
    deadlocks: u32,
    idle_checks: Vec<Option<IdleCheck>>,
}

kernel_local! {
    static SCHED: RefCell<Sched> = RefCell::new(Sched::default());
}

fn with<R>(f: impl FnOnce(&mut Sched) -> R) -> R {
    SCHED.with(|s| f(&mut s.borrow_mut()))
}

struct ClockData {
    ticks: usize,
    hz: usize,
    tick_sbt: usize,
}

fn clock_data() -> &'static ClockData {
    static D: OnceLock<ClockData> = OnceLock::new();
    D.get_or_init(|| {
        let ticks = crate::arena::alloc_obj::<c_int>();
        let hz = crate::arena::alloc_obj::<c_int>();
        let tsbt = crate::arena::alloc_obj::<sbintime_t>();
        // SAFETY: fresh, exclusively owned arena objects of the right types.
        unsafe {
            *hz = HZ;
            *tsbt = TICK_SBT;
            *ticks = 0;
        }
        ClockData {
            ticks: ticks as usize,
            hz: hz as usize,
            tick_sbt: tsbt as usize,
        }
    })
}

fn publish_ticks(now: u64) {
    let p = clock_data().ticks as *mut c_int;
    // SAFETY: `ticks` is an arena int owned by this module; FreeBSD's `ticks` wraps.
    unsafe { p.write_volatile(now as u32 as c_int) };
}

// ---------------------------------------------------------------------------
// Clock and timers

/// Current model time in ticks.
pub fn now_ticks() -> u64 {
    with(|s| s.now)
}

/// Current model time as `sbintime_t` (uptime).
pub fn now_sbt() -> i64 {
    now_ticks() as i64 * TICK_SBT
}

/// Converts a relative `sbintime_t` to ticks, rounding up (0 stays 0).
pub fn sbt_to_ticks(sbt: i64) -> u64 {
    if sbt <= 0 {
        0
    } else {
        ((sbt + TICK_SBT - 1) / TICK_SBT) as u64
    }
}

/// Registers `f` to run when model time reaches `now + ticks` (at least one tick ahead).
pub fn add_timer(ticks: u64, f: Box<dyn FnOnce()>) -> TimerId {
    with(|s| {
        s.seq += 1;
        let key = (s.now + ticks.max(1), s.seq);
        s.timers.insert(key, f);
        s.timer_keys.insert(s.seq, key);
        TimerId(s.seq)
    })
}

/// Cancels a timer; true if it was still pending.
pub fn cancel_timer(id: TimerId) -> bool {
    // The closure is dropped outside the borrow (it may own values with Drop impls).
    let f = with(|s| s.timer_keys.remove(&id.0).and_then(|k| s.timers.remove(&k)));
    f.is_some()
}

/// True if the timer has not fired or been cancelled.
pub fn timer_pending(id: TimerId) -> bool {
    with(|s| s.timer_keys.contains_key(&id.0))
}

/// Number of pending timers.
pub fn pending_timers() -> usize {
    with(|s| s.timers.len())
}

/// Model time (ticks) of the next pending timer, if any.
pub fn next_timer() -> Option<u64> {
    next_deadline()
}

/// The deadline (absolute ticks) of the next timer.
pub(crate) fn next_deadline() -> Option<u64> {
    with(|s| s.timers.keys().next().map(|k| k.0))
}

/// Moves model time forward to `t` (never back).
pub(crate) fn set_now(t: u64) {
    with(|s| {
        if t > s.now {
            s.now = t;
        }
    });
    publish_ticks(now_ticks());
}

/// Is a timer due now?
pub(crate) fn timer_due() -> bool {
    with(|s| s.timers.keys().next().is_some_and(|k| k.0 <= s.now))
}

/// Fires the first due timer; false if none is due.
pub(crate) fn fire_due_timer() -> bool {
    let f = with(|s| {
        let key = *s.timers.keys().next()?;
        if key.0 > s.now {
            return None;
        }
        s.timer_keys.remove(&key.1);
        s.timers.remove(&key)
    });
    match f {
        Some(f) => {
            f();
            true
        }
        None => false,
    }
}

/// The earliest of the next timer and the sleep deadlines of a machine.
fn next_event(target: Option<u64>) -> Option<u64> {
    let d = match (next_deadline(), smp::next_sleep_deadline()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match target {
        Some(t) => d.filter(|&d| d <= t),
        None => d,
    }
}

/// Advances model time by `ticks`, running everything that becomes runnable
/// (work, then each timer at its own deadline) on the way.
pub fn advance(ticks: u64) {
    let target = now_ticks() + ticks;
    if smp::active() {
        loop {
            smp::quiesce();
            match next_event(Some(target)) {
                Some(d) => {
                    smp::advance_clock(d.max(now_ticks()));
                }
                None => break,
            }
        }
        smp::advance_clock(target);
        smp::quiesce();
        return;
    }
    loop {
        run_until_idle();
        match next_deadline() {
            Some(d) if d <= target => set_now(d),
            _ => break,
        }
    }
    set_now(target);
    run_until_idle();
}

// ---------------------------------------------------------------------------
// Event sources

/// Registers an event source: called from the event loop; returns true if it
/// made progress. Sources run after the subsystems' work, in registration order.
pub fn add_source(f: Box<dyn FnMut() -> bool>) -> SourceId {
    with(|s| {
        s.sources.push(Some(f));
        s.removed.push(false);
        SourceId(s.sources.len() - 1)
    })
}

/// Removes an event source.
pub fn remove_source(id: SourceId) {
    let f = with(|s| {
        if id.0 < s.removed.len() {
            s.removed[id.0] = true;
            s.sources[id.0].take()
        } else {
            None
        }
    });
    drop(f);
}

/// Installs the idle hook: called when nothing is runnable, with the number of
/// model ticks until the next timer or sleep deadline (`None` = unbounded).
/// It may block for real (e.g. in `poll(2)`) and returns true if it made
/// progress. Re-entrant idle calls are skipped.
pub fn set_idle_hook(f: Option<Box<dyn FnMut(Option<u64>) -> bool>>) {
    let old = with(|s| std::mem::replace(&mut s.idle, f));
    drop(old);
}

/// Registers a check that needs a quiet system (nothing else running): run
/// after the event sources when none made progress on a free kernel, and
/// whenever an SMP machine becomes quiescent.
pub fn add_idle_check(f: Box<dyn FnMut()>) {
    with(|s| s.idle_checks.push(Some(f)));
}

/// Runs the idle checks.
pub(crate) fn run_idle_checks() {
    let n = with(|s| s.idle_checks.len());
    for i in 0..n {
        let taken = with(|s| s.idle_checks.get_mut(i).and_then(Option::take));
        if let Some(mut f) = taken {
            f();
            with(|s| s.idle_checks[i] = Some(f));
        }
    }
}

/// Runs the event sources until one makes progress; false if none did.
pub(crate) fn run_sources() -> bool {
    let n = with(|s| s.sources.len());
    for i in 0..n {
        let taken = with(|s| s.sources.get_mut(i).and_then(Option::take));
        if let Some(mut f) = taken {
            let progressed = f();
            with(|s| {
                if !s.removed[i] {
                    s.sources[i] = Some(f);
                }
            });
            if progressed {
                return true;
            }
        }
    }
    // Nothing made progress: a quiet system for the idle checks (on a
    // machine they run when it is quiescent instead).
    if !smp::active() {
        run_idle_checks();
    }
    false
}

/// Calls the idle hook (a bounded real wait for events); false if there is
/// none or it found nothing.
pub(crate) fn call_idle_hook(wait: Option<u64>) -> bool {
    run_idle(wait)
}

fn run_idle(wait: Option<u64>) -> bool {
    let hook = with(|s| {
        if s.idle_busy {
            None
        } else {
            s.idle.take().inspect(|_| s.idle_busy = true)
        }
    });
    let Some(mut h) = hook else { return false };
    let r = h(wait);
    with(|s| {
        s.idle_busy = false;
        if s.idle.is_none() {
            s.idle = Some(h);
        }
    });
    r
}

/// Runs one unit of ready work: the deferred work of an installed
/// [`Subsystem`](crate::kern::Subsystem) (one node's runnable netgraph
/// items), else one event source that makes progress, else one due timer. Never advances the
/// clock. Returns true if something ran.
pub fn run_once() -> bool {
    if let Some(r) = smp::quiesce() {
        return r;
    }
    if crate::kern::run_subsystems_once() {
        return true;
    }
    if run_sources() {
        return true;
    }
    fire_due_timer()
}

/// Runs ready work until nothing is runnable (the clock does not move).
/// Returns the number of work units run.
pub fn run_until_idle() -> usize {
    if let Some(r) = smp::quiesce() {
        return usize::from(r);
    }
    let mut n = 0;
    while run_once() {
        n += 1;
        if n == LIVELOCK_LIMIT {
            crate::kern::violation("livelock: the event loop never became idle");
            break;
        }
    }
    n
}

/// Runs until idle, advancing model time through every pending timer.
/// Returns when there is no work and no timer left.
pub fn run_all() {
    if smp::active() {
        loop {
            smp::quiesce();
            if let Some(d) = next_event(None) {
                smp::advance_clock(d.max(now_ticks()));
            } else if run_idle(None) {
                smp::kick_net();
            } else {
                break;
            }
        }
        return;
    }
    loop {
        run_until_idle();
        match next_deadline() {
            Some(d) => set_now(d),
            None => {
                if !run_idle(None) {
                    break;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Sleep and wakeup

/// Marks sleepers on `chan` as woken (all, or the longest-sleeping one).
pub fn wakeup_chan(chan: usize, one: bool) {
    if smp::wakeup(chan, one) {
        return;
    }
    with(|s| {
        for sl in s
            .sleepers
            .iter_mut()
            .filter(|sl| sl.chan == chan && !sl.woken)
        {
            sl.woken = true;
            if one {
                break;
            }
        }
    });
}

/// Number of threads currently sleeping (nested sleeps of the one OS thread).
pub fn sleeping() -> usize {
    if smp::active() {
        return smp::sleeping();
    }
    with(|s| s.sleepers.len())
}

/// The model of sleeping: runs the event loop until `chan` is woken (0), the
/// timeout (in ticks; `None` = forever) elapses in model time (EWOULDBLOCK),
/// or nothing can make progress (a deadlock violation; EWOULDBLOCK).
pub fn sleep_on(chan: usize, timeout: Option<u64>, wmesg: &str) -> c_int {
    if smp::active() {
        let deadline = timeout.map(|t| now_ticks() + t);
        return match smp::sleep(chan, deadline, wmesg) {
            Some(smp::Wake::Woken) => 0,
            _ => fbsd_sys::EWOULDBLOCK as c_int,
        };
    }
    let (id, deadline) = with(|s| {
        s.seq += 1;
        let id = s.seq;
        s.sleepers.push(Sleeper {
            id,
            chan,
            woken: false,
        });
        (id, timeout.map(|t| s.now + t))
    });
    let finish = |r: c_int| {
        with(|s| s.sleepers.retain(|sl| sl.id != id));
        r
    };
    loop {
        if with(|s| s.sleepers.iter().any(|sl| sl.id == id && sl.woken)) {
            with(|s| s.deadlocks = 0);
            return finish(0);
        }
        if run_once() {
            continue;
        }
        let next = next_deadline();
        let now = now_ticks();
        let bound = match (next, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if run_idle(bound.map(|b| b.saturating_sub(now))) {
            continue;
        }
        match (deadline, next) {
            (Some(d), Some(t)) if t <= d => set_now(t),
            (Some(d), _) => {
                set_now(d);
                return finish(fbsd_sys::EWOULDBLOCK as c_int);
            }
            (None, Some(t)) => set_now(t),
            (None, None) => {
                let n = with(|s| {
                    s.deadlocks += 1;
                    s.deadlocks
                });
                crate::kern::violation(format!(
                    "deadlock: sleeping on \"{wmesg}\" (chan {chan:#x}) with nothing runnable"
                ));
                if n >= MAX_DEADLOCKS {
                    crate::kern::kernel_panic("harness: repeated deadlock, giving up");
                }
                return finish(fbsd_sys::EWOULDBLOCK as c_int);
            }
        }
    }
}

const LO_CLASSSHIFT: u32 = 24;

/// `_sleep(chan, lock, priority, wmesg, sbt, pr, flags)` (msleep, tsleep, pause).
unsafe extern "C" fn sched_sleep(
    chan: *const c_void,
    lock: *mut lock_object,
    priority: c_int,
    wmesg: *const c_char,
    sbt: sbintime_t,
    _pr: sbintime_t,
    flags: c_int,
) -> c_int {
    thread_api::init();
    let what = if wmesg.is_null() {
        "?".to_string()
    } else {
        // SAFETY: wmesg is a C string supplied by the caller.
        unsafe { CStr::from_ptr(wmesg) }
            .to_string_lossy()
            .into_owned()
    };
    let mut holds = false;
    let mut lock_name = String::new();
    if !lock.is_null() {
        // SAFETY: `lock` is the interlock's lock object, as the contract requires.
        let (class, name) = unsafe { ((*lock).lo_flags >> LO_CLASSSHIFT & 0xf, (*lock).lo_name) };
        if !name.is_null() {
            // SAFETY: lock names are C strings.
            lock_name = unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned();
        }
        if class > 1 {
            crate::kern::violation(format!(
                "_sleep(\"{what}\"): interlock {lock:p} is not a mutex (class {class})"
            ));
        } else if lock_api::owned(lock.cast()) {
            holds = true;
        } else {
            crate::kern::violation(format!(
                "_sleep(\"{what}\"): interlock {lock_name} ({lock:p}) not held by the sleeping thread"
            ));
        }
    }
    let mut others = lock_api::held_names();
    if holds {
        if let Some(i) = others.iter().position(|n| *n == lock_name) {
            others.remove(i);
        }
    }
    for n in others {
        crate::kern::violation(format!("_sleep(\"{what}\"): sleeping with mutex {n} held"));
    }
    let cn = thread_api::critnest(thread_api::curthread());
    if cn != 0 {
        crate::kern::violation(format!(
            "_sleep(\"{what}\"): sleeping inside a critical section (td_critnest = {cn})"
        ));
    }
    crate::kern::epoch::assert_not_in_epoch(&format!("_sleep(\"{what}\")"));
    let timeout = if sbt == 0 {
        None
    } else if flags & C_ABSOLUTE != 0 {
        Some(sbt_to_ticks(sbt - now_sbt()))
    } else {
        Some(sbt_to_ticks(sbt).max(1))
    };
    if chan.is_null() && timeout.is_none() {
        crate::kern::violation(format!("_sleep(\"{what}\"): no channel and no timeout"));
    }
    let td = thread_api::curthread();
    // Releasing the interlock and going to sleep are one step: no other
    // thread runs in between (a wakeup cannot be lost).
    if holds {
        lock_api::release_for_sleep(lock.cast());
    }
    let r = sleep_on(chan as usize, timeout, &what);
    thread_api::set_curthread(td);
    if holds && priority & fbsd_sys::PDROP as c_int == 0 {
        lock_api::reacquire_after_sleep(lock.cast());
    }
    r
}

/// `wakeup(chan)`.
unsafe extern "C" fn sched_wakeup(chan: *const c_void) {
    wakeup_chan(chan as usize, false);
}

/// `wakeup_one(chan)`.
unsafe extern "C" fn sched_wakeup_one(chan: *const c_void) {
    wakeup_chan(chan as usize, true);
}

/// Exports `_sleep`, `wakeup`, `wakeup_one`, `ticks`, `hz`, `tick_sbt`.
pub fn register(ex: &mut Exports) {
    ex.func("_sleep", sched_sleep as *const () as usize);
    ex.func("wakeup", sched_wakeup as *const () as usize);
    ex.func("wakeup_one", sched_wakeup_one as *const () as usize);
    let d = clock_data();
    ex.data("ticks", d.ticks);
    ex.data("hz", d.hz);
    ex.data("tick_sbt", d.tick_sbt);
}
