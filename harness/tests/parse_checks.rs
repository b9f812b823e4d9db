//! Robustness of the ng_parse engine: memory accounting and allocation
//! failures (M_NETGRAPH, M_NOWAIT), and the violations the harness reports
//! where FreeBSD would silently misbehave or crash. The tests share global
//! state (allocator, violation list), so they run one at a time.

use core::ffi::{c_char, c_int, c_void};
use std::ffi::CString;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use fbsd_sys::{
    ng_parse_array_info, ng_parse_fixedarray_info, ng_parse_struct_field, ng_parse_type,
};
use ngharness::kern::{malloc, take_violations};
use ngharness::netgraph::parse as p;

const EINVAL: i32 = fbsd_sys::EINVAL as i32;
const ENOMEM: i32 = fbsd_sys::ENOMEM as i32;
const ERANGE: i32 = fbsd_sys::ERANGE as i32;
const EOPNOTSUPP: i32 = fbsd_sys::EOPNOTSUPP as i32;

type Pt = ng_parse_type;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    take_violations();
    g
}

fn leak<T>(v: T) -> *const T {
    Box::leak(Box::new(v))
}

fn subtype(supertype: *const Pt, info: *const c_void) -> *const Pt {
    leak(ng_parse_type {
        supertype,
        info,
        ..Default::default()
    })
}

fn strukt(fields: &[(&str, *const Pt)]) -> *const Pt {
    let mut v: Vec<ng_parse_struct_field> = fields
        .iter()
        .map(|&(n, t)| ng_parse_struct_field {
            name: CString::new(n).unwrap().into_raw(),
            type_: t,
            alignment: 0,
        })
        .collect();
    v.push(ng_parse_struct_field::default());
    subtype(
        p::types().struct_,
        Box::leak(v.into_boxed_slice()).as_ptr().cast(),
    )
}

fn parse(t: *const Pt, s: &str) -> Result<Vec<u8>, i32> {
    // SAFETY: predefined or test types.
    unsafe { p::parse(t, s) }
}

fn unparse(t: *const Pt, d: &[u8]) -> Result<String, i32> {
    // SAFETY: predefined or test types.
    unsafe { p::unparse(t, d) }
}

// ---------------------------------------------------------------------------
// A counting allocator that can fail the Nth allocation
// ---------------------------------------------------------------------------

static OUTSTANDING: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);
static FAIL_AT: AtomicIsize = AtomicIsize::new(-1);

unsafe fn counting_alloc(size: usize) -> *mut u8 {
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    if FAIL_AT.load(Ordering::SeqCst) == n as isize {
        return std::ptr::null_mut();
    }
    OUTSTANDING.fetch_add(1, Ordering::SeqCst);
    // SAFETY: plain libc allocation.
    unsafe { libc::malloc(size.max(1)).cast() }
}

unsafe fn counting_free(ptr: *mut u8) {
    OUTSTANDING.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: from `counting_alloc`.
    unsafe { libc::free(ptr.cast()) }
}

/// Runs `f` with the counting allocator failing allocation number `fail`
/// (-1: none); returns (result, allocations attempted).
fn with_counting<R>(fail: isize, f: impl FnOnce() -> R) -> (R, usize) {
    CALLS.store(0, Ordering::SeqCst);
    FAIL_AT.store(fail, Ordering::SeqCst);
    let prev = p::set_allocator(p::Allocator {
        alloc: counting_alloc,
        free: counting_free,
    });
    let r = f();
    p::set_allocator(prev);
    FAIL_AT.store(-1, Ordering::SeqCst);
    assert_eq!(
        OUTSTANDING.load(Ordering::SeqCst),
        0,
        "engine leaked an allocation"
    );
    (r, CALLS.load(Ordering::SeqCst))
}

type Op = Box<dyn Fn() -> Result<String, i32>>;

fn ops() -> Vec<(&'static str, Op, &'static [i32])> {
    let t = p::types();
    let g = p::generic_types();
    let ok = |r: Result<Vec<u8>, i32>| r.map(|b| format!("{b:?}"));
    let nodeinfo = {
        let mut d = b"x".to_vec();
        d.resize(32, 0);
        d.extend(b"echo");
        d.resize(64, 0);
        d.extend([3, 0, 0, 0, 1, 0, 0, 0]);
        d
    };
    vec![
        // (name, operation, errors allowed when an allocation fails)
        (
            "parse struct",
            Box::new(move || ok(parse(g.mkpeer, "{ type=\"echo\" ourhook=\"a\" }"))),
            &[ENOMEM, EINVAL],
        ),
        (
            "unparse struct",
            Box::new(move || unparse(g.nodeinfo, &nodeinfo)),
            &[ENOMEM],
        ),
        (
            "parse string",
            Box::new(move || ok(parse(t.string, "\"abc\""))),
            &[EINVAL],
        ),
        (
            "unparse string",
            Box::new(move || unparse(t.string, b"abc\0")),
            &[ENOMEM],
        ),
        (
            "parse bytearray string",
            Box::new(move || ok(parse(t.ng_mesg, "{ arglen=3 data=\"ab\" }"))),
            &[ENOMEM, EINVAL],
        ),
        (
            "parse error path",
            Box::new(move || ok(parse(g.mkpeer, "{ type=\"echo\" bad=1 }"))),
            &[ENOMEM, EINVAL],
        ),
        (
            "parse listnodes",
            Box::new(move || {
                ok(parse(
                    g.listnodes,
                    "{ numnames=1 nodeinfo=[ { name=\"a\" } ] }",
                ))
            }),
            &[ENOMEM, EINVAL],
        ),
    ]
}

#[test]
fn allocation_failures_never_leak_or_crash() {
    let _g = serial();
    for (name, op, allowed) in ops() {
        let (clean, n) = with_counting(-1, &op);
        assert!(n > 0, "{name}: no allocation made");
        for k in 0..n {
            let (r, _) = with_counting(k as isize, &op);
            match r {
                Err(e) => assert!(
                    allowed.contains(&e),
                    "{name}: failing allocation {k} gave errno {e}"
                ),
                // A failed tokenizer probe can be harmless; the result must then be unchanged.
                Ok(s) => assert_eq!(Ok(s), clean, "{name}: allocation {k}"),
            }
        }
    }
    // Specific mappings.
    let t = p::types();
    let g = p::generic_types();
    assert_eq!(
        with_counting(0, || parse(g.name, "{ name=\"x\" }")).0,
        Err(ENOMEM)
    );
    assert_eq!(
        with_counting(0, || unparse(g.name, &[0; 32])).0,
        Err(ENOMEM)
    );
    assert_eq!(
        with_counting(0, || parse(t.nodebuf, "\"x\"")).0,
        Err(EINVAL)
    );
    assert_eq!(
        with_counting(0, || unparse(t.nodebuf, &[0; 32])).0,
        Err(ENOMEM)
    );
    let mut off: i32 = 0;
    assert_eq!(
        with_counting(0, || p::get_string_token(b"\"x\"", &mut off)).0,
        None
    );
    assert!(take_violations().is_empty());
}

#[test]
fn kernel_allocator_accounting() {
    let _g = serial();
    let ty = malloc::harness_type("netgraph");
    let before = malloc::live(ty);
    let g = p::generic_types();
    let t = p::types();
    for (_, op, _) in ops() {
        let _ = op();
    }
    let _ = parse(
        g.hooklist,
        "{ nodeinfo={ hooks=1 } linkinfo=[ { ourhook=\"a\\\\b\" } ] }",
    );
    let _ = unparse(t.ng_mesg, &[0; 60]);
    assert_eq!(malloc::live(ty), before, "M_NETGRAPH blocks left behind");
    // A string token handed to a module is an M_NETGRAPH block it frees itself.
    let s = CString::new("  \"tok\" ").unwrap();
    let (mut start, mut len, mut slen): (c_int, c_int, c_int) = (0, 0, 0);
    let f = ng_get_string_token();
    // SAFETY: valid arguments for the exported function.
    let tok = unsafe { f(s.as_ptr(), &mut start, &mut len, &mut slen) };
    assert!(!tok.is_null());
    assert_eq!((start, len, slen), (2, 5, 3));
    assert_eq!(
        malloc::block_info(tok.cast()).map(|b| b.1),
        Some("netgraph".to_string())
    );
    assert_eq!(malloc::live(ty), before + 1);
    malloc::kfree(tok.cast(), ty);
    assert_eq!(malloc::live(ty), before);
    assert!(take_violations().is_empty());
}

fn ng_get_string_token(
) -> unsafe extern "C" fn(*const c_char, *mut c_int, *mut c_int, *mut c_int) -> *mut c_char {
    let mut ex = ngharness::exports::Exports::new();
    p::register(&mut ex);
    let addr = ex.get("ng_get_string_token").unwrap().addr;
    // SAFETY: the exported address is a function with this C signature.
    unsafe {
        std::mem::transmute::<
            usize,
            unsafe extern "C" fn(*const c_char, *mut c_int, *mut c_int, *mut c_int) -> *mut c_char,
        >(addr)
    }
}

// ---------------------------------------------------------------------------
// Violations
// ---------------------------------------------------------------------------

fn assert_violation(what: &str) -> Vec<String> {
    let v = take_violations();
    assert!(
        v.iter().any(|m| m.contains(what)),
        "expected a violation mentioning {what:?}, got {v:?}"
    );
    v
}

unsafe extern "C" fn huge(_t: *const Pt, _start: *const u8, _buf: *const u8) -> c_int {
    100_000
}

#[test]
fn reads_past_arglen() {
    let _g = serial();
    let g = p::generic_types();
    // Short reply: the type is read (zeros in the harness), the id/hooks are past arglen.
    let mut d = vec![0u8; 32];
    d.extend(b"echo\0\0\0\0");
    assert_eq!(unparse(g.nodeinfo, &d), Ok("{ type=\"echo\" }".into()));
    let v = assert_violation("past the message's arglen");
    assert_eq!(v.len(), 1, "{v:?}");
    // A count far beyond the data: the conversion stops.
    let info = leak(ng_parse_array_info {
        elementType: p::types().uint32,
        getLength: Some(huge),
        getDefault: None,
    });
    let arr = subtype(p::types().array, info.cast());
    assert_eq!(unparse(arr, &[1, 0, 0, 0]), Err(EINVAL));
    assert_violation("outside the readable message");
    // A fixed string field without NUL.
    assert_eq!(
        unparse(p::types().nodebuf, &[b'a'; 32]),
        Ok(format!("\"{}\"", "a".repeat(32)))
    );
    let v = assert_violation("has no NUL");
    assert!(
        v.iter().any(|m| m.contains("past the message's arglen")),
        "{v:?}"
    );
    // Well-formed data: nothing reported.
    assert!(unparse(g.nodeinfo, &[0; 72]).is_ok());
    assert!(take_violations().is_empty());

    // The core's BINARY2ASCII entry point: no slack, an over-read fails.
    let mut msg = vec![0u8; 56];
    msg.extend(b"n\0");
    msg.resize(56 + 32, 0);
    msg.extend(b"echo");
    msg.resize(56 + 72, 0);
    let mut out = [0 as c_char; 128];
    // SAFETY: header + 72 readable bytes; `out` holds 128 bytes.
    unsafe {
        let data = msg.as_ptr().add(56);
        assert_eq!(
            p::unparse_raw_checked(g.nodeinfo, data, 72, out.as_mut_ptr(), 128),
            0
        );
        assert_eq!(
            std::ffi::CStr::from_ptr(out.as_ptr()).to_str().unwrap(),
            "{ name=\"n\" type=\"echo\" }"
        );
        assert!(take_violations().is_empty());
        assert_eq!(
            p::unparse_raw_checked(g.nodeinfo, data, 40, out.as_mut_ptr(), 128),
            EINVAL
        );
        assert_violation("outside the readable message");
        // A string with no NUL within arglen.
        assert_eq!(
            p::unparse_raw_checked(p::types().string, data.add(32), 4, out.as_mut_ptr(), 128),
            EINVAL
        );
        assert_violation("no NUL");
    }
}

#[test]
fn writes_past_the_output_space() {
    let _g = serial();
    let t = p::types();
    let info = leak(ng_parse_fixedarray_info {
        elementType: t.int32,
        length: 8,
        getDefault: None,
    });
    let fa = subtype(t.fixedarray, info.cast());
    // SAFETY: test type.
    let r = unsafe { p::parse_with_header(fa, b"[ 4=5 ]", &p::header(8), 16) };
    assert_eq!(r, Err(ERANGE));
    assert_violation("kernel memory corruption");
    // Defaults check their space: plain ERANGE, no violation.
    // SAFETY: test type.
    let r = unsafe { p::parse_with_header(fa, b"[ 1=5 ]", &p::header(8), 16) };
    assert_eq!(r, Err(ERANGE));
    assert!(take_violations().is_empty());
    // A string longer than the space left.
    // SAFETY: predefined type.
    let r = unsafe { p::parse_with_header(t.string, b"\"abcdef\"", &p::header(9), 4) };
    assert_eq!(r, Err(ERANGE));
    assert_violation("string parse method");
}

unsafe extern "C" fn no_nul_unparse(
    _t: *const Pt,
    _d: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: fills the whole buffer without a NUL (a module bug).
    unsafe {
        std::ptr::write_bytes(cbuf, b'z', cbuflen as usize);
        *off += 1;
    }
    0
}

#[test]
fn broken_module_types() {
    let _g = serial();
    let t = p::types();
    // No methods at all.
    let empty = leak(ng_parse_type::default());
    assert_eq!(parse(empty, "1"), Err(EINVAL));
    assert_violation("no parse method");
    assert_eq!(unparse(empty, &[1]), Err(EINVAL));
    assert_violation("no unparse method");
    // SAFETY: test type.
    assert_eq!(unsafe { p::get_default(empty, 8) }, Err(EOPNOTSUPP));
    assert!(take_violations().is_empty());
    // A supertype cycle.
    let cyc = Box::leak(Box::new(ng_parse_type::default()));
    cyc.supertype = cyc as *const Pt;
    assert_eq!(parse(cyc, "1"), Err(EINVAL));
    assert_violation("cycle");
    // A struct that contains itself (the kernel overflows its stack).
    let fields = Box::leak(Box::new([
        ng_parse_struct_field::default(),
        ng_parse_struct_field::default(),
    ]));
    let me = Box::leak(Box::new(ng_parse_type {
        supertype: t.struct_,
        ..Default::default()
    }));
    fields[0] = ng_parse_struct_field {
        name: c"me".as_ptr(),
        type_: me as *const Pt,
        alignment: 0,
    };
    me.info = fields.as_ptr().cast();
    assert_eq!(parse(me, "{}"), Err(EINVAL));
    assert_violation("nested deeper");
    assert_eq!(unparse(me, &[0; 8]), Err(EINVAL));
    assert_violation("nested deeper");
    // An integer subtype with a bogus info word (FreeBSD panics).
    let bogus = subtype(t.int32, 7 as *const c_void);
    assert_eq!(unparse(bogus, &[1, 0, 0, 0]), Err(EINVAL));
    assert_violation("not an integer format");
    // A subtype without info prints as unsigned (info NULL = INT_UNSIGNED).
    let noinfo = subtype(t.int32, std::ptr::null());
    assert_eq!(unparse(noinfo, &[0xff; 4]), Ok("4294967295".into()));
    // A struct without field list.
    let nofields = subtype(t.struct_, std::ptr::null());
    assert_eq!(parse(nofields, "{}"), Err(EINVAL));
    assert_violation("has no info");
    // An element unparse that leaves no NUL in the buffer.
    let bad = leak(ng_parse_type {
        unparse: Some(no_nul_unparse),
        ..Default::default()
    });
    let s = strukt(&[("x", bad)]);
    assert_eq!(unparse(s, &[1]), Err(EINVAL));
    assert_violation("no NUL-terminated text");
    // A negative array length: no violation, ENOMEM (see the report).
    unsafe extern "C" fn negative(_t: *const Pt, _s: *const u8, _b: *const u8) -> c_int {
        -3
    }
    let arr = subtype(
        t.array,
        leak(ng_parse_array_info {
            elementType: t.uint8,
            getLength: Some(negative),
            getDefault: None,
        })
        .cast(),
    );
    assert_eq!(parse(arr, "[]"), Err(ENOMEM));
    assert_eq!(unparse(arr, &[]), Ok("[]".into()));
    assert!(take_violations().is_empty());
}

#[test]
fn encode_string_buffer_bug_is_reported() {
    let _g = serial();
    let mut ex = ngharness::exports::Exports::new();
    p::register(&mut ex);
    let addr = ex.get("ng_encode_string").unwrap().addr;
    // SAFETY: the exported address is ng_encode_string.
    let enc = unsafe {
        std::mem::transmute::<usize, unsafe extern "C" fn(*const c_char, c_int) -> *mut c_char>(
            addr,
        )
    };
    let raw = [b'a', 0, 0, 0, 0, 0, 0];
    // strlen(raw) = 1: the kernel allocates 7 bytes but needs 2 + 1 + 6*4 + 1.
    // SAFETY: `raw` is readable for 7 bytes and NUL-terminated.
    let s = unsafe { enc(raw.as_ptr().cast(), 7) };
    assert_violation("upstream buffer overflow");
    // SAFETY: a NUL-terminated M_NETGRAPH block.
    let text = unsafe { std::ffi::CStr::from_ptr(s) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(text, "\"a\\x00\\x00\\x00\\x00\\x00\\x00\"");
    malloc::kfree(s.cast(), malloc::harness_type("netgraph"));
    // Within strlen: fine.
    // SAFETY: as above.
    let s = unsafe { enc(c"tab\there".as_ptr(), 8) };
    // SAFETY: as above.
    assert_eq!(
        unsafe { std::ffi::CStr::from_ptr(s) }.to_str().unwrap(),
        "\"tab\\there\""
    );
    malloc::kfree(s.cast(), malloc::harness_type("netgraph"));
    assert!(take_violations().is_empty());
}
