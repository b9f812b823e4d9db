/*
 * The FreeBSD-only calls: kldload(2), kldfind(2), kldnext(2), kldstat(2),
 * modfind(2), sysctlbyname(3), and credentials: an unprivileged process
 * may not open a control socket or load modules, but may open a data
 * socket.
 */
#include <sys/linker.h>
#include <sys/module.h>
#include <sys/sysctl.h>

#include "ngtest.h"

int
main(void)
{
	struct kld_file_stat ks;
	struct module_stat ms;
	int id, f, found, v, cs, ds;
	unsigned long old, nv;
	size_t len;

	t_name = "t_kld";

	id = kldfind("ng_socket.ko");
	CHECK(id > 1, "kldfind ng_socket.ko: %d", id);
	CHECK(kldfind("ng_socket") == id, "kldfind by module name");
	errno = 0;
	CHECK(kldfind("ng_nosuch.ko") < 0 && errno == ENOENT, "kldfind of a missing file");
	errno = 0;
	CHECK(kldload("ng_socket.ko") < 0 && errno == EEXIST, "kldload of a loaded file");
	errno = 0;
	CHECK(kldload("ng_nosuch") < 0 && errno == ENOENT, "kldload of a missing module");

	/* kldnext walks the kernel and the loaded files. */
	found = 0;
	for (f = kldnext(0); f > 0; f = kldnext(f)) {
		memset(&ks, 0, sizeof(ks));
		ks.version = sizeof(ks);
		CHECK(kldstat(f, &ks) == 0, "kldstat %d", f);
		CHECK(ks.id == f, "kldstat id %d", ks.id);
		if (f == id) {
			found = 1;
			CHECK(strcmp(ks.name, "ng_socket.ko") == 0, "name %s", ks.name);
			CHECK(ks.size > 0 && ks.refs >= 1, "size %zu refs %d", ks.size, ks.refs);
			CHECK(strstr(ks.pathname, "ng_socket.ko") != NULL, "pathname %s", ks.pathname);
		}
	}
	CHECK(kldnext(0) == 1, "the kernel comes first");
	CHECK(found, "ng_socket.ko listed by kldnext");
	ks.version = 3;
	errno = 0;
	CHECK(kldstat(id, &ks) < 0 && errno == EINVAL, "kldstat with a bad version");

	/* Modules. */
	CHECK(modfind("netgraph") > 0, "modfind netgraph");
	v = modfind("ng_socket");
	CHECK(v > 0, "modfind ng_socket");
	memset(&ms, 0, sizeof(ms));
	ms.version = sizeof(ms);
	CHECK(modstat(v, &ms) == 0 && strcmp(ms.name, "ng_socket") == 0 && ms.id == v, "modstat %s",
	    ms.name);
	errno = 0;
	CHECK(modfind("nosuchmodule") < 0 && errno == ENOENT, "modfind of a missing module");

	/* sysctlbyname on the modules' sysctls. */
	/* net.graph.recvspace is a u_long. */
	len = sizeof(old);
	CHECK(sysctlbyname("net.graph.recvspace", &old, &len, NULL, 0) == 0 && len == sizeof(old) &&
	    old > 0, "net.graph.recvspace = %lu", old);
	len = 0;
	CHECK(sysctlbyname("net.graph.recvspace", NULL, &len, NULL, 0) == 0 && len == sizeof(old),
	    "size query");
	len = 4;
	errno = 0;
	CHECK(sysctlbyname("net.graph.recvspace", &v, &len, NULL, 0) < 0 && errno == ENOMEM,
	    "too small a buffer: ENOMEM");
	nv = old + 1024;
	CHECK(sysctlbyname("net.graph.recvspace", NULL, NULL, &nv, sizeof(nv)) == 0, "set recvspace");
	cs = socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL);
	{
		socklen_t ol = sizeof(f);

		CHECK(cs >= 0 && getsockopt(cs, SOL_SOCKET, SO_RCVBUF, &f, &ol) == 0 &&
		    (unsigned long)f == old + 1024, "a new socket gets the new recvspace (%d)", f);
	}
	close(cs);
	CHECK(sysctlbyname("net.graph.recvspace", NULL, NULL, &old, sizeof(old)) == 0, "restore");
	errno = 0;
	CHECK(sysctlbyname("net.graph.nosuch", &v, &len, NULL, 0) < 0 && errno == ENOENT,
	    "missing sysctl");

	/* An unprivileged process. */
	if (geteuid() == 0 && seteuid(1001) == 0) {
		errno = 0;
		cs = socket(PF_NETGRAPH, SOCK_DGRAM, NG_CONTROL);
		CHECK(cs < 0 && errno == EPERM, "NG_CONTROL as a user: EPERM");
		ds = socket(PF_NETGRAPH, SOCK_DGRAM, NG_DATA);
		CHECK(ds >= 0, "NG_DATA as a user");
		close(ds);
		errno = 0;
		CHECK(kldload("ng_echo") < 0 && errno == EPERM, "kldload as a user: EPERM");
		errno = 0;
		CHECK(sysctlbyname("net.graph.recvspace", NULL, NULL, &old, sizeof(old)) < 0 &&
		    errno == EPERM, "sysctl write as a user: EPERM");
		CHECK(seteuid(0) == 0, "back to root");
	}
	return (t_done());
}
