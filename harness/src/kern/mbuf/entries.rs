//! The exported mbuf(9), mbuf_tags(9), uiomove(9) and uma(9) functions.

use super::*;

kernel_functions! {
    /// `struct mbuf *m_get2(int size, int how, short type, int flags)`
    fn m_get2(size: c_int, how: c_int, ty: c_short, fl: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_get2", c);
        get2(size, w, ty as u16 as u32 & 0xff, fl as u32, c)
    }

    /// `struct mbuf *m_getm2(struct mbuf *m, int len, int how, short type, int flags)`
    fn m_getm2(m: *mut mbuf, len: c_int, how: c_int, ty: c_short, fl: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_getm2", c);
        getm2(m, len, w, ty as u16 as u32 & 0xff, fl as u32, c)
    }

    /// `struct mbuf *m_getjcl(int how, short type, int flags, int size)`
    fn m_getjcl(how: c_int, ty: c_short, fl: c_int, size: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_getjcl", c);
        getjcl(
            w,
            ty as u16 as u32 & 0xff,
            fl as u32,
            size.max(0) as usize,
            c,
        )
    }

    /// `int m_clget(struct mbuf *m, int how)`
    fn m_clget(m: *mut mbuf, how: c_int) -> c_int [c] {
        let w = wait_of(how, "m_clget", c);
        if !check_live(m, "m_clget", c, Use::Access) {
            return 0;
        }
        if flags(m) & M_EXT != 0 {
            violation(format!("m_clget: mbuf {m:p} has M_EXT (from {c})"));
            return 0;
        }
        (*ext(m)).__bindgen_anon_2.__bindgen_anon_1.ext_buf = null_mut();
        zalloc_cluster(Zone::Clust, w, m, c);
        if w == How::NoWait && ext_buf(m).is_null() {
            zalloc_cluster(Zone::Clust, w, m, c);
        }
        (flags(m) & M_EXT) as c_int
    }

    /// `void *m_cljget(struct mbuf *m, int how, int size)`
    fn m_cljget(m: *mut mbuf, how: c_int, size: c_int) -> *mut c_void [c] {
        let w = wait_of(how, "m_cljget", c);
        if !m.is_null() {
            if !check_live(m, "m_cljget", c, Use::Access) {
                return null_mut();
            }
            if flags(m) & M_EXT != 0 {
                violation(format!("m_cljget: mbuf {m:p} has M_EXT (from {c})"));
                return null_mut();
            }
            (*ext(m)).__bindgen_anon_2.__bindgen_anon_1.ext_buf = null_mut();
        }
        let Some(z) = Zone::for_size(size.max(0) as usize) else {
            kernel_panic(&format!("m_getzone: invalid cluster size {size}"));
        };
        zalloc_cluster(z, w, m, c).cast()
    }

    /// `void m_freem(struct mbuf *m)`
    fn m_freem(m: *mut mbuf) [c] {
        freem(m, c);
    }

    /// `void m_freemp(struct mbuf *m)`: frees a list of packets (m_nextpkt).
    fn m_freemp(m: *mut mbuf) [c] {
        let mut m = m;
        while !m.is_null() {
            if !check_live(m, "m_freemp", c, Use::Free) {
                return;
            }
            let n = nextpkt(m);
            freem(m, c);
            m = n;
        }
    }

    /// `void mb_free_ext(struct mbuf *m)` (called by the inline `m_free`)
    fn mb_free_ext(m: *mut mbuf) [c] {
        free_ext(m, c);
    }

    /// `struct mbuf *m_pullup(struct mbuf *m, int len)`
    fn m_pullup(m: *mut mbuf, l: c_int) -> *mut mbuf [c] {
        pullup(m, l, c)
    }

    /// `struct mbuf *m_prepend(struct mbuf *m, int len, int how)`
    fn m_prepend(m: *mut mbuf, l: c_int, how: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_prepend", c);
        prepend(m, l, w, c)
    }

    /// `struct mbuf *m_defrag(struct mbuf *m, int how)`
    fn m_defrag(m: *mut mbuf, how: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_defrag", c);
        defrag(m, w, how, c)
    }

    /// `void m_copydata(const struct mbuf *m, int off, int len, caddr_t cp)`
    fn m_copydata(m: *const mbuf, off: c_int, l: c_int, cp: caddr_t) [c] {
        copydata(m.cast_mut(), off, l, cp.cast(), c);
    }

    /// `void m_copyback(struct mbuf *m, int off, int len, c_caddr_t cp)`
    fn m_copyback(m: *mut mbuf, off: c_int, l: c_int, cp: c_caddr_t) [c] {
        copyback(m, off, l, cp.cast(), c);
    }

    /// `struct mbuf *m_copym(struct mbuf *m, int off, int len, int how)`
    fn m_copym(m: *mut mbuf, off: c_int, l: c_int, how: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_copym", c);
        copym(m, off, l, w, c)
    }

    /// `struct mbuf *m_copypacket(struct mbuf *m, int how)`
    fn m_copypacket(m: *mut mbuf, how: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_copypacket", c);
        if !check_live(m, "m_copypacket", c, Use::Access) {
            return null_mut();
        }
        if flags(m) & M_PKTHDR == 0 {
            violation(format!("m_copypacket({m:p}) from {c}: no packet header"));
        }
        copym(m, 0, M_COPYALL as c_int, w, c)
    }

    /// `struct mbuf *m_dup(const struct mbuf *m, int how)`
    fn m_dup(m: *const mbuf, how: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_dup", c);
        dup(m.cast_mut(), w, how, c)
    }

    /// `int m_dup_pkthdr(struct mbuf *to, const struct mbuf *from, int how)`
    fn m_dup_pkthdr(to: *mut mbuf, from: *const mbuf, how: c_int) -> c_int [c] {
        wait_of(how, "m_dup_pkthdr", c);
        if !check_live(to, "m_dup_pkthdr", c, Use::Access)
            || !check_live(from.cast_mut(), "m_dup_pkthdr", c, Use::Access)
        {
            return 0;
        }
        dup_pkthdr(to, from.cast_mut(), how, c)
    }

    /// `void m_move_pkthdr(struct mbuf *to, struct mbuf *from)`
    fn m_move_pkthdr(to: *mut mbuf, from: *mut mbuf) [c] {
        if check_live(to, "m_move_pkthdr", c, Use::Access)
            && check_live(from, "m_move_pkthdr", c, Use::Access)
        {
            move_pkthdr(to, from, c);
        }
    }

    /// `void m_demote_pkthdr(struct mbuf *m)`
    fn m_demote_pkthdr(m: *mut mbuf) [c] {
        if check_live(m, "m_demote_pkthdr", c, Use::Access) {
            demote_pkthdr(m, c);
        }
    }

    /// `void m_demote(struct mbuf *m0, int all, int flags)`
    fn m_demote(m0: *mut mbuf, all: c_int, fl: c_int) [c] {
        let ch = chain(m0, "m_demote", c);
        for (i, &m) in ch.iter().enumerate() {
            if i == 0 && all == 0 {
                continue;
            }
            if !nextpkt(m).is_null() {
                violation(format!(
                    "m_demote: m_nextpkt in m {m:p}, m0 {m0:p} (from {c})"
                ));
            }
            if flags(m) & M_PKTHDR != 0 {
                demote_pkthdr(m, c);
            }
            set_flags(m, flags(m) & (M_EXT | M_RDONLY | M_NOFREE | fl as u32));
        }
    }

    /// `int m_pkthdr_init(struct mbuf *m, int how)`
    fn m_pkthdr_init(m: *mut mbuf, _how: c_int) -> c_int [c] {
        if check_live(m, "m_pkthdr_init", c, Use::Access) {
            pkthdr_init(m);
        }
        0
    }

    /// `u_int m_length(struct mbuf *m, struct mbuf **last)`
    fn m_length(m: *mut mbuf, last: *mut *mut mbuf) -> c_uint [c] {
        length(m, last, c)
    }

    /// `u_int m_fixhdr(struct mbuf *m)`
    fn m_fixhdr(m: *mut mbuf) -> c_uint [c] {
        fixhdr(m, c)
    }

    /// `void m_adj(struct mbuf *m, int len)`
    fn m_adj(m: *mut mbuf, l: c_int) [c] {
        adj(m, l, c);
    }

    /// `void m_cat(struct mbuf *m, struct mbuf *n)`
    fn m_cat(m: *mut mbuf, n: *mut mbuf) [c] {
        cat(m, n, c);
    }

    /// `int m_append(struct mbuf *m, int len, c_caddr_t cp)`
    fn m_append(m: *mut mbuf, l: c_int, cp: c_caddr_t) -> c_int [c] {
        append(m, l, cp.cast(), c)
    }

    /// `struct mbuf *m_devget(char *buf, int totlen, int off, struct ifnet *ifp, void (*copy)(char *, caddr_t, u_int))`
    fn m_devget(
        buf: *mut c_char,
        totlen: c_int,
        off: c_int,
        ifp: *mut ifnet,
        copy: DevCopy,
    ) -> *mut mbuf [c] {
        devget(buf, totlen, off, ifp, copy, c)
    }

    /// `struct mbuf *m_uiotombuf(struct uio *uio, int how, int len, int lspace, int flags)`
    fn m_uiotombuf(u: *mut uio, how: c_int, l: c_int, lspace: c_int, fl: c_int) -> *mut mbuf [c] {
        let w = wait_of(how, "m_uiotombuf", c);
        uiotombuf(u, w, l, lspace, fl, c)
    }

    /// `int m_mbuftouio(struct uio *uio, const struct mbuf *m, int len)`
    fn m_mbuftouio(u: *mut uio, m: *const mbuf, l: c_int) -> c_int [c] {
        mbuftouio(u, m.cast_mut(), l, c)
    }

    /// `int uiomove(void *cp, int n, struct uio *uio)`
    fn uiomove(cp: *mut c_void, n: c_int, u: *mut uio) -> c_int [c] {
        probe::copy("uiomove", n.max(0) as usize, c);
        uiomove_inner(cp.cast(), n, u)
    }

    /// `struct m_tag *m_tag_alloc(uint32_t cookie, uint16_t type, int len, int wait)`
    fn m_tag_alloc(cookie: u32, ty: u16, l: c_int, wait: c_int) -> *mut m_tag [c] {
        tag_alloc(cookie, ty, l, wait, c)
    }

    /// `void m_tag_delete(struct mbuf *m, struct m_tag *t)`
    fn m_tag_delete(m: *mut mbuf, t: *mut m_tag) [c] {
        tag_delete(m, t, c);
    }

    /// `void m_tag_delete_chain(struct mbuf *m, struct m_tag *t)`
    fn m_tag_delete_chain(m: *mut mbuf, t: *mut m_tag) [c] {
        if !m.is_null() && !check_live(m, "m_tag_delete_chain", c, Use::Access) {
            return;
        }
        tag_delete_chain(m, t, c);
    }

    /// `struct m_tag *m_tag_locate(struct mbuf *m, uint32_t cookie, uint16_t type, struct m_tag *t)`
    fn m_tag_locate(m: *mut mbuf, cookie: u32, ty: u16, t: *mut m_tag) -> *mut m_tag [c] {
        tag_locate(m, cookie, ty, t, c)
    }

    /// `void m_tag_free_default(struct m_tag *t)`
    fn m_tag_free_default(t: *mut m_tag) [c] {
        tag_free_default(t, c);
    }

    /// `struct m_tag *m_tag_copy(struct m_tag *t, int how)`
    fn m_tag_copy(t: *mut m_tag, how: c_int) -> *mut m_tag [c] {
        tag_copy(t, how, c)
    }

    /// `int m_tag_copy_chain(struct mbuf *to, const struct mbuf *from, int how)`
    fn m_tag_copy_chain(to: *mut mbuf, from: *const mbuf, how: c_int) -> c_int [c] {
        tag_copy_chain(to, from.cast_mut(), how, c)
    }

    /// `void m_tag_delete_nonpersistent(struct mbuf *m)`
    fn m_tag_delete_nonpersistent(m: *mut mbuf) [c] {
        tag_delete_nonpersistent(m, c);
    }

    /// `void *uma_zalloc_arg(uma_zone_t zone, void *arg, int flags)` (mbuf zones only)
    fn uma_zalloc_arg(zone: uma_zone_t, arg: *mut c_void, fl: c_int) -> *mut c_void [c] {
        zalloc(zone, arg, fl, c)
    }

    /// `void uma_zfree_arg(uma_zone_t zone, void *item, void *udata)` (mbuf zones only)
    fn uma_zfree_arg(zone: uma_zone_t, item: *mut c_void, _udata: *mut c_void) [c] {
        zfree(zone, item, c);
    }
}

/// Exports mbuf(9), mbuf_tags(9), `uiomove` and the mbuf zones of uma(9).
pub fn register(ex: &mut Exports) {
    abi::register(ex);
    let (zone_vars, hdr_vars) = with(|s| (s.zone_vars, s.hdr_vars));
    for (i, z) in ZONES.iter().enumerate() {
        ex.data(z.1, zone_vars[i]);
    }
    for (name, addr) in ["max_linkhdr", "max_protohdr", "max_hdr"]
        .into_iter()
        .zip(hdr_vars)
    {
        ex.data(name, addr);
    }
}
