/* Option and preset parsing: order independence and bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flagserver/options.h"

static char errbuf[256];

/* Parses a NULL-terminated list of arguments (program name added). */
static int parse(fs_options *o, const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    const char *a;
    va_list ap;

    argv[argc++] = (char *)"flagserver";
    va_start(ap, first);
    for (a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return fs_options_parse(o, argc, argv, errbuf, sizeof(errbuf));
}

static void assert_bad(int rc, const char *needle)
{
    assert_int_equal(rc, FS_OPTIONS_ERROR);
    if (strstr(errbuf, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", errbuf, needle);
}

static void test_defaults_are_local(void **state)
{
    fs_options o;

    assert_int_equal(parse(&o, NULL), FS_OPTIONS_OK);
    assert_string_equal(o.preset, "local");
    assert_int_equal(o.port, 8000);
    assert_string_equal(o.bind, "127.0.0.1");
    assert_null(o.directory);
    assert_true(o.delay_min == 0.0 && o.delay_max == 0.0);
    assert_true(o.error_rate == 0.0);
    assert_false(o.seed_set);
    assert_false(o.quiet);
    assert_int_equal(o.max_inflight, 0);
    assert_true(o.idle_timeout == 60.0);
}

static void test_presets(void **state)
{
    fs_options o;

    assert_int_equal(parse(&o, "--preset", "delay", NULL), FS_OPTIONS_OK);
    assert_int_equal(o.port, 8001);
    assert_true(o.delay_min == 0.5 && o.delay_max == 5.0 && o.error_rate == 0.0);
    assert_int_equal(parse(&o, "--preset=error", NULL), FS_OPTIONS_OK);
    assert_int_equal(o.port, 8002);
    assert_true(o.delay_min == 0.5 && o.delay_max == 5.0 && o.error_rate == 0.25);
    assert_int_equal(parse(&o, "--preset", "local", NULL), FS_OPTIONS_OK);
    assert_int_equal(o.port, 8000);
}

static void test_explicit_options_win_in_any_order(void **state)
{
    fs_options o;

    assert_int_equal(parse(&o, "--delay", "0", "--preset", "delay", NULL), FS_OPTIONS_OK);
    assert_true(o.delay_min == 0.0 && o.delay_max == 0.0);
    assert_int_equal(o.port, 8001);
    assert_int_equal(parse(&o, "--preset", "delay", "--delay", "0", NULL), FS_OPTIONS_OK);
    assert_true(o.delay_min == 0.0 && o.delay_max == 0.0);
    assert_int_equal(parse(&o, "--port", "0", "--error-rate", "0.5", "--preset", "error", NULL),
                     FS_OPTIONS_OK);
    assert_int_equal(o.port, 0);
    assert_true(o.error_rate == 0.5 && o.delay_min == 0.5 && o.delay_max == 5.0);
    assert_int_equal(parse(&o, "--preset", "error", "--port", "9", "--preset", "local", NULL),
                     FS_OPTIONS_OK);
    assert_int_equal(o.port, 9); /* the last preset counts, explicit options still win */
    assert_true(o.error_rate == 0.0);
}

static void test_values(void **state)
{
    fs_options o;

    assert_int_equal(parse(&o, "--delay", "0.05:0.2", "--seed", "18446744073709551615", "--quiet",
                           "--bind", "::1", "--directory", "/tmp", "--max-inflight", "10",
                           "--error-rate", "1", "--idle-timeout", "0.25", NULL),
                     FS_OPTIONS_OK);
    assert_true(o.delay_min == 0.05 && o.delay_max == 0.2);
    assert_true(o.seed_set && o.seed == UINT64_MAX);
    assert_true(o.quiet);
    assert_string_equal(o.bind, "::1");
    assert_string_equal(o.directory, "/tmp");
    assert_int_equal(o.max_inflight, 10);
    assert_true(o.error_rate == 1.0);
    assert_true(o.idle_timeout == 0.25);
    assert_int_equal(parse(&o, "--idle-timeout", "0", NULL), FS_OPTIONS_OK);
    assert_true(o.idle_timeout == 0.0);
    assert_int_equal(parse(&o, "--delay", "1.5", NULL), FS_OPTIONS_OK);
    assert_true(o.delay_min == 1.5 && o.delay_max == 1.5);
    assert_int_equal(parse(&o, "--port=65535", "--bind=0.0.0.0", NULL), FS_OPTIONS_OK);
    assert_int_equal(o.port, 65535);
}

static void test_help(void **state)
{
    fs_options o;

    assert_int_equal(parse(&o, "-h", NULL), FS_OPTIONS_HELP);
    assert_int_equal(parse(&o, "--port", "1", "--help", NULL), FS_OPTIONS_HELP);
    assert_non_null(strstr(fs_options_usage(), "--preset"));
}

static void test_bad_values(void **state)
{
    fs_options o;

    assert_bad(parse(&o, "--preset", "slow", NULL), "preset");
    assert_bad(parse(&o, "--port", "65536", NULL), "--port");
    assert_bad(parse(&o, "--port", "-1", NULL), "--port");
    assert_bad(parse(&o, "--port", "80x", NULL), "--port");
    assert_bad(parse(&o, "--port", "", NULL), "--port");
    assert_bad(parse(&o, "--delay", "2:1", NULL), "--delay");
    assert_bad(parse(&o, "--delay", "-1", NULL), "--delay");
    assert_bad(parse(&o, "--delay", "abc", NULL), "--delay");
    assert_bad(parse(&o, "--delay", "1:", NULL), "--delay");
    assert_bad(parse(&o, "--delay", ":1", NULL), "--delay");
    assert_bad(parse(&o, "--delay", "nan", NULL), "--delay");
    assert_bad(parse(&o, "--delay", "inf", NULL), "--delay");
    assert_bad(parse(&o, "--delay", "1e9", NULL), "--delay");
    assert_bad(parse(&o, "--error-rate", "1.5", NULL), "--error-rate");
    assert_bad(parse(&o, "--error-rate", "-0.1", NULL), "--error-rate");
    assert_bad(parse(&o, "--error-rate", "x", NULL), "--error-rate");
    assert_bad(parse(&o, "--seed", "-3", NULL), "--seed");
    assert_bad(parse(&o, "--seed", "99999999999999999999", NULL), "--seed");
    assert_bad(parse(&o, "--bind", "localhost", NULL), "--bind");
    assert_bad(parse(&o, "--bind", "1.2.3", NULL), "--bind");
    assert_bad(parse(&o, "--max-inflight", "x", NULL), "--max-inflight");
    assert_bad(parse(&o, "--idle-timeout", "-1", NULL), "--idle-timeout");
    assert_bad(parse(&o, "--idle-timeout", "1h", NULL), "--idle-timeout");
    assert_bad(parse(&o, "--directory", "", NULL), "directory");
    assert_bad(parse(&o, "--bogus", NULL), "--bogus");
    assert_bad(parse(&o, "-x", NULL), "-x");
    assert_bad(parse(&o, "--port", NULL), "--port");
    assert_bad(parse(&o, "extra", NULL), "extra");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_local),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_explicit_options_win_in_any_order),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_bad_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
