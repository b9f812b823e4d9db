//! Generic netgraph messages: parse types and the generic command list
//! (docs/netgraph-model.md §1.6, §1.7, §6, §7.7; docs/socket.md §10.2).

use std::ffi::CStr;

use fbsd_sys::ng_parse_type;
use ngharness::netgraph::parse as p;

const E2BIG: i32 = fbsd_sys::E2BIG as i32;
const ENOENT: i32 = fbsd_sys::ENOENT as i32;

fn parse(t: *const ng_parse_type, s: &str) -> Result<Vec<u8>, i32> {
    // SAFETY: generic types.
    unsafe { p::parse(t, s) }
}

fn unparse(t: *const ng_parse_type, d: &[u8]) -> String {
    // SAFETY: generic types.
    unsafe { p::unparse(t, d) }.unwrap()
}

fn fixed(s: &str, n: usize) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.resize(n, 0);
    v
}

fn nodeinfo(name: &str, ty: &str, id: u32, hooks: u32) -> Vec<u8> {
    let mut v = fixed(name, 32);
    v.extend(fixed(ty, 32));
    v.extend(id.to_le_bytes());
    v.extend(hooks.to_le_bytes());
    v
}

#[test]
fn mkpeer_connect_name_rmhook() {
    let g = p::generic_types();
    let text = "{ type=\"echo\" ourhook=\"a\" peerhook=\"b\" }";
    let b = parse(g.mkpeer, text).unwrap();
    assert_eq!(b.len(), 96);
    assert_eq!(&b[..5], b"echo\0");
    assert_eq!(&b[32..34], b"a\0");
    assert_eq!(&b[64..66], b"b\0");
    assert_eq!(unparse(g.mkpeer, &b), text);
    // Field order in the text does not matter; output is in declaration order.
    assert_eq!(
        parse(g.mkpeer, "{ peerhook=\"b\" type=\"echo\" ourhook=\"a\" }").unwrap(),
        b
    );
    assert_eq!(parse(g.mkpeer, "{ type=\"echo\" hook=\"a\" }"), Err(ENOENT));
    assert_eq!(
        parse(g.mkpeer, &format!("{{ type=\"{}\" }}", "t".repeat(32))),
        Err(E2BIG)
    );

    let text = "{ path=\"x:\" ourhook=\"a\" peerhook=\"b\" }";
    let b = parse(g.connect, text).unwrap();
    assert_eq!(b.len(), 576);
    assert_eq!(&b[..3], b"x:\0");
    assert_eq!(&b[512..514], b"a\0");
    assert_eq!(&b[544..546], b"b\0");
    assert_eq!(unparse(g.connect, &b), text);

    let b = parse(g.name, "{ name=\"foo\" }").unwrap();
    assert_eq!(b, fixed("foo", 32));
    assert_eq!(unparse(g.name, &b), "{ name=\"foo\" }");
    let b = parse(g.rmhook, "{ hook=\"a\" }").unwrap();
    assert_eq!(b, fixed("a", 32));
    assert_eq!(unparse(g.rmhook, &b), "{ hook=\"a\" }");
    assert_eq!(unparse(g.rmhook, &[0; 32]), "{}");
}

#[test]
fn nodeinfo_text() {
    let g = p::generic_types();
    assert_eq!(
        unparse(g.nodeinfo, &nodeinfo("", "ksocket", 3, 1)),
        "{ type=\"ksocket\" id=0x3 hooks=1 }"
    );
    assert_eq!(
        unparse(g.nodeinfo, &nodeinfo("x", "echo", 3, 1)),
        "{ name=\"x\" type=\"echo\" id=0x3 hooks=1 }"
    );
    assert_eq!(
        unparse(g.nodeinfo, &nodeinfo("n", "socket", 0x1f, 0)),
        "{ name=\"n\" type=\"socket\" id=0x1f }"
    );
    let b = parse(g.nodeinfo, "{ name=\"x\" type=\"echo\" id=0x3 hooks=1 }").unwrap();
    assert_eq!(b, nodeinfo("x", "echo", 3, 1));
}

#[test]
fn hooklist_text() {
    let g = p::generic_types();
    let mut d = nodeinfo("a", "echo", 1, 1);
    d.extend(fixed("h", 32));
    d.extend(fixed("p", 32));
    d.extend(nodeinfo("", "hole", 2, 1));
    // The reply's arglen counts capacity (numhooks), not the filled entries
    // (docs/netgraph-model.md N10).
    d.extend(vec![0; 136]);
    assert_eq!(d.len(), 72 + 136 * 2);
    let text = "{ nodeinfo={ name=\"a\" type=\"echo\" id=0x1 hooks=1 } linkinfo=[ { ourhook=\"h\" peerhook=\"p\" nodeinfo={ type=\"hole\" id=0x2 hooks=1 } } ] }";
    assert_eq!(unparse(g.hooklist, &d), text);
    assert_eq!(parse(g.hooklist, text).unwrap(), d[..72 + 136]);
    // An orphaned hook: the peer is the dead node.
    let mut d = nodeinfo("", "echo", 5, 1);
    d.extend(fixed("h", 32));
    d.extend(fixed("dead", 32));
    d.extend(nodeinfo("dead", "dead", 0, 0));
    assert_eq!(
        unparse(g.hooklist, &d),
        "{ nodeinfo={ type=\"echo\" id=0x5 hooks=1 } linkinfo=[ { ourhook=\"h\" peerhook=\"dead\" nodeinfo={ name=\"dead\" type=\"dead\" } } ] }"
    );
    // No hooks.
    assert_eq!(
        unparse(g.hooklist, &nodeinfo("", "hole", 9, 0)),
        "{ nodeinfo={ type=\"hole\" id=0x9 } }"
    );
}

#[test]
fn listnodes_and_typelist_text() {
    let g = p::generic_types();
    let mut d = 2u32.to_le_bytes().to_vec();
    d.extend(nodeinfo("n1", "socket", 1, 1));
    d.extend(nodeinfo("", "ksocket", 2, 1));
    d.extend(vec![0; 72]);
    let text = "{ numnames=2 nodeinfo=[ { name=\"n1\" type=\"socket\" id=0x1 hooks=1 } { type=\"ksocket\" id=0x2 hooks=1 } ] }";
    assert_eq!(unparse(g.listnodes, &d), text);
    assert_eq!(parse(g.listnodes, text).unwrap(), d[..4 + 144]);
    assert_eq!(unparse(g.listnodes, &[0; 4]), "{}");

    let mut d = 2u32.to_le_bytes().to_vec();
    d.extend(fixed("socket", 32));
    d.extend(1u32.to_le_bytes());
    d.extend(fixed("ksocket", 32));
    d.extend(0u32.to_le_bytes());
    let text =
        "{ numtypes=2 typeinfo=[ { typename=\"socket\" numnodes=1 } { typename=\"ksocket\" } ] }";
    assert_eq!(unparse(g.typelist, &d), text);
    assert_eq!(parse(g.typelist, text).unwrap(), d);
    assert_eq!(
        parse(g.typelist, "{ numtypes=1 typeinfo=[ {} {} ] }"),
        Err(E2BIG)
    );
}

#[test]
fn generic_cmdlist_table() {
    let g = p::generic_types();
    let t = p::types();
    let list = p::generic_cmdlist();
    let expect: [(&str, u32, *const ng_parse_type, *const ng_parse_type); 14] = [
        ("shutdown", 1, std::ptr::null(), std::ptr::null()),
        ("mkpeer", 2, g.mkpeer, std::ptr::null()),
        ("connect", 3, g.connect, std::ptr::null()),
        ("name", 4, g.name, std::ptr::null()),
        ("rmhook", 5, g.rmhook, std::ptr::null()),
        ("nodeinfo", 6 | 0x3000_0000, std::ptr::null(), g.nodeinfo),
        ("listhooks", 7 | 0x3000_0000, std::ptr::null(), g.hooklist),
        ("listnames", 8 | 0x3000_0000, std::ptr::null(), g.listnodes),
        ("listnodes", 9 | 0x3000_0000, std::ptr::null(), g.listnodes),
        ("listtypes", 10 | 0x3000_0000, std::ptr::null(), g.typelist),
        ("textconfig", 14, std::ptr::null(), t.string),
        ("textstatus", 11 | 0x3000_0000, std::ptr::null(), t.string),
        ("ascii2binary", 13 | 0x3000_0000, t.ng_mesg, t.ng_mesg),
        ("binary2ascii", 12 | 0x3000_0000, t.ng_mesg, t.ng_mesg),
    ];
    assert_eq!(list.len(), expect.len());
    for (c, (name, cmd, req, resp)) in list.iter().zip(expect) {
        assert_eq!((c.cookie, c.cmd, c.name), (1137070366, cmd, name));
        assert_eq!((c.mesg_type, c.resp_type), (req, resp), "{name}");
    }
    assert_eq!(p::find_generic_name("listnames").unwrap().cmd, 0x3000_0008);
    assert_eq!(
        p::find_generic_cmd(1137070366, 0x3000_0006).unwrap().name,
        "nodeinfo"
    );
    assert!(p::find_generic_cmd(1137070366, 6).is_none());
    assert!(p::find_generic_name("NODEINFO").is_none());

    // The C array: same entries, ended by a NULL name.
    let c = p::generic_cmdlist_c();
    // SAFETY: the arena list is terminated by a NULL name.
    unsafe {
        for (i, e) in list.iter().enumerate() {
            let ce = &*c.add(i);
            assert_eq!(CStr::from_ptr(ce.name).to_str().unwrap(), e.name);
            assert_eq!(
                (ce.cookie, ce.cmd as u32, ce.mesgType, ce.respType),
                (e.cookie, e.cmd, e.mesg_type, e.resp_type)
            );
        }
        assert!((*c.add(list.len())).name.is_null());
        let hit = p::cmdlist_find_cmd(c, 1137070366, 0x3000_0007);
        assert_eq!(CStr::from_ptr((*hit).name).to_str().unwrap(), "listhooks");
        let hit = p::cmdlist_find_name(c, b"connect");
        assert_eq!((*hit).cmd, 3);
        assert!(p::cmdlist_find_name(c, b"conn").is_null());
        assert!(p::cmdlist_find_cmd(c, 1, 3).is_null());
        assert!(p::cmdlist_find_cmd(std::ptr::null(), 1, 3).is_null());
    }
}

#[test]
fn hole_stats_reply() {
    // docs/netgraph-model.md §8.2 / N9: struct of two uint64, all-default prints {}.
    let t = p::types();
    let fields = Box::leak(Box::new([
        fbsd_sys::ng_parse_struct_field {
            name: c"frames".as_ptr(),
            type_: t.uint64,
            alignment: 0,
        },
        fbsd_sys::ng_parse_struct_field {
            name: c"octets".as_ptr(),
            type_: t.uint64,
            alignment: 0,
        },
        fbsd_sys::ng_parse_struct_field::default(),
    ]));
    let stats: *const ng_parse_type = Box::leak(Box::new(ng_parse_type {
        supertype: t.struct_,
        info: fields.as_ptr().cast(),
        ..Default::default()
    }));
    assert_eq!(unparse(stats, &[0; 16]), "{}");
    let mut d = 3u64.to_le_bytes().to_vec();
    d.extend(180u64.to_le_bytes());
    assert_eq!(unparse(stats, &d), "{ frames=3 octets=180 }");
    // The request argument: a bare hookbuf string.
    assert_eq!(parse(t.hookbuf, "\"h\"").unwrap(), fixed("h", 32));
}

#[test]
fn binary2ascii_of_a_whole_message() {
    // BINARY2ASCII's own argument: a struct ng_mesg with its data as bytes.
    let t = p::types();
    let mut m = vec![8u8, 0, 0, 0];
    m.extend(14u32.to_le_bytes()); // arglen
    m.extend(0x3000_0006u32.to_le_bytes()); // cmd
    m.extend(1u32.to_le_bytes()); // flags NGF_RESP
    m.extend(7u32.to_le_bytes()); // token
    m.extend(1137070366u32.to_le_bytes());
    m.extend(fixed("nodeinfo", 32));
    m.extend(b"hello, world!\0");
    assert_eq!(
        unparse(t.ng_mesg, &m),
        "{ version=8 arglen=14 cmd=805306374 flags=0x1 token=7 typecookie=1137070366 cmdstr=\"nodeinfo\" \
         data=[ 0x68 0x65 0x6c 0x6c 0x6f 0x2c 0x20 0x77 0x6f 0x72 0x6c 0x64 0x21 ] }"
    );
}
