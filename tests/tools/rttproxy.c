/* rttproxy: a TCP proxy on loopback that adds a round trip.
 *
 * Every chunk read from one side is written to the other side DELAY
 * milliseconds later, in order, so a request and its answer cross it in
 * 2 x DELAY: the round trip of a distant server, for tests and benchmarks
 * on machines whose kernels have no netem. A connection's first bytes from
 * the client also wait for the TCP handshake that the loopback connect
 * skipped (one more round trip), unless --no-handshake is given. An EOF is
 * delayed like data and passed on as a shutdown, so half-closed connections
 * work; a reset or error on either side closes both at once.
 *
 *   rttproxy --target HOST:PORT [--delay MS] [--listen ADDR:PORT] [--no-handshake]
 *
 * Prints "listening on ADDR:PORT" (the real port when 0 was asked) on
 * standard output, and on SIGTERM or SIGINT closes everything, prints the
 * number of connections it served on standard error and exits 0. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <arpa/inet.h>

#include <uv.h>

/* A direction stops reading its source while this much is waiting to be
 * written, so a fast sender and a slow reader cannot fill the memory. */
enum { HIGH_WATER = 4 << 20, LOW_WATER = 1 << 20, READ_BUF = 64 << 10 };

struct conn;

/* One chunk read from a side, or its EOF (len 0, eof 1), waiting for its
 * time; then, as a write request, waiting for its write callback. */
struct chunk {
    struct chunk *next;
    struct pipe *pipe;
    uint64_t due; /* loop time in ms */
    int eof;
    size_t len;
    uv_write_t write;
    uv_shutdown_t shutdown;
    char data[];
};

/* One direction: bytes read from src, written to dst after the delay. */
struct pipe {
    struct conn *conn;
    uv_tcp_t *src, *dst;
    uv_timer_t timer;
    struct chunk *head, *tail; /* not due yet */
    size_t pending;            /* bytes queued or being written */
    int paused;                /* reading of src stopped for pending */
    int src_eof;               /* src said EOF or failed: never read again */
    int done;                  /* EOF passed on to dst (shutdown finished) */
    int to_server;
};

struct conn {
    uv_tcp_t client, server;
    uv_connect_t connect;
    struct pipe up, down; /* client -> server, server -> client */
    uint64_t accepted;    /* loop time in ms */
    int connected;
    int closing;
    int open_handles;
    struct conn *prev, *next;
};

static uv_loop_t *loop;
static uv_tcp_t listener;
static uv_signal_t sigterm, sigint;
static struct sockaddr_storage target;
static uint64_t delay_ms = 25;
static int model_handshake = 1;
static struct conn *conns; /* every open connection, for the shutdown */
static unsigned long served;
static int stopping;
static char read_buf[READ_BUF];

static void conn_close(struct conn *c, int reset);
static void pipe_flush(struct pipe *p);
static void pipe_schedule(struct pipe *p);

static void on_handle_closed(uv_handle_t *h)
{
    /* The timers' data is their pipe, the sockets' their connection. */
    struct conn *c = h->type == UV_TIMER ? ((struct pipe *)h->data)->conn : h->data;

    if (--c->open_handles > 0)
        return;
    while (c->up.head != NULL) {
        struct chunk *k = c->up.head;
        c->up.head = k->next;
        free(k);
    }
    while (c->down.head != NULL) {
        struct chunk *k = c->down.head;
        c->down.head = k->next;
        free(k);
    }
    free(c);
}

/* reset: the other side failed, so this side gets an RST rather than a
 * clean FIN, as it would without the proxy. */
static void conn_close(struct conn *c, int reset)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->up.timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->down.timer, on_handle_closed);
    if (reset) {
        if (uv_tcp_close_reset(&c->client, on_handle_closed) != 0)
            uv_close((uv_handle_t *)&c->client, on_handle_closed);
    } else {
        uv_close((uv_handle_t *)&c->client, on_handle_closed);
    }
    /* The server side is closed even if its connect is still pending: the
     * connect callback then gets UV_ECANCELED. */
    if (reset && c->connected) {
        if (uv_tcp_close_reset(&c->server, on_handle_closed) != 0)
            uv_close((uv_handle_t *)&c->server, on_handle_closed);
    } else {
        uv_close((uv_handle_t *)&c->server, on_handle_closed);
    }
}

static void maybe_finish(struct conn *c)
{
    if (c->up.done && c->down.done)
        conn_close(c, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* One loop thread: each read is copied out before the next. */
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void pipe_resume(struct pipe *p)
{
    if (p->paused && !p->src_eof && p->pending <= LOW_WATER && !p->conn->closing) {
        p->paused = 0;
        uv_read_start((uv_stream_t *)p->src, on_alloc, on_read);
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct chunk *k = w->data;
    struct pipe *p = k->pipe;

    p->pending -= k->len;
    free(k);
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_close(p->conn, 1);
        return;
    }
    pipe_resume(p);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    struct chunk *k = s->data;
    struct pipe *p = k->pipe;

    free(k);
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_close(p->conn, 1);
        return;
    }
    p->done = 1;
    maybe_finish(p->conn);
}

/* Hands every chunk that is due to dst, then sets the timer for the next. */
static void pipe_flush(struct pipe *p)
{
    uint64_t now;

    if (p->conn->closing)
        return;
    /* Nothing reaches the server before its connection exists. */
    if (p->to_server && !p->conn->connected)
        return;
    uv_update_time(loop);
    now = uv_now(loop);
    while (p->head != NULL && p->head->due <= now) {
        struct chunk *k = p->head;
        int rc;

        p->head = k->next;
        if (p->head == NULL)
            p->tail = NULL;
        if (k->eof) {
            k->shutdown.data = k;
            rc = uv_shutdown(&k->shutdown, (uv_stream_t *)p->dst, on_shutdown);
        } else {
            uv_buf_t b = uv_buf_init(k->data, (unsigned int)k->len);
            k->write.data = k;
            rc = uv_write(&k->write, (uv_stream_t *)p->dst, &b, 1, on_written);
        }
        if (rc != 0) {
            p->pending -= k->len;
            free(k);
            conn_close(p->conn, 1);
            return;
        }
    }
    if (p->head != NULL)
        pipe_schedule(p);
}

static void on_timer(uv_timer_t *t)
{
    pipe_flush(t->data);
}

static void pipe_schedule(struct pipe *p)
{
    uint64_t now = uv_now(loop);
    uint64_t wait = p->head->due > now ? p->head->due - now : 0;

    uv_timer_start(&p->timer, on_timer, wait, 0);
}

static void pipe_push(struct pipe *p, const char *data, size_t len, int eof)
{
    struct chunk *k = malloc(sizeof(*k) + len);
    uint64_t now, from;

    if (k == NULL) {
        fprintf(stderr, "rttproxy: out of memory; closing a connection\n");
        conn_close(p->conn, 1);
        return;
    }
    memset(k, 0, sizeof(*k));
    uv_update_time(loop);
    now = uv_now(loop);
    from = now;
    /* The client could not have sent before its SYN-ACK came back. */
    if (p->to_server && model_handshake && from < p->conn->accepted + 2 * delay_ms)
        from = p->conn->accepted + 2 * delay_ms;
    k->pipe = p;
    k->due = from + delay_ms;
    k->eof = eof;
    k->len = len;
    if (len > 0)
        memcpy(k->data, data, len);
    if (p->tail != NULL)
        p->tail->next = k;
    else
        p->head = k;
    p->tail = k;
    p->pending += len;
    if (p->head == k)
        pipe_schedule(p);
    if (p->pending > HIGH_WATER && !p->paused && !p->src_eof) {
        p->paused = 1;
        uv_read_stop((uv_stream_t *)p->src);
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct pipe *p = (uv_tcp_t *)s == &c->client ? &c->up : &c->down;

    if (n == 0 || c->closing)
        return;
    if (n > 0) {
        pipe_push(p, buf->base, (size_t)n, 0);
        return;
    }
    uv_read_stop(s);
    p->src_eof = 1;
    if (n == UV_EOF)
        pipe_push(p, NULL, 0, 1);
    else
        conn_close(c, 1);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;

    if (status == UV_ECANCELED)
        return;
    if (status < 0) {
        fprintf(stderr, "rttproxy: cannot connect to the target: %s\n", uv_strerror(status));
        conn_close(c, 1);
        return;
    }
    c->connected = 1;
    uv_read_start((uv_stream_t *)&c->server, on_alloc, on_read);
    pipe_flush(&c->up);
}

static void pipe_init(struct conn *c, struct pipe *p, uv_tcp_t *src, uv_tcp_t *dst, int to_server)
{
    p->conn = c;
    p->src = src;
    p->dst = dst;
    p->to_server = to_server;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    c->open_handles++;
}

static void on_connection(uv_stream_t *l, int status)
{
    struct conn *c;
    int rc;

    if (status < 0) {
        fprintf(stderr, "rttproxy: accept: %s\n", uv_strerror(status));
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "rttproxy: out of memory\n");
        return;
    }
    uv_tcp_init(loop, &c->client);
    c->client.data = c;
    c->open_handles = 1;
    if ((rc = uv_accept(l, (uv_stream_t *)&c->client)) != 0) {
        fprintf(stderr, "rttproxy: accept: %s\n", uv_strerror(rc));
        uv_close((uv_handle_t *)&c->client, on_handle_closed);
        return;
    }
    uv_tcp_init(loop, &c->server);
    c->server.data = c;
    c->open_handles++;
    pipe_init(c, &c->up, &c->client, &c->server, 1);
    pipe_init(c, &c->down, &c->server, &c->client, 0);
    uv_update_time(loop);
    c->accepted = uv_now(loop);
    c->next = conns;
    if (conns != NULL)
        conns->prev = c;
    conns = c;
    served++;
    uv_tcp_nodelay(&c->client, 1);
    uv_tcp_nodelay(&c->server, 1);
    c->connect.data = c;
    rc = uv_tcp_connect(&c->connect, &c->server, (const struct sockaddr *)&target, on_connect);
    if (rc != 0) {
        fprintf(stderr, "rttproxy: cannot connect to the target: %s\n", uv_strerror(rc));
        conn_close(c, 1);
        return;
    }
    uv_read_start((uv_stream_t *)&c->client, on_alloc, on_read);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (stopping)
        return;
    stopping = 1;
    uv_close((uv_handle_t *)&listener, NULL);
    while (conns != NULL)
        conn_close(conns, 0);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

/* ADDR:PORT with a numeric IPv4 address or "localhost". */
static int parse_addr(const char *s, struct sockaddr_storage *out)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    char *end;
    long port;
    size_t n;

    if (colon == NULL || (n = (size_t)(colon - s)) == 0 || n >= sizeof(host))
        return -1;
    memcpy(host, s, n);
    host[n] = '\0';
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rttproxy --target HOST:PORT [--delay MS] [--listen ADDR:PORT] "
               "[--no-handshake]\n"
               "  --target HOST:PORT   where connections go (IPv4 or localhost)\n"
               "  --delay MS           one-way delay of every chunk, 0 to 60000 (default 25:\n"
               "                       a round trip of 50 ms)\n"
               "  --listen ADDR:PORT   where to listen (default 127.0.0.1:0, a free port)\n"
               "  --no-handshake       do not hold a connection's first bytes for the\n"
               "                       round trip of a TCP handshake\n");
}

/* 1,000 proxied connections take 2,000 descriptors. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_storage listen_addr;
    struct sockaddr_storage bound;
    int namelen = sizeof(bound);
    char name[64];
    int have_target = 0;
    int rc;

    parse_addr("127.0.0.1:0", &listen_addr);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-handshake") == 0) {
            model_handshake = 0;
        } else if (strcmp(a, "--target") == 0 && v != NULL) {
            if (parse_addr(v, &target) != 0) {
                fprintf(stderr, "rttproxy: --target wants HOST:PORT, got '%s'\n", v);
                return 2;
            }
            have_target = 1;
            i++;
        } else if (strcmp(a, "--listen") == 0 && v != NULL) {
            if (parse_addr(v, &listen_addr) != 0) {
                fprintf(stderr, "rttproxy: --listen wants ADDR:PORT, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--delay") == 0 && v != NULL) {
            char *end;
            unsigned long d;

            errno = 0;
            d = strtoul(v, &end, 10);
            if (errno != 0 || *end != '\0' || end == v || v[0] == '-' || d > 60000) {
                fprintf(stderr, "rttproxy: --delay wants milliseconds, 0 to 60000, got '%s'\n", v);
                return 2;
            }
            delay_ms = d;
            i++;
        } else {
            fprintf(stderr, "rttproxy: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!have_target) {
        fprintf(stderr, "rttproxy: --target HOST:PORT is required\n");
        usage(stderr);
        return 2;
    }
    /* A peer that resets must not kill us through a write. */
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    loop = uv_default_loop();
    uv_tcp_init(loop, &listener);
    rc = uv_tcp_bind(&listener, (const struct sockaddr *)&listen_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&listener, 4096, on_connection);
    if (rc != 0) {
        fprintf(stderr, "rttproxy: cannot listen: %s\n", uv_strerror(rc));
        return 1;
    }
    uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &namelen);
    uv_ip4_name((const struct sockaddr_in *)&bound, name, sizeof(name));
    printf("listening on %s:%d\n", name, ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    fprintf(stderr, "rttproxy: %lu connections served\n", served);
    uv_loop_close(loop);
    return 0;
}
