/* Unit tests of gf/report.h: whole text reports, -v lines, the progress
 * bar, percentiles and the --json summary parsed back with cJSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gf/report.h"

/* Output captured in memory; take() closes the stream and returns it. */
static char *buf;
static size_t buflen;
static FILE *mem;

static FILE *capture(void)
{
    mem = open_memstream(&buf, &buflen);
    assert_non_null(mem);
    return mem;
}

static const char *take(void)
{
    fclose(mem);
    mem = NULL;
    return buf;
}

static int teardown(void **state)
{
    if (mem != NULL)
        fclose(mem);
    mem = NULL;
    free(buf);
    buf = NULL;
    return 0;
}

static size_t codes_from(const char *joined, gf_cc *out)
{
    size_t n = 0;

    for (; *joined; joined += joined[2] ? 3 : 2) {
        memcpy(out[n], joined, 2);
        out[n][2] = '\0';
        n++;
    }
    return n;
}

/* -- header ---------------------------------------------------------------- */

static void test_report_header_default_run(void **state)
{
    gf_cc codes[GF_CODES_MAX];
    size_t n = codes_from("BD BR CD CN DE EG ET FR ID IN IR JP MX NG PH PK RU TR US VN", codes);

    assert_int_equal(n, 20);
    gf_report_header(capture(), "LOCAL", "http://localhost:8000/flags", codes, n, 20);
    assert_string_equal(take(), "LOCAL site: http://localhost:8000/flags\n"
                                "Searching for 20 flags: from BD to VN\n"
                                "20 concurrent connections will be used.\n");
}

static void test_report_header_up_to_ten_listed(void **state)
{
    gf_cc codes[GF_CODES_MAX];
    size_t n = codes_from("BR CN US", codes);

    gf_report_header(capture(), "REMOTE", "https://www.fluentpython.com/data/flags", codes, n, 3);
    assert_string_equal(take(), "REMOTE site: https://www.fluentpython.com/data/flags\n"
                                "Searching for 3 flags: BR, CN, US\n"
                                "3 concurrent connections will be used.\n");
}

static void test_report_header_ten_vs_eleven(void **state)
{
    gf_cc codes[GF_CODES_MAX];
    size_t n = codes_from("AA AB AC AD AE AF AG AH AI AJ AK", codes);

    gf_report_header(capture(), "LOCAL", "http://localhost:8000/flags", codes, 10, 5);
    assert_string_equal(take(), "LOCAL site: http://localhost:8000/flags\n"
                                "Searching for 10 flags: AA, AB, AC, AD, AE, AF, AG, AH, AI, AJ\n"
                                "5 concurrent connections will be used.\n");
    teardown(state);
    gf_report_header(capture(), "LOCAL", "http://localhost:8000/flags", codes, n, 5);
    assert_string_equal(take(), "LOCAL site: http://localhost:8000/flags\n"
                                "Searching for 11 flags: from AA to AK\n"
                                "5 concurrent connections will be used.\n");
}

static void test_report_header_singular(void **state)
{
    gf_cc codes[1] = {"BR"};

    gf_report_header(capture(), "DELAY", "http://localhost:8001/flags", codes, 1, 1);
    assert_string_equal(take(), "DELAY site: http://localhost:8001/flags\n"
                                "Searching for 1 flag: BR\n"
                                "1 connection will be used.\n");
}

static void test_report_header_url_label(void **state)
{
    gf_cc codes[2] = {"BR", "CN"};

    gf_report_header(capture(), "URL", "http://127.0.0.1:9000/flags", codes, 2, 2);
    assert_string_equal(take(), "URL site: http://127.0.0.1:9000/flags\n"
                                "Searching for 2 flags: BR, CN\n"
                                "2 concurrent connections will be used.\n");
}

static void test_report_header_escapes_url(void **state)
{
    gf_cc codes[1] = {"BR"};

    gf_report_header(capture(), "URL", "http://x/\x1b[2J", codes, 1, 1);
    assert_string_equal(take(), "URL site: http://x/\\x1b[2J\n"
                                "Searching for 1 flag: BR\n"
                                "1 connection will be used.\n");
}

/* -- footer ---------------------------------------------------------------- */

static void test_report_footer_all_ok(void **state)
{
    struct gf_summary s = {.ok = 20, .elapsed_s = 1.234};

    gf_report_footer(capture(), &s);
    assert_string_equal(take(), "--------------------\n"
                                " 20 flags downloaded.\n"
                                "Elapsed time: 1.23s\n");
}

static void test_report_footer_singular(void **state)
{
    struct gf_summary s = {.ok = 1, .not_found = 1, .error = 1, .elapsed_s = 0.005};

    gf_report_footer(capture(), &s);
    assert_string_equal(take(), "--------------------\n"
                                "  1 flag downloaded.\n"
                                "  1 not found.\n"
                                "  1 error.\n"
                                "Elapsed time: 0.01s\n");
}

static void test_report_footer_plural_and_zero(void **state)
{
    struct gf_summary s = {.ok = 0, .not_found = 3, .error = 16, .elapsed_s = 12.0};

    gf_report_footer(capture(), &s);
    assert_string_equal(take(), "--------------------\n"
                                "  0 flags downloaded.\n"
                                "  3 not found.\n"
                                " 16 errors.\n"
                                "Elapsed time: 12.00s\n");
}

static void test_report_footer_errors_without_not_found(void **state)
{
    struct gf_summary s = {.ok = 16, .not_found = 0, .error = 4, .elapsed_s = 0.5};

    gf_report_footer(capture(), &s);
    assert_string_equal(take(), "--------------------\n"
                                " 16 flags downloaded.\n"
                                "  4 errors.\n"
                                "Elapsed time: 0.50s\n");
}

static void test_report_footer_wide_counts(void **state)
{
    struct gf_summary s = {.ok = 676, .not_found = 1000, .elapsed_s = 100.555};

    gf_report_footer(capture(), &s);
    assert_string_equal(take(), "--------------------\n"
                                "676 flags downloaded.\n"
                                "1000 not found.\n"
                                "Elapsed time: 100.56s\n");
}

/* -- items ----------------------------------------------------------------- */

static void test_report_item_lines(void **state)
{
    struct gf_item ok = {.cc = "BR", .status = GF_OK, .file = (char *)"Brazil.gif"};
    struct gf_item nf = {.cc = "ZZ",
                         .status = GF_NOT_FOUND,
                         .http_status = 404,
                         .url = (char *)"http://localhost:8000/flags/zz/metadata.json"};
    struct gf_item er = {.cc = "XX",
                         .status = GF_ERROR,
                         .http_status = 418,
                         .error = (char *)"HTTP error 418 - I'm a teapot"};
    FILE *f = capture();

    gf_report_item(f, &ok);
    gf_report_item(f, &nf);
    gf_report_item(f, &er);
    assert_string_equal(take(), "BR OK\n"
                                "ZZ not found: http://localhost:8000/flags/zz/metadata.json\n"
                                "XX error: HTTP error 418 - I'm a teapot\n");
}

static void test_report_item_escapes_server_text(void **state)
{
    struct gf_item er = {
        .cc = "XX", .status = GF_ERROR, .error = (char *)"HTTP error 500 - \x1b[31mboom\xff\\"};
    struct gf_item nf = {.cc = "ZZ", .status = GF_NOT_FOUND, .url = (char *)"http://x/\r\n"};
    FILE *f = capture();

    gf_report_item(f, &er);
    gf_report_item(f, &nf);
    assert_string_equal(take(), "XX error: HTTP error 500 - \\x1b[31mboom\\xff\\\\\n"
                                "ZZ not found: http://x/\\x0d\\x0a\n");
}

static void test_report_item_long_reason_not_cut(void **state)
{
    char reason[2001], expected[2100];
    struct gf_item er = {.cc = "XX", .status = GF_ERROR, .error = reason};

    memset(reason, 'r', 2000);
    reason[2000] = '\0';
    snprintf(expected, sizeof expected, "XX error: %s\n", reason);
    gf_report_item(capture(), &er);
    assert_string_equal(take(), expected);
}

static void test_report_item_missing_text(void **state)
{
    struct gf_item er = {.cc = "XX", .status = GF_ERROR};
    struct gf_item nf = {.cc = "ZZ", .status = GF_NOT_FOUND};
    struct gf_item pe = {.cc = "PE", .status = GF_PENDING};
    FILE *f = capture();

    gf_report_item(f, &er);
    gf_report_item(f, &nf);
    gf_report_item(f, &pe);
    assert_string_equal(take(), "XX error: unknown error\n"
                                "ZZ not found: \n"
                                "PE not finished\n");
}

/* -- percentiles ----------------------------------------------------------- */

static void test_report_percentile_nearest_rank(void **state)
{
    double v[100];
    size_t i;

    /* Filled in reverse so that the sort matters. */
    for (i = 0; i < 100; i++)
        v[i] = (double)(100 - i);
    assert_true(gf_percentile(v, 100, 50) == 50);
    assert_true(gf_percentile(v, 100, 95) == 95);
    assert_true(gf_percentile(v, 100, 99) == 99);
    assert_true(gf_percentile(v, 100, 100) == 100);
    assert_true(gf_percentile(v, 100, 0) == 1);
    assert_true(gf_percentile(v, 100, 50.5) == 51);
    assert_true(gf_percentile(v, 100, 0.1) == 1);
    /* v is left sorted. */
    for (i = 0; i < 100; i++)
        assert_true(v[i] == (double)(i + 1));
}

static void test_report_percentile_small_sets(void **state)
{
    double one[1] = {7.5};
    double four[4] = {40, 10, 30, 20};

    assert_true(gf_percentile(one, 1, 0) == 7.5);
    assert_true(gf_percentile(one, 1, 50) == 7.5);
    assert_true(gf_percentile(one, 1, 100) == 7.5);
    assert_true(gf_percentile(four, 4, 25) == 10);
    assert_true(gf_percentile(four, 4, 26) == 20);
    assert_true(gf_percentile(four, 4, 50) == 20);
    assert_true(gf_percentile(four, 4, 75) == 30);
    assert_true(gf_percentile(four, 4, 99) == 40);
    assert_true(gf_percentile(NULL, 0, 50) == 0);
    assert_true(gf_percentile(four, 0, 50) == 0);
    /* Out-of-range p is clamped. */
    assert_true(gf_percentile(four, 4, -5) == 10);
    assert_true(gf_percentile(four, 4, 250) == 40);
}

/* -- JSON ------------------------------------------------------------------ */

static const cJSON *get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (v == NULL)
        fail_msg("missing key '%s'", key);
    return v;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);

    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);

    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static cJSON *json_of(const struct gf_summary *s)
{
    char *text = gf_report_json(s);
    cJSON *root;

    assert_non_null(text);
    /* Unformatted: one line. */
    assert_null(strchr(text, '\n'));
    root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    return root;
}

static void test_report_json_summary(void **state)
{
    struct gf_item items[3] = {
        {.cc = "BR",
         .status = GF_OK,
         .http_status = 200,
         .file = (char *)"Brazil.gif",
         .url = (char *)"http://localhost:8000/flags/br/br.gif",
         .bytes = 1234,
         .requests = 2,
         .meta = {0.001, 0.002, 0.003, -1, 0.004, 0.005, 0.015},
         .image = {0.5, -1, -1, -1, 0.25, 0.125, 0.875},
         .save_s = 0.0625},
        {.cc = "ZZ",
         .status = GF_NOT_FOUND,
         .http_status = 404,
         .url = (char *)"http://localhost:8000/flags/zz/metadata.json",
         .bytes = 0,
         .requests = 1,
         .meta = {-1, -1, -1, -1, -1, -1, -1},
         .image = {-1, -1, -1, -1, -1, -1, -1},
         .save_s = -1},
        {.cc = "XX",
         .status = GF_ERROR,
         .http_status = 0,
         .error = (char *)"timed out",
         .requests = 3,
         .meta = {-1, -1, -1, -1, -1, -1, -1},
         .image = {-1, -1, -1, -1, -1, -1, -1},
         .save_s = -1},
    };
    double lat[5] = {30, 10, 50, 20, 40};
    struct gf_summary s = {.server_label = "LOCAL",
                           .base_url = "http://localhost:8000/flags",
                           .concurrency = 5,
                           .elapsed_s = 1.5,
                           .ok = 1,
                           .not_found = 1,
                           .error = 1,
                           .requests = 6,
                           .bytes = 1234,
                           .items = items,
                           .nitems = 3,
                           .latencies_ms = lat,
                           .nlatencies = 5};
    const cJSON *counts, *lat_ms, *arr, *it, *phases, *meta, *image;
    cJSON *root = json_of(&s);

    assert_string_equal(str(root, "server"), "LOCAL");
    assert_string_equal(str(root, "base_url"), "http://localhost:8000/flags");
    assert_true(num(root, "concurrency") == 5);
    assert_true(num(root, "elapsed_s") == 1.5);
    counts = get(root, "counts");
    assert_true(num(counts, "ok") == 1);
    assert_true(num(counts, "not_found") == 1);
    assert_true(num(counts, "error") == 1);
    assert_true(num(counts, "pending") == 0);
    assert_true(num(root, "never_started") == 0);
    assert_true(num(root, "requests") == 6);
    assert_true(num(root, "bytes") == 1234);
    lat_ms = get(root, "latency_ms");
    assert_true(num(lat_ms, "p50") == 30);
    assert_true(num(lat_ms, "p95") == 50);
    assert_true(num(lat_ms, "p99") == 50);
    assert_true(num(lat_ms, "max") == 50);
    /* The caller's latencies are not reordered. */
    assert_true(lat[0] == 30 && lat[1] == 10);

    arr = get(root, "items");
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(arr), 3);

    it = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(str(it, "cc"), "BR");
    assert_string_equal(str(it, "status"), "ok");
    assert_string_equal(str(it, "file"), "Brazil.gif");
    assert_true(num(it, "http_status") == 200);
    assert_true(cJSON_IsNull(get(it, "error")));
    assert_true(num(it, "bytes") == 1234);
    assert_true(num(it, "requests") == 2);
    phases = get(it, "phases");
    meta = get(phases, "meta");
    assert_true(num(meta, "sem_wait") == 0.001);
    assert_true(num(meta, "dns") == 0.002);
    assert_true(num(meta, "connect") == 0.003);
    assert_true(cJSON_IsNull(get(meta, "tls")));
    assert_true(num(meta, "first_byte") == 0.004);
    assert_true(num(meta, "transfer") == 0.005);
    assert_true(num(meta, "total") == 0.015);
    image = get(phases, "image");
    assert_true(num(image, "sem_wait") == 0.5);
    assert_true(cJSON_IsNull(get(image, "dns")));
    assert_true(num(image, "total") == 0.875);
    assert_true(num(phases, "save_s") == 0.0625);

    it = cJSON_GetArrayItem(arr, 1);
    assert_string_equal(str(it, "cc"), "ZZ");
    assert_string_equal(str(it, "status"), "not_found");
    assert_true(cJSON_IsNull(get(it, "file")));
    assert_true(num(it, "http_status") == 404);
    assert_true(cJSON_IsNull(get(get(it, "phases"), "save_s")));
    assert_true(cJSON_IsNull(get(get(get(it, "phases"), "meta"), "total")));

    it = cJSON_GetArrayItem(arr, 2);
    assert_string_equal(str(it, "status"), "error");
    assert_true(cJSON_IsNull(get(it, "http_status")));
    assert_string_equal(str(it, "error"), "timed out");
    assert_true(num(it, "requests") == 3);
    cJSON_Delete(root);
}

static void test_report_json_no_latencies_and_pending(void **state)
{
    struct gf_item items[1] = {{.cc = "JP",
                                .status = GF_PENDING,
                                .meta = {-1, -1, -1, -1, -1, -1, -1},
                                .image = {-1, -1, -1, -1, -1, -1, -1},
                                .save_s = -1}};
    struct gf_summary s = {.server_label = "URL",
                           .base_url = "http://127.0.0.1:9/flags",
                           .concurrency = 1,
                           .elapsed_s = 0,
                           .pending = 1,
                           .never_started = 1,
                           .items = items,
                           .nitems = 1};
    cJSON *root = json_of(&s);
    const cJSON *lat = get(root, "latency_ms");

    /* The counts add up to the items, interrupted or not. */
    assert_true(num(get(root, "counts"), "pending") == 1);
    assert_true(num(get(root, "counts"), "ok") == 0);
    assert_true(num(root, "never_started") == 1);

    assert_string_equal(str(root, "server"), "URL");
    assert_true(num(lat, "p50") == 0);
    assert_true(num(lat, "p95") == 0);
    assert_true(num(lat, "p99") == 0);
    assert_true(num(lat, "max") == 0);
    assert_string_equal(str(cJSON_GetArrayItem(get(root, "items"), 0), "status"), "pending");
    cJSON_Delete(root);
}

static void test_report_json_empty_items(void **state)
{
    struct gf_summary s = {.server_label = "LOCAL", .base_url = "http://localhost:8000/flags"};
    cJSON *root = json_of(&s);

    assert_true(cJSON_IsArray(get(root, "items")));
    assert_int_equal(cJSON_GetArraySize(get(root, "items")), 0);
    cJSON_Delete(root);
}

static void test_report_json_server_bytes_escaped(void **state)
{
    struct gf_item items[1] = {{.cc = "XX",
                                .status = GF_ERROR,
                                .error = (char *)"bad \xff\xfe \x1b[0m \xc3\xa9",
                                .meta = {-1, -1, -1, -1, -1, -1, -1},
                                .image = {-1, -1, -1, -1, -1, -1, -1},
                                .save_s = -1}};
    struct gf_summary s = {.server_label = "LOCAL",
                           .base_url = "http://localhost:8000/flags",
                           .items = items,
                           .nitems = 1};
    char *text = gf_report_json(&s);
    cJSON *root;
    const unsigned char *p;

    assert_non_null(text);
    /* No raw invalid byte and no raw control byte reach the JSON text. */
    for (p = (const unsigned char *)text; *p; p++) {
        assert_true(*p != 0xff && *p != 0xfe);
        assert_true(*p >= 0x20);
    }
    root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    assert_string_equal(str(cJSON_GetArrayItem(get(root, "items"), 0), "error"),
                        "bad \\xff\\xfe \\x1b[0m \xc3\xa9");
    cJSON_Delete(root);
}

/* -- progress bar ---------------------------------------------------------- */

/* The visible text of a drawn line: after '\r', before "\x1b[K". */
static char *visible(const char *drawn)
{
    size_t len = strlen(drawn);
    char *v;

    assert_true(len >= 4);
    assert_int_equal(drawn[0], '\r');
    assert_string_equal(drawn + len - 3, "\x1b[K");
    assert_null(strchr(drawn, '\n'));
    v = strndup(drawn + 1, len - 4);
    assert_non_null(v);
    return v;
}

static void test_report_progress_example(void **state)
{
    char *v;

    /* 37 of 194 after 0.2462 s: 150.3/s, 157 left take about 1.04 s.
     * 41 columns leave 40 usable: 28 for the numbers, 12 for the bar. */
    gf_progress_draw(capture(), 37, 194, 0.2462, 41);
    v = visible(take());
    assert_string_equal(v, "[#.........]  37/194  19% 150.3/s ETA 1s");
    free(v);
}

static void test_report_progress_fits_width(void **state)
{
    static const unsigned widths[] = {0, 1, 10, 20, 30, 40, 50, 80, 120, 300, 1000};
    size_t i;
    char *v;

    for (i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        unsigned w = widths[i] == 0 ? 80 : widths[i];
        gf_progress_draw(capture(), 100, 676, 2.0, widths[i]);
        v = visible(take());
        teardown(state);
        if (strlen(v) > w - 1)
            fail_msg("width %u: '%s' is %zu columns", widths[i], v, strlen(v));
        free(v);
    }
}

static void test_report_progress_bar_fill(void **state)
{
    char *v;

    gf_progress_draw(capture(), 20, 20, 4.0, 80);
    v = visible(take());
    /* Complete: all '#', the ETA is 0s. */
    assert_non_null(strstr(v, "] 20/20 100% 5.0/s ETA 0s"));
    assert_int_equal(v[0], '[');
    assert_int_equal(strspn(v + 1, "#"), strchr(v, ']') - v - 1);
    assert_true(strchr(v, ']') - v - 1 >= 10);
    free(v);
    teardown(state);

    gf_progress_draw(capture(), 0, 20, 0.0, 80);
    v = visible(take());
    /* Nothing yet: no '#', no rate, no ETA. */
    assert_null(strchr(v, '#'));
    assert_non_null(strstr(v, "]  0/20   0% 0.0/s ETA --"));
    free(v);
    teardown(state);

    gf_progress_draw(capture(), 10, 20, 1.0, 33);
    v = visible(take());
    /* 32 usable columns: 25 for the numbers, 7 for the bar. */
    assert_string_equal(v, "[##...] 10/20  50% 10.0/s ETA 1s");
    free(v);
}

static void test_report_progress_eta_minutes(void **state)
{
    char *v;

    gf_progress_draw(capture(), 1, 200, 1.0, 80);
    v = visible(take());
    assert_non_null(strstr(v, "  1/200   0% 1.0/s ETA 3m19s"));
    free(v);
    teardown(state);
    gf_progress_draw(capture(), 1, 10000, 1.0, 80);
    v = visible(take());
    assert_non_null(strstr(v, "ETA 2h46m"));
    free(v);
}

static void test_report_progress_clear(void **state)
{
    gf_progress_clear(capture(), 80);
    assert_string_equal(take(), "\r\x1b[K");
}

/* With TERM unset, empty or "dumb" there is no ESC[K: a redraw pads the
 * line with spaces to the last column but one, and clearing writes spaces
 * between two carriage returns. */
static void expect_plain_progress(unsigned width)
{
    unsigned cols = (width == 0 ? 80 : width) - 1;
    const char *drawn;
    size_t len;

    gf_progress_draw(capture(), 37, 194, 0.2462, width);
    drawn = take();
    len = strlen(drawn);
    assert_null(strchr(drawn, '\x1b'));
    assert_null(strchr(drawn, '\n'));
    assert_int_equal(drawn[0], '\r');
    assert_int_equal(len, 1 + cols);
    assert_non_null(strstr(drawn, " 37/194  19% 150.3/s ETA 1s"));
    /* Up to 80 columns the bar fills the line; past its 50 marks, padding. */
    if (cols > 80)
        assert_int_equal(drawn[len - 1], ' ');
    teardown(NULL);

    gf_progress_clear(capture(), width);
    drawn = take();
    len = strlen(drawn);
    assert_int_equal(len, cols + 2);
    assert_int_equal(drawn[0], '\r');
    assert_int_equal(drawn[len - 1], '\r');
    assert_int_equal(strspn(drawn + 1, " "), cols);
    teardown(NULL);
}

static void test_report_progress_plain_without_a_capable_term(void **state)
{
    static const unsigned widths[] = {0, 41, 80, 200};
    size_t i;

    for (i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        assert_int_equal(setenv("TERM", "dumb", 1), 0);
        expect_plain_progress(widths[i]);
        assert_int_equal(setenv("TERM", "", 1), 0);
        expect_plain_progress(widths[i]);
        assert_int_equal(unsetenv("TERM"), 0);
        expect_plain_progress(widths[i]);
    }
    /* A real terminal type gets ESC[K again. */
    assert_int_equal(setenv("TERM", "xterm-256color", 1), 0);
    gf_progress_draw(capture(), 37, 194, 0.2462, 80);
    assert_non_null(strstr(take(), "\x1b[K"));
    teardown(state);
    assert_int_equal(setenv("TERM", "xterm", 1), 0);
}

static void test_report_progress_plain_redraw_hides_a_longer_line(void **state)
{
    const char *drawn;

    /* The second line is shorter than the first; its padding covers it. */
    assert_int_equal(setenv("TERM", "dumb", 1), 0);
    gf_progress_draw(capture(), 9, 10, 1.0, 6);
    drawn = take();
    assert_int_equal(strlen(drawn), 6);
    teardown(state);
    gf_progress_draw(capture(), 1000, 100000, 1.0, 81);
    drawn = take();
    assert_int_equal(strlen(drawn), 81);
    teardown(state);
    assert_int_equal(setenv("TERM", "xterm", 1), 0);
}

/* -- output check ------------------------------------------------------------ */

static void test_report_output_check_ok(void **state)
{
    FILE *out = tmpfile();
    FILE *err = capture();

    assert_non_null(out);
    fputs("--------------------\n", out);
    assert_int_equal(gf_report_output_check(out, "standard output", err), 0);
    assert_string_equal(take(), "");
    fclose(out);
}

static void test_report_output_check_full_disk(void **state)
{
    FILE *out = fopen("/dev/full", "w");
    FILE *err = capture();

    assert_non_null(out);
    fputs("{\"counts\": {}}\n", out);
    assert_int_equal(gf_report_output_check(out, "standard output", err), -1);
    /* Said once: the same stream checked again is quiet. */
    assert_int_equal(gf_report_output_check(out, "standard output", err), 0);
    assert_string_equal(take(),
                        "getflags: cannot write to standard output: No space left on device\n");
    fclose(out);
}

static void test_report_output_check_earlier_failure(void **state)
{
    FILE *out = fopen("/dev/full", "w");
    FILE *err = capture();

    assert_non_null(out);
    /* The write failed at an earlier flush, whose errno is gone. */
    fputs("BR OK\n", out);
    assert_int_not_equal(fflush(out), 0);
    assert_int_equal(gf_report_output_check(out, "standard output", err), -1);
    assert_string_equal(take(), "getflags: cannot write to standard output: part of the output "
                                "was lost\n");
    fclose(out);
}

static void test_report_output_check_without_a_message_stream(void **state)
{
    FILE *out = fopen("/dev/full", "w");

    assert_non_null(out);
    fputs("x\n", out);
    assert_int_equal(gf_report_output_check(out, "standard error", NULL), -1);
    /* A stream that is its own message stream gets no message either. */
    fputs("x\n", out);
    assert_int_equal(gf_report_output_check(out, "standard error", out), -1);
    fclose(out);
}

static void test_report_item_reason_escaped_once(void **state)
{
    /* The raw reason phrase a server sent, as fetch now stores it. */
    struct gf_item er = {
        .cc = "BR", .status = GF_ERROR, .error = (char *)"HTTP error 500 - \x1b]0;owned\x07"};
    struct gf_summary s = {
        .server_label = "URL", .base_url = "http://x", .items = &er, .nitems = 1};
    cJSON *root, *items;
    char *json;

    gf_report_item(capture(), &er);
    assert_string_equal(take(), "BR error: HTTP error 500 - \\x1b]0;owned\\x07\n");
    json = gf_report_json(&s);
    assert_non_null(json);
    root = cJSON_Parse(json);
    assert_non_null(root);
    items = cJSON_GetObjectItem(root, "items");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "error")->valuestring,
                        "HTTP error 500 - \\x1b]0;owned\\x07");
    cJSON_Delete(root);
    free(json);
}

int main(void)
{
    /* The progress tests expect ESC[K, which needs a capable TERM; the
     * plain-redraw tests change it themselves. */
    if (setenv("TERM", "xterm", 1) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_report_header_default_run, teardown),
        cmocka_unit_test_teardown(test_report_header_up_to_ten_listed, teardown),
        cmocka_unit_test_teardown(test_report_header_ten_vs_eleven, teardown),
        cmocka_unit_test_teardown(test_report_header_singular, teardown),
        cmocka_unit_test_teardown(test_report_header_url_label, teardown),
        cmocka_unit_test_teardown(test_report_header_escapes_url, teardown),
        cmocka_unit_test_teardown(test_report_footer_all_ok, teardown),
        cmocka_unit_test_teardown(test_report_footer_singular, teardown),
        cmocka_unit_test_teardown(test_report_footer_plural_and_zero, teardown),
        cmocka_unit_test_teardown(test_report_footer_errors_without_not_found, teardown),
        cmocka_unit_test_teardown(test_report_footer_wide_counts, teardown),
        cmocka_unit_test_teardown(test_report_item_lines, teardown),
        cmocka_unit_test_teardown(test_report_item_escapes_server_text, teardown),
        cmocka_unit_test_teardown(test_report_item_long_reason_not_cut, teardown),
        cmocka_unit_test_teardown(test_report_item_missing_text, teardown),
        cmocka_unit_test(test_report_percentile_nearest_rank),
        cmocka_unit_test(test_report_percentile_small_sets),
        cmocka_unit_test(test_report_json_summary),
        cmocka_unit_test(test_report_json_no_latencies_and_pending),
        cmocka_unit_test(test_report_json_empty_items),
        cmocka_unit_test(test_report_json_server_bytes_escaped),
        cmocka_unit_test_teardown(test_report_progress_example, teardown),
        cmocka_unit_test_teardown(test_report_progress_fits_width, teardown),
        cmocka_unit_test_teardown(test_report_progress_bar_fill, teardown),
        cmocka_unit_test_teardown(test_report_progress_eta_minutes, teardown),
        cmocka_unit_test_teardown(test_report_progress_clear, teardown),
        cmocka_unit_test_teardown(test_report_progress_plain_without_a_capable_term, teardown),
        cmocka_unit_test_teardown(test_report_progress_plain_redraw_hides_a_longer_line, teardown),
        cmocka_unit_test_teardown(test_report_output_check_ok, teardown),
        cmocka_unit_test_teardown(test_report_output_check_full_disk, teardown),
        cmocka_unit_test_teardown(test_report_output_check_earlier_failure, teardown),
        cmocka_unit_test_teardown(test_report_output_check_without_a_message_stream, teardown),
        cmocka_unit_test_teardown(test_report_item_reason_escaped_once, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
