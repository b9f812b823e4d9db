//! The SMP machine (`kern::smp`): kernel threads on virtual CPUs, real
//! blocking (sleep, wakeup, timeouts, contended mutexes), deadlock reports,
//! per-CPU blocks, and schedules that replay exactly from their seed.

mod ng_common;

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicU32, Ordering};

use ng_common::run;
use ngharness::exports::Exports;
use ngharness::kern::{self, sched, smp, thread};

fn machine(seed: u64) {
    smp::configure(smp::Config {
        machine: true,
        eager_net: true,
        ..smp::Config::cpus(4, seed)
    });
    ngharness::netgraph::boot();
    assert!(smp::active(), "the kernel runs on a machine");
}

fn td() -> *mut fbsd_sys::thread {
    thread::new_thread(thread::Cred::Root)
}

#[test]
fn a_sleeper_is_woken_by_another_cpu() {
    let (r, v) = run(|| {
        machine(1);
        static CHAN: u8 = 0;
        let chan = &CHAN as *const u8 as usize;
        let mut got = None;
        smp::parallel(vec![
            (
                "sleeper".into(),
                td(),
                Box::new(|| got = Some(sched::sleep_on(chan, None, "waitwake"))),
            ),
            (
                "waker".into(),
                td(),
                Box::new(|| {
                    while sched::sleeping() == 0 {
                        smp::preempt(smp::Ev::Point("test"));
                    }
                    sched::wakeup_chan(chan, false);
                }),
            ),
        ]);
        got
    });
    assert_eq!(r, Some(0));
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_timed_sleep_ends_when_model_time_reaches_it() {
    let (r, v) = run(|| {
        machine(2);
        let t0 = sched::now_ticks();
        let r = smp::scoped("sleeper", td(), || {
            sched::sleep_on(0x1234, Some(5), "timed")
        });
        (r, sched::now_ticks() - t0)
    });
    assert_eq!(r.0, fbsd_sys::EWOULDBLOCK as i32);
    assert!(r.1 >= 5, "model time moved by {}", r.1);
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_sleep_nothing_can_end_is_a_deadlock() {
    let (r, v) = run(|| {
        machine(3);
        smp::scoped("sleeper", td(), || sched::sleep_on(0x5678, None, "forever"))
    });
    assert_eq!(r, fbsd_sys::EWOULDBLOCK as i32);
    assert!(
        v.iter()
            .any(|m| m.contains("deadlock: sleeping on \"forever\"") && m.contains("sleeper")),
        "{v:#?}"
    );
}

type InitFn = unsafe extern "C" fn(*mut usize, *const c_char, *const c_char, c_int);
type LockFn = unsafe extern "C" fn(*mut usize, c_int, *const c_char, c_int);

struct Mtx {
    m: Box<fbsd_sys::mtx>,
    lock: LockFn,
    unlock: LockFn,
}

impl Mtx {
    fn new(name: &str) -> Mtx {
        let mut ex = Exports::new();
        kern::lock::register(&mut ex);
        let f = |n: &str| ex.get(n).unwrap().addr;
        // SAFETY: kern::lock exports these with FreeBSD's signatures.
        let (init, lock, unlock) = unsafe {
            (
                std::mem::transmute::<usize, InitFn>(f("_mtx_init")),
                std::mem::transmute::<usize, LockFn>(f("__mtx_lock_flags")),
                std::mem::transmute::<usize, LockFn>(f("__mtx_unlock_flags")),
            )
        };
        let mut m: Box<fbsd_sys::mtx> = Box::default();
        let name = CString::new(name).unwrap().into_raw();
        // SAFETY: a zeroed mutex; the name stays allocated (leaked).
        unsafe {
            init(
                std::ptr::addr_of_mut!(m.mtx_lock).cast(),
                name,
                std::ptr::null(),
                0,
            )
        };
        Mtx { m, lock, unlock }
    }

    fn cookie(&self) -> *mut usize {
        std::ptr::addr_of!(self.m.mtx_lock).cast_mut().cast()
    }

    fn lock(&self) {
        // SAFETY: an initialised mutex.
        unsafe { (self.lock)(self.cookie(), 0, std::ptr::null(), 0) }
    }

    fn unlock(&self) {
        // SAFETY: an initialised mutex the caller holds.
        unsafe { (self.unlock)(self.cookie(), 0, std::ptr::null(), 0) }
    }
}

#[test]
fn a_contended_mutex_blocks_until_released() {
    for seed in 1..=8 {
        let (order, v) = run(move || {
            machine(seed);
            let m = Mtx::new("test contended");
            let inside = AtomicU32::new(0);
            let most = AtomicU32::new(0);
            let body = || {
                for _ in 0..3 {
                    m.lock();
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    for _ in 0..3 {
                        smp::preempt(smp::Ev::Point("holding"));
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                    m.unlock();
                }
            };
            smp::parallel(vec![
                ("a".into(), td(), Box::new(body)),
                ("b".into(), td(), Box::new(body)),
                ("c".into(), td(), Box::new(body)),
            ]);
            most.load(Ordering::SeqCst)
        });
        assert_eq!(
            order, 1,
            "seed {seed}: two threads inside the mutex at once"
        );
        assert!(v.is_empty(), "seed {seed}: {v:#?}");
    }
}

#[test]
fn every_cpu_has_its_own_pcpu_block() {
    let (cpus, v) = run(|| {
        machine(5);
        let out = std::sync::Mutex::new(Vec::new());
        let jobs = (0..4)
            .map(|i| {
                let out = &out;
                let t = td();
                let f: Box<dyn FnOnce() + '_> = Box::new(move || {
                    let pc = thread::pcpu_base();
                    // SAFETY: the running thread's pcpu block.
                    let (id, cur) = unsafe { ((*pc).pc_cpuid, (*pc).pc_curthread) };
                    assert_eq!(cur, thread::curthread());
                    assert_eq!(cur, t);
                    out.lock().unwrap().push((id, smp::curcpu()));
                });
                (format!("t{i}"), t, f)
            })
            .collect();
        smp::parallel(jobs);
        out.into_inner().unwrap()
    });
    assert_eq!(cpus.len(), 4);
    for (id, cpu) in &cpus {
        assert_eq!(id, cpu);
    }
    let mut ids: Vec<u32> = cpus.iter().map(|c| c.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert!(ids.len() > 1, "threads on several CPUs: {cpus:?}");
    assert!(v.is_empty(), "{v:#?}");
}

/// A small workload: three threads taking a mutex and waking each other.
fn workload(seed: u64) -> Vec<String> {
    let (t, v) = run(move || {
        machine(seed);
        let m = Mtx::new("test replay");
        let body = |k: usize| {
            for i in 0..4 {
                m.lock();
                sched::wakeup_chan(0x9000 + k, false);
                m.unlock();
                if i % 2 == k % 2 {
                    smp::preempt(smp::Ev::Point("work"));
                }
            }
        };
        smp::parallel(vec![
            ("a".into(), td(), Box::new(|| body(0))),
            ("b".into(), td(), Box::new(|| body(1))),
            ("c".into(), td(), Box::new(|| body(2))),
        ]);
        smp::trace_lines()
    });
    assert!(v.is_empty(), "{v:#?}");
    t
}

#[test]
fn a_seed_replays_its_schedule_exactly() {
    for seed in [1, 2, 7] {
        assert_eq!(workload(seed), workload(seed), "seed {seed}");
    }
    let distinct: std::collections::HashSet<Vec<String>> = (1..=6).map(workload).collect();
    assert!(distinct.len() > 1, "every seed gave the same schedule");
}

const PANIC_CHILD: &str = "NGHARNESS_SMP_PANIC_CHILD";

#[test]
fn a_kernel_panic_on_a_machine_prints_its_schedule_and_last_events() {
    if std::env::var_os(PANIC_CHILD).is_some() {
        // The child: a kernel thread panics while others run.
        machine(9);
        let m = Mtx::new("test panic");
        smp::parallel(vec![
            (
                "worker".into(),
                td(),
                Box::new(|| {
                    for _ in 0..3 {
                        m.lock();
                        m.unlock();
                    }
                }),
            ),
            (
                "panicker".into(),
                td(),
                Box::new(|| {
                    m.lock();
                    m.unlock();
                    kern::kernel_panic("test panic on a machine");
                }),
            ),
        ]);
        return;
    }
    let exe = std::env::current_exe().expect("test executable");
    let o = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_kernel_panic_on_a_machine_prints_its_schedule_and_last_events",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PANIC_CHILD, "1")
        .output()
        .expect("run child");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(kern::PANIC_EXIT), "{err}");
    assert!(err.contains("panic: test panic on a machine"), "{err}");
    assert!(
        err.contains("harness: schedule: seed 9 on 4 CPUs"),
        "no schedule in:\n{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("harness: trace:") && l.contains("panicker")),
        "no trace of the panicking thread in:\n{err}"
    );
}
