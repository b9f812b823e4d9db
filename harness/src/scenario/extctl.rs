//! An external ngctl(8) binary in place of the emulation (`ngharness run
//! --ngctl FILE`): the runner's `ngctl WORDS` and `session S` statements run
//! a real ngctl — FreeBSD's, built for Linux — through the preload library
//! against the same `ngharness serve`, exactly as `vm-tests/` runs it on
//! FreeBSD:
//!
//! * `ngctl WORDS`: one process, its standard input `/dev/null`, its
//!   standard output and error one pipe (so stdout is fully buffered and
//!   stderr is not, as in the VM's output file), started in the scenario's
//!   directory; its exit status is the command's.
//! * `session S`: one interactive ngctl on a pseudo-terminal (`TERM=dumb`),
//!   so its line editor, prompt and monitor thread run as an
//!   administrator's do. Each command typed is followed by a marker line
//!   (`ngsock-mark-N`, an unknown command) whose error line tells where the
//!   command's output ends; the echoed input, prompts, bells and terminal
//!   escapes are removed. An interactive ngctl has no exit status per
//!   command, so a session command's status is read from its output, as
//!   the VM runtime does: 64 if it printed a `ngctl: usage:` line, 71 if it
//!   printed another `ngctl: ` line, else 0. `close S` types `quit`.
//!
//! Every wait is bounded: a one-shot ngctl that has not exited within
//! [`ONESHOT_LIMIT`], or a session command whose marker has not come back
//! within [`SESSION_LIMIT`], is killed and recorded as a problem (the
//! scenario fails).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ngctl::{Ended, Outcome, EX_OSERR, EX_USAGE};

/// How long a one-shot ngctl may run.
pub const ONESHOT_LIMIT: Duration = Duration::from_secs(20);
/// How long a session may take to show its prompt, run one command, or exit.
pub const SESSION_LIMIT: Duration = Duration::from_secs(10);
/// How long a session must have been quiet at its prompt before the next
/// line is typed.
const QUIET: Duration = Duration::from_millis(50);

/// The external ngctl binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// Its path (absolute, so it does not depend on the working directory).
    pub path: PathBuf,
}

fn describe_status(st: std::process::ExitStatus) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        _ => (-1, None),
    }
}

/// The text lines of `bytes` (a final line without newline included).
fn text_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

/// Is `l` a line of libnetgraph's debug log from level 2 on (messages and
/// packets as they pass), rather than a warning about a failure?
fn is_debug_log(l: &str) -> bool {
    let Some(t) = l.strip_prefix("ngctl: ") else {
        return false;
    };
    const LOG: &[&str] = &[
        "SENDING ",
        "RECEIVED ",
        "SOCKADDR: ",
        "NG_MESG :",
        "  ",
        "READ ",
        "WRITE PACKET ",
    ];
    let hex = t.len() > 7
        && t.as_bytes()[..4].iter().all(u8::is_ascii_hexdigit)
        && t[4..].starts_with(":  ");
    hex || LOG.iter().any(|p| t.starts_with(p))
}

/// The status an interactive ngctl's command had, from its output: 64 for
/// a `ngctl: usage:` line, 71 for another warning, else 0 (libnetgraph's
/// debug log of messages and packets is not a warning).
pub fn session_status(lines: &[String]) -> i32 {
    let warnings: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_start())
        .filter(|l| l.starts_with("ngctl: ") && !is_debug_log(l))
        .collect();
    if warnings.iter().any(|l| l.starts_with("ngctl: usage: ")) {
        EX_USAGE
    } else if !warnings.is_empty() {
        EX_OSERR
    } else {
        0
    }
}

/// Runs the command as `uid` (with that gid and no supplementary groups)
/// when given: a real process change of user, as `su` makes it, so the
/// dynamic linker still honours `LD_PRELOAD` (it would not with only the
/// effective uid changed).
fn run_as(cmd: &mut Command, uid: Option<u32>) {
    let Some(uid) = uid else { return };
    // SAFETY: in the child before exec; only async-signal-safe calls.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            libc::seteuid(0);
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl External {
    /// A runner for the binary at `path`.
    pub fn new(path: &Path) -> Result<External, String> {
        let path = path
            .canonicalize()
            .map_err(|e| format!("the ngctl binary {}: {e}", path.display()))?;
        Ok(External { path })
    }

    /// `ngctl ARGS...` as one process, in directory `base`, as `uid`
    /// (None: root).
    pub fn oneshot(&self, args: &[String], base: &Path, uid: Option<u32>) -> Outcome {
        let done = |status, lines, problems| Outcome {
            status,
            lines,
            problems,
        };
        let (reader, writer) = match std::io::pipe() {
            Ok(p) => p,
            Err(e) => return done(-1, Vec::new(), vec![format!("pipe: {e}")]),
        };
        let w2 = match writer.try_clone() {
            Ok(w) => w,
            Err(e) => return done(-1, Vec::new(), vec![format!("pipe: {e}")]),
        };
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .current_dir(base)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(w2));
        run_as(&mut cmd, uid);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return done(
                    -1,
                    Vec::new(),
                    vec![format!("cannot run {}: {e}", self.path.display())],
                )
            }
        };
        drop(cmd);
        let collector = std::thread::spawn(move || {
            let mut r = reader;
            let mut all = Vec::new();
            let _ = r.read_to_end(&mut all);
            all
        });
        let mut problems = Vec::new();
        let status = match wait_bounded(&mut child, ONESHOT_LIMIT) {
            Some(st) => {
                let (code, sig) = describe_status(st);
                // SIGPIPE is ngctl's own end after sending on a socket
                // whose node is gone; the shell's status, 128 + 13, says
                // so. Any other signal is a crash.
                match sig {
                    Some(s) if s != libc::SIGPIPE => problems.push(format!(
                        "ngctl was killed by signal {s} ({})",
                        signal_name(s)
                    )),
                    _ => {}
                }
                code
            }
            None => {
                problems.push(format!(
                    "ngctl did not exit within {} s (it would block forever): killed",
                    ONESHOT_LIMIT.as_secs()
                ));
                -1
            }
        };
        let out = collector.join().unwrap_or_default();
        done(status, text_lines(&out), problems)
    }
}

/// Waits for `child` at most `limit`; kills it (our own child, by its
/// handle) and returns None when it is still running then.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// A session's terminal output made into lines: carriage returns and
/// bells dropped, terminal escape sequences removed, leading prompts
/// stripped.
fn normalize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut it = line.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\r' | '\u{7}' => {}
            '\u{1b}' => match it.peek() {
                Some('[') => {
                    it.next();
                    while let Some(&d) = it.peek() {
                        it.next();
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                Some('(') | Some(')') => {
                    it.next();
                    it.next();
                }
                _ => {}
            },
            c => out.push(c),
        }
    }
    let mut s = out.as_str();
    while let Some(rest) = s.strip_prefix("+ ") {
        s = rest;
    }
    s.to_string()
}

fn marker(k: u32) -> String {
    format!("ngsock-mark-{k}")
}

fn marker_line(k: u32) -> String {
    format!("ngctl: \"{}\": unknown command", marker(k))
}

/// An interactive ngctl on a pseudo-terminal.
pub struct ExtSession {
    child: Option<Child>,
    master: Option<std::fs::File>,
    /// Bytes read and not yet a complete line.
    partial: Vec<u8>,
    /// Complete lines (normalized), echoes and markers included.
    lines: Vec<String>,
    /// Lines already handed to the runner.
    delivered: usize,
    /// Typed lines whose echo is still to be dropped.
    echoes: Vec<String>,
    next_mark: u32,
    /// A prompt was printed since the last line was typed.
    prompted: bool,
    /// When output last arrived.
    last_output: Instant,
    /// How it ended.
    pub ended: Ended,
    /// Problems (a command that did not complete...).
    pub problems: Vec<String>,
}

fn openpty() -> Result<(OwnedFd, OwnedFd), String> {
    let (mut m, mut s) = (-1, -1);
    // SAFETY: openpty with out-pointers to two ints and no name, termios
    // or window size.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r < 0 {
        return Err(format!("openpty: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) })
}

impl ExtSession {
    /// Starts `ngctl` interactively in `base` as `uid` (None: root) and
    /// waits for its first prompt; `out` gets what it printed (the command
    /// summary).
    pub fn start(
        ext: &External,
        base: &Path,
        uid: Option<u32>,
        out: &mut Vec<String>,
    ) -> ExtSession {
        let failed = |msg: String| -> Result<ExtSession, String> { Err(msg) };
        let r = (|| {
            let (master, slave) = openpty()?;
            let mut cmd = Command::new(&ext.path);
            let dup = |f: &OwnedFd| f.try_clone().map_err(|e| format!("dup: {e}"));
            cmd.current_dir(base)
                .env("TERM", "dumb")
                .stdin(Stdio::from(dup(&slave)?))
                .stdout(Stdio::from(dup(&slave)?))
                .stderr(Stdio::from(dup(&slave)?));
            // SAFETY: in the child before exec: a new session whose
            // controlling terminal is the pty (its stdin).
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    libc::setsid();
                    libc::ioctl(0, libc::TIOCSCTTY, 0);
                    Ok(())
                });
            }
            run_as(&mut cmd, uid);
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => return failed(format!("cannot run {}: {e}", ext.path.display())),
            };
            drop(cmd);
            drop(slave);
            // SAFETY: fcntl on a descriptor we own.
            unsafe {
                let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
            Ok(ExtSession::with(
                Some(child),
                Some(std::fs::File::from(master)),
                Ended::No,
                Vec::new(),
            ))
        })();
        let mut s = match r {
            Ok(s) => s,
            Err(e) => {
                out.push(e.clone());
                return ExtSession::dead(e);
            }
        };
        // Type nothing before the first prompt: input that arrives while
        // the line editor sets up the terminal may be discarded. Nor before
        // the monitor thread catches SIGUSR1, which the main thread sends it
        // for every line typed (its default action ends the process).
        s.settle();
        s.wait_monitor();
        if s.alive() {
            s.sync(out);
        } else {
            s.read();
            s.flush_partial();
            out.extend(s.take());
        }
        s
    }

    fn with(
        child: Option<Child>,
        master: Option<std::fs::File>,
        ended: Ended,
        problems: Vec<String>,
    ) -> ExtSession {
        ExtSession {
            child,
            master,
            partial: Vec::new(),
            lines: Vec::new(),
            delivered: 0,
            echoes: Vec::new(),
            next_mark: 0,
            prompted: false,
            last_output: Instant::now(),
            ended,
            problems,
        }
    }

    /// Waits (bounded) until a monitor thread, if ngctl has one (it is
    /// running by the first prompt), catches SIGUSR1: /proc/PID/status's
    /// `Threads` and `SigCgt`.
    fn wait_monitor(&mut self) {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return;
        };
        let end = Instant::now() + SESSION_LIMIT;
        while self.alive() && Instant::now() < end {
            let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                return;
            };
            let field = |name: &str| {
                st.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let threads: u32 = field("Threads:").parse().unwrap_or(1);
            let caught = u64::from_str_radix(&field("SigCgt:"), 16).unwrap_or(0);
            if threads < 2 || caught & (1 << (libc::SIGUSR1 - 1)) != 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A session whose ngctl could not be started.
    fn dead(problem: String) -> ExtSession {
        ExtSession::with(None, None, Ended::Exit(EX_OSERR), vec![problem])
    }

    /// Is it still running? (Reaps it when it has exited.)
    pub fn alive(&mut self) -> bool {
        if self.ended != Ended::No {
            return false;
        }
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        if let Ok(Some(st)) = child.try_wait() {
            self.ended = match describe_status(st) {
                (_, Some(s)) => Ended::Signal(signal_name(s)),
                (c, None) => Ended::Exit(c),
            };
            // What it printed last.
            self.read();
            self.flush_partial();
            return false;
        }
        true
    }

    /// Reads what is available; true if anything was read.
    fn read(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let mut any = false;
        let Some(master) = self.master.as_mut() else {
            return false;
        };
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    any = true;
                    self.partial.extend_from_slice(&buf[..n]);
                }
            }
        }
        if any {
            self.last_output = Instant::now();
            if std::env::var_os("NGHARNESS_EXTCTL_TRACE").is_some() {
                eprintln!("extctl: {:?}", String::from_utf8_lossy(&self.partial));
            }
        }
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = self.partial.drain(..=i).collect();
            if l.starts_with(b"+ ") {
                self.prompted = true;
            }
            let text = normalize(&String::from_utf8_lossy(&l[..i]));
            if let Some(k) = self.echoes.iter().position(|e| *e == text) {
                // The terminal's echo of a line we typed.
                if k == 0 {
                    self.echoes.remove(0);
                    continue;
                }
            }
            self.lines.push(text);
        }
        if self.partial.starts_with(b"+ ") {
            self.prompted = true;
        }
        any
    }

    /// Waits (bounded) until ngctl shows its prompt again after the line
    /// typed last and has printed nothing for [`QUIET`]. Typing the next
    /// line earlier can hang or kill FreeBSD's ngctl: its main thread
    /// wakes the monitor thread with SIGUSR1, which is lost when it comes
    /// while the monitor is printing a packet (the main thread then waits
    /// forever for the monitor's lock), and is fatal before the monitor
    /// has installed its handler, just after the first prompt.
    fn settle(&mut self) {
        let end = Instant::now() + SESSION_LIMIT;
        while self.alive() && Instant::now() < end {
            self.read();
            if self.prompted && self.last_output.elapsed() >= QUIET {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The last, unfinished line becomes a line (the process has ended).
    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let text = normalize(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
            if !text.is_empty() {
                self.lines.push(text);
            }
        }
    }

    /// Lines not yet handed out, without marker lines.
    fn take(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        for l in &self.lines[self.delivered..] {
            if !(l.starts_with("ngctl: \"ngsock-mark-") && l.ends_with("\": unknown command")) {
                v.push(l.clone());
            }
        }
        self.delivered = self.lines.len();
        v
    }

    fn type_line(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.push(b'\n');
        self.echoes.push(line.to_string());
        // The prompt it is typed at is not a prompt after it.
        if normalize(&String::from_utf8_lossy(&self.partial)).is_empty() {
            self.partial.clear();
        }
        self.prompted = false;
        if std::env::var_os("NGHARNESS_EXTCTL_TRACE").is_some() {
            eprintln!("extctl: typed {line:?}");
        }
        if let Some(m) = self.master.as_mut() {
            let _ = m.write_all(&b);
        }
    }

    /// Types a marker and waits for its line; everything before it goes to
    /// `out`. False if the marker did not come back.
    fn sync(&mut self, out: &mut Vec<String>) -> bool {
        let k = self.next_mark;
        self.next_mark += 1;
        self.type_line(&marker(k));
        let want = marker_line(k);
        let end = Instant::now() + SESSION_LIMIT;
        loop {
            self.read();
            if let Some(i) = self.lines[self.delivered..].iter().position(|l| *l == want) {
                let stop = self.delivered + i + 1;
                let keep = self.lines.split_off(stop);
                out.extend(self.take());
                self.lines.extend(keep);
                return true;
            }
            if !self.alive() {
                self.read();
                self.flush_partial();
                out.extend(self.take());
                return false;
            }
            if Instant::now() >= end {
                out.extend(self.take());
                self.problems.push(format!(
                    "the interactive ngctl did not finish a command within {} s: killed",
                    SESSION_LIMIT.as_secs()
                ));
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// One command line typed at the prompt: its output and status (read
    /// from the output, see the module documentation).
    pub fn command(&mut self, words: &[String], out: &mut Vec<String>) -> i32 {
        // Whatever arrived before belongs to the monitor, not this command.
        self.settle();
        let _ = self.take();
        let line = words.join(" ");
        self.type_line(&line);
        self.settle();
        let mut got = Vec::new();
        let finished = self.sync(&mut got);
        let status = session_status(&got);
        out.extend(got);
        if !finished && self.ended == Ended::No {
            self.alive();
        }
        status
    }

    /// What the session printed since last asked (its monitor thread's
    /// lines). True if anything arrived.
    pub fn monitor(&mut self, out: &mut Vec<String>) -> bool {
        self.read();
        self.alive();
        let v = self.take();
        let any = !v.is_empty();
        out.extend(v);
        any
    }

    /// Types `quit` and waits (bounded) for the exit.
    pub fn close(&mut self, out: &mut Vec<String>) {
        if self.alive() {
            self.settle();
            self.type_line("quit");
            let end = Instant::now() + SESSION_LIMIT;
            while self.alive() && Instant::now() < end {
                self.read();
                std::thread::sleep(Duration::from_millis(2));
            }
            if self.alive() {
                self.problems.push(format!(
                    "the interactive ngctl did not exit within {} s of quit: killed",
                    SESSION_LIMIT.as_secs()
                ));
                self.kill();
            }
        }
        self.read();
        self.flush_partial();
        out.extend(self.take());
    }

    fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // Our own child, by its handle.
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.ended == Ended::No {
            self.ended = Ended::Signal("SIGKILL");
        }
    }
}

impl Drop for ExtSession {
    fn drop(&mut self) {
        if self.ended == Ended::No {
            self.kill();
        }
    }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGTTIN => "SIGTTIN",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_lines_normalized() {
        assert_eq!(normalize("+ + Rec'd data\r"), "Rec'd data");
        assert_eq!(normalize("\u{1b}[?1034hlist\u{7}"), "list");
        assert_eq!(normalize("\u{1b}(Bx"), "x");
        assert_eq!(normalize("  Name: a"), "  Name: a");
    }

    #[test]
    fn session_statuses_from_output() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(session_status(&s(&["There are 1 total nodes:"])), 0);
        assert_eq!(
            session_status(&s(&["ngctl: send msg: Invalid argument"])),
            EX_OSERR
        );
        assert_eq!(
            session_status(&s(&[
                "ngctl: illegal option -- x",
                "ngctl: usage: list [-ln]"
            ])),
            EX_USAGE
        );
        assert_eq!(
            session_status(&s(&[
                "ngctl: SENDING MESSAGE:",
                "ngctl:   vers   8",
                "ngctl: 0000:  05 00 00 00 6e 67  ....ng",
                "ngctl: READ PACKET from hook \"e\" (1 bytes)",
            ])),
            0
        );
        assert_eq!(
            session_status(&s(&[
                "ngctl: SENDING MESSAGE:",
                "ngctl: sendto(nosuch:): No such file or directory",
                "ngctl: send msg: No such file or directory",
            ])),
            EX_OSERR
        );
    }
}
