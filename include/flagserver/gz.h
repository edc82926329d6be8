/* gzip streams for the gzip faults.
 *
 * With zlib (FS_HAVE_ZLIB) the public functions use it; the *_builtin ones
 * are always compiled: a stored-block encoder and a fixed-Huffman encoder for
 * runs of zeros, used when zlib is absent. All return 0 on success and leave
 * a malloc'd buffer in *out that the caller frees, or -1 when out of memory
 * (then *out is empty). */
#ifndef FLAGSERVER_GZ_H
#define FLAGSERVER_GZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct fs_bytes {
    unsigned char *data;
    size_t len;
} fs_bytes;

/* 1 when built with zlib. */
int fs_gz_have_zlib(void);

/* A gzip member holding in[0..len). */
int fs_gz_compress(const void *in, size_t len, fs_bytes *out);

/* A gzip member that inflates to n zero bytes, as small as the encoder can
 * make it (about 50 KB for 50 MiB with zlib, 330 KB without). */
int fs_gz_zeros(uint64_t n, fs_bytes *out);

/* Builtin encoders (valid gzip, no zlib needed). */
int fs_gz_store_builtin(const void *in, size_t len, fs_bytes *out);
int fs_gz_zeros_builtin(uint64_t n, fs_bytes *out);

/* CRC-32 (gzip's), continuing from crc (start with 0). Thread-safe. */
uint32_t fs_gz_crc32(uint32_t crc, const void *p, size_t n);

#endif
