//! The protocol table of the modelled inet, inet6 and local domains, and the
//! harness `struct protosw`/`struct domain` objects `so_proto` points at.
//!
//! Lookup follows `pffindproto()` (uipc_domain.c): the first entry of the
//! domain whose `pr_type` matches and whose `pr_protocol` is 0 (wildcard),
//! or equal to the requested protocol, or any if the request is 0. The
//! entries and flags are those of FreeBSD 15's `inetdomain`/`inet6domain`
//! (tcp, udp, udplite, rip; SCTP is not compiled in) and `localdomain`.

use std::alloc::Layout;
use std::ffi::{c_int, c_short, CString};
use std::mem::size_of;
use std::sync::OnceLock;

use fbsd_sys::{domain, protosw};

use super::addr::{AF_INET, AF_INET6, AF_LOCAL};
use super::errno::fb;

/// The kinds of socket the model backs with Linux sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Tcp,
    Udp,
    UdpLite,
    Raw,
    LocalStream,
    LocalDgram,
    LocalSeqpacket,
}

impl Kind {
    /// Byte-stream socket (no record boundaries).
    pub fn is_stream(self) -> bool {
        matches!(self, Kind::Tcp | Kind::LocalStream)
    }
    /// Local (AF_UNIX) socket.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Kind::LocalStream | Kind::LocalDgram | Kind::LocalSeqpacket
        )
    }
    /// Connection-oriented (accepts `listen`).
    pub fn can_listen(self) -> bool {
        matches!(self, Kind::Tcp | Kind::LocalStream | Kind::LocalSeqpacket)
    }
    /// Uses `sosend_dgram` (or the local-dgram sender) rather than `sosend_generic`.
    pub fn dgram_send(self) -> bool {
        matches!(self, Kind::Udp | Kind::UdpLite | Kind::LocalDgram)
    }
    /// Short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Udp => "udp",
            Kind::UdpLite => "udplite",
            Kind::Raw => "raw",
            Kind::LocalStream => "local/stream",
            Kind::LocalDgram => "local/dgram",
            Kind::LocalSeqpacket => "local/seqpacket",
        }
    }
}

const ATOMIC: c_int = fbsd_sys::PR_ATOMIC as c_int;
const ADDR: c_int = fbsd_sys::PR_ADDR as c_int;
const CONNREQUIRED: c_int = fbsd_sys::PR_CONNREQUIRED as c_int;
const WANTRCVD: c_int = fbsd_sys::PR_WANTRCVD as c_int;
const IMPLOPCL: c_int = fbsd_sys::PR_IMPLOPCL as c_int;
const CAPATTACH: c_int = fbsd_sys::PR_CAPATTACH as c_int;
const SOCKBUF: c_int = fbsd_sys::PR_SOCKBUF as c_int;

const STREAM: c_int = fbsd_sys::SOCK_STREAM as c_int;
const DGRAM: c_int = fbsd_sys::SOCK_DGRAM as c_int;
const RAW: c_int = fbsd_sys::SOCK_RAW as c_int;
const SEQPACKET: c_int = fbsd_sys::SOCK_SEQPACKET as c_int;

pub(crate) const IPPROTO_TCP: c_int = fbsd_sys::IPPROTO_TCP as c_int;
pub(crate) const IPPROTO_UDP: c_int = fbsd_sys::IPPROTO_UDP as c_int;
pub(crate) const IPPROTO_UDPLITE: c_int = 136;
/// `IPPROTO_MAX` (rip_attach rejects protocols at or above it).
pub(crate) const IPPROTO_MAX: c_int = 256;

/// One protocol-switch entry: (type, protocol, flags, kind).
#[derive(Clone, Copy)]
struct Entry(c_int, c_int, c_int, Kind);

const INET: &[Entry] = &[
    Entry(
        STREAM,
        IPPROTO_TCP,
        CONNREQUIRED | IMPLOPCL | WANTRCVD | CAPATTACH,
        Kind::Tcp,
    ),
    Entry(DGRAM, IPPROTO_UDP, ATOMIC | ADDR | CAPATTACH, Kind::Udp),
    Entry(
        DGRAM,
        IPPROTO_UDPLITE,
        ATOMIC | ADDR | CAPATTACH,
        Kind::UdpLite,
    ),
    Entry(RAW, 0, ATOMIC | ADDR, Kind::Raw),
];

const LOCAL: &[Entry] = &[
    // FreeBSD 15 moved unix/stream onto its own socket buffers (PR_SOCKBUF).
    Entry(
        STREAM,
        0,
        CONNREQUIRED | WANTRCVD | CAPATTACH | SOCKBUF,
        Kind::LocalStream,
    ),
    Entry(
        DGRAM,
        0,
        ATOMIC | ADDR | CAPATTACH | SOCKBUF,
        Kind::LocalDgram,
    ),
    Entry(
        SEQPACKET,
        0,
        ADDR | ATOMIC | CONNREQUIRED | WANTRCVD | CAPATTACH,
        Kind::LocalSeqpacket,
    ),
];

fn table(family: c_int) -> Option<&'static [Entry]> {
    match family {
        AF_INET | AF_INET6 => Some(INET),
        AF_LOCAL => Some(LOCAL),
        _ => None,
    }
}

/// True if the family is one this module backs with Linux sockets.
pub fn is_modelled_family(family: c_int) -> bool {
    table(family).is_some()
}

/// `pffindproto()` + the error choice of `socreate()`: `EAFNOSUPPORT` for an
/// unknown family, `EPROTOTYPE` when `proto == 0` and no protocol has the
/// type, `EPROTONOSUPPORT` otherwise.
pub fn find(family: c_int, ty: c_int, proto: c_int) -> Result<Kind, c_int> {
    let Some(t) = table(family) else {
        return Err(fb::EAFNOSUPPORT);
    };
    for e in t {
        if e.0 == ty && (e.1 == 0 || proto == 0 || e.1 == proto) {
            return Ok(e.3);
        }
    }
    if proto == 0 && ty != 0 {
        Err(fb::EPROTOTYPE)
    } else {
        Err(fb::EPROTONOSUPPORT)
    }
}

/// `pr_flags` of a kind.
pub fn flags(kind: Kind) -> c_int {
    INET.iter()
        .chain(LOCAL)
        .find(|e| e.3 == kind)
        .map_or(0, |e| e.2)
}

/// `pr_protocol` of a kind (0 for the wildcard raw and local entries).
pub fn protocol(kind: Kind) -> c_int {
    INET.iter()
        .chain(LOCAL)
        .find(|e| e.3 == kind)
        .map_or(0, |e| e.1)
}

struct Tables {
    /// (family, kind, protosw address)
    protos: Vec<(c_int, Kind, usize)>,
}

fn leak_zeroed(size: usize) -> *mut u8 {
    let layout = Layout::from_size_align(size, 16).expect("layout");
    // SAFETY: non-zero size; the block is intentionally never freed (the
    // kernel's protocol tables live for the whole run).
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!p.is_null(), "harness: out of memory");
    p
}

fn build_domain(family: c_int, name: &str, entries: &[Entry], out: &mut Vec<(c_int, Kind, usize)>) {
    let d = leak_zeroed(size_of::<domain>() + entries.len() * size_of::<*mut protosw>())
        .cast::<domain>();
    let cname = CString::new(name).expect("domain name").into_raw();
    // SAFETY: `d` is a fresh zeroed block large enough for the domain and
    // its protosw pointer array.
    unsafe {
        (*d).dom_family = family;
        (*d).dom_name = cname;
        (*d).dom_nprotosw = entries.len() as u32;
    }
    for (i, e) in entries.iter().enumerate() {
        let p = leak_zeroed(size_of::<protosw>()).cast::<protosw>();
        // SAFETY: `p` is a fresh zeroed protosw; `d`'s array has room for
        // `entries.len()` pointers.
        unsafe {
            (*p).pr_type = e.0 as c_short;
            (*p).pr_protocol = e.1 as c_short;
            (*p).pr_flags = e.2 as c_short;
            (*p).pr_domain = d;
            (*p).pr_soreceive = Some(super::io::soreceive);
            (*p).pr_sosend = Some(super::io::sosend);
            *(*d).dom_protosw.as_mut_ptr().add(i) = p;
        }
        out.push((family, e.3, p as usize));
    }
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut protos = Vec::new();
        build_domain(AF_INET, "internet", INET, &mut protos);
        build_domain(AF_INET6, "internet6", INET, &mut protos);
        build_domain(AF_LOCAL, "local", LOCAL, &mut protos);
        Tables { protos }
    })
}

/// The harness `struct protosw` of (family, kind).
pub fn protosw_of(family: c_int, kind: Kind) -> *mut protosw {
    tables()
        .protos
        .iter()
        .find(|(f, k, _)| *f == family && *k == kind)
        .map(|t| t.2 as *mut protosw)
        .expect("protosw for a modelled family")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup() {
        assert_eq!(find(AF_INET, STREAM, 0), Ok(Kind::Tcp));
        assert_eq!(find(AF_INET, STREAM, IPPROTO_TCP), Ok(Kind::Tcp));
        assert_eq!(find(AF_INET, STREAM, IPPROTO_UDP), Err(fb::EPROTONOSUPPORT));
        assert_eq!(find(AF_INET, DGRAM, 0), Ok(Kind::Udp));
        assert_eq!(find(AF_INET, DGRAM, IPPROTO_UDPLITE), Ok(Kind::UdpLite));
        assert_eq!(find(AF_INET, DGRAM, IPPROTO_TCP), Err(fb::EPROTONOSUPPORT));
        assert_eq!(find(AF_INET, RAW, 253), Ok(Kind::Raw));
        assert_eq!(find(AF_INET, SEQPACKET, 0), Err(fb::EPROTOTYPE));
        assert_eq!(find(AF_INET, 99, 0), Err(fb::EPROTOTYPE));
        assert_eq!(find(AF_INET, 0, 0), Err(fb::EPROTONOSUPPORT));
        assert_eq!(find(99, DGRAM, 0), Err(fb::EAFNOSUPPORT));
        assert_eq!(find(AF_LOCAL, DGRAM, 7), Ok(Kind::LocalDgram));
        assert_eq!(find(AF_LOCAL, RAW, 0), Err(fb::EPROTOTYPE));
    }
}
