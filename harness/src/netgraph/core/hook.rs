//! Hooks and topology: creation, look-up, destruction, bypass, MKPEER and the
//! three-part CONNECT (docs/netgraph-model.md §4).

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::Ordering;

use fbsd_sys::{hook_p, item_p, ng_hook, node_p};

use super::item::{free_item_core, item_ok};
use super::{
    atomic_i32, cbytes, console, dead_hook, dead_node, field_str, hook_ok, hook_ref, make_node,
    node_ref, rmnode, set_field, show, unref_node, with, EEXIST, EINVAL, ENOENT, ENOMEM,
    HK_INVALID,
};

fn alloc_hook() -> hook_p {
    let h: hook_p = super::alloc_zeroed();
    with(|c| c.hooks.insert(h as usize));
    h
}

fn free_hook(h: hook_p) {
    with(|c| {
        c.hooks.remove(&(h as usize));
        c.freed_hooks.insert(h as usize);
    });
    super::poison(h);
}

/// LIST_INSERT_HEAD(&node->nd_hooks, hook, hk_hooks).
unsafe fn list_insert_head(node: node_p, hook: hook_p) {
    // SAFETY: live node and hook, hook not on a list.
    unsafe {
        let head: *mut hook_p = &mut (*node).nd_hooks.lh_first;
        (*hook).hk_hooks.le_next = *head;
        if !(*head).is_null() {
            (**head).hk_hooks.le_prev = &mut (*hook).hk_hooks.le_next;
        }
        *head = hook;
        (*hook).hk_hooks.le_prev = head;
    }
}

/// LIST_REMOVE(hook, hk_hooks).
unsafe fn list_remove(hook: hook_p) {
    // SAFETY: live hook on its node's list.
    unsafe {
        let prev = (*hook).hk_hooks.le_prev;
        if prev.is_null() {
            crate::kern::violation(format!("hook {hook:p} is not on its node's hook list"));
            return;
        }
        let next = (*hook).hk_hooks.le_next;
        if !next.is_null() {
            (*next).hk_hooks.le_prev = prev;
        }
        *prev = next;
        (*hook).hk_hooks.le_next = std::ptr::null_mut();
        (*hook).hk_hooks.le_prev = std::ptr::null_mut();
    }
}

/// NG_HOOK_UNREF / `ng_unref_hook` (§4.6).
pub(crate) fn unref_hook(hook: hook_p) {
    if hook == dead_hook() || !hook_ok(hook, "ng_unref_hook") {
        return;
    }
    // SAFETY: live hook.
    let old = atomic_i32(unsafe { std::ptr::addr_of_mut!((*hook).hk_refs) })
        .fetch_sub(1, Ordering::AcqRel);
    if old <= 0 {
        // SAFETY: live hook.
        let name = show(field_str(unsafe { &(*hook).hk_name }));
        crate::kern::violation(format!(
            "ng_unref_hook: hook \"{name}\" reference count underflow"
        ));
        return;
    }
    if old == 1 {
        // SAFETY: live hook losing its last reference.
        unsafe {
            if !(*hook).hk_hooks.le_prev.is_null() {
                crate::kern::violation(format!(
                    "hook \"{}\" freed while still on its node's hook list",
                    show(field_str(&(*hook).hk_name))
                ));
            }
            let node = (*hook).hk_node;
            if !node.is_null() {
                unref_node(node);
            }
        }
        free_hook(hook);
    }
}

/// `ng_findhook` (§4.6): the type's findhook, or the default search that
/// skips invalid hooks.
///
/// # Safety
/// `node` is live; `name` is a C string.
pub(crate) unsafe fn findhook(node: node_p, name: *const c_char) -> hook_p {
    // SAFETY: guaranteed by the caller.
    unsafe {
        if let Some(f) = (*(*node).nd_type).findhook {
            return f(node, name);
        }
        let want = cbytes(name);
        let mut h = (*node).nd_hooks.lh_first;
        while !h.is_null() {
            if (*h).hk_flags & HK_INVALID == 0 && field_str(&(*h).hk_name) == want {
                return h;
            }
            h = (*h).hk_hooks.le_next;
        }
    }
    std::ptr::null_mut()
}

/// `ng_add_hook` (§4.1): returns the new hook with one reference for the caller.
unsafe fn add_hook(node: node_p, name: *const c_char) -> Result<hook_p, c_int> {
    if name.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: live node; C-string name.
    unsafe {
        if !findhook(node, name).is_null() {
            return Err(EEXIST);
        }
        if super::fail_malloc("netgraph_hook") {
            return Err(ENOMEM);
        }
        let hook = alloc_hook();
        (*hook).hk_refs = 1;
        (*hook).hk_flags = HK_INVALID;
        (*hook).hk_peer = dead_hook();
        (*hook).hk_node = node;
        node_ref(node);
        set_field(&mut (*hook).hk_name, cbytes(name));
        if let Some(nh) = (*(*node).nd_type).newhook {
            let e = nh(node, hook, name);
            if e != 0 {
                unref_hook(hook);
                return Err(e);
            }
        }
        list_insert_head(node, hook);
        (*node).nd_numhooks += 1;
        hook_ref(hook);
        Ok(hook)
    }
}

/// `ng_destroy_hook` (§4.4).
pub(crate) unsafe fn destroy_hook(hook: hook_p) {
    if hook == dead_hook() {
        console("ng_destroy_hook called on deadhook");
        return;
    }
    if !hook_ok(hook, "ng_destroy_hook") {
        return;
    }
    // SAFETY: live hook; its peer and node are live (hooks hold references).
    unsafe {
        (*hook).hk_flags |= HK_INVALID;
        let peer = (*hook).hk_peer;
        let node = (*hook).hk_node;
        if !peer.is_null() && peer != dead_hook() {
            (*peer).hk_peer = dead_hook();
            (*hook).hk_peer = dead_hook();
            if (*peer).hk_node != dead_node() {
                rmhook_self(peer);
            }
            unref_hook(peer);
            unref_hook(hook);
        }
        if node == dead_node() {
            return;
        }
        list_remove(hook);
        (*node).nd_numhooks -= 1;
        if let Some(d) = (*(*node).nd_type).disconnect {
            d(hook);
        }
        (*hook).hk_node = dead_node();
        unref_node(node);
        unref_hook(hook);
    }
}

/// `ng_bypass` (§4.6).
pub(crate) unsafe fn bypass(h1: hook_p, h2: hook_p) -> c_int {
    if !hook_ok(h1, "ng_bypass") || !hook_ok(h2, "ng_bypass") {
        return EINVAL;
    }
    // SAFETY: live hooks.
    unsafe {
        if (*h1).hk_node != (*h2).hk_node {
            return EINVAL;
        }
        if (*h1).hk_flags & HK_INVALID != 0 || (*h2).hk_flags & HK_INVALID != 0 {
            return EINVAL;
        }
        (*(*h1).hk_peer).hk_peer = (*h2).hk_peer;
        (*(*h2).hk_peer).hk_peer = (*h1).hk_peer;
        (*h1).hk_peer = dead_hook();
        (*h2).hk_peer = dead_hook();
        unref_hook(h1);
        unref_hook(h2);
        destroy_hook(h1);
        destroy_hook(h2);
    }
    0
}

/// The removal function sent to a hook's node (`ng_rmhook_part2`).
pub(crate) unsafe extern "C" fn rmhook_part2(
    _node: node_p,
    hook: hook_p,
    _a1: *mut c_void,
    _a2: c_int,
) {
    // SAFETY: the core holds a reference on the hook during the call.
    unsafe { destroy_hook(hook) };
}

/// `ng_rmhook_self` (§4.6).
pub(crate) unsafe fn rmhook_self(hook: hook_p) -> c_int {
    if !hook_ok(hook, "ng_rmhook_self") {
        return EINVAL;
    }
    // SAFETY: live hook.
    let node = unsafe { (*hook).hk_node };
    if node == dead_node() {
        return 0;
    }
    // SAFETY: live node and hook.
    unsafe { super::dispatch::send_fn1(node, hook, Some(rmhook_part2), std::ptr::null_mut(), 0, 0) }
}

/// NGM_MKPEER (§4.2). Runs in `node`'s writer context.
pub(crate) unsafe fn mkpeer(
    node: node_p,
    name: *const c_char,
    name2: *const c_char,
    ty: *const c_char,
) -> c_int {
    // SAFETY: live node; C strings from the (terminated) request.
    unsafe {
        let node2 = match make_node(ty) {
            Ok(n) => n,
            Err(e) => return e,
        };
        let hook1 = match add_hook(node, name) {
            Ok(h) => h,
            Err(e) => {
                rmnode(node2);
                return e;
            }
        };
        let hook2 = match add_hook(node2, name2) {
            Ok(h) => h,
            Err(e) => {
                rmnode(node2);
                destroy_hook(hook1);
                unref_hook(hook1);
                return e;
            }
        };
        (*hook1).hk_peer = hook2;
        (*hook2).hk_peer = hook1;
        hook_ref(hook1);
        hook_ref(hook2);
        let mut error = 0;
        if let Some(c) = (*(*(*hook1).hk_node).nd_type).connect {
            error = c(hook1);
        }
        if error == 0 {
            if let Some(c) = (*(*(*hook2).hk_node).nd_type).connect {
                error = c(hook2);
            }
        }
        if error != 0 {
            destroy_hook(hook2);
            rmnode(node2);
        } else {
            (*hook1).hk_flags &= !HK_INVALID;
            (*hook2).hk_flags &= !HK_INVALID;
        }
        unref_hook(hook1);
        unref_hook(hook2);
        error
    }
}

/// NGM_CONNECT first half (`ng_con_nodes`, §4.3). Runs in `node`'s writer context.
pub(crate) unsafe fn con_nodes(
    item: item_p,
    node: node_p,
    name: *const c_char,
    node2: node_p,
    name2: *const c_char,
) -> c_int {
    // SAFETY: live nodes (node2 referenced by the caller); C-string names.
    unsafe {
        if !findhook(node2, name2).is_null() {
            return EEXIST;
        }
        let hook = match add_hook(node, name) {
            Ok(h) => h,
            Err(e) => return e,
        };
        if super::fail_malloc("netgraph_hook") {
            destroy_hook(hook);
            unref_hook(hook);
            return ENOMEM;
        }
        let hook2 = alloc_hook();
        (*hook2).hk_refs = 1;
        (*hook2).hk_flags = HK_INVALID;
        (*hook2).hk_peer = hook;
        (*hook).hk_peer = hook2;
        hook_ref(hook);
        hook_ref(hook2);
        (*hook2).hk_node = dead_node();
        set_field(&mut (*hook2).hk_name, cbytes(name2));
        let error = super::dispatch::send_fn2(
            node2,
            hook2,
            item,
            Some(con_part2),
            std::ptr::null_mut(),
            0,
            0,
        );
        if error != 0 {
            console(&format!("failed in ng_con_nodes(): {error}"));
            destroy_hook(hook);
        }
        unref_hook(hook);
        unref_hook(hook2);
        error
    }
}

/// CONNECT part 2, in the peer's writer context (§4.3).
pub(crate) unsafe extern "C" fn con_part2(node: node_p, item: item_p, hook: hook_p) -> c_int {
    // SAFETY: called by the core with live node, item and (referenced) hook.
    unsafe {
        let mut error;
        'done: {
            if !findhook(node, (*hook).hk_name.as_ptr()).is_null() {
                destroy_hook(hook);
                console("failed in ng_con_part2()");
                error = EEXIST;
                break 'done;
            }
            if let Some(nh) = (*(*node).nd_type).newhook {
                error = nh(node, hook, (*hook).hk_name.as_ptr());
                if error != 0 {
                    destroy_hook(hook);
                    console("failed in ng_con_part2()");
                    break 'done;
                }
            }
            (*hook).hk_node = node;
            node_ref(node);
            list_insert_head(node, hook);
            (*node).nd_numhooks += 1;
            hook_ref(hook);
            if let Some(c) = (*(*(*hook).hk_node).nd_type).connect {
                error = c(hook);
                if error != 0 {
                    destroy_hook(hook);
                    console("failed in ng_con_part2(A)");
                    break 'done;
                }
            }
            let peer = (*hook).hk_peer;
            if peer == dead_hook() {
                console("failed in ng_con_part2(B)");
                destroy_hook(hook);
                error = ENOENT;
                break 'done;
            }
            error = super::dispatch::send_fn2(
                (*peer).hk_node,
                peer,
                item,
                Some(con_part3),
                std::ptr::null_mut(),
                0,
                fbsd_sys::NG_REUSE_ITEM as c_int,
            );
            if error != 0 {
                console("failed in ng_con_part2(C)");
                destroy_hook(hook);
                return error;
            }
            (*hook).hk_flags &= !HK_INVALID;
            return 0;
        }
        if item_ok(item, "ng_con_part2") {
            free_item_core(item);
        }
        error
    }
}

/// CONNECT part 3, back in the requesting node's writer context (§4.3).
pub(crate) unsafe extern "C" fn con_part3(_node: node_p, item: item_p, hook: hook_p) -> c_int {
    // SAFETY: called by the core with live item and (referenced) hook.
    unsafe {
        let mut error = 0;
        if (*hook).hk_node == dead_node() {
            error = ENOENT;
        } else if let Some(c) = (*(*(*hook).hk_node).nd_type).connect {
            error = c(hook);
            if error != 0 {
                destroy_hook(hook);
                console("failed in ng_con_part3()");
            }
        }
        if error == 0 {
            (*hook).hk_flags &= !HK_INVALID;
        }
        if item_ok(item, "ng_con_part3") {
            free_item_core(item);
        }
        error
    }
}

/// Hooks of a node, newest first (the list order).
///
/// # Safety
/// `node` must be live.
pub unsafe fn hooks_of(node: node_p) -> Vec<*mut ng_hook> {
    let mut v = Vec::new();
    // SAFETY: walking a live node's hook list.
    unsafe {
        let mut h = (*node).nd_hooks.lh_first;
        while !h.is_null() {
            v.push(h);
            h = (*h).hk_hooks.le_next;
        }
    }
    v
}
