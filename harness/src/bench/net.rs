//! The kernel and the netgraph graph of the bench (and the demo's boot):
//! module loading, a `PF_NETGRAPH` control + data socket pair through
//! `ng_socket.ko` (what libnetgraph's `NgMkSockNode` makes), binary control
//! messages, and the UDP graph with its Linux peer socket.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::kern::domain as kd;
use crate::kern::{inet, loader, printf, sched, thread};
use crate::scenario::msg::{self, NgMsg};
use crate::scenario::port::sockaddr_ng;

const PF_NETGRAPH: i32 = fbsd_sys::PF_NETGRAPH as i32;
const SOCK_DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;
const NG_CONTROL: i32 = fbsd_sys::NG_CONTROL as i32;
const NG_DATA: i32 = fbsd_sys::NG_DATA as i32;
const MSG_DONTWAIT: i32 = fbsd_sys::MSG_DONTWAIT as i32;
/// `NGM_KSOCKET_COOKIE`.
pub const KSOCKET_COOKIE: u32 = fbsd_sys::NGM_KSOCKET_COOKIE;
/// How long any single wait of the bench may take (real time).
pub const WAIT_MS: u64 = 2000;

/// A module file loaded at boot.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Linker file id.
    pub id: i32,
    /// The file as given.
    pub path: PathBuf,
    /// The loader's step trace for this file (`kld:` lines).
    pub trace: Vec<String>,
    /// What the kernel console printed while loading it.
    pub console: String,
}

/// Boots the harness kernel in this process and loads `kos` in order, as
/// root (their directories join the module path). The console is not
/// echoed; each file's trace and console output are returned.
pub fn boot(kos: &[PathBuf]) -> Result<Vec<Loaded>, String> {
    crate::netgraph::boot();
    printf::set_console_echo(false);
    let mut path = loader::module_path();
    for f in kos {
        let dir = f
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !path.contains(&dir) {
            path.push(dir);
        }
    }
    loader::set_module_path(path);
    thread::set_curthread(thread::new_thread(thread::Cred::Root));
    let mut out = Vec::new();
    for f in kos {
        let _ = loader::take_trace();
        let _ = printf::console_take();
        match loader::load(f) {
            Ok(id) => out.push(Loaded {
                id,
                path: f.clone(),
                trace: loader::take_trace(),
                console: printf::console_take(),
            }),
            Err(e) => {
                let mut m = format!(
                    "kldload: can't load {}: {}",
                    f.display(),
                    printf::strerror(e.errno)
                );
                if !e.missing.is_empty() {
                    m.push_str(&format!(" (undefined symbols: {})", e.missing.join(" ")));
                }
                for l in &e.messages {
                    m.push_str(&format!("\n  {l}"));
                }
                return Err(m);
            }
        }
    }
    Ok(out)
}

/// A socket node: control and data sockets, like `NgMkSockNode(name)`.
pub struct NgSock {
    /// Control socket.
    pub cs: i32,
    /// Data socket.
    pub ds: i32,
    token: u32,
}

fn errtext(e: i32) -> String {
    format!("{} (errno {e})", printf::strerror(e))
}

impl NgSock {
    /// Opens a control socket named `name` and a data socket connected to it.
    pub fn open(name: &str) -> Result<NgSock, String> {
        let cs = kd::socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL)
            .map_err(|e| format!("socket(PF_NETGRAPH, NG_CONTROL): {}", errtext(e)))?;
        let ng = NgSock {
            cs,
            ds: -1,
            token: 1,
        };
        kd::bind(cs, &sockaddr_ng(name))
            .map_err(|e| format!("bind(control, {name:?}): {}", errtext(e)))?;
        let ds = kd::socket(PF_NETGRAPH, SOCK_DGRAM, NG_DATA)
            .map_err(|e| format!("socket(PF_NETGRAPH, NG_DATA): {}", errtext(e)))?;
        let ng = NgSock { ds, ..ng };
        kd::connect(ds, &sockaddr_ng(&format!("{name}:")))
            .map_err(|e| format!("connect(data, \"{name}:\"): {}", errtext(e)))?;
        Ok(ng)
    }

    /// Sends a control message to `path` (sendto on the control socket);
    /// returns its token.
    pub fn send_msg(
        &mut self,
        path: &str,
        cookie: u32,
        cmd: u32,
        data: Vec<u8>,
    ) -> Result<u32, i32> {
        let token = self.token;
        self.token += 1;
        let m = NgMsg::request(cookie, cmd, token, data);
        kd::sendto(self.cs, &m.encode(), Some(&sockaddr_ng(path)), 0)?;
        Ok(token)
    }

    /// Sends a control message and waits for the reply carrying its token.
    pub fn request(
        &mut self,
        path: &str,
        cookie: u32,
        cmd: u32,
        data: Vec<u8>,
    ) -> Result<NgMsg, String> {
        let token = self
            .send_msg(path, cookie, cmd, data)
            .map_err(|e| format!("message {cmd} to {path}: {}", errtext(e)))?;
        loop {
            let cs = self.cs;
            if !inet::pump_until(WAIT_MS, || kd::readable(cs)) {
                return Err(format!("no reply to message {cmd} sent to {path}"));
            }
            let (b, _, _) = kd::recvfrom(cs, 65536, MSG_DONTWAIT)
                .map_err(|e| format!("recvfrom(control): {}", errtext(e)))?;
            let r = NgMsg::decode(&b);
            if r.token == token && r.is_resp() {
                return Ok(r);
            }
        }
    }

    /// `NGM_MKPEER`: a node of type `ty` hooked to `path` (`ourhook` on the
    /// node at `path`, `peerhook` on the new node).
    pub fn mkpeer(
        &mut self,
        path: &str,
        ty: &str,
        ourhook: &str,
        peerhook: &str,
    ) -> Result<(), String> {
        let mut d = Vec::with_capacity(3 * msg::NODESIZ);
        d.extend_from_slice(&msg::cfield::<{ msg::NODESIZ }>(ty));
        d.extend_from_slice(&msg::cfield::<{ msg::NODESIZ }>(ourhook));
        d.extend_from_slice(&msg::cfield::<{ msg::NODESIZ }>(peerhook));
        self.send_msg(path, msg::NGM_GENERIC_COOKIE, msg::cmd::MKPEER, d)
            .map(|_| ())
            .map_err(|e| format!("mkpeer {path} {ty} {ourhook} {peerhook}: {}", errtext(e)))
    }

    /// `NGM_SHUTDOWN` of the node at `path`.
    pub fn shutdown(&mut self, path: &str) -> Result<(), String> {
        self.send_msg(
            path,
            msg::NGM_GENERIC_COOKIE,
            msg::cmd::SHUTDOWN,
            Vec::new(),
        )
        .map(|_| ())
        .map_err(|e| format!("shutdown {path}: {}", errtext(e)))
    }

    /// `NGM_KSOCKET_BIND` of the ksocket at `path` to `a`.
    pub fn ks_bind(&mut self, path: &str, a: SocketAddrV4) -> Result<(), String> {
        let sa = inet::sockaddr_in(a.ip().octets(), a.port());
        self.send_msg(path, KSOCKET_COOKIE, fbsd_sys::NGM_KSOCKET_BIND, sa)
            .map(|_| ())
            .map_err(|e| format!("msg {path} bind {a}: {}", errtext(e)))
    }

    /// `NGM_KSOCKET_SETOPT` of an int option (binary form) on the
    /// ksocket at `path`.
    pub fn ks_setopt_int(
        &mut self,
        path: &str,
        level: i32,
        name: i32,
        v: i32,
    ) -> Result<(), String> {
        let mut arg = level.to_ne_bytes().to_vec();
        arg.extend_from_slice(&name.to_ne_bytes());
        arg.extend_from_slice(&v.to_ne_bytes());
        self.send_msg(path, KSOCKET_COOKIE, fbsd_sys::NGM_KSOCKET_SETOPT, arg)
            .map(|_| ())
            .map_err(|e| format!("msg {path} setopt {level} {name} {v}: {}", errtext(e)))
    }

    /// `NGM_KSOCKET_CONNECT` of the ksocket at `path` to `a` (UDP: at once).
    pub fn ks_connect(&mut self, path: &str, a: SocketAddrV4) -> Result<(), String> {
        let sa = inet::sockaddr_in(a.ip().octets(), a.port());
        self.send_msg(path, KSOCKET_COOKIE, fbsd_sys::NGM_KSOCKET_CONNECT, sa)
            .map(|_| ())
            .map_err(|e| format!("msg {path} connect {a}: {}", errtext(e)))
    }

    /// `NGM_KSOCKET_GETNAME` of the ksocket at `path`: its IPv4 address.
    pub fn ks_getname(&mut self, path: &str) -> Result<SocketAddrV4, String> {
        let r = self.request(
            path,
            KSOCKET_COOKIE,
            fbsd_sys::NGM_KSOCKET_GETNAME,
            Vec::new(),
        )?;
        sockaddr_in_of(&r.data)
            .ok_or_else(|| format!("getname {path}: not an IPv4 address: {:?}", r.data))
    }

    /// Closes both sockets (the socket node goes away with its hooks).
    pub fn close(self) {
        let _ = kd::close(self.ds);
        let _ = kd::close(self.cs);
        sched::run_until_idle();
    }
}

/// The IPv4 address in a FreeBSD `sockaddr_in`.
pub fn sockaddr_in_of(b: &[u8]) -> Option<SocketAddrV4> {
    if b.len() < 8 || u32::from(b[1]) != fbsd_sys::AF_INET {
        return None;
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    Some(SocketAddrV4::new(
        Ipv4Addr::new(b[4], b[5], b[6], b[7]),
        port,
    ))
}

fn v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    }
}

/// Hook names of the bench graph.
pub const HOOK_CONNECTED: &str = "kc";
/// The unconnected ksocket's hook.
pub const HOOK_UNCONNECTED: &str = "ku";
/// The hook of the unconnected ksocket with `IP_RECVDSTADDR` on.
pub const HOOK_LOCALADDR: &str = "kl";

/// The bench graph: a socket node `ngbench` with two ksocket peers
/// (`kc`: connected to the Linux peer; `ku`: bound only), an echo node with
/// a third, unconnected ksocket (`ke`), all bound to 127.0.0.1, and the
/// peer: a Linux UDP socket on 127.0.0.1. Besides, with `IP_RECVDSTADDR`
/// on and bound to the wildcard address (as `IP_SENDSRCADDR` needs): a
/// ksocket `kl` of the socket node and one (`kle`) of a second echo node.
pub struct UdpGraph {
    /// The socket node.
    pub ng: NgSock,
    /// The Linux peer.
    pub peer: UdpSocket,
    /// The peer's address.
    pub peer_addr: SocketAddrV4,
    /// Address of the connected ksocket.
    pub connected: SocketAddrV4,
    /// Address of the unconnected ksocket.
    pub unconnected: SocketAddrV4,
    /// Address of the echo node's ksocket.
    pub echo: SocketAddrV4,
    /// Where the peer reaches `kl` (127.0.0.1 and its port).
    pub localaddr: SocketAddrV4,
    /// Where the peer reaches `kle` (127.0.0.1 and its port).
    pub echo_localaddr: SocketAddrV4,
    buf: Vec<u8>,
}

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
const IPPROTO_IP: i32 = fbsd_sys::IPPROTO_IP as i32;
const IP_RECVDSTADDR: i32 = fbsd_sys::IP_RECVDSTADDR as i32;

impl UdpGraph {
    /// Builds the graph (the kernel must be booted with both modules).
    pub fn build() -> Result<UdpGraph, String> {
        let mut ng = NgSock::open("ngbench")?;
        let any = SocketAddrV4::new(LOOPBACK, 0);
        for h in [HOOK_CONNECTED, HOOK_UNCONNECTED] {
            ng.mkpeer(".", "ksocket", h, "inet/dgram/udp")?;
            ng.ks_bind(&format!(".:{h}"), any)?;
        }
        ng.mkpeer(".", "echo", "e", "x")?;
        ng.mkpeer(".:e", "ksocket", "ke", "inet/dgram/udp")?;
        ng.ks_bind(".:e.ke", any)?;
        let wild = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        ng.mkpeer(".", "ksocket", HOOK_LOCALADDR, "inet/dgram/udp")?;
        ng.mkpeer(".", "echo", "e2", "x")?;
        ng.mkpeer(".:e2", "ksocket", "kle", "inet/dgram/udp")?;
        for p in [format!(".:{HOOK_LOCALADDR}"), ".:e2.kle".to_string()] {
            ng.ks_setopt_int(&p, IPPROTO_IP, IP_RECVDSTADDR, 1)?;
            ng.ks_bind(&p, wild)?;
        }
        let on_loopback = |a: SocketAddrV4| SocketAddrV4::new(LOOPBACK, a.port());
        let localaddr = on_loopback(ng.ks_getname(&format!(".:{HOOK_LOCALADDR}"))?);
        let echo_localaddr = on_loopback(ng.ks_getname(".:e2.kle")?);
        let connected = ng.ks_getname(&format!(".:{HOOK_CONNECTED}"))?;
        let unconnected = ng.ks_getname(&format!(".:{HOOK_UNCONNECTED}"))?;
        let echo = ng.ks_getname(".:e.ke")?;
        let peer = UdpSocket::bind(SocketAddrV4::new(LOOPBACK, 0))
            .map_err(|e| format!("peer socket: {e}"))?;
        peer.set_nonblocking(true)
            .map_err(|e| format!("peer socket: {e}"))?;
        let peer_addr = peer
            .local_addr()
            .ok()
            .and_then(v4)
            .ok_or("peer socket: no IPv4 address")?;
        ng.ks_connect(&format!(".:{HOOK_CONNECTED}"), peer_addr)?;
        sched::run_until_idle();
        Ok(UdpGraph {
            ng,
            peer,
            peer_addr,
            connected,
            unconnected,
            echo,
            localaddr,
            echo_localaddr,
            buf: vec![0u8; 65536],
        })
    }

    /// Waits (running the kernel) for the next datagram at the peer.
    fn peer_recv(&mut self) -> Result<(usize, SocketAddr), String> {
        let mut got = None;
        let peer = &self.peer;
        let buf = &mut self.buf;
        let ok = inet::pump_until(WAIT_MS, || match peer.recv_from(buf) {
            Ok(r) => {
                got = Some(r);
                true
            }
            Err(_) => false,
        });
        match (ok, got) {
            (true, Some(r)) => Ok(r),
            _ => Err("the peer received nothing".into()),
        }
    }

    fn expect_at_peer(&mut self, from: SocketAddrV4, len: usize) -> Result<(), String> {
        let (n, src) = self.peer_recv()?;
        if n != len || v4(src) != Some(from) {
            return Err(format!(
                "the peer received {n} bytes from {src}, expected {len} from {from}"
            ));
        }
        Ok(())
    }

    /// Data socket → socket node → `kc` → ksocket → sosend → the peer.
    pub fn send_connected(&mut self, payload: &[u8]) -> Result<(), String> {
        kd::sendto(self.ng.ds, payload, Some(&sockaddr_ng(HOOK_CONNECTED)), 0)
            .map_err(|e| format!("sendto(data, {HOOK_CONNECTED}): {}", errtext(e)))?;
        sched::run_until_idle();
        self.expect_at_peer(self.connected, payload.len())
    }

    /// The peer → ksocket `hook` at `to` → socket node → the data socket.
    pub fn receive(&mut self, hook: &str, to: SocketAddrV4, payload: &[u8]) -> Result<(), String> {
        self.peer
            .send_to(payload, to)
            .map_err(|e| format!("peer send_to {to}: {e}"))?;
        let ds = self.ng.ds;
        if !inet::pump_until(WAIT_MS, || kd::readable(ds)) {
            return Err(format!(
                "nothing arrived on the data socket from hook {hook}"
            ));
        }
        let (b, from, _) = kd::recvfrom(ds, 65536, MSG_DONTWAIT)
            .map_err(|e| format!("recvfrom(data): {}", errtext(e)))?;
        let from = from
            .as_deref()
            .map(crate::scenario::port::sockaddr_data)
            .unwrap_or_default();
        if b.len() != payload.len() || from != hook {
            return Err(format!(
                "the data socket received {} bytes from hook {from:?}, expected {} from {hook:?}",
                b.len(),
                payload.len()
            ));
        }
        Ok(())
    }

    /// The peer → echo node's ksocket (tagged with the source) → echo →
    /// ksocket (sends to the tag's address) → the peer.
    pub fn echo_round_trip(&mut self, payload: &[u8]) -> Result<(), String> {
        self.peer
            .send_to(payload, self.echo)
            .map_err(|e| format!("peer send_to {}: {e}", self.echo))?;
        self.expect_at_peer(self.echo, payload.len())
    }

    /// The peer → `kle` (tagged with the source and the local address) →
    /// echo → `kle` (sends to the address tag's address from the
    /// local-address tag's) → the peer.
    pub fn echo_localaddr_round_trip(&mut self, payload: &[u8]) -> Result<(), String> {
        self.peer
            .send_to(payload, self.echo_localaddr)
            .map_err(|e| format!("peer send_to {}: {e}", self.echo_localaddr))?;
        self.expect_at_peer(self.echo_localaddr, payload.len())
    }

    /// End to end: data socket → socket node → `kc` → ksocket → UDP → the
    /// peer, which sends it back → ksocket `kc` → socket node → the data
    /// socket.
    pub fn round_trip(&mut self, payload: &[u8]) -> Result<(), String> {
        self.send_connected(payload)?;
        self.receive(HOOK_CONNECTED, self.connected, payload)
    }

    /// Shuts the echo nodes down and closes the socket node (its ksockets
    /// go with their hooks), then lets the kernel settle.
    pub fn teardown(mut self) -> Result<(), String> {
        let r = self.ng.shutdown(".:e").and(self.ng.shutdown(".:e2"));
        sched::run_until_idle();
        self.ng.close();
        std::thread::sleep(Duration::from_millis(1));
        sched::run_until_idle();
        r
    }
}
