/* libcrypto's low-level SHA-256, deprecated in OpenSSL 3 in favour of
 * EVP: EVP fetches the digest from a provider, and that first fetch
 * builds libcrypto's whole table of digests (3 M instructions, 4% of a
 * plain-HTTP run that has no other use for it). These calls reach the
 * same assembly (SHA-NI where the CPU has it) and allocate nothing. */
#define OPENSSL_SUPPRESS_DEPRECATED

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

/* Ends c's digest as lower-case hex. */
static void digest_hex(SHA256_CTX *c, char out[GF_SHA256_HEX_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256_Final(d, c);
    for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * SHA256_DIGEST_LENGTH] = '\0';
}

_Static_assert(2 * SHA256_DIGEST_LENGTH + 1 == GF_SHA256_HEX_LEN, "hex SHA-256 and its NUL");

int gf_sha256_fd(int fd, char out[GF_SHA256_HEX_LEN])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    unsigned char buf[16384];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            SHA256_Update(&c, buf, (size_t)n);
    if (n < 0)
        return -errno;
    digest_hex(&c, out);
    return 0;
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
    *a = (struct gf_afile){.dirfd = dirfd, .fd = -1, .digesting = digest};
    if (digest)
        SHA256_Init(&a->sha);
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
    if (a->digesting)
        SHA256_Update(&a->sha, p, len);
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
    if (a->err == 0 && a->digesting)
        digest_hex(&a->sha, a->sha256);
    a->digesting = 0;
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
    a->digesting = 0;
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
    long pid;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        /* Only regular files: a directory or a link of that name is not
         * one of ours. */
        if (tmp_pid(de->d_name, &pid) &&
            fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            unlinkat(dirfd, de->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}
