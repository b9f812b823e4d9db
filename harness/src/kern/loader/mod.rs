//! The kernel linker: loads FreeBSD amd64 `.ko` files (ELF relocatable
//! objects) into the low arena the way `link_elf_obj.c` + amd64
//! `elf_machdep.c` do, registers their modules and runs their SYSINITs like
//! `kern_linker.c` / `kern_module.c`, and unloads them again.
//!
//! Load, in FreeBSD's order:
//! 1. header checks (`kldload: <path>: Unsupported file layout`, ...);
//! 2. every `SHF_ALLOC` PROGBITS / NOBITS / X86_64_UNWIND section of non-zero
//!    size is placed in one page-aligned arena block at its alignment (NOBITS
//!    zeroed); COMMON symbols get space after the sections (a harness
//!    extension: FreeBSD modules are built `-fno-common`);
//! 3. undefined `__start_X`/`__stop_X` bind to the module's own section `X`;
//!    relocations against local symbols are applied;
//! 4. dependencies (`MDT_DEPEND`) are checked against the provided-module table
//!    (`kernel` 1500068, the modules of installed subsystems such as
//!    `netgraph` 12, and every `MDT_VERSION` of loaded files); a missing one is looked for on the module path and loaded, else
//!    `KLD <file>: depends on <mod> - not available or version mismatch`;
//! 5. relocations against global symbols: own definitions, then the harness
//!    exports (functions through 16-byte jump stubs in the arena, data
//!    directly), then the dependencies' globals; undefined weak → 0; every
//!    missing name is printed (`link_elf_obj: symbol X undefined`) and the load
//!    fails with ENOENT, as in FreeBSD;
//! 6. `.ctors` run; `MDT_MODULE` entries are registered; `set_sysinit_set`
//!    runs sorted by (subsystem, order) — MOD_LOAD reaches the module's
//!    handler through its `module_register_init` SYSINIT; if every module of
//!    the file failed MOD_LOAD, the file is unloaded (SYSUNINITs included) and
//!    the load fails with ENOEXEC.
//!
//! Unload: MOD_QUIESCE to every module (EOPNOTSUPP/EINVAL count as success;
//! any other error refuses the unload unless forced), MOD_UNLOAD to every
//! module (an error refuses the unload even when forced; the file stays
//! loaded and usable), SYSUNINITs in reverse order, dependencies released,
//! then the image is made inaccessible (`PROT_NONE`) so a later call into
//! unloaded code faults instead of silently working.
//!
//! Files: `mod.rs` types, state and queries; `elf.rs` the object reader;
//! `link.rs` symbol resolution, stubs and relocation; `memory.rs` checked
//! reads of module memory; `load.rs` dependencies and the load sequence;
//! `events.rs` module events; `unload.rs` unloading; `entries.rs` the
//! exported linker functions.
//!
//! Relocation types: R_X86_64_NONE, 64, PC32, PLT32 and 32S; PC32/PLT32 must
//! fit in 32 bits and 32S must sign-extend (the harness checks what the
//! kernel only assumes). Anything else is refused with the kernel's
//! `kldload: unexpected relocation type N`.

mod elf;
mod entries;
mod events;
mod link;
mod load;
mod memory;
mod unload;

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use fbsd_sys::{mod_depend, mod_metadata, mod_version, moduledata, sysinit, thread};

use self::elf::*;
use crate::arena;
use crate::exports::{Exports, Kind};
use crate::kern::printf::kprint;
use crate::kern::thread as kthread;
use crate::kern::{violation, Subsystem};
pub use entries::*;
use events::*;
use link::*;
pub use load::*;
use memory::*;
pub use unload::*;

const ENOENT: i32 = fbsd_sys::ENOENT as i32;
const ENOEXEC: i32 = fbsd_sys::ENOEXEC as i32;
const EEXIST: i32 = fbsd_sys::EEXIST as i32;
const EBUSY: i32 = fbsd_sys::EBUSY as i32;
const EINVAL: i32 = fbsd_sys::EINVAL as i32;
const EPERM: i32 = fbsd_sys::EPERM as i32;
const EOPNOTSUPP: i32 = fbsd_sys::EOPNOTSUPP as i32;
const EIO: i32 = fbsd_sys::EIO as i32;

const MOD_LOAD: c_int = fbsd_sys::MOD_LOAD as c_int;
const MOD_UNLOAD: c_int = fbsd_sys::MOD_UNLOAD as c_int;
const MOD_QUIESCE: c_int = fbsd_sys::MOD_QUIESCE as c_int;

const MDT_DEPEND: c_int = fbsd_sys::MDT_DEPEND as c_int;
const MDT_MODULE: c_int = fbsd_sys::MDT_MODULE as c_int;
const MDT_VERSION: c_int = fbsd_sys::MDT_VERSION as c_int;

/// `LINKER_UNLOAD_NORMAL` / `LINKER_UNLOAD_FORCE`.
pub const LINKER_UNLOAD_NORMAL: i32 = fbsd_sys::LINKER_UNLOAD_NORMAL as i32;
pub const LINKER_UNLOAD_FORCE: i32 = fbsd_sys::LINKER_UNLOAD_FORCE as i32;

/// `__FreeBSD_version` the harness kernel provides as module `kernel`.
pub const KERNEL_VERSION: i32 = 1_500_068;

const PAGE: usize = 4096;
const STUB_SIZE: usize = 16;
/// Trace lines kept for [`take_trace`] (older ones are dropped).
const TRACE_KEEP: usize = 10_000;

// ---- public types -------------------------------------------------------------

/// A failed load: the errno `kldload(2)` would return and the console lines the
/// kernel printed for it.
#[derive(Clone, Debug)]
pub struct LoadError {
    pub errno: i32,
    /// Kernel console lines printed during the load (FreeBSD's diagnostics).
    pub messages: Vec<String>,
    /// Undefined symbols, all of them (the kernel stops at the first).
    pub missing: Vec<String>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (errno {})",
            crate::kern::printf::strerror(self.errno),
            self.errno
        )?;
        for m in &self.messages {
            write!(f, "\n  {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// A loaded section.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub index: usize,
    pub addr: usize,
    pub size: usize,
    pub exec: bool,
}

/// What other harness parts get to know about a linker file.
#[derive(Clone, Debug)]
pub struct FileInfo {
    pub id: i32,
    /// Basename, e.g. `ng_ksocket.ko` (`lf->filename`).
    pub filename: String,
    pub pathname: PathBuf,
    /// Image address range.
    pub base: usize,
    pub size: usize,
    pub sections: Vec<Section>,
}

impl FileInfo {
    /// The address range `[start, stop)` of linker set `name` (section
    /// `set_<name>`), like `linker_file_lookup_set`.
    pub fn linker_set(&self, name: &str) -> Option<(usize, usize)> {
        let want = format!("set_{name}");
        self.sections
            .iter()
            .find(|s| s.name == want)
            .map(|s| (s.addr, s.addr + s.size))
    }

    /// True if `addr` lies in this file's image.
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.base && addr < self.base + self.size
    }
}

/// Points in a file's life at which hooks run (see [`add_hook`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Linked and modules registered; SYSINITs about to run (FreeBSD registers
    /// the file's static sysctls here).
    Linked,
    /// Fully loaded.
    Loaded,
    /// Modules unloaded; SYSUNINITs about to run (sysctls are unregistered here).
    Unloading,
    /// SYSUNINITs done, image released: the place for leak checks.
    Unloaded,
}

type Hook = Arc<dyn Fn(Phase, &FileInfo) + Send + Sync>;

/// A registered module (`struct module`).
#[derive(Clone, Debug)]
pub struct ModuleInfo {
    pub id: i32,
    pub name: String,
    pub file: Option<i32>,
    /// The `module_t` handed to the event handler.
    pub handle: usize,
}

// ---- internal state --------------------------------------------------------------

#[derive(Clone)]
struct SymEntry {
    name: String,
    addr: usize,
    size: usize,
    bind: u8,
    typ: u8,
}

struct LinkerFile {
    id: i32,
    filename: String,
    pathname: PathBuf,
    base: usize,
    size: usize,
    sections: Vec<Section>,
    symbols: Vec<SymEntry>,
    refs: i32,
    userrefs: i32,
    linked: bool,
    deps: Vec<i32>,
    /// Module ids, head first (successful MOD_LOAD moves a module to the head).
    modules: Vec<i32>,
    had_modules: bool,
}

impl LinkerFile {
    fn info(&self) -> FileInfo {
        FileInfo {
            id: self.id,
            filename: self.filename.clone(),
            pathname: self.pathname.clone(),
            base: self.base,
            size: self.size,
            sections: self.sections.clone(),
        }
    }
    fn set_range(&self, name: &str) -> Option<(usize, usize)> {
        let want = format!("set_{name}");
        self.sections
            .iter()
            .find(|s| s.name == want)
            .map(|s| (s.addr, s.addr + s.size))
    }
}

struct Module {
    id: i32,
    name: String,
    handler: usize,
    arg: usize,
    file: Option<i32>,
    handle: usize,
}

struct FoundModule {
    name: String,
    version: i32,
    container: Option<i32>,
}

struct UnloadedFile {
    filename: String,
    base: usize,
    size: usize,
    sections: Vec<Section>,
    symbols: Vec<SymEntry>,
}

struct State {
    exports: Exports,
    files: Vec<LinkerFile>,
    unloaded: Vec<UnloadedFile>,
    modules: Vec<Module>,
    found: Vec<FoundModule>,
    next_file_id: i32,
    next_mod_id: i32,
    stubs: HashMap<String, usize>,
    stub_targets: HashMap<usize, (String, usize)>,
    module_path: Vec<PathBuf>,
    trace: bool,
    trace_log: Vec<String>,
    /// Console lines of the load in progress (outermost `kldload`).
    messages: Vec<String>,
    missing: Vec<String>,
    depth: u32,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());
static BOOT: Once = Once::new();

fn st() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut g = st();
    let s = g
        .as_mut()
        .expect("harness: kern::loader::init() was not called");
    f(s)
}

fn default_module_path() -> Vec<PathBuf> {
    std::env::var("NGHARNESS_MODULE_PATH")
        .map(|v| {
            v.split([':', ';'])
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Installs the export table the loader links modules against. Must be
/// called once, after every part has registered its exports.
pub fn init(exports: Exports) {
    let mut g = st();
    assert!(g.is_none(), "harness: kern::loader::init() called twice");
    *g = Some(State {
        exports,
        files: Vec::new(),
        unloaded: Vec::new(),
        modules: Vec::new(),
        found: vec![FoundModule {
            name: "kernel".into(),
            version: KERNEL_VERSION,
            container: None,
        }],
        next_file_id: 2, // file 1 is the kernel itself
        next_mod_id: 1,
        stubs: HashMap::new(),
        stub_targets: HashMap::new(),
        module_path: default_module_path(),
        trace: false,
        trace_log: Vec::new(),
        messages: Vec::new(),
        missing: Vec::new(),
        depth: 0,
    });
}

/// Boots the harness kernel for this process (first call): per-CPU data and
/// thread0, the export table of every kernel service and installed subsystem
/// (`kern::register_all`) and the loader. Every call also installs the GS
/// base on the calling OS thread.
pub fn boot() {
    kthread::init();
    BOOT.call_once(|| {
        crate::kern::trap::install();
        // Fault-plan `site=` rules and caller descriptions name module
        // functions (`ng_socket.ko:fn+0x1c`).
        crate::kern::fault::set_site_resolver(symbolize);
        crate::kern::with_subsystems(|subs| {
            let mut ex = Exports::new();
            crate::kern::register_all_with(&mut ex, subs);
            init(ex);
            for s in subs {
                provide_subsystem_modules(*s);
            }
        })
    });
}

/// Adds the symbols and modules of a subsystem installed after [`init`].
pub(crate) fn add_subsystem(s: &'static dyn Subsystem) {
    let mut ex = Exports::new();
    s.register(&mut ex);
    with(|st| st.exports.merge(ex));
    provide_subsystem_modules(s);
}

fn provide_subsystem_modules(s: &'static dyn Subsystem) {
    for &(name, version) in s.modules() {
        provide_module(name, version);
    }
}

/// True once [`init`] has run.
pub fn is_initialized() -> bool {
    st().is_some()
}

/// Declares a module the harness kernel itself provides (`MODULE_VERSION`),
/// for dependency checks. `kernel` is provided from the start, the modules of
/// installed subsystems (`netgraph`) as they are installed.
pub fn provide_module(name: &str, version: i32) {
    with(|s| {
        if !s
            .found
            .iter()
            .any(|m| m.name == name && m.version == version)
        {
            s.found.push(FoundModule {
                name: name.into(),
                version,
                container: None,
            });
        }
    });
}

/// Sets the module search path (FreeBSD's `kern.module_path`), used to resolve
/// `kldload` names without a `/` and missing dependencies. The initial value
/// comes from `NGHARNESS_MODULE_PATH` (`:` or `;` separated).
pub fn set_module_path(dirs: Vec<PathBuf>) {
    with(|s| s.module_path = dirs);
}

/// The module search path.
pub fn module_path() -> Vec<PathBuf> {
    with(|s| s.module_path.clone())
}

/// Turns the step trace (`kld: ...` lines on stderr) on or off.
pub fn set_trace(on: bool) {
    with(|s| s.trace = on);
}

/// Returns and clears the step trace recorded so far (recorded even when
/// printing is off).
pub fn take_trace() -> Vec<String> {
    with(|s| std::mem::take(&mut s.trace_log))
}

/// Registers a hook run at each [`Phase`] of every file (e.g. sysctl
/// registration, leak checks). Hooks run without loader locks held.
pub fn add_hook(f: impl Fn(Phase, &FileInfo) + Send + Sync + 'static) {
    HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::new(f));
}

fn run_hooks(phase: Phase, info: &FileInfo) {
    let hooks: Vec<Hook> = HOOKS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for h in hooks {
        h(phase, info);
    }
}

fn trace(msg: String) {
    let on = with(|s| {
        if s.trace_log.len() >= TRACE_KEEP {
            s.trace_log.drain(..TRACE_KEEP / 2);
        }
        s.trace_log.push(msg.clone());
        s.trace
    });
    if on {
        eprintln!("kld: {msg}");
    }
}

/// A kernel console message that is also part of the current load's report.
fn kmsg(msg: String) {
    kprint(&msg);
    with(|s| s.messages.push(msg));
}

// ---- queries ----------------------------------------------------------------------

/// Every loaded file.
pub fn files() -> Vec<FileInfo> {
    with(|s| {
        s.files
            .iter()
            .filter(|f| f.linked)
            .map(LinkerFile::info)
            .collect()
    })
}

/// A loaded file by id.
pub fn file_info(id: i32) -> Option<FileInfo> {
    with(|s| s.files.iter().find(|f| f.id == id).map(LinkerFile::info))
}

/// The id of a loaded file by name (`x.ko` or `x`), like `kldfind(2)`.
pub fn file_id(name: &str) -> Option<i32> {
    let base = basename(name).to_string();
    with(|s| find_file_by_name(s, &base).map(|f| f.id))
}

/// Every registered module.
pub fn modules() -> Vec<ModuleInfo> {
    with(|s| {
        s.modules
            .iter()
            .map(|m| ModuleInfo {
                id: m.id,
                name: m.name.clone(),
                file: m.file,
                handle: m.handle,
            })
            .collect()
    })
}

/// True if a module of that name is registered (`modfind(2)`).
pub fn module_loaded(name: &str) -> bool {
    with(|s| s.modules.iter().any(|m| m.name == name))
}

/// Address of a symbol defined in file `id` (globals first, then locals),
/// so tests can reach module internals.
pub fn symbol(id: i32, name: &str) -> Option<usize> {
    with(|s| {
        let f = s.files.iter().find(|f| f.id == id)?;
        f.symbols
            .iter()
            .find(|e| e.name == name && e.bind != STB_LOCAL)
            .or_else(|| f.symbols.iter().find(|e| e.name == name))
            .map(|e| e.addr)
    })
}

/// Address of a symbol defined in any loaded file (first file wins).
pub fn lookup_symbol(name: &str) -> Option<usize> {
    let ids: Vec<i32> = with(|s| s.files.iter().map(|f| f.id).collect());
    ids.into_iter().find_map(|id| symbol(id, name))
}

/// The host function a jump stub leads to, if `addr` is a stub.
pub fn stub_target(addr: usize) -> Option<usize> {
    with(|s| s.stub_targets.get(&addr).map(|t| t.1))
}

/// The jump stub the loader made for host function `name`, if any.
pub fn stub_of(name: &str) -> Option<usize> {
    with(|s| s.stubs.get(name).copied())
}

/// `addr` with a jump stub replaced by its host target (for comparing a
/// function pointer a module stored with a host function).
pub fn canonical_fn(addr: usize) -> usize {
    stub_target(addr).unwrap_or(addr)
}

fn symbolize_in(
    syms: &[SymEntry],
    sections: &[Section],
    base: usize,
    addr: usize,
) -> (String, usize) {
    let Some(sec) = sections
        .iter()
        .find(|s| addr >= s.addr && addr < s.addr + s.size)
    else {
        return (String::from("<image>"), addr - base);
    };
    let mut best: Option<&SymEntry> = None;
    for e in syms {
        if e.typ == STT_SECTION || e.name.is_empty() || e.addr > addr || e.addr < sec.addr {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => e.addr > b.addr || (e.addr == b.addr && e.typ == STT_FUNC),
        };
        if better {
            best = Some(e);
        }
    }
    match best {
        // Inside a symbol (or a symbol of unknown size).
        Some(e) if e.size == 0 || addr - e.addr < e.size => (e.name.clone(), addr - e.addr),
        // Between symbols (e.g. a string literal): section-relative.
        _ => (sec.name.clone(), addr - sec.addr),
    }
}

/// Describes a code or data address for diagnostics:
/// `file.ko:symbol+0x1c`, `stub for printf`, or `unloaded file.ko:symbol+0x8`.
pub fn symbolize(addr: usize) -> Option<String> {
    with(|s| symbolize_state(s, addr))
}

fn symbolize_state(s: &State, addr: usize) -> Option<String> {
    if let Some((name, _)) = s.stub_targets.get(&addr) {
        return Some(format!("stub for {name}"));
    }
    for f in &s.files {
        if addr >= f.base && addr < f.base + f.size {
            let (sym, off) = symbolize_in(&f.symbols, &f.sections, f.base, addr);
            return Some(format!("{}:{sym}+{off:#x}", f.filename));
        }
    }
    for f in s.unloaded.iter().rev() {
        if addr >= f.base && addr < f.base + f.size {
            let (sym, off) = symbolize_in(&f.symbols, &f.sections, f.base, addr);
            return Some(format!("unloaded {}:{sym}+{off:#x}", f.filename));
        }
    }
    s.exports.name_of(addr).map(|n| format!("kernel:{n}"))
}

/// How long the `try_` queries wait for the loader's lock (they run in the
/// trap handler, where the lock may be held by the faulting thread itself).
const TRY_LOCK_SPINS: u32 = 2000;

/// Runs `f` on the loader state if its lock can be had within a short wait.
fn try_with<R>(f: impl FnOnce(&State) -> R) -> Option<R> {
    for _ in 0..TRY_LOCK_SPINS {
        let g = match STATE.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        if let Some(g) = g {
            return g.as_ref().map(f);
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    None
}

/// [`symbolize`] for the trap handler: `None` if the loader's lock cannot
/// be had quickly (see [`crate::kern::trap`]).
pub fn try_symbolize(addr: usize) -> Option<String> {
    try_with(|s| symbolize_state(s, addr)).flatten()
}

/// True if `addr` lies in the code of a loaded or unloaded module image or
/// in a jump stub; `None` if the loader's lock cannot be had quickly.
pub fn try_is_module_text(addr: usize) -> Option<bool> {
    try_with(|s| {
        let exec = |secs: &[Section]| {
            secs.iter()
                .any(|x| x.exec && addr >= x.addr && addr < x.addr + x.size)
        };
        s.files.iter().any(|f| exec(&f.sections))
            || s.unloaded.iter().any(|f| exec(&f.sections))
            || s.stubs.values().any(|&a| addr >= a && addr < a + STUB_SIZE)
    })
}

fn fmt_ptr(p: usize) -> String {
    // FreeBSD's "%p": "0x..." except for NULL, which prints "0".
    if p == 0 {
        "0".into()
    } else {
        format!("{p:#x}")
    }
}

fn describe(addr: usize) -> String {
    match symbolize(addr) {
        Some(s) => format!("{} <{s}>", fmt_ptr(addr)),
        None => fmt_ptr(addr),
    }
}
