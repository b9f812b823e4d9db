/*
 * Glue shared by both modules: wrappers for kernel macros and inline
 * functions that Rust cannot call directly, and compile-time checks that
 * the structure layouts the Rust code relies on are the ones of the kernel
 * these headers describe.
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

/* Layouts the Rust side reads or writes inline (kpi-contracts §11, netgraph-core §1.7). */
CTASSERT(sizeof(struct ng_node) == 184);
CTASSERT(offsetof(struct ng_node, nd_private) == 48);
CTASSERT(offsetof(struct ng_node, nd_ID) == 56);
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

/*
 * Console output for the Rust side. Printing goes through C (built with
 * -fno-builtin) so the compiler never rewrites printf into calls the kernel
 * does not export, such as puts.
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
