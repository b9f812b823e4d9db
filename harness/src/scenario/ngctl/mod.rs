//! ngctl(8) and the parts of libnetgraph(3) it uses, over an [`NgPort`].
//!
//! Behaviour, output formats, error texts and exit statuses follow FreeBSD
//! 15.0's `usr.sbin/ngctl` (main.c, config.c, connect.c, debug.c, dot.c,
//! list.c, mkpeer.c, msg.c, name.c, rmhook.c, show.c, shutdown.c, status.c,
//! types.c, write.c) and `lib/libnetgraph/{sock,msg}.c`: commands are found
//! by case-insensitive prefix or alias (`"s"` is ambiguous), options are
//! BSD getopt(3) (`-d -f -j -n`, acted on in order), command results map to
//! exit statuses 0 (ok or quit), 64 (usage) and 71 (error), `-f` errors to
//! 66 and `-j` to 68 or 71; command files are read with getline(3); help
//! texts wrap at 63 columns; messages are printed as `warn(3)` does
//! (`ngctl: send msg: Invalid argument`). A send on a socket whose node is
//! gone (EPIPE) raises SIGPIPE: ngctl dies at once, printing nothing more
//! and losing what stdout still held (exit status 141, as a shell reports
//! it). stdout and stderr lines go to one
//! transcript in the order they reach it: a session's stdout is a terminal
//! (line-buffered, so in the order written); a one-shot ngctl's stdout is a
//! file, as in the VM, so it is fully buffered and its lines come after the
//! stderr lines written before it exits (or before its 32 KiB buffer fills).
//!
//! `-d` and `debug` set libnetgraph's debug level, whose log (warn(3)
//! lines: failed calls from level 1, every message sent and received and
//! every packet read from level 2, their ASCII form and bytes from level 3)
//! is printed as libnetgraph prints it.
//!
//! Differences from FreeBSD, by necessity: the process ID in the default
//! node name `ngctl<pid>` is a harness counter; the harness has no jails
//! (`-j NAME` always finds none); NgMkSockNode's log names the failing call
//! from its errno (bind for EADDRINUSE, the kldload of ng_socket.ko for
//! ENOENT/ENOEXEC, else socket); the interactive prompt `+ ` is not part of
//! the transcript; `-f -` reads nothing (there is no stdin); a call that
//! would block forever in FreeBSD (recvfrom, poll) gives up after 2 s and
//! is recorded in [`Ngctl::problems`] so the scenario fails.
//!
//! Files: `mod.rs` the command table, getopt, output helpers, libnetgraph,
//! one-shot and interactive processes; `commands.rs` the commands;
//! `nglog.rs` libnetgraph's debug log.

mod commands;
mod nglog;

use std::path::{Path, PathBuf};

use super::errno::{self, Errno};
use super::msg::{self, cmd, NgMsg, NodeInfo};
use super::port::{NgPort, PortId, Received, Wait, AF_NETGRAPH, BLOCK};

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
/// main.c's MAX_ARGS: a command line has at most MAX_ARGS - 1 words.
const MAX_ARGS: usize = 512;

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

/// C `isspace()` (the C locale): blank, `\t`, `\n`, `\v`, `\f`, `\r`.
fn c_isspace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// C `sscanf(s, "%i", &v)`: Some(v) if a number was converted. As
/// FreeBSD's vfscanf: the digits go through strtoimax (saturating at the
/// intmax_t limits), and the result is stored into the `int` by truncation.
pub fn scan_int(s: &str) -> Option<i32> {
    let b = s.trim_start_matches(c_isspace).as_bytes();
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
    // Magnitude, saturated just past what intmax_t holds.
    let limit: i128 = i128::from(i64::MAX) + 1;
    let mut v: i128 = 0;
    let mut n = 0;
    for &c in &b[start..] {
        let Some(d) = (c as char).to_digit(radix) else {
            break;
        };
        v = (v * i128::from(radix) + i128::from(d)).min(limit);
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let v = if neg { -v } else { v };
    let v = v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    // The store into an int keeps the low 32 bits.
    Some(v as i32)
}

/// Options found by [`getopt`] (letter, argument) and `optind`.
type Opts = (Vec<(char, Option<String>)>, usize);

/// BSD getopt(3) over `av` (av[0] is the command name): the options in
/// order, `optind`, and getopt's message if it stopped at a bad option
/// (after the options before it, which the caller still sees, as a C
/// caller has acted on them by then).
fn getopt_all(av: &[String], spec: &str) -> (Opts, Option<String>) {
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
                return ((opts, i), Some(format!("ngctl: illegal option -- {c}")));
            };
            if spec[pos + 1..].starts_with(':') {
                if k + 1 < chars.len() {
                    opts.push((c, Some(chars[k + 1..].iter().collect())));
                } else if i < av.len() {
                    opts.push((c, Some(av[i].clone())));
                    i += 1;
                } else {
                    return (
                        (opts, i),
                        Some(format!("ngctl: option requires an argument -- {c}")),
                    );
                }
                break;
            }
            opts.push((c, None));
            k += 1;
        }
    }
    ((opts, i), None)
}

/// [`getopt_all`] for a command: its options and `optind`, or getopt's
/// message printed and Err (the command then returns its usage).
fn getopt(av: &[String], spec: &str, out: &mut Vec<String>) -> Result<Opts, ()> {
    match getopt_all(av, spec) {
        (o, None) => Ok(o),
        (_, Some(e)) => {
            out.push(e);
            Err(())
        }
    }
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
    /// stdout's buffer when stdout is fully buffered (a one-shot ngctl
    /// writing to a file or pipe, as in the VM): its lines reach the output
    /// when it fills or at exit, after any stderr line written meanwhile.
    /// None: line-buffered (a terminal).
    pub stdout_buf: Option<Vec<String>>,
    /// The signal that killed it: a send on a socket whose node is gone
    /// (EPIPE) raises SIGPIPE, which libnetgraph does not block.
    pub killed: Option<&'static str>,
}

/// stdio's buffer for a regular file on FreeBSD (`st_blksize` of UFS).
pub const STDOUT_BUFFER: usize = 32768;

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
            stdout_buf: None,
            killed: None,
        }
    }

    /// Writes out what stdout holds (exit, or a full buffer).
    pub fn flush_stdout(&mut self, out: &mut Vec<String>) {
        if let Some(b) = self.stdout_buf.as_mut() {
            out.append(b);
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
                // An unnamed node (-n ""): NgMkSockNode asked for its ID
                // with NGM_NODEINFO, which the debug log shows.
                if let Some((m, r)) = port.take_open_exchange(p) {
                    if self.debug >= 2 {
                        let mut c = self.ctx(port, out);
                        c.log_sending(".", &m);
                        c.log_received(&r);
                    }
                }
                Ok(())
            }
            Err(e) => {
                if self.debug >= 1 {
                    // NgMkSockNode's own log of the call that failed: the
                    // name's bind when it is taken, the kldload of
                    // ng_socket.ko when that is what failed, else socket().
                    let what = if e == fbsd_sys::EADDRINUSE as Errno {
                        format!("bind({})", super::port::strlcpy(&self.name, msg::NODESIZ))
                    } else if e == fbsd_sys::ENOENT as Errno || e == fbsd_sys::ENOEXEC as Errno {
                        "can't load ng_socket.ko".to_string()
                    } else {
                        "socket".to_string()
                    };
                    out.push(format!("ngctl: {what}: {}", errno::strerror(e)));
                }
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
        self.do_command(port, &split_line(line.as_bytes()), out)
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

    /// Writes lines to stdout (nothing once killed).
    fn print(&mut self, s: &str) {
        if self.st.killed.is_some() {
            return;
        }
        for l in s.split('\n') {
            match self.st.stdout_buf.as_mut() {
                Some(b) => {
                    b.push(l.to_string());
                    let bytes: usize = b.iter().map(|l| l.len() + 1).sum();
                    if bytes >= STDOUT_BUFFER {
                        self.out.append(b);
                    }
                }
                None => self.out.push(l.to_string()),
            }
        }
    }

    fn warn(&mut self, what: &str, e: Errno) {
        if self.st.killed.is_some() {
            return;
        }
        self.out
            .push(format!("ngctl: {what}: {}", errno::strerror(e)));
    }

    fn warnx(&mut self, what: &str) {
        if self.st.killed.is_some() {
            return;
        }
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
        let sg = super::port::strlcpy(path, msg::PATHSIZ);
        if self.st.debug >= 2 {
            self.log_sending(sg, m);
        }
        if let Err(e) = self.port.send_msg(p, path, &m.encode()) {
            if e == fbsd_sys::EPIPE as Errno {
                self.st.killed = Some("SIGPIPE");
                return Err(e);
            }
            if self.st.debug >= 1 {
                self.warn(&format!("sendto({sg})"), e);
            }
            return Err(e);
        }
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

    /// recvfrom() on the control socket as NgRecvMsg() makes it, with its
    /// log; `Ok(None)`: nothing within the wait.
    fn ng_recv(&mut self, buflen: Option<usize>) -> Result<Option<Received>, Errno> {
        let p = self.p();
        match self.port.recv_msg(p, buflen, Wait::For(BLOCK)) {
            Err(e) => {
                if self.st.debug >= 1 {
                    self.warn("recvfrom", e);
                }
                Err(e)
            }
            Ok(Some(r)) => {
                if self.st.debug >= 2 && !(r.bytes.is_empty() && r.from.is_empty()) {
                    self.log_received(&r);
                }
                Ok(Some(r))
            }
            Ok(None) => Ok(None),
        }
    }

    /// NgRecvMsg() / NgAllocRecvMsg() (buflen None): blocking.
    fn recv_msg(&mut self, buflen: Option<usize>) -> Result<(String, NgMsg), Errno> {
        match self.ng_recv(buflen)? {
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
        let t = text.trim_start_matches(c_isspace);
        let (command, args) = match t.find(c_isspace) {
            Some(i) => (&t[..i], t[i..].trim_start_matches(c_isspace)),
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

    // ---- commands ---------------------------------------------------------
}

/// HelpCmd()'s description lines: skip blanks, take up to 63 characters,
/// then back up to the last blank that follows a word (a line never ends in
/// a blank). A single word longer than that, which FreeBSD would loop on
/// (none of its texts has one), is cut.
fn wrap_help(h: &str) -> Vec<String> {
    const MAXCOL: usize = 63;
    let b = h.as_bytes();
    let mut lines = Vec::new();
    let mut s = 0;
    while s < b.len() {
        while s < b.len() && (b[s] as char).is_ascii_whitespace() || b.get(s) == Some(&0x0b) {
            s += 1;
        }
        let rest = &b[s..];
        let mut len = rest.len().min(MAXCOL);
        while len > 0 && len < rest.len() && rest[len] != b' ' && rest[len] != b'\t' {
            len -= 1;
        }
        if len == 0 && !rest.is_empty() {
            len = rest.len().min(MAXCOL);
        }
        lines.push(String::from_utf8_lossy(&rest[..len]).into_owned());
        s += len;
    }
    lines
}

/// `DoParseCommand()`'s split: the line as a C string (up to its first NUL)
/// cut into words at WHITESPACE with strtok(3), at most MAX_ARGS - 1 of them.
fn split_line(line: &[u8]) -> Vec<String> {
    let line = line.split(|&c| c == 0).next().unwrap_or(&[]);
    line.split(|&c| WHITESPACE.contains(&char::from(c)))
        .filter(|w| !w.is_empty())
        .take(MAX_ARGS - 1)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
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

/// ngctl's usage line (FreeBSD 15.0).
pub const USAGE: &str =
    "usage: ngctl [-j jail] [-d] [-f filename] [-n nodename] [command [argument ...]]";

/// EX_NOHOST.
pub const EX_NOHOST: i32 = 68;

/// Runs `ngctl ARGS...` as a process: its own node `ngctl<pid>` (or `-n`),
/// gone when it exits.
pub fn oneshot(port: &mut dyn NgPort, args: &[String], pid: u32, base: &Path) -> Outcome {
    oneshot_as(port, args, pid, base, true)
}

/// EX_NOPERM.
pub const EX_NOPERM: i32 = 77;

/// [`oneshot`] run by root (`root`) or by an unprivileged user.
pub fn oneshot_as(
    port: &mut dyn NgPort,
    args: &[String],
    pid: u32,
    base: &Path,
    root: bool,
) -> Outcome {
    let mut out = Vec::new();
    let mut av = vec!["ngctl".to_string()];
    av.extend_from_slice(args);
    let done = |status: i32, lines: Vec<String>, problems: Vec<String>| Outcome {
        status,
        lines,
        problems,
    };
    let mut st = Ngctl::new(&format!("ngctl{pid}"), base);
    st.stdout_buf = Some(Vec::new());
    // Options take effect as getopt returns them: a file that cannot be
    // opened ends ngctl before a bad option after it is seen.
    let ((opts, optind), bad) = getopt_all(&av, "df:j:n:");
    let mut file: Option<Vec<u8>> = None;
    let mut jail: Option<String> = None;
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
                    return done(EX_NOINPUT, out, Vec::new());
                }
            },
            'j' => jail = Some(arg),
            _ => st.name = strlcpy_owned(&arg, msg::NODESIZ),
        }
    }
    if let Some(e) = bad {
        out.push(e);
        out.push(USAGE.to_string());
        return done(EX_USAGE, out, Vec::new());
    }
    if let Some(j) = jail {
        // jail_getid(3) then jail_attach(2). The harness has no jails: a
        // name or a number other than 0 is not found (EX_NOHOST), and jail
        // 0, which jail_getid returns without asking the kernel, cannot be
        // attached to: EPERM (EX_NOPERM) for a user, whom jail_attach
        // refuses before it looks for the jail, EINVAL (EX_OSERR) for root.
        if j.is_empty() {
            out.push("ngctl: invalid jail name".to_string());
            out.push(USAGE.to_string());
            return done(EX_USAGE, out, Vec::new());
        }
        let numeric = j.bytes().all(|c| c.is_ascii_digit());
        if numeric && j.bytes().all(|c| c == b'0') {
            out.push("ngctl: cannot attach to jail".to_string());
            return done(if root { EX_OSERR } else { EX_NOPERM }, out, Vec::new());
        }
        out.push(if numeric {
            // strtoul: the jid as a number.
            let jid = j.parse::<u64>().unwrap_or(u64::MAX) as u32 as i32;
            format!("ngctl: jail {jid} not found")
        } else {
            format!("ngctl: jail \"{j}\" not found")
        });
        return done(EX_NOHOST, out, Vec::new());
    }
    let rest = &av[optind..];
    if st.create_node(port, &mut out).is_err() {
        return done(EX_OSERR, out, st.problems);
    }
    let rtn = if rest.is_empty() {
        if let Some(text) = file {
            let mut c = st.ctx(port, &mut out);
            c.read_file(&text)
        } else {
            out.push("ngctl: no command specified".to_string());
            out.push(USAGE.to_string());
            st.exit(port);
            return done(EX_USAGE, out, st.problems);
        }
    } else {
        st.do_command(port, rest, &mut out)
    };
    st.exit(port);
    if st.killed.is_some() {
        // Killed: what stdout still held is lost; the shell sees 128 + 13.
        return done(128 + libc::SIGPIPE, out, st.problems);
    }
    st.flush_stdout(&mut out);
    done(exit_status(rtn), out, st.problems)
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
        if let Some(sig) = self.st.killed {
            self.st.exit(port);
            self.ended = Ended::Signal(sig);
            return 128 + libc::SIGPIPE;
        }
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
                let got = port.recv_data(p, None, Wait::Now);
                // NgRecvData's log.
                match &got {
                    Err(e) if self.st.debug >= 1 => {
                        out.push(format!("ngctl: recvfrom: {}", errno::strerror(*e)));
                    }
                    Ok(Some(r)) if self.st.debug >= 2 => {
                        out.push(format!(
                            "ngctl: READ {} from hook \"{}\" ({} bytes)",
                            if r.bytes.is_empty() { "EOF" } else { "PACKET" },
                            r.from,
                            r.bytes.len()
                        ));
                        if self.st.debug >= 3 {
                            out.extend(
                                nglog::debug_bytes(&r.bytes)
                                    .iter()
                                    .map(|l| format!("ngctl: {l}")),
                            );
                        }
                    }
                    _ => {}
                }
                match got {
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
    fn getopt_stops_at_the_first_bad_option() {
        let ((o, i), e) = getopt_all(&s(&["ngctl", "-d", "-f", "x", "-q", "-n", "y"]), "df:j:n:");
        assert_eq!(o, vec![('d', None), ('f', Some("x".into()))]);
        assert_eq!(i, 5);
        assert_eq!(e.as_deref(), Some("ngctl: illegal option -- q"));
    }

    #[test]
    fn lines_split_as_strtok() {
        assert_eq!(
            split_line(b"  a\tb\x0bc\x0cd\r\n"),
            s(&["a", "b", "c", "d"])
        );
        assert_eq!(split_line(b"a b\0c d"), s(&["a", "b"]));
        let long = "w ".repeat(600);
        assert_eq!(split_line(long.as_bytes()).len(), MAX_ARGS - 1);
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
        // strtoimax, then the low 32 bits go into the int.
        assert_eq!(scan_int("99999999999"), Some(99_999_999_999_i64 as i32));
        assert_eq!(scan_int("4294967297"), Some(1));
        assert_eq!(scan_int("0x100000041"), Some(0x41));
        assert_eq!(scan_int("99999999999999999999"), Some(i64::MAX as i32));
        assert_eq!(scan_int("-99999999999999999999"), Some(i64::MIN as i32));
        assert_eq!(scan_int("\u{b}7"), Some(7));
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
    fn help_descriptions_wrap_as_freebsd_15() {
        let c = CMDS.iter().find(|c| c.name == "connect").unwrap();
        assert_eq!(
            wrap_help(c.help.unwrap()),
            vec![
                "The connect command creates a link between the two nodes at",
                "\"path\" and \"relpath\" using hooks \"hook\" and \"peerhook\",",
                "respectively. The \"relpath\", if not absolute, is specified",
                "relative to the node at \"path\". If \"path\" is omitted then \".\"",
                "is assumed.",
            ]
        );
        // Every line: at most 63 characters, no blank at either end.
        for c in CMDS {
            for l in wrap_help(c.help.unwrap_or("")) {
                assert!(l.len() <= 63 && l.trim() == l, "{}: {l:?}", c.name);
            }
        }
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status(CMDRTN_OK), 0);
        assert_eq!(exit_status(CMDRTN_QUIT), 0);
        assert_eq!(exit_status(CMDRTN_USAGE), 64);
        assert_eq!(exit_status(CMDRTN_ERROR), 71);
    }
}
