//! The fuzz targets: what one input does to the kernel.
//!
//! * `ksock-msg` — binary and ASCII control messages (and their
//!   BINARY2ASCII / ASCII2BINARY conversions) to a ksocket in one of six
//!   states: fresh, bound, connected, listening, an accepted clone, a local
//!   (`PF_LOCAL`) socket; interleaved with data on its hook and actions of
//!   its Linux peer.
//! * `ngsock-calls` — sequences of `PF_NETGRAPH` system calls: `socket`,
//!   `bind`, `connect`, `sendto` with any address and payload, `recvfrom`,
//!   `close`, socket options, generic control messages (MKPEER, CONNECT,
//!   NAME, RMHOOK, SHUTDOWN, lists, conversions), data on hooks, and
//!   `kldunload` / `kldload` of the modules.
//! * `ksock-data` — packets into a ksocket from a user process or from the
//!   `fzinject` node (tags, `M_BCAST`/`M_MCAST`, mbuf chains), packets
//!   from its Linux peer, end of file and resets, full send buffers.
//!
//! Every target begins with an optional allocation-failure plan (none,
//! or every/nth/from-N failures of malloc, mbufs, tags or all of them),
//! applied once the target's starting state is built.

use std::io::Write;
use std::net::{Shutdown, TcpStream};

use super::gen::{self, Known};
use super::inject;
use super::input::Input;
use super::world::{self, cfield, idpath, settle, Proc, GEN_COOKIE, KS_COOKIE, SOCK_COOKIE};
use crate::kern::domain as kd;
use crate::kern::fault::{self, FaultPlan};

/// A fuzz target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    KsockMsg,
    NgsockCalls,
    KsockData,
    /// Not fuzzed: breaks the kernel's contracts on purpose, to show the
    /// fork server reports each kind of finding (see [`selftest`]).
    Selftest,
}

/// Every target, with its name.
pub const TARGETS: [(&str, Target); 3] = [
    ("ksock-msg", Target::KsockMsg),
    ("ngsock-calls", Target::NgsockCalls),
    ("ksock-data", Target::KsockData),
];

impl Target {
    pub fn name(self) -> &'static str {
        if self == Target::Selftest {
            return "selftest";
        }
        TARGETS.iter().find(|t| t.1 == self).map_or("?", |t| t.0)
    }

    pub fn by_name(name: &str) -> Option<Target> {
        if name == "selftest" {
            return Some(Target::Selftest);
        }
        TARGETS.iter().find(|t| t.0 == name).map(|t| t.1)
    }
}

/// Prints a line about the case when `NGHARNESS_FUZZ_TRACE` is set.
pub fn trace(args: std::fmt::Arguments) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("NGHARNESS_FUZZ_TRACE").is_some()) {
        eprintln!("fuzz: {args}");
    }
}

/// Most operations one input runs.
const MAX_OPS: usize = 48;

/// Runs `data` as an input of `target` on the booted kernel. Does not
/// tear down: the caller runs the end-of-case checks.
pub fn run(target: Target, data: &[u8]) {
    inject::register();
    let mut inp = Input::new(data);
    let plan = fault_plan(&mut inp);
    match target {
        Target::KsockMsg => ksock_msg(&mut inp, plan),
        Target::NgsockCalls => ngsock_calls(&mut inp, plan),
        Target::KsockData => ksock_data(&mut inp, plan),
        Target::Selftest => selftest(data),
    }
    fault::clear();
    inject::shutdown_all();
}

/// The allocation-failure plan of an input (its first two bytes).
fn fault_plan(inp: &mut Input) -> Option<FaultPlan> {
    let a = inp.u8();
    let b = inp.u8();
    if a < 160 {
        return None;
    }
    let class = [
        "all",
        "malloc",
        "mbuf",
        "tag",
        "type=netgraph_ksock",
        "type=netgraph_sock",
        "type=netgraph_msg",
        "type=netgraph_item",
    ][usize::from(a & 7)];
    let n = u64::from(b % 32) + 1;
    let trigger = match (a >> 3) & 3 {
        0 => format!("nth={n}"),
        1 => format!("every={}", n + 1),
        2 => format!("from={n}"),
        _ => format!("nth={}", n * 4),
    };
    FaultPlan::parse(&format!("{class}:{trigger}")).ok()
}

fn arm(plan: &Option<FaultPlan>) {
    if let Some(p) = plan {
        fault::configure(p.clone());
    }
}

// ---------------------------------------------------------------------------
// A ksocket in a chosen state

/// A case's ksocket and what it knows about it.
struct Ks {
    p: Proc,
    /// Path of the ksocket the messages go to.
    path: String,
    /// Our hook name toward it (on the socket node), if any.
    hook: Option<String>,
    known: Known,
    peers: world::Peers,
    stream: bool,
    local: bool,
    inet6: bool,
}

fn sin_bytes(port: u16, v6: bool) -> Vec<u8> {
    if v6 {
        let mut v = vec![28u8, gen::AF_INET6];
        v.extend_from_slice(&port.to_be_bytes());
        v.extend_from_slice(&[0u8; 4]);
        let mut a = [0u8; 16];
        a[15] = 1;
        v.extend_from_slice(&a);
        v.extend_from_slice(&[0u8; 4]);
        v
    } else {
        let mut v = vec![16u8, gen::AF_INET];
        v.extend_from_slice(&port.to_be_bytes());
        v.extend_from_slice(&[127, 0, 0, 1]);
        v.extend_from_slice(&[0u8; 8]);
        v
    }
}

fn sun_bytes(name: &str) -> Vec<u8> {
    let mut v = vec![0u8, gen::AF_LOCAL];
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    v[0] = v.len() as u8;
    v
}

impl Ks {
    /// A ksocket of `hookname` hooked to a new socket node (on `via`'s
    /// hook `k` when given: the fzinject node).
    fn new(hookname: &str, inject_first: bool) -> Option<Ks> {
        let mut p = match Proc::open() {
            Ok(p) => p,
            Err(e) => {
                trace(format_args!("NgMkSockNode: errno {e}"));
                return None;
            }
        };
        let me = idpath(p.id);
        let (path, hook) = if inject_first {
            p.mkpeer(&me, inject::TYPE, "f", "up").ok()?;
            let inj = p.nodeid(&format!("{me}f")).ok()?;
            p.mkpeer(&idpath(inj), "ksocket", inject::HOOK_NAME, hookname)
                .ok()?;
            let kid = p
                .nodeid(&format!("{}{}", idpath(inj), inject::HOOK_NAME))
                .ok()?;
            (idpath(kid), None)
        } else {
            p.mkpeer(&me, "ksocket", "k", hookname).ok()?;
            let kid = p.nodeid(&format!("{me}k")).ok()?;
            (idpath(kid), Some("k".to_string()))
        };
        let mut known = Known::default();
        known.ids.push(p.id);
        Some(Ks {
            p,
            path,
            hook,
            known,
            peers: world::Peers::default(),
            stream: hookname.contains("stream"),
            local: hookname.starts_with("local"),
            inet6: hookname.starts_with("inet6"),
        })
    }

    fn ks(&mut self, cmd: u32, args: &[u8]) -> Result<(), i32> {
        let path = self.path.clone();
        self.p.send(&path, KS_COOKIE, cmd, args).1
    }

    fn ks_reply(&mut self, cmd: u32, args: &[u8]) -> Option<world::Msg> {
        let path = self.path.clone();
        let (t, r) = self.p.send(&path, KS_COOKIE, cmd, args);
        r.ok()?;
        self.p.reply(t)
    }

    /// Binds to an ephemeral loopback port (or local name) and learns it.
    fn bind(&mut self) {
        let a = if self.local {
            sun_bytes(gen::LOCAL_NAMES[0])
        } else {
            sin_bytes(0, self.inet6)
        };
        let _ = self.ks(fbsd_sys::NGM_KSOCKET_BIND, &a);
        self.learn_name();
    }

    fn learn_name(&mut self) {
        if let Some(m) = self.ks_reply(fbsd_sys::NGM_KSOCKET_GETNAME, &[]) {
            if m.data.len() >= 4 && !self.local {
                let port = u16::from_be_bytes([m.data[2], m.data[3]]);
                if !self.known.ports.contains(&port) {
                    self.known.ports.push(port);
                }
            }
        }
    }

    /// Connects to a Linux peer.
    fn connect_peer(&mut self) {
        let a = if self.local {
            let name = gen::LOCAL_NAMES[1];
            if self.stream {
                self.peers.unix_listener = std::os::unix::net::UnixListener::bind(name).ok();
                if let Some(l) = &self.peers.unix_listener {
                    let _ = l.set_nonblocking(true);
                }
            } else {
                self.peers.unix_dgram = std::os::unix::net::UnixDatagram::bind(name).ok();
                if let Some(u) = &self.peers.unix_dgram {
                    let _ = u.set_nonblocking(true);
                }
            }
            sun_bytes(name)
        } else if self.stream {
            let port = self.peers.tcp_port();
            self.known.ports.push(port);
            sin_bytes(port, false)
        } else if self.inet6 {
            let port = self.peers.udp6_port();
            self.known.ports.push(port);
            sin_bytes(port, true)
        } else {
            let port = self.peers.udp_port();
            self.known.ports.push(port);
            sin_bytes(port, false)
        };
        let _ = self.ks(fbsd_sys::NGM_KSOCKET_CONNECT, &a);
        settle();
        self.peers.accept_tcp();
        if let Some(l) = &self.peers.unix_listener {
            while let Ok((s, _)) = l.accept() {
                let _ = s.set_nonblocking(true);
                self.peers.unix.push(s);
            }
        }
        self.p.drain();
    }

    /// Listens; true if it did.
    fn listen(&mut self) -> bool {
        self.bind();
        self.ks(fbsd_sys::NGM_KSOCKET_LISTEN, &5i32.to_ne_bytes())
            .is_ok()
    }

    /// Accepts one connection from a Linux client and makes the clone the
    /// target (hooked to the socket node as `c` when `hook`).
    fn accept_clone(&mut self, hook: bool) {
        if !self.listen() {
            return;
        }
        let path = self.path.clone();
        let (t, r) = self
            .p
            .send(&path, KS_COOKIE, fbsd_sys::NGM_KSOCKET_ACCEPT, &[]);
        if r.is_err() {
            return;
        }
        let Some(&port) = self.known.ports.first() else {
            return;
        };
        let Ok(c) = TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let _ = c.set_nonblocking(true);
        self.peers.tcp.push(c);
        let Some(rep) = self.p.reply(t) else {
            return;
        };
        if rep.data.len() < 4 {
            return;
        }
        let clone = u32::from_ne_bytes([rep.data[0], rep.data[1], rep.data[2], rep.data[3]]);
        self.known.ids.push(clone);
        self.path = idpath(clone);
        if hook {
            let me = idpath(self.p.id);
            if self.p.connect(&me, &idpath(clone), "c", "x").is_ok() {
                self.hook = Some("c".to_string());
            }
        }
        settle();
    }

    /// One action of the Linux peers.
    fn peer_action(&mut self, inp: &mut Input) {
        let data = inp.payload(9000);
        let own = self.known.ports.first().copied();
        match inp.below(8) {
            0 | 1 => {
                if let Some(p) = own {
                    let v6 = self.inet6;
                    if v6 {
                        self.peers.udp6_port();
                    } else {
                        self.peers.udp_port();
                    }
                    let (sock, host) = if v6 {
                        (&self.peers.udp6, "::1")
                    } else {
                        (&self.peers.udp, "127.0.0.1")
                    };
                    if let Some(u) = sock {
                        let _ = u.send_to(&data, (host, p));
                    }
                }
            }
            2 => {
                // A datagram to a multicast group the ksocket may have joined.
                if let (Some(p), Ok(u)) = (own, std::net::UdpSocket::bind("127.0.0.1:0")) {
                    let _ = u.set_multicast_loop_v4(true);
                    let _ = socket_mcast_if(&u);
                    let _ = u.send_to(&data, ("239.1.2.3", p));
                }
            }
            3 => {
                if let Some(s) = self.peers.tcp.last_mut() {
                    let _ = s.write(&data);
                }
                if let Some(s) = self.peers.unix.last_mut() {
                    let _ = s.write(&data);
                }
                if let Some(u) = &self.peers.unix_dgram {
                    let _ = u.send_to(&data, gen::LOCAL_NAMES[0]);
                }
            }
            4 => {
                // End of file from the peer.
                if let Some(s) = self.peers.tcp.last() {
                    let _ = s.shutdown(Shutdown::Write);
                }
                if let Some(s) = self.peers.unix.last() {
                    let _ = s.shutdown(Shutdown::Write);
                }
            }
            5 => {
                // A reset: linger 0, then close.
                if let Some(s) = self.peers.tcp.pop() {
                    set_linger0(&s);
                    drop(s);
                }
                self.peers.unix.pop();
            }
            6 => {
                // A new connection to whatever listens.
                if let Some(p) = own {
                    if let Ok(c) = TcpStream::connect(("127.0.0.1", p)) {
                        let _ = c.set_nonblocking(true);
                        self.peers.tcp.push(c);
                    }
                }
                if self.peers.tcp.len() > 6 {
                    self.peers.tcp.remove(0);
                }
            }
            _ => {
                // The peer reads what it got.
                let mut buf = [0u8; 4096];
                if let Some(u) = &self.peers.udp {
                    while u.recv_from(&mut buf).is_ok() {}
                }
                for s in &mut self.peers.tcp {
                    let _ = std::io::Read::read(s, &mut buf);
                }
            }
        }
    }

    /// A message op shared by the message and data targets.
    fn msg_op(&mut self, inp: &mut Input) {
        match inp.below(8) {
            0..=2 => {
                // Binary ksocket message, sometimes lying about its length
                // or flags, sometimes under another cookie.
                let cmd = gen::ks_cmd(inp);
                let resp = inp.below(8) == 0;
                let args = gen::ks_args(inp, &self.known, cmd, resp);
                let arglen = match inp.below(12) {
                    0 => inp.u32(),
                    1 => args.len().saturating_sub(inp.below(8)) as u32,
                    _ => args.len() as u32,
                };
                let cookie = match inp.below(16) {
                    0 => GEN_COOKIE,
                    1 => SOCK_COOKIE,
                    2 => inp.u32(),
                    _ => KS_COOKIE,
                };
                let flags = if resp { fbsd_sys::NGF_RESP } else { 0 };
                let t = self.p.next_token();
                let bytes = world::encode(cookie, cmd, flags, t, arglen, b"", &args);
                let path = self.path.clone();
                if self.p.send_raw(path.as_bytes(), &bytes).is_ok() && inp.bool() {
                    let _ = self.p.reply(t);
                }
            }
            3 | 4 => {
                let name = if inp.below(10) == 0 {
                    inp.name(20)
                } else {
                    gen::KS_NAMES[inp.below(gen::KS_NAMES.len())].to_string()
                };
                let text = gen::ks_text(inp, &self.known, &name);
                let path = self.path.clone();
                let _ = self.p.send_ascii(&path, name.as_bytes(), text.as_bytes());
            }
            5 => {
                // BINARY2ASCII of a ksocket message or reply.
                let cmd = gen::ks_cmd(inp);
                let resp = inp.bool();
                let args = gen::ks_args(inp, &self.known, cmd, resp);
                let arglen = if inp.below(6) == 0 {
                    inp.u32() % 4096
                } else {
                    args.len() as u32
                };
                let flags = if resp { fbsd_sys::NGF_RESP } else { 0 };
                let inner = world::encode(KS_COOKIE, cmd, flags, 7, arglen, b"", &args);
                let path = self.path.clone();
                let _ = self
                    .p
                    .request(&path, GEN_COOKIE, fbsd_sys::NGM_BINARY2ASCII, &inner);
            }
            6 => {
                // ASCII2BINARY only.
                let name = gen::KS_NAMES[inp.below(gen::KS_NAMES.len())];
                let text = gen::ks_text(inp, &self.known, name);
                let mut args = text.into_bytes();
                args.push(0);
                // Sometimes a reply's text (GETOPT, GETNAME... replies).
                let flags = if inp.below(3) == 0 {
                    fbsd_sys::NGF_RESP
                } else {
                    0
                };
                let inner =
                    world::encode(0, 0, flags, 0, args.len() as u32, name.as_bytes(), &args);
                let path = self.path.clone();
                let _ = self
                    .p
                    .request(&path, GEN_COOKIE, fbsd_sys::NGM_ASCII2BINARY, &inner);
            }
            _ => {
                // A generic message to the ksocket.
                let cmd = inp.pick(&[
                    fbsd_sys::NGM_NODEINFO,
                    fbsd_sys::NGM_LISTHOOKS,
                    fbsd_sys::NGM_TEXT_STATUS,
                    fbsd_sys::NGM_RMHOOK,
                    fbsd_sys::NGM_SHUTDOWN,
                    fbsd_sys::NGM_NAME,
                ]);
                let args = match cmd {
                    fbsd_sys::NGM_RMHOOK | fbsd_sys::NGM_NAME => cfield(inp.short_bytes(40), 32),
                    _ => Vec::new(),
                };
                if matches!(cmd, fbsd_sys::NGM_SHUTDOWN | fbsd_sys::NGM_RMHOOK) && inp.below(4) != 0
                {
                    return;
                }
                let path = self.path.clone();
                let _ = self.p.send(&path, GEN_COOKIE, cmd, &args);
            }
        }
    }

    fn data_op(&mut self, inp: &mut Input) {
        let data = inp.payload(70_000);
        if let Some(h) = self.hook.clone() {
            let _ = self.p.send_data(h.as_bytes(), &data);
        }
    }

    fn misc_op(&mut self, inp: &mut Input) {
        match inp.below(4) {
            0 => settle(),
            1 => crate::kern::sched::advance(u64::from(inp.u16())),
            2 => self.p.drain(),
            _ => {
                self.peers.accept_tcp();
                settle();
                self.p.drain();
            }
        }
    }
}

fn socket_mcast_if(u: &std::net::UdpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let a: [u8; 4] = [127, 0, 0, 1];
    // SAFETY: setsockopt on our own descriptor with a 4-byte in_addr.
    let r = unsafe {
        libc::setsockopt(
            u.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            a.as_ptr().cast(),
            4,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn set_linger0(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on our own descriptor with a struct linger.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
}

/// The self-test target: each input byte is one deliberate bug —
/// `l` leaks an mbuf, `v` records a violation, `p` panics the kernel,
/// `h` hangs, `r` panics in harness code, `u` uses a ksocket normally.
fn selftest(data: &[u8]) {
    for &b in data {
        match b {
            b'l' => {
                let _leak = crate::kern::mbuf::from_bytes(b"leaked on purpose");
            }
            b'v' => crate::kern::violation("selftest: a violation on purpose"),
            b'p' => crate::kern::kernel_panic("selftest: a panic on purpose"),
            b'h' => std::thread::sleep(std::time::Duration::from_secs(3600)),
            b'r' => panic!("selftest: a harness panic on purpose"),
            b'u' => {
                if let Some(mut k) = Ks::new("inet/dgram/udp", false) {
                    k.bind();
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// ksock-msg

/// The ksocket states of `ksock-msg`.
const STATES: [&str; 6] = [
    "fresh",
    "bound",
    "connected",
    "listening",
    "accepted",
    "local",
];

fn ksock_msg(inp: &mut Input, plan: Option<FaultPlan>) {
    let state = inp.below(STATES.len());
    let hookname = match state {
        5 => inp.pick(&["local/dgram/0", "local/stream/0", "local/seqpacket/0"]),
        3 | 4 => inp.pick(&["inet/stream/tcp", "inet6/stream/tcp"]),
        0 if inp.below(4) == 0 => gen::KS_HOOKS[inp.below(gen::KS_HOOKS.len())],
        _ => inp.pick(&[
            "inet/dgram/udp",
            "inet/stream/tcp",
            "inet6/dgram/udp",
            "inet/dgram/udp",
        ]),
    };
    let Some(mut k) = Ks::new(hookname, false) else {
        return;
    };
    match state {
        1 => k.bind(),
        2 => {
            k.bind();
            k.connect_peer();
        }
        3 => {
            k.listen();
        }
        4 => k.accept_clone(inp.below(4) != 0),
        5 => {
            k.bind();
            if inp.bool() {
                k.connect_peer();
            }
        }
        _ => {}
    }
    settle();
    k.p.drain();
    arm(&plan);
    for _ in 0..MAX_OPS {
        if inp.is_empty() {
            break;
        }
        match inp.below(12) {
            0..=6 => k.msg_op(inp),
            7 | 8 => k.data_op(inp),
            9 | 10 => k.peer_action(inp),
            _ => k.misc_op(inp),
        }
    }
    settle();
}

// ---------------------------------------------------------------------------
// ngsock-calls

/// Paths a system-call case addresses (plus any bytes).
fn ng_path(inp: &mut Input, ids: &[u32]) -> Vec<u8> {
    match inp.below(14) {
        0 => b".".to_vec(),
        1 => b".:".to_vec(),
        2 => b"".to_vec(),
        3 => b"a:".to_vec(),
        4 => b"a:k".to_vec(),
        5 => b".:k".to_vec(),
        6 => b"k".to_vec(),
        7 => b"k.k".to_vec(),
        8 | 9 if !ids.is_empty() => idpath(ids[inp.below(ids.len())]).into_bytes(),
        10 if !ids.is_empty() => format!("{}k", idpath(ids[inp.below(ids.len())])).into_bytes(),
        11 => b"[0]:".to_vec(),
        12 => vec![b'x'; 40 + inp.below(600)],
        _ => inp.short_bytes(64).to_vec(),
    }
}

fn ng_name(inp: &mut Input) -> Vec<u8> {
    match inp.below(8) {
        0 => b"a".to_vec(),
        1 => b"b".to_vec(),
        2 => b"".to_vec(),
        3 => vec![b'n'; 31],
        4 => vec![b'n'; 32],
        5 => b"x.y".to_vec(),
        6 => b"x:".to_vec(),
        _ => inp.short_bytes(40).to_vec(),
    }
}

fn ngsock_calls(inp: &mut Input, plan: Option<FaultPlan>) {
    use world::{NG_CONTROL, NG_DATA, PF_NETGRAPH, SOCK_DGRAM};
    let mut fds: Vec<i32> = Vec::new();
    let mut ids: Vec<u32> = Vec::new();
    let mut token = 1u32;
    arm(&plan);
    for _ in 0..MAX_OPS {
        if inp.is_empty() {
            break;
        }
        let fd = if fds.is_empty() {
            -1
        } else {
            fds[inp.below(fds.len())]
        };
        match inp.below(16) {
            0 | 1 => {
                let proto = match inp.below(8) {
                    0 => inp.u8().into(),
                    1..=4 => NG_CONTROL,
                    _ => NG_DATA,
                };
                let ty = if inp.below(10) == 0 {
                    inp.pick(&[1, 3, 5])
                } else {
                    SOCK_DGRAM
                };
                if let Ok(f) = kd::socket(PF_NETGRAPH, ty, proto) {
                    fds.push(f);
                    if fds.len() > 8 {
                        let _ = kd::close(fds.remove(0));
                    }
                }
            }
            2 => {
                let mut a = world::sockaddr_ng(&ng_name(inp));
                if inp.below(6) == 0 {
                    a[0] = inp.u8();
                }
                let _ = kd::bind(fd, &a);
            }
            3 => {
                let mut a = world::sockaddr_ng(&ng_path(inp, &ids));
                if inp.below(6) == 0 {
                    a[0] = inp.u8();
                }
                let _ = kd::connect(fd, &a);
            }
            4..=6 => {
                // A control message (generic, socket or ksocket cookie).
                let (cookie, cmd, args) = gen_msg(inp, &ids);
                token = token.wrapping_add(1);
                let arglen = if inp.below(10) == 0 {
                    inp.u32()
                } else {
                    args.len() as u32
                };
                let bytes = world::encode(cookie, cmd, 0, token, arglen, b"", &args);
                let bytes = if inp.below(12) == 0 {
                    bytes[..inp.below(bytes.len() + 1)].to_vec()
                } else {
                    bytes
                };
                let to = world::sockaddr_ng(&ng_path(inp, &ids));
                let to = if inp.below(8) == 0 { None } else { Some(to) };
                let _ = kd::sendto(fd, &bytes, to.as_deref(), 0);
            }
            7 => {
                let data = inp.payload(70_000);
                let to = match inp.below(4) {
                    0 => None,
                    _ => Some(world::sockaddr_ng(&ng_name(inp))),
                };
                let _ = kd::sendto(fd, &data, to.as_deref(), 0);
            }
            8 => {
                if let Ok((b, _, _)) = kd::recvfrom(
                    fd,
                    inp.pick(&[0usize, 1, 56, 4096, 65536]),
                    world::MSG_DONTWAIT,
                ) {
                    // Learn node IDs from NODEINFO / MKPEER-era replies.
                    let m = world::Msg::decode(&b);
                    if m.cmd == fbsd_sys::NGM_NODEINFO && m.data.len() >= 68 {
                        let id =
                            u32::from_le_bytes([m.data[64], m.data[65], m.data[66], m.data[67]]);
                        if !ids.contains(&id) && ids.len() < 16 {
                            ids.push(id);
                        }
                    }
                }
            }
            9 => {
                if fd >= 0 {
                    let _ = kd::close(fd);
                    fds.retain(|&f| f != fd);
                }
            }
            10 => {
                let any_level = inp.u32() as i32;
                let any_name = inp.u32() as i32;
                let level = inp.pick(&[fbsd_sys::SOL_SOCKET as i32, 0, any_level]);
                let name = inp.pick(&[
                    fbsd_sys::SO_RCVBUF as i32,
                    fbsd_sys::SO_SNDBUF as i32,
                    fbsd_sys::SO_TYPE as i32,
                    any_name,
                ]);
                if inp.bool() {
                    let v = inp.short_bytes(12).to_vec();
                    let _ = kd::setsockopt(fd, level, name, &v);
                } else {
                    let _ = kd::getsockopt(fd, level, name, inp.pick(&[0usize, 4, 64]));
                }
            }
            11 => {
                // A NODEINFO of "." to learn our node's ID.
                token = token.wrapping_add(1);
                let b = world::encode(GEN_COOKIE, fbsd_sys::NGM_NODEINFO, 0, token, 0, b"", &[]);
                let _ = kd::sendto(fd, &b, Some(&world::sockaddr_ng(b".")), 0);
                settle();
                if let Ok((b, _, _)) = kd::recvfrom(fd, 4096, world::MSG_DONTWAIT) {
                    let m = world::Msg::decode(&b);
                    if m.data.len() >= 68 {
                        let id =
                            u32::from_le_bytes([m.data[64], m.data[65], m.data[66], m.data[67]]);
                        if !ids.contains(&id) && ids.len() < 16 {
                            ids.push(id);
                        }
                    }
                }
            }
            12 => {
                // kldunload / kldload of a module.
                let name = inp.pick(&["ng_ksocket.ko", "ng_socket.ko", "ng_ksocket"]);
                if inp.bool() {
                    if let Some(id) = crate::kern::loader::file_id(name) {
                        // ng_socket refuses every unload unless allowed:
                        // allowed, its real unload path is what is fuzzed.
                        let _ = crate::kern::sysctl::set("net.graph.socket.allow_unload", 1);
                        let _ = crate::kern::loader::kldunload(
                            id,
                            crate::kern::loader::LINKER_UNLOAD_NORMAL,
                        );
                    }
                } else {
                    let _ = crate::kern::loader::kldload(name);
                }
            }
            13 => {
                let _ = kd::poll_readable(fd, Some(0));
                settle();
            }
            14 => crate::kern::sched::advance(u64::from(inp.u16())),
            _ => settle(),
        }
    }
    settle();
}

/// A control message for the system-call target: `(cookie, cmd, args)`.
fn gen_msg(inp: &mut Input, ids: &[u32]) -> (u32, u32, Vec<u8>) {
    match inp.below(10) {
        0..=6 => {
            let cmd = if inp.below(10) == 0 {
                inp.u32()
            } else {
                inp.pick(&gen::GEN_CMDS)
            };
            let args = match cmd {
                fbsd_sys::NGM_MKPEER => {
                    let ty = inp.pick(&[
                        "ksocket", "socket", "echo", "hole", "fzinject", "nosuch", "",
                    ]);
                    let mut a = cfield(ty.as_bytes(), 32);
                    let ours = ng_name(inp);
                    a.extend(cfield(&ours, 32));
                    let peer = if ty == "ksocket" {
                        gen::KS_HOOKS[inp.below(gen::KS_HOOKS.len())]
                            .as_bytes()
                            .to_vec()
                    } else {
                        ng_name(inp)
                    };
                    a.extend(cfield(&peer, 32));
                    a
                }
                fbsd_sys::NGM_CONNECT => {
                    let mut a = cfield(&ng_path(inp, ids), 512);
                    a.extend(cfield(&ng_name(inp), 32));
                    a.extend(cfield(&ng_name(inp), 32));
                    a
                }
                fbsd_sys::NGM_NAME | fbsd_sys::NGM_RMHOOK => cfield(&ng_name(inp), 32),
                fbsd_sys::NGM_BINARY2ASCII => {
                    let cookie = inp.pick(&[GEN_COOKIE, KS_COOKIE, SOCK_COOKIE]);
                    let cmd = inp.u8().into();
                    let args = inp.payload(200);
                    world::encode(
                        cookie,
                        cmd,
                        inp.u8().into(),
                        1,
                        args.len() as u32,
                        b"",
                        &args,
                    )
                }
                fbsd_sys::NGM_ASCII2BINARY => {
                    let name = inp.pick(&[
                        "mkpeer", "connect", "name", "rmhook", "bind", "setopt", "linger", "x",
                    ]);
                    let mut text = inp.short_bytes(120).to_vec();
                    text.push(0);
                    world::encode(0, 0, 0, 1, text.len() as u32, name.as_bytes(), &text)
                }
                _ => inp.payload(100),
            };
            (GEN_COOKIE, cmd, args)
        }
        7 => {
            let any = u32::from(inp.u8());
            let cmd = inp.pick(&[
                fbsd_sys::NGM_SOCK_CMD_NOLINGER,
                fbsd_sys::NGM_SOCK_CMD_LINGER,
                any,
            ]);
            (SOCK_COOKIE, cmd, inp.payload(16))
        }
        _ => {
            let cmd = gen::ks_cmd(inp);
            let k = Known::default();
            (KS_COOKIE, cmd, gen::ks_args(inp, &k, cmd, false))
        }
    }
}

// ---------------------------------------------------------------------------
// ksock-data

fn ksock_data(inp: &mut Input, plan: Option<FaultPlan>) {
    let injected = inp.below(3) != 0;
    let hookname = inp.pick(&[
        "inet/dgram/udp",
        "inet/dgram/udp",
        "inet/stream/tcp",
        "inet6/dgram/udp",
        "local/dgram/0",
        "local/stream/0",
    ]);
    let Some(mut k) = Ks::new(hookname, injected) else {
        return;
    };
    let connected = inp.below(3) != 0;
    k.bind();
    if connected || k.stream {
        k.connect_peer();
    } else {
        // An unconnected socket needs an address tag to send: a peer to
        // send to.
        let port = k.peers.udp_port();
        k.known.ports.push(port);
    }
    if inp.below(4) == 0 {
        // A small send buffer: sends fill it (EWOULDBLOCK paths).
        let mut v = (fbsd_sys::SOL_SOCKET as i32).to_ne_bytes().to_vec();
        v.extend_from_slice(&(fbsd_sys::SO_SNDBUF as i32).to_ne_bytes());
        v.extend_from_slice(&inp.pick(&[1i32, 512, 2048]).to_ne_bytes());
        let _ = k.ks(fbsd_sys::NGM_KSOCKET_SETOPT, &v);
    }
    settle();
    k.p.drain();
    arm(&plan);
    let kid = k.known.ids.last().copied().unwrap_or(0);
    for _ in 0..MAX_OPS {
        if inp.is_empty() {
            break;
        }
        match inp.below(10) {
            0..=3 if injected => {
                let p = packet(inp, &k.known, kid);
                let burst = if inp.below(6) == 0 {
                    1 + inp.below(64)
                } else {
                    1
                };
                for _ in 0..burst {
                    let _ = inject::send(&p);
                }
            }
            0..=3 => k.data_op(inp),
            4 | 5 => k.peer_action(inp),
            6 => k.msg_op(inp),
            _ => k.misc_op(inp),
        }
    }
    settle();
}

/// A packet for the fzinject node.
fn packet(inp: &mut Input, known: &Known, kid: u32) -> inject::Packet {
    let data = inp.payload(70_000);
    let chunk = match inp.below(4) {
        0 => 1 + inp.below(300),
        1 => inp.pick(&[2048usize, 4096]),
        _ => 0,
    };
    let flags = match inp.below(6) {
        0 => fbsd_sys::M_BCAST,
        1 => fbsd_sys::M_MCAST,
        2 => {
            u32::from(inp.u16()) << 4
                & 0x00ff_fff0
                & !(fbsd_sys::M_PKTHDR
                    | fbsd_sys::M_EXT
                    | fbsd_sys::M_EXTPG
                    | fbsd_sys::M_NOFREE
                    | fbsd_sys::M_RDONLY)
        }
        _ => 0,
    };
    let mut tags = Vec::new();
    for _ in 0..inp.below(4) {
        let cookie = match inp.below(6) {
            0 => inp.u32(),
            1 => fbsd_sys::NGM_KSOCKET_COOKIE + 1,
            _ => fbsd_sys::NGM_KSOCKET_COOKIE,
        };
        let ty = if inp.below(6) == 0 {
            inp.u16()
        } else {
            fbsd_sys::NG_KSOCKET_TAG_SOCKADDR as u16
        };
        let id = match inp.below(5) {
            0 => 0,
            1 => inp.u32(),
            _ => kid,
        };
        let mut payload = id.to_ne_bytes().to_vec();
        payload.extend(gen::sockaddr(inp, known));
        if inp.below(8) == 0 {
            payload.truncate(inp.below(payload.len() + 1));
        }
        tags.push((cookie, ty, payload));
    }
    inject::Packet {
        data,
        chunk,
        flags,
        tags,
    }
}
