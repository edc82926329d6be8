/* Unit tests of gf/gif.h: the 194 flags of flags_data, every truncation
 * of them, and hand-built GIFs that break one rule each. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/error.h"
#include "gf/gif.h"

#ifndef GF_FLAGS_DATA
#error "GF_FLAGS_DATA must name the flags_data directory"
#endif

/* A file read whole into an exact-size buffer, so ASan sees any read past
 * its end. */
struct blob {
    unsigned char *p;
    size_t n;
};

static struct blob read_flag(const char *cc)
{
    char path[512];
    struct blob b = {NULL, 0};
    FILE *f;
    long size;

    snprintf(path, sizeof path, "%s/flags/%s/%s.gif", GF_FLAGS_DATA, cc, cc);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    b.n = (size_t)size;
    b.p = malloc(b.n);
    assert_non_null(b.p);
    assert_int_equal(fread(b.p, 1, b.n, f), b.n);
    fclose(f);
    return b;
}

/* The 194 codes, lower case, from country_codes.txt. */
static size_t read_codes(char codes[][3], size_t max)
{
    char path[512], word[8];
    size_t n = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/country_codes.txt", GF_FLAGS_DATA);
    f = fopen(path, "r");
    assert_non_null(f);
    while (n < max && fscanf(f, "%7s", word) == 1) {
        assert_int_equal(strlen(word), 2);
        codes[n][0] = (char)(word[0] | 0x20);
        codes[n][1] = (char)(word[1] | 0x20);
        codes[n][2] = '\0';
        n++;
    }
    fclose(f);
    return n;
}

/* Checks an exact-size copy of the n bytes. */
static int check(const void *p, size_t n, char *err, size_t errsz)
{
    unsigned char *copy = malloc(n > 0 ? n : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, p, n);
    rc = gf_gif_check(copy, n, err, errsz);
    free(copy);
    return rc;
}

static void expect_ok(const void *p, size_t n)
{
    char err[256];

    memset(err, 'X', sizeof err);
    assert_int_equal(check(p, n, err, sizeof err), 0);
    assert_string_equal(err, "");
}

static void expect_refused(const void *p, size_t n, const char *reason)
{
    char err[256];

    memset(err, 'X', sizeof err);
    assert_int_equal(check(p, n, err, sizeof err), GF_EGIF);
    assert_non_null(memchr(err, '\0', sizeof err));
    assert_true(strlen(err) > 0);
    if (reason != NULL)
        assert_string_equal(err, reason);
}

/* A small valid GIF89a: 2x1, global table of 2 colors, a graphic control
 * extension, a comment, one image with a local table of 2 colors whose LZW
 * data spans two sub-blocks, then the trailer. */
static const unsigned char small[] = {
    'G',  'I',  'F',  '8',  '9',  'a',  0x02, 0x00, 0x01, 0x00,
    0x80, 0x00, 0x00,                                           /* screen 2x1, GCT of 2 */
    0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF,                         /* global color table */
    0x21, 0xF9, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,             /* graphic control */
    0x21, 0xFE, 0x02, 'h',  'i',  0x00,                         /* comment */
    0x2C, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x80, /* image, LCT of 2 */
    0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF,                         /* local color table */
    0x02,                                                       /* LZW minimum code size */
    0x02, 0x44, 0x01, 0x01, 0x0A, 0x00,                         /* data sub-blocks */
    0x3B,
};

/* Offsets in small[]. */
enum {
    SMALL_GCE = 19,
    SMALL_COMMENT = 27,
    SMALL_IMAGE = 33,
    SMALL_LZW = 49,
    SMALL_DATA = 50,
    SMALL_TRAILER = 56,
};

static void test_gif_every_flag_of_flags_data_is_accepted(void **state)
{
    char codes[200][3];
    size_t n = read_codes(codes, 200), i;

    assert_int_equal(n, 194);
    for (i = 0; i < n; i++) {
        struct blob b = read_flag(codes[i]);
        char err[256];

        if (gf_gif_check(b.p, b.n, err, sizeof err) != 0)
            fail_msg("%s.gif refused: %s", codes[i], err);
        free(b.p);
    }
}

static void test_gif_every_truncation_of_every_flag_is_refused(void **state)
{
    char codes[200][3];
    size_t n = read_codes(codes, 200), i, cut;

    for (i = 0; i < n; i++) {
        struct blob b = read_flag(codes[i]);

        for (cut = 0; cut < b.n; cut++) {
            unsigned char *copy = malloc(cut > 0 ? cut : 1);
            char err[256];

            assert_non_null(copy);
            memcpy(copy, b.p, cut);
            if (gf_gif_check(copy, cut, err, sizeof err) != GF_EGIF)
                fail_msg("%s.gif cut to %zu of %zu bytes accepted", codes[i], cut, b.n);
            /* Every cut after the signature is named a truncation. */
            if (cut >= 6 && strncmp(err, "truncated GIF image: ends inside ", 33) != 0)
                fail_msg("%s.gif cut to %zu bytes: %s", codes[i], cut, err);
            free(copy);
        }
        free(b.p);
    }
}

static void test_gif_truncation_messages_name_the_place(void **state)
{
    expect_refused(small, 6, "truncated GIF image: ends inside the logical screen descriptor");
    expect_refused(small, 15, "truncated GIF image: ends inside the global color table");
    expect_refused(small, SMALL_GCE + 3, "truncated GIF image: ends inside an extension block");
    expect_refused(small, SMALL_IMAGE + 4, "truncated GIF image: ends inside an image descriptor");
    expect_refused(small, SMALL_IMAGE + 12, "truncated GIF image: ends inside a local color table");
    expect_refused(small, SMALL_LZW,
                   "truncated GIF image: ends inside an image (before its LZW code size)");
    expect_refused(small, SMALL_DATA + 2, "truncated GIF image: ends inside an image data block");
    expect_refused(small, SMALL_TRAILER,
                   "truncated GIF image: ends inside the file, before the trailer byte (0x3B)");
    expect_refused(small, SMALL_IMAGE,
                   "truncated GIF image: ends inside the file, before any image");
    expect_refused("GIF8", 4, "truncated GIF image: ends inside the GIF signature");
}

static void test_gif_small_hand_built_gif_is_accepted(void **state)
{
    unsigned char g87[sizeof small];

    expect_ok(small, sizeof small);
    /* GIF87a has no extensions in its spec, but decoders skip them. */
    memcpy(g87, small, sizeof small);
    g87[4] = '7';
    expect_ok(g87, sizeof g87);
}

static void test_gif_six_byte_header_is_refused(void **state)
{
    expect_refused("GIF89a", 6, "truncated GIF image: ends inside the logical screen descriptor");
    expect_refused("GIF87a", 6, "truncated GIF image: ends inside the logical screen descriptor");
}

static void test_gif_header_then_html_is_refused(void **state)
{
    static const char body[] = "GIF89a<html><body>Service temporarily unavailable</body></html>\n";
    char err[256];

    /* The HTML reads as a screen descriptor declaring a color table,
     * which the body then runs out inside of, or as a bad block. */
    assert_int_equal(check(body, sizeof body - 1, err, sizeof err), GF_EGIF);
    assert_true(strncmp(err, "truncated GIF image: ", 21) == 0 ||
                strncmp(err, "malformed GIF image: ", 21) == 0);
}

static void test_gif_not_a_gif(void **state)
{
    expect_refused("<!DOCTYPE html><html></html>", 28,
                   "not a GIF image: no GIF87a or GIF89a signature (it looks like HTML)");
    expect_refused("\r\n  <html>", 10,
                   "not a GIF image: no GIF87a or GIF89a signature (it looks like HTML)");
    expect_refused("\x89PNG\r\n\x1a\n", 8, "not a GIF image: no GIF87a or GIF89a signature");
    expect_refused("", 0, "not a GIF image: no GIF87a or GIF89a signature (empty body)");
    expect_refused("GIF90a", 6,
                   "not a GIF image: unknown GIF version \"90a\" (GIF87a or GIF89a expected)");
    expect_refused("GIF\x1b\n\x07", 6,
                   "not a GIF image: unknown GIF version \"???\" (GIF87a or GIF89a expected)");
    expect_refused("GIF8", 3 + 0, "truncated GIF image: ends inside the GIF signature");
    expect_refused("gif89a", 6, "not a GIF image: no GIF87a or GIF89a signature");
}

static void test_gif_anything_after_the_trailer_is_refused(void **state)
{
    unsigned char buf[sizeof small + 16];

    memcpy(buf, small, sizeof small);
    buf[sizeof small] = 0x00;
    expect_refused(buf, sizeof small + 1,
                   "malformed GIF image: 1 byte of other data after the trailer");
    memcpy(buf + sizeof small, small, 16);
    expect_refused(buf, sizeof small + 16,
                   "malformed GIF image: 16 bytes of other data after the trailer");
}

static void test_gif_unknown_block_is_refused(void **state)
{
    unsigned char buf[sizeof small];

    memcpy(buf, small, sizeof small);
    buf[SMALL_COMMENT] = '<';
    expect_refused(buf, sizeof buf, "malformed GIF image: unknown block type 0x3c at byte 27");
    /* A missing sub-block terminator makes the next block's first byte a
     * sub-block size, and the walk ends elsewhere: still refused. */
    memcpy(buf, small, sizeof small);
    buf[SMALL_DATA + 5] = 0x01;
    expect_refused(buf, sizeof buf, NULL);
}

static void test_gif_lzw_code_size_is_checked(void **state)
{
    unsigned char buf[sizeof small];

    memcpy(buf, small, sizeof small);
    buf[SMALL_LZW] = 0;
    expect_refused(buf, sizeof buf,
                   "malformed GIF image: LZW minimum code size 0 at byte 49 (1 to 11 allowed)");
    buf[SMALL_LZW] = 12;
    expect_refused(buf, sizeof buf,
                   "malformed GIF image: LZW minimum code size 12 at byte 49 (1 to 11 allowed)");
    buf[SMALL_LZW] = 8;
    expect_ok(buf, sizeof buf);
}

static void test_gif_without_an_image_is_refused(void **state)
{
    unsigned char buf[SMALL_IMAGE + 1];

    /* Header, screen, table and extensions, then straight to the trailer. */
    memcpy(buf, small, SMALL_IMAGE);
    buf[SMALL_IMAGE] = 0x3B;
    expect_refused(buf, sizeof buf, "malformed GIF image: it holds no image");
}

static void test_gif_color_table_sizes_follow_the_packed_field(void **state)
{
    /* A global table of 256 colors (size bits 7): 768 bytes. */
    unsigned char buf[13 + 768 + 12 + 4];
    size_t n = 0;

    memcpy(buf, "GIF89a\x01\x00\x01\x00\x87\x00\x00", 13);
    n = 13;
    memset(buf + n, 0x11, 768);
    n += 768;
    memcpy(buf + n, "\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x4c\x01\x00\x3b", 16);
    n += 16;
    expect_ok(buf, n);
    /* One color byte fewer shifts every block after it: refused. */
    memmove(buf + 13 + 767, buf + 13 + 768, 16);
    expect_refused(buf, n - 1, NULL);
    /* Without the table flag the same bytes are not a table. */
    buf[10] = 0x07;
    expect_refused(buf, n - 1, NULL);
}

static void test_gif_error_buffer_is_cut_and_optional(void **state)
{
    char err[8];

    memset(err, 'X', sizeof err);
    assert_int_equal(gf_gif_check((const unsigned char *)"GIF89a", 6, err, sizeof err), GF_EGIF);
    assert_string_equal(err, "truncat");
    assert_int_equal(gf_gif_check((const unsigned char *)"GIF89a", 6, NULL, 0), GF_EGIF);
    assert_int_equal(gf_gif_check(NULL, 0, err, sizeof err), GF_EGIF);
    assert_int_equal(gf_gif_check(small, sizeof small, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gif_every_flag_of_flags_data_is_accepted),
        cmocka_unit_test(test_gif_every_truncation_of_every_flag_is_refused),
        cmocka_unit_test(test_gif_truncation_messages_name_the_place),
        cmocka_unit_test(test_gif_small_hand_built_gif_is_accepted),
        cmocka_unit_test(test_gif_six_byte_header_is_refused),
        cmocka_unit_test(test_gif_header_then_html_is_refused),
        cmocka_unit_test(test_gif_not_a_gif),
        cmocka_unit_test(test_gif_anything_after_the_trailer_is_refused),
        cmocka_unit_test(test_gif_unknown_block_is_refused),
        cmocka_unit_test(test_gif_lzw_code_size_is_checked),
        cmocka_unit_test(test_gif_without_an_image_is_refused),
        cmocka_unit_test(test_gif_color_table_sizes_follow_the_packed_field),
        cmocka_unit_test(test_gif_error_buffer_is_cut_and_optional),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
