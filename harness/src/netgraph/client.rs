//! A Rust netgraph client for the scenario runner and the tests, standing in
//! for a control + data socket pair until ng_socket.ko is loaded.
//!
//! A [`Client`] owns a node of the harness-built-in type `harnessctl` (no
//! constructor, like the socket type: it cannot be created by MKPEER). Sending
//! a control message follows ng_socket's `sendto` exactly: package, address by
//! path relative to the client node (errors returned as is), attach an apply
//! record, `ng_snd_item`, then sleep in the event loop until the apply callback
//! has run and return the error it recorded. Replies and any other messages
//! the node receives are queued for [`Client::recv_msg`] / [`Client::take_reply`];
//! data arriving on its hooks for [`Client::recv_data`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void};
use std::rc::Rc;

use fbsd_sys::{hook_p, item_p, ng_apply_info, ng_mesg, ng_type, node_p};

use super::core::exports as k;
use super::core::{self as core_, field_str, set_field};
use super::macros::{
    free_item, free_msg, mk_message, msg_data, ngi_get_m, ngi_get_msg, ngi_retaddr, NG_MESG_SIZE,
};
use crate::kern::mbuf as mbuf_api;
use crate::kern::sched;

/// Name of the client node type.
pub const CLIENT_TYPE: &str = "harnessctl";

/// Generic cookie.
pub const NGM_GENERIC_COOKIE: u32 = fbsd_sys::NGM_GENERIC_COOKIE;

/// A received message header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MsgHeader {
    pub version: u8,
    pub arglen: u32,
    pub cmd: u32,
    pub flags: u32,
    pub token: u32,
    pub typecookie: u32,
    pub cmdstr: String,
}

/// A message that arrived at the client node.
#[derive(Clone, Debug)]
pub struct Received {
    /// The sender's node ID (the item's return address).
    pub from: u32,
    /// Name of the hook it arrived through, if any.
    pub hook: Option<String>,
    pub header: MsgHeader,
    /// The `arglen` argument bytes.
    pub data: Vec<u8>,
}

/// `struct nodeinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub type_name: String,
    pub id: u32,
    pub hooks: u32,
}

/// `struct linkinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkInfo {
    pub ourhook: String,
    pub peerhook: String,
    pub peer: NodeInfo,
}

/// `struct typeinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeInfo {
    pub name: String,
    pub numnodes: u32,
}

#[derive(Default)]
struct Priv {
    msgs: VecDeque<Received>,
    data: VecDeque<(String, Vec<u8>)>,
    /// Messages the node accepts before answering ENOBUFS (None = unlimited).
    msg_limit: Option<usize>,
}

/// The apply record of one control send, kept alive until its callback ran.
#[repr(C)]
struct ApplyCtx {
    info: ng_apply_info,
    done: bool,
}

/// A netgraph client node.
pub struct Client {
    node: node_p,
    id: u32,
    state: Rc<RefCell<Priv>>,
    token: Cell<u32>,
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn client_type() -> *mut ng_type {
    let t = core_::builtin_type(CLIENT_TYPE);
    if !t.is_null() {
        return t;
    }
    let t = crate::arena::alloc_obj::<ng_type>();
    // SAFETY: fresh zeroed arena type object.
    unsafe {
        (*t).version = fbsd_sys::NG_ABI_VERSION;
        (*t).name = crate::arena::alloc_cstr(CLIENT_TYPE);
        (*t).rcvmsg = Some(ctl_rcvmsg);
        (*t).newhook = Some(ctl_newhook);
        (*t).rcvdata = Some(ctl_rcvdata);
        (*t).shutdown = Some(ctl_shutdown);
        let e = k::ngk_newtype(t);
        assert_eq!(e, 0, "registering the {CLIENT_TYPE} type");
    }
    core_::add_builtin(CLIENT_TYPE, t);
    t
}

/// # Safety
/// `node` must be a live client node.
unsafe fn priv_of(node: node_p) -> Option<Rc<RefCell<Priv>>> {
    // SAFETY: nd_private is NULL or an Rc<RefCell<Priv>> leaked by Client::new.
    unsafe {
        let p = (*node).nd_private as *const RefCell<Priv>;
        if p.is_null() {
            return None;
        }
        Rc::increment_strong_count(p);
        Some(Rc::from_raw(p))
    }
}

unsafe extern "C" fn ctl_newhook(_node: node_p, _hook: hook_p, _name: *const c_char) -> c_int {
    0
}

unsafe extern "C" fn ctl_rcvmsg(node: node_p, item: item_p, lasthook: hook_p) -> c_int {
    // SAFETY: the core hands us a live message item we now own.
    unsafe {
        let Some(p) = priv_of(node) else {
            free_item(item);
            return fbsd_sys::EINVAL as c_int;
        };
        let from = ngi_retaddr(item);
        let msg = ngi_get_msg(item);
        free_item(item);
        let full = p
            .borrow()
            .msg_limit
            .is_some_and(|l| p.borrow().msgs.len() >= l);
        if full {
            free_msg(msg);
            return fbsd_sys::ENOBUFS as c_int;
        }
        let h = &(*msg).header;
        let cs = &h.cmdstr;
        let n = cs.iter().position(|&b| b == 0).unwrap_or(cs.len());
        let header = MsgHeader {
            version: h.version,
            arglen: h.arglen,
            cmd: h.cmd,
            flags: h.flags,
            token: h.token,
            typecookie: h.typecookie,
            cmdstr: String::from_utf8_lossy(&cs[..n]).into_owned(),
        };
        let data = std::slice::from_raw_parts(msg_data(msg), h.arglen as usize).to_vec();
        let hook = if lasthook.is_null() {
            None
        } else {
            Some(String::from_utf8_lossy(field_str(&(*lasthook).hk_name)).into_owned())
        };
        free_msg(msg);
        p.borrow_mut().msgs.push_back(Received {
            from,
            hook,
            header,
            data,
        });
    }
    0
}

unsafe extern "C" fn ctl_rcvdata(hook: hook_p, item: item_p) -> c_int {
    // SAFETY: the core hands us a live data item and its arrival hook.
    unsafe {
        let m = ngi_get_m(item);
        free_item(item);
        let bytes = mbuf_api::to_vec(m);
        super::macros::free_m(m);
        let name = String::from_utf8_lossy(field_str(&(*hook).hk_name)).into_owned();
        if let Some(p) = priv_of((*hook).hk_node) {
            p.borrow_mut().data.push_back((name, bytes));
        }
    }
    0
}

unsafe extern "C" fn ctl_shutdown(node: node_p) -> c_int {
    // SAFETY: the core calls shutdown once; we drop the node's Rc and its creation reference.
    unsafe {
        let p = std::mem::replace(&mut (*node).nd_private, std::ptr::null_mut())
            as *const RefCell<Priv>;
        if !p.is_null() {
            drop(Rc::from_raw(p));
        }
        k::ngk_unref_node(node);
    }
    0
}

unsafe extern "C" fn client_apply(ctx: *mut c_void, _error: c_int) {
    let a = ctx.cast::<ApplyCtx>();
    // SAFETY: `ctx` is the ApplyCtx this client attached; it lives until `done`.
    unsafe { (*a).done = true };
    sched::wakeup_chan(a as usize, false);
}

fn nodeinfo_of(ni: &fbsd_sys::nodeinfo) -> NodeInfo {
    NodeInfo {
        name: String::from_utf8_lossy(field_str(&ni.name)).into_owned(),
        type_name: String::from_utf8_lossy(field_str(&ni.type_)).into_owned(),
        id: ni.id,
        hooks: ni.hooks,
    }
}

fn read_at<T: Copy>(d: &[u8], off: usize) -> Option<T> {
    if off + std::mem::size_of::<T>() > d.len() {
        return None;
    }
    // SAFETY: bounds checked; T is a plain C struct read unaligned.
    Some(unsafe { d.as_ptr().add(off).cast::<T>().read_unaligned() })
}

impl Client {
    /// Creates a client node (refs: creation + the client's own).
    pub fn new() -> Result<Client, i32> {
        let t = client_type();
        let mut node: node_p = std::ptr::null_mut();
        // SAFETY: registered type; out pointer on our stack.
        let e = unsafe { k::ngk_make_node_common(t, &mut node) };
        if e != 0 {
            return Err(e);
        }
        let state = Rc::new(RefCell::new(Priv::default()));
        // SAFETY: a fresh node we own.
        unsafe {
            (*node).nd_private = Rc::into_raw(state.clone()) as *mut c_void;
            core_::node_ref(node);
        }
        Ok(Client {
            node,
            id: core_::node2id(node),
            state,
            token: Cell::new(0),
        })
    }

    /// Creates a client node and names it.
    pub fn named(name: &str) -> Result<Client, i32> {
        let c = Client::new()?;
        c.name(".", name)?;
        Ok(c)
    }

    /// The client's node.
    pub fn node(&self) -> node_p {
        self.node
    }

    /// The client node's ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// True while the client node has not been shut down.
    pub fn is_valid(&self) -> bool {
        // SAFETY: we hold a reference, so the node memory is live.
        unsafe { (*self.node).nd_flags & core_::NGF_INVALID == 0 }
    }

    /// Makes the node answer ENOBUFS once `n` messages are waiting (None: unlimited).
    pub fn set_msg_limit(&self, n: Option<usize>) {
        self.state.borrow_mut().msg_limit = n;
    }

    fn next_token(&self) -> u32 {
        let t = self.token.get().wrapping_add(1);
        self.token.set(t);
        t
    }

    /// Sends an already built message (ownership passes to the core) to
    /// `path` like ng_socket's control sendto: address errors are returned at
    /// once, otherwise the error recorded by the apply callback once the
    /// message (and any reply re-using its item) has been fully applied.
    /// `EDEADLK` (harness-only) if the callback never runs.
    ///
    /// # Safety
    /// `msg` must be a message allocated with M_NETGRAPH_MSG that the caller owns.
    pub unsafe fn send_raw(&self, path: &str, msg: *mut ng_mesg) -> Result<(), i32> {
        if !self.is_valid() {
            free_msg(msg);
            return Err(fbsd_sys::ENOTCONN as i32);
        }
        let p = cstr(path);
        // SAFETY: our live node; `msg` is a message we own.
        unsafe {
            let item = k::ngk_package_msg(msg, fbsd_sys::NG_WAITOK as c_int);
            if item.is_null() {
                return Err(fbsd_sys::ENOMEM as i32);
            }
            let e = k::ngk_address_path(self.node, item, p.as_ptr().cast(), 0);
            if e != 0 {
                return Err(e);
            }
            let ctx = Box::into_raw(Box::new(ApplyCtx {
                info: ng_apply_info {
                    apply: Some(client_apply),
                    context: std::ptr::null_mut(),
                    refs: 0,
                    error: 0,
                },
                done: false,
            }));
            (*ctx).info.context = ctx.cast();
            (*item).apply = &mut (*ctx).info;
            k::ngk_snd_item(item, 0);
            loop {
                if (*ctx).done {
                    break;
                }
                if sched::sleep_on(ctx as usize, None, "ngsock") != 0 && !(*ctx).done {
                    // The record stays referenced by a stuck item: leak it on purpose.
                    return Err(fbsd_sys::EDEADLK as i32);
                }
            }
            let ctx = Box::from_raw(ctx);
            match ctx.info.error {
                0 => Ok(()),
                e => Err(e),
            }
        }
    }

    /// Sends a message (`cookie`, `cmd`, argument bytes) to `path`; returns its token.
    pub fn send_msg(&self, path: &str, cookie: u32, cmd: u32, data: &[u8]) -> Result<u32, i32> {
        let msg = mk_message(cookie, cmd, data.len(), "", fbsd_sys::M_WAITOK as c_int);
        let token = self.next_token();
        // SAFETY: fresh message of `data.len()` argument bytes.
        unsafe {
            (*msg).header.token = token;
            std::ptr::copy_nonoverlapping(data.as_ptr(), msg_data(msg), data.len());
        }
        // SAFETY: a message we just allocated.
        unsafe { self.send_raw(path, msg) }.map(|()| token)
    }

    /// Sends a message and takes the reply with its token if one arrived.
    pub fn request(
        &self,
        path: &str,
        cookie: u32,
        cmd: u32,
        data: &[u8],
    ) -> Result<Option<Received>, i32> {
        let token = self.send_msg(path, cookie, cmd, data)?;
        Ok(self.take_reply(token))
    }

    /// Removes and returns the first received response with this token.
    pub fn take_reply(&self, token: u32) -> Option<Received> {
        let mut s = self.state.borrow_mut();
        let i = s
            .msgs
            .iter()
            .position(|m| m.header.token == token && m.header.flags & fbsd_sys::NGF_RESP != 0)?;
        s.msgs.remove(i)
    }

    /// Removes and returns the oldest received message.
    pub fn recv_msg(&self) -> Option<Received> {
        self.state.borrow_mut().msgs.pop_front()
    }

    /// Number of received messages waiting.
    pub fn pending_msgs(&self) -> usize {
        self.state.borrow().msgs.len()
    }

    fn generic(&self, path: &str, cmd: u32, data: &[u8]) -> Result<(), i32> {
        self.send_msg(path, NGM_GENERIC_COOKIE, cmd, data)
            .map(|_| ())
    }

    fn generic_reply(&self, path: &str, cmd: u32) -> Result<Received, i32> {
        match self.request(path, NGM_GENERIC_COOKIE, cmd, &[])? {
            Some(r) => Ok(r),
            None => Err(fbsd_sys::ENOMSG as i32),
        }
    }

    /// `mkpeer` (NGM_MKPEER to `path`).
    pub fn mkpeer(
        &self,
        path: &str,
        type_name: &str,
        ourhook: &str,
        peerhook: &str,
    ) -> Result<(), i32> {
        let mut m = fbsd_sys::ngm_mkpeer::default();
        set_field(&mut m.type_, type_name.as_bytes());
        set_field(&mut m.ourhook, ourhook.as_bytes());
        set_field(&mut m.peerhook, peerhook.as_bytes());
        self.generic(path, fbsd_sys::NGM_MKPEER, as_bytes(&m))
    }

    /// `connect` (NGM_CONNECT to `path`, peer path relative to it).
    pub fn connect(
        &self,
        path: &str,
        peer: &str,
        ourhook: &str,
        peerhook: &str,
    ) -> Result<(), i32> {
        let mut m = fbsd_sys::ngm_connect::default();
        set_field(&mut m.path, peer.as_bytes());
        set_field(&mut m.ourhook, ourhook.as_bytes());
        set_field(&mut m.peerhook, peerhook.as_bytes());
        self.generic(path, fbsd_sys::NGM_CONNECT, as_bytes(&m))
    }

    /// `name` (NGM_NAME).
    pub fn name(&self, path: &str, name: &str) -> Result<(), i32> {
        let mut m = fbsd_sys::ngm_name::default();
        set_field(&mut m.name, name.as_bytes());
        self.generic(path, fbsd_sys::NGM_NAME, as_bytes(&m))
    }

    /// `rmhook` (NGM_RMHOOK).
    pub fn rmhook(&self, path: &str, hook: &str) -> Result<(), i32> {
        let mut m = fbsd_sys::ngm_rmhook::default();
        set_field(&mut m.ourhook, hook.as_bytes());
        self.generic(path, fbsd_sys::NGM_RMHOOK, as_bytes(&m))
    }

    /// `shutdown` (NGM_SHUTDOWN).
    pub fn shutdown(&self, path: &str) -> Result<(), i32> {
        self.generic(path, fbsd_sys::NGM_SHUTDOWN, &[])
    }

    /// `info` (NGM_NODEINFO).
    pub fn nodeinfo(&self, path: &str) -> Result<NodeInfo, i32> {
        let r = self.generic_reply(path, fbsd_sys::NGM_NODEINFO)?;
        let ni: fbsd_sys::nodeinfo = read_at(&r.data, 0).ok_or(fbsd_sys::EIO as i32)?;
        Ok(nodeinfo_of(&ni))
    }

    /// `show` (NGM_LISTHOOKS): the node and its valid hooks, newest first.
    pub fn show(&self, path: &str) -> Result<(NodeInfo, Vec<LinkInfo>), i32> {
        let r = self.generic_reply(path, fbsd_sys::NGM_LISTHOOKS)?;
        let ni: fbsd_sys::nodeinfo = read_at(&r.data, 0).ok_or(fbsd_sys::EIO as i32)?;
        let sz = std::mem::size_of::<fbsd_sys::linkinfo>();
        let base = std::mem::size_of::<fbsd_sys::nodeinfo>();
        let links = (0..ni.hooks as usize)
            .filter_map(|i| read_at::<fbsd_sys::linkinfo>(&r.data, base + i * sz))
            .map(|l| LinkInfo {
                ourhook: String::from_utf8_lossy(field_str(&l.ourhook)).into_owned(),
                peerhook: String::from_utf8_lossy(field_str(&l.peerhook)).into_owned(),
                peer: nodeinfo_of(&l.nodeinfo),
            })
            .collect();
        Ok((nodeinfo_of(&ni), links))
    }

    fn namelist(&self, cmd: u32) -> Result<Vec<NodeInfo>, i32> {
        let r = self.generic_reply(".", cmd)?;
        let n: u32 = read_at(&r.data, 0).ok_or(fbsd_sys::EIO as i32)?;
        let sz = std::mem::size_of::<fbsd_sys::nodeinfo>();
        Ok((0..n as usize)
            .filter_map(|i| read_at::<fbsd_sys::nodeinfo>(&r.data, 4 + i * sz))
            .map(|ni| nodeinfo_of(&ni))
            .collect())
    }

    /// `list` (NGM_LISTNODES), in the kernel's order.
    pub fn list(&self) -> Result<Vec<NodeInfo>, i32> {
        self.namelist(fbsd_sys::NGM_LISTNODES)
    }

    /// `list -n` (NGM_LISTNAMES).
    pub fn list_names(&self) -> Result<Vec<NodeInfo>, i32> {
        self.namelist(fbsd_sys::NGM_LISTNAMES)
    }

    /// `types` (NGM_LISTTYPES), newest registered first.
    pub fn types(&self) -> Result<Vec<TypeInfo>, i32> {
        let r = self.generic_reply(".", fbsd_sys::NGM_LISTTYPES)?;
        let n: u32 = read_at(&r.data, 0).ok_or(fbsd_sys::EIO as i32)?;
        let sz = std::mem::size_of::<fbsd_sys::typeinfo>();
        Ok((0..n as usize)
            .filter_map(|i| read_at::<fbsd_sys::typeinfo>(&r.data, 4 + i * sz))
            .map(|t| TypeInfo {
                name: String::from_utf8_lossy(field_str(&t.type_name)).into_owned(),
                numnodes: t.numnodes,
            })
            .collect())
    }

    /// `ngctl msg PATH CMD ARGS` as libnetgraph's NgSendAsciiMsg does it:
    /// NGM_ASCII2BINARY at `path` (the node that understands the command),
    /// then the binary message to the same path. Returns the token.
    pub fn send_ascii(&self, path: &str, cmd: &str, args: &str) -> Result<u32, i32> {
        let mut h = fbsd_sys::ng_mesg_ng_msghdr {
            version: fbsd_sys::NG_VERSION as u8,
            arglen: args.len() as u32 + 1,
            ..Default::default()
        };
        let n = cmd.len().min(h.cmdstr.len() - 1);
        h.cmdstr[..n].copy_from_slice(&cmd.as_bytes()[..n]);
        let mut req = as_bytes(&h).to_vec();
        req.extend_from_slice(args.as_bytes());
        req.push(0);
        let r = self
            .request(path, NGM_GENERIC_COOKIE, fbsd_sys::NGM_ASCII2BINARY, &req)?
            .ok_or(fbsd_sys::ENOMSG as i32)?;
        let bin: fbsd_sys::ng_mesg_ng_msghdr = read_at(&r.data, 0).ok_or(fbsd_sys::EIO as i32)?;
        let args = r.data.get(NG_MESG_SIZE..).unwrap_or(&[]);
        let len = (bin.arglen as usize).min(args.len());
        let msg = mk_message(
            bin.typecookie,
            bin.cmd,
            len,
            "",
            fbsd_sys::M_WAITOK as c_int,
        );
        let token = self.next_token();
        // SAFETY: a fresh message with `len` argument bytes.
        unsafe {
            (*msg).header = bin;
            (*msg).header.arglen = len as u32;
            (*msg).header.token = token;
            (*msg).header.version = fbsd_sys::NG_VERSION as u8;
            std::ptr::copy_nonoverlapping(args.as_ptr(), msg_data(msg), len);
            self.send_raw(path, msg)?;
        }
        Ok(token)
    }

    /// NgRecvAsciiMsg's conversion: NGM_BINARY2ASCII of `m` at its sender
    /// (`[id]:`). Returns (command name, argument text).
    pub fn to_ascii(&self, m: &Received) -> Result<(String, String), i32> {
        let mut h = fbsd_sys::ng_mesg_ng_msghdr {
            version: m.header.version,
            arglen: m.data.len() as u32,
            cmd: m.header.cmd,
            flags: m.header.flags,
            token: m.header.token,
            typecookie: m.header.typecookie,
            ..Default::default()
        };
        let n = m.header.cmdstr.len().min(h.cmdstr.len() - 1);
        h.cmdstr[..n].copy_from_slice(&m.header.cmdstr.as_bytes()[..n]);
        let mut req = as_bytes(&h).to_vec();
        req.extend_from_slice(&m.data);
        let path = format!("[{:x}]:", m.from);
        let r = self
            .request(&path, NGM_GENERIC_COOKIE, fbsd_sys::NGM_BINARY2ASCII, &req)?
            .ok_or(fbsd_sys::ENOMSG as i32)?;
        let ah: fbsd_sys::ng_mesg_ng_msghdr = read_at(&r.data, 0).ok_or(fbsd_sys::EIO as i32)?;
        let cs = &ah.cmdstr;
        let cmd =
            String::from_utf8_lossy(&cs[..cs.iter().position(|&b| b == 0).unwrap_or(cs.len())])
                .into_owned();
        let text = r.data.get(NG_MESG_SIZE..).unwrap_or(&[]);
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        Ok((cmd, String::from_utf8_lossy(&text[..end]).into_owned()))
    }

    /// `ngctl msg PATH CMD ARGS` with the reply (if any) converted to ASCII.
    pub fn msg_ascii(
        &self,
        path: &str,
        cmd: &str,
        args: &str,
    ) -> Result<Option<(String, String)>, i32> {
        let token = self.send_ascii(path, cmd, args)?;
        match self.take_reply(token) {
            Some(r) => self.to_ascii(&r).map(Some),
            None => Ok(None),
        }
    }

    /// Sends `data` out of the client's hook `hook` (like a data socket's
    /// sendto): EHOSTUNREACH if there is no such hook, otherwise whatever
    /// delivery returns (ENETDOWN, a synchronous peer error, or 0).
    pub fn send_data(&self, hook: &str, data: &[u8]) -> Result<(), i32> {
        let name = cstr(hook);
        // SAFETY: our live node; a fresh mbuf we own.
        unsafe {
            let h = k::ngk_findhook(self.node, name.as_ptr().cast());
            if h.is_null() {
                return Err(fbsd_sys::EHOSTUNREACH as i32);
            }
            let m = mbuf_api::from_bytes(data);
            let item = k::ngk_package_data(m, fbsd_sys::NG_WAITOK as c_int);
            if item.is_null() {
                return Err(fbsd_sys::ENOMEM as i32);
            }
            // Data travels inside the network epoch (as ng_socket sends it).
            match crate::kern::epoch::in_net(|| super::macros::fwd_item_hook(item, h, 0)) {
                0 => Ok(()),
                e => Err(e),
            }
        }
    }

    /// Removes and returns the oldest packet received: (hook name, bytes).
    pub fn recv_data(&self) -> Option<(String, Vec<u8>)> {
        self.state.borrow_mut().data.pop_front()
    }

    /// Number of received packets waiting.
    pub fn pending_data(&self) -> usize {
        self.state.borrow().data.len()
    }

    /// Shuts the client node down (as closing the control socket does).
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: we hold a reference on the node.
        unsafe {
            if self.is_valid() {
                k::ngk_rmnode_self(self.node);
            }
            k::ngk_unref_node(self.node);
        }
    }
}

/// The bytes of a plain C struct.
pub fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is a plain C struct; we view its bytes read-only.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// Size of `struct ng_mesg` (header).
pub const MESG_HEADER: usize = NG_MESG_SIZE;
