/*
 * bsdcompat.h: what FreeBSD's userland expects of its C library where
 * glibc differs, for building FreeBSD's own netgraph programs (ngctl,
 * libnetgraph, tests/sys/netgraph) on Linux to run against the ngsock
 * bridge (docs/bridge.md). Included before anything else (cc -include):
 *
 * - getopt(3) as BSD's: no reordering of arguments, optreset, BSD's
 *   messages ("illegal option -- x");
 * - strerror(3) and err(3)/warn(3) with FreeBSD's message texts (for the
 *   Linux errno values the program sees);
 * - getprogname(3).
 *
 * bsdcompat.c implements them; jail.h stands in for libjail on a host
 * without jails.
 */
#ifndef NGBRIDGE_BSDCOMPAT_H
#define NGBRIDGE_BSDCOMPAT_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define getopt ngbsd_getopt
#define optind ngbsd_optind
#define optarg ngbsd_optarg
#define opterr ngbsd_opterr
#define optopt ngbsd_optopt
#define optreset ngbsd_optreset
extern int ngbsd_optind, ngbsd_opterr, ngbsd_optopt, ngbsd_optreset;
extern char *ngbsd_optarg;
int ngbsd_getopt(int, char *const *, const char *);

#define strerror ngbsd_strerror
char *ngbsd_strerror(int);

#define err ngbsd_err
#define errx ngbsd_errx
#define warn ngbsd_warn
#define warnx ngbsd_warnx
#define verr ngbsd_verr
#define verrx ngbsd_verrx
#define vwarn ngbsd_vwarn
#define vwarnx ngbsd_vwarnx
void ngbsd_err(int, const char *, ...)
    __attribute__((__noreturn__, __format__(__printf__, 2, 3)));
void ngbsd_errx(int, const char *, ...)
    __attribute__((__noreturn__, __format__(__printf__, 2, 3)));
void ngbsd_warn(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
void ngbsd_warnx(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
void ngbsd_verr(int, const char *, va_list) __attribute__((__noreturn__));
void ngbsd_verrx(int, const char *, va_list) __attribute__((__noreturn__));
void ngbsd_vwarn(const char *, va_list);
void ngbsd_vwarnx(const char *, va_list);

const char *getprogname(void);

#endif
