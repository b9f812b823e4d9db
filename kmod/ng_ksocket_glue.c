/*
 * ng_ksocket.ko module declaration, plus the kernel macros the Rust node
 * needs as functions: socket, socket-buffer and listen locks around upcall
 * registration and so_state changes, listen-queue dequeuing, node
 * references, the mutex of the embryo list, and the net.graph.ksocket
 * sysctls. The node type itself (struct ng_type ngsock_ksocket_type, its
 * methods, command list and parse types) is Rust code.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/malloc.h>
#include <sys/mbuf.h>
#include <sys/lock.h>
#include <sys/mutex.h>
#include <sys/socket.h>
#include <sys/socketvar.h>
#include <sys/sysctl.h>

#include <netgraph/ng_message.h>
#include <netgraph/netgraph.h>
#include <netgraph/ng_parse.h>
#include <netgraph/ng_ksocket.h>

#include "ngsock_glue.h"

MALLOC_DEFINE(M_NETGRAPH_KSOCKET, "netgraph_ksock", "netgraph ksock node");

extern struct ng_type ngsock_ksocket_type;

/* Module "ng_ksocket": netgraph's ng_mod_event, depends on netgraph NG_ABI_VERSION. */
NETGRAPH_INIT(ksocket, &ngsock_ksocket_type);
MODULE_VERSION(ng_ksocket, 1);

/*
 * net.graph.ksocket: opt-in improvements that change what FreeBSD's module
 * prints or returns (all off by default). The variables are Rust's
 * (ksocket::tunables), plain ints to the kernel.
 */
extern int ngsock_ks_inet6_ascii;
extern int ngsock_ks_accept_to_requester;
SYSCTL_DECL(_net_graph);
static SYSCTL_NODE(_net_graph, OID_AUTO, ksocket, CTLFLAG_RW | CTLFLAG_MPSAFE, 0,
    "ksocket node type (ngsock)");
SYSCTL_INT(_net_graph_ksocket, OID_AUTO, inet6_ascii, CTLFLAG_RWTUN,
    &ngsock_ks_inet6_ascii, 0,
    "Print IPv6 socket addresses as inet6/[addr]:port (0: generic form, as FreeBSD)");
SYSCTL_INT(_net_graph_ksocket, OID_AUTO, accept_to_requester, CTLFLAG_RWTUN,
    &ngsock_ks_accept_to_requester, 0,
    "Send the accept response for an already queued connection to the requester "
    "(0: to the previous requester, as FreeBSD)");

/*
 * The list of embryonic clone nodes (Rust: kern::nodeset, static
 * ngsock_ks_embryos, whose first member is this mutex). Initialised at
 * load, before the node type is registered; destroyed at unload.
 */
extern struct mtx ngsock_ks_embryos;
MTX_SYSINIT(ngsock_ks_embryos, &ngsock_ks_embryos, "ng_ksocket embryos", MTX_DEF);

/* Prototypes (also declared on the Rust side, kern::soext). */
void	ngsock_ks_soupcalls_set(struct socket *, so_upcall_t *, void *);
void	ngsock_ks_soupcalls_clear(struct socket *);
void	ngsock_ks_listen_upcall(struct socket *, so_upcall_t *, void *);
void	ngsock_ks_set_nbio(struct socket *);
int	ngsock_ks_so_state(struct socket *);
int	ngsock_ks_so_listening(struct socket *);
int	ngsock_ks_so_type(struct socket *);
int	ngsock_ks_cantrcvmore(struct socket *);
int	ngsock_ks_connect_result(struct socket *, int *);
void	ngsock_ks_clear_connecting(struct socket *);
int	ngsock_ks_dequeue(struct socket *, struct socket **);
void	ngsock_node_ref(struct ng_node *);
void	ngsock_callout_init(struct callout *);

/* The same upcall on both buffers, each under its own buffer lock. */
void
ngsock_ks_soupcalls_set(struct socket *so, so_upcall_t *fn, void *arg)
{
	SOCK_RECVBUF_LOCK(so);
	soupcall_set(so, SO_RCV, fn, arg);
	SOCK_RECVBUF_UNLOCK(so);
	SOCK_SENDBUF_LOCK(so);
	soupcall_set(so, SO_SND, fn, arg);
	SOCK_SENDBUF_UNLOCK(so);
}

/* Only called when both were set (soupcall_clear asserts it). */
void
ngsock_ks_soupcalls_clear(struct socket *so)
{
	SOCK_RECVBUF_LOCK(so);
	soupcall_clear(so, SO_RCV);
	SOCK_RECVBUF_UNLOCK(so);
	SOCK_SENDBUF_LOCK(so);
	soupcall_clear(so, SO_SND);
	SOCK_SENDBUF_UNLOCK(so);
}

/* fn NULL removes the listen upcall. */
void
ngsock_ks_listen_upcall(struct socket *so, so_upcall_t *fn, void *arg)
{
	SOLISTEN_LOCK(so);
	solisten_upcall_set(so, fn, arg);
	SOLISTEN_UNLOCK(so);
}

void
ngsock_ks_set_nbio(struct socket *so)
{
	SOCK_LOCK(so);
	so->so_state |= SS_NBIO;
	SOCK_UNLOCK(so);
}

int
ngsock_ks_so_state(struct socket *so)
{
	return (so->so_state);
}

int
ngsock_ks_so_listening(struct socket *so)
{
	return (SOLISTENING(so) ? 1 : 0);
}

int
ngsock_ks_so_type(struct socket *so)
{
	return (so->so_type);
}

int
ngsock_ks_cantrcvmore(struct socket *so)
{
	int r;

	SOCK_RECVBUF_LOCK(so);
	r = (so->so_rcv.sb_state & SBS_CANTRCVMORE) != 0;
	SOCK_RECVBUF_UNLOCK(so);
	return (r);
}

/*
 * Connect completion: take so_error (clearing SS_ISCONNECTING with it) and
 * report whether the socket is still connecting.
 */
int
ngsock_ks_connect_result(struct socket *so, int *still)
{
	int error;

	SOCK_LOCK(so);
	error = so->so_error;
	if (error != 0) {
		so->so_error = 0;
		so->so_state &= ~SS_ISCONNECTING;
	}
	*still = (so->so_state & SS_ISCONNECTING) != 0;
	SOCK_UNLOCK(so);
	return (error);
}

void
ngsock_ks_clear_connecting(struct socket *so)
{
	SOCK_LOCK(so);
	so->so_state &= ~SS_ISCONNECTING;
	SOCK_UNLOCK(so);
}

/* solisten_dequeue releases the listen lock on every path. */
int
ngsock_ks_dequeue(struct socket *head, struct socket **so)
{
	SOLISTEN_LOCK(head);
	return (solisten_dequeue(head, so, SOCK_NONBLOCK));
}

void
ngsock_node_ref(struct ng_node *node)
{
	NG_NODE_REF(node);
}

/* ng_callout_init() is a macro (callout_init(c, 1): MP-safe). */
void
ngsock_callout_init(struct callout *c)
{
	ng_callout_init(c);
}

/* Layouts the Rust side relies on. */
CTASSERT(offsetof(struct ng_node, nd_type) == 32);
CTASSERT(offsetof(struct ng_node, nd_hooks) == 64);
CTASSERT(sizeof(struct ng_ksocket_sockopt) == 8);
CTASSERT(offsetof(struct ng_ksocket_accept, addr) == 4);
CTASSERT(sizeof(struct ng_parse_struct_field) == 24);
CTASSERT(sizeof(struct m_tag) == 24);
CTASSERT(NG_KSOCKET_MAX_OPTLEN == 1024);
