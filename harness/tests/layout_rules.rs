//! The harness's source layout rules, checked on the source tree:
//!
//! * layers: a module may name (through `crate::...`) only its own layer
//!   and the layers below it (see `LAYERS` and DESIGN.md, "Layers");
//! * size: no source file outside tests is longer than `MAX_LINES` lines
//!   (the harness, the tools, the VM runner and the bridge).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Longest source file allowed outside tests.
const MAX_LINES: usize = 1200;

/// The layers, lowest first: the top-level modules of the crate in each.
/// A module may use modules of its own layer and of the layers before it.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["arena", "exports"]),
    ("bridge wire protocol", &["wire"]),
    ("kernel services", &["kern"]),
    ("netgraph model", &["netgraph"]),
    ("scenario runner", &["scenario"]),
    ("race runner", &["race"]),
    ("benchmark", &["bench"]),
    ("demo", &["demo"]),
    ("bridge server", &["serve"]),
    ("fuzzer", &["fuzz"]),
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// The code of a Rust file without comments (line and block) and without
/// the contents of string literals, so that prose naming other modules
/// does not count.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                out.push('"');
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.push('"');
                i += 1;
            }
            // A char literal such as '"' (lifetimes have no closing quote).
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Top-level crate modules a file names: `crate::m...`, `$crate::m...` and
/// `crate::{m, n::...}`.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // e.g. `mycrate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of a use group, nested groups skipped.
            let mut depth = 0;
            let mut start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                        found.insert(ident_at(&group[k..]).to_string());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let m = ident_at(rest);
            if !m.is_empty() {
                found.insert(m.to_string());
            }
        }
    }
    found
}

#[test]
fn no_layer_names_a_layer_above_it() {
    let src = manifest_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "harness sources not found under {src:?}");
    let mut broken = Vec::new();
    let mut unplaced = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy().to_string();
        let module = top.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue; // the crate root and the command line sit on top of all
        }
        let Some(own) = layer_of(&module) else {
            unplaced.insert(module);
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for used in crate_modules(&code_only(&text)) {
            match layer_of(&used) {
                Some(l) if l > own => broken.push(format!(
                    "src/{}: uses crate::{used} ({}) from the {} layer",
                    rel.display(),
                    LAYERS[l].0,
                    LAYERS[own].0
                )),
                Some(_) => {}
                None => {
                    unplaced.insert(used);
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS and DESIGN.md): {unplaced:?}"
    );
    assert!(
        broken.is_empty(),
        "imports from a lower layer to a higher one (use a callback or a trait the \
         upper layer installs, as kern::Subsystem and kern::probe::Probe do):\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_scanner_sees_every_form_of_path() {
    let code = code_only(
        "use crate::kern::mbuf; // crate::bench\n\
         use crate::{arena, netgraph::{core, parse}};\n\
         let s = \"crate::demo\"; /* crate::scenario */ let c = '\"';\n\
         $crate::exports::Exports::new(); notcrate::x;\n",
    );
    let got: Vec<String> = crate_modules(&code).into_iter().collect();
    assert_eq!(got, ["arena", "exports", "kern", "netgraph"]);
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let top = manifest_dir().parent().unwrap().to_path_buf();
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    for tool in std::fs::read_dir(top.join("tools")).unwrap().flatten() {
        rust_files(&tool.path().join("src"), &mut files);
    }
    // C shims, the VM runner (its tests/ and generated golden/ aside), and
    // the bridge's library and test programs.
    for dir in [
        manifest_dir().join("csrc"),
        top.join("vm-tests"),
        top.join("bridge"),
        top.join("bridge/tests"),
    ] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_file()
                && p.extension()
                    .is_some_and(|x| ["c", "h", "py", "sh"].iter().any(|s| x == *s))
            {
                files.push(p);
            }
        }
    }
    let mut long = Vec::new();
    for f in &files {
        let n = std::fs::read_to_string(f).unwrap().lines().count();
        if n > MAX_LINES {
            long.push(format!(
                "{}: {n} lines",
                f.strip_prefix(&top).unwrap().display()
            ));
        }
    }
    long.sort();
    assert!(files.len() > 40, "sources not found under {top:?}");
    assert!(
        long.is_empty(),
        "source files longer than {MAX_LINES} lines (split them along their sections):\n{}",
        long.join("\n")
    );
}
