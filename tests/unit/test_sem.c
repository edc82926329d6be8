/* The loop's counting semaphore: limit, FIFO order, image-first, cancel,
 * and callbacks that re-enter it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gf/sem.h"

struct rec {
    struct gf_sem *sem;
    struct gf_sem_waiter w;
    int id;
    int granted;
};

static int order[64];
static int norder;

static void on_grant(struct gf_sem_waiter *w)
{
    struct rec *r = w->data;
    r->granted++;
    order[norder++] = r->id;
    assert_true(r->sem->held <= r->sem->limit);
}

static void setup_recs(struct rec *r, int n, struct gf_sem *s)
{
    norder = 0;
    for (int i = 0; i < n; i++)
        r[i] = (struct rec){.sem = s, .w = {.data = &r[i]}, .id = i};
}

static void test_sem_never_above_limit(void **state)
{
    (void)state;
    struct gf_sem s;
    struct rec r[10];
    gf_sem_init(&s, 3);
    setup_recs(r, 10, &s);
    for (int i = 0; i < 10; i++)
        gf_sem_acquire(&s, &r[i].w, GF_SEM_LOW, on_grant);
    assert_int_equal(norder, 3);
    assert_int_equal(s.held, 3);
    assert_int_equal(s.waiting, 7);
    for (int i = 0; i < 7; i++) {
        gf_sem_release(&s);
        assert_int_equal(s.held, 3);
    }
    assert_int_equal(norder, 10);
    assert_int_equal(s.peak, 3);
    for (int i = 0; i < 3; i++)
        gf_sem_release(&s);
    assert_int_equal(s.held, 0);
}

static void test_sem_fifo_within_class(void **state)
{
    (void)state;
    struct gf_sem s;
    struct rec r[6];
    gf_sem_init(&s, 1);
    setup_recs(r, 6, &s);
    for (int i = 0; i < 6; i++)
        gf_sem_acquire(&s, &r[i].w, GF_SEM_LOW, on_grant);
    for (int i = 0; i < 6; i++)
        gf_sem_release(&s);
    for (int i = 0; i < 6; i++)
        assert_int_equal(order[i], i);
}

static void test_sem_high_class_first(void **state)
{
    (void)state;
    struct gf_sem s;
    struct rec r[5];
    gf_sem_init(&s, 1);
    setup_recs(r, 5, &s);
    gf_sem_acquire(&s, &r[0].w, GF_SEM_LOW, on_grant); /* granted at once */
    gf_sem_acquire(&s, &r[1].w, GF_SEM_LOW, on_grant);
    gf_sem_acquire(&s, &r[2].w, GF_SEM_LOW, on_grant);
    gf_sem_acquire(&s, &r[3].w, GF_SEM_HIGH, on_grant);
    gf_sem_acquire(&s, &r[4].w, GF_SEM_HIGH, on_grant);
    for (int i = 0; i < 4; i++)
        gf_sem_release(&s);
    int want[] = {0, 3, 4, 1, 2};
    for (int i = 0; i < 5; i++)
        assert_int_equal(order[i], want[i]);
}

static void test_sem_cancel_skips_waiter(void **state)
{
    (void)state;
    struct gf_sem s;
    struct rec r[4];
    gf_sem_init(&s, 1);
    setup_recs(r, 4, &s);
    for (int i = 0; i < 4; i++)
        gf_sem_acquire(&s, &r[i].w, GF_SEM_LOW, on_grant);
    assert_int_equal(gf_sem_cancel(&s, &r[2].w), 1);
    assert_int_equal(gf_sem_cancel(&s, &r[2].w), 0);
    assert_int_equal(gf_sem_cancel(&s, &r[0].w), 0); /* holds a permit */
    gf_sem_cancel(&s, &r[3].w);                      /* the tail */
    gf_sem_release(&s);
    gf_sem_release(&s);
    assert_int_equal(norder, 2);
    assert_int_equal(r[2].granted, 0);
    assert_int_equal(r[3].granted, 0);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.waiting, 0);
    /* The queue still works after removing its tail. */
    gf_sem_acquire(&s, &r[3].w, GF_SEM_LOW, on_grant);
    assert_int_equal(r[3].granted, 1);
}

/* The pattern of a finished metadata request: its completion queues the
 * image request, then releases; the image must get the permit before any
 * other code's metadata, giving meta A, image A, meta B, image B. */
static struct gf_sem chain_sem;
static struct rec chain[6]; /* 0..2 metadata, 3..5 images of the same codes */

static void on_chain_grant(struct gf_sem_waiter *w)
{
    struct rec *r = w->data;
    order[norder++] = r->id;
}

static void test_sem_image_before_next_metadata(void **state)
{
    (void)state;
    gf_sem_init(&chain_sem, 1);
    setup_recs(chain, 6, &chain_sem);
    for (int i = 0; i < 3; i++)
        gf_sem_acquire(&chain_sem, &chain[i].w, GF_SEM_LOW, on_chain_grant);
    for (int code = 0; code < 3; code++) {
        /* metadata of code done: queue its image, then release */
        gf_sem_acquire(&chain_sem, &chain[3 + code].w, GF_SEM_HIGH, on_chain_grant);
        gf_sem_release(&chain_sem);
        /* image done */
        gf_sem_release(&chain_sem);
    }
    int want[] = {0, 3, 1, 4, 2, 5};
    assert_int_equal(norder, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(order[i], want[i]);
}

/* A grant callback that releases at once (a request that fails to start)
 * must not recurse: grants are handed out by one loop, in order. */
static struct gf_sem reent_sem;
static int depth, max_depth;

static void on_grant_release(struct gf_sem_waiter *w)
{
    struct rec *r = w->data;
    order[norder++] = r->id;
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    gf_sem_release(&reent_sem);
    depth--;
}

static void test_sem_reentrant_release_is_iterative(void **state)
{
    (void)state;
    static struct rec r[50];
    gf_sem_init(&reent_sem, 1);
    setup_recs(r, 50, &reent_sem);
    reent_sem.limit = 0; /* queue everything first */
    for (int i = 0; i < 50; i++)
        gf_sem_acquire(&reent_sem, &r[i].w, GF_SEM_LOW, on_grant_release);
    assert_int_equal(norder, 0);
    max_depth = 0;
    gf_sem_set_limit(&reent_sem, 1);
    assert_int_equal(norder, 50);
    assert_int_equal(max_depth, 1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(order[i], i);
    assert_int_equal(reent_sem.held, 0);
}

static void test_sem_set_limit_zero_stops_grants(void **state)
{
    (void)state;
    struct gf_sem s;
    struct rec r[3];
    gf_sem_init(&s, 2);
    setup_recs(r, 3, &s);
    for (int i = 0; i < 3; i++)
        gf_sem_acquire(&s, &r[i].w, GF_SEM_LOW, on_grant);
    gf_sem_set_limit(&s, 0);
    gf_sem_release(&s);
    gf_sem_release(&s);
    assert_int_equal(norder, 2);
    assert_int_equal(r[2].granted, 0);
    gf_sem_set_limit(&s, 5);
    assert_int_equal(r[2].granted, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sem_never_above_limit),
        cmocka_unit_test(test_sem_fifo_within_class),
        cmocka_unit_test(test_sem_high_class_first),
        cmocka_unit_test(test_sem_cancel_skips_waiter),
        cmocka_unit_test(test_sem_image_before_next_metadata),
        cmocka_unit_test(test_sem_reentrant_release_is_iterative),
        cmocka_unit_test(test_sem_set_limit_zero_stops_grants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
