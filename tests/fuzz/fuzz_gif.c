/* libFuzzer target: arbitrary bytes as an image body, through
 * gf_gif_check, and fed in three pieces as a streamed body is. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gf/error.h"
#include "gf/gif.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    unsigned char *longer;
    int rc;

    memset(err, 'X', sizeof err);
    rc = gf_gif_check(data, size, err, sizeof err);
    FUZZ_REQUIRE(rc == 0 || rc == GF_EGIF);
    FUZZ_REQUIRE(memchr(err, '\0', sizeof err) != NULL);
    {
        /* Cut where the first two bytes say: the same verdict and reason. */
        struct gf_gif g;
        char err2[128];
        size_t a = size > 0 ? data[0] % (size + 1) : 0;
        size_t b = size > 1 ? a + data[1] % (size - a + 1) : a;

        gf_gif_init(&g);
        gf_gif_feed(&g, data, a);
        gf_gif_feed(&g, data + a, b - a);
        gf_gif_feed(&g, data + b, size - b);
        FUZZ_REQUIRE(gf_gif_finish(&g, err2, sizeof err2) == rc);
        FUZZ_REQUIRE(strcmp(err, err2) == 0);
    }
    if (rc != 0) {
        /* Every refusal says why. */
        FUZZ_REQUIRE(err[0] != '\0');
        return 0;
    }
    FUZZ_REQUIRE(err[0] == '\0');
    /* What is accepted is a whole GIF: signature, screen descriptor, one
     * image at least (a separator, a 9-byte descriptor, a code size and a
     * terminator) and the trailer as the last byte. */
    FUZZ_REQUIRE(size >= 6 + 7 + 1 + 9 + 1 + 1 + 1);
    FUZZ_REQUIRE(memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0);
    FUZZ_REQUIRE(data[size - 1] == 0x3B);
    /* Cut short or followed by anything, it is refused. */
    FUZZ_REQUIRE(gf_gif_check(data, size - 1, err, sizeof err) == GF_EGIF);
    longer = malloc(size + 1);
    FUZZ_REQUIRE(longer != NULL);
    memcpy(longer, data, size);
    longer[size] = 0x3B;
    FUZZ_REQUIRE(gf_gif_check(longer, size + 1, err, sizeof err) == GF_EGIF);
    free(longer);
    return 0;
}
