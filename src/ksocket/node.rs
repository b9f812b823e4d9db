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
use super::srcaddr;
use super::stats::{self, Counter, RxStats, Tx, TxStats};
use super::tunables;
use super::types::{cmd, COOKIE, KSOCKET_TYPE, TAG_SOCKADDR};
use crate::kern::errno::{Errno, KResult};
use crate::kern::malloc::MallocType;
use crate::kern::mbuf::{Mbuf, MbufFlags, Packet, TagAt};
use crate::kern::netgraph::{
    DataHook, DataItem, DataReader, Dying, Event, Hook, Installed, Item, Msg, NewNode, NgCallout,
    Node, NodeFn, NodeType, Private, SendFlags, TypeRecord, Writer,
};
use crate::kern::socket::{KSocket, Sender, SoName, SockAddr, SocketSlot, SOCK_DGRAM};
use crate::pure::hookname::parse_hook_name;
use crate::pure::Dialect;

crate::module_statics! {
    /// The node type's malloc type (`MALLOC_DEFINE` in the glue).
    pub malloc_type M_NETGRAPH_KSOCKET = "M_NETGRAPH_KSOCKET";
}

/// `IP_MAXPACKET`: the byte budget of one `soreceive`.
const IP_MAXPACKET: isize = 65535;

/// Function items (`arg2` of `ng_send_fn1` and of the retry callout), and
/// the arguments of the socket upcalls' events: socket news, without or
/// with traffic counting.
const FN_INCOMING: i32 = 1;
const EV_NEWS_COUNTED: i32 = 5;
/// Socket news with local addresses on (an ngsock addition, `srcaddr`),
/// without or with traffic counting.
const EV_NEWS_LOCAL: i32 = 6;
const EV_NEWS_LOCAL_COUNTED: i32 = 7;
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
    /// Send-path counters (updated by concurrent readers: atomic).
    tx: TxStats,
    /// The node's ID (it never changes), at hand for the send path.
    id: u32,
    /// Control mbufs kept for sends with a source address (`srcaddr`).
    ctl: srcaddr::Cache,
}

/// Private data behind the node gate.
#[derive(Default)]
pub struct State {
    /// The socket (created by newhook, or handed over by accept).
    so: SocketSlot,
    flags: KsFlags,
    /// newhook succeeded once (FreeBSD's `priv->hook != NULL`).
    has_hook: bool,
    /// Token and node ID for asynchronous ACCEPT / CONNECT responses.
    response_token: u32,
    response_addr: u32,
    /// Timer for deferred work (allocated on first use): a clone's first
    /// `incoming`, retries of a removal netgraph could not queue.
    retry: Option<NgCallout>,
    /// The other counters (updated by the writer only: plain integers).
    rx: RxStats,
    /// The node counts its traffic (`net.graph.ksocket.stats` when it was
    /// made, or a `clrstats`): its hook runs the counting variant of the
    /// data path ([`VARIANT_COUNTED`]) and its upcalls queue
    /// [`EV_NEWS_COUNTED`]. Without it, neither direction spends an
    /// instruction on counting.
    counting: bool,
    /// The socket's family, and whether it is a datagram socket (from the
    /// hook name; 0 and false for a clone).
    family: i32,
    dgram: bool,
}

/// The data-path variant bit (`DataHook::variant`) that counts traffic.
const VARIANT_COUNTED: u32 = 1;
/// The data-path variant bit of local addresses (an ngsock addition,
/// `srcaddr`): packets sent may carry a local-address tag.
const VARIANT_LOCALADDR: u32 = 2;

/// Switches `hook` to the data-path variant of `counting` and `local`.
fn set_variant(w: &mut W<'_>, hook: Hook<'_>, counting: bool, local: bool) {
    match (counting, local) {
        (false, false) => w.set_data_variant::<0>(hook),
        (true, false) => w.set_data_variant::<VARIANT_COUNTED>(hook),
        (false, true) => w.set_data_variant::<VARIANT_LOCALADDR>(hook),
        (true, true) => w.set_data_variant::<{ VARIANT_COUNTED | VARIANT_LOCALADDR }>(hook),
    };
}

impl Shared {
    fn new(node: Node<'_>) -> Self {
        Shared {
            tx: TxStats::new(),
            id: node.id(),
            ctl: srcaddr::Cache::new(),
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
    type HookData = ();
    type Linked = ();

    fn record() -> &'static TypeRecord {
        &KSOCKET_TYPE
    }

    fn malloc_type() -> MallocType {
        M_NETGRAPH_KSOCKET
    }

    fn constructor(mut w: W<'_>) -> KResult<()> {
        let st = State {
            counting: tunables::count_traffic(),
            ..State::default()
        };
        let p = Private::new(Shared::new(w.node()), st)?;
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
            st.so.set(KSocket::create(
                t.family,
                t.sock_type,
                t.proto,
                M_NETGRAPH_KSOCKET,
            )?);
            st.family = t.family;
            st.dgram = t.sock_type == SOCK_DGRAM;
        }
        st.has_hook = true;
        // A misrouted packet could re-enter the node through the socket;
        // queued delivery decouples the stacks (as FreeBSD does).
        w.force_queue(hook);
        Ok(())
    }

    fn connect(mut w: W<'_>, hook: Hook<'_>) -> KResult<()> {
        let node = w.node();
        let installed = w.installed();
        if let Some((counting, local)) = w
            .state()
            .map(|(_, st)| (st.counting, st.flags.contains(KsFlags::LOCALADDR)))
        {
            if counting || local {
                set_variant(&mut w, hook, counting, local);
            }
        }
        let Some((_, st)) = w.state() else {
            return Ok(());
        };
        let cloned = st.flags.contains(KsFlags::CLONED);
        // The upcalls are registered last: in NGM_MKPEER netgraph calls
        // connect without holding the new node's gate, so a function item
        // queued by an upcall could run at once.
        if let Some(so) = st.so.get_mut() {
            so.set_nbio();
            if let (false, Some(n)) = (so.is_listening(), installed) {
                let local = st.flags.contains(KsFlags::LOCALADDR);
                set_news_upcalls(so, n, st.counting, local);
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
        let mut local = None;
        let (resp, err) = match w.state() {
            Some((sh, st)) => {
                let before = st.flags.contains(KsFlags::LOCALADDR);
                let r = handle_msg(node, sh, st, &msg, retaddr);
                local = Some(before != st.flags.contains(KsFlags::LOCALADDR));
                r
            }
            None if msg.cookie() == COOKIE => (None, Err(Errno::ENXIO)),
            None => (None, Err(Errno::EINVAL)),
        };
        // A SETOPT switched local addresses on or off.
        if local == Some(true) {
            local_addresses_changed(&mut w);
        }
        // Clearing the counters starts traffic counting.
        let clearing =
            msg.cookie() == COOKIE && matches!(msg.cmd(), cmd::CLRSTATS | cmd::GETCLRSTATS);
        if clearing && (resp.is_some() || err.is_ok()) {
            start_counting(w);
        }
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

    #[inline(always)]
    fn rcvdata(r: DataReader<'_, Self>, hook: DataHook<'_, Self>, item: DataItem) -> KResult<()> {
        // Constants of the entry point netgraph called (see `counting`).
        let variant = hook.variant();
        let count = variant & VARIANT_COUNTED != 0;
        let local = variant & VARIANT_LOCALADDR != 0;
        let (sh, st) = r.state();
        let m = item.into_mbuf();
        // No socket, or a listening one: sosend would fail (ENOTCONN for a
        // listening socket, which may also leak the chain).
        let Some(tx) = st.so.sender() else {
            return Err(refuse(sh, st, m));
        };
        let mut p = match m.into_packet() {
            Ok(p) => p,
            Err(m) => return send_chain(sh, tx, m, count),
        };
        // A packet that arrived as broadcast/multicast must not leave as one.
        p.clear_flags(MbufFlags::BCAST | MbufFlags::MCAST);
        if local && p.has_tags() {
            // Local addresses are on (an ngsock addition): the packet may
            // carry a local-address tag, `srcaddr`.
            let cx = srcaddr::Ctx {
                id: sh.id,
                family: st.family,
                dgram: st.dgram,
                tx: &sh.tx,
                cache: &sh.ctl,
                count,
            };
            return srcaddr::send_tagged(tx, &cx, p);
        }
        match p.tag_at(COOKIE, TAG_SOCKADDR) {
            TagAt::None => {}
            TagAt::First if count => return send_tagged::<true, true>(sh, tx, p),
            TagAt::First => return send_tagged::<false, true>(sh, tx, p),
            TagAt::Elsewhere => return send_tagged_later(sh, tx, p, count),
        }
        // To the connected peer.
        if count {
            let len = p.byte_len();
            return sent::<true>(sh, tx.send(p, None), len, false);
        }
        sent::<false>(sh, tx.send(p, None), 0, false)
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

    fn shutdown(mut w: Dying<'_, Self>) {
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

    /// The socket upcalls' event (set in `connect`): socket news. `arg`
    /// is a constant of the event's entry point (see `counting`).
    #[inline(always)]
    fn event(mut e: Event<'_, Self>, arg: i32) {
        let node = e.node();
        let hook = e.first_hook();
        let (sh, st) = e.state();
        let count = arg == EV_NEWS_COUNTED || arg == EV_NEWS_LOCAL_COUNTED;
        let local = arg == EV_NEWS_LOCAL || arg == EV_NEWS_LOCAL_COUNTED;
        socket_news(node, hook, sh, st, count, local);
    }

    fn function(mut w: W<'_>, arg: i32) {
        match arg {
            FN_INCOMING => incoming(w),
            FN_ACCEPT => {
                let node = w.node();
                if let Some((_, st)) = w.state() {
                    // Every completed connection is accepted, requested or not.
                    let _ = accept(node, st);
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
        cmd::ACCEPT => noreply(accept_request(node, st, arg, token, retaddr)),
        cmd::CONNECT => noreply(connect(st, arg, token, retaddr)),
        cmd::GETNAME | cmd::GETPEERNAME => reply(getname(st, msg, c == cmd::GETPEERNAME)),
        cmd::GETOPT => reply(getopt(st, msg)),
        cmd::SETOPT => noreply(setopt(st, arg)),
        cmd::GETSTATS | cmd::GETCLRSTATS => reply(getstats(sh, st, msg, c == cmd::GETCLRSTATS)),
        // (`clrstats` and `getclrstats` also start traffic counting: see
        // `Ksocket::rcvmsg`.)
        cmd::CLRSTATS => noreply(args::empty_arg(arg).map_err(errno).map(|()| {
            stats::collect(&sh.tx, &mut st.rx, true);
        })),
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
    st.so.get().ok_or(Errno::ENXIO)
}

fn bind(st: &State, arg: &[u8]) -> KResult<()> {
    args::sockaddr_arg(arg).map_err(errno)?;
    let so = socket(st)?;
    so.bind(&SockAddr::from_bytes(arg)?)
}

fn listen(node: Node<'_>, st: &mut State, arg: &[u8]) -> KResult<()> {
    let backlog = args::listen_arg(arg).map_err(errno)?;
    st.so.get().ok_or(Errno::ENXIO)?.set_nbio();
    let so = st.so.listen(backlog)?;
    so.set_listen_upcall(node, FUNCTION, FN_ACCEPT);
    Ok(())
}

fn accept_request(
    node: Node<'_>,
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
    match accept(node, st) {
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
fn accept(node: Node<'_>, st: &mut State) -> KResult<()> {
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
        so: SocketSlot::with(so),
        flags: KsFlags::CLONED | KsFlags::EMBRYONIC,
        // A clone is a node made now: it counts as the tunable says.
        counting: tunables::count_traffic(),
        ..State::default()
    };
    let Ok(p) = Private::<Ksocket>::new(Shared::new(child.node()), cst) else {
        return Ok(());
    };
    // No upcalls yet: the clone's connect (once it has a hook) sets them
    // and drains what arrived meanwhile.
    if child.install(p).is_err() {
        // Not reachable for a fresh node; dropping the data removes the
        // upcalls and closes the socket.
        return Ok(());
    }
    embryos::insert(entry, child.node(), node.id());
    args::fill_accept_reply(resp.data_mut(), child.node().id(), peer);
    let _ = resp.send_to_id(child.node(), st.response_addr);
    child.commit();
    st.rx.inc(Counter::Accepts);
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

fn setopt(st: &mut State, arg: &[u8]) -> KResult<()> {
    let (level, name, value) = args::setopt_arg(arg).map_err(errno)?;
    let so = socket(st)?;
    srcaddr::check_setopt(so, level, name, value)?;
    so.setopt(level, name, value)?;
    let on = srcaddr::local_option_on(so, st.family, level, name);
    if let Some(on) = on {
        st.flags.set(KsFlags::LOCALADDR, on);
    }
    Ok(())
}

/// After a SETOPT: the hook's data-path variant follows the local-address
/// flag (and the counting).
fn local_addresses_changed(w: &mut W<'_>) {
    let node = w.node();
    let installed = w.installed();
    let hook = w.first_hook();
    let Some((counting, local)) = w
        .state()
        .map(|(_, st)| (st.counting, st.flags.contains(KsFlags::LOCALADDR)))
    else {
        return;
    };
    let Some(h) = hook else {
        return;
    };
    set_variant(w, h, counting, local);
    // The upcalls too; what arrived meanwhile is read by a run queued at
    // once.
    let Some((_, st)) = w.state() else { return };
    let Some(so) = st.so.get_mut() else { return };
    if let (false, Some(n)) = (so.is_listening(), installed) {
        set_news_upcalls(so, n, counting, local);
        let _ = node.send_fn(FUNCTION, FN_INCOMING, SendFlags::QUEUE);
    }
}

fn getstats(sh: &Shared, st: &mut State, msg: &Msg, clear: bool) -> KResult<Msg> {
    args::empty_arg(msg.data()).map_err(errno)?;
    #[allow(clippy::cast_possible_truncation)]
    let mut resp = Msg::new_response(msg, stats::REPLY_LEN as u32)?;
    let v = stats::collect(&sh.tx, &mut st.rx, clear);
    stats::encode(&v, resp.data_mut());
    Ok(resp)
}

/// Socket news from a function item ([`FN_INCOMING`] sent or armed by
/// the node itself): as [`socket_news`].
#[inline(always)]
fn incoming(mut w: W<'_>) {
    let node = w.node();
    let hook = w.first_hook();
    if let Some((sh, st)) = w.state() {
        let count = st.counting;
        let local = st.flags.contains(KsFlags::LOCALADDR);
        socket_news(node, hook, sh, st, count, local);
    }
}

/// Registers the upcalls that queue socket news, counting or not.
fn set_news_upcalls(so: &mut KSocket, n: Installed<'_, Ksocket>, counting: bool, local: bool) {
    match (counting, local) {
        (true, false) => so.set_upcalls::<Ksocket, EV_NEWS_COUNTED>(n),
        (false, false) => so.set_upcalls::<Ksocket, FN_INCOMING>(n),
        (true, true) => so.set_upcalls::<Ksocket, EV_NEWS_LOCAL_COUNTED>(n),
        (false, true) => so.set_upcalls::<Ksocket, EV_NEWS_LOCAL>(n),
    }
}

/// Starts traffic counting (`clrstats`, `getclrstats`): the hook switches
/// to the counting variant of the data path, the upcalls to the counting
/// event; what arrived while they were being replaced is read by a run
/// queued at once.
fn start_counting(mut w: W<'_>) {
    let node = w.node();
    let installed = w.installed();
    let hook = w.first_hook();
    let local = w
        .state()
        .is_some_and(|(_, st)| st.flags.contains(KsFlags::LOCALADDR));
    if let Some(h) = hook {
        set_variant(&mut w, h, true, local);
    }
    let Some((_, st)) = w.state() else { return };
    st.counting = true;
    let Some(so) = st.so.get_mut() else { return };
    if let (false, Some(n), Some(_)) = (so.is_listening(), installed, hook) {
        set_news_upcalls(so, n, true, local);
        let _ = node.send_fn(FUNCTION, FN_INCOMING, SendFlags::QUEUE);
    }
}

/// The socket has news (data, space, connection state): connect
/// completion, then forward everything readable to the hook, then EOF.
#[inline(always)]
fn socket_news(
    node: Node<'_>,
    hook: Option<Hook<'_>>,
    sh: &Shared,
    st: &mut State,
    count: bool,
    local: bool,
) {
    // A listening socket has no data to read (its events are accepts).
    let Some(so) = st.so.receiver() else {
        return;
    };
    // Let the next upcall queue another run.
    so.rearm();
    if st.flags.contains(KsFlags::CONNECTING) {
        let (token, to) = (st.response_token, st.response_addr);
        connect_done(node, so, &mut st.flags, token, to);
    }
    // Without a hook (embryonic clone) the data waits in the socket.
    let Some(hook) = hook else {
        return;
    };
    if local {
        receive_local(sh, hook, &mut st.rx, so, count, st.family);
    } else {
        receive(sh, hook, &mut st.rx, so, count);
    }
    if so.cant_rcv_more() && !st.flags.contains(KsFlags::EOFSEEN) {
        eof(hook, &mut st.rx, &mut st.flags);
    }
}

/// End of file: one zero-length packet, once.
#[cold]
#[inline(never)]
fn eof(hook: Hook<'_>, rx: &mut RxStats, flags: &mut KsFlags) {
    if let Ok(m) = Packet::new_empty() {
        if hook.send_data(m).is_ok() {
            rx.inc(Counter::Eofs);
        }
    }
    flags.insert(KsFlags::EOFSEEN);
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
#[cold]
#[inline(never)]
fn connect_done(node: Node<'_>, so: &KSocket, flags: &mut KsFlags, token: u32, to: u32) {
    let (error, still_connecting) = so.take_connect_result();
    if still_connecting {
        return;
    }
    if let Ok(mut m) = Msg::new(COOKIE, cmd::CONNECT, 4, c"NGM_KSOCKET_CONNECT") {
        m.set_response(token);
        m.data_mut().copy_from_slice(&error.to_ne_bytes());
        let _ = m.send_to_id(node, to);
    }
    flags.remove(KsFlags::CONNECTING);
}

/// Sends a packet that carries tags: to the address of an
/// NG_KSOCKET_TAG_SOCKADDR tag made by this node or by a third party (ID
/// 0), else to the connected peer. `FIRST`: that tag is the first one.
#[inline(always)]
fn send_tagged<const COUNT: bool, const FIRST: bool>(
    sh: &Shared,
    tx: Sender<'_>,
    p: Packet,
) -> KResult<()> {
    let len = if COUNT { p.byte_len() } else { 0 };
    let mut bad = false;
    let r = tx.send_packet(p, |p| {
        let tag = if FIRST {
            p.first_tag_payload(COOKIE, TAG_SOCKADDR)
        } else {
            p.tag_payload(COOKIE, TAG_SOCKADDR)
        };
        let Some(tag) = tag else {
            return Ok(None);
        };
        match args::tag_dest(tag, sh.id) {
            TagDest::Ignore => Ok(None),
            TagDest::Use(sa) => Ok(Some(sa)),
            TagDest::Malformed => {
                bad = true;
                Err(Errno::EINVAL)
            }
        }
    });
    sent::<COUNT>(sh, r, len, bad)
}

/// [`send_tagged`] of a packet whose first tag is another: the tag is
/// looked for down the list (`m_tag_locate`).
#[inline(never)]
fn send_tagged_later(sh: &Shared, tx: Sender<'_>, p: Packet, count: bool) -> KResult<()> {
    if count {
        send_tagged::<true, false>(sh, tx, p)
    } else {
        send_tagged::<false, false>(sh, tx, p)
    }
}

/// Counts the outcome of a send of `len` bytes: refused by the socket
/// (`tx_errors`), dropped for a malformed address tag (`tx_drop_badaddr`),
/// or, when counting traffic, sent.
#[inline(always)]
fn sent<const COUNT: bool>(sh: &Shared, r: KResult<()>, len: u64, badaddr: bool) -> KResult<()> {
    if let Err(e) = r {
        return Err(tx_error(sh, e, badaddr));
    }
    if COUNT {
        sh.tx.inc(Tx::Packets);
        sh.tx.add(Tx::Bytes, len);
    }
    r
}

/// Sends a chain without a packet header (so without tags or flags to
/// clear): to the connected peer, the socket layer judging it.
#[cold]
#[inline(never)]
fn send_chain(sh: &Shared, so: Sender<'_>, mut m: Mbuf, count: bool) -> KResult<()> {
    m.clear_flags(MbufFlags::BCAST | MbufFlags::MCAST);
    let len = u64::try_from(m.chain_len()).unwrap_or(0);
    match so.send(m, None) {
        Ok(()) => {
            if count {
                sh.tx.inc(Tx::Packets);
                sh.tx.add(Tx::Bytes, len);
            }
            Ok(())
        }
        Err(e) => {
            sh.tx.inc(Tx::Errors);
            Err(e)
        }
    }
}

/// Counts a packet not sent: its address tag was malformed
/// (`tx_drop_badaddr`), or the socket refused it (`tx_errors`).
#[cold]
#[inline(never)]
fn tx_error(sh: &Shared, e: Errno, badaddr: bool) -> Errno {
    sh.tx
        .inc(if badaddr { Tx::DropBadaddr } else { Tx::Errors });
    // Opaque, so that callers tail-call this instead of keeping `e`.
    core::hint::black_box(e)
}

/// Why a packet cannot be sent: no socket (`ENXIO`) or a listening one
/// (`ENOTCONN`); counted. The packet is dropped.
#[cold]
#[inline(never)]
fn refuse(sh: &Shared, st: &State, m: Mbuf) -> Errno {
    drop(m);
    if st.so.get().is_some() {
        sh.tx.inc(Tx::DropListen);
        Errno::ENOTCONN
    } else {
        sh.tx.inc(Tx::DropNosock);
        Errno::ENXIO
    }
}

/// Forwards everything readable on `so` out of `hook`. The loop ends when
/// the socket has nothing more (a `soreceive` that returns nothing, or the
/// buffer seen drained after a datagram: see `KSocket::surely_drained`).
#[inline(always)]
fn receive(sh: &Shared, hook: Hook<'_>, rx: &mut RxStats, so: &KSocket, count: bool) {
    receive_in::<false>(sh, hook, rx, so, count, 0);
}

/// [`receive`] with local addresses on (an ngsock addition, `srcaddr`): a
/// datagram of an unconnected socket (of `family`) also carries its local
/// address. Out of line, so that the usual loop keeps its registers.
#[cold]
#[inline(never)]
fn receive_local(
    sh: &Shared,
    hook: Hook<'_>,
    rx: &mut RxStats,
    so: &KSocket,
    count: bool,
    family: i32,
) {
    receive_in::<true>(sh, hook, rx, so, count, family);
}

#[inline(always)]
fn receive_in<const LADDR: bool>(
    sh: &Shared,
    hook: Hook<'_>,
    rx: &mut RxStats,
    so: &KSocket,
    count: bool,
    family: i32,
) {
    loop {
        // Ask for the source address only when it can differ per packet.
        let unconnected = !so.is_connected();
        let mut control = None;
        let got = if LADDR {
            so.input()
                .recv_control(IP_MAXPACKET, unconnected, &mut control)
        } else {
            so.recv(IP_MAXPACKET, unconnected)
        };
        let r = match got {
            Ok(r) => r,
            Err(e) => {
                if !is_wouldblock(e) {
                    rx.inc(Counter::RxErrors);
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
            rx.inc(Counter::RxDropTrunc);
            drop(m);
        } else {
            // Stream data has no packet boundaries (and no packet header): each
            // read becomes one packet behind a fresh header. No data is copied.
            let m = match (so.is_stream(), m.into_packet()) {
                (false, Ok(p)) => Ok(p),
                (true, Ok(p)) => Mbuf::from(p).behind_new_header(),
                (_, Err(m)) => m.behind_new_header(),
            };
            let Ok(m) = m else {
                rx.inc(Counter::RxDropNobufs);
                break;
            };
            let m = match r.addr {
                Some(sa) => tag_source(&sh.id, rx, m, &sa),
                None => m,
            };
            let m = if LADDR && unconnected {
                srcaddr::tag_local(sh.id, rx, &sh.ctl, m, control.take(), family)
            } else {
                Some(m)
            };
            // Counted as received; a packet the hook refuses is counted
            // as dropped too.
            if let Some(m) = m {
                deliver(hook, rx, m, count);
            }
        }
        if so.surely_drained() {
            break;
        }
    }
}

/// Sends a received packet out of the hook, counting it when `count`.
#[inline(always)]
fn deliver(hook: Hook<'_>, rx: &mut RxStats, m: Packet, count: bool) {
    if count {
        rx.inc(Counter::RxPackets);
        rx.add(Counter::RxBytes, m.byte_len());
        if hook.send_data(m).is_err() {
            rx.inc(Counter::RxDropHook);
        }
    } else {
        let _ = hook.send_data(m);
    }
}

/// Attaches the source address as an `NG_KSOCKET_TAG_SOCKADDR` tag carrying
/// this node's ID; without memory for the tag the packet goes untagged.
fn tag_source(id: &u32, rx: &mut RxStats, mut m: Packet, sa: &SoName) -> Packet {
    // The payload is `struct sa_tag` after its header: our ID, then the
    // address.
    if m.prepend_tag_with(COOKIE, TAG_SOCKADDR, id, sa.as_bytes())
        .is_err()
    {
        rx.inc(Counter::TagFailures);
    }
    m
}
