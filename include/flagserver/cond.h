/* Validators and conditional requests (ETag, Last-Modified, 304). */
#ifndef FLAGSERVER_COND_H
#define FLAGSERVER_COND_H

#include <stddef.h>
#include <stdint.h>

#define FS_ETAG_LEN 48

/* Writes the strong ETag "\"<size hex>-<mtime ns hex>\"" (quotes included)
 * into buf (FS_ETAG_LEN bytes). Returns buf. */
char *fs_cond_etag(uint64_t size, int64_t mtime_sec, long mtime_nsec, char *buf);

/* Decides whether a GET/HEAD may be answered 304. inm and ims are the raw
 * If-None-Match and If-Modified-Since values, NULL when absent. As RFC 9110
 * says, If-None-Match (weak comparison, lists and "*") wins when present;
 * otherwise If-Modified-Since holds when the file is not newer than the date
 * (an unparsable date is ignored). Returns 1 for 304, else 0. */
int fs_cond_not_modified(const char *inm, const char *ims, const char *etag, int64_t mtime_sec);

#endif
