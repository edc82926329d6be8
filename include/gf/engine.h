/* The loop glue: libcurl's multi socket interface driven by one libuv loop.
 *
 * Each socket curl opens gets one uv_poll_t (CURLMOPT_SOCKETFUNCTION), the
 * multi handle's single timeout is one uv_timer_t (CURLMOPT_TIMERFUNCTION),
 * and finished transfers are reported through one callback. There is no
 * curl_multi_perform loop and no network thread.
 * See libcurl's curl_multi_socket_action(3) and libuv's poll.rst. */
#ifndef GF_ENGINE_H
#define GF_ENGINE_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gf_engine;

/* Runs on the loop thread once per finished transfer, after the easy
 * handle has been removed from the multi handle: the callee owns easy
 * again. requests: how many requests went out for it (each hop of a
 * redirect and each one curl sent again count; 0 when none did). It may
 * add new transfers. */
typedef void (*gf_engine_done_cb)(CURL *easy, CURLcode result, unsigned requests, void *arg);

/* Creates an engine on loop. max_connects sizes curl's connection cache
 * (CURLMOPT_MAXCONNECTS). Returns 0 and *out, or GF_ENOMEM / GF_ECURL /
 * a UV_E* code, and then nothing is left to free. */
int gf_engine_new(struct gf_engine **out, uv_loop_t *loop, long max_connects,
                  gf_engine_done_cb done, void *arg);

/* Starts a transfer whose CURLOPT_TIMEOUT_MS is timeout_ms. The engine
 * borrows easy until done runs or gf_engine_cancel() returns. Returns 0,
 * or GF_ECURL / GF_ENOMEM (done will not run).
 *
 * done always runs for a started transfer, even when curl cannot finish
 * it: a failed curl_multi_socket_action ends every running transfer with
 * an error, and a watchdog ends any transfer still running 2 s past its
 * timeout with CURLE_OPERATION_TIMEDOUT. */
int gf_engine_start(struct gf_engine *e, CURL *easy, uint64_t timeout_ms);

/* 1 while no started transfer waits for a connection attempt slot: one
 * started now goes to curl at once or is the only one waiting. 0 when one
 * already waits (or e is NULL): the owner then holds further transfers
 * back before they take an easy handle. */
int gf_engine_has_room(const struct gf_engine *e);

/* How many streams libcurl 7.88 puts on a new HTTP/2 connection before
 * the server's SETTINGS say how many it takes: transfers beyond that open
 * connections of their own. */
#define GF_ENGINE_STREAMS_BEFORE_SETTINGS 100

/* Until the server's SETTINGS are in, has_room is 0 while n transfers are
 * running: a run that may multiplex starts no more than a new HTTP/2
 * connection takes before them, so that -m above that does not open extra
 * connections. The hold ends when a transfer finishes or about one round
 * trip (as the first handshake measured it) after the first connection
 * is ready, whichever comes first: a slow server's answers are not waited
 * for. No effect when max_connects is at most n; 0: no bound. */
void gf_engine_hold_streams(struct gf_engine *e, unsigned n);

/* Until a first connection is ready (or a transfer ends), only one
 * transfer at a time is handed to curl; the others wait in the engine,
 * where their timeout has not started. For a run that may multiplex:
 * whether the first connection speaks HTTP/2 decides whether the others
 * share it or open their own, and a timeout must not count the wait for
 * the answer (with --timeout 0.6 s, 150 ms round trips and HTTP/1.1 over
 * TLS, requests waiting on the first handshake timed out unsent). */
void gf_engine_one_until_connected(struct gf_engine *e);

/* room(arg), with the arg of gf_engine_new, runs on the loop thread when
 * the engine has room again after curl ran, so that the owner can start
 * transfers it held back. */
typedef void (*gf_engine_room_cb)(void *arg);
void gf_engine_on_room(struct gf_engine *e, gf_engine_room_cb room);

/* first(arg), with the arg of gf_engine_new, runs once on the loop thread
 * right after curl first ran the transfers handed to it (so a new
 * connection is on its way), and in any case before the first request
 * goes out or any transfer is reported done: work that must precede every
 * request can overlap the connection's round trips. */
void gf_engine_on_first(struct gf_engine *e, gf_engine_room_cb first);

/* The most transfers at once that had their request sent (a connection
 * was ready for them) and had not finished: what the server saw. Each is
 * counted from its latest request: one curl sent again (a refused stream,
 * a GOAWAY, a connection that died under it) was not at the server
 * before that. */
unsigned gf_engine_peak_sent(const struct gf_engine *e);

/* How many transfers have their request sent and are not finished now. */
unsigned gf_engine_sent(const struct gf_engine *e);

/* The loop time (ms) at which the latest transfer sent its first request
 * (a redirect's hops and curl's own re-sends aside), 0 before any. */
uint64_t gf_engine_sent_at(const struct gf_engine *e);

/* How many transfers were started and have not ended (or been cancelled),
 * sent or not. */
size_t gf_engine_active(const struct gf_engine *e);

/* Requests sent so far: each hop of a redirect and each request curl sent
 * again by itself (on a connection that died under it, or a refused
 * HTTP/2 stream) count one. */
uint64_t gf_engine_requests(const struct gf_engine *e);

/* New connections curl has made so far (a reused or multiplexed one adds
 * nothing). */
uint64_t gf_engine_connections(const struct gf_engine *e);

/* Why the last gf_engine_start failed, in libcurl's words. */
const char *gf_engine_strerror(const struct gf_engine *e);

/* When (uv_hrtime()) easy, started and not finished, was handed to curl;
 * 0 while it waits in the engine for a connection attempt slot. */
uint64_t gf_engine_handed_ns(const struct gf_engine *e, CURL *easy);

/* Stops a transfer that has not finished; done will not run for it.
 * Returns the requests that went out for it. */
unsigned gf_engine_cancel(struct gf_engine *e, CURL *easy);

/* Releases curl's multi handle and closes every libuv handle. Transfers
 * still running are abandoned: cancel them first. The engine is freed from
 * the last close callback, so the loop must run after this. e may be NULL. */
void gf_engine_close(struct gf_engine *e);

#endif
