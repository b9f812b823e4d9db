//! Per-node flags (docs/ksocket.md §4.1), with FreeBSD's bit values.

bitflags::bitflags! {
    /// State bits of a ksocket node.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct KsFlags: u32 {
        /// A connect is in progress: an asynchronous CONNECT response is owed.
        const CONNECTING = 0x01;
        /// An ACCEPT request is waiting for a connection.
        const ACCEPTING = 0x02;
        /// The zero-length end-of-file packet has been sent.
        const EOFSEEN = 0x04;
        /// The node was created by accepting a connection.
        const CLONED = 0x08;
        /// Cloned node without a hook yet (on its parent's embryo list).
        const EMBRYONIC = 0x10;
    }
}

#[cfg(test)]
mod tests {
    use super::KsFlags;

    #[test]
    fn freebsd_bit_values() {
        assert_eq!(KsFlags::CONNECTING.bits(), 0x01);
        assert_eq!(KsFlags::ACCEPTING.bits(), 0x02);
        assert_eq!(KsFlags::EOFSEEN.bits(), 0x04);
        assert_eq!(KsFlags::CLONED.bits(), 0x08);
        assert_eq!(KsFlags::EMBRYONIC.bits(), 0x10);
        assert_eq!(KsFlags::all().bits(), 0x1f);
    }

    #[test]
    fn clone_lifecycle() {
        let mut f = KsFlags::CLONED | KsFlags::EMBRYONIC;
        assert!(f.contains(KsFlags::CLONED));
        f.remove(KsFlags::EMBRYONIC);
        assert_eq!(f, KsFlags::CLONED);
        assert!(KsFlags::default().is_empty());
    }
}
