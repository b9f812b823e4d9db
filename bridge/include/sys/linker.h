/*
 * sys/linker.h for Linux programs run against the ngsock bridge: the
 * kld(2) system calls (provided by libngbridge.so against the harness
 * kernel) and struct kld_file_stat with FreeBSD's amd64 layout.
 */
#ifndef NGBRIDGE_SYS_LINKER_H
#define NGBRIDGE_SYS_LINKER_H

#include <ngbridge/freebsd.h>

#define LINKER_UNLOAD_NORMAL 0
#define LINKER_UNLOAD_FORCE 1

struct kld_file_stat {
	int version; /* sizeof(struct kld_file_stat) */
	char name[NGBRIDGE_FREEBSD_MAXPATHLEN];
	int refs;
	int id;
	caddr_t address;
	size_t size;
	char pathname[NGBRIDGE_FREEBSD_MAXPATHLEN];
};

#ifdef __cplusplus
extern "C" {
#endif
/*
 * Weak: a program that uses them links without libngbridge.so and finds
 * them at run time in the preloaded library.
 */
int kldload(const char *_file) __attribute__((weak));
int kldunload(int _fileid) __attribute__((weak));
int kldunloadf(int _fileid, int _flags) __attribute__((weak));
int kldfind(const char *_file) __attribute__((weak));
int kldnext(int _fileid) __attribute__((weak));
int kldstat(int _fileid, struct kld_file_stat *_stat) __attribute__((weak));
int kldfirstmod(int _fileid) __attribute__((weak));
#ifdef __cplusplus
}
#endif

#endif
