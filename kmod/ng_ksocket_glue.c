/*
 * ng_ksocket.ko module declaration. The node type itself (struct ng_type
 * ngsock_ksocket_type, its methods and command list) is Rust code.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/malloc.h>
#include <sys/mbuf.h>

#include <netgraph/ng_message.h>
#include <netgraph/netgraph.h>

MALLOC_DEFINE(M_NETGRAPH_KSOCKET, "netgraph_ksock", "netgraph ksock node");

extern struct ng_type ngsock_ksocket_type;

/* Module "ng_ksocket": netgraph's ng_mod_event, depends on netgraph NG_ABI_VERSION. */
NETGRAPH_INIT(ksocket, &ngsock_ksocket_type);
MODULE_VERSION(ng_ksocket, 1);
