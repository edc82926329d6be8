#include "gf/alloc.h"
#include "gf/fetch.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gf/error.h"
#include "gf/manifest.h"
#include "gf/names.h"
#include "gf/text.h"
#include "transfer.h"

/* A slow server may hold a transfer for --timeout; a trickling one is cut
 * sooner by curl's low-speed check (see CURLOPT_LOW_SPEED_LIMIT). */
#define LOW_SPEED_BYTES 10
#define LOW_SPEED_SECONDS 30
/* libcurl 7.88 caps one header line, not their sum. */
#define HEADERS_MAX (64 * 1024)
/* Error bodies are read (so the connection can be reused) but not kept. */
#define ERROR_BODY_MAX (64 * 1024)
/* How often one request may go again, without using up --retries, after
 * its connection failed before the server answered anything (a GOAWAY, a
 * reset stream, a keep-alive connection closed under it). */
#define REASK_MAX 3
#define CONNECT_TIMEOUT_MAX_MS 3000
#define RETRY_BASE_S 0.5
#define RETRY_MAX_S 10.0
#define RETRY_AFTER_CAP_S 30

static const char *const state_names[] = {
    [GF_FETCH_IDLE] = "idle",     [GF_FETCH_WAIT_META] = "wait-meta",
    [GF_FETCH_META] = "meta",     [GF_FETCH_WAIT_IMAGE] = "wait-image",
    [GF_FETCH_IMAGE] = "image",   [GF_FETCH_WAIT_START] = "wait-start",
    [GF_FETCH_SAVING] = "saving", [GF_FETCH_RETRY_WAIT] = "retry",
    [GF_FETCH_DONE] = "done",
};

/* The only place a state changes; GF_DEBUG_STATES=1 traces every move. */
static void set_state(struct gf_fetch *f, enum gf_fetch_state next)
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

static void finish(struct gf_fetch *f, enum gf_status status)
{
    if (status != GF_ERROR) {
        gf_free(f->item->error);
        f->item->error = NULL;
    }
    f->item->status = status;
    gf_free(f->country);
    f->country = NULL;
    gf_body_abort(&f->image);
    set_state(f, GF_FETCH_DONE);
    f->env->on_done(f->env->arg, f);
}

/* ---- transfers -------------------------------------------------------- */

static struct gf_transfer *xfer_get(struct gf_fetch *f)
{
    struct gf_fetch_env *env = (struct gf_fetch_env *)f->env;
    if (env->npool > 0)
        return env->pool[--env->npool];
    /* Room for "<base>/<cc>/metadata.json". */
    size_t url_cap = strlen(env->base_url) + 32;
    struct gf_transfer *x = gf_calloc(1, sizeof *x + url_cap);
    if (!x)
        return NULL;
    x->url_cap = url_cap;
    x->easy = curl_easy_init();
    if (!x->easy) {
        gf_free(x);
        return NULL;
    }
    return x;
}

/* Easy handles go back to the pool reset, so no option leaks between
 * requests; connections live in the multi handle, not the easy handle. */
static void xfer_put(struct gf_fetch *f, struct gf_transfer *x)
{
    struct gf_fetch_env *env = (struct gf_fetch_env *)f->env;
    gf_body_abort(&x->body.sink);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    if (env->npool < env->pool_cap) {
        curl_easy_reset(x->easy);
        env->pool[env->npool++] = x;
    } else {
        curl_easy_cleanup(x->easy);
        gf_free(x);
    }
}

void gf_fetch_env_drain_pool(struct gf_fetch_env *env)
{
    while (env->npool > 0) {
        struct gf_transfer *x = env->pool[--env->npool];
        curl_easy_cleanup(x->easy);
        gf_free(x);
    }
}

/* ---- curl callbacks -------------------------------------------------- */

/* Only a 200 carries a whole body: a 206 is a part, a 204 nothing. */
static int is_success(long status)
{
    return status == 200;
}

/* Counts decoded bytes (curl has undone any Content-Encoding before this
 * runs), so a compression bomb stops at the cap, not at the wire size. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct gf_transfer *x = userdata;
    struct gf_body *b = &x->body;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);

    x->fetch->item->bytes += n;
    if (!is_success(status)) {
        /* Read and drop error bodies so the connection can be reused; a
         * long one is cut (and its connection closed), not an error. */
        b->len += n;
        if (b->len > ERROR_BODY_MAX) {
            b->error_body_cut = 1;
            return 0;
        }
        return n;
    }
    /* Too big, out of memory, or the disk is full: stop. */
    if (gf_body_append(&b->sink, ptr, n) != 0)
        return 0;
    b->len += n;
    return n;
}

static void copy_reason(struct gf_transfer *x, const char *line, size_t n)
{
    /* "HTTP/1.1 418 I'm a teapot\r\n": skip version and code. */
    size_t i = 0;
    while (i < n && line[i] != ' ')
        i++;
    while (i < n && line[i] == ' ')
        i++;
    while (i < n && line[i] != ' ' && line[i] != '\r' && line[i] != '\n')
        i++;
    while (i < n && line[i] == ' ')
        i++;
    size_t end = n;
    while (end > i && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
        end--;
    size_t len = end - i;
    if (len >= sizeof x->reason)
        len = sizeof x->reason - 1;
    memcpy(x->reason, line + i, len);
    x->reason[len] = '\0';
}

/* Keeps a header value for the manifest: trimmed, and dropped (left
 * empty) when it does not fit or breaks gf_header_value_ok(), since it
 * goes back to the server in a request header. */
static void copy_value(char *out, size_t outsz, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    out[0] = '\0';
    if (n == 0 || n >= outsz)
        return;
    if (!gf_header_value_ok(v, n))
        return;
    memcpy(out, v, n);
    out[n] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    struct gf_transfer *x = userdata;
    size_t n = size * nmemb;
    x->body.header_bytes += n;
    if (x->body.header_bytes > HEADERS_MAX) {
        x->body.headers_too_big = 1;
        return 0;
    }
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or a 1xx) starts afresh. */
        x->body.content_length = -1;
        x->body.bad_length = x->body.conflicting_length = x->body.encoded = 0;
        x->reason[0] = '\0';
        x->etag[0] = '\0';
        x->last_modified[0] = '\0';
        x->retry_after_s = -1;
        copy_reason(x, line, n);
    } else if (n > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
        char tmp[32];
        copy_value(tmp, sizeof tmp, line + 15, n - 15);
        char *end;
        errno = 0;
        long long v = tmp[0] >= '0' && tmp[0] <= '9' ? strtoll(tmp, &end, 10) : -1;
        if (v < 0 || errno == ERANGE || *end != '\0') {
            x->body.bad_length = 1;
        } else if (x->body.content_length >= 0 && x->body.content_length != v) {
            /* Which one frames the body is anyone's guess: stop here. */
            x->body.conflicting_length = 1;
            return 0;
        } else {
            x->body.content_length = v;
        }
    } else if (n > 17 && strncasecmp(line, "Content-Encoding:", 17) == 0) {
        x->body.encoded = 1;
    } else if (n > 5 && strncasecmp(line, "ETag:", 5) == 0) {
        copy_value(x->etag, sizeof x->etag, line + 5, n - 5);
    } else if (n > 14 && strncasecmp(line, "Last-Modified:", 14) == 0) {
        copy_value(x->last_modified, sizeof x->last_modified, line + 14, n - 14);
    } else if (n > 12 && strncasecmp(line, "Retry-After:", 12) == 0) {
        char tmp[64];
        size_t len = n - 12 < sizeof tmp - 1 ? n - 12 : sizeof tmp - 1;
        memcpy(tmp, line + 12, len);
        tmp[len] = '\0';
        char *end;
        long v = strtol(tmp, &end, 10);
        /* The delta-seconds form, saturated at LONG_MAX; CURLINFO_RETRY_AFTER
         * gives the HTTP-date form. */
        if (end != tmp && v >= 0)
            x->retry_after_s = v;
    }
    return n;
}

/* ---- requests -------------------------------------------------------- */

static void on_permit(struct gf_sem_waiter *w);

static void request(struct gf_fetch *f, int is_image)
{
    f->is_image = is_image;
    f->queued_at = now_s(f);
    set_state(f, is_image ? GF_FETCH_WAIT_IMAGE : GF_FETCH_WAIT_META);
    f->waiter.data = f;
    gf_sem_acquire(f->env->sem, &f->waiter, is_image ? GF_SEM_HIGH : GF_SEM_LOW, on_permit);
}

/* The CURL_HTTP_VERSION_* for the run's --http1.1 / --http2 choice. */
static long http_version(const struct gf_fetch_env *env)
{
    switch (env->http_version) {
    case GF_HTTP_1_1:
        return CURL_HTTP_VERSION_1_1;
    case GF_HTTP_2:
        /* Over plain http there is no ALPN: h2c with prior knowledge. */
        return strncasecmp(env->base_url, "https:", 6) == 0 ? CURL_HTTP_VERSION_2TLS
                                                            : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    case GF_HTTP_AUTO:
        break;
    }
    /* HTTP/2 where ALPN offers it, HTTP/1.1 otherwise. */
    return CURL_HTTP_VERSION_2TLS;
}

/* Half the request's timeout, between 1 s (a short --timeout governs the
 * connection itself) and CONNECT_TIMEOUT_MAX_MS. */
static uint64_t connect_timeout_ms(const struct gf_fetch_env *env)
{
    uint64_t t = env->timeout_ms / 2;
    if (t < 1000)
        t = 1000;
    return t < CONNECT_TIMEOUT_MAX_MS ? t : CONNECT_TIMEOUT_MAX_MS;
}

/* Whether requests may be multiplexed: over TLS (ALPN decides), with
 * --http2 (prior knowledge), or once a plain http base was seen to
 * redirect to https. */
static int may_multiplex(const struct gf_fetch_env *env)
{
    if (env->http_version == GF_HTTP_1_1)
        return 0;
    return env->redirects_to_tls || strncasecmp(env->base_url, "https:", 6) == 0;
}

/* Sets up x for f's next request. Returns CURLE_OK, or the error of the
 * option that failed with its name in *what. */
static CURLcode setup_easy(struct gf_fetch *f, struct gf_transfer *x, const char **what)
{
    const struct gf_fetch_env *env = f->env;
    const char *cc = f->item->cc;
    CURL *e = x->easy;
    char lc[3] = {(char)(cc[0] | 0x20), (char)(cc[1] | 0x20), '\0'};
    int n = f->is_image ? snprintf(x->url, x->url_cap, "%s/%s/%s.gif", env->base_url, lc, lc)
                        : snprintf(x->url, x->url_cap, "%s/%s/metadata.json", env->base_url, lc);
    *what = NULL;
    if (n < 0 || (size_t)n >= x->url_cap) {
        *what = "the URL";
        return CURLE_URL_MALFORMAT;
    }

    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK) {                                                                      \
            rc = curl_easy_setopt(e, opt, val);                                                    \
            if (rc != CURLE_OK)                                                                    \
                *what = #opt;                                                                      \
        }                                                                                          \
    } while (0)
    SET(CURLOPT_URL, &x->url[0]);
    SET(CURLOPT_PRIVATE, f);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)env->timeout_ms);
    /* A connection attempt that goes unanswered (a SYN dropped by a full
     * listen queue) is given up well before the request's timeout, so
     * that a retry can try again soon. */
    if (connect_timeout_ms(env) < env->timeout_ms)
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms(env));
    SET(CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_BYTES);
    SET(CURLOPT_LOW_SPEED_TIME, (long)LOW_SPEED_SECONDS);
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, 5L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_USERAGENT, "getflags/" GF_VERSION);
    SET(CURLOPT_HTTP_VERSION, http_version(env));
    /* Wait for a connection being set up to the same host to say whether
     * it multiplexes, rather than racing a handshake per request. Only
     * where it can: libcurl never learns that a plain http connection
     * does not multiplex, and would queue every request behind it. */
    SET(CURLOPT_PIPEWAIT, may_multiplex(env) ? 1L : 0L);
    SET(CURLOPT_SHARE, env->share);
    /* Never wait for a resolver thread stuck on a silent DNS server when
     * a transfer is removed (its timeout, an interrupt). */
    SET(CURLOPT_QUICK_EXIT, 1L);
    const struct gf_prev *p = f->prev;
    const char *etag = NULL, *lm = NULL;
    if (p && !f->is_image) {
        etag = p->meta_etag;
        lm = p->meta_last_modified;
    } else if (p && f->image_conditional) {
        etag = p->image_etag;
        lm = p->image_last_modified;
    }
    if (etag || lm) {
        char h[GF_HEADER_VALUE_MAX + 32];
        struct curl_slist *list = NULL, *next;
        if (etag) {
            snprintf(h, sizeof h, "If-None-Match: %s", etag);
            next = curl_slist_append(list, h);
            if (!next) {
                rc = CURLE_OUT_OF_MEMORY;
                *what = "the request headers";
            } else {
                list = next;
            }
        }
        if (lm && rc == CURLE_OK) {
            snprintf(h, sizeof h, "If-Modified-Since: %s", lm);
            next = curl_slist_append(list, h);
            if (!next) {
                rc = CURLE_OUT_OF_MEMORY;
                *what = "the request headers";
            } else {
                list = next;
            }
        }
        x->headers = list;
        SET(CURLOPT_HTTPHEADER, x->headers);
    }
#undef SET
    if (rc == CURLE_OK && env->tls)
        rc = gf_tls_setup_easy(env->tls, e, what);
    return rc;
}

static void on_permit(struct gf_sem_waiter *w)
{
    struct gf_fetch *f = w->data;
    struct gf_phases *ph = f->is_image ? &f->item->image : &f->item->meta;
    ph->sem_wait = now_s(f) - f->queued_at;
    if (f->env->gate && !f->env->gate(f->env->arg, f)) {
        set_state(f, GF_FETCH_WAIT_START);
        return;
    }
    gf_fetch_begin(f);
}

static int url_host(const char *url, char *host, size_t hostsz);

void gf_fetch_begin(struct gf_fetch *f)
{
    set_state(f, f->is_image ? GF_FETCH_IMAGE : GF_FETCH_META);
    f->started_at = now_s(f);
    if (f->env->unresolvable[0] && f->attempt == 0) {
        char host[sizeof f->env->unresolvable];
        if (url_host(f->env->base_url, host, sizeof host) == 0 &&
            strcmp(host, f->env->unresolvable) == 0) {
            set_error(f, "cannot resolve host %s (nor for earlier requests)", host);
            gf_sem_release(f->env->sem);
            finish(f, GF_ERROR);
            return;
        }
    }
    struct gf_transfer *x = xfer_get(f);
    if (x) {
        x->fetch = f;
        x->body = (struct gf_body){0};
        gf_body_init(&x->body.sink, f->is_image ? (size_t)f->env->max_size : GF_METADATA_MAX,
                     f->is_image ? GF_BODY_SPILL_AT : 0, f->env->saver->dirfd, f->is_image);
        x->reason[0] = '\0';
        x->errbuf[0] = '\0';
        x->etag[0] = '\0';
        x->last_modified[0] = '\0';
        x->retry_after_s = -1;
    }
    const char *what = NULL;
    CURLcode rc = x ? setup_easy(f, x, &what) : CURLE_OK;
    int err = !x               ? GF_ENOMEM
              : rc != CURLE_OK ? GF_ECURL
                               : gf_engine_start(f->env->engine, x->easy, f->env->timeout_ms);
    if (err != 0) {
        if (!x)
            set_error(f, "cannot start the request: out of memory for a transfer");
        else if (rc != CURLE_OK)
            set_error(f, "cannot start the request: setting %s failed: %s", what,
                      curl_easy_strerror(rc));
        else
            set_error(f, "cannot start the request: %s",
                      err == GF_ENOMEM ? "out of memory" : gf_engine_strerror(f->env->engine));
        if (x)
            xfer_put(f, x);
        gf_sem_release(f->env->sem);
        finish(f, GF_ERROR);
        return;
    }
    f->xfer = x;
    f->item->requests++;
    gf_free(f->item->url);
    /* The URL users see: without the password of the base. */
    const char *shown = f->env->base_url_display ? f->env->base_url_display : f->env->base_url;
    const char *cc = f->item->cc;
    char lc[3] = {(char)(cc[0] | 0x20), (char)(cc[1] | 0x20), '\0'};
    size_t n = strlen(shown) + 32;
    f->item->url = gf_malloc(n);
    if (f->item->url) {
        if (f->is_image)
            snprintf(f->item->url, n, "%s/%s/%s.gif", shown, lc, lc);
        else
            snprintf(f->item->url, n, "%s/%s/metadata.json", shown, lc);
    }
}

static double secs(curl_off_t us)
{
    return us > 0 ? (double)us / 1e6 : 0.0;
}

static void record_phases(struct gf_fetch *f, CURL *e)
{
    struct gf_phases *ph = f->is_image ? &f->item->image : &f->item->meta;
    curl_off_t dns = 0, conn = 0, app = 0, pre = 0, start = 0, total = 0;
    curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &dns);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &conn);
    curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &app);
    curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &start);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
    /* curl's times are cumulative from the start of the transfer. */
    ph->dns = secs(dns);
    ph->connect = conn > dns ? secs(conn - dns) : 0.0;
    ph->tls = app > conn ? secs(app - conn) : 0.0;
    ph->first_byte = start > pre ? secs(start - pre) : 0.0;
    ph->transfer = total > start ? secs(total - start) : 0.0;
    ph->total = secs(total);
}

/* The host (escaped for printing) and port of url; "?" and 0 when it
 * cannot be parsed. Returns 0 when the host is known. */
static int url_host_port(const char *url, char *host, size_t hostsz, long *port)
{
    snprintf(host, hostsz, "?");
    *port = 0;
    CURLU *u = url ? curl_url() : NULL;
    if (!u)
        return -1;
    char *h = NULL, *p = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK) {
        gf_escape_for_print(h, strlen(h), host, hostsz);
        rc = 0;
        if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK)
            *port = strtol(p, NULL, 10);
    }
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

static int url_host(const char *url, char *host, size_t hostsz)
{
    long port;
    return url_host_port(url, host, hostsz, &port);
}

/* libcurl's words for a name lookup that ran out of time: "Resolving
 * timed out after N ms", or "Failed to resolve host 'h' with timeout
 * after N ms" when the time was spent before the lookup began. */
static int is_dns_timeout(const char *detail)
{
    return strncmp(detail, "Resolving timed out", 19) == 0 ||
           strncmp(detail, "Failed to resolve host", 22) == 0;
}

/* The host and port the transfer last tried, from its effective URL
 * (after redirects). */
static void host_port(CURL *e, char *host, size_t hostsz, long *port)
{
    char *url = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
    url_host_port(url, host, hostsz, port);
}

static int is_dns_failure(const struct gf_transfer *x, CURLcode rc)
{
    return rc == CURLE_COULDNT_RESOLVE_HOST ||
           (rc == CURLE_OPERATION_TIMEDOUT && is_dns_timeout(x->errbuf));
}

/* Returns the reason for a transport failure in words a user can act on. */
static void describe_curl_error(struct gf_fetch *f, const struct gf_transfer *x, CURLcode rc,
                                const struct gf_body *body, char *out, size_t outsz)
{
    long os_errno = 0;
    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    char safe[256], host[128];
    long port;
    double timeout_s = (double)f->env->timeout_ms / 1000.0;
    gf_escape_for_print(detail, strlen(detail), safe, sizeof safe);
    host_port(x->easy, host, sizeof host, &port);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        if (strstr(detail, "too slow"))
            snprintf(out, outsz, "too slow: under %d bytes/s for %d s", LOW_SPEED_BYTES,
                     LOW_SPEED_SECONDS);
        else if (is_dns_timeout(detail))
            snprintf(out, outsz, "cannot resolve host %s: no answer from DNS within %g s", host,
                     timeout_s);
        else if (strstr(detail, "onnect") && connect_timeout_ms(f->env) < f->env->timeout_ms)
            /* The connect timeout, not the request's, ran out. */
            snprintf(out, outsz, "cannot connect to %s port %ld: no answer within %g s", host, port,
                     (double)connect_timeout_ms(f->env) / 1000.0);
        else
            snprintf(out, outsz, "timeout after %g s", timeout_s);
        break;
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ECONNREFUSED)
            snprintf(out, outsz, "connection refused by %s port %ld", host, port);
        else
            snprintf(out, outsz, "cannot connect to %s port %ld: %s", host, port, safe);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out, outsz, "cannot resolve host %s", host);
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        snprintf(out, outsz, "too many redirects (more than 5)");
        break;
    case CURLE_UNSUPPORTED_PROTOCOL: {
        long redirects = 0;
        curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &redirects);
        if (redirects > 0 || strstr(detail, "rotocol"))
            snprintf(out, outsz, "refused redirect to a non-HTTP(S) URL: %s", safe);
        else
            snprintf(out, outsz, "not a valid HTTP answer: %s", safe);
        break;
    }
    case CURLE_WEIRD_SERVER_REPLY:
        snprintf(out, outsz, "not a valid HTTP answer: %s", safe);
        break;
    case CURLE_PARTIAL_FILE:
        snprintf(out, outsz, "body shorter than its Content-Length");
        break;
    case CURLE_RECV_ERROR:
        if (os_errno == ECONNRESET)
            snprintf(out, outsz, "connection reset by the server");
        else
            snprintf(out, outsz, "receive failed: %s", safe);
        break;
    case CURLE_GOT_NOTHING:
        snprintf(out, outsz, "the server closed the connection without answering");
        break;
    case CURLE_BAD_CONTENT_ENCODING:
        snprintf(out, outsz, "cannot decode the body: %s", safe);
        break;
    case CURLE_WRITE_ERROR:
        if (body->conflicting_length)
            snprintf(out, outsz, "not a valid HTTP answer: two different Content-Length headers");
        else if (body->headers_too_big)
            snprintf(out, outsz, "response headers larger than %d bytes", HEADERS_MAX);
        else if (body->sink.too_big)
            snprintf(out, outsz, "body larger than %zu bytes", body->sink.limit);
        else if (body->sink.err != 0)
            snprintf(out, outsz, "cannot save the image: %s failed: %s (%zu bytes received)",
                     body->sink.step, uv_strerror(body->sink.err), body->len);
        else if (body->len > ERROR_BODY_MAX)
            snprintf(out, outsz, "error body larger than %d bytes", ERROR_BODY_MAX);
        else
            snprintf(out, outsz, "out of memory");
        break;
    default:
        snprintf(out, outsz, "%s", safe);
        break;
    }
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

/* A request the server never answered, on a connection that failed under
 * it (an HTTP/2 GOAWAY or stream reset, a reused keep-alive connection the
 * server had closed): asking again on a new connection is safe for a GET
 * and is no failure of the server's. */
static int unanswered(const struct gf_transfer *x, CURLcode rc)
{
    if (x->body.header_bytes != 0)
        return 0;
    long new_conns = 0;
    switch (rc) {
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &new_conns);
        return new_conns == 0;
    default:
        return 0;
    }
}

static int retryable_status(long s)
{
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static int retryable_code(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
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
    }
    set_state(f, GF_FETCH_RETRY_WAIT);
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
    set_state(f, GF_FETCH_SAVING);
    f->save.userdata = f;
    /* The old file of a renamed country goes, unless another code of this
     * run has its name: claiming it keeps any later code off it. */
    f->save.replaces = f->replaces && strcmp(f->replaces, name) != 0 &&
                               f->env->claim_name(f->env->arg, f->item->cc, f->replaces)
                           ? f->replaces
                           : NULL;
    gf_body_save(&f->image, f->env->saver, &f->save, f->item->file, on_saved);
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
    f->item->file_bytes = f->image.len;
    finish(f, GF_OK);
}

/* Decides what a finished transfer means for the code. Runs while the
 * permit is still held; the caller returns it afterwards. */
/* Keeps the validators of an answer for the manifest; a 304 without its
 * own keeps the ones it confirmed. */
static void keep_validators(struct gf_fetch *f, const struct gf_transfer *x, long status)
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

static int is_overload(CURLcode rc, long status)
{
    return rc == CURLE_OPERATION_TIMEDOUT || (rc == CURLE_OK && (status == 429 || status == 503));
}

/* A 304 to a conditional request: the metadata or the image is as it was
 * in the last run. */
static void handle_not_modified(struct gf_fetch *f, const struct gf_transfer *x)
{
    const struct gf_prev *p = f->prev;
    if (!x->headers || !p) {
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
static void handle_metadata(struct gf_fetch *f, const struct gf_body *body)
{
    const char *bad = NULL;
    char name[GF_NAME_MAX + 1];
    int err =
        gf_metadata_country(body->sink.data ? body->sink.data : "", body->len, &f->country, &bad);
    /* Refuse an unusable name now, so its image is never requested. */
    if (err == 0)
        err = gf_name_from_country(f->country, strlen(f->country), NULL, name, sizeof name, &bad);
    if (err != 0) {
        set_error(f, "bad metadata: %s", err == GF_ENOMEM ? "out of memory" : bad);
        finish(f, GF_ERROR);
        return;
    }
    const struct gf_prev *p = f->prev;
    if (p && strcmp(name, p->file) == 0) {
        f->image_conditional = 1;
    } else if (p) {
        /* The country's name changed: a new file, whatever the image. */
        f->image_conditional = 0;
        f->replaces = p->file;
    }
    f->attempt = 0;
    f->reasked = 0;
    request(f, 1);
}

/* Decides what a finished transfer means for the code. Runs while the
 * permit is still held; the caller returns it afterwards. */
static void handle_result(struct gf_fetch *f, const struct gf_transfer *x, CURLcode rc,
                          struct gf_body *body)
{
    const struct gf_fetch_env *env = f->env;
    CURL *e = x->easy;
    long status = 0;
    char why[512];
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    /* A long error page was cut short on purpose: the status decides. */
    if (rc == CURLE_WRITE_ERROR && body->error_body_cut && !is_success(status))
        rc = CURLE_OK;
    if (status > 0) {
        f->item->http_status = (int)status;
        ((struct gf_fetch_env *)env)->unresolvable[0] = '\0';
    }

    if (rc != CURLE_OK && f->reasked < REASK_MAX && unanswered(x, rc)) {
        f->reasked++;
        if (env->verbose) {
            describe_curl_error(f, x, rc, body, why, sizeof why);
            fprintf(env->verbose, "%s asked again on a new connection after: %s\n", f->item->cc,
                    why);
        }
        request(f, f->is_image);
        return;
    }

    /* A refusal pauses the host (and with -m auto lowers the limit); the
     * run decides whether the request waits its turn again without using
     * up --retries. */
    if (is_overload(rc, status) && env->on_overload &&
        env->on_overload(env->arg, f->started_at, rc == CURLE_OK ? status : 0,
                         (double)f->retry_after_s)) {
        if (env->verbose)
            fprintf(env->verbose, "%s asked again after %s\n", f->item->cc,
                    rc == CURLE_OK ? (status == 429 ? "HTTP 429" : "HTTP 503") : "a timeout");
        request(f, f->is_image);
        return;
    }
    if (env->on_success && rc == CURLE_OK && (is_success(status) || status == 304 || status == 404))
        env->on_success(env->arg, f->started_at);

    if (rc != CURLE_OK) {
        describe_curl_error(f, x, rc, body, why, sizeof why);
        if (is_dns_failure(x, rc)) {
            /* Codes that have not asked yet need not each wait out a DNS
             * timeout of their own: the host is marked until it answers. */
            struct gf_fetch_env *w = (struct gf_fetch_env *)env;
            char *url = NULL;
            curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
            if (url_host(url, w->unresolvable, sizeof w->unresolvable) != 0)
                w->unresolvable[0] = '\0';
        }
        if (retryable_code(rc) && schedule_retry(f, why) == 0)
            return;
        set_error(f, "%s", why);
        finish(f, GF_ERROR);
        return;
    }
    if (status == 404) {
        finish(f, GF_NOT_FOUND);
        return;
    }
    if (status == 304) {
        keep_validators(f, x, status);
        handle_not_modified(f, x);
        return;
    }
    if (!is_success(status)) {
        /* The reason phrase is kept as sent: the report, the JSON and the
         * -v retry line each escape it once, where it is printed. */
        snprintf(why, sizeof why, "HTTP error %ld - %s", status,
                 x->reason[0] ? x->reason : standard_reason(status));
        if (retryable_status(status) && schedule_retry(f, why) == 0)
            return;
        set_error(f, "%s", why);
        finish(f, GF_ERROR);
        return;
    }
    if (body->bad_length) {
        set_error(f, "not a valid HTTP answer: unusable Content-Length header");
        finish(f, GF_ERROR);
        return;
    }
    if (!body->encoded && body->content_length >= 0 &&
        (unsigned long long)body->content_length != body->len) {
        /* libcurl ends a body at a connection close it sees as normal. */
        set_error(f, "body of %zu bytes where Content-Length said %lld", body->len,
                  body->content_length);
        finish(f, GF_ERROR);
        return;
    }
    keep_validators(f, x, status);
    if (!f->is_image) {
        handle_metadata(f, body);
        return;
    }

    /* Every flag is a GIF: anything else (an HTML error page served with
     * 200, a body cut short) must never be saved as one. */
    char gif_err[160];
    if (gf_body_finish(&body->sink, gif_err, sizeof gif_err) != 0) {
        set_error(f, "%s (%zu bytes received)", gif_err, body->len);
        finish(f, GF_ERROR);
        return;
    }
    f->image = body->sink;
    body->sink = (struct gf_body_sink){0};
    start_save(f);
}

void gf_fetch_transfer_done(struct gf_fetch *f, CURL *easy, CURLcode result)
{
    struct gf_transfer *x = f->xfer;
    f->xfer = NULL;
    record_phases(f, easy);
    char *eff = NULL;
    if (!f->env->redirects_to_tls &&
        curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff &&
        strncasecmp(eff, "https:", 6) == 0)
        ((struct gf_fetch_env *)f->env)->redirects_to_tls = 1;
    long version = 0;
    curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
    const char *v = version == CURL_HTTP_VERSION_1_0   ? "1.0"
                    : version == CURL_HTTP_VERSION_1_1 ? "1.1"
                    : version == CURL_HTTP_VERSION_2_0 ? "2"
                    : version == CURL_HTTP_VERSION_3   ? "3"
                                                       : NULL;
    if (v)
        snprintf(f->item->http_version, sizeof f->item->http_version, "%s", v);
    long new_conns = 0;
    if (f->env->conn && curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &new_conns) == CURLE_OK &&
        new_conns > 0)
        f->env->conn->opened += (uint64_t)new_conns;
    struct gf_phases *ph = f->is_image ? &f->item->image : &f->item->meta;
    f->env->on_request(f->env->arg, ph->total * 1000.0, x->body.len);
    /* libcurl reads both forms of Retry-After; 7.88 gives a date in the
     * past as a negative delay and a number too large for curl_off_t as
     * 0, so a large number is taken from the header parse (saturated). */
    curl_off_t ra = 0;
    if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        f->retry_after_s = ra < LONG_MAX ? (long)ra : LONG_MAX;
    else
        f->retry_after_s = x->retry_after_s > 0 ? x->retry_after_s : -1;
    /* The body leaves the transfer before handling; what is not taken
     * over (as the image to save) is freed here. */
    struct gf_body body = x->body;
    x->body = (struct gf_body){0};
    handle_result(f, x, result, &body);
    gf_body_abort(&body.sink);
    xfer_put(f, x);
    /* Hand the permit on only now: a follow-up request is already queued. */
    gf_sem_release(f->env->sem);
}

void gf_fetch_init(struct gf_fetch *f, const struct gf_fetch_env *env, struct gf_item *item,
                   const struct gf_prev *prev)
{
    memset(f, 0, sizeof *f);
    f->env = env;
    f->item = item;
    f->prev = prev;
    f->retry_after_s = -1;
    item->save_s = -1;
    item->meta = item->image = (struct gf_phases){-1, -1, -1, -1, -1, -1, -1};
}

void gf_fetch_start(struct gf_fetch *f)
{
    request(f, 0);
}

void gf_fetch_cancel(struct gf_fetch *f)
{
    switch (f->state) {
    case GF_FETCH_WAIT_META:
    case GF_FETCH_WAIT_IMAGE:
        gf_sem_cancel(f->env->sem, &f->waiter);
        break;
    case GF_FETCH_META:
    case GF_FETCH_IMAGE:
        gf_engine_cancel(f->env->engine, f->xfer->easy);
        xfer_put(f, f->xfer);
        f->xfer = NULL;
        gf_sem_release(f->env->sem);
        break;
    case GF_FETCH_WAIT_START:
        f->env->gate_cancel(f->env->arg, f);
        gf_sem_release(f->env->sem);
        break;
    case GF_FETCH_RETRY_WAIT:
        uv_timer_stop(f->retry_timer);
        break;
    case GF_FETCH_SAVING:
        /* on_saved reports: ended if the write ran, pending if not. */
        gf_save_cancel(&f->save);
        return;
    case GF_FETCH_IDLE:
    case GF_FETCH_DONE:
        return;
    }
    finish(f, GF_PENDING);
}

static void on_timer_closed(uv_handle_t *h)
{
    gf_free(h);
}

void gf_fetch_close(struct gf_fetch *f)
{
    gf_free(f->country);
    f->country = NULL;
    gf_body_abort(&f->image);
    if (f->retry_timer) {
        uv_close((uv_handle_t *)f->retry_timer, on_timer_closed);
        f->retry_timer = NULL;
    }
}
