//! The ksocket node type's ABI: its cookie, command numbers and tag type,
//! its type record, command list and the ASCII parse types of its messages.
//!
//! The numbers are FreeBSD's (`netgraph/ng_ksocket.h`), except the
//! statistics messages, which this node type adds.

use core::ffi::c_int;

use super::args;
use super::node::Ksocket;
use super::opttext;
use super::stats;
use super::tunables;
use crate::kern::errno::Errno;
use crate::kern::netgraph::parse::{
    Cmd, CmdList, Field, LengthCall, LengthMethod, ParseCall, ParseMethod, ParseType, Predefined,
    StructFields, TypeRef, UnparseCall, UnparseMethod, HINT32, INT32, UINT64, UINT8,
};
use crate::kern::netgraph::TypeRecord;
use crate::pure::sockaddr::{self, ParseOutcome, UnparseOutcome};

/// `NGM_KSOCKET_COOKIE`.
pub const COOKIE: u32 = 942_710_669;
/// `NG_KSOCKET_TAG_SOCKADDR`: the tag type of a packet's address.
pub const TAG_SOCKADDR: u16 = 1;

/// Command numbers (FreeBSD's, then this node's statistics messages).
pub mod cmd {
    pub const BIND: u32 = 1;
    pub const LISTEN: u32 = 2;
    pub const ACCEPT: u32 = 3;
    pub const CONNECT: u32 = 4;
    pub const GETNAME: u32 = 5;
    pub const GETPEERNAME: u32 = 6;
    pub const SETOPT: u32 = 7;
    pub const GETOPT: u32 = 8;
    /// Reply: the counters (`struct ng_ksocket_stats`).
    pub const GETSTATS: u32 = 100;
    /// Resets the counters; no reply.
    pub const CLRSTATS: u32 = 101;
    /// Reply: the counters, which are reset in the same step.
    pub const GETCLRSTATS: u32 = 102;
}

crate::module_statics! {
    /// The type record, registered by the module's glue (`NETGRAPH_INIT`).
    pub node_type KSOCKET_TYPE = "ngsock_ksocket_type":
        TypeRecord::with_cmdlist::<Ksocket, 11>(c"ksocket", &CMDLIST);
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

static GENERIC_SOCKDATA_TYPE: ParseType = ParseType::bytearray::<SockdataLen>();

static GENERIC_SOCKDATA_PRESENT_TYPE: ParseType = ParseType::bytearray::<SockdataLenPresent>();

static GENERIC_SOCKADDR_FIELDS: StructFields<3> = StructFields::new([
    Field::new(c"len", UINT8),
    Field::new(c"family", UINT8),
    Field::new(c"data", GENERIC_SOCKDATA_TYPE.to_ref()),
]);

static GENERIC_SOCKADDR_PRESENT_FIELDS: StructFields<3> = StructFields::new([
    Field::new(c"len", UINT8),
    Field::new(c"family", UINT8),
    Field::new(c"data", GENERIC_SOCKDATA_PRESENT_TYPE.to_ref()),
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
static GENERIC_SOCKADDR_TYPE: ParseType =
    ParseType::structure(&GENERIC_SOCKADDR_FIELDS).printed_by::<GenericSockaddr>();

/// The generic form as it is printed (see [`SockdataLenPresent`]).
static GENERIC_SOCKADDR_PRESENT_TYPE: ParseType =
    ParseType::structure(&GENERIC_SOCKADDR_PRESENT_FIELDS);

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
static SOCKADDR_TYPE: ParseType = ParseType::custom()
    .parsed_by::<SockaddrText>()
    .printed_by::<SockaddrText>();

// ---- struct ng_ksocket_sockopt: { level name value }, value = arglen - 8 ----

struct SockoptValLen;

impl LengthMethod for SockoptValLen {
    fn length(c: &LengthCall) -> c_int {
        // As FreeBSD computes it: the enclosing message's arglen minus the
        // 8-byte level/name header. FreeBSD's difference goes negative for
        // an arglen below 8, which `SockoptText` refuses before this runs;
        // here it stops at 0.
        let n = c.arglen().saturating_sub(SOCKOPT_HDR_U32);
        c_int::try_from(n).unwrap_or(c_int::MAX)
    }
}

/// [`args::SOCKOPT_HDR`] as the type of `arglen`.
const SOCKOPT_HDR_U32: u32 = args::SOCKOPT_HDR as u32;

static SOCKOPTVAL_TYPE: ParseType = ParseType::bytearray::<SockoptValLen>();

static SOCKOPT_FIELDS: StructFields<3> = StructFields::new([
    Field::new(c"level", INT32),
    Field::new(c"name", INT32),
    Field::new(c"value", SOCKOPTVAL_TYPE.to_ref()),
]);

struct SockoptText;

impl ParseMethod for SockoptText {
    fn parse(call: &mut ParseCall) -> c_int {
        // The value's length is `arglen - 8` (here: the text's length + 1
        // - 8); FreeBSD hands a shorter text's negative length to the parse
        // engine.
        if call.arglen() < SOCKOPT_HDR_U32 {
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
static SOCKOPT_TYPE: ParseType = ParseType::structure(&SOCKOPT_FIELDS)
    .parsed_by::<SockoptText>()
    .printed_by::<SockoptText>();

/// `struct ng_ksocket_sockopt` of GETOPT replies: printed typed when it names
/// a known option, see [`SockoptReplyText`].
static SOCKOPT_REPLY_TYPE: ParseType = ParseType::structure(&SOCKOPT_FIELDS)
    .parsed_by::<SockoptReplyText>()
    .printed_by::<SockoptReplyText>();

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

static INT32_TYPE: ParseType = ParseType::extending(INT32)
    .parsed_by::<Int32>()
    .printed_by::<WholeText<Int32>>();

// ---- struct ng_ksocket_accept: { nodeid addr } ----

static ACCEPT_FIELDS: StructFields<2> = StructFields::new([
    Field::new(c"nodeid", HINT32),
    Field::new(c"addr", GENERIC_SOCKADDR_TYPE.to_ref()),
]);

/// The node ID, then at least the address's `len` and `family`.
struct Accept;

impl Whole for Accept {
    const MIN: usize = args::ACCEPT_ADDR_OFF + 2;
    fn print(call: &mut UnparseCall) -> c_int {
        call.unparse_as(&ACCEPT_TYPE)
    }
}

static ACCEPT_TYPE: ParseType =
    ParseType::structure(&ACCEPT_FIELDS).printed_by::<WholeText<Accept>>();

// ---- struct ng_ksocket_stats: uint64 counters ----

static STATS_FIELDS: StructFields<{ stats::NUM }> = StructFields::uniform(&stats::NAMES, UINT64);

struct Stats;

impl Whole for Stats {
    const MIN: usize = stats::REPLY_LEN;
    fn print(call: &mut UnparseCall) -> c_int {
        call.unparse_as(&STATS_TYPE)
    }
}

static STATS_TYPE: ParseType = ParseType::structure(&STATS_FIELDS).printed_by::<WholeText<Stats>>();

// ---- the command list, in FreeBSD's order, then the statistics ----

const SOCKADDR: TypeRef = SOCKADDR_TYPE.to_ref();
const SOCKOPT: TypeRef = SOCKOPT_TYPE.to_ref();
const STATS: TypeRef = STATS_TYPE.to_ref();
const INT32_WHOLE: TypeRef = INT32_TYPE.to_ref();

static CMDLIST: CmdList<11> = CmdList::new([
    Cmd::new(COOKIE, cmd::BIND, c"bind", Some(SOCKADDR), None),
    Cmd::new(COOKIE, cmd::LISTEN, c"listen", Some(INT32_WHOLE), None),
    Cmd::new(
        COOKIE,
        cmd::ACCEPT,
        c"accept",
        None,
        Some(ACCEPT_TYPE.to_ref()),
    ),
    Cmd::new(
        COOKIE,
        cmd::CONNECT,
        c"connect",
        Some(SOCKADDR),
        Some(INT32_WHOLE),
    ),
    Cmd::new(COOKIE, cmd::GETNAME, c"getname", None, Some(SOCKADDR)),
    Cmd::new(
        COOKIE,
        cmd::GETPEERNAME,
        c"getpeername",
        None,
        Some(SOCKADDR),
    ),
    Cmd::new(COOKIE, cmd::SETOPT, c"setopt", Some(SOCKOPT), None),
    Cmd::new(
        COOKIE,
        cmd::GETOPT,
        c"getopt",
        Some(SOCKOPT),
        Some(SOCKOPT_REPLY_TYPE.to_ref()),
    ),
    Cmd::new(COOKIE, cmd::GETSTATS, c"getstats", None, Some(STATS)),
    Cmd::new(COOKIE, cmd::CLRSTATS, c"clrstats", None, None),
    Cmd::new(COOKIE, cmd::GETCLRSTATS, c"getclrstats", None, Some(STATS)),
]);
