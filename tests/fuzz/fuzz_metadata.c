/* libFuzzer target: a metadata.json body from a hostile server, through
 * gf_metadata_country and then gf_name_from_country. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gf/error.h"
#include "gf/names.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[GF_NAME_MAX + 1];
    const char *why = NULL;
    char *country = (char *)"sentinel";
    size_t len;
    int rc, control;

    /* libFuzzer's buffer is exactly size bytes, so ASan catches any read
     * past the body. */
    rc = gf_metadata_country((const char *)data, size, &country, &why);
    if (rc != 0) {
        FUZZ_REQUIRE(rc == GF_EMETADATA || rc == GF_ENOMEM);
        FUZZ_REQUIRE(country == NULL);
        FUZZ_REQUIRE(rc != GF_EMETADATA || (why != NULL && why[0] != '\0'));
        return 0;
    }
    FUZZ_REQUIRE(size <= GF_METADATA_MAX);
    FUZZ_REQUIRE(country != NULL);
    len = strlen(country);
    FUZZ_REQUIRE(len > 0);
    FUZZ_REQUIRE(fuzz_utf8_valid((const unsigned char *)country, len, &control));

    /* A valid country always makes a name, with or without the suffix. */
    rc = gf_name_from_country(country, len, NULL, name, sizeof name, &why);
    FUZZ_REQUIRE(rc == 0);
    fuzz_check_name(name, NULL);
    rc = gf_name_from_country(country, len, "BR", name, sizeof name, &why);
    FUZZ_REQUIRE(rc == 0);
    fuzz_check_name(name, "BR");
    free(country);
    return 0;
}
