/* Checks that a body is one complete GIF image before it is saved as a
 * flag. Pure functions, no I/O, no allocation.
 *
 * The check is a state machine fed the body in pieces as it arrives, so
 * that a body streamed to a file never has to be held in memory:
 * gf_gif_init(), gf_gif_feed() each piece, gf_gif_finish() at its end.
 * gf_gif_check() does the three for a body held whole. Any split of the
 * same bytes gives the same verdict and the same message. */
#ifndef GF_GIF_H
#define GF_GIF_H

#include <stddef.h>

/* The walk's position; its fields are private to gif.c. */
struct gf_gif {
    int state;
    int lead;             /* first non-blank byte: 0 none yet, 1 '<', 2 other */
    size_t at;            /* bytes fed so far */
    size_t need;          /* bytes left of the fixed-size part being read */
    size_t after;         /* bytes after the trailer */
    unsigned images;      /* complete images so far */
    unsigned char packed; /* packed field of the last descriptor */
    int in_image;         /* the data sub-blocks walked belong to an image */
    unsigned char sig[6]; /* the first bytes, until the signature is known */
    /* Why it was refused, worded only by gf_gif_finish(): a transfer
     * carries one of these, and most are never refused. */
    unsigned char why;  /* 0, or what was wrong */
    unsigned char bad;  /* the offending byte */
    size_t bad_at;      /* and its position */
    const char *detail; /* a part of the file, or a hint */
};

void gf_gif_init(struct gf_gif *g);

/* Walks the next n bytes of the body. Returns 0, or GF_EGIF once the bytes
 * so far can no longer be the start of a GIF (then every later call
 * returns GF_EGIF too; the reason comes from gf_gif_finish()). */
int gf_gif_feed(struct gf_gif *g, const unsigned char *p, size_t n);

/* The body has ended: returns 0 when it was exactly one complete GIF,
 * else GF_EGIF with the reason in err, as gf_gif_check(). */
int gf_gif_finish(struct gf_gif *g, char *err, size_t errsz);

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
