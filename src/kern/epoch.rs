//! The network epoch (epoch(9)): `NET_EPOCH_ENTER` / `NET_EPOCH_EXIT` as a
//! scope, so a section always closes on the thread that opened it.

use super::ffi::{ngsock_net_epoch_enter, ngsock_net_epoch_exit};

/// `struct epoch_tracker`: 32 bytes in FreeBSD 15 without `EPOCH_TRACE`;
/// twice that leaves room for a kernel built with it.
#[repr(C, align(8))]
struct Tracker([u64; 8]);

/// Runs `f` inside the network epoch. `f` must not sleep.
pub fn in_net<R>(f: impl FnOnce() -> R) -> R {
    let mut et = Tracker([0; 8]);
    let p: *mut Tracker = &mut et;
    // SAFETY: the tracker lives in this frame, unmoved, until the exit
    // below on the same thread, as NET_EPOCH_ENTER requires.
    unsafe { ngsock_net_epoch_enter(p.cast()) };
    let r = f();
    // SAFETY: closes the section opened above with the same tracker.
    unsafe { ngsock_net_epoch_exit(p.cast()) };
    r
}
