/*
 * jail.h: libjail's jail_getid(3) and jail_attach(2) for a host without
 * jails, with FreeBSD's messages (docs/bridge.md): jail 0 (the host) is
 * found but cannot be attached to (EPERM for a non-root caller, whom the
 * kernel refuses before it looks the jail up; EINVAL for root); any other
 * jail is not found.
 */
#ifndef NGBRIDGE_JAIL_H
#define NGBRIDGE_JAIL_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define JAIL_ERRMSGLEN 1024
static char jail_errmsg[JAIL_ERRMSGLEN];

static inline int
jail_getid(const char *name)
{
	char *end;
	unsigned long jid = strtoul(name, &end, 10);

	if (*name != '\0' && *end == '\0') {
		if (jid == 0)
			return (0);
		snprintf(jail_errmsg, sizeof(jail_errmsg), "jail %d not found", (int)jid);
	} else {
		snprintf(jail_errmsg, sizeof(jail_errmsg), "jail \"%s\" not found", name);
	}
	errno = ENOENT;
	return (-1);
}

static inline int
jail_attach(int jid)
{
	(void)jid;
	errno = geteuid() != 0 ? EPERM : EINVAL;
	return (-1);
}
#endif
