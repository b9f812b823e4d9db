//! Per-CPU data, threads, processes, credentials, prison0/vnet0, privilege
//! checks and critical sections.
//!
//! A `struct pcpu` is installed as the GS base of every OS thread that runs
//! module code, exactly where FreeBSD inline code looks: `curthread` is
//! `movq %gs:0`, `PCPU_GET(cpuid)` reads `%gs:0x3c`, `get_pcpu()` reads
//! `pc_prvspace`. A free-running kernel uses one process-wide block (CPU 0,
//! installed by [`init`]); the CPUs of an SMP machine (`kern::smp`) each have
//! their own ([`new_pcpu`]), installed on the OS threads bound to them
//! ([`install_pcpu`]). "Kernel threads" are `struct thread` objects in the
//! low arena; switching threads means switching `pc_curthread`
//! ([`set_curthread`]). A second OS thread of a free kernel (e.g. a test
//! thread) must call [`init`] before it runs kernel code.
//!
//! `pc_dynamic` is 0 on every CPU (a module's own `set_pcpu` data is the
//! one copy all CPUs share; the modules have none) and vnet0's
//! `vnet_data_base` is 0 (the module's `set_vnet` data is vnet0's copy).

use std::cell::Cell;
use std::collections::BTreeSet;
use std::ffi::{c_int, c_long};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use fbsd_sys::{pcpu, prison, proc_, thread, thread0_storage, ucred, vnet};

use crate::arena;
use crate::exports::Exports;
use crate::kern::violation;

/// Credential of a new harness thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cred {
    /// A user process running as root (uid 0) in prison0.
    Root,
    /// A user process running as the given uid in prison0.
    User(u32),
    /// A kernel thread of proc0 (proc0's credential, uid 0), like the
    /// netgraph queue threads.
    Kernel,
}

/// `sizeof(struct pcpu)` on amd64 is one page; the block is allocated as a
/// whole page so counter(9)-style offsets stay within it.
const PCPU_BYTES: usize = 4096;
/// Size of the host's own (empty) dynamic per-CPU area, for
/// `__start_set_pcpu`/`__stop_set_pcpu` of modules without a `set_pcpu`.
const DPCPU_BYTES: usize = 4096;

/// `arch_prctl` code to set the GS base (asm/prctl.h).
const ARCH_SET_GS: libc::c_int = 0x1001;

/// First thread ID (FreeBSD numbers threads from 100000).
const THREAD0_TID: i32 = 100_000;

static PCPU: AtomicUsize = AtomicUsize::new(0);
static THREAD0: AtomicUsize = AtomicUsize::new(0);
static PROC0: AtomicUsize = AtomicUsize::new(0);
static PRISON0: AtomicUsize = AtomicUsize::new(0);
static VNET0: AtomicUsize = AtomicUsize::new(0);
/// The exported `vnet0` variable (a `struct vnet *` cell).
static VNET0_CELL: AtomicUsize = AtomicUsize::new(0);
static DPCPU: AtomicUsize = AtomicUsize::new(0);
static NEXT_TID: AtomicI32 = AtomicI32::new(THREAD0_TID + 1);
static NEXT_PID: AtomicI32 = AtomicI32::new(100);
static GLOBAL_INIT: Once = Once::new();
/// Every thread object the harness created.
static THREADS: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

thread_local! {
    static GS_INSTALLED: Cell<bool> = const { Cell::new(false) };
    /// The pcpu block this OS thread's GS base points at (0: the global one).
    static INSTALLED: Cell<usize> = const { Cell::new(0) };
}

fn set_cstr(dst: &mut [core::ffi::c_char], s: &str) {
    let n = s.len().min(dst.len().saturating_sub(1));
    for (d, b) in dst.iter_mut().zip(s.as_bytes()[..n].iter()) {
        *d = *b as core::ffi::c_char;
    }
    if let Some(last) = dst.get_mut(n) {
        *last = 0;
    }
}

fn new_cred(uid: u32) -> *mut ucred {
    let cr: *mut ucred = arena::alloc_obj();
    // SAFETY: `cr` is a fresh, zeroed, exclusively owned arena object.
    unsafe {
        (*cr).cr_ref = 1;
        (*cr).cr_users = 1;
        (*cr).cr_uid = uid;
        (*cr).cr_ruid = uid;
        (*cr).cr_svuid = uid;
        (*cr).cr_gid = if uid == 0 { 0 } else { uid };
        (*cr).cr_rgid = (*cr).cr_gid;
        (*cr).cr_svgid = (*cr).cr_gid;
        (*cr).cr_ngroups = 1;
        (*cr).cr_smallgroups[0] = (*cr).cr_gid;
        (*cr).cr_groups = (*cr).cr_smallgroups.as_mut_ptr();
        (*cr).cr_agroups = (*cr).cr_smallgroups.len() as c_int;
        (*cr).cr_prison = PRISON0.load(Ordering::Acquire) as *mut prison;
    }
    cr
}

fn new_proc(pid: i32, comm: &str, cred: *mut ucred) -> *mut proc_ {
    let p: *mut proc_ = arena::alloc_obj();
    // SAFETY: `p` is a fresh, zeroed, exclusively owned arena object.
    unsafe {
        (*p).p_pid = pid;
        (*p).p_ucred = cred;
        (*p).p_numthreads = 1;
        set_cstr(&mut (*p).p_comm, comm);
    }
    p
}

fn setup_thread(td: *mut thread, tid: i32, p: *mut proc_, cred: *mut ucred, name: &str) {
    THREADS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(td as usize);
    // SAFETY: `td` is a fresh, zeroed arena thread object owned by the caller.
    unsafe {
        (*td).td_tid = tid;
        (*td).td_proc = p;
        (*td).td_ucred = cred;
        (*td).td_realucred = cred;
        (*td).td_vnet = std::ptr::null_mut();
        set_cstr(&mut (*td).td_name, name);
    }
}

fn global_init() {
    GLOBAL_INIT.call_once(|| {
        // vnet0 and prison0 first: credentials point at prison0.
        let v: *mut vnet = arena::alloc_obj();
        // SAFETY: fresh zeroed arena object.
        unsafe {
            (*v).vnet_magic_n = fbsd_sys::VNET_MAGIC_N;
            (*v).vnet_data_base = 0;
        }
        VNET0.store(v as usize, Ordering::Release);
        let cell: *mut *mut vnet = arena::alloc_obj();
        // SAFETY: fresh arena cell of pointer size.
        unsafe { *cell = v };
        VNET0_CELL.store(cell as usize, Ordering::Release);

        let pr: *mut prison = arena::alloc_obj();
        // SAFETY: fresh zeroed arena object.
        unsafe {
            (*pr).pr_id = 0;
            (*pr).pr_ref = 1;
            (*pr).pr_uref = 1;
            (*pr).pr_vnet = v;
            (*pr).pr_securelevel = -1;
            set_cstr(&mut (*pr).pr_name, "0");
        }
        PRISON0.store(pr as usize, Ordering::Release);

        // proc0 and thread0 (thread0 lives in a `thread0_storage`, exported
        // as `thread0_st` like the kernel's).
        let cred0 = new_cred(0);
        let p0 = new_proc(0, "kernel", cred0);
        PROC0.store(p0 as usize, Ordering::Release);
        let st: *mut thread0_storage = arena::alloc_obj();
        // SAFETY: `st` is a fresh arena object; its first member is the thread.
        let td0 = unsafe { std::ptr::addr_of_mut!((*st).t0st_thread) };
        setup_thread(td0, THREAD0_TID, p0, cred0, "swapper");
        THREAD0.store(td0 as usize, Ordering::Release);

        let pc = arena::alloc(PCPU_BYTES.max(std::mem::size_of::<pcpu>()), 4096).cast::<pcpu>();
        // SAFETY: `pc` is a fresh zeroed page-sized arena block, large enough
        // for `struct pcpu`.
        unsafe {
            (*pc).pc_curthread = td0;
            (*pc).pc_idlethread = td0;
            (*pc).pc_cpuid = 0;
            (*pc).pc_prvspace = pc;
            (*pc).pc_dynamic = 0;
        }
        PCPU.store(pc as usize, Ordering::Release);
        // One spare byte past the end keeps `__stop_set_pcpu` inside the arena.
        DPCPU.store(
            arena::alloc(DPCPU_BYTES + 16, 64) as usize,
            Ordering::Release,
        );
    });
}

/// Sets up the per-CPU block, proc0/thread0, prison0 and vnet0 (first call in
/// the process) and installs the pcpu as this OS thread's GS base (first call
/// on each OS thread). Idempotent.
pub fn init() {
    global_init();
    if GS_INSTALLED.with(|g| g.get()) {
        return;
    }
    let pc = PCPU.load(Ordering::Acquire);
    // SAFETY: ARCH_SET_GS only changes this OS thread's GS base; glibc on
    // x86_64 uses FS for TLS and never touches GS. `pc` is a live arena block.
    let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_GS, pc) };
    assert_eq!(r, 0, "harness: arch_prctl(ARCH_SET_GS) failed");
    GS_INSTALLED.with(|g| g.set(true));
}

fn pcpu_ptr() -> *mut pcpu {
    let own = INSTALLED.try_with(Cell::get).unwrap_or(0);
    if own != 0 {
        return own as *mut pcpu;
    }
    let pc = PCPU.load(Ordering::Acquire);
    assert!(pc != 0, "harness: kern::thread::init() was not called");
    pc as *mut pcpu
}

/// The per-CPU block of this OS thread's CPU (its GS base).
pub fn pcpu_base() -> *mut pcpu {
    pcpu_ptr()
}

/// A new per-CPU block for CPU `cpuid` of an SMP machine (curthread
/// thread0 until a thread is installed).
pub fn new_pcpu(cpuid: u32) -> usize {
    global_init();
    let pc = arena::alloc(PCPU_BYTES.max(std::mem::size_of::<pcpu>()), 4096).cast::<pcpu>();
    let td0 = THREAD0.load(Ordering::Acquire) as *mut thread;
    // SAFETY: `pc` is a fresh zeroed page-sized arena block, large enough
    // for `struct pcpu`.
    unsafe {
        (*pc).pc_curthread = td0;
        (*pc).pc_idlethread = td0;
        (*pc).pc_cpuid = cpuid;
        (*pc).pc_prvspace = pc;
        (*pc).pc_dynamic = 0;
    }
    pc as usize
}

/// Makes `pc` (from [`new_pcpu`]) this OS thread's GS base.
pub fn install_pcpu(pc: usize) {
    global_init();
    // SAFETY: ARCH_SET_GS only changes this OS thread's GS base; glibc on
    // x86_64 uses FS for TLS and never touches GS. `pc` is a live arena block.
    let r = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_GS, pc) };
    assert_eq!(r, 0, "harness: arch_prctl(ARCH_SET_GS) failed");
    INSTALLED.with(|c| c.set(pc));
    GS_INSTALLED.with(|g| g.set(true));
}

/// The current kernel thread (`pc_curthread`).
pub fn curthread() -> *mut thread {
    // SAFETY: the pcpu block lives for the whole process.
    unsafe { (*pcpu_ptr()).pc_curthread }
}

/// `pid N tid N (name)` of the current thread, for the trap report; reads
/// without locks and returns `None` before [`init`].
pub fn try_curthread_summary() -> Option<String> {
    let pc = PCPU.load(Ordering::Acquire) as *const pcpu;
    if pc.is_null() {
        return None;
    }
    // SAFETY: the pcpu block and every harness thread and proc object live
    // for the whole process (arena memory, never freed).
    unsafe {
        let td = (*pc).pc_curthread;
        if td.is_null() {
            return None;
        }
        let name: Vec<u8> = (*td)
            .td_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        let pid = (*td).td_proc.as_ref().map_or(-1, |p| p.p_pid);
        Some(format!(
            "{pid} tid {} ({})",
            (*td).td_tid,
            String::from_utf8_lossy(&name)
        ))
    }
}

/// Makes `td` the current thread; returns the previous one.
pub fn set_curthread(td: *mut thread) -> *mut thread {
    assert!(!td.is_null(), "harness: set_curthread(NULL)");
    let pc = pcpu_ptr();
    // SAFETY: the pcpu block lives for the whole process; only one OS thread
    // runs kernel code at a time.
    unsafe {
        let old = (*pc).pc_curthread;
        (*pc).pc_curthread = td;
        old
    }
}

/// Runs `f` with `td` as the current thread, then restores the previous one.
pub fn with_curthread<R>(td: *mut thread, f: impl FnOnce() -> R) -> R {
    let old = set_curthread(td);
    let r = f();
    set_curthread(old);
    r
}

/// Creates a new kernel thread object with the given credential.
pub fn new_thread(cred: Cred) -> *mut thread {
    init();
    let tid = NEXT_TID.fetch_add(1, Ordering::Relaxed);
    let td: *mut thread = arena::alloc_obj();
    match cred {
        Cred::Kernel => {
            let p0 = PROC0.load(Ordering::Acquire) as *mut proc_;
            // SAFETY: proc0 is a live arena object set up by `init`.
            let cr = unsafe { (*p0).p_ucred };
            // SAFETY: `cr` is proc0's live credential; one more holder.
            unsafe { (*cr).cr_ref += 1 };
            setup_thread(td, tid, p0, cr, "ng_queue");
        }
        Cred::Root | Cred::User(_) => {
            let uid = if let Cred::User(u) = cred { u } else { 0 };
            let cr = new_cred(uid);
            let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
            let p = new_proc(pid, "ngharness", cr);
            setup_thread(td, tid, p, cr, "ngharness");
        }
    }
    td
}

/// Is `td` a thread object the harness created?
pub fn is_thread(td: usize) -> bool {
    THREADS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&td)
}

/// Checks that `td` is a thread object the harness created (thread0 or
/// [`new_thread`]); those are never freed. Panics otherwise (a harness bug).
fn harness_thread(td: *mut thread) -> *mut thread {
    let known = THREADS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&(td as usize));
    assert!(known, "harness: {td:p} is not a harness thread");
    td
}

/// Sets `td_name` (at most 19 characters are kept) of a harness thread.
pub fn set_thread_name(td: *mut thread, name: &str) {
    let td = harness_thread(td);
    // SAFETY: harness threads are live arena objects, never freed.
    unsafe { set_cstr(&mut (*td).td_name, name) };
}

/// thread0 (the kernel's first thread, proc0's credential).
pub fn thread0() -> *mut thread {
    init();
    THREAD0.load(Ordering::Acquire) as *mut thread
}

/// proc0.
pub fn proc0() -> *mut proc_ {
    init();
    PROC0.load(Ordering::Acquire) as *mut proc_
}

/// prison0 (`cr_prison` of every harness credential).
pub fn prison0() -> *mut prison {
    init();
    PRISON0.load(Ordering::Acquire) as *mut prison
}

/// The default vnet (what the kernel's `vnet0` pointer points at).
pub fn vnet0() -> *mut vnet {
    init();
    VNET0.load(Ordering::Acquire) as *mut vnet
}

/// `td_critnest` (critical-section nesting) of a harness thread.
pub fn critnest(td: *mut thread) -> u32 {
    let td = harness_thread(td);
    // SAFETY: harness threads are live arena objects, never freed.
    unsafe { (*td).td_critnest }
}

/// `td_vnet` of the current thread (`curvnet`).
pub fn curvnet() -> *mut vnet {
    // SAFETY: curthread is a live thread object.
    unsafe { (*curthread()).td_vnet }
}

/// Sets `curvnet` (`curthread->td_vnet`); returns the previous value
/// (`CURVNET_SET` / `CURVNET_RESTORE`).
pub fn set_curvnet(v: *mut vnet) -> *mut vnet {
    let td = curthread();
    // SAFETY: curthread is a live thread object.
    unsafe {
        let old = (*td).td_vnet;
        (*td).td_vnet = v;
        old
    }
}

/// Reports a violation if the current thread is inside a critical section
/// (for checks at the end of a scenario step).
pub fn check_not_critical(context: &str) {
    let n = critnest(curthread());
    if n != 0 {
        violation(format!(
            "{context}: thread left in a critical section (td_critnest = {n})"
        ));
    }
}

// ---- exported kernel functions -------------------------------------------

const EPERM: c_int = fbsd_sys::EPERM as c_int;

unsafe extern "C" fn k_priv_check_cred(cred: *mut ucred, privilege: c_int) -> c_int {
    if cred.is_null() {
        violation(format!(
            "priv_check_cred(NULL, {privilege}): NULL credential"
        ));
        return EPERM;
    }
    if privilege <= 0 {
        violation(format!("priv_check_cred: invalid privilege {privilege}"));
        return EPERM;
    }
    // SAFETY: `cred` is a credential handed in by the module; the harness only
    // creates credentials in the arena and the module must pass a live one.
    let uid = unsafe { (*cred).cr_uid };
    if uid == 0 {
        0
    } else {
        EPERM
    }
}

unsafe extern "C" fn k_priv_check(td: *mut thread, privilege: c_int) -> c_int {
    if td.is_null() {
        violation(format!("priv_check(NULL, {privilege}): NULL thread"));
        return EPERM;
    }
    // SAFETY: `td` is a thread pointer handed in by the module (normally
    // curthread); thread objects are never freed.
    let cred = unsafe { (*td).td_ucred };
    // SAFETY: forwarding to the credential check with the thread's credential.
    unsafe { k_priv_check_cred(cred, privilege) }
}

/// `priv_check(td, privilege)` for the rest of the kernel model: 0, or
/// `EPERM` (the credential is not root).
///
/// # Safety
///
/// `td` is NULL (reported as a violation) or a harness thread object.
pub unsafe fn priv_check(td: *mut thread, privilege: c_int) -> c_int {
    // SAFETY: the caller's contract (threads are never freed).
    unsafe { k_priv_check(td, privilege) }
}

unsafe extern "C" fn k_critical_enter() {
    let td = curthread();
    // SAFETY: curthread is a live thread object.
    unsafe { (*td).td_critnest += 1 };
}

unsafe extern "C" fn k_critical_exit() {
    let td = curthread();
    // SAFETY: curthread is a live thread object.
    unsafe {
        if (*td).td_critnest == 0 {
            violation("critical_exit: td_critnest == 0");
            return;
        }
        (*td).td_critnest -= 1;
    }
}

unsafe extern "C" fn k_crhold(cr: *mut ucred) -> *mut ucred {
    if cr.is_null() {
        violation("crhold(NULL)");
        return cr;
    }
    // SAFETY: a live credential handed in by the module.
    unsafe { (*cr).cr_ref += 1 };
    cr
}

unsafe extern "C" fn k_crfree(cr: *mut ucred) {
    if cr.is_null() {
        violation("crfree(NULL)");
        return;
    }
    // SAFETY: a live credential handed in by the module. Harness credentials
    // are never freed, so even an over-released one stays readable.
    unsafe {
        let r: c_long = (*cr).cr_ref;
        if r <= 1 {
            violation(format!(
                "crfree: credential {cr:p} (uid {}) released more often than held (cr_ref {r})",
                (*cr).cr_uid
            ));
            return;
        }
        (*cr).cr_ref = r - 1;
    }
}

unsafe extern "C" fn k_jailed(cr: *mut ucred) -> c_int {
    if cr.is_null() {
        violation("jailed(NULL)");
        return 0;
    }
    // SAFETY: a live credential handed in by the module.
    let pr = unsafe { (*cr).cr_prison };
    c_int::from(pr != prison0())
}

/// Exports the thread/credential services and data objects.
pub fn register(ex: &mut Exports) {
    init();
    ex.func("priv_check", k_priv_check as *const () as usize);
    ex.func("priv_check_cred", k_priv_check_cred as *const () as usize);
    ex.func("critical_enter", k_critical_enter as *const () as usize);
    ex.func("critical_exit", k_critical_exit as *const () as usize);
    ex.func("critical_enter_KBI", k_critical_enter as *const () as usize);
    ex.func("critical_exit_KBI", k_critical_exit as *const () as usize);
    ex.func("crhold", k_crhold as *const () as usize);
    ex.func("crfree", k_crfree as *const () as usize);
    ex.func("jailed", k_jailed as *const () as usize);
    ex.data("prison0", prison0() as usize);
    ex.data("vnet0", VNET0_CELL.load(Ordering::Acquire));
    ex.data("proc0", proc0() as usize);
    ex.data("thread0_st", thread0() as usize);
    let dp = DPCPU.load(Ordering::Acquire);
    ex.data("__start_set_pcpu", dp);
    ex.data("__stop_set_pcpu", dp + DPCPU_BYTES);
}
