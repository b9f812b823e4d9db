//! Hooks: borrowed ([`Hook`]) and counted ([`HookRef`]); sending data.

use core::ffi::CStr;
use core::marker::PhantomData;
use core::ptr::NonNull;

use fbsd_sys::ng_hook;

use super::node::Node;
use crate::kern::errno::{Errno, KResult};
use crate::kern::ffi::ngsock_hook_ref;
use crate::kern::mbuf::Mbuf;

/// A hook, borrowed.
///
/// # Invariants
///
/// `raw` points to a hook netgraph keeps referenced for `'a` (a method of
/// its node is running with it, or the borrow comes from a [`HookRef`]).
#[derive(Clone, Copy)]
pub struct Hook<'a> {
    raw: NonNull<ng_hook>,
    _life: PhantomData<&'a ng_hook>,
}

impl<'a> Hook<'a> {
    /// Wraps a hook pointer netgraph handed to a method.
    ///
    /// # Safety
    ///
    /// `raw` must be NULL or a hook that stays referenced for `'a`.
    pub(in crate::kern) unsafe fn from_raw(raw: *mut ng_hook) -> Option<Hook<'a>> {
        NonNull::new(raw).map(|raw| Hook {
            raw,
            _life: PhantomData,
        })
    }

    /// Raw pointer, for kernel calls.
    pub(in crate::kern) fn as_ptr(self) -> *mut ng_hook {
        self.raw.as_ptr()
    }

    /// The node the hook belongs to (`NG_HOOK_NODE`).
    pub fn node(self) -> Option<Node<'a>> {
        // SAFETY: the hook is referenced for 'a and holds a reference on
        // its node for as long as it is attached.
        unsafe { Node::from_raw((*self.raw.as_ptr()).hk_node) }
    }

    /// The hook's name.
    pub fn name(self) -> &'a CStr {
        // SAFETY: hk_name is a NUL-terminated array inside the hook, which is
        // referenced for 'a.
        unsafe { CStr::from_ptr((*self.raw.as_ptr()).hk_name.as_ptr()) }
    }

    /// True if the hook is called `name` (bytes without NUL).
    pub fn name_is(self, name: &[u8]) -> bool {
        self.name().to_bytes() == name
    }

    /// True if both are the same hook.
    pub fn ptr_eq(self, other: Hook<'_>) -> bool {
        self.raw == other.raw
    }

    /// Sets `NG_HOOK_FORCE_QUEUE`; the caller is the writer of the hook's
    /// node (see [`super::Writer::force_queue`]).
    pub(in crate::kern) fn set_force_queue(self) {
        #[allow(clippy::cast_possible_wrap)]
        const HK_QUEUE: i32 = fbsd_sys::HK_QUEUE as i32;
        // SAFETY: the hook is referenced for 'a; its flags are changed only
        // by its node's writer, which the caller is.
        unsafe { (*self.raw.as_ptr()).hk_flags |= HK_QUEUE }
    }

    /// A counted reference (`NG_HOOK_REF`).
    pub fn to_ref(self) -> HookRef {
        // SAFETY: the hook is referenced; NG_HOOK_REF is an atomic add.
        unsafe { ngsock_hook_ref(self.raw.as_ptr()) };
        HookRef { raw: self.raw }
    }

    /// Sends an mbuf chain out of the hook (`NG_SEND_DATA_ONLY`), allocating
    /// the item without sleeping. The chain is consumed on every path.
    pub fn send_data(self, m: impl Into<Mbuf>) -> KResult<()> {
        self.send_data_flags(m.into(), 0)
    }

    /// As [`Hook::send_data`], from a context that may sleep (a socket
    /// system call, no lock held): the item is allocated with `NG_WAITOK`,
    /// so at the `net.graph.maxdata` limit the sender waits for an item
    /// instead of failing.
    ///
    /// The item is allocated first (that may sleep), then the data travels
    /// inside the network epoch, as FreeBSD's data-socket send does it.
    pub fn send_data_sleeping(self, m: impl Into<Mbuf>) -> KResult<()> {
        #[allow(clippy::cast_possible_wrap)]
        const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;
        // SAFETY: ng_package_data consumes the chain (freeing it on failure).
        let item = unsafe { fbsd_sys::ng_package_data(m.into().into_raw(), NG_WAITOK) };
        if item.is_null() {
            return Err(Errno::ENOMEM);
        }
        // SAFETY: a fresh data item the caller owns, sent once.
        crate::kern::epoch::in_net(|| unsafe { self.send_item(item) })
    }

    /// `NG_SEND_DATA_FLAGS`: the item is allocated with `flags`.
    fn send_data_flags(self, m: Mbuf, flags: i32) -> KResult<()> {
        // SAFETY: ng_package_data consumes the chain (freeing it on
        // failure).
        let item = unsafe { fbsd_sys::ng_package_data(m.into_raw(), flags) };
        if item.is_null() {
            return Err(Errno::ENOMEM);
        }
        // SAFETY: a fresh data item the caller owns, sent once.
        unsafe { self.send_item(item) }
    }

    /// `NG_FWD_ITEM_HOOK` of a packaged data item out of this hook.
    ///
    /// # Safety
    /// `item` is a live item the caller owns; it is consumed on every path.
    unsafe fn send_item(self, item: *mut fbsd_sys::ng_item) -> KResult<()> {
        // SAFETY: ng_address_hook frees the item on error; ng_snd_item
        // consumes it. The hook is referenced for the call.
        unsafe {
            let err = fbsd_sys::ng_address_hook(core::ptr::null_mut(), item, self.as_ptr(), 0);
            if err != 0 {
                return Err(Errno::from_raw(err).unwrap_or(Errno::EINVAL));
            }
            Errno::check(fbsd_sys::ng_snd_item(item, 0))
        }
    }
}

/// A counted hook reference (`NG_HOOK_REF`), dropped with `NG_HOOK_UNREF`.
///
/// # Invariants
///
/// `raw` points to a hook on which this value owns one reference.
pub struct HookRef {
    raw: NonNull<ng_hook>,
}

// SAFETY: hook reference counts are atomic; hooks are shared between threads.
unsafe impl Send for HookRef {}
// SAFETY: `&HookRef` only hands out `Hook` borrows.
unsafe impl Sync for HookRef {}

impl HookRef {
    /// Borrows the hook.
    pub fn hook(&self) -> Hook<'_> {
        Hook {
            raw: self.raw,
            _life: PhantomData,
        }
    }
}

impl Clone for HookRef {
    fn clone(&self) -> Self {
        self.hook().to_ref()
    }
}

impl Drop for HookRef {
    fn drop(&mut self) {
        // SAFETY: this value owns one reference (invariant), dropped once.
        unsafe { fbsd_sys::ng_unref_hook(self.raw.as_ptr()) }
    }
}
