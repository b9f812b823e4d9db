/*
 * sys/module.h for Linux programs run against the ngsock bridge: the
 * module system calls (provided by libngbridge.so) and struct module_stat
 * with FreeBSD's amd64 layout.
 */
#ifndef NGBRIDGE_SYS_MODULE_H
#define NGBRIDGE_SYS_MODULE_H

#include <ngbridge/freebsd.h>

#define MAXMODNAME NGBRIDGE_FREEBSD_MAXPATHLEN

typedef union modspecific {
	int intval;
	unsigned int uintval;
	long longval;
	unsigned long ulongval;
} modspecific_t;

struct module_stat {
	int version; /* sizeof(struct module_stat) */
	char name[MAXMODNAME];
	int refs;
	int id;
	modspecific_t data;
};

#ifdef __cplusplus
extern "C" {
#endif
int modnext(int _modid) __attribute__((weak));
int modfnext(int _modid) __attribute__((weak));
int modstat(int _modid, struct module_stat *_stat) __attribute__((weak));
int modfind(const char *_name) __attribute__((weak));
#ifdef __cplusplus
}
#endif

#endif
