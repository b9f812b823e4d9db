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
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ngbridge_wire.h"

#define EXPORT __attribute__((visibility("default")))

/* FreeBSD numbering */
#define FB_PF_NETGRAPH 32
#define FB_SOL_SOCKET 0xffff
#define FB_EWOULDBLOCK 35
#define FB_EPIPE 32
#define FB_MSG_OOB 0x1
#define FB_MSG_PEEK 0x2
#define FB_MSG_DONTROUTE 0x4
#define FB_MSG_EOR 0x8
#define FB_MSG_TRUNC 0x10
#define FB_MSG_CTRUNC 0x20
#define FB_MSG_WAITALL 0x40
#define FB_MSG_DONTWAIT 0x80
#define FB_MSG_NOSIGNAL 0x20000
#define FB_MSG_CMSG_CLOEXEC 0x40000
#define FB_MSG_WAITFORONE 0x80000

#define MAXFD 65536
#define SOCKBUF (1 << 20)
#define FB_SOCK_MAXADDRLEN 255
#define ADDRBUF 256

/* ---------------------------------------------------------------------- */
/* The real functions */

#define REAL(name) (real_##name != NULL ? real_##name : \
	(real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)))

static int (*real_socket)(int, int, int);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static int (*real_listen)(int, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real___read_chk)(int, void *, size_t, size_t);
static ssize_t (*real___recv_chk)(int, void *, size_t, size_t, int);
static ssize_t (*real___recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
static int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
static int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_getsockopt)(int, int, int, void *, socklen_t *);
static int (*real_shutdown)(int, int);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close_range)(unsigned int, unsigned int, int);
static void (*real_closefrom)(int);

/* ---------------------------------------------------------------------- */
/* Bridged descriptors */

struct conn {
	pthread_mutex_t mu; /* one request at a time */
	int refs;	    /* descriptors of this process naming it */
	unsigned char *buf; /* NGB_CHUNK + 1 bytes */
};

static _Atomic(struct conn *) tab[MAXFD];
static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;

static struct conn *
lookup(int fd)
{
	if (fd < 0 || fd >= MAXFD)
		return (NULL);
	return (atomic_load_explicit(&tab[fd], memory_order_acquire));
}

static struct conn *
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

static void
conn_put_locked(struct conn *c)
{
	if (c != NULL && --c->refs == 0) {
		pthread_mutex_destroy(&c->mu);
		free(c->buf);
		free(c);
	}
}

/* Names `fd` as a descriptor of `c` (one more reference). */
static void
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
static void
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

static int
set_fb_errno(int fb)
{
	errno = ngbridge_errno_to_linux(fb);
	return (-1);
}

/* Linux MSG_* -> FreeBSD MSG_* (flags FreeBSD has no use for are dropped). */
static int
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
static int
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
static int
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

struct req {
	uint16_t op;
	int32_t a, b, c;
	const void *p1, *p2, *p3;
	size_t l1, l2, l3;
};

struct rep {
	int32_t error, x, y;
	int64_t ret;
	void *o1, *o2;	     /* where blob1 / blob2 go (may be NULL) */
	size_t cap1, cap2;   /* their room */
	size_t len1, len2;   /* the blobs' full lengths */
};

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

static uint32_t
get32(const unsigned char *p)
{
	return (p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static const char *
server_path(void)
{
	const char *p = getenv("NGBRIDGE");

	return (p != NULL && *p != '\0' ? p : NULL);
}

/* A new connection to the server, or -1 with errno set. */
static int
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

static int
wait_fd(int fd, short ev)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	while ((r = poll(&p, 1, -1)) < 0 && errno == EINTR)
		;
	return (r);
}

static int
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

static ssize_t
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
static void
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
static int
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
static int
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
static int
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

static int
nonblocking(int fd, int flags)
{
	int fl = REAL(fcntl)(fd, F_GETFL);

	return ((fl >= 0 && (fl & O_NONBLOCK)) || (flags & MSG_DONTWAIT));
}

/*
 * After an interrupted wait: restart (as FreeBSD does for handlers
 * installed with SA_RESTART) unless some caught signal lacks SA_RESTART.
 */
static int
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

static int64_t
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
static int
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
static int
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

/* ---------------------------------------------------------------------- */
/* Socket calls */

EXPORT int
socket(int domain, int type, int protocol)
{
	int extra = type & (SOCK_NONBLOCK | SOCK_CLOEXEC), fd, e;
	struct conn *c;
	struct req rq;
	struct rep rp;

	if (domain != FB_PF_NETGRAPH || server_path() == NULL)
		return (REAL(socket)(domain, type, protocol));
	fd = connect_server(extra & SOCK_CLOEXEC);
	if (fd < 0) {
		static int said;

		if (!said) {
			said = 1;
			fprintf(stderr, "libngbridge: cannot reach the bridge at %s: %s\n",
			    server_path(), strerror(errno));
		}
		errno = EAFNOSUPPORT;
		return (-1);
	}
	if (fd >= MAXFD || (c = conn_new()) == NULL) {
		REAL(close)(fd);
		errno = fd >= MAXFD ? EMFILE : ENOBUFS;
		return (-1);
	}
	memset(&rq, 0, sizeof(rq));
	memset(&rp, 0, sizeof(rp));
	rq.op = NGB_SOCKET;
	rq.a = domain;
	rq.b = type & ~extra;
	rq.c = protocol;
	if (exchange(fd, c->buf, &rq, &rp) != 0 || rp.error != 0) {
		e = rp.error != 0 ? ngbridge_errno_to_linux(rp.error) : EIO;
		REAL(close)(fd);
		c->refs = 1;
		pthread_mutex_lock(&tab_mu);
		conn_put_locked(c);
		pthread_mutex_unlock(&tab_mu);
		errno = e;
		return (-1);
	}
	if (extra & SOCK_NONBLOCK) {
		int fl = REAL(fcntl)(fd, F_GETFL);

		REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK);
	}
	fd_attach(fd, c);
	return (fd);
}

static int
addr_call(int fd, struct conn *c, uint16_t op, const struct sockaddr *sa, socklen_t len)
{
	struct req rq = { .op = op, .p1 = sa, .l1 = len };
	struct rep rp = { 0 };
	int e = check_addr(sa, len);

	if (e != 0) {
		errno = e;
		return (-1);
	}
	if (rpc(fd, c, &rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	return (0);
}

EXPORT int
bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(bind)(fd, sa, len));
	return (addr_call(fd, c, NGB_BIND, sa, len));
}

EXPORT int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(connect)(fd, sa, len));
	return (addr_call(fd, c, NGB_CONNECT, sa, len));
}

EXPORT int
listen(int fd, int backlog)
{
	if (lookup(fd) == NULL)
		return (REAL(listen)(fd, backlog));
	errno = EOPNOTSUPP;
	return (-1);
}

EXPORT int
accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	if (lookup(fd) == NULL)
		return (REAL(accept)(fd, sa, len));
	errno = EINVAL;
	return (-1);
}

EXPORT int
accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	if (lookup(fd) == NULL)
		return (REAL(accept4)(fd, sa, len, flags));
	errno = EINVAL;
	return (-1);
}

/* Linux control messages -> FreeBSD's (12-byte header, data at 16). */
static unsigned char *
control_to_fb(const struct msghdr *m, size_t *outlen)
{
	const unsigned char *p = m->msg_control;
	size_t n = m->msg_controllen, off = 0, o = 0;
	unsigned char *out = malloc(n + 16);

	if (out == NULL)
		return (NULL);
	while (off + sizeof(struct cmsghdr) <= n) {
		struct cmsghdr h;
		size_t dl, adv;

		memcpy(&h, p + off, sizeof(h));
		if (h.cmsg_len < sizeof(struct cmsghdr) || h.cmsg_len > n - off)
			break;
		dl = h.cmsg_len - sizeof(struct cmsghdr);
		put32(out + o, (uint32_t)(16 + dl));
		put32(out + o + 4, (uint32_t)(h.cmsg_level == SOL_SOCKET ? FB_SOL_SOCKET : h.cmsg_level));
		put32(out + o + 8, (uint32_t)h.cmsg_type);
		put32(out + o + 12, 0);
		memcpy(out + o + 16, p + off + sizeof(struct cmsghdr), dl);
		o += (16 + dl + 7) & ~(size_t)7;
		adv = CMSG_ALIGN(h.cmsg_len);
		off += adv;
	}
	if (o == 0 && n > 0) {
		/* Too short to be a control message: pass the length on. */
		memset(out, 0, n < 16 ? n : 16);
		o = n < 12 ? n : 12;
	}
	*outlen = o;
	return (out);
}

static ssize_t
b_send(int fd, struct conn *c, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen, const struct msghdr *m)
{
	struct req rq = { .op = NGB_SEND, .a = flags_to_fb(flags) & ~FB_MSG_DONTWAIT,
		.p2 = buf, .l2 = len };
	struct rep rp;
	unsigned char *ctl = NULL;
	int nb = nonblocking(fd, flags), e, backoff = 1;

	if (to != NULL) {
		if ((e = check_addr(to, tolen)) != 0) {
			errno = e;
			return (-1);
		}
		rq.c |= NGB_SEND_ADDR;
		rq.p1 = to;
		rq.l1 = tolen;
	}
	if (m != NULL && m->msg_control != NULL) {
		size_t cl = 0;

		ctl = control_to_fb(m, &cl);
		if (ctl == NULL) {
			errno = ENOBUFS;
			return (-1);
		}
		rq.c |= NGB_SEND_CONTROL;
		rq.p3 = ctl;
		rq.l3 = cl;
	}
	if (len > NGB_MAX_REQUEST - NGB_HDR - 512) {
		free(ctl);
		errno = EMSGSIZE;
		return (-1);
	}
	for (;;) {
		memset(&rp, 0, sizeof(rp));
		if (rpc(fd, c, &rq, &rp) != 0) {
			free(ctl);
			return (-1);
		}
		if (rp.error == FB_EWOULDBLOCK && !nb) {
			/* Room comes back without a token to wait for: retry. */
			struct timespec ts = { 0, backoff * 1000000L };

			nanosleep(&ts, NULL);
			if (backoff < 16)
				backoff *= 2;
			continue;
		}
		break;
	}
	free(ctl);
	if (rp.error != 0) {
		if (rp.error == FB_EPIPE && rp.y == 1 && !(flags & MSG_NOSIGNAL))
			raise(SIGPIPE);
		return (set_fb_errno(rp.error));
	}
	return ((ssize_t)rp.ret);
}

/* Gathers an iovec into one buffer (NULL with errno on failure). */
static void *
gather(const struct iovec *iov, int cnt, size_t *len)
{
	size_t n = 0, o = 0;
	unsigned char *b;
	int i;

	if (cnt < 0 || cnt > IOV_MAX) {
		errno = EINVAL;
		return (NULL);
	}
	for (i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	b = malloc(n ? n : 1);
	if (b == NULL) {
		errno = ENOBUFS;
		return (NULL);
	}
	for (i = 0; i < cnt; i++) {
		if (iov[i].iov_len)
			memcpy(b + o, iov[i].iov_base, iov[i].iov_len);
		o += iov[i].iov_len;
	}
	*len = n;
	return (b);
}

EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(sendto)(fd, buf, len, flags, to, tolen));
	return (b_send(fd, c, buf, len, flags, to, tolen, NULL));
}

EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(send)(fd, buf, len, flags));
	return (b_send(fd, c, buf, len, flags, NULL, 0, NULL));
}

EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(write)(fd, buf, len));
	return (b_send(fd, c, buf, len, 0, NULL, 0, NULL));
}

EXPORT ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	struct conn *c = lookup(fd);
	size_t len;
	void *b;
	ssize_t r;

	if (c == NULL)
		return (REAL(writev)(fd, iov, cnt));
	if ((b = gather(iov, cnt, &len)) == NULL)
		return (-1);
	r = b_send(fd, c, b, len, 0, NULL, 0, NULL);
	free(b);
	return (r);
}

EXPORT ssize_t
sendmsg(int fd, const struct msghdr *m, int flags)
{
	struct conn *c = lookup(fd);
	size_t len;
	void *b;
	ssize_t r;

	if (c == NULL)
		return (REAL(sendmsg)(fd, m, flags));
	if ((b = gather(m->msg_iov, (int)m->msg_iovlen, &len)) == NULL)
		return (-1);
	r = b_send(fd, c, b, len, flags, m->msg_name,
	    m->msg_name != NULL ? m->msg_namelen : 0, m);
	free(b);
	return (r);
}

/*
 * The receive path: one datagram into `buf` (at most `len` bytes), its
 * source address (FreeBSD semantics: at most *alen bytes copied, *alen set
 * to what was copied) and msg_flags (Linux numbering).
 */
static ssize_t
b_recv(int fd, struct conn *c, void *buf, size_t len, int flags,
    struct sockaddr *from, socklen_t *alen, int *mflags)
{
	unsigned char addr[ADDRBUF];
	struct req rq = { .op = NGB_RECV, .a = flags_to_fb(flags) & ~FB_MSG_DONTWAIT,
		.b = len > INT_MAX ? INT_MAX : (int32_t)len };
	struct rep rp;
	int nb = nonblocking(fd, flags), e;
	int64_t deadline = -1;

	for (;;) {
		memset(&rp, 0, sizeof(rp));
		rp.o1 = addr;
		rp.cap1 = sizeof(addr);
		rp.o2 = buf;
		rp.cap2 = len;
		if (rpc(fd, c, &rq, &rp) != 0)
			return (-1);
		if (rp.error != FB_EWOULDBLOCK || nb)
			break;
		if (deadline < 0)
			deadline = rp.y > 0 ? now_ms() + rp.y : 0;
		if ((e = wait_readable(fd, deadline)) != 0) {
			errno = e;
			return (-1);
		}
	}
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	if (from != NULL && alen != NULL) {
		size_t n = rp.len1 < sizeof(addr) ? rp.len1 : sizeof(addr);

		if (n > *alen)
			n = *alen;
		memcpy(from, addr, n);
		*alen = (socklen_t)n;
	} else if (alen != NULL) {
		*alen = 0;
	}
	if (mflags != NULL)
		*mflags = flags_from_fb(rp.x);
	return ((ssize_t)rp.ret);
}

EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *alen)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(recvfrom)(fd, buf, len, flags, from, alen));
	return (b_recv(fd, c, buf, len, flags, from, alen, NULL));
}

EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(recv)(fd, buf, len, flags));
	return (b_recv(fd, c, buf, len, flags, NULL, NULL, NULL));
}

EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(read)(fd, buf, len));
	return (b_recv(fd, c, buf, len, 0, NULL, NULL, NULL));
}

/* Receives into a scatter list (through one bounce buffer). */
static ssize_t
b_recv_iov(int fd, struct conn *c, const struct iovec *iov, int cnt, int flags,
    struct sockaddr *from, socklen_t *alen, int *mflags)
{
	size_t len = 0, o = 0, k;
	unsigned char *b;
	ssize_t r;
	int i;

	if (cnt < 0 || cnt > IOV_MAX) {
		errno = EINVAL;
		return (-1);
	}
	if (cnt == 1)
		return (b_recv(fd, c, iov[0].iov_base, iov[0].iov_len, flags, from, alen, mflags));
	for (i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	if ((b = malloc(len ? len : 1)) == NULL) {
		errno = ENOBUFS;
		return (-1);
	}
	r = b_recv(fd, c, b, len, flags, from, alen, mflags);
	for (i = 0; r > 0 && i < cnt && o < (size_t)r; i++) {
		k = iov[i].iov_len < (size_t)r - o ? iov[i].iov_len : (size_t)r - o;
		memcpy(iov[i].iov_base, b + o, k);
		o += k;
	}
	free(b);
	return (r);
}

EXPORT ssize_t
readv(int fd, const struct iovec *iov, int cnt)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(readv)(fd, iov, cnt));
	return (b_recv_iov(fd, c, iov, cnt, 0, NULL, NULL, NULL));
}

EXPORT ssize_t
recvmsg(int fd, struct msghdr *m, int flags)
{
	struct conn *c = lookup(fd);
	socklen_t alen;
	int mf = 0;
	ssize_t r;

	if (c == NULL)
		return (REAL(recvmsg)(fd, m, flags));
	alen = m->msg_name != NULL ? m->msg_namelen : 0;
	r = b_recv_iov(fd, c, m->msg_iov, (int)m->msg_iovlen, flags,
	    m->msg_name, m->msg_name != NULL ? &alen : NULL, &mf);
	if (r >= 0) {
		m->msg_namelen = m->msg_name != NULL ? alen : 0;
		m->msg_controllen = 0;
		m->msg_flags = mf;
	}
	return (r);
}

EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(__read_chk)(fd, buf, len, buflen));
	if (len > buflen)
		abort();
	return (b_recv(fd, c, buf, len, 0, NULL, NULL, NULL));
}

EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(__recv_chk)(fd, buf, len, buflen, flags));
	if (len > buflen)
		abort();
	return (b_recv(fd, c, buf, len, flags, NULL, NULL, NULL));
}

EXPORT ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
    struct sockaddr *from, socklen_t *alen)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(__recvfrom_chk)(fd, buf, len, buflen, flags, from, alen));
	if (len > buflen)
		abort();
	return (b_recv(fd, c, buf, len, flags, from, alen, NULL));
}

static int
name_call(int fd, struct conn *c, uint16_t op, struct sockaddr *sa, socklen_t *len)
{
	unsigned char addr[ADDRBUF];
	struct req rq = { .op = op };
	struct rep rp = { .o1 = addr, .cap1 = sizeof(addr) };
	size_t n;

	if (len == NULL) {
		errno = EFAULT;
		return (-1);
	}
	if (rpc(fd, c, &rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	n = rp.len1 < sizeof(addr) ? rp.len1 : sizeof(addr);
	if (n > *len)
		n = *len;
	if (n > 0 && sa == NULL) {
		errno = EFAULT;
		return (-1);
	}
	memcpy(sa, addr, n);
	*len = (socklen_t)n;
	return (0);
}

EXPORT int
getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(getsockname)(fd, sa, len));
	return (name_call(fd, c, NGB_GETSOCKNAME, sa, len));
}

EXPORT int
getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct conn *c = lookup(fd);

	if (c == NULL)
		return (REAL(getpeername)(fd, sa, len));
	return (name_call(fd, c, NGB_GETPEERNAME, sa, len));
}

/* (level, name) in FreeBSD's numbering, or -1 (ENOPROTOOPT). */
static int
opt_to_fb(int level, int name, int *fl, int *fn)
{
	if (level == SOL_SOCKET) {
		*fl = FB_SOL_SOCKET;
		*fn = sockopt_to_fb(name);
		return (*fn < 0 ? -1 : 0);
	}
	*fl = level;
	*fn = name;
	return (0);
}

EXPORT int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct conn *c = lookup(fd);
	struct req rq = { .op = NGB_SETSOCKOPT };
	struct rep rp = { 0 };

	if (c == NULL)
		return (REAL(setsockopt)(fd, level, name, val, len));
	if (opt_to_fb(level, name, &rq.a, &rq.b) != 0) {
		errno = ENOPROTOOPT;
		return (-1);
	}
	if (val == NULL && len > 0) {
		errno = EFAULT;
		return (-1);
	}
	if (len > NGB_MAX_BUFFER) {
		errno = EINVAL;
		return (-1);
	}
	rq.p1 = val;
	rq.l1 = len;
	if (rpc(fd, c, &rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	return (0);
}

EXPORT int
getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct conn *c = lookup(fd);
	struct req rq = { .op = NGB_GETSOCKOPT };
	struct rep rp = { 0 };

	if (c == NULL)
		return (REAL(getsockopt)(fd, level, name, val, len));
	if (len == NULL) {
		errno = EFAULT;
		return (-1);
	}
	if (opt_to_fb(level, name, &rq.a, &rq.b) != 0) {
		errno = ENOPROTOOPT;
		return (-1);
	}
	rq.c = *len > NGB_MAX_BUFFER ? (int32_t)NGB_MAX_BUFFER : (int32_t)*len;
	rp.o1 = val;
	rp.cap1 = *len;
	if (rpc(fd, c, &rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	*len = (socklen_t)(rp.len1 < *len ? rp.len1 : *len);
	return (0);
}

EXPORT int
shutdown(int fd, int how)
{
	struct conn *c = lookup(fd);
	struct req rq = { .op = NGB_SHUTDOWN, .a = how };
	struct rep rp = { 0 };

	if (c == NULL)
		return (REAL(shutdown)(fd, how));
	if (rpc(fd, c, &rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	return (0);
}

/* ---------------------------------------------------------------------- */
/* Descriptors */

EXPORT int
close(int fd)
{
	fd_detach(fd);
	return (REAL(close)(fd));
}

EXPORT int
dup(int fd)
{
	struct conn *c = lookup(fd);
	int r = REAL(dup)(fd);

	if (r >= 0 && c != NULL)
		fd_attach(r, c);
	return (r);
}

EXPORT int
dup2(int fd, int fd2)
{
	struct conn *c = lookup(fd);
	int r;

	if (fd == fd2)
		return (REAL(dup2)(fd, fd2));
	r = REAL(dup2)(fd, fd2);
	if (r >= 0) {
		if (c != NULL)
			fd_attach(r, c);
		else
			fd_detach(r);
	}
	return (r);
}

EXPORT int
dup3(int fd, int fd2, int flags)
{
	struct conn *c = lookup(fd);
	int r = REAL(dup3)(fd, fd2, flags);

	if (r >= 0) {
		if (c != NULL)
			fd_attach(r, c);
		else
			fd_detach(r);
	}
	return (r);
}

static int
fcntl_common(int (*f)(int, int, ...), int fd, int cmd, void *arg)
{
	struct conn *c = lookup(fd);
	int r = f(fd, cmd, arg);

	if (r >= 0 && c != NULL && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		fd_attach(r, c);
	return (r);
}

EXPORT int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return (fcntl_common(REAL(fcntl), fd, cmd, arg));
}

EXPORT int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (REAL(fcntl64) == NULL)
		return (fcntl_common(REAL(fcntl), fd, cmd, arg));
	return (fcntl_common(REAL(fcntl64), fd, cmd, arg));
}

EXPORT int
ioctl(int fd, unsigned long req, ...)
{
	struct conn *c = lookup(fd);
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (c == NULL)
		return (REAL(ioctl)(fd, req, arg));
	switch (req) {
	case FIONBIO:
	case FIOASYNC:
	case FIOCLEX:
	case FIONCLEX:
		/* State of the descriptor itself. */
		return (REAL(ioctl)(fd, req, arg));
	case FIONREAD: {
		struct req rq = { .op = NGB_FIONREAD };
		struct rep rp = { 0 };

		if (arg == NULL) {
			errno = EFAULT;
			return (-1);
		}
		if (rpc(fd, c, &rq, &rp) != 0)
			return (-1);
		if (rp.error != 0)
			return (set_fb_errno(rp.error));
		*(int *)arg = (int)rp.ret;
		return (0);
	}
	default:
		errno = EOPNOTSUPP;
		return (-1);
	}
}

EXPORT int
close_range(unsigned int first, unsigned int last, int flags)
{
	unsigned int fd;

	if (!(flags & 4 /* CLOSE_RANGE_CLOEXEC */)) {
		for (fd = first; fd <= last && fd < MAXFD; fd++)
			fd_detach((int)fd);
	}
	return (REAL(close_range)(first, last, flags));
}

EXPORT void
closefrom(int low)
{
	int fd;

	for (fd = low < 0 ? 0 : low; fd < MAXFD; fd++)
		fd_detach(fd);
	REAL(closefrom)(low);
}

/* ---------------------------------------------------------------------- */
/* FreeBSD-only calls */

#define FB_MAXPATHLEN 1024

static int
ctl_simple(uint16_t op, const char *name, int a, int b, struct rep *rp)
{
	struct req rq = { .op = op, .a = a, .b = b };

	if (name != NULL) {
		rq.p1 = name;
		rq.l1 = strlen(name) + 1;
	}
	if (control(&rq, rp) != 0)
		return (-1);
	if (rp->error != 0)
		return (set_fb_errno(rp->error));
	return ((int)rp->ret);
}

EXPORT int
kldload(const char *file)
{
	struct rep rp = { 0 };

	if (file == NULL) {
		errno = EFAULT;
		return (-1);
	}
	return (ctl_simple(NGB_KLDLOAD, file, 0, 0, &rp));
}

EXPORT int
kldunloadf(int fileid, int flags)
{
	struct rep rp = { 0 };

	return (ctl_simple(NGB_KLDUNLOAD, NULL, fileid, flags, &rp) < 0 ? -1 : 0);
}

EXPORT int
kldunload(int fileid)
{
	return (kldunloadf(fileid, 0));
}

EXPORT int
kldfind(const char *file)
{
	struct rep rp = { 0 };

	if (file == NULL) {
		errno = EFAULT;
		return (-1);
	}
	return (ctl_simple(NGB_KLDFIND, file, 0, 0, &rp));
}

EXPORT int
kldnext(int fileid)
{
	struct rep rp = { 0 };

	return (ctl_simple(NGB_KLDNEXT, NULL, fileid, 0, &rp));
}

EXPORT int
kldfirstmod(int fileid)
{
	struct rep rp = { 0 };

	return (ctl_simple(NGB_KLDFIRSTMOD, NULL, fileid, 0, &rp));
}

/* struct kld_file_stat (FreeBSD amd64): version, name[1024], refs, id,
 * address, size, pathname[1024]; version 1 stops before pathname. */
#define KFS_NAME 4
#define KFS_REFS 1028
#define KFS_ID 1032
#define KFS_ADDRESS 1040
#define KFS_SIZE 1048
#define KFS_PATHNAME 1056
#define KFS_SIZE_1 1056
#define KFS_SIZE_2 2080

EXPORT int
kldstat(int fileid, void *stat)
{
	unsigned char name[FB_MAXPATHLEN], path[FB_MAXPATHLEN];
	struct req rq = { .op = NGB_KLDSTAT, .a = fileid };
	struct rep rp = { .o1 = name, .cap1 = sizeof(name) - 1,
		.o2 = path, .cap2 = sizeof(path) - 1 };
	unsigned char *s = stat;
	int version, refs, id;
	uint64_t size, zero = 0;
	size_t n;

	if (s == NULL) {
		errno = EFAULT;
		return (-1);
	}
	memcpy(&version, s, sizeof(int));
	if (version != KFS_SIZE_1 && version != KFS_SIZE_2) {
		errno = EINVAL;
		return (-1);
	}
	if (control(&rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	memset(s + KFS_NAME, 0, FB_MAXPATHLEN);
	n = rp.len1 < sizeof(name) - 1 ? rp.len1 : sizeof(name) - 1;
	memcpy(s + KFS_NAME, name, n);
	refs = rp.x;
	id = rp.y;
	size = (uint64_t)rp.ret;
	memcpy(s + KFS_REFS, &refs, sizeof(int));
	memcpy(s + KFS_ID, &id, sizeof(int));
	memcpy(s + KFS_ADDRESS, &zero, 8);
	memcpy(s + KFS_SIZE, &size, 8);
	if (version == KFS_SIZE_2) {
		memset(s + KFS_PATHNAME, 0, FB_MAXPATHLEN);
		n = rp.len2 < sizeof(path) - 1 ? rp.len2 : sizeof(path) - 1;
		memcpy(s + KFS_PATHNAME, path, n);
	}
	return (0);
}

EXPORT int
modfind(const char *name)
{
	struct rep rp = { 0 };

	if (name == NULL) {
		errno = EFAULT;
		return (-1);
	}
	return (ctl_simple(NGB_MODFIND, name, 0, 0, &rp));
}

EXPORT int
modnext(int modid)
{
	struct rep rp = { 0 };

	return (ctl_simple(NGB_MODNEXT, NULL, modid, 0, &rp));
}

EXPORT int
modfnext(int modid)
{
	struct rep rp = { 0 };
	int file, next;

	/* The next module of the same file. */
	if (ctl_simple(NGB_MODSTAT, NULL, modid, 0, &rp) < 0)
		return (-1);
	file = rp.y;
	next = modid;
	for (;;) {
		memset(&rp, 0, sizeof(rp));
		next = ctl_simple(NGB_MODNEXT, NULL, next, 0, &rp);
		if (next <= 0)
			return (next < 0 ? -1 : 0);
		memset(&rp, 0, sizeof(rp));
		if (ctl_simple(NGB_MODSTAT, NULL, next, 0, &rp) < 0)
			return (-1);
		if (rp.y == file)
			return (next);
	}
}

/* struct module_stat: version, name[MAXMODNAME], refs, id, data; v1/v2
 * have a 32-byte name. */
EXPORT int
modstat(int modid, void *stat)
{
	unsigned char name[FB_MAXPATHLEN];
	struct req rq = { .op = NGB_MODSTAT, .a = modid };
	struct rep rp = { .o1 = name, .cap1 = sizeof(name) - 1 };
	unsigned char *s = stat;
	int version, namelen, refs, id;
	size_t n, off;

	if (s == NULL) {
		errno = EFAULT;
		return (-1);
	}
	memcpy(&version, s, sizeof(int));
	if (version == 1048)
		namelen = FB_MAXPATHLEN;
	else if (version == 44 || version == 56)
		namelen = 32;
	else {
		errno = EINVAL;
		return (-1);
	}
	if (control(&rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	memset(s + 4, 0, namelen);
	n = rp.len1 < (size_t)namelen - 1 ? rp.len1 : (size_t)namelen - 1;
	memcpy(s + 4, name, n);
	refs = rp.x;
	id = (int)rp.ret;
	off = 4 + namelen;
	memcpy(s + off, &refs, sizeof(int));
	memcpy(s + off + 4, &id, sizeof(int));
	if (version != 44) {
		uint64_t zero = 0;

		memcpy(s + ((off + 8 + 7) & ~(size_t)7), &zero, 8);
	}
	return (0);
}

EXPORT int
sysctlbyname(const char *name, void *oldp, size_t *oldlenp, const void *newp, size_t newlen)
{
	unsigned char val[16];
	struct req rq = { .op = NGB_SYSCTL };
	struct rep rp = { .o1 = val, .cap1 = sizeof(val) };
	size_t n;

	if (name == NULL) {
		errno = EFAULT;
		return (-1);
	}
	rq.p1 = name;
	rq.l1 = strlen(name) + 1;
	if (newp != NULL && newlen > 0) {
		if (newlen > sizeof(val)) {
			errno = EINVAL;
			return (-1);
		}
		rq.p2 = newp;
		rq.l2 = newlen;
	}
	if (control(&rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	n = rp.len1 < sizeof(val) ? rp.len1 : sizeof(val);
	if (oldlenp != NULL) {
		if (oldp != NULL) {
			if (*oldlenp < n) {
				memcpy(oldp, val, *oldlenp);
				errno = ENOMEM;
				return (-1);
			}
			memcpy(oldp, val, n);
		}
		*oldlenp = n;
	}
	return (0);
}

/*
 * Harness control for test drivers: `op` is one of NGB_SETTLE,
 * NGB_ADVANCE (arg = milliseconds), NGB_STATUS; returns the reply's ret.
 */
EXPORT long
ngbridge_control(int op, int arg)
{
	struct rep rp = { 0 };
	struct req rq = { .op = (uint16_t)op, .a = arg };

	if (control(&rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	return ((long)rp.ret);
}

/* ---------------------------------------------------------------------- */
/* Process life */

static void
atfork_child(void)
{
	int fd;

	/* Another thread may have held a lock at fork time. */
	pthread_mutex_init(&tab_mu, NULL);
	for (fd = 0; fd < MAXFD; fd++) {
		struct conn *c = atomic_load(&tab[fd]);

		if (c != NULL)
			pthread_mutex_init(&c->mu, NULL);
	}
}

/*
 * Descriptors inherited across exec that are connections to the server are
 * bridged sockets of this process too.
 */
static void
adopt_inherited(void)
{
	const char *path = server_path();
	DIR *d;
	struct dirent *e;
	struct {
		ino_t ino;
		struct conn *c;
	} seen[64];
	int nseen = 0, i;

	if (path == NULL || (d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name), type = 0;
		socklen_t tl = sizeof(type);
		struct sockaddr_un sun;
		socklen_t sl = sizeof(sun);
		struct stat st;
		struct conn *c = NULL;

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d) || fd >= MAXFD)
			continue;
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			continue;
		if (REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_SEQPACKET)
			continue;
		memset(&sun, 0, sizeof(sun));
		if (REAL(getpeername)(fd, (struct sockaddr *)&sun, &sl) != 0 ||
		    sun.sun_family != AF_UNIX || strncmp(sun.sun_path, path, sizeof(sun.sun_path)) != 0)
			continue;
		for (i = 0; i < nseen; i++)
			if (seen[i].ino == st.st_ino)
				c = seen[i].c;
		if (c == NULL) {
			if ((c = conn_new()) == NULL)
				continue;
			if (nseen < 64) {
				seen[nseen].ino = st.st_ino;
				seen[nseen].c = c;
				nseen++;
			}
		}
		fd_attach(fd, c);
	}
	closedir(d);
}

__attribute__((constructor)) static void
ngbridge_init(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
	adopt_inherited();
}
