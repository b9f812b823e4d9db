//! Command-line behaviour: exit codes, several files, output format.

mod common;
use common::*;

#[test]
fn cli_usage_errors_exit_2() {
    let r = kogate(Vec::<String>::new());
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no input files") && r.stderr.contains("usage: kogate"),
        "{}",
        r.stderr
    );
    let r = kogate(["--bogus", "x.ko"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown option --bogus"), "{}", r.stderr);
    let r = kogate(["--expect-version", "one", "x.ko"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not an integer"), "{}", r.stderr);
    let r = kogate(["--expect-module"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--expect-module needs a value"),
        "{}",
        r.stderr
    );
    let r = kogate(["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--expect-version N"));
}

#[test]
fn cli_missing_file_exit_2() {
    let r = kogate(["/nonexistent/ng_ksocket.ko"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with("kogate: /nonexistent/ng_ksocket.ko: "),
        "{}",
        r.stderr
    );
}

#[test]
fn cli_several_files_one_bad() {
    let good = Obj::new("cli_multi").build();
    let bad = Obj::new("cli_multi")
        .name("ng_bad")
        .define("MODNAME=\"ng_bad\"")
        .code("extern void nope(void);\nvoid f(void) { nope(); }")
        .build();
    let r = kogate([&good, &bad]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("kogate: {}: OK", good.display())),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("ng_bad.ko"), "{}", r.stdout);
    // Every stderr line has the `kogate: FILE: RULE: detail` shape.
    for l in r.stderr.lines() {
        let rest = l
            .strip_prefix(&format!("kogate: {}: ", bad.display()))
            .unwrap_or_else(|| panic!("unexpected stderr line {l:?}"));
        assert!(rest.split_once(": ").is_some(), "{l:?}");
    }
    assert_eq!(
        rules_for(&r.stderr, &bad).into_iter().collect::<Vec<_>>(),
        vec!["undefined-symbol".to_string()]
    );
}

#[test]
fn cli_caps_lines_per_rule() {
    // 40 x87 instructions: 25 shown, the rest counted.
    let body = "  fld1\\n  fstp %st(0)\\n".repeat(20);
    let ko = Obj::new("cli_cap")
        .code(&format!(
            "__asm__(\".text\\n.globl many\\n.type many,@function\\nmany:\\n{body}  ret\\n.size many, .-many\\n\");"
        ))
        .build();
    let err = assert_rules(&ko, &[], &["fpu"]);
    assert_eq!(lines_of(&err, "fpu").len(), 26, "{err}");
    assert!(
        err.contains("fpu: ... and 15 more violations of this rule"),
        "{err}"
    );
    assert!(
        err.contains("FAILED: 40 violation(s) of 1 rule(s)"),
        "{err}"
    );
}

#[test]
fn module_name_from_path() {
    use kogate::module_name_from_path as m;
    assert_eq!(m("ng_ksocket.ko"), "ng_ksocket");
    assert_eq!(m("/a/b.c/ng_socket.ko"), "ng_socket");
    assert_eq!(m("build/ng_ksocket.ko.full"), "ng_ksocket");
    assert_eq!(m("ng_hole"), "ng_hole");
}
