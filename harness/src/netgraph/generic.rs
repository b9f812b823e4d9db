//! The generic message handler (`ng_generic_msg`, docs/netgraph-model.md §6).
//!
//! ASCII conversion (BINARY2ASCII / ASCII2BINARY) uses the parse engine
//! (`netgraph::parse`) and its generic command list.

use std::ffi::c_int;

use fbsd_sys::{
    hook_p, hooklist, item_p, linkinfo, namelist, ng_cmdlist, ng_mesg, node_p, nodeinfo, typeinfo,
    typelist,
};

use super::core::item::{free_item_core, set_handed, MsgKey};
use super::core::{
    self as core_, field_str, hook as hk, set_field, with, EINVAL, ENOMEM, ENOSYS, ERANGE,
};
use super::macros::{free_msg, mk_response, msg_data, NG_MESG_SIZE};
use super::parse;

const NGM_SHUTDOWN: u32 = fbsd_sys::NGM_SHUTDOWN;
const NGM_MKPEER: u32 = fbsd_sys::NGM_MKPEER;
const NGM_CONNECT: u32 = fbsd_sys::NGM_CONNECT;
const NGM_NAME: u32 = fbsd_sys::NGM_NAME;
const NGM_RMHOOK: u32 = fbsd_sys::NGM_RMHOOK;
const NGM_NODEINFO: u32 = fbsd_sys::NGM_NODEINFO;
const NGM_LISTHOOKS: u32 = fbsd_sys::NGM_LISTHOOKS;
const NGM_LISTNAMES: u32 = fbsd_sys::NGM_LISTNAMES;
const NGM_LISTNODES: u32 = fbsd_sys::NGM_LISTNODES;
const NGM_LISTTYPES: u32 = fbsd_sys::NGM_LISTTYPES;
const NGM_TEXT_STATUS: u32 = fbsd_sys::NGM_TEXT_STATUS;
const NGM_TEXT_CONFIG: u32 = fbsd_sys::NGM_TEXT_CONFIG;
const NGM_BINARY2ASCII: u32 = fbsd_sys::NGM_BINARY2ASCII;
const NGM_ASCII2BINARY: u32 = fbsd_sys::NGM_ASCII2BINARY;

const NOWAIT: c_int = fbsd_sys::M_NOWAIT as c_int;

/// Fills a `struct nodeinfo` for `node` (name only if named).
unsafe fn fill_nodeinfo(ni: &mut nodeinfo, node: node_p) {
    // SAFETY: a live (or dead) node with a type.
    unsafe {
        let name = field_str(&(*node).nd_name);
        if !name.is_empty() {
            set_field(&mut ni.name, name);
        }
        set_field(&mut ni.type_, core_::cbytes((*(*node).nd_type).name));
        ni.id = (*node).nd_ID;
        ni.hooks = (*node).nd_numhooks as u32;
    }
}

/// Nodes of the ID hash (buckets 0..mask, each newest first).
fn id_order() -> (usize, Vec<node_p>) {
    with(|c| (c.nodes_count, c.id_hash.iter().flatten().copied().collect()))
}

fn name_order() -> (usize, Vec<node_p>) {
    with(|c| {
        (
            c.named_count,
            c.name_hash.iter().flatten().copied().collect(),
        )
    })
}

/// `ng_generic_msg(here, item, lasthook)`: entered for generic requests.
///
/// # Safety
/// Called by the core's application step with the node's gate held.
pub(crate) unsafe fn generic_msg(here: node_p, item: item_p, lasthook: hook_p) -> c_int {
    // SAFETY: live node and item; `msg` is the item's live message.
    unsafe {
        let msg = std::mem::replace(&mut (*item).body.msg.msg_msg, std::ptr::null_mut());
        let mut resp: *mut ng_mesg = std::ptr::null_mut();
        let arglen = (*msg).header.arglen as usize;
        let data = msg_data(msg);
        let error: c_int = match (*msg).header.cmd {
            NGM_SHUTDOWN => {
                core_::rmnode(here);
                0
            }
            NGM_MKPEER => {
                if arglen != std::mem::size_of::<fbsd_sys::ngm_mkpeer>() {
                    EINVAL
                } else {
                    let m = &mut *data.cast::<fbsd_sys::ngm_mkpeer>();
                    m.type_[31] = 0;
                    m.ourhook[31] = 0;
                    m.peerhook[31] = 0;
                    hk::mkpeer(
                        here,
                        m.ourhook.as_ptr(),
                        m.peerhook.as_ptr(),
                        m.type_.as_ptr(),
                    )
                }
            }
            NGM_CONNECT => {
                if arglen != std::mem::size_of::<fbsd_sys::ngm_connect>() {
                    EINVAL
                } else {
                    let m = &mut *data.cast::<fbsd_sys::ngm_connect>();
                    m.path[511] = 0;
                    m.ourhook[31] = 0;
                    m.peerhook[31] = 0;
                    match core_::path::path2noderef(here, field_str(&m.path)) {
                        Err(e) => e,
                        Ok((node2, last)) => {
                            if !last.is_null() {
                                hk::unref_hook(last);
                            }
                            let e = hk::con_nodes(
                                item,
                                here,
                                m.ourhook.as_ptr(),
                                node2,
                                m.peerhook.as_ptr(),
                            );
                            core_::unref_node(node2);
                            e
                        }
                    }
                }
            }
            NGM_NAME => {
                if arglen != std::mem::size_of::<fbsd_sys::ngm_name>() {
                    EINVAL
                } else {
                    let m = &mut *data.cast::<fbsd_sys::ngm_name>();
                    m.name[31] = 0;
                    core_::name_node(here, m.name.as_ptr())
                }
            }
            NGM_RMHOOK => {
                if arglen != std::mem::size_of::<fbsd_sys::ngm_rmhook>() {
                    EINVAL
                } else {
                    let m = &mut *data.cast::<fbsd_sys::ngm_rmhook>();
                    m.ourhook[31] = 0;
                    let h = hk::findhook(here, m.ourhook.as_ptr());
                    if !h.is_null() {
                        hk::destroy_hook(h);
                    }
                    0
                }
            }
            NGM_NODEINFO => {
                resp = mk_response(msg, std::mem::size_of::<nodeinfo>(), NOWAIT);
                if resp.is_null() {
                    ENOMEM
                } else {
                    fill_nodeinfo(&mut *msg_data(resp).cast::<nodeinfo>(), here);
                    0
                }
            }
            NGM_LISTHOOKS => {
                let nhooks = (*here).nd_numhooks.max(0) as usize;
                let size =
                    std::mem::size_of::<hooklist>() + nhooks * std::mem::size_of::<linkinfo>();
                resp = mk_response(msg, size, NOWAIT);
                if resp.is_null() {
                    ENOMEM
                } else {
                    let hl = msg_data(resp).cast::<hooklist>();
                    let ni = &mut (*hl).nodeinfo;
                    let name = field_str(&(*here).nd_name);
                    if !name.is_empty() {
                        set_field(&mut ni.name, name);
                    }
                    set_field(&mut ni.type_, core_::cbytes((*(*here).nd_type).name));
                    ni.id = (*here).nd_ID;
                    ni.hooks = 0;
                    let links = std::ptr::addr_of_mut!((*hl).link).cast::<linkinfo>();
                    for h in hk::hooks_of(here) {
                        let n = (*hl).nodeinfo.hooks as usize;
                        if n >= nhooks {
                            core_::console("ng_generic_msg: number of hooks changed");
                            break;
                        }
                        if (*h).hk_flags & core_::HK_INVALID != 0 {
                            continue;
                        }
                        let l = &mut *links.add(n);
                        set_field(&mut l.ourhook, field_str(&(*h).hk_name));
                        let peer = (*h).hk_peer;
                        set_field(&mut l.peerhook, field_str(&(*peer).hk_name));
                        fill_nodeinfo(&mut l.nodeinfo, (*peer).hk_node);
                        (*hl).nodeinfo.hooks += 1;
                    }
                    0
                }
            }
            NGM_LISTNODES | NGM_LISTNAMES => {
                let names = (*msg).header.cmd == NGM_LISTNAMES;
                let (cap, order) = if names { name_order() } else { id_order() };
                let size = std::mem::size_of::<namelist>() + cap * std::mem::size_of::<nodeinfo>();
                resp = mk_response(msg, size, NOWAIT);
                if resp.is_null() {
                    ENOMEM
                } else {
                    let nl = msg_data(resp).cast::<namelist>();
                    let arr = std::ptr::addr_of_mut!((*nl).nodeinfo).cast::<nodeinfo>();
                    (*nl).numnames = 0;
                    for n in order {
                        if (*n).nd_flags & core_::NGF_INVALID != 0 {
                            continue;
                        }
                        let i = (*nl).numnames as usize;
                        if i >= cap {
                            crate::kern::violation(
                                "LISTNODES/LISTNAMES: no space (node counters wrong)",
                            );
                            break;
                        }
                        fill_nodeinfo(&mut *arr.add(i), n);
                        (*nl).numnames += 1;
                    }
                    0
                }
            }
            NGM_LISTTYPES => {
                let types = with(|c| c.types.clone());
                let size =
                    std::mem::size_of::<typelist>() + types.len() * std::mem::size_of::<typeinfo>();
                resp = mk_response(msg, size, NOWAIT);
                if resp.is_null() {
                    ENOMEM
                } else {
                    let tl = msg_data(resp).cast::<typelist>();
                    let arr = std::ptr::addr_of_mut!((*tl).typeinfo).cast::<typeinfo>();
                    (*tl).numtypes = types.len() as u32;
                    for (i, &t) in types.iter().enumerate() {
                        let ti = &mut *arr.add(i);
                        set_field(&mut ti.type_name, core_::cbytes((*t).name));
                        ti.numnodes = ((*t).refs - 1) as u32;
                    }
                    0
                }
            }
            NGM_BINARY2ASCII => binary2ascii(here, msg, &mut resp),
            NGM_ASCII2BINARY => ascii2binary(here, msg, &mut resp),
            NGM_TEXT_STATUS | NGM_TEXT_CONFIG => {
                if let Some(rcv) = (*(*here).nd_type).rcvmsg {
                    (*item).body.msg.msg_msg = msg;
                    let h = &(*msg).header;
                    let key = MsgKey {
                        msg: msg as usize,
                        token: h.token,
                        cookie: h.typecookie,
                        cmd: h.cmd,
                        flags: h.flags,
                    };
                    set_handed(item, here, "rcvmsg", Some(key));
                    return rcv(here, item, lasthook);
                }
                EINVAL
            }
            _ => EINVAL,
        };
        // NG_RESPOND_MSG(error, here, item, resp)
        let mut error = error;
        if resp.is_null() {
            free_item_core(item);
        } else {
            let dest = (*item).body.msg.msg_retaddr;
            (*item).body.msg.msg_retaddr = 0;
            (*item).body.msg.msg_msg = resp;
            error = core_::item::address_id(here, item, dest, 0);
            if error == 0 {
                error = core_::dispatch::snd_item(item, fbsd_sys::NG_QUEUE as c_int);
            }
        }
        free_msg(msg);
        error
    }
}

/// Looks a command up in a NULL-name-terminated list.
unsafe fn find_cmd(
    list: *const ng_cmdlist,
    pred: impl Fn(&ng_cmdlist) -> bool,
) -> Option<*const ng_cmdlist> {
    if list.is_null() {
        return None;
    }
    let mut c = list;
    // SAFETY: cmdlists end with an entry whose name is NULL (§1.7).
    unsafe {
        while !(*c).name.is_null() {
            if pred(&*c) {
                return Some(c);
            }
            c = c.add(1);
        }
    }
    None
}

/// NGM_BINARY2ASCII (§6.1).
unsafe fn binary2ascii(here: node_p, msg: *mut ng_mesg, resp: &mut *mut ng_mesg) -> c_int {
    // SAFETY: live request message of `arglen` argument bytes.
    unsafe {
        let arglen = (*msg).header.arglen as usize;
        let binary = msg_data(msg).cast::<ng_mesg>();
        if arglen < NG_MESG_SIZE || arglen - NG_MESG_SIZE < (*binary).header.arglen as usize {
            return EINVAL;
        }
        let generic = parse::generic_cmdlist_c();
        let (cookie, cmd) = ((*binary).header.typecookie, (*binary).header.cmd);
        let m = |c: &ng_cmdlist| c.cookie == cookie && c.cmd as u32 == cmd;
        let c = match find_cmd((*(*here).nd_type).cmdlist, m).or_else(|| find_cmd(generic, m)) {
            Some(c) => c,
            None => return ENOSYS,
        };
        let argstype = if (*binary).header.flags & fbsd_sys::NGF_RESP != 0 {
            (*c).respType
        } else {
            (*c).mesgType
        };
        let mut bufsize: usize = 1024;
        loop {
            let r = mk_response(msg, NG_MESG_SIZE + bufsize, NOWAIT);
            if r.is_null() {
                return ENOMEM;
            }
            let ascii = msg_data(r).cast::<ng_mesg>();
            std::ptr::copy_nonoverlapping(binary.cast::<u8>(), ascii.cast::<u8>(), NG_MESG_SIZE);
            let name = core_::cbytes((*c).name);
            let cs = &mut *std::ptr::addr_of_mut!((*ascii).header.cmdstr);
            *cs = [0; 32];
            let n = name.len().min(31);
            cs[..n].copy_from_slice(&name[..n]);
            let text = msg_data(ascii);
            if argstype.is_null() {
                *text = 0;
            } else {
                // Every read the conversion makes is checked against the
                // binary message (FreeBSD would print whatever follows it).
                let e = parse::unparse_raw_checked(
                    argstype,
                    msg_data(binary),
                    (*binary).header.arglen as usize,
                    text.cast(),
                    bufsize as c_int,
                );
                if e == ERANGE {
                    free_msg(r);
                    bufsize *= 2;
                    continue;
                }
                if e != 0 {
                    free_msg(r);
                    return e;
                }
            }
            let len = core_::cbytes(text.cast()).len() + 1;
            (*ascii).header.arglen = len as u32;
            (*r).header.arglen = (NG_MESG_SIZE + len) as u32;
            *resp = r;
            return 0;
        }
    }
}

/// NGM_ASCII2BINARY (§6.2).
unsafe fn ascii2binary(here: node_p, msg: *mut ng_mesg, resp: &mut *mut ng_mesg) -> c_int {
    const BUFSIZE: usize = 20 * 1024;
    // SAFETY: live request message of `arglen` argument bytes.
    unsafe {
        let arglen = (*msg).header.arglen as usize;
        let ascii = msg_data(msg).cast::<ng_mesg>();
        if arglen < NG_MESG_SIZE + 1
            || (*ascii).header.arglen < 1
            || arglen < NG_MESG_SIZE + (*ascii).header.arglen as usize
        {
            return EINVAL;
        }
        *msg_data(ascii).add((*ascii).header.arglen as usize - 1) = 0;
        let generic = parse::generic_cmdlist_c();
        let r = mk_response(msg, NG_MESG_SIZE + BUFSIZE, NOWAIT);
        if r.is_null() {
            return ENOMEM;
        }
        let binary = msg_data(r).cast::<ng_mesg>();
        std::ptr::copy_nonoverlapping(ascii.cast::<u8>(), binary.cast::<u8>(), NG_MESG_SIZE);
        let cs = (*ascii).header.cmdstr;
        let want = cs[..cs.iter().position(|&b| b == 0).unwrap_or(cs.len())].to_vec();
        let m = |c: &ng_cmdlist| core_::cbytes(c.name) == want.as_slice();
        let c = match find_cmd((*(*here).nd_type).cmdlist, m).or_else(|| find_cmd(generic, m)) {
            Some(c) => c,
            None => {
                free_msg(r);
                return ENOSYS;
            }
        };
        (*binary).header.cmd = (*c).cmd as u32;
        (*binary).header.typecookie = (*c).cookie;
        let argstype = if (*binary).header.flags & fbsd_sys::NGF_RESP != 0 {
            (*c).respType
        } else {
            (*c).mesgType
        };
        let mut bufsize: c_int = BUFSIZE as c_int;
        if argstype.is_null() {
            bufsize = 0;
        } else {
            let mut off: c_int = 0;
            let e = parse::parse_raw(
                argstype,
                msg_data(ascii).cast(),
                &mut off,
                msg_data(binary),
                &mut bufsize,
            );
            if e != 0 {
                free_msg(r);
                return e;
            }
        }
        (*binary).header.arglen = bufsize as u32;
        (*r).header.arglen = (NG_MESG_SIZE + bufsize as usize) as u32;
        *resp = r;
        0
    }
}
