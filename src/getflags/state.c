#include "gf/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "gf/afile.h"
#include "gf/alloc.h"
#include "gf/error.h"
#include "gf/lock.h"
#include "gf/names.h"
#include "statedir.h"

/* ---- DIR ------------------------------------------------------------ */

/* mkdir -p: every missing component of dir, in order. Returns 0 or a
 * negated errno with err naming the component that could not be made. */
static int make_parents(const char *dir, char *err, size_t errsz)
{
    char *p = gf_strdup(dir);
    if (p == NULL) {
        gf_errorf(err, errsz, "cannot create the output directory %s: out of memory", dir);
        return GF_ENOMEM;
    }
    int e = 0;
    for (char *s = p + 1;; s++) {
        int last = *s == '\0';
        if (!last && *s != '/')
            continue;
        /* "a//b" and a trailing slash: nothing new to make there. */
        if (s[-1] != '/') {
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                e = -errno;
                if (strcmp(p, dir) == 0)
                    gf_errorf(err, errsz, "cannot create the output directory %s: %s", dir,
                              gf_strerror(e));
                else
                    gf_errorf(err, errsz,
                              "cannot create the output directory %s: cannot create %s: %s", dir, p,
                              gf_strerror(e));
                break;
            }
            if (!last)
                *s = '/';
        }
        if (last)
            break;
    }
    gf_free(p);
    return e;
}

/* Opens DIR as a directory descriptor, creating it and its parents. DIR
 * itself may be a symbolic link to a directory (the user chose it); one
 * that leads nowhere is said to be one rather than created through. */
static int open_dir(const char *dir, char *err, size_t errsz)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            /* Fail the run at the start, not once per code, when the
             * directory cannot take files. */
            if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
                int e = -errno;
                close(fd);
                gf_errorf(err, errsz, "cannot write to the output directory %s: %s", dir,
                          gf_strerror(e));
                return e;
            }
            return fd;
        }
        int e = -errno;
        struct stat st;
        if (e == -ENOENT && lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)) {
            char to[256];
            ssize_t n = readlink(dir, to, sizeof to - 1);
            to[n > 0 ? n : 0] = '\0';
            gf_errorf(
                err, errsz,
                "the output directory %s is a dangling symbolic link (to %s): create its target "
                "or choose another -o",
                dir, to);
            return e;
        }
        if (e == -ENOTDIR && stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
            gf_errorf(err, errsz, "cannot use the output directory %s: it is not a directory", dir);
            return e;
        }
        if (e != -ENOENT || attempt > 0) {
            gf_errorf(err, errsz, "cannot open the output directory %s: %s", dir, gf_strerror(e));
            return e;
        }
        if ((e = make_parents(dir, err, errsz)) != 0)
            return e;
    }
    return -ENOENT; /* not reached */
}

/* ---- Files named by the manifest ------------------------------------- */

enum { FILE_GONE, FILE_DIFFERS, FILE_MATCHES };

/* Is DIR/e->file the file e records? Compares the size first (cheap), then
 * the SHA-256 of its contents. A link or anything but a regular file of
 * one link is not ours: gone. GF_ENOMEM when the digest cannot start. */
static int check_file(int dirfd, const struct gf_manifest_entry *e)
{
    int fd = openat(dirfd, e->file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return FILE_GONE;
    struct stat st;
    int r = FILE_DIFFERS;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        r = FILE_GONE;
    } else if (e->sha256[0] != '\0' && (uint64_t)st.st_size == e->bytes) {
        char hex[GF_SHA256_HEX_LEN];
        int e2 = gf_sha256_fd(fd, hex);
        if (e2 == -ENOMEM)
            r = GF_ENOMEM;
        else if (e2 == 0 && strcmp(hex, e->sha256) == 0)
            r = FILE_MATCHES;
    }
    close(fd);
    return r;
}

/* Checks every file the manifest names, once, before the run: a file that
 * is gone is no longer the code's; one that changed stays the code's
 * (nobody else may overwrite it) but nothing vouches for it any more.
 * Builds what --update may use. */
static int check_files(struct gf_state *s)
{
    struct gf_manifest *m = &s->m;
    s->prev_store = gf_calloc(m->n ? m->n : 1, sizeof *s->prev_store);
    if (s->prev_store == NULL)
        return GF_ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        const struct gf_manifest_entry *e = &m->entries[i];
        if (e->file == NULL)
            continue;
        int r = check_file(s->dirfd, e);
        if (r < 0)
            return r;
        if (r == FILE_MATCHES) {
            s->prev_store[i] = (struct gf_prev){
                .file = e->file,
                .meta_etag = e->meta.etag,
                .meta_last_modified = e->meta.last_modified,
                .image_etag = e->image.etag,
                .image_last_modified = e->image.last_modified,
                .sha256 = e->sha256,
                .bytes = e->bytes,
            };
            continue;
        }
        if (r == FILE_DIFFERS && !gf_status_has_file(e->status) && e->sha256[0] == '\0')
            continue; /* an error entry that keeps a name and vouches for nothing */
        char why[GF_NAME_MAX + 64];
        struct gf_manifest_entry d = *e;
        d.meta = (struct gf_manifest_request){0};
        d.image = (struct gf_manifest_request){0};
        d.sha256[0] = '\0';
        d.bytes = 0;
        if (r == FILE_GONE)
            d.file = NULL;
        if (gf_status_has_file(e->status)) {
            d.status = GF_ERROR;
            snprintf(why, sizeof why, "its file %s %s since the last run", e->file,
                     r == FILE_GONE ? "was removed" : "changed");
            d.error = why;
        }
        /* Same code, replaced in place: i still indexes it. */
        int rc = gf_manifest_set(m, &d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- Open and close --------------------------------------------------- */

static int load_manifest(struct gf_state *s, const struct gf_state_config *cfg, char *err,
                         size_t errsz)
{
    char msg[2 * PATH_MAX + 512]; /* room for two paths and the reason */
    int rc = gf_manifest_load_at(s->sfd, cfg->dir, &s->m, msg, sizeof msg);
    if (rc == GF_ENOMEM) {
        gf_errorf(err, errsz, "%s", msg);
        return rc;
    }
    if (rc != 0) {
        gf_manifest_free(&s->m);
        if (cfg->retry_failed) {
            gf_errorf(err, errsz, "--retry-failed needs the last run's manifest: %s", msg);
            return rc;
        }
        if (cfg->warn)
            fprintf(cfg->warn, "getflags: warning: %s; it will be rewritten\n", msg);
    } else if (s->m.skipped > 0 && cfg->warn) {
        fprintf(cfg->warn, "getflags: warning: %s\n", msg);
    }
    s->same_server =
        s->m.base_url != NULL && cfg->base_url != NULL && strcmp(s->m.base_url, cfg->base_url) == 0;
    /* The manifest names one server, its entries' validators many: those
     * of entries this run does not fetch again would be saved under this
     * run's server, and a later --update would send them to it. */
    if (!s->same_server)
        gf_manifest_drop_validators(&s->m);
    if (cfg->update && s->m.n > 0 && !s->same_server && cfg->warn)
        fprintf(cfg->warn,
                "getflags: warning: the last run in %s used another server; downloading "
                "everything\n",
                cfg->dir);
    return 0;
}

static int take_lock(struct gf_state *s, const struct gf_state_config *cfg, char *err, size_t errsz)
{
    struct gf_lock lk;
    int rc = gf_lock_acquire_at(s->sfd, cfg->dir, 0, &lk, err, errsz);
    if (rc == GF_LOCK_BUSY && cfg->wait_lock) {
        if (!cfg->quiet && cfg->warn)
            fprintf(cfg->warn, "getflags: waiting for another run on %s to end\n", cfg->dir);
        rc = gf_lock_acquire_at(s->sfd, cfg->dir, 1, &lk, err, errsz);
    }
    if (rc == 0)
        s->lockfd = lk.fd;
    return rc == GF_LOCK_BUSY ? GF_STATE_BUSY : rc;
}

/* --retry-failed with no last run in dir (no manifest, or no dir): an
 * error before dir is created or locked, not a run of no codes that
 * reports success. Other failures to look are left to the run's own
 * opening, which words them. */
static int check_last_run(const char *dir, char *err, size_t errsz)
{
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/" GF_STATEDIR_NAME "/" GF_MANIFEST_NAME, dir);
    if (n < 0 || (size_t)n >= sizeof path || lstat(path, &st) == 0)
        return 0;
    if (errno != ENOENT && errno != ENOTDIR)
        return 0;
    gf_errorf(err, errsz,
              "--retry-failed needs the last run's manifest, and %s has none (%s does not "
              "exist): run without --retry-failed first",
              dir, path);
    return -ENOENT;
}

int gf_state_open(struct gf_state *s, const struct gf_state_config *cfg, char *err, size_t errsz)
{
    *s = (struct gf_state){.dirfd = -1, .sfd = -1, .lockfd = -1, .update = cfg->update};
    if (err && errsz)
        err[0] = '\0';
    int rc;
    if (cfg->retry_failed && (rc = check_last_run(cfg->dir, err, errsz)) != 0)
        return rc;
    if ((s->dir = gf_strdup(cfg->dir)) == NULL) {
        gf_errorf(err, errsz, "out of memory");
        return GF_ENOMEM;
    }
    if ((rc = open_dir(cfg->dir, err, errsz)) < 0)
        goto fail;
    s->dirfd = rc;
    if ((rc = gf_statedir_open_at(s->dirfd, cfg->dir, 1, err, errsz)) < 0)
        goto fail;
    s->sfd = rc;
    if ((rc = take_lock(s, cfg, err, errsz)) != 0)
        goto fail;
    /* Holding the lock, this is the only run on DIR: every temporary file
     * there belongs to a run that is no longer alive. */
    s->swept = gf_afile_sweep(s->dirfd) + gf_afile_sweep(s->sfd);
    if ((rc = load_manifest(s, cfg, err, errsz)) != 0)
        goto fail;
    if ((rc = check_files(s)) != 0) {
        gf_errorf(err, errsz, "cannot check the files in %s: %s", cfg->dir, gf_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    gf_state_close(s);
    return rc;
}

int gf_state_next_run(struct gf_state *s, char *err, size_t errsz)
{
    for (size_t i = 0; i < s->nclaims; i++)
        gf_free(s->claims[i].name);
    s->nclaims = 0;
    gf_free(s->prevs);
    s->prevs = NULL;
    gf_free(s->file_only);
    s->file_only = NULL;
    gf_free(s->prev_store);
    s->prev_store = NULL;
    int rc = check_files(s);
    if (rc != 0)
        gf_errorf(err, errsz, "cannot check the files in %s: %s", s->dir, gf_strerror(rc));
    return rc;
}

int gf_state_dirfd(const struct gf_state *s)
{
    return s->dirfd;
}

const struct gf_manifest *gf_state_manifest(const struct gf_state *s)
{
    return &s->m;
}

static void unreserve(struct gf_state *s)
{
    if (s->reserved && s->sfd >= 0)
        unlinkat(s->sfd, GF_RESERVE_NAME, 0);
    s->reserved = 0;
}

/* Takes bytes of the file system for the final manifest: a file of that
 * size, given back just before the manifest is written. A new file each
 * time (O_EXCL after unlinking any old one), so that nothing is written
 * through a link. A file system that cannot allocate ahead (fallocate
 * unsupported) runs without. */
static int reserve(struct gf_state *s, off_t bytes, char *err, size_t errsz)
{
    if (unlinkat(s->sfd, GF_RESERVE_NAME, 0) != 0 && errno != ENOENT) {
        int e = -errno;
        gf_errorf(err, errsz, "cannot remove %s/" GF_STATEDIR_NAME "/" GF_RESERVE_NAME ": %s",
                  s->dir, gf_strerror(e));
        return e;
    }
    int fd =
        openat(s->sfd, GF_RESERVE_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = -errno;
        gf_errorf(err, errsz, "cannot create %s/" GF_STATEDIR_NAME "/" GF_RESERVE_NAME ": %s",
                  s->dir, gf_strerror(e));
        return e;
    }
    int e = fallocate(fd, 0, 0, bytes) == 0 ? 0 : -errno;
    close(fd);
    /* No allocation ahead on this file system, or a file-size limit
     * (ulimit -f) below the estimate, which the manifest may still fit. */
    if (e == -EOPNOTSUPP || e == -ENOSYS || e == -EFBIG)
        e = 0;
    if (e != 0) {
        unlinkat(s->sfd, GF_RESERVE_NAME, 0);
        gf_errorf(err, errsz, "cannot keep %lld KB in %s/" GF_STATEDIR_NAME " for the manifest: %s",
                  (long long)(bytes + 1023) / 1024, s->dir, gf_strerror(e));
        return e;
    }
    s->reserved = 1;
    return 0;
}

void gf_state_close(struct gf_state *s)
{
    unreserve(s);
    for (size_t i = 0; i < s->nclaims; i++)
        gf_free(s->claims[i].name);
    gf_free(s->claims);
    gf_free(s->prevs);
    gf_free(s->file_only);
    gf_free(s->prev_store);
    gf_manifest_free(&s->m);
    gf_free(s->dir);
    /* Closing the only descriptor of the lock file releases the lock. */
    if (s->lockfd >= 0)
        close(s->lockfd);
    if (s->sfd >= 0)
        close(s->sfd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    *s = (struct gf_state){.dirfd = -1, .sfd = -1, .lockfd = -1};
}

/* ---- What the run needs ----------------------------------------------- */

void gf_state_select_failed(const struct gf_state *s, gf_cc *codes, size_t *n, size_t max)
{
    *n = 0;
    for (size_t i = 0; i < s->m.n && *n < max; i++)
        if (s->m.entries[i].status == GF_ERROR)
            memcpy(codes[(*n)++], s->m.entries[i].cc, sizeof(gf_cc));
}

const struct gf_prev *const *gf_state_prevs(struct gf_state *s, const gf_cc *codes, size_t n,
                                            int *nomem)
{
    *nomem = 0;
    if (s->m.n == 0)
        return NULL;
    /* Validators are the server's: another server's would mean nothing. */
    int validators = s->update && s->same_server;
    gf_free(s->prevs);
    gf_free(s->file_only);
    s->file_only = NULL;
    s->prevs = gf_calloc(n ? n : 1, sizeof *s->prevs);
    if (!validators && s->prevs)
        s->file_only = gf_calloc(n ? n : 1, sizeof *s->file_only);
    if (s->prevs == NULL || (!validators && s->file_only == NULL)) {
        gf_free(s->prevs);
        s->prevs = NULL;
        *nomem = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct gf_manifest_entry *e = gf_manifest_find(&s->m, codes[i]);
        const struct gf_prev *p = e ? &s->prev_store[e - s->m.entries] : NULL;
        if (p == NULL || p->file == NULL)
            continue;
        if (validators) {
            s->prevs[i] = p;
        } else {
            s->file_only[i].file = p->file;
            s->prevs[i] = &s->file_only[i];
        }
    }
    return s->prevs;
}

/* 1 when name is "<stem>.gif" and own is "<stem>_<cc>.gif". */
static int is_plain_of(const char *name, const char *own, const char *cc)
{
    size_t n = strlen(name), o = strlen(own);
    return n > 4 && o == n + 3 && memcmp(name, own, n - 4) == 0 && own[n - 4] == '_' &&
           memcmp(own + n - 3, cc, 2) == 0 && strcmp(own + n - 1, ".gif") == 0;
}

int gf_state_claim(struct gf_state *s, const char *cc, const char *name)
{
    for (size_t i = 0; i < s->nclaims; i++)
        if (strcmp(s->claims[i].name, name) == 0)
            return strcmp(s->claims[i].cc, cc) == 0;
    const struct gf_manifest_entry *own = NULL;
    for (size_t i = 0; i < s->m.n; i++) {
        const struct gf_manifest_entry *e = &s->m.entries[i];
        if (strcmp(e->cc, cc) == 0)
            own = e;
        else if (e->file && strcmp(e->file, name) == 0)
            return 0; /* another code's file, not rewritten by it in this run */
    }
    if (own && own->file && is_plain_of(name, own->file, cc))
        return 0;
    if (s->nclaims == s->claims_cap) {
        size_t cap = s->claims_cap ? s->claims_cap * 2 : 64;
        struct gf_claim *p = gf_realloc(s->claims, cap * sizeof *p);
        if (p == NULL)
            return 0;
        s->claims = p;
        s->claims_cap = cap;
    }
    char *copy = gf_strdup(name);
    if (copy == NULL)
        return 0;
    memcpy(s->claims[s->nclaims].cc, cc, sizeof(gf_cc));
    s->claims[s->nclaims++].name = copy;
    return 1;
}

/* ---- After the run ------------------------------------------------------ */

/* Entries of other codes that name file lose it: it is cc's now. */
static int take_file(struct gf_state *s, const char *cc, const char *file)
{
    for (size_t i = 0; i < s->m.n; i++) {
        const struct gf_manifest_entry *e = &s->m.entries[i];
        /* The first byte first: this runs for every entry of every code. */
        if (e->file == NULL || e->file[0] != file[0] || strcmp(e->file, file) != 0 ||
            strcmp(e->cc, cc) == 0)
            continue;
        char why[GF_NAME_MAX + 64];
        struct gf_manifest_entry d = *e;
        d.file = NULL;
        d.sha256[0] = '\0';
        d.bytes = 0;
        if (gf_status_has_file(e->status)) {
            d.status = GF_ERROR;
            snprintf(why, sizeof why, "its file %s was given to %s", file, cc);
            d.error = why;
        }
        int rc = gf_manifest_set(&s->m, &d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int gf_state_record(struct gf_state *s, const struct gf_item *it)
{
    /* The --update data points into entries that are about to change. */
    gf_free(s->prevs);
    s->prevs = NULL;
    gf_free(s->file_only);
    s->file_only = NULL;
    const struct gf_manifest_entry *old = gf_manifest_find(&s->m, it->cc);
    struct gf_manifest_entry e = {.http_status = it->http_status};
    memcpy(e.cc, it->cc, sizeof e.cc);
    if (it->status == GF_OK || it->status == GF_UNCHANGED) {
        e.status = it->status;
        e.file = it->file;
        e.bytes = it->file_bytes;
        memcpy(e.sha256, it->sha256, strnlen(it->sha256, sizeof e.sha256 - 1));
        e.meta = (struct gf_manifest_request){it->meta_etag, it->meta_last_modified};
        e.image = (struct gf_manifest_request){it->image_etag, it->image_last_modified};
        if (e.file == NULL)
            return UV_EINVAL;
        int rc = take_file(s, it->cc, e.file);
        if (rc != 0)
            return rc;
    } else {
        e.status = it->status == GF_NOT_FOUND ? GF_NOT_FOUND : GF_ERROR;
        e.error = it->status == GF_PENDING ? "the run was interrupted before this code finished"
                  : it->status == GF_ERROR ? it->error
                                           : NULL;
        if (old) {
            /* The file an earlier run saved is still there and still the
             * code's; what vouched for it still does. */
            e.file = old->file;
            e.bytes = old->bytes;
            memcpy(e.sha256, old->sha256, sizeof e.sha256);
            e.meta = old->meta;
            e.image = old->image;
            if (it->status == GF_PENDING && it->http_status == 0)
                e.http_status = old->http_status;
        }
    }
    return gf_manifest_set(&s->m, &e);
}

static int by_cc(const void *a, const void *b)
{
    return strcmp(((const struct gf_manifest_entry *)a)->cc,
                  ((const struct gf_manifest_entry *)b)->cc);
}

int gf_state_begin(struct gf_state *s, const gf_cc *codes, size_t n, const char *base_url,
                   char *err, size_t errsz)
{
    static const char why[] = "the run was interrupted before this code finished";
    /* Room for the manifest's entries after the run: those it has, and one
     * for each code of the run it has not (a code already in it is
     * replaced, not added). */
    size_t added = 0;
    for (size_t i = 0; i < n; i++)
        added += gf_manifest_find(&s->m, codes[i]) == NULL;
    int rc = reserve(s, (off_t)(s->m.n + added + 4) * GF_RESERVE_PER_ENTRY, err, errsz);
    if (rc != 0)
        return rc;
    /* The entries are left as they are (the run reads them through the
     * --update data): the journal is a shallow copy with the run's codes
     * marked, its strings borrowed. */
    struct gf_manifest_entry *e = gf_calloc(s->m.n + n + 1, sizeof *e);
    if (e == NULL) {
        unreserve(s);
        gf_errorf(err, errsz, "cannot record the start of the run: %s", gf_strerror(GF_ENOMEM));
        return GF_ENOMEM;
    }
    size_t k = s->m.n;
    if (k > 0)
        memcpy(e, s->m.entries, k * sizeof *e);
    /* 1 + the entry of each new code AA..ZZ, 0 while it has none: a code
     * listed twice in the run gets one entry, found without a search. */
    size_t slot[26 * 26];
    memset(slot, 0, sizeof slot);
    for (size_t i = 0; i < n; i++) {
        const struct gf_manifest_entry *old = gf_manifest_find(&s->m, codes[i]);
        struct gf_manifest_entry *d = old ? &e[old - s->m.entries] : NULL;
        const char *c = codes[i];
        size_t at = c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' && c[2] == '\0'
                        ? (size_t)(c[0] - 'A') * 26 + (size_t)(c[1] - 'A')
                        : SIZE_MAX;
        if (d == NULL && at != SIZE_MAX && slot[at] != 0)
            d = &e[slot[at] - 1];
        if (d == NULL) {
            for (size_t j = s->m.n; j < k && d == NULL && at == SIZE_MAX; j++)
                if (strcmp(e[j].cc, codes[i]) == 0)
                    d = &e[j];
            if (d == NULL) {
                d = &e[k++];
                memcpy(d->cc, codes[i], sizeof d->cc);
                if (at != SIZE_MAX)
                    slot[at] = k;
            }
        }
        d->status = GF_ERROR;
        d->error = (char *)why;
    }
    qsort(e, k, sizeof *e, by_cc);
    char now[GF_MANIFEST_TIME_LEN];
    struct gf_manifest j = {
        .run_time = gf_manifest_time(time(NULL), now) == 0 ? now : NULL,
        .base_url = (char *)base_url,
        .entries = e,
        .n = k,
        .cap = k,
    };
    rc = gf_manifest_save_at(s->sfd, s->dir, &j, err, errsz);
    gf_free(e);
    if (rc != 0)
        unreserve(s);
    return rc;
}

int gf_state_save(struct gf_state *s, const char *base_url, char *err, size_t errsz)
{
    char now[GF_MANIFEST_TIME_LEN];
    int rc = gf_manifest_time(time(NULL), now);
    if (rc == 0)
        rc = gf_manifest_set_run(&s->m, now, base_url);
    if (rc != 0) {
        gf_errorf(err, errsz, "cannot record the run in the manifest: %s", gf_strerror(rc));
        return rc;
    }
    /* The space kept since the start is free for the manifest now. */
    unreserve(s);
    return gf_manifest_save_at(s->sfd, s->dir, &s->m, err, errsz);
}
