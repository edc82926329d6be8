/* One HTTP/1.1 connection: parsing, request queue, responses, faults.
 *
 * Requests are answered strictly in the order they arrived (pipelining),
 * each after its delay and file load; only the oldest one writes. A request
 * is in progress (counted in srv->inflight) from the end of its headers to
 * the last byte of its answer, or until the connection goes. */
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
