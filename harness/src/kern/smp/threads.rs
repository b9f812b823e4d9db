//! Kernel threads of a machine: the service threads (netgraph queue
//! threads, the network thread, the timer thread), client threads started
//! with [`spawn`], how a thread starts and exits, and the shutdown when the
//! driver thread ends.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::{Ev, Kind, Machine, State, Wake, Why, ME};
use crate::kern::klocal::{self, Instance};
use crate::kern::thread as kthread;

/// Identifies a kernel thread of the running machine.
pub type TaskId = usize;

/// Stack of a kernel thread (module code, the model and host libraries).
const STACK: usize = 8 << 20;

/// A closure moved to the thread that runs it. It is only ever run while
/// its thread holds the run token, and the threads of one machine run one at
/// a time, so it may hold non-`Send` state of the kernel instance.
struct Job(Box<dyn FnOnce()>);
// SAFETY: see above; the job runs on exactly one thread, serialised with
// the thread that created it by the run token (a mutex handover).
unsafe impl Send for Job {}

fn start_thread(inst: &Arc<Instance>, m: &Arc<Machine>, i: usize, job: Job) {
    let inst = inst.clone();
    let m2 = m.clone();
    let name = m.lock().tasks[i].name.clone();
    let r = std::thread::Builder::new()
        .name(name.clone())
        .stack_size(STACK)
        .spawn(move || thread_main(inst, m2, i, job));
    if let Err(e) = r {
        crate::kern::kernel_panic(&format!("harness: cannot start kernel thread {name}: {e}"));
    }
}

fn thread_main(inst: Arc<Instance>, m: Arc<Machine>, i: usize, job: Job) {
    klocal::adopt(inst);
    let pc = {
        let g = m.lock();
        g.pcpus[g.tasks[i].cpu]
    };
    kthread::install_pcpu(pc);
    ME.with(|me| *me.borrow_mut() = Some((m.clone(), i)));
    drop(m.wait_token(m.lock(), i));
    let r = catch_unwind(AssertUnwindSafe(job.0));
    exit(&m, i, r.err());
}

/// The thread `i` ends: joiners wake, the token moves on.
fn exit(m: &Machine, i: usize, panic: Option<Box<dyn std::any::Any + Send>>) {
    let mut g = m.lock();
    let step = g.step;
    g.trace.push(step, i, Ev::Exit);
    if let Some(p) = &panic {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        eprintln!("harness: kernel thread {} panicked: {msg}", g.tasks[i].name);
    }
    g.tasks[i].state = State::Exited;
    g.tasks[i].panic = panic;
    for j in 0..g.tasks.len() {
        if matches!(g.tasks[j].state, State::Blocked(Why::Join(t), _) if t == i) {
            Machine::make_ready(&mut g, j, Wake::Woken);
        }
    }
    if g.shutting_down {
        m.hand(&mut g, 0);
        return;
    }
    loop {
        let el = Machine::eligible(&g);
        if el.is_empty() {
            g = m.idle_step(g, i);
            continue;
        }
        let next = g.chooser.choose(&el, None);
        m.hand(&mut g, next);
        return;
    }
}

/// Blocks a service thread until there is work for it; false when the
/// machine shuts down.
fn idle(m: &Machine, i: usize) -> bool {
    if m.lock().shutting_down {
        return false;
    }
    m.block(i, Why::Idle, "idle".into());
    !m.lock().shutting_down
}

fn service(inst: &Arc<Instance>, m: &Arc<Machine>, name: &str, kind: Kind, cpu: usize) {
    let td = kthread::new_thread(kthread::Cred::Kernel);
    kthread::set_thread_name(td, name);
    let i = m.add_task(name, kind, td as usize, Some(cpu));
    // Services start idle: they run when kicked.
    {
        let mut g = m.lock();
        g.tasks[i].state = State::Blocked(Why::Idle, "idle".into());
    }
    let m2 = m.clone();
    let body: Box<dyn FnOnce()> = match kind {
        Kind::Worker => Box::new(move || loop {
            if m2.lock().shutting_down {
                return;
            }
            while crate::kern::run_subsystems_once() {}
            if !idle(&m2, i) {
                return;
            }
        }),
        Kind::Net => Box::new(move || loop {
            if m2.lock().shutting_down {
                return;
            }
            while crate::kern::sched::run_sources() {
                m2.lock().progress += 1;
            }
            m2.lock().net_clean = true;
            if !idle(&m2, i) {
                return;
            }
        }),
        _ => Box::new(move || loop {
            if m2.lock().shutting_down {
                return;
            }
            while crate::kern::sched::fire_due_timer() {}
            if !idle(&m2, i) {
                return;
            }
        }),
    };
    start_thread(inst, m, i, Job(body));
}

/// Starts the service threads of a new machine.
pub(super) fn start_services(inst: &Arc<Instance>, m: &Arc<Machine>, cpus: usize) {
    for c in 0..cpus {
        service(inst, m, &format!("ng_queue{c}"), Kind::Worker, c);
    }
    service(inst, m, "swi1: netisr 0", Kind::Net, 1 % cpus);
    service(inst, m, "clock (0)", Kind::Timer, 2 % cpus);
}

/// Lets every idle service thread exit (the driver thread ends). Threads
/// blocked inside the kernel are left where they are.
pub(super) fn shutdown(m: &Machine) {
    let mut g = m.lock();
    if g.cur != 0 || g.shutting_down {
        return;
    }
    g.shutting_down = true;
    for i in 1..g.tasks.len() {
        let svc = matches!(g.tasks[i].kind, Kind::Worker | Kind::Net | Kind::Timer);
        if svc && matches!(g.tasks[i].state, State::Blocked(Why::Idle, _)) {
            g.tasks[i].state = State::Ready;
            m.hand(&mut g, i);
            g = m.wait_token(g, 0);
        }
    }
}

/// Starts a client kernel thread (a process making system calls) running
/// `f` with curthread `td`; it runs when the scheduler picks it. Panics if
/// this thread does not run on a machine.
pub fn spawn(name: &str, td: *mut fbsd_sys::thread, f: impl FnOnce() + Send + 'static) -> TaskId {
    spawn_job(name, td, Job(Box::new(f)))
}

fn spawn_job(name: &str, td: *mut fbsd_sys::thread, job: Job) -> TaskId {
    let (m, _) = super::me().expect("harness: smp::spawn outside a machine");
    let inst = klocal::current();
    let i = m.add_task(name, Kind::Client, td as usize, None);
    start_thread(&inst, &m, i, job);
    super::preempt(Ev::Point("spawn"));
    i
}

/// Waits for kernel thread `t` to exit; re-raises its panic.
pub fn join(t: TaskId) {
    let Some((m, me)) = super::me() else { return };
    loop {
        {
            let mut g = m.lock();
            if g.tasks[t].state == State::Exited {
                if let Some(p) = g.tasks[t].panic.take() {
                    drop(g);
                    resume_unwind(p);
                }
                return;
            }
        }
        let what = format!("join {}", m.lock().tasks[t].name);
        m.block(me, Why::Join(t), what);
    }
}

/// A job of [`parallel`]: thread name, curthread, closure.
pub type ParJob<'a> = (String, *mut fbsd_sys::thread, Box<dyn FnOnce() + 'a>);

/// Runs each closure on its own new kernel thread (name, curthread), all
/// concurrently, and waits for all of them. The closures may borrow from the
/// caller: it does not return before they finished.
pub fn parallel(jobs: Vec<ParJob<'_>>) {
    let mut ids = Vec::new();
    for (name, td, f) in jobs {
        // SAFETY: the closure is run and dropped before this function
        // returns (every thread is joined below, even if one panicked), so
        // extending its lifetime to 'static never lets a borrow dangle.
        let f: Box<dyn FnOnce() + 'static> = unsafe { std::mem::transmute(f) };
        ids.push(spawn_job(&name, td, Job(f)));
    }
    let mut panic = None;
    for t in ids {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| join(t))) {
            panic.get_or_insert(p);
        }
    }
    if let Some(p) = panic {
        resume_unwind(p);
    }
}

/// Runs `f` on a new kernel thread (name, curthread) and returns its result
/// (a system call "of another process", the caller waiting for it).
pub fn scoped<R>(name: &str, td: *mut fbsd_sys::thread, f: impl FnOnce() -> R) -> R {
    let mut out = None;
    parallel(vec![(
        name.to_string(),
        td,
        Box::new(|| out = Some(f())) as Box<dyn FnOnce() + '_>,
    )]);
    out.expect("harness: scoped kernel thread produced no result")
}
