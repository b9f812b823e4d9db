/*
 * Close ordering and process exit: which socket keeps the node, what a
 * shut-down node's sockets see, and that a process which exits or crashes
 * without closing its sockets leaves the kernel as a real exit does.
 * Also two client processes at once.
 */
#include <signal.h>

#include "ngtest.h"

static char buf[65536];

/* A child that makes node `name` (with an echo peer) and then dies. */
static pid_t
spawn_and_die(const char *name, int how)
{
	pid_t p = fork();

	if (p == 0) {
		int cs, ds;

		if (ng_mknode(name, &cs, &ds) != 0 || ng_mkpeer(cs, ".", "echo", "e", "x") != 0)
			_exit(2);
		ng_wait(cs, 200);
		switch (how) {
		case 0:
			_exit(0); /* exit without closing */
		case 1:
			signal(SIGABRT, SIG_DFL);
			abort(); /* crash */
		default:
			/* Killed while blocked in a receive. */
			recv(ds, buf, sizeof(buf), 0);
			_exit(3);
		}
	}
	return (p);
}

/* A child doing `n` echo round trips on its own node. */
static pid_t
spawn_echoer(const char *name, int n)
{
	pid_t p = fork();

	if (p == 0) {
		struct sockaddr_ng sg;
		int cs, ds, i;
		char out[64], in[64];

		if (ng_mknode(name, &cs, &ds) != 0 || ng_mkpeer(cs, ".", "echo", "e", "x") != 0)
			_exit(2);
		ng_addr(&sg, "e");
		for (i = 0; i < n; i++) {
			int k = snprintf(out, sizeof(out), "%s-%d", name, i);

			if (sendto(ds, out, k, 0, (struct sockaddr *)&sg, sg.sg_len) != k)
				_exit(4);
			if (recv(ds, in, sizeof(in), 0) != k || memcmp(in, out, k) != 0)
				_exit(5);
		}
		close(ds);
		close(cs);
		_exit(0);
	}
	return (p);
}

int
main(void)
{
	struct sockaddr_ng sg;
	int obs, obsd, cs, ds, st, n;
	pid_t p, q;
	socklen_t sl;

	t_name = "t_close";
	signal(SIGPIPE, SIG_IGN);
	CHECK(ng_mknode("tobserver", &obs, &obsd) == 0, "observer node");

	/* Control socket alone: closing it removes the node. */
	cs = socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL);
	CHECK(cs >= 0 && bind(cs, (struct sockaddr *)&sg, ng_addr(&sg, "tc1")) == 0, "tc1");
	CHECK(ng_node_exists(obs, "tc1") == 1, "tc1 exists");
	close(cs);
	CHECK(ng_node_exists(obs, "tc1") == 0, "closing the control socket removed tc1 at once");

	/* Control + data; close data first: the node stays until control goes. */
	CHECK(ng_mknode("tc2", &cs, &ds) == 0, "tc2");
	close(ds);
	CHECK(ng_node_exists(obs, "tc2") == 1, "tc2 stays with its control socket");
	close(cs);
	CHECK(ng_node_exists(obs, "tc2") == 0, "tc2 gone with its control socket");

	/* Control + data; close control first: the data socket keeps it. */
	CHECK(ng_mknode("tc3", &cs, &ds) == 0, "tc3");
	CHECK(ng_mkpeer(obs, "tc3:", "echo", "e", "x") == 0, "echo on tc3");
	close(cs);
	CHECK(ng_node_exists(obs, "tc3") == 1, "tc3 stays with its data socket");
	CHECK(sendto(ds, "hi", 2, 0, (struct sockaddr *)&sg, ng_addr(&sg, "e")) == 2,
	    "data still flows without the control socket");
	CHECK(ng_wait(ds, 2000) == 1 && recv(ds, buf, sizeof(buf), 0) == 2, "and comes back");
	close(ds);
	CHECK(ng_node_exists(obs, "tc3") == 0, "tc3 gone with its data socket");

	/* A node shut down under its sockets: EOF and EPIPE. */
	CHECK(ng_mknode("tc4", &cs, &ds) == 0, "tc4");
	CHECK(ng_send(obs, "tc4:", NGM_GENERIC_COOKIE, NGM_SHUTDOWN, NULL, 0) > 0, "shutdown tc4");
	CHECK(ng_wait(ds, 2000) == 1, "data socket readable (EOF)");
	CHECK(recv(ds, buf, sizeof(buf), 0) == 0, "EOF on the data socket");
	errno = 0;
	CHECK(sendto(ds, "x", 1, 0, (struct sockaddr *)&sg, ng_addr(&sg, "e")) < 0 && errno == EPIPE,
	    "EPIPE after the node is gone");
	sl = sizeof(sg);
	errno = 0;
	CHECK(getsockname(cs, (struct sockaddr *)&sg, &sl) < 0 && errno == EINVAL, "getsockname: EINVAL");
	close(ds);
	close(cs);

	/* Processes that exit or crash without closing. */
	p = spawn_and_die("tdie0", 0);
	CHECK(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exited");
	CHECK(ng_node_settles(obs, "tdie0", 0), "its node is gone after exit");
	p = spawn_and_die("tdie1", 1);
	CHECK(waitpid(p, &st, 0) == p && WIFSIGNALED(st), "child crashed");
	CHECK(ng_node_settles(obs, "tdie1", 0), "its node is gone after the crash");
	p = spawn_and_die("tdie2", 2);
	CHECK(ng_node_settles(obs, "tdie2", 1), "blocked child's node exists");
	usleep(100000);
	kill(p, SIGKILL);
	CHECK(waitpid(p, &st, 0) == p && WIFSIGNALED(st), "child killed in recv");
	CHECK(ng_node_settles(obs, "tdie2", 0), "its node is gone after the kill");

	/* A socket inherited by a child stays open until both have closed it. */
	CHECK(ng_mknode("tfork", &cs, &ds) == 0, "tfork");
	p = fork();
	if (p == 0) {
		close(cs);
		close(ds);
		_exit(0);
	}
	waitpid(p, &st, 0);
	CHECK(ng_node_exists(obs, "tfork") == 1, "the parent's copy keeps tfork");
	n = ng_query(cs, ".", NGM_GENERIC_COOKIE, NGM_NODEINFO, NULL, 0, buf, sizeof(buf));
	CHECK(n > 0, "and it still answers");
	close(ds);
	close(cs);
	CHECK(ng_node_exists(obs, "tfork") == 0, "gone after the parent's close");

	/* Two client processes at once. */
	p = spawn_echoer("ttwo_a", 300);
	q = spawn_echoer("ttwo_b", 300);
	CHECK(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0, "first client (%d)",
	    WEXITSTATUS(st));
	CHECK(waitpid(q, &st, 0) == q && WIFEXITED(st) && WEXITSTATUS(st) == 0, "second client (%d)",
	    WEXITSTATUS(st));
	CHECK(ng_node_exists(obs, "ttwo_a") == 0 && ng_node_exists(obs, "ttwo_b") == 0, "both closed");

	close(obsd);
	close(obs);
	return (t_done());
}
