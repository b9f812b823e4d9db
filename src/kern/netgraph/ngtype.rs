//! Node types: the [`NodeType`] trait a node type implements in safe Rust,
//! the private data it keeps on each node, the gate tokens through which it
//! reaches that data, and the adapter that turns it into the C method table
//! (`struct ng_type`) netgraph calls.
//!
//! Netgraph serialises the methods of one node with a reader/writer gate:
//! writers (messages without `NGM_READONLY`, function items, newhook,
//! connect, disconnect, shutdown, the constructor) run alone; readers (data
//! items, read-only messages) run alongside other readers but never
//! alongside a writer. This module turns that into types:
//! * the node's private data is a [`Private`]: a part `Shared` any context
//!   may use (it must be `Sync`: atomics, locks), and a part `State`
//!   reached only through a gate token;
//! * a [`Writer`] proves that the running code is the node's writer and
//!   yields `&mut State`; a [`Reader`] proves that no writer runs and yields
//!   `&State`;
//! * tokens are made only here, from netgraph's calling contract, by the
//!   trampolines of the adapter: they are the only place where the raw
//!   pointers netgraph passes become [`Node`], [`Hook`] and [`Item`] values.
//!
//! `nd_private` is read and written with atomic operations (acquire /
//! release), so a node that is reachable (by ID) before its private data is
//! installed never exposes half-initialised data. Code outside the node's
//! gate gets the shared part only through [`Private::of`], under a lock that
//! removal ([`Writer::take`]) also takes.

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void, CStr};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use fbsd_sys::{hook_p, item_p, module_t, ng_cmdlist, ng_hook, ng_type, node_p};

use super::hook::{Hook, HookRef};
use super::item::{DataItem, Item};
use super::msg::Msg;
use super::node::Node;
use super::parse::CmdList;
use crate::kern::cell::KernelCell;
use crate::kern::errno::{to_raw, Errno, KResult};
use crate::kern::malloc::{KBox, MallocType};
use crate::kern::sync::{KArc, Mutex, SlotPtr};

/// A module event delivered to a node type (`MOD_LOAD`, `MOD_UNLOAD`...).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ModEvent {
    Load,
    Unload,
    Quiesce,
    Shutdown,
    Other(i32),
}

bitflags::bitflags! {
    /// How netgraph delivers an item a node sends (`NG_QUEUE`, `NG_WAITOK`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SendFlags: u32 {
        /// Queue the item even if the destination is idle.
        const QUEUE = fbsd_sys::NG_QUEUE;
        /// The item may be allocated sleeping (only where that is allowed).
        const WAITOK = fbsd_sys::NG_WAITOK;
    }
}

impl SendFlags {
    pub(in crate::kern) fn raw(self) -> c_int {
        c_int::try_from(self.bits()).unwrap_or(0)
    }
}

/// A function netgraph runs as a writer of a node (`ng_item_fn`): the
/// [`NodeType::function`] entry point of a node type, from
/// [`NodeFn::of`].
#[derive(Clone, Copy)]
pub struct NodeFn(RawNodeFn);

type RawNodeFn = unsafe extern "C" fn(node: node_p, hook: hook_p, arg1: *mut c_void, arg2: c_int);

impl NodeFn {
    /// The function-item entry point of node type `T`: runs
    /// [`NodeType::function`] with the item's `arg2`.
    pub const fn of<T: NodeType>() -> NodeFn {
        NodeFn(Adapter::<T>::function)
    }

    /// The entry point that runs `T::function(w, A)` on a node known to be
    /// of type `T` (see [`TypedNode`]): a function of its own for each `A`,
    /// so the dispatch on the argument is resolved when it is compiled, and
    /// with no check of the node's type. Kernel layer only: what queues it
    /// must make sure the node is of type `T`.
    pub(in crate::kern) const fn typed<T: NodeType, const A: i32>() -> NodeFn {
        NodeFn(Adapter::<T>::function_typed::<A>)
    }

    /// The entry point that runs `T::event(e, A)` on a node known to be of
    /// type `T` with its private data installed (see [`Installed`]).
    /// Kernel layer only: what queues it must make sure of both.
    pub(in crate::kern) const fn event<T: NodeType, const A: i32>() -> NodeFn {
        NodeFn(Adapter::<T>::event_entry::<A>)
    }

    pub(in crate::kern) fn raw(self) -> RawNodeFn {
        self.0
    }
}

/// A node type record (`struct ng_type`), registered with netgraph by the
/// module's C glue (`NETGRAPH_INIT`); a `static` declared with
/// `module_statics!`, since the kernel writes to it.
#[repr(transparent)]
pub struct TypeRecord(KernelCell<ng_type>);

impl TypeRecord {
    /// The record of node type `T`, named `name`, without a command list.
    pub const fn new<T: NodeType>(name: &'static CStr) -> TypeRecord {
        TypeRecord(KernelCell::new(Adapter::<T>::record(
            name,
            core::ptr::null(),
        )))
    }

    /// The record of node type `T`, named `name`, with the command list
    /// `cmds` (for the ASCII forms of its messages).
    pub const fn with_cmdlist<T: NodeType, const N: usize>(
        name: &'static CStr,
        cmds: &'static CmdList<N>,
    ) -> TypeRecord {
        TypeRecord(KernelCell::new(Adapter::<T>::record(name, cmds.as_ptr())))
    }

    pub(in crate::kern) const fn as_ptr(&self) -> *mut ng_type {
        self.0.get()
    }
}

/// True if a node type of this name is registered (`ng_findtype`).
pub fn type_exists(name: &CStr) -> bool {
    // SAFETY: ng_findtype only reads the type list under netgraph's lock.
    !unsafe { fbsd_sys::ng_findtype(name.as_ptr()) }.is_null()
}

/// The methods of a netgraph node type. Methods a type does not provide
/// keep netgraph's default; say which with the `HAS_*` constants.
pub trait NodeType: Sized + 'static {
    /// The part of the private data any context may use.
    type Shared: Send + Sync;
    /// The part of the private data reached through the node's gate.
    type State: Send + Sync;
    /// What a hook of the node carries for the data path (`hk_private`):
    /// set by the node's writer ([`Writer::set_hook_data`]), read by
    /// `rcvdata` without any lock ([`DataReader::hook_data`]), freed when
    /// the hook goes.
    type HookData: Send + Sync;
    /// A value linked to the node from outside its gate (a socket system
    /// call, say) that its data path reads without any lock
    /// ([`DataReader::linked`]): anyone holding the private data may link
    /// one when none is ([`Private::link`]); only the node's writer
    /// unlinks it ([`Writer::unlink`]), so no reader is using it then.
    type Linked: Send + Sync;

    /// The type's record (a `static`).
    fn record() -> &'static TypeRecord;
    /// The malloc type of the private data.
    fn malloc_type() -> MallocType;

    /// The type provides [`NodeType::mod_event`].
    const HAS_MOD_EVENT: bool = false;
    /// The type provides [`NodeType::findhook`].
    const HAS_FINDHOOK: bool = false;

    /// Module load/unload of the type.
    fn mod_event(_ev: ModEvent) -> KResult<()> {
        Ok(())
    }
    /// A node is being created by netgraph (`NGM_MKPEER`): install private
    /// data ([`Writer::install`]).
    fn constructor(w: Writer<'_, Self>) -> KResult<()>;
    /// A control message whose command lacks `NGM_READONLY` (writer).
    fn rcvmsg(w: Writer<'_, Self>, item: Item, msg: Msg, lasthook: Option<Hook<'_>>)
        -> KResult<()>;
    /// A control message with `NGM_READONLY` (reader); by default refused
    /// with `EINVAL` (item and message freed).
    fn rcvmsg_readonly(
        _r: Reader<'_, Self>,
        _item: Item,
        _msg: Msg,
        _lasthook: Option<Hook<'_>>,
    ) -> KResult<()> {
        Err(Errno::EINVAL)
    }
    /// Shutdown: release the private data ([`Dying::take`]; whatever is
    /// left installed is dropped after the method returns); the adapter
    /// then drops the node's creation reference.
    fn shutdown(w: Dying<'_, Self>);
    /// A hook named `name` is being added.
    fn newhook(w: Writer<'_, Self>, hook: Hook<'_>, name: &[u8]) -> KResult<()>;
    /// Looks a hook up by name (outside the gate: only the shared part).
    fn findhook(_node: Node<'_>, _p: &Private<Self>, _name: &[u8]) -> Option<HookRef> {
        None
    }
    /// A hook finished connecting.
    fn connect(_w: Writer<'_, Self>, _hook: Hook<'_>) -> KResult<()> {
        Ok(())
    }
    /// Data arrived on a hook (reader); the method owns the item.
    fn rcvdata(r: DataReader<'_, Self>, hook: DataHook<'_, Self>, item: DataItem) -> KResult<()>;
    /// A hook is being removed.
    fn disconnect(w: Writer<'_, Self>, hook: Hook<'_>);
    /// A function item sent with [`NodeFn::of`] (writer).
    fn function(_w: Writer<'_, Self>, _arg: i32) {}
    /// A socket event ([`crate::kern::socket::KSocket::set_upcalls`]):
    /// runs as the writer of a node whose private data is installed.
    fn event(_e: Event<'_, Self>, _arg: i32) {}
}

/// What a node's `nd_private` points to.
#[repr(C)]
pub struct NodePrivate<S, X, L> {
    shared: S,
    state: UnsafeCell<X>,
    linked: LinkSlot<L>,
}

// SAFETY: `shared` is accessed through `&S` from any thread, which `S: Sync`
// allows. `state` is only reached through the gate tokens: `&mut X` by the
// node's single writer, `&X` by readers that never overlap a writer (hence
// `X: Sync` for concurrent readers and `X: Send` because successive writers
// run on different threads). `linked` is set by anyone (once, atomically),
// read through `&L` by readers and taken only by a writer or the last
// owner: `L: Sync + Send`.
unsafe impl<S: Sync, X: Send + Sync, L: Send + Sync> Sync for NodePrivate<S, X, L> {}
// SAFETY: moving the whole value moves `S`, `X` and the linked `L`, all `Send`.
unsafe impl<S: Send, X: Send, L: Send> Send for NodePrivate<S, X, L> {}

impl<S, X, L> Drop for NodePrivate<S, X, L> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else reads the slot.
        drop(unsafe { self.linked.take() });
    }
}

/// The slot of the value linked to a node, inside its private data (linking
/// allocates nothing, so it cannot fail for want of memory).
///
/// # Invariants
///
/// `val` holds an initialised `L` exactly when `state` is [`LinkSlot::FULL`];
/// only the thread that moved `state` from `EMPTY` to `FILLING` writes `val`
/// (then publishes `FULL`); from `FULL` only [`LinkSlot::take`] moves on
/// (back to `EMPTY`), and its callers guarantee that no borrow of the value
/// from [`LinkSlot::get`] is alive then.
struct LinkSlot<L> {
    state: AtomicU8,
    val: UnsafeCell<MaybeUninit<L>>,
}

impl<L> LinkSlot<L> {
    const EMPTY: u8 = 0;
    const FILLING: u8 = 1;
    const FULL: u8 = 2;

    const fn new() -> Self {
        LinkSlot {
            state: AtomicU8::new(Self::EMPTY),
            val: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `v` when the slot is empty; else hands it back.
    fn put(&self, v: L) -> Result<(), L> {
        if self
            .state
            .compare_exchange(
                Self::EMPTY,
                Self::FILLING,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return Err(v);
        }
        // SAFETY: winning EMPTY -> FILLING makes this the only writer, and
        // nobody reads `val` before FULL is published below.
        unsafe { (*self.val.get()).write(v) };
        self.state.store(Self::FULL, Ordering::Release);
        Ok(())
    }

    /// The value, when linked.
    #[inline(always)]
    fn get(&self) -> Option<&L> {
        // SAFETY: FULL (acquired) means `val` is initialised, and it stays
        // so while the borrow of `self` lives unless `take` runs, which its
        // callers exclude (invariant).
        (self.state.load(Ordering::Acquire) == Self::FULL)
            .then(|| unsafe { (*self.val.get()).assume_init_ref() })
    }

    /// True unless the slot is empty (a value being linked counts).
    fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) != Self::EMPTY
    }

    /// Takes the value out.
    ///
    /// # Safety
    ///
    /// No borrow from [`LinkSlot::get`] is alive, and no other `take` runs.
    unsafe fn take(&self) -> Option<L> {
        if self.state.load(Ordering::Acquire) != Self::FULL {
            return None;
        }
        // SAFETY: FULL: initialised; no borrow and no other taker (caller);
        // `put` does not write before EMPTY is published below.
        let v = unsafe { (*self.val.get()).assume_init_read() };
        self.state.store(Self::EMPTY, Ordering::Release);
        Some(v)
    }
}

/// The private data of a node of type `T`: a counted reference to a
/// [`NodePrivate`] in kernel memory of `T`'s malloc type.
///
/// # Invariants
///
/// While installed on a node, the node's `nd_private` holds one reference
/// of it, and its `State` is reached only through that node's gate tokens
/// (other references only reach `Shared`).
pub struct Private<T: NodeType>(KArc<NodePrivate<T::Shared, T::State, T::Linked>>);

impl<T: NodeType> Clone for Private<T> {
    fn clone(&self) -> Self {
        Private(self.0.clone())
    }
}

// SAFETY: a Private is a KArc; its raw forms keep the reference.
unsafe impl<T: NodeType> SlotPtr for Private<T> {
    type Target = T::Shared;
    fn into_raw(self) -> *mut c_void {
        self.0.into_raw()
    }
    unsafe fn from_raw(p: *mut c_void) -> Option<Self> {
        // SAFETY: guaranteed by the caller.
        unsafe { KArc::from_raw(p) }.map(Private)
    }
    unsafe fn borrow<'b>(p: *mut c_void) -> Option<&'b T::Shared> {
        // SAFETY: guaranteed by the caller.
        unsafe { KArc::<NodePrivate<T::Shared, T::State, T::Linked>>::borrow_raw(p) }
            .map(|p| &p.shared)
    }
}

crate::static_mutex!(
    /// Serialises [`Private::of`] with [`Writer::take`] (a mutex of every
    /// module, initialised by its glue).
    static PRIVATE_LOCK: () = (); symbol "ngsock_private_mtx"
);

fn private_field<'a>(node: Node<'a>) -> &'a AtomicPtr<c_void> {
    // SAFETY: `nd_private` is a pointer-sized, pointer-aligned field of a
    // node netgraph keeps referenced for 'a. For nodes of our types every
    // access goes through this atomic view.
    unsafe { AtomicPtr::from_ptr(&raw mut (*node.as_ptr()).nd_private) }
}

impl<T: NodeType> Private<T> {
    /// Allocates private data (not yet installed), without sleeping.
    pub fn new(shared: T::Shared, state: T::State) -> KResult<Self> {
        KArc::try_new(
            NodePrivate {
                shared,
                state: UnsafeCell::new(state),
                linked: LinkSlot::new(),
            },
            T::malloc_type(),
        )
        .map(Private)
    }

    /// Links `v` to the node when nothing is linked (anyone may): from now
    /// on the node's data path can read it ([`DataReader::linked`]) until
    /// the node's writer unlinks it. `EADDRINUSE` (and `v` dropped) when
    /// something is already linked; nothing is allocated.
    pub fn link(&self, v: T::Linked) -> KResult<()> {
        self.0.linked.put(v).map_err(|_| Errno::EADDRINUSE)
    }

    /// True when something is linked, or being linked (a snapshot).
    pub fn is_linked(&self) -> bool {
        self.0.linked.is_set()
    }

    /// The part every context may use.
    pub fn shared(&self) -> &T::Shared {
        &self.0.shared
    }

    /// Both parts, when no other reference exists (before installing).
    pub fn parts_mut(&mut self) -> Option<(&T::Shared, &mut T::State)> {
        let p = self.0.get_mut()?;
        Some((&p.shared, p.state.get_mut()))
    }

    /// Initialises, in place, a mutex inside the shared part.
    pub fn init_mutex<U>(
        &self,
        field: impl for<'a> FnOnce(&'a T::Shared) -> &'a Mutex<U>,
        name: &'static CStr,
    ) {
        self.0.init_mutex(|p| field(&p.shared), name);
    }

    /// A pinned part of the shared part (it never moves).
    pub fn pinned<U>(
        &self,
        field: impl for<'a> FnOnce(&'a T::Shared) -> &'a U,
    ) -> core::pin::Pin<&U> {
        self.0.pinned_field(|p| field(&p.shared))
    }

    /// Installs this on `node` (release), handing it back when the node
    /// already has private data, or when other references to it exist (so
    /// that no data is ever installed on two nodes). The caller checked the
    /// node's type.
    pub(in crate::kern) fn install_on(mut self, node: Node<'_>) -> Result<(), Self> {
        if self.0.get_mut().is_none() {
            return Err(self);
        }
        let raw = self.0.into_raw();
        match private_field(node).compare_exchange(
            core::ptr::null_mut(),
            raw,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            // SAFETY: `raw` came from `into_raw` just above and was not
            // published: the reference comes back.
            Err(_) => match unsafe { KArc::from_raw(raw) } {
                Some(a) => Err(Private(a)),
                None => Ok(()),
            },
        }
    }

    /// The private data of a node of type `T`, from outside its gate (a
    /// socket system call, another node): a new reference, or `None` for a
    /// node of another type or one without private data.
    pub fn of(node: Node<'_>) -> Option<Self> {
        if !node.is_of(T::record()) {
            return None;
        }
        let _g = PRIVATE_LOCK.lock();
        let p = private_field(node).load(Ordering::Acquire);
        // SAFETY: nodes of type T hold a reference of a Private<T> or NULL
        // in nd_private; it cannot be removed (and released) while the lock
        // is held, since `Writer::take` takes it too.
        unsafe { KArc::clone_raw(p) }.map(Private)
    }
}

/// The `hk_private` field of a hook, seen atomically.
fn hook_field<'a>(hook: Hook<'a>) -> &'a AtomicPtr<c_void> {
    // SAFETY: `hk_private` is a pointer-sized, pointer-aligned field of a
    // hook referenced for 'a. For hooks of our types every access goes
    // through this view.
    unsafe { AtomicPtr::from_ptr(&raw mut (*hook.as_ptr()).hk_private) }
}

/// True if `hook` belongs to `node`.
fn hook_of(hook: Hook<'_>, node: Node<'_>) -> bool {
    // SAFETY: the hook is referenced; hk_node is only read.
    core::ptr::eq(unsafe { (*hook.as_ptr()).hk_node }, node.as_ptr())
}

/// Takes a hook's data out.
///
/// # Safety
///
/// `hook` belongs to a node of type `T` (so its `hk_private` is NULL or a
/// `KBox<T::HookData>` of `T`'s malloc type), and no reader of that node
/// runs (the caller is its writer).
unsafe fn take_hook_data<T: NodeType>(hook: Hook<'_>) -> Option<KBox<T::HookData>> {
    let p = hook_field(hook).swap(core::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: see above; the box moves to the caller.
    NonNull::new(p.cast::<T::HookData>()).map(|p| unsafe { KBox::from_raw(p, T::malloc_type()) })
}

/// The hook data arrived on in `rcvdata`: a hook of the node (of type `T`)
/// the method runs for, and the data-path variant the hook runs
/// ([`Writer::set_data_variant`]).
///
/// # Invariants
///
/// `hook` belongs to a node of type `T` whose reader is running for `'a`.
#[derive(Clone, Copy)]
pub struct DataHook<'a, T: NodeType> {
    hook: Hook<'a>,
    variant: u32,
    _t: PhantomData<fn() -> T>,
}

impl<'a, T: NodeType> DataHook<'a, T> {
    /// The hook.
    #[inline]
    pub fn hook(self) -> Hook<'a> {
        self.hook
    }

    /// The variant of the data path this hook runs: 0 unless the node's
    /// writer chose another ([`Writer::set_data_variant`]). It is a
    /// constant of the entry point netgraph called: a feature `rcvdata`
    /// tests it for costs nothing on hooks whose variant lacks it.
    #[inline(always)]
    pub fn variant(self) -> u32 {
        self.variant
    }

    /// The data the node's writer set on the hook, if any.
    #[inline]
    pub fn data(self) -> Option<&'a T::HookData> {
        let p = hook_field(self.hook).load(Ordering::Acquire);
        // SAFETY: a hook of a node of type T holds NULL or a live
        // KBox<T::HookData> in hk_private, freed only by the node's writer,
        // which does not run while this reader does.
        unsafe { p.cast::<T::HookData>().as_ref() }
    }
}

/// A node known to be of type `T` (a plain borrow: it gives no access to
/// the node's private data). Work queued on it may skip the check of the
/// node's type.
///
/// # Invariants
///
/// `node` is of type `T`.
pub struct TypedNode<'a, T: NodeType> {
    node: Node<'a>,
    _t: PhantomData<fn() -> T>,
}

impl<T: NodeType> Clone for TypedNode<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: NodeType> Copy for TypedNode<'_, T> {}

impl<'a, T: NodeType> TypedNode<'a, T> {
    /// `node` if it is of type `T`.
    pub fn of(node: Node<'a>) -> Option<Self> {
        node.is_of(T::record()).then_some(TypedNode {
            node,
            _t: PhantomData,
        })
    }

    /// The node.
    pub fn node(self) -> Node<'a> {
        self.node
    }

    /// Asks netgraph to run `T::function(w, A)` as the node's writer
    /// ([`Node::send_fn`]).
    pub fn send_fn<const A: i32>(self, flags: SendFlags) -> KResult<()> {
        self.node.send_fn(NodeFn::typed::<T, A>(), A, flags)
    }
}

/// A node of type `T` with its private data installed. It stays installed
/// until the node's shutdown, after which netgraph runs no function item on
/// the node: work queued on it ([`NodeFn::event`]) finds the data.
///
/// # Invariants
///
/// `node` is of type `T` and its private data was installed when this was
/// made.
pub struct Installed<'a, T: NodeType> {
    node: Node<'a>,
    _t: PhantomData<fn() -> T>,
}

impl<T: NodeType> Clone for Installed<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: NodeType> Copy for Installed<'_, T> {}

impl<'a, T: NodeType> Installed<'a, T> {
    /// The node.
    pub fn node(self) -> Node<'a> {
        self.node
    }
}

/// The writer token of a socket event ([`NodeType::event`]): a writer of
/// a node whose private data is installed.
///
/// # Invariants
///
/// Made only by the adapter, for an event entry queued on an
/// [`Installed`] node of type `T`, run as its writer.
pub struct Event<'a, T: NodeType> {
    node: Node<'a>,
    p: &'a NodePrivate<T::Shared, T::State, T::Linked>,
}

impl<'a, T: NodeType> Event<'a, T> {
    /// The node.
    #[inline]
    pub fn node(&self) -> Node<'a> {
        self.node
    }

    /// The node's first hook.
    #[inline]
    pub fn first_hook(&self) -> Option<Hook<'a>> {
        self.node.first_hook()
    }

    /// The node's private data, the `State` part writable.
    #[inline]
    pub fn state(&mut self) -> (&T::Shared, &mut T::State) {
        // SAFETY: the token is a writer's: no other reference to `state`
        // exists while `self` is borrowed mutably.
        (&self.p.shared, unsafe { &mut *self.p.state.get() })
    }
}

/// Proof that the running code is the only writer of a node of type `T`.
///
/// # Invariants
///
/// Made only by the adapter, for a method netgraph runs as the writer of
/// `node`, a node of type `T`.
pub struct Writer<'a, T: NodeType> {
    node: Node<'a>,
    /// In `newhook`, the hook being added (netgraph sets its `hk_node`
    /// only once `newhook` accepted it; before that it is ours to set up).
    adding: Option<Hook<'a>>,
    _t: PhantomData<fn() -> T>,
}

/// Proof that no writer of a node of type `T` runs while the token lives.
///
/// # Invariants
///
/// Made only by the adapter, for a method netgraph runs as a reader of
/// `node`, a node of type `T`.
pub struct Reader<'a, T: NodeType> {
    node: Node<'a>,
    _t: PhantomData<fn() -> T>,
}

/// The installed private data of a node the caller knows to be of type `T`.
///
/// # Safety
///
/// `node` must be of type `T` and the returned borrow must end before the
/// private data can be taken (a gate token of the node is held for it).
unsafe fn installed<'b, T: NodeType>(
    node: Node<'_>,
) -> Option<&'b NodePrivate<T::Shared, T::State, T::Linked>> {
    let p = private_field(node).load(Ordering::Acquire);
    // SAFETY: nodes of type T hold a reference of a Private<T> or NULL in
    // nd_private (guaranteed by the caller), which stays installed for 'b.
    unsafe { KArc::borrow_raw(p) }
}

impl<'a, T: NodeType> Writer<'a, T> {
    /// The node.
    pub fn node(&self) -> Node<'a> {
        self.node
    }

    /// The value linked to the node ([`Private::link`]), if any.
    pub fn linked(&self) -> Option<&T::Linked> {
        // SAFETY: the token proves the node's type; the borrow of `self`
        // outlives the result.
        let p = unsafe { installed::<T>(self.node) }?;
        // Only a writer unlinks, and this one is borrowed.
        p.linked.get()
    }

    /// Unlinks the value linked to the node: no reader of the node runs
    /// now, and none that starts later sees it.
    pub fn unlink(&mut self) -> Option<T::Linked> {
        // SAFETY: the token proves the node's type.
        let p = unsafe { installed::<T>(self.node) }?;
        // SAFETY: borrows of the value come from gate tokens of the node
        // (this writer's, borrowed mutably here, or readers', excluded by
        // it); only a writer takes.
        unsafe { p.linked.take() }
    }

    /// Sets the data a hook of this node carries for the data path
    /// ([`DataHook::data`]), replacing any it had. `EINVAL` for a hook of
    /// another node, `ENOMEM` without memory.
    pub fn set_hook_data(&mut self, hook: Hook<'_>, v: T::HookData) -> KResult<()> {
        if !self.owns(hook) {
            return Err(Errno::EINVAL);
        }
        let raw = KBox::into_raw(KBox::try_new(v, T::malloc_type())?);
        let old = hook_field(hook).swap(raw.cast::<c_void>(), Ordering::AcqRel);
        // SAFETY: a hook of our node held NULL or a KBox of T::HookData;
        // the writer token excludes readers, so nobody borrows it.
        drop(
            NonNull::new(old.cast::<T::HookData>())
                .map(|p| unsafe { KBox::from_raw(p, T::malloc_type()) }),
        );
        Ok(())
    }

    /// Makes data arriving on `hook` (a hook of this node) run variant `V`
    /// of `T::rcvdata` ([`DataHook::variant`]): its own entry point, set
    /// as the hook's `hk_rcvdata` (`NG_HOOK_SET_RCVDATA`); variant 0 is the
    /// type's own entry. Netgraph reads that pointer as a reader of the
    /// node, which this writer excludes. False for a hook of another node.
    pub fn set_data_variant<const V: u32>(&mut self, hook: Hook<'_>) -> bool {
        if !self.owns(hook) {
            return false;
        }
        let f: Option<unsafe extern "C" fn(hook_p, item_p) -> c_int> = if V == 0 {
            None
        } else {
            Some(Adapter::<T>::rcvdata_variant::<V>)
        };
        // SAFETY: a hook of this node, whose writer we are; a plain store,
        // as NG_HOOK_SET_RCVDATA does; the function handles data for a
        // node of type T, which this hook's node is.
        unsafe { (*hook.as_ptr()).hk_rcvdata = f };
        true
    }

    /// True for a hook of this node, or the one `newhook` is adding.
    fn owns(&self, hook: Hook<'_>) -> bool {
        hook_of(hook, self.node) || self.adding.is_some_and(|a| a.ptr_eq(hook))
    }

    /// The data a hook of this node carries, if any.
    pub fn hook_data<'h>(&self, hook: Hook<'h>) -> Option<&'h T::HookData>
    where
        'a: 'h,
    {
        if !self.owns(hook) {
            return None;
        }
        let p = hook_field(hook).load(Ordering::Acquire);
        // SAFETY: as in `DataHook::data`; only this writer frees it, and
        // not while the borrow of the hook lives within this method's run.
        unsafe { p.cast::<T::HookData>().as_ref() }
    }

    /// The node, known to have its private data installed, or `None`.
    pub fn installed(&self) -> Option<Installed<'a, T>> {
        (!private_field(self.node).load(Ordering::Acquire).is_null()).then_some(Installed {
            node: self.node,
            _t: PhantomData,
        })
    }

    /// The node, as one of type `T`.
    pub fn typed(&self) -> TypedNode<'a, T> {
        TypedNode {
            node: self.node,
            _t: PhantomData,
        }
    }

    /// The node's private data, the `State` part writable; `None` before
    /// it is installed or after it was taken.
    pub fn state(&mut self) -> Option<(&T::Shared, &mut T::State)> {
        // SAFETY: the token proves the node's type; the borrow of `self`
        // outlives the result, and taking the data consumes the token.
        let p = unsafe { installed::<T>(self.node) }?;
        // SAFETY: the writer token guarantees that no other reference to
        // `state` exists while `self` is borrowed mutably.
        Some((&p.shared, unsafe { &mut *p.state.get() }))
    }

    /// Installs the node's private data (constructor). Fails, handing `p`
    /// back, when some is installed already or `p` is shared.
    pub fn install(&mut self, p: Private<T>) -> Result<(), Private<T>> {
        p.install_on(self.node)
    }

    /// Removes the node's private data and hands it over: only for
    /// shutdown ([`Dying::take`]), after which no method of the node runs.
    fn take(self) -> Option<Private<T>> {
        let _g = PRIVATE_LOCK.lock();
        let raw = private_field(self.node).swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: nd_private held a reference of a Private<T> (the token
        // proves the type) or NULL; the reference moves to the caller.
        unsafe { KArc::from_raw(raw) }.map(Private)
    }

    /// The node's first hook (its hook list is stable while a method of
    /// the node runs).
    pub fn first_hook(&self) -> Option<Hook<'a>> {
        self.node.first_hook()
    }

    /// Forces queued delivery of everything sent to `hook`, a hook of this
    /// node (`NG_HOOK_FORCE_QUEUE`); nothing for another node's hook.
    pub fn force_queue(&mut self, hook: Hook<'_>) {
        if hook.node().is_some_and(|n| n.id() == self.node.id()) {
            hook.set_force_queue();
        }
    }
}

/// The writer token of a node's `shutdown`: a [`Writer`] that may also
/// remove the node's private data ([`Dying::take`]). Only shutdown removes
/// it, and netgraph runs shutdown once every hook is gone: that is what
/// lets [`DataReader`] find the data installed.
///
/// # Invariants
///
/// Made only by the adapter, for the shutdown method of a node of type `T`.
pub struct Dying<'a, T: NodeType>(Writer<'a, T>);

impl<'a, T: NodeType> Dying<'a, T> {
    /// Removes the node's private data and hands it over (the linked value,
    /// if still there, is dropped first: no reader can need it any more,
    /// and no reference to the data must keep it).
    pub fn take(mut self) -> Option<Private<T>> {
        drop(self.0.unlink());
        self.0.take()
    }
}

impl<'a, T: NodeType> core::ops::Deref for Dying<'a, T> {
    type Target = Writer<'a, T>;
    fn deref(&self) -> &Writer<'a, T> {
        &self.0
    }
}

impl<T: NodeType> core::ops::DerefMut for Dying<'_, T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// The reader token of `rcvdata`: data arrives only on a hook, a hook is
/// only added to a node whose private data is installed (the adapter's
/// `newhook` refuses it otherwise), and the data is only removed by
/// shutdown, which netgraph runs once every hook is gone (no data is then
/// delivered): so the data is there, and [`DataReader::state`] need not ask.
///
/// # Invariants
///
/// Made only by the adapter, for `rcvdata` on a hook of `node`, a node of
/// type `T` whose private data is installed for `'a`; no writer of the node
/// runs while the token lives.
pub struct DataReader<'a, T: NodeType> {
    node: Node<'a>,
    p: &'a NodePrivate<T::Shared, T::State, T::Linked>,
}

impl<'a, T: NodeType> DataReader<'a, T> {
    /// The node.
    #[inline]
    pub fn node(&self) -> Node<'a> {
        self.node
    }

    /// The node's private data, read-only.
    #[inline]
    pub fn state(&self) -> (&'a T::Shared, &'a T::State) {
        // SAFETY: the reader token guarantees that no `&mut` to `state`
        // exists while the borrow lives.
        (&self.p.shared, unsafe { &*self.p.state.get() })
    }

    /// The value linked to the node ([`Private::link`]), if any.
    #[inline]
    pub fn linked(&self) -> Option<&'a T::Linked> {
        // Only a writer of the node unlinks it, and none runs while this
        // reader does.
        self.p.linked.get()
    }
}

impl<'a, T: NodeType> Reader<'a, T> {
    /// The node.
    pub fn node(&self) -> Node<'a> {
        self.node
    }

    /// The node's private data, read-only; `None` when it has none.
    pub fn state(&self) -> Option<(&T::Shared, &T::State)> {
        // SAFETY: the token proves the node's type; a reader never takes
        // the data, and no writer runs while the token lives.
        let p = unsafe { installed::<T>(self.node) }?;
        // SAFETY: the reader token guarantees that no `&mut` to `state`
        // exists while the borrow lives.
        Some((&p.shared, unsafe { &*p.state.get() }))
    }

    /// The node's first hook.
    pub fn first_hook(&self) -> Option<Hook<'a>> {
        self.node.first_hook()
    }
}

mod adapter;
use adapter::Adapter;
