/*
 * bridge/compat (built with bsdcompat.h force-included, as FreeBSD's own
 * programs are by scripts/build-freebsd-userland.sh): BSD getopt(3), which
 * stops at the first non-option, restarts when optind is set back to 1 and
 * prints BSD's messages; FreeBSD's strerror texts; err(3)'s format;
 * getprogname(3); the jail stand-in.
 */
#include <jail.h>

#include "ngtest.h"

static int
scan(int ac, char **av, const char *spec, char *got, size_t len)
{
	int ch;
	size_t n = 0;

	optind = 1;
	while ((ch = getopt(ac, av, spec)) != -1 && n + 1 < len)
		got[n++] = (char)ch;
	got[n] = '\0';
	return (optind);
}

int
main(void)
{
	char got[16], *av1[] = { "show", "foo:", "-n", NULL };
	char *av2[] = { "list", "-ln", NULL }, *av3[] = { "ngctl", "-n", NULL };
	char *av4[] = { "list", "-x", NULL }, *av5[] = { "ngctl", "-dfx", "-q", "cmd", NULL };
	int fds[2], saved;
	ssize_t r;
	char buf[256];

	t_name = "t_bsdcompat";
	CHECK(strcmp(getprogname(), "t_bsdcompat") == 0, "getprogname: %s", getprogname());

	/* No reordering: an option after an operand is an operand. */
	CHECK(scan(3, av1, "n", got, sizeof(got)) == 1 && got[0] == '\0', "show foo: -n");
	/* A restart (optind = 1) on another vector, clustered options. */
	CHECK(scan(2, av2, "ln", got, sizeof(got)) == 2 && strcmp(got, "ln") == 0, "list -ln: %s", got);
	/* The same again: the scan restarts although optind ended where it began. */
	CHECK(scan(2, av2, "ln", got, sizeof(got)) == 2 && strcmp(got, "ln") == 0, "again: %s", got);
	opterr = 0;
	CHECK(scan(5, av5, "df:n:", got, sizeof(got)) == 3 && strcmp(got, "df?") == 0,
	    "-dfx -q: %s", got);
	opterr = 1;

	/* BSD's messages on stderr. */
	CHECK(pipe(fds) == 0, "pipe");
	saved = dup(2);
	dup2(fds[1], 2);
	scan(2, av4, "ln", got, sizeof(got));
	scan(2, av3, "df:n:", got, sizeof(got));
	errno = ENOTCONN;
	warn("send msg");
	warnx("line %d: error in file", 3);
	dup2(saved, 2);
	close(fds[1]);
	r = read(fds[0], buf, sizeof(buf) - 1);
	buf[r > 0 ? r : 0] = '\0';
	CHECK(strcmp(buf, "t_bsdcompat: illegal option -- x\n"
	    "t_bsdcompat: option requires an argument -- n\n"
	    "t_bsdcompat: send msg: Socket is not connected\n"
	    "t_bsdcompat: line 3: error in file\n") == 0, "messages: [%s]", buf);

	/* FreeBSD's texts where glibc's differ. */
	CHECK(strcmp(strerror(ETIMEDOUT), "Operation timed out") == 0, "ETIMEDOUT");
	CHECK(strcmp(strerror(EADDRNOTAVAIL), "Can't assign requested address") == 0, "EADDRNOTAVAIL");
	CHECK(strcmp(strerror(EAFNOSUPPORT),
	    "Address family not supported by protocol family") == 0, "EAFNOSUPPORT");
	CHECK(strcmp(strerror(EINVAL), "Invalid argument") == 0, "EINVAL");
	CHECK(strcmp(strerror(ENODATA), "Attribute not found") == 0, "ENOATTR");

	/* No jails: 0 is the host (found, not attachable), others are missing. */
	CHECK(jail_getid("0") == 0, "jail 0");
	CHECK(jail_attach(0) < 0 && errno == EINVAL, "jail_attach 0");
	CHECK(jail_getid("7") < 0 && errno == ENOENT &&
	    strcmp(jail_errmsg, "jail 7 not found") == 0, "jail 7: %s", jail_errmsg);
	CHECK(jail_getid("web") < 0 && strcmp(jail_errmsg, "jail \"web\" not found") == 0,
	    "jail web: %s", jail_errmsg);
	return (t_done());
}
