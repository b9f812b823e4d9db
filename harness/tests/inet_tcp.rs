//! socket(9) model: TCP listen/accept, non-blocking connect, EOF, refusal.

mod inet_util;

use std::ptr::null_mut;

use inet_util::*;
use ngharness::kern::inet::{self, api, sockaddr_in};
use ngharness::kern::{lock, mbuf as kmbuf};

#[test]
fn listen_accept_data_eof() {
    let env = setup();
    let mbufs = kmbuf::live();
    let l = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    let lrec = Box::new(Rec::default());
    // A buffer upcall registered before listen disappears with the buffers (H20).
    set_upcall(l, SO_RCV, &lrec);
    assert_eq!(env.bind(l, &sockaddr_in(LOOP4, 0)), 0);
    let ln = sockname(l);
    set_nbio(l);
    assert_eq!(env.listen(l, 5), 0);
    // SAFETY: live socket.
    assert_ne!(unsafe { (*l).so_options } & 0x2, 0, "SO_ACCEPTCONN");
    set_listen_upcall(l, Some(&lrec));

    // Dequeue on an empty non-blocking listener: EWOULDBLOCK, lock released.
    inet::sock_lock(l);
    let mut child = null_mut();
    // SAFETY: listen lock held as required.
    assert_eq!(unsafe { api::solisten_dequeue(l, &mut child, 0) }, 35);
    assert_eq!(lock::held_count(), 0, "solisten_dequeue returns unlocked");

    let c = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    let crcv = Box::new(Rec::default());
    let csnd = Box::new(Rec::default());
    set_upcall(c, SO_RCV, &crcv);
    set_upcall(c, SO_SND, &csnd);
    set_nbio(c);
    assert_eq!(env.connect(c, &ln), 0, "non-blocking connect returns 0");
    assert_ne!(
        so_state(c) & SS_ISCONNECTING,
        0,
        "SS_ISCONNECTING until the handshake completes"
    );
    assert!(
        inet::pump_until(WAIT_MS, || lrec.calls() > 0
            && so_state(c) & SS_ISCONNECTED != 0),
        "listen upcall / connect completion"
    );
    assert_eq!(so_state(c) & SS_ISCONNECTING, 0);
    assert!(
        crcv.calls() > 0 && csnd.calls() > 0,
        "soisconnected wakes both buffers"
    );
    crcv.assert_sane();
    csnd.assert_sane();
    lrec.assert_sane();
    assert_eq!(env.connect(c, &ln), 56, "EISCONN");

    inet::sock_lock(l);
    // SAFETY: listen lock held.
    assert_eq!(
        unsafe { api::solisten_dequeue(l, &mut child, 0x2000_0000) },
        0
    );
    assert_eq!(lock::held_count(), 0);
    assert!(!child.is_null());
    assert_ne!(so_state(child) & SS_ISCONNECTED, 0);
    assert_ne!(so_state(child) & SS_NBIO, 0, "SOCK_NONBLOCK");
    // SAFETY: live socket.
    assert_eq!(unsafe { (*child).so_count }, 1);
    let mut ss = fbsd_sys::sockaddr_storage {
        ss_len: 128,
        ..Default::default()
    };
    // SAFETY: valid storage.
    assert_eq!(
        unsafe { api::soaccept(child, (&mut ss as *mut fbsd_sys::sockaddr_storage).cast()) },
        0
    );
    // SAFETY: filled sockaddr.
    let peer = unsafe { inet_bytes((&ss as *const fbsd_sys::sockaddr_storage).cast()) };
    assert_eq!(peer, sockname(c), "soaccept gives the peer address");

    let krcv = Box::new(Rec::default());
    set_upcall(child, SO_RCV, &krcv);
    assert_eq!(recv(child, 65535, false).err, 35);
    assert_eq!(env.send(c, None, b"hello over tcp"), 0);
    assert!(inet::pump_until(WAIT_MS, || krcv.calls() > 0));
    let mut got = Vec::new();
    assert!(inet::pump_until(WAIT_MS, || {
        let r = recv(child, 65535, false);
        if let Some(d) = r.data {
            assert!(!r.pkthdr, "stream data carries no packet header");
            got.extend(d);
        }
        got.len() >= 14
    }));
    assert_eq!(got, b"hello over tcp");
    // A receive on an empty connected stream with resid 0: EINVAL (soreceive_stream).
    assert_eq!(recv(child, 0, false).err, 22);

    // The peer closes: the child gets an upcall, then EOF (0, no data).
    let before = krcv.calls();
    clear_upcall(c, SO_RCV);
    clear_upcall(c, SO_SND);
    assert_eq!(close(c), 0);
    assert!(inet::pump_until(WAIT_MS, || rcv_sb_state(child)
        & SBS_CANTRCVMORE
        != 0));
    assert!(krcv.calls() > before, "EOF upcall");
    let r = recv(child, 65535, false);
    assert_eq!((r.err, r.data.is_none()), (0, true), "EOF");
    krcv.assert_sane();

    clear_upcall(child, SO_RCV);
    close(child);
    set_listen_upcall(l, None);
    close(l);
    assert_eq!(inet::live_sockets(), 0);
    assert_eq!(kmbuf::live(), mbufs);
    assert!(inet::check_all().is_empty());
    expect_clean();
}

#[test]
fn connect_to_closed_port_sets_so_error() {
    let env = setup();
    let probe = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.bind(probe, &sockaddr_in(LOOP4, 0)), 0);
    let dead = sockname(probe);
    close(probe);
    let c = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    let r = Box::new(Rec::default());
    set_upcall(c, SO_RCV, &r);
    set_nbio(c);
    assert_eq!(env.connect(c, &dead), 0);
    assert!(
        inet::pump_until(WAIT_MS, || so_state(c) & SS_ISDISCONNECTED != 0),
        "refusal never arrived"
    );
    assert_eq!(so_error(c), 61, "ECONNREFUSED in so_error");
    assert_eq!(so_state(c) & (SS_ISCONNECTING | SS_ISCONNECTED), 0);
    assert!(r.calls() > 0, "upcall on failure");
    r.assert_sane();
    assert_ne!(rcv_sb_state(c) & SBS_CANTRCVMORE, 0);
    // ng_ksocket reads and clears so_error directly.
    // SAFETY: live socket.
    unsafe { (*c).so_error = 0 };
    assert_eq!(env.connect(c, &dead), 56, "a TCP socket connects once");
    let r = recv(c, 100, false);
    assert_eq!(
        (r.err, r.data.is_none()),
        (0, true),
        "EOF after the refusal"
    );
    clear_upcall(c, SO_RCV);
    close(c);
    expect_clean();
}

#[test]
fn local_stream_listen_accept() {
    let env = setup();
    let dir = tempdir("stream");
    let path = dir.join("srv");
    let sa = ngharness::kern::inet::sockaddr_un(path.to_str().unwrap().as_bytes());
    let l = env.socreate(PF_LOCAL, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.bind(l, &sa), 0);
    set_nbio(l);
    assert_eq!(env.listen(l, 3), 0);
    let lrec = Box::new(Rec::default());
    set_listen_upcall(l, Some(&lrec));
    let c = env.socreate(PF_LOCAL, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.connect(c, &sa), 0);
    assert_ne!(
        so_state(c) & SS_ISCONNECTED,
        0,
        "local connect completes at once"
    );
    assert!(inet::pump_until(WAIT_MS, || lrec.calls() > 0));
    inet::sock_lock(l);
    let mut child = null_mut();
    // SAFETY: listen lock held.
    assert_eq!(unsafe { api::solisten_dequeue(l, &mut child, 0) }, 0);
    assert_eq!(env.send(c, None, b"ping"), 0);
    let mut got = Vec::new();
    assert!(inet::pump_until(WAIT_MS, || {
        if let Some(d) = recv(child, 100, false).data {
            got.extend(d);
        }
        got.len() >= 4
    }));
    assert_eq!(got, b"ping");
    close(c);
    assert!(inet::pump_until(WAIT_MS, || rcv_sb_state(child)
        & SBS_CANTRCVMORE
        != 0));
    close(child);
    set_listen_upcall(l, None);
    close(l);
    let _ = std::fs::remove_dir_all(&dir);
    expect_clean();
}

#[test]
fn listener_close_aborts_queued_connections() {
    let env = setup();
    let l = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.bind(l, &sockaddr_in(LOOP4, 0)), 0);
    let ln = sockname(l);
    assert_eq!(env.listen(l, 2), 0);
    let c = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.connect(c, &ln), 0);
    assert!(inet::pump_until(WAIT_MS, || {
        // SAFETY: live listening socket.
        (unsafe { (*l).__bindgen_anon_1.__bindgen_anon_2.sol_qlen }) == 1
    }));
    // SAFETY: live listening socket.
    assert_eq!(
        unsafe { (*l).so_count },
        2,
        "a queued connection references its listener"
    );
    assert_eq!(inet::live_sockets(), 3);
    close(l);
    assert_eq!(
        inet::live_sockets(),
        1,
        "the queued child went with the listener"
    );
    // The client sees the abort (RST).
    assert!(inet::pump_until(WAIT_MS, || so_state(c)
        & SS_ISDISCONNECTED
        != 0));
    close(c);
    expect_clean();
}
