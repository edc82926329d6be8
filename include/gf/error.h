/* Error values shared by every getflags module.
 *
 * Functions return 0 on success and a negative value on failure: either one
 * of the GF_E* codes below or an unchanged libuv UV_E* code (a negated errno).
 * gf_strerror() turns either kind into a message a user can act on. */
#ifndef GF_ERROR_H
#define GF_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum {
    GF_EUSAGE = -10001,    /* bad command line */
    GF_ENOMEM = -10002,    /* allocation failed */
    GF_ECURL = -10003,     /* libcurl refused to initialise or to take a handle */
    GF_EMETADATA = -10004, /* metadata.json unusable */
    GF_ENAME = -10005,     /* country name cannot become a file name */
    GF_ETOOBIG = -10006,   /* body larger than its cap */
    GF_EGIF = -10007,      /* image body is not one complete GIF */
};

/* Process exit statuses, as documented in README. */
enum {
    GF_EXIT_OK = 0,
    GF_EXIT_ERRORS = 1,
    GF_EXIT_USAGE = 2,
    GF_EXIT_CANNOT_START = 3,
    GF_EXIT_SIGHUP = 129,
    GF_EXIT_SIGINT = 130,
    GF_EXIT_SIGTERM = 143,
};

/* Returns a static message for a GF_E* or UV_E* value. Never NULL. */
const char *gf_strerror(int err);

/* The one way a function hands back error detail: a caller's buffer err of
 * errsz bytes (char *err, size_t errsz in every prototype). Writes the
 * printf-style message there, cut to fit on a UTF-8 boundary; does
 * nothing when err is NULL or errsz is 0. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void gf_errorf(char *err, size_t errsz, const char *fmt, ...);

/* gf_errorf() with a va_list. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 0)))
#endif
void gf_verrorf(char *err, size_t errsz, const char *fmt, va_list ap);

#endif
