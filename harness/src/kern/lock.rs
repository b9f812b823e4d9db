//! mutex(9) as compiled into a module (`LOCK_DEBUG` forces the out-of-line
//! calls): `_mtx_init`, `_mtx_destroy`, `__mtx_lock_flags`,
//! `__mtx_unlock_flags`, `_mtx_trylock_flags_`, the spin variants and
//! `mtx_sysinit`, with the checks an INVARIANTS + WITNESS kernel makes.
//!
//! The lock word is kept exactly like the kernel's, because module code reads
//! it inline (`mtx_owned()` compares `mtx_lock & ~MTX_FLAGMASK` with
//! `curthread`; `mtx_recursed()` reads `lo_data`): `MTX_UNOWNED` (0) when
//! free, the owning `struct thread *` when held (plus `MTX_RECURSED` while
//! recursed), `MTX_DESTROYED` (4) after `mtx_destroy`. `lo_flags` carries
//! `LO_INITIALIZED`. The harness keeps, next to that, a registry of the
//! mutexes it has seen, the locks each thread holds (for [`held_count`] and
//! [`assert_may_sleep`]) and the first-observed order of each pair of lock
//! names (a later reversal is a violation, like WITNESS's "lock order
//! reversal").
//!
//! Lock order, like WITNESS: besides the order learned from the first
//! acquisition of each pair (the modules' own mutexes), FreeBSD's fixed
//! orders are built in ([`FIXED_ORDER`]: the socket lock before its buffer
//! locks, the send buffer before the receive buffer, every mutex before the
//! netgraph core's locks), so a reversal of a fixed pair is reported the
//! first time it happens, not only once both orders were seen; a listening
//! socket's lock is taken before its children's; and a sleep mutex is never
//! taken with a spin mutex held. The netgraph core's own locks are not
//! objects here: the model notes where FreeBSD takes them ([`note_acquire`]).
//!
//! Contended locks: on an SMP machine (`kern::smp`) a thread that finds a
//! mutex held by a thread that still runs blocks until it is released. A
//! mutex held by a thread nobody runs any more (free kernel, or a thread
//! switched out with a mutex held) can never be released: that is reported
//! as a violation (ownership then moves to the current thread so the
//! scenario can go on).

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::offset_of;
use std::sync::Mutex;

use fbsd_sys::{lock_object, mtx, mtx_args, thread};

use crate::exports::Exports;
use crate::kern::smp;
use crate::kern::thread::{critnest, curthread};
use crate::kern::violation;

/// FreeBSD's fixed lock orders among the locks the modules touch (by
/// WITNESS key, i.e. lock type or name): each pair is (first, then).
/// `*` stands for every mutex not named in the pair.
pub const FIXED_ORDER: &[(&str, &str)] = &[
    ("socket", "so_snd"),
    ("socket", "so_rcv"),
    ("so_snd", "so_rcv"),
    ("*", "netgraph topology"),
    ("*", "netgraph node queue"),
    ("*", "netgraph name hash"),
    ("*", "netgraph ID hash"),
    ("netgraph topology", "netgraph node queue"),
];

const MTX_UNOWNED: usize = fbsd_sys::MTX_UNOWNED as usize;
const MTX_RECURSED: usize = fbsd_sys::MTX_RECURSED as usize;
const MTX_DESTROYED: usize = fbsd_sys::MTX_DESTROYED as usize;
const MTX_FLAGMASK: usize = fbsd_sys::MTX_FLAGMASK as usize;

const MTX_SPIN: c_int = fbsd_sys::MTX_SPIN as c_int;
const MTX_RECURSE: c_int = fbsd_sys::MTX_RECURSE as c_int;
const MTX_QUIET: c_int = fbsd_sys::MTX_QUIET as c_int;
const MTX_NOWITNESS: c_int = fbsd_sys::MTX_NOWITNESS as c_int;
const MTX_DUPOK: c_int = fbsd_sys::MTX_DUPOK as c_int;
const MTX_NOPROFILE: c_int = fbsd_sys::MTX_NOPROFILE as c_int;
const MTX_NEW: c_int = fbsd_sys::MTX_NEW as c_int;
const MTX_INIT_OPTS: c_int =
    MTX_SPIN | MTX_QUIET | MTX_RECURSE | MTX_NOWITNESS | MTX_DUPOK | MTX_NOPROFILE | MTX_NEW;

const LO_INITIALIZED: u32 = fbsd_sys::LO_INITIALIZED;
const LO_WITNESS: u32 = fbsd_sys::LO_WITNESS;
const LO_QUIET: u32 = fbsd_sys::LO_QUIET;
const LO_RECURSABLE: u32 = fbsd_sys::LO_RECURSABLE;
const LO_DUPOK: u32 = fbsd_sys::LO_DUPOK;
const LO_NOPROFILE: u32 = fbsd_sys::LO_NOPROFILE;
const LO_CLASSSHIFT: u32 = 24;
/// Lock class indexes of the kernel's `lock_classes[]`.
const CLASS_SPIN: u32 = 0;
const CLASS_SLEEP: u32 = 1;

struct MtxInfo {
    name: String,
    /// WITNESS key (the `type` argument of `mtx_init`, else the name).
    order_key: String,
}

#[derive(Default)]
struct LockState {
    info: HashMap<usize, MtxInfo>,
    /// Thread → locks held (mutex addresses, acquisition order).
    held: HashMap<usize, Vec<usize>>,
    /// First-observed order: (held, then acquired).
    order: HashSet<(String, String)>,
    reported: HashSet<(String, String)>,
}

static LOCKS: Mutex<Option<LockState>> = Mutex::new(None);

/// Fault switch (harness self-tests): sleep mutexes of this name exclude
/// nobody. Locking and unlocking one is only a preemption point, so a
/// module's critical sections under it interleave with each other; the
/// race it protects against becomes reachable, and must be reported.
static INEFFECTIVE: Mutex<Option<String>> = Mutex::new(None);

/// Makes sleep mutexes called `name` exclude nobody (`None`: every mutex
/// works again). A model fault switch for self-tests.
pub fn set_ineffective(name: Option<&str>) {
    *INEFFECTIVE.lock().unwrap_or_else(|e| e.into_inner()) = name.map(str::to_string);
}

fn ineffective(m: *mut mtx) -> bool {
    let name = INEFFECTIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    name.is_some_and(|n| n == name_of(m))
}

fn with_state<R>(f: impl FnOnce(&mut LockState) -> R) -> R {
    let mut g = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(LockState::default))
}

/// `struct mtx *` from the `&m->mtx_lock` cookie the module passes.
fn mtx_of(c: *mut usize) -> *mut mtx {
    (c as usize - offset_of!(mtx, mtx_lock)) as *mut mtx
}

fn lo_of(m: *mut mtx) -> *mut lock_object {
    // SAFETY: only computes a field address; no access.
    unsafe { std::ptr::addr_of_mut!((*m).lock_object) }
}

fn read_word(c: *mut usize) -> usize {
    // SAFETY: `c` points at the lock word of a mutex the module handed in.
    unsafe { std::ptr::read_volatile(c) }
}

fn write_word(c: *mut usize, v: usize) {
    // SAFETY: as above; single-threaded cooperative model.
    unsafe { std::ptr::write_volatile(c, v) }
}

fn lo_flags(m: *mut mtx) -> u32 {
    // SAFETY: `m` is the mutex the module handed in.
    unsafe { (*lo_of(m)).lo_flags }
}

fn cstr_or(p: *const c_char, dflt: &str) -> String {
    if p.is_null() {
        dflt.to_string()
    } else {
        // SAFETY: the module passes NUL-terminated names/file strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn name_of(m: *mut mtx) -> String {
    if let Some(n) = with_state(|s| s.info.get(&(m as usize)).map(|i| i.name.clone())) {
        return n;
    }
    if lo_flags(m) & LO_INITIALIZED != 0 {
        // SAFETY: an initialised lock object carries the module's name pointer.
        cstr_or(unsafe { (*lo_of(m)).lo_name }, "(null)")
    } else {
        format!("{m:p}")
    }
}

fn at(file: *const c_char, line: c_int) -> String {
    if file.is_null() {
        String::new()
    } else {
        format!(" @ {}:{}", cstr_or(file, "?"), line)
    }
}

/// "TID (name)" of a harness thread, for reports.
fn tid_of(td: usize) -> String {
    if td == 0 || !crate::kern::thread::is_thread(td) {
        return format!("{td:#x} (no thread)");
    }
    // SAFETY: a harness thread object (never freed).
    let (tid, name) = unsafe {
        let t = td as *mut thread;
        (
            (*t).td_tid,
            std::ffi::CStr::from_ptr((*t).td_name.as_ptr())
                .to_string_lossy()
                .into_owned(),
        )
    };
    format!("{tid} ({name})")
}

/// Is `word` a state a lock word can be in (free, destroyed, or a harness
/// thread, with flag bits)?
fn valid_word(word: usize) -> bool {
    word == MTX_UNOWNED
        || word == MTX_DESTROYED
        || crate::kern::thread::is_thread(word & !MTX_FLAGMASK)
}

/// Where mutex `m` lies if its memory was freed: " (in freed TYPE memory)".
fn freed_note(m: *mut mtx) -> String {
    match crate::kern::malloc::freed_block_containing(m.cast()) {
        Some((b, ty)) => format!(" (inside a freed {ty} block at {b:#x}: use after free)"),
        None => String::new(),
    }
}

fn do_init(c: *mut usize, name: *const c_char, ty: *const c_char, opts: c_int) {
    let m = mtx_of(c);
    let lo = lo_of(m);
    let nm = cstr_or(name, "(null)");
    if name.is_null() {
        violation(format!("mtx_init({m:p}): NULL name"));
    }
    if opts & !MTX_INIT_OPTS != 0 {
        violation(format!("mtx_init: unknown opts {opts:#x} for \"{nm}\""));
    }
    if lo_flags(m) & LO_INITIALIZED != 0 && opts & MTX_NEW == 0 {
        violation(format!("lock \"{nm}\" {m:p} already initialized"));
    }
    let spin = opts & MTX_SPIN != 0;
    let mut flags =
        LO_INITIALIZED | ((if spin { CLASS_SPIN } else { CLASS_SLEEP }) << LO_CLASSSHIFT);
    if opts & MTX_QUIET != 0 {
        flags |= LO_QUIET;
    }
    if opts & MTX_RECURSE != 0 {
        flags |= LO_RECURSABLE;
    }
    if opts & MTX_DUPOK != 0 {
        flags |= LO_DUPOK;
    }
    if opts & MTX_NOPROFILE != 0 {
        flags |= LO_NOPROFILE;
    }
    if opts & MTX_NOWITNESS == 0 {
        flags |= LO_WITNESS;
    }
    // SAFETY: `lo` is the lock object embedded in the module's mutex.
    unsafe {
        (*lo).lo_name = name;
        (*lo).lo_flags = flags;
        (*lo).lo_data = 0;
        (*lo).lo_witness = std::ptr::null_mut();
    }
    write_word(c, MTX_UNOWNED);
    let key = if ty.is_null() {
        nm.clone()
    } else {
        cstr_or(ty, &nm)
    };
    with_state(|s| {
        s.info.insert(
            m as usize,
            MtxInfo {
                name: nm,
                order_key: key,
            },
        );
    });
}

/// Checks that `m` is a live mutex of the expected class before an operation.
fn check_usable(
    m: *mut mtx,
    c: *mut usize,
    op: &str,
    want_spin: bool,
    file: *const c_char,
    line: c_int,
) -> bool {
    let word = read_word(c);
    if word == MTX_DESTROYED {
        violation(format!(
            "{op}() of destroyed mutex {}{}{}",
            name_of(m),
            at(file, line),
            freed_note(m)
        ));
        return true;
    }
    if lo_flags(m) & LO_INITIALIZED == 0 {
        violation(format!(
            "{op}() of uninitialized mutex {m:p}{}{}",
            at(file, line),
            freed_note(m)
        ));
        return true;
    }
    if !valid_word(word) {
        violation(format!(
            "{op}() of mutex {} whose lock word {word:#x} is no lock state{}{}",
            name_of(m),
            at(file, line),
            freed_note(m)
        ));
        return false;
    }
    let spin = (lo_flags(m) >> LO_CLASSSHIFT) & 0xf == CLASS_SPIN;
    if spin != want_spin {
        let kind = if spin { "spin" } else { "sleep" };
        violation(format!(
            "{op}() of {kind} mutex {}{}",
            name_of(m),
            at(file, line)
        ));
    }
    true
}

/// Is (`a` then `b`) the reverse of a fixed order?
fn fixed_reversal(a: &str, b: &str) -> bool {
    FIXED_ORDER.iter().any(|&(x, y)| {
        let named = |k: &str| FIXED_ORDER.iter().any(|&(p, q)| p == k || q == k);
        y == a && (x == b || (x == "*" && !named(b)))
    })
}

/// Checks acquiring a lock of WITNESS key `new_key` (mutex `m`, 0 for a
/// netgraph core lock) against the locks thread `td` holds.
fn order_check_key(s: &mut LockState, td: usize, m: usize, new_key: &str) {
    let held: Vec<usize> = s.held.get(&td).cloned().unwrap_or_default();
    for h in held {
        if h == m {
            continue;
        }
        let Some(old_key) = s.info.get(&h).map(|i| i.order_key.clone()) else {
            continue;
        };
        if old_key == new_key {
            // Same lock type (two sockets' buffer locks, ...): WITNESS's
            // duplicate-acquisition warning is not modelled; the listen
            // order of socket locks is checked by `listen_order`.
            continue;
        }
        let fwd = (old_key.clone(), new_key.to_string());
        let rev = (new_key.to_string(), old_key.clone());
        if fixed_reversal(&old_key, new_key) {
            if s.reported.insert(fwd.clone()) {
                violation(format!(
                    "lock order reversal: \"{old_key}\" then \"{new_key}\" \
                     (fixed order: \"{new_key}\" then \"{old_key}\")"
                ));
            }
        } else if s.order.contains(&rev) {
            if s.reported.insert(fwd.clone()) {
                violation(format!(
                    "lock order reversal: \"{old_key}\" then \"{new_key}\" \
                     (established order: \"{new_key}\" then \"{old_key}\")"
                ));
            }
        } else {
            s.order.insert(fwd);
        }
    }
}

fn order_check(td: usize, m: *mut mtx) {
    with_state(|s| {
        let Some(new_key) = s.info.get(&(m as usize)).map(|i| i.order_key.clone()) else {
            return;
        };
        order_check_key(s, td, m as usize, &new_key);
        listen_order(s, td, m);
        spin_order(s, td, m);
    });
}

/// A socket's lock (`so_lock`, the first member of `struct socket`, named
/// "socket") is taken after its listening socket's, never before.
fn listen_order(s: &mut LockState, td: usize, m: *mut mtx) {
    let is_socket = |x: usize| s.info.get(&x).is_some_and(|i| i.name == "socket");
    if !is_socket(m as usize) {
        return;
    }
    let held: Vec<usize> = s.held.get(&td).cloned().unwrap_or_default();
    for h in held {
        if h == m as usize || !is_socket(h) {
            continue;
        }
        let so = h as *mut fbsd_sys::socket;
        // SAFETY: `h` is the `so_lock` (first member) of a live socket; a
        // socket that is not listening keeps its head in `so_listen`.
        let child_head = unsafe {
            if (*so).so_options & fbsd_sys::SO_ACCEPTCONN as i32 != 0 {
                0
            } else {
                (*so).__bindgen_anon_1.__bindgen_anon_1.so_listen as usize
            }
        };
        if child_head == m as usize
            && s.reported
                .insert(("listen child".into(), format!("{h:#x}")))
        {
            violation(format!(
                "lock order reversal: the lock of listening socket {m:p} taken while holding \
                 the lock of its child {h:#x} (the listening socket's lock comes first)"
            ));
        }
    }
}

/// A sleep mutex is never acquired with a spin mutex held.
fn spin_order(s: &mut LockState, td: usize, m: *mut mtx) {
    if (lo_flags(m) >> LO_CLASSSHIFT) & 0xf != CLASS_SLEEP {
        return;
    }
    let held: Vec<usize> = s.held.get(&td).cloned().unwrap_or_default();
    for h in held {
        if h != m as usize && (lo_flags(h as *mut mtx) >> LO_CLASSSHIFT) & 0xf == CLASS_SPIN {
            let (a, b) = (
                s.info.get(&h).map_or(String::new(), |i| i.name.clone()),
                s.info
                    .get(&(m as usize))
                    .map_or(String::new(), |i| i.name.clone()),
            );
            violation(format!(
                "acquiring sleep mutex \"{b}\" with spin mutex \"{a}\" held"
            ));
        }
    }
}

fn push_held(td: usize, m: *mut mtx) {
    with_state(|s| s.held.entry(td).or_default().push(m as usize));
}

fn remove_held(td: usize, m: *mut mtx) {
    with_state(|s| {
        if let Some(v) = s.held.get_mut(&td) {
            if let Some(pos) = v.iter().rposition(|&x| x == m as usize) {
                v.remove(pos);
            }
        }
    });
}

fn do_lock(c: *mut usize, opts: c_int, file: *const c_char, line: c_int, spin: bool) {
    let m = mtx_of(c);
    let op = if spin { "mtx_lock_spin" } else { "mtx_lock" };
    if !check_usable(m, c, op, spin, file, line) {
        return;
    }
    if !spin && ineffective(m) {
        smp::preempt(smp::Ev::Point("mtx_lock (fault: no exclusion)"));
        return;
    }
    if spin {
        // spinlock_enter(): a spin mutex holder runs in a critical section.
        // SAFETY: curthread is a live thread object.
        unsafe { (*curthread()).td_critnest += 1 };
    }
    let td = curthread() as usize;
    let word = read_word(c);
    let owner = if word == MTX_DESTROYED {
        0
    } else {
        word & !MTX_FLAGMASK
    };
    if owner == td {
        let recursable = lo_flags(m) & LO_RECURSABLE != 0 || opts & MTX_RECURSE != 0;
        if !recursable {
            violation(format!(
                "_mtx_lock_sleep: recursed on non-recursive mutex {}{}",
                name_of(m),
                at(file, line)
            ));
        }
        // Counted as a recursion either way, so the module's two unlocks balance.
        // SAFETY: `m` is the module's live mutex.
        unsafe { (*lo_of(m)).lo_data += 1 };
        write_word(c, td | MTX_RECURSED);
        return;
    }
    let mut owner = owner;
    while owner != 0 && owner != td && smp::td_runs(owner) {
        // Another CPU's thread holds it: block until it is released.
        let name = name_of(m);
        if smp::mutex_wait(m as usize, &name, owner) == smp::Wake::Deadlock {
            break;
        }
        let w = read_word(c);
        owner = if w == MTX_DESTROYED {
            0
        } else {
            w & !MTX_FLAGMASK
        };
    }
    if owner == td {
        // Cannot happen (we were blocked), but never record a self-steal.
        return;
    }
    if owner != 0 {
        violation(format!(
            "{op}: mutex {} is held by thread {} while thread {} acquires it{} \
             (a thread was switched out holding a mutex; it would never be released)",
            name_of(m),
            tid_of(owner),
            tid_of(td),
            at(file, line)
        ));
        remove_held(owner, m);
        // SAFETY: `m` is the module's live mutex.
        unsafe { (*lo_of(m)).lo_data = 0 };
    }
    order_check(td, m);
    write_word(c, td);
    push_held(td, m);
}

fn do_unlock(c: *mut usize, file: *const c_char, line: c_int, spin: bool) {
    let m = mtx_of(c);
    let op = if spin {
        "mtx_unlock_spin"
    } else {
        "mtx_unlock"
    };
    if !check_usable(m, c, op, spin, file, line) {
        return;
    }
    if !spin && ineffective(m) {
        smp::preempt(smp::Ev::Point("mtx_unlock (fault: no exclusion)"));
        return;
    }
    let td = curthread() as usize;
    let word = read_word(c);
    let owner = if word == MTX_DESTROYED {
        0
    } else {
        word & !MTX_FLAGMASK
    };
    if owner != td {
        violation(format!("mutex {} not owned{}", name_of(m), at(file, line)));
        return;
    }
    // SAFETY: `m` is the module's live mutex.
    let rec = unsafe { (*lo_of(m)).lo_data };
    let released = rec == 0;
    if rec > 0 {
        // SAFETY: as above.
        unsafe { (*lo_of(m)).lo_data = rec - 1 };
        if rec == 1 {
            write_word(c, td);
        }
    } else {
        write_word(c, MTX_UNOWNED);
        remove_held(td, m);
        smp::mutex_released(m as usize);
    }
    if spin {
        // spinlock_exit()
        // SAFETY: curthread is a live thread object.
        unsafe {
            let t = curthread();
            if (*t).td_critnest == 0 {
                violation("spinlock_exit: td_critnest == 0");
            } else {
                (*t).td_critnest -= 1;
            }
        }
    }
    if released {
        // Lock release: another CPU may get in.
        smp::preempt(smp::Ev::Point("mtx_unlock"));
    }
}

// ---- exported kernel functions -------------------------------------------

unsafe extern "C" fn k_mtx_init(
    c: *mut usize,
    name: *const c_char,
    ty: *const c_char,
    opts: c_int,
) {
    do_init(c, name, ty, opts);
}

unsafe extern "C" fn k_mtx_destroy(c: *mut usize) {
    let m = mtx_of(c);
    if lo_flags(m) & LO_INITIALIZED == 0 {
        violation(format!("lock {m:p} is not initialized (mtx_destroy)"));
        return;
    }
    let td = curthread() as usize;
    let word = read_word(c);
    let owner = word & !MTX_FLAGMASK;
    if owner == td {
        // The kernel allows destroying a mutex the caller holds (not recursed).
        if word & MTX_RECURSED != 0 {
            violation(format!("mtx_destroy of recursed mutex {}", name_of(m)));
        }
        remove_held(td, m);
    } else if owner != 0 {
        violation(format!(
            "mtx_destroy of mutex {} held by another thread ({})",
            name_of(m),
            tid_of(owner)
        ));
        remove_held(owner, m);
    }
    write_word(c, MTX_DESTROYED);
    // SAFETY: `m` is the module's mutex; lock_destroy() clears LO_INITIALIZED.
    unsafe {
        (*lo_of(m)).lo_flags &= !LO_INITIALIZED;
        (*lo_of(m)).lo_data = 0;
    }
}

unsafe extern "C" fn k_mtx_lock_flags(
    c: *mut usize,
    opts: c_int,
    file: *const c_char,
    line: c_int,
) {
    do_lock(c, opts, file, line, false);
}

unsafe extern "C" fn k_mtx_unlock_flags(
    c: *mut usize,
    _opts: c_int,
    file: *const c_char,
    line: c_int,
) {
    do_unlock(c, file, line, false);
}

unsafe extern "C" fn k_mtx_lock_spin_flags(
    c: *mut usize,
    opts: c_int,
    file: *const c_char,
    line: c_int,
) {
    do_lock(c, opts, file, line, true);
}

unsafe extern "C" fn k_mtx_unlock_spin_flags(
    c: *mut usize,
    _opts: c_int,
    file: *const c_char,
    line: c_int,
) {
    do_unlock(c, file, line, true);
}

unsafe extern "C" fn k_mtx_trylock_flags(
    c: *mut usize,
    opts: c_int,
    file: *const c_char,
    line: c_int,
) -> c_int {
    let m = mtx_of(c);
    if !check_usable(m, c, "mtx_trylock", false, file, line) {
        return 0;
    }
    let td = curthread() as usize;
    let word = read_word(c);
    let owner = if word == MTX_DESTROYED {
        0
    } else {
        word & !MTX_FLAGMASK
    };
    if owner == td {
        if lo_flags(m) & LO_RECURSABLE != 0 || opts & MTX_RECURSE != 0 {
            // SAFETY: `m` is the module's live mutex.
            unsafe { (*lo_of(m)).lo_data += 1 };
            write_word(c, td | MTX_RECURSED);
            return 1;
        }
        return 0;
    }
    if owner != 0 {
        return 0;
    }
    write_word(c, td);
    push_held(td, m);
    1
}

unsafe extern "C" fn k_mtx_sysinit(arg: *const c_void) {
    if arg.is_null() {
        violation("mtx_sysinit(NULL)");
        return;
    }
    let ma = arg as *const mtx_args;
    // SAFETY: MTX_SYSINIT passes its static `struct mtx_args`.
    let (mp, desc, opts) = unsafe { ((*ma).ma_mtx as *mut mtx, (*ma).ma_desc, (*ma).ma_opts) };
    if mp.is_null() {
        violation("mtx_sysinit: NULL mutex");
        return;
    }
    // SAFETY: only computes the address of the lock word.
    let c = unsafe { std::ptr::addr_of_mut!((*mp).mtx_lock) }.cast::<usize>();
    do_init(c, desc, std::ptr::null(), opts);
}

// ---- Rust API ---------------------------------------------------------------

/// The name of mutex `m` (for reports).
pub(crate) fn mutex_name(m: *mut mtx) -> String {
    name_of(m)
}

/// Does the current thread own mutex `m`?
pub(crate) fn owned(m: *mut mtx) -> bool {
    // SAFETY: only computes the address of the lock word.
    let c = unsafe { std::ptr::addr_of_mut!((*m).mtx_lock) }.cast::<usize>();
    let w = read_word(c);
    w != MTX_DESTROYED && w & !MTX_FLAGMASK == curthread() as usize
}

/// Releases mutex `m` (owned by the current thread) for a sleep on it: no
/// preemption point, so the release and the sleep that follows are one
/// step for every other thread (msleep's atomicity).
pub(crate) fn release_for_sleep(m: *mut mtx) {
    // SAFETY: only computes the address of the lock word.
    let c = unsafe { std::ptr::addr_of_mut!((*m).mtx_lock) }.cast::<usize>();
    let td = curthread() as usize;
    if read_word(c) & MTX_RECURSED != 0 {
        violation(format!("sleeping on recursed mutex {}", name_of(m)));
    }
    // SAFETY: `m` is a live mutex owned by the caller.
    unsafe { (*lo_of(m)).lo_data = 0 };
    write_word(c, MTX_UNOWNED);
    remove_held(td, m);
    smp::mutex_released(m as usize);
}

/// Takes mutex `m` back after a sleep (blocking while another thread
/// that still runs holds it).
pub(crate) fn reacquire_after_sleep(m: *mut mtx) {
    // SAFETY: only computes the address of the lock word.
    let c = unsafe { std::ptr::addr_of_mut!((*m).mtx_lock) }.cast::<usize>();
    let td = curthread() as usize;
    loop {
        let w = read_word(c);
        let owner = if w == MTX_DESTROYED {
            0
        } else {
            w & !MTX_FLAGMASK
        };
        if owner == 0 || owner == td || !smp::td_runs(owner) {
            break;
        }
        if smp::mutex_wait(m as usize, &name_of(m), owner) == smp::Wake::Deadlock {
            break;
        }
    }
    write_word(c, td);
    if with_state(|s| s.info.contains_key(&(m as usize))) {
        push_held(td, m);
    }
}

/// Notes that the current thread acquires (and at once releases) a lock of
/// the netgraph core, `key` (e.g. "netgraph topology"): it is checked
/// against the locks held, as WITNESS would check the core's mutex.
pub fn note_acquire(key: &str) {
    let td = curthread() as usize;
    let spins: Vec<String> = with_state(|s| {
        let held: Vec<usize> = s.held.get(&td).cloned().unwrap_or_default();
        if held.is_empty() {
            return Vec::new();
        }
        order_check_key(s, td, 0, key);
        held.iter()
            .filter(|&&h| (lo_flags(h as *mut mtx) >> LO_CLASSSHIFT) & 0xf == CLASS_SPIN)
            .map(|&h| s.info.get(&h).map_or(String::new(), |i| i.name.clone()))
            .collect()
    });
    for sp in spins {
        violation(format!(
            "acquiring sleep mutex \"{key}\" with spin mutex \"{sp}\" held"
        ));
    }
}

/// Number of mutexes the current thread holds (a recursed mutex counts once).
pub fn held_count() -> usize {
    let td = curthread() as usize;
    with_state(|s| s.held.get(&td).map_or(0, Vec::len))
}

/// Names of the mutexes the current thread holds, in acquisition order.
pub fn held_names() -> Vec<String> {
    let td = curthread() as usize;
    let held: Vec<usize> = with_state(|s| s.held.get(&td).cloned().unwrap_or_default());
    held.into_iter().map(|m| name_of(m as *mut mtx)).collect()
}

/// Reports a violation if the current thread may not sleep here: it holds a
/// mutex (`what: sleeping with mutex X held`), is in a critical section or
/// inside an epoch section.
pub fn assert_may_sleep(what: &str) {
    assert_no_locks_for_sleep(what);
    crate::kern::epoch::assert_not_in_epoch(what);
}

/// [`assert_may_sleep`] without the epoch check: for calls that sleep
/// inside an epoch section only in cases checked separately (`soclose`
/// sleeps only to linger).
pub fn assert_no_locks_for_sleep(what: &str) {
    for name in held_names() {
        violation(format!("{what}: sleeping with mutex {name} held"));
    }
    let n = critnest(curthread());
    if n != 0 {
        violation(format!(
            "{what}: sleeping inside a critical section (td_critnest = {n})"
        ));
    }
}

/// Reports a violation for every mutex the current thread still holds (for
/// the end of a module call or scenario step).
pub fn check_none_held(context: &str) {
    for name in held_names() {
        violation(format!("{context}: mutex {name} still held"));
    }
}

/// Exports the mutex functions.
pub fn register(ex: &mut Exports) {
    ex.func("_mtx_init", k_mtx_init as *const () as usize);
    ex.func("_mtx_destroy", k_mtx_destroy as *const () as usize);
    ex.func("__mtx_lock_flags", k_mtx_lock_flags as *const () as usize);
    ex.func(
        "__mtx_unlock_flags",
        k_mtx_unlock_flags as *const () as usize,
    );
    ex.func(
        "__mtx_lock_spin_flags",
        k_mtx_lock_spin_flags as *const () as usize,
    );
    ex.func(
        "__mtx_unlock_spin_flags",
        k_mtx_unlock_spin_flags as *const () as usize,
    );
    ex.func(
        "_mtx_trylock_flags_",
        k_mtx_trylock_flags as *const () as usize,
    );
    ex.func("mtx_sysinit", k_mtx_sysinit as *const () as usize);
}
