//! Structs, fixed and variable arrays, byte arrays, ng_mesg, and custom module
//! types that plug into the engine (docs/netgraph-model.md §7.6, docs/ksocket.md §7).

use core::ffi::{c_char, c_int, c_void};
use std::ffi::CString;

use fbsd_sys::{
    ng_parse_array_info, ng_parse_fixedarray_info, ng_parse_struct_field, ng_parse_type,
};
use ngharness::netgraph::parse as p;

const EINVAL: i32 = fbsd_sys::EINVAL as i32;
const ENOENT: i32 = fbsd_sys::ENOENT as i32;
const E2BIG: i32 = fbsd_sys::E2BIG as i32;
const ENOMEM: i32 = fbsd_sys::ENOMEM as i32;
const ERANGE: i32 = fbsd_sys::ERANGE as i32;
const EALREADY: i32 = fbsd_sys::EALREADY as i32;
const EOPNOTSUPP: i32 = fbsd_sys::EOPNOTSUPP as i32;

type Pt = ng_parse_type;

fn parse(t: *const Pt, s: &str) -> Result<Vec<u8>, i32> {
    // SAFETY: predefined types or the well-formed test types below.
    unsafe { p::parse(t, s) }
}

fn unparse(t: *const Pt, d: &[u8]) -> String {
    // SAFETY: as above.
    unsafe { p::unparse(t, d) }.unwrap()
}

fn roundtrip(t: *const Pt, s: &str) -> Vec<u8> {
    let b = parse(t, s).unwrap_or_else(|e| panic!("parse {s:?}: errno {e}"));
    assert_eq!(unparse(t, &b), s);
    b
}

fn leak<T>(v: T) -> *const T {
    Box::leak(Box::new(v))
}

fn cstr(s: &str) -> *const c_char {
    CString::new(s).unwrap().into_raw()
}

fn subtype(supertype: *const Pt, info: *const c_void) -> *const Pt {
    leak(ng_parse_type {
        supertype,
        info,
        ..Default::default()
    })
}

fn strukt(fields: &[(&str, *const Pt, i32)]) -> *const Pt {
    let mut v: Vec<ng_parse_struct_field> = fields
        .iter()
        .map(|&(n, t, a)| ng_parse_struct_field {
            name: cstr(n),
            type_: t,
            alignment: a,
        })
        .collect();
    v.push(ng_parse_struct_field::default());
    subtype(
        p::types().struct_,
        Box::leak(v.into_boxed_slice()).as_ptr().cast(),
    )
}

fn fixedarray(
    elem: *const Pt,
    length: i32,
    get_default: fbsd_sys::ng_parse_array_getDefault_t,
) -> *const Pt {
    let info = leak(ng_parse_fixedarray_info {
        elementType: elem,
        length,
        getDefault: get_default,
    });
    subtype(p::types().fixedarray, info.cast())
}

fn array(elem: *const Pt, get_length: fbsd_sys::ng_parse_array_getLength_t) -> *const Pt {
    let info = leak(ng_parse_array_info {
        elementType: elem,
        getLength: get_length,
        getDefault: None,
    });
    subtype(p::types().array, info.cast())
}

fn bytearray(
    get_length: unsafe extern "C" fn(*const Pt, *const u8, *const u8) -> c_int,
) -> *const Pt {
    subtype(p::types().bytearray, get_length as *const c_void)
}

/// getLength: the u32 just before the array (like namelist/typelist).
unsafe extern "C" fn count_before(_t: *const Pt, _start: *const u8, buf: *const u8) -> c_int {
    // SAFETY: the array follows a u32 count field.
    unsafe { core::ptr::read_unaligned(buf.sub(4).cast::<u32>()) as c_int }
}

unsafe extern "C" fn four(_t: *const Pt, _start: *const u8, _buf: *const u8) -> c_int {
    4
}

unsafe extern "C" fn six(_t: *const Pt, _start: *const u8, _buf: *const u8) -> c_int {
    6
}

/// Per-index default: index + 1.
unsafe extern "C" fn index_plus_one(
    _t: *const Pt,
    index: c_int,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: getDefault contract.
    unsafe {
        if *buflen < 1 {
            return ERANGE;
        }
        *buf = index as u8 + 1;
        *buflen = 1;
    }
    0
}

fn s1() -> *const Pt {
    let t = p::types();
    strukt(&[
        ("a", t.uint8, 0),
        ("b", t.uint32, 0),
        ("c", t.uint16, 0),
        ("d", t.uint8, 0),
    ])
}

#[test]
fn struct_layout_alignment_and_order() {
    let s1 = s1();
    assert_eq!(
        parse(s1, "{ b=1 }").unwrap(),
        [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    );
    let b = parse(s1, "{ d=5 a=1 c=2 b=3 }").unwrap();
    assert_eq!(b, [1, 0, 0, 0, 3, 0, 0, 0, 2, 0, 5, 0]);
    assert_eq!(unparse(s1, &b), "{ a=1 b=3 c=2 d=5 }");
    assert_eq!(parse(s1, "{a=1}").unwrap()[0], 1);
    assert_eq!(parse(s1, "{}").unwrap(), [0; 12]);
    assert_eq!(unparse(s1, &[0; 12]), "{}");
    assert_eq!(
        unparse(s1, &[0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]),
        "{ b=7 }"
    );
    // Field alignment override moves the field; the struct's own alignment ignores it.
    let t = p::types();
    let s2 = strukt(&[("a", t.uint8, 0), ("b", t.uint8, 4)]);
    let b = roundtrip(s2, "{ a=1 b=2 }");
    assert_eq!(b, [1, 0, 0, 0, 2]);
    // Nested: inner struct aligned to 4, total padded to 4.
    let s3 = strukt(&[("x", t.uint16, 0), ("inner", s1, 0), ("y", t.uint8, 0)]);
    let b = parse(s3, "{ y=9 inner={ c=1 } }").unwrap();
    assert_eq!(b.len(), 20);
    assert_eq!(b[12], 1);
    assert_eq!(b[16], 9);
    // FreeBSD quirk: a printed nested struct does not consume its trailing
    // padding (parse adds it, unparse does not skip it), so `y` is read from
    // the pad byte at 15 and, being 0 there, suppressed.
    assert_eq!(unparse(s3, &b), "{ inner={ c=1 } }");
    let mut shifted = b.clone();
    shifted[15] = 7;
    assert_eq!(unparse(s3, &shifted), "{ inner={ c=1 } y=7 }");
    // A suppressed (all-default) nested struct consumes its padded length.
    let b = parse(s3, "{ x=2 y=9 }").unwrap();
    assert_eq!(unparse(s3, &b), "{ x=2 y=9 }");
    // Without trailing padding, nesting round-trips.
    let s5 = strukt(&[("p", t.uint16, 0), ("q", t.uint16, 0)]);
    let s6 = strukt(&[("x", t.uint8, 0), ("inner", s5, 0), ("y", t.uint8, 0)]);
    let b = roundtrip(s6, "{ x=255 inner={ p=1 q=2 } y=5 }");
    assert_eq!(b, [255, 0, 1, 0, 2, 0, 5, 0]);
    // A struct as a top-level default.
    // SAFETY: test type.
    assert_eq!(unsafe { p::get_default(s3, 64) }.unwrap(), vec![0; 20]);
}

#[test]
fn struct_errors() {
    let s1 = s1();
    assert_eq!(parse(s1, "{ x=1 }"), Err(ENOENT));
    assert_eq!(parse(s1, "{ A=1 }"), Err(ENOENT));
    assert_eq!(parse(s1, "{ ab=1 }"), Err(ENOENT));
    assert_eq!(parse(s1, "{ a=1 a=2 }"), Err(EALREADY));
    assert_eq!(parse(s1, "{ a 1 }"), Err(EINVAL));
    assert_eq!(parse(s1, "{ \"a\"=1 }"), Err(EINVAL));
    assert_eq!(parse(s1, "{ a=1"), Err(EINVAL));
    assert_eq!(parse(s1, "a=1"), Err(EINVAL));
    assert_eq!(parse(s1, "[ a=1 ]"), Err(EINVAL));
    assert_eq!(parse(s1, "{ a= }"), Err(EINVAL));
    assert_eq!(parse(s1, "{ ] }"), Err(EINVAL));
    assert_eq!(parse(s1, "{ a=300 }"), Err(EINVAL));
    assert_eq!(parse(s1, ""), Err(EINVAL));
    // Trailing junk inside a number is not diagnosed.
    assert_eq!(parse(s1, "{ a=12abc }").unwrap()[0], 12);
    // Nor after the closer.
    assert_eq!(parse(s1, "{ a=1 } junk").unwrap()[0], 1);
    // Unknown field is found before a later syntax error; a duplicate before a later unknown name.
    assert_eq!(parse(s1, "{ zz=1 a }"), Err(ENOENT));
    assert_eq!(parse(s1, "{ a=1 a=1 zz=1 }"), Err(EALREADY));
}

#[test]
fn struct_strings_defaults_and_quirk() {
    let t = p::types();
    let s4 = strukt(&[
        ("name", t.nodebuf, 0),
        ("mac", t.enaddr, 0),
        ("ip", t.ipaddr, 0),
    ]);
    let b = parse(s4, "{ mac=00:01:02:03:04:05 }").unwrap();
    assert_eq!(b.len(), 44);
    assert_eq!(&b[32..38], &[0, 1, 2, 3, 4, 5]);
    assert_eq!(unparse(s4, &b), "{ mac=00:01:02:03:04:05 }");
    // enaddr has no default: omitting it fails, and it is never suppressed.
    assert_eq!(parse(s4, "{ name=\"x\" }"), Err(EOPNOTSUPP));
    assert_eq!(unparse(s4, &[0; 44]), "{ mac=00:00:00:00:00:00 }");
    roundtrip(s4, "{ name=\"n\\tx\" mac=0a:0b:0c:0d:0e:0f ip=10.0.0.1 }");

    // The token length quirk: \\ and \x.. inside a struct fail (docs/netgraph-model.md §7.3, N8).
    let name = strukt(&[("name", t.nodebuf, 0)]);
    assert_eq!(parse(name, "{ name=\"a\\\\b\" }"), Err(EINVAL));
    assert_eq!(parse(name, "{ name=\"a\\x41\" }"), Err(EINVAL));
    assert_eq!(parse(name, "{ name=\"a\\e\" }"), Err(EINVAL));
    let b = parse(name, "{ name=\"ab\" }").unwrap();
    assert_eq!(&b[..3], b"ab\0");
    assert_eq!(
        &parse(name, "{ name=\"\\101\\t\" }").unwrap()[..3],
        b"A\t\0"
    );
    // ... while at top level the value is still right.
    assert_eq!(&parse(t.nodebuf, "\"a\\\\b\"").unwrap()[..4], b"a\\b\0");
    // An empty string field is suppressed on output.
    let s = strukt(&[("s", t.string, 0), ("n", t.uint8, 0)]);
    assert_eq!(parse(s, "{ n=3 }").unwrap(), [0, 3]);
    assert_eq!(unparse(s, &[0, 3]), "{ n=3 }");
    roundtrip(s, "{ s=\"hi\" n=3 }");
}

#[test]
fn fixedarray_index_notation_and_errors() {
    let t = p::types();
    let fa = fixedarray(t.uint16, 4, None);
    assert_eq!(roundtrip(fa, "[ 1 2 ]"), [1, 0, 2, 0, 0, 0, 0, 0]);
    assert_eq!(roundtrip(fa, "[ 3=7 ]"), [0, 0, 0, 0, 0, 0, 7, 0]);
    roundtrip(fa, "[ 1=5 3=7 ]");
    assert_eq!(unparse(fa, &[0, 0, 5, 0, 6, 0, 0, 0]), "[ 1=5 6 ]");
    assert_eq!(unparse(fa, &[1, 0, 0, 0, 0, 0, 4, 0]), "[ 1 3=4 ]");
    assert_eq!(unparse(fa, &[0; 8]), "[]");
    assert_eq!(parse(fa, "[]").unwrap(), [0; 8]);
    assert_eq!(parse(fa, "[ 0x2=9 ]").unwrap()[4], 9);
    // Explicit index continues the implicit counter.
    assert_eq!(parse(fa, "[ 2=1 9 ]").unwrap(), [0, 0, 0, 0, 1, 0, 9, 0]);
    assert_eq!(parse(fa, "[ 0=1 2 ]").unwrap(), [1, 0, 2, 0, 0, 0, 0, 0]);
    assert_eq!(parse(fa, "[ 4=1 ]"), Err(E2BIG));
    assert_eq!(parse(fa, "[ 1 2 3 4 5 ]"), Err(E2BIG));
    assert_eq!(parse(fa, "[ 1=2 1=3 ]"), Err(EALREADY));
    assert_eq!(parse(fa, "[ 1 0=3 ]"), Err(EALREADY));
    assert_eq!(parse(fa, "[ \"x\" ]"), Err(EINVAL));
    assert_eq!(parse(fa, "[ -1=5 ]"), Err(EINVAL));
    assert_eq!(parse(fa, "[ 1x=2 ]"), Err(EINVAL));
    assert_eq!(parse(fa, "[ -2=5 ]"), Err(E2BIG));
    assert_eq!(parse(fa, "{ 1 }"), Err(EINVAL));
    assert_eq!(parse(fa, "[ 1 2"), Err(EINVAL));
    assert_eq!(parse(fa, "[ 1 } ]"), Err(EINVAL));
    // Whitespace between an index and '=' leaves '=' as the value (FreeBSD quirk).
    // "[ 1 = 5 ]": index 1 gets the text "=", the 5 goes to index 2.
    assert_eq!(parse(fa, "[ 1 = 5 ]"), Err(EINVAL));
    assert_eq!(parse(fa, "[ 1 =5 ]"), Err(EINVAL));
    assert_eq!(parse(fa, "[ 3 = 5 ]"), Err(E2BIG));
    assert_eq!(parse(fa, "[ 1= 5 ]").unwrap()[2], 5);
    // String elements need an explicit index.
    let names = fixedarray(t.hookbuf, 2, None);
    assert_eq!(parse(names, "[ \"a\" ]"), Err(EINVAL));
    let b = parse(names, "[ 1=\"b\" ]").unwrap();
    assert_eq!(b[32], b'b');
    assert_eq!(unparse(names, &b), "[ 1=\"b\" ]");
    // Arrays of structs, implicit and explicit indices.
    let sa = fixedarray(s1(), 3, None);
    let b = roundtrip(sa, "[ { a=1 } 2={ b=2 } ]");
    assert_eq!(b.len(), 36);
    assert_eq!(parse(sa, "[ [ ] ]"), Err(EINVAL));
    // Per-index defaults.
    let pd = fixedarray(t.uint8, 4, Some(index_plus_one));
    assert_eq!(parse(pd, "[]").unwrap(), [1, 2, 3, 4]);
    assert_eq!(unparse(pd, &[1, 2, 3, 4]), "[]");
    assert_eq!(unparse(pd, &[1, 9, 3, 4]), "[ 1=9 ]");
    assert_eq!(roundtrip(pd, "[ 2=0 ]"), [1, 2, 0, 4]);
    // Fixed array alignment follows its elements.
    let s = strukt(&[("c", t.uint8, 0), ("fa", fa, 0)]);
    assert_eq!(
        parse(s, "{ c=1 fa=[ 9 ] }").unwrap(),
        [1, 0, 9, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn variable_array_length_from_earlier_field() {
    let t = p::types();
    let v = strukt(&[
        ("n", t.uint32, 0),
        ("a", array(t.uint16, Some(count_before)), 0),
    ]);
    let b = roundtrip(v, "{ n=3 a=[ 1 2 3 ] }");
    assert_eq!(b, [3, 0, 0, 0, 1, 0, 2, 0, 3, 0, 0, 0]);
    // Textual order does not matter: fields are built in declaration order.
    let b = parse(v, "{ a=[ 1 ] n=2 }").unwrap();
    assert_eq!(b, [2, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(unparse(v, &b), "{ n=2 a=[ 1 ] }");
    assert_eq!(parse(v, "{ n=2 a=[ 1 2 3 ] }"), Err(E2BIG));
    assert_eq!(parse(v, "{ a=[ 1 ] }"), Err(E2BIG));
    assert_eq!(unparse(v, &[2, 0, 0, 0, 0, 0, 0, 0]), "{ n=2 }");
    assert_eq!(unparse(v, &[2, 0, 0, 0, 0, 0, 5, 0]), "{ n=2 a=[ 1=5 ] }");
}

#[test]
fn bytearrays() {
    // docs/netgraph-model.md §7.5's example.
    assert_eq!(
        roundtrip(bytearray(four), "[ 0x1 0x2 3=0xff ]"),
        [1, 2, 0, 0xff]
    );
    let ba = bytearray(six);
    let b = roundtrip(ba, "[ 0x1e 0x61 0x7f 5=0x1 ]");
    assert_eq!(b, [0x1e, 0x61, 0x7f, 0, 0, 1]);
    assert_eq!(parse(ba, "\"ab\"").unwrap(), [b'a', b'b', 0, 0, 0, 0]);
    assert_eq!(parse(ba, "\"abcdef\"").unwrap(), *b"abcdef");
    assert_eq!(parse(ba, "\"abcdefg\""), Err(E2BIG));
    assert_eq!(parse(ba, "[ 1 2 3 4 5 6 7 ]"), Err(E2BIG));
    assert_eq!(parse(ba, "[ 256 ]"), Err(EINVAL));
    assert_eq!(parse(ba, "[ -1 255 ]").unwrap(), [0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(parse(ba, "  [ 1 ]").unwrap()[0], 1);
    assert_eq!(unparse(ba, &[0; 6]), "[]");
    assert_eq!(unparse(ba, b"hello\0"), "[ 0x68 0x65 0x6c 0x6c 0x6f ]");
    // String form: the array must fit the output space.
    // SAFETY: test type.
    let r = unsafe { p::parse_with_header(ba, b"\"ab\"", &p::header(5), 5) };
    assert_eq!(r, Err(ERANGE));
    // SAFETY: predefined types.
    assert_eq!(unsafe { p::get_default(ba, 16) }.unwrap(), [0; 6]);
}

#[test]
fn ng_mesg_type() {
    let t = p::types();
    let text = "{ version=8 arglen=4 cmd=1 flags=0x1 token=5 typecookie=1137070366 cmdstr=\"abc\" data=[ 0x61 0x62 0x63 ] }";
    let b = roundtrip(t.ng_mesg, text);
    assert_eq!(b.len(), 60);
    assert_eq!(b[0], 8);
    assert_eq!(&b[4..8], &4u32.to_le_bytes());
    assert_eq!(&b[20..24], &1137070366u32.to_le_bytes());
    assert_eq!(&b[24..28], b"abc\0");
    assert_eq!(&b[56..60], b"abc\0");
    // The data length is the arglen just parsed, also with a string.
    let b = parse(t.ng_mesg, "{ data=\"hi\" arglen=3 }").unwrap();
    assert_eq!(b.len(), 60);
    assert_eq!(&b[56..59], b"hi\0");
    assert_eq!(
        unparse(t.ng_mesg, &b[..59]),
        "{ arglen=3 data=[ 0x68 0x69 ] }"
    );
    assert_eq!(parse(t.ng_mesg, "{ data=\"hi\" }"), Err(E2BIG));
    assert_eq!(unparse(t.ng_mesg, &[0; 56]), "{}");
}

// ---------------------------------------------------------------------------
// A module-style custom type: ksocket's struct sockaddr (docs/ksocket.md §7.1)
// ---------------------------------------------------------------------------

/// The generic sockaddr struct, built once (stands for a module's static data).
fn generic_sockaddr() -> *const Pt {
    static G: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *G.get_or_init(|| {
        let t = p::types();
        strukt(&[
            ("len", t.uint8, 0),
            ("family", t.uint8, 0),
            ("data", bytearray(sockdata_length), 0),
        ]) as usize
    }) as *const Pt
}

/// `data` length = sa_len - 2 (the struct is parsed in field order).
unsafe extern "C" fn sockdata_length(_t: *const Pt, _start: *const u8, buf: *const u8) -> c_int {
    // SAFETY: `data` follows `len` and `family`.
    let sa_len = unsafe { *buf.sub(2) } as c_int;
    if sa_len < 2 {
        0
    } else {
        sa_len - 2
    }
}

/// Custom parse: generic form delegated to the supertype's parse method, as a
/// module does through `ng_parse_struct_type.parse`; else `inet/A.B.C.D[:port]`.
unsafe extern "C" fn sockaddr_parse(
    _t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: parse-method contract.
    unsafe {
        let bytes = std::ffi::CStr::from_ptr(s).to_bytes();
        let mut i = *off as usize;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        *off = i as c_int;
        if bytes.get(i) == Some(&b'{') {
            let g = generic_sockaddr();
            let parse = (*(*g).supertype).parse.unwrap();
            return parse(g, s, off, start, buf, buflen);
        }
        let rest = &bytes[i..];
        let Some(addr) = rest.strip_prefix(b"inet/") else {
            return EINVAL;
        };
        let end = addr
            .iter()
            .position(|c| !(c.is_ascii_digit() || *c == b'.' || *c == b':'))
            .unwrap_or(addr.len());
        let text = std::str::from_utf8(&addr[..end]).unwrap();
        let (ip, port) = match text.split_once(':') {
            Some((ip, port)) => (ip, port.parse::<u16>().map_err(|_| EINVAL)),
            None => (text, Ok(0)),
        };
        let Ok(port) = port else { return EINVAL };
        let Ok(ip) = ip.parse::<std::net::Ipv4Addr>() else {
            return EINVAL;
        };
        if *buflen < 16 {
            return ERANGE;
        }
        let mut sa = [0u8; 16];
        sa[0] = 16;
        sa[1] = 2;
        sa[2..4].copy_from_slice(&port.to_be_bytes());
        sa[4..8].copy_from_slice(&ip.octets());
        core::ptr::copy_nonoverlapping(sa.as_ptr(), buf, 16);
        *off += (5 + end) as c_int;
        *buflen = 16;
        0
    }
}

/// Custom unparse: `inet/...` for AF_INET, else the supertype's generic form.
unsafe extern "C" fn sockaddr_unparse(
    _t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: unparse-method contract.
    unsafe {
        let sa = data.add(*off as usize);
        if *sa.add(1) != 2 {
            let g = generic_sockaddr();
            let unparse = (*(*g).supertype).unparse.unwrap();
            return unparse(g, data, off, cbuf, cbuflen);
        }
        let b = core::slice::from_raw_parts(sa, 8);
        let port = u16::from_be_bytes([b[2], b[3]]);
        let mut text = format!("inet/{}.{}.{}.{}", b[4], b[5], b[6], b[7]);
        if port != 0 {
            text += &format!(":{port}");
        }
        if text.len() >= cbuflen as usize {
            return ERANGE;
        }
        core::ptr::copy_nonoverlapping(text.as_ptr(), cbuf.cast::<u8>(), text.len());
        *cbuf.add(text.len()) = 0;
        *off += b[0] as c_int;
        0
    }
}

fn sockaddr_type() -> *const Pt {
    leak(ng_parse_type {
        parse: Some(sockaddr_parse),
        unparse: Some(sockaddr_unparse),
        ..Default::default()
    })
}

const LOOPBACK_7777: [u8; 16] = [16, 2, 0x1e, 0x61, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];

#[test]
fn custom_sockaddr_type_delegates_to_struct() {
    let sa = sockaddr_type();
    assert_eq!(roundtrip(sa, "inet/127.0.0.1:7777"), LOOPBACK_7777);
    assert_eq!(
        parse(sa, "{ len=16 family=2 data=[ 0x1e 0x61 0x7f 5=0x1 ] }").unwrap(),
        LOOPBACK_7777
    );
    assert_eq!(
        unparse(generic_sockaddr(), &LOOPBACK_7777),
        "{ len=16 family=2 data=[ 0x1e 0x61 0x7f 5=0x1 ] }"
    );
    // Other families print the generic form (IPv6 [::1]:7777).
    let mut v6 = [0u8; 28];
    v6[0] = 28;
    v6[1] = 28;
    v6[2..4].copy_from_slice(&7777u16.to_be_bytes());
    v6[23] = 1;
    assert_eq!(
        unparse(sa, &v6),
        "{ len=28 family=28 data=[ 0x1e 0x61 21=0x1 ] }"
    );
    assert_eq!(
        parse(sa, "{ len=28 family=28 data=[ 0x1e 0x61 21=0x1 ] }").unwrap(),
        v6
    );
    // Man-page example: fields in any order, len applies to data.
    let b = parse(sa, "{ family=16 len=16 data=[0x70 0x00 0x01 0x23] }").unwrap();
    assert_eq!(&b[..6], &[16, 16, 0x70, 0, 1, 0x23]);
    assert_eq!(b.len(), 16);
    assert_eq!(parse(sa, "{ data=[ 1 ] }"), Err(E2BIG));
    assert_eq!(parse(sa, "{ len=4 family=2 data=\"abc\" }"), Err(E2BIG));
    assert_eq!(
        parse(sa, "{ len=5 family=2 data=\"abc\" }").unwrap(),
        [5, 2, b'a', b'b', b'c']
    );
    // The custom type as a struct field; the engine calls the module's methods.
    let t = p::types();
    let wrap = strukt(&[("id", t.hint32, 0), ("peer", sa, 0)]);
    let b = roundtrip(wrap, "{ id=0x1b peer=inet/127.0.0.1:7777 }");
    assert_eq!(&b[4..20], &LOOPBACK_7777);
    // No default: the field is mandatory and never suppressed.
    assert_eq!(parse(wrap, "{ id=1 }"), Err(EOPNOTSUPP));
    // ACCEPT response (docs/ksocket.md §7.3): generic form nested in a struct.
    let accept = strukt(&[("nodeid", t.hint32, 0), ("addr", generic_sockaddr(), 0)]);
    let mut d = vec![0x1b, 0, 0, 0];
    d.extend_from_slice(&[16, 2, 0xd4, 0x31, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        unparse(accept, &d),
        "{ nodeid=0x1b addr={ len=16 family=2 data=[ 0xd4 0x31 0x7f 5=0x1 ] } }"
    );
    assert_eq!(
        parse(
            accept,
            "{ nodeid=0x1b addr={ len=16 family=2 data=[ 0xd4 0x31 0x7f 5=0x1 ] } }"
        )
        .unwrap(),
        d
    );
}

// ---------------------------------------------------------------------------
// ksocket's sockopt: a getLength that reads the enclosing message header (docs/ksocket.md §7.2)
// ---------------------------------------------------------------------------

/// value length = enclosing arglen - 8, read from the header in front of `start`.
unsafe extern "C" fn sockopt_value_length(
    _t: *const Pt,
    start: *const u8,
    _buf: *const u8,
) -> c_int {
    // SAFETY: `start` is the message argument area, preceded by its header.
    let arglen = unsafe { core::ptr::read_unaligned(start.sub(56).add(4).cast::<u32>()) };
    arglen as c_int - 8
}

fn sockopt_type() -> *const Pt {
    let t = p::types();
    strukt(&[
        ("level", t.int32, 0),
        ("name", t.int32, 0),
        ("value", bytearray(sockopt_value_length), 0),
    ])
}

#[test]
fn sockopt_length_from_enclosing_header() {
    let so = sockopt_type();
    // ASCII2BINARY: the header is the ASCII request's, arglen = text length + 1.
    let text = "{ level=0xffff name=0x4 value=[ 1 ] }";
    let b = parse(so, text).unwrap();
    // 8 + (38 - 8) value bytes, padded to the struct's alignment (4).
    assert_eq!(text.len() + 1, 38);
    assert_eq!(b.len(), 40);
    assert_eq!(&b[..8], &[0xff, 0xff, 0, 0, 4, 0, 0, 0]);
    assert_eq!(b[8], 1);
    assert!(b[9..].iter().all(|&x| x == 0));
    // The same text with an explicit header.
    // SAFETY: test type.
    let b = unsafe { p::parse_with_header(so, text.as_bytes(), &p::header(12), p::A2B_BUFSIZE) }
        .unwrap();
    assert_eq!(b, [0xff, 0xff, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0]);
    // The getopt quirk: the ASCII form always carries a value.
    let getopt = "{ level=0xffff name=0x1002 }";
    assert_eq!(
        parse(so, getopt).unwrap().len(),
        (getopt.len() + 1 + 3) & !3
    );
    // A string value may not exceed arglen - 8.
    // SAFETY: test type.
    let r =
        unsafe { p::parse_with_header(so, b"{ value=\"abcde\" }", &p::header(12), p::A2B_BUFSIZE) };
    assert_eq!(r, Err(E2BIG));
    // BINARY2ASCII of a GETOPT reply: SO_RCVBUF 65536.
    let mut d = vec![0xff, 0xff, 0, 0, 0x02, 0x10, 0, 0];
    d.extend_from_slice(&65536u32.to_le_bytes());
    assert_eq!(unparse(so, &d), "{ level=65535 name=4098 value=[ 2=0x1 ] }");
    assert_eq!(
        unparse(so, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
        "{ value=[ 2=0x1 ] }"
    );
    // Shorter text than the fixed part: negative array length (guess: ENOMEM).
    assert_eq!(parse(so, "{}"), Err(ENOMEM));
}

#[test]
fn output_space_errors() {
    let t = p::types();
    // More than the 20 KiB of ASCII2BINARY, all from defaults: ERANGE.
    let big = fixedarray(t.uint32, 6000, None);
    assert_eq!(parse(big, "[]"), Err(ERANGE));
    // Padding that does not fit: ERANGE.
    let s = strukt(&[("a", t.uint8, 0), ("b", t.uint32, 0)]);
    // SAFETY: test type.
    let r = unsafe { p::parse_with_header(s, b"{}", &p::header(3), 3) };
    assert_eq!(r, Err(ERANGE));
    // SAFETY: test type.
    let r = unsafe { p::parse_with_header(s, b"{}", &p::header(3), 8) };
    assert_eq!(r.unwrap().len(), 8);
    // Unparse into a tiny buffer: ERANGE, with the truncated text NUL-terminated.
    let b = parse(s, "{ a=1 b=2 }").unwrap();
    let mut hdr_and_data = vec![0u8; 56];
    hdr_and_data.extend_from_slice(&b);
    let mut out = [0x55u8; 6];
    // SAFETY: 56 header bytes precede the data; `out` holds 6 bytes.
    let e = unsafe { p::unparse_raw(s, hdr_and_data.as_ptr().add(56), out.as_mut_ptr().cast(), 6) };
    assert_eq!(e, ERANGE);
    assert_eq!(&out, b"{ a=1\0");
    // The Rust API retries with bigger buffers (BINARY2ASCII's doubling).
    let fa = fixedarray(t.hint8, 600, None);
    let text = unparse(fa, &[0xff; 600]);
    assert_eq!(text.len(), 3 + 600 * 5);
    assert!(text.starts_with("[ 0xff 0xff"));
}
