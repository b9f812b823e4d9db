//! The `socket` node type (ng_socket(4)) and the `PF_NETGRAPH` protocol
//! family, in safe Rust over the `kern` layer (`man/ng_socket.4`
//! describes them).
//!
//! A control socket (`NG_CONTROL`) owns a netgraph node of type `socket`;
//! a data socket (`NG_DATA`) attaches to such a node by path. Messages the
//! node receives are queued to the control socket as datagrams from
//! `[id]:`; data arriving on a hook is queued to the data socket as a
//! datagram from the hook's name.
//!
//! ```text
//!   control socket ── PCB ─┐                 ┌─ PCB ── data socket
//!     (NG_CONTROL)         └─► NgSock ◄──────┘        (NG_DATA)
//!                             (node's private data: links to both
//!                              sockets, the node, the hook table)
//!                                  ▲
//!                               socket node ── hooks ── other nodes
//! ```
//!
//! Layout: this file holds the node type; [`proto`] the protocol methods;
//! [`pcb`] the PCB and the `ngsocklist` netstat reads; [`hooks`] the hook
//! table. The C glue (`kmod/ng_socket_glue.c`) holds the protocol switch,
//! the domain and the sysctls, and declares the module.
//!
//! Lifetime: the node's private data is linked from the control socket, the
//! data socket and the node itself. When only the node is left, it is
//! removed; the data goes away with its last reference.
#![forbid(unsafe_code)]

mod hooks;
mod pcb;
mod proto;

use crate::kern::errno::{Errno, KResult};
use crate::kern::malloc::MallocType;
use crate::kern::mbuf::Packet;
use crate::kern::netgraph::{
    Completion, Hook, HookRef, Item, Msg, Node, NodeRef, NodeType, Private, Reader, TypeRecord,
    Writer, NG_HOOKSIZ, NG_NODESIZ,
};
use crate::kern::sockproto::{SocketLink, AF_NETGRAPH};
use crate::kern::sync::{Mutex, MutexGuard};

use hooks::HookTable;
use pcb::NgPcb;

/// `NG_DATA`: the protocol number of data sockets.
pub const NG_DATA: i32 = 1;
/// `NG_CONTROL`: the protocol number of control sockets.
pub const NG_CONTROL: i32 = 2;
/// `NGM_SOCKET_COOKIE`: the cookie of the node's own messages.
pub const NGM_SOCKET_COOKIE: u32 = 851_601_233;
/// Remove the node when its last hook goes.
pub const NGM_SOCK_CMD_NOLINGER: u32 = 1;
/// Keep the node when its last hook goes (the default).
pub const NGM_SOCK_CMD_LINGER: u32 = 2;
/// Longest destination a socket address may carry: `NG_NODESIZ` + 2.
const SG_MAXLEN: usize = NG_NODESIZ + 2;
/// Node flag: remove the node when its last hook goes.
const NGS_FLAG_NOLINGER: u32 = 1;

crate::module_statics! {
    /// Node private data and the hook table (`MALLOC_DEFINE` in the glue).
    pub malloc_type M_NETGRAPH_SOCK = "M_NETGRAPH_SOCK";
    /// The kernel's malloc type for protocol control blocks.
    pub malloc_type M_PCB = "M_PCB";
    /// `net.graph.maxdgram`: the send buffer of new sockets.
    pub ulong MAXDGRAM = "ngsock_maxdgram";
    /// `net.graph.recvspace`: the receive buffer of new sockets.
    pub ulong RECVSPACE = "ngsock_recvspace";
    /// `net.graph.socket.allow_unload`: 1 lets the module unload once no
    /// netgraph socket exists; 0 (default) refuses every unload, as
    /// FreeBSD's module does.
    int ALLOW_UNLOAD = "ngsock_allow_unload";
    /// The type record, registered by the module's glue.
    pub node_type SOCKET_TYPE = "ngsock_socket_type": TypeRecord::new::<SocketType>(c"socket");
}

/// The node type.
pub struct SocketType;

/// Node private data ("struct ngsock").
pub struct NgSock {
    st: Mutex<State>,
    /// Where control messages the control socket sends report completion.
    done: Completion,
}

/// What the node's private data links, under its mutex.
struct State {
    /// The node, with the reference the private data holds on it; `None`
    /// once the node is shutting down or has been removed.
    node: Option<NodeRef>,
    /// The control socket, while attached.
    ctl: Option<SocketLink>,
    /// The data socket, while attached.
    data: Option<SocketLink>,
    flags: u32,
    /// The node's hooks by name.
    hooks: HookTable,
}

impl NgSock {
    /// Called from `pr_detach` of an attached socket once its link is
    /// gone: removes the node when it is the only attachment left, with
    /// sleeping allocations (the closing thread may sleep), so that a
    /// shortage cannot leave the node behind for ever.
    fn release(mut st: MutexGuard<'_, State>) {
        if st.ctl.is_some() || st.data.is_some() {
            return;
        }
        if let Some(node) = st.node.take() {
            drop(st);
            let _ = node.node().remove_sleeping();
            drop(node);
        }
    }
}

type W<'a> = Writer<'a, SocketType>;

impl NodeType for SocketType {
    type Shared = NgSock;
    type State = ();
    const HAS_MOD_EVENT: bool = true;
    const HAS_FINDHOOK: bool = true;

    fn record() -> &'static TypeRecord {
        &SOCKET_TYPE
    }

    fn malloc_type() -> MallocType {
        M_NETGRAPH_SOCK
    }

    fn mod_event(ev: crate::kern::netgraph::ModEvent) -> KResult<()> {
        use crate::kern::netgraph::ModEvent;
        match ev {
            ModEvent::Load => Ok(()),
            // Opt-in improvement (net.graph.socket.allow_unload=1):
            // unloadable when no netgraph socket exists. By default every
            // unload is refused, as FreeBSD's module refuses it.
            ModEvent::Unload if ALLOW_UNLOAD.get() != 0 && NgPcb::none_exist() => Ok(()),
            ModEvent::Unload => Err(Errno::EBUSY),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    /// Socket nodes are created only by opening a control socket.
    fn constructor(_w: W<'_>) -> KResult<()> {
        Err(Errno::EINVAL)
    }

    fn newhook(mut w: W<'_>, hook: Hook<'_>, name: &[u8]) -> KResult<()> {
        let (sock, ()) = w.state().ok_or(Errno::EINVAL)?;
        let mut st = sock.st.lock()?;
        st.hooks.insert(hook, name)
    }

    fn findhook(_node: Node<'_>, p: &Private<Self>, name: &[u8]) -> Option<HookRef> {
        let st = p.shared().st.lock().ok()?;
        st.hooks.find(name).cloned()
    }

    fn connect(mut w: W<'_>, _hook: Hook<'_>) -> KResult<()> {
        let node = w.node();
        if let Some((sock, ())) = w.state() {
            update_connected(node, sock);
        }
        Ok(())
    }

    fn rcvmsg(mut w: W<'_>, item: Item, msg: Msg, _lasthook: Option<Hook<'_>>) -> KResult<()> {
        let sock = w.state().map(|(s, ())| s);
        to_control_socket(sock, item, msg)
    }

    fn rcvmsg_readonly(
        r: Reader<'_, Self>,
        item: Item,
        msg: Msg,
        _lasthook: Option<Hook<'_>>,
    ) -> KResult<()> {
        let sock = r.state().map(|(s, ())| s);
        to_control_socket(sock, item, msg)
    }

    fn rcvdata(r: Reader<'_, Self>, hook: Hook<'_>, mut item: Item) -> KResult<()> {
        let m = item.take_mbuf();
        drop(item);
        let Some(m) = m else { return Ok(()) };
        let Some((sock, ())) = r.state() else {
            return Ok(());
        };
        let from = hook_sockaddr(hook.name().to_bytes());
        let st = sock.st.lock()?;
        // No data socket: the packet is silently discarded.
        let Some(so) = &st.data else { return Ok(()) };
        let mut rcv = so.lock_rcvbuf();
        match rcv.append_addr(from.bytes(), m) {
            Ok(()) => {
                rcv.wakeup();
                Ok(())
            }
            Err(m) => {
                drop(rcv);
                drop(m);
                Err(Errno::ENOBUFS)
            }
        }
    }

    fn disconnect(mut w: W<'_>, hook: Hook<'_>) {
        let node = w.node();
        let Some((sock, ())) = w.state() else {
            return;
        };
        update_connected(node, sock);
        let Ok(mut st) = sock.st.lock() else { return };
        let removed = st.hooks.remove(hook);
        let nolinger = st.flags & NGS_FLAG_NOLINGER != 0;
        drop(st);
        drop(removed);
        if nolinger && node.num_hooks() == 0 && node.is_valid() {
            let _ = node.remove();
        }
    }

    fn shutdown(w: W<'_>) {
        let Some(p) = w.take() else { return };
        if let Ok(mut st) = p.shared().st.lock() {
            if let Some(so) = &st.data {
                so.set_disconnected();
            }
            if let Some(so) = &st.ctl {
                so.set_disconnected();
            }
            // The private data's own node reference goes with it (FreeBSD
            // keeps it, and so never frees the node memory in this case).
            let held = st.node.take();
            drop(st);
            drop(held);
        };
    }
}

/// Queues a message the node received to its control socket, as a
/// datagram from `[retaddr]:`.
fn to_control_socket(sock: Option<&NgSock>, item: Item, msg: Msg) -> KResult<()> {
    let retaddr = item.retaddr();
    drop(item);
    let sock = sock.ok_or(Errno::EINVAL)?;
    let mut st = sock.st.lock()?;
    if st.ctl.is_none() {
        return Err(Errno::EINVAL);
    }
    if msg.cookie() == NGM_SOCKET_COOKIE {
        return match msg.cmd() {
            NGM_SOCK_CMD_NOLINGER => {
                st.flags |= NGS_FLAG_NOLINGER;
                Ok(())
            }
            NGM_SOCK_CMD_LINGER => {
                st.flags &= !NGS_FLAG_NOLINGER;
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        };
    }
    let so = st.ctl.as_ref().ok_or(Errno::EINVAL)?;
    let mut rcv = so.lock_rcvbuf();
    let from = id_sockaddr(retaddr);
    let m = Packet::copy_from(msg.wire())?;
    drop(msg);
    match rcv.append_addr(&from, m) {
        Ok(()) => {
            rcv.wakeup();
            Ok(())
        }
        Err(m) => {
            rcv.overflow();
            drop(m);
            Err(Errno::ENOBUFS)
        }
    }
}

/// Marks the data socket connected exactly when the node has one hook.
fn update_connected(node: Node<'_>, sock: &NgSock) {
    if let Ok(st) = sock.st.lock() {
        if let Some(so) = &st.data {
            so.set_connected(node.num_hooks() == 1);
        }
    }
}

/// The source address of a message: `[id]:` in a full 34-byte sockaddr_ng.
fn id_sockaddr(id: u32) -> [u8; SG_MAXLEN] {
    let mut sa = [0u8; SG_MAXLEN];
    let [len, fam, data @ ..] = &mut sa;
    *len = SG_MAXLEN as u8;
    *fam = AF_NETGRAPH;
    let mut w = crate::pure::Writer::new(data);
    let _ = core::fmt::Write::write_fmt(&mut w, format_args!("[{id:x}]:"));
    sa
}

/// A sockaddr_ng naming a hook: `sg_len` = strlen + 3.
struct HookAddr {
    buf: [u8; NG_HOOKSIZ + 3],
    len: usize,
}

impl HookAddr {
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&self.buf)
    }
}

fn hook_sockaddr(name: &[u8]) -> HookAddr {
    let mut buf = [0u8; NG_HOOKSIZ + 3];
    let n = name.len().min(NG_HOOKSIZ - 1);
    let len = n.saturating_add(3);
    let [l, fam, data @ ..] = &mut buf;
    *l = len as u8;
    *fam = AF_NETGRAPH;
    crate::pure::copy_c_str(data, name.get(..n).unwrap_or(&[]));
    HookAddr { buf, len }
}
