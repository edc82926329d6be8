/* Unit tests of gf/text.h: the rules about untrusted text. The escaping
 * and file-name rules are also covered through names.h in test_names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "gf/error.h"
#include "gf/text.h"

static size_t decode(const char *s, uint32_t *cp)
{
    *cp = 0xFFFFFFFFu;
    return gf_utf8_decode(s, strlen(s), cp);
}

static void test_text_utf8_decode(void **state)
{
    (void)state;
    uint32_t cp;
    assert_int_equal(decode("A", &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(decode("\xc3\xa9", &cp), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(decode("\xe2\x80\xae", &cp), 3);
    assert_int_equal(cp, 0x202E);
    assert_int_equal(decode("\xf4\x8f\xbf\xbf", &cp), 4);
    assert_int_equal(cp, 0x10FFFF);
    /* Overlong forms, surrogates, past U+10FFFF, stray and cut sequences. */
    static const char *bad[] = {
        "\xc0\xaf",         "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\x80",     "\xc3",         "\xe2\x80",         "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(decode(bad[i], &cp), 0);
    /* n bounds the read: a sequence longer than n is refused. */
    assert_int_equal(gf_utf8_decode("\xc3\xa9", 1, &cp), 0);
    assert_true(gf_utf8_valid("caf\xc3\xa9", 5));
    assert_false(gf_utf8_valid("caf\xc3", 4));
    assert_true(gf_utf8_valid("", 0));
}

static void test_text_utf8_cut(void **state)
{
    (void)state;
    assert_int_equal(gf_utf8_cut("abc", 3), 3);
    assert_int_equal(gf_utf8_cut("ab\xc3\xa9", 4), 4);
    assert_int_equal(gf_utf8_cut("ab\xc3", 3), 2);
    assert_int_equal(gf_utf8_cut("ab\xe2\x80", 4), 2);
    assert_int_equal(gf_utf8_cut("ab\xf0\x9f\x87", 5), 2);
    assert_int_equal(gf_utf8_cut("ab\xf0\x9f\x87\xa7", 6), 6);
    /* Stray continuation bytes are nothing a cut made: kept. */
    assert_int_equal(gf_utf8_cut("ab\x80", 3), 3);
    assert_int_equal(gf_utf8_cut("", 0), 0);
}

static void test_text_character_classes(void **state)
{
    (void)state;
    static const uint32_t control[] = {0x00, 0x1B, 0x1F, 0x7F, 0x80, 0x9B, 0x9F};
    static const uint32_t invisible[] = {0x20,   0xA0,   0xAD,   0x200B, 0x202E,
                                         0x2066, 0x2028, 0xFEFF, 0xE0041};
    static const uint32_t plain[] = {'A', 0xA1, 0xE9, 0x2070, 0x1F1E7, 0x10FFFF};
    for (size_t i = 0; i < sizeof control / sizeof control[0]; i++)
        assert_true(gf_text_is_control(control[i]));
    for (size_t i = 0; i < sizeof invisible / sizeof invisible[0]; i++)
        assert_true(gf_text_is_invisible(invisible[i]));
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        assert_false(gf_text_is_control(plain[i]));
        assert_false(gf_text_is_invisible(plain[i]));
    }
    assert_false(gf_text_is_control(' '));
}

static void test_text_json_nul_escape(void **state)
{
    (void)state;
    const char *doc = "{\"a\": \"x\\u0000y\"}";
    assert_ptr_equal(gf_json_nul_escape(doc, strlen(doc)), strstr(doc, "\\u0000"));
    /* An escaped backslash, then "u0000", is text. */
    doc = "{\"a\": \"x\\\\u0000\"}";
    assert_null(gf_json_nul_escape(doc, strlen(doc)));
    /* Outside a string it is no escape; a cut one is not found. */
    doc = "\\u0000";
    assert_null(gf_json_nul_escape(doc, strlen(doc)));
    doc = "\"\\u000";
    assert_null(gf_json_nul_escape(doc, strlen(doc)));
    doc = "\"\\u0001\"";
    assert_null(gf_json_nul_escape(doc, strlen(doc)));
}

static int header_ok(const char *v)
{
    return gf_header_value_ok(v, strlen(v));
}

/* The one rule for a value that goes back out in a request header, as the
 * answer's header is kept and as the manifest is read back. */
static void test_text_header_value_rule(void **state)
{
    (void)state;
    assert_true(header_ok("\"5f-1a\""));
    assert_true(header_ok("W/\"x\""));
    assert_true(header_ok("Sat, 21 Nov 2026 20:41:03 GMT"));
    assert_true(header_ok("\"a\tb\"")); /* a tab between visible characters */
    assert_true(header_ok("x"));
    assert_false(header_ok(""));
    assert_false(header_ok(" x"));
    assert_false(header_ok("x "));
    assert_false(header_ok("\tx"));
    assert_false(header_ok("x\t"));
    assert_false(header_ok("a\r\nInjected: 1"));
    assert_false(header_ok("a\nb"));
    assert_false(header_ok("a\x7f"));
    assert_false(header_ok("caf\xc3\xa9"));
    /* A NUL inside the len bytes is refused, not a cut. */
    assert_false(gf_header_value_ok("a\0b", 3));

    char v[GF_HEADER_VALUE_MAX + 2];
    memset(v, 'e', sizeof v);
    v[GF_HEADER_VALUE_MAX] = '\0';
    assert_true(header_ok(v));
    v[GF_HEADER_VALUE_MAX] = 'e';
    v[GF_HEADER_VALUE_MAX + 1] = '\0';
    assert_false(header_ok(v));
}

static void test_text_replace_bad(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(gf_text_replace_bad("caf\xc3\xa9", out), "caf\xc3\xa9");
    assert_string_equal(gf_text_replace_bad("a\x1b[2Jb", out), "a?[2Jb");
    /* C1 (two bytes) and a bad byte: one '?' per byte. */
    assert_string_equal(gf_text_replace_bad("a\xc2\x9b"
                                            "b\xff",
                                            out),
                        "a??b?");
    assert_string_equal(gf_text_replace_bad("", out), "");
}

/* Error detail: printf-style into the caller's buffer, cut on a UTF-8
 * boundary, nothing written without a buffer. */
static void test_text_errorf(void **state)
{
    (void)state;
    char err[8];
    gf_errorf(err, sizeof err, "%s: %d", "ab", 42);
    assert_string_equal(err, "ab: 42");
    gf_errorf(err, sizeof err, "abcde\xc3\xa9z");
    assert_string_equal(err, "abcde\xc3\xa9"); /* 7 bytes fit */
    gf_errorf(err, sizeof err, "abcdef\xc3\xa9");
    assert_string_equal(err, "abcdef"); /* not half of the é */
    gf_errorf(NULL, 0, "%s", "nothing");
    err[0] = 'x';
    gf_errorf(err, 0, "%s", "nothing");
    assert_int_equal(err[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_utf8_decode),
        cmocka_unit_test(test_text_utf8_cut),
        cmocka_unit_test(test_text_character_classes),
        cmocka_unit_test(test_text_json_nul_escape),
        cmocka_unit_test(test_text_header_value_rule),
        cmocka_unit_test(test_text_replace_bad),
        cmocka_unit_test(test_text_errorf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
