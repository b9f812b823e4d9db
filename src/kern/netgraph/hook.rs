//! Hooks: borrowed ([`Hook`]) and counted ([`HookRef`]); sending data.

use core::ffi::CStr;
use core::marker::PhantomData;
use core::ptr::NonNull;

use fbsd_sys::ng_hook;

use super::item::Item;
use super::node::Node;
use crate::kern::errno::{Errno, KResult};
use crate::kern::mbuf::Mbuf;
use crate::kern::sync::refcount_acquire;

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

    /// Wraps a hook pointer netgraph handed to a method, known non-NULL.
    ///
    /// # Safety
    ///
    /// As for [`Hook::from_raw`].
    #[inline]
    pub(in crate::kern) unsafe fn from_nonnull(raw: NonNull<ng_hook>) -> Hook<'a> {
        Hook {
            raw,
            _life: PhantomData,
        }
    }

    /// The node the hook belongs to, for a hook known to be attached.
    ///
    /// # Safety
    ///
    /// `hk_node` is not NULL (netgraph sets it when the hook is made and
    /// points it at its dead node, never NULL, when the hook goes away).
    #[inline]
    pub(in crate::kern) unsafe fn node_unchecked(self) -> Node<'a> {
        // SAFETY: the hook is referenced for 'a and holds a reference on its
        // node; hk_node is not NULL (caller).
        unsafe { Node::from_nonnull(NonNull::new_unchecked((*self.raw.as_ptr()).hk_node)) }
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
    #[inline]
    pub fn name_is(self, name: &[u8]) -> bool {
        // SAFETY: hk_name is an array of NG_HOOKSIZ bytes inside the hook,
        // referenced for 'a, NUL-terminated within it.
        let hk = unsafe { &(*self.raw.as_ptr()).hk_name };
        // SAFETY: c_char and u8 have the same size and alignment.
        let hk = unsafe { core::slice::from_raw_parts(hk.as_ptr().cast::<u8>(), hk.len()) };
        // The name, then its NUL: one comparison of len + 1 bytes.
        match (hk.get(..name.len()), hk.get(name.len())) {
            (Some(h), Some(&0)) => h == name,
            _ => false,
        }
    }

    /// True if the hook is called what `data` holds up to its first NUL
    /// (or its end): FreeBSD's `strcmp` of the name with `data` cut and
    /// NUL-terminated. Usually one comparison of the whole of `data`.
    #[inline(always)]
    pub fn is_named(self, data: &[u8]) -> bool {
        // SAFETY: as in `name_is`.
        let hk = unsafe { &(*self.raw.as_ptr()).hk_name };
        // SAFETY: c_char and u8 have the same size and alignment.
        let hk = unsafe { core::slice::from_raw_parts(hk.as_ptr().cast::<u8>(), hk.len()) };
        // All of `data`, then the name's end: the same name, whatever NUL
        // `data` holds (the name has them at the same places).
        if let (Some(h), Some(&0)) = (hk.get(..data.len()), hk.get(data.len())) {
            if h == data {
                return true;
            }
        }
        self.is_named_slow(data)
    }

    /// [`Hook::is_named`] when `data` and the name differ somewhere: only
    /// `data` up to a NUL of its own can still match.
    #[cold]
    #[inline(never)]
    fn is_named_slow(self, data: &[u8]) -> bool {
        match data.iter().position(|&b| b == 0) {
            Some(n) => self.name_is(data.get(..n).unwrap_or(&[])),
            None => false,
        }
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
        unsafe { refcount_acquire((&raw mut (*self.raw.as_ptr()).hk_refs).cast::<u32>()) };
        HookRef { raw: self.raw }
    }

    /// Sends an mbuf chain out of the hook (`NG_SEND_DATA_ONLY`), allocating
    /// the item without sleeping. The chain is consumed on every path.
    pub fn send_data(self, m: impl Into<Mbuf>) -> KResult<()> {
        self.send_data_flags(m.into(), 0)
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

/// A data item packaged for sending, not yet addressed: the first of the
/// three steps of `NG_SEND_DATA` split apart, so that a sender outside the
/// node's gate can package the data first (which may sleep), address the
/// item under its own lock (the item then holds the hook's reference) and
/// send it once the lock is released. Dropping it frees the item and the
/// chain.
pub struct DataOut(Item);

impl DataOut {
    /// Packages `m` (`ng_package_data` with `NG_WAITOK`, for a sending
    /// process's thread with no lock held: at the `net.graph.maxdata`
    /// limit it waits for an item instead of failing).
    #[inline(always)]
    pub fn package_sleeping(m: impl Into<Mbuf>) -> KResult<DataOut> {
        #[allow(clippy::cast_possible_wrap)]
        const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;
        // SAFETY: ng_package_data consumes the chain (freeing it on
        // failure); with NG_WAITOK it may sleep, which the caller allows. A
        // non-NULL result is an item we own.
        unsafe { Item::from_raw(fbsd_sys::ng_package_data(m.into().into_raw(), NG_WAITOK)) }
            .map(DataOut)
            .ok_or(Errno::ENOMEM)
    }

    /// Addresses the item to `hook` (`ng_address_hook`, which takes a
    /// reference on the hook for the item and does not sleep, so it may run
    /// under a lock); on error the item is freed.
    #[inline(always)]
    pub fn address(self, hook: Hook<'_>) -> KResult<Addressed> {
        let raw = self.0.into_raw();
        // SAFETY: an item we own; ng_address_hook frees it on error and
        // leaves it ours otherwise. The hook is valid for the call.
        let err =
            unsafe { fbsd_sys::ng_address_hook(core::ptr::null_mut(), raw, hook.as_ptr(), 0) };
        match Errno::from_raw(err) {
            // SAFETY: still ours (no error); non-NULL.
            None => Ok(Addressed(DataOut(unsafe {
                Item::from_nonnull(NonNull::new_unchecked(raw))
            }))),
            Some(e) => Err(e),
        }
    }
}

/// A [`DataOut`] addressed to its hook, which the item references.
pub struct Addressed(DataOut);

impl Addressed {
    /// Sends the item (`ng_snd_item`, inside the network epoch, as
    /// netgraph's data path expects; FreeBSD's `ngd_send` does the same).
    #[inline(always)]
    pub fn send(self) -> KResult<()> {
        let raw = self.0 .0.into_raw();
        crate::kern::epoch::in_net(|| {
            // SAFETY: an addressed item we own; ng_snd_item consumes it.
            Errno::check(unsafe { fbsd_sys::ng_snd_item(raw, 0) })
        })
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
