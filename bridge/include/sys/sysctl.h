/*
 * sys/sysctl.h for Linux programs run against the ngsock bridge:
 * sysctlbyname(3), answered by libngbridge.so from the harness kernel's
 * sysctls (net.graph.* of the loaded modules).
 */
#ifndef NGBRIDGE_SYS_SYSCTL_H
#define NGBRIDGE_SYS_SYSCTL_H

#include <ngbridge/freebsd.h>

#ifdef __cplusplus
extern "C" {
#endif
int sysctlbyname(const char *_name, void *_oldp, size_t *_oldlenp,
    const void *_newp, size_t _newlen) __attribute__((weak));
#ifdef __cplusplus
}
#endif

#endif
