/*
 * ngbridge/freebsd.h: what FreeBSD's netgraph headers and netgraph
 * programs expect from <sys/types.h> and <sys/cdefs.h> that Linux lacks,
 * for programs built on Linux and run against the ngsock bridge
 * (docs/bridge.md). Included by every header of this directory.
 */
#ifndef NGBRIDGE_FREEBSD_H
#define NGBRIDGE_FREEBSD_H

#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <sys/types.h>
#include <sys/param.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The netgraph address family (FreeBSD's <sys/socket.h>). */
#ifndef AF_NETGRAPH
#define AF_NETGRAPH 32
#endif
#ifndef PF_NETGRAPH
#define PF_NETGRAPH AF_NETGRAPH
#endif

/* FreeBSD's MAXPATHLEN (Linux's PATH_MAX is 4096): sizes kernel structures. */
#define NGBRIDGE_FREEBSD_MAXPATHLEN 1024

/* FreeBSD's sa_family_t is one byte (struct sockaddr starts with sa_len). */
typedef uint8_t ngbridge_sa_family_t;

#ifndef __packed
#define __packed __attribute__((__packed__))
#endif
#ifndef __aligned
#define __aligned(x) __attribute__((__aligned__(x)))
#endif
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#ifndef __dead2
#define __dead2 __attribute__((__noreturn__))
#endif
#ifndef __printflike
#define __printflike(f, a) __attribute__((__format__(__printf__, f, a)))
#endif
#ifndef __FBSDID
#define __FBSDID(s) struct ngbridge_hack
#endif
#ifndef __DECONST
#define __DECONST(type, var) ((type)(uintptr_t)(const void *)(var))
#endif

/* poll(2)'s "forever". */
#ifndef INFTIM
#define INFTIM (-1)
#endif

/* glibc has strlcpy/strlcat from 2.38 on. */
#if !defined(__GLIBC__) || __GLIBC__ < 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ < 38)
#ifndef NGBRIDGE_NO_STRLCPY
static inline size_t
ngbridge_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size != 0) {
		size_t k = n < size - 1 ? n : size - 1;
		memcpy(dst, src, k);
		dst[k] = '\0';
	}
	return (n);
}

static inline size_t
ngbridge_strlcat(char *dst, const char *src, size_t size)
{
	size_t d = strnlen(dst, size);

	if (d == size)
		return (size + strlen(src));
	return (d + ngbridge_strlcpy(dst + d, src, size - d));
}
#define strlcpy ngbridge_strlcpy
#define strlcat ngbridge_strlcat
#endif
#endif

#endif /* NGBRIDGE_FREEBSD_H */
