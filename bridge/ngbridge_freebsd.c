/*
 * libngbridge.so: the FreeBSD-only calls (kld*, mod*, sysctlbyname), the
 * harness control entry point, and the library's process life (fork,
 * descriptors inherited across exec).
 */
#include "ngbridge.h"

/* ---------------------------------------------------------------------- */
/* FreeBSD-only calls */

#define FB_MAXPATHLEN 1024

static int
ctl_simple(uint16_t op, const char *name, int a, int b, struct rep *rp)
{
	struct req rq = { .op = op, .a = a, .b = b };

	if (name != NULL) {
		rq.p1 = name;
		rq.l1 = strlen(name) + 1;
	}
	if (control(&rq, rp) != 0)
		return (-1);
	if (rp->error != 0)
		return (set_fb_errno(rp->error));
	return ((int)rp->ret);
}

EXPORT int
kldload(const char *file)
{
	struct rep rp = { 0 };

	if (file == NULL) {
		errno = EFAULT;
		return (-1);
	}
	return (ctl_simple(NGB_KLDLOAD, file, 0, 0, &rp));
}

EXPORT int
kldunloadf(int fileid, int flags)
{
	struct rep rp = { 0 };

	return (ctl_simple(NGB_KLDUNLOAD, NULL, fileid, flags, &rp) < 0 ? -1 : 0);
}

EXPORT int
kldunload(int fileid)
{
	return (kldunloadf(fileid, 0));
}

EXPORT int
kldfind(const char *file)
{
	struct rep rp = { 0 };

	if (file == NULL) {
		errno = EFAULT;
		return (-1);
	}
	return (ctl_simple(NGB_KLDFIND, file, 0, 0, &rp));
}

EXPORT int
kldnext(int fileid)
{
	struct rep rp = { 0 };

	return (ctl_simple(NGB_KLDNEXT, NULL, fileid, 0, &rp));
}

EXPORT int
kldfirstmod(int fileid)
{
	struct rep rp = { 0 };

	return (ctl_simple(NGB_KLDFIRSTMOD, NULL, fileid, 0, &rp));
}

/* struct kld_file_stat (FreeBSD amd64): version, name[1024], refs, id,
 * address, size, pathname[1024]; version 1 stops before pathname. */
#define KFS_NAME 4
#define KFS_REFS 1028
#define KFS_ID 1032
#define KFS_ADDRESS 1040
#define KFS_SIZE 1048
#define KFS_PATHNAME 1056
#define KFS_SIZE_1 1056
#define KFS_SIZE_2 2080

EXPORT int
kldstat(int fileid, void *stat)
{
	unsigned char name[FB_MAXPATHLEN], path[FB_MAXPATHLEN];
	struct req rq = { .op = NGB_KLDSTAT, .a = fileid };
	struct rep rp = { .o1 = name, .cap1 = sizeof(name) - 1,
		.o2 = path, .cap2 = sizeof(path) - 1 };
	unsigned char *s = stat;
	int version, refs, id;
	uint64_t size, zero = 0;
	size_t n;

	if (s == NULL) {
		errno = EFAULT;
		return (-1);
	}
	memcpy(&version, s, sizeof(int));
	if (version != KFS_SIZE_1 && version != KFS_SIZE_2) {
		errno = EINVAL;
		return (-1);
	}
	if (control(&rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	memset(s + KFS_NAME, 0, FB_MAXPATHLEN);
	n = rp.len1 < sizeof(name) - 1 ? rp.len1 : sizeof(name) - 1;
	memcpy(s + KFS_NAME, name, n);
	refs = rp.x;
	id = rp.y;
	size = (uint64_t)rp.ret;
	memcpy(s + KFS_REFS, &refs, sizeof(int));
	memcpy(s + KFS_ID, &id, sizeof(int));
	memcpy(s + KFS_ADDRESS, &zero, 8);
	memcpy(s + KFS_SIZE, &size, 8);
	if (version == KFS_SIZE_2) {
		memset(s + KFS_PATHNAME, 0, FB_MAXPATHLEN);
		n = rp.len2 < sizeof(path) - 1 ? rp.len2 : sizeof(path) - 1;
		memcpy(s + KFS_PATHNAME, path, n);
	}
	return (0);
}

EXPORT int
modfind(const char *name)
{
	struct rep rp = { 0 };

	if (name == NULL) {
		errno = EFAULT;
		return (-1);
	}
	return (ctl_simple(NGB_MODFIND, name, 0, 0, &rp));
}

EXPORT int
modnext(int modid)
{
	struct rep rp = { 0 };

	return (ctl_simple(NGB_MODNEXT, NULL, modid, 0, &rp));
}

EXPORT int
modfnext(int modid)
{
	struct rep rp = { 0 };
	int file, next;

	/* The next module of the same file. */
	if (ctl_simple(NGB_MODSTAT, NULL, modid, 0, &rp) < 0)
		return (-1);
	file = rp.y;
	next = modid;
	for (;;) {
		memset(&rp, 0, sizeof(rp));
		next = ctl_simple(NGB_MODNEXT, NULL, next, 0, &rp);
		if (next <= 0)
			return (next < 0 ? -1 : 0);
		memset(&rp, 0, sizeof(rp));
		if (ctl_simple(NGB_MODSTAT, NULL, next, 0, &rp) < 0)
			return (-1);
		if (rp.y == file)
			return (next);
	}
}

/* struct module_stat: version, name[MAXMODNAME], refs, id, data; v1/v2
 * have a 32-byte name. */
EXPORT int
modstat(int modid, void *stat)
{
	unsigned char name[FB_MAXPATHLEN];
	struct req rq = { .op = NGB_MODSTAT, .a = modid };
	struct rep rp = { .o1 = name, .cap1 = sizeof(name) - 1 };
	unsigned char *s = stat;
	int version, namelen, refs, id;
	size_t n, off;

	if (s == NULL) {
		errno = EFAULT;
		return (-1);
	}
	memcpy(&version, s, sizeof(int));
	if (version == 1048)
		namelen = FB_MAXPATHLEN;
	else if (version == 44 || version == 56)
		namelen = 32;
	else {
		errno = EINVAL;
		return (-1);
	}
	if (control(&rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	memset(s + 4, 0, namelen);
	n = rp.len1 < (size_t)namelen - 1 ? rp.len1 : (size_t)namelen - 1;
	memcpy(s + 4, name, n);
	refs = rp.x;
	id = (int)rp.ret;
	off = 4 + namelen;
	memcpy(s + off, &refs, sizeof(int));
	memcpy(s + off + 4, &id, sizeof(int));
	if (version != 44) {
		uint64_t zero = 0;

		memcpy(s + ((off + 8 + 7) & ~(size_t)7), &zero, 8);
	}
	return (0);
}

EXPORT int
sysctlbyname(const char *name, void *oldp, size_t *oldlenp, const void *newp, size_t newlen)
{
	unsigned char val[16];
	struct req rq = { .op = NGB_SYSCTL };
	struct rep rp = { .o1 = val, .cap1 = sizeof(val) };
	size_t n;

	if (name == NULL) {
		errno = EFAULT;
		return (-1);
	}
	rq.p1 = name;
	rq.l1 = strlen(name) + 1;
	if (newp != NULL && newlen > 0) {
		if (newlen > sizeof(val)) {
			errno = EINVAL;
			return (-1);
		}
		rq.p2 = newp;
		rq.l2 = newlen;
	}
	if (control(&rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	n = rp.len1 < sizeof(val) ? rp.len1 : sizeof(val);
	if (oldlenp != NULL) {
		if (oldp != NULL) {
			if (*oldlenp < n) {
				memcpy(oldp, val, *oldlenp);
				errno = ENOMEM;
				return (-1);
			}
			memcpy(oldp, val, n);
		}
		*oldlenp = n;
	}
	return (0);
}

/*
 * Harness control for test drivers: `op` is one of NGB_SETTLE,
 * NGB_ADVANCE (arg = milliseconds), NGB_STATUS; returns the reply's ret.
 */
EXPORT long
ngbridge_control(int op, int arg)
{
	struct rep rp = { 0 };
	struct req rq = { .op = (uint16_t)op, .a = arg };

	if (control(&rq, &rp) != 0)
		return (-1);
	if (rp.error != 0)
		return (set_fb_errno(rp.error));
	return ((long)rp.ret);
}

/* ---------------------------------------------------------------------- */
/* Process life */

static void
atfork_child(void)
{
	int fd;

	/* Another thread may have held a lock at fork time. */
	pthread_mutex_init(&tab_mu, NULL);
	for (fd = 0; fd < MAXFD; fd++) {
		struct conn *c = atomic_load(&tab[fd]);

		if (c != NULL)
			pthread_mutex_init(&c->mu, NULL);
	}
}

/*
 * Descriptors inherited across exec that are connections to the server are
 * bridged sockets of this process too.
 */
static void
adopt_inherited(void)
{
	const char *path = server_path();
	DIR *d;
	struct dirent *e;
	struct {
		ino_t ino;
		struct conn *c;
	} seen[64];
	int nseen = 0, i;

	if (path == NULL || (d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name), type = 0;
		socklen_t tl = sizeof(type);
		struct sockaddr_un sun;
		socklen_t sl = sizeof(sun);
		struct stat st;
		struct conn *c = NULL;

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d) || fd >= MAXFD)
			continue;
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			continue;
		if (REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_SEQPACKET)
			continue;
		memset(&sun, 0, sizeof(sun));
		if (REAL(getpeername)(fd, (struct sockaddr *)&sun, &sl) != 0 ||
		    sun.sun_family != AF_UNIX || strncmp(sun.sun_path, path, sizeof(sun.sun_path)) != 0)
			continue;
		for (i = 0; i < nseen; i++)
			if (seen[i].ino == st.st_ino)
				c = seen[i].c;
		if (c == NULL) {
			if ((c = conn_new()) == NULL)
				continue;
			if (nseen < 64) {
				seen[nseen].ino = st.st_ino;
				seen[nseen].c = c;
				nseen++;
			}
		}
		fd_attach(fd, c);
	}
	closedir(d);
}

__attribute__((constructor)) static void
ngbridge_init(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
	adopt_inherited();
}
