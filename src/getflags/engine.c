#include "gf/engine.h"

#include <stdlib.h>

#include "gf/error.h"

struct gf_engine {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    gf_engine_done_cb done;
    void *arg;
    int closing;
};

/* One per socket curl asks us to watch; bound with curl_multi_assign. */
struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
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
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(e->multi, ctx->fd, flags, &running);
    drain_finished(e);
}

static void on_timer(uv_timer_t *timer)
{
    struct gf_engine *e = timer->data;
    int running;
    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_finished(e);
}

static void on_poll_closed(uv_handle_t *handle)
{
    free(handle->data);
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
        ctx = malloc(sizeof(*ctx));
        if (!ctx)
            return -1;
        ctx->fd = fd;
        ctx->engine = e;
        if (uv_poll_init_socket(e->loop, &ctx->poll, fd) != 0) {
            free(ctx);
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
    struct gf_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return GF_ENOMEM;
    e->loop = loop;
    e->done = done;
    e->arg = arg;
    e->multi = curl_multi_init();
    if (!e->multi) {
        free(e);
        return GF_ECURL;
    }
    int err = uv_timer_init(loop, &e->timer);
    if (err) {
        curl_multi_cleanup(e->multi);
        free(e);
        return err;
    }
    e->timer.data = e;
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, max_connects);
    *out = e;
    return 0;
}

int gf_engine_start(struct gf_engine *e, CURL *easy)
{
    return curl_multi_add_handle(e->multi, easy) == CURLM_OK ? 0 : GF_ECURL;
}

void gf_engine_cancel(struct gf_engine *e, CURL *easy)
{
    curl_multi_remove_handle(e->multi, easy);
}

static void on_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
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
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}
