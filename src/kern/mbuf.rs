//! mbuf(9): owned packet chains.

use core::ptr::NonNull;

use fbsd_sys::mbuf;

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
