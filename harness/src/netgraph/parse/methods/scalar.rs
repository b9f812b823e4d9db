//! The integer types and `ipaddr`, `enaddr`.

use super::*;

#[derive(Clone, Copy)]
pub(super) enum IntKind {
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
/// Parse-method contract (docs/netgraph-model.md §7.2).
pub(super) unsafe fn int_parse(
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
/// Unparse-method contract (docs/netgraph-model.md §7.2).
pub(super) unsafe fn int_unparse(
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
pub(super) unsafe fn zero_default(n: usize, buf: *mut u8, buflen: *mut c_int) -> c_int {
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
        parse_methods! {
            /// Integer parse method.
            parse fn $parse(t, s, off, _start, buf, buflen) {
                // SAFETY: forwarded parse-method contract.
                unsafe { int_parse($kind, t, s, off, buf, buflen) }
            }
            /// Integer unparse method.
            unparse fn $unparse(t, data, off, cbuf, cbuflen) {
                // SAFETY: forwarded unparse-method contract.
                unsafe { int_unparse($kind, t, data, off, cbuf, cbuflen) }
            }
            /// Integer getDefault method (zero).
            default fn $default(_t, _start, buf, buflen) {
                // SAFETY: forwarded getDefault-method contract.
                unsafe { zero_default($kind.size(), buf, buflen) }
            }
            /// Integer getAlign method.
            align fn $align(_t) {
                $a
            }
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

parse_methods! {
    /// `ipaddr` parse: four int8 parses separated by dots (the position also moves
    /// past the character after the fourth number, as FreeBSD does).
    parse fn ipaddr_parse(_t, s, off, start, buf, buflen) {
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
    unparse fn ipaddr_unparse(_t, data, off, cbuf, cbuflen) {
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
    default fn ipaddr_default(_t, _start, buf, buflen) {
        // SAFETY: forwarded getDefault contract.
        unsafe { zero_default(4, buf, buflen) }
    }

    /// `enaddr` parse.
    parse fn enaddr_parse(_t, s, off, _start, buf, buflen) {
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
    unparse fn enaddr_unparse(_t, data, off, cbuf, cbuflen) {
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
}
