//! The adapter from a [`NodeType`] to the C method table (`struct
//! ng_type`): the trampolines netgraph calls, where its raw pointers become
//! [`Node`], [`Hook`] and [`Item`] values and the gate tokens are made.

#[allow(clippy::wildcard_imports)]
use super::*;

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
pub(super) struct Adapter<T: NodeType>(PhantomData<T>);

impl<T: NodeType> Adapter<T> {
    pub(super) const fn record(name: &'static CStr, cmdlist: *const ng_cmdlist) -> ng_type {
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
            rcvdata: Some(Self::rcvdata_variant::<0>),
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
            adding: None,
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
            T::shutdown(Dying(Self::writer(n)));
            // Whatever the method left installed goes now.
            drop(Dying(Self::writer(n)).take());
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
            // A hook is only added to a node with private data (which
            // `DataReader` relies on).
            (Some(n), Some(h)) if !private_field(n).load(Ordering::Acquire).is_null() => {
                let mut w = Self::writer(n);
                w.adding = Some(h);
                let r = T::newhook(w, h, name);
                if r.is_err() {
                    // SAFETY: the hook is of our node, whose writer we are.
                    drop(unsafe { take_hook_data::<T>(h) });
                }
                to_raw(r)
            }
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

    /// `rcvdata` (`ng_rcvdata_t`): the hottest entry point, so it trusts
    /// netgraph's calling contract instead of re-checking it (as FreeBSD's
    /// own node types do): a non-NULL hook attached to a node of type `T`,
    /// and a data item.
    ///
    /// # Safety
    ///
    /// Called by netgraph only, as a reader of the node (of type `T`) the
    /// referenced, non-NULL `hook` belongs to (`hk_node` is never NULL: a
    /// removed hook points to netgraph's dead node), handing over the
    /// non-NULL data item `item`.
    /// Variant `V` of the data path: `V` reaches `T::rcvdata` as a constant
    /// ([`DataHook::variant`]); 0 is the type's entry point, the others
    /// are set on hooks by [`Writer::set_data_variant`].
    pub(super) unsafe extern "C" fn rcvdata_variant<const V: u32>(
        hook: hook_p,
        item: item_p,
    ) -> c_int {
        // SAFETY: see above: both pointers are non-NULL; rcvdata owns the
        // item (and its mbuf) whatever it returns; the hook is referenced
        // and attached to its node, which it keeps referenced.
        let (h, i, n) = unsafe {
            let h = Hook::from_nonnull(NonNull::new_unchecked(hook));
            let i = DataItem::from_raw(NonNull::new_unchecked(item));
            (h, i, h.node_unchecked())
        };
        // SAFETY: data arrives on a hook; a hook exists only on a node whose
        // private data is installed (our newhook checks), and the data is
        // taken only by shutdown, after every hook is gone: nd_private is a
        // live Private<T> for the call (see DataReader).
        let p = unsafe {
            KArc::<NodePrivate<T::Shared, T::State, T::Linked>>::borrow_raw_nonnull(
                private_field(n).load(Ordering::Acquire),
            )
        };
        let dh = DataHook {
            hook: h,
            variant: V,
            _t: PhantomData,
        };
        to_raw(T::rcvdata(DataReader { node: n, p }, dh, i))
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
            // The hook goes: so does its data.
            // SAFETY: a hook of a node of type T, whose writer context this
            // is (netgraph calls disconnect so).
            drop(unsafe { take_hook_data::<T>(h) });
        }
        0
    }

    /// A function item (`ng_item_fn`) from [`NodeFn::typed`]: as
    /// [`Adapter::function`], with the argument `A`, for a node known to be
    /// of type `T`.
    ///
    /// # Safety
    ///
    /// Called by netgraph only, as the writer of a referenced, non-NULL
    /// node of type `T` (the kernel layer queues it only for a
    /// [`TypedNode`] of `T`).
    pub(super) unsafe extern "C" fn function_typed<const A: i32>(
        node: node_p,
        _hook: hook_p,
        _arg1: *mut c_void,
        _arg2: c_int,
    ) {
        // SAFETY: netgraph runs function items as writers of a referenced
        // node, which it never passes as NULL; it is of type T (caller).
        let n = unsafe { Node::from_nonnull(NonNull::new_unchecked(node)) };
        T::function(Self::writer(n), A);
    }

    /// A function item (`ng_item_fn`) from [`NodeFn::event`].
    ///
    /// # Safety
    ///
    /// Called by netgraph only, as the writer of a referenced, non-NULL
    /// node of type `T` whose private data is installed (the kernel layer
    /// queues it only for an [`Installed`] node: see there why it still is).
    pub(super) unsafe extern "C" fn event_entry<const A: i32>(
        node: node_p,
        _hook: hook_p,
        _arg1: *mut c_void,
        _arg2: c_int,
    ) {
        // SAFETY: netgraph runs function items as writers of a referenced
        // node, which it never passes as NULL; it is of type T with its
        // private data installed (caller).
        let (n, p) = unsafe {
            let n = Node::from_nonnull(NonNull::new_unchecked(node));
            let p = KArc::<NodePrivate<T::Shared, T::State, T::Linked>>::borrow_raw_nonnull(
                private_field(n).load(Ordering::Acquire),
            );
            (n, p)
        };
        T::event(Event { node: n, p }, A);
    }

    /// A function item (`ng_item_fn`) sent with [`NodeFn::of`]. Function
    /// items run as writers of the node they were sent to, which may be of
    /// another type than `T`: that is checked.
    ///
    /// # Safety
    ///
    /// Called by netgraph only, as the writer of a referenced node.
    pub(super) unsafe extern "C" fn function(
        node: node_p,
        _hook: hook_p,
        _arg1: *mut c_void,
        arg2: c_int,
    ) {
        // SAFETY: netgraph runs function items as writers of a referenced
        // node.
        if let Some(n) = unsafe { Node::from_raw(node) } {
            if n.is_of(T::record()) {
                T::function(Self::writer(n), arg2);
            }
        }
    }
}
