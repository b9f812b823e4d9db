/*
 * The C glue functions the Rust kernel layer (src/kern) calls: kernel
 * macros and inline functions wrapped as plain functions. Each is declared
 * once here and once in src/kern/ffi.rs.
 *
 *   glue_common.c	both modules: mutex initialisation and destruction,
 *			sleep, callouts, socket state and receive buffer
 *			locks, console output
 *   glue_socket.c	modules that own kernel sockets: upcalls, socket state
 *			under the socket lock, listen-queue dequeuing
 */
#ifndef NGSOCK_GLUE_H
#define NGSOCK_GLUE_H

struct callout;
struct mtx;
struct socket;

/* glue_common.c */
void		 ngsock_mtx_init(struct mtx *, const char *, int);
void		 ngsock_mtx_destroy(struct mtx *);
int		 ngsock_msleep(void *, struct mtx *, const char *);
void		 ngsock_callout_init(struct callout *);
void		 ngsock_so_state_change(struct socket *, int, int);
void		 ngsock_console(const char *);
void		 ngsock_console_line(const char *, const char *, int);

/* glue_socket.c */
void		 ngsock_so_upcalls_set(struct socket *,
		     int (*)(struct socket *, void *, int), void *);
void		 ngsock_so_upcalls_clear(struct socket *);
void		 ngsock_so_listen_upcall(struct socket *,
		     int (*)(struct socket *, void *, int), void *);
int		 ngsock_so_connect_result(struct socket *, int *);
int		 ngsock_so_dequeue(struct socket *, struct socket **);

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
