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

#endif
