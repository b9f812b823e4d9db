/*
 * Internal declarations of libngbridge.so, shared by its parts:
 * ngbridge_core.c (the real functions, bridged descriptors, numbering,
 * talking to the server), ngbridge_sockets.c (the socket and descriptor
 * calls) and ngbridge_freebsd.c (FreeBSD-only calls, process life).
 */
#ifndef NGBRIDGE_H
#define NGBRIDGE_H

#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ngbridge_wire.h"

#define EXPORT __attribute__((visibility("default")))

/* FreeBSD numbering */
#define FB_PF_NETGRAPH 32
#define FB_SOL_SOCKET 0xffff
#define FB_EWOULDBLOCK 35
#define FB_EPIPE 32
#define FB_MSG_OOB 0x1
#define FB_MSG_PEEK 0x2
#define FB_MSG_DONTROUTE 0x4
#define FB_MSG_EOR 0x8
#define FB_MSG_TRUNC 0x10
#define FB_MSG_CTRUNC 0x20
#define FB_MSG_WAITALL 0x40
#define FB_MSG_DONTWAIT 0x80
#define FB_MSG_NOSIGNAL 0x20000
#define FB_MSG_CMSG_CLOEXEC 0x40000
#define FB_MSG_WAITFORONE 0x80000

#define MAXFD 65536
#define SOCKBUF (1 << 20)
#define FB_SOCK_MAXADDRLEN 255
#define ADDRBUF 256

#define REAL(name) (real_##name != NULL ? real_##name : \
	(real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)))

extern int (*real_socket)(int, int, int);
extern int (*real_bind)(int, const struct sockaddr *, socklen_t);
extern int (*real_connect)(int, const struct sockaddr *, socklen_t);
extern int (*real_listen)(int, int);
extern int (*real_accept)(int, struct sockaddr *, socklen_t *);
extern int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
extern ssize_t (*real_send)(int, const void *, size_t, int);
extern ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
extern ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
extern ssize_t (*real_write)(int, const void *, size_t);
extern ssize_t (*real_writev)(int, const struct iovec *, int);
extern ssize_t (*real_recv)(int, void *, size_t, int);
extern ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
extern ssize_t (*real_recvmsg)(int, struct msghdr *, int);
extern ssize_t (*real_read)(int, void *, size_t);
extern ssize_t (*real_readv)(int, const struct iovec *, int);
extern ssize_t (*real___read_chk)(int, void *, size_t, size_t);
extern ssize_t (*real___recv_chk)(int, void *, size_t, size_t, int);
extern ssize_t (*real___recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
extern int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
extern int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
extern int (*real_setsockopt)(int, int, int, const void *, socklen_t);
extern int (*real_getsockopt)(int, int, int, void *, socklen_t *);
extern int (*real_shutdown)(int, int);
extern int (*real_close)(int);
extern int (*real_dup)(int);
extern int (*real_dup2)(int, int);
extern int (*real_dup3)(int, int, int);
extern int (*real_fcntl)(int, int, ...);
extern int (*real_fcntl64)(int, int, ...);
extern int (*real_ioctl)(int, unsigned long, ...);
extern int (*real_close_range)(unsigned int, unsigned int, int);
extern void (*real_closefrom)(int);

struct conn {
	pthread_mutex_t mu; /* one request at a time */
	int refs;	    /* descriptors of this process naming it */
	unsigned char *buf; /* NGB_CHUNK + 1 bytes */
};

extern _Atomic(struct conn *) tab[MAXFD];
extern pthread_mutex_t tab_mu;

struct req {
	uint16_t op;
	int32_t a, b, c;
	const void *p1, *p2, *p3;
	size_t l1, l2, l3;
};

struct rep {
	int32_t error, x, y;
	int64_t ret;
	void *o1, *o2;	     /* where blob1 / blob2 go (may be NULL) */
	size_t cap1, cap2;   /* their room */
	size_t len1, len2;   /* the blobs' full lengths */
};

struct conn *lookup(int fd);
struct conn *conn_new(void);
void conn_put_locked(struct conn *c);
void fd_attach(int fd, struct conn *c);
void fd_detach(int fd);
EXPORT int ngbridge_errno_to_linux(int e);
int set_fb_errno(int fb);
int flags_to_fb(int f);
int flags_from_fb(int f);
int sockopt_to_fb(int name);
void put32(unsigned char *p, uint32_t v);
uint32_t get32(const unsigned char *p);
const char *server_path(void);
int connect_server(int cloexec);
int wait_fd(int fd, short ev);
int send_all(int fd, const unsigned char *p, size_t n);
ssize_t recv_packet(int fd, unsigned char *buf);
void sink(struct rep *rp, size_t pos, const unsigned char *d, size_t n);
int exchange(int fd, unsigned char *buf, const struct req *rq, struct rep *rp);
int rpc(int fd, struct conn *c, const struct req *rq, struct rep *rp);
int control(const struct req *rq, struct rep *rp);
int nonblocking(int fd, int flags);
int restartable(void);
int64_t now_ms(void);
int wait_readable(int fd, int64_t deadline);
int check_addr(const struct sockaddr *sa, socklen_t len);

#endif
