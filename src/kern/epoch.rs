//! The network epoch (epoch(9)): `NET_EPOCH_ENTER` / `NET_EPOCH_EXIT` as a
//! scope, so a section always closes on the thread that opened it.

use core::ffi::c_void;

use super::ffi::{_epoch_enter_preempt, _epoch_exit_preempt, net_epoch_preempt};

/// `struct epoch_tracker`: 32 bytes in FreeBSD 15 without `EPOCH_TRACE`;
/// twice that leaves room for a kernel built with it.
#[repr(C, align(8))]
struct Tracker([u64; 8]);

/// Runs `f` inside the network epoch (`NET_EPOCH_ENTER` .. `EXIT`). `f`
/// must not sleep.
#[inline(always)]
pub fn in_net<R>(f: impl FnOnce() -> R) -> R {
    let mut et = core::mem::MaybeUninit::<Tracker>::uninit();
    let p = et.as_mut_ptr().cast::<c_void>();
    // SAFETY: the tracker lives in this frame, unmoved, until the exit
    // below on the same thread, as NET_EPOCH_ENTER requires (the kernel
    // initialises it); net_epoch_preempt is set before any module loads.
    unsafe { _epoch_enter_preempt(net_epoch_preempt, p) };
    let r = f();
    // SAFETY: closes the section opened above with the same tracker.
    unsafe { _epoch_exit_preempt(net_epoch_preempt, p) };
    r
}
