//! Loader integration tests: real FreeBSD-built test modules loaded in-process.

mod loader_util;

use std::ffi::{c_char, c_int};

use loader_util::{call0, cstr_at, kernel, Kind};
use ngharness::kern::{self, loader, printf, thread};

const ENOENT: i32 = 2;
const ENOEXEC: i32 = 8;
const EPERM: i32 = 1;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;

fn sym(id: i32, name: &str) -> usize {
    loader::symbol(id, name).unwrap_or_else(|| panic!("symbol {name} not found"))
}

#[test]
fn good_module_loads_runs_events_in_order_and_unloads() {
    let _k = kernel();
    let ko = module_or_skip!("good");
    let id = loader::load(&ko).unwrap_or_else(|e| panic!("load failed: {e}"));
    assert!(loader::module_loaded("good"));
    let events = sym(id, "good_events");
    // SYSINIT (SI_SUB_DRIVERS/FIRST) before MOD_LOAD (SI_SUB_DRIVERS/MIDDLE);
    // in MOD_LOAD: mutex owned while held, trylock succeeded.
    assert_eq!(cstr_at(events), "ILot");
    let console = printf::console_contents();
    assert!(console.contains("good: sysinit arg=42\n"), "{console}");
    assert!(
        console.contains("good: MOD_LOAD arg=good-arg tid="),
        "{console}"
    );
    assert!(console.contains("cpu=0 priv=0\n"), "{console}");
    assert!(
        console.contains("good: fmt [   42|42   |-0042|ff|FF|0xff|10|z|str|ab|%]\n"),
        "{console}"
    );
    assert!(
        console.contains("good: bits 3<BITTWO,BITONE>\n"),
        "{console}"
    );
    assert!(
        console.contains("good: hex 01:02:03:aa:bb:cc\n"),
        "{console}"
    );

    // COMMON symbol (ld -r turns it into a COMMON section) written by MOD_LOAD.
    // SAFETY: the symbol is an int in the loaded image.
    assert_eq!(unsafe { *(sym(id, "good_common_var") as *const i32) }, 7);
    // SAFETY: good_exported is `int good_exported(int)` in the loaded image.
    let f: extern "C" fn(c_int) -> c_int = unsafe { std::mem::transmute(sym(id, "good_exported")) };
    assert_eq!(f(10), 27);

    // Metadata: the implicit kernel dependency and the explicit netgraph one
    // were satisfied, the module version is provided.
    let tr = loader::take_trace().join("\n");
    assert!(
        tr.contains("MDT_DEPEND  kernel     min=1500068 pref=1500068 max=1599999 -> ok"),
        "{tr}"
    );
    assert!(
        tr.contains("MDT_DEPEND  netgraph   min=12 pref=12 max=12 -> ok"),
        "{tr}"
    );
    assert!(tr.contains("MDT_VERSION good 1"), "{tr}");
    assert!(
        tr.contains("module_register_init(good): MOD_LOAD -> 0"),
        "{tr}"
    );

    // Diagnostics: symbolize module code and stubs.
    let s = loader::symbolize(sym(id, "good_tid") + 1).unwrap();
    assert_eq!(s, "good.ko:good_tid+0x1");
    let stub = loader::stub_of("printf").expect("printf stub");
    assert_eq!(loader::symbolize(stub).unwrap(), "stub for printf");
    assert_ne!(loader::canonical_fn(stub), stub);

    assert!(kern::take_violations().is_empty());
    let tid = loader::symbol(id, "good_tid").unwrap();
    loader::unload(id).expect("unload");
    // The image is gone (PROT_NONE) but still known to the symbolizer.
    assert_eq!(
        loader::symbolize(tid).unwrap(),
        "unloaded good.ko:good_tid+0x0"
    );
}

#[test]
fn events_after_unload_are_in_order() {
    // The image becomes inaccessible on unload, so observe the order through
    // the console instead.
    let _k = kernel();
    let ko = module_or_skip!("good");
    let id = loader::load(&ko).expect("load");
    let _ = printf::console_take();
    loader::unload(id).expect("unload");
    let c = printf::console_take();
    let unload = c.find("good: MOD_UNLOAD").expect("MOD_UNLOAD printed");
    let sysuninit = c.find("good: sysuninit arg=42").expect("sysuninit printed");
    assert!(unload < sysuninit, "{c}");
    let tr = loader::take_trace().join("\n");
    let q = tr.find("MOD_QUIESCE(good) -> 45").expect("quiesce traced");
    let u = tr.find("MOD_UNLOAD(good) -> 0").expect("unload traced");
    assert!(q < u);
    assert!(!loader::module_loaded("good"));
    assert!(loader::file_id("good.ko").is_none());
    assert!(kern::take_violations().is_empty());
}

#[test]
fn curthread_and_pcpu_through_gs() {
    let _k = kernel();
    let ko = module_or_skip!("good");
    let id = loader::load(&ko).expect("load");
    let td = thread::new_thread(thread::Cred::User(1001));
    let old = thread::set_curthread(td);
    assert_eq!(call0::<usize>(sym(id, "good_curthread")), td as usize);
    // SAFETY: td is a live harness thread.
    assert_eq!(call0::<c_int>(sym(id, "good_tid")), unsafe { (*td).td_tid });
    assert_eq!(call0::<u32>(sym(id, "good_cpuid")), 0);
    assert_eq!(
        call0::<usize>(sym(id, "good_prvspace")),
        thread::pcpu_base() as usize
    );
    // Unprivileged user: priv_check(PRIV_NETGRAPH_CONTROL) is EPERM.
    assert_eq!(call0::<c_int>(sym(id, "good_priv")), EPERM);
    thread::set_curthread(old);
    assert_eq!(call0::<c_int>(sym(id, "good_priv")), 0);
    // mtx_owned() inline reads the owner word the harness stores.
    call0::<()>(sym(id, "good_lock"));
    assert_eq!(call0::<c_int>(sym(id, "good_owned")), 1);
    assert_eq!(kern::lock::held_count(), 1);
    assert_eq!(kern::lock::held_names(), vec!["good mtx".to_string()]);
    call0::<()>(sym(id, "good_unlock"));
    assert_eq!(call0::<c_int>(sym(id, "good_owned")), 0);
    assert_eq!(kern::lock::held_count(), 0);
    loader::unload(id).expect("unload");
    assert!(kern::take_violations().is_empty());
}

#[test]
fn busy_module_refuses_unload_and_stays_usable() {
    let _k = kernel();
    let ko = module_or_skip!("busy");
    let id = loader::load(&ko).expect("load");
    assert_eq!(loader::unload(id), Err(EBUSY));
    assert!(loader::module_loaded("busy"));
    let calls = sym(id, "busy_unload_calls");
    // SAFETY: ints in the loaded image.
    assert_eq!(unsafe { *(calls as *const i32) }, 1);
    // Still loaded and reachable; now allow it.
    // SAFETY: as above.
    unsafe { *(sym(id, "busy_allow") as *mut i32) = 1 };
    loader::unload(id).expect("second unload");
    assert!(!loader::module_loaded("busy"));
    assert!(kern::take_violations().is_empty());
}

#[test]
fn quiesce_veto_refuses_unload_without_mod_unload() {
    let _k = kernel();
    let ko = module_or_skip!("quiesce");
    let id = loader::load(&ko).expect("load");
    assert_eq!(loader::unload(id), Err(EBUSY));
    // SAFETY: int in the loaded image.
    assert_eq!(
        unsafe { *(sym(id, "quiesce_unload_calls") as *const i32) },
        0
    );
    // A forced unload ignores the quiesce veto.
    loader::kldunload(id, loader::LINKER_UNLOAD_FORCE).expect("forced unload");
    assert!(!loader::module_loaded("quiesce"));
}

#[test]
fn failing_mod_load_unloads_the_file_with_sysuninits() {
    let _k = kernel();
    let ko = module_or_skip!("modfail");
    let e = loader::load(&ko).expect_err("MOD_LOAD fails");
    assert_eq!(e.errno, ENOEXEC);
    let c = printf::console_take();
    let order = [
        "modfail: sysinit",
        "modfail: MOD_LOAD -> ENXIO",
        "modfail: MOD_UNLOAD",
        "module_register_init: MOD_LOAD (modfail, 0x",
        "modfail: sysuninit",
    ];
    let mut at = 0;
    for o in order {
        let p = c[at..]
            .find(o)
            .unwrap_or_else(|| panic!("{o:?} missing or out of order in:\n{c}"));
        at += p;
    }
    assert!(c.contains(") error 6\n"), "{c}");
    assert!(!loader::module_loaded("modfail"));
    assert!(loader::file_id("modfail").is_none());
}

#[test]
fn bad_relocation_type_is_refused() {
    let _k = kernel();
    let ko = module_or_skip!("badreloc", Kind::SmallModel);
    let e = loader::load(&ko).expect_err("R_X86_64_32 refused");
    assert_eq!(e.errno, ENOENT, "{e}");
    assert!(
        e.messages
            .iter()
            .any(|m| m == "kldload: unexpected relocation type 10"),
        "{e}"
    );
    assert!(
        e.messages
            .iter()
            .any(|m| m == "link_elf_obj: symbol badreloc_target undefined"),
        "{e}"
    );
    assert!(loader::file_id("badreloc").is_none());
    assert!(!loader::module_loaded("badreloc"));
}

#[test]
fn undefined_symbols_are_all_named() {
    let _k = kernel();
    let ko = module_or_skip!("undef");
    let e = loader::load(&ko).expect_err("undefined symbols");
    assert_eq!(e.errno, ENOENT);
    let mut m = e.missing.clone();
    m.sort();
    assert_eq!(
        m,
        vec![
            "no_such_kernel_function".to_string(),
            "no_such_kernel_variable".to_string()
        ]
    );
    assert!(e
        .messages
        .iter()
        .any(|l| l == "link_elf_obj: symbol no_such_kernel_function undefined"));
    assert!(printf::console_contents()
        .contains("link_elf_obj: symbol no_such_kernel_variable undefined\n"));
    assert!(loader::file_id("undef").is_none());
}

#[test]
fn dependency_version_mismatch_is_refused() {
    let _k = kernel();
    let ko = module_or_skip!("depver");
    let e = loader::load(&ko).expect_err("netgraph 13 not available");
    assert_eq!(e.errno, ENOENT);
    assert!(
        e.messages
            .iter()
            .any(|m| m == "KLD depver.ko: depends on netgraph - not available or version mismatch"),
        "{e}"
    );
    assert!(loader::file_id("depver").is_none());
}

#[test]
fn dependency_is_loaded_from_the_module_path_and_linked() {
    let _k = kernel();
    let good = module_or_skip!("good");
    let ko = module_or_skip!("depuser");
    loader::set_module_path(vec![good.parent().unwrap().to_path_buf()]);
    let id = loader::load(&ko).unwrap_or_else(|e| panic!("{e}"));
    // good.ko was loaded as a dependency and depuser called into it.
    let gid = loader::file_id("good.ko").expect("good.ko autoloaded");
    // SAFETY: int in the loaded image.
    assert_eq!(unsafe { *(sym(id, "depuser_result") as *const i32) }, 47);
    // Loaded by the kernel: not unloadable by itself.
    assert_eq!(loader::unload(gid), Err(EBUSY));
    loader::unload(id).expect("unload depuser");
    // Releasing depuser released good.ko too.
    assert!(loader::file_id("good.ko").is_none());
    assert!(!loader::module_loaded("good"));
    loader::set_module_path(Vec::new());
    assert!(kern::take_violations().is_empty());
}

#[test]
fn common_symbols_of_a_plain_object() {
    let _k = kernel();
    let o = module_or_skip!("common", Kind::Object);
    let id = loader::load(&o).unwrap_or_else(|e| panic!("{e}"));
    let var = sym(id, "common_var");
    let big = sym(id, "common_big");
    let info = loader::file_info(id).unwrap();
    assert!(info.contains(var) && info.contains(big + 63 * 8));
    assert_eq!(var % 4, 0);
    assert_eq!(big % 8, 0);
    assert_eq!(call0::<usize>(sym(id, "common_addr")), var);
    // SAFETY: the COMMON array lives in the loaded image.
    assert_eq!(unsafe { *((big + 63 * 8) as *const i64) }, 5);
    loader::unload(id).expect("unload");
}

type KldLoad = unsafe extern "C" fn(*mut Td, *const c_char, *mut c_int) -> c_int;
type KldUnload = unsafe extern "C" fn(*mut Td, c_int, c_int) -> c_int;
type Td = fbsd_sys::thread;

#[test]
fn kern_kldload_by_module_name() {
    let _k = kernel();
    let good = module_or_skip!("good");
    loader::set_module_path(vec![good.parent().unwrap().to_path_buf()]);
    let mut ex = ngharness::exports::Exports::new();
    kern::loader::register(&mut ex);
    // SAFETY: the exported functions have the kernel signatures.
    let kldload: KldLoad = unsafe { loader_util::export_fn(&ex, "kern_kldload") };
    // SAFETY: as above.
    let kldunload: KldUnload = unsafe { loader_util::export_fn(&ex, "kern_kldunload") };
    let root = thread::new_thread(thread::Cred::Root);
    let user = thread::new_thread(thread::Cred::User(1000));
    let mut fid: c_int = -1;
    // SAFETY: valid thread, C string and out pointer.
    unsafe {
        assert_eq!(kldload(user, c"good".as_ptr(), &mut fid), EPERM);
        assert_eq!(kldload(root, c"no_such_module".as_ptr(), &mut fid), ENOENT);
        assert_eq!(kldload(root, c"good".as_ptr(), &mut fid), 0);
        assert!(fid > 1);
        // Already loaded: by module name (MODULE_VERSION) and by file name.
        let mut fid2: c_int = -1;
        assert_eq!(kldload(root, c"good".as_ptr(), &mut fid2), EEXIST);
        assert_eq!(kldload(root, c"good.ko".as_ptr(), &mut fid2), EEXIST);
        assert_eq!(kldunload(user, fid, 0), EPERM);
        assert_eq!(kldunload(root, fid, 0), 0);
        assert_eq!(kldunload(root, fid, 0), ENOENT);
    }
    loader::set_module_path(Vec::new());
    assert!(kern::take_violations().is_empty());
}

#[test]
fn not_an_elf_file() {
    let _k = kernel();
    let dir = loader_util::out_dir();
    let p = dir.join("garbage.ko");
    std::fs::write(
        &p,
        b"this is not an ELF file at all, but long enough for a header...",
    )
    .unwrap();
    assert_eq!(loader::load(&p).unwrap_err().errno, ENOEXEC);
    // An ELF executable (not ET_REL): FreeBSD's "unsupported file type".
    let exe = std::env::current_exe().unwrap();
    let e = loader::load(&exe).unwrap_err();
    assert_eq!(e.errno, ENOEXEC);
    assert!(e.messages[0].ends_with("- unsupported file type"), "{e}");
    assert_eq!(
        loader::load(&dir.join("missing.ko")).unwrap_err().errno,
        ENOENT
    );
}

#[test]
fn gdb_script_is_written_when_asked() {
    let _k = kernel();
    let ko = module_or_skip!("busy");
    std::env::set_var("NGHARNESS_GDB", "1");
    let id = loader::load(&ko).expect("load");
    std::env::remove_var("NGHARNESS_GDB");
    let script = std::fs::read_to_string(format!("{}.gdb", ko.display())).expect("gdb script");
    let text = loader::file_info(id)
        .unwrap()
        .sections
        .iter()
        .find(|s| s.name == ".text")
        .unwrap()
        .addr;
    assert!(script.contains(&format!(
        "add-symbol-file {}",
        std::fs::canonicalize(&ko).unwrap().display()
    )));
    assert!(script.contains(&format!(" {text:#x}")), "{script}");
    assert!(script.contains("-s set_modmetadata_set 0x"), "{script}");
    // SAFETY: int in the loaded image.
    unsafe { *(sym(id, "busy_allow") as *mut i32) = 1 };
    loader::unload(id).expect("unload");
}
