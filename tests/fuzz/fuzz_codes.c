/* libFuzzer target: arbitrary strings as CC arguments to
 * gf_codeset_add_arg. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gf/codes.h"
#include "gf/error.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gf_cc out[GF_CODES_MAX];
    struct gf_codeset set;
    char err[160];
    char *arg = malloc(size + 1);
    size_t len, n, i;
    int rc, expect_ok;

    if (arg == NULL)
        return 0;
    memcpy(arg, data, size);
    arg[size] = '\0';
    len = strlen(arg); /* an argv string ends at its first NUL */
    expect_ok =
        (len == 1 && is_letter(arg[0])) || (len == 2 && is_letter(arg[0]) && is_letter(arg[1]));

    gf_codeset_clear(&set);
    err[0] = '\0';
    rc = gf_codeset_add_arg(&set, arg, err, sizeof err);
    n = gf_codeset_list(&set, 0, out);
    if (rc == 0) {
        FUZZ_REQUIRE(expect_ok);
        FUZZ_REQUIRE(n == (len == 1 ? 26u : 1u));
        for (i = 0; i < n; i++) {
            FUZZ_REQUIRE(out[i][0] >= 'A' && out[i][0] <= 'Z');
            FUZZ_REQUIRE(out[i][1] >= 'A' && out[i][1] <= 'Z');
            FUZZ_REQUIRE(out[i][2] == '\0');
            FUZZ_REQUIRE(out[i][0] == (arg[0] & ~0x20));
        }
    } else {
        int control;
        FUZZ_REQUIRE(rc == GF_EUSAGE);
        FUZZ_REQUIRE(!expect_ok);
        FUZZ_REQUIRE(n == 0);
        /* The message is printable: user bytes are escaped. */
        FUZZ_REQUIRE(strncmp(err, "invalid country code or letter: '", 33) == 0);
        FUZZ_REQUIRE(fuzz_utf8_valid((const unsigned char *)err, strlen(err), &control));
        FUZZ_REQUIRE(!control);
    }
    free(arg);
    return 0;
}
