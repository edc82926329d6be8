/* Date formats: IMF-fixdate for HTTP headers, ISO 8601 for the access log. */
#ifndef FLAGSERVER_HTTPDATE_H
#define FLAGSERVER_HTTPDATE_H

#include <stddef.h>
#include <stdint.h>

#define FS_HTTPDATE_LEN 30 /* "Sun, 06 Nov 1994 08:49:37 GMT" plus NUL */
#define FS_LOGTIME_LEN 32  /* "2026-11-21T20:41:03.123Z" plus NUL, with room */

/* Writes t (seconds since the epoch, UTC) as IMF-fixdate. buf must hold
 * FS_HTTPDATE_LEN bytes. Returns buf. Locale-independent. */
char *fs_httpdate_format(int64_t t, char *buf);

/* Parses an IMF-fixdate (surrounding blanks allowed). Returns 0 and sets *t,
 * or -1 when s is not a valid IMF-fixdate (the caller then ignores the
 * header, as RFC 9110 asks). */
int fs_httpdate_parse(const char *s, int64_t *t);

/* Writes ms (milliseconds since the epoch) as "YYYY-MM-DDTHH:MM:SS.mmmZ".
 * buf must hold FS_LOGTIME_LEN bytes. Returns buf. */
char *fs_logtime_format(int64_t ms, char *buf);

#endif
