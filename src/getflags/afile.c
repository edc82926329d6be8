#include "gf/afile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int gf_write_all(int fd, const void *p, size_t len)
{
    const unsigned char *b = p;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Ends c's digest as lower-case hex. Returns 0 or -EIO. */
static int digest_hex(EVP_MD_CTX *c, char out[GF_SHA256_HEX_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (EVP_DigestFinal_ex(c, d, &n) != 1 || 2 * n + 1 != GF_SHA256_HEX_LEN)
        return -EIO;
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}

/* SHA-256 as fetched from libcrypto's providers, once for the process:
 * EVP_sha256() would make EVP_DigestInit_ex() look it up again for every
 * file. Set by the first thread that gets it; NULL until then, so that a
 * fetch that failed (out of memory) is tried again by the next file. */
static _Atomic(EVP_MD *) sha256_md;

static EVP_MD *sha256(void)
{
    EVP_MD *md = atomic_load(&sha256_md);
    if (md != NULL)
        return md;
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (md == NULL)
        return NULL;
    EVP_MD *none = NULL;
    if (!atomic_compare_exchange_strong(&sha256_md, &none, md)) {
        EVP_MD_free(md); /* another thread's is in place */
        md = none;
    }
    return md;
}

int gf_afile_init(void)
{
    return sha256() != NULL ? 0 : -ENOMEM;
}

void gf_afile_cleanup(void)
{
    EVP_MD_free(atomic_exchange(&sha256_md, NULL));
}

/* A new SHA-256 context, or NULL when libcrypto cannot allocate one. */
static EVP_MD_CTX *digest_new(void)
{
    EVP_MD *md = sha256();
    if (md == NULL)
        return NULL;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c != NULL && EVP_DigestInit_ex(c, md, NULL) != 1) {
        EVP_MD_CTX_free(c);
        c = NULL;
    }
    return c;
}

int gf_sha256_fd(int fd, char out[GF_SHA256_HEX_LEN])
{
    EVP_MD_CTX *c = digest_new();
    if (c == NULL)
        return -ENOMEM;
    unsigned char buf[16384];
    ssize_t n;
    int e = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && EVP_DigestUpdate(c, buf, (size_t)n) != 1)
            break;
    if (n != 0)
        e = n < 0 ? -errno : -EIO;
    else
        e = digest_hex(c, out);
    EVP_MD_CTX_free(c);
    return e;
}

/* This process's id, for temporary names, asked of the kernel once rather
 * than with a system call per file; a child of fork() asks again. */
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;
static long self_pid;

static void read_pid(void)
{
    self_pid = (long)getpid();
}

static void pid_init(void)
{
    read_pid();
    pthread_atfork(NULL, NULL, read_pid);
}

static long pid_self(void)
{
    pthread_once(&pid_once, pid_init);
    return self_pid;
}

static uint64_t next_id(void)
{
    static atomic_uint_fast64_t counter;
    return atomic_fetch_add(&counter, 1);
}

static int afile_open(struct gf_afile *a, int dirfd, int digest)
{
    *a = (struct gf_afile){.dirfd = dirfd, .fd = -1};
    if (digest && (a->sha = digest_new()) == NULL) {
        a->step = "start the SHA-256 digest";
        return a->err = -ENOMEM;
    }
    int fd = -1, e = EEXIST;
    for (int tries = 0; tries < 100 && fd < 0 && e == EEXIST; tries++) {
        snprintf(a->tmp, sizeof a->tmp, GF_TMP_PREFIX "%ld-%llu", pid_self(),
                 (unsigned long long)next_id());
        fd = openat(dirfd, a->tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
        e = fd < 0 ? errno : 0;
    }
    a->step = "create a temporary file";
    if (fd < 0) {
        a->tmp[0] = '\0'; /* not ours: never removed */
        gf_afile_abort(a);
        return a->err = -e;
    }
    /* O_EXCL made it, so it has one link; a second one would mean someone
     * linked it elsewhere in the meantime, and writing there is refused. */
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(fd);
        gf_afile_abort(a);
        return a->err = -EMLINK;
    }
    a->fd = fd;
    a->step = NULL;
    return 0;
}

int gf_afile_open(struct gf_afile *a, int dirfd)
{
    return afile_open(a, dirfd, 1);
}

int gf_afile_open_nodigest(struct gf_afile *a, int dirfd)
{
    return afile_open(a, dirfd, 0);
}

int gf_afile_write(struct gf_afile *a, const void *p, size_t len)
{
    if (a->err == 0 && a->fd < 0)
        a->err = -EBADF;
    if (a->err != 0)
        return a->err;
    int e = gf_write_all(a->fd, p, len);
    if (e != 0) {
        a->step = "write";
        return a->err = e;
    }
    if (a->sha != NULL && EVP_DigestUpdate(a->sha, p, len) != 1) {
        a->step = "digest";
        return a->err = -EIO;
    }
    a->bytes += len;
    return 0;
}

int gf_afile_commit(struct gf_afile *a, const char *name, int sync_dir)
{
    if (a->fd < 0) {
        if (a->err == 0)
            a->err = -EBADF;
        gf_afile_abort(a);
        return a->err;
    }
    if (a->err == 0 && a->sha != NULL && digest_hex(a->sha, a->sha256) != 0) {
        a->err = -EIO;
        a->step = "digest";
    }
    EVP_MD_CTX_free(a->sha);
    a->sha = NULL;
    /* On disk before the rename makes it visible: a crash leaves the old
     * file or the new one, never an empty one. */
    if (a->err == 0 && fdatasync(a->fd) != 0) {
        a->err = -errno;
        a->step = "sync";
    }
    if (close(a->fd) != 0 && a->err == 0) {
        a->err = -errno;
        a->step = "close";
    }
    a->fd = -1;
    if (a->err == 0 && renameat(a->dirfd, a->tmp, a->dirfd, name) != 0) {
        a->err = -errno;
        a->step = "rename";
    }
    if (a->err != 0) {
        unlinkat(a->dirfd, a->tmp, 0);
        a->tmp[0] = '\0';
        return a->err;
    }
    a->tmp[0] = '\0';
    /* The rename itself; a file system that cannot sync a directory still
     * has the file in place, so that is no error. */
    if (sync_dir)
        fsync(a->dirfd);
    return 0;
}

void gf_afile_abort(struct gf_afile *a)
{
    EVP_MD_CTX_free(a->sha);
    a->sha = NULL;
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }
    if (a->tmp[0]) {
        unlinkat(a->dirfd, a->tmp, 0);
        a->tmp[0] = '\0';
    }
}

/* "<digits>-<digits>" and nothing else. */
static int pid_n(const char *s, long *pid)
{
    char *end;
    if (*s < '0' || *s > '9')
        return 0;
    *pid = strtol(s, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return 0;
    for (s = end + 1; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* 1 when name is a temporary name of gf_afile_open() (or of the manifest
 * of getflags 1.x: "manifest.json.tmp-<pid>-<n>"), with its pid in *pid. */
static int tmp_pid(const char *name, long *pid)
{
    static const char old[] = "manifest.json.tmp-";
    if (strncmp(name, GF_TMP_PREFIX, sizeof GF_TMP_PREFIX - 1) == 0)
        return pid_n(name + sizeof GF_TMP_PREFIX - 1, pid);
    if (strncmp(name, old, sizeof old - 1) == 0)
        return pid_n(name + sizeof old - 1, pid);
    return 0;
}

unsigned gf_afile_sweep(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return 0;
    }
    unsigned n = 0;
    long self = pid_self(), pid;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        /* Only regular files: a directory or a link of that name is not
         * one of ours. */
        if (tmp_pid(de->d_name, &pid) && pid != self &&
            fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            unlinkat(dirfd, de->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}
