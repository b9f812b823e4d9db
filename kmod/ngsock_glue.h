/* Prototypes of the C glue functions the Rust side calls. */
#ifndef NGSOCK_GLUE_H
#define NGSOCK_GLUE_H

struct thread;
struct mtx;

struct thread	*ngsock_curthread(void);
void		 ngsock_mtx_init(struct mtx *, const char *, int);
void		 ngsock_mtx_destroy(struct mtx *);
void		 ngsock_mtx_lock(struct mtx *);
void		 ngsock_mtx_unlock(struct mtx *);



/* ng_socket glue. */
struct socket;
struct ng_node;
void	ngsock_so_rcvbuf_lock(struct socket *);
void	ngsock_so_rcvbuf_unlock(struct socket *);
int	ngsock_msleep(void *, struct mtx *, const char *);
void	ngsock_node_ref(struct ng_node *);
struct ng_hook;
void	ngsock_hook_ref(struct ng_hook *);
void	ngsock_console(const char *);
void	ngsock_console_line(const char *, const char *, int);
#endif
