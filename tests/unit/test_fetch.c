/* The per-code state machine driven through a fake transfer layer: no
 * network and no libcurl. The test answers each request the machine asks
 * for by hand, on a real libuv loop (for retry timers), the real
 * semaphore and the real saver writing into a scratch directory, and
 * counts what the machine reports back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gf/alloc.h"
#include "gf/fetch.h"
#include "gf/names.h"
#include "tmpdir.h"
#include "transfer.h"

/* The fake's view of one request. */
struct gf_transfer {
    char url[256];
    char etag[64], last_modified[64]; /* validators sent, "" when none */
    unsigned attempt;
    size_t limit, spill_at;
    int dirfd, is_gif;
    gf_response_cb cb;
    void *arg;
    int live; /* started, neither answered nor cancelled */
};

#define MAX_REQS 48
#define MAX_CODES 4

static struct world {
    int dirfd;
    uv_loop_t loop;
    struct gf_sem sem;
    struct gf_saver saver;
    struct gf_fetch_env env;
    struct gf_item items[MAX_CODES];
    struct gf_fetch *f[MAX_CODES];
    struct gf_transfer reqs[MAX_REQS];
    size_t nreqs;
    unsigned cancels;         /* transfers the machine cancelled */
    int cancel_unsent;        /* fake_cancel: the request never went out */
    unsigned unsent_failures; /* answers to come as failures that sent nothing */
    int fail_start;           /* the next start fails */
    unsigned done[MAX_CODES]; /* on_done calls per code */
    unsigned requests;        /* on_request calls */
    uint64_t bytes;           /* summed by on_request */
    unsigned successes;       /* on_success calls */
    unsigned overloads;       /* on_overload calls */
    int overload_free;        /* what on_overload answers */
    long overload_status;
    double overload_retry_after;
    const char *refused[2]; /* names claim_name refuses */
    int gate_closed;
    struct gf_fetch *gated;
    unsigned gate_cancels;
    int gate_again[8];      /* the again flag of each gate call, the first 8 */
    unsigned long answered; /* what env.answered says */
    unsigned gate_calls;
} W;

/* A small valid GIF89a (the one of test_gif.c). */
static const unsigned char GIF[] = {
    'G',  'I',  'F',  '8',  '9',  'a',  0x02, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0xFE, 0x02,
    'h',  'i',  0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x80, 0xFF, 0x00,
    0x00, 0x00, 0x00, 0xFF, 0x02, 0x02, 0x44, 0x01, 0x01, 0x0A, 0x00, 0x3B,
};
static const char META[] = "{\"country\": \"Brazil\"}";

/* ---- the fake transfer layer ---------------------------------------- */

static int fake_start(void *ctx, const struct gf_request *req, struct gf_transfer **out, char *err,
                      size_t errsz)
{
    assert_ptr_equal(ctx, &W);
    if (W.fail_start) {
        W.fail_start = 0;
        snprintf(err, errsz, "cannot start the request: setting CURLOPT_URL failed: fake");
        return -1;
    }
    assert_true(W.nreqs < MAX_REQS);
    struct gf_transfer *x = &W.reqs[W.nreqs++];
    memset(x, 0, sizeof *x);
    snprintf(x->url, sizeof x->url, "%s", req->url);
    snprintf(x->etag, sizeof x->etag, "%s", req->etag ? req->etag : "");
    snprintf(x->last_modified, sizeof x->last_modified, "%s",
             req->last_modified ? req->last_modified : "");
    x->attempt = req->attempt;
    x->limit = req->limit;
    x->spill_at = req->spill_at;
    x->dirfd = req->dirfd;
    x->is_gif = req->is_gif;
    x->cb = req->cb;
    x->arg = req->arg;
    x->live = 1;
    *out = x;
    return 0;
}

static unsigned fake_cancel(void *ctx, struct gf_transfer *x, struct gf_phases *phases)
{
    assert_ptr_equal(ctx, &W);
    assert_true(x->live);
    x->live = 0;
    W.cancels++;
    if (W.cancel_unsent) {
        /* Still waiting for a connection after 0.25 s: nothing went out. */
        *phases = (struct gf_phases){.sem_wait = -1, .connect = 0.25, .total = 0.25};
        return 0;
    }
    /* Sent and unanswered for 0.25 s. */
    *phases = (struct gf_phases){.sem_wait = -1, .first_byte = 0.25, .total = 0.25};
    return 1;
}

static const struct gf_transfer_ops fake_ops = {.start = fake_start, .cancel = fake_cancel};

/* The one request in flight; fails the test when there is not exactly one. */
static struct gf_transfer *live(void)
{
    struct gf_transfer *found = NULL;
    for (size_t i = 0; i < W.nreqs; i++)
        if (W.reqs[i].live) {
            assert_null(found);
            found = &W.reqs[i];
        }
    assert_non_null(found);
    return found;
}

static size_t nlive(void)
{
    size_t n = 0;
    for (size_t i = 0; i < W.nreqs; i++)
        n += W.reqs[i].live;
    return n;
}

/* Answers x: an HTTP status with a body (kept only for a 200, as the real
 * layer does), or a transport failure of kind. */
static void answer_full(struct gf_transfer *x, enum gf_xfer_kind kind, long status,
                        const void *body, size_t len, const char *etag, long retry_after_s)
{
    assert_true(x->live);
    x->live = 0;
    struct gf_response r = {
        .kind = kind,
        .status = status,
        .len = len,
        .bytes = len,
        .content_length = (long long)len,
        .retry_after_s = retry_after_s,
        .phases = {.total = 0.01},
        .requests = 1,
    };
    if (kind != GF_XFER_ANSWERED && W.unsent_failures > 0) {
        W.unsent_failures--;
        r.requests = 0;
    }
    snprintf(r.http_version, sizeof r.http_version, "2");
    if (kind != GF_XFER_ANSWERED)
        snprintf(r.error, sizeof r.error, "fake failure of kind %d", (int)kind);
    if (etag)
        snprintf(r.etag, sizeof r.etag, "%s", etag);
    /* The body goes through the real sink, as the real layer sends it. */
    gf_body_init(&r.body, x->limit, x->spill_at, x->dirfd, x->is_gif);
    if (status == 200) {
        assert_int_equal(gf_body_append(&r.body, body, len), 0);
        /* A long image is in its temporary file by now. */
        assert_true((r.body.file != NULL) == (x->spill_at && len > x->spill_at));
    }
    x->cb(x->arg, &r);
    gf_body_abort(&r.body);
}

static void answer(enum gf_xfer_kind kind, long status, const void *body, size_t len)
{
    answer_full(live(), kind, status, body, len, NULL, -1);
}

static void answer_meta(void)
{
    struct gf_transfer *x = live();
    assert_non_null(strstr(x->url, "/br/metadata.json"));
    answer_full(x, GF_XFER_ANSWERED, 200, META, strlen(META), "\"m1\"", -1);
}

static void answer_image(void)
{
    struct gf_transfer *x = live();
    assert_non_null(strstr(x->url, "/br/br.gif"));
    answer_full(x, GF_XFER_ANSWERED, 200, GIF, sizeof GIF, "\"i1\"", -1);
}

/* ---- the run's side ---------------------------------------------------- */

static size_t index_of(const struct gf_item *item)
{
    size_t i = (size_t)(item - W.items);
    assert_true(i < MAX_CODES);
    return i;
}

static int claim_name(void *arg, const char *cc, const char *name)
{
    (void)arg;
    (void)cc;
    for (size_t i = 0; i < 2; i++)
        if (W.refused[i] && strcmp(W.refused[i], name) == 0)
            return 0;
    return 1;
}

static void on_request(void *arg, double latency_ms, uint64_t bytes)
{
    (void)arg;
    assert_true(latency_ms >= 0);
    W.requests++;
    W.bytes += bytes;
}

static void on_done(void *arg, struct gf_item *item)
{
    (void)arg;
    W.done[index_of(item)]++;
}

static double random0(void *arg)
{
    (void)arg;
    return 0.0; /* the shortest backoff: half a step */
}

static int gate(void *arg, struct gf_fetch *f, int again)
{
    (void)arg;
    if (W.gate_calls < sizeof W.gate_again / sizeof W.gate_again[0])
        W.gate_again[W.gate_calls] = again;
    W.gate_calls++;
    if (!W.gate_closed)
        return 1;
    W.gated = f;
    return 0;
}

static unsigned long answered(void *arg)
{
    (void)arg;
    return W.answered;
}

static void gate_cancel(void *arg, struct gf_fetch *f)
{
    (void)arg;
    assert_ptr_equal(f, W.gated);
    W.gated = NULL;
    W.gate_cancels++;
}

static void on_success(void *arg, double started_s)
{
    (void)arg;
    (void)started_s;
    W.successes++;
}

static int on_overload(void *arg, double started_s, long status, double retry_after_s)
{
    (void)arg;
    (void)started_s;
    W.overloads++;
    W.overload_status = status;
    W.overload_retry_after = retry_after_s;
    return W.overload_free;
}

static int setup(void **state)
{
    memset(&W, 0, sizeof W);
    if (tmpdir_setup(state) != 0)
        return -1;
    W.dirfd = open(test_dir, O_RDONLY | O_DIRECTORY);
    if (W.dirfd < 0 || uv_loop_init(&W.loop) != 0)
        return -1;
    gf_sem_init(&W.sem, 1);
    gf_saver_init(&W.saver, &W.loop, W.dirfd);
    W.env = (struct gf_fetch_env){
        .loop = &W.loop,
        .sem = &W.sem,
        .saver = &W.saver,
        .xfer = &fake_ops,
        .xfer_ctx = &W,
        .base_url = "http://flags.test/data",
        .retries = 2,
        .max_size = 1 << 20,
        .claim_name = claim_name,
        .on_request = on_request,
        .on_done = on_done,
        .random = random0,
        .gate = gate,
        .gate_cancel = gate_cancel,
        .on_success = on_success,
        .on_overload = on_overload,
        .arg = &W,
    };
    for (size_t i = 0; i < MAX_CODES; i++) {
        memcpy(W.items[i].cc,
               i == 0   ? "BR"
               : i == 1 ? "FR"
               : i == 2 ? "DE"
                        : "CN",
               sizeof W.items[i].cc);
        W.f[i] = gf_fetch_new(&W.env, &W.items[i], NULL);
        if (!W.f[i])
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < MAX_CODES; i++)
        gf_fetch_close(W.f[i]);
    gf_saver_close(&W.saver);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&W.loop);
    for (size_t i = 0; i < MAX_CODES; i++) {
        gf_fetch_free(W.f[i]);
        struct gf_item *it = &W.items[i];
        gf_free(it->file);
        gf_free(it->error);
        gf_free(it->url);
        gf_free(it->meta_etag);
        gf_free(it->meta_last_modified);
        gf_free(it->image_etag);
        gf_free(it->image_last_modified);
    }
    close(W.dirfd);
    if (tmpdir_teardown(state) != 0)
        return -1;
    return rc == 0 ? 0 : -1;
}

/* Runs the loop until the state of fetch i is want, for at most 5 s. */
static void run_until(size_t i, const char *want)
{
    uint64_t end = uv_hrtime() + 5000000000ULL;
    while (strcmp(gf_fetch_state_name(W.f[i]), want) != 0) {
        assert_true(uv_hrtime() < end);
        uv_run(&W.loop, UV_RUN_ONCE);
    }
}

static int file_exists(const char *name)
{
    struct stat st;
    return fstatat(W.dirfd, name, &st, 0) == 0;
}

/* Every permit is back and nobody waits. */
static void assert_sem_idle(void)
{
    assert_int_equal(W.sem.held, 0);
    assert_int_equal(W.sem.waiting, 0);
}

/* ---- the tests ---------------------------------------------------------- */

static void test_whole_code(void **state)
{
    (void)state;
    struct gf_item *it = &W.items[0];
    assert_string_equal(gf_fetch_state_name(W.f[0]), "idle");
    gf_fetch_start(W.f[0]);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "meta");
    assert_int_equal(W.sem.held, 1);
    assert_string_equal(live()->etag, "");
    assert_int_equal(live()->limit, GF_METADATA_MAX);
    answer_meta();
    assert_string_equal(gf_fetch_state_name(W.f[0]), "image");
    assert_int_equal(live()->limit, 1 << 20);
    answer_image();
    assert_string_equal(gf_fetch_state_name(W.f[0]), "saving");
    assert_int_equal(W.done[0], 0);
    run_until(0, "done");
    assert_int_equal(it->status, GF_OK);
    assert_string_equal(it->file, "Brazil.gif");
    assert_true(file_exists("Brazil.gif"));
    assert_int_equal(it->file_bytes, sizeof GIF);
    assert_int_equal(strlen(it->sha256), 64);
    assert_string_equal(it->meta_etag, "\"m1\"");
    assert_string_equal(it->image_etag, "\"i1\"");
    assert_string_equal(it->http_version, "2");
    assert_int_equal(it->requests, 2);
    assert_int_equal(it->bytes, strlen(META) + sizeof GIF);
    assert_non_null(strstr(it->url, "http://flags.test/data/br/br.gif"));
    assert_int_equal(W.done[0], 1);
    assert_int_equal(W.requests, 2);
    assert_int_equal(W.successes, 2);
    assert_int_equal(W.bytes, strlen(META) + sizeof GIF);
    assert_sem_idle();
}

/* An image past GF_BODY_SPILL_AT arrives in its temporary file and is
 * saved by renaming it: the same bytes end up under the code's name. */
static void test_streamed_image(void **state)
{
    (void)state;
    /* The small GIF with a comment of 140 sub-blocks of 255 bytes. */
    enum { HEAD = 19, BLOCKS = 140, IMAGE_AT = 33 };
    size_t n = HEAD + 2 + BLOCKS * 256 + 1 + (sizeof GIF - IMAGE_AT);
    unsigned char *big = malloc(n), *p = big;
    assert_non_null(big);
    memcpy(p, GIF, HEAD);
    p += HEAD;
    *p++ = 0x21;
    *p++ = 0xFE;
    for (int i = 0; i < BLOCKS; i++) {
        *p++ = 255;
        memset(p, 'a' + i % 26, 255);
        p += 255;
    }
    *p++ = 0x00;
    memcpy(p, GIF + IMAGE_AT, sizeof GIF - IMAGE_AT);
    assert_true(n > GF_BODY_SPILL_AT);

    gf_fetch_start(W.f[0]);
    answer_meta();
    assert_int_equal(live()->spill_at, GF_BODY_SPILL_AT);
    answer_full(live(), GF_XFER_ANSWERED, 200, big, n, NULL, -1);
    run_until(0, "done");
    assert_int_equal(W.items[0].status, GF_OK);
    assert_int_equal(W.items[0].file_bytes, n);
    int fd = openat(W.dirfd, "Brazil.gif", O_RDONLY);
    assert_true(fd >= 0);
    unsigned char *back = malloc(n + 1);
    assert_non_null(back);
    assert_int_equal(read(fd, back, n + 1), (ssize_t)n);
    close(fd);
    assert_memory_equal(back, big, n);
    free(back);
    free(big);
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

/* A retryable status goes again after a backoff, using up --retries. */
static void test_retry_then_success(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    answer(GF_XFER_ANSWERED, 500, NULL, 0);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "retry");
    assert_sem_idle(); /* no permit while waiting to retry */
    assert_int_equal(nlive(), 0);
    run_until(0, "meta");
    assert_int_equal(live()->attempt, 1);
    answer(GF_XFER_TRANSIENT, 0, NULL, 0);
    run_until(0, "meta");
    assert_int_equal(live()->attempt, 2);
    answer_meta();
    answer_image();
    run_until(0, "done");
    assert_int_equal(W.items[0].status, GF_OK);
    assert_int_equal(W.items[0].requests, 4);
    assert_int_equal(W.requests, 4);
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

/* A code's requests are those that went out: a failure before any did
 * (a host found unresolvable) adds none. */
static void test_requests_counted_as_sent(void **state)
{
    (void)state;
    W.unsent_failures = 1;
    gf_fetch_start(W.f[0]);
    answer(GF_XFER_TRANSIENT, 0, NULL, 0);
    run_until(0, "meta");
    answer_meta();
    answer_image();
    run_until(0, "done");
    assert_int_equal(W.items[0].status, GF_OK);
    assert_int_equal(W.items[0].requests, 2);
    assert_sem_idle();
}

/* When --retries is used up the last error is the code's. */
static void test_retries_exhausted(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    for (unsigned i = 0; i < 2; i++) {
        answer(GF_XFER_ANSWERED, 502, NULL, 0);
        run_until(0, "meta");
    }
    answer(GF_XFER_ANSWERED, 504, NULL, 0);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "done");
    assert_int_equal(W.items[0].status, GF_ERROR);
    assert_string_equal(W.items[0].error, "HTTP error 504 - Gateway Timeout");
    assert_int_equal(W.items[0].http_status, 504);
    assert_int_equal(W.requests, 3);
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

/* Not every failure is worth asking again. */
static void test_no_retry_for_lasting_failures(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    gf_fetch_start(W.f[1]);
    answer(GF_XFER_FAILED, 0, NULL, 0); /* BR's metadata: FR waits for the permit */
    assert_int_equal(W.items[0].status, GF_ERROR);
    assert_string_equal(W.items[0].error, "fake failure of kind 4");
    answer(GF_XFER_ANSWERED, 404, NULL, 0);
    assert_int_equal(W.items[1].status, GF_NOT_FOUND);
    assert_int_equal(W.nreqs, 2);
    assert_int_equal(W.done[0] + W.done[1], 2);
    assert_sem_idle();
}

/* A request the server never answered goes again at once, without using
 * up --retries, a bounded number of times. */
static void test_unanswered_asked_again(void **state)
{
    (void)state;
    W.env.retries = 0;
    gf_fetch_start(W.f[0]);
    for (unsigned i = 0; i < 3; i++) {
        answer(GF_XFER_UNANSWERED, 0, NULL, 0);
        assert_string_equal(gf_fetch_state_name(W.f[0]), "meta");
        assert_int_equal(live()->attempt, 0);
    }
    answer(GF_XFER_UNANSWERED, 0, NULL, 0);
    assert_int_equal(W.items[0].status, GF_ERROR);
    assert_int_equal(W.nreqs, 4);
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
    /* The gate knew each of the three as a request asked again, which
     * --rate does not count twice; the first was a new one. */
    assert_int_equal(W.gate_calls, 4);
    assert_int_equal(W.gate_again[0], 0);
    for (unsigned i = 1; i < 4; i++)
        assert_int_equal(W.gate_again[i], 1);
}

/* While the server answers other requests, one it never took (a GOAWAY
 * past its last stream, time after time) goes again up to 30 times; once
 * it answers nothing else, 3 more end it. */
static void test_unanswered_while_serving_asked_again_longer(void **state)
{
    (void)state;
    W.env.retries = 0;
    W.env.answered = answered;
    gf_fetch_start(W.f[0]);
    for (unsigned i = 0; i < 30; i++) {
        W.answered++; /* another request answered meanwhile */
        answer(GF_XFER_UNANSWERED, 0, NULL, 0);
        assert_string_equal(gf_fetch_state_name(W.f[0]), "meta");
    }
    W.answered++;
    answer(GF_XFER_UNANSWERED, 0, NULL, 0);
    assert_int_equal(W.items[0].status, GF_ERROR);
    assert_int_equal(W.nreqs, 31);
    assert_sem_idle();

    /* Serving, then silent: three more. */
    W.items[1].status = 0;
    gf_fetch_start(W.f[1]);
    W.answered++;
    answer(GF_XFER_UNANSWERED, 0, NULL, 0);
    for (unsigned i = 0; i < 3; i++)
        answer(GF_XFER_UNANSWERED, 0, NULL, 0);
    assert_string_equal(gf_fetch_state_name(W.f[1]), "meta");
    answer(GF_XFER_UNANSWERED, 0, NULL, 0);
    assert_int_equal(W.items[1].status, GF_ERROR);
    assert_int_equal(W.nreqs, 31 + 5);
    assert_sem_idle();
}

/* A retry (a failure the server may have seen) is a new start for the
 * gate, as is the image after its metadata. */
static void test_retry_is_a_new_start_for_the_gate(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    answer(GF_XFER_TRANSIENT, 0, NULL, 0);
    /* The retry waits its backoff on the loop. */
    while (W.nreqs < 2 && uv_run(&W.loop, UV_RUN_ONCE))
        ;
    assert_int_equal(W.nreqs, 2);
    answer_meta();
    assert_int_equal(W.gate_calls, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(W.gate_again[i], 0);
}

/* --update: the metadata and the image are both as they were. */
static void test_not_modified_both(void **state)
{
    (void)state;
    static const struct gf_prev prev = {
        .file = "Brazil.gif",
        .meta_etag = "\"m0\"",
        .image_etag = "\"i0\"",
        .image_last_modified = "Tue, 01 Sep 2026 10:00:00 GMT",
        .sha256 = "ab12",
        .bytes = 99,
    };
    gf_fetch_free(W.f[0]);
    W.f[0] = gf_fetch_new(&W.env, &W.items[0], &prev);
    gf_fetch_start(W.f[0]);
    assert_string_equal(live()->etag, "\"m0\"");
    assert_string_equal(live()->last_modified, "");
    answer(GF_XFER_ANSWERED, 304, NULL, 0);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "image");
    assert_string_equal(live()->etag, "\"i0\"");
    assert_string_equal(live()->last_modified, "Tue, 01 Sep 2026 10:00:00 GMT");
    answer(GF_XFER_ANSWERED, 304, NULL, 0);
    struct gf_item *it = &W.items[0];
    assert_int_equal(it->status, GF_UNCHANGED);
    assert_string_equal(it->file, "Brazil.gif");
    assert_string_equal(it->sha256, "ab12");
    assert_int_equal(it->file_bytes, 99);
    /* A 304 without validators of its own keeps the ones it confirmed. */
    assert_string_equal(it->meta_etag, "\"m0\"");
    assert_string_equal(it->image_etag, "\"i0\"");
    assert_false(file_exists("Brazil.gif"));
    assert_int_equal(W.done[0], 1);
    assert_int_equal(W.requests, 2);
    assert_sem_idle();
}

/* --update: the metadata is unchanged, the image is new: saved under the
 * name of the last run. */
static void test_not_modified_meta_only(void **state)
{
    (void)state;
    static const struct gf_prev prev = {.file = "Brazil.gif", .meta_etag = "\"m0\""};
    gf_fetch_free(W.f[0]);
    W.f[0] = gf_fetch_new(&W.env, &W.items[0], &prev);
    gf_fetch_start(W.f[0]);
    answer(GF_XFER_ANSWERED, 304, NULL, 0);
    /* No validators of the image were recorded: nothing to send. */
    assert_string_equal(live()->etag, "");
    answer_image();
    run_until(0, "done");
    assert_int_equal(W.items[0].status, GF_OK);
    assert_true(file_exists("Brazil.gif"));
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

/* A 304 to a request that sent no validators is the server's error. */
static void test_not_modified_unasked(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    answer(GF_XFER_ANSWERED, 304, NULL, 0);
    assert_int_equal(W.items[0].status, GF_ERROR);
    assert_non_null(strstr(W.items[0].error, "not conditional"));
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

/* A 429 with Retry-After goes again at no cost to --retries when the run
 * says so; when it does not, it is an ordinary retryable status. */
static void test_overload_requeue(void **state)
{
    (void)state;
    W.env.retries = 0;
    W.overload_free = 1;
    gf_fetch_start(W.f[0]);
    answer_full(live(), GF_XFER_ANSWERED, 429, NULL, 0, NULL, 7);
    assert_int_equal(W.overloads, 1);
    assert_int_equal(W.overload_status, 429);
    assert_true(W.overload_retry_after == 7.0);
    /* Asked again at once (the run's gate holds it back, not a timer). */
    assert_string_equal(gf_fetch_state_name(W.f[0]), "meta");
    assert_int_equal(live()->attempt, 0);
    /* A timeout is an overload too, reported as status 0. */
    answer(GF_XFER_TIMEOUT, 0, NULL, 0);
    assert_int_equal(W.overloads, 2);
    assert_int_equal(W.overload_status, 0);
    assert_true(W.overload_retry_after < 0);
    answer_meta();
    W.overload_free = 0;
    answer(GF_XFER_ANSWERED, 503, NULL, 0);
    assert_int_equal(W.overloads, 3);
    assert_int_equal(W.items[0].status, GF_ERROR);
    assert_string_equal(W.items[0].error, "HTTP error 503 - Service Unavailable");
    assert_int_equal(W.requests, 4);
    assert_int_equal(W.successes, 1); /* the metadata's 200 only */
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

/* Two codes whose countries give the same name: the second gets _<CC>. */
static void test_name_collision(void **state)
{
    (void)state;
    W.refused[0] = "Brazil.gif";
    gf_fetch_start(W.f[0]);
    answer_meta();
    answer_image();
    run_until(0, "done");
    assert_int_equal(W.items[0].status, GF_OK);
    assert_string_equal(W.items[0].file, "Brazil_BR.gif");
    assert_true(file_exists("Brazil_BR.gif"));
    assert_false(file_exists("Brazil.gif"));

    /* Both names taken: an error, and nothing written. */
    W.refused[1] = "Brazil_BR.gif";
    assert_true(unlinkat(W.dirfd, "Brazil_BR.gif", 0) == 0);
    W.nreqs = 0;
    gf_fetch_free(W.f[0]);
    gf_free(W.items[0].file);
    W.items[0].file = NULL;
    W.done[0] = 0;
    W.f[0] = gf_fetch_new(&W.env, &W.items[0], NULL);
    gf_fetch_start(W.f[0]);
    answer_meta();
    answer_image();
    assert_int_equal(W.items[0].status, GF_ERROR);
    assert_string_equal(W.items[0].error, "file name collision: Brazil_BR.gif");
    assert_null(W.items[0].file);
    uv_run(&W.loop, UV_RUN_NOWAIT);
    assert_false(file_exists("Brazil_BR.gif"));
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

/* A request that cannot start ends the code with its cause. */
static void test_start_failure(void **state)
{
    (void)state;
    W.fail_start = 1;
    gf_fetch_start(W.f[0]);
    assert_int_equal(W.items[0].status, GF_ERROR);
    assert_string_equal(W.items[0].error,
                        "cannot start the request: setting CURLOPT_URL failed: fake");
    assert_int_equal(W.items[0].requests, 0);
    assert_int_equal(W.done[0], 1);
    assert_int_equal(W.requests, 0);
    assert_sem_idle();
}

/* ---- cancel in every state -------------------------------------------- */

static void cancel_and_check(size_t i, enum gf_status want)
{
    gf_fetch_cancel(W.f[i]);
    assert_string_equal(gf_fetch_state_name(W.f[i]), "done");
    assert_int_equal(W.items[i].status, want);
    assert_int_equal(W.done[i], 1);
    /* Twice is harmless: on_done ran once. */
    gf_fetch_cancel(W.f[i]);
    assert_int_equal(W.done[i], 1);
}

static void test_cancel_idle(void **state)
{
    (void)state;
    gf_fetch_cancel(W.f[0]);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "idle");
    assert_int_equal(W.done[0], 0);
    assert_sem_idle();
}

static void test_cancel_wait_meta(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]); /* holds the only permit */
    gf_fetch_start(W.f[1]);
    assert_string_equal(gf_fetch_state_name(W.f[1]), "wait-meta");
    cancel_and_check(1, GF_PENDING);
    assert_int_equal(W.sem.waiting, 0);
    answer(GF_XFER_ANSWERED, 404, NULL, 0);
    assert_int_equal(W.nreqs, 1); /* FR never asked */
    assert_sem_idle();
}

static void test_cancel_meta(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "meta");
    cancel_and_check(0, GF_PENDING);
    assert_int_equal(W.cancels, 1);
    assert_int_equal(nlive(), 0);
    assert_int_equal(W.requests, 0);
    assert_int_equal(W.items[0].requests, 1); /* it went out */
    /* The transfer layer's times of the cancelled request are kept, and
     * the wait for the permit with them. */
    assert_true(W.items[0].meta.first_byte == 0.25 && W.items[0].meta.total == 0.25);
    assert_true(W.items[0].meta.sem_wait >= 0);
    assert_true(W.items[0].image.total < 0);
    assert_sem_idle();
}

/* Cancelled while still waiting for a connection: no request went out,
 * and its wait is the connect phase's. */
static void test_cancel_meta_unsent(void **state)
{
    (void)state;
    W.cancel_unsent = 1;
    gf_fetch_start(W.f[0]);
    cancel_and_check(0, GF_PENDING);
    assert_int_equal(W.items[0].requests, 0);
    assert_true(W.items[0].meta.connect == 0.25 && W.items[0].meta.total == 0.25);
    assert_true(W.items[0].meta.dns <= 0);
    assert_sem_idle();
}

static void test_cancel_wait_image(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    /* No permit for the image once the metadata's is returned. */
    gf_sem_set_limit(&W.sem, 0);
    answer_meta();
    assert_string_equal(gf_fetch_state_name(W.f[0]), "wait-image");
    cancel_and_check(0, GF_PENDING);
    assert_int_equal(W.nreqs, 1);
    assert_sem_idle();
}

static void test_cancel_image(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    answer_meta();
    assert_string_equal(gf_fetch_state_name(W.f[0]), "image");
    cancel_and_check(0, GF_PENDING);
    assert_int_equal(W.cancels, 1);
    assert_int_equal(W.requests, 1);
    assert_true(W.items[0].image.first_byte == 0.25 && W.items[0].image.total == 0.25);
    assert_sem_idle();
}

static void test_cancel_wait_start(void **state)
{
    (void)state;
    W.gate_closed = 1;
    gf_fetch_start(W.f[0]);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "wait-start");
    assert_ptr_equal(W.gated, W.f[0]);
    assert_int_equal(W.sem.held, 1);
    cancel_and_check(0, GF_PENDING);
    assert_int_equal(W.gate_cancels, 1);
    assert_int_equal(W.nreqs, 0);
    assert_sem_idle();
}

/* The gate opens later: the waiting fetch starts then. */
static void test_gate_opens(void **state)
{
    (void)state;
    W.gate_closed = 1;
    gf_fetch_start(W.f[0]);
    assert_int_equal(W.nreqs, 0);
    W.gate_closed = 0;
    gf_fetch_begin(W.gated);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "meta");
    answer(GF_XFER_ANSWERED, 404, NULL, 0);
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

static void test_cancel_saving(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    answer_meta();
    answer_image();
    assert_string_equal(gf_fetch_state_name(W.f[0]), "saving");
    /* The save reports from the loop: dropped (the code pending, nothing
     * written) if no thread had begun it, else its real outcome. */
    gf_fetch_cancel(W.f[0]);
    gf_fetch_cancel(W.f[0]);
    run_until(0, "done");
    assert_int_equal(W.done[0], 1);
    if (W.items[0].status == GF_PENDING) {
        assert_null(W.items[0].file);
        assert_false(file_exists("Brazil.gif"));
    } else {
        assert_int_equal(W.items[0].status, GF_OK);
        assert_true(file_exists("Brazil.gif"));
    }
    gf_fetch_cancel(W.f[0]);
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

static void test_cancel_retry_wait(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    answer(GF_XFER_ANSWERED, 500, NULL, 0);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "retry");
    cancel_and_check(0, GF_PENDING);
    /* The retry timer was stopped: running the loop asks nothing more. */
    uv_run(&W.loop, UV_RUN_NOWAIT);
    usleep(300 * 1000); /* past the shortest backoff (0.25 s) */
    uv_run(&W.loop, UV_RUN_NOWAIT);
    assert_int_equal(W.nreqs, 1);
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

static void test_cancel_done(void **state)
{
    (void)state;
    gf_fetch_start(W.f[0]);
    answer(GF_XFER_ANSWERED, 404, NULL, 0);
    assert_string_equal(gf_fetch_state_name(W.f[0]), "done");
    gf_fetch_cancel(W.f[0]);
    assert_int_equal(W.items[0].status, GF_NOT_FOUND);
    assert_int_equal(W.done[0], 1);
    assert_sem_idle();
}

/* Four codes through one permit, one cancelled in each waiting state: every
 * started code ends exactly once and every permit comes back. */
static void test_counts_mixed(void **state)
{
    (void)state;
    for (size_t i = 0; i < MAX_CODES; i++)
        gf_fetch_start(W.f[i]);
    answer_meta();                          /* BR: image queued first */
    answer(GF_XFER_ANSWERED, 404, NULL, 0); /* BR's image */
    answer(GF_XFER_ANSWERED, 500, NULL, 0); /* FR: retry */
    assert_string_equal(gf_fetch_state_name(W.f[1]), "retry");
    assert_string_equal(gf_fetch_state_name(W.f[2]), "meta");
    assert_string_equal(gf_fetch_state_name(W.f[3]), "wait-meta");
    /* As the run does on a signal: no permit handed out while stopping. */
    gf_sem_set_limit(&W.sem, 0);
    for (size_t i = 0; i < MAX_CODES; i++)
        gf_fetch_cancel(W.f[i]);
    for (size_t i = 0; i < MAX_CODES; i++)
        assert_int_equal(W.done[i], 1);
    assert_int_equal(W.items[0].status, GF_NOT_FOUND);
    assert_int_equal(W.items[1].status, GF_PENDING);
    assert_int_equal(W.items[2].status, GF_PENDING);
    assert_int_equal(W.items[3].status, GF_PENDING);
    assert_int_equal(W.items[3].requests, 0);
    assert_int_equal(W.requests, 3);
    assert_int_equal(nlive(), 0);
    assert_sem_idle();
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_whole_code),
        T(test_streamed_image),
        T(test_retry_then_success),
        T(test_retries_exhausted),
        T(test_requests_counted_as_sent),
        T(test_no_retry_for_lasting_failures),
        T(test_unanswered_asked_again),
        T(test_retry_is_a_new_start_for_the_gate),
        T(test_unanswered_while_serving_asked_again_longer),
        T(test_not_modified_both),
        T(test_not_modified_meta_only),
        T(test_not_modified_unasked),
        T(test_overload_requeue),
        T(test_name_collision),
        T(test_start_failure),
        T(test_cancel_idle),
        T(test_cancel_wait_meta),
        T(test_cancel_meta),
        T(test_cancel_meta_unsent),
        T(test_cancel_wait_image),
        T(test_cancel_image),
        T(test_cancel_wait_start),
        T(test_gate_opens),
        T(test_cancel_saving),
        T(test_cancel_retry_wait),
        T(test_cancel_done),
        T(test_counts_mixed),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
