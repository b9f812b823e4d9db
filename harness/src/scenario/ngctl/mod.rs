//! ngctl(8) and the parts of libnetgraph(3) it uses, over an [`NgPort`].
//!
//! Behaviour, output formats, error texts and exit statuses follow FreeBSD's
//! `usr.sbin/ngctl/*.c` and `lib/libnetgraph/{sock,msg}.c`: commands are
//! found by case-insensitive prefix or alias (`"s"` is ambiguous), option
//! parsing is BSD getopt(3), command results map to exit statuses 0 (ok or
//! quit), 64 (usage) and 71 (error), and messages are printed as `warn(3)`
//! does (`ngctl: send msg: Invalid argument`). stdout and stderr lines go to
//! one transcript, in order.
//!
//! Differences from FreeBSD, by necessity: the process ID in the default
//! node name `ngctl<pid>` is a harness counter; `-d`/`debug` only keep the
//! level (libnetgraph's debug log is not printed); the interactive prompt
//! `+ ` is not part of the transcript; `-f -` reads nothing (there is no
//! stdin); a call that would block forever in FreeBSD (recvfrom, poll) gives
//! up after 2 s and is recorded in [`Ngctl::problems`] so the scenario fails.
//!
//! Files: `mod.rs` the command table, getopt, output helpers, libnetgraph,
//! one-shot and interactive processes; `commands.rs` the commands.

mod commands;

use std::path::{Path, PathBuf};

use super::errno::{self, Errno};
use super::msg::{self, cmd, NgMsg, NodeInfo};
use super::port::{NgPort, PortId, Wait, BLOCK};

/// Command results (ngctl.h).
pub const CMDRTN_OK: i32 = 0;
/// Usage error.
pub const CMDRTN_USAGE: i32 = 1;
/// Command failed.
pub const CMDRTN_ERROR: i32 = 2;
/// `quit`.
pub const CMDRTN_QUIT: i32 = 3;

/// EX_USAGE.
pub const EX_USAGE: i32 = 64;
/// EX_NOINPUT.
pub const EX_NOINPUT: i32 = 66;
/// EX_OSERR.
pub const EX_OSERR: i32 = 71;

/// main()'s mapping of a command result to the exit status.
pub fn exit_status(rtn: i32) -> i32 {
    match rtn {
        CMDRTN_OK | CMDRTN_QUIT => 0,
        CMDRTN_USAGE => EX_USAGE,
        CMDRTN_ERROR => EX_OSERR,
        other => other,
    }
}

/// `DUMP_BYTES_PER_LINE`.
const DUMP_BYTES_PER_LINE: usize = 16;
/// main.c's WHITESPACE.
const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n', '\u{b}', '\u{c}'];
/// `write`'s buffer (BUF_SIZE).
const WRITE_BUF: usize = 8192;
/// `LINE_MAX` (lines longer than this are split by fgets).
const LINE_MAX: usize = 2048;

struct CmdDesc {
    name: &'static str,
    usage: &'static str,
    desc: &'static str,
    help: Option<&'static str>,
    aliases: &'static [&'static str],
}

/// The command table, in main.c's order.
const CMDS: &[CmdDesc] = &[
    CmdDesc { name: "config", usage: "config <path> [arguments]", desc: "get or set configuration of node at <path>", help: None, aliases: &[] },
    CmdDesc {
        name: "connect",
        usage: "connect [path] <relpath> <hook> <peerhook>",
        desc: "Connects hook <peerhook> of the node at <relpath> to <hook>",
        help: Some("The connect command creates a link between the two nodes at \"path\" and \"relpath\" using hooks \"hook\" and \"peerhook\", respectively. The \"relpath\", if not absolute, is specified relative to the node at \"path\". If \"path\" is omitted then \".\" is assumed."),
        aliases: &["join"],
    },
    CmdDesc {
        name: "debug",
        usage: "debug [level]",
        desc: "Get/set debugging verbosity level",
        help: Some("Without any argument, this command displays the current debugging verbosity level. If the argument is ``+'' or ``-'' the debug level is incremented or decremented; otherwise, it must be an absolute numerical level."),
        aliases: &[],
    },
    CmdDesc {
        name: "dot",
        usage: "dot [-c] [outputfile]",
        desc: "Produce a GraphViz (.dot) of the entire netgraph.",
        help: Some("If no outputfile is specified, stdout will be assumed. The optional -c argument generates a graph without separate structures for edge names. Such a graph is more compact."),
        aliases: &["graphviz", "confdot"],
    },
    CmdDesc { name: "help", usage: "help [command]", desc: "Show command summary or get more help on a specific command", help: None, aliases: &["?"] },
    CmdDesc {
        name: "list",
        usage: "list [-ln]",
        desc: "Show information about all nodes",
        help: Some("The list command shows information about every node that currently exists in the netgraph system. The optional -n argument limits this list to only those nodes with a global name assignment. The optional -l argument provides verbose output that includes hook information as well."),
        aliases: &["ls"],
    },
    CmdDesc {
        name: "mkpeer",
        usage: "mkpeer [path] <type> <hook> <peerhook>",
        desc: "Create and connect a new node to the node at \"path\"",
        help: Some("The mkpeer command atomically creates a new node of type \"type\" and connects it to the node at \"path\". The hooks used for the connection are \"hook\" on the original node and \"peerhook\" on the new node. If \"path\" is omitted then \".\" is assumed."),
        aliases: &[],
    },
    CmdDesc {
        name: "msg",
        usage: "msg path command [args ... ]",
        desc: "Send a netgraph control message to the node at \"path\"",
        help: Some("The msg command constructs a netgraph control message from the command name and ASCII arguments (if any) and sends that message to the node.  It does this by first asking the node to convert the ASCII message into binary format, and resending the result."),
        aliases: &["cmd"],
    },
    CmdDesc { name: "name", usage: "name <path> <name>", desc: "Assign name <name> to the node at <path>", help: None, aliases: &[] },
    CmdDesc { name: "read", usage: "read <filename>", desc: "Read and execute commands from a file", help: None, aliases: &["source", "."] },
    CmdDesc {
        name: "rmhook",
        usage: "rmhook [path] <hook>",
        desc: "Disconnect hook \"hook\" of the node at \"path\"",
        help: Some("The rmhook command forces the node at \"path\" to break the link formed by its hook \"hook\", if connected. If \"path\" is omitted then \".\" is assumed."),
        aliases: &["disconnect"],
    },
    CmdDesc {
        name: "show",
        usage: "show [-n] <path>",
        desc: "Show information about the node at <path>",
        help: Some("If the -n flag is given, hooks are not listed."),
        aliases: &["inquire", "info"],
    },
    CmdDesc { name: "shutdown", usage: "shutdown <path>", desc: "Shutdown the node at <path>", help: None, aliases: &["kill", "rmnode"] },
    CmdDesc { name: "status", usage: "status <path>", desc: "Get human readable status information from the node at <path>", help: None, aliases: &[] },
    CmdDesc { name: "types", usage: "types", desc: "Show information about all installed node types", help: None, aliases: &[] },
    CmdDesc {
        name: "write",
        usage: "write hook < -f file | byte ... >",
        desc: "Send a data packet down the hook named by \"hook\".",
        help: Some("The data may be contained in a file, or may be described directly on the command line by supplying a sequence of bytes."),
        aliases: &["w"],
    },
    CmdDesc { name: "quit", usage: "quit", desc: "Exit program", help: None, aliases: &["exit"] },
];

/// MatchCommand(): `s` is a prefix of the command name or of an alias,
/// ignoring case.
fn match_command(c: &CmdDesc, s: &str) -> bool {
    let pre = |full: &str| {
        s.len() <= full.len() && full.as_bytes()[..s.len()].eq_ignore_ascii_case(s.as_bytes())
    };
    pre(c.name) || c.aliases.iter().any(|a| pre(a))
}

/// `DumpAscii()`: 16 bytes per line, hex then printable characters.
pub fn dump_ascii(buf: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    for (n, chunk) in buf.chunks(DUMP_BYTES_PER_LINE).enumerate() {
        let mut s = format!("{:04x}:  ", n * DUMP_BYTES_PER_LINE);
        for k in 0..DUMP_BYTES_PER_LINE {
            match chunk.get(k) {
                Some(b) => s.push_str(&format!("{b:02x} ")),
                None => s.push_str("   "),
            }
        }
        s.push(' ');
        for k in 0..DUMP_BYTES_PER_LINE {
            match chunk.get(k) {
                Some(&b) if (0x20..0x7f).contains(&b) => s.push(b as char),
                Some(_) => s.push('.'),
                None => s.push(' '),
            }
        }
        lines.push(s);
    }
    lines
}

/// C `sscanf(s, "%i", &v)`: Some(v) if a number was converted.
pub fn scan_int(s: &str) -> Option<i32> {
    let b = s.trim_start_matches(WHITESPACE).as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let (radix, start) = if b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        (16, i + 2)
    } else if b.get(i) == Some(&b'0') {
        (8, i)
    } else {
        (10, i)
    };
    let mut v: i64 = 0;
    let mut n = 0;
    for &c in &b[start..] {
        let Some(d) = (c as char).to_digit(radix) else {
            break;
        };
        v = (v * radix as i64 + d as i64).min(i64::from(u32::MAX) + 1);
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let v = if neg { -v } else { v };
    // strtol semantics for an int conversion: out-of-range values clamp.
    Some(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
}

/// Options found by [`getopt`] (letter, argument) and `optind`.
type Opts = (Vec<(char, Option<String>)>, usize);

/// BSD getopt(3) over `av` (av[0] is the command name). Returns the options
/// and `optind`, or prints getopt's message and returns Err.
fn getopt(av: &[String], spec: &str, out: &mut Vec<String>) -> Result<Opts, ()> {
    let mut opts = Vec::new();
    let mut i = 1;
    while i < av.len() {
        let a = &av[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let chars: Vec<char> = a.chars().skip(1).collect();
        let mut k = 0;
        i += 1;
        while k < chars.len() {
            let c = chars[k];
            let pos = spec.find(c).filter(|_| c != ':');
            let Some(pos) = pos else {
                out.push(format!("ngctl: illegal option -- {c}"));
                return Err(());
            };
            if spec[pos + 1..].starts_with(':') {
                if k + 1 < chars.len() {
                    opts.push((c, Some(chars[k + 1..].iter().collect())));
                } else if i < av.len() {
                    opts.push((c, Some(av[i].clone())));
                    i += 1;
                } else {
                    out.push(format!("ngctl: option requires an argument -- {c}"));
                    return Err(());
                }
                break;
            }
            opts.push((c, None));
            k += 1;
        }
    }
    Ok((opts, i))
}

/// Per-process state of one ngctl.
pub struct Ngctl {
    /// Its socket node, once created.
    pub port: Option<PortId>,
    /// The node name it asked for.
    pub name: String,
    /// `debug` level (kept, not acted upon).
    pub debug: i32,
    /// Directory relative file names (`read`, `write -f`, `-f`) resolve in.
    pub base: PathBuf,
    /// Calls that would block forever in FreeBSD, and similar findings.
    pub problems: Vec<String>,
}

/// One ngctl with its port and output, for the duration of a call.
struct Ctx<'a> {
    st: &'a mut Ngctl,
    port: &'a mut dyn NgPort,
    out: &'a mut Vec<String>,
}

impl Ngctl {
    /// A new ngctl process whose node will be named `name`.
    pub fn new(name: &str, base: &Path) -> Ngctl {
        Ngctl {
            port: None,
            name: name.to_string(),
            debug: 0,
            base: base.to_path_buf(),
            problems: Vec::new(),
        }
    }

    fn ctx<'a>(&'a mut self, port: &'a mut dyn NgPort, out: &'a mut Vec<String>) -> Ctx<'a> {
        Ctx {
            st: self,
            port,
            out,
        }
    }

    /// `NgMkSockNode(name, &csock, &dsock)`, printing `can't create node`
    /// on failure (ngctl then exits with status 71).
    pub fn create_node(
        &mut self,
        port: &mut dyn NgPort,
        out: &mut Vec<String>,
    ) -> Result<(), Errno> {
        match port.open(Some(&self.name)) {
            Ok(p) => {
                self.port = Some(p);
                Ok(())
            }
            Err(e) => {
                out.push(format!("ngctl: can't create node: {}", errno::strerror(e)));
                Err(e)
            }
        }
    }

    /// The process exits: its sockets close.
    pub fn exit(&mut self, port: &mut dyn NgPort) {
        if let Some(p) = self.port.take() {
            port.close(p);
        }
    }

    /// `DoCommand(ac, av)`.
    pub fn do_command(
        &mut self,
        port: &mut dyn NgPort,
        av: &[String],
        out: &mut Vec<String>,
    ) -> i32 {
        self.ctx(port, out).do_command(av)
    }

    /// `DoParseCommand(line)`: split on whitespace, then DoCommand.
    pub fn do_parse_command(
        &mut self,
        port: &mut dyn NgPort,
        line: &str,
        out: &mut Vec<String>,
    ) -> i32 {
        let av: Vec<String> = line
            .split(WHITESPACE)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        self.do_command(port, &av, out)
    }

    /// The help summary interactive ngctl prints when it starts.
    pub fn help_summary(out: &mut Vec<String>) {
        help_all(out);
    }

    /// `MsgRead()`: read one incoming control message and print it.
    /// Returns true if the control socket was at end of file (its node is
    /// gone): FreeBSD's ngctl then sends on the dead socket and is killed
    /// by SIGPIPE, printing nothing.
    pub fn msg_read(&mut self, port: &mut dyn NgPort, out: &mut Vec<String>) -> bool {
        self.ctx(port, out).msg_read()
    }
}

fn help_all(out: &mut Vec<String>) {
    out.push("Available commands:".to_string());
    for c in CMDS {
        out.push(format!("  {:<10} {}", c.name, c.desc));
    }
}

impl Ctx<'_> {
    fn p(&self) -> PortId {
        self.st.port.unwrap_or(0)
    }

    fn print(&mut self, s: &str) {
        for l in s.split('\n') {
            self.out.push(l.to_string());
        }
    }

    fn warn(&mut self, what: &str, e: Errno) {
        self.out
            .push(format!("ngctl: {what}: {}", errno::strerror(e)));
    }

    fn warnx(&mut self, what: &str) {
        self.out.push(format!("ngctl: {what}"));
    }

    fn resolve(&self, file: &str) -> PathBuf {
        let p = Path::new(file);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.st.base.join(p)
        }
    }

    // ---- libnetgraph ------------------------------------------------------

    /// NgDeliverMsg(): send, then wait for a reply to arrive if the command
    /// has NGM_HASREPLY and this is not a response.
    fn deliver(&mut self, path: &str, m: &NgMsg) -> Result<(), Errno> {
        let p = self.p();
        self.port.send_msg(p, path, &m.encode())?;
        if m.cmd & msg::NGM_HASREPLY != 0
            && m.flags & msg::NGF_RESP == 0
            && !self.port.msg_ready(p, Wait::For(BLOCK))
        {
            self.st.problems.push(format!(
                "ngctl would block forever in poll() after sending \"{}\" to \"{path}\": no reply within {} s",
                m.cmdstr(),
                BLOCK.as_secs()
            ));
        }
        Ok(())
    }

    /// NgSendMsg().
    fn send_msg(
        &mut self,
        path: &str,
        cookie: u32,
        command: u32,
        args: Vec<u8>,
    ) -> Result<u32, Errno> {
        let p = self.p();
        let token = self.port.next_token(p);
        let m = NgMsg::request(cookie, command, token, args);
        self.deliver(path, &m)?;
        Ok(token)
    }

    /// NgRecvMsg() / NgAllocRecvMsg() (buflen None): blocking.
    fn recv_msg(&mut self, buflen: Option<usize>) -> Result<(String, NgMsg), Errno> {
        let p = self.p();
        match self.port.recv_msg(p, buflen, Wait::For(BLOCK))? {
            Some(r) => Ok((r.from, NgMsg::decode(&r.bytes))),
            None => {
                self.st.problems.push(format!(
                    "ngctl would block forever in recvfrom() on its control socket: nothing arrived within {} s",
                    BLOCK.as_secs()
                ));
                Err(fbsd_sys::ETIMEDOUT as Errno)
            }
        }
    }

    /// NgSendAsciiMsg(): ASCII2BINARY to the target, then the binary message.
    fn send_ascii_msg(&mut self, path: &str, text: &str) -> Result<u32, Errno> {
        let t = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let (command, args) = match t.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (
                &t[..i],
                t[i..].trim_start_matches(|c: char| c.is_ascii_whitespace()),
            ),
            None => (t, ""),
        };
        let mut ascii = NgMsg {
            cmdstr: msg::cfield::<{ msg::CMDSTRSIZ }>(command),
            ..NgMsg::default()
        };
        ascii.data = args.as_bytes().to_vec();
        ascii.data.push(0);
        ascii.arglen = ascii.data.len() as u32;
        self.send_msg(
            path,
            msg::NGM_GENERIC_COOKIE,
            cmd::ASCII2BINARY,
            ascii.encode(),
        )?;
        let (_, reply) = self.recv_msg(None)?;
        let mut binary = NgMsg::decode(&reply.data);
        let p = self.p();
        binary.token = self.port.next_token(p);
        binary.version = msg::NG_VERSION;
        binary.arglen = binary.data.len() as u32;
        self.deliver(path, &binary)?;
        Ok(binary.token)
    }
}

/// Result of a one-shot `ngctl ARGS...` process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit status.
    pub status: i32,
    /// stdout and stderr lines, in order.
    pub lines: Vec<String>,
    /// Calls that would have blocked forever.
    pub problems: Vec<String>,
}

/// Runs `ngctl ARGS...` as a process: its own node `ngctl<pid>` (or `-n`),
/// gone when it exits.
pub fn oneshot(port: &mut dyn NgPort, args: &[String], pid: u32, base: &Path) -> Outcome {
    let mut out = Vec::new();
    let mut av = vec!["ngctl".to_string()];
    av.extend_from_slice(args);
    let usage = |out: &mut Vec<String>| {
        out.push("usage: ngctl [-d] [-f file] [-n name] [command ...]".to_string());
    };
    let mut st = Ngctl::new(&format!("ngctl{pid}"), base);
    let Ok((opts, optind)) = getopt(&av, "df:n:", &mut out) else {
        usage(&mut out);
        return Outcome {
            status: EX_USAGE,
            lines: out,
            problems: Vec::new(),
        };
    };
    let mut file: Option<Vec<u8>> = None;
    for (c, arg) in opts {
        let arg = arg.unwrap_or_default();
        match c {
            'd' => st.debug += 1,
            'f' if arg == "-" => file = Some(Vec::new()),
            'f' => match std::fs::read(st.base.join(&arg)) {
                Ok(b) => file = Some(b),
                Err(e) => {
                    out.push(format!(
                        "ngctl: {arg}: {}",
                        errno::strerror(errno::from_io(&e))
                    ));
                    return Outcome {
                        status: EX_NOINPUT,
                        lines: out,
                        problems: Vec::new(),
                    };
                }
            },
            _ => st.name = strlcpy_owned(&arg, msg::NODESIZ),
        }
    }
    let rest = &av[optind..];
    if st.create_node(port, &mut out).is_err() {
        return Outcome {
            status: EX_OSERR,
            lines: out,
            problems: st.problems,
        };
    }
    let rtn = if rest.is_empty() {
        if let Some(text) = file {
            let mut c = st.ctx(port, &mut out);
            c.read_file(&String::from_utf8_lossy(&text))
        } else {
            out.push("ngctl: no command specified".to_string());
            usage(&mut out);
            st.exit(port);
            return Outcome {
                status: EX_USAGE,
                lines: out,
                problems: st.problems,
            };
        }
    } else {
        st.do_command(port, rest, &mut out)
    };
    st.exit(port);
    Outcome {
        status: exit_status(rtn),
        lines: out,
        problems: st.problems,
    }
}

fn strlcpy_owned(s: &str, n: usize) -> String {
    super::port::strlcpy(s, n).to_string()
}

/// How an interactive ngctl ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Still running.
    No,
    /// Exited with this status.
    Exit(i32),
    /// Killed by a signal (name).
    Signal(&'static str),
}

/// A persistent interactive ngctl (`session S`).
pub struct Session {
    /// Its process state.
    pub st: Ngctl,
    /// How it ended, if it did.
    pub ended: Ended,
}

impl Session {
    /// Starts interactive ngctl: creates its node (exit 71 on failure) and
    /// prints the command summary, as DoInteractive() does.
    pub fn start(port: &mut dyn NgPort, pid: u32, base: &Path, out: &mut Vec<String>) -> Session {
        let mut st = Ngctl::new(&format!("ngctl{pid}"), base);
        if st.create_node(port, out).is_err() {
            return Session {
                st,
                ended: Ended::Exit(EX_OSERR),
            };
        }
        help_all(out);
        Session {
            st,
            ended: Ended::No,
        }
    }

    /// Is it still running?
    pub fn alive(&self) -> bool {
        self.ended == Ended::No
    }

    /// One command line typed at the prompt. Returns the command's result
    /// mapped like an exit status (0, 64, 71); `quit` ends the session.
    pub fn command(
        &mut self,
        port: &mut dyn NgPort,
        words: &[String],
        out: &mut Vec<String>,
    ) -> i32 {
        let line = words.join(" ");
        let rtn = self.st.do_parse_command(port, &line, out);
        if rtn == CMDRTN_QUIT {
            self.st.exit(port);
            self.ended = Ended::Exit(0);
        }
        exit_status(rtn)
    }

    /// The monitor thread: prints every control message and data packet that
    /// has arrived. Returns true if anything was read.
    pub fn monitor(&mut self, port: &mut dyn NgPort, out: &mut Vec<String>) -> bool {
        let mut any = false;
        while self.alive() {
            let Some(p) = self.st.port else { break };
            let mut did = false;
            if port.msg_ready(p, Wait::Now) {
                did = true;
                // A disconnected control socket reads as EOF; MsgRead then
                // sends on it and ngctl dies of SIGPIPE.
                if self.st.msg_read(port, out) {
                    self.st.exit(port);
                    self.ended = Ended::Signal("SIGPIPE");
                    break;
                }
            }
            if self.alive() && port.data_ready(p, Wait::Now) {
                did = true;
                match port.recv_data(p, None, Wait::Now) {
                    Ok(Some(r)) if r.bytes.is_empty() => {
                        out.push(format!("ngctl: EOF from hook \"{}\"?", r.from));
                        self.st.exit(port);
                        self.ended = Ended::Exit(EX_OSERR);
                    }
                    Ok(Some(r)) => {
                        out.push(format!("Rec'd data packet on hook \"{}\":", r.from));
                        out.extend(dump_ascii(&r.bytes));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        out.push(format!("ngctl: reading hook \"\": {}", errno::strerror(e)));
                        self.st.exit(port);
                        self.ended = Ended::Exit(EX_OSERR);
                    }
                }
            }
            if !did {
                break;
            }
            any = true;
        }
        any
    }

    /// The session's ngctl exits (`close S`).
    pub fn close(&mut self, port: &mut dyn NgPort) {
        self.st.exit(port);
        if self.ended == Ended::No {
            self.ended = Ended::Exit(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::commands::node_line;
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_matching() {
        let find = |w: &str| -> Vec<&str> {
            CMDS.iter()
                .filter(|c| match_command(c, w))
                .map(|c| c.name)
                .collect()
        };
        assert_eq!(find("ls"), vec!["list"]);
        assert_eq!(find("LIST"), vec!["list"]);
        // "source" is an alias of read.
        assert_eq!(find("s"), vec!["read", "show", "shutdown", "status"]);
        assert_eq!(find("sh"), vec!["show", "shutdown"]);
        assert_eq!(find("sho"), vec!["show"]);
        assert_eq!(find("w"), vec!["write"]);
        assert_eq!(find("."), vec!["read"]);
        assert_eq!(find("kill"), vec!["shutdown"]);
        // "confdot" is an alias of dot.
        assert_eq!(find("co"), vec!["config", "connect", "dot"]);
        assert_eq!(find("exit"), vec!["quit"]);
        assert!(find("listx").is_empty());
        assert_eq!(find("d"), vec!["debug", "dot", "rmhook"]);
    }

    #[test]
    fn getopt_like_bsd() {
        let mut out = Vec::new();
        let (o, i) = getopt(&s(&["list", "-ln"]), "ln", &mut out).unwrap();
        assert_eq!((o.len(), i), (2, 2));
        let (o, i) = getopt(&s(&["ngctl", "-n", "foo", "list"]), "df:n:", &mut out).unwrap();
        assert_eq!(o, vec![('n', Some("foo".into()))]);
        assert_eq!(i, 3);
        let (o, _) = getopt(&s(&["ngctl", "-nfoo"]), "df:n:", &mut out).unwrap();
        assert_eq!(o, vec![('n', Some("foo".into()))]);
        let (_, i) = getopt(&s(&["show", "foo:", "-n"]), "n", &mut out).unwrap();
        assert_eq!(i, 1);
        assert!(getopt(&s(&["list", "-x"]), "ln", &mut out).is_err());
        assert_eq!(out, vec!["ngctl: illegal option -- x"]);
        out.clear();
        assert!(getopt(&s(&["ngctl", "-n"]), "df:n:", &mut out).is_err());
        assert_eq!(out, vec!["ngctl: option requires an argument -- n"]);
    }

    #[test]
    fn scanf_percent_i() {
        assert_eq!(scan_int("0x68"), Some(0x68));
        assert_eq!(scan_int("104"), Some(104));
        assert_eq!(scan_int("010"), Some(8));
        assert_eq!(scan_int("-1"), Some(-1));
        assert_eq!(scan_int("12abc"), Some(12));
        assert_eq!(scan_int("0x"), Some(0));
        assert_eq!(scan_int("abc"), None);
        assert_eq!(scan_int("\"hi\""), None);
        assert_eq!(scan_int("99999999999"), Some(i32::MAX));
    }

    #[test]
    fn hex_dump_format() {
        let l = dump_ascii(b"hi\n");
        assert_eq!(
            l,
            vec![format!(
                "0000:  68 69 0a {} hi.{}",
                "   ".repeat(13),
                " ".repeat(13)
            )]
        );
        assert_eq!(l[0].len(), 7 + 48 + 1 + 16);
        let l = dump_ascii(&(0u8..20).collect::<Vec<_>>());
        assert_eq!(l.len(), 2);
        assert!(l[1].starts_with("0010:  10 11 12 13 "));
        assert!(dump_ascii(&[]).is_empty());
    }

    #[test]
    fn node_lines() {
        let ni = NodeInfo {
            name: "ec".into(),
            ty: "echo".into(),
            id: 0x1f,
            hooks: 2,
        };
        assert_eq!(
            node_line(&ni),
            "  Name: ec              Type: echo            ID: 0000001f   Num hooks: 2"
        );
        let ni = NodeInfo {
            name: String::new(),
            ty: "socket".into(),
            id: 1,
            hooks: 0,
        };
        assert_eq!(
            node_line(&ni),
            "  Name: <unnamed>       Type: socket          ID: 00000001   Num hooks: 0"
        );
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status(CMDRTN_OK), 0);
        assert_eq!(exit_status(CMDRTN_QUIT), 0);
        assert_eq!(exit_status(CMDRTN_USAGE), 64);
        assert_eq!(exit_status(CMDRTN_ERROR), 71);
    }
}
