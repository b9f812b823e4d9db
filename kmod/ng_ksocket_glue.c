/*
 * ng_ksocket.ko module declaration: the module around the node type record
 * (struct ng_type ngsock_ksocket_type, Rust), its malloc type, the mutex
 * of its embryo list and the net.graph.ksocket sysctls. The node type
 * itself, its methods, command list and parse types are Rust code; the
 * socket services it uses are in glue_socket.c.
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
 * prints or returns (all off by default). Rust reads the variables
 * (ksocket::tunables) each time it needs the setting.
 */
int ngsock_ks_inet6_ascii = 0;
int ngsock_ks_accept_to_requester = 0;
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
 * The mutex of the list of embryonic clone nodes (a Rust static whose first
 * member is this mutex). Initialised at load, before the node type is
 * registered; destroyed at unload.
 */
NGSOCK_MTX_SYSINIT(ngsock_ks_embryos, "ng_ksocket embryos");

/* Layouts of this node type's messages and tags. */
CTASSERT(sizeof(struct ng_ksocket_sockopt) == 8);
CTASSERT(offsetof(struct ng_ksocket_accept, addr) == 4);
CTASSERT(NG_KSOCKET_MAX_OPTLEN == 1024);
