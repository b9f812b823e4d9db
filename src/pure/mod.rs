//! Pure logic of the `ksocket` node type: plain functions with no kernel
//! dependency, unit-tested on the host.
//!
//! * [`hookname`]: the `<family>/<type>/<proto>` hook-name grammar and the
//!   alias tables (docs/ksocket.md §3).
//! * [`sockaddr`]: the ASCII forms of `struct sockaddr` (docs/ksocket.md §7.1).
//! * [`sockopt`]: symbolic socket-option tables (a deliberate improvement:
//!   FreeBSD has none).
//! * [`ngpath`]: netgraph addresses as the core splits them.
//! * [`ngmsg`]: whether the core can print a generic message without
//!   reading outside it.
//! * [`cmsg`]: control data (`struct cmsghdr` records) as sockets return
//!   and take it.
//!
//! Nothing here allocates: parsers write into caller-provided buffers and
//! formatters into a caller-provided [`Writer`]. Nothing here panics: every
//! index is checked and every arithmetic operation is checked, wrapping or
//! saturating. Errors are FreeBSD errno values ([`Errno`]).
//!
//! Deliberate improvements over FreeBSD are opt-out through [`Dialect`]:
//! [`Dialect::Extended`] (the default) enables them, [`Dialect::FreeBsd`]
//! behaves exactly like FreeBSD 15's `ng_ksocket`. An improvement only ever
//! turns an input FreeBSD rejects into an accepted one (or, when formatting,
//! replaces the generic brace form by a shorthand); every input FreeBSD
//! accepts is handled identically in both dialects.

use core::fmt;

pub mod cmsg;
pub mod consts;
pub mod hookname;
pub mod ngmsg;
pub mod ngpath;
pub mod sockaddr;
pub mod sockopt;

/// A FreeBSD errno value (always positive), as returned by the parsers.
///
/// Kernel code converts it with `kern::Errno::from_raw`.
pub type Errno = i32;

/// Argument list too long (a string is too long for its field).
pub const E2BIG: Errno = consts::E2BIG;
/// Cannot allocate memory.
pub const ENOMEM: Errno = consts::ENOMEM;
/// Invalid argument (syntax error, bad value).
pub const EINVAL: Errno = consts::EINVAL;
/// Result too large (the output buffer is too small).
pub const ERANGE: Errno = consts::ERANGE;

/// Which behaviour to implement where this crate improves on FreeBSD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Exactly FreeBSD 15's behaviour (no extensions).
    FreeBsd,
    /// FreeBSD's behaviour plus this crate's documented improvements.
    #[default]
    Extended,
}

impl Dialect {
    /// True when the improvements are enabled.
    pub const fn extended(self) -> bool {
        matches!(self, Dialect::Extended)
    }
}

/// `isspace()` of FreeBSD's kernel `<sys/ctype.h>`: space, `\t`, `\n`, `\v`,
/// `\f`, `\r`.
pub const fn is_space(c: u8) -> bool {
    c == b' ' || (c >= b'\t' && c <= b'\r')
}

/// The part of `s` before its first NUL byte: what a C function sees when
/// handed `s` as a string.
pub fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&c| c == 0) {
        Some(n) => s.get(..n).unwrap_or(s),
        None => s,
    }
}

/// Writes `s` plus a NUL into `buf`, truncating `s` to fit; returns the
/// length of the C string written.
pub fn copy_c_str(buf: &mut [u8], s: &[u8]) -> usize {
    let n = s.len().min(buf.len().saturating_sub(1));
    for (d, v) in buf.iter_mut().zip(s.iter().take(n)) {
        *d = *v;
    }
    if let Some(z) = buf.get_mut(n) {
        *z = 0;
    }
    n
}

/// Result of [`strtoul10`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strtoul {
    /// The converted value (`u_long`, 64 bits on amd64).
    pub value: u64,
    /// Index just past the last digit, or 0 when no digit was found (C's
    /// `endptr == nptr`).
    pub end: usize,
}

/// FreeBSD's kernel `strtoul(s, &end, 10)` on the C string `s` (the end of
/// the slice counts as the terminating NUL).
///
/// Leading whitespace ([`is_space`]) and one `+` or `-` sign are skipped; a
/// `-` negates the result modulo 2^64; on overflow the value is `u64::MAX`
/// (and the remaining digits are still consumed); with no digit at all the
/// value is 0 and `end` is 0.
pub fn strtoul10(s: &[u8]) -> Strtoul {
    let mut i = s.iter().take_while(|&&c| is_space(c)).count();
    let mut neg = false;
    match s.get(i) {
        Some(b'-') => {
            neg = true;
            i = i.saturating_add(1);
        }
        Some(b'+') => i = i.saturating_add(1),
        _ => {}
    }
    let digits = s
        .get(i..)
        .unwrap_or(&[])
        .iter()
        .take_while(|c| c.is_ascii_digit());
    let mut acc: u64 = 0;
    let mut overflow = false;
    let mut count: usize = 0;
    for &c in digits {
        count = count.saturating_add(1);
        if !overflow {
            match acc
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c.wrapping_sub(b'0'))))
            {
                Some(v) => acc = v,
                None => overflow = true,
            }
        }
    }
    if count == 0 {
        return Strtoul { value: 0, end: 0 };
    }
    let value = if overflow {
        u64::MAX
    } else if neg {
        acc.wrapping_neg()
    } else {
        acc
    };
    Strtoul {
        value,
        end: i.saturating_add(count),
    }
}

/// A formatter over a caller-provided byte buffer (no allocation).
///
/// Writing past the end fails: [`Writer::put`] returns [`ERANGE`], the
/// [`fmt::Write`] implementation returns [`fmt::Error`] (which callers map to
/// [`ERANGE`], the only way formatting into a `Writer` can fail).
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Appends `bytes`; [`ERANGE`] (and nothing written) if they do not fit.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        let end = self.len.checked_add(bytes.len()).ok_or(ERANGE)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(ERANGE)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// The unwritten rest of the buffer, to be filled by a callee that then
    /// reports how much it used through [`Writer::advance`].
    pub fn spare(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.len..).unwrap_or(&mut [])
    }

    /// Marks `n` more bytes (written through [`Writer::spare`]) as used.
    pub fn advance(&mut self, n: usize) -> Result<(), Errno> {
        let end = self.len.checked_add(n).ok_or(ERANGE)?;
        if end > self.buf.len() {
            return Err(ERANGE);
        }
        self.len = end;
        Ok(())
    }

    /// Appends a NUL terminator (not counted) and returns the text length,
    /// like `snprintf`: [`ERANGE`] if the text plus its NUL does not fit.
    pub fn finish_c(self) -> Result<usize, Errno> {
        let slot = self.buf.get_mut(self.len).ok_or(ERANGE)?;
        *slot = 0;
        Ok(self.len)
    }
}

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.put(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    #[test]
    fn errno_values_are_freebsd() {
        assert_eq!((E2BIG, ENOMEM, EINVAL, ERANGE), (7, 12, 22, 34));
    }

    #[test]
    fn space_matches_kernel_ctype() {
        let spaces: [u8; 6] = [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r'];
        for c in 0..=255u8 {
            assert_eq!(is_space(c), spaces.contains(&c), "char {c:#x}");
        }
    }

    #[test]
    fn c_str_cuts_at_nul() {
        assert_eq!(c_str(b"ab\0cd"), b"ab");
        assert_eq!(c_str(b"abc"), b"abc");
        assert_eq!(c_str(b"\0"), b"");
    }

    #[test]
    fn strtoul_semantics() {
        let t = |s: &[u8]| {
            let r = strtoul10(s);
            (r.value, r.end)
        };
        assert_eq!(t(b""), (0, 0));
        assert_eq!(t(b"   "), (0, 0));
        assert_eq!(t(b"+"), (0, 0));
        assert_eq!(t(b"-"), (0, 0));
        assert_eq!(t(b"x1"), (0, 0));
        assert_eq!(t(b"0"), (0, 1));
        assert_eq!(t(b"17"), (17, 2));
        assert_eq!(t(b" \t+17x"), (17, 5));
        assert_eq!(t(b"-0"), (0, 2));
        assert_eq!(t(b"-5"), (5u64.wrapping_neg(), 2));
        assert_eq!(t(b"0x10"), (0, 1));
        assert_eq!(t(b"18446744073709551615"), (u64::MAX, 20));
        assert_eq!(t(b"18446744073709551616"), (u64::MAX, 20));
        assert_eq!(t(b"-99999999999999999999999"), (u64::MAX, 24));
        assert_eq!(t(b"12\x003"), (12, 2));
    }

    #[test]
    fn writer_overflow_is_erange() {
        let mut buf = [0u8; 8];
        let mut w = Writer::new(&mut buf);
        w.put(b"abc").unwrap();
        assert!(write!(w, "{}", 12345).is_ok());
        assert_eq!(w.written(), b"abc12345");
        assert_eq!(w.put(b"x"), Err(ERANGE));
        assert!(write!(w, "y").is_err());
        assert_eq!(w.len(), 8);
        assert_eq!(w.finish_c(), Err(ERANGE));

        let mut buf = [0xffu8; 4];
        let mut w = Writer::new(&mut buf);
        w.put(b"abc").unwrap();
        assert_eq!(w.finish_c(), Ok(3));
        assert_eq!(buf, *b"abc\0");

        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.spare()[..2].copy_from_slice(b"hi");
        w.advance(2).unwrap();
        assert_eq!(w.advance(3), Err(ERANGE));
        assert_eq!(w.written(), b"hi");
    }

    #[test]
    fn default_dialect_is_extended() {
        assert!(Dialect::default().extended());
        assert!(!Dialect::FreeBsd.extended());
    }
}
