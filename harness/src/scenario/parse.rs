//! The scenario file parser (docs/scenarios.md).
//!
//! Every malformed statement is reported as `FILE:LINE: message`; all errors
//! of a file are collected, not just the first.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::errno::{self, Errno};
use super::pattern::Pattern;

/// Credentials for the commands that follow an `as` statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cred {
    /// uid 0.
    Root,
    /// An unprivileged uid.
    User,
}

/// A command statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdKind {
    /// `ngctl WORDS...`: a one-shot ngctl process with these arguments.
    Ngctl(Vec<String>),
    /// `session S`.
    Session(String),
    /// `S: WORDS...`: one command line typed into session S.
    SessionCmd(String, Vec<String>),
    /// `close S`.
    Close(String),
    /// `kldload MODULE`.
    Kldload(String),
    /// `kldunload MODULE`.
    Kldunload(String),
    /// `sysctl NAME` (read) or `sysctl NAME=VALUE` (write an integer).
    Sysctl(String, Option<i64>),
    /// `as root` / `as user`.
    As(Cred),
    /// `udp NAME bind ADDR:PORT`.
    UdpBind(String, SocketAddr),
    /// `udp NAME send ADDR:PORT PAYLOAD`.
    UdpSend(String, SocketAddr, Vec<u8>),
    /// `tcp NAME listen ADDR:PORT`.
    TcpListen(String, SocketAddr),
    /// `tcp NAME connect ADDR:PORT`.
    TcpConnect(String, SocketAddr),
    /// `tcp NAME accept FROM`.
    TcpAccept(String, String),
    /// `tcp NAME send PAYLOAD`.
    TcpSend(String, Vec<u8>),
    /// `tcp NAME close`.
    TcpClose(String),
    /// `wait MS`.
    Wait(u64),
}

impl CmdKind {
    /// A process with an exit status and output (ngctl, kldload, kldunload).
    fn is_process(&self) -> bool {
        matches!(
            self,
            CmdKind::Ngctl(_)
                | CmdKind::Session(_)
                | CmdKind::SessionCmd(..)
                | CmdKind::Kldload(_)
                | CmdKind::Kldunload(_)
                | CmdKind::Sysctl(..)
        )
    }

    /// Can this command fail?
    fn can_fail(&self) -> bool {
        !matches!(self, CmdKind::As(_) | CmdKind::Wait(_) | CmdKind::Close(_))
    }
}

/// An expectation statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpKind {
    /// `=> ok`.
    Ok,
    /// `=> error ERRNO`.
    Error(Errno),
    /// `=> exit N`.
    Exit(i32),
    /// `| PATTERN`.
    Line(Pattern),
    /// `!| PATTERN`.
    NoLine(Pattern),
    /// `S: expect PATTERN`.
    SessionExpect(String, Pattern),
    /// `NAME recv PAYLOAD`.
    Recv(String, Vec<u8>),
    /// `NAME recv-from ADDR:PORT PAYLOAD`.
    RecvFrom(String, SocketAddr, Vec<u8>),
    /// `NAME silent`.
    Silent(String),
    /// `NAME eof`.
    Eof(String),
}

impl ExpKind {
    /// `=> ok`, `=> error` or `=> exit`: an explicit statement about success.
    pub fn is_status(&self) -> bool {
        matches!(self, ExpKind::Ok | ExpKind::Error(_) | ExpKind::Exit(_))
    }
}

/// One expectation with its source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// 1-based line number.
    pub line: usize,
    /// The statement as written (trimmed).
    pub text: String,
    /// What is expected.
    pub kind: ExpKind,
}

/// One command with the expectations that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 1-based line number.
    pub line: usize,
    /// The statement as written (trimmed).
    pub text: String,
    /// What to do.
    pub kind: CmdKind,
    /// The expectations that follow it, in order.
    pub expects: Vec<Expect>,
}

impl Command {
    /// True if no `=> ok|error|exit` was written (so `=> ok` is implied).
    pub fn implied_ok(&self) -> bool {
        !self.expects.iter().any(|e| e.kind.is_status())
    }
}

/// A parsed scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// `scenario TEXT`.
    pub title: Option<String>,
    /// `require MODULE...`.
    pub requires: Vec<String>,
    /// `spec REF...`.
    pub specs: Vec<String>,
    /// The commands, in order.
    pub cmds: Vec<Command>,
}

/// A malformed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.msg)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.msg)
        }
    }
}

/// A word of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Its bytes (escapes of a quoted word resolved).
    pub bytes: Vec<u8>,
    /// Was it written in double quotes?
    pub quoted: bool,
}

impl Word {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Splits a statement into words: blank-separated, a word starting with `"`
/// runs to the closing quote and may use `\n \t \\ \" \xHH`.
pub fn split_words(line: &str) -> Result<Vec<Word>, String> {
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_blank(b[i]) {
            i += 1;
            continue;
        }
        if b[i] == b'"' {
            i += 1;
            let mut w = Vec::new();
            loop {
                let Some(&c) = b.get(i) else {
                    return Err("unterminated quoted word".into());
                };
                i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        let Some(&e) = b.get(i) else {
                            return Err("unterminated quoted word".into());
                        };
                        i += 1;
                        match e {
                            b'n' => w.push(b'\n'),
                            b't' => w.push(b'\t'),
                            b'\\' => w.push(b'\\'),
                            b'"' => w.push(b'"'),
                            b'x' => {
                                let h = b
                                    .get(i..i + 2)
                                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                                let Some(h) = h else {
                                    return Err(
                                        "bad escape: \\x needs two hex digits (\\xHH)".into()
                                    );
                                };
                                let v =
                                    u8::from_str_radix(std::str::from_utf8(h).unwrap_or("0"), 16);
                                w.push(v.unwrap_or(0));
                                i += 2;
                            }
                            _ => return Err(format!("unknown escape \\{}", e as char)),
                        }
                    }
                    _ => w.push(c),
                }
            }
            if i < b.len() && !is_blank(b[i]) {
                return Err("a quoted word must be followed by a blank".into());
            }
            words.push(Word {
                bytes: w,
                quoted: true,
            });
        } else {
            let s = i;
            while i < b.len() && !is_blank(b[i]) {
                i += 1;
            }
            words.push(Word {
                bytes: b[s..i].to_vec(),
                quoted: false,
            });
        }
    }
    Ok(words)
}

/// Parses a `PAYLOAD`: one quoted string, or hex bytes `0xHH...`.
pub fn parse_payload(words: &[Word]) -> Result<Vec<u8>, String> {
    match words {
        [] => Err("missing payload".into()),
        [w] if w.quoted => Ok(w.bytes.clone()),
        _ => words
            .iter()
            .map(|w| {
                let t = w.text();
                let h = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"));
                match h {
                    Some(h) if !w.quoted && (1..=2).contains(&h.len()) && h.bytes().all(|c| c.is_ascii_hexdigit()) => {
                        u8::from_str_radix(h, 16).map_err(|e| e.to_string())
                    }
                    _ => Err(format!("bad payload byte `{t}` (a payload is one quoted string or hex bytes like 0x68)")),
                }
            })
            .collect(),
    }
}

/// Parses `ADDR:PORT` (IPv4).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("bad address `{s}` (expected ADDR:PORT, e.g. 127.0.0.1:7777)"))
}

const KEYWORDS: &[&str] = &[
    "scenario",
    "require",
    "spec",
    "ngctl",
    "session",
    "close",
    "kldload",
    "kldunload",
    "as",
    "udp",
    "tcp",
    "wait",
    "recv",
    "recv-from",
    "silent",
    "eof",
    "expect",
];

/// Longest `wait` accepted, in milliseconds.
pub const MAX_WAIT_MS: u64 = 60_000;
/// Sessions open at once (the FreeBSD VM runner gives each a shell fd).
pub const MAX_SESSIONS: usize = 6;

/// Session, socket and module names: `[A-Za-z_][A-Za-z0-9_]*`, not a keyword.
fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !KEYWORDS.contains(&s)
}

/// kldload/kldunload arguments: `[A-Za-z0-9_.-]+`.
fn valid_module(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SockKind {
    Udp,
    Listener,
    Stream,
}

struct State {
    path: PathBuf,
    sc: Scenario,
    errors: Vec<ParseError>,
    sessions: HashMap<String, bool>,
    socks: HashMap<String, SockKind>,
}

impl State {
    fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.errors.push(ParseError {
            path: self.path.clone(),
            line,
            msg: msg.into(),
        });
    }
}

/// Reads and parses a scenario file.
pub fn parse_file(path: &Path) -> Result<Scenario, Vec<ParseError>> {
    match std::fs::read_to_string(path) {
        Ok(s) => parse_str(path, &s),
        Err(e) => Err(vec![ParseError {
            path: path.to_path_buf(),
            line: 0,
            msg: format!("cannot read: {e}"),
        }]),
    }
}

/// Parses scenario text (`path` is used for messages and relative files).
pub fn parse_str(path: &Path, text: &str) -> Result<Scenario, Vec<ParseError>> {
    let mut st = State {
        path: path.to_path_buf(),
        sc: Scenario {
            path: path.to_path_buf(),
            title: None,
            requires: Vec::new(),
            specs: Vec::new(),
            cmds: Vec::new(),
        },
        errors: Vec::new(),
        sessions: HashMap::new(),
        socks: HashMap::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r');
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        statement(&mut st, line, t);
    }
    if st.errors.is_empty() {
        Ok(st.sc)
    } else {
        Err(st.errors)
    }
}

fn statement(st: &mut State, line: usize, t: &str) {
    // Expectations written with punctuation are recognised on the raw text
    // so their patterns keep every character.
    if let Some(rest) = t.strip_prefix("!|") {
        return expectation_pattern(st, line, t, rest, true);
    }
    if let Some(rest) = t.strip_prefix('|') {
        return expectation_pattern(st, line, t, rest, false);
    }
    // `S: expect PATTERN` keeps the raw pattern text too.
    let mut raw = t.splitn(3, [' ', '\t']);
    if let (Some(w0), Some(w1)) = (raw.next(), raw.next()) {
        if let Some(s) = w0.strip_suffix(':') {
            if w1 == "expect" && !s.is_empty() && !s.starts_with('"') {
                return session_expect(st, line, t, s, raw.next().unwrap_or(""));
            }
        }
    }
    let words = match split_words(t) {
        Ok(w) => w,
        Err(e) => return st.err(line, e),
    };
    let Some(first) = words.first() else { return };
    let first_t = first.text();
    let args = &words[1..];
    if first.quoted {
        return st.err(line, format!("unknown statement `{t}`"));
    }
    if first_t == "=>" {
        return expectation_status(st, line, t, args);
    }
    match first_t.as_str() {
        "scenario" | "require" | "spec" => header(st, line, t, &first_t, args),
        "ngctl" => match ngctl_words(args) {
            Ok(w) => command(st, line, t, CmdKind::Ngctl(w)),
            Err(e) => st.err(line, e),
        },
        "session" => {
            let [name] = args else {
                return st.err(line, "usage: session S");
            };
            let name = name.text();
            if !valid_name(&name) {
                return st.err(line, format!("bad session name `{name}`"));
            }
            if st.sessions.get(&name) == Some(&true) {
                return st.err(line, format!("session {name} is already open"));
            }
            if st.sessions.values().filter(|&&open| open).count() >= MAX_SESSIONS {
                return st.err(
                    line,
                    format!("too many open sessions (at most {MAX_SESSIONS} at once on FreeBSD)"),
                );
            }
            st.sessions.insert(name.clone(), true);
            command(st, line, t, CmdKind::Session(name));
        }
        "close" => {
            let [name] = args else {
                return st.err(line, "usage: close S");
            };
            let name = name.text();
            if st.sessions.get(&name) != Some(&true) {
                return st.err(line, format!("close {name}: no such open session"));
            }
            st.sessions.insert(name.clone(), false);
            command(st, line, t, CmdKind::Close(name));
        }
        "kldload" | "kldunload" => {
            let [m] = args else {
                return st.err(line, format!("usage: {first_t} MODULE"));
            };
            let m = m.text();
            if !valid_module(&m) {
                return st.err(line, format!("bad module name `{m}`"));
            }
            let k = if first_t == "kldload" {
                CmdKind::Kldload(m)
            } else {
                CmdKind::Kldunload(m)
            };
            command(st, line, t, k);
        }
        "sysctl" => {
            let [w] = args else {
                return st.err(line, "usage: sysctl NAME | sysctl NAME=VALUE");
            };
            match sysctl_arg(&w.text()) {
                Ok((n, v)) => command(st, line, t, CmdKind::Sysctl(n, v)),
                Err(e) => st.err(line, e),
            }
        }
        "as" => match args.iter().map(Word::text).collect::<Vec<_>>().as_slice() {
            [w] if w == "root" => command(st, line, t, CmdKind::As(Cred::Root)),
            [w] if w == "user" => command(st, line, t, CmdKind::As(Cred::User)),
            _ => st.err(line, "usage: as root | as user"),
        },
        "wait" => match args.iter().map(Word::text).collect::<Vec<_>>().as_slice() {
            [ms] => match ms.parse::<u64>() {
                Ok(v) if v <= MAX_WAIT_MS => command(st, line, t, CmdKind::Wait(v)),
                Ok(_) => st.err(line, format!("wait: at most {MAX_WAIT_MS} ms")),
                Err(_) => st.err(line, format!("wait: bad number of milliseconds `{ms}`")),
            },
            _ => st.err(line, "usage: wait MS"),
        },
        "udp" => udp(st, line, t, args),
        "tcp" => tcp(st, line, t, args),
        _ => {
            if let Some(s) = first_t.strip_suffix(':') {
                return session_line(st, line, t, s, args);
            }
            if st.socks.contains_key(&first_t) {
                return socket_expectation(st, line, t, &first_t, args);
            }
            st.err(line, format!("unknown statement `{t}`"))
        }
    }
}

/// `NAME` or `NAME=VALUE` of a `sysctl` statement: a dotted name of
/// letters, digits and `_`, and a decimal integer.
fn sysctl_arg(w: &str) -> Result<(String, Option<i64>), String> {
    let (name, value) = match w.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (w, None),
    };
    let good_part =
        |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !name.split('.').all(good_part) {
        return Err(format!("sysctl: bad name `{name}`"));
    }
    let value = match value {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| format!("sysctl: `{v}` is not a decimal integer"))?,
        ),
    };
    Ok((name.to_string(), value))
}

fn ngctl_words(args: &[Word]) -> Result<Vec<String>, String> {
    args.iter()
        .map(|w| {
            if w.bytes.contains(&0) {
                return Err("a NUL byte cannot be passed to ngctl".to_string());
            }
            String::from_utf8(w.bytes.clone()).map_err(|_| "ngctl words must be UTF-8".to_string())
        })
        .collect()
}

fn header(st: &mut State, line: usize, t: &str, kw: &str, args: &[Word]) {
    if !st.sc.cmds.is_empty() {
        return st.err(
            line,
            format!("header statement `{kw}` after the first command"),
        );
    }
    match kw {
        "scenario" => {
            let title = t["scenario".len()..].trim();
            if title.is_empty() {
                return st.err(line, "usage: scenario TEXT");
            }
            if st.sc.title.is_some() {
                return st.err(line, "a second `scenario` title");
            }
            st.sc.title = Some(title.to_string());
        }
        "require" => {
            if args.is_empty() {
                return st.err(line, "usage: require MODULE...");
            }
            for a in args {
                let m = a.text();
                if !valid_name(&m) {
                    st.err(line, format!("bad module name `{m}`"));
                } else {
                    st.sc.requires.push(m);
                }
            }
        }
        _ => {
            if args.is_empty() {
                return st.err(line, "usage: spec REF...");
            }
            st.sc.specs.extend(args.iter().map(Word::text));
        }
    }
}

fn command(st: &mut State, line: usize, t: &str, kind: CmdKind) {
    st.sc.cmds.push(Command {
        line,
        text: t.to_string(),
        kind,
        expects: Vec::new(),
    });
}

/// Attaches an expectation to the most recent command.
fn expect(st: &mut State, line: usize, t: &str, kind: ExpKind) {
    let Some(last) = st.sc.cmds.last_mut() else {
        return st.err(line, format!("expectation `{t}` before any command"));
    };
    let problem = match &kind {
        ExpKind::Exit(_) if !last.kind.is_process() => {
            Some("`=> exit` applies only to ngctl, session commands, kldload, kldunload and sysctl")
        }
        ExpKind::Exit(n) if matches!(last.kind, CmdKind::SessionCmd(..)) && ![0, 64, 71].contains(n) => Some(
            "an interactive ngctl shows only success (0), a usage error (64) or an error (71) after a command",
        ),
        ExpKind::Line(_) | ExpKind::NoLine(_) if !last.kind.is_process() => {
            Some("the command has no output to match")
        }
        ExpKind::Ok | ExpKind::Error(_) if !last.kind.can_fail() => {
            Some("this command cannot fail")
        }
        _ => None,
    };
    if let Some(p) = problem {
        let l = last.line;
        return st.err(line, format!("`{t}`: {p} (most recent command: line {l})"));
    }
    last.expects.push(Expect {
        line,
        text: t.to_string(),
        kind,
    });
}

fn expectation_pattern(st: &mut State, line: usize, t: &str, rest: &str, negated: bool) {
    let p = rest.trim_matches(|c: char| c == ' ' || c == '\t');
    if p.is_empty() {
        return st.err(line, "empty pattern");
    }
    let p = Pattern::new(p);
    expect(
        st,
        line,
        t,
        if negated {
            ExpKind::NoLine(p)
        } else {
            ExpKind::Line(p)
        },
    );
}

fn expectation_status(st: &mut State, line: usize, t: &str, args: &[Word]) {
    let a: Vec<String> = args.iter().map(Word::text).collect();
    let kind = match a.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["ok"] => ExpKind::Ok,
        ["error", e] => match errno::by_name(e) {
            Some(n) => ExpKind::Error(n),
            None => return st.err(line, format!("unknown errno name `{e}`")),
        },
        ["exit", n] => match n.parse::<i32>() {
            Ok(v) if (0..=255).contains(&v) => ExpKind::Exit(v),
            _ => return st.err(line, format!("bad exit status `{n}`")),
        },
        _ => return st.err(line, "usage: => ok | => error ERRNO | => exit N"),
    };
    expect(st, line, t, kind);
}

fn session_expect(st: &mut State, line: usize, t: &str, s: &str, rest: &str) {
    if st.sessions.get(s) != Some(&true) {
        return st.err(line, format!("`{s}:`: no open session named {s}"));
    }
    let rest = rest.trim_matches([' ', '\t']);
    if rest.is_empty() {
        return st.err(line, "empty pattern");
    }
    expect(
        st,
        line,
        t,
        ExpKind::SessionExpect(s.to_string(), Pattern::new(rest)),
    );
}

fn session_line(st: &mut State, line: usize, t: &str, s: &str, args: &[Word]) {
    if st.sessions.get(s) != Some(&true) {
        return st.err(line, format!("`{s}:`: no open session named {s}"));
    }
    match ngctl_words(args) {
        Ok(w) => {
            // Interactive ngctl splits its input at blanks (strtok).
            if let Some(bad) = w
                .iter()
                .find(|a| a.is_empty() || a.contains([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']))
            {
                return st.err(
                    line,
                    format!("the session command word {bad:?} cannot be typed into an interactive ngctl as one word (it splits lines at blanks)"),
                );
            }
            command(st, line, t, CmdKind::SessionCmd(s.to_string(), w))
        }
        Err(e) => st.err(line, e),
    }
}

fn udp(st: &mut State, line: usize, t: &str, args: &[Word]) {
    let (Some(name), Some(verb)) = (args.first(), args.get(1)) else {
        return st.err(
            line,
            "usage: udp NAME bind ADDR:PORT | udp NAME send ADDR:PORT PAYLOAD",
        );
    };
    let (name, verb) = (name.text(), verb.text());
    if !valid_name(&name) {
        return st.err(line, format!("bad socket name `{name}`"));
    }
    match verb.as_str() {
        "bind" => {
            let [a] = &args[2..] else {
                return st.err(line, "usage: udp NAME bind ADDR:PORT");
            };
            match parse_addr(&a.text()) {
                Ok(addr) => {
                    if st.socks.contains_key(&name) {
                        return st.err(line, format!("socket {name} already exists"));
                    }
                    st.socks.insert(name.clone(), SockKind::Udp);
                    command(st, line, t, CmdKind::UdpBind(name, addr));
                }
                Err(e) => st.err(line, e),
            }
        }
        "send" => {
            let Some(a) = args.get(2) else {
                return st.err(line, "usage: udp NAME send ADDR:PORT PAYLOAD");
            };
            if st.socks.get(&name) != Some(&SockKind::Udp) {
                return st.err(
                    line,
                    format!("no UDP socket named {name} (use `udp {name} bind ADDR:PORT` first)"),
                );
            }
            match (parse_addr(&a.text()), parse_payload(&args[3..])) {
                (Ok(addr), Ok(p)) => command(st, line, t, CmdKind::UdpSend(name, addr, p)),
                (Err(e), _) | (_, Err(e)) => st.err(line, e),
            }
        }
        _ => st.err(line, format!("unknown udp action `{verb}`")),
    }
}

fn tcp(st: &mut State, line: usize, t: &str, args: &[Word]) {
    let (Some(name), Some(verb)) = (args.first(), args.get(1)) else {
        return st.err(
            line,
            "usage: tcp NAME listen|connect ADDR:PORT | accept FROM | send PAYLOAD | close",
        );
    };
    let (name, verb) = (name.text(), verb.text());
    if !valid_name(&name) {
        return st.err(line, format!("bad socket name `{name}`"));
    }
    let rest = &args[2..];
    let new_name = |st: &mut State, kind: SockKind| -> bool {
        if st.socks.contains_key(&name) {
            st.err(line, format!("socket {name} already exists"));
            false
        } else {
            st.socks.insert(name.clone(), kind);
            true
        }
    };
    match verb.as_str() {
        "listen" | "connect" => {
            let [a] = rest else {
                return st.err(line, format!("usage: tcp NAME {verb} ADDR:PORT"));
            };
            match parse_addr(&a.text()) {
                Ok(addr) => {
                    let listen = verb == "listen";
                    if new_name(
                        st,
                        if listen {
                            SockKind::Listener
                        } else {
                            SockKind::Stream
                        },
                    ) {
                        let k = if listen {
                            CmdKind::TcpListen(name, addr)
                        } else {
                            CmdKind::TcpConnect(name, addr)
                        };
                        command(st, line, t, k);
                    }
                }
                Err(e) => st.err(line, e),
            }
        }
        "accept" => {
            let [from] = rest else {
                return st.err(line, "usage: tcp NAME accept FROM");
            };
            let from = from.text();
            if st.socks.get(&from) != Some(&SockKind::Listener) {
                return st.err(line, format!("no listening TCP socket named {from}"));
            }
            if new_name(st, SockKind::Stream) {
                command(st, line, t, CmdKind::TcpAccept(name, from));
            }
        }
        "send" => {
            if st.socks.get(&name) != Some(&SockKind::Stream) {
                return st.err(line, format!("no connected TCP socket named {name}"));
            }
            match parse_payload(rest) {
                Ok(p) => command(st, line, t, CmdKind::TcpSend(name, p)),
                Err(e) => st.err(line, e),
            }
        }
        "close" => {
            if !rest.is_empty() {
                return st.err(line, "usage: tcp NAME close");
            }
            match st.socks.get(&name) {
                Some(SockKind::Stream) | Some(SockKind::Listener) => {
                    command(st, line, t, CmdKind::TcpClose(name))
                }
                _ => st.err(line, format!("no TCP socket named {name}")),
            }
        }
        _ => st.err(line, format!("unknown tcp action `{verb}`")),
    }
}

fn socket_expectation(st: &mut State, line: usize, t: &str, name: &str, args: &[Word]) {
    let kind = st.socks[name];
    let verb = args.first().map(Word::text).unwrap_or_default();
    let rest = args.get(1..).unwrap_or(&[]);
    let k = match verb.as_str() {
        "recv" if kind != SockKind::Listener => match parse_payload(rest) {
            Ok(p) => ExpKind::Recv(name.to_string(), p),
            Err(e) => return st.err(line, e),
        },
        "recv-from" if kind == SockKind::Udp => {
            let Some(a) = rest.first() else {
                return st.err(line, "usage: NAME recv-from ADDR:PORT PAYLOAD");
            };
            match (parse_addr(&a.text()), parse_payload(&rest[1..])) {
                (Ok(addr), Ok(p)) => ExpKind::RecvFrom(name.to_string(), addr, p),
                (Err(e), _) | (_, Err(e)) => return st.err(line, e),
            }
        }
        "silent" if rest.is_empty() && kind != SockKind::Listener => {
            ExpKind::Silent(name.to_string())
        }
        "eof" if rest.is_empty() && kind == SockKind::Stream => ExpKind::Eof(name.to_string()),
        "recv" | "recv-from" | "silent" | "eof" => {
            return st.err(
                line,
                format!("`{verb}` does not apply to socket {name} ({kind:?}) or has bad arguments"),
            )
        }
        _ => return st.err(line, format!("unknown statement `{t}`")),
    };
    expect(st, line, t, k);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Scenario, Vec<ParseError>> {
        parse_str(Path::new("t.ngs"), s)
    }

    fn errs(s: &str) -> Vec<String> {
        p(s).unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn words_and_quotes() {
        let w = split_words(r#"a "b c" "x\n\t\\\"\x41\x07" d"#).unwrap();
        let t: Vec<Vec<u8>> = w.iter().map(|w| w.bytes.clone()).collect();
        assert_eq!(
            t,
            vec![
                b"a".to_vec(),
                b"b c".to_vec(),
                b"x\n\t\\\"A\x07".to_vec(),
                b"d".to_vec()
            ]
        );
        assert!(w[1].quoted && !w[0].quoted);
        // A quote inside a word is literal.
        let w = split_words(r#"name="ab""#).unwrap();
        assert_eq!(w[0].bytes, br#"name="ab""#.to_vec());
        assert!(split_words(r#""abc"#).is_err());
        assert!(split_words(r#""a\qb""#).is_err());
        assert!(split_words(r#""a"b"#).is_err());
        assert!(split_words(r#""\x7""#).is_err());
    }

    #[test]
    fn payloads() {
        let w = split_words(r#""hi\n""#).unwrap();
        assert_eq!(parse_payload(&w).unwrap(), b"hi\n");
        let w = split_words("0x68 0x69 0xA").unwrap();
        assert_eq!(parse_payload(&w).unwrap(), b"hi\n");
        assert_eq!(parse_payload(&split_words(r#""""#).unwrap()).unwrap(), b"");
        assert!(parse_payload(&split_words("68").unwrap()).is_err());
        assert!(parse_payload(&split_words("0x123").unwrap()).is_err());
        assert!(parse_payload(&split_words(r#""a" "b""#).unwrap()).is_err());
        assert!(parse_payload(&[]).is_err());
    }

    #[test]
    fn the_documented_example_parses() {
        let s = p(r#"
scenario UDP echo server from echo <-> ksocket
require ng_socket ng_ksocket
spec docs/ksocket.md:K12 docs/ksocket.md:K15

session s
s: mkpeer . echo tmp x
s: name .:tmp ec
s: mkpeer ec: ksocket k inet/dgram/udp
s: name ec:k ks
s: msg ks: bind inet/127.0.0.1:7777
ngctl msg ks: getname
| Rec'd response "getname" (5) from "[{id}]:":
| Args:	inet/127.0.0.1:7777
udp c bind 127.0.0.1:0
udp c send 127.0.0.1:7777 "ping"
c recv-from 127.0.0.1:7777 "ping"
ngctl mkpeer . ksocket k foo
=> error EINVAL
close s
"#)
        .unwrap();
        assert_eq!(
            s.title.as_deref(),
            Some("UDP echo server from echo <-> ksocket")
        );
        assert_eq!(s.requires, vec!["ng_socket", "ng_ksocket"]);
        assert_eq!(s.specs.len(), 2);
        assert_eq!(s.cmds.len(), 11);
        assert_eq!(
            s.cmds[1].kind,
            CmdKind::SessionCmd(
                "s".into(),
                vec![
                    "mkpeer".into(),
                    ".".into(),
                    "echo".into(),
                    "tmp".into(),
                    "x".into()
                ]
            )
        );
        let getname = &s.cmds[6];
        assert_eq!(getname.line, 12);
        assert_eq!(getname.expects.len(), 2);
        assert!(getname.implied_ok());
        assert!(
            matches!(&getname.expects[1].kind, ExpKind::Line(p) if p.matches("Args:\tinet/127.0.0.1:7777"))
        );
        let send = &s.cmds[8];
        assert!(
            matches!(&send.expects[0].kind, ExpKind::RecvFrom(n, a, d) if n == "c" && a.port() == 7777 && d == b"ping")
        );
        assert_eq!(s.cmds[9].expects[0].kind, ExpKind::Error(22));
        assert!(!s.cmds[9].implied_ok());
    }

    #[test]
    fn errors_carry_file_and_line() {
        let e = errs("ngctl list\nfrobnicate all\n=> error EBOGUS\n");
        assert_eq!(
            e,
            vec![
                "t.ngs:2: unknown statement `frobnicate all`",
                "t.ngs:3: unknown errno name `EBOGUS`"
            ]
        );
        let e = errs("| foo\n");
        assert_eq!(e, vec!["t.ngs:1: expectation `| foo` before any command"]);
        let e = errs("=> ok\n");
        assert_eq!(e.len(), 1);
        let e = errs("udp c bind 127.0.0.1:0\nudp c send 127.0.0.1:7 68\n");
        assert!(e[0].starts_with("t.ngs:2: bad payload byte `68`"), "{e:?}");
        let e = errs("ngctl list\nrequire ng_socket\n");
        assert!(e[0].contains("after the first command"));
        let e = errs("s: list\n");
        assert!(e[0].contains("no open session named s"));
        let e = errs("session s\nclose s\ns: list\n");
        assert!(e[0].starts_with("t.ngs:3:"));
        let e = errs("wait 2\n| x\n");
        assert!(e[0].contains("no output"));
        let e = errs("udp c bind 127.0.0.1\n");
        assert!(e[0].contains("bad address"));
        let e = errs("tcp c accept nosuch\n");
        assert!(e[0].contains("no listening TCP socket"));
        let e = errs("ngctl list\n=> exit x\n=> frob\n");
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn session_expect_and_socket_expectations() {
        let s = p("session s\ns: write e 0x61\ns: expect Rec'd data packet on hook \"e\":\ntcp l listen 127.0.0.1:0\ntcp a connect 127.0.0.1:1\ntcp b accept l\nb recv \"x\"\nb eof\na silent\n").unwrap();
        assert!(
            matches!(&s.cmds[1].expects[0].kind, ExpKind::SessionExpect(n, p) if n == "s" && p.as_str() == "Rec'd data packet on hook \"e\":")
        );
        let b = &s.cmds[4];
        assert_eq!(b.expects.len(), 3);
        assert_eq!(b.expects[0].kind, ExpKind::Recv("b".into(), b"x".to_vec()));
        assert_eq!(b.expects[1].kind, ExpKind::Eof("b".into()));
        assert!(errs("tcp l listen 127.0.0.1:0\nl recv \"x\"\n")[0].contains("does not apply"));
        assert!(errs("udp u bind 127.0.0.1:0\nu eof\n")[0].contains("does not apply"));
    }

    #[test]
    fn rules_shared_with_the_vm_translator() {
        // Names: [A-Za-z_][A-Za-z0-9_]*.
        assert!(errs("session 1s\n")[0].contains("bad session name"));
        assert!(errs("session a-b\n")[0].contains("bad session name"));
        assert!(errs("udp my-sock bind 127.0.0.1:0\n")[0].contains("bad socket name"));
        assert!(errs("kldload ng/x\n")[0].contains("bad module name"));
        assert!(p("kldload ng_ksocket.ko\n").is_ok());
        // A session command word cannot hold a blank (ngctl splits at blanks).
        assert!(errs("session s\ns: name . \"a b\"\n")[0].contains("cannot be typed"));
        assert!(errs("session s\ns: write e \"\"\n")[0].contains("cannot be typed"));
        assert!(p("ngctl name . \"a b\"\n").is_ok());
        // After a session command only 0, 64 and 71 can be seen.
        assert!(errs("session s\ns: list\n=> exit 1\n")[0].contains("interactive ngctl"));
        assert!(p("session s\ns: list\n=> exit 64\n").is_ok());
        // At most six sessions at once.
        let many: String = (0..7).map(|i| format!("session s{i}\n")).collect();
        assert!(errs(&many)[0].starts_with("t.ngs:7: too many open sessions"));
        // IPv6 outside sockets; waits up to a minute.
        assert!(p("udp u bind [::1]:0\nwait 60000\n").is_ok());
        assert!(errs("wait 60001\n")[0].contains("at most"));
        // sysctl: one dotted name, an optional decimal value; a process.
        let s = p("sysctl net.graph.ksocket.inet6_ascii=1\n=> exit 0\n| x\n").unwrap();
        assert_eq!(
            s.cmds[0].kind,
            CmdKind::Sysctl("net.graph.ksocket.inet6_ascii".into(), Some(1))
        );
        assert_eq!(
            p("sysctl net.graph.family\n").unwrap().cmds[0].kind,
            CmdKind::Sysctl("net.graph.family".into(), None)
        );
        assert!(p("sysctl a.b=-3\n=> error EPERM\n").is_ok());
        assert!(errs("sysctl\n")[0].contains("usage: sysctl"));
        assert!(errs("sysctl a.b c\n")[0].contains("usage: sysctl"));
        assert!(errs("sysctl a..b\n")[0].contains("bad name"));
        assert!(errs("sysctl a.b=on\n")[0].contains("not a decimal integer"));
    }
}
