//! Node statistics (a deliberate improvement: FreeBSD's ksocket keeps none).
//!
//! Two sets of counters, by the netgraph context that updates them:
//! * [`TxStats`]: the send path (`rcvdata`) runs as a netgraph *reader*:
//!   several `rcvdata` calls of one node may run at once, so its counters
//!   are `AtomicU64`s updated with relaxed atomic adds (they live in the
//!   node's shared private data);
//! * [`RxStats`]: everything else (the receive loop, accepts, end of file)
//!   runs as the node's *writer* (a function item), which excludes every
//!   other method of the node: plain `u64`s in the writer's state.
//!
//! Both are read (and reset) by the `getstats` / `clrstats` /
//! `getclrstats` messages, which are writers too: no reader is running
//! then, so the two sets are read together consistently.
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

/// The send-path counters of one node (`Tx*`): updated by concurrent
/// readers, hence atomic.
pub struct TxStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    drop_listen: AtomicU64,
    drop_badaddr: AtomicU64,
    drop_nosock: AtomicU64,
}

/// A send-path counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tx {
    /// [`Counter::TxPackets`].
    Packets,
    /// [`Counter::TxBytes`].
    Bytes,
    /// [`Counter::TxErrors`].
    Errors,
    /// [`Counter::TxDropListen`].
    DropListen,
    /// [`Counter::TxDropBadaddr`].
    DropBadaddr,
    /// [`Counter::TxDropNosock`].
    DropNosock,
}

impl Default for TxStats {
    fn default() -> Self {
        Self::new()
    }
}

impl TxStats {
    /// All zero.
    pub const fn new() -> Self {
        TxStats {
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            drop_listen: AtomicU64::new(0),
            drop_badaddr: AtomicU64::new(0),
            drop_nosock: AtomicU64::new(0),
        }
    }

    fn cell(&self, which: Tx) -> &AtomicU64 {
        match which {
            Tx::Packets => &self.packets,
            Tx::Bytes => &self.bytes,
            Tx::Errors => &self.errors,
            Tx::DropListen => &self.drop_listen,
            Tx::DropBadaddr => &self.drop_badaddr,
            Tx::DropNosock => &self.drop_nosock,
        }
    }

    /// Adds `n` to a counter (wrapping, like any hardware counter).
    #[inline]
    pub fn add(&self, which: Tx, n: u64) {
        self.cell(which).fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one to a counter.
    #[inline]
    pub fn inc(&self, which: Tx) {
        self.add(which, 1);
    }

    /// Reads (and with `clear`, resets in the same atomic step) every
    /// counter into `v`.
    fn collect(&self, v: &mut [u64; NUM], clear: bool) {
        for (i, t) in [
            (Counter::TxPackets, Tx::Packets),
            (Counter::TxBytes, Tx::Bytes),
            (Counter::TxErrors, Tx::Errors),
            (Counter::TxDropListen, Tx::DropListen),
            (Counter::TxDropBadaddr, Tx::DropBadaddr),
            (Counter::TxDropNosock, Tx::DropNosock),
        ] {
            let c = self.cell(t);
            let x = if clear {
                c.swap(0, Ordering::Relaxed)
            } else {
                c.load(Ordering::Relaxed)
            };
            if let Some(d) = v.get_mut(i as usize) {
                *d = x;
            }
        }
    }
}

/// The other counters of one node: updated only by the node's writer
/// (receive loop, accepts, end of file), which excludes every other method
/// of the node, hence plain integers. The `Tx*` slots stay zero.
#[derive(Default)]
pub struct RxStats {
    c: [u64; NUM],
}

impl RxStats {
    /// Adds `n` to a counter (wrapping).
    #[inline]
    pub fn add(&mut self, which: Counter, n: u64) {
        if let Some(c) = self.c.get_mut(which as usize) {
            *c = c.wrapping_add(n);
        }
    }

    /// Adds one to a counter.
    #[inline]
    pub fn inc(&mut self, which: Counter) {
        self.add(which, 1);
    }
}

/// Every counter of a node, in reply order; with `clear`, each is reset as
/// it is read. Called by the node's writer (no reader runs).
pub fn collect(tx: &TxStats, rx: &mut RxStats, clear: bool) -> [u64; NUM] {
    let mut v = rx.c;
    if clear {
        rx.c = [0; NUM];
    }
    tx.collect(&mut v, clear);
    v
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
    fn collect_and_clear() {
        let tx = TxStats::new();
        let mut rx = RxStats::default();
        rx.inc(Counter::RxPackets);
        rx.add(Counter::RxBytes, 1500);
        rx.add(Counter::RxBytes, 20);
        rx.inc(Counter::Accepts);
        tx.inc(Tx::Packets);
        tx.add(Tx::Bytes, 7);
        tx.inc(Tx::DropNosock);
        let v = collect(&tx, &mut rx, false);
        assert_eq!(v[Counter::RxPackets as usize], 1);
        assert_eq!(v[Counter::RxBytes as usize], 1520);
        assert_eq!(v[Counter::Accepts as usize], 1);
        assert_eq!(v[Counter::TxPackets as usize], 1);
        assert_eq!(v[Counter::TxBytes as usize], 7);
        assert_eq!(v[Counter::TxDropNosock as usize], 1);
        assert_eq!(collect(&tx, &mut rx, true), v);
        assert_eq!(collect(&tx, &mut rx, false), [0; NUM]);
    }

    #[test]
    fn counters_wrap() {
        let tx = TxStats::new();
        let mut rx = RxStats::default();
        tx.add(Tx::Bytes, u64::MAX);
        tx.add(Tx::Bytes, 2);
        rx.add(Counter::RxBytes, u64::MAX);
        rx.add(Counter::RxBytes, 3);
        let v = collect(&tx, &mut rx, false);
        assert_eq!(v[Counter::TxBytes as usize], 1);
        assert_eq!(v[Counter::RxBytes as usize], 2);
    }

    #[test]
    fn concurrent_adds_are_not_lost() {
        let s = std::sync::Arc::new(TxStats::new());
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        s.inc(Tx::Packets);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let v = collect(&s, &mut RxStats::default(), false);
        assert_eq!(v[Counter::TxPackets as usize], 40_000);
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
