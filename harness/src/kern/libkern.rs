//! libkern: the string and memory functions every module imports.

use core::ffi::{c_char, c_int, c_void};

use super::fault::Caller;
use super::probe;
use crate::exports::Exports;

// memcpy, memmove and bcopy take the caller's return address (in the
// register after their three arguments) for the copy probe (`kern::probe`).
mod abi {
    use core::ffi::c_void;

    use crate::kern::entry::entry;
    entry!(
        /// `void *memcpy(void *d, const void *s, size_t n)`
        fn memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void => super::k_memcpy
    );
    entry!(
        /// `void *memmove(void *d, const void *s, size_t n)`
        fn memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void => super::k_memmove
    );
    entry!(
        /// `void bcopy(const void *s, void *d, size_t n)`
        fn bcopy(s: *const c_void, d: *mut c_void, n: usize) => super::k_bcopy
    );
}

unsafe extern "C" fn k_memcpy(
    d: *mut c_void,
    s: *const c_void,
    n: usize,
    ra: usize,
) -> *mut c_void {
    probe::copy("memcpy", n, Caller::Addr(ra));
    // SAFETY: the kernel contract of memcpy: valid, non-overlapping buffers.
    unsafe { std::ptr::copy_nonoverlapping(s.cast::<u8>(), d.cast::<u8>(), n) };
    d
}

unsafe extern "C" fn k_memmove(
    d: *mut c_void,
    s: *const c_void,
    n: usize,
    ra: usize,
) -> *mut c_void {
    probe::copy("memmove", n, Caller::Addr(ra));
    // SAFETY: the kernel contract of memmove: valid buffers (may overlap).
    unsafe { std::ptr::copy(s.cast::<u8>(), d.cast::<u8>(), n) };
    d
}

unsafe extern "C" fn k_memset(d: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    // SAFETY: the kernel contract of memset: a valid buffer of n bytes.
    unsafe { std::ptr::write_bytes(d.cast::<u8>(), c as u8, n) };
    d
}

unsafe extern "C" fn k_memcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int {
    // SAFETY: both buffers are valid for n bytes (kernel contract).
    let (x, y) = unsafe {
        (
            std::slice::from_raw_parts(a.cast::<u8>(), n),
            std::slice::from_raw_parts(b.cast::<u8>(), n),
        )
    };
    for (p, q) in x.iter().zip(y) {
        if p != q {
            return c_int::from(*p) - c_int::from(*q);
        }
    }
    0
}

unsafe extern "C" fn k_bzero(d: *mut c_void, n: usize) {
    // SAFETY: as memset.
    unsafe { std::ptr::write_bytes(d.cast::<u8>(), 0, n) };
}

unsafe extern "C" fn k_bcopy(s: *const c_void, d: *mut c_void, n: usize, ra: usize) {
    probe::copy("bcopy", n, Caller::Addr(ra));
    // SAFETY: as memmove (bcopy allows overlap).
    unsafe { std::ptr::copy(s.cast::<u8>(), d.cast::<u8>(), n) };
}

unsafe extern "C" fn k_strlen(s: *const c_char) -> usize {
    // SAFETY: a NUL-terminated string (kernel contract).
    unsafe { std::ffi::CStr::from_ptr(s) }.to_bytes().len()
}

unsafe extern "C" fn k_strnlen(s: *const c_char, max: usize) -> usize {
    let mut n = 0;
    // SAFETY: readable up to a NUL or `max` bytes (kernel contract).
    while n < max && unsafe { *s.add(n) } != 0 {
        n += 1;
    }
    n
}

unsafe extern "C" fn k_strcmp(a: *const c_char, b: *const c_char) -> c_int {
    // SAFETY: NUL-terminated strings.
    let (x, y) = unsafe { (std::ffi::CStr::from_ptr(a), std::ffi::CStr::from_ptr(b)) };
    match x.to_bytes().cmp(y.to_bytes()) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }
}

unsafe extern "C" fn k_strncmp(a: *const c_char, b: *const c_char, n: usize) -> c_int {
    for i in 0..n {
        // SAFETY: readable up to a NUL or n bytes.
        let (p, q) = unsafe { (*a.add(i) as u8, *b.add(i) as u8) };
        if p != q {
            return c_int::from(p) - c_int::from(q);
        }
        if p == 0 {
            break;
        }
    }
    0
}

unsafe extern "C" fn k_strlcpy(d: *mut c_char, s: *const c_char, size: usize) -> usize {
    // SAFETY: `s` is NUL-terminated; `d` is writable for `size` bytes.
    unsafe {
        let len = k_strlen(s);
        if size > 0 {
            let n = len.min(size - 1);
            std::ptr::copy_nonoverlapping(s, d, n);
            *d.add(n) = 0;
        }
        len
    }
}

/// Exports libkern's memory and string functions.
/// `char *strchr(const char *s, int c)`: the terminating NUL is part of the
/// string (`strchr(s, 0)` finds it).
unsafe extern "C" fn k_strchr(s: *const c_char, c: c_int) -> *mut c_char {
    let c = c as u8;
    let mut p = s;
    loop {
        // SAFETY: `s` is a NUL-terminated string (kernel contract).
        let b = unsafe { *p } as u8;
        if b == c {
            return p.cast_mut();
        }
        if b == 0 {
            return std::ptr::null_mut();
        }
        // SAFETY: not past the NUL yet.
        p = unsafe { p.add(1) };
    }
}

/// `char *strncpy(char *d, const char *s, size_t n)`: copies up to `n`
/// bytes, NUL-padding the rest (no NUL when `s` is `n` bytes or longer).
unsafe extern "C" fn k_strncpy(d: *mut c_char, s: *const c_char, n: usize) -> *mut c_char {
    let mut ended = false;
    for i in 0..n {
        // SAFETY: `d` has room for `n` bytes; `s` is read up to its NUL.
        unsafe {
            let b = if ended { 0 } else { *s.add(i) };
            ended |= b == 0;
            *d.add(i) = b;
        }
    }
    d
}

/// `u_long strtoul(const char *nptr, char **endptr, int base)`, libkern's:
/// leading spaces, an optional sign, `0x`/`0` prefixes for base 16/0,
/// saturation at `ULONG_MAX` on overflow, a negated result for `-`;
/// `*endptr` is `nptr` when no digit was read.
unsafe extern "C" fn k_strtoul(nptr: *const c_char, endptr: *mut *mut c_char, base: c_int) -> u64 {
    // SAFETY: `nptr` is a NUL-terminated string (kernel contract).
    let at = |i: usize| unsafe { *nptr.add(i) } as u8;
    let mut i = 0;
    while matches!(at(i), b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let neg = at(i) == b'-';
    if matches!(at(i), b'-' | b'+') {
        i += 1;
    }
    let mut base = base as u32;
    let hex_prefix =
        at(i) == b'0' && matches!(at(i + 1), b'x' | b'X') && at(i + 2).is_ascii_hexdigit();
    if (base == 0 || base == 16) && hex_prefix {
        i += 2;
        base = 16;
    }
    if base == 0 {
        base = if at(i) == b'0' { 8 } else { 10 };
    }
    let (mut acc, mut any, mut over) = (0u64, false, false);
    if (2..=36).contains(&base) {
        while let Some(d) = (at(i) as char).to_digit(36).filter(|&d| d < base) {
            match acc
                .checked_mul(u64::from(base))
                .and_then(|v| v.checked_add(u64::from(d)))
            {
                Some(v) => acc = v,
                None => over = true,
            }
            any = true;
            i += 1;
        }
    }
    let v = if over {
        u64::MAX
    } else if neg {
        acc.wrapping_neg()
    } else {
        acc
    };
    if !endptr.is_null() {
        // SAFETY: the caller's out-pointer.
        unsafe { *endptr = nptr.add(if any { i } else { 0 }).cast_mut() };
    }
    v
}

pub fn register(ex: &mut Exports) {
    ex.func("memcpy", abi::memcpy as *const () as usize);
    ex.func("memmove", abi::memmove as *const () as usize);
    ex.func("memset", k_memset as *const () as usize);
    ex.func("memcmp", k_memcmp as *const () as usize);
    ex.func("bcmp", k_memcmp as *const () as usize);
    ex.func("bzero", k_bzero as *const () as usize);
    ex.func("bcopy", abi::bcopy as *const () as usize);
    ex.func("strlen", k_strlen as *const () as usize);
    ex.func("strnlen", k_strnlen as *const () as usize);
    ex.func("strcmp", k_strcmp as *const () as usize);
    ex.func("strncmp", k_strncmp as *const () as usize);
    ex.func("strlcpy", k_strlcpy as *const () as usize);
    ex.func("strchr", k_strchr as *const () as usize);
    ex.func("strncpy", k_strncpy as *const () as usize);
    ex.func("strtoul", k_strtoul as *const () as usize);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strtoul(s: &std::ffi::CStr, base: c_int) -> (u64, usize) {
        let mut end: *mut c_char = std::ptr::null_mut();
        // SAFETY: a NUL-terminated string and a valid out-pointer.
        let v = unsafe { k_strtoul(s.as_ptr(), &mut end, base) };
        (v, end as usize - s.as_ptr() as usize)
    }

    #[test]
    fn strtoul_like_libkern() {
        assert_eq!(strtoul(c"127.0", 10), (127, 3));
        assert_eq!(strtoul(c"  +42x", 10), (42, 5));
        assert_eq!(strtoul(c"-1", 10), (u64::MAX, 2));
        assert_eq!(strtoul(c"0x1F", 0), (31, 4));
        assert_eq!(strtoul(c"0x1F", 16), (31, 4));
        assert_eq!(strtoul(c"017", 0), (15, 3));
        assert_eq!(strtoul(c"abc", 10), (0, 0));
        assert_eq!(strtoul(c"99999999999999999999999", 10), (u64::MAX, 23));
    }

    #[test]
    fn strchr_and_strncpy() {
        let s = c"inet/dgram";
        // SAFETY: NUL-terminated strings and a buffer of 8 bytes.
        unsafe {
            assert_eq!(
                k_strchr(s.as_ptr(), c_int::from(b'/')) as usize - s.as_ptr() as usize,
                4
            );
            assert!(k_strchr(s.as_ptr(), c_int::from(b'x')).is_null());
            assert_eq!(k_strchr(s.as_ptr(), 0) as usize - s.as_ptr() as usize, 10);
            let mut buf = [0x55 as c_char; 8];
            k_strncpy(buf.as_mut_ptr(), c"ab".as_ptr(), 6);
            assert_eq!(&buf[..7], &[97, 98, 0, 0, 0, 0, 0x55]);
            k_strncpy(buf.as_mut_ptr(), s.as_ptr(), 4);
            assert_eq!(&buf[..5], &[105, 110, 101, 116, 0]);
        }
    }
}
