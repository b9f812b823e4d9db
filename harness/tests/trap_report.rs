//! A fault inside a module is a kernel panic report naming the module
//! function, not a bare SIGSEGV (`kern::trap`): NULL and wild pointers, a
//! NULL function pointer, a wild pointer handed to a kernel function, a
//! call into unloaded code, faults on other OS threads and on two threads
//! at once. A fault in the harness's own code is left to the default
//! action. Each case runs in a child process (the report ends it).

mod loader_util;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use ngharness::kern::{loader, thread as kthread, PANIC_EXIT};

const CHILD_ENV: &str = "NGSOCK_TRAP_TEST_CHILD";

/// Runs test `name` again in a child process with `CHILD_ENV` set; returns
/// its output (the child runs `body`).
fn in_child(name: &str, body: fn()) -> Option<Output> {
    if std::env::var(CHILD_ENV).is_ok_and(|v| v == name) {
        body();
        return None;
    }
    let exe = std::env::current_exe().expect("test executable");
    Some(
        Command::new(exe)
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, name)
            .output()
            .expect("run child"),
    )
}

/// Loads the wildptr fixture in this (child) process; the address of `sym`.
fn wild(sym: &str) -> usize {
    let ko = loader_util::fixture("wildptr", loader_util::Kind::Module).expect("fixture");
    let _g = loader_util::kernel();
    let id = loader::load(&ko).expect("load wildptr.ko");
    loader::symbol(id, sym).expect("symbol")
}

/// The child's stderr, after checking it ended in a kernel panic report.
#[track_caller]
fn panicked(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(PANIC_EXIT), "{}\n{err}", o.status);
    assert!(err.contains("KDB: stack backtrace:"), "{err}");
    assert!(
        err.contains("harness: kernel panic; the scenario fails"),
        "{err}"
    );
    assert_eq!(err.matches("Fatal trap").count(), 1, "{err}");
    err
}

fn skip_without_fixture() -> bool {
    loader_util::fixture("wildptr", loader_util::Kind::Module).is_none()
}

#[test]
fn null_dereference_names_the_function_and_its_caller() {
    if skip_without_fixture() {
        return;
    }
    let Some(o) = in_child("null_dereference_names_the_function_and_its_caller", || {
        let f = wild("wild_null_caller");
        loader_util::call0::<i32>(f);
    }) else {
        return;
    };
    let err = panicked(&o);
    for want in [
        "Fatal trap 12: page fault while in kernel mode",
        "fault virtual address\t= 0x8",
        "fault code\t\t= supervisor read data, page not present",
        "trap number\t\t= 12",
        "panic: page fault",
        "#0 0x",
        "<wildptr.ko:wild_null_read+0x",
        "<wildptr.ko:wild_null_caller+0x",
        "harness: VIOLATION: fatal trap 12 (page fault) at wildptr.ko:wild_null_read+0x",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let ip = err
        .lines()
        .find(|l| l.starts_with("instruction pointer"))
        .expect("instruction pointer line");
    assert!(ip.contains("<wildptr.ko:wild_null_read+0x"), "{ip}");
}

#[test]
fn wild_write_is_a_general_protection_fault() {
    if skip_without_fixture() {
        return;
    }
    let Some(o) = in_child("wild_write_is_a_general_protection_fault", || {
        let f = wild("wild_write");
        loader_util::call0::<()>(f);
    }) else {
        return;
    };
    let err = panicked(&o);
    assert!(
        err.contains("Fatal trap 9: general protection fault while in kernel mode"),
        "{err}"
    );
    assert!(err.contains("at wildptr.ko:wild_write+0x"), "{err}");
}

#[test]
fn wild_pointer_passed_to_a_kernel_function_names_the_module_caller() {
    if skip_without_fixture() {
        return;
    }
    let Some(o) = in_child(
        "wild_pointer_passed_to_a_kernel_function_names_the_module_caller",
        || {
            let f = wild("wild_memcpy");
            loader_util::call0::<()>(f);
        },
    ) else {
        return;
    };
    let err = panicked(&o);
    assert!(err.contains("fault virtual address\t= 0x10"), "{err}");
    assert!(err.contains(", in wildptr.ko:wild_memcpy+0x"), "{err}");
}

#[test]
fn null_function_pointer_names_the_caller() {
    if skip_without_fixture() {
        return;
    }
    let Some(o) = in_child("null_function_pointer_names_the_caller", || {
        let f = wild("wild_call_null");
        loader_util::call0::<i32>(f);
    }) else {
        return;
    };
    let err = panicked(&o);
    assert!(
        err.contains("fault code\t\t= supervisor instruction fetch, page not present"),
        "{err}"
    );
    assert!(err.contains("instruction pointer\t= 0x20:0x0"), "{err}");
    assert!(err.contains("<wildptr.ko:wild_call+0x"), "{err}");
    assert!(err.contains(", in wildptr.ko:wild_call+0x"), "{err}");
}

#[test]
fn call_into_unloaded_code_is_reported() {
    if skip_without_fixture() {
        return;
    }
    let Some(o) = in_child("call_into_unloaded_code_is_reported", || {
        let ko = loader_util::fixture("wildptr", loader_util::Kind::Module).expect("fixture");
        let _g = loader_util::kernel();
        let id = loader::load(&ko).expect("load");
        let f = loader::symbol(id, "wild_null_caller").expect("symbol");
        loader::unload(id).expect("unload");
        loader_util::call0::<i32>(f);
    }) else {
        return;
    };
    let err = panicked(&o);
    assert!(
        err.contains("<unloaded wildptr.ko:wild_null_caller+0x0>"),
        "{err}"
    );
}

#[test]
fn fault_on_another_thread_is_reported() {
    if skip_without_fixture() {
        return;
    }
    let Some(o) = in_child("fault_on_another_thread_is_reported", || {
        let f = wild("wild_null_caller");
        let t = std::thread::Builder::new()
            .name("cpu1".into())
            .spawn(move || {
                kthread::init();
                loader_util::call0::<i32>(f)
            })
            .expect("spawn");
        let _ = t.join();
        unreachable!("the fault ends the process");
    }) else {
        return;
    };
    let err = panicked(&o);
    assert!(err.contains("at wildptr.ko:wild_null_read+0x"), "{err}");
}

#[test]
fn faults_on_two_threads_give_one_report() {
    if skip_without_fixture() {
        return;
    }
    let Some(o) = in_child("faults_on_two_threads_give_one_report", || {
        let f = wild("wild_null_caller");
        let go = std::sync::Arc::new(std::sync::Barrier::new(2));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let go = go.clone();
                std::thread::spawn(move || {
                    kthread::init();
                    go.wait();
                    loader_util::call0::<i32>(f)
                })
            })
            .collect();
        for t in ts {
            let _ = t.join();
        }
        unreachable!("the fault ends the process");
    }) else {
        return;
    };
    // `panicked` checks there is exactly one report.
    let err = panicked(&o);
    assert_eq!(err.matches("harness: VIOLATION").count(), 1, "{err}");
}

#[test]
fn fault_in_harness_code_keeps_the_default_action() {
    if skip_without_fixture() {
        return;
    }
    let Some(o) = in_child("fault_in_harness_code_keeps_the_default_action", || {
        let _f = wild("wild_null_caller");
        let p = std::hint::black_box(std::ptr::null::<u64>());
        // SAFETY: deliberately not safe: a NULL read in harness code.
        let v = unsafe { std::ptr::read_volatile(p) };
        println!("{v}");
    }) else {
        return;
    };
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.signal(), Some(libc::SIGSEGV), "{err}");
    assert!(!err.contains("Fatal trap"), "{err}");
}

#[test]
fn fault_in_mod_load_through_the_command_line() {
    let Some(ko) = loader_util::fixture("wildload", loader_util::Kind::Module) else {
        return;
    };
    let o = Command::new(env!("CARGO_BIN_EXE_ngharness"))
        .args(["load", "-q"])
        .arg(&ko)
        .output()
        .expect("run ngharness");
    let err = panicked(&o);
    assert!(
        err.contains("instruction pointer\t= 0x20:0x")
            && err.contains("<wildload.ko:wildload_handler+0x"),
        "{err}"
    );
    assert!(
        err.contains("fatal trap 12 (page fault) at wildload.ko:wildload_handler+0x"),
        "{err}"
    );
}
