#include "flagserver/gz.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

#ifdef FS_HAVE_ZLIB
#include <zlib.h>
#endif

/* ---- CRC-32 ---------------------------------------------------------- */

static uint32_t crc_table[256];
static uv_once_t crc_once = UV_ONCE_INIT;

static void crc_init(void)
{
    uint32_t i, k, c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t fs_gz_crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i;

    uv_once(&crc_once, crc_init);
    crc = ~crc;
    for (i = 0; i < n; i++)
        crc = crc_table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- builtin deflate writer --------------------------------------------- */

typedef struct bitw {
    unsigned char *p;
    size_t len, cap;
    uint32_t acc; /* pending bits, least significant first */
    int nbits;
    int failed;
} bitw;

static void put_byte(bitw *w, unsigned char c)
{
    if (w->failed)
        return;
    if (w->len == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        unsigned char *p = realloc(w->p, cap);

        if (p == NULL) {
            w->failed = 1;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    w->p[w->len++] = c;
}

static void put_bits(bitw *w, uint32_t v, int n)
{
    w->acc |= v << w->nbits;
    w->nbits += n;
    while (w->nbits >= 8) {
        put_byte(w, (unsigned char)(w->acc & 0xff));
        w->acc >>= 8;
        w->nbits -= 8;
    }
}

/* Huffman codes are defined most significant bit first. */
static void put_code(bitw *w, uint32_t code, int n)
{
    uint32_t r = 0;
    int i;

    for (i = 0; i < n; i++)
        r |= ((code >> i) & 1u) << (n - 1 - i);
    put_bits(w, r, n);
}

static void align(bitw *w)
{
    if (w->nbits > 0)
        put_bits(w, 0, 8 - w->nbits);
}

static void put_le32(bitw *w, uint32_t v)
{
    int i;

    for (i = 0; i < 4; i++)
        put_byte(w, (unsigned char)(v >> (8 * i)));
}

static void gzip_header(bitw *w)
{
    /* magic, deflate, no flags, no mtime, no extra flags, OS unknown */
    static const unsigned char h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    size_t i;

    for (i = 0; i < sizeof(h); i++)
        put_byte(w, h[i]);
}

static int finish(bitw *w, fs_bytes *out)
{
    if (w->failed) {
        free(w->p);
        out->data = NULL;
        out->len = 0;
        return -1;
    }
    out->data = w->p;
    out->len = w->len;
    return 0;
}

int fs_gz_store_builtin(const void *in, size_t len, fs_bytes *out)
{
    const unsigned char *s = in;
    bitw w = {0};
    size_t off = 0;

    gzip_header(&w);
    do {
        size_t n = len - off > 65535 ? 65535 : len - off;
        size_t i;

        put_bits(&w, off + n == len, 1); /* BFINAL */
        put_bits(&w, 0, 2);              /* stored */
        align(&w);
        put_byte(&w, (unsigned char)(n & 0xff));
        put_byte(&w, (unsigned char)(n >> 8));
        put_byte(&w, (unsigned char)(~n & 0xff));
        put_byte(&w, (unsigned char)((~n >> 8) & 0xff));
        for (i = 0; i < n; i++)
            put_byte(&w, s[off + i]);
        off += n;
    } while (off < len);
    put_le32(&w, fs_gz_crc32(0, in, len));
    put_le32(&w, (uint32_t)len);
    return finish(&w, out);
}

int fs_gz_zeros_builtin(uint64_t n, fs_bytes *out)
{
    static const unsigned char zeros[65536];
    bitw w = {0};
    uint64_t left, done;
    uint32_t crc = 0;

    gzip_header(&w);
    put_bits(&w, 1, 1); /* BFINAL */
    put_bits(&w, 1, 2); /* fixed Huffman codes */
    left = n;
    if (left > 0) {
        put_code(&w, 0x30, 8); /* literal 0 */
        left--;
    }
    /* Every further run of 258 zeros is one match at distance 1: length
     * symbol 285 (8 bits, no extra) and distance symbol 0 (5 bits). */
    while (left >= 258 && !w.failed) {
        put_code(&w, 0xc5, 8);
        put_code(&w, 0, 5);
        left -= 258;
    }
    while (left > 0) {
        put_code(&w, 0x30, 8);
        left--;
    }
    put_code(&w, 0, 7); /* end of block */
    align(&w);
    for (done = 0; done < n;) {
        size_t k = n - done > sizeof(zeros) ? sizeof(zeros) : (size_t)(n - done);

        crc = fs_gz_crc32(crc, zeros, k);
        done += k;
    }
    put_le32(&w, crc);
    put_le32(&w, (uint32_t)n);
    return finish(&w, out);
}

/* ---- public entry points ------------------------------------------------ */

#ifdef FS_HAVE_ZLIB

int fs_gz_have_zlib(void)
{
    return 1;
}

/* Runs deflate over `total` bytes from `next` (or zeros when in is NULL). */
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

#else

int fs_gz_have_zlib(void)
{
    return 0;
}

int fs_gz_compress(const void *in, size_t len, fs_bytes *out)
{
    return fs_gz_store_builtin(in, len, out);
}

int fs_gz_zeros(uint64_t n, fs_bytes *out)
{
    return fs_gz_zeros_builtin(n, out);
}

#endif
