//! malloc(9): `malloc`, `free`, `zfree`, `realloc`, `reallocf`,
//! `mallocarray`, `malloc_aligned`, `malloc_usable_size`, `malloc_init`,
//! `malloc_uninit`, and the kernel's own malloc types (`M_TEMP`, `M_DEVBUF`,
//! `M_SONAME`, `M_NETGRAPH`, ...), with strict accounting.
//!
//! Every block is recorded in a side table with its malloc type, size, the
//! calling site (the raw return address into module code; `fault::resolve`
//! turns it into a symbol once the loader registers a resolver) and a serial
//! number. Each block is followed by a red zone that must stay intact. Freed
//! blocks are filled with FreeBSD's trash pattern `0xdeadc0de` and kept in a
//! quarantine (never reused), so a write after free is found when the block
//! leaves the quarantine or at [`check_all`]. Fresh blocks without `M_ZERO`
//! hold the same pattern (as on an INVARIANTS kernel), so reads of
//! uninitialised memory are visible.
//!
//! Contract checks: exactly one of `M_NOWAIT`/`M_WAITOK` (violation);
//! `M_WAITOK` never returns NULL and must be allowed to sleep; `M_NOWAIT`
//! consults the fault plan; a malloc type must be initialised (`malloc_init`)
//! and not yet uninitialised; `free` of an address that malloc did not hand
//! out panics like FreeBSD; `free(NULL)` is a no-op; a type mismatch, double
//! free, red-zone overwrite or write after free is a violation; blocks still
//! live at `malloc_uninit` of their type are reported as leaks.

use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{c_int, c_void, CStr};
use std::sync::{Mutex, MutexGuard};

use fbsd_sys::{malloc_type, M_NOWAIT, M_VERSION, M_WAITOK, M_ZERO};

use super::entry::kernel_functions;
use super::fault::{self, Caller, Site};
use super::{kernel_panic, violation};
use crate::exports::Exports;

/// FreeBSD's trash pattern (`uma_junk`), written into fresh and freed memory.
pub const POISON: u32 = 0xdead_c0de;
/// Bytes of red zone after every block.
pub const REDZONE: usize = 16;
/// Fill byte of the red zone.
pub const REDZONE_BYTE: u8 = 0xbd;
/// Default quarantine size (bytes of freed blocks kept before the oldest are
/// checked and returned to the host).
pub const DEFAULT_QUARANTINE: usize = 64 << 20;
/// Allocations above this size fail (`M_NOWAIT`) or panic (`M_WAITOK`).
pub const MAX_ALLOC: usize = 1 << 30;
const PAGE: usize = fbsd_sys::PAGE_SIZE as usize;

/// Short description of the tag malloc type (`M_PACKET_TAGS`).
pub const TAG_TYPE: &str = fault::TAG_TYPE;

/// The kernel's malloc types the harness defines: (symbol if exported, short description).
const HARNESS_TYPES: &[(Option<&str>, &str)] = &[
    (Some("M_TEMP"), "temp"),
    (Some("M_DEVBUF"), "devbuf"),
    (Some("M_CACHE"), "cache"),
    (Some("M_IOV"), "iov"),
    (Some("M_SONAME"), "soname"),
    (Some("M_PCB"), "pcb"),
    (Some("M_ACCF"), "accf"),
    (Some("M_NETGRAPH"), "netgraph"),
    (Some("M_NETGRAPH_MSG"), "netgraph_msg"),
    // Static in FreeBSD (ng_base.c, uipc_mbuf2.c): not exported to modules.
    (None, "netgraph_hook"),
    (None, "netgraph_node"),
    (None, "netgraph_item"),
    (None, TAG_TYPE),
];

// ---------------------------------------------------------------------------
// Poison helpers (shared with the mbuf allocator)

/// Fills `len` bytes at `p` with the trash pattern (aligned to `p`).
///
/// # Safety
/// `p` must be valid for `len` bytes of writes.
pub unsafe fn fill_poison(p: *mut u8, len: usize) {
    let pat = POISON.to_ne_bytes();
    for i in 0..len {
        // SAFETY: `i < len` and the caller guarantees `len` writable bytes.
        unsafe { *p.add(i) = pat[i % 4] };
    }
}

/// Compares `len` bytes at `p` with the trash pattern (as written by
/// [`fill_poison`] at `p - phase`); returns (first differing offset, number of
/// differing bytes) if any byte changed.
///
/// # Safety
/// `p` must be valid for `len` bytes of reads.
pub unsafe fn poison_damage(p: *const u8, len: usize, phase: usize) -> Option<(usize, usize)> {
    let pat = POISON.to_ne_bytes();
    let mut first = None;
    let mut count = 0;
    for i in 0..len {
        // SAFETY: `i < len` and the caller guarantees `len` readable bytes.
        let b = unsafe { *p.add(i) };
        if b != pat[(i + phase) % 4] {
            first.get_or_insert(i);
            count += 1;
        }
    }
    first.map(|f| (f, count))
}

/// The may-sleep check of `M_WAITOK` allocations (rule H14).
pub(crate) fn assert_may_sleep(what: &str) {
    crate::kern::lock::assert_may_sleep(what);
}

// ---------------------------------------------------------------------------
// State

struct TypeInfo {
    name: String,
    initialised: bool,
}

#[derive(Clone)]
struct Block {
    size: usize,
    align: usize,
    ty: usize,
    ty_name: String,
    serial: u64,
    site: Caller,
    reported: bool,
}

struct Freed {
    block: Block,
    free_site: Caller,
    reported: bool,
}

struct State {
    types: HashMap<usize, TypeInfo>,
    harness: Vec<(Option<&'static str>, &'static str, usize)>,
    /// Head of the `ks_next` list (FreeBSD's `kmemstatistics`).
    kmemstatistics: usize,
    live: HashMap<usize, Block>,
    quarantine: HashMap<usize, Freed>,
    order: VecDeque<usize>,
    qbytes: usize,
    qlimit: usize,
    serial: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut g = lock();
    let s = g.get_or_insert_with(State::new);
    f(s)
}

impl State {
    fn new() -> State {
        let mut s = State {
            types: HashMap::new(),
            harness: Vec::new(),
            kmemstatistics: 0,
            live: HashMap::new(),
            quarantine: HashMap::new(),
            order: VecDeque::new(),
            qbytes: 0,
            qlimit: DEFAULT_QUARANTINE,
            serial: 0,
        };
        for &(sym, name) in HARNESS_TYPES {
            let p = crate::arena::alloc_obj::<malloc_type>();
            // SAFETY: `p` is a fresh, zeroed arena object owned by the harness.
            unsafe {
                (*p).ks_version = M_VERSION.into();
                (*p).ks_shortdesc = crate::arena::alloc_cstr(name);
                (*p).ks_next = s.kmemstatistics as *mut malloc_type;
            }
            s.kmemstatistics = p as usize;
            s.types.insert(
                p as usize,
                TypeInfo {
                    name: name.to_string(),
                    initialised: true,
                },
            );
            s.harness.push((sym, name, p as usize));
        }
        s
    }

    fn quarantine_block(&mut self, ptr: usize, block: Block, free_site: Caller) -> Vec<Report> {
        self.qbytes += block.size;
        self.order.push_back(ptr);
        self.quarantine.insert(
            ptr,
            Freed {
                block,
                free_site,
                reported: false,
            },
        );
        let mut out = Vec::new();
        while self.qbytes > self.qlimit {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            let Some(f) = self.quarantine.remove(&old) else {
                continue;
            };
            self.qbytes -= f.block.size;
            if !f.reported {
                out.extend(check_freed(old, &f));
            }
            // SAFETY: the block was allocated with exactly this layout and is
            // no longer referenced by any table.
            unsafe { std::alloc::dealloc(old as *mut u8, layout(f.block.size, f.block.align)) };
        }
        out
    }
}

/// A finding to report once the state lock is released (formatting a
/// `Caller` may call the loader's resolver).
enum Report {
    Damage {
        ptr: usize,
        block: Block,
        free_site: Caller,
        off: usize,
        count: usize,
    },
    Overflow {
        ptr: usize,
        block: Block,
        count: usize,
        when: &'static str,
        freed: bool,
    },
}

impl Report {
    fn message(&self) -> String {
        match self {
            Report::Damage { ptr, block, free_site, off, count } => format!(
                "use after free: {count} byte(s) of the {}-byte block {ptr:#x} (type {}, #{}) were \
                 written after it was freed (first at offset {off}); allocated at {}, freed at {free_site}",
                block.size, block.ty_name, block.serial, block.site
            ),
            Report::Overflow { ptr, block, count, when, freed } => format!(
                "buffer overflow: {count} byte(s) written past the end of the {}-byte block {ptr:#x} \
                 (type {}, #{}) allocated at {}; found {when}{}",
                block.size,
                block.ty_name,
                block.serial,
                block.site,
                if *freed { " (the block is freed)" } else { "" }
            ),
        }
    }
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size + REDZONE, align).expect("malloc layout")
}

/// Alignment FreeBSD's malloc gives a block of `size` bytes (a power-of-two
/// zone item, at most a page; large allocations are page aligned).
fn natural_align(size: usize) -> usize {
    if size > 65536 {
        PAGE
    } else {
        size.max(16).next_power_of_two().min(PAGE)
    }
}

fn redzone_damage(ptr: usize, size: usize) -> usize {
    let p = (ptr + size) as *const u8;
    // SAFETY: every block is followed by REDZONE bytes of its own allocation.
    (0..REDZONE)
        .filter(|&i| unsafe { *p.add(i) } != REDZONE_BYTE)
        .count()
}

fn check_freed(ptr: usize, f: &Freed) -> Vec<Report> {
    let mut out = Vec::new();
    // SAFETY: quarantined blocks stay allocated (size + red zone) until dealloc.
    if let Some((off, count)) = unsafe { poison_damage(ptr as *const u8, f.block.size, 0) } {
        out.push(Report::Damage {
            ptr,
            block: f.block.clone(),
            free_site: f.free_site,
            off,
            count,
        });
    }
    let rz = redzone_damage(ptr, f.block.size);
    if rz != 0 {
        out.push(Report::Overflow {
            ptr,
            block: f.block.clone(),
            count: rz,
            when: "in quarantine",
            freed: true,
        });
    }
    out
}

fn report_all(reports: Vec<Report>) -> Vec<String> {
    let msgs: Vec<String> = reports.iter().map(Report::message).collect();
    for m in &msgs {
        violation(m.clone());
    }
    msgs
}

/// Reads a malloc type's short description.
///
/// # Safety
/// `mtp` must be NULL or point at a readable `struct malloc_type` whose
/// `ks_shortdesc` is NULL or a C string.
unsafe fn read_name(mtp: *const malloc_type) -> String {
    if mtp.is_null() {
        return "(null)".into();
    }
    // SAFETY: per the function contract.
    unsafe {
        let d = (*mtp).ks_shortdesc;
        if d.is_null() {
            format!("{mtp:p}")
        } else {
            CStr::from_ptr(d).to_string_lossy().into_owned()
        }
    }
}

/// The short description of malloc type `ty` as recorded by `malloc_init`
/// (or the harness), else its address.
pub fn type_name(ty: *const malloc_type) -> String {
    with(|s| s.types.get(&(ty as usize)).map(|t| t.name.clone()))
        .unwrap_or_else(|| format!("{ty:p}"))
}

// ---------------------------------------------------------------------------
// Core allocator

/// Allocates like `malloc(9)`. `fault_site` overrides the site offered to the
/// fault plan (`Site::Malloc(type)` by default); `what` names the entry point
/// in messages.
pub(crate) fn alloc(
    size: usize,
    mtp: *mut malloc_type,
    flags: c_int,
    align: usize,
    caller: Caller,
    fault_site: Option<Site>,
    what: &str,
) -> *mut u8 {
    if mtp.is_null() {
        kernel_panic(&format!(
            "{what}({size}, NULL, {flags:#x}) from {caller}: NULL malloc type \
             (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    let ty = mtp as usize;
    let known = with(|s| s.types.get(&ty).map(|t| (t.name.clone(), t.initialised)));
    let name = match known {
        Some((n, true)) => n,
        Some((n, false)) => {
            violation(format!(
                "{what}({size}, {n}) from {caller}: malloc type {n} is used after malloc_uninit"
            ));
            n
        }
        None => {
            // SAFETY: a non-NULL malloc type pointer from the caller.
            let n = unsafe { read_name(mtp) };
            violation(format!(
                "{what}({size}, {n}) from {caller}: malloc type {n} ({mtp:p}) was never \
                 initialised by malloc_init (MALLOC_DEFINE's SYSINIT)"
            ));
            n
        }
    };
    let how = flags & (M_NOWAIT | M_WAITOK) as c_int;
    let mut nowait = how == M_NOWAIT as c_int;
    if how != M_NOWAIT as c_int && how != M_WAITOK as c_int {
        violation(format!(
            "{what}({size}, {name}, {flags:#x}) from {caller}: exactly one of M_NOWAIT and \
             M_WAITOK must be given (treated as M_WAITOK, as an INVARIANTS kernel does)"
        ));
        nowait = false;
    }
    if nowait {
        let site = fault_site.unwrap_or(Site::Malloc(&name));
        if fault::should_fail_at(&site, caller) {
            return std::ptr::null_mut();
        }
    } else {
        assert_may_sleep(what);
    }
    if size > MAX_ALLOC {
        if nowait {
            return std::ptr::null_mut();
        }
        kernel_panic(&format!(
            "{what}({size}, {name}, M_WAITOK) from {caller}: kmem cannot satisfy the request"
        ));
    }
    let align = align.max(natural_align(size));
    let lay = layout(size, align);
    // SAFETY: the layout has a non-zero size (the red zone).
    let p = unsafe { std::alloc::alloc(lay) };
    if p.is_null() {
        std::alloc::handle_alloc_error(lay);
    }
    // SAFETY: `p` has `size + REDZONE` writable bytes.
    unsafe {
        if flags & M_ZERO as c_int != 0 {
            std::ptr::write_bytes(p, 0, size);
        } else {
            fill_poison(p, size);
        }
        std::ptr::write_bytes(p.add(size), REDZONE_BYTE, REDZONE);
    }
    with(|s| {
        s.serial += 1;
        let b = Block {
            size,
            align,
            ty,
            ty_name: name,
            serial: s.serial,
            site: caller,
            reported: false,
        };
        s.live.insert(p as usize, b);
    });
    let kind = if fault_site == Some(Site::Tag) {
        super::probe::Kind::Tag
    } else {
        super::probe::Kind::Malloc
    };
    super::probe::alloc(kind, size, caller);
    p
}

enum FreeOutcome {
    Ok {
        block: Block,
        reports: Vec<Report>,
        type_ok: bool,
        type_live: bool,
    },
    Double {
        block: Block,
        free_site: Caller,
    },
    Unknown {
        inside: Option<(usize, Block, bool)>,
    },
}

/// Frees like `free(9)` (`zero`: like `zfree(9)`).
pub(crate) fn release(
    addr: *mut c_void,
    mtp: *mut malloc_type,
    caller: Caller,
    what: &str,
    zero: bool,
) {
    if addr.is_null() {
        return;
    }
    if mtp.is_null() {
        kernel_panic(&format!(
            "{what}({addr:p}, NULL) from {caller}: NULL malloc type \
             (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    let p = addr as usize;
    let ty = mtp as usize;
    let outcome = with(|s| {
        if let Some(block) = s.live.remove(&p) {
            let type_live = s.types.get(&ty).is_some_and(|t| t.initialised);
            let mut reports = Vec::new();
            let rz = redzone_damage(p, block.size);
            if rz != 0 {
                reports.push(Report::Overflow {
                    ptr: p,
                    block: block.clone(),
                    count: rz,
                    when: "at free",
                    freed: false,
                });
                // Repair so the quarantine check does not report it again.
                // SAFETY: the red zone belongs to this block's allocation.
                unsafe {
                    std::ptr::write_bytes((p + block.size) as *mut u8, REDZONE_BYTE, REDZONE)
                };
            }
            // SAFETY: the block (size bytes) is ours until dealloc; zfree's
            // zeroing is immediately replaced by the trash pattern.
            unsafe {
                if zero {
                    std::ptr::write_bytes(p as *mut u8, 0, block.size);
                }
                fill_poison(p as *mut u8, block.size);
            }
            let type_ok = block.ty == ty;
            reports.extend(s.quarantine_block(p, block.clone(), caller));
            FreeOutcome::Ok {
                block,
                reports,
                type_ok,
                type_live,
            }
        } else if let Some(f) = s.quarantine.get(&p) {
            FreeOutcome::Double {
                block: f.block.clone(),
                free_site: f.free_site,
            }
        } else {
            let inside = s
                .live
                .iter()
                .map(|(&a, b)| (a, b, false))
                .chain(s.quarantine.iter().map(|(&a, f)| (a, &f.block, true)))
                .find(|(a, b, _)| p > *a && p < *a + b.size.max(1))
                .map(|(a, b, q)| (a, b.clone(), q));
            FreeOutcome::Unknown { inside }
        }
    });
    match outcome {
        FreeOutcome::Ok {
            block,
            reports,
            type_ok,
            type_live,
        } => {
            let fname = type_name(mtp);
            if !type_ok {
                violation(format!(
                    "{what}({addr:p}, {fname}) from {caller}: the {}-byte block was allocated with \
                     malloc type {} at {} (per-type statistics would be corrupted)",
                    block.size, block.ty_name, block.site
                ));
            } else if !type_live {
                violation(format!(
                    "{what}({addr:p}, {fname}) from {caller}: malloc type {fname} is not initialised \
                     (freed after malloc_uninit?)"
                ));
            }
            report_all(reports);
        }
        FreeOutcome::Double { block, free_site } => {
            violation(format!(
                "double free: {what}({addr:p}, {}) from {caller}: the {}-byte block (type {}, #{}) \
                 allocated at {} was already freed at {free_site}",
                type_name(mtp),
                block.size,
                block.ty_name,
                block.serial,
                block.site
            ));
        }
        FreeOutcome::Unknown { inside } => {
            if let Some((a, b, q)) = inside {
                eprintln!(
                    "harness: {what}({addr:p}) from {caller}: address is {} bytes inside the {}{}-byte \
                     block {a:#x} of type {} allocated at {}",
                    p - a,
                    if q { "freed " } else { "" },
                    b.size,
                    b.ty_name,
                    b.site
                );
            } else {
                eprintln!(
                    "harness: {what}({addr:p}) from {caller}: address was never returned by malloc"
                );
            }
            kernel_panic(&format!(
                "free: address {addr:p}({:#x}) has not been allocated.",
                p & !(PAGE - 1)
            ));
        }
    }
}

fn live_size(p: usize) -> Option<usize> {
    with(|s| s.live.get(&p).map(|b| b.size))
}

// ---------------------------------------------------------------------------
// Exported kernel functions

fn realloc_common(
    addr: *mut c_void,
    size: usize,
    mtp: *mut malloc_type,
    flags: c_int,
    caller: Caller,
    what: &str,
) -> *mut c_void {
    if addr.is_null() {
        return alloc(size, mtp, flags, 1, caller, None, what).cast();
    }
    let Some(old) = live_size(addr as usize) else {
        eprintln!("harness: {what}({addr:p}, {size}) from {caller}: not a live malloc block");
        kernel_panic(&format!("realloc: address {addr:p} out of range"));
    };
    // The harness always moves the block, so a stale pointer to the old one
    // is caught (FreeBSD may keep it in place; callers must not rely on that).
    let new = alloc(size, mtp, flags, 1, caller, None, what);
    if new.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: both blocks are live and hold at least min(old, size) bytes.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, new, old.min(size)) };
    release(addr, mtp, caller, what, false);
    new.cast()
}

struct LeakItem {
    ptr: usize,
    size: usize,
    serial: u64,
    site: Caller,
}

fn leak_message(name: &str, items: &[LeakItem]) -> String {
    let bytes: usize = items.iter().map(|i| i.size).sum();
    let mut msg = format!(
        "leak: {bytes} bytes in {} allocations of type {name}",
        items.len()
    );
    for i in items.iter().take(32) {
        msg.push_str(&format!(
            "\n    {} bytes at {:#x} (#{}) allocated at {}",
            i.size, i.ptr, i.serial, i.site
        ));
    }
    if items.len() > 32 {
        msg.push_str(&format!("\n    ... and {} more", items.len() - 32));
    }
    msg
}

fn take_leaks(s: &mut State, filter: impl Fn(&Block) -> bool) -> BTreeMap<String, Vec<LeakItem>> {
    let mut out: BTreeMap<String, Vec<LeakItem>> = BTreeMap::new();
    for (&ptr, b) in s.live.iter_mut() {
        if b.reported || !filter(b) {
            continue;
        }
        b.reported = true;
        out.entry(b.ty_name.clone()).or_default().push(LeakItem {
            ptr,
            size: b.size,
            serial: b.serial,
            site: b.site,
        });
    }
    for v in out.values_mut() {
        v.sort_by_key(|i| i.serial);
    }
    out
}

kernel_functions! {
    /// `void *malloc(size_t size, struct malloc_type *type, int flags)`
    fn malloc(size: usize, mtp: *mut malloc_type, flags: c_int) -> *mut c_void [c] {
        alloc(size, mtp, flags, 1, c, None, "malloc").cast()
    }

    /// `void free(void *addr, struct malloc_type *type)`
    fn free(addr: *mut c_void, mtp: *mut malloc_type) [c] {
        release(addr, mtp, c, "free", false);
    }

    /// `void zfree(void *addr, struct malloc_type *type)`
    fn zfree(addr: *mut c_void, mtp: *mut malloc_type) [c] {
        release(addr, mtp, c, "zfree", true);
    }

    /// `void *realloc(void *addr, size_t size, struct malloc_type *type, int flags)`
    fn realloc(
        addr: *mut c_void,
        size: usize,
        mtp: *mut malloc_type,
        flags: c_int,
    ) -> *mut c_void [c] {
        realloc_common(addr, size, mtp, flags, c, "realloc")
    }

    /// `void *reallocf(void *addr, size_t size, struct malloc_type *type, int flags)`
    fn reallocf(
        addr: *mut c_void,
        size: usize,
        mtp: *mut malloc_type,
        flags: c_int,
    ) -> *mut c_void [c] {
        let caller = c;
        let new = realloc_common(addr, size, mtp, flags, caller, "reallocf");
        if new.is_null() {
            release(addr, mtp, caller, "reallocf", false);
        }
        new
    }

    /// `void *mallocarray(size_t nmemb, size_t size, struct malloc_type *type, int flags)`
    fn mallocarray(
        nmemb: usize,
        size: usize,
        mtp: *mut malloc_type,
        flags: c_int,
    ) -> *mut c_void [c] {
        let Some(total) = nmemb.checked_mul(size) else {
            kernel_panic(&format!("mallocarray: {nmemb} * {size} overflowed"));
        };
        alloc(total, mtp, flags, 1, c, None, "mallocarray").cast()
    }

    /// `void *malloc_aligned(size_t size, size_t align, struct malloc_type *type, int flags)`
    fn malloc_aligned(
        size: usize,
        align: usize,
        mtp: *mut malloc_type,
        flags: c_int,
    ) -> *mut c_void [c] {
        let caller = c;
        let mut a = align;
        if !align.is_power_of_two() || align > PAGE {
            violation(format!(
                "malloc_aligned({size}, {align:#x}) from {caller}: alignment must be a power of two \
                 not above PAGE_SIZE"
            ));
            a = if align.is_power_of_two() {
                PAGE
            } else {
                align.next_power_of_two().min(PAGE)
            };
        }
        alloc(size, mtp, flags, a, caller, None, "malloc_aligned").cast()
    }

    /// `size_t malloc_usable_size(const void *addr)`
    fn malloc_usable_size(addr: *const c_void) -> usize [c] {
        if addr.is_null() {
            return 0;
        }
        match live_size(addr as usize) {
            Some(n) => n,
            None => {
                eprintln!(
                    "harness: malloc_usable_size({addr:p}) from {}",
                    c
                );
                kernel_panic(&format!(
                    "malloc_usable_size: address {addr:p}({:#x}) is not allocated.",
                    addr as usize & !(PAGE - 1)
                ))
            }
        }
    }

    /// `void malloc_init(void *data)` (MALLOC_DEFINE's SYSINIT)
    fn malloc_init(data: *mut c_void) [c] {
        let mtp = data.cast::<malloc_type>();
        if mtp.is_null() {
            kernel_panic(
                "malloc_init: NULL malloc type (Fatal trap 12: page fault while in kernel mode)",
            );
        }
        // SAFETY: MALLOC_DEFINE hands its writable `struct malloc_type` to malloc_init.
        let (version, name) = unsafe { ((*mtp).ks_version, read_name(mtp)) };
        if version != u64::from(M_VERSION) {
            kernel_panic(&format!(
                "malloc_init: type {name} with unsupported version {version}"
            ));
        }
        let again = with(|s| {
            let ty = mtp as usize;
            if s.types.get(&ty).is_some_and(|t| t.initialised) {
                return true;
            }
            // SAFETY: as above; the kernel links the type into its list.
            unsafe { (*mtp).ks_next = s.kmemstatistics as *mut malloc_type };
            s.kmemstatistics = ty;
            s.types.insert(
                ty,
                TypeInfo {
                    name: name.clone(),
                    initialised: true,
                },
            );
            false
        });
        if again {
            violation(format!(
                "malloc_init({name}) from {}: type is already initialised (would corrupt the type list)",
                c
            ));
        }
    }

    /// `void malloc_uninit(void *data)` (MALLOC_DEFINE's SYSUNINIT)
    fn malloc_uninit(data: *mut c_void) [c] {
        let mtp = data.cast::<malloc_type>();
        if mtp.is_null() {
            kernel_panic(
                "malloc_uninit: NULL malloc type (Fatal trap 12: page fault while in kernel mode)",
            );
        }
        // SAFETY: SYSUNINIT hands the module's `struct malloc_type`, still mapped.
        let (version, name) = unsafe { ((*mtp).ks_version, read_name(mtp)) };
        if version != u64::from(M_VERSION) {
            violation(format!(
                "malloc_uninit({name}): bad malloc type version {version}"
            ));
        }
        let ty = mtp as usize;
        let res = with(|s| {
            if !s.types.get(&ty).is_some_and(|t| t.initialised) {
                return None;
            }
            // Unlink from the ks_next list.
            if s.kmemstatistics == ty {
                // SAFETY: `mtp` is an initialised, linked type.
                s.kmemstatistics = unsafe { (*mtp).ks_next } as usize;
            } else {
                let mut t = s.kmemstatistics as *mut malloc_type;
                while !t.is_null() {
                    // SAFETY: every element of the list is an initialised type
                    // whose memory is still mapped.
                    unsafe {
                        if (*t).ks_next as usize == ty {
                            (*t).ks_next = (*mtp).ks_next;
                            break;
                        }
                        t = (*t).ks_next;
                    }
                }
            }
            if let Some(t) = s.types.get_mut(&ty) {
                t.initialised = false;
            }
            Some(take_leaks(s, |b| b.ty == ty))
        });
        let Some(leaks) = res else {
            violation(format!(
                "malloc_uninit({name}) from {}: type '{name}' not found (never initialised or \
                 uninitialised twice)",
                c
            ));
            return;
        };
        for (tname, items) in leaks {
            let bytes: usize = items.iter().map(|i| i.size).sum();
            eprintln!(
                "Warning: memory type {tname} leaked memory on destroy ({} allocations, {bytes} bytes leaked).",
                items.len()
            );
            violation(leak_message(&tname, &items));
        }
    }
}

/// Exports malloc(9) and the kernel's malloc types.
pub fn register(ex: &mut Exports) {
    abi::register(ex);
    let types = with(|s| s.harness.clone());
    for (sym, _, p) in types {
        if let Some(sym) = sym {
            ex.data(sym, p);
        }
    }
}

// ---------------------------------------------------------------------------
// Rust API

/// `malloc(size, ty, flags)` for harness code (the caller's location is the
/// recorded site).
#[track_caller]
pub fn kmalloc(size: usize, ty: *mut malloc_type, flags: i32) -> *mut u8 {
    alloc(size, ty, flags, 1, Caller::here(), None, "malloc")
}

/// `free(p, ty)` for harness code.
#[track_caller]
pub fn kfree(p: *mut u8, ty: *mut malloc_type) {
    release(p.cast(), ty, Caller::here(), "free", false);
}

/// The harness-defined malloc type with short description `name` (`"temp"`,
/// `"devbuf"`, `"soname"`, `"pcb"`, `"netgraph"`, `"netgraph_msg"`,
/// `"netgraph_hook"`, `"netgraph_node"`, `"netgraph_item"`, `"mbuf_tag"`, ...).
/// Panics on an unknown name.
pub fn harness_type(name: &str) -> *mut malloc_type {
    let found = with(|s| s.harness.iter().find(|(_, n, _)| *n == name).map(|t| t.2));
    match found {
        Some(p) => p as *mut malloc_type,
        None => {
            let known: Vec<&str> = HARNESS_TYPES.iter().map(|t| t.1).collect();
            panic!("harness: no harness malloc type {name:?} (known: {known:?})")
        }
    }
}

/// Number of live blocks of type `ty`.
pub fn live(ty: *mut malloc_type) -> usize {
    with(|s| s.live.values().filter(|b| b.ty == ty as usize).count())
}

/// Bytes in live blocks of type `ty`.
pub fn live_bytes(ty: *mut malloc_type) -> usize {
    with(|s| {
        s.live
            .values()
            .filter(|b| b.ty == ty as usize)
            .map(|b| b.size)
            .sum()
    })
}

/// Number of live blocks of every type.
pub fn live_total() -> usize {
    with(|s| s.live.len())
}

/// True if `p` is the start of a live block.
pub fn is_live(p: *const u8) -> bool {
    with(|s| s.live.contains_key(&(p as usize)))
}

/// True if `p` is the start of a freed (quarantined) block.
pub fn is_freed(p: *const u8) -> bool {
    with(|s| s.quarantine.contains_key(&(p as usize)))
}

/// The freed (quarantined) block containing `p`, if any: (start, type
/// name). A linear search, for diagnostics.
pub fn freed_block_containing(p: *const u8) -> Option<(usize, String)> {
    let a = p as usize;
    with(|s| {
        s.quarantine
            .iter()
            .find(|(&b, f)| a >= b && a < b + f.block.size)
            .map(|(&b, f)| (b, f.block.ty_name.clone()))
    })
}

/// (size, type name) of the live block starting at `p`.
pub fn block_info(p: *const u8) -> Option<(usize, String)> {
    with(|s| {
        s.live
            .get(&(p as usize))
            .map(|b| (b.size, b.ty_name.clone()))
    })
}

/// Sets the quarantine size in bytes (0: freed blocks are checked and
/// released at once).
pub fn set_quarantine_limit(bytes: usize) {
    let reports = with(|s| {
        s.qlimit = bytes;
        let mut out = Vec::new();
        while s.qbytes > s.qlimit {
            let Some(old) = s.order.pop_front() else {
                break;
            };
            let Some(f) = s.quarantine.remove(&old) else {
                continue;
            };
            s.qbytes -= f.block.size;
            if !f.reported {
                out.extend(check_freed(old, &f));
            }
            // SAFETY: allocated with this layout; no table references it now.
            unsafe { std::alloc::dealloc(old as *mut u8, layout(f.block.size, f.block.align)) };
        }
        out
    });
    report_all(reports);
}

/// Checks everything at the end of a scenario: every block still live (not
/// yet reported, e.g. by `malloc_uninit`) is a leak, every quarantined block
/// must still hold the trash pattern, every red zone must be intact. Each
/// finding is recorded as a violation and returned.
pub fn check_all() -> Vec<String> {
    let (leaks, reports) = with(|s| {
        let leaks = take_leaks(s, |_| true);
        let mut reports = Vec::new();
        for (&p, b) in s.live.iter() {
            let rz = redzone_damage(p, b.size);
            if rz != 0 {
                reports.push(Report::Overflow {
                    ptr: p,
                    block: b.clone(),
                    count: rz,
                    when: "at the end of the scenario",
                    freed: false,
                });
                // SAFETY: the red zone belongs to this live block's allocation.
                unsafe { std::ptr::write_bytes((p + b.size) as *mut u8, REDZONE_BYTE, REDZONE) };
            }
        }
        for (&p, f) in s.quarantine.iter_mut() {
            if f.reported {
                continue;
            }
            let r = check_freed(p, f);
            if !r.is_empty() {
                f.reported = true;
                reports.extend(r);
            }
        }
        (leaks, reports)
    });
    let mut msgs = Vec::new();
    for (name, items) in leaks {
        let m = leak_message(&name, &items);
        violation(m.clone());
        msgs.push(m);
    }
    msgs.extend(report_all(reports));
    msgs
}
