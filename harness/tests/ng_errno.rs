//! Error codes of docs/netgraph-model.md §12 (and §2, §5.3, §5.7, §6).

mod ng_common;

use std::ffi::c_int;

use fbsd_sys::{item_p, node_p};
use ng_common::*;
use ngharness::kern;
use ngharness::netgraph::client::{as_bytes, Client, NGM_GENERIC_COOKIE};
use ngharness::netgraph::core::exports as k;
use ngharness::netgraph::core::{self, item};
use ngharness::netgraph::macros;

const NG_QUEUE: c_int = fbsd_sys::NG_QUEUE as c_int;

fn peer_node(c: &Client, hook: &str) -> node_p {
    let h = findhook(c.node(), hook);
    assert!(!h.is_null(), "no hook {hook}");
    // SAFETY: live hook with a live peer.
    unsafe { (*(*h).hk_peer).hk_node }
}

#[test]
fn mkpeer_errors() {
    clean(|c| {
        assert_eq!(c.mkpeer(".", "nosuchtype", "a", "b"), Err(ENXIO));
        // harnessctl has no constructor: it cannot be created by MKPEER
        assert_eq!(c.mkpeer(".", "harnessctl", "a", "b"), Err(EINVAL));
        c.mkpeer(".", "echo", "a", "b").unwrap();
        // our hook exists: EEXIST, and the new node is shut down again
        assert_eq!(c.mkpeer(".", "hole", "a", "b"), Err(EEXIST));
        assert_eq!(c.list().unwrap().len(), 2);
        // wrong argument size
        assert_eq!(
            c.send_msg(".", NGM_GENERIC_COOKIE, fbsd_sys::NGM_MKPEER, &[0; 95]),
            Err(EINVAL)
        );
        c.shutdown("a").unwrap();
    });
}

#[test]
fn connect_and_path_errors() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        c.name("e", "ech").unwrap();
        assert_eq!(c.connect(".", "nosuch:", "a", "b"), Err(ENOENT));
        assert_eq!(c.connect(".", "[99]:", "a", "b"), Err(ENOENT));
        assert_eq!(c.connect(".", "a.b:", "a", "b"), Err(EINVAL));
        assert_eq!(c.connect(".", "ech:nohook", "a", "b"), Err(ENOENT));
        // peer hook already exists on the peer
        assert_eq!(c.connect(".", "ech:", "a", "x"), Err(EEXIST));
        // our hook already exists
        assert_eq!(c.connect(".", "ech:", "e", "z"), Err(EEXIST));
        // malformed addresses
        assert_eq!(c.nodeinfo(":"), Err(EINVAL));
        assert_eq!(c.nodeinfo("a:b:c"), Err(EINVAL));
        assert_eq!(c.nodeinfo("e..x"), Err(EINVAL));
        assert_eq!(c.nodeinfo("nosuchhook"), Err(ENOENT));
        // ".", "" and ".:" all mean the node itself
        assert_eq!(c.nodeinfo(".").unwrap().id, c.id());
        assert_eq!(c.nodeinfo("").unwrap().id, c.id());
        assert_eq!(c.nodeinfo(".:").unwrap().id, c.id());
        assert_eq!(c.nodeinfo("e.").unwrap().name, "ech");
        // CONNECT argument size
        assert_eq!(
            c.send_msg(".", NGM_GENERIC_COOKIE, fbsd_sys::NGM_CONNECT, &[0; 96]),
            Err(EINVAL)
        );
        // NAME / RMHOOK argument size
        assert_eq!(
            c.send_msg(".", NGM_GENERIC_COOKIE, fbsd_sys::NGM_NAME, &[0; 31]),
            Err(EINVAL)
        );
        assert_eq!(
            c.send_msg(".", NGM_GENERIC_COOKIE, fbsd_sys::NGM_RMHOOK, &[0; 33]),
            Err(EINVAL)
        );
        // unknown generic command
        assert_eq!(c.send_msg(".", NGM_GENERIC_COOKIE, 99, &[]), Err(EINVAL));
        c.connect(".", "ech:", "a", "y").unwrap();
        assert_eq!(c.show("ech:").unwrap().1.len(), 2);
        c.shutdown("ech:").unwrap();
    });
}

#[test]
fn enxio_for_an_invalid_node_on_the_path() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let echo = peer_node(c, "e");
        core::set_dispatch_config(core::DispatchConfig {
            queue_all: true,
            max_direct_nesting: None,
        });
        // queued shutdown: the node is invalid at once, its hooks are still there
        // SAFETY: a live node.
        assert_eq!(unsafe { k::ngk_rmnode_self(echo) }, 0);
        assert_eq!(c.nodeinfo("e"), Err(ENXIO));
        core::set_dispatch_config(core::DispatchConfig::default());
        kern::sched::run_until_idle();
        assert_eq!(c.nodeinfo("e"), Err(ENOENT));
    });
}

/// docs/netgraph-model.md N5: our hook outlives its peer until our
/// disconnect runs; sending on it meanwhile is ENETDOWN.
#[test]
fn enetdown_when_the_peer_is_gone() {
    clean(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        let h = findhook(c.node(), "h");
        // Make the removal function for our hook wait in our queue.
        // SAFETY: our live hook.
        unsafe { (*h).hk_flags |= fbsd_sys::HK_QUEUE as c_int };
        c.shutdown("h").unwrap();
        // Our hook is still valid and on our list; its peer is the dead hook.
        // SAFETY: our hook is referenced by our node's list.
        unsafe {
            assert_eq!((*h).hk_flags & fbsd_sys::HK_INVALID as c_int, 0);
            assert_eq!((*h).hk_peer, core::dead_hook());
            assert_eq!((*(*h).hk_peer).hk_node, core::dead_node());
        }
        assert_eq!(c.send_data("h", b"lost"), Err(ENETDOWN));
        // A LISTHOOKS to us queues behind the pending removal (FIFO): the hook is gone by then.
        assert!(c.show(".").unwrap().1.is_empty());
        kern::sched::run_until_idle();
        assert_eq!(c.send_data("h", b"lost"), Err(EHOSTUNREACH));
    });
}

/// Queues an item (with an apply record) for `echo`, then invalidates it.
fn queued_then_invalid(c: &Client, make: impl Fn(&Client) -> item_p) -> Vec<i32> {
    let echo = peer_node(c, "e");
    let item = make(c);
    let ap = new_apply();
    // SAFETY: an addressed item we own; the apply record is leaked (static).
    unsafe {
        (*item).apply = ap;
        assert_eq!(k::ngk_snd_item(item, NG_QUEUE), 0);
        // The shutdown function queues behind (OP_PENDING): invalid at once.
        assert_eq!(k::ngk_rmnode_self(echo), 0);
    }
    assert!(take_applied().is_empty());
    kern::sched::run_until_idle();
    take_applied()
}

#[test]
fn eio_and_einval_at_application_time() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let applied = queued_then_invalid(c, |c| {
            let m = kern::mbuf::from_bytes(b"data");
            // SAFETY: a fresh mbuf; our live hook.
            unsafe {
                let item = k::ngk_package_data(m, 0);
                assert_eq!(
                    k::ngk_address_hook(c.node(), item, findhook(c.node(), "e"), 0),
                    0
                );
                item
            }
        });
        assert_eq!(applied, vec![EIO]);
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let applied = queued_then_invalid(c, |c| {
            let msg = macros::mk_message(
                NGM_GENERIC_COOKIE,
                fbsd_sys::NGM_NODEINFO,
                0,
                "",
                fbsd_sys::M_WAITOK as c_int,
            );
            // SAFETY: a fresh message.
            unsafe {
                let item = k::ngk_package_msg(msg, 0);
                assert_eq!(k::ngk_address_path(c.node(), item, cs("e"), 0), 0);
                item
            }
        });
        assert_eq!(applied, vec![EINVAL]);
        // No reply was produced.
        assert_eq!(c.pending_msgs(), 0);
    });
}

#[test]
fn flushed_items_get_enoent() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let echo = peer_node(c, "e");
        let ap = new_apply();
        // SAFETY: fresh message and item; a live node.
        unsafe {
            let msg = macros::mk_message(
                NGM_GENERIC_COOKIE,
                fbsd_sys::NGM_NODEINFO,
                0,
                "",
                fbsd_sys::M_WAITOK as c_int,
            );
            let item = k::ngk_package_msg(msg, 0);
            assert_eq!(k::ngk_address_path(c.node(), item, cs("e"), 0), 0);
            (*item).apply = ap;
            assert_eq!(k::ngk_snd_item(item, NG_QUEUE), 0);
            // ng_rmnode called directly (as MKPEER error paths do): flushes the queue.
            k::rmnode_fn(echo, std::ptr::null_mut(), std::ptr::null_mut(), 0);
        }
        assert_eq!(take_applied(), vec![ENOENT]);
    });
}

#[test]
fn addressing_and_sending_errors() {
    clean(|c| {
        // ng_address_ID: no such ID, and ID 0 → EINVAL (item freed)
        for id in [0u32, 4242] {
            let msg = macros::mk_message(0x1234, 1, 0, "", fbsd_sys::M_WAITOK as c_int);
            // SAFETY: fresh message and item.
            unsafe {
                let item = k::ngk_package_msg(msg, 0);
                assert_eq!(k::ngk_address_id(c.node(), item, id, 0), EINVAL);
            }
        }
        // ng_address_hook with a NULL hook → ENETDOWN (item freed)
        // SAFETY: fresh mbuf and item.
        unsafe {
            let item = k::ngk_package_data(kern::mbuf::from_bytes(b"x"), 0);
            assert_eq!(
                k::ngk_address_hook(c.node(), item, std::ptr::null_mut(), 0),
                ENETDOWN
            );
        }
        // Data item without an mbuf: EINVAL from ng_snd_item, recorded at depth 0
        c.mkpeer(".", "hole", "h", "in").unwrap();
        let ap = new_apply();
        // SAFETY: fresh item; our live hook.
        unsafe {
            let item = k::ngk_package_data(std::ptr::null_mut(), 0);
            assert_eq!(
                k::ngk_address_hook(c.node(), item, findhook(c.node(), "h"), 0),
                0
            );
            (*item).apply = ap;
            assert_eq!(k::ngk_snd_item(item, 0), EINVAL);
        }
        assert_eq!(take_applied(), vec![EINVAL]);
        // A node type without rcvmsg: TEXT_STATUS → EINVAL; other messages dropped silently
        let plain = new_type("plain", |t| {
            t.constructor = Some(ctor_ok);
        });
        register_type(plain);
        c.mkpeer(".", "plain", "p", "in").unwrap();
        assert_eq!(
            c.send_msg("p", NGM_GENERIC_COOKIE, fbsd_sys::NGM_TEXT_STATUS, &[]),
            Err(EINVAL)
        );
        assert!(c.send_msg("p", 0x4242, 7, b"dropped").is_ok());
        // the generic messages work on it
        assert_eq!(c.nodeinfo("p").unwrap().type_name, "plain");
        c.shutdown("p").unwrap();
        c.shutdown("h").unwrap();
        // echo answers TEXT_STATUS like any message it gets
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let r = c
            .request("e", NGM_GENERIC_COOKIE, fbsd_sys::NGM_TEXT_STATUS, b"hi\0")
            .unwrap()
            .unwrap();
        assert_eq!(r.header.cmd, fbsd_sys::NGM_TEXT_STATUS);
        assert_eq!(r.data, b"hi\0");
        c.shutdown("e").unwrap();
    });
}

unsafe extern "C" fn ctor_ok(_node: node_p) -> c_int {
    0
}

#[test]
fn zone_limits_give_enomem() {
    clean(|c| {
        item::set_zone_limits(2, 1);
        c.mkpeer(".", "hole", "h", "in").unwrap();
        // SAFETY: fresh mbufs and items, freed below.
        unsafe {
            let a = k::ngk_package_data(kern::mbuf::from_bytes(b"a"), 0);
            assert!(!a.is_null());
            let live = kern::mbuf::live();
            let b = k::ngk_package_data(kern::mbuf::from_bytes(b"b"), 0);
            assert!(b.is_null(), "the data zone is full");
            assert_eq!(
                kern::mbuf::live(),
                live,
                "ng_package_data frees the mbuf on failure"
            );
            k::ngk_free_item(a);
            // The control zone: ng_send_fn fails with ENOMEM at the limit.
            item::set_zone_limits(0, 1);
            assert_eq!(
                k::ngk_send_fn(
                    c.node(),
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null_mut(),
                    0
                ),
                ENOMEM
            );
            item::set_zone_limits(2, 1);
        }
        assert!(c.send_data("h", b"ok").is_ok());
        item::set_zone_limits(item::DEFAULT_ZONE_LIMIT, item::DEFAULT_ZONE_LIMIT);
        c.shutdown("h").unwrap();
    });
}

#[test]
fn types_and_module_events() {
    let ((), v) = run(|| {
        // ABI mismatch
        let bad = new_type("badabi", |t| t.version = 11);
        // SAFETY: a valid type structure.
        assert_eq!(unsafe { k::ngk_newtype(bad) }, EINVAL);
        assert_eq!(
            core::take_console(),
            vec!["Netgraph: Node type rejected. ABI mismatch. Suggest recompile"]
        );
        let empty = new_type("", |_| {});
        // SAFETY: as above.
        assert_eq!(unsafe { k::ngk_newtype(empty) }, EINVAL);
        let long = new_type(&"x".repeat(32), |_| {});
        // SAFETY: as above.
        assert_eq!(unsafe { k::ngk_newtype(long) }, EINVAL);
        let dup = new_type("echo", |_| {});
        // SAFETY: as above.
        assert_eq!(unsafe { k::ngk_newtype(dup) }, EEXIST);
        assert!(
            core::take_console().is_empty(),
            "no message for name errors"
        );

        // ng_mod_event
        let t = new_type("modtest", |t| {
            t.constructor = Some(ctor_ok);
            t.mod_event = Some(mod_handler);
        });
        let ev = |e: u32| {
            // SAFETY: a valid type structure as the event argument.
            unsafe { k::ngk_mod_event(std::ptr::null_mut(), e as c_int, t.cast()) }
        };
        assert_eq!(ev(fbsd_sys::MOD_LOAD), 0);
        assert_eq!(take_log(), vec!["modtest: event 0, registered=true"]);
        let c = Client::new().unwrap();
        c.mkpeer(".", "modtest", "m", "in").unwrap();
        // a node exists: EBUSY without asking the type (docs/netgraph-model.md N11)
        assert_eq!(ev(fbsd_sys::MOD_UNLOAD), EBUSY);
        assert!(take_log().is_empty());
        c.shutdown("m").unwrap();
        assert_eq!(ev(fbsd_sys::MOD_UNLOAD), 0);
        assert_eq!(take_log(), vec!["modtest: event 1, registered=true"]);
        assert_eq!(c.mkpeer(".", "modtest", "m", "in"), Err(ENXIO));
        // a handler refusing MOD_LOAD: the type is unlinked again
        REFUSE.with(|r| r.set(true));
        assert_eq!(ev(fbsd_sys::MOD_LOAD), EBUSY);
        take_log();
        assert_eq!(c.mkpeer(".", "modtest", "m", "in"), Err(ENXIO));
        // unload after a failed load: refs == 0 → 0 without calling the type
        assert_eq!(ev(fbsd_sys::MOD_UNLOAD), 0);
        assert!(take_log().is_empty());
        // other events without a handler → EOPNOTSUPP
        let nohandler = new_type("nohandler", |_| {});
        // SAFETY: as above.
        let e = unsafe {
            k::ngk_mod_event(
                std::ptr::null_mut(),
                fbsd_sys::MOD_QUIESCE as c_int,
                nohandler.cast(),
            )
        };
        assert_eq!(e, EOPNOTSUPP);
        drop(c);
        assert!(core::check::quiesce().is_empty());
    });
    assert!(v.is_empty(), "{v:#?}");
}

ngharness::kernel_local! {
    static REFUSE: std::cell::Cell<bool> = std::cell::Cell::new(false);
}

unsafe extern "C" fn mod_handler(
    _m: fbsd_sys::module_t,
    event: c_int,
    data: *mut std::ffi::c_void,
) -> c_int {
    // SAFETY: the type structure passed as the event argument.
    let name = unsafe { std::ffi::CStr::from_ptr((*data.cast::<fbsd_sys::ng_type>()).name) };
    // SAFETY: a C string.
    let registered = !unsafe { k::ngk_findtype(name.as_ptr()) }.is_null();
    log(format!(
        "{}: event {event}, registered={registered}",
        name.to_str().unwrap()
    ));
    if REFUSE.with(|r| r.get()) {
        return EBUSY;
    }
    0
}

#[test]
fn ascii_requests_are_checked() {
    clean(|c| {
        // BINARY2ASCII: payload shorter than a header → EINVAL
        assert_eq!(
            c.send_msg(
                ".",
                NGM_GENERIC_COOKIE,
                fbsd_sys::NGM_BINARY2ASCII,
                &[0; 10]
            ),
            Err(EINVAL)
        );
        // ASCII2BINARY: an inner message with arglen 0 → EINVAL
        let hdr = fbsd_sys::ng_mesg_ng_msghdr {
            version: 8,
            ..Default::default()
        };
        assert_eq!(
            c.send_msg(
                ".",
                NGM_GENERIC_COOKIE,
                fbsd_sys::NGM_ASCII2BINARY,
                as_bytes(&hdr)
            ),
            Err(EINVAL)
        );
        // ... unknown command name → ENOSYS
        let mut hdr = fbsd_sys::ng_mesg_ng_msghdr {
            version: 8,
            arglen: 1,
            ..Default::default()
        };
        hdr.cmdstr[..5].copy_from_slice(b"bogus");
        let mut req = as_bytes(&hdr).to_vec();
        req.push(0);
        assert_eq!(
            c.send_msg(".", NGM_GENERIC_COOKIE, fbsd_sys::NGM_ASCII2BINARY, &req),
            Err(ENOSYS)
        );
    });
}
