/*
 * libngbridge.so: the socket calls on bridged descriptors, and the
 * descriptor calls that keep track of them (docs/bridge.md).
 */
#include "ngbridge.h"

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

