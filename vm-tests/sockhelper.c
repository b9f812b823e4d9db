/*
 * sockhelper: the UDP and TCP peers outside netgraph that scenario scripts
 * use (the udp/tcp statements and the recv, recv-from, silent and eof
 * expectations of docs/scenarios.md).
 *
 * One daemon per scenario owns the named sockets, so that a socket bound by
 * one statement can receive in a later one; every statement is one request
 * to it over a unix socket:
 *
 *   sockhelper serve SOCKPATH          the daemon (runs until "quit")
 *   sockhelper req SOCKPATH WORD...    one request; prints the result
 *
 * Requests (WORDs joined by spaces; HEX is the payload in hex, "-" if empty):
 *   udp NAME bind ADDR PORT            udp NAME send ADDR PORT HEX
 *   tcp NAME listen ADDR PORT          tcp NAME connect ADDR PORT MS
 *   tcp NAME accept FROM MS            tcp NAME send HEX
 *   tcp NAME close
 *   recv NAME HEX MS                   recvfrom NAME ADDR PORT HEX MS
 *   silent NAME MS                     eof NAME MS
 *   quit
 *
 * Exit status of req: 0 done; 1 the operation failed (prints
 * "sockhelper: <what>: <strerror>", the form "=> error ERRNO" matches);
 * 2 an expectation was not met; 3 bad request or no daemon.
 *
 * NGS_SLOW=N in the daemon's environment multiplies every time bound by N
 * (the VM runs emulated, without KVM).
 *
 * Plain POSIX sockets: builds with FreeBSD's cc and with Linux's gcc/clang.
 * BSD-2-Clause, part of ngsock.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXSOCKS	64
#define MAXWORDS	16
#define MAXREQ		(8 * 1024 * 1024)
#define RECVBUF		(256 * 1024)

enum kind { K_FREE, K_UDP, K_LISTEN, K_TCP };

struct sock {
	enum kind kind;
	char name[64];
	int fd;
};

static struct sock socks[MAXSOCKS];

/* Time scale: every time bound is multiplied by NGS_SLOW (emulated CPUs). */
static int slow = 1;

static int
ms(const char *s)
{
	return (atoi(s) * slow);
}

/* ------------------------------------------------------------ replies */

static char reply[RECVBUF * 4 + 1024];

static void
set_reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reply, sizeof(reply), fmt, ap);
	va_end(ap);
}

/* "err ERRNO WHAT": the client prints WHAT: strerror(ERRNO). */
static void
fail_errno(int e, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	set_reply("err %d %s", e, what);
}

/* ------------------------------------------------------------ helpers */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static struct sock *
find_sock(const char *name)
{
	int i;

	for (i = 0; i < MAXSOCKS; i++)
		if (socks[i].kind != K_FREE && strcmp(socks[i].name, name) == 0)
			return (&socks[i]);
	return (NULL);
}

static struct sock *
new_sock(const char *name, enum kind kind, int fd)
{
	int i;

	for (i = 0; i < MAXSOCKS; i++)
		if (socks[i].kind == K_FREE) {
			socks[i].kind = kind;
			snprintf(socks[i].name, sizeof(socks[i].name), "%s", name);
			socks[i].fd = fd;
			return (&socks[i]);
		}
	return (NULL);
}

static int
parse_addr(const char *addr, const char *port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char *end;
	long p;

	p = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || p < 0 || p > 65535)
		return (-1);
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)p);
		*len = sizeof(*sin);
#if defined(__FreeBSD__) || defined(__APPLE__) || defined(__NetBSD__) || defined(__OpenBSD__)
		sin->sin_len = sizeof(*sin);
#endif
		return (0);
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)p);
		*len = sizeof(*sin6);
#if defined(__FreeBSD__) || defined(__APPLE__) || defined(__NetBSD__) || defined(__OpenBSD__)
		sin6->sin6_len = sizeof(*sin6);
#endif
		return (0);
	}
	return (-1);
}

static void
format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else
		snprintf(buf, len, "(family %d)", ss->ss_family);
}

/* Decode HEX ("-" = empty) into a new buffer; returns its length or -1. */
static long
unhex(const char *hex, unsigned char **out)
{
	size_t n, i;
	unsigned char *buf;

	if (strcmp(hex, "-") == 0) {
		*out = malloc(1);
		return (*out == NULL ? -1 : 0);
	}
	n = strlen(hex);
	if (n % 2 != 0)
		return (-1);
	buf = malloc(n / 2 + 1);
	if (buf == NULL)
		return (-1);
	for (i = 0; i < n / 2; i++) {
		unsigned int v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			free(buf);
			return (-1);
		}
		buf[i] = (unsigned char)v;
	}
	*out = buf;
	return ((long)(n / 2));
}

/* Render bytes for a message: hex, and the printable form in quotes. */
static void
describe(const unsigned char *p, size_t n, char *buf, size_t len)
{
	size_t i, o = 0, shown = n > 64 ? 64 : n;

	o += snprintf(buf + o, len - o, "%zu byte%s", n, n == 1 ? "" : "s");
	if (n == 0)
		return;
	o += snprintf(buf + o, len - o, " ");
	for (i = 0; i < shown && o + 3 < len; i++)
		o += snprintf(buf + o, len - o, "%02x", p[i]);
	if (shown < n && o + 4 < len)
		o += snprintf(buf + o, len - o, "...");
	if (o + 4 < len)
		o += snprintf(buf + o, len - o, " \"");
	for (i = 0; i < shown && o + 5 < len; i++) {
		unsigned char c = p[i];

		if (c == '\n')
			o += snprintf(buf + o, len - o, "\\n");
		else if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c, buf[o] = '\0';
		else
			o += snprintf(buf + o, len - o, "\\x%02x", c);
	}
	if (o + 2 < len)
		snprintf(buf + o, len - o, "\"");
}

/* Wait until fd is readable; 1 readable, 0 timeout, -1 error. */
static int
wait_readable(int fd, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left < 0)
			left = 0;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return (r < 0 ? -1 : r > 0);
	}
}

/* ------------------------------------------------------------ requests */

static void
req_udp(char **w, int nw)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct sock *s;
	unsigned char *data;
	long n;
	int fd;

	if (nw < 5 || parse_addr(w[3], w[4], &ss, &sl) != 0) {
		set_reply("bad udp request");
		return;
	}
	s = find_sock(w[1]);
	if (s != NULL && s->kind != K_UDP) {
		set_reply("bad socket %s is not a udp socket", w[1]);
		return;
	}
	if (s == NULL) {
		fd = socket(ss.ss_family, SOCK_DGRAM, 0);
		if (fd < 0) {
			fail_errno(errno, "udp %s: socket", w[1]);
			return;
		}
		if ((s = new_sock(w[1], K_UDP, fd)) == NULL) {
			close(fd);
			set_reply("bad too many sockets");
			return;
		}
	}
	if (strcmp(w[2], "bind") == 0 && nw == 5) {
		if (bind(s->fd, (struct sockaddr *)&ss, sl) != 0) {
			fail_errno(errno, "udp %s: bind %s:%s", w[1], w[3], w[4]);
			return;
		}
		sl = sizeof(ss);
		getsockname(s->fd, (struct sockaddr *)&ss, &sl);
		{
			char a[128];

			format_addr(&ss, a, sizeof(a));
			set_reply("ok udp %s bound to %s", w[1], a);
		}
	} else if (strcmp(w[2], "send") == 0 && nw == 6) {
		if ((n = unhex(w[5], &data)) < 0) {
			set_reply("bad payload");
			return;
		}
		if (sendto(s->fd, data, (size_t)n, 0, (struct sockaddr *)&ss, sl) != n) {
			fail_errno(errno, "udp %s: send to %s:%s", w[1], w[3], w[4]);
			free(data);
			return;
		}
		free(data);
		set_reply("ok udp %s sent %ld bytes to %s:%s", w[1], n, w[3], w[4]);
	} else
		set_reply("bad udp request");
}

static void
req_tcp(char **w, int nw)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct sock *s, *l;
	unsigned char *data;
	long n, off;
	int fd, one = 1, e, r;

	if (nw < 3) {
		set_reply("bad tcp request");
		return;
	}
	s = find_sock(w[1]);
	if (strcmp(w[2], "listen") == 0 && nw == 5) {
		if (s != NULL || parse_addr(w[3], w[4], &ss, &sl) != 0) {
			set_reply("bad tcp listen request");
			return;
		}
		if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0) {
			fail_errno(errno, "tcp %s: socket", w[1]);
			return;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
			fail_errno(errno, "tcp %s: bind %s:%s", w[1], w[3], w[4]);
			close(fd);
			return;
		}
		if (listen(fd, 16) != 0) {
			fail_errno(errno, "tcp %s: listen", w[1]);
			close(fd);
			return;
		}
		new_sock(w[1], K_LISTEN, fd);
		set_reply("ok tcp %s listening on %s:%s", w[1], w[3], w[4]);
	} else if (strcmp(w[2], "connect") == 0 && nw == 6) {
		if (s != NULL || parse_addr(w[3], w[4], &ss, &sl) != 0) {
			set_reply("bad tcp connect request");
			return;
		}
		if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0) {
			fail_errno(errno, "tcp %s: socket", w[1]);
			return;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
			struct pollfd pfd;

			if (errno != EINPROGRESS) {
				fail_errno(errno, "tcp %s: connect %s:%s", w[1], w[3], w[4]);
				close(fd);
				return;
			}
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			r = poll(&pfd, 1, ms(w[5]));
			if (r <= 0) {
				fail_errno(r == 0 ? ETIMEDOUT : errno, "tcp %s: connect %s:%s",
				    w[1], w[3], w[4]);
				close(fd);
				return;
			}
			sl = sizeof(e);
			e = 0;
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl);
			if (e != 0) {
				fail_errno(e, "tcp %s: connect %s:%s", w[1], w[3], w[4]);
				close(fd);
				return;
			}
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		new_sock(w[1], K_TCP, fd);
		set_reply("ok tcp %s connected to %s:%s", w[1], w[3], w[4]);
	} else if (strcmp(w[2], "accept") == 0 && nw == 5) {
		l = find_sock(w[3]);
		if (s != NULL || l == NULL || l->kind != K_LISTEN) {
			set_reply("bad tcp accept request");
			return;
		}
		r = wait_readable(l->fd, now_ms() + ms(w[4]));
		if (r <= 0) {
			fail_errno(r == 0 ? ETIMEDOUT : errno, "tcp %s: accept on %s", w[1], w[3]);
			return;
		}
		sl = sizeof(ss);
		if ((fd = accept(l->fd, (struct sockaddr *)&ss, &sl)) < 0) {
			fail_errno(errno, "tcp %s: accept on %s", w[1], w[3]);
			return;
		}
		new_sock(w[1], K_TCP, fd);
		{
			char a[128];

			format_addr(&ss, a, sizeof(a));
			set_reply("ok tcp %s accepted from %s", w[1], a);
		}
	} else if (strcmp(w[2], "send") == 0 && nw == 4) {
		if (s == NULL || s->kind != K_TCP || (n = unhex(w[3], &data)) < 0) {
			set_reply("bad tcp send request");
			return;
		}
		for (off = 0; off < n; ) {
			ssize_t k = write(s->fd, data + off, (size_t)(n - off));

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				fail_errno(errno, "tcp %s: send", w[1]);
				free(data);
				return;
			}
			off += k;
		}
		free(data);
		set_reply("ok tcp %s sent %ld bytes", w[1], n);
	} else if (strcmp(w[2], "close") == 0 && nw == 3) {
		if (s == NULL || (s->kind != K_TCP && s->kind != K_LISTEN)) {
			set_reply("bad tcp close request");
			return;
		}
		close(s->fd);
		s->kind = K_FREE;
		set_reply("ok tcp %s closed", w[1]);
	} else
		set_reply("bad tcp request");
}

/* recv NAME HEX MS, recvfrom NAME ADDR PORT HEX MS */
static void
req_recv(char **w, int nw, int from)
{
	static unsigned char buf[RECVBUF];
	struct sockaddr_storage want_ss, got_ss;
	socklen_t want_sl, got_sl;
	struct sock *s;
	unsigned char *want;
	long wantn;
	size_t got = 0;
	long long deadline;
	char d1[600], d2[600], a1[128], a2[128];
	int r;

	if ((!from && nw != 4) || (from && nw != 6)) {
		set_reply("bad recv request");
		return;
	}
	s = find_sock(w[1]);
	if (s == NULL || s->kind == K_LISTEN || (from && s->kind != K_UDP)) {
		set_reply("bad no suitable socket %s to receive on", w[1]);
		return;
	}
	if (from && parse_addr(w[2], w[3], &want_ss, &want_sl) != 0) {
		set_reply("bad address");
		return;
	}
	if ((wantn = unhex(w[from ? 4 : 2], &want)) < 0) {
		set_reply("bad payload");
		return;
	}
	deadline = now_ms() + ms(w[from ? 5 : 3]);
	describe(want, (size_t)wantn, d1, sizeof(d1));
	if (s->kind == K_UDP) {
		r = wait_readable(s->fd, deadline);
		if (r <= 0) {
			set_reply("mismatch socket %s: no datagram within %s ms (expected %s)",
			    w[1], w[from ? 5 : 3], d1);
			free(want);
			return;
		}
		got_sl = sizeof(got_ss);
		ssize_t k = recvfrom(s->fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&got_ss, &got_sl);
		if (k < 0) {
			fail_errno(errno, "%s: recv", w[1]);
			free(want);
			return;
		}
		got = (size_t)k;
		describe(buf, got, d2, sizeof(d2));
		format_addr(&got_ss, a2, sizeof(a2));
		if (got != (size_t)wantn || memcmp(buf, want, got) != 0) {
			set_reply("mismatch socket %s: expected %s, received %s from %s",
			    w[1], d1, d2, a2);
			free(want);
			return;
		}
		if (from) {
			format_addr(&want_ss, a1, sizeof(a1));
			if (strcmp(a1, a2) != 0) {
				set_reply("mismatch socket %s: the datagram came from %s, expected %s",
				    w[1], a2, a1);
				free(want);
				return;
			}
		}
		set_reply("ok %s received %s from %s", w[1], d2, a2);
		free(want);
		return;
	}
	/* TCP: the next wantn bytes of the stream. */
	while (got < (size_t)wantn) {
		r = wait_readable(s->fd, deadline);
		if (r <= 0)
			break;
		ssize_t k = recv(s->fd, buf + got, (size_t)wantn - got, 0);
		if (k < 0) {
			fail_errno(errno, "%s: recv", w[1]);
			free(want);
			return;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	describe(buf, got, d2, sizeof(d2));
	if (got != (size_t)wantn || memcmp(buf, want, got) != 0)
		set_reply("mismatch socket %s: expected %s within %s ms, received %s",
		    w[1], d1, w[3], d2);
	else
		set_reply("ok %s received %s", w[1], d2);
	free(want);
}

static void
req_silent_eof(char **w, int nw, int eof)
{
	static unsigned char buf[RECVBUF];
	struct sock *s;
	char d[600];
	ssize_t k;
	int r;

	if (nw != 3) {
		set_reply("bad request");
		return;
	}
	s = find_sock(w[1]);
	if (s == NULL || s->kind == K_LISTEN || (eof && s->kind != K_TCP)) {
		set_reply("bad no suitable socket %s", w[1]);
		return;
	}
	r = wait_readable(s->fd, now_ms() + ms(w[2]));
	if (r < 0) {
		fail_errno(errno, "%s: poll", w[1]);
		return;
	}
	if (r == 0) {
		if (eof)
			set_reply("mismatch socket %s: no end of file within %s ms", w[1], w[2]);
		else
			set_reply("ok %s silent for %s ms", w[1], w[2]);
		return;
	}
	k = recv(s->fd, buf, sizeof(buf), eof ? 0 : MSG_PEEK);
	if (k < 0) {
		fail_errno(errno, "%s: recv", w[1]);
		return;
	}
	if (k == 0) {
		set_reply(eof ? "ok %s reached end of file" : "ok %s silent (end of file)", w[1]);
		return;
	}
	describe(buf, (size_t)k, d, sizeof(d));
	if (eof)
		set_reply("mismatch socket %s: expected end of file, received %s", w[1], d);
	else
		set_reply("mismatch socket %s: expected silence, received %s", w[1], d);
}

static int
handle(char *line)
{
	char *w[MAXWORDS];
	int nw = 0;
	char *p, *save = NULL;

	for (p = strtok_r(line, " \n", &save); p != NULL && nw < MAXWORDS;
	    p = strtok_r(NULL, " \n", &save))
		w[nw++] = p;
	if (nw == 0) {
		set_reply("bad empty request");
		return (0);
	}
	if (strcmp(w[0], "quit") == 0) {
		set_reply("ok bye");
		return (1);
	}
	if (strcmp(w[0], "udp") == 0)
		req_udp(w, nw);
	else if (strcmp(w[0], "tcp") == 0)
		req_tcp(w, nw);
	else if (strcmp(w[0], "recv") == 0)
		req_recv(w, nw, 0);
	else if (strcmp(w[0], "recvfrom") == 0)
		req_recv(w, nw, 1);
	else if (strcmp(w[0], "silent") == 0)
		req_silent_eof(w, nw, 0);
	else if (strcmp(w[0], "eof") == 0)
		req_silent_eof(w, nw, 1);
	else
		set_reply("bad unknown request %s", w[0]);
	return (0);
}

/* ------------------------------------------------------------ daemon and client */

static int
unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return (-1);
	strcpy(sun->sun_path, path);
	return (0);
}

static int
serve(const char *path)
{
	struct sockaddr_un sun;
	int ls, c, done = 0;
	char *req;

	if (unix_addr(path, &sun) != 0) {
		fprintf(stderr, "sockhelper: %s: path too long\n", path);
		return (3);
	}
	if ((req = malloc(MAXREQ + 1)) == NULL)
		return (3);
	unlink(path);
	if ((ls = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    bind(ls, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(ls, 4) != 0) {
		fprintf(stderr, "sockhelper: %s: %s\n", path, strerror(errno));
		return (3);
	}
	while (!done) {
		size_t n = 0;
		ssize_t k;

		if ((c = accept(ls, NULL, NULL)) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "sockhelper: accept: %s\n", strerror(errno));
			break;
		}
		while (n < MAXREQ && (k = read(c, req + n, MAXREQ - n)) > 0) {
			n += (size_t)k;
			if (req[n - 1] == '\n')
				break;
		}
		req[n] = '\0';
		reply[0] = '\0';
		done = handle(req);
		strncat(reply, "\n", sizeof(reply) - strlen(reply) - 1);
		(void)!write(c, reply, strlen(reply));
		close(c);
	}
	close(ls);
	unlink(path);
	return (0);
}

static int
request(const char *path, int argc, char **argv)
{
	struct sockaddr_un sun;
	size_t len = 1, n = 0;
	char *msg, *resp, *p;
	int fd, i;
	ssize_t k;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if ((msg = malloc(len + 1)) == NULL || (resp = malloc(sizeof(reply) + 1)) == NULL)
		return (3);
	msg[0] = '\0';
	for (i = 0; i < argc; i++) {
		strcat(msg, argv[i]);
		strcat(msg, i + 1 < argc ? " " : "\n");
	}
	if (unix_addr(path, &sun) != 0 || (fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "sockhelper: no helper daemon at %s: %s\n", path, strerror(errno));
		return (3);
	}
	for (p = msg; *p != '\0'; p += k)
		if ((k = write(fd, p, strlen(p))) <= 0) {
			fprintf(stderr, "sockhelper: write: %s\n", strerror(errno));
			return (3);
		}
	while (n < sizeof(reply) && (k = read(fd, resp + n, sizeof(reply) - n)) > 0)
		n += (size_t)k;
	resp[n] = '\0';
	if (n > 0 && resp[n - 1] == '\n')
		resp[n - 1] = '\0';
	close(fd);
	if (strncmp(resp, "ok", 2) == 0) {
		if (resp[2] == ' ')
			printf("%s\n", resp + 3);
		return (0);
	}
	if (strncmp(resp, "err ", 4) == 0) {
		char *what;
		int e = (int)strtol(resp + 4, &what, 10);

		while (*what == ' ')
			what++;
		fprintf(stderr, "sockhelper: %s: %s\n", what, strerror(e));
		return (1);
	}
	if (strncmp(resp, "mismatch ", 9) == 0) {
		printf("%s\n", resp + 9);
		return (2);
	}
	fprintf(stderr, "sockhelper: %s\n", n > 0 ? resp : "no reply from the helper daemon");
	return (3);
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (getenv("NGS_SLOW") != NULL && atoi(getenv("NGS_SLOW")) > 1)
		slow = atoi(getenv("NGS_SLOW"));
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return (serve(argv[2]));
	if (argc >= 4 && strcmp(argv[1], "req") == 0)
		return (request(argv[2], argc - 3, argv + 3));
	fprintf(stderr, "usage: sockhelper serve SOCKPATH\n"
	    "       sockhelper req SOCKPATH WORD...\n");
	return (3);
}
