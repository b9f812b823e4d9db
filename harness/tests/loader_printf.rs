//! The kernel printf formatter (FreeBSD kvprintf semantics), called through
//! the harness's `snprintf` with C varargs.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};

use ngharness::kern::printf::ffi::{ngh_printf, ngh_snprintf};
use ngharness::kern::{self, printf};

macro_rules! fmt {
    ($f:expr $(, $a:expr)* $(,)?) => {{
        let mut buf = [0 as c_char; 256];
        // SAFETY: a valid buffer, a C format string and matching arguments.
        let n = unsafe { ngh_snprintf(buf.as_mut_ptr(), buf.len(), $f.as_ptr() $(, $a)*) };
        // SAFETY: snprintf NUL-terminated the buffer.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
        assert_eq!(n as usize, s.len(), "return value of {:?}", $f);
        s
    }};
}

#[test]
fn integer_conversions() {
    assert_eq!(
        fmt!(
            c"%d %i %u",
            -5 as c_int,
            17 as c_int,
            4_000_000_000u32 as c_uint
        ),
        "-5 17 4000000000"
    );
    assert_eq!(
        fmt!(
            c"%x %X %#x %#o %o",
            255 as c_uint,
            255 as c_uint,
            255 as c_uint,
            8 as c_uint,
            0 as c_uint
        ),
        "ff FF 0xff 010 0"
    );
    assert_eq!(
        fmt!(
            c"[%5d][%-5d][%05d][%+d][%+u]",
            42 as c_int,
            42 as c_int,
            -42 as c_int,
            7 as c_int,
            7 as c_uint
        ),
        "[   42][42   ][-0042][+7][+7]"
    );
    assert_eq!(
        fmt!(
            c"[%.3d][%8.3x][%*d][%-*d]",
            5 as c_int,
            10 as c_uint,
            4 as c_int,
            1 as c_int,
            3 as c_int,
            2 as c_int
        ),
        "[005][     00a][   1][2  ]"
    );
    assert_eq!(fmt!(c"[%*d]", -4 as c_int, 9 as c_int), "[9   ]");
    assert_eq!(
        fmt!(
            c"%ld %lu %lld %qd %jd %zd %td",
            -1 as c_long,
            u64::MAX,
            i64::MIN,
            3i64,
            4i64,
            5isize,
            -6isize
        ),
        format!("-1 {} {} 3 4 5 -6", u64::MAX, i64::MIN)
    );
    assert_eq!(
        fmt!(
            c"%hd %hu %hhd %hhu %hhx",
            70000 as c_int,
            70000 as c_int,
            300 as c_int,
            -1 as c_int,
            0x1ff as c_int
        ),
        "4464 4464 44 255 ff"
    );
    assert_eq!(
        fmt!(c"%y %y %r", 255 as c_int, -255 as c_int, 12 as c_uint),
        "ff -ff 12"
    );
}

#[test]
fn pointers_chars_strings() {
    assert_eq!(
        fmt!(
            c"%p %p",
            0x1234usize as *const c_void,
            std::ptr::null::<c_void>()
        ),
        "0x1234 0"
    );
    assert_eq!(
        fmt!(
            c"[%c][%3c][%-3c][%03c]",
            'a' as c_int,
            'b' as c_int,
            'c' as c_int,
            'd' as c_int
        ),
        "[a][  b][c  ][00d]"
    );
    assert_eq!(
        fmt!(
            c"[%s][%6s][%-6s][%.2s][%s]",
            c"abc".as_ptr(),
            c"abc".as_ptr(),
            c"abc".as_ptr(),
            c"abc".as_ptr(),
            std::ptr::null::<c_char>()
        ),
        "[abc][   abc][abc   ][ab][(null)]"
    );
    assert_eq!(fmt!(c"100%% %5%"), "100% %");
}

#[test]
fn freebsd_extensions() {
    assert_eq!(
        fmt!(c"reg=%b", 3 as c_int, c"\x0a\x02BITTWO\x01BITONE".as_ptr()),
        "reg=3<BITTWO,BITONE>"
    );
    assert_eq!(
        fmt!(
            c"reg=%b",
            0x11 as c_int,
            c"\x10\x05FIVE\x01ONE\x02TWO".as_ptr()
        ),
        "reg=11<FIVE,ONE>"
    );
    assert_eq!(
        fmt!(c"reg=%b", 0 as c_int, c"\x10\x01ONE".as_ptr()),
        "reg=0"
    );
    let bytes = [0xdeu8, 0xad, 0xbe, 0xef];
    assert_eq!(fmt!(c"%4D", bytes.as_ptr(), c":".as_ptr()), "de:ad:be:ef");
    assert_eq!(
        fmt!(c"%*D", 2 as c_int, bytes.as_ptr(), c" ".as_ptr()),
        "de ad"
    );
}

#[test]
fn unknown_conversion_stops_formatting() {
    // FreeBSD has no ' ' flag: the conversion is copied and the rest of the
    // format is printed literally.
    assert_eq!(fmt!(c"a% d b %d", 1 as c_int, 2 as c_int), "a% d b %d");
    assert_eq!(fmt!(c"x%w %s", 1 as c_int), "x%w %s");
    assert_eq!(fmt!(c"end%"), "end%");
}

#[test]
fn truncation_and_n() {
    let mut small = [0x55 as c_char; 6];
    // SAFETY: a valid buffer and format.
    let n = unsafe {
        ngh_snprintf(
            small.as_mut_ptr(),
            small.len(),
            c"%s".as_ptr(),
            c"abcdefgh".as_ptr(),
        )
    };
    assert_eq!(n, 8);
    // SAFETY: NUL-terminated within the buffer.
    assert_eq!(
        unsafe { std::ffi::CStr::from_ptr(small.as_ptr()) }
            .to_str()
            .unwrap(),
        "abcde"
    );
    // The violation reaches the list only through the hooks (installed here:
    // the tests of this file run in any order, on parallel threads).
    printf::init();
    let _ = kern::take_violations();
    let mut target: c_int = 77;
    assert_eq!(fmt!(c"ab%ncd", &mut target as *mut c_int), "abcd");
    assert_eq!(target, 77, "%n never stores in the FreeBSD kernel");
    let v = kern::take_violations();
    assert!(v.iter().any(|m| m.contains("%n")), "{v:?}");
}

#[test]
fn printf_goes_to_the_console() {
    printf::init();
    let _ = printf::console_take();
    // SAFETY: a C format string with matching arguments.
    let n = unsafe {
        ngh_printf(
            c"hello %s %d\npartial".as_ptr(),
            c"world".as_ptr(),
            3 as c_int,
        )
    };
    assert_eq!(n, 21);
    assert_eq!(printf::console_take(), "hello world 3\npartial");
    printf::kprint("kldload: message");
    assert_eq!(printf::console_take(), "kldload: message\n");
}
