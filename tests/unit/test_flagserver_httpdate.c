/* Date formatting and parsing, access-log lines, validators and 304s. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flagserver/accesslog.h"
#include "flagserver/cond.h"
#include "flagserver/httpdate.h"

static void test_imf_fixdate(void **state)
{
    char buf[FS_HTTPDATE_LEN];

    assert_string_equal(fs_httpdate_format(784111777, buf), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_string_equal(fs_httpdate_format(0, buf), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_string_equal(fs_httpdate_format(951782400, buf), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_string_equal(fs_httpdate_format(4102444799LL, buf), "Thu, 31 Dec 2099 23:59:59 GMT");
    assert_string_equal(fs_httpdate_format(-1, buf), "Wed, 31 Dec 1969 23:59:59 GMT");
}

static void test_parse_round_trip(void **state)
{
    char buf[FS_HTTPDATE_LEN];
    int64_t t, back;

    for (t = -86400LL * 400; t < 86400LL * 365 * 200; t += 86400LL * 37 + 3671) {
        assert_int_equal(fs_httpdate_parse(fs_httpdate_format(t, buf), &back), 0);
        assert_true(back == t);
    }
    assert_int_equal(fs_httpdate_parse("  Sun, 06 Nov 1994 08:49:37 GMT ", &t), 0);
    assert_true(t == 784111777);
}

/* RFC 9110 5.6.7: a recipient accepts all three forms of HTTP-date. */
static void test_parse_obsolete_forms(void **state)
{
    int64_t t = 0;

    assert_int_equal(fs_httpdate_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    assert_true(t == 784111777);
    t = 0;
    assert_int_equal(fs_httpdate_parse("Sun Nov  6 08:49:37 1994", &t), 0);
    assert_true(t == 784111777);
    t = 0;
    assert_int_equal(fs_httpdate_parse("Tue Feb 29 00:00:00 2000", &t), 0);
    assert_true(t == 951782400);
    t = 0;
    assert_int_equal(fs_httpdate_parse("Thursday, 01-Jan-70 00:00:00 GMT", &t), 0);
    assert_true(t == 0);
}

static void test_parse_rejects(void **state)
{
    int64_t t;

    /* The obsolete forms spelled wrongly. */
    assert_int_equal(fs_httpdate_parse("Sun, 06-Nov-94 08:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sunday, 06-Nov-1994 08:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Monday, 06-Nov-94 08:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun Nov 06 08:49:37 1994", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun Nov  6 08:49:37 1994 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun Nov 31 08:49:37 1994", &t), -1);
    /* Dates outside GMT, or with trailing text. */
    assert_int_equal(fs_httpdate_parse("Sun, 06 Nov 1994 08:49:37 +0000", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT x", &t), -1);
    assert_int_equal(fs_httpdate_parse("Mon, 06 Nov 1994 08:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sunday, 06 Nov 1994 08:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun, 06 Nov 1994 08:49:37 UTC", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun, 31 Feb 1994 08:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun, 06 Foo 1994 08:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun, 06 Nov 1994 24:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("Sun, 6 Nov 1994 08:49:37 GMT", &t), -1);
    assert_int_equal(fs_httpdate_parse("", &t), -1);
    assert_int_equal(fs_httpdate_parse("garbage", &t), -1);
}

static void test_logtime(void **state)
{
    char buf[FS_LOGTIME_LEN];

    assert_string_equal(fs_logtime_format(0, buf), "1970-01-01T00:00:00.000Z");
    assert_string_equal(fs_logtime_format(1795293663123LL, buf), "2026-11-21T20:41:03.123Z");
    assert_string_equal(fs_logtime_format(951782400007LL, buf), "2000-02-29T00:00:00.007Z");
}

static void test_accesslog_line(void **state)
{
    char line[256];
    fs_accesslog_entry e = {1795293663123LL, "GET", "/flags/br/br.gif", 16, 200, 1234, 1078, 17};
    size_t n = fs_accesslog_format(&e, line, sizeof(line));

    assert_string_equal(line, "2026-11-21T20:41:03.123Z GET /flags/br/br.gif 200 delay=1234 "
                              "bytes=1078 inflight=17\n");
    assert_int_equal(n, strlen(line));
}

static void test_accesslog_escapes_and_truncates(void **state)
{
    char line[256], big[1000];
    fs_accesslog_entry e = {0, NULL, "/a b\n%", 6, 400, 0, 0, 1};

    fs_accesslog_format(&e, line, sizeof(line));
    assert_string_equal(line, "1970-01-01T00:00:00.000Z - /a%20b%0A% 400 delay=0 bytes=0 "
                              "inflight=1\n");
    e.target = NULL;
    e.target_len = 0;
    fs_accesslog_format(&e, line, sizeof(line));
    assert_string_equal(line, "1970-01-01T00:00:00.000Z - - 400 delay=0 bytes=0 inflight=1\n");
    memset(big, 'x', sizeof(big));
    e.target = big;
    e.target_len = sizeof(big);
    e.method = "GET";
    assert_true(fs_accesslog_format(&e, line, 128) < 128);
    assert_non_null(strstr(line, " 400 delay=0 bytes=0 inflight=1\n"));
}

static void test_etag(void **state)
{
    char etag[FS_ETAG_LEN];

    assert_string_equal(fs_cond_etag(1078, 1, 5, etag), "\"436-3b9aca05\"");
    assert_string_equal(fs_cond_etag(0, 0, 0, etag), "\"0-0\"");
}

static void test_not_modified(void **state)
{
    const char *etag = "\"436-3b9aca05\"";
    int64_t mtime = 784111777;

    assert_false(fs_cond_not_modified(NULL, NULL, etag, mtime));
    assert_true(fs_cond_not_modified("\"436-3b9aca05\"", NULL, etag, mtime));
    assert_true(fs_cond_not_modified("W/\"436-3b9aca05\"", NULL, etag, mtime));
    assert_true(fs_cond_not_modified("\"x\", \"436-3b9aca05\"", NULL, etag, mtime));
    assert_true(fs_cond_not_modified("*", NULL, etag, mtime));
    assert_false(fs_cond_not_modified("\"436-3b9aca06\"", NULL, etag, mtime));
    assert_false(fs_cond_not_modified("436-3b9aca05", NULL, etag, mtime));
    assert_false(fs_cond_not_modified("", NULL, etag, mtime));
    /* If-None-Match wins over If-Modified-Since. */
    assert_false(fs_cond_not_modified("\"nope\"", "Sun, 06 Nov 1994 08:49:37 GMT", etag, mtime));
    assert_true(fs_cond_not_modified(NULL, "Sun, 06 Nov 1994 08:49:37 GMT", etag, mtime));
    assert_true(fs_cond_not_modified(NULL, "Mon, 07 Nov 1994 08:49:37 GMT", etag, mtime));
    assert_false(fs_cond_not_modified(NULL, "Sun, 06 Nov 1994 08:49:36 GMT", etag, mtime));
    assert_false(fs_cond_not_modified(NULL, "yesterday", etag, mtime));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imf_fixdate),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_parse_obsolete_forms),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_logtime),
        cmocka_unit_test(test_accesslog_line),
        cmocka_unit_test(test_accesslog_escapes_and_truncates),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_not_modified),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
