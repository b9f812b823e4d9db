/*
 * ng_socket.ko module declaration and the static records Rust cannot
 * conveniently express: the PF_NETGRAPH domain with its protocol switch
 * (a flexible array of protosw pointers), the DOMAIN_SET linker-set records,
 * and the net.graph sysctls this module owns. Every method is Rust code.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/malloc.h>
#include <sys/mbuf.h>
#include <sys/lock.h>
#include <sys/mutex.h>
#include <sys/proc.h>
#include <sys/protosw.h>
#include <sys/domain.h>
#include <sys/socket.h>
#include <sys/socketvar.h>
#include <sys/sysctl.h>

#include <netgraph/ng_message.h>
#include <netgraph/netgraph.h>
#include <netgraph/ng_socket.h>
#include <netgraph/ng_socketvar.h>

#include "ngsock_glue.h"

MALLOC_DEFINE(M_NETGRAPH_PATH, "netgraph_path", "netgraph path info");
MALLOC_DEFINE(M_NETGRAPH_SOCK, "netgraph_sock", "netgraph socket info");

extern struct ng_type ngsock_socket_type;

/* Module "ng_socket", ordered like FreeBSD's: the domain must exist early. */
NETGRAPH_INIT_ORDERED(socket, &ngsock_socket_type, SI_SUB_PROTO_DOMAIN, SI_ORDER_ANY);
MODULE_VERSION(ng_socket, 1);

/* Protocol methods (Rust). */
int	ngsock_ctl_attach(struct socket *, int, struct thread *);
int	ngsock_ctl_bind(struct socket *, struct sockaddr *, struct thread *);
int	ngsock_ctl_connect(struct socket *, struct sockaddr *, struct thread *);
int	ngsock_ctl_send(struct socket *, int, struct mbuf *, struct sockaddr *,
	    struct mbuf *, struct thread *);
int	ngsock_data_attach(struct socket *, int, struct thread *);
int	ngsock_data_connect(struct socket *, struct sockaddr *, struct thread *);
int	ngsock_data_send(struct socket *, int, struct mbuf *, struct sockaddr *,
	    struct mbuf *, struct thread *);
void	ngsock_detach(struct socket *);
int	ngsock_disconnect(struct socket *);
int	ngsock_sockaddr(struct socket *, struct sockaddr *);

/* Buffer sizes of new sockets (net.graph.maxdgram, net.graph.recvspace). */
u_long ngsock_maxdgram = 20 * 1024;
u_long ngsock_recvspace = 20 * 1024;

/*
 * Head of the list of all netgraph socket PCBs. `netstat -f netgraph` finds
 * it by this symbol name, which the build keeps global.
 */
LIST_HEAD(, ngpcb) ngsocklist;
struct mtx ngsocklist_mtx;
NGSOCK_MTX_SYSINIT(ngsocklist_mtx, "ng_socketlist");

static struct protosw ngcontrol_protosw = {
	.pr_type =	SOCK_DGRAM,
	.pr_protocol =	NG_CONTROL,
	.pr_flags =	PR_ATOMIC | PR_ADDR,
	.pr_attach =	ngsock_ctl_attach,
	.pr_bind =	ngsock_ctl_bind,
	.pr_connect =	ngsock_ctl_connect,
	.pr_detach =	ngsock_detach,
	.pr_disconnect = ngsock_disconnect,
	.pr_send =	ngsock_ctl_send,
	.pr_sockaddr =	ngsock_sockaddr,
};

static struct protosw ngdata_protosw = {
	.pr_type =	SOCK_DGRAM,
	.pr_protocol =	NG_DATA,
	.pr_flags =	PR_ATOMIC | PR_ADDR,
	.pr_attach =	ngsock_data_attach,
	.pr_connect =	ngsock_data_connect,
	.pr_detach =	ngsock_detach,
	.pr_disconnect = ngsock_disconnect,
	.pr_send =	ngsock_data_send,
	.pr_sockaddr =	ngsock_sockaddr,
};

/*
 * Unlike FreeBSD's, this domain can be removed: the module refuses
 * MOD_UNLOAD always unless net.graph.socket.allow_unload is set, and even
 * then while any netgraph socket exists, so no socket can outlive it.
 */
static struct domain ngdomain = {
	.dom_family =	AF_NETGRAPH,
	.dom_name =	"netgraph",
	.dom_flags =	DOMF_UNLOADABLE,
	.dom_nprotosw =	2,
	.dom_protosw =	{ &ngcontrol_protosw, &ngdata_protosw },
};

DOMAIN_SET(ng);

SYSCTL_DECL(_net_graph);
SYSCTL_INT(_net_graph, OID_AUTO, family, CTLFLAG_RD, SYSCTL_NULL_INT_PTR, AF_NETGRAPH, "");
static SYSCTL_NODE(_net_graph, OID_AUTO, data, CTLFLAG_RW | CTLFLAG_MPSAFE, 0, "DATA");
SYSCTL_INT(_net_graph_data, OID_AUTO, proto, CTLFLAG_RD, SYSCTL_NULL_INT_PTR, NG_DATA, "");
static SYSCTL_NODE(_net_graph, OID_AUTO, control, CTLFLAG_RW | CTLFLAG_MPSAFE, 0, "CONTROL");
SYSCTL_INT(_net_graph_control, OID_AUTO, proto, CTLFLAG_RD, SYSCTL_NULL_INT_PTR, NG_CONTROL, "");
SYSCTL_ULONG(_net_graph, OID_AUTO, maxdgram, CTLFLAG_RW, &ngsock_maxdgram, 0,
    "Maximum outgoing Netgraph datagram size");
SYSCTL_ULONG(_net_graph, OID_AUTO, recvspace, CTLFLAG_RW, &ngsock_recvspace, 0,
    "Maximum space for incoming Netgraph datagrams");

/*
 * The network epoch (NET_EPOCH_ENTER/EXIT) for the data path.
 * <sys/epoch.h> needs the Concurrency Kit headers, which the header sysroot
 * lacks, so the three names are declared here exactly as FreeBSD 15
 * declares them without EPOCH_TRACE (epoch_t is a struct epoch pointer).
 * The tracker is the caller's storage, at least as large as the kernel's.
 */
struct epoch;
extern struct epoch *net_epoch_preempt;
void	_epoch_enter_preempt(struct epoch *, struct epoch_tracker *);
void	_epoch_exit_preempt(struct epoch *, struct epoch_tracker *);

void
ngsock_net_epoch_enter(struct epoch_tracker *et)
{
	_epoch_enter_preempt(net_epoch_preempt, et);
}

void
ngsock_net_epoch_exit(struct epoch_tracker *et)
{
	_epoch_exit_preempt(net_epoch_preempt, et);
}

/*
 * net.graph.socket: opt-in improvements that change what FreeBSD's module
 * returns (off by default). Rust reads the variable at MOD_UNLOAD.
 */
int ngsock_allow_unload = 0;
static SYSCTL_NODE(_net_graph, OID_AUTO, socket, CTLFLAG_RW | CTLFLAG_MPSAFE, 0,
    "socket node type (ngsock)");
SYSCTL_INT(_net_graph_socket, OID_AUTO, allow_unload, CTLFLAG_RWTUN,
    &ngsock_allow_unload, 0,
    "Let the module unload once no netgraph socket exists (0: never, as FreeBSD)");

/* struct ngpcb is read by netstat(1): keep its layout. */
CTASSERT(offsetof(struct ngpcb, ng_socket) == 0);
CTASSERT(offsetof(struct ngpcb, sockdata) == 8);
CTASSERT(offsetof(struct ngpcb, socks) == 16);
CTASSERT(offsetof(struct ngpcb, type) == 32);
CTASSERT(offsetof(struct ngpcb, node_id) == 36);
CTASSERT(sizeof(struct sockaddr_ng) == 34);
