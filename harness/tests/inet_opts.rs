//! socket(9) model: sosetopt/sogetopt (H25).

mod inet_util;

use inet_util::*;
use ngharness::kern::inet::sockaddr_in;

const SOL_SOCKET: i32 = 0xffff;

#[test]
fn sol_socket_round_trips() {
    let env = setup();
    let s = env.socreate(PF_INET, SOCK_DGRAM, 0).unwrap();
    // SO_REUSEADDR: a get returns so_options & SO_REUSEADDR.
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x4), (0, 0));
    assert_eq!(setopt_int(s, SOL_SOCKET, 0x4, 1), 0);
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x4), (0, 4));
    // SAFETY: live socket.
    assert_ne!(unsafe { (*s).so_options } & 0x4, 0);
    assert_eq!(setopt_int(s, SOL_SOCKET, 0x4, 0), 0);
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x4), (0, 0));
    // SO_RCVBUF: sb_hiwat.
    assert_eq!(
        getopt_int(s, SOL_SOCKET, 0x1002),
        (0, 42080),
        "udp recvspace"
    );
    assert_eq!(setopt_int(s, SOL_SOCKET, 0x1002, 12345), 0);
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x1002), (0, 12345));
    assert_eq!(
        setopt_int(s, SOL_SOCKET, 0x1002, 0),
        22,
        "values < 1: EINVAL"
    );
    assert_eq!(
        setopt_int(s, SOL_SOCKET, 0x1002, 100_000_000),
        55,
        "above sb_max_adj: ENOBUFS"
    );
    // Short int: EINVAL; longer buffers are accepted.
    assert_eq!(setopt_bytes(s, SOL_SOCKET, 0x4, &[1, 0]), 22);
    assert_eq!(
        setopt_bytes(s, SOL_SOCKET, 0x4, &[1, 0, 0, 0, 9, 9, 9, 9]),
        0
    );
    // A short get buffer truncates and updates sopt_valsize.
    let (e, v, n) = getopt(s, SOL_SOCKET, 0x1002, 2);
    assert_eq!((e, n), (0, 2));
    assert_eq!(&v[..2], &12345i32.to_ne_bytes()[..2]);
    // Unknown names.
    assert_eq!(setopt_int(s, SOL_SOCKET, 0x7777, 1), 42, "ENOPROTOOPT");
    assert_eq!(getopt(s, SOL_SOCKET, 0x7777, 4).0, 42);
    assert_eq!(
        getopt_int(s, SOL_SOCKET, 0x1008),
        (0, SOCK_DGRAM),
        "SO_TYPE"
    );
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x1016), (0, 17), "SO_PROTOCOL");
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x1019), (0, 2), "SO_DOMAIN");
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x1001), (0, 9216), "udp maxdgram");
    // SO_ERROR returns and clears so_error.
    // SAFETY: live socket.
    unsafe { (*s).so_error = 61 };
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x1007), (0, 61));
    assert_eq!(getopt_int(s, SOL_SOCKET, 0x1007), (0, 0));
    // SO_LINGER range: EDOM.
    let mut l = [0u8; 8];
    l[..4].copy_from_slice(&1i32.to_ne_bytes());
    l[4..].copy_from_slice(&(-1i32).to_ne_bytes());
    assert_eq!(setopt_bytes(s, SOL_SOCKET, 0x80, &l), 33);
    // IP level on an inet socket.
    assert_eq!(getopt_int(s, 0, 4), (0, 64), "IP_TTL default");
    assert_eq!(setopt_int(s, 0, 4, 7), 0);
    assert_eq!(getopt_int(s, 0, 4), (0, 7));
    assert_eq!(setopt_int(s, 0, 3, 0x10), 0, "IP_TOS");
    assert_eq!(getopt_int(s, 0, 3), (0, 0x10));
    assert_eq!(
        setopt_int(s, 41, 27, 1),
        22,
        "IPv6 level on an inet socket: EINVAL"
    );
    assert_eq!(setopt_int(s, 0, 0x7777, 1), 42);
    close(s);
    expect_clean();
}

#[test]
fn tcp_level_values() {
    let env = setup();
    let t = env.socreate(PF_INET, SOCK_STREAM, 0).unwrap();
    assert_eq!(
        getopt_int(t, SOL_SOCKET, 0x1001),
        (0, 32768),
        "tcp sendspace"
    );
    assert_eq!(
        getopt_int(t, SOL_SOCKET, 0x1002),
        (0, 65536),
        "tcp recvspace"
    );
    assert_eq!(setopt_int(t, 6, 1, 1), 0, "TCP_NODELAY");
    assert_eq!(getopt_int(t, 6, 1), (0, 4), "t_flags & TF_NODELAY");
    assert_eq!(getopt_int(t, 6, 256), (0, 7200), "TCP_KEEPIDLE");
    assert_eq!(setopt_int(t, 6, 256, 30), 0);
    assert_eq!(getopt_int(t, 6, 256), (0, 30));
    assert_eq!(setopt_int(t, 6, 0x7777, 1), 42);
    assert_eq!(env.bind(t, &sockaddr_in(LOOP4, 0)), 0);
    assert_eq!(env.listen(t, 1), 0);
    assert_eq!(getopt_int(t, SOL_SOCKET, 0x2), (0, 2), "SO_ACCEPTCONN");
    assert_eq!(getopt_int(t, SOL_SOCKET, 0x1011), (0, 1), "SO_LISTENQLIMIT");
    assert_eq!(
        setopt_int(t, SOL_SOCKET, 0x1002, 5000),
        0,
        "listening: sol_sbrcv_hiwat"
    );
    assert_eq!(getopt_int(t, SOL_SOCKET, 0x1002), (0, 5000));
    close(t);
    expect_clean();
}
