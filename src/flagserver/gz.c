#include "flagserver/gz.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* Deflates `total` bytes of in (or of zeros when in is NULL) into a gzip
 * member at the given compression level. */
static int deflate_all(const unsigned char *in, uint64_t total, int level, fs_bytes *out)
{
    static const unsigned char zeros[65536];
    z_stream zs;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    uint64_t fed = 0;
    int rc, flush;

    memset(&zs, 0, sizeof(zs));
    out->data = NULL;
    out->len = 0;
    /* windowBits 15 + 16 asks zlib for a gzip wrapper. */
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    do {
        size_t chunk = total - fed > 65536 ? 65536 : (size_t)(total - fed);

        zs.next_in = (unsigned char *)(in ? in + fed : zeros);
        zs.avail_in = (uInt)chunk;
        fed += chunk;
        flush = fed == total ? Z_FINISH : Z_NO_FLUSH;
        do {
            if (cap - len < 16384) {
                size_t ncap = cap ? cap * 2 : 65536;
                unsigned char *p = realloc(buf, ncap);

                if (p == NULL) {
                    deflateEnd(&zs);
                    free(buf);
                    return -1;
                }
                buf = p;
                cap = ncap;
            }
            zs.next_out = buf + len;
            zs.avail_out = (uInt)(cap - len);
            rc = deflate(&zs, flush);
            len = cap - zs.avail_out;
            if (rc == Z_STREAM_ERROR) {
                deflateEnd(&zs);
                free(buf);
                return -1;
            }
        } while (zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    } while (flush != Z_FINISH);
    deflateEnd(&zs);
    out->data = buf;
    out->len = len;
    return 0;
}

int fs_gz_compress(const void *in, size_t len, fs_bytes *out)
{
    return deflate_all(in, len, 6, out);
}

int fs_gz_zeros(uint64_t n, fs_bytes *out)
{
    return deflate_all(NULL, n, 9, out);
}
