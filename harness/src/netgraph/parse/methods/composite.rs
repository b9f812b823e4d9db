//! Composites: struct, fixedarray, array, and the message-data length of
//! `ng_parse_ng_mesg_type`.

use super::*;

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
pub(super) unsafe fn comp_info(t: *const Pt) -> Option<*const c_void> {
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
pub(super) unsafe fn comp_len(
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
pub(super) unsafe fn field(t: *const Pt, index: c_int) -> *const ng_parse_struct_field {
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
pub(super) unsafe fn comp_etype(t: *const Pt, kind: Comp, index: c_int) -> *const Pt {
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
pub(super) unsafe fn elem_pad(t: *const Pt, kind: Comp, index: c_int, posn: c_int) -> c_int {
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
pub(super) unsafe fn elem_default(
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
pub(super) unsafe fn name_matches(
    s: *const u8,
    off: c_int,
    len: c_int,
    name: *const c_char,
) -> bool {
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
pub(super) unsafe fn skip_value(s: *const c_char, off0: c_int) -> Result<c_int, c_int> {
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

/// Composite parse (two passes, docs/netgraph-model.md §7.6).
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
pub(super) unsafe fn parse_composite_body(
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

/// Composite unparse (docs/netgraph-model.md §7.6), with default
/// suppression against a scratch copy of the 56-byte header and the data
/// before the element.
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
        parse_methods! {
            /// Composite parse method.
            parse fn $parse(t, s, off, start, buf, buflen) {
                // SAFETY: forwarded parse contract.
                unsafe { parse_composite(t, s, off, start, buf, buflen, $kind) }
            }
            /// Composite unparse method.
            unparse fn $unparse(t, data, off, cbuf, cbuflen) {
                // SAFETY: forwarded unparse contract.
                unsafe { unparse_composite(t, data, off, cbuf, cbuflen, $kind) }
            }
            /// Composite getDefault method.
            default fn $default(t, start, buf, buflen) {
                // SAFETY: forwarded getDefault contract.
                unsafe { composite_default(t, start, buf, buflen, $kind) }
            }
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

parse_methods! {
    /// `struct` getAlign: the largest field-type alignment (overrides ignored).
    align fn struct_align(t) {
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
    align fn fixedarray_align(t) {
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
    align fn array_align(t) {
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
