//! Netgraph addresses (`[NODE:][PATH]`) as the netgraph core splits them.
//!
//! The core resolves the node part `.` to the starting node it is given.
//! FreeBSD's core does so without checking that there is one, so an address
//! naming "this node" must never reach it from a place that has no node (a
//! data socket's `connect`): [`names_here`] recognises every such address.

/// Longest address the core looks at (`NG_PATHSIZ` less its NUL): it copies
/// at most this many bytes and ignores the rest.
pub const PATH_MAX: usize = super::consts::NG_PATHSIZ - 1;

/// True if the address `path` (up to its first NUL, at most [`PATH_MAX`]
/// bytes) has the node part `.`, which means "the starting node": `.:`,
/// `.:hook`, `.:a.b`, `.:.` and the like.
///
/// Addresses without a node part (`hook`, `.`, the empty address) are
/// relative to the starting node too, but the core itself rejects those
/// when it has none; only the explicit `.` node part is looked up there.
pub fn names_here(path: &[u8]) -> bool {
    let path = super::c_str(path);
    let path = path.get(..PATH_MAX).unwrap_or(path);
    match path.iter().position(|&c| c == b':') {
        Some(colon) => path.get(..colon) == Some(&b"."[..]),
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn every_spelling_of_here() {
        for p in [
            &b".:"[..],
            b".:hook",
            b".:a.b",
            b".:.",
            b".:hook.",
            b".:\0junk",
            b".:x\0",
            b".::",
        ] {
            assert!(
                names_here(p),
                "{:?}",
                std::string::String::from_utf8_lossy(p)
            );
        }
    }

    #[test]
    fn other_addresses() {
        for p in [
            &b""[..],
            b".",
            b"hook",
            b"a.b",
            b"name:",
            b"name:hook",
            b"[1f]:",
            b"..:",
            b". :",
            b" .:",
            b":",
            b"\0.:",
            b"x.:",
        ] {
            assert!(
                !names_here(p),
                "{:?}",
                std::string::String::from_utf8_lossy(p)
            );
        }
    }

    #[test]
    fn only_the_first_path_max_bytes_count() {
        // The core truncates: a colon beyond the limit is not seen.
        let mut p = std::vec![b'.'];
        p.resize(PATH_MAX, b'x');
        p.extend_from_slice(b":");
        assert!(!names_here(&p));
        let mut q = std::vec![b'.', b':'];
        q.resize(PATH_MAX + 10, b'x');
        assert!(names_here(&q));
    }
}
