//! `struct ngpcb` and the global `ngsocklist`: the protocol control block
//! of a netgraph socket, whose layout and list `netstat -f netgraph` reads
//! from kernel memory, so both follow FreeBSD's ABI (the glue asserts the
//! C offsets the constants below repeat).

use core::pin::Pin;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::kern::errno::{Errno, KResult};
use crate::kern::list::{ExternList, ListEntry};
use crate::kern::netgraph::Private;
use crate::kern::sockproto::{Detaching, SocketId};
use crate::kern::sync::ArcSlot;

use super::proto::NgProto;
use super::{NgSock, SocketType};

/// The PCB of a netgraph socket.
#[repr(C)]
pub struct NgPcb {
    /// `ng_socket`: the socket (for netstat).
    so: SocketId,
    /// `sockdata`: the node's private data, once attached to a node.
    sockdata: ArcSlot<Private<SocketType>>,
    /// `socks`: the link on `ngsocklist`.
    socks: ListEntry<SockList>,
    /// `type`: `NG_CONTROL` or `NG_DATA`.
    ty: i32,
    /// `node_id`: the ID of the node, for netstat.
    node_id: AtomicU32,
}

// `struct ngpcb` on FreeBSD 15 amd64 (asserted in the glue).
const _: () = {
    assert!(core::mem::size_of::<NgPcb>() == 40);
    assert!(core::mem::offset_of!(NgPcb, so) == 0);
    assert!(core::mem::offset_of!(NgPcb, sockdata) == 8);
    assert!(core::mem::offset_of!(NgPcb, socks) == 16);
    assert!(core::mem::offset_of!(NgPcb, ty) == 32);
    assert!(core::mem::offset_of!(NgPcb, node_id) == 36);
};

crate::extern_list!(
    /// `ngsocklist`: every netgraph socket's PCB.
    pub SockList: NgPcb, entry socks, head "ngsocklist", mutex "ngsocklist_mtx"
);

impl NgPcb {
    /// A PCB for socket `so` of protocol `ty` (NG_CONTROL or NG_DATA).
    pub fn new(so: SocketId, ty: i32) -> Self {
        NgPcb {
            so,
            sockdata: ArcSlot::new(),
            socks: ListEntry::new(),
            ty,
            node_id: AtomicU32::new(0),
        }
    }

    /// Links the PCB at the head of `ngsocklist`.
    pub fn list(self: Pin<&Self>) {
        ExternList::<SockList>::insert(self);
    }

    /// True when no netgraph socket exists.
    pub fn none_exist() -> bool {
        ExternList::<SockList>::is_empty()
    }

    /// NG_CONTROL or NG_DATA.
    pub fn kind(&self) -> i32 {
        self.ty
    }

    /// Sets the node-ID hint netstat prints.
    pub fn set_node_id(&self, id: u32) {
        self.node_id.store(id, Ordering::Relaxed);
    }

    /// Links the node's private data. `EISCONN` if already linked.
    pub fn link(&self, p: Private<SocketType>) -> KResult<()> {
        self.sockdata.set(p).map_err(|_| Errno::EISCONN)
    }

    /// The linked node data, if any.
    pub fn data(&self) -> Option<&NgSock> {
        self.sockdata.get()
    }

    /// Removes the node-data link of a socket being detached.
    pub fn unlink_data(d: Detaching<'_, NgProto>) -> Option<Private<SocketType>> {
        d.pcb().node_id.store(0, Ordering::Relaxed);
        d.take(|pcb| &pcb.sockdata)
    }
}
