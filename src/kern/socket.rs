//! socket(9), the consumer side: a kernel socket owned by a node.
//!
//! [`KSocket`] owns the reference `socreate` returns; dropping it calls
//! `soclose`, which consumes that reference on every path. Data handed to
//! [`KSocket::send`] is consumed on success and on error, as `sosend` does.
//! Receive-buffer data comes back as an owned [`Mbuf`], and the source address
//! (an `M_SONAME` allocation) is copied out and freed before returning.

use core::ffi::c_void;
use core::ptr::NonNull;

use fbsd_sys::{sockaddr, sockaddr_storage, socket, sockopt, uio};

use super::errno::{Errno, KResult};
use super::mbuf::Mbuf;
use super::thread::CurThread;

extern "C" {
    /// `M_SONAME`, the kernel's malloc type for socket addresses.
    static mut M_SONAME: [fbsd_sys::malloc_type; 1];
}

/// Size of `struct sockaddr_storage`.
pub const SS_MAXSIZE: usize = core::mem::size_of::<sockaddr_storage>();

/// A socket address in a `struct sockaddr_storage` buffer.
#[derive(Clone, Copy)]
pub struct SockAddr {
    ss: sockaddr_storage,
}

impl SockAddr {
    /// An empty address whose `ss_len` is preset to the storage size, as
    /// `sosockaddr`/`sopeeraddr`/`soaccept` expect.
    pub fn empty() -> Self {
        let mut ss = sockaddr_storage::default();
        #[allow(clippy::cast_possible_truncation)]
        {
            ss.ss_len = SS_MAXSIZE as u8;
        }
        SockAddr { ss }
    }

    /// Copies a binary sockaddr (at least 2 bytes, `sa_len` ≤ the slice and
    /// the storage); `EINVAL` otherwise.
    pub fn from_bytes(b: &[u8]) -> KResult<Self> {
        let len = usize::from(*b.first().ok_or(Errno::EINVAL)?);
        if b.len() < 2 || len < 2 || len > b.len() || len > SS_MAXSIZE {
            return Err(Errno::EINVAL);
        }
        let mut s = SockAddr {
            ss: sockaddr_storage::default(),
        };
        if let (Some(d), Some(v)) = (s.as_bytes_mut_full().get_mut(..len), b.get(..len)) {
            d.copy_from_slice(v);
        }
        Ok(s)
    }

    fn as_bytes_mut_full(&mut self) -> &mut [u8] {
        // SAFETY: sockaddr_storage is plain bytes of size SS_MAXSIZE.
        unsafe { core::slice::from_raw_parts_mut((&raw mut self.ss).cast::<u8>(), SS_MAXSIZE) }
    }

    /// The meaningful bytes (`sa_len` of them, capped to the storage).
    pub fn as_bytes(&self) -> &[u8] {
        let len = usize::from(self.ss.ss_len).min(SS_MAXSIZE);
        // SAFETY: sockaddr_storage is plain bytes of size SS_MAXSIZE ≥ len.
        unsafe { core::slice::from_raw_parts((&raw const self.ss).cast::<u8>(), len) }
    }

    fn as_sockaddr(&mut self) -> *mut sockaddr {
        (&raw mut self.ss).cast::<sockaddr>()
    }
}

/// An owned kernel socket.
pub struct KSocket {
    so: NonNull<socket>,
}

/// Which socket buffer an upcall is attached to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Buf {
    Rcv,
    Snd,
}

impl KSocket {
    /// `socreate(family, type, proto)` with the current thread's credentials.
    ///
    /// Must be called from a context that may sleep (a netgraph message or
    /// node method), never from an upcall.
    pub fn create(family: i32, ty: i32, proto: i32) -> KResult<Self> {
        let td = CurThread::get().as_ptr();
        let mut so: *mut socket = core::ptr::null_mut();
        // SAFETY: `td` is the running thread; its credential stays valid for
        // the call; socreate leaves `so` untouched on error.
        let err = unsafe { fbsd_sys::socreate(family, &mut so, ty, proto, (*td).td_ucred, td) };
        Errno::check(err)?;
        NonNull::new(so)
            .map(|so| KSocket { so })
            .ok_or(Errno::ENOMEM)
    }

    /// Raw pointer (for upcall registration and comparisons).
    pub fn as_ptr(&self) -> *mut socket {
        self.so.as_ptr()
    }

    /// `sobind`; the address is borrowed.
    pub fn bind(&self, addr: &SockAddr) -> KResult<()> {
        let mut a = *addr;
        // SAFETY: the socket is owned; the address buffer is valid for the call.
        Errno::check(unsafe {
            fbsd_sys::sobind(self.so.as_ptr(), a.as_sockaddr(), CurThread::get().as_ptr())
        })
    }

    /// `soconnect`; the address is borrowed.
    pub fn connect(&self, addr: &SockAddr) -> KResult<()> {
        let mut a = *addr;
        // SAFETY: as for `bind`.
        Errno::check(unsafe {
            fbsd_sys::soconnect(self.so.as_ptr(), a.as_sockaddr(), CurThread::get().as_ptr())
        })
    }

    /// `sosockaddr` into caller storage.
    pub fn sockname(&self) -> KResult<SockAddr> {
        let mut a = SockAddr::empty();
        // SAFETY: the socket is owned; the storage's ss_len is preset.
        Errno::check(unsafe { fbsd_sys::sosockaddr(self.so.as_ptr(), a.as_sockaddr()) })?;
        Ok(a)
    }

    /// `sopeeraddr` into caller storage.
    pub fn peername(&self) -> KResult<SockAddr> {
        let mut a = SockAddr::empty();
        // SAFETY: as for `sockname`; netgraph runs node methods under the node's vnet.
        Errno::check(unsafe { fbsd_sys::sopeeraddr(self.so.as_ptr(), a.as_sockaddr()) })?;
        Ok(a)
    }

    /// `sosetopt` from a kernel buffer (`sopt_td` NULL).
    pub fn setopt(&self, level: i32, name: i32, val: &[u8]) -> KResult<()> {
        let mut s = sockopt {
            sopt_dir: fbsd_sys::SOPT_SET,
            sopt_level: level,
            sopt_name: name,
            sopt_val: val.as_ptr().cast_mut().cast::<c_void>(),
            sopt_valsize: val.len(),
            ..Default::default()
        };
        // SAFETY: the socket is owned; with sopt_td NULL the value is copied
        // from kernel memory, which the slice keeps valid for the call.
        Errno::check(unsafe { fbsd_sys::sosetopt(self.so.as_ptr(), &mut s) })
    }

    /// `sogetopt` into a kernel buffer; returns the length produced.
    pub fn getopt(&self, level: i32, name: i32, out: &mut [u8]) -> KResult<usize> {
        let mut s = sockopt {
            sopt_dir: fbsd_sys::SOPT_GET,
            sopt_level: level,
            sopt_name: name,
            sopt_val: out.as_mut_ptr().cast::<c_void>(),
            sopt_valsize: out.len(),
            ..Default::default()
        };
        // SAFETY: as for `setopt`; the kernel writes at most `out.len()` bytes.
        Errno::check(unsafe { fbsd_sys::sogetopt(self.so.as_ptr(), &mut s) })?;
        Ok(s.sopt_valsize.min(out.len()))
    }

    /// `sosend` of an mbuf chain to `dest` (or the connected peer). The chain
    /// is consumed on success and on every error.
    pub fn send(&self, m: Mbuf, dest: Option<&SockAddr>) -> KResult<()> {
        let mut d = dest.copied();
        let dp = d
            .as_mut()
            .map_or(core::ptr::null_mut(), SockAddr::as_sockaddr);
        // SAFETY: the socket is owned and not listening (callers check);
        // sosend consumes the chain; the address is borrowed for the call.
        Errno::check(unsafe {
            fbsd_sys::sosend(
                self.so.as_ptr(),
                dp,
                core::ptr::null_mut(),
                m.into_raw(),
                core::ptr::null_mut(),
                0,
                CurThread::get().as_ptr(),
            )
        })
    }

    /// Non-blocking `soreceive` (mbuf form) of at most `budget` bytes.
    /// Returns the data (None at EOF), the source address when asked for and
    /// available, and whether the record was truncated.
    pub fn recv(&self, budget: isize, want_addr: bool) -> KResult<Received> {
        let mut u = uio {
            uio_resid: budget,
            ..Default::default()
        };
        let mut m: *mut fbsd_sys::mbuf = core::ptr::null_mut();
        let mut sa: *mut sockaddr = core::ptr::null_mut();
        #[allow(clippy::cast_possible_wrap)]
        let mut flags: i32 = fbsd_sys::MSG_DONTWAIT as i32;
        let psa: *mut *mut sockaddr = if want_addr {
            &mut sa
        } else {
            core::ptr::null_mut()
        };
        // SAFETY: the socket is owned; uio is valid and only its resid is
        // read; the out pointers are valid for the call.
        let err = unsafe {
            fbsd_sys::soreceive(
                self.so.as_ptr(),
                psa,
                &mut u,
                &mut m,
                core::ptr::null_mut(),
                &mut flags,
            )
        };
        // Take ownership of whatever came back before looking at the error.
        // SAFETY: a non-NULL chain returned by soreceive belongs to the caller.
        let data = unsafe { Mbuf::from_raw(m) };
        let addr = NonNull::new(sa).and_then(|p| {
            // SAFETY: *psa is an M_SONAME allocation owned by the caller with
            // at least sa_len valid bytes; it is freed right after the copy.
            unsafe {
                let len = usize::from((*p.as_ptr()).sa_len);
                let bytes = core::slice::from_raw_parts(p.as_ptr().cast::<u8>(), len);
                let copy = SockAddr::from_bytes(bytes).ok();
                fbsd_sys::free(p.as_ptr().cast::<c_void>(), (&raw mut M_SONAME).cast());
                copy
            }
        });
        Errno::check(err)?;
        #[allow(clippy::cast_possible_wrap)]
        let truncated = flags & (fbsd_sys::MSG_TRUNC as i32) != 0;
        Ok(Received {
            data,
            addr,
            truncated,
        })
    }
}

/// What [`KSocket::recv`] returned.
pub struct Received {
    /// The data; `None` at end of file or when nothing was returned.
    pub data: Option<Mbuf>,
    /// The source address, when asked for and available.
    pub addr: Option<SockAddr>,
    /// The datagram was longer than the budget and was cut (`MSG_TRUNC`).
    pub truncated: bool,
}

impl Drop for KSocket {
    fn drop(&mut self) {
        // SAFETY: the socket is owned; soclose consumes our reference on
        // every path, and the pointer is not used again.
        let _ = unsafe { fbsd_sys::soclose(self.so.as_ptr()) };
    }
}

// SAFETY: a kernel socket may be used from any thread: the socket layer
// serialises every operation with its own locks, and the owner (one node)
// closes it exactly once.
unsafe impl Send for KSocket {}
// SAFETY: as above; concurrent `sosend` calls from several netgraph readers
// of one node are serialised by the socket's send I/O lock.
unsafe impl Sync for KSocket {}

impl KSocket {
    /// Takes ownership of a socket reference (from `solisten_dequeue`).
    ///
    /// # Safety
    /// The caller must own one reference on `so` (which `soclose` consumes
    /// when the value is dropped).
    pub unsafe fn from_raw(so: *mut socket) -> Option<KSocket> {
        NonNull::new(so).map(|so| KSocket { so })
    }

    /// `solisten(so, backlog, curthread)`.
    pub fn listen(&self, backlog: i32) -> KResult<()> {
        // SAFETY: the socket is owned; curthread is the running thread.
        Errno::check(unsafe {
            fbsd_sys::solisten(self.so.as_ptr(), backlog, CurThread::get().as_ptr())
        })
    }

    /// `soaccept` into caller storage: the peer's address. On error the
    /// caller still owns the socket (dropping it closes it).
    pub fn accept_peer(&self) -> KResult<SockAddr> {
        let mut a = SockAddr::empty();
        // SAFETY: the socket is owned; the storage's ss_len is preset to its size.
        Errno::check(unsafe { fbsd_sys::soaccept(self.so.as_ptr(), a.as_sockaddr()) })?;
        Ok(a)
    }
}
