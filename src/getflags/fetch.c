/* The per-code state machine.
 *
 *   IDLE --start--> WAIT_META --permit--> META --answer--> WAIT_IMAGE
 *     --permit--> IMAGE --answer--> SAVING --saved--> DONE
 *
 * Every state and its ways out:
 *
 *   IDLE        made, not started. start: WAIT_META.
 *   WAIT_META,  waiting for a permit of the shared semaphore (metadata in
 *   WAIT_IMAGE  the low class, images in the high class). permit: META or
 *               IMAGE, or WAIT_START when the gate says not yet.
 *   WAIT_START  holds a permit, waits for the start gate (--rate, a
 *               host's pause, -m auto's pace). gate: META or IMAGE.
 *   META,       a transfer runs. Its answer:
 *   IMAGE         a request never answered      -> WAIT_* again (re-asked
 *                                                  on a new connection)
 *                 429/503/timeout, run says free -> WAIT_* again
 *                 retryable error, retries left  -> RETRY_WAIT
 *                 metadata 200, or 304 to it     -> WAIT_IMAGE
 *                 image 200 that is a GIF        -> SAVING
 *                 image 304                      -> DONE (unchanged)
 *                 404, or any other failure      -> DONE
 *               A request that cannot start goes to DONE at once.
 *   RETRY_WAIT  no permit; a timer for the backoff or Retry-After.
 *               timer: WAIT_* again.
 *   SAVING      the image is on the saver's threadpool. saved: DONE.
 *   DONE        on_done has run; nothing leaves it.
 *
 * cancel (an interrupted run) from WAIT_*, WAIT_START, META, IMAGE and
 * RETRY_WAIT goes to DONE at once with the code pending, returning any
 * permit; from SAVING the save reports (pending if it had not begun);
 * from IDLE and DONE it does nothing.
 *
 * A permit is held only while a transfer runs (and in WAIT_START), and is
 * returned once the transfer's answer has been handled, so the image
 * request that a metadata answer leads to is already queued when the
 * permit is handed on. The state changes only through set_state(). */
#include "gf/alloc.h"
#include "gf/fetch.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gf/body.h"
#include "gf/error.h"
#include "gf/manifest.h"
#include "gf/names.h"
#include "gf/text.h"
#include "transfer.h"

/* How often one request may go again, without using up --retries, after
 * its connection failed before the server answered anything (a GOAWAY, a
 * refused stream, a keep-alive connection closed under it), while the server
 * answers nothing else; and how often in all while it answers others (a
 * server that ends each connection after N requests sends GOAWAY to every
 * stream past the Nth: with -m well above N a request can land there time
 * after time, with nothing wrong with it). */
#define REASK_MAX 3
#define REASK_SERVING_MAX 30
#define RETRY_BASE_S 0.5
#define RETRY_MAX_S 10.0
#define RETRY_AFTER_CAP_S 30

enum fetch_state {
    IDLE,
    WAIT_META,
    META,
    WAIT_IMAGE,
    IMAGE,
    WAIT_START, /* holds a permit, waits for the start gate */
    SAVING,
    RETRY_WAIT,
    DONE,
};

static const char *const state_names[] = {
    [IDLE] = "idle",     [WAIT_META] = "wait-meta",
    [META] = "meta",     [WAIT_IMAGE] = "wait-image",
    [IMAGE] = "image",   [WAIT_START] = "wait-start",
    [SAVING] = "saving", [RETRY_WAIT] = "retry",
    [DONE] = "done",
};

/* An image on its way to disk. Made only when one has arrived: every code
 * has a struct gf_fetch for the whole run, and -e -m 1000 holds 676 of
 * them at once. */
struct saving {
    struct gf_body_sink image;
    struct gf_save save;
};

struct gf_fetch {
    const struct gf_fetch_env *env;
    struct gf_item *item;
    enum fetch_state state;
    struct gf_sem_waiter waiter;
    struct gf_transfer *xfer;   /* set while a request runs */
    int is_image;               /* the request in flight or waiting is the image */
    int conditional;            /* the request in flight sent validators */
    unsigned attempt;           /* retries used for the current request */
    unsigned reasked;           /* times it went again, the server answering nothing else */
    unsigned reasks;            /* times it went again in all */
    unsigned long answered_at;  /* env->answered() when the current request began */
    int again;                  /* the request waiting is such a one */
    long retry_after_s;         /* from the last answer, -1 when absent */
    double queued_at;           /* when the current request started waiting */
    double started_at;          /* when the current request began */
    const struct gf_prev *prev; /* --update: the last run's record, or NULL */
    int image_conditional;      /* the image may be asked for with validators */
    const char *file_hint;      /* name to save under when metadata was a 304 */
    const char *replaces;       /* the code's old file, to remove after saving */
    char *country;              /* from metadata, owned */
    struct saving *saving;      /* from the image's arrival to its save's end, owned */
    uv_timer_t *retry_timer;    /* created on first retry, closed by gf_fetch_close */
};

/* The only place a state changes; GF_DEBUG_STATES=1 traces every move. */
static void set_state(struct gf_fetch *f, enum fetch_state next)
{
    static int trace = -1;
    if (trace < 0) {
        const char *v = getenv("GF_DEBUG_STATES");
        trace = v && *v == '1';
    }
    if (trace)
        fprintf(stderr, "[%s] %s -> %s\n", f->item->cc, state_names[f->state], state_names[next]);
    f->state = next;
}

static double now_s(const struct gf_fetch *f)
{
    return (double)uv_now(f->env->loop) / 1000.0;
}

static void set_error(struct gf_fetch *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct gf_fetch *f, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gf_free(f->item->error);
    f->item->error = gf_strdup(msg);
    f->item->status = GF_ERROR;
}

static void drop_saving(struct gf_fetch *f)
{
    if (f->saving) {
        gf_body_abort(&f->saving->image);
        gf_free(f->saving);
        f->saving = NULL;
    }
}

static void finish(struct gf_fetch *f, enum gf_status status)
{
    if (status != GF_ERROR) {
        gf_free(f->item->error);
        f->item->error = NULL;
    }
    f->item->status = status;
    gf_free(f->country);
    f->country = NULL;
    drop_saving(f);
    set_state(f, DONE);
    f->env->on_done(f->env->arg, f->item);
}

/* Only a 200 carries a whole body: a 206 is a part, a 204 nothing. */
static int is_success(long status)
{
    return status == 200;
}

/* ---- requests -------------------------------------------------------- */

static void on_permit(struct gf_sem_waiter *w);

static void request(struct gf_fetch *f, int is_image)
{
    f->is_image = is_image;
    f->queued_at = now_s(f);
    set_state(f, is_image ? WAIT_IMAGE : WAIT_META);
    f->waiter.data = f;
    gf_sem_acquire(f->env->sem, &f->waiter, is_image ? GF_SEM_HIGH : GF_SEM_LOW, on_permit);
}

static void on_permit(struct gf_sem_waiter *w)
{
    struct gf_fetch *f = w->data;
    struct gf_phases *ph = f->is_image ? &f->item->image : &f->item->meta;
    ph->sem_wait = now_s(f) - f->queued_at;
    int again = f->again;
    f->again = 0;
    if (f->env->gate && !f->env->gate(f->env->arg, f, again)) {
        set_state(f, WAIT_START);
        return;
    }
    gf_fetch_begin(f);
}

/* "<base>/<cc>/metadata.json" or "<base>/<cc>/<cc>.gif", in lower case;
 * NULL when out of memory. Put together by hand: it is built for every
 * request, and snprintf() costs ten times as much. */
static char *request_url(const struct gf_fetch *f, const char *base)
{
    const char *cc = f->item->cc;
    char a = (char)(cc[0] | 0x20), b = (char)(cc[1] | 0x20);
    size_t n = strlen(base);
    static const char meta[] = "/metadata.json";
    char *url = gf_malloc(n + 4 + sizeof meta);
    if (!url)
        return NULL;
    char *p = url;
    memcpy(p, base, n);
    p += n;
    *p++ = '/';
    *p++ = a;
    *p++ = b;
    if (f->is_image) {
        memcpy(p, "/xx.gif", 8);
        p[1] = a;
        p[2] = b;
    } else {
        memcpy(p, meta, sizeof meta);
    }
    return url;
}

static void on_response(void *arg, struct gf_response *r);

void gf_fetch_begin(struct gf_fetch *f)
{
    const struct gf_fetch_env *env = f->env;
    set_state(f, f->is_image ? IMAGE : META);
    f->started_at = now_s(f);
    f->answered_at = env->answered ? env->answered(env->arg) : 0;
    struct gf_request req = {
        .limit = f->is_image ? (size_t)env->max_size : GF_METADATA_MAX,
        .spill_at = f->is_image ? GF_BODY_SPILL_AT : 0,
        .dirfd = env->saver->dirfd,
        .is_gif = f->is_image,
        .attempt = f->attempt,
        .cb = on_response,
        .arg = f,
    };
    const struct gf_prev *p = f->prev;
    if (p && !f->is_image) {
        req.etag = p->meta_etag;
        req.last_modified = p->meta_last_modified;
    } else if (p && f->image_conditional) {
        req.etag = p->image_etag;
        req.last_modified = p->image_last_modified;
    }
    f->conditional = req.etag || req.last_modified;
    char err[512];
    char *url = request_url(f, env->base_url);
    req.url = url;
    if (!url)
        snprintf(err, sizeof err, "cannot start the request: out of memory");
    if (!url || env->xfer->start(env->xfer_ctx, &req, &f->xfer, err, sizeof err) != 0) {
        gf_free(url);
        set_error(f, "%s", err);
        gf_sem_release(env->sem);
        finish(f, GF_ERROR);
        return;
    }
    f->item->begun++;
    gf_free(f->item->url);
    /* The URL users see: without the password of the base. */
    if (env->base_url_display) {
        f->item->url = request_url(f, env->base_url_display);
        gf_free(url);
    } else {
        f->item->url = url;
    }
}

/* ---- retries --------------------------------------------------------- */

static int retryable_status(long s)
{
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static void on_retry_timer(uv_timer_t *t)
{
    struct gf_fetch *f = t->data;
    request(f, f->is_image);
}

/* Waits (without a permit) and asks again. Returns 0 when a retry was
 * scheduled, -1 when the retries are used up. */
static int schedule_retry(struct gf_fetch *f, const char *why)
{
    const struct gf_fetch_env *env = f->env;
    if (f->attempt >= env->retries)
        return -1;
    if (!f->retry_timer) {
        f->retry_timer = gf_malloc(sizeof *f->retry_timer);
        if (!f->retry_timer || uv_timer_init(env->loop, f->retry_timer) != 0) {
            gf_free(f->retry_timer);
            f->retry_timer = NULL;
            return -1;
        }
        f->retry_timer->data = f;
    }
    f->attempt++;
    double wait;
    if (f->retry_after_s >= 0) {
        wait =
            (double)(f->retry_after_s < RETRY_AFTER_CAP_S ? f->retry_after_s : RETRY_AFTER_CAP_S);
    } else {
        /* Exponential backoff with jitter in [half, full] of the step. */
        double step = RETRY_BASE_S;
        for (unsigned i = 1; i < f->attempt && step < RETRY_MAX_S; i++)
            step *= 2;
        if (step > RETRY_MAX_S)
            step = RETRY_MAX_S;
        wait = step * (0.5 + 0.5 * env->random(env->arg));
    }
    if (env->verbose) {
        char shown[2048];
        gf_escape_for_print(why, strlen(why), shown, sizeof shown);
        fprintf(env->verbose, "%s retry %u/%u in %.1f s: %s\n", f->item->cc, f->attempt,
                env->retries, wait, shown);
        /* A log line: in the file now, not when the buffer fills. */
        fflush(env->verbose);
    }
    set_state(f, RETRY_WAIT);
    uv_timer_start(f->retry_timer, on_retry_timer, (uint64_t)(wait * 1000.0), 0);
    return 0;
}

static void on_saved(struct gf_save *req, int err, const char *step);

static void start_save(struct gf_fetch *f)
{
    char name[GF_NAME_MAX + 1];
    const char *why = NULL;
    int rc;
    if (!f->country) {
        /* The metadata was a 304: the name is the one saved last time. */
        snprintf(name, sizeof name, "%s", f->file_hint);
        if (!f->env->claim_name(f->env->arg, f->item->cc, name)) {
            set_error(f, "file name collision: %s", name);
            finish(f, GF_ERROR);
            return;
        }
        rc = 0;
    } else {
        rc = gf_name_from_country(f->country, strlen(f->country), NULL, name, sizeof name, &why);
    }
    if (rc == 0 && f->country && !f->env->claim_name(f->env->arg, f->item->cc, name)) {
        rc = gf_name_from_country(f->country, strlen(f->country), f->item->cc, name, sizeof name,
                                  &why);
        if (rc == 0 && !f->env->claim_name(f->env->arg, f->item->cc, name)) {
            set_error(f, "file name collision: %s", name);
            finish(f, GF_ERROR);
            return;
        }
    }
    if (rc != 0) {
        set_error(f, "bad metadata: %s", why ? why : "unusable country name");
        finish(f, GF_ERROR);
        return;
    }
    f->item->file = gf_strdup(name);
    if (!f->item->file) {
        set_error(f, "out of memory");
        finish(f, GF_ERROR);
        return;
    }
    set_state(f, SAVING);
    struct saving *sv = f->saving;
    sv->save.userdata = f;
    /* The old file of a renamed country goes, unless another code of this
     * run has its name: claiming it keeps any later code off it. */
    sv->save.replaces = f->replaces && strcmp(f->replaces, name) != 0 &&
                                f->env->claim_name(f->env->arg, f->item->cc, f->replaces)
                            ? f->replaces
                            : NULL;
    gf_body_save(&sv->image, f->env->saver, &sv->save, f->item->file, on_saved);
}

static void on_saved(struct gf_save *req, int err, const char *step)
{
    struct gf_fetch *f = req->userdata;
    f->item->save_s = req->seconds;
    if (err == UV_ECANCELED) {
        /* Interrupted before the write began: the code did not end. */
        gf_free(f->item->file);
        f->item->file = NULL;
        finish(f, GF_PENDING);
        return;
    }
    if (err != 0) {
        set_error(f, "cannot save %s: %s failed: %s", f->item->file, step, uv_strerror(err));
        gf_free(f->item->file);
        f->item->file = NULL;
        finish(f, GF_ERROR);
        return;
    }
    memcpy(f->item->sha256, req->sha256, sizeof f->item->sha256);
    f->item->file_bytes = f->saving->image.len;
    finish(f, GF_OK);
}

/* Keeps the validators of an answer for the manifest; a 304 without its
 * own keeps the ones it confirmed. */
static void keep_validators(struct gf_fetch *f, const struct gf_response *x, long status)
{
    char **etag = f->is_image ? &f->item->image_etag : &f->item->meta_etag;
    char **lm = f->is_image ? &f->item->image_last_modified : &f->item->meta_last_modified;
    const struct gf_prev *p = f->prev;
    const char *old_etag = p ? (f->is_image ? p->image_etag : p->meta_etag) : NULL;
    const char *old_lm = p ? (f->is_image ? p->image_last_modified : p->meta_last_modified) : NULL;
    const char *new_etag = x->etag[0] ? x->etag : (status == 304 ? old_etag : NULL);
    const char *new_lm = x->last_modified[0] ? x->last_modified : (status == 304 ? old_lm : NULL);
    gf_free(*etag);
    gf_free(*lm);
    *etag = new_etag ? gf_strdup(new_etag) : NULL;
    *lm = new_lm ? gf_strdup(new_lm) : NULL;
}

/* The standard reason phrase of a status: HTTP/2 answers carry none. */
static const char *standard_reason(long status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 418:
        return "I'm a teapot";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 506:
        return "Variant Also Negotiates";
    case 507:
        return "Insufficient Storage";
    case 508:
        return "Loop Detected";
    case 511:
        return "Network Authentication Required";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 305:
        return "Use Proxy";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    default:
        return "(no reason)";
    }
}

/* A 304 to a conditional request: the metadata or the image is as it was
 * in the last run. */
static void handle_not_modified(struct gf_fetch *f)
{
    const struct gf_prev *p = f->prev;
    if (!f->conditional || !p) {
        set_error(f, "HTTP error 304 - Not Modified, to a request that was not conditional");
        finish(f, GF_ERROR);
        return;
    }
    if (!f->is_image) {
        /* Same country, same name: the image can be conditional too. */
        f->file_hint = p->file;
        f->image_conditional = 1;
        f->attempt = 0;
        f->reasked = 0;
        f->reasks = 0;
        request(f, 1);
        return;
    }
    if (!f->env->claim_name(f->env->arg, f->item->cc, p->file)) {
        set_error(f, "file name collision: %s", p->file);
        finish(f, GF_ERROR);
        return;
    }
    f->item->file = gf_strdup(p->file);
    snprintf(f->item->sha256, sizeof f->item->sha256, "%s", p->sha256 ? p->sha256 : "");
    f->item->file_bytes = p->bytes;
    if (!f->item->file) {
        set_error(f, "out of memory");
        finish(f, GF_ERROR);
        return;
    }
    finish(f, GF_UNCHANGED);
}

/* Metadata arrived: take the country, and decide how to ask for the image. */
static void handle_metadata(struct gf_fetch *f, const struct gf_response *body)
{
    const char *bad = NULL;
    char name[GF_NAME_MAX + 1];
    int err = gf_metadata_country(body->body.data ? body->body.data : "", body->body.len,
                                  &f->country, &bad);
    /* Refuse an unusable name now, so its image is never requested. */
    if (err == 0)
        err = gf_name_from_country(f->country, strlen(f->country), NULL, name, sizeof name, &bad);
    if (err != 0) {
        set_error(f, "bad metadata: %s", err == GF_ENOMEM ? "out of memory" : bad);
        finish(f, GF_ERROR);
        return;
    }
    const struct gf_prev *p = f->prev;
    char own[GF_NAME_MAX + 1];
    if (p) {
        /* The same country keeps its file, under its plain name or the one
         * with _<CC> it took when another code had the plain one: the image
         * is asked for only if changed. A country renamed gets a new file,
         * whatever the image. Either way a file saved under another name
         * than last time's replaces it. */
        f->image_conditional = strcmp(name, p->file) == 0 ||
                               (gf_name_from_country(f->country, strlen(f->country), f->item->cc,
                                                     own, sizeof own, &bad) == 0 &&
                                strcmp(own, p->file) == 0);
        f->replaces = p->file;
    }
    f->attempt = 0;
    f->reasked = 0;
    f->reasks = 0;
    request(f, 1);
}

/* Decides what an answer means for the code. Runs while the permit is
 * still held; the caller returns it afterwards. */
static void handle_response(struct gf_fetch *f, struct gf_response *r)
{
    const struct gf_fetch_env *env = f->env;
    long status = r->status;
    char why[512];
    if (status > 0)
        f->item->http_status = (int)status;

    int serving = env->answered && env->answered(env->arg) > f->answered_at;
    if (r->kind == GF_XFER_UNANSWERED &&
        (serving ? f->reasks < REASK_SERVING_MAX : f->reasked < REASK_MAX)) {
        if (!serving)
            f->reasked++;
        f->reasks++;
        if (env->verbose) {
            fprintf(env->verbose, "%s asked again, unanswered: %s\n", f->item->cc, r->error);
            fflush(env->verbose);
        }
        f->again = 1;
        request(f, f->is_image);
        return;
    }

    /* A refusal pauses the host (and with -m auto lowers the limit); the
     * run decides whether the request waits its turn again without using
     * up --retries. */
    int refused = r->kind == GF_XFER_ANSWERED && (status == 429 || status == 503);
    if ((refused || r->kind == GF_XFER_TIMEOUT) && env->on_overload &&
        env->on_overload(env->arg, f->started_at, refused ? status : 0, (double)f->retry_after_s)) {
        if (env->verbose) {
            fprintf(env->verbose, "%s asked again after %s\n", f->item->cc,
                    refused ? (status == 429 ? "HTTP 429" : "HTTP 503") : "a timeout");
            fflush(env->verbose);
        }
        request(f, f->is_image);
        return;
    }
    if (env->on_success && r->kind == GF_XFER_ANSWERED &&
        (is_success(status) || status == 304 || status == 404))
        env->on_success(env->arg, f->started_at);

    if (r->kind != GF_XFER_ANSWERED) {
        if (r->kind != GF_XFER_FAILED && schedule_retry(f, r->error) == 0)
            return;
        set_error(f, "%s", r->error);
        finish(f, GF_ERROR);
        return;
    }
    if (status == 404) {
        finish(f, GF_NOT_FOUND);
        return;
    }
    if (status == 304) {
        keep_validators(f, r, status);
        handle_not_modified(f);
        return;
    }
    if (!is_success(status)) {
        /* The reason phrase is kept as sent: the report, the JSON and the
         * -v retry line each escape it once, where it is printed. */
        snprintf(why, sizeof why, "HTTP error %ld - %s%s", status,
                 r->reason[0] ? r->reason : standard_reason(status),
                 r->port_wants_tls ? " (the server says this port speaks TLS: use https://)" : "");
        if (retryable_status(status) && schedule_retry(f, why) == 0)
            return;
        set_error(f, "%s", why);
        finish(f, GF_ERROR);
        return;
    }
    if (r->bad_length) {
        set_error(f, "not a valid HTTP answer: unusable Content-Length header");
        finish(f, GF_ERROR);
        return;
    }
    if (!r->encoded && r->content_length >= 0 && (unsigned long long)r->content_length != r->len) {
        /* A body may end at a connection close the transfer took as normal. */
        set_error(f, "body of %zu bytes where Content-Length said %lld", r->len, r->content_length);
        finish(f, GF_ERROR);
        return;
    }
    keep_validators(f, r, status);
    if (!f->is_image) {
        handle_metadata(f, r);
        return;
    }

    /* Every flag is a GIF: anything else (an HTML error page served with
     * 200, a body cut short) must never be saved as one. */
    char gif_err[160];
    if (gf_body_finish(&r->body, gif_err, sizeof gif_err) != 0) {
        set_error(f, "%s (%zu bytes received)", gif_err, r->len);
        finish(f, GF_ERROR);
        return;
    }
    f->saving = gf_calloc(1, sizeof *f->saving);
    if (!f->saving) {
        set_error(f, "out of memory");
        finish(f, GF_ERROR);
        return;
    }
    f->saving->image = r->body;
    r->body = (struct gf_body_sink){0};
    start_save(f);
}

/* The transfer layer's answer to the request f started. */
static void on_response(void *arg, struct gf_response *r)
{
    struct gf_fetch *f = arg;
    const struct gf_fetch_env *env = f->env;
    f->xfer = NULL;
    struct gf_phases *ph = f->is_image ? &f->item->image : &f->item->meta;
    double sem_wait = ph->sem_wait;
    *ph = r->phases;
    ph->sem_wait = sem_wait;
    _Static_assert(sizeof f->item->http_version == sizeof r->http_version,
                   "HTTP version buffers differ");
    if (r->http_version[0])
        memcpy(f->item->http_version, r->http_version, sizeof r->http_version);
    f->item->bytes += r->bytes;
    /* Counted as they went out: none for one that never left (a host
     * found unresolvable, a connection refused). */
    f->item->requests += r->requests;
    env->on_request(env->arg, ph->total * 1000.0, r->bytes);
    f->retry_after_s = r->retry_after_s > 0 ? r->retry_after_s : -1;
    handle_response(f, r);
    /* Hand the permit on only now: a follow-up request is already queued. */
    gf_sem_release(env->sem);
}

struct gf_fetch *gf_fetch_new(const struct gf_fetch_env *env, struct gf_item *item,
                              const struct gf_prev *prev)
{
    struct gf_fetch *f = gf_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->env = env;
    f->item = item;
    f->prev = prev;
    f->retry_after_s = -1;
    item->save_s = -1;
    item->meta = item->image = (struct gf_phases){-1, -1, -1, -1, -1, -1, -1};
    return f;
}

void gf_fetch_start(struct gf_fetch *f)
{
    request(f, 0);
}

void gf_fetch_cancel(struct gf_fetch *f)
{
    const struct gf_fetch_env *env = f->env;
    switch (f->state) {
    case WAIT_META:
    case WAIT_IMAGE:
        gf_sem_cancel(env->sem, &f->waiter);
        break;
    case META:
    case IMAGE: {
        struct gf_phases *ph = f->is_image ? &f->item->image : &f->item->meta;
        double sem_wait = ph->sem_wait;
        f->item->requests += env->xfer->cancel(env->xfer_ctx, f->xfer, ph);
        ph->sem_wait = sem_wait;
        f->xfer = NULL;
        gf_sem_release(env->sem);
        break;
    }
    case WAIT_START:
        env->gate_cancel(env->arg, f);
        gf_sem_release(env->sem);
        break;
    case RETRY_WAIT:
        uv_timer_stop(f->retry_timer);
        break;
    case SAVING:
        /* on_saved reports: ended if the write ran, pending if not. */
        gf_save_cancel(&f->saving->save);
        return;
    case IDLE:
    case DONE:
        return;
    }
    finish(f, GF_PENDING);
}

const char *gf_fetch_state_name(const struct gf_fetch *f)
{
    return state_names[f->state];
}

static void on_timer_closed(uv_handle_t *h)
{
    gf_free(h);
}

void gf_fetch_close(struct gf_fetch *f)
{
    if (f && f->retry_timer) {
        uv_close((uv_handle_t *)f->retry_timer, on_timer_closed);
        f->retry_timer = NULL;
    }
}

void gf_fetch_free(struct gf_fetch *f)
{
    if (!f)
        return;
    gf_free(f->country);
    drop_saving(f);
    gf_free(f);
}
