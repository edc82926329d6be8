/* A structural walk over a GIF file (GIF89a specification, sections 17 to
 * 27): every length the file declares is followed, none is trusted. The
 * walk is a state machine over bytes as they come, so it never needs the
 * whole file; fixed-size parts and data sub-blocks are stepped over in
 * one go, whatever piece of them a call holds. */
#include "gf/gif.h"

#include <stdio.h>
#include <string.h>

#include "gf/error.h"

#define GIF_EXTENSION 0x21
#define GIF_IMAGE 0x2C
#define GIF_TRAILER 0x3B

enum {
    S_SIGNATURE,  /* the first 6 bytes */
    S_NOT_GIF,    /* no signature: only the first non-blank byte matters */
    S_SCREEN,     /* logical screen descriptor: 7 bytes */
    S_GLOBAL_CT,  /* global color table */
    S_BLOCK,      /* a block type byte, or the trailer */
    S_EXT_LABEL,  /* an extension's label byte */
    S_IMAGE_DESC, /* image descriptor: 9 bytes */
    S_LOCAL_CT,   /* local color table */
    S_LZW,        /* LZW minimum code size */
    S_SUB_LEN,    /* a data sub-block's size byte */
    S_SUB_DATA,   /* its bytes */
    S_AFTER,      /* past the trailer */
    S_REFUSED,    /* why says why */
};

/* Reasons for a refusal (gf_gif.why). */
enum {
    R_NONE,
    R_VERSION,    /* sig[3..5] */
    R_NO_SIG,     /* detail: a hint at what it is */
    R_NO_IMAGE,   /* a trailer before any image */
    R_BLOCK_TYPE, /* bad at bad_at */
    R_LZW_SIZE,   /* bad at bad_at */
    R_TRUNCATED,  /* inside detail */
    R_AFTER,      /* after bytes past the trailer */
};

static int fail(struct gf_gif *g, unsigned char why, unsigned char bad, size_t at,
                const char *detail)
{
    g->why = why;
    g->bad = bad;
    g->bad_at = at;
    g->detail = detail;
    g->state = S_REFUSED;
    return GF_EGIF;
}

/* Size of the color table a packed field declares, or 0 when it has none:
 * bit 7 is the flag, bits 0..2 give 2^(k+1) entries of 3 bytes. */
static size_t color_table_size(unsigned char packed)
{
    return (packed & 0x80) ? 3u * (2u << (packed & 0x07)) : 0;
}

/* Enters a part of need bytes (maybe none, then the one after it). */
static void expect(struct gf_gif *g, int state, size_t need)
{
    if (need > 0) {
        g->state = state;
        g->need = need;
    } else if (state == S_GLOBAL_CT) {
        g->state = S_BLOCK;
    } else {
        g->state = S_LZW; /* no local color table */
    }
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int printable(unsigned char c)
{
    return c >= 0x20 && c < 0x7F ? c : '?';
}

void gf_gif_init(struct gf_gif *g)
{
    memset(g, 0, sizeof *g);
    g->state = S_SIGNATURE;
}

/* The 6 signature bytes are in. */
static int signature(struct gf_gif *g)
{
    if (memcmp(g->sig, "GIF87a", 6) == 0 || memcmp(g->sig, "GIF89a", 6) == 0) {
        expect(g, S_SCREEN, 7);
        return 0;
    }
    if (memcmp(g->sig, "GIF", 3) == 0)
        return fail(g, R_VERSION, 0, 0, NULL);
    /* The reason waits for the end: an error page served as the image is
     * the common case, and its first non-blank byte tells. */
    g->state = S_NOT_GIF;
    return GF_EGIF;
}

/* One byte that starts or ends a part: a size, a type, a label. */
static int step(struct gf_gif *g, unsigned char c, size_t pos)
{
    switch (g->state) {
    case S_BLOCK:
        if (c == GIF_TRAILER) {
            if (g->images == 0)
                return fail(g, R_NO_IMAGE, 0, 0, NULL);
            g->state = S_AFTER;
        } else if (c == GIF_IMAGE) {
            expect(g, S_IMAGE_DESC, 9);
        } else if (c == GIF_EXTENSION) {
            g->state = S_EXT_LABEL;
        } else {
            return fail(g, R_BLOCK_TYPE, c, pos, NULL);
        }
        return 0;
    case S_EXT_LABEL: /* any value: unknown extensions are skipped */
        g->in_image = 0;
        g->state = S_SUB_LEN;
        return 0;
    case S_LZW:
        /* Codes are at most 12 bits and start one bit wider than this. */
        if (c < 1 || c > 11)
            return fail(g, R_LZW_SIZE, c, pos, NULL);
        g->in_image = 1;
        g->state = S_SUB_LEN;
        return 0;
    case S_SUB_LEN:
        /* A run of data sub-blocks ends at a size byte of 0. */
        if (c != 0) {
            expect(g, S_SUB_DATA, c);
        } else {
            if (g->in_image)
                g->images++;
            g->state = S_BLOCK;
        }
        return 0;
    default:
        return 0;
    }
}

int gf_gif_feed(struct gf_gif *g, const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (g->lead == 0 && i < n) {
        if (!is_blank(p[i]))
            g->lead = p[i] == '<' ? 1 : 2;
        i++;
    }
    i = 0;
    while (i < n) {
        size_t take;

        switch (g->state) {
        case S_REFUSED:
        case S_NOT_GIF:
            g->at += n - i;
            return GF_EGIF;
        case S_AFTER:
            g->after += n - i;
            g->at += n - i;
            return 0;
        case S_SIGNATURE:
            g->sig[g->at] = p[i++];
            if (++g->at == 6 && signature(g) != 0) {
                g->at += n - i;
                return GF_EGIF;
            }
            continue;
        case S_SCREEN:
        case S_IMAGE_DESC:
            /* The packed field is byte 4 of the screen descriptor and the
             * last of an image descriptor. */
            if (g->need == (g->state == S_SCREEN ? 3u : 1u))
                g->packed = p[i];
            i++;
            g->at++;
            if (--g->need == 0)
                expect(g, g->state == S_SCREEN ? S_GLOBAL_CT : S_LOCAL_CT,
                       color_table_size(g->packed));
            continue;
        case S_GLOBAL_CT:
        case S_LOCAL_CT:
        case S_SUB_DATA:
            take = n - i < g->need ? n - i : g->need;
            i += take;
            g->at += take;
            g->need -= take;
            if (g->need == 0)
                g->state = g->state == S_GLOBAL_CT  ? S_BLOCK
                           : g->state == S_LOCAL_CT ? S_LZW
                                                    : S_SUB_LEN;
            continue;
        default:
            if (step(g, p[i], g->at) != 0) {
                g->at += n - i;
                return GF_EGIF;
            }
            i++;
            g->at++;
            continue;
        }
    }
    return 0;
}

static int truncated(struct gf_gif *g, const char *inside)
{
    return fail(g, R_TRUNCATED, 0, 0, inside);
}

/* The reason for a refusal, in words. */
static void word(const struct gf_gif *g, char *err, size_t errsz)
{
    switch (g->why) {
    case R_VERSION:
        snprintf(err, errsz,
                 "not a GIF image: unknown GIF version \"%c%c%c\" (GIF87a or GIF89a expected)",
                 printable(g->sig[3]), printable(g->sig[4]), printable(g->sig[5]));
        break;
    case R_NO_SIG:
        snprintf(err, errsz, "not a GIF image: no GIF87a or GIF89a signature%s", g->detail);
        break;
    case R_NO_IMAGE:
        snprintf(err, errsz, "malformed GIF image: it holds no image");
        break;
    case R_BLOCK_TYPE:
        snprintf(err, errsz, "malformed GIF image: unknown block type 0x%02x at byte %zu", g->bad,
                 g->bad_at);
        break;
    case R_LZW_SIZE:
        snprintf(err, errsz,
                 "malformed GIF image: LZW minimum code size %u at byte %zu (1 to 11 allowed)",
                 (unsigned)g->bad, g->bad_at);
        break;
    case R_TRUNCATED:
        snprintf(err, errsz, "truncated GIF image: ends inside %s", g->detail);
        break;
    case R_AFTER:
        snprintf(err, errsz, "malformed GIF image: %zu byte%s of other data after the trailer",
                 g->after, g->after == 1 ? "" : "s");
        break;
    default:
        snprintf(err, errsz, "not a GIF image");
        break;
    }
}

int gf_gif_finish(struct gf_gif *g, char *err, size_t errsz)
{
    int rc = GF_EGIF;

    switch (g->state) {
    case S_SIGNATURE:
    case S_NOT_GIF:
        /* Fewer than 6 bytes that start a signature were cut short. */
        if (g->state == S_SIGNATURE && g->at > 0 &&
            (memcmp(g->sig, "GIF89a", g->at) == 0 || memcmp(g->sig, "GIF87a", g->at) == 0))
            truncated(g, "the GIF signature");
        else
            fail(g, R_NO_SIG, 0, 0,
                 g->at == 0     ? " (empty body)"
                 : g->lead == 1 ? " (it looks like HTML)"
                                : "");
        break;
    case S_SCREEN:
        truncated(g, "the logical screen descriptor");
        break;
    case S_GLOBAL_CT:
        truncated(g, "the global color table");
        break;
    case S_BLOCK:
        truncated(g, g->images == 0 ? "the file, before any image"
                                    : "the file, before the trailer byte (0x3B)");
        break;
    case S_EXT_LABEL:
        truncated(g, "an extension block");
        break;
    case S_IMAGE_DESC:
        truncated(g, "an image descriptor");
        break;
    case S_LOCAL_CT:
        truncated(g, "a local color table");
        break;
    case S_LZW:
        truncated(g, "an image (before its LZW code size)");
        break;
    case S_SUB_LEN:
    case S_SUB_DATA:
        truncated(g, g->in_image ? "an image data block" : "an extension block");
        break;
    case S_AFTER:
        if (g->after == 0)
            rc = 0;
        else
            fail(g, R_AFTER, 0, 0, NULL);
        break;
    default: /* S_REFUSED: why is set */
        break;
    }
    if (errsz > 0 && rc == 0)
        err[0] = '\0';
    else if (errsz > 0)
        word(g, err, errsz);
    return rc;
}

int gf_gif_check(const unsigned char *p, size_t n, char *err, size_t errsz)
{
    struct gf_gif g;

    gf_gif_init(&g);
    if (p != NULL)
        gf_gif_feed(&g, p, n);
    return gf_gif_finish(&g, err, errsz);
}
