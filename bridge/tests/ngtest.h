/*
 * Helpers of the bridge's C test programs: netgraph socket calls as a
 * libnetgraph program makes them (our own small versions), and checks.
 * Each program prints one line per failed check and a summary line
 * "NAME: N checks, M failed"; its exit status is 0 only if all passed.
 */
#ifndef NGTEST_H
#define NGTEST_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <netgraph/ng_message.h>
#include <netgraph/ng_socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int t_checks, t_failed;
static const char *t_name = "test";

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		int ok_ = (cond) ? 1 : 0;                                   \
		int e_ = errno;                                             \
		t_checks++;                                                 \
		if (!ok_) {                                                 \
			t_failed++;                                         \
			printf("not ok %s:%d: ", __FILE__, __LINE__);        \
			printf(__VA_ARGS__);                                \
			printf(" [%s; errno %d: %s]\n", #cond, e_, strerror(e_)); \
			fflush(stdout);                                     \
		}                                                           \
		errno = e_;                                                 \
	} while (0)

static inline int
t_done(void)
{
	printf("%s: %d checks, %d failed\n", t_name, t_checks, t_failed);
	return (t_failed != 0);
}

/* A sockaddr_ng for `path`, as libnetgraph builds it; returns its length. */
static inline socklen_t
ng_addr(struct sockaddr_ng *sg, const char *path)
{
	memset(sg, 0, sizeof(*sg));
	strlcpy(sg->sg_data, path, sizeof(sg->sg_data));
	sg->sg_family = AF_NETGRAPH;
	sg->sg_len = (unsigned char)(strlen(sg->sg_data) + 3);
	return (sg->sg_len);
}

/* A long path needs more room than struct sockaddr_ng has. */
struct ng_bigaddr {
	unsigned char len, family;
	char data[NG_PATHSIZ];
};

static inline socklen_t
ng_bigaddr(struct ng_bigaddr *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	strlcpy(a->data, path, sizeof(a->data));
	a->family = AF_NETGRAPH;
	a->len = (unsigned char)(strlen(a->data) + 3);
	return (a->len);
}

static unsigned int t_token;

/* Sends a control message; returns its token or -1. */
static inline int
ng_send(int cs, const char *path, uint32_t cookie, uint32_t cmd, const void *args, size_t len)
{
	struct ng_bigaddr a;
	socklen_t al = ng_bigaddr(&a, path);
	size_t n = sizeof(struct ng_mesg) + len;
	struct ng_mesg *m = calloc(1, n);
	ssize_t r;

	if (m == NULL)
		return (-1);
	m->header.version = NG_VERSION;
	m->header.typecookie = cookie;
	m->header.cmd = cmd;
	m->header.arglen = (uint32_t)len;
	m->header.token = ++t_token;
	m->header.flags = NGF_ORIG;
	snprintf((char *)m->header.cmdstr, sizeof(m->header.cmdstr), "cmd%u", cmd);
	if (len)
		memcpy(m->data, args, len);
	r = sendto(cs, m, n, 0, (struct sockaddr *)&a, al);
	free(m);
	return (r < 0 ? -1 : (int)t_token);
}

/* Waits up to `ms` for `fd` to be readable: 1, 0 (timeout) or -1. */
static inline int
ng_wait(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return (poll(&p, 1, ms));
}

/* Receives one message (waiting up to 2 s); returns its length or -1. */
static inline int
ng_recv(int cs, void *buf, size_t len, char *from, size_t fromlen)
{
	struct ng_bigaddr a;
	socklen_t al = sizeof(a);
	ssize_t r;

	if (ng_wait(cs, 2000) != 1) {
		errno = ETIMEDOUT;
		return (-1);
	}
	memset(&a, 0, sizeof(a));
	r = recvfrom(cs, buf, len, 0, (struct sockaddr *)&a, &al);
	if (r >= 0 && from != NULL)
		strlcpy(from, a.data, fromlen);
	return ((int)r);
}

/* A request and its reply (into `buf`); returns the reply length or -1. */
static inline int
ng_query(int cs, const char *path, uint32_t cookie, uint32_t cmd, const void *args,
    size_t alen, void *buf, size_t len)
{
	if (ng_send(cs, path, cookie, cmd, args, alen) < 0)
		return (-1);
	return (ng_recv(cs, buf, len, NULL, 0));
}

/* Creates a socket node named `name` (NULL: unnamed) with both sockets. */
static inline int
ng_mknode(const char *name, int *csp, int *dsp)
{
	struct sockaddr_ng sg;
	char target[NG_NODESIZ + 2];
	union {
		struct ng_mesg m;
		char buf[sizeof(struct ng_mesg) + sizeof(struct nodeinfo)];
	} u;
	int cs, ds;

	if ((cs = socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL)) < 0)
		return (-1);
	if (name != NULL) {
		if (bind(cs, (struct sockaddr *)&sg, ng_addr(&sg, name)) < 0) {
			close(cs);
			return (-1);
		}
		snprintf(target, sizeof(target), "%s:", name);
	} else {
		if (ng_query(cs, ".", NGM_GENERIC_COOKIE, NGM_NODEINFO, NULL, 0, &u, sizeof(u)) < 0) {
			close(cs);
			return (-1);
		}
		snprintf(target, sizeof(target), "[%x]:", ((struct nodeinfo *)u.m.data)->id);
	}
	if ((ds = socket(PF_NETGRAPH, SOCK_DGRAM, NG_DATA)) < 0 ||
	    connect(ds, (struct sockaddr *)&sg, ng_addr(&sg, target)) < 0) {
		close(cs);
		if (ds >= 0)
			close(ds);
		return (-1);
	}
	*csp = cs;
	*dsp = ds;
	return (0);
}

/* Is a node of this name in NGM_LISTNODES? 1, 0, or -1 on error. */
static inline int
ng_node_exists(int cs, const char *name)
{
	static char buf[65536];
	struct ng_mesg *m = (struct ng_mesg *)buf;
	struct namelist *nl;
	unsigned int i;

	if (ng_query(cs, ".", NGM_GENERIC_COOKIE, NGM_LISTNODES, NULL, 0, buf, sizeof(buf)) < 0)
		return (-1);
	nl = (struct namelist *)m->data;
	for (i = 0; i < nl->numnames; i++)
		if (strcmp(nl->nodeinfo[i].name, name) == 0)
			return (1);
	return (0);
}

/* Waits up to 3 s for a node to appear (want = 1) or go (want = 0). */
static inline int
ng_node_settles(int cs, const char *name, int want)
{
	int i, r = -1;

	for (i = 0; i < 300; i++) {
		r = ng_node_exists(cs, name);
		if (r == want)
			return (1);
		usleep(10000);
	}
	return (0);
}

/* NGM_MKPEER from `path`: a new node of `type`, hooks `ours` / `peers`. */
static inline int
ng_mkpeer(int cs, const char *path, const char *type, const char *ours, const char *peers)
{
	struct ngm_mkpeer mp;

	memset(&mp, 0, sizeof(mp));
	strlcpy(mp.type, type, sizeof(mp.type));
	strlcpy(mp.ourhook, ours, sizeof(mp.ourhook));
	strlcpy(mp.peerhook, peers, sizeof(mp.peerhook));
	return (ng_send(cs, path, NGM_GENERIC_COOKIE, NGM_MKPEER, &mp, sizeof(mp)) < 0 ? -1 : 0);
}

static inline long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
}

#endif
