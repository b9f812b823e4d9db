//! NGM_ASCII2BINARY / NGM_BINARY2ASCII through the core with the parse
//! engine (docs/netgraph-model.md §6.1, §6.2), including the hole type's commands.

mod ng_common;

use fbsd_sys::ng_mesg_ng_msghdr;
use ng_common::*;
use ngharness::netgraph::client::{as_bytes, Client, MESG_HEADER, NGM_GENERIC_COOKIE};
use ngharness::netgraph::hole;

fn header_of(b: &[u8]) -> ng_mesg_ng_msghdr {
    assert!(b.len() >= MESG_HEADER);
    // SAFETY: bounds checked; a plain C struct read unaligned.
    unsafe { b.as_ptr().cast::<ng_mesg_ng_msghdr>().read_unaligned() }
}

fn cmdstr(h: &ng_mesg_ng_msghdr) -> String {
    let n = h.cmdstr.iter().position(|&b| b == 0).unwrap_or(32);
    String::from_utf8_lossy(&h.cmdstr[..n]).into_owned()
}

/// ASCII2BINARY at `path`: returns the binary header and argument bytes.
fn a2b(c: &Client, path: &str, cmd: &str, text: &str) -> Result<(ng_mesg_ng_msghdr, Vec<u8>), i32> {
    let mut h = ng_mesg_ng_msghdr {
        version: 8,
        arglen: text.len() as u32 + 1,
        ..Default::default()
    };
    h.cmdstr[..cmd.len()].copy_from_slice(cmd.as_bytes());
    let mut req = as_bytes(&h).to_vec();
    req.extend_from_slice(text.as_bytes());
    req.push(0);
    let r = c
        .request(path, NGM_GENERIC_COOKIE, fbsd_sys::NGM_ASCII2BINARY, &req)?
        .expect("reply");
    assert_eq!(r.header.arglen as usize, r.data.len());
    let inner = header_of(&r.data);
    assert_eq!(r.data.len(), MESG_HEADER + inner.arglen as usize);
    Ok((inner, r.data[MESG_HEADER..].to_vec()))
}

/// BINARY2ASCII at `path`: returns the command name and the text.
fn b2a(
    c: &Client,
    path: &str,
    h: &ng_mesg_ng_msghdr,
    data: &[u8],
) -> Result<(String, String), i32> {
    let mut req = as_bytes(h).to_vec();
    req.extend_from_slice(data);
    let r = c
        .request(path, NGM_GENERIC_COOKIE, fbsd_sys::NGM_BINARY2ASCII, &req)?
        .expect("reply");
    let inner = header_of(&r.data);
    let text = &r.data[MESG_HEADER..];
    assert_eq!(inner.arglen as usize, text.len());
    assert_eq!(text.last(), Some(&0));
    Ok((
        cmdstr(&inner),
        String::from_utf8_lossy(&text[..text.len() - 1]).into_owned(),
    ))
}

#[test]
fn ascii_to_binary_generic_commands() {
    clean(|c| {
        let (h, data) = a2b(c, ".", "name", "{ name=\"foo\" }").unwrap();
        assert_eq!(h.cmd, fbsd_sys::NGM_NAME);
        assert_eq!(h.typecookie, NGM_GENERIC_COOKIE);
        assert_eq!(cmdstr(&h), "name");
        assert_eq!(data.len(), 32);
        assert_eq!(&data[..4], b"foo\0");
        // no request type: the argument text is ignored
        let (h, data) = a2b(c, ".", "shutdown", "junk").unwrap();
        assert_eq!(h.cmd, fbsd_sys::NGM_SHUTDOWN);
        assert!(data.is_empty());
        // parse errors come back as the request's error
        assert_eq!(
            a2b(c, ".", "name", "{ nosuchfield=1 }").map(|_| ()),
            Err(ENOENT)
        );
        assert_eq!(a2b(c, ".", "nosuchcmd", "").map(|_| ()), Err(ENOSYS));
    });
}

#[test]
fn binary_to_ascii_of_a_response() {
    clean(|c| {
        c.mkpeer(".", "echo", "e", "x").unwrap();
        let mut ni = fbsd_sys::nodeinfo::default();
        for (d, s) in ni.type_.iter_mut().zip(b"echo") {
            *d = *s as _;
        }
        ni.id = 3;
        ni.hooks = 1;
        let h = ng_mesg_ng_msghdr {
            version: 8,
            arglen: 72,
            cmd: fbsd_sys::NGM_NODEINFO,
            flags: fbsd_sys::NGF_RESP,
            typecookie: NGM_GENERIC_COOKIE,
            ..Default::default()
        };
        let (cmd, text) = b2a(c, "e", &h, as_bytes(&ni)).unwrap();
        assert_eq!(cmd, "nodeinfo");
        assert_eq!(text, "{ type=\"echo\" id=0x3 hooks=1 }");
        // unknown (cookie, cmd) → ENOSYS
        let h2 = ng_mesg_ng_msghdr {
            version: 8,
            typecookie: 1,
            cmd: 1,
            ..Default::default()
        };
        assert_eq!(b2a(c, "e", &h2, &[]), Err(ENOSYS));
        // inner arglen larger than what follows → EINVAL
        let h3 = ng_mesg_ng_msghdr { arglen: 10, ..h };
        assert_eq!(b2a(c, "e", &h3, &[0; 4]), Err(EINVAL));
        c.shutdown("e").unwrap();
    });
}

#[test]
fn binary_to_ascii_retries_with_a_bigger_buffer() {
    clean(|c| {
        for i in 0..30 {
            c.mkpeer(".", "hole", &format!("h{i}"), "in").unwrap();
            c.name(&format!("h{i}"), &format!("node{i:02}")).unwrap();
        }
        let r = c
            .request(".", NGM_GENERIC_COOKIE, fbsd_sys::NGM_LISTNAMES, &[])
            .unwrap()
            .unwrap();
        let h = ng_mesg_ng_msghdr {
            version: 8,
            arglen: r.data.len() as u32,
            cmd: fbsd_sys::NGM_LISTNAMES,
            flags: fbsd_sys::NGF_RESP,
            typecookie: NGM_GENERIC_COOKIE,
            ..Default::default()
        };
        let (cmd, text) = b2a(c, ".", &h, &r.data).unwrap();
        assert_eq!(cmd, "listnames");
        assert!(text.len() > 1024, "{}", text.len());
        assert!(
            text.starts_with("{ numnames=30 nodeinfo=[ { name=\"node"),
            "{text}"
        );
        for i in 0..30 {
            c.shutdown(&format!("node{i:02}:")).unwrap();
        }
    });
}

#[test]
fn hole_statistics_in_ascii() {
    clean(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        c.send_data("h", b"12345").unwrap();
        c.send_data("h", b"67890").unwrap();
        let (req, arg) = a2b(c, "h", "getstats", "\"in\"").unwrap();
        assert_eq!(req.typecookie, hole::NGM_HOLE_COOKIE);
        assert_eq!(req.cmd, hole::NGM_HOLE_GET_STATS);
        assert_eq!(arg.len(), 32);
        let r = c
            .request("h", req.typecookie, req.cmd, &arg)
            .unwrap()
            .expect("stats");
        assert_eq!(r.data.len(), 16);
        let rh = ng_mesg_ng_msghdr {
            version: 8,
            arglen: 16,
            cmd: r.header.cmd,
            flags: r.header.flags,
            typecookie: r.header.typecookie,
            ..Default::default()
        };
        assert_eq!(
            b2a(c, "h", &rh, &r.data).unwrap(),
            ("getstats".to_string(), "{ frames=2 octets=10 }".to_string())
        );
        // getclrstats returns and clears; afterwards all-default prints as {}
        c.request(
            "h",
            hole::NGM_HOLE_COOKIE,
            hole::NGM_HOLE_GETCLR_STATS,
            &arg,
        )
        .unwrap()
        .expect("stats");
        let r = c
            .request("h", hole::NGM_HOLE_COOKIE, hole::NGM_HOLE_GET_STATS, &arg)
            .unwrap()
            .expect("stats");
        assert_eq!(b2a(c, "h", &rh, &r.data).unwrap().1, "{}");
        // hole's own errors
        assert_eq!(
            c.send_msg(
                "h",
                hole::NGM_HOLE_COOKIE,
                hole::NGM_HOLE_GET_STATS,
                b"in\0"
            ),
            Err(EINVAL)
        );
        let mut nohook = [0u8; 32];
        nohook[..2].copy_from_slice(b"zz");
        assert_eq!(
            c.send_msg(
                "h",
                hole::NGM_HOLE_COOKIE,
                hole::NGM_HOLE_GET_STATS,
                &nohook
            ),
            Err(ENOENT)
        );
        assert_eq!(
            c.send_msg("h", hole::NGM_HOLE_COOKIE, 9, &nohook),
            Err(EINVAL)
        );
        assert_eq!(c.send_msg("h", 12345, 1, &nohook), Err(EINVAL));
        // clrstats has no reply
        assert_eq!(
            c.request("h", hole::NGM_HOLE_COOKIE, hole::NGM_HOLE_CLR_STATS, &arg)
                .unwrap()
                .map(|_| ()),
            None
        );
        c.shutdown("h").unwrap();
    });
}

#[test]
fn ngctl_style_ascii_messages() {
    clean(|c| {
        c.mkpeer(".", "hole", "h", "in").unwrap();
        c.send_data("h", b"abc").unwrap();
        assert_eq!(
            c.msg_ascii("h", "getstats", "\"in\"").unwrap(),
            Some(("getstats".to_string(), "{ frames=1 octets=3 }".to_string()))
        );
        assert_eq!(c.msg_ascii("h", "clrstats", "\"in\"").unwrap(), None);
        let (cmd, text) = c.msg_ascii("h", "nodeinfo", "").unwrap().unwrap();
        assert_eq!(cmd, "nodeinfo");
        assert_eq!(text, "{ type=\"hole\" id=0x2 hooks=1 }");
        c.msg_ascii(".", "name", "{ name=\"ctl\" }").unwrap();
        assert_eq!(c.nodeinfo(".").unwrap().name, "ctl");
        assert_eq!(c.msg_ascii("h", "getstats", "\"nohook\""), Err(ENOENT));
        assert_eq!(c.msg_ascii("h", "frobnicate", ""), Err(ENOSYS));
        c.msg_ascii("h", "shutdown", "").unwrap();
        assert_eq!(c.list().unwrap().len(), 1);
    });
}

// ---------------------------------------------------------------------------
// A parse type that reads past the message, on purpose

const OVERREAD_COOKIE: u32 = 0x0bad_0bad;

/// Array length = the byte just before the array, however much of the
/// message is left (the length bug class of generic socket addresses).
unsafe extern "C" fn len_from_prev_byte(
    _t: *const fbsd_sys::ng_parse_type,
    _start: *const u8,
    buf: *const u8,
) -> std::ffi::c_int {
    // SAFETY: `buf` follows the one-byte `len` field of the struct.
    std::ffi::c_int::from(unsafe { *buf.sub(1) })
}

unsafe extern "C" fn overread_ctor(_n: fbsd_sys::node_p) -> std::ffi::c_int {
    0
}

fn leak<T>(v: T) -> *const T {
    Box::leak(Box::new(v))
}

/// `{ len=uint8 data=bytearray[len] }`, whose data length trusts `len`.
fn overreading_type() -> *const fbsd_sys::ng_parse_type {
    let t = ngharness::netgraph::parse::types();
    let data = leak(fbsd_sys::ng_parse_type {
        supertype: t.bytearray,
        info: len_from_prev_byte as *const std::ffi::c_void,
        ..Default::default()
    });
    let fields = Box::leak(Box::new([
        fbsd_sys::ng_parse_struct_field {
            name: cs("len"),
            type_: t.uint8,
            alignment: 0,
        },
        fbsd_sys::ng_parse_struct_field {
            name: cs("data"),
            type_: data,
            alignment: 0,
        },
        fbsd_sys::ng_parse_struct_field {
            name: std::ptr::null(),
            type_: std::ptr::null(),
            alignment: 0,
        },
    ]));
    leak(fbsd_sys::ng_parse_type {
        supertype: t.struct_,
        info: fields.as_ptr().cast(),
        ..Default::default()
    })
}

/// The harness sees every read a parse type makes outside the message: the
/// core's BINARY2ASCII, and a module's own `ng_unparse` of a message it
/// owns, report it as a violation and fail the conversion with EINVAL
/// (FreeBSD would print the memory that follows the message).
#[test]
fn parse_type_reading_past_the_message_is_reported() {
    let ((), v) = run(|| {
        let ty = overreading_type();
        let list = Box::leak(Box::new([
            fbsd_sys::ng_cmdlist {
                cookie: OVERREAD_COOKIE,
                cmd: 1,
                name: cs("overread"),
                mesgType: ty,
                respType: std::ptr::null(),
            },
            fbsd_sys::ng_cmdlist {
                cookie: 0,
                cmd: 0,
                name: std::ptr::null(),
                mesgType: std::ptr::null(),
                respType: std::ptr::null(),
            },
        ]));
        register_type(new_type("overread", |t| {
            t.constructor = Some(overread_ctor);
            t.cmdlist = list.as_ptr();
        }));
        let c = Client::new().expect("client");
        c.mkpeer(".", "overread", "o", "in").unwrap();
        let h = ng_mesg_ng_msghdr {
            version: 8,
            arglen: 4,
            cmd: 1,
            typecookie: OVERREAD_COOKIE,
            ..Default::default()
        };
        // Honest: len covers what is there.
        assert_eq!(
            b2a(&c, "o", &h, &[2, 7, 8, 0]).unwrap().1,
            "{ len=2 data=[ 0x7 0x8 ] }"
        );
        assert!(ngharness::kern::take_violations().is_empty());
        // len=200 with 3 bytes of data: read past arglen.
        assert_eq!(b2a(&c, "o", &h, &[200, 1, 2, 3]), Err(EINVAL));
        let v = ngharness::kern::take_violations();
        assert!(!v.is_empty(), "over-read not reported");
        assert!(v.iter().all(|m| m.contains("ng_unparse")), "{v:#?}");

        // A module converting a message of its own with ng_unparse.
        let mut ex = ngharness::exports::Exports::new();
        ngharness::netgraph::parse::register(&mut ex);
        let f = ex.get("ng_unparse").expect("ng_unparse exported").addr;
        // SAFETY: the exported function has ng_unparse's C signature.
        let ng_unparse: unsafe extern "C" fn(
            *const fbsd_sys::ng_parse_type,
            *const u8,
            *mut std::ffi::c_char,
            std::ffi::c_int,
        ) -> std::ffi::c_int = unsafe { std::mem::transmute(f) };
        let mt = ngharness::netgraph::core::item::msg_type();
        let m = ngharness::kern::malloc::kmalloc(MESG_HEADER + 4, mt, fbsd_sys::M_WAITOK as i32);
        let mut out = vec![0 as std::ffi::c_char; 2048];
        // SAFETY: `m` holds a header and 4 argument bytes; `out` 2048 bytes.
        unsafe {
            m.cast::<ng_mesg_ng_msghdr>().write_unaligned(h);
            let data = m.add(MESG_HEADER);
            std::ptr::copy_nonoverlapping([2u8, 7, 8, 0].as_ptr(), data, 4);
            assert_eq!(ng_unparse(ty, data, out.as_mut_ptr(), 2048), 0);
            assert!(ngharness::kern::take_violations().is_empty());
            *data = 200;
            assert_eq!(ng_unparse(ty, data, out.as_mut_ptr(), 2048), EINVAL);
            let v = ngharness::kern::take_violations();
            assert!(!v.is_empty(), "over-read by a module not reported");
        }
        ngharness::kern::malloc::kfree(m, mt);
        drop(c);
        let p = ngharness::netgraph::core::check::quiesce();
        assert!(p.is_empty(), "{p:#?}");
    });
    assert!(v.is_empty(), "{v:#?}");
}
