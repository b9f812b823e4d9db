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
//!    (`kernel` 1500068, `netgraph` 12, and every `MDT_VERSION` of loaded
//!    files); a missing one is looked for on the module path and loaded, else
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
//! Relocation types: R_X86_64_NONE, 64, PC32, PLT32 and 32S; PC32/PLT32 must
//! fit in 32 bits and 32S must sign-extend (the harness checks what the
//! kernel only assumes). Anything else is refused with the kernel's
//! `kldload: unexpected relocation type N`.

mod elf;

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
    with(|s| {
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
        if let Some(n) = s.exports.name_of(addr) {
            return Some(format!("kernel:{n}"));
        }
        None
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

// ---- name resolution -------------------------------------------------------------

fn basename(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) if i + 1 < p.len() => &p[i + 1..],
        _ => p,
    }
}

fn find_file_by_name<'a>(s: &'a State, filename: &str) -> Option<&'a LinkerFile> {
    let ko = format!("{filename}.ko");
    s.files
        .iter()
        .find(|f| f.filename == ko || f.filename == filename)
}

/// `modlist_lookup2`: the preferred version, else the highest in range.
fn modlist_lookup2(s: &State, name: &str, ver: Option<(i32, i32, i32)>) -> Option<usize> {
    let Some((min, pref, max)) = ver else {
        return s.found.iter().position(|m| m.name == name);
    };
    let mut best: Option<usize> = None;
    for (i, m) in s.found.iter().enumerate() {
        if m.name != name {
            continue;
        }
        if m.version == pref {
            return Some(i);
        }
        if m.version >= min
            && m.version <= max
            && best.is_none_or(|b| m.version > s.found[b].version)
        {
            best = Some(i);
        }
    }
    best
}

fn lookup_file_in(dir: &Path, name: &str) -> Option<PathBuf> {
    for ext in ["", ".ko"] {
        let p = dir.join(format!("{name}{ext}"));
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

fn search_kld(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = module_path();
    path.iter().find_map(|d| lookup_file_in(d, name))
}

fn search_module(modname: &str) -> Option<PathBuf> {
    // No linker.hints: the "kldname[.ko]" fallback of linker_hints_lookup.
    let path = module_path();
    path.iter().find_map(|d| lookup_file_in(d, modname))
}

// ---- stubs --------------------------------------------------------------------------

fn stub_for(s: &mut State, name: &str, target: usize) -> (usize, bool) {
    if let Some(&a) = s.stubs.get(name) {
        return (a, false);
    }
    let p = arena::alloc(STUB_SIZE, 16);
    let mut code = [0xccu8; STUB_SIZE];
    // jmp *0(%rip) followed by the 8-byte absolute target.
    code[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    code[6..14].copy_from_slice(&(target as u64).to_le_bytes());
    // SAFETY: `p` is a fresh, writable and executable 16-byte arena block.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p, STUB_SIZE) };
    let a = p as usize;
    s.stubs.insert(name.to_string(), a);
    s.stub_targets.insert(a, (name.to_string(), target));
    (a, true)
}

// ---- linking (link_elf_load_file) -----------------------------------------------

#[derive(Default)]
struct RelocStats {
    counts: [usize; 5], // NONE 64 PC32 PLT32 32S
    new_stubs: usize,
}

/// Resolution state of one symbol-table entry.
#[derive(Clone, Copy, Debug)]
enum Res {
    Addr(usize),
    /// Defined in a section that was not loaded.
    Unloaded,
    /// Undefined; to be looked up.
    Undef,
}

struct Linking {
    obj: ElfObj,
    path: String,
    id: i32,
    base: usize,
    /// Section index → address, for loaded sections.
    sec_addr: HashMap<usize, usize>,
    sec_name: HashMap<usize, String>,
    sec_size: HashMap<usize, usize>,
    syms: Vec<Sym>,
    strndx: usize,
    res: Vec<Res>,
    relas: Vec<(usize, usize)>, // (rela section, target section)
}

impl Linking {
    fn sym_name(&self, i: usize) -> String {
        let sym = &self.syms[i];
        if sym.typ() == STT_SECTION {
            if let Some(n) = self.sec_name.get(&(sym.shndx as usize)) {
                return n.clone();
            }
        }
        self.obj
            .str_at(self.strndx, sym.name)
            .unwrap_or("")
            .to_string()
    }
}

fn elf_fail(path: &str, e: ElfError) -> i32 {
    match e {
        ElfError::NotElf => ENOEXEC,
        ElfError::Layout => {
            kmsg(format!("kldload: {path}: Unsupported file layout"));
            ENOEXEC
        }
        ElfError::Version => {
            kmsg(format!("kldload: {path}: Unsupported file version"));
            ENOEXEC
        }
        ElfError::NotRelocatable => {
            kmsg(format!("linker_load_file: {path} - unsupported file type"));
            ENOEXEC
        }
        ElfError::Machine => {
            kmsg(format!("kldload: {path}: Unsupported machine"));
            ENOEXEC
        }
        ElfError::Malformed(m) => {
            kmsg(format!("kldload: {path}: {m}"));
            ENOEXEC
        }
    }
}

/// Parses, lays out and places the file; returns the linking context and the
/// new (not yet linked) `LinkerFile`, already entered in the file list.
fn place(path: &Path) -> Result<Linking, i32> {
    let spath = path.display().to_string();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ENOENT),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(EPERM),
        Err(_) => return Err(EIO),
    };
    let obj = ElfObj::parse(data).map_err(|e| elf_fail(&spath, e))?;
    let n = obj.shdrs.len();

    // Scan the section headers like link_elf_load_file.
    let mut nprog = 0;
    let mut nsym = 0;
    let mut symtab = usize::MAX;
    let mut symstr = usize::MAX;
    let mut relas = Vec::new();
    for (i, sh) in obj.shdrs.iter().enumerate() {
        if sh.size == 0 {
            continue;
        }
        match sh.sh_type {
            SHT_PROGBITS | SHT_NOBITS | SHT_X86_64_UNWIND => {
                if sh.flags & SHF_ALLOC != 0 {
                    nprog += 1;
                }
            }
            SHT_SYMTAB => {
                nsym += 1;
                symtab = i;
                symstr = sh.link as usize;
            }
            SHT_REL | SHT_RELA => {
                let target = sh.info as usize;
                if target >= n {
                    kmsg(format!(
                        "kldload: {spath}: relocation section {i} targets bad section {target}"
                    ));
                    return Err(ENOEXEC);
                }
                if obj.shdrs[target].flags & SHF_ALLOC == 0 {
                    continue; // debug info and the like
                }
                if sh.sh_type == SHT_REL {
                    kmsg(format!(
                        "kldload: {spath}: SHT_REL relocations are not supported by the harness \
                         (amd64 objects use RELA)"
                    ));
                    return Err(ENOEXEC);
                }
                relas.push((i, target));
            }
            _ => {}
        }
    }
    if nprog == 0 {
        kmsg(format!("kldload: {spath}: file has no contents"));
        return Err(ENOEXEC);
    }
    if nsym != 1 {
        kmsg(format!(
            "kldload: {spath}: file must have exactly one symbol table"
        ));
        return Err(ENOEXEC);
    }
    if symstr >= n || obj.shdrs[symstr].sh_type != SHT_STRTAB {
        kmsg(format!("kldload: {spath}: file has invalid symbol strings"));
        return Err(ENOEXEC);
    }
    let syms = obj.symbols(symtab).map_err(|e| elf_fail(&spath, e))?;

    // Layout: loaded sections in header order, each at its alignment.
    let mut layout: Vec<(usize, usize)> = Vec::new(); // (section, offset)
    let mut off = 0usize;
    for (i, sh) in obj.shdrs.iter().enumerate() {
        if sh.size == 0 || sh.flags & SHF_ALLOC == 0 {
            continue;
        }
        if !matches!(sh.sh_type, SHT_PROGBITS | SHT_NOBITS | SHT_X86_64_UNWIND) {
            continue;
        }
        let align = (sh.addralign as usize).max(1);
        if !align.is_power_of_two() {
            kmsg(format!(
                "kldload: {spath}: section {i} has alignment {align}"
            ));
            return Err(ENOEXEC);
        }
        off = (off + align - 1) & !(align - 1);
        layout.push((i, off));
        off += sh.size as usize;
    }
    // COMMON symbols after the sections.
    let mut commons: Vec<(usize, usize)> = Vec::new(); // (symbol, offset)
    for (k, sym) in syms.iter().enumerate() {
        if sym.shndx == SHN_COMMON {
            let align = (sym.value as usize).max(1).next_power_of_two();
            off = (off + align - 1) & !(align - 1);
            commons.push((k, off));
            off += (sym.size as usize).max(1);
        }
    }
    let size = off.max(1).div_ceil(PAGE) * PAGE;
    let base = arena::alloc(size, PAGE) as usize;

    let mut sec_addr = HashMap::new();
    let mut sec_name = HashMap::new();
    let mut sec_size = HashMap::new();
    let mut sections = Vec::new();
    for &(i, o) in &layout {
        let sh = obj.shdrs[i];
        let addr = base + o;
        if sh.sh_type != SHT_NOBITS {
            let bytes = obj.section_bytes(i).map_err(|e| elf_fail(&spath, e))?;
            // SAFETY: `addr..addr+size` lies inside the fresh arena block
            // allocated above for this image (the layout computed its size).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        } else {
            // SAFETY: as above; NOBITS is zeroed.
            unsafe { std::ptr::write_bytes(addr as *mut u8, 0, sh.size as usize) };
        }
        let name = obj.section_name(i).map(str::to_string).unwrap_or_else(|| {
            match sh.sh_type {
                SHT_PROGBITS => "<<PROGBITS>>",
                SHT_X86_64_UNWIND => "<<UNWIND>>",
                _ => "<<NOBITS>>",
            }
            .to_string()
        });
        sec_addr.insert(i, addr);
        sec_name.insert(i, name.clone());
        sec_size.insert(i, sh.size as usize);
        sections.push(Section {
            name,
            index: i,
            addr,
            size: sh.size as usize,
            exec: sh.flags & SHF_EXECINSTR != 0,
        });
    }

    // Symbol values.
    let mut res = vec![Res::Undef; syms.len()];
    for (k, sym) in syms.iter().enumerate() {
        res[k] = match sym.shndx {
            SHN_UNDEF => Res::Undef,
            SHN_ABS => Res::Addr(sym.value as usize),
            SHN_COMMON => Res::Unloaded, // filled below
            SHN_XINDEX => Res::Unloaded,
            x if x >= SHN_LORESERVE => Res::Unloaded,
            x => match sec_addr.get(&(x as usize)) {
                Some(a) => Res::Addr(a + sym.value as usize),
                None => Res::Unloaded,
            },
        };
    }
    for &(k, o) in &commons {
        res[k] = Res::Addr(base + o);
    }
    let mut link = Linking {
        obj,
        path: spath,
        id: 0,
        base,
        sec_addr,
        sec_name,
        sec_size,
        syms,
        strndx: symstr,
        res,
        relas,
    };
    // link_elf_fix_link_set: __start_X / __stop_X of the module's own section X.
    for k in 1..link.syms.len() {
        if link.syms[k].shndx != SHN_UNDEF {
            continue;
        }
        let name = link.sym_name(k);
        let (start, set) = if let Some(x) = name.strip_prefix("__start_") {
            (true, x)
        } else if let Some(x) = name.strip_prefix("__stop_") {
            (false, x)
        } else {
            continue;
        };
        if let Some(sec) = sections.iter().find(|s| s.name == set) {
            link.res[k] = Res::Addr(if start { sec.addr } else { sec.addr + sec.size });
        }
    }

    // Defined, named symbols for lookups and diagnostics.
    let mut symbols = Vec::new();
    for (k, sym) in link.syms.iter().enumerate() {
        if sym.shndx == SHN_UNDEF || sym.typ() == STT_SECTION {
            continue;
        }
        if let Res::Addr(a) = link.res[k] {
            let name = link.sym_name(k);
            if !name.is_empty() {
                symbols.push(SymEntry {
                    name,
                    addr: a,
                    size: sym.size as usize,
                    bind: sym.bind(),
                    typ: sym.typ(),
                });
            }
        }
    }

    let filename = basename(&link.path).to_string();
    trace(format!(
        "placing {filename} at {base:#x} ({size} bytes, {} sections)",
        sections.len()
    ));
    let id = with(|s| {
        let id = s.next_file_id;
        s.next_file_id += 1;
        s.files.push(LinkerFile {
            id,
            filename,
            pathname: path.to_path_buf(),
            base,
            size,
            sections,
            symbols,
            refs: 1,
            userrefs: 0,
            linked: false,
            deps: Vec::new(),
            modules: Vec::new(),
            had_modules: false,
        });
        id
    });
    link.id = id;
    Ok(link)
}

enum RelocError {
    /// Unsupported type (message already printed).
    BadType,
    /// Symbol could not be resolved (global) — name.
    Undefined,
    /// Harness-detected placement problem (message printed).
    Range,
}

/// Applies the relocations whose symbol is local (`pass_local`) or global.
fn relocate(link: &mut Linking, pass_local: bool, stats: &mut RelocStats) -> Result<(), i32> {
    let mut errno = 0;
    let mut missing: Vec<String> = Vec::new();
    let relas = link.relas.clone();
    for (rsec, target) in relas {
        let Some(&tbase) = link.sec_addr.get(&target) else {
            kmsg(format!("kldload: {}: lost base for relatab", link.path));
            return Err(ENOEXEC);
        };
        let tsize = link.sec_size[&target];
        let entries = link.obj.relas(rsec).map_err(|e| elf_fail(&link.path, e))?;
        for r in entries {
            let k = r.sym as usize;
            if k >= link.syms.len() {
                continue; // the kernel skips bogus indexes
            }
            let local = link.syms[k].bind() == STB_LOCAL;
            if local != pass_local {
                continue;
            }
            match apply_one(link, &r, k, tbase, tsize, target, stats) {
                Ok(()) => {}
                Err(RelocError::BadType) => {
                    if local {
                        // FreeBSD only prints and leaves the field unrelocated;
                        // the harness refuses such a module.
                        errno = if errno == 0 { ENOEXEC } else { errno };
                    } else {
                        kmsg(format!(
                            "link_elf_obj: symbol {} undefined",
                            link.sym_name(k)
                        ));
                        errno = ENOENT;
                    }
                }
                Err(RelocError::Undefined) => {
                    let name = link.sym_name(k);
                    if !missing.contains(&name) {
                        kmsg(format!("link_elf_obj: symbol {name} undefined"));
                        missing.push(name);
                    }
                    errno = ENOENT;
                }
                Err(RelocError::Range) => {
                    if errno == 0 {
                        errno = ENOEXEC;
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        with(|s| s.missing.extend(missing));
    }
    if errno != 0 {
        Err(errno)
    } else {
        Ok(())
    }
}

/// Resolves symbol `k` for a relocation (cached for globals).
fn resolve(link: &mut Linking, k: usize, stats: &mut RelocStats) -> Option<usize> {
    match link.res[k] {
        Res::Addr(a) => return Some(a),
        Res::Unloaded => return None,
        Res::Undef => {}
    }
    let sym = link.syms[k];
    if sym.bind() == STB_LOCAL {
        return None; // local, but undefined
    }
    let name = link.sym_name(k);
    if name.is_empty() {
        return None;
    }
    let id = link.id;
    let found = with(|s| {
        if let Some(e) = s.exports.get(&name) {
            return Some(match e.kind {
                Kind::Data => e.addr,
                Kind::Func => {
                    let (a, new) = stub_for(s, &name, e.addr);
                    if new {
                        stats.new_stubs += 1;
                    }
                    a
                }
            });
        }
        // The dependencies' global definitions (the kernel is dependency 0).
        let deps = s
            .files
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.deps.clone())
            .unwrap_or_default();
        for d in deps {
            if let Some(f) = s.files.iter().find(|f| f.id == d) {
                if let Some(e) = f
                    .symbols
                    .iter()
                    .find(|e| e.name == name && e.bind != STB_LOCAL)
                {
                    return Some(e.addr);
                }
            }
        }
        None
    });
    match found {
        Some(a) => {
            link.res[k] = Res::Addr(a);
            Some(a)
        }
        None if sym.bind() == STB_WEAK => Some(0),
        None => None,
    }
}

fn apply_one(
    link: &mut Linking,
    r: &Rela,
    k: usize,
    tbase: usize,
    tsize: usize,
    target: usize,
    stats: &mut RelocStats,
) -> Result<(), RelocError> {
    let width = match r.rtype {
        R_X86_64_NONE => {
            stats.counts[0] += 1;
            return Ok(());
        }
        R_X86_64_64 => 8,
        R_X86_64_PC32 | R_X86_64_PLT32 | R_X86_64_32S => 4,
        t => {
            kmsg(format!("kldload: unexpected relocation type {t}"));
            return Err(RelocError::BadType);
        }
    };
    let off = r.offset as usize;
    if off.checked_add(width).is_none_or(|e| e > tsize) {
        kmsg(format!(
            "kldload: {}: relocation at {}+{off:#x} outside the section",
            link.path, link.sec_name[&target]
        ));
        return Err(RelocError::Range);
    }
    let p = tbase + off;
    let Some(s) = resolve(link, k, stats) else {
        if link.syms[k].bind() == STB_LOCAL {
            kmsg(format!(
                "kldload: {}: relocation at {}+{off:#x} against {}, which is not loaded",
                link.path,
                link.sec_name[&target],
                link.sym_name(k)
            ));
            return Err(RelocError::Range);
        }
        return Err(RelocError::Undefined);
    };
    let val = (s as i64).wrapping_add(r.addend);
    let range_err = |what: &str, v: i64, link: &Linking| {
        kmsg(format!(
            "kldload: {}: {}+{off:#x}: R_X86_64_{} to {} ({s:#x}) {what} ({v:#x})",
            link.path,
            link.sec_name[&target],
            reloc_name(r.rtype),
            link.sym_name(k)
        ));
        RelocError::Range
    };
    match r.rtype {
        R_X86_64_64 => {
            // SAFETY: `p..p+8` lies inside the target section of this image
            // (checked against the section size above).
            unsafe { std::ptr::write_unaligned(p as *mut u64, val as u64) };
            stats.counts[1] += 1;
        }
        R_X86_64_PC32 | R_X86_64_PLT32 => {
            let v = val.wrapping_sub(p as i64);
            if i32::try_from(v).is_err() {
                return Err(range_err("out of the +-2 GiB range", v, link));
            }
            // SAFETY: `p..p+4` lies inside the target section (checked above).
            unsafe { std::ptr::write_unaligned(p as *mut i32, v as i32) };
            stats.counts[if r.rtype == R_X86_64_PC32 { 2 } else { 3 }] += 1;
        }
        R_X86_64_32S => {
            if i32::try_from(val).is_err() {
                return Err(range_err("does not sign-extend from 32 bits", val, link));
            }
            // SAFETY: `p..p+4` lies inside the target section (checked above).
            unsafe { std::ptr::write_unaligned(p as *mut i32, val as i32) };
            stats.counts[4] += 1;
        }
        _ => unreachable!("filtered above"),
    }
    Ok(())
}

// ---- reading module memory safely ------------------------------------------------

fn image_of(id: i32) -> Option<(usize, usize)> {
    with(|s| {
        s.files
            .iter()
            .find(|f| f.id == id)
            .map(|f| (f.base, f.size))
    })
}

/// Reads a `T` at `addr` if it lies entirely inside file `id`'s image.
fn read_in<T: Copy>(id: i32, addr: usize) -> Option<T> {
    let (b, sz) = image_of(id)?;
    let len = std::mem::size_of::<T>();
    if addr < b || addr.checked_add(len)? > b + sz {
        return None;
    }
    // SAFETY: the range was checked to lie inside the live image.
    Some(unsafe { std::ptr::read_unaligned(addr as *const T) })
}

/// Reads a NUL-terminated string at `addr` inside file `id`'s image.
fn cstr_in(id: i32, addr: usize) -> Option<String> {
    let (b, sz) = image_of(id)?;
    if addr < b || addr >= b + sz {
        return None;
    }
    // SAFETY: `addr..b+sz` is inside the live image.
    let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, b + sz - addr) };
    let end = bytes.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// Reads a NUL-terminated string anywhere in the low arena (module images,
/// exported data) — for pointers handed to exported functions.
fn cstr_arena(addr: usize) -> Option<String> {
    if addr == 0 || !arena::contains(addr) {
        return None;
    }
    let end = arena::base() + arena::ARENA_SIZE;
    let max = (end - addr).min(4096);
    // SAFETY: `addr..addr+max` lies inside the arena mapping.
    let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, max) };
    let n = bytes.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&bytes[..n]).into_owned())
}

/// The pointers of linker set `name` in file `id`.
fn set_entries(id: i32, name: &str) -> Vec<usize> {
    let Some((start, stop)) = with(|s| {
        s.files
            .iter()
            .find(|f| f.id == id)
            .and_then(|f| f.set_range(name))
    }) else {
        return Vec::new();
    };
    (start..stop)
        .step_by(8)
        .filter_map(|a| read_in::<u64>(id, a).map(|v| v as usize))
        .collect()
}

enum Meta {
    Depend {
        name: String,
        min: i32,
        pref: i32,
        max: i32,
    },
    Version {
        name: String,
        version: i32,
    },
    Module {
        name: String,
        data: usize,
    },
    Other(i32),
}

fn read_metadata(id: i32) -> Result<Vec<Meta>, String> {
    let mut v = Vec::new();
    for p in set_entries(id, "modmetadata_set") {
        let md: mod_metadata =
            read_in(id, p).ok_or(format!("modmetadata entry {p:#x} outside the image"))?;
        let cval = cstr_in(id, md.md_cval as usize).unwrap_or_default();
        let data = md.md_data as usize;
        v.push(match md.md_type {
            MDT_DEPEND => {
                let d: mod_depend =
                    read_in(id, data).ok_or(format!("MDT_DEPEND {cval}: bad data pointer"))?;
                Meta::Depend {
                    name: cval,
                    min: d.md_ver_minimum,
                    pref: d.md_ver_preferred,
                    max: d.md_ver_maximum,
                }
            }
            MDT_VERSION => {
                let d: mod_version =
                    read_in(id, data).ok_or(format!("MDT_VERSION {cval}: bad data pointer"))?;
                Meta::Version {
                    name: cval,
                    version: d.mv_version,
                }
            }
            MDT_MODULE => Meta::Module { name: cval, data },
            t => Meta::Other(t),
        });
    }
    Ok(v)
}

// ---- dependencies (linker_load_dependencies) -------------------------------------

fn load_dependencies(id: i32) -> Result<(), i32> {
    let (filename, path) = with(|s| {
        let f = s
            .files
            .iter()
            .find(|f| f.id == id)
            .expect("file being loaded");
        (f.filename.clone(), f.pathname.display().to_string())
    });
    let meta = read_metadata(id).map_err(|m| {
        kmsg(format!("kldload: {path}: bad module metadata: {m}"));
        ENOEXEC
    })?;
    for m in &meta {
        if let Meta::Other(t) = m {
            trace(format!("{filename}: module metadata of type {t} ignored"));
        }
        if let Meta::Version { name, version } = m {
            let clash = with(|s| {
                s.found
                    .iter()
                    .find(|f| f.name == *name && f.version == *version)
                    .map(|f| match f.container {
                        Some(c) => s
                            .files
                            .iter()
                            .find(|x| x.id == c)
                            .map_or("?".into(), |x| x.filename.clone()),
                        None => "kernel".into(),
                    })
            });
            if let Some(c) = clash {
                kmsg(format!(
                    "interface {name}.{version} already present in the KLD '{c}'!"
                ));
                return Err(EEXIST);
            }
        }
    }
    for m in &meta {
        let Meta::Depend {
            name,
            min,
            pref,
            max,
        } = m
        else {
            continue;
        };
        let own = meta
            .iter()
            .any(|x| matches!(x, Meta::Version { name: n, .. } if n == name));
        if own {
            continue; // a self reference
        }
        let verinfo = Some((*min, *pref, *max));
        let have = with(|s| modlist_lookup2(s, name, verinfo).map(|i| s.found[i].container));
        let result = match have {
            Some(container) => {
                trace(format!(
                    "MDT_DEPEND  {name:<10} min={min} pref={pref} max={max} -> ok"
                ));
                if let Some(c) = container {
                    with(|s| {
                        if let Some(f) = s.files.iter_mut().find(|f| f.id == c) {
                            f.refs += 1;
                        }
                        if let Some(f) = s.files.iter_mut().find(|f| f.id == id) {
                            f.deps.push(c);
                        }
                    });
                }
                Ok(())
            }
            None => {
                trace(format!(
                    "MDT_DEPEND  {name:<10} min={min} pref={pref} max={max} -> not loaded"
                ));
                load_module(None, Some(name), Some(id), verinfo).map(|_| ())
            }
        };
        if let Err(e) = result {
            kmsg(format!(
                "KLD {filename}: depends on {name} - not available or version mismatch"
            ));
            return Err(e);
        }
    }
    // linker_addmodules: this file now provides its MDT_VERSIONs.
    for m in &meta {
        if let Meta::Version { name, version } = m {
            trace(format!("MDT_VERSION {name} {version}"));
            with(|s| {
                s.found.push(FoundModule {
                    name: name.clone(),
                    version: *version,
                    container: Some(id),
                })
            });
        }
    }
    Ok(())
}

// ---- loading --------------------------------------------------------------------------

fn write_gdb_script(id: i32) {
    let Some(info) = file_info(id) else { return };
    let abs = std::fs::canonicalize(&info.pathname).unwrap_or_else(|_| info.pathname.clone());
    let text = info
        .sections
        .iter()
        .find(|s| s.name == ".text")
        .or_else(|| info.sections.iter().find(|s| s.exec));
    let mut cmd = format!("add-symbol-file {}", abs.display());
    if let Some(t) = text {
        cmd.push_str(&format!(" {:#x}", t.addr));
    }
    for s in &info.sections {
        if Some(s.index) == text.map(|t| t.index) || s.name.starts_with("<<") {
            continue;
        }
        cmd.push_str(&format!(" -s {} {:#x}", s.name, s.addr));
    }
    let script = format!(
        "# ngharness: {} loaded at {:#x} ({} bytes)\n{cmd}\n",
        info.filename, info.base, info.size
    );
    let mut out = info.pathname.clone().into_os_string();
    out.push(".gdb");
    let out = PathBuf::from(out);
    match std::fs::write(&out, script) {
        Ok(()) => trace(format!("gdb script {}", out.display())),
        Err(e) => eprintln!("harness: cannot write gdb script {}: {e}", out.display()),
    }
}

/// link_elf_load_file: place, local relocations, dependencies, global
/// relocations, ctors. On error the half-loaded file is unloaded.
fn link_elf_load_file(path: &Path) -> Result<i32, i32> {
    let mut link = place(path)?;
    let id = link.id;
    let mut stats = RelocStats::default();
    let r = (|| {
        relocate(&mut link, true, &mut stats)?;
        load_dependencies(id)?;
        relocate(&mut link, false, &mut stats)?;
        Ok(())
    })();
    if let Err(e) = r {
        let _ = linker_file_unload(id, LINKER_UNLOAD_FORCE);
        return Err(e);
    }
    let size = with(|s| s.files.iter().find(|f| f.id == id).map_or(0, |f| f.size));
    let c = stats.counts;
    trace(format!(
        "linked {} at {:#x} ({size} bytes); relocs: 64={} PC32={} PLT32={} 32S={} NONE={}; new stubs={}",
        basename(&link.path),
        link.base,
        c[1],
        c[2],
        c[3],
        c[4],
        c[0],
        stats.new_stubs
    ));
    if std::env::var_os("NGHARNESS_GDB").is_some_and(|v| !v.is_empty()) {
        write_gdb_script(id);
    }
    // .ctors (FreeBSD runs them; C and Rust modules should not have any).
    let ctors = with(|s| {
        s.files
            .iter()
            .find(|f| f.id == id)
            .and_then(|f| f.sections.iter().find(|x| x.name == ".ctors").cloned())
    });
    if let Some(c) = ctors {
        for a in (c.addr..c.addr + c.size).step_by(8) {
            let Some(fp) = read_in::<u64>(id, a) else {
                continue;
            };
            if fp != 0 {
                trace(format!("ctor {}", describe(fp as usize)));
                // SAFETY: a relocated constructor pointer of the module,
                // called with no arguments as the kernel does.
                let f: unsafe extern "C" fn() = unsafe { std::mem::transmute(fp as usize) };
                // SAFETY: calling module code; the module's contract.
                unsafe { f() };
            }
        }
    }
    Ok(id)
}

fn module_register(name: &str, handler: usize, arg: usize, file: i32) -> Result<i32, i32> {
    with(|s| {
        if s.modules.iter().any(|m| m.name == name) {
            return Err(EEXIST);
        }
        let id = s.next_mod_id;
        s.next_mod_id += 1;
        // The opaque `struct module` the handler receives.
        let handle = arena::alloc(64, 16) as usize;
        s.modules.push(Module {
            id,
            name: name.into(),
            handler,
            arg,
            file: Some(file),
            handle,
        });
        if let Some(f) = s.files.iter_mut().find(|f| f.id == file) {
            f.modules.push(id);
            f.had_modules = true;
        }
        Ok(id)
    })
}

fn register_modules(id: i32) -> Result<(), i32> {
    let meta = read_metadata(id).unwrap_or_default();
    let mut first = 0;
    for m in meta {
        let Meta::Module { name: cval, data } = m else {
            continue;
        };
        let Some(md) = read_in::<moduledata>(id, data) else {
            violation(format!(
                "MDT_MODULE {cval}: moduledata pointer {data:#x} outside the module"
            ));
            continue;
        };
        let name = cstr_in(id, md.name as usize).unwrap_or(cval);
        let handler = md.evhand.map_or(0, |f| f as usize);
        let arg = md.priv_ as usize;
        trace(format!(
            "MDT_MODULE  {name} handler={} arg={}",
            describe(handler),
            describe(arg)
        ));
        if let Err(e) = module_register(&name, handler, arg, id) {
            kmsg(format!("module_register: module {name} already exists!"));
            kmsg(format!("Module {name} failed to register: {e}"));
            if first == 0 {
                first = e;
            }
        }
    }
    if first != 0 {
        Err(first)
    } else {
        Ok(())
    }
}

fn sysinits(id: i32, uninit: bool) -> Vec<(u32, u32, usize, usize)> {
    let set = if uninit {
        "sysuninit_set"
    } else {
        "sysinit_set"
    };
    let mut v = Vec::new();
    for p in set_entries(id, set) {
        match read_in::<sysinit>(id, p) {
            Some(si) => v.push((
                si.subsystem,
                si.order,
                si.func.map_or(0, |f| f as usize),
                si.udata as usize,
            )),
            None => violation(format!("{set} entry {p:#x} does not point into the module")),
        }
    }
    if uninit {
        v.sort_by_key(|a| std::cmp::Reverse((a.0, a.1)));
    } else {
        v.sort_by_key(|a| (a.0, a.1));
    }
    v
}

fn run_sysinits(id: i32, uninit: bool) {
    let what = if uninit { "sysuninit" } else { "sysinit" };
    for (sub, order, func, udata) in sysinits(id, uninit) {
        if sub == fbsd_sys::SI_SUB_DUMMY {
            continue;
        }
        trace(format!(
            "{what} sub={sub:#x} order={order:#x} func={} udata={}",
            describe(func),
            describe(udata)
        ));
        if func == 0 {
            violation(format!(
                "{what} with a NULL function (sub {sub:#x} order {order:#x})"
            ));
            continue;
        }
        // SAFETY: a relocated `sysinit_cfunc_t` of the module (or a stub to
        // a harness function), called with its `udata` like the kernel does.
        let f: unsafe extern "C" fn(*const c_void) = unsafe { std::mem::transmute(func) };
        // SAFETY: calling module code with the argument it registered.
        unsafe { f(udata as *const c_void) };
    }
}

/// linker_load_file: link, register modules, SYSINITs.
fn linker_load_file(path: &Path) -> Result<i32, i32> {
    let filename = basename(&path.display().to_string()).to_string();
    let existing = with(|s| {
        let id = find_file_by_name(s, &filename).map(|f| f.id)?;
        let f = s.files.iter_mut().find(|f| f.id == id)?;
        f.refs += 1;
        Some(id)
    });
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = link_elf_load_file(path)?;
    if let Err(e) = register_modules(id) {
        if e == EEXIST {
            let _ = linker_file_unload(id, LINKER_UNLOAD_FORCE);
            return Err(e);
        }
    }
    let info = file_info(id).expect("file just linked");
    run_hooks(Phase::Linked, &info);
    run_sysinits(id, false);
    let failed_all = with(|s| {
        let f = s
            .files
            .iter_mut()
            .find(|f| f.id == id)
            .expect("file just linked");
        f.linked = true;
        f.had_modules && f.modules.is_empty()
    });
    if failed_all {
        trace(format!(
            "{}: every module failed to load; unloading",
            info.filename
        ));
        let _ = linker_file_unload(id, LINKER_UNLOAD_FORCE);
        return Err(ENOEXEC);
    }
    run_hooks(Phase::Loaded, &info);
    Ok(id)
}

/// linker_load_module: find the file for a file name or module name and load it.
fn load_module(
    kldname: Option<&str>,
    modname: Option<&str>,
    parent: Option<i32>,
    verinfo: Option<(i32, i32, i32)>,
) -> Result<i32, i32> {
    let pathname = match modname {
        None => search_kld(kldname.expect("kldname or modname")),
        Some(m) => {
            if with(|s| modlist_lookup2(s, m, verinfo).is_some()) {
                return Err(EEXIST);
            }
            match kldname {
                Some(k) => Some(PathBuf::from(k)),
                None => search_module(m),
            }
        }
    };
    let Some(pathname) = pathname else {
        return Err(ENOENT);
    };
    let filename = basename(&pathname.display().to_string()).to_string();
    if with(|s| find_file_by_name(s, &filename).is_some()) {
        return Err(EEXIST);
    }
    let id = linker_load_file(&pathname)?;
    if let (Some(m), Some(_)) = (modname, verinfo) {
        if with(|s| modlist_lookup2(s, m, verinfo).is_none()) {
            let _ = linker_file_unload(id, LINKER_UNLOAD_FORCE);
            return Err(ENOENT);
        }
    }
    if let Some(p) = parent {
        with(|s| {
            if let Some(f) = s.files.iter_mut().find(|f| f.id == p) {
                f.deps.push(id);
            }
        });
    }
    Ok(id)
}

fn begin_op() {
    with(|s| {
        if s.depth == 0 {
            s.messages.clear();
            s.missing.clear();
        }
        s.depth += 1;
    });
}

fn end_op(errno: i32) -> LoadError {
    with(|s| {
        s.depth -= 1;
        let (messages, missing) = if s.depth == 0 {
            (
                std::mem::take(&mut s.messages),
                std::mem::take(&mut s.missing),
            )
        } else {
            (s.messages.clone(), s.missing.clone())
        };
        LoadError {
            errno,
            messages,
            missing,
        }
    })
}

/// Runs `f` with `curvnet` set to the current thread's prison vnet
/// (`CURVNET_SET(TD_TO_VNET(td))` in kern_kldload/kern_kldunload).
fn with_td_vnet<R>(f: impl FnOnce() -> R) -> R {
    let td = kthread::curthread();
    // SAFETY: curthread, its credential and the credential's prison are live
    // harness objects (never freed).
    let v = unsafe {
        let cr = (*td).td_ucred;
        if cr.is_null() || (*cr).cr_prison.is_null() {
            kthread::vnet0()
        } else {
            (*(*cr).cr_prison).pr_vnet
        }
    };
    let old = kthread::set_curvnet(v);
    let r = f();
    kthread::set_curvnet(old);
    r
}

/// `kldload(2)` without the privilege check: `name` is a path (contains `/`),
/// a file name (contains `.`, looked up on the module path) or a module name
/// (looked up on the module path as `name` or `name.ko`). Returns the file id.
/// EEXIST if the module or file is already loaded, ENOENT if not found.
pub fn kldload(name: &str) -> Result<i32, LoadError> {
    begin_op();
    let r = with_td_vnet(|| {
        let (kld, modn) = if name.contains('/') || name.contains('.') {
            (Some(name), None)
        } else {
            (None, Some(name))
        };
        load_module(kld, modn, None, None)
    });
    match r {
        Ok(id) => {
            let _ = end_op(0);
            with(|s| {
                if let Some(f) = s.files.iter_mut().find(|f| f.id == id) {
                    f.userrefs += 1;
                }
            });
            Ok(id)
        }
        Err(e) => Err(end_op(e)),
    }
}

/// Loads the `.ko` at `path` (a `kldload ./x.ko`). Returns the file id.
pub fn load(path: &Path) -> Result<i32, LoadError> {
    let s = path.display().to_string();
    if s.contains('/') {
        kldload(&s)
    } else {
        kldload(&format!("./{s}"))
    }
}

// ---- module events ----------------------------------------------------------------

fn call_handler(mod_id: i32, event: c_int) -> i32 {
    let Some((handler, handle, arg)) = with(|s| {
        s.modules
            .iter()
            .find(|m| m.id == mod_id)
            .map(|m| (m.handler, m.handle, m.arg))
    }) else {
        return EINVAL;
    };
    if handler == 0 {
        // modevent_nop
        return match event {
            MOD_LOAD => 0,
            MOD_UNLOAD => EBUSY,
            _ => EOPNOTSUPP,
        };
    }
    // SAFETY: the relocated `modeventhand_t` of the module's moduledata.
    let f: unsafe extern "C" fn(*mut c_void, c_int, *mut c_void) -> c_int =
        unsafe { std::mem::transmute(handler) };
    // SAFETY: calling module code with the arguments the kernel passes.
    unsafe { f(handle as *mut c_void, event, arg as *mut c_void) }
}

fn module_release(mod_id: i32) {
    with(|s| {
        if let Some(pos) = s.modules.iter().position(|m| m.id == mod_id) {
            let m = s.modules.remove(pos);
            if let Some(fid) = m.file {
                if let Some(f) = s.files.iter_mut().find(|f| f.id == fid) {
                    f.modules.retain(|&x| x != mod_id);
                }
            }
        }
    });
}

fn mod_name(mod_id: i32) -> String {
    with(|s| {
        s.modules
            .iter()
            .find(|m| m.id == mod_id)
            .map(|m| m.name.clone())
            .unwrap_or_default()
    })
}

unsafe extern "C" fn k_module_register_init(arg: *const c_void) {
    let data = arg as usize;
    let Some(md) = (!arg.is_null())
        .then(|| {
            // SAFETY: DECLARE_MODULE passes its static moduledata_t; checked to
            // lie in the arena before reading.
            arena::contains(data)
                .then(|| unsafe { std::ptr::read_unaligned(arg as *const moduledata) })
        })
        .flatten()
    else {
        violation(format!(
            "module_register_init({}): not a moduledata pointer",
            fmt_ptr(data)
        ));
        return;
    };
    let name = cstr_arena(md.name as usize).unwrap_or_default();
    let Some(mod_id) = with(|s| s.modules.iter().find(|m| m.name == name).map(|m| m.id)) else {
        crate::kern::kernel_panic(&format!(
            "module_register_init: module named {name} not found"
        ));
    };
    let error = call_handler(mod_id, MOD_LOAD);
    trace(format!("module_register_init({name}): MOD_LOAD -> {error}"));
    if error != 0 {
        let r = call_handler(mod_id, MOD_UNLOAD);
        trace(format!("module_register_init({name}): MOD_UNLOAD -> {r}"));
        module_release(mod_id);
        let evhand = md.evhand.map_or(0, |f| f as usize);
        kmsg(format!(
            "module_register_init: MOD_LOAD ({name}, {}, {}) error {error}",
            fmt_ptr(evhand),
            fmt_ptr(md.priv_ as usize)
        ));
    } else {
        with(|s| {
            let fid = s
                .modules
                .iter()
                .find(|m| m.id == mod_id)
                .and_then(|m| m.file);
            if let Some(f) = fid.and_then(|fid| s.files.iter_mut().find(|f| f.id == fid)) {
                f.modules.retain(|&x| x != mod_id);
                f.modules.insert(0, mod_id);
            }
        });
    }
}

// ---- unloading -------------------------------------------------------------------------

fn protect_image(base: usize, size: usize) {
    // SAFETY: `base..base+size` is this file's page-aligned image inside the
    // arena mapping; nothing of the harness lives there. Making it
    // inaccessible turns a call into unloaded code into a fault.
    let r = unsafe { libc::mprotect(base as *mut c_void, size, libc::PROT_NONE) };
    if r != 0 {
        eprintln!("harness: mprotect of unloaded image {base:#x} failed");
    }
}

/// linker_file_unload.
fn linker_file_unload(id: i32, flags: i32) -> Result<(), i32> {
    let Some((refs, modules, filename)) = with(|s| {
        s.files
            .iter()
            .find(|f| f.id == id)
            .map(|f| (f.refs, f.modules.clone(), f.filename.clone()))
    }) else {
        return Err(ENOENT);
    };
    if refs > 1 {
        with(|s| {
            if let Some(f) = s.files.iter_mut().find(|f| f.id == id) {
                f.refs -= 1;
            }
        });
        return Ok(());
    }
    // Quiesce all modules; any of them may veto.
    for &m in &modules {
        let mut e = call_handler(m, MOD_QUIESCE);
        trace(format!("MOD_QUIESCE({}) -> {e}", mod_name(m)));
        if e == EOPNOTSUPP || e == EINVAL {
            e = 0;
        }
        if e != 0 && flags != LINKER_UNLOAD_FORCE {
            return Err(e);
        }
    }
    for &m in &modules {
        let e = call_handler(m, MOD_UNLOAD);
        trace(format!("MOD_UNLOAD({}) -> {e}", mod_name(m)));
        if e != 0 {
            return Err(e);
        }
        module_release(m);
    }
    let (linked, info) = with(|s| {
        s.found.retain(|m| m.container != Some(id));
        let f = s
            .files
            .iter_mut()
            .find(|f| f.id == id)
            .expect("file being unloaded");
        let linked = f.linked;
        f.linked = false;
        (linked, f.info())
    });
    if linked {
        run_hooks(Phase::Unloading, &info);
        run_sysinits(id, true);
    }
    let f = with(|s| {
        let pos = s
            .files
            .iter()
            .position(|f| f.id == id)
            .expect("file being unloaded");
        s.files.remove(pos)
    });
    for d in &f.deps {
        let _ = linker_file_unload(*d, flags);
    }
    protect_image(f.base, f.size);
    with(|s| {
        s.unloaded.push(UnloadedFile {
            filename: f.filename.clone(),
            base: f.base,
            size: f.size,
            sections: f.sections,
            symbols: f.symbols,
        })
    });
    trace(format!("unloaded {filename}"));
    if linked {
        run_hooks(Phase::Unloaded, &info);
    }
    Ok(())
}

/// `kldunload(2)` without the privilege check: unloads file `id`
/// (`flags`: [`LINKER_UNLOAD_NORMAL`] or [`LINKER_UNLOAD_FORCE`]). EBUSY if a
/// module refuses (the file stays loaded), ENOENT if no such file.
pub fn kldunload(id: i32, flags: i32) -> Result<(), i32> {
    with_td_vnet(|| {
        let userrefs = with(|s| {
            s.files
                .iter()
                .find(|f| f.id == id && f.linked)
                .map(|f| f.userrefs)
        });
        let Some(userrefs) = userrefs else {
            return Err(ENOENT);
        };
        if userrefs == 0 {
            kprint("kldunload: attempt to unload file that was loaded by the kernel");
            return Err(EBUSY);
        }
        let set = |d: i32| {
            with(|s| {
                if let Some(f) = s.files.iter_mut().find(|f| f.id == id) {
                    f.userrefs += d;
                }
            })
        };
        set(-1);
        let r = linker_file_unload(id, flags);
        if r.is_err() {
            set(1);
        }
        r
    })
}

/// Unloads file `id` normally (see [`kldunload`]).
pub fn unload(id: i32) -> Result<(), i32> {
    kldunload(id, LINKER_UNLOAD_NORMAL)
}

// ---- exported kernel functions ---------------------------------------------------------

unsafe extern "C" fn k_kern_kldload(
    td: *mut thread,
    file: *const c_char,
    fileid: *mut c_int,
) -> c_int {
    if td.is_null() || file.is_null() {
        violation("kern_kldload: NULL thread or file name");
        return EINVAL;
    }
    crate::kern::lock::assert_may_sleep("kern_kldload");
    // SAFETY: a NUL-terminated name from the caller (kern_kldload's contract).
    let name = unsafe { CStr::from_ptr(file) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: forwarding the caller's thread to the privilege check.
    let e = unsafe { priv_check_fn()(td, fbsd_sys::PRIV_KLD_LOAD as c_int) };
    if e != 0 {
        return e;
    }
    let r = kthread::with_curthread(td, || kldload(&name));
    match r {
        Ok(id) => {
            if !fileid.is_null() {
                // SAFETY: the caller's out parameter.
                unsafe { *fileid = id };
            }
            0
        }
        Err(e) => e.errno,
    }
}

unsafe extern "C" fn k_kern_kldunload(td: *mut thread, fileid: c_int, flags: c_int) -> c_int {
    if td.is_null() {
        violation("kern_kldunload: NULL thread");
        return EINVAL;
    }
    crate::kern::lock::assert_may_sleep("kern_kldunload");
    // SAFETY: forwarding the caller's thread to the privilege check.
    let e = unsafe { priv_check_fn()(td, fbsd_sys::PRIV_KLD_UNLOAD as c_int) };
    if e != 0 {
        return e;
    }
    match kthread::with_curthread(td, || kldunload(fileid, flags)) {
        Ok(()) => 0,
        Err(e) => e,
    }
}

type PrivCheck = unsafe extern "C" fn(*mut thread, c_int) -> c_int;

fn priv_check_fn() -> PrivCheck {
    let a = with(|s| s.exports.get("priv_check").map(|e| e.addr)).expect("priv_check is exported");
    // SAFETY: the export table maps "priv_check" to a host function with the
    // kernel's `priv_check` signature.
    unsafe { std::mem::transmute::<usize, PrivCheck>(a) }
}

/// Exports `module_register_init`, `kern_kldload` and `kern_kldunload`.
pub fn register(ex: &mut Exports) {
    ex.func(
        "module_register_init",
        k_module_register_init as *const () as usize,
    );
    ex.func("kern_kldload", k_kern_kldload as *const () as usize);
    ex.func("kern_kldunload", k_kern_kldunload as *const () as usize);
}
