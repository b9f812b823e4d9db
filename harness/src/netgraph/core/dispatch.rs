//! Dispatch: `ng_snd_item`, the per-node reader/writer gate and input queue,
//! the work list and the queue "thread", application of items, apply
//! records, function items and callouts (docs/netgraph-model.md §5.5–§5.10).

use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering;

use fbsd_sys::{callout, hook_p, item_p, ng_apply_info, ng_item_fn, ng_item_fn2, ng_node, node_p};

use super::item::{
    alloc_item, free_item_core, item_ok, set_handed, set_state, ItemState, MsgKey, NGQF_DATA,
    NGQF_FN, NGQF_FN2, NGQF_MESG, NGQF_QREADER, NGQF_RW, NGQF_TYPE,
};
use super::{
    atomic_i32, curthread, hook, hook_ref, node_ok, node_ref, resolve_fn, set_curvnet, unref_node,
    with, EINPROGRESS, EINVAL, EIO, ENOMEM, HK_INVALID, NGF_INVALID,
};
use crate::kern::epoch;
use crate::kern::malloc;
use crate::kern::mbuf as mbuf_api;
use crate::kern::sched;
use crate::kern::smp;
use crate::kern::thread as thread_api;

thread_local! {
    /// Direct dispatches nested on this OS thread's stack (the stack-pressure
    /// model; per stack, so per OS thread).
    static NESTING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn nesting() -> u32 {
    NESTING.with(std::cell::Cell::get)
}

fn set_nesting(n: u32) -> u32 {
    NESTING.with(|c| c.replace(n))
}

const WRITER_ACTIVE: u32 = 0x1;
const OP_PENDING: u32 = 0x2;
const READER_INCREMENT: u32 = 0x4;
const READER_MASK: u32 = 0xffff_fffc;
const NGQ2_WORKQ: u32 = 0x1;

const NG_QUEUE: c_int = fbsd_sys::NG_QUEUE as c_int;
const NG_PROGRESS: c_int = fbsd_sys::NG_PROGRESS as c_int;
const NG_REUSE_ITEM: c_int = fbsd_sys::NG_REUSE_ITEM as c_int;

const HK_QUEUE: c_int = fbsd_sys::HK_QUEUE as c_int;
const HK_FORCE_WRITER: c_int = fbsd_sys::HK_FORCE_WRITER as c_int;
const HK_HI_STACK: c_int = fbsd_sys::HK_HI_STACK as c_int;
const HK_TO_INBOUND: c_int = fbsd_sys::HK_TO_INBOUND as c_int;
const NGF_FORCE_WRITER: c_int = fbsd_sys::NGF_FORCE_WRITER as c_int;
const NGF_HI_STACK: c_int = fbsd_sys::NGF_HI_STACK as c_int;

/// callout(9) flags used by ng_callout.
const CALLOUT_ACTIVE: i16 = 0x0002;
const CALLOUT_PENDING: i16 = 0x0004;

/// Reader or writer (NGQRW_R / NGQRW_W).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rw {
    Reader,
    Writer,
}

/// Dispatch knobs (§11 rules 11 and 14).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchConfig {
    /// Treat every send as NG_QUEUE (shakes out ordering assumptions).
    pub queue_all: bool,
    /// Stack-pressure model: nested direct dispatches allowed on one stack
    /// before items are queued (the kernel's "less than 25 % stack free");
    /// nodes/hooks marked HI_STACK queue at two thirds of it ("50 % free").
    /// `None`: no stack pressure.
    pub max_direct_nesting: Option<u32>,
}

/// Dispatch state of one core.
#[derive(Default)]
pub(crate) struct DispState {
    pub config: DispatchConfig,
}

/// A callout armed through ng_callout.
pub(crate) struct CalloutRec {
    pub timer: sched::TimerId,
    pub item: usize,
}

/// Sets the dispatch knobs of this thread's core.
pub fn set_dispatch_config(c: DispatchConfig) {
    with(|s| s.disp.config = c);
}

fn qflags(node: node_p) -> u32 {
    // SAFETY: live node.
    unsafe { (*node).nd_input_queue.q_flags }
}

fn set_qflags(node: node_p, f: u32) {
    // SAFETY: live node.
    unsafe { (*node).nd_input_queue.q_flags = f };
}

fn refs_inc(node: node_p) {
    // SAFETY: live node (refcount word).
    atomic_i32(unsafe { std::ptr::addr_of_mut!((*node).nd_refs) }).fetch_add(1, Ordering::AcqRel);
}

/// NEXT_QUEUED_ITEM_CAN_PROCEED.
fn head_can_proceed(c: &super::Core, node: node_p) -> bool {
    let Some(&head) = c.nodes.get(&(node as usize)).and_then(|r| r.queue.front()) else {
        return false;
    };
    let f = qflags(node);
    // SAFETY: queued items are live.
    if unsafe { (*head).el_flags } & NGQF_QREADER != 0 {
        f & WRITER_ACTIVE == 0
    } else {
        f & (WRITER_ACTIVE | READER_MASK) == 0
    }
}

/// ng_worklist_add: at most once on the list (NGQ2_WORKQ), holding a reference.
fn worklist_add(c: &mut super::Core, node: node_p) {
    // SAFETY: live node.
    unsafe {
        if (*node).nd_input_queue.q_flags2 & NGQ2_WORKQ == 0 {
            (*node).nd_input_queue.q_flags2 |= NGQ2_WORKQ;
            refs_inc(node);
            c.worklist.push_back(node);
            // A queue thread on some CPU will take it.
            smp::kick_work();
        }
    }
}

/// ng_queue_rw.
fn queue_rw(node: node_p, item: item_p, rw: Rw) {
    // SAFETY: live item.
    unsafe {
        if rw == Rw::Writer {
            (*item).el_flags &= !NGQF_QREADER;
        } else {
            (*item).el_flags |= NGQF_QREADER;
        }
        (*item).depth = 1;
    }
    set_state(item, ItemState::Queued);
    crate::kern::lock::note_acquire("netgraph node queue");
    with(|c| {
        set_qflags(node, qflags(node) | OP_PENDING);
        c.nodes
            .entry(node as usize)
            .or_default()
            .queue
            .push_back(item);
        if head_can_proceed(c, node) {
            worklist_add(c, node);
        }
    });
    smp::preempt(smp::Ev::Point("item enqueued"));
}

/// ng_dequeue: the head item if it can run now, taking the gate for it.
fn dequeue(c: &mut super::Core, node: node_p) -> Option<(item_p, Rw)> {
    let rec = c.nodes.get_mut(&(node as usize))?;
    let head = *rec.queue.front()?;
    let f = qflags(node);
    // SAFETY: queued items are live.
    let rw = if unsafe { (*head).el_flags } & NGQF_QREADER != 0 {
        if f & WRITER_ACTIVE != 0 {
            return None;
        }
        set_qflags(node, f + READER_INCREMENT);
        Rw::Reader
    } else {
        if f & !OP_PENDING != 0 {
            return None;
        }
        set_qflags(node, f | WRITER_ACTIVE);
        Rw::Writer
    };
    rec.queue.pop_front();
    if rec.queue.is_empty() {
        set_qflags(node, qflags(node) & !OP_PENDING);
    }
    Some((head, rw))
}

fn leave(node: node_p, rw: Rw) {
    let f = qflags(node);
    match rw {
        Rw::Reader => {
            if f & READER_MASK == 0 {
                crate::kern::violation(format!(
                    "node {node:p}: reader gate released with no active reader"
                ));
                return;
            }
            set_qflags(node, f - READER_INCREMENT);
        }
        Rw::Writer => set_qflags(node, f & !WRITER_ACTIVE),
    }
}

// ---------------------------------------------------------------------------
// Apply records (§5.9)

pub(crate) unsafe fn apply_acquire(a: *mut ng_apply_info) {
    // SAFETY: the originator keeps the record alive while items carry it.
    atomic_i32(unsafe { std::ptr::addr_of_mut!((*a).refs) }).fetch_add(1, Ordering::AcqRel);
}

/// Drops one apply reference; the last one calls `apply(context, error)`.
pub(crate) unsafe fn apply_release(a: *mut ng_apply_info) {
    // SAFETY: as above.
    unsafe {
        let old = atomic_i32(std::ptr::addr_of_mut!((*a).refs)).fetch_sub(1, Ordering::AcqRel);
        if old <= 0 {
            crate::kern::violation(format!("apply record {a:p}: reference count went negative"));
            return;
        }
        if old == 1 {
            match (*a).apply {
                Some(f) => f((*a).context, (*a).error),
                None => crate::kern::violation(format!("apply record {a:p} has no apply function")),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// ng_snd_item (§5.5)

/// `ng_snd_item(item, flags)`.
pub(crate) unsafe fn snd_item(item: item_p, flags: c_int) -> c_int {
    if !item_ok(item, "ng_snd_item") {
        return EINVAL;
    }
    match super::item::item_state(item) {
        Some(ItemState::Queued) | Some(ItemState::Callout) => {
            crate::kern::violation(format!(
                "ng_snd_item({item:p}): the item is already queued/armed"
            ));
            return EINVAL;
        }
        _ => {}
    }
    // SAFETY: live item; node/hook references are owned by it.
    unsafe {
        let apply = (*item).apply;
        if !apply.is_null() {
            apply_acquire(apply);
        }
        let node = (*item).el_dest;
        let hook = (*item).el_hook;
        let kind = (*item).el_flags & NGQF_TYPE;
        let error;
        'done: {
            if node.is_null() {
                crate::kern::violation(format!(
                    "ng_snd_item({item:p}): item has no destination node"
                ));
                error = EINVAL;
                break 'done;
            }
            if !node_ok(node, "ng_snd_item") {
                (*item).el_dest = std::ptr::null_mut();
                error = EINVAL;
                break 'done;
            }
            if kind == NGQF_DATA {
                if hook.is_null() {
                    crate::kern::violation(format!(
                        "ng_snd_item({item:p}): data item without a hook"
                    ));
                }
                let m = (*item).body.da_m;
                if m.is_null() {
                    error = EINVAL;
                    break 'done;
                }
                if !mbuf_api::is_live(m) {
                    crate::kern::violation(format!(
                        "ng_snd_item({item:p}): its mbuf {m:p} was already freed"
                    ));
                    (*item).body.da_m = std::ptr::null_mut();
                    error = EINVAL;
                    break 'done;
                }
                if let Some(msg) = crate::netgraph::mbufx::check_data_mbuf(m) {
                    crate::kern::violation(msg);
                } else {
                    // The rest of the chain's invariants: flags, packet
                    // header, storage bounds.
                    for p in mbuf_api::chain_problems(m) {
                        crate::kern::violation(format!("ng_snd_item({item:p}): {p}"));
                    }
                }
            }
            let rw = if (*item).el_flags & NGQF_RW == 0
                || (*node).nd_flags & NGF_FORCE_WRITER != 0
                || (!hook.is_null() && (*hook).hk_flags & HK_FORCE_WRITER != 0)
            {
                Rw::Writer
            } else {
                Rw::Reader
            };
            let hk = if hook.is_null() { 0 } else { (*hook).hk_flags };
            let cfg = with(|c| c.disp.config);
            let nesting = nesting();
            let td = curthread();
            let outbound = !td.is_null() && (*td).td_ng_outbound != 0;
            let hi = (*node).nd_flags & NGF_HI_STACK != 0 || hk & HK_HI_STACK != 0;
            let stack = cfg
                .max_direct_nesting
                .is_some_and(|l| nesting >= l || (hi && nesting >= l * 2 / 3));
            let queue = flags & NG_QUEUE != 0
                || hk & HK_QUEUE != 0
                || (hk & HK_TO_INBOUND != 0 && outbound)
                || stack
                || cfg.queue_all;
            let progress = if flags & NG_PROGRESS != 0 {
                EINPROGRESS
            } else {
                0
            };
            if queue {
                queue_rw(node, item, rw);
                return progress;
            }
            // Try the gate without blocking; busy → queue in that mode.
            let got = with(|_| {
                let f = qflags(node);
                match rw {
                    Rw::Reader if f & (WRITER_ACTIVE | OP_PENDING) == 0 => {
                        set_qflags(node, f + READER_INCREMENT);
                        true
                    }
                    Rw::Writer if f == 0 => {
                        set_qflags(node, WRITER_ACTIVE);
                        true
                    }
                    _ => false,
                }
            });
            if !got {
                queue_rw(node, item, rw);
                return progress;
            }
            (*item).el_dest = std::ptr::null_mut();
            (*item).depth += 1;
            set_nesting(nesting + 1);
            let e = apply_item(node, item, rw);
            set_nesting(nesting);
            let readd = with(|c| {
                if c.nodes
                    .get(&(node as usize))
                    .is_some_and(|r| !r.queue.is_empty())
                    && head_can_proceed(c, node)
                {
                    worklist_add(c, node);
                    true
                } else {
                    false
                }
            });
            if readd {
                smp::preempt(smp::Ev::Point("gate released"));
            }
            unref_node(node);
            return e;
        }
        // Not sent: the apply record gets the error at depth 0.
        if !apply.is_null() {
            if (*item).depth == 0 && error != 0 {
                (*apply).error = error;
            }
            apply_release(apply);
        }
        free_item_core(item);
        error
    }
}

// ---------------------------------------------------------------------------
// Application (§5.7)

fn fn_is(f: usize, target: usize) -> bool {
    resolve_fn(f) == target
}

unsafe fn apply_item(node: node_p, item: item_p, rw: Rw) -> c_int {
    // SAFETY: live node (referenced by the caller) and live item; the gate is held.
    unsafe {
        let mut hook = std::mem::replace(&mut (*item).el_hook, std::ptr::null_mut());
        let apply = (*item).apply;
        let depth = (*item).depth;
        set_state(item, ItemState::Applying);
        let node_invalid = (*node).nd_flags & NGF_INVALID != 0;
        let error = match (*item).el_flags & NGQF_TYPE {
            NGQF_DATA => {
                if hook.is_null() {
                    crate::kern::violation(format!(
                        "ng_apply_item: data item {item:p} without a hook"
                    ));
                    free_item_core(item);
                    EINVAL
                } else if (*hook).hk_flags & HK_INVALID != 0 || node_invalid {
                    free_item_core(item);
                    EIO
                } else {
                    let f = (*hook)
                        .hk_rcvdata
                        .or((*(*hook).hk_node).nd_type.as_ref().and_then(|t| t.rcvdata));
                    match f {
                        None => {
                            free_item_core(item);
                            0
                        }
                        Some(f) => {
                            if !epoch::in_net_epoch() {
                                crate::kern::violation(format!(
                                    "data for node [{:x}] delivered outside the network epoch \
                                     (whoever sends data must be inside NET_EPOCH_ENTER)",
                                    (*node).nd_ID
                                ));
                            }
                            set_handed(item, node, "rcvdata", None);
                            let before = epoch::depth();
                            let e = f(hook, item);
                            epoch::check_left("rcvdata", before);
                            e
                        }
                    }
                }
            }
            NGQF_MESG => {
                if !hook.is_null() && (*hook).hk_flags & HK_INVALID != 0 {
                    hook::unref_hook(hook);
                    hook = std::ptr::null_mut();
                }
                let msg = (*item).body.msg.msg_msg;
                if node_invalid {
                    free_item_core(item);
                    EINVAL
                } else if msg.is_null() || !malloc::is_live(msg.cast()) {
                    crate::kern::violation(format!(
                        "message item {item:p} delivered without a live message (freed after NG_RESPOND_MSG / NGI_GET_MSG?)"
                    ));
                    (*item).body.msg.msg_msg = std::ptr::null_mut();
                    free_item_core(item);
                    EINVAL
                } else if (*msg).header.typecookie == fbsd_sys::NGM_GENERIC_COOKIE
                    && (*msg).header.flags & fbsd_sys::NGF_RESP == 0
                {
                    crate::netgraph::generic::generic_msg(node, item, hook)
                } else {
                    let f = if hook.is_null() {
                        None
                    } else {
                        (*hook).hk_rcvmsg
                    };
                    match f.or((*(*node).nd_type).rcvmsg) {
                        None => {
                            free_item_core(item);
                            0
                        }
                        Some(f) => {
                            let h = &(*msg).header;
                            let key = MsgKey {
                                msg: msg as usize,
                                token: h.token,
                                cookie: h.typecookie,
                                cmd: h.cmd,
                                flags: h.flags,
                            };
                            set_handed(item, node, "rcvmsg", Some(key));
                            let before = epoch::depth();
                            let e = f(node, item, hook);
                            epoch::check_left("rcvmsg", before);
                            e
                        }
                    }
                }
            }
            kind => {
                let fp = (*item).body.fn_.fn_fn.fn_fn.map_or(0, |f| f as usize);
                let rmnode = super::exports::rmnode_fn as *const () as usize;
                let exempt = fn_is(fp, hook::con_part2 as *const () as usize)
                    || fn_is(fp, hook::con_part3 as *const () as usize)
                    || fn_is(fp, hook::rmhook_part2 as *const () as usize);
                let bad_hook = !hook.is_null() && (*hook).hk_flags & HK_INVALID != 0 && !exempt;
                if (node_invalid && !fn_is(fp, rmnode)) || bad_hook {
                    free_item_core(item);
                    EINVAL
                } else if kind == NGQF_FN {
                    let b = (*item).body.fn_;
                    if let Some(f) = b.fn_fn.fn_fn {
                        f(node, hook, b.fn_arg1, b.fn_arg2);
                    } else {
                        crate::kern::violation(format!(
                            "function item {item:p} without a function"
                        ));
                    }
                    free_item_core(item);
                    0
                } else {
                    debug_assert_eq!(kind, NGQF_FN2);
                    match (*item).body.fn_.fn_fn.fn_fn2 {
                        Some(f) => {
                            set_handed(item, node, "fn2", None);
                            f(node, item, hook)
                        }
                        None => {
                            crate::kern::violation(format!(
                                "function item {item:p} without a function"
                            ));
                            free_item_core(item);
                            EINVAL
                        }
                    }
                }
            }
        };
        if !hook.is_null() {
            hook::unref_hook(hook);
        }
        leave(node, rw);
        if !apply.is_null() {
            if depth == 1 && error != 0 {
                (*apply).error = error;
            }
            apply_release(apply);
        }
        error
    }
}

// ---------------------------------------------------------------------------
// The queue thread (§5.8)

/// One pass of the queue thread: takes the first node off the work list and
/// applies its items while the head can run. Returns false if the work list
/// was empty. Called by `kern::sched::run_once`.
pub fn run_queue_once() -> bool {
    let Some((node, td)) = with(|c| c.worklist.pop_front().map(|n| (n, c.queue_td))) else {
        return false;
    };
    // A free kernel runs the queue "thread" on the sleeping thread's stack:
    // it becomes the queue thread meanwhile. On a machine, queue threads
    // are kernel threads of their own.
    let old_td = if td.is_null() || smp::active() {
        None
    } else {
        Some(thread_api::set_curthread(td))
    };
    // SAFETY: the work list holds a reference on the node.
    let old_vnet = set_curvnet(unsafe { (*node).nd_vnet });
    let old_nesting = set_nesting(0);
    loop {
        let next = with(|c| {
            let r = dequeue(c, node);
            if r.is_none() {
                // SAFETY: live node.
                unsafe { (*node).nd_input_queue.q_flags2 &= !NGQ2_WORKQ };
            }
            r
        });
        let Some((item, rw)) = next else { break };
        // SAFETY: a dequeued live item; its node reference moves to us.
        unsafe {
            let n2 = std::mem::replace(&mut (*item).el_dest, std::ptr::null_mut());
            if n2 != node {
                crate::kern::violation(format!(
                    "queued item {item:p} addressed to {n2:p}, queued on {node:p}"
                ));
            }
            // Queue threads apply data and function items inside the
            // network epoch, message items outside it.
            if (*item).el_flags & NGQF_TYPE == NGQF_MESG {
                epoch::outside(|| apply_item(n2, item, rw));
            } else {
                epoch::in_net(|| apply_item(n2, item, rw));
            }
            unref_node(n2);
        }
    }
    unref_node(node);
    set_nesting(old_nesting);
    set_curvnet(old_vnet);
    if let Some(t) = old_td {
        thread_api::set_curthread(t);
    }
    true
}

/// ng_flush_input_queue (part of shutdown, §3.5 step 6).
pub(crate) fn flush_input_queue(node: node_p) {
    loop {
        let item = with(|c| {
            let rec = c.nodes.get_mut(&(node as usize))?;
            let it = rec.queue.pop_front();
            if rec.queue.is_empty() {
                set_qflags(node, qflags(node) & !OP_PENDING);
            }
            it
        });
        let Some(item) = item else { break };
        // SAFETY: a dequeued live item.
        unsafe {
            let apply = (*item).apply;
            if !apply.is_null() {
                if (*item).depth == 1 {
                    (*apply).error = fbsd_sys::ENOENT as c_int;
                }
                apply_release(apply);
            }
            free_item_core(item);
        }
    }
}

/// Items queued on a node.
pub fn queued_items(node: *mut ng_node) -> usize {
    with(|c| c.nodes.get(&(node as usize)).map_or(0, |r| r.queue.len()))
}

/// Nodes on the work list.
pub fn worklist_len() -> usize {
    with(|c| c.worklist.len())
}

// ---------------------------------------------------------------------------
// Function items (§5.10)

/// `ng_send_fn1`.
pub(crate) unsafe fn send_fn1(
    node: node_p,
    hook: hook_p,
    f: ng_item_fn,
    arg1: *mut c_void,
    arg2: c_int,
    flags: c_int,
) -> c_int {
    if !node_ok(node, "ng_send_fn") {
        return EINVAL;
    }
    let item = alloc_item(NGQF_FN, flags);
    if item.is_null() {
        return ENOMEM;
    }
    node_ref(node);
    // SAFETY: fresh item.
    unsafe {
        (*item).el_dest = node;
        if !hook.is_null() {
            hook_ref(hook);
            (*item).el_hook = hook;
        }
        (*item).body.fn_.fn_fn.fn_fn = f;
        (*item).body.fn_.fn_arg1 = arg1;
        (*item).body.fn_.fn_arg2 = arg2;
        snd_item(item, flags)
    }
}

/// `ng_send_fn2`.
pub(crate) unsafe fn send_fn2(
    node: node_p,
    hook: hook_p,
    pitem: item_p,
    f: ng_item_fn2,
    arg1: *mut c_void,
    arg2: c_int,
    flags: c_int,
) -> c_int {
    if !node_ok(node, "ng_send_fn2") {
        return EINVAL;
    }
    if pitem.is_null() && flags & NG_REUSE_ITEM != 0 {
        crate::kern::violation("ng_send_fn2: NG_REUSE_ITEM without an item");
        return EINVAL;
    }
    // SAFETY: pitem (if any) is a live item owned by the caller.
    unsafe {
        let item = if pitem.is_null() || flags & NG_REUSE_ITEM == 0 {
            let item = alloc_item(NGQF_FN2, flags);
            if item.is_null() {
                return ENOMEM;
            }
            if !pitem.is_null() && item_ok(pitem, "ng_send_fn2") {
                (*item).apply = (*pitem).apply;
            }
            item
        } else {
            if !item_ok(pitem, "ng_send_fn2") {
                return EINVAL;
            }
            let item = super::item::realloc_to_fn2(pitem, flags);
            if item.is_null() {
                return ENOMEM;
            }
            item
        };
        (*item).el_flags &= !NGQF_RW;
        node_ref(node);
        (*item).el_dest = node;
        if !hook.is_null() {
            hook_ref(hook);
            (*item).el_hook = hook;
        }
        (*item).body.fn_.fn_fn.fn_fn2 = f;
        (*item).body.fn_.fn_arg1 = arg1;
        (*item).body.fn_.fn_arg2 = arg2;
        snd_item(item, flags)
    }
}

// ---------------------------------------------------------------------------
// Callouts (§5.10, "Timers"): fired from the event loop in model time.

/// The callout function the core installs (`ng_callout_trampoline`).
pub(crate) unsafe extern "C" fn callout_trampoline(arg: *mut c_void) {
    let item = arg.cast::<fbsd_sys::ng_item>();
    if !item_ok(item, "ng_callout_trampoline") {
        return;
    }
    set_state(item, ItemState::Owned);
    // SAFETY: the armed item holds a reference on its node.
    unsafe {
        let ov = set_curvnet((*(*item).el_dest).nd_vnet);
        // Callouts of netgraph run in the network epoch.
        epoch::in_net(|| snd_item(item, 0));
        set_curvnet(ov);
    }
}

/// Cancels the model timer of a pending callout; true if it was pending.
fn stop_timer(c: *mut callout) -> bool {
    let rec = with(|s| s.callouts.remove(&(c as usize)));
    let pending = rec.is_some_and(|r| sched::cancel_timer(r.timer));
    // SAFETY: the module's callout structure.
    unsafe {
        (*c).c_iflags &= !CALLOUT_PENDING;
        (*c).c_flags &= !CALLOUT_ACTIVE;
    }
    pending
}

/// `ng_callout(c, node, hook, ticks, fn, arg1, arg2)`.
pub(crate) unsafe fn ng_callout(
    c: *mut callout,
    node: node_p,
    hook: hook_p,
    ticks: c_int,
    f: ng_item_fn,
    arg1: *mut c_void,
    arg2: c_int,
) -> c_int {
    if c.is_null() || !node_ok(node, "ng_callout") {
        return EINVAL;
    }
    let item = alloc_item(NGQF_FN, 0);
    if item.is_null() {
        return ENOMEM;
    }
    node_ref(node);
    // SAFETY: fresh item; `c` is the module's callout.
    unsafe {
        (*item).el_dest = node;
        if !hook.is_null() {
            hook_ref(hook);
            (*item).el_hook = hook;
        }
        (*item).body.fn_.fn_fn.fn_fn = f;
        (*item).body.fn_.fn_arg1 = arg1;
        (*item).body.fn_.fn_arg2 = arg2;
        set_state(item, ItemState::Callout);
        let oitem = (*c).c_arg.cast::<fbsd_sys::ng_item>();
        let was_pending = stop_timer(c);
        (*c).c_arg = item.cast();
        (*c).c_func = Some(callout_trampoline);
        (*c).c_iflags |= CALLOUT_PENDING;
        (*c).c_flags |= CALLOUT_ACTIVE;
        let (cp, ip) = (c as usize, item as usize);
        let timer = sched::add_timer(
            ticks.max(1) as u64,
            Box::new(move || {
                with(|s| s.callouts.remove(&cp));
                // (Inside the enclosing unsafe block.) SAFETY: the callout and
                // its item stay live while the callout is armed.
                let c = cp as *mut callout;
                (*c).c_iflags &= !CALLOUT_PENDING;
                callout_trampoline(ip as *mut c_void);
            }),
        );
        with(|s| {
            s.callouts.insert(
                c as usize,
                CalloutRec {
                    timer,
                    item: item as usize,
                },
            )
        });
        if was_pending && !oitem.is_null() && item_ok(oitem, "ng_callout") {
            free_item_core(oitem);
        }
    }
    0
}

/// `ng_uncallout(c, node)` / `ng_uncallout_drain`: 1 if a pending instance was cancelled.
pub(crate) unsafe fn ng_uncallout(c: *mut callout, node: node_p) -> c_int {
    if c.is_null() || node.is_null() {
        crate::kern::violation("ng_uncallout: NULL callout or node");
        return 0;
    }
    let rval = stop_timer(c);
    // SAFETY: the module's callout structure.
    unsafe {
        let item = (*c).c_arg.cast::<fbsd_sys::ng_item>();
        let ours = (*c)
            .c_func
            .is_some_and(|f| f as usize == callout_trampoline as *const () as usize);
        if rval
            && ours
            && !item.is_null()
            && item_ok(item, "ng_uncallout")
            && (*item).el_dest == node
        {
            free_item_core(item);
        }
        (*c).c_arg = std::ptr::null_mut();
    }
    c_int::from(rval)
}

/// Is `c` armed (by `ng_callout`, not yet fired or cancelled)?
pub(crate) fn callout_is_armed(c: *mut callout) -> bool {
    with(|s| s.callouts.contains_key(&(c as usize)))
}

/// Number of armed netgraph callouts.
pub fn armed_callouts() -> usize {
    with(|c| c.callouts.len())
}

/// Items held by armed callouts (excluded from leak reports).
pub(crate) fn callout_items() -> Vec<usize> {
    with(|c| c.callouts.values().map(|r| r.item).collect())
}

/// The kind bits of an item (for diagnostics).
pub(crate) fn kind_name(item: item_p) -> &'static str {
    // SAFETY: live item.
    match unsafe { (*item).el_flags } & NGQF_TYPE {
        NGQF_DATA => "data",
        NGQF_MESG => "message",
        NGQF_FN => "function",
        _ => "function2",
    }
}
