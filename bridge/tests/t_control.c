/*
 * Control sockets as libnetgraph uses them: creation, naming through
 * bind(2), getsockname(2), NGM_NODEINFO, NGM_MKPEER, NGM_CONNECT,
 * NGM_LISTHOOKS, NGM_ASCII2BINARY / NGM_BINARY2ASCII round trips, and
 * the errors a program sees.
 */
#include "ngtest.h"

static char buf[65536];

int
main(void)
{
	struct ng_mesg *m = (struct ng_mesg *)buf, *inner;
	struct sockaddr_ng sg;
	struct nodeinfo *ni;
	struct hooklist *hl;
	struct ngm_connect con;
	struct ngm_name nm;
	socklen_t sl;
	int cs, cs2, ds2, n, tok;
	char from[NG_PATHSIZ];
	const char *args = "{ name=\"peer0\" }";

	t_name = "t_control";

	cs = socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL);
	CHECK(cs >= 0, "socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL)");

	/* Unnamed: getsockname gives "[id]". */
	sl = sizeof(sg);
	memset(&sg, 0, sizeof(sg));
	CHECK(getsockname(cs, (struct sockaddr *)&sg, &sl) == 0, "getsockname");
	CHECK(sg.sg_family == AF_NETGRAPH && sg.sg_data[0] == '[', "unnamed address %s", sg.sg_data);

	/* Naming through bind(2). */
	CHECK(bind(cs, (struct sockaddr *)&sg, ng_addr(&sg, "tctl")) == 0, "bind tctl");
	sl = sizeof(sg);
	memset(&sg, 0, sizeof(sg));
	CHECK(getsockname(cs, (struct sockaddr *)&sg, &sl) == 0, "getsockname after bind");
	CHECK(strcmp(sg.sg_data, "tctl") == 0, "name is %s", sg.sg_data);
	CHECK(sl == sizeof(sg) && sg.sg_len == sizeof(sg), "getsockname length %u, sg_len %u",
	    (unsigned)sl, sg.sg_len);
	/* A short buffer gets what fits, and the length says so. */
	sl = 4;
	memset(&sg, 0, sizeof(sg));
	CHECK(getsockname(cs, (struct sockaddr *)&sg, &sl) == 0 && sl == 4 && sg.sg_data[0] == 't' &&
	    sg.sg_data[2] == 0, "getsockname into 4 bytes: len %u", (unsigned)sl);
	/* Addresses are FreeBSD's: short or long lengths are refused. */
	errno = 0;
	CHECK(bind(cs, (struct sockaddr *)&sg, 1) < 0 && errno == EINVAL, "bind with length 1");
	errno = 0;
	CHECK(bind(cs, (struct sockaddr *)&sg, 300) < 0 && errno == ENAMETOOLONG, "bind with length 300");
	errno = 0;
	CHECK(bind(cs, NULL, 10) < 0 && errno == EFAULT, "bind with a NULL address");

	/* NGM_NODEINFO. */
	n = ng_query(cs, ".", NGM_GENERIC_COOKIE, NGM_NODEINFO, NULL, 0, buf, sizeof(buf));
	ni = (struct nodeinfo *)m->data;
	CHECK(n == (int)(sizeof(*m) + sizeof(*ni)), "nodeinfo reply length %d", n);
	CHECK(m->header.flags & NGF_RESP, "reply flag");
	CHECK(m->header.token == t_token, "reply token %u, sent %u", m->header.token, t_token);
	CHECK(strcmp(ni->name, "tctl") == 0 && strcmp(ni->type, "socket") == 0 && ni->hooks == 0,
	    "nodeinfo %s/%s/%u", ni->name, ni->type, ni->hooks);

	/* NGM_MKPEER: an echo node on hook "e". */
	CHECK(ng_mkpeer(cs, ".", "echo", "e", "x") == 0, "mkpeer echo");
	n = ng_query(cs, ".", NGM_GENERIC_COOKIE, NGM_LISTHOOKS, NULL, 0, buf, sizeof(buf));
	hl = (struct hooklist *)m->data;
	CHECK(n > 0 && hl->nodeinfo.hooks == 1, "one hook after mkpeer");
	CHECK(n > 0 && strcmp(hl->link[0].ourhook, "e") == 0 && strcmp(hl->link[0].peerhook, "x") == 0 &&
	    strcmp(hl->link[0].nodeinfo.type, "echo") == 0, "hook e to echo's x");

	/* NGM_NAME on the peer through a path. */
	memset(&nm, 0, sizeof(nm));
	strlcpy(nm.name, "tpeer", sizeof(nm.name));
	CHECK(ng_send(cs, ".:e", NGM_GENERIC_COOKIE, NGM_NAME, &nm, sizeof(nm)) > 0, "name .:e tpeer");
	CHECK(ng_node_exists(cs, "tpeer") == 1, "tpeer listed");

	/* A second socket node, and NGM_CONNECT from ours to it. */
	CHECK(ng_mknode("tctl2", &cs2, &ds2) == 0, "second node");
	memset(&con, 0, sizeof(con));
	strlcpy(con.path, "tctl2:", sizeof(con.path));
	strlcpy(con.ourhook, "c", sizeof(con.ourhook));
	strlcpy(con.peerhook, "c2", sizeof(con.peerhook));
	CHECK(ng_send(cs, ".", NGM_GENERIC_COOKIE, NGM_CONNECT, &con, sizeof(con)) > 0, "connect");
	n = ng_query(cs2, ".", NGM_GENERIC_COOKIE, NGM_NODEINFO, NULL, 0, buf, sizeof(buf));
	CHECK(n > 0 && ((struct nodeinfo *)m->data)->hooks == 1, "tctl2 has the hook");
	/* Connecting the same hook name again fails with EEXIST. */
	errno = 0;
	CHECK(ng_send(cs, ".", NGM_GENERIC_COOKIE, NGM_CONNECT, &con, sizeof(con)) < 0 && errno == EEXIST,
	    "second connect of hook c");
	/* Messages to nowhere. */
	errno = 0;
	CHECK(ng_send(cs, "nosuchnode:", NGM_GENERIC_COOKIE, NGM_NODEINFO, NULL, 0) < 0 && errno == ENOENT,
	    "nodeinfo to nosuchnode:");

	/* ASCII -> binary: "name" with its argument, at the echo node. */
	inner = (struct ng_mesg *)calloc(1, sizeof(*inner) + strlen(args) + 1);
	strlcpy((char *)inner->header.cmdstr, "name", sizeof(inner->header.cmdstr));
	strcpy(inner->data, args);
	inner->header.arglen = strlen(args) + 1;
	n = ng_query(cs, "tpeer:", NGM_GENERIC_COOKIE, NGM_ASCII2BINARY, inner,
	    sizeof(*inner) + inner->header.arglen, buf, sizeof(buf));
	free(inner);
	inner = (struct ng_mesg *)m->data;
	CHECK(n == (int)(2 * sizeof(*m) + sizeof(struct ngm_name)), "ascii2binary reply length %d", n);
	CHECK(inner->header.cmd == NGM_NAME && inner->header.typecookie == NGM_GENERIC_COOKIE &&
	    inner->header.arglen == sizeof(struct ngm_name), "binary header cmd %u arglen %u",
	    inner->header.cmd, inner->header.arglen);
	CHECK(strcmp(((struct ngm_name *)inner->data)->name, "peer0") == 0, "binary argument");

	/* ... and back: binary -> ASCII. */
	{
		size_t bl = sizeof(*inner) + inner->header.arglen;
		struct ng_mesg *bin = malloc(bl);

		memcpy(bin, inner, bl);
		n = ng_query(cs, "tpeer:", NGM_GENERIC_COOKIE, NGM_BINARY2ASCII, bin, bl, buf,
		    sizeof(buf));
		free(bin);
		inner = (struct ng_mesg *)m->data;
		CHECK(n > 0 && strcmp((char *)inner->header.cmdstr, "name") == 0, "binary2ascii cmdstr %s",
		    n > 0 ? (char *)inner->header.cmdstr : "?");
		CHECK(n > 0 && strcmp(inner->data, args) == 0, "binary2ascii args '%s'",
		    n > 0 ? inner->data : "?");
		CHECK(n > 0 && inner->header.arglen == strlen(args) + 1, "ascii arglen %u",
		    inner->header.arglen);
	}
	/* An unknown ASCII command. */
	inner = (struct ng_mesg *)calloc(1, sizeof(*inner) + 1);
	strlcpy((char *)inner->header.cmdstr, "frobnicate", sizeof(inner->header.cmdstr));
	inner->header.arglen = 1;
	errno = 0;
	tok = ng_send(cs, "tpeer:", NGM_GENERIC_COOKIE, NGM_ASCII2BINARY, inner, sizeof(*inner) + 1);
	CHECK(tok < 0 && errno == ENOSYS, "ascii2binary of an unknown command");
	free(inner);

	/* A truncated message header is refused. */
	ng_addr(&sg, ".");
	errno = 0;
	CHECK(sendto(cs, buf, 8, 0, (struct sockaddr *)&sg, sg.sg_len) < 0 && errno == EINVAL,
	    "8-byte message");
	/* Nothing is left queued. */
	CHECK(ng_wait(cs, 0) == 0, "no stray messages");

	/* Shut the peer down; the hook goes. */
	CHECK(ng_send(cs, "tpeer:", NGM_GENERIC_COOKIE, NGM_SHUTDOWN, NULL, 0) > 0, "shutdown tpeer");
	CHECK(ng_node_settles(cs, "tpeer", 0), "tpeer gone");
	n = ng_query(cs, ".", NGM_GENERIC_COOKIE, NGM_NODEINFO, NULL, 0, buf, sizeof(buf));
	CHECK(n > 0 && ((struct nodeinfo *)m->data)->hooks == 1, "one hook left");

	/* A message of a cookie the core does not handle reaches the control
	 * socket, with the sender's address. */
	CHECK(ng_send(cs2, "tctl:", 0x1234567, 7, "abc", 3) > 0, "tctl2 -> tctl");
	n = ng_recv(cs, buf, sizeof(buf), from, sizeof(from));
	CHECK(n == (int)sizeof(*m) + 3 && !(m->header.flags & NGF_RESP) && m->header.cmd == 7 &&
	    m->header.typecookie == 0x1234567 && memcmp(m->data, "abc", 3) == 0,
	    "tctl receives tctl2's message (%d)", n);
	CHECK(n > 0 && from[0] == '[' && from[strlen(from) - 1] == ':', "from %s", from);

	close(ds2);
	close(cs2);
	close(cs);
	return (t_done());
}
