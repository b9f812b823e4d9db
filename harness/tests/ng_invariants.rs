//! The invariants of docs/netgraph-model.md §11: node types defined here
//! break the netgraph contracts on purpose (leaked items, double frees,
//! reference miscounts...) and the core must report a violation.

mod ng_common;

use std::ffi::c_int;

use fbsd_sys::{hook_p, item_p, node_p};
use ng_common::*;
use ngharness::kern::{self, sched};
use ngharness::netgraph::client::Client;
use ngharness::netgraph::core::exports as k;
use ngharness::netgraph::core::{self, check};
use ngharness::netgraph::macros;

unsafe extern "C" fn ok_ctor(_n: node_p) -> c_int {
    0
}

/// Forgets the item it is handed (the classic error-path leak).
unsafe extern "C" fn leak_rcvmsg(_n: node_p, _item: item_p, _h: hook_p) -> c_int {
    fbsd_sys::EINVAL as c_int
}

/// Frees the item twice.
unsafe extern "C" fn dbl_rcvmsg(_n: node_p, item: item_p, _h: hook_p) -> c_int {
    // SAFETY: the first free is legitimate; the second is the bug under test.
    unsafe {
        macros::free_item(item);
        macros::free_item(item);
    }
    0
}

/// Frees the item after a failed send (ng_address_* already freed it).
unsafe extern "C" fn freeafter_rcvmsg(node: node_p, item: item_p, _h: hook_p) -> c_int {
    // SAFETY: the address call consumes the item; the free afterwards is the bug.
    unsafe {
        let e = k::ngk_address_id(node, item, 0xdead, 0);
        assert_ne!(e, 0);
        macros::free_item(item);
    }
    0
}

/// Responds, then frees the response it no longer owns.
unsafe extern "C" fn freeresp_rcvmsg(node: node_p, item: item_p, _h: hook_p) -> c_int {
    // SAFETY: we own the item and the request message.
    unsafe {
        let msg = macros::ngi_get_msg(item);
        let resp = macros::mk_response(msg, 0, fbsd_sys::M_NOWAIT as c_int);
        macros::respond_msg(node, item, resp);
        macros::free_msg(resp); // BUG: the in-flight reply item owns it
        macros::free_msg(msg);
    }
    0
}

/// Drops the creation reference twice in its shutdown method.
unsafe extern "C" fn twice_shutdown(node: node_p) -> c_int {
    // SAFETY: the first unref is the creation reference; the second is the bug.
    unsafe {
        macros::node_unref(node);
        macros::node_unref(node);
    }
    0
}

/// Forgets the creation reference in its shutdown method.
unsafe extern "C" fn forget_shutdown(_node: node_p) -> c_int {
    0
}

/// Keeps a hook reference it never drops.
unsafe extern "C" fn refhook_connect(hook: hook_p) -> c_int {
    // SAFETY: a live hook.
    unsafe { macros::hook_ref(hook) };
    0
}

fn ty(name: &'static str, f: impl FnOnce(&mut fbsd_sys::ng_type)) {
    register_type(new_type(name, |t| {
        t.constructor = Some(ok_ctor);
        f(t)
    }));
}

/// Runs `f`, drains the loop, checks quiescence; returns (problems, violations).
fn broken(f: impl FnOnce(&Client) + Send + 'static) -> (Vec<String>, Vec<String>) {
    let (problems, v) = run(move || {
        let c = Client::new().unwrap();
        f(&c);
        drop(c);
        check::quiesce()
    });
    (problems, v)
}

#[test]
fn leaked_item_is_reported_at_quiescence() {
    let (problems, v) = broken(|c| {
        ty("leaky", |t| t.rcvmsg = Some(leak_rcvmsg));
        c.mkpeer(".", "leaky", "l", "in").unwrap();
        let msg = macros::mk_message(0x4c, 1, 0, "", fbsd_sys::M_WAITOK as c_int);
        // SAFETY: our live node; a message we own.
        let e = unsafe { macros::send_msg_path(c.node(), msg, "l", 0) };
        assert_eq!(e, EINVAL);
        c.shutdown("l").unwrap();
    });
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("leaked: handed to rcvmsg of node [2] (type leaky)"),
        "{problems:#?}"
    );
    assert!(
        v.iter().all(|s| s.starts_with("netgraph not quiescent")),
        "{v:#?}"
    );
}

#[test]
fn leaked_item_still_completes_sendto() {
    let (problems, v) = broken(|c| {
        ty("leaky", |t| t.rcvmsg = Some(leak_rcvmsg));
        c.mkpeer(".", "leaky", "l", "in").unwrap();
        // The apply reference belongs to the application, not to the item:
        // sendto returns the handler's error although the item leaked.
        assert_eq!(c.send_msg("l", 0x4c, 1, &[]), Err(EINVAL));
        c.shutdown("l").unwrap();
    });
    assert!(
        problems.iter().any(|p| p.contains("leaked")),
        "{problems:#?}"
    );
    assert!(v.iter().all(|s| !s.contains("deadlock")), "{v:#?}");
}

#[test]
fn double_free_of_an_item() {
    let (problems, v) = broken(|c| {
        ty("dblfree", |t| t.rcvmsg = Some(dbl_rcvmsg));
        c.mkpeer(".", "dblfree", "d", "in").unwrap();
        c.send_msg("d", 0x44, 1, &[]).unwrap();
        c.shutdown("d").unwrap();
    });
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].contains("ng_free_item") && v[0].contains("already freed"),
        "{v:#?}"
    );
}

#[test]
fn free_after_a_failed_send() {
    let (problems, v) = broken(|c| {
        ty("freeafter", |t| t.rcvmsg = Some(freeafter_rcvmsg));
        c.mkpeer(".", "freeafter", "f", "in").unwrap();
        c.send_msg("f", 0x46, 1, &[]).unwrap();
        c.shutdown("f").unwrap();
    });
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].contains("already freed"), "{v:#?}");
}

#[test]
fn freeing_a_response_in_flight() {
    let (_problems, v) = broken(|c| {
        ty("freeresp", |t| t.rcvmsg = Some(freeresp_rcvmsg));
        c.mkpeer(".", "freeresp", "f", "in").unwrap();
        assert_eq!(c.send_msg("f", 0x46, 1, &[]), Err(fbsd_sys::EINVAL as i32));
        c.shutdown("f").unwrap();
    });
    assert!(
        v.iter().any(|s| s.contains("without a live message")),
        "{v:#?}"
    );
}

#[test]
fn shutdown_dropping_two_references() {
    let (_problems, v) = broken(|c| {
        ty("twice", |t| t.shutdown = Some(twice_shutdown));
        c.mkpeer(".", "twice", "t", "in").unwrap();
        c.shutdown("t").unwrap();
    });
    assert!(v.iter().any(|s| s.contains("already freed")), "{v:#?}");
}

#[test]
fn unref_of_a_live_node_frees_it_early() {
    let (_problems, v) = broken(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        let hole = {
            let h = findhook(c.node(), "h");
            // SAFETY: live hook and peer.
            unsafe { (*(*h).hk_peer).hk_node }
        };
        // SAFETY: these are the bugs under test.
        unsafe {
            macros::node_unref(hole); // drops the creation reference
            macros::node_unref(hole); // drops the hook's reference: the node is freed while valid
        }
    });
    assert!(
        v.iter().any(|s| s.contains("freed while still valid")),
        "{v:#?}"
    );
}

#[test]
fn invalid_node_never_freed() {
    let (problems, _v) = broken(|c| {
        ty("forget", |t| t.shutdown = Some(forget_shutdown));
        c.mkpeer(".", "forget", "f", "in").unwrap();
        c.shutdown("f").unwrap();
    });
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("is invalid (shut down) but was never freed: 1 reference(s) left"),
        "{problems:#?}"
    );
}

#[test]
fn hook_reference_never_dropped() {
    let (problems, _v) = broken(|c| {
        ty("refhook", |t| t.connect = Some(refhook_connect));
        c.mkpeer(".", "refhook", "r", "in").unwrap();
        c.shutdown("r").unwrap();
    });
    assert!(
        problems
            .iter()
            .any(|p| p.contains("hook \"in\" was destroyed but never freed")),
        "{problems:#?}"
    );
}

#[test]
fn writes_to_the_dead_node_are_reported() {
    let (problems, v) = broken(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        let h = findhook(c.node(), "h");
        // SAFETY: our live hook.
        unsafe { (*h).hk_flags |= fbsd_sys::HK_QUEUE as c_int };
        c.shutdown("h").unwrap();
        // Our hook is orphaned: its peer node is ng_deadnode. Taking a reference on it is a write.
        // SAFETY: the bug under test (the dead node is a permanent object).
        unsafe { macros::node_ref((*(*h).hk_peer).hk_node) };
        sched::run_until_idle();
    });
    assert!(
        problems.iter().any(|p| p.contains("dead object")),
        "{problems:#?}"
    );
    assert!(
        v.iter().any(|s| s.contains("ng_deadnode was written to")),
        "{v:#?}"
    );
    assert!(core::check_dead_objects(), "restored");
}

#[test]
fn bad_data_mbufs_are_reported() {
    let (problems, v) = broken(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        let m = kern::mbuf::from_bytes(b"four");
        // SAFETY: a live packet-header mbuf; the length mismatch is the bug.
        unsafe { ngharness::netgraph::mbufx::pkthdr_mut(m).len = 3 };
        // SAFETY: our live hook; the mbuf is consumed.
        let e = unsafe { macros::send_data(findhook(c.node(), "h"), m, 0) };
        assert_eq!(e, 0);
        c.shutdown("h").unwrap();
    });
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].contains("m_pkthdr.len 3 != chain length 4"), "{v:#?}");
}

#[test]
fn queued_work_left_is_reported() {
    let (problems, _v) = broken(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        let m = kern::mbuf::from_bytes(b"x");
        // SAFETY: a fresh mbuf and item; our live hook.
        unsafe {
            let item = k::ngk_package_data(m, 0);
            assert_eq!(
                k::ngk_address_hook(c.node(), item, findhook(c.node(), "h"), 0),
                0
            );
            assert_eq!(k::ngk_snd_item(item, fbsd_sys::NG_QUEUE as c_int), 0);
        }
        // Do not run the loop: check while the item is still queued.
        let p = check::check_quiescent();
        assert!(p.iter().any(|s| s.contains("queued work left")), "{p:#?}");
        kern::take_violations();
        sched::run_until_idle();
        c.shutdown("h").unwrap();
    });
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Resolving "this node" (`.`) without a starting node: FreeBSD's
/// ng_name2noderef dereferences the NULL node. Every entry point that
/// reaches it reports a violation (and fails the look-up); addresses
/// relative to the missing node without a `.` node part are FreeBSD's
/// EINVAL, with nothing to report.
#[test]
fn this_node_without_a_starting_node_is_reported() {
    let ((), v) = run(|| {
        let c = Client::new().unwrap();
        // SAFETY: fresh items (consumed on failure); C strings kept alive.
        unsafe {
            for p in [".:", ".:hook", ".:a.b"] {
                let item = k::ngk_package_data(std::ptr::null_mut(), 0);
                assert_eq!(
                    k::ngk_address_path(std::ptr::null_mut(), item, cs(p), 0),
                    ENOENT
                );
            }
            assert!(k::ngk_name2noderef(std::ptr::null_mut(), cs(".")).is_null());
            let mut dest: node_p = std::ptr::null_mut();
            let mut last: hook_p = std::ptr::null_mut();
            assert_eq!(
                k::ngk_path2noderef(std::ptr::null_mut(), cs(".:"), &mut dest, &mut last),
                ENOENT
            );
        }
        let v = kern::take_violations();
        assert_eq!(v.len(), 5, "{v:#?}");
        assert!(v.iter().all(|m| m.contains("NULL starting node")), "{v:#?}");
        // SAFETY: as above.
        unsafe {
            for p in ["", ".", "hook", "a.b"] {
                let item = k::ngk_package_data(std::ptr::null_mut(), 0);
                assert_eq!(
                    k::ngk_address_path(std::ptr::null_mut(), item, cs(p), 0),
                    EINVAL
                );
            }
        }
        assert!(kern::take_violations().is_empty());
        drop(c);
        let p = check::quiesce();
        assert!(p.is_empty(), "{p:#?}");
    });
    assert!(v.is_empty(), "{v:#?}");
}
