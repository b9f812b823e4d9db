//! SanitizerCoverage of loaded modules: the edge counters of a module built
//! with `-sanitizer-coverage-inline-8bit-counters` (or `-inline-bool-flag`)
//! and `-sanitizer-coverage-pc-table` (`scripts/build-ko.sh <..> fuzz|cov`).
//!
//! Such a module carries one counter (or flag) per instrumented edge in
//! sections `__sancov_cntrs` (`__sancov_bools`), one per function, and the
//! matching `{pc, flags}` records in `__sancov_pcs`, in the same order. Its
//! module constructor would hand their bounds to
//! `__sanitizer_cov_8bit_counters_init` / `__sanitizer_cov_pcs_init`; FreeBSD
//! runs no constructors, and neither does the loader: these are exported as
//! no-ops so the module links, and the sections are found by name when the
//! file is linked ([`crate::kern::loader::Phase::Linked`]).
//!
//! The counters of a file are read at its unload (before the image goes)
//! and added to what earlier instances of the same file counted, so
//! [`counters`] covers everything a process ran, loads and unloads
//! included. [`reset`] starts again from zero (per fuzzing case).
//!
//! With `NGHARNESS_COVERAGE_DIR` set, every process that loaded an
//! instrumented module writes its counters there when it exits (or
//! panics): `<dir>/<file>.<pid>.cov`, one byte per edge in the order of the
//! module's `__sancov_pcs` records, for `ngharness coverage`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use crate::exports::Exports;
use crate::kern::loader::{self, FileInfo, Phase};

/// Environment variable naming the directory for coverage dumps.
pub const COVERAGE_DIR_ENV: &str = "NGHARNESS_COVERAGE_DIR";

/// Instrumented sections of one loaded file.
struct Live {
    id: i32,
    filename: String,
    /// Counter (or flag) arrays, `(address, length)`, in section order.
    arrays: Vec<(usize, usize)>,
    /// Addresses of the `__sancov_pcs` records, in the same order.
    pcs: Vec<(usize, usize)>,
}

impl Live {
    fn total(&self) -> usize {
        self.arrays.iter().map(|a| a.1).sum()
    }

    fn read(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.total());
        for &(a, n) in &self.arrays {
            // SAFETY: the counter sections of a linked, not yet released
            // image (entries are removed at Phase::Unloading).
            v.extend_from_slice(unsafe { std::slice::from_raw_parts(a as *const u8, n) });
        }
        v
    }

    fn zero(&self) {
        for &(a, n) in &self.arrays {
            // SAFETY: as in `read`; the sections are writable module data.
            unsafe { std::ptr::write_bytes(a as *mut u8, 0, n) };
        }
    }
}

struct State {
    live: Vec<Live>,
    /// Counts of unloaded instances, by file name.
    saved: BTreeMap<String, Vec<u8>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    live: Vec::new(),
    saved: BTreeMap::new(),
});
static DUMPED: AtomicBool = AtomicBool::new(false);

fn st() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn add_into(dst: &mut Vec<u8>, src: &[u8]) {
    if dst.len() < src.len() {
        dst.resize(src.len(), 0);
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = d.saturating_add(*s);
    }
}

fn on_phase(phase: Phase, f: &FileInfo) {
    match phase {
        Phase::Linked => attach(f),
        Phase::Unloading => {
            let mut s = st();
            if let Some(i) = s.live.iter().position(|l| l.id == f.id) {
                let l = s.live.remove(i);
                let counts = l.read();
                add_into(s.saved.entry(l.filename).or_default(), &counts);
            }
        }
        Phase::Unloaded => st().live.retain(|l| l.id != f.id),
        Phase::Loaded => {}
    }
}

fn attach(f: &FileInfo) {
    let arrays: Vec<(usize, usize)> = f
        .sections
        .iter()
        .filter(|s| s.name == "__sancov_cntrs" || s.name == "__sancov_bools")
        .map(|s| (s.addr, s.size))
        .collect();
    if arrays.is_empty() {
        return;
    }
    let pcs: Vec<(usize, usize)> = f
        .sections
        .iter()
        .filter(|s| s.name == "__sancov_pcs")
        .map(|s| (s.addr, s.size))
        .collect();
    let pairs_match =
        pcs.len() == arrays.len() && pcs.iter().zip(&arrays).all(|(p, a)| p.1 == a.1 * 16);
    if !pairs_match {
        crate::kern::violation(format!(
            "{}: __sancov_pcs sections do not match the counter sections",
            f.filename
        ));
        return;
    }
    let l = Live {
        id: f.id,
        filename: f.filename.clone(),
        arrays,
        pcs,
    };
    l.zero();
    st().live.push(l);
    if std::env::var_os(COVERAGE_DIR_ENV).is_some() {
        static AT_EXIT: Once = Once::new();
        AT_EXIT.call_once(|| {
            // SAFETY: registers a plain C-ABI function with no arguments.
            unsafe { libc::atexit(dump_at_exit) };
            crate::kern::add_panic_hook(dump);
        });
    }
}

extern "C" fn dump_at_exit() {
    dump();
}

/// Writes every file's counters to `NGHARNESS_COVERAGE_DIR` (once per
/// process).
pub fn dump() {
    let Some(dir) = std::env::var_os(COVERAGE_DIR_ENV) else {
        return;
    };
    if DUMPED.swap(true, Ordering::AcqRel) {
        return;
    }
    let dir = std::path::PathBuf::from(dir);
    let _ = std::fs::create_dir_all(&dir);
    let pid = std::process::id();
    for (name, counts) in counters_all() {
        let p = dir.join(format!("{name}.{pid}.cov"));
        if let Err(e) = std::fs::write(&p, &counts) {
            eprintln!("harness: cannot write {}: {e}", p.display());
        }
    }
}

/// Counters of every instrumented file this process loaded (unloaded
/// instances added in), by file name.
pub fn counters_all() -> BTreeMap<String, Vec<u8>> {
    let s = st();
    let mut out = s.saved.clone();
    for l in &s.live {
        add_into(out.entry(l.filename.clone()).or_default(), &l.read());
    }
    out
}

/// Counters of file `filename` (`ng_ksocket.ko`), if it was instrumented.
pub fn counters(filename: &str) -> Option<Vec<u8>> {
    counters_all().remove(filename)
}

/// The relocated `{pc, flags}` records of a loaded instrumented file, one
/// per counter (`flags & 1`: the function's entry block).
pub fn pc_table(filename: &str) -> Option<Vec<(usize, usize)>> {
    let s = st();
    let l = s.live.iter().find(|l| l.filename == filename)?;
    let mut v = Vec::with_capacity(l.total());
    for &(a, n) in &l.pcs {
        for i in 0..n / 16 {
            // SAFETY: the records of a linked image, two words each.
            let (pc, fl) = unsafe {
                let p = (a + i * 16) as *const usize;
                (p.read_unaligned(), p.add(1).read_unaligned())
            };
            v.push((pc, fl));
        }
    }
    Some(v)
}

/// Number of counters of each loaded instrumented file.
pub fn sizes() -> BTreeMap<String, usize> {
    st().live
        .iter()
        .map(|l| (l.filename.clone(), l.total()))
        .collect()
}

/// Zeroes the counters of the loaded files and forgets unloaded ones.
pub fn reset() {
    let mut s = st();
    s.saved.clear();
    for l in &s.live {
        l.zero();
    }
}

unsafe extern "C" fn k_sancov_init(_start: *mut u8, _stop: *mut u8) {}

/// Exports the SanitizerCoverage initialisers and hooks the loader.
pub fn register(ex: &mut Exports) {
    for name in [
        "__sanitizer_cov_8bit_counters_init",
        "__sanitizer_cov_bool_flag_init",
        "__sanitizer_cov_pcs_init",
    ] {
        ex.func(name, k_sancov_init as *const () as usize);
    }
    static HOOKED: Once = Once::new();
    HOOKED.call_once(|| loader::add_hook(on_phase));
}
