//! Netgraph nodes, hooks, items and messages.
//!
//! Ownership rules of netgraph(4), encoded in types:
//! * [`Item`] owns a `struct ng_item`; dropping it calls `ng_free_item`,
//!   which also frees a payload still attached. Taking the payload out
//!   ([`Item::take_mbuf`], [`Item::take_msg`]) moves its ownership to the caller.
//! * [`Msg`] owns a control message (`M_NETGRAPH_MSG` memory); dropping it
//!   frees it. Sending it consumes it, on success and on error alike.
//! * [`Node`] and [`Hook`] are references borrowed for the duration of a
//!   method call: netgraph holds references on both while a method runs.

use core::ffi::{c_void, CStr};
use core::marker::PhantomData;
use core::ptr::NonNull;

use fbsd_sys::{ng_hook, ng_item, ng_mesg, ng_mesg_ng_msghdr, ng_node};

use super::errno::{Errno, KResult};
use super::mbuf::Mbuf;

/// Item flags (`el_flags`): the type bits and their values (netgraph.h).
const NGQF_TYPE: u64 = 0x03;
const NGQF_MESG: u64 = 0x00;
const NGQF_DATA: u64 = 0x01;

/// A node, borrowed for the duration of a method call.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    raw: NonNull<ng_node>,
    _life: PhantomData<&'a ng_node>,
}

impl<'a> Node<'a> {
    /// Wraps a node pointer handed to a method.
    ///
    /// # Safety
    /// `raw` must be a node that netgraph keeps referenced for `'a`.
    pub unsafe fn from_raw(raw: *mut ng_node) -> Option<Node<'a>> {
        NonNull::new(raw).map(|raw| Node {
            raw,
            _life: PhantomData,
        })
    }

    /// Wraps a node pointer known to be non-NULL.
    ///
    /// # Safety
    /// As for [`Node::from_raw`].
    pub unsafe fn from_nonnull(raw: NonNull<ng_node>) -> Node<'a> {
        Node {
            raw,
            _life: PhantomData,
        }
    }

    /// Raw pointer, for kernel calls.
    pub fn as_ptr(self) -> *mut ng_node {
        self.raw.as_ptr()
    }

    /// The node's ID (`NG_NODE_ID`).
    pub fn id(self) -> u32 {
        // SAFETY: the node is referenced for 'a; nd_ID never changes.
        unsafe { (*self.raw.as_ptr()).nd_ID }
    }

    /// The non-NULL pointer.
    pub fn as_nonnull(self) -> NonNull<ng_node> {
        self.raw
    }

    /// Number of hooks (`NG_NODE_NUMHOOKS`).
    pub fn num_hooks(self) -> i32 {
        // SAFETY: the node is referenced for 'a.
        unsafe { (*self.raw.as_ptr()).nd_numhooks }
    }

    /// `NG_NODE_IS_VALID`.
    pub fn is_valid(self) -> bool {
        #[allow(clippy::cast_possible_wrap)]
        const NGF_INVALID: i32 = fbsd_sys::NGF_INVALID as i32;
        // SAFETY: the node is referenced for 'a.
        unsafe { (*self.raw.as_ptr()).nd_flags & NGF_INVALID == 0 }
    }

    /// The node's private pointer (`NG_NODE_PRIVATE`).
    pub fn private_raw(self) -> *mut c_void {
        // SAFETY: the node is referenced for 'a.
        unsafe { (*self.raw.as_ptr()).nd_private }
    }

    /// Sets the node's private pointer (`NG_NODE_SET_PRIVATE`).
    pub fn set_private_raw(self, p: *mut c_void) {
        // SAFETY: the node is referenced for 'a; node methods run under the
        // node's gate, which serialises writers of nd_private.
        unsafe { (*self.raw.as_ptr()).nd_private = p }
    }

    /// Drops the reference the node was created with (`NG_NODE_UNREF`).
    ///
    /// # Safety
    /// Called once, from the node's shutdown method, for the creation reference.
    pub unsafe fn unref(self) {
        // SAFETY: guaranteed by the caller.
        unsafe { fbsd_sys::ng_unref_node(self.raw.as_ptr()) }
    }

    /// `NG_NODE_REVIVE`: clears the node's invalid flag. Used after a failed
    /// [`Node::rmnode_self`] (which marks the node invalid before it tries
    /// to queue the removal), so that a node whose removal could not be
    /// queued stays reachable instead of lingering unreachable forever.
    pub fn revive(self) {
        #[allow(clippy::cast_possible_wrap)]
        const NGF_INVALID: i32 = fbsd_sys::NGF_INVALID as i32;
        // SAFETY: the node is referenced for 'a; its flags are changed by
        // the node's own writers and by the core's removal, which has not
        // been queued when this is used.
        unsafe { (*self.raw.as_ptr()).nd_flags &= !NGF_INVALID }
    }

    /// Asks netgraph to shut this node down (`ng_rmnode_self`).
    pub fn rmnode_self(self) -> KResult<()> {
        // SAFETY: the node is referenced for 'a.
        Errno::check(unsafe { fbsd_sys::ng_rmnode_self(self.raw.as_ptr()) })
    }
}

/// A hook, borrowed for the duration of a method call.
#[derive(Clone, Copy)]
pub struct Hook<'a> {
    raw: NonNull<ng_hook>,
    _life: PhantomData<&'a ng_hook>,
}

impl<'a> Hook<'a> {
    /// Wraps a hook pointer handed to a method.
    ///
    /// # Safety
    /// `raw` must be a hook that netgraph keeps referenced for `'a`.
    pub unsafe fn from_raw(raw: *mut ng_hook) -> Option<Hook<'a>> {
        NonNull::new(raw).map(|raw| Hook {
            raw,
            _life: PhantomData,
        })
    }

    /// Wraps a hook pointer known to be non-NULL.
    ///
    /// # Safety
    /// As for [`Hook::from_raw`].
    pub unsafe fn from_nonnull(raw: NonNull<ng_hook>) -> Hook<'a> {
        Hook {
            raw,
            _life: PhantomData,
        }
    }

    /// The non-NULL pointer.
    pub fn as_nonnull(self) -> NonNull<ng_hook> {
        self.raw
    }

    /// Raw pointer, for kernel calls.
    pub fn as_ptr(self) -> *mut ng_hook {
        self.raw.as_ptr()
    }

    /// The node the hook belongs to (`NG_HOOK_NODE`).
    pub fn node(self) -> Option<Node<'a>> {
        // SAFETY: the hook is referenced for 'a and holds its node.
        unsafe { Node::from_raw((*self.raw.as_ptr()).hk_node) }
    }

    /// Sets a hook flag bit (`NG_HOOK_FORCE_QUEUE` and friends).
    fn set_flag(self, flag: u32) {
        #[allow(clippy::cast_possible_wrap)]
        let f = flag as i32;
        // SAFETY: the hook is referenced for 'a; flags are set from the
        // owning node's methods, which netgraph serialises.
        unsafe { (*self.raw.as_ptr()).hk_flags |= f }
    }

    /// Forces queued delivery of everything sent to this hook.
    pub fn force_queue(self) {
        self.set_flag(fbsd_sys::HK_QUEUE);
    }

    /// Private pointer of the hook (`NG_HOOK_PRIVATE`).
    pub fn private_raw(self) -> *mut c_void {
        // SAFETY: the hook is referenced for 'a.
        unsafe { (*self.raw.as_ptr()).hk_private }
    }

    /// Sets the hook's private pointer (`NG_HOOK_SET_PRIVATE`).
    pub fn set_private_raw(self, p: *mut c_void) {
        // SAFETY: the hook is referenced for 'a.
        unsafe { (*self.raw.as_ptr()).hk_private = p }
    }

    /// The hook's name.
    pub fn name(&self) -> &CStr {
        // SAFETY: hk_name is a NUL-terminated array inside the referenced hook.
        unsafe { CStr::from_ptr((*self.raw.as_ptr()).hk_name.as_ptr()) }
    }
}

/// An owned netgraph item.
pub struct Item {
    raw: NonNull<ng_item>,
}

impl Item {
    /// Takes ownership of an item handed to a method.
    ///
    /// # Safety
    /// The caller must own `raw` (netgraph hands ownership to rcvmsg/rcvdata).
    pub unsafe fn from_raw(raw: *mut ng_item) -> Option<Item> {
        NonNull::new(raw).map(|raw| Item { raw })
    }

    /// Gives up ownership to a kernel function that consumes the item.
    fn into_raw(self) -> *mut ng_item {
        let p = self.raw.as_ptr();
        core::mem::forget(self);
        p
    }

    fn kind(&self) -> u64 {
        // SAFETY: the item is owned.
        unsafe { (*self.raw.as_ptr()).el_flags & NGQF_TYPE }
    }

    /// Moves the mbuf chain out of a data item (`NGI_GET_M`).
    pub fn take_mbuf(&mut self) -> Option<Mbuf> {
        if self.kind() != NGQF_DATA {
            return None;
        }
        // SAFETY: a data item's body is `da_m`; the item is owned, and after
        // the move the item no longer refers to the chain.
        unsafe {
            let body = &mut (*self.raw.as_ptr()).body;
            let m = body.da_m;
            body.da_m = core::ptr::null_mut();
            Mbuf::from_raw(m)
        }
    }

    /// Moves the message out of a message item (`NGI_GET_MSG`).
    pub fn take_msg(&mut self) -> Option<Msg> {
        if self.kind() != NGQF_MESG {
            return None;
        }
        // SAFETY: a message item's body is `msg`; the item is owned.
        unsafe {
            let body = &mut (*self.raw.as_ptr()).body;
            let m = body.msg.msg_msg;
            body.msg.msg_msg = core::ptr::null_mut();
            Msg::from_raw(m)
        }
    }

    /// Return address of a message item (`NGI_RETADDR`).
    pub fn retaddr(&self) -> u32 {
        if self.kind() != NGQF_MESG {
            return 0;
        }
        // SAFETY: a message item's body is `msg`; the item is owned.
        unsafe { (*self.raw.as_ptr()).body.msg.msg_retaddr }
    }

    /// `NG_RESPOND_MSG`: sends `resp` (if any) back to the item's return
    /// address, reusing the item (queued delivery); without a response the
    /// item is simply freed. The request message must have been taken out.
    pub fn respond(self, here: Node<'_>, resp: Option<Msg>) -> KResult<()> {
        let Some(resp) = resp else {
            drop(self);
            return Ok(());
        };
        let dest = self.retaddr();
        let raw = self.into_raw();
        // SAFETY: `raw` is a message item we own whose message was taken out;
        // storing `resp` transfers its ownership to the item, and
        // ng_address_ID / ng_snd_item consume the item on every path.
        unsafe {
            (*raw).body.msg.msg_retaddr = 0;
            (*raw).body.msg.msg_msg = resp.into_raw();
            let err = fbsd_sys::ng_address_ID(here.as_ptr(), raw, dest, 0);
            if err != 0 {
                return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
            }
            #[allow(clippy::cast_possible_wrap)]
            Errno::check(fbsd_sys::ng_snd_item(raw, fbsd_sys::NG_QUEUE as i32))
        }
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        // SAFETY: the item is owned and freed exactly once here.
        unsafe { fbsd_sys::ng_free_item(self.raw.as_ptr()) }
    }
}

/// Sends an mbuf chain out of `hook` (`NG_SEND_DATA_ONLY`). The chain is
/// consumed on success and on every error.
pub fn send_data(hook: Hook<'_>, m: Mbuf) -> KResult<()> {
    send_data_flags(hook, m, 0)
}

/// `NG_SEND_DATA_FLAGS`: as [`send_data`], with the item allocated with
/// `flags` (`NG_WAITOK` only where the caller may sleep).
/// A data item packaged from an mbuf chain, not yet sent (a raw item the
/// caller must hand to [`send_packaged`]).
#[cfg(feature = "socket")]
pub(crate) struct DataItem(*mut fbsd_sys::ng_item);

/// `ng_package_data(m, flags)`: consumes the chain (freed on failure).
#[cfg(feature = "socket")]
pub(crate) fn package_data(m: Mbuf, flags: i32) -> KResult<DataItem> {
    // SAFETY: ng_package_data consumes the chain, freeing it on failure.
    let item = unsafe { fbsd_sys::ng_package_data(m.into_raw(), flags) };
    if item.is_null() {
        return Err(Errno::ENOMEM);
    }
    Ok(DataItem(item))
}

/// Forwards a packaged data item out of `hook` (`NG_FWD_ITEM_HOOK`): the
/// item is consumed on every path.
#[cfg(feature = "socket")]
pub(crate) fn send_packaged(hook: Hook<'_>, item: DataItem) -> KResult<()> {
    // SAFETY: ng_address_hook frees the item on error; ng_snd_item consumes it.
    unsafe {
        let err = fbsd_sys::ng_address_hook(core::ptr::null_mut(), item.0, hook.as_ptr(), 0);
        if err != 0 {
            return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
        }
        Errno::check(fbsd_sys::ng_snd_item(item.0, 0))
    }
}

pub(crate) fn send_data_flags(hook: Hook<'_>, m: Mbuf, flags: i32) -> KResult<()> {
    // SAFETY: ng_package_data consumes the chain (freeing it on failure);
    // ng_address_hook frees the item on error; ng_snd_item consumes it.
    unsafe {
        let item = fbsd_sys::ng_package_data(m.into_raw(), flags);
        if item.is_null() {
            return Err(Errno::ENOMEM);
        }
        let err = fbsd_sys::ng_address_hook(core::ptr::null_mut(), item, hook.as_ptr(), 0);
        if err != 0 {
            return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
        }
        Errno::check(fbsd_sys::ng_snd_item(item, 0))
    }
}

/// An owned control message (`struct ng_mesg` plus `arglen` bytes).
pub struct Msg {
    raw: NonNull<ng_mesg>,
}

const HDR: usize = core::mem::size_of::<ng_mesg_ng_msghdr>();

impl Msg {
    /// Takes ownership of a message.
    ///
    /// # Safety
    /// The caller must own `raw`, an `M_NETGRAPH_MSG` allocation of at least
    /// the header plus `arglen` bytes.
    pub unsafe fn from_raw(raw: *mut ng_mesg) -> Option<Msg> {
        NonNull::new(raw).map(|raw| Msg { raw })
    }

    /// Raw pointer, still owned by `self`.
    pub(crate) fn as_raw_msg(&self) -> *mut ng_mesg {
        self.raw.as_ptr()
    }

    /// Gives up ownership to a kernel function that consumes the message.
    pub fn into_raw_msg(self) -> *mut ng_mesg {
        self.into_raw()
    }

    fn into_raw(self) -> *mut ng_mesg {
        let p = self.raw.as_ptr();
        core::mem::forget(self);
        p
    }

    fn alloc(arglen: u32) -> KResult<Msg> {
        let size = HDR.checked_add(arglen as usize).ok_or(Errno::ENOMEM)?;
        #[allow(clippy::cast_possible_wrap)]
        let flags = (fbsd_sys::M_NOWAIT | fbsd_sys::M_ZERO) as i32;
        // SAFETY: M_NETGRAPH_MSG is netgraph's exported malloc type; M_NOWAIT
        // returns NULL on failure.
        let p =
            unsafe { fbsd_sys::malloc(size, (&raw mut fbsd_sys::M_NETGRAPH_MSG).cast(), flags) };
        let raw = NonNull::new(p.cast::<ng_mesg>()).ok_or(Errno::ENOMEM)?;
        Ok(Msg { raw })
    }

    /// `NG_MKMESSAGE`: a new message with a zeroed argument of `arglen` bytes;
    /// `cmdstr` is the command string the header carries.
    pub fn new(cookie: u32, cmd: u32, arglen: u32, cmdstr: &CStr) -> KResult<Msg> {
        let mut m = Msg::alloc(arglen)?;
        let h = m.header_mut();
        h.version = fbsd_sys::NG_VERSION as u8;
        h.typecookie = cookie;
        h.cmd = cmd;
        h.arglen = arglen;
        let src = cmdstr.to_bytes();
        let n = src.len().min(h.cmdstr.len().saturating_sub(1));
        for (d, s) in h.cmdstr.iter_mut().zip(src.iter().take(n)) {
            *d = *s;
        }
        Ok(m)
    }

    /// `NG_MKRESPONSE`: a reply to `req` with a zeroed argument of `arglen` bytes.
    pub fn new_response(req: &Msg, arglen: u32) -> KResult<Msg> {
        let mut m = Msg::alloc(arglen)?;
        let rh = *req.header();
        let h = m.header_mut();
        h.version = fbsd_sys::NG_VERSION as u8;
        h.arglen = arglen;
        h.token = rh.token;
        h.typecookie = rh.typecookie;
        h.cmd = rh.cmd;
        h.cmdstr = rh.cmdstr;
        h.flags |= fbsd_sys::NGF_RESP;
        Ok(m)
    }

    /// The message header.
    pub fn header(&self) -> &ng_mesg_ng_msghdr {
        // SAFETY: the message is owned and at least a header long.
        unsafe { &(*self.raw.as_ptr()).header }
    }

    /// The message header, writable.
    pub fn header_mut(&mut self) -> &mut ng_mesg_ng_msghdr {
        // SAFETY: the message is owned and at least a header long.
        unsafe { &mut (*self.raw.as_ptr()).header }
    }

    /// The argument bytes (`arglen` of them).
    pub fn data(&self) -> &[u8] {
        let len = self.header().arglen as usize;
        // SAFETY: an owned message has `arglen` argument bytes after its header.
        unsafe { core::slice::from_raw_parts((*self.raw.as_ptr()).data.as_ptr().cast::<u8>(), len) }
    }

    /// The argument bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = self.header().arglen as usize;
        // SAFETY: as in `data`, and `&mut self` makes access unique.
        unsafe {
            core::slice::from_raw_parts_mut(
                (*self.raw.as_ptr()).data.as_mut_ptr().cast::<u8>(),
                len,
            )
        }
    }

    /// Shrinks the argument length (for replies filled to less than allocated).
    pub fn truncate(&mut self, arglen: u32) {
        let h = self.header_mut();
        if arglen < h.arglen {
            h.arglen = arglen;
        }
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        // SAFETY: the message is owned and was allocated with M_NETGRAPH_MSG.
        unsafe {
            fbsd_sys::free(
                self.raw.as_ptr().cast::<c_void>(),
                (&raw mut fbsd_sys::M_NETGRAPH_MSG).cast(),
            )
        }
    }
}

/// `NG_SEND_MSG_ID(error, here, msg, dest, 0)`: sends `msg` from `here` to
/// the node with ID `dest` (return address: `here`'s ID). The message is
/// consumed on success and on every error.
pub fn send_msg_id(here: Node<'_>, msg: Msg, dest: u32) -> KResult<()> {
    // SAFETY: ng_package_msg consumes the message (freeing it on failure);
    // ng_address_ID frees the item on error; ng_snd_item consumes it.
    unsafe {
        let item = fbsd_sys::ng_package_msg(msg.into_raw(), fbsd_sys::NG_NOFLAGS as i32);
        if item.is_null() {
            return Err(Errno::ENOMEM);
        }
        let err = fbsd_sys::ng_address_ID(here.as_ptr(), item, dest, 0);
        if err != 0 {
            return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
        }
        Errno::check(fbsd_sys::ng_snd_item(item, 0))
    }
}

/// A function netgraph runs as a writer of a node (`ng_item_fn`).
pub type NodeFn = unsafe extern "C" fn(
    node: fbsd_sys::node_p,
    hook: fbsd_sys::hook_p,
    arg1: *mut c_void,
    arg2: core::ffi::c_int,
);

/// `ng_send_fn1(node, NULL, f, NULL, arg2, flags)`: asks netgraph to run `f`
/// as a writer of `node` (now if idle and `NG_QUEUE` is not in `flags`,
/// otherwise from a queue thread). Without `NG_WAITOK` this never sleeps and
/// may be called from a socket upcall. `ENOMEM` when no item is available;
/// `f` then never runs.
pub fn send_fn(node: Node<'_>, f: NodeFn, arg2: i32, flags: i32) -> KResult<()> {
    // SAFETY: the node is referenced for the borrow; netgraph takes its own
    // reference for the item; arg1 is NULL, so nothing is owned by the item.
    Errno::check(unsafe {
        fbsd_sys::ng_send_fn1(
            node.as_ptr(),
            core::ptr::null_mut(),
            Some(f),
            core::ptr::null_mut(),
            arg2,
            flags,
        )
    })
}
