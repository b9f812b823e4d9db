//! Parse types (ng_parse(9)): how a node type describes the ASCII forms
//! of its messages, and how it implements custom ones.
//!
//! * Declarations: [`ParseType`], [`StructFields`] and [`CmdList`] are
//!   built by `const fn`s into `static`s the parse engine reads by address;
//!   [`TypeRef`] names a parse type (netgraph's predefined ones: [`INT32`],
//!   [`UINT8`]...) inside such a declaration.
//! * Custom methods: a type implements [`ParseMethod`], [`UnparseMethod`]
//!   or [`LengthMethod`] over safe views of the engine's arguments
//!   ([`ParseCall`], [`UnparseCall`], [`LengthCall`]), may hand the call on
//!   to a supertype's method, and reads and writes strings with netgraph's
//!   own codec (`ng_get_string_token` / `ng_encode_string`).
//!
//! Engine facts relied on: the binary object being built (`start`) or
//! printed (`data`) is preceded by a 56-byte `struct ng_mesg` header, whose
//! `arglen` bounds the binary data on output (during ASCII to binary
//! conversion it holds the length of the text plus one).

use core::ffi::{c_char, c_int, c_void, CStr};

use fbsd_sys::{ng_cmdlist, ng_mesg_ng_msghdr, ng_parse_struct_field, ng_parse_type};

use crate::kern::cell::KernelCell;
use crate::kern::errno::Errno;
use crate::pure::sockaddr::{DecodedString, StrCodec};

const HDR: usize = core::mem::size_of::<ng_mesg_ng_msghdr>();

fn to_c_int(v: usize) -> c_int {
    c_int::try_from(v).unwrap_or(c_int::MAX)
}

fn from_c_int(v: c_int) -> usize {
    usize::try_from(v).unwrap_or(0)
}

/// Reads the message header in front of `p`.
///
/// # Safety
///
/// `p` must be preceded by 56 readable bytes (the engine's contract for
/// `start` and `data`).
unsafe fn header_before(p: *const u8) -> ng_mesg_ng_msghdr {
    // SAFETY: guaranteed by the caller; the header may be unaligned in a
    // scratch buffer, so it is read unaligned.
    unsafe { core::ptr::read_unaligned(p.sub(HDR).cast::<ng_mesg_ng_msghdr>()) }
}

/// The `parse` method of the first type up the supertype chain of `ty`
/// (excluding `ty` itself) that has one.
fn super_parse(ty: *const ng_parse_type) -> fbsd_sys::ng_parse_t {
    // SAFETY: `ty` is one of the module's static parse types; parse type
    // records (ours and netgraph's) are never modified and their supertype
    // chains end in NULL.
    unsafe {
        let mut t = (*ty).supertype;
        while !t.is_null() {
            if (*t).parse.is_some() {
                return (*t).parse;
            }
            t = (*t).supertype;
        }
    }
    None
}

/// As [`super_parse`], for `unparse`.
fn super_unparse(ty: *const ng_parse_type) -> fbsd_sys::ng_unparse_t {
    // SAFETY: as in `super_parse`.
    unsafe {
        let mut t = (*ty).supertype;
        while !t.is_null() {
            if (*t).unparse.is_some() {
                return (*t).unparse;
            }
            t = (*t).supertype;
        }
    }
    None
}

/// The arguments of a `parse` method call.
///
/// # Invariants
///
/// The pointers are the engine's arguments of a call in progress, valid
/// as [`ParseCall::new`] says until the value is dropped (within the call).
pub struct ParseCall {
    s: *const c_char,
    off: *mut c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
}

impl ParseCall {
    /// Wraps the arguments the engine passed; `None` if one is NULL.
    ///
    /// # Safety
    ///
    /// They must be those of a `parse` method call in progress: `s` a
    /// NUL-terminated string, `*off` an index into it, `buf` writable for
    /// `*buflen` bytes, `start` preceded by a message header; all valid until
    /// the method returns, and the value is dropped before it returns.
    unsafe fn new(
        s: *const c_char,
        off: *mut c_int,
        start: *const u8,
        buf: *mut u8,
        buflen: *mut c_int,
    ) -> Option<ParseCall> {
        if s.is_null() || off.is_null() || start.is_null() || buf.is_null() || buflen.is_null() {
            return None;
        }
        Some(ParseCall {
            s,
            off,
            start,
            buf,
            buflen,
        })
    }

    /// The whole text (a C string, without its NUL).
    pub fn input(&self) -> &[u8] {
        // SAFETY: `s` is NUL-terminated and lives for the call (see `new`).
        unsafe { CStr::from_ptr(self.s).to_bytes() }
    }

    /// The text and the output buffer (`*buflen` bytes).
    pub fn split(&mut self) -> (&[u8], &mut [u8]) {
        // SAFETY: the string and the output buffer are distinct objects
        // valid for the call (see `new`).
        unsafe {
            let input = CStr::from_ptr(self.s).to_bytes();
            let out = core::slice::from_raw_parts_mut(self.buf, from_c_int(*self.buflen));
            (input, out)
        }
    }

    /// Where this value's text begins (`*off`).
    pub fn off(&self) -> usize {
        // SAFETY: `off` is valid for the call.
        from_c_int(unsafe { *self.off })
    }

    /// Sets `*off`.
    pub fn set_off(&mut self, v: usize) {
        // SAFETY: `off` is valid for the call.
        unsafe { *self.off = to_c_int(v) }
    }

    /// Sets `*buflen` to the number of bytes produced.
    pub fn set_len(&mut self, n: usize) {
        // SAFETY: `buflen` is valid for the call.
        unsafe { *self.buflen = to_c_int(n) }
    }

    /// The `arglen` of the message header in front of the binary being
    /// built (while text is parsed: the length of the text plus one).
    pub fn arglen(&self) -> u32 {
        // SAFETY: `start` is preceded by a header (see `new`).
        unsafe { header_before(self.start) }.arglen
    }

    /// Runs the `parse` method inherited from `ty`'s supertypes on the same
    /// arguments, as type `ty` (its `info` is used); returns its errno.
    pub fn parse_as(&mut self, ty: &'static ParseType) -> c_int {
        let ty = ty.as_ptr();
        let Some(f) = super_parse(ty) else {
            return Errno::EINVAL.raw();
        };
        // SAFETY: the engine's own arguments, still valid, handed on to an
        // engine method with a type whose supertype provides that method.
        unsafe { f(ty, self.s, self.off, self.start, self.buf, self.buflen) }
    }

    /// Runs the `parse` method of one of netgraph's predefined types on the
    /// same arguments, as that type; returns its errno.
    pub fn parse_as_predefined(&mut self, ty: Predefined) -> c_int {
        let ty = ty.record();
        // SAFETY: a predefined type record of netgraph, never modified.
        let f = unsafe { (*ty).parse };
        let Some(f) = f else {
            return Errno::EINVAL.raw();
        };
        // SAFETY: the engine's own arguments, handed on to an engine method
        // with the type it belongs to.
        unsafe { f(ty, self.s, self.off, self.start, self.buf, self.buflen) }
    }

    /// The text, the output buffer (`*buflen` bytes) and netgraph's string
    /// codec over the text.
    pub fn parts(&mut self) -> (&[u8], &mut [u8], NgStrings<'_>) {
        let s = self.s;
        let (input, out) = self.split();
        (input, out, NgStrings { input, s })
    }
}

/// Netgraph's predefined parse types a custom method may delegate to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Predefined {
    /// `ng_parse_int32_type` (signed decimal).
    Int32,
}

impl Predefined {
    fn record(self) -> *const ng_parse_type {
        match self {
            Predefined::Int32 => &raw const fbsd_sys::ng_parse_int32_type,
        }
    }
}

/// The arguments of an `unparse` method call.
///
/// # Invariants
///
/// As for [`ParseCall`], see [`UnparseCall::new`].
pub struct UnparseCall {
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
}

impl UnparseCall {
    /// Wraps the arguments the engine passed; `None` if one is NULL.
    ///
    /// # Safety
    ///
    /// They must be those of an `unparse` method call in progress: `data`
    /// preceded by a message header whose `arglen` bytes follow it, `*off` an
    /// index into them, `cbuf` writable for `cbuflen` bytes; all valid until
    /// the method returns, and the value is dropped before it returns.
    unsafe fn new(
        data: *const u8,
        off: *mut c_int,
        cbuf: *mut c_char,
        cbuflen: c_int,
    ) -> Option<UnparseCall> {
        if data.is_null() || off.is_null() || cbuf.is_null() {
            return None;
        }
        Some(UnparseCall {
            data,
            off,
            cbuf,
            cbuflen,
        })
    }

    /// The binary from `*off` to the end of the message (`arglen`), and the
    /// text buffer (`cbuflen` bytes).
    pub fn split(&mut self) -> (&[u8], &mut [u8]) {
        // SAFETY: `data` is preceded by a header (see `new`).
        let arglen = usize::try_from(unsafe { header_before(self.data) }.arglen).unwrap_or(0);
        let off = self.off();
        let avail = arglen.saturating_sub(off);
        // SAFETY: the message's `arglen` data bytes follow `data` (see `new`),
        // of which `avail` start at `off`; the text buffer is a distinct
        // object of `cbuflen` bytes.
        unsafe {
            let bin = core::slice::from_raw_parts(self.data.add(off.min(arglen)), avail);
            let out =
                core::slice::from_raw_parts_mut(self.cbuf.cast::<u8>(), from_c_int(self.cbuflen));
            (bin, out)
        }
    }

    /// Where this value's binary begins (`*off`).
    pub fn off(&self) -> usize {
        // SAFETY: `off` is valid for the call.
        from_c_int(unsafe { *self.off })
    }

    /// Advances `*off` past `n` consumed bytes.
    pub fn advance(&mut self, n: usize) {
        let v = self.off().saturating_add(n);
        // SAFETY: `off` is valid for the call.
        unsafe { *self.off = to_c_int(v) }
    }

    /// Runs the `unparse` method inherited from `ty`'s supertypes on the same
    /// arguments, as type `ty`; returns its errno.
    pub fn unparse_as(&mut self, ty: &'static ParseType) -> c_int {
        let ty = ty.as_ptr();
        let Some(f) = super_unparse(ty) else {
            return Errno::EINVAL.raw();
        };
        // SAFETY: the engine's own arguments, handed on to an engine method.
        unsafe { f(ty, self.data, self.off, self.cbuf, self.cbuflen) }
    }

    /// Runs the `unparse` method of one of netgraph's predefined types on
    /// the same arguments, as that type; returns its errno.
    pub fn unparse_as_predefined(&mut self, ty: Predefined) -> c_int {
        let ty = ty.record();
        // SAFETY: a predefined type record of netgraph, never modified.
        let f = unsafe { (*ty).unparse };
        let Some(f) = f else {
            return Errno::EINVAL.raw();
        };
        // SAFETY: the engine's own arguments, handed on to an engine method
        // with the type it belongs to.
        unsafe { f(ty, self.data, self.off, self.cbuf, self.cbuflen) }
    }

    /// Netgraph's string encoder (decoding is not available here).
    pub fn strings(&self) -> NgStrings<'static> {
        NgStrings {
            input: &[],
            s: core::ptr::null(),
        }
    }
}

/// Netgraph's quoted-string codec: `ng_get_string_token` and
/// `ng_encode_string`, so strings are read and written exactly like
/// everywhere else in netgraph.
///
/// Both return memory from netgraph's private parse malloc type, which no
/// module can name; it is freed with the exported `M_NETGRAPH` (FreeBSD's own
/// ksocket uses its node type instead; either only affects statistics).
pub struct NgStrings<'a> {
    input: &'a [u8],
    s: *const c_char,
}

fn free_ng(p: *mut c_char) {
    // SAFETY: `p` was returned by a netgraph string routine (malloc'd) and is
    // freed once.
    unsafe { fbsd_sys::free(p.cast::<c_void>(), (&raw mut fbsd_sys::M_NETGRAPH).cast()) }
}

impl StrCodec for NgStrings<'_> {
    fn decode(
        &self,
        input: &[u8],
        start: &mut usize,
        out: &mut [u8],
    ) -> Result<DecodedString, crate::pure::Errno> {
        // Only the call's own text (same address, same C string) can be
        // handed to the C routine, which needs the terminating NUL.
        if self.s.is_null()
            || input.as_ptr() != self.input.as_ptr()
            || input.len() > self.input.len()
        {
            return Err(Errno::EINVAL.raw());
        }
        let mut st = to_c_int(*start);
        let mut len: c_int = 0;
        let mut slen: c_int = 0;
        // SAFETY: `s` is the NUL-terminated text of the parse call in
        // progress and `st` an index into it; the out pointers are valid.
        let p = unsafe { fbsd_sys::ng_get_string_token(self.s, &mut st, &mut len, &mut slen) };
        *start = from_c_int(st);
        if p.is_null() {
            return Err(Errno::EINVAL.raw());
        }
        let slen = from_c_int(slen);
        let n = slen.min(out.len());
        // SAFETY: the decoded buffer holds `slen` bytes (plus a NUL).
        let decoded = unsafe { core::slice::from_raw_parts(p.cast::<u8>(), n) };
        if let Some(dst) = out.get_mut(..n) {
            dst.copy_from_slice(decoded);
        }
        free_ng(p);
        Ok(DecodedString {
            consumed: from_c_int(len),
            len: slen,
        })
    }

    fn encode(&self, raw: &[u8], out: &mut [u8]) -> Result<usize, crate::pure::Errno> {
        // ng_encode_string sizes its buffer from strlen(raw): it may only be
        // given a NUL-terminated copy without interior NULs, which the
        // longest socket-address path (255 bytes) fits.
        const MAX: usize = 256;
        if raw.contains(&0) || raw.len() >= MAX {
            return encode_fallback(raw, out);
        }
        let mut tmp = [0u8; MAX];
        if let Some(dst) = tmp.get_mut(..raw.len()) {
            dst.copy_from_slice(raw);
        }
        // SAFETY: `tmp` is NUL-terminated right after the `raw.len()` bytes.
        let p = unsafe {
            fbsd_sys::ng_encode_string(tmp.as_ptr().cast::<c_char>(), to_c_int(raw.len()))
        };
        if p.is_null() {
            return Err(Errno::ENOMEM.raw());
        }
        // SAFETY: the encoder returns a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(p) }.to_bytes();
        let r = match out.get_mut(..text.len()) {
            Some(dst) => {
                dst.copy_from_slice(text);
                Ok(text.len())
            }
            None => Err(Errno::ERANGE.raw()),
        };
        free_ng(p);
        r
    }
}

/// `ng_encode_string`'s escapes, for input it cannot take (interior NULs):
/// `\t \f \n \r \v`, backslash-escaped `"` and `\`, other bytes outside
/// 0x20..=0x7e as `\xHH`.
fn encode_fallback(raw: &[u8], out: &mut [u8]) -> Result<usize, crate::pure::Errno> {
    let mut w = crate::pure::Writer::new(out);
    w.put(b"\"")?;
    for &c in raw {
        match c {
            b'\t' => w.put(b"\\t")?,
            0x0c => w.put(b"\\f")?,
            b'\n' => w.put(b"\\n")?,
            b'\r' => w.put(b"\\r")?,
            0x0b => w.put(b"\\v")?,
            b'"' | b'\\' => w.put(&[b'\\', c])?,
            0x20..=0x7e => w.put(&[c])?,
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hi = HEX.get(usize::from(c >> 4)).copied().unwrap_or(b'0');
                let lo = HEX.get(usize::from(c & 0xf)).copied().unwrap_or(b'0');
                w.put(&[b'\\', b'x', hi, lo])?;
            }
        }
    }
    w.put(b"\"")?;
    Ok(w.len())
}

/// The arguments of an array `getLength` method call.
///
/// # Invariants
///
/// `start` is the engine's top-level object, preceded by a message header,
/// and `buf` points inside it, for the duration of the call.
pub struct LengthCall {
    start: *const u8,
    buf: *const u8,
}

impl LengthCall {
    /// The `arglen` of the message header in front of the top-level object.
    pub fn arglen(&self) -> u32 {
        // SAFETY: the engine's `start` is preceded by a message header.
        unsafe { header_before(self.start) }.arglen
    }

    /// How many bytes of the top-level object, by the header's `arglen`,
    /// lie at and after the array. When printing a message, the bytes the
    /// array may cover (its end is the message's end); while parsing text,
    /// `arglen` is the length of the text, which bounds nothing.
    pub fn remaining(&self) -> usize {
        let arglen = usize::try_from(self.arglen()).unwrap_or(usize::MAX);
        let at = (self.buf as usize).saturating_sub(self.start as usize);
        arglen.saturating_sub(at)
    }

    /// The byte `back` bytes before the array (a field of the enclosing
    /// composite), if that is still inside the top-level object.
    pub fn byte_before(&self, back: usize) -> Option<u8> {
        let at = (self.buf as usize).checked_sub(back)?;
        if at < self.start as usize {
            return None;
        }
        // SAFETY: `start..buf` lies inside the top-level object the engine is
        // building or printing, all of which is readable.
        Some(unsafe { *self.buf.sub(back) })
    }
}

/// A custom `parse` method.
pub trait ParseMethod {
    /// Parses `call`'s text; returns an errno (0 on success).
    fn parse(call: &mut ParseCall) -> c_int;
}

/// A custom `unparse` method.
pub trait UnparseMethod {
    /// Prints `call`'s binary; returns an errno (0 on success).
    fn unparse(call: &mut UnparseCall) -> c_int;
}

/// A custom array `getLength` method.
pub trait LengthMethod {
    /// The array's element count.
    fn length(call: &LengthCall) -> c_int;
}

/// The C entry point of a [`ParseMethod`] (`ng_parse_t`).
///
/// # Safety
///
/// Called by netgraph's parse engine only, with the arguments of a parse
/// call in progress (see [`ParseCall::new`]).
unsafe extern "C" fn parse_entry<P: ParseMethod>(
    _ty: *const ng_parse_type,
    s: *const c_char,
    off: *mut c_int,
    start: *const u8,
    buf: *mut u8,
    buflen: *mut c_int,
) -> c_int {
    // SAFETY: the engine's arguments for this call (see ParseCall::new).
    match unsafe { ParseCall::new(s, off, start, buf, buflen) } {
        Some(mut c) => P::parse(&mut c),
        None => Errno::EINVAL.raw(),
    }
}

/// The C entry point of an [`UnparseMethod`] (`ng_unparse_t`).
///
/// # Safety
///
/// Called by netgraph's parse engine only, with the arguments of an
/// unparse call in progress (see [`UnparseCall::new`]).
unsafe extern "C" fn unparse_entry<P: UnparseMethod>(
    _ty: *const ng_parse_type,
    data: *const u8,
    off: *mut c_int,
    cbuf: *mut c_char,
    cbuflen: c_int,
) -> c_int {
    // SAFETY: the engine's arguments for this call (see UnparseCall::new).
    match unsafe { UnparseCall::new(data, off, cbuf, cbuflen) } {
        Some(mut c) => P::unparse(&mut c),
        None => Errno::EINVAL.raw(),
    }
}

/// The C entry point of a [`LengthMethod`] (`ng_parse_array_getLength_t`).
///
/// # Safety
///
/// Called by netgraph's parse engine only: `start` is the top-level object,
/// preceded by a message header, and `buf` points inside it.
unsafe extern "C" fn length_entry<L: LengthMethod>(
    _ty: *const ng_parse_type,
    start: *const u8,
    buf: *const u8,
) -> c_int {
    if start.is_null() || buf.is_null() {
        return 0;
    }
    L::length(&LengthCall { start, buf })
}

// ---------------------------------------------------------------------------
// Declarations

/// A parse type (`struct ng_parse_type`): a `static` the parse engine reads
/// by address.
#[repr(transparent)]
pub struct ParseType(KernelCell<ng_parse_type>);

/// The address of a parse type, for use in other declarations.
#[derive(Clone, Copy)]
pub struct TypeRef(*const ng_parse_type);

// SAFETY: a `TypeRef` is the address of an immutable parse-type record
// (a static of ours or one of netgraph's), which any thread may read.
unsafe impl Sync for TypeRef {}
// SAFETY: as above.
unsafe impl Send for TypeRef {}

/// netgraph's `ng_parse_int8_type`... : the predefined scalar types.
pub const UINT8: TypeRef = TypeRef(&raw const fbsd_sys::ng_parse_uint8_type);
/// `int32_t`, decimal.
pub const INT32: TypeRef = TypeRef(&raw const fbsd_sys::ng_parse_int32_type);
/// `uint32_t`, hexadecimal.
pub const HINT32: TypeRef = TypeRef(&raw const fbsd_sys::ng_parse_hint32_type);
/// `uint64_t`, decimal.
pub const UINT64: TypeRef = TypeRef(&raw const fbsd_sys::ng_parse_uint64_type);

const fn parse_type(
    supertype: *const ng_parse_type,
    info: *const c_void,
    parse: fbsd_sys::ng_parse_t,
    unparse: fbsd_sys::ng_unparse_t,
) -> ParseType {
    ParseType(KernelCell::new(ng_parse_type {
        supertype,
        info,
        private: core::ptr::null_mut(),
        parse,
        unparse,
        getDefault: None,
        getAlign: None,
    }))
}

impl ParseType {
    /// A structure (netgraph's `ng_parse_struct_type`) with `fields`.
    pub const fn structure<const N: usize>(fields: &'static StructFields<N>) -> ParseType {
        parse_type(
            &raw const fbsd_sys::ng_parse_struct_type,
            fields.as_info(),
            None,
            None,
        )
    }

    /// A type deriving from `base` (without `info` of its own): it parses
    /// and prints as `base` does unless given methods of its own.
    pub const fn extending(base: TypeRef) -> ParseType {
        parse_type(base.0, core::ptr::null(), None, None)
    }

    /// A type with no supertype, whose text forms are entirely its own
    /// methods (give it both).
    pub const fn custom() -> ParseType {
        parse_type(core::ptr::null(), core::ptr::null(), None, None)
    }

    /// A byte array (netgraph's `ng_parse_bytearray_type`) whose length
    /// `L` computes: the array's `info` is the getLength function itself.
    pub const fn bytearray<L: LengthMethod>() -> ParseType {
        let f: unsafe extern "C" fn(*const ng_parse_type, *const u8, *const u8) -> c_int =
            length_entry::<L>;
        parse_type(
            &raw const fbsd_sys::ng_parse_bytearray_type,
            f as *const c_void,
            None,
            None,
        )
    }

    /// The same type, parsing text with `P` (which may hand the call on to
    /// the supertypes' method, [`ParseCall::parse_as`]).
    pub const fn parsed_by<P: ParseMethod>(self) -> ParseType {
        let mut t = self.0.into_inner();
        t.parse = Some(parse_entry::<P>);
        ParseType(KernelCell::new(t))
    }

    /// The same type, printing with `U` (which may hand the call on to the
    /// supertypes' method, [`UnparseCall::unparse_as`]).
    pub const fn printed_by<U: UnparseMethod>(self) -> ParseType {
        let mut t = self.0.into_inner();
        t.unparse = Some(unparse_entry::<U>);
        ParseType(KernelCell::new(t))
    }

    /// Its address, for other declarations.
    pub const fn to_ref(&'static self) -> TypeRef {
        TypeRef(self.0.get().cast_const())
    }

    fn as_ptr(&self) -> *const ng_parse_type {
        self.0.get().cast_const()
    }
}

/// One field of a [`StructFields`].
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Field(ng_parse_struct_field);

impl Field {
    /// A field named `name` of type `ty` (default alignment).
    pub const fn new(name: &'static CStr, ty: TypeRef) -> Field {
        Field(ng_parse_struct_field {
            name: name.as_ptr(),
            type_: ty.0,
            alignment: 0,
        })
    }

    const END: Field = Field(ng_parse_struct_field {
        name: core::ptr::null(),
        type_: core::ptr::null(),
        alignment: 0,
    });
}

/// The fields of a structure parse type, with the terminating entry the
/// engine expects (`NG_PARSE_STRUCT_FIELD` array).
#[repr(C)]
pub struct StructFields<const N: usize> {
    fields: [Field; N],
    end: Field,
}

// SAFETY: immutable after construction; its pointers name static strings
// and parse types.
unsafe impl<const N: usize> Sync for StructFields<N> {}

impl<const N: usize> StructFields<N> {
    /// The fields, in binary order.
    pub const fn new(fields: [Field; N]) -> Self {
        StructFields {
            fields,
            end: Field::END,
        }
    }

    /// `N` fields of type `ty`, named `names`.
    pub const fn uniform(names: &[&'static CStr; N], ty: TypeRef) -> Self {
        let mut fields = [Field::END; N];
        let mut i = 0;
        while i < N {
            // Evaluated at compile time: `i < N` for both arrays.
            #[allow(clippy::indexing_slicing)]
            {
                fields[i] = Field::new(names[i], ty);
            }
            #[allow(clippy::arithmetic_side_effects)]
            {
                i += 1;
            }
        }
        StructFields {
            fields,
            end: Field::END,
        }
    }

    const fn as_info(&'static self) -> *const c_void {
        (self as *const Self).cast::<c_void>()
    }
}

/// One command of a [`CmdList`].
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Cmd(ng_cmdlist);

impl Cmd {
    /// Command `cmd` of cookie `cookie`, called `name` in ASCII, whose
    /// argument and reply have the parse types `mesg` and `resp` (`None`:
    /// no argument, no reply).
    pub const fn new(
        cookie: u32,
        cmd: u32,
        name: &'static CStr,
        mesg: Option<TypeRef>,
        resp: Option<TypeRef>,
    ) -> Cmd {
        const fn ptr(t: Option<TypeRef>) -> *const ng_parse_type {
            match t {
                Some(t) => t.0,
                None => core::ptr::null(),
            }
        }
        #[allow(clippy::cast_possible_wrap)]
        Cmd(ng_cmdlist {
            cookie,
            cmd: cmd as c_int,
            name: name.as_ptr(),
            mesgType: ptr(mesg),
            respType: ptr(resp),
        })
    }

    const END: Cmd = Cmd(ng_cmdlist {
        cookie: 0,
        cmd: 0,
        name: core::ptr::null(),
        mesgType: core::ptr::null(),
        respType: core::ptr::null(),
    });
}

/// A node type's command list (`struct ng_cmdlist` array with its
/// terminating entry), for its type record.
#[repr(C)]
pub struct CmdList<const N: usize> {
    cmds: [Cmd; N],
    end: Cmd,
}

// SAFETY: immutable after construction; its pointers name static strings
// and parse types.
unsafe impl<const N: usize> Sync for CmdList<N> {}

impl<const N: usize> CmdList<N> {
    /// The commands, in the order `ngctl help` lists them.
    pub const fn new(cmds: [Cmd; N]) -> Self {
        CmdList {
            cmds,
            end: Cmd::END,
        }
    }

    pub(in crate::kern) const fn as_ptr(&'static self) -> *const ng_cmdlist {
        (self as *const Self).cast::<ng_cmdlist>()
    }
}

const _: () = {
    assert!(core::mem::size_of::<Field>() == core::mem::size_of::<ng_parse_struct_field>());
    assert!(core::mem::size_of::<Cmd>() == core::mem::size_of::<ng_cmdlist>());
    assert!(core::mem::size_of::<StructFields<3>>() == 4 * core::mem::size_of::<Field>());
    assert!(core::mem::size_of::<CmdList<3>>() == 4 * core::mem::size_of::<Cmd>());
};
