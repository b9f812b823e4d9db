//! The ksocket type record, its command list and the ASCII parse types
//! (ksocket.md §2.1, §7).
//!
//! Parse-type records are `static`s the kernel reads by address; they refer
//! to netgraph's exported predefined types (`ng_parse_struct_type`, …).

use core::ffi::{c_int, c_void, CStr};

use fbsd_sys::{ng_cmdlist, ng_parse_struct_field, ng_parse_type, ng_type};

use super::args;
use super::node::Ksocket;
use super::opttext;
use super::stats;
use super::tunables;
use crate::kern::cell::KernelCell;
use crate::kern::errno::Errno;
use crate::kern::ngparse::{
    length_entry, parse_entry, unparse_entry, LengthCall, LengthMethod, ParseCall, ParseMethod,
    Predefined, UnparseCall, UnparseMethod,
};
use crate::kern::ngpriv::GatedAdapter;
use crate::pure::sockaddr::{self, ParseOutcome, UnparseOutcome};

/// `NGM_KSOCKET_COOKIE`.
pub const COOKIE: u32 = fbsd_sys::NGM_KSOCKET_COOKIE;
/// `NG_KSOCKET_TAG_SOCKADDR`.
pub const TAG_SOCKADDR: u16 = fbsd_sys::NG_KSOCKET_TAG_SOCKADDR as u16;

/// Command numbers (FreeBSD's, then this node's statistics messages).
pub mod cmd {
    pub const BIND: u32 = fbsd_sys::NGM_KSOCKET_BIND;
    pub const LISTEN: u32 = fbsd_sys::NGM_KSOCKET_LISTEN;
    pub const ACCEPT: u32 = fbsd_sys::NGM_KSOCKET_ACCEPT;
    pub const CONNECT: u32 = fbsd_sys::NGM_KSOCKET_CONNECT;
    pub const GETNAME: u32 = fbsd_sys::NGM_KSOCKET_GETNAME;
    pub const GETPEERNAME: u32 = fbsd_sys::NGM_KSOCKET_GETPEERNAME;
    pub const SETOPT: u32 = fbsd_sys::NGM_KSOCKET_SETOPT;
    pub const GETOPT: u32 = fbsd_sys::NGM_KSOCKET_GETOPT;
    /// Reply: the counters (`struct ng_ksocket_stats`).
    pub const GETSTATS: u32 = 100;
    /// Resets the counters; no reply.
    pub const CLRSTATS: u32 = 101;
    /// Reply: the counters, which are reset in the same step.
    pub const GETCLRSTATS: u32 = 102;
}

/// The type record registered with netgraph.
#[no_mangle]
pub static ngsock_ksocket_type: KernelCell<ng_type> = KernelCell::new(
    GatedAdapter::<Ksocket>::record(c"ksocket", CMDLIST.get().cast_const().cast()),
);

const fn parse_type(
    supertype: *const ng_parse_type,
    info: *const c_void,
    parse: fbsd_sys::ng_parse_t,
    unparse: fbsd_sys::ng_unparse_t,
) -> ng_parse_type {
    ng_parse_type {
        supertype,
        info,
        private: core::ptr::null_mut(),
        parse,
        unparse,
        getDefault: None,
        getAlign: None,
    }
}

const fn field(name: &'static CStr, ty: *const ng_parse_type) -> ng_parse_struct_field {
    ng_parse_struct_field {
        name: name.as_ptr(),
        type_: ty,
        alignment: 0,
    }
}

const END: ng_parse_struct_field = ng_parse_struct_field {
    name: core::ptr::null(),
    type_: core::ptr::null(),
    alignment: 0,
};

/// A byte array whose length a [`LengthMethod`] computes: the array's
/// `info` is the getLength function itself.
const fn bytearray<L: LengthMethod>() -> ng_parse_type {
    let f: unsafe extern "C" fn(*const ng_parse_type, *const u8, *const u8) -> c_int =
        length_entry::<L>;
    parse_type(
        &raw const fbsd_sys::ng_parse_bytearray_type,
        f as *const c_void,
        None,
        None,
    )
}

// ---- generic struct sockaddr: { len family data }, data length = len - 2 ----

/// Data length while text is parsed: `len - 2` (the `len` just parsed; the
/// engine bounds what is written), as FreeBSD computes it.
struct SockdataLen;

impl LengthMethod for SockdataLen {
    fn length(c: &LengthCall) -> c_int {
        // `len` is two bytes before the data (len, family, data...).
        match c.byte_before(2) {
            Some(l) => c_int::from(l.saturating_sub(2)),
            None => 0,
        }
    }
}

/// Data length while a message is printed: `len - 2`, but no more than the
/// message holds after `len` and `family`. FreeBSD prints whatever memory
/// follows the message when `len` claims more.
struct SockdataLenPresent;

impl LengthMethod for SockdataLenPresent {
    fn length(c: &LengthCall) -> c_int {
        let present = c_int::try_from(c.remaining()).unwrap_or(c_int::MAX);
        SockdataLen::length(c).min(present)
    }
}

static GENERIC_SOCKDATA_TYPE: KernelCell<ng_parse_type> =
    KernelCell::new(bytearray::<SockdataLen>());

static GENERIC_SOCKDATA_PRESENT_TYPE: KernelCell<ng_parse_type> =
    KernelCell::new(bytearray::<SockdataLenPresent>());

static GENERIC_SOCKADDR_FIELDS: KernelCell<[ng_parse_struct_field; 4]> = KernelCell::new([
    field(c"len", &raw const fbsd_sys::ng_parse_uint8_type),
    field(c"family", &raw const fbsd_sys::ng_parse_uint8_type),
    field(c"data", GENERIC_SOCKDATA_TYPE.get().cast_const()),
    END,
]);

static GENERIC_SOCKADDR_PRESENT_FIELDS: KernelCell<[ng_parse_struct_field; 4]> = KernelCell::new([
    field(c"len", &raw const fbsd_sys::ng_parse_uint8_type),
    field(c"family", &raw const fbsd_sys::ng_parse_uint8_type),
    field(c"data", GENERIC_SOCKDATA_PRESENT_TYPE.get().cast_const()),
    END,
]);

/// Prints a generic socket address with the data capped at the message.
struct GenericSockaddr;

impl UnparseMethod for GenericSockaddr {
    fn unparse(call: &mut UnparseCall) -> c_int {
        // `len` and `family` must be there.
        if call.split().0.len() < 2 {
            return Errno::EINVAL.raw();
        }
        call.unparse_as(&GENERIC_SOCKADDR_PRESENT_TYPE)
    }
}

/// The generic `struct sockaddr` form (also the `addr` of ACCEPT replies).
static GENERIC_SOCKADDR_TYPE: KernelCell<ng_parse_type> = KernelCell::new(parse_type(
    &raw const fbsd_sys::ng_parse_struct_type,
    GENERIC_SOCKADDR_FIELDS.get().cast_const().cast(),
    None,
    Some(unparse_entry::<GenericSockaddr>),
));

/// The generic form as it is printed (see [`SockdataLenPresent`]).
static GENERIC_SOCKADDR_PRESENT_TYPE: KernelCell<ng_parse_type> = KernelCell::new(parse_type(
    &raw const fbsd_sys::ng_parse_struct_type,
    GENERIC_SOCKADDR_PRESENT_FIELDS.get().cast_const().cast(),
    None,
    None,
));

// ---- struct sockaddr with the family shorthands (local/, inet/, inet6/) ----
//
// Input: every shorthand. Output: `local/` and `inet/` as FreeBSD, IPv6 in
// the generic form unless `net.graph.ksocket.inet6_ascii` is set.

struct SockaddrText;

impl ParseMethod for SockaddrText {
    fn parse(call: &mut ParseCall) -> c_int {
        let mut off = call.off();
        let r = {
            let (input, out, strings) = call.parts();
            sockaddr::parse(input, &mut off, out, &strings)
        };
        call.set_off(off);
        match r {
            Ok(ParseOutcome::Parsed(n)) => {
                call.set_len(n);
                0
            }
            Ok(ParseOutcome::Generic) => call.parse_as(&GENERIC_SOCKADDR_TYPE),
            Err(e) => e,
        }
    }
}

impl UnparseMethod for SockaddrText {
    fn unparse(call: &mut UnparseCall) -> c_int {
        let strings = call.strings();
        // FreeBSD's forms (IPv6 generic) unless `inet6_ascii` is set.
        let dialect = tunables::sockaddr_output();
        let r = {
            let (bin, out) = call.split();
            sockaddr::unparse_with(bin, out, &strings, dialect)
        };
        match r {
            Ok(UnparseOutcome::Text { consumed, .. }) => {
                call.advance(consumed);
                0
            }
            Ok(UnparseOutcome::Generic) => call.unparse_as(&GENERIC_SOCKADDR_PRESENT_TYPE),
            Err(e) => e,
        }
    }
}

/// `struct sockaddr` (no default: an address is never omitted).
static SOCKADDR_TYPE: KernelCell<ng_parse_type> = KernelCell::new(parse_type(
    core::ptr::null(),
    core::ptr::null(),
    Some(parse_entry::<SockaddrText>),
    Some(unparse_entry::<SockaddrText>),
));

// ---- struct ng_ksocket_sockopt: { level name value }, value = arglen - 8 ----

struct SockoptValLen;

impl LengthMethod for SockoptValLen {
    fn length(c: &LengthCall) -> c_int {
        // As FreeBSD computes it: the enclosing message's arglen minus the
        // 8-byte level/name header. FreeBSD's difference goes negative for
        // an arglen below 8, which `SockoptText` refuses before this runs;
        // here it stops at 0.
        let n = c.header().arglen.saturating_sub(SOCKOPT_HDR_U32);
        c_int::try_from(n).unwrap_or(c_int::MAX)
    }
}

/// [`args::SOCKOPT_HDR`] as the type of `arglen`.
const SOCKOPT_HDR_U32: u32 = args::SOCKOPT_HDR as u32;

static SOCKOPTVAL_TYPE: KernelCell<ng_parse_type> = KernelCell::new(bytearray::<SockoptValLen>());

static SOCKOPT_FIELDS: KernelCell<[ng_parse_struct_field; 4]> = KernelCell::new([
    field(c"level", &raw const fbsd_sys::ng_parse_int32_type),
    field(c"name", &raw const fbsd_sys::ng_parse_int32_type),
    field(c"value", SOCKOPTVAL_TYPE.get().cast_const()),
    END,
]);

struct SockoptText;

impl ParseMethod for SockoptText {
    fn parse(call: &mut ParseCall) -> c_int {
        // The value's length is `arglen - 8` (here: the text's length + 1
        // - 8); FreeBSD hands a shorter text's negative length to the parse
        // engine.
        if call.header().arglen < SOCKOPT_HDR_U32 {
            return Errno::EINVAL.raw();
        }
        let start = call.off();
        // FreeBSD's form first, so that every text it accepts means the same.
        let generic = call.parse_as(&SOCKOPT_TYPE);
        if generic == 0 {
            return 0;
        }
        let typed = {
            let (input, out, _) = call.parts();
            opttext::parse_typed(input, start)
                .and_then(|(t, end)| opttext::encode_typed(&t, out).map(|n| (n, end)))
        };
        match typed {
            Ok((n, end)) => {
                call.set_off(end);
                call.set_len(n);
                0
            }
            Err(_) => generic,
        }
    }
}

impl UnparseMethod for SockoptText {
    fn unparse(call: &mut UnparseCall) -> c_int {
        // FreeBSD's generic form, once level and name are known to be
        // there (FreeBSD reads them past a shorter message).
        if call.split().0.len() < args::SOCKOPT_HDR {
            return Errno::EINVAL.raw();
        }
        call.unparse_as(&SOCKOPT_TYPE)
    }
}

/// The GETOPT reply: typed text when it names a known option (only replies
/// to the ASCII request form carry level and name; FreeBSD's form leaves
/// them zero, so its reply keeps FreeBSD's generic text).
struct SockoptReplyText;

impl ParseMethod for SockoptReplyText {
    fn parse(call: &mut ParseCall) -> c_int {
        SockoptText::parse(call)
    }
}

impl UnparseMethod for SockoptReplyText {
    fn unparse(call: &mut UnparseCall) -> c_int {
        // Level and name must be there: FreeBSD reads them past a shorter
        // message and hands its negative value length to the parse engine.
        if call.split().0.len() < args::SOCKOPT_HDR {
            return Errno::EINVAL.raw();
        }
        let typed = {
            let (bin, out) = call.split();
            match args::sockopt_head(bin) {
                Ok((level, name)) => {
                    let value = bin.get(args::SOCKOPT_HDR..).unwrap_or(&[]);
                    opttext::format_typed(level, name, value, out).map(|r| r.map(|_| bin.len()))
                }
                Err(_) => Ok(None),
            }
        };
        match typed {
            Ok(Some(consumed)) => {
                call.advance(consumed);
                0
            }
            Ok(None) => call.unparse_as(&SOCKOPT_REPLY_TYPE),
            Err(e) => e,
        }
    }
}

/// `struct ng_ksocket_sockopt` of SETOPT and GETOPT requests: parsed raw or
/// typed (see `opttext`), printed in FreeBSD's generic form.
static SOCKOPT_TYPE: KernelCell<ng_parse_type> = KernelCell::new(parse_type(
    &raw const fbsd_sys::ng_parse_struct_type,
    SOCKOPT_FIELDS.get().cast_const().cast(),
    Some(parse_entry::<SockoptText>),
    Some(unparse_entry::<SockoptText>),
));

/// `struct ng_ksocket_sockopt` of GETOPT replies: printed typed when it names
/// a known option, see [`SockoptReplyText`].
static SOCKOPT_REPLY_TYPE: KernelCell<ng_parse_type> = KernelCell::new(parse_type(
    &raw const fbsd_sys::ng_parse_struct_type,
    SOCKOPT_FIELDS.get().cast_const().cast(),
    Some(parse_entry::<SockoptReplyText>),
    Some(unparse_entry::<SockoptReplyText>),
));

// ---- values of a fixed size ----

/// A type whose binary form takes at least [`Whole::MIN`] bytes, printed
/// only when the message holds them all: netgraph's engine reads fixed-size
/// fields whatever the message's length (FreeBSD prints what follows a
/// short message).
trait Whole {
    const MIN: usize;
    /// Prints the value once it is known to be there.
    fn print(call: &mut UnparseCall) -> c_int;
}

/// The `unparse` method of a [`Whole`] type: EINVAL for a short message.
struct WholeText<W>(core::marker::PhantomData<W>);

impl<W: Whole> UnparseMethod for WholeText<W> {
    fn unparse(call: &mut UnparseCall) -> c_int {
        if call.split().0.len() < W::MIN {
            return Errno::EINVAL.raw();
        }
        W::print(call)
    }
}

/// netgraph's `int32` (LISTEN's backlog, CONNECT's result), parsed and
/// printed by netgraph's own methods.
struct Int32;

impl ParseMethod for Int32 {
    fn parse(call: &mut ParseCall) -> c_int {
        call.parse_as_predefined(Predefined::Int32)
    }
}

impl Whole for Int32 {
    const MIN: usize = 4;
    fn print(call: &mut UnparseCall) -> c_int {
        call.unparse_as_predefined(Predefined::Int32)
    }
}

static INT32_TYPE: KernelCell<ng_parse_type> = KernelCell::new(parse_type(
    &raw const fbsd_sys::ng_parse_int32_type,
    core::ptr::null(),
    Some(parse_entry::<Int32>),
    Some(unparse_entry::<WholeText<Int32>>),
));

// ---- struct ng_ksocket_accept: { nodeid addr } ----

static ACCEPT_FIELDS: KernelCell<[ng_parse_struct_field; 3]> = KernelCell::new([
    field(c"nodeid", &raw const fbsd_sys::ng_parse_hint32_type),
    field(c"addr", GENERIC_SOCKADDR_TYPE.get().cast_const()),
    END,
]);

/// The node ID, then at least the address's `len` and `family`.
struct Accept;

impl Whole for Accept {
    const MIN: usize = args::ACCEPT_ADDR_OFF + 2;
    fn print(call: &mut UnparseCall) -> c_int {
        call.unparse_as(&ACCEPT_TYPE)
    }
}

static ACCEPT_TYPE: KernelCell<ng_parse_type> = KernelCell::new(parse_type(
    &raw const fbsd_sys::ng_parse_struct_type,
    ACCEPT_FIELDS.get().cast_const().cast(),
    None,
    Some(unparse_entry::<WholeText<Accept>>),
));

// ---- struct ng_ksocket_stats: uint64 counters ----

// Evaluated at compile time: an out-of-range index is a build error.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn stats_fields() -> [ng_parse_struct_field; stats::NUM + 1] {
    let mut f = [END; stats::NUM + 1];
    let mut i = 0;
    while i < stats::NUM {
        f[i] = field(stats::NAMES[i], &raw const fbsd_sys::ng_parse_uint64_type);
        i += 1;
    }
    f
}

static STATS_FIELDS: KernelCell<[ng_parse_struct_field; stats::NUM + 1]> =
    KernelCell::new(stats_fields());

struct Stats;

impl Whole for Stats {
    const MIN: usize = stats::REPLY_LEN;
    fn print(call: &mut UnparseCall) -> c_int {
        call.unparse_as(&STATS_TYPE)
    }
}

static STATS_TYPE: KernelCell<ng_parse_type> = KernelCell::new(parse_type(
    &raw const fbsd_sys::ng_parse_struct_type,
    STATS_FIELDS.get().cast_const().cast(),
    None,
    Some(unparse_entry::<WholeText<Stats>>),
));

// ---- the command list, in FreeBSD's order, then the statistics ----

const fn entry(
    cmd: u32,
    name: &'static CStr,
    mesg: *const ng_parse_type,
    resp: *const ng_parse_type,
) -> ng_cmdlist {
    ng_cmdlist {
        cookie: COOKIE,
        cmd: cmd as c_int,
        name: name.as_ptr(),
        mesgType: mesg,
        respType: resp,
    }
}

const NONE: *const ng_parse_type = core::ptr::null();

static CMDLIST: KernelCell<[ng_cmdlist; 12]> = KernelCell::new([
    entry(cmd::BIND, c"bind", SOCKADDR_TYPE.get().cast_const(), NONE),
    entry(cmd::LISTEN, c"listen", INT32_TYPE.get().cast_const(), NONE),
    entry(cmd::ACCEPT, c"accept", NONE, ACCEPT_TYPE.get().cast_const()),
    entry(
        cmd::CONNECT,
        c"connect",
        SOCKADDR_TYPE.get().cast_const(),
        INT32_TYPE.get().cast_const(),
    ),
    entry(
        cmd::GETNAME,
        c"getname",
        NONE,
        SOCKADDR_TYPE.get().cast_const(),
    ),
    entry(
        cmd::GETPEERNAME,
        c"getpeername",
        NONE,
        SOCKADDR_TYPE.get().cast_const(),
    ),
    entry(
        cmd::SETOPT,
        c"setopt",
        SOCKOPT_TYPE.get().cast_const(),
        NONE,
    ),
    entry(
        cmd::GETOPT,
        c"getopt",
        SOCKOPT_TYPE.get().cast_const(),
        SOCKOPT_REPLY_TYPE.get().cast_const(),
    ),
    entry(
        cmd::GETSTATS,
        c"getstats",
        NONE,
        STATS_TYPE.get().cast_const(),
    ),
    entry(cmd::CLRSTATS, c"clrstats", NONE, NONE),
    entry(
        cmd::GETCLRSTATS,
        c"getclrstats",
        NONE,
        STATS_TYPE.get().cast_const(),
    ),
    ng_cmdlist {
        cookie: 0,
        cmd: 0,
        name: core::ptr::null(),
        mesgType: NONE,
        respType: NONE,
    },
]);
