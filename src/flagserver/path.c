#include "flagserver/path.h"

#include <string.h>
#include <strings.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Skips "scheme://authority" of an absolute-form target; returns the offset
 * of the path, or -1 when target is neither origin- nor absolute-form. */
static long path_offset(const char *t, size_t len)
{
    size_t i = 0;

    if (len > 0 && t[0] == '/')
        return 0;
    while (i < len &&
           ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
            (i > 0 && ((t[i] >= '0' && t[i] <= '9') || t[i] == '+' || t[i] == '-' || t[i] == '.'))))
        i++;
    if (i == 0 || len - i < 3 || memcmp(t + i, "://", 3) != 0)
        return -1;
    i += 3;
    while (i < len && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    if (i == len || t[i] != '/')
        return -1;
    return (long)i;
}

/* Checks and appends one decoded segment. */
static int push_segment(const char *seg, size_t n, char *out, size_t outlen, size_t *pos)
{
    if (n == 0)
        return FS_PATH_OK; /* "//" */
    if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
        return FS_PATH_REFUSED;
    if (*pos + (*pos > 0) + n + 1 > outlen)
        return FS_PATH_TOOLONG;
    if (*pos > 0)
        out[(*pos)++] = '/';
    memcpy(out + *pos, seg, n);
    *pos += n;
    out[*pos] = '\0';
    return FS_PATH_OK;
}

int fs_path_map(const char *target, size_t len, char *out, size_t outlen)
{
    char seg[256];
    size_t seglen = 0, pos = 0, i;
    long off = path_offset(target, len);
    int rc;

    if (outlen == 0)
        return FS_PATH_TOOLONG;
    out[0] = '\0';
    if (off < 0)
        return FS_PATH_BAD;
    for (i = (size_t)off; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        int encoded = 0;

        if (c == '?' || c == '#')
            break;
        if (c == '%') {
            int hi, lo;

            if (i + 2 >= len)
                return FS_PATH_BAD;
            hi = hexval(target[i + 1]);
            lo = hexval(target[i + 2]);
            if (hi < 0 || lo < 0)
                return FS_PATH_BAD;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
            encoded = 1;
        }
        if (c == '\0' || c < 0x20 || c == 0x7f)
            return FS_PATH_BAD;
        if (c == '\\')
            return FS_PATH_REFUSED;
        if (c == '/') {
            /* An encoded slash would let a segment check be bypassed. */
            if (encoded)
                return FS_PATH_REFUSED;
            rc = push_segment(seg, seglen, out, outlen, &pos);
            if (rc != FS_PATH_OK)
                return rc;
            seglen = 0;
            continue;
        }
        if (seglen + 1 >= sizeof(seg))
            return FS_PATH_TOOLONG;
        seg[seglen++] = (char)c;
    }
    return push_segment(seg, seglen, out, outlen, &pos);
}

int fs_path_is_within(const char *root, const char *real)
{
    size_t n = strlen(root);

    if (strcmp(root, "/") == 0)
        return real[0] == '/';
    if (strncmp(real, root, n) != 0)
        return 0;
    return real[n] == '\0' || real[n] == '/';
}

const char *fs_path_mime_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash + 1 : name, '.');

    if (dot == NULL)
        return "application/octet-stream";
    if (strcasecmp(dot, ".gif") == 0)
        return "image/gif";
    if (strcasecmp(dot, ".json") == 0)
        return "application/json";
    if (strcasecmp(dot, ".txt") == 0)
        return "text/plain";
    return "application/octet-stream";
}
