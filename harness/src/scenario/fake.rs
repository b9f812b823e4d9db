//! A small pure-Rust model of netgraph and `PF_NETGRAPH` sockets, used only
//! to test the scenario runner and the ngctl emulation without the harness
//! kernel (`--backend fake`). It is NOT evidence about the modules: it
//! follows docs/socket.md and docs/netgraph-model.md closely enough for ngctl's
//! commands on socket, echo and hole nodes (names, IDs, paths, mkpeer,
//! connect, rmhook, shutdown, node lifetime, data through echo, hole
//! statistics, ASCII conversion through the harness's parse engine), and
//! delivers everything synchronously.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use super::errno::Errno;
use super::msg::{self, cmd, LinkInfo, NgMsg, NodeInfo};
use super::port::{sockaddr_data, Datagram, Fd, SockApi, Wait, NG_CONTROL, NG_DATA};
use crate::netgraph::parse;

const EINVAL: Errno = fbsd_sys::EINVAL as Errno;
const ENOENT: Errno = fbsd_sys::ENOENT as Errno;
const EEXIST: Errno = fbsd_sys::EEXIST as Errno;
const ENXIO: Errno = fbsd_sys::ENXIO as Errno;
const ENOSYS: Errno = fbsd_sys::ENOSYS as Errno;
const EPERM: Errno = fbsd_sys::EPERM as Errno;
const EBADF: Errno = fbsd_sys::EBADF as Errno;
const EISCONN: Errno = fbsd_sys::EISCONN as Errno;
const ENOTCONN: Errno = fbsd_sys::ENOTCONN as Errno;
const EADDRINUSE: Errno = fbsd_sys::EADDRINUSE as Errno;
const EHOSTUNREACH: Errno = fbsd_sys::EHOSTUNREACH as Errno;
const EDESTADDRREQ: Errno = fbsd_sys::EDESTADDRREQ as Errno;
const EPIPE: Errno = fbsd_sys::EPIPE as Errno;
const E2BIG: Errno = fbsd_sys::E2BIG as Errno;
const EPROTONOSUPPORT: Errno = fbsd_sys::EPROTONOSUPPORT as Errno;

const NGM_SOCKET_COOKIE: u32 = fbsd_sys::NGM_SOCKET_COOKIE;
const NGM_HOLE_COOKIE: u32 = fbsd_sys::NGM_HOLE_COOKIE;
/// Socket buffer sizes (net.graph.maxdgram / recvspace).
const SOCKBUF: usize = 20480;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Socket,
    Echo,
    Hole,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Socket => "socket",
            Ty::Echo => "echo",
            Ty::Hole => "hole",
        }
    }
}

struct Hook {
    name: String,
    peer: u32,
    peer_hook: String,
    stats: (u64, u64),
}

struct Node {
    name: String,
    ty: Ty,
    /// Newest first.
    hooks: Vec<Hook>,
    ctl: Option<Fd>,
    data: Option<Fd>,
}

struct Sock {
    proto: i32,
    node: Option<u32>,
    q: VecDeque<(Vec<u8>, Vec<u8>)>,
    disconnected: bool,
}

/// The model's state.
pub struct FakeState {
    nodes: BTreeMap<u32, Node>,
    next_id: u32,
    socks: HashMap<Fd, Sock>,
    next_fd: Fd,
    /// Credentials of the calling "thread": false = root.
    pub user: bool,
}

/// The fake socket layer (shares its state with [`FakeKernel`]).
#[derive(Clone)]
pub struct FakeNet(pub Rc<RefCell<FakeState>>);

impl Default for FakeNet {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeNet {
    /// An empty model.
    pub fn new() -> FakeNet {
        FakeNet(Rc::new(RefCell::new(FakeState {
            nodes: BTreeMap::new(),
            next_id: 1,
            socks: HashMap::new(),
            next_fd: 3,
            user: false,
        })))
    }

    /// Number of nodes that exist.
    pub fn node_count(&self) -> usize {
        self.0.borrow().nodes.len()
    }
}

/// `ng_decodeidname`: `[hex]` with a non-zero value.
fn decode_id(s: &str) -> Option<u32> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    if !inner.as_bytes().first()?.is_ascii_hexdigit() {
        return None;
    }
    let h = inner
        .strip_prefix("0x")
        .or_else(|| inner.strip_prefix("0X"))
        .unwrap_or(inner);
    if h.is_empty() || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let v = u128::from_str_radix(h, 16)
        .ok()
        .map(|v| v.min(u64::MAX as u128) as u64)?;
    if v == 0 || v == u64::MAX {
        return None;
    }
    Some(v as u32)
}

fn mk_reply(req: &NgMsg, data: Vec<u8>) -> NgMsg {
    NgMsg {
        flags: msg::NGF_RESP,
        arglen: data.len() as u32,
        data,
        ..req.clone()
    }
}

fn header_of(m: &NgMsg) -> fbsd_sys::ng_mesg_ng_msghdr {
    fbsd_sys::ng_mesg_ng_msghdr {
        version: m.version,
        spare: 0,
        spare2: 0,
        arglen: m.arglen,
        cmd: m.cmd,
        flags: m.flags,
        token: m.token,
        typecookie: m.cookie,
        cmdstr: m.cmdstr,
    }
}

/// The hole type's command list: (cmd, name, has a response).
const HOLE_CMDS: &[(u32, &str, bool)] = &[
    (1, "getstats", true),
    (2, "clrstats", false),
    (3, "getclrstats", true),
];

impl FakeState {
    fn lookup_name(&self, name: &str) -> Option<u32> {
        if let Some(id) = decode_id(name) {
            return self.nodes.contains_key(&id).then_some(id);
        }
        self.nodes
            .iter()
            .find(|(_, n)| n.name == name)
            .map(|(&id, _)| id)
    }

    /// Path resolution (ng_path2noderef).
    fn resolve(&self, here: Option<u32>, path: &str) -> Result<u32, Errno> {
        let (node, rest) = match path.find(':') {
            Some(i) => {
                let n = &path[..i];
                let rest = &path[i + 1..];
                if n.is_empty() || rest.contains(':') || (n != "." && n.contains('.')) {
                    return Err(EINVAL);
                }
                let id = if n == "." {
                    here.ok_or(EINVAL)?
                } else {
                    self.lookup_name(n).ok_or(ENOENT)?
                };
                (id, rest)
            }
            None => (here.ok_or(EINVAL)?, path),
        };
        let segs: Vec<&str> = rest
            .trim_start_matches('.')
            .trim_end_matches('.')
            .split('.')
            .collect();
        let mut cur = node;
        for s in segs {
            if s.is_empty() {
                if rest.trim_matches('.').is_empty() {
                    break;
                }
                return Err(EINVAL);
            }
            let n = self.nodes.get(&cur).ok_or(ENOENT)?;
            let h = n.hooks.iter().find(|h| h.name == s).ok_or(ENOENT)?;
            cur = h.peer;
        }
        Ok(cur)
    }

    fn info(&self, id: u32) -> NodeInfo {
        let n = &self.nodes[&id];
        NodeInfo {
            name: n.name.clone(),
            ty: n.ty.name().into(),
            id,
            hooks: n.hooks.len() as u32,
        }
    }

    fn new_node(&mut self, ty: Ty) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(
            id,
            Node {
                name: String::new(),
                ty,
                hooks: Vec::new(),
                ctl: None,
                data: None,
            },
        );
        id
    }

    /// Removes one end of a link and the other; nodes that die of it go too.
    fn destroy_hook(&mut self, node: u32, hook: &str) {
        let Some(n) = self.nodes.get_mut(&node) else {
            return;
        };
        let Some(i) = n.hooks.iter().position(|h| h.name == hook) else {
            return;
        };
        let h = n.hooks.remove(i);
        if let Some(p) = self.nodes.get_mut(&h.peer) {
            p.hooks.retain(|x| x.name != h.peer_hook);
        }
        for id in [node, h.peer] {
            if let Some(n) = self.nodes.get(&id) {
                if n.hooks.is_empty() && n.ty != Ty::Socket {
                    self.rmnode(id);
                }
            }
        }
    }

    fn rmnode(&mut self, id: u32) {
        let Some(n) = self.nodes.get(&id) else { return };
        let hooks: Vec<String> = n.hooks.iter().map(|h| h.name.clone()).collect();
        for h in hooks {
            self.destroy_hook(id, &h);
        }
        if let Some(n) = self.nodes.remove(&id) {
            for fd in [n.ctl, n.data].into_iter().flatten() {
                if let Some(s) = self.socks.get_mut(&fd) {
                    s.node = None;
                    s.disconnected = true;
                }
            }
        }
    }

    fn add_link(&mut self, a: u32, ah: &str, b: u32, bh: &str) {
        if let Some(n) = self.nodes.get_mut(&a) {
            n.hooks.insert(
                0,
                Hook {
                    name: ah.into(),
                    peer: b,
                    peer_hook: bh.into(),
                    stats: (0, 0),
                },
            );
        }
        if let Some(n) = self.nodes.get_mut(&b) {
            n.hooks.insert(
                0,
                Hook {
                    name: bh.into(),
                    peer: a,
                    peer_hook: ah.into(),
                    stats: (0, 0),
                },
            );
        }
    }

    fn has_hook(&self, id: u32, h: &str) -> bool {
        self.nodes
            .get(&id)
            .is_some_and(|n| n.hooks.iter().any(|x| x.name == h))
    }

    /// A message arriving at `dest` from node `ret`.
    fn rcvmsg(&mut self, dest: u32, m: NgMsg, ret: u32) -> Result<(), Errno> {
        if m.cookie == msg::NGM_GENERIC_COOKIE
            && !m.is_resp()
            && m.cmd != cmd::TEXT_STATUS
            && m.cmd != cmd::TEXT_CONFIG
        {
            return self.generic(dest, m, ret);
        }
        let ty = self.nodes.get(&dest).ok_or(EINVAL)?.ty;
        match ty {
            Ty::Echo => {
                let mut r = m;
                r.flags |= msg::NGF_RESP;
                self.respond(dest, ret, r)
            }
            Ty::Hole => self.hole_msg(dest, m, ret),
            Ty::Socket => {
                if m.cookie == NGM_SOCKET_COOKIE {
                    return if m.cmd == 1 || m.cmd == 2 {
                        Ok(())
                    } else {
                        Err(EINVAL)
                    };
                }
                let ctl = self.nodes[&dest].ctl.ok_or(EINVAL)?;
                let from = format!("[{ret:x}]:");
                let mut sa = vec![34u8, 32];
                sa.extend_from_slice(&msg::cfield::<32>(&from));
                if let Some(s) = self.socks.get_mut(&ctl) {
                    s.q.push_back((m.encode(), sa));
                }
                Ok(())
            }
        }
    }

    /// NG_RESPOND_MSG: the reply goes to node `to`, from `from`.
    fn respond(&mut self, from: u32, to: u32, r: NgMsg) -> Result<(), Errno> {
        if !self.nodes.contains_key(&to) {
            return Err(EINVAL);
        }
        // Responses only ever go back to socket nodes here.
        if self.nodes[&to].ty == Ty::Socket {
            let _ = self.rcvmsg(to, r, from);
        }
        Ok(())
    }

    fn hole_msg(&mut self, dest: u32, m: NgMsg, ret: u32) -> Result<(), Errno> {
        if m.cookie != NGM_HOLE_COOKIE || !(1..=3).contains(&m.cmd) || m.arglen != 32 {
            return Err(EINVAL);
        }
        let hook = msg::cstr(&m.data);
        let n = self.nodes.get_mut(&dest).ok_or(EINVAL)?;
        let h = n.hooks.iter_mut().find(|h| h.name == hook).ok_or(ENOENT)?;
        let (frames, octets) = h.stats;
        if m.cmd != 1 {
            h.stats = (0, 0);
        }
        if m.cmd != 2 {
            let mut d = frames.to_le_bytes().to_vec();
            d.extend_from_slice(&octets.to_le_bytes());
            let r = mk_reply(&m, d);
            return self.respond(dest, ret, r);
        }
        Ok(())
    }

    fn generic(&mut self, here: u32, m: NgMsg, ret: u32) -> Result<(), Errno> {
        let reply = |st: &mut FakeState, data: Vec<u8>| st.respond(here, ret, mk_reply(&m, data));
        match m.cmd {
            cmd::SHUTDOWN => {
                self.rmnode(here);
                Ok(())
            }
            cmd::MKPEER => {
                if m.arglen != 96 || m.data.len() != 96 {
                    return Err(EINVAL);
                }
                let ty = msg::cstr(&m.data[..32]);
                let (ours, peer) = (msg::cstr(&m.data[32..64]), msg::cstr(&m.data[64..96]));
                let ty = match ty.as_str() {
                    "echo" => Ty::Echo,
                    "hole" => Ty::Hole,
                    "socket" => return Err(EINVAL),
                    _ => return Err(ENXIO),
                };
                if ours.is_empty() || peer.is_empty() {
                    return Err(EINVAL);
                }
                if self.has_hook(here, &ours) {
                    return Err(EEXIST);
                }
                let id = self.new_node(ty);
                self.add_link(here, &ours, id, &peer);
                Ok(())
            }
            cmd::CONNECT => {
                if m.arglen != 576 || m.data.len() != 576 {
                    return Err(EINVAL);
                }
                let path = msg::cstr(&m.data[..512]);
                let (ours, peer) = (msg::cstr(&m.data[512..544]), msg::cstr(&m.data[544..576]));
                let other = self.resolve(Some(here), &path)?;
                if ours.is_empty() || peer.is_empty() {
                    return Err(EINVAL);
                }
                if self.has_hook(here, &ours) || self.has_hook(other, &peer) {
                    return Err(EEXIST);
                }
                self.add_link(here, &ours, other, &peer);
                Ok(())
            }
            cmd::NAME => {
                if m.arglen != 32 || m.data.len() != 32 {
                    return Err(EINVAL);
                }
                let name = msg::cstr(&m.data[..31]);
                self.name_node(here, &name)
            }
            cmd::RMHOOK => {
                if m.arglen != 32 || m.data.len() != 32 {
                    return Err(EINVAL);
                }
                let hook = msg::cstr(&m.data[..31]);
                self.destroy_hook(here, &hook);
                Ok(())
            }
            cmd::NODEINFO => {
                let d = self.info(here).encode();
                reply(self, d)
            }
            cmd::LISTHOOKS => {
                let ni = self.info(here);
                let links: Vec<LinkInfo> = self.nodes[&here]
                    .hooks
                    .iter()
                    .map(|h| LinkInfo {
                        ourhook: h.name.clone(),
                        peerhook: h.peer_hook.clone(),
                        peer: self.info(h.peer),
                    })
                    .collect();
                let d = msg::encode_hooklist(&ni, &links);
                reply(self, d)
            }
            cmd::LISTNODES | cmd::LISTNAMES => {
                let named = m.cmd == cmd::LISTNAMES;
                let list: Vec<NodeInfo> = self
                    .nodes
                    .keys()
                    .map(|&id| self.info(id))
                    .filter(|n| !named || !n.name.is_empty())
                    .collect();
                let d = msg::encode_namelist(&list);
                reply(self, d)
            }
            cmd::LISTTYPES => {
                let types: Vec<(String, u32)> = [Ty::Socket, Ty::Hole, Ty::Echo]
                    .iter()
                    .map(|t| {
                        (
                            t.name().to_string(),
                            self.nodes.values().filter(|n| n.ty == *t).count() as u32,
                        )
                    })
                    .collect();
                let d = msg::encode_typelist(&types);
                reply(self, d)
            }
            cmd::BINARY2ASCII => {
                let inner = NgMsg::decode(&m.data);
                let text = self.b2a(here, &inner)?;
                let mut a = NgMsg {
                    cmdstr: inner.cmdstr,
                    ..inner.clone()
                };
                if let Some(n) = self.cmd_name(here, inner.cookie, inner.cmd) {
                    a.cmdstr = msg::cfield::<32>(&n);
                }
                a.data = text.into_bytes();
                a.data.push(0);
                a.arglen = a.data.len() as u32;
                let d = a.encode();
                reply(self, d)
            }
            cmd::ASCII2BINARY => {
                let inner = NgMsg::decode(&m.data);
                if inner.arglen < 1 {
                    return Err(EINVAL);
                }
                let (cookie, c, bin) = self.a2b(here, &inner)?;
                let b = NgMsg {
                    cookie,
                    cmd: c,
                    arglen: bin.len() as u32,
                    data: bin,
                    ..inner
                };
                let d = b.encode();
                reply(self, d)
            }
            _ => Err(EINVAL),
        }
    }

    fn name_node(&mut self, here: u32, name: &str) -> Result<(), Errno> {
        if self.nodes[&here].name == name {
            return Ok(());
        }
        if name.is_empty() || name.contains('.') || name.contains(':') || decode_id(name).is_some()
        {
            return Err(EINVAL);
        }
        if self
            .nodes
            .iter()
            .any(|(&id, n)| id != here && n.name == name)
        {
            return Err(EADDRINUSE);
        }
        if let Some(n) = self.nodes.get_mut(&here) {
            n.name = name.to_string();
        }
        Ok(())
    }

    fn cmd_name(&self, here: u32, cookie: u32, c: u32) -> Option<String> {
        if self.nodes.get(&here).map(|n| n.ty) == Some(Ty::Hole) && cookie == NGM_HOLE_COOKIE {
            return HOLE_CMDS.iter().find(|h| h.0 == c).map(|h| h.1.to_string());
        }
        parse::find_generic_cmd(cookie, c).map(|g| g.name.to_string())
    }

    fn b2a(&self, here: u32, inner: &NgMsg) -> Result<String, Errno> {
        if self.nodes.get(&here).map(|n| n.ty) == Some(Ty::Hole) && inner.cookie == NGM_HOLE_COOKIE
        {
            let &(_, _, has_resp) = HOLE_CMDS.iter().find(|h| h.0 == inner.cmd).ok_or(ENOSYS)?;
            if inner.is_resp() {
                if !has_resp {
                    return Ok(String::new());
                }
                let rd = |o: usize| -> u64 {
                    let mut w = [0u8; 8];
                    for (i, x) in w.iter_mut().enumerate() {
                        *x = inner.data.get(o + i).copied().unwrap_or(0);
                    }
                    u64::from_le_bytes(w)
                };
                let (f, o) = (rd(0), rd(8));
                let mut parts = Vec::new();
                if f != 0 {
                    parts.push(format!("frames={f}"));
                }
                if o != 0 {
                    parts.push(format!("octets={o}"));
                }
                return Ok(if parts.is_empty() {
                    "{}".into()
                } else {
                    format!("{{ {} }}", parts.join(" "))
                });
            }
            let ty = parse::types().hookbuf;
            // SAFETY: a predefined parse type of the engine.
            return unsafe { parse::unparse_with_header(ty, &header_of(inner), &inner.data) };
        }
        let g = parse::find_generic_cmd(inner.cookie, inner.cmd).ok_or(ENOSYS)?;
        let ty = if inner.is_resp() {
            g.resp_type
        } else {
            g.mesg_type
        };
        if ty.is_null() {
            return Ok(String::new());
        }
        // SAFETY: the engine's generic parse types.
        unsafe { parse::unparse_with_header(ty, &header_of(inner), &inner.data) }
    }

    fn a2b(&self, here: u32, inner: &NgMsg) -> Result<(u32, u32, Vec<u8>), Errno> {
        let name = inner.cmdstr();
        let text = msg::cstr(&inner.data);
        let mut hdr = header_of(inner);
        if self.nodes.get(&here).map(|n| n.ty) == Some(Ty::Hole) {
            if let Some(&(c, _, has_resp)) = HOLE_CMDS.iter().find(|h| h.1 == name) {
                if inner.is_resp() {
                    return if has_resp {
                        Err(ENOSYS)
                    } else {
                        Ok((NGM_HOLE_COOKIE, c, Vec::new()))
                    };
                }
                hdr.cmd = c;
                hdr.typecookie = NGM_HOLE_COOKIE;
                // SAFETY: a predefined parse type of the engine.
                let b = unsafe {
                    parse::parse_with_header(
                        parse::types().hookbuf,
                        text.as_bytes(),
                        &hdr,
                        parse::A2B_BUFSIZE,
                    )
                }?;
                return Ok((NGM_HOLE_COOKIE, c, b));
            }
        }
        let g = parse::find_generic_name(&name).ok_or(ENOSYS)?;
        let ty = if inner.is_resp() {
            g.resp_type
        } else {
            g.mesg_type
        };
        if ty.is_null() {
            return Ok((g.cookie, g.cmd, Vec::new()));
        }
        hdr.cmd = g.cmd;
        hdr.typecookie = g.cookie;
        // SAFETY: the engine's generic parse types.
        let b = unsafe { parse::parse_with_header(ty, text.as_bytes(), &hdr, parse::A2B_BUFSIZE) }?;
        if b.len() > parse::A2B_BUFSIZE {
            return Err(E2BIG);
        }
        Ok((g.cookie, g.cmd, b))
    }

    /// Data leaving node `from` on hook `hook`.
    fn send_data(&mut self, from: u32, hook: &str, data: Vec<u8>, depth: u32) {
        if depth > 8 {
            return;
        }
        let Some(h) = self
            .nodes
            .get(&from)
            .and_then(|n| n.hooks.iter().find(|h| h.name == hook))
        else {
            return;
        };
        let (to, th) = (h.peer, h.peer_hook.clone());
        let Some(ty) = self.nodes.get(&to).map(|n| n.ty) else {
            return;
        };
        match ty {
            Ty::Echo => self.send_data(to, &th, data, depth + 1),
            Ty::Hole => {
                if let Some(h) = self
                    .nodes
                    .get_mut(&to)
                    .and_then(|n| n.hooks.iter_mut().find(|h| h.name == th))
                {
                    h.stats.0 += 1;
                    h.stats.1 += data.len() as u64;
                }
            }
            Ty::Socket => {
                if let Some(ds) = self.nodes[&to].data {
                    let mut sa = vec![(th.len() + 3) as u8, 32];
                    sa.extend_from_slice(th.as_bytes());
                    sa.push(0);
                    if let Some(s) = self.socks.get_mut(&ds) {
                        s.q.push_back((data, sa));
                    }
                }
            }
        }
    }

    fn close_fd(&mut self, fd: Fd) {
        let Some(s) = self.socks.remove(&fd) else {
            return;
        };
        let Some(id) = s.node else { return };
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if s.proto == NG_CONTROL {
            n.ctl = None;
        } else {
            n.data = None;
        }
        if n.ctl.is_none() && n.data.is_none() {
            self.rmnode(id);
        }
    }
}

impl SockApi for FakeNet {
    fn backend(&self) -> String {
        "fake (pure-Rust model; self-test only)".into()
    }

    fn socket(&mut self, proto: i32) -> Result<Fd, Errno> {
        let mut st = self.0.borrow_mut();
        if proto != NG_CONTROL && proto != NG_DATA {
            return Err(EPROTONOSUPPORT);
        }
        if proto == NG_CONTROL && st.user {
            return Err(EPERM);
        }
        let fd = st.next_fd;
        st.next_fd += 1;
        let node = (proto == NG_CONTROL).then(|| {
            let id = st.new_node(Ty::Socket);
            if let Some(n) = st.nodes.get_mut(&id) {
                n.ctl = Some(fd);
            }
            id
        });
        st.socks.insert(
            fd,
            Sock {
                proto,
                node,
                q: VecDeque::new(),
                disconnected: false,
            },
        );
        Ok(fd)
    }

    fn bind(&mut self, fd: Fd, sa: &[u8]) -> Result<(), Errno> {
        let mut st = self.0.borrow_mut();
        let s = st.socks.get(&fd).ok_or(EBADF)?;
        if s.proto != NG_CONTROL {
            return Err(fbsd_sys::EOPNOTSUPP as Errno);
        }
        let id = s.node.ok_or(EINVAL)?;
        let len = sa.first().copied().unwrap_or(0) as usize;
        if !(4..=34).contains(&len) || sa.get(2) == Some(&0) || sa.get(len - 1) != Some(&0) {
            return Err(EINVAL);
        }
        let name = sockaddr_data(sa);
        st.name_node(id, &name)
    }

    fn connect(&mut self, fd: Fd, sa: &[u8]) -> Result<(), Errno> {
        let mut st = self.0.borrow_mut();
        let s = st.socks.get(&fd).ok_or(EBADF)?;
        if s.proto == NG_CONTROL {
            return Err(EINVAL);
        }
        if s.node.is_some() {
            return Err(EISCONN);
        }
        let id = st.resolve(None, &sockaddr_data(sa))?;
        let n = &st.nodes[&id];
        if n.ty != Ty::Socket {
            return Err(EINVAL);
        }
        if n.data.is_some() {
            return Err(EADDRINUSE);
        }
        if let Some(n) = st.nodes.get_mut(&id) {
            n.data = Some(fd);
        }
        if let Some(s) = st.socks.get_mut(&fd) {
            s.node = Some(id);
        }
        Ok(())
    }

    fn sendto(&mut self, fd: Fd, buf: &[u8], sa: &[u8]) -> Result<usize, Errno> {
        let mut st = self.0.borrow_mut();
        let s = st.socks.get(&fd).ok_or(EBADF)?;
        if s.disconnected {
            return Err(EPIPE);
        }
        if buf.len() > SOCKBUF {
            return Err(fbsd_sys::EMSGSIZE as Errno);
        }
        let (proto, node) = (s.proto, s.node);
        let sg_len = sa.first().copied().unwrap_or(0) as usize;
        if proto == NG_CONTROL {
            let here = node.ok_or(EINVAL)?;
            if sg_len > 34 {
                return Err(EINVAL);
            }
            let path = msg::cstr(sa.get(2..sg_len.max(2)).unwrap_or(&[]));
            let m = NgMsg::decode(buf);
            if buf.len() < msg::HDRLEN || m.version != msg::NG_VERSION {
                return Err(EINVAL);
            }
            if m.cookie == msg::NGM_GENERIC_COOKIE && m.cmd == cmd::MKPEER {
                let ty = msg::cstr(m.data.get(..32).unwrap_or(&[]));
                if !["echo", "hole", "socket"].contains(&ty.as_str()) {
                    // ng_socket's autoload: kldload("ng_<type>") finds no file.
                    return Err(ENOENT);
                }
            }
            let dest = st.resolve(Some(here), &path)?;
            st.rcvmsg(dest, m, here)?;
            Ok(buf.len())
        } else {
            let here = node.ok_or(ENOTCONN)?;
            if sg_len > 34 {
                return Err(EINVAL);
            }
            let hook = msg::cstr(sa.get(2..sg_len.max(2)).unwrap_or(&[]));
            let n = &st.nodes[&here];
            let hook = if hook.is_empty() {
                if n.hooks.len() != 1 {
                    return Err(EDESTADDRREQ);
                }
                n.hooks[0].name.clone()
            } else {
                if hook.len() >= 32 {
                    return Err(EINVAL);
                }
                if !n.hooks.iter().any(|h| h.name == hook) {
                    return Err(EHOSTUNREACH);
                }
                hook
            };
            st.send_data(here, &hook, buf.to_vec(), 0);
            Ok(buf.len())
        }
    }

    fn poll(&mut self, fd: Fd, _wait: Wait) -> bool {
        let st = self.0.borrow();
        st.socks
            .get(&fd)
            .is_some_and(|s| !s.q.is_empty() || s.disconnected)
    }

    fn recvfrom(&mut self, fd: Fd, buflen: usize, _wait: Wait) -> Result<Option<Datagram>, Errno> {
        let mut st = self.0.borrow_mut();
        let s = st.socks.get_mut(&fd).ok_or(EBADF)?;
        match s.q.pop_front() {
            Some((mut b, sa)) => {
                b.truncate(buflen);
                Ok(Some((b, sa)))
            }
            None if s.disconnected => Ok(Some((Vec::new(), Vec::new()))),
            None => Ok(None),
        }
    }

    fn rcvbuf(&mut self, _fd: Fd) -> Result<usize, Errno> {
        Ok(SOCKBUF)
    }

    fn close(&mut self, fd: Fd) {
        self.0.borrow_mut().close_fd(fd);
    }

    fn kldload(&mut self, _file: &str) -> Result<(), Errno> {
        Err(fbsd_sys::EEXIST as Errno)
    }

    fn pump(&mut self) -> bool {
        false
    }

    fn open_sockets(&self) -> usize {
        self.0.borrow().socks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_names() {
        assert_eq!(decode_id("[1f]"), Some(0x1f));
        assert_eq!(decode_id("[0x1F]"), Some(0x1f));
        assert_eq!(decode_id("[0]"), None);
        assert_eq!(decode_id("[100000001]"), Some(1));
        assert_eq!(decode_id("[x]"), None);
        assert_eq!(decode_id("foo"), None);
    }

    #[test]
    fn paths() {
        let net = FakeNet::new();
        let mut st = net.0.borrow_mut();
        let a = st.new_node(Ty::Socket);
        let b = st.new_node(Ty::Echo);
        st.add_link(a, "x", b, "y");
        st.nodes.get_mut(&b).unwrap().name = "ec".into();
        assert_eq!(st.resolve(Some(a), "."), Ok(a));
        assert_eq!(st.resolve(Some(a), ".:x"), Ok(b));
        assert_eq!(st.resolve(Some(a), "x"), Ok(b));
        assert_eq!(st.resolve(Some(a), "ec:y"), Ok(a));
        assert_eq!(st.resolve(Some(a), "[2]:"), Ok(b));
        assert_eq!(st.resolve(Some(a), "nosuch:"), Err(ENOENT));
        assert_eq!(st.resolve(Some(a), ".:nohook"), Err(ENOENT));
        assert_eq!(st.resolve(Some(a), ":"), Err(EINVAL));
        assert_eq!(st.resolve(Some(a), "x..y"), Err(EINVAL));
        assert_eq!(st.resolve(None, "x"), Err(EINVAL));
    }
}
