/* Unit tests of gf/model.h: the one table of status names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gf/model.h"

static void test_model_status_names_read_back(void **state)
{
    (void)state;
    static const struct {
        enum gf_status st;
        const char *name;
    } all[] = {{GF_PENDING, "pending"},
               {GF_OK, "ok"},
               {GF_NOT_FOUND, "not_found"},
               {GF_ERROR, "error"},
               {GF_UNCHANGED, "unchanged"}};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        enum gf_status st = (enum gf_status)99;
        assert_string_equal(gf_status_name(all[i].st), all[i].name);
        assert_int_equal(gf_status_parse(all[i].name, &st), 0);
        assert_int_equal(st, all[i].st);
    }
}

static void test_model_status_unknown(void **state)
{
    (void)state;
    enum gf_status st = GF_OK;
    assert_int_equal(gf_status_parse("OK", &st), -1);
    assert_int_equal(gf_status_parse("not found", &st), -1);
    assert_int_equal(gf_status_parse("", &st), -1);
    assert_int_equal(st, GF_OK); /* untouched */
    assert_string_equal(gf_status_name((enum gf_status)42), "pending");
}

static void test_model_status_has_file(void **state)
{
    (void)state;
    assert_true(gf_status_has_file(GF_OK));
    assert_true(gf_status_has_file(GF_UNCHANGED));
    assert_false(gf_status_has_file(GF_ERROR));
    assert_false(gf_status_has_file(GF_NOT_FOUND));
    assert_false(gf_status_has_file(GF_PENDING));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_status_names_read_back),
        cmocka_unit_test(test_model_status_unknown),
        cmocka_unit_test(test_model_status_has_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
