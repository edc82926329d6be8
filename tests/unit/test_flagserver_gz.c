/* gzip encoders: every stream must inflate back to what it encodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flagserver/gz.h"

#include <zlib.h>

/* Inflates a whole gzip member; returns the size and checks the content
 * byte by byte against expect (or zeros when expect is NULL). */
static uint64_t inflate_check(const fs_bytes *gz, const unsigned char *expect)
{
    unsigned char out[65536];
    z_stream zs;
    uint64_t total = 0;
    int rc;

    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = gz->data;
    zs.avail_in = (uInt)gz->len;
    do {
        size_t n, i;

        zs.next_out = out;
        zs.avail_out = sizeof(out);
        rc = inflate(&zs, Z_NO_FLUSH);
        assert_true(rc == Z_OK || rc == Z_STREAM_END);
        n = sizeof(out) - zs.avail_out;
        for (i = 0; i < n; i++)
            assert_int_equal(out[i], expect ? expect[total + i] : 0);
        total += n;
    } while (rc != Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0);
    inflateEnd(&zs);
    return total;
}

/* The little-endian word at p. */
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The member's trailer carries gzip's CRC-32 and the length. */
static void test_trailer_crc32(void **state)
{
    fs_bytes gz;

    assert_int_equal(fs_gz_compress("123456789", 9, &gz), 0);
    assert_true(le32(gz.data + gz.len - 8) == 0xcbf43926u);
    assert_true(le32(gz.data + gz.len - 4) == 9);
    free(gz.data);
    assert_int_equal(fs_gz_compress("", 0, &gz), 0);
    assert_true(le32(gz.data + gz.len - 8) == 0);
    assert_true(le32(gz.data + gz.len - 4) == 0);
    free(gz.data);
}

static void test_compress_sizes(void **state)
{
    size_t sizes[] = {0, 1, 1000, 65535, 65536, 200000};
    size_t i, k;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *data = malloc(sizes[i] + 1);
        fs_bytes gz;

        for (k = 0; k < sizes[i]; k++)
            data[k] = (unsigned char)(k * 31 + 7);
        assert_int_equal(fs_gz_compress(data, sizes[i], &gz), 0);
        assert_int_equal(gz.data[0], 0x1f);
        assert_int_equal(gz.data[1], 0x8b);
        assert_true(inflate_check(&gz, data) == sizes[i]);
        free(gz.data);
        free(data);
    }
}

static void test_zeros_sizes(void **state)
{
    uint64_t sizes[] = {0, 1, 2, 258, 259, 1000, 50u * 1024 * 1024};
    size_t i;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        fs_bytes gz;

        assert_int_equal(fs_gz_zeros(sizes[i], &gz), 0);
        assert_true(inflate_check(&gz, NULL) == sizes[i]);
        if (sizes[i] > 1000000)
            assert_true(gz.len < sizes[i] / 100); /* a bomb, not a copy */
        free(gz.data);
    }
}

static void test_public_entry_points(void **state)
{
    static const char text[] = "flag flag flag flag flag flag flag flag";
    fs_bytes gz;

    assert_int_equal(fs_gz_compress(text, sizeof(text) - 1, &gz), 0);
    assert_true(inflate_check(&gz, (const unsigned char *)text) == sizeof(text) - 1);
    assert_true(gz.len < sizeof(text) - 1); /* compressed, not stored */
    free(gz.data);
    assert_int_equal(fs_gz_zeros(10u * 1024 * 1024, &gz), 0);
    assert_true(gz.len < 400000);
    assert_true(inflate_check(&gz, NULL) == 10u * 1024 * 1024);
    free(gz.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trailer_crc32),
        cmocka_unit_test(test_compress_sizes),
        cmocka_unit_test(test_zeros_sizes),
        cmocka_unit_test(test_public_entry_points),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
