//! mbuf(9) model: allocation, chain operations on multi-mbuf chains,
//! ownership on failure, cluster sharing, double free, use after free, leaks.

mod mem_util;

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use fbsd_sys::{
    iovec, mb_args, mbuf, uio, uma_zone_t, EXT_CLUSTER, EXT_JUMBOP, EXT_PACKET, MT_DATA, M_EOR,
    M_EXT, M_NOWAIT, M_PKTHDR, M_WAITOK, UIO_READ, UIO_SYSSPACE, UIO_WRITE,
};
use mem_util::*;
use ngharness::kern::fault::{self, FaultPlan};
use ngharness::kern::mbuf::fields::*;
use ngharness::kern::mbuf::{self as kmbuf, abi, MCLBYTES, MHLEN, MJUMPAGESIZE, MLEN};

const NOWAIT: c_int = M_NOWAIT as c_int;
const WAITOK: c_int = M_WAITOK as c_int;
const HDR: c_int = M_PKTHDR as c_int;
const DATA: i16 = MT_DATA as i16;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Lengths of the mbufs of a chain.
fn lens(m: *mut mbuf) -> Vec<i32> {
    let mut out = Vec::new();
    let mut p = m;
    while !p.is_null() {
        // SAFETY: test chains are live.
        unsafe {
            out.push(len(p));
            p = next(p);
        }
    }
    out
}

fn pkt_len(m: *mut mbuf) -> i32 {
    // SAFETY: `m` is a live packet-header mbuf.
    unsafe { ph_len(m) }
}

#[test]
fn m_get2_picks_the_smallest_storage() {
    let _g = serial();
    let live = kmbuf::live();
    // SAFETY: m_get2 as a module calls it.
    unsafe {
        let a = abi::m_get2(MHLEN as c_int, NOWAIT, DATA, HDR);
        assert_eq!(flags(a) & (M_EXT | M_PKTHDR), M_PKTHDR);
        assert_eq!(data(a), pktdat(a));
        assert_eq!((len(a), pkt_len(a)), (0, 0));
        assert!(next(a).is_null() && nextpkt(a).is_null() && tags_first(a).is_null());
        assert_eq!(kmbuf::m_size(a), MHLEN);
        let b = abi::m_get2(MLEN as c_int, NOWAIT, DATA, 0);
        assert_eq!(flags(b) & M_EXT, 0);
        assert_eq!(data(b), dat(b));
        let c = abi::m_get2(MHLEN as c_int + 1, NOWAIT, DATA, HDR);
        assert_eq!(flags(c) & M_EXT, M_EXT);
        assert_eq!((ext_type(c), ext_size(c) as usize), (EXT_PACKET, MCLBYTES));
        assert_eq!(data(c), ext_buf(c));
        assert!(kmbuf::m_writable(c));
        let d = abi::m_get2(3000, WAITOK, DATA, HDR);
        assert_eq!(
            (ext_type(d), ext_size(d) as usize),
            (EXT_JUMBOP, MJUMPAGESIZE)
        );
        assert!(abi::m_get2(MJUMPAGESIZE as c_int + 1, NOWAIT, DATA, HDR).is_null());
        assert_eq!(kmbuf::live(), live + 4);
        assert_eq!(kmbuf::live_clusters(), 2);
        for m in [a, b, c, d] {
            abi::m_freem(m);
        }
    }
    assert_eq!(kmbuf::live(), live);
    assert_eq!(kmbuf::live_clusters(), 0);
    expect_clean();
}

#[test]
fn from_bytes_roundtrip_and_length() {
    let _g = serial();
    let bytes = pattern(5000);
    for m in [
        kmbuf::from_bytes(&bytes),
        kmbuf::from_bytes_chunked(&bytes, 100),
        kmbuf::from_bytes_chunked(&bytes, 1500),
    ] {
        assert_eq!(kmbuf::to_vec(m), bytes);
        assert_eq!(pkt_len(m), 5000);
        assert!(
            kmbuf::chain_problems(m).is_empty(),
            "{:?}",
            kmbuf::chain_problems(m)
        );
        let mut last = null_mut();
        // SAFETY: a live chain.
        unsafe {
            assert_eq!(abi::m_length(m, &mut last), 5000);
            assert!(!last.is_null() && next(last).is_null());
            set_ph_len(m, 1);
            assert_eq!(abi::m_fixhdr(m), 5000);
        }
        assert_eq!(pkt_len(m), 5000);
        kmbuf::free_chain(m);
    }
    let chunked = kmbuf::from_bytes_chunked(&bytes[..1000], 100);
    assert_eq!(lens(chunked), vec![100; 10]);
    kmbuf::free_chain(chunked);
    let empty = kmbuf::from_bytes(&[]);
    assert_eq!((lens(empty), pkt_len(empty)), (vec![0], 0));
    kmbuf::free_chain(empty);
    // SAFETY: m_length of NULL is 0.
    unsafe {
        let mut last = std::ptr::dangling_mut::<mbuf>();
        assert_eq!(abi::m_length(null_mut(), &mut last), 0);
        assert!(last.is_null());
    }
    expect_clean();
}

#[test]
fn m_copydata_across_mbufs() {
    let _g = serial();
    let bytes = pattern(700);
    let m = kmbuf::from_bytes_chunked(&bytes, 64);
    for (off, l) in [
        (0usize, 700usize),
        (63, 2),
        (64, 64),
        (100, 300),
        (699, 1),
        (700, 0),
        (5, 0),
    ] {
        let mut out = vec![0u8; l];
        // SAFETY: off + len within the chain.
        unsafe { abi::m_copydata(m, off as c_int, l as c_int, out.as_mut_ptr().cast()) };
        assert_eq!(out, &bytes[off..off + l], "m_copydata({off}, {l})");
    }
    kmbuf::free_chain(m);
    expect_clean();
}

#[test]
fn m_copydata_beyond_the_chain_panics() {
    const NAME: &str = "m_copydata_beyond_the_chain_panics";
    if is_child(NAME) {
        let m = kmbuf::from_bytes_chunked(&pattern(100), 30);
        let mut out = [0u8; 8];
        // SAFETY: reading past the chain is the bug under test.
        unsafe { abi::m_copydata(m, 96, 8, out.as_mut_ptr().cast()) };
        unreachable!();
    }
    let err = panics_in_child(NAME);
    assert!(
        err.contains("panic: m_copydata, length > size of mbuf chain"),
        "{err}"
    );
}

#[test]
fn m_adj_trims_head_and_tail() {
    let _g = serial();
    let bytes = pattern(500);
    let live = kmbuf::live();
    let m = kmbuf::from_bytes_chunked(&bytes, 100);
    // SAFETY: a live chain owned by the test.
    unsafe {
        abi::m_adj(m, 150);
        assert_eq!(kmbuf::to_vec(m), &bytes[150..]);
        assert_eq!(pkt_len(m), 350);
        assert_eq!(lens(m), vec![0, 50, 100, 100, 100]);
        abi::m_adj(m, -30);
        assert_eq!(kmbuf::to_vec(m), &bytes[150..470]);
        assert_eq!(lens(m), vec![0, 50, 100, 100, 70]);
        abi::m_adj(m, -200);
        assert_eq!(kmbuf::to_vec(m), &bytes[150..270]);
        assert_eq!(pkt_len(m), 120);
        assert_eq!(lens(m), vec![0, 50, 70], "trailing mbufs are freed");
        assert_eq!(kmbuf::live(), live + 3);
        abi::m_adj(m, -1000);
        assert_eq!(pkt_len(m), 0);
    }
    kmbuf::free_chain(m);
    assert_eq!(kmbuf::live(), live);
    expect_clean();
}

#[test]
fn m_getm2_allocates_space_not_data() {
    let _g = serial();
    // SAFETY: m_getm2 as a module calls it.
    unsafe {
        let m = abi::m_getm2(null_mut(), 5000, WAITOK, DATA, HDR | M_EOR as c_int);
        assert!(!m.is_null());
        let mut sizes = Vec::new();
        let mut p = m;
        while !p.is_null() {
            assert_eq!(len(p), 0);
            sizes.push(kmbuf::m_size(p));
            p = next(p);
        }
        assert_eq!(sizes, vec![MJUMPAGESIZE, MCLBYTES]);
        assert_eq!(flags(m) & M_PKTHDR, M_PKTHDR);
        let mut last = null_mut();
        abi::m_length(m, &mut last);
        assert_eq!(flags(last) & M_EOR, M_EOR);
        // Appending to an existing chain: no second packet header, M_EOR moves.
        let r = abi::m_getm2(m, 100, NOWAIT, DATA, HDR);
        assert_eq!(r, m);
        assert_eq!(flags(last) & M_EOR, 0);
        let mut tail = null_mut();
        abi::m_length(m, &mut tail);
        assert_eq!(flags(tail) & (M_PKTHDR | M_EXT), 0);
        assert_eq!(kmbuf::m_size(tail), MLEN);
        // A small request: one packet-header mbuf.
        let s = abi::m_getm2(null_mut(), 10, NOWAIT, DATA, HDR);
        assert_eq!((lens(s), kmbuf::m_size(s)), (vec![0], MHLEN));
        // Allocation failure: nothing leaks, the existing chain is untouched.
        let live = kmbuf::live();
        // #1 mbuf and #2 jumbo cluster of the M_NOWAIT jumbo attempt (failed:
        // fall back to 2 KB clusters), #3 the first packet, #4 the second
        // (failed: the partial chain is freed).
        fault::configure(FaultPlan::parse("mbuf:nth=2;mbuf:nth=4").unwrap());
        assert!(abi::m_getm2(null_mut(), 3000, NOWAIT, DATA, HDR).is_null());
        assert_eq!(fault::counters().considered, 4);
        assert_eq!(kmbuf::live(), live);
        fault::clear();
        abi::m_freem(m);
        abi::m_freem(s);
    }
    assert_eq!(kmbuf::live_clusters(), 0);
    expect_clean();
}

#[test]
fn m_pullup_success_and_failure_ownership() {
    let _g = serial();
    let bytes = pattern(300);
    let live = kmbuf::live();
    // SAFETY: m_pullup as a module uses it; on failure the chain is gone.
    unsafe {
        // In place: the first mbuf has room.
        let m = kmbuf::from_bytes_chunked(&bytes, 20);
        let p = abi::m_pullup(m, 50);
        assert_eq!(p, m);
        assert!(len(p) >= 50);
        assert_eq!(kmbuf::to_vec(p), bytes);
        assert_eq!(pkt_len(p), 300);
        kmbuf::free_chain(p);
        // A cluster head: a new head mbuf takes the packet header.
        let c = kmbuf::from_bytes_chunked(&bytes, 300);
        assert_eq!(flags(c) & M_EXT, M_EXT);
        let p = abi::m_pullup(c, 40);
        assert_ne!(p, c, "new head");
        assert_eq!(next(p), c, "the old head stays in the chain");
        assert_eq!(flags(p) & (M_PKTHDR | M_EXT), M_PKTHDR);
        assert_eq!(flags(c) & M_PKTHDR, 0);
        assert_eq!(len(p), 60, "pulls up max(len, max_protohdr) bytes");
        assert_eq!(kmbuf::to_vec(p), bytes);
        kmbuf::free_chain(p);
        // Failure: allocation fails -> the whole chain is freed.
        let m = kmbuf::from_bytes_chunked(&bytes, 300);
        fault::configure(FaultPlan::parse("mbuf:nth=1").unwrap());
        assert!(abi::m_pullup(m, 10).is_null());
        fault::clear();
        assert!(kmbuf::is_freed(m), "m_pullup freed the chain");
        // Failure: more than MHLEN bytes.
        let m = kmbuf::from_bytes_chunked(&bytes, 10);
        assert!(abi::m_pullup(m, MHLEN as c_int + 1).is_null());
        assert!(kmbuf::is_freed(m));
        // Failure: the chain is shorter than requested.
        let m = kmbuf::from_bytes_chunked(&bytes[..40], 10);
        assert!(abi::m_pullup(m, 60).is_null());
        assert!(kmbuf::is_freed(m));
    }
    assert_eq!(kmbuf::live(), live);
    expect_clean();
}

#[test]
fn m_prepend_frees_the_chain_on_failure() {
    let _g = serial();
    let bytes = pattern(100);
    let live = kmbuf::live();
    // SAFETY: m_prepend as a module uses it.
    unsafe {
        let m = kmbuf::from_bytes(&bytes);
        let h = abi::m_prepend(m, 8, NOWAIT);
        assert_ne!(h, m);
        assert_eq!(next(h), m);
        assert_eq!(flags(h) & M_PKTHDR, M_PKTHDR);
        assert_eq!(flags(m) & M_PKTHDR, 0, "packet header moved");
        assert_eq!(len(h), 8);
        assert_eq!(
            data(h).add(8),
            pktdat(h).add(MHLEN),
            "M_ALIGN put the room at the end"
        );
        assert_eq!(
            pkt_len(h),
            100,
            "m_prepend does not touch m_pkthdr.len (M_PREPEND does)"
        );
        kmbuf::free_chain(h);
        let m = kmbuf::from_bytes(&bytes);
        fault::configure(FaultPlan::parse("mbuf:always").unwrap());
        assert!(abi::m_prepend(m, 8, NOWAIT).is_null());
        fault::clear();
        assert!(kmbuf::is_freed(m));
    }
    assert_eq!(kmbuf::live(), live);
    expect_clean();
}

#[test]
fn m_defrag_leaves_the_chain_on_failure() {
    let _g = serial();
    let bytes = pattern(3000);
    let live = kmbuf::live();
    // SAFETY: m_defrag as a module uses it.
    unsafe {
        let m = kmbuf::from_bytes_chunked(&bytes, 100);
        kmbuf::add_tag(m, 7, 1, b"tag!");
        let d = abi::m_defrag(m, NOWAIT);
        assert!(!d.is_null() && d != m);
        assert!(kmbuf::is_freed(m), "the original chain is freed on success");
        assert_eq!(kmbuf::to_vec(d), bytes);
        assert_eq!(lens(d), vec![2048, 952]);
        assert_eq!(
            kmbuf::tags_of(d),
            vec![(7, 1, b"tag!".to_vec())],
            "tags copied"
        );
        kmbuf::free_chain(d);
        for nth in 1..=2 {
            let m = kmbuf::from_bytes_chunked(&bytes, 100);
            fault::configure(FaultPlan::parse(&format!("mbuf:nth={nth}")).unwrap());
            assert!(abi::m_defrag(m, NOWAIT).is_null());
            fault::clear();
            assert!(kmbuf::is_live(m), "the caller still owns the chain");
            assert_eq!(kmbuf::to_vec(m), bytes);
            kmbuf::free_chain(m);
        }
        // Not a packet header: returned unchanged.
        let plain = abi::m_get2(10, NOWAIT, DATA, 0);
        assert_eq!(abi::m_defrag(plain, NOWAIT), plain);
        abi::m_freem(plain);
    }
    assert_eq!(kmbuf::live(), live);
    assert!(
        ngharness::kern::malloc::check_all().is_empty(),
        "tags freed"
    );
    expect_clean();
}

#[test]
fn m_copym_shares_clusters() {
    let _g = serial();
    let bytes = pattern(3000);
    let live = kmbuf::live();
    // SAFETY: m_copym as a module uses it.
    unsafe {
        let m = kmbuf::from_bytes_chunked(&bytes, 1500);
        let c = abi::m_copym(m, 1000, 1200, NOWAIT);
        assert_eq!(kmbuf::to_vec(c), &bytes[1000..2200]);
        assert_eq!(flags(c) & M_PKTHDR, 0);
        assert!(
            !kmbuf::m_writable(c) && !kmbuf::m_writable(m),
            "shared clusters are read-only"
        );
        assert_eq!(*refcnt_ptr(m), 2);
        let all = abi::m_copym(m, 0, fbsd_sys::M_COPYALL as c_int, NOWAIT);
        assert_eq!(kmbuf::to_vec(all), bytes);
        assert_eq!((flags(all) & M_PKTHDR, pkt_len(all)), (M_PKTHDR, 3000));
        // Free the original first: its mbufs keep carrying the counts.
        kmbuf::free_chain(m);
        assert!(kmbuf::is_freed(m));
        assert_eq!(kmbuf::to_vec(c), &bytes[1000..2200]);
        kmbuf::free_chain(all);
        kmbuf::free_chain(c);
    }
    assert_eq!(kmbuf::live(), live);
    assert_eq!(kmbuf::live_clusters(), 0);
    assert!(kmbuf::check_all().is_empty());
    expect_clean();
}

#[test]
fn m_dup_copies_everything() {
    let _g = serial();
    let bytes = pattern(1000);
    let m = kmbuf::from_bytes_chunked(&bytes, 90);
    kmbuf::add_tag(m, 1, 2, b"xy");
    // SAFETY: m_dup as a module uses it.
    let d = unsafe { abi::m_dup(m, WAITOK) };
    kmbuf::free_chain(m);
    assert_eq!(kmbuf::to_vec(d), bytes);
    assert_eq!(pkt_len(d), 1000);
    assert_eq!(kmbuf::tags_of(d), vec![(1, 2, b"xy".to_vec())]);
    // SAFETY: `d` is a live chain.
    assert!(unsafe { kmbuf::m_writable(d) });
    kmbuf::free_chain(d);
    expect_clean();
}

#[test]
fn m_copyback_m_cat_m_append() {
    let _g = serial();
    let bytes = pattern(400);
    // SAFETY: a live chain owned by the test.
    unsafe {
        let m = kmbuf::from_bytes_chunked(&bytes[..100], 50);
        abi::m_copyback(m, 40, 20, b"AAAAAAAAAAAAAAAAAAAA".as_ptr().cast());
        let mut want = bytes[..100].to_vec();
        want[40..60].fill(b'A');
        assert_eq!(kmbuf::to_vec(m), want);
        // Past the end: the chain grows, m_pkthdr.len follows.
        abi::m_copyback(m, 100, 300, bytes[100..].as_ptr().cast());
        want.extend_from_slice(&bytes[100..]);
        assert_eq!(kmbuf::to_vec(m), want);
        assert_eq!(pkt_len(m), 400);
        let n = kmbuf::from_bytes_chunked(&bytes[..30], 10);
        abi::m_demote(n, 1, 0);
        abi::m_cat(m, n);
        want.extend_from_slice(&bytes[..30]);
        assert_eq!(kmbuf::to_vec(m), want);
        assert_eq!(abi::m_fixhdr(m), 430);
        let src = pattern(500);
        assert_eq!(abi::m_append(m, 500, src.as_ptr().cast()), 1);
        want.extend_from_slice(&src);
        assert_eq!(pkt_len(m), 930);
        assert_eq!(kmbuf::to_vec(m), want[..930]);
        kmbuf::free_chain(m);
    }
    expect_clean();
}

#[test]
fn double_free_of_an_mbuf_is_caught() {
    let _g = serial();
    let m = kmbuf::from_bytes(b"hello");
    kmbuf::free_chain(m);
    expect_clean();
    kmbuf::free_chain(m);
    let v = expect_violations(&["double free"]);
    assert!(
        v[0].contains("mem_mbuf.rs"),
        "allocation and free sites named: {v:?}"
    );
    // Operating on a freed chain is a use after free.
    // SAFETY: the call on a freed mbuf is the bug under test.
    unsafe { abi::m_adj(m, 1) };
    expect_violations(&["use after free"]);
}

#[test]
fn write_after_free_of_an_mbuf_is_caught() {
    let _g = serial();
    let m = kmbuf::from_bytes(b"hello");
    kmbuf::free_chain(m);
    // SAFETY: the write after free is the bug under test (quarantined storage).
    unsafe { set_len(m, 5) };
    let found = kmbuf::check_all();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("use after free") && found[0].contains("offset 24"),
        "{found:?}"
    );
    expect_violations(&["use after free"]);
}

#[test]
fn leaked_mbufs_are_reported_with_their_sites() {
    let _g = serial();
    // SAFETY: m_get2 as a module calls it; the mbuf is leaked on purpose.
    let m = unsafe { abi::m_get2(3000, NOWAIT, DATA, HDR) };
    let _keep = kmbuf::from_bytes(b"x");
    let found = kmbuf::check_all();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("leak: 2 mbuf object(s) still allocated"),
        "{found:?}"
    );
    assert!(
        found[0].contains(&format!("mbuf {m:p}")) && found[0].contains("with cluster"),
        "{found:?}"
    );
    assert!(
        found[0].contains("allocated at 0x"),
        "module-style caller: {found:?}"
    );
    assert!(
        found[0].contains("mem_mbuf.rs"),
        "harness caller: {found:?}"
    );
    expect_violations(&["leak"]);
    kmbuf::free_chain(m);
    kmbuf::free_chain(_keep);
    expect_clean();
}

#[test]
fn m_free_of_null_panics() {
    const NAME: &str = "m_free_of_null_panics";
    if is_child(NAME) {
        // SAFETY: m_freem(NULL) is fine...
        unsafe { abi::m_freem(null_mut()) };
        // ...m_free(NULL) is not.
        kmbuf::free_one_mbuf(null_mut());
        unreachable!();
    }
    let err = panics_in_child(NAME);
    assert!(err.contains("panic: m_free(NULL)"), "{err}");
}

/// The zone pointers a module's inline allocators read.
fn zone(name: &str) -> uma_zone_t {
    let mut ex = ngharness::exports::Exports::new();
    kmbuf::register(&mut ex);
    let s = ex.get(name).unwrap();
    // SAFETY: exported `uma_zone_t` variables live in the arena.
    unsafe { *(s.addr as *const uma_zone_t) }
}

#[test]
fn inline_allocators_through_uma() {
    let _g = serial();
    let (zm, zp, zc) = (zone("zone_mbuf"), zone("zone_pack"), zone("zone_clust"));
    let live = kmbuf::live();
    // SAFETY: what the inline m_gethdr / m_getcl / m_clget / m_free expand to.
    unsafe {
        let mut args = mb_args {
            flags: HDR,
            type_: DATA,
        };
        let m = abi::uma_zalloc_arg(zm, std::ptr::addr_of_mut!(args).cast(), NOWAIT).cast::<mbuf>();
        assert_eq!((flags(m), mtype(m), len(m)), (M_PKTHDR, MT_DATA, 0));
        let p = abi::uma_zalloc_arg(zp, std::ptr::addr_of_mut!(args).cast(), NOWAIT).cast::<mbuf>();
        assert_eq!((flags(p), ext_type(p)), (M_PKTHDR | M_EXT, EXT_PACKET));
        // m_clget on a plain mbuf.
        args.flags = 0;
        let q = abi::uma_zalloc_arg(zm, std::ptr::addr_of_mut!(args).cast(), WAITOK).cast::<mbuf>();
        assert_eq!(abi::m_clget(q, NOWAIT), M_EXT as c_int);
        assert_eq!(
            (ext_type(q), ext_size(q) as usize, data(q)),
            (EXT_CLUSTER, MCLBYTES, ext_buf(q))
        );
        // A raw cluster.
        let raw = abi::m_cljget(null_mut(), NOWAIT, MCLBYTES as c_int);
        assert!(!raw.is_null());
        // Inline m_free: uma_zfree for plain mbufs, mb_free_ext for M_EXT.
        abi::uma_zfree_arg(zm, m.cast(), null_mut());
        abi::mb_free_ext(p);
        abi::mb_free_ext(q);
        abi::uma_zfree_arg(zc, raw, null_mut());
        abi::uma_zfree_arg(zm, null_mut(), null_mut());
        abi::uma_zfree_arg(zm, m.cast(), null_mut());
    }
    expect_violations(&["double free"]);
    assert_eq!(kmbuf::live(), live);
    assert_eq!(kmbuf::live_clusters(), 0);
    expect_clean();
}

#[test]
fn uio_roundtrip() {
    let _g = serial();
    let bytes = pattern(3000);
    // SAFETY: kernel-space uios over local buffers.
    unsafe {
        let mut iov = [
            iovec {
                iov_base: bytes.as_ptr() as *mut c_void,
                iov_len: 1000,
            },
            iovec {
                iov_base: bytes[1000..].as_ptr() as *mut c_void,
                iov_len: 2000,
            },
        ];
        let mut u: uio = std::mem::zeroed();
        u.uio_iov = iov.as_mut_ptr();
        u.uio_iovcnt = 2;
        u.uio_resid = 3000;
        u.uio_segflg = UIO_SYSSPACE;
        u.uio_rw = UIO_WRITE;
        let m = abi::m_uiotombuf(&mut u, WAITOK, 0, 16, HDR);
        assert_eq!(u.uio_resid, 0);
        assert_eq!(pkt_len(m), 3000);
        assert_eq!(kmbuf::to_vec(m), bytes);
        assert_eq!(data(m), ext_buf(m).add(16), "leading space");
        let mut out = vec![0u8; 2500];
        let mut oiov = iovec {
            iov_base: out.as_mut_ptr().cast(),
            iov_len: 2500,
        };
        let mut r: uio = std::mem::zeroed();
        r.uio_iov = &mut oiov;
        r.uio_iovcnt = 1;
        r.uio_resid = 2500;
        r.uio_segflg = UIO_SYSSPACE;
        r.uio_rw = UIO_READ;
        assert_eq!(abi::m_mbuftouio(&mut r, m, 0), 0);
        assert_eq!(r.uio_resid, 0);
        assert_eq!(out, &bytes[..2500]);
        kmbuf::free_chain(m);
        // lspace >= MHLEN: NULL without allocating.
        assert!(abi::m_uiotombuf(&mut u, WAITOK, 0, MHLEN as c_int, HDR).is_null());
    }
    expect_clean();
}

#[test]
fn chain_checks() {
    let _g = serial();
    let m = kmbuf::from_bytes_chunked(&pattern(100), 40);
    assert!(kmbuf::check_chain(m, "test"));
    let other = kmbuf::from_bytes(b"x");
    // SAFETY: a live chain owned by the test.
    unsafe {
        set_ph_len(m, 99);
        set_nextpkt(next(m), other);
    }
    assert!(!kmbuf::check_chain(m, "sosend"));
    expect_violations(&[
        "sosend: m_nextpkt set on in-chain mbuf #1",
        "sosend: m_pkthdr.len 99 != sum of m_len 100",
    ]);
    // SAFETY: restore before freeing.
    unsafe { set_nextpkt(next(m), null_mut()) };
    kmbuf::free_chain(other);
    kmbuf::free_chain(m);
    expect_clean();
}
