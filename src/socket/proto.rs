//! The `PF_NETGRAPH` protocol methods: attaching control and data sockets
//! (and the control socket's node), naming and connecting them, and
//! sending messages and data into the graph.

use core::ffi::CStr;
use core::pin::Pin;

use crate::kern::errno::{Errno, KResult};
use crate::kern::malloc::MallocType;
use crate::kern::mbuf::Mbuf;
use crate::kern::netgraph::{
    type_exists, Completion, DataOut, Msg, NewNode, NodeRef, Private, SendFlags, TypedNode,
    NGM_BINARY2ASCII, NGM_GENERIC_COOKIE, NGM_MKPEER, NG_HOOKSIZ, NG_MESG_HDR, NG_TYPESIZ,
    NG_VERSION,
};
use crate::kern::print::console;
use crate::kern::sockproto::{kldload, Detaching, ProtoSocket, Protocol, AF_NETGRAPH};
use crate::kern::sync::Mutex;
use crate::kern::thread::{priv_check, PRIV_NETGRAPH_CONTROL};
use crate::pure::{c_str, copy_c_str};

use super::hooks::HookTable;
use super::pcb::NgPcb;
use super::{
    NgSock, SocketType, State, FN_UNLINK_DATA, MAXDGRAM, M_PCB, NG_CONTROL, NG_DATA, RECVSPACE,
    SG_MAXLEN, SOCKET_TYPE,
};

/// The protocol: its PCB is a [`NgPcb`].
pub struct NgProto;

impl Protocol for NgProto {
    type Pcb = NgPcb;
    fn malloc_type() -> MallocType {
        M_PCB
    }
}

type So<'a> = ProtoSocket<'a, NgProto>;

crate::protosw_entries! {
    NgProto;
    attach ngsock_ctl_attach => ctl_attach, detach;
    attach ngsock_data_attach => data_attach, detach;
    addr ngsock_ctl_bind => ctl_bind;
    addr ngsock_ctl_connect => ctl_connect;
    addr ngsock_data_connect => data_connect;
    send ngsock_ctl_send => ctl_send;
    send ngsock_data_send => data_send;
    detach ngsock_detach => detach;
    disconnect ngsock_disconnect => disconnect;
    sockaddr ngsock_sockaddr => sockaddr;
}

fn attach_common(so: So<'_>, ty: i32) -> KResult<Pin<&NgPcb>> {
    so.reserve(MAXDGRAM.get(), RECVSPACE.get())?;
    let pcb = so.set_pcb(NgPcb::new(so.id(), ty))?;
    pcb.list();
    Ok(pcb)
}

fn ctl_attach(so: So<'_>, _proto: i32) -> KResult<()> {
    priv_check(PRIV_NETGRAPH_CONTROL)?;
    if so.pcb().is_some() {
        return Err(Errno::EISCONN);
    }
    let pcb = attach_common(so, NG_CONTROL)?;
    attach_node(so, &pcb)
}

/// Creates the control socket's node and links PCB, private data and node.
/// On failure the node is removed (the PCB goes with the failed attach).
fn attach_node(so: So<'_>, pcb: &NgPcb) -> KResult<()> {
    let node = NewNode::create::<SocketType>()?;
    let r = (|| {
        let hooks = HookTable::new()?;
        let p = Private::<SocketType>::new(
            NgSock {
                st: Mutex::new(State {
                    node: None,
                    ctl: so.link(),
                    flags: 0,
                    hooks,
                    last: None,
                    data_detaching: false,
                }),
                done: Completion::new(),
            },
            (),
        )?;
        p.init_mutex(|s| &s.st, c"ng_socket");
        p.pinned(|s| &s.done).init(c"ng_socket_done");
        let n = node.node();
        pcb.set_node_id(n.id());
        if let Ok(mut st) = p.shared().st.lock() {
            st.node = Some(n.to_ref());
        }
        node.install(p).map_err(|_| Errno::EINVAL)?;
        pcb.link(Private::of(n).ok_or(Errno::EINVAL)?)
    })();
    match r {
        // The creation reference now belongs to the node (its shutdown
        // drops it).
        Ok(()) => {
            node.commit();
            Ok(())
        }
        Err(e) => {
            node.remove_sleeping();
            Err(e)
        }
    }
}

fn data_attach(so: So<'_>, _proto: i32) -> KResult<()> {
    if so.pcb().is_some() {
        return Err(Errno::EISCONN);
    }
    attach_common(so, NG_DATA).map(drop)
}

fn detach(d: Detaching<'_, NgProto>) {
    let kind = d.pcb().kind();
    let Some(p) = NgPcb::unlink_data(d) else {
        return;
    };
    if kind == NG_CONTROL {
        if let Ok(mut st) = p.shared().st.lock() {
            drop(st.ctl.take());
            NgSock::release(st, p.is_linked());
        }
    } else {
        unlink_data_socket(&p);
        if let Ok(mut st) = p.shared().st.lock() {
            st.data_detaching = false;
            NgSock::release(st, false);
        }
    }
}

/// Has the node's writer unlink its data socket (the data path reads it
/// without locks, so only the writer may take it away): at once when the
/// node is idle, else as soon as it is. Our `pr_detach` then waits until
/// the link is gone. Without a node (shut down), the link went with it.
///
/// A node whose removal was asked for (NOLINGER, last hook gone) is invalid
/// and runs no function item: its removal is asked for again (as FreeBSD's
/// detach does), its shutdown unlinks; should that fail for want of
/// memory, the node is revived and unlinks as any other.
fn unlink_data_socket(p: &Private<SocketType>) {
    let node = p.shared().st.lock().ok().and_then(|mut st| {
        st.data_detaching = true;
        st.node.clone()
    });
    let Some(node) = node else { return };
    let n = node.node();
    if !n.is_valid() {
        match n.remove() {
            Ok(()) => return,
            Err(failed) => failed.revive(),
        }
    }
    if let Some(t) = TypedNode::<SocketType>::of(n) {
        // Sleeping allocation: this is a closing thread with no lock held.
        // Refused only for a node being removed, whose shutdown unlinks.
        let _ = t.send_fn::<FN_UNLINK_DATA>(SendFlags::WAITOK);
    }
}

fn disconnect(_so: So<'_>) -> KResult<()> {
    Ok(())
}

/// A C string copied out of `bytes` (up to its first NUL), in `buf`.
fn c_path<'b>(buf: &'b mut [u8], bytes: &[u8]) -> KResult<&'b CStr> {
    copy_c_str(buf, c_str(bytes));
    CStr::from_bytes_until_nul(buf).map_err(|_| Errno::EINVAL)
}

/// The node of the socket's node data, referenced.
fn node_of(sock: &NgSock) -> KResult<NodeRef> {
    sock.st.lock()?.node.clone().ok_or(Errno::EINVAL)
}

fn ctl_bind(so: So<'_>, sa: &[u8]) -> KResult<()> {
    let sock = so
        .pcb()
        .and_then(|p| p.get_ref().data())
        .ok_or(Errno::EINVAL)?;
    let sg_len = usize::from(*sa.first().ok_or(Errno::EINVAL)?);
    let data = sa.get(2..).ok_or(Errno::EINVAL)?;
    let nul_at = sg_len.checked_sub(3).ok_or(Errno::EINVAL)?;
    if !(4..=SG_MAXLEN).contains(&sg_len)
        || data.first().copied().unwrap_or(0) == 0
        || data.get(nul_at).copied() != Some(0)
    {
        return Err(Errno::EINVAL);
    }
    let name = CStr::from_bytes_until_nul(data).map_err(|_| Errno::EINVAL)?;
    node_of(sock)?.node().set_name(name)
}

fn ctl_connect(_so: So<'_>, _sa: &[u8]) -> KResult<()> {
    console(c"program tried to connect control socket to remote node\n");
    Err(Errno::EINVAL)
}

fn data_connect(so: So<'_>, sa: &[u8]) -> KResult<()> {
    let pcb = so.pcb().ok_or(Errno::EINVAL)?;
    if pcb.data().is_some() {
        return Err(Errno::EISCONN);
    }
    let mut path = [0u8; SG_MAXLEN * 8];
    let path = c_path(&mut path, sa.get(2..).unwrap_or(&[]))?;
    let far = NodeRef::resolve(path)?;
    let n = far.node();
    if !n.is_of(&SOCKET_TYPE) {
        return Err(Errno::EINVAL);
    }
    let p = Private::<SocketType>::of(n).ok_or(Errno::EINVAL)?;
    p.link(so.link().ok_or(Errno::EINVAL)?)?;
    pcb.set_node_id(n.id());
    pcb.link(p.clone()).inspect_err(|_| unlink_data_socket(&p))
}

fn ctl_send(
    so: So<'_>,
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
    let path = c_path(&mut path, addr.get(2..sg_len.max(2)).unwrap_or(&[]))?;

    // Deliberate improvement: the payload must be a whole message whose
    // arglen matches its length, checked before anything reads it.
    let m = m.ok_or(Errno::EINVAL)?;
    let len = m.chain_len();
    if len < NG_MESG_HDR {
        return Err(Errno::EINVAL);
    }
    let mut msg = Msg::from_chain(&m, len)?;
    drop(m);
    if Some(msg.arglen() as usize) != len.checked_sub(NG_MESG_HDR) || msg.version() != NG_VERSION {
        return Err(Errno::EINVAL);
    }
    if msg.cookie() == NGM_GENERIC_COOKIE && msg.cmd() == NGM_MKPEER {
        autoload_type(&mut msg)?;
    }
    // Deliberate improvement: netgraph's core prints a generic message's
    // strings and lists as far as the message says, not as far as it goes;
    // one it cannot print without reading outside it is refused.
    if msg.cookie() == NGM_GENERIC_COOKIE
        && msg.cmd() == NGM_BINARY2ASCII
        && !crate::pure::ngmsg::printable(msg.data())
    {
        return Err(Errno::EINVAL);
    }

    let sock = so
        .pcb()
        .and_then(|p| p.get_ref().data())
        .ok_or(Errno::EINVAL)?;
    let node = node_of(sock)?;
    msg.send_path_sync(node.node(), path, &sock.done)
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
    let name = CStr::from_bytes_until_nul(ty).map_err(|_| Errno::EINVAL)?;
    if type_exists(name) {
        return Ok(());
    }
    let mut file = [0u8; NG_TYPESIZ + 3];
    let mut w = crate::pure::Writer::new(&mut file);
    let e = |_| Errno::EINVAL;
    w.put(b"ng_").map_err(e)?;
    w.put(name.to_bytes()).map_err(e)?;
    w.finish_c().map_err(e)?;
    let file = CStr::from_bytes_until_nul(&file).map_err(|_| Errno::EINVAL)?;
    let module = kldload(file)?;
    if !type_exists(name) {
        module.unload();
        return Err(Errno::ENXIO);
    }
    Ok(())
}

fn data_send(
    so: So<'_>,
    m: Option<Mbuf>,
    addr: Option<&[u8]>,
    control: Option<Mbuf>,
) -> KResult<()> {
    let (Some(pcb), None) = (so.pcb(), &control) else {
        return Err(Errno::EINVAL);
    };
    let sock = pcb.get_ref().data().ok_or(Errno::ENOTCONN)?;
    let m = m.ok_or(Errno::EINVAL)?;
    // The hook's name: the address's data, whose bytes are all there (the
    // socket layer hands over `sg_len` of them, at least 2). None, empty or
    // starting with a NUL: no name.
    let name = match addr {
        None => &[][..],
        Some(a) => {
            if a.len() > SG_MAXLEN {
                return Err(Errno::EINVAL);
            }
            a.get(2..).unwrap_or(&[])
        }
    };
    let named = name.first().is_some_and(|&b| b != 0);
    if named && name.len() >= NG_HOOKSIZ {
        return Err(Errno::EINVAL);
    }
    // Sleeping item allocation, like FreeBSD's data-socket send
    // (NG_WAITOK): this is the sending process's thread, with no lock held
    // yet. The item is addressed under the lock (it then references the
    // hook itself) and sent once the lock is released.
    let item = DataOut::package_sleeping(m)?;
    // A reference the cache let go of, dropped once the lock is released.
    let mut old = None;
    let item = {
        let mut st = sock.st.lock()?;
        let node = st.node.as_ref().ok_or(Errno::ENOTCONN)?.node();
        if named {
            // The hook sent to last, else the table (one hook: its name is
            // compared, as FreeBSD does).
            match &st.last {
                Some(h) if h.hook().is_named(name) => item.address(h.hook())?,
                _ => {
                    let name = c_str(name);
                    let h = match st.hooks.only() {
                        Some(h) if node.num_hooks() == 1 => {
                            Some(h).filter(|h| h.hook().name_is(name))
                        }
                        _ => st.hooks.find(name),
                    }
                    .ok_or(Errno::EHOSTUNREACH)?
                    .clone();
                    let item = item.address(h.hook())?;
                    old = st.last.replace(h);
                    item
                }
            }
        } else {
            if node.num_hooks() != 1 {
                return Err(Errno::EDESTADDRREQ);
            }
            item.address(st.hooks.only().ok_or(Errno::EDESTADDRREQ)?.hook())?
        }
    };
    drop(old);
    item.send()
}

fn sockaddr(so: So<'_>, out: &mut [u8]) -> KResult<()> {
    let sock = so
        .pcb()
        .and_then(|p| p.get_ref().data())
        .ok_or(Errno::EINVAL)?;
    let st = sock.st.lock()?;
    let node = st.node.as_ref().ok_or(Errno::EINVAL)?.node();
    let mut sa = [0u8; SG_MAXLEN];
    let [len, fam, data @ ..] = &mut sa;
    *len = SG_MAXLEN as u8;
    *fam = AF_NETGRAPH;
    let name = node.name();
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
