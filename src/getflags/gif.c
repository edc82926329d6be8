/* A structural walk over a GIF file (GIF89a specification, sections 17 to
 * 27): every length the file declares is followed, none is trusted. */
#include "gf/gif.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gf/error.h"

#define GIF_EXTENSION 0x21
#define GIF_IMAGE 0x2C
#define GIF_TRAILER 0x3B

struct walk {
    const unsigned char *p;
    size_t n, at;
    char *err;
    size_t errsz;
};

static int fail(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct walk *w, const char *fmt, ...)
{
    va_list ap;

    if (w->errsz > 0) {
        va_start(ap, fmt);
        vsnprintf(w->err, w->errsz, fmt, ap);
        va_end(ap);
    }
    return GF_EGIF;
}

static int truncated(struct walk *w, const char *inside)
{
    return fail(w, "truncated GIF image: ends inside %s", inside);
}

/* Steps over count bytes that must all be there. */
static int skip(struct walk *w, size_t count, const char *what)
{
    if (w->n - w->at < count)
        return truncated(w, what);
    w->at += count;
    return 0;
}

/* Size of the color table a packed field declares, or 0 when it has none:
 * bit 7 is the flag, bits 0..2 give 2^(k+1) entries of 3 bytes. */
static size_t color_table_size(unsigned char packed)
{
    return (packed & 0x80) ? 3u * (2u << (packed & 0x07)) : 0;
}

/* A run of data sub-blocks: each a size byte and that many bytes, ended by
 * a size byte of 0. */
static int sub_blocks(struct walk *w, const char *what)
{
    for (;;) {
        size_t len;

        if (w->at >= w->n)
            return truncated(w, what);
        len = w->p[w->at++];
        if (len == 0)
            return 0;
        if (skip(w, len, what) != 0)
            return GF_EGIF;
    }
}

static int image(struct walk *w)
{
    unsigned char packed;
    unsigned min_code;
    int rc;

    /* Left, top, width, height (2 bytes each), then the packed field. */
    if ((rc = skip(w, 9, "an image descriptor")) != 0)
        return rc;
    packed = w->p[w->at - 1];
    if ((rc = skip(w, color_table_size(packed), "a local color table")) != 0)
        return rc;
    if (w->at >= w->n)
        return truncated(w, "an image (before its LZW code size)");
    min_code = w->p[w->at];
    /* Codes are at most 12 bits and start one bit wider than this. */
    if (min_code < 1 || min_code > 11)
        return fail(w,
                    "malformed GIF image: LZW minimum code size %u at byte %zu (1 to 11 allowed)",
                    min_code, w->at);
    w->at++;
    return sub_blocks(w, "an image data block");
}

int gf_gif_check(const unsigned char *p, size_t n, char *err, size_t errsz)
{
    struct walk w = {p, p != NULL ? n : 0, 0, err, errsz};
    unsigned images = 0;
    int rc;

    if (errsz > 0)
        err[0] = '\0';
    if (w.n < 6 || (memcmp(p, "GIF87a", 6) != 0 && memcmp(p, "GIF89a", 6) != 0)) {
        size_t i = 0;

        if (w.n >= 3 && memcmp(p, "GIF", 3) == 0 && w.n >= 6)
            return fail(&w,
                        "not a GIF image: unknown GIF version \"%c%c%c\" (GIF87a or GIF89a "
                        "expected)",
                        p[3] >= 0x20 && p[3] < 0x7F ? p[3] : '?',
                        p[4] >= 0x20 && p[4] < 0x7F ? p[4] : '?',
                        p[5] >= 0x20 && p[5] < 0x7F ? p[5] : '?');
        if (w.n > 0 && w.n < 6 && (memcmp(p, "GIF89a", w.n) == 0 || memcmp(p, "GIF87a", w.n) == 0))
            return truncated(&w, "the GIF signature");
        /* An error page served as the image is the common case: say so. */
        while (i < w.n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
            i++;
        return fail(&w, "not a GIF image: no GIF87a or GIF89a signature%s",
                    w.n == 0                 ? " (empty body)"
                    : i < w.n && p[i] == '<' ? " (it looks like HTML)"
                                             : "");
    }
    w.at = 6;
    /* Logical screen descriptor: width, height, packed, background, aspect. */
    if ((rc = skip(&w, 7, "the logical screen descriptor")) != 0)
        return rc;
    if ((rc = skip(&w, color_table_size(p[10]), "the global color table")) != 0)
        return rc;

    for (;;) {
        unsigned char type;

        if (w.at >= w.n)
            return truncated(&w, images == 0 ? "the file, before any image"
                                             : "the file, before the trailer byte (0x3B)");
        type = p[w.at++];
        if (type == GIF_TRAILER)
            break;
        if (type == GIF_IMAGE) {
            if ((rc = image(&w)) != 0)
                return rc;
            images++;
        } else if (type == GIF_EXTENSION) {
            if (w.at >= w.n)
                return truncated(&w, "an extension block");
            w.at++; /* the label: any value, unknown ones are skipped */
            if ((rc = sub_blocks(&w, "an extension block")) != 0)
                return rc;
        } else {
            return fail(&w, "malformed GIF image: unknown block type 0x%02x at byte %zu", type,
                        w.at - 1);
        }
    }
    if (images == 0)
        return fail(&w, "malformed GIF image: it holds no image");
    if (w.at != w.n)
        return fail(&w, "malformed GIF image: %zu byte%s of other data after the trailer",
                    w.n - w.at, w.n - w.at == 1 ? "" : "s");
    return 0;
}
