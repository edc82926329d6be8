#include "flagserver/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flagserver/conn.h"

#define LISTEN_BACKLOG 4096
#define ACCEPT_BATCH 256    /* accepts per wakeup, so reads are not starved */
#define ACCEPT_PAUSE_MS 100 /* after EMFILE: let connections finish first */
#define FD_RESERVE_MIN 16   /* descriptors kept for files and libuv itself */

enum {
    H_POLL = 1 << 0,
    H_TIMER = 1 << 1,
    H_SIGINT = 1 << 2,
    H_SIGTERM = 1 << 3,
};

static void on_handle_closed(uv_handle_t *h)
{
    fs_server *srv = h->data;

    if (h == (uv_handle_t *)&srv->listen_poll && srv->listen_fd >= 0) {
        /* uv_poll does not own the descriptor. */
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
}

static void close_handles(fs_server *srv)
{
    if (srv->open_handles & H_POLL)
        uv_close((uv_handle_t *)&srv->listen_poll, on_handle_closed);
    else if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
    if (srv->open_handles & H_TIMER)
        uv_close((uv_handle_t *)&srv->accept_timer, on_handle_closed);
    if (srv->open_handles & H_SIGINT)
        uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
    if (srv->open_handles & H_SIGTERM)
        uv_close((uv_handle_t *)&srv->sigterm, on_handle_closed);
    srv->open_handles = 0;
}

static void on_accept_resume(uv_timer_t *t);
static void on_listen_readable(uv_poll_t *p, int status, int events);

/* Out of descriptors (err != 0), or at the connection cap (err == 0): stop
 * watching the listen socket for a moment instead of spinning on it.
 * Pending clients wait in the backlog; none is dropped. */
static void pause_accepting(fs_server *srv, int err)
{
    uint64_t now = uv_now(srv->loop);

    if (uv_poll_stop(&srv->listen_poll) != 0 ||
        uv_timer_start(&srv->accept_timer, on_accept_resume, ACCEPT_PAUSE_MS, 0) != 0) {
        fprintf(stderr, "flagserver: cannot pause accepting; stopping\n");
        fs_server_stop(srv);
        return;
    }
    srv->accept_paused = 1;
    srv->pauses_unlogged++;
    /* At most one line a second: the condition can last. */
    if (srv->pause_logged_ms == 0 || now - srv->pause_logged_ms >= 1000) {
        if (err != 0)
            fprintf(stderr, "flagserver: accept: %s (%lu connections open)", strerror(err),
                    srv->conns_open);
        else
            fprintf(stderr,
                    "flagserver: %lu connections open, all the file descriptor limit allows",
                    srv->conns_open);
        fprintf(stderr, "; pausing accepts for %d ms (%lu pauses since last message)\n",
                ACCEPT_PAUSE_MS, srv->pauses_unlogged);
        srv->pause_logged_ms = now;
        srv->pauses_unlogged = 0;
    }
}

static void on_accept_resume(uv_timer_t *t)
{
    fs_server *srv = t->data;

    if (srv->stopping)
        return;
    if (srv->conns_open >= srv->max_conns) {
        pause_accepting(srv, 0); /* still full */
        return;
    }
    srv->accept_paused = 0;
    if (uv_poll_start(&srv->listen_poll, UV_READABLE, on_listen_readable) != 0) {
        fprintf(stderr, "flagserver: cannot resume accepting; stopping\n");
        fs_server_stop(srv);
    }
}

static void on_listen_readable(uv_poll_t *p, int status, int events)
{
    fs_server *srv = p->data;
    int i, rc;

    if (status < 0) {
        fprintf(stderr, "flagserver: listen socket: %s\n", uv_strerror(status));
        pause_accepting(srv, -status);
        return;
    }
    for (i = 0; i < ACCEPT_BATCH && !srv->stopping; i++) {
        int fd;

        if (srv->conns_open >= srv->max_conns) {
            pause_accepting(srv, 0);
            return;
        }
        fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            pause_accepting(srv, errno); /* EMFILE, ENFILE, ENOBUFS, ENOMEM... */
            return;
        }
        rc = fs_conn_accept(srv, fd);
        if (rc != 0)
            fprintf(stderr, "flagserver: cannot take a connection: %s\n", uv_strerror(rc));
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    fs_server *srv = s->data;

    fprintf(stderr, "flagserver: %s, stopping\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
    fs_server_stop(srv);
}

/* Connections may take all descriptors but a reserve, so that files can
 * still be opened for the clients already in. */
static unsigned long connection_cap(void)
{
    struct rlimit rl;
    rlim_t reserve;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return (unsigned long)-1;
    reserve = rl.rlim_cur / 16 > FD_RESERVE_MIN ? rl.rlim_cur / 16 : FD_RESERVE_MIN;
    return rl.rlim_cur > 2 * reserve ? (unsigned long)(rl.rlim_cur - reserve)
                                     : (unsigned long)(rl.rlim_cur / 2);
}

static int open_listener(fs_server *srv, char *err, size_t errlen)
{
    const fs_options *opt = &srv->opt;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int v6 = strchr(opt->bind, ':') != NULL;
    int one = 1, rc, fd;
    char host[64];

    memset(&ss, 0, sizeof(ss));
    rc = v6 ? uv_ip6_addr(opt->bind, opt->port, (struct sockaddr_in6 *)&ss)
            : uv_ip4_addr(opt->bind, opt->port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        snprintf(err, errlen, "bad address %s: %s", opt->bind, uv_strerror(rc));
        return rc;
    }
    fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "socket: %s", uv_strerror(rc));
        return rc;
    }
    srv->listen_fd = fd;
    sslen = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    /* REUSEADDR lets a restarted server bind while old connections sit in
     * TIME_WAIT; it does not allow two live listeners. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot listen on %s port %d: %s", opt->bind, opt->port,
                 uv_strerror(rc));
        return rc;
    }
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        rc = uv_ip6_name(a, host, sizeof(host));
        snprintf(srv->url, sizeof(srv->url), "http://[%s]:%d", host, ntohs(a->sin6_port));
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        rc = uv_ip4_name(a, host, sizeof(host));
        snprintf(srv->url, sizeof(srv->url), "http://%s:%d", host, ntohs(a->sin_port));
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot name the bound address: %s", uv_strerror(rc));
        return rc;
    }
    return 0;
}

int fs_server_init(fs_server *srv, uv_loop_t *loop, const fs_options *opt, const char *root,
                   FILE *log, char *err, size_t errlen)
{
    int rc;

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->opt = *opt;
    srv->log = log;
    srv->listen_fd = -1;
    srv->max_conns = connection_cap();
    fs_rng_seed(&srv->rng, opt->seed);
    if (strlen(root) >= sizeof(srv->root)) {
        snprintf(err, errlen, "directory path too long");
        return UV_ENAMETOOLONG;
    }
    strcpy(srv->root, root);
    rc = open_listener(srv, err, errlen);
    if (rc != 0)
        goto fail;

    srv->listen_poll.data = srv;
    srv->accept_timer.data = srv;
    srv->sigint.data = srv;
    srv->sigterm.data = srv;
    if ((rc = uv_poll_init_socket(loop, &srv->listen_poll, srv->listen_fd)) != 0)
        goto fail_uv;
    srv->open_handles |= H_POLL;
    if ((rc = uv_timer_init(loop, &srv->accept_timer)) != 0)
        goto fail_uv;
    srv->open_handles |= H_TIMER;
    if ((rc = uv_signal_init(loop, &srv->sigint)) != 0)
        goto fail_uv;
    srv->open_handles |= H_SIGINT;
    if ((rc = uv_signal_init(loop, &srv->sigterm)) != 0)
        goto fail_uv;
    srv->open_handles |= H_SIGTERM;
    if ((rc = uv_signal_start(&srv->sigint, on_signal, SIGINT)) != 0 ||
        (rc = uv_signal_start(&srv->sigterm, on_signal, SIGTERM)) != 0 ||
        (rc = uv_poll_start(&srv->listen_poll, UV_READABLE, on_listen_readable)) != 0)
        goto fail_uv;

    if ((rc = fs_faults_init(&srv->faults, loop)) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return 0;

fail_uv:
    snprintf(err, errlen, "event loop setup: %s", uv_strerror(rc));
fail:
    close_handles(srv);
    return rc;
}

void fs_server_stop(fs_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    close_handles(srv);
    fs_faults_stop(&srv->faults);
    fs_conn_close_all(srv);
}

void fs_server_cleanup(fs_server *srv)
{
    fs_faults_free(&srv->faults);
}
