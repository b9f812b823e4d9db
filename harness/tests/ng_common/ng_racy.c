/*
 * ng_racy: a node type with deliberate concurrency bugs, built as a real
 * .ko, for the harness's self-tests: the SMP model, the lock-order oracle
 * and the network-epoch checks must each report their bug.
 *
 * Hooks (by name):
 *   cache*  data handlers share a one-slot buffer cache without a lock; data
 *           items are readers, so two of them run at once on two CPUs and
 *           both take (and free) the same buffer, or both fill the slot.
 *   upcall  the node opens a UDP socket on 127.0.0.1 whose receive upcall
 *           uses the node's private data; shutdown frees that data before
 *           clearing the upcall.
 *   listen  like upcall, with a listening TCP socket: the listen upcall
 *           (a connection arrived) uses the node's private data; shutdown
 *           frees that data before clearing the upcall.
 *   defer   connected to another racy node: message defer queues a
 *           function item to the peer node carrying a pointer to this
 *           node's private data, without a reference; shutdown frees it
 *           while the item may still wait in the peer's queue.
 *   epoch   data handler allocates with M_WAITOK (it runs in the network
 *           epoch: a sleep there).
 *   other   accepted, no behaviour.
 *
 * Messages (cookie NGM_RACY_COOKIE): getport (the upcall socket's port),
 * ab / ba (take the two node mutexes in one order, then the other),
 * gab / gba (the same with two module-wide mutexes: sent to two nodes at
 * once, a deadlock), sleepinepoch (tsleep inside NET_EPOCH_ENTER),
 * epochleak (returns inside an epoch section it entered), senddata (sends
 * a packet out of hook "out" without entering the network epoch),
 * sockorder (takes the upcall socket's receive-buffer lock, then its
 * socket lock: FreeBSD's fixed order reversed), spinname (names the node,
 * which takes netgraph's name-hash mutex, with a spin mutex held), defer
 * (see hook defer).
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
#include <sys/socket.h>
#include <sys/socketvar.h>
#include <sys/errno.h>
#include <netinet/in.h>
#include <netgraph/ng_message.h>
#include <netgraph/netgraph.h>
#include <netgraph/ng_parse.h>

/* <sys/epoch.h> needs Concurrency Kit headers the header sysroot lacks. */
struct epoch;
struct epoch_tracker;
extern struct epoch *net_epoch_preempt;
void	_epoch_enter_preempt(struct epoch *, struct epoch_tracker *);
void	_epoch_exit_preempt(struct epoch *, struct epoch_tracker *);

#define NGM_RACY_COOKIE 1700000077
enum {
	RACY_GETPORT = 1, RACY_AB, RACY_BA, RACY_SLEEPINEPOCH, RACY_EPOCHLEAK,
	RACY_SENDDATA, RACY_SOCKORDER, RACY_GAB, RACY_GBA, RACY_SPINNAME,
	RACY_DEFER
};

static MALLOC_DEFINE(M_RACY, "racy", "ng_racy test node");

static struct mtx racy_ga, racy_gb;
MTX_SYSINIT(racy_ga, &racy_ga, "racy global a", MTX_DEF);
MTX_SYSINIT(racy_gb, &racy_gb, "racy global b", MTX_DEF);
static struct mtx racy_spin;
MTX_SYSINIT(racy_spin, &racy_spin, "racy spin", MTX_SPIN);

struct racy_priv {
	struct mtx a;
	struct mtx b;
	struct socket *so;
	int listening;
	void *slot;
	int packets;
	int port;
};

static ng_constructor_t racy_ctor;
static ng_rcvmsg_t racy_rcvmsg;
static ng_shutdown_t racy_shutdown;
static ng_newhook_t racy_newhook;
static ng_rcvdata_t racy_rcvdata;
static ng_disconnect_t racy_disconnect;

static const struct ng_cmdlist racy_cmds[] = {
	{ NGM_RACY_COOKIE, RACY_GETPORT, "getport", NULL, &ng_parse_int32_type },
	{ NGM_RACY_COOKIE, RACY_AB, "ab", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_BA, "ba", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_SLEEPINEPOCH, "sleepinepoch", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_EPOCHLEAK, "epochleak", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_SENDDATA, "senddata", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_SOCKORDER, "sockorder", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_GAB, "gab", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_GBA, "gba", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_SPINNAME, "spinname", NULL, NULL },
	{ NGM_RACY_COOKIE, RACY_DEFER, "defer", NULL, NULL },
	{ 0 }
};

static struct ng_type racy_type = {
	.version = NG_ABI_VERSION,
	.name = "racy",
	.constructor = racy_ctor,
	.rcvmsg = racy_rcvmsg,
	.shutdown = racy_shutdown,
	.newhook = racy_newhook,
	.rcvdata = racy_rcvdata,
	.disconnect = racy_disconnect,
	.cmdlist = racy_cmds,
};
NETGRAPH_INIT(racy, &racy_type);

static int
racy_ctor(node_p node)
{
	struct racy_priv *p;

	p = malloc(sizeof(*p), M_RACY, M_NOWAIT | M_ZERO);
	if (p == NULL)
		return (ENOMEM);
	mtx_init(&p->a, "racy a", NULL, MTX_DEF);
	mtx_init(&p->b, "racy b", NULL, MTX_DEF);
	NG_NODE_SET_PRIVATE(node, p);
	return (0);
}

/* Runs on the network thread with the receive buffer locked. */
static int
racy_upcall(struct socket *so, void *arg, int waitflag)
{
	struct racy_priv *p = arg;

	mtx_lock(&p->a);
	p->packets++;
	mtx_unlock(&p->a);
	return (SU_OK);
}

/* Runs when a connection arrives, with the listening socket locked. */
static int
racy_listen_upcall(struct socket *so, void *arg, int waitflag)
{
	struct racy_priv *p = arg;

	mtx_lock(&p->a);
	p->packets++;
	mtx_unlock(&p->a);
	return (SU_OK);
}

/* A function item queued to the peer node: arg1 is the sender's data. */
static void
racy_deferred(node_p node, hook_p hook, void *arg1, int arg2)
{
	struct racy_priv *q = arg1;

	mtx_lock(&q->a);
	q->packets++;
	mtx_unlock(&q->a);
}

static int
racy_open_socket(struct racy_priv *p, int listening)
{
	struct sockaddr_in sin;
	struct socket *so;
	struct thread *td = curthread;
	int error;

	error = socreate(AF_INET, &so, listening ? SOCK_STREAM : SOCK_DGRAM,
	    listening ? IPPROTO_TCP : IPPROTO_UDP, td->td_ucred, td);
	if (error != 0)
		return (error);
	bzero(&sin, sizeof(sin));
	sin.sin_len = sizeof(sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	error = sobind(so, (struct sockaddr *)&sin, td);
	if (error == 0 && listening)
		error = solisten(so, 8, td);
	if (error == 0) {
		bzero(&sin, sizeof(sin));
		sin.sin_len = sizeof(sin);
		error = sosockaddr(so, (struct sockaddr *)&sin);
	}
	if (error != 0) {
		soclose(so);
		return (error);
	}
	p->port = ntohs(sin.sin_port);
	p->so = so;
	p->listening = listening;
	if (listening) {
		SOLISTEN_LOCK(so);
		solisten_upcall_set(so, racy_listen_upcall, p);
		SOLISTEN_UNLOCK(so);
	} else {
		SOCK_RECVBUF_LOCK(so);
		soupcall_set(so, SO_RCV, racy_upcall, p);
		SOCK_RECVBUF_UNLOCK(so);
	}
	return (0);
}

static int
racy_newhook(node_p node, hook_p hook, const char *name)
{
	struct racy_priv *p = NG_NODE_PRIVATE(node);

	if (strcmp(name, "upcall") == 0 && p->so == NULL)
		return (racy_open_socket(p, 0));
	if (strcmp(name, "listen") == 0 && p->so == NULL)
		return (racy_open_socket(p, 1));
	return (0);
}

static int
racy_rcvmsg(node_p node, item_p item, hook_p lasthook)
{
	struct racy_priv *p = NG_NODE_PRIVATE(node);
	struct ng_mesg *msg, *resp = NULL;
	struct epoch_tracker *et;
	uint64_t tracker[8];
	struct mbuf *m;
	hook_p hook;
	int error = 0;

	NGI_GET_MSG(item, msg);
	if (msg->header.typecookie != NGM_RACY_COOKIE) {
		error = EINVAL;
		goto out;
	}
	et = (struct epoch_tracker *)tracker;
	switch (msg->header.cmd) {
	case RACY_GETPORT:
		NG_MKRESPONSE(resp, msg, sizeof(int32_t), M_NOWAIT);
		if (resp == NULL) {
			error = ENOMEM;
			break;
		}
		*(int32_t *)resp->data = p->port;
		break;
	case RACY_AB:
		mtx_lock(&p->a);
		mtx_lock(&p->b);
		mtx_unlock(&p->b);
		mtx_unlock(&p->a);
		break;
	case RACY_BA:
		mtx_lock(&p->b);
		mtx_lock(&p->a);
		mtx_unlock(&p->a);
		mtx_unlock(&p->b);
		break;
	case RACY_SLEEPINEPOCH:
		_epoch_enter_preempt(net_epoch_preempt, et);
		tsleep(p, 0, "racy", 1);
		_epoch_exit_preempt(net_epoch_preempt, et);
		break;
	case RACY_EPOCHLEAK:
		/* Enters, never leaves (and the tracker dies with the frame). */
		_epoch_enter_preempt(net_epoch_preempt, et);
		break;
	case RACY_SENDDATA:
		hook = ng_findhook(node, "out");
		m = m_gethdr(M_NOWAIT, MT_DATA);
		if (hook == NULL || m == NULL) {
			m_freem(m);
			error = ENOENT;
			break;
		}
		m->m_len = m->m_pkthdr.len = 4;
		bcopy("racy", mtod(m, void *), 4);
		NG_SEND_DATA_ONLY(error, hook, m);
		break;
	case RACY_SOCKORDER:
		if (p->so == NULL) {
			error = ENOTCONN;
			break;
		}
		SOCK_RECVBUF_LOCK(p->so);
		SOCK_LOCK(p->so);
		SOCK_UNLOCK(p->so);
		SOCK_RECVBUF_UNLOCK(p->so);
		break;
	case RACY_GAB:
		mtx_lock(&racy_ga);
		mtx_lock(&racy_gb);
		mtx_unlock(&racy_gb);
		mtx_unlock(&racy_ga);
		break;
	case RACY_GBA:
		mtx_lock(&racy_gb);
		mtx_lock(&racy_ga);
		mtx_unlock(&racy_ga);
		mtx_unlock(&racy_gb);
		break;
	case RACY_SPINNAME:
		mtx_lock_spin(&racy_spin);
		error = ng_name_node(node, "racyname");
		mtx_unlock_spin(&racy_spin);
		break;
	case RACY_DEFER:
		hook = ng_findhook(node, "defer");
		if (hook == NULL || NG_HOOK_PEER(hook) == NULL) {
			error = ENOTCONN;
			break;
		}
		/* The bug: p goes with the item, but nothing keeps it alive. */
		error = ng_send_fn1(NG_PEER_NODE(hook), NULL, racy_deferred, p, 0,
		    NG_QUEUE);
		break;
	default:
		error = EINVAL;
		break;
	}
out:
	NG_RESPOND_MSG(error, node, item, resp);
	NG_FREE_MSG(msg);
	return (error);
}

static int
racy_rcvdata(hook_p hook, item_p item)
{
	struct racy_priv *p = NG_NODE_PRIVATE(NG_HOOK_NODE(hook));
	const char *name = NG_HOOK_NAME(hook);
	struct mbuf *m;
	void *buf;

	NGI_GET_M(item, m);
	NG_FREE_ITEM(item);
	if (strcmp(name, "epoch") == 0) {
		/* Data runs in the network epoch: a sleeping allocation. */
		buf = malloc(16, M_RACY, M_WAITOK);
		free(buf, M_RACY);
	} else if (strncmp(name, "cache", 5) == 0) {
		/* The bug: the slot is node data, readers run at once. */
		buf = p->slot;
		if (buf != NULL) {
			(void)m_length(m, NULL);
			p->slot = NULL;
			free(buf, M_RACY);
		} else {
			buf = malloc(16, M_RACY, M_NOWAIT);
			(void)m_length(m, NULL);
			p->slot = buf;
		}
	}
	m_freem(m);
	return (0);
}

static int
racy_shutdown(node_p node)
{
	struct racy_priv *p = NG_NODE_PRIVATE(node);
	struct socket *so = p->so;
	int p_listening = p->listening;

	NG_NODE_SET_PRIVATE(node, NULL);
	if (p->slot != NULL)
		free(p->slot, M_RACY);
	mtx_destroy(&p->a);
	mtx_destroy(&p->b);
	/* The bug: freed while the upcall below may still run with it. */
	free(p, M_RACY);
	if (so != NULL && p_listening) {
		SOLISTEN_LOCK(so);
		solisten_upcall_set(so, NULL, NULL);
		SOLISTEN_UNLOCK(so);
		soclose(so);
	} else if (so != NULL) {
		SOCK_RECVBUF_LOCK(so);
		soupcall_clear(so, SO_RCV);
		SOCK_RECVBUF_UNLOCK(so);
		soclose(so);
	}
	NG_NODE_UNREF(node);
	return (0);
}

static int
racy_disconnect(hook_p hook)
{
	node_p node = NG_HOOK_NODE(hook);

	if (NG_NODE_NUMHOOKS(node) == 0 && NG_NODE_IS_VALID(node))
		ng_rmnode_self(node);
	return (0);
}
