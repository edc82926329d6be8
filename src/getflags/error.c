/* Messages for the error values of gf/error.h. */
#include "gf/error.h"

#include <uv.h>

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
