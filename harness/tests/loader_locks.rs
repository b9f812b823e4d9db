//! mutex(9), thread, credential and critical-section checks, driven from a
//! module built with the kernel flags and from Rust.

mod loader_util;

use loader_util::{call0, kernel};
use ngharness::kern::{self, loader, lock, thread};

fn locks_module() -> Option<i32> {
    let ko = loader_util::fixture("locks", loader_util::Kind::Module)?;
    Some(loader::load(&ko).unwrap_or_else(|e| panic!("{e}")))
}

fn f(id: i32, name: &str) -> usize {
    loader::symbol(id, name).unwrap_or_else(|| panic!("{name}"))
}

fn expect_violation(v: &[String], needle: &str) {
    assert!(
        v.iter().any(|m| m.contains(needle)),
        "no violation containing {needle:?} in {v:#?}"
    );
}

#[test]
fn mutex_misuse_is_reported() {
    let _k = kernel();
    let Some(id) = locks_module() else { return };

    call0::<()>(f(id, "locks_recurse"));
    let v = kern::take_violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    expect_violation(&v, "recursed on non-recursive mutex locks a @ ");
    assert_eq!(lock::held_count(), 0, "the recursion was balanced");

    call0::<()>(f(id, "locks_unlock_unowned"));
    expect_violation(&kern::take_violations(), "mutex locks b not owned @ ");

    call0::<()>(f(id, "locks_uninit"));
    expect_violation(
        &kern::take_violations(),
        "mtx_lock() of uninitialized mutex",
    );

    call0::<()>(f(id, "locks_ab"));
    assert!(kern::take_violations().is_empty());
    call0::<()>(f(id, "locks_ba"));
    let v = kern::take_violations();
    expect_violation(&v, "lock order reversal: \"locks b\" then \"locks a\"");
    // Reported once per pair.
    call0::<()>(f(id, "locks_ba"));
    assert!(kern::take_violations().is_empty());

    call0::<()>(f(id, "locks_hold_a"));
    lock::assert_may_sleep("test sleep");
    expect_violation(
        &kern::take_violations(),
        "test sleep: sleeping with mutex locks a held",
    );
    // Another harness thread taking a held mutex: would deadlock.
    let other = thread::new_thread(thread::Cred::Kernel);
    thread::with_curthread(other, || {
        call0::<()>(f(id, "locks_hold_a"));
        call0::<()>(f(id, "locks_release_a"));
    });
    expect_violation(&kern::take_violations(), "is held by thread");
    assert_eq!(lock::held_count(), 0);

    loader::unload(id).expect("unload");
    assert!(kern::take_violations().is_empty());
}

#[test]
fn mutex_lifecycle_from_rust() {
    let _k = kernel();
    let mut ex = ngharness::exports::Exports::new();
    lock::register(&mut ex);
    type Init = unsafe extern "C" fn(*mut usize, *const i8, *const i8, i32);
    type Op = unsafe extern "C" fn(*mut usize, i32, *const i8, i32);
    type Try = unsafe extern "C" fn(*mut usize, i32, *const i8, i32) -> i32;
    type Destroy = unsafe extern "C" fn(*mut usize);
    // SAFETY: the exported functions have these kernel signatures.
    let (init, lk, ul, tr, de): (Init, Op, Op, Try, Destroy) = unsafe {
        (
            loader_util::export_fn(&ex, "_mtx_init"),
            loader_util::export_fn(&ex, "__mtx_lock_flags"),
            loader_util::export_fn(&ex, "__mtx_unlock_flags"),
            loader_util::export_fn(&ex, "_mtx_trylock_flags_"),
            loader_util::export_fn(&ex, "_mtx_destroy"),
        )
    };
    let m: *mut fbsd_sys::mtx = ngharness::arena::alloc_obj();
    // SAFETY: `m` is a zeroed arena mutex; the cookie is &m->mtx_lock.
    let c = unsafe { std::ptr::addr_of_mut!((*m).mtx_lock) }.cast::<usize>();
    let name = c"rust mtx".as_ptr();
    let nul = std::ptr::null();
    // SAFETY: valid mutex and strings throughout.
    unsafe {
        init(c, name, nul, fbsd_sys::MTX_RECURSE as i32);
        assert_eq!(*c, 0, "MTX_UNOWNED");
        lk(c, 0, nul, 0);
        assert_eq!(*c, thread::curthread() as usize);
        lk(c, 0, nul, 0); // recursion allowed
        assert_eq!((*m).lock_object.lo_data, 1);
        assert_eq!(*c & 1, 1, "MTX_RECURSED");
        assert_eq!(tr(c, 0, nul, 0), 1);
        ul(c, 0, nul, 0);
        ul(c, 0, nul, 0);
        assert_eq!(*c, thread::curthread() as usize);
        ul(c, 0, nul, 0);
        assert_eq!(*c, 0);
        assert!(kern::take_violations().is_empty());
        // Destroying a mutex the caller holds is allowed (kernel behaviour).
        lk(c, 0, nul, 0);
        de(c);
        assert_eq!(*c, fbsd_sys::MTX_DESTROYED as usize);
        assert_eq!(lock::held_count(), 0);
        assert!(kern::take_violations().is_empty());
        lk(c, 0, nul, 0);
        expect_violation(
            &kern::take_violations(),
            "mtx_lock() of destroyed mutex rust mtx",
        );
        ul(c, 0, nul, 0);
        de(c);
        expect_violation(&kern::take_violations(), "is not initialized");
        // Double init without MTX_NEW.
        init(c, name, nul, 0);
        init(c, name, nul, 0);
        expect_violation(&kern::take_violations(), "lock \"rust mtx\"");
        de(c);
    }
}

#[test]
fn critical_sections_privileges_and_credentials() {
    let _k = kernel();
    let mut ex = ngharness::exports::Exports::new();
    thread::register(&mut ex);
    type V = unsafe extern "C" fn();
    type Priv = unsafe extern "C" fn(*mut fbsd_sys::thread, i32) -> i32;
    type Cr = unsafe extern "C" fn(*mut fbsd_sys::ucred);
    // SAFETY: exported functions with these kernel signatures.
    let (enter, exit, pc, crfree): (V, V, Priv, Cr) = unsafe {
        (
            loader_util::export_fn(&ex, "critical_enter_KBI"),
            loader_util::export_fn(&ex, "critical_exit_KBI"),
            loader_util::export_fn(&ex, "priv_check"),
            loader_util::export_fn(&ex, "crfree"),
        )
    };
    // SAFETY: calls with valid harness objects.
    unsafe {
        enter();
        assert_eq!(thread::critnest(thread::curthread()), 1);
        lock::assert_may_sleep("in critical");
        expect_violation(
            &kern::take_violations(),
            "in critical: sleeping inside a critical section",
        );
        exit();
        exit();
        expect_violation(&kern::take_violations(), "critical_exit: td_critnest == 0");
        let user = thread::new_thread(thread::Cred::User(1000));
        let root = thread::new_thread(thread::Cred::Root);
        let kth = thread::new_thread(thread::Cred::Kernel);
        let netgraph_control = fbsd_sys::PRIV_NETGRAPH_CONTROL as i32;
        assert_eq!(pc(user, netgraph_control), 1);
        assert_eq!(pc(root, netgraph_control), 0);
        assert_eq!(pc(kth, netgraph_control), 0);
        assert_eq!((*(*user).td_ucred).cr_prison, thread::prison0());
        assert_eq!((*thread::prison0()).pr_vnet, thread::vnet0());
        assert_eq!((*thread::vnet0()).vnet_magic_n, fbsd_sys::VNET_MAGIC_N);
        assert!((*user).td_vnet.is_null());
        crfree((*user).td_ucred);
        expect_violation(&kern::take_violations(), "released more often than held");
    }
    // The exported `vnet0` is a pointer variable holding vnet0.
    let cell = ex.get("vnet0").unwrap().addr as *const *mut fbsd_sys::vnet;
    // SAFETY: the exported cell lives in the arena.
    assert_eq!(unsafe { *cell }, thread::vnet0());
}
