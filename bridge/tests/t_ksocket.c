/*
 * ng_ksocket driven with binary messages, as a C program does (no ASCII
 * forms): a UDP ksocket hung off our socket node, its address given and
 * read back as FreeBSD's struct sockaddr_in (one-byte length and family,
 * which Linux's has not), data between the data socket and a real UDP
 * socket of the host both ways; bind, getname, connect, getpeername.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netgraph/ng_ksocket.h>

#include "ngtest.h"

/* FreeBSD's struct sockaddr_in, as ng_ksocket reads and writes it. */
struct fbsd_sin {
	uint8_t len;
	uint8_t family;
	uint16_t port;	/* network order */
	uint32_t addr;	/* network order */
	char zero[8];
};

static struct fbsd_sin
fsin(uint32_t addr, uint16_t port)
{
	struct fbsd_sin f = { .len = sizeof(f), .family = 2, .port = port, .addr = addr };

	return (f);
}

int
main(void)
{
	union {
		struct ng_mesg m;
		char buf[512];
	} u;
	struct sockaddr_in lsin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(lsin);
	struct fbsd_sin f, *got;
	char rbuf[64], hook[NG_HOOKSIZ];
	struct sockaddr_ng from;
	socklen_t fl;
	int cs, ds, us, n;

	t_name = "t_ksocket";
	CHECK(sizeof(struct fbsd_sin) == 16, "layout");
	if (ng_mknode(NULL, &cs, &ds) < 0) {
		CHECK(0, "ng_mknode");
		return (t_done());
	}
	CHECK(ng_mkpeer(cs, ".", NG_KSOCKET_NODE_TYPE, "ks", "inet/dgram/udp") == 0, "mkpeer");

	/* Bind to 127.0.0.1, any port; GETNAME gives FreeBSD's layout back. */
	f = fsin(htonl(INADDR_LOOPBACK), 0);
	CHECK(ng_send(cs, ".:ks", NGM_KSOCKET_COOKIE, NGM_KSOCKET_BIND, &f, sizeof(f)) > 0, "bind");
	n = ng_query(cs, ".:ks", NGM_KSOCKET_COOKIE, NGM_KSOCKET_GETNAME, NULL, 0, &u, sizeof(u));
	CHECK(n == (int)(sizeof(struct ng_mesg) + sizeof(struct fbsd_sin)), "getname reply: %d bytes", n);
	got = (struct fbsd_sin *)u.m.data;
	CHECK(got->len == 16 && got->family == 2 && got->addr == htonl(INADDR_LOOPBACK) &&
	    got->port != 0, "getname: len %u family %u", got->len, got->family);
	CHECK(u.m.header.flags & NGF_RESP, "a response");

	/* A host UDP socket sends to it: the data socket gets it on hook ks. */
	us = socket(AF_INET, SOCK_DGRAM, 0);
	lsin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(us, (struct sockaddr *)&lsin, sizeof(lsin)) == 0, "host bind");
	CHECK(getsockname(us, (struct sockaddr *)&lsin, &sl) == 0, "host getsockname");
	{
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = got->port,
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		CHECK(sendto(us, "ping", 4, 0, (struct sockaddr *)&to, sizeof(to)) == 4, "host send");
	}
	CHECK(ng_wait(ds, 2000) == 1, "data arrives");
	fl = sizeof(from);
	n = (int)recvfrom(ds, rbuf, sizeof(rbuf), 0, (struct sockaddr *)&from, &fl);
	strlcpy(hook, from.sg_data, sizeof(hook));
	CHECK(n == 4 && memcmp(rbuf, "ping", 4) == 0 && strcmp(hook, "ks") == 0,
	    "data: %d bytes on hook %s", n, hook);

	/* CONNECT to the host socket; our data goes to it; GETPEERNAME. */
	f = fsin(htonl(INADDR_LOOPBACK), lsin.sin_port);
	CHECK(ng_send(cs, ".:ks", NGM_KSOCKET_COOKIE, NGM_KSOCKET_CONNECT, &f, sizeof(f)) > 0,
	    "connect");
	n = ng_query(cs, ".:ks", NGM_KSOCKET_COOKIE, NGM_KSOCKET_GETPEERNAME, NULL, 0, &u, sizeof(u));
	got = (struct fbsd_sin *)u.m.data;
	CHECK(n == (int)(sizeof(struct ng_mesg) + 16) && got->port == lsin.sin_port &&
	    got->addr == htonl(INADDR_LOOPBACK), "getpeername: %d bytes", n);
	{
		struct sockaddr_ng sg;

		CHECK(sendto(ds, "pong", 4, 0, (struct sockaddr *)&sg, ng_addr(&sg, "ks")) == 4,
		    "write to hook ks");
	}
	CHECK(ng_wait(us, 2000) == 1, "the host socket is readable");
	CHECK(recv(us, rbuf, sizeof(rbuf), 0) == 4 && memcmp(rbuf, "pong", 4) == 0, "host recv");

	/* A short address is refused; the node stays as it was. */
	errno = 0;
	CHECK(ng_send(cs, ".:ks", NGM_KSOCKET_COOKIE, NGM_KSOCKET_BIND, &f, 1) < 0 &&
	    errno == EINVAL, "a one-byte address");

	close(us);
	close(ds);
	close(cs);
	return (t_done());
}
