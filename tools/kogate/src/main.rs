//! kogate CLI. See README.md.

use std::collections::HashMap;
use std::process::ExitCode;

use kogate::exports::Exports;
use kogate::{check, Options};

/// At most this many lines per rule and file; the rest are counted.
const MAX_LINES_PER_RULE: usize = 25;

const USAGE: &str = "usage: kogate [--foreign] [--expect-module NAME] [--expect-version N] [--exports FILE] file.ko...
  Checks FreeBSD 15 amd64 kernel modules the way kldload's linker would (and more).
  --foreign             a module that is not ours (FreeBSD's own): the kernel's rules only,
                        not the project's policies (no MODULE_VERSION required)
  --expect-module NAME  module name required in MDT_MODULE (default: file name up to the first '.')
  --expect-version N    MDT_VERSION required for that module (default 1)
  --exports FILE        list of importable symbols (default: the built-in tools/kogate/kernel-exports.txt)
Exit status: 0 all files pass, 1 a rule was violated, 2 usage or I/O error.";

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("kogate: {msg}");
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut expect_module = None;
    let mut expect_version = None;
    let mut foreign = false;
    let mut exports_file: Option<String> = None;
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, ExitCode> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| usage_error(&format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--expect-module" => match value("--expect-module") {
                Ok(v) => expect_module = Some(v),
                Err(c) => return c,
            },
            "--expect-version" => match value("--expect-version") {
                Ok(v) => match v.parse() {
                    Ok(n) => expect_version = Some(n),
                    Err(_) => {
                        return usage_error(&format!("--expect-version: not an integer: {v}"))
                    }
                },
                Err(c) => return c,
            },
            "--foreign" => foreign = true,
            "--exports" => match value("--exports") {
                Ok(v) => exports_file = Some(v),
                Err(c) => return c,
            },
            "--" => {
                files.extend(args.by_ref());
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return usage_error(&format!("unknown option {f}"));
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        return usage_error("no input files");
    }
    let exports = match &exports_file {
        None => Exports::builtin(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => match Exports::parse(&text, path) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("kogate: bad exports list:\n{e}");
                    return ExitCode::from(2);
                }
            },
            Err(e) => {
                eprintln!("kogate: {path}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let opts = Options {
        expect_module,
        // Ours: MODULE_VERSION(name, 1) unless told otherwise.
        expect_version: if foreign {
            expect_version
        } else {
            expect_version.or(Some(1))
        },
        exports,
    };
    let mut status = 0u8;
    for f in &files {
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("kogate: {f}: {e}");
                status = 2;
                continue;
            }
        };
        let outcome = check(&data, f, &opts);
        if outcome.violations.is_empty() {
            println!("kogate: {f}: OK");
            for line in &outcome.summary {
                println!("  {line}");
            }
        } else {
            let mut shown: HashMap<&str, usize> = HashMap::new();
            for v in &outcome.violations {
                let n = shown.entry(v.rule).or_default();
                *n += 1;
                if *n <= MAX_LINES_PER_RULE {
                    eprintln!("kogate: {f}: {}: {}", v.rule, v.detail);
                }
            }
            let mut rules: Vec<(&&str, &usize)> = shown.iter().collect();
            rules.sort();
            for (rule, n) in rules {
                if *n > MAX_LINES_PER_RULE {
                    eprintln!(
                        "kogate: {f}: {rule}: ... and {} more violations of this rule",
                        n - MAX_LINES_PER_RULE
                    );
                }
            }
            eprintln!(
                "kogate: {f}: FAILED: {} violation(s) of {} rule(s)",
                outcome.violations.len(),
                shown.len()
            );
            status = status.max(1);
        }
    }
    ExitCode::from(status)
}
