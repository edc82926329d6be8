/* The body sink: memory up to its threshold, then a temporary file in a
 * scratch directory; every end of a body leaves no temporary file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "gf/body.h"
#include "gf/error.h"

#include "tmpdir.h"

static int dirfd_;

static int setup(void **state)
{
    if (tmpdir_setup(state) != 0)
        return -1;
    dirfd_ = open(test_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return dirfd_ >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    close(dirfd_);
    return tmpdir_teardown(state);
}

/* A valid GIF of about size bytes: one image of zero data sub-blocks. */
static unsigned char *big_gif(size_t size, size_t *n)
{
    size_t blocks = (size - 26) / 256, at = 0;
    unsigned char *p = malloc(26 + blocks * 256);
    assert_non_null(p);
    memcpy(p, "GIF89a\x01\x00\x01\x00\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x08", 24);
    at = 24;
    for (size_t i = 0; i < blocks; i++, at += 256) {
        p[at] = 255;
        memset(p + at + 1, 0, 255);
    }
    p[at++] = 0;
    p[at++] = 0x3B;
    *n = at;
    return p;
}

static void feed(struct gf_body_sink *s, const unsigned char *p, size_t n, size_t piece)
{
    for (size_t off = 0; off < n; off += piece)
        assert_int_equal(gf_body_append(s, p + off, n - off < piece ? n - off : piece), 0);
}

static void test_body_metadata_stays_in_memory_up_to_its_limit(void **state)
{
    (void)state;
    struct gf_body_sink s;
    gf_body_init(&s, 10, 0, dirfd_, 0);
    assert_int_equal(gf_body_append(&s, "{\"a\":", 5), 0);
    assert_int_equal(gf_body_append(&s, "1}", 2), 0);
    assert_string_equal(s.data, "{\"a\":1}");
    assert_int_equal(s.len, 7);
    assert_int_equal(gf_body_append(&s, "1234", 4), GF_ETOOBIG);
    assert_true(s.too_big);
    assert_null(s.file);
    gf_body_abort(&s);
    assert_null(s.data);
    assert_int_equal(s.len, 0);
    assert_false(s.too_big);
    assert_int_equal(s.limit, 10); /* ready for a retry */
    assert_int_equal(tmpdir_entries(), 0);
}

static void test_body_small_image_stays_in_memory(void **state)
{
    (void)state;
    size_t n;
    unsigned char *gif = big_gif(4096, &n);
    struct gf_body_sink s;
    char why[160];
    gf_body_init(&s, 1 << 20, GF_BODY_SPILL_AT, dirfd_, 1);
    feed(&s, gif, n, 100);
    assert_null(s.file);
    assert_memory_equal(s.data, gif, n);
    assert_int_equal(gf_body_finish(&s, why, sizeof why), 0);
    assert_string_equal(why, "");
    assert_int_equal(tmpdir_entries(), 0);
    gf_body_abort(&s);
    free(gif);
}

static void test_body_large_image_goes_to_a_file_as_it_arrives(void **state)
{
    (void)state;
    size_t n;
    unsigned char *gif = big_gif(200 * 1024, &n);
    struct gf_body_sink s;
    char why[160];
    gf_body_init(&s, 1 << 20, GF_BODY_SPILL_AT, dirfd_, 1);
    feed(&s, gif, GF_BODY_SPILL_AT, 1000);
    assert_null(s.file); /* exactly the threshold is still memory */
    assert_int_equal(gf_body_append(&s, gif + GF_BODY_SPILL_AT, 1), 0);
    assert_non_null(s.file);
    assert_null(s.data);
    assert_int_equal(tmpdir_entries(), 1);
    feed(&s, gif + GF_BODY_SPILL_AT + 1, n - GF_BODY_SPILL_AT - 1, 16384);
    assert_int_equal(s.len, n);
    assert_int_equal(gf_body_finish(&s, why, sizeof why), 0);
    /* Everything written, and its digest kept as it went. */
    assert_int_equal(s.file->bytes, n);
    assert_int_equal(gf_afile_commit(s.file, "big.gif", 0), 0);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dn = 0;
    char hex[GF_SHA256_HEX_LEN];
    assert_int_equal(EVP_Digest(gif, n, d, &dn, EVP_sha256(), NULL), 1);
    for (unsigned i = 0; i < dn; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(s.file->sha256, hex);
    gf_body_abort(&s); /* after the rename: nothing to remove */
    struct stat st;
    assert_int_equal(fstatat(dirfd_, "big.gif", &st, 0), 0);
    assert_int_equal(st.st_size, n);
    assert_int_equal(tmpdir_entries(), 1);
    unlinkat(dirfd_, "big.gif", 0);
    free(gif);
}

static void test_body_abort_mid_stream_removes_the_file(void **state)
{
    (void)state;
    size_t n;
    unsigned char *gif = big_gif(100 * 1024, &n);
    struct gf_body_sink s;
    gf_body_init(&s, 1 << 20, GF_BODY_SPILL_AT, dirfd_, 1);
    feed(&s, gif, n / 2, 4096);
    assert_int_equal(tmpdir_entries(), 1);
    gf_body_abort(&s);
    assert_int_equal(tmpdir_entries(), 0);
    assert_null(s.file);
    /* Reused for the retry, then too big: the file goes at once. */
    feed(&s, gif, n / 2, 4096);
    s.limit = n / 2 + 10;
    assert_int_equal(gf_body_append(&s, gif + n / 2, 100), GF_ETOOBIG);
    gf_body_abort(&s);
    assert_int_equal(tmpdir_entries(), 0);
    gf_body_abort(&s);
    free(gif);
}

static void test_body_not_a_gif_is_counted_not_kept(void **state)
{
    (void)state;
    static unsigned char page[100 * 1024];
    struct gf_body_sink s;
    char why[160];
    memset(page, ' ', sizeof page);
    memcpy(page, "<html>", 6);
    gf_body_init(&s, 1 << 20, GF_BODY_SPILL_AT, dirfd_, 1);
    feed(&s, page, sizeof page, 4096);
    assert_int_equal(s.len, sizeof page);
    assert_null(s.file);
    assert_null(s.data);
    assert_int_equal(tmpdir_entries(), 0);
    assert_int_equal(gf_body_finish(&s, why, sizeof why), GF_EGIF);
    assert_string_equal(why, "not a GIF image: no GIF87a or GIF89a signature (it looks like HTML)");
    gf_body_abort(&s);
}

static void test_body_a_file_that_cannot_be_made_is_an_error(void **state)
{
    (void)state;
    char gone[300];
    size_t n;
    unsigned char *gif = big_gif(100 * 1024, &n);
    struct gf_body_sink s;
    snprintf(gone, sizeof gone, "%s/gone", test_dir);
    assert_int_equal(mkdir(gone, 0700), 0);
    int fd = open(gone, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(rmdir(gone), 0);
    gf_body_init(&s, 1 << 20, GF_BODY_SPILL_AT, fd, 1);
    feed(&s, gif, GF_BODY_SPILL_AT, 4096);
    assert_int_equal(gf_body_append(&s, gif + GF_BODY_SPILL_AT, 4096), -ENOENT);
    assert_int_equal(s.err, -ENOENT);
    assert_string_equal(s.step, "create a temporary file");
    assert_null(s.data);
    /* Sticky: later pieces fail the same way. */
    assert_int_equal(gf_body_append(&s, gif, 1), -ENOENT);
    gf_body_abort(&s);
    assert_int_equal(s.err, 0);
    close(fd);
    free(gif);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_metadata_stays_in_memory_up_to_its_limit),
        cmocka_unit_test(test_body_small_image_stays_in_memory),
        cmocka_unit_test(test_body_large_image_goes_to_a_file_as_it_arrives),
        cmocka_unit_test(test_body_abort_mid_stream_removes_the_file),
        cmocka_unit_test(test_body_not_a_gif_is_counted_not_kept),
        cmocka_unit_test(test_body_a_file_that_cannot_be_made_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
