//! printf(9), log(9), snprintf(9) and panic(9), and the kernel console.
//!
//! The entry points are C functions (`csrc/printf.c`) because they take C
//! varargs; their formatter follows FreeBSD 15's `kvprintf` conversion rules
//! (`%b`, `%D`, `%r`, `%y`, no `' '` flag, `%n` never stores). Everything a
//! module prints lands in the *console*, a process-wide capture buffer that the
//! scenario runner reads (and, when echo is on, also goes to stderr). The
//! harness's own kernel messages (`kldload: ...`) go to the same console
//! through [`kprint`].

use std::ffi::{c_char, c_int, c_void, CStr};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::exports::Exports;

type WriteHook = unsafe extern "C" fn(*const c_char, usize);
type MsgHook = unsafe extern "C" fn(*const c_char);

/// The C entry points (harness-private names; exported under kernel names).
pub mod ffi {
    use super::{c_char, c_int, c_void, MsgHook, WriteHook};

    extern "C" {
        pub fn ngh_printf_init(w: WriteHook, p: MsgHook, v: MsgHook);
        pub fn ngh_printf(fmt: *const c_char, ...) -> c_int;
        pub fn ngh_vprintf(fmt: *const c_char, ap: *mut c_void) -> c_int;
        pub fn ngh_log(level: c_int, fmt: *const c_char, ...);
        pub fn ngh_vlog(level: c_int, fmt: *const c_char, ap: *mut c_void);
        /// The kernel `snprintf`; callable from Rust tests to check formatting.
        pub fn ngh_snprintf(buf: *mut c_char, size: usize, fmt: *const c_char, ...) -> c_int;
        pub fn ngh_vsnprintf(
            buf: *mut c_char,
            size: usize,
            fmt: *const c_char,
            ap: *mut c_void,
        ) -> c_int;
        pub fn ngh_vsnrprintf(
            buf: *mut c_char,
            size: usize,
            radix: c_int,
            fmt: *const c_char,
            ap: *mut c_void,
        ) -> c_int;
        pub fn ngh_sprintf(buf: *mut c_char, fmt: *const c_char, ...) -> c_int;
        pub fn ngh_vsprintf(buf: *mut c_char, fmt: *const c_char, ap: *mut c_void) -> c_int;
        pub fn ngh_panic(fmt: *const c_char, ...) -> !;
        pub fn ngh_vpanic(fmt: *const c_char, ap: *mut c_void) -> !;
    }
}

static CONSOLE: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static ECHO: AtomicBool = AtomicBool::new(false);

/// Appends bytes to the kernel console (and echoes them to stderr if enabled).
pub fn console_write(bytes: &[u8]) {
    CONSOLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend_from_slice(bytes);
    if ECHO.load(Ordering::Relaxed) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes);
        let _ = err.flush();
    }
}

/// Prints a harness-generated kernel message on the console (as the kernel's
/// own `printf` would); a newline is added if missing.
pub fn kprint(msg: &str) {
    if msg.ends_with('\n') {
        console_write(msg.as_bytes());
    } else {
        let mut s = String::with_capacity(msg.len() + 1);
        s.push_str(msg);
        s.push('\n');
        console_write(s.as_bytes());
    }
}

/// Everything printed on the console so far (lossy UTF-8), without clearing it.
pub fn console_contents() -> String {
    String::from_utf8_lossy(&CONSOLE.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Returns and clears the console capture.
pub fn console_take() -> String {
    let v = std::mem::take(&mut *CONSOLE.lock().unwrap_or_else(|e| e.into_inner()));
    String::from_utf8_lossy(&v).into_owned()
}

/// Turns echoing of console output to stderr on or off (off by default).
pub fn set_console_echo(on: bool) {
    ECHO.store(on, Ordering::Relaxed);
}

unsafe extern "C" fn hook_write(p: *const c_char, len: usize) {
    if p.is_null() || len == 0 {
        return;
    }
    // SAFETY: the C side passes a pointer to `len` initialised bytes of its
    // own buffer, valid for the duration of this call.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
    console_write(bytes);
}

unsafe extern "C" fn hook_panic(msg: *const c_char) {
    // SAFETY: the C side passes its NUL-terminated panic buffer.
    let text = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    // FreeBSD prints "panic: <message>\n"; a trailing newline in the
    // message itself is dropped here for a single clean line.
    let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
    let line = format!("panic: {text}\n");
    CONSOLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend_from_slice(line.as_bytes());
    crate::kern::kernel_panic(&text);
}

unsafe extern "C" fn hook_violation(msg: *const c_char) {
    // SAFETY: the C side passes a NUL-terminated static string.
    let text = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    crate::kern::violation(text);
}

/// Installs the Rust hooks into the C printf code (idempotent).
pub fn init() {
    // SAFETY: the hooks are plain functions with the signatures the C side
    // declares; installing them has no other precondition.
    unsafe { ffi::ngh_printf_init(hook_write, hook_panic, hook_violation) };
}

/// Exports the printf family under the kernel names.
pub fn register(ex: &mut Exports) {
    init();
    ex.func("printf", ffi::ngh_printf as *const () as usize);
    ex.func("vprintf", ffi::ngh_vprintf as *const () as usize);
    ex.func("log", ffi::ngh_log as *const () as usize);
    ex.func("vlog", ffi::ngh_vlog as *const () as usize);
    ex.func("snprintf", ffi::ngh_snprintf as *const () as usize);
    ex.func("vsnprintf", ffi::ngh_vsnprintf as *const () as usize);
    ex.func("vsnrprintf", ffi::ngh_vsnrprintf as *const () as usize);
    ex.func("sprintf", ffi::ngh_sprintf as *const () as usize);
    ex.func("vsprintf", ffi::ngh_vsprintf as *const () as usize);
    ex.func("panic", ffi::ngh_panic as *const () as usize);
    ex.func("vpanic", ffi::ngh_vpanic as *const () as usize);
}

/// FreeBSD's `strerror` text for the errnos the harness reports (FreeBSD
/// numbering, as in `fbsd_sys::E*`).
pub fn strerror(errno: i32) -> String {
    let s = match errno {
        0 => "Success",
        1 => "Operation not permitted",
        2 => "No such file or directory",
        3 => "No such process",
        4 => "Interrupted system call",
        5 => "Input/output error",
        6 => "Device not configured",
        7 => "Argument list too long",
        8 => "Exec format error",
        9 => "Bad file descriptor",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        14 => "Bad address",
        16 => "Device busy",
        17 => "File exists",
        19 => "Operation not supported by device",
        22 => "Invalid argument",
        28 => "No space left on device",
        35 => "Resource temporarily unavailable",
        45 => "Operation not supported",
        78 => "Function not implemented",
        79 => "Inappropriate file type or format",
        _ => return format!("Unknown error: {errno}"),
    };
    s.to_string()
}
