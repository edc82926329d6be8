/* One HTTP/1.1 connection: parsing, the request's delay and file, writing
 * the answer (fault.c decides the faults' answers).
 *
 * One request at a time: after a request's message the parser pauses until
 * its answer is written, so pipelined requests are answered in order, one
 * after the other. A request is in progress (counted in srv->inflight) from
 * the end of its headers to the last byte of its answer, or until the
 * connection goes. */
#ifndef FLAGSERVER_CONN_H
#define FLAGSERVER_CONN_H

#include "flagserver/server.h"

/* Takes over the accepted, non-blocking socket fd and starts reading. On
 * failure fd has been closed and a UV_E* code is returned. */
int fs_conn_accept(fs_server *srv, int fd);

/* Closes every connection of srv at once: requests not yet answered are
 * logged with status 499 (or what was already sent) and dropped. Each
 * connection is freed from its handles' close callbacks. */
void fs_conn_close_all(fs_server *srv);

#endif
