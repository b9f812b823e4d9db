//! Addresses: `ng_path_parse` and `ng_path2noderef` (docs/netgraph-model.md §5.6).

use std::ffi::c_int;

use fbsd_sys::{hook_p, node_p};

use super::{
    hook, name2noderef, node_ref, unref_node, EINVAL, ENOENT, ENXIO, HK_INVALID, NGF_INVALID,
};

/// Maximum address length (NG_PATHSIZ, including the NUL).
pub const NG_PATHSIZ: usize = 512;

/// Result of [`path_parse`]: offsets into the (modified) buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParsedPath {
    /// Start of the NODE part (terminated by a NUL written over the `:`).
    pub node: Option<usize>,
    /// Start of the PATH part (hook names separated by dots).
    pub path: Option<usize>,
    /// Start of the single hook name when PATH has no dot.
    pub hook: Option<usize>,
}

fn strlen(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(b.len() - from)
}

/// `ng_path_parse` on a NUL-terminated buffer, modified in place as FreeBSD
/// does. `None` for a malformed address.
pub fn path_parse(b: &mut [u8]) -> Option<ParsedPath> {
    let mut p = 0;
    while p < b.len() && b[p] != 0 && b[p] != b':' {
        p += 1;
    }
    let (node, mut path) = if p < b.len() && b[p] == b':' {
        b[p] = 0;
        if b[0] == 0 {
            return None;
        }
        let name = &b[..p];
        if name != b"." && name.contains(&b'.') {
            return None;
        }
        (Some(0), p + 1)
    } else {
        (None, 0)
    };
    let plen = strlen(b, path);
    let seg = &b[path..path + plen];
    if seg.contains(&b':') {
        return None;
    }
    if seg.windows(2).any(|w| w == b"..") {
        return None;
    }
    if plen > 0 && b[path] == b'.' {
        path += 1;
    }
    let plen = strlen(b, path);
    if plen > 0 && b[path + plen - 1] == b'.' {
        b[path + plen - 1] = 0;
    }
    let plen = strlen(b, path);
    if plen > 0 {
        let hook = if b[path..path + plen].contains(&b'.') {
            None
        } else {
            Some(path)
        };
        Some(ParsedPath {
            node,
            path: Some(path),
            hook,
        })
    } else {
        Some(ParsedPath {
            node,
            path: None,
            hook: None,
        })
    }
}

/// `ng_path2noderef`: resolves `address` relative to `here`. On success the
/// node is referenced, and so is the last hook (the *peer* hook of the last
/// hop, i.e. the destination's arrival hook) when the path contains hooks.
///
/// # Safety
/// `here` is NULL or a live node.
pub unsafe fn path2noderef(here: node_p, address: &[u8]) -> Result<(node_p, hook_p), c_int> {
    let mut full = [0u8; NG_PATHSIZ];
    let n = address
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(address.len())
        .min(NG_PATHSIZ - 1);
    full[..n].copy_from_slice(&address[..n]);
    let Some(pp) = path_parse(&mut full) else {
        return Err(EINVAL);
    };
    let mut node = match pp.node {
        Some(s) => {
            let l = strlen(&full, s);
            // SAFETY: `here` is NULL or live (name2noderef reports "." with NULL).
            let nd = unsafe { name2noderef(here, &full[s..s + l]) };
            if nd.is_null() {
                return Err(ENOENT);
            }
            nd
        }
        None => {
            if here.is_null() {
                return Err(EINVAL);
            }
            node_ref(here);
            here
        }
    };
    let Some(mut pos) = pp.path else {
        return Ok((node, std::ptr::null_mut()));
    };
    loop {
        let start = pos;
        while full[pos] != 0 && full[pos] != b'.' {
            pos += 1;
        }
        let at_end = full[pos] == 0;
        full[pos] = 0;
        if !at_end {
            pos += 1;
        }
        // SAFETY: `node` is live and referenced; the segment is NUL-terminated.
        unsafe {
            let h = hook::findhook(node, full[start..].as_ptr().cast());
            if h.is_null()
                || (*h).hk_flags & HK_INVALID != 0
                || (*(*h).hk_peer).hk_flags & HK_INVALID != 0
            {
                unref_node(node);
                return Err(ENOENT);
            }
            let old = node;
            node = (*(*h).hk_peer).hk_node;
            node_ref(node);
            unref_node(old);
            if (*node).nd_flags & NGF_INVALID != 0 {
                unref_node(node);
                return Err(ENXIO);
            }
            if at_end || full[pos] == 0 {
                let last = (*h).hk_peer;
                super::hook_ref(last);
                return Ok((node, last));
            }
        }
    }
}
