/* Unit tests of gf/names.h: hostile metadata.json bodies, file-name
 * sanitising and escaping for the terminal. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/error.h"
#include "gf/names.h"
#include "gf/text.h"

/* A copy of len bytes in a buffer of exactly that size and without a NUL
 * after it, so that ASan reports any read past the end. */
static char *exact_copy(const char *s, size_t len)
{
    char *p = malloc(len > 0 ? len : 1);

    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

/* Runs gf_metadata_country on an exact-size copy of the len bytes. */
static int metadata(const char *body, size_t len, char **country, const char **why)
{
    char *copy = exact_copy(body, len);
    int rc;

    *why = NULL;
    rc = gf_metadata_country(copy, len, country, why);
    free(copy);
    return rc;
}

static void expect_country(const char *body, const char *expected)
{
    char *country = NULL;
    const char *why;

    assert_int_equal(metadata(body, strlen(body), &country, &why), 0);
    assert_non_null(country);
    assert_string_equal(country, expected);
    free(country);
}

static void expect_refused_n(const char *body, size_t len, const char *reason)
{
    char *country = (char *)"sentinel";
    const char *why;

    assert_int_equal(metadata(body, len, &country, &why), GF_EMETADATA);
    assert_null(country);
    assert_non_null(why);
    if (reason != NULL)
        assert_string_equal(why, reason);
}

static void expect_refused(const char *body, const char *reason)
{
    expect_refused_n(body, strlen(body), reason);
}

/* Independent strict UTF-8 check for asserting on results. */
static int is_valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    while (*s) {
        unsigned long cp;
        int n, i;

        if (s[0] < 0x80) {
            s++;
            continue;
        }
        if ((s[0] & 0xE0) == 0xC0) {
            n = 2;
            cp = s[0] & 0x1Fu;
        } else if ((s[0] & 0xF0) == 0xE0) {
            n = 3;
            cp = s[0] & 0x0Fu;
        } else if ((s[0] & 0xF8) == 0xF0) {
            n = 4;
            cp = s[0] & 0x07u;
        } else {
            return 0;
        }
        for (i = 1; i < n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i] & 0x3Fu);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return 0;
        s += n;
    }
    return 1;
}

/* -- gf_metadata_country -------------------------------------------------- */

static void test_names_metadata_real_body(void **state)
{
    expect_country("{\"tld_cc\": \".ci\", \"iso_cc\": \"CI\", \"country\": \"C\xc3\xb4te "
                   "d'Ivoire\"}",
                   "C\xc3\xb4te d'Ivoire");
    expect_country("{\"country\":\"Brazil\"}", "Brazil");
}

static void test_names_metadata_surrounding_space(void **state)
{
    expect_country(" \t\r\n{\"country\":\"Brazil\"} \t\r\n", "Brazil");
}

static void test_names_metadata_escapes_decoded(void **state)
{
    expect_country("{\"country\":\"C\\u00f4te\"}", "C\xc3\xb4te");
    /* A surrogate pair is one code point, U+1F1EB. */
    expect_country("{\"country\":\"\\ud83c\\uddeb\"}", "\xf0\x9f\x87\xab");
    /* An escaped backslash followed by "u0000" is text, not a NUL. */
    expect_country("{\"country\":\"a\\\\u0000\"}", "a\\u0000");
    expect_country("{\"country\":\"q\\\"\\\\u0000\"}", "q\"\\u0000");
}

static void test_names_metadata_duplicate_key_takes_first(void **state)
{
    expect_country("{\"country\":\"First\",\"country\":\"Second\"}", "First");
}

static void test_names_metadata_invalid_json(void **state)
{
    expect_refused("", "not valid JSON");
    expect_refused("   ", "not valid JSON");
    expect_refused("not json", "not valid JSON");
    expect_refused("{", "not valid JSON");
    expect_refused("{\"country\":\"x\",}", "not valid JSON");
    expect_refused("{'country':'x'}", "not valid JSON");
    expect_refused("{\"country\":\"unterminated}", "not valid JSON");
    /* cJSON would skip a leading control byte as white space. */
    expect_refused("\x01{\"country\":\"x\"}", "not valid JSON");
}

static void test_names_metadata_null_body(void **state)
{
    char *country = (char *)"sentinel";
    const char *why = NULL;

    assert_int_equal(gf_metadata_country(NULL, 0, &country, &why), GF_EMETADATA);
    assert_null(country);
    assert_string_equal(why, "not valid JSON");
}

static void test_names_metadata_truncated_exact_length(void **state)
{
    /* Given with its exact length and no NUL after it: a parser reading
     * one byte too far would be caught by ASan. */
    expect_refused("{\"1\":1,", "not valid JSON");
    expect_refused("{\"country\":\"Bra", "not valid JSON");
    expect_refused("{\"country\":\"x\\", "not valid JSON");
    expect_refused("{\"country\":\"\\u00", "not valid JSON");
    expect_refused("{\"country\":\"x\"", "not valid JSON");
}

static void test_names_metadata_length_bounds_the_body(void **state)
{
    static const char body[] = "{\"country\":\"Brazil\"}{\"more\":1}";
    char *country = NULL;
    const char *why;

    /* Only the first 20 bytes are the body; what lies beyond is not read. */
    assert_int_equal(metadata(body, 20, &country, &why), 0);
    assert_string_equal(country, "Brazil");
    free(country);
    expect_refused_n(body, 19, "not valid JSON");
    expect_refused_n(body, sizeof body - 1, "trailing data after the JSON object");
}

static char *nested(size_t depth, const char *inside)
{
    size_t len = strlen(inside), i;
    char *s = malloc(2 * depth + len + 1);

    assert_non_null(s);
    for (i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth + len + i] = ']';
    }
    memcpy(s + depth, inside, len);
    s[2 * depth + len] = '\0';
    return s;
}

static void test_names_metadata_deep_nesting(void **state)
{
    static const char too_deep[] = "nested too deeply (more than 1000 levels)";
    char *deep = nested(1001, "");
    char *inner, *big;

    expect_refused(deep, too_deep);
    free(deep);

    /* 1,001 levels counting the outer object. */
    inner = nested(1000, "1");
    big = malloc(strlen(inner) + 64);
    assert_non_null(big);
    strcpy(big, "{\"country\":\"x\",\"a\":");
    strcat(big, inner);
    strcat(big, "}");
    expect_refused(big, too_deep);
    free(big);
    free(inner);

    /* Deep, but invalid before the limit is reached: the syntax error is
     * what cJSON stopped at, so that is what is said. */
    inner = nested(1001, "1");
    big = malloc(strlen(inner) + 64);
    assert_non_null(big);
    snprintf(big, strlen(inner) + 64, "{\"country\":x,\"a\":%s}", inner);
    expect_refused(big, "not valid JSON");
    free(big);
    free(inner);

    /* Brackets inside a string are not nesting: 600 real levels around a
     * string of 600 '[' parse, and a key made of brackets does not hide
     * 1,001 real levels after it. */
    {
        char str[603];

        str[0] = '"';
        memset(str + 1, '[', 600);
        str[601] = '"';
        str[602] = '\0';
        inner = nested(600, str);
        big = malloc(strlen(inner) + 64);
        assert_non_null(big);
        snprintf(big, strlen(inner) + 64, "{\"country\":\"x\",\"a\":%s}", inner);
        expect_country(big, "x");
        free(big);
        free(inner);

        inner = nested(1001, "");
        big = malloc(strlen(inner) + 700);
        assert_non_null(big);
        snprintf(big, strlen(inner) + 700, "{%s:%s}", str, inner);
        expect_refused(big, too_deep);
        free(big);
        free(inner);
    }

    /* One level less parses: 999 arrays in the object, and 1,000 arrays
     * alone (valid JSON, but not an object). */
    inner = nested(999, "1");
    big = malloc(strlen(inner) + 64);
    assert_non_null(big);
    snprintf(big, strlen(inner) + 64, "{\"country\":\"x\",\"a\":%s}", inner);
    expect_country(big, "x");
    free(big);
    free(inner);
    deep = nested(1000, "");
    expect_refused(deep, "not a JSON object");
    free(deep);
}

static void test_names_metadata_trailing_data(void **state)
{
    expect_refused("{\"country\":\"x\"} x", "trailing data after the JSON object");
    expect_refused("{\"country\":\"x\"}{}", "trailing data after the JSON object");
    expect_refused("{\"country\":\"x\"},", "trailing data after the JSON object");
    expect_refused("{\"country\":\"x\"}\x01", "trailing data after the JSON object");
    expect_refused("{\"country\":\"x\"}\xef\xbb\xbf", "trailing data after the JSON object");
}

static void test_names_metadata_not_an_object(void **state)
{
    expect_refused("[{\"country\":\"x\"}]", "not a JSON object");
    expect_refused("\"country\"", "not a JSON object");
    expect_refused("42", "not a JSON object");
    expect_refused("null", "not a JSON object");
    expect_refused("true", "not a JSON object");
}

static void test_names_metadata_country_missing(void **state)
{
    expect_refused("{}", "\"country\" is missing");
    expect_refused("{\"tld_cc\":\".br\"}", "\"country\" is missing");
    /* Keys are matched exactly, not case-insensitively. */
    expect_refused("{\"Country\":\"Brazil\"}", "\"country\" is missing");
    expect_refused("{\"a\":{\"country\":\"Brazil\"}}", "\"country\" is missing");
}

static void test_names_metadata_country_wrong_type(void **state)
{
    expect_refused("{\"country\":null}", "\"country\" is not a string");
    expect_refused("{\"country\":42}", "\"country\" is not a string");
    expect_refused("{\"country\":[\"Brazil\"]}", "\"country\" is not a string");
    expect_refused("{\"country\":{\"name\":\"Brazil\"}}", "\"country\" is not a string");
    expect_refused("{\"country\":true}", "\"country\" is not a string");
}

static void test_names_metadata_country_empty(void **state)
{
    expect_refused("{\"country\":\"\"}", "\"country\" is empty");
}

static void test_names_metadata_nul_refused(void **state)
{
    static const char raw[] = "{\"country\":\"a\0b\"}";

    expect_refused("{\"country\":\"\\u0000\"}", NULL);
    expect_refused("{\"country\":\"Bra\\u0000zil\"}", NULL);
    expect_refused_n(raw, sizeof raw - 1, "contains a NUL byte");
    expect_refused_n("{\"country\":\"x\"}\0", 16, "contains a NUL byte");
}

static void test_names_metadata_invalid_utf8(void **state)
{
    expect_refused("{\"country\":\"\xff\"}", "\"country\" is not valid UTF-8");
    expect_refused("{\"country\":\"Bra\xc3\"}", "\"country\" is not valid UTF-8");
    /* Overlong '/' and a raw UTF-8 encoded surrogate (ED A0 80). */
    expect_refused("{\"country\":\"\xc0\xaf\"}", "\"country\" is not valid UTF-8");
    expect_refused("{\"country\":\"\xed\xa0\x80\"}", "\"country\" is not valid UTF-8");
    expect_refused("{\"country\":\"\xf4\x90\x80\x80\"}", "\"country\" is not valid UTF-8");
}

static void test_names_metadata_lone_surrogate_escape(void **state)
{
    /* Whatever cJSON makes of them, they must never come out as a name. */
    expect_refused("{\"country\":\"\\ud800\"}", NULL);
    expect_refused("{\"country\":\"\\udc00x\"}", NULL);
    expect_refused("{\"country\":\"\\ud800\\u0041\"}", NULL);
    expect_refused("{\"country\":\"x\\ud800\"}", NULL);
}

static void test_names_metadata_size_cap(void **state)
{
    size_t len = GF_METADATA_MAX + 1;
    char *body = malloc(len);
    char *country = NULL;
    const char *why;

    assert_non_null(body);
    memset(body, ' ', len);
    memcpy(body, "{\"country\":\"x\"}", 15);
    assert_int_equal(gf_metadata_country(body, len, &country, &why), GF_EMETADATA);
    assert_string_equal(why, "larger than 64 KiB");
    assert_null(country);
    /* Exactly at the cap is still read. */
    assert_int_equal(gf_metadata_country(body, len - 1, &country, &why), 0);
    assert_string_equal(country, "x");
    free(country);
    free(body);
}

static void test_names_metadata_control_chars_kept_for_sanitiser(void **state)
{
    /* Escaped controls are legal JSON; the file name makes them safe. */
    static const char body[] = "{\"country\":\"\\u001b[31mRed\"}";
    char *country = NULL;
    const char *why;
    char name[GF_NAME_MAX + 1];

    assert_int_equal(metadata(body, sizeof body - 1, &country, &why), 0);
    assert_string_equal(country, "\x1b[31mRed");
    assert_int_equal(gf_name_from_country(country, strlen(country), NULL, name, sizeof name, &why),
                     0);
    assert_string_equal(name, "_[31mRed.gif");
    free(country);
}

/* -- gf_name_from_country ------------------------------------------------- */

static void expect_name_n(const char *country, size_t len, const char *cc, const char *expected)
{
    char out[GF_NAME_MAX + 1];
    const char *why = NULL;

    memset(out, 'X', sizeof out);
    assert_int_equal(gf_name_from_country(country, len, cc, out, sizeof out, &why), 0);
    assert_string_equal(out, expected);
}

static void expect_name(const char *country, const char *cc, const char *expected)
{
    expect_name_n(country, strlen(country), cc, expected);
}

static void expect_bad_name_n(const char *country, size_t len, const char *cc)
{
    char out[GF_NAME_MAX + 1];
    const char *why = NULL;

    memset(out, 'X', sizeof out);
    assert_int_equal(gf_name_from_country(country, len, cc, out, sizeof out, &why), GF_ENAME);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
}

static void expect_bad_name(const char *country)
{
    expect_bad_name_n(country, strlen(country), NULL);
}

static void test_names_name_plain(void **state)
{
    expect_name("Brazil", NULL, "Brazil.gif");
    expect_name("C\xc3\xb4te d'Ivoire", NULL, "C\xc3\xb4te_d'Ivoire.gif");
    expect_name("United States of America", NULL, "United_States_of_America.gif");
}

static void test_names_name_with_cc_suffix(void **state)
{
    expect_name("Brazil", "BR", "Brazil_BR.gif");
    expect_name("C\xc3\xb4te d'Ivoire", "CI", "C\xc3\xb4te_d'Ivoire_CI.gif");
    expect_bad_name_n("Brazil", 6, "B1");
    expect_bad_name_n("Brazil", 6, "BRA");
    expect_bad_name_n("Brazil", 6, "");
}

static void test_names_name_empty_refused(void **state)
{
    char out[GF_NAME_MAX + 1];
    const char *why = NULL;

    expect_bad_name("");
    assert_int_equal(gf_name_from_country(NULL, 0, NULL, out, sizeof out, &why), GF_ENAME);
}

static void test_names_name_dots(void **state)
{
    expect_name(".", NULL, "_.gif");
    expect_name("..", NULL, "__.gif");
    expect_name("...", NULL, "___.gif");
    expect_name(".hidden", NULL, "_hidden.gif");
    expect_name("St. Lucia", NULL, "St._Lucia.gif");
    expect_name("..", "XX", "___XX.gif");
}

static void test_names_name_path_traversal(void **state)
{
    expect_name("../../x", NULL, "___.._x.gif");
    expect_name("/etc/cron.d/x", NULL, "_etc_cron.d_x.gif");
    expect_name("a/b", NULL, "a_b.gif");
    expect_name("C:\\x", NULL, "C:_x.gif");
    expect_name("..\\..\\x", NULL, "___.._x.gif");
    expect_name("/", NULL, "_.gif");
}

static void test_names_name_controls(void **state)
{
    expect_name("\x1b[31mRed\x1b[0m", NULL, "_[31mRed_[0m.gif");
    expect_name("a\tb\nc\rd", NULL, "a_b_c_d.gif");
    expect_name("del\x7f", NULL, "del_.gif");
    /* C1 controls: U+0085 (NEL) and U+009B (CSI) as UTF-8. */
    expect_name("a\xc2\x85z", NULL, "a_z.gif");
    expect_name("\xc2\x9b"
                "31m",
                NULL, "_31m.gif");
    /* U+00A0 is not a C1 control, but a space (Zs): see the next tests. */
    expect_name("a\xc2\xa0z", NULL, "a_z.gif");
    /* A NUL inside the given length never reaches the name. */
    expect_name_n("a\0b", 3, NULL, "a_b.gif");
}

static void expect_escape(const char *s, const char *expected);

/* UTF-8 of code point cp into buf (5 bytes), NUL-terminated. */
static const char *utf8(unsigned long cp, char *buf)
{
    unsigned char *b = (unsigned char *)buf;

    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        b[1] = 0;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        b[2] = 0;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        b[3] = 0;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        b[4] = 0;
    }
    return buf;
}

/* "a<cp>b" becomes "a_b.gif", and printing shows cp as \xHH escapes. */
static void expect_replaced(unsigned long cp)
{
    char c[5], country[16], printed[64];

    utf8(cp, c);
    snprintf(country, sizeof country, "a%sb", c);
    expect_name(country, NULL, "a_b.gif");
    gf_escape_for_print(country, strlen(country), printed, sizeof printed);
    assert_null(strstr(printed, c));
    assert_true(strncmp(printed, "a\\x", 3) == 0);
}

/* "a<cp>b" keeps cp. */
static void expect_kept(unsigned long cp)
{
    char c[5], country[16], want[24];

    utf8(cp, c);
    snprintf(country, sizeof country, "a%sb", c);
    snprintf(want, sizeof want, "a%sb.gif", c);
    expect_name(country, NULL, want);
}

static void expect_range_replaced(unsigned long first, unsigned long last)
{
    unsigned long cp;

    for (cp = first; cp <= last; cp++)
        expect_replaced(cp);
}

static void test_names_name_bidi_controls(void **state)
{
    /* U+202E would make "Brazil<RLO>fig.exe.gif" display as an .exe. */
    expect_name("Brazil\xe2\x80\xae"
                "fig.exe",
                NULL, "Brazil_fig.exe.gif");
    expect_range_replaced(0x202A, 0x202E); /* embeddings and overrides */
    expect_range_replaced(0x2066, 0x2069); /* isolates */
    expect_replaced(0x200E);               /* LRM */
    expect_replaced(0x200F);               /* RLM */
    expect_replaced(0x061C);               /* ARABIC LETTER MARK */
}

static void test_names_name_zero_width_and_bom(void **state)
{
    expect_range_replaced(0x200B, 0x200D); /* ZWSP, ZWNJ, ZWJ */
    expect_range_replaced(0x2060, 0x2064); /* WORD JOINER..INVISIBLE PLUS */
    expect_replaced(0x2065);
    expect_range_replaced(0x206A, 0x206F); /* deprecated format characters */
    expect_replaced(0xFEFF);
    expect_name("\xef\xbb\xbf"
                "Brazil",
                NULL, "_Brazil.gif");
    expect_replaced(0x180E);
    expect_range_replaced(0xFFF9, 0xFFFB);
}

static void test_names_name_line_and_paragraph_separators(void **state)
{
    expect_replaced(0x2028);
    expect_replaced(0x2029);
    expect_name("two\xe2\x80\xa8lines", NULL, "two_lines.gif");
}

static void test_names_name_soft_hyphen_and_other_format(void **state)
{
    expect_replaced(0x00AD);
    expect_range_replaced(0x0600, 0x0605);
    expect_replaced(0x06DD);
    expect_replaced(0x070F);
    expect_range_replaced(0x0890, 0x0891);
    expect_replaced(0x08E2);
    expect_replaced(0x110BD);
    expect_replaced(0x110CD);
    expect_range_replaced(0x13430, 0x1343F);
    expect_range_replaced(0x1BCA0, 0x1BCA3);
    expect_range_replaced(0x1D173, 0x1D17A);
}

static void test_names_name_tag_characters(void **state)
{
    expect_range_replaced(0xE0000, 0xE007F);
    /* A flag emoji's tag sequence keeps its base, loses the tags. */
    expect_name("\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2\xf3\xa0\x81\xbf", NULL,
                "\xf0\x9f\x8f\xb4___.gif");
}

static void test_names_name_space_separators(void **state)
{
    expect_name("a b", NULL, "a_b.gif");
    expect_replaced(0x00A0);
    expect_replaced(0x1680);
    expect_range_replaced(0x2000, 0x200A);
    expect_replaced(0x202F);
    expect_replaced(0x205F);
    expect_replaced(0x3000);
    /* A plain space is still printed as itself. */
    expect_escape("a b", "a b");
}

static void test_names_name_visible_neighbours_kept(void **state)
{
    /* The code points just outside each replaced range are visible and
     * stay: the table's edges are exact. */
    static const unsigned long kept[] = {
        0x00A1,  0x00AC,  0x00AE,  0x05FF,  0x0606,  0x061B,  0x061D,  0x06DC,  0x06DE,
        0x070E,  0x0710,  0x088F,  0x0892,  0x08E1,  0x08E3,  0x167F,  0x1681,  0x180D,
        0x180F,  0x1FFF,  0x2010,  0x2027,  0x2030,  0x205E,  0x2070,  0x2FFF,  0x3001,
        0xFEFE,  0xFF00,  0xFFF8,  0xFFFC,  0x110BC, 0x110BE, 0x110CC, 0x110CE, 0x1342F,
        0x13440, 0x1BC9F, 0x1BCA4, 0x1D172, 0x1D17B, 0xE0080, 0xE0100, 0x1F600,
    };
    size_t i;

    for (i = 0; i < sizeof kept / sizeof kept[0]; i++)
        expect_kept(kept[i]);
    expect_name("Guinea-Bissau", NULL, "Guinea-Bissau.gif");
}

static void test_names_name_leading_dash(void **state)
{
    expect_name("-rf", NULL, "_-rf.gif");
    expect_name("--help", NULL, "_--help.gif");
    expect_name("-", NULL, "_-.gif");
    expect_name("-x", "XX", "_-x_XX.gif");
    expect_name("a-b", NULL, "a-b.gif");
    /* A dash after a replaced first character is no longer first. */
    expect_name(" -x", NULL, "_-x.gif");
}

static void test_names_name_leading_dash_counts_in_the_cut(void **state)
{
    char country[300], want[GF_NAME_MAX + 1];

    /* 299 dashes: '_' then as many dashes as fit before ".gif". */
    memset(country, '-', sizeof country - 1);
    country[sizeof country - 1] = '\0';
    want[0] = '_';
    memset(want + 1, '-', GF_NAME_MAX - 5);
    memcpy(want + GF_NAME_MAX - 4, ".gif", 5);
    expect_name(country, NULL, want);
    assert_int_equal(strlen(want), GF_NAME_MAX);
}

static void test_names_name_invalid_utf8(void **state)
{
    expect_bad_name("\xff");
    expect_bad_name("abc\x80");
    expect_bad_name("\xc0\xaf");         /* overlong '/' */
    expect_bad_name("\xe0\x80\xaf");     /* overlong '/' */
    expect_bad_name("\xed\xa0\x80");     /* surrogate U+D800 */
    expect_bad_name("\xed\xbf\xbf");     /* surrogate U+DFFF */
    expect_bad_name("\xf4\x90\x80\x80"); /* past U+10FFFF */
    expect_bad_name("\xf8\x88\x80\x80\x80");
    expect_bad_name("\xe2\x82");       /* truncated */
    expect_bad_name("ok\xf0\x9f\x87"); /* truncated at the end */
    /* The length counts: the same bytes cut short are refused. */
    expect_bad_name_n("\xc3\xa9", 1, NULL);
}

static void test_names_name_long_ascii_cut(void **state)
{
    char country[301], expected[GF_NAME_MAX + 1];

    memset(country, 'a', 300);
    country[300] = '\0';
    memset(expected, 'a', 196);
    strcpy(expected + 196, ".gif");
    expect_name(country, NULL, expected);
    memset(expected, 'a', 193);
    strcpy(expected + 193, "_BR.gif");
    expect_name(country, "BR", expected);
    assert_int_equal(strlen(expected), GF_NAME_MAX);
}

/* Repeats the UTF-8 character ch after a prefix, cuts it to a name and
 * checks that the result is the longest whole-character prefix. */
static void check_multibyte_cut(const char *prefix, const char *ch, const char *cc)
{
    char country[600], out[GF_NAME_MAX + 1];
    size_t plen = strlen(prefix), clen = strlen(ch), n = plen, budget, expect_base;
    const char *why;

    memcpy(country, prefix, plen);
    while (n + clen < sizeof country) {
        memcpy(country + n, ch, clen);
        n += clen;
    }
    country[n] = '\0';
    budget = GF_NAME_MAX - (cc != NULL ? 7 : 4);
    expect_base = plen + (budget - plen) / clen * clen;

    assert_int_equal(gf_name_from_country(country, n, cc, out, sizeof out, &why), 0);
    assert_true(strlen(out) <= GF_NAME_MAX);
    assert_true(is_valid_utf8(out));
    assert_memory_equal(out, country, expect_base);
    assert_string_equal(out + expect_base,
                        cc != NULL ? (cc[0] == 'B' ? "_BR.gif" : "_CI.gif") : ".gif");
}

static void test_names_name_long_multibyte_cut(void **state)
{
    /* Two-, three- and four-byte characters, with prefixes that put a
     * character across the cut. */
    check_multibyte_cut("", "\xc3\xa9", NULL);
    check_multibyte_cut("a", "\xc3\xa9", NULL);
    check_multibyte_cut("a", "\xe2\x82\xac", NULL);
    check_multibyte_cut("ab", "\xe2\x82\xac", NULL);
    check_multibyte_cut("", "\xf0\x9f\x87\xab", NULL);
    check_multibyte_cut("ab", "\xf0\x9f\x87\xab", NULL);
    check_multibyte_cut("abc", "\xf0\x9f\x87\xab", "BR");
    check_multibyte_cut("a", "\xe2\x82\xac", "CI");
}

static void test_names_name_exact_fit_not_cut(void **state)
{
    char country[197], expected[GF_NAME_MAX + 1];

    memset(country, 'z', 196);
    country[196] = '\0';
    snprintf(expected, sizeof expected, "%s.gif", country);
    expect_name(country, NULL, expected);
    assert_int_equal(strlen(expected), GF_NAME_MAX);
}

static void test_names_name_cut_counts_replacements(void **state)
{
    /* 150 C1 controls are 300 bytes in, but 150 underscores out. */
    char country[301], expected[GF_NAME_MAX + 1];
    size_t i;

    for (i = 0; i < 150; i++)
        memcpy(country + 2 * i, "\xc2\x85", 2);
    country[300] = '\0';
    memset(expected, '_', 150);
    strcpy(expected + 150, ".gif");
    expect_name(country, NULL, expected);
}

static void test_names_name_small_buffer_never_overflows(void **state)
{
    char out[16];
    const char *why;

    memset(out, 'X', sizeof out);
    assert_int_equal(gf_name_from_country("Brazil", 6, NULL, out, 8, &why), 0);
    assert_string_equal(out, "Bra.gif");
    assert_int_equal(out[8], 'X');
    assert_int_equal(gf_name_from_country("Brazil", 6, "BR", out, 8, &why), GF_ENAME);
    assert_int_equal(gf_name_from_country("Brazil", 6, NULL, out, 0, &why), GF_ENAME);
}

/* -- gf_escape_for_print -------------------------------------------------- */

static void expect_escape_n(const char *s, size_t len, size_t outsz, const char *expected)
{
    char out[256];

    memset(out, 'X', sizeof out);
    assert_ptr_equal(gf_escape_for_print(s, len, out, outsz), out);
    assert_string_equal(out, expected);
}

static void expect_escape(const char *s, const char *expected)
{
    expect_escape_n(s, strlen(s), 256, expected);
}

static void test_names_escape_plain_and_utf8_unchanged(void **state)
{
    expect_escape("Brazil", "Brazil");
    expect_escape("C\xc3\xb4te d'Ivoire", "C\xc3\xb4te d'Ivoire");
    expect_escape("", "");
}

static void test_names_escape_controls_and_bad_bytes(void **state)
{
    expect_escape("\x1b[31mred", "\\x1b[31mred");
    expect_escape("a\nb", "a\\x0ab");
    expect_escape("\x7f", "\\x7f");
    expect_escape("\xc2\x85", "\\xc2\\x85");
    expect_escape("\xff\xfe", "\\xff\\xfe");
    expect_escape("\xed\xa0\x80", "\\xed\\xa0\\x80");
    expect_escape("ok\xc3", "ok\\xc3");
    expect_escape("a\\b", "a\\\\b");
    expect_escape_n("a\0b", 3, 256, "a\\x00b");
}

static void test_names_escape_cuts_whole_units(void **state)
{
    expect_escape_n("abcdef", 6, 4, "abc");
    /* An escape or a character that does not fit is left out whole. */
    expect_escape_n("ab\x01", 3, 6, "ab");
    expect_escape_n("ab\x01", 3, 7, "ab\\x01");
    expect_escape_n("a\xc3\xa9", 3, 3, "a");
    expect_escape_n("a\\", 2, 3, "a");
    expect_escape_n("abc", 3, 1, "");
    expect_escape_n(NULL, 5, 8, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_metadata_real_body),
        cmocka_unit_test(test_names_metadata_surrounding_space),
        cmocka_unit_test(test_names_metadata_escapes_decoded),
        cmocka_unit_test(test_names_metadata_duplicate_key_takes_first),
        cmocka_unit_test(test_names_metadata_invalid_json),
        cmocka_unit_test(test_names_metadata_null_body),
        cmocka_unit_test(test_names_metadata_truncated_exact_length),
        cmocka_unit_test(test_names_metadata_length_bounds_the_body),
        cmocka_unit_test(test_names_metadata_deep_nesting),
        cmocka_unit_test(test_names_metadata_trailing_data),
        cmocka_unit_test(test_names_metadata_not_an_object),
        cmocka_unit_test(test_names_metadata_country_missing),
        cmocka_unit_test(test_names_metadata_country_wrong_type),
        cmocka_unit_test(test_names_metadata_country_empty),
        cmocka_unit_test(test_names_metadata_nul_refused),
        cmocka_unit_test(test_names_metadata_invalid_utf8),
        cmocka_unit_test(test_names_metadata_lone_surrogate_escape),
        cmocka_unit_test(test_names_metadata_size_cap),
        cmocka_unit_test(test_names_metadata_control_chars_kept_for_sanitiser),
        cmocka_unit_test(test_names_name_plain),
        cmocka_unit_test(test_names_name_with_cc_suffix),
        cmocka_unit_test(test_names_name_empty_refused),
        cmocka_unit_test(test_names_name_dots),
        cmocka_unit_test(test_names_name_path_traversal),
        cmocka_unit_test(test_names_name_controls),
        cmocka_unit_test(test_names_name_bidi_controls),
        cmocka_unit_test(test_names_name_zero_width_and_bom),
        cmocka_unit_test(test_names_name_line_and_paragraph_separators),
        cmocka_unit_test(test_names_name_soft_hyphen_and_other_format),
        cmocka_unit_test(test_names_name_tag_characters),
        cmocka_unit_test(test_names_name_space_separators),
        cmocka_unit_test(test_names_name_visible_neighbours_kept),
        cmocka_unit_test(test_names_name_leading_dash),
        cmocka_unit_test(test_names_name_leading_dash_counts_in_the_cut),
        cmocka_unit_test(test_names_name_invalid_utf8),
        cmocka_unit_test(test_names_name_long_ascii_cut),
        cmocka_unit_test(test_names_name_long_multibyte_cut),
        cmocka_unit_test(test_names_name_exact_fit_not_cut),
        cmocka_unit_test(test_names_name_cut_counts_replacements),
        cmocka_unit_test(test_names_name_small_buffer_never_overflows),
        cmocka_unit_test(test_names_escape_plain_and_utf8_unchanged),
        cmocka_unit_test(test_names_escape_controls_and_bad_bytes),
        cmocka_unit_test(test_names_escape_cuts_whole_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
