/*
 * ng_socket.ko module declaration. The node type, the PF_NETGRAPH protocol
 * switch and the module event handler are Rust code.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/malloc.h>
#include <sys/mbuf.h>

#include <netgraph/ng_message.h>
#include <netgraph/netgraph.h>

MALLOC_DEFINE(M_NETGRAPH_PATH, "netgraph_path", "netgraph path info");
MALLOC_DEFINE(M_NETGRAPH_SOCK, "netgraph_sock", "netgraph socket info");

extern struct ng_type ngsock_socket_type;

/* Module "ng_socket", ordered like FreeBSD's: the domain must exist early. */
NETGRAPH_INIT_ORDERED(socket, &ngsock_socket_type, SI_SUB_PROTO_DOMAIN, SI_ORDER_ANY);
MODULE_VERSION(ng_socket, 1);
