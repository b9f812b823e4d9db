//! Every `deviation PAGE "PHRASE"` statement of the scenarios quotes the
//! DEVIATIONS FROM FREEBSD section of our man page PAGE: a scenario may
//! only say "FreeBSD's module behaves differently here" where the man page
//! documents it (reference mode, `make harness FREEBSD_SRC=...`, then
//! accepts exactly those differences).

use std::path::{Path, PathBuf};

use ngharness::scenario::{deviation, parse};

fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn scenario_deviations_are_documented_in_the_man_pages() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(top().join("scenarios"))
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ngs"))
        .collect();
    files.sort();
    let mut seen = 0;
    let mut problems = Vec::new();
    for f in &files {
        let sc = parse::parse_file(f).unwrap_or_else(|e| panic!("{}: {}", f.display(), e[0]));
        for c in &sc.cmds {
            let Some(d) = &c.deviation else { continue };
            seen += 1;
            if let Err(e) = deviation::documented(&top().join("man"), &d.page, &d.phrase) {
                problems.push(format!("{}:{}: {e}", f.display(), d.line));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(seen > 0, "no deviation statement in scenarios/");
}
