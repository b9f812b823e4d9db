//! Socket objects (creation, references, freeing), the state transitions
//! protocols call (`soisconnected`, `soisdisconnected`...) and the bookkeeping
//! of mbufs handed to `pr_send`.

use super::*;

/// `soalloc()`: a zeroed 1024-byte `struct socket` with its locks initialised.
pub(crate) fn soalloc(v: *mut vnet) -> *mut socket {
    let layout = Layout::from_size_align(size_of::<socket>(), SOCKET_ALIGN).expect("socket layout");
    // SAFETY: non-zero size.
    let so = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<socket>();
    if so.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    mtx_init(
        so_lock(so),
        c"socket",
        fbsd_sys::MTX_DEF | fbsd_sys::MTX_DUPOK,
    );
    mtx_init(soeventmtx(so, SO_SND), c"so_snd", fbsd_sys::MTX_DEF);
    mtx_init(soeventmtx(so, SO_RCV), c"so_rcv", fbsd_sys::MTX_DEF);
    sx_init(so_sx(so, SO_SND), c"so_snd_sx");
    sx_init(so_sx(so, SO_RCV), c"so_rcv_sx");
    let gen = with(|s| {
        s.gencnt += 1;
        s.gencnt
    });
    // SAFETY: `so` is fresh and exclusively ours.
    unsafe {
        (*so_snd(so)).sb_sel = ptr::addr_of_mut!((*so).so_wrsel);
        (*so_rcv(so)).sb_sel = ptr::addr_of_mut!((*so).so_rdsel);
        (*so).so_vnet = v;
        (*so).so_gencnt = gen;
    }
    so
}

/// Registers a fresh socket in the table (before pr_attach runs).
pub(crate) fn track(so: *mut socket, family: i32, ty: i32, protocol: i32) -> u64 {
    with(|s| {
        s.serial += 1;
        let serial = s.serial;
        s.sockets.insert(
            so as usize,
            Sock {
                serial,
                family,
                ty,
                protocol,
                dead: false,
                fd: None,
                attached: false,
                last_state: 0,
            },
        );
        serial
    })
}

pub(crate) fn set_attached(so: *mut socket) {
    with(|s| {
        if let Some(k) = s.sockets.get_mut(&(so as usize)) {
            k.attached = true;
        }
    });
}

pub(crate) fn serial_of(so: *mut socket) -> u64 {
    with(|s| s.sockets.get(&(so as usize)).map_or(0, |k| k.serial))
}

/// `sodealloc()`: releases the credential, destroys the locks and frees the
/// memory (poisoned, quarantined, never reused).
pub(crate) fn sodealloc(so: *mut socket) {
    let serial = serial_of(so);
    // SAFETY: `so` is a live harness socket being destroyed.
    unsafe {
        if (*so).so_count != 0 {
            violation(format!(
                "sodealloc: socket #{serial} still has so_count {}",
                (*so).so_count
            ));
        }
        if !(*so).so_pcb.is_null() {
            violation(format!(
                "socket #{serial}: so_pcb is still {:p} when the socket is freed (pr_detach, or a failed \
                 pr_attach, must release the PCB and clear so_pcb)",
                (*so).so_pcb
            ));
        }
        for which in [SO_SND, SO_RCV] {
            let sb = sobuf(so, which);
            if !sbuf::sb_mb(sb).is_null() {
                violation(format!(
                    "socket #{serial}: {} buffer not empty when freed",
                    which_name(which)
                ));
                sbuf::flush_locked(sb);
            }
        }
        let cr = (*so).so_cred;
        if !cr.is_null() {
            if (*cr).cr_ref <= 1 {
                violation(format!(
                    "socket #{serial}: credential {cr:p} over-released (cr_ref {})",
                    (*cr).cr_ref
                ));
            } else {
                (*cr).cr_ref -= 1;
            }
        }
    }
    mtx_destroy(so_lock(so));
    mtx_destroy(soeventmtx(so, SO_SND));
    mtx_destroy(soeventmtx(so, SO_RCV));
    sx_destroy(so_sx(so, SO_SND));
    sx_destroy(so_sx(so, SO_RCV));
    // SAFETY: the whole socket is ours again; poison it so a stale use shows.
    unsafe { malloc::fill_poison(so.cast(), size_of::<socket>()) };
    let fd = with(|s| {
        let k = s.sockets.remove(&(so as usize));
        s.freed.push((so as usize, serial));
        k.and_then(|k| k.fd)
    });
    if let Some(fd) = fd {
        with(|s| s.fds.remove(&fd));
    }
}

/// `sofree()`: the last reference is gone (socket lock held on entry).
pub(super) fn sofree(so: *mut socket) {
    mtx_unlock(so_lock(so));
    // SAFETY: `so` is a live harness socket.
    let dtor = unsafe { (*so).so_dtor };
    if let Some(f) = dtor {
        // SAFETY: a destructor the protocol installed, `void (*)(struct socket *)`.
        call_proto("so_dtor", so, || unsafe { f(so) });
    }
    let attached = with(|s| s.sockets.get(&(so as usize)).is_some_and(|k| k.attached));
    match proto_of(so) {
        Some(pr) => {
            // SAFETY: the live protosw of a registered domain.
            let (detach, flags) = unsafe { ((*pr).pr_detach, i32::from((*pr).pr_flags)) };
            if let (Some(f), true) = (detach, attached) {
                // SAFETY: the protocol's detach method.
                call_proto("pr_detach", so, || unsafe { f(so) });
            }
            if flags & fbsd_sys::PR_SOCKBUF as i32 == 0 {
                sbuf::sbdestroy_impl(so, SO_SND);
                sbuf::sbdestroy_impl(so, SO_RCV);
            }
        }
        None => {
            // The protocol is gone: nothing of it may run. Drop the buffers.
            sbuf::sbdestroy_impl(so, SO_SND);
            sbuf::sbdestroy_impl(so, SO_RCV);
            // SAFETY: clear the dangling PCB pointer so sodealloc does not report it twice.
            unsafe { (*so).so_pcb = null_mut() };
        }
    }
    sodealloc(so);
}

/// `sorele_locked()`: drops a reference with the socket lock held; unlocks.
pub(crate) fn sorele_locked_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "sorele_locked", c) {
        return;
    }
    if !mtx_owned(so_lock(so)) {
        violation(format!(
            "sorele_locked(socket #{}) from {c}: SOCK_LOCK not held",
            serial_of(so)
        ));
        mtx_lock(so_lock(so));
    }
    // SAFETY: `so` is a live harness socket; so_count is protected by SOCK_LOCK.
    let cnt = unsafe { (*so).so_count };
    if cnt == 0 {
        violation(format!(
            "sorele_locked(socket #{}) from {c}: so_count is already 0 (released more often than referenced)",
            serial_of(so)
        ));
        mtx_unlock(so_lock(so));
        return;
    }
    // SAFETY: as above.
    unsafe { (*so).so_count = cnt - 1 };
    if cnt == 1 {
        sofree(so);
    } else {
        mtx_unlock(so_lock(so));
    }
}

pub(super) fn soisconnecting_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "soisconnecting", c) {
        return;
    }
    mtx_lock(so_lock(so));
    // SAFETY: so_state is protected by SOCK_LOCK (held).
    unsafe {
        (*so).so_state &= !(SS_ISCONNECTED | SS_ISDISCONNECTING);
        (*so).so_state |= SS_ISCONNECTING;
    }
    note_state(so);
    mtx_unlock(so_lock(so));
}

pub(crate) fn soisconnected_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "soisconnected", c) {
        return;
    }
    mtx_lock(so_lock(so));
    // SAFETY: as above.
    unsafe {
        (*so).so_state &= !(SS_ISCONNECTING | SS_ISDISCONNECTING);
        (*so).so_state |= SS_ISCONNECTED;
    }
    note_state(so);
    mtx_unlock(so_lock(so));
    // SAFETY: only the address of so_timeo is used as the channel.
    wakeup(unsafe { ptr::addr_of!((*so).so_timeo) } as usize);
    mtx_lock(soeventmtx(so, SO_RCV));
    sbuf::rwakeup_locked(so, c);
    mtx_lock(soeventmtx(so, SO_SND));
    sbuf::wwakeup_locked(so, c);
}

pub(super) fn soisdisconnecting_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "soisdisconnecting", c) {
        return;
    }
    mtx_lock(so_lock(so));
    // SAFETY: as above.
    unsafe {
        (*so).so_state &= !SS_ISCONNECTING;
        (*so).so_state |= SS_ISDISCONNECTING;
    }
    note_state(so);
    mtx_unlock(so_lock(so));
    mtx_lock(soeventmtx(so, SO_RCV));
    sbuf::cantrcvmore_locked(so, c);
    mtx_lock(soeventmtx(so, SO_SND));
    sbuf::cantsendmore_locked(so, c);
    // SAFETY: channel address only.
    wakeup(unsafe { ptr::addr_of!((*so).so_timeo) } as usize);
}

pub(super) fn soisdisconnected_impl(so: *mut socket, c: Caller) {
    if !check_socket(so, "soisdisconnected", c) {
        return;
    }
    mtx_lock(so_lock(so));
    // SAFETY: as above.
    unsafe {
        (*so).so_state &= !(SS_ISCONNECTING | SS_ISCONNECTED | SS_ISDISCONNECTING);
        (*so).so_state |= SS_ISDISCONNECTED;
    }
    note_state(so);
    mtx_unlock(so_lock(so));
    mtx_lock(soeventmtx(so, SO_RCV));
    sbuf::cantrcvmore_locked(so, c);
    mtx_lock(soeventmtx(so, SO_SND));
    sbuf::flush_locked(so_snd(so));
    sbuf::cantsendmore_locked(so, c);
    // SAFETY: channel address only.
    wakeup(unsafe { ptr::addr_of!((*so).so_timeo) } as usize);
}

/// `sodupsockaddr(sa, mflags)`: a `malloc(M_SONAME)` copy.
pub(super) fn sodupsockaddr_impl(sa: *const sockaddr, mflags: c_int, c: Caller) -> *mut sockaddr {
    if sa.is_null() {
        kernel_panic(&format!(
            "sodupsockaddr(NULL) from {c} (Fatal trap 12: page fault while in kernel mode)"
        ));
    }
    // SAFETY: the caller's sockaddr; sa_len bytes are readable.
    let len = usize::from(unsafe { (*sa).sa_len });
    let p = malloc::alloc(
        len,
        malloc::harness_type("soname"),
        mflags,
        1,
        c,
        None,
        "sodupsockaddr",
    );
    if !p.is_null() {
        // SAFETY: `p` has `len` bytes; `sa` has sa_len readable bytes.
        unsafe { ptr::copy_nonoverlapping(sa.cast::<u8>(), p, len) };
    }
    p.cast()
}

pub(super) fn sooptcopyin_impl(
    sopt: *mut sockopt,
    buf: *mut c_void,
    len: usize,
    minlen: usize,
    c: Caller,
) -> c_int {
    if sopt.is_null() || buf.is_null() {
        violation(format!(
            "sooptcopyin({sopt:p}, {buf:p}) from {c}: NULL argument"
        ));
        return EINVAL;
    }
    // SAFETY: the caller's sockopt; sopt_val has sopt_valsize bytes (kernel
    // or, in this process, user memory alike) and `buf` has `len` bytes.
    unsafe {
        let valsize = (*sopt).sopt_valsize;
        if valsize < minlen {
            return EINVAL;
        }
        let n = valsize.min(len);
        if valsize > len {
            (*sopt).sopt_valsize = len;
        }
        if n > 0 {
            if (*sopt).sopt_val.is_null() {
                return fbsd_sys::EFAULT as c_int;
            }
            ptr::copy_nonoverlapping((*sopt).sopt_val.cast::<u8>(), buf.cast::<u8>(), n);
        }
    }
    0
}

pub(super) fn sooptcopyout_impl(
    sopt: *mut sockopt,
    buf: *const c_void,
    len: usize,
    c: Caller,
) -> c_int {
    if sopt.is_null() {
        violation(format!("sooptcopyout(NULL) from {c}"));
        return EINVAL;
    }
    // SAFETY: as in sooptcopyin.
    unsafe {
        let n = (*sopt).sopt_valsize.min(len);
        (*sopt).sopt_valsize = n;
        if !(*sopt).sopt_val.is_null() && n > 0 {
            ptr::copy_nonoverlapping(buf.cast::<u8>(), (*sopt).sopt_val.cast::<u8>(), n);
        }
    }
    0
}

pub(crate) fn add_pending(mbufs: Vec<usize>, what: String) {
    let need_source = with(|s| {
        s.pending.push(Pending { mbufs, what });
        !std::mem::replace(&mut s.source, true)
    });
    if need_source {
        crate::kern::sched::add_idle_check(Box::new(|| {
            if crate::kern::sched::pending_timers() == 0 {
                check_pending();
            }
        }));
    }
}

/// All mbufs queued in the socket buffers of live sockets.
pub(crate) fn buffered_mbufs() -> std::collections::HashSet<usize> {
    let socks: Vec<usize> = with(|s| s.sockets.keys().copied().collect());
    let mut out = std::collections::HashSet::new();
    for so in socks {
        for which in [SO_RCV, SO_SND] {
            sbuf::collect_mbufs(sobuf(so as *mut socket, which), &mut out);
        }
    }
    out
}

/// Checks the deferred H4 entries now (also done whenever the event loop is
/// idle with no timers pending, and at [`check_all`]).
pub fn check_pending() -> Vec<String> {
    let pend = with(|s| std::mem::take(&mut s.pending));
    if pend.is_empty() {
        return Vec::new();
    }
    let held = buffered_mbufs();
    let mut out = Vec::new();
    for p in pend {
        let kept: Vec<usize> = p
            .mbufs
            .iter()
            .copied()
            .filter(|&m| crate::kern::mbuf::is_live(m as *const _) && !held.contains(&m))
            .collect();
        if !kept.is_empty() {
            let msg = format!(
                "{}: returned 0 but {} of the mbuf(s) it was given are still live and owned by nobody once \
                 the system is idle (pr_send must free m and control or pass them on; H4): {:x?}",
                p.what,
                kept.len(),
                kept
            );
            violation(msg.clone());
            out.push(msg);
        }
    }
    out
}
