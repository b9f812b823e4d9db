/*
 * Malformed requests on the bridge's own socket get an error reply and
 * never bring the server down: short packets, bad magic, impossible
 * lengths, random bytes, unknown operations, socket calls on a connection
 * without a socket, a second socket on one connection, absurd buffer
 * sizes, a client that vanishes in the middle of a request. Afterwards
 * ordinary netgraph sockets still work.
 */
#include <sys/un.h>

#include "ngtest.h"
#include "../ngbridge_wire.h"

static int
raw_conn(void)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, getenv("NGBRIDGE"), sizeof(sun.sun_path));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		return (-1);
	return (fd);
}

static void
put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static int32_t
get32(const unsigned char *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return (v);
}

/* A request header; returns its length. */
static size_t
hdr(unsigned char *h, uint16_t op, int32_t a, int32_t b, int32_t c, uint32_t l1, uint32_t l2,
    uint32_t l3)
{
	memset(h, 0, NGB_HDR);
	put32(h, NGB_MAGIC);
	memcpy(h + 4, &op, 2);
	put32(h + 8, (uint32_t)geteuid());
	put32(h + 12, (uint32_t)a);
	put32(h + 16, (uint32_t)b);
	put32(h + 20, (uint32_t)c);
	put32(h + 24, l1);
	put32(h + 28, l2);
	put32(h + 32, l3);
	return (NGB_HDR);
}

/* Sends a packet and returns the error of the reply (or -1000 if none). */
static int
call(int fd, const void *p, size_t n)
{
	unsigned char r[NGB_CHUNK + 1];

	if (send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n)
		return (-1000);
	for (;;) {
		ssize_t k;

		if (ng_wait(fd, 5000) != 1)
			return (-1000);
		k = recv(fd, r, sizeof(r), 0);
		if (k < NGB_HDR || get32(r) != (int32_t)NGB_MAGIC)
			return (-1000);
		if (r[NGB_REP_KIND] == NGB_KIND_READABLE)
			continue;
		return (get32(r + NGB_REP_ERROR));
	}
}

int
main(void)
{
	unsigned char h[NGB_CHUNK];
	int fd, fd2, cs, ds, i, e;
	pid_t p;

	t_name = "t_wire";
	srand(1234);
	fd = raw_conn();
	CHECK(fd >= 0, "raw connection to the bridge");

	CHECK(call(fd, "x", 1) == 22, "1-byte packet: EINVAL");
	memset(h, 0, sizeof(h));
	CHECK(call(fd, h, NGB_HDR) == 22, "zero magic: EINVAL");
	hdr(h, NGB_SOCKET, 32, 2, 2, 0xffffffffu, 0xffffffffu, 0);
	CHECK(call(fd, h, NGB_HDR) == 22, "impossible lengths: EINVAL");
	hdr(h, NGB_SOCKET, 32, 2, 2, 100, 0, 0);
	CHECK(call(fd, h, NGB_HDR + 3) == 22, "blob shorter than announced: EINVAL");
	hdr(h, NGB_SOCKET, 32, 2, 2, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR + 7) == 22, "trailing bytes: EINVAL");
	for (i = 0; i < 200; i++) {
		size_t n = 1 + (size_t)rand() % 300, k;

		for (k = 0; k < n; k++)
			h[k] = (unsigned char)rand();
		if (i % 2)
			put32(h, NGB_MAGIC);
		e = call(fd, h, n);
		if (e == -1000)
			break;
	}
	CHECK(i == 200, "200 random packets each answered (stopped at %d)", i);
	hdr(h, 999, 0, 0, 0, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR) == 45, "unknown operation: EOPNOTSUPP");
	hdr(h, NGB_RECV, 0, 100, 0, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR) == 9, "recv without a socket: EBADF");
	hdr(h, NGB_SOCKET, 32, 2, 1, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR) == 0, "a data socket");
	CHECK(call(fd, h, NGB_HDR) == 22, "a second socket on the connection: EINVAL");
	hdr(h, NGB_RECV, 0, -5, 0, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR) == 22, "negative buffer length: EINVAL");
	hdr(h, NGB_RECV, 0, 0x7fffffff, 0, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR) == 35, "huge buffer, nothing queued: EWOULDBLOCK");
	hdr(h, NGB_GETSOCKOPT, 0xffff, 0x1002, 0x7fffffff, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR) == 0, "huge option buffer");
	hdr(h, NGB_BIND, 0, 0, 0, 1, 0, 0);
	CHECK(call(fd, h, NGB_HDR + 1) == 22, "bind with a 1-byte address: EINVAL");
	hdr(h, NGB_SEND, 0, 0, NGB_SEND_ADDR | NGB_SEND_CONTROL, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR) == 22, "send with empty address and control: EINVAL");
	hdr(h, NGB_KLDSTAT, 0x7fffffff, 0, 0, 0, 0, 0);
	CHECK(call(fd, h, NGB_HDR) == 2, "kldstat of no file: ENOENT");
	hdr(h, NGB_SYSCTL, 0, 0, 0, 5, 3, 0);
	memcpy(h + NGB_HDR, "a.b.c", 5);
	CHECK(call(fd, h, NGB_HDR + 8) == 2, "sysctl of no name: ENOENT");
	/* A request announced over several packets, then the client is gone. */
	fd2 = raw_conn();
	hdr(h, NGB_SEND, 0, 0, 0, 0, 3 * NGB_CHUNK, 0);
	CHECK(fd2 >= 0 && send(fd2, h, NGB_CHUNK, MSG_NOSIGNAL) == NGB_CHUNK, "first packet of three");
	close(fd2);
	close(fd);

	/* A child that dies halfway through writing requests. */
	p = fork();
	if (p == 0) {
		int k = raw_conn();

		hdr(h, NGB_SOCKET, 32, 2, 2, 0, 0, 0);
		send(k, h, NGB_HDR, MSG_NOSIGNAL);
		hdr(h, NGB_KLDLOAD, 0, 0, 0, 1000, 0, 0);
		send(k, h, NGB_HDR + 10, MSG_NOSIGNAL);
		_exit(0);
	}
	waitpid(p, &i, 0);

	/* The server is alive and well. */
	CHECK(ng_mknode("twire", &cs, &ds) == 0, "a node after all that");
	CHECK(ng_node_exists(cs, "twire") == 1, "listed");
	close(ds);
	close(cs);
	return (t_done());
}
