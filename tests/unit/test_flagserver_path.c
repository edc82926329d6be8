/* Path mapping and sanitising: every traversal form must be refused. Fault
 * paths: which answer each fault gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flagserver/fault.h"
#include "flagserver/path.h"
#include "flagserver/server.h"

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

static void test_fault_parse(void **state)
{
    size_t off;
    const char *t = "/fault/reset/flags/br/br.gif";

    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_RESET);
    assert_string_equal(t + off, "/flags/br/br.gif");
    t = "/fault/gzipbomb-te/x";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_GZIPBOMB_TE);
    t = "/fault/gzipbomb/x";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_GZIPBOMB);
    t = "/fault/429";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_429);
    assert_int_equal(off, strlen(t));
    t = "/fault/nosuch/x";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_UNKNOWN);
    t = "/faults/reset/x";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_NONE);
    assert_int_equal(off, 0);
    t = "/flags/br/br.gif";
    assert_int_equal(fs_fault_parse(t, strlen(t), &off), FS_FAULT_NONE);
    assert_string_equal(fs_fault_name(FS_FAULT_REDIRECT_OK), "redirect-ok");
}

/* A server with just what the fault answers read. */
static fs_server fault_srv;

static int answer(fs_fault f, const char *t, fs_answer *a)
{
    size_t off;

    assert_int_equal(fs_fault_parse(t, strlen(t), &off), f);
    return fs_fault_answer(&fault_srv, f, t, strlen(t), off, "image/gif", a);
}

static void test_fault_fixed_answers(void **state)
{
    fs_answer a;

    assert_int_equal(answer(FS_FAULT_BADCHUNK, "/fault/badchunk/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 200 && a.clen == -1 && a.after == FS_AFTER_CLOSE);
    assert_string_equal(a.extra, "Transfer-Encoding: chunked\r\n");
    assert_true(a.len > 0 && memmem(a.body, a.len, "zz-not-a-size", 13) != NULL);
    assert_int_equal(answer(FS_FAULT_HTML, "/fault/html/x.gif", &a), FS_FAULT_ANSWERED);
    assert_string_equal(a.ctype, "text/html");
    assert_true(a.clen == (int64_t)a.len && a.after == FS_AFTER_KEEP && a.extra == NULL);
    assert_int_equal(answer(FS_FAULT_BADGZIP, "/fault/badgzip/x", &a), FS_FAULT_ANSWERED);
    assert_string_equal(a.extra, "Content-Encoding: gzip\r\n");
    assert_true(a.len > 10 && memcmp(a.body, "\x1f\x8b", 2) == 0); /* gzip magic, then junk */
    assert_string_equal(a.ctype, "image/gif");
    assert_int_equal(answer(FS_FAULT_REFUSE, "/fault/refuse/x", &a), FS_FAULT_ANSWERED);
    assert_int_equal(a.after, FS_AFTER_REFUSE);
    assert_int_equal(answer(FS_FAULT_ENDLESS, "/fault/endless/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 200 && a.clen == -1 && a.after == FS_AFTER_ENDLESS);
    assert_int_equal(answer(FS_FAULT_418, "/fault/418/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 418 && a.text);
    assert_int_equal(answer(FS_FAULT_500, "/fault/500", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 500 && a.text);
    /* File faults and ordinary targets are served from the file. */
    assert_int_equal(answer(FS_FAULT_RESET, "/fault/reset/x", &a), FS_FAULT_SERVE);
    assert_int_equal(answer(FS_FAULT_GZIP, "/fault/gzip/x", &a), FS_FAULT_SERVE);
    assert_int_equal(answer(FS_FAULT_NONE, "/flags/br/br.gif", &a), FS_FAULT_SERVE);
}

static void test_fault_redirects(void **state)
{
    fs_answer a;
    const char *t = "/fault/loop/x";

    assert_int_equal(answer(FS_FAULT_LOOP, t, &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 302 && a.loc == t && a.loc_len == strlen(t));
    assert_int_equal(answer(FS_FAULT_REDIRECT_FILE, "/fault/redirect-file/x", &a),
                     FS_FAULT_ANSWERED);
    assert_true(a.loc_len == 18 && memcmp(a.loc, "file:///etc/passwd", 18) == 0);
    assert_int_equal(answer(FS_FAULT_REDIRECT_FTP, "/fault/redirect-ftp/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.loc_len == 17 && memcmp(a.loc, "ftp://127.0.0.1/x", 17) == 0);
    assert_int_equal(answer(FS_FAULT_REDIRECT_OK, "/fault/redirect-ok/flags/br/br.gif?v=1", &a),
                     FS_FAULT_ANSWERED);
    assert_true(a.loc_len == 20 && memcmp(a.loc, "/flags/br/br.gif?v=1", 20) == 0);
    assert_int_equal(answer(FS_FAULT_REDIRECT_OK, "/fault/redirect-ok", &a), FS_FAULT_ANSWERED);
    assert_true(a.loc_len == 1 && a.loc[0] == '/');
}

/* 429 and 503 refuse the first request of each rest path, query ignored. */
static void test_fault_first_request(void **state)
{
    fs_answer a;

    fault_srv.seen = fs_fault_seen_new();
    assert_non_null(fault_srv.seen);
    assert_int_equal(answer(FS_FAULT_429, "/fault/429/a?x=1", &a), FS_FAULT_ANSWERED);
    assert_true(a.status == 429 && a.text);
    assert_string_equal(a.extra, "Retry-After: 1\r\n");
    assert_int_equal(answer(FS_FAULT_429, "/fault/429/a?x=2", &a), FS_FAULT_SERVE);
    assert_int_equal(answer(FS_FAULT_503, "/fault/503/a", &a), FS_FAULT_ANSWERED);
    assert_int_equal(a.status, 503);
    assert_int_equal(answer(FS_FAULT_429, "/fault/429/b", &a), FS_FAULT_ANSWERED);
    fs_fault_seen_free(fault_srv.seen);
    fault_srv.seen = NULL;
}

static void test_fault_bomb(void **state)
{
    static unsigned char bomb[] = "gz", chunked[] = "2\r\ngz\r\n0\r\n\r\n";
    fs_answer a;

    fault_srv.bomb_state = 0;
    assert_int_equal(answer(FS_FAULT_GZIPBOMB, "/fault/gzipbomb/x", &a), FS_FAULT_WAIT);
    fault_srv.bomb_state = -1;
    assert_int_equal(answer(FS_FAULT_GZIPBOMB, "/fault/gzipbomb/x", &a), FS_FAULT_ANSWERED);
    assert_int_equal(a.status, 500);
    fault_srv.bomb_state = 1;
    fault_srv.bomb = (fs_bytes){bomb, 2};
    fault_srv.bomb_chunked = (fs_bytes){chunked, sizeof(chunked) - 1};
    assert_int_equal(answer(FS_FAULT_GZIPBOMB, "/fault/gzipbomb/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.body == bomb && a.len == 2 && a.clen == 2);
    assert_string_equal(a.extra, "Content-Encoding: gzip\r\n");
    assert_int_equal(answer(FS_FAULT_GZIPBOMB_TE, "/fault/gzipbomb-te/x", &a), FS_FAULT_ANSWERED);
    assert_true(a.body == chunked && a.clen == -1);
    assert_string_equal(a.extra, "Transfer-Encoding: gzip, chunked\r\n");
    memset(&fault_srv.bomb, 0, sizeof(fault_srv.bomb));
    memset(&fault_srv.bomb_chunked, 0, sizeof(fault_srv.bomb_chunked));
}

/* A file's answer as conn.c makes it, with an owned copy of text. */
static fs_answer file_answer(const char *text)
{
    fs_answer a = {0};

    a.status = 200;
    a.owned = (unsigned char *)strdup(text);
    a.body = a.owned;
    a.len = strlen(text);
    a.clen = (int64_t)a.len;
    a.extra2 = "ETag: \"x\"\r\n";
    return a;
}

static void test_fault_shape(void **state)
{
    char filler[] = "X-Filler-000: x\r\n";
    fs_answer a = file_answer("0123456789");

    assert_int_equal(fs_fault_shape(&fault_srv, FS_FAULT_NONE, &a), 0);
    assert_int_equal(fs_fault_shape(&fault_srv, FS_FAULT_429, &a), 0);
    assert_true(a.len == 10 && a.after == FS_AFTER_KEEP);
    assert_int_equal(fs_fault_shape(&fault_srv, FS_FAULT_SHORT, &a), 1);
    assert_true(a.len == 5 && a.clen == 10 && a.after == FS_AFTER_CLOSE);
    a.len = 10;
    assert_int_equal(fs_fault_shape(&fault_srv, FS_FAULT_RESET, &a), 1);
    assert_true(a.len == 5 && a.clen == 10 && a.after == FS_AFTER_RESET);
    assert_int_equal(fs_fault_shape(&fault_srv, FS_FAULT_SILENCE, &a), 1);
    assert_int_equal(a.after, FS_AFTER_SILENCE);
    assert_int_equal(fs_fault_shape(&fault_srv, FS_FAULT_TRICKLE, &a), 1);
    assert_int_equal(a.after, FS_AFTER_TRICKLE);
    fault_srv.filler = filler;
    assert_int_equal(fs_fault_shape(&fault_srv, FS_FAULT_HUGEHEADERS, &a), 1);
    assert_ptr_equal(a.extra, filler);
    fault_srv.filler = NULL;
    free(a.owned);

    /* gzip: the body becomes its gzip, without the identity's validators. */
    a = file_answer("flag flag flag flag flag flag flag flag flag flag");
    assert_int_equal(fs_fault_shape(&fault_srv, FS_FAULT_GZIP, &a), 1);
    assert_true(a.body == a.owned && a.len >= 18 && a.clen == (int64_t)a.len);
    assert_true(memcmp(a.body, "\x1f\x8b", 2) == 0);
    assert_string_equal(a.extra, "Content-Encoding: gzip\r\n");
    assert_null(a.extra2);
    free(a.owned);
}

static void test_fault_seen(void **state)
{
    fs_fault_seen *s = fs_fault_seen_new();

    assert_non_null(s);
    assert_int_equal(fs_fault_seen_first(s, FS_FAULT_429, "/a", 2), 1);
    assert_int_equal(fs_fault_seen_first(s, FS_FAULT_429, "/a", 2), 0);
    assert_int_equal(fs_fault_seen_first(s, FS_FAULT_503, "/a", 2), 1);
    assert_int_equal(fs_fault_seen_first(s, FS_FAULT_429, "/b", 2), 1);
    fs_fault_seen_free(s);
    fs_fault_seen_free(NULL);
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
        cmocka_unit_test(test_fault_parse),
        cmocka_unit_test(test_fault_fixed_answers),
        cmocka_unit_test(test_fault_redirects),
        cmocka_unit_test(test_fault_first_request),
        cmocka_unit_test(test_fault_bomb),
        cmocka_unit_test(test_fault_shape),
        cmocka_unit_test(test_fault_seen),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
