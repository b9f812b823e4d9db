//! The ksocket node: methods, control messages, data path, accept and clone
//! nodes.
//!
//! Concurrency (netgraph's node gate, see `kern::netgraph`): every method
//! except `rcvdata` is a writer and gets `&mut State`; `rcvdata` is a reader
//! (several may run at once) and gets `&State`. Socket upcalls never reach
//! the node's data: they queue a function item (`incoming` or `accept`),
//! which netgraph runs as a writer.

use super::args::{self, GetoptForm, TagDest};
use super::embryos;
use super::flags::KsFlags;
use super::stats::{self, Counter, Stats};
use super::tunables;
use super::types::{cmd, COOKIE, KSOCKET_TYPE, TAG_SOCKADDR};
use crate::kern::errno::{Errno, KResult};
use crate::kern::malloc::MallocType;
use crate::kern::mbuf::{Mbuf, MbufFlags, Packet};
use crate::kern::netgraph::{
    Hook, Item, Msg, NewNode, NgCallout, Node, NodeFn, NodeType, Private, Reader, SendFlags,
    TypeRecord, Writer,
};
use crate::kern::socket::{KSocket, SockAddr, SOCK_STREAM};
use crate::pure::hookname::parse_hook_name;
use crate::pure::Dialect;

crate::module_statics! {
    /// The node type's malloc type (`MALLOC_DEFINE` in the glue).
    pub malloc_type M_NETGRAPH_KSOCKET = "M_NETGRAPH_KSOCKET";
}

/// `IP_MAXPACKET`: the byte budget of one `soreceive`.
const IP_MAXPACKET: isize = 65535;

/// Function items (`arg2` of `ng_send_fn1` and of the retry callout).
const FN_INCOMING: i32 = 1;
const FN_ACCEPT: i32 = 2;
/// Remove the node (an embryo whose parent is gone).
const FN_REMOVE: i32 = 3;
/// Remove the node if it still has no hook (retry after a failed removal).
const FN_REMOVE_UNHOOKED: i32 = 4;
/// Ticks between attempts to remove a node whose removal could not be queued.
const REMOVE_RETRY_TICKS: i32 = 10;

/// The node type.
pub struct Ksocket;

/// Private data any context may use.
pub struct Shared {
    /// Counters.
    stats: Stats,
}

/// Private data behind the node gate.
#[derive(Default)]
pub struct State {
    /// The socket (created by newhook, or handed over by accept).
    so: Option<KSocket>,
    flags: KsFlags,
    /// newhook succeeded once (FreeBSD's `priv->hook != NULL`).
    has_hook: bool,
    /// Token and node ID for asynchronous ACCEPT / CONNECT responses.
    response_token: u32,
    response_addr: u32,
    /// Timer for deferred work (allocated on first use): a clone's first
    /// `incoming`, retries of a removal netgraph could not queue.
    retry: Option<NgCallout>,
}

impl Shared {
    fn new() -> Self {
        Shared {
            stats: Stats::new(),
        }
    }
}

type W<'a> = Writer<'a, Ksocket>;

/// The function items this node type runs.
const FUNCTION: NodeFn = NodeFn::of::<Ksocket>();

fn is_wouldblock(e: Errno) -> bool {
    e == Errno::EWOULDBLOCK || e == Errno::EAGAIN
}

impl NodeType for Ksocket {
    type Shared = Shared;
    type State = State;

    fn record() -> &'static TypeRecord {
        &KSOCKET_TYPE
    }

    fn malloc_type() -> MallocType {
        M_NETGRAPH_KSOCKET
    }

    fn constructor(mut w: W<'_>) -> KResult<()> {
        let p = Private::new(Shared::new(), State::default())?;
        w.install(p).map_err(|_| Errno::EINVAL)
    }

    fn newhook(mut w: W<'_>, hook: Hook<'_>, _name: &[u8]) -> KResult<()> {
        let node = w.node();
        let (_, st) = w.state().ok_or(Errno::EINVAL)?;
        if st.has_hook {
            return Err(Errno::EISCONN);
        }
        if st.flags.contains(KsFlags::CLONED) {
            // A clone already has its socket; any hook name will do.
            if st.flags.contains(KsFlags::EMBRYONIC) {
                embryos::remove(node);
                st.flags.remove(KsFlags::EMBRYONIC);
            }
        } else {
            let t = parse_hook_name(hook.name().to_bytes(), Dialect::Extended)
                .map_err(|_| Errno::EINVAL)?;
            st.so = Some(KSocket::create(
                t.family,
                t.sock_type,
                t.proto,
                M_NETGRAPH_KSOCKET,
            )?);
        }
        st.has_hook = true;
        // A misrouted packet could re-enter the node through the socket;
        // queued delivery decouples the stacks (as FreeBSD does).
        w.force_queue(hook);
        Ok(())
    }

    fn connect(mut w: W<'_>, _hook: Hook<'_>) -> KResult<()> {
        let node = w.node();
        let Some((_, st)) = w.state() else {
            return Ok(());
        };
        let cloned = st.flags.contains(KsFlags::CLONED);
        // The upcalls are registered last: in NGM_MKPEER netgraph calls
        // connect without holding the new node's gate, so a function item
        // queued by an upcall could run at once.
        if let Some(so) = &mut st.so {
            so.set_nbio();
            if !so.is_listening() {
                so.set_upcalls(node, FUNCTION, FN_INCOMING);
            }
        }
        if cloned {
            // Drain what arrived before the hook existed, once netgraph has
            // finished connecting it. When the clone is the far end of an
            // NGM_CONNECT (`ngctl connect . [clone]: c x`), this method runs
            // before the requesting node's end of the link is valid, in a
            // step netgraph queues on that node; data sent before then is
            // refused (FreeBSD, which queues the drain at once, can lose
            // what arrived before the hook that way). A timer one tick away
            // runs after that queued step; without a timer, queue at once.
            if !arm_retry(node, st, 1, FN_INCOMING) {
                let _ = node.send_fn(FUNCTION, FN_INCOMING, SendFlags::QUEUE);
            }
        }
        Ok(())
    }

    fn rcvmsg(mut w: W<'_>, item: Item, msg: Msg, _lasthook: Option<Hook<'_>>) -> KResult<()> {
        let node = w.node();
        let retaddr = item.retaddr();
        let (resp, err) = match w.state() {
            Some((sh, st)) => handle_msg(node, sh, st, &msg, retaddr),
            None if msg.cookie() == COOKIE => (None, Err(Errno::ENXIO)),
            None => (None, Err(Errno::EINVAL)),
        };
        drop(msg);
        // NG_RESPOND_MSG: a reply replaces the error with its delivery result.
        match resp {
            Some(r) => item.respond(node, Some(r)),
            None => {
                drop(item);
                err
            }
        }
    }

    fn rcvdata(r: Reader<'_, Self>, _hook: Hook<'_>, mut item: Item) -> KResult<()> {
        let m = item.take_mbuf();
        drop(item);
        let Some(mut m) = m else {
            return Err(Errno::EINVAL);
        };
        let node = r.node();
        let Some((sh, st)) = r.state() else {
            return Err(Errno::ENXIO);
        };
        let Some(so) = &st.so else {
            sh.stats.inc(Counter::TxDropNosock);
            return Err(Errno::ENXIO);
        };
        // A destination from an address tag made by this node or by a
        // third party (ID 0), never one made by another ksocket node.
        let dest = match m.packet().and_then(|p| p.tag_payload(COOKIE, TAG_SOCKADDR)) {
            None => None,
            Some(p) => match args::tag_dest(p, node.id()) {
                TagDest::Ignore => None,
                TagDest::Use(sa) => match SockAddr::from_bytes(sa) {
                    Ok(a) => Some(a),
                    // Longer than any socket address (sockaddr_storage).
                    Err(e) => {
                        sh.stats.inc(Counter::TxDropBadaddr);
                        return Err(e);
                    }
                },
                TagDest::Malformed => {
                    sh.stats.inc(Counter::TxDropBadaddr);
                    return Err(Errno::EINVAL);
                }
            },
        };
        // A packet that arrived as broadcast/multicast must not leave as one.
        m.clear_flags(MbufFlags::BCAST | MbufFlags::MCAST);
        if so.is_listening() {
            // sosend would fail with ENOTCONN, and may leak the chain.
            sh.stats.inc(Counter::TxDropListen);
            return Err(Errno::ENOTCONN);
        }
        let len = match m.packet() {
            Some(p) => u64::try_from(p.pkt_len()).unwrap_or(0),
            None => u64::try_from(m.chain_len()).unwrap_or(0),
        };
        match so.send(m, dest.as_ref()) {
            Ok(()) => {
                sh.stats.inc(Counter::TxPackets);
                sh.stats.add(Counter::TxBytes, len);
                Ok(())
            }
            Err(e) => {
                sh.stats.inc(Counter::TxErrors);
                Err(e)
            }
        }
    }

    fn disconnect(mut w: W<'_>, _hook: Hook<'_>) {
        // The single hook is gone: so is the node (and its socket).
        let node = w.node();
        if !node.is_valid() {
            return;
        }
        match w.state() {
            Some((_, st)) => remove_self(node, st),
            None => {
                let _ = node.remove();
            }
        }
    }

    fn shutdown(mut w: W<'_>) {
        let node = w.node();
        if let Some((_, st)) = w.state() {
            // A pending `incoming` retry is cancelled with its timer.
            drop(st.retry.take());
            // Closing the socket removes its upcalls first.
            drop(st.so.take());
            if st.flags.contains(KsFlags::EMBRYONIC) {
                embryos::remove(node);
                st.flags.remove(KsFlags::EMBRYONIC);
            }
        }
        // Embryonic children die with their parent. Each is unlinked before
        // its removal is requested, so nothing waits for it to run.
        while let Some(child) = embryos::pop_owned_by(node.id()) {
            remove_embryo(child.node());
            drop(child);
        }
        drop(w.take());
    }

    fn function(mut w: W<'_>, arg: i32) {
        match arg {
            FN_INCOMING => incoming(w),
            FN_ACCEPT => {
                let node = w.node();
                if let Some((sh, st)) = w.state() {
                    // Every completed connection is accepted, requested or not.
                    let _ = accept(node, sh, st);
                }
            }
            FN_REMOVE | FN_REMOVE_UNHOOKED => {
                let node = w.node();
                if arg == FN_REMOVE || node.num_hooks() == 0 {
                    if let Some((_, st)) = w.state() {
                        remove_self(node, st);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Handles a control message; returns the reply to send (if any) and the
/// result of the command.
fn handle_msg(
    node: Node<'_>,
    sh: &Shared,
    st: &mut State,
    msg: &Msg,
    retaddr: u32,
) -> (Option<Msg>, KResult<()>) {
    if msg.cookie() != COOKIE {
        return (None, Err(Errno::EINVAL));
    }
    let arg = msg.data();
    let (c, token) = (msg.cmd(), msg.token());
    let noreply = |r: KResult<()>| (None, r);
    match c {
        cmd::BIND => noreply(bind(st, arg)),
        cmd::LISTEN => noreply(listen(node, st, arg)),
        cmd::ACCEPT => noreply(accept_request(node, sh, st, arg, token, retaddr)),
        cmd::CONNECT => noreply(connect(st, arg, token, retaddr)),
        cmd::GETNAME | cmd::GETPEERNAME => reply(getname(st, msg, c == cmd::GETPEERNAME)),
        cmd::GETOPT => reply(getopt(st, msg)),
        cmd::SETOPT => noreply(setopt(st, arg)),
        cmd::GETSTATS | cmd::GETCLRSTATS => reply(getstats(sh, msg, c == cmd::GETCLRSTATS)),
        cmd::CLRSTATS => noreply(
            args::empty_arg(arg)
                .map_err(errno)
                .map(|()| sh.stats.clear()),
        ),
        _ => (None, Err(Errno::EINVAL)),
    }
}

fn reply(r: KResult<Msg>) -> (Option<Msg>, KResult<()>) {
    match r {
        Ok(m) => (Some(m), Ok(())),
        Err(e) => (None, Err(e)),
    }
}

/// A `pure` errno as a kernel errno.
fn errno(e: crate::pure::Errno) -> Errno {
    Errno::from_raw(e).unwrap_or(Errno::EINVAL)
}

fn socket(st: &State) -> KResult<&KSocket> {
    st.so.as_ref().ok_or(Errno::ENXIO)
}

fn bind(st: &State, arg: &[u8]) -> KResult<()> {
    args::sockaddr_arg(arg).map_err(errno)?;
    let so = socket(st)?;
    so.bind(&SockAddr::from_bytes(arg)?)
}

fn listen(node: Node<'_>, st: &mut State, arg: &[u8]) -> KResult<()> {
    let backlog = args::listen_arg(arg).map_err(errno)?;
    let so = st.so.as_mut().ok_or(Errno::ENXIO)?;
    so.set_nbio();
    so.listen(backlog)?;
    so.set_listen_upcall(node, FUNCTION, FN_ACCEPT);
    Ok(())
}

fn accept_request(
    node: Node<'_>,
    sh: &Shared,
    st: &mut State,
    arg: &[u8],
    token: u32,
    retaddr: u32,
) -> KResult<()> {
    args::empty_arg(arg).map_err(errno)?;
    let so = socket(st)?;
    if !so.is_listening() {
        return Err(Errno::EINVAL);
    }
    if st.flags.contains(KsFlags::ACCEPTING) {
        return Err(Errno::EALREADY);
    }
    // FreeBSD records the requester after accepting, so the response for a
    // connection that was already queued goes to the previous requester.
    // Improvement (net.graph.ksocket.accept_to_requester=1): record it
    // before, so that response goes to the node that asked.
    let early = tunables::accept_to_requester();
    let saved = (st.response_token, st.response_addr);
    if early {
        st.response_token = token;
        st.response_addr = retaddr;
    }
    match accept(node, sh, st) {
        // Nothing queued yet: the listen upcall will accept it.
        Err(e) if !is_wouldblock(e) => {
            (st.response_token, st.response_addr) = saved;
            Err(e)
        }
        _ => {
            st.response_token = token;
            st.response_addr = retaddr;
            Ok(())
        }
    }
}

/// Accepts one queued connection into a new embryonic clone node and sends
/// the ACCEPT response from it. `EWOULDBLOCK` when none is queued.
fn accept(node: Node<'_>, sh: &Shared, st: &mut State) -> KResult<()> {
    let head = socket(st)?;
    let so = match head.dequeue(M_NETGRAPH_KSOCKET) {
        Ok(so) => {
            st.flags.remove(KsFlags::ACCEPTING);
            so
        }
        Err(e) => {
            if is_wouldblock(e) {
                st.flags.insert(KsFlags::ACCEPTING);
            } else {
                st.flags.remove(KsFlags::ACCEPTING);
            }
            return Err(e);
        }
    };
    // On failure `so` is dropped, i.e. closed (FreeBSD leaks it).
    let peer = so.accept_peer()?;
    let peer = peer.as_bytes();
    // From here on failures are silent, as in FreeBSD: the connection is
    // closed (dropping `so`) and the request still succeeds.
    let Some(len) = args::accept_reply_len(peer) else {
        return Ok(());
    };
    let Ok(mut resp) = Msg::new(COOKIE, cmd::ACCEPT, len, c"NGM_KSOCKET_ACCEPT") else {
        return Ok(());
    };
    resp.set_response(st.response_token);
    let Ok(entry) = embryos::reserve() else {
        return Ok(());
    };
    let Ok(child) = NewNode::create::<Ksocket>() else {
        return Ok(());
    };
    let cst = State {
        so: Some(so),
        flags: KsFlags::CLONED | KsFlags::EMBRYONIC,
        ..State::default()
    };
    let Ok(mut p) = Private::<Ksocket>::new(Shared::new(), cst) else {
        return Ok(());
    };
    // Upcalls first: a run they queue before the private data is installed
    // finds none and does nothing (the clone's connect drains the socket).
    if let Some(cso) = p.parts_mut().and_then(|(_, cst)| cst.so.as_mut()) {
        cso.set_upcalls(child.node(), FUNCTION, FN_INCOMING);
    }
    if child.install(p).is_err() {
        // Not reachable for a fresh node; dropping the data removes the
        // upcalls and closes the socket.
        return Ok(());
    }
    embryos::insert(entry, child.node(), node.id());
    args::fill_accept_reply(resp.data_mut(), child.node().id(), peer);
    let _ = resp.send_to_id(child.node(), st.response_addr);
    child.commit();
    sh.stats.inc(Counter::Accepts);
    Ok(())
}

fn connect(st: &mut State, arg: &[u8], token: u32, retaddr: u32) -> KResult<()> {
    args::sockaddr_arg(arg).map_err(errno)?;
    let so = socket(st)?;
    if so.is_connecting() {
        return Err(Errno::EALREADY);
    }
    if let Err(e) = so.connect(&SockAddr::from_bytes(arg)?) {
        so.clear_connecting();
        return Err(e);
    }
    if so.is_connecting() {
        // Completion is reported by an asynchronous CONNECT response.
        st.response_token = token;
        st.response_addr = retaddr;
        st.flags.insert(KsFlags::CONNECTING);
        return Err(Errno::EINPROGRESS);
    }
    Ok(())
}

fn getname(st: &State, msg: &Msg, peer: bool) -> KResult<Msg> {
    args::empty_arg(msg.data()).map_err(errno)?;
    let so = socket(st)?;
    let sa = if peer {
        if !so.is_connected() {
            return Err(Errno::ENOTCONN);
        }
        so.peername()?
    } else {
        so.sockname()?
    };
    let bytes = sa.as_bytes();
    let len = u32::try_from(bytes.len()).map_err(|_| Errno::EINVAL)?;
    let mut resp = Msg::new_response(msg, len)?;
    resp.data_mut().copy_from_slice(bytes);
    Ok(resp)
}

fn getopt(st: &State, msg: &Msg) -> KResult<Msg> {
    let form = args::getopt_form(msg.data()).map_err(errno)?;
    let (level, name) = args::sockopt_head(msg.data()).map_err(errno)?;
    let so = socket(st)?;
    let mut cap = args::OPTLEN_START;
    loop {
        let total = args::SOCKOPT_HDR.saturating_add(cap);
        let mut resp = Msg::new_response(msg, u32::try_from(total).map_err(|_| Errno::ENOMEM)?)?;
        let got = {
            let value = resp
                .data_mut()
                .get_mut(args::SOCKOPT_HDR..)
                .unwrap_or(&mut []);
            so.getopt(level, name, value)?
        };
        // FreeBSD's request form gets FreeBSD's reply, cut at 1024 bytes;
        // the ASCII form may ask again with more room.
        let grow = match form {
            GetoptForm::Compat => None,
            GetoptForm::Extended => args::next_optlen(cap, got),
        };
        if let Some(next) = grow {
            // The value may have been cut: ask again with more room.
            cap = next;
            continue;
        }
        let arglen = args::SOCKOPT_HDR.saturating_add(got);
        resp.truncate(u32::try_from(arglen).unwrap_or(u32::MAX));
        if form == GetoptForm::Extended {
            if let Some(head) = resp.data_mut().get_mut(..args::SOCKOPT_HDR) {
                let (l, n) = head.split_at_mut(4);
                l.copy_from_slice(&level.to_ne_bytes());
                n.copy_from_slice(&name.to_ne_bytes());
            }
        }
        return Ok(resp);
    }
}

fn setopt(st: &State, arg: &[u8]) -> KResult<()> {
    let (level, name, value) = args::setopt_arg(arg).map_err(errno)?;
    socket(st)?.setopt(level, name, value)
}

fn getstats(sh: &Shared, msg: &Msg, clear: bool) -> KResult<Msg> {
    args::empty_arg(msg.data()).map_err(errno)?;
    #[allow(clippy::cast_possible_truncation)]
    let mut resp = Msg::new_response(msg, stats::REPLY_LEN as u32)?;
    let v = if clear {
        sh.stats.take()
    } else {
        sh.stats.snapshot()
    };
    stats::encode(&v, resp.data_mut());
    Ok(resp)
}

/// The socket has news (data, space, connection state): connect
/// completion, then forward everything readable to the hook, then EOF.
fn incoming(mut w: W<'_>) {
    let node = w.node();
    let hook = w.first_hook();
    let Some((sh, st)) = w.state() else {
        return;
    };
    let Some(so) = st.so.as_ref() else {
        return;
    };
    // Let the next upcall queue another run.
    so.rearm();
    if so.is_listening() {
        return;
    }
    if st.flags.contains(KsFlags::CONNECTING) {
        connect_done(node, st);
    }
    // Without a hook (embryonic clone) the data waits in the socket.
    let Some(hook) = hook else {
        return;
    };
    let Some(so) = st.so.as_ref() else {
        return;
    };
    receive(node, hook, sh, so);
    if so.cant_rcv_more() && !st.flags.contains(KsFlags::EOFSEEN) {
        // End of file: one zero-length packet, once.
        if let Ok(m) = Packet::new_empty() {
            if hook.send_data(m).is_ok() {
                sh.stats.inc(Counter::Eofs);
            }
        }
        st.flags.insert(KsFlags::EOFSEEN);
    }
}

/// Asks netgraph to remove this node (`ng_rmnode_self`). When netgraph
/// cannot queue the removal (no item), `ng_rmnode_self` has already marked
/// the node invalid: FreeBSD then leaks it, unreachable, with its socket.
/// Here the node is revived (reachable again, e.g. by `ngctl shutdown`) and
/// the removal retried a few ticks later, for as long as the node has no
/// hook.
fn remove_self(node: Node<'_>, st: &mut State) {
    if let Err(failed) = node.remove() {
        failed.revive();
        let _ = arm_retry(node, st, REMOVE_RETRY_TICKS, FN_REMOVE_UNHOOKED);
    }
}

/// Removes an embryonic child of a node being shut down: at once if
/// netgraph can queue the removal, else by a function item in the child's
/// own context (which retries as [`remove_self`] does). Should both fail,
/// the child stays valid: a hook-less clone anyone can shut down.
fn remove_embryo(child: Node<'_>) {
    if let Err(failed) = child.remove() {
        failed.revive();
        let _ = child.send_fn(FUNCTION, FN_REMOVE, SendFlags::QUEUE);
    }
}

/// Arms the node's retry timer (allocated on first use) to run function
/// `what` in `ticks` ticks; false when no timer or item can be had.
fn arm_retry(node: Node<'_>, st: &mut State, ticks: i32, what: i32) -> bool {
    let c = match st.retry {
        Some(ref mut c) => c,
        None => match NgCallout::new(M_NETGRAPH_KSOCKET) {
            Ok(c) => st.retry.insert(c),
            Err(_) => return false,
        },
    };
    c.arm(node, ticks, FUNCTION, what).is_ok()
}

/// Reports the outcome of a pending connect, once it is known.
fn connect_done(node: Node<'_>, st: &mut State) {
    let Some(so) = st.so.as_ref() else {
        return;
    };
    let (error, still_connecting) = so.take_connect_result();
    if still_connecting {
        return;
    }
    if let Ok(mut m) = Msg::new(COOKIE, cmd::CONNECT, 4, c"NGM_KSOCKET_CONNECT") {
        m.set_response(st.response_token);
        m.data_mut().copy_from_slice(&error.to_ne_bytes());
        let _ = m.send_to_id(node, st.response_addr);
    }
    st.flags.remove(KsFlags::CONNECTING);
}

/// Forwards everything readable on `so` out of `hook`.
fn receive(node: Node<'_>, hook: Hook<'_>, sh: &Shared, so: &KSocket) {
    let stream = so.sock_type() == SOCK_STREAM;
    loop {
        // Ask for the source address only when it can differ per packet.
        let r = match so.recv(IP_MAXPACKET, !so.is_connected()) {
            Ok(r) => r,
            Err(e) => {
                if !is_wouldblock(e) {
                    sh.stats.inc(Counter::RxErrors);
                }
                break;
            }
        };
        let Some(m) = r.data else {
            break;
        };
        if r.truncated {
            // A datagram longer than 64 KiB cannot be forwarded whole. (FreeBSD
            // also stops reading here until the next upcall; we go on.)
            sh.stats.inc(Counter::RxDropTrunc);
            drop(m);
            continue;
        }
        // Stream data has no packet boundaries (and no packet header): each
        // read becomes one packet behind a fresh header. No data is copied.
        let m = match (stream, m.into_packet()) {
            (false, Ok(p)) => Ok(p),
            (true, Ok(p)) => Mbuf::from(p).behind_new_header(),
            (_, Err(m)) => m.behind_new_header(),
        };
        let Ok(m) = m else {
            sh.stats.inc(Counter::RxDropNobufs);
            break;
        };
        let m = tag_source(node, sh, m, r.addr.as_ref());
        let len = u64::try_from(m.pkt_len()).unwrap_or(0);
        match hook.send_data(m) {
            Ok(()) => {
                sh.stats.inc(Counter::RxPackets);
                sh.stats.add(Counter::RxBytes, len);
            }
            Err(_) => sh.stats.inc(Counter::RxDropHook),
        }
    }
}

/// Attaches the source address as an `NG_KSOCKET_TAG_SOCKADDR` tag carrying
/// this node's ID; without memory for the tag the packet goes untagged.
fn tag_source(node: Node<'_>, sh: &Shared, mut m: Packet, addr: Option<&SockAddr>) -> Packet {
    let Some(sa) = addr.map(SockAddr::as_bytes) else {
        return m;
    };
    let Some(len) = args::tag_len(sa) else {
        return m;
    };
    let id = node.id();
    if m.prepend_tag(COOKIE, TAG_SOCKADDR, len, |p| args::fill_tag(p, id, sa))
        .is_err()
    {
        sh.stats.inc(Counter::TagFailures);
    }
    m
}
