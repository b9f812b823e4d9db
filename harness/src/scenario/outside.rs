//! Sockets outside netgraph: real Linux UDP/TCP sockets on the host, used as
//! peers of ksocket nodes. Every wait is bounded and keeps the harness
//! kernel running (`pump`) while it waits, because the other end may be a
//! ksocket whose work only happens when the kernel's event loop runs.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::errno::{self, Errno};

/// How long `recv`, `eof`, `accept` and `connect` wait at most.
pub const EXPECT_WAIT: Duration = Duration::from_secs(2);
/// How long `silent` listens.
pub const SILENT_WAIT: Duration = Duration::from_millis(200);

enum Sock {
    Udp(UdpSocket),
    Listener(TcpListener),
    Stream {
        s: TcpStream,
        buf: Vec<u8>,
        eof: bool,
    },
}

/// The outside sockets of one scenario, by name.
#[derive(Default)]
pub struct Outside {
    socks: HashMap<String, Sock>,
}

/// An outside action failed: errno and message.
pub type OutErr = (Errno, String);

fn io_err(what: &str, e: &std::io::Error) -> OutErr {
    let n = errno::from_io(e);
    (n, format!("{what}: {}", errno::strerror(n)))
}

/// Runs `pump` (the kernel) and polls `f` until it yields or `d` passes.
fn wait_for<T>(
    d: Duration,
    pump: &mut dyn FnMut() -> bool,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + d;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        if !pump() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Outside {
    fn get(&mut self, name: &str) -> Result<&mut Sock, OutErr> {
        self.socks
            .get_mut(name)
            .ok_or((fbsd_sys::EBADF as Errno, format!("no socket named {name}")))
    }

    /// `udp NAME bind ADDR:PORT`.
    pub fn udp_bind(&mut self, name: &str, a: SocketAddr) -> Result<(), OutErr> {
        let s = UdpSocket::bind(a).map_err(|e| io_err(&format!("bind {a}"), &e))?;
        s.set_nonblocking(true).map_err(|e| io_err("fcntl", &e))?;
        self.socks.insert(name.into(), Sock::Udp(s));
        Ok(())
    }

    /// `udp NAME send ADDR:PORT PAYLOAD`.
    pub fn udp_send(&mut self, name: &str, a: SocketAddr, p: &[u8]) -> Result<(), OutErr> {
        match self.get(name)? {
            Sock::Udp(s) => s
                .send_to(p, a)
                .map(|_| ())
                .map_err(|e| io_err(&format!("sendto {a}"), &e)),
            _ => Err((
                fbsd_sys::EINVAL as Errno,
                format!("{name} is not a UDP socket"),
            )),
        }
    }

    /// `tcp NAME listen ADDR:PORT`.
    pub fn tcp_listen(&mut self, name: &str, a: SocketAddr) -> Result<(), OutErr> {
        let l = TcpListener::bind(a).map_err(|e| io_err(&format!("listen {a}"), &e))?;
        l.set_nonblocking(true).map_err(|e| io_err("fcntl", &e))?;
        self.socks.insert(name.into(), Sock::Listener(l));
        Ok(())
    }

    /// `tcp NAME connect ADDR:PORT` (bounded).
    pub fn tcp_connect(&mut self, name: &str, a: SocketAddr) -> Result<(), OutErr> {
        let s = TcpStream::connect_timeout(&a, EXPECT_WAIT)
            .map_err(|e| io_err(&format!("connect {a}"), &e))?;
        s.set_nonblocking(true).map_err(|e| io_err("fcntl", &e))?;
        self.socks.insert(
            name.into(),
            Sock::Stream {
                s,
                buf: Vec::new(),
                eof: false,
            },
        );
        Ok(())
    }

    /// `tcp NAME accept FROM` (bounded).
    pub fn tcp_accept(
        &mut self,
        name: &str,
        from: &str,
        pump: &mut dyn FnMut() -> bool,
    ) -> Result<(), OutErr> {
        let Sock::Listener(l) = self.get(from)? else {
            return Err((
                fbsd_sys::EINVAL as Errno,
                format!("{from} is not a listening socket"),
            ));
        };
        let r = wait_for(EXPECT_WAIT, pump, || match l.accept() {
            Ok((s, _)) => Some(Ok(s)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Err(e) => Some(Err(io_err("accept", &e))),
        });
        let r = r.transpose()?;
        let s = r.ok_or((
            fbsd_sys::ETIMEDOUT as Errno,
            format!("accept on {from}: no connection within 2 s"),
        ))?;
        s.set_nonblocking(true).map_err(|e| io_err("fcntl", &e))?;
        self.socks.insert(
            name.into(),
            Sock::Stream {
                s,
                buf: Vec::new(),
                eof: false,
            },
        );
        Ok(())
    }

    /// `tcp NAME send PAYLOAD`.
    pub fn tcp_send(
        &mut self,
        name: &str,
        p: &[u8],
        pump: &mut dyn FnMut() -> bool,
    ) -> Result<(), OutErr> {
        let Sock::Stream { s, .. } = self.get(name)? else {
            return Err((
                fbsd_sys::EINVAL as Errno,
                format!("{name} is not a TCP stream"),
            ));
        };
        let mut off = 0;
        let mut err = None;
        wait_for(EXPECT_WAIT, pump, || match s.write(&p[off..]) {
            Ok(n) => {
                off += n;
                (off == p.len()).then_some(())
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => None,
            Err(e) => {
                err = Some(io_err("write", &e));
                Some(())
            }
        });
        match err {
            Some(e) => Err(e),
            None if off == p.len() => Ok(()),
            None => Err((
                fbsd_sys::ETIMEDOUT as Errno,
                format!("write on {name}: blocked for 2 s"),
            )),
        }
    }

    /// `tcp NAME close`.
    pub fn tcp_close(&mut self, name: &str) -> Result<(), OutErr> {
        match self.socks.remove(name) {
            Some(Sock::Stream { s, .. }) => {
                let _ = s.shutdown(Shutdown::Both);
                Ok(())
            }
            Some(_) => Ok(()),
            None => Err((fbsd_sys::EBADF as Errno, format!("no socket named {name}"))),
        }
    }

    /// Reads what a stream has into its buffer (non-blocking).
    fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, eof: &mut bool) -> Result<bool, std::io::Error> {
        let mut got = false;
        let mut b = [0u8; 65536];
        loop {
            match s.read(&mut b) {
                Ok(0) => {
                    *eof = true;
                    return Ok(true);
                }
                Ok(n) => {
                    buf.extend_from_slice(&b[..n]);
                    got = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(got),
                Err(e) => return Err(e),
            }
        }
    }

    /// `NAME recv PAYLOAD` / `NAME recv-from ADDR:PORT PAYLOAD`: Ok(()) or a
    /// description of what happened instead.
    pub fn expect_recv(
        &mut self,
        name: &str,
        from: Option<SocketAddr>,
        want: &[u8],
        pump: &mut dyn FnMut() -> bool,
    ) -> Result<(), String> {
        let sock = self.get(name).map_err(|e| e.1)?;
        match sock {
            Sock::Udp(u) => {
                let mut b = vec![0u8; 65536];
                let mut err = None;
                let got = wait_for(EXPECT_WAIT, pump, || match u.recv_from(&mut b) {
                    Ok((n, a)) => Some((b[..n].to_vec(), a)),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                    Err(e) => {
                        err = Some(e.to_string());
                        Some((Vec::new(), SocketAddr::from(([0, 0, 0, 0], 0))))
                    }
                });
                if let Some(e) = err {
                    return Err(format!("recvfrom on {name} failed: {e}"));
                }
                let Some((d, a)) = got else {
                    return Err(format!("{name} received nothing within 2 s"));
                };
                if d != want {
                    return Err(format!(
                        "{name} received {} instead of {}",
                        show(&d),
                        show(want)
                    ));
                }
                if let Some(f) = from {
                    if a != f {
                        return Err(format!(
                            "{name} received {} from {a}, not from {f}",
                            show(&d)
                        ));
                    }
                }
                Ok(())
            }
            Sock::Stream { s, buf, eof } => {
                let mut err = None;
                wait_for(EXPECT_WAIT, pump, || {
                    if buf.len() >= want.len() || *eof {
                        return Some(());
                    }
                    match Self::fill(s, buf, eof) {
                        Ok(_) => (buf.len() >= want.len() || *eof).then_some(()),
                        Err(e) => {
                            err = Some(e.to_string());
                            Some(())
                        }
                    }
                });
                if let Some(e) = err {
                    return Err(format!("read on {name} failed: {e}"));
                }
                let n = buf.len().min(want.len());
                let got: Vec<u8> = buf.drain(..n).collect();
                if got != want {
                    let why = if got.len() < want.len() && *eof {
                        " (then end of file)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "{name} received {}{why} instead of {}",
                        show(&got),
                        show(want)
                    ));
                }
                Ok(())
            }
            Sock::Listener(_) => Err(format!("{name} is a listening socket")),
        }
    }

    /// `NAME silent`: nothing arrives within 200 ms.
    pub fn expect_silent(
        &mut self,
        name: &str,
        pump: &mut dyn FnMut() -> bool,
    ) -> Result<(), String> {
        let sock = self.get(name).map_err(|e| e.1)?;
        match sock {
            Sock::Udp(u) => {
                let mut b = vec![0u8; 65536];
                let got = wait_for(SILENT_WAIT, pump, || match u.recv_from(&mut b) {
                    Ok((n, a)) => Some((b[..n].to_vec(), a)),
                    Err(_) => None,
                });
                match got {
                    Some((d, a)) => Err(format!("{name} received {} from {a}", show(&d))),
                    None => Ok(()),
                }
            }
            Sock::Stream { s, buf, eof } => {
                if !buf.is_empty() {
                    return Err(format!("{name} has unread bytes {}", show(buf)));
                }
                wait_for(SILENT_WAIT, pump, || match Self::fill(s, buf, eof) {
                    Ok(_) if !buf.is_empty() => Some(()),
                    _ => None,
                });
                if buf.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{name} received {}", show(buf)))
                }
            }
            Sock::Listener(_) => Err(format!("{name} is a listening socket")),
        }
    }

    /// `NAME eof`: the stream ends within 2 s (with nothing unread before).
    pub fn expect_eof(&mut self, name: &str, pump: &mut dyn FnMut() -> bool) -> Result<(), String> {
        let Sock::Stream { s, buf, eof } = self.get(name).map_err(|e| e.1)? else {
            return Err(format!("{name} is not a TCP stream"));
        };
        let mut err = None;
        wait_for(EXPECT_WAIT, pump, || {
            if *eof {
                return Some(());
            }
            match Self::fill(s, buf, eof) {
                Ok(_) => eof.then_some(()),
                Err(e) => {
                    err = Some(e);
                    Some(())
                }
            }
        });
        if let Some(e) = err {
            if e.kind() == ErrorKind::ConnectionReset {
                return Err(format!("{name} was reset (ECONNRESET), not closed"));
            }
            return Err(format!("read on {name} failed: {e}"));
        }
        if !buf.is_empty() {
            return Err(format!(
                "{name} has unread bytes {} before the end of file",
                show(buf)
            ));
        }
        if *eof {
            Ok(())
        } else {
            Err(format!("{name} did not reach end of file within 2 s"))
        }
    }

    /// Closes everything.
    pub fn clear(&mut self) {
        self.socks.clear();
    }
}

/// A payload for messages: a quoted string with escapes.
pub fn show(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_roundtrip_and_silence() {
        let mut o = Outside::default();
        let mut pump = || false;
        o.udp_bind("a", "127.0.0.1:0".parse().unwrap()).unwrap();
        let Sock::Udp(u) = &o.socks["a"] else {
            panic!()
        };
        let aa = u.local_addr().unwrap();
        o.udp_bind("b", "127.0.0.1:0".parse().unwrap()).unwrap();
        let Sock::Udp(u) = &o.socks["b"] else {
            panic!()
        };
        let ba = u.local_addr().unwrap();
        o.expect_silent("a", &mut pump).unwrap();
        o.udp_send("b", aa, b"ping").unwrap();
        o.expect_recv("a", Some(ba), b"ping", &mut pump).unwrap();
        o.udp_send("b", aa, b"pong").unwrap();
        let e = o.expect_recv("a", None, b"ping", &mut pump).unwrap_err();
        assert_eq!(e, "a received \"pong\" instead of \"ping\"");
        let e = o.udp_bind("c", aa).unwrap_err();
        assert_eq!(e.0, fbsd_sys::EADDRINUSE as Errno);
    }

    #[test]
    fn tcp_stream_recv_and_eof() {
        let mut o = Outside::default();
        let mut pump = || false;
        o.tcp_listen("l", "127.0.0.1:0".parse().unwrap()).unwrap();
        let Sock::Listener(l) = &o.socks["l"] else {
            panic!()
        };
        let la = l.local_addr().unwrap();
        o.tcp_connect("c", la).unwrap();
        o.tcp_accept("s", "l", &mut pump).unwrap();
        o.tcp_send("c", b"hello", &mut pump).unwrap();
        o.expect_recv("s", None, b"he", &mut pump).unwrap();
        o.expect_recv("s", None, b"llo", &mut pump).unwrap();
        o.tcp_close("c").unwrap();
        o.expect_eof("s", &mut pump).unwrap();
        assert_eq!(show(b"a\n\x01"), "\"a\\n\\x01\"");
    }
}
