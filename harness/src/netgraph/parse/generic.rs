//! The parse types of the generic netgraph messages and the generic command
//! list of ng_base.c (docs/netgraph-model.md §1.6, §1.7 "Generic payloads", §7.7;
//! docs/socket.md §10.2).

use core::ffi::{c_char, c_int};
use std::sync::OnceLock;

use fbsd_sys::{ng_cmdlist, ng_parse_type};

use super::{new_array, new_struct, types};
use crate::arena;

type Pt = ng_parse_type;

/// The generic message parse types (not exported by name: in FreeBSD they are
/// static in ng_base.c; reachable through the generic command list).
pub struct GenericTypes {
    /// `{ type ourhook peerhook }` (struct ngm_mkpeer, 96 bytes).
    pub mkpeer: *const Pt,
    /// `{ path ourhook peerhook }` (struct ngm_connect, 576 bytes).
    pub connect: *const Pt,
    /// `{ name }` (struct ngm_name, 32 bytes).
    pub name: *const Pt,
    /// `{ hook }` (struct ngm_rmhook, 32 bytes).
    pub rmhook: *const Pt,
    /// `{ name type id hooks }` (struct nodeinfo, 72 bytes; id in hex).
    pub nodeinfo: *const Pt,
    /// `{ typename numnodes }` (struct typeinfo, 36 bytes).
    pub typeinfo: *const Pt,
    /// `{ ourhook peerhook nodeinfo }` (struct linkinfo, 136 bytes).
    pub linkinfo: *const Pt,
    /// Array of nodeinfo whose length is the u32 just before it.
    pub nodeinfo_array: *const Pt,
    /// Array of typeinfo whose length is the u32 just before it.
    pub typeinfo_array: *const Pt,
    /// Array of linkinfo whose length is the enclosing hooklist's `nodeinfo.hooks`.
    pub linkinfo_array: *const Pt,
    /// `{ nodeinfo linkinfo=[...] }` (struct hooklist).
    pub hooklist: *const Pt,
    /// `{ numnames nodeinfo=[...] }` (struct namelist; LISTNAMES and LISTNODES).
    pub listnodes: *const Pt,
    /// `{ numtypes typeinfo=[...] }` (struct typelist).
    pub typelist: *const Pt,
}

/// One entry of the generic command list.
#[derive(Clone, Copy, Debug)]
pub struct GenericCmd {
    /// NGM_GENERIC_COOKIE.
    pub cookie: u32,
    /// Command number (with NGM_READONLY / NGM_HASREPLY bits where defined).
    pub cmd: u32,
    /// ASCII name.
    pub name: &'static str,
    /// Request argument type (NULL: none).
    pub mesg_type: *const Pt,
    /// Response argument type (NULL: none).
    pub resp_type: *const Pt,
}

struct Registry {
    types: GenericTypes,
    cmds: Vec<GenericCmd>,
    cmdlist: *const ng_cmdlist,
}

// SAFETY: every pointer refers to an arena object initialised before the
// registry is published and never written afterwards.
unsafe impl Send for Registry {}
// SAFETY: as above.
unsafe impl Sync for Registry {}
// SAFETY: as above (the command entries only hold such pointers).
unsafe impl Send for GenericCmd {}
// SAFETY: as above.
unsafe impl Sync for GenericCmd {}

/// getLength for namelist/typelist arrays: the u32 immediately before the array.
///
/// # Safety
/// `buf` preceded by 4 readable bytes.
unsafe extern "C" fn list_length(_t: *const Pt, _start: *const u8, buf: *const u8) -> c_int {
    // SAFETY: caller contract.
    unsafe { core::ptr::read_unaligned(buf.wrapping_sub(4).cast::<u32>()) as c_int }
}

/// getLength of the linkinfo array: `hooks` of the hooklist's nodeinfo at `start`.
///
/// # Safety
/// `start` points at a struct hooklist.
unsafe extern "C" fn linkinfo_length(_t: *const Pt, start: *const u8, _buf: *const u8) -> c_int {
    // SAFETY: caller contract; nodeinfo.hooks is at offset 68.
    unsafe { core::ptr::read_unaligned(start.add(68).cast::<u32>()) as c_int }
}

fn build() -> Registry {
    let p = types();
    let mkpeer = new_struct(&[
        ("type", p.typebuf),
        ("ourhook", p.hookbuf),
        ("peerhook", p.hookbuf),
    ]);
    let connect = new_struct(&[
        ("path", p.pathbuf),
        ("ourhook", p.hookbuf),
        ("peerhook", p.hookbuf),
    ]);
    let name = new_struct(&[("name", p.nodebuf)]);
    let rmhook = new_struct(&[("hook", p.hookbuf)]);
    let nodeinfo = new_struct(&[
        ("name", p.nodebuf),
        ("type", p.typebuf),
        ("id", p.hint32),
        ("hooks", p.uint32),
    ]);
    let typeinfo = new_struct(&[("typename", p.typebuf), ("numnodes", p.uint32)]);
    let linkinfo = new_struct(&[
        ("ourhook", p.hookbuf),
        ("peerhook", p.hookbuf),
        ("nodeinfo", nodeinfo),
    ]);
    let nodeinfo_array = new_array(nodeinfo, Some(list_length));
    let typeinfo_array = new_array(typeinfo, Some(list_length));
    let linkinfo_array = new_array(linkinfo, Some(linkinfo_length));
    let typelist = new_struct(&[("numtypes", p.uint32), ("typeinfo", typeinfo_array)]);
    let hooklist = new_struct(&[("nodeinfo", nodeinfo), ("linkinfo", linkinfo_array)]);
    let listnodes = new_struct(&[("numnames", p.uint32), ("nodeinfo", nodeinfo_array)]);

    let null = core::ptr::null();
    let cookie = fbsd_sys::NGM_GENERIC_COOKIE;
    let entry =
        |cmd: u32, name: &'static str, mesg_type: *const Pt, resp_type: *const Pt| GenericCmd {
            cookie,
            cmd,
            name,
            mesg_type,
            resp_type,
        };
    use fbsd_sys as f;
    let cmds = vec![
        entry(f::NGM_SHUTDOWN, "shutdown", null, null),
        entry(f::NGM_MKPEER, "mkpeer", mkpeer, null),
        entry(f::NGM_CONNECT, "connect", connect, null),
        entry(f::NGM_NAME, "name", name, null),
        entry(f::NGM_RMHOOK, "rmhook", rmhook, null),
        entry(f::NGM_NODEINFO, "nodeinfo", null, nodeinfo),
        entry(f::NGM_LISTHOOKS, "listhooks", null, hooklist),
        entry(f::NGM_LISTNAMES, "listnames", null, listnodes),
        entry(f::NGM_LISTNODES, "listnodes", null, listnodes),
        entry(f::NGM_LISTTYPES, "listtypes", null, typelist),
        entry(f::NGM_TEXT_CONFIG, "textconfig", null, p.string),
        entry(f::NGM_TEXT_STATUS, "textstatus", null, p.string),
        entry(f::NGM_ASCII2BINARY, "ascii2binary", p.ng_mesg, p.ng_mesg),
        entry(f::NGM_BINARY2ASCII, "binary2ascii", p.ng_mesg, p.ng_mesg),
    ];

    let list = arena::alloc((cmds.len() + 1) * core::mem::size_of::<ng_cmdlist>(), 16)
        .cast::<ng_cmdlist>();
    for (i, c) in cmds.iter().enumerate() {
        // SAFETY: `list` holds `cmds.len() + 1` entries; the zeroed last one
        // is the NULL-name terminator.
        unsafe {
            list.add(i).write(ng_cmdlist {
                cookie: c.cookie,
                cmd: c.cmd as c_int,
                name: arena::alloc_cstr(c.name),
                mesgType: c.mesg_type,
                respType: c.resp_type,
            });
        }
    }

    Registry {
        types: GenericTypes {
            mkpeer,
            connect,
            name,
            rmhook,
            nodeinfo,
            typeinfo,
            linkinfo,
            nodeinfo_array,
            typeinfo_array,
            linkinfo_array,
            hooklist,
            listnodes,
            typelist,
        },
        cmds,
        cmdlist: list,
    }
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fn registry() -> &'static Registry {
    REGISTRY.get_or_init(build)
}

/// The generic message parse types.
pub fn generic_types() -> &'static GenericTypes {
    &registry().types
}

/// The generic command list of ng_base.c, in its order.
pub fn generic_cmdlist() -> &'static [GenericCmd] {
    &registry().cmds
}

/// The same list as a C `struct ng_cmdlist` array in the arena, terminated by
/// an entry whose name is NULL.
pub fn generic_cmdlist_c() -> *const ng_cmdlist {
    registry().cmdlist
}

/// Generic command by (cookie, cmd), as BINARY2ASCII looks it up.
pub fn find_generic_cmd(cookie: u32, cmd: u32) -> Option<&'static GenericCmd> {
    generic_cmdlist()
        .iter()
        .find(|c| c.cookie == cookie && c.cmd == cmd)
}

/// Generic command by ASCII name, as ASCII2BINARY looks it up.
pub fn find_generic_name(name: &str) -> Option<&'static GenericCmd> {
    generic_cmdlist().iter().find(|c| c.name == name)
}

/// Looks up (cookie, cmd) in a C command list (a node type's `cmdlist`, or
/// [`generic_cmdlist_c`]); the list ends at the first entry with a NULL name.
/// Returns NULL when absent (or when `list` is NULL).
///
/// # Safety
/// `list` must be NULL or a valid, NULL-name-terminated command list.
pub unsafe fn cmdlist_find_cmd(
    list: *const ng_cmdlist,
    cookie: u32,
    cmd: u32,
) -> *const ng_cmdlist {
    let mut c = list;
    // SAFETY: caller contract; the walk stops at the terminator.
    unsafe {
        while !c.is_null() && !(*c).name.is_null() {
            if (*c).cookie == cookie && (*c).cmd as u32 == cmd {
                return c;
            }
            c = c.add(1);
        }
    }
    core::ptr::null()
}

/// Looks up an ASCII command name (exact `strcmp`) in a C command list.
///
/// # Safety
/// As [`cmdlist_find_cmd`].
pub unsafe fn cmdlist_find_name(list: *const ng_cmdlist, name: &[u8]) -> *const ng_cmdlist {
    let want = name.split(|&b| b == 0).next().unwrap_or(&[]);
    let mut c = list;
    // SAFETY: caller contract; names are NUL-terminated C strings.
    unsafe {
        while !c.is_null() && !(*c).name.is_null() {
            if core::ffi::CStr::from_ptr((*c).name as *const c_char).to_bytes() == want {
                return c;
            }
            c = c.add(1);
        }
    }
    core::ptr::null()
}
