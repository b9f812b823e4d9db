//! Method implementations of the predefined parse types (netgraph-core.md
//! §7.4–7.6) and the method dispatcher (§7.1). Every method is a C-ABI function
//! stored in an arena `struct ng_parse_type`, so module code can call them
//! directly (e.g. through `ng_parse_struct_type.parse`) and the engine can call
//! module methods the same way.

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
    kalloc, kfree, read_check, types, E2BIG, EALREADY, EINVAL, ENOENT, ENOMEM, EOPNOTSUPP, ERANGE,
};
use crate::kern::violation;

type Pt = ng_parse_type;

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

// ---------------------------------------------------------------------------
// Integer types (§7.4)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum IntKind {
    I8,
    I16,
    I32,
    I64,
}

impl IntKind {
    fn size(self) -> usize {
        match self {
            IntKind::I8 => 1,
            IntKind::I16 => 2,
            IntKind::I32 => 4,
            IntKind::I64 => 8,
        }
    }
    fn name(self) -> &'static str {
        match self {
            IntKind::I8 => "int8",
            IntKind::I16 => "int16",
            IntKind::I32 => "int32",
            IntKind::I64 => "int64",
        }
    }
}

/// # Safety
/// Parse-method contract (§7.2).
unsafe fn int_parse(
    k: IntKind,
    t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: parse-method contract: `s` NUL-terminated with `*off` inside it,
    // `t` valid, `buf` writable for `*buflen` bytes (checked by `room`).
    unsafe {
        let p = s.offset(*off as isize).cast::<u8>();
        let (val, used) = match k {
            IntKind::I32 if (*t).info as usize != INT_SIGNED => {
                let (u, n) = strtoul(p, 0);
                (u as i64, n)
            }
            _ => strtol(p, 0),
        };
        let in_range = match k {
            IntKind::I8 => (-128..=255).contains(&val),
            IntKind::I16 => (-32768..=65535).contains(&val),
            IntKind::I32 => (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&val),
            IntKind::I64 => true,
        };
        if !in_range || used == 0 {
            return EINVAL;
        }
        let size = k.size();
        if !room(*buflen, size, k.name()) {
            return ERANGE;
        }
        *off = (*off).wrapping_add(used as c_int);
        let bytes = val.to_le_bytes();
        ptr::copy_nonoverlapping(bytes.as_ptr(), buf, size);
        *buflen = size as c_int;
        0
    }
}

/// # Safety
/// Unparse-method contract (§7.2).
unsafe fn int_unparse(
    k: IntKind,
    t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    let size = k.size();
    // SAFETY: unparse-method contract: `data + *off` holds the value (checked
    // against the active read window), `t` valid, `cbuf` writable for `cbuflen`.
    unsafe {
        let p = data.wrapping_offset(*off as isize);
        if !read_check(p, size, k.name()) {
            return EINVAL;
        }
        let mut raw = [0u8; 8];
        ptr::copy_nonoverlapping(p, raw.as_mut_ptr(), size);
        let ux = u64::from_le_bytes(raw);
        let shift = 64 - 8 * size as u32;
        let sx = ((ux << shift) as i64) >> shift;
        let text = match (*t).info as usize {
            INT_SIGNED => sx.to_string(),
            INT_UNSIGNED => ux.to_string(),
            INT_HEX => format!("0x{ux:x}"),
            other => {
                violation(format!(
                    "ng_unparse: {} subtype {t:p} has info {other:#x}, not an integer format (the kernel panics)",
                    k.name()
                ));
                return EINVAL;
            }
        };
        let mut cb = cbuf;
        let mut cl = cbuflen;
        let e = append(&mut cb, &mut cl, text.as_bytes());
        if e != 0 {
            return e;
        }
        *off = (*off).wrapping_add(size as c_int);
        0
    }
}

/// Writes `n` zero bytes as a default value (ERANGE when `*buflen < n`).
///
/// # Safety
/// `buf` writable for `*buflen` bytes.
unsafe fn zero_default(n: usize, buf: *mut u8, buflen: *mut c_int) -> c_int {
    // SAFETY: getDefault contract; the size is checked before writing.
    unsafe {
        if i64::from(*buflen) < n as i64 {
            return ERANGE;
        }
        ptr::write_bytes(buf, 0, n);
        *buflen = n as c_int;
    }
    0
}

macro_rules! int_methods {
    ($kind:expr, $parse:ident, $unparse:ident, $default:ident, $align:ident, $a:expr) => {
        /// Integer parse method.
        ///
        /// # Safety
        /// Parse-method contract.
        pub(crate) unsafe extern "C" fn $parse(
            t: *const Pt,
            s: *const c_char,
            off: *mut c_int,
            _start: *const u8,
            buf: *mut u8,
            buflen: *mut c_int,
        ) -> c_int {
            // SAFETY: forwarded parse-method contract.
            unsafe { int_parse($kind, t, s, off, buf, buflen) }
        }
        /// Integer unparse method.
        ///
        /// # Safety
        /// Unparse-method contract.
        pub(crate) unsafe extern "C" fn $unparse(
            t: *const Pt,
            data: *const u8,
            off: *mut c_int,
            cbuf: *mut c_char,
            cbuflen: c_int,
        ) -> c_int {
            // SAFETY: forwarded unparse-method contract.
            unsafe { int_unparse($kind, t, data, off, cbuf, cbuflen) }
        }
        /// Integer getDefault method (zero).
        ///
        /// # Safety
        /// getDefault-method contract.
        pub(crate) unsafe extern "C" fn $default(
            _t: *const Pt,
            _start: *const u8,
            buf: *mut u8,
            buflen: *mut c_int,
        ) -> c_int {
            // SAFETY: forwarded getDefault-method contract.
            unsafe { zero_default($kind.size(), buf, buflen) }
        }
        /// Integer getAlign method.
        pub(crate) unsafe extern "C" fn $align(_t: *const Pt) -> c_int {
            $a
        }
    };
}

int_methods!(
    IntKind::I8,
    int8_parse,
    int8_unparse,
    int8_default,
    int8_align,
    1
);
int_methods!(
    IntKind::I16,
    int16_parse,
    int16_unparse,
    int16_default,
    int16_align,
    2
);
int_methods!(
    IntKind::I32,
    int32_parse,
    int32_unparse,
    int32_default,
    int32_align,
    4
);
int_methods!(
    IntKind::I64,
    int64_parse,
    int64_unparse,
    int64_default,
    int64_align,
    8
);

// ---------------------------------------------------------------------------
// Strings (§7.5)
// ---------------------------------------------------------------------------

/// Decoded string token: frees the kernel allocation on drop.
struct Token {
    p: *mut c_char,
    len: c_int,
    slen: c_int,
}

impl Token {
    /// `ng_get_string_token(s, off, ...)`; `None` when there is no string there.
    ///
    /// # Safety
    /// `s` NUL-terminated, `*off` inside it.
    unsafe fn get(s: *const c_char, off: *mut c_int) -> Option<Token> {
        let mut len = 0;
        let mut slen = 0;
        // SAFETY: forwarded caller contract; the out-pointers are locals.
        let p = unsafe { get_string_token_c(s, off, &mut len, &mut slen) };
        (!p.is_null()).then(|| Token { p, len, slen })
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: the scanner wrote `slen` decoded bytes (plus a NUL) at `p`.
        unsafe { core::slice::from_raw_parts(self.p.cast::<u8>(), self.slen as usize) }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        // SAFETY: `p` came from `kalloc` in the scanner and is freed once.
        unsafe { kfree(self.p.cast()) }
    }
}

/// Unparses `n` raw bytes as a quoted, escaped string (through `ng_encode_string`).
///
/// # Safety
/// `raw` readable for `n` bytes; `cbuf` writable for `cbuflen` bytes.
unsafe fn append_encoded(raw: *const u8, n: usize, cbuf: *mut c_char, cbuflen: c_int) -> c_int {
    // SAFETY: forwarded caller contract.
    let enc = unsafe { encode_string_c(raw.cast(), n as c_int) };
    if enc.is_null() {
        return ENOMEM;
    }
    // SAFETY: `enc` is a NUL-terminated allocation made by `encode_string_c`.
    let text = unsafe { core::ffi::CStr::from_ptr(enc) }
        .to_bytes()
        .to_vec();
    // SAFETY: `enc` was allocated with `kalloc`.
    unsafe { kfree(enc.cast()) };
    let mut cb = cbuf;
    let mut cl = cbuflen;
    // SAFETY: forwarded caller contract on `cbuf`.
    unsafe { append(&mut cb, &mut cl, &text) }
}

/// Length of the NUL-terminated string at `p`, checked against the read window.
///
/// # Safety
/// `p` must be NUL-terminated (inside the read window when one is active).
unsafe fn checked_strlen(p: *const u8, what: &str) -> Option<usize> {
    if !read_check(p, 1, what) {
        return None;
    }
    // SAFETY: forwarded caller contract.
    match unsafe { super::window_strlen(p) } {
        Some(n) => read_check(p, n + 1, what).then_some(n),
        None => {
            violation(format!(
                "ng_unparse: {what} has no NUL before the end of the readable message"
            ));
            None
        }
    }
}

/// `string` parse.
///
/// # Safety
/// Parse-method contract.
pub(crate) unsafe extern "C" fn string_parse(
    _t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: parse-method contract; the write is checked by `room`.
    unsafe {
        let Some(tok) = Token::get(s, off) else {
            return EINVAL;
        };
        *off += tok.len;
        let n = tok.slen as usize;
        if !room(*buflen, n + 1, "string") {
            return ERANGE;
        }
        ptr::copy_nonoverlapping(tok.bytes().as_ptr(), buf, n);
        *buf.add(n) = 0;
        *buflen = tok.slen + 1;
    }
    0
}

/// `string` unparse.
///
/// # Safety
/// Unparse-method contract.
pub(crate) unsafe extern "C" fn string_unparse(
    _t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: unparse-method contract; reads are window-checked.
    unsafe {
        let raw = data.wrapping_offset(*off as isize);
        let Some(n) = checked_strlen(raw, "string") else {
            return EINVAL;
        };
        let e = append_encoded(raw, n, cbuf, cbuflen);
        if e != 0 {
            return e;
        }
        *off = (*off).wrapping_add(n as c_int + 1);
    }
    0
}

/// `string` getDefault: the empty string.
///
/// # Safety
/// getDefault-method contract.
pub(crate) unsafe extern "C" fn string_default(
    _t: *const Pt,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: forwarded getDefault contract.
    unsafe { zero_default(1, buf, buflen) }
}

/// The `bufSize` of a fixedstring subtype.
///
/// # Safety
/// `t` valid.
unsafe fn fixed_size(t: *const Pt) -> Option<c_int> {
    // SAFETY: `t` valid; its info points at a fixedstring info when non-NULL.
    let fi = unsafe { (*t).info }.cast::<ng_parse_fixedstring_info>();
    if fi.is_null() {
        violation(format!(
            "ng_parse: fixedstring type {t:p} has no info (the kernel would fault)"
        ));
        return None;
    }
    // SAFETY: non-NULL info of a fixedstring type.
    Some(unsafe { (*fi).bufSize })
}

/// `fixedstring` parse.
///
/// # Safety
/// Parse-method contract.
pub(crate) unsafe extern "C" fn fixedstring_parse(
    t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: parse-method contract; the write is checked by `room`.
    unsafe {
        let Some(size) = fixed_size(t) else {
            return EINVAL;
        };
        let Some(tok) = Token::get(s, off) else {
            return EINVAL;
        };
        if i64::from(tok.slen) + 1 > i64::from(size) {
            return E2BIG;
        }
        *off += tok.len;
        if !room(*buflen, size as usize, "fixedstring") {
            return ERANGE;
        }
        let n = tok.slen as usize;
        ptr::copy_nonoverlapping(tok.bytes().as_ptr(), buf, n);
        ptr::write_bytes(buf.add(n), 0, size as usize - n);
        *buflen = size;
    }
    0
}

/// `fixedstring` unparse.
///
/// # Safety
/// Unparse-method contract.
pub(crate) unsafe extern "C" fn fixedstring_unparse(
    t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: unparse-method contract; reads are window-checked.
    unsafe {
        let Some(size) = fixed_size(t) else {
            return EINVAL;
        };
        let raw = data.wrapping_offset(*off as isize);
        let Some(n) = checked_strlen(raw, "fixedstring") else {
            return EINVAL;
        };
        if n as i64 >= i64::from(size) {
            violation(format!(
                "ng_unparse: fixedstring field of {size} bytes has no NUL (the kernel reads {} bytes past it)",
                n as i64 + 1 - i64::from(size)
            ));
        }
        let e = append_encoded(raw, n, cbuf, cbuflen);
        if e != 0 {
            return e;
        }
        *off = (*off).wrapping_add(size);
    }
    0
}

/// `fixedstring` getDefault: `bufSize` zero bytes.
///
/// # Safety
/// getDefault-method contract.
pub(crate) unsafe extern "C" fn fixedstring_default(
    t: *const Pt,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: forwarded getDefault contract.
    unsafe {
        let Some(size) = fixed_size(t) else {
            return EINVAL;
        };
        if size < 0 {
            return ERANGE;
        }
        zero_default(size as usize, buf, buflen)
    }
}

/// `sizedstring` parse.
///
/// # Safety
/// Parse-method contract.
pub(crate) unsafe extern "C" fn sizedstring_parse(
    _t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: parse-method contract; the write is checked by `room`.
    unsafe {
        let Some(tok) = Token::get(s, off) else {
            return EINVAL;
        };
        if tok.slen > 0xffff {
            return EINVAL;
        }
        *off += tok.len;
        let n = tok.slen as usize;
        if !room(*buflen, 2 + n, "sizedstring") {
            return ERANGE;
        }
        ptr::copy_nonoverlapping((n as u16).to_le_bytes().as_ptr(), buf, 2);
        ptr::copy_nonoverlapping(tok.bytes().as_ptr(), buf.add(2), n);
        *buflen = 2 + tok.slen;
    }
    0
}

/// `sizedstring` unparse.
///
/// # Safety
/// Unparse-method contract.
pub(crate) unsafe extern "C" fn sizedstring_unparse(
    _t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: unparse-method contract; reads are window-checked.
    unsafe {
        let p = data.wrapping_offset(*off as isize);
        if !read_check(p, 2, "sizedstring length") {
            return EINVAL;
        }
        let n = usize::from(u16::from_le_bytes([*p, *p.add(1)]));
        if !read_check(p.add(2), n, "sizedstring") {
            return EINVAL;
        }
        let e = append_encoded(p.add(2), n, cbuf, cbuflen);
        if e != 0 {
            return e;
        }
        *off = (*off).wrapping_add(n as c_int + 2);
    }
    0
}

/// `sizedstring` getDefault: a zero length.
///
/// # Safety
/// getDefault-method contract.
pub(crate) unsafe extern "C" fn sizedstring_default(
    _t: *const Pt,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: forwarded getDefault contract.
    unsafe { zero_default(2, buf, buflen) }
}

// ---------------------------------------------------------------------------
// ipaddr, enaddr (§7.4)
// ---------------------------------------------------------------------------

/// `ipaddr` parse: four int8 parses separated by dots (the position also moves
/// past the character after the fourth number, as FreeBSD does).
///
/// # Safety
/// Parse-method contract.
pub(crate) unsafe extern "C" fn ipaddr_parse(
    _t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    let int8 = types().int8;
    // SAFETY: parse-method contract; four one-byte writes after `room` checked 4.
    unsafe {
        if !room(*buflen, 4, "ipaddr") {
            return ERANGE;
        }
        for i in 0..4 {
            let mut one: c_int = 1;
            let e = int8_parse(int8, s, off, start, buf.add(i), &mut one);
            if e != 0 {
                return e;
            }
            if i < 3 && at(s.cast(), *off) != b'.' {
                return EINVAL;
            }
            *off += 1;
        }
        *buflen = 4;
    }
    0
}

/// `ipaddr` unparse.
///
/// # Safety
/// Unparse-method contract.
pub(crate) unsafe extern "C" fn ipaddr_unparse(
    _t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: unparse-method contract; the read is window-checked.
    unsafe {
        let p = data.wrapping_offset(*off as isize);
        if !read_check(p, 4, "ipaddr") {
            return EINVAL;
        }
        let text = format!("{}.{}.{}.{}", *p, *p.add(1), *p.add(2), *p.add(3));
        let mut cb = cbuf;
        let mut cl = cbuflen;
        let e = append(&mut cb, &mut cl, text.as_bytes());
        if e != 0 {
            return e;
        }
        *off = (*off).wrapping_add(4);
    }
    0
}

/// `ipaddr` getDefault: 0.0.0.0.
///
/// # Safety
/// getDefault-method contract.
pub(crate) unsafe extern "C" fn ipaddr_default(
    _t: *const Pt,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: forwarded getDefault contract.
    unsafe { zero_default(4, buf, buflen) }
}

/// `enaddr` parse.
///
/// # Safety
/// Parse-method contract.
pub(crate) unsafe extern "C" fn enaddr_parse(
    _t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    _start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: parse-method contract; `*buflen >= 6` is checked before writing.
    unsafe {
        if *buflen < 6 {
            return ERANGE;
        }
        for i in 0..6 {
            let (val, used) = strtoul(s.offset(*off as isize).cast(), 16);
            if val > 0xff || used == 0 {
                return EINVAL;
            }
            *buf.add(i) = val as u8;
            *off += used as c_int;
            if i < 5 {
                if at(s.cast(), *off) != b':' {
                    return EINVAL;
                }
                *off += 1;
            }
        }
        *buflen = 6;
    }
    0
}

/// `enaddr` unparse.
///
/// # Safety
/// Unparse-method contract.
pub(crate) unsafe extern "C" fn enaddr_unparse(
    _t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: unparse-method contract; the read is window-checked.
    unsafe {
        let p = data.wrapping_offset(*off as isize);
        if !read_check(p, 6, "enaddr") {
            return EINVAL;
        }
        let b = core::slice::from_raw_parts(p, 6);
        let text = format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        );
        let mut cb = cbuf;
        let mut cl = cbuflen;
        let e = append(&mut cb, &mut cl, text.as_bytes());
        if e != 0 {
            return e;
        }
        *off = (*off).wrapping_add(6);
    }
    0
}

// ---------------------------------------------------------------------------
// Byte arrays (§7.5)
// ---------------------------------------------------------------------------

/// The per-call array subtype of a bytearray type: the predefined hint8 array
/// template with `private` = the bytearray's getLength function.
///
/// # Safety
/// `t` valid.
unsafe fn bytearray_subtype(t: *const Pt) -> Pt {
    // SAFETY: the template is an initialised arena object; `t` is valid.
    unsafe {
        let mut sub = *types().bytearray_subtype;
        sub.private = (*t).info as *mut c_void;
        sub
    }
}

/// The getLength of the bytearray subtype: forwards to the function stored in `private`.
///
/// # Safety
/// getLength contract; `t` is a bytearray subtype.
pub(crate) unsafe extern "C" fn bytearray_subtype_length(
    t: *const Pt,
    start: *const u8,
    buf: *const u8,
) -> c_int {
    // SAFETY: `private` holds the bytearray's getLength pointer (or NULL).
    let f: ng_parse_array_getLength_t =
        unsafe { core::mem::transmute::<*mut c_void, ng_parse_array_getLength_t>((*t).private) };
    match f {
        // SAFETY: getLength contract.
        Some(f) => unsafe { f(t, start, buf) },
        None => {
            violation(format!("ng_parse: bytearray type has no getLength function in its info (the kernel would call NULL); subtype {t:p}"));
            0
        }
    }
}

/// `bytearray` parse: a quoted string or an array of bytes.
///
/// # Safety
/// Parse-method contract.
pub(crate) unsafe extern "C" fn bytearray_parse(
    t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: parse-method contract; `arraylen <= *buflen` is checked before writing.
    unsafe {
        if let Some(tok) = Token::get(s, off) {
            let f: ng_parse_array_getLength_t =
                core::mem::transmute::<*const c_void, ng_parse_array_getLength_t>((*t).info);
            let Some(f) = f else {
                violation(format!("ng_parse: bytearray type {t:p} has no getLength function in its info (the kernel would call NULL)"));
                return EINVAL;
            };
            let arraylen = f(t, start, buf);
            if arraylen > *buflen {
                return ERANGE;
            }
            if tok.slen > arraylen {
                return E2BIG;
            }
            let n = tok.slen as usize;
            ptr::copy_nonoverlapping(tok.bytes().as_ptr(), buf, n);
            ptr::write_bytes(buf.add(n), 0, arraylen as usize - n);
            *off += tok.len;
            *buflen = arraylen;
            0
        } else {
            let sub = bytearray_subtype(t);
            parse_composite(&sub, s, off, start, buf, buflen, Comp::Array)
        }
    }
}

/// `bytearray` unparse: always the hint8 array form.
///
/// # Safety
/// Unparse-method contract.
pub(crate) unsafe extern "C" fn bytearray_unparse(
    t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: forwarded unparse contract; the subtype lives for the call.
    unsafe {
        let sub = bytearray_subtype(t);
        unparse_composite(&sub, data, off, cbuf, cbuflen, Comp::Array)
    }
}

/// `bytearray` getDefault: all zeros.
///
/// # Safety
/// getDefault-method contract.
pub(crate) unsafe extern "C" fn bytearray_default(
    t: *const Pt,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: forwarded getDefault contract; the subtype lives for the call.
    unsafe {
        let sub = bytearray_subtype(t);
        composite_default(&sub, start, buf, buflen, Comp::Array)
    }
}

// ---------------------------------------------------------------------------
// Composites: struct, fixedarray, array (§7.6)
// ---------------------------------------------------------------------------

/// Kind of composite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comp {
    Struct,
    Array,
    FixedArray,
}

/// `info` of a composite, or a violation when it is NULL (the kernel would fault).
///
/// # Safety
/// `t` valid.
unsafe fn comp_info(t: *const Pt) -> Option<*const c_void> {
    // SAFETY: `t` is a valid type object (caller contract).
    let info = unsafe { (*t).info };
    if info.is_null() {
        violation(format!(
            "ng_parse: composite parse type {t:p} has no info (the kernel would fault)"
        ));
        return None;
    }
    Some(info)
}

/// Number of elements.
///
/// # Safety
/// `t` a valid composite of kind `kind`; `start`/`buf` as getLength expects.
unsafe fn comp_len(
    t: *const Pt,
    kind: Comp,
    start: *const u8,
    buf: *const u8,
) -> Result<c_int, c_int> {
    // SAFETY: forwarded caller contract.
    let info = unsafe { comp_info(t) }.ok_or(EINVAL)?;
    match kind {
        Comp::Struct => {
            let fields = info.cast::<ng_parse_struct_field>();
            for n in 0..MAX_FIELDS {
                // SAFETY: the field list is terminated by a NULL name.
                if unsafe { (*fields.add(n)).name }.is_null() {
                    return Ok(n as c_int);
                }
            }
            violation(format!("ng_parse: struct type {t:p} has more than {MAX_FIELDS} fields (missing terminator?)"));
            Err(EINVAL)
        }
        Comp::Array => {
            // SAFETY: array info.
            let ai = unsafe { &*info.cast::<ng_parse_array_info>() };
            match ai.getLength {
                // SAFETY: getLength contract.
                Some(f) => Ok(unsafe { f(t, start, buf) }),
                None => {
                    violation(format!(
                        "ng_parse: array type {t:p} has no getLength (the kernel would call NULL)"
                    ));
                    Err(EINVAL)
                }
            }
        }
        // SAFETY: fixedarray info.
        Comp::FixedArray => Ok(unsafe { (*info.cast::<ng_parse_fixedarray_info>()).length }),
    }
}

/// Struct field `index`.
///
/// # Safety
/// `t` a valid struct type with more than `index` fields.
unsafe fn field(t: *const Pt, index: c_int) -> *const ng_parse_struct_field {
    // SAFETY: caller contract.
    unsafe {
        (*t).info
            .cast::<ng_parse_struct_field>()
            .add(index as usize)
    }
}

/// Element type of element `index`.
///
/// # Safety
/// `t` a valid composite with non-NULL info and more than `index` elements.
unsafe fn comp_etype(t: *const Pt, kind: Comp, index: c_int) -> *const Pt {
    // SAFETY: caller contract (info checked non-NULL by `comp_len` before).
    unsafe {
        match kind {
            Comp::Struct => (*field(t, index)).type_,
            Comp::Array => (*(*t).info.cast::<ng_parse_array_info>()).elementType,
            Comp::FixedArray => (*(*t).info.cast::<ng_parse_fixedarray_info>()).elementType,
        }
    }
}

/// Padding needed before element `index` at position `posn`.
///
/// # Safety
/// As [`comp_etype`].
unsafe fn elem_pad(t: *const Pt, kind: Comp, index: c_int, posn: c_int) -> c_int {
    // SAFETY: caller contract.
    unsafe {
        let mut align = alignment(comp_etype(t, kind, index));
        if kind == Comp::Struct {
            let over = (*field(t, index)).alignment;
            if over != 0 {
                align = over;
            }
        }
        if align == 0 {
            0
        } else {
            align
                .wrapping_sub(posn.wrapping_rem(align))
                .wrapping_rem(align)
        }
    }
}

/// Default value of element `index`: the array info's per-index getDefault, else
/// the element type's getDefault, else EOPNOTSUPP.
///
/// # Safety
/// As [`comp_etype`]; `buf` writable for `*buflen` bytes.
unsafe fn elem_default(
    t: *const Pt,
    kind: Comp,
    index: c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: caller contract.
    unsafe {
        let per_index = match kind {
            Comp::Struct => None,
            Comp::Array => (*(*t).info.cast::<ng_parse_array_info>()).getDefault,
            Comp::FixedArray => (*(*t).info.cast::<ng_parse_fixedarray_info>()).getDefault,
        };
        if let Some(f) = per_index {
            return f(t, index, start, buf, buflen);
        }
        call_default(comp_etype(t, kind, index), start, buf, buflen)
    }
}

/// Exact match of the word `s[off..off+len]` with a field name.
///
/// # Safety
/// `s + off` readable for `len` bytes; `name` NUL-terminated.
unsafe fn name_matches(s: *const u8, off: c_int, len: c_int, name: *const c_char) -> bool {
    let name = name.cast::<u8>();
    // SAFETY: caller contract; the comparison stops at the first difference
    // (the name's NUL never equals a word byte).
    unsafe {
        for i in 0..len {
            if *name.offset(i as isize) != at(s, off + i) {
                return false;
            }
        }
        *name.offset(len as isize) == 0
    }
}

/// Skips one value: a single token or a balanced `{...}` / `[...]` group.
///
/// # Safety
/// `s` NUL-terminated, `off0` inside it.
unsafe fn skip_value(s: *const c_char, off0: c_int) -> Result<c_int, c_int> {
    let mut off = off0;
    let mut len: c_int = 0;
    let mut nbracket = 0i32;
    let mut nbrace = 0i32;
    loop {
        // SAFETY: forwarded caller contract.
        match unsafe { get_token_c(s, &mut off, &mut len) } {
            T_LBRACKET => nbracket += 1,
            T_LBRACE => nbrace += 1,
            T_RBRACKET => {
                if nbracket == 0 {
                    return Err(EINVAL);
                }
                nbracket -= 1;
            }
            T_RBRACE => {
                if nbrace == 0 {
                    return Err(EINVAL);
                }
                nbrace -= 1;
            }
            T_EOF => return Err(EINVAL),
            _ => {}
        }
        off += len;
        if nbracket <= 0 && nbrace <= 0 {
            break;
        }
    }
    Ok(off - off0)
}

/// Composite parse (two passes, §7.6).
///
/// # Safety
/// Parse-method contract for a composite of kind `kind`.
pub(crate) unsafe fn parse_composite(
    t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
    kind: Comp,
) -> c_int {
    let Some(_nesting) = Nesting::enter(t) else {
        return EINVAL;
    };
    // SAFETY: forwarded parse contract.
    let num = match unsafe { comp_len(t, kind, start, buf) } {
        Ok(n) => n,
        Err(e) => return e,
    };
    if num < 0 {
        // The kernel asks malloc(9) for num * sizeof(int) bytes, converted to a
        // huge size_t; treated as an allocation failure.
        eprintln!("harness: ng_parse: composite {t:p} has a negative element count {num}: ENOMEM");
        return ENOMEM;
    }
    let foff = kalloc((num as usize * core::mem::size_of::<c_int>()).max(1)).cast::<c_int>();
    if foff.is_null() {
        return ENOMEM;
    }
    // SAFETY: `foff` holds `num` ints.
    unsafe { ptr::write_bytes(foff, 0, num as usize) };
    // SAFETY: forwarded parse contract; `foff` indices are checked against `num`.
    let error = unsafe { parse_composite_body(t, s, off, start, buf, buflen, (kind, num, foff)) };
    // SAFETY: allocated above.
    unsafe { kfree(foff.cast()) };
    error
}

/// The body of [`parse_composite`], with `(kind, num, foff)` bundled.
///
/// # Safety
/// As [`parse_composite`]; `foff` holds `num` zeroed ints.
unsafe fn parse_composite_body(
    t: *const Pt,
    s: *const c_char,
    off: *mut c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
    (kind, num, foff): (Comp, c_int, *mut c_int),
) -> c_int {
    let sb = s.cast::<u8>();
    let (open, close) = if kind == Comp::Struct {
        (T_LBRACE, T_RBRACE)
    } else {
        (T_LBRACKET, T_RBRACKET)
    };
    // SAFETY: parse contract: `s` NUL-terminated with `*off` inside, `buf`
    // writable for `*buflen` bytes (every write below is checked against it or
    // delegated to an element method with the remaining length); `foff` has
    // `num` entries and every index is checked against `num` first.
    unsafe {
        let mut len: c_int = 0;
        if get_token_c(s, off, &mut len) != open {
            return EINVAL;
        }
        *off += len;

        // Pass 1: locate every given value.
        let mut next_index: c_int = 0;
        loop {
            let tok = get_token_c(s, off, &mut len);
            if tok == close {
                *off += len;
                break;
            }
            let index: u32;
            if kind != Comp::Struct {
                if tok == T_LBRACE || tok == T_LBRACKET {
                    index = next_index as u32;
                    next_index = next_index.wrapping_add(1);
                } else if tok != T_WORD {
                    return EINVAL;
                } else {
                    let mut off2 = *off + len;
                    let mut len2: c_int = 0;
                    if get_token_c(s, &mut off2, &mut len2) != T_EQUALS {
                        index = next_index as u32;
                        next_index = next_index.wrapping_add(1);
                    } else {
                        let (ul, used) = strtoul(sb.offset(*off as isize), 0);
                        if ul == u64::MAX || used as i64 != i64::from(len) {
                            return EINVAL;
                        }
                        index = ul as u32;
                        next_index = index.wrapping_add(1) as c_int;
                        // Whitespace between the index and '=' is not skipped here.
                        *off += len + len2;
                    }
                }
            } else {
                if tok != T_WORD {
                    return EINVAL;
                }
                let mut found = None;
                for i in 0..num {
                    if name_matches(sb, *off, len, (*field(t, i)).name) {
                        found = Some(i as u32);
                        break;
                    }
                }
                let Some(i) = found else { return ENOENT };
                index = i;
                *off += len;
                if get_token_c(s, off, &mut len) != T_EQUALS {
                    return EINVAL;
                }
                *off += len;
            }
            if index >= num as u32 {
                return E2BIG;
            }
            let slot = foff.add(index as usize);
            if *slot != 0 {
                return EALREADY;
            }
            while is_space(at(sb, *off)) {
                *off += 1;
            }
            *slot = *off;
            match skip_value(s, *off) {
                Ok(l) => *off += l,
                Err(e) => return e,
            }
        }

        // Pass 2: build the binary in element order.
        let mut blen: c_int = 0;
        for index in 0..num {
            let etype = comp_etype(t, kind, index);
            let pad = elem_pad(t, kind, index, blen);
            for _ in 0..pad.max(0) {
                if blen >= *buflen {
                    return ERANGE;
                }
                *buf.add(blen as usize) = 0;
                blen += 1;
            }
            let mut vlen = *buflen - blen;
            let at_off = *foff.add(index as usize);
            let e = if at_off == 0 {
                elem_default(t, kind, index, start, buf.add(blen as usize), &mut vlen)
            } else {
                *off = at_off;
                call_parse(etype, s, off, start, buf.add(blen as usize), &mut vlen)
            };
            if e != 0 {
                return e;
            }
            blen = blen.wrapping_add(vlen);
        }

        let align = alignment(t);
        if align != 0 {
            while blen.wrapping_rem(align) != 0 {
                if blen >= *buflen {
                    return ERANGE;
                }
                *buf.add(blen as usize) = 0;
                blen += 1;
            }
        }
        *buflen = blen;
    }
    0
}

/// Composite default: parsing `{}` / `[]`.
///
/// # Safety
/// getDefault-method contract for a composite of kind `kind`.
pub(crate) unsafe fn composite_default(
    t: *const Pt,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
    kind: Comp,
) -> c_int {
    let text: &[u8] = if kind == Comp::Struct {
        b"{}\0"
    } else {
        b"[]\0"
    };
    let mut off: c_int = 0;
    // SAFETY: forwarded contract; `text` is NUL-terminated.
    unsafe { parse_composite(t, text.as_ptr().cast(), &mut off, start, buf, buflen, kind) }
}

/// Composite unparse (§7.6), with default suppression against a scratch copy
/// of the 56-byte header and the data before the element.
///
/// # Safety
/// Unparse-method contract for a composite of kind `kind`: `data` is the
/// top-level object, preceded by 56 readable bytes.
pub(crate) unsafe fn unparse_composite(
    t: *const Pt,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
    kind: Comp,
) -> c_int {
    let Some(_nesting) = Nesting::enter(t) else {
        return EINVAL;
    };
    let hdr = data.wrapping_sub(HDRLEN);
    // SAFETY: forwarded unparse contract.
    let num = match unsafe { comp_len(t, kind, data, data.wrapping_offset(*off as isize)) } {
        Ok(n) => n,
        Err(e) => return e,
    };
    let work = kalloc(WORK_SIZE);
    if work.is_null() {
        return ENOMEM;
    }
    let mut cb = cbuf;
    let mut cl = cbuflen;
    // SAFETY: unparse contract: `cbuf` writable for `cbuflen` bytes (advanced
    // only by what was written), reads of `data`/`hdr` are window-checked,
    // `work` holds WORK_SIZE bytes and the copy into it is bounded by
    // `56 + *off < WORK_SIZE`.
    let error = unsafe {
        'done: {
            let (opener, closer): (&[u8], &[u8]) = if kind == Comp::Struct {
                (b"{", b"}")
            } else {
                (b"[", b"]")
            };
            let e = append(&mut cb, &mut cl, opener);
            if e != 0 {
                break 'done e;
            }
            let mut next_index: c_int = 0;
            let mut did_one = false;
            for index in 0..num.max(0) {
                let etype = comp_etype(t, kind, index);
                *off = (*off).wrapping_add(elem_pad(t, kind, index, *off));

                let o = *off;
                if o >= 0 && HDRLEN + (o as usize) < WORK_SIZE {
                    let mut tempsize = (WORK_SIZE - HDRLEN) as c_int - o;
                    if !read_check(hdr, HDRLEN + o as usize, "composite prefix") {
                        break 'done EINVAL;
                    }
                    ptr::copy_nonoverlapping(hdr, work, HDRLEN + o as usize);
                    let dflt = work.add(HDRLEN + o as usize);
                    if elem_default(t, kind, index, work.add(HDRLEN), dflt, &mut tempsize) == 0
                        && (0..=(WORK_SIZE - HDRLEN) as c_int - o).contains(&tempsize)
                    {
                        let actual = data.wrapping_offset(o as isize);
                        if !read_check(actual, tempsize as usize, "element") {
                            break 'done EINVAL;
                        }
                        if core::slice::from_raw_parts(dflt, tempsize as usize)
                            == core::slice::from_raw_parts(actual, tempsize as usize)
                        {
                            *off = o.wrapping_add(tempsize);
                            continue;
                        }
                    }
                }

                let e = append(&mut cb, &mut cl, b" ");
                if e != 0 {
                    break 'done e;
                }
                if kind != Comp::Struct {
                    if index != next_index {
                        next_index = index;
                        let e = append(&mut cb, &mut cl, format!("{index}=").as_bytes());
                        if e != 0 {
                            break 'done e;
                        }
                    }
                    next_index += 1;
                } else {
                    let name = core::ffi::CStr::from_ptr((*field(t, index)).name).to_bytes();
                    let mut label = name.to_vec();
                    label.push(b'=');
                    let e = append(&mut cb, &mut cl, &label);
                    if e != 0 {
                        break 'done e;
                    }
                }
                let e = call_unparse(etype, data, off, cb, cl);
                if e != 0 {
                    break 'done e;
                }
                let n = libc::strnlen(cb, cl.max(0) as usize);
                if n >= cl.max(0) as usize {
                    violation(format!(
                        "ng_unparse: the unparse method of parse type {etype:p} left no NUL-terminated text in its {cl}-byte buffer"
                    ));
                    break 'done EINVAL;
                }
                cl -= n as c_int;
                cb = cb.add(n);
                did_one = true;
            }
            let mut tail = Vec::with_capacity(2);
            if did_one {
                tail.push(b' ');
            }
            tail.extend_from_slice(closer);
            append(&mut cb, &mut cl, &tail)
        }
    };
    // SAFETY: allocated above.
    unsafe { kfree(work) };
    error
}

macro_rules! composite_methods {
    ($kind:expr, $parse:ident, $unparse:ident, $default:ident) => {
        /// Composite parse method.
        ///
        /// # Safety
        /// Parse-method contract.
        pub(crate) unsafe extern "C" fn $parse(
            t: *const Pt,
            s: *const c_char,
            off: *mut c_int,
            start: *const u8,
            buf: *mut u8,
            buflen: *mut c_int,
        ) -> c_int {
            // SAFETY: forwarded parse contract.
            unsafe { parse_composite(t, s, off, start, buf, buflen, $kind) }
        }
        /// Composite unparse method.
        ///
        /// # Safety
        /// Unparse-method contract.
        pub(crate) unsafe extern "C" fn $unparse(
            t: *const Pt,
            data: *const u8,
            off: *mut c_int,
            cbuf: *mut c_char,
            cbuflen: c_int,
        ) -> c_int {
            // SAFETY: forwarded unparse contract.
            unsafe { unparse_composite(t, data, off, cbuf, cbuflen, $kind) }
        }
        /// Composite getDefault method.
        ///
        /// # Safety
        /// getDefault-method contract.
        pub(crate) unsafe extern "C" fn $default(
            t: *const Pt,
            start: *const u8,
            buf: *mut u8,
            buflen: *mut c_int,
        ) -> c_int {
            // SAFETY: forwarded getDefault contract.
            unsafe { composite_default(t, start, buf, buflen, $kind) }
        }
    };
}

composite_methods!(Comp::Struct, struct_parse, struct_unparse, struct_default);
composite_methods!(
    Comp::FixedArray,
    fixedarray_parse,
    fixedarray_unparse,
    fixedarray_default
);
composite_methods!(Comp::Array, array_parse, array_unparse, array_default);

/// `struct` getAlign: the largest field-type alignment (overrides ignored).
///
/// # Safety
/// `t` a valid struct type.
pub(crate) unsafe extern "C" fn struct_align(t: *const Pt) -> c_int {
    let Some(_nesting) = Nesting::enter(t) else {
        return 0;
    };
    // SAFETY: forwarded caller contract.
    let Some(info) = (unsafe { comp_info(t) }) else {
        return 0;
    };
    let fields = info.cast::<ng_parse_struct_field>();
    let mut align = 0;
    for n in 0..MAX_FIELDS {
        // SAFETY: the field list is terminated by a NULL name.
        let f = unsafe { &*fields.add(n) };
        if f.name.is_null() {
            break;
        }
        // SAFETY: field types are valid type objects.
        let a = unsafe { alignment(f.type_) };
        if a > align {
            align = a;
        }
    }
    align
}

/// `fixedarray` getAlign: the element alignment.
///
/// # Safety
/// `t` a valid fixedarray type.
pub(crate) unsafe extern "C" fn fixedarray_align(t: *const Pt) -> c_int {
    let Some(_nesting) = Nesting::enter(t) else {
        return 0;
    };
    // SAFETY: forwarded caller contract.
    let Some(info) = (unsafe { comp_info(t) }) else {
        return 0;
    };
    // SAFETY: fixedarray info; the element type is valid.
    unsafe { alignment((*info.cast::<ng_parse_fixedarray_info>()).elementType) }
}

/// `array` getAlign: the element alignment.
///
/// # Safety
/// `t` a valid array type.
pub(crate) unsafe extern "C" fn array_align(t: *const Pt) -> c_int {
    let Some(_nesting) = Nesting::enter(t) else {
        return 0;
    };
    // SAFETY: forwarded caller contract.
    let Some(info) = (unsafe { comp_info(t) }) else {
        return 0;
    };
    // SAFETY: array info; the element type is valid.
    unsafe { alignment((*info.cast::<ng_parse_array_info>()).elementType) }
}

/// getLength of `ng_parse_ng_mesg_type`'s data: the `arglen` of the header
/// that ends where the data begins.
///
/// # Safety
/// `buf` preceded by a 56-byte `struct ng_mesg` header.
pub(crate) unsafe extern "C" fn ng_mesg_data_length(
    _t: *const Pt,
    _start: *const u8,
    buf: *const u8,
) -> c_int {
    // SAFETY: caller contract; `arglen` is at offset 4 of the header.
    unsafe { ptr::read_unaligned(buf.wrapping_sub(HDRLEN).add(4).cast::<u32>()) as c_int }
}
