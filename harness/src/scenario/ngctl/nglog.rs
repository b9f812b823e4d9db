//! libnetgraph's debug log (`NgSetDebug()`: ngctl's `-d` and `debug`), as
//! its debug.c prints it through warnx(3): a message's header, its type's
//! cookie name, its ASCII form (asked of the node from a temporary socket
//! node, above level 2) or its bytes.

use super::*;

impl Ctx<'_> {
    /// NgDeliverMsg()'s log of a message it sends to `path`.
    pub(super) fn log_sending(&mut self, path: &str, m: &NgMsg) {
        self.warnx(if m.is_resp() {
            "SENDING RESPONSE:"
        } else {
            "SENDING MESSAGE:"
        });
        // sg_len, a byte: strlen + 1 + NGSA_OVERHEAD.
        self.debug_sockaddr((path.len() + 3) as u8, path);
        self.debug_msg(m, path);
    }

    /// NgRecvMsg()'s log of a message it received.
    pub(super) fn log_received(&mut self, r: &Received) {
        let m = NgMsg::decode(&r.bytes);
        self.warnx(if m.is_resp() {
            "RECEIVED RESPONSE:"
        } else {
            "RECEIVED MESSAGE:"
        });
        self.debug_sockaddr(r.sa_len, &r.from);
        self.debug_msg(&m, &r.from);
    }

    /// libnetgraph's `_NgDebugSockaddr()`.
    pub(super) fn debug_sockaddr(&mut self, len: u8, addr: &str) {
        self.warnx(&format!(
            "SOCKADDR: {{ fam={AF_NETGRAPH} len={len} addr=\"{addr}\" }}"
        ));
    }

    /// libnetgraph's `_NgDebugMsg()`: the header, then, above level 2 and
    /// for a path with a `:`, the node's ASCII form of the message (asked
    /// for on a temporary socket node), else the argument bytes.
    pub(super) fn debug_msg(&mut self, m: &NgMsg, path: &str) {
        self.warnx("NG_MESG :");
        self.warnx(&format!("  vers   {}", m.version));
        self.warnx(&format!("  arglen {}", m.arglen));
        self.warnx(&format!("  flags  {:x}", m.flags));
        self.warnx(&format!("  token  {}", m.token));
        self.warnx(&format!(
            "  cookie {} ({})",
            cookie_name(m.cookie),
            m.cookie
        ));
        if self.st.debug > 2 && path.contains(':') {
            match self.debug_ascii(m, path) {
                Ok((cmdstr, command, args)) => {
                    self.warnx(&format!("  cmd    {cmdstr} ({})", command as i32));
                    self.warnx(&format!("  args   {args}"));
                    return;
                }
                Err(e) => self.warnx(&format!(
                    "  [error decoding message: {}]",
                    errno::strerror(e)
                )),
            }
        }
        self.warnx(&format!("  cmd    {}", m.cmd as i32));
        self.warnx(&format!("  args ({} bytes)", m.arglen as i32));
        let n = (m.arglen as usize).min(m.data.len());
        for l in debug_bytes(&m.data[..n]) {
            self.warnx(&l);
        }
    }

    /// `_NgDebugMsg()`'s translation: NGM_BINARY2ASCII of the message (its
    /// arguments cut at 2048 bytes) sent to `path` from a temporary control
    /// socket, with a token of this process's (libnetgraph's one counter).
    pub(super) fn debug_ascii(
        &mut self,
        m: &NgMsg,
        path: &str,
    ) -> Result<(String, u32, String), Errno> {
        const ARGS_BUFSIZE: usize = 2048;
        let tmp = self.port.open(None)?;
        let mut bin = m.clone();
        bin.data.truncate((m.arglen as usize).min(ARGS_BUFSIZE));
        bin.arglen = bin.data.len() as u32;
        let p = self.p();
        let token = self.port.next_token(p);
        let req = NgMsg::request(
            msg::NGM_GENERIC_COOKIE,
            cmd::BINARY2ASCII,
            token,
            bin.encode(),
        );
        let r = match self.port.send_msg(tmp, path, &req.encode()) {
            Err(e) => Err(e),
            Ok(()) => {
                let _ = self.port.msg_ready(tmp, Wait::For(BLOCK));
                match self.port.recv_msg(
                    tmp,
                    Some(2 * msg::HDRLEN + ARGS_BUFSIZE),
                    Wait::For(BLOCK),
                ) {
                    Ok(Some(r)) => {
                        let inner = NgMsg::decode(&NgMsg::decode(&r.bytes).data);
                        Ok((inner.cmdstr(), inner.cmd, msg::cstr(&inner.data)))
                    }
                    Ok(None) => Err(fbsd_sys::ETIMEDOUT as Errno),
                    Err(e) => Err(e),
                }
            }
        };
        self.port.close(tmp);
        r
    }
}

/// libnetgraph's names of the node types' cookies (debug.c).
const COOKIES: &[(u32, &str)] = &[
    (884639499, "UI"),
    (886473717, "ASYNC"),
    (944100792, "BPF"),
    (1569321993, "BRIDGE"),
    (1173648034, "CAR"),
    (860707227, "CISCO"),
    (1166642656, "DEFLATE"),
    (1091129178, "DEVICE"),
    (884298942, "ECHO"),
    (948105892, "EIFACE"),
    (983084516, "ETF"),
    (917786906, "ETHER"),
    (1230155201, "ETHER_ECHO"),
    (872148478, "FRAMERELAY"),
    (994115727, "GIF"),
    (995567329, "GIF_DEMUX"),
    (1137070366, "GENERIC"),
    (915433206, "HOLE"),
    (1082189597, "HUB"),
    (1108312559, "IFACE"),
    (994874907, "IP_INPUT"),
    (1105988990, "IPFW"),
    (942710669, "KSOCKET"),
    (1091515793, "L2TP"),
    (867184133, "LMI"),
    (942886745, "MPPC"),
    (1107718711, "NAT"),
    (1365756954, "NETFLOW"),
    (1100897444, "ONE2MANY"),
    (1262445509, "PATCH"),
    (200708191, "PIPE"),
    (940897795, "PPP"),
    (1089893072, "PPPOE"),
    (1082548365, "PPTPGRE"),
    (1166902612, "PRED1"),
    (1086947474, "RFC1490"),
    (851601233, "SOCKET"),
    (1110646684, "SOURCE"),
    (949409402, "SPLIT"),
    (1149771193, "TAG"),
    (1097623478, "TCPMSS"),
    (916107047, "TEE"),
    (1226109660, "TTY"),
    (868219210, "VJC"),
    (1068486472, "VLAN"),
];

/// `NgCookie()`: the type name of a cookie, `??` when unknown.
fn cookie_name(cookie: u32) -> &'static str {
    COOKIES
        .iter()
        .find(|(c, _)| *c == cookie)
        .map_or("??", |(_, n)| n)
}

/// libnetgraph's `_NgDebugBytes()`: 16 bytes a line, hex then ASCII (a
/// missing byte's ASCII column is two blanks wide, as there).
pub(super) fn debug_bytes(b: &[u8]) -> Vec<String> {
    b.chunks(16)
        .enumerate()
        .map(|(n, c)| {
            let mut l = format!("{:04x}:  ", n * 16);
            for k in 0..16 {
                match c.get(k) {
                    Some(x) => l.push_str(&format!("{x:02x} ")),
                    None => l.push_str("   "),
                }
            }
            l.push_str("  ");
            for k in 0..16 {
                match c.get(k) {
                    Some(&x) if (0x20..0x7f).contains(&x) => l.push(x as char),
                    Some(_) => l.push('.'),
                    None => l.push_str("  "),
                }
            }
            l
        })
        .collect()
}
