//! The list of symbols a module may import (kernel-exports.txt).
//!
//! Line format (blank lines and lines starting with `#` are ignored):
//!
//! ```text
//! NAME            # HEADER[ {DECL}]; MODULE[; note]
//! !NAME           # HEADER; reason shown to the user
//! !PREFIX*        # HEADER; reason (every name starting with PREFIX)
//! ```
//!
//! * `HEADER` is the FreeBSD header (relative to `include/`) that declares the
//!   name, or `(compiler)` for names only the compiler references
//!   (stack-protector support). `{DECL}` is optional literal text to look for
//!   instead of the name, for names built by token pasting
//!   (e.g. `{SYSCTL_DECL(_net_graph)}` for `sysctl___net_graph`).
//! * `MODULE` is `kernel` or `netgraph.ko`: which loaded file exports it.
//! * `!` entries are names a module must never import; the reason is printed.

use std::collections::BTreeMap;

/// Text of the maintained list, built into the binary.
pub const BUILTIN: &str = include_str!("../kernel-exports.txt");

pub const MODULES: &[&str] = &["kernel", "netgraph.ko"];

#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub header: String,
    pub decl: Option<String>,
    pub module: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Forbidden {
    /// Name, or prefix when `prefix` is set.
    pub pattern: String,
    pub prefix: bool,
    pub header: String,
    pub reason: String,
    pub line: usize,
}

impl Forbidden {
    pub fn matches(&self, name: &str) -> bool {
        if self.prefix {
            name.starts_with(&self.pattern)
        } else {
            name == self.pattern
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Exports {
    /// Where the list came from (for messages).
    pub source: String,
    pub exports: BTreeMap<String, Export>,
    pub forbidden: Vec<Forbidden>,
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

impl Exports {
    pub fn builtin() -> Exports {
        Exports::parse(BUILTIN, "built-in tools/kogate/kernel-exports.txt")
            .expect("built-in kernel-exports.txt must parse")
    }

    /// Parses the list; every malformed line is an error naming its line number.
    pub fn parse(text: &str, source: &str) -> Result<Exports, String> {
        let mut ex = Exports {
            source: source.to_string(),
            ..Default::default()
        };
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let lno = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name_part, comment)) = line.split_once('#') else {
                errors.push(format!(
                    "{source}:{lno}: missing `# HEADER; MODULE` comment after the name"
                ));
                continue;
            };
            let name = name_part.trim();
            let fields: Vec<&str> = comment.split(';').map(str::trim).collect();
            if fields.len() < 2 || fields[0].is_empty() || fields[1].is_empty() {
                errors.push(format!(
                    "{source}:{lno}: comment must be `# HEADER; MODULE` (or `# HEADER; reason` for `!` entries)"
                ));
                continue;
            }
            let (header, decl) = match fields[0].split_once('{') {
                Some((h, rest)) => match rest.strip_suffix('}') {
                    Some(d) if !d.is_empty() => (h.trim().to_string(), Some(d.to_string())),
                    _ => {
                        errors.push(format!(
                            "{source}:{lno}: malformed {{DECL}} in `{}`",
                            fields[0]
                        ));
                        continue;
                    }
                },
                None => (fields[0].to_string(), None),
            };
            if header.contains(char::is_whitespace) {
                errors.push(format!(
                    "{source}:{lno}: header field `{header}` must be one path or (compiler)"
                ));
                continue;
            }
            if let Some(f) = name.strip_prefix('!') {
                let (pattern, prefix) = match f.strip_suffix('*') {
                    Some(p) => (p, true),
                    None => (f, false),
                };
                if !valid_ident(pattern) {
                    errors.push(format!("{source}:{lno}: bad forbidden name `{name}`"));
                    continue;
                }
                ex.forbidden.push(Forbidden {
                    pattern: pattern.to_string(),
                    prefix,
                    header,
                    reason: fields[1..].join("; "),
                    line: lno,
                });
                continue;
            }
            if !valid_ident(name) {
                errors.push(format!("{source}:{lno}: bad symbol name `{name}`"));
                continue;
            }
            let module = fields[1];
            if !MODULES.contains(&module) {
                errors.push(format!(
                    "{source}:{lno}: module `{module}` for {name} must be one of {}",
                    MODULES.join(", ")
                ));
                continue;
            }
            if let Some(prev) = ex.exports.get(name) {
                errors.push(format!(
                    "{source}:{lno}: {name} listed twice (first on line {})",
                    prev.line
                ));
                continue;
            }
            ex.exports.insert(
                name.to_string(),
                Export {
                    name: name.to_string(),
                    header,
                    decl,
                    module: module.to_string(),
                    line: lno,
                },
            );
        }
        for f in &ex.forbidden {
            for e in ex.exports.values() {
                if f.matches(&e.name) {
                    errors.push(format!(
                        "{source}:{}: {} is both exported (line {}) and forbidden",
                        f.line, e.name, e.line
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(ex)
        } else {
            Err(errors.join("\n"))
        }
    }

    pub fn get(&self, name: &str) -> Option<&Export> {
        self.exports.get(name)
    }

    pub fn forbidden(&self, name: &str) -> Option<&Forbidden> {
        self.forbidden.iter().find(|f| f.matches(name))
    }
}
