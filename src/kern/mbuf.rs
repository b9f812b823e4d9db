//! mbuf(9): owned chains ([`Mbuf`]) and chains known to start with a
//! packet header ([`Packet`]), their flags, lengths and tags, and the few
//! copies the control path makes (the data path never copies).

use core::ffi::c_char;
use core::ops::Deref;
use core::ptr::NonNull;

use fbsd_sys::mbuf;

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
    fn flags_word(&self) -> *mut u32 {
        const _: () = assert!(core::mem::offset_of!(mbuf, _bitfield_1) % 4 == 0);
        // SAFETY: the chain is owned; the bitfield unit is 4 bytes at a
        // 4-aligned offset (checked above).
        unsafe { (&raw mut (*self.raw.as_ptr())._bitfield_1).cast::<u32>() }
    }

    fn flags(&self) -> u32 {
        // SAFETY: see `flags_word`; a plain aligned read of an owned mbuf.
        unsafe { self.flags_word().read() >> 8 }
    }

    /// True if the first mbuf carries a packet header (`M_PKTHDR`).
    pub fn has_pkthdr(&self) -> bool {
        self.flags() & fbsd_sys::M_PKTHDR != 0
    }

    /// The chain as a [`Packet`] if it starts with a packet header, else
    /// the chain back.
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
    pub fn pkt_len(&self) -> i32 {
        // SAFETY: the packet header of an owned chain (see `pkthdr`).
        unsafe { (*self.pkthdr()).len }
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

    /// Finds the first tag with `cookie` and `ty` (`m_tag_locate`) and
    /// returns its payload bytes (the bytes after the `struct m_tag`
    /// header).
    pub fn tag_payload(&self, cookie: u32, ty: u16) -> Option<&[u8]> {
        // SAFETY: the chain is owned and has a packet header; m_tag_locate
        // only walks its tag list.
        let t = unsafe {
            fbsd_sys::m_tag_locate(self.0.raw.as_ptr(), cookie, ty, core::ptr::null_mut())
        };
        let t = NonNull::new(t)?;
        // SAFETY: a tag of length `m_tag_len` has that many payload bytes
        // right after its header; the tag lives as long as the chain.
        unsafe {
            let len = usize::from((*t.as_ptr()).m_tag_len);
            Some(core::slice::from_raw_parts(
                t.as_ptr().add(1).cast::<u8>(),
                len,
            ))
        }
    }

    /// Allocates a tag without sleeping, fills its payload with `fill` and
    /// prepends it to the packet header's tag list. `ENOBUFS` if the tag
    /// cannot be had (the chain is left as it was).
    pub fn prepend_tag(
        &mut self,
        cookie: u32,
        ty: u16,
        len: u16,
        fill: impl FnOnce(&mut [u8]),
    ) -> KResult<()> {
        // SAFETY: m_tag_alloc has no preconditions; it returns NULL on failure.
        let t = unsafe { fbsd_sys::m_tag_alloc(cookie, ty, i32::from(len), M_NOWAIT) };
        let t = NonNull::new(t).ok_or(Errno::ENOBUFS)?;
        // SAFETY: the fresh tag has `len` payload bytes after its header.
        let payload = unsafe {
            core::slice::from_raw_parts_mut(t.as_ptr().add(1).cast::<u8>(), usize::from(len))
        };
        payload.fill(0);
        fill(payload);
        let ph = self.pkthdr();
        // SAFETY: `m_tag_prepend`: the tag is linked at the head of the
        // packet header's list and is owned by the chain from now on.
        unsafe {
            (*t.as_ptr()).m_tag_link.sle_next = (*ph).tags.slh_first;
            (*ph).tags.slh_first = t.as_ptr();
        }
        Ok(())
    }
}
