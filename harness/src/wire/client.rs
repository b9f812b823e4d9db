//! A Rust client of the bridge protocol: one connection, requests answered
//! in order (readiness tokens are skipped). Used for the harness control
//! requests of the bridged scenario runner and by tests.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{Reply, Request, KIND_READABLE};
use crate::wire;

/// One connection to an `ngharness serve`.
pub struct Client {
    fd: OwnedFd,
}

fn last() -> io::Error {
    io::Error::last_os_error()
}

impl Client {
    /// Connects to the server at `path`.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let fd = connect_raw(path)?;
        Ok(Client { fd })
    }

    /// The connection's descriptor.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sends raw packets (tests of malformed input).
    pub fn send_packet(&self, p: &[u8]) -> io::Result<()> {
        // SAFETY: sending a byte buffer on our own descriptor.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                p.as_ptr().cast(),
                p.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            return Err(last());
        }
        Ok(())
    }

    /// Receives one packet.
    pub fn recv_packet(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; wire::CHUNK + 1];
        loop {
            // SAFETY: `buf` has room for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = last();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the bridge server closed the connection",
                ));
            }
            buf.truncate(n as usize);
            return Ok(buf);
        }
    }

    /// Reads the next reply (skipping readiness tokens).
    pub fn read_reply(&self) -> io::Result<Reply> {
        loop {
            let mut msg = self.recv_packet()?;
            let total = wire::reply_length(&msg).unwrap_or(msg.len());
            while msg.len() < total {
                let more = self.recv_packet()?;
                msg.extend_from_slice(&more);
            }
            let (kind, r) = wire::decode_reply(&msg)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if kind == KIND_READABLE {
                continue;
            }
            return Ok(r);
        }
    }

    /// Sends a request and returns its reply.
    pub fn call(&self, r: &Request) -> io::Result<Reply> {
        for p in wire::packets(wire::encode_request(r)) {
            self.send_packet(&p)?;
        }
        self.read_reply()
    }
}

/// A connected `SOCK_SEQPACKET` descriptor to `path`.
pub fn connect_raw(path: &Path) -> io::Result<OwnedFd> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: zeroed sockaddr_un is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= sun.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain syscalls; the descriptor is owned at once.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(last());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        if libc::connect(
            fd.as_raw_fd(),
            (&sun as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        ) != 0
        {
            return Err(last());
        }
        Ok(fd)
    }
}
