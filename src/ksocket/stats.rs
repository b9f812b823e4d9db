//! Node statistics (a deliberate improvement: FreeBSD's ksocket keeps none).
//!
//! Counters are `AtomicU64`s updated with relaxed atomic adds, because the
//! data path runs as a netgraph *reader*: several `rcvdata` calls of one node
//! may run at once, alongside socket upcalls. They are read (and reset) by
//! the `getstats` / `clrstats` / `getclrstats` messages.
//!
//! Binary layout of the reply (`struct ng_ksocket_stats`, all fields
//! `uint64_t` in host byte order, in the order of [`Counter`]); its ASCII
//! form is a struct whose field names are [`NAMES`].

use core::ffi::CStr;
use core::sync::atomic::{AtomicU64, Ordering};

/// One counter; the discriminant is its index in the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Packets forwarded from the socket to the hook.
    RxPackets,
    /// Bytes forwarded from the socket to the hook.
    RxBytes,
    /// Packets handed to the socket (`sosend` succeeded).
    TxPackets,
    /// Bytes handed to the socket.
    TxBytes,
    /// `sosend` failures (EDESTADDRREQ, EMSGSIZE, ENOBUFS, …).
    TxErrors,
    /// `soreceive` failures other than "nothing to read".
    RxErrors,
    /// Received datagrams dropped because longer than 65535 bytes.
    RxDropTrunc,
    /// Received data dropped because no packet-header mbuf was available.
    RxDropNobufs,
    /// Received packets the hook refused (peer gone, no netgraph item…).
    RxDropHook,
    /// Packets dropped because the socket is listening.
    TxDropListen,
    /// Packets dropped because their address tag is malformed.
    TxDropBadaddr,
    /// Packets dropped because the node has no socket.
    TxDropNosock,
    /// Source-address tags that could not be allocated (packet sent untagged).
    TagFailures,
    /// End-of-file (zero-length) packets sent.
    Eofs,
    /// Connections accepted (clone nodes created).
    Accepts,
}

/// Number of counters.
pub const NUM: usize = 15;

/// Size of the binary reply.
pub const REPLY_LEN: usize = NUM * 8;

/// Field names of the ASCII form, in binary order.
pub static NAMES: [&CStr; NUM] = [
    c"rx_packets",
    c"rx_bytes",
    c"tx_packets",
    c"tx_bytes",
    c"tx_errors",
    c"rx_errors",
    c"rx_drop_trunc",
    c"rx_drop_nobufs",
    c"rx_drop_hook",
    c"tx_drop_listen",
    c"tx_drop_badaddr",
    c"tx_drop_nosock",
    c"tag_failures",
    c"eofs",
    c"accepts",
];

/// The counters of one node.
pub struct Stats {
    c: [AtomicU64; NUM],
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// All zero.
    pub const fn new() -> Self {
        Stats {
            c: [const { AtomicU64::new(0) }; NUM],
        }
    }

    /// Adds `n` to a counter (wrapping, like any hardware counter).
    pub fn add(&self, which: Counter, n: u64) {
        if let Some(c) = self.c.get(which as usize) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds one to a counter.
    pub fn inc(&self, which: Counter) {
        self.add(which, 1);
    }

    /// Current value of a counter.
    #[cfg(test)]
    pub fn get(&self, which: Counter) -> u64 {
        self.c
            .get(which as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// All counters.
    pub fn snapshot(&self) -> [u64; NUM] {
        let mut v = [0u64; NUM];
        for (d, c) in v.iter_mut().zip(self.c.iter()) {
            *d = c.load(Ordering::Relaxed);
        }
        v
    }

    /// All counters, each reset to zero in the same atomic step as it is
    /// read (no increment is lost between reading and clearing).
    pub fn take(&self) -> [u64; NUM] {
        let mut v = [0u64; NUM];
        for (d, c) in v.iter_mut().zip(self.c.iter()) {
            *d = c.swap(0, Ordering::Relaxed);
        }
        v
    }

    /// Resets every counter.
    pub fn clear(&self) {
        for c in &self.c {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Writes the binary reply (host-order `u64`s); `out` must hold
/// [`REPLY_LEN`] bytes (any excess is left alone).
pub fn encode(v: &[u64; NUM], out: &mut [u8]) {
    for (chunk, x) in out.chunks_exact_mut(8).zip(v.iter()) {
        chunk.copy_from_slice(&x.to_ne_bytes());
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(Counter::Accepts as usize, NUM - 1);
        assert_eq!(REPLY_LEN, 120);
        for n in NAMES {
            let b = n.to_bytes();
            assert!(!b.is_empty() && b.len() < 32);
            // Valid netgraph struct field names: no token delimiters.
            assert!(b.iter().all(|c| c.is_ascii_lowercase() || *c == b'_'));
        }
        let mut names: std::vec::Vec<_> = NAMES.iter().collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), NUM);
    }

    extern crate std;

    #[test]
    fn count_snapshot_take_clear() {
        let s = Stats::new();
        s.inc(Counter::RxPackets);
        s.add(Counter::RxBytes, 1500);
        s.add(Counter::RxBytes, 20);
        s.inc(Counter::Accepts);
        assert_eq!(s.get(Counter::RxBytes), 1520);
        let v = s.snapshot();
        assert_eq!(v[0], 1);
        assert_eq!(v[1], 1520);
        assert_eq!(v[NUM - 1], 1);
        assert_eq!(s.take(), v);
        assert_eq!(s.snapshot(), [0; NUM]);
        s.inc(Counter::Eofs);
        s.clear();
        assert_eq!(s.snapshot(), [0; NUM]);
    }

    #[test]
    fn counters_wrap() {
        let s = Stats::new();
        s.add(Counter::TxBytes, u64::MAX);
        s.add(Counter::TxBytes, 2);
        assert_eq!(s.get(Counter::TxBytes), 1);
    }

    #[test]
    fn concurrent_adds_are_not_lost() {
        let s = std::sync::Arc::new(Stats::new());
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        s.inc(Counter::TxPackets);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.get(Counter::TxPackets), 40_000);
    }

    #[test]
    fn encoding() {
        let mut v = [0u64; NUM];
        v[0] = 0x0102_0304_0506_0708;
        v[NUM - 1] = 7;
        let mut out = [0xffu8; REPLY_LEN];
        encode(&v, &mut out);
        assert_eq!(&out[..8], &v[0].to_ne_bytes());
        assert_eq!(&out[REPLY_LEN - 8..], &7u64.to_ne_bytes());
        assert!(out[8..REPLY_LEN - 8].iter().all(|&b| b == 0));
    }
}
