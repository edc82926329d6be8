#include "flagserver/conn.h"

#include <http_parser.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "flagserver/accesslog.h"
#include "flagserver/cond.h"
#include "flagserver/fileload.h"
#include "flagserver/httpdate.h"
#include "flagserver/path.h"
#include "flagserver/strbuf.h"

#define MAX_HEADER_BYTES 8192 /* request line and headers; past it: 431 */
#define MAX_HEADER_VALUE 1024 /* longer conditional headers are ignored */
#define MAX_PENDING 65536     /* pipelined bytes held before reading pauses */
#define LINGER_MS 2000        /* how long the client may still send after our FIN */
#define TRICKLE_MS 2000
#define BOMB_WAIT_MS 20
#define ENDLESS_CHUNK 16384
#define MAX_SLICE (256 * 1024) /* body bytes per write, so progress is known */
#define MAX_REL 1024

enum { HDR_OTHER, HDR_INM, HDR_IMS };

/* The one request a connection serves at a time. */
typedef struct fs_req {
    int open;     /* from the start of its message to the end of its answer */
    int received; /* headers complete (or answered as malformed) */
    int method;   /* enum http_method, -1 before the headers end */
    int keep_alive;
    fs_strbuf target, inm, ims;
    int64_t time_ms;
    uint64_t delay_ms;
    int teapot, overload;
    unsigned inflight_at_arrival;
    int counted; /* in srv->inflight (and in srv->admitted if admitted) */
    int admitted;
    fs_file_job *job; /* file load in progress */
    fs_fault fault;
    size_t rest_off;
    char rel[MAX_REL];

    int status; /* as logged: 499 until a head is sent */
    int answer_status;
    fs_strbuf head;
    const unsigned char *body;
    size_t body_len, body_off;
    unsigned char *owned; /* storage of body when it is ours */
    char text[64];        /* body of a status answer */
    int head_sent;
    fs_after after;
    int close_after; /* this answer ends the connection */
    uint64_t bytes;
} fs_req;

struct fs_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* the request's delay, bomb wait and trickle; then linger */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    fs_server *srv;
    fs_conn *prev, *next;
    int handles; /* open handles; the struct is freed when both are closed */
    int closing;
    size_t write_head; /* head bytes in the write in flight */
    size_t write_body; /* body bytes in the write in flight */
    size_t write_done; /* bytes of it the kernel has taken, as far as known */
    int reading;
    int no_more;   /* parse no further requests */
    int lingering; /* FIN sent, draining */

    http_parser parser; /* paused after a message until its answer is written */
    int msg_open;       /* the parser is inside a message */
    fs_strbuf pending;  /* bytes read while paused: the next requests */
    size_t hdr_bytes;
    int too_large;
    char field[24];
    size_t field_len;
    int in_value;
    int hdr_kind;
    fs_req req;
};

/* Body of the endless fault; zeros compress nothing and cost nothing. */
static const unsigned char endless_chunk[ENDLESS_CHUNK];

static void conn_close(fs_conn *c, int reset);
static void conn_parse(fs_conn *c, const char *data, size_t len);
static void req_send(fs_conn *c);
static void req_dispatch(fs_conn *c);

/* ---- helpers ---------------------------------------------------------- */

static int64_t now_ms(void)
{
    uv_timeval64_t tv;

    if (uv_gettimeofday(&tv) != 0)
        return (int64_t)time(NULL) * 1000;
    return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 418:
        return "I'm a teapot";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* ---- request lifetime --------------------------------------------------- */

/* Frees what the request holds; the slot is then free. Only once no write
 * of it is in flight. */
static void req_clear(fs_req *r)
{
    fs_strbuf_free(&r->target);
    fs_strbuf_free(&r->inm);
    fs_strbuf_free(&r->ims);
    fs_strbuf_free(&r->head);
    free(r->owned);
    memset(r, 0, sizeof(*r));
}

static void req_log(fs_conn *c)
{
    fs_req *r = &c->req;
    fs_accesslog_entry e;

    if (c->srv->log == NULL)
        return;
    e.time_ms = r->time_ms;
    e.method = r->method >= 0 ? http_method_str((enum http_method)r->method) : NULL;
    e.target = r->target.data;
    e.target_len = r->target.len;
    e.status = r->status;
    e.delay_ms = r->delay_ms;
    e.bytes = r->bytes;
    e.inflight = r->inflight_at_arrival;
    /* A full or closed stdout must not stop the server; the line is lost. */
    (void)fs_accesslog_write(c->srv->log, &e);
}

/* Ends the request's time "in progress": logs it and drops its counts. */
static void req_settle(fs_conn *c)
{
    fs_req *r = &c->req;

    if (r->job != NULL) {
        fs_file_abandon(r->job);
        r->job = NULL;
    }
    if (!r->counted)
        return; /* not received yet, or settled already */
    r->counted = 0;
    c->srv->inflight--;
    if (r->admitted)
        c->srv->admitted--;
    req_log(c);
}

/* The request's headers are over (or it is answered as malformed): it is in
 * progress from now on. */
static void req_count(fs_conn *c)
{
    fs_req *r = &c->req;

    r->received = 1;
    r->time_ms = now_ms();
    c->srv->inflight++;
    r->counted = 1;
    r->inflight_at_arrival = c->srv->inflight;
}

/* ---- connection lifetime ------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
    fs_conn *c = h->data;

    if (--c->handles > 0)
        return;
    /* The write callback has run by now, so the answer's buffers may go. */
    req_clear(&c->req);
    fs_strbuf_free(&c->pending);
    free(c);
}

static void conn_close(fs_conn *c, int reset)
{
    fs_server *srv = c->srv;

    if (c->closing)
        return;
    c->closing = 1;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->conns_open--;
    req_settle(c);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    /* uv_tcp_close_reset sets SO_LINGER 0 and closes; if it cannot, a plain
     * close still frees everything. */
    if (reset && uv_tcp_close_reset(&c->tcp, on_conn_closed) == 0)
        return;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fs_conn *c = h->data;

    buf->base = c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(fs_conn *c)
{
    if (c->reading || c->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c, 0);
        return;
    }
    c->reading = 1;
}

/* Idle, or lingering after the last answer, for too long. */
static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data, 0);
}

/* Waiting for a request (its headers, or the next one after an answer):
 * the connection goes after --idle-timeout. A request in progress takes the
 * timer over for its delay, so answers are never cut short. */
static void conn_idle(fs_conn *c)
{
    uint64_t ms = (uint64_t)(c->srv->opt.idle_timeout * 1000.0);

    /* uv_timer_start fails only on a closing handle, and then c is going. */
    if (ms > 0 && !c->closing)
        (void)uv_timer_start(&c->timer, on_timeout, ms, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    fs_conn *c = req->data;

    if (c->closing)
        return;
    if (status < 0 || uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0) != 0)
        conn_close(c, 0);
}

/* After the last answer: send FIN, then read and drop what the client still
 * sends until it closes (or LINGER_MS), so that closing with unread data
 * does not turn into an RST that could destroy the answer in flight. */
static void conn_end(fs_conn *c)
{
    c->no_more = 1;
    if (c->lingering || c->closing)
        return;
    c->lingering = 1;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c, 0);
        return;
    }
    conn_read_start(c);
}

/* The request is fully answered: forget it and go on with the next one,
 * which may already be waiting in c->pending. */
static void req_finish(fs_conn *c)
{
    fs_strbuf in = c->pending;

    req_settle(c);
    if (c->req.close_after || c->no_more) {
        conn_end(c);
        return;
    }
    req_clear(&c->req);
    conn_idle(c);
    fs_strbuf_init(&c->pending);
    if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
        http_parser_pause(&c->parser, 0);
    if (in.len > 0)
        conn_parse(c, in.data, in.len);
    fs_strbuf_free(&in);
    if (c->pending.len < MAX_PENDING)
        conn_read_start(c);
}

/* ---- writing answers ---------------------------------------------------- */

static void on_trickle(uv_timer_t *t)
{
    req_send(t->data);
}

/* The kernel has taken the first `done` bytes of the write in flight. Once
 * the whole head is out the answer's status is the one to log, even if the
 * client goes away before the rest of a large slice follows. */
static void req_progress(fs_conn *c, size_t done)
{
    fs_req *r = &c->req;
    size_t before = c->write_done > c->write_head ? c->write_done - c->write_head : 0;
    size_t body = done > c->write_head ? done - c->write_head : 0;

    if (!r->head_sent && done >= c->write_head) {
        r->head_sent = 1;
        r->status = r->answer_status;
    }
    if (body > before)
        r->bytes += body - before;
    if (done > c->write_done)
        c->write_done = done;
}

/* The write of the current slice is done. */
static void req_wrote(fs_conn *c)
{
    fs_req *r = &c->req;

    req_progress(c, c->write_head + c->write_body);
    if (r->after != FS_AFTER_ENDLESS)
        r->body_off += c->write_body;
    switch (r->after) {
    case FS_AFTER_ENDLESS:
        if (c->srv->stopping)
            conn_close(c, 0);
        else
            req_send(c);
        return;
    case FS_AFTER_SILENCE:
        return;
    case FS_AFTER_TRICKLE:
        if (r->body_off < r->body_len) {
            if (uv_timer_start(&c->timer, on_trickle, TRICKLE_MS, 0) != 0)
                conn_close(c, 0);
            return;
        }
        break;
    case FS_AFTER_RESET:
        req_settle(c);
        conn_close(c, 1);
        return;
    default:
        if (r->body_off < r->body_len) {
            req_send(c);
            return;
        }
        break;
    }
    req_finish(c);
}

static void on_write(uv_write_t *w, int status)
{
    fs_conn *c = w->data;

    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c, 0); /* the client went away */
        return;
    }
    req_wrote(c);
}

/* Writes the next slice of the answer: head (once) and body part. */
static void req_send(fs_conn *c)
{
    fs_req *r = &c->req;
    /* body may be NULL (with length 0): no arithmetic on it then. */
    const unsigned char *p = r->body != NULL ? r->body + r->body_off : NULL;
    size_t body = r->body_len - r->body_off;
    uv_buf_t bufs[2];
    unsigned n = 0;

    if (c->closing)
        return;
    if (!r->head_sent)
        bufs[n++] = uv_buf_init(r->head.data, (unsigned)r->head.len);
    if (body > MAX_SLICE)
        body = MAX_SLICE;
    if (r->after == FS_AFTER_TRICKLE && body > 1)
        body = 1;
    else if (r->after == FS_AFTER_SILENCE)
        body = 0;
    else if (r->after == FS_AFTER_ENDLESS) {
        p = endless_chunk;
        body = sizeof(endless_chunk);
    }
    if (body > 0)
        bufs[n++] = uv_buf_init((char *)p, (unsigned)body);
    c->write_head = r->head_sent ? 0 : r->head.len;
    c->write_body = body;
    c->write_done = 0;
    if (n == 0) {
        req_wrote(c);
        return;
    }
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, n, on_write) != 0) {
        conn_close(c, 0);
        return;
    }
    /* uv_write hands the kernel what it takes at once and queues the rest;
     * this is the only write queued on the connection, so the queue's size
     * is what is left of it. Without this, a client that goes away during
     * a slice larger than the socket buffer would be logged 499 although
     * it got the head. */
    req_progress(c, c->write_head + body -
                        uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp));
}

/* Builds the head of the answer and starts writing it. */
static void req_answer(fs_conn *c, const fs_answer *a)
{
    fs_req *r = &c->req;
    fs_strbuf *h = &r->head;
    char date[FS_HTTPDATE_LEN];
    int no_body = r->method == HTTP_HEAD || a->status == 304;
    fs_after after = a->after;
    const unsigned char *body = a->body;
    size_t len = a->len;
    int64_t clen = a->clen;

    r->owned = a->owned;
    if (after == FS_AFTER_REFUSE) {
        r->status = 0;
        req_settle(c);
        conn_close(c, 0);
        return;
    }
    if (no_body && after == FS_AFTER_ENDLESS)
        after = FS_AFTER_CLOSE;
    if (no_body && after == FS_AFTER_TRICKLE)
        after = FS_AFTER_KEEP;
    if (a->text) {
        int n = snprintf(r->text, sizeof(r->text), "%d %s\n", a->status, reason(a->status));

        body = (const unsigned char *)r->text;
        len = (size_t)n;
        clen = n;
    }
    r->after = after;
    r->close_after = !r->keep_alive || c->srv->stopping || after == FS_AFTER_CLOSE ||
                     after == FS_AFTER_RESET || after == FS_AFTER_ENDLESS;
    r->answer_status = a->status;
    fs_strbuf_printf(h, "HTTP/1.1 %d %s\r\nServer: flagserver\r\nDate: %s\r\n", a->status,
                     reason(a->status), fs_httpdate_format((int64_t)time(NULL), date));
    if (a->ctype != NULL && a->status != 304)
        fs_strbuf_printf(h, "Content-Type: %s\r\n", a->ctype);
    if (clen >= 0 && a->status != 304)
        fs_strbuf_printf(h, "Content-Length: %" PRId64 "\r\n", clen);
    if (a->loc != NULL)
        fs_strbuf_printf(h, "Location: %.*s\r\n", (int)a->loc_len, a->loc);
    if (a->extra != NULL)
        fs_strbuf_append(h, a->extra, strlen(a->extra));
    if (a->extra2 != NULL)
        fs_strbuf_append(h, a->extra2, strlen(a->extra2));
    fs_strbuf_printf(h, "Connection: %s\r\n\r\n", r->close_after ? "close" : "keep-alive");
    if (h->failed) {
        conn_close(c, 0);
        return;
    }
    if (!no_body) {
        r->body = body;
        r->body_len = len;
    }
    req_send(c);
}

/* A short text answer "<status> <reason>\n". */
static void req_answer_status(fs_conn *c, int status, const char *extra)
{
    fs_answer a = {0};

    a.status = status;
    a.text = 1;
    a.ctype = "text/plain";
    a.extra = extra;
    req_answer(c, &a);
}

/* ---- serving files ------------------------------------------------------ */

static void on_file_loaded(fs_file_result *res, void *arg)
{
    fs_conn *c = arg;
    fs_req *r = &c->req;
    char etag[FS_ETAG_LEN], lm[FS_HTTPDATE_LEN], validators[128];
    int64_t mtime = res->st.st_mtim.tv_sec;
    fs_answer a = {0};
    int shaped;

    r->job = NULL;
    if (res->status != 200) {
        req_answer_status(c, res->status, res->status == 503 ? "Retry-After: 1\r\n" : NULL);
        return;
    }
    fs_cond_etag(res->st.st_size, mtime, res->st.st_mtim.tv_nsec, etag);
    snprintf(validators, sizeof(validators), "Last-Modified: %s\r\nETag: %s\r\n",
             fs_httpdate_format(mtime, lm), etag);
    a.status = 200;
    a.ctype = fs_path_mime_type(r->rel);
    a.extra2 = validators;
    a.body = a.owned = (unsigned char *)res->body;
    a.len = res->len;
    /* HEAD did not read the body: announce the size stat gave. */
    a.clen = r->method == HTTP_HEAD ? (int64_t)res->st.st_size : (int64_t)res->len;
    shaped = fs_fault_shape(&c->srv->faults, r->fault, &a);
    if (shaped < 0) {
        free(a.owned);
        req_answer_status(c, 500, NULL);
        return;
    }
    if (shaped == 0) {
        const char *inm = r->inm.len > 0 && !r->inm.failed ? r->inm.data : NULL;
        const char *ims = r->ims.len > 0 && !r->ims.failed ? r->ims.data : NULL;

        if (fs_cond_not_modified(inm, ims, etag, mtime)) {
            free(a.owned);
            a.status = 304;
            a.body = a.owned = NULL;
            a.len = 0;
        }
    }
    req_answer(c, &a);
}

/* ---- deciding the answer ------------------------------------------------ */

static void on_req_due(uv_timer_t *t)
{
    req_dispatch(t->data);
}

static void req_dispatch(fs_conn *c)
{
    fs_req *r = &c->req;
    const char *target = r->target.data ? r->target.data : "";
    size_t len = r->target.len;
    fs_answer a;
    int rc, want_body;

    if (r->overload) {
        req_answer_status(c, 503, "Retry-After: 1\r\n");
        return;
    }
    if (r->teapot) {
        req_answer_status(c, 418, NULL);
        return;
    }
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        req_answer_status(c, 405, "Allow: GET, HEAD\r\n");
        return;
    }
    r->fault = fs_fault_parse(target, len, &r->rest_off);
    if (r->fault == FS_FAULT_UNKNOWN) {
        req_answer_status(c, 404, NULL);
        return;
    }
    if (r->fault != FS_FAULT_NONE && (r->rest_off == len || target[r->rest_off] != '/'))
        rc = fs_path_map("/", 1, r->rel, sizeof(r->rel));
    else
        rc = fs_path_map(target + r->rest_off, len - r->rest_off, r->rel, sizeof(r->rel));
    if (rc != FS_PATH_OK) {
        req_answer_status(c, rc == FS_PATH_BAD ? 400 : 404, NULL);
        return;
    }
    switch (fs_fault_answer(&c->srv->faults, r->fault, target, len, r->rest_off,
                            fs_path_mime_type(r->rel), &a)) {
    case FS_FAULT_ANSWERED:
        req_answer(c, &a);
        return;
    case FS_FAULT_WAIT:
        if (uv_timer_start(&c->timer, on_req_due, BOMB_WAIT_MS, 0) != 0)
            req_answer_status(c, 500, NULL);
        return;
    default:
        break;
    }
    want_body = r->method != HTTP_HEAD || r->fault == FS_FAULT_GZIP;
    rc = fs_file_load(c->srv->loop, c->srv->root, r->rel, want_body, on_file_loaded, c, &r->job);
    if (rc != 0)
        req_answer_status(c, rc == UV_ENAMETOOLONG ? 404 : 500, NULL);
}

/* Headers are complete: count the request, take its draw, start its delay.
 * The answer is always started from the timer, never from inside the
 * parser, so parser callbacks never write or close. */
static void req_admit(fs_conn *c)
{
    fs_server *srv = c->srv;
    fs_req *r = &c->req;
    fs_draw d = fs_rng_draw(&srv->rng, srv->opt.delay_min, srv->opt.delay_max, srv->opt.error_rate);

    srv->requests++;
    req_count(c);
    if (srv->opt.max_inflight > 0 && srv->admitted >= srv->opt.max_inflight) {
        r->overload = 1;
    } else {
        srv->admitted++;
        r->admitted = 1;
        r->delay_ms = d.delay_ms;
        r->teapot = d.error;
    }
    /* The loop's clock dates from the start of this iteration; the delay
     * runs from now. */
    uv_update_time(srv->loop);
    if (uv_timer_start(&c->timer, on_req_due, r->delay_ms, 0) != 0)
        req_answer_status(c, 500, NULL);
}

/* ---- parsing ------------------------------------------------------------ */

static int count_bytes(fs_conn *c, size_t n)
{
    c->hdr_bytes += n;
    if (c->hdr_bytes > MAX_HEADER_BYTES) {
        c->too_large = 1;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    fs_conn *c = p->data;

    if (c->no_more)
        return -1; /* after "Connection: close": ignore the rest */
    c->msg_open = 1;
    c->req.open = 1;
    c->req.method = -1;
    c->req.status = 499;
    c->hdr_bytes = 0;
    c->too_large = 0;
    c->in_value = 0;
    c->field_len = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    fs_conn *c = p->data;

    if (count_bytes(c, len) != 0)
        return -1;
    return fs_strbuf_append(&c->req.target, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    fs_conn *c = p->data;
    size_t room;

    if (count_bytes(c, len) != 0)
        return -1;
    if (c->in_value) {
        c->in_value = 0;
        c->field_len = 0;
    }
    /* Only short names matter; longer ones just keep counting. */
    room = c->field_len < sizeof(c->field) ? sizeof(c->field) - c->field_len : 0;
    memcpy(c->field + c->field_len, at, len < room ? len : room);
    c->field_len += len;
    return 0;
}

static int field_is(const fs_conn *c, const char *name)
{
    size_t n = strlen(name);

    return c->field_len == n && n <= sizeof(c->field) && strncasecmp(c->field, name, n) == 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    fs_conn *c = p->data;
    fs_strbuf *dst = NULL;

    if (count_bytes(c, len) != 0)
        return -1;
    if (!c->in_value) {
        c->in_value = 1;
        c->hdr_kind = field_is(c, "If-None-Match")       ? HDR_INM
                      : field_is(c, "If-Modified-Since") ? HDR_IMS
                                                         : HDR_OTHER;
    }
    if (c->hdr_kind == HDR_INM)
        dst = &c->req.inm;
    else if (c->hdr_kind == HDR_IMS)
        dst = &c->req.ims;
    if (dst != NULL)
        (void)fs_strbuf_append_capped(dst, at, len, MAX_HEADER_VALUE); /* failed = ignored */
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    fs_conn *c = p->data;

    if (p->http_major != 1)
        return -1; /* HTTP/0.9, 2, 9.9...: answered 400 */
    c->req.method = (int)p->method;
    c->req.keep_alive = http_should_keep_alive(p) && !p->upgrade;
    req_admit(c);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    fs_conn *c = p->data;

    c->msg_open = 0;
    if (!c->req.open)
        return 0; /* answered already, before the end of its body */
    if (!c->req.keep_alive)
        c->no_more = 1;
    /* One request at a time: what follows waits until this one is answered. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* The parser gave up: answer 400 or 431, then close. */
static void conn_bad_request(fs_conn *c)
{
    fs_req *r = &c->req;

    c->no_more = 1;
    if (r->received) {
        /* Broken body of a request under way: it is answered as planned
         * and the connection closes after it. */
        r->keep_alive = 0;
        return;
    }
    if (c->msg_open && !r->open) {
        conn_end(c); /* broken body of a request already answered */
        return;
    }
    r->open = 1;
    r->method = -1;
    r->keep_alive = 0;
    /* The idle timeout no longer applies: this answer is the last. */
    (void)uv_timer_stop(&c->timer); /* cannot fail */
    req_count(c);
    req_answer_status(c, c->too_large ? 431 : 400, NULL);
}

/* Parses data up to the end of a request that still waits for its answer;
 * keeps the rest (pipelined requests) in c->pending. */
static void conn_parse(fs_conn *c, const char *data, size_t len)
{
    size_t parsed = http_parser_execute(&c->parser, &parser_settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);

    if (c->closing)
        return;
    if (c->parser.upgrade)
        c->no_more = 1; /* what follows is another protocol: not ours */
    if (c->no_more)
        return; /* what follows the last request is dropped */
    if (err == HPE_PAUSED) {
        if (fs_strbuf_append(&c->pending, data + parsed, len - parsed) != 0)
            conn_close(c, 0);
    } else if (parsed != len || err != HPE_OK) {
        conn_bad_request(c);
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fs_conn *c = s->data;

    if (c->closing)
        return;
    if (nread < 0) {
        /* EOF or error: the client is gone (a half-close counts as gone, so
         * a vanished client costs nothing while its request waits). */
        conn_close(c, 0);
        return;
    }
    if (nread == 0 || c->no_more)
        return; /* nothing, or data after the last request: dropped */
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_PAUSED)
        conn_parse(c, buf->base, (size_t)nread);
    else if (fs_strbuf_append(&c->pending, buf->base, (size_t)nread) != 0)
        conn_close(c, 0);
    if (!c->closing && c->pending.len >= MAX_PENDING) {
        /* uv_read_stop cannot fail on a TCP handle; its result is always 0. */
        (void)uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ---- public ------------------------------------------------------------- */

int fs_conn_accept(fs_server *srv, int fd)
{
    fs_conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    c->srv = srv;
    rc = uv_tcp_init(srv->loop, &c->tcp);
    if (rc != 0) {
        close(fd);
        free(c);
        return rc;
    }
    c->tcp.data = c;
    c->handles = 1;
    c->wreq.data = c;
    c->sreq.data = c;
    c->closing = 1; /* until fully set up, a failure just closes the handles */
    rc = uv_timer_init(srv->loop, &c->timer);
    if (rc == 0) {
        c->timer.data = c;
        c->handles = 2;
        rc = uv_tcp_open(&c->tcp, fd);
    } else {
        close(fd);
    }
    if (rc != 0) {
        if (c->handles == 2) {
            close(fd); /* uv_tcp_open did not take it */
            uv_close((uv_handle_t *)&c->timer, on_conn_closed);
        }
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return rc;
    }
    /* Small answers should leave at once; Nagle would hold them back. A
     * failure here only costs latency. */
    (void)uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->closing = 0;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->conns_open++;
    conn_idle(c);
    conn_read_start(c);
    return 0;
}

void fs_conn_close_all(fs_server *srv)
{
    while (srv->conns != NULL)
        conn_close(srv->conns, 0);
}
