//! `sosetopt` / `sogetopt` with `struct sockopt` (H25).
//!
//! `SOL_SOCKET` follows uipc_socket.c: boolean options live in `so_options`
//! (a get returns `so_options & name`, e.g. 4 for `SO_REUSEADDR`), buffer
//! sizes in `sb_hiwat` through `sbsetopt()`, timeouts in `sb_timeo`.
//! Protocol levels follow `ip_ctloutput`, `ip6_ctloutput`,
//! `tcp_default_ctloutput` and `uipc_ctloutput` for the options they share
//! with Linux (forwarded to the Linux socket) plus FreeBSD-only options that
//! are stored; the values a get returns are FreeBSD's (`TCP_NODELAY` gets
//! `TF_NODELAY`, 4). Unknown options: `ENOPROTOOPT` (or `EINVAL` for a
//! level the protocol does not handle, as `ip_ctloutput` answers).
//!
//! One option is the harness's own, not FreeBSD's: [`SO_HARNESS_LONG`]
//! (`SOL_SOCKET`), whose value is longer than 1 KiB, as the values of some
//! FreeBSD options are (ipfw's `IP_FW3` tables, `TCP_STATS` blobs) but none
//! of the options the model implements. It is there so consumers' handling
//! of long values (a reply buffer that must grow) can be exercised: a get
//! returns [`SO_HARNESS_LONG_DEFAULT`] bytes of `i % 251` until a set
//! stores another value of at most [`SO_HARNESS_LONG_MAX`] bytes.

use std::ffi::c_int;

use fbsd_sys::{socket, sockopt, SOPT_GET, SOPT_SET, SO_RCV, SO_SND};

use super::addr::{AF_INET, AF_INET6, AF_LOCAL};
use super::errno::fb;
use super::proto::{self, Kind};
use super::{
    buf_mtx, check_no_locks, check_not_in_upcall, events, listening, mtx_lock, mtx_unlock, sb,
    set_so_error, so_error, so_lock, sol, state, target, with_sock, Target, VnetGuard, SB_MAX,
    SB_MAX_ADJ, SS_ISCONNECTED, SS_ISDISCONNECTED,
};
use crate::kern::{sched, violation};

crate::kern::fbsd_consts! {
    c_int: SOL_SOCKET, SO_DEBUG, SO_ACCEPTCONN, SO_REUSEADDR, SO_KEEPALIVE, SO_DONTROUTE,
        SO_BROADCAST, SO_USELOOPBACK, SO_LINGER, SO_OOBINLINE, SO_REUSEPORT, SO_TIMESTAMP,
        SO_NOSIGPIPE, SO_ACCEPTFILTER, SO_BINTIME, SO_NO_OFFLOAD, SO_NO_DDP, SO_REUSEPORT_LB,
        SO_RERROR, SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT, SO_SNDTIMEO, SO_RCVTIMEO,
        SO_ERROR, SO_TYPE, SO_LABEL, SO_PEERLABEL, SO_LISTENQLIMIT, SO_LISTENQLEN, SO_LISTENINCQLEN,
        SO_SETFIB, SO_USER_COOKIE, SO_PROTOCOL, SO_TS_CLOCK, SO_MAX_PACING_RATE, SO_DOMAIN,
        SO_SPLICE, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP, IP_HDRINCL, IP_TOS, IP_TTL,
        IPV6_V6ONLY, IPV6_UNICAST_HOPS, TCP_NODELAY, TCP_MAXSEG, TCP_KEEPINIT, TCP_KEEPIDLE,
        TCP_KEEPINTVL, TCP_KEEPCNT;
}
const SO_FIB: c_int = SO_SETFIB;
/// The harness's long-valued `SOL_SOCKET` option (not a FreeBSD option; see
/// the module documentation). "NG" in the high bytes keeps it clear of
/// FreeBSD's numbers.
pub const SO_HARNESS_LONG: c_int = 0x4e47_0001;
/// Bytes of [`SO_HARNESS_LONG`]'s value before any set.
pub const SO_HARNESS_LONG_DEFAULT: usize = 3000;
/// Longest value [`SO_HARNESS_LONG`] stores (longer sets: `EINVAL`).
pub const SO_HARNESS_LONG_MAX: usize = 8192;
const SO_TS_CLOCK_MAX: c_int = fbsd_sys::SO_TS_CLOCK_MAX as c_int;

// netinet/in.h (FreeBSD values)
const IP_OPTIONS: c_int = 1;
const IP_RECVOPTS: c_int = 5;
const IP_RECVRETOPTS: c_int = 6;
const IP_RECVDSTADDR: c_int = 7;
const IP_MULTICAST_IF: c_int = 9;
const IP_MULTICAST_TTL: c_int = 10;
const IP_MULTICAST_LOOP: c_int = 11;
const IP_ADD_MEMBERSHIP: c_int = 12;
const IP_DROP_MEMBERSHIP: c_int = 13;
const IP_PORTRANGE: c_int = 19;
const IP_RECVIF: c_int = 20;
const IP_ONESBCAST: c_int = 23;
const IP_BINDANY: c_int = 24;
const IP_RECVORIGDSTADDR: c_int = 27;
const IP_RECVTTL: c_int = 65;
const IP_DONTFRAG: c_int = 67;
const IP_RECVTOS: c_int = 68;
// netinet6/in6.h
const IPV6_MULTICAST_IF: c_int = 9;
const IPV6_MULTICAST_HOPS: c_int = 10;
const IPV6_MULTICAST_LOOP: c_int = 11;
const IPV6_JOIN_GROUP: c_int = 12;
const IPV6_LEAVE_GROUP: c_int = 13;
const IPV6_RECVPKTINFO: c_int = 36;
const IPV6_RECVHOPLIMIT: c_int = 37;
const IPV6_RECVTCLASS: c_int = 57;
const IPV6_AUTOFLOWLABEL: c_int = 59;
const IPV6_TCLASS: c_int = 61;
const IPV6_DONTFRAG: c_int = 62;
const IPV6_BINDANY: c_int = 64;
// netinet/tcp.h and tcp_var.h
const TCP_NOPUSH: c_int = 4;
const TCP_NOOPT: c_int = 8;
const TCP_CONGESTION: c_int = 64;
const TF_NODELAY: c_int = 0x4;
const TF_NOOPT: c_int = 0x8;
const TF_NOPUSH: c_int = 0x1000;
const TCP_CA_NAME_MAX: usize = 16;
/// `V_tcp_minmss`.
const TCP_MINMSS: c_int = 216;
// sys/un.h
const LOCAL_PEERCRED: c_int = 1;
const LOCAL_CREDS: c_int = 2;
const LOCAL_CREDS_PERSISTENT: c_int = 3;
const LOCAL_CONNWAIT: c_int = 4;
const SOL_LOCAL: c_int = fbsd_sys::SOL_LOCAL as c_int;

/// `struct linger` (two ints).
const LINGER_LEN: usize = 8;
/// `struct timeval` on amd64.
const TIMEVAL_LEN: usize = 16;

/// Reads the option value like `sooptcopyin(sopt, buf, len, minlen)`.
fn copyin(s: *mut sockopt, len: usize, minlen: usize) -> Result<Vec<u8>, c_int> {
    // SAFETY: the caller passes a valid sockopt.
    let (val, mut valsize, td) = unsafe { ((*s).sopt_val, (*s).sopt_valsize, (*s).sopt_td) };
    if valsize < minlen {
        return Err(fb::EINVAL);
    }
    if valsize > len {
        valsize = len;
        // SAFETY: as above.
        unsafe { (*s).sopt_valsize = len };
    }
    if !td.is_null() {
        violation("sosetopt: sopt_td != NULL means a user-space buffer (copyin); kernel callers pass NULL");
        return Err(fb::EFAULT);
    }
    if valsize == 0 {
        return Ok(Vec::new());
    }
    if val.is_null() {
        return Err(fb::EFAULT);
    }
    // SAFETY: `val` holds `sopt_valsize` readable bytes (caller's contract).
    Ok(unsafe { std::slice::from_raw_parts(val.cast::<u8>(), valsize) }.to_vec())
}

fn copyin_int(s: *mut sockopt) -> Result<c_int, c_int> {
    let b = copyin(s, 4, 4)?;
    Ok(c_int::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Writes the value like `sooptcopyout()`: truncated to `sopt_valsize`,
/// which is updated to the bytes copied.
fn copyout(s: *mut sockopt, bytes: &[u8]) -> c_int {
    // SAFETY: the caller passes a valid sockopt.
    let (val, valsize, td) = unsafe { ((*s).sopt_val, (*s).sopt_valsize, (*s).sopt_td) };
    let n = bytes.len().min(valsize);
    // SAFETY: as above.
    unsafe { (*s).sopt_valsize = n };
    if val.is_null() {
        return 0;
    }
    if !td.is_null() {
        violation("sogetopt: sopt_td != NULL means a user-space buffer (copyout); kernel callers pass NULL");
        return fb::EFAULT;
    }
    // SAFETY: `val` has room for `sopt_valsize` bytes (caller's contract).
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), val.cast::<u8>(), n) };
    0
}

fn out_int(s: *mut sockopt, v: c_int) -> c_int {
    copyout(s, &v.to_ne_bytes())
}

fn linux_set(fd: c_int, level: c_int, name: c_int, val: &[u8]) {
    // SAFETY: passes an owned buffer.
    unsafe { libc::setsockopt(fd, level, name, val.as_ptr().cast(), val.len() as u32) };
}

fn linux_set_int(fd: c_int, level: c_int, name: c_int, v: c_int) {
    linux_set(fd, level, name, &v.to_ne_bytes());
}

/// Linux equivalent of a FreeBSD boolean SOL_SOCKET option, if any.
fn linux_sol_bool(name: c_int) -> Option<c_int> {
    Some(match name {
        SO_REUSEADDR => libc::SO_REUSEADDR,
        SO_KEEPALIVE => libc::SO_KEEPALIVE,
        SO_DONTROUTE => libc::SO_DONTROUTE,
        SO_BROADCAST => libc::SO_BROADCAST,
        SO_OOBINLINE => libc::SO_OOBINLINE,
        SO_REUSEPORT => libc::SO_REUSEPORT,
        _ => return None,
    })
}

const SOL_BOOLS: &[c_int] = &[
    SO_DEBUG,
    SO_KEEPALIVE,
    SO_DONTROUTE,
    SO_USELOOPBACK,
    SO_BROADCAST,
    SO_REUSEADDR,
    SO_REUSEPORT,
    SO_REUSEPORT_LB,
    SO_OOBINLINE,
    SO_TIMESTAMP,
    SO_BINTIME,
    SO_NOSIGPIPE,
    SO_NO_DDP,
    SO_NO_OFFLOAD,
    SO_RERROR,
];

/// `tvtosbt()` (`ustosbt()` rounds so that `sbttotv()` gives the value back).
fn sbt_from_tv(sec: i64, usec: i64) -> i64 {
    if sec > i64::from(i32::MAX) {
        return i64::MAX;
    }
    let frac = ((usec as u64) * 9_223_372_036_855 + 0x7fff_ffff) >> 31;
    (sec << 32) + frac as i64
}

/// `sbttotv()`.
fn tv_from_sbt(sbt: i64) -> [u8; TIMEVAL_LEN] {
    let sec = sbt >> 32;
    let usec = ((1_000_000u64 * (sbt as u64 & 0xffff_ffff)) >> 32) as i64;
    let mut b = [0u8; TIMEVAL_LEN];
    b[..8].copy_from_slice(&sec.to_ne_bytes());
    b[8..].copy_from_slice(&usec.to_ne_bytes());
    b
}

struct Ctx {
    so: *mut socket,
    fd: c_int,
    family: c_int,
    kind: Kind,
}

fn stored(c: &Ctx, level: c_int, name: c_int) -> Option<Vec<u8>> {
    with_sock(c.so, |s| s.opts.get(&(level, name)).cloned()).flatten()
}

fn store(c: &Ctx, level: c_int, name: c_int, v: Vec<u8>) {
    with_sock(c.so, |s| s.opts.insert((level, name), v));
}

fn stored_int(c: &Ctx, level: c_int, name: c_int, dflt: c_int) -> c_int {
    stored(c, level, name).map_or(dflt, |b| c_int::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn store_int(c: &Ctx, level: c_int, name: c_int, v: c_int) {
    store(c, level, name, v.to_ne_bytes().to_vec());
}

/// `sosetopt(so, sopt)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn sosetopt(so: *mut socket, s: *mut sockopt) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { sockopt(so, s, true) }
}

/// `sogetopt(so, sopt)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn sogetopt(so: *mut socket, s: *mut sockopt) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { sockopt(so, s, false) }
}

/// What `sosetopt` (`set`) and `sogetopt` share: forwarding foreign
/// sockets, the context checks, the `sopt_dir` check, and the dispatch to
/// the socket-level or protocol options.
///
/// # Safety
/// Kernel ABI of `sosetopt`/`sogetopt`.
unsafe fn sockopt(so: *mut socket, s: *mut sockopt, set: bool) -> c_int {
    let (what, want, want_name) = if set {
        ("sosetopt", SOPT_SET, "SOPT_SET")
    } else {
        ("sogetopt", SOPT_GET, "SOPT_GET")
    };
    match target(so, what) {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) if set => return unsafe { (f.sosetopt)(so, s) },
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.sogetopt)(so, s) },
        Target::Bad => return fb::EBADF,
    }
    let _v = VnetGuard::set(so);
    check_no_locks(what);
    check_not_in_upcall(what);
    if s.is_null() {
        violation(format!("{what}: NULL sockopt"));
        return fb::EINVAL;
    }
    // SAFETY: valid sockopt.
    let (dir, level, name) = unsafe { ((*s).sopt_dir, (*s).sopt_level, (*s).sopt_name) };
    if dir != want {
        violation(format!("{what}: sopt_dir is {dir}, not {want_name}"));
    }
    let (fd, family, kind) = with_sock(so, |x| (x.fd, x.family, x.kind)).expect("live socket");
    let c = Ctx {
        so,
        fd,
        family,
        kind,
    };
    match (level == SOL_SOCKET, set) {
        (true, true) => set_sol(&c, s, name),
        (true, false) => get_sol(&c, s, name),
        (false, set) => proto_opt(&c, s, level, name, set),
    }
}

fn set_sol(c: &Ctx, s: *mut sockopt, name: c_int) -> c_int {
    let so = c.so;
    match name {
        SO_HARNESS_LONG => {
            // SAFETY: the caller passes a valid sockopt.
            if unsafe { (*s).sopt_valsize } > SO_HARNESS_LONG_MAX {
                return fb::EINVAL;
            }
            match copyin(s, SO_HARNESS_LONG_MAX, 0) {
                Ok(b) => {
                    store(c, SOL_SOCKET, SO_HARNESS_LONG, b);
                    0
                }
                Err(e) => e,
            }
        }
        SO_ACCEPTFILTER => {
            // accept_filt_setopt: only listeners; the model has no filters.
            if !listening(so) {
                fb::EINVAL
            } else {
                fb::ENOENT
            }
        }
        SO_LINGER => {
            let b = match copyin(s, LINGER_LEN, LINGER_LEN) {
                Ok(b) => b,
                Err(e) => return e,
            };
            let onoff = c_int::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            let linger = c_int::from_ne_bytes([b[4], b[5], b[6], b[7]]);
            if !(0..=c_int::from(u16::MAX)).contains(&linger) || linger > c_int::MAX / sched::HZ {
                return fb::EDOM;
            }
            mtx_lock(so_lock(so));
            // SAFETY: live socket, SOCK_LOCK held.
            unsafe {
                (*so).so_linger = linger as i16;
                if onoff != 0 {
                    (*so).so_options |= SO_LINGER;
                } else {
                    (*so).so_options &= !SO_LINGER;
                }
            }
            mtx_unlock(so_lock(so));
            // Only the abortive form is forwarded: a lingering Linux close
            // would block the harness thread.
            let l = libc::linger {
                l_onoff: c_int::from(onoff != 0 && linger == 0),
                l_linger: 0,
            };
            // SAFETY: passes a local linger.
            unsafe {
                libc::setsockopt(
                    c.fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&l as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as u32,
                )
            };
            0
        }
        n if SOL_BOOLS.contains(&n) => {
            let v = match copyin_int(s) {
                Ok(v) => v,
                Err(e) => return e,
            };
            mtx_lock(so_lock(so));
            // SAFETY: live socket, SOCK_LOCK held.
            unsafe {
                if v != 0 {
                    (*so).so_options |= n;
                } else {
                    (*so).so_options &= !n;
                }
            }
            mtx_unlock(so_lock(so));
            if let Some(l) = linux_sol_bool(n) {
                linux_set_int(c.fd, libc::SOL_SOCKET, l, c_int::from(v != 0));
            }
            0
        }
        SO_SETFIB => {
            if c.family == AF_LOCAL {
                // uipc_ctloutput: not SOL_LOCAL.
                return fb::EINVAL;
            }
            let v = match copyin_int(s) {
                Ok(v) => v,
                Err(e) => return e,
            };
            // One routing table (rt_numfibs == 1).
            if v != 0 {
                return fb::EINVAL;
            }
            // SAFETY: live socket.
            unsafe { (*so).so_fibnum = v };
            0
        }
        SO_USER_COOKIE => match copyin(s, 4, 4) {
            Ok(b) => {
                // SAFETY: live socket.
                unsafe { (*so).so_user_cookie = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) };
                0
            }
            Err(e) => e,
        },
        SO_SNDBUF | SO_RCVBUF | SO_SNDLOWAT | SO_RCVLOWAT => sbsetopt(c, s, name),
        SO_SNDTIMEO | SO_RCVTIMEO => {
            let b = match copyin(s, TIMEVAL_LEN, TIMEVAL_LEN) {
                Ok(b) => b,
                Err(e) => return e,
            };
            let sec = i64::from_ne_bytes(b[..8].try_into().expect("8 bytes"));
            let usec = i64::from_ne_bytes(b[8..].try_into().expect("8 bytes"));
            if sec < 0 || !(0..1_000_000).contains(&usec) {
                return fb::EDOM;
            }
            let val = sbt_from_tv(sec, usec);
            mtx_lock(so_lock(so));
            // SAFETY: live socket, SOCK_LOCK held.
            unsafe {
                if listening(so) {
                    let q = sol(so);
                    if name == SO_SNDTIMEO {
                        (*q).sol_sbsnd_timeo = val;
                    } else {
                        (*q).sol_sbrcv_timeo = val;
                    }
                } else {
                    let w = if name == SO_SNDTIMEO { SO_SND } else { SO_RCV };
                    (*sb(so, w)).sb_timeo = val;
                }
            }
            mtx_unlock(so_lock(so));
            0
        }
        SO_TS_CLOCK => match copyin_int(s) {
            Ok(v) if (0..=SO_TS_CLOCK_MAX).contains(&v) => {
                // SAFETY: live socket.
                unsafe { (*so).so_ts_clock = v };
                0
            }
            Ok(_) => fb::EINVAL,
            Err(e) => e,
        },
        SO_MAX_PACING_RATE => match copyin(s, 4, 4) {
            Ok(b) => {
                // SAFETY: live socket.
                unsafe { (*so).so_max_pacing_rate = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) };
                0
            }
            Err(e) => e,
        },
        // MAC labels and splicing are not modelled.
        SO_LABEL | SO_SPLICE => fb::EOPNOTSUPP,
        _ => fb::ENOPROTOOPT,
    }
}

/// `sbsetopt()`.
fn sbsetopt(c: &Ctx, s: *mut sockopt, name: c_int) -> c_int {
    let so = c.so;
    let v = match copyin_int(s) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if v < 1 {
        return fb::EINVAL;
    }
    let cc = v as u32;
    let is_snd = name == SO_SNDBUF || name == SO_SNDLOWAT;
    let is_buf = name == SO_SNDBUF || name == SO_RCVBUF;
    mtx_lock(so_lock(so));
    let mut err = 0;
    if listening(so) {
        let q = sol(so);
        // SAFETY: live listening socket, SOCK_LOCK held.
        unsafe {
            let (hi, lo, fl) = if is_snd {
                (
                    &mut (*q).sol_sbsnd_hiwat,
                    &mut (*q).sol_sbsnd_lowat,
                    &mut (*q).sol_sbsnd_flags,
                )
            } else {
                (
                    &mut (*q).sol_sbrcv_hiwat,
                    &mut (*q).sol_sbrcv_lowat,
                    &mut (*q).sol_sbrcv_flags,
                )
            };
            if is_buf {
                if u64::from(cc) > SB_MAX_ADJ {
                    err = fb::ENOBUFS;
                } else {
                    *hi = cc;
                    if *lo > *hi as c_int {
                        *lo = *hi as c_int;
                    }
                    *fl &= !(fbsd_sys::SB_AUTOSIZE as i16);
                }
            } else {
                *lo = cc.min(*hi) as c_int;
            }
        }
    } else {
        let w = if is_snd { SO_SND } else { SO_RCV };
        let m = buf_mtx(so, w);
        mtx_lock(m);
        let b = sb(so, w);
        // SAFETY: live socket, buffer mutex held.
        unsafe {
            if is_buf {
                if u64::from(cc) > SB_MAX_ADJ {
                    err = fb::ENOBUFS;
                } else {
                    (*b).sb_hiwat = cc;
                    (*b).sb_mbmax = (u64::from(cc) * 8).min(SB_MAX) as u32;
                    if (*b).sb_lowat > (*b).sb_hiwat {
                        (*b).sb_lowat = (*b).sb_hiwat;
                    }
                    (*b).sb_flags &= !(fbsd_sys::SB_AUTOSIZE as i16);
                }
            } else {
                (*b).sb_lowat = cc.min((*b).sb_hiwat);
            }
        }
        mtx_unlock(m);
    }
    mtx_unlock(so_lock(so));
    if err == 0 && is_buf {
        let l = if is_snd {
            libc::SO_SNDBUF
        } else {
            libc::SO_RCVBUF
        };
        linux_set_int(c.fd, libc::SOL_SOCKET, l, v);
    }
    err
}

fn get_sol(c: &Ctx, s: *mut sockopt, name: c_int) -> c_int {
    let so = c.so;
    let opts = super::options(so);
    match name {
        SO_HARNESS_LONG => {
            let v = stored(c, SOL_SOCKET, SO_HARNESS_LONG).unwrap_or_else(|| {
                (0..SO_HARNESS_LONG_DEFAULT)
                    .map(|i| (i % 251) as u8)
                    .collect()
            });
            copyout(s, &v)
        }
        SO_ACCEPTFILTER => fb::EINVAL,
        SO_LINGER => {
            let mut b = [0u8; LINGER_LEN];
            b[..4].copy_from_slice(&(opts & SO_LINGER).to_ne_bytes());
            // SAFETY: live socket.
            b[4..].copy_from_slice(&c_int::from(unsafe { (*so).so_linger }).to_ne_bytes());
            copyout(s, &b)
        }
        n if SOL_BOOLS.contains(&n) || n == SO_ACCEPTCONN => out_int(s, opts & n),
        // SAFETY: reads a field of a live socket.
        SO_FIB => out_int(s, unsafe { (*so).so_fibnum }),
        SO_DOMAIN => out_int(s, c.family),
        // SAFETY: reads a field of a live socket.
        SO_TYPE => out_int(s, c_int::from(unsafe { (*so).so_type })),
        SO_PROTOCOL => out_int(s, proto::protocol(c.kind)),
        SO_ERROR => {
            let connection = c.kind.is_stream() || c.kind == Kind::LocalSeqpacket;
            if !connection && so_error(so) == 0 {
                let e = events::take_linux_error(c.fd);
                if e != 0 {
                    set_so_error(so, e);
                }
            }
            mtx_lock(so_lock(so));
            let mut v = c_int::from(so_error(so));
            if v != 0 {
                set_so_error(so, 0);
            } else {
                // SAFETY: live socket, SOCK_LOCK held.
                unsafe {
                    v = c_int::from((*so).so_rerror);
                    (*so).so_rerror = 0;
                }
            }
            mtx_unlock(so_lock(so));
            out_int(s, v)
        }
        SO_SNDBUF | SO_RCVBUF | SO_SNDLOWAT | SO_RCVLOWAT => {
            let v = if listening(so) {
                let q = sol(so);
                // SAFETY: live listening socket.
                unsafe {
                    match name {
                        SO_SNDBUF => (*q).sol_sbsnd_hiwat as c_int,
                        SO_RCVBUF => (*q).sol_sbrcv_hiwat as c_int,
                        SO_SNDLOWAT => (*q).sol_sbsnd_lowat,
                        _ => (*q).sol_sbrcv_lowat,
                    }
                }
            } else {
                let w = if name == SO_SNDBUF || name == SO_SNDLOWAT {
                    SO_SND
                } else {
                    SO_RCV
                };
                let b = sb(so, w);
                // SAFETY: live socket.
                unsafe {
                    if name == SO_SNDBUF || name == SO_RCVBUF {
                        (*b).sb_hiwat as c_int
                    } else {
                        (*b).sb_lowat as c_int
                    }
                }
            };
            out_int(s, v)
        }
        SO_SNDTIMEO | SO_RCVTIMEO => {
            // SAFETY: live socket.
            let t = unsafe {
                if listening(so) {
                    if name == SO_SNDTIMEO {
                        (*sol(so)).sol_sbsnd_timeo
                    } else {
                        (*sol(so)).sol_sbrcv_timeo
                    }
                } else {
                    (*sb(so, if name == SO_SNDTIMEO { SO_SND } else { SO_RCV })).sb_timeo
                }
            };
            copyout(s, &tv_from_sbt(t))
        }
        SO_LISTENQLIMIT | SO_LISTENQLEN | SO_LISTENINCQLEN => {
            let v = if listening(so) {
                let q = sol(so);
                // SAFETY: live listening socket.
                unsafe {
                    match name {
                        SO_LISTENQLIMIT => (*q).sol_qlimit,
                        SO_LISTENQLEN => (*q).sol_qlen,
                        _ => (*q).sol_incqlen,
                    }
                }
            } else {
                0
            };
            out_int(s, v as c_int)
        }
        // SAFETY: reads a field of a live socket.
        SO_TS_CLOCK => out_int(s, unsafe { (*so).so_ts_clock }),
        // SAFETY: reads a field of a live socket.
        SO_MAX_PACING_RATE => out_int(s, unsafe { (*so).so_max_pacing_rate } as c_int),
        SO_SPLICE => copyout(s, &0i64.to_ne_bytes()),
        SO_LABEL | SO_PEERLABEL => fb::EOPNOTSUPP,
        _ => fb::ENOPROTOOPT,
    }
}

/// Protocol-level options (`pr_ctloutput`).
fn proto_opt(c: &Ctx, s: *mut sockopt, level: c_int, name: c_int, set: bool) -> c_int {
    if c.family == AF_LOCAL {
        return local_opt(c, s, level, name, set);
    }
    if c.kind == Kind::Tcp && state(c.so) & SS_ISDISCONNECTED != 0 {
        // tcp_ctloutput: INP_DROPPED.
        return fb::ECONNRESET;
    }
    match (c.kind, level) {
        (Kind::Tcp, IPPROTO_TCP) => tcp_opt(c, s, name, set),
        (Kind::Udp, IPPROTO_UDP) | (Kind::UdpLite, proto::IPPROTO_UDPLITE) => fb::ENOPROTOOPT,
        (_, IPPROTO_IP) if c.family == AF_INET => ip_opt(c, s, name, set),
        (_, IPPROTO_IPV6) if c.family == AF_INET6 => ip6_opt(c, s, name, set),
        // ip_ctloutput / ip6_ctloutput: a level they do not own.
        _ => fb::EINVAL,
    }
}

/// A boolean protocol option stored as 0/1 (`OPTBIT` on get).
fn bool_opt(
    c: &Ctx,
    s: *mut sockopt,
    level: c_int,
    name: c_int,
    set: bool,
    fwd: Option<(c_int, c_int)>,
) -> c_int {
    if set {
        let v = match copyin_int(s) {
            Ok(v) => v,
            Err(e) => return e,
        };
        store_int(c, level, name, c_int::from(v != 0));
        if let Some((l, n)) = fwd {
            linux_set_int(c.fd, l, n, c_int::from(v != 0));
        }
        0
    } else {
        out_int(s, stored_int(c, level, name, 0))
    }
}

/// An int protocol option in `range`, forwarded to Linux, returned as stored.
#[allow(clippy::too_many_arguments)]
fn int_opt(
    c: &Ctx,
    s: *mut sockopt,
    level: c_int,
    name: c_int,
    set: bool,
    range: std::ops::RangeInclusive<c_int>,
    dflt: c_int,
    fwd: Option<(c_int, c_int)>,
) -> c_int {
    if set {
        let v = match copyin_int(s) {
            Ok(v) => v,
            Err(e) => return e,
        };
        if !range.contains(&v) {
            return fb::EINVAL;
        }
        store_int(c, level, name, v);
        if let Some((l, n)) = fwd {
            linux_set_int(c.fd, l, n, v);
        }
        0
    } else {
        out_int(s, stored_int(c, level, name, dflt))
    }
}

/// `IP_MULTICAST_TTL`/`IP_MULTICAST_LOOP`: a `u_char` or an `int`.
fn byte_or_int_opt(
    c: &Ctx,
    s: *mut sockopt,
    name: c_int,
    set: bool,
    dflt: c_int,
    lname: c_int,
) -> c_int {
    // SAFETY: valid sockopt.
    let valsize = unsafe { (*s).sopt_valsize };
    if set {
        let v = if valsize == 1 {
            match copyin(s, 1, 1) {
                Ok(b) => c_int::from(b[0]),
                Err(e) => return e,
            }
        } else {
            match copyin_int(s) {
                Ok(v) => v,
                Err(e) => return e,
            }
        };
        if name == IP_MULTICAST_LOOP && valsize != 1 && !(0..=1).contains(&v) {
            return fb::EINVAL;
        }
        store_int(c, IPPROTO_IP, name, v & 0xff);
        linux_set_int(c.fd, libc::IPPROTO_IP, lname, v & 0xff);
        0
    } else {
        let v = stored_int(c, IPPROTO_IP, name, dflt);
        if valsize == 1 {
            copyout(s, &[v as u8])
        } else {
            out_int(s, v)
        }
    }
}

fn ip_opt(c: &Ctx, s: *mut sockopt, name: c_int, set: bool) -> c_int {
    let ip = IPPROTO_IP;
    match name {
        IP_OPTIONS => {
            if set {
                match copyin(s, 40, 0) {
                    Ok(b) => {
                        linux_set(c.fd, libc::IPPROTO_IP, libc::IP_OPTIONS, &b);
                        store(c, ip, name, b);
                        0
                    }
                    Err(e) => e,
                }
            } else {
                copyout(s, &stored(c, ip, name).unwrap_or_default())
            }
        }
        IP_HDRINCL if c.kind == Kind::Raw => bool_opt(
            c,
            s,
            ip,
            name,
            set,
            Some((libc::IPPROTO_IP, libc::IP_HDRINCL)),
        ),
        IP_TOS => {
            if set {
                let v = match copyin_int(s) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                let mut tos = v & 0xff;
                if c.kind == Kind::Tcp {
                    // tcp_ctloutput_set: the ECN bits belong to TCP.
                    tos &= !0x3;
                }
                store_int(c, ip, name, tos);
                linux_set_int(c.fd, libc::IPPROTO_IP, libc::IP_TOS, tos);
                0
            } else {
                out_int(s, stored_int(c, ip, name, 0))
            }
        }
        IP_TTL => {
            if set {
                let v = match copyin_int(s) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                // inp_ip_ttl is a u_char.
                let ttl = v & 0xff;
                store_int(c, ip, name, ttl);
                if ttl > 0 {
                    linux_set_int(c.fd, libc::IPPROTO_IP, libc::IP_TTL, ttl);
                }
                0
            } else {
                // V_ip_defttl
                out_int(s, stored_int(c, ip, name, 64))
            }
        }
        IP_RECVOPTS | IP_RECVRETOPTS | IP_RECVDSTADDR | IP_RECVIF | IP_ONESBCAST
        | IP_RECVORIGDSTADDR | IP_RECVTTL | IP_DONTFRAG | IP_RECVTOS => {
            bool_opt(c, s, ip, name, set, None)
        }
        IP_BINDANY => {
            // SAFETY: live socket; credentials are live harness objects.
            let uid = unsafe { (*(*c.so).so_cred).cr_uid };
            if set && uid != 0 {
                return fb::EPERM;
            }
            bool_opt(
                c,
                s,
                ip,
                name,
                set,
                Some((libc::IPPROTO_IP, libc::IP_FREEBIND)),
            )
        }
        IP_PORTRANGE => int_opt(c, s, ip, name, set, 0..=2, 0, None),
        IP_MULTICAST_IF => {
            if set {
                match copyin(s, 12, 4) {
                    Ok(b) => {
                        linux_set(c.fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &b);
                        store(c, ip, name, b[..4].to_vec());
                        0
                    }
                    Err(e) => e,
                }
            } else {
                copyout(s, &stored(c, ip, name).unwrap_or_else(|| vec![0; 4]))
            }
        }
        IP_MULTICAST_TTL => byte_or_int_opt(c, s, name, set, 1, libc::IP_MULTICAST_TTL),
        IP_MULTICAST_LOOP => byte_or_int_opt(c, s, name, set, 1, libc::IP_MULTICAST_LOOP),
        IP_ADD_MEMBERSHIP | IP_DROP_MEMBERSHIP if set => match copyin(s, 12, 8) {
            Ok(b) => {
                let l = if name == IP_ADD_MEMBERSHIP {
                    libc::IP_ADD_MEMBERSHIP
                } else {
                    libc::IP_DROP_MEMBERSHIP
                };
                // SAFETY: passes an owned buffer.
                let r = unsafe {
                    libc::setsockopt(c.fd, libc::IPPROTO_IP, l, b.as_ptr().cast(), b.len() as u32)
                };
                if r != 0 {
                    super::errno::last()
                } else {
                    0
                }
            }
            Err(e) => e,
        },
        _ => fb::ENOPROTOOPT,
    }
}

fn ip6_opt(c: &Ctx, s: *mut sockopt, name: c_int, set: bool) -> c_int {
    let l6 = IPPROTO_IPV6;
    match name {
        IPV6_V6ONLY => {
            if set {
                let bound = super::addr::linux_sockname(c.fd, false)
                    .map(|a| super::addr::inet_port(&a) != 0);
                if bound.unwrap_or(false) {
                    return fb::EINVAL;
                }
            }
            if !set {
                return out_int(s, stored_int(c, l6, name, 1));
            }
            bool_opt(
                c,
                s,
                l6,
                name,
                set,
                Some((libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)),
            )
        }
        IPV6_UNICAST_HOPS => int_opt(
            c,
            s,
            l6,
            name,
            set,
            -1..=255,
            -1,
            Some((libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS)),
        ),
        IPV6_TCLASS => int_opt(
            c,
            s,
            l6,
            name,
            set,
            -1..=255,
            0,
            Some((libc::IPPROTO_IPV6, libc::IPV6_TCLASS)),
        ),
        IPV6_MULTICAST_IF => int_opt(
            c,
            s,
            l6,
            name,
            set,
            0..=c_int::MAX,
            0,
            Some((libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF)),
        ),
        IPV6_MULTICAST_HOPS => int_opt(
            c,
            s,
            l6,
            name,
            set,
            -1..=255,
            1,
            Some((libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS)),
        ),
        IPV6_MULTICAST_LOOP => int_opt(
            c,
            s,
            l6,
            name,
            set,
            0..=1,
            1,
            Some((libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP)),
        ),
        IPV6_DONTFRAG | IPV6_RECVPKTINFO | IPV6_RECVHOPLIMIT | IPV6_RECVTCLASS
        | IPV6_AUTOFLOWLABEL | IPV6_BINDANY => bool_opt(c, s, l6, name, set, None),
        IPV6_JOIN_GROUP | IPV6_LEAVE_GROUP if set => match copyin(s, 20, 20) {
            Ok(b) => {
                let l = if name == IPV6_JOIN_GROUP {
                    libc::IPV6_ADD_MEMBERSHIP
                } else {
                    libc::IPV6_DROP_MEMBERSHIP
                };
                // SAFETY: passes an owned buffer.
                let r = unsafe {
                    libc::setsockopt(
                        c.fd,
                        libc::IPPROTO_IPV6,
                        l,
                        b.as_ptr().cast(),
                        b.len() as u32,
                    )
                };
                if r != 0 {
                    super::errno::last()
                } else {
                    0
                }
            }
            Err(e) => e,
        },
        _ => fb::ENOPROTOOPT,
    }
}

fn tcp_opt(c: &Ctx, s: *mut sockopt, name: c_int, set: bool) -> c_int {
    let t = IPPROTO_TCP;
    let flag_of = |n: c_int| match n {
        TCP_NODELAY => TF_NODELAY,
        TCP_NOOPT => TF_NOOPT,
        _ => TF_NOPUSH,
    };
    match name {
        TCP_NODELAY | TCP_NOOPT | TCP_NOPUSH => {
            let flags = stored_int(c, t, 0, 0);
            if set {
                let v = match copyin_int(s) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                let f = flag_of(name);
                store_int(c, t, 0, if v != 0 { flags | f } else { flags & !f });
                match name {
                    TCP_NODELAY => linux_set_int(
                        c.fd,
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        c_int::from(v != 0),
                    ),
                    TCP_NOPUSH => {
                        linux_set_int(c.fd, libc::IPPROTO_TCP, libc::TCP_CORK, c_int::from(v != 0))
                    }
                    _ => {}
                }
                0
            } else {
                // The flag bit itself (t_flags & TF_*).
                out_int(s, flags & flag_of(name))
            }
        }
        TCP_MAXSEG => {
            let connected = state(c.so) & SS_ISCONNECTED != 0;
            // tcp_mssdflt / tcp_v6mssdflt before a connection; lo0's MTU
            // (16384) less headers once connected.
            let dflt = match (connected, c.family == AF_INET6) {
                (false, false) => 536,
                (false, true) => 1220,
                (true, false) => 16384 - 40,
                (true, true) => 16384 - 60,
            };
            let cur = stored_int(c, t, name, dflt);
            if set {
                let v = match copyin_int(s) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                if v > 0 && v <= cur && v + 40 >= TCP_MINMSS {
                    store_int(c, t, name, v);
                    linux_set_int(c.fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG, v);
                    0
                } else {
                    fb::EINVAL
                }
            } else {
                out_int(s, cur)
            }
        }
        TCP_KEEPINIT | TCP_KEEPIDLE | TCP_KEEPINTVL | TCP_KEEPCNT => {
            let (dflt, fwd) = match name {
                TCP_KEEPINIT => (75, None),
                TCP_KEEPIDLE => (7200, Some(libc::TCP_KEEPIDLE)),
                TCP_KEEPINTVL => (75, Some(libc::TCP_KEEPINTVL)),
                _ => (8, Some(libc::TCP_KEEPCNT)),
            };
            if set {
                let v = match copyin_int(s) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                // u_int seconds, scaled by hz without overflow.
                let ui = v as u32;
                if name != TCP_KEEPCNT && ui.checked_mul(sched::HZ as u32).is_none() {
                    return fb::EINVAL;
                }
                store_int(c, t, name, v);
                if let Some(l) = fwd {
                    if v > 0 {
                        linux_set_int(c.fd, libc::IPPROTO_TCP, l, v);
                    }
                }
                0
            } else {
                out_int(s, stored_int(c, t, name, dflt))
            }
        }
        TCP_CONGESTION => {
            if set {
                let b = match copyin(s, TCP_CA_NAME_MAX - 1, 1) {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                let algo = &b[..end];
                if algo != b"newreno" && algo != b"cubic" {
                    return fb::ESRCH;
                }
                store(c, t, name, algo.to_vec());
                0
            } else {
                let mut v = stored(c, t, name).unwrap_or_else(|| b"cubic".to_vec());
                v.resize(TCP_CA_NAME_MAX, 0);
                copyout(s, &v)
            }
        }
        _ => fb::ENOPROTOOPT,
    }
}

fn local_opt(c: &Ctx, s: *mut sockopt, level: c_int, name: c_int, set: bool) -> c_int {
    if level != SOL_LOCAL {
        return fb::EINVAL;
    }
    match name {
        LOCAL_PEERCRED => {
            if set {
                return fb::EOPNOTSUPP;
            }
            if state(c.so) & SS_ISCONNECTED == 0 {
                return fb::ENOTCONN;
            }
            // struct xucred is not modelled.
            fb::EOPNOTSUPP
        }
        LOCAL_CREDS | LOCAL_CREDS_PERSISTENT | LOCAL_CONNWAIT => {
            bool_opt(c, s, level, name, set, None)
        }
        _ => fb::EOPNOTSUPP,
    }
}
