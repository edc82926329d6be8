/* Messages for the error values of gf/error.h. */
#include "gf/error.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "gf/text.h"

void gf_verrorf(char *err, size_t errsz, const char *fmt, va_list ap)
{
    if (err == NULL || errsz == 0)
        return;
    int n = vsnprintf(err, errsz, fmt, ap);
    if (n >= 0 && (size_t)n >= errsz) /* no half character left by the cut */
        err[gf_utf8_cut(err, strlen(err))] = '\0';
}

void gf_errorf(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gf_verrorf(err, errsz, fmt, ap);
    va_end(ap);
}

const char *gf_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case GF_EUSAGE:
        return "invalid command line";
    case GF_ENOMEM:
        return "out of memory";
    case GF_ECURL:
        return "libcurl could not be initialised";
    case GF_EMETADATA:
        return "metadata.json is unusable";
    case GF_ENAME:
        return "country name cannot become a file name";
    case GF_ETOOBIG:
        return "response body is larger than allowed";
    case GF_EGIF:
        return "image is not a complete GIF";
    }
    /* uv_strerror() allocates (and leaks) a message for a code it does not
     * know, so only the codes libuv lists are passed to it. */
    switch (err) {
#define GF_UV_CASE(name, msg) case UV_##name:
        UV_ERRNO_MAP(GF_UV_CASE)
#undef GF_UV_CASE
        return uv_strerror(err);
    }
    return "unknown error";
}
