/* SHA-256: the FIPS 180-2 example vectors, lengths on each side of the
 * padding boundaries, and incremental hashing split at every offset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gf/sha256.h"

static void expect_hex(const void *data, size_t len, const char *hex)
{
    unsigned char d[GF_SHA256_LEN];
    char out[GF_SHA256_HEX_LEN];

    gf_sha256(data, len, d);
    gf_sha256_hex(d, out);
    assert_string_equal(out, hex);
}

static void test_sha256_empty(void **state)
{
    (void)state;
    expect_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* No bytes to read, so no pointer is needed. */
    expect_hex(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha256_abc(void **state)
{
    (void)state;
    expect_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_448_bits(void **state)
{
    (void)state;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(strlen(m), 56);
    expect_hex(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_sha256_896_bits(void **state)
{
    (void)state;
    const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    assert_int_equal(strlen(m), 112);
    expect_hex(m, strlen(m), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_sha256_million_a(void **state)
{
    (void)state;
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    char *m = malloc(1000000);
    assert_non_null(m);
    memset(m, 'a', 1000000);
    expect_hex(m, 1000000, want);
    free(m);

    /* The same in odd-sized pieces, so that update's partial-block path
     * and its whole-block path both run many times. */
    struct gf_sha256_ctx c;
    unsigned char d[GF_SHA256_LEN];
    char out[GF_SHA256_HEX_LEN];
    char piece[1000];
    memset(piece, 'a', sizeof piece);
    gf_sha256_init(&c);
    size_t left = 1000000, step = 1;
    while (left > 0) {
        size_t n = step < left ? step : left;
        gf_sha256_update(&c, piece, n);
        left -= n;
        step = step % 983 + 13; /* stays below sizeof piece */
    }
    gf_sha256_final(&c, d);
    gf_sha256_hex(d, out);
    assert_string_equal(out, want);
}

/* Byte i of the boundary messages; the digests below were computed from the
 * same pattern with an independent implementation. */
static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 31 + 7) & 0xff);
}

static const struct {
    size_t len;
    const char *hex;
} boundary[] = {
    {1, "ca358758f6d27e6cf45272937977a748fd88391db679ceda7dc7bf1f005ee879"},
    {55, "8aa994584139d128848eeebc4e815639ba5ab6e6e39574195a63ac4f14f7c43b"},
    {56, "ad574708f75c044c9b85de64cb568ee7711ff4f36448c6242f053ba8f6cc2b63"},
    {57, "5b46e502092be01b1100193e089fdda95638c12e19a1d24f308eb2c3d3ae849d"},
    {63, "280ed3e8ff1df845b2e7dfe6ac6cee817bef20e783cc65abc41b818b4d2fe076"},
    {64, "c6ab9724ade5b6a7a1edfffb12f3aa9181351355af8fd08c919952ad211339dd"},
    {65, "788367c73c7ddf4c53f65e68cc0d943e6227ab55b0e78ba63ace822b1c6301c0"},
    {111, "dd1413178fb627f9abbc041ffe39c44aa7aaa0e2e6d2ca5c4528ac7073a2da45"},
    {112, "a65c92dac124062d0ab951a42773cb04fc98d1d4bf8897b176f8cff3509d379e"},
    {119, "3d610547d68216dedf7435a4fb6260353911f6b3fd3f18805ddb8be285d726fe"},
    {120, "1f80156a804cb7862ad113e8200e9d74499723e7c7854d5f48776d3148e09656"},
    {127, "192409cd280e14b743642ad1343fbd3e82d9305de72c078117745a679210cc3d"},
    {128, "cc548ca2dec1f6fe4f58b2e27aa9c7521607df1130d140b55a4dad0665302356"},
    {129, "81e89a7b2911aaa7795f9e3d4910cb47d6cd2b00d83b8399481527261a1a7519"},
};

static void test_sha256_padding_boundaries(void **state)
{
    (void)state;
    unsigned char m[129];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = pattern(i);
    for (size_t k = 0; k < sizeof boundary / sizeof boundary[0]; k++) {
        /* An exact-size copy, so ASan sees any read past the message. */
        unsigned char *copy = malloc(boundary[k].len);
        assert_non_null(copy);
        memcpy(copy, m, boundary[k].len);
        expect_hex(copy, boundary[k].len, boundary[k].hex);
        free(copy);
    }
}

/* Every split of each boundary message into two updates (one of them
 * possibly empty), and byte-at-a-time, gives the one-shot digest. */
static void test_sha256_incremental_any_split(void **state)
{
    (void)state;
    unsigned char m[129];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = pattern(i);
    for (size_t k = 0; k < sizeof boundary / sizeof boundary[0]; k++) {
        size_t len = boundary[k].len;
        unsigned char d[GF_SHA256_LEN];
        char out[GF_SHA256_HEX_LEN];
        struct gf_sha256_ctx c;
        for (size_t cut = 0; cut <= len; cut++) {
            gf_sha256_init(&c);
            gf_sha256_update(&c, m, cut);
            gf_sha256_update(&c, NULL, 0);
            gf_sha256_update(&c, m + cut, len - cut);
            gf_sha256_final(&c, d);
            gf_sha256_hex(d, out);
            assert_string_equal(out, boundary[k].hex);
        }
        gf_sha256_init(&c);
        for (size_t i = 0; i < len; i++)
            gf_sha256_update(&c, m + i, 1);
        gf_sha256_final(&c, d);
        gf_sha256_hex(d, out);
        assert_string_equal(out, boundary[k].hex);
    }
}

/* init really resets: a context reused after final, or abandoned midway,
 * gives the right digest for the next message. */
static void test_sha256_init_resets(void **state)
{
    (void)state;
    struct gf_sha256_ctx c;
    unsigned char d[GF_SHA256_LEN];
    char out[GF_SHA256_HEX_LEN];

    gf_sha256_init(&c);
    gf_sha256_update(&c, "some other message of a few bytes", 33);
    gf_sha256_init(&c);
    gf_sha256_update(&c, "abc", 3);
    gf_sha256_final(&c, d);
    gf_sha256_hex(d, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    gf_sha256_init(&c);
    gf_sha256_final(&c, d);
    gf_sha256_hex(d, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha256_hex_format(void **state)
{
    (void)state;
    unsigned char d[GF_SHA256_LEN];
    char out[GF_SHA256_HEX_LEN + 1];

    for (int i = 0; i < GF_SHA256_LEN; i++)
        d[i] = (unsigned char)(i * 8 + 7);
    d[0] = 0x00;
    d[31] = 0xff;
    memset(out, 'X', sizeof out);
    gf_sha256_hex(d, out);
    assert_int_equal(strlen(out), 64);
    assert_int_equal(out[65], 'X'); /* nothing written past the NUL */
    assert_memory_equal(out, "000f171f", 8);
    assert_memory_equal(out + 62, "ff", 2);
    for (int i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", out[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_empty),
        cmocka_unit_test(test_sha256_abc),
        cmocka_unit_test(test_sha256_448_bits),
        cmocka_unit_test(test_sha256_896_bits),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_padding_boundaries),
        cmocka_unit_test(test_sha256_incremental_any_split),
        cmocka_unit_test(test_sha256_init_resets),
        cmocka_unit_test(test_sha256_hex_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
