//! The `bridge` backend: the scenario runs in this process as an ordinary
//! Linux program using `libngbridge.so` (preloaded by the parent), against
//! an `ngharness serve` child that holds the kernel. Every `PF_NETGRAPH`
//! call of the ngctl emulation is a real `socket(2)`, `sendto(2)`,
//! `poll(2)`... through the preload library, module commands use its
//! `kldload(2)`/`kldfind(2)`/`modfind(2)`, and `as user` switches this
//! process's effective uid, so the server sees the credential a real
//! process would have. Harness control (running the kernel until idle,
//! model time, violations, the end checks) goes over a control connection
//! of the bridge protocol.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::errno::Errno;
use super::kernel::{Kernel, BUILTIN_MODULES, USER_UID};
use super::parse::Cred;
use super::port::{Datagram, Fd, SockApi, SocketPort, Wait};
use crate::wire::client::Client;
use crate::wire::{op, Request};

type KldName = unsafe extern "C" fn(*const c_char) -> c_int;
type KldId = unsafe extern "C" fn(c_int) -> c_int;
type ErrnoMap = unsafe extern "C" fn(c_int) -> c_int;

/// The preload library's entry points this backend calls by name.
struct Lib {
    kldload: KldName,
    kldfind: KldName,
    kldunload: KldId,
    modfind: KldName,
    to_linux: ErrnoMap,
}

fn sym(name: &str) -> Result<*mut c_void, String> {
    let c = CString::new(name).map_err(|_| "bad symbol name".to_string())?;
    // SAFETY: dlsym with a valid C string; RTLD_DEFAULT searches the
    // preloaded library first.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
    if p.is_null() {
        return Err(format!(
            "`{name}` not found: run with LD_PRELOAD=build/libngbridge.so"
        ));
    }
    Ok(p)
}

impl Lib {
    fn load() -> Result<Lib, String> {
        // SAFETY: the symbols are the library's functions with these C
        // signatures (bridge/ngbridge_*.c).
        unsafe {
            Ok(Lib {
                kldload: std::mem::transmute::<*mut c_void, KldName>(sym("kldload")?),
                kldfind: std::mem::transmute::<*mut c_void, KldName>(sym("kldfind")?),
                kldunload: std::mem::transmute::<*mut c_void, KldId>(sym("kldunload")?),
                modfind: std::mem::transmute::<*mut c_void, KldName>(sym("modfind")?),
                to_linux: std::mem::transmute::<*mut c_void, ErrnoMap>(sym(
                    "ngbridge_errno_to_linux",
                )?),
            })
        }
    }

    /// The FreeBSD errno the library reported as Linux errno `e`.
    fn to_freebsd(&self, e: i32) -> Errno {
        if let Some(f) = super::errno::from_linux(e) {
            // SAFETY: a pure function of the library.
            if unsafe { (self.to_linux)(f) } == e {
                return f;
            }
        }
        (1..=97)
            // SAFETY: as above.
            .find(|&f| unsafe { (self.to_linux)(f) } == e)
            .unwrap_or(fbsd_sys::EIO as Errno)
    }

    fn name_call(&self, f: KldName, name: &str) -> Result<c_int, Errno> {
        let c = CString::new(name).map_err(|_| fbsd_sys::EINVAL as Errno)?;
        // SAFETY: a library function taking a C string.
        let r = unsafe { f(c.as_ptr()) };
        if r < 0 {
            Err(self.to_freebsd(last_errno()))
        } else {
            Ok(r)
        }
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

struct Shared {
    lib: Lib,
    ctl: Client,
}

impl Shared {
    fn control(&self, op: u16, a: i32) -> Result<crate::wire::Reply, Errno> {
        let r = self
            .ctl
            .call(&Request {
                op,
                a,
                ..Request::default()
            })
            .map_err(|_| fbsd_sys::EIO as Errno)?;
        if r.error != 0 {
            return Err(r.error);
        }
        Ok(r)
    }
}

/// `PF_NETGRAPH` system calls of this process (through the preload library).
pub struct LibcApi {
    sh: Rc<Shared>,
}

fn fb_err(sh: &Shared) -> Errno {
    sh.lib.to_freebsd(last_errno())
}

impl SockApi for LibcApi {
    fn backend(&self) -> String {
        "PF_NETGRAPH sockets of a Linux process through libngbridge.so and ngharness serve".into()
    }

    fn socket(&mut self, proto: i32) -> Result<Fd, Errno> {
        // SAFETY: plain system call (interposed by the preload library).
        let fd = unsafe { libc::socket(fbsd_sys::PF_NETGRAPH as c_int, libc::SOCK_DGRAM, proto) };
        if fd < 0 {
            return Err(fb_err(&self.sh));
        }
        Ok(fd)
    }

    fn bind(&mut self, fd: Fd, sa: &[u8]) -> Result<(), Errno> {
        // SAFETY: `sa` is a readable buffer of its length.
        let r = unsafe { libc::bind(fd, sa.as_ptr().cast(), sa.len() as libc::socklen_t) };
        if r < 0 {
            return Err(fb_err(&self.sh));
        }
        Ok(())
    }

    fn connect(&mut self, fd: Fd, sa: &[u8]) -> Result<(), Errno> {
        // SAFETY: as above.
        let r = unsafe { libc::connect(fd, sa.as_ptr().cast(), sa.len() as libc::socklen_t) };
        if r < 0 {
            return Err(fb_err(&self.sh));
        }
        Ok(())
    }

    fn sendto(&mut self, fd: Fd, buf: &[u8], sa: &[u8]) -> Result<usize, Errno> {
        // SAFETY: both buffers are readable for their lengths.
        let r = unsafe {
            libc::sendto(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                0,
                sa.as_ptr().cast(),
                sa.len() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(fb_err(&self.sh));
        }
        Ok(r as usize)
    }

    fn poll(&mut self, fd: Fd, wait: Wait) -> bool {
        let ms = match wait {
            Wait::Now => 0,
            Wait::For(d) => d.as_millis().min(i32::MAX as u128) as c_int,
        };
        let end = Instant::now() + Duration::from_millis(ms as u64);
        loop {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let left = end.saturating_duration_since(Instant::now()).as_millis() as c_int;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut p, 1, left) };
            if n > 0 {
                return true;
            }
            if n == 0 || last_errno() != libc::EINTR {
                return false;
            }
        }
    }

    fn recvfrom(&mut self, fd: Fd, buflen: usize, wait: Wait) -> Result<Option<Datagram>, Errno> {
        if !self.poll(fd, wait) {
            return Ok(None);
        }
        let mut buf = vec![0u8; buflen];
        let mut from = [0u8; 256];
        let mut flen = from.len() as libc::socklen_t;
        // SAFETY: the buffers are writable for the lengths given.
        let r = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buflen,
                libc::MSG_DONTWAIT,
                from.as_mut_ptr().cast(),
                &mut flen,
            )
        };
        if r < 0 {
            let e = fb_err(&self.sh);
            if e == fbsd_sys::EWOULDBLOCK as Errno {
                return Ok(None);
            }
            return Err(e);
        }
        buf.truncate(r as usize);
        Ok(Some((buf, from[..flen as usize].to_vec())))
    }

    fn rcvbuf(&mut self, fd: Fd) -> Result<usize, Errno> {
        let mut v: c_int = 0;
        let mut l = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: an int-sized option buffer.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&mut v as *mut c_int).cast(),
                &mut l,
            )
        };
        if r < 0 {
            return Err(fb_err(&self.sh));
        }
        Ok(v.max(0) as usize)
    }

    fn close(&mut self, fd: Fd) {
        // SAFETY: closing a descriptor this backend opened.
        unsafe { libc::close(fd) };
    }

    fn kldload(&mut self, file: &str) -> Result<(), Errno> {
        self.sh.lib.name_call(self.sh.lib.kldload, file).map(|_| ())
    }

    fn pump(&mut self) -> bool {
        self.sh.control(op::SETTLE, 0).is_ok_and(|r| r.ret > 0)
    }

    fn open_sockets(&self) -> usize {
        self.sh
            .control(op::STATUS, 0)
            .map_or(0, |r| r.ret.max(0) as usize)
    }
}

/// The kernel behind the bridge.
pub struct BridgeKernel {
    sh: Rc<Shared>,
    server: Option<Child>,
    cred: Cred,
}

fn module_name(s: &str) -> &str {
    let b = s.rsplit('/').next().unwrap_or(s);
    b.strip_suffix(".ko").unwrap_or(b)
}

impl Kernel for BridgeKernel {
    fn describe(&self) -> String {
        "harness kernel behind ngharness serve".into()
    }

    fn kldload(&mut self, module: &str) -> Result<(), Errno> {
        self.sh
            .lib
            .name_call(self.sh.lib.kldload, module)
            .map(|_| ())
    }

    fn kldfind(&self, module: &str) -> bool {
        BUILTIN_MODULES.contains(&module_name(module))
            || self.sh.lib.name_call(self.sh.lib.kldfind, module).is_ok()
    }

    fn kldunload(&mut self, module: &str) -> Result<(), Errno> {
        if BUILTIN_MODULES.contains(&module_name(module)) {
            return Err(fbsd_sys::EBUSY as Errno);
        }
        let id = self.sh.lib.name_call(self.sh.lib.kldfind, module)?;
        // SAFETY: a library function taking an int.
        if unsafe { (self.sh.lib.kldunload)(id) } < 0 {
            return Err(fb_err(&self.sh));
        }
        Ok(())
    }

    fn module_loaded(&self, module: &str) -> bool {
        BUILTIN_MODULES.contains(&module)
            || self.sh.lib.name_call(self.sh.lib.modfind, module).is_ok()
    }

    fn sysctl(&mut self, name: &str, value: Option<i64>) -> Result<i64, Errno> {
        let mut name0 = name.as_bytes().to_vec();
        name0.push(0);
        let call = |b2: Vec<u8>| {
            self.sh
                .ctl
                .call(&Request {
                    op: op::SYSCTL,
                    // SAFETY: plain system call.
                    uid: unsafe { libc::geteuid() },
                    b1: name0.clone(),
                    b2,
                    ..Request::default()
                })
                .map_err(|_| fbsd_sys::EIO as Errno)
        };
        let r = call(Vec::new())?;
        if r.error != 0 {
            return Err(r.error);
        }
        let old = match r.b1.len() {
            4 => i64::from(i32::from_ne_bytes([r.b1[0], r.b1[1], r.b1[2], r.b1[3]])),
            8 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&r.b1);
                i64::from_ne_bytes(a)
            }
            _ => return Err(fbsd_sys::EINVAL as Errno),
        };
        if let Some(v) = value {
            // sysctl(8) refuses a read-only OID itself, before any write.
            if r.x == 0 {
                return Err(fbsd_sys::EROFS as Errno);
            }
            let bytes = if r.b1.len() == 4 {
                (v as i32).to_ne_bytes().to_vec()
            } else {
                v.to_ne_bytes().to_vec()
            };
            let w = call(bytes)?;
            if w.error != 0 {
                return Err(w.error);
            }
        }
        Ok(old)
    }

    fn set_cred(&mut self, cred: Cred) {
        let uid = match cred {
            Cred::Root => 0,
            Cred::User => USER_UID,
        };
        // SAFETY: changes this process's effective uid (the real and saved
        // uids stay root, so it can come back).
        unsafe {
            if libc::geteuid() != 0 {
                libc::seteuid(0);
            }
            libc::seteuid(uid);
        }
        self.cred = cred;
    }

    fn cred(&self) -> Cred {
        self.cred
    }

    fn pump(&mut self) -> bool {
        self.sh.control(op::SETTLE, 0).is_ok_and(|r| r.ret > 0)
    }

    fn advance(&mut self, ms: u64) {
        let _ = self.sh.control(op::ADVANCE, ms.min(i32::MAX as u64) as i32);
    }

    fn take_violations(&mut self) -> Vec<String> {
        match self.sh.control(op::VIOLATIONS, 0) {
            Ok(r) if !r.b1.is_empty() => String::from_utf8_lossy(&r.b1)
                .lines()
                .map(str::to_string)
                .collect(),
            Ok(_) => Vec::new(),
            Err(e) => vec![format!(
                "the bridge server does not answer ({})",
                super::errno::name(e)
            )],
        }
    }

    fn end_checks(&mut self) -> Vec<String> {
        self.set_cred(Cred::Root);
        let mut problems: Vec<String> = match self.sh.control(op::END, 0) {
            Ok(r) if !r.b1.is_empty() => String::from_utf8_lossy(&r.b1)
                .lines()
                .map(str::to_string)
                .collect(),
            Ok(_) => Vec::new(),
            Err(e) => vec![format!(
                "the bridge server does not answer END ({})",
                super::errno::name(e)
            )],
        };
        if let Some(p) = self.wait_server() {
            problems.push(p);
        }
        problems
    }
}

impl BridgeKernel {
    /// Waits (bounded) for the server to exit; a problem if it did not end
    /// cleanly.
    fn wait_server(&mut self) -> Option<String> {
        let mut child = self.server.take()?;
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(st)) if st.success() => return None,
                Ok(Some(st)) => {
                    use std::os::unix::process::ExitStatusExt;
                    return Some(match (st.code(), st.signal()) {
                        (Some(c), _) if c == crate::kern::PANIC_EXIT => {
                            "the bridge server ended in a kernel panic".into()
                        }
                        (Some(c), _) => format!("the bridge server exited with status {c}"),
                        (_, Some(s)) => format!("the bridge server was killed by signal {s}"),
                        _ => "the bridge server ended abnormally".into(),
                    });
                }
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Some("the bridge server did not exit after END".into());
                }
            }
        }
    }
}

impl Drop for BridgeKernel {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `ngharness serve` for `kos` on a fresh socket and connects this
/// process to it. The caller must have been started with the preload library.
pub fn start(kos: &[PathBuf]) -> Result<(BridgeKernel, SocketPort<LibcApi>), String> {
    let lib = Lib::load()?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the harness: {e}"))?;
    let dir = std::env::temp_dir();
    let path = dir.join(format!("ngbridge-{}.sock", std::process::id()));
    let mut cmd = Command::new(exe);
    cmd.arg("serve").arg("--listen").arg(&path);
    for k in kos {
        cmd.arg("--ko").arg(k);
    }
    cmd.env_remove("LD_PRELOAD")
        .env_remove("NGBRIDGE")
        .stdin(Stdio::null());
    // SAFETY: prctl in the child before exec: the server dies with us.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start ngharness serve: {e}"))?;
    let end = Instant::now() + Duration::from_secs(30);
    let ctl = loop {
        match Client::connect(&path) {
            Ok(c) => break c,
            Err(_) if Instant::now() < end => {
                if let Ok(Some(st)) = child.try_wait() {
                    return Err(format!("ngharness serve ended at start ({st})"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cannot reach ngharness serve: {e}"));
            }
        }
    };
    // The preload library reads NGBRIDGE at each socket(2); nothing else
    // runs in this process yet.
    std::env::set_var("NGBRIDGE", &path);
    let sh = Rc::new(Shared { lib, ctl });
    let k = BridgeKernel {
        sh: sh.clone(),
        server: Some(child),
        cred: Cred::Root,
    };
    Ok((k, SocketPort::new(LibcApi { sh })))
}

/// The default preload library for `kos`: `libngbridge.so` beside the first
/// module (the build directory).
pub fn default_lib(kos: &[PathBuf]) -> PathBuf {
    let dir = kos
        .first()
        .and_then(|k| k.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join("libngbridge.so")
}
