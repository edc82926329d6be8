/* --sweep rows, table and JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gf/sweep.h"

static struct gf_summary summary_with(double *lat, size_t n)
{
    return (struct gf_summary){.server_label = "LOCAL",
                               .base_url = "http://localhost:8000/flags",
                               .concurrency = 20,
                               .elapsed_s = 2.0,
                               .ok = 190,
                               .not_found = 3,
                               .error = 1,
                               .requests = 388,
                               .latencies_ms = lat,
                               .nlatencies = n};
}

static void test_sweep_row_percentiles_and_rate(void **state)
{
    (void)state;
    double lat[100];
    for (int i = 0; i < 100; i++)
        lat[i] = 100 - i; /* unsorted on purpose */
    struct gf_summary s = summary_with(lat, 100);
    s.unchanged = 7;
    struct gf_sweep_row r;
    assert_int_equal(gf_sweep_row_from(&r, &s), 0);
    assert_int_equal(r.m, 20);
    assert_int_equal(r.unchanged, 7);
    assert_true(r.p50_ms == 50 && r.p95_ms == 95 && r.p99_ms == 99 && r.max_ms == 100);
    assert_true(r.requests_per_s == 194.0);
    assert_int_equal(r.ok, 190);
    assert_int_equal(r.not_found, 3);
    assert_int_equal(r.error, 1);
    /* The summary's latencies are not reordered. */
    assert_true(lat[0] == 100 && lat[99] == 1);
}

static void test_sweep_row_without_requests(void **state)
{
    (void)state;
    struct gf_summary s = summary_with(NULL, 0);
    s.elapsed_s = 0;
    s.requests = 0;
    struct gf_sweep_row r;
    assert_int_equal(gf_sweep_row_from(&r, &s), 0);
    assert_true(r.p50_ms == 0 && r.max_ms == 0 && r.requests_per_s == 0);
}

static void test_sweep_table_format(void **state)
{
    (void)state;
    struct gf_sweep_row rows[2] = {
        {.m = 1,
         .elapsed_s = 1.5,
         .requests_per_s = 258.67,
         .p50_ms = 3.25,
         .p95_ms = 7.5,
         .p99_ms = 9.125,
         .max_ms = 12,
         .ok = 194,
         .not_found = 0,
         .error = 0},
        {.m = 1000,
         .elapsed_s = 0.0421,
         .requests_per_s = 20665.1,
         .p50_ms = 20,
         .p95_ms = 35.5,
         .p99_ms = 40,
         .max_ms = 41.75,
         .ok = 190,
         .not_found = 482,
         .error = 4,
         .unchanged = 2},
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    gf_sweep_table(f, rows, 2);
    fclose(f);
    const char *want =
        "     m  elapsed_s      req/s    p50_ms    p95_ms    p99_ms    max_ms    ok not_found "
        "errors unchanged\n"
        "     1      1.500      258.7      3.25      7.50      9.12     12.00   194         0 "
        "     0         0\n"
        "  1000      0.042    20665.1     20.00     35.50     40.00     41.75   190       482 "
        "     4         2\n";
    assert_string_equal(buf, want);
    free(buf);

    /* An interrupted level says so under the table. */
    rows[1].pending = 6;
    buf = NULL;
    f = open_memstream(&buf, &len);
    gf_sweep_table(f, rows, 2);
    fclose(f);
    assert_non_null(strstr(buf, want) == buf ? buf : NULL);
    assert_string_equal(buf + strlen(want), "m=1000 was interrupted: 6 of its 684 codes did not "
                                            "finish.\n");
    free(buf);
}

static void test_sweep_json_array(void **state)
{
    (void)state;
    struct gf_sweep_row rows[2] = {
        {.m = 5, .elapsed_s = 0.5, .requests = 10, .p95_ms = 7},
        {.m = 50, .ok = 3, .not_found = 2, .error = 1, .unchanged = 5, .pending = 4}};
    char *s = gf_sweep_json(rows, 2);
    assert_non_null(s);
    cJSON *a = cJSON_Parse(s);
    free(s);
    assert_true(cJSON_IsArray(a));
    assert_int_equal(cJSON_GetArraySize(a), 2);
    cJSON *o = cJSON_GetArrayItem(a, 0);
    assert_int_equal(cJSON_GetObjectItem(o, "m")->valueint, 5);
    assert_true(cJSON_GetObjectItem(o, "elapsed_s")->valuedouble == 0.5);
    cJSON *lat = cJSON_GetObjectItem(o, "latency_ms");
    assert_true(cJSON_GetObjectItem(lat, "p95")->valuedouble == 7);
    assert_non_null(cJSON_GetObjectItem(lat, "p50"));
    assert_non_null(cJSON_GetObjectItem(lat, "p99"));
    assert_non_null(cJSON_GetObjectItem(lat, "max"));
    o = cJSON_GetArrayItem(a, 1);
    assert_int_equal(cJSON_GetObjectItem(o, "ok")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(o, "not_found")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(o, "error")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(o, "pending")->valueint, 4);
    assert_int_equal(cJSON_GetObjectItem(o, "unchanged")->valueint, 5);
    assert_non_null(cJSON_GetObjectItem(o, "requests_per_s"));
    cJSON_Delete(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_row_percentiles_and_rate),
        cmocka_unit_test(test_sweep_row_without_requests),
        cmocka_unit_test(test_sweep_table_format),
        cmocka_unit_test(test_sweep_json_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
