#include "gf/manifest.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "gf/afile.h"
#include "gf/alloc.h"
#include "gf/error.h"
#include "gf/names.h"
#include "statedir.h"
#include "gf/text.h"

/* Largest integer a JSON number (a double) holds exactly. */
#define MAX_EXACT 9007199254740992.0

/* ---- Validation ---------------------------------------------------- */

static int cc_ok(const char *cc)
{
    return cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' && cc[2] == '\0';
}

/* The statuses an entry may have: every one but pending. */
static int status_ok(enum gf_status st)
{
    return st == GF_OK || st == GF_NOT_FOUND || st == GF_ERROR || st == GF_UNCHANGED;
}

int gf_manifest_file_ok(const char *name)
{
    if (name == NULL)
        return 0;
    size_t len = strlen(name);
    if (len <= 4 || len > GF_NAME_MAX || name[0] == '.' || strcmp(name + len - 4, ".gif") != 0)
        return 0;
    uint32_t cp;
    for (size_t i = 0, n; i < len; i += n) {
        n = gf_utf8_decode(name + i, len - i, &cp);
        if (n == 0 || gf_text_is_control(cp) || cp == '/' || cp == '\\')
            return 0;
    }
    return 1;
}

/* A value that can go back into an If-None-Match or If-Modified-Since
 * header as it is. */
static int header_ok(const char *v)
{
    return gf_header_value_ok(v, strlen(v));
}

static int sha256_ok(const char *s)
{
    if (s[0] == '\0')
        return 1;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

/* "YYYY-MM-DDTHH:MM:SSZ" with fields in range. */
static int time_ok(const char *s)
{
    static const char form[] = "dddd-dd-ddTdd:dd:ddZ";
    int v[6], k = 0;

    if (strlen(s) != sizeof form - 1)
        return 0;
    for (size_t i = 0; i < sizeof form - 1; i++) {
        if (form[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != form[i])
            return 0;
    }
    for (const char *p = s; k < 6; k++) {
        v[k] = (int)strtol(p, NULL, 10);
        p += k == 0 ? 5 : 3;
    }
    return v[1] >= 1 && v[1] <= 12 && v[2] >= 1 && v[2] <= 31 && v[3] <= 23 && v[4] <= 59 &&
           v[5] <= 60;
}

static int integral(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi && floor(v) == v;
}

/* A copy of s with invalid UTF-8 and control characters turned into '?'
 * (one per byte of a bad sequence), or NULL when out of memory. */
static char *sanitized(const char *s)
{
    char *out = gf_malloc(strlen(s) + 1);
    return out != NULL ? gf_text_replace_bad(s, out) : NULL;
}

/* ---- The model ----------------------------------------------------- */

static void free_strings(struct gf_manifest_entry *e)
{
    gf_free(e->file);
    gf_free(e->error);
    gf_free(e->meta.etag);
    gf_free(e->meta.last_modified);
    gf_free(e->image.etag);
    gf_free(e->image.last_modified);
}

void gf_manifest_free(struct gf_manifest *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free_strings(&m->entries[i]);
    gf_free(m->entries);
    gf_free(m->run_time);
    gf_free(m->base_url);
    memset(m, 0, sizeof *m);
}

void gf_manifest_drop_validators(struct gf_manifest *m)
{
    for (size_t i = 0; i < m->n; i++) {
        struct gf_manifest_request *r[] = {&m->entries[i].meta, &m->entries[i].image};
        for (size_t k = 0; k < 2; k++) {
            gf_free(r[k]->etag);
            gf_free(r[k]->last_modified);
            *r[k] = (struct gf_manifest_request){0};
        }
    }
}

/* Index of the first entry whose code is not below cc. */
static size_t lower_bound(const struct gf_manifest *m, const char *cc)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->entries[mid].cc, cc) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct gf_manifest_entry *gf_manifest_find(const struct gf_manifest *m, const char *cc)
{
    if (m == NULL || cc == NULL)
        return NULL;
    size_t i = lower_bound(m, cc);
    return i < m->n && strcmp(m->entries[i].cc, cc) == 0 ? &m->entries[i] : NULL;
}

/* strdup that keeps NULL as NULL; *failed is set when memory runs out. */
static char *dup_or_null(const char *s, int *failed)
{
    if (s == NULL)
        return NULL;
    char *d = gf_strdup(s);
    if (d == NULL)
        *failed = 1;
    return d;
}

static void copy_request(struct gf_manifest_request *dst, const struct gf_manifest_request *src,
                         int *failed)
{
    dst->etag = src->etag && header_ok(src->etag) ? dup_or_null(src->etag, failed) : NULL;
    dst->last_modified = src->last_modified && header_ok(src->last_modified)
                             ? dup_or_null(src->last_modified, failed)
                             : NULL;
}

int gf_manifest_set(struct gf_manifest *m, const struct gf_manifest_entry *e)
{
    if (!cc_ok(e->cc) || !status_ok(e->status) || e->http_status < 0 || e->http_status > 999 ||
        (double)e->bytes > MAX_EXACT || memchr(e->sha256, '\0', sizeof e->sha256) == NULL ||
        !sha256_ok(e->sha256) || (e->file != NULL && !gf_manifest_file_ok(e->file)) ||
        (e->file == NULL && gf_status_has_file(e->status)))
        return UV_EINVAL;

    /* Everything is copied before m changes, so a failure leaves m as it
     * was, and e may even point into m. */
    struct gf_manifest_entry n = {
        .status = e->status, .http_status = e->http_status, .bytes = e->bytes};
    int failed = 0;
    memcpy(n.cc, e->cc, sizeof n.cc);
    memcpy(n.sha256, e->sha256, sizeof n.sha256);
    n.file = dup_or_null(e->file, &failed);
    if (e->error != NULL && (n.error = sanitized(e->error)) == NULL)
        failed = 1;
    copy_request(&n.meta, &e->meta, &failed);
    copy_request(&n.image, &e->image, &failed);

    size_t i = lower_bound(m, n.cc);
    if (!failed && !(i < m->n && strcmp(m->entries[i].cc, n.cc) == 0) && m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct gf_manifest_entry *p = gf_realloc(m->entries, cap * sizeof *p);
        if (p == NULL)
            failed = 1;
        else {
            m->entries = p;
            m->cap = cap;
        }
    }
    if (failed) {
        free_strings(&n);
        return GF_ENOMEM;
    }
    if (i < m->n && strcmp(m->entries[i].cc, n.cc) == 0) {
        free_strings(&m->entries[i]);
    } else {
        memmove(&m->entries[i + 1], &m->entries[i], (m->n - i) * sizeof *m->entries);
        m->n++;
    }
    m->entries[i] = n;
    return 0;
}

int gf_manifest_set_run(struct gf_manifest *m, const char *run_time, const char *base_url)
{
    if (run_time != NULL && !time_ok(run_time))
        return UV_EINVAL;
    int failed = 0;
    char *t = dup_or_null(run_time, &failed);
    char *u = dup_or_null(base_url, &failed);
    if (failed) {
        gf_free(t);
        gf_free(u);
        return GF_ENOMEM;
    }
    gf_free(m->run_time);
    gf_free(m->base_url);
    m->run_time = t;
    m->base_url = u;
    return 0;
}

int gf_manifest_time(time_t t, char out[GF_MANIFEST_TIME_LEN])
{
    struct tm tm;

    /* gmtime_r: UTC, never the TZ of the environment. */
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        return UV_EINVAL;
    /* Room for any int, so the compiler sees no truncation; the range
     * checked above makes it exactly 20 characters. */
    char buf[80];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, buf, GF_MANIFEST_TIME_LEN - 1);
    out[GF_MANIFEST_TIME_LEN - 1] = '\0';
    return 0;
}

/* ---- Reading ------------------------------------------------------- */

/* key of obj as a string: 1 with *out set (NULL when absent or null), or 0
 * when it has another type. */
static int get_string(const cJSON *obj, const char *key, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return 1;
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return 0;
    *out = v->valuestring;
    return 1;
}

/* key of obj as a number: 1 with *out set (dflt when absent or null), or 0
 * when it has another type. */
static int get_number(const cJSON *obj, const char *key, double dflt, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = dflt;
    if (v == NULL || cJSON_IsNull(v))
        return 1;
    if (!cJSON_IsNumber(v))
        return 0;
    *out = v->valuedouble;
    return 1;
}

static const char *parse_request(const cJSON *entry, const char *key, struct gf_manifest_request *r)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(entry, key);
    if (o == NULL || cJSON_IsNull(o))
        return NULL;
    if (!cJSON_IsObject(o))
        return "\"meta\" or \"image\" is not an object";
    const char *etag, *lm;
    if (!get_string(o, "etag", &etag) || !get_string(o, "last_modified", &lm))
        return "\"etag\" or \"last_modified\" is not a string";
    if ((etag && !header_ok(etag)) || (lm && !header_ok(lm)))
        return "\"etag\" or \"last_modified\" cannot be sent back in a header";
    r->etag = (char *)etag;
    r->last_modified = (char *)lm;
    /* Version 1 also held "timings": state no more, and ignored. */
    return NULL;
}

/* Checks one element of "entries" and adds it to m. Returns NULL, or why it
 * was dropped (static), or "" when memory ran out. *cc gets its code when
 * that much was valid. */
static const char *load_entry(struct gf_manifest *m, const cJSON *item, gf_cc cc)
{
    struct gf_manifest_entry e = {0};
    const char *s, *why;
    double num;

    cc[0] = '\0';
    if (!cJSON_IsObject(item))
        return "not an object";
    if (!get_string(item, "cc", &s) || s == NULL || !cc_ok(s))
        return "\"cc\" is not a code of two letters A-Z";
    memcpy(e.cc, s, 3);
    memcpy(cc, s, 3);
    if (gf_manifest_find(m, e.cc) != NULL)
        return "its code is listed twice";
    if (!get_string(item, "status", &s) || s == NULL || gf_status_parse(s, &e.status) != 0 ||
        !status_ok(e.status))
        return "\"status\" is not ok, not_found, error or unchanged";
    if (!get_number(item, "http_status", 0, &num) || !integral(num, 0, 999))
        return "\"http_status\" is not a whole number from 0 to 999";
    e.http_status = (int)num;
    if (!get_string(item, "file", &s) || (s != NULL && !gf_manifest_file_ok(s)))
        return "\"file\" is not a plain .gif file name";
    if (s == NULL && gf_status_has_file(e.status))
        return "\"file\" is missing";
    /* One file, one code: two owners would each replace or remove it. At
     * most 676 entries, so a scan is cheap. */
    for (size_t i = 0; s != NULL && i < m->n; i++)
        if (m->entries[i].file != NULL && strcmp(m->entries[i].file, s) == 0)
            return "its file is named by another entry too";
    e.file = (char *)s;
    if (!get_number(item, "bytes", 0, &num) || !integral(num, 0, MAX_EXACT))
        return "\"bytes\" is not a whole number of bytes";
    e.bytes = (uint64_t)num;
    if (!get_string(item, "sha256", &s) || (s != NULL && (s[0] == '\0' || !sha256_ok(s))))
        return "\"sha256\" is not 64 lower-case hex digits";
    if (s != NULL)
        memcpy(e.sha256, s, 65);
    if ((why = parse_request(item, "meta", &e.meta)) != NULL ||
        (why = parse_request(item, "image", &e.image)) != NULL)
        return why;
    if (!get_string(item, "error", &s))
        return "\"error\" is not a string";
    e.error = (char *)s;
    /* Every rule of gf_manifest_set() has been checked above, so it can
     * only run out of memory. */
    int rc = gf_manifest_set(m, &e);
    return rc == 0 ? NULL : rc == GF_ENOMEM ? "" : "it breaks a rule of the manifest";
}

/* Reads all of fd, refusing more than GF_MANIFEST_MAX_BYTES even if the
 * file grows while it is read. */
static int read_all(int fd, size_t hint, char **out, size_t *outlen)
{
    size_t cap = hint + 1, len = 0;
    char *buf = gf_malloc(cap);
    if (buf == NULL)
        return GF_ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap > GF_MANIFEST_MAX_BYTES)
                break;
            size_t ncap = cap * 2 < GF_MANIFEST_MAX_BYTES + 1 ? cap * 2 : GF_MANIFEST_MAX_BYTES + 1;
            char *p = gf_realloc(buf, ncap);
            if (p == NULL) {
                gf_free(buf);
                return GF_ENOMEM;
            }
            buf = p;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = -errno;
            gf_free(buf);
            return e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > GF_MANIFEST_MAX_BYTES) {
        gf_free(buf);
        return GF_ETOOBIG;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* Looks over the raw text before cJSON takes it. Refuses what cJSON would
 * accept but must not be: a raw control character (JSON strings may not
 * hold them) and more values than a manifest has any use for (cJSON spends
 * some 64 bytes on each: a 16 MiB file of "1,1,1..." would take 600 MiB).
 * Returns NULL, or the reason with *at set to the offending byte. */
static const char *prescan(const char *buf, size_t len, size_t *at)
{
    size_t values = 0;
    int in_string = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        *at = i;
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return "not valid JSON";
        if (in_string) {
            if (c == '\\' && i + 1 < len) {
                i++; /* the escaped character, whatever it is */
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if ((c == ',' || c == '[' || c == '{') && ++values > GF_MANIFEST_MAX_VALUES) {
            return "too many values";
        }
    }
    return NULL;
}

/* Fills m from the parsed document, or says what is wrong with its shape. */
static int load_doc(struct gf_manifest *m, const cJSON *root, const char *path, char *err,
                    size_t errsz)
{
    const cJSON *v;
    const char *run_time, *base_url;

    if (!cJSON_IsObject(root)) {
        gf_errorf(err, errsz, "%s: not a JSON object", path);
        return GF_EMETADATA;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsNumber(v) || !(v->valuedouble == 1 || v->valuedouble == GF_MANIFEST_VERSION)) {
        gf_errorf(err, errsz, "%s: \"version\" is not %d or %d", path, GF_MANIFEST_VERSION_MIN,
                  GF_MANIFEST_VERSION);
        return GF_EMETADATA;
    }
    if (!get_string(root, "run_time", &run_time) || (run_time && !time_ok(run_time))) {
        gf_errorf(err, errsz, "%s: \"run_time\" is not a UTC time like 2026-11-21T20:41:03Z", path);
        return GF_EMETADATA;
    }
    if (!get_string(root, "base_url", &base_url)) {
        gf_errorf(err, errsz, "%s: \"base_url\" is not a string", path);
        return GF_EMETADATA;
    }
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
    if (!cJSON_IsArray(entries)) {
        gf_errorf(err, errsz, "%s: \"entries\" is not an array", path);
        return GF_EMETADATA;
    }
    if (gf_manifest_set_run(m, run_time, base_url) != 0)
        goto nomem;

    const cJSON *item;
    size_t index = 0, first_index = 0;
    const char *first_why = NULL;
    gf_cc first_cc = "";
    cJSON_ArrayForEach(item, entries)
    {
        gf_cc cc;
        const char *why = load_entry(m, item, cc);
        index++;
        if (why == NULL)
            continue;
        if (why[0] == '\0')
            goto nomem;
        if (m->skipped++ == 0) {
            first_why = why;
            first_index = index;
            memcpy(first_cc, cc, sizeof first_cc);
        }
    }
    if (m->skipped > 0) {
        /* Codes are checked A-Z before being copied, so safe to print. */
        char code[8] = "";
        if (first_cc[0] != '\0')
            snprintf(code, sizeof code, " (%s)", first_cc);
        gf_errorf(err, errsz, "%s: skipped %zu invalid entr%s; the first, entry %zu%s: %s", path,
                  m->skipped, m->skipped == 1 ? "y" : "ies", first_index, code, first_why);
    }
    return 0;

nomem:
    gf_errorf(err, errsz, "%s: %s", path, gf_strerror(GF_ENOMEM));
    return GF_ENOMEM;
}

static int load(int sfd, struct gf_manifest *m, const char *path, char *err, size_t errsz)
{
    /* O_NONBLOCK: a FIFO at the name must not hang the run. */
    int fd = openat(sfd, GF_MANIFEST_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int e = fd < 0 ? -errno : 0;
    if (e == -ENOENT)
        return 0;
    if (e != 0) {
        gf_errorf(err, errsz, "cannot open %s: %s", path,
                  e == -ELOOP ? "it is a symbolic link (not followed)" : gf_strerror(e));
        return e;
    }

    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    if (fstat(fd, &st) != 0)
        e = -errno;
    else if (!S_ISREG(st.st_mode))
        e = GF_EMETADATA;
    else if (st.st_nlink > 1)
        e = -EMLINK; /* a hard link to a file outside DIR is not ours */
    else if (st.st_size > GF_MANIFEST_MAX_BYTES)
        e = GF_ETOOBIG; /* refused unread */
    else
        e = read_all(fd, (size_t)st.st_size, &buf, &len);
    close(fd);
    if (e == GF_EMETADATA) {
        gf_errorf(err, errsz, "%s: not a regular file", path);
        return e;
    }
    if (e == GF_ETOOBIG) {
        gf_errorf(err, errsz, "%s: larger than %d MiB", path,
                  GF_MANIFEST_MAX_BYTES / (1024 * 1024));
        return GF_EMETADATA;
    }
    if (e == -EMLINK) {
        gf_errorf(err, errsz,
                  "cannot read %s: it has more than one link (a hard link is not followed)", path);
        return e;
    }
    if (e != 0) {
        gf_errorf(err, errsz, "cannot read %s: %s", path, gf_strerror(e));
        return e;
    }

    size_t at;
    const char *why = prescan(buf, len, &at);
    const char *nul = gf_json_nul_escape(buf, len);
    if (nul != NULL && (why == NULL || (size_t)(nul - buf) < at)) {
        why = "a string holds \\u0000";
        at = (size_t)(nul - buf);
    }
    if (why != NULL) {
        gf_errorf(err, errsz, "%s: %s (at byte %zu)", path, why, at);
        gf_free(buf);
        return GF_EMETADATA;
    }

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (root != NULL) {
        /* Only white space may follow the document. */
        for (const char *p = end; p < buf + len; p++) {
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                cJSON_Delete(root);
                root = NULL;
                end = p;
                break;
            }
        }
    }
    if (root == NULL) {
        at = end != NULL && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        gf_errorf(err, errsz, "%s: not valid JSON (at byte %zu)", path, at);
        gf_free(buf);
        return GF_EMETADATA;
    }
    gf_free(buf);
    e = load_doc(m, root, path, err, errsz);
    cJSON_Delete(root);
    return e;
}

int gf_manifest_load_at(int sfd, const char *label, struct gf_manifest *m, char *err, size_t errsz)
{
    memset(m, 0, sizeof *m);
    if (err != NULL && errsz > 0)
        err[0] = '\0';
    size_t plen = strlen(label) + sizeof "/" GF_STATEDIR_NAME "/" GF_MANIFEST_NAME;
    char *path = gf_malloc(plen);
    if (path == NULL) {
        gf_errorf(err, errsz, "%s", gf_strerror(GF_ENOMEM));
        return GF_ENOMEM;
    }
    snprintf(path, plen, "%s/" GF_STATEDIR_NAME "/" GF_MANIFEST_NAME, label);
    int e = load(sfd, m, path, err, errsz);
    gf_free(path);
    if (e != 0)
        gf_manifest_free(m);
    return e;
}

int gf_manifest_load(const char *dir, struct gf_manifest *m, char *err, size_t errsz)
{
    memset(m, 0, sizeof *m);
    if (err != NULL && errsz > 0)
        err[0] = '\0';
    int sfd = gf_statedir_open(dir, 0, err, errsz);
    if (sfd == -ENOENT)
        return 0; /* a first run */
    if (sfd < 0)
        return sfd;
    int e = gf_manifest_load_at(sfd, dir, m, err, errsz);
    close(sfd);
    return e;
}

/* ---- Writing ------------------------------------------------------- */

/* The text is formatted here, straight into a buffer, in the bytes cJSON
 * prints for the same document (its escapes, no spaces; the tests compare
 * the two): building a cJSON object per entry only to print it cost ten
 * times the instructions. The buffer goes out when full: a write per
 * entry would be thousands of system calls for the manifest of -e. A
 * write error stays in the atomic file, which then refuses to commit. */
struct out {
    struct gf_afile *a;
    size_t len;
    char buf[16384];
};

static void flush(struct out *o)
{
    if (o->len > 0)
        gf_afile_write(o->a, o->buf, o->len);
    o->len = 0;
}

static void put_n(struct out *o, const char *s, size_t n)
{
    while (n > sizeof o->buf - o->len) {
        size_t k = sizeof o->buf - o->len;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
        flush(o);
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* A string literal. */
#define PUT(o, lit) put_n((o), (lit), sizeof(lit) - 1)

/* s as a JSON string, or null: quote, backslash and control characters
 * escaped as cJSON escapes them, every other byte (UTF-8) as it is. */
static void put_string(struct out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (s == NULL) {
        PUT(o, "null");
        return;
    }
    /* 1 for the bytes that end a run written as it is: NUL, the control
     * characters, quote and backslash. */
#define ONES8 1, 1, 1, 1, 1, 1, 1, 1
    static const unsigned char stop[256] = {ONES8, ONES8, ONES8, ONES8, ['"'] = 1, ['\\'] = 1};
#undef ONES8
    PUT(o, "\"");
    for (const char *run = s;; s++) {
        while (!stop[(unsigned char)*s])
            s++;
        unsigned char c = (unsigned char)*s;
        put_n(o, run, (size_t)(s - run));
        if (c == '\0')
            break;
        char esc[6] = {'\\', (char)c, '0', '0', '0', '0'};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        put_n(o, esc, n);
        run = s + 1;
    }
    PUT(o, "\"");
}

/* A whole number in full: a size up to 2^53 must read back exact. */
static void put_int(struct out *o, long long v)
{
    char d[24];
    size_t i = sizeof d;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        d[--i] = '-';
    put_n(o, d + i, sizeof d - i);
}

static void put_request(struct out *o, const struct gf_manifest_request *r)
{
    PUT(o, "{\"etag\":");
    put_string(o, r->etag);
    PUT(o, ",\"last_modified\":");
    put_string(o, r->last_modified);
    PUT(o, "}");
}

/* One entry, keys in their fixed order. */
static void put_entry(struct out *o, const struct gf_manifest_entry *e)
{
    PUT(o, "{\"cc\":");
    put_string(o, e->cc);
    PUT(o, ",\"status\":");
    put_string(o, gf_status_name(e->status));
    PUT(o, ",\"http_status\":");
    put_int(o, e->http_status);
    PUT(o, ",\"file\":");
    put_string(o, e->file);
    PUT(o, ",\"bytes\":");
    put_int(o, (long long)e->bytes);
    PUT(o, ",\"sha256\":");
    put_string(o, e->sha256[0] ? e->sha256 : NULL);
    PUT(o, ",\"meta\":");
    put_request(o, &e->meta);
    PUT(o, ",\"image\":");
    put_request(o, &e->image);
    PUT(o, ",\"error\":");
    put_string(o, e->error);
    PUT(o, "}");
}

/* The document: its head, then one entry per line. */
static void write_manifest(struct gf_afile *a, const struct gf_manifest *m)
{
    struct out o;
    o.a = a;
    o.len = 0;
    PUT(&o, "{\"version\":");
    put_int(&o, GF_MANIFEST_VERSION);
    PUT(&o, ",\"run_time\":");
    put_string(&o, m->run_time);
    PUT(&o, ",\"base_url\":");
    put_string(&o, m->base_url);
    PUT(&o, ",\n\"entries\": [");
    for (size_t i = 0; i < m->n; i++) {
        if (i > 0)
            PUT(&o, ",\n");
        else
            PUT(&o, "\n");
        put_entry(&o, &m->entries[i]);
    }
    PUT(&o, "\n]}\n");
    flush(&o);
}

int gf_manifest_save_at(int sfd, const char *label, const struct gf_manifest *m, char *err,
                        size_t errsz)
{
    struct gf_afile a;
    /* Nothing compares the manifest with a digest of it. */
    int e = gf_afile_open_nodigest(&a, sfd);
    if (e != 0) {
        /* The temporary name is not kept when its creation failed. */
        gf_errorf(err, errsz, "cannot create a temporary file in %s/" GF_STATEDIR_NAME ": %s",
                  label, e == -EMLINK ? "it had more than one link" : gf_strerror(e));
        return e;
    }
    write_manifest(&a, m);
    e = gf_afile_commit(&a, GF_MANIFEST_NAME, 1);
    /* Named by what it is: its temporary file is gone by now. */
    if (e != 0)
        gf_errorf(err, errsz,
                  "cannot save the manifest %s/" GF_STATEDIR_NAME "/" GF_MANIFEST_NAME
                  ": %s failed: %s",
                  label, a.step, gf_strerror(e));
    return e;
}

int gf_manifest_save(const char *dir, const struct gf_manifest *m, char *err, size_t errsz)
{
    int sfd = gf_statedir_open(dir, 1, err, errsz);
    if (sfd < 0)
        return sfd;
    int e = gf_manifest_save_at(sfd, dir, m, err, errsz);
    close(sfd);
    return e;
}
