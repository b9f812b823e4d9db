//! The ng_parse engine: FreeBSD's ASCII ⇄ binary conversion for netgraph
//! messages (docs/netgraph-model.md §7), with its predefined parse type objects and
//! entry points exported to loaded modules exactly as `netgraph.ko` exports
//! them, plus a Rust API for the rest of the harness.
//!
//! * Type objects are real `struct ng_parse_type` values in the low arena; their
//!   methods are C-ABI host functions, so a module can subtype them, call their
//!   methods directly, and have its own methods called back by the engine.
//! * Memory the kernel takes from `malloc(9)` (type M_NETGRAPH: string tokens,
//!   encoded strings, composite scratch space) comes from `kern::malloc` with
//!   the "netgraph" type, M_NOWAIT (replaceable with [`set_allocator`]), so
//!   module `free()`s, leak accounting and allocation-failure injection all
//!   see it.
//! * The Rust API ([`parse`], [`unparse`], [`parse_with_header`],
//!   [`unparse_with_header`]) builds real `struct ng_mesg` buffers, so `start`
//!   and the 56 bytes in front of it are what a module's getLength expects, and
//!   checks every read the built-in methods make against the message's arglen.

#![deny(unsafe_op_in_unsafe_fn)]

mod generic;
mod methods;
mod text;

use core::ffi::{c_char, c_int, c_void};
use std::cell::Cell;
use std::sync::{Mutex, OnceLock};

use fbsd_sys::{
    ng_mesg_ng_msghdr, ng_parse_array_getLength_t, ng_parse_array_info, ng_parse_fixedstring_info,
    ng_parse_struct_field, ng_parse_type,
};

use crate::arena;
use crate::exports::Exports;
use crate::kern::violation;

pub use generic::{
    cmdlist_find_cmd, cmdlist_find_name, find_generic_cmd, find_generic_name, generic_cmdlist,
    generic_cmdlist_c, generic_types, GenericCmd, GenericTypes,
};

pub(crate) const EINVAL: c_int = fbsd_sys::EINVAL as c_int;
pub(crate) const ENOENT: c_int = fbsd_sys::ENOENT as c_int;
pub(crate) const E2BIG: c_int = fbsd_sys::E2BIG as c_int;
pub(crate) const ENOMEM: c_int = fbsd_sys::ENOMEM as c_int;
pub(crate) const ERANGE: c_int = fbsd_sys::ERANGE as c_int;
pub(crate) const EALREADY: c_int = fbsd_sys::EALREADY as c_int;
pub(crate) const EOPNOTSUPP: c_int = fbsd_sys::EOPNOTSUPP as c_int;

/// Size of `struct ng_mesg`'s header, which the engine assumes precedes the data.
pub const NG_MESG_HDRLEN: usize = methods::HDRLEN;
/// Output capacity NGM_ASCII2BINARY gives the parser (20 KiB, fixed).
pub const A2B_BUFSIZE: usize = 20 * 1024;
/// First text buffer size NGM_BINARY2ASCII tries (doubled on ERANGE).
pub const B2A_INITIAL_BUFSIZE: usize = 1024;
/// Largest text buffer [`unparse_with_header`] tries before giving up with ENOMEM
/// (the kernel doubles until malloc fails).
pub const B2A_MAX_BUFSIZE: usize = 64 << 20;
/// Zero bytes the Rust API keeps readable after the data (and writable after the
/// output area), so a module method that overruns lands in harness-owned memory.
const SLACK: usize = 4096;

/// Parse token codes (`enum ng_parse_token`).
pub use fbsd_sys::{
    T_EOF, T_EQUALS, T_ERROR, T_LBRACE, T_LBRACKET, T_RBRACE, T_RBRACKET, T_STRING, T_WORD,
};

// ---------------------------------------------------------------------------
// Memory (M_NETGRAPH)
// ---------------------------------------------------------------------------

/// Where the engine's `malloc(9)` memory comes from. In FreeBSD it is type
/// M_NETGRAPH (M_NETGRAPH_PARSE is an alias), always M_NOWAIT.
#[derive(Clone, Copy)]
pub struct Allocator {
    /// Allocates `size` bytes; NULL means the (M_NOWAIT) allocation failed.
    pub alloc: unsafe fn(usize) -> *mut u8,
    /// Frees memory returned by `alloc`.
    pub free: unsafe fn(*mut u8),
}

static ALLOCATOR: Mutex<Option<Allocator>> = Mutex::new(None);

/// # Safety
/// Any size is accepted (M_NOWAIT: failure is a NULL return).
unsafe fn netgraph_alloc(size: usize) -> *mut u8 {
    use crate::kern::malloc;
    malloc::kmalloc(
        size,
        malloc::harness_type("netgraph"),
        fbsd_sys::M_NOWAIT as i32,
    )
}

/// # Safety
/// `p` must come from [`netgraph_alloc`].
unsafe fn netgraph_free(p: *mut u8) {
    use crate::kern::malloc;
    malloc::kfree(p, malloc::harness_type("netgraph"))
}

/// The kernel's allocator: `malloc(size, M_NETGRAPH, M_NOWAIT)` / `free(p,
/// M_NETGRAPH)` through `kern::malloc` (accounting, poisoning, fault
/// injection). This is the default.
pub const NETGRAPH_ALLOCATOR: Allocator = Allocator {
    alloc: netgraph_alloc,
    free: netgraph_free,
};

/// # Safety
/// Any size is accepted; libc's malloc has no preconditions.
unsafe fn libc_alloc(size: usize) -> *mut u8 {
    // SAFETY: plain libc allocation.
    unsafe { libc::malloc(size.max(1)).cast() }
}

/// # Safety
/// `p` must come from [`libc_alloc`].
unsafe fn libc_free(p: *mut u8) {
    // SAFETY: caller contract.
    unsafe { libc::free(p.cast()) }
}

/// Plain libc malloc/free (for tests that count or fail allocations themselves).
pub const LIBC_ALLOCATOR: Allocator = Allocator {
    alloc: libc_alloc,
    free: libc_free,
};

/// Installs the allocator for the engine's M_NETGRAPH memory; returns the
/// previous one. The default is [`NETGRAPH_ALLOCATOR`].
pub fn set_allocator(a: Allocator) -> Allocator {
    let mut g = ALLOCATOR.lock().unwrap_or_else(|e| e.into_inner());
    g.replace(a).unwrap_or(NETGRAPH_ALLOCATOR)
}

/// The allocator currently in use.
pub fn allocator() -> Allocator {
    ALLOCATOR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(NETGRAPH_ALLOCATOR)
}

/// M_NETGRAPH, M_NOWAIT allocation.
pub(crate) fn kalloc(size: usize) -> *mut u8 {
    // SAFETY: the installed allocator accepts any size.
    unsafe { (allocator().alloc)(size) }
}

/// Frees a [`kalloc`] allocation.
///
/// # Safety
/// `p` must come from [`kalloc`] and not have been freed.
pub(crate) unsafe fn kfree(p: *mut u8) {
    // SAFETY: caller contract.
    unsafe { (allocator().free)(p) }
}

// ---------------------------------------------------------------------------
// Read window: bounds of the message being unparsed through the Rust API
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Window {
    /// Start of the header in front of the data.
    lo: usize,
    /// End of the data (56 + arglen bytes after `lo`).
    soft: usize,
    /// End of the readable slack after the data.
    hard: usize,
    /// Arglen, for messages.
    arglen: usize,
}

thread_local! {
    static WINDOW: Cell<Option<Window>> = const { Cell::new(None) };
    static OVERREAD_REPORTED: Cell<bool> = const { Cell::new(false) };
}

/// Checks a read of `n` bytes at `p` by a built-in unparse method against the
/// active window. Reads past arglen are reported once per conversion (FreeBSD
/// silently reads whatever follows); reads past the readable slack fail.
pub(crate) fn read_check(p: *const u8, n: usize, what: &str) -> bool {
    let Some(w) = WINDOW.with(Cell::get) else {
        return true;
    };
    let a = p as usize;
    let end = a.checked_add(n);
    let data = w.lo + NG_MESG_HDRLEN;
    match end {
        Some(end) if a >= w.lo && end <= w.hard => {
            if end > w.soft && !OVERREAD_REPORTED.with(Cell::get) {
                OVERREAD_REPORTED.with(|c| c.set(true));
                violation(format!(
                    "ng_unparse: reading {what} at data offset {} ({n} bytes) goes past the message's \
                     arglen {} (FreeBSD reads whatever memory follows)",
                    a as isize - data as isize,
                    w.arglen
                ));
            }
            true
        }
        _ => {
            violation(format!(
                "ng_unparse: reading {what} at data offset {} ({n} bytes) is outside the readable \
                 message (arglen {}); the conversion fails with EINVAL",
                a as isize - data as isize,
                w.arglen
            ));
            false
        }
    }
}

/// `strlen(p)`, bounded by the active window when `p` lies inside it
/// (`None`: no NUL before the end of the readable slack).
///
/// # Safety
/// Without a window (or for `p` outside it) `p` must be NUL-terminated.
pub(crate) unsafe fn window_strlen(p: *const u8) -> Option<usize> {
    match WINDOW.with(Cell::get) {
        Some(w) if (w.lo..w.hard).contains(&(p as usize)) => {
            let max = w.hard - p as usize;
            // SAFETY: `[p, p + max)` lies inside the window's buffer.
            let n = unsafe { libc::strnlen(p.cast(), max) };
            (n < max).then_some(n)
        }
        // SAFETY: caller contract.
        _ => Some(unsafe { libc::strlen(p.cast()) }),
    }
}

/// Installs a read window for the duration of `f`.
fn with_window<R>(w: Window, f: impl FnOnce() -> R) -> R {
    let prev = WINDOW.with(|c| c.replace(Some(w)));
    let prev_reported = OVERREAD_REPORTED.with(|c| c.replace(false));
    let r = f();
    WINDOW.with(|c| c.set(prev));
    OVERREAD_REPORTED.with(|c| c.set(prev_reported));
    r
}

// ---------------------------------------------------------------------------
// The predefined type objects
// ---------------------------------------------------------------------------

/// The predefined parse type objects (in the low arena), by their C names
/// minus the `ng_parse_` prefix and `_type` suffix.
pub struct ParseTypes {
    pub struct_: *const ng_parse_type,
    pub fixedarray: *const ng_parse_type,
    pub array: *const ng_parse_type,
    pub int8: *const ng_parse_type,
    pub uint8: *const ng_parse_type,
    pub hint8: *const ng_parse_type,
    pub int16: *const ng_parse_type,
    pub uint16: *const ng_parse_type,
    pub hint16: *const ng_parse_type,
    pub int32: *const ng_parse_type,
    pub uint32: *const ng_parse_type,
    pub hint32: *const ng_parse_type,
    pub int64: *const ng_parse_type,
    pub uint64: *const ng_parse_type,
    pub hint64: *const ng_parse_type,
    pub string: *const ng_parse_type,
    pub fixedstring: *const ng_parse_type,
    pub sizedstring: *const ng_parse_type,
    pub nodebuf: *const ng_parse_type,
    pub hookbuf: *const ng_parse_type,
    pub pathbuf: *const ng_parse_type,
    pub typebuf: *const ng_parse_type,
    pub cmdbuf: *const ng_parse_type,
    pub ipaddr: *const ng_parse_type,
    pub enaddr: *const ng_parse_type,
    pub bytearray: *const ng_parse_type,
    pub ng_mesg: *const ng_parse_type,
    pub nodebuf_info: *const ng_parse_fixedstring_info,
    pub hookbuf_info: *const ng_parse_fixedstring_info,
    pub pathbuf_info: *const ng_parse_fixedstring_info,
    pub typebuf_info: *const ng_parse_fixedstring_info,
    pub cmdbuf_info: *const ng_parse_fixedstring_info,
    /// The hint8 array template behind every bytearray (not exported).
    pub(crate) bytearray_subtype: *const ng_parse_type,
    /// The data field type of `ng_parse_ng_mesg_type` (not exported).
    pub ng_mesg_data: *const ng_parse_type,
}

// SAFETY: the pointers refer to arena objects that are initialised once, before
// the registry is published, and never written by the harness afterwards.
unsafe impl Send for ParseTypes {}
// SAFETY: as above.
unsafe impl Sync for ParseTypes {}

impl ParseTypes {
    /// Every exported data symbol: (C name, address).
    pub fn data_symbols(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("ng_parse_struct_type", self.struct_ as usize),
            ("ng_parse_fixedarray_type", self.fixedarray as usize),
            ("ng_parse_array_type", self.array as usize),
            ("ng_parse_int8_type", self.int8 as usize),
            ("ng_parse_uint8_type", self.uint8 as usize),
            ("ng_parse_hint8_type", self.hint8 as usize),
            ("ng_parse_int16_type", self.int16 as usize),
            ("ng_parse_uint16_type", self.uint16 as usize),
            ("ng_parse_hint16_type", self.hint16 as usize),
            ("ng_parse_int32_type", self.int32 as usize),
            ("ng_parse_uint32_type", self.uint32 as usize),
            ("ng_parse_hint32_type", self.hint32 as usize),
            ("ng_parse_int64_type", self.int64 as usize),
            ("ng_parse_uint64_type", self.uint64 as usize),
            ("ng_parse_hint64_type", self.hint64 as usize),
            ("ng_parse_string_type", self.string as usize),
            ("ng_parse_fixedstring_type", self.fixedstring as usize),
            ("ng_parse_sizedstring_type", self.sizedstring as usize),
            ("ng_parse_nodebuf_type", self.nodebuf as usize),
            ("ng_parse_hookbuf_type", self.hookbuf as usize),
            ("ng_parse_pathbuf_type", self.pathbuf as usize),
            ("ng_parse_typebuf_type", self.typebuf as usize),
            ("ng_parse_cmdbuf_type", self.cmdbuf as usize),
            ("ng_parse_ipaddr_type", self.ipaddr as usize),
            ("ng_parse_enaddr_type", self.enaddr as usize),
            ("ng_parse_bytearray_type", self.bytearray as usize),
            ("ng_parse_ng_mesg_type", self.ng_mesg as usize),
            ("ng_parse_nodebuf_info", self.nodebuf_info as usize),
            ("ng_parse_hookbuf_info", self.hookbuf_info as usize),
            ("ng_parse_pathbuf_info", self.pathbuf_info as usize),
            ("ng_parse_typebuf_info", self.typebuf_info as usize),
            ("ng_parse_cmdbuf_info", self.cmdbuf_info as usize),
        ]
    }
}

type ParseFn = unsafe extern "C" fn(
    *const ng_parse_type,
    *const c_char,
    *mut c_int,
    *const u8,
    *mut u8,
    *mut c_int,
) -> c_int;
type UnparseFn =
    unsafe extern "C" fn(*const ng_parse_type, *const u8, *mut c_int, *mut c_char, c_int) -> c_int;
type DefaultFn =
    unsafe extern "C" fn(*const ng_parse_type, *const u8, *mut u8, *mut c_int) -> c_int;
type AlignFn = unsafe extern "C" fn(*const ng_parse_type) -> c_int;

/// Methods of a type object (None = inherit).
#[derive(Clone, Copy, Default)]
pub(crate) struct Methods {
    parse: Option<ParseFn>,
    unparse: Option<UnparseFn>,
    default: Option<DefaultFn>,
    align: Option<AlignFn>,
}

/// Allocates and fills a type object in the arena.
pub(crate) fn new_type(
    supertype: *const ng_parse_type,
    info: *const c_void,
    m: Methods,
) -> *const ng_parse_type {
    let t = arena::alloc_obj::<ng_parse_type>();
    // SAFETY: `t` is a fresh, suitably aligned arena object.
    unsafe {
        t.write(ng_parse_type {
            supertype,
            info,
            private: core::ptr::null_mut(),
            parse: m.parse,
            unparse: m.unparse,
            getDefault: m.default,
            getAlign: m.align,
        });
    }
    t
}

/// Allocates a NULL-name-terminated struct field list in the arena.
pub(crate) fn new_fields(fields: &[(&str, *const ng_parse_type)]) -> *const ng_parse_struct_field {
    let n = fields.len() + 1;
    let p = arena::alloc(n * core::mem::size_of::<ng_parse_struct_field>(), 16)
        .cast::<ng_parse_struct_field>();
    for (i, (name, ty)) in fields.iter().enumerate() {
        // SAFETY: `p` holds `n` fields; the arena memory is zeroed, so the
        // terminator (index n-1) already has a NULL name.
        unsafe {
            p.add(i).write(ng_parse_struct_field {
                name: arena::alloc_cstr(name),
                type_: *ty,
                alignment: 0,
            });
        }
    }
    p
}

/// Allocates a struct type (subtype of `ng_parse_struct_type`).
pub(crate) fn new_struct(fields: &[(&str, *const ng_parse_type)]) -> *const ng_parse_type {
    new_type(
        types().struct_,
        new_fields(fields).cast(),
        Methods::default(),
    )
}

/// Allocates a variable-length array type (subtype of `ng_parse_array_type`).
pub(crate) fn new_array(
    elem: *const ng_parse_type,
    get_length: ng_parse_array_getLength_t,
) -> *const ng_parse_type {
    let info = arena::alloc_obj::<ng_parse_array_info>();
    // SAFETY: fresh arena object.
    unsafe {
        info.write(ng_parse_array_info {
            elementType: elem,
            getLength: get_length,
            getDefault: None,
        })
    };
    new_type(types().array, info.cast(), Methods::default())
}

fn fixedstring_info(size: u32) -> *const ng_parse_fixedstring_info {
    let p = arena::alloc_obj::<ng_parse_fixedstring_info>();
    // SAFETY: fresh arena object.
    unsafe {
        p.write(ng_parse_fixedstring_info {
            bufSize: size as c_int,
        })
    };
    p
}

fn build_types() -> ParseTypes {
    use methods as m;
    let null: *const ng_parse_type = core::ptr::null();
    let noinfo: *const c_void = core::ptr::null();
    let int = |code: usize| code as *const c_void;
    let meth = |parse: ParseFn,
                unparse: UnparseFn,
                default: Option<DefaultFn>,
                align: Option<AlignFn>| Methods {
        parse: Some(parse),
        unparse: Some(unparse),
        default,
        align,
    };
    let composite = |p, u, d, a| new_type(null, noinfo, meth(p, u, Some(d), Some(a)));
    let struct_ = composite(
        m::struct_parse,
        m::struct_unparse,
        m::struct_default,
        m::struct_align,
    );
    let fixedarray = composite(
        m::fixedarray_parse,
        m::fixedarray_unparse,
        m::fixedarray_default,
        m::fixedarray_align,
    );
    let array = composite(
        m::array_parse,
        m::array_unparse,
        m::array_default,
        m::array_align,
    );

    let ints = |p, u, d, a| {
        let base = new_type(null, int(m::INT_SIGNED), meth(p, u, Some(d), Some(a)));
        let uns = new_type(base, int(m::INT_UNSIGNED), Methods::default());
        let hex = new_type(base, int(m::INT_HEX), Methods::default());
        (base, uns, hex)
    };
    let (int8, uint8, hint8) = ints(
        m::int8_parse,
        m::int8_unparse,
        m::int8_default,
        m::int8_align,
    );
    let (int16, uint16, hint16) = ints(
        m::int16_parse,
        m::int16_unparse,
        m::int16_default,
        m::int16_align,
    );
    let (int32, uint32, hint32) = ints(
        m::int32_parse,
        m::int32_unparse,
        m::int32_default,
        m::int32_align,
    );
    let (int64, uint64, hint64) = ints(
        m::int64_parse,
        m::int64_unparse,
        m::int64_default,
        m::int64_align,
    );

    let string = new_type(
        null,
        noinfo,
        meth(
            m::string_parse,
            m::string_unparse,
            Some(m::string_default),
            None,
        ),
    );
    let fixedstring = new_type(
        null,
        noinfo,
        meth(
            m::fixedstring_parse,
            m::fixedstring_unparse,
            Some(m::fixedstring_default),
            None,
        ),
    );
    let sizedstring = new_type(
        null,
        noinfo,
        meth(
            m::sizedstring_parse,
            m::sizedstring_unparse,
            Some(m::sizedstring_default),
            None,
        ),
    );
    let nodebuf_info = fixedstring_info(fbsd_sys::NG_NODESIZ);
    let hookbuf_info = fixedstring_info(fbsd_sys::NG_HOOKSIZ);
    let pathbuf_info = fixedstring_info(fbsd_sys::NG_PATHSIZ);
    let typebuf_info = fixedstring_info(fbsd_sys::NG_TYPESIZ);
    let cmdbuf_info = fixedstring_info(fbsd_sys::NG_CMDSTRSIZ);
    let sub = |info: *const ng_parse_fixedstring_info| {
        new_type(fixedstring, info.cast(), Methods::default())
    };
    let (nodebuf, hookbuf, pathbuf, typebuf, cmdbuf) = (
        sub(nodebuf_info),
        sub(hookbuf_info),
        sub(pathbuf_info),
        sub(typebuf_info),
        sub(cmdbuf_info),
    );

    let ipaddr = new_type(
        null,
        noinfo,
        meth(
            m::ipaddr_parse,
            m::ipaddr_unparse,
            Some(m::ipaddr_default),
            Some(m::int32_align),
        ),
    );
    let enaddr = new_type(
        null,
        noinfo,
        meth(m::enaddr_parse, m::enaddr_unparse, None, None),
    );

    let sub_info = arena::alloc_obj::<ng_parse_array_info>();
    // SAFETY: fresh arena object.
    unsafe {
        sub_info.write(ng_parse_array_info {
            elementType: hint8,
            getLength: Some(m::bytearray_subtype_length),
            getDefault: None,
        })
    };
    let bytearray_subtype = new_type(array, sub_info.cast(), Methods::default());
    let bytearray = new_type(
        null,
        noinfo,
        meth(
            m::bytearray_parse,
            m::bytearray_unparse,
            Some(m::bytearray_default),
            None,
        ),
    );

    let len_fn: unsafe extern "C" fn(*const ng_parse_type, *const u8, *const u8) -> c_int =
        m::ng_mesg_data_length;
    let ng_mesg_data = new_type(bytearray, len_fn as *const c_void, Methods::default());
    let fields = new_fields(&[
        ("version", uint8),
        ("spare", uint8),
        ("spare2", uint16),
        ("arglen", uint32),
        ("cmd", uint32),
        ("flags", hint32),
        ("token", uint32),
        ("typecookie", uint32),
        ("cmdstr", cmdbuf),
        ("data", ng_mesg_data),
    ]);
    let ng_mesg = new_type(struct_, fields.cast(), Methods::default());

    ParseTypes {
        struct_,
        fixedarray,
        array,
        int8,
        uint8,
        hint8,
        int16,
        uint16,
        hint16,
        int32,
        uint32,
        hint32,
        int64,
        uint64,
        hint64,
        string,
        fixedstring,
        sizedstring,
        nodebuf,
        hookbuf,
        pathbuf,
        typebuf,
        cmdbuf,
        ipaddr,
        enaddr,
        bytearray,
        ng_mesg,
        nodebuf_info,
        hookbuf_info,
        pathbuf_info,
        typebuf_info,
        cmdbuf_info,
        bytearray_subtype,
        ng_mesg_data,
    }
}

static TYPES: OnceLock<ParseTypes> = OnceLock::new();

/// The predefined type objects (created in the arena on first use).
pub fn types() -> &'static ParseTypes {
    TYPES.get_or_init(build_types)
}

/// A predefined type or info object by its C symbol name (e.g. `"ng_parse_int32_type"`).
pub fn symbol(name: &str) -> Option<usize> {
    types()
        .data_symbols()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, a)| a)
}

/// A predefined parse type by its C name (`"ng_parse_hint8_type"`).
pub fn type_by_name(name: &str) -> Option<*const ng_parse_type> {
    symbol(name)
        .filter(|_| name.ends_with("_type"))
        .map(|a| a as *const ng_parse_type)
}

// ---------------------------------------------------------------------------
// Exported entry points (C ABI)
// ---------------------------------------------------------------------------

/// `int ng_parse(type, string, &off, buf, &buflen)`: parse with start = buf.
///
/// # Safety
/// As FreeBSD's: `ty` a valid parse type, `string` NUL-terminated, `off` and
/// `buflen` valid, `buf` writable for `*buflen` bytes.
unsafe extern "C" fn ng_parse_c(
    ty: *const ng_parse_type,
    string: *const c_char,
    off: *mut c_int,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    if ty.is_null() || string.is_null() || off.is_null() || buflen.is_null() {
        violation("ng_parse: NULL argument (the kernel would fault)");
        return EINVAL;
    }
    // SAFETY: caller contract.
    unsafe { methods::call_parse(ty, string, off, buf, buf, buflen) }
}

/// `int ng_unparse(type, data, cbuf, cbuflen)`: unparse with off = 0.
///
/// # Safety
/// As FreeBSD's: `ty` valid, `data` preceded by a 56-byte message header,
/// `cbuf` writable for `cbuflen` bytes.
unsafe extern "C" fn ng_unparse_c(
    ty: *const ng_parse_type,
    data: *const u8,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    if ty.is_null() || cbuf.is_null() {
        violation("ng_unparse: NULL argument (the kernel would fault)");
        return EINVAL;
    }
    let mut off: c_int = 0;
    // SAFETY: caller contract.
    let mut call = || unsafe { methods::call_unparse(ty, data, &mut off, cbuf, cbuflen) };
    // A module converting a message of its own: its reads are checked
    // against that message (unless a conversion in progress already set
    // the bounds).
    match message_window(data) {
        Some(w) if WINDOW.with(Cell::get).is_none() => with_window(w, call),
        _ => call(),
    }
}

/// The read window of `data` when it is the argument area of a live
/// message allocation (a malloc block starting with a 56-byte header):
/// reads past its arglen are reported, reads past the block fail.
fn message_window(data: *const u8) -> Option<Window> {
    let lo = (data as usize).checked_sub(NG_MESG_HDRLEN)?;
    let (size, _) = crate::kern::malloc::block_info(lo as *const u8)?;
    let room = size.checked_sub(NG_MESG_HDRLEN)?;
    // SAFETY: the live block holds at least the header; read unaligned.
    let hdr = unsafe { (lo as *const fbsd_sys::ng_mesg_ng_msghdr).read_unaligned() };
    let arglen = (hdr.arglen as usize).min(room);
    Some(Window {
        lo,
        soft: data as usize + arglen,
        hard: lo + size,
        arglen,
    })
}

/// `int ng_parse_getDefault(type, buf, &buflen)`: EOPNOTSUPP without a method.
///
/// # Safety
/// As FreeBSD's.
unsafe extern "C" fn ng_parse_get_default_c(
    ty: *const ng_parse_type,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    if buflen.is_null() {
        violation("ng_parse_getDefault: NULL buflen (the kernel would fault)");
        return EINVAL;
    }
    // SAFETY: caller contract.
    unsafe { methods::call_default(ty, buf, buf, buflen) }
}

/// Exports the parse type objects and the ng_parse functions by their C names.
pub fn register(ex: &mut Exports) {
    for (name, addr) in types().data_symbols() {
        ex.data(name, addr);
    }
    ex.func("ng_parse", ng_parse_c as *const () as usize);
    ex.func("ng_unparse", ng_unparse_c as *const () as usize);
    ex.func(
        "ng_parse_getDefault",
        ng_parse_get_default_c as *const () as usize,
    );
    ex.func(
        "ng_parse_get_token",
        text::get_token_c as *const () as usize,
    );
    ex.func(
        "ng_get_string_token",
        text::get_string_token_c as *const () as usize,
    );
    ex.func(
        "ng_encode_string",
        text::encode_string_c as *const () as usize,
    );
}

// ---------------------------------------------------------------------------
// Rust API
// ---------------------------------------------------------------------------

/// `ng_parse()` for harness code (same semantics as the exported function).
///
/// # Safety
/// As FreeBSD's `ng_parse`: `ty` a valid parse type, `s` NUL-terminated, `buf`
/// writable for `*buflen` bytes and, if any type in `ty` peeks at the message
/// header, preceded by one.
pub unsafe fn parse_raw(
    ty: *const ng_parse_type,
    s: *const c_char,
    off: &mut c_int,
    buf: *mut u8,
    buflen: &mut c_int,
) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { ng_parse_c(ty, s, off, buf, buflen) }
}

/// `ng_unparse()` for harness code (same semantics as the exported function).
///
/// # Safety
/// As FreeBSD's `ng_unparse`: `data` preceded by a 56-byte header and holding
/// whatever `ty` reads; `cbuf` writable for `cbuflen` bytes.
pub unsafe fn unparse_raw(
    ty: *const ng_parse_type,
    data: *const u8,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { ng_unparse_c(ty, data, cbuf, cbuflen) }
}

/// `ng_unparse()` for the netgraph core's NGM_BINARY2ASCII: like
/// [`unparse_raw`], but every read the built-in methods make is checked
/// against the message (`data` is the argument area of a message whose
/// arglen is `arglen`, preceded by its 56-byte header): a read past arglen is
/// reported as a violation and fails the conversion with EINVAL (FreeBSD would
/// silently read whatever follows). Module methods are not checked.
///
/// # Safety
/// As [`unparse_raw`]; `data - 56 .. data + arglen` must be readable.
pub unsafe fn unparse_raw_checked(
    ty: *const ng_parse_type,
    data: *const u8,
    arglen: usize,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    let end = data as usize + arglen;
    let w = Window {
        lo: data as usize - NG_MESG_HDRLEN,
        soft: end,
        hard: end,
        arglen,
    };
    with_window(w, || {
        if ty.is_null() || cbuf.is_null() {
            violation("ng_unparse: NULL argument (the kernel would fault)");
            return EINVAL;
        }
        let mut off: c_int = 0;
        // SAFETY: caller contract.
        let e = unsafe { methods::call_unparse(ty, data, &mut off, cbuf, cbuflen) };
        if e == 0 && off as i64 > arglen as i64 {
            violation(format!(
                "ng_unparse: parse type {ty:p} consumed {off} bytes of a {arglen}-byte argument (reads past arglen)"
            ));
        }
        e
    })
}

/// A message header as the core builds one: version 8, the given arglen, the
/// rest zero.
pub fn header(arglen: u32) -> ng_mesg_ng_msghdr {
    ng_mesg_ng_msghdr {
        version: fbsd_sys::NG_VERSION as u8,
        arglen,
        ..Default::default()
    }
}

/// A zeroed, 8-byte aligned buffer of at least `len` bytes.
fn aligned_buf(len: usize) -> Vec<u64> {
    vec![0u64; len.div_ceil(8)]
}

/// Parses `text` with `ty` the way NGM_ASCII2BINARY does: the output goes to the
/// argument area of a real `struct ng_mesg` buffer whose header is a copy of
/// `hdr` (for ASCII2BINARY: the ASCII request's header, whose arglen is the
/// text length + 1), with room for `cap` bytes; `start` = the argument area.
/// Returns the bytes produced, or the errno.
///
/// # Safety
/// `ty` must be a valid parse type (predefined or a loaded module's) whose
/// methods honour the ng_parse contract.
pub unsafe fn parse_with_header(
    ty: *const ng_parse_type,
    text: &[u8],
    hdr: &ng_mesg_ng_msghdr,
    cap: usize,
) -> Result<Vec<u8>, i32> {
    let cap = cap.min(i32::MAX as usize - NG_MESG_HDRLEN - SLACK);
    let mut s = text.to_vec();
    s.push(0);
    let mut store = aligned_buf(NG_MESG_HDRLEN + cap + SLACK);
    let base = store.as_mut_ptr().cast::<u8>();
    // SAFETY: `store` holds the 56-byte header plus `cap + SLACK` bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (hdr as *const ng_mesg_ng_msghdr).cast::<u8>(),
            base,
            NG_MESG_HDRLEN,
        );
        let buf = base.add(NG_MESG_HDRLEN);
        let mut off: c_int = 0;
        let mut len = cap as c_int;
        let e = parse_raw(ty, s.as_ptr().cast(), &mut off, buf, &mut len);
        if e != 0 {
            return Err(e);
        }
        if len < 0 || len as usize > cap {
            violation(format!("ng_parse: parse type {ty:p} reported {len} bytes produced with only {cap} available"));
            return Err(ERANGE);
        }
        Ok(core::slice::from_raw_parts(buf, len as usize).to_vec())
    }
}

/// Parses `text` as an ASCII2BINARY argument: header version 8 with arglen =
/// `strlen(text) + 1` (what libnetgraph sends), 20 KiB of output space.
///
/// # Safety
/// As [`parse_with_header`].
pub unsafe fn parse(ty: *const ng_parse_type, text: &str) -> Result<Vec<u8>, i32> {
    let t = text.as_bytes();
    let strlen = t.iter().position(|&b| b == 0).unwrap_or(t.len());
    // SAFETY: forwarded caller contract.
    unsafe { parse_with_header(ty, t, &header(strlen as u32 + 1), A2B_BUFSIZE) }
}

/// Unparses `data` (the argument area of a message with header `hdr`) the way
/// NGM_BINARY2ASCII does: text buffer of 1024 bytes, doubled on ERANGE. Reads
/// the built-in methods make past `data.len()` (the arglen) are reported as
/// violations; reads far past it fail with EINVAL.
///
/// # Safety
/// As [`parse_with_header`].
pub unsafe fn unparse_with_header(
    ty: *const ng_parse_type,
    hdr: &ng_mesg_ng_msghdr,
    data: &[u8],
) -> Result<String, i32> {
    let mut store = aligned_buf(NG_MESG_HDRLEN + data.len() + SLACK);
    let base = store.as_mut_ptr().cast::<u8>();
    // SAFETY: `store` holds the header, the data and SLACK zero bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (hdr as *const ng_mesg_ng_msghdr).cast::<u8>(),
            base,
            NG_MESG_HDRLEN,
        );
        core::ptr::copy_nonoverlapping(data.as_ptr(), base.add(NG_MESG_HDRLEN), data.len());
    }
    // SAFETY: in bounds of `store`.
    let dp = unsafe { base.add(NG_MESG_HDRLEN) };
    let lo = base as usize;
    let w = Window {
        lo,
        soft: lo + NG_MESG_HDRLEN + data.len(),
        hard: lo + NG_MESG_HDRLEN + data.len() + SLACK,
        arglen: data.len(),
    };
    let mut size = B2A_INITIAL_BUFSIZE;
    loop {
        let mut out = vec![0u8; size];
        let mut off: c_int = 0;
        let e = with_window(w, || {
            if ty.is_null() {
                violation("ng_unparse: NULL parse type");
                return EINVAL;
            }
            // SAFETY: `dp` is preceded by the header and followed by the data
            // and slack; `out` holds `size` bytes.
            let e = unsafe {
                methods::call_unparse(ty, dp, &mut off, out.as_mut_ptr().cast(), size as c_int)
            };
            if e == 0 && off as i64 > data.len() as i64 && !OVERREAD_REPORTED.with(Cell::get) {
                violation(format!(
                    "ng_unparse: parse type {ty:p} consumed {off} bytes of a {}-byte argument (reads past arglen)",
                    data.len()
                ));
            }
            e
        });
        match e {
            0 => {
                let n = out.iter().position(|&b| b == 0).unwrap_or(out.len());
                return Ok(String::from_utf8_lossy(&out[..n]).into_owned());
            }
            e if e == ERANGE && size < B2A_MAX_BUFSIZE => size *= 2,
            e if e == ERANGE => return Err(ENOMEM),
            e => return Err(e),
        }
    }
}

/// Unparses `data` as the argument of a message (header version 8, arglen =
/// `data.len()`), as NGM_BINARY2ASCII does.
///
/// # Safety
/// As [`parse_with_header`].
pub unsafe fn unparse(ty: *const ng_parse_type, data: &[u8]) -> Result<String, i32> {
    // SAFETY: forwarded caller contract.
    unsafe { unparse_with_header(ty, &header(data.len() as u32), data) }
}

/// The default value of `ty` (`ng_parse_getDefault` into a message argument
/// area with `cap` bytes of room): EOPNOTSUPP when the type has none.
///
/// # Safety
/// As [`parse_with_header`].
pub unsafe fn get_default(ty: *const ng_parse_type, cap: usize) -> Result<Vec<u8>, i32> {
    let cap = cap.min(i32::MAX as usize - NG_MESG_HDRLEN - SLACK);
    let mut store = aligned_buf(NG_MESG_HDRLEN + cap + SLACK);
    let base = store.as_mut_ptr().cast::<u8>();
    // SAFETY: `store` holds the header plus `cap + SLACK` bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(
            (&header(0) as *const ng_mesg_ng_msghdr).cast::<u8>(),
            base,
            NG_MESG_HDRLEN,
        );
        let buf = base.add(NG_MESG_HDRLEN);
        let mut len = cap as c_int;
        let e = ng_parse_get_default_c(ty, buf, &mut len);
        if e != 0 {
            return Err(e);
        }
        if len < 0 || len as usize > cap {
            return Err(ERANGE);
        }
        Ok(core::slice::from_raw_parts(buf, len as usize).to_vec())
    }
}

/// `ng_parse_get_token` on a Rust string: returns (token, length) and moves
/// `*start` to the token's first character.
pub fn get_token(s: &[u8], start: &mut i32) -> (u32, i32) {
    let mut z = s.to_vec();
    z.push(0);
    if *start < 0 || *start as usize >= z.len() {
        return (T_EOF, 0);
    }
    let mut len: c_int = 0;
    // SAFETY: `z` is NUL-terminated and `*start` inside it.
    let t = unsafe { text::get_token_c(z.as_ptr().cast(), start, &mut len) };
    (t, len)
}

/// `ng_get_string_token` on a Rust string: the decoded bytes and the reported
/// (quirky) token length, or `None` (no string there / unterminated / ENOMEM).
pub fn get_string_token(s: &[u8], start: &mut i32) -> Option<(Vec<u8>, i32)> {
    let mut z = s.to_vec();
    z.push(0);
    if *start < 0 || *start as usize >= z.len() {
        return None;
    }
    let (mut len, mut slen): (c_int, c_int) = (0, 0);
    // SAFETY: `z` is NUL-terminated and `*start` inside it.
    let p = unsafe { text::get_string_token_c(z.as_ptr().cast(), start, &mut len, &mut slen) };
    if p.is_null() {
        return None;
    }
    // SAFETY: the scanner wrote `slen` bytes at `p`, a `kalloc` allocation.
    let bytes = unsafe { core::slice::from_raw_parts(p.cast::<u8>(), slen as usize).to_vec() };
    // SAFETY: allocated by the scanner with `kalloc`.
    unsafe { kfree(p.cast()) };
    Some((bytes, len))
}

/// `ng_encode_string` of `raw` (all of its bytes) as a Rust string.
pub fn encode_string(raw: &[u8]) -> String {
    String::from_utf8_lossy(&text::encode_bytes(raw)).into_owned()
}
