//! The syzkaller description of PF_NETGRAPH (`syzkaller/sys/freebsd/
//! netgraph.txt`) checked without syzkaller: syzkaller's own tools
//! (syz-sysgen, syz-extract) are Go programs that no package registry this
//! project uses provides, so this test parses the description's syzlang
//! (includes, resources, system calls, structs, unions, type templates,
//! flag and string sets) and checks that
//!
//! * every type it names is a syzlang builtin, one of its own definitions
//!   (templates with the right number of arguments), a template parameter,
//!   or one of the few FreeBSD descriptions of syzkaller it relies on;
//! * every constant it uses (in `const[]`, flag sets, sizes) has a value in
//!   `netgraph.txt.const`, and every value there is FreeBSD 15's (from the
//!   headers through `fbsd_sys`).
//!
//! `NGSOCK_SYZ_UPDATE=1` rewrites `netgraph.txt.const` from the headers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../syzkaller/sys/freebsd")
}

/// Names defined by syzkaller's other FreeBSD descriptions that this one
/// uses (socket.txt, socket_inet.txt, socket_inet6.txt, socket_unix.txt,
/// sys.txt).
const EXTERNAL: &[&str] = &[
    "sock",
    "send_flags",
    "recv_flags",
    "sockaddr_in",
    "sockaddr_in6",
    "sockaddr_un",
    "ip_mreq",
    "linger",
];

const BUILTINS: &[&str] = &[
    "int8",
    "int16",
    "int32",
    "int64",
    "intptr",
    "int16be",
    "int32be",
    "int64be",
    "const",
    "flags",
    "len",
    "bytesize",
    "bitsize",
    "ptr",
    "ptr64",
    "buffer",
    "string",
    "stringnoz",
    "array",
    "void",
    "fd",
    "vma",
    "proc",
    "text",
    "glob",
    "fmt",
    "offsetof",
    "filename",
    "boolptr",
];

/// Every constant the description may use, with FreeBSD 15's value.
macro_rules! consts {
    ($($n:ident),+ $(,)?) => {
        vec![$((stringify!($n), fbsd_sys::$n as i64)),+]
    };
}

fn header_values() -> BTreeMap<&'static str, i64> {
    consts![
        PF_NETGRAPH,
        AF_NETGRAPH,
        AF_UNIX,
        AF_INET,
        AF_INET6,
        SOCK_DGRAM,
        NG_CONTROL,
        NG_DATA,
        NG_VERSION,
        NG_CMDSTRSIZ,
        NG_TYPESIZ,
        NG_HOOKSIZ,
        NG_NODESIZ,
        NG_PATHSIZ,
        NGF_ORIG,
        NGF_RESP,
        NGM_GENERIC_COOKIE,
        NGM_SOCKET_COOKIE,
        NGM_KSOCKET_COOKIE,
        NGM_SHUTDOWN,
        NGM_MKPEER,
        NGM_CONNECT,
        NGM_NAME,
        NGM_RMHOOK,
        NGM_NODEINFO,
        NGM_LISTHOOKS,
        NGM_LISTNAMES,
        NGM_LISTNODES,
        NGM_LISTTYPES,
        NGM_TEXT_STATUS,
        NGM_BINARY2ASCII,
        NGM_ASCII2BINARY,
        NGM_TEXT_CONFIG,
        NGM_SOCK_CMD_NOLINGER,
        NGM_SOCK_CMD_LINGER,
        NGM_KSOCKET_BIND,
        NGM_KSOCKET_LISTEN,
        NGM_KSOCKET_ACCEPT,
        NGM_KSOCKET_CONNECT,
        NGM_KSOCKET_GETNAME,
        NGM_KSOCKET_GETPEERNAME,
        NGM_KSOCKET_SETOPT,
        NGM_KSOCKET_GETOPT,
        SOL_SOCKET,
        SO_DEBUG,
        SO_REUSEADDR,
        SO_KEEPALIVE,
        SO_DONTROUTE,
        SO_BROADCAST,
        SO_OOBINLINE,
        SO_REUSEPORT,
        SO_TIMESTAMP,
        SO_SNDBUF,
        SO_RCVBUF,
        SO_SNDLOWAT,
        SO_RCVLOWAT,
        SO_ERROR,
        SO_TYPE,
        SO_USER_COOKIE,
        SO_PROTOCOL,
        SO_DOMAIN,
        SO_LINGER,
        IPPROTO_IP,
        IPPROTO_TCP,
        IPPROTO_UDP,
        IPPROTO_IPV6,
        IP_HDRINCL,
        IP_TOS,
        IP_TTL,
        IP_RECVDSTADDR,
        IP_MULTICAST_TTL,
        IP_MULTICAST_LOOP,
        IP_PORTRANGE,
        IP_ONESBCAST,
        IP_BINDANY,
        IP_MINTTL,
        IP_DONTFRAG,
        IP_ADD_MEMBERSHIP,
        IP_DROP_MEMBERSHIP,
        TCP_NODELAY,
        TCP_MAXSEG,
        TCP_NOPUSH,
        TCP_KEEPIDLE,
        TCP_KEEPINTVL,
        TCP_KEEPCNT,
        TCP_FUNCTION_BLK,
        TCP_FUNCTION_NAME_LEN_MAX,
        IPV6_V6ONLY,
        IPV6_UNICAST_HOPS,
        IPV6_MULTICAST_IF,
        IPV6_MULTICAST_HOPS,
        IPV6_MULTICAST_LOOP,
    ]
    .into_iter()
    .collect()
}

/// Splits `a, b[c, d], e` at top-level commas.
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut cur, mut quoted) = (0i32, String::new(), false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `head[args]` → (head, args).
fn parse_type(t: &str) -> (String, Vec<String>) {
    match t.find('[') {
        Some(i) if t.ends_with(']') => (t[..i].to_string(), split_args(&t[i + 1..t.len() - 1])),
        _ => (t.to_string(), Vec::new()),
    }
}

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_number(s: &str) -> bool {
    let s = s.trim_start_matches('-');
    s.parse::<i64>().is_ok()
        || s.strip_prefix("0x")
            .is_some_and(|h| i64::from_str_radix(h, 16).is_ok())
}

#[derive(Default)]
struct Desc {
    types: HashMap<String, usize>,
    flags: BTreeSet<String>,
    strings: BTreeSet<String>,
    /// (context, type expression, template parameters in scope).
    uses: Vec<(String, String, Vec<String>)>,
    /// Identifiers used as constants (with context).
    consts: Vec<(String, String)>,
    problems: Vec<String>,
}

impl Desc {
    fn parse(text: &str) -> Desc {
        let mut d = Desc::default();
        let lines: Vec<String> = text
            .lines()
            .map(|l| match l.find('#') {
                Some(i) if !l[..i].contains('"') => l[..i].to_string(),
                _ => l.to_string(),
            })
            .collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i].trim().to_string();
            i += 1;
            if line.is_empty() || line.starts_with("include ") {
                continue;
            }
            if let Some(r) = line.strip_prefix("resource ") {
                let (name, base) = parse_type(r.trim());
                d.types.insert(name.clone(), 0);
                for b in base {
                    d.uses.push((format!("resource {name}"), b, Vec::new()));
                }
                continue;
            }
            if let Some((name, vals)) = line.split_once(" = ") {
                let name = name.trim().to_string();
                let vals = split_args(vals);
                if vals.iter().all(|v| v.starts_with('"')) {
                    d.strings.insert(name);
                } else {
                    for v in &vals {
                        if is_ident(v) {
                            d.consts.push((format!("flags {name}"), v.clone()));
                        } else if !is_number(v) {
                            d.problems.push(format!("flags {name}: bad value {v}"));
                        }
                    }
                    d.flags.insert(name);
                }
                continue;
            }
            let (template, head) = match line.strip_prefix("type ") {
                Some(h) => (true, h.to_string()),
                None => (false, line.clone()),
            };
            if head.ends_with('{') || head.ends_with('[') {
                let decl = head[..head.len() - 1].trim();
                let (name, params) = parse_type(decl);
                if !template && !params.is_empty() {
                    d.problems
                        .push(format!("{name}: parameters without `type`"));
                }
                d.types.insert(name.clone(), params.len());
                let close = if head.ends_with('{') { "}" } else { "]" };
                let mut fields = BTreeSet::new();
                while i < lines.len() && !lines[i].trim().starts_with(close) {
                    let f = lines[i].trim().to_string();
                    i += 1;
                    if f.is_empty() {
                        continue;
                    }
                    let mut parts = f.splitn(2, char::is_whitespace);
                    let fname = parts.next().unwrap_or("").to_string();
                    let ftype = parts.next().unwrap_or("").trim().to_string();
                    if !is_ident(&fname) || ftype.is_empty() {
                        d.problems.push(format!("{name}: bad field line {f:?}"));
                        continue;
                    }
                    if !fields.insert(fname.clone()) {
                        d.problems.push(format!("{name}: duplicate field {fname}"));
                    }
                    d.uses
                        .push((format!("{name}.{fname}"), ftype, params.clone()));
                }
                if i >= lines.len() {
                    d.problems.push(format!("{name}: not closed"));
                }
                let end = lines
                    .get(i)
                    .map(|l| l.trim().to_string())
                    .unwrap_or_default();
                let attrs = end[1..].trim();
                if !(attrs.is_empty() || ["[packed]", "[varlen]", "[align_ptr]"].contains(&attrs)) {
                    d.problems.push(format!("{name}: attributes {attrs}"));
                }
                i += 1;
                continue;
            }
            // A system call: name$variant(args) [ret]
            let Some(open) = line.find('(') else {
                d.problems.push(format!("cannot parse {line:?}"));
                continue;
            };
            let Some(close) = line.rfind(')') else {
                d.problems.push(format!("unclosed call {line:?}"));
                continue;
            };
            let name = &line[..open];
            if !name.split('$').all(is_ident) {
                d.problems.push(format!("bad call name {name}"));
            }
            for a in split_args(&line[open + 1..close]) {
                let mut parts = a.splitn(2, ' ');
                let aname = parts.next().unwrap_or("");
                let atype = parts.next().unwrap_or("").trim();
                if !is_ident(aname) || atype.is_empty() {
                    d.problems.push(format!("{name}: bad argument {a:?}"));
                    continue;
                }
                d.uses
                    .push((format!("{name}({aname})"), atype.to_string(), Vec::new()));
            }
            let ret = line[close + 1..].trim();
            if !ret.is_empty() {
                d.uses
                    .push((format!("{name} result"), ret.to_string(), Vec::new()));
            }
        }
        d
    }

    fn known(&self, name: &str, params: &[String]) -> Option<usize> {
        if params.iter().any(|p| p == name) {
            return Some(usize::MAX);
        }
        if BUILTINS.contains(&name) || EXTERNAL.contains(&name) {
            return Some(usize::MAX);
        }
        self.types.get(name).copied()
    }

    /// Checks one type expression.
    fn check(&mut self, ctx: &str, t: &str, params: &[String]) {
        let (head, args) = parse_type(t);
        let Some(arity) = self.known(&head, params) else {
            self.problems.push(format!("{ctx}: unknown type {head}"));
            return;
        };
        if arity != usize::MAX && arity != args.len() {
            self.problems.push(format!(
                "{ctx}: {head} takes {arity} arguments, given {}",
                args.len()
            ));
        }
        let value = |d: &mut Desc, v: &str| {
            if is_ident(v) && !params.iter().any(|p| p == v) {
                d.consts.push((ctx.to_string(), v.to_string()));
            } else if !is_ident(v) && !is_number(v) && !v.contains(':') {
                d.problems.push(format!("{ctx}: bad value {v}"));
            }
        };
        match head.as_str() {
            "const" => {
                value(self, &args[0]);
                if let Some(t) = args.get(1) {
                    self.check(ctx, t, params);
                }
            }
            "flags" => {
                if !self.flags.contains(&args[0])
                    && !params.contains(&args[0])
                    && !EXTERNAL.contains(&args[0].as_str())
                {
                    self.problems
                        .push(format!("{ctx}: unknown flag set {}", args[0]));
                }
                if let Some(t) = args.get(1) {
                    self.check(ctx, t, params);
                }
            }
            "string" => {
                if let Some(a) = args.first() {
                    if !a.starts_with('"') && !self.strings.contains(a) {
                        self.problems.push(format!("{ctx}: unknown string set {a}"));
                    }
                }
                if let Some(n) = args.get(1) {
                    value(self, n);
                }
            }
            "len" | "bytesize" | "bitsize" => {
                if let Some(t) = args.get(1) {
                    self.check(ctx, t, params);
                }
            }
            "ptr" | "ptr64" => {
                if !["in", "out", "inout"].contains(&args[0].as_str()) {
                    self.problems
                        .push(format!("{ctx}: pointer direction {}", args[0]));
                }
                self.check(ctx, &args[1], params);
            }
            "buffer" => {}
            "array" => {
                self.check(ctx, &args[0], params);
                if let Some(n) = args.get(1) {
                    for p in n.split(':') {
                        value(self, p);
                    }
                }
            }
            _ if arity == usize::MAX && params.contains(&head) => {}
            _ => {
                for a in &args {
                    if is_ident(a)
                        && a.chars()
                            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                    {
                        value(self, a);
                    } else {
                        self.check(ctx, a, params);
                    }
                }
            }
        }
    }
}

fn parse_const_file(text: &str) -> BTreeMap<String, i64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("arches"))
        .filter_map(|l| l.split_once(" = "))
        .filter_map(|(k, v)| {
            let v = v.trim();
            let v = v.strip_prefix("amd64:").unwrap_or(v);
            v.parse::<i64>().ok().map(|n| (k.trim().to_string(), n))
        })
        .collect()
}

#[test]
fn netgraph_description_is_well_formed_and_its_constants_are_freebsds() {
    let text = std::fs::read_to_string(dir().join("netgraph.txt")).expect("netgraph.txt");
    let mut d = Desc::parse(&text);
    let uses = std::mem::take(&mut d.uses);
    for (ctx, t, params) in &uses {
        d.check(ctx, t, params);
    }
    let values = header_values();
    let used: BTreeSet<String> = d.consts.iter().map(|c| c.1.clone()).collect();
    for (ctx, c) in &d.consts {
        if !values.contains_key(c.as_str()) {
            d.problems
                .push(format!("{ctx}: constant {c} has no FreeBSD value here"));
        }
    }
    let want: String = std::iter::once(
        "# Constants of netgraph.txt for FreeBSD 15 amd64 (from its headers).\n".to_string(),
    )
    .chain(std::iter::once("arches = amd64\n".to_string()))
    .chain(
        used.iter()
            .filter_map(|c| values.get(c.as_str()).map(|v| format!("{c} = {v}\n"))),
    )
    .collect();
    let path = dir().join("netgraph.txt.const");
    if std::env::var_os("NGSOCK_SYZ_UPDATE").is_some() {
        std::fs::write(&path, &want).expect("write netgraph.txt.const");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    let have_map = parse_const_file(&have);
    let want_map = parse_const_file(&want);
    if have_map != want_map {
        d.problems.push(format!(
            "netgraph.txt.const differs from FreeBSD's values (NGSOCK_SYZ_UPDATE=1 rewrites it):\n{want}"
        ));
    }
    assert!(d.problems.is_empty(), "{:#?}", d.problems);
    assert!(
        d.types.len() > 20 && used.len() > 50,
        "{} types, {} constants",
        d.types.len(),
        used.len()
    );
}

/// The checker itself finds what syz-sysgen would reject.
#[test]
fn the_checker_rejects_broken_descriptions() {
    let bad = "resource s[sock]\n\
               foo$x(fd s, a ptr[in, nosuch_struct])\n\
               st {\n\tf\tflags[nosuch_flags, int32]\n\tf\tint8\n\tg\tconst[NOSUCH_CONST, int32]\n}\n\
               type tm[A, B] {\n\ta\tA\n\tb\tB\n}\n\
               u [\n\tx\ttm[int8]\n] [varlen]\n";
    let mut d = Desc::parse(bad);
    let uses = std::mem::take(&mut d.uses);
    for (ctx, t, params) in &uses {
        d.check(ctx, t, params);
    }
    let values = header_values();
    for (ctx, c) in &d.consts {
        if !values.contains_key(c.as_str()) {
            d.problems.push(format!("{ctx}: constant {c}"));
        }
    }
    let all = d.problems.join("\n");
    for want in [
        "unknown type nosuch_struct",
        "unknown flag set nosuch_flags",
        "duplicate field f",
        "constant NOSUCH_CONST",
        "tm takes 2 arguments, given 1",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}
