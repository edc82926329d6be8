/* A growable byte string, used to build response heads. */
#ifndef FLAGSERVER_STRBUF_H
#define FLAGSERVER_STRBUF_H

#include <stddef.h>

typedef struct fs_strbuf {
    char *data; /* NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    int failed; /* an append ran out of memory; the content is then truncated */
} fs_strbuf;

/* Empty buffer without allocating. */
void fs_strbuf_init(fs_strbuf *b);

/* Append bytes / a formatted string. Return 0, or -1 (and set failed) when
 * out of memory. max caps the total length: appends past it fail too. */
int fs_strbuf_append(fs_strbuf *b, const void *p, size_t n);
int fs_strbuf_append_capped(fs_strbuf *b, const void *p, size_t n, size_t max);
int fs_strbuf_printf(fs_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Frees the storage; b is then empty and reusable. */
void fs_strbuf_free(fs_strbuf *b);

#endif
