/* getflags: downloads country flags concurrently. See README.md. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "gf/alloc.h"
#include "gf/cli.h"
#include "gf/error.h"
#include "gf/fetch.h"
#include "gf/lock.h"
#include "gf/manifest.h"
#include "gf/report.h"
#include "gf/run.h"
#include "gf/saver.h"
#include "gf/sweep.h"

static void print_version(void)
{
    printf("getflags %s\n", GF_VERSION);
    printf("libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
    printf("libuv %s\n", uv_version_string());
    printf("cJSON %s\n", cJSON_Version());
}

static int exit_status(const struct gf_run_result *res)
{
    if (res->signal == SIGINT)
        return GF_EXIT_SIGINT;
    if (res->signal == SIGTERM)
        return GF_EXIT_SIGTERM;
    return res->error > 0 ? GF_EXIT_ERRORS : GF_EXIT_OK;
}

/* The concurrency to use for a level: at most one request per code, and
 * what the open-file limit allows. */
static unsigned concurrency_for(const struct gf_options *o, unsigned m)
{
    char msg[256];
    unsigned want = m < o->ncodes ? m : (unsigned)o->ncodes;
    if (want == 0)
        want = 1;
    unsigned fit = gf_run_fit_concurrency(want, msg, sizeof msg);
    if (msg[0])
        fputs(msg, stderr);
    return fit;
}

struct header_args {
    const struct gf_options *o;
    unsigned concurrency;
};

static void print_header(void *arg)
{
    const struct header_args *h = arg;
    const struct gf_options *o = h->o;
    if (o->quiet || o->json)
        return;
    gf_report_header(stdout, o->server_label, o->base_url_display, o->codes, o->ncodes,
                     o->concurrency_auto ? 0 : h->concurrency);
    fflush(stdout);
}

static int run_once(const struct gf_options *o, unsigned concurrency, int header, int progress,
                    const struct gf_prev *const *prev, struct gf_run_result *res)
{
    char err[512];
    struct header_args h = {o, concurrency};
    struct gf_run_config cfg = {
        .prev = prev,
        .on_start = header ? print_header : NULL,
        .arg = &h,
        .opts = o,
        .concurrency = concurrency,
        .verbose = o->verbose ? (o->json ? stderr : stdout) : NULL,
        .errors = stderr,
        .progress = progress && !o->verbose && !o->quiet && isatty(STDERR_FILENO),
    };
    int rc = gf_run(&cfg, res, err, sizeof err);
    if (rc != 0)
        fputs(err, stderr);
    return rc;
}

/* DIR/.getflags/lock: one run per directory. Returns -1 when the lock is
 * held, else the exit status to stop with. */
static int take_lock(const struct gf_options *o, struct gf_lock *lock)
{
    char msg[1024];
    int rc = gf_lock_acquire(o->outdir, 0, lock, msg, sizeof msg);
    if (rc == GF_LOCK_BUSY && o->wait_lock) {
        if (!o->quiet)
            fprintf(stderr, "getflags: waiting for another run on %s to end\n", o->outdir);
        rc = gf_lock_acquire(o->outdir, 1, lock, msg, sizeof msg);
    }
    if (rc == 0)
        return -1;
    fprintf(stderr, "getflags: %s\n", msg);
    return rc == GF_LOCK_BUSY ? GF_LOCK_EXIT_BUSY : GF_EXIT_CANNOT_START;
}

/* Reads the last run's manifest. A missing one is an empty manifest; an
 * unusable one is a warning (this run starts afresh), or the end of the
 * run for --retry-failed, which needs it. Returns -1 to go on, else the
 * exit status. */
static int load_manifest(const struct gf_options *o, struct gf_manifest *m)
{
    char msg[1024];
    int rc = gf_manifest_load(o->outdir, m, msg, sizeof msg);
    if (rc != 0) {
        gf_manifest_free(m);
        *m = (struct gf_manifest){0};
        if (o->retry_failed) {
            fprintf(stderr, "getflags: --retry-failed needs the last run's manifest: %s\n", msg);
            return GF_EXIT_CANNOT_START;
        }
        fprintf(stderr, "getflags: warning: %s; it will be rewritten\n", msg);
    } else if (m->skipped > 0) {
        fprintf(stderr, "getflags: warning: %s\n", msg);
    }
    return -1;
}

/* --retry-failed: the codes that ended in error last time. */
static void select_failed(struct gf_options *o, const struct gf_manifest *m)
{
    o->ncodes = 0;
    for (size_t i = 0; i < m->n && o->ncodes < GF_CODES_MAX; i++)
        if (strcmp(m->entries[i].status, GF_MANIFEST_ERROR) == 0)
            memcpy(o->codes[o->ncodes++], m->entries[i].cc, sizeof(gf_cc));
    if (o->limit > 0 && o->ncodes > o->limit)
        o->ncodes = o->limit;
}

/* --update: what the last run saved, for conditional requests. Only files
 * still in DIR, and only from the same server: a 304 from another one
 * would vouch for a file it never sent. */
static int build_prev(const struct gf_options *o, const struct gf_manifest *m,
                      struct gf_prev **store, const struct gf_prev ***prev)
{
    *store = NULL;
    *prev = NULL;
    if (!o->update || m->n == 0)
        return 0;
    if (!m->base_url || strcmp(m->base_url, o->base_url_display) != 0) {
        fprintf(stderr,
                "getflags: warning: the last run in %s used another server; "
                "downloading everything\n",
                o->outdir);
        return 0;
    }
    *store = gf_calloc(o->ncodes ? o->ncodes : 1, sizeof **store);
    *prev = gf_calloc(o->ncodes ? o->ncodes : 1, sizeof **prev);
    if (!*store || !*prev) {
        gf_free(*store);
        gf_free((void *)*prev);
        return GF_ENOMEM;
    }
    for (size_t i = 0; i < o->ncodes; i++) {
        const struct gf_manifest_entry *e = gf_manifest_find(m, o->codes[i]);
        if (!e || !e->file ||
            (strcmp(e->status, GF_MANIFEST_OK) != 0 &&
             strcmp(e->status, GF_MANIFEST_UNCHANGED) != 0))
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", o->outdir, e->file);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        (*store)[i] = (struct gf_prev){
            .file = e->file,
            .meta_etag = e->meta.etag,
            .meta_last_modified = e->meta.last_modified,
            .image_etag = e->image.etag,
            .image_last_modified = e->image.last_modified,
            .sha256 = e->sha256,
            .bytes = e->bytes,
        };
        (*prev)[i] = &(*store)[i];
    }
    return 0;
}

static const char *manifest_status(enum gf_status st)
{
    switch (st) {
    case GF_OK:
        return GF_MANIFEST_OK;
    case GF_NOT_FOUND:
        return GF_MANIFEST_NOT_FOUND;
    case GF_UNCHANGED:
        return GF_MANIFEST_UNCHANGED;
    default:
        return GF_MANIFEST_ERROR;
    }
}

/* Records every code that ended and writes the manifest. Codes this run
 * did not reach keep their entries. Returns 0, or 1 after saying why the
 * manifest could not be written. */
static int save_manifest(const struct gf_options *o, struct gf_manifest *m,
                         const struct gf_run_result *res)
{
    char msg[1024], now[GF_MANIFEST_TIME_LEN];
    int rc = 0;
    for (size_t i = 0; i < res->nitems && rc == 0; i++) {
        const struct gf_item *it = &res->items[i];
        if (it->status == GF_PENDING)
            continue;
        struct gf_manifest_entry e = {
            .http_status = it->http_status,
            .file = (it->status == GF_OK || it->status == GF_UNCHANGED) ? it->file : NULL,
            .bytes = it->file_bytes,
            .meta = {it->meta_etag, it->meta_last_modified, it->meta},
            .image = {it->image_etag, it->image_last_modified, it->image},
            .error = it->status == GF_ERROR ? it->error : NULL,
        };
        memcpy(e.cc, it->cc, sizeof e.cc);
        snprintf(e.status, sizeof e.status, "%s", manifest_status(it->status));
        snprintf(e.sha256, sizeof e.sha256, "%s", it->sha256);
        rc = gf_manifest_set(m, &e);
    }
    if (rc == 0 && (gf_manifest_time(time(NULL), now) != 0 ||
                    gf_manifest_set_run(m, now, o->base_url_display) != 0))
        rc = GF_ENOMEM;
    if (rc != 0) {
        fprintf(stderr, "getflags: cannot record the run in the manifest: %s\n", gf_strerror(rc));
        return 1;
    }
    if (gf_manifest_save(o->outdir, m, msg, sizeof msg) != 0) {
        fprintf(stderr, "getflags: %s\n", msg);
        return 1;
    }
    return 0;
}

/* Everything around a run that touches DIR's state: the lock, the last
 * manifest, --retry-failed and --update. */
struct session {
    struct gf_lock lock;
    struct gf_manifest manifest;
    struct gf_prev *prev_store;
    const struct gf_prev **prev;
};

static int session_open(struct gf_options *o, struct session *s)
{
    *s = (struct session){.lock = {.fd = -1}};
    const char *what = NULL;
    int err = gf_outdir_prepare(o->outdir, &what);
    if (err != 0) {
        fprintf(stderr, "getflags: cannot %s the output directory %s: %s\n", what, o->outdir,
                uv_strerror(err));
        return GF_EXIT_CANNOT_START;
    }
    int st = take_lock(o, &s->lock);
    if (st >= 0)
        return st;
    st = load_manifest(o, &s->manifest);
    if (st >= 0) {
        gf_lock_release(&s->lock);
        return st;
    }
    if (o->retry_failed)
        select_failed(o, &s->manifest);
    if (build_prev(o, &s->manifest, &s->prev_store, &s->prev) != 0) {
        fprintf(stderr, "getflags: out of memory\n");
        gf_manifest_free(&s->manifest);
        gf_lock_release(&s->lock);
        return GF_EXIT_CANNOT_START;
    }
    return -1;
}

static void session_close(struct session *s)
{
    gf_free(s->prev_store);
    gf_free((void *)s->prev);
    gf_manifest_free(&s->manifest);
    gf_lock_release(&s->lock);
}

static int download(struct gf_options *o)
{
    struct session ses;
    int st = session_open(o, &ses);
    if (st >= 0)
        return st;
    unsigned concurrency = concurrency_for(o, o->concurrency);
    struct gf_run_result res;
    if (run_once(o, concurrency, 1, 1, ses.prev, &res) != 0) {
        session_close(&ses);
        return GF_EXIT_CANNOT_START;
    }

    struct gf_summary sum = gf_run_summary(&res, o, concurrency);
    if (o->json) {
        char *json = gf_report_json(&sum);
        if (json) {
            puts(json);
            gf_free(json);
        } else {
            fprintf(stderr, "getflags: out of memory while writing the JSON summary\n");
        }
    } else if (!o->quiet) {
        gf_report_footer(stdout, &sum);
    }
    int lost = gf_report_output_check(stdout, "standard output", stderr) != 0;
    int status = exit_status(&res);
    if (lost && status == GF_EXIT_OK)
        status = GF_EXIT_ERRORS;
    if (save_manifest(o, &ses.manifest, &res) != 0 && status == GF_EXIT_OK)
        status = GF_EXIT_ERRORS;
    gf_run_result_free(&res);
    session_close(&ses);
    return status;
}

/* --sweep: one full run per level, each with a fresh loop and so a fresh
 * connection pool, then one table. The manifest records the last level. */
static int sweep(struct gf_options *o)
{
    struct gf_sweep_row rows[GF_SWEEP_MAX];
    size_t n = 0;
    struct session ses;
    int status = session_open(o, &ses);
    if (status >= 0)
        return status;
    status = GF_EXIT_OK;
    for (size_t i = 0; i < o->nsweep; i++) {
        unsigned concurrency = concurrency_for(o, o->sweep[i]);
        struct gf_run_result res;
        if (run_once(o, concurrency, 0, 0, ses.prev, &res) != 0) {
            session_close(&ses);
            return GF_EXIT_CANNOT_START;
        }
        struct gf_summary sum = gf_run_summary(&res, o, concurrency);
        if (gf_sweep_row_from(&rows[n], &sum) == 0)
            n++;
        int st = exit_status(&res);
        int last = i + 1 == o->nsweep || st == GF_EXIT_SIGINT || st == GF_EXIT_SIGTERM;
        if (last && save_manifest(o, &ses.manifest, &res) != 0 && st == GF_EXIT_OK)
            st = GF_EXIT_ERRORS;
        gf_run_result_free(&res);
        if (st != GF_EXIT_OK)
            status = st;
        if (st == GF_EXIT_SIGINT || st == GF_EXIT_SIGTERM)
            break;
    }
    session_close(&ses);
    if (o->json) {
        char *json = gf_sweep_json(rows, n);
        if (json) {
            puts(json);
            gf_free(json);
        }
    } else if (!o->quiet) {
        gf_sweep_table(stdout, rows, n);
    }
    fflush(stdout);
    return status;
}

int main(int argc, char **argv)
{
    static struct gf_options opts; /* large: keep it off the stack */
    char err[512];

    /* A closed stdout (| head -c1) must not kill a run half-way. */
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit must fail one save (EFBIG), not kill the run. */
    signal(SIGXFSZ, SIG_IGN);

#ifdef GF_TORTURE
    /* Test build only: GF_FAIL_ALLOC_AT=N fails the Nth allocation. */
    const char *fail_at = getenv("GF_FAIL_ALLOC_AT");
    if (fail_at)
        gf_alloc_fail_at(strtoul(fail_at, NULL, 10));
#endif
    if (gf_cli_parse(argc, argv, &opts, err, sizeof err) != 0) {
        fprintf(stderr, "*** Usage error: %s\n%s", err, gf_cli_usage());
        return GF_EXIT_USAGE;
    }
    if (opts.show_help) {
        fputs(gf_cli_help(), stdout);
        gf_options_free(&opts);
        return GF_EXIT_OK;
    }
    if (opts.show_version) {
        print_version();
        gf_options_free(&opts);
        return GF_EXIT_OK;
    }
    if (gf_alloc_install(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "getflags: cannot initialise libcurl\n");
        gf_options_free(&opts);
        return GF_EXIT_CANNOT_START;
    }

    int status = opts.nsweep > 0 ? sweep(&opts) : download(&opts);
    if (gf_alloc_failures() > 0) {
        /* Whatever was lost to it, a run that ran out of memory is not a
         * clean run. */
        fprintf(stderr, "getflags: out of memory during the run\n");
        if (status == GF_EXIT_OK)
            status = GF_EXIT_ERRORS;
    }
    /* A report or summary lost to a full disk or a broken pipe is not a
     * clean run; stderr is checked too, for the lines -v --json sends it. */
    if (gf_report_output_check(stdout, "standard output", stderr) != 0 && status == GF_EXIT_OK)
        status = GF_EXIT_ERRORS;
    if (gf_report_output_check(stderr, "standard error", NULL) != 0 && status == GF_EXIT_OK)
        status = GF_EXIT_ERRORS;
#ifdef GF_TORTURE
    fprintf(stderr, "torture: %lu allocations, %lu failed\n", gf_alloc_count(),
            gf_alloc_failures());
#endif
    curl_global_cleanup();
    gf_options_free(&opts);
    return status;
}
