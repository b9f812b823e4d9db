//! The symbols netgraph.ko exports for ng_parse (docs/netgraph-model.md §1.9), as a
//! loaded module sees them: data objects in the low arena with FreeBSD's
//! layout and supertype links, and C-ABI functions.

use core::ffi::{c_char, c_int};
use std::ffi::CString;

use fbsd_sys::{ng_parse_fixedstring_info, ng_parse_type};
use ngharness::exports::{Exports, Kind};
use ngharness::netgraph::parse as p;

const DATA: &[&str] = &[
    "ng_parse_struct_type",
    "ng_parse_fixedarray_type",
    "ng_parse_array_type",
    "ng_parse_int8_type",
    "ng_parse_uint8_type",
    "ng_parse_hint8_type",
    "ng_parse_int16_type",
    "ng_parse_uint16_type",
    "ng_parse_hint16_type",
    "ng_parse_int32_type",
    "ng_parse_uint32_type",
    "ng_parse_hint32_type",
    "ng_parse_int64_type",
    "ng_parse_uint64_type",
    "ng_parse_hint64_type",
    "ng_parse_string_type",
    "ng_parse_fixedstring_type",
    "ng_parse_sizedstring_type",
    "ng_parse_nodebuf_type",
    "ng_parse_hookbuf_type",
    "ng_parse_pathbuf_type",
    "ng_parse_typebuf_type",
    "ng_parse_cmdbuf_type",
    "ng_parse_ipaddr_type",
    "ng_parse_enaddr_type",
    "ng_parse_bytearray_type",
    "ng_parse_ng_mesg_type",
    "ng_parse_nodebuf_info",
    "ng_parse_hookbuf_info",
    "ng_parse_pathbuf_info",
    "ng_parse_typebuf_info",
    "ng_parse_cmdbuf_info",
];

const FUNCS: &[&str] = &[
    "ng_parse",
    "ng_unparse",
    "ng_parse_getDefault",
    "ng_parse_get_token",
    "ng_get_string_token",
    "ng_encode_string",
];

fn exports() -> Exports {
    let mut ex = Exports::new();
    p::register(&mut ex);
    ex
}

fn ty(ex: &Exports, name: &str) -> *const ng_parse_type {
    ex.get(name).unwrap().addr as *const ng_parse_type
}

#[test]
fn symbol_table() {
    let ex = exports();
    assert_eq!(ex.len(), DATA.len() + FUNCS.len());
    for name in DATA {
        let s = ex
            .get(name)
            .unwrap_or_else(|| panic!("{name} not exported"));
        assert_eq!(s.kind, Kind::Data, "{name}");
        assert!(
            ngharness::arena::contains(s.addr),
            "{name} outside the arena"
        );
        assert_eq!(p::symbol(name), Some(s.addr));
    }
    for name in FUNCS {
        assert_eq!(
            ex.get(name)
                .unwrap_or_else(|| panic!("{name} not exported"))
                .kind,
            Kind::Func
        );
    }
    assert_eq!(p::type_by_name("ng_parse_int8_type"), Some(p::types().int8));
    assert_eq!(p::type_by_name("ng_parse_cmdbuf_info"), None);
    // Registering twice exports the same objects.
    assert_eq!(
        exports().get("ng_parse_int8_type").unwrap().addr,
        ex.get("ng_parse_int8_type").unwrap().addr
    );
}

#[test]
fn object_layout_as_ng_parse_c() {
    let ex = exports();
    // SAFETY: exported type objects.
    unsafe {
        for (sub, sup, info) in [
            ("ng_parse_uint8_type", "ng_parse_int8_type", 0usize),
            ("ng_parse_hint8_type", "ng_parse_int8_type", 2),
            ("ng_parse_uint16_type", "ng_parse_int16_type", 0),
            ("ng_parse_hint16_type", "ng_parse_int16_type", 2),
            ("ng_parse_uint32_type", "ng_parse_int32_type", 0),
            ("ng_parse_hint32_type", "ng_parse_int32_type", 2),
            ("ng_parse_uint64_type", "ng_parse_int64_type", 0),
            ("ng_parse_hint64_type", "ng_parse_int64_type", 2),
        ] {
            let t = &*ty(&ex, sub);
            assert_eq!(t.supertype, ty(&ex, sup), "{sub}");
            assert_eq!(t.info as usize, info, "{sub}");
            assert!(
                t.parse.is_none()
                    && t.unparse.is_none()
                    && t.getDefault.is_none()
                    && t.getAlign.is_none()
            );
            let base = &*ty(&ex, sup);
            assert!(base.supertype.is_null());
            assert_eq!(base.info as usize, 1, "{sup} is INT_SIGNED");
            assert!(
                base.parse.is_some()
                    && base.unparse.is_some()
                    && base.getDefault.is_some()
                    && base.getAlign.is_some()
            );
        }
        for (name, size) in [
            ("nodebuf", 32),
            ("hookbuf", 32),
            ("pathbuf", 512),
            ("typebuf", 32),
            ("cmdbuf", 32),
        ] {
            let t = &*ty(&ex, &format!("ng_parse_{name}_type"));
            let info = ex.get(&format!("ng_parse_{name}_info")).unwrap().addr
                as *const ng_parse_fixedstring_info;
            assert_eq!(t.supertype, ty(&ex, "ng_parse_fixedstring_type"));
            assert_eq!(t.info, info.cast());
            assert_eq!((*info).bufSize, size);
        }
        for name in ["struct", "fixedarray", "array"] {
            let t = &*ty(&ex, &format!("ng_parse_{name}_type"));
            assert!(t.supertype.is_null() && t.info.is_null());
            assert!(
                t.parse.is_some()
                    && t.unparse.is_some()
                    && t.getDefault.is_some()
                    && t.getAlign.is_some()
            );
        }
        for name in ["string", "fixedstring", "sizedstring", "bytearray"] {
            let t = &*ty(&ex, &format!("ng_parse_{name}_type"));
            assert!(t.getDefault.is_some() && t.getAlign.is_none(), "{name}");
        }
        let en = &*ty(&ex, "ng_parse_enaddr_type");
        assert!(en.getDefault.is_none() && en.getAlign.is_none());
        let ip = ty(&ex, "ng_parse_ipaddr_type");
        assert_eq!((*ip).getAlign.unwrap()(ip), 4);
        let m = ty(&ex, "ng_parse_ng_mesg_type");
        assert_eq!((*m).supertype, ty(&ex, "ng_parse_struct_type"));
        let st = ty(&ex, "ng_parse_struct_type");
        assert_eq!((*st).getAlign.unwrap()(m), 4);
        // A module calls a predefined method directly, e.g. the struct parse on its own subtype.
        let parse = (*st).parse.unwrap();
        let s = CString::new("{ arglen=2 data=[ 7 ] }").unwrap();
        let mut buf = [0u8; 64];
        let (mut off, mut len): (c_int, c_int) = (0, 64);
        assert_eq!(
            parse(
                m,
                s.as_ptr(),
                &mut off,
                buf.as_ptr(),
                buf.as_mut_ptr(),
                &mut len
            ),
            0
        );
        assert_eq!(len, 60);
        assert_eq!(buf[56], 7);
    }
}

type NgParse = unsafe extern "C" fn(
    *const ng_parse_type,
    *const c_char,
    *mut c_int,
    *mut u8,
    *mut c_int,
) -> c_int;
type NgUnparse = unsafe extern "C" fn(*const ng_parse_type, *const u8, *mut c_char, c_int) -> c_int;
type NgDefault = unsafe extern "C" fn(*const ng_parse_type, *mut u8, *mut c_int) -> c_int;
type NgToken = unsafe extern "C" fn(*const c_char, *mut c_int, *mut c_int) -> u32;

#[test]
fn exported_functions() {
    let ex = exports();
    let f = |n: &str| ex.get(n).unwrap().addr;
    // SAFETY: the exported addresses are functions with these C signatures.
    unsafe {
        let ng_parse: NgParse = std::mem::transmute(f("ng_parse"));
        let ng_unparse: NgUnparse = std::mem::transmute(f("ng_unparse"));
        let ng_default: NgDefault = std::mem::transmute(f("ng_parse_getDefault"));
        let ng_token: NgToken = std::mem::transmute(f("ng_parse_get_token"));
        let int32 = ty(&ex, "ng_parse_int32_type");
        let s = CString::new(" 42 rest").unwrap();
        let mut buf = [0u8; 8];
        let (mut off, mut len): (c_int, c_int) = (0, 8);
        assert_eq!(
            ng_parse(int32, s.as_ptr(), &mut off, buf.as_mut_ptr(), &mut len),
            0
        );
        assert_eq!((off, len, &buf[..4]), (3, 4, &42i32.to_le_bytes()[..]));
        let mut data = vec![0u8; 56];
        data.extend(0x2au32.to_le_bytes());
        let mut out = [0 as c_char; 16];
        let hint32 = ty(&ex, "ng_parse_hint32_type");
        assert_eq!(
            ng_unparse(hint32, data.as_ptr().add(56), out.as_mut_ptr(), 16),
            0
        );
        assert_eq!(
            std::ffi::CStr::from_ptr(out.as_ptr()).to_str().unwrap(),
            "0x2a"
        );
        assert_eq!(
            ng_unparse(hint32, data.as_ptr().add(56), out.as_mut_ptr(), 4),
            fbsd_sys::ERANGE as c_int
        );
        let mut len: c_int = 8;
        assert_eq!(
            ng_default(ty(&ex, "ng_parse_enaddr_type"), buf.as_mut_ptr(), &mut len),
            fbsd_sys::EOPNOTSUPP as c_int
        );
        assert_eq!(
            ng_default(ty(&ex, "ng_parse_uint16_type"), buf.as_mut_ptr(), &mut len),
            0
        );
        assert_eq!(len, 2);
        // T_ERROR leaves *lenp untouched; *startp is left at the quote.
        let s = CString::new("  \"open").unwrap();
        let (mut start, mut len): (c_int, c_int) = (0, 77);
        assert_eq!(
            ng_token(s.as_ptr(), &mut start, &mut len),
            fbsd_sys::T_ERROR
        );
        assert_eq!((start, len), (2, 77));
        let s = CString::new("word=").unwrap();
        let (mut start, mut len): (c_int, c_int) = (0, 0);
        assert_eq!(ng_token(s.as_ptr(), &mut start, &mut len), fbsd_sys::T_WORD);
        assert_eq!((start, len), (0, 4));
    }
}
