//! Copies between linear buffers, mbuf chains and netgraph messages — the
//! control path only (messages are small and rare); the data path never copies.

use core::ffi::c_char;

use super::errno::{Errno, KResult};
use super::mbuf::Mbuf;
use super::netgraph::Msg;

/// Header size of a netgraph message.
pub const NG_MESG_HDR: usize = core::mem::size_of::<fbsd_sys::ng_mesg_ng_msghdr>();

impl Mbuf {
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

    /// A new packet-header chain holding a copy of `data`, allocated
    /// without sleeping; `ENOBUFS` if it cannot be had.
    pub fn copy_from(data: &[u8]) -> KResult<Mbuf> {
        let len = i32::try_from(data.len()).map_err(|_| Errno::EMSGSIZE)?;
        #[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
        let (how, ty, flags) = (
            fbsd_sys::M_NOWAIT as i32,
            fbsd_sys::MT_DATA as i16,
            fbsd_sys::M_PKTHDR as i32,
        );
        const FIRST: i32 = 4096;
        // SAFETY: m_get2 returns a fresh chain or NULL.
        let m = unsafe { fbsd_sys::m_get2(len.min(FIRST), how, ty, flags) };
        // SAFETY: a fresh mbuf belongs to the caller.
        let m = unsafe { Mbuf::from_raw(m) }.ok_or(Errno::ENOBUFS)?;
        // SAFETY: m_copyback extends the owned chain as needed (M_NOWAIT) and
        // updates the packet length; `data` is readable for `len` bytes.
        unsafe { fbsd_sys::m_copyback(m.as_raw(), 0, len, data.as_ptr().cast::<c_char>()) };
        if m.chain_len() != data.len() {
            return Err(Errno::ENOBUFS);
        }
        Ok(m)
    }
}

impl Msg {
    /// A message copied from its wire form (header + argument), with
    /// `arglen` taken from the length of `bytes`.
    pub fn from_wire(bytes: &[u8]) -> KResult<Msg> {
        let arglen = bytes.len().checked_sub(NG_MESG_HDR).ok_or(Errno::EINVAL)?;
        let arglen = u32::try_from(arglen).map_err(|_| Errno::EINVAL)?;
        let mut m = Msg::new(0, 0, arglen, c"")?;
        let dst = m.wire_mut();
        for (d, s) in dst.iter_mut().zip(bytes.iter()) {
            *d = *s;
        }
        Ok(m)
    }

    /// The whole message (header + `arglen` bytes) as bytes.
    pub fn wire(&self) -> &[u8] {
        let len = NG_MESG_HDR.saturating_add(self.header().arglen as usize);
        // SAFETY: an owned message has a header followed by arglen bytes.
        unsafe { core::slice::from_raw_parts(self.as_raw_msg().cast::<u8>(), len) }
    }

    fn wire_mut(&mut self) -> &mut [u8] {
        let len = NG_MESG_HDR.saturating_add(self.header().arglen as usize);
        // SAFETY: as in `wire`, and `&mut self` makes access unique.
        unsafe { core::slice::from_raw_parts_mut(self.as_raw_msg().cast::<u8>(), len) }
    }
}

impl Msg {
    /// A message copied out of the first `len` bytes of an mbuf chain
    /// (header + argument); its `arglen` is what the copied header says, and
    /// its buffer holds `len - header` argument bytes.
    pub fn from_chain(m: &Mbuf, len: usize) -> KResult<Msg> {
        let arglen = len.checked_sub(NG_MESG_HDR).ok_or(Errno::EINVAL)?;
        let arglen = u32::try_from(arglen).map_err(|_| Errno::EINVAL)?;
        let mut msg = Msg::new(0, 0, arglen, c"")?;
        m.copy_out(msg.wire_mut())?;
        Ok(msg)
    }
}
