#include "flagserver/cond.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "flagserver/httpdate.h"

char *fs_cond_etag(uint64_t size, int64_t mtime_sec, long mtime_nsec, char *buf)
{
    uint64_t ns = (uint64_t)mtime_sec * UINT64_C(1000000000) + (uint64_t)mtime_nsec;

    snprintf(buf, FS_ETAG_LEN, "\"%" PRIx64 "-%" PRIx64 "\"", size, ns);
    return buf;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Walks the comma-separated entity tags of an If-None-Match value. */
static int etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;

    while (*p != '\0') {
        const char *start, *end;

        while (is_blank(*p) || *p == ',')
            p++;
        start = p;
        while (*p != '\0' && *p != ',')
            p++;
        end = p;
        while (end > start && is_blank(end[-1]))
            end--;
        if (end - start == 1 && *start == '*')
            return 1;
        if (end - start >= 2 && start[0] == 'W' && start[1] == '/')
            start += 2; /* weak comparison: W/ is ignored */
        if ((size_t)(end - start) == elen && memcmp(start, etag, elen) == 0)
            return 1;
    }
    return 0;
}

int fs_cond_not_modified(const char *inm, const char *ims, const char *etag, int64_t mtime_sec)
{
    int64_t t;

    if (inm != NULL)
        return etag_listed(inm, etag);
    if (ims != NULL && fs_httpdate_parse(ims, &t) == 0)
        return mtime_sec <= t;
    return 0;
}
