//! mbuf(9): owned chains ([`Mbuf`]) and chains known to start with a
//! packet header ([`Packet`]), their flags, lengths and tags, and the few
//! copies the control path makes (the data path never copies).

use core::ffi::c_char;
use core::ops::Deref;
use core::ptr::NonNull;

use fbsd_sys::{m_tag, mbuf};

use super::errno::{Errno, KResult};

#[allow(clippy::cast_possible_wrap)]
const M_NOWAIT: i32 = fbsd_sys::M_NOWAIT as i32;
#[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
const MT_DATA: i16 = fbsd_sys::MT_DATA as i16;
#[allow(clippy::cast_possible_wrap)]
const M_PKTHDR: i32 = fbsd_sys::M_PKTHDR as i32;

bitflags::bitflags! {
    /// Bits of an mbuf's `m_flags` the node types use.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MbufFlags: u32 {
        /// Received as link-level broadcast.
        const BCAST = fbsd_sys::M_BCAST;
        /// Received as link-level multicast.
        const MCAST = fbsd_sys::M_MCAST;
    }
}

/// An owned mbuf chain; dropping it frees the whole chain (`m_freem`).
///
/// # Invariants
///
/// `raw` heads a chain this value owns.
pub struct Mbuf {
    raw: NonNull<mbuf>,
}

// SAFETY: an owned chain may be handed to another thread.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a chain.
    ///
    /// # Safety
    ///
    /// `raw` must be NULL or head a chain the caller owns.
    #[doc(hidden)]
    pub unsafe fn from_raw(raw: *mut mbuf) -> Option<Mbuf> {
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// Takes ownership of a chain known to be there.
    ///
    /// # Safety
    ///
    /// `raw` heads a chain the caller owns.
    #[inline(always)]
    pub(in crate::kern) unsafe fn from_nonnull(raw: NonNull<mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// Raw pointer, still owned by `self` (for kernel calls that borrow).
    pub(in crate::kern) fn as_raw(&self) -> *mut mbuf {
        self.raw.as_ptr()
    }

    /// Gives up ownership to a kernel function that consumes the chain.
    pub(in crate::kern) fn into_raw(self) -> *mut mbuf {
        let p = self.raw.as_ptr();
        core::mem::forget(self);
        p
    }

    /// The 32-bit word holding `m_type` (bits 0-7) and `m_flags` (bits
    /// 8-31). bindgen's bitfield accessors walk it bit by bit (hundreds of
    /// instructions per access on the packet path); this reads it whole.
    #[inline]
    fn flags_word(&self) -> *mut u32 {
        const _: () = assert!(core::mem::offset_of!(mbuf, _bitfield_1) % 4 == 0);
        // SAFETY: the chain is owned; the bitfield unit is 4 bytes at a
        // 4-aligned offset (checked above).
        unsafe { (&raw mut (*self.raw.as_ptr())._bitfield_1).cast::<u32>() }
    }

    /// True if the first mbuf carries a packet header (`M_PKTHDR`).
    #[inline]
    pub fn has_pkthdr(&self) -> bool {
        // M_PKTHDR sits in the byte of the flags word above `m_type`; it is
        // read on its own (and volatile, so that the compiler does not fold
        // it into a later update of the whole word: a test and a one-
        // instruction update beat a load, a test and a store).
        const BIT: u8 = (fbsd_sys::M_PKTHDR & 0xff) as u8;
        const _: () = assert!(fbsd_sys::M_PKTHDR < 0x100);
        // SAFETY: see `flags_word`; byte 1 of the 4-byte unit (little
        // endian) holds m_flags bits 0-7.
        let b = unsafe { self.flags_word().cast::<u8>().add(1).read_volatile() };
        b & BIT != 0
    }

    /// The chain as a [`Packet`] if it starts with a packet header, else
    /// the chain back.
    #[inline]
    pub fn into_packet(self) -> Result<Packet, Mbuf> {
        if self.has_pkthdr() {
            Ok(Packet(self))
        } else {
            Err(self)
        }
    }

    /// The chain seen as a [`Packet`], if it starts with a packet header.
    pub fn packet(&self) -> Option<&Packet> {
        if !self.has_pkthdr() {
            return None;
        }
        // SAFETY: `Packet` is a transparent wrapper of `Mbuf`, and the
        // chain has a packet header (its invariant).
        Some(unsafe { &*(self as *const Mbuf).cast::<Packet>() })
    }

    /// Clears bits of the first mbuf's `m_flags`.
    #[inline]
    pub fn clear_flags(&mut self, bits: MbufFlags) {
        let w = self.flags_word();
        // SAFETY: see `flags_word`; `&mut self` makes the access unique.
        unsafe { w.write(w.read() & !(bits.bits() << 8)) }
    }

    /// Total length of the chain (`m_length`).
    pub fn chain_len(&self) -> usize {
        // SAFETY: the chain is owned; m_length only walks it.
        let n = unsafe { fbsd_sys::m_length(self.as_raw(), core::ptr::null_mut()) };
        n as usize
    }

    /// Copies the chain's first `out.len()` bytes out (`m_copydata`);
    /// `EINVAL` if the chain is shorter.
    pub fn copy_out(&self, out: &mut [u8]) -> KResult<()> {
        if out.len() > self.chain_len() {
            return Err(Errno::EINVAL);
        }
        let len = i32::try_from(out.len()).map_err(|_| Errno::EINVAL)?;
        // SAFETY: the chain holds at least `len` bytes (checked above) and
        // `out` is writable for that many.
        unsafe { fbsd_sys::m_copydata(self.as_raw(), 0, len, out.as_mut_ptr().cast::<c_char>()) };
        Ok(())
    }

    /// Puts `self` behind a fresh, empty packet-header mbuf whose packet
    /// length is the chain's length (stream data carries no packet header).
    /// No data is copied. On `ENOBUFS` the chain is freed.
    pub fn behind_new_header(self) -> KResult<Packet> {
        let mut h = Packet::new_empty()?;
        let len = i32::try_from(self.chain_len()).unwrap_or(i32::MAX);
        let tail = self.into_raw();
        // SAFETY: `h` is a fresh single mbuf we own; linking the owned chain
        // `tail` as its successor transfers that chain into `h`.
        unsafe {
            (*h.0.raw.as_ptr()).__bindgen_anon_1.m_next = tail;
        }
        h.set_pkt_len(len);
        Ok(h)
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: the chain is owned and freed exactly once here.
        unsafe { fbsd_sys::m_freem(self.raw.as_ptr()) }
    }
}

/// An owned mbuf chain whose first mbuf carries a packet header
/// (`M_PKTHDR`): total length and tags.
///
/// # Invariants
///
/// The first mbuf of the chain has `M_PKTHDR` set.
#[repr(transparent)]
pub struct Packet(Mbuf);

impl Deref for Packet {
    type Target = Mbuf;
    fn deref(&self) -> &Mbuf {
        &self.0
    }
}

impl From<Packet> for Mbuf {
    fn from(p: Packet) -> Mbuf {
        p.0
    }
}

impl Packet {
    /// One empty mbuf with a packet header (`m_gethdr(M_NOWAIT, MT_DATA)`,
    /// through the exported `m_get2`): length 0, no data.
    pub fn new_empty() -> KResult<Packet> {
        // SAFETY: m_get2 with size 0 returns one fresh packet-header mbuf
        // or NULL.
        let m = unsafe { fbsd_sys::m_get2(0, M_NOWAIT, MT_DATA, M_PKTHDR) };
        // SAFETY: a fresh mbuf belongs to the caller; it has a packet header.
        unsafe { Mbuf::from_raw(m) }
            .map(Packet)
            .ok_or(Errno::ENOBUFS)
    }

    /// A new chain holding a copy of `data`, allocated without sleeping;
    /// `ENOBUFS` if it cannot be had.
    pub fn copy_from(data: &[u8]) -> KResult<Packet> {
        let len = i32::try_from(data.len()).map_err(|_| Errno::EMSGSIZE)?;
        const FIRST: i32 = 4096;
        // SAFETY: m_get2 returns a fresh chain or NULL.
        let m = unsafe { fbsd_sys::m_get2(len.min(FIRST), M_NOWAIT, MT_DATA, M_PKTHDR) };
        // SAFETY: a fresh mbuf belongs to the caller; it has a packet header.
        let m = unsafe { Mbuf::from_raw(m) }.ok_or(Errno::ENOBUFS)?;
        // SAFETY: m_copyback extends the owned chain as needed (M_NOWAIT) and
        // updates the packet length; `data` is readable for `len` bytes.
        unsafe { fbsd_sys::m_copyback(m.as_raw(), 0, len, data.as_ptr().cast::<c_char>()) };
        if m.chain_len() != data.len() {
            return Err(Errno::ENOBUFS);
        }
        Ok(Packet(m))
    }

    #[inline]
    fn pkthdr(&self) -> *mut fbsd_sys::pkthdr {
        /// The member of a bindgen union field (which sits at the union's
        /// own address).
        fn member<T>(f: *mut fbsd_sys::__BindgenUnionField<T>) -> *mut T {
            f.cast::<T>()
        }
        // SAFETY: the chain is owned; its first mbuf has a packet header
        // (invariant), which is the union member addressed here.
        unsafe {
            let u = member(&raw mut (*self.0.raw.as_ptr()).__bindgen_anon_3.__bindgen_anon_1);
            &raw mut (*u).__bindgen_anon_1.m_pkthdr
        }
    }

    /// The total packet length from the packet header.
    #[inline]
    pub fn pkt_len(&self) -> i32 {
        // SAFETY: the packet header of an owned chain (see `pkthdr`).
        unsafe { (*self.pkthdr()).len }
    }

    /// The total packet length as a byte count (`m_pkthdr.len`, never
    /// negative in a packet).
    #[inline]
    pub fn byte_len(&self) -> u64 {
        #[allow(clippy::cast_sign_loss)]
        u64::from(self.pkt_len() as u32)
    }

    /// Sets the packet header's total length.
    pub fn set_pkt_len(&mut self, len: i32) {
        // SAFETY: as in `len`; `&mut self` makes the access unique.
        unsafe { (*self.pkthdr()).len = len }
    }

    /// Clears bits of the first mbuf's `m_flags`.
    pub fn clear_flags(&mut self, bits: MbufFlags) {
        self.0.clear_flags(bits);
    }

    /// True if the packet carries any mbuf tag.
    #[inline]
    pub fn has_tags(&self) -> bool {
        // SAFETY: the packet header of an owned chain (see `pkthdr`).
        !unsafe { (*self.pkthdr()).tags.slh_first }.is_null()
    }

    /// Where the first tag with `cookie` and `ty` is, as far as a look at
    /// the first tag tells (no call).
    #[inline(always)]
    pub fn tag_at(&self, cookie: u32, ty: u16) -> TagAt {
        // SAFETY: the packet header of an owned chain (see `pkthdr`).
        let Some(first) = NonNull::new(unsafe { (*self.pkthdr()).tags.slh_first }) else {
            return TagAt::None;
        };
        // SAFETY: a tag of the chain's list: a live `struct m_tag`.
        if unsafe { (*first.as_ptr()).m_tag_cookie == cookie && (*first.as_ptr()).m_tag_id == ty } {
            TagAt::First
        } else {
            TagAt::Elsewhere
        }
    }

    /// The payload of the first tag, if it has `cookie` and `ty` (see
    /// [`Packet::tag_at`]; [`Packet::tag_payload`] looks further).
    #[inline(always)]
    pub fn first_tag_payload(&self, cookie: u32, ty: u16) -> Option<&[u8]> {
        match self.tag_at(cookie, ty) {
            TagAt::First => {
                // SAFETY: the packet header of an owned chain; `tag_at`
                // found the first tag, so the list head is not null.
                Some(unsafe { tag_bytes(NonNull::new_unchecked((*self.pkthdr()).tags.slh_first)) })
            }
            _ => None,
        }
    }

    /// Finds the first tag with `cookie` and `ty` (`m_tag_locate`) and
    /// returns its payload bytes (the bytes after the `struct m_tag`
    /// header).
    #[inline]
    pub fn tag_payload(&self, cookie: u32, ty: u16) -> Option<&[u8]> {
        // SAFETY: the packet header of an owned chain (see `pkthdr`).
        let first = NonNull::new(unsafe { (*self.pkthdr()).tags.slh_first })?;
        // The tag looked for is usually the first one (often the only
        // one): found without a call. Otherwise m_tag_locate, which
        // returns the first match in list order just the same.
        // SAFETY: a tag of the chain's list: a live `struct m_tag`.
        let t = if unsafe {
            (*first.as_ptr()).m_tag_cookie == cookie && (*first.as_ptr()).m_tag_id == ty
        } {
            first
        } else {
            locate_tag(self, cookie, ty)?
        };
        // SAFETY: a tag of the chain's list, which `self` borrows.
        Some(unsafe { tag_bytes(t) })
    }

    /// Allocates a tag without sleeping whose payload is `head` (4 bytes,
    /// native order, read once the tag is had) then `tail` (copied,
    /// nothing else written), and prepends it to the packet
    /// header's tag list. `ENOBUFS` if the tag cannot be had, `EINVAL` if
    /// the payload would be longer than a tag holds (the chain is left as
    /// it was).
    #[inline]
    pub fn prepend_tag_with(
        &mut self,
        cookie: u32,
        ty: u16,
        head: &u32,
        tail: &[u8],
    ) -> KResult<()> {
        const HEAD: usize = core::mem::size_of::<u32>();
        let len = tail.len().checked_add(HEAD).ok_or(Errno::EINVAL)?;
        let len = u16::try_from(len).map_err(|_| Errno::EINVAL)?;
        // SAFETY: m_tag_alloc has no preconditions; it returns NULL on failure.
        let t = unsafe { fbsd_sys::m_tag_alloc(cookie, ty, i32::from(len), M_NOWAIT) };
        let t = NonNull::new(t).ok_or(Errno::ENOBUFS)?;
        let ph = self.pkthdr();
        // SAFETY: the fresh tag has `len` = 4 + tail.len() payload bytes
        // after its header, all written here; it is linked (`m_tag_prepend`:
        // at the head of the packet header's list, owned by the chain from
        // now on) before its address is copied, so that nothing but that
        // copy remains to be done after it (the chain is ours: nobody reads
        // the tag meanwhile).
        unsafe {
            let p = t.as_ptr().add(1).cast::<u8>();
            p.cast::<u32>().write_unaligned(*head);
            (*t.as_ptr()).m_tag_link.sle_next = (*ph).tags.slh_first;
            (*ph).tags.slh_first = t.as_ptr();
            core::ptr::copy_nonoverlapping(tail.as_ptr(), p.add(HEAD), tail.len());
        }
        Ok(())
    }
}

/// `m_tag_locate(m, cookie, ty, NULL)`: the first tag of the packet with
/// that cookie and type (a tag of its list, alive as long as the chain).
#[cold]
#[inline(never)]
fn locate_tag(p: &Packet, cookie: u32, ty: u16) -> Option<NonNull<m_tag>> {
    // SAFETY: the chain is owned and has a packet header; m_tag_locate
    // only walks its tag list.
    NonNull::new(unsafe {
        fbsd_sys::m_tag_locate(p.0.raw.as_ptr(), cookie, ty, core::ptr::null_mut())
    })
}

/// Where a packet's first tag of a given cookie and type is
/// ([`Packet::tag_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagAt {
    /// The packet has no tag at all.
    None,
    /// It is the first tag.
    First,
    /// The first tag is another: it may come later, or not at all.
    Elsewhere,
}

/// The payload bytes of a tag (the `m_tag_len` bytes after its header).
///
/// # Safety
///
/// `t` is a live tag of a chain the caller borrows for `'a`.
#[inline(always)]
unsafe fn tag_bytes<'a>(t: NonNull<m_tag>) -> &'a [u8] {
    // SAFETY: a tag of length `m_tag_len` has that many payload bytes right
    // after its header; it lives as long as the chain (caller).
    unsafe {
        let len = usize::from((*t.as_ptr()).m_tag_len);
        core::slice::from_raw_parts(t.as_ptr().add(1).cast::<u8>(), len)
    }
}
