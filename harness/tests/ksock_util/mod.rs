//! Shared helpers of the ng_ksocket conformance tests (`ksock_*.rs`).
//!
//! Each test loads `build/ng_socket.ko` and `build/ng_ksocket.ko` into the
//! harness kernel and drives ksocket nodes the way a libnetgraph program
//! does: binary `struct ng_mesg` messages on a `PF_NETGRAPH` control socket
//! and packets on its data socket (`ngharness::kern::domain`), with real
//! Linux UDP/TCP peers on the loopback interface outside netgraph.
//!
//! The harness kernel (loader, netgraph, socket layer, malloc tables,
//! violations) is per process or per OS thread, so every test runs in its
//! own child process ([`isolated`]): the parent re-executes the test binary
//! for that one test and checks its exit status. The child ends with the
//! harness's end-of-scenario checks: no socket, node, item, mbuf or malloc
//! leak, no lock held, both modules unload, no violation.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ngharness::kern::domain as kd;
use ngharness::kern::{fault, sched};
use ngharness::scenario::kernel::{HarnessKernel, Kernel};

pub use ngharness::kern::domain::Fd;

/// Longest time one test may take.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variable naming the test a child process runs.
pub const CHILD_ENV: &str = "NGSOCK_KSOCK_TEST_CHILD";

pub const EINVAL: i32 = fbsd_sys::EINVAL as i32;
pub const ENXIO: i32 = fbsd_sys::ENXIO as i32;
pub const ENOMEM: i32 = fbsd_sys::ENOMEM as i32;
pub const ENOBUFS: i32 = fbsd_sys::ENOBUFS as i32;
pub const ENOENT: i32 = fbsd_sys::ENOENT as i32;
pub const EISCONN: i32 = fbsd_sys::EISCONN as i32;
pub const EALREADY: i32 = fbsd_sys::EALREADY as i32;
pub const EINPROGRESS: i32 = fbsd_sys::EINPROGRESS as i32;
pub const ENOTCONN: i32 = fbsd_sys::ENOTCONN as i32;
pub const EOPNOTSUPP: i32 = fbsd_sys::EOPNOTSUPP as i32;
pub const EADDRINUSE: i32 = fbsd_sys::EADDRINUSE as i32;
pub const EAFNOSUPPORT: i32 = fbsd_sys::EAFNOSUPPORT as i32;
pub const ENOPROTOOPT: i32 = fbsd_sys::ENOPROTOOPT as i32;
pub const EWOULDBLOCK: i32 = fbsd_sys::EWOULDBLOCK as i32;
pub const ECONNREFUSED: i32 = fbsd_sys::ECONNREFUSED as i32;

pub const KS_COOKIE: u32 = fbsd_sys::NGM_KSOCKET_COOKIE;
pub const GEN_COOKIE: u32 = fbsd_sys::NGM_GENERIC_COOKIE;
pub const NGF_RESP: u32 = fbsd_sys::NGF_RESP;

/// ksocket command numbers.
pub mod ks {
    pub const BIND: u32 = fbsd_sys::NGM_KSOCKET_BIND;
    pub const LISTEN: u32 = fbsd_sys::NGM_KSOCKET_LISTEN;
    pub const ACCEPT: u32 = fbsd_sys::NGM_KSOCKET_ACCEPT;
    pub const CONNECT: u32 = fbsd_sys::NGM_KSOCKET_CONNECT;
    pub const GETNAME: u32 = fbsd_sys::NGM_KSOCKET_GETNAME;
    pub const GETPEERNAME: u32 = fbsd_sys::NGM_KSOCKET_GETPEERNAME;
    pub const SETOPT: u32 = fbsd_sys::NGM_KSOCKET_SETOPT;
    pub const GETOPT: u32 = fbsd_sys::NGM_KSOCKET_GETOPT;
    /// This node's statistics messages (improvement 5).
    pub const GETSTATS: u32 = 100;
    pub const CLRSTATS: u32 = 101;
    pub const GETCLRSTATS: u32 = 102;
}

/// `sizeof(struct ng_mesg)`.
pub const HDRLEN: usize = 56;
const NG_DATA: i32 = fbsd_sys::NG_DATA as i32;
const NG_CONTROL: i32 = fbsd_sys::NG_CONTROL as i32;
const PF_NETGRAPH: i32 = fbsd_sys::PF_NETGRAPH as i32;
const SOCK_DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;
const MSG_DONTWAIT: i32 = fbsd_sys::MSG_DONTWAIT as i32;
/// Receive buffer of the test's recvfrom calls (larger than any packet).
const RECVBUF: usize = 256 * 1024;

pub const SOL_SOCKET: i32 = fbsd_sys::SOL_SOCKET as i32;
pub const SO_REUSEADDR: i32 = fbsd_sys::SO_REUSEADDR as i32;
pub const SO_RCVBUF: i32 = fbsd_sys::SO_RCVBUF as i32;
pub const SO_SNDBUF: i32 = fbsd_sys::SO_SNDBUF as i32;

// ---------------------------------------------------------------------------
// Test processes and the kernel

fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository top")
        .to_path_buf()
}

/// The directory holding the modules: `$NGSOCK_BUILD` (the coverage run
/// points it at `build/cov`), else `build/` of this checkout.
pub fn build_dir() -> PathBuf {
    std::env::var_os("NGSOCK_BUILD").map_or_else(|| top().join("build"), PathBuf::from)
}

/// The two modules, if built.
pub fn modules() -> Option<[PathBuf; 2]> {
    let s = build_dir().join("ng_socket.ko");
    let k = build_dir().join("ng_ksocket.ko");
    if s.exists() && k.exists() {
        Some([s, k])
    } else {
        None
    }
}

/// True inside the child process started for test `name`.
fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Runs `body` for test `name` in a child process of its own, with both
/// modules loaded, then the end-of-test checks (see the module docs).
/// Prints SKIP and passes when the modules are not built.
pub fn isolated(name: &str, body: fn()) {
    let Some(kos) = modules() else {
        eprintln!("SKIP: build/ng_socket.ko or build/ng_ksocket.ko not built (run `make`)");
        return;
    };
    if is_child(name) {
        let mut k = HarnessKernel::boot(&kos).unwrap_or_else(|e| panic!("boot: {e}"));
        fault::clear();
        body();
        fault::clear();
        let problems = teardown(&mut k);
        assert!(problems.is_empty(), "end-of-test checks: {problems:#?}");
        return;
    }
    let exe = std::env::current_exe().expect("test executable");
    let mut child = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run child test");
    // Read both pipes while waiting, with a deadline (a hung kernel must
    // fail the test, not the whole run).
    let mut so = child.stdout.take().expect("stdout pipe");
    let mut se = child.stderr.take().expect("stderr pipe");
    let tout = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        v
    });
    let terr = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        v
    });
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child test") {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = tout.join().unwrap_or_default();
    let stderr = terr.join().unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "child test {name} still running after {CHILD_TIMEOUT:?}; killed:\n{}",
            String::from_utf8_lossy(&stderr)
        )
    };
    let out = std::process::Output {
        status,
        stdout,
        stderr,
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// Closes every socket, lets the kernel finish, and runs the harness's end
/// checks (which unload every module). Returns the problems found.
fn teardown(k: &mut HarnessKernel) -> Vec<String> {
    kd::close_all();
    settle();
    k.end_checks()
}

/// Lets one millisecond pass, in real time (for the Linux side) and in
/// model time (callouts and other kernel timers).
fn tick() {
    std::thread::sleep(Duration::from_millis(1));
    sched::advance(1);
}

/// Runs the kernel until nothing is runnable and nothing arrives from the
/// Linux side for a few milliseconds.
pub fn settle() {
    let mut quiet = 0;
    while quiet < 3 {
        if sched::run_once() {
            quiet = 0;
        } else {
            quiet += 1;
            tick();
        }
    }
}

/// Runs the kernel until `cond` holds or `ms` milliseconds have passed.
pub fn pump_until(ms: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        if !sched::run_once() {
            tick();
        }
    }
}

// ---------------------------------------------------------------------------
// Messages

/// A `struct ng_mesg` as the user sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub version: u8,
    pub arglen: u32,
    pub cmd: u32,
    pub flags: u32,
    pub token: u32,
    pub cookie: u32,
    pub cmdstr: String,
    pub data: Vec<u8>,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    for (i, x) in w.iter_mut().enumerate() {
        *x = b.get(off + i).copied().unwrap_or(0);
    }
    u32::from_ne_bytes(w)
}

/// The C string at the start of `b`.
pub fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// A fixed-size, NUL-padded C string field.
pub fn cfield(s: &str, n: usize) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.truncate(n - 1);
    v.resize(n, 0);
    v
}

/// Encodes a message header with an explicit `arglen` (which may disagree
/// with `args.len()`), followed by `args`.
pub fn encode_raw(
    cookie: u32,
    cmd: u32,
    flags: u32,
    token: u32,
    arglen: u32,
    args: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(HDRLEN + args.len());
    v.push(fbsd_sys::NG_VERSION as u8);
    v.extend_from_slice(&[0u8; 3]);
    v.extend_from_slice(&arglen.to_ne_bytes());
    v.extend_from_slice(&cmd.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&token.to_ne_bytes());
    v.extend_from_slice(&cookie.to_ne_bytes());
    v.extend_from_slice(&cfield(&format!("cmd{cmd}"), 32));
    v.extend_from_slice(args);
    v
}

/// Encodes a request message.
pub fn encode(cookie: u32, cmd: u32, token: u32, args: &[u8]) -> Vec<u8> {
    encode_raw(cookie, cmd, 0, token, args.len() as u32, args)
}

impl Msg {
    /// Decodes a received message.
    pub fn decode(b: &[u8]) -> Msg {
        assert!(b.len() >= HDRLEN, "short message: {} bytes", b.len());
        Msg {
            version: b[0],
            arglen: u32_at(b, 4),
            cmd: u32_at(b, 8),
            flags: u32_at(b, 12),
            token: u32_at(b, 16),
            cookie: u32_at(b, 20),
            cmdstr: cstr(&b[24..56]),
            data: b[HDRLEN..].to_vec(),
        }
    }

    /// The argument as one host-order `i32`.
    pub fn int(&self) -> i32 {
        assert_eq!(self.data.len(), 4, "{self:?}");
        i32::from_ne_bytes(self.data[..4].try_into().unwrap())
    }
}

/// A received control message and its source path (`[id]:`).
#[derive(Clone, Debug)]
pub struct Reply {
    pub from: String,
    pub msg: Msg,
}

/// One node of a NGM_LISTNODES reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub ty: String,
    pub id: u32,
    pub hooks: u32,
}

impl NodeInfo {
    fn decode(b: &[u8]) -> NodeInfo {
        NodeInfo {
            name: cstr(&b[0..32]),
            ty: cstr(&b[32..64]),
            id: u32_at(b, 64),
            hooks: u32_at(b, 68),
        }
    }
}

/// A `struct sockaddr_ng` for `path`, as libnetgraph builds it.
pub fn sockaddr_ng(path: &str) -> Vec<u8> {
    let mut v = vec![0u8, fbsd_sys::AF_NETGRAPH as u8];
    v.extend_from_slice(path.as_bytes());
    v.push(0);
    v[0] = v.len() as u8;
    v
}

/// A 16-byte `struct sockaddr_in` (FreeBSD layout: `sin_len`, family).
pub fn sin(addr: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = vec![16u8, 2];
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&addr);
    v.extend_from_slice(&[0u8; 8]);
    v
}

/// The port of a `struct sockaddr_in`.
pub fn sin_port(sa: &[u8]) -> u16 {
    u16::from_be_bytes([sa[2], sa[3]])
}

/// A `struct ng_ksocket_sockopt` with a value.
pub fn sockopt(level: i32, name: i32, value: &[u8]) -> Vec<u8> {
    let mut v = level.to_ne_bytes().to_vec();
    v.extend_from_slice(&name.to_ne_bytes());
    v.extend_from_slice(value);
    v
}

// ---------------------------------------------------------------------------
// A libnetgraph process: control and data socket of one socket node

/// `NgMkSockNode()`: an unnamed socket node with its control and data socket.
pub struct Ng {
    pub cs: Fd,
    pub ds: Fd,
    /// The socket node's ID.
    pub id: u32,
    token: u32,
}

impl Ng {
    /// A new socket node (control socket, NODEINFO to learn its ID, data
    /// socket connected to it).
    pub fn open() -> Ng {
        Ng::try_open().unwrap_or_else(|e| panic!("NgMkSockNode: errno {e}"))
    }

    /// As [`Ng::open`], reporting the first error (sockets opened so far are
    /// closed).
    pub fn try_open() -> Result<Ng, i32> {
        let cs = kd::socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL)?;
        let mut ng = Ng {
            cs,
            ds: -1,
            id: 0,
            token: 1,
        };
        let r = (|| {
            ng.id = ng.nodeid(".")?;
            ng.ds = kd::socket(PF_NETGRAPH, SOCK_DGRAM, NG_DATA)?;
            kd::connect(ng.ds, &sockaddr_ng(&format!("[{:x}]:", ng.id)))
        })();
        match r {
            Ok(()) => Ok(ng),
            Err(e) => {
                ng.close();
                Err(e)
            }
        }
    }

    /// Closes both sockets (the process exits).
    pub fn close(&mut self) {
        if self.cs >= 0 {
            let _ = kd::close(self.cs);
            self.cs = -1;
        }
        if self.ds >= 0 {
            let _ = kd::close(self.ds);
            self.ds = -1;
        }
    }

    /// The next token (libnetgraph's counter).
    pub fn next_token(&mut self) -> u32 {
        let t = self.token;
        self.token = self.token.wrapping_add(1) & i32::MAX as u32;
        t
    }

    /// sendto() of raw message bytes to `path`.
    pub fn send_raw(&mut self, path: &str, bytes: &[u8]) -> Result<(), i32> {
        kd::sendto(self.cs, bytes, Some(&sockaddr_ng(path)), 0).map(|_| ())
    }

    /// Sends a message to `path`; returns its token and sendto()'s result.
    pub fn send(
        &mut self,
        path: &str,
        cookie: u32,
        cmd: u32,
        args: &[u8],
    ) -> (u32, Result<(), i32>) {
        let t = self.next_token();
        (t, self.send_raw(path, &encode(cookie, cmd, t, args)))
    }

    /// A ksocket message to `path`: sendto()'s result.
    pub fn ks(&mut self, path: &str, cmd: u32, args: &[u8]) -> Result<(), i32> {
        self.send(path, KS_COOKIE, cmd, args).1
    }

    /// A ksocket message that must succeed with a reply: the reply.
    #[track_caller]
    pub fn ks_reply(&mut self, path: &str, cmd: u32, args: &[u8]) -> Msg {
        let (t, r) = self.send(path, KS_COOKIE, cmd, args);
        assert_eq!(r, Ok(()), "ksocket cmd {cmd} to {path}");
        let rep = self
            .recv_token(t, 2000)
            .unwrap_or_else(|| panic!("no reply to ksocket cmd {cmd} to {path}"));
        rep.msg
    }

    /// The next control message, waiting up to `ms` milliseconds.
    pub fn recv(&mut self, ms: u64) -> Option<Reply> {
        let cs = self.cs;
        if !pump_until(ms, || kd::readable(cs)) {
            return None;
        }
        match kd::recvfrom(cs, RECVBUF, MSG_DONTWAIT) {
            Ok((b, from, _)) => Some(Reply {
                from: cstr(from.as_deref().unwrap_or(&[0, 0]).get(2..).unwrap_or(&[])),
                msg: Msg::decode(&b),
            }),
            Err(e) if e == EWOULDBLOCK => None,
            Err(e) => panic!("recvfrom on the control socket: errno {e}"),
        }
    }

    /// The next control message with token `t` (others are discarded).
    pub fn recv_token(&mut self, t: u32, ms: u64) -> Option<Reply> {
        let end = Instant::now() + Duration::from_millis(ms);
        loop {
            let left = end.saturating_duration_since(Instant::now()).as_millis() as u64;
            let r = self.recv(left)?;
            if r.msg.token == t {
                return Some(r);
            }
        }
    }

    /// Is a control message waiting (after the kernel settled)?
    pub fn msg_pending(&mut self) -> bool {
        settle();
        kd::readable(self.cs)
    }

    /// Discards every waiting control message.
    pub fn drain(&mut self) {
        while self.recv(0).is_some() {}
    }

    /// sendto() on the data socket to hook `hook`.
    pub fn send_data(&mut self, hook: &str, data: &[u8]) -> Result<(), i32> {
        kd::sendto(self.ds, data, Some(&sockaddr_ng(hook)), 0).map(|_| ())
    }

    /// The next packet on the data socket (hook name, bytes), waiting up to
    /// `ms` milliseconds.
    pub fn recv_data(&mut self, ms: u64) -> Option<(String, Vec<u8>)> {
        let ds = self.ds;
        if !pump_until(ms, || kd::readable(ds)) {
            return None;
        }
        match kd::recvfrom(ds, RECVBUF, MSG_DONTWAIT) {
            Ok((b, from, _)) => Some((
                cstr(from.as_deref().unwrap_or(&[0, 0]).get(2..).unwrap_or(&[])),
                b,
            )),
            Err(e) if e == EWOULDBLOCK => None,
            Err(e) => panic!("recvfrom on the data socket: errno {e}"),
        }
    }

    // ---- generic messages ----

    fn generic(&mut self, path: &str, cmd: u32, args: &[u8]) -> Result<(), i32> {
        self.send(path, GEN_COOKIE, cmd, args).1
    }

    fn generic_reply(&mut self, path: &str, cmd: u32) -> Result<Msg, i32> {
        let (t, r) = self.send(path, GEN_COOKIE, cmd, &[]);
        r?;
        self.recv_token(t, 2000)
            .map(|r| r.msg)
            .ok_or(fbsd_sys::ETIMEDOUT as i32)
    }

    /// NGM_MKPEER.
    pub fn mkpeer(
        &mut self,
        path: &str,
        ty: &str,
        ourhook: &str,
        peerhook: &str,
    ) -> Result<(), i32> {
        let mut a = cfield(ty, 32);
        a.extend(cfield(ourhook, 32));
        a.extend(cfield(peerhook, 32));
        self.generic(path, fbsd_sys::NGM_MKPEER, &a)
    }

    /// NGM_CONNECT.
    pub fn connect(
        &mut self,
        path: &str,
        peer: &str,
        ourhook: &str,
        peerhook: &str,
    ) -> Result<(), i32> {
        let mut a = cfield(peer, 512);
        a.extend(cfield(ourhook, 32));
        a.extend(cfield(peerhook, 32));
        self.generic(path, fbsd_sys::NGM_CONNECT, &a)
    }

    /// NGM_NAME.
    pub fn name(&mut self, path: &str, name: &str) -> Result<(), i32> {
        self.generic(path, fbsd_sys::NGM_NAME, &cfield(name, 32))
    }

    /// NGM_RMHOOK.
    pub fn rmhook(&mut self, path: &str, hook: &str) -> Result<(), i32> {
        self.generic(path, fbsd_sys::NGM_RMHOOK, &cfield(hook, 32))
    }

    /// NGM_SHUTDOWN.
    pub fn shutdown(&mut self, path: &str) -> Result<(), i32> {
        self.generic(path, fbsd_sys::NGM_SHUTDOWN, &[])
    }

    /// The ID of the node at `path` (NGM_NODEINFO).
    pub fn nodeid(&mut self, path: &str) -> Result<u32, i32> {
        let m = self.generic_reply(path, fbsd_sys::NGM_NODEINFO)?;
        Ok(NodeInfo::decode(&m.data).id)
    }

    /// Every node (NGM_LISTNODES).
    pub fn list(&mut self) -> Vec<NodeInfo> {
        let m = self
            .generic_reply(".", fbsd_sys::NGM_LISTNODES)
            .expect("NGM_LISTNODES");
        let n = u32_at(&m.data, 0) as usize;
        (0..n)
            .map(|i| NodeInfo::decode(&m.data[4 + 72 * i..4 + 72 * (i + 1)]))
            .collect()
    }

    /// The ksocket nodes.
    pub fn ksockets(&mut self) -> Vec<NodeInfo> {
        // Node removals requested by nodes themselves are queued work.
        settle();
        self.list()
            .into_iter()
            .filter(|n| n.ty == "ksocket")
            .collect()
    }

    /// A ksocket hooked to this node by `hook` (MKPEER `.`): its ID.
    #[track_caller]
    pub fn ksocket(&mut self, hook: &str, triple: &str) -> u32 {
        self.mkpeer(".", "ksocket", hook, triple)
            .unwrap_or_else(|e| panic!("mkpeer ksocket {triple}: errno {e}"));
        self.nodeid(&format!(".:{hook}"))
            .expect("nodeinfo of the ksocket")
    }

    /// The statistics counters of the ksocket at `path`.
    #[track_caller]
    pub fn stats(&mut self, path: &str) -> Vec<u64> {
        let m = self.ks_reply(path, ks::GETSTATS, &[]);
        m.data
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }
}

impl Drop for Ng {
    fn drop(&mut self) {
        self.close();
    }
}

/// Indices of the statistics counters (`src/ksocket/stats.rs`).
pub mod st {
    pub const RX_PACKETS: usize = 0;
    pub const RX_BYTES: usize = 1;
    pub const TX_PACKETS: usize = 2;
    pub const TX_BYTES: usize = 3;
    pub const TX_ERRORS: usize = 4;
    pub const RX_ERRORS: usize = 5;
    pub const RX_DROP_TRUNC: usize = 6;
    pub const RX_DROP_NOBUFS: usize = 7;
    pub const RX_DROP_HOOK: usize = 8;
    pub const TX_DROP_LISTEN: usize = 9;
    pub const TX_DROP_BADADDR: usize = 10;
    pub const TX_DROP_NOSOCK: usize = 11;
    pub const TAG_FAILURES: usize = 12;
    pub const EOFS: usize = 13;
    pub const ACCEPTS: usize = 14;
}

/// `[id]:` path of a node ID.
pub fn idpath(id: u32) -> String {
    format!("[{id:x}]:")
}

// ---------------------------------------------------------------------------
// Peers outside netgraph (real Linux sockets, non-blocking, read while the
// harness kernel runs)

/// Receives one datagram on `s` within `ms` milliseconds: (bytes, source).
pub fn udp_recv(s: &std::net::UdpSocket, ms: u64) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    s.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 70_000];
    let mut got = None;
    pump_until(ms, || match s.recv_from(&mut buf) {
        Ok((n, from)) => {
            got = Some((buf[..n].to_vec(), from));
            true
        }
        Err(_) => false,
    });
    got
}

/// Reads exactly `n` bytes from a stream within `ms` milliseconds (fewer if
/// the stream ends or the time runs out).
pub fn tcp_read(s: &mut std::net::TcpStream, n: usize, ms: u64) -> Vec<u8> {
    use std::io::Read;
    s.set_nonblocking(true).unwrap();
    let mut v = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut eof = false;
    pump_until(ms, || {
        while v.len() < n && !eof {
            match s.read(&mut buf[..(n - v.len()).min(65536)]) {
                Ok(0) => eof = true,
                Ok(k) => v.extend_from_slice(&buf[..k]),
                Err(_) => break,
            }
        }
        v.len() >= n || eof
    });
    v
}

/// Is the stream at end of file within `ms` milliseconds?
pub fn tcp_eof(s: &mut std::net::TcpStream, ms: u64) -> bool {
    use std::io::Read;
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    pump_until(ms, || matches!(s.read(&mut buf), Ok(0)))
}

/// Writes all of `data` to a stream, running the kernel while the socket
/// buffer is full.
pub fn tcp_write(s: &mut std::net::TcpStream, data: &[u8]) {
    use std::io::Write;
    s.set_nonblocking(true).unwrap();
    let mut off = 0;
    let ok = pump_until(10_000, || {
        while off < data.len() {
            match s.write(&data[off..]) {
                Ok(k) => off += k,
                Err(_) => return false,
            }
        }
        true
    });
    assert!(ok, "stream write stalled at {off} of {} bytes", data.len());
}

/// The `struct sockaddr_in` of a std socket address (IPv4).
pub fn sin_of(a: std::net::SocketAddr) -> Vec<u8> {
    match a {
        std::net::SocketAddr::V4(v4) => sin(v4.ip().octets(), v4.port()),
        std::net::SocketAddr::V6(_) => panic!("IPv4 expected: {a}"),
    }
}
