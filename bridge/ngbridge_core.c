/*
 * libngbridge.so: PF_NETGRAPH sockets for Linux processes, served by the
 * ngsock host kernel harness (`ngharness serve`) through LD_PRELOAD.
 *
 *   LD_PRELOAD=build/libngbridge.so NGBRIDGE=/tmp/ngbridge.sock program
 *
 * socket(PF_NETGRAPH = 32, SOCK_DGRAM, NG_CONTROL or NG_DATA) returns a real
 * descriptor: one end of an AF_UNIX/SOCK_SEQPACKET connection to the
 * server, which holds the matching socket in the harness kernel. The
 * socket calls on it become requests (wire protocol: ngbridge_wire.h);
 * everything else about it is the descriptor's own: dup(2), fork(2),
 * close-on-exec, O_NONBLOCK (fcntl or FIONBIO) and the process exit that
 * closes it (the server sees the connection end and closes the socket, as
 * FreeBSD does at the last close). The server keeps one "readable" token
 * queued on the connection exactly while the kernel socket is readable,
 * so unmodified poll(2), select(2) and epoll(7) see FreeBSD's readiness;
 * they are not interposed.
 *
 * Structures are FreeBSD's (struct sockaddr_ng with sg_len, struct
 * ng_mesg); option names, levels, message flags and errno values are
 * translated between Linux's numbering (what the program was compiled
 * with) and FreeBSD's (what the kernel speaks). The FreeBSD-only calls
 * kldload(2) and friends, modfind(2) and sysctlbyname(3) are provided too.
 * Every other descriptor and call passes through untouched.
 */
#include "ngbridge.h"

/* ---------------------------------------------------------------------- */
/* The real functions */

int (*real_socket)(int, int, int);
int (*real_bind)(int, const struct sockaddr *, socklen_t);
int (*real_connect)(int, const struct sockaddr *, socklen_t);
int (*real_listen)(int, int);
int (*real_accept)(int, struct sockaddr *, socklen_t *);
int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
ssize_t (*real_send)(int, const void *, size_t, int);
ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
ssize_t (*real_write)(int, const void *, size_t);
ssize_t (*real_writev)(int, const struct iovec *, int);
ssize_t (*real_recv)(int, void *, size_t, int);
ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
ssize_t (*real_recvmsg)(int, struct msghdr *, int);
ssize_t (*real_read)(int, void *, size_t);
ssize_t (*real_readv)(int, const struct iovec *, int);
ssize_t (*real___read_chk)(int, void *, size_t, size_t);
ssize_t (*real___recv_chk)(int, void *, size_t, size_t, int);
ssize_t (*real___recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
int (*real_setsockopt)(int, int, int, const void *, socklen_t);
int (*real_getsockopt)(int, int, int, void *, socklen_t *);
int (*real_shutdown)(int, int);
int (*real_close)(int);
int (*real_dup)(int);
int (*real_dup2)(int, int);
int (*real_dup3)(int, int, int);
int (*real_fcntl)(int, int, ...);
int (*real_fcntl64)(int, int, ...);
int (*real_ioctl)(int, unsigned long, ...);
int (*real_close_range)(unsigned int, unsigned int, int);
void (*real_closefrom)(int);

/* ---------------------------------------------------------------------- */
/* Bridged descriptors */


_Atomic(struct conn *) tab[MAXFD];
pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;

struct conn *
lookup(int fd)
{
	if (fd < 0 || fd >= MAXFD)
		return (NULL);
	return (atomic_load_explicit(&tab[fd], memory_order_acquire));
}

struct conn *
conn_new(void)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return (NULL);
	c->buf = malloc(NGB_CHUNK + 1);
	if (c->buf == NULL) {
		free(c);
		return (NULL);
	}
	pthread_mutex_init(&c->mu, NULL);
	return (c);
}

void
conn_put_locked(struct conn *c)
{
	if (c != NULL && --c->refs == 0) {
		pthread_mutex_destroy(&c->mu);
		free(c->buf);
		free(c);
	}
}

/* Names `fd` as a descriptor of `c` (one more reference). */
void
fd_attach(int fd, struct conn *c)
{
	struct conn *old;

	if (fd < 0 || fd >= MAXFD)
		return;
	pthread_mutex_lock(&tab_mu);
	c->refs++;
	old = atomic_exchange(&tab[fd], c);
	conn_put_locked(old);
	pthread_mutex_unlock(&tab_mu);
}

/* `fd` no longer names a bridged socket. */
void
fd_detach(int fd)
{
	struct conn *old;

	if (fd < 0 || fd >= MAXFD || atomic_load(&tab[fd]) == NULL)
		return;
	pthread_mutex_lock(&tab_mu);
	old = atomic_exchange(&tab[fd], NULL);
	conn_put_locked(old);
	pthread_mutex_unlock(&tab_mu);
}

/* ---------------------------------------------------------------------- */
/* Numbering */

/* FreeBSD errno -> Linux errno. */
EXPORT int
ngbridge_errno_to_linux(int e)
{
	static const short map[] = {
		[35] = EAGAIN, [36] = EINPROGRESS, [37] = EALREADY,
		[38] = ENOTSOCK, [39] = EDESTADDRREQ, [40] = EMSGSIZE,
		[41] = EPROTOTYPE, [42] = ENOPROTOOPT, [43] = EPROTONOSUPPORT,
		[44] = ESOCKTNOSUPPORT, [45] = EOPNOTSUPP, [46] = EPFNOSUPPORT,
		[47] = EAFNOSUPPORT, [48] = EADDRINUSE, [49] = EADDRNOTAVAIL,
		[50] = ENETDOWN, [51] = ENETUNREACH, [52] = ENETRESET,
		[53] = ECONNABORTED, [54] = ECONNRESET, [55] = ENOBUFS,
		[56] = EISCONN, [57] = ENOTCONN, [58] = ESHUTDOWN,
		[59] = ETOOMANYREFS, [60] = ETIMEDOUT, [61] = ECONNREFUSED,
		[62] = ELOOP, [63] = ENAMETOOLONG, [64] = EHOSTDOWN,
		[65] = EHOSTUNREACH, [66] = ENOTEMPTY, [67] = EUSERS /* EPROCLIM */,
		[68] = EUSERS, [69] = EDQUOT, [70] = ESTALE, [71] = EREMOTE,
		[72] = EPROTO /* EBADRPC */, [73] = EPROTO /* ERPCMISMATCH */,
		[74] = EPROTO /* EPROGUNAVAIL */, [75] = EPROTO /* EPROGMISMATCH */,
		[76] = EPROTO /* EPROCUNAVAIL */, [77] = ENOLCK, [78] = ENOSYS,
		[79] = EINVAL /* EFTYPE */, [80] = EACCES /* EAUTH */,
		[81] = EACCES /* ENEEDAUTH */, [82] = EIDRM, [83] = ENOMSG,
		[84] = EOVERFLOW, [85] = ECANCELED, [86] = EILSEQ,
		[87] = ENODATA /* ENOATTR */, [88] = EINVAL /* EDOOFUS */,
		[89] = EBADMSG, [90] = EMULTIHOP, [91] = ENOLINK, [92] = EPROTO,
		[93] = EPERM /* ENOTCAPABLE */, [94] = EPERM /* ECAPMODE */,
		[95] = ENOTRECOVERABLE, [96] = EOWNERDEAD, [97] = EIO /* EINTEGRITY */,
	};

	if (e == 11)
		return (EDEADLK);
	if (e > 0 && e < 35)
		return (e);
	if (e >= 35 && e < (int)(sizeof(map) / sizeof(map[0])) && map[e] != 0)
		return (map[e]);
	return (EIO);
}

int
set_fb_errno(int fb)
{
	errno = ngbridge_errno_to_linux(fb);
	return (-1);
}

/* Linux MSG_* -> FreeBSD MSG_* (flags FreeBSD has no use for are dropped). */
int
flags_to_fb(int f)
{
	int r = 0;

	if (f & MSG_OOB) r |= FB_MSG_OOB;
	if (f & MSG_PEEK) r |= FB_MSG_PEEK;
	if (f & MSG_DONTROUTE) r |= FB_MSG_DONTROUTE;
	if (f & MSG_EOR) r |= FB_MSG_EOR;
	if (f & MSG_TRUNC) r |= FB_MSG_TRUNC;
	if (f & MSG_CTRUNC) r |= FB_MSG_CTRUNC;
	if (f & MSG_WAITALL) r |= FB_MSG_WAITALL;
	if (f & MSG_DONTWAIT) r |= FB_MSG_DONTWAIT;
	if (f & MSG_NOSIGNAL) r |= FB_MSG_NOSIGNAL;
	if (f & MSG_CMSG_CLOEXEC) r |= FB_MSG_CMSG_CLOEXEC;
	if (f & MSG_WAITFORONE) r |= FB_MSG_WAITFORONE;
	return (r);
}

/* FreeBSD msg_flags -> Linux msg_flags. */
int
flags_from_fb(int f)
{
	int r = 0;

	if (f & FB_MSG_OOB) r |= MSG_OOB;
	if (f & FB_MSG_EOR) r |= MSG_EOR;
	if (f & FB_MSG_TRUNC) r |= MSG_TRUNC;
	if (f & FB_MSG_CTRUNC) r |= MSG_CTRUNC;
	return (r);
}

/* Linux SOL_SOCKET option -> FreeBSD's, or -1. */
int
sockopt_to_fb(int name)
{
	switch (name) {
	case SO_DEBUG: return (0x0001);
	case SO_ACCEPTCONN: return (0x0002);
	case SO_REUSEADDR: return (0x0004);
	case SO_KEEPALIVE: return (0x0008);
	case SO_DONTROUTE: return (0x0010);
	case SO_BROADCAST: return (0x0020);
	case SO_LINGER: return (0x0080);
	case SO_OOBINLINE: return (0x0100);
	case SO_REUSEPORT: return (0x0200);
	case SO_TIMESTAMP: return (0x0400);
	case SO_SNDBUF: case SO_SNDBUFFORCE: return (0x1001);
	case SO_RCVBUF: case SO_RCVBUFFORCE: return (0x1002);
	case SO_SNDLOWAT: return (0x1003);
	case SO_RCVLOWAT: return (0x1004);
	case SO_SNDTIMEO: return (0x1005);
	case SO_RCVTIMEO: return (0x1006);
	case SO_ERROR: return (0x1007);
	case SO_TYPE: return (0x1008);
	case SO_PROTOCOL: return (0x1016);
	case SO_DOMAIN: return (0x1019);
	default: return (-1);
	}
}

/* ---------------------------------------------------------------------- */
/* Talking to the server */



void
put32(unsigned char *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

uint32_t
get32(const unsigned char *p)
{
	return (p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

const char *
server_path(void)
{
	const char *p = getenv("NGBRIDGE");

	return (p != NULL && *p != '\0' ? p : NULL);
}

/* A new connection to the server, or -1 with errno set. */
int
connect_server(int cloexec)
{
	const char *path = server_path();
	struct sockaddr_un sun;
	int fd, v = SOCKBUF, e;

	if (path == NULL) {
		errno = ENOSYS;
		return (-1);
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	fd = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | (cloexec ? SOCK_CLOEXEC : 0), 0);
	if (fd < 0)
		return (-1);
	REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	REAL(setsockopt)(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	while (REAL(connect)(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		if (errno == EINTR)
			continue;
		e = errno;
		REAL(close)(fd);
		errno = e;
		return (-1);
	}
	return (fd);
}

int
wait_fd(int fd, short ev)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	while ((r = poll(&p, 1, -1)) < 0 && errno == EINTR)
		;
	return (r);
}

int
send_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		size_t k = n > NGB_CHUNK ? NGB_CHUNK : n;
		ssize_t r = REAL(send)(fd, p, k, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				wait_fd(fd, POLLOUT);
				continue;
			}
			return (-1);
		}
		p += k;
		n -= k;
	}
	return (0);
}

ssize_t
recv_packet(int fd, unsigned char *buf)
{
	for (;;) {
		ssize_t r = REAL(recv)(fd, buf, NGB_CHUNK + 1, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				wait_fd(fd, POLLIN);
				continue;
			}
			return (-1);
		}
		if (r == 0) {
			errno = ECONNRESET;
			return (-1);
		}
		return (r);
	}
}

/* Copies message bytes [pos, pos + n) to where the reply's blobs go. */
void
sink(struct rep *rp, size_t pos, const unsigned char *d, size_t n)
{
	size_t b1 = NGB_HDR, b2 = NGB_HDR + rp->len1, i;

	for (i = 0; i < n; i++, pos++) {
		if (pos >= b1 && pos < b2) {
			if (rp->o1 != NULL && pos - b1 < rp->cap1)
				((unsigned char *)rp->o1)[pos - b1] = d[i];
		} else if (pos >= b2) {
			if (rp->o2 != NULL && pos - b2 < rp->cap2)
				((unsigned char *)rp->o2)[pos - b2] = d[i];
		}
	}
}

/*
 * One request on connection `fd` and its reply. Returns 0 (rp filled,
 * rp->error is FreeBSD's errno of the call) or -1 with errno set if the
 * server could not be reached.
 */
int
exchange(int fd, unsigned char *buf, const struct req *rq, struct rep *rp)
{
	unsigned char hdr[NGB_HDR];
	size_t total = NGB_HDR + rq->l1 + rq->l2 + rq->l3, pos;
	uid_t uid = geteuid();

	if (total > NGB_MAX_REQUEST) {
		errno = EMSGSIZE;
		return (-1);
	}
	memset(hdr, 0, sizeof(hdr));
	put32(hdr, NGB_MAGIC);
	hdr[4] = rq->op;
	hdr[5] = rq->op >> 8;
	put32(hdr + 8, uid);
	put32(hdr + 12, rq->a);
	put32(hdr + 16, rq->b);
	put32(hdr + 20, rq->c);
	put32(hdr + 24, rq->l1);
	put32(hdr + 28, rq->l2);
	put32(hdr + 32, rq->l3);
	if (total <= NGB_CHUNK) {
		struct iovec iov[4] = {
			{ hdr, NGB_HDR },
			{ (void *)rq->p1, rq->l1 },
			{ (void *)rq->p2, rq->l2 },
			{ (void *)rq->p3, rq->l3 },
		};
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 4 };

		for (;;) {
			if (REAL(sendmsg)(fd, &m, MSG_NOSIGNAL) >= 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				wait_fd(fd, POLLOUT);
				continue;
			}
			return (-1);
		}
	} else {
		unsigned char *all = malloc(total);
		int r;

		if (all == NULL)
			return (-1);
		memcpy(all, hdr, NGB_HDR);
		if (rq->l1) memcpy(all + NGB_HDR, rq->p1, rq->l1);
		if (rq->l2) memcpy(all + NGB_HDR + rq->l1, rq->p2, rq->l2);
		if (rq->l3) memcpy(all + NGB_HDR + rq->l1 + rq->l2, rq->p3, rq->l3);
		r = send_all(fd, all, total);
		free(all);
		if (r != 0)
			return (-1);
	}
	/* Replies: skip readiness tokens queued before ours. */
	for (;;) {
		ssize_t n = recv_packet(fd, buf);
		size_t want;
		int flags;

		if (n < 0)
			return (-1);
		if (n < NGB_HDR || get32(buf) != NGB_MAGIC) {
			errno = EPROTO;
			return (-1);
		}
		if ((buf[NGB_REP_KIND] | buf[NGB_REP_KIND + 1] << 8) == NGB_KIND_READABLE)
			continue;
		rp->error = (int32_t)get32(buf + NGB_REP_ERROR);
		rp->x = (int32_t)get32(buf + NGB_REP_X);
		rp->y = (int32_t)get32(buf + NGB_REP_Y);
		rp->ret = (int64_t)((uint64_t)get32(buf + NGB_REP_RET) |
		    (uint64_t)get32(buf + NGB_REP_RET + 4) << 32);
		rp->len1 = get32(buf + NGB_REP_LEN1);
		rp->len2 = get32(buf + NGB_REP_LEN2);
		want = NGB_HDR + rp->len1 + rp->len2;
		sink(rp, 0, buf, (size_t)n);
		pos = (size_t)n;
		flags = buf[NGB_REP_FLAGS] | buf[NGB_REP_FLAGS + 1] << 8;
		while (pos < want) {
			n = recv_packet(fd, buf);
			if (n < 0)
				return (-1);
			sink(rp, pos, buf, (size_t)n);
			pos += (size_t)n;
		}
		/*
		 * The socket became readable during the call: its token is on
		 * its way; return once it is there, so poll(2) right after the
		 * call sees it (as with FreeBSD's synchronous delivery).
		 */
		if (flags & NGB_FLAG_TOKEN_FOLLOWS)
			wait_fd(fd, POLLIN);
		return (0);
	}
}

/* A request on bridged descriptor `fd`. */
int
rpc(int fd, struct conn *c, const struct req *rq, struct rep *rp)
{
	int r, e;

	pthread_mutex_lock(&c->mu);
	r = exchange(fd, c->buf, rq, rp);
	e = errno;
	pthread_mutex_unlock(&c->mu);
	if (r != 0) {
		/* The server is gone or talks nonsense. */
		errno = (e == EMSGSIZE) ? EMSGSIZE : EIO;
		return (-1);
	}
	return (0);
}

/* A request on a short control connection (kld*, mod*, sysctl). */
int
control(const struct req *rq, struct rep *rp)
{
	unsigned char *buf;
	int fd, r, e;

	fd = connect_server(1);
	if (fd < 0) {
		errno = ENOSYS;
		return (-1);
	}
	buf = malloc(NGB_CHUNK + 1);
	if (buf == NULL) {
		REAL(close)(fd);
		errno = ENOMEM;
		return (-1);
	}
	r = exchange(fd, buf, rq, rp);
	e = errno;
	free(buf);
	REAL(close)(fd);
	if (r != 0) {
		errno = e;
		return (-1);
	}
	return (0);
}

int
nonblocking(int fd, int flags)
{
	int fl = REAL(fcntl)(fd, F_GETFL);

	return ((fl >= 0 && (fl & O_NONBLOCK)) || (flags & MSG_DONTWAIT));
}

/*
 * After an interrupted wait: restart (as FreeBSD does for handlers
 * installed with SA_RESTART) unless some caught signal lacks SA_RESTART.
 */
int
restartable(void)
{
	int s;

	for (s = 1; s < NSIG; s++) {
		struct sigaction sa;

		if (sigaction(s, NULL, &sa) != 0)
			continue;
		if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
			continue;
		if (!(sa.sa_flags & SA_RESTART))
			return (0);
	}
	return (1);
}

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * Waits until `fd` is readable (its token arrived) or `deadline` (ms, 0 =
 * none) passes. 0: readable; else a Linux errno (EAGAIN, EINTR).
 */
int
wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int t = -1, n;

		if (deadline != 0) {
			int64_t left = deadline - now_ms();

			if (left <= 0)
				return (EAGAIN);
			t = left > INT_MAX ? INT_MAX : (int)left;
		}
		n = poll(&p, 1, t);
		if (n > 0)
			return (0);
		if (n == 0)
			return (EAGAIN);
		if (errno == EINTR) {
			if (restartable())
				continue;
			return (EINTR);
		}
		return (errno);
	}
}

/* FreeBSD's getsockaddr() checks, before anything is read. */
int
check_addr(const struct sockaddr *sa, socklen_t len)
{
	if (len > FB_SOCK_MAXADDRLEN)
		return (ENAMETOOLONG);
	if (len < 2)
		return (EINVAL);
	if (sa == NULL)
		return (EFAULT);
	return (0);
}

