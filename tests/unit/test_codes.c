/* Unit tests of gf/codes.h: argument parsing, the code lists and limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "gf/codes.h"
#include "gf/error.h"

static struct gf_codeset set;
static gf_cc out[GF_CODES_MAX];

static int setup(void **state)
{
    gf_codeset_clear(&set);
    memset(out, 0, sizeof out);
    return 0;
}

/* Number of whitespace-separated words in the compiled-in list. */
static size_t count_compiled_codes(void)
{
    const char *p = gf_country_codes_txt;
    size_t n = 0;
    int in_word = 0;

    for (; *p; p++) {
        int space = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
        if (!space && !in_word)
            n++;
        in_word = !space;
    }
    return n;
}

static void test_codes_clear_empties_set(void **state)
{
    gf_codeset_add_every(&set);
    gf_codeset_clear(&set);
    assert_int_equal(gf_codeset_list(&set, 0, out), 0);
}

static void test_codes_two_letters_case_insensitive(void **state)
{
    char err[128] = "";

    assert_int_equal(gf_codeset_add_arg(&set, "br", err, sizeof err), 0);
    assert_int_equal(gf_codeset_add_arg(&set, "Cn", err, sizeof err), 0);
    assert_int_equal(gf_codeset_add_arg(&set, "US", err, sizeof err), 0);
    assert_int_equal(gf_codeset_list(&set, 0, out), 3);
    assert_string_equal(out[0], "BR");
    assert_string_equal(out[1], "CN");
    assert_string_equal(out[2], "US");
    assert_string_equal(err, "");
}

static void test_codes_letter_expands_to_26(void **state)
{
    char err[128];
    size_t i, n;

    assert_int_equal(gf_codeset_add_arg(&set, "b", err, sizeof err), 0);
    n = gf_codeset_list(&set, 0, out);
    assert_int_equal(n, 26);
    for (i = 0; i < n; i++) {
        assert_int_equal(out[i][0], 'B');
        assert_int_equal(out[i][1], 'A' + (int)i);
        assert_int_equal(out[i][2], '\0');
    }
}

static void test_codes_duplicates_collapse(void **state)
{
    char err[128];

    assert_int_equal(gf_codeset_add_arg(&set, "B", err, sizeof err), 0);
    assert_int_equal(gf_codeset_add_arg(&set, "BR", err, sizeof err), 0);
    assert_int_equal(gf_codeset_add_arg(&set, "br", err, sizeof err), 0);
    assert_int_equal(gf_codeset_add_arg(&set, "ZZ", err, sizeof err), 0);
    assert_int_equal(gf_codeset_list(&set, 0, out), 27);
    assert_string_equal(out[0], "BA");
    assert_string_equal(out[26], "ZZ");
}

static void expect_invalid(const char *arg, const char *message)
{
    char err[128] = "";

    gf_codeset_clear(&set);
    assert_int_equal(gf_codeset_add_arg(&set, arg, err, sizeof err), GF_EUSAGE);
    assert_string_equal(err, message);
    assert_int_equal(gf_codeset_list(&set, 0, out), 0);
}

static void test_codes_invalid_arguments(void **state)
{
    expect_invalid("XYZ", "invalid country code or letter: 'XYZ'");
    expect_invalid("1A", "invalid country code or letter: '1A'");
    expect_invalid("B1", "invalid country code or letter: 'B1'");
    expect_invalid("", "invalid country code or letter: ''");
    expect_invalid("-", "invalid country code or letter: '-'");
    expect_invalid("A ", "invalid country code or letter: 'A '");
    /* "é" is two bytes: neither a letter nor a code. */
    expect_invalid("\xc3\xa9", "invalid country code or letter: '\xc3\xa9'");
    /* Bytes that are letters only in Latin-1 or another locale. */
    expect_invalid("\xe9", "invalid country code or letter: '\\xe9'");
    expect_invalid("[", "invalid country code or letter: '['");
    expect_invalid("@", "invalid country code or letter: '@'");
}

static void test_codes_invalid_message_escapes_controls(void **state)
{
    expect_invalid("\x1b[2J", "invalid country code or letter: '\\x1b[2J'");
    expect_invalid("A\n", "invalid country code or letter: 'A\\x0a'");
}

static void test_codes_invalid_long_argument_message_is_cut(void **state)
{
    char arg[1000], err[64];

    memset(arg, 'Q', sizeof arg - 1);
    arg[sizeof arg - 1] = '\0';
    assert_int_equal(gf_codeset_add_arg(&set, arg, err, sizeof err), GF_EUSAGE);
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_memory_equal(err, "invalid country code or letter: 'QQQ", 36);
    /* Cut inside the quotes, so the closing quote is still there. */
    assert_int_equal(err[sizeof err - 2], '\'');
}

static void test_codes_invalid_message_cut_on_whole_characters(void **state)
{
    /* 40 bytes of room: 33 for the prefix, 1 for the quote, 1 for the
     * NUL leave 5, which hold two "\xc3\xa9" (e-acute) characters but not
     * three, and the one escape "\x01" but not a second. */
    char err[40];

    assert_int_equal(gf_codeset_add_arg(&set, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", err, sizeof err),
                     GF_EUSAGE);
    assert_string_equal(err, "invalid country code or letter: '\xc3\xa9\xc3\xa9'");
    assert_int_equal(gf_codeset_add_arg(&set, "\x01\x01", err, sizeof err), GF_EUSAGE);
    assert_string_equal(err, "invalid country code or letter: '\\x01'");
}

static void test_codes_every_is_676_sorted(void **state)
{
    size_t i;

    gf_codeset_add_every(&set);
    assert_int_equal(gf_codeset_list(&set, 0, out), GF_CODES_MAX);
    assert_string_equal(out[0], "AA");
    assert_string_equal(out[1], "AB");
    assert_string_equal(out[26], "BA");
    assert_string_equal(out[GF_CODES_MAX - 1], "ZZ");
    for (i = 1; i < GF_CODES_MAX; i++)
        assert_true(strcmp(out[i - 1], out[i]) < 0);
}

static void test_codes_default_is_top20(void **state)
{
    static const char *const expected[] = {"BD", "BR", "CD", "CN", "DE", "EG", "ET",
                                           "FR", "ID", "IN", "IR", "JP", "MX", "NG",
                                           "PH", "PK", "RU", "TR", "US", "VN"};
    size_t i;

    gf_codeset_add_default(&set);
    assert_int_equal(gf_codeset_list(&set, 0, out), 20);
    for (i = 0; i < 20; i++)
        assert_string_equal(out[i], expected[i]);
}

static void test_codes_all_matches_compiled_list(void **state)
{
    size_t n = count_compiled_codes(), i;
    const char *p;

    gf_codeset_add_all(&set);
    assert_true(n >= 2);
    assert_int_equal(gf_codeset_list(&set, 0, out), n);
    /* Every listed code comes from the text, in sorted order. */
    for (i = 0; i < n; i++) {
        p = strstr(gf_country_codes_txt, out[i]);
        assert_non_null(p);
        if (i > 0)
            assert_true(strcmp(out[i - 1], out[i]) < 0);
    }
}

static void test_codes_all_has_real_countries(void **state)
{
    /* The placeholder and the real list both hold AD and AE. */
    gf_codeset_add_all(&set);
    gf_codeset_list(&set, 0, out);
    assert_string_equal(out[0], "AD");
    assert_string_equal(out[1], "AE");
}

static void test_codes_list_limit(void **state)
{
    gf_codeset_add_every(&set);
    assert_int_equal(gf_codeset_list(&set, 3, out), 3);
    assert_string_equal(out[0], "AA");
    assert_string_equal(out[2], "AC");
    assert_int_equal(out[3][0], '\0'); /* nothing written past the limit */

    gf_codeset_clear(&set);
    gf_codeset_add_default(&set);
    assert_int_equal(gf_codeset_list(&set, 1, out), 1);
    assert_string_equal(out[0], "BD");
    /* A limit above the size keeps everything. */
    assert_int_equal(gf_codeset_list(&set, 1000, out), 20);
}

static void test_codes_union_of_sources(void **state)
{
    char err[128];

    gf_codeset_add_default(&set);
    assert_int_equal(gf_codeset_add_arg(&set, "ZZ", err, sizeof err), 0);
    assert_int_equal(gf_codeset_add_arg(&set, "BR", err, sizeof err), 0);
    assert_int_equal(gf_codeset_list(&set, 0, out), 21);
    assert_string_equal(out[20], "ZZ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_codes_clear_empties_set, setup),
        cmocka_unit_test_setup(test_codes_two_letters_case_insensitive, setup),
        cmocka_unit_test_setup(test_codes_letter_expands_to_26, setup),
        cmocka_unit_test_setup(test_codes_duplicates_collapse, setup),
        cmocka_unit_test_setup(test_codes_invalid_arguments, setup),
        cmocka_unit_test_setup(test_codes_invalid_message_escapes_controls, setup),
        cmocka_unit_test_setup(test_codes_invalid_long_argument_message_is_cut, setup),
        cmocka_unit_test_setup(test_codes_invalid_message_cut_on_whole_characters, setup),
        cmocka_unit_test_setup(test_codes_every_is_676_sorted, setup),
        cmocka_unit_test_setup(test_codes_default_is_top20, setup),
        cmocka_unit_test_setup(test_codes_all_matches_compiled_list, setup),
        cmocka_unit_test_setup(test_codes_all_has_real_countries, setup),
        cmocka_unit_test_setup(test_codes_list_limit, setup),
        cmocka_unit_test_setup(test_codes_union_of_sources, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
