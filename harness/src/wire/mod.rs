//! The bridge's wire protocol between `libngbridge.so` (or any client) and
//! `ngharness serve`; [`client`] is a Rust client of it (docs/bridge.md, "Wire protocol"; the C side is
//! `bridge/ngbridge_wire.h`, which must agree with this file).
//!
//! Transport: `AF_UNIX`/`SOCK_SEQPACKET` connections to the `--listen` path.
//! One connection is one bridged socket (its first request is
//! [`op::SOCKET`]) or a short control session (module, sysctl and harness
//! control requests). Messages are little-endian; a message is a 40-byte
//! header followed by up to three blobs, sent as one packet of at most
//! [`CHUNK`] bytes followed by as many continuation packets (raw bytes) as
//! the rest needs.
//!
//! ```text
//! request  0 magic u32 | 4 op u16 | 6 0 u16 | 8 uid u32 | 12 a i32 | 16 b i32 | 20 c i32
//!          24 len1 u32 | 28 len2 u32 | 32 len3 u32 | 36 0 u32 | blob1 blob2 blob3
//! reply    0 magic u32 | 4 kind u16 | 6 flags u16 | 8 error i32 | 12 x i32 | 16 ret i64
//!          24 y i32 | 28 len1 u32 | 32 len2 u32 | 36 0 u32 | blob1 blob2
//! ```
//! Errors are FreeBSD errno values. A reply of kind [`KIND_READABLE`] (no
//! blobs) is the readiness token: the server keeps exactly one queued on a
//! socket connection while the harness socket is readable and no request is
//! in progress, so the client's descriptor polls readable exactly then. A
//! reply with [`FLAG_TOKEN_FOLLOWS`] is followed by a token: the client
//! waits for it before returning, so the socket polls readable as soon as
//! the call that made it readable has returned.

/// First word of every message ("NGB1").
pub const MAGIC: u32 = 0x3142_474e;
/// Header size of requests and replies.
pub const HDR: usize = 40;
pub mod client;

/// Largest packet.
pub const CHUNK: usize = 65536;
/// Largest request (header and blobs) the server accepts.
pub const MAX_REQUEST: usize = 8 << 20;
/// Largest receive or option buffer a request may ask for.
pub const MAX_BUFFER: usize = 4 << 20;
/// Reply kind: the answer to the request in progress.
pub const KIND_REPLY: u16 = 1;
/// Reply kind: the readiness token.
pub const KIND_READABLE: u16 = 2;
/// Reply flag: a readiness token follows this reply.
pub const FLAG_TOKEN_FOLLOWS: u16 = 1;

/// Sets reply flags in an encoded reply.
pub fn set_flags(msg: &mut [u8], flags: u16) {
    if msg.len() >= HDR {
        msg[6..8].copy_from_slice(&flags.to_le_bytes());
    }
}

/// Request operations.
pub mod op {
    /// `socket(a = domain, b = type, c = protocol)`: binds the connection to a new socket.
    pub const SOCKET: u16 = 1;
    /// `bind(blob1 = address)`.
    pub const BIND: u16 = 2;
    /// `connect(blob1 = address)`.
    pub const CONNECT: u16 = 3;
    /// `sendmsg(a = flags, blob1 = address or empty, blob2 = data, blob3 = control)`;
    /// reply: ret = bytes sent, y = 1 if the error is EPIPE and SIGPIPE is due.
    pub const SEND: u16 = 4;
    /// `recvmsg(a = flags, b = buffer length)`, never blocking; reply: ret =
    /// bytes, x = msg_flags, blob1 = source address, blob2 = data; on
    /// EWOULDBLOCK y = the socket's receive timeout in ms (0: none).
    pub const RECV: u16 = 5;
    /// `getsockname()`; reply blob1 = address.
    pub const GETSOCKNAME: u16 = 6;
    /// `getpeername()`; reply blob1 = address.
    pub const GETPEERNAME: u16 = 7;
    /// `setsockopt(a = level, b = name, blob1 = value)`.
    pub const SETSOCKOPT: u16 = 8;
    /// `getsockopt(a = level, b = name, c = buffer length)`; reply blob1 = value.
    pub const GETSOCKOPT: u16 = 9;
    /// `shutdown(a = how)`.
    pub const SHUTDOWN: u16 = 10;
    /// `ioctl(FIONREAD)`; reply ret = bytes.
    pub const FIONREAD: u16 = 11;
    /// `kldload(blob1 = file)`; reply ret = file id.
    pub const KLDLOAD: u16 = 32;
    /// `kldunloadf(a = file id, b = flags)`.
    pub const KLDUNLOAD: u16 = 33;
    /// `kldfind(blob1 = file)`; reply ret = file id.
    pub const KLDFIND: u16 = 34;
    /// `kldnext(a = file id)`; reply ret = next file id or 0.
    pub const KLDNEXT: u16 = 35;
    /// `kldstat(a = file id)`; reply ret = size, x = refs, y = id,
    /// blob1 = name, blob2 = path name (address: 0).
    pub const KLDSTAT: u16 = 36;
    /// `modfind(blob1 = module)`; reply ret = module id.
    pub const MODFIND: u16 = 37;
    /// `sysctlbyname(blob1 = name, blob2 = new value or empty)`; reply blob1
    /// = old value (as wide as the variable), x = 1 if the OID is writable.
    pub const SYSCTL: u16 = 38;
    /// `kldfirstmod(a = file id)`; reply ret = module id or 0.
    pub const KLDFIRSTMOD: u16 = 39;
    /// `modnext(a = module id)`; reply ret = next module id or 0.
    pub const MODNEXT: u16 = 40;
    /// `modstat(a = module id)`; reply ret = id, x = refs, y = file id, blob1 = name.
    pub const MODSTAT: u16 = 41;
    /// Harness control (peer uid 0 only): run the kernel until idle; ret =
    /// work units run.
    pub const SETTLE: u16 = 64;
    /// Harness control: let `a` milliseconds of model time pass.
    pub const ADVANCE: u16 = 65;
    /// Harness control: violations recorded since the last call, one per
    /// line in blob1.
    pub const VIOLATIONS: u16 = 66;
    /// Harness control: ret = open netgraph sockets, x = connections.
    pub const STATUS: u16 = 67;
    /// Harness control: close every client (as their processes exiting),
    /// run the end checks, reply with the problems (blob1, one per line;
    /// ret = their number) and exit.
    pub const END: u16 = 68;
}

/// A decoded request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub op: u16,
    pub uid: u32,
    pub a: i32,
    pub b: i32,
    pub c: i32,
    pub b1: Vec<u8>,
    pub b2: Vec<u8>,
    pub b3: Vec<u8>,
}

/// A reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub error: i32,
    pub x: i32,
    pub y: i32,
    pub ret: i64,
    pub b1: Vec<u8>,
    pub b2: Vec<u8>,
}

impl Reply {
    /// A successful reply returning `ret`.
    pub fn ok(ret: i64) -> Reply {
        Reply {
            ret,
            ..Reply::default()
        }
    }

    /// A failed reply (FreeBSD errno).
    pub fn err(e: i32) -> Reply {
        Reply {
            error: e,
            ret: -1,
            ..Reply::default()
        }
    }
}

fn put_u16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put_i32(v: &mut Vec<u8>, x: i32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[o..o + 2]);
    u16::from_le_bytes(a)
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[o..o + 4]);
    u32::from_le_bytes(a)
}
fn i32_at(b: &[u8], o: usize) -> i32 {
    u32_at(b, o) as i32
}
fn i64_at(b: &[u8], o: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    i64::from_le_bytes(a)
}

/// Splits a message into packets.
pub fn packets(msg: Vec<u8>) -> Vec<Vec<u8>> {
    if msg.len() <= CHUNK {
        return vec![msg];
    }
    msg.chunks(CHUNK).map(<[u8]>::to_vec).collect()
}

/// Encodes a request as one message (split with [`packets`]).
pub fn encode_request(r: &Request) -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + r.b1.len() + r.b2.len() + r.b3.len());
    put_u32(&mut v, MAGIC);
    put_u16(&mut v, r.op);
    put_u16(&mut v, 0);
    put_u32(&mut v, r.uid);
    put_i32(&mut v, r.a);
    put_i32(&mut v, r.b);
    put_i32(&mut v, r.c);
    put_u32(&mut v, r.b1.len() as u32);
    put_u32(&mut v, r.b2.len() as u32);
    put_u32(&mut v, r.b3.len() as u32);
    put_u32(&mut v, 0);
    v.extend_from_slice(&r.b1);
    v.extend_from_slice(&r.b2);
    v.extend_from_slice(&r.b3);
    v
}

/// Encodes a reply of `kind` as one message.
pub fn encode_reply(kind: u16, r: &Reply) -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + r.b1.len() + r.b2.len());
    put_u32(&mut v, MAGIC);
    put_u16(&mut v, kind);
    put_u16(&mut v, 0);
    put_i32(&mut v, r.error);
    put_i32(&mut v, r.x);
    v.extend_from_slice(&r.ret.to_le_bytes());
    put_i32(&mut v, r.y);
    put_u32(&mut v, r.b1.len() as u32);
    put_u32(&mut v, r.b2.len() as u32);
    put_u32(&mut v, 0);
    v.extend_from_slice(&r.b1);
    v.extend_from_slice(&r.b2);
    v
}

/// Why a packet could not start or continue a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than a header.
    Short,
    /// Wrong magic number.
    Magic,
    /// Blob lengths over [`MAX_REQUEST`].
    TooLarge,
    /// Packet sizes inconsistent with the header's lengths.
    Framing,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Malformed::Short => "packet shorter than a request header",
            Malformed::Magic => "bad magic number",
            Malformed::TooLarge => "request too large",
            Malformed::Framing => "packet sizes do not match the header",
        })
    }
}

/// Message length a request header announces (three blobs).
fn announced(b: &[u8]) -> Option<usize> {
    let mut total = HDR;
    for i in 0..3 {
        total = total.checked_add(u32_at(b, 24 + 4 * i) as usize)?;
    }
    Some(total)
}

/// Reassembles requests from packets (one per connection).
#[derive(Debug, Default)]
pub struct Assembler {
    partial: Option<(usize, Vec<u8>)>,
}

impl Assembler {
    /// Feeds one packet: a complete request, `Ok(None)` if more packets are
    /// needed, or why the packet is refused (the partial request, if any,
    /// is dropped; the next packet starts afresh).
    pub fn feed(&mut self, pkt: &[u8]) -> Result<Option<Request>, Malformed> {
        if let Some((total, mut buf)) = self.partial.take() {
            if pkt.is_empty() || pkt.len() > CHUNK || buf.len() + pkt.len() > total {
                return Err(Malformed::Framing);
            }
            buf.extend_from_slice(pkt);
            if buf.len() == total {
                return Ok(Some(decode_request(&buf)));
            }
            if pkt.len() != CHUNK {
                return Err(Malformed::Framing);
            }
            self.partial = Some((total, buf));
            return Ok(None);
        }
        if pkt.len() < HDR {
            return Err(Malformed::Short);
        }
        if u32_at(pkt, 0) != MAGIC {
            return Err(Malformed::Magic);
        }
        let total = announced(pkt).ok_or(Malformed::TooLarge)?;
        if total > MAX_REQUEST {
            return Err(Malformed::TooLarge);
        }
        if pkt.len() == total {
            return Ok(Some(decode_request(pkt)));
        }
        if pkt.len() != CHUNK || pkt.len() > total {
            return Err(Malformed::Framing);
        }
        let mut buf = Vec::with_capacity(total);
        buf.extend_from_slice(pkt);
        self.partial = Some((total, buf));
        Ok(None)
    }

    /// True while a request is partly received.
    pub fn in_progress(&self) -> bool {
        self.partial.is_some()
    }
}

/// Decodes a complete request whose header and lengths were checked.
fn decode_request(b: &[u8]) -> Request {
    let l1 = u32_at(b, 24) as usize;
    let l2 = u32_at(b, 28) as usize;
    let l3 = u32_at(b, 32) as usize;
    let p1 = HDR;
    let p2 = p1 + l1;
    let p3 = p2 + l2;
    Request {
        op: u16_at(b, 4),
        uid: u32_at(b, 8),
        a: i32_at(b, 12),
        b: i32_at(b, 16),
        c: i32_at(b, 20),
        b1: b[p1..p2].to_vec(),
        b2: b[p2..p3].to_vec(),
        b3: b[p3..p3 + l3].to_vec(),
    }
}

/// A decoded reply message (client side): its kind and contents.
pub fn decode_reply(b: &[u8]) -> Result<(u16, Reply), Malformed> {
    if b.len() < HDR {
        return Err(Malformed::Short);
    }
    if u32_at(b, 0) != MAGIC {
        return Err(Malformed::Magic);
    }
    let total = reply_length(b).ok_or(Malformed::TooLarge)?;
    if b.len() != total {
        return Err(Malformed::Framing);
    }
    let l1 = u32_at(b, 28) as usize;
    Ok((
        u16_at(b, 4),
        Reply {
            error: i32_at(b, 8),
            x: i32_at(b, 12),
            ret: i64_at(b, 16),
            y: i32_at(b, 24),
            b1: b[HDR..HDR + l1].to_vec(),
            b2: b[HDR + l1..].to_vec(),
        },
    ))
}

/// Length of the whole reply message whose first packet is `first`
/// (client side, to collect continuation packets).
pub fn reply_length(first: &[u8]) -> Option<usize> {
    if first.len() < HDR {
        return None;
    }
    // Reply lengths sit at 28 and 32.
    HDR.checked_add(u32_at(first, 28) as usize)?
        .checked_add(u32_at(first, 32) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_in_one_and_many_packets() {
        for n in [0usize, 10, CHUNK - HDR, CHUNK - HDR + 1, 3 * CHUNK + 7] {
            let r = Request {
                op: op::SEND,
                uid: 1001,
                a: -1,
                b: 7,
                c: 0x7fff_ffff,
                b1: b"\x06\x20abc\0".to_vec(),
                b2: (0..n).map(|i| i as u8).collect(),
                b3: vec![1, 2, 3],
            };
            let mut asm = Assembler::default();
            let pk = packets(encode_request(&r));
            let mut got = None;
            for (i, p) in pk.iter().enumerate() {
                let x = asm.feed(p).unwrap();
                if i + 1 < pk.len() {
                    assert!(x.is_none());
                } else {
                    got = x;
                }
            }
            assert_eq!(got.unwrap(), r);
            assert!(!asm.in_progress());
        }
    }

    #[test]
    fn malformed_packets_are_refused_and_the_next_starts_afresh() {
        let mut asm = Assembler::default();
        assert_eq!(asm.feed(b"junk"), Err(Malformed::Short));
        assert_eq!(asm.feed(&[0u8; HDR]), Err(Malformed::Magic));
        let mut big = encode_request(&Request::default());
        big[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        big[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(asm.feed(&big), Err(Malformed::TooLarge));
        // Announces 100 bytes of blob, carries 3.
        let mut short = encode_request(&Request {
            b1: vec![1, 2, 3],
            ..Request::default()
        });
        short[24..28].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(asm.feed(&short), Err(Malformed::Framing));
        // Trailing bytes after the announced blobs.
        let mut long = encode_request(&Request::default());
        long.push(0);
        assert_eq!(asm.feed(&long), Err(Malformed::Framing));
        let ok = encode_request(&Request {
            op: op::STATUS,
            ..Request::default()
        });
        assert_eq!(asm.feed(&ok).unwrap().unwrap().op, op::STATUS);
    }

    #[test]
    fn reply_round_trip() {
        let r = Reply {
            error: 35,
            x: 0x10,
            y: 5,
            ret: -1,
            b1: vec![4, 32, 0, 0],
            b2: vec![9; 100],
        };
        let m = encode_reply(KIND_REPLY, &r);
        assert_eq!(reply_length(&m), Some(m.len()));
        assert_eq!(decode_reply(&m).unwrap(), (KIND_REPLY, r));
        assert!(decode_reply(&m[..m.len() - 1]).is_err());
    }
}
