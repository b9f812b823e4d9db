//! socket(9) model: ownership and locking contracts (H1, H18, H23).

mod inet_util;

use std::ptr::null_mut;

use inet_util::*;
use ngharness::kern::inet::{self, api, sockaddr_in, sockaddr_un};
use ngharness::kern::mbuf as kmbuf;

#[test]
fn sosend_consumes_the_chain_on_error_paths() {
    let env = setup();
    let base = kmbuf::live();
    let u = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    assert_eq!(env.send(u, None, b"no destination"), 39, "EDESTADDRREQ");
    assert_eq!(
        env.send(u, Some(&sockaddr_un(b"/x")), b"wrong family"),
        47,
        "EAFNOSUPPORT"
    );
    assert_eq!(
        env.send(u, Some(&sockaddr_in(LOOP4, 0)), b"port 0"),
        49,
        "EADDRNOTAVAIL"
    );
    assert_eq!(
        env.send(u, Some(&sockaddr_in(LOOP4, 9)), &vec![0u8; 10_000]),
        40,
        "EMSGSIZE"
    );
    // SAFETY: live socket.
    unsafe { (*u).so_error = 54 };
    assert_eq!(
        env.send(u, Some(&sockaddr_in(LOOP4, 9)), b"x"),
        54,
        "pending so_error, cleared"
    );
    assert_eq!(so_error(u), 0);
    let t = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.send(t, None, b"not connected"), 57, "ENOTCONN");
    // A chain with control: both consumed.
    let m = kmbuf::from_bytes(b"data");
    let c = kmbuf::from_bytes(b"ctl");
    // SAFETY: valid chains handed over.
    let e = unsafe { api::sosend(u, null_mut(), null_mut(), m, c, 0, env.td) };
    assert_eq!(e, 39);
    assert_eq!(kmbuf::live(), base, "every chain was consumed");
    close(u);
    close(t);
    expect_clean();
}

#[test]
fn sosend_on_a_listener_leaks_and_is_flagged() {
    let env = setup();
    let base = kmbuf::live();
    let l = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.bind(l, &sockaddr_in(LOOP4, 0)), 0);
    assert_eq!(env.listen(l, 1), 0);
    let m = kmbuf::from_bytes(b"to a listener");
    assert_eq!(env.send_chain(l, None, m), 57, "ENOTCONN");
    expect_violations(&["listening socket"]);
    assert!(
        kmbuf::is_live(m),
        "the split sosend_generic does not free top"
    );
    kmbuf::free_chain(m);
    assert_eq!(kmbuf::live(), base);
    close(l);
    expect_clean();
}

#[test]
fn upcall_registration_rules() {
    let env = setup();
    let s = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    let r = Box::new(Rec::default());
    // Without the buffer mutex.
    // SAFETY: valid socket.
    unsafe {
        api::soupcall_set(
            s,
            SO_RCV,
            Some(rec_upcall),
            (&*r as *const Rec).cast_mut().cast(),
        )
    };
    expect_violations(&["so_rcv mutex is not held"]);
    clear_upcall(s, SO_RCV);
    expect_clean();
    // Clearing what is not set.
    clear_upcall(s, SO_SND);
    expect_violations(&["no upcall to clear"]);
    // soclose with an upcall still registered.
    set_upcall(s, SO_SND, &r);
    close(s);
    expect_violations(&["still registered"]);
    // Use after soclose.
    assert_eq!(env.bind(s, &sockaddr_in(LOOP4, 0)), 9);
    expect_violations(&["after soclose"]);
    // Listen upcall without the listen lock.
    let l = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.listen(l, 1), 0);
    // SAFETY: valid socket.
    unsafe { api::solisten_upcall_set(l, None, null_mut()) };
    expect_violations(&["listen lock is not held"]);
    // Dequeue without the listen lock: flagged, still returns unlocked.
    let mut c = null_mut();
    // SAFETY: valid socket.
    let e = unsafe { api::solisten_dequeue(l, &mut c, 0x2000_0000) };
    // Not SS_NBIO and nothing queued: it sleeps; nothing can arrive, so the
    // harness reports the deadlock and the wait ends.
    expect_violations(&["listen lock not held", "deadlock"]);
    assert_eq!(e, 35);
    assert_eq!(ngharness::kern::lock::held_count(), 0);
    close(l);
    expect_clean();
}

#[test]
fn leaked_socket_is_reported() {
    let env = setup();
    let s = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    let r = Box::new(Rec::default());
    set_upcall(s, SO_RCV, &r);
    let v = inet::check_all();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("never soclose"));
    assert!(v[1].contains("receive upcall still set"));
    expect_violations(&["never soclose", "receive upcall still set"]);
    inet::reset();
    assert_eq!(inet::live_sockets(), 0);
    drop(env);
}

#[test]
fn upcall_that_drops_its_lock_is_flagged() {
    unsafe extern "C" fn bad(so: *mut fbsd_sys::socket, _a: *mut std::ffi::c_void, _w: i32) -> i32 {
        inet::buf_unlock(so, SO_RCV);
        0
    }
    let env = setup();
    let (a, b) = (
        env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap(),
        env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap(),
    );
    assert_eq!(env.bind(b, &sockaddr_in(LOOP4, 0)), 0);
    let bn = sockname(b);
    inet::buf_lock(b, SO_RCV);
    // SAFETY: valid socket, mutex held.
    unsafe { api::soupcall_set(b, SO_RCV, Some(bad), null_mut()) };
    inet::buf_unlock(b, SO_RCV);
    assert_eq!(env.send(a, Some(&bn), b"x"), 0);
    assert!(inet::pump_until(
        WAIT_MS,
        || ngharness::kern::violation_count() > 0
    ));
    expect_violations(&["released the socket-buffer mutex"]);
    clear_upcall(b, SO_RCV);
    close(a);
    close(b);
    expect_clean();
}

#[test]
fn su_isconnected_from_a_receive_upcall() {
    unsafe extern "C" fn accf(
        _so: *mut fbsd_sys::socket,
        arg: *mut std::ffi::c_void,
        w: i32,
    ) -> i32 {
        assert_eq!(w, M_NOWAIT);
        // SAFETY: the test passes a live counter.
        unsafe {
            (*(arg as *const std::sync::atomic::AtomicUsize))
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        };
        1 // SU_ISCONNECTED
    }
    let env = setup();
    let a = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    let b = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    assert_eq!(env.bind(b, &sockaddr_in(LOOP4, 0)), 0);
    let bn = sockname(b);
    let n = Box::new(std::sync::atomic::AtomicUsize::new(0));
    inet::buf_lock(b, SO_RCV);
    // SAFETY: valid socket, mutex held.
    unsafe {
        api::soupcall_set(
            b,
            SO_RCV,
            Some(accf),
            (&*n as *const std::sync::atomic::AtomicUsize)
                .cast_mut()
                .cast(),
        )
    };
    inet::buf_unlock(b, SO_RCV);
    assert_eq!(env.send(a, Some(&bn), b"x"), 0);
    assert!(inet::pump_until(WAIT_MS, || n
        .load(std::sync::atomic::Ordering::SeqCst)
        > 0));
    // The socket layer cleared the upcall and ran soisconnected().
    // SAFETY: live socket.
    assert!(unsafe { (*b).__bindgen_anon_1.__bindgen_anon_1.so_rcv.sb_upcall }.is_none());
    assert_ne!(so_state(b) & SS_ISCONNECTED, 0);
    assert_eq!(env.send(a, Some(&bn), b"y"), 0);
    inet::pump(20);
    assert_eq!(
        n.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no further calls"
    );
    close(a);
    close(b);
    expect_clean();
}
