//! Netgraph operations a node type performs on its own behalf: creating a
//! node directly, naming it, walking and finding its hooks, and sending a
//! control message along a path with an apply callback (how a socket node
//! learns when, and with which error, a message it sent was applied).

use core::ffi::{c_char, c_void, CStr};

use fbsd_sys::{ng_apply_info, ng_hook, ng_node, ng_type};

use super::errno::{Errno, KResult};
use super::netgraph::{Hook, Node};

extern "C" {
    fn ngsock_node_ref(node: *mut ng_node);
}

/// A node reference owned by the caller (outside any method call).
pub struct NodeRef {
    raw: core::ptr::NonNull<ng_node>,
}

// SAFETY: netgraph nodes are shared between threads; the reference count
// is atomic.
unsafe impl Send for NodeRef {}

impl NodeRef {
    /// `ng_make_node_common(type, &node)`: a new node holding one reference,
    /// which this value owns.
    ///
    /// # Safety
    /// `ty` must be a node type registered with netgraph for as long as the
    /// node exists (our own type record).
    pub unsafe fn make(ty: *mut ng_type) -> KResult<NodeRef> {
        let mut n: *mut ng_node = core::ptr::null_mut();
        // SAFETY: guaranteed by the caller; `n` is written on success.
        Errno::check(unsafe { fbsd_sys::ng_make_node_common(ty, &mut n) })?;
        core::ptr::NonNull::new(n)
            .map(|raw| NodeRef { raw })
            .ok_or(Errno::ENOMEM)
    }

    /// Borrows the node.
    pub fn node(&self) -> Node<'_> {
        // SAFETY: this value holds a reference on the node.
        unsafe { Node::from_nonnull(self.raw) }
    }

    /// Takes another reference (`NG_NODE_REF`).
    pub fn clone_ref(node: Node<'_>) -> NodeRef {
        // SAFETY: the borrowed node is referenced; NG_NODE_REF is an atomic add.
        unsafe { ngsock_node_ref(node.as_ptr()) };
        NodeRef {
            raw: node.as_nonnull(),
        }
    }

    /// Gives the reference up without dropping it.
    pub fn leak(self) -> *mut ng_node {
        let p = self.raw.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Retakes a reference given up with [`NodeRef::leak`].
    ///
    /// # Safety
    /// `p` must carry a node reference that the caller owns.
    pub unsafe fn from_raw(p: *mut ng_node) -> Option<NodeRef> {
        core::ptr::NonNull::new(p).map(|raw| NodeRef { raw })
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        // SAFETY: this value owns one reference (NG_NODE_UNREF).
        unsafe { fbsd_sys::ng_unref_node(self.raw.as_ptr()) }
    }
}

/// Assigns a name to a node (`ng_name_node`).
pub fn name_node(node: Node<'_>, name: &CStr) -> KResult<()> {
    // SAFETY: the node is referenced; the name is copied.
    Errno::check(unsafe { fbsd_sys::ng_name_node(node.as_ptr(), name.as_ptr()) })
}

/// The node's name, empty if unnamed.
pub fn node_name<'a>(node: Node<'a>) -> &'a [u8] {
    // SAFETY: nd_name is a NUL-terminated array inside the referenced node.
    let name = unsafe { &(*node.as_ptr()).nd_name };
    super::sockproto::cstr_bytes(name)
}

/// The node's first hook (the head of its hook list), if any.
pub fn first_hook<'a>(node: Node<'a>) -> Option<Hook<'a>> {
    // SAFETY: the hook list is stable while a method of the node runs (hooks
    // are added and removed only under the node's writer lock).
    unsafe { Hook::from_raw((*node.as_ptr()).nd_hooks.lh_first) }
}

/// The next hook after `h` on its node's list.
pub fn next_hook<'a>(h: Hook<'a>) -> Option<Hook<'a>> {
    // SAFETY: as for `first_hook`.
    unsafe { Hook::from_raw((*h.as_ptr()).hk_hooks.le_next) }
}

/// The state an originator keeps while a message it sent is applied.
#[repr(C)]
pub struct Apply {
    info: ng_apply_info,
}

impl Apply {
    /// A record that calls `f(ctx, error)` when the operation completes.
    pub fn new(f: unsafe extern "C" fn(*mut c_void, i32), ctx: *mut c_void) -> Self {
        Apply {
            info: ng_apply_info {
                apply: Some(f),
                context: ctx,
                refs: 0,
                error: 0,
            },
        }
    }
}

/// Sends a control message from `here` to `path` (relative to `here`) with
/// an apply record: `ng_package_msg` + `ng_address_path` + `ng_snd_item`.
/// The message is consumed on every path. When this returns `Ok`, the
/// apply callback fires once the item has been fully applied (possibly
/// already, possibly later from another thread).
///
/// # Safety
/// `apply` must stay valid (not move, not be dropped) until its callback
/// has run; `msg` must be an `M_NETGRAPH_MSG` message the caller owns.
pub unsafe fn send_msg_path(
    here: Node<'_>,
    msg: super::netgraph::Msg,
    path: &CStr,
    apply: *mut Apply,
) -> KResult<()> {
    #[allow(clippy::cast_possible_wrap)]
    const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;
    // SAFETY: ng_package_msg consumes the message (freeing it on failure);
    // ng_address_path frees the item on error; ng_snd_item consumes it.
    unsafe {
        let item = fbsd_sys::ng_package_msg(msg.into_raw_msg(), NG_WAITOK);
        if item.is_null() {
            return Err(Errno::ENOMEM);
        }
        let err = fbsd_sys::ng_address_path(here.as_ptr(), item, path.as_ptr().cast_mut(), 0);
        if err != 0 {
            return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
        }
        (*item).apply = apply.cast::<ng_apply_info>();
        let _ = fbsd_sys::ng_snd_item(item, 0);
    }
    Ok(())
}

/// Shuts `node` down from a context that may sleep (a socket system call,
/// no lock held), with allocations that cannot fail: an `NGM_SHUTDOWN`
/// message from the node to itself, allocated with `M_WAITOK` and packaged
/// with `NG_WAITOK`, applied at once when the node is idle.
///
/// `ng_rmnode_self` instead queues a function item allocated without
/// sleeping and marks the node invalid first, so when that allocation
/// fails the node can never be reached again and is never freed. A node
/// that is already invalid (an earlier `ng_rmnode_self` whose item could
/// not be allocated, or a removal in progress) only accepts `ng_rmnode`, so
/// it gets `ng_rmnode_self` again.
pub fn shutdown_sleeping(node: Node<'_>) -> KResult<()> {
    #[allow(clippy::cast_possible_wrap)]
    const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;
    #[allow(clippy::cast_possible_wrap)]
    const WAITOK_ZERO: i32 = (fbsd_sys::M_WAITOK | fbsd_sys::M_ZERO) as i32;
    if !node.is_valid() {
        return node.rmnode_self();
    }
    let size = core::mem::size_of::<fbsd_sys::ng_mesg>();
    // SAFETY: malloc(9) with M_WAITOK sleeps until it succeeds (the caller
    // may sleep); M_NETGRAPH_MSG is netgraph's exported message type.
    let p = unsafe {
        fbsd_sys::malloc(
            size,
            (&raw mut fbsd_sys::M_NETGRAPH_MSG).cast(),
            WAITOK_ZERO,
        )
    };
    // SAFETY: a fresh, zeroed M_NETGRAPH_MSG allocation of a whole header
    // (arglen 0), owned by the new value.
    let Some(mut msg) = (unsafe { super::netgraph::Msg::from_raw(p.cast()) }) else {
        return node.rmnode_self();
    };
    {
        let h = msg.header_mut();
        h.version = fbsd_sys::NG_VERSION as u8;
        h.typecookie = fbsd_sys::NGM_GENERIC_COOKIE;
        h.cmd = fbsd_sys::NGM_SHUTDOWN;
    }
    // SAFETY: ng_package_msg consumes the message; with NG_WAITOK it sleeps
    // for an item. ng_address_path frees the item on error and otherwise
    // references the node ("." is the node itself); ng_snd_item consumes
    // the item. Return address 0: NGM_SHUTDOWN has no reply.
    unsafe {
        let item = fbsd_sys::ng_package_msg(msg.into_raw_msg(), NG_WAITOK);
        if item.is_null() {
            return node.rmnode_self();
        }
        let err = fbsd_sys::ng_address_path(node.as_ptr(), item, c".".as_ptr().cast_mut(), 0);
        if err != 0 {
            return node.rmnode_self();
        }
        Errno::check(fbsd_sys::ng_snd_item(item, 0))
    }
}

/// Sends an mbuf chain out of `hook` from a context that may sleep (a
/// socket system call, no lock held): the data item is allocated with
/// `NG_WAITOK`, so at the `net.graph.maxdata` limit the sender waits for an
/// item instead of failing, as FreeBSD's data-socket send does. The chain is
/// consumed on every path; the result is what delivery returned.
#[cfg(feature = "socket")]
pub fn send_data_sleeping(hook: Hook<'_>, m: super::mbuf::Mbuf) -> KResult<()> {
    #[allow(clippy::cast_possible_wrap)]
    const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;
    let item = super::netgraph::package_data(m, NG_WAITOK)?;
    // The item is allocated (possibly sleeping) first; the data then
    // travels inside the network epoch, as FreeBSD's ngd_send does.
    super::epoch::in_net(|| super::netgraph::send_packaged(hook, item))
}

/// Resolves an absolute path to a node (`ng_name2noderef` with no
/// starting node): returns a referenced node. `.` ("this node") names no
/// node here: EINVAL, before netgraph sees it (FreeBSD's would dereference
/// the missing starting node).
pub fn find_node(path: &CStr) -> KResult<NodeRef> {
    if path.to_bytes() == b"." {
        return Err(Errno::EINVAL);
    }
    // SAFETY: with a NULL starting node only absolute paths resolve; the
    // result carries a reference the caller owns.
    let n = unsafe { fbsd_sys::ng_name2noderef(core::ptr::null_mut(), path.as_ptr()) };
    // SAFETY: as above.
    unsafe { NodeRef::from_raw(n) }.ok_or(Errno::ENOENT)
}

/// The type record of a node.
pub fn node_type(node: Node<'_>) -> *const ng_type {
    // SAFETY: nd_type is set at creation and never changes while referenced.
    unsafe { (*node.as_ptr()).nd_type }
}

/// Compares a hook's name with `name` (bytes without NUL).
pub fn hook_name_is(h: Hook<'_>, name: &[u8]) -> bool {
    h.name().to_bytes() == name
}

/// Raw hook pointer accessor used by hash tables.
pub fn hook_ptr(h: Hook<'_>) -> *mut ng_hook {
    h.as_ptr()
}

/// Converts a byte slice with a terminating NUL into a `CStr`, if it has one.
pub fn as_cstr(b: &[u8]) -> Option<&CStr> {
    CStr::from_bytes_until_nul(b).ok()
}

/// Reads a C string pointer handed to a method into bytes.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string valid for `'a`.
pub unsafe fn cstr_arg<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// A hook reference owned by the caller (`NG_HOOK_REF` / `NG_HOOK_UNREF`).
pub struct HookRef {
    raw: core::ptr::NonNull<ng_hook>,
}

// SAFETY: hook reference counts are atomic; hooks are shared between threads.
unsafe impl Send for HookRef {}

impl HookRef {
    /// Takes a reference on a borrowed hook.
    pub fn of(h: Hook<'_>) -> HookRef {
        // SAFETY: a borrowed hook is valid for the borrow.
        match unsafe { Self::take(h.as_ptr()) } {
            Some(r) => r,
            // A Hook is never NULL.
            None => HookRef {
                raw: h.as_nonnull(),
            },
        }
    }

    /// Takes a reference on `h`.
    ///
    /// # Safety
    /// `h` must be a hook that cannot be freed during this call (its node's
    /// hook list is protected by a lock the caller holds, or the caller is
    /// inside a method of its node).
    pub unsafe fn take(h: *mut ng_hook) -> Option<HookRef> {
        extern "C" {
            fn ngsock_hook_ref(hook: *mut ng_hook);
        }
        let raw = core::ptr::NonNull::new(h)?;
        // SAFETY: guaranteed by the caller; NG_HOOK_REF is an atomic add.
        unsafe { ngsock_hook_ref(raw.as_ptr()) };
        Some(HookRef { raw })
    }

    /// Borrows the hook.
    pub fn hook(&self) -> Hook<'_> {
        // SAFETY: this value holds a reference on the hook.
        unsafe { Hook::from_nonnull(self.raw) }
    }
}

impl Drop for HookRef {
    fn drop(&mut self) {
        // SAFETY: this value owns one hook reference.
        unsafe { fbsd_sys::ng_unref_hook(self.raw.as_ptr()) }
    }
}

/// Resolves an absolute netgraph path (`name:`, `[id]:`, `name:hook`...)
/// to a referenced node, as a data item addressed by that path would be.
///
/// There is no starting node, so an address relative to it fails with
/// EINVAL: netgraph checks that itself for addresses without a node part,
/// and this function for the node part `.` (`.:`, `.:hook`...), which
/// FreeBSD's netgraph would resolve by dereferencing the missing node.
pub fn resolve_path(path: &CStr) -> KResult<NodeRef> {
    #[allow(clippy::cast_possible_wrap)]
    const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;
    if crate::pure::ngpath::names_here(path.to_bytes()) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: a data item with no mbuf is only used to resolve the path:
    // ng_address_path frees it on error; on success its destination node is
    // referenced by the item, we take our own reference, then free the item.
    unsafe {
        let item = fbsd_sys::ng_package_data(core::ptr::null_mut(), NG_WAITOK);
        if item.is_null() {
            return Err(Errno::ENOMEM);
        }
        let err =
            fbsd_sys::ng_address_path(core::ptr::null_mut(), item, path.as_ptr().cast_mut(), 0);
        if err != 0 {
            return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
        }
        let dest = (*item).el_dest;
        let r = Node::from_raw(dest).map(NodeRef::clone_ref);
        fbsd_sys::ng_free_item(item);
        r.ok_or(Errno::ENOENT)
    }
}

/// Where the result of a message sent with [`send_msg_path_sync`] is
/// delivered: netgraph's apply callback stores it and wakes the sender.
pub struct Completion {
    state: super::sync::Mutex<i32>,
}

const PENDING: i32 = -1;

impl Completion {
    /// A completion; initialise it in place with [`Completion::init`].
    pub const fn new() -> Self {
        Completion {
            state: super::sync::Mutex::new(0),
        }
    }

    /// Initialises its mutex in place.
    pub fn init(self: core::pin::Pin<&Self>, name: &'static CStr) {
        // SAFETY: structural pinning: `state` is never moved out of `self`.
        let st = unsafe { self.map_unchecked(|c| &c.state) };
        st.init(name);
    }

    /// The mutex inside (to initialise it in place).
    pub fn mutex(&self) -> &super::sync::Mutex<i32> {
        &self.state
    }

    fn chan(&self) -> *const c_void {
        (self as *const Self).cast::<c_void>()
    }

    unsafe extern "C" fn applied(ctx: *mut c_void, error: i32) {
        // SAFETY: ctx is the Completion the sender is blocked on; it stays
        // valid until the sender has seen the result, which is set below.
        let c = unsafe { &*ctx.cast::<Completion>() };
        if let Ok(mut g) = c.state.lock() {
            *g = error;
            super::mutex::wakeup(c.chan());
        }
    }
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends a control message from `here` to `path` and sleeps until netgraph
/// has applied it (and any reply re-using its item); returns the error the
/// application recorded. The message is consumed on every path. Must be
/// called where sleeping is allowed (a socket system call).
///
/// At most one such send may be outstanding per `Completion` (ng_socket's
/// control sends are serialised by the socket layer's send lock).
pub fn send_msg_path_sync(
    here: Node<'_>,
    msg: super::netgraph::Msg,
    path: &CStr,
    done: core::pin::Pin<&Completion>,
) -> KResult<()> {
    let done = done.get_ref();
    *done.state.lock()? = PENDING;
    let mut apply = Apply::new(
        Completion::applied,
        (done as *const Completion).cast_mut().cast::<c_void>(),
    );
    // SAFETY: `apply` lives on this stack frame until the callback has run:
    // this function does not return before the state left PENDING, which
    // only the callback does.
    unsafe { send_msg_path(here, msg, path, &mut apply)? };
    let mut g = done.state.lock()?;
    while *g == PENDING {
        g.sleep(done.chan(), c"ngsock");
    }
    let err = *g;
    drop(g);
    // The apply record must outlive the wait above.
    let _ = &mut apply;
    Errno::check(err)
}
