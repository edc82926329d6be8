/* Checks that a body is one complete GIF image before it is saved as a
 * flag. Pure function, no I/O, no allocation. */
#ifndef GF_GIF_H
#define GF_GIF_H

#include <stddef.h>

/* Walks the n bytes at p as a GIF (GIF87a or GIF89a) and accepts them only
 * when they are exactly one complete image file: the signature, the
 * logical screen descriptor, the global color table when the descriptor
 * declares one, then well-formed blocks (extensions with their data
 * sub-blocks; images with their descriptor, optional local color table,
 * LZW minimum code size and data sub-blocks), at least one image, and the
 * trailer byte 0x3B as the very last byte. A body cut short anywhere, or
 * with anything after the trailer, is refused. The LZW data itself is not
 * decoded.
 *
 * Returns 0, or GF_EGIF with a one-line reason in err (errsz > 0; cut to
 * fit), e.g. "not a GIF image: no GIF87a or GIF89a signature (it looks
 * like HTML)" or "truncated GIF image: ends inside an image data block". */
int gf_gif_check(const unsigned char *p, size_t n, char *err, size_t errsz);

#endif
