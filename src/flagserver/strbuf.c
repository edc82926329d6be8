#include "flagserver/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fs_strbuf_init(fs_strbuf *b)
{
    memset(b, 0, sizeof(*b));
}

static int grow(fs_strbuf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 64;
    char *p;

    while (cap < need) {
        if (cap > ((size_t)-1) / 2)
            return -1;
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int fs_strbuf_append_capped(fs_strbuf *b, const void *p, size_t n, size_t max)
{
    if (b->failed || b->len + n > max || (b->len + n + 1 > b->cap && grow(b, b->len + n + 1))) {
        b->failed = 1;
        return -1;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int fs_strbuf_append(fs_strbuf *b, const void *p, size_t n)
{
    return fs_strbuf_append_capped(b, p, n, (size_t)-1 / 2);
}

int fs_strbuf_printf(fs_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (b->len + (size_t)n + 1 > b->cap && grow(b, b->len + (size_t)n + 1))) {
        b->failed = 1;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void fs_strbuf_free(fs_strbuf *b)
{
    free(b->data);
    fs_strbuf_init(b);
}
