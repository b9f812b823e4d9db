//! malloc(9) model: accounting, flag rules, double free, type mismatch,
//! red zones, use after free, malloc_init/malloc_uninit, panics.

mod mem_util;

use std::ffi::{c_int, c_void, CString};

use fbsd_sys::{malloc_type, M_NOWAIT, M_VERSION, M_WAITOK, M_ZERO};
use mem_util::*;
use ngharness::kern::fault::{self, Class, FaultPlan, Rule, Trigger};
use ngharness::kern::malloc::{self, abi, POISON};

const NOWAIT: c_int = M_NOWAIT as c_int;
const WAITOK: c_int = M_WAITOK as c_int;
const ZERO: c_int = M_ZERO as c_int;

fn temp() -> *mut malloc_type {
    malloc::harness_type("temp")
}

/// A module-style `MALLOC_DEFINE` type (leaked, like a module static).
fn module_type(name: &str, version: u64) -> *mut malloc_type {
    let desc = CString::new(name).unwrap().into_raw();
    // SAFETY: an all-zero malloc_type is its C initial state.
    let mut t: malloc_type = unsafe { std::mem::zeroed() };
    t.ks_version = version;
    t.ks_shortdesc = desc;
    Box::into_raw(Box::new(t))
}

#[test]
fn zeroed_and_trashed_allocations() {
    let _g = serial();
    let ty = temp();
    let before = malloc::live(ty);
    // SAFETY: plain malloc(9) calls with a harness type.
    unsafe {
        let z = abi::malloc(100, ty, WAITOK | ZERO).cast::<u8>();
        assert!(!z.is_null());
        assert!(std::slice::from_raw_parts(z, 100).iter().all(|&b| b == 0));
        let j = abi::malloc(64, ty, NOWAIT).cast::<u8>();
        assert!(!j.is_null());
        let words = std::slice::from_raw_parts(j.cast::<u32>(), 16);
        assert!(
            words.iter().all(|&w| w == POISON),
            "fresh memory holds the trash pattern"
        );
        assert_eq!(malloc::live(ty), before + 2);
        assert_eq!(malloc::block_info(z), Some((100, "temp".to_string())));
        assert_eq!(abi::malloc_usable_size(z.cast()), 100);
        abi::free(z.cast(), ty);
        abi::zfree(j.cast(), ty);
        abi::free(std::ptr::null_mut(), ty);
        assert!(malloc::is_freed(z));
    }
    assert_eq!(malloc::live(ty), before);
    expect_clean();
}

#[test]
fn alignment_follows_size_class() {
    let _g = serial();
    let ty = temp();
    // SAFETY: plain malloc(9) calls.
    unsafe {
        for (size, align) in [
            (1usize, 16usize),
            (24, 32),
            (100, 128),
            (512, 512),
            (3000, 4096),
            (100_000, 4096),
        ] {
            let p = abi::malloc(size, ty, WAITOK);
            assert_eq!(p as usize % align, 0, "malloc({size}) alignment");
            abi::free(p, ty);
        }
        let p = abi::malloc_aligned(10, 256, ty, WAITOK);
        assert_eq!(p as usize % 256, 0);
        abi::free(p, ty);
        let p = abi::mallocarray(10, 12, ty, WAITOK | ZERO);
        assert_eq!(malloc::block_info(p.cast()).map(|b| b.0), Some(120));
        abi::free(p, ty);
    }
    expect_clean();
}

#[test]
fn bad_wait_flags_are_a_violation() {
    let _g = serial();
    let ty = temp();
    // SAFETY: plain malloc(9) calls.
    unsafe {
        let p = abi::malloc(8, ty, ZERO);
        assert!(!p.is_null(), "treated as M_WAITOK: never NULL");
        abi::free(p, ty);
        let p = abi::malloc(8, ty, NOWAIT | WAITOK);
        assert!(!p.is_null());
        abi::free(p, ty);
    }
    expect_violations(&[
        "exactly one of M_NOWAIT and M_WAITOK",
        "exactly one of M_NOWAIT and M_WAITOK",
    ]);
}

#[test]
fn double_free_is_caught() {
    let _g = serial();
    let ty = temp();
    // SAFETY: the second free is the bug under test; the block stays quarantined.
    unsafe {
        let p = abi::malloc(32, ty, WAITOK);
        abi::free(p, ty);
        expect_clean();
        abi::free(p, ty);
    }
    let v = expect_violations(&["double free"]);
    assert!(
        v[0].contains("allocated at") && v[0].contains("already freed at"),
        "{v:?}"
    );
}

#[test]
fn type_mismatch_is_caught() {
    let _g = serial();
    // SAFETY: the mismatched free is the bug under test.
    unsafe {
        let p = abi::malloc(16, temp(), WAITOK);
        abi::free(p, malloc::harness_type("devbuf"));
    }
    expect_violations(&["allocated with malloc type temp"]);
}

#[test]
fn write_after_free_is_found_by_the_poison_check() {
    let _g = serial();
    let ty = temp();
    // SAFETY: the write after free is the bug under test (the block is
    // quarantined, so the write lands in harness-owned memory).
    unsafe {
        let p = abi::malloc(48, ty, WAITOK).cast::<u8>();
        abi::free(p.cast(), ty);
        *p.add(20) = 0x41;
    }
    let found = malloc::check_all();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("use after free") && found[0].contains("offset 20"),
        "{found:?}"
    );
    expect_violations(&["use after free"]);
    // Reported once only.
    assert!(malloc::check_all().is_empty());
    expect_clean();
}

#[test]
fn quarantine_eviction_checks_the_poison() {
    let _g = serial();
    let ty = temp();
    // SAFETY: the write after free is the bug under test.
    unsafe {
        let p = abi::malloc(64, ty, WAITOK).cast::<u8>();
        abi::free(p.cast(), ty);
        *p = 1;
        malloc::set_quarantine_limit(0);
    }
    malloc::set_quarantine_limit(malloc::DEFAULT_QUARANTINE);
    expect_violations(&["use after free"]);
}

#[test]
fn overflow_into_the_red_zone_is_caught() {
    let _g = serial();
    let ty = temp();
    // SAFETY: the overflow stays inside the block's red zone (harness memory).
    unsafe {
        let p = abi::malloc(10, ty, WAITOK).cast::<u8>();
        *p.add(10) = 0;
        *p.add(11) = 0;
        abi::free(p.cast(), ty);
    }
    expect_violations(&["buffer overflow: 2 byte(s)"]);
}

#[test]
fn realloc_and_reallocf() {
    let _g = serial();
    let ty = temp();
    // SAFETY: plain realloc(9) use.
    unsafe {
        let p = abi::malloc(4, ty, WAITOK).cast::<u8>();
        p.copy_from_nonoverlapping(b"abcd".as_ptr(), 4);
        let q = abi::realloc(p.cast(), 100, ty, WAITOK).cast::<u8>();
        assert_ne!(p, q, "the harness always moves the block");
        assert!(malloc::is_freed(p));
        assert_eq!(std::slice::from_raw_parts(q, 4), b"abcd");
        // reallocf frees the old block when it fails.
        fault::configure(FaultPlan::rule(Rule::new(Class::Malloc, Trigger::Nth(1))));
        let r = abi::reallocf(q.cast(), 200, ty, NOWAIT);
        assert!(r.is_null());
        assert!(malloc::is_freed(q), "reallocf freed the old block");
        // realloc keeps it.
        fault::configure(FaultPlan::rule(Rule::new(Class::Malloc, Trigger::Nth(2))));
        let s = abi::malloc(8, ty, NOWAIT);
        let t = abi::realloc(s, 300, ty, NOWAIT);
        assert!(t.is_null());
        assert!(
            malloc::is_live(s.cast()),
            "realloc failure leaves the block"
        );
        abi::free(s, ty);
        let n = abi::realloc(std::ptr::null_mut(), 16, ty, WAITOK);
        abi::free(n, ty);
    }
    expect_clean();
}

#[test]
fn malloc_uninit_reports_leaks_with_sites() {
    let _g = serial();
    let ty = module_type("netgraph_test_mod", M_VERSION.into());
    // SAFETY: a MALLOC_DEFINE-style type used like a module would.
    unsafe {
        abi::malloc_init(ty.cast());
        assert_eq!((*ty).ks_version, u64::from(M_VERSION));
        let a = abi::malloc(40, ty, WAITOK);
        let b = abi::malloc(24, ty, WAITOK);
        abi::free(a, ty);
        expect_clean();
        abi::malloc_uninit(ty.cast());
        let v = expect_violations(&["leak: 24 bytes in 1 allocations of type netgraph_test_mod"]);
        assert!(
            v[0].contains("allocated at 0x"),
            "module-style caller address recorded: {v:?}"
        );
        // Using the type after malloc_uninit is a violation; freeing the
        // leaked block now too (the type's statistics are gone).
        let c = abi::malloc(8, ty, WAITOK);
        abi::free(c, ty);
        abi::free(b, ty);
    }
    expect_violations(&[
        "used after malloc_uninit",
        "not initialised",
        "not initialised",
    ]);
    // The leak was reported once: the end-of-scenario check is quiet.
    assert!(malloc::check_all().is_empty());
    expect_clean();
}

#[test]
fn malloc_init_twice_and_uninit_unknown() {
    let _g = serial();
    let ty = module_type("twice", M_VERSION.into());
    let never = module_type("never", M_VERSION.into());
    // SAFETY: MALLOC_DEFINE-style types.
    unsafe {
        abi::malloc_init(ty.cast());
        abi::malloc_init(ty.cast());
        abi::malloc_uninit(ty.cast());
        abi::malloc_uninit(never.cast());
        let p = abi::malloc(8, never, WAITOK);
        abi::free(p, never);
    }
    expect_violations(&[
        "already initialised",
        "not found",
        "never initialised",
        "not initialised",
    ]);
}

#[test]
fn harness_api_records_rust_sites() {
    let _g = serial();
    let ty = malloc::harness_type("netgraph");
    let before = malloc::live_total();
    let p = malloc::kmalloc(33, ty, WAITOK);
    assert_eq!(malloc::live(ty), 1);
    assert_eq!(malloc::live_bytes(ty), 33);
    assert_eq!(malloc::live_total(), before + 1);
    let found = malloc::check_all();
    assert_eq!(found.len(), 1);
    assert!(
        found[0].contains("leak: 33 bytes in 1 allocations of type netgraph"),
        "{found:?}"
    );
    assert!(
        found[0].contains("mem_malloc.rs"),
        "Rust caller location: {found:?}"
    );
    expect_violations(&["leak"]);
    malloc::kfree(p, ty);
    assert_eq!(malloc::live(ty), 0);
    expect_clean();
}

#[test]
fn free_of_unallocated_address_panics() {
    const NAME: &str = "free_of_unallocated_address_panics";
    if is_child(NAME) {
        let mut x = 0u64;
        // SAFETY: the bogus free is the bug under test; it must not return.
        unsafe { abi::free(std::ptr::addr_of_mut!(x).cast::<c_void>(), temp()) };
        unreachable!("free of a stack address returned");
    }
    let err = panics_in_child(NAME);
    assert!(
        err.contains("panic: free: address 0x") && err.contains("has not been allocated."),
        "{err}"
    );
}

#[test]
fn free_inside_a_block_panics() {
    const NAME: &str = "free_inside_a_block_panics";
    if is_child(NAME) {
        // SAFETY: the interior free is the bug under test.
        unsafe {
            let p = abi::malloc(64, temp(), WAITOK).cast::<u8>();
            abi::free(p.add(8).cast(), temp());
        }
        unreachable!();
    }
    let err = panics_in_child(NAME);
    assert!(
        err.contains("8 bytes inside the 64-byte block") && err.contains("has not been allocated"),
        "{err}"
    );
}

#[test]
fn malloc_init_checks_the_version() {
    const NAME: &str = "malloc_init_checks_the_version";
    if is_child(NAME) {
        let ty = module_type("oldmod", 2004_0101);
        // SAFETY: a type with a wrong version: malloc_init panics.
        unsafe { abi::malloc_init(ty.cast()) };
        unreachable!();
    }
    let err = panics_in_child(NAME);
    assert!(
        err.contains("panic: malloc_init: type oldmod with unsupported version 20040101"),
        "{err}"
    );
}

#[test]
fn mallocarray_overflow_panics() {
    const NAME: &str = "mallocarray_overflow_panics";
    if is_child(NAME) {
        // SAFETY: the overflowing request is the bug under test.
        unsafe { abi::mallocarray(usize::MAX / 2, 3, temp(), WAITOK) };
        unreachable!();
    }
    let err = panics_in_child(NAME);
    assert!(
        err.contains("panic: mallocarray:") && err.contains("overflowed"),
        "{err}"
    );
}

#[test]
fn exports_are_registered() {
    let _g = serial();
    let mut ex = ngharness::exports::Exports::new();
    malloc::register(&mut ex);
    for f in [
        "malloc",
        "free",
        "zfree",
        "realloc",
        "reallocf",
        "mallocarray",
        "malloc_init",
        "malloc_uninit",
    ] {
        assert!(ex.get(f).is_some(), "{f} exported");
    }
    for d in [
        "M_TEMP",
        "M_DEVBUF",
        "M_SONAME",
        "M_PCB",
        "M_NETGRAPH",
        "M_NETGRAPH_MSG",
    ] {
        let s = ex.get(d).unwrap_or_else(|| panic!("{d} exported"));
        // SAFETY: exported malloc types are arena objects.
        let t = unsafe { &*(s.addr as *const malloc_type) };
        assert_eq!(t.ks_version, u64::from(M_VERSION));
    }
    assert!(ex.get("M_NETGRAPH_HOOK").is_none(), "static in ng_base.c");
    assert_eq!(
        malloc::type_name(ex.get("M_NETGRAPH_MSG").unwrap().addr as *const _),
        "netgraph_msg"
    );
    expect_clean();
}

#[test]
fn waitok_with_a_mutex_held_is_a_violation() {
    let _g = serial();
    let mut ex = ngharness::exports::Exports::new();
    ngharness::kern::lock::register(&mut ex);
    type Init = unsafe extern "C" fn(*mut usize, *const i8, *const i8, c_int);
    type Lock = unsafe extern "C" fn(*mut usize, c_int, *const i8, c_int);
    type Destroy = unsafe extern "C" fn(*mut usize);
    // SAFETY: the exported addresses are the lock model's C entry points.
    let (init, lock, unlock, destroy) = unsafe {
        (
            std::mem::transmute::<usize, Init>(ex.get("_mtx_init").unwrap().addr),
            std::mem::transmute::<usize, Lock>(ex.get("__mtx_lock_flags").unwrap().addr),
            std::mem::transmute::<usize, Lock>(ex.get("__mtx_unlock_flags").unwrap().addr),
            std::mem::transmute::<usize, Destroy>(ex.get("_mtx_destroy").unwrap().addr),
        )
    };
    // SAFETY: an all-zero struct mtx is its state before mtx_init.
    let mtx: *mut fbsd_sys::mtx = Box::into_raw(Box::new(unsafe { std::mem::zeroed() }));
    let ty = temp();
    // SAFETY: mutex and malloc calls as a module makes them.
    unsafe {
        let c = std::ptr::addr_of_mut!((*mtx).mtx_lock).cast::<usize>();
        init(c, c"memtest".as_ptr().cast(), std::ptr::null(), 0);
        lock(c, 0, c"mem_malloc.rs".as_ptr().cast(), 1);
        let a = abi::malloc(8, ty, NOWAIT);
        expect_clean();
        let b = abi::malloc(8, ty, WAITOK);
        expect_violations(&["malloc: sleeping with mutex memtest held"]);
        let m = ngharness::kern::mbuf::abi::m_get2(10, WAITOK, fbsd_sys::MT_DATA as i16, 0);
        expect_violations(&["m_get2: sleeping with mutex memtest held"]);
        unlock(c, 0, c"mem_malloc.rs".as_ptr().cast(), 2);
        destroy(c);
        ngharness::kern::mbuf::abi::m_freem(m);
        abi::free(a, ty);
        abi::free(b, ty);
    }
    expect_clean();
}
