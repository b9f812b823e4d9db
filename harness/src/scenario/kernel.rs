//! The kernel services the runner needs besides netgraph clients: module
//! loading, credentials, running the event loop, and the end-of-scenario
//! checks. [`HarnessKernel`] is the harness kernel (`kern::*`,
//! `netgraph::core`); [`FakeKernel`] goes with the fake backend.

use std::path::{Path, PathBuf};

use super::errno::Errno;
use super::fake::FakeNet;
use super::parse::Cred;

/// The uid of `as user`.
pub const USER_UID: u32 = 1001;

/// Kernel operations of the runner.
pub trait Kernel {
    /// Short description for reports.
    fn describe(&self) -> String;
    /// `kldload(2)` of a module by name (`ng_echo`) or file.
    fn kldload(&mut self, module: &str) -> Result<(), Errno>;
    /// `kldfind(2)`: is a file of this name loaded?
    fn kldfind(&self, module: &str) -> bool;
    /// `kldunload(2)` of a loaded file by name.
    fn kldunload(&mut self, module: &str) -> Result<(), Errno>;
    /// Is the module (`ng_socket`, `ng_ksocket`, `ng_echo`...) available?
    fn module_loaded(&self, module: &str) -> bool;
    /// `sysctl(3)` on an integer OID: reads it and, with `value`, writes
    /// it. Returns the old value; ENOENT for an unknown name, EPERM for a
    /// write by a non-root user, EROFS for a read-only OID (sysctl(8)
    /// reports that one itself, before any write).
    fn sysctl(&mut self, name: &str, value: Option<i64>) -> Result<i64, Errno>;
    /// Credentials of the "user process" making the following calls.
    fn set_cred(&mut self, cred: Cred);
    /// The current credentials.
    fn cred(&self) -> Cred;
    /// Runs one unit of pending kernel work; true if anything ran.
    fn pump(&mut self) -> bool;
    /// Lets `ms` milliseconds of kernel time pass (timers fire).
    fn advance(&mut self, ms: u64);
    /// Contract violations recorded since the last call.
    fn take_violations(&mut self) -> Vec<String>;
    /// The end-of-scenario checks, after the runner closed every socket and
    /// shut every node down: quiescence, module unloads, leaks, locks.
    fn end_checks(&mut self) -> Vec<String>;
}

// ---------------------------------------------------------------------------
// The harness kernel

/// Modules built into the harness (always loaded, never unloadable here).
pub const BUILTIN_MODULES: &[&str] = &["netgraph", "ng_echo", "ng_hole"];

fn module_name(s: &str) -> &str {
    let b = s.rsplit('/').next().unwrap_or(s);
    b.strip_suffix(".ko").unwrap_or(b)
}

/// The harness kernel of this process.
pub struct HarnessKernel {
    /// (file id, module name) of the `--ko` files, in load order.
    loaded: Vec<(i32, String)>,
    cred: Cred,
}

impl HarnessKernel {
    /// Boots the harness kernel and loads `kos` in order (their directories
    /// join the module path, so autoloads and `kldload NAME` find them).
    pub fn boot(kos: &[PathBuf]) -> Result<HarnessKernel, String> {
        use crate::kern::{loader, printf, thread};
        crate::netgraph::boot();
        printf::set_console_echo(true);
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
        let mut k = HarnessKernel {
            loaded: Vec::new(),
            cred: Cred::Root,
        };
        k.set_cred(Cred::Root);
        for f in kos {
            match loader::load(f) {
                Ok(id) => k
                    .loaded
                    .push((id, module_name(&f.display().to_string()).to_string())),
                Err(e) => {
                    let mut m = format!(
                        "kldload: can't load {}: {}",
                        f.display(),
                        super::errno::strerror(e.errno)
                    );
                    if !e.missing.is_empty() {
                        m.push_str(&format!(" (undefined symbols: {})", e.missing.join(" ")));
                    }
                    return Err(m);
                }
            }
        }
        let _ = thread::curthread();
        Ok(k)
    }

    /// Names of the `--ko` modules loaded at boot.
    pub fn ko_modules(&self) -> Vec<String> {
        self.loaded.iter().map(|(_, n)| n.clone()).collect()
    }
}

impl Kernel for HarnessKernel {
    fn describe(&self) -> String {
        "harness kernel".into()
    }

    fn kldload(&mut self, module: &str) -> Result<(), Errno> {
        if self.cred != Cred::Root {
            return Err(fbsd_sys::EPERM as Errno);
        }
        if BUILTIN_MODULES.contains(&module_name(module)) {
            // TODO(integrate): echo and hole are built into the harness core
            // and cannot be unloaded or loaded again; report "already loaded".
            return Err(fbsd_sys::EEXIST as Errno);
        }
        crate::kern::loader::kldload(module)
            .map(|_| ())
            .map_err(|e| e.errno)
    }

    fn kldfind(&self, module: &str) -> bool {
        BUILTIN_MODULES.contains(&module_name(module))
            || crate::kern::loader::file_id(module).is_some()
    }

    fn kldunload(&mut self, module: &str) -> Result<(), Errno> {
        if self.cred != Cred::Root {
            return Err(fbsd_sys::EPERM as Errno);
        }
        if BUILTIN_MODULES.contains(&module_name(module)) {
            // TODO(integrate): built-in modules cannot be unloaded.
            return Err(fbsd_sys::EBUSY as Errno);
        }
        let id = crate::kern::loader::file_id(module).ok_or(fbsd_sys::ENOENT as Errno)?;
        crate::kern::loader::kldunload(id, crate::kern::loader::LINKER_UNLOAD_NORMAL)?;
        self.loaded.retain(|(i, _)| *i != id);
        Ok(())
    }

    fn module_loaded(&self, module: &str) -> bool {
        BUILTIN_MODULES.contains(&module) || crate::kern::loader::module_loaded(module)
    }

    fn sysctl(&mut self, name: &str, value: Option<i64>) -> Result<i64, Errno> {
        use crate::kern::sysctl;
        let old = sysctl::get(name).ok_or(fbsd_sys::ENOENT as Errno)?;
        if let Some(v) = value {
            if !sysctl::writable(name) {
                return Err(fbsd_sys::EROFS as Errno);
            }
            if self.cred != Cred::Root {
                return Err(fbsd_sys::EPERM as Errno);
            }
            if !sysctl::set(name, v) {
                return Err(fbsd_sys::EINVAL as Errno);
            }
        }
        Ok(old)
    }

    fn set_cred(&mut self, cred: Cred) {
        use crate::kern::thread;
        let c = match cred {
            Cred::Root => thread::Cred::Root,
            Cred::User => thread::Cred::User(USER_UID),
        };
        thread::set_curthread(thread::new_thread(c));
        self.cred = cred;
    }

    fn cred(&self) -> Cred {
        self.cred
    }

    fn pump(&mut self) -> bool {
        crate::kern::sched::run_once()
    }

    fn advance(&mut self, ms: u64) {
        let ticks = ms * crate::kern::sched::HZ as u64 / 1000;
        crate::kern::sched::advance(ticks);
    }

    fn take_violations(&mut self) -> Vec<String> {
        crate::kern::take_violations()
    }

    fn end_checks(&mut self) -> Vec<String> {
        use crate::kern;
        let mut problems = Vec::new();
        kern::sched::run_until_idle();
        // Recorded as violations by the checks themselves.
        let _ = crate::netgraph::core::check::check_quiescent();
        // Open sockets, socket-buffer mbufs left behind.
        let _ = kern::domain::check_all();
        // Every file loaded in this process (the --ko files, `kldload`s and
        // ng_socket's MKPEER autoloads), newest first.
        self.loaded.clear();
        let mut files: Vec<(i32, String)> = kern::loader::files()
            .into_iter()
            .map(|f| (f.id, module_name(&f.filename).to_string()))
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        // Ours unloads (and is checked to) only when allowed; FreeBSD's has
        // no such sysctl and always refuses.
        let pinned = !kern::sysctl::set("net.graph.socket.allow_unload", 1);
        for (id, name) in files {
            match kern::loader::kldunload(id, kern::loader::LINKER_UNLOAD_NORMAL) {
                Ok(()) => {}
                // docs/socket.md §1: FreeBSD's ng_socket always answers EBUSY
                // to MOD_UNLOAD; ours does unless allowed.
                Err(e) if e == fbsd_sys::EBUSY as Errno && name == "ng_socket" && pinned => {}
                Err(e) => problems.push(format!(
                    "kldunload {name} at the end of the scenario: {}",
                    super::errno::strerror(e)
                )),
            }
        }
        kern::sched::run_until_idle();
        let _ = kern::malloc::check_all();
        let _ = kern::mbuf::check_all();
        kern::lock::check_none_held("the end of the scenario");
        kern::thread::check_not_critical("the end of the scenario");
        problems.extend(kern::take_violations());
        problems
    }
}

// ---------------------------------------------------------------------------
// The fake kernel

/// The kernel of the fake backend.
pub struct FakeKernel {
    net: FakeNet,
}

impl FakeKernel {
    /// The kernel side of `net`.
    pub fn new(net: FakeNet) -> FakeKernel {
        FakeKernel { net }
    }
}

impl Kernel for FakeKernel {
    fn describe(&self) -> String {
        "fake kernel".into()
    }

    fn kldload(&mut self, module: &str) -> Result<(), Errno> {
        if self.net.0.borrow().user {
            return Err(fbsd_sys::EPERM as Errno);
        }
        match module_name(module) {
            "netgraph" | "ng_echo" | "ng_hole" | "ng_socket" => Err(fbsd_sys::EEXIST as Errno),
            _ => Err(fbsd_sys::ENOENT as Errno),
        }
    }

    fn kldfind(&self, module: &str) -> bool {
        matches!(
            module_name(module),
            "netgraph" | "ng_echo" | "ng_hole" | "ng_socket"
        )
    }

    fn kldunload(&mut self, module: &str) -> Result<(), Errno> {
        if !self.kldfind(module) {
            return Err(fbsd_sys::ENOENT as Errno);
        }
        Err(fbsd_sys::EBUSY as Errno)
    }

    fn module_loaded(&self, module: &str) -> bool {
        self.kldfind(module)
    }

    fn sysctl(&mut self, _name: &str, _value: Option<i64>) -> Result<i64, Errno> {
        Err(fbsd_sys::ENOENT as Errno)
    }

    fn set_cred(&mut self, cred: Cred) {
        self.net.0.borrow_mut().user = cred == Cred::User;
    }

    fn cred(&self) -> Cred {
        if self.net.0.borrow().user {
            Cred::User
        } else {
            Cred::Root
        }
    }

    fn pump(&mut self) -> bool {
        false
    }

    fn advance(&mut self, _ms: u64) {}

    fn take_violations(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn end_checks(&mut self) -> Vec<String> {
        match self.net.node_count() {
            0 => Vec::new(),
            n => vec![format!("{n} node(s) left after the teardown")],
        }
    }
}
