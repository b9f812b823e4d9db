//! Field accessors for `struct mbuf` (bindgen turns its unions into nested
//! anonymous fields); used by the netgraph core's INVARIANTS-style data checks
//! and by the built-in node types.

use fbsd_sys::{mbuf, pkthdr};

/// `m->m_next`.
///
/// # Safety
/// `m` must point at a readable mbuf.
pub unsafe fn next(m: *const mbuf) -> *mut mbuf {
    // SAFETY: every variant of this union starts with the next pointer.
    unsafe { (*m).__bindgen_anon_1.m_next }
}

/// `m->m_nextpkt`.
///
/// # Safety
/// `m` must point at a readable mbuf.
pub unsafe fn nextpkt(m: *const mbuf) -> *mut mbuf {
    // SAFETY: every variant of this union starts with the packet link.
    unsafe { (*m).__bindgen_anon_2.m_nextpkt }
}

/// `&m->m_pkthdr` (only meaningful when M_PKTHDR is set).
///
/// # Safety
/// `m` must point at a writable mbuf.
pub unsafe fn pkthdr_mut(m: *mut mbuf) -> &'static mut pkthdr {
    // SAFETY: the packet header overlays the start of the mbuf's data union.
    unsafe {
        let u = std::ptr::addr_of_mut!((*m).__bindgen_anon_3).cast::<pkthdr>();
        &mut *u
    }
}

/// `m->m_pkthdr.len`.
///
/// # Safety
/// `m` must point at a readable packet-header mbuf.
pub unsafe fn pkthdr_len(m: *const mbuf) -> i32 {
    // SAFETY: as `pkthdr_mut`, read-only.
    unsafe {
        let u = std::ptr::addr_of!((*m).__bindgen_anon_3).cast::<pkthdr>();
        (*u).len
    }
}

/// `m->m_flags`.
///
/// # Safety
/// `m` must point at a readable mbuf.
pub unsafe fn flags(m: *const mbuf) -> u32 {
    // SAFETY: reads the bitfield word of a readable mbuf.
    unsafe { mbuf::m_flags_raw(m) }
}

/// The INVARIANTS `CHECK_DATA_MBUF` test of `ng_snd_item`: packet header,
/// no `m_nextpkt` anywhere in the chain, `m_pkthdr.len` equal to the sum of
/// the `m_len`s. Returns a description of the first problem.
///
/// # Safety
/// `m` must point at a readable mbuf chain.
pub unsafe fn check_data_mbuf(m: *const mbuf) -> Option<String> {
    // SAFETY: the caller guarantees a readable chain.
    unsafe {
        if flags(m) & fbsd_sys::M_PKTHDR == 0 {
            return Some(format!("mbuf {m:p} passed as data has no M_PKTHDR"));
        }
        let mut total: i64 = 0;
        let mut n = m;
        while !n.is_null() {
            total += i64::from((*n).m_len);
            if !nextpkt(n).is_null() {
                return Some(format!(
                    "ng_snd_item: m_nextpkt set in data chain (mbuf {n:p})"
                ));
            }
            n = next(n);
        }
        let hl = i64::from(pkthdr_len(m));
        if hl != total {
            return Some(format!(
                "ng_snd_item: m_pkthdr.len {hl} != chain length {total}"
            ));
        }
        None
    }
}
