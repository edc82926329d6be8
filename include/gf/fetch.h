/* The per-code state machine: metadata, then image, then save, with
 * retries, --update's conditional requests and an interrupt in any state.
 * Its states and structs are private to fetch.c (the state diagram is
 * there); it asks for HTTP requests through the transfer layer
 * (src/getflags/transfer.h) named in its environment. */
#ifndef GF_FETCH_H
#define GF_FETCH_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "gf/report.h"
#include "gf/saver.h"
#include "gf/sem.h"

struct gf_fetch;
struct gf_transfer_ops;

/* What the last run recorded of a code, for --update; borrowed from the
 * manifest. file is known to exist in the output directory. */
struct gf_prev {
    const char *file;
    const char *meta_etag, *meta_last_modified;
    const char *image_etag, *image_last_modified;
    const char *sha256;
    uint64_t bytes;
};

/* What every fetch of one run shares. Owned by the run. */
struct gf_fetch_env {
    uv_loop_t *loop;
    struct gf_sem *sem;
    struct gf_saver *saver;
    /* The transfer layer and its context (gf_curl_transfer_ops and a
     * struct gf_curl in a run; a fake in the unit test). */
    const struct gf_transfer_ops *xfer;
    void *xfer_ctx;
    const char *base_url;
    const char *base_url_display; /* base_url without its password, or NULL */
    unsigned retries;
    uint64_t max_size;
    FILE *verbose; /* where "retrying" lines go; NULL for none */
    /* Returns 1 if code cc may write name and claims it for cc, 0 if
     * another code holds it (in this run, or as its file from an earlier
     * run): see gf_state_claim(). */
    int (*claim_name)(void *arg, const char *cc, const char *name);
    /* One HTTP request ended (latency in ms, body bytes). */
    void (*on_request)(void *arg, double latency_ms, uint64_t bytes);
    /* The code ended: item holds the outcome. */
    void (*on_done)(void *arg, struct gf_item *item);
    /* A number in [0, 1) for retry jitter. */
    double (*random)(void *arg);
    /* The start gate (--rate, and pauses of -m auto), or NULL: returns 1
     * when f may start now, else 0 and calls gf_fetch_begin(f) later.
     * again: f asks again for a request the server never took (its
     * connection closed under it), which --rate and -m auto's pace do not
     * count a second time; a pause of the host's still holds it. */
    int (*gate)(void *arg, struct gf_fetch *f, int again);
    /* Removes f from the gate's queue (an interrupted run). */
    void (*gate_cancel)(void *arg, struct gf_fetch *f);
    /* Or NULL: a request that began at started_s was answered normally;
     * or was refused (status 429 or 503, or 0 for a timeout), with the
     * server's Retry-After in seconds (<= 0 when none), and then the
     * return value says whether to ask again at no cost to --retries. */
    void (*on_success)(void *arg, double started_s);
    /* Or NULL: how many requests of the run were answered normally so far
     * (the answers on_success hears of): whether the server was serving
     * others while one request went unanswered. */
    unsigned long (*answered)(void *arg);
    int (*on_overload)(void *arg, double started_s, long status, double retry_after_s);
    void *arg;
};

/* Returns a fetch for item->cc, or NULL when out of memory; prev (may be
 * NULL) is what the last run recorded, for conditional requests. env,
 * item and prev are borrowed. Does not start anything. */
struct gf_fetch *gf_fetch_new(const struct gf_fetch_env *env, struct gf_item *item,
                              const struct gf_prev *prev);

/* Queues the metadata request. */
void gf_fetch_start(struct gf_fetch *f);

/* Starts the request f holds a permit for, once the gate lets it. */
void gf_fetch_begin(struct gf_fetch *f);

/* Stops whatever f is doing, for an interrupted run. on_done still runs
 * exactly once for every fetch that was started: at once, with the item
 * GF_PENDING, unless a save is on the threadpool; a save that has begun
 * writing finishes and reports its real outcome, one not yet begun is
 * dropped and reports GF_PENDING. Does nothing to a fetch that is done. */
void gf_fetch_cancel(struct gf_fetch *f);

/* The name of f's state ("idle", "wait-meta", ... "done"), for traces
 * and tests. */
const char *gf_fetch_state_name(const struct gf_fetch *f);

/* Closes f's retry timer, if it has one; the loop must run afterwards.
 * f may be NULL. */
void gf_fetch_close(struct gf_fetch *f);

/* Frees f, once it is done (or was never started) and closed, and the
 * loop has run. f may be NULL. */
void gf_fetch_free(struct gf_fetch *f);

#endif
