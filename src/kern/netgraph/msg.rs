//! Control messages: owned [`Msg`], its header fields, its wire form, and
//! sending it (to a node ID, or along a path waiting for it to be applied).

use core::ffi::{c_void, CStr};
use core::pin::Pin;
use core::ptr::NonNull;

use fbsd_sys::{ng_apply_info, ng_mesg, ng_mesg_ng_msghdr};

use super::node::Node;
use crate::kern::errno::{Errno, KResult};
use crate::kern::mbuf::Mbuf;
use crate::kern::sync::{wakeup, Mutex};

/// Size of a message header (`struct ng_mesg` without its argument).
pub const NG_MESG_HDR: usize = core::mem::size_of::<ng_mesg_ng_msghdr>();

#[allow(clippy::cast_possible_wrap)]
const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;

fn msg_type() -> *mut fbsd_sys::malloc_type {
    (&raw mut fbsd_sys::M_NETGRAPH_MSG).cast()
}

/// An owned control message (`struct ng_mesg` plus `arglen` bytes).
///
/// # Invariants
///
/// `raw` points to an `M_NETGRAPH_MSG` allocation this value owns, at least
/// a header plus `arglen` bytes long.
pub struct Msg {
    raw: NonNull<ng_mesg>,
}

// SAFETY: an owned message is plain memory, usable from any thread.
unsafe impl Send for Msg {}

impl Msg {
    /// Takes ownership of a message.
    ///
    /// # Safety
    ///
    /// `raw` must be NULL or an `M_NETGRAPH_MSG` allocation the caller owns,
    /// at least a header plus `arglen` bytes long.
    pub(in crate::kern) unsafe fn from_raw(raw: *mut ng_mesg) -> Option<Msg> {
        NonNull::new(raw).map(|raw| Msg { raw })
    }

    /// Gives up ownership to a kernel function that consumes the message.
    pub(in crate::kern) fn into_raw(self) -> *mut ng_mesg {
        let p = self.raw.as_ptr();
        core::mem::forget(self);
        p
    }

    fn alloc(arglen: u32, how: u32) -> Option<Msg> {
        let size = NG_MESG_HDR.checked_add(arglen as usize)?;
        #[allow(clippy::cast_possible_wrap)]
        let flags = (how | fbsd_sys::M_ZERO) as i32;
        // SAFETY: M_NETGRAPH_MSG is netgraph's exported malloc type; with
        // M_NOWAIT malloc(9) returns NULL on failure, with M_WAITOK it
        // sleeps until it succeeds (the caller may sleep).
        let p = unsafe { fbsd_sys::malloc(size, msg_type(), flags) };
        let mut m = Msg {
            raw: NonNull::new(p.cast::<ng_mesg>())?,
        };
        let h = m.header_mut();
        h.version = super::NG_VERSION;
        h.arglen = arglen;
        Some(m)
    }

    /// `NG_MKMESSAGE`: a new message with a zeroed argument of `arglen`
    /// bytes, allocated without sleeping; `cmdstr` is the command string the
    /// header carries.
    pub fn new(cookie: u32, cmd: u32, arglen: u32, cmdstr: &CStr) -> KResult<Msg> {
        let mut m = Msg::alloc(arglen, fbsd_sys::M_NOWAIT).ok_or(Errno::ENOMEM)?;
        let h = m.header_mut();
        h.typecookie = cookie;
        h.cmd = cmd;
        let src = cmdstr.to_bytes();
        let n = src.len().min(h.cmdstr.len().saturating_sub(1));
        for (d, s) in h.cmdstr.iter_mut().zip(src.iter().take(n)) {
            *d = *s;
        }
        Ok(m)
    }

    /// `NG_MKRESPONSE`: a reply to `req` with a zeroed argument of `arglen`
    /// bytes.
    pub fn new_response(req: &Msg, arglen: u32) -> KResult<Msg> {
        let mut m = Msg::alloc(arglen, fbsd_sys::M_NOWAIT).ok_or(Errno::ENOMEM)?;
        let rh = *req.header();
        let h = m.header_mut();
        h.token = rh.token;
        h.typecookie = rh.typecookie;
        h.cmd = rh.cmd;
        h.cmdstr = rh.cmdstr;
        h.flags |= fbsd_sys::NGF_RESP;
        Ok(m)
    }

    /// A generic `NGM_SHUTDOWN` message (no argument), allocated with
    /// `M_WAITOK`: only where sleeping is allowed.
    pub(in crate::kern) fn shutdown_sleeping() -> Option<Msg> {
        let mut m = Msg::alloc(0, fbsd_sys::M_WAITOK)?;
        let h = m.header_mut();
        h.typecookie = fbsd_sys::NGM_GENERIC_COOKIE;
        h.cmd = fbsd_sys::NGM_SHUTDOWN;
        Some(m)
    }

    fn header(&self) -> &ng_mesg_ng_msghdr {
        // SAFETY: the message is owned and at least a header long.
        unsafe { &(*self.raw.as_ptr()).header }
    }

    fn header_mut(&mut self) -> &mut ng_mesg_ng_msghdr {
        // SAFETY: the message is owned and at least a header long.
        unsafe { &mut (*self.raw.as_ptr()).header }
    }

    /// The type cookie.
    pub fn cookie(&self) -> u32 {
        self.header().typecookie
    }

    /// The command number.
    pub fn cmd(&self) -> u32 {
        self.header().cmd
    }

    /// The message format version.
    pub fn version(&self) -> u8 {
        self.header().version
    }

    /// The token (a reply carries the request's).
    pub fn token(&self) -> u32 {
        self.header().token
    }

    /// The argument length the header declares.
    pub fn arglen(&self) -> u32 {
        self.header().arglen
    }

    /// True for a command netgraph applies as a reader (`NGM_READONLY`).
    pub fn is_readonly(&self) -> bool {
        self.header().cmd & fbsd_sys::NGM_READONLY != 0
    }

    /// Makes the message a reply (`NGF_RESP`) carrying `token`.
    pub fn set_response(&mut self, token: u32) {
        let h = self.header_mut();
        h.flags |= fbsd_sys::NGF_RESP;
        h.token = token;
    }

    /// The argument bytes (`arglen` of them).
    pub fn data(&self) -> &[u8] {
        let len = self.header().arglen as usize;
        // SAFETY: an owned message has `arglen` argument bytes after its
        // header (invariant).
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

    /// Shrinks the argument length (for replies filled to less than
    /// allocated).
    pub fn truncate(&mut self, arglen: u32) {
        let h = self.header_mut();
        if arglen < h.arglen {
            h.arglen = arglen;
        }
    }

    /// The whole message (header + `arglen` bytes) as bytes.
    pub fn wire(&self) -> &[u8] {
        let len = NG_MESG_HDR.saturating_add(self.header().arglen as usize);
        // SAFETY: an owned message has a header followed by arglen bytes.
        unsafe { core::slice::from_raw_parts(self.raw.as_ptr().cast::<u8>(), len) }
    }

    fn wire_mut(&mut self) -> &mut [u8] {
        let len = NG_MESG_HDR.saturating_add(self.header().arglen as usize);
        // SAFETY: as in `wire`, and `&mut self` makes access unique.
        unsafe { core::slice::from_raw_parts_mut(self.raw.as_ptr().cast::<u8>(), len) }
    }

    /// A message copied out of the first `len` bytes of an mbuf chain
    /// (header + argument): its `arglen` is what the copied header says,
    /// and its buffer holds `len - header` argument bytes.
    pub fn from_chain(m: &Mbuf, len: usize) -> KResult<Msg> {
        let arglen = len.checked_sub(NG_MESG_HDR).ok_or(Errno::EINVAL)?;
        let arglen = u32::try_from(arglen).map_err(|_| Errno::EINVAL)?;
        let mut msg = Msg::new(0, 0, arglen, c"")?;
        m.copy_out(msg.wire_mut())?;
        Ok(msg)
    }

    /// `NG_SEND_MSG_ID(error, here, msg, dest, 0)`: sends the message from
    /// `here` to the node with ID `dest` (return address: `here`). Consumed
    /// on success and on every error.
    pub fn send_to_id(self, here: Node<'_>, dest: u32) -> KResult<()> {
        // SAFETY: ng_package_msg consumes the message (freeing it on
        // failure); ng_address_ID frees the item on error; ng_snd_item
        // consumes it.
        unsafe {
            let item = fbsd_sys::ng_package_msg(self.into_raw(), 0);
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

    /// Sends the message from `node` to itself (path `.`), packaged with
    /// `NG_WAITOK`, return address 0. Only where sleeping is allowed.
    /// `None` when it could not be addressed (nothing was sent), else the
    /// result of the delivery.
    pub(in crate::kern) fn send_to_self_sleeping(self, node: Node<'_>) -> Option<KResult<()>> {
        // SAFETY: ng_package_msg consumes the message; with NG_WAITOK it
        // sleeps for an item. ng_address_path frees the item on error and
        // otherwise references the node; ng_snd_item consumes the item.
        unsafe {
            let item = fbsd_sys::ng_package_msg(self.into_raw(), NG_WAITOK);
            if item.is_null() {
                return None;
            }
            let err = fbsd_sys::ng_address_path(node.as_ptr(), item, c".".as_ptr().cast_mut(), 0);
            if err != 0 {
                return None;
            }
            Some(Errno::check(fbsd_sys::ng_snd_item(item, 0)))
        }
    }

    /// Sends the message from `here` to `path` (relative to `here`) and
    /// sleeps until netgraph has applied it, and any reply re-using its
    /// item; returns the error the application recorded. Consumed on every
    /// path. Only where sleeping is allowed (a socket system call). Sends
    /// through one [`Completion`] (initialised; borrowed for the whole
    /// wait, so it cannot move meanwhile) take turns.
    pub fn send_path_sync(self, here: Node<'_>, path: &CStr, done: &Completion) -> KResult<()> {
        {
            let mut g = done.state.lock()?;
            while g.busy {
                g.sleep(done.chan(), c"ngsock");
            }
            *g = State {
                busy: true,
                result: PENDING,
            };
        }
        let sent = self.send_path_applying(here, path, done);
        let mut g = done.lock_again();
        if sent.is_ok() {
            while g.result == PENDING {
                g.sleep(done.chan(), c"ngsock");
            }
        }
        let err = g.result;
        g.busy = false;
        wakeup(done.chan());
        drop(g);
        sent?;
        Errno::check(err)
    }

    /// The sending part of [`Msg::send_path_sync`]: on `Ok`, the apply
    /// callback of `done` runs once the item has been applied (possibly
    /// already). The caller holds `done`'s turn.
    fn send_path_applying(self, here: Node<'_>, path: &CStr, done: &Completion) -> KResult<()> {
        let apply = done.apply.get();
        // SAFETY: the caller holds the completion's turn, so netgraph uses no
        // earlier apply record of it; the record is rewritten before it is
        // handed over. ng_package_msg consumes the message (freeing it on
        // failure); ng_address_path frees the item on error; ng_snd_item
        // consumes it. The record stays valid (in `done`, which the caller
        // does not let go) until its callback has run.
        unsafe {
            apply.write(ng_apply_info {
                apply: Some(Completion::applied),
                context: (done as *const Completion).cast_mut().cast::<c_void>(),
                refs: 0,
                error: 0,
            });
            let item = fbsd_sys::ng_package_msg(self.into_raw(), NG_WAITOK);
            if item.is_null() {
                return Err(Errno::ENOMEM);
            }
            let err = fbsd_sys::ng_address_path(here.as_ptr(), item, path.as_ptr().cast_mut(), 0);
            if err != 0 {
                return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
            }
            (*item).apply = apply;
            let _ = fbsd_sys::ng_snd_item(item, 0);
        }
        Ok(())
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        // SAFETY: the message is owned and was allocated with M_NETGRAPH_MSG.
        unsafe { fbsd_sys::free(self.raw.as_ptr().cast::<c_void>(), msg_type()) }
    }
}

/// Where the result of [`Msg::send_path_sync`] is delivered: netgraph's
/// apply callback stores it and wakes the sender. Sends take turns.
///
/// # Invariants
///
/// While `state.busy`, one sender owns `apply`, which netgraph may use
/// until the callback has stored the result.
pub struct Completion {
    state: Mutex<State>,
    apply: core::cell::UnsafeCell<ng_apply_info>,
}

// SAFETY: `apply` is used by one sender at a time (the turn in `state`) and
// by netgraph on its behalf; `state` is a mutex.
unsafe impl Sync for Completion {}
// SAFETY: as above.
unsafe impl Send for Completion {}

/// A completion's turn and result.
struct State {
    /// A send owns the completion.
    busy: bool,
    /// The result of the owner's send, [`PENDING`] until applied.
    result: i32,
}

const PENDING: i32 = -1;

impl Completion {
    /// A completion; initialise it in place with [`Completion::init`].
    pub const fn new() -> Self {
        Completion {
            state: Mutex::new(State {
                busy: false,
                result: 0,
            }),
            apply: core::cell::UnsafeCell::new(ng_apply_info {
                apply: None,
                context: core::ptr::null_mut(),
                refs: 0,
                error: 0,
            }),
        }
    }

    /// Initialises its mutex in place.
    pub fn init(self: Pin<&Self>, name: &'static CStr) {
        // SAFETY: structural pinning: `state` is never moved out of `self`.
        let st = unsafe { self.map_unchecked(|c| &c.state) };
        st.init(name);
    }

    fn chan(&self) -> *const c_void {
        (self as *const Self).cast::<c_void>()
    }

    /// Locks the state of a completion already locked once (so initialised,
    /// which it stays while borrowed): the turn's owner waits for it.
    fn lock_again(&self) -> crate::kern::sync::MutexGuard<'_, State> {
        loop {
            if let Ok(g) = self.state.lock() {
                return g;
            }
        }
    }

    /// The apply callback (`ng_apply_t`).
    ///
    /// # Safety
    ///
    /// Called by netgraph only, once, with the context of the apply record
    /// [`Msg::send_path_sync`] set: a `Completion` whose turn's owner is
    /// waiting for this call.
    unsafe extern "C" fn applied(ctx: *mut c_void, error: i32) {
        // SAFETY: ctx is the Completion the owner is blocked on; it stays
        // valid until the owner has seen the result, which is set below.
        let c = unsafe { &*ctx.cast::<Completion>() };
        let mut g = c.lock_again();
        g.result = error;
        wakeup(c.chan());
    }
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}
