/* The access log: one line per request, written when the request is over.
 *
 *   TIME METHOD TARGET STATUS delay=MS bytes=N inflight=N
 *
 * TIME is when the request's headers were complete (ISO 8601 UTC, ms),
 * METHOD and TARGET are as received ("-" when unknown, bytes outside
 * 0x21..0x7e escaped as %XX), STATUS is the status line sent (499 when the
 * client went away before any answer, 0 when none was sent on purpose),
 * delay the delay applied, bytes the body bytes written, inflight the number
 * of requests in progress when this one arrived, itself included. */
#ifndef FLAGSERVER_ACCESSLOG_H
#define FLAGSERVER_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct fs_accesslog_entry {
    int64_t time_ms;
    const char *method; /* NULL = unknown */
    const char *target; /* NULL = unknown; need not be NUL-free */
    size_t target_len;
    int status;
    uint64_t delay_ms;
    uint64_t bytes;
    unsigned inflight;
} fs_accesslog_entry;

/* Formats e as one line ending in '\n' into buf (truncating an overlong
 * target). Returns the line's length, always < len. len must be >= 128. */
size_t fs_accesslog_format(const fs_accesslog_entry *e, char *buf, size_t len);

/* Writes the line to out and flushes it so a reader sees it at once.
 * Returns 0, or -1 when the write failed. */
int fs_accesslog_write(FILE *out, const fs_accesslog_entry *e);

#endif
