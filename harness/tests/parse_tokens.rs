//! Tokenizer, quoted-string scanner (escapes and the length quirk) and encoder
//! (docs/netgraph-model.md §7.3).

use ngharness::netgraph::parse as p;
use p::{T_EOF, T_EQUALS, T_ERROR, T_LBRACE, T_LBRACKET, T_RBRACE, T_RBRACKET, T_STRING, T_WORD};

fn tokens(s: &str) -> Vec<(u32, i32, i32)> {
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        let (t, len) = p::get_token(s.as_bytes(), &mut off);
        out.push((t, off, len));
        if t == T_EOF || t == T_ERROR {
            return out;
        }
        off += len;
    }
}

fn string_token(s: &str) -> Option<(Vec<u8>, i32)> {
    let mut off = 0;
    p::get_string_token(s.as_bytes(), &mut off)
}

#[test]
fn token_kinds_and_positions() {
    let s = " {\t}[ ]\n= \"s t\" word\x0b\r\x0c";
    assert_eq!(
        tokens(s),
        vec![
            (T_LBRACE, 1, 1),
            (T_RBRACE, 3, 1),
            (T_LBRACKET, 4, 1),
            (T_RBRACKET, 6, 1),
            (T_EQUALS, 8, 1),
            (T_STRING, 10, 5),
            (T_WORD, 16, 4),
            (T_EOF, 23, 0),
        ]
    );
    // Words end at NUL, whitespace, { } [ ] = and ".
    assert_eq!(tokens("ab=cd{x}y[z]w\"q\"")[0], (T_WORD, 0, 2));
    assert_eq!(
        tokens("ab=cd{x}y[z]w\"q\"")
            .iter()
            .map(|t| t.0)
            .collect::<Vec<_>>(),
        vec![
            T_WORD, T_EQUALS, T_WORD, T_LBRACE, T_WORD, T_RBRACE, T_WORD, T_LBRACKET, T_WORD,
            T_RBRACKET, T_WORD, T_STRING, T_EOF
        ]
    );
    assert_eq!(tokens("")[0], (T_EOF, 0, 0));
    assert_eq!(tokens("   ")[0], (T_EOF, 3, 0));
    // A quote without a closing quote.
    assert_eq!(tokens("  \"abc")[0].0, T_ERROR);
    assert_eq!(tokens("  \"abc")[0].1, 2);
    // Bytes >= 0x80 are word characters, not spaces.
    assert_eq!(tokens("\u{e9}x")[0], (T_WORD, 0, 3));
}

#[test]
fn string_escapes() {
    let cases: &[(&str, &[u8], i32)] = &[
        // (token text, decoded bytes, reported length)
        ("\"\"", b"", 2),
        ("\"abc\"", b"abc", 5),
        ("\"\\t\\n\\r\\v\\f\\\"\"", b"\t\n\r\x0b\x0c\"", 14),
        ("\"\\101\"", b"A", 6),
        ("\"\\0\"", b"\0", 4),
        // Octal: every following octal digit, truncated to 8 bits; counted correctly.
        ("\"\\1234\"", &[0x9c], 7),
        ("\"\\0101\"", b"A", 7),
        ("\"\\18\"", b"\x018", 5),
        // Hex: every following hex digit, truncated; one short per escape.
        ("\"\\x41\"", b"A", 5),
        ("\"\\x414243\"", &[0x43], 9),
        ("\"\\x\"", b"\0", 3),
        ("\"\\xg\"", b"\0g", 4),
        ("\"\\X41\"", b"X41", 5),
        // Other escaped characters stand for themselves; one short per escape.
        ("\"a\\\\b\"", b"a\\b", 5),
        ("\"\\e\\a\\'\"", b"ea'", 5),
        ("\"\\\\\\\\\"", b"\\\\", 4),
        // Mixed.
        ("\"\\t\\x41\\\\\"", b"\tA\\", 8),
    ];
    for (text, bytes, len) in cases {
        let (got, got_len) = string_token(text).unwrap_or_else(|| panic!("no string in {text:?}"));
        assert_eq!((got.as_slice(), got_len), (*bytes, *len), "token {text:?}");
    }
}

#[test]
fn string_token_failures_and_whitespace() {
    assert_eq!(string_token("abc"), None);
    assert_eq!(string_token("\"abc"), None);
    // A backslash just before the end of the input is literal; still unterminated.
    assert_eq!(string_token("\"abc\\"), None);
    // An escaped quote does not terminate.
    assert_eq!(string_token("\"abc\\\""), None);
    let mut off = 0;
    assert_eq!(
        p::get_string_token(b" \t \"x\" rest", &mut off),
        Some((b"x".to_vec(), 3))
    );
    assert_eq!(off, 3);
    // The token ends at the first unescaped quote.
    assert_eq!(string_token("\"a\"b\""), Some((b"a".to_vec(), 3)));
}

#[test]
fn quirk_restarts_scanner_inside_values() {
    // The reported length of "a\\b" is one short, so a tokenizer walking past it
    // lands on the closing quote and starts a bogus string there.
    let s = "\"a\\\\b\" }";
    let (t, len) = p::get_token(s.as_bytes(), &mut 0);
    assert_eq!((t, len), (T_STRING, 5));
    let mut off = len;
    assert_eq!(p::get_token(s.as_bytes(), &mut off).0, T_ERROR);
    assert_eq!(off, 5);
}

#[test]
fn encoder() {
    assert_eq!(p::encode_string(b""), "\"\"");
    assert_eq!(p::encode_string(b"plain text ~!"), "\"plain text ~!\"");
    assert_eq!(p::encode_string(b"\t\x0c\n\r\x0b"), "\"\\t\\f\\n\\r\\v\"");
    assert_eq!(p::encode_string(b"\"\\"), "\"\\\"\\\\\"");
    assert_eq!(
        p::encode_string(&[0, 1, 0x1f, 0x7f, 0x80, 0xff, 0x07]),
        "\"\\x00\\x01\\x1f\\x7f\\x80\\xff\\x07\""
    );
    // The encoder's escapes decode back, except \x.. followed by a hex digit.
    for raw in [&b"a\tb\"c\\d\x01z"[..], b"\n\r\x0b\x0c", b"x\x7fq"] {
        let enc = p::encode_string(raw);
        let (dec, len) = string_token(&enc).unwrap();
        assert_eq!(dec, raw);
        let hex_escapes = enc.matches("\\x").count() as i32;
        let other = enc.matches("\\\\").count() as i32;
        assert_eq!(len, enc.len() as i32 - hex_escapes - other, "{enc}");
    }
}
