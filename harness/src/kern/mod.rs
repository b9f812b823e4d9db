//! The strict userspace model of the FreeBSD kernel services the modules use.
//!
//! Every submodule exports its symbols through `register`. A broken contract
//! (a leak, double free, use after free, bad lock use...) is reported through
//! [`violation`]: it is printed, recorded, and fails the scenario that caused it.
//! A kernel `panic()` from a module ends the process (one process runs one
//! scenario) after printing the message; see [`kernel_panic`].

use std::sync::{Mutex, MutexGuard};

use crate::exports::Exports;

pub mod cov;
pub mod domain;
pub mod entry;
pub mod epoch;
pub mod fault;
pub mod inet;
pub mod klocal;
pub mod libkern;
pub mod loader;
pub mod lock;
pub mod malloc;
pub mod mbuf;
pub mod printf;
pub mod probe;
pub mod sched;
pub mod smp;
pub mod sockbuf;
pub mod subr;
pub mod sysctl;
pub mod thread;
pub mod trap;

/// Declares constants, one visibility and type per group, with the values of
/// the bindings' constants of the same names:
/// `fbsd_consts! { c_int: EINVAL, ENOENT; pub u16: AF_INET }`.
macro_rules! fbsd_consts {
    ($($vis:vis $t:ty: $($name:ident),+ $(,)?);+ $(;)?) => {
        $($($vis const $name: $t = fbsd_sys::$name as $t;)+)+
    };
}
pub(crate) use fbsd_consts;

static VIOLATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records a contract violation: printed at once, and counted so the scenario fails.
pub fn violation(msg: impl Into<String>) {
    let msg = msg.into();
    match smp::whereami() {
        Some(w) => eprintln!("harness: VIOLATION ({w}): {msg}"),
        None => eprintln!("harness: VIOLATION: {msg}"),
    }
    smp::note_violation(&msg);
    VIOLATIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(msg);
}

/// Violations recorded so far (and clears the list).
pub fn take_violations() -> Vec<String> {
    std::mem::take(&mut *VIOLATIONS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Number of violations recorded so far.
pub fn violation_count() -> usize {
    VIOLATIONS.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Exit status of a harness process that ended in a kernel panic.
pub const PANIC_EXIT: i32 = 86;

/// A kernel panic: print it like FreeBSD does and end this process.
pub fn kernel_panic(msg: &str) -> ! {
    eprintln!("panic: {msg}");
    panic_hooks();
    eprintln!("harness: kernel panic; the scenario fails");
    std::process::exit(PANIC_EXIT);
}

/// Functions run when the kernel panics, before the process ends (at most
/// [`PANIC_HOOKS`]; e.g. saving coverage counters). Kept as plain function
/// pointers so the trap handler can run them without taking a lock.
static PANIC_HOOK_FNS: [std::sync::atomic::AtomicUsize; PANIC_HOOKS] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; PANIC_HOOKS];
/// Room for panic hooks.
pub const PANIC_HOOKS: usize = 4;

/// Registers `f` to run when the kernel panics ([`kernel_panic`], a trap).
/// A function registered twice runs once.
pub fn add_panic_hook(f: fn()) {
    use std::sync::atomic::Ordering;
    let want = f as *const () as usize;
    for slot in &PANIC_HOOK_FNS {
        match slot.compare_exchange(0, want, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(v) if v == want => return,
            Err(_) => {}
        }
    }
    eprintln!("harness: too many panic hooks");
}

/// Runs the registered panic hooks (once per process).
pub(crate) fn panic_hooks() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static RAN: AtomicBool = AtomicBool::new(false);
    if RAN.swap(true, Ordering::AcqRel) {
        return;
    }
    for slot in &PANIC_HOOK_FNS {
        let v = slot.load(Ordering::Acquire);
        if v != 0 {
            // SAFETY: only `fn()` pointers are stored (add_panic_hook).
            let f: fn() = unsafe { std::mem::transmute::<usize, fn()>(v) };
            f();
        }
    }
}

/// Exports every kernel service of the model, then every installed
/// [`Subsystem`]'s symbols.
pub fn register_all(ex: &mut Exports) {
    with_subsystems(|subs| register_all_with(ex, subs));
}

pub(crate) fn register_all_with(ex: &mut Exports, subs: &[&'static dyn Subsystem]) {
    register_services(ex);
    for s in subs {
        s.register(ex);
    }
}

fn register_services(ex: &mut Exports) {
    thread::register(ex);
    printf::register(ex);
    libkern::register(ex);
    sysctl::register(ex);
    lock::register(ex);
    loader::register(ex);
    malloc::register(ex);
    mbuf::register(ex);
    sched::register(ex);
    epoch::register(ex);
    domain::register(ex);
    inet::register(ex);
    sockbuf::register(ex);
    subr::register(ex);
    cov::register(ex);
}

/// A part of the model above the kernel services (the netgraph model) that
/// plugs into them. The kernel calls it through this trait and never names
/// it: its symbols join the table modules link against, the modules it stands
/// for satisfy `MODULE_DEPEND`, and its deferred work runs first in every
/// step of the event loop ([`sched::run_once`]).
pub trait Subsystem: Sync {
    /// Short name (diagnostics; installing the same name twice is a no-op).
    fn name(&self) -> &'static str;
    /// Modules (name, version) it provides, as their `MODULE_VERSION` would.
    fn modules(&self) -> &'static [(&'static str, i32)] {
        &[]
    }
    /// Adds its exported symbols.
    fn register(&self, ex: &mut Exports);
    /// Runs one unit of its deferred work; true if something ran.
    fn run_once(&self) -> bool {
        false
    }
    /// Is deferred work waiting (a queue thread should run)?
    fn pending(&self) -> bool {
        false
    }
}

static SUBSYSTEMS: Mutex<Vec<&'static dyn Subsystem>> = Mutex::new(Vec::new());

fn subsystems() -> MutexGuard<'static, Vec<&'static dyn Subsystem>> {
    SUBSYSTEMS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Plugs `s` into the kernel (once per name). When the kernel is already
/// booted, its symbols and modules are added at once.
pub fn install(s: &'static dyn Subsystem) {
    let mut g = subsystems();
    if g.iter().any(|x| x.name() == s.name()) {
        return;
    }
    g.push(s);
    if loader::is_initialized() {
        loader::add_subsystem(s);
    }
}

/// Runs `f` with the installed subsystems, none being installed meanwhile.
pub(crate) fn with_subsystems<R>(f: impl FnOnce(&[&'static dyn Subsystem]) -> R) -> R {
    let g = subsystems();
    f(&g)
}

/// Is deferred work of some subsystem waiting?
pub(crate) fn subsystems_pending() -> bool {
    let subs: Vec<&'static dyn Subsystem> = subsystems().clone();
    subs.iter().any(|s| s.pending())
}

/// Runs one unit of deferred work of the first subsystem that has some.
pub(crate) fn run_subsystems_once() -> bool {
    let mut i = 0;
    loop {
        // The lock is not held while the subsystem runs (it may sleep and
        // re-enter the event loop).
        let Some(s) = subsystems().get(i).copied() else {
            return false;
        };
        if s.run_once() {
            return true;
        }
        i += 1;
    }
}
