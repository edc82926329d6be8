#include "gf/sem.h"

void gf_sem_init(struct gf_sem *s, unsigned limit)
{
    *s = (struct gf_sem){.limit = limit};
}

static struct gf_sem_waiter *pop_next(struct gf_sem *s)
{
    for (int c = GF_SEM_HIGH; c <= GF_SEM_LOW; c++) {
        struct gf_sem_waiter *w = s->q[c].head;
        if (w) {
            s->q[c].head = w->next;
            if (!s->q[c].head)
                s->q[c].tail = NULL;
            w->next = NULL;
            w->queued = 0;
            s->waiting--;
            return w;
        }
    }
    return NULL;
}

/* One loop hands out every grantable permit; a callback that releases or
 * acquires re-enters only to queue, and the outer loop picks it up. */
static void grant(struct gf_sem *s)
{
    if (s->granting)
        return;
    s->granting = 1;
    while (s->held < s->limit && s->waiting > 0) {
        struct gf_sem_waiter *w = pop_next(s);
        s->held++;
        if (s->held > s->peak)
            s->peak = s->held;
        w->cb(w);
    }
    s->granting = 0;
}

void gf_sem_acquire(struct gf_sem *s, struct gf_sem_waiter *w, enum gf_sem_class c, gf_sem_cb cb)
{
    w->cb = cb;
    w->next = NULL;
    w->queued = 1;
    if (s->q[c].tail)
        s->q[c].tail->next = w;
    else
        s->q[c].head = w;
    s->q[c].tail = w;
    s->waiting++;
    grant(s);
}

void gf_sem_release(struct gf_sem *s)
{
    if (s->held > 0)
        s->held--;
    grant(s);
}

int gf_sem_cancel(struct gf_sem *s, struct gf_sem_waiter *w)
{
    if (!w->queued)
        return 0;
    for (int c = GF_SEM_HIGH; c <= GF_SEM_LOW; c++) {
        struct gf_sem_waiter *prev = NULL;
        for (struct gf_sem_waiter *it = s->q[c].head; it; prev = it, it = it->next) {
            if (it != w)
                continue;
            if (prev)
                prev->next = w->next;
            else
                s->q[c].head = w->next;
            if (s->q[c].tail == w)
                s->q[c].tail = prev;
            w->next = NULL;
            w->queued = 0;
            s->waiting--;
            return 1;
        }
    }
    return 0;
}

void gf_sem_set_limit(struct gf_sem *s, unsigned limit)
{
    s->limit = limit;
    grant(s);
}
