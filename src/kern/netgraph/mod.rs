//! netgraph(4): nodes, hooks, items and messages, node types, parse types
//! and callouts.
//!
//! Ownership rules, encoded in types:
//! * [`Node`] and [`Hook`] are borrowed: valid for the lifetime they carry
//!   (a method call, or a counted reference held by the caller).
//!   [`NodeRef`] and [`HookRef`] are counted references (`NG_NODE_REF` /
//!   `NG_HOOK_REF`), dropped exactly once.
//! * [`Item`] owns a `struct ng_item`; dropping it frees it, with any
//!   payload still attached. Taking the payload out ([`Item::take_mbuf`],
//!   [`Item::take_msg`]) moves its ownership to the caller.
//! * [`Msg`] owns a control message; dropping it frees it. Sending consumes
//!   it, on success and on error alike.
//! * A node type ([`NodeType`]) reaches its private data only through the
//!   gate tokens netgraph's calling contract allows: [`Writer`] (exclusive)
//!   or [`Reader`] (shared with other readers).

mod callout;
mod hook;
mod item;
mod msg;
mod ngtype;
mod node;
pub mod parse;

pub use callout::NgCallout;
pub use hook::{Addressed, DataOut, Hook, HookRef};
pub use item::{DataItem, Item};
pub use msg::{Completion, Msg, NG_MESG_HDR};
pub use ngtype::{
    type_exists, DataHook, DataReader, Dying, Event, Installed, ModEvent, NodeFn, NodeType,
    Private, Reader, SendFlags, TypeRecord, TypedNode, Writer,
};
pub use node::{NewNode, Node, NodeRef, RemoveFailed};

/// `NG_HOOKSIZ`: size of a hook-name buffer, NUL included.
pub const NG_HOOKSIZ: usize = fbsd_sys::NG_HOOKSIZ as usize;
/// `NG_NODESIZ`: size of a node-name buffer, NUL included.
pub const NG_NODESIZ: usize = fbsd_sys::NG_NODESIZ as usize;
/// `NG_TYPESIZ`: size of a type-name buffer, NUL included.
pub const NG_TYPESIZ: usize = fbsd_sys::NG_TYPESIZ as usize;
/// `NG_VERSION`: the message format version.
pub const NG_VERSION: u8 = fbsd_sys::NG_VERSION as u8;
/// `NGM_GENERIC_COOKIE`: the cookie of netgraph's generic messages.
pub const NGM_GENERIC_COOKIE: u32 = fbsd_sys::NGM_GENERIC_COOKIE;
/// `NGM_MKPEER`: the generic "make a peer node" command.
pub const NGM_MKPEER: u32 = fbsd_sys::NGM_MKPEER;
/// `NGM_BINARY2ASCII`: the generic "print this binary message" command.
pub const NGM_BINARY2ASCII: u32 = fbsd_sys::NGM_BINARY2ASCII;
