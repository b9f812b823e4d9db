//! The ngctl(8) commands (`main.c`'s command table: `mkpeer`, `connect`,
//! `name`, `rmhook`, `shutdown`, `list`, `show`, `types`, `status`, `config`,
//! `msg`, `write`, `dot`, `read`, `help`, `debug`...), as methods of a
//! running ngctl.

use super::*;

impl Ctx<'_> {
    pub(super) fn do_command(&mut self, av: &[String]) -> i32 {
        if av.is_empty() || av[0].is_empty() {
            return CMDRTN_OK;
        }
        let Some(c) = self.find_command(&av[0]) else {
            return CMDRTN_ERROR;
        };
        let rtn = match c.name {
            "config" => self.config_cmd(av),
            "connect" => self.connect_cmd(av),
            "debug" => self.debug_cmd(av),
            "dot" => self.dot_cmd(av),
            "help" => self.help_cmd(av),
            "list" => self.list_cmd(av),
            "mkpeer" => self.mkpeer_cmd(av),
            "msg" => self.msg_cmd(av),
            "name" => self.name_cmd(av),
            "read" => self.read_cmd(av),
            "rmhook" => self.rmhook_cmd(av),
            "show" => self.show_cmd(av),
            "shutdown" => self.shutdown_cmd(av),
            "status" => self.status_cmd(av),
            "types" => self.types_cmd(av),
            "write" => self.write_cmd(av),
            _ => CMDRTN_QUIT,
        };
        if self.st.killed.is_some() {
            // Nothing more is printed by a process killed in a send.
            return CMDRTN_ERROR;
        }
        if rtn == CMDRTN_USAGE {
            self.warnx(&format!("usage: {}", c.usage));
        }
        rtn
    }

    pub(super) fn find_command(&mut self, s: &str) -> Option<&'static CmdDesc> {
        let found: Vec<&'static CmdDesc> = CMDS.iter().filter(|c| match_command(c, s)).collect();
        match found.as_slice() {
            [c] => Some(c),
            [] => {
                self.warnx(&format!("\"{s}\": unknown command"));
                None
            }
            _ => {
                self.warnx(&format!("\"{s}\": ambiguous command"));
                None
            }
        }
    }

    /// `ReadFile()`: every line read with getline(3), whatever its length;
    /// `#` in the first column makes a comment; the first failing command
    /// stops the file.
    pub(super) fn read_file(&mut self, text: &[u8]) -> i32 {
        for (i, line) in text.split_inclusive(|&c| c == b'\n').enumerate() {
            if line.first() == Some(&b'#') {
                continue;
            }
            let av = split_line(line);
            let rtn = self.do_command(&av);
            if self.st.killed.is_some() {
                return rtn;
            }
            if rtn != 0 {
                self.warnx(&format!("line {}: error in file", i + 1));
                return rtn;
            }
        }
        CMDRTN_OK
    }

    pub(super) fn read_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() != 2 {
            return CMDRTN_USAGE;
        }
        match std::fs::read(self.resolve(&av[1])) {
            Ok(b) => self.read_file(&b),
            Err(e) => {
                self.warn(&av[1], errno::from_io(&e));
                CMDRTN_ERROR
            }
        }
    }

    pub(super) fn help_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() <= 1 {
            let mut lines = Vec::new();
            help_all(&mut lines);
            for l in lines {
                self.print(&l);
            }
            return CMDRTN_OK;
        }
        if let Some(c) = self.find_command(&av[1]) {
            self.print(&format!("usage:    {}", c.usage));
            if !c.aliases.is_empty() {
                self.print(&format!("Aliases:  {}", c.aliases.join(", ")));
            }
            self.print(&format!("Summary:  {}", c.desc));
            if let Some(h) = c.help {
                self.print("Description:");
                for l in wrap_help(h) {
                    self.print(&format!("  {l}"));
                }
            }
        }
        CMDRTN_OK
    }

    pub(super) fn debug_cmd(&mut self, av: &[String]) -> i32 {
        match av.len() {
            2 => {
                let level = match av[1].as_str() {
                    "+" => self.st.debug + 1,
                    "-" => self.st.debug - 1,
                    s => {
                        let l = scan_int_atoi(s);
                        if l < 0 {
                            return CMDRTN_USAGE;
                        }
                        l
                    }
                };
                // NgSetDebug() leaves the level alone when given a negative one.
                if level >= 0 {
                    self.st.debug = level;
                }
                CMDRTN_OK
            }
            1 => {
                self.print(&format!("Current debug level is {}", self.st.debug));
                CMDRTN_OK
            }
            _ => CMDRTN_USAGE,
        }
    }

    pub(super) fn mkpeer_cmd(&mut self, av: &[String]) -> i32 {
        let (path, a) = match av.len() {
            5 => (av[1].as_str(), &av[2..]),
            4 => (".", &av[1..]),
            _ => return CMDRTN_USAGE,
        };
        let arg = msg::mkpeer(&a[0], &a[1], &a[2]);
        self.generic_no_reply(path, cmd::MKPEER, arg, "send msg")
    }

    pub(super) fn connect_cmd(&mut self, av: &[String]) -> i32 {
        let (path, a) = match av.len() {
            5 => (av[1].as_str(), &av[2..]),
            4 => (".", &av[1..]),
            _ => return CMDRTN_USAGE,
        };
        let arg = msg::connect(&a[0], &a[1], &a[2]);
        self.generic_no_reply(path, cmd::CONNECT, arg, "send msg")
    }

    pub(super) fn name_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() != 3 {
            return CMDRTN_USAGE;
        }
        self.generic_no_reply(&av[1].clone(), cmd::NAME, msg::name32(&av[2]), "send msg")
    }

    pub(super) fn rmhook_cmd(&mut self, av: &[String]) -> i32 {
        let (path, hook) = match av.len() {
            3 => (av[1].as_str(), av[2].as_str()),
            2 => (".", av[1].as_str()),
            _ => return CMDRTN_USAGE,
        };
        self.generic_no_reply(path, cmd::RMHOOK, msg::name32(hook), "send msg")
    }

    pub(super) fn shutdown_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() != 2 {
            return CMDRTN_USAGE;
        }
        self.generic_no_reply(&av[1].clone(), cmd::SHUTDOWN, Vec::new(), "shutdown")
    }

    pub(super) fn generic_no_reply(
        &mut self,
        path: &str,
        command: u32,
        arg: Vec<u8>,
        what: &str,
    ) -> i32 {
        match self.send_msg(path, msg::NGM_GENERIC_COOKIE, command, arg) {
            Ok(_) => CMDRTN_OK,
            Err(e) => {
                self.warn(what, e);
                CMDRTN_ERROR
            }
        }
    }

    /// Sends a generic request with no arguments and reads the reply
    /// (`warn("send msg")` / `warn("recv msg")` on failure).
    pub(super) fn generic_query(
        &mut self,
        path: &str,
        command: u32,
        send_what: &str,
        recv_what: &str,
    ) -> Option<NgMsg> {
        if let Err(e) = self.send_msg(path, msg::NGM_GENERIC_COOKIE, command, Vec::new()) {
            self.warn(send_what, e);
            return None;
        }
        match self.recv_msg(None) {
            Ok((_, m)) => Some(m),
            Err(e) => {
                self.warn(recv_what, e);
                None
            }
        }
    }

    pub(super) fn list_cmd(&mut self, av: &[String]) -> i32 {
        let Ok((opts, optind)) = getopt(av, "ln", self.out) else {
            return CMDRTN_USAGE;
        };
        let list_hooks = opts.iter().any(|(c, _)| *c == 'l');
        let named_only = opts.iter().any(|(c, _)| *c == 'n');
        if av.len() != optind {
            return CMDRTN_USAGE;
        }
        let command = if named_only {
            cmd::LISTNAMES
        } else {
            cmd::LISTNODES
        };
        let Some(resp) = self.generic_query(".", command, "send msg", "recv msg") else {
            return CMDRTN_ERROR;
        };
        let nodes = msg::decode_namelist(&resp.data);
        self.print(&format!(
            "There are {} total {}nodes:",
            nodes.len() as i32,
            if named_only { "named " } else { "" }
        ));
        let mut rtn = CMDRTN_OK;
        if list_hooks {
            for (k, ni) in nodes.iter().enumerate() {
                let path = format!("[{:x}]:", ni.id);
                rtn = self.show_cmd(&["show".to_string(), path]);
                if rtn != CMDRTN_OK {
                    break;
                }
                if k + 1 < nodes.len() {
                    self.print("");
                }
            }
        } else {
            for ni in &nodes {
                self.print(&node_line(ni));
            }
        }
        rtn
    }

    pub(super) fn show_cmd(&mut self, av: &[String]) -> i32 {
        let Ok((opts, optind)) = getopt(av, "n", self.out) else {
            return CMDRTN_USAGE;
        };
        let no_hooks = opts.iter().any(|(c, _)| *c == 'n');
        if av.len() != optind + 1 {
            return CMDRTN_USAGE;
        }
        let path = av[optind].clone();
        let Some(resp) = self.generic_query(&path, cmd::LISTHOOKS, "send msg", "recv msg") else {
            return CMDRTN_ERROR;
        };
        let (ni, links) = msg::decode_hooklist(&resp.data);
        self.print(&node_line(&ni));
        if !no_hooks && ni.hooks > 0 {
            let row = |a: &str, b: &str, c: &str, d: &str, e: &str| {
                format!("  {a:<15} {b:<15} {c:<12} {d:<15} {e:<15}")
            };
            self.print(&row(
                "Local hook",
                "Peer name",
                "Peer type",
                "Peer ID",
                "Peer hook",
            ));
            self.print(&row(
                "----------",
                "---------",
                "---------",
                "-------",
                "---------",
            ));
            for l in &links {
                let name = if l.peer.name.is_empty() {
                    "<unnamed>"
                } else {
                    &l.peer.name
                };
                let id = format!("{:08x}", l.peer.id);
                self.print(&row(&l.ourhook, name, &l.peer.ty, &id, &l.peerhook));
            }
        }
        CMDRTN_OK
    }

    pub(super) fn types_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() != 1 {
            return CMDRTN_USAGE;
        }
        let Some(resp) = self.generic_query(".", cmd::LISTTYPES, "send msg", "recv msg") else {
            return CMDRTN_ERROR;
        };
        let types = msg::decode_typelist(&resp.data);
        self.print(&format!("There are {} total types:", types.len() as i32));
        if !types.is_empty() {
            self.print(&format!("{:>15}   Number of living nodes", "Type name"));
            self.print(&format!("{:>15}   ----------------------", "---------"));
        }
        for (name, n) in &types {
            self.print(&format!("{name:>15}   {:>5}", *n as i32));
        }
        CMDRTN_OK
    }

    /// status and config: a text request whose EINVAL means "not available".
    pub(super) fn text_query(&mut self, path: &str, command: u32, arg: Vec<u8>, what: &str) -> i32 {
        match self.send_msg(path, msg::NGM_GENERIC_COOKIE, command, arg) {
            Err(e) if e == fbsd_sys::EINVAL as Errno => {}
            Err(e) => {
                self.warn("send msg", e);
                return CMDRTN_ERROR;
            }
            Ok(_) => {
                if let Ok((_, m)) = self.recv_msg(Some(msg::HDRLEN + msg::TEXTRESPONSE)) {
                    if m.is_resp() {
                        let text = msg::cstr(&m.data);
                        self.print(&format!("{what} for \"{path}\":"));
                        self.print(&text);
                        return CMDRTN_OK;
                    }
                }
            }
        }
        self.print(&format!(
            "No {} available for \"{path}\"",
            what.to_lowercase()
        ));
        CMDRTN_OK
    }

    pub(super) fn status_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() != 2 {
            return CMDRTN_USAGE;
        }
        let path = av[1].clone();
        self.text_query(&path, cmd::TEXT_STATUS, Vec::new(), "Status")
    }

    pub(super) fn config_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() < 2 {
            return CMDRTN_USAGE;
        }
        let path = av[1].clone();
        let buf = av[2..].join(" ");
        let arg = if buf.is_empty() {
            Vec::new()
        } else {
            let mut v = buf.into_bytes();
            v.push(0);
            v
        };
        self.text_query(&path, cmd::TEXT_CONFIG, arg, "Config")
    }

    pub(super) fn msg_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() < 3 {
            return CMDRTN_USAGE;
        }
        let path = av[1].clone();
        let mut text = av[2].clone();
        for a in &av[3..] {
            text.push(' ');
            text.push_str(a);
        }
        if let Err(e) = self.send_ascii_msg(&path, &text) {
            self.warn("send msg", e);
            return CMDRTN_ERROR;
        }
        let p = self.p();
        if self.port.msg_ready(p, Wait::Now) && self.msg_read() {
            // The control socket was at end of file (the node is gone):
            // MsgRead's conversion request, sent on it, raises SIGPIPE.
            self.st.killed = Some("SIGPIPE");
            return CMDRTN_ERROR;
        }
        CMDRTN_OK
    }

    pub(super) fn msg_read(&mut self) -> bool {
        let (path, m) = match self.ng_recv(None) {
            Ok(Some(r)) if r.bytes.is_empty() && r.from.is_empty() => return true,
            Ok(Some(r)) => (r.from, NgMsg::decode(&r.bytes)),
            Ok(None) => {
                self.st
                    .problems
                    .push("ngctl would block forever in recvfrom() on its control socket".into());
                self.warn("recv incoming message", fbsd_sys::ETIMEDOUT as Errno);
                return false;
            }
            Err(e) => {
                self.warn("recv incoming message", e);
                return false;
            }
        };
        let kind = |flags: u32| {
            if flags & msg::NGF_RESP != 0 {
                "response"
            } else {
                "command"
            }
        };
        let conv = match self.send_msg(
            &path,
            msg::NGM_GENERIC_COOKIE,
            cmd::BINARY2ASCII,
            m.encode(),
        ) {
            Ok(_) => self.recv_msg(None).ok(),
            Err(_) => None,
        };
        match conv {
            None => {
                self.print(&format!(
                    "Rec'd {} {} from \"{path}\":",
                    kind(m.flags),
                    m.cmd as i32
                ));
                if m.arglen == 0 {
                    self.print("No arguments");
                } else {
                    for l in dump_ascii(&m.data) {
                        self.print(&l);
                    }
                }
            }
            Some((_, m2)) => {
                let ascii = NgMsg::decode(&m2.data);
                self.print(&format!(
                    "Rec'd {} \"{}\" ({}) from \"{path}\":",
                    kind(ascii.flags),
                    ascii.cmdstr(),
                    ascii.cmd as i32
                ));
                let args = msg::cstr(&ascii.data);
                if args.is_empty() {
                    self.print("No arguments");
                } else {
                    self.print(&format!("Args:\t{args}"));
                }
            }
        }
        false
    }

    pub(super) fn write_cmd(&mut self, av: &[String]) -> i32 {
        if av.len() < 3 {
            return CMDRTN_USAGE;
        }
        let hook = av[1].clone();
        let mut buf = Vec::new();
        if av[2] == "-f" {
            if av.len() != 4 {
                return CMDRTN_USAGE;
            }
            match std::fs::read(self.resolve(&av[3])) {
                Ok(b) if b.is_empty() => {
                    self.warnx(&format!("file \"{}\" is empty", av[3]));
                    return CMDRTN_ERROR;
                }
                Ok(b) => buf = b.into_iter().take(WRITE_BUF).collect(),
                Err(e) => {
                    self.warn(
                        &format!("can't read file \"{}\"", av[3]),
                        errno::from_io(&e),
                    );
                    return CMDRTN_ERROR;
                }
            }
        } else {
            for a in &av[2..] {
                if buf.len() >= WRITE_BUF {
                    break;
                }
                match scan_int(a) {
                    Some(v) if (-128..=255).contains(&v) => buf.push(v as u8),
                    _ => {
                        self.warnx(&format!("invalid byte \"{a}\""));
                        return CMDRTN_ERROR;
                    }
                }
            }
            if buf.is_empty() {
                return CMDRTN_USAGE;
            }
        }
        let p = self.p();
        match self.port.send_data(p, &hook, &buf) {
            Ok(()) => CMDRTN_OK,
            Err(e) if e == fbsd_sys::EPIPE as Errno => {
                self.st.killed = Some("SIGPIPE");
                CMDRTN_ERROR
            }
            Err(e) => {
                self.warn(&format!("writing to hook \"{hook}\""), e);
                CMDRTN_ERROR
            }
        }
    }

    pub(super) fn dot_cmd(&mut self, av: &[String]) -> i32 {
        let Ok((opts, optind)) = getopt(av, "c", self.out) else {
            return CMDRTN_USAGE;
        };
        let compact = opts.iter().any(|(c, _)| *c == 'c');
        // The output file is opened (created, truncated) first, as fopen in
        // DotCmd; it stays, possibly empty, when a later step fails.
        let file = match av.len() - optind {
            0 => None,
            1 => {
                let name = av[optind].clone();
                match std::fs::File::create(self.resolve(&name)) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        self.warn(
                            &format!("Could not open {name} for writing"),
                            errno::from_io(&e),
                        );
                        return CMDRTN_ERROR;
                    }
                }
            }
            _ => return CMDRTN_USAGE,
        };
        let Some(resp) = self.generic_query(
            ".",
            cmd::LISTNODES,
            "send listnodes msg",
            "recv listnodes msg",
        ) else {
            return CMDRTN_ERROR;
        };
        let nodes = msg::decode_namelist(&resp.data);
        let mut g: Vec<String> = Vec::new();
        if compact {
            g.push("digraph netgraph {".into());
            g.push("\tedge [ dir = \"none\", fontsize = 10 ];".into());
        } else {
            g.push("graph netgraph {".into());
            g.push("\tedge [ weight = 1.0 ];".into());
        }
        g.push("\tnode [ shape = record, fontsize = 12 ] {".into());
        for n in &nodes {
            let name = if n.name.is_empty() {
                "\\<unnamed\\>"
            } else {
                &n.name
            };
            g.push(format!(
                "\t\t\"{:x}\" [ label = \"{{{}:|{{{}|[{:x}]:}}}}\" ];",
                n.id, name, n.ty, n.id
            ));
        }
        g.push("\t};".into());
        g.push("\tsubgraph cluster_disconnected {".into());
        g.push("\t\tbgcolor = pink;".into());
        for n in nodes.iter().filter(|n| n.hooks == 0) {
            g.push(format!("\t\t\"{:x}\";", n.id));
        }
        g.push("\t};".into());
        for n in &nodes {
            let path = format!("[{:x}]:", n.id);
            let Some(hl) = self.generic_query(
                &path,
                cmd::LISTHOOKS,
                "send listhooks msg",
                "recv listhooks msg",
            ) else {
                return CMDRTN_ERROR;
            };
            let (ni, links) = msg::decode_hooklist(&hl.data);
            if ni.hooks == 0 {
                continue;
            }
            if !compact {
                g.push("\tnode [ shape = octagon, fontsize = 10 ] {".into());
                for l in &links {
                    g.push(format!(
                        "\t\t\"{:x}.{}\" [ label = \"{}\" ];",
                        n.id, l.ourhook, l.ourhook
                    ));
                }
                g.push("\t};".into());
                g.push("\t{".into());
                g.push("\t\tedge [ weight = 2.0, style = bold ];".into());
                for l in &links {
                    g.push(format!(
                        "\t\t\"{:x}\" -- \"{:x}.{}\";",
                        n.id, n.id, l.ourhook
                    ));
                }
                g.push("\t};".into());
            }
            for l in &links {
                if l.peer.id > n.id {
                    continue;
                }
                if compact {
                    g.push(format!(
                        "\t\"{:x}\" -> \"{:x}\" [ headlabel = \"{}\", taillabel = \"{}\" ] ;",
                        l.peer.id, n.id, l.ourhook, l.peerhook
                    ));
                } else {
                    g.push(format!(
                        "\t\"{:x}.{}\" -- \"{:x}.{}\";",
                        n.id, l.ourhook, l.peer.id, l.peerhook
                    ));
                }
            }
        }
        g.push("}".into());
        match file {
            None => {
                for l in g {
                    self.print(&l);
                }
            }
            Some(mut f) => {
                let mut text = g.join("\n");
                text.push('\n');
                // fprintf's errors go unreported, as in DotCmd.
                let _ = std::io::Write::write_all(&mut f, text.as_bytes());
            }
        }
        CMDRTN_OK
    }
}

/// `atoi()`.
pub(super) fn scan_int_atoi(s: &str) -> i32 {
    let t = s.trim_start_matches(WHITESPACE);
    let (neg, d) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for c in d.bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        v = (v * 10 + i64::from(c - b'0')).min(i64::from(u32::MAX));
    }
    (if neg { -v } else { v }) as i32
}

/// The `list`/`show` node line.
pub(super) fn node_line(ni: &NodeInfo) -> String {
    let name = if ni.name.is_empty() {
        "<unnamed>"
    } else {
        &ni.name
    };
    format!(
        "  Name: {:<15} Type: {:<15} ID: {:08x}   Num hooks: {}",
        name, ni.ty, ni.id, ni.hooks as i32
    )
}
