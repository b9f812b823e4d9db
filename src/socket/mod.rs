//! The `socket` node type (ng_socket(4)) and the `PF_NETGRAPH` protocol family.
//!
//! A control socket (`NG_CONTROL`) owns a netgraph node of type `socket`;
//! a data socket (`NG_DATA`) attaches to such a node by path. Messages the
//! node receives are queued to the control socket as datagrams from
//! `[id]:`; data arriving on a hook is queued to the data socket as a
//! datagram from the hook's name. Safe Rust over the `kern` layer; the C glue
//! (`kmod/ng_socket_glue.c`) holds the protocol switch, the domain and the
//! sysctls, and declares the module.
//!
//! Lifetime (socket.md §4): the node private data counts its attachments —
//! the control socket, the data socket, and the node itself. When only one
//! remains and it is the node, the node is removed; when none remains, the
//! private data goes away (its memory when the last reference is dropped).

use fbsd_sys::{malloc_type, ng_type};

use crate::kern::cell::KernelCell;
use crate::kern::copy::NG_MESG_HDR;
use crate::kern::errno::{Errno, KResult};
use crate::kern::hookhash::HookHash;
use crate::kern::malloc::MallocType;
use crate::kern::mbuf::Mbuf;
use crate::kern::netgraph::{Hook, Item, Msg, Node};
use crate::kern::ngops::{self, Completion, HookRef, NodeRef};
use crate::kern::ngpcb::NgPcb;
use crate::kern::ngtype::{self, Adapter, ModEvent, NodeType};
use crate::kern::sockproto::{self, ProtoPcb, ProtoSocket};
use crate::kern::sync::{KArc, Mutex};

const NG_DATA: i32 = fbsd_sys::NG_DATA as i32;
const NG_CONTROL: i32 = fbsd_sys::NG_CONTROL as i32;
const AF_NETGRAPH: u8 = fbsd_sys::AF_NETGRAPH as u8;
/// Longest destination a socket address may carry: NG_NODESIZ + 2.
const SG_MAXLEN: usize = fbsd_sys::NG_NODESIZ as usize + 2;
const NG_HOOKSIZ: usize = fbsd_sys::NG_HOOKSIZ as usize;
const NG_TYPESIZ: usize = fbsd_sys::NG_TYPESIZ as usize;
/// Node flag: remove the node when its last hook goes (NGM_SOCK_CMD_NOLINGER).
const NGS_FLAG_NOLINGER: u32 = 1;

extern "C" {
    static mut M_NETGRAPH_SOCK: [malloc_type; 1];
    static mut M_PCB: [malloc_type; 1];
    static ngsock_maxdgram: core::ffi::c_ulong;
    static ngsock_recvspace: core::ffi::c_ulong;
}

fn sock_mtype() -> MallocType {
    // SAFETY: the glue defines and registers this malloc type.
    unsafe { MallocType::from_raw((&raw mut M_NETGRAPH_SOCK).cast()) }
}

fn pcb_mtype() -> MallocType {
    // SAFETY: M_PCB is a kernel export.
    unsafe { MallocType::from_raw((&raw mut M_PCB).cast()) }
}

fn buffer_sizes() -> (u64, u64) {
    // SAFETY: plain reads of the sysctl variables (u_long writes are atomic).
    unsafe {
        (
            (&raw const ngsock_maxdgram).read_volatile(),
            (&raw const ngsock_recvspace).read_volatile(),
        )
    }
}

/// Node private data ("struct ngsock").
pub struct NgSock {
    st: Mutex<State>,
    done: Completion,
}

struct State {
    /// The node, with the reference the private data holds on it; `None`
    /// once the node is shutting down or has been detached.
    node: Option<NodeRef>,
    ctl: Option<ProtoSocket>,
    data: Option<ProtoSocket>,
    flags: u32,
    /// Attachments: control socket, data socket, node.
    refs: u32,
    /// The node's hooks by name.
    hooks: HookHash,
}

/// `findhook` with the private data locked: the one-hook fast path, else
/// the hash.
fn find_hook<'a>(st: &State, node: Node<'a>, name: &[u8]) -> Option<Hook<'a>> {
    if node.num_hooks() == 1 {
        return ngops::first_hook(node).filter(|h| ngops::hook_name_is(*h, name));
    }
    st.hooks.find(node, name)
}

type Pcb = NgPcb<NgSock>;

impl ProtoPcb for Pcb {
    const FAMILY: i32 = fbsd_sys::AF_NETGRAPH as i32;
}

struct SocketType;

/// The node type record registered with netgraph.
#[no_mangle]
pub static ngsock_socket_type: KernelCell<ng_type> =
    KernelCell::new(Adapter::<SocketType>::record(c"socket", core::ptr::null()));

impl NgSock {
    /// Drops one attachment (the lock is held by `st`); removes the node
    /// when it is the only attachment left. Called from `pr_detach` only
    /// (the closing thread, which may sleep): the removal uses sleeping
    /// allocations, so a shortage cannot leave the node behind for ever (as
    /// `ng_rmnode_self` can, whose item is allocated without sleeping).
    fn release(mut st: crate::kern::sync::MutexGuard<'_, State>) {
        st.refs = st.refs.saturating_sub(1);
        if st.refs == 1 {
            if let Some(node) = st.node.take() {
                drop(st);
                let _ = ngops::shutdown_sleeping(node.node());
                drop(node);
            }
        }
    }
}

impl NodeType for SocketType {
    type Private = NgSock;
    const HAS_MOD_EVENT: bool = true;
    const HAS_FINDHOOK: bool = true;
    const HAS_CONNECT: bool = true;

    fn record() -> *mut ng_type {
        ngsock_socket_type.get()
    }

    fn mod_event(ev: ModEvent) -> KResult<()> {
        match ev {
            ModEvent::Load => Ok(()),
            // Deliberate improvement: unloadable when no netgraph socket exists.
            ModEvent::Unload if Pcb::list_is_empty() => Ok(()),
            ModEvent::Unload => Err(Errno::EBUSY),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    /// Socket nodes are created only by opening a control socket.
    fn constructor(_node: Node<'_>) -> KResult<()> {
        Err(Errno::EINVAL)
    }

    fn newhook(node: Node<'_>, hook: Hook<'_>, name: &[u8]) -> KResult<()> {
        let sock = ngtype::private::<SocketType>(node).ok_or(Errno::EINVAL)?;
        let mut st = sock.st.lock()?;
        st.hooks.insert(hook, name)
    }

    fn findhook<'a>(node: Node<'a>, name: &[u8]) -> Option<Hook<'a>> {
        let sock = ngtype::private::<SocketType>(node)?;
        let st = sock.st.lock().ok()?;
        find_hook(&st, node, name)
    }

    fn connect(hook: Hook<'_>) -> KResult<()> {
        update_connected(hook);
        Ok(())
    }

    fn rcvmsg(node: Node<'_>, mut item: Item, _lasthook: Option<Hook<'_>>) -> KResult<()> {
        let retaddr = item.retaddr();
        let msg = item.take_msg();
        drop(item);
        let msg = msg.ok_or(Errno::EINVAL)?;
        let sock = ngtype::private::<SocketType>(node).ok_or(Errno::EINVAL)?;
        let mut st = sock.st.lock()?;
        let so = st.ctl.ok_or(Errno::EINVAL)?;
        let h = msg.header();
        if h.typecookie == fbsd_sys::NGM_SOCKET_COOKIE {
            return match h.cmd {
                fbsd_sys::NGM_SOCK_CMD_NOLINGER => {
                    st.flags |= NGS_FLAG_NOLINGER;
                    Ok(())
                }
                fbsd_sys::NGM_SOCK_CMD_LINGER => {
                    st.flags &= !NGS_FLAG_NOLINGER;
                    Ok(())
                }
                _ => Err(Errno::EINVAL),
            };
        }
        // The private data stays locked until the datagram is queued and
        // the reader woken: a control socket closing on another CPU detaches
        // (and is then freed) only after taking that lock. Holding the
        // receive buffer alone would not keep the socket alive.
        let mut rcv = so.lock_rcvbuf();
        let from = id_sockaddr(retaddr);
        let m = match Mbuf::copy_from(msg.wire()) {
            Ok(m) => m,
            Err(e) => {
                drop(rcv);
                return Err(e);
            }
        };
        drop(msg);
        let r = match rcv.append_addr(&from, m) {
            Ok(()) => {
                rcv.wakeup();
                Ok(())
            }
            Err(m) => {
                rcv.overflow();
                drop(m);
                Err(Errno::ENOBUFS)
            }
        };
        drop(st);
        r
    }

    fn rcvdata(hook: Hook<'_>, mut item: Item) -> KResult<()> {
        let m = item.take_mbuf();
        drop(item);
        let Some(m) = m else { return Ok(()) };
        let Some(node) = hook.node() else {
            return Ok(());
        };
        let Some(sock) = ngtype::private::<SocketType>(node) else {
            return Ok(());
        };
        let st = sock.st.lock()?;
        // No data socket: the packet is silently discarded.
        let Some(so) = st.data else { return Ok(()) };
        // As in rcvmsg: the private data stays locked while the data
        // socket is used, so it cannot be detached and freed meanwhile.
        let mut rcv = so.lock_rcvbuf();
        let from = hook_sockaddr(hook.name().to_bytes());
        let r = match rcv.append_addr(from.bytes(), m) {
            Ok(()) => {
                rcv.wakeup();
                Ok(())
            }
            Err(m) => {
                drop(rcv);
                drop(m);
                Err(Errno::ENOBUFS)
            }
        };
        drop(st);
        r
    }

    fn disconnect(hook: Hook<'_>) {
        update_connected(hook);
        let Some(node) = hook.node() else { return };
        let Some(sock) = ngtype::private::<SocketType>(node) else {
            return;
        };
        if let Ok(mut st) = sock.st.lock() {
            st.hooks.remove(hook);
        }
        let nolinger = sock
            .st
            .lock()
            .map(|st| st.flags & NGS_FLAG_NOLINGER != 0)
            .unwrap_or(false);
        if nolinger && node.num_hooks() == 0 && node.is_valid() {
            let _ = node.rmnode_self();
        }
    }

    fn shutdown(node: Node<'_>) {
        if let Some(sock) = ngtype::take_private::<SocketType>(node) {
            if let Ok(mut st) = sock.st.lock() {
                if let Some(so) = st.data {
                    so.set_disconnected();
                }
                if let Some(so) = st.ctl {
                    so.set_disconnected();
                }
                // The private data's own node reference goes with it (FreeBSD
                // keeps it, and so never frees the node memory in this case).
                let held = st.node.take();
                st.refs = st.refs.saturating_sub(1);
                drop(st);
                drop(held);
            }
        }
    }
}

/// Marks the data socket connected exactly when the node has one hook.
/// The private data stays locked meanwhile: a data socket closing on
/// another CPU detaches (and is freed) only after taking that lock.
fn update_connected(hook: Hook<'_>) {
    let Some(node) = hook.node() else { return };
    let Some(sock) = ngtype::private::<SocketType>(node) else {
        return;
    };
    let Ok(st) = sock.st.lock() else { return };
    if let Some(so) = st.data {
        so.set_connected_flag(node.num_hooks() == 1);
    }
    drop(st);
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
    sockproto::copy_cstr(data, name.get(..n).unwrap_or(&[]));
    HookAddr { buf, len }
}

// ---------------------------------------------------------------------------
// Protocol methods

crate::protosw_entries!(attach ngsock_ctl_attach => ctl_attach);
crate::protosw_entries!(attach ngsock_data_attach => data_attach);
crate::protosw_entries!(addr ngsock_ctl_bind => ctl_bind);
crate::protosw_entries!(addr ngsock_ctl_connect => ctl_connect);
crate::protosw_entries!(addr ngsock_data_connect => data_connect);
crate::protosw_entries!(send ngsock_ctl_send => ctl_send);
crate::protosw_entries!(send ngsock_data_send => data_send);
crate::protosw_entries!(detach ngsock_detach => detach);
crate::protosw_entries!(disconnect ngsock_disconnect => disconnect);
crate::protosw_entries!(sockaddr ngsock_sockaddr => sockaddr);

fn attach_common(so: ProtoSocket, ty: i32) -> KResult<KArc<Pcb>> {
    let (snd, rcv) = buffer_sizes();
    so.reserve(snd, rcv)?;
    let pcb = Pcb::create(so, ty, pcb_mtype())?;
    if let Err(e) = so.set_pcb(pcb.clone()) {
        pcb.unlink();
        return Err(e);
    }
    Ok(pcb)
}

fn ctl_attach(so: ProtoSocket, _proto: i32) -> KResult<()> {
    sockproto::priv_check(fbsd_sys::PRIV_NETGRAPH_CONTROL as i32)?;
    if !so.pcb().is_null() {
        return Err(Errno::EISCONN);
    }
    let pcb = attach_common(so, NG_CONTROL)?;
    if let Err(e) = attach_node(so, &pcb) {
        detach(so);
        return Err(e);
    }
    Ok(())
}

/// Creates the control socket's node and links PCB, private data and node.
fn attach_node(so: ProtoSocket, pcb: &KArc<Pcb>) -> KResult<()> {
    let node = ngtype::make_node::<SocketType>()?;
    let hooks = HookHash::new(sock_mtype())?;
    let sock = match KArc::try_new(
        NgSock {
            st: Mutex::new(State {
                node: None,
                ctl: Some(so),
                data: None,
                flags: 0,
                refs: 2,
                hooks,
            }),
            done: Completion::new(),
        },
        sock_mtype(),
    ) {
        Ok(s) => s,
        Err(e) => {
            // Dropping the new node removes it (it has no private data yet).
            return Err(e);
        }
    };
    sock.init_mutex(|s| &s.st, c"ng_socket");
    sock.init_mutex(|s| s.done.mutex(), c"ng_socket_done");
    let n = node.node();
    pcb.set_node_id(n.id());
    if let Ok(mut st) = sock.st.lock() {
        st.node = Some(NodeRef::clone_ref(n));
    }
    ngtype::set_private::<SocketType>(n, sock.clone())?;
    pcb.link(sock)?;
    // The creation reference now belongs to the node (dropped by shutdown).
    node.into_creation_ref();
    Ok(())
}

fn data_attach(so: ProtoSocket, _proto: i32) -> KResult<()> {
    if !so.pcb().is_null() {
        return Err(Errno::EISCONN);
    }
    attach_common(so, NG_DATA).map(drop)
}

fn detach(so: ProtoSocket) {
    let Some(pcb) = so.take_pcb::<Pcb>() else {
        return;
    };
    if let Some(sock) = pcb.unlink_data() {
        if let Ok(mut st) = sock.st.lock() {
            if pcb.kind() == NG_CONTROL {
                st.ctl = None;
            } else {
                st.data = None;
            }
            NgSock::release(st);
        }
    }
    pcb.unlink();
}

fn disconnect(_so: ProtoSocket) -> KResult<()> {
    Ok(())
}

fn ctl_bind(so: ProtoSocket, sa: &[u8]) -> KResult<()> {
    let pcb = so.pcb_of::<Pcb>().ok_or(Errno::EINVAL)?;
    let sock = pcb.data().ok_or(Errno::EINVAL)?;
    let sg_len = usize::from(*sa.first().ok_or(Errno::EINVAL)?);
    let data = sa.get(2..).ok_or(Errno::EINVAL)?;
    let nul_at = sg_len.checked_sub(3).ok_or(Errno::EINVAL)?;
    if !(4..=SG_MAXLEN).contains(&sg_len)
        || data.first().copied().unwrap_or(0) == 0
        || data.get(nul_at).copied() != Some(0)
    {
        return Err(Errno::EINVAL);
    }
    let name = ngops::as_cstr(data).ok_or(Errno::EINVAL)?;
    let node = sock
        .st
        .lock()?
        .node
        .as_ref()
        .map(|n| NodeRef::clone_ref(n.node()))
        .ok_or(Errno::EINVAL)?;
    ngops::name_node(node.node(), name)
}

fn ctl_connect(_so: ProtoSocket, _sa: &[u8]) -> KResult<()> {
    crate::kern::print::console(c"program tried to connect control socket to remote node\n");
    Err(Errno::EINVAL)
}

fn data_connect(so: ProtoSocket, sa: &[u8]) -> KResult<()> {
    let pcb = so.pcb_of::<Pcb>().ok_or(Errno::EINVAL)?;
    if pcb.data().is_some() {
        return Err(Errno::EISCONN);
    }
    let mut path = [0u8; SG_MAXLEN * 8];
    sockproto::copy_cstr(
        &mut path,
        sockproto::cstr_bytes_u8(sa.get(2..).unwrap_or(&[])),
    );
    let path = ngops::as_cstr(&path).ok_or(Errno::EINVAL)?;
    let far = ngops::resolve_path(path)?;
    let n = far.node();
    if ngops::node_type(n) != SocketType::record().cast_const() {
        return Err(Errno::EINVAL);
    }
    let sock = ngtype::private::<SocketType>(n).ok_or(Errno::EINVAL)?;
    {
        let mut st = sock.st.lock()?;
        if st.data.is_some() {
            return Err(Errno::EADDRINUSE);
        }
        st.data = Some(so);
        st.refs = st.refs.saturating_add(1);
    }
    pcb.set_node_id(n.id());
    pcb.link(sock)
}

fn ctl_send(
    so: ProtoSocket,
    m: Option<Mbuf>,
    addr: Option<&[u8]>,
    control: Option<Mbuf>,
) -> KResult<()> {
    if control.is_some() {
        return Err(Errno::EINVAL);
    }
    let addr = addr.ok_or(Errno::EDESTADDRREQ)?;
    let sg_len = usize::from(*addr.first().ok_or(Errno::EINVAL)?);
    if sg_len > SG_MAXLEN {
        return Err(Errno::EINVAL);
    }
    let mut path = [0u8; SG_MAXLEN];
    let raw_path = addr.get(2..sg_len.max(2)).unwrap_or(&[]);
    sockproto::copy_cstr(&mut path, sockproto::cstr_bytes_u8(raw_path));
    let path = ngops::as_cstr(&path).ok_or(Errno::EINVAL)?;

    // Deliberate improvement: the payload must be a whole message whose
    // arglen matches its length, checked before anything reads it.
    let m = m.ok_or(Errno::EINVAL)?;
    let len = m.chain_len();
    if len < NG_MESG_HDR {
        return Err(Errno::EINVAL);
    }
    let mut msg = Msg::from_chain(&m, len)?;
    drop(m);
    let h = *msg.header();
    if Some(h.arglen as usize) != len.checked_sub(NG_MESG_HDR)
        || u32::from(h.version) != fbsd_sys::NG_VERSION
    {
        return Err(Errno::EINVAL);
    }
    if h.typecookie == fbsd_sys::NGM_GENERIC_COOKIE && h.cmd == fbsd_sys::NGM_MKPEER {
        autoload_type(&mut msg)?;
    }

    let pcb = so.pcb_of::<Pcb>().ok_or(Errno::EINVAL)?;
    let sock = pcb.data().ok_or(Errno::EINVAL)?;
    let node = sock
        .st
        .lock()?
        .node
        .as_ref()
        .map(|n| NodeRef::clone_ref(n.node()))
        .ok_or(Errno::EINVAL)?;
    ngops::send_msg_path_sync(node.node(), msg, path, sock_done(&sock))
}

fn sock_done(sock: &KArc<NgSock>) -> core::pin::Pin<&Completion> {
    sock.pinned_field(|s| &s.done)
}

/// MKPEER of a type that is not registered loads module `ng_<type>` first,
/// in this (system-call) thread: loading from a netgraph thread would not be
/// allowed to sleep.
fn autoload_type(msg: &mut Msg) -> KResult<()> {
    let data = msg.data_mut();
    let Some(ty) = data.get_mut(..NG_TYPESIZ) else {
        return Ok(());
    };
    if let Some(last) = ty.last_mut() {
        *last = 0;
    }
    let name = ngops::as_cstr(ty).ok_or(Errno::EINVAL)?;
    if sockproto::type_exists(name) {
        return Ok(());
    }
    let mut file = [0u8; NG_TYPESIZ + 3];
    let mut w = crate::pure::Writer::new(&mut file);
    let e = |_| Errno::EINVAL;
    w.put(b"ng_").map_err(e)?;
    w.put(name.to_bytes()).map_err(e)?;
    w.finish_c().map_err(e)?;
    let file = ngops::as_cstr(&file).ok_or(Errno::EINVAL)?;
    let module = sockproto::kldload(file)?;
    if !sockproto::type_exists(name) {
        module.unload();
        return Err(Errno::ENXIO);
    }
    Ok(())
}

fn data_send(
    so: ProtoSocket,
    m: Option<Mbuf>,
    addr: Option<&[u8]>,
    control: Option<Mbuf>,
) -> KResult<()> {
    let pcb = so.pcb_of::<Pcb>().ok_or(Errno::EINVAL)?;
    if control.is_some() {
        return Err(Errno::EINVAL);
    }
    let sock = pcb.data().ok_or(Errno::ENOTCONN)?;
    let m = m.ok_or(Errno::EINVAL)?;
    let (named, name) = match addr {
        None => (false, &[][..]),
        Some(a) => {
            let sg_len = usize::from(*a.first().ok_or(Errno::EINVAL)?);
            if sg_len > SG_MAXLEN {
                return Err(Errno::EINVAL);
            }
            let len = sg_len.saturating_sub(2);
            let name = a.get(2..).and_then(|d| d.get(..len)).unwrap_or(&[]);
            (len > 0 && name.first().copied().unwrap_or(0) != 0, name)
        }
    };
    let hook = {
        let st = sock.st.lock()?;
        let node = st.node.as_ref().ok_or(Errno::ENOTCONN)?.node();
        let h = if named {
            if name.len() >= NG_HOOKSIZ {
                return Err(Errno::EINVAL);
            }
            find_hook(&st, node, sockproto::cstr_bytes_u8(name)).ok_or(Errno::EHOSTUNREACH)?
        } else {
            if node.num_hooks() != 1 {
                return Err(Errno::EDESTADDRREQ);
            }
            ngops::first_hook(node).ok_or(Errno::EDESTADDRREQ)?
        };
        HookRef::of(h)
    };
    // Sleeping item allocation, like FreeBSD's ngd_send (NG_WAITOK): this
    // is the sending process's thread, with no lock held.
    ngops::send_data_sleeping(hook.hook(), m)
}

fn sockaddr(so: ProtoSocket, out: &mut [u8]) -> KResult<()> {
    let pcb = so.pcb_of::<Pcb>().ok_or(Errno::EINVAL)?;
    let sock = pcb.data().ok_or(Errno::EINVAL)?;
    let st = sock.st.lock()?;
    let node = st.node.as_ref().ok_or(Errno::EINVAL)?.node();
    let mut sa = [0u8; SG_MAXLEN];
    let [len, fam, data @ ..] = &mut sa;
    *len = SG_MAXLEN as u8;
    *fam = AF_NETGRAPH;
    let name = ngops::node_name(node);
    if name.is_empty() {
        let mut w = crate::pure::Writer::new(data);
        let _ = core::fmt::Write::write_fmt(&mut w, format_args!("[{:x}]", node.id()));
    } else {
        for (d, s) in data.iter_mut().zip(name.iter()) {
            *d = *s;
        }
    }
    let n = out.len().min(SG_MAXLEN);
    for (d, s) in out.iter_mut().zip(sa.iter().take(n)) {
        *d = *s;
    }
    if let Some(l) = out.first_mut() {
        *l = n as u8;
    }
    Ok(())
}
