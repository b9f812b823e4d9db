/*
 * ng_cecho: a small netgraph node type written in C against the FreeBSD 15
 * headers, built as a real .ko by the ng_module test and loaded through the
 * harness loader. It exercises the ABI the core must honour: the inline
 * macros of netgraph.h (NGI_GET_MSG, NG_MKRESPONSE, NG_RESPOND_MSG,
 * NG_FWD_ITEM_HOOK, NG_NODE_SET_PRIVATE, NG_NODE_NUMHOOKS, NG_NODE_UNREF...),
 * NETGRAPH_INIT (ng_mod_event) and MALLOC_DEFINE.
 *
 * Messages (cookie NGM_CECHO_COOKIE):
 *   1 GETCOUNTS  -> reply: two ints {messages seen, packets seen}
 *   2 PING       -> reply: the argument bytes, unchanged
 *   3 SELFDESTRUCT -> ng_rmnode_self from inside rcvmsg, no reply
 * anything else -> EINVAL. Data is sent back out of the arrival hook.
 * Hook "bad" is refused (EINVAL). The node goes away with its last hook.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/malloc.h>
#include <sys/mbuf.h>
#include <sys/errno.h>
#include <netgraph/ng_message.h>
#include <netgraph/netgraph.h>

#define NGM_CECHO_COOKIE 1700000001

static MALLOC_DEFINE(M_CECHO, "cecho", "ng_cecho test node");

struct cecho_priv {
	int msgs;
	int packets;
};

static ng_constructor_t cecho_ctor;
static ng_rcvmsg_t cecho_rcvmsg;
static ng_shutdown_t cecho_shutdown;
static ng_newhook_t cecho_newhook;
static ng_rcvdata_t cecho_rcvdata;
static ng_disconnect_t cecho_disconnect;

static struct ng_type cecho_type = {
	.version = NG_ABI_VERSION,
	.name = "cecho",
	.constructor = cecho_ctor,
	.rcvmsg = cecho_rcvmsg,
	.shutdown = cecho_shutdown,
	.newhook = cecho_newhook,
	.rcvdata = cecho_rcvdata,
	.disconnect = cecho_disconnect,
};
NETGRAPH_INIT(cecho, &cecho_type);

static int
cecho_ctor(node_p node)
{
	struct cecho_priv *p;

	p = malloc(sizeof(*p), M_CECHO, M_NOWAIT | M_ZERO);
	if (p == NULL)
		return (ENOMEM);
	NG_NODE_SET_PRIVATE(node, p);
	return (0);
}

static int
cecho_newhook(node_p node, hook_p hook, const char *name)
{
	if (name[0] == 'b' && name[1] == 'a' && name[2] == 'd' && name[3] == 0)
		return (EINVAL);
	return (0);
}

static int
cecho_rcvmsg(node_p node, item_p item, hook_p lasthook)
{
	struct cecho_priv *p = NG_NODE_PRIVATE(node);
	struct ng_mesg *msg, *resp = NULL;
	int error = 0;

	NGI_GET_MSG(item, msg);
	p->msgs++;
	if (msg->header.typecookie != NGM_CECHO_COOKIE) {
		error = EINVAL;
	} else {
		switch (msg->header.cmd) {
		case 1:
			NG_MKRESPONSE(resp, msg, 2 * sizeof(int), M_NOWAIT);
			if (resp == NULL) {
				error = ENOMEM;
				break;
			}
			((int *)resp->data)[0] = p->msgs;
			((int *)resp->data)[1] = p->packets;
			break;
		case 2:
			NG_MKRESPONSE(resp, msg, msg->header.arglen, M_NOWAIT);
			if (resp == NULL) {
				error = ENOMEM;
				break;
			}
			{
				/* byte loop: the model exports no memmove yet */
				volatile char *d = resp->data;
				u_int i;

				for (i = 0; i < msg->header.arglen; i++)
					d[i] = msg->data[i];
			}
			break;
		case 3:
			error = ng_rmnode_self(node);
			break;
		default:
			error = EINVAL;
			break;
		}
	}
	NG_RESPOND_MSG(error, node, item, resp);
	NG_FREE_MSG(msg);
	return (error);
}

static int
cecho_rcvdata(hook_p hook, item_p item)
{
	struct cecho_priv *p = NG_NODE_PRIVATE(NG_HOOK_NODE(hook));
	int error;

	p->packets++;
	NG_FWD_ITEM_HOOK(error, item, hook);
	return (error);
}

static int
cecho_disconnect(hook_p hook)
{
	node_p node = NG_HOOK_NODE(hook);

	if (NG_NODE_NUMHOOKS(node) == 0 && NG_NODE_IS_VALID(node))
		ng_rmnode_self(node);
	return (0);
}

static int
cecho_shutdown(node_p node)
{
	free(NG_NODE_PRIVATE(node), M_CECHO);
	NG_NODE_SET_PRIVATE(node, NULL);
	NG_NODE_UNREF(node);
	return (0);
}
