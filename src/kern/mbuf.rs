//! mbuf(9): owned packet chains.

use core::ptr::NonNull;

use fbsd_sys::mbuf;

use super::errno::{Errno, KResult};

/// An owned mbuf chain; dropping it frees the whole chain (`m_freem`).
pub struct Mbuf {
    raw: NonNull<mbuf>,
}

impl Mbuf {
    /// Takes ownership of a chain.
    ///
    /// # Safety
    /// The caller must own the chain `raw` heads.
    pub unsafe fn from_raw(raw: *mut mbuf) -> Option<Mbuf> {
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// Raw pointer, still owned by `self` (for kernel calls that borrow).
    pub(crate) fn as_raw(&self) -> *mut mbuf {
        self.raw.as_ptr()
    }

    /// Gives up ownership to a kernel function that consumes the chain.
    pub fn into_raw(self) -> *mut mbuf {
        let p = self.raw.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Total packet length from the packet header.
    pub fn pkt_len(&self) -> i32 {
        // SAFETY: the chain is owned; a chain handed over by netgraph has a packet header.
        unsafe {
            (*self.raw.as_ptr())
                .__bindgen_anon_3
                .__bindgen_anon_1
                .as_ref()
                .__bindgen_anon_1
                .m_pkthdr
                .len
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: the chain is owned and freed exactly once here.
        unsafe { fbsd_sys::m_freem(self.raw.as_ptr()) }
    }
}

impl Mbuf {
    fn pkthdr(&mut self) -> &mut fbsd_sys::pkthdr {
        // SAFETY: the chain is owned; chains handed over by netgraph and by
        // soreceive's datagram path carry a packet header in the first mbuf
        // (callers check `has_pkthdr` before relying on its contents).
        unsafe {
            &mut (*self.raw.as_ptr())
                .__bindgen_anon_3
                .__bindgen_anon_1
                .as_mut()
                .__bindgen_anon_1
                .m_pkthdr
        }
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

    /// Clears bits of the first mbuf's `m_flags` (e.g. `M_BCAST | M_MCAST`).
    pub fn clear_flags(&mut self, bits: u32) {
        let w = self.flags_word();
        // SAFETY: see `flags_word`; `&mut self` makes the access unique.
        unsafe { w.write(w.read() & !(bits << 8)) }
    }

    /// Finds the first tag with `cookie` and `ty` (`m_tag_locate`) and
    /// returns its payload bytes (the bytes after the `struct m_tag` header).
    pub fn tag_payload(&mut self, cookie: u32, ty: u16) -> Option<&[u8]> {
        if !self.has_pkthdr() {
            return None;
        }
        // SAFETY: the chain is owned and has a packet header; m_tag_locate
        // only walks its tag list.
        let t =
            unsafe { fbsd_sys::m_tag_locate(self.raw.as_ptr(), cookie, ty, core::ptr::null_mut()) };
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
    /// cannot be had (the chain is left as it was); `EINVAL` without a packet
    /// header.
    pub fn prepend_tag(
        &mut self,
        cookie: u32,
        ty: u16,
        len: u16,
        fill: impl FnOnce(&mut [u8]),
    ) -> KResult<()> {
        if !self.has_pkthdr() {
            return Err(Errno::EINVAL);
        }
        #[allow(clippy::cast_possible_wrap)]
        let how = fbsd_sys::M_NOWAIT as i32;
        // SAFETY: m_tag_alloc has no preconditions; it returns NULL on failure.
        let t = unsafe { fbsd_sys::m_tag_alloc(cookie, ty, i32::from(len), how) };
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
            (*t.as_ptr()).m_tag_link.sle_next = ph.tags.slh_first;
        }
        ph.tags.slh_first = t.as_ptr();
        Ok(())
    }

    /// Sets the packet header's total length.
    pub fn set_pkt_len(&mut self, len: i32) {
        self.pkthdr().len = len;
    }
}

/// Allocates an mbuf chain able to hold `len` bytes (`m_getm2` with a
/// packet header), without sleeping; the chain's lengths are zero.
pub fn alloc_pkt(len: i32) -> KResult<Mbuf> {
    #[allow(clippy::cast_possible_wrap)]
    let (how, ty, flags) = (
        fbsd_sys::M_NOWAIT as i32,
        fbsd_sys::MT_DATA as i16,
        fbsd_sys::M_PKTHDR as i32,
    );
    // SAFETY: m_getm2 with a NULL chain allocates a fresh one or returns NULL.
    let m = unsafe { fbsd_sys::m_getm2(core::ptr::null_mut(), len, how, ty, flags) };
    // SAFETY: a fresh chain belongs to the caller.
    unsafe { Mbuf::from_raw(m) }.ok_or(Errno::ENOBUFS)
}

/// Allocates one empty mbuf with a packet header (`m_gethdr(M_NOWAIT,
/// MT_DATA)`, through the exported `m_get2`): length 0, no data.
pub fn alloc_hdr() -> KResult<Mbuf> {
    #[allow(clippy::cast_possible_wrap)]
    let (how, ty, flags) = (
        fbsd_sys::M_NOWAIT as i32,
        fbsd_sys::MT_DATA as i16,
        fbsd_sys::M_PKTHDR as i32,
    );
    // SAFETY: m_get2 with size 0 returns one fresh packet-header mbuf or NULL.
    let m = unsafe { fbsd_sys::m_get2(0, how, ty, flags) };
    // SAFETY: a fresh mbuf belongs to the caller.
    unsafe { Mbuf::from_raw(m) }.ok_or(Errno::ENOBUFS)
}

impl Mbuf {
    /// Puts `self` behind a fresh, empty packet-header mbuf whose packet
    /// length is the chain's length (stream data carries no packet header).
    /// No data is copied. On `ENOBUFS` the chain is freed.
    pub fn behind_new_header(self) -> KResult<Mbuf> {
        let mut h = alloc_hdr()?;
        let len = i32::try_from(self.chain_len()).unwrap_or(i32::MAX);
        let tail = self.into_raw();
        // SAFETY: `h` is a fresh single mbuf we own; linking the owned chain
        // `tail` as its successor transfers that chain into `h`.
        unsafe {
            (*h.raw.as_ptr()).__bindgen_anon_1.m_next = tail;
        }
        h.set_pkt_len(len);
        Ok(h)
    }
}
