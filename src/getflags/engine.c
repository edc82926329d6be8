#include "gf/alloc.h"
#include "gf/engine.h"

#include <stdlib.h>

#include "gf/error.h"

/* A transfer the engine has started and not yet reported. */
struct active {
    CURL *easy;
    uint64_t deadline; /* loop time (ms) after which curl has failed us */
};

struct gf_engine {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    uv_timer_t watchdog;
    gf_engine_done_cb done;
    void *arg;
    struct active *active;
    size_t nactive, cap;
    int closing;
    int pending_closes;
    CURLMcode add_error; /* why the last gf_engine_start failed */
};

/* How long past its own timeout a transfer may run before the watchdog
 * ends it: curl enforces CURLOPT_TIMEOUT_MS itself, so this only fires
 * when curl lost track of a transfer (seen under allocation failure). */
#define WATCHDOG_GRACE_MS 2000
#define WATCHDOG_INTERVAL_MS 1000

/* The watchdog runs while transfers do: it also keeps the loop alive if
 * curl stops asking for sockets and timers for a transfer it lost. */
static void forget(struct gf_engine *e, CURL *easy)
{
    for (size_t i = 0; i < e->nactive; i++) {
        if (e->active[i].easy == easy) {
            e->active[i] = e->active[--e->nactive];
            break;
        }
    }
    if (e->nactive == 0)
        uv_timer_stop(&e->watchdog);
}

/* Ends a transfer curl will not finish, as if curl had reported it. */
static void fail_transfer(struct gf_engine *e, CURL *easy, CURLcode code)
{
    forget(e, easy);
    curl_multi_remove_handle(e->multi, easy);
    e->done(easy, code, e->arg);
}

/* A multi call failed (out of memory, a callback refused): curl's state
 * for the transfers it was driving cannot be trusted, so all of them end
 * with an error instead of waiting forever. */
static void fail_all(struct gf_engine *e, CURLMcode rc)
{
    CURLcode code = rc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_ABORTED_BY_CALLBACK;
    while (e->nactive > 0)
        fail_transfer(e, e->active[e->nactive - 1].easy, code);
}

/* One per socket curl asks us to watch; bound with curl_multi_assign. */
struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    int events; /* what curl asked us to watch */
    struct gf_engine *engine;
};

/* Hands every finished transfer to the owner. Called after each
 * curl_multi_socket_action, as curl_multi_info_read(3) asks. */
static void drain_finished(struct gf_engine *e)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        forget(e, easy);
        curl_multi_remove_handle(e->multi, easy);
        e->done(easy, result, e->arg);
    }
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct sock_ctx *ctx = handle->data;
    struct gf_engine *e = ctx->engine;
    int flags = 0;
    int running;
    if (status < 0) {
        /* libuv reports POLLERR as an error and stops the poll. Telling
         * curl CURL_CSELECT_ERR would only yield "select/poll returned
         * error"; letting it read and write finds the real cause
         * (ECONNRESET, say). */
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    CURLMcode rc = curl_multi_socket_action(e->multi, ctx->fd, flags, &running);
    /* ctx stays valid until its close callback; re-arm a poll libuv
     * stopped if curl still wants this socket watched. */
    if (status < 0 && !uv_is_closing((uv_handle_t *)&ctx->poll) &&
        !uv_is_active((uv_handle_t *)&ctx->poll))
        uv_poll_start(&ctx->poll, ctx->events, on_poll);
    drain_finished(e);
    if (rc != CURLM_OK)
        fail_all(e, rc);
}

static void on_timer(uv_timer_t *timer)
{
    struct gf_engine *e = timer->data;
    int running;
    CURLMcode rc = curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_finished(e);
    if (rc != CURLM_OK)
        fail_all(e, rc);
}

static void on_watchdog(uv_timer_t *timer)
{
    struct gf_engine *e = timer->data;
    uint64_t now = uv_now(e->loop);
    for (size_t i = 0; i < e->nactive;) {
        if (e->active[i].deadline < now)
            fail_transfer(e, e->active[i].easy, CURLE_OPERATION_TIMEDOUT);
        else
            i++;
    }
}

static void on_poll_closed(uv_handle_t *handle)
{
    gf_free(handle->data);
}

/* The engine is freed once both of its timers have closed. */
static void on_engine_handle_closed(uv_handle_t *handle)
{
    struct gf_engine *e = handle->data;
    if (--e->pending_closes == 0) {
        gf_free(e->active);
        gf_free(e);
    }
}

/* CURLMOPT_SOCKETFUNCTION: curl calls CURL_POLL_REMOVE before it closes a
 * socket, so stopping the poll here never races a reused descriptor. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct gf_engine *e = userp;
    struct sock_ctx *ctx = socketp;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (ctx) {
            curl_multi_assign(e->multi, fd, NULL);
            uv_poll_stop(&ctx->poll);
            uv_close((uv_handle_t *)&ctx->poll, on_poll_closed);
        }
        return 0;
    }
    if (!ctx) {
        ctx = gf_malloc(sizeof(*ctx));
        if (!ctx)
            return -1;
        ctx->fd = fd;
        ctx->engine = e;
        if (uv_poll_init_socket(e->loop, &ctx->poll, fd) != 0) {
            gf_free(ctx);
            return -1;
        }
        ctx->poll.data = ctx;
        curl_multi_assign(e->multi, fd, ctx);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    ctx->events = events;
    return uv_poll_start(&ctx->poll, events, on_poll) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer; 0 means "as soon as
 * possible", which a zero libuv timer gives without calling curl back
 * from inside its own callback. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct gf_engine *e = userp;
    (void)multi;
    if (e->closing)
        return 0;
    if (timeout_ms < 0)
        return uv_timer_stop(&e->timer) == 0 ? 0 : -1;
    return uv_timer_start(&e->timer, on_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

int gf_engine_new(struct gf_engine **out, uv_loop_t *loop, long max_connects,
                  gf_engine_done_cb done, void *arg)
{
    struct gf_engine *e = gf_calloc(1, sizeof(*e));
    if (!e)
        return GF_ENOMEM;
    e->loop = loop;
    e->done = done;
    e->arg = arg;
    e->multi = curl_multi_init();
    if (!e->multi) {
        gf_free(e);
        return GF_ECURL;
    }
    int err = uv_timer_init(loop, &e->timer);
    if (err) {
        curl_multi_cleanup(e->multi);
        gf_free(e);
        return err;
    }
    e->timer.data = e;
    err = uv_timer_init(loop, &e->watchdog);
    if (err) {
        /* The first timer is initialised: it must be closed, not freed. */
        curl_multi_cleanup(e->multi);
        e->multi = NULL;
        e->pending_closes = 1;
        uv_close((uv_handle_t *)&e->timer, on_engine_handle_closed);
        return err;
    }
    e->watchdog.data = e;
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, max_connects);
    *out = e;
    return 0;
}

int gf_engine_start(struct gf_engine *e, CURL *easy, uint64_t timeout_ms)
{
    if (e->nactive == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        struct active *a = gf_realloc(e->active, cap * sizeof *a);
        if (!a)
            return GF_ENOMEM;
        e->active = a;
        e->cap = cap;
    }
    CURLMcode rc = curl_multi_add_handle(e->multi, easy);
    if (rc != CURLM_OK) {
        e->add_error = rc;
        return rc == CURLM_OUT_OF_MEMORY ? GF_ENOMEM : GF_ECURL;
    }
    e->active[e->nactive++] =
        (struct active){easy, uv_now(e->loop) + timeout_ms + WATCHDOG_GRACE_MS};
    if (!uv_is_active((uv_handle_t *)&e->watchdog))
        uv_timer_start(&e->watchdog, on_watchdog, WATCHDOG_INTERVAL_MS, WATCHDOG_INTERVAL_MS);
    return 0;
}

const char *gf_engine_strerror(const struct gf_engine *e)
{
    return curl_multi_strerror(e->add_error);
}

void gf_engine_cancel(struct gf_engine *e, CURL *easy)
{
    forget(e, easy);
    curl_multi_remove_handle(e->multi, easy);
}

void gf_engine_close(struct gf_engine *e)
{
    if (!e)
        return;
    /* Cached connections are closed here, which removes their polls
     * through on_curl_socket; timer updates are no longer wanted. */
    e->closing = 1;
    curl_multi_cleanup(e->multi);
    e->multi = NULL;
    e->pending_closes = 2;
    uv_close((uv_handle_t *)&e->timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->watchdog, on_engine_handle_closed);
}
