#include "flagserver/fault.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {
    [FS_FAULT_NONE] = "",
    [FS_FAULT_REFUSE] = "refuse",
    [FS_FAULT_RESET] = "reset",
    [FS_FAULT_SHORT] = "short",
    [FS_FAULT_BADCHUNK] = "badchunk",
    [FS_FAULT_SILENCE] = "silence",
    [FS_FAULT_TRICKLE] = "trickle",
    [FS_FAULT_LOOP] = "loop",
    [FS_FAULT_REDIRECT_FILE] = "redirect-file",
    [FS_FAULT_REDIRECT_FTP] = "redirect-ftp",
    [FS_FAULT_REDIRECT_OK] = "redirect-ok",
    [FS_FAULT_429] = "429",
    [FS_FAULT_503] = "503",
    [FS_FAULT_418] = "418",
    [FS_FAULT_500] = "500",
    [FS_FAULT_HTML] = "html",
    [FS_FAULT_HUGEHEADERS] = "hugeheaders",
    [FS_FAULT_ENDLESS] = "endless",
    [FS_FAULT_GZIPBOMB] = "gzipbomb",
    [FS_FAULT_GZIPBOMB_TE] = "gzipbomb-te",
    [FS_FAULT_GZIP] = "gzip",
    [FS_FAULT_BADGZIP] = "badgzip",
    [FS_FAULT_UNKNOWN] = "?",
};

#define PREFIX "/fault/"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

fs_fault fs_fault_parse(const char *target, size_t len, size_t *rest_off)
{
    size_t end, n, i;

    *rest_off = 0;
    if (len < PREFIX_LEN || memcmp(target, PREFIX, PREFIX_LEN) != 0)
        return FS_FAULT_NONE;
    for (end = PREFIX_LEN; end < len && target[end] != '/' && target[end] != '?'; end++)
        ;
    n = end - PREFIX_LEN;
    *rest_off = end;
    for (i = FS_FAULT_NONE + 1; i < FS_FAULT_UNKNOWN; i++)
        if (strlen(names[i]) == n && memcmp(names[i], target + PREFIX_LEN, n) == 0)
            return (fs_fault)i;
    return FS_FAULT_UNKNOWN;
}

const char *fs_fault_name(fs_fault f)
{
    if ((unsigned)f > FS_FAULT_UNKNOWN)
        return "?";
    return names[f];
}

/* Bodies of the faults that answer 200 with fixed content. */
static const char badchunk_body[] = "4\r\nGIF8\r\nzz-not-a-size\r\nhello\r\n0\r\n\r\n";
static const char badgzip_body[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
                                   "this is not a deflate stream at all, just some text";
static const char html_body[] = "<!DOCTYPE html>\n<html><head><title>Oops</title></head>"
                                "<body><h1>This is not a flag</h1></body></html>\n";

int fs_fault_fixed_answer(fs_fault f, fs_fault_answer *a)
{
    memset(a, 0, sizeof(*a));
    switch (f) {
    case FS_FAULT_BADCHUNK:
        a->header = "Transfer-Encoding: chunked\r\n";
        a->body = badchunk_body;
        a->len = sizeof(badchunk_body) - 1;
        a->chunked = 1;
        a->close = 1;
        return 1;
    case FS_FAULT_HTML:
        a->ctype = "text/html";
        a->body = html_body;
        a->len = sizeof(html_body) - 1;
        return 1;
    case FS_FAULT_BADGZIP:
        a->header = "Content-Encoding: gzip\r\n";
        a->body = badgzip_body;
        a->len = sizeof(badgzip_body) - 1;
        return 1;
    default:
        return 0;
    }
}

int fs_fault_redirect(fs_fault f, const char *target, size_t len, size_t rest_off, const char **loc,
                      size_t *loc_len)
{
    switch (f) {
    case FS_FAULT_LOOP:
        *loc = target;
        *loc_len = len;
        return 1;
    case FS_FAULT_REDIRECT_FILE:
        *loc = "file:///etc/passwd";
        break;
    case FS_FAULT_REDIRECT_FTP:
        *loc = "ftp://127.0.0.1/x";
        break;
    case FS_FAULT_REDIRECT_OK:
        if (rest_off == len || target[rest_off] != '/') {
            *loc = "/";
            break;
        }
        *loc = target + rest_off;
        *loc_len = len - rest_off;
        return 1;
    default:
        return 0;
    }
    *loc_len = strlen(*loc);
    return 1;
}

#define NBUCKETS 256

typedef struct seen_entry {
    struct seen_entry *next;
    fs_fault fault;
    size_t len;
    char path[];
} seen_entry;

struct fs_fault_seen {
    seen_entry *buckets[NBUCKETS];
};

fs_fault_seen *fs_fault_seen_new(void)
{
    return calloc(1, sizeof(fs_fault_seen));
}

/* FNV-1a: the set is small and keys are short. */
static unsigned bucket_of(fs_fault f, const char *p, size_t len)
{
    uint32_t h = 2166136261u ^ (uint32_t)f;
    size_t i;

    for (i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h % NBUCKETS;
}

int fs_fault_seen_first(fs_fault_seen *set, fs_fault f, const char *path, size_t len)
{
    unsigned b = bucket_of(f, path, len);
    seen_entry *e;

    for (e = set->buckets[b]; e != NULL; e = e->next)
        if (e->fault == f && e->len == len && memcmp(e->path, path, len) == 0)
            return 0;
    e = malloc(sizeof(*e) + len + 1);
    if (e == NULL)
        return -1;
    e->fault = f;
    e->len = len;
    memcpy(e->path, path, len);
    e->path[len] = '\0';
    e->next = set->buckets[b];
    set->buckets[b] = e;
    return 1;
}

void fs_fault_seen_free(fs_fault_seen *set)
{
    size_t i;

    if (set == NULL)
        return;
    for (i = 0; i < NBUCKETS; i++) {
        seen_entry *e = set->buckets[i];

        while (e != NULL) {
            seen_entry *next = e->next;

            free(e);
            e = next;
        }
    }
    free(set);
}
