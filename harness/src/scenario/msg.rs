//! The userland view of netgraph messages: `struct ng_mesg` and the generic
//! message structures, encoded and decoded byte by byte as libnetgraph and
//! ngctl see them (layouts from netgraph/ng_message.h, checked against
//! `fbsd_sys` in the tests).

/// `sizeof(struct ng_mesg)` (the header).
pub const HDRLEN: usize = 56;
/// NG_CMDSTRSIZ.
pub const CMDSTRSIZ: usize = 32;
/// NG_NODESIZ = NG_HOOKSIZ = NG_TYPESIZ.
pub const NODESIZ: usize = 32;
/// NG_PATHSIZ.
pub const PATHSIZ: usize = 512;
/// NG_TEXTRESPONSE.
pub const TEXTRESPONSE: usize = 1024;
/// `sizeof(struct nodeinfo)`.
pub const NODEINFO_LEN: usize = 72;
/// `sizeof(struct linkinfo)`.
pub const LINKINFO_LEN: usize = 136;
/// `sizeof(struct typeinfo)`.
pub const TYPEINFO_LEN: usize = 36;

/// NG_VERSION.
pub const NG_VERSION: u8 = fbsd_sys::NG_VERSION as u8;
/// NGF_RESP.
pub const NGF_RESP: u32 = fbsd_sys::NGF_RESP;
/// NGM_HASREPLY.
pub const NGM_HASREPLY: u32 = fbsd_sys::NGM_HASREPLY;
/// NGM_GENERIC_COOKIE.
pub const NGM_GENERIC_COOKIE: u32 = fbsd_sys::NGM_GENERIC_COOKIE;

/// The generic command numbers (with their READONLY/HASREPLY bits).
#[allow(missing_docs)]
pub mod cmd {
    pub const SHUTDOWN: u32 = fbsd_sys::NGM_SHUTDOWN;
    pub const MKPEER: u32 = fbsd_sys::NGM_MKPEER;
    pub const CONNECT: u32 = fbsd_sys::NGM_CONNECT;
    pub const NAME: u32 = fbsd_sys::NGM_NAME;
    pub const RMHOOK: u32 = fbsd_sys::NGM_RMHOOK;
    pub const NODEINFO: u32 = fbsd_sys::NGM_NODEINFO;
    pub const LISTHOOKS: u32 = fbsd_sys::NGM_LISTHOOKS;
    pub const LISTNAMES: u32 = fbsd_sys::NGM_LISTNAMES;
    pub const LISTNODES: u32 = fbsd_sys::NGM_LISTNODES;
    pub const LISTTYPES: u32 = fbsd_sys::NGM_LISTTYPES;
    pub const TEXT_STATUS: u32 = fbsd_sys::NGM_TEXT_STATUS;
    pub const BINARY2ASCII: u32 = fbsd_sys::NGM_BINARY2ASCII;
    pub const ASCII2BINARY: u32 = fbsd_sys::NGM_ASCII2BINARY;
    pub const TEXT_CONFIG: u32 = fbsd_sys::NGM_TEXT_CONFIG;
}

/// A netgraph message (header fields plus argument bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NgMsg {
    /// `version`.
    pub version: u8,
    /// `arglen` as written in the header (may disagree with `data.len()`).
    pub arglen: u32,
    /// `cmd`.
    pub cmd: u32,
    /// `flags`.
    pub flags: u32,
    /// `token`.
    pub token: u32,
    /// `typecookie`.
    pub cookie: u32,
    /// `cmdstr` (all 32 bytes).
    pub cmdstr: [u8; CMDSTRSIZ],
    /// The argument bytes.
    pub data: Vec<u8>,
}

fn le32(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    for (i, x) in w.iter_mut().enumerate() {
        *x = b.get(off + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(w)
}

/// The C string in `b` (up to the first NUL or the end).
pub fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// `snprintf(buf, N, "%s", s)` into a fixed `N`-byte field: truncated to
/// N - 1 bytes, NUL-filled.
pub fn cfield<const N: usize>(s: &str) -> [u8; N] {
    let mut f = [0u8; N];
    let b = s.as_bytes();
    let n = b.len().min(N - 1);
    f[..n].copy_from_slice(&b[..n]);
    f
}

impl NgMsg {
    /// A request as libnetgraph's `NgSendMsg` builds it.
    pub fn request(cookie: u32, cmd: u32, token: u32, data: Vec<u8>) -> NgMsg {
        NgMsg {
            version: NG_VERSION,
            arglen: data.len() as u32,
            cmd,
            flags: 0,
            token,
            cookie,
            cmdstr: cfield::<CMDSTRSIZ>(&format!("cmd{}", cmd as i32)),
            data,
        }
    }

    /// The command string.
    pub fn cmdstr(&self) -> String {
        cstr(&self.cmdstr)
    }

    /// Is NGF_RESP set?
    pub fn is_resp(&self) -> bool {
        self.flags & NGF_RESP != 0
    }

    /// The bytes on the wire: header (with `arglen` as set) and data.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HDRLEN + self.data.len());
        b.push(self.version);
        b.push(0);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&self.arglen.to_le_bytes());
        b.extend_from_slice(&self.cmd.to_le_bytes());
        b.extend_from_slice(&self.flags.to_le_bytes());
        b.extend_from_slice(&self.token.to_le_bytes());
        b.extend_from_slice(&self.cookie.to_le_bytes());
        b.extend_from_slice(&self.cmdstr);
        b.extend_from_slice(&self.data);
        b
    }

    /// Decodes a received message: the header (missing bytes read as zero)
    /// and whatever follows it (at most `arglen` bytes).
    pub fn decode(b: &[u8]) -> NgMsg {
        let mut cmdstr = [0u8; CMDSTRSIZ];
        for (i, c) in cmdstr.iter_mut().enumerate() {
            *c = b.get(24 + i).copied().unwrap_or(0);
        }
        let arglen = le32(b, 4);
        let rest = b.get(HDRLEN..).unwrap_or(&[]);
        let n = rest.len().min(arglen as usize);
        NgMsg {
            version: b.first().copied().unwrap_or(0),
            arglen,
            cmd: le32(b, 8),
            flags: le32(b, 12),
            token: le32(b, 16),
            cookie: le32(b, 20),
            cmdstr,
            data: rest[..n].to_vec(),
        }
    }
}

/// `struct nodeinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// Node name ("" if unnamed).
    pub name: String,
    /// Type name.
    pub ty: String,
    /// Node ID.
    pub id: u32,
    /// Number of hooks.
    pub hooks: u32,
}

impl NodeInfo {
    /// Decodes the 72 bytes at `off` (missing bytes read as zero).
    pub fn decode_at(b: &[u8], off: usize) -> NodeInfo {
        let field = |o: usize| -> Vec<u8> {
            (0..NODESIZ)
                .map(|i| b.get(off + o + i).copied().unwrap_or(0))
                .collect()
        };
        NodeInfo {
            name: cstr(&field(0)),
            ty: cstr(&field(32)),
            id: le32(b, off + 64),
            hooks: le32(b, off + 68),
        }
    }

    /// Encodes 72 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(NODEINFO_LEN);
        v.extend_from_slice(&cfield::<NODESIZ>(&self.name));
        v.extend_from_slice(&cfield::<NODESIZ>(&self.ty));
        v.extend_from_slice(&self.id.to_le_bytes());
        v.extend_from_slice(&self.hooks.to_le_bytes());
        v
    }
}

/// `struct linkinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkInfo {
    /// Our hook.
    pub ourhook: String,
    /// The peer's hook.
    pub peerhook: String,
    /// The peer node.
    pub peer: NodeInfo,
}

/// `struct hooklist` as ngctl's `show` reads it: the node and `node.hooks`
/// link entries (entries beyond the received bytes read as zero).
pub fn decode_hooklist(b: &[u8]) -> (NodeInfo, Vec<LinkInfo>) {
    let node = NodeInfo::decode_at(b, 0);
    let links = (0..node.hooks as usize)
        .map(|k| {
            let off = NODEINFO_LEN + k * LINKINFO_LEN;
            let field = |o: usize| -> Vec<u8> {
                (0..NODESIZ)
                    .map(|i| b.get(off + o + i).copied().unwrap_or(0))
                    .collect()
            };
            LinkInfo {
                ourhook: cstr(&field(0)),
                peerhook: cstr(&field(32)),
                peer: NodeInfo::decode_at(b, off + 64),
            }
        })
        .collect();
    (node, links)
}

/// Encodes a `struct hooklist`.
pub fn encode_hooklist(node: &NodeInfo, links: &[LinkInfo]) -> Vec<u8> {
    let mut v = node.encode();
    for l in links {
        v.extend_from_slice(&cfield::<NODESIZ>(&l.ourhook));
        v.extend_from_slice(&cfield::<NODESIZ>(&l.peerhook));
        v.extend_from_slice(&l.peer.encode());
    }
    v
}

/// `struct namelist`: `numnames` and that many nodeinfo entries.
pub fn decode_namelist(b: &[u8]) -> Vec<NodeInfo> {
    let n = le32(b, 0) as usize;
    (0..n)
        .map(|k| NodeInfo::decode_at(b, 4 + k * NODEINFO_LEN))
        .collect()
}

/// Encodes a `struct namelist`.
pub fn encode_namelist(nodes: &[NodeInfo]) -> Vec<u8> {
    let mut v = (nodes.len() as u32).to_le_bytes().to_vec();
    for n in nodes {
        v.extend_from_slice(&n.encode());
    }
    v
}

/// `struct typelist`: (type name, number of nodes).
pub fn decode_typelist(b: &[u8]) -> Vec<(String, u32)> {
    let n = le32(b, 0) as usize;
    (0..n)
        .map(|k| {
            let off = 4 + k * TYPEINFO_LEN;
            let name: Vec<u8> = (0..NODESIZ)
                .map(|i| b.get(off + i).copied().unwrap_or(0))
                .collect();
            (cstr(&name), le32(b, off + 32))
        })
        .collect()
}

/// Encodes a `struct typelist`.
pub fn encode_typelist(types: &[(String, u32)]) -> Vec<u8> {
    let mut v = (types.len() as u32).to_le_bytes().to_vec();
    for (n, c) in types {
        v.extend_from_slice(&cfield::<NODESIZ>(n));
        v.extend_from_slice(&c.to_le_bytes());
    }
    v
}

/// `struct ngm_mkpeer` (96 bytes).
pub fn mkpeer(ty: &str, ourhook: &str, peerhook: &str) -> Vec<u8> {
    [
        cfield::<NODESIZ>(ty),
        cfield::<NODESIZ>(ourhook),
        cfield::<NODESIZ>(peerhook),
    ]
    .concat()
}

/// `struct ngm_connect` (576 bytes).
pub fn connect(path: &str, ourhook: &str, peerhook: &str) -> Vec<u8> {
    let mut v = cfield::<PATHSIZ>(path).to_vec();
    v.extend_from_slice(&cfield::<NODESIZ>(ourhook));
    v.extend_from_slice(&cfield::<NODESIZ>(peerhook));
    v
}

/// `struct ngm_name` / `struct ngm_rmhook` (32 bytes).
pub fn name32(s: &str) -> Vec<u8> {
    cfield::<NODESIZ>(s).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn layouts_match_freebsd() {
        assert_eq!(size_of::<fbsd_sys::ng_mesg>(), HDRLEN);
        assert_eq!(size_of::<fbsd_sys::nodeinfo>(), NODEINFO_LEN);
        assert_eq!(size_of::<fbsd_sys::linkinfo>(), LINKINFO_LEN);
        assert_eq!(size_of::<fbsd_sys::typeinfo>(), TYPEINFO_LEN);
        assert_eq!(
            size_of::<fbsd_sys::ngm_mkpeer>(),
            mkpeer("a", "b", "c").len()
        );
        assert_eq!(
            size_of::<fbsd_sys::ngm_connect>(),
            connect("a", "b", "c").len()
        );
        assert_eq!(size_of::<fbsd_sys::ngm_name>(), 32);
        assert_eq!(size_of::<fbsd_sys::ngm_rmhook>(), 32);
        assert_eq!(std::mem::offset_of!(fbsd_sys::namelist, nodeinfo), 4);
        assert_eq!(std::mem::offset_of!(fbsd_sys::typelist, typeinfo), 4);
        assert_eq!(
            std::mem::offset_of!(fbsd_sys::ng_mesg_ng_msghdr, cmdstr),
            24
        );
        assert_eq!(
            std::mem::offset_of!(fbsd_sys::ng_mesg_ng_msghdr, typecookie),
            20
        );
    }

    #[test]
    fn message_roundtrip() {
        let m = NgMsg::request(NGM_GENERIC_COOKIE, cmd::NODEINFO, 7, vec![1, 2, 3]);
        assert_eq!(m.cmdstr(), "cmd805306374");
        let b = m.encode();
        assert_eq!(b.len(), HDRLEN + 3);
        assert_eq!(NgMsg::decode(&b), m);
        // Short input: missing header bytes are zero, data limited to arglen.
        let mut b2 = b.clone();
        b2.push(9);
        assert_eq!(NgMsg::decode(&b2).data, vec![1, 2, 3]);
        assert_eq!(NgMsg::decode(&b[..8]).cmd, 0);
        assert_eq!(NgMsg::decode(&b[..8]).arglen, 3);
    }

    #[test]
    fn structures_roundtrip() {
        let ni = NodeInfo {
            name: "ec".into(),
            ty: "echo".into(),
            id: 3,
            hooks: 1,
        };
        let peer = NodeInfo {
            name: String::new(),
            ty: "socket".into(),
            id: 1,
            hooks: 1,
        };
        let l = LinkInfo {
            ourhook: "x".into(),
            peerhook: "e".into(),
            peer,
        };
        let b = encode_hooklist(&ni, std::slice::from_ref(&l));
        assert_eq!(b.len(), 72 + 136);
        assert_eq!(decode_hooklist(&b), (ni.clone(), vec![l]));
        assert_eq!(
            decode_namelist(&encode_namelist(std::slice::from_ref(&ni))),
            vec![ni]
        );
        let t = vec![("echo".to_string(), 2)];
        assert_eq!(decode_typelist(&encode_typelist(&t)), t);
        assert_eq!(cfield::<4>("abcdef"), *b"abc\0");
    }
}
