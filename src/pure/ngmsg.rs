//! Whether netgraph's core can convert a binary generic message to text
//! without reading outside it.
//!
//! `NGM_BINARY2ASCII` asks the core to print a binary message that the
//! sender supplies. For netgraph's own (generic) commands the core's parse
//! types trust the message: a fixed-size string field with no NUL is read
//! on to the next NUL, past the field and possibly past the message, and a
//! list is read for as many entries as its count says. From a control
//! socket that prints kernel memory. ng_socket refuses such a request
//! before the core sees it (see ng_socket.4, DEVIATIONS); [`printable`]
//! is the test.
//!
//! Only the layouts of the generic commands are known here; the node
//! types' own messages are converted by their own parse types (ksocket's
//! check their lengths themselves).

use super::consts::{
    NGF_RESP, NGM_ASCII2BINARY, NGM_BINARY2ASCII, NGM_CONNECT, NGM_GENERIC_COOKIE, NGM_LISTHOOKS,
    NGM_LISTNAMES, NGM_LISTNODES, NGM_LISTTYPES, NGM_MKPEER, NGM_NAME, NGM_NODEINFO, NGM_RMHOOK,
    NGM_TEXT_CONFIG, NGM_TEXT_STATUS, NG_CMDSTRSIZ, NG_HOOKSIZ, NG_NODESIZ, NG_PATHSIZ, NG_TYPESIZ,
};

/// Size of `struct ng_mesg`'s header.
const HDR: usize = 56;
/// Offset of `cmdstr` in the header.
const CMDSTR_AT: usize = 24;
/// `struct nodeinfo`: name, type, id, hooks.
const NODEINFO: usize = NG_NODESIZ + NG_TYPESIZ + 8;
/// `struct linkinfo`: ourhook, peerhook, nodeinfo.
const LINKINFO: usize = 2 * NG_HOOKSIZ + NODEINFO;
/// `struct typeinfo`: type name, node count.
const TYPEINFO: usize = NG_TYPESIZ + 4;

/// The header fields of a message that [`printable`] reads.
struct Header {
    arglen: usize,
    cmd: u32,
    flags: u32,
    cookie: u32,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([
        *w.first()?,
        *w.get(1)?,
        *w.get(2)?,
        *w.get(3)?,
    ]))
}

fn header(b: &[u8]) -> Option<Header> {
    Some(Header {
        arglen: usize::try_from(u32_at(b, 4)?).ok()?,
        cmd: u32_at(b, 8)?,
        flags: u32_at(b, 12)?,
        cookie: u32_at(b, 20)?,
    })
}

/// Is there a `size`-byte field at `at` with a NUL inside it?
fn cstr_field(d: &[u8], at: usize, size: usize) -> bool {
    at.checked_add(size)
        .and_then(|end| d.get(at..end))
        .is_some_and(|f| f.contains(&0))
}

/// Fixed string fields of the given sizes, one after the other from `at`.
fn fields(d: &[u8], at: usize, sizes: &[usize]) -> bool {
    let mut at = at;
    for &size in sizes {
        if !cstr_field(d, at, size) {
            return false;
        }
        at = match at.checked_add(size) {
            Some(a) => a,
            None => return false,
        };
    }
    true
}

fn nodeinfo(d: &[u8], at: usize) -> bool {
    fields(d, at, &[NG_NODESIZ, NG_TYPESIZ])
        && at.checked_add(NODEINFO).is_some_and(|end| end <= d.len())
}

/// A list of `count` entries of `size` bytes from `at`, each checked by `ok`.
fn list(d: &[u8], at: usize, count: u32, size: usize, ok: impl Fn(&[u8], usize) -> bool) -> bool {
    let Ok(count) = usize::try_from(count) else {
        return false;
    };
    let Some(end) = count.checked_mul(size).and_then(|n| n.checked_add(at)) else {
        return false;
    };
    if end > d.len() {
        return false;
    }
    (0..count).all(|i| {
        i.checked_mul(size)
            .and_then(|o| o.checked_add(at))
            .is_some_and(|o| ok(d, o))
    })
}

/// Can the core convert the message `m` (a header and its arguments) to
/// text without reading past a field or past the message? Messages of
/// other cookies, and generic ones the core prints nothing of, are `true`.
fn generic_ok(m: &[u8]) -> bool {
    let Some(h) = header(m) else {
        return false;
    };
    let Some(d) = HDR.checked_add(h.arglen).and_then(|end| m.get(HDR..end)) else {
        return false;
    };
    if h.cookie != NGM_GENERIC_COOKIE {
        return true;
    }
    let resp = h.flags & NGF_RESP != 0;
    match (h.cmd, resp) {
        (NGM_MKPEER, false) => fields(d, 0, &[NG_TYPESIZ, NG_HOOKSIZ, NG_HOOKSIZ]),
        (NGM_CONNECT, false) => fields(d, 0, &[NG_PATHSIZ, NG_HOOKSIZ, NG_HOOKSIZ]),
        (NGM_NAME, false) => fields(d, 0, &[NG_NODESIZ]),
        (NGM_RMHOOK, false) => fields(d, 0, &[NG_HOOKSIZ]),
        (NGM_NODEINFO, true) => nodeinfo(d, 0),
        (NGM_LISTHOOKS, true) => {
            nodeinfo(d, 0)
                && u32_at(d, NODEINFO - 4).is_some_and(|n| {
                    list(d, NODEINFO, n, LINKINFO, |d, at| {
                        fields(d, at, &[NG_HOOKSIZ, NG_HOOKSIZ])
                            && at
                                .checked_add(2 * NG_HOOKSIZ)
                                .is_some_and(|n| nodeinfo(d, n))
                    })
                })
        }
        (NGM_LISTNAMES | NGM_LISTNODES, true) => {
            u32_at(d, 0).is_some_and(|n| list(d, 4, n, NODEINFO, nodeinfo))
        }
        (NGM_LISTTYPES, true) => u32_at(d, 0)
            .is_some_and(|n| list(d, 4, n, TYPEINFO, |d, at| fields(d, at, &[NG_TYPESIZ]))),
        (NGM_TEXT_STATUS | NGM_TEXT_CONFIG, true) => d.contains(&0),
        (NGM_BINARY2ASCII | NGM_ASCII2BINARY, _) => {
            // A whole message inside: its header's command name is a
            // string, its arguments a byte array of its arglen (printed as
            // bytes, whatever they hold).
            cstr_field(d, CMDSTR_AT, NG_CMDSTRSIZ)
                && header(d)
                    .is_some_and(|h| HDR.checked_add(h.arglen).is_some_and(|end| end <= d.len()))
        }
        _ => true,
    }
}

/// May a control socket send `NGM_BINARY2ASCII` with these arguments (the
/// binary message to convert)? `false`: the core would read outside the
/// message or past one of its string fields; ng_socket answers EINVAL.
pub fn printable(arguments: &[u8]) -> bool {
    generic_ok(arguments)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn msg(cookie: u32, cmd: u32, flags: u32, args: &[u8]) -> Vec<u8> {
        let mut m = std::vec![0u8; HDR];
        m[4..8].copy_from_slice(&(args.len() as u32).to_ne_bytes());
        m[8..12].copy_from_slice(&cmd.to_ne_bytes());
        m[12..16].copy_from_slice(&flags.to_ne_bytes());
        m[20..24].copy_from_slice(&cookie.to_ne_bytes());
        m[24..27].copy_from_slice(b"cmd");
        m.extend_from_slice(args);
        m
    }

    fn field(s: &[u8], size: usize) -> Vec<u8> {
        let mut f = s.to_vec();
        f.resize(size, 0);
        f
    }

    fn ni(name: &[u8], ty: &[u8], hooks: u32) -> Vec<u8> {
        let mut v = field(name, 32);
        v.extend(field(ty, 32));
        v.extend(7u32.to_ne_bytes());
        v.extend(hooks.to_ne_bytes());
        v
    }

    const G: u32 = NGM_GENERIC_COOKIE;

    #[test]
    fn well_formed_requests_and_replies_pass() {
        let mut mk = field(b"echo", 32);
        mk.extend(field(b"a", 32));
        mk.extend(field(b"b", 32));
        assert!(printable(&msg(G, NGM_MKPEER, 0, &mk)));
        let mut c = field(b"x:", 512);
        c.extend(field(b"a", 32));
        c.extend(field(b"b", 32));
        assert!(printable(&msg(G, NGM_CONNECT, 0, &c)));
        assert!(printable(&msg(G, NGM_NAME, 0, &field(b"n", 32))));
        assert!(printable(&msg(G, NGM_RMHOOK, 0, &field(b"h", 32))));
        assert!(printable(&msg(
            G,
            NGM_NODEINFO,
            NGF_RESP,
            &ni(b"n", b"echo", 0)
        )));
        let mut hl = ni(b"n", b"echo", 1);
        hl.extend(field(b"a", 32));
        hl.extend(field(b"b", 32));
        hl.extend(ni(b"", b"hole", 1));
        assert!(printable(&msg(G, NGM_LISTHOOKS, NGF_RESP, &hl)));
        let mut nl = 2u32.to_ne_bytes().to_vec();
        nl.extend(ni(b"a", b"echo", 0));
        nl.extend(ni(b"b", b"hole", 0));
        assert!(printable(&msg(G, NGM_LISTNODES, NGF_RESP, &nl)));
        let mut tl = 1u32.to_ne_bytes().to_vec();
        tl.extend(field(b"echo", 32));
        tl.extend(3u32.to_ne_bytes());
        assert!(printable(&msg(G, NGM_LISTTYPES, NGF_RESP, &tl)));
        assert!(printable(&msg(G, NGM_TEXT_STATUS, NGF_RESP, b"ok\0")));
        // Nothing to print, other cookies: nothing to check here.
        assert!(printable(&msg(G, NGM_NODEINFO, 0, &[])));
        assert!(printable(&msg(G, NGM_MKPEER, NGF_RESP, &[1; 7])));
        assert!(printable(&msg(0x1234, 1, 0, &[1; 100])));
        let inner = msg(G, NGM_NAME, 0, &field(b"n", 32));
        assert!(printable(&msg(G, NGM_BINARY2ASCII, 0, &inner)));
    }

    #[test]
    fn strings_without_nul_and_short_messages_fail() {
        assert!(!printable(&msg(G, NGM_NAME, 0, &[b'a'; 32])));
        assert!(
            !printable(&msg(G, NGM_NAME, 0, b"a\0")),
            "shorter than the struct"
        );
        let mut mk = field(b"echo", 32);
        mk.extend([b'h'; 32]);
        mk.extend(field(b"b", 32));
        assert!(!printable(&msg(G, NGM_MKPEER, 0, &mk)));
        assert!(!printable(&msg(G, NGM_CONNECT, 0, &[b'p'; 576])));
        let mut n = ni(b"n", b"echo", 0);
        n[32..64].fill(b't');
        assert!(!printable(&msg(G, NGM_NODEINFO, NGF_RESP, &n)));
        // A count beyond the entries present.
        let mut nl = 3u32.to_ne_bytes().to_vec();
        nl.extend(ni(b"a", b"echo", 0));
        assert!(!printable(&msg(G, NGM_LISTNAMES, NGF_RESP, &nl)));
        let hl = ni(b"n", b"echo", 0x4000_0000);
        assert!(!printable(&msg(G, NGM_LISTHOOKS, NGF_RESP, &hl)));
        let tl = u32::MAX.to_ne_bytes().to_vec();
        assert!(!printable(&msg(G, NGM_LISTTYPES, NGF_RESP, &tl)));
        assert!(!printable(&msg(G, NGM_TEXT_CONFIG, NGF_RESP, b"no nul")));
        // The inner message: arglen past the end, command name without NUL.
        let mut inner = msg(0x1234, 1, 0, &[0; 8]);
        inner[4..8].copy_from_slice(&9u32.to_ne_bytes());
        assert!(!printable(&msg(G, NGM_BINARY2ASCII, 0, &inner)));
        let mut inner = msg(0x1234, 1, 0, &[0; 8]);
        inner[24..56].fill(b'c');
        assert!(!printable(&msg(G, NGM_BINARY2ASCII, 0, &inner)));
        // The inner message's own arguments are printed as bytes: a name
        // without NUL in them is fine.
        let inner = msg(G, NGM_NAME, 0, &[b'a'; 32]);
        assert!(printable(&msg(G, NGM_BINARY2ASCII, 0, &inner)));
        // A header cut short.
        assert!(!printable(&[0; 20]));
    }
}
