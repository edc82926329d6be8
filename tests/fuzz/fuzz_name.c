/* libFuzzer target: arbitrary bytes as a country name, through
 * gf_name_from_country and gf_escape_for_print. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gf/error.h"
#include "gf/names.h"
#include "gf/text.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[GF_NAME_MAX + 1], shown[64];
    const char *why = NULL;
    int rc, control, valid;
    size_t len;

    valid = size > 0 && fuzz_utf8_valid(data, size, &control);

    /* Accepted exactly when the bytes are non-empty valid UTF-8. */
    rc = gf_name_from_country((const char *)data, size, NULL, name, sizeof name, &why);
    FUZZ_REQUIRE(rc == 0 || rc == GF_ENAME);
    FUZZ_REQUIRE((rc == 0) == valid);
    if (rc == 0)
        fuzz_check_name(name, NULL);
    else
        FUZZ_REQUIRE(why != NULL && why[0] != '\0');

    rc = gf_name_from_country((const char *)data, size, "ZZ", name, sizeof name, &why);
    FUZZ_REQUIRE((rc == 0) == valid);
    if (rc == 0)
        fuzz_check_name(name, "ZZ");

    /* Escaped text is always printable UTF-8 that fits the buffer. */
    memset(shown, 'X', sizeof shown);
    FUZZ_REQUIRE(gf_escape_for_print((const char *)data, size, shown, sizeof shown) == shown);
    len = strnlen(shown, sizeof shown);
    FUZZ_REQUIRE(len < sizeof shown);
    FUZZ_REQUIRE(fuzz_utf8_valid((const unsigned char *)shown, len, &control));
    FUZZ_REQUIRE(!control);
    return 0;
}
