/* The per-code state machine.
 *
 *   WAIT_META -> META -> WAIT_IMAGE -> IMAGE -> SAVING -> DONE
 *        \         \          \          \
 *         `---------`----------`----------`--> RETRY_WAIT -> WAIT_* (again)
 *
 * Every HTTP request first waits for a permit of the shared semaphore
 * (metadata in the low class, images in the high class), holds it only
 * while its transfer runs, and returns it once the transfer's completion
 * has been handled, so the image request that a metadata answer leads to
 * is already queued when the permit is handed on. The state changes only
 * through set_state() in fetch.c. */
#ifndef GF_FETCH_H
#define GF_FETCH_H

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "gf/body.h"
#include "gf/cli.h"
#include "gf/engine.h"
#include "gf/report.h"
#include "gf/saver.h"
#include "gf/sem.h"

enum gf_fetch_state {
    GF_FETCH_IDLE,
    GF_FETCH_WAIT_META,
    GF_FETCH_META,
    GF_FETCH_WAIT_IMAGE,
    GF_FETCH_IMAGE,
    GF_FETCH_WAIT_START, /* holds a permit, waits for the start gate */
    GF_FETCH_SAVING,
    GF_FETCH_RETRY_WAIT,
    GF_FETCH_DONE,
};

struct gf_fetch;
struct gf_tls;
struct gf_conn_stats;

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
    struct gf_engine *engine;
    struct gf_sem *sem;
    struct gf_saver *saver;
    CURLSH *share;
    const char *base_url;
    const char *base_url_display; /* base_url without its password, or NULL */
    uint64_t timeout_ms;
    const char *cacert;
    struct gf_tls *tls;                /* CA store and TLS counters, or NULL */
    struct gf_conn_stats *conn;        /* connection counters, or NULL */
    enum gf_http_version http_version; /* --http1.1 / --http2 */
    unsigned retries;
    uint64_t max_size;
    FILE *verbose; /* where "retrying" lines go; NULL for none */
    /* Returns 1 if code cc may write name and claims it for cc, 0 if
     * another code holds it (in this run, or as its file from an earlier
     * run): see gf_state_claim(). */
    int (*claim_name)(void *arg, const char *cc, const char *name);
    /* One HTTP request ended (latency in ms, body bytes). */
    void (*on_request)(void *arg, double latency_ms, uint64_t bytes);
    /* The code ended: its item holds the outcome. */
    void (*on_done)(void *arg, struct gf_fetch *f);
    /* A number in [0, 1) for retry jitter. */
    double (*random)(void *arg);
    /* The start gate (--rate, and pauses of -m auto), or NULL: returns 1
     * when f may start now, else 0 and calls gf_fetch_begin(f) later. */
    int (*gate)(void *arg, struct gf_fetch *f);
    /* Removes f from the gate's queue (an interrupted run). */
    void (*gate_cancel)(void *arg, struct gf_fetch *f);
    /* Or NULL: a request that began at started_s was answered normally;
     * or was refused (status 429 or 503, or 0 for a timeout), with the
     * server's Retry-After in seconds (<= 0 when none), and then the
     * return value says whether to ask again at no cost to --retries. */
    void (*on_success)(void *arg, double started_s);
    int (*on_overload)(void *arg, double started_s, long status, double retry_after_s);
    void *arg;
    /* A host whose name could not be resolved after every retry of a
     * request: later requests to it end at once with the same error
     * rather than each waiting out its own DNS timeout. "" when none. */
    char unresolvable[256];
    int redirects_to_tls; /* a request ended at an https URL */
    /* Transfers kept for reuse; at most pool_cap of them. */
    struct gf_transfer **pool;
    size_t npool, pool_cap;
};

/* What one transfer has received so far. */
struct gf_body {
    struct gf_body_sink sink; /* a 200's body, in memory or in a file */
    size_t len;               /* body bytes of the answer, kept or not */
    size_t header_bytes;      /* all response headers, redirects included */
    int headers_too_big;
    int error_body_cut; /* a non-200 body stopped at its bound: its status decides */
    /* Of the last answer: its Content-Length (-1 when absent), whether it
     * was unusable or given twice with different values, and whether a
     * Content-Encoding makes the body's size differ from it. */
    long long content_length;
    int bad_length, conflicting_length, encoded;
};

/* One HTTP request in flight: an easy handle and what it has received.
 * Only as many exist as permits are held, so what is per request lives
 * here and not in the per-code state, which exists for every code. */
struct gf_transfer {
    CURL *easy;
    struct gf_fetch *fetch; /* the code it works for */
    struct gf_body body;
    long retry_after_s; /* from the last answer, -1 when absent */
    char reason[96];    /* status phrase of the last answer */
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *headers; /* conditional request headers, or NULL */
    char etag[256];             /* validators of the last answer, "" when none */
    char last_modified[64];
    size_t url_cap;
    char url[];
};

struct gf_fetch {
    const struct gf_fetch_env *env;
    struct gf_item *item;
    enum gf_fetch_state state;
    struct gf_sem_waiter waiter;
    struct gf_transfer *xfer;   /* set while a request runs */
    int is_image;               /* the request in flight or waiting is the image */
    unsigned attempt;           /* retries used for the current request */
    unsigned reasked;           /* times it went again on a new connection */
    long retry_after_s;         /* from the last answer, -1 when absent */
    double queued_at;           /* when the current request started waiting */
    double started_at;          /* when the current request began */
    const struct gf_prev *prev; /* --update: the last run's record, or NULL */
    int image_conditional;      /* the image may be asked for with validators */
    const char *file_hint;      /* name to save under when metadata was a 304 */
    const char *replaces;       /* the code's old file, to remove after saving */
    char *country;              /* from metadata, owned */
    struct gf_body_sink image;  /* the image being saved, owned */
    struct gf_save save;
    uv_timer_t *retry_timer; /* created on first retry, closed by gf_fetch_close */
};

/* Prepares f for item->cc; prev (may be NULL) is what the last run
 * recorded, for conditional requests. Does not start anything. */
void gf_fetch_init(struct gf_fetch *f, const struct gf_fetch_env *env, struct gf_item *item,
                   const struct gf_prev *prev);

/* Starts the request f holds a permit for, once the gate lets it. */
void gf_fetch_begin(struct gf_fetch *f);

/* Queues the metadata request. */
void gf_fetch_start(struct gf_fetch *f);

/* Called by the run's engine callback for a finished transfer whose
 * CURLOPT_PRIVATE is f. */
void gf_fetch_transfer_done(struct gf_fetch *f, CURL *easy, CURLcode result);

/* Stops whatever f is doing, for an interrupted run. on_done still runs
 * exactly once for every fetch that was started: at once, with the item
 * GF_PENDING, unless a save is on the threadpool; a save that has begun
 * writing finishes and reports its real outcome, one not yet begun is
 * dropped and reports GF_PENDING. Does nothing to a fetch that is done. */
void gf_fetch_cancel(struct gf_fetch *f);

/* Frees what f owns. Its retry timer, if any, is closed and freed from
 * its close callback, so the loop must run afterwards. */
void gf_fetch_close(struct gf_fetch *f);

/* Frees the transfers in env's pool. */
void gf_fetch_env_drain_pool(struct gf_fetch_env *env);

#endif
