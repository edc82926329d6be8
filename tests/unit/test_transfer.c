/* The transfer layer: its TLS setup (--cacert is read once, before the
 * run, and an unusable file is one clear message), and the plain response
 * it makes of libcurl's answers, against a small server of the test's own
 * on a loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gf/alloc.h"
#include "gf/engine.h"
#include "tmpdir.h"
#include "transfer.h"

/* A self-signed certificate made for this test (no key is needed). */
static const char CERT[] = "-----BEGIN CERTIFICATE-----\n"
                           "MIIBkDCCATWgAwIBAgIUExR57VlE5mJD6uMs7YrWCu9xzMgwCgYIKoZIzj0EAwIw\n"
                           "HTEbMBkGA1UEAwwSZ2V0ZmxhZ3MgdW5pdCB0ZXN0MB4XDTI2MTEyNzA2MjM0M1oX\n"
                           "DTM2MTEyNDA2MjM0M1owHTEbMBkGA1UEAwwSZ2V0ZmxhZ3MgdW5pdCB0ZXN0MFkw\n"
                           "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2Qv++gIIP0rgX6urBP19i8UWyb8edWpO\n"
                           "Wv+w9c6QoPRlW2J+RIXSSHVdv+/5JTxFErIR41r1k36Edzm2AltaTaNTMFEwHQYD\n"
                           "VR0OBBYEFPmOdqMIwRwFa5t/fh6ClgOcaSwRMB8GA1UdIwQYMBaAFPmOdqMIwRwF\n"
                           "a5t/fh6ClgOcaSwRMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh\n"
                           "AJHUukAz3nc5FfZcHhnkPlZfm9kO0wbxdojWwOhw6xExAiEAs9NEk0dgrlcKsB4r\n"
                           "nPkA8HxQ16Ou/rgDqVUmI8XPR2M=\n"
                           "-----END CERTIFICATE-----\n";

static const char *write_temp(const char *text, size_t len)
{
    const char *path = test_path("ca.pem");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_missing_file(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    assert_int_equal(gf_tls_init(&t, "/nonexistent/ca.pem", &st, msg, sizeof msg), -1);
    assert_non_null(
        strstr(msg, "getflags: cannot read --cacert /nonexistent/ca.pem: No such file"));
    assert_null(t.extra);
}

static void test_not_pem(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    const char *p = write_temp("hello\n", 6);
    assert_int_equal(gf_tls_init(&t, p, &st, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "no PEM certificate in it"));
}

static void test_damaged_pem(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    char bad[sizeof CERT];
    memcpy(bad, CERT, sizeof CERT);
    bad[100] = '!'; /* inside the base64 body */
    const char *p = write_temp(bad, strlen(bad));
    assert_int_equal(gf_tls_init(&t, p, &st, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "not a readable PEM certificate file"));
}

static void test_good_bundle_twice(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    char two[2 * sizeof CERT];
    snprintf(two, sizeof two, "%s%s", CERT, CERT);
    const char *p = write_temp(two, strlen(two));
    assert_int_equal(gf_tls_init(&t, p, &st, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    assert_non_null(t.extra);
    assert_ptr_equal(t.stats, &st);
    gf_tls_free(&t);
    assert_null(t.extra);
}

static void test_no_cacert(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    assert_int_equal(gf_tls_init(&t, NULL, &st, msg, sizeof msg), 0);
    assert_null(t.extra);
    /* The options go on an easy handle without error. */
    CURL *e = curl_easy_init();
    assert_non_null(e);
    const char *what = NULL;
    assert_int_equal(gf_tls_setup_easy(&t, e, &what), CURLE_OK);
    curl_easy_cleanup(e);
    gf_tls_free(&t);
}

/* ---- the plain response, from a server of the test's own ---------------- */

/* The answer to a path; NULL: none at all (the client times out). */
static const char *answer_for(const char *path, char *buf, size_t bufsz)
{
    /* The same answers below a base URL with a path. */
    if (strncmp(path, "/base/", 6) == 0)
        path += 5;
    if (strcmp(path, "/redirect") == 0)
        return "HTTP/1.1 301 Moved Permanently\r\nLocation: /final\r\n"
               "ETag: \"of-the-redirect\"\r\n"
               "Last-Modified: Mon, 02 Nov 2026 10:00:00 GMT\r\n"
               "Retry-After: 9\r\nContent-Length: 0\r\n\r\n";
    if (strcmp(path, "/final") == 0)
        return "HTTP/1.1 200 OK\r\nETag: \"final\"\r\nContent-Length: 2\r\n\r\n{}";
    if (strcmp(path, "/seconds") == 0)
        return "HTTP/1.1 503 Busy Here\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy";
    if (strcmp(path, "/date") == 0) {
        char date[64];
        time_t t = time(NULL) + 20;
        struct tm tm;
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
        snprintf(buf, bufsz,
                 "HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\n"
                 "Content-Length: 0\r\n\r\n",
                 date);
        return buf;
    }
    if (strcmp(path, "/plain") == 0)
        return "HTTP/1.1 200 OK\r\nLast-Modified: Tue, 03 Nov 2026 11:00:00 GMT\r\n"
               "Content-Length: 5\r\n\r\nhello";
    if (strcmp(path, "/slow") == 0) {
        usleep(400 * 1000); /* the serving thread only */
        return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow";
    }
    if (strcmp(path, "/teapot") == 0)
        return "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n";
    if (strcmp(path, "/h2-style") == 0)
        return "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n";
    if (strcmp(path, "/twolengths") == 0)
        return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}";
    return NULL;
}

static int listen_fd = -1;
static _Atomic int client_fd = -1; /* the connection being served */
static int server_port;
static pthread_t server_thread;

/* Answers requests one connection at a time, keep-alive. */
static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(listen_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        client_fd = c;
        char req[4096];
        size_t have = 0;
        for (;;) {
            ssize_t n = recv(c, req + have, sizeof req - 1 - have, 0);
            if (n <= 0)
                break;
            have += (size_t)n;
            req[have] = '\0';
            char *end = strstr(req, "\r\n\r\n");
            if (!end)
                continue;
            char path[256] = "";
            sscanf(req, "GET %255s", path);
            char buf[512];
            const char *a = answer_for(path, buf, sizeof buf);
            if (a && send(c, a, strlen(a), MSG_NOSIGNAL) < 0)
                break;
            size_t used = (size_t)(end + 4 - req);
            memmove(req, req + used, have - used + 1);
            have -= used;
        }
        client_fd = -1;
        close(c);
    }
}

static int server_up(void **state)
{
    (void)state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(listen_fd, 16) != 0 || getsockname(listen_fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    server_port = ntohs(a.sin_port);
    return pthread_create(&server_thread, NULL, serve, NULL) == 0 ? 0 : -1;
}

static int server_down(void **state)
{
    (void)state;
    /* A test that failed half-way may have left a connection open. */
    int c = client_fd;
    if (c >= 0)
        shutdown(c, SHUT_RDWR);
    shutdown(listen_fd, SHUT_RDWR);
    pthread_join(server_thread, NULL);
    close(listen_fd);
    return 0;
}

/* One request through the real transfer layer, to its end. */
struct exchange {
    struct gf_response r; /* a copy; body copied into body */
    char body[64];
    int calls;
};

static void on_answer(void *arg, struct gf_response *r)
{
    struct exchange *x = arg;
    x->calls++;
    x->r = *r;
    x->r.body = (struct gf_body_sink){0}; /* the layer drops the original */
    snprintf(x->body, sizeof x->body, "%s", r->body.data ? r->body.data : "");
}

static void on_engine_done(CURL *easy, CURLcode result, unsigned requests, void *arg)
{
    (void)arg;
    gf_curl_done(easy, result, requests);
}

struct client {
    uv_loop_t loop;
    struct gf_engine *engine;
    struct gf_curl *curl;
    char base[64];
};

/* A client of the test's server with base "http://127.0.0.1:PORT" followed
 * by base_path. */
static void client_up_at(struct client *c, uint64_t timeout_ms, const char *base_path)
{
    memset(c, 0, sizeof *c);
    snprintf(c->base, sizeof c->base, "http://127.0.0.1:%d%s", server_port, base_path);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(gf_engine_new(&c->engine, &c->loop, 4, on_engine_done, NULL), 0);
    c->curl = gf_curl_new(&(struct gf_curl_config){
        .engine = c->engine,
        .base_url = c->base,
        .timeout_ms = timeout_ms,
        .http_version = GF_HTTP_AUTO,
        .pool_cap = 2,
    });
    assert_non_null(c->curl);
}

static void client_up(struct client *c, uint64_t timeout_ms)
{
    client_up_at(c, timeout_ms, "");
}

static void client_down(struct client *c)
{
    gf_curl_free(c->curl);
    gf_engine_close(c->engine);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
}

/* Starts a request for path; its answer lands in x once the loop runs. */
static struct gf_transfer *start_get(struct client *c, const char *path, struct exchange *x)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    memset(x, 0, sizeof *x);
    struct gf_request req = {.url = url, .limit = 1024, .dirfd = -1, .cb = on_answer, .arg = x};
    struct gf_transfer *t = NULL;
    char err[512];
    assert_int_equal(gf_curl_transfer_ops.start(c->curl, &req, &t, err, sizeof err), 0);
    assert_non_null(t);
    return t;
}

static void get(struct client *c, const char *path, struct exchange *x)
{
    start_get(c, path, x);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(x->calls, 1);
}

/* Validators and Retry-After come from the final answer only, not from
 * the redirect before it, and nothing is left over from the request
 * before on the same pooled handle. */
static void test_final_answer_headers(void **state)
{
    (void)state;
    struct client c;
    struct exchange x;
    client_up(&c, 5000);
    get(&c, "/redirect", &x);
    assert_int_equal(x.r.kind, GF_XFER_ANSWERED);
    assert_int_equal(x.r.status, 200);
    assert_string_equal(x.body, "{}");
    assert_int_equal(x.r.len, 2);
    assert_int_equal(x.r.content_length, 2);
    assert_string_equal(x.r.etag, "\"final\"");
    assert_string_equal(x.r.last_modified, "");
    assert_int_equal(x.r.retry_after_s, -1);
    assert_string_equal(x.r.reason, "OK");
    assert_string_equal(x.r.http_version, "1.1");
    assert_true(x.r.phases.total > 0);

    get(&c, "/plain", &x);
    assert_int_equal(x.r.status, 200);
    assert_string_equal(x.body, "hello");
    assert_string_equal(x.r.etag, "");
    assert_string_equal(x.r.last_modified, "Tue, 03 Nov 2026 11:00:00 GMT");
    /* One connection for all three requests, the redirect's two hops
     * each counted. */
    assert_int_equal(gf_engine_connections(c.engine), 1);
    assert_int_equal(gf_engine_requests(c.engine), 3);
    client_down(&c);
}

/* The pool keeps handles for the codes that may still ask, no more: with
 * one code left the handle its request used stays, with none it goes,
 * and a request that ends when no code is left does not keep its own. */
static void test_pool_keeps_what_the_run_can_use(void **state)
{
    (void)state;
    struct client c;
    struct exchange x;
    client_up(&c, 5000);
    get(&c, "/plain", &x);
    assert_int_equal(gf_curl_pooled(c.curl), 1);
    gf_curl_codes_left(c.curl, 1);
    assert_int_equal(gf_curl_pooled(c.curl), 1);
    gf_curl_codes_left(c.curl, 0);
    assert_int_equal(gf_curl_pooled(c.curl), 0);
    get(&c, "/plain", &x);
    assert_int_equal(x.r.status, 200);
    assert_string_equal(x.body, "hello");
    assert_int_equal(gf_curl_pooled(c.curl), 0);
    gf_curl_codes_left(c.curl, 2);
    get(&c, "/plain", &x);
    assert_int_equal(gf_curl_pooled(c.curl), 1);
    /* The pool's own cap still holds (2 here). */
    gf_curl_codes_left(c.curl, 10);
    get(&c, "/plain", &x);
    assert_int_equal(gf_curl_pooled(c.curl), 1);
    client_down(&c);
}

/* A hold of one transfer: no room while it runs, though the pacer would
 * let more connection attempts out; its end lifts the hold for good. */
static void test_hold_streams_until_a_transfer_ends(void **state)
{
    (void)state;
    struct client c;
    struct exchange x;
    client_up(&c, 5000);
    assert_true(gf_engine_has_room(c.engine));
    gf_engine_hold_streams(c.engine, 1);
    assert_true(gf_engine_has_room(c.engine));
    start_get(&c, "/plain", &x);
    assert_false(gf_engine_has_room(c.engine));
    uv_run(&c.loop, UV_RUN_DEFAULT);
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.r.status, 200);
    assert_true(gf_engine_has_room(c.engine));
    /* Lifted for good: a transfer running now leaves room. */
    start_get(&c, "/plain", &x);
    assert_true(gf_engine_has_room(c.engine));
    uv_run(&c.loop, UV_RUN_DEFAULT);
    assert_int_equal(x.calls, 1);
    client_down(&c);
}

/* The hold does not wait for a slow answer: it ends about a round trip
 * after the first connection was ready (a few ms here), long before the
 * answer (400 ms). */
static void test_hold_ends_before_a_slow_answer(void **state)
{
    (void)state;
    struct client c;
    struct exchange x;
    client_up(&c, 5000);
    gf_engine_hold_streams(c.engine, 1);
    start_get(&c, "/slow", &x);
    assert_false(gf_engine_has_room(c.engine));
    while (!gf_engine_has_room(c.engine) && x.calls == 0)
        uv_run(&c.loop, UV_RUN_ONCE);
    assert_int_equal(x.calls, 0);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    assert_int_equal(x.calls, 1);
    assert_string_equal(x.body, "slow");
    client_down(&c);
}

/* A hold no smaller than the engine's -m does nothing: four transfers
 * at once (the pacer's first window) leave room. */
static void test_hold_at_or_above_m_is_no_bound(void **state)
{
    (void)state;
    struct client c;
    client_up(&c, 5000); /* an engine for 4 */
    gf_engine_hold_streams(c.engine, 4);
    struct exchange x[4];
    struct gf_transfer *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = start_get(&c, "/plain", &x[i]);
    assert_true(gf_engine_has_room(c.engine));
    for (int i = 0; i < 4; i++) {
        struct gf_phases ph;
        gf_curl_transfer_ops.cancel(c.curl, t[i], &ph);
        assert_true(ph.total >= 0 && ph.transfer == 0);
    }
    client_down(&c);
}

/* Retry-After in seconds and as an HTTP-date; an error body is read but
 * not kept; the reason phrase as sent, "" when there is none. */
static void test_retry_after_and_reason(void **state)
{
    (void)state;
    struct client c;
    struct exchange x;
    client_up(&c, 5000);
    get(&c, "/seconds", &x);
    assert_int_equal(x.r.kind, GF_XFER_ANSWERED);
    assert_int_equal(x.r.status, 503);
    assert_int_equal(x.r.retry_after_s, 7);
    assert_string_equal(x.r.reason, "Busy Here");
    assert_string_equal(x.body, "");
    assert_int_equal(x.r.bytes, 4);

    get(&c, "/date", &x);
    assert_int_equal(x.r.status, 429);
    assert_true(x.r.retry_after_s >= 15 && x.r.retry_after_s <= 21);

    get(&c, "/teapot", &x);
    assert_int_equal(x.r.status, 418);
    assert_string_equal(x.r.reason, "I'm a teapot");
    assert_int_equal(x.r.retry_after_s, -1);

    get(&c, "/h2-style", &x);
    assert_int_equal(x.r.status, 404);
    assert_string_equal(x.r.reason, "");
    client_down(&c);
}

/* A base URL with a path, which libcurl gets parsed once and then with
 * each request's path set: every request on the pooled handles reaches
 * its own path, after a redirect out of the base too. */
static void test_base_with_a_path(void **state)
{
    (void)state;
    struct client c;
    struct exchange x;
    client_up_at(&c, 5000, "/base");
    const char *paths[] = {"/final", "/plain", "/redirect", "/plain", "/final", "/teapot"};
    const char *bodies[] = {"{}", "hello", "{}", "hello", "{}", ""};
    const long statuses[] = {200, 200, 200, 200, 200, 418};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        get(&c, paths[i], &x);
        assert_int_equal(x.r.kind, GF_XFER_ANSWERED);
        assert_int_equal(x.r.status, statuses[i]);
        assert_string_equal(x.body, bodies[i]);
    }
    /* The redirect's Location is /final, outside the base: it was
     * followed as given, and the request after it went back to the base. */
    assert_int_equal(gf_engine_connections(c.engine), 1);
    assert_int_equal(gf_engine_requests(c.engine), 7);
    client_down(&c);
}

/* Two different Content-Lengths stop the transfer at once; no answer
 * within --timeout is a timeout, worded as one, naming the server. */
static void test_failures(void **state)
{
    (void)state;
    struct client c;
    struct exchange x;
    client_up(&c, 1500);
    get(&c, "/twolengths", &x);
    assert_int_equal(x.r.kind, GF_XFER_FAILED);
    assert_string_equal(x.r.error, "not a valid HTTP answer: two different Content-Length headers");

    get(&c, "/silent", &x);
    assert_int_equal(x.r.kind, GF_XFER_TIMEOUT);
    char want[96];
    snprintf(want, sizeof want, "timeout after 1.5 s: no answer from 127.0.0.1 port %d",
             server_port);
    assert_string_equal(x.r.error, want);
    assert_int_equal(x.r.status, 0);
    client_down(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test_setup_teardown(test_not_pem, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_pem, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_good_bundle_twice, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_no_cacert),
        cmocka_unit_test(test_final_answer_headers),
        cmocka_unit_test(test_retry_after_and_reason),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_base_with_a_path),
        cmocka_unit_test(test_pool_keeps_what_the_run_can_use),
        cmocka_unit_test(test_hold_streams_until_a_transfer_ends),
        cmocka_unit_test(test_hold_ends_before_a_slow_answer),
        cmocka_unit_test(test_hold_at_or_above_m_is_no_bound),
    };
    return cmocka_run_group_tests(tests, server_up, server_down);
}
