//! Shared helpers of the ng_socket conformance tests (`ngsock_*.rs`): load
//! `build/ng_socket.ko` into the harness kernel, talk to it through the
//! `PF_NETGRAPH` system calls exactly as libnetgraph does (sockaddr_ng and
//! `struct ng_mesg` built byte by byte here), and end every test with the
//! harness's strict checks: no socket left, netgraph quiescent, the module
//! unloads, no malloc block or mbuf leaked, no lock held, no violation.
//!
//! Violations, the malloc/mbuf tables, the loader and the fault plan are
//! process-global, so the tests of one binary run one at a time
//! ([`boot`] holds a lock for the test's duration).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use ngharness::kern::domain::{self as kd, Fd};
use ngharness::kern::thread::{self as kthread, Cred};
use ngharness::kern::{fault, loader, lock, malloc, mbuf as kmbuf, printf, sched};
use ngharness::kern::{take_violations, thread};
use ngharness::netgraph::core::check;
use ngharness::scenario::msg::{self as wire, NgMsg, NodeInfo};

pub type Errno = i32;

pub const FAM: i32 = fbsd_sys::AF_NETGRAPH as i32;
pub const DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;
pub const STREAM: i32 = fbsd_sys::SOCK_STREAM as i32;
pub const NG_DATA: i32 = fbsd_sys::NG_DATA as i32;
pub const NG_CONTROL: i32 = fbsd_sys::NG_CONTROL as i32;
pub const NG_VERSION: u8 = fbsd_sys::NG_VERSION as u8;
pub const HDR: usize = 56;
pub const SOCK_COOKIE: u32 = fbsd_sys::NGM_SOCKET_COOKIE;
pub const GENERIC: u32 = fbsd_sys::NGM_GENERIC_COOKIE;
pub const NOLINGER: u32 = fbsd_sys::NGM_SOCK_CMD_NOLINGER;
pub const LINGER: u32 = fbsd_sys::NGM_SOCK_CMD_LINGER;
pub const MSG_DONTWAIT: i32 = fbsd_sys::MSG_DONTWAIT as i32;
pub const MSG_TRUNC: i32 = fbsd_sys::MSG_TRUNC as i32;
pub const SOL_SOCKET: i32 = fbsd_sys::SOL_SOCKET as i32;
pub const SO_RCVBUF: i32 = fbsd_sys::SO_RCVBUF as i32;
pub const SO_SNDBUF: i32 = fbsd_sys::SO_SNDBUF as i32;

pub const EPERM: Errno = fbsd_sys::EPERM as Errno;
pub const ENOENT: Errno = fbsd_sys::ENOENT as Errno;
pub const ENXIO: Errno = fbsd_sys::ENXIO as Errno;
pub const ENOMEM: Errno = fbsd_sys::ENOMEM as Errno;
pub const EBUSY: Errno = fbsd_sys::EBUSY as Errno;
pub const EEXIST: Errno = fbsd_sys::EEXIST as Errno;
pub const EINVAL: Errno = fbsd_sys::EINVAL as Errno;
pub const EPIPE: Errno = fbsd_sys::EPIPE as Errno;
pub const EWOULDBLOCK: Errno = fbsd_sys::EWOULDBLOCK as Errno;
pub const EDESTADDRREQ: Errno = fbsd_sys::EDESTADDRREQ as Errno;
pub const EMSGSIZE: Errno = fbsd_sys::EMSGSIZE as Errno;
pub const EPROTONOSUPPORT: Errno = fbsd_sys::EPROTONOSUPPORT as Errno;
pub const EOPNOTSUPP: Errno = fbsd_sys::EOPNOTSUPP as Errno;
pub const EAFNOSUPPORT: Errno = fbsd_sys::EAFNOSUPPORT as Errno;
pub const EADDRINUSE: Errno = fbsd_sys::EADDRINUSE as Errno;
pub const ENOBUFS: Errno = fbsd_sys::ENOBUFS as Errno;
pub const EISCONN: Errno = fbsd_sys::EISCONN as Errno;
pub const ENOTCONN: Errno = fbsd_sys::ENOTCONN as Errno;
pub const EHOSTUNREACH: Errno = fbsd_sys::EHOSTUNREACH as Errno;
pub const ENAMETOOLONG: Errno = fbsd_sys::ENAMETOOLONG as Errno;

static SERIAL: Mutex<()> = Mutex::new(());

/// `build/ng_socket.ko` of this checkout (`$NGSOCK_BUILD/ng_socket.ko`
/// when set: the coverage run points it at `build/cov`).
pub fn ko_path() -> PathBuf {
    std::env::var_os("NGSOCK_BUILD")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../build"),
            PathBuf::from,
        )
        .join("ng_socket.ko")
}

/// The harness kernel with `ng_socket.ko` loaded, for one test.
pub struct Kernel {
    _serial: MutexGuard<'static, ()>,
    ko: PathBuf,
    id: Option<i32>,
    malloc0: usize,
    mbuf0: usize,
    finished: bool,
}

/// Boots the harness kernel on this OS thread as root, clears violations,
/// console and fault plan, and loads `build/ng_socket.ko`. `None` (after a
/// SKIP line) when the module has not been built.
pub fn boot() -> Option<Kernel> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ko = ko_path();
    if !ko.exists() {
        eprintln!(
            "SKIP: {} not built (`make`, or scripts/build-ko.sh socket ng_socket build/ng_socket.ko)",
            ko.display()
        );
        return None;
    }
    ngharness::netgraph::boot();
    kthread::set_curthread(kthread::new_thread(Cred::Root));
    fault::clear();
    let _ = take_violations();
    let _ = printf::console_take();
    let mut k = Kernel {
        _serial: g,
        ko,
        id: None,
        malloc0: malloc::live_total(),
        mbuf0: kmbuf::live(),
        finished: false,
    };
    k.load();
    Some(k)
}

impl Kernel {
    /// Loads the module (again).
    pub fn load(&mut self) {
        assert!(self.id.is_none(), "ng_socket.ko already loaded");
        let id =
            loader::load(&self.ko).unwrap_or_else(|e| panic!("loading {}: {e}", self.ko.display()));
        self.id = Some(id);
    }

    /// `sysctl net.graph.socket.allow_unload=1`: without it the module,
    /// like FreeBSD's, refuses every unload.
    pub fn allow_unload(&self) {
        assert!(
            ngharness::kern::sysctl::set("net.graph.socket.allow_unload", 1),
            "net.graph.socket.allow_unload"
        );
    }

    /// `kldunload ng_socket`.
    pub fn unload(&mut self) -> Result<(), Errno> {
        let id = self.id.expect("ng_socket.ko not loaded");
        loader::unload(id)?;
        self.id = None;
        Ok(())
    }

    /// Closes every socket (a process exit), then runs the end checks:
    /// netgraph quiescent, the module unloads, nothing leaked, no lock
    /// held, no violation recorded.
    #[track_caller]
    pub fn finish(mut self) {
        fault::clear();
        kd::close_all();
        sched::run_until_idle();
        assert_eq!(kd::open_sockets_of(FAM), 0, "netgraph sockets left open");
        let q = check::check_quiescent();
        assert!(q.is_empty(), "netgraph not quiescent: {q:#?}");
        if self.id.is_some() {
            self.allow_unload();
            assert_eq!(
                self.unload(),
                Ok(()),
                "ng_socket unloads with no socket left"
            );
        }
        let d = kd::check_all();
        assert!(d.is_empty(), "socket layer: {d:#?}");
        sched::run_until_idle();
        lock::check_none_held("the end of the test");
        thread::check_not_critical("the end of the test");
        let v = take_violations();
        assert!(v.is_empty(), "violations: {v:#?}");
        assert_eq!(kmbuf::live(), self.mbuf0, "mbufs leaked");
        assert_eq!(malloc::live_total(), self.malloc0, "malloc blocks leaked");
        self.finished = true;
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // A failed test: leave the process usable for the next one.
        fault::clear();
        kd::close_all();
        sched::run_until_idle();
        if let Some(id) = self.id.take() {
            let _ = ngharness::kern::sysctl::set("net.graph.socket.allow_unload", 1);
            let _ = loader::unload(id);
        }
        let _ = take_violations();
    }
}

/// Asserts no violation was recorded so far (and clears the list).
#[track_caller]
pub fn expect_clean() {
    let v = take_violations();
    assert!(v.is_empty(), "unexpected violations: {v:#?}");
}

/// Runs `f` as an unprivileged user (uid 1001).
pub fn as_user<R>(f: impl FnOnce() -> R) -> R {
    let td = kthread::new_thread(Cred::User(1001));
    kthread::with_curthread(td, f)
}

// ---------------------------------------------------------------------------
// sockaddr_ng and struct ng_mesg, as libnetgraph builds them

/// `struct sockaddr_ng` for `text` as libnetgraph sends it: sg_len =
/// strlen + 3, family AF_NETGRAPH, the text and its NUL.
pub fn sa(text: &str) -> Vec<u8> {
    let mut v = vec![0u8, FAM as u8];
    v.extend_from_slice(text.as_bytes());
    v.push(0);
    v[0] = v.len() as u8;
    v
}

/// A sockaddr_ng of family AF_NETGRAPH whose sg_data is exactly `data`
/// (sg_len = 2 + data.len(); the socket layer sets sa_len to the length
/// passed, as getsockaddr() does).
pub fn sa_raw(data: &[u8]) -> Vec<u8> {
    let mut v = vec![(2 + data.len()) as u8, FAM as u8];
    v.extend_from_slice(data);
    v
}

static TOKEN: AtomicU32 = AtomicU32::new(1);

/// A `struct ng_mesg` with every header field given explicitly.
pub fn msg_raw(
    version: u8,
    arglen: u32,
    cookie: u32,
    cmd: u32,
    token: u32,
    args: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + args.len());
    v.push(version); // version
    v.push(0); // spare
    v.extend_from_slice(&0u16.to_ne_bytes()); // spare2
    v.extend_from_slice(&arglen.to_ne_bytes());
    v.extend_from_slice(&cmd.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes()); // flags: NGF_ORIG
    v.extend_from_slice(&token.to_ne_bytes());
    v.extend_from_slice(&cookie.to_ne_bytes());
    let mut cmdstr = [0u8; 32];
    let s = format!("cmd{}", cmd as i32);
    cmdstr[..s.len()].copy_from_slice(s.as_bytes());
    v.extend_from_slice(&cmdstr);
    v.extend_from_slice(args);
    assert_eq!(v.len(), HDR + args.len());
    v
}

/// A request as `NgSendMsg` builds it (version 8, a fresh token, arglen =
/// the argument length, cmdstr "cmd%d").
pub fn msg(cookie: u32, cmd: u32, args: &[u8]) -> Vec<u8> {
    let token = TOKEN.fetch_add(1, Ordering::Relaxed) & i32::MAX as u32;
    msg_raw(NG_VERSION, args.len() as u32, cookie, cmd, token, args)
}

// ---------------------------------------------------------------------------
// Sockets

pub fn ctl() -> Fd {
    kd::socket(FAM, DGRAM, NG_CONTROL).expect("control socket")
}

pub fn data() -> Fd {
    kd::socket(FAM, DGRAM, NG_DATA).expect("data socket")
}

/// `sendto(cs, msg(cookie, cmd, args), sa(path))`.
pub fn send(cs: Fd, path: &str, cookie: u32, cmd: u32, args: &[u8]) -> Result<(), Errno> {
    let m = msg(cookie, cmd, args);
    kd::sendto(cs, &m, Some(&sa(path)), 0).map(|n| assert_eq!(n, m.len()))
}

/// One queued datagram (data, source address), without waiting.
pub fn recv(fd: Fd) -> Option<(Vec<u8>, Vec<u8>)> {
    match kd::recvfrom(fd, 65536, MSG_DONTWAIT) {
        Ok((d, a, _)) => Some((d, a.expect("a datagram has a source address"))),
        Err(e) if e == EWOULDBLOCK => None,
        Err(e) => panic!("recvfrom: errno {e}"),
    }
}

/// The sg_data string of a sockaddr_ng.
pub fn sa_text(a: &[u8]) -> String {
    wire::cstr(a.get(2..).unwrap_or(&[]))
}

/// One queued control message and the path it came from.
pub fn recv_msg(cs: Fd) -> Option<(NgMsg, String)> {
    recv(cs).map(|(d, a)| {
        assert_eq!((a[0], a[1]), (34, FAM as u8), "message source {a:?}");
        let m = NgMsg::decode(&d);
        assert_eq!(
            d.len(),
            HDR + m.arglen as usize,
            "payload = header + arglen"
        );
        (m, sa_text(&a))
    })
}

/// Sends a request and returns the reply already queued when sendto
/// returned (docs/socket.md §5.3 step 9b; docs/netgraph-model.md N4).
pub fn request(cs: Fd, path: &str, cookie: u32, cmd: u32, args: &[u8]) -> Result<NgMsg, Errno> {
    send(cs, path, cookie, cmd, args)?;
    let (m, _) = recv_msg(cs).expect("the reply is queued before sendto returns");
    assert!(m.is_resp(), "{m:?}");
    Ok(m)
}

pub fn nodeinfo(cs: Fd, path: &str) -> Result<NodeInfo, Errno> {
    request(cs, path, GENERIC, wire::cmd::NODEINFO, &[]).map(|m| NodeInfo::decode_at(&m.data, 0))
}

/// NGM_LISTNODES from `cs`'s node.
pub fn list(cs: Fd) -> Vec<NodeInfo> {
    let m = request(cs, ".", GENERIC, wire::cmd::LISTNODES, &[]).expect("listnodes");
    wire::decode_namelist(&m.data)
}

pub fn mkpeer(cs: Fd, path: &str, ty: &str, ours: &str, peers: &str) -> Result<(), Errno> {
    send(
        cs,
        path,
        GENERIC,
        wire::cmd::MKPEER,
        &wire::mkpeer(ty, ours, peers),
    )
}

pub fn connect_hooks(cs: Fd, path: &str, peer: &str, ours: &str, peers: &str) -> Result<(), Errno> {
    send(
        cs,
        path,
        GENERIC,
        wire::cmd::CONNECT,
        &wire::connect(peer, ours, peers),
    )
}

pub fn rmhook(cs: Fd, path: &str, hook: &str) -> Result<(), Errno> {
    send(cs, path, GENERIC, wire::cmd::RMHOOK, &wire::name32(hook))
}

pub fn name(cs: Fd, path: &str, n: &str) -> Result<(), Errno> {
    send(cs, path, GENERIC, wire::cmd::NAME, &wire::name32(n))
}

pub fn shutdown(cs: Fd, path: &str) -> Result<(), Errno> {
    send(cs, path, GENERIC, wire::cmd::SHUTDOWN, &[])
}

/// `NgMkSockNode(name, &cs, &ds)`: a control socket, bound to `name` if
/// not empty, and a data socket connected to the node. Returns (cs, ds, id).
pub fn sock_node(n: &str) -> (Fd, Fd, u32) {
    let cs = ctl();
    if !n.is_empty() {
        kd::bind(cs, &sa(n)).expect("bind");
    }
    let id = nodeinfo(cs, ".").expect("nodeinfo .").id;
    let ds = data();
    let path = if n.is_empty() {
        format!("[{id:x}]:")
    } else {
        format!("{n}:")
    };
    kd::connect(ds, &sa(&path)).expect("data connect");
    (cs, ds, id)
}

/// getsockname's sg_data string.
pub fn sockname(fd: Fd) -> Result<String, Errno> {
    kd::getsockname(fd).map(|a| {
        assert_eq!((a.len(), a[0], a[1]), (34, 34, FAM as u8), "{a:?}");
        sa_text(&a)
    })
}
