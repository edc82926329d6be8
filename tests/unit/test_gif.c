/* Unit tests of gf/gif.h: the 194 flags of flags_data, every truncation
 * of them, and hand-built GIFs that break one rule each; whole, and fed
 * in pieces cut at every point. */
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

/* Feeds the n bytes in pieces, cut at each of the k offsets (ascending),
 * each piece an exact-size copy so ASan sees any read past it. */
static int check_pieces(const unsigned char *p, size_t n, const size_t *cuts, size_t k, char *err,
                        size_t errsz)
{
    struct gf_gif g;
    size_t from = 0, i;

    gf_gif_init(&g);
    for (i = 0; i <= k; i++) {
        size_t to = i < k ? cuts[i] : n;
        unsigned char *copy = malloc(to - from > 0 ? to - from : 1);

        assert_non_null(copy);
        memcpy(copy, p + from, to - from);
        gf_gif_feed(&g, copy, to - from);
        free(copy);
        from = to;
    }
    return gf_gif_finish(&g, err, errsz);
}

/* Every way to cut p in two and in three pieces gives the verdict and
 * the message of the whole. */
static void expect_same_in_pieces(const unsigned char *p, size_t n)
{
    char whole[256], pieces[256];
    int rc = gf_gif_check(p, n, whole, sizeof whole);
    size_t cuts[2];

    for (cuts[0] = 0; cuts[0] <= n; cuts[0]++) {
        assert_int_equal(check_pieces(p, n, cuts, 1, pieces, sizeof pieces), rc);
        assert_string_equal(pieces, whole);
        for (cuts[1] = cuts[0]; cuts[1] <= n; cuts[1]++) {
            if (check_pieces(p, n, cuts, 2, pieces, sizeof pieces) != rc ||
                strcmp(pieces, whole) != 0)
                fail_msg("cut at %zu and %zu of %zu: \"%s\", whole: \"%s\"", cuts[0], cuts[1], n,
                         pieces, whole);
        }
    }
}

static void test_gif_every_split_of_small_gifs_gives_the_same_verdict(void **state)
{
    unsigned char buf[sizeof small + 3];
    size_t i;

    expect_same_in_pieces(small, sizeof small);
    /* Every truncation, and one or three bytes too many. */
    for (i = 0; i < sizeof small; i++)
        expect_same_in_pieces(small, i);
    memcpy(buf, small, sizeof small);
    memcpy(buf + sizeof small, "\x00\x3b\x21", 3);
    expect_same_in_pieces(buf, sizeof small + 1);
    expect_same_in_pieces(buf, sizeof small + 3);
    /* Each kind of refusal. */
    memcpy(buf, small, sizeof small);
    buf[SMALL_COMMENT] = '<';
    expect_same_in_pieces(buf, sizeof small);
    memcpy(buf, small, sizeof small);
    buf[SMALL_LZW] = 12;
    expect_same_in_pieces(buf, sizeof small);
    memcpy(buf, small, SMALL_IMAGE);
    buf[SMALL_IMAGE] = 0x3B;
    expect_same_in_pieces(buf, SMALL_IMAGE + 1);
    expect_same_in_pieces((const unsigned char *)"\r\n \t <html><body>gone</body></html>", 34);
    expect_same_in_pieces((const unsigned char *)"       x", 8);
    expect_same_in_pieces((const unsigned char *)"GIF90a", 6);
    expect_same_in_pieces((const unsigned char *)"GIFxy", 5);
    expect_same_in_pieces((const unsigned char *)"\x89PNG\r\n\x1a\n", 8);
}

static void test_gif_every_flag_fed_byte_by_byte(void **state)
{
    char codes[200][3];
    size_t n = read_codes(codes, 200), i, j, cut;

    for (i = 0; i < n; i++) {
        struct blob b = read_flag(codes[i]);
        char whole[256], pieces[256];

        /* Whole, then every truncation: each byte its own piece. */
        for (cut = b.n + 1; cut-- > 0;) {
            struct gf_gif g;
            int rc = gf_gif_check(b.p, cut, whole, sizeof whole);

            gf_gif_init(&g);
            for (j = 0; j < cut; j++)
                gf_gif_feed(&g, b.p + j, 1);
            if (gf_gif_finish(&g, pieces, sizeof pieces) != rc || strcmp(pieces, whole) != 0)
                fail_msg("%s.gif cut to %zu bytes, byte by byte: \"%s\", whole: \"%s\"", codes[i],
                         cut, pieces, whole);
            if (cut == b.n)
                assert_int_equal(rc, 0);
        }
        free(b.p);
    }
}

/* A large image, as a server may send: 10 MiB of zero data sub-blocks,
 * fed in pieces of every size the transfer might hand over. */
static void test_gif_large_image_in_pieces(void **state)
{
    size_t blocks = 10 * 1024 * 1024 / 256, n = 13 + 11 + blocks * 256 + 2, at = 0, i;
    unsigned char *p = malloc(n);
    static const size_t piece[] = {1, 7, 255, 256, 16384, 65537};
    char err[256];

    assert_non_null(p);
    memcpy(p, "GIF89a\x01\x00\x01\x00\x00\x00\x00", 13);
    at = 13;
    memcpy(p + at, "\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x08", 11);
    at += 11;
    for (i = 0; i < blocks; i++) {
        p[at] = 255;
        memset(p + at + 1, 0, 255);
        at += 256;
    }
    p[at++] = 0x00;
    p[at++] = 0x3B;
    assert_int_equal(at, n);
    for (i = 0; i < sizeof piece / sizeof piece[0]; i++) {
        struct gf_gif g;
        size_t off;

        gf_gif_init(&g);
        for (off = 0; off < n; off += piece[i])
            assert_int_equal(gf_gif_feed(&g, p + off, n - off < piece[i] ? n - off : piece[i]), 0);
        assert_int_equal(gf_gif_finish(&g, err, sizeof err), 0);
        assert_string_equal(err, "");
    }
    free(p);
}

static void test_gif_feed_refuses_early_and_stays_refused(void **state)
{
    struct gf_gif g;
    char err[256];

    /* A page served as the image is known not to be one at its 6th byte. */
    gf_gif_init(&g);
    assert_int_equal(gf_gif_feed(&g, (const unsigned char *)"<html", 5), 0);
    assert_int_equal(gf_gif_feed(&g, (const unsigned char *)">", 1), GF_EGIF);
    assert_int_equal(gf_gif_feed(&g, small, sizeof small), GF_EGIF);
    assert_int_equal(gf_gif_finish(&g, err, sizeof err), GF_EGIF);
    assert_string_equal(err, "not a GIF image: no GIF87a or GIF89a signature (it looks like HTML)");
    /* A bad block type: refused at that byte, whatever follows. */
    gf_gif_init(&g);
    assert_int_equal(gf_gif_feed(&g, small, SMALL_COMMENT), 0);
    assert_int_equal(gf_gif_feed(&g, (const unsigned char *)"\x01", 1), GF_EGIF);
    assert_int_equal(gf_gif_feed(&g, small + SMALL_COMMENT, sizeof small - SMALL_COMMENT), GF_EGIF);
    assert_int_equal(gf_gif_finish(&g, err, sizeof err), GF_EGIF);
    assert_string_equal(err, "malformed GIF image: unknown block type 0x01 at byte 27");
    /* Bytes after the trailer are not refused until the end. */
    gf_gif_init(&g);
    assert_int_equal(gf_gif_feed(&g, small, sizeof small), 0);
    assert_int_equal(gf_gif_feed(&g, small, 2), 0);
    assert_int_equal(gf_gif_finish(&g, err, sizeof err), GF_EGIF);
    assert_string_equal(err, "malformed GIF image: 2 bytes of other data after the trailer");
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
        cmocka_unit_test(test_gif_every_split_of_small_gifs_gives_the_same_verdict),
        cmocka_unit_test(test_gif_every_flag_fed_byte_by_byte),
        cmocka_unit_test(test_gif_large_image_in_pieces),
        cmocka_unit_test(test_gif_feed_refuses_early_and_stays_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
