//! Graph building with echo and hole through the Rust client: mkpeer,
//! connect, name, list, show, rmhook, shutdown (docs/netgraph-model.md §3, §4, §6).

mod ng_common;

use ng_common::*;

#[test]
fn mkpeer_show_and_shutdown() {
    clean(|c| {
        assert_eq!(c.id(), 1, "IDs start at 1");
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let (me, links) = c.show(".").unwrap();
        assert_eq!(me.type_name, "harnessctl");
        assert_eq!(me.hooks, 1);
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].ourhook, "e");
        assert_eq!(links[0].peerhook, "x");
        assert_eq!(links[0].peer.type_name, "echo");
        assert_eq!(links[0].peer.id, 2);
        assert_eq!(links[0].peer.name, "");
        let info = c.nodeinfo("e").unwrap();
        assert_eq!(info.id, 2);
        assert_eq!(info.type_name, "echo");
        assert_eq!(info.hooks, 1);
        c.shutdown("e").unwrap();
        let (me, links) = c.show(".").unwrap();
        assert_eq!(me.hooks, 0);
        assert!(links.is_empty());
        assert_eq!(c.nodeinfo("[2]:"), Err(ENOENT));
    });
}

#[test]
fn connect_two_peers_and_list() {
    clean(|c| {
        c.name(".", "ctl").unwrap();
        c.mkpeer(".", "hole", "h", "in").unwrap();
        c.name("h", "sink").unwrap();
        c.mkpeer(".", "echo", "e", "x").unwrap();
        c.name("e", "mirror").unwrap();
        // connect mirror:y <-> sink:in2 (CONNECT sent to mirror, peer path relative to it)
        c.connect("mirror:", "sink:", "y", "in2").unwrap();
        let (sink, links) = c.show("sink:").unwrap();
        assert_eq!(sink.name, "sink");
        assert_eq!(sink.hooks, 2);
        // LISTHOOKS: newest hook first
        let names: Vec<_> = links
            .iter()
            .map(|l| (l.ourhook.as_str(), l.peerhook.as_str()))
            .collect();
        assert_eq!(names, vec![("in2", "y"), ("in", "h")]);
        assert_eq!(links[0].peer.name, "mirror");
        // path through hooks: ctl -> e (mirror) -> y -> sink
        let info = c.nodeinfo("e.y").unwrap();
        assert_eq!(info.name, "sink");
        let info = c.nodeinfo("ctl:e.y").unwrap();
        assert_eq!(info.name, "sink");
        // LISTNODES order: ID hash buckets 0..15, IDs 1,2,3
        let ids: Vec<u32> = c.list().unwrap().iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        let names: Vec<String> = c
            .list_names()
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names.len(), 3);
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["ctl", "mirror", "sink"]);
        // LISTTYPES: newest registered first; numnodes = refs - 1
        let types = c.types().unwrap();
        let t: Vec<(&str, u32)> = types
            .iter()
            .map(|t| (t.name.as_str(), t.numnodes))
            .collect();
        assert_eq!(t, vec![("harnessctl", 1), ("hole", 1), ("echo", 1)]);
        c.shutdown("sink:").unwrap();
        // echo lost hook y but still has x: alive
        assert_eq!(c.nodeinfo("mirror:").unwrap().hooks, 1);
        c.shutdown("mirror:").unwrap();
        assert_eq!(c.list().unwrap().len(), 1);
    });
}

#[test]
fn rmhook_makes_echo_and_hole_die() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        c.mkpeer(".", "hole", "h", "in").unwrap();
        assert_eq!(c.list().unwrap().len(), 3);
        c.rmhook(".", "e").unwrap();
        // a missing hook is not an error
        c.rmhook(".", "nosuchhook").unwrap();
        // echo's disconnect called ng_rmnode_self: the shutdown ran (queued or direct)
        ngharness::kern::sched::run_until_idle();
        assert_eq!(c.list().unwrap().len(), 2);
        c.rmhook("h", "in").unwrap();
        ngharness::kern::sched::run_until_idle();
        assert_eq!(c.list().unwrap().len(), 1);
        assert_eq!(c.show(".").unwrap().1.len(), 0);
    });
}

#[test]
fn node_names() {
    clean(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        c.mkpeer(".", "hole", "h2", "in").unwrap();
        assert_eq!(c.name("h", "foo.bar"), Err(EINVAL));
        assert_eq!(c.name("h", "a:b"), Err(EINVAL));
        assert_eq!(c.name("h", "[1f]"), Err(EINVAL));
        assert_eq!(c.name("h", "[0x1F]"), Err(EINVAL));
        // "[0]" is not an ID name: it is an ordinary name, found by name
        c.name("h", "[0]").unwrap();
        assert_eq!(c.nodeinfo("[0]:").map(|i| i.id), Ok(2));
        // naming a node with its own name succeeds; another node's name is in use
        c.name("h", "[0]").unwrap();
        assert_eq!(c.name("h2", "[0]"), Err(EADDRINUSE));
        // rename: the old name is released
        c.name("h", "first").unwrap();
        c.name("h2", "[0]").unwrap();
        assert_eq!(c.nodeinfo("first:").unwrap().id, 2);
        // a named node cannot be named ""
        assert_eq!(c.name("h", ""), Err(EINVAL));
        // spaces and brackets are fine
        c.name("h", "a b]").unwrap();
        assert_eq!(c.nodeinfo("a b]:").unwrap().id, 2);
        // ID paths: [2]: and [0x2]: and upper case
        assert_eq!(c.nodeinfo("[2]:").unwrap().id, 2);
        assert_eq!(c.nodeinfo("[0x2]:").unwrap().id, 2);
        // 32-bit truncation: [100000002] is ID 2
        assert_eq!(c.nodeinfo("[100000002]:").unwrap().id, 2);
        assert_eq!(c.nodeinfo("[123456789]:").map(|i| i.id), Err(ENOENT));
        c.shutdown("h").unwrap();
        c.shutdown("h2").unwrap();
    });
}

#[test]
fn many_nodes_grow_the_hashes() {
    clean(|c| {
        for i in 0..40 {
            c.mkpeer(".", "hole", &format!("h{i}"), "in").unwrap();
            c.name(&format!("h{i}"), &format!("n{i}")).unwrap();
        }
        let list = c.list().unwrap();
        assert_eq!(list.len(), 41);
        // 41 nodes: the ID hash has 64 buckets, so IDs come out in order
        let ids: Vec<u32> = list.iter().map(|n| n.id).collect();
        assert_eq!(ids, (1..=41).collect::<Vec<_>>());
        assert_eq!(c.list_names().unwrap().len(), 40);
        for i in 0..40 {
            assert_eq!(c.nodeinfo(&format!("n{i}:")).unwrap().id, i + 2);
        }
        let (_, links) = c.show(".").unwrap();
        assert_eq!(links.len(), 40);
        assert_eq!(links[0].ourhook, "h39");
        for i in 0..40 {
            c.shutdown(&format!("n{i}:")).unwrap();
        }
    });
}

#[test]
fn bypass_splices_the_far_ends() {
    clean(|c| {
        c.mkpeer(".", "echo", "a", "x").unwrap();
        c.mkpeer("a", "hole", "y", "in").unwrap();
        let ours = findhook(c.node(), "a");
        // SAFETY: live hooks of the echo node.
        let (x, echo) = unsafe { ((*ours).hk_peer, (*(*ours).hk_peer).hk_node) };
        let y = findhook(echo, "y");
        // SAFETY: two valid hooks on the same node.
        let e = unsafe { ngharness::netgraph::core::exports::ngk_bypass(x, y) };
        assert_eq!(e, 0);
        ngharness::kern::sched::run_until_idle();
        // echo lost both hooks (and died); our "a" now reaches the hole directly
        let (_, links) = c.show(".").unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].peer.type_name, "hole");
        assert_eq!(links[0].peerhook, "in");
        assert_eq!(c.list().unwrap().len(), 2);
        c.send_data("a", b"spliced").unwrap();
        assert_eq!(
            c.msg_ascii("a", "getstats", "\"in\"").unwrap().unwrap().1,
            "{ frames=1 octets=7 }"
        );
        // hooks on different nodes → EINVAL
        c.mkpeer(".", "echo", "b", "x").unwrap();
        let hb = findhook(c.node(), "b");
        // SAFETY: live hooks.
        let e =
            unsafe { ngharness::netgraph::core::exports::ngk_bypass(hb, findhook(c.node(), "a")) };
        assert_eq!(e, 0, "both on our node: allowed");
        ngharness::kern::sched::run_until_idle();
        // we have no hooks left; the far ends (hole, echo) are connected to each other
        assert!(c.show(".").unwrap().1.is_empty());
        assert_eq!(c.list().unwrap().len(), 3);
        c.mkpeer(".", "echo", "c", "x").unwrap();
        let hc = findhook(c.node(), "c");
        // SAFETY: live hooks on different nodes.
        let e = unsafe { ngharness::netgraph::core::exports::ngk_bypass(hc, (*hc).hk_peer) };
        assert_eq!(e, EINVAL);
        c.shutdown("c").unwrap();
        // the spliced pair is still there: find and remove it by ID
        for n in ngharness::netgraph::core::live_nodes() {
            // SAFETY: live nodes.
            let id = unsafe { (*n).nd_ID };
            if id != c.id() {
                c.shutdown(&format!("[{id:x}]:")).ok();
            }
        }
    });
}

#[test]
fn path_parse_in_place() {
    use ngharness::netgraph::core::path::path_parse;
    let parse = |s: &str| {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        let r = path_parse(&mut b);
        let at = |o: Option<usize>| {
            o.map(|i| {
                let e = b[i..].iter().position(|&c| c == 0).unwrap();
                String::from_utf8_lossy(&b[i..i + e]).into_owned()
            })
        };
        r.map(|p| (at(p.node), at(p.path), at(p.hook)))
    };
    let s = |x: &str| Some(x.to_string());
    assert_eq!(parse("foo:"), Some((s("foo"), None, None)));
    assert_eq!(parse("foo:a.b"), Some((s("foo"), s("a.b"), None)));
    assert_eq!(parse("foo:hook"), Some((s("foo"), s("hook"), s("hook"))));
    assert_eq!(parse(".:.hook."), Some((s("."), s("hook"), s("hook"))));
    assert_eq!(parse("a.b"), Some((None, s("a.b"), None)));
    assert_eq!(parse("."), Some((None, None, None)));
    assert_eq!(parse(""), Some((None, None, None)));
    assert_eq!(parse(":x"), None);
    assert_eq!(parse("a.b:"), None);
    assert_eq!(parse("a:b:c"), None);
    assert_eq!(parse("a:b..c"), None);
}
