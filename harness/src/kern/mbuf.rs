//! mbuf(9), mbuf_tags(9) and the mbuf zones of uma(9), with ownership checks.
//!
//! Mbufs have the FreeBSD 15 layout (`fbsd_sys::mbuf`, 256 bytes): module
//! code reads and writes `m_next`, `m_nextpkt`, `m_data`, `m_len`,
//! `m_type`/`m_flags`, the packet header and its inline tag list directly.
//! Storage comes from the host heap and is tracked in side tables:
//!
//! * every mbuf and cluster has a serial number and the calling site of the
//!   allocation (the raw return address into module code, or a harness
//!   `file:line`);
//! * a freed mbuf or cluster is filled with `0xdeadc0de` and quarantined
//!   (never reused while quarantined), so a second free is reported as a
//!   double free and a write after free is found when the storage leaves the
//!   quarantine or at [`check_all`];
//! * every function that takes a chain checks each mbuf it touches is live.
//!
//! Semantics follow FreeBSD 15 `kern_mbuf.c`, `uipc_mbuf.c` and
//! `uipc_mbuf2.c` (read for facts; this is an independent implementation):
//! `m_pullup`/`m_prepend` free the chain on failure, `m_defrag` does not,
//! `m_copym` shares clusters by reference count, tags are freed through their
//! `m_tag_free` hook when their mbuf is freed. `M_NOWAIT` allocations consult
//! [`crate::kern::fault`] (`Site::Mbuf`; tags: `Site::Tag`).

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, c_short, c_uint, c_void};
use std::mem::{offset_of, size_of};
use std::ptr::{self, null_mut};
use std::sync::{Mutex, MutexGuard};

use fbsd_sys::{
    c_caddr_t, caddr_t, ifnet, iovec, m_ext, m_tag, mb_args, mbuf,
    mbuf__bindgen_ty_3__bindgen_ty_1, pkthdr, uio, uma_zone, uma_zone_t, EXT_CLUSTER,
    EXT_DISPOSABLE, EXT_EXTREF, EXT_FLAG_EMBREF, EXT_JUMBO16, EXT_JUMBO9, EXT_JUMBOP, EXT_MOD_TYPE,
    EXT_NET_DRV, EXT_PACKET, EXT_RXRING, EXT_SFBUF, MTAG_PERSISTENT, MT_DATA, MT_NOINIT, M_COPYALL,
    M_COPYFLAGS, M_EOR, M_EXT, M_EXTPG, M_NOFREE, M_NOWAIT, M_PKTHDR, M_RDONLY, M_WAITOK,
    UIO_NOCOPY, UIO_READ,
};

use super::entry::kernel_functions;
use super::fault::{self, Caller, Site};
use super::malloc::{self, assert_may_sleep, fill_poison, poison_damage, TAG_TYPE};
use super::probe;
use super::{kernel_panic, violation};
use crate::exports::Exports;

// ---------------------------------------------------------------------------
// Layout (from fbsd_sys) and constants

/// `MSIZE`: size of an mbuf.
pub const MSIZE: usize = fbsd_sys::MSIZE as usize;
const OFF_DAT: usize = offset_of!(mbuf, __bindgen_anon_3);
const OFF_EXT: usize = OFF_DAT + offset_of!(mbuf__bindgen_ty_3__bindgen_ty_1, __bindgen_anon_2);
/// `MLEN`: data bytes in a plain mbuf.
pub const MLEN: usize = MSIZE - OFF_DAT;
/// `MHLEN`: data bytes in a packet-header mbuf.
pub const MHLEN: usize = MSIZE - OFF_EXT;
/// `MINCLSIZE`: smallest amount of data put into a cluster.
pub const MINCLSIZE: usize = MHLEN + 1;
/// `MCLBYTES`: size of a standard cluster.
pub const MCLBYTES: usize = fbsd_sys::MCLBYTES as usize;
/// `MJUMPAGESIZE`: size of a page-sized jumbo cluster.
pub const MJUMPAGESIZE: usize = fbsd_sys::MJUMPAGESIZE as usize;
/// `MJUM9BYTES`.
pub const MJUM9BYTES: usize = fbsd_sys::MJUM9BYTES as usize;
/// `MJUM16BYTES`.
pub const MJUM16BYTES: usize = fbsd_sys::MJUM16BYTES as usize;
/// Largest `m_tag_len` (a `u_int16_t`).
pub const MTAG_MAXLEN: c_int = u16::MAX as c_int;
/// `max_linkhdr` of the modelled kernel (Ethernet).
pub const MAX_LINKHDR: u32 = 16;
/// `max_protohdr` of the modelled kernel (IPv6 + TCP).
pub const MAX_PROTOHDR: u32 = 60;
/// Bytes of `struct m_ext` that `mb_dupcl` copies for shared clusters
/// (everything before `ext_free`).
const EXT_COPYLEN: usize = offset_of!(m_ext, ext_free);
/// The reference-count word of an mbuf (`m_ext.ext_count`), kept intact while
/// a freed mbuf still carries the count for clusters shared with it.
const REF_HOLE: (usize, usize) = (OFF_EXT + offset_of!(m_ext, __bindgen_anon_1), 8);

const _: () = {
    assert!(size_of::<mbuf>() == MSIZE);
    assert!(MLEN == 224 && MHLEN == 160);
    assert!(size_of::<m_tag>() == 24);
    assert!(OFF_EXT + size_of::<m_ext>() <= MSIZE);
};

const QUARANTINE_DEFAULT: usize = 64 << 20;
const TAG_WALK_LIMIT: usize = 1 << 16;
const CHAIN_WALK_LIMIT: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Field access

/// Raw field accessors for `struct mbuf` and `struct m_tag`.
///
/// # Safety
/// Every function requires a pointer to a readable (and, for setters,
/// writable) object of the right type.
#[allow(clippy::missing_safety_doc)]
pub mod fields {
    use super::*;

    pub unsafe fn next(m: *const mbuf) -> *mut mbuf {
        (*m).__bindgen_anon_1.m_next
    }
    pub unsafe fn set_next(m: *mut mbuf, n: *mut mbuf) {
        (*m).__bindgen_anon_1.m_next = n;
    }
    pub unsafe fn nextpkt(m: *const mbuf) -> *mut mbuf {
        (*m).__bindgen_anon_2.m_nextpkt
    }
    pub unsafe fn set_nextpkt(m: *mut mbuf, n: *mut mbuf) {
        (*m).__bindgen_anon_2.m_nextpkt = n;
    }
    pub unsafe fn data(m: *const mbuf) -> *mut u8 {
        (*m).m_data.cast()
    }
    pub unsafe fn set_data(m: *mut mbuf, d: *mut u8) {
        (*m).m_data = d.cast();
    }
    pub unsafe fn len(m: *const mbuf) -> i32 {
        (*m).m_len
    }
    pub unsafe fn set_len(m: *mut mbuf, l: i32) {
        (*m).m_len = l;
    }
    pub unsafe fn flags(m: *const mbuf) -> u32 {
        mbuf::m_flags_raw(m)
    }
    pub unsafe fn set_flags(m: *mut mbuf, f: u32) {
        mbuf::set_m_flags_raw(m, f);
    }
    pub unsafe fn mtype(m: *const mbuf) -> u32 {
        mbuf::m_type_raw(m)
    }
    pub unsafe fn set_mtype(m: *mut mbuf, t: u32) {
        mbuf::set_m_type_raw(m, t);
    }
    /// `&m->m_dat[0]`.
    pub unsafe fn dat(m: *mut mbuf) -> *mut u8 {
        m.cast::<u8>().add(OFF_DAT)
    }
    /// `&m->m_pktdat[0]`.
    pub unsafe fn pktdat(m: *mut mbuf) -> *mut u8 {
        m.cast::<u8>().add(OFF_EXT)
    }
    /// `&m->m_pkthdr`.
    pub unsafe fn ph(m: *mut mbuf) -> *mut pkthdr {
        m.cast::<u8>().add(OFF_DAT).cast()
    }
    /// `&m->m_ext`.
    pub unsafe fn ext(m: *mut mbuf) -> *mut m_ext {
        m.cast::<u8>().add(OFF_EXT).cast()
    }
    pub unsafe fn ph_len(m: *mut mbuf) -> i32 {
        (*ph(m)).len
    }
    pub unsafe fn set_ph_len(m: *mut mbuf, l: i32) {
        (*ph(m)).len = l;
    }
    pub unsafe fn tags_first(m: *mut mbuf) -> *mut m_tag {
        (*ph(m)).tags.slh_first
    }
    pub unsafe fn set_tags_first(m: *mut mbuf, t: *mut m_tag) {
        (*ph(m)).tags.slh_first = t;
    }
    pub unsafe fn ext_buf(m: *mut mbuf) -> *mut u8 {
        (*ext(m)).__bindgen_anon_2.__bindgen_anon_1.ext_buf.cast()
    }
    pub unsafe fn ext_size(m: *mut mbuf) -> u32 {
        (*ext(m)).ext_size
    }
    pub unsafe fn ext_type(m: *mut mbuf) -> u32 {
        m_ext::ext_type_raw(ext(m))
    }
    pub unsafe fn ext_flags(m: *mut mbuf) -> u32 {
        m_ext::ext_flags_raw(ext(m))
    }
    /// The reference count of `m`'s external storage (`m_extrefcnt` pointer).
    pub unsafe fn refcnt_ptr(m: *mut mbuf) -> *mut u32 {
        let e = ext(m);
        if ext_flags(m) & EXT_FLAG_EMBREF != 0 {
            ptr::addr_of_mut!((*e).__bindgen_anon_1.ext_count)
        } else {
            (*e).__bindgen_anon_1.ext_cnt
        }
    }
    pub unsafe fn tag_next(t: *const m_tag) -> *mut m_tag {
        (*t).m_tag_link.sle_next
    }
    pub unsafe fn set_tag_next(t: *mut m_tag, n: *mut m_tag) {
        (*t).m_tag_link.sle_next = n;
    }
    /// The payload after the tag header.
    pub unsafe fn tag_data(t: *mut m_tag) -> *mut u8 {
        t.add(1).cast()
    }
}
use fields::*;

/// `M_START(m)`.
///
/// # Safety
/// `m` must point at a readable mbuf.
pub unsafe fn m_start(m: *mut mbuf) -> *mut u8 {
    let f = flags(m);
    if f & M_EXTPG != 0 {
        null_mut()
    } else if f & M_EXT != 0 {
        ext_buf(m)
    } else if f & M_PKTHDR != 0 {
        pktdat(m)
    } else {
        dat(m)
    }
}

/// `M_SIZE(m)`.
///
/// # Safety
/// `m` must point at a readable mbuf.
pub unsafe fn m_size(m: *mut mbuf) -> usize {
    let f = flags(m);
    if f & M_EXT != 0 {
        ext_size(m) as usize
    } else if f & M_PKTHDR != 0 {
        MHLEN
    } else {
        MLEN
    }
}

/// `M_WRITABLE(m)`.
///
/// # Safety
/// `m` must point at a readable mbuf (with a valid reference count if M_EXT).
pub unsafe fn m_writable(m: *mut mbuf) -> bool {
    let f = flags(m);
    f & (M_RDONLY | M_EXTPG) == 0 && (f & M_EXT == 0 || *refcnt_ptr(m) == 1)
}

/// `M_LEADINGSPACE(m)`.
///
/// # Safety
/// As [`m_writable`].
pub unsafe fn leadingspace(m: *mut mbuf) -> isize {
    if m_writable(m) {
        data(m).offset_from(m_start(m))
    } else {
        0
    }
}

/// `M_TRAILINGROOM(m)`.
///
/// # Safety
/// `m` must point at a readable mbuf.
pub unsafe fn trailingroom(m: *mut mbuf) -> isize {
    let end = m_start(m).add(m_size(m));
    end.offset_from(data(m)) - len(m) as isize
}

/// `M_TRAILINGSPACE(m)`.
///
/// # Safety
/// As [`m_writable`].
pub unsafe fn trailingspace(m: *mut mbuf) -> isize {
    if m_writable(m) {
        trailingroom(m)
    } else {
        0
    }
}

/// `M_ALIGN(m, len)`: place `len` bytes at the end of a fresh mbuf's storage.
///
/// # Safety
/// `m` must point at a writable mbuf whose `m_data` is `M_START(m)`.
pub unsafe fn m_align(m: *mut mbuf, len: usize) {
    let adjust = m_size(m).saturating_sub(len) & !(size_of::<libc::c_long>() - 1);
    set_data(m, data(m).add(adjust));
}

// ---------------------------------------------------------------------------
// Zones

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Zone {
    Mbuf,
    Pack,
    Clust,
    Jumbop,
    Jumbo9,
    Jumbo16,
}

const ZONES: [(Zone, &str, &str); 6] = [
    (Zone::Mbuf, "zone_mbuf", "mbuf"),
    (Zone::Pack, "zone_pack", "mbuf_packet"),
    (Zone::Clust, "zone_clust", "mbuf_cluster"),
    (Zone::Jumbop, "zone_jumbop", "mbuf_jumbo_page"),
    (Zone::Jumbo9, "zone_jumbo9", "mbuf_jumbo_9k"),
    (Zone::Jumbo16, "zone_jumbo16", "mbuf_jumbo_16k"),
];

impl Zone {
    fn cluster_size(self) -> usize {
        match self {
            Zone::Mbuf => MSIZE,
            Zone::Pack | Zone::Clust => MCLBYTES,
            Zone::Jumbop => MJUMPAGESIZE,
            Zone::Jumbo9 => MJUM9BYTES,
            Zone::Jumbo16 => MJUM16BYTES,
        }
    }
    fn ext_type(self) -> u32 {
        match self {
            Zone::Pack => EXT_PACKET,
            Zone::Jumbop => EXT_JUMBOP,
            Zone::Jumbo9 => EXT_JUMBO9,
            Zone::Jumbo16 => EXT_JUMBO16,
            _ => EXT_CLUSTER,
        }
    }
    fn for_size(size: usize) -> Option<Zone> {
        match size {
            MCLBYTES => Some(Zone::Clust),
            MJUMPAGESIZE => Some(Zone::Jumbop),
            MJUM9BYTES => Some(Zone::Jumbo9),
            MJUM16BYTES => Some(Zone::Jumbo16),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// State

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MState {
    Live,
    /// Freed by its owner, but still carrying the reference count of a
    /// cluster other mbufs share (FreeBSD keeps such an mbuf until the last
    /// reference goes).
    Zombie,
    Freed,
}

struct MRec {
    serial: u64,
    site: Caller,
    state: MState,
    free_site: Caller,
    reported: bool,
}

struct CRec {
    size: usize,
    serial: u64,
    site: Caller,
    live: bool,
    owner: usize,
    free_site: Caller,
    reported: bool,
}

struct State {
    mbufs: HashMap<usize, MRec>,
    clusters: HashMap<usize, CRec>,
    /// Freed mbufs (`false`) and clusters (`true`), oldest first.
    order: VecDeque<(usize, bool)>,
    qbytes: usize,
    qlimit: usize,
    serial: u64,
    /// Zone objects (what `zone_mbuf` etc. point at), by [`ZONES`] index.
    zones: [usize; 6],
    /// The exported `uma_zone_t` variables, by [`ZONES`] index.
    zone_vars: [usize; 6],
    /// Exported `u_int` variables: max_linkhdr, max_protohdr, max_hdr.
    hdr_vars: [usize; 3],
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut g = lock();
    f(g.get_or_insert_with(State::new))
}

impl State {
    fn new() -> State {
        let mut zones = [0usize; 6];
        let mut zone_vars = [0usize; 6];
        for i in 0..ZONES.len() {
            let z = crate::arena::alloc(64, 64);
            let v = crate::arena::alloc(size_of::<uma_zone_t>(), 8).cast::<uma_zone_t>();
            // SAFETY: fresh arena objects owned by the harness; the zone
            // object is opaque to modules (they only pass its address back).
            unsafe {
                z.cast::<u64>().write(0x7a6f_6e65_0000_0000 | i as u64);
                v.write(z.cast::<uma_zone>());
            }
            zones[i] = z as usize;
            zone_vars[i] = v as usize;
        }
        let mut hdr_vars = [0usize; 3];
        for (i, val) in [MAX_LINKHDR, MAX_PROTOHDR, MAX_LINKHDR + MAX_PROTOHDR]
            .into_iter()
            .enumerate()
        {
            let v = crate::arena::alloc(4, 4).cast::<c_uint>();
            // SAFETY: a fresh 4-byte arena object.
            unsafe { v.write(val) };
            hdr_vars[i] = v as usize;
        }
        State {
            mbufs: HashMap::new(),
            clusters: HashMap::new(),
            order: VecDeque::new(),
            qbytes: 0,
            qlimit: QUARANTINE_DEFAULT,
            serial: 0,
            zones,
            zone_vars,
            hdr_vars,
        }
    }

    fn zone_of(&self, z: uma_zone_t) -> Option<Zone> {
        self.zones
            .iter()
            .position(|&a| a == z as usize)
            .map(|i| ZONES[i].0)
    }

    fn evict(&mut self) -> Vec<Damage> {
        let mut out = Vec::new();
        while self.qbytes > self.qlimit {
            let Some((p, is_cl)) = self.order.pop_front() else {
                break;
            };
            if is_cl {
                let Some(c) = self.clusters.remove(&p) else {
                    continue;
                };
                self.qbytes -= c.size;
                if !c.reported {
                    out.extend(cluster_damage(p, &c));
                }
                // SAFETY: allocated with this layout; no table references it now.
                unsafe { std::alloc::dealloc(p as *mut u8, cluster_layout(c.size)) };
            } else {
                let Some(r) = self.mbufs.remove(&p) else {
                    continue;
                };
                self.qbytes -= MSIZE;
                if !r.reported {
                    out.extend(mbuf_damage(p, &r));
                }
                // SAFETY: allocated with this layout; no table references it now.
                unsafe { std::alloc::dealloc(p as *mut u8, mbuf_layout()) };
            }
        }
        out
    }
}

fn mbuf_layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(MSIZE, MSIZE).expect("mbuf layout")
}

fn cluster_layout(size: usize) -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(size, size.next_power_of_two().min(4096))
        .expect("cluster layout")
}

/// Poison damage found in freed storage (formatted once no lock is held:
/// describing a `Caller` may call the loader's resolver).
struct Damage {
    what: &'static str,
    p: usize,
    size: usize,
    serial: u64,
    site: Caller,
    free_site: Caller,
    off: usize,
    count: usize,
}

impl Damage {
    fn message(&self) -> String {
        format!(
            "use after free: {} byte(s) of the {}-byte {} {:#x} (#{}) were written after it was freed \
             (first at offset {}); allocated at {}, freed at {}",
            self.count, self.size, self.what, self.p, self.serial, self.off, self.site, self.free_site
        )
    }
}

fn mbuf_damage(p: usize, r: &MRec) -> Option<Damage> {
    // SAFETY: quarantined mbufs stay allocated until evicted.
    let (off, count) = unsafe { poison_damage(p as *const u8, MSIZE, 0) }?;
    Some(Damage {
        what: "mbuf",
        p,
        size: MSIZE,
        serial: r.serial,
        site: r.site,
        free_site: r.free_site,
        off,
        count,
    })
}

fn cluster_damage(p: usize, c: &CRec) -> Option<Damage> {
    // SAFETY: quarantined clusters stay allocated until evicted.
    let (off, count) = unsafe { poison_damage(p as *const u8, c.size, 0) }?;
    Some(Damage {
        what: "cluster",
        p,
        size: c.size,
        serial: c.serial,
        site: c.site,
        free_site: c.free_site,
        off,
        count,
    })
}

fn report(found: Vec<Damage>) -> Vec<String> {
    let msgs: Vec<String> = found.iter().map(Damage::message).collect();
    for m in &msgs {
        violation(m.clone());
    }
    msgs
}

/// Wait flag of an allocation after the `how` argument was checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    NoWait,
    WaitOk,
    /// Harness-internal allocation that never fails and is not checked.
    Host,
}

/// Checks an `M_NOWAIT`/`M_WAITOK` argument (`MBUF_CHECKSLEEP` included).
fn wait_of(how: c_int, what: &str, c: Caller) -> How {
    let h = how & (M_NOWAIT | M_WAITOK) as c_int;
    if h == M_NOWAIT as c_int {
        How::NoWait
    } else {
        if h != M_WAITOK as c_int {
            violation(format!(
                "{what}(how={how:#x}) from {c}: exactly one of M_NOWAIT and M_WAITOK must be given"
            ));
        }
        assert_may_sleep(what);
        How::WaitOk
    }
}

/// The failure-injection gate of one zone allocation.
fn gate(w: How, c: Caller) -> bool {
    w != How::NoWait || !fault::should_fail_at(&Site::Mbuf, c)
}

// ---------------------------------------------------------------------------
// Liveness

#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Access,
    Free,
}

/// Reports and returns false unless `m` is a live mbuf.
fn check_live(m: *mut mbuf, what: &str, c: Caller, how: Use) -> bool {
    if m.is_null() {
        kernel_panic(&format!(
            "{what}: NULL mbuf from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    let st = with(|s| {
        s.mbufs
            .get(&(m as usize))
            .map(|r| (r.state, r.serial, r.site, r.free_site))
    });
    match st {
        Some((MState::Live, ..)) => true,
        Some((_, serial, site, free_site)) => {
            let kind = if how == Use::Free {
                "double free"
            } else {
                "use after free"
            };
            violation(format!(
                "{kind}: {what}({m:p}) from {c}: mbuf #{serial} allocated at {site} was already \
                 freed at {free_site}"
            ));
            false
        }
        None => {
            violation(format!(
                "{what}({m:p}) from {c}: not an mbuf from the mbuf allocator"
            ));
            false
        }
    }
}

/// Checks that `n` bytes at offset `off` of `m`'s data lie inside its storage.
/// Safety: `m` must be a live (readable) mbuf.
unsafe fn seg_ok(m: *mut mbuf, off: usize, n: usize, what: &str, c: Caller) -> bool {
    let start = m_start(m);
    if start.is_null() {
        violation(format!(
            "{what}({m:p}) from {c}: unmapped (M_EXTPG) mbufs are not supported"
        ));
        return false;
    }
    let lo = start as usize;
    let hi = lo + m_size(m);
    let d = data(m) as usize;
    if d < lo || d + off + n > hi || len(m) < 0 {
        violation(format!(
            "{what}({m:p}) from {c}: m_data {d:#x} + m_len {} lies outside the mbuf's storage \
             [{lo:#x}, {hi:#x})",
            len(m)
        ));
        return false;
    }
    true
}

// ---------------------------------------------------------------------------
// Allocation primitives

fn new_mbuf(c: Caller) -> *mut mbuf {
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

fn new_cluster(size: usize, owner: *mut mbuf, c: Caller) -> *mut u8 {
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
unsafe fn init_mbuf(m: *mut mbuf, mtype: u32, fl: u32) {
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
unsafe fn pkthdr_init(m: *mut mbuf) {
    set_data(m, pktdat(m));
    ptr::write_bytes(ph(m), 0, 1);
}

/// Attaches cluster `buf` of `size` bytes to `m` (`mb_ctor_clust`).
/// Safety: `m` must be a writable mbuf without M_EXT, `buf` a fresh cluster of `size` bytes.
unsafe fn attach_cluster(m: *mut mbuf, buf: *mut u8, size: usize, ext_type: u32) {
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
fn zalloc_mbuf(w: How, mtype: u32, fl: u32, c: Caller) -> *mut mbuf {
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
fn zalloc_pack(w: How, mtype: u32, fl: u32, c: Caller) -> *mut mbuf {
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
fn zalloc_cluster(zone: Zone, w: How, m: *mut mbuf, c: Caller) -> *mut u8 {
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
fn getjcl(w: How, mtype: u32, fl: u32, size: usize, c: Caller) -> *mut mbuf {
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
fn retire_mbuf(m: *mut mbuf, c: Caller, zombie: bool) {
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
fn finalize_zombie(m: *mut mbuf) {
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
unsafe fn fill_poison_phase(p: *mut u8, len: usize, phase: usize) {
    let pat = malloc::POISON.to_ne_bytes();
    for i in 0..len {
        *p.add(i) = pat[(i + phase) % 4];
    }
}

/// Frees cluster `buf` (zone free of a cluster).
fn free_cluster(buf: *mut u8, what: &str, c: Caller) {
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

// ---------------------------------------------------------------------------
// Freeing

/// `uma_zfree(zone_mbuf, m)` with the zone destructor (`mb_dtor_mbuf`).
fn zfree_mbuf(m: *mut mbuf, c: Caller) {
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
fn stray_tag_check(m: *mut mbuf, c: Caller) {
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
fn free_ext(m: *mut mbuf, c: Caller) {
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
fn finish_ref_holder(m: *mut mbuf, mref: *mut mbuf, c: Caller) {
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
fn free_one(m: *mut mbuf, c: Caller) -> *mut mbuf {
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
fn freem(mut m: *mut mbuf, c: Caller) {
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

// ---------------------------------------------------------------------------
// Tags

fn call_tag_free(t: *mut m_tag, c: Caller) {
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
unsafe fn tag_unlink(m: *mut mbuf, t: *mut m_tag, c: Caller) {
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
fn tag_delete(m: *mut mbuf, t: *mut m_tag, c: Caller) {
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

/// `m_tag_delete_chain(m, t)`.
fn tag_delete_chain(m: *mut mbuf, t: *mut m_tag, c: Caller) {
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
        // SAFETY: `p` is on `m`'s tag list.
        let q = unsafe { tag_next(p) };
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

fn tag_type() -> *mut fbsd_sys::malloc_type {
    malloc::harness_type(TAG_TYPE)
}

/// `m_tag_alloc(cookie, type, len, wait)`.
fn tag_alloc(cookie: u32, ttype: u16, tlen: c_int, wait: c_int, c: Caller) -> *mut m_tag {
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
fn tag_owner(t: *mut m_tag) -> Option<usize> {
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
fn tag_free_default(t: *mut m_tag, c: Caller) {
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
fn tag_locate(m: *mut mbuf, cookie: u32, ttype: u16, t: *mut m_tag, c: Caller) -> *mut m_tag {
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
fn tag_copy(t: *mut m_tag, how: c_int, c: Caller) -> *mut m_tag {
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
fn tag_copy_chain(to: *mut mbuf, from: *mut mbuf, how: c_int, c: Caller) -> c_int {
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
fn tag_delete_nonpersistent(m: *mut mbuf, c: Caller) {
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

// ---------------------------------------------------------------------------
// Packet headers

/// `m_move_pkthdr(to, from)` (MAC kernel: `to`'s tags are deleted first).
/// Safety: `to` and `from` must be live mbufs, `from` with M_PKTHDR.
unsafe fn move_pkthdr(to: *mut mbuf, from: *mut mbuf, c: Caller) {
    if flags(to) & M_PKTHDR != 0 && !tags_first(to).is_null() {
        tag_delete_chain(to, null_mut(), c);
    }
    set_flags(to, (flags(from) & M_COPYFLAGS) | (flags(to) & M_EXT));
    if flags(to) & M_EXT == 0 {
        set_data(to, pktdat(to));
    }
    ptr::copy_nonoverlapping(ph(from), ph(to), 1);
    set_tags_first(from, null_mut());
    set_flags(from, flags(from) & !M_PKTHDR);
}

/// `m_dup_pkthdr(to, from, how)`: deep copy including tags; 1 or 0.
/// Safety: `to` and `from` must be live mbufs, `from` with M_PKTHDR.
unsafe fn dup_pkthdr(to: *mut mbuf, from: *mut mbuf, how: c_int, c: Caller) -> c_int {
    if flags(to) & M_PKTHDR != 0 && !tags_first(to).is_null() {
        tag_delete_chain(to, null_mut(), c);
    }
    set_flags(to, (flags(from) & M_COPYFLAGS) | (flags(to) & M_EXT));
    if flags(to) & M_EXT == 0 {
        set_data(to, pktdat(to));
    }
    ptr::copy_nonoverlapping(ph(from), ph(to), 1);
    set_tags_first(to, null_mut());
    tag_copy_chain(to, from, how, c)
}

/// `m_demote_pkthdr(m)`.
/// Safety: `m` must be a live mbuf.
unsafe fn demote_pkthdr(m: *mut mbuf, c: Caller) {
    if flags(m) & M_PKTHDR == 0 {
        violation(format!(
            "m_demote_pkthdr: no mbuf {m:p} packet header (from {c})"
        ));
        return;
    }
    tag_delete_chain(m, null_mut(), c);
    set_flags(m, flags(m) & !M_PKTHDR);
    ptr::write_bytes(ph(m), 0, 1);
}

// ---------------------------------------------------------------------------
// Cluster sharing

/// `mb_dupcl(n, m)`: `n` shares `m`'s external storage.
/// Safety: `m` must be a live M_EXT mbuf, `n` a live mbuf without M_EXT.
unsafe fn dupcl(n: *mut mbuf, m: *mut mbuf) {
    let src = ext(m).cast::<u8>();
    let dst = ext(n).cast::<u8>();
    if ext_type(m) == EXT_EXTREF {
        ptr::copy_nonoverlapping(src, dst, size_of::<m_ext>());
    } else {
        ptr::copy_nonoverlapping(src, dst, EXT_COPYLEN);
    }
    set_flags(n, flags(n) | M_EXT | (flags(m) & M_RDONLY));
    let refcnt;
    if ext_flags(m) & EXT_FLAG_EMBREF != 0 {
        refcnt = ptr::addr_of_mut!((*ext(m)).__bindgen_anon_1.ext_count);
        (*ext(n)).__bindgen_anon_1.ext_cnt = refcnt;
        m_ext::set_ext_flags_raw(ext(n), ext_flags(n) & !EXT_FLAG_EMBREF);
    } else {
        refcnt = (*ext(m)).__bindgen_anon_1.ext_cnt;
    }
    *refcnt += 1;
}

// ---------------------------------------------------------------------------
// Chain operations

/// Walks `m`'s chain checking each mbuf; returns them (stops at a bad one).
fn chain(m: *mut mbuf, what: &str, c: Caller) -> Vec<*mut mbuf> {
    let mut out = Vec::new();
    let mut p = m;
    while !p.is_null() {
        if !check_live(p, what, c, Use::Access) {
            break;
        }
        out.push(p);
        if out.len() > CHAIN_WALK_LIMIT {
            violation(format!("{what} from {c}: mbuf chain does not end (loop?)"));
            break;
        }
        // SAFETY: `p` is live.
        p = unsafe { next(p) };
    }
    out
}

fn length(m: *mut mbuf, last: *mut *mut mbuf, c: Caller) -> c_uint {
    let ch = chain(m, "m_length", c);
    // SAFETY: every mbuf of `ch` is live.
    let total: i64 = ch.iter().map(|&p| i64::from(unsafe { len(p) })).sum();
    if !last.is_null() {
        // SAFETY: the caller passes a writable `struct mbuf **`.
        unsafe { *last = ch.last().copied().unwrap_or(null_mut()) };
    }
    total as c_uint
}

fn fixhdr(m: *mut mbuf, c: Caller) -> c_uint {
    if !check_live(m, "m_fixhdr", c, Use::Access) {
        return 0;
    }
    let l = length(m, null_mut(), c);
    // SAFETY: `m` is live.
    unsafe {
        if flags(m) & M_PKTHDR == 0 {
            violation(format!(
                "m_fixhdr({m:p}) from {c}: mbuf has no packet header (m_pkthdr.len overwrites data)"
            ));
        }
        set_ph_len(m, l as i32);
    }
    l
}

fn copydata(m: *mut mbuf, off: c_int, len0: c_int, cp: *mut u8, c: Caller) {
    if off < 0 || len0 < 0 {
        kernel_panic(&format!(
            "m_copydata, negative off {off} or len {len0} (from {c})"
        ));
    }
    probe::copy("m_copydata", len0 as usize, c);
    let (mut off, mut n, mut p) = (off as usize, len0 as usize, m);
    let mut cp = cp;
    // SAFETY: each mbuf is checked live before use; copies are bounded by
    // m_len and checked against the mbuf's storage.
    unsafe {
        while off > 0 {
            if p.is_null() {
                kernel_panic(&format!(
                    "m_copydata, offset > size of mbuf chain (off {off}, len {len0}, from {c}; \
                     page fault on a NULL m_next)"
                ));
            }
            if !check_live(p, "m_copydata", c, Use::Access) {
                kernel_panic("m_copydata: freed or foreign mbuf in the chain");
            }
            if off < len(p).max(0) as usize {
                break;
            }
            off -= len(p).max(0) as usize;
            p = next(p);
        }
        while n > 0 {
            if p.is_null() {
                kernel_panic(&format!(
                    "m_copydata, length > size of mbuf chain ({len0} bytes at offset requested, from {c}; \
                     page fault on a NULL m_next)"
                ));
            }
            if !check_live(p, "m_copydata", c, Use::Access) {
                kernel_panic("m_copydata: freed or foreign mbuf in the chain");
            }
            let count = (len(p).max(0) as usize - off).min(n);
            if !seg_ok(p, off, count, "m_copydata", c) {
                kernel_panic("m_copydata: mbuf data outside its storage");
            }
            ptr::copy(data(p).add(off), cp, count);
            n -= count;
            cp = cp.add(count);
            off = 0;
            p = next(p);
        }
    }
}

fn copyback(m0: *mut mbuf, off: c_int, len0: c_int, cp: *const u8, c: Caller) {
    if m0.is_null() {
        return;
    }
    if !check_live(m0, "m_copyback", c, Use::Access) {
        return;
    }
    probe::copy("m_copyback", len0.max(0) as usize, c);
    let (mut off, mut n) = (off.max(0) as isize, len0.max(0) as isize);
    let mut cp = cp;
    let mut totlen: isize = 0;
    let mut m = m0;
    // SAFETY: every mbuf walked is checked live; writes are bounded by
    // m_len / trailing space of the mbuf written.
    unsafe {
        'out: {
            loop {
                let mlen = len(m) as isize;
                if off <= mlen {
                    break;
                }
                off -= mlen;
                totlen += mlen;
                if next(m).is_null() {
                    let nm = zalloc_mbuf(How::NoWait, mtype(m), 0, c);
                    if nm.is_null() {
                        break 'out;
                    }
                    ptr::write_bytes(data(nm), 0, MLEN);
                    set_len(nm, (MLEN as isize).min(n + off) as i32);
                    set_next(m, nm);
                }
                m = next(m);
                if !check_live(m, "m_copyback", c, Use::Access) {
                    return;
                }
            }
            while n > 0 {
                if next(m).is_null() && n > len(m) as isize - off {
                    let grow = (n - (len(m) as isize - off)).min(trailingspace(m));
                    set_len(m, len(m) + grow as i32);
                }
                let mlen = (len(m) as isize - off).min(n);
                if mlen > 0 {
                    if !seg_ok(m, off as usize, mlen as usize, "m_copyback", c) {
                        return;
                    }
                    ptr::copy(cp, data(m).add(off as usize), mlen as usize);
                }
                let mlen = mlen.max(0);
                cp = cp.add(mlen as usize);
                n -= mlen;
                totlen += mlen + off;
                off = 0;
                if n == 0 {
                    break;
                }
                if next(m).is_null() {
                    let nm = zalloc_mbuf(How::NoWait, mtype(m), 0, c);
                    if nm.is_null() {
                        break;
                    }
                    set_len(nm, (MLEN as isize).min(n) as i32);
                    set_next(m, nm);
                }
                m = next(m);
                if !check_live(m, "m_copyback", c, Use::Access) {
                    return;
                }
            }
        }
        if flags(m0) & M_PKTHDR != 0 && (ph_len(m0) as isize) < totlen {
            set_ph_len(m0, totlen as i32);
        }
    }
}

fn copym(m0: *mut mbuf, off0: c_int, len0: c_int, w: How, c: Caller) -> *mut mbuf {
    if off0 < 0 || len0 < 0 {
        kernel_panic(&format!(
            "m_copym, negative off {off0} or len {len0} (from {c})"
        ));
    }
    if !check_live(m0, "m_copym", c, Use::Access) {
        return null_mut();
    }
    let copyall = len0 as u32 == M_COPYALL;
    let mut off = off0;
    let mut n = len0;
    let mut m = m0;
    // SAFETY: every mbuf walked is checked live; data copies are bounded by m_len.
    unsafe {
        let mut copyhdr = off == 0 && flags(m) & M_PKTHDR != 0;
        while off > 0 {
            if m.is_null() {
                kernel_panic(&format!(
                    "m_copym, offset > size of mbuf chain (from {c}; page fault on a NULL m_next)"
                ));
            }
            if !check_live(m, "m_copym", c, Use::Access) {
                return null_mut();
            }
            if off < len(m) {
                break;
            }
            off -= len(m);
            m = next(m);
        }
        let mut top: *mut mbuf = null_mut();
        let mut tail: *mut mbuf = null_mut();
        let mut copied = 0usize;
        while n > 0 {
            if m.is_null() {
                if !copyall {
                    violation(format!(
                        "m_copym({m0:p}, {off0}, {len0}) from {c}: length > size of mbuf chain"
                    ));
                }
                break;
            }
            if !check_live(m, "m_copym", c, Use::Access) {
                freem(top, c);
                return null_mut();
            }
            let nm = zalloc_mbuf(w, mtype(m), if copyhdr { M_PKTHDR } else { 0 }, c);
            if nm.is_null() {
                freem(top, c);
                return null_mut();
            }
            if tail.is_null() {
                top = nm;
            } else {
                set_next(tail, nm);
            }
            tail = nm;
            if copyhdr {
                let how = if w == How::NoWait { M_NOWAIT } else { M_WAITOK } as c_int;
                if dup_pkthdr(nm, m, how, c) == 0 {
                    freem(top, c);
                    return null_mut();
                }
                if copyall {
                    set_ph_len(nm, ph_len(nm) - off0);
                } else {
                    set_ph_len(nm, len0);
                }
                copyhdr = false;
            }
            let l = n.min(len(m) - off);
            set_len(nm, l);
            if flags(m) & M_EXT != 0 {
                set_data(nm, data(m).add(off as usize));
                dupcl(nm, m);
            } else {
                if !seg_ok(m, off as usize, l.max(0) as usize, "m_copym", c) {
                    freem(top, c);
                    return null_mut();
                }
                ptr::copy_nonoverlapping(data(m).add(off as usize), data(nm), l.max(0) as usize);
                copied += l.max(0) as usize;
            }
            if !copyall {
                n -= l;
            }
            off = 0;
            m = next(m);
        }
        probe::copy("m_copym", copied, c);
        top
    }
}

fn dup(m: *mut mbuf, w: How, how: c_int, c: Caller) -> *mut mbuf {
    if m.is_null() {
        return null_mut();
    }
    if !check_live(m, "m_dup", c, Use::Access) {
        return null_mut();
    }
    // SAFETY: every source mbuf is checked live; copies are bounded by the
    // destination's capacity and the source's m_len.
    unsafe {
        if flags(m) & M_PKTHDR == 0 {
            violation(format!("m_dup({m:p}) from {c}: no mbuf packet header"));
        }
        let mut remain = ph_len(m) as isize;
        probe::copy("m_dup", remain.max(0) as usize, c);
        let mut moff = 0usize;
        let mut src = m;
        let mut top: *mut mbuf = null_mut();
        let mut tail: *mut mbuf = null_mut();
        while remain > 0 || top.is_null() {
            let (nm, mut nsize) = if remain >= MINCLSIZE as isize {
                (zalloc_pack(w, mtype(m), 0, c), MCLBYTES)
            } else {
                (zalloc_mbuf(w, mtype(m), 0, c), MLEN)
            };
            if nm.is_null() {
                freem(top, c);
                return null_mut();
            }
            if top.is_null() {
                if dup_pkthdr(nm, m, how, c) == 0 {
                    free_one(nm, c);
                    freem(top, c);
                    return null_mut();
                }
                if flags(nm) & M_EXT == 0 {
                    nsize = MHLEN;
                }
                set_flags(nm, flags(nm) & !M_RDONLY);
                top = nm;
            } else {
                set_next(tail, nm);
            }
            tail = nm;
            set_len(nm, 0);
            while (len(nm) as usize) < nsize && !src.is_null() {
                let chunk = (nsize - len(nm) as usize).min(len(src).max(0) as usize - moff);
                ptr::copy_nonoverlapping(
                    data(src).add(moff),
                    data(nm).add(len(nm) as usize),
                    chunk,
                );
                moff += chunk;
                set_len(nm, len(nm) + chunk as i32);
                remain -= chunk as isize;
                if moff == len(src).max(0) as usize {
                    src = next(src);
                    moff = 0;
                    if !src.is_null() && !check_live(src, "m_dup", c, Use::Access) {
                        src = null_mut();
                    }
                }
            }
            if src.is_null() && remain > 0 {
                violation(format!(
                    "m_dup({m:p}) from {c}: bogus m_pkthdr.len {} (chain is shorter)",
                    ph_len(m)
                ));
                break;
            }
        }
        top
    }
}

fn adj(mp: *mut mbuf, req_len: c_int, c: Caller) {
    if mp.is_null() {
        return;
    }
    let ch = chain(mp, "m_adj", c);
    if ch.is_empty() {
        return;
    }
    // SAFETY: every mbuf in `ch` is live; lengths only shrink.
    unsafe {
        if req_len >= 0 {
            let mut l = req_len;
            for &m in &ch {
                if l <= 0 {
                    break;
                }
                if len(m) <= l {
                    l -= len(m);
                    set_len(m, 0);
                } else {
                    set_len(m, len(m) - l);
                    set_data(m, data(m).add(l as usize));
                    l = 0;
                }
            }
            if flags(mp) & M_PKTHDR != 0 {
                set_ph_len(mp, ph_len(mp) - (req_len - l));
            }
        } else {
            let l = -(req_len as i64);
            let count: i64 = ch.iter().map(|&m| i64::from(len(m))).sum();
            let last = *ch.last().expect("non-empty chain");
            if i64::from(len(last)) >= l {
                set_len(last, len(last) - l as i32);
                if flags(mp) & M_PKTHDR != 0 {
                    set_ph_len(mp, ph_len(mp) - l as i32);
                }
                return;
            }
            let mut count = (count - l).max(0);
            if flags(mp) & M_PKTHDR != 0 {
                set_ph_len(mp, count as i32);
            }
            for &m in &ch {
                if i64::from(len(m)) >= count {
                    set_len(m, count as i32);
                    let rest = next(m);
                    if !rest.is_null() {
                        set_next(m, null_mut());
                        freem(rest, c);
                    }
                    break;
                }
                count -= i64::from(len(m));
            }
        }
    }
}

fn cat(m: *mut mbuf, n: *mut mbuf, c: Caller) {
    let ch = chain(m, "m_cat", c);
    let Some(&m) = ch.last() else { return };
    let mut n = n;
    // SAFETY: `m` and each `n` are checked live; copies fit the trailing space.
    unsafe {
        while !n.is_null() {
            if !check_live(n, "m_cat", c, Use::Access) {
                return;
            }
            if !m_writable(m) || trailingspace(m) < len(n) as isize {
                set_next(m, n);
                return;
            }
            if !seg_ok(n, 0, len(n).max(0) as usize, "m_cat", c) {
                set_next(m, n);
                return;
            }
            ptr::copy(
                data(n),
                data(m).add(len(m) as usize),
                len(n).max(0) as usize,
            );
            set_len(m, len(m) + len(n));
            n = free_one(n, c);
        }
    }
}

fn pullup(n0: *mut mbuf, want: c_int, c: Caller) -> *mut mbuf {
    if !check_live(n0, "m_pullup", c, Use::Access) {
        return null_mut();
    }
    let mut n = n0;
    let mut want = want as isize;
    // SAFETY: `n` and its successors are live mbufs owned by the caller; all
    // copies stay inside the new head's m_dat and the source's m_len.
    unsafe {
        let m;
        let d_end = dat(n).add(MLEN);
        if flags(n) & M_EXT == 0 && (data(n) as isize + want) < d_end as isize && !next(n).is_null()
        {
            if len(n) as isize >= want {
                return n;
            }
            m = n;
            n = next(n);
            want -= len(m) as isize;
        } else {
            if want > MHLEN as isize {
                freem(n, c);
                return null_mut();
            }
            m = zalloc_mbuf(How::NoWait, mtype(n), 0, c);
            if m.is_null() {
                freem(n, c);
                return null_mut();
            }
            if flags(n) & M_PKTHDR != 0 {
                move_pkthdr(m, n, c);
            }
        }
        let mut space = dat(m).add(MLEN) as isize - (data(m) as isize + len(m) as isize);
        loop {
            if !check_live(n, "m_pullup", c, Use::Access) {
                return null_mut();
            }
            let count = want
                .max(MAX_PROTOHDR as isize)
                .min(space)
                .min(len(n) as isize)
                .max(0);
            ptr::copy(data(n), data(m).add(len(m) as usize), count as usize);
            probe::copy("m_pullup", count as usize, c);
            want -= count;
            set_len(m, len(m) + count as i32);
            set_len(n, len(n) - count as i32);
            space -= count;
            if len(n) != 0 {
                set_data(n, data(n).add(count as usize));
            } else {
                n = free_one(n, c);
            }
            if want <= 0 || n.is_null() {
                break;
            }
        }
        if want > 0 {
            free_one(m, c);
            freem(n, c);
            return null_mut();
        }
        set_next(m, n);
        m
    }
}

fn prepend(m: *mut mbuf, plen: c_int, w: How, c: Caller) -> *mut mbuf {
    if !check_live(m, "m_prepend", c, Use::Access) {
        return null_mut();
    }
    // SAFETY: `m` is live and owned by the caller.
    unsafe {
        let hdr = flags(m) & M_PKTHDR != 0;
        let mn = zalloc_mbuf(w, mtype(m), if hdr { M_PKTHDR } else { 0 }, c);
        if mn.is_null() {
            freem(m, c);
            return null_mut();
        }
        if hdr {
            move_pkthdr(mn, m, c);
        }
        set_next(mn, m);
        let l = plen.max(0) as usize;
        if l > m_size(mn) {
            violation(format!(
                "m_prepend({m:p}, {plen}) from {c}: {plen} bytes do not fit a new mbuf ({} bytes)",
                m_size(mn)
            ));
        } else if l < m_size(mn) {
            m_align(mn, l);
        }
        set_len(mn, plen);
        mn
    }
}

fn defrag(m0: *mut mbuf, w: How, how: c_int, c: Caller) -> *mut mbuf {
    if !check_live(m0, "m_defrag", c, Use::Access) {
        return null_mut();
    }
    // SAFETY: `m0` is live and owned by the caller; copies go through
    // `copydata`, which checks every source mbuf.
    unsafe {
        if flags(m0) & M_PKTHDR == 0 {
            return m0;
        }
        fixhdr(m0, c);
        let total = ph_len(m0) as usize;
        let m_final = if total > MHLEN {
            zalloc_pack(w, MT_DATA, M_PKTHDR, c)
        } else {
            zalloc_mbuf(w, MT_DATA, M_PKTHDR, c)
        };
        if m_final.is_null() {
            return null_mut();
        }
        if dup_pkthdr(m_final, m0, how, c) == 0 {
            freem(m_final, c);
            return null_mut();
        }
        let mut progress = 0usize;
        let mut m_new = m_final;
        while progress < total {
            let l = (total - progress).min(MCLBYTES);
            if m_new.is_null() {
                m_new = if l > MLEN {
                    zalloc_pack(w, MT_DATA, 0, c)
                } else {
                    zalloc_mbuf(w, MT_DATA, 0, c)
                };
                if m_new.is_null() {
                    freem(m_final, c);
                    return null_mut();
                }
            }
            copydata(m0, progress as c_int, l as c_int, data(m_new), c);
            progress += l;
            set_len(m_new, l as i32);
            if m_new != m_final {
                cat(m_final, m_new, c);
            }
            m_new = null_mut();
        }
        freem(m0, c);
        m_final
    }
}

fn get2(size: c_int, w: How, mtype: u32, fl: u32, c: Caller) -> *mut mbuf {
    let size = size.max(0) as usize;
    if size <= MHLEN || (size <= MLEN && fl & M_PKTHDR == 0) {
        return zalloc_mbuf(w, mtype, fl, c);
    }
    if size <= MCLBYTES {
        return zalloc_pack(w, mtype, fl, c);
    }
    if size > MJUMPAGESIZE {
        return null_mut();
    }
    let m = zalloc_mbuf(w, mtype, fl, c);
    if m.is_null() {
        return m;
    }
    if zalloc_cluster(Zone::Jumbop, w, m, c).is_null() {
        zfree_mbuf(m, c);
        return null_mut();
    }
    m
}

fn getm2(m: *mut mbuf, len0: c_int, w: How, mtype: u32, fl: u32, c: Caller) -> *mut mbuf {
    if len0 < 0 {
        violation(format!("m_getm2(len {len0}) from {c}: len is < 0"));
    }
    let mut fl = fl & (M_PKTHDR | M_EOR);
    if fl & M_PKTHDR != 0 && !m.is_null() {
        fl &= !M_PKTHDR;
    }
    let mut l = len0 as isize;
    let mut nm: *mut mbuf = null_mut();
    let mut mtail: *mut mbuf = null_mut();
    // SAFETY: every mbuf linked here is freshly allocated; `m` is checked live.
    unsafe {
        while l > 0 {
            let mut mb = null_mut();
            if l > MCLBYTES as isize {
                let nw = if w == How::Host {
                    How::Host
                } else {
                    How::NoWait
                };
                mb = getjcl(nw, mtype, fl & M_PKTHDR, MJUMPAGESIZE, c);
            }
            if mb.is_null() {
                mb = if l >= MINCLSIZE as isize {
                    zalloc_pack(w, mtype, fl & M_PKTHDR, c)
                } else {
                    zalloc_mbuf(w, mtype, fl & M_PKTHDR, c)
                };
                if mb.is_null() {
                    freem(nm, c);
                    return null_mut();
                }
            }
            l -= m_size(mb) as isize;
            if mtail.is_null() {
                nm = mb;
            } else {
                set_next(mtail, mb);
            }
            mtail = mb;
            fl &= !M_PKTHDR;
        }
        if fl & M_EOR != 0 && !mtail.is_null() {
            set_flags(mtail, flags(mtail) | M_EOR);
        }
        if !m.is_null() {
            let ch = chain(m, "m_getm2", c);
            let Some(&t) = ch.last() else { return nm };
            set_next(t, nm);
            set_flags(t, flags(t) & !M_EOR);
            m
        } else {
            nm
        }
    }
}

/// `uiomove(cp, n, uio)` for kernel (and, in this process, user) addresses.
/// Safety: `u` must be a valid uio whose iovecs describe accessible memory,
/// and `cp` must be valid for `n` bytes.
unsafe fn uiomove_inner(cp: *mut u8, n: c_int, u: *mut uio) -> c_int {
    let mut n = n.max(0) as usize;
    let mut cp = cp;
    while n > 0 && (*u).uio_resid > 0 && (*u).uio_iovcnt > 0 {
        let iov: *mut iovec = (*u).uio_iov;
        let cnt = (*iov).iov_len.min(n);
        if cnt == 0 {
            (*u).uio_iov = iov.add(1);
            (*u).uio_iovcnt -= 1;
            continue;
        }
        if (*u).uio_segflg != UIO_NOCOPY {
            if (*u).uio_rw == UIO_READ {
                ptr::copy(cp, (*iov).iov_base.cast::<u8>(), cnt);
            } else {
                ptr::copy((*iov).iov_base.cast::<u8>(), cp, cnt);
            }
        }
        (*iov).iov_base = (*iov).iov_base.cast::<u8>().add(cnt).cast();
        (*iov).iov_len -= cnt;
        (*u).uio_resid -= cnt as isize;
        (*u).uio_offset += cnt as i64;
        cp = cp.add(cnt);
        n -= cnt;
    }
    0
}

fn uiotombuf(u: *mut uio, w: How, len0: c_int, lspace: c_int, fl: c_int, c: Caller) -> *mut mbuf {
    let fl = fl as u32;
    if fl & M_EXTPG != 0 {
        violation(format!(
            "m_uiotombuf(M_EXTPG) from {c}: unmapped mbufs are not supported"
        ));
        return null_mut();
    }
    if lspace != 0 && fl & M_PKTHDR == 0 {
        violation(format!(
            "m_uiotombuf from {c}: leading space {lspace} without M_PKTHDR"
        ));
    }
    // SAFETY: the caller passes a valid uio; mbufs are fresh and sized by m_getm2.
    unsafe {
        let resid = (*u).uio_resid;
        let total: isize = if len0 > 0 {
            resid.min(len0 as isize)
        } else {
            resid
        };
        if lspace.max(0) as usize >= MHLEN {
            return null_mut();
        }
        probe::copy("m_uiotombuf", total.max(0) as usize, c);
        let m = getm2(
            null_mut(),
            (total + lspace as isize).max(1) as c_int,
            w,
            MT_DATA,
            fl,
            c,
        );
        if m.is_null() {
            return m;
        }
        set_data(m, data(m).add(lspace.max(0) as usize));
        let mut progress: isize = 0;
        let mut mb = m;
        while !mb.is_null() {
            let l = trailingspace(mb).min(total - progress).max(0);
            let err = uiomove_inner(data(mb), l as c_int, u);
            if err != 0 {
                freem(m, c);
                return null_mut();
            }
            set_len(mb, l as i32);
            progress += l;
            if fl & M_PKTHDR != 0 {
                set_ph_len(m, ph_len(m) + l as i32);
                let extra = if flags(mb) & M_EXT != 0 {
                    ext_size(mb)
                } else {
                    0
                };
                (*ph(m)).__bindgen_anon_4.memlen += MSIZE as u32 + extra;
            }
            mb = next(mb);
        }
        m
    }
}

fn mbuftouio(u: *mut uio, m: *mut mbuf, len0: c_int, c: Caller) -> c_int {
    // SAFETY: the caller passes a valid uio; each mbuf is checked live.
    unsafe {
        let resid = (*u).uio_resid;
        let total: isize = if len0 > 0 {
            resid.min(len0 as isize)
        } else {
            resid
        };
        let mut progress: isize = 0;
        let mut p = m;
        while !p.is_null() {
            if !check_live(p, "m_mbuftouio", c, Use::Access) {
                return libc::EFAULT;
            }
            let l = (len(p) as isize).min(total - progress).max(0);
            if !seg_ok(p, 0, l as usize, "m_mbuftouio", c) {
                return libc::EFAULT;
            }
            let err = uiomove_inner(data(p), l as c_int, u);
            if err != 0 {
                return err;
            }
            progress += l;
            p = next(p);
        }
        probe::copy("m_mbuftouio", progress.max(0) as usize, c);
    }
    0
}

/// The `copy` callback of `m_devget`.
pub type DevCopy = Option<unsafe extern "C" fn(*mut c_char, caddr_t, c_uint)>;

fn devget(
    buf: *mut c_char,
    totlen: c_int,
    off: c_int,
    ifp: *mut ifnet,
    copy: DevCopy,
    c: Caller,
) -> *mut mbuf {
    if off < 0 || off as usize > MHLEN {
        return null_mut();
    }
    let mut top: *mut mbuf = null_mut();
    let mut tail: *mut mbuf = null_mut();
    let mut tot = totlen.max(0) as usize;
    probe::copy("m_devget", tot, c);
    let mut off = off as usize;
    let mut buf = buf;
    // SAFETY: fresh mbufs; `buf` holds `totlen` readable bytes (caller contract).
    unsafe {
        while tot > 0 {
            let (m, mut room);
            if top.is_null() {
                if tot + off >= MINCLSIZE {
                    m = zalloc_pack(How::NoWait, MT_DATA, M_PKTHDR, c);
                    room = MCLBYTES;
                } else {
                    m = zalloc_mbuf(How::NoWait, MT_DATA, M_PKTHDR, c);
                    room = MHLEN;
                    if !m.is_null() && tot + off + MAX_LINKHDR as usize <= MHLEN {
                        set_data(m, data(m).add(MAX_LINKHDR as usize));
                        room -= MAX_LINKHDR as usize;
                    }
                }
                if m.is_null() {
                    return null_mut();
                }
                (*ph(m)).__bindgen_anon_1.rcvif = ifp;
                set_ph_len(m, tot as i32);
            } else {
                if tot + off >= MINCLSIZE {
                    m = zalloc_pack(How::NoWait, MT_DATA, 0, c);
                    room = MCLBYTES;
                } else {
                    m = zalloc_mbuf(How::NoWait, MT_DATA, 0, c);
                    room = MLEN;
                }
                if m.is_null() {
                    freem(top, c);
                    return null_mut();
                }
            }
            if off != 0 {
                set_data(m, data(m).add(off));
                room -= off;
                off = 0;
            }
            let l = tot.min(room);
            set_len(m, l as i32);
            match copy {
                Some(f) => f(buf, data(m).cast(), l as c_uint),
                None => ptr::copy_nonoverlapping(buf.cast::<u8>(), data(m), l),
            }
            buf = buf.add(l);
            if tail.is_null() {
                top = m;
            } else {
                set_next(tail, m);
            }
            tail = m;
            tot -= l;
        }
    }
    top
}

fn append(m0: *mut mbuf, l: c_int, cp: *const u8, c: Caller) -> c_int {
    let ch = chain(m0, "m_append", c);
    let Some(&last) = ch.last() else { return 0 };
    let mut m = last;
    let mut remainder = l.max(0) as usize;
    probe::copy("m_append", remainder, c);
    let mut cp = cp;
    // SAFETY: writes are bounded by the trailing space / fresh mbuf size.
    unsafe {
        let space = trailingspace(m).max(0) as usize;
        if space > 0 {
            let s = space.min(remainder);
            ptr::copy(cp, data(m).add(len(m) as usize), s);
            set_len(m, len(m) + s as i32);
            cp = cp.add(s);
            remainder -= s;
        }
        while remainder > 0 {
            let n = zalloc_mbuf(How::NoWait, mtype(m), 0, c);
            if n.is_null() {
                break;
            }
            let s = MLEN.min(remainder);
            set_len(n, s as i32);
            ptr::copy(cp, data(n), s);
            cp = cp.add(s);
            remainder -= s;
            set_next(m, n);
            m = n;
        }
        if flags(m0) & M_PKTHDR != 0 {
            set_ph_len(m0, ph_len(m0) + (l.max(0) as usize - remainder) as i32);
        }
    }
    c_int::from(remainder == 0)
}

// ---------------------------------------------------------------------------
// uma(9) for the mbuf zones

fn zone_name(z: Zone) -> &'static str {
    ZONES.iter().find(|t| t.0 == z).map(|t| t.2).unwrap_or("?")
}

fn zalloc(zone: uma_zone_t, arg: *mut c_void, fl: c_int, c: Caller) -> *mut c_void {
    let Some(z) = with(|s| s.zone_of(zone)) else {
        violation(format!(
            "uma_zalloc_arg({zone:p}) from {c}: not a zone of the harness"
        ));
        return null_mut();
    };
    let w = wait_of(fl, "uma_zalloc_arg", c);
    match z {
        Zone::Mbuf | Zone::Pack => {
            if arg.is_null() {
                kernel_panic(&format!(
                    "uma_zalloc_arg({}) from {c}: NULL mb_args (page fault in mb_ctor)",
                    zone_name(z)
                ));
            }
            // SAFETY: the inline allocators pass a `struct mb_args`.
            let a = unsafe { *arg.cast::<mb_args>() };
            let fl = a.flags as u32;
            if fl & M_NOFREE != 0 {
                violation(format!(
                    "uma_zalloc_arg({}) from {c}: M_NOFREE in mb_args",
                    zone_name(z)
                ));
            }
            let ty = (a.type_ as i32 as u32) & 0xffff;
            if z == Zone::Mbuf {
                zalloc_mbuf(
                    w,
                    if ty == MT_NOINIT {
                        MT_NOINIT
                    } else {
                        ty & 0xff
                    },
                    fl,
                    c,
                )
                .cast()
            } else {
                zalloc_pack(w, ty & 0xff, fl, c).cast()
            }
        }
        _ => {
            let m = arg.cast::<mbuf>();
            if !m.is_null() && !check_live(m, "uma_zalloc_arg(cluster)", c, Use::Access) {
                return null_mut();
            }
            zalloc_cluster(z, w, m, c).cast()
        }
    }
}

fn zfree(zone: uma_zone_t, item: *mut c_void, c: Caller) {
    if item.is_null() {
        return;
    }
    let Some(z) = with(|s| s.zone_of(zone)) else {
        violation(format!(
            "uma_zfree_arg({zone:p}, {item:p}) from {c}: not a zone of the harness"
        ));
        return;
    };
    match z {
        Zone::Mbuf => zfree_mbuf(item.cast(), c),
        Zone::Pack => {
            let m = item.cast::<mbuf>();
            if !check_live(m, "uma_zfree(zone_pack)", c, Use::Free) {
                return;
            }
            // SAFETY: `m` is live.
            unsafe {
                if flags(m) & M_EXT == 0 || ext_type(m) != EXT_PACKET {
                    violation(format!(
                        "uma_zfree(zone_pack, {m:p}) from {c}: not an EXT_PACKET mbuf"
                    ));
                    return;
                }
                if flags(m) & M_PKTHDR != 0 {
                    tag_delete_chain(m, null_mut(), c);
                }
                free_cluster(ext_buf(m), "uma_zfree(zone_pack)", c);
            }
            retire_mbuf(m, c, false);
        }
        _ => free_cluster(item.cast(), "uma_zfree_arg(cluster zone)", c),
    }
}

// ---------------------------------------------------------------------------
// Exported kernel functions

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
    fn m_devget(buf: *mut c_char, totlen: c_int, off: c_int, ifp: *mut ifnet, copy: DevCopy) -> *mut mbuf [c] {
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

// ---------------------------------------------------------------------------
// Rust API

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

fn build(bytes: &[u8], chunk: Option<usize>, w: How, c: Caller) -> *mut mbuf {
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
