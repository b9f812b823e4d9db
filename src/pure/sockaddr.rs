//! The ASCII forms of `struct sockaddr` used by the ksocket messages `bind`,
//! `connect`, `getname` and `getpeername` (docs/ksocket.md §7.1).
//!
//! Parse (text → binary), as FreeBSD 15 does it:
//!
//! * after leading whitespace, a `{` selects the generic brace form
//!   `{ len=… family=… data=[…] }`, which is the netgraph parse engine's
//!   business: [`parse`] reports [`ParseOutcome::Generic`] with `off` at the
//!   brace;
//! * otherwise the family is the text up to the first `/` anywhere in the
//!   rest of the input (at most 31 bytes), resolved like a hook-name family
//!   (alias or base-10 number); the value is stored in the one-byte
//!   `sa_family`, so only its low 8 bits count (`258/1.2.3.4` is `inet`);
//! * `local/"path"`: a quoted string (decoded by netgraph's string scanner,
//!   see [`StrCodec`]); the path ends at its first NUL byte, longer than 255
//!   bytes is E2BIG; `sun_len` = 2 + path length, stored in one byte (so it
//!   wraps for paths of 254 and 255 bytes, as in FreeBSD); no NUL is stored;
//! * `inet/A.B.C.D[:PORT]`: four base-10 `strtoul` octets ≤ 255 (leading
//!   whitespace and a sign tolerated, at least one digit each), then an
//!   optional `:` and `strtoul` port ≤ 65535; a 16-byte `sockaddr_in` with the
//!   port in network order and `sin_zero` cleared;
//! * any other family is EINVAL; text after the address is not checked.
//!
//! Unparse (binary → text): `local/"path"` (the `sun_len − 2` path bytes
//! encoded by netgraph's string encoder), `inet/A.B.C.D` plus `:PORT` when the
//! port is not 0 (`sin_len` not checked), and [`UnparseOutcome::Generic`] for
//! every other family, for the caller's generic brace form.
//!
//! **Deliberate improvement** ([`Dialect::Extended`]): IPv6. FreeBSD only
//! accepts and prints IPv6 socket addresses in the generic form. The node
//! parses in the extended dialect (an input FreeBSD refuses), and prints in
//! it only when `net.graph.ksocket.inet6_ascii` is set: by default its
//! output is FreeBSD's.
//! The extended dialect parses `inet6/[ADDR]:PORT`, `inet6/[ADDR]` and
//! `inet6/ADDR` (port 0), each with an optional numeric `%SCOPE` after the
//! address, into a 28-byte `sockaddr_in6` (flow info 0); addresses may use
//! `::` compression and a dotted-quad tail (`::ffff:192.0.2.1`). It prints a
//! `sockaddr_in6` of length 28 with zero flow info as `inet6/ADDR[%SCOPE]`
//! when the port is 0 and `inet6/[ADDR[%SCOPE]]:PORT` otherwise, ADDR in the
//! RFC 5952 canonical text form (IPv4-mapped addresses as `::ffff:a.b.c.d`);
//! any other `sockaddr_in6` still gets the lossless generic form. FreeBSD
//! rejects every `inet6/…` text, so no input it accepts changes meaning.
//!
//! Memory-safety differences (inputs on which FreeBSD reads or writes out of
//! bounds): binary input shorter than the family needs is EINVAL, a
//! `sockaddr_un` whose `sun_len` is below 2 is left to the generic form, and
//! an output buffer smaller than a `sockaddr_in` is ERANGE (FreeBSD only
//! checks for 2 bytes).

use core::fmt::Write as _;

use super::hookname::{resolve_family, PF_INET, PF_INET6, PF_LOCAL};
use super::{c_str, is_space, strtoul10, Dialect, Errno, Writer, E2BIG, EINVAL, ERANGE};

/// Offset of `sa_data` / `sun_path` in a `struct sockaddr`.
pub const SADATA_OFFSET: usize = 2;
/// `SOCK_MAXADDRLEN`: longest socket address (and longest `local` path).
pub const SOCK_MAXADDRLEN: usize = super::consts::SOCK_MAXADDRLEN;
/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub const SOCKADDR_IN6_LEN: usize = 28;
/// Longest family text before the `/` (the C code's 32-byte buffer).
const FAMILY_TEXT_MAX: usize = 31;

// Family numbers as the byte stored in `sa_family`.
const AF_LOCAL_BYTE: u8 = PF_LOCAL as u8;
const AF_INET_BYTE: u8 = PF_INET as u8;
const AF_INET6_BYTE: u8 = PF_INET6 as u8;

/// Result of [`StrCodec::decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedString {
    /// Characters consumed from the opening quote on, as netgraph's scanner
    /// reports them (the caller adds this to its offset).
    pub consumed: usize,
    /// Full decoded length, which may exceed the buffer given to `decode`.
    pub len: usize,
}

/// Netgraph's quoted-string codec.
///
/// In the kernel this is backed by `ng_get_string_token` and
/// `ng_encode_string`, so that the module reads and writes strings exactly
/// like the rest of netgraph (quirks included). Tests use a plain-Rust
/// implementation of the same escapes.
pub trait StrCodec {
    /// Like `ng_get_string_token(input, start, …)`: skips whitespace from
    /// `*start` (advancing it to the opening quote), then decodes the quoted
    /// string there. The first `min(len, out.len())` decoded bytes are copied
    /// into `out`. Fails (any errno; callers report EINVAL, as FreeBSD does)
    /// when there is no quote, no closing quote, or no memory.
    ///
    /// `input` is a C string: implementations must stop at its end or at its
    /// first NUL byte, whichever comes first.
    fn decode(
        &self,
        input: &[u8],
        start: &mut usize,
        out: &mut [u8],
    ) -> Result<DecodedString, Errno>;

    /// Like `ng_encode_string(raw, raw.len())`: writes `"`, the escaped bytes
    /// and `"` (no NUL) at the start of `out` and returns the length written.
    /// [`ERANGE`] if it does not fit, ENOMEM if memory runs out.
    ///
    /// `raw` may contain NUL bytes (they must be escaped, not end the string).
    fn encode(&self, raw: &[u8], out: &mut [u8]) -> Result<usize, Errno>;
}

/// Result of a successful [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseOutcome {
    /// A binary `sockaddr` of this many bytes (its `sa_len`) was written.
    Parsed(usize),
    /// The input is the generic brace form: `off` points at the `{`; the
    /// caller runs the generic struct parser from there.
    Generic,
}

/// Result of a successful [`unparse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnparseOutcome {
    /// `len` bytes of text (followed by a NUL, not counted) were written;
    /// `consumed` bytes of binary input were used.
    Text {
        /// Text length, NUL excluded.
        len: usize,
        /// Binary bytes consumed (the caller advances its offset by this).
        consumed: usize,
    },
    /// No shorthand for this address: the caller prints the generic form.
    Generic,
}

/// Parses a socket address in the extended dialect; see
/// [`parse_with`].
pub fn parse(
    input: &[u8],
    off: &mut usize,
    out: &mut [u8],
    strings: &dyn StrCodec,
) -> Result<ParseOutcome, Errno> {
    parse_with(input, off, out, strings, Dialect::Extended)
}

/// Parses the socket address starting at `input[*off]` into `out`.
///
/// `input` is a C string (it ends at its first NUL, if any). On success
/// `*off` is just past the consumed text (or at the `{` for
/// [`ParseOutcome::Generic`]). Errors: EINVAL (syntax or value), E2BIG
/// (`local` path longer than 255 bytes), ERANGE (`out` too small).
pub fn parse_with(
    input: &[u8],
    off: &mut usize,
    out: &mut [u8],
    strings: &dyn StrCodec,
    dialect: Dialect,
) -> Result<ParseOutcome, Errno> {
    let input = c_str(input);
    let rest = input.get(*off..).ok_or(EINVAL)?;
    let pos = off.saturating_add(rest.iter().take_while(|&&c| is_space(c)).count());
    *off = pos;
    let rest = input.get(pos..).unwrap_or(&[]);
    if rest.first() == Some(&b'{') {
        return Ok(ParseOutcome::Generic);
    }

    // The family: everything up to the first slash.
    let slash = rest.iter().position(|&c| c == b'/').ok_or(EINVAL)?;
    if slash > FAMILY_TEXT_MAX {
        return Err(EINVAL);
    }
    let family_text = rest.get(..slash).ok_or(EINVAL)?;
    *off = pos.saturating_add(slash).saturating_add(1);
    let family = resolve_family(family_text).ok_or(EINVAL)?;

    if out.len() < SADATA_OFFSET {
        return Err(ERANGE);
    }
    // sa_family is a byte: the C assignment keeps the low 8 bits.
    let family = family as u8;
    if let Some(b) = out.get_mut(1) {
        *b = family;
    }

    match family {
        AF_LOCAL_BYTE => parse_local(input, off, out, strings),
        AF_INET_BYTE => {
            let (addr, port) = parse_inet(input, off)?;
            let sin = encode_sockaddr_in(addr, port);
            out.get_mut(..SOCKADDR_IN_LEN)
                .ok_or(ERANGE)?
                .copy_from_slice(&sin);
            Ok(ParseOutcome::Parsed(SOCKADDR_IN_LEN))
        }
        AF_INET6_BYTE if dialect.extended() => {
            let (addr, port, scope) = parse_inet6(input, off)?;
            let sin6 = encode_sockaddr_in6(&addr, port, scope);
            out.get_mut(..SOCKADDR_IN6_LEN)
                .ok_or(ERANGE)?
                .copy_from_slice(&sin6);
            Ok(ParseOutcome::Parsed(SOCKADDR_IN6_LEN))
        }
        _ => Err(EINVAL),
    }
}

/// `local/"path"`: `*off` is just past the slash.
fn parse_local(
    input: &[u8],
    off: &mut usize,
    out: &mut [u8],
    strings: &dyn StrCodec,
) -> Result<ParseOutcome, Errno> {
    // Room for the longest path plus one byte, enough to tell "too long".
    let mut scratch = [0u8; SOCK_MAXADDRLEN + 1];
    let mut start = *off;
    let decoded = strings
        .decode(input, &mut start, &mut scratch)
        .map_err(|_| EINVAL)?;
    *off = start;
    let copied = scratch.get(..decoded.len).unwrap_or(&scratch);
    // The C code takes strlen() of the decoded string.
    let path = c_str(copied);
    if path.len() > SOCK_MAXADDRLEN {
        return Err(E2BIG);
    }
    let total = SADATA_OFFSET.saturating_add(path.len());
    let dst = out.get_mut(..total).ok_or(ERANGE)?;
    *off = off.saturating_add(decoded.consumed);
    // sun_len is a byte: 2 + 254 and 2 + 255 wrap to 0 and 1, as in FreeBSD
    // (the caller then sees a 0- or 1-byte result).
    let sun_len = (total & 0xff) as u8;
    if let Some((len_byte, rest)) = dst.split_first_mut() {
        *len_byte = sun_len;
        if let Some(p) = rest.get_mut(1..) {
            p.copy_from_slice(path);
        }
    }
    Ok(ParseOutcome::Parsed(usize::from(sun_len)))
}

/// `A.B.C.D[:PORT]` with FreeBSD's `strtoul` rules; `*off` is just past the
/// slash and ends just past the consumed text.
fn parse_inet(input: &[u8], off: &mut usize) -> Result<([u8; 4], u16), Errno> {
    let mut addr = [0u8; 4];
    let mut port = 0u16;
    let mut p = *off;
    for (i, octet) in addr.iter_mut().enumerate() {
        let r = strtoul10(input.get(p..).unwrap_or(&[]));
        if r.end == 0 || r.value > 0xff {
            return Err(EINVAL);
        }
        p = p.saturating_add(r.end);
        *octet = (r.value & 0xff) as u8;
        if i < 3 {
            if input.get(p) != Some(&b'.') {
                return Err(EINVAL);
            }
            p = p.saturating_add(1);
        } else if input.get(p) == Some(&b':') {
            p = p.saturating_add(1);
            let (value, end) = parse_port(input.get(p..).unwrap_or(&[]))?;
            p = p.saturating_add(end);
            port = value;
        }
    }
    *off = p;
    Ok((addr, port))
}

/// A port with `strtoul` rules: at least one digit, at most 65535.
fn parse_port(s: &[u8]) -> Result<(u16, usize), Errno> {
    let r = strtoul10(s);
    if r.end == 0 {
        return Err(EINVAL);
    }
    let port = u16::try_from(r.value).map_err(|_| EINVAL)?;
    Ok((port, r.end))
}

/// Extension: `[ADDR[%SCOPE]][:PORT]` or `ADDR[%SCOPE]`; `*off` is just past
/// the slash and ends just past the consumed text.
fn parse_inet6(input: &[u8], off: &mut usize) -> Result<([u8; 16], u16, u32), Errno> {
    let mut p = *off;
    let rest = input.get(p..).unwrap_or(&[]);
    p = p.saturating_add(rest.iter().take_while(|&&c| is_space(c)).count());
    let bracketed = input.get(p) == Some(&b'[');
    if bracketed {
        p = p.saturating_add(1);
    }
    let rest = input.get(p..).unwrap_or(&[]);
    let n = ipv6_text_len(rest);
    let addr = parse_ipv6(rest.get(..n).unwrap_or(&[])).ok_or(EINVAL)?;
    p = p.saturating_add(n);
    let mut scope = 0u32;
    if input.get(p) == Some(&b'%') {
        p = p.saturating_add(1);
        let (value, len) = parse_scope(input.get(p..).unwrap_or(&[])).ok_or(EINVAL)?;
        scope = value;
        p = p.saturating_add(len);
    }
    let mut port = 0u16;
    if bracketed {
        if input.get(p) != Some(&b']') {
            return Err(EINVAL);
        }
        p = p.saturating_add(1);
        if input.get(p) == Some(&b':') {
            p = p.saturating_add(1);
            let (value, end) = parse_port(input.get(p..).unwrap_or(&[]))?;
            p = p.saturating_add(end);
            port = value;
        }
    }
    *off = p;
    Ok((addr, port, scope))
}

/// A numeric scope id: one or more decimal digits, at most `u32::MAX`.
fn parse_scope(s: &[u8]) -> Option<(u32, usize)> {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in s.get(..n)? {
        v = v
            .checked_mul(10)?
            .checked_add(u32::from(c.wrapping_sub(b'0')))?;
    }
    Some((v, n))
}

/// Length of the longest prefix of `s` made of characters that can appear in
/// an IPv6 address (hex digits, `:` and `.`).
pub fn ipv6_text_len(s: &[u8]) -> usize {
    s.iter()
        .take_while(|&&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        .count()
}

/// Parses `text`, which must be exactly one textual IPv6 address (RFC 4291,
/// section 2.2: eight groups of 1–4 hex digits, at most one `::` standing for one or
/// more zero groups, optionally ending in a dotted quad with decimal octets
/// without leading zeros).
pub fn parse_ipv6(text: &[u8]) -> Option<[u8; 16]> {
    let mut words = [0u16; 8];
    let mut n: usize = 0;
    let mut gap: Option<usize> = None;
    let mut rest = text;
    if let Some(r) = rest.strip_prefix(b"::") {
        gap = Some(0);
        rest = r;
    }
    while !rest.is_empty() {
        let end = rest.iter().position(|&c| c == b':').unwrap_or(rest.len());
        let (tok, tail) = rest.split_at_checked(end)?;
        if tok.contains(&b'.') {
            // A dotted quad ends the address and fills two groups.
            if !tail.is_empty() {
                return None;
            }
            let [a, b, c, d] = parse_dotted_quad(tok)?;
            *words.get_mut(n)? = u16::from_be_bytes([a, b]);
            n = n.checked_add(1)?;
            *words.get_mut(n)? = u16::from_be_bytes([c, d]);
            n = n.checked_add(1)?;
            break;
        }
        *words.get_mut(n)? = parse_hex_group(tok)?;
        n = n.checked_add(1)?;
        rest = match tail {
            [] => tail,
            [b':', b':', more @ ..] => {
                if gap.is_some() {
                    return None;
                }
                gap = Some(n);
                more
            }
            [b':', more @ ..] if !more.is_empty() => more,
            _ => return None,
        };
    }
    let words = match gap {
        None if n == 8 => words,
        None => return None,
        Some(_) if n >= 8 => return None,
        Some(g) => {
            let mut full = [0u16; 8];
            for (dst, src) in full.iter_mut().zip(words.iter().take(g)) {
                *dst = *src;
            }
            let tail = n.checked_sub(g)?;
            let skip = 8usize.checked_sub(tail)?;
            for (dst, src) in full
                .iter_mut()
                .skip(skip)
                .zip(words.iter().skip(g).take(tail))
            {
                *dst = *src;
            }
            full
        }
    };
    let mut bytes = [0u8; 16];
    for (pair, w) in bytes.chunks_exact_mut(2).zip(words.iter()) {
        pair.copy_from_slice(&w.to_be_bytes());
    }
    Some(bytes)
}

/// One to four hex digits.
fn parse_hex_group(tok: &[u8]) -> Option<u16> {
    if tok.is_empty() || tok.len() > 4 {
        return None;
    }
    tok.iter().try_fold(0u16, |acc, &c| {
        let d = char::from(c).to_digit(16)?;
        Some(acc.wrapping_shl(4) | u16::try_from(d).ok()?)
    })
}

/// Strict dotted quad: four decimal octets ≤ 255, each "0" or without a
/// leading zero.
fn parse_dotted_quad(tok: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = tok.split(|&c| c == b'.');
    for o in out.iter_mut() {
        let part = parts.next()?;
        if part.is_empty()
            || part.len() > 3
            || (part.len() > 1 && part.first() == Some(&b'0'))
            || !part.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let v = part.iter().fold(0u16, |acc, &c| {
            acc.wrapping_mul(10)
                .wrapping_add(u16::from(c.wrapping_sub(b'0')))
        });
        *o = u8::try_from(v).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// Writes `addr` in the RFC 5952 canonical form: lowercase hex without
/// leading zeros, the longest run (first one on ties) of two or more zero
/// groups replaced by `::`, and IPv4-mapped addresses as `::ffff:a.b.c.d`.
pub fn write_ipv6(w: &mut Writer<'_>, addr: &[u8; 16]) -> Result<(), Errno> {
    let mut words = [0u16; 8];
    for (word, pair) in words.iter_mut().zip(addr.chunks_exact(2)) {
        let mut b = [0u8; 2];
        b.copy_from_slice(pair);
        *word = u16::from_be_bytes(b);
    }
    if let [0, 0, 0, 0, 0, 0xffff, hi, lo] = words {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        return write!(w, "::ffff:{a}.{b}.{c}.{d}").map_err(|_| ERANGE);
    }
    // Longest run of zero groups.
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let (mut run_start, mut run_len) = (0usize, 0usize);
    for (i, &word) in words.iter().enumerate() {
        if word == 0 {
            if run_len == 0 {
                run_start = i;
            }
            run_len = run_len.saturating_add(1);
            if run_len > best_len {
                (best_start, best_len) = (run_start, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let gap = (best_len >= 2).then(|| (best_start, best_start.saturating_add(best_len)));
    for (i, &word) in words.iter().enumerate() {
        match gap {
            Some((start, _)) if i == start => w.put(b"::")?,
            Some((start, end)) if i > start && i < end => {}
            _ => {
                let after_gap = gap.is_some_and(|(_, end)| i == end);
                if i != 0 && !after_gap {
                    w.put(b":")?;
                }
                write!(w, "{word:x}").map_err(|_| ERANGE)?;
            }
        }
    }
    Ok(())
}

/// A `sockaddr_in`: length 16, `AF_INET`, `port` (host order, stored in
/// network order), `addr` (network order), `sin_zero` cleared.
pub fn encode_sockaddr_in(addr: [u8; 4], port: u16) -> [u8; SOCKADDR_IN_LEN] {
    let mut sin = [0u8; SOCKADDR_IN_LEN];
    let [p0, p1] = port.to_be_bytes();
    let [a, b, c, d] = addr;
    let head = [SOCKADDR_IN_LEN as u8, AF_INET_BYTE, p0, p1, a, b, c, d];
    for (dst, src) in sin.iter_mut().zip(head) {
        *dst = src;
    }
    sin
}

/// A `sockaddr_in6`: length 28, `AF_INET6`, `port` (host order, stored in
/// network order), flow info 0, `addr`, `scope_id` (host order).
pub fn encode_sockaddr_in6(addr: &[u8; 16], port: u16, scope_id: u32) -> [u8; SOCKADDR_IN6_LEN] {
    let mut sin6 = [0u8; SOCKADDR_IN6_LEN];
    let [p0, p1] = port.to_be_bytes();
    let fields = [SOCKADDR_IN6_LEN as u8, AF_INET6_BYTE, p0, p1, 0, 0, 0, 0]
        .into_iter()
        .chain(addr.iter().copied())
        .chain(scope_id.to_ne_bytes());
    for (dst, src) in sin6.iter_mut().zip(fields) {
        *dst = src;
    }
    sin6
}

/// Formats a binary socket address in the extended dialect; see
/// [`unparse_with`].
pub fn unparse(
    data: &[u8],
    out: &mut [u8],
    strings: &dyn StrCodec,
) -> Result<UnparseOutcome, Errno> {
    unparse_with(data, out, strings, Dialect::Extended)
}

/// Formats the binary socket address at the start of `data` (which may
/// extend beyond it) as NUL-terminated text into `out`.
///
/// The shorthand is chosen by `sa_family` alone. Errors: ERANGE when the text
/// and its NUL do not fit in `out`, EINVAL when `data` is shorter than the
/// family's address, and whatever [`StrCodec::encode`] reports.
pub fn unparse_with(
    data: &[u8],
    out: &mut [u8],
    strings: &dyn StrCodec,
    dialect: Dialect,
) -> Result<UnparseOutcome, Errno> {
    let (Some(&sa_len), Some(&family)) = (data.first(), data.get(1)) else {
        return Err(EINVAL);
    };
    let sa_len = usize::from(sa_len);
    let mut w = Writer::new(out);
    let consumed = match family {
        AF_LOCAL_BYTE => {
            if sa_len < SADATA_OFFSET {
                return Ok(UnparseOutcome::Generic);
            }
            let path = data.get(SADATA_OFFSET..sa_len).ok_or(EINVAL)?;
            w.put(b"local/")?;
            let n = strings.encode(path, w.spare())?;
            w.advance(n)?;
            sa_len
        }
        AF_INET_BYTE => {
            let sin = data
                .get(..SOCKADDR_IN_LEN)
                .and_then(|s| <&[u8; SOCKADDR_IN_LEN]>::try_from(s).ok())
                .ok_or(EINVAL)?;
            let [_, _, p0, p1, a, b, c, d, ..] = *sin;
            let port = u16::from_be_bytes([p0, p1]);
            write!(w, "inet/{a}.{b}.{c}.{d}").map_err(|_| ERANGE)?;
            if port != 0 {
                write!(w, ":{port}").map_err(|_| ERANGE)?;
            }
            SOCKADDR_IN_LEN
        }
        AF_INET6_BYTE if dialect.extended() && sa_len == SOCKADDR_IN6_LEN => {
            let Some(sin6) = data
                .get(..SOCKADDR_IN6_LEN)
                .and_then(|s| <&[u8; SOCKADDR_IN6_LEN]>::try_from(s).ok())
            else {
                return Ok(UnparseOutcome::Generic);
            };
            let [_, _, p0, p1, f0, f1, f2, f3, ref rest @ ..] = *sin6;
            if [f0, f1, f2, f3] != [0; 4] {
                // The flow info has no text form: keep it in the generic one.
                return Ok(UnparseOutcome::Generic);
            }
            let port = u16::from_be_bytes([p0, p1]);
            let mut addr = [0u8; 16];
            let mut scope = [0u8; 4];
            for (dst, src) in addr.iter_mut().chain(scope.iter_mut()).zip(rest) {
                *dst = *src;
            }
            let scope = u32::from_ne_bytes(scope);
            w.put(b"inet6/")?;
            if port != 0 {
                w.put(b"[")?;
            }
            write_ipv6(&mut w, &addr)?;
            if scope != 0 {
                write!(w, "%{scope}").map_err(|_| ERANGE)?;
            }
            if port != 0 {
                write!(w, "]:{port}").map_err(|_| ERANGE)?;
            }
            SOCKADDR_IN6_LEN
        }
        _ => return Ok(UnparseOutcome::Generic),
    };
    let len = w.finish_c()?;
    Ok(UnparseOutcome::Text { len, consumed })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests;
