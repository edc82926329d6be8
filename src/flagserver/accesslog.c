#include "flagserver/accesslog.h"

#include <inttypes.h>
#include <string.h>

#include "flagserver/httpdate.h"

/* Appends s escaped so that the line stays space-separated and printable. */
static size_t put_field(char *buf, size_t pos, size_t limit, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    if (s == NULL || n == 0) {
        if (pos < limit)
            buf[pos++] = '-';
        return pos;
    }
    for (i = 0; i < n && pos + 3 <= limit; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c > 0x20 && c < 0x7f) {
            buf[pos++] = (char)c;
        } else {
            buf[pos++] = '%';
            buf[pos++] = hex[c >> 4];
            buf[pos++] = hex[c & 15];
        }
    }
    return pos;
}

size_t fs_accesslog_format(const fs_accesslog_entry *e, char *buf, size_t len)
{
    char tail[96];
    char when[FS_LOGTIME_LEN];
    size_t pos, limit;
    int n;

    n = snprintf(tail, sizeof(tail), " %d delay=%" PRIu64 " bytes=%" PRIu64 " inflight=%u\n",
                 e->status, e->delay_ms, e->bytes, e->inflight);
    if (n < 0 || (size_t)n >= sizeof(tail))
        n = 0;
    /* Reserve room for the fixed tail so a long target is what gets cut. */
    limit = len - (size_t)n - 4; /* two separators and the NUL */
    fs_logtime_format(e->time_ms, when);
    pos = strlen(when);
    memcpy(buf, when, pos);
    buf[pos++] = ' ';
    pos = put_field(buf, pos, limit, e->method, e->method ? strlen(e->method) : 0);
    buf[pos++] = ' ';
    pos = put_field(buf, pos, limit, e->target, e->target_len);
    memcpy(buf + pos, tail, (size_t)n);
    pos += (size_t)n;
    buf[pos] = '\0';
    return pos;
}

int fs_accesslog_write(FILE *out, const fs_accesslog_entry *e)
{
    char line[2048];
    size_t n = fs_accesslog_format(e, line, sizeof(line));

    if (fwrite(line, 1, n, out) != n || fflush(out) != 0)
        return -1;
    return 0;
}
