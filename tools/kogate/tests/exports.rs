//! The maintained export list: well-formed, and (when the FreeBSD header
//! sysroot is present) every name really declared by the header it names.

mod common;
use common::*;

use kogate::exports::{Exports, BUILTIN, MODULES};
use std::collections::HashMap;
use std::path::PathBuf;

#[test]
fn exports_list_well_formed() {
    let ex = Exports::builtin();
    assert!(ex.exports.len() > 150, "only {} exports", ex.exports.len());
    for e in ex.exports.values() {
        assert!(MODULES.contains(&e.module.as_str()), "{e:?}");
        assert!(
            e.header == "(compiler)" || e.header.ends_with(".h"),
            "line {}: header of {} is {:?}",
            e.line,
            e.name,
            e.header
        );
    }
    for f in &ex.forbidden {
        assert!(!f.reason.is_empty(), "line {}: no reason", f.line);
    }
    // Names the modules call (docs/kernel-contracts.md §1.2, docs/netgraph-model.md §1.9).
    for name in [
        "malloc",
        "free",
        "malloc_init",
        "malloc_uninit",
        "printf",
        "panic",
        "memcpy",
        "bcmp",
        "__mtx_lock_flags",
        "_mtx_init",
        "mtx_sysinit",
        "critical_enter_KBI",
        "_sleep",
        "tick_sbt",
        "m_freem",
        "m_get2",
        "m_tag_locate",
        "socreate",
        "soreceive",
        "sosetopt",
        "soupcall_set",
        "sbappendaddr_locked",
        "priv_check",
        "kern_kldload",
        "module_register_init",
        "domain_add",
        "sysctl_handle_long",
        "hashinit",
        "prison0",
        "vnet0",
        "__start_set_pcpu",
        "__stop_set_pcpu",
        "M_SONAME",
        "M_TEMP",
        "M_NETGRAPH",
        "M_NETGRAPH_MSG",
        "__stack_chk_fail",
        "__stack_chk_guard",
        "uma_zalloc_arg",
        "zone_mbuf",
        "_epoch_enter_preempt",
        "net_epoch_preempt",
        "ng_mod_event",
        "ng_send_fn",
        "ng_make_node_common",
        "ng_parse_struct_type",
        "ng_parse_hookbuf_type",
        "sysctl___net_graph",
    ] {
        assert!(
            ex.get(name).is_some(),
            "{name} missing from kernel-exports.txt"
        );
    }
    assert_eq!(ex.get("ng_send_fn").unwrap().module, "netgraph.ko");
    assert_eq!(ex.get("socreate").unwrap().module, "kernel");
    for name in [
        "__mtx_assert",
        "_mtx_assert",
        "__sx_assert",
        "_rw_assert",
        "witness_warn",
        "critical_enter",
    ] {
        assert!(ex.forbidden(name).is_some(), "{name} should be forbidden");
    }
    assert!(ex
        .forbidden("__mtx_assert")
        .unwrap()
        .reason
        .starts_with("INVARIANTS-only"));
}

#[test]
fn exports_parser_rejects_bad_lines() {
    for (text, why) in [
        ("malloc\n", "missing `# HEADER; MODULE`"),
        ("malloc # sys/malloc.h\n", "comment must be"),
        ("malloc # sys/malloc.h; linux\n", "must be one of"),
        (
            "malloc # sys/malloc.h; kernel\nmalloc # sys/malloc.h; kernel\n",
            "listed twice",
        ),
        ("9lives # sys/x.h; kernel\n", "bad symbol name"),
        ("foo # sys/x.h {oops; kernel\n", "malformed {DECL}"),
        (
            "foo_bar # sys/x.h; kernel\n!foo_* # sys/x.h; no\n",
            "both exported",
        ),
    ] {
        let e = Exports::parse(text, "t.txt").unwrap_err();
        assert!(e.contains(why), "{text:?}: {e}");
        assert!(e.contains("t.txt:"), "{e}");
    }
}

fn sysroot_include() -> Option<PathBuf> {
    let root = match std::env::var_os("FREEBSD_SYSROOT") {
        Some(r) => PathBuf::from(r),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/ngsock/freebsd-15.0-sysroot"),
    };
    let inc = root.join("include");
    inc.join("sys/param.h").is_file().then_some(inc)
}

/// Header text without C comments (string literals are left alone; headers
/// do not put comment markers in strings where it matters here).
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            match s[i + 2..].find("*/") {
                Some(e) => i = i + 2 + e + 2,
                None => break,
            }
            out.push(' ');
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn has_word(text: &str, word: &str, prefix_only: bool) -> bool {
    let is_id = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let tb = text.as_bytes();
    let mut from = 0;
    while let Some(p) = text[from..].find(word) {
        let start = from + p;
        let end = start + word.len();
        let before_ok = start == 0 || !is_id(tb[start - 1]);
        let after_ok = prefix_only || end >= tb.len() || !is_id(tb[end]);
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
    }
    false
}

#[test]
fn exports_declared_in_sysroot_headers() {
    let Some(inc) = sysroot_include() else {
        eprintln!(
            "SKIPPED exports_declared_in_sysroot_headers: no FreeBSD header sysroot \
             (set FREEBSD_SYSROOT or create ~/.cache/ngsock/freebsd-15.0-sysroot/include, docs/building.md §2.1)"
        );
        return;
    };
    let ex = Exports::builtin();
    let mut cache: HashMap<String, Option<String>> = HashMap::new();
    let mut header = |h: &str| -> Option<String> {
        cache
            .entry(h.to_string())
            .or_insert_with(|| {
                std::fs::read_to_string(inc.join(h))
                    .ok()
                    .map(|t| strip_comments(&t))
            })
            .clone()
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    for e in ex.exports.values() {
        if e.header.starts_with('(') {
            continue;
        }
        let Some(text) = header(&e.header) else {
            problems.push(format!(
                "line {}: {}: header {} not found in {}",
                e.line,
                e.name,
                e.header,
                inc.display()
            ));
            continue;
        };
        let found = match &e.decl {
            Some(d) => text.contains(d.as_str()),
            None => has_word(&text, &e.name, false),
        };
        if !found {
            problems.push(format!(
                "line {}: {} is not declared in {} (looked for {:?})",
                e.line,
                e.name,
                e.header,
                e.decl.as_deref().unwrap_or(&e.name)
            ));
        }
        checked += 1;
    }
    for f in &ex.forbidden {
        if f.header.starts_with('(') {
            continue;
        }
        match header(&f.header) {
            Some(text) if has_word(&text, &f.pattern, f.prefix) => {}
            Some(_) => problems.push(format!(
                "line {}: forbidden {} not in {}",
                f.line, f.pattern, f.header
            )),
            None => problems.push(format!("line {}: header {} not found", f.line, f.header)),
        }
        checked += 1;
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(checked > 150, "checked only {checked}");
}

#[test]
fn exports_file_option_replaces_builtin_list() {
    let ko = Obj::new("exports_opt").build();
    let dir = ko.parent().unwrap();
    // The built-in list minus printf: printf is now unknown.
    let without_printf: String = BUILTIN
        .lines()
        .filter(|l| !l.starts_with("printf "))
        .map(|l| format!("{l}\n"))
        .collect();
    let list = dir.join("exports-no-printf.txt");
    std::fs::write(&list, without_printf).unwrap();
    let err = assert_rules(
        &ko,
        &["--exports", list.to_str().unwrap()],
        &["undefined-symbol"],
    );
    assert!(
        err.contains("printf is not a known kernel or netgraph.ko export"),
        "{err}"
    );
    assert!(err.contains("exports-no-printf.txt"), "{err}");
    // The full list given explicitly behaves like the built-in one.
    let full = dir.join("exports-full.txt");
    std::fs::write(&full, BUILTIN).unwrap();
    assert_passes(&ko, &[&format!("--exports={}", full.display())]);
    // A malformed list is a usage error (exit 2), naming the line.
    let bad = dir.join("exports-bad.txt");
    std::fs::write(&bad, "printf # sys/systm.h; kernal\n").unwrap();
    let r = kogate([
        &format!("--exports={}", bad.display()),
        &ko.display().to_string(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("exports-bad.txt:1:"), "{}", r.stderr);
}
