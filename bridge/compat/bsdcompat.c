/*
 * bsdcompat.c: see bsdcompat.h. Built into each FreeBSD program compiled
 * for the bridge; it is itself compiled without bsdcompat.h, so the names
 * below are glibc's.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ngbsd_optind = 1, ngbsd_opterr = 1, ngbsd_optopt, ngbsd_optreset;
char *ngbsd_optarg;

const char *
getprogname(void)
{
	return (program_invocation_short_name);
}

/*
 * BSD getopt over glibc's: the option string gets "+" (stop at the first
 * non-option, as POSIX and BSD do) and ":" (tell a missing argument apart);
 * the messages are BSD's. A caller restarts a scan the BSD way, by setting
 * optind (back to 1) or optreset; that restarts glibc's scan too.
 */
int
ngbsd_getopt(int argc, char *const argv[], const char *ostr)
{
	static int seen = 1;		/* ngbsd_optind as last returned */
	static char *const *last_argv;
	const char *user = ostr;
	char spec[256];
	int c;

	if (*user == '+' || *user == '-')
		user++;
	snprintf(spec, sizeof(spec), "+:%s", *user == ':' ? user + 1 : user);
	if (ngbsd_optreset || ngbsd_optind != seen || argv != last_argv) {
		optind = 0;	/* glibc: start afresh at argv[1] */
		ngbsd_optreset = 0;
		last_argv = argv;
	}
	opterr = 0;
	c = getopt(argc, argv, spec);
	ngbsd_optind = seen = optind;
	ngbsd_optarg = optarg;
	ngbsd_optopt = optopt;
	if (c == '?') {
		if (ngbsd_opterr && *user != ':')
			fprintf(stderr, "%s: illegal option -- %c\n", getprogname(), optopt);
	} else if (c == ':') {
		if (*user == ':')
			return (':');
		if (ngbsd_opterr)
			fprintf(stderr, "%s: option requires an argument -- %c\n",
			    getprogname(), optopt);
		c = '?';
	}
	return (c);
}

/* FreeBSD's texts (lib/libc/gen/errlst.c), by the Linux errno the program sees. */
static const struct {
	int e;
	const char *text;
} texts[] = {
	{ 0, "No error: 0" },
	{ EPERM, "Operation not permitted" },
	{ ENOENT, "No such file or directory" },
	{ ESRCH, "No such process" },
	{ EINTR, "Interrupted system call" },
	{ EIO, "Input/output error" },
	{ ENXIO, "Device not configured" },
	{ E2BIG, "Argument list too long" },
	{ ENOEXEC, "Exec format error" },
	{ EBADF, "Bad file descriptor" },
	{ ECHILD, "No child processes" },
	{ EDEADLK, "Resource deadlock avoided" },
	{ ENOMEM, "Cannot allocate memory" },
	{ EACCES, "Permission denied" },
	{ EFAULT, "Bad address" },
	{ ENOTBLK, "Block device required" },
	{ EBUSY, "Device busy" },
	{ EEXIST, "File exists" },
	{ EXDEV, "Cross-device link" },
	{ ENODEV, "Operation not supported by device" },
	{ ENOTDIR, "Not a directory" },
	{ EISDIR, "Is a directory" },
	{ EINVAL, "Invalid argument" },
	{ ENFILE, "Too many open files in system" },
	{ EMFILE, "Too many open files" },
	{ ENOTTY, "Inappropriate ioctl for device" },
	{ ETXTBSY, "Text file busy" },
	{ EFBIG, "File too large" },
	{ ENOSPC, "No space left on device" },
	{ ESPIPE, "Illegal seek" },
	{ EROFS, "Read-only file system" },
	{ EMLINK, "Too many links" },
	{ EPIPE, "Broken pipe" },
	{ EDOM, "Numerical argument out of domain" },
	{ ERANGE, "Result too large" },
	{ EAGAIN, "Resource temporarily unavailable" },
	{ EINPROGRESS, "Operation now in progress" },
	{ EALREADY, "Operation already in progress" },
	{ ENOTSOCK, "Socket operation on non-socket" },
	{ EDESTADDRREQ, "Destination address required" },
	{ EMSGSIZE, "Message too long" },
	{ EPROTOTYPE, "Protocol wrong type for socket" },
	{ ENOPROTOOPT, "Protocol not available" },
	{ EPROTONOSUPPORT, "Protocol not supported" },
	{ ESOCKTNOSUPPORT, "Socket type not supported" },
	{ EOPNOTSUPP, "Operation not supported" },
	{ EPFNOSUPPORT, "Protocol family not supported" },
	{ EAFNOSUPPORT, "Address family not supported by protocol family" },
	{ EADDRINUSE, "Address already in use" },
	{ EADDRNOTAVAIL, "Can't assign requested address" },
	{ ENETDOWN, "Network is down" },
	{ ENETUNREACH, "Network is unreachable" },
	{ ENETRESET, "Network dropped connection on reset" },
	{ ECONNABORTED, "Software caused connection abort" },
	{ ECONNRESET, "Connection reset by peer" },
	{ ENOBUFS, "No buffer space available" },
	{ EISCONN, "Socket is already connected" },
	{ ENOTCONN, "Socket is not connected" },
	{ ESHUTDOWN, "Can't send after socket shutdown" },
	{ ETOOMANYREFS, "Too many references: can't splice" },
	{ ETIMEDOUT, "Operation timed out" },
	{ ECONNREFUSED, "Connection refused" },
	{ ELOOP, "Too many levels of symbolic links" },
	{ ENAMETOOLONG, "File name too long" },
	{ EHOSTDOWN, "Host is down" },
	{ EHOSTUNREACH, "No route to host" },
	{ ENOTEMPTY, "Directory not empty" },
	{ EUSERS, "Too many users" },
	{ EDQUOT, "Disc quota exceeded" },
	{ ESTALE, "Stale NFS file handle" },
	{ EREMOTE, "Too many levels of remote in path" },
	{ ENOLCK, "No locks available" },
	{ ENOSYS, "Function not implemented" },
	{ EIDRM, "Identifier removed" },
	{ ENOMSG, "No message of desired type" },
	{ EOVERFLOW, "Value too large to be stored in data type" },
	{ ECANCELED, "Operation canceled" },
	{ EILSEQ, "Illegal byte sequence" },
	{ ENODATA, "Attribute not found" },	/* the bridge's ENOATTR */
	{ EBADMSG, "Bad message" },
	{ EMULTIHOP, "Multihop attempted" },
	{ ENOLINK, "Link has been severed" },
	{ EPROTO, "Protocol error" },
	{ ENOTRECOVERABLE, "State not recoverable" },
	{ EOWNERDEAD, "Previous owner died" },
};

char *
ngbsd_strerror(int e)
{
	static char buf[32];
	size_t k;

	for (k = 0; k < sizeof(texts) / sizeof(texts[0]); k++)
		if (texts[k].e == e)
			return ((char *)texts[k].text);
	snprintf(buf, sizeof(buf), "Unknown error: %d", e);
	return (buf);
}

void
ngbsd_vwarn(const char *fmt, va_list ap)
{
	int e = errno;

	fprintf(stderr, "%s: ", getprogname());
	if (fmt != NULL) {
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, ": ");
	}
	fprintf(stderr, "%s\n", ngbsd_strerror(e));
}

void
ngbsd_vwarnx(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", getprogname());
	if (fmt != NULL)
		vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
}

void
ngbsd_verr(int status, const char *fmt, va_list ap)
{
	ngbsd_vwarn(fmt, ap);
	exit(status);
}

void
ngbsd_verrx(int status, const char *fmt, va_list ap)
{
	ngbsd_vwarnx(fmt, ap);
	exit(status);
}

void
ngbsd_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ngbsd_vwarn(fmt, ap);
	va_end(ap);
}

void
ngbsd_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ngbsd_vwarnx(fmt, ap);
	va_end(ap);
}

void
ngbsd_err(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ngbsd_verr(status, fmt, ap);
}

void
ngbsd_errx(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ngbsd_verrx(status, fmt, ap);
}
