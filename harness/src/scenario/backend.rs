//! The netgraph client backends over the harness kernel, and backend
//! selection.
//!
//! * `socket`: libnetgraph ([`SocketPort`]) over the harness's `PF_NETGRAPH`
//!   socket layer ([`DomainApi`] over `kern::domain`), i.e. through
//!   `ng_socket.ko` exactly as a FreeBSD program.
//! * `builtin`: the harness's built-in netgraph client node
//!   (`netgraph::client`, type `harnessctl`), standing in for a socket node
//!   until `ng_socket.ko` implements the family. It emulates the parts of
//!   ng_socket that ngctl can observe: sendto() returns the message's apply
//!   error with any synchronous reply already queued, the MKPEER autoload
//!   (`kldload ng_<type>`), PRIV_NETGRAPH_CONTROL for non-root callers, and
//!   the data socket's hook-name rules (single-hook `write`, EINVAL for
//!   names of 32+ bytes, EHOSTUNREACH). Its nodes have type `harnessctl`,
//!   not `socket`.
//! * `fake`: [`super::fake::FakeNet`], a pure-Rust model (self-tests only).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::errno::Errno;
use super::msg::{self, NgMsg};
use super::port::{Datagram, Fd, NgPort, PortId, Received, SockApi, SocketPort, Wait};
use crate::netgraph::client::Client;

/// Socket buffer size reported for SO_RCVBUF (net.graph.recvspace default).
const RCVBUF: usize = 20480;

/// Runs the harness event loop until `ready()` or the wait is over.
pub fn wait_until(wait: Wait, mut ready: impl FnMut() -> bool) -> bool {
    let end = wait.deadline();
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        if !crate::kern::sched::run_once() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

struct Proc {
    client: Client,
    token: u32,
}

/// The built-in netgraph client backend.
#[derive(Default)]
pub struct BuiltinPort {
    procs: HashMap<PortId, Proc>,
    next: PortId,
}

impl BuiltinPort {
    /// A backend with no clients yet.
    pub fn new() -> BuiltinPort {
        BuiltinPort {
            procs: HashMap::new(),
            next: 1,
        }
    }

    fn client(&self, p: PortId) -> Result<&Client, Errno> {
        self.procs
            .get(&p)
            .map(|x| &x.client)
            .ok_or(fbsd_sys::EBADF as Errno)
    }
}

/// Is the current thread's credential root (what priv_check grants
/// PRIV_NETGRAPH_CONTROL to outside jails)?
fn cur_is_root() -> bool {
    let td = crate::kern::thread::curthread();
    if td.is_null() {
        return true;
    }
    // SAFETY: curthread is a live harness thread; its credential pointer is
    // NULL or a live ucred owned by the thread module.
    unsafe {
        let cr = (*td).td_ucred;
        cr.is_null() || (*cr).cr_uid == 0
    }
}

/// Is a node type of this name registered?
fn type_registered(name: &str) -> bool {
    !crate::netgraph::core::findtype(name.as_bytes()).is_null()
}

impl NgPort for BuiltinPort {
    fn backend(&self) -> String {
        "builtin netgraph client (harnessctl nodes standing in for ng_socket)".into()
    }

    fn open(&mut self, name: Option<&str>) -> Result<PortId, Errno> {
        if !cur_is_root() {
            return Err(fbsd_sys::EPERM as Errno);
        }
        let client = Client::new()?;
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            // bind(): sg_len checks, then the generic name rules.
            client.name(".", super::port::strlcpy(n, msg::NODESIZ))?;
        }
        let p = self.next;
        self.next += 1;
        self.procs.insert(p, Proc { client, token: 0 });
        Ok(p)
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

    fn send_msg(&mut self, p: PortId, path: &str, bytes: &[u8]) -> Result<(), Errno> {
        let c = self.client(p)?;
        if !c.is_valid() {
            return Err(fbsd_sys::EPIPE as Errno);
        }
        let m = NgMsg::decode(bytes);
        if bytes.len() < msg::HDRLEN || m.version != msg::NG_VERSION {
            return Err(fbsd_sys::EINVAL as Errno);
        }
        if m.cookie == msg::NGM_GENERIC_COOKIE
            && m.cmd == msg::cmd::MKPEER
            && m.data.len() >= msg::NODESIZ
        {
            // ng_socket's autoload of the node type's module.
            let ty = msg::cstr(&m.data[..msg::NODESIZ]);
            if !type_registered(&ty) {
                let module = format!("ng_{ty}");
                if !cur_is_root() {
                    return Err(fbsd_sys::EPERM as Errno);
                }
                let id = crate::kern::loader::kldload(&module).map_err(|e| e.errno)?;
                if !type_registered(&ty) {
                    let _ = crate::kern::loader::kldunload(
                        id,
                        crate::kern::loader::LINKER_UNLOAD_NORMAL,
                    );
                    return Err(fbsd_sys::ENXIO as Errno);
                }
            }
        }
        let nm = crate::netgraph::macros::mk_message(
            m.cookie,
            m.cmd,
            m.data.len(),
            "",
            fbsd_sys::M_WAITOK as i32,
        );
        // SAFETY: a fresh message with room for `m.data.len()` argument bytes;
        // the header is overwritten with the caller's (arglen kept consistent).
        unsafe {
            let h = &mut (*nm).header;
            h.version = m.version;
            h.arglen = m.data.len() as u32;
            h.flags = m.flags;
            h.token = m.token;
            h.cmdstr = m.cmdstr;
            std::ptr::copy_nonoverlapping(
                m.data.as_ptr(),
                crate::netgraph::macros::msg_data(nm),
                m.data.len(),
            );
            c.send_raw(path, nm)
        }
    }

    fn msg_ready(&mut self, p: PortId, wait: Wait) -> bool {
        let Ok(c) = self.client(p) else { return false };
        wait_until(wait, || c.pending_msgs() > 0 || !c.is_valid())
    }

    fn recv_msg(
        &mut self,
        p: PortId,
        buflen: Option<usize>,
        wait: Wait,
    ) -> Result<Option<Received>, Errno> {
        if !self.msg_ready(p, wait) {
            return Ok(None);
        }
        let c = self.client(p)?;
        let Some(r) = c.recv_msg() else {
            // Node gone: end of file.
            return Ok(Some(Received {
                from: String::new(),
                sa_len: 0,
                bytes: Vec::new(),
            }));
        };
        let m = NgMsg {
            version: r.header.version,
            arglen: r.header.arglen,
            cmd: r.header.cmd,
            flags: r.header.flags,
            token: r.header.token,
            cookie: r.header.typecookie,
            cmdstr: msg::cfield::<{ msg::CMDSTRSIZ }>(&r.header.cmdstr),
            data: r.data,
        };
        let mut bytes = m.encode();
        bytes.truncate(buflen.unwrap_or(RCVBUF));
        Ok(Some(Received {
            from: format!("[{:x}]:", r.from),
            sa_len: 0,
            bytes,
        }))
    }

    fn send_data(&mut self, p: PortId, hook: &str, data: &[u8]) -> Result<(), Errno> {
        let c = self.client(p)?;
        if !c.is_valid() {
            return Err(fbsd_sys::EPIPE as Errno);
        }
        if data.len() > RCVBUF {
            return Err(fbsd_sys::EMSGSIZE as Errno);
        }
        let hook = if hook.is_empty() {
            // write(2) on a data socket: only with exactly one hook.
            // SAFETY: the client holds a reference on its node.
            let n = unsafe { crate::netgraph::macros::numhooks(c.node()) };
            if n != 1 {
                return Err(fbsd_sys::EDESTADDRREQ as Errno);
            }
            // SAFETY: as above; the node has exactly one hook on its list.
            unsafe {
                let h = (*c.node()).nd_hooks.lh_first;
                msg::cstr(crate::netgraph::macros::hook_name(h))
            }
        } else if hook.len() >= msg::NODESIZ {
            return Err(fbsd_sys::EINVAL as Errno);
        } else {
            hook.to_string()
        };
        c.send_data(&hook, data)
    }

    fn data_ready(&mut self, p: PortId, wait: Wait) -> bool {
        let Ok(c) = self.client(p) else { return false };
        wait_until(wait, || c.pending_data() > 0 || !c.is_valid())
    }

    fn recv_data(
        &mut self,
        p: PortId,
        buflen: Option<usize>,
        wait: Wait,
    ) -> Result<Option<Received>, Errno> {
        if !self.data_ready(p, wait) {
            return Ok(None);
        }
        let c = self.client(p)?;
        match c.recv_data() {
            Some((hook, mut bytes)) => {
                bytes.truncate(buflen.unwrap_or(RCVBUF));
                Ok(Some(Received {
                    from: hook,
                    sa_len: 0,
                    bytes,
                }))
            }
            None => Ok(Some(Received {
                from: String::new(),
                sa_len: 0,
                bytes: Vec::new(),
            })),
        }
    }

    fn close(&mut self, p: PortId) {
        if let Some(pr) = self.procs.remove(&p) {
            pr.client.close();
        }
    }

    fn pump(&mut self) -> bool {
        crate::kern::sched::run_once()
    }

    fn open_sockets(&self) -> usize {
        2 * self.procs.len()
    }
}

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// `socket` if ng_socket.ko is loaded and the socket layer exists, else `builtin`.
    Auto,
    /// Through ng_socket.ko.
    Socket,
    /// The built-in client.
    Builtin,
    /// The pure-Rust model.
    Fake,
    /// A Linux process using libngbridge.so against `ngharness serve`.
    Bridge,
}

impl Choice {
    /// Parses `auto|socket|builtin|fake`.
    pub fn parse(s: &str) -> Option<Choice> {
        match s {
            "auto" => Some(Choice::Auto),
            "socket" => Some(Choice::Socket),
            "builtin" => Some(Choice::Builtin),
            "fake" => Some(Choice::Fake),
            "bridge" => Some(Choice::Bridge),
            _ => None,
        }
    }
}

/// The harness's `PF_NETGRAPH` system calls (`kern::domain`) as a
/// [`SockApi`]: the real path through `ng_socket.ko`.
#[derive(Default)]
pub struct DomainApi;

const PF_NETGRAPH: i32 = fbsd_sys::PF_NETGRAPH as i32;
const SOCK_DGRAM: i32 = fbsd_sys::SOCK_DGRAM as i32;
const MSG_DONTWAIT: i32 = fbsd_sys::MSG_DONTWAIT as i32;

impl SockApi for DomainApi {
    fn backend(&self) -> String {
        "PF_NETGRAPH sockets through ng_socket.ko".into()
    }

    fn socket(&mut self, proto: i32) -> Result<Fd, Errno> {
        crate::kern::domain::socket(PF_NETGRAPH, SOCK_DGRAM, proto)
    }

    fn bind(&mut self, fd: Fd, sa: &[u8]) -> Result<(), Errno> {
        crate::kern::domain::bind(fd, sa)
    }

    fn connect(&mut self, fd: Fd, sa: &[u8]) -> Result<(), Errno> {
        crate::kern::domain::connect(fd, sa)
    }

    fn sendto(&mut self, fd: Fd, buf: &[u8], sa: &[u8]) -> Result<usize, Errno> {
        crate::kern::domain::sendto(fd, buf, Some(sa), 0)
    }

    fn poll(&mut self, fd: Fd, wait: Wait) -> bool {
        match wait {
            Wait::Now => crate::kern::domain::readable(fd),
            Wait::For(d) => {
                let ticks = d.as_millis() as u64 * crate::kern::sched::HZ as u64 / 1000;
                crate::kern::domain::poll_readable(fd, Some(ticks)).unwrap_or(false)
            }
        }
    }

    fn recvfrom(&mut self, fd: Fd, buflen: usize, wait: Wait) -> Result<Option<Datagram>, Errno> {
        if !self.poll(fd, wait) {
            return Ok(None);
        }
        match crate::kern::domain::recvfrom(fd, buflen, MSG_DONTWAIT) {
            Ok((data, addr, _)) => Ok(Some((data, addr.unwrap_or_default()))),
            Err(e) if e == fbsd_sys::EWOULDBLOCK as Errno => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn rcvbuf(&mut self, fd: Fd) -> Result<usize, Errno> {
        let v = crate::kern::domain::getsockopt_int(
            fd,
            fbsd_sys::SOL_SOCKET as i32,
            fbsd_sys::SO_RCVBUF as i32,
        )?;
        Ok(v.max(0) as usize)
    }

    fn close(&mut self, fd: Fd) {
        let _ = crate::kern::domain::close(fd);
    }

    fn kldload(&mut self, file: &str) -> Result<(), Errno> {
        if !cur_is_root() {
            return Err(fbsd_sys::EPERM as Errno);
        }
        crate::kern::loader::kldload(file)
            .map(|_| ())
            .map_err(|e| e.errno)
    }

    fn pump(&mut self) -> bool {
        crate::kern::sched::run_once()
    }

    fn open_sockets(&self) -> usize {
        crate::kern::domain::open_sockets_of(fbsd_sys::AF_NETGRAPH as i32)
    }
}

/// The `PF_NETGRAPH` socket-layer backend, if it can be used now: the
/// family must be registered (ng_socket.ko loaded and implementing it).
pub fn socket_port() -> Result<Box<dyn NgPort>, String> {
    let registered = crate::kern::domain::registered_families()
        .iter()
        .any(|(f, _)| *f == PF_NETGRAPH);
    if !registered {
        return Err("the PF_NETGRAPH family is not registered (is ng_socket.ko loaded?)".into());
    }
    Ok(Box::new(SocketPort::new(DomainApi)))
}
