/*
 * Data sockets: data both ways through an echo node, datagram boundaries,
 * write(2)/read(2) on a single hook, MSG_PEEK, MSG_TRUNC, non-blocking
 * EWOULDBLOCK (MSG_DONTWAIT, O_NONBLOCK, FIONBIO), FIONREAD, poll(2) and
 * select(2) readiness, a blocking receive woken by data another thread
 * sends, SO_RCVTIMEO, SO_RCVBUF, dup(2).
 */
#include <pthread.h>

#include "ngtest.h"

static int g_ds;

static void *
later_send(void *arg)
{
	struct sockaddr_ng sg;

	(void)arg;
	usleep(200000);
	sendto(g_ds, "late", 4, 0, (struct sockaddr *)&sg, ng_addr(&sg, "e"));
	return (NULL);
}

static void *
later_msg(void *arg)
{
	int cs = *(int *)arg;

	usleep(200000);
	ng_send(cs, ".", NGM_GENERIC_COOKIE, NGM_NODEINFO, NULL, 0);
	return (NULL);
}

static int
readable_select(int fd)
{
	fd_set r;
	struct timeval tv = { 0, 0 };

	FD_ZERO(&r);
	FD_SET(fd, &r);
	return (select(fd + 1, &r, NULL, NULL, &tv) == 1 && FD_ISSET(fd, &r));
}

int
main(void)
{
	struct sockaddr_ng sg, from;
	struct msghdr mh;
	struct iovec iov[2];
	struct timespec t0;
	struct timeval tv;
	pthread_t th;
	char buf[4096], a[3], b[8];
	socklen_t fl;
	int cs, ds, ds2, n, v, fl2;
	char msgbuf[1024];

	t_name = "t_data";
	CHECK(ng_mknode("tdata", &cs, &ds) == 0, "node with control and data sockets");
	g_ds = ds;
	CHECK(ng_mkpeer(cs, ".", "echo", "e", "x") == 0, "mkpeer echo on hook e");

	/* Nothing to read yet. */
	CHECK(ng_wait(ds, 0) == 0, "data socket not readable");
	CHECK(!readable_select(ds), "select: not readable");
	errno = 0;
	CHECK(recv(ds, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN, "MSG_DONTWAIT: EAGAIN");

	/* One datagram out, the same back, from hook "e". */
	CHECK(sendto(ds, "hello", 5, 0, (struct sockaddr *)&sg, ng_addr(&sg, "e")) == 5, "sendto e");
	CHECK(ng_wait(ds, 2000) == 1, "readable after the echo");
	CHECK(readable_select(ds), "select: readable");
	CHECK(ioctl(ds, FIONREAD, &v) == 0 && v == 5, "FIONREAD %d", v);
	fl = sizeof(from);
	memset(&from, 0, sizeof(from));
	n = (int)recvfrom(ds, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	CHECK(n == 5 && memcmp(buf, "hello", 5) == 0, "echoed data (%d bytes)", n);
	CHECK(from.sg_family == AF_NETGRAPH && strcmp(from.sg_data, "e") == 0, "from hook %s", from.sg_data);
	CHECK(ng_wait(ds, 0) == 0, "drained: not readable");

	/* Datagram boundaries are kept. */
	CHECK(sendto(ds, "one", 3, 0, (struct sockaddr *)&sg, sg.sg_len) == 3, "send one");
	CHECK(sendto(ds, "three", 5, 0, (struct sockaddr *)&sg, sg.sg_len) == 5, "send three");
	CHECK(ng_wait(ds, 2000) == 1, "readable");
	CHECK(recv(ds, buf, sizeof(buf), 0) == 3, "first datagram alone");
	CHECK(recv(ds, buf, sizeof(buf), 0) == 5 && memcmp(buf, "three", 5) == 0, "second datagram");

	/* write(2) and read(2): the node has a single hook. */
	CHECK(write(ds, "wr", 2) == 2, "write with one hook");
	CHECK(ng_wait(ds, 2000) == 1 && read(ds, buf, sizeof(buf)) == 2 && memcmp(buf, "wr", 2) == 0,
	    "read");

	/* MSG_PEEK leaves the datagram; MSG_TRUNC is reported by recvmsg. */
	CHECK(sendto(ds, "peekaboo", 8, 0, (struct sockaddr *)&sg, sg.sg_len) == 8, "send peekaboo");
	CHECK(ng_wait(ds, 2000) == 1, "readable");
	CHECK(recv(ds, buf, sizeof(buf), MSG_PEEK) == 8, "peek");
	CHECK(ng_wait(ds, 0) == 1, "still readable after a peek");
	memset(&mh, 0, sizeof(mh));
	iov[0].iov_base = a;
	iov[0].iov_len = sizeof(a);
	iov[1].iov_base = b;
	iov[1].iov_len = 2;
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	mh.msg_name = &from;
	mh.msg_namelen = sizeof(from);
	n = (int)recvmsg(ds, &mh, 0);
	CHECK(n == 5 && memcmp(a, "pee", 3) == 0 && memcmp(b, "ka", 2) == 0, "recvmsg scatter (%d)", n);
	CHECK(mh.msg_flags & MSG_TRUNC, "MSG_TRUNC in msg_flags (%#x)", mh.msg_flags);
	CHECK(strcmp(from.sg_data, "e") == 0, "recvmsg source %s", from.sg_data);
	CHECK(ng_wait(ds, 0) == 0, "the truncated rest is gone");

	/* O_NONBLOCK and FIONBIO. */
	fl2 = fcntl(ds, F_GETFL);
	CHECK(fcntl(ds, F_SETFL, fl2 | O_NONBLOCK) == 0, "O_NONBLOCK");
	errno = 0;
	CHECK(recv(ds, buf, sizeof(buf), 0) < 0 && errno == EWOULDBLOCK, "O_NONBLOCK: EWOULDBLOCK");
	CHECK(fcntl(ds, F_SETFL, fl2) == 0, "blocking again");
	v = 1;
	CHECK(ioctl(ds, FIONBIO, &v) == 0, "FIONBIO on");
	errno = 0;
	CHECK(read(ds, buf, sizeof(buf)) < 0 && errno == EAGAIN, "FIONBIO: EAGAIN");
	v = 0;
	CHECK(ioctl(ds, FIONBIO, &v) == 0, "FIONBIO off");

	/* A blocking receive is woken by data another thread sends. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&th, NULL, later_send, NULL);
	n = (int)recv(ds, buf, sizeof(buf), 0);
	CHECK(n == 4 && memcmp(buf, "late", 4) == 0, "blocking recv got the late datagram (%d)", n);
	CHECK(ms_since(&t0) >= 150, "it waited (%ld ms)", ms_since(&t0));
	pthread_join(th, NULL);

	/* A blocking receive on the control socket is woken by a reply. */
	pthread_create(&th, NULL, later_msg, &cs);
	n = (int)recv(cs, msgbuf, sizeof(msgbuf), 0);
	CHECK(n == (int)(sizeof(struct ng_mesg) + sizeof(struct nodeinfo)), "reply woke recv (%d)", n);
	pthread_join(th, NULL);

	/* SO_RCVTIMEO bounds a blocking receive. */
	tv.tv_sec = 0;
	tv.tv_usec = 300000;
	CHECK(setsockopt(ds, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0, "SO_RCVTIMEO");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	CHECK(recv(ds, buf, sizeof(buf), 0) < 0 && errno == EAGAIN, "timed out with EAGAIN");
	CHECK(ms_since(&t0) >= 250 && ms_since(&t0) < 3000, "after %ld ms", ms_since(&t0));

	/* SO_RCVBUF as libnetgraph reads it (FreeBSD's net.graph.recvspace). */
	fl = sizeof(v);
	CHECK(getsockopt(ds, SOL_SOCKET, SO_RCVBUF, &v, &fl) == 0 && fl == sizeof(v) && v > 0,
	    "SO_RCVBUF %d", v);
	fl = sizeof(v);
	CHECK(getsockopt(ds, SOL_SOCKET, SO_TYPE, &v, &fl) == 0 && v == SOCK_DGRAM, "SO_TYPE %d", v);

	/* dup(2): the same socket under two descriptors. */
	ds2 = dup(ds);
	CHECK(ds2 >= 0, "dup");
	CHECK(sendto(ds2, "dup", 3, 0, (struct sockaddr *)&sg, sg.sg_len) == 3, "send on the dup");
	CHECK(ng_wait(ds, 2000) == 1 && recv(ds, buf, sizeof(buf), 0) == 3, "received on the original");
	CHECK(close(ds) == 0, "close the original");
	CHECK(sendto(ds2, "dup2", 4, 0, (struct sockaddr *)&sg, sg.sg_len) == 4, "the dup still works");
	CHECK(ng_wait(ds2, 2000) == 1 && recv(ds2, buf, sizeof(buf), 0) == 4, "and receives");
	v = dup2(ds2, 100);
	CHECK(v == 100 && send(100, "x", 1, 0) == 1, "send on a dup2'd descriptor (%d)", v);
	CHECK(ng_wait(ds2, 2000) == 1 && recv(ds2, buf, sizeof(buf), 0) == 1, "received");
	close(100);

	/* Sends to a missing hook, and without an address with one hook. */
	errno = 0;
	CHECK(sendto(ds2, "x", 1, 0, (struct sockaddr *)&sg, ng_addr(&sg, "nohook")) < 0 &&
	    errno == EHOSTUNREACH, "send to a missing hook");
	close(ds2);
	close(cs);
	return (t_done());
}
