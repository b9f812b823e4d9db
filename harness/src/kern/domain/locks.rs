//! Lock helpers of the socket layer: the socket's mutexes go through the
//! harness lock model (`kern::lock`), exactly as the module's own
//! `mtx_lock(&so->so_rcv_mtx)` calls do, so held-lock tracking, recursion and
//! lock-order checks see one consistent picture whoever takes the lock.
//!
//! TODO(integrate): `kern::lock` has no Rust API for init/lock/unlock yet. The
//! helpers below obtain the model's exported C entry points (`_mtx_init`,
//! `__mtx_lock_flags`, ...) from a private symbol table filled by
//! `kern::lock::register`, which only records function addresses. Replace
//! with direct calls once `kern::lock` exports Rust functions.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::Location;
use std::sync::{Mutex, OnceLock};

use fbsd_sys::{mtx, sx};

use crate::exports::Exports;
use crate::kern::thread::curthread;

type InitFn = unsafe extern "C" fn(*mut usize, *const c_char, *const c_char, c_int);
type DestroyFn = unsafe extern "C" fn(*mut usize);
type LockFn = unsafe extern "C" fn(*mut usize, c_int, *const c_char, c_int);

struct MtxFns {
    init: InitFn,
    destroy: DestroyFn,
    lock: LockFn,
    unlock: LockFn,
}

fn fns() -> &'static MtxFns {
    static FNS: OnceLock<MtxFns> = OnceLock::new();
    FNS.get_or_init(|| {
        let mut ex = Exports::new();
        crate::kern::lock::register(&mut ex);
        let get = |name: &str| -> usize {
            ex.get(name)
                .unwrap_or_else(|| panic!("harness: kern::lock does not export {name}"))
                .addr
        };
        // SAFETY: kern::lock exports these names as host functions with the
        // C signatures of FreeBSD's `_mtx_init`, `_mtx_destroy`,
        // `__mtx_lock_flags` and `__mtx_unlock_flags` (cookie = &m->mtx_lock).
        unsafe {
            MtxFns {
                init: std::mem::transmute::<usize, InitFn>(get("_mtx_init")),
                destroy: std::mem::transmute::<usize, DestroyFn>(get("_mtx_destroy")),
                lock: std::mem::transmute::<usize, LockFn>(get("__mtx_lock_flags")),
                unlock: std::mem::transmute::<usize, LockFn>(get("__mtx_unlock_flags")),
            }
        }
    })
}

/// Interned NUL-terminated file names for the lock model's `file:line` notes.
fn cfile(l: &'static Location<'static>) -> *const c_char {
    static FILES: Mutex<Option<HashMap<&'static str, usize>>> = Mutex::new(None);
    let mut g = FILES.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    let p = *map.entry(l.file()).or_insert_with(|| {
        let c = CString::new(l.file()).unwrap_or_default();
        c.into_raw() as usize
    });
    p as *const c_char
}

/// The lock cookie (`&m->mtx_lock`) of mutex `m`.
fn cookie(m: *mut mtx) -> *mut usize {
    // SAFETY: only computes the address of a field of `m`.
    unsafe { std::ptr::addr_of_mut!((*m).mtx_lock).cast() }
}

/// `mtx_init(m, name, NULL, opts)`.
pub(crate) fn mtx_init(m: *mut mtx, name: &'static CStr, opts: u32) {
    // SAFETY: `m` points at a zeroed mutex inside a harness-owned socket;
    // `name` is static, as mtx_init requires.
    unsafe { (fns().init)(cookie(m), name.as_ptr(), std::ptr::null(), opts as c_int) };
}

/// `mtx_destroy(m)`.
pub(crate) fn mtx_destroy(m: *mut mtx) {
    // SAFETY: `m` is an initialised mutex of a harness-owned socket.
    unsafe { (fns().destroy)(cookie(m)) };
}

/// `mtx_lock(m)` (the caller's location is recorded by the lock model).
#[track_caller]
pub(crate) fn mtx_lock(m: *mut mtx) {
    let l = Location::caller();
    // SAFETY: `m` is an initialised mutex; file is a NUL-terminated string.
    unsafe { (fns().lock)(cookie(m), 0, cfile(l), l.line() as c_int) };
}

/// `mtx_unlock(m)`.
#[track_caller]
pub(crate) fn mtx_unlock(m: *mut mtx) {
    let l = Location::caller();
    // SAFETY: as in `mtx_lock`.
    unsafe { (fns().unlock)(cookie(m), 0, cfile(l), l.line() as c_int) };
}

/// `mtx_owned(m)`: the owner word (without flag bits) is the current thread.
pub(crate) fn mtx_owned(m: *mut mtx) -> bool {
    // SAFETY: reads the owner word of a mutex the caller knows to be mapped.
    let w = unsafe { std::ptr::addr_of!((*m).mtx_lock).read_volatile() } as usize;
    w != fbsd_sys::MTX_DESTROYED as usize
        && w & !(fbsd_sys::MTX_FLAGMASK as usize) == curthread() as usize
}

// ---------------------------------------------------------------------------
// The socket I/O sx locks (`so_snd_sx`, `so_rcv_sx`). Modules never take
// them; the socket layer does (sosend/soreceive). The model keeps the owner
// in `sx_lock` like the kernel (an unlocked sx reads `SX_LOCK_UNLOCKED`).

/// `SX_LOCK_UNLOCKED` (shared with no sharers).
const SX_LOCK_UNLOCKED: usize = 0x01;
/// Lock class index of sx locks in the kernel's `lock_classes[]`.
const LO_CLASS_SX: u32 = 2;

/// `sx_init(sx, name)`.
pub(crate) fn sx_init(s: *mut sx, name: &'static CStr) {
    // SAFETY: `s` points at a zeroed sx inside a harness-owned socket.
    unsafe {
        (*s).lock_object.lo_name = name.as_ptr();
        (*s).lock_object.lo_flags =
            fbsd_sys::LO_INITIALIZED | (LO_CLASS_SX << fbsd_sys::LO_CLASSSHIFT);
        (*s).sx_lock = SX_LOCK_UNLOCKED as _;
    }
}

/// `sx_destroy(sx)`.
pub(crate) fn sx_destroy(s: *mut sx) {
    // SAFETY: as in `sx_init`.
    unsafe {
        (*s).lock_object.lo_flags &= !fbsd_sys::LO_INITIALIZED;
        (*s).sx_lock = 0x06 as _; // SX_LOCK_DESTROYED
    }
}

/// The exclusive owner of `s`, if held.
pub(crate) fn sx_owner(s: *mut sx) -> Option<usize> {
    // SAFETY: `s` is an sx of a harness-owned socket.
    let w = unsafe { (*s).sx_lock } as usize;
    (w != SX_LOCK_UNLOCKED && w & !0x7 != 0).then_some(w & !0x7)
}

/// Takes `s` exclusively for the current thread (caller checked it is free).
pub(crate) fn sx_xlock_free(s: *mut sx) {
    // SAFETY: as in `sx_init`.
    unsafe { (*s).sx_lock = curthread() as usize as _ };
}

/// Releases `s`.
pub(crate) fn sx_xunlock(s: *mut sx) {
    // SAFETY: as in `sx_init`.
    unsafe { (*s).sx_lock = SX_LOCK_UNLOCKED as _ };
}
