//! Fuzzing the modules through the harness kernel: the targets (what one
//! input does), the fork server that runs each input in a fresh child of a
//! booted kernel and collects the modules' edge coverage, and the tools
//! around them — replaying a corpus, minimizing a finding, reducing a
//! corpus to the inputs that keep its coverage, and the coverage report
//! of instrumented modules.
//!
//! The coverage-guided engine is LibAFL, in the `fuzz/` crate (its own
//! workspace, so the ordinary build and test never compile it): it drives
//! [`fork::Server`] and reads the coverage map. Everything else runs here:
//!
//! ```text
//! ngharness fuzz replay [--ko A.ko ...] TARGET PATH...   each file (or every file of each directory)
//!     (every command also takes --timeout-ms N, the time limit of one case; default 10 s)
//! ngharness fuzz run [--ko A.ko ...] TARGET FILE          one input, its output shown
//! ngharness fuzz min [--ko A.ko ...] TARGET FILE OUT      smallest input with the same finding
//! ngharness fuzz cmin [--ko A.ko ...] TARGET DIR OUTDIR   inputs that keep DIR's coverage (instrumented modules)
//! ngharness coverage DATADIR MODULE.ko.full...            edges and functions no test reached
//! ```
//! Modules default to `build/ng_socket.ko build/ng_ksocket.ko`.

pub mod coverage;
pub mod fork;
pub mod gen;
pub mod inject;
pub mod input;
pub mod targets;
pub mod world;

use std::path::{Path, PathBuf};

pub use fork::{Finding, Outcome, Server};
pub use targets::{Target, TARGETS};

fn usage() -> i32 {
    eprintln!("usage: ngharness fuzz replay [--ko A.ko ...] TARGET PATH...");
    eprintln!("       ngharness fuzz run [--ko A.ko ...] TARGET FILE");
    eprintln!("       ngharness fuzz min [--ko A.ko ...] TARGET FILE OUT");
    eprintln!("       ngharness fuzz cmin [--ko A.ko ...] TARGET DIR OUTDIR");
    eprintln!(
        "targets: {}",
        TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
    );
    2
}

/// The input files of `path`: itself, or every file in it (not hidden
/// ones: the engine's metadata), sorted.
pub fn inputs(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    }
}

/// `ngharness fuzz ...`; the exit status.
pub fn cli(args: &[String]) -> i32 {
    let Some(cmd) = args.first() else {
        return usage();
    };
    let mut kos: Vec<PathBuf> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    let mut timeout = None;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        if a == "--ko" {
            match it.next() {
                Some(k) => kos.push(PathBuf::from(k)),
                None => return usage(),
            }
        } else if a == "--timeout-ms" {
            match it.next().and_then(|v| v.parse::<u64>().ok()) {
                Some(ms) => timeout = Some(std::time::Duration::from_millis(ms)),
                None => return usage(),
            }
        } else {
            rest.push(a.clone());
        }
    }
    if kos.is_empty() {
        kos = vec![
            PathBuf::from("build/ng_socket.ko"),
            PathBuf::from("build/ng_ksocket.ko"),
        ];
    }
    let Some(target) = rest.first().and_then(|t| Target::by_name(t)) else {
        return usage();
    };
    let mut server = match Server::boot(&kos) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ngharness fuzz: {e}");
            return 1;
        }
    };
    if let Some(t) = timeout {
        server.timeout = t;
    }
    match (cmd.as_str(), &rest[1..]) {
        ("replay", paths) if !paths.is_empty() => replay(&mut server, target, paths),
        ("run", [file]) => {
            server.verbose = true;
            let data = std::fs::read(file).unwrap_or_default();
            let o = server.run(target, &data);
            println!("{}", describe(&o));
            i32::from(o != Outcome::Ok)
        }
        ("min", [file, out]) => minimize_cli(&mut server, target, Path::new(file), Path::new(out)),
        ("cmin", [dir, out]) => cmin(&mut server, target, Path::new(dir), Path::new(out)),
        _ => usage(),
    }
}

/// One line about an outcome.
pub fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Ok => "ok".into(),
        Outcome::Timeout(_) => "timeout".into(),
        Outcome::Finding(f) => format!("FINDING {}", f.signature),
    }
}

fn replay(server: &mut Server, target: Target, paths: &[String]) -> i32 {
    let files: Vec<PathBuf> = paths.iter().flat_map(|p| inputs(Path::new(p))).collect();
    let start = std::time::Instant::now();
    let mut bad = 0;
    for f in &files {
        let data = std::fs::read(f).unwrap_or_default();
        let o = server.run(target, &data);
        if o != Outcome::Ok {
            bad += 1;
            println!("{}: {}", f.display(), describe(&o));
            match &o {
                Outcome::Finding(fi) => println!("{}", fi.report),
                Outcome::Timeout(r) => println!("{r}"),
                Outcome::Ok => {}
            }
        }
    }
    server.dump_coverage();
    println!(
        "fuzz replay {}: {} inputs, {} failed, {:.1}s{}",
        target.name(),
        files.len(),
        bad,
        start.elapsed().as_secs_f64(),
        if server.sandboxed_network() {
            ""
        } else {
            " (not in a private network namespace)"
        }
    );
    i32::from(bad > 0)
}

/// The smallest input (by removing chunks, then lowering bytes) that still
/// ends in a finding with the signature `want`.
pub fn minimize(server: &mut Server, target: Target, data: &[u8], want: &str) -> Vec<u8> {
    let same = |s: &mut Server, d: &[u8]| match s.run(target, d) {
        Outcome::Finding(f) => f.signature == want,
        _ => false,
    };
    let mut cur = data.to_vec();
    let mut chunk = cur.len().div_ceil(2).max(1);
    while chunk >= 1 {
        let mut i = 0;
        let mut progress = false;
        while i < cur.len() {
            let mut cand = cur.clone();
            let end = (i + chunk).min(cand.len());
            cand.drain(i..end);
            if same(server, &cand) {
                cur = cand;
                progress = true;
            } else {
                i += chunk;
            }
        }
        if !progress {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    for i in 0..cur.len() {
        for v in [0u8, 1] {
            if cur[i] > v {
                let mut cand = cur.clone();
                cand[i] = v;
                if same(server, &cand) {
                    cur = cand;
                    break;
                }
            }
        }
    }
    cur
}

fn minimize_cli(server: &mut Server, target: Target, file: &Path, out: &Path) -> i32 {
    let data = std::fs::read(file).unwrap_or_default();
    let Outcome::Finding(f) = server.run(target, &data) else {
        eprintln!("{}: no finding to minimize", file.display());
        return 1;
    };
    println!("finding: {}", f.signature);
    let min = minimize(server, target, &data, &f.signature);
    if let Err(e) = std::fs::write(out, &min) {
        eprintln!("{}: {e}", out.display());
        return 1;
    }
    println!(
        "{} bytes -> {} bytes: {}",
        data.len(),
        min.len(),
        out.display()
    );
    0
}

/// Keeps the inputs of `dir` that together reach every edge the whole
/// directory reaches (greedy: the input with the most new edges first).
fn cmin(server: &mut Server, target: Target, dir: &Path, out: &Path) -> i32 {
    let files = inputs(dir);
    let mut covers: Vec<(PathBuf, Vec<usize>)> = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap_or_default();
        if server.run(target, &data) != Outcome::Ok {
            continue;
        }
        let edges: Vec<usize> = server
            .map()
            .iter()
            .enumerate()
            .filter(|(_, &c)| c != 0)
            .map(|(i, _)| i)
            .collect();
        covers.push((f.clone(), edges));
    }
    let mut seen = std::collections::HashSet::new();
    let mut keep = Vec::new();
    loop {
        let best = covers
            .iter()
            .enumerate()
            .map(|(i, (_, e))| (i, e.iter().filter(|x| !seen.contains(*x)).count()))
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)));
        match best {
            Some((i, n)) if n > 0 => {
                let (f, e) = covers.swap_remove(i);
                seen.extend(e);
                keep.push(f);
            }
            _ => break,
        }
    }
    let _ = std::fs::create_dir_all(out);
    for f in &keep {
        if let Some(name) = f.file_name() {
            let _ = std::fs::copy(f, out.join(name));
        }
    }
    println!(
        "cmin {}: {} inputs -> {} inputs, {} edges",
        target.name(),
        files.len(),
        keep.len(),
        seen.len()
    );
    0
}
