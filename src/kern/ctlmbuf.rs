//! Control-data mbufs (`MT_CONTROL`): what `soreceive` returns in
//! `*controlp` and what `sosend` takes as `control`, and a small lock-free
//! cache of them.
//!
//! `sosend` wants its control data in an mbuf of its own, which it consumes.
//! A node that answers each received datagram with control data would
//! allocate one mbuf per answer; instead it can keep the control mbufs
//! `soreceive` hands it (the kernel allocated them for the received
//! datagram anyway, and would otherwise free them) in a [`ControlCache`],
//! and write its answer's control data into one of them: no allocation on
//! the way out as long as answers do not outnumber what came in.

use core::ffi::c_char;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use fbsd_sys::mbuf;

use super::errno::{Errno, KResult};
use super::mbuf::Mbuf;

#[allow(clippy::cast_possible_wrap)]
const M_NOWAIT: i32 = fbsd_sys::M_NOWAIT as i32;
#[allow(clippy::cast_possible_wrap, clippy::cast_possible_truncation)]
const MT_CONTROL: i16 = fbsd_sys::MT_CONTROL as i16;
/// Offset of the data area (`m_dat`) of a plain mbuf.
const DAT_OFF: usize = core::mem::offset_of!(mbuf, __bindgen_anon_3);
/// `MLEN`: the data bytes of a plain mbuf.
pub const MLEN: usize = fbsd_sys::MSIZE as usize - DAT_OFF;

/// The `m_type` (bits 0-7) and `m_flags` (bits 8-31) word of an mbuf.
///
/// # Safety
///
/// `m` is a live mbuf.
unsafe fn type_flags(m: *mut mbuf) -> u32 {
    const _: () = assert!(core::mem::offset_of!(mbuf, _bitfield_1) % 4 == 0);
    // SAFETY: the caller's contract; the bitfield unit is 4 aligned bytes.
    unsafe { (&raw const (*m)._bitfield_1).cast::<u32>().read() }
}

/// One plain control mbuf: `MT_CONTROL`, no packet header, no external
/// storage, alone (no `m_next`).
///
/// # Invariants
///
/// `raw` is such an mbuf, owned by this value; its data area is the
/// `MLEN` bytes of `m_dat`.
pub struct Control {
    raw: NonNull<mbuf>,
}

// SAFETY: an owned mbuf may be handed to another thread.
unsafe impl Send for Control {}

impl Control {
    /// A new control mbuf (`m_get2(0, M_NOWAIT, MT_CONTROL, 0)`);
    /// `ENOBUFS` without memory.
    pub fn new() -> KResult<Control> {
        // SAFETY: m_get2 with size 0 and no flags returns one fresh plain
        // mbuf or NULL.
        let m = unsafe { fbsd_sys::m_get2(0, M_NOWAIT, MT_CONTROL, 0) };
        NonNull::new(m)
            .map(|raw| Control { raw })
            .ok_or(Errno::ENOBUFS)
    }

    /// Takes one mbuf if it is a plain control mbuf; else gives it back.
    ///
    /// # Safety
    ///
    /// `m` is a live mbuf the caller owns, alone (its `m_next` is NULL).
    unsafe fn adopt(m: NonNull<mbuf>) -> Result<Control, NonNull<mbuf>> {
        // SAFETY: the caller's contract.
        let w = unsafe { type_flags(m.as_ptr()) };
        let kind = w & 0xff;
        let flags = w >> 8;
        if kind == fbsd_sys::MT_CONTROL && flags & (fbsd_sys::M_PKTHDR | fbsd_sys::M_EXT) == 0 {
            Ok(Control { raw: m })
        } else {
            Err(m)
        }
    }

    /// Replaces the contents: `fill` writes into the whole data area and
    /// returns how many bytes it wrote (`None`: nothing; the mbuf is then
    /// left empty). Returns that length.
    pub fn write(&mut self, fill: impl FnOnce(&mut [u8]) -> Option<usize>) -> Option<usize> {
        let m = self.raw.as_ptr();
        // SAFETY: a plain mbuf we own (invariant): its data area is the
        // MLEN bytes at m_dat, which nothing else references.
        let area = unsafe {
            let start = (&raw mut (*m).__bindgen_anon_3).cast::<u8>();
            (*m).m_data = start.cast::<c_char>();
            (*m).m_len = 0;
            core::slice::from_raw_parts_mut(start, MLEN)
        };
        let n = fill(area).filter(|&n| n <= MLEN)?;
        // SAFETY: as above; `n` ≤ MLEN fits an int.
        #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
        unsafe {
            (*m).m_len = n as i32;
        }
        Some(n)
    }

    /// Gives up ownership to a kernel function that consumes the mbuf.
    pub(in crate::kern) fn into_raw(self) -> *mut mbuf {
        let p = self.raw.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        // SAFETY: the mbuf is owned (and alone), freed exactly once here.
        unsafe { fbsd_sys::m_freem(self.raw.as_ptr()) }
    }
}

/// Up to `N` control mbufs kept for reuse. Any context may put and take at
/// once: each slot holds its mbuf alone and is emptied by an atomic swap.
///
/// # Invariants
///
/// Each non-NULL slot holds a plain control mbuf owned by the cache.
pub struct ControlCache<const N: usize> {
    slots: [AtomicPtr<mbuf>; N],
}

// SAFETY: the slots are atomics; an mbuf in a slot belongs to the cache and
// leaves it through a swap, to exactly one taker.
unsafe impl<const N: usize> Sync for ControlCache<N> {}
// SAFETY: as above.
unsafe impl<const N: usize> Send for ControlCache<N> {}

impl<const N: usize> Default for ControlCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ControlCache<N> {
    /// An empty cache.
    pub const fn new() -> Self {
        ControlCache {
            slots: [const { AtomicPtr::new(core::ptr::null_mut()) }; N],
        }
    }

    /// Keeps `c` if a slot is free; frees it otherwise.
    pub fn put(&self, c: Control) {
        let p = c.raw.as_ptr();
        for s in &self.slots {
            if s.compare_exchange(
                core::ptr::null_mut(),
                p,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
            {
                core::mem::forget(c);
                return;
            }
        }
        drop(c);
    }

    /// A kept control mbuf, if any.
    pub fn take(&self) -> Option<Control> {
        self.slots.iter().find_map(|s| {
            let p = s.swap(core::ptr::null_mut(), Ordering::AcqRel);
            // The slot's mbuf is now ours alone (invariant).
            NonNull::new(p).map(|raw| Control { raw })
        })
    }

    /// Takes a whole control chain (as `soreceive` returned it): each plain
    /// control mbuf is kept while there is room, everything else freed.
    pub fn recycle(&self, chain: Mbuf) {
        let mut m = NonNull::new(chain.into_raw());
        while let Some(cur) = m {
            // SAFETY: `cur` heads the rest of a chain we own; it is cut off
            // from it before being kept or freed alone.
            unsafe {
                m = NonNull::new((*cur.as_ptr()).__bindgen_anon_1.m_next);
                (*cur.as_ptr()).__bindgen_anon_1.m_next = core::ptr::null_mut();
                match Control::adopt(cur) {
                    Ok(c) => self.put(c),
                    Err(other) => fbsd_sys::m_freem(other.as_ptr()),
                }
            }
        }
    }
}

impl<const N: usize> Drop for ControlCache<N> {
    fn drop(&mut self) {
        while let Some(c) = self.take() {
            drop(c);
        }
    }
}

/// The data of each mbuf of `chain` in turn (`m_data`, `m_len` bytes): a
/// control chain holds one record per mbuf.
pub fn segments(chain: &Mbuf) -> Segments<'_> {
    Segments {
        next: NonNull::new(chain.as_raw()),
        _chain: core::marker::PhantomData,
    }
}

/// Iterator of [`segments`].
pub struct Segments<'a> {
    next: Option<NonNull<mbuf>>,
    _chain: core::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let m = self.next?.as_ptr();
        // SAFETY: `m` is an mbuf of a chain borrowed for 'a; its `m_len`
        // bytes at `m_data` are its data.
        unsafe {
            self.next = NonNull::new((*m).__bindgen_anon_1.m_next);
            let len = usize::try_from((*m).m_len).unwrap_or(0);
            if len == 0 || (*m).m_data.is_null() {
                return Some(&[]);
            }
            Some(core::slice::from_raw_parts((*m).m_data.cast::<u8>(), len))
        }
    }
}
