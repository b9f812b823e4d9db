/*
 * Options a standalone FreeBSD module build puts in its generated
 * opt_global.h (sys/conf/config.mk), matching a GENERIC amd64 kernel.
 */
#define VIMAGE 1
#define SMP 1
#define MAC 1
