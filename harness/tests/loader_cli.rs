//! The `ngharness load` command line, run as a child process (a kernel panic
//! ends the process, so these cannot run in-process).

mod loader_util;

use std::process::{Command, Output};

use ngharness::kern::PANIC_EXIT;

fn run(args: &[&std::path::Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ngharness"))
        .arg("load")
        .args(args)
        .output()
        .expect("run ngharness")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn load_good_module() {
    let ko = module_or_skip!("good");
    let o = run(&[&ko]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("loaded ") && out.contains("unloaded ") && out.contains("violations: none"),
        "{out}"
    );
    // One line per linker step on stderr, plus the module's console output.
    for step in [
        "kld: linked good.ko at 0x",
        "kld: MDT_DEPEND  kernel",
        "kld: MDT_MODULE  good handler=",
        "kld: sysinit sub=",
        "kld: module_register_init(good): MOD_LOAD -> 0",
        "good: MOD_LOAD arg=good-arg",
        "kld: MOD_QUIESCE(good) -> 45",
        "kld: MOD_UNLOAD(good) -> 0",
        "kld: sysuninit sub=",
        "kld: unloaded good.ko",
    ] {
        assert!(err.contains(step), "missing {step:?} in:\n{err}");
    }
}

#[test]
fn busy_module_fails_the_run() {
    let ko = module_or_skip!("busy");
    let o = run(&[&ko]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("kldunload: can't unload file: Device busy"),
        "{out}"
    );
}

#[test]
fn undefined_symbol_fails_the_run() {
    let ko = module_or_skip!("undef");
    let o = run(&[&ko]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("No such file or directory"), "{out}");
    assert!(
        out.contains("undefined symbols: ")
            && out.contains("no_such_kernel_function")
            && out.contains("no_such_kernel_variable"),
        "{out}"
    );
    assert!(
        err.contains("link_elf_obj: symbol no_such_kernel_function undefined"),
        "{err}"
    );
}

#[test]
fn panic_in_mod_load_ends_the_process() {
    let ko = module_or_skip!("panicky");
    let o = run(&[&ko]);
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(PANIC_EXIT),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        err.contains("panic: panicky: fixture panic 42 (on purpose)"),
        "{err}"
    );
}

#[test]
fn usage_errors() {
    let o = Command::new(env!("CARGO_BIN_EXE_ngharness"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(env!("CARGO_BIN_EXE_ngharness"))
        .arg("load")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
}
