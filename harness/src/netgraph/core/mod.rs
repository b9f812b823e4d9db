//! The netgraph framework core (what `netgraph.ko` / ng_base.c provides),
//! reimplemented from docs/netgraph-model.md §1–§6 and §8–§12.
//!
//! Node, hook and item structures are the real FreeBSD layouts from
//! `fbsd_sys`, so loaded modules read and write their fields inline. The core
//! keeps its own registries beside them (live/freed objects, per-node input
//! queues, the work list) to check the §11 invariants: freed nodes, hooks and
//! items are poisoned and quarantined (never reused), so a double free or use
//! after free is reported instead of silently working.
//!
//! All state is per OS thread (the harness runs one scenario on one thread;
//! tests may run several graphs in parallel threads). No state borrow is ever
//! held while module code runs.
//!
//! Files: `mod.rs` state, types, nodes, names, IDs, shutdown; `hook.rs` hooks
//! and topology (MKPEER, CONNECT); `item.rs` items, packaging, addressing;
//! `dispatch.rs` ng_snd_item, the gate, queues, function items, callouts;
//! `path.rs` addresses; `check.rs` invariants and quiescence; `exports.rs` the
//! exported symbol table.

pub mod check;
pub mod dispatch;
pub mod exports;
pub mod hook;
pub mod item;
pub mod path;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use fbsd_sys::{module_t, ng_hook, ng_item, ng_node, ng_type, thread, vnet};

use crate::kern::klocal::kernel_local;
use crate::kern::thread as thread_api;

pub use check::{check_quiescent, quiesce};
pub use dispatch::{run_queue_once, set_dispatch_config, DispatchConfig};
pub use exports::{exported_names, register};

pub(crate) const EINVAL: c_int = fbsd_sys::EINVAL as c_int;
pub(crate) const ENOENT: c_int = fbsd_sys::ENOENT as c_int;
pub(crate) const ENOMEM: c_int = fbsd_sys::ENOMEM as c_int;
pub(crate) const EEXIST: c_int = fbsd_sys::EEXIST as c_int;
pub(crate) const ENXIO: c_int = fbsd_sys::ENXIO as c_int;
pub(crate) const EBUSY: c_int = fbsd_sys::EBUSY as c_int;
pub(crate) const EIO: c_int = fbsd_sys::EIO as c_int;
pub(crate) const ENETDOWN: c_int = fbsd_sys::ENETDOWN as c_int;
pub(crate) const EADDRINUSE: c_int = fbsd_sys::EADDRINUSE as c_int;
pub(crate) const EOPNOTSUPP: c_int = fbsd_sys::EOPNOTSUPP as c_int;
pub(crate) const ENOSYS: c_int = fbsd_sys::ENOSYS as c_int;
pub(crate) const ERANGE: c_int = fbsd_sys::ERANGE as c_int;
pub(crate) const EINPROGRESS: c_int = fbsd_sys::EINPROGRESS as c_int;

pub(crate) const NGF_INVALID: c_int = fbsd_sys::NGF_INVALID as c_int;
pub(crate) const NGF_CLOSING: c_int = fbsd_sys::NGF_CLOSING as c_int;
pub(crate) const HK_INVALID: c_int = fbsd_sys::HK_INVALID as c_int;

/// Size of names (type, node, hook, command) including the NUL.
pub const NG_NODESIZ: usize = 32;
/// Initial size of the ID and name hashes.
const HASH_INITIAL: usize = 16;

/// Per-node bookkeeping the core keeps beside `struct ng_node`.
#[derive(Default)]
pub(crate) struct NodeRec {
    /// The input queue (FIFO of items with their queued mode in `el_flags`).
    pub queue: VecDeque<*mut ng_item>,
}

/// The state of one netgraph "kernel" (one vnet; the type list is global in
/// FreeBSD, here it is per harness thread like everything else).
pub(crate) struct Core {
    /// Registered types, list head (newest) first.
    pub types: Vec<*mut ng_type>,
    /// ID hash: buckets of node pointers, each newest first.
    pub id_hash: Vec<Vec<*mut ng_node>>,
    /// Name hash: buckets of named nodes, each newest first.
    pub name_hash: Vec<Vec<*mut ng_node>>,
    /// `V_ng_nodes`: node structures in the ID hash.
    pub nodes_count: usize,
    /// `V_ng_named_nodes`: node structures in the name hash.
    pub named_count: usize,
    /// `V_nextID`.
    pub next_id: u32,
    /// Live nodes.
    pub nodes: HashMap<usize, NodeRec>,
    /// Freed (poisoned, quarantined) nodes.
    pub freed_nodes: HashSet<usize>,
    /// Live hooks.
    pub hooks: HashSet<usize>,
    /// Freed hooks.
    pub freed_hooks: HashSet<usize>,
    /// Item bookkeeping (see `item.rs`).
    pub items: item::Items,
    /// The global work list (nodes whose head item can run), FIFO.
    pub worklist: VecDeque<*mut ng_node>,
    /// Dispatch state (see `dispatch.rs`).
    pub disp: dispatch::DispState,
    /// Callouts armed through ng_callout (see `dispatch.rs`).
    pub callouts: HashMap<usize, dispatch::CalloutRec>,
    /// The queue thread's `struct thread`.
    pub queue_td: *mut thread,
    /// Types built into the harness (echo, hole, harnessctl...), by name.
    pub builtin: HashMap<&'static str, *mut ng_type>,
}

kernel_local! {
    static CORE: RefCell<Core> = RefCell::new(Core::new());
    static CONSOLE: RefCell<Vec<String>> = RefCell::new(Vec::new());
    static WARNINGS: RefCell<Vec<String>> = RefCell::new(Vec::new());
}

/// Runs `f` on this thread's core state. `f` must not call module code or
/// anything else that enters `with`.
pub(crate) fn with<R>(f: impl FnOnce(&mut Core) -> R) -> R {
    // The first use plugs the model into the kernel (its exports, and its
    // queue into the event loop); outside the state's initialisation.
    super::install();
    CORE.with(|c| f(&mut c.borrow_mut()))
}

impl Core {
    fn new() -> Core {
        let mut c = Core {
            types: Vec::new(),
            id_hash: vec![Vec::new(); HASH_INITIAL],
            name_hash: vec![Vec::new(); HASH_INITIAL],
            nodes_count: 0,
            named_count: 0,
            next_id: 1,
            nodes: HashMap::new(),
            freed_nodes: HashSet::new(),
            hooks: HashSet::new(),
            freed_hooks: HashSet::new(),
            items: item::Items::default(),
            worklist: VecDeque::new(),
            disp: dispatch::DispState::default(),
            callouts: HashMap::new(),
            queue_td: new_queue_thread(),
            builtin: HashMap::new(),
        };
        // The reference node types are "loaded" at startup: registered exactly
        // as ng_newtype would (list head, refs 1).
        for tp in [super::echo::new_type(), super::hole::new_type()] {
            // SAFETY: fresh arena type objects with valid names.
            unsafe {
                (*tp).refs = 1;
                c.builtin.insert(leak_name(tp), tp);
            }
            c.types.insert(0, tp);
        }
        c
    }
}

/// The name of a built-in type, as a static str.
unsafe fn leak_name(tp: *mut ng_type) -> &'static str {
    // SAFETY: built-in types carry arena C strings that live forever.
    let s = unsafe { CStr::from_ptr((*tp).name) }
        .to_str()
        .unwrap_or("?");
    Box::leak(s.to_string().into_boxed_str())
}

/// A harness-built-in type of this thread's core, by name ("echo", "hole", "harnessctl").
pub fn builtin_type(name: &str) -> *mut ng_type {
    with(|c| c.builtin.get(name).copied().unwrap_or(std::ptr::null_mut()))
}

pub(crate) fn add_builtin(name: &'static str, tp: *mut ng_type) {
    with(|c| {
        c.builtin.insert(name, tp);
    });
}

// ---------------------------------------------------------------------------
// Console and warnings

/// Prints a kernel console line (what the core would `printf`) on the kernel
/// console of `kern::printf`, and records it for [`take_console`].
pub fn console(line: &str) {
    crate::kern::printf::kprint(line);
    CONSOLE.with(|c| c.borrow_mut().push(line.to_string()));
}

/// Console lines printed by the netgraph core on this thread so far (and
/// clears them).
pub fn take_console() -> Vec<String> {
    CONSOLE.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// A non-fatal finding (§11 rule 18: the kernel does not enforce it).
pub fn warn(msg: impl Into<String>) {
    let msg = msg.into();
    eprintln!("harness: netgraph warning: {msg}");
    WARNINGS.with(|w| w.borrow_mut().push(msg));
}

/// Warnings recorded so far (and clears them).
pub fn take_warnings() -> Vec<String> {
    WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

// ---------------------------------------------------------------------------
// Small C helpers

/// The bytes of a C string (without the NUL).
///
/// # Safety
/// `p` must be a valid NUL-terminated string.
pub(crate) unsafe fn cbytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// The bytes of a fixed-size name field up to its first NUL.
pub(crate) fn field_str(f: &[c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let b: &[u8] = unsafe { std::slice::from_raw_parts(f.as_ptr().cast(), f.len()) };
    let n = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    &b[..n]
}

/// strlcpy into a fixed-size field (truncating, always NUL-terminated).
pub(crate) fn set_field(f: &mut [c_char], s: &[u8]) {
    let n = s.len().min(f.len() - 1);
    for (d, &b) in f.iter_mut().zip(&s[..n]) {
        *d = b as c_char;
    }
    f[n] = 0;
}

/// Lossy printable form of a name, for diagnostics.
pub(crate) fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `curthread` of the model (sets up the per-CPU block on first use).
pub(crate) fn curthread() -> *mut thread {
    thread_api::init();
    thread_api::curthread()
}

/// `curvnet` (`curthread->td_vnet`).
pub(crate) fn curvnet() -> *mut vnet {
    thread_api::init();
    thread_api::curvnet()
}

/// Sets `curthread->td_vnet`, returning the previous value (CURVNET_SET).
pub(crate) fn set_curvnet(v: *mut vnet) -> *mut vnet {
    thread_api::init();
    thread_api::set_curvnet(v)
}

/// The `ng_queue` kernel thread (proc0's credential).
fn new_queue_thread() -> *mut thread {
    let td = thread_api::new_thread(thread_api::Cred::Kernel);
    thread_api::set_thread_name(td, "ng_queue0");
    // SAFETY: a fresh thread object; queue threads run in vnet0 by default.
    unsafe { (*td).td_vnet = thread_api::vnet0() };
    td
}

/// Should an M_NOWAIT allocation of the core (malloc type `name`) fail?
pub(crate) fn fail_malloc(name: &str) -> bool {
    crate::kern::fault::should_fail(&crate::kern::fault::Site::Malloc(name))
}

/// Resolves a function pointer that may be one of the loader's jump stubs to
/// the host function it leads to, so identity comparisons with the core's own
/// functions (`fn == &ng_rmnode`) work for pointers taken inside modules.
pub(crate) fn resolve_fn(addr: usize) -> usize {
    if crate::kern::loader::is_initialized() {
        crate::kern::loader::canonical_fn(addr)
    } else {
        addr
    }
}

// ---------------------------------------------------------------------------
// The dead objects (§1.8)

struct Dead {
    node: usize,
    hook: usize,
    ty: usize,
    snapshot: Vec<u8>,
}

fn dead() -> &'static Dead {
    static D: OnceLock<Dead> = OnceLock::new();
    D.get_or_init(|| {
        let ty = crate::arena::alloc_obj::<ng_type>();
        let node = crate::arena::alloc_obj::<ng_node>();
        let hook = crate::arena::alloc_obj::<ng_hook>();
        // SAFETY: fresh zeroed arena objects, initialised as FreeBSD's statics.
        unsafe {
            (*ty).version = fbsd_sys::NG_ABI_VERSION;
            (*ty).name = crate::arena::alloc_cstr("dead");
            set_field(&mut (*node).nd_name, b"dead");
            (*node).nd_type = ty;
            (*node).nd_flags = NGF_INVALID;
            (*node).nd_refs = 1;
            let q = &mut (*node).nd_input_queue.queue;
            q.stqh_last = &mut q.stqh_first;
            set_field(&mut (*hook).hk_name, b"dead");
            (*hook).hk_flags = (fbsd_sys::HK_INVALID | fbsd_sys::HK_DEAD) as c_int;
            (*hook).hk_peer = hook;
            (*hook).hk_node = node;
            (*hook).hk_refs = 1;
        }
        let mut d = Dead {
            node: node as usize,
            hook: hook as usize,
            ty: ty as usize,
            snapshot: vec![],
        };
        d.snapshot = dead_bytes(&d);
        d
    })
}

fn dead_bytes(d: &Dead) -> Vec<u8> {
    let mut v = Vec::new();
    // SAFETY: the three objects are readable arena memory of these sizes.
    unsafe {
        v.extend_from_slice(std::slice::from_raw_parts(
            d.node as *const u8,
            std::mem::size_of::<ng_node>(),
        ));
        v.extend_from_slice(std::slice::from_raw_parts(
            d.hook as *const u8,
            std::mem::size_of::<ng_hook>(),
        ));
        v.extend_from_slice(std::slice::from_raw_parts(
            d.ty as *const u8,
            std::mem::size_of::<ng_type>(),
        ));
    }
    v
}

/// `&ng_deadnode`.
pub fn dead_node() -> *mut ng_node {
    dead().node as *mut ng_node
}

/// `&ng_deadhook`.
pub fn dead_hook() -> *mut ng_hook {
    dead().hook as *mut ng_hook
}

/// `&ng_deadtype`.
pub fn dead_type() -> *mut ng_type {
    dead().ty as *mut ng_type
}

/// §11 rule 16: reports (and repairs) any write to the dead objects.
pub fn check_dead_objects() -> bool {
    let d = dead();
    let now = dead_bytes(d);
    if now == d.snapshot {
        return true;
    }
    let nsz = std::mem::size_of::<ng_node>();
    let hsz = std::mem::size_of::<ng_hook>();
    let which = if now[..nsz] != d.snapshot[..nsz] {
        "ng_deadnode"
    } else if now[nsz..nsz + hsz] != d.snapshot[nsz..nsz + hsz] {
        "ng_deadhook"
    } else {
        "ng_deadtype"
    };
    crate::kern::violation(format!(
        "{which} was written to (e.g. NG_NODE_REF/private data on the dead node or hook of an orphaned hook)"
    ));
    // SAFETY: restoring the original bytes of the same objects.
    unsafe {
        std::ptr::copy_nonoverlapping(d.snapshot.as_ptr(), d.node as *mut u8, nsz);
        std::ptr::copy_nonoverlapping(d.snapshot[nsz..].as_ptr(), d.hook as *mut u8, hsz);
        std::ptr::copy_nonoverlapping(
            d.snapshot[nsz + hsz..].as_ptr(),
            d.ty as *mut u8,
            std::mem::size_of::<ng_type>(),
        );
    }
    false
}

// ---------------------------------------------------------------------------
// Object registries and poisoning

const POISON: u8 = 0xdb;

/// True if `node` is the dead node or a live node of this core.
pub(crate) fn node_ok(node: *mut ng_node, what: &str) -> bool {
    if node.is_null() {
        crate::kern::violation(format!("{what}: NULL node"));
        return false;
    }
    if node == dead_node() {
        return true;
    }
    let (live, freed) = with(|c| {
        (
            c.nodes.contains_key(&(node as usize)),
            c.freed_nodes.contains(&(node as usize)),
        )
    });
    if live {
        return true;
    }
    if freed {
        crate::kern::violation(format!(
            "{what}: node {node:p} was already freed (use after free)"
        ));
    } else {
        crate::kern::violation(format!("{what}: {node:p} is not a netgraph node"));
    }
    false
}

/// True if `hook` is the dead hook or a live hook of this core.
pub(crate) fn hook_ok(hook: *mut ng_hook, what: &str) -> bool {
    if hook.is_null() {
        crate::kern::violation(format!("{what}: NULL hook"));
        return false;
    }
    if hook == dead_hook() {
        return true;
    }
    let (live, freed) = with(|c| {
        (
            c.hooks.contains(&(hook as usize)),
            c.freed_hooks.contains(&(hook as usize)),
        )
    });
    if live {
        return true;
    }
    if freed {
        crate::kern::violation(format!(
            "{what}: hook {hook:p} was already freed (used after its disconnect returned without a reference?)"
        ));
    } else {
        crate::kern::violation(format!("{what}: {hook:p} is not a netgraph hook"));
    }
    false
}

fn alloc_zeroed<T>() -> *mut T {
    let layout = std::alloc::Layout::new::<T>();
    // SAFETY: non-zero-sized layout.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!p.is_null(), "host out of memory");
    p.cast()
}

fn poison<T>(p: *mut T) {
    // SAFETY: `p` is an allocation of size_of::<T>() that nobody may use any more.
    unsafe { std::ptr::write_bytes(p.cast::<u8>(), POISON, std::mem::size_of::<T>()) };
}

// Reference counts are updated atomically, as modules do inline.
pub(crate) fn atomic_i32<'a>(p: *mut c_int) -> &'a AtomicI32 {
    // SAFETY: every refcount word is a properly aligned, live c_int.
    unsafe { AtomicI32::from_ptr(p) }
}

/// NG_NODE_REF.
pub(crate) fn node_ref(node: *mut ng_node) {
    if node_ok(node, "NG_NODE_REF") {
        // SAFETY: checked live above.
        atomic_i32(unsafe { std::ptr::addr_of_mut!((*node).nd_refs) })
            .fetch_add(1, Ordering::AcqRel);
    }
}

/// NG_HOOK_REF.
pub(crate) fn hook_ref(hook: *mut ng_hook) {
    if hook_ok(hook, "NG_HOOK_REF") {
        // SAFETY: checked live above.
        atomic_i32(unsafe { std::ptr::addr_of_mut!((*hook).hk_refs) })
            .fetch_add(1, Ordering::AcqRel);
    }
}

// ---------------------------------------------------------------------------
// Types (§2)

/// `ng_findtype`: exact name match over the list.
pub(crate) fn findtype(name: &[u8]) -> *mut ng_type {
    let types = with(|c| c.types.clone());
    for tp in types {
        // SAFETY: registered types have valid name strings.
        if unsafe { cbytes((*tp).name) } == name {
            return tp;
        }
    }
    std::ptr::null_mut()
}

/// `ng_newtype` (§2.1).
pub(crate) unsafe fn newtype(tp: *mut ng_type) -> c_int {
    // SAFETY: `tp` is the caller's type structure with a C-string name.
    unsafe {
        let namelen = if (*tp).name.is_null() {
            0
        } else {
            cbytes((*tp).name).len()
        };
        if (*tp).version != fbsd_sys::NG_ABI_VERSION || namelen == 0 || namelen >= NG_NODESIZ {
            if (*tp).version != fbsd_sys::NG_ABI_VERSION {
                console("Netgraph: Node type rejected. ABI mismatch. Suggest recompile");
            }
            return EINVAL;
        }
        if !findtype(cbytes((*tp).name)).is_null() {
            return EEXIST;
        }
        with(|c| c.types.insert(0, tp));
        (*tp).refs = 1;
    }
    0
}

/// `ng_rmtype` (§2.2).
pub(crate) unsafe fn rmtype(tp: *mut ng_type) -> c_int {
    // SAFETY: `tp` is a type structure.
    if unsafe { (*tp).refs } != 1 {
        return EBUSY;
    }
    with(|c| c.types.retain(|&t| t != tp));
    0
}

fn unlink_type(tp: *mut ng_type) {
    with(|c| c.types.retain(|&t| t != tp));
}

/// Fault switch (harness self-tests): `ng_mod_event(MOD_UNLOAD)` ignores
/// the nodes a type still has, so a module unloads while its nodes run.
static UNLOAD_IGNORES_NODES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Lets a node type unload while it still has nodes (a model fault switch
/// for self-tests: what a type whose unload does not wait for its nodes
/// would do).
pub fn set_unload_ignores_nodes(on: bool) {
    UNLOAD_IGNORES_NODES.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// `ng_mod_event` (§2.5).
pub(crate) unsafe fn mod_event(m: module_t, event: c_int, data: *mut c_void) -> c_int {
    let tp = data.cast::<ng_type>();
    if tp.is_null() {
        crate::kern::violation("ng_mod_event: NULL type");
        return EINVAL;
    }
    // SAFETY: `data` is the module's struct ng_type (NETGRAPH_INIT).
    unsafe {
        let me = (*tp).mod_event;
        match event as u32 {
            fbsd_sys::MOD_LOAD => {
                let e = newtype(tp);
                if e != 0 {
                    return e;
                }
                if let Some(f) = me {
                    let e = f(m, event, data);
                    if e != 0 {
                        (*tp).refs -= 1;
                        unlink_type(tp);
                    }
                    return e;
                }
                0
            }
            fbsd_sys::MOD_UNLOAD => {
                if (*tp).refs > 1 && !UNLOAD_IGNORES_NODES.load(std::sync::atomic::Ordering::SeqCst)
                {
                    return EBUSY;
                }
                if (*tp).refs == 0 {
                    return 0;
                }
                if let Some(f) = me {
                    let e = f(m, event, data);
                    if e != 0 {
                        return e;
                    }
                }
                unlink_type(tp);
                0
            }
            _ => match me {
                Some(f) => f(m, event, data),
                None => EOPNOTSUPP,
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Nodes (§3)

fn id_bucket(c: &Core, id: u32) -> usize {
    id as usize % c.id_hash.len()
}

/// hash32_str(name, HASHINIT) & mask, for the current name hash.
fn name_bucket(c: &Core, name: &[u8]) -> usize {
    name_hash_of(name, c.name_hash.len())
}

/// hash32_str(name, HASHINIT) masked for a hash of `size` buckets.
fn name_hash_of(name: &[u8], size: usize) -> usize {
    let mut h: u32 = 5381;
    for &b in name {
        h = h.wrapping_mul(33).wrapping_add(u32::from(b));
    }
    h as usize & (size - 1)
}

/// Valid node with this ID (no reference taken).
pub(crate) fn find_id(id: u32) -> *mut ng_node {
    with(|c| {
        let b = id_bucket(c, id);
        c.id_hash[b]
            .iter()
            .copied()
            // SAFETY: nodes in the hash are live.
            .find(|&n| unsafe { (*n).nd_flags & NGF_INVALID == 0 && (*n).nd_ID == id })
            .unwrap_or(std::ptr::null_mut())
    })
}

/// Rehash: walks the old buckets 0..mask, each from its head, inserting at the
/// head of the new bucket — the exact order FreeBSD produces.
fn rehash(old: &mut Vec<Vec<*mut ng_node>>, key: impl Fn(*mut ng_node, usize) -> usize) {
    let size = old.len() * 2;
    let mut new = vec![Vec::new(); size];
    for bucket in old.iter() {
        for &n in bucket {
            new[key(n, size)].insert(0, n);
        }
    }
    *old = new;
}

fn queue_lock_name() -> *const c_char {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| crate::arena::alloc_cstr("ng_node") as usize) as *const c_char
}

/// `ng_make_node_common` (§3.1).
pub(crate) unsafe fn make_node_common(tp: *mut ng_type) -> Result<*mut ng_node, c_int> {
    // SAFETY: `tp` is a type structure with a name.
    let name = unsafe { cbytes((*tp).name) };
    if findtype(name).is_null() {
        return Err(EINVAL);
    }
    if fail_malloc("netgraph_node") {
        return Err(ENOMEM);
    }
    let node: *mut ng_node = alloc_zeroed();
    // SAFETY: fresh zeroed node; `tp` is registered.
    unsafe {
        (*node).nd_type = tp;
        // nd_vnet must be a valid vnet (modules CURVNET_SET it inline).
        let v = curvnet();
        (*node).nd_vnet = if v.is_null() { thread_api::vnet0() } else { v };
        (*node).nd_refs = 1;
        (*tp).refs += 1;
        let q = &mut (*node).nd_input_queue.queue;
        q.stqh_last = &mut q.stqh_first;
        (*node).nd_input_queue.q_mtx.lock_object.lo_name = queue_lock_name();
    }
    with(|c| {
        c.nodes.insert(node as usize, NodeRec::default());
        let id = loop {
            let id = c.next_id;
            c.next_id = c.next_id.wrapping_add(1);
            let b = id_bucket(c, id);
            // SAFETY: nodes in the hash are live.
            let taken = c.id_hash[b]
                .iter()
                .any(|&n| unsafe { (*n).nd_flags & NGF_INVALID == 0 && (*n).nd_ID == id });
            if id != 0 && !taken {
                break id;
            }
        };
        // SAFETY: fresh node.
        unsafe { (*node).nd_ID = id };
        c.nodes_count += 1;
        if c.nodes_count * 2 > c.id_hash.len() - 1 {
            // SAFETY: nodes in the hash are live.
            rehash(
                &mut c.id_hash,
                |n, size| unsafe { (*n).nd_ID } as usize % size,
            );
        }
        let b = id_bucket(c, id);
        c.id_hash[b].insert(0, node);
    });
    Ok(node)
}

/// `ng_make_node` (§3.1).
pub(crate) unsafe fn make_node(typename: *const c_char) -> Result<*mut ng_node, c_int> {
    if typename.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: a C string from the caller.
    let tp = findtype(unsafe { cbytes(typename) });
    if tp.is_null() {
        return Err(ENXIO);
    }
    // SAFETY: registered type.
    let Some(ctor) = (unsafe { (*tp).constructor }) else {
        return Err(EINVAL);
    };
    // SAFETY: registered type.
    let node = unsafe { make_node_common(tp) }?;
    // SAFETY: calling the type's constructor on its brand-new node.
    let e = unsafe { ctor(node) };
    if e != 0 {
        // The constructor failed: drop the only reference; the node is freed
        // at once, valid or not, and nothing else is called.
        unref_node_inner(node, true);
        return Err(e);
    }
    Ok(node)
}

/// NG_NODE_UNREF / `ng_unref_node` (§3.4).
pub(crate) fn unref_node(node: *mut ng_node) {
    unref_node_inner(node, false);
}

fn unref_node_inner(node: *mut ng_node, allow_valid: bool) {
    if node == dead_node() {
        return;
    }
    if !node_ok(node, "ng_unref_node") {
        return;
    }
    // SAFETY: checked live above.
    let old = atomic_i32(unsafe { std::ptr::addr_of_mut!((*node).nd_refs) })
        .fetch_sub(1, Ordering::AcqRel);
    if old <= 0 {
        // SAFETY: live node.
        let id = unsafe { (*node).nd_ID };
        crate::kern::violation(format!(
            "ng_unref_node: node [{id:x}] reference count underflow ({old} before release)"
        ));
        return;
    }
    if old != 1 {
        return;
    }
    // The last reference: free the node.
    let ov = set_curvnet(
        // SAFETY: live node.
        unsafe { (*node).nd_vnet },
    );
    // SAFETY: live node being freed by its last reference.
    unsafe {
        let id = (*node).nd_ID;
        if (*node).nd_flags & NGF_INVALID == 0 && !allow_valid {
            crate::kern::violation(format!(
                "node [{id:x}] ({}) freed while still valid: one NG_NODE_UNREF too many (use after free follows)",
                show(cbytes((*(*node).nd_type).name))
            ));
        }
        if (*node).nd_numhooks != 0 || !(*node).nd_hooks.lh_first.is_null() {
            crate::kern::violation(format!("node [{id:x}] freed with hooks still attached"));
        }
        (*(*node).nd_type).refs -= 1;
    }
    let queued = with(|c| {
        // SAFETY: live node.
        let named = unsafe { (*node).nd_name[0] } != 0;
        if named {
            for b in &mut c.name_hash {
                if let Some(i) = b.iter().position(|&n| n == node) {
                    b.remove(i);
                    c.named_count -= 1;
                    break;
                }
            }
        }
        for b in &mut c.id_hash {
            if let Some(i) = b.iter().position(|&n| n == node) {
                b.remove(i);
                c.nodes_count -= 1;
                break;
            }
        }
        let rec = c.nodes.remove(&(node as usize));
        c.freed_nodes.insert(node as usize);
        rec.map_or(0, |r| r.queue.len())
    });
    if queued != 0 {
        crate::kern::violation(format!(
            "node {node:p} freed with {queued} item(s) still queued"
        ));
    }
    poison(node);
    set_curvnet(ov);
}

/// `ng_node2ID`.
pub(crate) fn node2id(node: *const ng_node) -> u32 {
    if node.is_null() {
        0
    } else {
        // SAFETY: a node pointer from the caller.
        unsafe { (*node).nd_ID }
    }
}

/// `ng_decodeidname` (§3.2): `[hex]`, value not 0 nor ULONG_MAX, truncated to 32 bits.
pub(crate) fn decode_id_name(name: &[u8]) -> u32 {
    let len = name.len();
    if len < 3 || name[0] != b'[' || name[len - 1] != b']' || !name[1].is_ascii_hexdigit() {
        return 0;
    }
    // strtoul(name + 1, &eptr, 16)
    let s = &name[1..];
    let mut i = 0;
    if s.len() > 2 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') && s[2].is_ascii_hexdigit() {
        i = 2;
    }
    let mut val: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_hexdigit() {
        let d = (s[i] as char).to_digit(16).unwrap_or(0) as u64;
        match val.checked_mul(16).and_then(|v| v.checked_add(d)) {
            Some(v) => val = v,
            None => overflow = true,
        }
        i += 1;
    }
    if overflow {
        val = u64::MAX;
    }
    // eptr - name == len - 1: the digits end exactly at the closing bracket.
    if 1 + i != len - 1 || val == u64::MAX || val == 0 {
        return 0;
    }
    val as u32
}

/// `ng_name_node` (§3.2).
pub(crate) unsafe fn name_node(node: *mut ng_node, name: *const c_char) -> c_int {
    // SAFETY: live node; `name` readable up to its NUL (or byte 32).
    unsafe {
        let cur = field_str(&(*node).nd_name);
        let nb = cbytes(name);
        if nb == cur {
            return 0;
        }
        let raw = name.cast::<u8>();
        let mut i = 0;
        while i < NG_NODESIZ {
            let ch = *raw.add(i);
            if ch == 0 || ch == b'.' || ch == b':' {
                break;
            }
            i += 1;
        }
        if i == 0 || *raw.add(i) != 0 {
            return EINVAL;
        }
        let nb = std::slice::from_raw_parts(raw, i);
        if decode_id_name(nb) != 0 {
            return EINVAL;
        }
        let stored = &nb[..nb.len().min(NG_NODESIZ - 1)];
        let err = with(|c| {
            if c.named_count * 2 > c.name_hash.len() - 1 {
                // SAFETY: named nodes are live.
                rehash(&mut c.name_hash, |n, size| {
                    name_hash_of(field_str(&(*n).nd_name), size)
                });
            }
            let b = name_bucket(c, nb);
            // SAFETY: nodes in the hash are live.
            let used = c.name_hash[b]
                .iter()
                .any(|&n| (*n).nd_flags & NGF_INVALID == 0 && field_str(&(*n).nd_name) == nb);
            if used {
                return EADDRINUSE;
            }
            if (*node).nd_name[0] != 0 {
                for bk in &mut c.name_hash {
                    if let Some(i) = bk.iter().position(|&n| n == node) {
                        bk.remove(i);
                        break;
                    }
                }
            } else {
                c.named_count += 1;
            }
            set_field(&mut (*node).nd_name, stored);
            let b = name_bucket(c, stored);
            c.name_hash[b].insert(0, node);
            0
        });
        err
    }
}

/// `ng_name2noderef` (§3.2): "." → here; `[id]` → by ID; else by name.
/// Returns a referenced node or NULL.
pub(crate) unsafe fn name2noderef(here: *mut ng_node, name: &[u8]) -> *mut ng_node {
    if name == b"." {
        if here.is_null() {
            crate::kern::violation("ng_name2noderef(\".\") with a NULL starting node");
            return std::ptr::null_mut();
        }
        node_ref(here);
        return here;
    }
    let id = decode_id_name(name);
    let node = if id != 0 {
        find_id(id)
    } else {
        with(|c| {
            let b = name_bucket(c, name);
            c.name_hash[b]
                .iter()
                .copied()
                // SAFETY: nodes in the hash are live.
                .find(|&n| unsafe {
                    (*n).nd_flags & NGF_INVALID == 0 && field_str(&(*n).nd_name) == name
                })
                .unwrap_or(std::ptr::null_mut())
        })
    };
    if !node.is_null() {
        node_ref(node);
    }
    node
}

// ---------------------------------------------------------------------------
// Shutdown (§3.5)

/// `ng_rmnode(node, dummy1, dummy2, dummy3)` — the shutdown sequence.
pub(crate) unsafe fn rmnode(node: *mut ng_node) {
    if !node_ok(node, "ng_rmnode") {
        return;
    }
    // SAFETY: live (or dead) node.
    unsafe {
        if (*node).nd_flags & NGF_CLOSING != 0 {
            return;
        }
        if node == dead_node() {
            console("shutdown called on deadnode");
            return;
        }
        node_ref(node);
        (*node).nd_flags |= NGF_INVALID | NGF_CLOSING;
        let tp = (*node).nd_type;
        if let Some(close) = (*tp).close {
            close(node);
        }
        loop {
            let h = (*node).nd_hooks.lh_first;
            if h.is_null() {
                break;
            }
            hook::destroy_hook(h);
        }
        dispatch::flush_input_queue(node);
        if let Some(shutdown) = (*tp).shutdown {
            shutdown(node);
            if (*node).nd_flags & NGF_INVALID == 0 {
                // Revived (persistent node): it keeps its creation reference.
                (*node).nd_flags &= !(NGF_INVALID | NGF_CLOSING);
                unref_node(node);
                return;
            }
        } else {
            unref_node(node);
        }
        unref_node(node);
    }
}

/// `ng_rmnode_self` (§3.5).
pub(crate) unsafe fn rmnode_self(node: *mut ng_node) -> c_int {
    if node == dead_node() {
        return 0;
    }
    if !node_ok(node, "ng_rmnode_self") {
        return EINVAL;
    }
    // SAFETY: live node.
    unsafe {
        (*node).nd_flags |= NGF_INVALID;
        if (*node).nd_flags & NGF_CLOSING != 0 {
            return 0;
        }
        dispatch::send_fn1(
            node,
            std::ptr::null_mut(),
            Some(exports::rmnode_fn),
            std::ptr::null_mut(),
            0,
            0,
        )
    }
}

/// Node structures of this core (live, including invalid ones not yet freed).
pub fn live_nodes() -> Vec<*mut ng_node> {
    with(|c| c.nodes.keys().map(|&k| k as *mut ng_node).collect())
}

/// The valid node with this ID (no reference), or NULL.
pub fn node_by_id(id: u32) -> *mut ng_node {
    find_id(id)
}

/// Number of items currently allocated (both zones).
pub fn live_items() -> usize {
    with(|c| c.items.live.len())
}
