#include "gf/alloc.h"
#include "transfer.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gf/engine.h"
#include "gf/error.h"
#include "gf/names.h"
#include "gf/text.h"

/* A slow server may hold a transfer for --timeout; a trickling one is cut
 * sooner by curl's low-speed check (see CURLOPT_LOW_SPEED_LIMIT). */
#define LOW_SPEED_BYTES 10
#define LOW_SPEED_SECONDS 30
/* libcurl 7.88 caps one header line, not their sum. */
#define HEADERS_MAX (64 * 1024)
/* Informational (1xx) answers allowed before the final one: servers send
 * one or two (100 Continue, 103 Early Hints). Hundreds on concurrent
 * HTTP/2 streams have libcurl 7.88 hand one stream's bytes to another. */
#define INFORMATIONAL_MAX 10
/* Error bodies are read (so the connection can be reused) but not kept. */
#define ERROR_BODY_MAX (64 * 1024)
#define CONNECT_TIMEOUT_MAX_MS 3000
#define MAX_REDIRECTS 5

struct gf_curl {
    struct gf_curl_config cfg;
    /* A host whose name could not be resolved: later first attempts to it
     * end at once with the same error rather than each waiting out its
     * own DNS timeout. "" when none; cleared by any answer. */
    char unresolvable[256];
    /* The last host whose name a request of this run resolved. */
    char resolved[256];
    int redirects_to_tls; /* a request ended at an https URL */
    /* An answer over TLS came in HTTP/1.1: ALPN chose it, so the host does
     * not multiplex, and waiting for its connections would queue new
     * requests behind a busy one. */
    int tls_http1;
    /* None of the proxy variables libcurl reads is set: it is then told
     * so once per handle instead of reading them for every request. */
    int no_proxy_env;
    /* The base URL parsed once, when libcurl would write it exactly as
     * given (so that a request's URL is this with a longer path): each
     * transfer then hands libcurl a copy with its path set (CURLOPT_CURLU)
     * instead of a string it parses again for every request. NULL
     * otherwise. base_len is strlen(cfg.base_url); base_path its path. */
    CURLU *base_uh;
    size_t base_len;
    char base_path[256];
    struct gf_transfer **pool;
    size_t npool;
    /* Handles out of the pool (a request's), and how many handles the run
     * can still use at once: one per code not yet done (see
     * gf_curl_codes_left). */
    size_t busy;
    size_t codes_left;
};

/* What one transfer has received so far. */
struct body {
    struct gf_body_sink sink; /* a 200's body, in memory or in a file */
    size_t len;               /* body bytes of the answer, kept or not */
    uint64_t received;        /* decoded bytes of any status */
    size_t header_bytes;      /* all response headers, redirects included */
    int headers_too_big;
    unsigned informational; /* 1xx answers so far */
    int too_many_informational;
    int error_body_cut; /* a non-200 body stopped at its bound: its status decides */
    int page_wants_tls; /* a 400 page saying the port speaks TLS */
    /* Of the last answer: its Content-Length (-1 when absent), whether it
     * was unusable or given twice with different values. */
    long long content_length;
    int bad_length, conflicting_length;
    /* Which of the headers read afterwards the last answer has (SEEN_*),
     * so that curl_easy_header() is asked only for those; and whether its
     * header block has ended (what follows are trailers). */
    unsigned seen;
    int headers_ended;
};

#define SEEN_ETAG 1u
#define SEEN_LAST_MODIFIED 2u
#define SEEN_CONTENT_ENCODING 4u
#define SEEN_RETRY_AFTER 8u

/* One HTTP request in flight: an easy handle and what it has received.
 * Only as many exist as permits are held, so what is per request lives
 * here and not in the per-code state, which exists for every code. */
struct gf_transfer {
    CURL *easy;
    struct gf_curl *curl;
    gf_response_cb cb;
    void *arg;
    struct body body;
    char reason[96]; /* status phrase of the last answer */
    char errbuf[CURL_ERROR_SIZE];
    unsigned long alloc_failures; /* gf_alloc_failures() when it started */
    struct curl_slist *headers;   /* conditional request headers, or NULL */
    long pipewait;                /* CURLOPT_PIPEWAIT as set on the handle */
    CURLU *uh;                    /* the URL as CURLOPT_CURLU, or NULL */
    uint64_t started_ns;          /* uv_hrtime() when it was handed over */
    long connect_ms;              /* CURLOPT_CONNECTTIMEOUT_MS as set, 0: none */
    unsigned attempt;             /* the request's, 0 for a first attempt */
    int lookup_skipped;           /* its host was known unresolvable */
    int lookup_started;           /* curl began a name lookup for it */
};

/* Only a 200 carries a whole body: a 206 is a part, a 204 nothing. */
static int is_success(long status)
{
    return status == 200;
}

/* ---- callbacks --------------------------------------------------------- */

/* Whether a 400 page is the one nginx or Apache send for plain HTTP to a
 * port that speaks TLS; the status line alone cannot tell it from any
 * other bad request. Only the start of the page is looked at. */
static int says_port_wants_tls(const char *p, size_t n)
{
    static const char *const words[] = {"plain HTTP request was sent to HTTPS port",
                                        "plain HTTP to an SSL-enabled server port"};
    if (n > 2048)
        n = 2048;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (memmem(p, n, words[i], strlen(words[i])) != NULL)
            return 1;
    return 0;
}

/* Counts decoded bytes (curl has undone any Content-Encoding before this
 * runs), so a compression bomb stops at the cap, not at the wire size. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct gf_transfer *x = userdata;
    struct body *b = &x->body;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);

    b->received += n;
    if (!is_success(status)) {
        /* Read and drop error bodies so the connection can be reused; a
         * long one is cut (and its connection closed), not an error. */
        if (status == 400 && b->len < 2048 && !b->page_wants_tls)
            b->page_wants_tls = says_port_wants_tls(ptr, n);
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

/* Only what libcurl 7.88 does not do: a cap on all headers together, the
 * reason phrase, and Content-Length given twice with different values
 * (which one frames the body is anyone's guess, so the transfer stops
 * before curl picks one). Every other header is read afterwards through
 * curl_easy_header(). */
static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    struct gf_transfer *x = userdata;
    struct body *b = &x->body;
    size_t n = size * nmemb;
    b->header_bytes += n;
    if (b->header_bytes > HEADERS_MAX) {
        b->headers_too_big = 1;
        return 0;
    }
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        const char *code = memchr(line, ' ', n);
        if (code && code + 1 < line + n && code[1] == '1' &&
            ++b->informational > INFORMATIONAL_MAX) {
            b->too_many_informational = 1;
            return 0;
        }
        /* A new response (after a redirect or a 1xx) starts afresh. */
        b->content_length = -1;
        b->bad_length = b->conflicting_length = 0;
        b->seen = 0;
        b->headers_ended = 0;
        b->page_wants_tls = 0;
        copy_reason(x, line, n);
        return n;
    }
    if (line[0] == '\r' || line[0] == '\n') {
        b->headers_ended = 1;
        return n;
    }
    if (b->headers_ended)
        return n; /* a trailer */
    switch (line[0] | 0x20) {
    case 'e':
        if (n > 5 && strncasecmp(line, "ETag:", 5) == 0)
            b->seen |= SEEN_ETAG;
        return n;
    case 'l':
        if (n > 14 && strncasecmp(line, "Last-Modified:", 14) == 0)
            b->seen |= SEEN_LAST_MODIFIED;
        return n;
    case 'r':
        if (n > 12 && strncasecmp(line, "Retry-After:", 12) == 0)
            b->seen |= SEEN_RETRY_AFTER;
        return n;
    case 'c':
        if (n > 17 && strncasecmp(line, "Content-Encoding:", 17) == 0) {
            b->seen |= SEEN_CONTENT_ENCODING;
            return n;
        }
        break;
    default:
        return n;
    }
    if (n > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
        char tmp[32];
        copy_value(tmp, sizeof tmp, line + 15, n - 15);
        char *end;
        errno = 0;
        long long v = tmp[0] >= '0' && tmp[0] <= '9' ? strtoll(tmp, &end, 10) : -1;
        if (v < 0 || errno == ERANGE || *end != '\0') {
            b->bad_length = 1;
        } else if (b->content_length >= 0 && b->content_length != v) {
            b->conflicting_length = 1;
            return 0;
        } else {
            b->content_length = v;
        }
    }
    return n;
}

/* ---- the easy-handle pool ------------------------------------------------ */

/* The CURL_HTTP_VERSION_* for the run's --http1.1 / --http2 choice. */
static long http_version(const struct gf_curl_config *cfg)
{
    switch (cfg->http_version) {
    case GF_HTTP_1_1:
        return CURL_HTTP_VERSION_1_1;
    case GF_HTTP_2:
        /* Over plain http there is no ALPN: h2c with prior knowledge. */
        return strncasecmp(cfg->base_url, "https:", 6) == 0 ? CURL_HTTP_VERSION_2TLS
                                                            : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    case GF_HTTP_AUTO:
        break;
    }
    /* HTTP/2 where ALPN offers it, HTTP/1.1 otherwise. */
    return CURL_HTTP_VERSION_2TLS;
}

/* Half the request's timeout, between 1 s (a short --timeout governs the
 * connection itself) and CONNECT_TIMEOUT_MAX_MS, for a plain http base.
 * Over https libcurl's connect phase takes in the TLS handshake too, two
 * or three round trips that a slow link (1.8 s on a satellite hop) cannot
 * fit in 3 s: the request's timeout governs it there (returned as is),
 * and the pacer gives up on a SYN the server drops once a round trip is
 * known. */
static uint64_t connect_timeout_ms(const struct gf_curl_config *cfg)
{
    if (strncasecmp(cfg->base_url, "https:", 6) == 0)
        return cfg->timeout_ms;
    uint64_t t = cfg->timeout_ms / 2;
    if (t < 1000)
        t = 1000;
    return t < CONNECT_TIMEOUT_MAX_MS ? t : CONNECT_TIMEOUT_MAX_MS;
}

/* Whether a request may wait for a connection being set up to learn if
 * it multiplexes: over TLS (ALPN decides), a plain http base included
 * once it was seen to redirect to https, until an answer showed that
 * ALPN chose HTTP/1.1. */
static int may_multiplex(const struct gf_curl *c)
{
    if (c->cfg.http_version == GF_HTTP_1_1 || c->tls_http1)
        return 0;
    return c->redirects_to_tls || strncasecmp(c->cfg.base_url, "https:", 6) == 0;
}

/* Sets an option; on failure keeps the first failing option's name. */
#define SET(e, rc, what, opt, val)                                                                 \
    do {                                                                                           \
        if ((rc) == CURLE_OK) {                                                                    \
            (rc) = curl_easy_setopt((e), opt, val);                                                \
            if ((rc) != CURLE_OK)                                                                  \
                *(what) = #opt;                                                                    \
        }                                                                                          \
    } while (0)

static int url_host_port(const char *url, char *host, size_t hostsz, long *port);

/* The message of a first attempt to a host an earlier request found
 * unresolvable, ended without a lookup of its own. */
#define KNOWN_UNRESOLVABLE "cannot resolve host %s (nor for earlier requests)"

/* 1 when a first attempt (attempt 0) to url's host should end at once:
 * an earlier request of the run found the name unresolvable. */
static int known_unresolvable(const struct gf_curl *c, unsigned attempt, const char *url,
                              char *host, size_t hostsz)
{
    long port;
    return attempt == 0 && c->unresolvable[0] && url_host_port(url, host, hostsz, &port) == 0 &&
           strcmp(host, c->unresolvable) == 0;
}

/* CURLOPT_RESOLVER_START_FUNCTION. A first attempt that waited in the
 * engine (for the first connection's ALPN) while an earlier request found
 * its host unresolvable ends now, as one started after that would
 * (on_start), instead of waiting out a DNS timeout of its own. */
static int on_resolver_start(void *resolver, void *reserved, void *arg)
{
    (void)resolver;
    (void)reserved;
    struct gf_transfer *x = arg;
    x->lookup_started = 1;
    char host[sizeof x->curl->unresolvable];
    char *url = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
    x->lookup_skipped = known_unresolvable(x->curl, x->attempt, url, host, sizeof host);
    return x->lookup_skipped;
}

/* The options that are the same for every request of the run, set once
 * when the handle is made: a pooled handle keeps them (it is never
 * reset), so a request sets only its URL, headers and PIPEWAIT. */
static CURLcode setup_once(struct gf_curl *c, struct gf_transfer *x, const char **what)
{
    const struct gf_curl_config *cfg = &c->cfg;
    CURL *e = x->easy;
    CURLcode rc = CURLE_OK;
    SET(e, rc, what, CURLOPT_PRIVATE, x);
    SET(e, rc, what, CURLOPT_WRITEFUNCTION, on_body);
    SET(e, rc, what, CURLOPT_WRITEDATA, x);
    SET(e, rc, what, CURLOPT_HEADERFUNCTION, on_header);
    SET(e, rc, what, CURLOPT_HEADERDATA, x);
    SET(e, rc, what, CURLOPT_ERRORBUFFER, x->errbuf);
    SET(e, rc, what, CURLOPT_NOSIGNAL, 1L);
    SET(e, rc, what, CURLOPT_RESOLVER_START_FUNCTION, on_resolver_start);
    SET(e, rc, what, CURLOPT_RESOLVER_START_DATA, x);
    SET(e, rc, what, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
    /* A connection attempt that goes unanswered (a SYN dropped by a full
     * listen queue) is given up well before the request's timeout, so
     * that a retry can try again soon. */
    if (connect_timeout_ms(cfg) < cfg->timeout_ms) {
        SET(e, rc, what, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms(cfg));
        x->connect_ms = (long)connect_timeout_ms(cfg);
    }
    SET(e, rc, what, CURLOPT_LOW_SPEED_LIMIT, (long)LOW_SPEED_BYTES);
    SET(e, rc, what, CURLOPT_LOW_SPEED_TIME, (long)LOW_SPEED_SECONDS);
    SET(e, rc, what, CURLOPT_FOLLOWLOCATION, 1L);
    SET(e, rc, what, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    SET(e, rc, what, CURLOPT_PROTOCOLS_STR, "http,https");
    SET(e, rc, what, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* No compression is asked for: a metadata.json is about 100 bytes,
     * which gzip makes larger, and a GIF is compressed already; each
     * compressed answer would cost a zlib state (40 KiB) and, with libcurl
     * 7.88 over HTTP/2, an RST_STREAM frame sent after it. A server that
     * compresses anyway is still understood: libcurl decodes whatever
     * coding it knows, and every cap counts decoded bytes. */
    SET(e, rc, what, CURLOPT_ACCEPT_ENCODING, "identity");
    SET(e, rc, what, CURLOPT_USERAGENT, "getflags/" GF_VERSION);
    SET(e, rc, what, CURLOPT_HTTP_VERSION, http_version(cfg));
    SET(e, rc, what, CURLOPT_SHARE, cfg->share);
    /* Never wait for a resolver thread stuck on a silent DNS server when
     * a transfer is removed (its timeout, an interrupt). */
    SET(e, rc, what, CURLOPT_QUICK_EXIT, 1L);
    if (c->no_proxy_env) {
        SET(e, rc, what, CURLOPT_PROXY, "");
        SET(e, rc, what, CURLOPT_NOPROXY, "");
    }
    if (rc == CURLE_OK && cfg->tls)
        rc = gf_tls_setup_easy(cfg->tls, e, what);
    return rc;
}

static void xfer_free(struct gf_transfer *x)
{
    if (!x)
        return;
    curl_easy_cleanup(x->easy);
    curl_url_cleanup(x->uh);
    gf_free(x);
}

/* A transfer from the pool, or a new one with its run-wide options set.
 * NULL with *what and *rc saying why. */
static struct gf_transfer *xfer_get(struct gf_curl *c, const char **what, CURLcode *rc)
{
    *rc = CURLE_OK;
    if (c->npool > 0) {
        c->busy++;
        return c->pool[--c->npool];
    }
    struct gf_transfer *x = gf_calloc(1, sizeof *x);
    if (!x) {
        *rc = CURLE_OUT_OF_MEMORY;
        *what = "";
        return NULL;
    }
    x->curl = c;
    x->easy = curl_easy_init();
    if (!x->easy) {
        gf_free(x);
        *rc = CURLE_FAILED_INIT;
        *what = "";
        return NULL;
    }
    *rc = setup_once(c, x, what);
    if (*rc == CURLE_OK && c->base_uh) {
        x->uh = curl_url_dup(c->base_uh);
        if (!x->uh) {
            *rc = CURLE_OUT_OF_MEMORY;
            *what = "the URL";
        } else if ((*rc = curl_easy_setopt(x->easy, CURLOPT_CURLU, x->uh)) != CURLE_OK) {
            *what = "CURLOPT_CURLU";
        }
    }
    if (*rc != CURLE_OK) {
        xfer_free(x);
        return NULL;
    }
    c->busy++;
    return x;
}

/* Back to the pool: what belongs to the request goes; the options set once
 * stay. Connections live in the multi handle, not the easy handle. A
 * handle the run can no longer use is freed instead: an idle one still
 * holds its last answer's headers and request lines inside libcurl (about
 * 1.5 KB; B3's 676 handles grew the heap by 1 MiB after its peak of
 * requests in flight). */
static void xfer_put(struct gf_curl *c, struct gf_transfer *x)
{
    c->busy--;
    gf_body_abort(&x->body.sink);
    if (x->headers) {
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(x->headers);
        x->headers = NULL;
    }
    x->cb = NULL;
    x->arg = NULL;
    if (c->npool < c->cfg.pool_cap && c->npool + c->busy < c->codes_left)
        c->pool[c->npool++] = x;
    else
        xfer_free(x);
}

size_t gf_curl_pooled(const struct gf_curl *c)
{
    return c->npool;
}

void gf_curl_codes_left(struct gf_curl *c, size_t n)
{
    if (!c)
        return;
    c->codes_left = n;
    while (c->npool > 0 && c->npool + c->busy > n)
        xfer_free(c->pool[--c->npool]);
}

/* Sets c->base_uh when the base URL, parsed as libcurl parses a
 * CURLOPT_URL, comes back unchanged and has no query or fragment: then
 * "<base>/<rest>" is that URL with "/<rest>" added to its path. Else (or
 * out of memory) requests go by CURLOPT_URL. */
static void parse_base(struct gf_curl *c)
{
    CURLU *u = curl_url();
    char *back = NULL, *path = NULL, *query = NULL, *frag = NULL;
    const unsigned flags = CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME;
    c->base_len = strlen(c->cfg.base_url);
    if (u && curl_url_set(u, CURLUPART_URL, c->cfg.base_url, flags) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &back, 0) == CURLUE_OK &&
        strcmp(back, c->cfg.base_url) == 0 &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK &&
        strlen(path) < sizeof c->base_path - 32 &&
        curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY &&
        curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_NO_FRAGMENT) {
        /* A base ending in "/" would give "//" in what follows. */
        size_t n = strlen(path);
        if (n > 0 && path[n - 1] != '/') {
            memcpy(c->base_path, path, n + 1);
            c->base_uh = u;
            u = NULL;
        }
    }
    curl_free(back);
    curl_free(path);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
}

struct gf_curl *gf_curl_new(const struct gf_curl_config *cfg)
{
    struct gf_curl *c = gf_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    /* What libcurl 7.88 looks up: no_proxy, then <scheme>_proxy, then
     * HTTPS_PROXY, then all_proxy, each in both cases. */
    static const char *const proxy_env[] = {"no_proxy",   "NO_PROXY",    "http_proxy",
                                            "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                            "all_proxy",  "ALL_PROXY"};
    c->no_proxy_env = 1;
    for (size_t i = 0; i < sizeof proxy_env / sizeof proxy_env[0]; i++)
        if (getenv(proxy_env[i]))
            c->no_proxy_env = 0;
    parse_base(c);
    if (may_multiplex(c) && cfg->engine) {
        gf_engine_hold_streams(cfg->engine, GF_ENGINE_STREAMS_BEFORE_SETTINGS);
        gf_engine_one_until_connected(cfg->engine);
    }
    c->codes_left = SIZE_MAX;
    c->pool = gf_calloc(cfg->pool_cap ? cfg->pool_cap : 1, sizeof *c->pool);
    if (!c->pool) {
        curl_url_cleanup(c->base_uh);
        gf_free(c);
        return NULL;
    }
    return c;
}

void gf_curl_free(struct gf_curl *c)
{
    if (!c)
        return;
    while (c->npool > 0)
        xfer_free(c->pool[--c->npool]);
    gf_free(c->pool);
    curl_url_cleanup(c->base_uh);
    gf_free(c);
}

/* ---- hosts, errors, timings ---------------------------------------------- */

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

/* The host and port the transfer last tried, from its effective URL
 * (after redirects). */
static int host_port(CURL *e, char *host, size_t hostsz, long *port)
{
    char *url = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
    return url_host_port(url, host, hostsz, port);
}

/* libcurl's words for a name lookup that ran out of time: "Resolving
 * timed out after N ms", or "Failed to resolve host 'h' with timeout
 * after N ms" when the time was spent before the lookup began. */
static int is_dns_timeout(const char *detail)
{
    return strncmp(detail, "Resolving timed out", 19) == 0 ||
           strncmp(detail, "Failed to resolve host", 22) == 0;
}

/* An address, which needs no DNS: "192.0.2.1", "[2001:db8::1]". */
static int is_ip_literal(const char *host)
{
    unsigned char buf[16];
    char v6[64];
    size_t n = strlen(host);
    if (inet_pton(AF_INET, host, buf) == 1)
        return 1;
    if (n < 2 || n - 2 >= sizeof v6 || host[0] != '[' || host[n - 1] != ']')
        return 0;
    memcpy(v6, host + 1, n - 2);
    v6[n - 2] = '\0';
    return inet_pton(AF_INET6, v6, buf) == 1;
}

/* libcurl 7.88 also says "Resolving timed out" for a request that waited
 * on a connection still in its TLS handshake: believed only for a name
 * that no request of the run has resolved. */
static int dns_timed_out(const struct gf_transfer *x, const char *detail, const char *host)
{
    return is_dns_timeout(detail) && !is_ip_literal(host) && strcmp(host, x->curl->resolved) != 0;
}

static int is_dns_failure(const struct gf_transfer *x, CURLcode rc, const char *host)
{
    return rc == CURLE_COULDNT_RESOLVE_HOST ||
           (rc == CURLE_OPERATION_TIMEDOUT && dns_timed_out(x, x->errbuf, host));
}

static double secs(curl_off_t us)
{
    return us > 0 ? (double)us / 1e6 : 0.0;
}

/* curl's times are cumulative from the start of the transfer. total_us:
 * the whole time when the caller knows better than curl (a transfer
 * stopped mid-way, whose total curl updates only when it runs it), else
 * negative. */
static void read_phases(CURL *e, struct gf_phases *ph, curl_off_t total_us, int lookup_started)
{
    curl_off_t dns = 0, conn = 0, app = 0, pre = 0, start = 0, total = 0;
    curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &dns);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &conn);
    curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &app);
    curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &start);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
    if (total_us >= 0 && total_us > total)
        total = total_us;
    ph->sem_wait = -1;
    ph->dns = secs(dns);
    ph->connect = conn > dns ? secs(conn - dns) : 0.0;
    ph->tls = app > conn ? secs(app - conn) : 0.0;
    ph->first_byte = start > pre ? secs(start - pre) : 0.0;
    ph->transfer = total > start ? secs(total - start) : 0.0;
    ph->total = secs(total);
    if (start <= 0) {
        /* It ended before an answer began (a timeout, a failure): the time
         * after the last step reached is the step under way, not the
         * transfer of a body that never came. */
        curl_off_t last = pre > 0 ? pre : app > 0 ? app : conn > 0 ? conn : dns;
        double rest = total > last ? secs(total - last) : 0.0;
        ph->transfer = 0.0;
        if (pre > 0)
            ph->first_byte = rest;
        else if (conn > 0)
            ph->tls = rest;
        else if (dns > 0 || !lookup_started)
            /* No lookup begun: it waited for a connection (curl holds a
             * request for a multiplexed one before resolving). */
            ph->connect = rest;
        else
            ph->dns = rest;
    }
}

/* Which limit ended a CURLE_OPERATION_TIMEDOUT, from the transfer's
 * timings and the limits this layer set (not from curl's wording): the
 * connect timeout while no connection was ready, the low-speed check on
 * a connection that was transferring before the request's timeout came. */
enum timeout_kind {
    TIMEOUT_REQUEST,
    TIMEOUT_CONNECT, /* libcurl's connect timeout (plain http) */
    TIMEOUT_NO_TLS,  /* the request's, before its TLS connection was made */
    /* the connect timeout, on the TLS handshake of a redirect's target */
    TIMEOUT_REDIRECT_TLS,
    TIMEOUT_LOW_SPEED
};

static enum timeout_kind which_timeout(const struct gf_curl_config *cfg, CURL *e, long connect_ms)
{
    curl_off_t pre = 0, total = 0;
    curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
    uint64_t total_ms = total > 0 ? (uint64_t)total / 1000 : 0;
    int connect_limit = connect_ms > 0;
    /* Redirected from http to https, before the limit for connecting to
     * the http base ran out: libcurl 7.88 applies it to the target's TLS
     * handshake too (pre counts the first leg's). */
    long redirects = 0;
    char *eff = NULL;
    curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
    if (connect_limit && redirects > 0 && total_ms < cfg->timeout_ms && eff &&
        strncasecmp(eff, "https:", 6) == 0)
        return TIMEOUT_REDIRECT_TLS;
    /* libcurl 7.88 times the TCP connect only once TLS is done too, so
     * the two cannot be told apart here. */
    if (pre <= 0 && !connect_limit && strncasecmp(cfg->base_url, "https:", 6) == 0)
        return TIMEOUT_NO_TLS;
    if (pre <= 0)
        return connect_limit && total_ms < cfg->timeout_ms ? TIMEOUT_CONNECT : TIMEOUT_REQUEST;
    if (total_ms + 1 < cfg->timeout_ms && total_ms >= (uint64_t)LOW_SPEED_SECONDS * 1000)
        return TIMEOUT_LOW_SPEED;
    return TIMEOUT_REQUEST;
}

/* Why this layer's own callbacks stopped the transfer, if they did: 1 and
 * the reason in out, else 0. libcurl reports such a stop as a write error
 * over HTTP/1.1, but over HTTP/2 as a failed receive or a reset stream. */
static int own_reason(const struct body *body, char *out, size_t outsz)
{
    if (body->conflicting_length)
        snprintf(out, outsz, "not a valid HTTP answer: two different Content-Length headers");
    else if (body->too_many_informational)
        snprintf(out, outsz, "not a valid HTTP answer: more than %d informational (1xx) answers",
                 INFORMATIONAL_MAX);
    else if (body->headers_too_big)
        snprintf(out, outsz, "response headers larger than %d bytes", HEADERS_MAX);
    else if (body->sink.too_big)
        snprintf(out, outsz, "%s larger than %zu byte%s%s",
                 body->sink.is_gif ? "image" : "metadata", body->sink.limit,
                 body->sink.limit == 1 ? "" : "s", body->sink.is_gif ? " (--max-size)" : "");
    else if (body->sink.err != 0)
        snprintf(out, outsz, "cannot save the image: %s failed: %s (%zu bytes received)",
                 body->sink.step, uv_strerror(body->sink.err), body->len);
    else
        return 0;
    return 1;
}

/* The text after libcurl's "...returned -NNN:" for an nghttp2 error
 * (nghttp2's own words for what the server got wrong), or NULL. */
static const char *nghttp2_words(const char *detail)
{
    const char *p = strstr(detail, "nghttp2_session_mem_recv() returned ");
    if (!p)
        return NULL;
    p = strchr(p, ':');
    return p && p[1] ? p + 1 : NULL;
}

/* The error code of a stream reset, as libcurl 7.88 words it: "HTTP/2
 * stream N was not closed cleanly: CODE (err N)"; "error code N" for one
 * nghttp2 has no name for. 0 when detail names none. */
static int stream_reset_code(const char *detail, char *code, size_t codesz)
{
    static const char lead[] = " was not closed cleanly: ";
    const char *p = strstr(detail, lead);
    if (!p)
        return 0;
    p += sizeof lead - 1;
    size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
    unsigned long err;
    if (n > 0 && n < codesz && p[n] == ' ') {
        memcpy(code, p, n);
        code[n] = '\0';
    } else if (sscanf(p + strcspn(p, "("), "(err %lu)", &err) == 1) {
        snprintf(code, codesz, "error code %lu", err);
    } else {
        return 0;
    }
    return 1;
}

/* An HTTP/2 answer nghttp2 refused, in its words (escaped). */
static void say_not_valid_h2(char *out, size_t outsz, const char *host, long port, const char *h2)
{
    char words[256];
    gf_escape_for_print(h2, strlen(h2), words, sizeof words);
    snprintf(out, outsz, "not a valid HTTP/2 answer from %s port %ld: %s", host, port, words);
}

/* Removes the password of every "scheme://user:password@host" in s:
 * libcurl's messages quote a proxy's URL as given (from http_proxy, say),
 * and they end up on stderr and in the manifest. */
static void drop_url_passwords(char *s)
{
    char *p = s;
    while ((p = strstr(p, "://")) != NULL) {
        char *auth = p + 3;
        size_t end = strcspn(auth, "/ \t'\"");
        char *at = NULL;
        for (size_t i = 0; i < end; i++)
            if (auth[i] == '@')
                at = auth + i;
        char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon)
            memmove(colon, at, strlen(at) + 1);
        p = auth;
    }
}

/* "HOST port N" out of libcurl's "Failed to connect to HOST port N ...",
 * which names where it really connected: a proxy's address, where the
 * URL's would mislead. 1 when found. */
static int connected_to(const char *detail, char *host, size_t hostsz, long *port)
{
    static const char lead[] = "Failed to connect to ";
    const char *h = strstr(detail, lead);
    if (!h)
        return 0;
    h += sizeof lead - 1;
    const char *sp = strstr(h, " port ");
    if (!sp || (size_t)(sp - h) >= hostsz || sp == h)
        return 0;
    char *end;
    long n = strtol(sp + 6, &end, 10);
    if (end == sp + 6 || n <= 0 || n > 65535)
        return 0;
    memcpy(host, h, (size_t)(sp - h));
    host[sp - h] = '\0';
    *port = n;
    return 1;
}

enum speaks { SPEAKS_EITHER, SPEAKS_HTTP1, SPEAKS_HTTP2 };

/* What a failed request may have spoken, from the run's choice and the
 * scheme of its last hop: libcurl tells the version of an answer only. */
static enum speaks may_speak(const struct gf_curl *c, CURL *easy)
{
    char *eff = NULL;
    int tls = curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff
                  ? strncasecmp(eff, "https:", 6) == 0
                  : strncasecmp(c->cfg.base_url, "https:", 6) == 0;
    if (c->cfg.http_version == GF_HTTP_1_1 || (tls && c->tls_http1))
        return SPEAKS_HTTP1;
    if (!tls)
        return c->cfg.http_version == GF_HTTP_2 ? SPEAKS_HTTP2 : SPEAKS_HTTP1;
    return SPEAKS_EITHER; /* ALPN decides, --http2 or not */
}

/* How a server drops a request it does not answer, by what was spoken. */
static const char *const dropped_how[] = {
    [SPEAKS_EITHER] = "closed the connection, or refused the HTTP/2 stream",
    [SPEAKS_HTTP1] = "closed the connection each time",
    [SPEAKS_HTTP2] = "refused the HTTP/2 stream, or closed the connection",
};

/* The reason for a transport failure in words a user can act on. */
static void describe_curl_error(const struct gf_transfer *x, CURLcode rc, char *out, size_t outsz)
{
    const struct gf_curl_config *cfg = &x->curl->cfg;
    const struct body *body = &x->body;
    long os_errno = 0;
    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
    char said[CURL_ERROR_SIZE];
    snprintf(said, sizeof said, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
    drop_url_passwords(said);
    const char *detail = said;
    char safe[256], host[128], via[128];
    long port, via_port;
    double timeout_s = (double)cfg->timeout_ms / 1000.0;
    gf_escape_for_print(detail, strlen(detail), safe, sizeof safe);
    host_port(x->easy, host, sizeof host, &port);
    /* Connected elsewhere than the URL says: through a proxy. */
    int proxied = rc == CURLE_COULDNT_CONNECT && !x->curl->no_proxy_env &&
                  connected_to(detail, via, sizeof via, &via_port) &&
                  (via_port != port || strcmp(via, host) != 0);
    if (proxied) {
        char shown[sizeof via + 8];
        snprintf(shown, sizeof shown, "proxy %s", via);
        gf_escape_for_print(shown, strlen(shown), host, sizeof host);
        port = via_port;
    }
    if (own_reason(body, out, outsz))
        return;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        if (dns_timed_out(x, detail, host)) {
            /* Resolving is part of connecting: over plain http the limit
             * for connecting, half of --timeout, may be the one that ran
             * out. */
            double limit_s = which_timeout(cfg, x->easy, x->connect_ms) == TIMEOUT_CONNECT
                                 ? (double)connect_timeout_ms(cfg) / 1000.0
                                 : timeout_s;
            snprintf(out, outsz, "cannot resolve host %s: no answer from DNS within %g s", host,
                     limit_s);
            break;
        }
        switch (which_timeout(cfg, x->easy, x->connect_ms)) {
        case TIMEOUT_LOW_SPEED:
            snprintf(out, outsz, "too slow: under %d bytes/s for %d s", LOW_SPEED_BYTES,
                     LOW_SPEED_SECONDS);
            break;
        case TIMEOUT_CONNECT:
            snprintf(out, outsz, "cannot connect to %s port %ld: no answer within %g s", host, port,
                     (double)connect_timeout_ms(cfg) / 1000.0);
            break;
        case TIMEOUT_REDIRECT_TLS:
            snprintf(out, outsz,
                     "cannot connect to %s port %ld: no TLS connection (TCP, then the handshake) "
                     "within %g s, the limit for connecting to an http:// base (the requests "
                     "after this one, now known to be redirected to https, wait up to "
                     "--timeout)",
                     host, port, (double)x->connect_ms / 1000.0);
            break;
        case TIMEOUT_NO_TLS:
            snprintf(out, outsz,
                     "cannot connect to %s port %ld: no TLS connection (TCP, then the handshake) "
                     "within %g s",
                     host, port, timeout_s);
            break;
        case TIMEOUT_REQUEST: {
            /* Which server, and how far its answer got: a server that
             * never answers and one that stalls mid-body are mended
             * differently. The body count is the last hop's. */
            curl_off_t got = 0, size = -1;
            curl_easy_getinfo(x->easy, CURLINFO_SIZE_DOWNLOAD_T, &got);
            curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &size);
            if (got > 0 && size > 0)
                snprintf(out, outsz, "timeout after %g s: %s port %ld had sent %lld of %lld bytes",
                         timeout_s, host, port, (long long)got, (long long)size);
            else if (got > 0)
                snprintf(out, outsz, "timeout after %g s: %s port %ld had sent %lld bytes",
                         timeout_s, host, port, (long long)got);
            else if (body->header_bytes == 0)
                snprintf(out, outsz, "timeout after %g s: no answer from %s port %ld", timeout_s,
                         host, port);
            else
                snprintf(out, outsz, "timeout after %g s: %s port %ld had sent no body", timeout_s,
                         host, port);
            break;
        }
        }
        break;
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ECONNREFUSED)
            snprintf(out, outsz, "connection refused by %s port %ld", host, port);
        else
            snprintf(out, outsz, "cannot connect to %s port %ld: %s", host, port, safe);
        break;
    case CURLE_COULDNT_RESOLVE_HOST: {
        if (x->lookup_skipped) {
            snprintf(out, outsz, KNOWN_UNRESOLVABLE, host);
            break;
        }
        /* libcurl names the host it looked up: a SOCKS proxy's, say. */
        static const char lead[] = "Could not resolve host: ";
        const char *name = strstr(safe, lead);
        if (name && !x->curl->no_proxy_env && strcmp(name + sizeof lead - 1, host) != 0)
            snprintf(out, outsz, "cannot resolve the proxy's host %s", name + sizeof lead - 1);
        else
            snprintf(out, outsz, "cannot resolve host %s", host);
        break;
    }
    case CURLE_COULDNT_RESOLVE_PROXY: {
        static const char lead[] = "Could not resolve proxy: ";
        const char *name = strstr(safe, lead);
        if (name)
            snprintf(out, outsz, "cannot resolve the proxy's host %s", name + sizeof lead - 1);
        else
            snprintf(out, outsz, "cannot use the proxy: %s", safe);
        break;
    }
    case CURLE_TOO_MANY_REDIRECTS:
        snprintf(out, outsz, "too many redirects (more than %d)", MAX_REDIRECTS);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL: {
        long redirects = 0;
        curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &redirects);
        if (redirects > 0 || strstr(detail, "rotocol"))
            snprintf(out, outsz, "refused redirect to a non-HTTP(S) URL: %s", safe);
        else if (strstr(detail, "HTTP/0.9"))
            /* What libcurl makes of an answer that does not start with a
             * status line: an HTTP/2 frame, say. */
            snprintf(out, outsz,
                     "not a valid HTTP answer from %s port %ld: no HTTP/1.x status line (a port "
                     "for HTTP/2 only, or not an HTTP server?)",
                     host, port);
        else
            snprintf(out, outsz, "not a valid HTTP answer: %s", safe);
        break;
    }
    case CURLE_WEIRD_SERVER_REPLY:
        snprintf(out, outsz, "not a valid HTTP answer: %s", safe);
        break;
    case CURLE_PARTIAL_FILE: {
        long version = 0;
        curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version);
        if (body->header_bytes == 0)
            snprintf(out, outsz, "the connection to %s port %ld ended before an answer", host,
                     port);
        else if (body->content_length >= 0)
            snprintf(out, outsz, "body shorter than its Content-Length");
        else if (version >= CURL_HTTP_VERSION_2_0)
            snprintf(out, outsz, "body cut short: the connection ended mid-answer");
        else
            snprintf(out, outsz, "body cut short: the connection ended before its last chunk");
        break;
    }
    case CURLE_SSL_CONNECT_ERROR:
        /* OpenSSL's words for a server that answered in plain text. */
        if (strstr(detail, "wrong version number") || strstr(detail, "packet length too long"))
            snprintf(out, outsz,
                     "TLS handshake with %s port %ld failed: the server did not answer in TLS "
                     "(a plain HTTP port? then use http://)",
                     host, port);
        else
            snprintf(out, outsz, "TLS handshake with %s port %ld failed: %s", host, port, safe);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        /* A CA cannot mend a certificate made out to another name. */
        if (strstr(detail, "subject name"))
            snprintf(out, outsz, "the certificate of %s port %ld is for another host name: %s",
                     host, port, safe);
        else if (strstr(detail, "has expired") || strstr(detail, "not yet valid"))
            snprintf(out, outsz,
                     "the certificate of %s port %ld is out of its dates: %s (or this machine's "
                     "clock is wrong)",
                     host, port, safe);
        else
            snprintf(out, outsz,
                     "the certificate of %s port %ld is not trusted: %s (--cacert FILE adds a CA)",
                     host, port, safe);
        break;
    case CURLE_HTTP2_STREAM: {
        long status = 0;
        char code[32];
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        /* nghttp2 itself resets a stream with PROTOCOL_ERROR when the
         * answer breaks HTTP/2's rules, so then it may not be the server. */
        if (strstr(detail, "PROTOCOL_ERROR"))
            snprintf(out, outsz,
                     "not a valid HTTP/2 answer from %s port %ld: the stream ended in "
                     "PROTOCOL_ERROR %s (reset by the server, or an answer that breaks HTTP/2: a "
                     "missing :status, a forbidden header, a body unlike its Content-Length)",
                     host, port, status == 0 ? "before an answer" : "mid-answer");
        /* libcurl drops headers that came in the same read as the reset:
         * without a status the server may still have answered in part. */
        else if (stream_reset_code(detail, code, sizeof code))
            snprintf(out, outsz, "%s port %ld reset the HTTP/2 stream (%s) %s", host, port, code,
                     status != 0 ? "mid-answer" : "before its answer was complete");
        else if (status != 0)
            snprintf(out, outsz, "%s port %ld reset the HTTP/2 stream mid-answer: %s", host, port,
                     safe);
        else
            snprintf(out, outsz,
                     "%s port %ld ended the HTTP/2 stream before its answer was complete: %s", host,
                     port, safe);
        break;
    }
    case CURLE_HTTP2: {
        const char *h2 = nghttp2_words(detail);
        if (h2)
            say_not_valid_h2(out, outsz, host, port, h2);
        else if (!x->errbuf[0])
            /* libcurl has no words of its own when the HTTP/2 session had
             * ended under the request: a GOAWAY from the server (it takes
             * no more requests there), or the connection closed. */
            snprintf(out, outsz,
                     "%s port %ld ended the HTTP/2 connection %s (a GOAWAY, or a close)", host,
                     port, body->header_bytes == 0 ? "before answering" : "mid-answer");
        else
            snprintf(out, outsz, "HTTP/2 failed with %s port %ld: %s", host, port, safe);
        break;
    }
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR: {
        int tries = 0;
        long version = 0;
        const char *h2 = nghttp2_words(detail);
        curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version);
        if (rc == CURLE_RECV_ERROR && os_errno == ECONNRESET)
            snprintf(out, outsz, "connection reset by %s port %ld", host, port);
        else if (sscanf(detail, "Connection died, tried %d times", &tries) == 1)
            /* libcurl's own re-sends of a request the server dropped:
             * tries of them after the first. */
            snprintf(out, outsz,
                     "%s port %ld dropped the request %d times in a row without answering (%s)",
                     host, port, tries + 1, dropped_how[may_speak(x->curl, x->easy)]);
        else if (h2)
            say_not_valid_h2(out, outsz, host, port, h2);
        else if (rc == CURLE_RECV_ERROR && !x->errbuf[0] && body->header_bytes != 0 &&
                 version >= CURL_HTTP_VERSION_2_0)
            /* libcurl 7.88's one receive error over HTTP/2 with no words:
             * REFUSED_STREAM, which it asks again itself only before any
             * of the answer came. */
            snprintf(out, outsz, "%s port %ld reset the HTTP/2 stream (REFUSED_STREAM) mid-answer",
                     host, port);
        else if (rc == CURLE_SEND_ERROR)
            snprintf(out, outsz, "sending to %s port %ld failed: %s", host, port, safe);
        else
            snprintf(out, outsz, "receiving from %s port %ld failed: %s", host, port, safe);
        break;
    }
    case CURLE_OUT_OF_MEMORY:
        /* libcurl also says so, with no message, for an answer's header
         * line longer than it takes (100 KB). An allocation of its that
         * failed settles it; without one, memory may still have run short
         * elsewhere (OpenSSL, the C library), so both are named. */
        if (gf_alloc_failures() == x->alloc_failures)
            snprintf(out, outsz,
                     "out of memory, or a response header line longer than libcurl accepts "
                     "(100 KB)");
        else
            snprintf(out, outsz, "out of memory");
        break;
    case CURLE_GOT_NOTHING:
        snprintf(out, outsz, "%s port %ld closed the connection without answering", host, port);
        break;
    case CURLE_BAD_CONTENT_ENCODING:
        snprintf(out, outsz, "cannot decode the body: %s", safe);
        break;
    case CURLE_WRITE_ERROR:
        if (body->len > ERROR_BODY_MAX)
            snprintf(out, outsz, "error body larger than %d bytes", ERROR_BODY_MAX);
        else
            snprintf(out, outsz, "out of memory");
        break;
    default:
        snprintf(out, outsz, "%s", safe);
        break;
    }
}

/* A request the server never answered, on a connection that failed under
 * it (an HTTP/2 GOAWAY, a refused stream, a reused keep-alive connection
 * the server had closed): asking again on a new connection is safe for a
 * GET and is no failure of the server's. */
static int unanswered(const struct gf_transfer *x, CURLcode rc)
{
    if (x->body.header_bytes != 0)
        return 0;
    long new_conns = 0;
    char code[32];
    switch (rc) {
    case CURLE_HTTP2:
        /* No words from libcurl: the session ended under the request. */
        return !x->errbuf[0];
    case CURLE_HTTP2_STREAM:
        /* Only REFUSED_STREAM says the server did not process it (RFC 9113
         * 8.7); after another reset no headers may only mean that libcurl
         * dropped those that came in the same read. */
        return stream_reset_code(x->errbuf, code, sizeof code) &&
               strcmp(code, "REFUSED_STREAM") == 0;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    /* What libcurl says of an HTTP/2 connection closed under a stream
     * with nothing of its answer. */
    case CURLE_PARTIAL_FILE:
        curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &new_conns);
        return new_conns == 0;
    default:
        return 0;
    }
}

/* The connection was cut during the TLS handshake (a server restarting, a
 * reset on the way): another may go through, where a disagreement on TLS
 * itself will not. OpenSSL's and libcurl's words for it. */
static int cut_in_handshake(const char *detail)
{
    return strstr(detail, "reset by peer") || strstr(detail, "SSL_ERROR_SYSCALL") ||
           strstr(detail, "unexpected eof");
}

static enum gf_xfer_kind kind_of(const struct gf_transfer *x, CURLcode rc)
{
    if (unanswered(x, rc))
        return GF_XFER_UNANSWERED;
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
        return cut_in_handshake(x->errbuf) ? GF_XFER_TRANSIENT : GF_XFER_FAILED;
    case CURLE_OPERATION_TIMEDOUT:
        return GF_XFER_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return GF_XFER_TRANSIENT;
    default:
        return GF_XFER_FAILED;
    }
}

/* ---- the final answer's headers, through libcurl ----------------------- */

/* The value of header name in the final answer (not a redirect's, a 1xx's
 * or a trailer), or NULL. */
static const char *final_header(CURL *e, const char *name)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
        return NULL;
    return (h->origin & CURLH_HEADER) ? h->value : NULL;
}

/* Seconds the final answer asks to wait, or -1 when it names none.
 * libcurl reads both forms (delta-seconds and an HTTP-date); 7.88 gives a
 * date in the past as a negative delay (no wait) and a number too large
 * for curl_off_t as 0, so such a number is read here, saturated. */
static long retry_after(const struct gf_transfer *x)
{
    if (!(x->body.seen & SEEN_RETRY_AFTER))
        return -1;
    CURL *e = x->easy;
    const char *v = final_header(e, "Retry-After");
    if (!v)
        return -1;
    curl_off_t ra = 0;
    if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        return ra < LONG_MAX ? (long)ra : LONG_MAX;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end != v && n > 0)
        return n; /* LONG_MAX on overflow */
    return 0;
}

static void read_answer(struct gf_transfer *x, struct gf_response *r)
{
    CURL *e = x->easy;
    unsigned seen = x->body.seen;
    const char *v;
    if ((seen & SEEN_ETAG) && (v = final_header(e, "ETag")) != NULL)
        copy_value(r->etag, sizeof r->etag, v, strlen(v));
    if ((seen & SEEN_LAST_MODIFIED) && (v = final_header(e, "Last-Modified")) != NULL)
        copy_value(r->last_modified, sizeof r->last_modified, v, strlen(v));
    /* Its presence is all that counts: no need to ask libcurl for it. */
    r->encoded = (seen & SEEN_CONTENT_ENCODING) != 0;
    r->retry_after_s = retry_after(x);
    r->content_length = x->body.content_length;
    r->bad_length = x->body.bad_length;
    r->port_wants_tls = x->body.page_wants_tls;
    _Static_assert(sizeof r->reason == sizeof x->reason, "reason buffers differ");
    memcpy(r->reason, x->reason, sizeof r->reason);
}

/* ---- the interface --------------------------------------------------- */

static int on_start(void *ctx, const struct gf_request *req, struct gf_transfer **out, char *err,
                    size_t errsz)
{
    struct gf_curl *c = ctx;
    *out = NULL;
    char host[sizeof c->unresolvable];
    if (known_unresolvable(c, req->attempt, req->url, host, sizeof host)) {
        snprintf(err, errsz, KNOWN_UNRESOLVABLE, host);
        return -1;
    }
    const char *what = NULL;
    CURLcode rc;
    struct gf_transfer *x = xfer_get(c, &what, &rc);
    if (!x) {
        if (rc == CURLE_OUT_OF_MEMORY && !what[0])
            snprintf(err, errsz, "cannot start the request: out of memory");
        else if (rc == CURLE_FAILED_INIT)
            snprintf(err, errsz, "cannot start the request: out of memory for a libcurl handle");
        else
            snprintf(err, errsz, "cannot start the request: setting %s failed: %s", what,
                     curl_easy_strerror(rc));
        return -1;
    }
    x->cb = req->cb;
    x->arg = req->arg;
    x->body = (struct body){.content_length = -1};
    gf_body_init(&x->body.sink, req->limit, req->spill_at, req->dirfd, req->is_gif);
    x->reason[0] = '\0';
    x->errbuf[0] = '\0';
    x->alloc_failures = gf_alloc_failures();
    x->attempt = req->attempt;
    x->lookup_skipped = 0;
    x->lookup_started = 0;
    CURL *e = x->easy;
    if (x->uh) {
        /* The path of "<base>/<cc>/...": the base's path and the rest. */
        char path[sizeof c->base_path];
        size_t n = strlen(c->base_path), rest = strlen(req->url) - c->base_len;
        if (strncmp(req->url, c->cfg.base_url, c->base_len) != 0 || n + rest >= sizeof path) {
            rc = CURLE_URL_MALFORMAT;
            what = "the URL";
        } else {
            memcpy(path, c->base_path, n);
            memcpy(path + n, req->url + c->base_len, rest + 1);
            CURLUcode uc = curl_url_set(x->uh, CURLUPART_PATH, path, 0);
            if (uc != CURLUE_OK) {
                rc = uc == CURLUE_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_URL_MALFORMAT;
                what = "the URL";
            }
        }
        /* Without a URL string libcurl takes it from the CURLU again;
         * else it would keep the last request's. */
        SET(e, rc, &what, CURLOPT_URL, (char *)NULL);
    } else {
        SET(e, rc, &what, CURLOPT_URL, req->url);
    }
    /* A plain http base seen to redirect to https: the connect limit
     * would also cut the TLS handshake of the redirect's target, which
     * only --timeout limits (as for an https base). */
    if (c->redirects_to_tls && x->connect_ms != 0) {
        SET(e, rc, &what, CURLOPT_CONNECTTIMEOUT_MS, 0L);
        if (rc == CURLE_OK)
            x->connect_ms = 0;
    }
    /* Wait for a connection being set up to the same host to say whether
     * it multiplexes, rather than racing a handshake per request. Only
     * where it can: libcurl never learns that a plain http connection
     * does not multiplex, and would queue every request behind it. */
    long pipewait = may_multiplex(c) ? 1L : 0L;
    if (pipewait != x->pipewait) {
        SET(e, rc, &what, CURLOPT_PIPEWAIT, pipewait);
        if (rc == CURLE_OK)
            x->pipewait = pipewait;
    }
    char h[GF_HEADER_VALUE_MAX + 32];
    struct curl_slist *next;
    if (req->etag && rc == CURLE_OK) {
        snprintf(h, sizeof h, "If-None-Match: %s", req->etag);
        if ((next = curl_slist_append(x->headers, h)) == NULL) {
            rc = CURLE_OUT_OF_MEMORY;
            what = "the request headers";
        } else {
            x->headers = next;
        }
    }
    if (req->last_modified && rc == CURLE_OK) {
        snprintf(h, sizeof h, "If-Modified-Since: %s", req->last_modified);
        if ((next = curl_slist_append(x->headers, h)) == NULL) {
            rc = CURLE_OUT_OF_MEMORY;
            what = "the request headers";
        } else {
            x->headers = next;
        }
    }
    if (x->headers)
        SET(e, rc, &what, CURLOPT_HTTPHEADER, x->headers);
    if (rc != CURLE_OK) {
        snprintf(err, errsz, "cannot start the request: setting %s failed: %s", what,
                 curl_easy_strerror(rc));
        xfer_put(c, x);
        return -1;
    }
    x->started_ns = uv_hrtime();
    int e2 = gf_engine_start(c->cfg.engine, e, c->cfg.timeout_ms);
    if (e2 != 0) {
        snprintf(err, errsz, "cannot start the request: %s",
                 e2 == GF_ENOMEM ? "out of memory" : gf_engine_strerror(c->cfg.engine));
        xfer_put(c, x);
        return -1;
    }
    *out = x;
    return 0;
}

static unsigned on_cancel(void *ctx, struct gf_transfer *x, struct gf_phases *phases)
{
    struct gf_curl *c = ctx;
    uint64_t now = uv_hrtime(), handed = gf_engine_handed_ns(c->cfg.engine, x->easy);
    /* Handed over as it started: no wait of its own to show. */
    if (handed && handed - x->started_ns < 1000000)
        handed = x->started_ns;
    /* Curl's times start when the engine handed it over (before that its
     * times are a pooled handle's last ones); the wait in the engine, for
     * a connection attempt or the first connection's ALPN, is connect's. */
    double waited = secs((curl_off_t)(((handed ? handed : now) - x->started_ns) / 1000));
    if (handed) {
        read_phases(x->easy, phases, (curl_off_t)((now - handed) / 1000), x->lookup_started);
    } else {
        *phases = (struct gf_phases){.sem_wait = -1};
    }
    phases->connect += waited;
    phases->total += waited;
    unsigned requests = gf_engine_cancel(c->cfg.engine, x->easy);
    xfer_put(c, x);
    return requests;
}

const struct gf_transfer_ops gf_curl_transfer_ops = {
    .start = on_start,
    .cancel = on_cancel,
};

void gf_curl_done(CURL *easy, CURLcode result, unsigned requests)
{
    struct gf_transfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    struct gf_curl *c = x->curl;
    /* On the stack: the answer is the callback's to read, not to keep. */
    struct gf_response resp, *r = &resp;
    memset(r, 0, sizeof *r);
    read_phases(easy, &r->phases, -1, x->lookup_started);
    r->requests = requests;
    r->bytes = x->body.received;
    r->len = x->body.len;
    r->retry_after_s = -1;
    r->content_length = -1;

    char *eff = NULL;
    long version = 0;
    curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
    if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff &&
        strncasecmp(eff, "https:", 6) == 0) {
        c->redirects_to_tls = 1;
        if (version == CURL_HTTP_VERSION_1_1 || version == CURL_HTTP_VERSION_1_0)
            c->tls_http1 = 1;
    }
    const char *v = version == CURL_HTTP_VERSION_1_0   ? "1.0"
                    : version == CURL_HTTP_VERSION_1_1 ? "1.1"
                    : version == CURL_HTTP_VERSION_2_0 ? "2"
                    : version == CURL_HTTP_VERSION_3   ? "3"
                                                       : "";
    memcpy(r->http_version, v, strlen(v) + 1);
    curl_off_t lookup_us = 0;
    if (curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &lookup_us) == CURLE_OK &&
        lookup_us > 0) {
        long port;
        if (host_port(easy, c->resolved, sizeof c->resolved, &port) != 0)
            c->resolved[0] = '\0';
    }

    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    /* A long error page was cut short on purpose: the status decides. */
    if (result == CURLE_WRITE_ERROR && x->body.error_body_cut && !is_success(status))
        result = CURLE_OK;
    r->status = status;
    if (status > 0)
        c->unresolvable[0] = '\0';
    if (result == CURLE_OK) {
        r->kind = GF_XFER_ANSWERED;
        read_answer(x, r);
        if (is_success(status)) {
            r->body = x->body.sink;
            x->body.sink = (struct gf_body_sink){0};
        }
    } else {
        r->kind = kind_of(x, result);
        describe_curl_error(x, result, r->error, sizeof r->error);
        /* The answer's Retry-After still counts for a timeout's pause. */
        r->retry_after_s = status > 0 ? retry_after(x) : -1;
        char host[sizeof c->unresolvable];
        long port;
        if (host_port(easy, host, sizeof host, &port) == 0 && is_dns_failure(x, result, host))
            memcpy(c->unresolvable, host, sizeof host);
    }
    /* The handle goes back to the pool first, so that a request the
     * callback starts (with the permit it hands on) can reuse it. */
    gf_response_cb cb = x->cb;
    void *arg = x->arg;
    xfer_put(c, x);
    cb(arg, r);
    gf_body_abort(&r->body);
}

/* Where an SSL_CTX keeps the run's counters for its info callback. */
static int stats_index = -1;

/* 1 when dir holds a link named as OpenSSL's by-hash lookup asks
 * ("5ad8a5d6.0"): without them OpenSSL finds nothing there. */
static int has_hash_links(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    int found = 0;
    while (!found && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t i = 0;
        while (i < 8 && ((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
            i++;
        found = i == 8 && n[8] == '.' && n[9] >= '0' && n[9] <= '9';
    }
    closedir(d);
    return found;
}

int gf_tls_init(struct gf_tls *t, const char *cacert, struct gf_conn_stats *stats, char *msg,
                size_t msgsz)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    t->extra = NULL;
    t->stats = stats;
    t->capath = v->capath && has_hash_links(v->capath) ? v->capath : NULL;
    t->cainfo = t->capath ? NULL : v->cainfo;
    msg[0] = '\0';
    if (stats_index < 0)
        stats_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (stats_index < 0) {
        snprintf(msg, msgsz, "getflags: cannot set up TLS: out of memory\n");
        return -1;
    }
    if (!cacert)
        return 0;
    /* O_NONBLOCK: a FIFO given by mistake must not hang the run before it
     * starts; only a regular file is read. */
    int fd = open(cacert, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(msg, msgsz, "getflags: cannot read --cacert %s: %s\n", cacert, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(msg, msgsz, "getflags: cannot use --cacert %s: %s\n", cacert,
                 S_ISDIR(st.st_mode) ? "it is a directory, not a PEM file" : "not a regular file");
        close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        snprintf(msg, msgsz, "getflags: cannot read --cacert %s: %s\n", cacert, strerror(errno));
        close(fd);
        return -1;
    }
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    ERR_clear_error();
    while (certs && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            break;
        }
    }
    /* The loop ends at the end of the file (PEM_R_NO_START_LINE) or at a
     * certificate it cannot read. */
    unsigned long err = ERR_peek_last_error();
    int at_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
    int bad = ferror(f) || (err != 0 && !at_end);
    fclose(f);
    ERR_clear_error();
    if (!certs || bad || sk_X509_num(certs) == 0) {
        snprintf(msg, msgsz, "getflags: cannot use --cacert %s: %s\n", cacert,
                 !certs ? "out of memory"
                 : bad  ? "not a readable PEM certificate file"
                        : "no PEM certificate in it");
        sk_X509_pop_free(certs, X509_free);
        return -1;
    }
    t->extra = certs;
    return 0;
}

static void on_tls_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE))
        return;
    struct gf_conn_stats *s = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), stats_index);
    if (!s)
        return;
    s->tls_handshakes++;
    if (SSL_session_reused((SSL *)ssl))
        s->tls_resumed++;
}

/* CURLOPT_SSL_CTX_FUNCTION: runs once per new TLS connection. */
static CURLcode on_ssl_ctx(CURL *e, void *sslctx, void *arg)
{
    (void)e;
    struct gf_tls *t = arg;
    SSL_CTX *ctx = sslctx;
    SSL_CTX_set_ex_data(ctx, stats_index, t->stats);
    SSL_CTX_set_info_callback(ctx, on_tls_info);
    if (t->extra) {
        /* Whichever store the connection ends up with (libcurl's cached
         * one, or this one, which it then caches), it holds these. A
         * certificate already there is not an error. */
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        STACK_OF(X509) *certs = t->extra;
        for (int i = 0; i < sk_X509_num(certs); i++)
            if (!X509_STORE_add_cert(store, sk_X509_value(certs, i))) {
                unsigned long err = ERR_peek_last_error();
                if (ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
                    ERR_clear_error();
                    return CURLE_SSL_CACERT_BADFILE;
                }
            }
        ERR_clear_error();
    }
    return CURLE_OK;
}

CURLcode gf_tls_setup_easy(struct gf_tls *t, CURL *e, const char **what)
{
    CURLcode rc;
    /* One or the other: with both, libcurl parses the bundle at every
     * handshake. */
    if ((rc = curl_easy_setopt(e, CURLOPT_CAPATH, t->capath)) != CURLE_OK) {
        *what = "CURLOPT_CAPATH";
        return rc;
    }
    if ((rc = curl_easy_setopt(e, CURLOPT_CAINFO, t->cainfo)) != CURLE_OK) {
        *what = "CURLOPT_CAINFO";
        return rc;
    }
    if ((rc = curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx)) != CURLE_OK) {
        *what = "CURLOPT_SSL_CTX_FUNCTION";
        return rc;
    }
    if ((rc = curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, t)) != CURLE_OK) {
        *what = "CURLOPT_SSL_CTX_DATA";
        return rc;
    }
    return CURLE_OK;
}

void gf_tls_free(struct gf_tls *t)
{
    if (t->extra)
        sk_X509_pop_free((STACK_OF(X509) *)t->extra, X509_free);
    t->extra = NULL;
}
