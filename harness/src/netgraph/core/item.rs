//! Items: allocation with the two zone limits, freeing (with the payload),
//! packaging, addressing and return addresses (docs/netgraph-model.md §5.1–§5.3).
//!
//! Every item the core hands out is tracked with a state, so the §11
//! ownership rules can be checked: freed items are poisoned and never reused;
//! an item handed to a handler and never consumed is reported at quiescence.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::c_int;

use fbsd_sys::{hook_p, mbuf, ng_item, ng_mesg, node_p};

use super::{
    cbytes, hook_ok, node2id, node_ref, unref_node, with, EINVAL, ENETDOWN, HK_INVALID, NGF_INVALID,
};
use crate::kern::fault;
use crate::kern::malloc;
use crate::kern::mbuf as mbuf_api;

pub(crate) const NGQF_TYPE: u64 = fbsd_sys::NGQF_TYPE as u64;
pub(crate) const NGQF_MESG: u64 = fbsd_sys::NGQF_MESG as u64;
pub(crate) const NGQF_DATA: u64 = fbsd_sys::NGQF_DATA as u64;
pub(crate) const NGQF_FN: u64 = fbsd_sys::NGQF_FN as u64;
pub(crate) const NGQF_FN2: u64 = fbsd_sys::NGQF_FN2 as u64;
pub(crate) const NGQF_RW: u64 = fbsd_sys::NGQF_RW as u64;
pub(crate) const NGQF_READER: u64 = fbsd_sys::NGQF_READER as u64;
pub(crate) const NGQF_QREADER: u64 = fbsd_sys::NGQF_QREADER as u64;
pub(crate) const NG_WAITOK: c_int = fbsd_sys::NG_WAITOK as c_int;

/// Default `net.graph.maxalloc` / `net.graph.maxdata`.
pub const DEFAULT_ZONE_LIMIT: usize = 4096;
/// Freed items kept poisoned (never reused) before the oldest go back to the
/// host allocator: a double free of an item freed longer ago than this many
/// item frees can no longer be told from a free of a new item.
pub const ITEM_QUARANTINE: usize = 1 << 18;

/// Where an item is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemState {
    /// Allocated and owned by whoever allocated or last received it.
    Owned,
    /// On a node's input queue.
    Queued,
    /// Being applied by the core (function items, generic messages).
    Applying,
    /// Handed to a node method (rcvdata, rcvmsg, fn2), which must consume it.
    Handed,
    /// Held by an armed ng_callout.
    Callout,
}

/// The header fields of a request handed to rcvmsg (for the reply checks).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MsgKey {
    pub msg: usize,
    pub token: u32,
    pub cookie: u32,
    pub cmd: u32,
    pub flags: u32,
}

/// Bookkeeping for one live item.
#[derive(Clone, Debug)]
pub(crate) struct ItemRec {
    pub state: ItemState,
    pub data_zone: bool,
    /// Which handler it was last handed to: (node ID, type name, method).
    pub handed: Option<(u32, String, &'static str)>,
    /// The request header when it was handed to rcvmsg.
    pub request: Option<MsgKey>,
}

/// All items of one core.
pub(crate) struct Items {
    pub live: HashMap<usize, ItemRec>,
    pub freed: HashSet<usize>,
    /// Freed items, oldest first (bounded by [`ITEM_QUARANTINE`]).
    pub quarantine: VecDeque<usize>,
    /// Items in use per zone: [control (msg/fn), data].
    pub used: [usize; 2],
    /// Zone limits: [maxalloc, maxdata].
    pub max: [usize; 2],
}

impl Default for Items {
    fn default() -> Self {
        Items {
            live: HashMap::new(),
            freed: HashSet::new(),
            quarantine: VecDeque::new(),
            used: [0; 2],
            max: [DEFAULT_ZONE_LIMIT; 2],
        }
    }
}

static ZONE_CHAN: [u8; 2] = [0; 2];

fn zone_chan(zone: usize) -> usize {
    &ZONE_CHAN[zone] as *const u8 as usize
}

/// Fault-injection names of the two item zones (`Site::Other`).
const ZONE_NAMES: [&str; 2] = ["ng_item", "ng_data_item"];

/// Sets the item zone limits (`net.graph.maxalloc`, `net.graph.maxdata`).
pub fn set_zone_limits(maxalloc: usize, maxdata: usize) {
    with(|c| c.items.max = [maxalloc, maxdata]);
}

/// Items in use per zone: (control items, data items).
pub fn zone_usage() -> (usize, usize) {
    with(|c| (c.items.used[0], c.items.used[1]))
}

/// The `netgraph_msg` malloc type (M_NETGRAPH_MSG).
pub fn msg_type() -> *mut fbsd_sys::malloc_type {
    malloc::harness_type("netgraph_msg")
}

/// The `netgraph` malloc type (M_NETGRAPH).
pub fn netgraph_type() -> *mut fbsd_sys::malloc_type {
    malloc::harness_type("netgraph")
}

/// State of a live item, or None if it is not live.
pub fn item_state(item: *mut ng_item) -> Option<ItemState> {
    with(|c| c.items.live.get(&(item as usize)).map(|r| r.state))
}

pub(crate) fn set_state(item: *mut ng_item, st: ItemState) {
    with(|c| {
        if let Some(r) = c.items.live.get_mut(&(item as usize)) {
            r.state = st;
        }
    });
}

pub(crate) fn set_handed(
    item: *mut ng_item,
    node: node_p,
    method: &'static str,
    request: Option<MsgKey>,
) {
    // SAFETY: a live node with a registered type.
    let (id, ty) = unsafe { ((*node).nd_ID, super::show(cbytes((*(*node).nd_type).name))) };
    with(|c| {
        if let Some(r) = c.items.live.get_mut(&(item as usize)) {
            r.state = ItemState::Handed;
            r.handed = Some((id, ty, method));
            r.request = request;
        }
    });
}

/// Checks that `item` is a live item; reports double free / wild pointers.
pub(crate) fn item_ok(item: *mut ng_item, what: &str) -> bool {
    if item.is_null() {
        crate::kern::violation(format!("{what}: NULL item"));
        return false;
    }
    let (live, freed) = with(|c| {
        (
            c.items.live.contains_key(&(item as usize)),
            c.items.freed.contains(&(item as usize)),
        )
    });
    if live {
        return true;
    }
    if freed {
        crate::kern::violation(format!(
            "{what}: item {item:p} was already freed or consumed (double free / use after free)"
        ));
    } else {
        crate::kern::violation(format!("{what}: {item:p} is not a netgraph item"));
    }
    false
}

/// `ng_alloc_item(kind, flags)`: zeroed item from the zone of its kind; NULL
/// at the zone limit without NG_WAITOK (with it: sleeps until one is freed).
pub(crate) fn alloc_item(kind: u64, flags: c_int) -> *mut ng_item {
    let zone = usize::from(kind == NGQF_DATA);
    if flags & NG_WAITOK != 0 {
        // Rule H14: NG_WAITOK may sleep.
        crate::kern::lock::assert_may_sleep("netgraph item allocation with NG_WAITOK");
    }
    loop {
        let (used, max) = with(|c| (c.items.used[zone], c.items.max[zone]));
        if used < max {
            break;
        }
        if flags & NG_WAITOK == 0 {
            return std::ptr::null_mut();
        }
        if crate::kern::sched::sleep_on(zone_chan(zone), None, "ng item zone") != 0 {
            return std::ptr::null_mut();
        }
    }
    if flags & NG_WAITOK == 0 && fault::should_fail(&fault::Site::Other(ZONE_NAMES[zone])) {
        return std::ptr::null_mut();
    }
    let item: *mut ng_item = super::alloc_zeroed();
    // SAFETY: fresh zeroed item.
    unsafe { (*item).el_flags = kind };
    with(|c| {
        c.items.used[zone] += 1;
        c.items.live.insert(
            item as usize,
            ItemRec {
                state: ItemState::Owned,
                data_zone: zone == 1,
                handed: None,
                request: None,
            },
        );
    });
    item
}

/// Releases the payload and references of an item and returns it to its
/// zone (`ng_free_item`). The caller has checked that it is live.
pub(crate) unsafe fn free_item_core(item: *mut ng_item) {
    // SAFETY: a live item owned by the caller.
    unsafe {
        match (*item).el_flags & NGQF_TYPE {
            NGQF_DATA => {
                let m = std::mem::replace(&mut (*item).body.da_m, std::ptr::null_mut());
                if !m.is_null() {
                    free_mbuf(m);
                }
            }
            NGQF_MESG => {
                (*item).body.msg.msg_retaddr = 0;
                let msg = std::mem::replace(&mut (*item).body.msg.msg_msg, std::ptr::null_mut());
                if !msg.is_null() {
                    free_msg(msg);
                }
            }
            _ => {
                (*item).body.fn_.fn_fn.fn_fn = None;
                (*item).body.fn_.fn_arg1 = std::ptr::null_mut();
                (*item).body.fn_.fn_arg2 = 0;
            }
        }
        let node = std::mem::replace(&mut (*item).el_dest, std::ptr::null_mut());
        if !node.is_null() {
            unref_node(node);
        }
        let hook = std::mem::replace(&mut (*item).el_hook, std::ptr::null_mut());
        if !hook.is_null() {
            super::hook::unref_hook(hook);
        }
    }
    super::poison(item);
    let (zone, released) = with(|c| {
        let rec = c.items.live.remove(&(item as usize));
        c.items.freed.insert(item as usize);
        c.items.quarantine.push_back(item as usize);
        let released = if c.items.quarantine.len() > ITEM_QUARANTINE {
            c.items.quarantine.pop_front().inspect(|old| {
                c.items.freed.remove(old);
            })
        } else {
            None
        };
        let zone = usize::from(rec.is_some_and(|r| r.data_zone));
        c.items.used[zone] -= 1;
        (zone, released)
    });
    if let Some(old) = released {
        // SAFETY: a quarantined item allocated by `alloc_zeroed::<ng_item>`
        // and no longer tracked anywhere.
        unsafe { std::alloc::dealloc(old as *mut u8, std::alloc::Layout::new::<ng_item>()) };
    }
    crate::kern::sched::wakeup_chan(zone_chan(zone), true);
}

/// `ng_free_item` as called by node code: the item must be one the caller owns.
pub(crate) unsafe fn free_item(item: *mut ng_item) {
    if !item_ok(item, "ng_free_item") {
        return;
    }
    match item_state(item) {
        Some(ItemState::Queued) => {
            crate::kern::violation(format!(
                "ng_free_item({item:p}): the item is on a node's input queue"
            ));
            return;
        }
        Some(ItemState::Callout) => {
            crate::kern::violation(format!(
                "ng_free_item({item:p}): the item belongs to an armed ng_callout"
            ));
            return;
        }
        _ => {}
    }
    // SAFETY: live item owned by the caller.
    unsafe { free_item_core(item) };
}

/// NG_FREE_M (m_freem), checking the mbuf is live first.
pub(crate) fn free_mbuf(m: *mut mbuf) {
    mbuf_api::free_chain(m);
}

/// NG_FREE_MSG: free with M_NETGRAPH_MSG.
pub(crate) fn free_msg(msg: *mut ng_mesg) {
    malloc::kfree(msg.cast(), msg_type());
}

/// `ng_package_data` (§5.2): reader data item; on failure the mbuf is freed.
pub(crate) unsafe fn package_data(m: *mut mbuf, flags: c_int) -> *mut ng_item {
    let item = alloc_item(NGQF_DATA, flags);
    if item.is_null() {
        if !m.is_null() {
            free_mbuf(m);
        }
        return item;
    }
    // SAFETY: fresh item.
    unsafe {
        (*item).el_flags |= NGQF_READER;
        (*item).body.da_m = m;
    }
    item
}

/// `ng_package_msg` (§5.2): reader if NGM_READONLY, else writer; the message
/// is freed on failure.
pub(crate) unsafe fn package_msg(msg: *mut ng_mesg, flags: c_int) -> *mut ng_item {
    let item = alloc_item(NGQF_MESG, flags);
    if item.is_null() {
        if !msg.is_null() {
            free_msg(msg);
        }
        return item;
    }
    // SAFETY: fresh item; `msg` is a message from the caller.
    unsafe {
        if !msg.is_null() && (*msg).header.cmd & fbsd_sys::NGM_READONLY != 0 {
            (*item).el_flags |= NGQF_READER;
        }
        (*item).body.msg.msg_msg = msg;
        (*item).body.msg.msg_retaddr = 0;
    }
    item
}

/// `ng_package_msg_self` (§5.2).
pub(crate) unsafe fn package_msg_self(
    here: node_p,
    hook: hook_p,
    msg: *mut ng_mesg,
) -> *mut ng_item {
    let item = alloc_item(NGQF_MESG, 0);
    if item.is_null() {
        if !msg.is_null() {
            free_msg(msg);
        }
        return item;
    }
    node_ref(here);
    // SAFETY: fresh item.
    unsafe {
        (*item).el_dest = here;
        if !hook.is_null() {
            super::hook_ref(hook);
            (*item).el_hook = hook;
        }
        (*item).body.msg.msg_msg = msg;
        (*item).body.msg.msg_retaddr = node2id(here);
    }
    item
}

/// ITEM_DEBUG_CHECKS: an item being addressed must not carry references.
unsafe fn debug_checks(item: *mut ng_item, what: &str) {
    // SAFETY: live item.
    unsafe {
        if !(*item).el_dest.is_null() || !(*item).el_hook.is_null() {
            crate::kern::violation(format!(
                "{what}: item {item:p} already has a destination node/hook (their references leak)"
            ));
        }
    }
}

/// SET_RETADDR: a non-zero retaddr wins, else keep an existing one, else here's ID.
unsafe fn set_retaddr(item: *mut ng_item, here: node_p, retaddr: u32) {
    // SAFETY: live item.
    unsafe {
        if (*item).el_flags & NGQF_TYPE == NGQF_MESG {
            if retaddr != 0 {
                (*item).body.msg.msg_retaddr = retaddr;
            } else if (*item).body.msg.msg_retaddr == 0 {
                (*item).body.msg.msg_retaddr = node2id(here);
            }
        }
    }
}

/// `ng_address_hook` (§5.3): to the peer of `hook`; ENETDOWN (item freed) if
/// the hook, its peer or the peer node is not valid.
pub(crate) unsafe fn address_hook(
    here: node_p,
    item: *mut ng_item,
    hook: hook_p,
    retaddr: u32,
) -> c_int {
    if !item_ok(item, "ng_address_hook") {
        return EINVAL;
    }
    // SAFETY: live item; hooks are checked before use.
    unsafe {
        debug_checks(item, "ng_address_hook");
        let ok = !hook.is_null()
            && hook_ok(hook, "ng_address_hook")
            && (*hook).hk_flags & HK_INVALID == 0
            && {
                let peer = (*hook).hk_peer;
                (*peer).hk_flags & HK_INVALID == 0 && (*(*peer).hk_node).nd_flags & NGF_INVALID == 0
            };
        if !ok {
            free_item_core(item);
            return ENETDOWN;
        }
        let peer = (*hook).hk_peer;
        let peernode = (*peer).hk_node;
        super::hook_ref(peer);
        node_ref(peernode);
        (*item).el_hook = peer;
        (*item).el_dest = peernode;
        set_retaddr(item, here, retaddr);
    }
    set_state(item, ItemState::Owned);
    0
}

/// `ng_address_path` (§5.3, §5.6).
pub(crate) unsafe fn address_path(
    here: node_p,
    item: *mut ng_item,
    address: &[u8],
    retaddr: u32,
) -> c_int {
    if !item_ok(item, "ng_address_path") {
        return EINVAL;
    }
    // SAFETY: live item.
    unsafe { debug_checks(item, "ng_address_path") };
    // SAFETY: `here` is a node or NULL.
    match unsafe { super::path::path2noderef(here, address) } {
        Err(e) => {
            // SAFETY: live item, consumed on failure.
            unsafe { free_item_core(item) };
            e
        }
        Ok((dest, hook)) => {
            // SAFETY: live item; references from path2noderef move into it.
            unsafe {
                (*item).el_dest = dest;
                if !hook.is_null() {
                    (*item).el_hook = hook;
                }
                set_retaddr(item, here, retaddr);
            }
            set_state(item, ItemState::Owned);
            0
        }
    }
}

/// `ng_address_ID` (§5.3): EINVAL (item freed) if no valid node has the ID.
pub(crate) unsafe fn address_id(here: node_p, item: *mut ng_item, id: u32, retaddr: u32) -> c_int {
    if !item_ok(item, "ng_address_ID") {
        return EINVAL;
    }
    // SAFETY: live item.
    unsafe {
        debug_checks(item, "ng_address_ID");
        reply_checks(item, id);
    }
    let dest = super::find_id(id);
    if dest.is_null() {
        // SAFETY: live item, consumed on failure.
        unsafe { free_item_core(item) };
        return EINVAL;
    }
    node_ref(dest);
    // SAFETY: live item.
    unsafe {
        (*item).el_dest = dest;
        let h = std::mem::replace(&mut (*item).el_hook, std::ptr::null_mut());
        if !h.is_null() {
            super::hook::unref_hook(h);
        }
        set_retaddr(item, here, retaddr);
    }
    set_state(item, ItemState::Owned);
    0
}

/// §11 rule 18: warnings for replies that do not look like replies.
unsafe fn reply_checks(item: *mut ng_item, dest: u32) {
    let req = with(|c| {
        c.items
            .live
            .get_mut(&(item as usize))
            .and_then(|r| r.request.take())
    });
    let Some(req) = req else { return };
    // SAFETY: live item.
    unsafe {
        if (*item).el_flags & NGQF_TYPE != NGQF_MESG {
            return;
        }
        let msg = (*item).body.msg.msg_msg;
        if msg.is_null() {
            return;
        }
        let h = &(*msg).header;
        let is_response = msg as usize != req.msg || h.flags & fbsd_sys::NGF_RESP != 0;
        if !is_response {
            return;
        }
        if h.flags & fbsd_sys::NGF_RESP == 0 {
            super::warn(format!("response (cmd {}) sent without NGF_RESP", h.cmd));
        }
        if h.token != req.token || h.typecookie != req.cookie || h.cmd != req.cmd {
            super::warn(format!(
                "response header differs from the request: token {}/{} cookie {}/{} cmd {}/{}",
                h.token, req.token, h.typecookie, req.cookie, h.cmd, req.cmd
            ));
        }
        if req.flags & fbsd_sys::NGF_RESP != 0 {
            super::warn(format!(
                "a node responded to a message that was itself a response (cmd {})",
                h.cmd
            ));
        }
        if dest == 0 {
            super::warn(format!("response (cmd {}) sent to return address 0", h.cmd));
        }
    }
}

/// `ng_replace_retaddr`.
pub(crate) unsafe fn replace_retaddr(here: node_p, item: *mut ng_item, retaddr: u32) {
    if !item_ok(item, "ng_replace_retaddr") {
        return;
    }
    // SAFETY: live item.
    unsafe {
        (*item).body.msg.msg_retaddr = if retaddr != 0 { retaddr } else { node2id(here) };
    }
}

/// `ng_realloc_item(pitem, NGQF_FN2, flags)` for NG_REUSE_ITEM.
pub(crate) unsafe fn realloc_to_fn2(pitem: *mut ng_item, flags: c_int) -> *mut ng_item {
    // SAFETY: live item owned by the caller.
    unsafe {
        let kind = (*pitem).el_flags & NGQF_TYPE;
        if !(*pitem).el_dest.is_null() || !(*pitem).el_hook.is_null() {
            crate::kern::violation(format!(
                "ng_send_fn2(NG_REUSE_ITEM): item {pitem:p} still carries node/hook references (they leak)"
            ));
        }
        if kind == NGQF_MESG && !(*pitem).body.msg.msg_msg.is_null() {
            crate::kern::violation(format!(
                "ng_send_fn2(NG_REUSE_ITEM): message still attached to item {pitem:p} (it leaks)"
            ));
        }
        let item = if kind == NGQF_DATA {
            let item = alloc_item(NGQF_FN2, flags);
            if item.is_null() {
                free_item_core(pitem);
                return item;
            }
            std::ptr::copy_nonoverlapping(pitem, item, 1);
            (*item).el_dest = std::ptr::null_mut();
            (*item).el_hook = std::ptr::null_mut();
            free_item_core(pitem);
            item
        } else {
            (*pitem).el_dest = std::ptr::null_mut();
            (*pitem).el_hook = std::ptr::null_mut();
            pitem
        };
        (*item).el_flags = (*item).el_flags & !NGQF_TYPE | NGQF_FN2;
        set_state(item, ItemState::Owned);
        item
    }
}
