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
//!
//! Files: `mod.rs` layout, field access, zones, the side tables and liveness
//! checks; `alloc.rs` allocation and freeing; `tags.rs` mbuf_tags(9);
//! `chain.rs` packet headers and chain operations; `io.rs` copies to and
//! from memory outside the chain (uio); `uma.rs` the mbuf zones of uma(9);
//! `entries.rs` the exported functions; `api.rs` the Rust API.

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

mod alloc;
mod api;
mod chain;
mod entries;
mod io;
mod tags;
mod uma;

use alloc::*;
pub use api::*;
use chain::*;
pub use entries::*;
pub use io::*;
use tags::*;
use uma::*;

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
