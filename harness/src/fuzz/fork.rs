//! The fork server: the kernel is booted once (modules loaded) in the
//! server process; every case runs in a child forked from it, so each
//! starts from the same state whatever the last one did, and a panic, a
//! fault, a leak or a hang ends only that child.
//!
//! A child runs the input, closes every socket, lets the kernel finish and
//! runs the harness's end-of-case checks (quiescence, module unloads, no
//! leak, no lock held, no violation). Its edge counters (instrumented
//! modules, `kern::cov`) go into a map shared with the server, one slice
//! per module. What it prints goes to a memory file the server reads when
//! the case failed.
//!
//! The sandbox: the server enters a network namespace of its own when it
//! may (root, or an unprivileged user namespace), so the Linux peers and
//! the ksockets' sockets see only a private loopback interface; each child
//! changes root (or, failing that, directory) to a scratch directory that
//! holds copies of the modules, so `PF_LOCAL` names land there and
//! `kldload` by name finds the modules; the child empties it before exiting.

use std::ffi::CString;
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::targets::{self, Target};
use crate::kern::{self, cov, loader};
use crate::scenario::kernel::{HarnessKernel, Kernel};

/// Exit status of a child whose case broke a kernel contract.
pub const FINDING_EXIT: i32 = 66;
/// Exit status of a child whose harness code panicked.
pub const HARNESS_PANIC_EXIT: i32 = 67;
/// Bytes of a failing child's output kept in a report.
const REPORT_KEEP: usize = 64 * 1024;

/// How a case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Clean: every check passed.
    Ok,
    /// A finding: a violation, a kernel panic or trap, a harness crash.
    Finding(Finding),
    /// Still running after the time limit (killed).
    Timeout(String),
}

/// A failed case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What ended it: `violation`, `panic`, `harness-panic`, `signal N`.
    pub kind: String,
    /// Its first violation or panic line, numbers and addresses masked:
    /// the same bug gives the same signature.
    pub signature: String,
    /// What the child printed.
    pub report: String,
}

/// The first line that says what went wrong, with numbers masked.
pub fn signature_of(report: &str) -> String {
    let line = report
        .lines()
        .find(|l| l.contains("VIOLATION:"))
        .or_else(|| report.lines().find(|l| l.starts_with("panic:")))
        .or_else(|| report.lines().find(|l| l.contains("panicked at")))
        .or_else(|| report.lines().find(|l| l.contains("end-of-case")))
        .unwrap_or("");
    let mut out = String::new();
    let mut in_num = false;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c == '0' && b.get(i + 1) == Some(&b'x') {
            out.push('#');
            i += 2;
            while i < b.len() && (b[i] as char).is_ascii_hexdigit() {
                i += 1;
            }
            in_num = false;
            continue;
        }
        if c.is_ascii_digit() {
            if !in_num {
                out.push('#');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
        i += 1;
    }
    out
}

/// The scratch directory and network namespace cases run in.
pub struct Sandbox {
    dir: PathBuf,
    /// Whether the server is in a private network namespace.
    pub netns: bool,
}

fn bring_up_loopback() -> bool {
    // SAFETY: plain socket/ioctl calls on a fresh descriptor with an ifreq
    // naming "lo"; errors are checked.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if s < 0 {
            return false;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, c) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *c as libc::c_char;
        }
        let mut ok = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) == 0;
        if ok {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            ok = libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) == 0;
        }
        libc::close(s);
        ok
    }
}

fn write_file(p: &str, s: &str) -> bool {
    std::fs::write(p, s).is_ok()
}

impl Sandbox {
    /// Creates the scratch directory (with copies of `kos` in `modules/`)
    /// and enters a private network namespace if the process may.
    pub fn new(kos: &[PathBuf]) -> Result<Sandbox, String> {
        let dir = std::env::temp_dir().join(format!("ngsock-fuzz.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("modules"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        for k in kos {
            let name = k.file_name().ok_or("module path without a name")?;
            std::fs::copy(k, dir.join("modules").join(name))
                .map_err(|e| format!("{}: {e}", k.display()))?;
        }
        // SAFETY: unshare(2) only changes this thread's namespaces.
        let mut netns = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
        if !netns {
            // SAFETY: as above; fails in a threaded process, then we stay.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } == 0 {
                let _ = write_file("/proc/self/setgroups", "deny");
                let _ = write_file("/proc/self/uid_map", &format!("0 {uid} 1"));
                let _ = write_file("/proc/self/gid_map", &format!("0 {gid} 1"));
                netns = true;
            }
        }
        if netns && !bring_up_loopback() {
            return Err(
                "cannot bring up the loopback interface of the fuzzer's network namespace".into(),
            );
        }
        Ok(Sandbox { dir, netns })
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// In a child: change root (or directory) to the scratch directory.
    fn enter(&self) {
        let Ok(c) = CString::new(self.dir.as_os_str().as_encoded_bytes()) else {
            return;
        };
        // SAFETY: chroot/chdir with a NUL-terminated path.
        let rooted = unsafe { libc::chroot(c.as_ptr()) } == 0;
        if rooted {
            let _ = std::env::set_current_dir("/");
            loader::set_module_path(vec![PathBuf::from("/modules")]);
        } else {
            let _ = std::env::set_current_dir(&self.dir);
            loader::set_module_path(vec![self.dir.join("modules")]);
        }
    }

    /// In a child, after the case: removes what the case created.
    fn clean(&self) {
        if let Ok(rd) = std::fs::read_dir(".") {
            for e in rd.flatten() {
                if e.file_name() == "modules" {
                    continue;
                }
                let p = e.path();
                if p.is_dir() {
                    let _ = std::fs::remove_dir_all(&p);
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A memory region shared with the children (the coverage map).
struct Shared {
    ptr: *mut u8,
    len: usize,
}

impl Shared {
    fn new(len: usize) -> Shared {
        let len = len.max(1);
        // SAFETY: an anonymous shared mapping; checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "fuzz: cannot map the coverage map");
        Shared { ptr: p.cast(), len }
    }

    fn slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps our own mapping.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// One instrumented module's slice of the coverage map.
#[derive(Clone, Debug)]
pub struct ModuleMap {
    pub name: String,
    pub offset: usize,
    pub len: usize,
}

/// The fork server.
pub struct Server {
    kernel: HarnessKernel,
    sandbox: Sandbox,
    map: Shared,
    modules: Vec<ModuleMap>,
    out: std::fs::File,
    /// Time limit of one case.
    pub timeout: Duration,
    /// Echo each child's output to this process's stderr.
    pub verbose: bool,
    /// Every clean case's coverage or-ed together (for `make coverage`).
    union: Vec<u8>,
}

impl Server {
    /// Boots the kernel with `kos` loaded (in order) in this process.
    pub fn boot(kos: &[PathBuf]) -> Result<Server, String> {
        // Each case runs in a fork of this process, which keeps only the
        // forking thread: the kernel runs free (one CPU, one thread), never
        // on an SMP machine (whatever NGHARNESS_CPUS says).
        crate::kern::smp::configure(crate::kern::smp::Config::default());
        let sandbox = Sandbox::new(kos)?;
        let kernel = HarnessKernel::boot(kos)?;
        crate::kern::printf::set_console_echo(true);
        super::inject::register();
        let mut modules = Vec::new();
        let mut off = 0;
        for (name, len) in cov::sizes() {
            modules.push(ModuleMap {
                name,
                offset: off,
                len,
            });
            off += len;
        }
        let map = Shared::new(off);
        // SAFETY: memfd_create with a NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"ngsock-fuzz-out".as_ptr(), 0) };
        if fd < 0 {
            return Err("memfd_create failed".into());
        }
        // SAFETY: a fresh descriptor we own.
        let out = unsafe { std::fs::File::from_raw_fd(fd) };
        let _ = kern::take_violations();
        Ok(Server {
            kernel,
            sandbox,
            map,
            modules,
            out,
            timeout: Duration::from_secs(10),
            verbose: false,
            union: vec![0; off],
        })
    }

    /// The instrumented modules' slices of [`Server::map`].
    pub fn modules(&self) -> &[ModuleMap] {
        &self.modules
    }

    /// The coverage map of the last case (zeros when it failed or nothing
    /// is instrumented).
    pub fn map(&mut self) -> &mut [u8] {
        self.map.slice()
    }

    /// Raw pointer and length of the coverage map (for a fuzzing engine's
    /// observers; valid as long as the server lives).
    pub fn map_raw(&mut self) -> (*mut u8, usize) {
        (self.map.ptr, self.map.len)
    }

    /// True if the server runs in a private network namespace.
    pub fn sandboxed_network(&self) -> bool {
        self.sandbox.netns
    }

    /// With `NGHARNESS_COVERAGE_DIR` set (`make coverage`), writes what
    /// the clean cases run so far reached, per module, as the harness
    /// processes' dumps are written (`<module>.<pid>.cases.cov`): the cases
    /// run in children that end without writing their own.
    pub fn dump_coverage(&self) {
        let Some(dir) = std::env::var_os(cov::COVERAGE_DIR_ENV) else {
            return;
        };
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        for m in &self.modules {
            let p = dir.join(format!("{}.{}.cases.cov", m.name, std::process::id()));
            let _ = std::fs::write(p, &self.union[m.offset..m.offset + m.len]);
        }
    }

    /// Runs one case of `target` in a fresh child.
    pub fn run(&mut self, target: Target, data: &[u8]) -> Outcome {
        self.map.slice().fill(0);
        let _ = self.out.set_len(0);
        let _ = self.out.rewind();
        // SAFETY: fork(2); the child only runs the case and _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Outcome::Finding(Finding {
                kind: "fork".into(),
                signature: "fork failed".into(),
                report: std::io::Error::last_os_error().to_string(),
            });
        }
        if pid == 0 {
            self.child(target, data);
        }
        let status = self.wait(pid);
        let mut report = String::new();
        let _ = self.out.rewind();
        let mut buf = Vec::new();
        let _ = (&self.out).read_to_end(&mut buf);
        if buf.len() > REPORT_KEEP {
            buf.drain(..buf.len() - REPORT_KEEP);
        }
        report.push_str(&String::from_utf8_lossy(&buf));
        if self.verbose {
            eprint!("{report}");
        }
        let kind = match status {
            None => return Outcome::Timeout(report),
            Some(s) if libc::WIFEXITED(s) => match libc::WEXITSTATUS(s) {
                0 => {
                    let map = self.map.slice();
                    for (u, &m) in self.union.iter_mut().zip(map.iter()) {
                        *u |= m;
                    }
                    return Outcome::Ok;
                }
                FINDING_EXIT => "violation".to_string(),
                HARNESS_PANIC_EXIT => "harness-panic".to_string(),
                c if c == kern::PANIC_EXIT => "panic".to_string(),
                c => format!("exit {c}"),
            },
            Some(s) if libc::WIFSIGNALED(s) => format!("signal {}", libc::WTERMSIG(s)),
            Some(s) => format!("status {s}"),
        };
        self.map.slice().fill(0);
        Outcome::Finding(Finding {
            signature: format!("{kind}: {}", signature_of(&report)),
            kind,
            report,
        })
    }

    /// Waits for `pid` up to the time limit; its wait status, or `None`
    /// after killing it.
    fn wait(&self, pid: libc::pid_t) -> Option<i32> {
        let end = Instant::now() + self.timeout;
        // SAFETY: pidfd_open of our own child.
        let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our child with WNOHANG.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                if pfd >= 0 {
                    // SAFETY: our descriptor.
                    unsafe { libc::close(pfd) };
                }
                return Some(status);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // SAFETY: kill and reap our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                    if pfd >= 0 {
                        libc::close(pfd);
                    }
                }
                return None;
            }
            if pfd >= 0 {
                let mut p = libc::pollfd {
                    fd: pfd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = left.as_millis().min(1000) as i32;
                // SAFETY: one pollfd of ours.
                unsafe { libc::poll(&mut p, 1, ms.max(1)) };
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// The child: run, check, report coverage, exit.
    fn child(&mut self, target: Target, data: &[u8]) -> ! {
        // SAFETY: redirects our stdout/stderr into the shared memory file.
        unsafe {
            let fd = self.out.as_raw_fd();
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
        }
        self.sandbox.enter();
        cov::reset();
        let _ = kern::take_violations();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            targets::run(target, data);
            crate::kern::fault::clear();
            crate::kern::domain::close_all();
            super::world::settle();
            self.kernel.end_checks()
        }));
        let code = match r {
            Ok(problems) if problems.is_empty() => 0,
            Ok(problems) => {
                for p in &problems {
                    eprintln!("end-of-case check: {p}");
                }
                FINDING_EXIT
            }
            Err(_) => HARNESS_PANIC_EXIT,
        };
        if code == 0 {
            let counts = cov::counters_all();
            let map = self.map.slice();
            for m in &self.modules {
                if let Some(c) = counts.get(&m.name) {
                    let n = c.len().min(m.len);
                    map[m.offset..m.offset + n].copy_from_slice(&c[..n]);
                }
            }
        }
        self.sandbox.clean();
        // SAFETY: ends the child at once (no atexit handlers of the server).
        unsafe { libc::_exit(code) }
    }
}

#[cfg(test)]
mod tests {
    use super::signature_of;

    #[test]
    fn signatures_mask_numbers_and_addresses() {
        let a = "noise\nharness: VIOLATION: leak: 176 bytes in 1 allocations at 0x4120ed7e\nmore";
        let b = "harness: VIOLATION: leak: 32 bytes in 2 allocations at 0x7f00aa\n";
        assert_eq!(signature_of(a), signature_of(b));
        assert_eq!(
            signature_of(a),
            "harness: VIOLATION: leak: # bytes in # allocations at #"
        );
        assert_eq!(signature_of("panic: page fault\n"), "panic: page fault");
        assert_ne!(signature_of(a), signature_of("panic: page fault"));
    }
}
