//! Console output through the kernel's printf(9).

use core::ffi::{c_char, c_int};

/// Prints `msg` on the console, prefixed with the module name and a colon.
pub fn log_line(module: &core::ffi::CStr, msg: &str) {
    let len = c_int::try_from(msg.len()).unwrap_or(c_int::MAX);
    // SAFETY: "%s: %.*s\n" consumes a NUL-terminated string, an int precision
    // and a pointer valid for that many bytes; printf(9) never sleeps.
    unsafe {
        fbsd_sys::printf(
            c"%s: %.*s\n".as_ptr(),
            module.as_ptr(),
            len,
            msg.as_ptr().cast::<c_char>(),
        );
    }
}
