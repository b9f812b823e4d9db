//! The Rust API of the mbuf model, for the rest of the harness and for tests.

use super::*;

/// A packet-header chain holding `bytes` (as few mbufs/clusters as
/// `m_getm2` would use). Never fails; not subject to fault injection.
#[track_caller]
pub fn from_bytes(bytes: &[u8]) -> *mut mbuf {
    build(bytes, None, How::Host, Caller::here())
}

/// Like [`from_bytes`], but the allocation is an `M_NOWAIT` one that the
/// fault plan may fail (`None`).
#[track_caller]
pub fn try_from_bytes(bytes: &[u8]) -> Option<*mut mbuf> {
    let m = build(bytes, None, How::NoWait, Caller::here());
    (!m.is_null()).then_some(m)
}

/// A packet-header chain holding `bytes` with at most `chunk` bytes per mbuf
/// (plain mbufs while `chunk` fits, clusters up to `MJUMPAGESIZE` otherwise).
#[track_caller]
pub fn from_bytes_chunked(bytes: &[u8], chunk: usize) -> *mut mbuf {
    assert!(
        chunk > 0 && chunk <= MJUMPAGESIZE,
        "from_bytes_chunked: chunk {chunk} out of range"
    );
    build(bytes, Some(chunk), How::Host, Caller::here())
}

pub(super) fn build(bytes: &[u8], chunk: Option<usize>, w: How, c: Caller) -> *mut mbuf {
    assert!(bytes.len() <= i32::MAX as usize, "mbuf chain too long");
    let Some(chunk) = chunk else {
        let m = getm2(
            null_mut(),
            bytes.len().max(1) as c_int,
            w,
            MT_DATA,
            M_PKTHDR,
            c,
        );
        if m.is_null() {
            return m;
        }
        // SAFETY: `m` is a fresh chain with room for all bytes.
        unsafe {
            let mut off = 0;
            let mut p = m;
            while !p.is_null() {
                let n =
                    (m_size(p) - (data(p) as usize - m_start(p) as usize)).min(bytes.len() - off);
                ptr::copy_nonoverlapping(bytes.as_ptr().add(off), data(p), n);
                set_len(p, n as i32);
                off += n;
                p = next(p);
            }
            set_ph_len(m, bytes.len() as i32);
        }
        return m;
    };
    let mut top: *mut mbuf = null_mut();
    let mut tail: *mut mbuf = null_mut();
    let mut off = 0;
    loop {
        let hdr = top.is_null();
        let room = if hdr { MHLEN } else { MLEN };
        let m = if chunk <= room {
            zalloc_mbuf(w, MT_DATA, if hdr { M_PKTHDR } else { 0 }, c)
        } else {
            getjcl(
                w,
                MT_DATA,
                if hdr { M_PKTHDR } else { 0 },
                if chunk <= MCLBYTES {
                    MCLBYTES
                } else {
                    MJUMPAGESIZE
                },
                c,
            )
        };
        if m.is_null() {
            freem(top, c);
            return null_mut();
        }
        let n = chunk.min(bytes.len() - off);
        // SAFETY: `m` is fresh with at least `chunk` bytes of room.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr().add(off), data(m), n);
            set_len(m, n as i32);
            if hdr {
                top = m;
            } else {
                set_next(tail, m);
            }
        }
        tail = m;
        off += n;
        if off >= bytes.len() {
            break;
        }
    }
    // SAFETY: `top` is the fresh packet-header head.
    unsafe { set_ph_len(top, bytes.len() as i32) };
    top
}

/// The bytes of `m`'s chain (every mbuf is checked live and in bounds).
#[track_caller]
pub fn to_vec(m: *mut mbuf) -> Vec<u8> {
    let c = Caller::here();
    let mut out = Vec::new();
    for p in chain(m, "to_vec", c) {
        // SAFETY: `p` is live; the segment is bounds-checked first.
        unsafe {
            let l = len(p).max(0) as usize;
            if !seg_ok(p, 0, l, "to_vec", c) {
                break;
            }
            out.extend_from_slice(std::slice::from_raw_parts(data(p), l));
        }
    }
    out
}

/// `m_freem(m)` for harness code.
#[track_caller]
pub fn free_chain(m: *mut mbuf) {
    freem(m, Caller::here());
}

/// `m_free(m)` for harness code (fatal on NULL, like FreeBSD); returns `m_next`.
#[track_caller]
pub fn free_one_mbuf(m: *mut mbuf) -> *mut mbuf {
    free_one(m, Caller::here())
}

/// Number of live mbufs.
pub fn live() -> usize {
    with(|s| s.mbufs.values().filter(|r| r.state == MState::Live).count())
}

/// Number of live clusters.
pub fn live_clusters() -> usize {
    with(|s| s.clusters.values().filter(|r| r.live).count())
}

/// True if `m` is a live mbuf.
pub fn is_live(m: *const mbuf) -> bool {
    with(|s| {
        s.mbufs
            .get(&(m as usize))
            .is_some_and(|r| r.state == MState::Live)
    })
}

/// True if `m` is a freed (or freed-but-referenced) mbuf.
pub fn is_freed(m: *const mbuf) -> bool {
    with(|s| {
        s.mbufs
            .get(&(m as usize))
            .is_some_and(|r| r.state != MState::Live)
    })
}

/// The tags of packet-header mbuf `m`, in list order: (cookie, type, payload).
// The pointer is checked against the allocator's tables before any access.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn tags_of(m: *mut mbuf) -> Vec<(u32, u16, Vec<u8>)> {
    let mut out = Vec::new();
    if !is_live(m) {
        return out;
    }
    // SAFETY: `m` is live; tags are read up to their m_tag_len.
    unsafe {
        if flags(m) & M_PKTHDR == 0 {
            return out;
        }
        let mut t = tags_first(m);
        while !t.is_null() && out.len() < TAG_WALK_LIMIT {
            if !malloc::is_live(t.cast()) {
                violation(format!(
                    "tags_of({m:p}): tag {t:p} on the list is not a live allocation"
                ));
                break;
            }
            let l = usize::from((*t).m_tag_len);
            let payload = std::slice::from_raw_parts(tag_data(t), l).to_vec();
            out.push(((*t).m_tag_cookie, (*t).m_tag_id, payload));
            t = tag_next(t);
        }
    }
    out
}

/// Allocates a tag (`m_tag_alloc` with `M_WAITOK` semantics, no fault
/// injection), fills it with `payload` and prepends it to `m`'s tag list.
#[track_caller]
// The pointer is checked against the allocator's tables before any access.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn add_tag(m: *mut mbuf, cookie: u32, ttype: u16, payload: &[u8]) -> *mut m_tag {
    let c = Caller::here();
    assert!(is_live(m), "add_tag: {m:p} is not a live mbuf");
    // SAFETY: `m` is live.
    assert!(
        unsafe { flags(m) } & M_PKTHDR != 0,
        "add_tag: mbuf {m:p} has no M_PKTHDR"
    );
    assert!(
        payload.len() <= MTAG_MAXLEN as usize,
        "add_tag: payload too long"
    );
    let size = size_of::<m_tag>() + payload.len();
    let t = malloc::alloc(
        size,
        tag_type(),
        M_WAITOK as c_int,
        1,
        c,
        None,
        "m_tag_alloc",
    )
    .cast::<m_tag>();
    // SAFETY: a fresh block of `size` bytes; `m` is a live packet-header mbuf.
    unsafe {
        (*t).m_tag_id = ttype;
        (*t).m_tag_len = payload.len() as u16;
        (*t).m_tag_cookie = cookie;
        (*t).m_tag_free = Some(abi::m_tag_free_default);
        ptr::copy_nonoverlapping(payload.as_ptr(), tag_data(t), payload.len());
        set_tag_next(t, tags_first(m));
        set_tags_first(m, t);
    }
    t
}

/// Structural problems of chain `m` (what FreeBSD's `m_sanity` and the
/// socket/netgraph paths assume): liveness, `m_data`/`m_len` inside the
/// storage, M_PKTHDR only (and required) on the first mbuf, `m_nextpkt` NULL
/// on the members, `m_pkthdr.len` equal to the sum of `m_len`. Nothing is
/// recorded; see [`check_chain`].
// The pointer is checked against the allocator's tables before any access.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn chain_problems(m: *mut mbuf) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = m;
    let mut total: i64 = 0;
    let mut i = 0usize;
    while !p.is_null() {
        let st = with(|s| s.mbufs.get(&(p as usize)).map(|r| r.state));
        match st {
            Some(MState::Live) => {}
            Some(_) => {
                out.push(format!("mbuf #{i} ({p:p}) of the chain is freed"));
                return out;
            }
            None => {
                out.push(format!("mbuf #{i} ({p:p}) of the chain is not an mbuf"));
                return out;
            }
        }
        // SAFETY: `p` is live.
        unsafe {
            let f = flags(p);
            out.extend(flag_problems(p, i));
            if i == 0 && f & M_PKTHDR == 0 {
                out.push(format!("first mbuf {p:p} has no M_PKTHDR"));
            }
            if i > 0 && f & M_PKTHDR != 0 {
                out.push(format!("M_PKTHDR on in-chain mbuf #{i} ({p:p})"));
            }
            if i > 0 && !nextpkt(p).is_null() {
                out.push(format!("m_nextpkt set on in-chain mbuf #{i} ({p:p})"));
            }
            let start = m_start(p);
            if !start.is_null() {
                let (lo, hi, d) = (start as usize, start as usize + m_size(p), data(p) as usize);
                if d < lo || d > hi || len(p) < 0 || d + len(p) as usize > hi {
                    out.push(format!(
                        "mbuf #{i} ({p:p}): m_data/m_len outside its storage"
                    ));
                }
            }
            total += i64::from(len(p));
            p = next(p);
        }
        i += 1;
        if i > CHAIN_WALK_LIMIT {
            out.push("chain does not end (loop?)".into());
            return out;
        }
    }
    // SAFETY: `m` was checked live above (first iteration) if non-NULL.
    if !m.is_null() && unsafe { flags(m) } & M_PKTHDR != 0 {
        // SAFETY: as above.
        let hl = i64::from(unsafe { ph_len(m) });
        if hl != total {
            out.push(format!("m_pkthdr.len {hl} != sum of m_len {total}"));
        }
    }
    out
}

/// The flags of mbuf #`i` of a chain against what the allocator knows:
/// `M_EXTPG` and `M_NOFREE` are never set on mbufs of this kernel (no
/// unmapped or embedded mbufs); `M_EXT` with a cluster type needs a live
/// cluster; a packet header's tag list must be live allocations — a plain
/// mbuf whose flags were set to `M_PKTHDR` by hand has data bytes there
/// instead.
///
/// # Safety
/// `p` must be a live mbuf.
unsafe fn flag_problems(p: *mut mbuf, i: usize) -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: the caller guarantees a live mbuf.
    unsafe {
        let f = flags(p);
        if f & M_EXTPG != 0 {
            out.push(format!(
                "mbuf #{i} ({p:p}) has M_EXTPG but this kernel makes no unmapped mbufs"
            ));
        }
        if f & M_NOFREE != 0 {
            out.push(format!(
                "mbuf #{i} ({p:p}) has M_NOFREE but was not embedded in a cluster"
            ));
        }
        let t = ext_type(p);
        let foreign = matches!(
            t,
            EXT_SFBUF | EXT_MOD_TYPE | EXT_DISPOSABLE | EXT_EXTREF | EXT_NET_DRV | EXT_RXRING
        );
        if f & M_EXT != 0 && !foreign {
            let buf = ext_buf(p) as usize;
            if !with(|s| s.clusters.get(&buf).is_some_and(|c| c.live)) {
                out.push(format!(
                    "mbuf #{i} ({p:p}) has M_EXT but its ext_buf {buf:#x} (ext_type {t}) is not a live cluster"
                ));
            }
        }
        if f & M_PKTHDR != 0 {
            let mut t = tags_first(p);
            let mut n = 0;
            while !t.is_null() && n < TAG_WALK_LIMIT {
                if !malloc::is_live(t.cast()) {
                    out.push(format!(
                        "mbuf #{i} ({p:p}): M_PKTHDR with tag list entry {t:p} that is not a live allocation (a plain mbuf's data taken for a packet header?)"
                    ));
                    break;
                }
                t = tag_next(t);
                n += 1;
            }
        }
    }
    out
}

/// Records a violation `"{ctx}: {problem}"` for each of [`chain_problems`];
/// true if the chain is sound.
pub fn check_chain(m: *mut mbuf, ctx: &str) -> bool {
    let p = chain_problems(m);
    for msg in &p {
        violation(format!("{ctx}: {msg}"));
    }
    p.is_empty()
}

/// Sets the quarantine size in bytes (freed mbufs and clusters).
pub fn set_quarantine_limit(bytes: usize) {
    let msgs = with(|s| {
        s.qlimit = bytes;
        s.evict()
    });
    report(msgs);
}

/// End-of-scenario check: every live mbuf (and cluster not attached to a live
/// mbuf) is a leak, reported with its allocation site; every quarantined
/// mbuf/cluster must still hold the trash pattern. Findings are recorded as
/// violations and returned.
pub fn check_all() -> Vec<String> {
    struct Leak {
        serial: u64,
        site: Caller,
        what: String,
    }
    let (leaks, damage) = with(|s| {
        let mut leaks = Vec::new();
        let mut damage = Vec::new();
        let states: HashMap<usize, MState> = s.mbufs.iter().map(|(&a, r)| (a, r.state)).collect();
        for (&p, r) in s.mbufs.iter_mut() {
            match r.state {
                MState::Live if !r.reported => {
                    r.reported = true;
                    let m = p as *mut mbuf;
                    // SAFETY: live mbufs are readable.
                    let what = unsafe {
                        format!(
                            "mbuf {p:#x} (m_len {}, m_flags {:#x}{})",
                            len(m),
                            flags(m),
                            if flags(m) & M_EXT != 0 {
                                ", with cluster"
                            } else {
                                ""
                            }
                        )
                    };
                    leaks.push(Leak {
                        serial: r.serial,
                        site: r.site,
                        what,
                    });
                }
                MState::Freed if !r.reported => {
                    if let Some(d) = mbuf_damage(p, r) {
                        r.reported = true;
                        damage.push(d);
                    }
                }
                _ => {}
            }
        }
        for (&p, c) in s.clusters.iter_mut() {
            if c.live {
                let owned = states.get(&c.owner).is_some_and(|st| *st != MState::Freed);
                if !owned && !c.reported {
                    c.reported = true;
                    leaks.push(Leak {
                        serial: c.serial,
                        site: c.site,
                        what: format!("{}-byte cluster {p:#x} not attached to any mbuf", c.size),
                    });
                }
            } else if !c.reported {
                if let Some(d) = cluster_damage(p, c) {
                    c.reported = true;
                    damage.push(d);
                }
            }
        }
        (leaks, damage)
    });
    let mut out = Vec::new();
    if !leaks.is_empty() {
        let mut leaks = leaks;
        leaks.sort_by_key(|l| l.serial);
        let mut m = format!("leak: {} mbuf object(s) still allocated", leaks.len());
        for l in leaks.iter().take(64) {
            m.push_str(&format!(
                "\n    {} (#{}) allocated at {}",
                l.what, l.serial, l.site
            ));
        }
        if leaks.len() > 64 {
            m.push_str(&format!("\n    ... and {} more", leaks.len() - 64));
        }
        violation(m.clone());
        out.push(m);
    }
    out.extend(report(damage));
    out
}
