/* The transfer layer's TLS setup: --cacert is read once, before the run,
 * and an unusable file is one clear message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transfer.h"

/* A self-signed certificate made for this test (no key is needed). */
static const char CERT[] = "-----BEGIN CERTIFICATE-----\n"
                           "MIIBkDCCATWgAwIBAgIUExR57VlE5mJD6uMs7YrWCu9xzMgwCgYIKoZIzj0EAwIw\n"
                           "HTEbMBkGA1UEAwwSZ2V0ZmxhZ3MgdW5pdCB0ZXN0MB4XDTI2MTEyNzA2MjM0M1oX\n"
                           "DTM2MTEyNDA2MjM0M1owHTEbMBkGA1UEAwwSZ2V0ZmxhZ3MgdW5pdCB0ZXN0MFkw\n"
                           "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2Qv++gIIP0rgX6urBP19i8UWyb8edWpO\n"
                           "Wv+w9c6QoPRlW2J+RIXSSHVdv+/5JTxFErIR41r1k36Edzm2AltaTaNTMFEwHQYD\n"
                           "VR0OBBYEFPmOdqMIwRwFa5t/fh6ClgOcaSwRMB8GA1UdIwQYMBaAFPmOdqMIwRwF\n"
                           "a5t/fh6ClgOcaSwRMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh\n"
                           "AJHUukAz3nc5FfZcHhnkPlZfm9kO0wbxdojWwOhw6xExAiEAs9NEk0dgrlcKsB4r\n"
                           "nPkA8HxQ16Ou/rgDqVUmI8XPR2M=\n"
                           "-----END CERTIFICATE-----\n";

static char *write_temp(const char *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/gf-test-cacert-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_missing_file(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    assert_int_equal(gf_tls_init(&t, "/nonexistent/ca.pem", &st, msg, sizeof msg), -1);
    assert_non_null(
        strstr(msg, "getflags: cannot read --cacert /nonexistent/ca.pem: No such file"));
    assert_null(t.extra);
}

static void test_not_pem(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    char *p = write_temp("hello\n", 6);
    assert_int_equal(gf_tls_init(&t, p, &st, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "no PEM certificate in it"));
    unlink(p);
}

static void test_damaged_pem(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    char bad[sizeof CERT];
    memcpy(bad, CERT, sizeof CERT);
    bad[100] = '!'; /* inside the base64 body */
    char *p = write_temp(bad, strlen(bad));
    assert_int_equal(gf_tls_init(&t, p, &st, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "not a readable PEM certificate file"));
    unlink(p);
}

static void test_good_bundle_twice(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    char two[2 * sizeof CERT];
    snprintf(two, sizeof two, "%s%s", CERT, CERT);
    char *p = write_temp(two, strlen(two));
    assert_int_equal(gf_tls_init(&t, p, &st, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    assert_non_null(t.extra);
    assert_ptr_equal(t.stats, &st);
    gf_tls_free(&t);
    assert_null(t.extra);
    unlink(p);
}

static void test_no_cacert(void **state)
{
    (void)state;
    struct gf_tls t;
    struct gf_conn_stats st = {0};
    char msg[512];
    assert_int_equal(gf_tls_init(&t, NULL, &st, msg, sizeof msg), 0);
    assert_null(t.extra);
    /* The options go on an easy handle without error. */
    CURL *e = curl_easy_init();
    assert_non_null(e);
    const char *what = NULL;
    assert_int_equal(gf_tls_setup_easy(&t, e, &what), CURLE_OK);
    curl_easy_cleanup(e);
    gf_tls_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file), cmocka_unit_test(test_not_pem),
        cmocka_unit_test(test_damaged_pem),  cmocka_unit_test(test_good_bundle_twice),
        cmocka_unit_test(test_no_cacert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
