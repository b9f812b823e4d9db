//! The ksocket node: methods, control messages, data path, accept and clone
//! nodes (ksocket.md §3–§6).
//!
//! Concurrency (netgraph's node gate, see `kern::ngpriv`): every method
//! except `rcvdata` is a writer and gets `&mut State`; `rcvdata` is a reader
//! (several may run at once) and gets `&State`; socket upcalls run outside
//! the gate and only touch [`Shared`] (atomics). Upcalls never do socket
//! work themselves: they queue a function item (`incoming` or `accept`),
//! which netgraph runs as a writer.

use core::sync::atomic::{AtomicU32, Ordering};

use super::args::{self, GetoptForm, TagDest};
use super::flags::KsFlags;
use super::stats::{self, Counter, Stats};
use super::tunables;
use super::types::{cmd, ngsock_ksocket_type, COOKIE, TAG_SOCKADDR};
use crate::kern::errno::{Errno, KResult};
use crate::kern::malloc::MallocType;
use crate::kern::mbuf::{alloc_hdr, Mbuf};
use crate::kern::netgraph::{send_data, send_fn, send_msg_id, Hook, Item, Msg, Node};
use crate::kern::ngcallout::NgCallout;
use crate::kern::ngops::first_hook;
use crate::kern::ngpriv::{FreshNode, GatedAdapter, GatedType, PrivSlot, Reader, Writer};
use crate::kern::nodeset::ngsock_ks_embryos as EMBRYOS;
use crate::kern::socket::{KSocket, SockAddr};
use crate::pure::hookname::parse_hook_name;
use crate::pure::Dialect;

extern "C" {
    /// `MALLOC_DEFINE(M_NETGRAPH_KSOCKET, "netgraph_ksock", ...)` in the glue.
    static mut M_NETGRAPH_KSOCKET: [fbsd_sys::malloc_type; 1];
}

fn mtype() -> MallocType {
    // SAFETY: the glue defines and registers this malloc type for the
    // module's lifetime.
    unsafe { MallocType::from_raw((&raw mut M_NETGRAPH_KSOCKET).cast()) }
}

/// `IP_MAXPACKET`: the byte budget of one `soreceive`.
const IP_MAXPACKET: isize = 65535;
#[allow(clippy::cast_possible_wrap)]
const SOCK_STREAM: i32 = fbsd_sys::SOCK_STREAM as i32;
#[allow(clippy::cast_possible_wrap)]
const NG_QUEUE: i32 = fbsd_sys::NG_QUEUE as i32;
#[allow(clippy::cast_possible_wrap)]
const NG_WAITOK: i32 = fbsd_sys::NG_WAITOK as i32;
#[allow(clippy::cast_possible_wrap)]
const M_WAITOK: i32 = fbsd_sys::M_WAITOK as i32;

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
    /// A run of `incoming` is queued (coalesces bursts of upcalls).
    fn_sent: AtomicU32,
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
    /// Receive and send upcalls are registered (so they may be cleared).
    buf_upcalls: bool,
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
            fn_sent: AtomicU32::new(0),
            stats: Stats::new(),
        }
    }
}

static SLOT: PrivSlot<Shared, State> = PrivSlot::new(ngsock_ksocket_type.get().cast_const(), mtype);

type Adapter = GatedAdapter<Ksocket>;

fn is_wouldblock(e: Errno) -> bool {
    e == Errno::EWOULDBLOCK || e == Errno::EAGAIN
}

impl GatedType for Ksocket {
    type Shared = Shared;
    type State = State;

    fn slot() -> &'static PrivSlot<Shared, State> {
        &SLOT
    }

    fn constructor(w: Writer<'_>) -> KResult<()> {
        let p = SLOT.alloc(Shared::new(), State::default())?;
        SLOT.install(w.node(), p).map_err(|_| Errno::EINVAL)
    }

    fn newhook(mut w: Writer<'_>, hook: Hook<'_>) -> KResult<()> {
        let node = w.node();
        let (_, st) = SLOT.write(&mut w).ok_or(Errno::EINVAL)?;
        if st.has_hook {
            return Err(Errno::EISCONN);
        }
        if st.flags.contains(KsFlags::CLONED) {
            // A clone already has its socket; any hook name will do.
            if st.flags.contains(KsFlags::EMBRYONIC) {
                EMBRYOS.remove(node);
                st.flags.remove(KsFlags::EMBRYONIC);
            }
        } else {
            let t = parse_hook_name(hook.name().to_bytes(), Dialect::Extended)
                .map_err(|_| Errno::EINVAL)?;
            st.so = Some(KSocket::create(t.family, t.sock_type, t.proto)?);
        }
        st.has_hook = true;
        // A misrouted packet could re-enter the node through the socket;
        // queued delivery decouples the stacks (as FreeBSD does).
        hook.force_queue();
        Ok(())
    }

    fn connect(mut w: Writer<'_>, _hook: Hook<'_>) -> KResult<()> {
        let node = w.node();
        let Some((_, st)) = SLOT.write(&mut w) else {
            return Ok(());
        };
        let cloned = st.flags.contains(KsFlags::CLONED);
        // Everything the state needs is done before the upcalls exist: in
        // NGM_MKPEER netgraph calls connect without holding the new node's
        // gate, so a function item queued by an upcall could run at once.
        let register = st.so.as_ref().is_some_and(|so| !so.is_listening());
        if register {
            st.buf_upcalls = true;
        }
        if let Some(so) = &st.so {
            so.set_nbio();
            if register {
                so.set_upcalls(Adapter::BUF_UPCALL, node);
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
                let _ = send_fn(node, Adapter::FUNCTION, FN_INCOMING, NG_QUEUE);
            }
        }
        Ok(())
    }

    fn rcvmsg(mut w: Writer<'_>, item: Item, msg: Msg, _lasthook: Option<Hook<'_>>) -> KResult<()> {
        let node = w.node();
        let retaddr = item.retaddr();
        let (resp, err) = match SLOT.write(&mut w) {
            Some((sh, st)) => handle_msg(node, sh, st, &msg, retaddr),
            None if msg.header().typecookie == COOKIE => (None, Err(Errno::ENXIO)),
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

    fn rcvdata(r: Reader<'_>, _hook: Hook<'_>, mut item: Item) -> KResult<()> {
        let m = item.take_mbuf();
        drop(item);
        let Some(mut m) = m else {
            return Err(Errno::EINVAL);
        };
        let node = r.node();
        let Some((sh, st)) = SLOT.read(&r) else {
            return Err(Errno::ENXIO);
        };
        let Some(so) = &st.so else {
            sh.stats.inc(Counter::TxDropNosock);
            return Err(Errno::ENXIO);
        };
        // A destination from an address tag made by this node or by a
        // third party (ID 0), never one made by another ksocket node.
        let dest = match m.tag_payload(COOKIE, TAG_SOCKADDR) {
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
        m.clear_flags(fbsd_sys::M_BCAST | fbsd_sys::M_MCAST);
        if so.is_listening() {
            // sosend would fail with ENOTCONN, and may leak the chain.
            sh.stats.inc(Counter::TxDropListen);
            return Err(Errno::ENOTCONN);
        }
        let len = if m.has_pkthdr() {
            u64::try_from(m.pkt_len()).unwrap_or(0)
        } else {
            u64::try_from(m.chain_len()).unwrap_or(0)
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

    fn disconnect(mut w: Writer<'_>, _hook: Hook<'_>) {
        // The single hook is gone: so is the node (and its socket).
        let node = w.node();
        if !node.is_valid() {
            return;
        }
        match SLOT.write(&mut w) {
            Some((_, st)) => remove_self(node, st),
            None => {
                let _ = node.rmnode_self();
            }
        }
    }

    fn shutdown(mut w: Writer<'_>) {
        let node = w.node();
        if let Some((_, st)) = SLOT.write(&mut w) {
            // A pending `incoming` retry is cancelled with its timer.
            drop(st.retry.take());
            if let Some(so) = st.so.take() {
                // No upcall may run (or be running) once the socket is closed.
                if so.is_listening() {
                    so.clear_listen_upcall();
                } else if st.buf_upcalls {
                    so.clear_upcalls();
                }
                st.buf_upcalls = false;
                drop(so);
            }
            if st.flags.contains(KsFlags::EMBRYONIC) {
                EMBRYOS.remove(node);
                st.flags.remove(KsFlags::EMBRYONIC);
            }
        }
        // Embryonic children die with their parent. Each is unlinked before
        // its removal is requested, so nothing waits for it to run.
        while let Some(child) = EMBRYOS.pop_owned_by(node.id()) {
            remove_embryo(child.node());
            drop(child);
        }
        drop(SLOT.take(w));
    }

    fn function(mut w: Writer<'_>, arg: i32) {
        match arg {
            FN_INCOMING => incoming(w),
            FN_ACCEPT => {
                let node = w.node();
                if let Some((sh, st)) = SLOT.write(&mut w) {
                    // Every completed connection is accepted, requested or not.
                    let _ = accept(node, sh, st);
                }
            }
            FN_REMOVE | FN_REMOVE_UNHOOKED => {
                let node = w.node();
                if arg == FN_REMOVE || node.num_hooks() == 0 {
                    if let Some((_, st)) = SLOT.write(&mut w) {
                        remove_self(node, st);
                    }
                }
            }
            _ => {}
        }
    }

    fn upcall(node: Node<'_>, shared: &Shared, waitflag: i32, listen: bool) {
        let flags = NG_QUEUE
            | if waitflag & M_WAITOK != 0 {
                NG_WAITOK
            } else {
                0
            };
        if listen {
            let _ = send_fn(node, Adapter::FUNCTION, FN_ACCEPT, flags);
            return;
        }
        // One queued run of `incoming` serves any number of upcalls.
        if shared
            .fn_sent
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
            && send_fn(node, Adapter::FUNCTION, FN_INCOMING, flags).is_err()
        {
            shared.fn_sent.store(0, Ordering::Release);
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
    let h = *msg.header();
    if h.typecookie != COOKIE {
        return (None, Err(Errno::EINVAL));
    }
    let arg = msg.data();
    let noreply = |r: KResult<()>| (None, r);
    match h.cmd {
        cmd::BIND => noreply(bind(st, arg)),
        cmd::LISTEN => noreply(listen(node, st, arg)),
        cmd::ACCEPT => noreply(accept_request(node, sh, st, arg, h.token, retaddr)),
        cmd::CONNECT => noreply(connect(st, arg, h.token, retaddr)),
        cmd::GETNAME | cmd::GETPEERNAME => reply(getname(st, msg, h.cmd == cmd::GETPEERNAME)),
        cmd::GETOPT => reply(getopt(st, msg)),
        cmd::SETOPT => noreply(setopt(st, arg)),
        cmd::GETSTATS | cmd::GETCLRSTATS => reply(getstats(sh, msg, h.cmd == cmd::GETCLRSTATS)),
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
    let so = st.so.as_ref().ok_or(Errno::ENXIO)?;
    so.set_nbio();
    so.listen(backlog)?;
    // Listening destroyed the socket buffers and their upcalls.
    st.buf_upcalls = false;
    so.set_listen_upcall(Adapter::LISTEN_UPCALL, node);
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
    let so = match head.dequeue() {
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
    resp.header_mut().flags |= fbsd_sys::NGF_RESP;
    resp.header_mut().token = st.response_token;
    let Ok(entry) = EMBRYOS.reserve(mtype()) else {
        return Ok(());
    };
    let Ok(child) = FreshNode::create(&ngsock_ksocket_type) else {
        return Ok(());
    };
    let cst = State {
        so: Some(so),
        flags: KsFlags::CLONED | KsFlags::EMBRYONIC,
        buf_upcalls: true,
        ..State::default()
    };
    let Ok(mut p) = SLOT.alloc(Shared::new(), cst) else {
        return Ok(());
    };
    // Upcalls first: one that fires before the private data is installed
    // finds none and does nothing (the clone's connect drains the socket).
    if let Some(cso) = &p.parts_mut().1.so {
        cso.set_upcalls(Adapter::BUF_UPCALL, child.node());
    }
    if let Err(mut p) = SLOT.install(child.node(), p) {
        // Not reachable for a fresh node; undo cleanly anyway.
        if let Some(cso) = &p.parts_mut().1.so {
            cso.clear_upcalls();
        }
        return Ok(());
    }
    EMBRYOS.insert(entry, child.node(), node.id());
    args::fill_accept_reply(resp.data_mut(), child.node().id(), peer);
    let _ = send_msg_id(child.node(), resp, st.response_addr);
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
fn incoming(mut w: Writer<'_>) {
    let node = w.node();
    let hook = first_hook(node);
    let Some((sh, st)) = SLOT.write(&mut w) else {
        return;
    };
    // Let the next upcall queue another run.
    sh.fn_sent.store(0, Ordering::Release);
    let Some(so) = st.so.as_ref() else {
        return;
    };
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
        if let Ok(m) = alloc_hdr() {
            if send_data(hook, m).is_ok() {
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
    if node.rmnode_self().is_ok() {
        return;
    }
    node.revive();
    let _ = arm_retry(node, st, REMOVE_RETRY_TICKS, FN_REMOVE_UNHOOKED);
}

/// Removes an embryonic child of a node being shut down: at once if
/// netgraph can queue the removal, else by a function item in the child's
/// own context (which retries as [`remove_self`] does). Should both fail,
/// the child stays valid: a hook-less clone anyone can shut down.
fn remove_embryo(child: Node<'_>) {
    if child.rmnode_self().is_ok() {
        return;
    }
    child.revive();
    let _ = send_fn(child, Adapter::FUNCTION, FN_REMOVE, NG_QUEUE);
}

/// Arms the node's retry timer (allocated on first use) to run function
/// `what` in `ticks` ticks; false when no timer or item can be had.
fn arm_retry(node: Node<'_>, st: &mut State, ticks: i32, what: i32) -> bool {
    let c = match st.retry {
        Some(ref c) => c,
        None => match NgCallout::new(mtype()) {
            Ok(c) => st.retry.insert(c),
            Err(_) => return false,
        },
    };
    c.arm(node, ticks, Adapter::FUNCTION, what).is_ok()
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
        m.header_mut().flags |= fbsd_sys::NGF_RESP;
        m.header_mut().token = st.response_token;
        m.data_mut().copy_from_slice(&error.to_ne_bytes());
        let _ = send_msg_id(node, m, st.response_addr);
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
        let m = if stream || !m.has_pkthdr() {
            match m.behind_new_header() {
                Ok(m) => m,
                Err(_) => {
                    sh.stats.inc(Counter::RxDropNobufs);
                    break;
                }
            }
        } else {
            m
        };
        let m = tag_source(node, sh, m, r.addr.as_ref());
        let len = u64::try_from(m.pkt_len()).unwrap_or(0);
        match send_data(hook, m) {
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
fn tag_source(node: Node<'_>, sh: &Shared, mut m: Mbuf, addr: Option<&SockAddr>) -> Mbuf {
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
