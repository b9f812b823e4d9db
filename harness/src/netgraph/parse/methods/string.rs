//! The string types and byte arrays.

use super::*;

/// Decoded string token: frees the kernel allocation on drop.
pub(super) struct Token {
    pub(super) p: *mut c_char,
    pub(super) len: c_int,
    pub(super) slen: c_int,
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
pub(super) unsafe fn append_encoded(
    raw: *const u8,
    n: usize,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
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
pub(super) unsafe fn checked_strlen(p: *const u8, what: &str) -> Option<usize> {
    if !read_check(p, 1, what) {
        return None;
    }
    // SAFETY: forwarded caller contract.
    match unsafe { window_strlen(p) } {
        Some(n) => read_check(p, n + 1, what).then_some(n),
        None => {
            violation(format!(
                "ng_unparse: {what} has no NUL before the end of the readable message"
            ));
            None
        }
    }
}

parse_methods! {
    /// `string` parse.
    parse fn string_parse(_t, s, off, _start, buf, buflen) {
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
    unparse fn string_unparse(_t, data, off, cbuf, cbuflen) {
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
    default fn string_default(_t, _start, buf, buflen) {
        // SAFETY: forwarded getDefault contract.
        unsafe { zero_default(1, buf, buflen) }
    }
}

/// The `bufSize` of a fixedstring subtype.
///
/// # Safety
/// `t` valid.
pub(super) unsafe fn fixed_size(t: *const Pt) -> Option<c_int> {
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

parse_methods! {
    /// `fixedstring` parse.
    parse fn fixedstring_parse(t, s, off, _start, buf, buflen) {
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
    unparse fn fixedstring_unparse(t, data, off, cbuf, cbuflen) {
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
    default fn fixedstring_default(t, _start, buf, buflen) {
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
    parse fn sizedstring_parse(_t, s, off, _start, buf, buflen) {
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
    unparse fn sizedstring_unparse(_t, data, off, cbuf, cbuflen) {
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
    default fn sizedstring_default(_t, _start, buf, buflen) {
        // SAFETY: forwarded getDefault contract.
        unsafe { zero_default(2, buf, buflen) }
    }
}

/// The per-call array subtype of a bytearray type: the predefined hint8 array
/// template with `private` = the bytearray's getLength function.
///
/// # Safety
/// `t` valid.
pub(super) unsafe fn bytearray_subtype(t: *const Pt) -> Pt {
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

parse_methods! {
    /// `bytearray` parse: a quoted string or an array of bytes.
    parse fn bytearray_parse(t, s, off, start, buf, buflen) {
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
    unparse fn bytearray_unparse(t, data, off, cbuf, cbuflen) {
        // SAFETY: forwarded unparse contract; the subtype lives for the call.
        unsafe {
            let sub = bytearray_subtype(t);
            unparse_composite(&sub, data, off, cbuf, cbuflen, Comp::Array)
        }
    }

    /// `bytearray` getDefault: all zeros.
    default fn bytearray_default(t, start, buf, buflen) {
        // SAFETY: forwarded getDefault contract; the subtype lives for the call.
        unsafe {
            let sub = bytearray_subtype(t);
            composite_default(&sub, start, buf, buflen, Comp::Array)
        }
    }
}
