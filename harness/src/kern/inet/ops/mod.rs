//! `socreate`, `sobind`, `soconnect`, `solisten`, `solisten_dequeue`,
//! `soaccept`, `soclose`, `soshutdown`, `sosockaddr`, `sopeeraddr` and the
//! upcall registration calls.

mod upcalls;

use std::alloc::Layout;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_void};
use std::ptr::{addr_of_mut, null_mut};

use fbsd_sys::{sb_which, sockaddr, socket, thread, ucred, SO_RCV, SO_SND};

use super::addr::{self, AF_INET, AF_INET6, AF_LOCAL};
use super::errno::{self, fb};
use super::events::{self, flush};
use super::ifaddr;
use super::proto::{self, Kind};
use super::{
    buf_mtx, check_no_locks, check_not_in_upcall, default_space, listening, mtx_destroy, mtx_init,
    mtx_lock, mtx_owned, mtx_unlock, sb, set_so_error, set_state, so_error, so_lock, sol, state,
    target, with, with_sock, Owner, Sock, Target, VnetGuard, SB_UPCALL, SOCK_NONBLOCK, SOMAXCONN,
    SO_ACCEPTCONN, SS_ISCONNECTED, SS_ISCONNECTING, SS_ISDISCONNECTED, SS_ISDISCONNECTING, SS_NBIO,
};
use crate::kern::{lock, sched, thread as kthread, violation};

crate::kern::fbsd_consts! {
    c_int: IPPROTO_IP, IPPROTO_IPV6, IP_BINDANY, IPV6_BINDANY;
}
pub use upcalls::*;

const EPOLLERR_SYNTH: u32 = libc::EPOLLERR as u32;

/// Pattern written over freed sockets (malloc's trash pattern).
const TRASH: u32 = 0xdead_c0de;

fn linux_family(family: c_int) -> c_int {
    match family {
        AF_INET => libc::AF_INET,
        AF_INET6 => libc::AF_INET6,
        _ => libc::AF_UNIX,
    }
}

fn linux_type(kind: Kind) -> c_int {
    match kind {
        Kind::Tcp | Kind::LocalStream => libc::SOCK_STREAM,
        Kind::Udp | Kind::UdpLite | Kind::LocalDgram => libc::SOCK_DGRAM,
        Kind::Raw => libc::SOCK_RAW,
        Kind::LocalSeqpacket => libc::SOCK_SEQPACKET,
    }
}

fn linux_protocol(kind: Kind, proto: c_int) -> c_int {
    match kind {
        Kind::Tcp => libc::IPPROTO_TCP,
        Kind::Udp => libc::IPPROTO_UDP,
        Kind::UdpLite => libc::IPPROTO_UDPLITE,
        // FreeBSD's raw protocol 0 receives every protocol; Linux has no
        // equivalent and IPPROTO_RAW is the closest (send-only) choice.
        Kind::Raw if proto == 0 => libc::IPPROTO_RAW,
        Kind::Raw => proto,
        _ => 0,
    }
}

fn cred_uid(td: *mut thread, cred: *mut ucred) -> u32 {
    // SAFETY: thread and credential objects are live harness objects.
    unsafe {
        let c = if !td.is_null() && !(*td).td_ucred.is_null() {
            (*td).td_ucred
        } else {
            cred
        };
        if c.is_null() {
            u32::MAX
        } else {
            (*c).cr_uid
        }
    }
}

fn set_linux_int(fd: c_int, level: c_int, name: c_int, v: c_int) -> c_int {
    // SAFETY: passes a pointer to a local int.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const c_int).cast(),
            std::mem::size_of::<c_int>() as u32,
        )
    }
}

/// Allocates and initialises a `struct socket` (soalloc + soattach +
/// soreserve) for `kind`, referencing `cred`.
fn alloc_socket(family: c_int, kind: Kind, ty: c_int, cred: *mut ucred) -> *mut socket {
    let layout = Layout::new::<socket>();
    // SAFETY: non-zero size. Socket memory is never returned to the host
    // allocator (freed sockets are poisoned and kept) so a use after free is
    // reported instead of silently working.
    let so = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<socket>();
    assert!(!so.is_null(), "harness: out of memory");
    let (snd_hi, rcv_hi) = default_space(kind);
    let flags = proto::flags(kind);
    // SAFETY: `so` is fresh, zeroed and exclusively ours; `cred` is a live
    // credential (checked by the caller).
    unsafe {
        (*so).so_type = ty as i16;
        (*so).so_count = 1;
        (*so).so_proto = proto::protosw_of(family, kind);
        (*so).so_cred = cred;
        (*cred).cr_ref += 1;
        let pr = (*cred).cr_prison;
        (*so).so_vnet = if pr.is_null() {
            kthread::vnet0()
        } else {
            (*pr).pr_vnet
        };
        (*so).so_fibnum = 0;
        let u = addr_of_mut!((*so).__bindgen_anon_1.__bindgen_anon_1);
        (*u).so_rcv.sb_sel = addr_of_mut!((*so).so_rdsel);
        (*u).so_snd.sb_sel = addr_of_mut!((*so).so_wrsel);
        if flags & fbsd_sys::PR_SOCKBUF as c_int == 0 {
            (*u).so_rcv.__bindgen_anon_1.__bindgen_anon_1.sb_mtx = addr_of_mut!((*so).so_rcv_mtx);
            (*u).so_snd.__bindgen_anon_1.__bindgen_anon_1.sb_mtx = addr_of_mut!((*so).so_snd_mtx);
        }
        (*u).so_snd.sb_hiwat = snd_hi;
        (*u).so_rcv.sb_hiwat = rcv_hi;
        (*u).so_snd.sb_mbmax = (u64::from(snd_hi) * 8).min(super::SB_MAX) as u32;
        (*u).so_rcv.sb_mbmax = (u64::from(rcv_hi) * 8).min(super::SB_MAX) as u32;
        (*u).so_rcv.sb_lowat = 1;
        (*u).so_snd.sb_lowat = (fbsd_sys::MCLBYTES).min(snd_hi);
    }
    mtx_init(
        so_lock(so),
        c"socket",
        (fbsd_sys::MTX_DEF | fbsd_sys::MTX_DUPOK) as c_int,
    );
    mtx_init(buf_mtx(so, SO_SND), c"so_snd", fbsd_sys::MTX_DEF as c_int);
    mtx_init(buf_mtx(so, SO_RCV), c"so_rcv", fbsd_sys::MTX_DEF as c_int);
    so
}

fn new_sock(fd: c_int, family: c_int, kind: Kind, owner: Owner) -> Sock {
    let serial = with(|i| {
        i.serial += 1;
        i.serial
    });
    Sock {
        fd,
        family,
        kind,
        owner,
        serial,
        pending: Vec::new(),
        bound: None,
        peer: None,
        queue: VecDeque::new(),
        accept_more: false,
        rd_shut: false,
        wr_shut_deferred: false,
        deferred_err: 0,
        opts: HashMap::new(),
        zombie: false,
        closing: false,
    }
}

/// `socreate(dom, aso, type, proto, cred, td)`.
///
/// # Safety
/// Kernel ABI: pointers as the contract describes.
pub unsafe extern "C" fn socreate(
    dom: c_int,
    aso: *mut *mut socket,
    ty: c_int,
    protocol: c_int,
    cred: *mut ucred,
    td: *mut thread,
) -> c_int {
    if !proto::is_modelled_family(dom) {
        return match super::foreign() {
            // SAFETY: forwarding the caller's arguments unchanged.
            Some(f) => unsafe { (f.socreate)(dom, aso, ty, protocol, cred, td) },
            None => fb::EAFNOSUPPORT,
        };
    }
    lock::assert_may_sleep("socreate");
    check_not_in_upcall("socreate");
    if aso.is_null() {
        violation("socreate: NULL result pointer");
        return fb::EINVAL;
    }
    if td.is_null() {
        violation("socreate: NULL thread (td is used for the fib and capability mode)");
    }
    if cred.is_null() {
        violation("socreate: NULL credential");
        return fb::EINVAL;
    }
    let kind = match proto::find(dom, ty, protocol) {
        Ok(k) => k,
        Err(e) => return e,
    };
    if kind == Kind::Raw {
        // rip_attach(): priv_check(td, PRIV_NETINET_RAW), then the protocol range.
        if cred_uid(td, cred) != 0 {
            return fb::EPERM;
        }
        if !(0..proto::IPPROTO_MAX).contains(&protocol) {
            return fb::EPROTONOSUPPORT;
        }
    }
    // SAFETY: plain syscall.
    let fd = unsafe {
        libc::socket(
            linux_family(dom),
            linux_type(kind) | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            linux_protocol(kind, protocol),
        )
    };
    if fd < 0 {
        let e = errno::last();
        eprintln!("harness: inet: the Linux socket for ({dom}, {ty}, {protocol}) could not be created: errno {e}");
        return e;
    }
    if dom == AF_INET6 {
        // net.inet6.ip6.v6only defaults to 1 on FreeBSD.
        set_linux_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1);
    }
    if !kind.is_stream() && !kind.is_local() {
        // The destination of each datagram, for the M_BCAST / M_MCAST
        // flags ip_input and ip6_input set on what they deliver (io.rs).
        if dom == AF_INET6 {
            set_linux_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1);
        } else {
            set_linux_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
        }
    }
    let so = alloc_socket(dom, kind, ty, cred);
    if !td.is_null() {
        // SAFETY: `td` is a live thread; `so` is ours.
        unsafe {
            let p = (*td).td_proc;
            if !p.is_null() && dom != AF_LOCAL {
                (*so).so_fibnum = (*p).p_fibnum;
            }
        }
    }
    let sock = new_sock(fd, dom, kind, Owner::Caller);
    with(|i| i.socks.insert(so as usize, sock));
    if let Err(e) = events::register_fd(fd, so) {
        destroy(so, true);
        return e;
    }
    // SAFETY: `aso` was checked non-NULL.
    unsafe { *aso = so };
    0
}

/// A child socket for a connection accepted from listener `head`
/// (`solisten_clone()` + `soattach()`), owned by `head`'s queue.
pub(crate) fn new_child(head: *mut socket, fd: c_int, peer: Vec<u8>) -> *mut socket {
    let Some((family, kind, opts)) = with_sock(head, |s| (s.family, s.kind, s.opts.clone())) else {
        // SAFETY: closing the descriptor we were handed.
        unsafe { libc::close(fd) };
        return null_mut();
    };
    // SAFETY: `head` is a live listening socket.
    let (ty, cred) = unsafe { ((*head).so_type, (*head).so_cred) };
    let so = alloc_socket(family, kind, c_int::from(ty), cred);
    let q = sol(head);
    let keep = (fbsd_sys::SO_KEEPALIVE
        | fbsd_sys::SO_DONTROUTE
        | fbsd_sys::SO_LINGER
        | fbsd_sys::SO_OOBINLINE
        | fbsd_sys::SO_NOSIGPIPE) as c_int;
    // SAFETY: `so` is fresh; `head` is live and listening.
    unsafe {
        (*so).so_vnet = (*head).so_vnet;
        (*so).so_fibnum = (*head).so_fibnum;
        (*so).so_options = (*head).so_options & keep;
        (*so).so_linger = (*head).so_linger;
        (*so).so_state = (*head).so_state;
        let u = addr_of_mut!((*so).__bindgen_anon_1.__bindgen_anon_1);
        (*u).so_rcv.sb_hiwat = (*q).sol_sbrcv_hiwat;
        (*u).so_snd.sb_hiwat = (*q).sol_sbsnd_hiwat;
        (*u).so_rcv.sb_lowat = (*q).sol_sbrcv_lowat as u32;
        (*u).so_snd.sb_lowat = (*q).sol_sbsnd_lowat as u32;
        (*u).so_rcv.sb_timeo = (*q).sol_sbrcv_timeo;
        (*u).so_snd.sb_timeo = (*q).sol_sbsnd_timeo;
        (*u).so_rcv.sb_flags = (*q).sol_sbrcv_flags & fbsd_sys::SB_AUTOSIZE as i16;
        (*u).so_snd.sb_flags =
            (*q).sol_sbsnd_flags & (fbsd_sys::SB_AUTOSIZE | fbsd_sys::SB_AUTOLOWAT) as i16;
        (*u).so_listen = head;
    }
    let mut sock = new_sock(fd, family, kind, Owner::Queue(head as usize));
    sock.peer = Some(peer);
    sock.opts = opts;
    with(|i| i.socks.insert(so as usize, sock));
    if let Err(e) = events::register_fd(fd, so) {
        eprintln!("harness: inet: cannot watch an accepted connection: errno {e}");
        destroy(so, true);
        return null_mut();
    }
    so
}

/// Frees a socket: closes its Linux descriptor (`abort`: with an RST, as
/// `soabort` does; otherwise gracefully, after discarding unread data as
/// FreeBSD's `tcp_disconnect` flushes the receive buffer), destroys its
/// mutexes, releases its credential and poisons its memory. Sockets queued
/// on a listener go with it.
pub(crate) fn destroy(so: *mut socket, abort: bool) {
    let Some(s) = with(|i| i.socks.remove(&(so as usize))) else {
        return;
    };
    for child in s.queue.iter() {
        destroy(*child as *mut socket, true);
    }
    if !s.zombie {
        close_linux(&s, abort);
    }
    mtx_destroy(so_lock(so));
    mtx_destroy(buf_mtx(so, SO_RCV));
    mtx_destroy(buf_mtx(so, SO_SND));
    // SAFETY: `so` was allocated by alloc_socket and is no longer
    // registered; its credential reference is released and the memory
    // poisoned (never handed back to the allocator).
    unsafe {
        let cr = (*so).so_cred;
        if !cr.is_null() && (*cr).cr_ref > 0 {
            (*cr).cr_ref -= 1;
        }
        let words = std::mem::size_of::<socket>() / 4;
        let p = so.cast::<u32>();
        for k in 0..words {
            p.add(k).write(TRASH);
        }
    }
    with(|i| {
        i.freed.insert(so as usize);
        i.pending_ev.retain(|e| e.0 != so as usize);
    });
}

fn close_linux(s: &Sock, abort: bool) {
    let fd = s.fd;
    if fd < 0 {
        return;
    }
    if abort {
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: passes a pointer to a local linger.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&l as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as u32,
            )
        };
    } else if s.kind.is_stream() {
        if !s.pending.is_empty() {
            // SAFETY: sends from an owned buffer.
            let n = unsafe {
                libc::send(
                    fd,
                    s.pending.as_ptr().cast(),
                    s.pending.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n < s.pending.len() as isize {
                eprintln!(
                    "harness: inet: {} bytes of unsent stream data dropped at close (FreeBSD would keep sending)",
                    s.pending.len() - n.max(0) as usize
                );
            }
        }
        drain(fd);
    }
    // SAFETY: closing our own descriptor (also removes it from the epoll set).
    unsafe { libc::close(fd) };
}

/// Reads and discards whatever the Linux socket holds.
pub(crate) fn drain(fd: c_int) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reads into a local buffer.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            break;
        }
    }
}

/// `sobind(so, nam, td)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn sobind(so: *mut socket, nam: *mut sockaddr, td: *mut thread) -> c_int {
    match target(so, "sobind") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.sobind)(so, nam, td) },
        Target::Bad => return fb::EBADF,
    }
    let _v = VnetGuard::set(so);
    check_no_locks("sobind");
    check_not_in_upcall("sobind");
    if nam.is_null() {
        violation("sobind: NULL address");
        return fb::EINVAL;
    }
    // SAFETY: the caller passes a readable sockaddr (borrowed).
    let b = unsafe { addr::read_fbsd(nam) };
    let (fd, family, kind) = with_sock(so, |s| (s.fd, s.family, s.kind)).expect("live socket");
    if family == AF_LOCAL {
        let path = match addr::local_path(&b) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if with_sock(so, |s| s.bound.is_some()).unwrap_or(false) {
            return fb::EINVAL;
        }
        let la = match addr::local_to_linux(&path) {
            Ok(a) => a,
            Err(e) => return e,
        };
        // SAFETY: `la` is a valid sockaddr_un.
        if unsafe { libc::bind(fd, la.as_ptr(), la.len) } != 0 {
            return errno::last();
        }
        with_sock(so, |s| s.bound = Some(b));
        return 0;
    }
    if td.is_null() {
        violation("sobind: NULL thread (inet uses td_ucred for the reserved-port check)");
    }
    let la = match addr::inet_to_linux(&b, family) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if kind == Kind::Tcp && family == AF_INET && b[4] & 0xf0 == 0xe0 {
        // tcp_usr_bind: no multicast addresses.
        return fb::EAFNOSUPPORT;
    }
    // in_pcbbind_setup / in6_pcbbind: an address of 127/8 FreeBSD has not
    // configured is not local (Linux takes all of 127/8), unless
    // IP_BINDANY / IPV6_BINDANY is on.
    let v4 = match family {
        AF_INET => Some([b[4], b[5], b[6], b[7]]),
        _ if b[8..18] == [0; 10] && b[18..20] == [0xff; 2] => Some([b[20], b[21], b[22], b[23]]),
        _ => None,
    };
    if v4.is_some_and(ifaddr::unconfigured_loopback4) && !bindany(so) {
        return fb::EADDRNOTAVAIL;
    }
    let port = addr::inet_port(&b);
    let tdp = if td.is_null() {
        kthread::curthread()
    } else {
        td
    };
    // SAFETY: `so` is live.
    let cred = unsafe { (*so).so_cred };
    if kind != Kind::Raw && (1..1024).contains(&port) && cred_uid(tdp, cred) != 0 {
        // in_pcbbind_setup: reserved ports need PRIV_NETINET_RESERVEDPORT.
        return fb::EACCES;
    }
    // SAFETY: `la` is a valid sockaddr.
    if unsafe { libc::bind(fd, la.as_ptr(), la.len) } != 0 {
        return errno::last();
    }
    0
}

/// `INP_BINDANY`: `IP_BINDANY` or `IPV6_BINDANY` is on.
pub(crate) fn bindany(so: *mut socket) -> bool {
    with_sock(so, |s| {
        [(IPPROTO_IP, IP_BINDANY), (IPPROTO_IPV6, IPV6_BINDANY)]
            .iter()
            .any(|k| s.opts.get(k).is_some_and(|v| v.iter().any(|&b| b != 0)))
    })
    .unwrap_or(false)
}

/// `soconnect(so, nam, td)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn soconnect(so: *mut socket, nam: *mut sockaddr, td: *mut thread) -> c_int {
    match target(so, "soconnect") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.soconnect)(so, nam, td) },
        Target::Bad => return fb::EBADF,
    }
    let _v = VnetGuard::set(so);
    check_no_locks("soconnect");
    check_not_in_upcall("soconnect");
    if nam.is_null() {
        violation("soconnect: NULL address");
        return fb::EINVAL;
    }
    // SAFETY: the caller passes a readable sockaddr (borrowed).
    let b = unsafe { addr::read_fbsd(nam) };
    let (fd, family, kind) = with_sock(so, |s| (s.fd, s.family, s.kind)).expect("live socket");
    let flags = proto::flags(kind);
    if state(so) & (SS_ISCONNECTED | SS_ISCONNECTING) != 0
        && (flags & fbsd_sys::PR_CONNREQUIRED as c_int != 0 || sodisconnect(so) != 0)
    {
        return fb::EISCONN;
    }
    set_so_error(so, 0);
    if listening(so) {
        // tcp_usr_connect / uipc_connect refuse a listening socket.
        return fb::EOPNOTSUPP;
    }
    let la = if family == AF_LOCAL {
        match addr::local_path(&b).and_then(|p| addr::local_to_linux(&p)) {
            Ok(a) => a,
            Err(e) => return e,
        }
    } else {
        let a = match addr::inet_to_linux(&b, family) {
            Ok(a) => a,
            Err(e) => return e,
        };
        if kind != Kind::Raw && addr::inet_port(&b) == 0 {
            // in_pcbconnect_setup: no connection to port 0.
            return fb::EADDRNOTAVAIL;
        }
        if kind == Kind::Tcp
            && family == AF_INET
            && (b[4] & 0xf0 == 0xe0 || b[4..8] == [255, 255, 255, 255])
        {
            return fb::EAFNOSUPPORT;
        }
        a
    };
    if kind == Kind::Tcp
        && state(so) & (SS_ISCONNECTING | SS_ISCONNECTED | SS_ISDISCONNECTING | SS_ISDISCONNECTED)
            != 0
    {
        // tcp_connect(): a TCP socket connects once.
        return fb::EISCONN;
    }
    // SAFETY: `la` is a valid sockaddr for the descriptor's family.
    let r = unsafe { libc::connect(fd, la.as_ptr(), la.len) };
    let e = if r == 0 { 0 } else { errno::last_linux() };
    match kind {
        Kind::Tcp => match e {
            0 | libc::EINPROGRESS => {
                // soisconnecting(); completion arrives as a network event.
                set_state(so, SS_ISCONNECTING, SS_ISCONNECTED | SS_ISDISCONNECTING);
                0
            }
            libc::ECONNREFUSED | libc::ETIMEDOUT | libc::ECONNRESET => {
                // FreeBSD learns of these asynchronously: report through
                // so_error and soisdisconnected() from the event loop.
                set_state(so, SS_ISCONNECTING, SS_ISCONNECTED | SS_ISDISCONNECTING);
                with_sock(so, |s| s.deferred_err = errno::linux_to_fbsd(e));
                with(|i| i.pending_ev.push((so as usize, EPOLLERR_SYNTH)));
                0
            }
            _ => errno::linux_to_fbsd(e),
        },
        Kind::LocalStream | Kind::LocalSeqpacket => match e {
            0 => {
                let peer = addr::linux_sockname(fd, true).unwrap_or_else(|_| addr::NONAME.to_vec());
                let peer = super::local_name_fixup(peer);
                with_sock(so, |s| s.peer = Some(peer));
                events::soisconnected(so);
                0
            }
            // The listener's queue is full: sonewconn() fails.
            libc::EAGAIN => fb::ECONNREFUSED,
            _ => errno::linux_to_fbsd(e),
        },
        _ => {
            if e != 0 {
                return errno::linux_to_fbsd(e);
            }
            let peer = if family == AF_LOCAL {
                b
            } else {
                addr::linux_sockname(fd, true).unwrap_or(b)
            };
            with_sock(so, |s| s.peer = Some(peer));
            events::soisconnected(so);
            0
        }
    }
}

/// `sodisconnect()` for the connectionless kinds (`soconnect` of a
/// connected datagram socket disconnects first).
fn sodisconnect(so: *mut socket) -> c_int {
    if state(so) & SS_ISCONNECTED == 0 {
        return fb::ENOTCONN;
    }
    if state(so) & SS_ISDISCONNECTING != 0 {
        return fb::EALREADY;
    }
    let Some(fd) = with_sock(so, |s| s.fd) else {
        return fb::EINVAL;
    };
    // SAFETY: AF_UNSPEC connect dissolves the association.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    ss.ss_family = libc::AF_UNSPEC as libc::sa_family_t;
    // SAFETY: a valid AF_UNSPEC sockaddr.
    unsafe {
        libc::connect(
            fd,
            (&ss as *const libc::sockaddr_storage).cast(),
            std::mem::size_of::<libc::sa_family_t>() as u32,
        )
    };
    with_sock(so, |s| s.peer = None);
    set_state(so, 0, SS_ISCONNECTED);
    0
}

/// `solisten(so, backlog, td)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn solisten(so: *mut socket, backlog: c_int, td: *mut thread) -> c_int {
    match target(so, "solisten") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.solisten)(so, backlog, td) },
        Target::Bad => return fb::EBADF,
    }
    let _v = VnetGuard::set(so);
    check_no_locks("solisten");
    check_not_in_upcall("solisten");
    let (fd, kind, bound) =
        with_sock(so, |s| (s.fd, s.kind, s.bound.is_some())).expect("live socket");
    if !kind.can_listen() {
        return fb::EOPNOTSUPP;
    }
    if state(so) & (SS_ISCONNECTED | SS_ISCONNECTING | SS_ISDISCONNECTING) != 0 {
        return fb::EINVAL;
    }
    if kind.is_local() && !bound {
        // uipc_listen: the socket must be bound (Linux would autobind).
        return fb::EINVAL;
    }
    let backlog = if !(0..=SOMAXCONN).contains(&backlog) {
        SOMAXCONN
    } else {
        backlog
    };
    // SAFETY: plain syscall.
    if unsafe { libc::listen(fd, backlog) } != 0 {
        return errno::last();
    }
    let lk = so_lock(so);
    mtx_lock(lk);
    if listening(so) {
        // SAFETY: listening socket, lock held.
        unsafe { (*sol(so)).sol_qlimit = backlog as u32 };
        mtx_unlock(lk);
        return 0;
    }
    let had = events::upcalls_set(so);
    if !had.is_empty() {
        eprintln!("harness: inet: solisten on {so:p} drops its {had:?} upcall(s) (H20)");
    }
    mtx_lock(buf_mtx(so, SO_SND));
    mtx_lock(buf_mtx(so, SO_RCV));
    // solisten_proto(): save the buffer parameters, destroy both buffers
    // (the union now holds the listen fields), set SO_ACCEPTCONN.
    // SAFETY: `so` is live, not listening, and all its locks are held.
    unsafe {
        let r = sb(so, SO_RCV);
        let s = sb(so, SO_SND);
        let saved = (
            (*r).sb_lowat,
            (*s).sb_lowat,
            (*r).sb_hiwat,
            (*s).sb_hiwat,
            (*r).sb_flags,
            (*s).sb_flags,
            (*r).sb_timeo,
            (*s).sb_timeo,
        );
        let start = r.cast::<u8>();
        let end = so.cast::<u8>().add(std::mem::size_of::<socket>());
        std::ptr::write_bytes(start, 0, end as usize - start as usize);
        let q = sol(so);
        (*q).sol_sbrcv_lowat = saved.0 as c_int;
        (*q).sol_sbsnd_lowat = saved.1 as c_int;
        (*q).sol_sbrcv_hiwat = saved.2;
        (*q).sol_sbsnd_hiwat = saved.3;
        (*q).sol_sbrcv_flags = saved.4;
        (*q).sol_sbsnd_flags = saved.5;
        (*q).sol_sbrcv_timeo = saved.6;
        (*q).sol_sbsnd_timeo = saved.7;
        (*q).sol_incomp.tqh_first = null_mut();
        (*q).sol_incomp.tqh_last = addr_of_mut!((*q).sol_incomp.tqh_first);
        (*q).sol_comp.tqh_first = null_mut();
        (*q).sol_comp.tqh_last = addr_of_mut!((*q).sol_comp.tqh_first);
        (*q).sol_upcall = None;
        (*q).sol_upcallarg = null_mut();
        (*q).sol_qlimit = backlog as u32;
        (*so).so_options |= SO_ACCEPTCONN;
    }
    with_sock(so, |s| {
        s.pending.clear();
        s.accept_more = true;
    });
    mtx_unlock(buf_mtx(so, SO_SND));
    mtx_unlock(buf_mtx(so, SO_RCV));
    mtx_unlock(lk);
    0
}

/// `solisten_dequeue(head, ret, flags)`: entered with the listen lock held,
/// returns with it released on every path.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn solisten_dequeue(
    head: *mut socket,
    ret: *mut *mut socket,
    flags: c_int,
) -> c_int {
    match target(head, "solisten_dequeue") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.solisten_dequeue)(head, ret, flags) },
        Target::Bad => return fb::EBADF,
    }
    check_not_in_upcall("solisten_dequeue");
    let lk = so_lock(head);
    if !mtx_owned(lk) {
        violation(format!(
            "solisten_dequeue({head:p}): listen lock not held on entry (H21)"
        ));
        mtx_lock(lk);
    }
    if !listening(head) {
        violation(format!(
            "solisten_dequeue({head:p}): socket is not listening"
        ));
        mtx_unlock(lk);
        return fb::EINVAL;
    }
    if ret.is_null() {
        violation("solisten_dequeue: NULL result pointer");
        mtx_unlock(lk);
        return fb::EINVAL;
    }
    let q = sol(head);
    // SAFETY: only the address of sol_comp is taken.
    let chan = unsafe { addr_of_mut!((*q).sol_comp) } as usize;
    let empty = || with_sock(head, |s| s.queue.is_empty()).unwrap_or(true);
    while state(head) & SS_NBIO == 0 && empty() && so_error(head) == 0 {
        // msleep(&head->sol_comp, SOCK_MTX(head), PSOCK | PCATCH, "accept", 0):
        // the release and the sleep are one step (no wakeup slips in).
        lock::release_for_sleep(lk);
        lock::assert_may_sleep("solisten_dequeue");
        let td = kthread::curthread();
        let r = sched::sleep_on(chan, None, "accept");
        kthread::set_curthread(td);
        if r != 0 {
            return r;
        }
        if !super::is_mine(head) || !listening(head) {
            return fb::ECONNABORTED;
        }
        mtx_lock(lk);
    }
    let e = so_error(head);
    if e != 0 {
        set_so_error(head, 0);
        mtx_unlock(lk);
        return c_int::from(e);
    }
    if empty() {
        mtx_unlock(lk);
        return fb::EWOULDBLOCK;
    }
    let so = with_sock(head, |s| s.queue.front().copied())
        .flatten()
        .expect("queued socket") as *mut socket;
    mtx_lock(so_lock(so));
    events::dequeue_one(head, so);
    let nb = if flags & super::ACCEPT4_INHERIT != 0 {
        state(head) & SS_NBIO
    } else if flags & SOCK_NONBLOCK != 0 {
        SS_NBIO
    } else {
        0
    };
    // SAFETY: both sockets are live and locked.
    unsafe {
        (*so).so_state |= nb;
        (*head).so_count -= 1;
    }
    mtx_unlock(so_lock(so));
    with_sock(so, |s| s.owner = Owner::Caller);
    mtx_unlock(lk);
    // SAFETY: `ret` was checked non-NULL.
    unsafe { *ret = so };
    0
}

/// Writes a FreeBSD sockaddr into caller storage whose `sa_len` is preset
/// to its size (never more than that, H24).
fn write_sockaddr(sa: *mut sockaddr, bytes: &[u8], what: &str) {
    // SAFETY: the caller's storage starts with the preset length byte.
    let room = usize::from(unsafe { (*sa).sa_len });
    if room < bytes.len() {
        violation(format!(
            "{what}: sockaddr storage has sa_len {room}, the {}-byte address does not fit (the kernel would overflow it)",
            bytes.len()
        ));
    }
    let n = bytes.len().min(room);
    // SAFETY: at most `room` bytes, which the caller declared writable.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), sa.cast::<u8>(), n) };
}

/// `soaccept(so, sa)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn soaccept(so: *mut socket, sa: *mut sockaddr) -> c_int {
    match target(so, "soaccept") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.soaccept)(so, sa) },
        Target::Bad => return fb::EBADF,
    }
    let _v = VnetGuard::set(so);
    check_no_locks("soaccept");
    if !events::owned_by_caller(so) {
        violation(format!(
            "soaccept({so:p}): socket is still on a listen queue (use solisten_dequeue first)"
        ));
    }
    if sa.is_null() {
        violation("soaccept: NULL address storage");
        return fb::EINVAL;
    }
    let (fd, kind, peer) = with_sock(so, |s| (s.fd, s.kind, s.peer.clone())).expect("live socket");
    let bytes = match kind {
        Kind::Tcp => {
            if state(so) & SS_ISDISCONNECTED != 0 {
                return fb::ECONNABORTED;
            }
            match peer {
                Some(p) => p,
                None => match addr::linux_sockname(fd, true) {
                    Ok(p) => p,
                    Err(_) => return fb::ECONNABORTED,
                },
            }
        }
        Kind::LocalStream | Kind::LocalSeqpacket => super::local_name_fixup(
            addr::linux_sockname(fd, true).unwrap_or_else(|_| addr::NONAME.to_vec()),
        ),
        _ => return fb::EOPNOTSUPP,
    };
    write_sockaddr(sa, &bytes, "soaccept");
    0
}

/// `sosockaddr(so, sa)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn sosockaddr(so: *mut socket, sa: *mut sockaddr) -> c_int {
    match target(so, "sosockaddr") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.sosockaddr)(so, sa) },
        Target::Bad => return fb::EBADF,
    }
    let _v = VnetGuard::set(so);
    check_no_locks("sosockaddr");
    if sa.is_null() {
        violation("sosockaddr: NULL address storage");
        return fb::EINVAL;
    }
    let (fd, family, bound) =
        with_sock(so, |s| (s.fd, s.family, s.bound.clone())).expect("live socket");
    let bytes = if family == AF_LOCAL {
        bound.unwrap_or_else(|| addr::NONAME.to_vec())
    } else {
        addr::linux_sockname(fd, false).unwrap_or_else(|_| addr::zero_addr(family))
    };
    write_sockaddr(sa, &bytes, "sosockaddr");
    0
}

/// `sopeeraddr(so, sa)`: like `in_getpeeraddr()` / `uipc_peeraddr()`, an
/// unconnected socket yields the all-zero (or unnamed) address and 0.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn sopeeraddr(so: *mut socket, sa: *mut sockaddr) -> c_int {
    match target(so, "sopeeraddr") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.sopeeraddr)(so, sa) },
        Target::Bad => return fb::EBADF,
    }
    if kthread::curvnet().is_null() {
        violation(format!(
            "sopeeraddr({so:p}): called without a current vnet (CURVNET_ASSERT_SET, H24)"
        ));
    }
    check_no_locks("sopeeraddr");
    if sa.is_null() {
        violation("sopeeraddr: NULL address storage");
        return fb::EINVAL;
    }
    let (fd, family, kind, peer) =
        with_sock(so, |s| (s.fd, s.family, s.kind, s.peer.clone())).expect("live socket");
    let st = state(so);
    let bytes = if family == AF_LOCAL {
        if st & SS_ISCONNECTED != 0 {
            super::local_name_fixup(
                addr::linux_sockname(fd, true).unwrap_or_else(|_| addr::NONAME.to_vec()),
            )
        } else {
            addr::NONAME.to_vec()
        }
    } else if st & SS_ISCONNECTED != 0 || (kind == Kind::Tcp && st & SS_ISDISCONNECTED != 0) {
        addr::linux_sockname(fd, true)
            .ok()
            .or(peer)
            .unwrap_or_else(|| addr::zero_addr(family))
    } else {
        addr::zero_addr(family)
    };
    write_sockaddr(sa, &bytes, "sopeeraddr");
    0
}

/// `soshutdown(so, how)`.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn soshutdown(so: *mut socket, how: fbsd_sys::shutdown_how) -> c_int {
    match target(so, "soshutdown") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.soshutdown)(so, how) },
        Target::Bad => return fb::EBADF,
    }
    let _v = VnetGuard::set(so);
    check_no_locks("soshutdown");
    check_not_in_upcall("soshutdown");
    if how > fbsd_sys::SHUT_RDWR {
        return fb::EINVAL;
    }
    if listening(so) {
        return fb::ENOTCONN;
    }
    let (fd, kind) = with_sock(so, |s| (s.fd, s.kind)).expect("live socket");
    let st = state(so);
    let connection = kind.is_stream() || kind == Kind::LocalSeqpacket;
    let err = if connection {
        if st & (SS_ISCONNECTED | SS_ISCONNECTING | SS_ISDISCONNECTING) == 0 {
            return fb::ENOTCONN;
        }
        0
    } else if st & SS_ISCONNECTED == 0 {
        // udp_shutdown: ENOTCONN, but the buffers are still shut.
        fb::ENOTCONN
    } else {
        0
    };
    let rd = how != fbsd_sys::SHUT_WR;
    let wr = how != fbsd_sys::SHUT_RD;
    if rd {
        // SAFETY: plain syscall.
        unsafe { libc::shutdown(fd, libc::SHUT_RD) };
        with_sock(so, |s| s.rd_shut = true);
        drain(fd);
        events::sync_rcv_count(so, fd);
        events::socantrcvmore(so);
    }
    if wr {
        let pending = with_sock(so, |s| !s.pending.is_empty()).unwrap_or(false);
        if pending {
            let _ = flush(so);
        }
        let still = with_sock(so, |s| {
            if s.pending.is_empty() {
                false
            } else {
                s.wr_shut_deferred = true;
                true
            }
        })
        .unwrap_or(false);
        if !still {
            // SAFETY: plain syscall.
            unsafe { libc::shutdown(fd, libc::SHUT_WR) };
        }
        events::socantsendmore(so);
    }
    err
}

/// `soclose(so)`: consumes the caller's reference, even on error.
///
/// # Safety
/// Kernel ABI.
pub unsafe extern "C" fn soclose(so: *mut socket) -> c_int {
    match target(so, "soclose") {
        Target::Mine => {}
        // SAFETY: forwarding unchanged.
        Target::Foreign(f) => return unsafe { (f.soclose)(so) },
        Target::Bad => return 0,
    }
    let _v = VnetGuard::set(so);
    lock::assert_no_locks_for_sleep("soclose");
    events::wait_input_done(so);
    // soclose sleeps only to linger (SO_LINGER on a connected socket);
    // FreeBSD's own ng_ksocket closes inside the network epoch otherwise.
    // SAFETY: `so` is a live harness socket.
    let linger =
        unsafe { (*so).so_options & fbsd_sys::SO_LINGER as i32 != 0 && (*so).so_linger > 0 };
    if linger && state(so) & fbsd_sys::SS_ISCONNECTED as i16 != 0 {
        crate::kern::epoch::assert_not_in_epoch("soclose (SO_LINGER)");
    }
    check_not_in_upcall("soclose");
    if let Some(Owner::Queue(h)) = with_sock(so, |s| s.owner) {
        violation(format!(
            "soclose({so:p}): the socket is still on listen queue {h:#x} (not the caller's)"
        ));
        let head = h as *mut socket;
        mtx_lock(so_lock(head));
        events::dequeue_one(head, so);
        // SAFETY: `head` is live.
        unsafe { (*head).so_count -= 1 };
        mtx_unlock(so_lock(head));
        with_sock(so, |s| s.owner = Owner::Caller);
    }
    let set = events::upcalls_set(so);
    if !set.is_empty() {
        violation(format!(
            "soclose({so:p}): {} upcall(s) still registered; clear them before soclose (H23)",
            set.join(" and ")
        ));
        clear_upcalls(so);
    }
    if listening(so) {
        // Abort every queued connection (soabort) and drop their head refs.
        let children = with_sock(so, |s| std::mem::take(&mut s.queue)).unwrap_or_default();
        for c in children {
            let c = c as *mut socket;
            // SAFETY: `so` is live and listening.
            unsafe {
                (*sol(so)).sol_qlen -= 1;
                (*so).so_count -= 1;
            }
            destroy(c, true);
        }
    } else if state(so) & SS_ISCONNECTED != 0 && state(so) & SS_ISDISCONNECTING == 0 {
        set_state(so, SS_ISDISCONNECTING, SS_ISCONNECTING);
    }
    // SAFETY: `so` is live.
    let left = unsafe {
        (*so).so_count = (*so).so_count.saturating_sub(1);
        (*so).so_count
    };
    if left != 0 {
        violation(format!(
            "soclose({so:p}): so_count is {left} after dropping the caller's reference (extra soref?)"
        ));
        if let Some(s) = with(|i| {
            i.socks.get_mut(&(so as usize)).map(|s| {
                s.zombie = true;
                (s.fd, s.kind, std::mem::take(&mut s.pending))
            })
        }) {
            let tmp = Sock {
                fd: s.0,
                kind: s.1,
                pending: s.2,
                ..new_sock(-1, AF_INET, s.1, Owner::Caller)
            };
            close_linux(&tmp, false);
        }
        return 0;
    }
    destroy(so, false);
    0
}
