//! The text side of the engine, with FreeBSD kernel semantics: character
//! classes (`sys/ctype.h`), the libkern `strtol` family, the tokenizer, the
//! quoted-string scanner (including its length quirk, docs/netgraph-model.md §7.3),
//! the string encoder and the bounded appender used by every unparse method.

use core::ffi::{c_char, c_int};

use fbsd_sys::{
    T_EOF, T_EQUALS, T_ERROR, T_LBRACE, T_LBRACKET, T_RBRACE, T_RBRACKET, T_STRING, T_WORD,
};

use super::{kalloc, kfree, window_strlen, ERANGE};
use crate::kern::violation;

/// Kernel `isspace`: space and `\t` `\n` `\v` `\f` `\r` (bytes >= 0x80 are not spaces:
/// the kernel's `char` is signed).
pub(crate) fn is_space(c: u8) -> bool {
    c == b' ' || (b'\t'..=b'\r').contains(&c)
}

fn is_xdigit(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn xdigit_value(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        _ => u32::from(c.to_ascii_lowercase() - b'a') + 10,
    }
}

/// Reads the byte at `s[i]`.
///
/// # Safety
/// `s + i` must be readable (inside the NUL-terminated string the caller scans).
pub(crate) unsafe fn at(s: *const u8, i: c_int) -> u8 {
    // SAFETY: guaranteed by the caller (index inside a NUL-terminated string).
    unsafe { *s.offset(i as isize) }
}

/// Which libkern conversion to emulate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// `strtol` / `strtoq` (64-bit `long` on amd64): saturates at `i64::MIN` / `i64::MAX`.
    Signed,
    /// `strtoul`: saturates at `u64::MAX`; a leading `-` negates modulo 2^64.
    Unsigned,
}

/// One libkern number conversion: returns the raw 64-bit result and the number of
/// bytes consumed (0 = no conversion, i.e. `*endptr == nptr`).
///
/// # Safety
/// `p` must point into a NUL-terminated string.
unsafe fn convert(p: *const u8, base: u32, conv: Conv) -> (u64, usize) {
    // SAFETY: every read below stops at the first byte that cannot continue a
    // number, and the terminating NUL is such a byte; reads after "0x" only
    // happen when the byte before them was non-NUL.
    unsafe {
        let mut i = 0usize;
        let mut c;
        loop {
            c = *p.add(i);
            i += 1;
            if !is_space(c) {
                break;
            }
        }
        let mut neg = false;
        if c == b'-' {
            neg = true;
            c = *p.add(i);
            i += 1;
        } else if c == b'+' {
            c = *p.add(i);
            i += 1;
        }
        let mut base = base;
        if (base == 0 || base == 16) && c == b'0' && matches!(*p.add(i), b'x' | b'X') {
            c = *p.add(i + 1);
            i += 2;
            base = 16;
        }
        if base == 0 {
            base = if c == b'0' { 8 } else { 10 };
        }
        let limit: u64 = match conv {
            Conv::Signed if neg => 1u64 << 63,
            Conv::Signed => i64::MAX as u64,
            Conv::Unsigned => u64::MAX,
        };
        let b = u64::from(base);
        let cutoff = limit / b;
        let cutlim = limit % b;
        let mut acc: u64 = 0;
        let mut any: i32 = 0;
        loop {
            let d = match c {
                b'0'..=b'9' => u64::from(c - b'0'),
                b'A'..=b'Z' => u64::from(c - b'A') + 10,
                b'a'..=b'z' => u64::from(c - b'a') + 10,
                _ => break,
            };
            if d >= b {
                break;
            }
            if any < 0 || acc > cutoff || (acc == cutoff && d > cutlim) {
                any = -1;
            } else {
                any = 1;
                acc = acc * b + d;
            }
            c = *p.add(i);
            i += 1;
        }
        if any < 0 {
            acc = match conv {
                Conv::Signed if neg => i64::MIN as u64,
                Conv::Signed => i64::MAX as u64,
                Conv::Unsigned => u64::MAX,
            };
        } else if neg {
            acc = acc.wrapping_neg();
        }
        (acc, if any != 0 { i - 1 } else { 0 })
    }
}

/// Kernel `strtol` (and `strtoq`, identical on amd64).
///
/// # Safety
/// `p` must point into a NUL-terminated string.
pub(crate) unsafe fn strtol(p: *const u8, base: u32) -> (i64, usize) {
    // SAFETY: forwarded caller contract.
    let (v, n) = unsafe { convert(p, base, Conv::Signed) };
    (v as i64, n)
}

/// Kernel `strtoul`.
///
/// # Safety
/// `p` must point into a NUL-terminated string.
pub(crate) unsafe fn strtoul(p: *const u8, base: u32) -> (u64, usize) {
    // SAFETY: forwarded caller contract.
    unsafe { convert(p, base, Conv::Unsigned) }
}

/// A decoded quoted string: the bytes and the (quirky) consumed length.
pub(crate) struct Quoted {
    pub bytes: Vec<u8>,
    pub len: c_int,
}

/// Scans the quoted string whose opening `"` is at `s[pos]`, decoding escapes.
/// Returns `None` when there is no closing quote. The reported length is one
/// short per `\x` escape and per "other character" escape (docs/netgraph-model.md §7.3).
///
/// # Safety
/// `s` must be NUL-terminated and `s[pos]` inside it.
pub(crate) unsafe fn scan_quoted(s: *const u8, pos: c_int) -> Option<Quoted> {
    let mut out = Vec::new();
    let mut i = pos + 1;
    let mut off: c_int = 1;
    loop {
        // SAFETY: `i` only advances over non-NUL bytes of the string.
        let c = unsafe { at(s, i) };
        if c == 0 {
            return None;
        }
        if c == b'"' {
            return Some(Quoted {
                bytes: out,
                len: off + 1,
            });
        }
        // SAFETY: `c` is not NUL, so `s[i + 1]` is still inside the string.
        let e = unsafe { at(s, i + 1) };
        if c != b'\\' || e == 0 {
            out.push(c);
            i += 1;
            off += 1;
            continue;
        }
        match e {
            b't' | b'n' | b'r' | b'v' | b'f' | b'"' => {
                out.push(match e {
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b'v' => 0x0b,
                    b'f' => 0x0c,
                    _ => b'"',
                });
                i += 2;
                off += 2;
            }
            b'0'..=b'7' => {
                // Every following octal digit is consumed (no 3-digit limit).
                let mut x: u32 = 0;
                let mut j = i + 1;
                // SAFETY: the loop stops at the first non-octal byte (NUL included).
                while let d @ b'0'..=b'7' = unsafe { at(s, j) } {
                    x = x.wrapping_shl(3).wrapping_add(u32::from(d - b'0'));
                    j += 1;
                }
                out.push(x as u8);
                off += j - i;
                i = j;
            }
            b'x' => {
                // Every following hex digit is consumed; the 'x' itself is not counted.
                let mut x: u32 = 0;
                let mut j = i + 2;
                loop {
                    // SAFETY: the loop stops at the first non-hex byte (NUL included).
                    let d = unsafe { at(s, j) };
                    if !is_xdigit(d) {
                        break;
                    }
                    x = x.wrapping_shl(4).wrapping_add(xdigit_value(d));
                    j += 1;
                }
                out.push(x as u8);
                off += j - i - 1;
                i = j;
            }
            other => {
                // Stands for itself; counted as one character instead of two.
                out.push(other);
                i += 2;
                off += 1;
            }
        }
    }
}

/// `ng_get_string_token()`: the C entry point (exported to modules).
///
/// # Safety
/// `s` must be NUL-terminated, `startp`/`lenp` valid, `slenp` valid or NULL.
pub(crate) unsafe extern "C" fn get_string_token_c(
    s: *const c_char,
    startp: *mut c_int,
    lenp: *mut c_int,
    slenp: *mut c_int,
) -> *mut c_char {
    if s.is_null() || startp.is_null() || lenp.is_null() {
        violation("ng_get_string_token: NULL argument (the kernel would fault)");
        return core::ptr::null_mut();
    }
    let s = s.cast::<u8>();
    // SAFETY: caller contract: `s` is a NUL-terminated string, `*startp` an
    // index into it, `lenp`/`slenp` writable (slenp may be NULL). The buffer
    // from `kalloc` holds strlen(s + start) bytes, which always fits the
    // decoded bytes plus their NUL (the token has two quotes).
    unsafe {
        while is_space(at(s, *startp)) {
            *startp += 1;
        }
        let start = *startp;
        if at(s, start) != b'"' {
            return core::ptr::null_mut();
        }
        let size = libc::strlen(s.offset(start as isize).cast());
        let cbuf = kalloc(size);
        if cbuf.is_null() {
            return core::ptr::null_mut();
        }
        match scan_quoted(s, start) {
            Some(q) => {
                core::ptr::copy_nonoverlapping(q.bytes.as_ptr(), cbuf, q.bytes.len());
                *cbuf.add(q.bytes.len()) = 0;
                *lenp = q.len;
                if !slenp.is_null() {
                    *slenp = q.bytes.len() as c_int;
                }
                cbuf.cast()
            }
            None => {
                kfree(cbuf);
                core::ptr::null_mut()
            }
        }
    }
}

/// `ng_parse_get_token()`: the C entry point (exported to modules).
///
/// # Safety
/// `s` must be NUL-terminated, `startp`/`lenp` valid, `*startp` an index into `s`.
pub(crate) unsafe extern "C" fn get_token_c(
    s: *const c_char,
    startp: *mut c_int,
    lenp: *mut c_int,
) -> u32 {
    if s.is_null() || startp.is_null() || lenp.is_null() {
        violation("ng_parse_get_token: NULL argument (the kernel would fault)");
        return T_ERROR;
    }
    let b = s.cast::<u8>();
    // SAFETY: caller contract as documented; the word scan stops at NUL.
    unsafe {
        while is_space(at(b, *startp)) {
            *startp += 1;
        }
        let c = at(b, *startp);
        let single = match c {
            0 => {
                *lenp = 0;
                return T_EOF;
            }
            b'{' => Some(T_LBRACE),
            b'}' => Some(T_RBRACE),
            b'[' => Some(T_LBRACKET),
            b']' => Some(T_RBRACKET),
            b'=' => Some(T_EQUALS),
            _ => None,
        };
        if let Some(t) = single {
            *lenp = 1;
            return t;
        }
        if c == b'"' {
            let t = get_string_token_c(s, startp, lenp, core::ptr::null_mut());
            if t.is_null() {
                return T_ERROR;
            }
            kfree(t.cast());
            return T_STRING;
        }
        let mut i = *startp + 1;
        loop {
            let d = at(b, i);
            if d == 0 || is_space(d) || matches!(d, b'{' | b'}' | b'[' | b']' | b'=' | b'"') {
                break;
            }
            i += 1;
        }
        *lenp = i - *startp;
        T_WORD
    }
}

/// The encoded form of `raw` (quotes included, no NUL), as `ng_encode_string` writes it.
pub(crate) fn encode_bytes(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 2);
    out.push(b'"');
    for &c in raw {
        match c {
            b'\t' => out.extend_from_slice(b"\\t"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x0b => out.extend_from_slice(b"\\v"),
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(c);
            }
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

/// `ng_encode_string()`: the C entry point (exported to modules). The kernel sizes
/// its buffer from `strlen(raw)`, not `slen`; encoding more bytes than that can
/// overflow it (an upstream bug) and is reported as a violation here.
///
/// # Safety
/// `raw` must be readable for `slen` bytes and NUL-terminated somewhere (the
/// kernel calls `strlen` on it).
pub(crate) unsafe extern "C" fn encode_string_c(raw: *const c_char, slen: c_int) -> *mut c_char {
    if raw.is_null() {
        violation("ng_encode_string: NULL string (the kernel would fault)");
        return core::ptr::null_mut();
    }
    let n = slen.max(0) as usize;
    // SAFETY: caller contract: `raw` is readable for `slen` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(raw.cast::<u8>(), n) };
    let enc = encode_bytes(bytes);
    let needed = enc.len() + 1;
    // SAFETY: caller contract: `raw` is NUL-terminated (window-bounded when an
    // unparse window is active).
    let kernel_size = match unsafe { window_strlen(raw.cast()) } {
        Some(l) => l.saturating_mul(4).saturating_add(3),
        None => usize::MAX,
    };
    if needed > kernel_size {
        violation(format!(
            "ng_encode_string: encoding {n} bytes needs {needed} bytes but the kernel allocates \
             strlen(raw)*4+3 = {kernel_size} (upstream buffer overflow)"
        ));
    }
    let p = kalloc(if kernel_size == usize::MAX {
        needed
    } else {
        needed.max(kernel_size)
    });
    if p.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `p` holds at least `needed` bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(enc.as_ptr(), p, enc.len());
        *p.add(enc.len()) = 0;
    }
    p.cast()
}

/// Appends `text` at `*cbuf` the way the kernel's `vsnprintf`-based appender does:
/// the (possibly truncated) text is always NUL-terminated when there is room for
/// the NUL; ERANGE when it does not fit entirely; otherwise the cursor advances.
///
/// # Safety
/// `*cbuf` must be writable for `*cbuflen` bytes.
pub(crate) unsafe fn append(cbuf: &mut *mut c_char, cbuflen: &mut c_int, text: &[u8]) -> c_int {
    let n = text.len();
    if *cbuflen > 0 {
        let k = n.min(*cbuflen as usize - 1);
        // SAFETY: `k + 1 <= *cbuflen` bytes are written inside the buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), cbuf.cast::<u8>(), k);
            *cbuf.add(k) = 0;
        }
    }
    if n as i64 >= i64::from(*cbuflen) {
        return ERANGE;
    }
    // SAFETY: `n < *cbuflen`, so the new cursor is inside the buffer.
    *cbuf = unsafe { cbuf.add(n) };
    *cbuflen -= n as c_int;
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str, base: u32, signed: bool) -> (u64, usize) {
        let c = std::ffi::CString::new(s).unwrap();
        // SAFETY: `c` is NUL-terminated.
        unsafe {
            if signed {
                let (v, n) = strtol(c.as_ptr().cast(), base);
                (v as u64, n)
            } else {
                strtoul(c.as_ptr().cast(), base)
            }
        }
    }

    #[test]
    fn strtol_kernel_semantics() {
        assert_eq!(num("  -12xyz", 0, true), ((-12i64) as u64, 5));
        assert_eq!(num("0x1F", 0, true), (31, 4));
        assert_eq!(num("010", 0, true), (8, 3));
        assert_eq!(num("08", 0, true), (0, 1));
        assert_eq!(num("0x", 0, true), (0, 0));
        assert_eq!(num("-", 0, true), (0, 0));
        assert_eq!(num("", 0, true), (0, 0));
        assert_eq!(num("99999999999999999999", 0, true), (i64::MAX as u64, 20));
        assert_eq!(num("-99999999999999999999", 0, true), (i64::MIN as u64, 21));
        assert_eq!(num("-1", 0, false), (u64::MAX, 2));
        assert_eq!(num("99999999999999999999", 0, false), (u64::MAX, 20));
        assert_eq!(num("ff", 16, false), (255, 2));
        assert_eq!(num("0xff", 16, false), (255, 4));
        assert_eq!(num("+7", 10, false), (7, 2));
    }

    #[test]
    fn encoder() {
        assert_eq!(
            encode_bytes(b"a\"\\\t\x0c\n\r\x0b\x01\x7f\x80 ~"),
            b"\"a\\\"\\\\\\t\\f\\n\\r\\v\\x01\\x7f\\x80 ~\"".to_vec()
        );
    }

    #[test]
    fn appender() {
        let mut buf = [0x55 as c_char; 4];
        let mut p = buf.as_mut_ptr();
        let mut n = 4;
        // SAFETY: `p` covers `n` bytes of `buf`.
        unsafe {
            assert_eq!(append(&mut p, &mut n, b"ab"), 0);
            assert_eq!(n, 2);
            assert_eq!(append(&mut p, &mut n, b"cd"), ERANGE);
        }
        assert_eq!(buf.map(|c| c as u8), [b'a', b'b', b'c', 0]);
    }
}
