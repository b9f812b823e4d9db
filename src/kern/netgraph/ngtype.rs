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
use core::sync::atomic::{AtomicPtr, Ordering};

use fbsd_sys::{hook_p, item_p, module_t, ng_cmdlist, ng_hook, ng_type, node_p};

use super::hook::{Hook, HookRef};
use super::item::Item;
use super::msg::Msg;
use super::node::Node;
use super::parse::CmdList;
use crate::kern::cell::KernelCell;
use crate::kern::errno::{to_raw, Errno, KResult};
use crate::kern::malloc::MallocType;
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
    /// The function-item entry point of node type `T`.
    pub const fn of<T: NodeType>() -> NodeFn {
        NodeFn(Adapter::<T>::function)
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
    /// Shutdown: release the private data ([`Writer::take`]); the adapter
    /// then drops the node's creation reference.
    fn shutdown(w: Writer<'_, Self>);
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
    fn rcvdata(r: Reader<'_, Self>, hook: Hook<'_>, item: Item) -> KResult<()>;
    /// A hook is being removed.
    fn disconnect(w: Writer<'_, Self>, hook: Hook<'_>);
    /// A function item sent with [`NodeFn::of`] (writer).
    fn function(_w: Writer<'_, Self>, _arg: i32) {}
}

/// What a node's `nd_private` points to.
pub struct NodePrivate<S, X> {
    shared: S,
    state: UnsafeCell<X>,
}

// SAFETY: `shared` is accessed through `&S` from any thread, which `S: Sync`
// allows. `state` is only reached through the gate tokens: `&mut X` by the
// node's single writer, `&X` by readers that never overlap a writer (hence
// `X: Sync` for concurrent readers and `X: Send` because successive writers
// run on different threads).
unsafe impl<S: Sync, X: Send + Sync> Sync for NodePrivate<S, X> {}
// SAFETY: moving the whole value moves `S` and `X`, both `Send`.
unsafe impl<S: Send, X: Send> Send for NodePrivate<S, X> {}

/// The private data of a node of type `T`: a counted reference to a
/// [`NodePrivate`] in kernel memory of `T`'s malloc type.
///
/// # Invariants
///
/// While installed on a node, the node's `nd_private` holds one reference
/// of it, and its `State` is reached only through that node's gate tokens
/// (other references only reach `Shared`).
pub struct Private<T: NodeType>(KArc<NodePrivate<T::Shared, T::State>>);

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
        unsafe { KArc::<NodePrivate<T::Shared, T::State>>::borrow_raw(p) }.map(|p| &p.shared)
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
            },
            T::malloc_type(),
        )
        .map(Private)
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

/// Proof that the running code is the only writer of a node of type `T`.
///
/// # Invariants
///
/// Made only by the adapter, for a method netgraph runs as the writer of
/// `node`, a node of type `T`.
pub struct Writer<'a, T: NodeType> {
    node: Node<'a>,
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
) -> Option<&'b NodePrivate<T::Shared, T::State>> {
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

    /// Removes the node's private data (shutdown) and hands it over.
    pub fn take(self) -> Option<Private<T>> {
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

/// Reads a C string argument into bytes (empty for NULL).
///
/// # Safety
///
/// `p` must be NULL or a NUL-terminated string valid for `'a`.
unsafe fn cstr_arg<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// The adapter from a [`NodeType`] to the C method table.
struct Adapter<T: NodeType>(PhantomData<T>);

impl<T: NodeType> Adapter<T> {
    const fn record(name: &'static CStr, cmdlist: *const ng_cmdlist) -> ng_type {
        ng_type {
            version: fbsd_sys::NG_ABI_VERSION,
            name: name.as_ptr(),
            mod_event: if T::HAS_MOD_EVENT {
                Some(Self::mod_event)
            } else {
                None
            },
            constructor: Some(Self::constructor),
            rcvmsg: Some(Self::rcvmsg),
            close: None,
            shutdown: Some(Self::shutdown),
            newhook: Some(Self::newhook),
            findhook: if T::HAS_FINDHOOK {
                Some(Self::findhook)
            } else {
                None
            },
            connect: Some(Self::connect),
            rcvdata: Some(Self::rcvdata),
            disconnect: Some(Self::disconnect),
            cmdlist,
            types: fbsd_sys::ng_type__bindgen_ty_1 {
                le_next: core::ptr::null_mut(),
                le_prev: core::ptr::null_mut(),
            },
            refs: 0,
        }
    }

    fn writer(node: Node<'_>) -> Writer<'_, T> {
        Writer {
            node,
            _t: PhantomData,
        }
    }

    fn reader(node: Node<'_>) -> Reader<'_, T> {
        Reader {
            node,
            _t: PhantomData,
        }
    }

    /// `mod_event` (`modeventhand_t`).
    ///
    /// # Safety
    ///
    /// Called by netgraph only (`ng_mod_event`), for `T`'s module.
    unsafe extern "C" fn mod_event(_m: module_t, event: c_int, _d: *mut c_void) -> c_int {
        #[allow(clippy::cast_sign_loss)]
        let ev = match event as u32 {
            fbsd_sys::MOD_LOAD => ModEvent::Load,
            fbsd_sys::MOD_UNLOAD => ModEvent::Unload,
            fbsd_sys::MOD_QUIESCE => ModEvent::Quiesce,
            fbsd_sys::MOD_SHUTDOWN => ModEvent::Shutdown,
            _ => ModEvent::Other(event),
        };
        to_raw(T::mod_event(ev))
    }

    /// `constructor` (`ng_constructor_t`).
    ///
    /// # Safety
    ///
    /// Called by netgraph only, with a referenced node of type `T` that no
    /// other method can run on yet.
    unsafe extern "C" fn constructor(node: node_p) -> c_int {
        // SAFETY: netgraph passes a node referenced for the call.
        match unsafe { Node::from_raw(node) } {
            Some(n) => to_raw(T::constructor(Self::writer(n))),
            None => Errno::EINVAL.raw(),
        }
    }

    /// `rcvmsg` (`ng_rcvmsg_t`): netgraph applies a message as a reader
    /// exactly when its command has `NGM_READONLY`, as a writer otherwise.
    ///
    /// # Safety
    ///
    /// Called by netgraph only, inside the gate of `node` (of type `T`),
    /// handing over `item`; `lasthook` is NULL or a hook of the node.
    unsafe extern "C" fn rcvmsg(node: node_p, item: item_p, lasthook: hook_p) -> c_int {
        // SAFETY: rcvmsg owns the item whatever it returns; node and
        // lasthook (possibly NULL) are referenced for the call.
        let (item, node, hook) = unsafe {
            (
                Item::from_raw(item),
                Node::from_raw(node),
                Hook::from_raw(lasthook),
            )
        };
        let (Some(node), Some(mut item)) = (node, item) else {
            return Errno::EINVAL.raw();
        };
        let Some(msg) = item.take_msg() else {
            return Errno::EINVAL.raw();
        };
        if msg.is_readonly() {
            to_raw(T::rcvmsg_readonly(Self::reader(node), item, msg, hook))
        } else {
            to_raw(T::rcvmsg(Self::writer(node), item, msg, hook))
        }
    }

    /// `shutdown` (`ng_shutdown_t`).
    ///
    /// # Safety
    ///
    /// Called by netgraph only, as the writer of `node` (of type `T`), once.
    unsafe extern "C" fn shutdown(node: node_p) -> c_int {
        // SAFETY: netgraph passes a referenced node.
        if let Some(n) = unsafe { Node::from_raw(node) } {
            T::shutdown(Self::writer(n));
            // SAFETY: a shutdown method drops the creation reference exactly
            // once; our types never revive a node being shut down.
            unsafe { fbsd_sys::ng_unref_node(n.as_ptr()) };
        }
        0
    }

    /// `newhook` (`ng_newhook_t`).
    ///
    /// # Safety
    ///
    /// Called by netgraph only, as the writer of `node` (of type `T`; or on
    /// a node nobody else can reach yet, in `NGM_MKPEER`), with a hook of
    /// the node and its NUL-terminated name.
    unsafe extern "C" fn newhook(node: node_p, hook: hook_p, name: *const c_char) -> c_int {
        // SAFETY: node and hook are referenced for the call; name is NULL
        // or a NUL-terminated string owned by netgraph for the call.
        let (n, h, name) = unsafe { (Node::from_raw(node), Hook::from_raw(hook), cstr_arg(name)) };
        match (n, h) {
            (Some(n), Some(h)) => to_raw(T::newhook(Self::writer(n), h, name)),
            _ => Errno::EINVAL.raw(),
        }
    }

    /// `findhook` (`ng_findhook_t`): the hook stays attached (netgraph
    /// calls this under its topology lock), so the pointer returned after
    /// our reference is dropped is the node's own.
    ///
    /// # Safety
    ///
    /// Called by netgraph only, with a referenced node of type `T` and a
    /// NUL-terminated name.
    unsafe extern "C" fn findhook(node: node_p, name: *const c_char) -> hook_p {
        // SAFETY: as for newhook.
        let (n, name) = unsafe { (Node::from_raw(node), cstr_arg(name)) };
        let found = n.and_then(|n| T::findhook(n, &Private::<T>::of(n)?, name));
        found.map_or(core::ptr::null_mut::<ng_hook>(), |r| r.hook().as_ptr())
    }

    /// `connect` (`ng_connect_t`).
    ///
    /// # Safety
    ///
    /// Called by netgraph only, with a referenced hook attached to a node
    /// of type `T`, as that node's writer (or on a new node, in
    /// `NGM_MKPEER`).
    unsafe extern "C" fn connect(hook: hook_p) -> c_int {
        // SAFETY: netgraph passes a referenced hook, attached to its node.
        let Some(h) = (unsafe { Hook::from_raw(hook) }) else {
            return Errno::EINVAL.raw();
        };
        match h.node() {
            Some(n) => to_raw(T::connect(Self::writer(n), h)),
            None => Errno::EINVAL.raw(),
        }
    }

    /// `rcvdata` (`ng_rcvdata_t`).
    ///
    /// # Safety
    ///
    /// Called by netgraph only, as a reader of the node (of type `T`) the
    /// referenced `hook` belongs to, handing over `item`.
    unsafe extern "C" fn rcvdata(hook: hook_p, item: item_p) -> c_int {
        // SAFETY: rcvdata owns the item (and its mbuf) whatever it returns;
        // the hook is referenced.
        let (h, i) = unsafe { (Hook::from_raw(hook), Item::from_raw(item)) };
        match (h, i, h.and_then(Hook::node)) {
            (Some(h), Some(i), Some(n)) => to_raw(T::rcvdata(Self::reader(n), h, i)),
            _ => Errno::EINVAL.raw(),
        }
    }

    /// `disconnect` (`ng_disconnect_t`).
    ///
    /// # Safety
    ///
    /// Called by netgraph only, with a referenced hook still pointing at
    /// its node (of type `T`), from that node's writer context.
    unsafe extern "C" fn disconnect(hook: hook_p) -> c_int {
        // SAFETY: netgraph passes a referenced hook.
        if let Some(h) = unsafe { Hook::from_raw(hook) } {
            if let Some(n) = h.node() {
                T::disconnect(Self::writer(n), h);
            }
        }
        0
    }

    /// A function item (`ng_item_fn`) sent with [`NodeFn::of`]. Function
    /// items run as writers of the node they were sent to, which may be of
    /// another type than `T`: that is checked.
    ///
    /// # Safety
    ///
    /// Called by netgraph only, as the writer of a referenced node.
    unsafe extern "C" fn function(node: node_p, _hook: hook_p, _arg1: *mut c_void, arg2: c_int) {
        // SAFETY: netgraph runs function items as writers of a referenced
        // node.
        if let Some(n) = unsafe { Node::from_raw(node) } {
            if n.is_of(T::record()) {
                T::function(Self::writer(n), arg2);
            }
        }
    }
}
