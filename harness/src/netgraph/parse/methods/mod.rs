//! Method implementations of the predefined parse types (docs/netgraph-model.md
//! §7.4–7.6) and the method dispatcher (§7.1). Every method is a C-ABI function
//! stored in an arena `struct ng_parse_type`, so module code can call them
//! directly (e.g. through `ng_parse_struct_type.parse`) and the engine can call
//! module methods the same way.
//!
//! Files: `mod.rs` the dispatcher and shared helpers; `scalar.rs` integers
//! and addresses; `string.rs` strings and byte arrays; `composite.rs`
//! structs and arrays.

mod composite;
mod scalar;
mod string;

use core::ffi::{c_char, c_int, c_void};
use core::ptr;

use fbsd_sys::{
    ng_parse_array_getLength_t, ng_parse_array_info, ng_parse_fixedarray_info,
    ng_parse_fixedstring_info, ng_parse_struct_field, ng_parse_type, T_EOF, T_EQUALS, T_LBRACE,
    T_LBRACKET, T_RBRACE, T_RBRACKET, T_WORD,
};

use super::text::{
    append, at, encode_string_c, get_string_token_c, get_token_c, is_space, strtol, strtoul,
};
use super::{
    kalloc, kfree, read_check, types, window_strlen, E2BIG, EALREADY, EINVAL, ENOENT, ENOMEM,
    EOPNOTSUPP, ERANGE,
};
use crate::kern::violation;

type Pt = ng_parse_type;

/// Declares built-in parse-type methods with the signatures of the method
/// slots of `struct ng_parse_type`, by kind and parameter names:
///
/// ```text
/// parse fn NAME(t, s, off, start, buf, buflen) { .. }
/// unparse fn NAME(t, data, off, cbuf, cbuflen) { .. }
/// default fn NAME(t, start, buf, buflen) { .. }
/// align fn NAME(t) { .. }
/// ```
///
/// Each becomes a `pub(crate) unsafe extern "C" fn` whose callers must keep
/// the contract of its kind (stated on the generated function).
macro_rules! parse_methods {
    () => {};
    ($(#[$m:meta])* parse fn $name:ident($t:ident, $s:ident, $off:ident, $start:ident, $buf:ident, $buflen:ident) $body:block $($rest:tt)*) => {
        $(#[$m])*
        ///
        /// # Safety
        /// Parse-method contract: `t` a valid type object, `s` NUL-terminated
        /// with `*off` inside it, `start` the start of the whole output,
        /// `buf` writable for `*buflen` bytes.
        pub(crate) unsafe extern "C" fn $name(
            $t: *const Pt,
            $s: *const c_char,
            $off: *mut c_int,
            $start: *const u8,
            $buf: *mut u8,
            $buflen: *mut c_int,
        ) -> c_int $body
        parse_methods!($($rest)*);
    };
    ($(#[$m:meta])* unparse fn $name:ident($t:ident, $data:ident, $off:ident, $cbuf:ident, $cbuflen:ident) $body:block $($rest:tt)*) => {
        $(#[$m])*
        ///
        /// # Safety
        /// Unparse-method contract: `t` a valid type object, the value at
        /// `data + *off` (preceded by a message header), `cbuf` writable for
        /// `cbuflen` bytes.
        pub(crate) unsafe extern "C" fn $name(
            $t: *const Pt,
            $data: *const u8,
            $off: *mut c_int,
            $cbuf: *mut c_char,
            $cbuflen: c_int,
        ) -> c_int $body
        parse_methods!($($rest)*);
    };
    ($(#[$m:meta])* default fn $name:ident($t:ident, $start:ident, $buf:ident, $buflen:ident) $body:block $($rest:tt)*) => {
        $(#[$m])*
        ///
        /// # Safety
        /// getDefault-method contract: `t` a valid type object, `buf`
        /// writable for `*buflen` bytes.
        pub(crate) unsafe extern "C" fn $name(
            $t: *const Pt,
            $start: *const u8,
            $buf: *mut u8,
            $buflen: *mut c_int,
        ) -> c_int $body
        parse_methods!($($rest)*);
    };
    ($(#[$m:meta])* align fn $name:ident($t:ident) $body:block $($rest:tt)*) => {
        $(#[$m])*
        ///
        /// # Safety
        /// getAlign-method contract: `t` a valid type object.
        pub(crate) unsafe extern "C" fn $name($t: *const Pt) -> c_int $body
        parse_methods!($($rest)*);
    };
}
pub(crate) use composite::*;
use parse_methods;
pub(crate) use scalar::*;
pub(crate) use string::*;

/// `info` values of the integer types.
pub(crate) const INT_UNSIGNED: usize = 0;
pub(crate) const INT_SIGNED: usize = 1;
pub(crate) const INT_HEX: usize = 2;

/// Size of the header the engine assumes in front of the top-level data.
pub(crate) const HDRLEN: usize = 56;
/// Scratch space used for default-value comparison while unparsing composites.
pub(crate) const WORK_SIZE: usize = 20 * 1024;

/// Longest supertype chain followed before assuming a cycle.
const MAX_CHAIN: usize = 64;
/// Most struct fields counted before assuming a missing terminator.
const MAX_FIELDS: usize = 1 << 16;
/// Deepest composite nesting followed before assuming a self-referential type
/// (the kernel would overflow its stack).
const MAX_DEPTH: u32 = 64;

thread_local! {
    static DEPTH: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    /// Set once the limit was hit: every nested call then bails out at once
    /// (no exponential re-descent), until the outermost level returns.
    static BLOWN: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// One level of composite nesting; `None` (after a violation) when too deep.
struct Nesting;

impl Nesting {
    fn enter(t: *const Pt) -> Option<Nesting> {
        if BLOWN.with(|b| b.get()) {
            return None;
        }
        let d = DEPTH.with(|c| c.get());
        if d >= MAX_DEPTH {
            BLOWN.with(|b| b.set(true));
            violation(format!(
                "ng_parse: composites nested deeper than {MAX_DEPTH} at parse type {t:p} \
                 (self-referential type? the kernel would overflow its stack)"
            ));
            return None;
        }
        DEPTH.with(|c| c.set(d + 1));
        Some(Nesting)
    }
}

impl Drop for Nesting {
    fn drop(&mut self) {
        let d = DEPTH.with(|c| c.get()) - 1;
        DEPTH.with(|c| c.set(d));
        if d == 0 {
            BLOWN.with(|b| b.set(false));
        }
    }
}

// ---------------------------------------------------------------------------
// Method resolution (§7.1)
// ---------------------------------------------------------------------------

/// First non-NULL method along the supertype chain.
///
/// # Safety
/// `t` must be NULL or point at a valid type object whose supertypes are valid.
unsafe fn lookup<F: Copy>(t: *const Pt, pick: fn(&Pt) -> Option<F>, what: &str) -> Option<F> {
    let mut cur = t;
    for _ in 0..MAX_CHAIN {
        if cur.is_null() {
            return None;
        }
        // SAFETY: non-NULL type objects are valid (caller contract).
        let ty = unsafe { &*cur };
        if let Some(f) = pick(ty) {
            return Some(f);
        }
        cur = ty.supertype;
    }
    violation(format!(
        "ng_parse: supertype chain of parse type {t:p} is longer than {MAX_CHAIN} (cycle?) looking up {what}"
    ));
    None
}

/// `ALIGNMENT(t)`: the resolved getAlign result, 0 when there is none.
///
/// # Safety
/// As [`lookup`]; the resolved method must honour the getAlign contract.
pub(crate) unsafe fn alignment(t: *const Pt) -> c_int {
    // SAFETY: forwarded caller contract.
    match unsafe { lookup(t, |x| x.getAlign, "getAlign") } {
        // SAFETY: a type's own getAlign method is called with the type.
        Some(f) => unsafe { f(t) },
        None => 0,
    }
}

/// Invokes the resolved parse method.
///
/// # Safety
/// Arguments as for a parse method (§7.2).
pub(crate) unsafe fn call_parse(
    t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: forwarded caller contract.
    match unsafe { lookup(t, |x| x.parse, "parse") } {
        // SAFETY: the method receives the arguments of its contract.
        Some(f) => unsafe { f(t, s, off, start, buf, buflen) },
        None => {
            violation(format!(
                "ng_parse: parse type {t:p} has no parse method (the kernel would call NULL)"
            ));
            EINVAL
        }
    }
}

/// Invokes the resolved unparse method.
///
/// # Safety
/// Arguments as for an unparse method (§7.2).
pub(crate) unsafe fn call_unparse(
    t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: forwarded caller contract.
    match unsafe { lookup(t, |x| x.unparse, "unparse") } {
        // SAFETY: the method receives the arguments of its contract.
        Some(f) => unsafe { f(t, data, off, cbuf, cbuflen) },
        None => {
            violation(format!(
                "ng_unparse: parse type {t:p} has no unparse method (the kernel would call NULL)"
            ));
            EINVAL
        }
    }
}

/// Invokes the resolved getDefault method; EOPNOTSUPP when there is none.
///
/// # Safety
/// Arguments as for a getDefault method (§7.2).
pub(crate) unsafe fn call_default(
    t: *const Pt,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: forwarded caller contract.
    match unsafe { lookup(t, |x| x.getDefault, "getDefault") } {
        // SAFETY: the method receives the arguments of its contract.
        Some(f) => unsafe { f(t, start, buf, buflen) },
        None => EOPNOTSUPP,
    }
}

/// The harness's guard for parse methods that FreeBSD lets write without
/// checking `*buflen`: the kernel would corrupt memory; here it is a violation
/// and the method fails with ERANGE instead of writing.
fn room(buflen: c_int, need: usize, what: &str) -> bool {
    if i64::from(buflen) >= need as i64 {
        return true;
    }
    violation(format!(
        "ng_parse: the {what} parse method writes {need} bytes with only {buflen} left in the output \
         buffer (FreeBSD does not check: kernel memory corruption); failing with ERANGE"
    ));
    false
}
