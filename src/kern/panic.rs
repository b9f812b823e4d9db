//! The panic handler: a Rust panic becomes panic(9) with file and line.
//!
//! The crate denies every construct that panics (`unwrap`, indexing,
//! overflowing arithmetic...), so this is reached only through a bug in the
//! compiler's own checks; it must still stop the kernel cleanly rather than
//! run on in an unknown state.

use core::ffi::{c_char, c_int, c_uint};
use core::panic::PanicInfo;

#[panic_handler]
fn on_panic(info: &PanicInfo<'_>) -> ! {
    let (file, line) = match info.location() {
        Some(l) => (l.file(), l.line()),
        None => ("<unknown>", 0),
    };
    let len = c_int::try_from(file.len()).unwrap_or(c_int::MAX);
    // SAFETY: the format consumes exactly an int precision, a char pointer
    // valid for that many bytes, and an unsigned int; panic(9) does not return.
    unsafe {
        fbsd_sys::panic(
            c"ngsock: rust panic at %.*s:%u".as_ptr(),
            len,
            file.as_ptr().cast::<c_char>(),
            c_uint::from(line),
        )
    }
}
