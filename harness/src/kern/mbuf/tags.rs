//! mbuf_tags(9): allocation, lists on the packet header, copy and delete.

use super::*;

pub(super) fn call_tag_free(t: *mut m_tag, c: Caller) {
    // SAFETY: `t` is a tag the caller just unlinked; its hook is read as FreeBSD does.
    match unsafe { (*t).m_tag_free } {
        // SAFETY: the hook is the tag's destructor (module or harness code).
        Some(f) => unsafe { f(t) },
        None => kernel_panic(&format!(
            "m_tag_free: tag {t:p} has a NULL m_tag_free hook (from {c}; page fault)"
        )),
    }
}

/// `m_tag_unlink(m, t)` (SLIST_REMOVE).
/// Safety: `m` must be a live packet-header mbuf.
pub(super) unsafe fn tag_unlink(m: *mut mbuf, t: *mut m_tag, c: Caller) {
    let first = tags_first(m);
    if first == t {
        set_tags_first(m, tag_next(t));
        return;
    }
    let mut cur = first;
    let mut guard = 0;
    while !cur.is_null() && tag_next(cur) != t {
        cur = tag_next(cur);
        guard += 1;
        if guard > TAG_WALK_LIMIT {
            break;
        }
    }
    if cur.is_null() || guard > TAG_WALK_LIMIT {
        kernel_panic(&format!(
            "m_tag_unlink: tag {t:p} is not on the tag list of mbuf {m:p} (from {c}; SLIST_REMOVE \
             walks off the list: page fault)"
        ));
    }
    set_tag_next(cur, tag_next(t));
}

/// `m_tag_delete(m, t)`.
pub(super) fn tag_delete(m: *mut mbuf, t: *mut m_tag, c: Caller) {
    if m.is_null() || t.is_null() {
        kernel_panic(&format!(
            "m_tag_delete: null argument, m {m:p} t {t:p} (from {c})"
        ));
    }
    if !check_live(m, "m_tag_delete", c, Use::Access) {
        return;
    }
    // SAFETY: `m` is a live mbuf.
    unsafe { tag_unlink(m, t, c) };
    call_tag_free(t, c);
}

/// FreeBSD follows a tag list without checking it: an entry that is not an
/// allocation (a plain mbuf's data bytes read as a packet header) faults.
fn not_a_tag_panics(m: *mut mbuf, t: *mut m_tag, c: Caller) {
    if !malloc::is_live(t.cast()) {
        kernel_panic(&format!(
            "m_tag_delete_chain from {c}: mbuf {m:p}'s tag list holds {t:p}, which is not a tag (M_PKTHDR on a plain mbuf?) (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
}

/// `m_tag_delete_chain(m, t)`.
pub(super) fn tag_delete_chain(m: *mut mbuf, t: *mut m_tag, c: Caller) {
    if m.is_null() {
        kernel_panic(&format!("m_tag_delete_chain: null mbuf (from {c})"));
    }
    // SAFETY: `m` is a live packet-header mbuf (callers checked).
    let p = if t.is_null() {
        unsafe { tags_first(m) }
    } else {
        t
    };
    if p.is_null() {
        return;
    }
    let mut guard = 0;
    loop {
        not_a_tag_panics(m, p, c);
        // SAFETY: `p` is on `m`'s tag list (checked live just above).
        let q = unsafe { tag_next(p) };
        if !q.is_null() {
            not_a_tag_panics(m, q, c);
        }
        if q.is_null() {
            break;
        }
        tag_delete(m, q, c);
        guard += 1;
        if guard > TAG_WALK_LIMIT {
            violation(format!(
                "m_tag_delete_chain({m:p}) from {c}: tag list does not end"
            ));
            return;
        }
    }
    tag_delete(m, p, c);
}

pub(super) fn tag_type() -> *mut fbsd_sys::malloc_type {
    malloc::harness_type(TAG_TYPE)
}

/// `m_tag_alloc(cookie, type, len, wait)`.
pub(super) fn tag_alloc(
    cookie: u32,
    ttype: u16,
    tlen: c_int,
    wait: c_int,
    c: Caller,
) -> *mut m_tag {
    if tlen < 0 {
        return null_mut();
    }
    if tlen > MTAG_MAXLEN {
        violation(format!(
            "m_tag_alloc(cookie {cookie:#x}, type {ttype}, len {tlen}) from {c}: length does not fit \
             m_tag_len (u_int16_t); FreeBSD would truncate it"
        ));
        return null_mut();
    }
    let size = size_of::<m_tag>() + tlen as usize;
    let t =
        malloc::alloc(size, tag_type(), wait, 1, c, Some(Site::Tag), "m_tag_alloc").cast::<m_tag>();
    if t.is_null() {
        return t;
    }
    // SAFETY: a fresh block of `size` bytes (payload left as trash pattern).
    unsafe {
        (*t).m_tag_id = ttype;
        (*t).m_tag_len = tlen as u16;
        (*t).m_tag_cookie = cookie;
        (*t).m_tag_free = Some(abi::m_tag_free_default);
    }
    t
}

/// The live packet-header mbuf whose tag list holds `t`, if any.
pub(super) fn tag_owner(t: *mut m_tag) -> Option<usize> {
    let live: Vec<usize> = with(|s| {
        s.mbufs
            .iter()
            .filter(|(_, r)| r.state == MState::Live)
            .map(|(&a, _)| a)
            .collect()
    });
    for a in live {
        let m = a as *mut mbuf;
        // SAFETY: live mbufs are readable; their tag lists are walked read-only.
        unsafe {
            if flags(m) & M_PKTHDR == 0 {
                continue;
            }
            let mut p = tags_first(m);
            let mut guard = 0;
            while !p.is_null() && guard < TAG_WALK_LIMIT {
                if p == t {
                    return Some(a);
                }
                if !malloc::is_live(p.cast()) {
                    break;
                }
                p = tag_next(p);
                guard += 1;
            }
        }
    }
    None
}

/// `m_tag_free_default(t)`: `free(t, M_PACKET_TAGS)`.
pub(super) fn tag_free_default(t: *mut m_tag, c: Caller) {
    if t.is_null() {
        kernel_panic(&format!("m_tag_free_default(NULL) from {c} (page fault)"));
    }
    if let Some(m) = tag_owner(t) {
        violation(format!(
            "m_tag_free_default({t:p}) from {c}: the tag is still attached to mbuf {m:#x} (it belongs \
             to the mbuf after m_tag_prepend; use m_tag_delete)"
        ));
    }
    malloc::release(t.cast(), tag_type(), c, "m_tag_free_default", false);
}

/// `m_tag_locate(m, cookie, type, t)`.
pub(super) fn tag_locate(
    m: *mut mbuf,
    cookie: u32,
    ttype: u16,
    t: *mut m_tag,
    c: Caller,
) -> *mut m_tag {
    if !check_live(m, "m_tag_locate", c, Use::Access) {
        return null_mut();
    }
    // SAFETY: `m` is live; the list is walked read-only.
    unsafe {
        let mut p = if t.is_null() {
            tags_first(m)
        } else {
            tag_next(t)
        };
        let mut guard = 0;
        while !p.is_null() {
            if (*p).m_tag_cookie == cookie && (*p).m_tag_id == ttype {
                return p;
            }
            p = tag_next(p);
            guard += 1;
            if guard > TAG_WALK_LIMIT {
                violation(format!(
                    "m_tag_locate({m:p}) from {c}: tag list does not end"
                ));
                return null_mut();
            }
        }
    }
    null_mut()
}

/// `m_tag_copy(t, how)`.
pub(super) fn tag_copy(t: *mut m_tag, how: c_int, c: Caller) -> *mut m_tag {
    if t.is_null() {
        kernel_panic(&format!("m_tag_copy: null tag (from {c})"));
    }
    // SAFETY: `t` is a readable tag whose payload holds m_tag_len bytes.
    unsafe {
        let p = tag_alloc(
            (*t).m_tag_cookie,
            (*t).m_tag_id,
            (*t).m_tag_len.into(),
            how,
            c,
        );
        if p.is_null() {
            return p;
        }
        ptr::copy_nonoverlapping(tag_data(t), tag_data(p), (*t).m_tag_len.into());
        p
    }
}

/// `m_tag_copy_chain(to, from, how)`.
pub(super) fn tag_copy_chain(to: *mut mbuf, from: *mut mbuf, how: c_int, c: Caller) -> c_int {
    if to.is_null() || from.is_null() {
        kernel_panic(&format!(
            "m_tag_copy_chain: null argument, to {to:p} from {from:p} (from {c})"
        ));
    }
    if !check_live(to, "m_tag_copy_chain", c, Use::Access)
        || !check_live(from, "m_tag_copy_chain", c, Use::Access)
    {
        return 0;
    }
    tag_delete_chain(to, null_mut(), c);
    // SAFETY: both mbufs are live packet-header mbufs.
    unsafe {
        let mut prev: *mut m_tag = null_mut();
        let mut p = tags_first(from);
        while !p.is_null() {
            let t = tag_copy(p, how, c);
            if t.is_null() {
                tag_delete_chain(to, null_mut(), c);
                return 0;
            }
            if prev.is_null() {
                set_tag_next(t, tags_first(to));
                set_tags_first(to, t);
            } else {
                set_tag_next(t, tag_next(prev));
                set_tag_next(prev, t);
            }
            prev = t;
            p = tag_next(p);
        }
    }
    1
}

/// `m_tag_delete_nonpersistent(m)`.
pub(super) fn tag_delete_nonpersistent(m: *mut mbuf, c: Caller) {
    if !check_live(m, "m_tag_delete_nonpersistent", c, Use::Access) {
        return;
    }
    // SAFETY: `m` is live; each tag's successor is read before it may be freed.
    unsafe {
        let mut p = tags_first(m);
        while !p.is_null() {
            let q = tag_next(p);
            if u32::from((*p).m_tag_id) & MTAG_PERSISTENT == 0 {
                tag_delete(m, p, c);
            }
            p = q;
        }
    }
}
