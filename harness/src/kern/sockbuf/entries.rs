//! The exported socket-buffer functions and the Rust API for tests and
//! diagnostics.

use super::*;

/// `sbappendrecord[_locked](sb, m0)`.
pub(super) fn appendrecord(sb: *mut sockbuf, m0: *mut mbuf, lock: Locking, what: &str, c: Caller) {
    on_sockbuf(sb, lock, what, c, (), || {
        if chain_ok(m0, what, c, false) {
            append_record(sb, m0);
        }
    });
}

/// `sbappend[_locked](sb, m, flags)`.
pub(super) fn append_chain(
    sb: *mut sockbuf,
    m: *mut mbuf,
    fl: c_int,
    lock: Locking,
    what: &str,
    c: Caller,
) {
    on_sockbuf(sb, lock, what, c, (), || {
        if chain_ok(m, what, c, false) {
            append(sb, m, fl);
        }
    });
}

kernel_functions! {
    /// `int sbappendaddr_locked(struct sockbuf *, const struct sockaddr *, struct mbuf *, struct mbuf *)`
    fn sbappendaddr_locked(
        sb: *mut sockbuf,
        asa: *const sockaddr,
        m0: *mut mbuf,
        control: *mut mbuf,
    ) -> c_int [c] {
        let what = "sbappendaddr_locked";
        on_sockbuf(sb, Locking::Held, what, c, 0, || {
            append_addr(sb, asa, m0, control, true, what, c)
        })
    }

    /// `int sbappendaddr_nospacecheck_locked(struct sockbuf *, const struct sockaddr *,
    /// struct mbuf *, struct mbuf *)`
    fn sbappendaddr_nospacecheck_locked(
        sb: *mut sockbuf,
        asa: *const sockaddr,
        m0: *mut mbuf,
        control: *mut mbuf,
    ) -> c_int [c] {
        let what = "sbappendaddr_nospacecheck_locked";
        on_sockbuf(sb, Locking::Held, what, c, 0, || {
            append_addr(sb, asa, m0, control, false, what, c)
        })
    }

    /// `int sbappendaddr(struct sockbuf *, const struct sockaddr *, struct mbuf *, struct mbuf *)`
    fn sbappendaddr(
        sb: *mut sockbuf,
        asa: *const sockaddr,
        m0: *mut mbuf,
        control: *mut mbuf,
    ) -> c_int [c] {
        let what = "sbappendaddr";
        on_sockbuf(sb, Locking::Take, what, c, 0, || {
            append_addr(sb, asa, m0, control, true, what, c)
        })
    }

    /// `void sbappendrecord_locked(struct sockbuf *, struct mbuf *)`
    fn sbappendrecord_locked(sb: *mut sockbuf, m0: *mut mbuf) [c] {
        appendrecord(sb, m0, Locking::Held, "sbappendrecord_locked", c);
    }

    /// `void sbappendrecord(struct sockbuf *, struct mbuf *)`
    fn sbappendrecord(sb: *mut sockbuf, m0: *mut mbuf) [c] {
        appendrecord(sb, m0, Locking::Take, "sbappendrecord", c);
    }

    /// `void sbappend_locked(struct sockbuf *, struct mbuf *, int flags)`
    fn sbappend_locked(sb: *mut sockbuf, m: *mut mbuf, fl: c_int) [c] {
        append_chain(sb, m, fl, Locking::Held, "sbappend_locked", c);
    }

    /// `void sbappend(struct sockbuf *, struct mbuf *, int flags)`
    fn sbappend(sb: *mut sockbuf, m: *mut mbuf, fl: c_int) [c] {
        append_chain(sb, m, fl, Locking::Take, "sbappend", c);
    }

    /// `void sbflush_locked(struct sockbuf *)`
    fn sbflush_locked(sb: *mut sockbuf) [c] {
        on_sockbuf(sb, Locking::Held, "sbflush_locked", c, (), || flush_locked(sb));
    }

    /// `void sbflush(struct sockbuf *)`
    fn sbflush(sb: *mut sockbuf) [c] {
        on_sockbuf(sb, Locking::Take, "sbflush", c, (), || flush_locked(sb));
    }

    /// `void sbdroprecord_locked(struct sockbuf *)`
    fn sbdroprecord_locked(sb: *mut sockbuf) [c] {
        on_sockbuf(sb, Locking::Held, "sbdroprecord_locked", c, (), || droprecord_locked(sb));
    }

    /// `void sbdroprecord(struct sockbuf *)`
    fn sbdroprecord(sb: *mut sockbuf) [c] {
        on_sockbuf(sb, Locking::Take, "sbdroprecord", c, (), || droprecord_locked(sb));
    }

    /// `bool sbreserve_locked(struct socket *, sb_which, u_long, struct thread *)`
    fn sbreserve_locked(
        so: *mut socket,
        which: sb_which,
        cc: u_long,
        _td: *mut thread,
    ) -> bool [c] {
        let what = "sbreserve_locked";
        on_socket_buf(so, which, Locking::Held, what, c, false, || reserve_locked(so, which, cc))
    }

    /// `void sbrelease_locked(struct socket *, sb_which)`
    fn sbrelease_locked(so: *mut socket, which: sb_which) [c] {
        let what = "sbrelease_locked";
        on_socket_buf(so, which, Locking::Held, what, c, (), || release_locked(so, which));
    }

    /// `void sbrelease(struct socket *, sb_which)`
    fn sbrelease(so: *mut socket, which: sb_which) [c] {
        on_socket_buf(so, which, Locking::Take, "sbrelease", c, (), || release_locked(so, which));
    }

    /// `void sbdestroy(struct socket *, sb_which)`
    fn sbdestroy(so: *mut socket, which: sb_which) [c] {
        if check_socket(so, "sbdestroy", c) {
            sbdestroy_impl(so, which);
        }
    }

    /// `void sballoc(struct sockbuf *, struct mbuf *)`
    fn sballoc(sb: *mut sockbuf, m: *mut mbuf) [c] {
        let Some((so, which)) = check_sockbuf(sb, "sballoc", c) else {
            return;
        };
        assert_locked(so, which, "sballoc", c);
        if kmbuf::is_live(m) {
            // SAFETY: live buffer (locked) and live mbuf.
            unsafe { sballoc(sb, m) };
        } else {
            violation(format!("sballoc from {c}: mbuf {m:p} is not live"));
        }
    }

    /// `void sbfree(struct sockbuf *, struct mbuf *)`
    fn sbfree(sb: *mut sockbuf, m: *mut mbuf) [c] {
        let Some(_) = check_sockbuf(sb, "sbfree", c) else {
            return;
        };
        if kmbuf::is_live(m) {
            // SAFETY: live buffer and live mbuf.
            unsafe { sbfree(sb, m) };
        } else {
            violation(format!("sbfree from {c}: mbuf {m:p} is not live"));
        }
    }

    /// `void sorwakeup_locked(struct socket *)`
    fn sorwakeup_locked(so: *mut socket) [c] {
        if check_socket(so, "sorwakeup_locked", c) {
            rwakeup_locked(so, c);
        }
    }

    /// `void sowwakeup_locked(struct socket *)`
    fn sowwakeup_locked(so: *mut socket) [c] {
        if check_socket(so, "sowwakeup_locked", c) {
            wwakeup_locked(so, c);
        }
    }

    /// `void soroverflow_locked(struct socket *)`
    fn soroverflow_locked(so: *mut socket) [c] {
        if check_socket(so, "soroverflow_locked", c) {
            overflow_locked(so, c);
        }
    }

    /// `void soroverflow(struct socket *)`
    fn soroverflow(so: *mut socket) [c] {
        if check_socket(so, "soroverflow", c) {
            mtx_lock(soeventmtx(so, SO_RCV));
            overflow_locked(so, c);
        }
    }

    /// `void socantsendmore_locked(struct socket *)`
    fn socantsendmore_locked(so: *mut socket) [c] {
        if check_socket(so, "socantsendmore_locked", c) {
            cantsendmore_locked(so, c);
            note_state(so);
        }
    }

    /// `void socantsendmore(struct socket *)`
    fn socantsendmore(so: *mut socket) [c] {
        if check_socket(so, "socantsendmore", c) {
            mtx_lock(soeventmtx(so, SO_SND));
            cantsendmore_locked(so, c);
        }
    }

    /// `void socantrcvmore_locked(struct socket *)`
    fn socantrcvmore_locked(so: *mut socket) [c] {
        if check_socket(so, "socantrcvmore_locked", c) {
            cantrcvmore_locked(so, c);
        }
    }

    /// `void socantrcvmore(struct socket *)`
    fn socantrcvmore(so: *mut socket) [c] {
        if check_socket(so, "socantrcvmore", c) {
            mtx_lock(soeventmtx(so, SO_RCV));
            cantrcvmore_locked(so, c);
        }
    }

    /// `int soreserve(struct socket *, u_long sndcc, u_long rcvcc)`
    fn soreserve(so: *mut socket, sndcc: u_long, rcvcc: u_long) -> c_int [c] {
        soreserve_impl(so, sndcc, rcvcc, c)
    }

    /// `int sbsetopt(struct socket *, struct sockopt *)`
    fn sbsetopt(so: *mut socket, sopt: *mut sockopt) -> c_int [c] {
        sbsetopt_impl(so, sopt, c)
    }

    /// `int sbwait(struct socket *, sb_which)`
    fn sbwait(so: *mut socket, which: sb_which) -> c_int [c] {
        if !check_socket(so, "sbwait", c) || !assert_locked(so, which, "sbwait", c) {
            return EINVAL;
        }
        wait(so, which, None)
    }
}

/// Exports the socket-buffer functions.
pub fn register(ex: &mut Exports) {
    abi::register(ex);
}

/// Counters of one socket buffer (for tests and diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SbStats {
    pub ccc: u32,
    pub acc: u32,
    pub ctl: u32,
    pub mbcnt: u32,
    pub hiwat: u32,
    pub lowat: u32,
    pub mbmax: u32,
    pub state: i16,
    pub records: usize,
    pub space: i64,
}

/// The counters of `so`'s buffer `which` (`SO_RCV` / `SO_SND`).
pub fn stats(so: *mut socket, which: sb_which) -> SbStats {
    if !crate::kern::domain::is_socket(so) {
        return SbStats::default();
    }
    let sb = sobuf(so, which);
    // SAFETY: `so` is a live harness socket.
    unsafe {
        SbStats {
            ccc: (*sb).sb_ccc,
            acc: (*sb).sb_acc,
            ctl: (*sb).sb_ctl,
            mbcnt: (*sb).sb_mbcnt,
            hiwat: (*sb).sb_hiwat,
            lowat: (*sb).sb_lowat,
            mbmax: (*sb).sb_mbmax,
            state: (*sb).sb_state,
            records: records(sb),
            space: sbspace(sb),
        }
    }
}
