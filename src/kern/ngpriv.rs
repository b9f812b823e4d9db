//! Node types whose private data follows netgraph's node gate, with no
//! lock on the data path.
//!
//! Netgraph serialises the methods of one node with a reader/writer gate:
//! writers (messages without `NGM_READONLY`, function items, newhook,
//! connect, disconnect, shutdown, the constructor) run alone; readers (data
//! items, read-only messages) run alongside other readers but never
//! alongside a writer. Socket upcalls run outside the gate, at any time.
//!
//! This module turns that into types:
//! * [`NodePrivate<S, X>`] is what `nd_private` points to: a part `S` that
//!   any context may use (it must be `Sync`: atomics), and a part `X` reached
//!   only through a gate token.
//! * [`Writer`] proves that the running code is the node's writer;
//!   [`PrivSlot::write`] then yields `&mut X`. [`Reader`] proves that no
//!   writer runs; [`PrivSlot::read`] yields `&X`.
//! * [`GatedAdapter`] turns a [`GatedType`] into the C method table and is
//!   the only place tokens are created, from netgraph's calling contract. It
//!   also provides the entry points for socket upcalls (node as argument)
//!   and for function items (`ng_send_fn`), which run as writers.
//!
//! `nd_private` is read and written with atomic operations (acquire/release),
//! so a node that is reachable (by ID) before its private data is installed,
//! as an accepted ksocket clone is, never exposes half-initialised data.

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use fbsd_sys::{hook_p, item_p, ng_cmdlist, ng_node, ng_type, node_p, socket};

use super::cell::KernelCell;
use super::errno::{to_raw, Errno, KResult};
use super::malloc::{KBox, MallocType};
use super::netgraph::{Hook, Item, Msg, Node, NodeFn};
use super::ngops::node_type;

/// A socket upcall (`so_upcall_t`): called with the socket-buffer (or
/// listen) lock held, must not sleep, returns `SU_OK`.
pub type Upcall = unsafe extern "C" fn(so: *mut socket, arg: *mut c_void, waitflag: c_int) -> c_int;

/// The data a node's `nd_private` points to.
pub struct NodePrivate<S, X> {
    shared: S,
    excl: UnsafeCell<X>,
}

// SAFETY: `shared` is accessed through `&S` from any thread, which `S: Sync`
// allows. `excl` is only reached through the gate tokens: `&mut X` by the
// node's single writer, `&X` by readers that never overlap a writer (hence
// `X: Sync` for concurrent readers and `X: Send` because successive writers
// run on different threads).
unsafe impl<S: Sync, X: Send + Sync> Sync for NodePrivate<S, X> {}
// SAFETY: moving the whole value moves `S` and `X`, both `Send`.
unsafe impl<S: Send, X: Send> Send for NodePrivate<S, X> {}

impl<S, X> NodePrivate<S, X> {
    /// The part every context may use.
    pub fn shared(&self) -> &S {
        &self.shared
    }

    /// Both parts, for the owner of a value not (or no longer) installed.
    pub fn parts_mut(&mut self) -> (&S, &mut X) {
        (&self.shared, self.excl.get_mut())
    }
}

/// Proof that the running code has exclusive access to a node's state.
pub struct Writer<'a> {
    node: Node<'a>,
}

impl<'a> Writer<'a> {
    /// The node.
    pub fn node(&self) -> Node<'a> {
        self.node
    }
}

/// Proof that no writer of the node runs while the token lives.
pub struct Reader<'a> {
    node: Node<'a>,
}

impl<'a> Reader<'a> {
    /// The node.
    pub fn node(&self) -> Node<'a> {
        self.node
    }
}

/// How a node type finds its [`NodePrivate`] in `nd_private`.
///
/// Only nodes of the type record `ty` are accepted, so a pointer installed by
/// another type is never reinterpreted.
pub struct PrivSlot<S, X> {
    ty: *const ng_type,
    mtype: fn() -> MallocType,
    _data: PhantomData<fn() -> (S, X)>,
}

// SAFETY: the slot only holds the address of a static type record (never
// dereferenced here) and a function pointer.
unsafe impl<S, X> Sync for PrivSlot<S, X> {}

fn private_field<'a>(node: Node<'a>) -> &'a AtomicPtr<c_void> {
    // SAFETY: `nd_private` is a pointer-sized, pointer-aligned field of a node
    // netgraph keeps referenced for 'a. For nodes of a gated type every access
    // goes through this atomic view (the kernel itself only uses it through
    // the type's own methods).
    unsafe { AtomicPtr::from_ptr(&raw mut (*node.as_ptr()).nd_private) }
}

impl<S: Send + Sync, X: Send + Sync> PrivSlot<S, X> {
    /// A slot for nodes of type `ty`, whose private data is allocated with
    /// the malloc type `mtype` returns.
    pub const fn new(ty: *const ng_type, mtype: fn() -> MallocType) -> Self {
        PrivSlot {
            ty,
            mtype,
            _data: PhantomData,
        }
    }

    /// Allocates private data (not yet attached to a node), without sleeping.
    pub fn alloc(&self, shared: S, excl: X) -> KResult<KBox<NodePrivate<S, X>>> {
        KBox::try_new(
            NodePrivate {
                shared,
                excl: UnsafeCell::new(excl),
            },
            (self.mtype)(),
        )
    }

    /// Attaches `p` to `node` (release store). Fails, handing `p` back, when
    /// the node is not of this slot's type or already has private data.
    pub fn install(
        &self,
        node: Node<'_>,
        p: KBox<NodePrivate<S, X>>,
    ) -> Result<(), KBox<NodePrivate<S, X>>> {
        if node_type(node) != self.ty {
            return Err(p);
        }
        let raw = KBox::into_raw(p);
        match private_field(node).compare_exchange(
            core::ptr::null_mut(),
            raw.cast::<c_void>(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(_) => match NonNull::new(raw) {
                // SAFETY: `raw` came from `into_raw` just above with this
                // slot's malloc type and was not published.
                Some(p) => Err(unsafe { KBox::from_raw(p, (self.mtype)()) }),
                None => Ok(()),
            },
        }
    }

    fn load(&self, node: Node<'_>) -> Option<NonNull<NodePrivate<S, X>>> {
        if node_type(node) != self.ty {
            return None;
        }
        NonNull::new(
            private_field(node)
                .load(Ordering::Acquire)
                .cast::<NodePrivate<S, X>>(),
        )
    }

    /// The node's state, writable; `None` when it has no private data.
    pub fn write<'g>(&self, g: &'g mut Writer<'_>) -> Option<(&'g S, &'g mut X)> {
        let p = self.load(g.node)?;
        // SAFETY: the pointer was installed by `install` and stays valid
        // until `take`, which needs the writer token by value (so not while
        // this borrow of it lives). The writer token guarantees that no other
        // reference to `excl` exists.
        unsafe {
            let p = p.as_ptr();
            Some((&(*p).shared, &mut *(*p).excl.get()))
        }
    }

    /// The node's state, read-only; `None` when it has no private data.
    pub fn read<'g>(&self, g: &'g Reader<'_>) -> Option<(&'g S, &'g X)> {
        let p = self.load(g.node)?;
        // SAFETY: as in `write`; the reader token guarantees that no writer
        // (the only source of `&mut X`) runs while the borrow lives, and a
        // reader never frees the data.
        unsafe {
            let p = p.as_ptr();
            Some((&(*p).shared, &*(*p).excl.get()))
        }
    }

    /// Detaches the private data from the node (shutdown) and hands it back.
    pub fn take(&self, g: Writer<'_>) -> Option<KBox<NodePrivate<S, X>>> {
        if node_type(g.node) != self.ty {
            return None;
        }
        let raw = private_field(g.node).swap(core::ptr::null_mut(), Ordering::AcqRel);
        let p = NonNull::new(raw.cast::<NodePrivate<S, X>>())?;
        // SAFETY: the pointer came from `install` (KBox::into_raw with this
        // slot's malloc type) and is no longer reachable from the node.
        Some(unsafe { KBox::from_raw(p, (self.mtype)()) })
    }

    /// The shared part, for an upcall (outside the gate). The type must
    /// remove its upcalls (under the socket-buffer or listen lock, which
    /// waits for a running upcall) before shutdown frees the data.
    fn shared_for_upcall<'a>(&self, node: Node<'a>) -> Option<&'a S> {
        let p = self.load(node)?;
        // SAFETY: upcalls registered with a node of this type as argument are
        // removed before `take` (GatedType contract), so the data outlives
        // the upcall invocation; `S` is Sync.
        Some(unsafe { &(*p.as_ptr()).shared })
    }
}

/// A node type whose private data is a [`NodePrivate`] in a [`PrivSlot`],
/// reached through gate tokens. Every method receives the token netgraph's
/// calling contract allows.
///
/// Contract for implementors: socket upcalls registered with
/// [`GatedAdapter::BUF_UPCALL`] / [`GatedAdapter::LISTEN_UPCALL`] must take
/// the node (`node.as_ptr()`) as their argument and must be removed before
/// the private data is taken in `shutdown`.
pub trait GatedType: 'static + Sized {
    /// The part of the private data any context may use.
    type Shared: Send + Sync;
    /// The part reached through the gate.
    type State: Send + Sync;
    /// Where the private data lives (a `static`).
    fn slot() -> &'static PrivSlot<Self::Shared, Self::State>;

    /// Constructor (NGM_MKPEER): install private data.
    fn constructor(w: Writer<'_>) -> KResult<()>;
    /// A control message whose command lacks `NGM_READONLY` (writer).
    fn rcvmsg(w: Writer<'_>, item: Item, msg: Msg, lasthook: Option<Hook<'_>>) -> KResult<()>;
    /// A control message with `NGM_READONLY` (reader); by default refused
    /// with `EINVAL` (item and message freed).
    fn rcvmsg_readonly(
        _r: Reader<'_>,
        _item: Item,
        _msg: Msg,
        _lasthook: Option<Hook<'_>>,
    ) -> KResult<()> {
        Err(Errno::EINVAL)
    }
    /// Shutdown: free the private data; the adapter then drops the node's
    /// creation reference.
    fn shutdown(w: Writer<'_>);
    /// A hook is being added.
    fn newhook(w: Writer<'_>, hook: Hook<'_>) -> KResult<()>;
    /// A hook finished connecting.
    fn connect(w: Writer<'_>, hook: Hook<'_>) -> KResult<()>;
    /// Data arrived on a hook (reader).
    fn rcvdata(r: Reader<'_>, hook: Hook<'_>, item: Item) -> KResult<()>;
    /// A hook is being removed.
    fn disconnect(w: Writer<'_>, hook: Hook<'_>);
    /// A function item sent with [`GatedAdapter::FUNCTION`] (writer).
    fn function(w: Writer<'_>, arg: i32);
    /// A socket upcall (outside the gate: only the shared part is
    /// available); `listen` tells the listen upcall from a buffer upcall.
    fn upcall(node: Node<'_>, shared: &Self::Shared, waitflag: i32, listen: bool);
}

/// The adapter from a [`GatedType`] to the C entry points.
pub struct GatedAdapter<T: GatedType>(PhantomData<T>);

impl<T: GatedType> GatedAdapter<T> {
    /// The `struct ng_type` record, named `name`, with `cmdlist` (NULL for
    /// none): constructor, rcvmsg, shutdown, newhook, connect, rcvdata,
    /// disconnect. Register it by address (a `KernelCell` static).
    pub const fn record(name: &'static core::ffi::CStr, cmdlist: *const ng_cmdlist) -> ng_type {
        ng_type {
            version: fbsd_sys::NG_ABI_VERSION,
            name: name.as_ptr(),
            mod_event: None,
            constructor: Some(Self::constructor),
            rcvmsg: Some(Self::rcvmsg),
            close: None,
            shutdown: Some(Self::shutdown),
            newhook: Some(Self::newhook),
            findhook: None,
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

    /// The entry point of function items (see [`GatedType::function`]).
    pub const FUNCTION: NodeFn = Self::function;
    /// The buffer upcall (see [`GatedType::upcall`]).
    pub const BUF_UPCALL: Upcall = Self::upcall::<false>;
    /// The listen upcall (see [`GatedType::upcall`]).
    pub const LISTEN_UPCALL: Upcall = Self::upcall::<true>;

    unsafe extern "C" fn constructor(node: node_p) -> c_int {
        // SAFETY: netgraph passes a referenced node; the constructor runs
        // before anything else can use the node's private data.
        match unsafe { Node::from_raw(node) } {
            Some(n) => to_raw(T::constructor(Writer { node: n })),
            None => Errno::EINVAL.raw(),
        }
    }

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
        // Netgraph applies a message as a reader exactly when its command
        // has NGM_READONLY, as a writer otherwise.
        if msg.header().cmd & fbsd_sys::NGM_READONLY != 0 {
            to_raw(T::rcvmsg_readonly(Reader { node }, item, msg, hook))
        } else {
            to_raw(T::rcvmsg(Writer { node }, item, msg, hook))
        }
    }

    unsafe extern "C" fn shutdown(node: node_p) -> c_int {
        // SAFETY: netgraph passes a referenced node; shutdown is a writer.
        if let Some(n) = unsafe { Node::from_raw(node) } {
            T::shutdown(Writer { node: n });
            // SAFETY: a shutdown method drops the creation reference exactly
            // once; gated types never revive their nodes.
            unsafe { n.unref() };
        }
        0
    }

    unsafe extern "C" fn newhook(node: node_p, hook: hook_p, _name: *const c_char) -> c_int {
        // SAFETY: node and hook are referenced for the call; newhook is a
        // writer (or runs on a node nobody else can reach yet, in MKPEER).
        match unsafe { (Node::from_raw(node), Hook::from_raw(hook)) } {
            (Some(n), Some(h)) => to_raw(T::newhook(Writer { node: n }, h)),
            _ => Errno::EINVAL.raw(),
        }
    }

    unsafe extern "C" fn connect(hook: hook_p) -> c_int {
        // SAFETY: netgraph passes a referenced hook, attached to its node;
        // connect is a writer of that node (or runs on a new node, in MKPEER).
        let Some(h) = (unsafe { Hook::from_raw(hook) }) else {
            return Errno::EINVAL.raw();
        };
        match h.node() {
            Some(n) => to_raw(T::connect(Writer { node: n }, h)),
            None => Errno::EINVAL.raw(),
        }
    }

    unsafe extern "C" fn rcvdata(hook: hook_p, item: item_p) -> c_int {
        // SAFETY: rcvdata owns the item (and its mbuf) whatever it returns;
        // the hook is referenced; data items are readers of the node.
        let (h, i) = unsafe { (Hook::from_raw(hook), Item::from_raw(item)) };
        match (h, i, h.and_then(Hook::node)) {
            (Some(h), Some(i), Some(n)) => to_raw(T::rcvdata(Reader { node: n }, h, i)),
            _ => Errno::EINVAL.raw(),
        }
    }

    unsafe extern "C" fn disconnect(hook: hook_p) -> c_int {
        // SAFETY: netgraph passes a referenced hook still pointing at its
        // node; disconnect runs from the node's writer context (RMHOOK,
        // hook removal function, shutdown).
        if let Some(h) = unsafe { Hook::from_raw(hook) } {
            if let Some(n) = h.node() {
                T::disconnect(Writer { node: n }, h);
            }
        }
        0
    }

    unsafe extern "C" fn function(node: node_p, _hook: hook_p, _arg1: *mut c_void, arg2: c_int) {
        // SAFETY: netgraph runs function items as writers of a referenced,
        // valid node.
        if let Some(n) = unsafe { Node::from_raw(node) } {
            T::function(Writer { node: n }, arg2);
        }
    }

    unsafe extern "C" fn upcall<const LISTEN: bool>(
        _so: *mut socket,
        arg: *mut c_void,
        waitflag: c_int,
    ) -> c_int {
        // SAFETY: the argument registered with this upcall is the node
        // (GatedType contract), which stays referenced and keeps its private
        // data until the upcall is removed, under the lock held here.
        let node = unsafe { Node::from_raw(arg.cast::<ng_node>()) };
        if let Some(n) = node {
            if let Some(shared) = T::slot().shared_for_upcall(n) {
                T::upcall(n, shared, waitflag, LISTEN);
            }
        }
        #[allow(clippy::cast_possible_wrap)]
        {
            fbsd_sys::SU_OK as c_int
        }
    }
}

/// A node created by its own type (accept's clone), owning its creation
/// reference until [`FreshNode::commit`]. Dropping it instead drops that
/// reference, which frees the node without running any method — as FreeBSD
/// does when creating a clone fails; no private data may be installed then.
pub struct FreshNode {
    raw: NonNull<ng_node>,
}

impl FreshNode {
    /// `ng_make_node_common(ty)`: a node of type `ty` (the caller's own,
    /// registered type record) with no private data.
    pub fn create(ty: &'static KernelCell<ng_type>) -> KResult<FreshNode> {
        let mut raw: *mut ng_node = core::ptr::null_mut();
        // SAFETY: `ty` is a static type record; ng_make_node_common checks
        // that it is registered (EINVAL otherwise). The node is returned
        // referenced once (the creation reference).
        let err = unsafe { fbsd_sys::ng_make_node_common(ty.get(), &mut raw) };
        Errno::check(err)?;
        NonNull::new(raw)
            .map(|raw| FreshNode { raw })
            .ok_or(Errno::ENOMEM)
    }

    /// The node.
    pub fn node(&self) -> Node<'_> {
        // SAFETY: the creation reference is held while `self` lives.
        unsafe { Node::from_nonnull(self.raw) }
    }

    /// Hands the creation reference to the node itself: from now on its
    /// shutdown method drops it.
    pub fn commit(self) {
        core::mem::forget(self);
    }
}

impl Drop for FreshNode {
    fn drop(&mut self) {
        #[allow(clippy::cast_possible_wrap)]
        const NGF_INVALID: i32 = fbsd_sys::NGF_INVALID as i32;
        // SAFETY: the creation reference is owned and dropped once. The node
        // is marked invalid first: it is being discarded, so nothing that
        // finds it by ID in the meantime may use it (FreeBSD frees a valid
        // node here alike; the flag only makes the discard explicit).
        unsafe {
            (*self.raw.as_ptr()).nd_flags |= NGF_INVALID;
            fbsd_sys::ng_unref_node(self.raw.as_ptr());
        }
    }
}
