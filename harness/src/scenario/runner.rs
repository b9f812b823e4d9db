//! Runs one parsed scenario against a kernel and a netgraph client backend,
//! in this process: commands in order, each followed by its expectations;
//! the first unmet expectation ends the scenario. Then the teardown (every
//! session and socket closed, every remaining node shut down) and the
//! end-of-scenario checks.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::errno::{self, Errno};
use super::extctl::{ExtSession, External};
use super::kernel::Kernel;
use super::msg::{self, NgMsg};
use super::ngctl::{self, Ended, Session};
use super::outside::{self, Outside};
use super::parse::{CmdKind, Command, Cred, ExpKind, Expect, Scenario};
use super::pattern::{self, Pattern};
use super::port::{NgPort, Wait, BLOCK};

/// How long `S: expect` waits.
pub const SESSION_WAIT: Duration = Duration::from_secs(2);
/// Upper bound on one settling pass (running the kernel until idle).
const SETTLE_LIMIT: Duration = Duration::from_millis(500);

/// The first unmet expectation (or a command that could not run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Scenario line.
    pub line: usize,
    /// One-line description.
    pub msg: String,
    /// Supporting lines (the command's output, a session's transcript...).
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcKind {
    /// ngctl: `=> error` means exit status 71 and an `ngctl: ...` line.
    Ngctl,
    /// kldload, kldunload, sysctl: `=> error` compares the errno.
    Kld,
    /// Actions outside netgraph.
    Other,
}

/// What a command did.
struct CmdResult {
    kind: ProcKind,
    /// Exit status for processes; 0/1 for other commands.
    status: i32,
    /// The errno of a failed kld or outside action.
    errno: Option<Errno>,
    /// Description of a failed outside action.
    err_text: Option<String>,
    /// Output lines.
    lines: Vec<String>,
    /// Next line `|` looks at.
    cursor: usize,
}

impl CmdResult {
    fn ok(kind: ProcKind) -> CmdResult {
        CmdResult {
            kind,
            status: 0,
            errno: None,
            err_text: None,
            lines: Vec::new(),
            cursor: 0,
        }
    }

    fn describe(&self) -> String {
        match self.kind {
            ProcKind::Other => match (&self.err_text, self.errno) {
                (Some(t), _) => format!("it failed: {t}"),
                (None, Some(e)) => format!("it failed with {}", errno::name(e)),
                (None, None) => "it succeeded".into(),
            },
            _ => {
                let mut s = format!("exit status {}", self.status);
                if let Some(e) = self.errno {
                    s.push_str(&format!(" ({})", errno::name(e)));
                }
                s
            }
        }
    }
}

/// An interactive ngctl: the emulation's or an external binary's.
enum AnySession {
    Emu(Session),
    Ext(ExtSession),
}

impl AnySession {
    fn alive(&mut self) -> bool {
        match self {
            AnySession::Emu(s) => s.alive(),
            AnySession::Ext(s) => s.alive(),
        }
    }

    fn ended(&self) -> Ended {
        match self {
            AnySession::Emu(s) => s.ended.clone(),
            AnySession::Ext(s) => s.ended.clone(),
        }
    }

    fn command(&mut self, port: &mut dyn NgPort, words: &[String], out: &mut Vec<String>) -> i32 {
        match self {
            AnySession::Emu(s) => s.command(port, words, out),
            AnySession::Ext(s) => s.command(words, out),
        }
    }

    fn take_problems(&mut self) -> Vec<String> {
        match self {
            AnySession::Emu(s) => std::mem::take(&mut s.st.problems),
            AnySession::Ext(s) => std::mem::take(&mut s.problems),
        }
    }

    fn monitor(&mut self, port: &mut dyn NgPort, out: &mut Vec<String>) -> bool {
        match self {
            AnySession::Emu(s) => s.monitor(port, out),
            AnySession::Ext(s) => s.monitor(out),
        }
    }

    fn close(&mut self, port: &mut dyn NgPort, out: &mut Vec<String>) {
        match self {
            AnySession::Emu(s) => s.close(port),
            AnySession::Ext(s) => s.close(out),
        }
    }
}

struct Sess {
    s: AnySession,
    /// Everything the session printed.
    lines: Vec<String>,
    /// Next line `S: expect` looks at.
    cursor: usize,
}

/// Runs a scenario.
pub struct Runner<'a> {
    k: &'a mut dyn Kernel,
    port: &'a mut dyn NgPort,
    base: PathBuf,
    sessions: BTreeMap<String, Sess>,
    outside: Outside,
    next_pid: u32,
    /// An external ngctl binary in place of the emulation.
    external: Option<External>,
    /// Print `@@ngharness at LINE` before each command (for the parent).
    pub markers: bool,
    /// Everything that happened (commands, outputs, session lines).
    pub transcript: Vec<String>,
}

fn lines_block(lines: &[String]) -> Vec<String> {
    if lines.is_empty() {
        vec!["(no output)".into()]
    } else {
        lines
            .iter()
            .map(|l| format!("| {}", l.replace('\t', "\\t")))
            .collect()
    }
}

fn is_error_line(l: &str, e: Errno) -> bool {
    let want = format!(": {}", errno::strerror(e));
    l.starts_with("ngctl: ") && l.ends_with(&want)
}

impl<'a> Runner<'a> {
    /// A runner; relative file names in ngctl commands resolve in `base`.
    pub fn new(k: &'a mut dyn Kernel, port: &'a mut dyn NgPort, base: &Path) -> Runner<'a> {
        Runner {
            k,
            port,
            base: base.to_path_buf(),
            sessions: BTreeMap::new(),
            outside: Outside::default(),
            next_pid: 40000 + std::process::id() % 10000,
            external: None,
            markers: false,
            transcript: Vec::new(),
        }
    }

    /// Runs `ngctl` statements with an external ngctl binary (through the
    /// bridge) instead of the emulation.
    pub fn use_external(&mut self, ext: External) {
        self.external = Some(ext);
    }

    /// The uid an external process runs as (None: root).
    fn uid(&self) -> Option<u32> {
        match self.k.cred() {
            Cred::Root => None,
            Cred::User => Some(super::kernel::USER_UID),
        }
    }

    fn pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.next_pid
    }

    /// Runs the commands; Err at the first unmet expectation.
    pub fn run(&mut self, sc: &Scenario) -> Result<(), Failure> {
        for c in &sc.cmds {
            if self.markers {
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "@@ngharness at {} {}", c.line, c.text);
                let _ = o.flush();
            }
            self.transcript.push(format!("{:>4}> {}", c.line, c.text));
            let mut res = self.exec(c)?;
            for l in &res.lines {
                self.transcript.push(format!("      {l}"));
            }
            self.settle();
            self.violations(c.line)?;
            if c.implied_ok() {
                self.check_ok(c, &res, c.line)?;
            }
            for e in &c.expects {
                self.transcript.push(format!("{:>4}  {}", e.line, e.text));
                self.check(c, e, &mut res)?;
                self.violations(e.line)?;
            }
        }
        Ok(())
    }

    fn violations(&mut self, line: usize) -> Result<(), Failure> {
        let v = self.k.take_violations();
        if v.is_empty() {
            return Ok(());
        }
        Err(Failure {
            line,
            msg: format!("kernel contract violation: {}", v[0]),
            details: v[1..].to_vec(),
        })
    }

    /// Runs the kernel until idle and lets sessions print what arrived.
    fn settle(&mut self) {
        let start = Instant::now();
        loop {
            let mut progress = false;
            while start.elapsed() < SETTLE_LIMIT && self.k.pump() {
                progress = true;
            }
            progress |= self.monitor();
            if !progress || start.elapsed() >= SETTLE_LIMIT {
                break;
            }
        }
    }

    /// The sessions' monitor threads.
    fn monitor(&mut self) -> bool {
        let mut any = false;
        for (name, ss) in self.sessions.iter_mut() {
            let was_alive = ss.s.alive();
            // An external ngctl's last lines may still be unread after it exited.
            if !was_alive && !matches!(ss.s, AnySession::Ext(_)) {
                continue;
            }
            let mut out = Vec::new();
            any |= ss.s.monitor(self.port, &mut out);
            for l in &out {
                self.transcript.push(format!("      [{name}] {l}"));
            }
            ss.lines.extend(out);
            if !was_alive {
                continue;
            }
            if let Ended::Signal(sig) = ss.s.ended() {
                self.transcript
                    .push(format!("      [{name}] (ngctl killed by {sig})"));
            }
        }
        any
    }

    fn exec(&mut self, c: &Command) -> Result<CmdResult, Failure> {
        let fail = |msg: String| Failure {
            line: c.line,
            msg,
            details: Vec::new(),
        };
        match &c.kind {
            CmdKind::Ngctl(args) => {
                let pid = self.pid();
                let o = match &self.external {
                    Some(x) => x.oneshot(args, &self.base, self.uid()),
                    None => {
                        let root = self.uid().is_none();
                        ngctl::oneshot_as(self.port, args, pid, &self.base, root)
                    }
                };
                if let Some(p) = o.problems.first() {
                    return Err(Failure {
                        line: c.line,
                        msg: p.clone(),
                        details: lines_block(&o.lines),
                    });
                }
                Ok(CmdResult {
                    status: o.status,
                    lines: o.lines,
                    ..CmdResult::ok(ProcKind::Ngctl)
                })
            }
            CmdKind::Session(name) => {
                let pid = self.pid();
                let mut out = Vec::new();
                let s = match &self.external {
                    Some(x) => {
                        AnySession::Ext(ExtSession::start(x, &self.base, self.uid(), &mut out))
                    }
                    None => AnySession::Emu(Session::start(self.port, pid, &self.base, &mut out)),
                };
                let status = match s.ended() {
                    Ended::Exit(n) => n,
                    _ => 0,
                };
                self.sessions.insert(
                    name.clone(),
                    Sess {
                        s,
                        lines: out.clone(),
                        cursor: 0,
                    },
                );
                Ok(CmdResult {
                    status,
                    lines: out,
                    ..CmdResult::ok(ProcKind::Ngctl)
                })
            }
            CmdKind::SessionCmd(name, words) => {
                self.monitor();
                let port = &mut *self.port;
                let Some(ss) = self.sessions.get_mut(name) else {
                    return Err(fail(format!("no session {name}")));
                };
                if !ss.s.alive() {
                    return Err(Failure {
                        line: c.line,
                        msg: format!("session {name} has ended ({})", ended_text(&ss.s.ended())),
                        details: lines_block(&ss.lines[ss.lines.len().saturating_sub(10)..]),
                    });
                }
                let mut out = Vec::new();
                let status = ss.s.command(port, words, &mut out);
                ss.lines.extend(out.iter().cloned());
                let problems = ss.s.take_problems();
                if let Some(p) = problems.first() {
                    return Err(Failure {
                        line: c.line,
                        msg: p.clone(),
                        details: lines_block(&out),
                    });
                }
                Ok(CmdResult {
                    status,
                    lines: out,
                    ..CmdResult::ok(ProcKind::Ngctl)
                })
            }
            CmdKind::Close(name) => {
                if let Some(mut ss) = self.sessions.remove(name) {
                    let mut out = Vec::new();
                    ss.s.close(self.port, &mut out);
                    for l in &out {
                        self.transcript.push(format!("      [{name}] {l}"));
                    }
                    if let Some(p) = ss.s.take_problems().first() {
                        return Err(fail(p.clone()));
                    }
                }
                Ok(CmdResult::ok(ProcKind::Other))
            }
            CmdKind::Kldload(m) => {
                let mut r = CmdResult::ok(ProcKind::Kld);
                if let Err(e) = self.k.kldload(m) {
                    r.status = 1;
                    r.errno = Some(e);
                    r.lines.push(match e {
                        e if e == fbsd_sys::EEXIST as Errno => {
                            format!("kldload: can't load {m}: module already loaded or in kernel")
                        }
                        e if e == fbsd_sys::ENOEXEC as Errno => format!(
                            "kldload: an error occurred while loading module {m}. Please check dmesg(8) for more details."
                        ),
                        e => format!("kldload: can't load {m}: {}", errno::strerror(e)),
                    });
                }
                Ok(r)
            }
            CmdKind::Kldunload(m) => {
                let mut r = CmdResult::ok(ProcKind::Kld);
                if !self.k.kldfind(m) {
                    r.status = 1;
                    r.errno = Some(fbsd_sys::ENOENT as Errno);
                    r.lines.push(format!("kldunload: can't find file {m}"));
                } else if let Err(e) = self.k.kldunload(m) {
                    r.status = 1;
                    r.errno = Some(e);
                    r.lines.push(format!(
                        "kldunload: can't unload file: {}",
                        errno::strerror(e)
                    ));
                }
                Ok(r)
            }
            CmdKind::Sysctl(name, value) => Ok(self.sysctl_cmd(name, *value)),
            CmdKind::As(cred) => {
                self.k.set_cred(*cred);
                Ok(CmdResult::ok(ProcKind::Other))
            }
            CmdKind::Wait(ms) => {
                self.k.advance(*ms);
                let end = Instant::now() + Duration::from_millis(*ms);
                while Instant::now() < end {
                    if !self.k.pump() {
                        self.monitor();
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                Ok(CmdResult::ok(ProcKind::Other))
            }
            _ => Ok(self.outside_cmd(&c.kind)),
        }
    }

    /// sysctl(8): `NAME: OLD` or `NAME: OLD -> NEW`, or its error texts
    /// (exit status 1).
    fn sysctl_cmd(&mut self, name: &str, value: Option<i64>) -> CmdResult {
        let mut r = CmdResult::ok(ProcKind::Kld);
        let arg = match value {
            Some(v) => format!("{name}={v}"),
            None => name.to_string(),
        };
        match self.k.sysctl(name, value) {
            Ok(old) => r.lines.push(match value {
                Some(v) => format!("{name}: {old} -> {v}"),
                None => format!("{name}: {old}"),
            }),
            Err(e) => {
                r.status = 1;
                let msg = if e == fbsd_sys::ENOENT as Errno {
                    format!("sysctl: unknown oid '{name}'")
                } else if e == fbsd_sys::EROFS as Errno {
                    format!("sysctl: oid '{name}' is read only")
                } else {
                    // The old value is printed before the write fails.
                    if let Ok(old) = self.k.sysctl(name, None) {
                        r.lines.push(format!("{name}: {old}"));
                    }
                    format!("sysctl: {arg}: {}", errno::strerror(e))
                };
                r.lines.push(msg);
                // sysctl(8) refuses a read-only OID itself: as EPERM.
                r.errno = Some(if e == fbsd_sys::EROFS as Errno {
                    fbsd_sys::EPERM as Errno
                } else {
                    e
                });
            }
        }
        r
    }

    fn outside_cmd(&mut self, kind: &CmdKind) -> CmdResult {
        let Runner { k, outside, .. } = self;
        let mut pump = || step(&mut **k);
        let r = match kind {
            CmdKind::UdpBind(n, a) => outside.udp_bind(n, *a),
            CmdKind::UdpSend(n, a, p) => outside.udp_send(n, *a, p),
            CmdKind::TcpListen(n, a) => outside.tcp_listen(n, *a),
            CmdKind::TcpConnect(n, a) => outside.tcp_connect(n, *a),
            CmdKind::TcpAccept(n, from) => outside.tcp_accept(n, from, &mut pump),
            CmdKind::TcpSend(n, p) => outside.tcp_send(n, p, &mut pump),
            CmdKind::TcpClose(n) => outside.tcp_close(n),
            _ => Ok(()),
        };
        let mut res = CmdResult::ok(ProcKind::Other);
        if let Err((e, t)) = r {
            res.status = 1;
            res.errno = Some(e);
            res.err_text = Some(t);
        }
        res
    }

    fn check_ok(&self, c: &Command, res: &CmdResult, line: usize) -> Result<(), Failure> {
        if res.status == 0 && res.err_text.is_none() {
            return Ok(());
        }
        let implied = if line == c.line {
            " (no `=>` line, so `=> ok` is implied)"
        } else {
            ""
        };
        Err(Failure {
            line,
            msg: format!(
                "`{}` (line {}) should succeed{implied}, but {}",
                c.text,
                c.line,
                res.describe()
            ),
            details: if res.kind == ProcKind::Other {
                Vec::new()
            } else {
                lines_block(&res.lines)
            },
        })
    }

    fn check(&mut self, c: &Command, e: &Expect, res: &mut CmdResult) -> Result<(), Failure> {
        let fail = |msg: String, details: Vec<String>| {
            Err(Failure {
                line: e.line,
                msg,
                details,
            })
        };
        match &e.kind {
            ExpKind::Ok => self.check_ok(c, res, e.line),
            ExpKind::Error(n) => {
                let good = match res.kind {
                    ProcKind::Ngctl => {
                        res.status == ngctl::EX_OSERR
                            && res.lines.iter().any(|l| is_error_line(l, *n))
                    }
                    ProcKind::Kld | ProcKind::Other => res.errno == Some(*n),
                };
                if good {
                    return Ok(());
                }
                let want = match res.kind {
                    ProcKind::Ngctl => format!(
                        "a line `ngctl: ...: {}` and exit status {}",
                        errno::strerror(*n),
                        ngctl::EX_OSERR
                    ),
                    _ => format!("error {} ({})", errno::name(*n), errno::strerror(*n)),
                };
                let details = if res.kind == ProcKind::Other {
                    Vec::new()
                } else {
                    lines_block(&res.lines)
                };
                fail(
                    format!(
                        "`{}` (line {}): expected {want}, but {}",
                        c.text,
                        c.line,
                        res.describe()
                    ),
                    details,
                )
            }
            ExpKind::Exit(n) => {
                if res.status == *n {
                    return Ok(());
                }
                fail(
                    format!(
                        "`{}` (line {}): expected exit status {n}, got {}",
                        c.text, c.line, res.status
                    ),
                    lines_block(&res.lines),
                )
            }
            ExpKind::Line(p) => match pattern::find(p, &res.lines, res.cursor) {
                Some(i) => {
                    res.cursor = i + 1;
                    Ok(())
                }
                None => {
                    let after = if res.cursor > 0 {
                        format!(" after output line {}", res.cursor)
                    } else {
                        String::new()
                    };
                    fail(
                        format!(
                            "no line matching `{p}`{after} in the output of `{}` (line {})",
                            c.text, c.line
                        ),
                        lines_block(&res.lines),
                    )
                }
            },
            ExpKind::NoLine(p) => match pattern::find(p, &res.lines, 0) {
                Some(i) => fail(
                    format!(
                        "output line `{}` of `{}` (line {}) matches `{p}`",
                        res.lines[i], c.text, c.line
                    ),
                    lines_block(&res.lines),
                ),
                None => Ok(()),
            },
            ExpKind::SessionExpect(s, p) => self.session_expect(e.line, s, p),
            ExpKind::Recv(n, d) => {
                self.outside_expect(e.line, |o, pump| o.expect_recv(n, None, d, pump))
            }
            ExpKind::RecvFrom(n, a, d) => {
                self.outside_expect(e.line, |o, pump| o.expect_recv(n, Some(*a), d, pump))
            }
            ExpKind::Silent(n) => self.outside_expect(e.line, |o, pump| o.expect_silent(n, pump)),
            ExpKind::Eof(n) => self.outside_expect(e.line, |o, pump| o.expect_eof(n, pump)),
        }
    }

    fn session_expect(&mut self, line: usize, s: &str, p: &Pattern) -> Result<(), Failure> {
        let end = Instant::now() + SESSION_WAIT;
        let mut last_look = false;
        loop {
            let Some(ss) = self.sessions.get_mut(s) else {
                return Err(Failure {
                    line,
                    msg: format!("no session {s}"),
                    details: Vec::new(),
                });
            };
            if let Some(i) = pattern::find(p, &ss.lines, ss.cursor) {
                ss.cursor = i + 1;
                return Ok(());
            }
            if !ss.s.alive() && !last_look {
                // What it printed before it exited.
                last_look = true;
                self.monitor();
                continue;
            }
            if Instant::now() >= end || !ss.s.alive() {
                let ended = if ss.s.alive() {
                    String::new()
                } else {
                    format!(" (ngctl {})", ended_text(&ss.s.ended()))
                };
                let from = ss.cursor;
                return Err(Failure {
                    line,
                    msg: format!("session {s} printed no line matching `{p}` within 2 s{ended}"),
                    details: std::iter::once(format!(
                        "session {s} output after the lines already matched:"
                    ))
                    .chain(lines_block(&ss.lines[from..]))
                    .collect(),
                });
            }
            self.settle();
            if !step(self.k) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    fn outside_expect(
        &mut self,
        line: usize,
        f: impl FnOnce(&mut Outside, &mut dyn FnMut() -> bool) -> Result<(), String>,
    ) -> Result<(), Failure> {
        let Runner { k, outside, .. } = self;
        let mut pump = || step(&mut **k);
        let r = f(outside, &mut pump);
        self.settle();
        r.map_err(|msg| Failure {
            line,
            msg,
            details: Vec::new(),
        })
    }

    /// Teardown and end-of-scenario checks; returns the problems found.
    pub fn finish(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        self.k.set_cred(Cred::Root);
        let names: Vec<String> = self.sessions.keys().cloned().collect();
        for n in names {
            if let Some(mut ss) = self.sessions.remove(&n) {
                ss.s.close(self.port, &mut Vec::new());
                problems.extend(ss.s.take_problems());
            }
        }
        self.outside.clear();
        self.settle();
        problems.extend(self.k.take_violations());
        // Shut down every node the scenario left behind, through a socket
        // node of our own, like an administrator cleaning up.
        match self.port.open(None) {
            Ok(p) => {
                let me = self
                    .query(p, ".", msg::cmd::NODEINFO)
                    .map(|m| msg::NodeInfo::decode_at(&m.data, 0).id);
                match self.query(p, ".", msg::cmd::LISTNODES) {
                    Some(m) => {
                        for ni in msg::decode_namelist(&m.data) {
                            if Some(ni.id) == me || ni.ty == "socket" || ni.ty == "harnessctl" {
                                continue;
                            }
                            let t = self.port.next_token(p);
                            let sd = NgMsg::request(
                                msg::NGM_GENERIC_COOKIE,
                                msg::cmd::SHUTDOWN,
                                t,
                                Vec::new(),
                            );
                            let _ = self
                                .port
                                .send_msg(p, &format!("[{:x}]:", ni.id), &sd.encode());
                        }
                    }
                    None => problems.push("teardown: LISTNODES got no reply".into()),
                }
                self.settle();
                if let Some(m) = self.query(p, ".", msg::cmd::LISTNODES) {
                    for ni in msg::decode_namelist(&m.data) {
                        if Some(ni.id) != me {
                            problems.push(format!(
                                "node [{:x}] (type {}, {} hook(s)) still exists after every socket was closed and every node shut down",
                                ni.id, ni.ty, ni.hooks
                            ));
                        }
                    }
                }
                self.port.close(p);
            }
            Err(e) => problems.push(format!(
                "teardown: cannot open a control socket: {}",
                errno::strerror(e)
            )),
        }
        self.settle();
        let open = self.port.open_sockets();
        if open != 0 {
            problems.push(format!(
                "{open} netgraph socket(s) still open after the teardown"
            ));
        }
        problems.extend(self.k.end_checks());
        problems
    }

    /// A generic request and its reply (teardown helper).
    fn query(&mut self, p: usize, path: &str, command: u32) -> Option<NgMsg> {
        let t = self.port.next_token(p);
        let m = NgMsg::request(msg::NGM_GENERIC_COOKIE, command, t, Vec::new());
        self.port.send_msg(p, path, &m.encode()).ok()?;
        let r = self.port.recv_msg(p, None, Wait::For(BLOCK)).ok()??;
        Some(NgMsg::decode(&r.bytes))
    }
}

/// One step of a bounded wait: run pending kernel work, or else let one
/// millisecond of kernel time pass (timers fire while the runner waits, as
/// they would in a running kernel). True if work ran.
fn step(k: &mut dyn Kernel) -> bool {
    if k.pump() {
        return true;
    }
    k.advance(1);
    false
}

fn ended_text(e: &Ended) -> String {
    match e {
        Ended::No => "running".into(),
        Ended::Exit(n) => format!("exited with status {n}"),
        Ended::Signal(s) => format!("killed by {s}"),
    }
}

/// Shows a payload (for reports).
pub fn show_payload(b: &[u8]) -> String {
    outside::show(b)
}
