/* A counting semaphore owned by the event loop thread.
 *
 * No threads, no locks: waiters are queued in FIFO order in two classes,
 * and a permit freed by gf_sem_release() goes to the oldest waiter of the
 * high class first (image requests), then of the low class (metadata
 * requests), so codes finish steadily instead of all metadata first.
 *
 * Grant callbacks run synchronously from gf_sem_acquire() or
 * gf_sem_release(). They may call acquire, release and cancel again: grants
 * are handed out by one loop, never by recursion. */
#ifndef GF_SEM_H
#define GF_SEM_H

#include <stddef.h>

enum gf_sem_class {
    GF_SEM_HIGH = 0,
    GF_SEM_LOW = 1,
};

struct gf_sem_waiter;
typedef void (*gf_sem_cb)(struct gf_sem_waiter *w);

/* Embedded in the waiting object; reach it from the callback with
 * container_of-style arithmetic or through data. */
struct gf_sem_waiter {
    void *data;
    gf_sem_cb cb;
    struct gf_sem_waiter *next;
    int queued; /* 1 while waiting in a queue */
};

struct gf_sem {
    unsigned limit; /* permits in all */
    unsigned held;  /* permits handed out and not yet released */
    unsigned peak;  /* most permits ever held at once */
    int granting;   /* set while the grant loop runs */
    struct {
        struct gf_sem_waiter *head, *tail;
    } q[2];
    size_t waiting;
};

void gf_sem_init(struct gf_sem *s, unsigned limit);

/* Queues w in class c and grants permits in order; w->cb runs (perhaps
 * before this returns) once w holds a permit. w must not be queued already. */
void gf_sem_acquire(struct gf_sem *s, struct gf_sem_waiter *w, enum gf_sem_class c, gf_sem_cb cb);

/* Returns one permit and hands it to the next waiter, if any. */
void gf_sem_release(struct gf_sem *s);

/* Removes w from its queue if it is still waiting; its callback will not
 * run. Returns 1 when w was waiting, 0 otherwise. */
int gf_sem_cancel(struct gf_sem *s, struct gf_sem_waiter *w);

/* Changes the number of permits. Lowering it takes effect as permits are
 * released; raising it grants to waiters at once. */
void gf_sem_set_limit(struct gf_sem *s, unsigned limit);

#endif
