//! The runner's view of the netgraph client interface.
//!
//! [`NgPort`] mirrors what a libnetgraph program has: one "port" per process
//! (one `NgMkSockNode` control + data socket pair), `NgSendMsg`/`NgRecvMsg`
//! on the control socket and `NgSendData`/`NgRecvData` on the data socket.
//! The ngctl emulation (`ngctl.rs`) is written against it.
//!
//! Backends:
//! * [`SocketPort`]: libnetgraph itself (`NgMkSockNode` etc.) over a
//!   syscall-like [`SockApi`] (`socket/bind/connect/sendto/recvfrom/close`
//!   on `PF_NETGRAPH`). With the harness's socket layer (`kern::domain`) this
//!   is the real path through `ng_socket.ko`; with [`super::fake::FakeNet`]
//!   it runs against a small pure-Rust model (self-tests only).
//! * the built-in netgraph client (`backend.rs`), interim until
//!   `ng_socket.ko` implements the family.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::errno::Errno;
use super::msg::{self, NgMsg};

/// A port (one simulated process's control + data socket pair).
pub type PortId = usize;

/// How long a receive may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Only what is already queued (a zero-timeout `select`).
    Now,
    /// Up to this long, running the kernel meanwhile (a blocking call).
    For(Duration),
}

impl Wait {
    /// The deadline of this wait, from now.
    pub fn deadline(self) -> Instant {
        match self {
            Wait::Now => Instant::now(),
            Wait::For(d) => Instant::now() + d,
        }
    }
}

/// How long the runner lets a call that would block in FreeBSD wait before
/// declaring that it would block forever.
pub const BLOCK: Duration = Duration::from_secs(2);

/// One received datagram: its source (`"[id]:"` for messages, the hook name
/// for data; empty for the end of file of a disconnected socket) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Source address (`sg_data` of the sockaddr_ng).
    pub from: String,
    /// `sg_len` of the source address as received (libnetgraph's debug log
    /// prints it); 0 when the backend has no socket address.
    pub sa_len: u8,
    /// The datagram (truncated to the receive buffer).
    pub bytes: Vec<u8>,
}

/// The libnetgraph-level client interface the ngctl emulation uses.
pub trait NgPort {
    /// Short backend name for reports.
    fn backend(&self) -> String;
    /// `NgMkSockNode(name, &cs, &ds)`: a new socket node (named if `name`).
    fn open(&mut self, name: Option<&str>) -> Result<PortId, Errno>;
    /// The next message token of this port's process (libnetgraph's global
    /// counter, post-incremented, masked with INT_MAX).
    fn next_token(&mut self, p: PortId) -> u32;
    /// `sendto()` of a whole message (header + data) on the control socket to
    /// `path`; returns when the kernel's sendto returns.
    fn send_msg(&mut self, p: PortId, path: &str, msg: &[u8]) -> Result<(), Errno>;
    /// Is a message (or EOF) waiting on the control socket? (`poll`/`select`)
    fn msg_ready(&mut self, p: PortId, wait: Wait) -> bool;
    /// `recvfrom()` on the control socket with a `buflen`-byte buffer (None:
    /// SO_RCVBUF, as NgAllocRecvMsg). `Ok(None)`: nothing within `wait`.
    fn recv_msg(
        &mut self,
        p: PortId,
        buflen: Option<usize>,
        wait: Wait,
    ) -> Result<Option<Received>, Errno>;
    /// `sendto()` on the data socket to hook `hook`.
    fn send_data(&mut self, p: PortId, hook: &str, data: &[u8]) -> Result<(), Errno>;
    /// Is a packet (or EOF) waiting on the data socket?
    fn data_ready(&mut self, p: PortId, wait: Wait) -> bool;
    /// `recvfrom()` on the data socket (None: SO_RCVBUF, as NgAllocRecvData).
    fn recv_data(
        &mut self,
        p: PortId,
        buflen: Option<usize>,
        wait: Wait,
    ) -> Result<Option<Received>, Errno>;
    /// Closes both sockets (the process exits).
    fn close(&mut self, p: PortId);
    /// The NGM_NODEINFO request `open(None)` sent to learn the node's ID and
    /// the reply it read (for libnetgraph's debug log), once.
    fn take_open_exchange(&mut self, _p: PortId) -> Option<(NgMsg, Received)> {
        None
    }
    /// Runs pending kernel work once; true if anything happened.
    fn pump(&mut self) -> bool;
    /// Number of netgraph sockets still open (for the end-of-scenario check).
    fn open_sockets(&self) -> usize;
}

// ---------------------------------------------------------------------------
// Socket level

/// A socket descriptor of a [`SockApi`].
pub type Fd = i32;
/// NG_DATA.
pub const NG_DATA: i32 = fbsd_sys::NG_DATA as i32;
/// NG_CONTROL.
pub const NG_CONTROL: i32 = fbsd_sys::NG_CONTROL as i32;
/// AF_NETGRAPH.
pub const AF_NETGRAPH: u8 = fbsd_sys::AF_NETGRAPH as u8;
/// Offset of `sg_data` in `struct sockaddr_ng` (libnetgraph's NGSA_OVERHEAD).
pub const NGSA_OVERHEAD: usize = 2;

/// A received datagram and the bytes of its source address.
pub type Datagram = (Vec<u8>, Vec<u8>);

/// The `PF_NETGRAPH` system calls a libnetgraph program makes.
pub trait SockApi {
    /// Short backend name for reports.
    fn backend(&self) -> String;
    /// `socket(PF_NETGRAPH, SOCK_DGRAM, proto)`.
    fn socket(&mut self, proto: i32) -> Result<Fd, Errno>;
    /// `bind(fd, sa, sa.len())` (`sa`: a sockaddr_ng as bytes).
    fn bind(&mut self, fd: Fd, sa: &[u8]) -> Result<(), Errno>;
    /// `connect(fd, sa, sa.len())`.
    fn connect(&mut self, fd: Fd, sa: &[u8]) -> Result<(), Errno>;
    /// `sendto(fd, buf, len, 0, sa, sa.len())`.
    fn sendto(&mut self, fd: Fd, buf: &[u8], sa: &[u8]) -> Result<usize, Errno>;
    /// `poll(fd, POLLIN)` with a timeout.
    fn poll(&mut self, fd: Fd, wait: Wait) -> bool;
    /// `recvfrom(fd, buf, buflen, 0, from, &fromlen)`: (datagram, from
    /// address bytes); `Ok(None)` if nothing arrived within `wait`.
    fn recvfrom(&mut self, fd: Fd, buflen: usize, wait: Wait) -> Result<Option<Datagram>, Errno>;
    /// `getsockopt(fd, SOL_SOCKET, SO_RCVBUF)`.
    fn rcvbuf(&mut self, fd: Fd) -> Result<usize, Errno>;
    /// `close(fd)`.
    fn close(&mut self, fd: Fd);
    /// `kldload(file)` (libnetgraph loads ng_socket.ko on EAFNOSUPPORT).
    fn kldload(&mut self, file: &str) -> Result<(), Errno>;
    /// Runs pending kernel work once; true if anything happened.
    fn pump(&mut self) -> bool;
    /// Number of open netgraph sockets.
    fn open_sockets(&self) -> usize;
}

/// A `struct sockaddr_ng` as libnetgraph builds it: `sg_len = strlen + 3`
/// (stored in a byte, as C does), family AF_NETGRAPH, the string and a NUL.
/// libnetgraph passes `sg_len` as the address length, so a wrapped `sg_len`
/// (paths of 253+ bytes) also cuts the address short: so does this.
pub fn sockaddr_ng(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut v = Vec::with_capacity(b.len() + 3);
    v.push((b.len() + 1 + NGSA_OVERHEAD) as u8);
    v.push(AF_NETGRAPH);
    v.extend_from_slice(b);
    v.push(0);
    let n = usize::from(v[0]);
    v.truncate(n);
    v
}

/// `sg_data` of a received sockaddr_ng as a C string.
pub fn sockaddr_data(sa: &[u8]) -> String {
    msg::cstr(sa.get(NGSA_OVERHEAD..).unwrap_or(&[]))
}

/// Truncates `s` to at most `n - 1` bytes (strlcpy into an `n`-byte buffer).
pub fn strlcpy(s: &str, n: usize) -> &str {
    let mut k = s.len().min(n.saturating_sub(1));
    while !s.is_char_boundary(k) {
        k -= 1;
    }
    &s[..k]
}

struct Proc {
    cs: Fd,
    ds: Fd,
    token: u32,
    /// NgMkSockNode's NGM_NODEINFO exchange (unnamed nodes).
    exchange: Option<(NgMsg, Received)>,
}

/// One of a process's two netgraph sockets.
#[derive(Clone, Copy)]
enum Sock {
    /// The control socket (messages).
    Control,
    /// The data socket (hooks).
    Data,
}

/// libnetgraph (`sock.c`, `msg.c`) over a [`SockApi`].
pub struct SocketPort<S: SockApi> {
    /// The socket layer.
    pub api: S,
    procs: HashMap<PortId, Proc>,
    next: PortId,
}

impl<S: SockApi> SocketPort<S> {
    /// libnetgraph over `api`.
    pub fn new(api: S) -> SocketPort<S> {
        SocketPort {
            api,
            procs: HashMap::new(),
            next: 1,
        }
    }

    fn proc(&self, p: PortId) -> Result<&Proc, Errno> {
        self.procs.get(&p).ok_or(fbsd_sys::EBADF as Errno)
    }

    /// Descriptor of one of `p`'s two sockets.
    fn fd(&self, p: PortId, which: Sock) -> Result<Fd, Errno> {
        let pr = self.proc(p)?;
        Ok(match which {
            Sock::Control => pr.cs,
            Sock::Data => pr.ds,
        })
    }

    /// Is there something to read on that socket (poll)?
    fn ready(&mut self, p: PortId, which: Sock, wait: Wait) -> bool {
        match self.fd(p, which) {
            Ok(fd) => self.api.poll(fd, wait),
            Err(_) => false,
        }
    }

    /// One `recvfrom` on that socket, into `buflen` bytes (default: the
    /// socket's receive buffer size).
    fn recv(
        &mut self,
        p: PortId,
        which: Sock,
        buflen: Option<usize>,
        wait: Wait,
    ) -> Result<Option<Received>, Errno> {
        let fd = self.fd(p, which)?;
        let n = match buflen {
            Some(n) => n,
            None => self.api.rcvbuf(fd)?,
        };
        Ok(self.api.recvfrom(fd, n, wait)?.map(|(b, sa)| Received {
            from: sockaddr_data(&sa),
            sa_len: sa.first().copied().unwrap_or(0),
            bytes: b,
        }))
    }

    /// NgMkSockNode's body; on error the sockets it opened are closed.
    fn mk_sock_node(
        &mut self,
        name: Option<&str>,
        cs: &mut Fd,
        ds: &mut Fd,
        token: &mut u32,
        exchange: &mut Option<(NgMsg, Received)>,
    ) -> Result<(), Errno> {
        *cs = match self.api.socket(NG_CONTROL) {
            Ok(fd) => fd,
            Err(e) if e == fbsd_sys::EAFNOSUPPORT as Errno => {
                self.api.kldload("ng_socket.ko")?;
                self.api.socket(NG_CONTROL)?
            }
            Err(e) => return Err(e),
        };
        let namebuf = match name {
            Some(n) => {
                let n = strlcpy(n, msg::NODESIZ);
                self.api.bind(*cs, &sockaddr_ng(n))?;
                n.to_string()
            }
            None => {
                // Learn the node ID with NGM_NODEINFO to ".".
                let t = *token & i32::MAX as u32;
                *token = token.wrapping_add(1);
                let m = NgMsg::request(msg::NGM_GENERIC_COOKIE, msg::cmd::NODEINFO, t, Vec::new());
                self.api.sendto(*cs, &m.encode(), &sockaddr_ng("."))?;
                self.api.poll(*cs, Wait::For(BLOCK));
                let r =
                    self.api
                        .recvfrom(*cs, msg::HDRLEN + msg::NODEINFO_LEN, Wait::For(BLOCK))?;
                let Some((b, sa)) = r else {
                    return Err(fbsd_sys::ETIMEDOUT as Errno);
                };
                let ni = msg::NodeInfo::decode_at(&b, msg::HDRLEN);
                *exchange = Some((
                    m,
                    Received {
                        from: sockaddr_data(&sa),
                        sa_len: sa.first().copied().unwrap_or(0),
                        bytes: b,
                    },
                ));
                format!("[{:x}]", ni.id)
            }
        };
        *ds = self.api.socket(NG_DATA)?;
        let target = format!("{namebuf}:");
        self.api
            .connect(*ds, &sockaddr_ng(strlcpy(&target, msg::NODESIZ + 1)))?;
        Ok(())
    }
}

impl<S: SockApi> NgPort for SocketPort<S> {
    fn backend(&self) -> String {
        self.api.backend()
    }

    fn open(&mut self, name: Option<&str>) -> Result<PortId, Errno> {
        let name = name.filter(|n| !n.is_empty());
        let (mut cs, mut ds, mut token) = (-1, -1, 0u32);
        let mut exchange = None;
        match self.mk_sock_node(name, &mut cs, &mut ds, &mut token, &mut exchange) {
            Ok(()) => {
                let p = self.next;
                self.next += 1;
                self.procs.insert(
                    p,
                    Proc {
                        cs,
                        ds,
                        token,
                        exchange,
                    },
                );
                Ok(p)
            }
            Err(e) => {
                if cs >= 0 {
                    self.api.close(cs);
                }
                if ds >= 0 {
                    self.api.close(ds);
                }
                Err(e)
            }
        }
    }

    fn next_token(&mut self, p: PortId) -> u32 {
        match self.procs.get_mut(&p) {
            Some(pr) => {
                let t = pr.token & i32::MAX as u32;
                pr.token = pr.token.wrapping_add(1);
                t
            }
            None => 0,
        }
    }

    fn send_msg(&mut self, p: PortId, path: &str, m: &[u8]) -> Result<(), Errno> {
        let cs = self.proc(p)?.cs;
        let path = strlcpy(path, msg::PATHSIZ);
        self.api.sendto(cs, m, &sockaddr_ng(path)).map(|_| ())
    }

    fn msg_ready(&mut self, p: PortId, wait: Wait) -> bool {
        self.ready(p, Sock::Control, wait)
    }

    fn recv_msg(
        &mut self,
        p: PortId,
        buflen: Option<usize>,
        wait: Wait,
    ) -> Result<Option<Received>, Errno> {
        self.recv(p, Sock::Control, buflen, wait)
    }

    fn send_data(&mut self, p: PortId, hook: &str, data: &[u8]) -> Result<(), Errno> {
        let ds = self.proc(p)?.ds;
        self.api.sendto(ds, data, &sockaddr_ng(hook)).map(|_| ())
    }

    fn data_ready(&mut self, p: PortId, wait: Wait) -> bool {
        self.ready(p, Sock::Data, wait)
    }

    fn recv_data(
        &mut self,
        p: PortId,
        buflen: Option<usize>,
        wait: Wait,
    ) -> Result<Option<Received>, Errno> {
        self.recv(p, Sock::Data, buflen, wait)
    }

    fn take_open_exchange(&mut self, p: PortId) -> Option<(NgMsg, Received)> {
        self.procs.get_mut(&p)?.exchange.take()
    }

    fn close(&mut self, p: PortId) {
        if let Some(pr) = self.procs.remove(&p) {
            self.api.close(pr.cs);
            self.api.close(pr.ds);
        }
    }

    fn pump(&mut self) -> bool {
        self.api.pump()
    }

    fn open_sockets(&self) -> usize {
        self.api.open_sockets()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs_as_libnetgraph_builds_them() {
        assert_eq!(sockaddr_ng("foo"), vec![6, 32, b'f', b'o', b'o', 0]);
        assert_eq!(
            sockaddr_data(&[34, 32, b'[', b'1', b']', b':', 0, 0]),
            "[1]:"
        );
        // sg_len is a byte: long paths wrap, as in C.
        assert_eq!(sockaddr_ng(&"a".repeat(300))[0], ((300 + 3) % 256) as u8);
        assert_eq!(sockaddr_ng(&"a".repeat(300)).len(), (300 + 3) % 256);
        assert_eq!(strlcpy("abcdef", 4), "abc");
        assert_eq!(strlcpy("ab", 4), "ab");
    }
}
