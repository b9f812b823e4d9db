//! Network events → FreeBSD socket state and upcalls.
//!
//! Linux descriptors are watched by an edge-triggered epoll set, so every
//! new arrival (datagram, stream data, FIN, RST, connection) produces one
//! event and a buffer that nobody drains does not keep the loop busy. The
//! event source turns events into what the FreeBSD protocol input paths do:
//! `soisconnected()`, `soisdisconnected()` with `so_error`,
//! `socantrcvmore()`, `sorwakeup()`, `sowwakeup()` and, for listeners,
//! `solisten_clone()` + `solisten_enqueue()` + `solisten_wakeup()`. Upcalls
//! run like `sowakeup()` runs them: buffer mutex held, `M_NOWAIT`, on the
//! netisr thread with `curvnet` = `so_vnet`.

use std::cell::Cell;
use std::ffi::c_int;
use std::ptr::addr_of_mut;
use std::time::{Duration, Instant};

use fbsd_sys::{sb_which, sockbuf, socket, SO_RCV, SO_SND};

use super::errno;
use super::{
    buf_mtx, is_mine, listening, mtx_lock, mtx_owned, mtx_unlock, sb, set_so_error, set_state,
    so_lock, sol, state, with, with_sock, Owner, M_NOWAIT, SBS_CANTRCVMORE, SBS_CANTSENDMORE,
    SB_UPCALL, SS_ISCONNECTED, SS_ISCONNECTING, SS_ISDISCONNECTED, SS_ISDISCONNECTING,
    SU_ISCONNECTED, SU_OK,
};
use crate::kern::klocal::kernel_local;
use crate::kern::{sched, thread as kthread, violation};

/// Longest real-time wait (ms) of the idle hook while a connection is being
/// set up or stream data waits to be sent.
pub const IDLE_ACTIVE_MS: u64 = 200;
/// Longest real-time wait (ms) of the idle hook when sockets exist but no
/// activity is expected.
pub const IDLE_QUIET_MS: u64 = 5;

kernel_local! {
    static IDLE_WAIT: Cell<(u64, u64)> = Cell::new((IDLE_ACTIVE_MS, IDLE_QUIET_MS));
}

/// Sets the idle hook's real-time waits (milliseconds): `active` while a
/// connect or a stream send is in progress, `quiet` otherwise.
pub fn set_idle_wait_ms(active: u64, quiet: u64) {
    IDLE_WAIT.with(|c| c.set((active, quiet)));
}

const EV_MASK: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
const EPOLLIN: u32 = libc::EPOLLIN as u32;
const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
const EPOLLERR: u32 = libc::EPOLLERR as u32;
const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;
const MAX_EVENTS: usize = 64;

/// Registers the event source and the idle hook (once per OS thread).
pub(crate) fn install() {
    sched::add_source(Box::new(source));
    // TODO(integrate): the scheduler has a single idle hook; if another part
    // needs one too, kern::sched must multiplex them.
    sched::set_idle_hook(Some(Box::new(idle)));
}

/// Adds a descriptor to the epoll set, tagged with its socket.
pub(crate) fn register_fd(fd: c_int, so: *mut socket) -> Result<(), c_int> {
    let epfd = with(|i| i.epfd);
    let mut ev = libc::epoll_event {
        events: EV_MASK,
        u64: so as u64,
    };
    // SAFETY: plain syscall on descriptors this module owns.
    let r = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r != 0 {
        return Err(errno::last());
    }
    Ok(())
}

fn epoll_collect(timeout_ms: c_int) -> Vec<(usize, u32)> {
    let epfd = with(|i| i.epfd);
    let mut buf = [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    // SAFETY: `buf` has room for MAX_EVENTS events.
    let n = unsafe { libc::epoll_wait(epfd, buf.as_mut_ptr(), MAX_EVENTS as c_int, timeout_ms) };
    if n <= 0 {
        return Vec::new();
    }
    buf[..n as usize]
        .iter()
        .map(|e| (e.u64 as usize, e.events))
        .collect()
}

/// Waits up to `ms` for network events and queues them for the source.
fn wait_events(ms: u64) -> bool {
    let evs = epoll_collect(ms.min(i32::MAX as u64) as c_int);
    let got = !evs.is_empty();
    with(|i| i.pending_ev.extend(evs));
    got
}

/// The event source: delivers queued and newly arrived events.
fn source() -> bool {
    let mut evs = with(|i| std::mem::take(&mut i.pending_ev));
    evs.extend(epoll_collect(0));
    let mut progress = false;
    for (so, ev) in evs {
        progress |= process_event(so, ev);
    }
    progress | housekeeping()
}

/// The idle hook: blocks in `epoll_wait` for a bounded time.
fn idle(wait: Option<u64>) -> bool {
    let (n, active) = with(|i| {
        let active = i.socks.iter().any(|(&a, s)| {
            !s.zombie
                && (state(a as *mut socket) & SS_ISCONNECTING != 0
                    || !s.pending.is_empty()
                    || s.accept_more)
        });
        (i.socks.len(), active)
    });
    if n == 0 {
        return false;
    }
    let (act, quiet) = IDLE_WAIT.with(Cell::get);
    let cap = if active { act } else { quiet };
    // One model tick is one millisecond (hz = 1000).
    let ms = wait.map_or(cap, |w| w.min(cap));
    wait_events(ms)
}

/// Runs the harness loop for up to `ms` milliseconds of real time, waiting
/// for network events, until `cond` holds. Returns whether it held.
pub(crate) fn pump_until(ms: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_millis(ms);
    loop {
        sched::run_until_idle();
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let left = (deadline - now).as_millis() as u64;
        wait_events(left.clamp(1, 10));
    }
}

pub(crate) fn pump(ms: u64) -> bool {
    let mut any = false;
    pump_until(ms, || {
        any |= with(|i| !i.pending_ev.is_empty());
        false
    });
    any
}

/// Checks that need no event: connects whose edge was missed, listeners
/// whose Linux backlog still holds connections.
fn housekeeping() -> bool {
    let work: Vec<(usize, c_int, bool)> = with(|i| {
        i.socks
            .iter()
            .filter(|(_, s)| !s.zombie)
            .filter_map(|(&a, s)| {
                let so = a as *mut socket;
                if listening(so) {
                    let q = sol(so);
                    // SAFETY: `so` is a live listening socket.
                    let (qlen, qlimit) = unsafe { ((*q).sol_qlen, (*q).sol_qlimit) };
                    (s.accept_more && qlen <= 3 * qlimit / 2).then_some((a, s.fd, true))
                } else if s.kind.is_stream() && state(so) & SS_ISCONNECTING != 0 {
                    Some((a, s.fd, false))
                } else {
                    None
                }
            })
            .collect()
    });
    let mut progress = false;
    for (a, fd, listener) in work {
        let so = a as *mut socket;
        let Some(_ctx) = NetisrCtx::enter(so) else {
            continue;
        };
        if listener {
            progress |= accept_pending(so);
        } else {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one pollfd, zero timeout.
            let r = unsafe { libc::poll(&mut p, 1, 0) };
            if r > 0 && p.revents & (libc::POLLOUT | libc::POLLERR) != 0 {
                complete_connect(so, fd);
                progress = true;
            }
        }
    }
    progress
}

/// Runs event handling as the netisr thread, under the socket's vnet.
/// An upcall starts on the current thread.
fn upcall_enter() {
    let td = kthread::curthread() as usize;
    with(|i| *i.upcall_depth.entry(td).or_default() += 1);
}

/// The upcall of [`upcall_enter`] returned.
fn upcall_leave() {
    let td = kthread::curthread() as usize;
    with(|i| {
        if let Some(d) = i.upcall_depth.get_mut(&td) {
            *d = d.saturating_sub(1);
            if *d == 0 {
                i.upcall_depth.remove(&td);
            }
        }
    });
}

/// The context of network input: the netisr thread, the socket's vnet,
/// inside the network epoch (as FreeBSD's protocol input paths run), with
/// the socket marked busy (FreeBSD holds the inpcb lock there): a
/// `soclose` on another CPU waits until the input is processed.
struct NetisrCtx {
    so: usize,
    td: *mut fbsd_sys::thread,
    vnet: *mut fbsd_sys::vnet,
    epoch: Option<crate::kern::epoch::Section>,
}

impl NetisrCtx {
    /// None if `so` is no longer a live socket of ours.
    fn enter(so: *mut socket) -> Option<NetisrCtx> {
        let a = so as usize;
        let live = with(|i| {
            let live = i.socks.get(&a).is_some_and(|s| !s.zombie && !s.closing);
            if live {
                *i.busy.entry(a).or_default() += 1;
            }
            live
        });
        if !live {
            return None;
        }
        let netisr = with(|i| i.netisr) as *mut fbsd_sys::thread;
        let td = kthread::set_curthread(netisr);
        // SAFETY: `so` is a live harness socket.
        let vnet = kthread::set_curvnet(unsafe { (*so).so_vnet });
        let epoch = Some(crate::kern::epoch::Section::net());
        Some(NetisrCtx {
            so: a,
            td,
            vnet,
            epoch,
        })
    }
}

impl Drop for NetisrCtx {
    fn drop(&mut self) {
        drop(self.epoch.take());
        kthread::set_curvnet(self.vnet);
        kthread::set_curthread(self.td);
        let a = self.so;
        let idle = with(|i| match i.busy.get_mut(&a) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                i.busy.remove(&a);
                true
            }
        });
        if idle && with(|i| i.busy.is_empty()) {
            sched::wakeup_chan(busy_chan(), false);
        }
    }
}

/// The channel `soclose` waits on for input in progress (the address of a
/// static: no other sleeper uses it).
static BUSY_ANCHOR: u8 = 0;
fn busy_chan() -> usize {
    &BUSY_ANCHOR as *const u8 as usize
}

/// `soclose` on a machine: waits while the network thread processes input
/// (FreeBSD's detach takes the inpcb lock the input path holds).
pub(crate) fn wait_input_done(so: *mut socket) {
    if !crate::kern::smp::active() {
        return;
    }
    let me = kthread::curthread() as usize;
    if with(|i| i.netisr) == me {
        return;
    }
    // Any input in progress: processing one socket's input may reach
    // another (a listener's new connection and its first data, an upcall
    // that wakes a peer), so wait for the whole step.
    while with(|i| !i.busy.is_empty()) {
        let td = kthread::curthread();
        sched::sleep_on(busy_chan(), None, "inpcb");
        kthread::set_curthread(td);
    }
    // From now on input no longer reaches the socket (its pcb is going).
    with_sock(so, |s| s.closing = true);
}

/// Takes (and clears) the Linux socket's pending error, FreeBSD-numbered.
pub(crate) fn take_linux_error(fd: c_int) -> c_int {
    let mut v: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `v`/`len` describe a writable int.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return 0;
    }
    errno::linux_to_fbsd(v)
}

/// Bytes the Linux socket holds for reading (`FIONREAD`).
pub(crate) fn linux_avail(fd: c_int) -> u32 {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r != 0 {
        0
    } else {
        n.max(0) as u32
    }
}

/// Mirrors the Linux receive occupancy into `so_rcv`: `sb_acc`/`sb_ccc` get
/// the bytes Linux holds (so inline `sbavail()` reads something sensible),
/// and `sb_mbcnt` is non-zero exactly when something is there to receive,
/// a zero-length datagram included (the kernel charges every queued mbuf to
/// it: `sb_mbcnt == 0` means an empty buffer, which module code may test
/// without calling `soreceive`).
pub(crate) fn sync_rcv_count(so: *mut socket, fd: c_int) {
    if listening(so) {
        return;
    }
    let n = linux_avail(fd);
    let stream = with_sock(so, |s| s.kind.is_stream()).unwrap_or(true);
    let pending = n > 0 || (!stream && linux_record_pending(fd));
    let b = sb(so, SO_RCV);
    // SAFETY: `so` is a live, non-listening socket.
    unsafe {
        (*b).sb_acc = n;
        (*b).sb_ccc = n;
        (*b).sb_mbcnt = if pending { fbsd_sys::MSIZE } else { 0 };
    }
}

/// True when the Linux (datagram) socket holds a record to read even though
/// it holds no bytes (a zero-length datagram).
fn linux_record_pending(fd: c_int) -> bool {
    let mut b = 0u8;
    // SAFETY: peeks at most one byte into a local buffer; the datagram (if
    // any) stays queued.
    let r = unsafe {
        libc::recv(
            fd,
            (&mut b as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_TRUNC,
        )
    };
    r >= 0
}

/// Mirrors the pending-send occupancy into `so_snd`.
pub(crate) fn sync_snd_count(so: *mut socket) {
    if listening(so) {
        return;
    }
    let n = with_sock(so, |s| s.pending.len() as u32).unwrap_or(0);
    let b = sb(so, SO_SND);
    // SAFETY: `so` is a live, non-listening socket.
    unsafe {
        (*b).sb_acc = n;
        (*b).sb_ccc = n;
    }
}

fn process_event(a: usize, ev: u32) -> bool {
    let Some((fd, kind)) = with(|i| {
        i.socks
            .get(&a)
            .filter(|s| !s.zombie)
            .map(|s| (s.fd, s.kind))
    }) else {
        return false;
    };
    let so = a as *mut socket;
    let Some(_ctx) = NetisrCtx::enter(so) else {
        return false;
    };
    if listening(so) {
        if ev & EPOLLIN != 0 {
            with_sock(so, |s| s.accept_more = true);
            accept_pending(so);
        }
        return true;
    }
    let connection = kind.is_stream() || kind == super::Kind::LocalSeqpacket;
    let mut fired_rcv = false;
    if connection && state(so) & SS_ISCONNECTING != 0 {
        if ev & (EPOLLOUT | EPOLLERR | EPOLLHUP) != 0 {
            complete_connect(so, fd);
            fired_rcv = true;
        }
        if state(so) & SS_ISCONNECTED == 0 {
            return true;
        }
    } else if ev & EPOLLERR != 0 {
        let e = take_linux_error(fd);
        if e != 0 {
            set_so_error(so, e);
            if connection && state(so) & SS_ISCONNECTED != 0 {
                // tcp_drop(): so_error, then soisdisconnected().
                soisdisconnected(so);
            } else {
                // udp_notify(): so_error, sorwakeup(), sowwakeup().
                sowakeup(so, SO_RCV);
                sowakeup(so, SO_SND);
            }
            fired_rcv = true;
        }
    }
    if connection && state(so) & SS_ISCONNECTED != 0 {
        if ev & EPOLLHUP != 0 {
            sync_rcv_count(so, fd);
            soisdisconnected(so);
            fired_rcv = true;
        } else if ev & EPOLLRDHUP != 0 && super::sb_state(so, SO_RCV) & SBS_CANTRCVMORE == 0 {
            sync_rcv_count(so, fd);
            socantrcvmore(so);
            fired_rcv = true;
        }
    }
    if ev & EPOLLIN != 0 && !fired_rcv && is_mine(so) && !listening(so) {
        sync_rcv_count(so, fd);
        sowakeup(so, SO_RCV);
    }
    if ev & EPOLLOUT != 0 && kind.is_stream() && is_mine(so) && state(so) & SS_ISCONNECTED != 0 {
        if let Ok(n) = flush(so) {
            if n > 0 {
                sowakeup(so, SO_SND);
            }
        }
    }
    true
}

/// Completes (or fails) a non-blocking connect.
pub(crate) fn complete_connect(so: *mut socket, fd: c_int) {
    if super::ops::deliver_deferred(so) {
        return;
    }
    let e = take_linux_error(fd);
    if e == 0 {
        // Without a peer the connect is still in progress (a spurious edge).
        if let Ok(peer) = super::addr::linux_sockname(fd, true) {
            with_sock(so, |s| s.peer = Some(peer));
            soisconnected(so);
            if is_mine(so) {
                let _ = flush(so);
                sync_snd_count(so);
            }
        }
    } else {
        set_so_error(so, e);
        soisdisconnected(so);
    }
}

/// Sends as much of the pending stream data as Linux takes. Returns the
/// number of bytes sent.
pub(crate) fn flush(so: *mut socket) -> Result<usize, c_int> {
    let r = with_sock(so, |s| {
        let mut total = 0usize;
        while !s.pending.is_empty() {
            // SAFETY: sends from an owned buffer on an owned descriptor.
            let n = unsafe {
                libc::send(
                    s.fd,
                    s.pending.as_ptr().cast(),
                    s.pending.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                match errno::last_linux() {
                    libc::EAGAIN => break,
                    libc::EINTR => continue,
                    e => return Err(errno::linux_to_fbsd(e)),
                }
            }
            s.pending.drain(..n as usize);
            total += n as usize;
        }
        if s.pending.is_empty() && s.wr_shut_deferred {
            s.wr_shut_deferred = false;
            // SAFETY: plain syscall on our descriptor.
            unsafe { libc::shutdown(s.fd, libc::SHUT_WR) };
        }
        Ok(total)
    })
    .unwrap_or(Ok(0));
    sync_snd_count(so);
    r
}

/// Accepts the connections Linux has completed for listener `head` into
/// child sockets on its complete queue, calling the listen upcall for each
/// (`solisten_enqueue` + `solisten_wakeup`). Returns true if any was queued.
pub(crate) fn accept_pending(head: *mut socket) -> bool {
    let mut progress = false;
    loop {
        if !is_mine(head) || !listening(head) {
            break;
        }
        let q = sol(head);
        // SAFETY: `head` is a live listening socket.
        let (qlen, qlimit) = unsafe { ((*q).sol_qlen, (*q).sol_qlimit) };
        if qlen > 3 * qlimit / 2 {
            // solisten_clone() would refuse ("Listen queue overflow"); the
            // connection stays in the Linux backlog until room is made.
            break;
        }
        let Some(fd) = with_sock(head, |s| s.fd) else {
            break;
        };
        // SAFETY: sockaddr_storage is plain data.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: accept4 writes at most `len` bytes into `ss`.
        let c = unsafe {
            libc::accept4(
                fd,
                (&mut ss as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if c < 0 {
            match errno::last_linux() {
                libc::EINTR | libc::ECONNABORTED => continue,
                libc::EAGAIN => {
                    with_sock(head, |s| s.accept_more = false);
                }
                e => {
                    eprintln!("harness: inet: accept4 on listener {head:p} failed: errno {e}");
                    with_sock(head, |s| s.accept_more = false);
                }
            }
            break;
        }
        let peer = super::addr::from_linux(&ss, len);
        let child = super::ops::new_child(head, c, peer);
        if child.is_null() {
            continue;
        }
        enqueue(head, child);
        progress = true;
        solisten_wakeup(head);
    }
    progress
}

/// `solisten_enqueue(so, SS_ISCONNECTED)` for a fresh child.
fn enqueue(head: *mut socket, so: *mut socket) {
    let m = so_lock(head);
    mtx_lock(m);
    let q = sol(head);
    let c = super::conn_part(so);
    // SAFETY: `head` is a live listening socket, `so` a fresh child; the
    // TAILQ operations keep `sol_comp` consistent (TAILQ_INSERT_TAIL).
    unsafe {
        (*so).so_state |= SS_ISCONNECTED;
        (*head).so_count += 1;
        (*c).so_list.tqe_next = std::ptr::null_mut();
        (*c).so_list.tqe_prev = (*q).sol_comp.tqh_last;
        *(*q).sol_comp.tqh_last = so;
        (*q).sol_comp.tqh_last = addr_of_mut!((*c).so_list.tqe_next);
        (*c).so_qstate = fbsd_sys::SQ_COMP;
        (*q).sol_qlen += 1;
    }
    with_sock(head, |s| s.queue.push_back(so as usize));
    mtx_unlock(m);
}

/// Removes `so` from `head`'s complete queue (TAILQ_REMOVE); `head` locked.
pub(crate) fn dequeue_one(head: *mut socket, so: *mut socket) {
    let q = sol(head);
    let c = super::conn_part(so);
    // SAFETY: both sockets are live; `so` is on `head`'s complete queue.
    unsafe {
        let next = (*c).so_list.tqe_next;
        if next.is_null() {
            (*q).sol_comp.tqh_last = (*c).so_list.tqe_prev;
        } else {
            (*super::conn_part(next)).so_list.tqe_prev = (*c).so_list.tqe_prev;
        }
        *(*c).so_list.tqe_prev = next;
        (*c).so_list.tqe_next = std::ptr::null_mut();
        (*c).so_list.tqe_prev = std::ptr::null_mut();
        (*c).so_qstate = fbsd_sys::SQ_NONE;
        (*c).so_listen = std::ptr::null_mut();
        (*q).sol_qlen -= 1;
    }
    with_sock(head, |s| s.queue.retain(|&x| x != so as usize));
}

/// `solisten_wakeup()`: the listen upcall with the listen lock held, then
/// `wakeup_one(&sol_comp)`.
pub(crate) fn solisten_wakeup(head: *mut socket) {
    let m = so_lock(head);
    mtx_lock(m);
    let q = sol(head);
    // SAFETY: `head` is a live listening socket.
    let (f, arg) = unsafe { ((*q).sol_upcall, (*q).sol_upcallarg) };
    if let Some(f) = f {
        upcall_enter();
        // SAFETY: the module registered this upcall for this socket.
        let r = unsafe { f(head, arg, M_NOWAIT) };
        upcall_leave();
        if !is_mine(head) {
            violation(format!("listen upcall of {head:p} closed its socket"));
            return;
        }
        if r != SU_OK {
            violation(format!(
                "listen upcall of {head:p} returned {r} (only SU_OK is meaningful)"
            ));
        }
        if !mtx_owned(m) {
            violation(format!(
                "listen upcall of {head:p} released the listen lock"
            ));
        }
    }
    if mtx_owned(m) {
        mtx_unlock(m);
    }
    // SAFETY: only the address of sol_comp is taken.
    let chan = unsafe { addr_of_mut!((*q).sol_comp) } as usize;
    sched::wakeup_chan(chan, true);
}

/// The wait channel of a buffer (`&sb->sb_acc`, as `sbwait()` sleeps on).
pub(crate) fn sb_chan(so: *mut socket, which: sb_which) -> usize {
    // SAFETY: only computes a field address.
    unsafe { addr_of_mut!((*sb(so, which)).sb_acc) as usize }
}

/// `sorwakeup()` / `sowwakeup()`.
pub(crate) fn sowakeup(so: *mut socket, which: sb_which) {
    sowakeup_with(so, which, |_| {});
}

/// Takes the buffer mutex, applies `f` to the buffer (a state change the
/// caller makes "locked"), wakes sleepers and runs the buffer's upcall
/// exactly as `sowakeup()` does, then unlocks.
pub(crate) fn sowakeup_with(so: *mut socket, which: sb_which, f: impl FnOnce(*mut sockbuf)) {
    if !is_mine(so) || listening(so) {
        return;
    }
    let m = buf_mtx(so, which);
    let held = mtx_owned(m);
    if !held {
        mtx_lock(m);
    }
    let b = sb(so, which);
    f(b);
    sched::wakeup_chan(sb_chan(so, which), false);
    // SAFETY: `so` is a live, non-listening socket; its buffer mutex is held.
    let (flags, up, arg) = unsafe { ((*b).sb_flags, (*b).sb_upcall, (*b).sb_upcallarg) };
    let mut ret = SU_OK;
    if flags & SB_UPCALL != 0 {
        if let Some(fun) = up {
            let what = if which == SO_RCV { "receive" } else { "send" };
            upcall_enter();
            // SAFETY: the module registered this upcall for this buffer.
            ret = unsafe { fun(so, arg, M_NOWAIT) };
            upcall_leave();
            if !is_mine(so) {
                violation(format!("{what} upcall of {so:p} closed its socket"));
                return;
            }
            if !mtx_owned(m) {
                violation(format!(
                    "{what} upcall of {so:p} released the socket-buffer mutex"
                ));
            }
            if ret == SU_ISCONNECTED {
                if which == SO_SND {
                    violation(format!("send upcall of {so:p} returned SU_ISCONNECTED"));
                    ret = SU_OK;
                } else if mtx_owned(m) {
                    // soupcall_clear(so, SO_RCV)
                    // SAFETY: buffer mutex held.
                    unsafe {
                        (*b).sb_upcall = None;
                        (*b).sb_upcallarg = std::ptr::null_mut();
                        (*b).sb_flags &= !SB_UPCALL;
                    }
                }
            } else if ret != SU_OK {
                violation(format!(
                    "{what} upcall of {so:p} returned {ret} (SU_OK or SU_ISCONNECTED expected)"
                ));
            }
        }
    }
    if !held && mtx_owned(m) {
        mtx_unlock(m);
    }
    if ret == SU_ISCONNECTED {
        soisconnected(so);
    }
}

/// `soisconnected()` for a socket not on a listen queue.
pub(crate) fn soisconnected(so: *mut socket) {
    set_state(so, SS_ISCONNECTED, SS_ISCONNECTING | SS_ISDISCONNECTING);
    sowakeup(so, SO_RCV);
    sowakeup(so, SO_SND);
}

/// `soisdisconnected()`.
pub(crate) fn soisdisconnected(so: *mut socket) {
    set_state(
        so,
        SS_ISDISCONNECTED,
        SS_ISCONNECTING | SS_ISCONNECTED | SS_ISDISCONNECTING,
    );
    if listening(so) {
        return;
    }
    socantrcvmore(so);
    // sbdrop(&so->so_snd, sbused(&so->so_snd))
    with_sock(so, |s| s.pending.clear());
    sync_snd_count(so);
    socantsendmore(so);
}

/// `socantrcvmore()`.
pub(crate) fn socantrcvmore(so: *mut socket) {
    // SAFETY: called with the buffer mutex held by sowakeup_with.
    sowakeup_with(so, SO_RCV, |b| unsafe { (*b).sb_state |= SBS_CANTRCVMORE });
}

/// `socantsendmore()`.
pub(crate) fn socantsendmore(so: *mut socket) {
    // SAFETY: called with the buffer mutex held by sowakeup_with.
    sowakeup_with(so, SO_SND, |b| unsafe { (*b).sb_state |= SBS_CANTSENDMORE });
}

/// The upcalls still registered on `so` ("receive", "send", "listen").
pub(crate) fn upcalls_set(so: *mut socket) -> Vec<&'static str> {
    let mut v = Vec::new();
    if listening(so) {
        // SAFETY: `so` is a live listening socket.
        if unsafe { (*sol(so)).sol_upcall }.is_some() {
            v.push("listen");
        }
        return v;
    }
    for (which, name) in [(SO_RCV, "receive"), (SO_SND, "send")] {
        let b = sb(so, which);
        // SAFETY: `so` is a live non-listening socket.
        let (fl, up) = unsafe { ((*b).sb_flags, (*b).sb_upcall) };
        if fl & SB_UPCALL != 0 || up.is_some() {
            v.push(name);
        }
    }
    v
}

/// True for a socket handed to a caller (not waiting on a listen queue).
pub(crate) fn owned_by_caller(so: *mut socket) -> bool {
    with_sock(so, |s| s.owner == Owner::Caller).unwrap_or(false)
}
