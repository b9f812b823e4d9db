//! Scalar, address and string types of the ng_parse engine (docs/netgraph-model.md §7.4, §7.5).

use fbsd_sys::ng_parse_type;
use ngharness::netgraph::parse as p;

const EINVAL: i32 = fbsd_sys::EINVAL as i32;
const E2BIG: i32 = fbsd_sys::E2BIG as i32;
const ERANGE: i32 = fbsd_sys::ERANGE as i32;
const EOPNOTSUPP: i32 = fbsd_sys::EOPNOTSUPP as i32;

fn parse(t: *const ng_parse_type, s: &str) -> Result<Vec<u8>, i32> {
    // SAFETY: predefined types.
    unsafe { p::parse(t, s) }
}

fn unparse(t: *const ng_parse_type, d: &[u8]) -> String {
    // SAFETY: predefined types.
    unsafe { p::unparse(t, d) }.unwrap()
}

fn parse_cap(t: *const ng_parse_type, s: &str, cap: usize) -> Result<Vec<u8>, i32> {
    // SAFETY: predefined types.
    unsafe { p::parse_with_header(t, s.as_bytes(), &p::header(s.len() as u32 + 1), cap) }
}

#[test]
fn int8_family() {
    let t = p::types();
    let b = parse(t.int8, "-128").unwrap();
    assert_eq!(b, [0x80]);
    assert_eq!(unparse(t.int8, &b), "-128");
    assert_eq!(unparse(t.uint8, &b), "128");
    assert_eq!(unparse(t.hint8, &b), "0x80");
    // Every variant accepts [-128, 255].
    for ty in [t.int8, t.uint8, t.hint8] {
        assert_eq!(parse(ty, "255").unwrap(), [0xff]);
        assert_eq!(parse(ty, "-128").unwrap(), [0x80]);
        assert_eq!(parse(ty, "256"), Err(EINVAL));
        assert_eq!(parse(ty, "-129"), Err(EINVAL));
    }
    assert_eq!(unparse(t.int8, &[0xff]), "-1");
    assert_eq!(unparse(t.hint8, &[0x0a]), "0xa");
    assert_eq!(unparse(t.hint8, &[0]), "0x0");
    // Base auto-detection, leading whitespace, sign, trailing junk ignored.
    assert_eq!(parse(t.int8, "012").unwrap(), [10]);
    assert_eq!(parse(t.int8, "0x1F").unwrap(), [31]);
    assert_eq!(parse(t.int8, "0X1f").unwrap(), [31]);
    assert_eq!(parse(t.int8, "08").unwrap(), [0]);
    assert_eq!(parse(t.int8, "  \t+7abc").unwrap(), [7]);
    assert_eq!(parse(t.int8, ""), Err(EINVAL));
    assert_eq!(parse(t.int8, "x"), Err(EINVAL));
    assert_eq!(parse(t.int8, "0x"), Err(EINVAL));
    assert_eq!(parse(t.int8, "-"), Err(EINVAL));
    assert_eq!(parse(t.int8, "99999999999999999999999"), Err(EINVAL));
}

#[test]
fn int16_family() {
    let t = p::types();
    let b = parse(t.int16, "65535").unwrap();
    assert_eq!(b, [0xff, 0xff]);
    assert_eq!(unparse(t.int16, &b), "-1");
    assert_eq!(unparse(t.uint16, &b), "65535");
    assert_eq!(unparse(t.hint16, &b), "0xffff");
    assert_eq!(parse(t.uint16, "-32768").unwrap(), [0x00, 0x80]);
    assert_eq!(parse(t.hint16, "65536"), Err(EINVAL));
    assert_eq!(parse(t.int16, "-32769"), Err(EINVAL));
    assert_eq!(parse(t.int16, "0x1234").unwrap(), [0x34, 0x12]);
    assert_eq!(unparse(t.int16, &[0x00, 0x80]), "-32768");
}

#[test]
fn int32_family() {
    let t = p::types();
    assert_eq!(parse(t.int32, "-1").unwrap(), [0xff; 4]);
    // int32 uses strtol: 4294967295 is in range [-2^31, 2^32-1].
    assert_eq!(parse(t.int32, "4294967295").unwrap(), [0xff; 4]);
    assert_eq!(unparse(t.int32, &[0xff; 4]), "-1");
    assert_eq!(unparse(t.uint32, &[0xff; 4]), "4294967295");
    assert_eq!(unparse(t.hint32, &[0xff; 4]), "0xffffffff");
    assert_eq!(parse(t.int32, "4294967296"), Err(EINVAL));
    assert_eq!(parse(t.int32, "-2147483648").unwrap(), [0, 0, 0, 0x80]);
    assert_eq!(parse(t.int32, "-2147483649"), Err(EINVAL));
    // uint32/hint32 use strtoul: -1 wraps to ULONG_MAX, i.e. -1 as a long.
    assert_eq!(parse(t.uint32, "-1").unwrap(), [0xff; 4]);
    assert_eq!(parse(t.hint32, "18446744073709551615").unwrap(), [0xff; 4]);
    assert_eq!(parse(t.uint32, "-2147483649"), Err(EINVAL));
    assert_eq!(parse(t.uint32, "4294967296"), Err(EINVAL));
    assert_eq!(parse(t.hint32, "0x1f").unwrap(), [0x1f, 0, 0, 0]);
    assert_eq!(unparse(t.hint32, &[0x1f, 0, 0, 0]), "0x1f");
    assert_eq!(unparse(t.int32, &1137070366u32.to_le_bytes()), "1137070366");
}

#[test]
fn int64_family() {
    let t = p::types();
    // strtoq for all three: saturation, no range check (docs/netgraph-model.md N12).
    for ty in [t.int64, t.uint64, t.hint64] {
        assert_eq!(
            parse(ty, "18446744073709551615").unwrap(),
            i64::MAX.to_le_bytes()
        );
        assert_eq!(
            parse(ty, "-9223372036854775809").unwrap(),
            i64::MIN.to_le_bytes()
        );
        assert_eq!(parse(ty, "-1").unwrap(), [0xff; 8]);
    }
    assert_eq!(unparse(t.int64, &[0xff; 8]), "-1");
    assert_eq!(unparse(t.uint64, &[0xff; 8]), "18446744073709551615");
    assert_eq!(unparse(t.hint64, &[0xff; 8]), "0xffffffffffffffff");
    assert_eq!(
        unparse(t.uint64, &i64::MAX.to_le_bytes()),
        "9223372036854775807"
    );
    assert_eq!(parse(t.int64, "010").unwrap(), 8i64.to_le_bytes());
    assert_eq!(parse(t.int64, "z"), Err(EINVAL));
}

#[test]
fn defaults_and_alignment() {
    let t = p::types();
    // SAFETY: predefined types.
    unsafe {
        assert_eq!(p::get_default(t.int8, 16).unwrap(), [0]);
        assert_eq!(p::get_default(t.uint16, 16).unwrap(), [0; 2]);
        assert_eq!(p::get_default(t.hint32, 16).unwrap(), [0; 4]);
        assert_eq!(p::get_default(t.int64, 16).unwrap(), [0; 8]);
        assert_eq!(p::get_default(t.int64, 7), Err(ERANGE));
        assert_eq!(p::get_default(t.ipaddr, 16).unwrap(), [0; 4]);
        assert_eq!(p::get_default(t.string, 16).unwrap(), [0]);
        assert_eq!(p::get_default(t.string, 0), Err(ERANGE));
        assert_eq!(p::get_default(t.nodebuf, 64).unwrap(), [0; 32]);
        assert_eq!(p::get_default(t.pathbuf, 511), Err(ERANGE));
        assert_eq!(p::get_default(t.pathbuf, 512).unwrap(), vec![0; 512]);
        assert_eq!(p::get_default(t.sizedstring, 16).unwrap(), [0; 2]);
        assert_eq!(p::get_default(t.enaddr, 16), Err(EOPNOTSUPP));
        let align = |ty: *const ng_parse_type| (*ty).getAlign.map(|f| f(ty));
        // Resolution through the supertype is the engine's; here the objects themselves.
        assert_eq!(align(t.int8), Some(1));
        assert_eq!(align(t.int16), Some(2));
        assert_eq!(align(t.int32), Some(4));
        assert_eq!(align(t.int64), Some(8));
        assert_eq!(align(t.ipaddr), Some(4));
        assert_eq!(align(t.uint32), None);
        assert_eq!(align(t.enaddr), None);
        assert_eq!(align(t.string), None);
        assert_eq!(align(t.bytearray), None);
    }
}

#[test]
fn ipaddr() {
    let t = p::types();
    let b = parse(t.ipaddr, "1.2.3.4").unwrap();
    assert_eq!(b, [1, 2, 3, 4]);
    assert_eq!(unparse(t.ipaddr, &b), "1.2.3.4");
    assert_eq!(parse(t.ipaddr, "0x7f.0.0.01").unwrap(), [127, 0, 0, 1]);
    assert_eq!(parse(t.ipaddr, "-1.0.0.0").unwrap(), [255, 0, 0, 0]);
    assert_eq!(parse(t.ipaddr, "1. 2.\t3.4").unwrap(), [1, 2, 3, 4]);
    assert_eq!(parse(t.ipaddr, "1.2.3"), Err(EINVAL));
    assert_eq!(parse(t.ipaddr, "1.2.3.4.5").unwrap(), [1, 2, 3, 4]);
    assert_eq!(parse(t.ipaddr, "256.1.1.1"), Err(EINVAL));
    assert_eq!(parse(t.ipaddr, "1,2.3.4"), Err(EINVAL));
    assert_eq!(unparse(t.ipaddr, &[192, 168, 0, 255]), "192.168.0.255");
}

#[test]
fn enaddr() {
    let t = p::types();
    let b = parse(t.enaddr, "00:11:22:aa:BB:cc").unwrap();
    assert_eq!(b, [0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc]);
    assert_eq!(unparse(t.enaddr, &b), "00:11:22:aa:bb:cc");
    assert_eq!(
        parse(t.enaddr, "0x1:2:3:4:5:f").unwrap(),
        [1, 2, 3, 4, 5, 15]
    );
    assert_eq!(parse(t.enaddr, "1:2:3:4:5"), Err(EINVAL));
    assert_eq!(parse(t.enaddr, "100:0:0:0:0:0"), Err(EINVAL));
    assert_eq!(parse(t.enaddr, "1-2:3:4:5:6"), Err(EINVAL));
    assert_eq!(parse_cap(t.enaddr, "1:2:3:4:5:6", 5), Err(ERANGE));
    assert_eq!(unparse(t.enaddr, &[0; 6]), "00:00:00:00:00:00");
}

#[test]
fn string_type() {
    let t = p::types();
    let b = parse(t.string, "\"abc\"").unwrap();
    assert_eq!(b, b"abc\0");
    assert_eq!(unparse(t.string, &b), "\"abc\"");
    let b = parse(t.string, "  \"a\\tb\\\"c\\\\\"").unwrap();
    assert_eq!(b, b"a\tb\"c\\\0");
    assert_eq!(unparse(t.string, &b), "\"a\\tb\\\"c\\\\\"");
    // NUL inside: slen bytes are copied, C-string consumers stop at the NUL.
    let b = parse(t.string, "\"a\\0b\"").unwrap();
    assert_eq!(b, b"a\0b\0");
    assert_eq!(unparse(t.string, &b), "\"a\"");
    // \x consumes every following hex digit.
    assert_eq!(parse(t.string, "\"a\\x00b\"").unwrap(), b"a\x0b\0");
    assert_eq!(parse(t.string, "abc"), Err(EINVAL));
    assert_eq!(parse(t.string, "\"abc"), Err(EINVAL));
    assert_eq!(parse(t.string, ""), Err(EINVAL));
    assert_eq!(
        unparse(t.string, &[0x01, 0x7f, 0x80, 0xff, b' ', b'~', 0]),
        "\"\\x01\\x7f\\x80\\xff ~\""
    );
    assert_eq!(unparse(t.string, &[0]), "\"\"");
}

#[test]
fn fixedstring_types() {
    let t = p::types();
    let b = parse(t.nodebuf, "\"abc\"").unwrap();
    assert_eq!(b.len(), 32);
    assert_eq!(&b[..4], b"abc\0");
    assert!(b[4..].iter().all(|&x| x == 0));
    assert_eq!(unparse(t.nodebuf, &b), "\"abc\"");
    let s31 = format!("\"{}\"", "x".repeat(31));
    let s32 = format!("\"{}\"", "x".repeat(32));
    for ty in [t.nodebuf, t.hookbuf, t.typebuf, t.cmdbuf] {
        assert_eq!(parse(ty, &s31).unwrap().len(), 32);
        assert_eq!(parse(ty, &s32), Err(E2BIG));
    }
    let b = parse(t.pathbuf, &format!("\"{}\"", "p".repeat(511))).unwrap();
    assert_eq!(b.len(), 512);
    assert_eq!(
        parse(t.pathbuf, &format!("\"{}\"", "p".repeat(512))),
        Err(E2BIG)
    );
    assert_eq!(parse(t.hookbuf, "hook"), Err(EINVAL));
    // The unparse text stops at the first NUL; the whole field is consumed.
    let mut d = [0u8; 32];
    d[..2].copy_from_slice(b"ab");
    d[5] = b'z';
    assert_eq!(unparse(t.hookbuf, &d), "\"ab\"");
}

#[test]
fn sizedstring() {
    let t = p::types();
    let b = parse(t.sizedstring, "\"ab\\0c\"").unwrap();
    assert_eq!(b, [4, 0, b'a', b'b', 0, b'c']);
    let text = unparse(t.sizedstring, &b);
    assert_eq!(text, "\"ab\\x00c\"");
    // FreeBSD's own output does not round-trip: \x00c reads back as 0x0c.
    assert_eq!(
        parse(t.sizedstring, &text).unwrap(),
        [3, 0, b'a', b'b', 0x0c]
    );
    assert_eq!(parse(t.sizedstring, "\"\"").unwrap(), [0, 0]);
    assert_eq!(unparse(t.sizedstring, &[0, 0]), "\"\"");
    let long = format!("\"{}\"", "q".repeat(300));
    let b = parse(t.sizedstring, &long).unwrap();
    assert_eq!(&b[..2], &300u16.to_le_bytes());
    assert_eq!(unparse(t.sizedstring, &b), long);
    assert_eq!(parse(t.sizedstring, "nope"), Err(EINVAL));
}

#[test]
fn parse_output_space_is_respected() {
    let t = p::types();
    // Types that check *buflen themselves.
    assert_eq!(parse_cap(t.enaddr, "1:2:3:4:5:6", 6).unwrap().len(), 6);
    // SAFETY: predefined types.
    unsafe {
        assert_eq!(p::get_default(t.nodebuf, 31), Err(ERANGE));
        assert_eq!(p::get_default(t.sizedstring, 1), Err(ERANGE));
        assert_eq!(p::get_default(t.ipaddr, 3), Err(ERANGE));
    }
}
