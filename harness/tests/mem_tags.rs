//! mbuf_tags(9) model: allocation, prepend (module inline), locate, delete,
//! copy, free hooks run when the mbuf is freed, misuse detection.

mod mem_util;

use std::ffi::c_int;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};

use fbsd_sys::{m_tag, mbuf, MTAG_PERSISTENT, MT_DATA, M_NOWAIT, M_PKTHDR, M_WAITOK};
use mem_util::*;
use ngharness::kern::fault::{self, FaultPlan};
use ngharness::kern::malloc::{self, POISON, TAG_TYPE};
use ngharness::kern::mbuf::fields::*;
use ngharness::kern::mbuf::{self as kmbuf, abi};

const NOWAIT: c_int = M_NOWAIT as c_int;
const WAITOK: c_int = M_WAITOK as c_int;

/// What the module-side inline `m_tag_prepend` does.
unsafe fn tag_prepend(m: *mut mbuf, t: *mut m_tag) {
    set_tag_next(t, tags_first(m));
    set_tags_first(m, t);
}

fn tag_live() -> usize {
    malloc::live(malloc::harness_type(TAG_TYPE))
}

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A module-provided free hook that chains to the default one.
unsafe extern "C" fn counting_hook(t: *mut m_tag) {
    HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    abi::m_tag_free_default(t);
}

#[test]
fn tag_lifecycle() {
    let _g = serial();
    let tags = tag_live();
    let m = kmbuf::from_bytes(b"payload");
    // SAFETY: tag calls as a module makes them; tags belong to `m` after prepend.
    unsafe {
        let t = abi::m_tag_alloc(0xfeed, 3, 12, NOWAIT);
        assert!(!t.is_null());
        assert_eq!(
            ((*t).m_tag_cookie, (*t).m_tag_id, (*t).m_tag_len),
            (0xfeed, 3, 12)
        );
        let w = std::slice::from_raw_parts(tag_data(t).cast::<u32>(), 3);
        assert!(w.iter().all(|&x| x == POISON), "payload is not zeroed");
        tag_data(t).copy_from_nonoverlapping(b"0123456789ab".as_ptr(), 12);
        tag_prepend(m, t);
        let u = abi::m_tag_alloc(0xfeed, 4, 0, WAITOK);
        (*u).m_tag_free = Some(counting_hook);
        tag_prepend(m, u);
        let v = abi::m_tag_alloc(0xbeef, 3, 1, WAITOK);
        *tag_data(v) = b'!';
        tag_prepend(m, v);
        assert_eq!(tag_live(), tags + 3);
        // Locate matches cookie and type; continues after a given tag.
        assert_eq!(abi::m_tag_locate(m, 0xfeed, 3, null_mut()), t);
        assert_eq!(abi::m_tag_locate(m, 0xbeef, 3, null_mut()), v);
        assert!(abi::m_tag_locate(m, 0xfeed, 3, t).is_null());
        assert!(abi::m_tag_locate(m, 0xfeed, 9, null_mut()).is_null());
        assert_eq!(
            kmbuf::tags_of(m),
            vec![
                (0xbeef, 3, b"!".to_vec()),
                (0xfeed, 4, vec![]),
                (0xfeed, 3, b"0123456789ab".to_vec())
            ]
        );
        abi::m_tag_delete(m, v);
        assert_eq!(tag_live(), tags + 2);
        assert_eq!(abi::m_tag_locate(m, 0xfeed, 4, null_mut()), u);
    }
    // Freeing the mbuf frees its tags through their hooks.
    HOOK_CALLS.store(0, Ordering::SeqCst);
    kmbuf::free_chain(m);
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(tag_live(), tags);
    expect_clean();
}

#[test]
fn tag_copy_and_nonpersistent() {
    let _g = serial();
    let a = kmbuf::from_bytes(b"a");
    let b = kmbuf::from_bytes(b"b");
    kmbuf::add_tag(a, 1, 10, b"one");
    kmbuf::add_tag(a, 1, 11 | MTAG_PERSISTENT as u16, b"two");
    kmbuf::add_tag(b, 9, 9, b"old");
    // SAFETY: tag calls on live packet-header mbufs.
    unsafe {
        assert_eq!(abi::m_tag_copy_chain(b, a, NOWAIT), 1);
        assert_eq!(
            kmbuf::tags_of(b),
            kmbuf::tags_of(a),
            "order kept, old tags dropped"
        );
        let t = abi::m_tag_copy(abi::m_tag_locate(a, 1, 10, null_mut()), WAITOK);
        assert_eq!(((*t).m_tag_id, (*t).m_tag_len), (10, 3));
        abi::m_tag_free_default(t);
        abi::m_tag_delete_nonpersistent(b);
        assert_eq!(
            kmbuf::tags_of(b),
            vec![(1, 11 | MTAG_PERSISTENT as u16, b"two".to_vec())]
        );
        // A failed copy leaves the destination without tags.
        fault::configure(FaultPlan::parse("tag:nth=2").unwrap());
        assert_eq!(abi::m_tag_copy_chain(b, a, NOWAIT), 0);
        fault::clear();
        assert!(kmbuf::tags_of(b).is_empty());
        abi::m_tag_delete_chain(a, null_mut());
        assert!(kmbuf::tags_of(a).is_empty());
    }
    kmbuf::free_chain(a);
    kmbuf::free_chain(b);
    assert!(malloc::check_all().is_empty());
    expect_clean();
}

#[test]
fn tag_alloc_limits_and_failure() {
    let _g = serial();
    // SAFETY: m_tag_alloc with bad lengths and an injected failure.
    unsafe {
        assert!(abi::m_tag_alloc(1, 1, -1, NOWAIT).is_null());
        expect_clean();
        assert!(abi::m_tag_alloc(1, 1, 70000, NOWAIT).is_null());
        expect_violations(&["does not fit m_tag_len"]);
        fault::configure(FaultPlan::parse("tag:nth=1").unwrap());
        assert!(abi::m_tag_alloc(1, 1, 4, NOWAIT).is_null());
        let t = abi::m_tag_alloc(1, 1, 4, NOWAIT);
        assert!(!t.is_null());
        abi::m_tag_free_default(t);
        // M_WAITOK tags never fail; the malloc-type selector also sees tags.
        fault::configure(FaultPlan::parse("type=mbuf_tag:always").unwrap());
        assert!(abi::m_tag_alloc(1, 1, 4, NOWAIT).is_null());
        let t = abi::m_tag_alloc(1, 1, 4, WAITOK);
        assert!(!t.is_null());
        abi::m_tag_free_default(t);
    }
    expect_clean();
}

#[test]
fn tag_on_a_plain_mbuf_is_caught_at_free() {
    let _g = serial();
    // SAFETY: prepending to a mbuf without M_PKTHDR is the bug under test.
    unsafe {
        let m = abi::m_get2(10, NOWAIT, MT_DATA as i16, 0);
        assert_eq!(flags(m) & M_PKTHDR, 0);
        let t = abi::m_tag_alloc(5, 5, 8, NOWAIT);
        tag_prepend(m, t);
        abi::m_freem(m);
        expect_violations(&["m_tag_prepend on a mbuf without M_PKTHDR"]);
        abi::m_tag_free_default(t);
    }
    expect_clean();
}

#[test]
fn freeing_an_attached_tag_is_caught() {
    let _g = serial();
    let m = kmbuf::from_bytes(b"x");
    let t = kmbuf::add_tag(m, 1, 1, b"");
    // SAFETY: freeing a tag the mbuf owns is the bug under test.
    unsafe { abi::m_tag_free_default(t) };
    expect_violations(&["still attached to mbuf"]);
    // The mbuf still links the freed tag: freeing it runs the hook on freed memory.
    // SAFETY: unlink so the rest of the test stays clean.
    unsafe { set_tags_first(m, null_mut()) };
    kmbuf::free_chain(m);
    expect_clean();
}

#[test]
fn tags_move_with_the_packet_header() {
    let _g = serial();
    let m = kmbuf::from_bytes_chunked(&[7u8; 300], 100);
    kmbuf::add_tag(m, 42, 1, b"sa");
    // SAFETY: m_pullup / m_prepend as a module uses them.
    unsafe {
        let p = abi::m_prepend(m, 4, NOWAIT);
        assert!(kmbuf::tags_of(m).is_empty());
        assert_eq!(kmbuf::tags_of(p), vec![(42, 1, b"sa".to_vec())]);
        let q = abi::m_copym(p, 0, 10, NOWAIT);
        assert_eq!(
            kmbuf::tags_of(q),
            vec![(42, 1, b"sa".to_vec())],
            "m_copym from 0 copies the header"
        );
        abi::m_freem(q);
        abi::m_freem(p);
    }
    assert!(malloc::check_all().is_empty());
    assert!(kmbuf::check_all().is_empty());
    expect_clean();
}
