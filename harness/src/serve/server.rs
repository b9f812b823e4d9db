//! The server loop of `ngharness serve`: one OS thread runs the harness
//! kernel and every client connection, in rounds.
//!
//! Each round: bring model time up to real time (plus any `ADVANCE`), run
//! the kernel until idle, queue readiness tokens, flush replies, then
//! `poll(2)` the listening socket, the clients and the kernel's network
//! event descriptor. Hangups are handled before any request of the round
//! (a client that closed a socket and then made another call sees the
//! close done, as with FreeBSD's synchronous `close(2)`), then at most one
//! request per client (the first queued one was sent before `poll`
//! returned), then new connections.

use std::collections::VecDeque;
use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::syscall::{self, Proc};
use crate::kern::{self, domain, sched};
use crate::scenario::kernel::{HarnessKernel, Kernel};
use crate::wire::{self, op, Assembler, Reply, Request, KIND_READABLE, KIND_REPLY};

/// Replies queued for a client beyond which its requests are not read.
const OUT_LIMIT: usize = 16 << 20;
/// Socket buffer size asked for on both sides of a connection.
const SOCKBUF: c_int = 1 << 20;
/// Longest `poll` while the kernel has network sockets (their event
/// source also has housekeeping to do).
const NET_POLL_MS: u64 = 20;
/// Longest `poll` otherwise.
const IDLE_POLL_MS: u64 = 1000;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// How model time moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// With real time (one tick per millisecond), plus `ADVANCE` requests.
    Real,
    /// Only through `ADVANCE` requests (and timed sleeps inside the kernel).
    Manual,
}

/// Options of `ngharness serve`.
#[derive(Debug, Clone)]
pub struct Options {
    pub kos: Vec<PathBuf>,
    pub listen: PathBuf,
    pub clock: Clock,
    /// Socket file mode.
    pub mode: u32,
    /// Virtual CPUs of the kernel (`kern::smp`; 1: the single-CPU model).
    /// On several, each client request runs as a system call on a kernel
    /// thread of its own.
    pub cpus: u32,
}

struct Conn {
    fd: OwnedFd,
    peer_uid: u32,
    proc_: Proc,
    asm: Assembler,
    out: VecDeque<Vec<u8>>,
    out_bytes: usize,
    /// A readiness token is queued or unread.
    token_out: bool,
    /// The peer is gone (hangup or a failed write).
    dead: bool,
}

struct Server {
    listen: OwnedFd,
    path: PathBuf,
    conns: Vec<Option<Conn>>,
    kernel: HarnessKernel,
    clock: Clock,
    start: Instant,
    advanced: u64,
    served: usize,
    /// The connection that asked for `END`.
    ending: Option<usize>,
    /// Log every request and reply on stderr (`NGBRIDGE_TRACE` set).
    trace: bool,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn set_int_opt(fd: RawFd, level: c_int, name: c_int, v: c_int) {
    // SAFETY: plain setsockopt on our own descriptor with an int value.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        );
    }
}

fn bind_listen(path: &Path, mode: u32) -> io::Result<OwnedFd> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: zeroed sockaddr_un is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= sun.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // A stale socket file from an earlier server is replaced; anything else is not.
    if let Ok(md) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if md.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        } else {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            ));
        }
    }
    // SAFETY: plain syscalls; the descriptor is owned at once.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        if libc::bind(
            fd.as_raw_fd(),
            (&sun as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let c = std::ffi::CString::new(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
        libc::chmod(c.as_ptr(), mode as libc::mode_t);
        if libc::listen(fd.as_raw_fd(), 128) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

fn install_signals() {
    // SAFETY: installs an async-signal-safe handler (one atomic store);
    // no SA_RESTART, so poll(2) returns EINTR and the loop sees the flag.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Runs the server until SIGINT/SIGTERM or an `END` request; returns the
/// exit status (1 if the end checks found anything).
pub fn run(o: &Options) -> i32 {
    // The server loop is the driver: it runs until it blocks; the client
    // system calls and the kernel's threads interleave.
    kern::smp::configure(kern::smp::Config {
        preempt_driver: false,
        ..kern::smp::Config::cpus(o.cpus, 1)
    });
    let kernel = match HarnessKernel::boot(&o.kos) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("ngharness serve: {e}");
            return 1;
        }
    };
    let listen = match bind_listen(&o.listen, o.mode) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("ngharness serve: {}: {e}", o.listen.display());
            return 1;
        }
    };
    install_signals();
    let mut s = Server {
        listen,
        path: o.listen.clone(),
        conns: Vec::new(),
        kernel,
        clock: o.clock,
        start: Instant::now(),
        advanced: 0,
        served: 0,
        ending: None,
        trace: std::env::var_os("NGBRIDGE_TRACE").is_some(),
    };
    let mods: Vec<String> = o.kos.iter().map(|k| k.display().to_string()).collect();
    {
        use std::io::Write;
        let mut so = io::stdout().lock();
        let _ = writeln!(
            so,
            "ngharness serve: ready on {} ({})",
            o.listen.display(),
            mods.join(" ")
        );
        let _ = so.flush();
    }
    s.run_loop();
    s.finish()
}

impl Server {
    fn sync_clock(&mut self) {
        if self.clock != Clock::Real {
            return;
        }
        let target = self.start.elapsed().as_millis() as u64 + self.advanced;
        let now = sched::now_ticks();
        if target > now {
            sched::advance(target - now);
        }
    }

    fn run_loop(&mut self) {
        loop {
            if STOP.load(Ordering::SeqCst) {
                return;
            }
            self.sync_clock();
            sched::run_until_idle();
            self.update_tokens();
            self.flush_all();
            if self.ending.is_some() {
                return;
            }
            self.round();
        }
    }

    /// Queues a readiness token on each socket connection whose socket is
    /// readable and that has none outstanding.
    fn update_tokens(&mut self) {
        self.update_tokens_except(None);
    }

    fn update_tokens_except(&mut self, skip: Option<usize>) {
        for (i, c) in self.conns.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            if c.token_out || c.dead || Some(i) == skip {
                continue;
            }
            let Some(fd) = c.proc_.sock else { continue };
            if domain::readable(fd) {
                c.token_out = true;
                push_reply(c, KIND_READABLE, &Reply::default());
            }
        }
    }

    fn flush_all(&mut self) {
        for c in self.conns.iter_mut().flatten() {
            flush(c);
        }
    }

    fn poll_timeout(&self) -> c_int {
        let mut ms = IDLE_POLL_MS;
        if crate::kern::inet::live_sockets() > 0 {
            ms = ms.min(NET_POLL_MS);
        }
        if let Some(d) = sched::next_timer() {
            let now = sched::now_ticks();
            ms = ms.min(d.saturating_sub(now));
        }
        ms as c_int
    }

    fn round(&mut self) {
        let mut pfds = vec![libc::pollfd {
            fd: self.listen.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let net = crate::kern::inet::event_fd();
        if let Some(e) = net {
            pfds.push(libc::pollfd {
                fd: e,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let base = pfds.len();
        let mut idx = Vec::new();
        for (i, c) in self.conns.iter().enumerate() {
            let Some(c) = c else { continue };
            let mut ev = 0;
            if c.out_bytes < OUT_LIMIT {
                ev |= libc::POLLIN;
            }
            if !c.out.is_empty() {
                ev |= libc::POLLOUT;
            }
            pfds.push(libc::pollfd {
                fd: c.fd.as_raw_fd(),
                events: ev,
                revents: 0,
            });
            idx.push(i);
        }
        let timeout = self.poll_timeout();
        // SAFETY: `pfds` is a valid array of pollfd.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            return;
        }
        let hup = libc::POLLHUP | libc::POLLERR | libc::POLLRDHUP;
        // Hangups first: drain what the peer sent before it went, then close.
        for (k, &i) in idx.iter().enumerate() {
            let r = pfds[base + k].revents;
            let dead = self.conns[i].as_ref().is_some_and(|c| c.dead);
            if r & hup != 0 || dead {
                while self.read_request(i) {}
                self.close_conn(i);
            }
        }
        for (k, &i) in idx.iter().enumerate() {
            let r = pfds[base + k].revents;
            if self.conns[i].is_none() {
                continue;
            }
            if r & libc::POLLIN != 0 {
                self.read_request(i);
            }
            if r & libc::POLLOUT != 0 {
                if let Some(c) = self.conns[i].as_mut() {
                    flush(c);
                }
            }
            if self.ending.is_some() {
                return;
            }
        }
        if pfds[0].revents & libc::POLLIN != 0 {
            self.accept_all();
        }
    }

    fn accept_all(&mut self) {
        loop {
            // SAFETY: accept4 on our listening socket; the result is owned at once.
            let fd = unsafe {
                libc::accept4(
                    self.listen.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return;
            }
            // SAFETY: a fresh descriptor from accept4.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut cred = libc::ucred {
                pid: 0,
                uid: u32::MAX,
                gid: u32::MAX,
            };
            let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
            // SAFETY: SO_PEERCRED fills a ucred of `len` bytes.
            unsafe {
                libc::getsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_PEERCRED,
                    (&mut cred as *mut libc::ucred).cast(),
                    &mut len,
                );
            }
            set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, SOCKBUF);
            set_int_opt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKBUF);
            self.served += 1;
            let c = Conn {
                fd,
                peer_uid: cred.uid,
                proc_: Proc::new(cred.uid),
                asm: Assembler::default(),
                out: VecDeque::new(),
                out_bytes: 0,
                token_out: false,
                dead: false,
            };
            match self.conns.iter().position(Option::is_none) {
                Some(i) => self.conns[i] = Some(c),
                None => self.conns.push(Some(c)),
            }
        }
    }

    /// Reads packets of connection `i` until one request is complete and
    /// handled (true), or nothing more is there (false).
    fn read_request(&mut self, i: usize) -> bool {
        let mut buf = vec![0u8; wire::CHUNK + 1];
        loop {
            let Some(c) = self.conns[i].as_mut() else {
                return false;
            };
            // SAFETY: `buf` has room for CHUNK + 1 bytes.
            let n = unsafe {
                libc::recv(
                    c.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = errno();
                if e != libc::EAGAIN && e != libc::EINTR {
                    c.dead = true;
                }
                return false;
            }
            if n == 0 {
                c.dead = true;
                return false;
            }
            let pkt = &buf[..n as usize];
            match c.asm.feed(pkt) {
                Ok(None) => continue,
                Ok(Some(req)) => {
                    c.token_out = false;
                    self.handle(i, &req);
                    return true;
                }
                Err(m) => {
                    c.token_out = false;
                    let uid = c.peer_uid;
                    eprintln!("ngharness serve: malformed request from uid {uid} ignored: {m}");
                    push_reply(c, KIND_REPLY, &Reply::err(fbsd_sys::EINVAL as i32));
                    return true;
                }
            }
        }
    }

    fn handle(&mut self, i: usize, req: &Request) {
        let reply = if req.op >= op::SETTLE {
            self.control(i, req)
        } else {
            let Some(c) = self.conns[i].as_mut() else {
                return;
            };
            let uid = if c.peer_uid == 0 { req.uid } else { c.peer_uid };
            let r = syscall::enter(&mut c.proc_, uid, req);
            sched::run_until_idle();
            r
        };
        if self.trace {
            eprintln!(
                "ngbridge: conn {i} op {} a {} b {} c {} lens {}/{}/{} -> error {} ret {} x {} y {} lens {}/{}",
                req.op, req.a, req.b, req.c, req.b1.len(), req.b2.len(), req.b3.len(),
                reply.error, reply.ret, reply.x, reply.y, reply.b1.len(), reply.b2.len()
            );
        }
        // What the call made readable elsewhere is visible before the
        // caller learns the call returned (as FreeBSD's sbappend happens
        // before sendto returns): other clients' tokens go out first, and
        // this client's own token follows its reply, announced in it.
        self.update_tokens_except(Some(i));
        self.flush_all();
        if let Some(c) = self.conns[i].as_mut() {
            let token = !c.token_out && c.proc_.sock.is_some_and(domain::readable);
            push_reply_flagged(c, KIND_REPLY, &reply, token);
            if token {
                c.token_out = true;
                push_reply(c, KIND_READABLE, &Reply::default());
            }
        }
    }

    /// Harness control requests (root peers only).
    fn control(&mut self, i: usize, req: &Request) -> Reply {
        let root = self.conns[i].as_ref().is_some_and(|c| c.peer_uid == 0);
        if !root {
            return Reply::err(fbsd_sys::EPERM as i32);
        }
        match req.op {
            op::SETTLE => {
                let n = sched::run_until_idle();
                self.update_tokens();
                self.flush_all();
                Reply::ok(n as i64)
            }
            op::ADVANCE => {
                let ms = req.a.max(0) as u64;
                self.advanced += ms;
                sched::advance(ms * sched::HZ as u64 / 1000);
                Reply::ok(0)
            }
            op::VIOLATIONS => {
                let v = kern::take_violations();
                Reply {
                    ret: v.len() as i64,
                    b1: v.join("\n").into_bytes(),
                    ..Reply::default()
                }
            }
            op::STATUS => Reply {
                x: self.conns.iter().flatten().count() as i32,
                ..Reply::ok(domain::open_sockets_of(fbsd_sys::AF_NETGRAPH as i32) as i64)
            },
            op::END => {
                self.ending = Some(i);
                Reply::ok(0)
            }
            _ => Reply::err(fbsd_sys::EOPNOTSUPP as i32),
        }
    }

    /// The connection is gone: its socket is closed, as at a process exit.
    fn close_conn(&mut self, i: usize) {
        if let Some(mut c) = self.conns[i].take() {
            c.proc_.close();
            sched::run_until_idle();
        }
    }

    /// Closes every client, runs the end checks, answers `END` if asked,
    /// and reports. Returns the exit status.
    fn finish(&mut self) -> i32 {
        let ender = self.ending.and_then(|i| self.conns[i].take());
        for i in 0..self.conns.len() {
            self.close_conn(i);
        }
        let problems = self.kernel.end_checks();
        if let Some(mut c) = ender {
            let r = Reply {
                ret: problems.len() as i64,
                b1: problems.join("\n").into_bytes(),
                ..Reply::default()
            };
            // The reply must get out before the process exits: wait for room.
            push_reply(&mut c, KIND_REPLY, &r);
            let _ = set_blocking(c.fd.as_raw_fd());
            flush(&mut c);
        }
        let _ = std::fs::remove_file(&self.path);
        println!("ngharness serve: {} connection(s) served", self.served);
        if problems.is_empty() {
            println!("violations: none");
            0
        } else {
            println!("violations: {}", problems.len());
            for p in &problems {
                println!("  {p}");
            }
            1
        }
    }
}

fn set_blocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on our own descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn push_reply(c: &mut Conn, kind: u16, r: &Reply) {
    push_reply_flagged(c, kind, r, false);
}

/// Queues a reply; `token_follows` sets [`wire::FLAG_TOKEN_FOLLOWS`].
fn push_reply_flagged(c: &mut Conn, kind: u16, r: &Reply, token_follows: bool) {
    let mut m = wire::encode_reply(kind, r);
    if token_follows {
        wire::set_flags(&mut m, wire::FLAG_TOKEN_FOLLOWS);
    }
    for p in wire::packets(m) {
        c.out_bytes += p.len();
        c.out.push_back(p);
    }
}

/// Writes queued packets until the peer's buffer is full.
fn flush(c: &mut Conn) {
    while let Some(p) = c.out.front() {
        // SAFETY: sending a byte buffer on our own descriptor.
        let n = unsafe {
            libc::send(
                c.fd.as_raw_fd(),
                p.as_ptr().cast(),
                p.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            if e != libc::EAGAIN {
                c.dead = true;
                c.out.clear();
                c.out_bytes = 0;
            }
            return;
        }
        c.out_bytes -= p.len();
        c.out.pop_front();
    }
}
