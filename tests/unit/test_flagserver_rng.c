/* The delay/error PRNG: known splitmix64 outputs, determinism, ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "flagserver/rng.h"

static void test_known_outputs(void **state)
{
    /* Reference values of splitmix64 for seed 1234567. */
    static const uint64_t want[] = {
        UINT64_C(6457827717110365317),  UINT64_C(3203168211198807973),
        UINT64_C(9817491932198370423),  UINT64_C(4593380528125082431),
        UINT64_C(16408922859458223821),
    };
    fs_rng r;
    size_t i;

    fs_rng_seed(&r, 1234567);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_true(fs_rng_next(&r) == want[i]);
    fs_rng_seed(&r, 0);
    assert_true(fs_rng_next(&r) == UINT64_C(0xe220a8397b1dcdaf));
}

static void test_same_seed_same_draws(void **state)
{
    fs_rng a, b, c;
    int i, differ = 0;

    fs_rng_seed(&a, 42);
    fs_rng_seed(&b, 42);
    fs_rng_seed(&c, 43);
    for (i = 0; i < 1000; i++) {
        fs_draw x = fs_rng_draw(&a, 0.5, 5.0, 0.25);
        fs_draw y = fs_rng_draw(&b, 0.5, 5.0, 0.25);
        fs_draw z = fs_rng_draw(&c, 0.5, 5.0, 0.25);

        assert_true(x.delay_ms == y.delay_ms);
        assert_int_equal(x.error, y.error);
        differ += x.delay_ms != z.delay_ms;
    }
    assert_true(differ > 900);
}

static void test_kth_request_gets_kth_output(void **state)
{
    fs_rng a, b;
    int k;

    /* The settings do not change which output a request takes. */
    fs_rng_seed(&a, 7);
    fs_rng_seed(&b, 7);
    for (k = 0; k < 10; k++)
        (void)fs_rng_draw(&a, 0.0, 0.0, 0.0);
    for (k = 0; k < 10; k++)
        (void)fs_rng_draw(&b, 1.0, 2.0, 0.9);
    assert_true(fs_rng_next(&a) == fs_rng_next(&b));
}

static void test_ranges_and_rates(void **state)
{
    fs_rng r;
    int i, errors = 0;
    uint64_t lo = UINT64_MAX, hi = 0;

    fs_rng_seed(&r, 99);
    for (i = 0; i < 100000; i++) {
        fs_draw d = fs_rng_draw(&r, 0.5, 5.0, 0.25);

        assert_true(d.delay_ms >= 500 && d.delay_ms <= 5000);
        lo = d.delay_ms < lo ? d.delay_ms : lo;
        hi = d.delay_ms > hi ? d.delay_ms : hi;
        errors += d.error;
    }
    assert_true(lo < 510 && hi > 4990);
    assert_true(errors > 24000 && errors < 26000);
    for (i = 0; i < 1000; i++) {
        fs_draw never = fs_rng_draw(&r, 0.0, 0.0, 0.0);
        fs_draw always = fs_rng_draw(&r, 0.25, 0.25, 1.0);

        assert_true(never.delay_ms == 0 && !never.error);
        assert_true(always.delay_ms == 250 && always.error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_outputs),
        cmocka_unit_test(test_same_seed_same_draws),
        cmocka_unit_test(test_kth_request_gets_kth_output),
        cmocka_unit_test(test_ranges_and_rates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
