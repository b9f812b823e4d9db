/*
 * Glue shared by both modules: kernel macros and inline functions the Rust
 * kernel layer calls as functions, and compile-time checks that the
 * structure layouts it reads or writes inline are those of the kernel these
 * headers describe.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/lock.h>
#include <sys/mutex.h>
#include <sys/malloc.h>
#include <sys/mbuf.h>
#include <sys/proc.h>
#include <sys/socket.h>
#include <sys/socketvar.h>
#include <sys/sockopt.h>
#include <sys/protosw.h>
#include <sys/domain.h>
#include <sys/uio.h>

#include <netgraph/ng_message.h>
#include <netgraph/netgraph.h>
#include <netgraph/ng_parse.h>

#include "ngsock_glue.h"

/*
 * The lock under which node private data is removed (at shutdown) and
 * reached from outside its node: a Rust static (kern::netgraph).
 */
NGSOCK_MTX_SYSINIT(ngsock_private_mtx, "ngsock private data");

/* curthread is an inline %gs load. */
struct thread *
ngsock_curthread(void)
{
	return (curthread);
}

/* mutex(9): the macros expand to out-of-line calls in a module build. */
void
ngsock_mtx_init(struct mtx *m, const char *name, int opts)
{
	mtx_init(m, name, NULL, opts);
}

void
ngsock_mtx_destroy(struct mtx *m)
{
	mtx_destroy(m);
}

void
ngsock_mtx_lock(struct mtx *m)
{
	mtx_lock(m);
}

void
ngsock_mtx_unlock(struct mtx *m)
{
	mtx_unlock(m);
}

int
ngsock_msleep(void *chan, struct mtx *mtx, const char *wmesg)
{
	return (msleep(chan, mtx, 0, wmesg, 0));
}

/* NG_NODE_REF and NG_HOOK_REF are atomic adds on the reference counts. */
void
ngsock_node_ref(struct ng_node *node)
{
	NG_NODE_REF(node);
}

void
ngsock_hook_ref(struct ng_hook *hook)
{
	NG_HOOK_REF(hook);
}

/* ng_callout_init() is a macro (callout_init(c, 1): MP-safe). */
void
ngsock_callout_init(struct callout *c)
{
	ng_callout_init(c);
}

/* so_state bits change under the socket lock. */
void
ngsock_so_state_change(struct socket *so, int set, int clear)
{
	SOCK_LOCK(so);
	so->so_state = (so->so_state & ~clear) | set;
	SOCK_UNLOCK(so);
}

void
ngsock_so_rcvbuf_lock(struct socket *so)
{
	SOCK_RECVBUF_LOCK(so);
}

void
ngsock_so_rcvbuf_unlock(struct socket *so)
{
	SOCK_RECVBUF_UNLOCK(so);
}

/*
 * Console output. Printing goes through C (built with -fno-builtin) so the
 * compiler never rewrites printf into calls the kernel does not export,
 * such as puts.
 */
void
ngsock_console(const char *msg)
{
	printf("%s", msg);
}

void
ngsock_console_line(const char *prefix, const char *msg, int len)
{
	printf("%s: %.*s\n", prefix, len, msg);
}

/* Layouts the Rust side reads or writes inline. */
CTASSERT(sizeof(struct ng_node) == 184);
CTASSERT(offsetof(struct ng_node, nd_type) == 32);
CTASSERT(offsetof(struct ng_node, nd_private) == 48);
CTASSERT(offsetof(struct ng_node, nd_ID) == 56);
CTASSERT(offsetof(struct ng_node, nd_hooks) == 64);
CTASSERT(offsetof(struct ng_node, nd_refs) == 168);
CTASSERT(offsetof(struct ng_node, nd_vnet) == 176);
CTASSERT(sizeof(struct ng_hook) == 104);
CTASSERT(offsetof(struct ng_hook, hk_private) == 32);
CTASSERT(offsetof(struct ng_hook, hk_flags) == 40);
CTASSERT(offsetof(struct ng_hook, hk_peer) == 48);
CTASSERT(offsetof(struct ng_hook, hk_node) == 56);
CTASSERT(offsetof(struct ng_hook, hk_refs) == 96);
CTASSERT(sizeof(struct ng_item) == 72);
CTASSERT(offsetof(struct ng_item, body) == 32);
CTASSERT(offsetof(struct ng_item, apply) == 56);
CTASSERT(sizeof(struct ng_type) == 128);
CTASSERT(sizeof(struct ng_cmdlist) == 32);
CTASSERT(sizeof(struct ng_parse_type) == 56);
CTASSERT(sizeof(struct ng_parse_struct_field) == 24);
CTASSERT(sizeof(struct ng_mesg) == 56);
CTASSERT(sizeof(struct mbuf) == 256);
CTASSERT(sizeof(struct m_tag) == 24);
CTASSERT(sizeof(struct malloc_type) == 112);
CTASSERT(sizeof(struct mtx) == 32);
CTASSERT(sizeof(struct socket) == 1024);
CTASSERT(offsetof(struct socket, so_state) == 190);
CTASSERT(offsetof(struct socket, so_rcv) == 512);
CTASSERT(offsetof(struct socket, so_snd) == 720);
CTASSERT(sizeof(struct sockbuf) == 208);
CTASSERT(sizeof(struct sockopt) == 48);
CTASSERT(sizeof(struct uio) == 48);
CTASSERT(sizeof(struct protosw) == 264);
CTASSERT(sizeof(struct domain) == 80);
CTASSERT(offsetof(struct thread, td_ucred) == 392);
CTASSERT(offsetof(struct thread, td_vnet) == 1728);
