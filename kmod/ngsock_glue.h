/*
 * The C glue functions the Rust kernel layer (src/kern) calls: kernel
 * macros and inline functions wrapped as plain functions. Each is declared
 * once here and once in src/kern/ffi.rs.
 *
 *   glue_common.c	both modules: current thread, mutexes, sleep, node and
 *			hook references, callouts, socket state and receive
 *			buffer locks, console output
 *   glue_socket.c	modules that own kernel sockets: upcalls, socket state
 *			under the socket lock, listen-queue dequeuing
 */
#ifndef NGSOCK_GLUE_H
#define NGSOCK_GLUE_H

struct callout;
struct epoch_tracker;
struct mtx;
struct ng_hook;
struct ng_node;
struct socket;
struct thread;

/* glue_common.c */
struct thread	*ngsock_curthread(void);
void		 ngsock_mtx_init(struct mtx *, const char *, int);
void		 ngsock_mtx_destroy(struct mtx *);
void		 ngsock_mtx_lock(struct mtx *);
void		 ngsock_mtx_unlock(struct mtx *);
int		 ngsock_msleep(void *, struct mtx *, const char *);
void		 ngsock_node_ref(struct ng_node *);
void		 ngsock_hook_ref(struct ng_hook *);
void		 ngsock_callout_init(struct callout *);
void		 ngsock_so_state_change(struct socket *, int, int);
void		 ngsock_so_rcvbuf_lock(struct socket *);
void		 ngsock_so_rcvbuf_unlock(struct socket *);
void		 ngsock_console(const char *);
void		 ngsock_console_line(const char *, const char *, int);

/* glue_socket.c */
void		 ngsock_so_upcalls_set(struct socket *,
		     int (*)(struct socket *, void *, int), void *);
void		 ngsock_so_upcalls_clear(struct socket *);
void		 ngsock_so_listen_upcall(struct socket *,
		     int (*)(struct socket *, void *, int), void *);
int		 ngsock_so_state(struct socket *);
int		 ngsock_so_listening(struct socket *);
int		 ngsock_so_type(struct socket *);
int		 ngsock_so_cantrcvmore(struct socket *);
int		 ngsock_so_connect_result(struct socket *, int *);
int		 ngsock_so_dequeue(struct socket *, struct socket **);

/* ng_socket_glue.c */
void		 ngsock_net_epoch_enter(struct epoch_tracker *);
void		 ngsock_net_epoch_exit(struct epoch_tracker *);

/*
 * A mutex initialised at module load (MTX_SYSINIT) and destroyed at unload:
 * a Rust static whose first member is the struct mtx (kern::static_mutex!),
 * or a mutex of the glue's own. The companion symbol NAME_sysinit is what
 * the Rust side refers to, so a mutex without its initialisation here does
 * not link.
 */
#define	NGSOCK_MTX_SYSINIT(name, desc)					\
	extern struct mtx name;						\
	const char name##_sysinit = 1;					\
	MTX_SYSINIT(name, &name, desc, MTX_DEF)

#endif
