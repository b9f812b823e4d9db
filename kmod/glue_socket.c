/*
 * socket(9) services for modules that own kernel sockets, as functions:
 * upcall registration under the socket-buffer or listen lock, socket state
 * read or changed under the socket lock, listen-queue dequeuing.
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/kernel.h>
#include <sys/lock.h>
#include <sys/mutex.h>
#include <sys/socket.h>
#include <sys/socketvar.h>

#include "ngsock_glue.h"

/* The same upcall on both buffers, each under its own buffer lock. */
void
ngsock_so_upcalls_set(struct socket *so, so_upcall_t *fn, void *arg)
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
ngsock_so_upcalls_clear(struct socket *so)
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
ngsock_so_listen_upcall(struct socket *so, so_upcall_t *fn, void *arg)
{
	SOLISTEN_LOCK(so);
	solisten_upcall_set(so, fn, arg);
	SOLISTEN_UNLOCK(so);
}

int
ngsock_so_state(struct socket *so)
{
	return (so->so_state);
}

int
ngsock_so_listening(struct socket *so)
{
	return (SOLISTENING(so) ? 1 : 0);
}

int
ngsock_so_type(struct socket *so)
{
	return (so->so_type);
}

int
ngsock_so_cantrcvmore(struct socket *so)
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
ngsock_so_connect_result(struct socket *so, int *still)
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

/* solisten_dequeue releases the listen lock on every path. */
int
ngsock_so_dequeue(struct socket *head, struct socket **so)
{
	SOLISTEN_LOCK(head);
	return (solisten_dequeue(head, so, SOCK_NONBLOCK));
}
