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
#define MAX_QUEUED 64         /* pipelined requests held before reading pauses */
#define LINGER_MS 2000        /* how long the client may still send after our FIN */
#define TRICKLE_MS 2000
#define BOMB_WAIT_MS 20
#define ENDLESS_CHUNK 16384
#define MAX_SLICE (256 * 1024) /* body bytes per write, so progress is known */
#define MAX_REL 1024

enum req_state {
    RQ_WAITING, /* delay, file load or bomb not built yet */
    RQ_READY,   /* answer built, waiting for its turn */
    RQ_SENDING, /* oldest request, being written */
};

/* What happens once the head and the body slice have been written. */
enum after {
    AFTER_KEEP,    /* done; the connection stays if the request allows it */
    AFTER_CLOSE,   /* done; close (gracefully) */
    AFTER_RESET,   /* done; close with an RST (SO_LINGER 0) */
    AFTER_REFUSE,  /* send nothing at all; close */
    AFTER_SILENCE, /* head only, then nothing until the client goes */
    AFTER_TRICKLE, /* one body byte every TRICKLE_MS */
    AFTER_ENDLESS, /* body chunks until the client goes */
};

enum { HDR_OTHER, HDR_INM, HDR_IMS };

typedef struct fs_req fs_req;

struct fs_req {
    fs_req *next;  /* arrival order on the connection */
    fs_conn *conn; /* NULL once the request is over */
    fs_server *srv;
    int refs;         /* held by the connection and by the timer */
    uv_timer_t timer; /* delay, bomb wait, trickle pacing */
    int timer_closing;
    fs_file_job *job; /* file load in progress */
    int state;

    int received; /* headers complete (or answered as malformed) */
    int method;   /* enum http_method, -1 before the headers end */
    int keep_alive;
    fs_strbuf target, inm, ims;
    int64_t time_ms;
    uint64_t delay_ms;
    int teapot, overload;
    unsigned inflight_at_arrival;
    int counted, admitted, logged;
    fs_fault fault;
    size_t rest_off;
    char rel[MAX_REL];

    int status; /* as logged: 499 until a head is sent */
    int answer_status;
    fs_strbuf head;
    const unsigned char *body;
    size_t body_len, body_off;
    unsigned char *owned; /* storage of body when it is ours */
    int head_sent;
    int after;
    int close_after; /* this answer ends the connection */
    uint64_t bytes;
};

struct fs_conn {
    uv_tcp_t tcp;
    uv_timer_t linger;
    uv_write_t wreq; /* one write at a time: only the oldest request writes */
    uv_shutdown_t sreq;
    fs_server *srv;
    fs_conn *prev, *next;
    int handles; /* open handles; the struct is freed when both are closed */
    int closing;
    int writing;
    size_t write_head; /* head bytes in the write in flight */
    size_t write_body; /* body bytes in the write in flight */
    size_t write_done; /* bytes of it the kernel has taken, as far as known */
    int reading;
    int no_more;   /* parse no further requests */
    int lingering; /* FIN sent, draining */

    http_parser parser;
    fs_req *head, *tail, *cur;
    unsigned queued;
    size_t hdr_bytes;
    int too_large;
    char field[24];
    size_t field_len;
    int in_value;
    int hdr_kind;
};

/* Body of the endless fault; zeros compress nothing and cost nothing. */
static const unsigned char endless_chunk[ENDLESS_CHUNK];

static void conn_close(fs_conn *c, int reset);
static void conn_pump(fs_conn *c);
static void req_dispatch(fs_req *r);
static void req_send(fs_req *r);

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

static void req_unref(fs_req *r)
{
    if (--r->refs > 0)
        return;
    fs_strbuf_free(&r->target);
    fs_strbuf_free(&r->inm);
    fs_strbuf_free(&r->ims);
    fs_strbuf_free(&r->head);
    free(r->owned);
    free(r);
}

static void on_req_timer_closed(uv_handle_t *h)
{
    req_unref(h->data);
}

static void req_release_timer(fs_req *r)
{
    if (r->timer_closing)
        return;
    r->timer_closing = 1;
    uv_close((uv_handle_t *)&r->timer, on_req_timer_closed);
}

static fs_req *req_new(fs_conn *c)
{
    fs_req *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    if (uv_timer_init(c->srv->loop, &r->timer) != 0) {
        free(r);
        return NULL;
    }
    r->timer.data = r;
    r->refs = 2;
    r->conn = c;
    r->srv = c->srv;
    r->method = -1;
    r->status = 499;
    if (c->tail != NULL)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->queued++;
    return r;
}

static void req_log(fs_req *r)
{
    fs_accesslog_entry e;

    if (r->logged || !r->received)
        return;
    r->logged = 1;
    if (r->srv->log == NULL)
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
    (void)fs_accesslog_write(r->srv->log, &e);
}

/* Ends the request's time "in progress": logs it and drops its counts. */
static void req_settle(fs_req *r)
{
    req_log(r);
    if (r->counted) {
        r->srv->inflight--;
        r->counted = 0;
    }
    if (r->admitted) {
        r->srv->admitted--;
        r->admitted = 0;
    }
    if (r->job != NULL) {
        fs_file_abandon(r->job);
        r->job = NULL;
    }
}

/* The oldest request is fully answered: forget it. */
static void req_complete(fs_req *r)
{
    fs_conn *c = r->conn;

    req_settle(r);
    c->head = r->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->queued--;
    r->conn = NULL;
    req_release_timer(r);
    req_unref(r);
}

/* ---- connection lifetime ------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
    fs_conn *c = h->data;
    fs_req *r;

    if (--c->handles > 0)
        return;
    /* Write callbacks have all run by now, so the requests' buffers may go. */
    r = c->head;
    while (r != NULL) {
        fs_req *next = r->next;

        r->conn = NULL;
        req_unref(r);
        r = next;
    }
    free(c);
}

static void conn_close(fs_conn *c, int reset)
{
    fs_server *srv = c->srv;
    fs_req *r;

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
    for (r = c->head; r != NULL; r = r->next) {
        req_settle(r);
        req_release_timer(r);
    }
    uv_close((uv_handle_t *)&c->linger, on_conn_closed);
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

static void conn_read_stop(fs_conn *c)
{
    if (!c->reading)
        return;
    /* uv_read_stop cannot fail on a TCP handle; its result is always 0. */
    (void)uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void on_linger(uv_timer_t *t)
{
    conn_close(t->data, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    fs_conn *c = req->data;

    if (c->closing)
        return;
    if (status < 0 || uv_timer_start(&c->linger, on_linger, LINGER_MS, 0) != 0)
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
    fs_req *r = c->head;
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

/* Called when the write of the oldest request's current slice is done. */
static void req_wrote(fs_conn *c)
{
    fs_req *r = c->head;
    int close;

    req_progress(c, c->write_head + c->write_body);
    if (r->after != AFTER_ENDLESS)
        r->body_off += c->write_body;
    switch (r->after) {
    case AFTER_ENDLESS:
        if (c->srv->stopping)
            conn_close(c, 0);
        else
            req_send(r);
        return;
    case AFTER_SILENCE:
        return;
    case AFTER_TRICKLE:
        if (r->body_off < r->body_len) {
            if (uv_timer_start(&r->timer, on_trickle, TRICKLE_MS, 0) != 0)
                conn_close(c, 0);
            return;
        }
        break;
    case AFTER_RESET:
        req_complete(r);
        conn_close(c, 1);
        return;
    default:
        if (r->body_off < r->body_len) {
            req_send(r);
            return;
        }
        break;
    }
    close = r->close_after;
    req_complete(r);
    if (close || (c->no_more && c->head == NULL)) {
        conn_end(c);
        return;
    }
    if (!c->no_more && c->queued < MAX_QUEUED)
        conn_read_start(c);
    conn_pump(c);
}

static void on_write(uv_write_t *w, int status)
{
    fs_conn *c = w->data;

    c->writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c, 0); /* the client went away */
        return;
    }
    req_wrote(c);
}

/* Writes the next slice of the oldest request: head (once) and body part. */
static void req_send(fs_req *r)
{
    fs_conn *c = r->conn;
    /* body may be NULL (with length 0): no arithmetic on it then. */
    const unsigned char *p = r->body != NULL ? r->body + r->body_off : NULL;
    size_t body = r->body_len - r->body_off;
    uv_buf_t bufs[2];
    unsigned n = 0;

    if (c == NULL || c->closing)
        return;
    if (!r->head_sent)
        bufs[n++] = uv_buf_init(r->head.data, (unsigned)r->head.len);
    if (body > MAX_SLICE)
        body = MAX_SLICE;
    if (r->after == AFTER_TRICKLE && body > 1)
        body = 1;
    else if (r->after == AFTER_SILENCE)
        body = 0;
    else if (r->after == AFTER_ENDLESS) {
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
    c->writing = 1;
    /* uv_write hands the kernel what it takes at once and queues the rest;
     * this is the only write queued on the connection, so the queue's size
     * is what is left of it. Without this, a client that goes away during
     * a slice larger than the socket buffer would be logged 499 although
     * it got the head. */
    req_progress(c, c->write_head + body -
                        uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp));
}

/* Starts the oldest request's answer once it is built. */
static void conn_pump(fs_conn *c)
{
    fs_req *r = c->head;

    if (c->closing || c->writing || r == NULL || r->state != RQ_READY)
        return;
    if (r->after == AFTER_REFUSE) {
        r->status = 0;
        req_complete(r);
        conn_close(c, 0);
        return;
    }
    r->state = RQ_SENDING;
    req_send(r);
}

typedef struct answer {
    int status;
    const char *ctype;  /* NULL: no Content-Type */
    const char *extra;  /* header lines ending in CRLF, or NULL */
    const char *extra2; /* more of them (validators), or NULL */
    int64_t clen;       /* -1: no Content-Length */
    const unsigned char *body;
    size_t len;
    unsigned char *owned; /* freed with the request; may be body */
    int after;
} answer;

/* Builds the head of r's answer and queues it for writing. */
static void req_answer(fs_req *r, const answer *a)
{
    fs_conn *c = r->conn;
    fs_server *srv = r->srv;
    char date[FS_HTTPDATE_LEN];
    int no_body = r->method == HTTP_HEAD || a->status == 304;
    int after = a->after;
    int close;

    r->owned = a->owned;
    if (no_body && after == AFTER_ENDLESS)
        after = AFTER_CLOSE;
    if (no_body && after == AFTER_TRICKLE)
        after = AFTER_KEEP;
    close = !r->keep_alive || srv->stopping || after == AFTER_CLOSE || after == AFTER_RESET ||
            after == AFTER_ENDLESS || after == AFTER_REFUSE;
    r->after = after;
    r->close_after = close;
    r->answer_status = a->status;
    r->state = RQ_READY;
    if (after != AFTER_REFUSE) {
        fs_strbuf *h = &r->head;

        fs_strbuf_printf(h, "HTTP/1.1 %d %s\r\nServer: flagserver\r\nDate: %s\r\n", a->status,
                         reason(a->status), fs_httpdate_format((int64_t)time(NULL), date));
        if (a->ctype != NULL && a->status != 304)
            fs_strbuf_printf(h, "Content-Type: %s\r\n", a->ctype);
        if (a->clen >= 0 && a->status != 304)
            fs_strbuf_printf(h, "Content-Length: %" PRId64 "\r\n", a->clen);
        if (a->extra != NULL)
            fs_strbuf_append(h, a->extra, strlen(a->extra));
        if (a->extra2 != NULL)
            fs_strbuf_append(h, a->extra2, strlen(a->extra2));
        fs_strbuf_printf(h, "Connection: %s\r\n\r\n", close ? "close" : "keep-alive");
        if (h->failed) {
            conn_close(c, 0);
            return;
        }
        if (!no_body) {
            r->body = a->body;
            r->body_len = a->len;
        }
    }
    conn_pump(c);
}

/* A short text answer "<status> <reason>\n". */
static void req_answer_status(fs_req *r, int status, const char *extra)
{
    answer a = {0};
    char *text = malloc(64);
    int n;

    if (text == NULL) {
        conn_close(r->conn, 0);
        return;
    }
    n = snprintf(text, 64, "%d %s\n", status, reason(status));
    a.status = status;
    a.ctype = "text/plain";
    a.extra = extra;
    a.body = (unsigned char *)text;
    a.len = (size_t)n;
    a.clen = n;
    a.owned = (unsigned char *)text;
    a.after = AFTER_KEEP;
    req_answer(r, &a);
}

static void req_answer_redirect(fs_req *r, const char *loc, size_t loc_len)
{
    fs_strbuf h;

    fs_strbuf_init(&h);
    fs_strbuf_append(&h, "Location: ", 10);
    fs_strbuf_append(&h, loc, loc_len);
    fs_strbuf_append(&h, "\r\n", 2);
    if (h.failed) {
        fs_strbuf_free(&h);
        conn_close(r->conn, 0);
        return;
    }
    req_answer_status(r, 302, h.data);
    fs_strbuf_free(&h);
}

static void req_answer_static(fs_req *r, const char *ctype, const char *extra, const char *body,
                              size_t len, int chunked, int after)
{
    answer a = {0};

    a.status = 200;
    a.ctype = ctype;
    a.extra = extra;
    a.body = (const unsigned char *)body;
    a.len = len;
    a.clen = chunked ? -1 : (int64_t)len;
    a.after = after;
    req_answer(r, &a);
}

/* ---- serving files ------------------------------------------------------ */

static void serve_file(fs_req *r, fs_file_result *res)
{
    char etag[FS_ETAG_LEN], lm[FS_HTTPDATE_LEN], validators[128];
    answer a = {0};
    int64_t mtime = res->st.st_mtim.tv_sec;

    fs_cond_etag(res->st.st_size, mtime, res->st.st_mtim.tv_nsec, etag);
    snprintf(validators, sizeof(validators), "Last-Modified: %s\r\nETag: %s\r\n",
             fs_httpdate_format(mtime, lm), etag);
    a.status = 200;
    a.ctype = fs_path_mime_type(r->rel);
    a.extra2 = validators;
    a.body = (unsigned char *)res->body;
    a.owned = (unsigned char *)res->body;
    a.len = res->len;
    /* HEAD did not read the body: announce the size stat gave. */
    a.clen = r->method == HTTP_HEAD ? (int64_t)res->st.st_size : (int64_t)res->len;
    a.after = AFTER_KEEP;
    switch (r->fault) {
    case FS_FAULT_RESET:
        a.len = res->len / 2;
        a.after = AFTER_RESET;
        break;
    case FS_FAULT_SHORT:
        a.len = res->len / 2;
        a.after = AFTER_CLOSE;
        break;
    case FS_FAULT_SILENCE:
        a.after = AFTER_SILENCE;
        break;
    case FS_FAULT_TRICKLE:
        a.after = AFTER_TRICKLE;
        break;
    case FS_FAULT_HUGEHEADERS:
        a.extra = r->srv->filler;
        break;
    case FS_FAULT_GZIP: {
        fs_bytes gz;

        if (fs_gz_compress(res->body, res->len, &gz) != 0) {
            free(res->body);
            req_answer_status(r, 500, NULL);
            return;
        }
        free(res->body);
        a.extra = "Content-Encoding: gzip\r\n";
        a.extra2 = NULL; /* the validators belong to the identity encoding */
        a.body = a.owned = gz.data;
        a.len = gz.len;
        a.clen = (int64_t)gz.len;
        break;
    }
    default: {
        const char *inm = r->inm.len > 0 && !r->inm.failed ? r->inm.data : NULL;
        const char *ims = r->ims.len > 0 && !r->ims.failed ? r->ims.data : NULL;

        if (fs_cond_not_modified(inm, ims, etag, mtime)) {
            free(res->body);
            a.status = 304;
            a.body = a.owned = NULL;
            a.len = 0;
        }
        break;
    }
    }
    req_answer(r, &a);
}

static void on_file_loaded(fs_file_result *res, void *arg)
{
    fs_req *r = arg;

    r->job = NULL;
    if (res->status != 200) {
        req_answer_status(r, res->status, res->status == 503 ? "Retry-After: 1\r\n" : NULL);
        return;
    }
    serve_file(r, res);
}

/* ---- deciding the answer ------------------------------------------------ */

static void on_req_due(uv_timer_t *t)
{
    req_dispatch(t->data);
}

/* Answers the faults that do not need the file. Returns 1 when it did. */
static int answer_fault(fs_req *r)
{
    fs_server *srv = r->srv;
    const char *ctype = fs_path_mime_type(r->rel);
    const char *target = r->target.data;
    size_t len = r->target.len;
    fs_fault_answer fixed;
    const char *loc;
    size_t loc_len;

    if (fs_fault_fixed_answer(r->fault, &fixed)) {
        req_answer_static(r, fixed.ctype != NULL ? fixed.ctype : ctype, fixed.header, fixed.body,
                          fixed.len, fixed.chunked, fixed.close ? AFTER_CLOSE : AFTER_KEEP);
        return 1;
    }
    if (fs_fault_redirect(r->fault, target, len, r->rest_off, &loc, &loc_len)) {
        req_answer_redirect(r, loc, loc_len);
        return 1;
    }
    switch (r->fault) {
    case FS_FAULT_REFUSE: {
        answer a = {0};

        a.after = AFTER_REFUSE;
        req_answer(r, &a);
        return 1;
    }
    case FS_FAULT_418:
        req_answer_status(r, 418, NULL);
        return 1;
    case FS_FAULT_500:
        req_answer_status(r, 500, NULL);
        return 1;
    case FS_FAULT_ENDLESS:
        req_answer_static(r, ctype, NULL, NULL, 0, 1, AFTER_ENDLESS);
        return 1;
    case FS_FAULT_GZIPBOMB:
    case FS_FAULT_GZIPBOMB_TE:
        if (srv->bomb_state == 0) {
            /* Still being built on the threadpool (it takes a fraction of a
             * second after start): look again shortly. */
            if (uv_timer_start(&r->timer, on_req_due, BOMB_WAIT_MS, 0) != 0)
                req_answer_status(r, 500, NULL);
        } else if (srv->bomb_state < 0) {
            req_answer_status(r, 500, NULL);
        } else if (r->fault == FS_FAULT_GZIPBOMB) {
            req_answer_static(r, ctype, "Content-Encoding: gzip\r\n", (char *)srv->bomb.data,
                              srv->bomb.len, 0, AFTER_KEEP);
        } else {
            req_answer_static(r, ctype, "Transfer-Encoding: gzip, chunked\r\n",
                              (char *)srv->bomb_chunked.data, srv->bomb_chunked.len, 1, AFTER_KEEP);
        }
        return 1;
    case FS_FAULT_429:
    case FS_FAULT_503: {
        size_t plen = len - r->rest_off, q;
        int first;

        for (q = 0; q < plen && target[r->rest_off + q] != '?'; q++)
            ;
        first = fs_fault_seen_first(srv->seen, r->fault, target + r->rest_off, q);
        if (first == 0)
            return 0; /* seen before: serve normally */
        req_answer_status(r, first < 0 ? 500 : (r->fault == FS_FAULT_429 ? 429 : 503),
                          "Retry-After: 1\r\n");
        return 1;
    }
    default:
        return 0;
    }
}

static void req_dispatch(fs_req *r)
{
    fs_server *srv = r->srv;
    const char *target = r->target.data ? r->target.data : "";
    size_t len = r->target.len;
    int rc, want_body;

    if (r->overload) {
        req_answer_status(r, 503, "Retry-After: 1\r\n");
        return;
    }
    if (r->teapot) {
        req_answer_status(r, 418, NULL);
        return;
    }
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        req_answer_status(r, 405, "Allow: GET, HEAD\r\n");
        return;
    }
    r->fault = fs_fault_parse(target, len, &r->rest_off);
    if (r->fault == FS_FAULT_UNKNOWN) {
        req_answer_status(r, 404, NULL);
        return;
    }
    if (r->fault != FS_FAULT_NONE && (r->rest_off == len || target[r->rest_off] != '/'))
        rc = fs_path_map("/", 1, r->rel, sizeof(r->rel));
    else
        rc = fs_path_map(target + r->rest_off, len - r->rest_off, r->rel, sizeof(r->rel));
    if (rc != FS_PATH_OK) {
        req_answer_status(r, rc == FS_PATH_BAD ? 400 : 404, NULL);
        return;
    }
    if (answer_fault(r))
        return;
    want_body = r->method != HTTP_HEAD || r->fault == FS_FAULT_GZIP;
    rc = fs_file_load(srv->loop, srv->root, r->rel, want_body, on_file_loaded, r, &r->job);
    if (rc != 0)
        req_answer_status(r, rc == UV_ENAMETOOLONG ? 404 : 500, NULL);
}

/* Headers are complete: count the request, take its draw, start its delay.
 * The answer is always started from the timer, never from inside the
 * parser, so parser callbacks never write or close. */
static void req_admit(fs_req *r)
{
    fs_server *srv = r->srv;
    fs_draw d = fs_rng_draw(&srv->rng, srv->opt.delay_min, srv->opt.delay_max, srv->opt.error_rate);

    srv->requests++;
    r->received = 1;
    r->time_ms = now_ms();
    srv->inflight++;
    r->counted = 1;
    r->inflight_at_arrival = srv->inflight;
    if (srv->opt.max_inflight > 0 && srv->admitted >= srv->opt.max_inflight) {
        r->overload = 1;
    } else {
        srv->admitted++;
        r->admitted = 1;
        r->delay_ms = d.delay_ms;
        r->teapot = d.error;
    }
    if (uv_timer_start(&r->timer, on_req_due, r->delay_ms, 0) != 0)
        req_answer_status(r, 500, NULL);
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
    c->cur = req_new(c);
    if (c->cur == NULL)
        return -1;
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
    return fs_strbuf_append(&c->cur->target, at, len);
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
        dst = &c->cur->inm;
    else if (c->hdr_kind == HDR_IMS)
        dst = &c->cur->ims;
    if (dst != NULL)
        (void)fs_strbuf_append_capped(dst, at, len, MAX_HEADER_VALUE); /* failed = ignored */
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    fs_conn *c = p->data;
    fs_req *r = c->cur;

    if (p->http_major != 1)
        return -1; /* HTTP/0.9, 2, 9.9...: answered 400 */
    r->method = (int)p->method;
    r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    req_admit(r);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    fs_conn *c = p->data;

    if (c->cur != NULL && !c->cur->keep_alive)
        c->no_more = 1;
    c->cur = NULL;
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

/* The parser gave up: answer 400 or 431 in turn, then close. */
static void conn_bad_request(fs_conn *c)
{
    fs_req *r = c->cur;

    c->no_more = 1;
    c->cur = NULL;
    if (r != NULL && r->received) {
        /* Broken body of a request already under way: it is answered as
         * planned and the connection closes after it. */
        r->keep_alive = 0;
        return;
    }
    if (r == NULL && (r = req_new(c)) == NULL) {
        conn_close(c, 0);
        return;
    }
    r->received = 1;
    r->time_ms = now_ms();
    r->srv->inflight++;
    r->counted = 1;
    r->inflight_at_arrival = r->srv->inflight;
    r->keep_alive = 0;
    req_answer_status(r, c->too_large ? 431 : 400, NULL);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fs_conn *c = s->data;
    size_t parsed;

    if (c->closing)
        return;
    if (nread < 0) {
        /* EOF or error: the client is gone (a half-close counts as gone, so
         * a vanished client costs nothing while its requests wait). */
        conn_close(c, 0);
        return;
    }
    if (nread == 0 || c->no_more)
        return; /* nothing, or data after the last request: dropped */
    parsed = http_parser_execute(&c->parser, &parser_settings, buf->base, (size_t)nread);
    if (c->closing)
        return;
    if (c->parser.upgrade) {
        c->no_more = 1; /* what follows is another protocol: not ours */
    } else if ((parsed != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) &&
               !c->no_more) {
        conn_bad_request(c);
        return;
    }
    if (c->queued >= MAX_QUEUED)
        conn_read_stop(c);
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
    rc = uv_timer_init(srv->loop, &c->linger);
    if (rc == 0) {
        c->linger.data = c;
        c->handles = 2;
        rc = uv_tcp_open(&c->tcp, fd);
    } else {
        close(fd);
    }
    if (rc != 0) {
        if (c->handles == 2) {
            close(fd); /* uv_tcp_open did not take it */
            uv_close((uv_handle_t *)&c->linger, on_conn_closed);
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
    conn_read_start(c);
    return 0;
}

void fs_conn_close_all(fs_server *srv)
{
    while (srv->conns != NULL)
        conn_close(srv->conns, 0);
}
