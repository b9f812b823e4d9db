//! `struct ngpcb` and the global `ngsocklist`: the ng_socket protocol
//! control block, whose layout and list `netstat -f netgraph` reads through
//! kvm, so both follow FreeBSD's ABI exactly.

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use fbsd_sys::{mtx, socket};

use super::sync::KArc;

/// The PCB of a netgraph socket; `D` is the node private data it links to.
#[repr(C)]
pub struct NgPcb<D> {
    so: core::ptr::NonNull<socket>,
    sockdata: AtomicPtr<c_void>,
    next: AtomicPtr<NgPcb<D>>,
    prev: AtomicPtr<AtomicPtr<NgPcb<D>>>,
    ty: i32,
    node_id: AtomicU32,
    _d: core::marker::PhantomData<D>,
}

const _: () = {
    assert!(core::mem::size_of::<NgPcb<u8>>() == core::mem::size_of::<fbsd_sys::ngpcb>());
    assert!(
        core::mem::offset_of!(NgPcb<u8>, so) == core::mem::offset_of!(fbsd_sys::ngpcb, ng_socket)
    );
    assert!(
        core::mem::offset_of!(NgPcb<u8>, sockdata)
            == core::mem::offset_of!(fbsd_sys::ngpcb, sockdata)
    );
    assert!(
        core::mem::offset_of!(NgPcb<u8>, next) == core::mem::offset_of!(fbsd_sys::ngpcb, socks)
    );
    assert!(core::mem::offset_of!(NgPcb<u8>, ty) == core::mem::offset_of!(fbsd_sys::ngpcb, type_));
    assert!(
        core::mem::offset_of!(NgPcb<u8>, node_id)
            == core::mem::offset_of!(fbsd_sys::ngpcb, node_id)
    );
};

// SAFETY: the socket pointer is immutable after creation; everything else is
// atomic or protected by the list mutex.
unsafe impl<D: Send + Sync> Send for NgPcb<D> {}
// SAFETY: as above.
unsafe impl<D: Send + Sync> Sync for NgPcb<D> {}

#[repr(C)]
struct ListHead<D> {
    first: AtomicPtr<NgPcb<D>>,
}

extern "C" {
    /// `LIST_HEAD(, ngpcb) ngsocklist` in the glue (global, for netstat).
    static ngsocklist: ListHead<c_void>;
    /// Its mutex, initialised and destroyed by MTX_SYSINIT in the glue.
    static mut ngsocklist_mtx: mtx;
}

fn list_first<D: 'static>() -> &'static AtomicPtr<NgPcb<D>> {
    // SAFETY: the list head is a static pointer cell with the layout of an
    // AtomicPtr; the element type parameter only affects Rust's view.
    unsafe { &*(&raw const ngsocklist.first).cast::<AtomicPtr<NgPcb<D>>>() }
}

struct ListLock;

impl ListLock {
    fn take() -> Self {
        // SAFETY: the mutex is initialised by its SYSINIT before the domain
        // (hence any socket) exists and destroyed after it is gone.
        unsafe { super::ffi::ngsock_mtx_lock(&raw mut ngsocklist_mtx) };
        ListLock
    }
}

impl Drop for ListLock {
    fn drop(&mut self) {
        // SAFETY: held since `take`.
        unsafe { super::ffi::ngsock_mtx_unlock(&raw mut ngsocklist_mtx) }
    }
}

impl<D: Send + Sync + 'static> NgPcb<D> {
    /// A new PCB for socket `so` of protocol `ty` (NG_CONTROL or NG_DATA),
    /// linked at the head of `ngsocklist`.
    pub fn create(
        so: super::sockproto::ProtoSocket,
        ty: i32,
        mt: super::malloc::MallocType,
    ) -> super::errno::KResult<KArc<Self>> {
        let pcb = KArc::try_new(
            NgPcb {
                so: so.as_nonnull(),
                sockdata: AtomicPtr::new(core::ptr::null_mut()),
                next: AtomicPtr::new(core::ptr::null_mut()),
                prev: AtomicPtr::new(core::ptr::null_mut()),
                ty,
                node_id: AtomicU32::new(0),
                _d: core::marker::PhantomData,
            },
            mt,
        )?;
        let _l = ListLock::take();
        let head = list_first::<D>();
        let me: *const NgPcb<D> = &*pcb;
        let old = head.load(Ordering::Relaxed);
        pcb.next.store(old, Ordering::Relaxed);
        if let Some(o) = core::ptr::NonNull::new(old) {
            // SAFETY: list members are live PCBs (unlinked before being freed).
            unsafe { o.as_ref() }
                .prev
                .store((&raw const pcb.next).cast_mut(), Ordering::Relaxed);
        }
        head.store(me.cast_mut(), Ordering::Relaxed);
        pcb.prev.store(
            (head as *const AtomicPtr<NgPcb<D>>).cast_mut(),
            Ordering::Relaxed,
        );
        Ok(pcb)
    }

    /// Unlinks the PCB from `ngsocklist` (from `pr_detach`).
    pub fn unlink(&self) {
        let _l = ListLock::take();
        let next = self.next.load(Ordering::Relaxed);
        let prev = self.prev.load(Ordering::Relaxed);
        if let Some(n) = core::ptr::NonNull::new(next) {
            // SAFETY: list members are live PCBs.
            unsafe { n.as_ref() }.prev.store(prev, Ordering::Relaxed);
        }
        if let Some(p) = core::ptr::NonNull::new(prev) {
            // SAFETY: `prev` points at the previous member's `next` or the head.
            unsafe { p.as_ref() }.store(next, Ordering::Relaxed);
        }
        self.next.store(core::ptr::null_mut(), Ordering::Relaxed);
        self.prev.store(core::ptr::null_mut(), Ordering::Relaxed);
    }

    /// True when no netgraph socket exists.
    pub fn list_is_empty() -> bool {
        let _l = ListLock::take();
        list_first::<D>().load(Ordering::Relaxed).is_null()
    }

    /// NG_CONTROL or NG_DATA.
    pub fn kind(&self) -> i32 {
        self.ty
    }

    /// The socket this PCB belongs to.
    pub fn socket(&self) -> super::sockproto::ProtoSocket {
        // SAFETY: the PCB lives no longer than its socket (freed in pr_detach).
        unsafe { super::sockproto::ProtoSocket::from_nonnull(self.so) }
    }

    /// Sets the node-ID hint netstat prints.
    pub fn set_node_id(&self, id: u32) {
        self.node_id.store(id, Ordering::Relaxed);
    }

    /// Links the node private data (a counted reference moves into the PCB).
    /// `EISCONN` if already linked.
    pub fn link(&self, d: KArc<D>) -> super::errno::KResult<()> {
        let raw = d.into_raw();
        if self
            .sockdata
            .compare_exchange(
                core::ptr::null_mut(),
                raw,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: `raw` came from into_raw just above; take it back.
            drop(unsafe { KArc::<D>::from_raw(raw) });
            return Err(super::errno::Errno::EISCONN);
        }
        Ok(())
    }

    /// A new reference to the linked private data, if any.
    pub fn data(&self) -> Option<KArc<D>> {
        // SAFETY: sockdata holds a KArc<D> reference or NULL; it is cleared
        // only by `unlink_data`, called from pr_detach, which the socket
        // layer never runs concurrently with another method of this socket.
        unsafe { KArc::clone_raw(self.sockdata.load(Ordering::Acquire)) }
    }

    /// Removes the private-data link, returning its reference.
    pub fn unlink_data(&self) -> Option<KArc<D>> {
        let p = self.sockdata.swap(core::ptr::null_mut(), Ordering::AcqRel);
        self.node_id.store(0, Ordering::Relaxed);
        // SAFETY: the slot's reference moves to the caller.
        unsafe { KArc::from_raw(p) }
    }
}
