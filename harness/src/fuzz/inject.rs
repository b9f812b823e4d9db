//! `fzinject`: a node type of the fuzzer that sends packets a user process
//! cannot make into a ksocket — with mbuf tags (address tags with any node
//! ID and length, foreign cookies, several tags), link-layer flags
//! (`M_BCAST`, `M_MCAST`) and chains of small mbufs — and counts what comes
//! back. Created with MKPEER like any node type (`mkpeer . fzinject f up`);
//! it sends on its hook named `k` (`mkpeer [id]: ksocket k inet/dgram/udp`)
//! and accepts any other hooks, dropping what arrives on them.

use std::cell::RefCell;
use std::ffi::{c_char, c_int};

use fbsd_sys::{hook_p, item_p, ng_type, node_p};

use crate::kern::mbuf::{self as kmbuf, fields};
use crate::netgraph::core::exports as k;
use crate::netgraph::macros;

/// The type's name.
pub const TYPE: &str = "fzinject";
/// The hook packets are sent on.
pub const HOOK_NAME: &str = "k";

// Kernel state (the node type is the kernel's), whichever kernel thread
// runs the node.
crate::kern::klocal::kernel_local! {
    static NODES: RefCell<Vec<node_p>> = RefCell::new(Vec::new());
    static HOOK: RefCell<hook_p> = RefCell::new(std::ptr::null_mut());
    static RECEIVED: RefCell<u64> = RefCell::new(0);
    static LAST: RefCell<Option<Received>> = RefCell::new(None);
}

/// The last packet the node received: bytes, first mbuf's `m_flags`, tags.
#[derive(Clone, Debug)]
pub struct Received {
    pub data: Vec<u8>,
    pub flags: u32,
    pub tags: Vec<(u32, u16, Vec<u8>)>,
}

unsafe extern "C" fn constructor(node: node_p) -> c_int {
    NODES.with(|n| n.borrow_mut().push(node));
    0
}

unsafe extern "C" fn shutdown(node: node_p) -> c_int {
    NODES.with(|n| n.borrow_mut().retain(|&x| x != node));
    // SAFETY: the creation reference, dropped once.
    unsafe { k::ngk_unref_node(node) };
    0
}

unsafe extern "C" fn newhook(_node: node_p, hook: hook_p, name: *const c_char) -> c_int {
    // SAFETY: netgraph passes the hook's NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(name) };
    if name.to_bytes() == HOOK_NAME.as_bytes() {
        HOOK.with(|h| *h.borrow_mut() = hook);
    }
    0
}

unsafe extern "C" fn rcvdata(_hook: hook_p, item: item_p) -> c_int {
    RECEIVED.with(|r| *r.borrow_mut() += 1);
    // SAFETY: a data item handed to us; its mbuf is read, then both freed.
    unsafe {
        let m = (*item).body.da_m;
        if !m.is_null() && kmbuf::is_live(m) {
            let rec = Received {
                data: kmbuf::to_vec(m),
                flags: fields::flags(m),
                tags: kmbuf::tags_of(m),
            };
            LAST.with(|l| *l.borrow_mut() = Some(rec));
        }
        macros::free_item(item);
    }
    0
}

unsafe extern "C" fn rcvmsg(_node: node_p, item: item_p, _lasthook: hook_p) -> c_int {
    // SAFETY: a message item handed to us.
    unsafe { macros::free_item(item) };
    0
}

unsafe extern "C" fn disconnect(hook: hook_p) -> c_int {
    HOOK.with(|h| {
        if *h.borrow() == hook {
            *h.borrow_mut() = std::ptr::null_mut();
        }
    });
    // SAFETY: the hook's node is live during disconnect.
    unsafe {
        let node = macros::hook_node(hook);
        if macros::numhooks(node) == 0 && macros::node_is_valid(node) {
            k::ngk_rmnode_self(node);
        }
    }
    0
}

/// Registers the type (once per process).
pub fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let t: &'static mut ng_type = Box::leak(Box::default());
        t.version = fbsd_sys::NG_ABI_VERSION;
        t.name = c"fzinject".as_ptr();
        t.constructor = Some(constructor);
        t.shutdown = Some(shutdown);
        t.newhook = Some(newhook);
        t.rcvdata = Some(rcvdata);
        t.rcvmsg = Some(rcvmsg);
        t.disconnect = Some(disconnect);
        // SAFETY: a complete, leaked type record.
        let e = unsafe { k::ngk_newtype(t) };
        if e != 0 {
            eprintln!("fuzz: cannot register the {TYPE} node type: errno {e}");
        }
    });
}

/// Shuts every fzinject node down (the end of a case: a user process
/// closing its sockets does not remove nodes it does not own).
pub fn shutdown_all() {
    let nodes = NODES.with(|n| n.borrow().clone());
    for node in nodes {
        // SAFETY: a live node of ours (removed from the list at shutdown).
        unsafe {
            if macros::node_is_valid(node) {
                k::ngk_rmnode_self(node);
            }
        }
    }
}

/// Packets the node received so far.
pub fn received() -> u64 {
    RECEIVED.with(|r| *r.borrow())
}

/// Takes the last packet received.
pub fn take_last() -> Option<Received> {
    LAST.with(|l| l.borrow_mut().take())
}

/// True if the node has its hook.
pub fn hooked() -> bool {
    HOOK.with(|h| !h.borrow().is_null())
}

/// One packet to send.
pub struct Packet {
    pub data: Vec<u8>,
    /// Bytes per mbuf (0: as few as possible).
    pub chunk: usize,
    /// Bits set in the first mbuf's `m_flags`.
    pub flags: u32,
    /// `(cookie, type, payload)` of each tag.
    pub tags: Vec<(u32, u16, Vec<u8>)>,
}

/// Sends `p` out of the node's hook; the netgraph error, or ENOTCONN.
pub fn send(p: &Packet) -> c_int {
    let hook = HOOK.with(|h| *h.borrow());
    if hook.is_null() {
        return fbsd_sys::ENOTCONN as c_int;
    }
    let m = if p.chunk == 0 {
        kmbuf::from_bytes(&p.data)
    } else {
        kmbuf::from_bytes_chunked(&p.data, p.chunk.clamp(1, kmbuf::MJUMPAGESIZE))
    };
    // SAFETY: `m` is a fresh packet-header chain we own.
    unsafe { fields::set_flags(m, fields::flags(m) | p.flags) };
    for (cookie, ty, payload) in &p.tags {
        kmbuf::add_tag(m, *cookie, *ty, payload);
    }
    // SAFETY: a fresh chain handed over, and our live hook.
    unsafe { macros::send_data(hook, m, 0) }
}
