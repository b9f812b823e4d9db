//! The layering rules of the crate, checked on its sources (host test):
//!
//! * node types (`src/ksocket`, `src/socket`) and the pure parsers
//!   (`src/pure`) contain no `unsafe` code and never name the bindings
//!   (`fbsd_sys`); the node types also forbid unsafe code in their module
//!   root, which the compiler enforces;
//! * the kernel layer (`src/kern`) knows no node type and has no
//!   feature switches;
//! * no source file has more than 1,200 lines outside its tests.
//!
//! `docs/kernel-layer.md` explains the rules.

extern crate std;

use std::fs;
use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (relative to the crate) ending in `ext`.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, ext, out);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), ext, &mut out);
    out.sort();
    out
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// The code of a Rust file: each line without its `//` comment.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
}

fn has_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

fn violations(dirs: &[&str], words: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for d in dirs {
        for f in files(d, "rs") {
            let text = read(&f);
            for (n, line) in code_lines(&text) {
                for w in words {
                    if has_word(line, w) {
                        v.push(std::format!("{}:{n}: `{w}`", f.display()));
                    }
                }
            }
        }
    }
    v
}

#[test]
fn node_types_and_parsers_are_safe_rust_without_bindings() {
    let v = violations(
        &["src/ksocket", "src/socket", "src/pure"],
        &["unsafe", "fbsd_sys"],
    );
    assert!(v.is_empty(), "{v:#?}");
    for m in ["src/ksocket/mod.rs", "src/socket/mod.rs"] {
        assert!(
            read(&root().join(m)).contains("#![forbid(unsafe_code)]"),
            "{m} must forbid unsafe code"
        );
    }
}

#[test]
fn kernel_layer_knows_no_node_type() {
    let v = violations(
        &["src/kern"],
        &["crate::ksocket", "crate::socket", "ksocket", "ng_socket"],
    );
    assert!(v.is_empty(), "{v:#?}");
    let mut switches = Vec::new();
    for f in files("src/kern", "rs") {
        for (n, line) in code_lines(&read(&f)) {
            if line.contains("cfg(feature") || line.contains("cfg(all(feature") {
                switches.push(std::format!("{}:{n}", f.display()));
            }
        }
    }
    assert!(switches.is_empty(), "feature switches: {switches:#?}");
}

/// Lines of a file outside its tests: up to its first top-level
/// `#[cfg(test)]`; a file of tests alone counts for nothing.
fn lines_outside_tests(p: &Path) -> usize {
    if p.file_name().is_some_and(|n| n == "tests.rs") {
        return 0;
    }
    read(p)
        .lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .count()
}

#[test]
fn source_files_stay_small() {
    let mut big = Vec::new();
    for f in files("src", "rs").into_iter().chain(files("kmod", "c")) {
        let n = lines_outside_tests(&f);
        if n > 1200 {
            big.push(std::format!("{}: {n} lines", f.display()));
        }
    }
    assert!(big.is_empty(), "over 1,200 lines outside tests: {big:#?}");
}
