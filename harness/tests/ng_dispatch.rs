//! Dispatch (docs/netgraph-model.md §5.5–§5.10): echo data and messages, direct vs
//! queued delivery and FIFO order, the apply callback after reply delivery,
//! self-shutdown from inside a method, MKPEER/CONNECT call order, callouts,
//! the stack-pressure and force-queue modes, and the sleep model.

mod ng_common;

use std::ffi::{c_char, c_int, c_void};

use fbsd_sys::{callout, hook_p, item_p, node_p};
use ng_common::*;
use ngharness::kern::{self, sched};
use ngharness::netgraph::client::{Client, NGM_GENERIC_COOKIE};
use ngharness::netgraph::core::exports as k;
use ngharness::netgraph::core::{self, DispatchConfig};
use ngharness::netgraph::echo::NGM_ECHO_COOKIE;
use ngharness::netgraph::macros;

const NG_QUEUE: c_int = fbsd_sys::NG_QUEUE as c_int;

fn id(node: node_p) -> u32 {
    // SAFETY: live node.
    unsafe { (*node).nd_ID }
}

fn hname(hook: hook_p) -> String {
    // SAFETY: live hook.
    String::from_utf8_lossy(unsafe { macros::hook_name(hook) }).into_owned()
}

// ---- "rec": records what it receives ---------------------------------------

unsafe extern "C" fn ok_ctor(_n: node_p) -> c_int {
    0
}

unsafe extern "C" fn rec_rcvmsg(_n: node_p, item: item_p, _h: hook_p) -> c_int {
    // SAFETY: we own the item handed to us.
    unsafe {
        let msg = macros::ngi_get_msg(item);
        log(format!("msg {}", (*msg).header.cmd));
        macros::free_msg(msg);
        macros::free_item(item);
    }
    0
}

unsafe extern "C" fn rec_rcvdata(_h: hook_p, item: item_p) -> c_int {
    // SAFETY: we own the item handed to us.
    unsafe {
        let m = macros::ngi_get_m(item);
        log(format!(
            "data {}",
            String::from_utf8_lossy(&kern::mbuf::to_vec(m))
        ));
        macros::free_m(m);
        macros::free_item(item);
    }
    0
}

fn register_rec() {
    register_type(new_type("rec", |t| {
        t.constructor = Some(ok_ctor);
        t.rcvmsg = Some(rec_rcvmsg);
        t.rcvdata = Some(rec_rcvdata);
    }));
}

#[test]
fn echo_returns_data_on_the_same_stack() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        c.send_data("e", b"hello").unwrap();
        // Readers all the way: echo forwards straight back into us.
        assert_eq!(c.pending_data(), 1);
        assert_eq!(c.recv_data(), Some(("e".to_string(), b"hello".to_vec())));
        c.shutdown("e").unwrap();
    });
}

#[test]
fn echo_returns_messages_as_responses() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let echo_id = c.nodeinfo("e").unwrap().id;
        let r = c
            .request("e", NGM_ECHO_COOKIE, 42, b"abc")
            .unwrap()
            .expect("reply");
        assert_eq!(r.from, echo_id);
        assert_eq!(r.header.cmd, 42);
        assert_eq!(r.header.typecookie, NGM_ECHO_COOKIE);
        assert_eq!(r.header.flags, fbsd_sys::NGF_RESP);
        assert_eq!(r.data, b"abc");
        // Replies are addressed by ID: no arrival hook.
        assert_eq!(r.hook, None);
        c.shutdown("e").unwrap();
    });
}

#[test]
fn hk_queue_defers_delivery() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let ours = findhook(c.node(), "e");
        // Flags are examined on the receiving hook: queue everything for echo's "x".
        // SAFETY: our live hook and its live peer.
        unsafe { (*(*ours).hk_peer).hk_flags |= fbsd_sys::HK_QUEUE as c_int };
        c.send_data("e", b"q").unwrap();
        assert_eq!(c.pending_data(), 0, "queued, not delivered");
        sched::run_until_idle();
        assert_eq!(c.recv_data(), Some(("e".to_string(), b"q".to_vec())));
        c.shutdown("e").unwrap();
    });
}

#[test]
fn queued_items_run_fifo_and_are_never_overtaken() {
    clean(|c| {
        register_rec();
        c.mkpeer(".", "rec", "r", "in").unwrap();
        let msg = macros::mk_message(0x5151, 1, 0, "", fbsd_sys::M_WAITOK as c_int);
        // SAFETY: a fresh message and item.
        unsafe {
            let item = k::ngk_package_msg(msg, 0);
            assert_eq!(k::ngk_address_path(c.node(), item, cs("r"), 0), 0);
            assert_eq!(k::ngk_snd_item(item, NG_QUEUE), 0);
        }
        // A reader sent directly now must queue behind the queued writer.
        c.send_data("r", b"second").unwrap();
        assert!(take_log().is_empty());
        sched::run_until_idle();
        assert_eq!(take_log(), vec!["msg 1", "data second"]);
        // With the queue empty, direct dispatch again.
        c.send_data("r", b"third").unwrap();
        assert_eq!(take_log(), vec!["data third"]);
        c.shutdown("r").unwrap();
    });
}

ngharness::kernel_local! {
    static PENDING_AT_APPLY: std::cell::Cell<usize> = std::cell::Cell::new(usize::MAX);
    static CLIENT: std::cell::Cell<*const Client> = std::cell::Cell::new(std::ptr::null());
}

unsafe extern "C" fn apply_probe(_ctx: *mut c_void, error: c_int) {
    let c = CLIENT.with(|c| c.get());
    // SAFETY: the test keeps the client alive while the message is in flight.
    let n = unsafe { (*c).pending_msgs() };
    PENDING_AT_APPLY.with(|p| p.set(n));
    log(format!("apply({error})"));
}

/// docs/netgraph-model.md N4: a node answering with NG_RESPOND_MSG has
/// returned from its rcvmsg before the reply is delivered, and the apply
/// callback fires only once the reply has been.
#[test]
fn apply_fires_after_the_reply_was_delivered() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        CLIENT.with(|p| p.set(c as *const Client));
        let ap = Box::leak(Box::new(fbsd_sys::ng_apply_info {
            apply: Some(apply_probe),
            context: std::ptr::null_mut(),
            refs: 0,
            error: 0,
        }));
        let msg = macros::mk_message(NGM_ECHO_COOKIE, 7, 0, "", fbsd_sys::M_WAITOK as c_int);
        // SAFETY: a fresh message and item; the record is leaked (static).
        unsafe {
            let item = k::ngk_package_msg(msg, 0);
            assert_eq!(k::ngk_address_path(c.node(), item, cs("e"), 0), 0);
            (*item).apply = ap;
            // Echo runs directly and queues its reply: the request is applied, the reply is not.
            assert_eq!(k::ngk_snd_item(item, 0), 0);
        }
        assert!(take_log().is_empty(), "apply must wait for the reply");
        assert_eq!(ap.refs, 1);
        sched::run_until_idle();
        assert_eq!(take_log(), vec!["apply(0)"]);
        assert_eq!(
            PENDING_AT_APPLY.with(|p| p.get()),
            1,
            "reply delivered before the callback"
        );
        assert_eq!(ap.refs, 0);
        assert!(c.recv_msg().is_some());
        // A reply whose delivery fails records the error at depth 1.
        c.set_msg_limit(Some(0));
        assert_eq!(c.send_msg("e", NGM_ECHO_COOKIE, 8, &[]), Err(ENOBUFS));
        c.set_msg_limit(None);
        c.shutdown("e").unwrap();
    });
}

// ---- self shutdown from inside a method -----------------------------------

unsafe extern "C" fn selfkill_rcvmsg(node: node_p, item: item_p, _h: hook_p) -> c_int {
    // SAFETY: we own the item; the node is live.
    unsafe {
        macros::free_item(item);
        let e = k::ngk_rmnode_self(node);
        log(format!(
            "rcvmsg returns (rmnode_self={e}, valid={})",
            macros::node_is_valid(node)
        ));
    }
    0
}

unsafe extern "C" fn selfkill_shutdown(node: node_p) -> c_int {
    log("shutdown");
    // SAFETY: the creation reference, dropped exactly once.
    unsafe { macros::node_unref(node) };
    0
}

#[test]
fn rmnode_self_inside_a_method_is_queued() {
    clean(|c| {
        register_type(new_type("selfkill", |t| {
            t.constructor = Some(ok_ctor);
            t.rcvmsg = Some(selfkill_rcvmsg);
            t.shutdown = Some(selfkill_shutdown);
        }));
        c.mkpeer(".", "selfkill", "s", "in").unwrap();
        c.send_msg("s", 0x77, 1, &[]).unwrap();
        assert_eq!(
            take_log(),
            vec!["rcvmsg returns (rmnode_self=0, valid=false)"]
        );
        // Invalid at once: invisible to look-ups.
        assert_eq!(c.nodeinfo("[2]:"), Err(ENOENT));
        sched::run_until_idle();
        assert_eq!(take_log(), vec!["shutdown"]);
        assert!(c.show(".").unwrap().1.is_empty());
    });
}

// ---- MKPEER / CONNECT call order (docs/netgraph-model.md N1, N2) ----------

unsafe extern "C" fn lg_ctor(node: node_p) -> c_int {
    log(format!("ctor [{}]", id(node)));
    0
}

unsafe extern "C" fn lg_newhook(node: node_p, _hook: hook_p, name: *const c_char) -> c_int {
    // SAFETY: a C string from the core.
    let name = unsafe { std::ffi::CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: live node.
    let nh = unsafe { macros::numhooks(node) };
    log(format!("newhook [{}] {name} numhooks={nh}", id(node)));
    if name == "bad" {
        return 1; // EPERM
    }
    0
}

unsafe extern "C" fn lg_connect(hook: hook_p) -> c_int {
    // SAFETY: live hook with a live peer.
    unsafe {
        let inv = |h: hook_p| (*h).hk_flags & fbsd_sys::HK_INVALID as c_int != 0;
        log(format!(
            "connect [{}] {} invalid={} peer_invalid={} numhooks={}",
            id((*hook).hk_node),
            hname(hook),
            inv(hook),
            inv((*hook).hk_peer),
            macros::numhooks((*hook).hk_node)
        ));
        if hname(hook) == "refuse" {
            return 1;
        }
    }
    0
}

unsafe extern "C" fn lg_disconnect(hook: hook_p) -> c_int {
    // SAFETY: live hook.
    unsafe {
        log(format!(
            "disconnect [{}] {} numhooks={}",
            id((*hook).hk_node),
            hname(hook),
            macros::numhooks((*hook).hk_node)
        ))
    };
    0
}

fn register_lg() {
    register_type(new_type("lg", |t| {
        t.constructor = Some(lg_ctor);
        t.newhook = Some(lg_newhook);
        t.connect = Some(lg_connect);
        t.disconnect = Some(lg_disconnect);
    }));
}

#[test]
fn mkpeer_call_order() {
    clean(|c| {
        register_lg();
        c.mkpeer(".", "lg", "t1", "up").unwrap();
        c.name("t1", "t1").unwrap();
        take_log();
        c.mkpeer("t1:", "lg", "a", "b").unwrap();
        assert_eq!(
            take_log(),
            vec![
                "ctor [3]",
                "newhook [2] a numhooks=1",
                "newhook [3] b numhooks=0",
                "connect [2] a invalid=true peer_invalid=true numhooks=2",
                "connect [3] b invalid=true peer_invalid=true numhooks=1",
            ]
        );
        // A failing connect: the new node goes away; our disconnect runs later.
        c.send_msg("t1:", 0, 0, &[]).ok();
        take_log();
        assert_eq!(c.mkpeer("t1:", "lg", "refuse", "c"), Err(1));
        let log1 = take_log();
        assert_eq!(log1[0], "ctor [4]");
        assert!(
            log1.contains(&"disconnect [4] c numhooks=0".to_string()),
            "{log1:?}"
        );
        sched::run_until_idle();
        let log2 = take_log();
        // Our disconnect was queued: it runs after the MKPEER message finished.
        assert!(
            !log1.iter().any(|l| l.starts_with("disconnect [2]")),
            "{log1:?}"
        );
        assert_eq!(log2, vec!["disconnect [2] refuse numhooks=2"]);
        assert_eq!(
            c.list().unwrap().len(),
            3,
            "{:?} {log1:?} {log2:?}",
            c.list()
        );
        c.shutdown("t1:").unwrap();
        // lg nodes survive losing their hooks
        assert_eq!(c.list().unwrap().len(), 2);
        c.shutdown("[3]:").unwrap();
        sched::run_until_idle();
        assert_eq!(c.list().unwrap().len(), 1);
    });
}

#[test]
fn connect_call_order_and_errors() {
    clean(|c| {
        register_lg();
        c.mkpeer(".", "lg", "h1", "up").unwrap();
        c.name("h1", "t1").unwrap();
        c.mkpeer(".", "lg", "h2", "up").unwrap();
        c.name("h2", "t2").unwrap();
        take_log();
        c.connect("t1:", "t2:", "a", "b").unwrap();
        assert_eq!(
            take_log(),
            vec![
                "newhook [2] a numhooks=1",
                "newhook [3] b numhooks=1",
                "connect [3] b invalid=true peer_invalid=true numhooks=2",
                "connect [2] a invalid=true peer_invalid=false numhooks=2",
            ]
        );
        assert_eq!(c.show("t1:").unwrap().1.len(), 2);
        // The peer's newhook refuses: its error is sendto's error; our hook goes.
        assert_eq!(c.connect("t1:", "t2:", "x", "bad"), Err(1));
        sched::run_until_idle();
        assert_eq!(c.show("t1:").unwrap().0.hooks, 2);
        assert_eq!(
            core::take_console(),
            vec!["failed in ng_con_part2()", "failed in ng_con_nodes(): 1"]
        );
        // Connecting a node to itself: part 2 is queued (same node), still completes.
        c.connect("t1:", "t1:", "p", "q").unwrap();
        let (_, links) = c.show("t1:").unwrap();
        assert!(links.iter().any(|l| l.ourhook == "p" && l.peerhook == "q"));
        take_log();
        c.shutdown("t1:").unwrap();
        c.shutdown("t2:").unwrap();
    });
}

// ---- callouts ----------------------------------------------------------------

unsafe extern "C" fn timer_fn(node: node_p, _h: hook_p, arg1: *mut c_void, arg2: c_int) {
    log(format!(
        "fired [{}] {} {arg2} at {}",
        id(node),
        arg1 as usize,
        sched::now_ticks()
    ));
}

unsafe extern "C" fn timer_rcvmsg(node: node_p, item: item_p, _h: hook_p) -> c_int {
    // SAFETY: we own the item; our private data is a callout.
    unsafe {
        let msg = macros::ngi_get_msg(item);
        let cmd = (*msg).header.cmd;
        macros::free_msg(msg);
        macros::free_item(item);
        let c = (*node).nd_private.cast::<callout>();
        match cmd {
            1 => log(format!(
                "arm {}",
                k::ngk_callout(
                    c,
                    node,
                    std::ptr::null_mut(),
                    10,
                    Some(timer_fn),
                    7 as *mut c_void,
                    9
                )
            )),
            _ => log(format!("stop {}", k::ngk_uncallout(c, node))),
        }
    }
    0
}

unsafe extern "C" fn timer_ctor(node: node_p) -> c_int {
    // SAFETY: our new node; a zeroed callout as private data.
    unsafe { (*node).nd_private = Box::into_raw(Box::new(std::mem::zeroed::<callout>())).cast() };
    0
}

unsafe extern "C" fn timer_shutdown(node: node_p) -> c_int {
    // SAFETY: our private callout; the creation reference is dropped once.
    unsafe {
        let c = (*node).nd_private.cast::<callout>();
        k::ngk_uncallout(c, node);
        drop(Box::from_raw(c));
        macros::node_unref(node);
    }
    0
}

#[test]
fn callouts_fire_in_model_time() {
    clean(|c| {
        register_type(new_type("timer", |t| {
            t.constructor = Some(timer_ctor);
            t.rcvmsg = Some(timer_rcvmsg);
            t.shutdown = Some(timer_shutdown);
        }));
        c.mkpeer(".", "timer", "t", "in").unwrap();
        let t0 = sched::now_ticks();
        c.send_msg("t", 1, 1, &[]).unwrap();
        assert_eq!(take_log(), vec!["arm 0"]);
        sched::advance(9);
        assert!(take_log().is_empty());
        sched::advance(1);
        assert_eq!(take_log(), vec![format!("fired [2] 7 9 at {}", t0 + 10)]);
        // Armed, then stopped: the item is freed, nothing fires.
        c.send_msg("t", 1, 1, &[]).unwrap();
        c.send_msg("t", 1, 2, &[]).unwrap();
        assert_eq!(take_log(), vec!["arm 0", "stop 1"]);
        sched::advance(20);
        assert!(take_log().is_empty());
        // Re-arming a pending callout frees the previous item.
        c.send_msg("t", 1, 1, &[]).unwrap();
        c.send_msg("t", 1, 1, &[]).unwrap();
        take_log();
        sched::advance(10);
        assert_eq!(take_log().len(), 1);
        // Shutdown with a pending callout: the shutdown method stops it.
        c.send_msg("t", 1, 1, &[]).unwrap();
        take_log();
        c.shutdown("t").unwrap();
        sched::advance(20);
        assert!(take_log().is_empty());
    });
}

// ---- dispatch modes --------------------------------------------------------------

#[test]
fn stack_pressure_turns_deep_chains_into_queueing() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        core::set_dispatch_config(DispatchConfig {
            queue_all: false,
            max_direct_nesting: Some(1),
        });
        c.send_data("e", b"deep").unwrap();
        // client → echo ran directly (nesting 0); echo → client (nesting 1) was queued.
        assert_eq!(c.pending_data(), 0);
        sched::run_until_idle();
        assert_eq!(c.pending_data(), 1);
        c.recv_data();
        core::set_dispatch_config(DispatchConfig::default());
        c.shutdown("e").unwrap();
    });
}

#[test]
fn queue_all_mode_still_completes_requests() {
    clean(|c| {
        core::set_dispatch_config(DispatchConfig {
            queue_all: true,
            max_direct_nesting: None,
        });
        c.mkpeer(".", "echo", "e", "x").unwrap();
        c.mkpeer(".", "hole", "h", "in").unwrap();
        c.connect(".", "e", "y", "in2").ok();
        assert_eq!(c.list().unwrap().len(), 3);
        let r = c
            .request("e", NGM_ECHO_COOKIE, 5, b"z")
            .unwrap()
            .expect("reply");
        assert_eq!(r.data, b"z");
        c.send_data("e", b"d").unwrap();
        assert_eq!(c.pending_data(), 0);
        sched::run_until_idle();
        assert_eq!(c.recv_data().map(|d| d.1), Some(b"d".to_vec()));
        c.shutdown("e").unwrap();
        c.shutdown("h").unwrap();
        core::set_dispatch_config(DispatchConfig::default());
    });
}

// ---- the sleep model -------------------------------------------------------------

#[test]
fn sleep_timeouts_wakeups_and_deadlock() {
    let ((), v) = run(|| {
        let chan = 0x1000usize;
        let t0 = sched::now_ticks();
        assert_eq!(sched::sleep_on(chan, Some(5), "timed"), EWOULDBLOCK);
        assert_eq!(sched::now_ticks(), t0 + 5);
        // A timer wakes the sleeper before its timeout.
        sched::add_timer(3, Box::new(move || sched::wakeup_chan(chan, false)));
        assert_eq!(sched::sleep_on(chan, Some(100), "woken"), 0);
        assert_eq!(sched::now_ticks(), t0 + 8);
        // wakeup before sleeping is lost (no sleeper): the sleep times out
        sched::wakeup_chan(chan, false);
        assert_eq!(sched::sleep_on(chan, Some(1), "lost"), EWOULDBLOCK);
        // An untimed sleep with nothing runnable is a deadlock.
        assert_eq!(sched::sleep_on(chan, None, "forever"), EWOULDBLOCK);
    });
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].contains("deadlock: sleeping on \"forever\""), "{v:#?}");
}

#[test]
fn msleep_requires_its_interlock() {
    let ((), v) = run(|| {
        let mut ex = ngharness::exports::Exports::new();
        sched::register(&mut ex);
        type SleepFn = unsafe extern "C" fn(
            *const c_void,
            *mut fbsd_sys::lock_object,
            c_int,
            *const c_char,
            i64,
            i64,
            c_int,
        ) -> c_int;
        // SAFETY: the exported `_sleep` host function has this signature.
        let sleep: SleepFn = unsafe { std::mem::transmute(ex.get("_sleep").unwrap().addr) };
        let m: &'static mut fbsd_sys::mtx = Box::leak(Box::default());
        m.lock_object.lo_name = cs("test mtx");
        // Lock class 1 (sleep mutex) in lo_flags.
        m.lock_object.lo_flags = 1 << 24;
        static CHAN: u8 = 0;
        let chan = std::ptr::addr_of!(CHAN).cast::<c_void>();
        // SAFETY: a valid (unowned) mutex and wmesg; 2 ticks timeout.
        let r = unsafe {
            sleep(
                chan,
                &mut m.lock_object,
                0,
                cs("nolock"),
                2 * sched::TICK_SBT,
                0,
                0,
            )
        };
        assert_eq!(r, EWOULDBLOCK);
        // Held by curthread: released during the sleep and taken back.
        m.mtx_lock = kern::thread::curthread() as u64;
        // SAFETY: as above.
        let r = unsafe {
            sleep(
                chan,
                &mut m.lock_object,
                0,
                cs("held"),
                2 * sched::TICK_SBT,
                0,
                0,
            )
        };
        assert_eq!(r, EWOULDBLOCK);
        assert_eq!(m.mtx_lock, kern::thread::curthread() as u64);
        // PDROP: not re-acquired.
        // SAFETY: as above.
        unsafe {
            sleep(
                chan,
                &mut m.lock_object,
                fbsd_sys::PDROP as c_int,
                cs("pdrop"),
                sched::TICK_SBT,
                0,
                0,
            )
        };
        assert_eq!(m.mtx_lock, 0);
    });
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].contains("interlock test mtx") && v[0].contains("not held"),
        "{v:#?}"
    );
}

#[test]
fn generic_requests_to_a_busy_node_queue_behind() {
    clean(|c| {
        register_rec();
        c.mkpeer(".", "rec", "r", "in").unwrap();
        // Queue a data item for rec, then ask for NODEINFO: a reader behind it.
        let m = kern::mbuf::from_bytes(b"first");
        // SAFETY: fresh mbuf and item; our live hook.
        unsafe {
            let item = k::ngk_package_data(m, 0);
            assert_eq!(
                k::ngk_address_hook(c.node(), item, findhook(c.node(), "r"), 0),
                0
            );
            assert_eq!(k::ngk_snd_item(item, NG_QUEUE), 0);
        }
        let info = c.nodeinfo("r").unwrap();
        assert_eq!(info.type_name, "rec");
        // The queue thread ran the data first (FIFO), while the client slept.
        assert_eq!(take_log(), vec!["data first"]);
        let _ = NGM_GENERIC_COOKIE;
        c.shutdown("r").unwrap();
    });
}

#[test]
fn many_packets_recycle_quarantined_items() {
    clean(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        let n = ngharness::netgraph::core::item::ITEM_QUARANTINE + 1000;
        for _ in 0..n {
            c.send_data("h", b"x").unwrap();
        }
        assert_eq!(core::live_items(), 0);
        let r = c.msg_ascii("h", "getstats", "\"in\"").unwrap().unwrap();
        assert_eq!(r.1, format!("{{ frames={n} octets={n} }}"));
        c.shutdown("h").unwrap();
    });
}
