/* Unit tests of gf/cli.h: accepted forms and every usage error, and of the
 * messages of gf/error.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>

#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "gf/cli.h"
#include "gf/error.h"
#include "gf/ratelimit.h"

#define MAX_ARGS 64

static struct gf_options opts;
static char err[256];

/* Parses "getflags" followed by the NULL-terminated arguments. */
static int parse_list(const char *first, va_list ap)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    const char *a;

    argv[argc++] = (char *)"getflags";
    for (a = first; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < MAX_ARGS);
        argv[argc++] = (char *)a;
    }
    argv[argc] = NULL;
    memset(err, 0, sizeof err);
    return gf_cli_parse(argc, argv, &opts, err, sizeof err);
}

/* Expects success; the options are freed by teardown. */
static void ok(const char *first, ...)
{
    va_list ap;
    int rc;

    gf_options_free(&opts);
    va_start(ap, first);
    rc = parse_list(first, ap);
    va_end(ap);
    if (rc != 0)
        fail_msg("unexpected usage error: %s", err);
}

/* Expects a usage error with exactly this message. */
static void usage_error(const char *message, const char *first, ...)
{
    va_list ap;
    int rc;

    gf_options_free(&opts);
    va_start(ap, first);
    rc = parse_list(first, ap);
    va_end(ap);
    assert_int_equal(rc, GF_EUSAGE);
    assert_string_equal(err, message);
    /* "leaves nothing to free" */
    assert_null(opts.base_url);
    assert_null(opts.base_url_display);
}

static int teardown(void **state)
{
    gf_options_free(&opts);
    memset(&opts, 0, sizeof opts);
    return 0;
}

static void assert_codes(const char *joined)
{
    char buf[GF_CODES_MAX * 3 + 1] = "";
    size_t i;

    for (i = 0; i < opts.ncodes; i++) {
        if (i > 0)
            strcat(buf, " ");
        strcat(buf, opts.codes[i]);
    }
    assert_string_equal(buf, joined);
}

static void test_cli_defaults(void **state)
{
    ok(NULL);
    assert_string_equal(opts.server_label, "LOCAL");
    assert_string_equal(opts.base_url, "http://localhost:8000/flags");
    assert_int_equal(opts.concurrency, 5);
    assert_int_equal(opts.limit, 0);
    assert_false(opts.verbose);
    assert_false(opts.quiet);
    assert_false(opts.json);
    assert_false(opts.show_help);
    assert_false(opts.show_version);
    assert_string_equal(opts.outdir, "./downloaded");
    assert_int_equal(opts.timeout_ms, 10000);
    assert_null(opts.cacert);
    assert_int_equal(opts.retries, 2);
    assert_int_equal(opts.max_size, 10 * 1024 * 1024);
    assert_int_equal(opts.nsweep, 0);
    assert_int_equal(opts.http_version, GF_HTTP_AUTO);
    assert_string_equal(opts.base_url_display, "http://localhost:8000/flags");
    assert_codes("BD BR CD CN DE EG ET FR ID IN IR JP MX NG PH PK RU TR US VN");
}

static void test_cli_codes_sorted_deduplicated(void **state)
{
    ok("us", "BR", "cn", "BR", "Us", NULL);
    assert_codes("BR CN US");
}

static void test_cli_letter_expands(void **state)
{
    ok("z", NULL);
    assert_int_equal(opts.ncodes, 26);
    assert_string_equal(opts.codes[0], "ZA");
    assert_string_equal(opts.codes[25], "ZZ");
}

static void test_cli_codes_mixed_with_options(void **state)
{
    /* Options may come after codes, and "--" ends the options. */
    ok("BR", "-v", "CN", "-m", "3", NULL);
    assert_codes("BR CN");
    assert_true(opts.verbose);
    assert_int_equal(opts.concurrency, 3);
    ok("-q", "--", "US", NULL);
    assert_codes("US");
    assert_true(opts.quiet);
}

static void test_cli_all_and_every(void **state)
{
    size_t ncompiled = 0, i;
    int in_word = 0;

    for (i = 0; gf_country_codes_txt[i]; i++) {
        int space = gf_country_codes_txt[i] == ' ';
        if (!space && !in_word)
            ncompiled++;
        in_word = !space;
    }
    ok("-a", NULL);
    assert_int_equal(opts.ncodes, ncompiled);
    assert_string_equal(opts.codes[0], "AD");
    ok("-e", NULL);
    assert_int_equal(opts.ncodes, GF_CODES_MAX);
    assert_string_equal(opts.codes[0], "AA");
    assert_string_equal(opts.codes[GF_CODES_MAX - 1], "ZZ");
    /* -a with a code outside the list: the union, with no default 20. */
    ok("-a", "ZZ", NULL);
    assert_int_equal(opts.ncodes, ncompiled + 1);
    assert_string_equal(opts.codes[opts.ncodes - 1], "ZZ");
    ok("-e", "BR", "-a", NULL);
    assert_int_equal(opts.ncodes, GF_CODES_MAX);
}

static void test_cli_limit(void **state)
{
    ok("-l", "3", NULL);
    assert_int_equal(opts.limit, 3);
    assert_codes("BD BR CD");
    ok("-e", "-l", "1", NULL);
    assert_codes("AA");
    ok("-l100", "US", "BR", NULL);
    assert_codes("BR US");
    usage_error("argument -l/--limit: must be an integer from 1 to 1000000, got '0'", "-l", "0",
                NULL);
    usage_error("argument -l/--limit: must be an integer from 1 to 1000000, got '-2'", "-l", "-2",
                NULL);
    usage_error("argument -l/--limit: must be an integer from 1 to 1000000, got 'x'", "-l", "x",
                NULL);
    usage_error("option -l needs a value", "-l", NULL);
}

static void test_cli_concurrency(void **state)
{
    ok("-m", "1", NULL);
    assert_int_equal(opts.concurrency, 1);
    ok("-m100000", NULL);
    assert_int_equal(opts.concurrency, 100000);
    ok("-m", "007", NULL);
    assert_int_equal(opts.concurrency, 7);
}

static void test_cli_concurrency_errors(void **state)
{
    static const char *const bad[] = {
        "0",  "-1", "abc",  "",       "1.5",        " 5",
        "5 ", "+5", "0x10", "100001", "4294967296", "99999999999999999999999999",
    };
    char message[200];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(message, sizeof message,
                 "argument -m/--max_req: must be an integer from 1 to 100000, got '%s'", bad[i]);
        usage_error(message, "-m", bad[i], NULL);
    }
    usage_error("option -m needs a value", "-m", NULL);
    /* The control byte is shown escaped. */
    usage_error("argument -m/--max_req: must be an integer from 1 to 100000, got '\\x1b'", "-m",
                "\x1b", NULL);
}

static void test_cli_server_labels(void **state)
{
    static const char *const labels[][2] = {
        {"LOCAL", "http://localhost:8000/flags"},
        {"REMOTE", "https://www.fluentpython.com/data/flags"},
        {"DELAY", "http://localhost:8001/flags"},
        {"ERROR", "http://localhost:8002/flags"},
    };
    size_t i;

    for (i = 0; i < 4; i++) {
        ok("-s", labels[i][0], NULL);
        assert_string_equal(opts.server_label, labels[i][0]);
        assert_string_equal(opts.base_url, labels[i][1]);
        assert_string_equal(opts.base_url_display, labels[i][1]);
    }
    ok("-s", "remote", NULL);
    assert_string_equal(opts.server_label, "REMOTE");
    ok("-sDeLaY", NULL);
    assert_string_equal(opts.server_label, "DELAY");
    /* The last -s wins. */
    ok("-s", "ERROR", "-s", "LOCAL", NULL);
    assert_string_equal(opts.base_url, "http://localhost:8000/flags");
}

static void test_cli_server_urls(void **state)
{
    ok("-s", "http://127.0.0.1:9000/flags", NULL);
    assert_string_equal(opts.server_label, "URL");
    assert_string_equal(opts.base_url, "http://127.0.0.1:9000/flags");
    ok("-s", "https://example.com/data/flags///", NULL);
    assert_string_equal(opts.base_url, "https://example.com/data/flags");
    /* Scheme and host compare in lower case (the last run's server for
     * --update): written so; the path and the user name stay as given. */
    ok("-s", "HTTP://Example.COM/", NULL);
    assert_string_equal(opts.server_label, "URL");
    assert_string_equal(opts.base_url, "http://example.com");
    ok("-s", "hTTpS://[::1]:8443", NULL);
    assert_string_equal(opts.base_url, "https://[::1]:8443");
    assert_string_equal(opts.base_url_display, "https://[::1]:8443");
    ok("-s", "HTTP://SomeOne@Example.com/Flags", NULL);
    assert_string_equal(opts.base_url, "http://SomeOne@example.com/Flags");
    /* A user name alone is no secret. */
    ok("-s", "http://someone@example.com/flags", NULL);
    assert_string_equal(opts.base_url, "http://someone@example.com/flags");
    assert_string_equal(opts.base_url_display, "http://someone@example.com/flags");
    /* Percent-encoding is libcurl's business: kept as written. */
    ok("-s", "http://example.com/my%20flags/", NULL);
    assert_string_equal(opts.base_url, "http://example.com/my%20flags");
}

/* The password is used for requests and shown nowhere. */
static void test_cli_server_url_password(void **state)
{
    static const char *const cases[][3] = {
        /* -s, base_url, base_url_display */
        {"http://user:secret@127.0.0.1:9000/flags/", "http://user:secret@127.0.0.1:9000/flags",
         "http://user@127.0.0.1:9000/flags"},
        {"https://user:secret@example.com", "https://user:secret@example.com",
         "https://user@example.com"},
        /* libcurl: the user name ends at the first ':', so the rest is password. */
        {"http://user:sec:ret@example.com/x", "http://user:sec:ret@example.com/x",
         "http://user@example.com/x"},
        {"http://user:@example.com/x", "http://user:@example.com/x", "http://user@example.com/x"},
        /* No user name: the whole userinfo goes. */
        {"http://:secret@example.com/x", "http://:secret@example.com/x", "http://example.com/x"},
        {"http://us%3Aer:se%40cret@[::1]:8080/x", "http://us%3Aer:se%40cret@[::1]:8080/x",
         "http://us%3Aer@[::1]:8080/x"},
        /* An '@' in the path is not userinfo. */
        {"http://example.com:8080/a@b", "http://example.com:8080/a@b",
         "http://example.com:8080/a@b"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ok("-s", cases[i][0], NULL);
        assert_string_equal(opts.server_label, "URL");
        assert_string_equal(opts.base_url, cases[i][1]);
        assert_string_equal(opts.base_url_display, cases[i][2]);
    }
    /* A label after a URL replaces both. */
    ok("-s", "http://u:secret@example.com", "-s", "REMOTE", NULL);
    assert_string_equal(opts.base_url_display, "https://www.fluentpython.com/data/flags");
    /* Usage errors show the URL without its password too, even one libcurl
     * refuses. */
    usage_error("argument -s/--server: not a URL libcurl accepts (Bad hostname), got "
                "'http://user@host/flags'",
                "-s", "http://user:sec@ret@host/flags", NULL);
    usage_error("argument -s/--server: a base URL cannot have a #fragment (libcurl never sends "
                "it), got 'http://user@host/flags'",
                "-s", "http://user:sec#ret@host/flags", NULL);
    usage_error("argument -s/--server: a base URL cannot have spaces, control characters or "
                "non-ASCII bytes (percent-encode them, e.g. %20; a non-ASCII host in its "
                "punycode form, xn--...), got 'http://user@ho st/'",
                "-s", "http://user:secret@ho st/", NULL);
    /* A '/' in the password ends the authority for libcurl: all before the
     * last '@' is hidden. */
    usage_error("argument -s/--server: not a URL libcurl accepts (Port number was not a decimal "
                "number between 0 and 65535), got 'http://...@host/flags'",
                "-s", "http://user:sec/ret@host/flags", NULL);
    usage_error("argument -s/--server: a base URL cannot have a #fragment (libcurl never sends "
                "it), got 'http://...@b#x'",
                "-s", "http://host:8080/a@b#x", NULL);
}

/* What libcurl would not send as shown is refused. */
static void test_cli_server_url_not_as_shown(void **state)
{
    usage_error("argument -s/--server: a base URL cannot have a #fragment (libcurl never sends "
                "it), got 'http://example.com/flags#top'",
                "-s", "http://example.com/flags#top", NULL);
    usage_error("argument -s/--server: a base URL cannot have a #fragment (libcurl never sends "
                "it), got 'http://example.com/flags#'",
                "--server", "http://example.com/flags#", NULL);
    usage_error("argument -s/--server: a base URL cannot have a ?query (the flag paths would go "
                "into it), got 'http://example.com/flags?v=1'",
                "-s", "http://example.com/flags?v=1", NULL);
    usage_error("argument -s/--server: libcurl would ask for the path '/flags' instead (no . or "
                ".. segments), got 'http://example.com/data/../flags'",
                "-s", "http://example.com/data/../flags", NULL);
    usage_error("argument -s/--server: libcurl would ask for the path '/flags/' instead (no . or "
                ".. segments), got 'http://example.com/flags/./'",
                "-s", "http://example.com/flags/./", NULL);
    usage_error("argument -s/--server: not a URL libcurl accepts (Port number was not a decimal "
                "number between 0 and 65535), got 'http://example.com:99999/flags'",
                "-s", "http://example.com:99999/flags", NULL);
    usage_error("argument -s/--server: a base URL cannot have spaces, control characters or "
                "non-ASCII bytes (percent-encode them, e.g. %20; a non-ASCII host in its "
                "punycode form, xn--...), got 'http://example.com/fl\\x09ags'",
                "-s", "http://example.com/fl\tags", NULL);
    usage_error("argument -s/--server: port 0 is no port a server can be reached on, got "
                "'http://127.0.0.1:0/flags'",
                "-s", "http://127.0.0.1:0/flags", NULL);
    usage_error("argument -s/--server: port 0 is no port a server can be reached on, got "
                "'https://[::1]:00/flags'",
                "-s", "https://[::1]:00/flags", NULL);
    ok("-s", "http://127.0.0.1:8000/flags", NULL);
}

static void test_cli_server_errors(void **state)
{
    static const char *const not_url = "must be LOCAL, REMOTE, DELAY, ERROR or an http:// or "
                                       "https:// URL";
    static const char *const no_host = "a base URL needs a host after '//'";
    static const char *const spaces = "a base URL cannot start or end with spaces";
    static const char *const bytes =
        "a base URL cannot have spaces, control characters or non-ASCII bytes (percent-encode "
        "them, e.g. %20; a non-ASCII host in its punycode form, xn--...)";
    static const struct {
        const char *arg, *why;
    } bad[] = {
        {"nowhere", not_url},
        {"", not_url},
        {"ftp://example.com/flags", not_url},
        {"http://", no_host},
        {"https://", no_host},
        {"http:///flags", no_host},
        {"http://exa mple.com", bytes},
        {"http://example.com/\x01", bytes},
        {"http://example.com/\x7f", bytes},
        {"http:/example.com", not_url},
        {"localhost:8000/flags", not_url},
        {"http://ex\xc3\xa9.com", bytes},
        {"file:///etc", not_url},
        {" http://127.0.0.1:8000/flags", spaces},
        {"http://127.0.0.1:8000/flags\n", spaces},
        {" nowhere", not_url},
    };
    char message[400], shown[64];
    size_t i, j, k;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* The expected message shows control and non-UTF-8 bytes escaped. */
        for (j = 0, k = 0; bad[i].arg[j]; j++) {
            unsigned char c = (unsigned char)bad[i].arg[j];
            if (c < 0x20 || c == 0x7f)
                k += (size_t)snprintf(shown + k, sizeof shown - k, "\\x%02x", c);
            else
                shown[k++] = (char)c;
        }
        shown[k] = '\0';
        snprintf(message, sizeof message, "argument -s/--server: %s, got '%s'", bad[i].why, shown);
        usage_error(message, "-s", bad[i].arg, NULL);
    }
    usage_error("option -s needs a value", "-s", NULL);
}

static void test_cli_outdir(void **state)
{
    ok("-o", "/tmp/flags", NULL);
    assert_string_equal(opts.outdir, "/tmp/flags");
    usage_error("argument -o: must not be empty", "-o", "", NULL);
    usage_error("option -o needs a value", "-o", NULL);
}

static void test_cli_timeout(void **state)
{
    static const struct {
        const char *arg;
        uint64_t ms;
    } good[] = {
        {"10", 10000},       {"0.5", 500},          {".5", 500},      {"5.", 5000},
        {"0.0001", 1},       {"0.001", 1},          {"0.0011", 2},    {"1.2345", 1235},
        {"86400", 86400000}, {"86400.0", 86400000}, {"00030", 30000},
    };
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        ok("--timeout", good[i].arg, NULL);
        assert_int_equal(opts.timeout_ms, good[i].ms);
    }
    ok("--timeout=2.5", NULL);
    assert_int_equal(opts.timeout_ms, 2500);
}

static void test_cli_timeout_errors(void **state)
{
    static const char *const bad[] = {
        "0", "0.0", "0.0000", "-1", "86400.001", "86401", "1e3", "inf", "nan",
        "",  ".",   "1.2.3",  " 1", "1 ",        "0x10",  "+1",  "1,5", "99999999999999999999999",
    };
    char message[200];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(message, sizeof message,
                 "argument --timeout: must be seconds in digits with an optional fraction (10, "
                 "0.5), above 0 and at most 86400, got '%s'",
                 bad[i]);
        usage_error(message, "--timeout", bad[i], NULL);
    }
    usage_error("option --timeout needs a value", "--timeout", NULL);
}

static void test_cli_cacert(void **state)
{
    ok("--cacert", "/etc/ssl/ca.pem", NULL);
    assert_string_equal(opts.cacert, "/etc/ssl/ca.pem");
    usage_error("argument --cacert: must not be empty", "--cacert", "", NULL);
    usage_error("option --cacert needs a value", "--cacert", NULL);
}

static void test_cli_flags(void **state)
{
    ok("--json", "-v", NULL);
    assert_true(opts.json);
    assert_true(opts.verbose);
    assert_false(opts.quiet);
    ok("-q", NULL);
    assert_true(opts.quiet);
    ok("-ae", NULL); /* grouped short options */
    assert_int_equal(opts.ncodes, GF_CODES_MAX);
}

static void test_cli_quiet_and_verbose_conflict(void **state)
{
    usage_error("-q and -v cannot be used together", "-q", "-v", NULL);
    usage_error("-q and -v cannot be used together", "-vq", NULL);
}

static void test_cli_retries(void **state)
{
    ok("--retries", "0", NULL);
    assert_int_equal(opts.retries, 0);
    ok("--retries", "100", NULL);
    assert_int_equal(opts.retries, 100);
    usage_error("argument --retries: must be an integer from 0 to 100, got '101'", "--retries",
                "101", NULL);
    usage_error("argument --retries: must be an integer from 0 to 100, got '-1'", "--retries", "-1",
                NULL);
    usage_error("argument --retries: must be an integer from 0 to 100, got 'two'", "--retries",
                "two", NULL);
    usage_error("option --retries needs a value", "--retries", NULL);
}

static void test_cli_max_size(void **state)
{
    static const struct {
        const char *arg;
        uint64_t bytes;
    } good[] = {
        {"1024", 1024},
        {"1", 1},
        {"1K", 1024},
        {"64k", 65536},
        {"10M", 10u * 1024 * 1024},
        {"3m", 3u * 1024 * 1024},
        {"1G", 1024u * 1024 * 1024},
        {"4G", 4ull * 1024 * 1024 * 1024},
        {"4194304K", 4ull * 1024 * 1024 * 1024},
    };
    static const char *const bad[] = {
        "0",   "0K",   "",   "K",  "-1",         "1T",
        "1KB", "1.5M", " 1", "5G", "4294967297", "99999999999999999999999G",
    };
    char message[200];
    size_t i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        ok("--max-size", good[i].arg, NULL);
        assert_int_equal(opts.max_size, good[i].bytes);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(message, sizeof message,
                 "argument --max-size: must be a positive number of bytes, optionally followed "
                 "by K, M or G, at most 4G, got '%s'",
                 bad[i]);
        usage_error(message, "--max-size", bad[i], NULL);
    }
}

static void test_cli_sweep(void **state)
{
    char list[200];
    size_t i, n = 0;

    ok("--sweep", "1,5,20", NULL);
    assert_int_equal(opts.nsweep, 3);
    assert_int_equal(opts.sweep[0], 1);
    assert_int_equal(opts.sweep[1], 5);
    assert_int_equal(opts.sweep[2], 20);
    ok("--sweep=7", NULL);
    assert_int_equal(opts.nsweep, 1);
    assert_int_equal(opts.sweep[0], 7);

    /* GF_SWEEP_MAX items are accepted, one more is not. */
    for (i = 0; i < GF_SWEEP_MAX; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%zu", i > 0 ? "," : "", i + 1);
    ok("--sweep", list, NULL);
    assert_int_equal(opts.nsweep, GF_SWEEP_MAX);
    assert_int_equal(opts.sweep[GF_SWEEP_MAX - 1], GF_SWEEP_MAX);
    strcat(list, ",1");
    usage_error("argument --sweep: must be a comma-separated list of at most 32 integers from 1 "
                "to 100000, got '1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,"
                "25,26,27,28,29,30,31,32,1'",
                "--sweep", list, NULL);
}

static void test_cli_m_auto(void **state)
{
    ok("-m", "auto", NULL);
    assert_int_equal(opts.concurrency_auto, 1);
    ok("-m", "AUTO", "BR", NULL);
    assert_int_equal(opts.concurrency_auto, 1);
    /* The last -m wins either way. */
    ok("-m", "auto", "-m", "7", NULL);
    assert_int_equal(opts.concurrency_auto, 0);
    assert_int_equal(opts.concurrency, 7);
    usage_error("argument -m/--max_req: must be an integer from 1 to 100000, got 'automatic'", "-m",
                "automatic", NULL);
    usage_error("--sweep and -m auto cannot be used together", "-m", "auto", "--sweep", "1,2",
                NULL);
}

static void test_cli_rate(void **state)
{
    struct gf_ratelimit rl;

    ok("--rate", "2.5", NULL);
    assert_true(opts.rate == 2.5);
    ok("--rate=100000", NULL);
    assert_true(opts.rate == 100000.0);
    ok(NULL);
    assert_true(opts.rate == 0);
    /* The slowest rate the message names is one the limiter takes. */
    ok("--rate", "0.0000116", NULL);
    assert_int_equal(gf_ratelimit_init(&rl, opts.rate), 0);
    ok("--rate", "0.000011575", NULL);
    assert_int_equal(gf_ratelimit_init(&rl, opts.rate), 0);
    /* Below it the limiter would refuse, and the run would go unlimited. */
    static const char *const bad[] = {"0",           "0.0",
                                      "-1",          "1e3",
                                      "abc",         "",
                                      ".",           "100000.5",
                                      "nan",         "inf",
                                      "0x10",        "0.00001",
                                      "0.000011574", "0.0000000000000000000000000000001"};
    char message[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(message, sizeof message,
                 "argument --rate: must be a number of requests per second from 0.0000116 (one a "
                 "day) to 100000, got '%s'",
                 bad[i]);
        usage_error(message, "--rate", bad[i], NULL);
    }
    assert_true(0.000011574 < GF_RATELIMIT_MIN_RATE && 0.0000116 >= GF_RATELIMIT_MIN_RATE);
}

static void test_cli_cron_flags(void **state)
{
    ok("--update", "--wait-lock", NULL);
    assert_int_equal(opts.update, 1);
    assert_int_equal(opts.wait_lock, 1);
    assert_int_equal(opts.retry_failed, 0);
    ok("--retry-failed", NULL);
    assert_int_equal(opts.retry_failed, 1);
    usage_error("--retry-failed takes its codes from the last run: give no codes, -a or -e",
                "--retry-failed", "BR", NULL);
    usage_error("--retry-failed takes its codes from the last run: give no codes, -a or -e",
                "--retry-failed", "-a", NULL);
}

static void test_cli_sweep_errors(void **state)
{
    static const char *const bad[] = {
        "", ",", "1,", ",1", "1,,2", "0", "1,0", "-1", "a", "1;2", "1, 2", "100001",
    };
    char message[200];
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(message, sizeof message,
                 "argument --sweep: must be a comma-separated list of at most 32 integers from "
                 "1 to 100000, got '%s'",
                 bad[i]);
        usage_error(message, "--sweep", bad[i], NULL);
    }
    usage_error("option --sweep needs a value", "--sweep", NULL);
}

static void test_cli_unknown_options(void **state)
{
    usage_error("unknown option '--frob'", "--frob", NULL);
    usage_error("unknown option '--frob=1'", "--frob=1", NULL);
    usage_error("unknown option '-x'", "-x", NULL);
    usage_error("unknown option '-x'", "-vx", NULL);
    usage_error("unknown option '-\\x01'", "-\x01", NULL);
    usage_error("option --json does not take a value", "--json=1", NULL);
    usage_error("option --help does not take a value", "--help=yes", NULL);
    usage_error("option --all does not take a value", "--all=1", NULL);
    usage_error("option --verbose does not take a value", "--verb=1", NULL);
}

/* The long names of flags2_common.py, each one doing what its short form
 * does. */
static void test_cli_book_long_options(void **state)
{
    size_t n194;

    ok("-a", NULL);
    n194 = opts.ncodes;
    ok("--all", NULL);
    assert_int_equal(opts.ncodes, n194);
    ok("--every", NULL);
    assert_int_equal(opts.ncodes, GF_CODES_MAX);
    ok("--limit", "2", NULL);
    assert_int_equal(opts.limit, 2);
    assert_codes("BD BR");
    ok("--max_req", "7", NULL);
    assert_int_equal(opts.concurrency, 7);
    assert_false(opts.concurrency_auto);
    ok("--max_req", "auto", NULL);
    assert_true(opts.concurrency_auto);
    ok("--server", "remote", NULL);
    assert_string_equal(opts.server_label, "REMOTE");
    assert_string_equal(opts.base_url, "https://www.fluentpython.com/data/flags");
    ok("--server", "http://127.0.0.1:9/x/", NULL);
    assert_string_equal(opts.server_label, "URL");
    assert_string_equal(opts.base_url, "http://127.0.0.1:9/x");
    ok("--verbose", NULL);
    assert_true(opts.verbose);
    ok("--help", NULL);
    assert_true(opts.show_help);
    /* The book's own command line. */
    ok("--every", "--limit", "3", "--max_req", "20", "--server", "DELAY", "--verbose", "B", NULL);
    assert_codes("AA AB AC");
    assert_int_equal(opts.concurrency, 20);
    assert_string_equal(opts.server_label, "DELAY");
    assert_true(opts.verbose);

    /* Their values are checked as the short forms' are, and messages name
     * both forms, as argparse does. */
    usage_error("argument -l/--limit: must be an integer from 1 to 1000000, got '0'", "--limit",
                "0", NULL);
    usage_error("argument -m/--max_req: must be an integer from 1 to 100000, got 'x'", "--max_req",
                "x", NULL);
    usage_error("argument -s/--server: must be LOCAL, REMOTE, DELAY, ERROR or an http:// or "
                "https:// URL, got 'nowhere'",
                "--server", "nowhere", NULL);
    usage_error("option --limit needs a value", "--limit", NULL);
    usage_error("option --max_req needs a value", "--max_req", NULL);
    usage_error("option --server needs a value", "-v", "--server", NULL);
    usage_error("option -s needs a value", "--verbose", "-s", NULL);
    usage_error("-q and -v cannot be used together", "-q", "--verbose", NULL);
    usage_error("--retry-failed takes its codes from the last run: give no codes, -a or -e",
                "--retry-failed", "--every", NULL);
}

/* --opt=value, for every long option that takes a value. */
static void test_cli_long_option_equals_value(void **state)
{
    ok("--limit=3", "--max_req=4", "--server=ERROR", "--timeout=1.5", "--cacert=/x.pem",
       "--retries=0", "--max-size=1K", "--sweep=1,2", "--rate=3", NULL);
    assert_int_equal(opts.limit, 3);
    assert_int_equal(opts.concurrency, 4);
    assert_string_equal(opts.server_label, "ERROR");
    assert_int_equal(opts.timeout_ms, 1500);
    assert_string_equal(opts.cacert, "/x.pem");
    assert_int_equal(opts.retries, 0);
    assert_int_equal(opts.max_size, 1024);
    assert_int_equal(opts.nsweep, 2);
    assert_true(opts.rate == 3.0);
    /* The value is everything after the first '='. */
    ok("--server=http://u:p=q@example.com/a=b", NULL);
    assert_string_equal(opts.base_url, "http://u:p=q@example.com/a=b");
    assert_string_equal(opts.base_url_display, "http://u@example.com/a=b");
    /* "--limit=" gives an empty value, which is not a missing one. */
    usage_error("argument -l/--limit: must be an integer from 1 to 1000000, got ''",
                "--limit=", NULL);
    usage_error("argument --cacert: must not be empty", "--cacert=", NULL);
}

/* Any unambiguous prefix of a long option is that option, with either
 * form of value. */
static void test_cli_long_option_prefixes(void **state)
{
    size_t n194;

    ok("--all", NULL);
    n194 = opts.ncodes;
    ok("--al", NULL);
    assert_int_equal(opts.ncodes, n194);
    ok("--ev", "--lim", "3", NULL);
    assert_codes("AA AB AC");
    ok("--l=2", NULL);
    assert_int_equal(opts.limit, 2);
    ok("--max_", "9", NULL);
    assert_int_equal(opts.concurrency, 9);
    ok("--max-", "1K", NULL);
    assert_int_equal(opts.max_size, 1024);
    ok("--se", "DELAY", "--verb", NULL);
    assert_string_equal(opts.server_label, "DELAY");
    assert_true(opts.verbose);
    ok("--he", NULL);
    assert_true(opts.show_help);
    ok("--vers", NULL);
    assert_true(opts.show_version);
    ok("--j", "--ti", "2", "--ca", "/c.pem", "--retri", "1", "--sw=1", "--ra", "2", NULL);
    assert_true(opts.json);
    assert_int_equal(opts.timeout_ms, 2000);
    assert_string_equal(opts.cacert, "/c.pem");
    assert_int_equal(opts.retries, 1);
    assert_int_equal(opts.nsweep, 1);
    assert_true(opts.rate == 2.0);
    ok("--u", "--w", NULL);
    assert_true(opts.update);
    assert_true(opts.wait_lock);
    ok("--retry", NULL);
    assert_true(opts.retry_failed);
    ok("--http1", NULL);
    assert_int_equal(opts.http_version, GF_HTTP_1_1);
    /* Errors name the whole option. */
    usage_error("option --limit needs a value", "--li", NULL);
    usage_error("option --json does not take a value", "--js=1", NULL);
    usage_error("argument -m/--max_req: must be an integer from 1 to 100000, got '0'", "--max_r",
                "0", NULL);
}

/* A prefix of more than one long option is an error naming them all; an
 * exact name is never ambiguous. */
static void test_cli_ambiguous_prefixes(void **state)
{
    usage_error("ambiguous option '--re' (could be --retries, --retry-failed)", "--re", "3", NULL);
    usage_error("ambiguous option '--r' (could be --retries, --rate, --retry-failed)", "--r", NULL);
    usage_error("ambiguous option '--max' (could be --max_req, --max-size)", "--max", "3", NULL);
    usage_error("ambiguous option '--m' (could be --max_req, --max-size)", "--m=3", NULL);
    usage_error("ambiguous option '--ver' (could be --verbose, --version)", "--ver", NULL);
    usage_error("ambiguous option '--h' (could be --help, --http1.1, --http2)", "--h", NULL);
    usage_error("ambiguous option '--http' (could be --http1.1, --http2)", "--http", NULL);
    /* The first error is the one reported. */
    usage_error("ambiguous option '--ver' (could be --verbose, --version)", "--ver", "--frob",
                NULL);
    /* -h still wins. */
    ok("--re", "-h", NULL);
    assert_true(opts.show_help);
    usage_error("unknown option '---x'", "---x", NULL);
}

/* --http1.1 and --http2: the last one wins, as with curl. */
static void test_cli_http_version(void **state)
{
    ok("--http1.1", NULL);
    assert_int_equal(opts.http_version, GF_HTTP_1_1);
    ok("--http2", "-s", "REMOTE", NULL);
    assert_int_equal(opts.http_version, GF_HTTP_2);
    ok("--http2", "--http1.1", NULL);
    assert_int_equal(opts.http_version, GF_HTTP_1_1);
    ok("--http1.1", "--http2", "-s", "https://example.com/flags", NULL);
    assert_int_equal(opts.http_version, GF_HTTP_2);
    /* h2c (--http2 over http://) needs libcurl 8.0: refused before it. */
    if (curl_version_info(CURLVERSION_NOW)->version_num < 0x080000) {
        char want[256];
        snprintf(want, sizeof want,
                 "--http2 over plain http (h2c) needs libcurl 8.0 or later, this is %s: use "
                 "an https base URL or leave --http2 out",
                 curl_version_info(CURLVERSION_NOW)->version);
        usage_error(want, "--http2", NULL);
        usage_error(want, "--http2", "-s", "http://127.0.0.1:9/flags", NULL);
    } else {
        ok("--http2", "-s", "http://127.0.0.1:9/flags", NULL);
        assert_int_equal(opts.http_version, GF_HTTP_2);
    }
    ok(NULL);
    assert_int_equal(opts.http_version, GF_HTTP_AUTO);
    usage_error("unknown option '--http3'", "--http3", NULL);
    usage_error("unknown option '--http1.0'", "--http1.0", NULL);
    usage_error("option --http2 does not take a value", "--http2=yes", NULL);
}

static void test_cli_bad_codes(void **state)
{
    usage_error("invalid country code or letter: 'XYZ'", "BR", "XYZ", NULL);
    usage_error("invalid country code or letter: '1A'", "1A", NULL);
    usage_error("invalid country code or letter: ''", "", NULL);
    usage_error("invalid country code or letter: '-'", "-", NULL);
    usage_error("invalid country code or letter: '-v'", "--", "-v", NULL);
    usage_error("invalid country code or letter: '\xc3\xa9'", "\xc3\xa9", NULL);
}

static void test_cli_first_error_is_reported(void **state)
{
    usage_error("argument -m/--max_req: must be an integer from 1 to 100000, got '0'", "-m", "0",
                "-l", "0", NULL);
    usage_error("invalid country code or letter: 'XYZ'", "XYZ", "-m", "0", NULL);
}

static void test_cli_help_wins(void **state)
{
    ok("-h", NULL);
    assert_true(opts.show_help);
    ok("--help", NULL);
    assert_true(opts.show_help);
    assert_false(opts.show_version);
    /* Whatever else is on the line, -h still gives help. */
    ok("-m", "0", "--frob", "XYZ", "-h", NULL);
    assert_true(opts.show_help);
    assert_string_equal(err, "");
    ok("-q", "-v", "--help", NULL);
    assert_true(opts.show_help);
    assert_non_null(opts.base_url);
}

static void test_cli_version(void **state)
{
    ok("--version", NULL);
    assert_true(opts.show_version);
    assert_false(opts.show_help);
    ok("--version", "-s", "nowhere", NULL);
    assert_true(opts.show_version);
}

static void test_cli_parse_repeatable(void **state)
{
    /* A call that stopped inside a group of short options must not leak
     * getopt state into the next call. */
    usage_error("unknown option '-x'", "-xv", NULL);
    ok("-v", NULL);
    assert_true(opts.verbose);
    assert_codes("BD BR CD CN DE EG ET FR ID IN IR JP MX NG PH PK RU TR US VN");
    ok("BR", NULL);
    assert_codes("BR");
}

static void test_cli_argv_not_permuted(void **state)
{
    char *argv[] = {(char *)"getflags", (char *)"BR", (char *)"-v", (char *)"CN", NULL};

    assert_int_equal(gf_cli_parse(4, argv, &opts, err, sizeof err), 0);
    assert_string_equal(argv[1], "BR");
    assert_string_equal(argv[2], "-v");
    assert_string_equal(argv[3], "CN");
}

static void test_cli_null_err_buffer(void **state)
{
    char *argv[] = {(char *)"getflags", (char *)"-m", (char *)"0", NULL};

    assert_int_equal(gf_cli_parse(3, argv, &opts, NULL, 0), GF_EUSAGE);
}

static void test_cli_cut_message_keeps_utf8_whole(void **state)
{
    char *argv[] = {(char *)"getflags", (char *)"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", NULL};
    char small[39];

    /* 38 bytes fit: the prefix (33) and two and a half e-acutes; the half
     * is dropped. */
    assert_int_equal(gf_cli_parse(2, argv, &opts, small, sizeof small), GF_EUSAGE);
    assert_string_equal(small, "invalid country code or letter: '\xc3\xa9\xc3\xa9");
}

static void test_cli_usage_text(void **state)
{
    assert_string_equal(gf_cli_usage(),
                        "usage: getflags [-h] [-a] [-e] [-l N] [-m CONCURRENT] [-s LABEL|URL] "
                        "[-v] [-q] [-o DIR] [--timeout SECONDS] [--cacert FILE] [--json] "
                        "[--version] [--retries N] [--max-size BYTES] [--sweep LIST] [--rate N] "
                        "[--update] [--retry-failed] [--wait-lock] [--http1.1] [--http2] "
                        "[CC ...]\n");
}

static void test_cli_help_text(void **state)
{
    static const char *const needles[] = {
        "-q ",
        "-o DIR",
        "--timeout SECONDS",
        "--cacert FILE",
        "--json",
        "--version",
        "--retries N",
        "--max-size BYTES",
        "--sweep LIST",
        "-h, --help",
        "-a, --all ",
        "-e, --every ",
        "-l N, --limit N ",
        "-m CONCURRENT, --max_req CONCURRENT\n",
        "-s LABEL|URL, --server LABEL|URL\n",
        "-v, --verbose ",
        "--http1.1 ",
        "--http2 ",
        "unambiguous prefix",
        "http://localhost:8000/flags",
        "https://www.fluentpython.com/data/flags",
        "http://localhost:8001/flags",
        "http://localhost:8002/flags",
        "LOCAL",
        "REMOTE",
        "DELAY",
        "ERROR",
        "exit status",
        "130, 143",
    };
    const char *help = gf_cli_help();
    size_t i;

    /* It starts with the usage line. */
    assert_memory_equal(help, gf_cli_usage(), strlen(gf_cli_usage()));
    for (i = 0; i < sizeof needles / sizeof needles[0]; i++)
        if (strstr(help, needles[i]) == NULL)
            fail_msg("help lacks '%s'", needles[i]);
    assert_non_null(strstr(help, "\n  0 "));
    assert_non_null(strstr(help, "\n  1 "));
    assert_non_null(strstr(help, "\n  2 "));
    assert_non_null(strstr(help, "\n  3 "));
    assert_int_equal(help[strlen(help) - 1], '\n');
}

static void test_cli_strerror_messages(void **state)
{
    static const int codes[] = {GF_EUSAGE, GF_ENOMEM, GF_ECURL, GF_EMETADATA, GF_ENAME, GF_ETOOBIG};
    size_t i, j;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_non_null(gf_strerror(codes[i]));
        assert_true(strlen(gf_strerror(codes[i])) > 0);
        assert_string_not_equal(gf_strerror(codes[i]), "unknown error");
        for (j = 0; j < i; j++)
            assert_string_not_equal(gf_strerror(codes[i]), gf_strerror(codes[j]));
    }
    assert_string_equal(gf_strerror(GF_ETOOBIG), "response body is larger than allowed");
    assert_string_equal(gf_strerror(UV_ENOENT), uv_strerror(UV_ENOENT));
    assert_string_equal(gf_strerror(UV_EACCES), uv_strerror(UV_EACCES));
    assert_string_equal(gf_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
    assert_string_equal(gf_strerror(-9999), "unknown error");
    assert_string_equal(gf_strerror(12345), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cli_defaults, teardown),
        cmocka_unit_test_teardown(test_cli_codes_sorted_deduplicated, teardown),
        cmocka_unit_test_teardown(test_cli_letter_expands, teardown),
        cmocka_unit_test_teardown(test_cli_codes_mixed_with_options, teardown),
        cmocka_unit_test_teardown(test_cli_all_and_every, teardown),
        cmocka_unit_test_teardown(test_cli_limit, teardown),
        cmocka_unit_test_teardown(test_cli_concurrency, teardown),
        cmocka_unit_test_teardown(test_cli_concurrency_errors, teardown),
        cmocka_unit_test_teardown(test_cli_server_labels, teardown),
        cmocka_unit_test_teardown(test_cli_server_urls, teardown),
        cmocka_unit_test_teardown(test_cli_server_errors, teardown),
        cmocka_unit_test_teardown(test_cli_outdir, teardown),
        cmocka_unit_test_teardown(test_cli_timeout, teardown),
        cmocka_unit_test_teardown(test_cli_timeout_errors, teardown),
        cmocka_unit_test_teardown(test_cli_cacert, teardown),
        cmocka_unit_test_teardown(test_cli_flags, teardown),
        cmocka_unit_test_teardown(test_cli_quiet_and_verbose_conflict, teardown),
        cmocka_unit_test_teardown(test_cli_retries, teardown),
        cmocka_unit_test_teardown(test_cli_max_size, teardown),
        cmocka_unit_test_teardown(test_cli_sweep, teardown),
        cmocka_unit_test_teardown(test_cli_sweep_errors, teardown),
        cmocka_unit_test_teardown(test_cli_unknown_options, teardown),
        cmocka_unit_test_teardown(test_cli_bad_codes, teardown),
        cmocka_unit_test_teardown(test_cli_first_error_is_reported, teardown),
        cmocka_unit_test_teardown(test_cli_help_wins, teardown),
        cmocka_unit_test_teardown(test_cli_version, teardown),
        cmocka_unit_test_teardown(test_cli_parse_repeatable, teardown),
        cmocka_unit_test_teardown(test_cli_argv_not_permuted, teardown),
        cmocka_unit_test_teardown(test_cli_null_err_buffer, teardown),
        cmocka_unit_test_teardown(test_cli_cut_message_keeps_utf8_whole, teardown),
        cmocka_unit_test_teardown(test_cli_server_url_password, teardown),
        cmocka_unit_test_teardown(test_cli_server_url_not_as_shown, teardown),
        cmocka_unit_test_teardown(test_cli_book_long_options, teardown),
        cmocka_unit_test_teardown(test_cli_long_option_equals_value, teardown),
        cmocka_unit_test_teardown(test_cli_long_option_prefixes, teardown),
        cmocka_unit_test_teardown(test_cli_ambiguous_prefixes, teardown),
        cmocka_unit_test_teardown(test_cli_http_version, teardown),
        cmocka_unit_test(test_cli_m_auto),
        cmocka_unit_test(test_cli_rate),
        cmocka_unit_test(test_cli_cron_flags),
        cmocka_unit_test(test_cli_usage_text),
        cmocka_unit_test(test_cli_help_text),
        cmocka_unit_test(test_cli_strerror_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
