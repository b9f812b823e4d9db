//! socket(9) model: FreeBSD errnos of socreate/sobind/soconnect/solisten.

mod inet_util;

use inet_util::*;
use ngharness::kern::inet::{self, sockaddr_in, sockaddr_un};
use ngharness::kern::thread as kthread;

#[test]
fn socreate_errors() {
    let env = setup();
    assert_eq!(
        env.socreate(PF_INET, SOCK_STREAM, 17).unwrap_err(),
        43,
        "TCP type with UDP proto"
    );
    assert_eq!(env.socreate(PF_INET, SOCK_DGRAM, 6).unwrap_err(), 43);
    assert_eq!(
        env.socreate(99, SOCK_DGRAM, 0).unwrap_err(),
        47,
        "unknown family"
    );
    assert_eq!(
        env.socreate(PF_INET, SOCK_SEQPACKET, 0).unwrap_err(),
        41,
        "no such type"
    );
    assert_eq!(env.socreate(PF_INET, 77, 0).unwrap_err(), 41);
    assert_eq!(env.socreate(PF_LOCAL, SOCK_RAW, 0).unwrap_err(), 41);
    // Raw sockets need privilege.
    let user = kthread::new_thread(kthread::Cred::User(1001));
    kthread::set_curthread(user);
    let mut so = std::ptr::null_mut();
    // SAFETY: valid arguments.
    let e = unsafe { inet::api::socreate(PF_INET, &mut so, SOCK_RAW, 253, (*user).td_ucred, user) };
    assert_eq!(e, 1, "EPERM");
    kthread::set_curthread(env.td);
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } == 0 {
        let r = env.socreate(PF_INET, SOCK_RAW, 253).expect("raw as root");
        close(r);
    }
    for (d, t) in [
        (PF_INET, SOCK_STREAM),
        (PF_INET, SOCK_DGRAM),
        (PF_LOCAL, SOCK_STREAM),
        (PF_LOCAL, SOCK_SEQPACKET),
    ] {
        let s = env.socreate(d, t, 0).expect("socreate");
        close(s);
    }
    assert_eq!(inet::live_sockets(), 0);
    expect_clean();
}

#[test]
fn bind_connect_listen_errors() {
    let env = setup();
    let u = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    let mut bad = sockaddr_in(LOOP4, 0);
    bad[0] = 15;
    assert_eq!(env.bind(u, &bad), 22, "sa_len != 16: EINVAL");
    assert_eq!(
        env.bind(u, &sockaddr_un(b"/tmp/x")),
        47,
        "family mismatch: EAFNOSUPPORT"
    );
    assert_eq!(
        env.bind(u, &sockaddr_in([192, 0, 2, 1], 0)),
        49,
        "not a local address"
    );
    assert_eq!(env.listen(u, 5), 45, "listen on UDP: EOPNOTSUPP");
    assert_eq!(env.connect(u, &sockaddr_in(LOOP4, 0)), 49, "UDP to port 0");
    let (e, p) = peername(u);
    assert_eq!(
        (e, p),
        (0, sockaddr_in([0; 4], 0)),
        "in_getpeeraddr of an unconnected socket"
    );

    let t1 = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    let t2 = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.bind(t1, &sockaddr_in(LOOP4, 0)), 0);
    let n1 = sockname(t1);
    assert_eq!(env.bind(t2, &n1), 48, "EADDRINUSE");
    assert_eq!(env.bind(t1, &sockaddr_in(LOOP4, 0)), 22, "already bound");
    assert_eq!(env.connect(t2, &sockaddr_in(LOOP4, 0)), 49, "TCP to port 0");
    assert_eq!(
        env.connect(t2, &sockaddr_in([224, 0, 0, 1], 9)),
        47,
        "TCP to multicast"
    );

    // Reserved ports need privilege.
    let user = kthread::new_thread(kthread::Cred::User(1001));
    // SAFETY: a fresh harness thread.
    let uc = unsafe { (*user).td_ucred };
    let t3 = env.socreate_cred(PF_INET, SOCK_STREAM, 0, uc).unwrap();
    kthread::set_curthread(user);
    let mut ss = storage(&sockaddr_in(LOOP4, 80));
    // SAFETY: valid arguments.
    let e = unsafe {
        inet::api::sobind(
            t3,
            (&mut ss as *mut fbsd_sys::sockaddr_storage).cast(),
            user,
        )
    };
    assert_eq!(e, 13, "EACCES");
    kthread::set_curthread(env.td);

    let l = env.socreate(PF_LOCAL, SOCK_STREAM, 0).unwrap();
    assert_eq!(env.listen(l, 5), 22, "unbound local listen: EINVAL");
    assert_eq!(
        env.connect(l, &sockaddr_un(b"/nonexistent/ngharness")),
        2,
        "ENOENT"
    );
    for s in [u, t1, t2, t3, l] {
        close(s);
    }
    expect_clean();
}
