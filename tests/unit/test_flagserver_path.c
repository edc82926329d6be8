/* Path mapping and sanitising: every traversal form must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flagserver/path.h"

static int map(const char *target, char *out, size_t outlen)
{
    return fs_path_map(target, strlen(target), out, outlen);
}

static void assert_maps(const char *target, const char *want)
{
    char out[256];

    assert_int_equal(map(target, out, sizeof(out)), FS_PATH_OK);
    assert_string_equal(out, want);
}

static void assert_refused(const char *target)
{
    char out[256];
    int rc = map(target, out, sizeof(out));

    if (rc == FS_PATH_OK)
        fail_msg("'%s' was mapped to '%s'", target, out);
}

static void test_plain_paths(void **state)
{
    assert_maps("/flags/br/br.gif", "flags/br/br.gif");
    assert_maps("/country_codes.txt", "country_codes.txt");
    assert_maps("/", "");
    assert_maps("//flags///br//br.gif", "flags/br/br.gif");
    assert_maps("/flags/br/", "flags/br");
}

static void test_query_and_fragment_ignored(void **state)
{
    assert_maps("/flags/br/br.gif?x=1&y=../../etc", "flags/br/br.gif");
    assert_maps("/country_codes.txt#top", "country_codes.txt");
    assert_maps("/a?", "a");
}

static void test_percent_decoding(void **state)
{
    assert_maps("/flags/b%72/br.gif", "flags/br/br.gif");
    assert_maps("/a%20b", "a b");
    assert_maps("/%41%42", "AB");
    assert_maps("/a%2eb", "a.b");
    assert_maps("/.hidden", ".hidden");
    assert_maps("/a..b", "a..b");
}

static void test_absolute_form(void **state)
{
    assert_maps("http://localhost:8000/flags/br/br.gif", "flags/br/br.gif");
    assert_maps("http://h/x?q", "x");
    assert_int_equal(map("http://h", (char[64]){0}, 64), FS_PATH_BAD);
    assert_int_equal(map("*", (char[64]){0}, 64), FS_PATH_BAD);
    assert_int_equal(map("flags/br", (char[64]){0}, 64), FS_PATH_BAD);
    assert_int_equal(map("", (char[64]){0}, 64), FS_PATH_BAD);
}

static void test_dot_segments_refused(void **state)
{
    char out[64];

    assert_int_equal(map("/..", out, sizeof(out)), FS_PATH_REFUSED);
    assert_int_equal(map("/../etc/passwd", out, sizeof(out)), FS_PATH_REFUSED);
    assert_int_equal(map("/flags/../../etc/passwd", out, sizeof(out)), FS_PATH_REFUSED);
    assert_int_equal(map("/flags/..", out, sizeof(out)), FS_PATH_REFUSED);
    assert_int_equal(map("/./flags", out, sizeof(out)), FS_PATH_REFUSED);
    assert_int_equal(map("/flags/.", out, sizeof(out)), FS_PATH_REFUSED);
    assert_refused("http://h/../etc/passwd");
}

static void test_encoded_traversal_refused(void **state)
{
    assert_refused("/%2e%2e/etc/passwd");
    assert_refused("/%2E%2E/etc/passwd");
    assert_refused("/.%2e/etc/passwd");
    assert_refused("/%2e./etc/passwd");
    assert_refused("/flags/%2e%2e/%2e%2e/etc/passwd");
    assert_refused("/%2e");
    /* An encoded slash must not hide a segment boundary. */
    assert_refused("/..%2fetc%2fpasswd");
    assert_refused("/flags%2f..%2f..%2fetc");
    assert_refused("/a%2Fb");
    /* Double encoding decodes once only, to a harmless name. */
    assert_maps("/%252e%252e/x", "%2e%2e/x");
}

static void test_backslash_refused(void **state)
{
    char out[64];

    assert_int_equal(map("/..\\..\\etc\\passwd", out, sizeof(out)), FS_PATH_REFUSED);
    assert_int_equal(map("/a\\b", out, sizeof(out)), FS_PATH_REFUSED);
    assert_int_equal(map("/%5c..%5cetc", out, sizeof(out)), FS_PATH_REFUSED);
    assert_int_equal(map("/%5C", out, sizeof(out)), FS_PATH_REFUSED);
}

static void test_nul_and_controls_bad(void **state)
{
    char out[64];
    const char raw[] = "/flags\0/../x";

    assert_int_equal(map("/flags/br/br.gif%00.txt", out, sizeof(out)), FS_PATH_BAD);
    assert_int_equal(map("/%00", out, sizeof(out)), FS_PATH_BAD);
    assert_int_equal(map("/a%0d%0aSet-Cookie:x", out, sizeof(out)), FS_PATH_BAD);
    assert_int_equal(map("/a%7f", out, sizeof(out)), FS_PATH_BAD);
    assert_int_equal(fs_path_map(raw, sizeof(raw) - 1, out, sizeof(out)), FS_PATH_BAD);
}

static void test_bad_escapes(void **state)
{
    char out[64];

    assert_int_equal(map("/a%", out, sizeof(out)), FS_PATH_BAD);
    assert_int_equal(map("/a%2", out, sizeof(out)), FS_PATH_BAD);
    assert_int_equal(map("/a%zz", out, sizeof(out)), FS_PATH_BAD);
    assert_int_equal(map("/a%g0", out, sizeof(out)), FS_PATH_BAD);
}

static void test_too_long(void **state)
{
    char target[600], out[64];

    memset(target, 'a', sizeof(target) - 1);
    target[0] = '/';
    target[sizeof(target) - 1] = '\0';
    assert_int_equal(map(target, out, sizeof(out)), FS_PATH_TOOLONG);
    assert_int_equal(map("/abcdefgh", out, 8), FS_PATH_TOOLONG);
}

static void test_within(void **state)
{
    assert_true(fs_path_is_within("/srv/data", "/srv/data"));
    assert_true(fs_path_is_within("/srv/data", "/srv/data/flags/br/br.gif"));
    assert_false(fs_path_is_within("/srv/data", "/srv/database/x"));
    assert_false(fs_path_is_within("/srv/data", "/srv/dat"));
    assert_false(fs_path_is_within("/srv/data", "/etc/passwd"));
    assert_false(fs_path_is_within("/srv/data", "/srv"));
    assert_true(fs_path_is_within("/", "/etc/passwd"));
}

static void test_mime_types(void **state)
{
    assert_string_equal(fs_path_mime_type("flags/br/br.gif"), "image/gif");
    assert_string_equal(fs_path_mime_type("flags/br/BR.GIF"), "image/gif");
    assert_string_equal(fs_path_mime_type("flags/br/metadata.json"), "application/json");
    assert_string_equal(fs_path_mime_type("country_codes.txt"), "text/plain");
    assert_string_equal(fs_path_mime_type("x.html"), "application/octet-stream");
    assert_string_equal(fs_path_mime_type("flags.d/noext"), "application/octet-stream");
    assert_string_equal(fs_path_mime_type(""), "application/octet-stream");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_paths),
        cmocka_unit_test(test_query_and_fragment_ignored),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_dot_segments_refused),
        cmocka_unit_test(test_encoded_traversal_refused),
        cmocka_unit_test(test_backslash_refused),
        cmocka_unit_test(test_nul_and_controls_bad),
        cmocka_unit_test(test_bad_escapes),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_within),
        cmocka_unit_test(test_mime_types),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
