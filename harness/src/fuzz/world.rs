//! What a fuzz case runs against: a libnetgraph-style user process (the
//! control and data socket of one socket node, through `PF_NETGRAPH`
//! system calls), Linux peers on the loopback interface, and the kernel's
//! event loop run until it is quiet.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::time::{Duration, Instant};

use crate::kern::domain::{self as kd, Errno, Fd};
use crate::kern::sched;

pub const NG_DATA: i32 = fbsd_sys::NG_DATA as i32;
pub const NG_CONTROL: i32 = fbsd_sys::NG_CONTROL as i32;
pub const PF_NETGRAPH: i32 = fbsd_sys::PF_NETGRAPH as i32;
pub const SOCK_DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;
pub const MSG_DONTWAIT: i32 = fbsd_sys::MSG_DONTWAIT as i32;
pub const KS_COOKIE: u32 = fbsd_sys::NGM_KSOCKET_COOKIE;
pub const GEN_COOKIE: u32 = fbsd_sys::NGM_GENERIC_COOKIE;
pub const SOCK_COOKIE: u32 = fbsd_sys::NGM_SOCKET_COOKIE;
/// `sizeof(struct ng_mesg)`.
pub const HDRLEN: usize = 56;
/// Receive buffer of the user process's reads.
const RECVBUF: usize = 128 * 1024;
/// Longest wait for a reply, in real time.
const REPLY_MS: u64 = 200;

/// Lets the kernel run until nothing is runnable and the Linux side has
/// been quiet for two short waits (model time advances one tick per wait).
pub fn settle() {
    let mut quiet = 0;
    let mut rounds = 0;
    while quiet < 2 && rounds < 10_000 {
        rounds += 1;
        if sched::run_once() {
            quiet = 0;
        } else {
            quiet += 1;
            std::thread::sleep(Duration::from_micros(150));
            sched::advance(1);
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
            std::thread::sleep(Duration::from_micros(100));
            sched::advance(1);
        }
    }
}

/// A fixed-size, NUL-padded C string field of `n` bytes (truncated).
pub fn cfield(s: &[u8], n: usize) -> Vec<u8> {
    let mut v = s.to_vec();
    v.truncate(n.saturating_sub(1));
    v.resize(n, 0);
    v
}

/// The C string at the start of `b`.
pub fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// A message header with an explicit `arglen` (which may disagree with
/// `args.len()`), followed by `args`.
pub fn encode(
    cookie: u32,
    cmd: u32,
    flags: u32,
    token: u32,
    arglen: u32,
    cmdstr: &[u8],
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
    v.extend_from_slice(&cfield(cmdstr, 32));
    v.extend_from_slice(args);
    v
}

/// A received message.
#[derive(Clone, Debug, Default)]
pub struct Msg {
    pub arglen: u32,
    pub cmd: u32,
    pub flags: u32,
    pub token: u32,
    pub cookie: u32,
    pub data: Vec<u8>,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    for (i, x) in w.iter_mut().enumerate() {
        *x = b.get(off + i).copied().unwrap_or(0);
    }
    u32::from_ne_bytes(w)
}

impl Msg {
    pub fn decode(b: &[u8]) -> Msg {
        Msg {
            arglen: u32_at(b, 4),
            cmd: u32_at(b, 8),
            flags: u32_at(b, 12),
            token: u32_at(b, 16),
            cookie: u32_at(b, 20),
            data: b.get(HDRLEN..).unwrap_or(&[]).to_vec(),
        }
    }
}

/// A `struct sockaddr_ng` for `path` (as libnetgraph builds it; `sg_len`
/// is one byte, so longer paths wrap as they would in C).
pub fn sockaddr_ng(path: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8, fbsd_sys::AF_NETGRAPH as u8];
    v.extend_from_slice(path);
    v.push(0);
    v[0] = v.len() as u8;
    v
}

/// `[id]:`.
pub fn idpath(id: u32) -> String {
    format!("[{id:x}]:")
}

/// A user process with a socket node: `NgMkSockNode()`.
pub struct Proc {
    pub cs: Fd,
    pub ds: Fd,
    /// The socket node's ID.
    pub id: u32,
    token: u32,
}

impl Proc {
    /// Control socket, its node's ID, data socket connected to it.
    pub fn open() -> Result<Proc, Errno> {
        let cs = kd::socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL)?;
        let mut p = Proc {
            cs,
            ds: -1,
            id: 0,
            token: 1,
        };
        let m = p.request(".", GEN_COOKIE, fbsd_sys::NGM_NODEINFO, &[])?;
        p.id = u32_at(&m.data, 64);
        p.ds = kd::socket(PF_NETGRAPH, SOCK_DGRAM, NG_DATA)?;
        kd::connect(p.ds, &sockaddr_ng(idpath(p.id).as_bytes()))?;
        Ok(p)
    }

    pub fn next_token(&mut self) -> u32 {
        let t = self.token;
        self.token = self.token.wrapping_add(1) & i32::MAX as u32;
        t
    }

    /// sendto() of message bytes to `path` on the control socket.
    pub fn send_raw(&mut self, path: &[u8], bytes: &[u8]) -> Result<(), Errno> {
        kd::sendto(self.cs, bytes, Some(&sockaddr_ng(path)), 0).map(|_| ())
    }

    /// Sends a request; its token and sendto()'s result.
    pub fn send(
        &mut self,
        path: &str,
        cookie: u32,
        cmd: u32,
        args: &[u8],
    ) -> (u32, Result<(), Errno>) {
        let t = self.next_token();
        let b = encode(cookie, cmd, 0, t, args.len() as u32, b"", args);
        (t, self.send_raw(path.as_bytes(), &b))
    }

    /// The reply with token `t`, waiting a little (other messages are
    /// dropped).
    pub fn reply(&mut self, t: u32) -> Option<Msg> {
        let end = Instant::now() + Duration::from_millis(REPLY_MS);
        loop {
            let cs = self.cs;
            let left = end.saturating_duration_since(Instant::now()).as_millis() as u64;
            if !pump_until(left, || kd::readable(cs)) {
                return None;
            }
            match kd::recvfrom(cs, RECVBUF, MSG_DONTWAIT) {
                Ok((b, _, _)) => {
                    let m = Msg::decode(&b);
                    if m.token == t {
                        return Some(m);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// A request that must be answered: the reply (ETIMEDOUT if none came).
    pub fn request(
        &mut self,
        path: &str,
        cookie: u32,
        cmd: u32,
        args: &[u8],
    ) -> Result<Msg, Errno> {
        let (t, r) = self.send(path, cookie, cmd, args);
        r?;
        self.reply(t).ok_or(fbsd_sys::ETIMEDOUT as Errno)
    }

    /// Reads (and drops) whatever waits on both sockets.
    pub fn drain(&mut self) {
        for fd in [self.cs, self.ds] {
            if fd < 0 {
                continue;
            }
            let mut n = 0;
            while n < 256 && kd::readable(fd) {
                if kd::recvfrom(fd, RECVBUF, MSG_DONTWAIT).is_err() {
                    break;
                }
                n += 1;
            }
        }
    }

    /// sendto() on the data socket to hook `hook`.
    pub fn send_data(&mut self, hook: &[u8], data: &[u8]) -> Result<(), Errno> {
        kd::sendto(self.ds, data, Some(&sockaddr_ng(hook)), 0).map(|_| ())
    }

    /// NGM_MKPEER at `path`.
    pub fn mkpeer(&mut self, path: &str, ty: &str, ours: &str, peer: &str) -> Result<(), Errno> {
        let mut a = cfield(ty.as_bytes(), 32);
        a.extend(cfield(ours.as_bytes(), 32));
        a.extend(cfield(peer.as_bytes(), 32));
        self.send(path, GEN_COOKIE, fbsd_sys::NGM_MKPEER, &a).1
    }

    /// NGM_CONNECT at `path`.
    pub fn connect(
        &mut self,
        path: &str,
        peer: &str,
        ours: &str,
        theirs: &str,
    ) -> Result<(), Errno> {
        let mut a = cfield(peer.as_bytes(), 512);
        a.extend(cfield(ours.as_bytes(), 32));
        a.extend(cfield(theirs.as_bytes(), 32));
        self.send(path, GEN_COOKIE, fbsd_sys::NGM_CONNECT, &a).1
    }

    /// The ID of the node at `path`.
    pub fn nodeid(&mut self, path: &str) -> Result<u32, Errno> {
        let m = self.request(path, GEN_COOKIE, fbsd_sys::NGM_NODEINFO, &[])?;
        Ok(u32_at(&m.data, 64))
    }

    /// `NgSendAsciiMsg()`: ASCII2BINARY at `path`, then the binary message.
    pub fn send_ascii(&mut self, path: &str, cmd: &[u8], text: &[u8]) -> Result<(), Errno> {
        let mut args = text.to_vec();
        args.push(0);
        let inner = encode(0, 0, 0, 0, args.len() as u32, cmd, &args);
        let bin = self.request(path, GEN_COOKIE, fbsd_sys::NGM_ASCII2BINARY, &inner)?;
        let mut m = bin.data;
        if m.len() < HDRLEN {
            return Err(fbsd_sys::EINVAL as Errno);
        }
        let t = self.next_token();
        m[16..20].copy_from_slice(&t.to_ne_bytes());
        self.send_raw(path.as_bytes(), &m)
    }

    /// Closes both sockets.
    pub fn close(&mut self) {
        for fd in [&mut self.cs, &mut self.ds] {
            if *fd >= 0 {
                let _ = kd::close(*fd);
                *fd = -1;
            }
        }
    }
}

/// Linux sockets outside netgraph that talk to the ksockets.
#[derive(Default)]
pub struct Peers {
    pub udp: Option<UdpSocket>,
    pub udp6: Option<UdpSocket>,
    pub tcp_listener: Option<TcpListener>,
    pub tcp: Vec<TcpStream>,
    pub unix_dgram: Option<UnixDatagram>,
    pub unix_listener: Option<UnixListener>,
    pub unix: Vec<UnixStream>,
}

impl Peers {
    /// A UDP peer on 127.0.0.1 (created on first use); its port.
    pub fn udp_port(&mut self) -> u16 {
        if self.udp.is_none() {
            self.udp = UdpSocket::bind("127.0.0.1:0").ok();
            if let Some(u) = &self.udp {
                let _ = u.set_nonblocking(true);
            }
        }
        self.udp
            .as_ref()
            .and_then(|u| u.local_addr().ok())
            .map_or(0, |a| a.port())
    }

    /// A UDP peer on ::1; its port.
    pub fn udp6_port(&mut self) -> u16 {
        if self.udp6.is_none() {
            self.udp6 = UdpSocket::bind("[::1]:0").ok();
            if let Some(u) = &self.udp6 {
                let _ = u.set_nonblocking(true);
            }
        }
        self.udp6
            .as_ref()
            .and_then(|u| u.local_addr().ok())
            .map_or(0, |a| a.port())
    }

    /// A TCP listener on 127.0.0.1; its port.
    pub fn tcp_port(&mut self) -> u16 {
        if self.tcp_listener.is_none() {
            self.tcp_listener = TcpListener::bind("127.0.0.1:0").ok();
            if let Some(l) = &self.tcp_listener {
                let _ = l.set_nonblocking(true);
            }
        }
        self.tcp_listener
            .as_ref()
            .and_then(|u| u.local_addr().ok())
            .map_or(0, |a| a.port())
    }

    /// Accepts what waits on the TCP listener.
    pub fn accept_tcp(&mut self) {
        if let Some(l) = &self.tcp_listener {
            while let Ok((s, _)) = l.accept() {
                let _ = s.set_nonblocking(true);
                self.tcp.push(s);
                if self.tcp.len() > 8 {
                    break;
                }
            }
        }
    }
}
