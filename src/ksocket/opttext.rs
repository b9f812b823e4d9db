//! Typed ASCII form of `struct ng_ksocket_sockopt` (a deliberate
//! improvement; docs/ksocket.md §7.2 describes FreeBSD's raw form).
//!
//! FreeBSD only knows the raw form `{ level=0xffff name=0x4 value=[ 1 ] }`,
//! with numbers for level and name and a byte array whose length is derived
//! from the length of the request *text*. This node accepts, in addition:
//!
//! ```text
//! setopt { level=SOL_SOCKET name=SO_REUSEADDR value=1 }
//! setopt { name=SO_RCVBUF value=65536 }          (level taken from the option)
//! setopt { level=IPPROTO_IP name=IP_TOS value=0x10 }
//! setopt { level=0xffff name=0x1002 value=65536 } (numbers, integer value)
//! getopt { level=SOL_SOCKET name=SO_RCVBUF }
//! getopt { name=TCP_NODELAY }
//! ```
//!
//! Rules:
//! * The typed form is tried only when netgraph's generic struct parser
//!   rejects the text, so every text FreeBSD accepts keeps FreeBSD's
//!   meaning. (The typed form always differs: a symbolic name, or a `value`
//!   that is a plain word where FreeBSD requires `[...]` or a string.)
//! * Fields `level`, `name`, `value`, each at most once, in any order; each
//!   value is one word (no arrays, no strings). Unknown field: ENOENT; twice:
//!   EALREADY; anything else malformed: EINVAL.
//! * `level`: a name of [`crate::pure::sockopt::LEVELS`] or a number
//!   (netgraph `int32` syntax: decimal, `0x` hex, `0` octal, sign).
//! * `name`: an option name of [`crate::pure::sockopt::OPTIONS`] (of the
//!   given level; without `level`, the option's own level) or a number.
//! * `value`: for a known option its kind decides (integer, or boolean
//!   `true/false/on/off/yes/no/number`); for an unknown one, an integer.
//!   Absent means 0 — the same as FreeBSD's raw form, whose omitted value is
//!   all zero bytes.
//! * The binary result is always level, name and a 4-byte host-order `int`
//!   (12 bytes). For `getopt` that is a request with an all-zero value, which
//!   the node answers (see `args::GetoptForm::Extended`) with level and name
//!   echoed.
//!
//! Output: a binary sockopt whose level and name are a known integer or
//! boolean option and whose value is exactly 4 bytes prints as
//! `{ level=SOL_SOCKET name=SO_RCVBUF value=65536 }`; everything else
//! (including FreeBSD-form GETOPT replies, whose level and name are 0) keeps
//! netgraph's generic form.

use core::fmt::Write as _;

use crate::pure::sockopt::{
    self, decode_int, format_value, level_by_name, level_by_value, option_by_name, option_by_value,
    ValueKind, INT_VALUE_LEN, OPTIONS,
};
use crate::pure::{c_str, is_space, Errno, Writer, EINVAL, ERANGE};

/// No such struct field.
const ENOENT: Errno = crate::pure::consts::ENOENT;
/// A field given twice.
const EALREADY: Errno = crate::pure::consts::EALREADY;

/// Length of the binary typed form: level, name, `int` value.
pub const TYPED_LEN: usize = 12;

/// A parsed typed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptText {
    /// Option level.
    pub level: i32,
    /// Option name.
    pub name: i32,
    /// Integer value (0 when absent).
    pub value: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok<'a> {
    LBrace,
    RBrace,
    Other,
    Equals,
    Word(&'a [u8]),
    Eof,
}

/// Netgraph's tokenizer, enough to tell words from everything else: skips
/// whitespace, then a one-character token or a word running up to
/// whitespace, `{ } [ ] =`, `"` or the end.
fn next_token<'a>(s: &'a [u8], pos: &mut usize) -> Tok<'a> {
    while s.get(*pos).is_some_and(|&c| is_space(c)) {
        *pos = pos.saturating_add(1);
    }
    let Some(&c) = s.get(*pos) else {
        return Tok::Eof;
    };
    let single = match c {
        b'{' => Some(Tok::LBrace),
        b'}' => Some(Tok::RBrace),
        b'=' => Some(Tok::Equals),
        b'[' | b']' | b'"' => Some(Tok::Other),
        _ => None,
    };
    if let Some(t) = single {
        *pos = pos.saturating_add(1);
        return t;
    }
    let start = *pos;
    let rest = s.get(start..).unwrap_or(&[]);
    let n = rest
        .iter()
        .take_while(|&&c| !is_space(c) && !matches!(c, b'{' | b'}' | b'[' | b']' | b'=' | b'"'))
        .count();
    *pos = start.saturating_add(n);
    Tok::Word(rest.get(..n).unwrap_or(&[]))
}

fn number(w: &[u8]) -> Result<i32, Errno> {
    sockopt::parse_value(ValueKind::Int, w)
}

fn resolve_level(w: &[u8]) -> Result<i32, Errno> {
    match level_by_name(w) {
        Some(l) => Ok(l.value),
        None => number(w),
    }
}

/// Parses the typed form starting at `s[off]` (leading whitespace allowed).
/// Returns the request and the offset just past the closing `}`.
pub fn parse_typed(s: &[u8], off: usize) -> Result<(OptText, usize), Errno> {
    let s = c_str(s);
    let mut p = off;
    if next_token(s, &mut p) != Tok::LBrace {
        return Err(EINVAL);
    }
    let (mut level_w, mut name_w, mut value_w) = (None, None, None);
    loop {
        let field = match next_token(s, &mut p) {
            Tok::RBrace => break,
            Tok::Word(f) => f,
            _ => return Err(EINVAL),
        };
        let slot = match field {
            b"level" => &mut level_w,
            b"name" => &mut name_w,
            b"value" => &mut value_w,
            _ => return Err(ENOENT),
        };
        if slot.is_some() {
            return Err(EALREADY);
        }
        if next_token(s, &mut p) != Tok::Equals {
            return Err(EINVAL);
        }
        match next_token(s, &mut p) {
            Tok::Word(v) if !v.is_empty() => *slot = Some(v),
            _ => return Err(EINVAL),
        }
    }
    let level = level_w.map(resolve_level).transpose()?;
    let (level, name, kind) = match name_w {
        None => (level.unwrap_or(0), 0, ValueKind::Int),
        Some(w) => {
            let known = match level {
                Some(l) => option_by_name(l, w),
                None => OPTIONS.iter().find(|o| o.name.as_bytes() == w),
            };
            match known {
                Some(o) => (o.level, o.value, o.kind),
                None => {
                    let n = number(w)?;
                    let l = level.unwrap_or(0);
                    (
                        l,
                        n,
                        option_by_value(l, n).map_or(ValueKind::Int, |o| o.kind),
                    )
                }
            }
        }
    };
    let value = match value_w {
        Some(w) => sockopt::parse_value(kind, w)?,
        None => 0,
    };
    Ok((OptText { level, name, value }, p))
}

/// Writes the binary typed form (level, name, value, host order) at the
/// start of `out`; returns [`TYPED_LEN`], or ERANGE when `out` is smaller.
pub fn encode_typed(t: &OptText, out: &mut [u8]) -> Result<usize, Errno> {
    let dst = out.get_mut(..TYPED_LEN).ok_or(ERANGE)?;
    let bytes = t
        .level
        .to_ne_bytes()
        .into_iter()
        .chain(t.name.to_ne_bytes())
        .chain(sockopt::encode_int(t.value));
    for (d, b) in dst.iter_mut().zip(bytes) {
        *d = b;
    }
    Ok(TYPED_LEN)
}

/// The typed text of a binary sockopt (NUL-terminated in `out`), or `None`
/// when it has none: unknown option, or a value that is not exactly an
/// `int`. Returns the text length; ERANGE when `out` is too small.
pub fn format_typed(
    level: i32,
    name: i32,
    value: &[u8],
    out: &mut [u8],
) -> Result<Option<usize>, Errno> {
    if value.len() != INT_VALUE_LEN {
        return Ok(None);
    }
    let (Some(opt), Some(lvl)) = (option_by_value(level, name), level_by_value(level)) else {
        return Ok(None);
    };
    let v = decode_int(value)?;
    let mut num = [0u8; 16];
    let n = format_value(opt.kind, v, &mut num)?;
    let mut w = Writer::new(out);
    write!(w, "{{ level={} name={} value=", lvl.name, opt.name).map_err(|_| ERANGE)?;
    w.put(num.get(..n).unwrap_or(&[]))?;
    w.put(b" }")?;
    w.finish_c().map(Some)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::string::String;

    fn p(s: &str) -> Result<OptText, Errno> {
        parse_typed(s.as_bytes(), 0).map(|(t, _)| t)
    }

    fn t(level: i32, name: i32, value: i32) -> Result<OptText, Errno> {
        Ok(OptText { level, name, value })
    }

    #[test]
    fn symbolic_forms() {
        assert_eq!(
            p("{ level=SOL_SOCKET name=SO_REUSEADDR value=1 }"),
            t(0xffff, 4, 1)
        );
        assert_eq!(
            p("{ level=SOL_SOCKET name=SO_REUSEADDR value=on }"),
            t(0xffff, 4, 1)
        );
        assert_eq!(
            p("{ level=SOL_SOCKET name=SO_REUSEADDR value=7 }"),
            t(0xffff, 4, 1)
        );
        assert_eq!(
            p("{ name=SO_RCVBUF value=65536 }"),
            t(0xffff, 0x1002, 65536)
        );
        assert_eq!(
            p("{ value=0x10 name=IP_TOS level=IPPROTO_IP }"),
            t(0, 3, 16)
        );
        assert_eq!(p("{ name=TCP_NODELAY value=yes }"), t(6, 1, 1));
        assert_eq!(p("{ name=IPV6_V6ONLY value=false }"), t(41, 27, 0));
        assert_eq!(p("{level=SOL_SOCKET name=SO_RCVBUF}"), t(0xffff, 0x1002, 0));
        assert_eq!(p("  {\tname=SO_SNDBUF\nvalue=-1 }"), t(0xffff, 0x1001, -1));
    }

    #[test]
    fn numeric_forms() {
        // Numbers with an integer value: FreeBSD's generic parser rejects
        // `value=65536` (it wants a byte array), the typed one accepts it.
        assert_eq!(
            p("{ level=0xffff name=0x1002 value=65536 }"),
            t(0xffff, 0x1002, 65536)
        );
        // A known option given by number still gets its boolean kind.
        assert_eq!(p("{ level=65535 name=4 value=true }"), t(0xffff, 4, 1));
        // Unknown option: integer value.
        assert_eq!(
            p("{ level=SOL_SOCKET name=0x7777 value=0x100 }"),
            t(0xffff, 0x7777, 256)
        );
        assert_eq!(p("{ level=017 name=1 }"), t(15, 1, 0));
        assert_eq!(p("{}"), t(0, 0, 0));
    }

    #[test]
    fn errors() {
        let e = |s: &str| p(s).unwrap_err();
        assert_eq!(e(""), EINVAL);
        assert_eq!(e("level=1"), EINVAL);
        assert_eq!(e("{ level=1"), EINVAL);
        assert_eq!(e("{ level }"), EINVAL);
        assert_eq!(e("{ level= }"), EINVAL);
        assert_eq!(e("{ level=[ 1 ] }"), EINVAL);
        assert_eq!(e("{ value=\"x\" }"), EINVAL);
        assert_eq!(e("{ bogus=1 }"), ENOENT);
        assert_eq!(e("{ level=1 level=2 }"), EALREADY);
        assert_eq!(e("{ level=SOL_BOGUS }"), EINVAL);
        assert_eq!(e("{ name=SO_BOGUS }"), EINVAL);
        // Option of another level.
        assert_eq!(e("{ level=IPPROTO_TCP name=SO_REUSEADDR }"), EINVAL);
        assert_eq!(e("{ name=SO_RCVBUF value=lots }"), EINVAL);
        assert_eq!(e("{ name=SO_REUSEADDR value=maybe }"), EINVAL);
        assert_eq!(e("{ level=12abc }"), EINVAL);
        // Case-sensitive names.
        assert_eq!(e("{ name=so_rcvbuf }"), EINVAL);
    }

    #[test]
    fn end_offset_and_c_string() {
        let s = b"xx{ name=SO_RCVBUF } trailing";
        let (r, end) = parse_typed(s, 2).unwrap();
        assert_eq!(r.name, 0x1002);
        assert_eq!(&s[end..], b" trailing");
        // The text ends at a NUL.
        assert_eq!(parse_typed(b"{ name=SO_RCVBUF \0}", 0), Err(EINVAL));
    }

    #[test]
    fn encoding() {
        let mut out = [0xffu8; 16];
        let r = OptText {
            level: 0xffff,
            name: 4,
            value: 1,
        };
        assert_eq!(encode_typed(&r, &mut out), Ok(12));
        assert_eq!(&out[..4], &0xffffi32.to_ne_bytes());
        assert_eq!(&out[4..8], &4i32.to_ne_bytes());
        assert_eq!(&out[8..12], &1i32.to_ne_bytes());
        assert_eq!(&out[12..], &[0xff; 4]);
        assert_eq!(encode_typed(&r, &mut [0; 11]), Err(ERANGE));
    }

    fn f(level: i32, name: i32, value: &[u8]) -> Option<String> {
        let mut out = [0u8; 128];
        format_typed(level, name, value, &mut out)
            .unwrap()
            .map(|n| String::from_utf8(out[..n].to_vec()).unwrap())
    }

    #[test]
    fn formatting() {
        assert_eq!(
            f(0xffff, 0x1002, &65536i32.to_ne_bytes()).as_deref(),
            Some("{ level=SOL_SOCKET name=SO_RCVBUF value=65536 }")
        );
        assert_eq!(
            f(0xffff, 4, &4i32.to_ne_bytes()).as_deref(),
            Some("{ level=SOL_SOCKET name=SO_REUSEADDR value=1 }")
        );
        assert_eq!(
            f(0, 3, &0x10i32.to_ne_bytes()).as_deref(),
            Some("{ level=IPPROTO_IP name=IP_TOS value=16 }")
        );
        // FreeBSD-form reply (level/name zero), odd lengths, unknown options.
        assert_eq!(f(0, 0, &1i32.to_ne_bytes()), None);
        assert_eq!(f(0xffff, 0x1002, &[0; 8]), None);
        assert_eq!(f(0xffff, 0x1002, &[]), None);
        assert_eq!(f(0xffff, 0x7777, &[0; 4]), None);
        // Too small a buffer.
        let mut small = [0u8; 10];
        assert_eq!(
            format_typed(0xffff, 4, &[1, 0, 0, 0], &mut small),
            Err(ERANGE)
        );
    }

    fn norm(kind: ValueKind, v: i32) -> i32 {
        match kind {
            ValueKind::Int => v,
            ValueKind::Bool => i32::from(v != 0),
        }
    }

    fn encoded(t: &OptText) -> [u8; TYPED_LEN] {
        let mut b = [0u8; TYPED_LEN];
        assert_eq!(encode_typed(t, &mut b), Ok(TYPED_LEN));
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every known option and every value: binary → text → binary is
        /// the identity (booleans normalised to 0/1, as the kernel reads
        /// any non-zero int as "on").
        #[test]
        fn typed_roundtrip_every_option(i in 0..OPTIONS.len(), v in any::<i32>()) {
            let o = &OPTIONS[i];
            let text = f(o.level, o.value, &v.to_ne_bytes()).unwrap();
            let (back, end) = parse_typed(text.as_bytes(), 0).unwrap();
            prop_assert_eq!(end, text.len());
            let want = OptText { level: o.level, name: o.value, value: norm(o.kind, v) };
            prop_assert_eq!(back, want);
            // And through the binary form: encode → format → parse → encode.
            let bin = encoded(&back);
            let text2 = f(
                i32::from_ne_bytes(bin[0..4].try_into().unwrap()),
                i32::from_ne_bytes(bin[4..8].try_into().unwrap()),
                &bin[8..12],
            )
            .unwrap();
            prop_assert_eq!(&text2, &text);
        }

        /// Symbolic and numeric spellings of the same option agree, with
        /// any integer spelling of the value.
        #[test]
        fn numeric_and_symbolic_spellings_agree(
            i in 0..OPTIONS.len(),
            v in any::<i32>(),
            radix in 0..3u8,
        ) {
            let o = &OPTIONS[i];
            let lvl = crate::pure::sockopt::level_by_value(o.level).unwrap();
            let vtext = match radix {
                0 => std::format!("{v}"),
                1 => std::format!("{:#x}", v as u32),
                _ => std::format!("0{:o}", v as u32),
            };
            let sym = std::format!("{{ level={} name={} value={vtext} }}", lvl.name, o.name);
            let num = std::format!("{{ name={:#x} value={vtext} level={} }}", o.value, o.level);
            let short = std::format!("{{name={} value={vtext}}}", o.name);
            let want = t(o.level, o.value, norm(o.kind, v));
            prop_assert_eq!(p(&sym), want);
            prop_assert_eq!(p(&num), want);
            // Without a level the option's own level is used (the first
            // option of that name in the table).
            if OPTIONS.iter().position(|x| x.name == o.name) == Some(i) {
                prop_assert_eq!(p(&short), want);
            }
        }

        /// No input, however malformed, panics; a success stays in bounds.
        #[test]
        fn parse_typed_never_panics(
            input in prop::collection::vec(any::<u8>(), 0..64),
            off in 0usize..70,
        ) {
            if let Ok((_, end)) = parse_typed(&input, off) {
                prop_assert!(end <= input.len());
                prop_assert!(end > off);
            }
        }

        #[test]
        fn parse_typed_near_misses_never_panic(
            body in r#"[{} =\[\]\\"a-zA-Z_0-9xX+\-]{0,60}"#,
            off in 0usize..4,
        ) {
            let text = std::format!("{{{body}");
            if let Ok((r, end)) = parse_typed(text.as_bytes(), off) {
                prop_assert!(end <= text.len());
                let mut out = [0u8; TYPED_LEN];
                prop_assert_eq!(encode_typed(&r, &mut out), Ok(TYPED_LEN));
            }
        }

        #[test]
        fn format_typed_never_panics(
            level in prop_oneof![Just(0xffffi32), Just(0), Just(6), Just(17), Just(41), any::<i32>()],
            name in prop_oneof![0i32..0x20, 0x1000i32..0x1010, any::<i32>()],
            value in prop::collection::vec(any::<u8>(), 0..9),
            size in 0usize..80,
        ) {
            let mut out = std::vec![0u8; size];
            if let Ok(Some(n)) = format_typed(level, name, &value, &mut out) {
                prop_assert!(n < size);
                prop_assert_eq!(out[n], 0);
                // Whatever is printed parses back to the same option.
                let (r, _) = parse_typed(&out[..n], 0).unwrap();
                prop_assert_eq!((r.level, r.name), (level, name));
            }
        }
    }

    #[test]
    fn round_trip() {
        for o in OPTIONS.iter() {
            for v in [0i32, 1, 2, 255, 65536, -1] {
                let text = f(o.level, o.value, &v.to_ne_bytes()).unwrap();
                let back = p(&text).unwrap();
                let want = match o.kind {
                    ValueKind::Int => v,
                    ValueKind::Bool => i32::from(v != 0),
                };
                assert_eq!(
                    back,
                    OptText {
                        level: o.level,
                        name: o.value,
                        value: want
                    },
                    "{text}"
                );
            }
        }
    }
}
