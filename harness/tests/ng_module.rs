//! A node type written in C (tests/ng_common/ng_cecho.c), built as a real
//! FreeBSD .ko, loaded through the harness loader (NETGRAPH_INIT →
//! ng_mod_event), and driven through the core: the inline netgraph macros
//! compiled into the module must work against the core's structures.

mod ng_common;

use ng_common::*;
use ngharness::kern::{self, loader, sched};
use ngharness::netgraph::client::Client;
use ngharness::netgraph::core;

const COOKIE: u32 = 1_700_000_001;

#[test]
fn c_module_node_type() {
    let Some(ko) = build_module("ng_cecho") else {
        return;
    };
    let ((), v) = run(move || {
        ngharness::netgraph::boot();
        kern::thread::set_curthread(kern::thread::thread0());
        let id = loader::load(&ko).expect("kldload ng_cecho.ko");
        assert!(loader::module_loaded("ng_cecho"));
        let c = Client::new().unwrap();
        let types: Vec<String> = c.types().unwrap().into_iter().map(|t| t.name).collect();
        assert!(types.contains(&"cecho".to_string()), "{types:?}");
        c.mkpeer(".", "cecho", "c", "up").unwrap();
        assert_eq!(
            c.mkpeer("c", "echo", "bad", "x"),
            Err(EINVAL),
            "cecho refuses hook \"bad\""
        );
        // data goes back out of the arrival hook (NG_FWD_ITEM_HOOK inside the module)
        c.send_data("c", b"ping").unwrap();
        assert_eq!(c.recv_data(), Some(("c".to_string(), b"ping".to_vec())));
        // NG_MKRESPONSE + NG_RESPOND_MSG compiled into the module
        let r = c
            .request("c", COOKIE, 2, b"payload")
            .unwrap()
            .expect("reply");
        assert_eq!(r.data, b"payload");
        assert_eq!(r.header.flags, fbsd_sys::NGF_RESP);
        let r = c.request("c", COOKIE, 1, &[]).unwrap().expect("reply");
        let msgs = i32::from_ne_bytes(r.data[0..4].try_into().unwrap());
        let pkts = i32::from_ne_bytes(r.data[4..8].try_into().unwrap());
        assert_eq!((msgs, pkts), (2, 1));
        assert_eq!(c.send_msg("c", COOKIE, 99, &[]), Err(EINVAL));
        // a node exists: the module cannot be unloaded
        assert!(loader::unload(id).is_err());
        // self-destruction from inside rcvmsg: queued, node invalid at once
        c.send_msg("c", COOKIE, 3, &[]).unwrap();
        sched::run_until_idle();
        assert_eq!(c.list().unwrap().len(), 1);
        // again, and this time the node dies with its last hook
        c.mkpeer(".", "cecho", "c2", "up").unwrap();
        c.rmhook(".", "c2").unwrap();
        sched::run_until_idle();
        assert_eq!(c.list().unwrap().len(), 1);
        drop(c);
        assert!(core::check::quiesce().is_empty());
        loader::unload(id).expect("kldunload");
        let c = Client::new().unwrap();
        assert_eq!(c.mkpeer(".", "cecho", "c", "up"), Err(ENXIO));
        drop(c);
        assert!(core::check::quiesce().is_empty());
    });
    assert!(v.is_empty(), "{v:#?}");
}
