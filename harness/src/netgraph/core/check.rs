//! End-of-scenario checks (docs/netgraph-model.md §11): leftover items, queued
//! work, nodes that are invalid but never freed, hooks detached but never
//! freed, writes to the dead objects.

use std::collections::HashMap;

use fbsd_sys::{ng_item, ng_node};

use super::item::ItemState;
use super::{cbytes, dead_node, field_str, show, with, HK_INVALID, NGF_INVALID};

fn describe_node(n: *mut ng_node) -> String {
    // SAFETY: a live node of this core.
    unsafe {
        let name = field_str(&(*n).nd_name);
        let ty = show(cbytes((*(*n).nd_type).name));
        if name.is_empty() {
            format!("node [{:x}] (type {ty})", (*n).nd_ID)
        } else {
            format!("node [{:x}] \"{}\" (type {ty})", (*n).nd_ID, show(name))
        }
    }
}

/// Runs the quiescence checks and returns the problems found; each is also
/// reported as a violation. Call it once the event loop is idle
/// (`kern::sched::run_until_idle`), e.g. at the end of a scenario.
pub fn check_quiescent() -> Vec<String> {
    let mut problems = Vec::new();
    if !super::check_dead_objects() {
        problems
            .push("a dead object (ng_deadnode/ng_deadhook/ng_deadtype) was written to".to_string());
    }
    let armed: Vec<usize> = super::dispatch::callout_items();
    let items: Vec<(usize, super::item::ItemRec)> =
        with(|c| c.items.live.iter().map(|(&k, v)| (k, v.clone())).collect());
    let mut refs_by_items: HashMap<usize, usize> = HashMap::new();
    for (addr, rec) in &items {
        let it = *addr as *mut ng_item;
        // SAFETY: live item.
        let dest = unsafe { (*it).el_dest };
        if !dest.is_null() {
            *refs_by_items.entry(dest as usize).or_default() += 1;
        }
        let kind = super::dispatch::kind_name(it);
        match rec.state {
            ItemState::Queued => {
                problems.push(format!(
                    "queued work left: {kind} item {it:p} still on a node's input queue"
                ));
            }
            ItemState::Callout => {
                // SAFETY: dest is referenced by the item, so live.
                let dest_invalid =
                    !dest.is_null() && unsafe { (*dest).nd_flags } & NGF_INVALID != 0;
                if !armed.contains(addr) {
                    problems.push(format!(
                        "{kind} item {it:p} of a stopped callout was never freed"
                    ));
                } else if dest_invalid {
                    problems.push(format!(
                        "callout still armed for invalid {} (ng_uncallout missing in shutdown?)",
                        describe_node(dest)
                    ));
                }
            }
            ItemState::Handed => {
                let (id, ty, method) = rec.handed.clone().unwrap_or((0, "?".into(), "?"));
                problems.push(format!(
                    "{kind} item {it:p} leaked: handed to {method} of node [{id:x}] (type {ty}) and never freed, forwarded or reused"
                ));
            }
            ItemState::Owned => {
                problems.push(format!(
                    "{kind} item {it:p} leaked: allocated or addressed but never sent or freed"
                ));
            }
            ItemState::Applying => {
                problems.push(format!(
                    "{kind} item {it:p} left in the middle of its application"
                ));
            }
        }
    }
    let wl = super::dispatch::worklist_len();
    if wl != 0 {
        problems.push(format!("queued work left: {wl} node(s) on the work list"));
    }
    let nodes = super::live_nodes();
    for n in nodes {
        let queued = super::dispatch::queued_items(n);
        // SAFETY: live node of this core.
        let (flags, refs, numhooks) = unsafe { ((*n).nd_flags, (*n).nd_refs, (*n).nd_numhooks) };
        if queued != 0 {
            problems.push(format!(
                "queued work left: {} has {queued} queued item(s)",
                describe_node(n)
            ));
        }
        if flags & NGF_INVALID != 0 {
            let by_items = refs_by_items.get(&(n as usize)).copied().unwrap_or(0);
            problems.push(format!(
                "{} is invalid (shut down) but was never freed: {refs} reference(s) left, {numhooks} hook(s), {by_items} held by items — a missing NG_NODE_UNREF?",
                describe_node(n)
            ));
        }
    }
    let hooks: Vec<usize> = with(|c| c.hooks.iter().copied().collect());
    for h in hooks {
        let h = h as *mut fbsd_sys::ng_hook;
        // SAFETY: live hook.
        unsafe {
            if (*h).hk_node == dead_node() && (*h).hk_flags & HK_INVALID != 0 {
                problems.push(format!(
                    "hook \"{}\" was destroyed but never freed: {} reference(s) left (NG_HOOK_REF without NG_HOOK_UNREF?)",
                    show(field_str(&(*h).hk_name)),
                    (*h).hk_refs
                ));
            }
        }
    }
    for p in &problems {
        crate::kern::violation(format!("netgraph not quiescent: {p}"));
    }
    problems
}

/// Runs the event loop until idle, then [`check_quiescent`].
pub fn quiesce() -> Vec<String> {
    crate::kern::sched::run_until_idle();
    check_quiescent()
}
