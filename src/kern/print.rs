//! Console output through the kernel's printf(9), via the C glue (which is
//! compiled with -fno-builtin, so printf is never rewritten into other calls).

use core::ffi::{c_char, c_int, CStr};

use super::ffi::{ngsock_console, ngsock_console_line};

/// Prints `msg` on the console, prefixed with the module name and a colon.
pub fn log_line(module: &CStr, msg: &str) {
    let len = c_int::try_from(msg.len()).unwrap_or(c_int::MAX);
    // SAFETY: a NUL-terminated prefix and a buffer valid for `len` bytes;
    // printf(9) never sleeps.
    unsafe { ngsock_console_line(module.as_ptr(), msg.as_ptr().cast::<c_char>(), len) }
}

/// Prints a fixed message on the console.
pub fn console(msg: &CStr) {
    // SAFETY: a NUL-terminated string; printf(9) never sleeps.
    unsafe { ngsock_console(msg.as_ptr()) }
}
