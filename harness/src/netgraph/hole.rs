//! The `hole` node type (docs/netgraph-model.md §8.2), built into the harness.
//!
//! Swallows data, keeping per-hook frame/octet counters readable with
//! getstats/clrstats/getclrstats; shuts down when its last hook goes.

use std::ffi::{c_char, c_int};

use fbsd_sys::{
    hook_p, item_p, ng_cmdlist, ng_hole_hookstat, ng_parse_struct_field, ng_parse_type, ng_type,
    node_p,
};

use super::core::exports as k;
use super::core::item::netgraph_type;
use super::macros::{
    free_item, free_msg, hook_node, mk_response, msg_data, ngi_get_msg, node_is_valid, numhooks,
    respond_msg,
};
use crate::kern::malloc;

/// NGM_HOLE_COOKIE.
pub const NGM_HOLE_COOKIE: u32 = fbsd_sys::NGM_HOLE_COOKIE;
/// NGM_HOLE_GET_STATS.
pub const NGM_HOLE_GET_STATS: u32 = fbsd_sys::NGM_HOLE_GET_STATS;
/// NGM_HOLE_CLR_STATS.
pub const NGM_HOLE_CLR_STATS: u32 = fbsd_sys::NGM_HOLE_CLR_STATS;
/// NGM_HOLE_GETCLR_STATS.
pub const NGM_HOLE_GETCLR_STATS: u32 = fbsd_sys::NGM_HOLE_GETCLR_STATS;

const STATS: usize = std::mem::size_of::<ng_hole_hookstat>();

/// A new `struct ng_type` for hole (arena object, not yet registered).
pub(crate) fn new_type() -> *mut ng_type {
    let t = crate::arena::alloc_obj::<ng_type>();
    // SAFETY: fresh zeroed arena type object.
    unsafe {
        (*t).version = fbsd_sys::NG_ABI_VERSION;
        (*t).name = crate::arena::alloc_cstr("hole");
        (*t).constructor = Some(ngh_constructor);
        (*t).rcvmsg = Some(ngh_rcvmsg);
        (*t).newhook = Some(ngh_newhook);
        (*t).rcvdata = Some(ngh_rcvdata);
        (*t).disconnect = Some(ngh_disconnect);
    }
    attach_cmdlist(t);
    t
}

/// Gives the hole type its command list (pointing at the parse engine's
/// hookbuf/struct/uint64 parse types, like NG_HOLE_HOOKSTAT_TYPE_INFO).
fn attach_cmdlist(t: *mut ng_type) {
    let ps = super::parse::types();
    let fields = crate::arena::alloc(3 * std::mem::size_of::<ng_parse_struct_field>(), 16)
        .cast::<ng_parse_struct_field>();
    let stat_type = crate::arena::alloc_obj::<ng_parse_type>();
    let list = crate::arena::alloc(4 * std::mem::size_of::<ng_cmdlist>(), 16).cast::<ng_cmdlist>();
    // SAFETY: fresh zeroed arena arrays of the sizes allocated above.
    unsafe {
        *fields = ng_parse_struct_field {
            name: crate::arena::alloc_cstr("frames"),
            type_: ps.uint64,
            alignment: 0,
        };
        *fields.add(1) = ng_parse_struct_field {
            name: crate::arena::alloc_cstr("octets"),
            type_: ps.uint64,
            alignment: 0,
        };
        (*stat_type).supertype = ps.struct_;
        (*stat_type).info = fields.cast();
        let cmds: [(u32, &str, *const ng_parse_type); 3] = [
            (NGM_HOLE_GET_STATS, "getstats", stat_type),
            (NGM_HOLE_CLR_STATS, "clrstats", std::ptr::null()),
            (NGM_HOLE_GETCLR_STATS, "getclrstats", stat_type),
        ];
        for (i, (cmd, name, resp)) in cmds.into_iter().enumerate() {
            *list.add(i) = ng_cmdlist {
                cookie: NGM_HOLE_COOKIE,
                cmd: cmd as c_int,
                name: crate::arena::alloc_cstr(name),
                mesgType: ps.hookbuf,
                respType: resp,
            };
        }
        (*t).cmdlist = list;
    }
}

unsafe extern "C" fn ngh_constructor(_node: node_p) -> c_int {
    0
}

unsafe extern "C" fn ngh_newhook(_node: node_p, hook: hook_p, _name: *const c_char) -> c_int {
    let hip = malloc::kmalloc(
        STATS,
        netgraph_type(),
        (fbsd_sys::M_NOWAIT | fbsd_sys::M_ZERO) as c_int,
    );
    if hip.is_null() {
        return fbsd_sys::ENOMEM as c_int;
    }
    // SAFETY: the core passes the new hook.
    unsafe { (*hook).hk_private = hip.cast() };
    0
}

unsafe extern "C" fn ngh_rcvmsg(node: node_p, item: item_p, _lasthook: hook_p) -> c_int {
    // SAFETY: the core hands us a live message item we now own.
    unsafe {
        let msg = ngi_get_msg(item);
        let mut resp = std::ptr::null_mut();
        let h = (*msg).header;
        let mut error: c_int = 0;
        if h.typecookie == NGM_HOLE_COOKIE
            && matches!(
                h.cmd,
                NGM_HOLE_GET_STATS | NGM_HOLE_CLR_STATS | NGM_HOLE_GETCLR_STATS
            )
        {
            if h.arglen as usize != fbsd_sys::NG_HOOKSIZ as usize {
                error = fbsd_sys::EINVAL as c_int;
            } else {
                // FreeBSD uses the argument as a C string without forcing a
                // NUL; the harness stops at 32 bytes and says so.
                let arg = std::slice::from_raw_parts(msg_data(msg), fbsd_sys::NG_HOOKSIZ as usize);
                let mut name = [0u8; 33];
                name[..32].copy_from_slice(arg);
                if !arg.contains(&0) {
                    super::core::warn(
                        "hole: hook name argument not NUL-terminated (the kernel reads past it)",
                    );
                }
                let hook = k::ngk_findhook(node, name.as_ptr().cast());
                if hook.is_null() {
                    error = fbsd_sys::ENOENT as c_int;
                } else {
                    let stats = (*hook).hk_private.cast::<ng_hole_hookstat>();
                    if h.cmd != NGM_HOLE_CLR_STATS {
                        resp = mk_response(msg, STATS, fbsd_sys::M_NOWAIT as c_int);
                        if resp.is_null() {
                            error = fbsd_sys::ENOMEM as c_int;
                        } else {
                            std::ptr::copy_nonoverlapping(
                                stats.cast::<u8>(),
                                msg_data(resp),
                                STATS,
                            );
                        }
                    }
                    if error == 0 && h.cmd != NGM_HOLE_GET_STATS {
                        std::ptr::write_bytes(stats, 0, 1);
                    }
                }
            }
        } else {
            error = fbsd_sys::EINVAL as c_int;
        }
        if let Some(e) = respond_msg(node, item, resp) {
            error = e;
        }
        free_msg(msg);
        error
    }
}

unsafe extern "C" fn ngh_rcvdata(hook: hook_p, item: item_p) -> c_int {
    // SAFETY: the core hands us a live data item; our hook has its stats.
    unsafe {
        let s = (*hook).hk_private.cast::<ng_hole_hookstat>();
        (*s).frames += 1;
        let m = (*item).body.da_m;
        (*s).octets += super::mbufx::pkthdr_len(m) as u64;
        free_item(item);
    }
    0
}

unsafe extern "C" fn ngh_disconnect(hook: hook_p) -> c_int {
    // SAFETY: the core calls disconnect with the hook still pointing at its node.
    unsafe {
        malloc::kfree((*hook).hk_private.cast(), netgraph_type());
        (*hook).hk_private = std::ptr::null_mut();
        let node = hook_node(hook);
        if numhooks(node) == 0 && node_is_valid(node) {
            k::ngk_rmnode_self(node);
        }
    }
    0
}
