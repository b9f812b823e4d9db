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
}
