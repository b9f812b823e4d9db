//! Lists other programs read: a `LIST_HEAD` (queue(3)) defined by the
//! module's C glue, under a mutex also defined there, whose elements are
//! Rust values with a [`ListEntry`] at the place the C structure has its
//! `LIST_ENTRY` (netstat walks `ngsocklist` that way).
//!
//! An element is linked through a pinned reference ([`ExternList::insert`])
//! and unlinked by its entry's `Drop` at the latest, so the list never
//! points to memory that moved or was freed. Declare a list with
//! [`extern_list!`](crate::extern_list).

use core::marker::{PhantomData, PhantomPinned};
use core::pin::Pin;
use core::sync::atomic::{AtomicPtr, Ordering};

use fbsd_sys::mtx;

use super::ffi::{ngsock_mtx_lock, ngsock_mtx_unlock};

/// A list: its element type, where the entry is inside it, and the C
/// symbols of its head and mutex.
///
/// # Safety
///
/// `head` and `mutex` must be the addresses of the glue's `LIST_HEAD` and
/// of its mutex, initialised before any element can be linked (the glue's
/// `NGSOCK_MTX_SYSINIT`); `entry` must return the [`ListEntry`] field of
/// the element at byte offset `ENTRY_OFFSET`.
pub unsafe trait ListDef: Sized + 'static {
    /// The element type.
    type Item: Send + Sync;
    /// The entry of an element.
    fn entry(item: &Self::Item) -> &ListEntry<Self>;
    /// `&head.lh_first`.
    fn head() -> *mut *mut Self::Item;
    /// The list's mutex.
    fn mutex() -> *mut mtx;
}

/// A `LIST_ENTRY` in an element of list `L`.
///
/// # Invariants
///
/// Linked exactly when `prev` is non-NULL; `next` and `prev` are changed
/// only with `L`'s mutex held. A linked entry's element does not move (it
/// was linked pinned) and is unlinked before it is dropped.
#[repr(C)]
pub struct ListEntry<L: ListDef> {
    next: AtomicPtr<L::Item>,
    prev: AtomicPtr<*mut L::Item>,
    _pin: PhantomPinned,
    _l: PhantomData<L>,
}

impl<L: ListDef> ListEntry<L> {
    /// An unlinked entry.
    pub const fn new() -> Self {
        ListEntry {
            next: AtomicPtr::new(core::ptr::null_mut()),
            prev: AtomicPtr::new(core::ptr::null_mut()),
            _pin: PhantomPinned,
            _l: PhantomData,
        }
    }
}

impl<L: ListDef> Default for ListEntry<L> {
    fn default() -> Self {
        Self::new()
    }
}

/// Holds a list's mutex.
struct Locked<L: ListDef>(PhantomData<L>);

impl<L: ListDef> Locked<L> {
    fn take() -> Self {
        // SAFETY: the mutex is initialised before any element can be linked
        // and destroyed after none can be (ListDef contract).
        unsafe { ngsock_mtx_lock(L::mutex()) };
        Locked(PhantomData)
    }
}

impl<L: ListDef> Drop for Locked<L> {
    fn drop(&mut self) {
        // SAFETY: held since `take`.
        unsafe { ngsock_mtx_unlock(L::mutex()) }
    }
}

/// Operations on list `L`.
pub struct ExternList<L: ListDef>(PhantomData<L>);

impl<L: ListDef> ExternList<L> {
    /// Links `item` at the head of the list (`LIST_INSERT_HEAD`); nothing
    /// if it is linked already.
    pub fn insert(item: Pin<&L::Item>) {
        let item = item.get_ref();
        let e = L::entry(item);
        let me = (item as *const L::Item).cast_mut();
        let _l = Locked::<L>::take();
        if !e.prev.load(Ordering::Relaxed).is_null() {
            return;
        }
        let head = L::head();
        // SAFETY: the list's mutex is held; list members are live pinned
        // elements (ListEntry invariant) whose entries sit at ENTRY_OFFSET.
        unsafe {
            let old = *head;
            e.next.store(old, Ordering::Relaxed);
            if let Some(o) = old.as_ref() {
                L::entry(o)
                    .prev
                    .store((&raw const e.next).cast_mut().cast(), Ordering::Relaxed);
            }
            *head = me;
        }
        e.prev.store(head, Ordering::Relaxed);
    }

    /// Unlinks `item` (`LIST_REMOVE`), if linked.
    pub fn remove(item: &L::Item) {
        let _l = Locked::<L>::take();
        unlink::<L>(L::entry(item));
    }

    /// True when no element is linked.
    pub fn is_empty() -> bool {
        let _l = Locked::<L>::take();
        // SAFETY: the head is read under the list's mutex.
        unsafe { (*L::head()).is_null() }
    }
}

/// Unlinks `e`, if linked; the list's mutex is held.
fn unlink<L: ListDef>(e: &ListEntry<L>) {
    let prev = e.prev.load(Ordering::Relaxed);
    if prev.is_null() {
        return;
    }
    let next = e.next.load(Ordering::Relaxed);
    // SAFETY: the mutex is held; `prev` points at the head or at the
    // previous member's `next`, and `next` is a live member.
    unsafe {
        if let Some(n) = next.as_ref() {
            L::entry(n).prev.store(prev, Ordering::Relaxed);
        }
        *prev = next;
    }
    e.next.store(core::ptr::null_mut(), Ordering::Relaxed);
    e.prev.store(core::ptr::null_mut(), Ordering::Relaxed);
}

impl<L: ListDef> Drop for ListEntry<L> {
    fn drop(&mut self) {
        if self.prev.load(Ordering::Relaxed).is_null() {
            return;
        }
        let _l = Locked::<L>::take();
        unlink::<L>(self);
    }
}

/// Declares list `$name` of elements `$item`, linked through their field
/// `$field` (a [`ListEntry<$name>`](ListEntry)), whose head and mutex are
/// the glue's symbols `$head` and `$mutex` (the latter initialised with
/// `NGSOCK_MTX_SYSINIT`, whose companion symbol the declaration refers to).
///
/// ```ignore
/// kern::extern_list!(pub SockList: Pcb, entry socks, head "ngsocklist", mutex "ngsocklist_mtx");
/// ```
#[macro_export]
#[cfg_attr(target_os = "none", allow_internal_unsafe)]
macro_rules! extern_list {
    ($(#[$m:meta])* $vis:vis $name:ident: $item:ty, entry $field:ident, head $head:literal, mutex $mutex:literal) => {
        $(#[$m])*
        $vis struct $name;

        // SAFETY: the symbols are the glue's list head and mutex; the mutex
        // is initialised with NGSOCK_MTX_SYSINIT (its companion symbol is
        // referenced below); `entry` returns the element's entry field.
        unsafe impl $crate::kern::list::ListDef for $name {
            type Item = $item;
            fn entry(item: &$item) -> &$crate::kern::list::ListEntry<$name> {
                &item.$field
            }
            fn head() -> *mut *mut $item {
                extern "C" {
                    #[link_name = $head]
                    static mut HEAD: *mut core::ffi::c_void;
                }
                (&raw mut HEAD).cast()
            }
            fn mutex() -> *mut fbsd_sys::mtx {
                extern "C" {
                    #[link_name = $mutex]
                    static mut MUTEX: fbsd_sys::mtx;
                    #[link_name = concat!($mutex, "_sysinit")]
                    static SYSINIT: u8;
                }
                // Only the address is taken, so that a mutex without its
                // initialisation does not link.
                #[used]
                static SYSINIT_REF: $crate::kern::list::SymRef =
                    $crate::kern::list::SymRef(&raw const SYSINIT);
                &raw mut MUTEX
            }
        }
    };
}

/// The address of a symbol, kept so that the object refers to it.
#[doc(hidden)]
pub struct SymRef(pub *const u8);

// SAFETY: never dereferenced.
unsafe impl Sync for SymRef {}
