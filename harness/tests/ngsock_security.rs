//! ng_socket against a hostile local user: addresses that name "this node"
//! where there is none, and the longest node names in getsockname. Each
//! must give its errno or result, record no violation and leave the sockets
//! usable.

mod ngsock_util;

use ngharness::kern::domain as kd;
use ngsock_util::*;

/// Every spelling of an address whose node part is `.` ("this node").
const HERE: [&str; 9] = [
    ".:", ".:hook", ".:a.b", ".:.", ".:hook.", ".:.hook", ".:a.b.c", ".::", ".:x:y",
];

/// A data socket has no node of its own: connecting it to "this node"
/// names nothing. FreeBSD's netgraph resolves the `.` node part by
/// dereferencing the missing starting node (a kernel crash any user can
/// cause); here it is refused with EINVAL, the errno FreeBSD gives every
/// other address relative to the missing node (`hook`, `.`, the empty one).
#[test]
fn data_connect_to_this_node_is_refused() {
    let Some(k) = boot() else { return };
    let (cs, ds, id) = sock_node("victim");
    let spare = ctl();
    kd::bind(spare, &sa("spare")).unwrap();
    as_user(|| {
        let d = data();
        for p in HERE {
            assert_eq!(kd::connect(d, &sa(p)), Err(EINVAL), "connect {p:?}");
            expect_clean();
        }
        // Without a NUL, with junk after it, and at the longest sg_len.
        for raw in [&b".:"[..], b".:\0junk", b".:h\0"] {
            assert_eq!(kd::connect(d, &sa_raw(raw)), Err(EINVAL), "{raw:?}");
            expect_clean();
        }
        let mut long = b".:".to_vec();
        long.resize(253, b'h');
        assert_eq!(kd::connect(d, &sa_raw(&long)), Err(EINVAL));
        expect_clean();
        // The same for relative addresses, as in FreeBSD.
        for p in ["", ".", "hook", "a.b"] {
            assert_eq!(kd::connect(d, &sa(p)), Err(EINVAL), "connect {p:?}");
        }
        expect_clean();
        // The socket is still floating and connects to a real node.
        assert_eq!(kd::connect(d, &sa("spare:")), Ok(()));
        assert_eq!(sockname(d), Ok("spare".into()));
    });
    // The control socket still addresses its own node as ".:".
    assert_eq!(nodeinfo(cs, ".:").unwrap().id, id);
    assert_eq!(nodeinfo(cs, ".").unwrap().id, id);
    assert_eq!(kd::getsockname(ds).map(|a| a.len()), Ok(34));
    k.finish();
}

/// Node names of 31 bytes (NG_NODESIZ - 1), the longest there are, fill the
/// 32-byte address field with their NUL; FreeBSD's getsockname copies the
/// name into a smaller address. Here the address is 34 bytes whatever the
/// caller's buffer, and nothing is written or read beyond it.
#[test]
fn longest_node_names_in_getsockname() {
    let Some(k) = boot() else { return };
    let cs = ctl();
    let name31 = "n".repeat(31);
    kd::bind(cs, &sa(&name31)).unwrap();
    let ds = data();
    kd::connect(ds, &sa(&format!("{name31}:"))).unwrap();
    for fd in [cs, ds] {
        let raw = kd::getsockname(fd).unwrap();
        assert_eq!(raw.len(), 34);
        assert_eq!((raw[0], raw[1]), (34, FAM as u8));
        assert_eq!(&raw[2..33], name31.as_bytes());
        assert_eq!(raw[33], 0);
        expect_clean();
    }
    // A 32-byte name does not exist: bind refuses it (sg_len 35).
    let name32 = "m".repeat(32);
    assert_eq!(kd::bind(cs, &sa(&name32)), Err(EINVAL));
    assert_eq!(sockname(cs), Ok(name31.clone()));
    // Renamed through NGM_NAME to another 31-byte name.
    let other = "o".repeat(31);
    name(cs, ".", &other).unwrap();
    assert_eq!(sockname(ds), Ok(other));
    expect_clean();
    k.finish();
}

/// NGM_BINARY2ASCII of a generic message whose string field has no NUL, or
/// whose list count runs past its entries: netgraph's core would print on
/// past the field and past the message (kernel memory, to the sender).
/// ng_socket refuses such a request with EINVAL (found by the ngsock-calls
/// fuzz target; `fuzz/regress/ngsock-calls/binary2ascii-string-without-nul`).
/// A well-formed one is still converted.
#[test]
fn binary2ascii_of_generic_messages_read_nothing_outside() {
    let Some(k) = boot() else { return };
    let (cs, _ds, _) = sock_node("printer");
    let b2a = fbsd_sys::NGM_BINARY2ASCII;
    // NGM_NAME with a name of 32 bytes and no NUL.
    let bad = msg(GENERIC, fbsd_sys::NGM_NAME, &[b'a'; 32]);
    assert_eq!(send(cs, ".", GENERIC, b2a, &bad), Err(EINVAL));
    // NGM_NAME cut short.
    let bad = msg(GENERIC, fbsd_sys::NGM_NAME, b"ab\0");
    assert_eq!(send(cs, ".", GENERIC, b2a, &bad), Err(EINVAL));
    // A node list reply that claims more entries than it has.
    let mut list = 5u32.to_ne_bytes().to_vec();
    list.extend([0u8; 72]);
    let mut bad = msg(GENERIC, fbsd_sys::NGM_LISTNODES, &list);
    bad[12..16].copy_from_slice(&fbsd_sys::NGF_RESP.to_ne_bytes());
    assert_eq!(send(cs, ".", GENERIC, b2a, &bad), Err(EINVAL));
    assert_eq!(recv_msg(cs), None);
    // Well formed: converted.
    let mut name = b"n".to_vec();
    name.resize(32, 0);
    let good = msg(GENERIC, fbsd_sys::NGM_NAME, &name);
    assert_eq!(send(cs, ".", GENERIC, b2a, &good), Ok(()));
    let (reply, _) = recv_msg(cs).expect("the conversion's reply");
    let text = String::from_utf8_lossy(&reply.data);
    assert!(text.contains("name=\"n\""), "{text}");
    k.finish();
}
