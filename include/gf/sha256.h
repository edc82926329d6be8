/* SHA-256 (FIPS 180-4) of the flag files, for the manifest.
 *
 * Pure functions, no allocation, no I/O. The incremental API hashes a body
 * as it arrives; gf_sha256() does a whole buffer at once. Both give the
 * same digest for the same bytes, however they are split. */
#ifndef GF_SHA256_H
#define GF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define GF_SHA256_LEN 32
/* Room for the lower-case hex form and its NUL. */
#define GF_SHA256_HEX_LEN 65

/* State of one hash in progress. Opaque: use the functions below. */
struct gf_sha256_ctx {
    uint32_t h[8];
    uint64_t nbytes;       /* bytes hashed so far */
    unsigned char buf[64]; /* a partial block */
    size_t nbuf;           /* bytes waiting in buf */
};

/* Starts a new hash in c (any previous state is discarded). */
void gf_sha256_init(struct gf_sha256_ctx *c);

/* Adds len bytes at data. data may be NULL when len is 0. */
void gf_sha256_update(struct gf_sha256_ctx *c, const void *data, size_t len);

/* Writes the digest of everything added since gf_sha256_init() into out.
 * c is then spent: call gf_sha256_init() before using it again. */
void gf_sha256_final(struct gf_sha256_ctx *c, unsigned char out[GF_SHA256_LEN]);

/* The digest of len bytes at data (NULL allowed when len is 0). */
void gf_sha256(const void *data, size_t len, unsigned char out[GF_SHA256_LEN]);

/* Writes digest as 64 lower-case hex digits and a NUL into out. */
void gf_sha256_hex(const unsigned char digest[GF_SHA256_LEN], char out[GF_SHA256_HEX_LEN]);

#endif
