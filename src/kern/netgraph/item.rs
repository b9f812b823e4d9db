//! Items: what netgraph hands a node's `rcvmsg` and `rcvdata` methods.

use core::ptr::NonNull;

use fbsd_sys::ng_item;

use super::msg::Msg;
use super::node::Node;
use crate::kern::errno::{Errno, KResult};
use crate::kern::mbuf::Mbuf;

/// Item flags (`el_flags`): the type bits and their values.
const NGQF_TYPE: u64 = 0x03;
const NGQF_MESG: u64 = 0x00;
const NGQF_DATA: u64 = 0x01;

/// An owned netgraph item.
///
/// # Invariants
///
/// `raw` points to an item this value owns; it is freed exactly once, by
/// `Drop` or by a kernel function it is handed to.
pub struct Item {
    raw: NonNull<ng_item>,
}

impl Item {
    /// Takes ownership of an item handed to a method.
    ///
    /// # Safety
    ///
    /// `raw` must be NULL or an item the caller owns (netgraph hands
    /// ownership to `rcvmsg` and `rcvdata`).
    pub(in crate::kern) unsafe fn from_raw(raw: *mut ng_item) -> Option<Item> {
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
    /// address from `here`, reusing the item (queued delivery); without a
    /// response the item is simply freed. The request must have been taken
    /// out.
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
        // SAFETY: the item is owned (invariant) and freed exactly once here.
        unsafe { fbsd_sys::ng_free_item(self.raw.as_ptr()) }
    }
}
