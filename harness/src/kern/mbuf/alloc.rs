//! Allocating and freeing mbufs and clusters: the zone allocators, external
//! storage with its reference count, zombies and the quarantine.

use super::*;

pub(super) fn new_mbuf(c: Caller) -> *mut mbuf {
    let lay = mbuf_layout();
    // SAFETY: non-zero layout.
    let p = unsafe { std::alloc::alloc(lay) };
    if p.is_null() {
        std::alloc::handle_alloc_error(lay);
    }
    // SAFETY: MSIZE fresh bytes.
    unsafe { fill_poison(p, MSIZE) };
    with(|s| {
        s.serial += 1;
        let r = MRec {
            serial: s.serial,
            site: c,
            state: MState::Live,
            free_site: Caller::Unknown,
            reported: false,
        };
        s.mbufs.insert(p as usize, r);
    });
    probe::alloc(probe::Kind::Mbuf, MSIZE, c);
    p.cast()
}

pub(super) fn new_cluster(size: usize, owner: *mut mbuf, c: Caller) -> *mut u8 {
    let lay = cluster_layout(size);
    // SAFETY: non-zero layout.
    let p = unsafe { std::alloc::alloc(lay) };
    if p.is_null() {
        std::alloc::handle_alloc_error(lay);
    }
    // SAFETY: `size` fresh bytes.
    unsafe { fill_poison(p, size) };
    with(|s| {
        s.serial += 1;
        let r = CRec {
            size,
            serial: s.serial,
            site: c,
            live: true,
            owner: owner as usize,
            free_site: Caller::Unknown,
            reported: false,
        };
        s.clusters.insert(p as usize, r);
    });
    probe::alloc(probe::Kind::Cluster, size, c);
    p
}

/// `m_init` (and `m_pkthdr_init`) of a fresh mbuf.
/// Safety: `m` must be a fresh mbuf owned by the caller.
pub(super) unsafe fn init_mbuf(m: *mut mbuf, mtype: u32, fl: u32) {
    set_next(m, null_mut());
    set_nextpkt(m, null_mut());
    set_data(m, dat(m));
    set_len(m, 0);
    set_flags(m, fl);
    set_mtype(m, mtype);
    if fl & M_PKTHDR != 0 {
        pkthdr_init(m);
    }
}

/// `m_pkthdr_init`: data at `m_pktdat`, packet header zeroed.
/// Safety: `m` must be a writable mbuf.
pub(super) unsafe fn pkthdr_init(m: *mut mbuf) {
    set_data(m, pktdat(m));
    ptr::write_bytes(ph(m), 0, 1);
}

/// Attaches cluster `buf` of `size` bytes to `m` (`mb_ctor_clust`).
/// Safety: `m` must be a writable mbuf without M_EXT, `buf` a fresh cluster of `size` bytes.
pub(super) unsafe fn attach_cluster(m: *mut mbuf, buf: *mut u8, size: usize, ext_type: u32) {
    let e = ext(m);
    (*e).__bindgen_anon_2.__bindgen_anon_1.ext_buf = buf.cast();
    (*e).__bindgen_anon_2.__bindgen_anon_1.ext_arg2 = null_mut();
    (*e).ext_free = None;
    (*e).ext_arg1 = null_mut();
    (*e).ext_size = size as u32;
    m_ext::set_ext_type_raw(e, ext_type);
    m_ext::set_ext_flags_raw(e, EXT_FLAG_EMBREF);
    (*e).__bindgen_anon_1.ext_count = 1;
    set_data(m, buf);
    set_flags(m, flags(m) | M_EXT);
    with(|s| {
        if let Some(r) = s.clusters.get_mut(&(buf as usize)) {
            r.owner = m as usize;
        }
    });
}

/// `uma_zalloc_arg(zone_mbuf, &args, how)`.
pub(super) fn zalloc_mbuf(w: How, mtype: u32, fl: u32, c: Caller) -> *mut mbuf {
    if !gate(w, c) {
        return null_mut();
    }
    let m = new_mbuf(c);
    if mtype != MT_NOINIT {
        // SAFETY: `m` is a fresh mbuf.
        unsafe { init_mbuf(m, mtype, fl) };
    }
    m
}

/// `uma_zalloc_arg(zone_pack, &args, how)`: mbuf + 2 KB cluster (EXT_PACKET).
pub(super) fn zalloc_pack(w: How, mtype: u32, fl: u32, c: Caller) -> *mut mbuf {
    if !gate(w, c) {
        return null_mut();
    }
    let m = new_mbuf(c);
    let cl = new_cluster(MCLBYTES, m, c);
    // SAFETY: `m` is a fresh mbuf, `cl` a fresh cluster.
    unsafe {
        init_mbuf(m, mtype, fl);
        attach_cluster(m, cl, MCLBYTES, EXT_PACKET);
        set_flags(m, fl | M_EXT);
    }
    m
}

/// `uma_zalloc_arg(zone_clust / zone_jumbo*, m, how)`.
pub(super) fn zalloc_cluster(zone: Zone, w: How, m: *mut mbuf, c: Caller) -> *mut u8 {
    if !gate(w, c) {
        return null_mut();
    }
    let size = zone.cluster_size();
    let cl = new_cluster(size, m, c);
    if !m.is_null() {
        // SAFETY: the caller passes a live mbuf to attach the cluster to.
        unsafe { attach_cluster(m, cl, size, zone.ext_type()) };
    }
    cl
}

/// `m_getjcl(how, type, flags, size)`.
pub(super) fn getjcl(w: How, mtype: u32, fl: u32, size: usize, c: Caller) -> *mut mbuf {
    if size == MCLBYTES {
        return zalloc_pack(w, mtype, fl, c);
    }
    let Some(zone) = Zone::for_size(size) else {
        kernel_panic(&format!("m_getzone: invalid cluster size {size}"));
    };
    let m = zalloc_mbuf(w, mtype, fl, c);
    if m.is_null() {
        return m;
    }
    if zalloc_cluster(zone, w, m, c).is_null() {
        zfree_mbuf(m, c);
        return null_mut();
    }
    m
}

/// Poisons and quarantines a freed mbuf (`zombie`: keep the reference count).
pub(super) fn retire_mbuf(m: *mut mbuf, c: Caller, zombie: bool) {
    // SAFETY: `m` is a live mbuf whose storage we own.
    unsafe {
        if zombie {
            fill_poison(m.cast(), REF_HOLE.0);
            let after = REF_HOLE.0 + REF_HOLE.1;
            fill_poison_phase(m.cast::<u8>().add(after), MSIZE - after, after);
        } else {
            fill_poison(m.cast(), MSIZE);
        }
    }
    let msgs = with(|s| {
        if let Some(r) = s.mbufs.get_mut(&(m as usize)) {
            r.free_site = c;
            r.state = if zombie {
                MState::Zombie
            } else {
                MState::Freed
            };
        }
        if zombie {
            return Vec::new();
        }
        s.order.push_back((m as usize, false));
        s.qbytes += MSIZE;
        s.evict()
    });
    report(msgs);
}

/// A zombie's last shared reference went away: it is now simply freed.
pub(super) fn finalize_zombie(m: *mut mbuf) {
    // SAFETY: zombies keep their storage; only the count word was not poisoned.
    unsafe { fill_poison_phase(m.cast::<u8>().add(REF_HOLE.0), REF_HOLE.1, REF_HOLE.0) };
    let msgs = with(|s| {
        if let Some(r) = s.mbufs.get_mut(&(m as usize)) {
            r.state = MState::Freed;
        }
        s.order.push_back((m as usize, false));
        s.qbytes += MSIZE;
        s.evict()
    });
    report(msgs);
}

/// Fills with the trash pattern as if the fill had started `phase` bytes earlier.
/// Safety: `p` must be valid for `len` bytes of writes.
pub(super) unsafe fn fill_poison_phase(p: *mut u8, len: usize, phase: usize) {
    let pat = malloc::POISON.to_ne_bytes();
    for i in 0..len {
        *p.add(i) = pat[(i + phase) % 4];
    }
}

/// Frees cluster `buf` (zone free of a cluster).
pub(super) fn free_cluster(buf: *mut u8, what: &str, c: Caller) {
    let st = with(|s| {
        s.clusters
            .get(&(buf as usize))
            .map(|r| (r.live, r.size, r.serial, r.site, r.free_site))
    });
    match st {
        Some((true, size, ..)) => {
            // SAFETY: a live cluster of `size` bytes that we own.
            unsafe { fill_poison(buf, size) };
            let msgs = with(|s| {
                if let Some(r) = s.clusters.get_mut(&(buf as usize)) {
                    r.live = false;
                    r.free_site = c;
                }
                s.order.push_back((buf as usize, true));
                s.qbytes += size;
                s.evict()
            });
            report(msgs);
        }
        Some((false, size, serial, site, free_site)) => violation(format!(
            "double free: {what} from {c}: the {size}-byte cluster {buf:p} (#{serial}) allocated at \
             {site} was already freed at {free_site}"
        )),
        None => violation(format!("{what} from {c}: {buf:p} is not a cluster from the mbuf zones")),
    }
}

/// `uma_zfree(zone_mbuf, m)` with the zone destructor (`mb_dtor_mbuf`).
pub(super) fn zfree_mbuf(m: *mut mbuf, c: Caller) {
    if !check_live(m, "uma_zfree(zone_mbuf)", c, Use::Free) {
        return;
    }
    // SAFETY: `m` is live.
    let f = unsafe { flags(m) };
    if f & M_NOFREE != 0 {
        violation(format!(
            "mb_dtor_mbuf: M_NOFREE mbuf {m:p} freed to zone_mbuf from {c}"
        ));
    }
    if f & M_PKTHDR != 0 {
        // SAFETY: a live packet-header mbuf.
        if unsafe { !tags_first(m).is_null() } {
            tag_delete_chain(m, null_mut(), c);
        }
    } else {
        stray_tag_check(m, c);
    }
    retire_mbuf(m, c, false);
}

/// A tag list head on a mbuf without M_PKTHDR means `m_tag_prepend` was used
/// on it: the tag sits in the data area and is never freed.
pub(super) fn stray_tag_check(m: *mut mbuf, c: Caller) {
    // SAFETY: `m` is live; the word is read as data.
    let w = unsafe { tags_first(m) } as usize;
    if w != 0 && malloc::block_info(w as *const u8).is_some_and(|(_, t)| t == TAG_TYPE) {
        let site = with(|s| s.mbufs.get(&(m as usize)).map(|r| r.site)).unwrap_or(Caller::Unknown);
        violation(format!(
            "m_tag_prepend on a mbuf without M_PKTHDR: mbuf {m:p} (allocated at {site}) freed from {c} \
             carries tag {w:#x} in its data area; the tag leaks"
        ));
    }
}

/// `mb_free_ext(m)`.
pub(super) fn free_ext(m: *mut mbuf, c: Caller) {
    if !check_live(m, "mb_free_ext", c, Use::Free) {
        return;
    }
    // SAFETY: `m` is live; its m_ext fields are read as FreeBSD does.
    unsafe {
        if flags(m) & M_EXT == 0 {
            violation(format!("mb_free_ext: M_EXT not set on {m:p} (from {c})"));
            return;
        }
        let refcnt = refcnt_ptr(m);
        if refcnt.is_null() {
            violation(format!(
                "mb_free_ext: no refcounting pointer on {m:p} (from {c})"
            ));
            return;
        }
        let etype = ext_type(m);
        let mref = if ext_flags(m) & EXT_FLAG_EMBREF != 0 {
            m
        } else {
            (refcnt as usize - REF_HOLE.0) as *mut mbuf
        };
        let mref_state = with(|s| s.mbufs.get(&(mref as usize)).map(|r| r.state));
        if etype != EXT_EXTREF && mref_state.is_none() {
            violation(format!(
                "mb_free_ext({m:p}) from {c}: reference count pointer {refcnt:p} is not inside an mbuf"
            ));
            return;
        }
        let freembuf = flags(m) & M_NOFREE == 0;
        let count = *refcnt;
        if count == 0 {
            violation(format!(
                "mb_free_ext({m:p}) from {c}: external storage reference count is 0"
            ));
            return;
        }
        let last = count == 1;
        if !last {
            *refcnt = count - 1;
        }
        if last {
            match etype {
                EXT_PACKET | EXT_CLUSTER | EXT_JUMBOP | EXT_JUMBO9 | EXT_JUMBO16 => {
                    free_cluster(ext_buf(m), "mb_free_ext", c);
                    finish_ref_holder(m, mref, c);
                }
                EXT_SFBUF | EXT_NET_DRV | EXT_MOD_TYPE | EXT_DISPOSABLE => {
                    match (*ext(mref)).ext_free {
                        Some(f) => f(mref),
                        None => violation(format!("mb_free_ext({m:p}): ext_free not set")),
                    }
                    finish_ref_holder(m, mref, c);
                }
                EXT_EXTREF => match (*ext(m)).ext_free {
                    Some(f) => f(m),
                    None => violation(format!("mb_free_ext({m:p}): ext_free not set")),
                },
                EXT_RXRING => {}
                t => violation(format!("mb_free_ext({m:p}) from {c}: unknown ext_type {t}")),
            }
        }
        if freembuf && m != mref {
            zfree_mbuf(m, c);
        } else if m == mref && !last {
            // The owner is gone but shares remain: drop its tags now and keep
            // only the reference count alive.
            if flags(m) & M_PKTHDR != 0 && !tags_first(m).is_null() {
                tag_delete_chain(m, null_mut(), c);
            }
            retire_mbuf(m, c, true);
        }
    }
}

/// Frees the mbuf holding a storage reference count once the storage went.
pub(super) fn finish_ref_holder(m: *mut mbuf, mref: *mut mbuf, c: Caller) {
    match with(|s| s.mbufs.get(&(mref as usize)).map(|r| r.state)) {
        Some(MState::Zombie) => finalize_zombie(mref),
        Some(MState::Live) if mref == m => zfree_mbuf(mref, c),
        Some(MState::Live) => violation(format!(
            "mb_free_ext({m:p}) from {c}: last reference dropped while the owning mbuf {mref:p} is \
             still live (reference count corrupted)"
        )),
        _ => violation(format!(
            "mb_free_ext({m:p}) from {c}: reference holder {mref:p} already freed"
        )),
    }
}

/// `m_free(m)`: frees one mbuf, returns its `m_next`.
pub(super) fn free_one(m: *mut mbuf, c: Caller) -> *mut mbuf {
    if m.is_null() {
        kernel_panic(&format!(
            "m_free(NULL) from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    if !check_live(m, "m_free", c, Use::Free) {
        return null_mut();
    }
    // SAFETY: `m` is live.
    let (n, f) = unsafe { (next(m), flags(m)) };
    if f & (M_PKTHDR | M_NOFREE) == (M_PKTHDR | M_NOFREE) {
        tag_delete_chain(m, null_mut(), c);
    }
    if f & M_EXTPG != 0 {
        violation(format!(
            "m_free({m:p}) from {c}: unmapped (M_EXTPG) mbufs are not supported"
        ));
    } else if f & M_EXT != 0 {
        free_ext(m, c);
    } else if f & M_NOFREE == 0 {
        zfree_mbuf(m, c);
    }
    n
}

/// `m_freem(m)`.
pub(super) fn freem(mut m: *mut mbuf, c: Caller) {
    let mut guard = 0;
    while !m.is_null() {
        m = free_one(m, c);
        guard += 1;
        if guard > CHAIN_WALK_LIMIT {
            violation(format!("m_freem from {c}: mbuf chain does not end (loop?)"));
            return;
        }
    }
}
