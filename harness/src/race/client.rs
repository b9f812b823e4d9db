//! What the threads of a race scenario do: `ngctl` commands, each a process
//! of its own ([`ngctl`], [`Sess`]); libnetgraph-level processes with a
//! control and a data socket making real blocking system calls ([`Proc`]);
//! peers outside the kernel ([`udp_peer`], [`tcp_listener`]).
//!
//! Every call runs on the calling kernel thread. Replies are read with
//! blocking `recvfrom` (the socket layer bounds the wait), so a reply queued
//! without its wakeup shows up as a "missing wakeup" violation.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::kern::domain;
use crate::scenario::backend::DomainApi;
use crate::scenario::msg::{self, NgMsg};
use crate::scenario::ngctl::{self, Outcome, Session};
use crate::scenario::port::{sockaddr_ng, SocketPort, NG_CONTROL, NG_DATA};

/// An errno value.
pub type Errno = i32;

const PF_NETGRAPH: i32 = fbsd_sys::PF_NETGRAPH as i32;
const SOCK_DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;

fn next_pid() -> u32 {
    static PID: AtomicU32 = AtomicU32::new(50_000);
    PID.fetch_add(1, Ordering::Relaxed)
}

fn words(cmd: &str) -> Vec<String> {
    cmd.split_whitespace().map(str::to_string).collect()
}

/// `ngctl CMD...` as a process of its own (its node lives for the command).
pub fn ngctl(cmd: &str) -> Outcome {
    let mut port = SocketPort::new(DomainApi);
    ngctl::oneshot(&mut port, &words(cmd), next_pid(), Path::new("."))
}

/// [`ngctl`] that must succeed; its output lines.
pub fn ngctl_ok(cmd: &str) -> Result<Vec<String>, String> {
    let o = ngctl(cmd);
    if o.status != 0 || !o.problems.is_empty() {
        return Err(format!(
            "`ngctl {cmd}` failed (status {}): {:?} {:?}",
            o.status, o.lines, o.problems
        ));
    }
    Ok(o.lines)
}

/// An interactive ngctl: its socket node stays until [`Sess::close`].
pub struct Sess {
    port: SocketPort<DomainApi>,
    s: Session,
}

impl Sess {
    /// Starts one.
    pub fn start() -> Result<Sess, String> {
        let mut port = SocketPort::new(DomainApi);
        let mut out = Vec::new();
        let s = Session::start(&mut port, next_pid(), Path::new("."), &mut out);
        if !s.alive() {
            return Err(format!("ngctl session did not start: {out:?}"));
        }
        Ok(Sess { port, s })
    }

    /// One command; its output lines, or why it failed.
    pub fn cmd(&mut self, cmd: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let st = self.s.command(&mut self.port, &words(cmd), &mut out);
        let problems = std::mem::take(&mut self.s.st.problems);
        if st != 0 || !problems.is_empty() {
            return Err(format!(
                "`{cmd}` failed (status {st}): {out:?} {problems:?}"
            ));
        }
        Ok(out)
    }

    /// Reads what arrived (asynchronous replies) without waiting.
    pub fn monitor(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.s.monitor(&mut self.port, &mut out);
        out
    }

    /// The process exits (its sockets close).
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Sess {
    fn drop(&mut self) {
        self.s.close(&mut self.port);
    }
}

/// The port number in a ksocket address reply line (`inet/1.2.3.4:PORT`).
pub fn port_in(lines: &[String]) -> Option<u16> {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("Args:"))
        .and_then(|a| a.trim().rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
}

/// A process using libnetgraph: a control socket and a data socket
/// connected to its node, with blocking system calls.
pub struct Proc {
    /// Control socket (None once closed).
    pub cs: Option<i32>,
    /// Data socket (None once closed).
    pub ds: Option<i32>,
    /// Its node's ID.
    pub id: u32,
    token: u32,
}

impl Proc {
    /// `NgMkSockNode(NULL, &cs, &ds)`.
    pub fn open() -> Result<Proc, String> {
        let cs = domain::socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL)
            .map_err(|e| format!("socket(NG_CONTROL): errno {e}"))?;
        let mut p = Proc {
            cs: Some(cs),
            ds: None,
            id: 0,
            token: 1,
        };
        p.send_msg(".", msg::NGM_GENERIC_COOKIE, msg::cmd::NODEINFO, &[])
            .map_err(|e| format!("NODEINFO: errno {e}"))?;
        let r = p
            .recv_msg()
            .map_err(|e| format!("NODEINFO reply: errno {e}"))?;
        p.id = msg::NodeInfo::decode_at(&r.data, 0).id;
        let ds = domain::socket(PF_NETGRAPH, SOCK_DGRAM, NG_DATA)
            .map_err(|e| format!("socket(NG_DATA): errno {e}"))?;
        p.ds = Some(ds);
        domain::connect(ds, &sockaddr_ng(&format!("[{:x}]:", p.id)))
            .map_err(|e| format!("connect(data): errno {e}"))?;
        Ok(p)
    }

    /// The node's address, `[id]:`.
    pub fn path(&self) -> String {
        format!("[{:x}]:", self.id)
    }

    /// `NgSendMsg`: a request to `path`; its token.
    pub fn send_msg(
        &mut self,
        path: &str,
        cookie: u32,
        cmd: u32,
        data: &[u8],
    ) -> Result<u32, Errno> {
        let cs = self.cs.ok_or(fbsd_sys::EBADF as Errno)?;
        let t = self.token;
        self.token += 1;
        let m = NgMsg::request(cookie, cmd, t, data.to_vec());
        domain::sendto(cs, &m.encode(), Some(&sockaddr_ng(path)), 0)?;
        Ok(t)
    }

    /// `NgRecvMsg`: a blocking `recvfrom` on the control socket.
    pub fn recv_msg(&mut self) -> Result<NgMsg, Errno> {
        let cs = self.cs.ok_or(fbsd_sys::EBADF as Errno)?;
        let (b, _, _) = domain::recvfrom(cs, 65536, 0)?;
        if b.len() < msg::HDRLEN {
            return Err(fbsd_sys::EPIPE as Errno);
        }
        Ok(NgMsg::decode(&b))
    }

    /// `NgSendData`: `sendto` on the data socket to hook `hook`.
    pub fn send_data(&self, hook: &str, data: &[u8]) -> Result<(), Errno> {
        let ds = self.ds.ok_or(fbsd_sys::EBADF as Errno)?;
        domain::sendto(ds, data, Some(&sockaddr_ng(hook)), 0).map(|_| ())
    }

    /// `NgRecvData` without waiting (MSG_DONTWAIT); None if nothing is queued.
    pub fn try_recv_data(&self) -> Option<Vec<u8>> {
        let ds = self.ds?;
        domain::recvfrom(ds, 65536, fbsd_sys::MSG_DONTWAIT as i32)
            .ok()
            .map(|r| r.0)
    }

    /// Closes the control socket.
    pub fn close_control(&mut self) {
        if let Some(fd) = self.cs.take() {
            let _ = domain::close(fd);
        }
    }

    /// Closes the data socket.
    pub fn close_data(&mut self) {
        if let Some(fd) = self.ds.take() {
            let _ = domain::close(fd);
        }
    }

    /// The process exits.
    pub fn close(mut self) {
        self.close_data();
        self.close_control();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.close_data();
        self.close_control();
    }
}

/// A non-blocking UDP socket on 127.0.0.1 (a peer outside the kernel).
pub fn udp_peer() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("outside UDP socket");
    let _ = s.set_nonblocking(true);
    s
}

/// A non-blocking TCP listener on 127.0.0.1 (a peer outside the kernel).
pub fn tcp_listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("outside TCP listener");
    let _ = l.set_nonblocking(true);
    let a = l.local_addr().expect("listener address");
    (l, a)
}
