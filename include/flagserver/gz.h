/* gzip streams for the gzip faults, built with zlib. Both functions return 0
 * and leave a malloc'd buffer in *out that the caller frees, or -1 when out
 * of memory (then *out is empty). */
#ifndef FLAGSERVER_GZ_H
#define FLAGSERVER_GZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct fs_bytes {
    unsigned char *data;
    size_t len;
} fs_bytes;

/* A gzip member holding in[0..len). */
int fs_gz_compress(const void *in, size_t len, fs_bytes *out);

/* A gzip member that inflates to n zero bytes, as small as zlib makes it
 * (about 50 KB for 50 MiB). */
int fs_gz_zeros(uint64_t n, fs_bytes *out);

#endif
