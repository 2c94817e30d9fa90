/* Deployment event streams (GET /v1/deployments/{id}/events, Server-Sent
 * Events), served without ever blocking a libmicrohttpd thread.
 *
 * A stream is a buffer between the sd-event loop and libmicrohttpd.  The
 * loop reads the deployment's Redis Stream (XRANGE after the last sequence
 * number sent) with the daemon's async client, when the stream is opened,
 * when the leader announces new events on the deployment-events channel, and
 * every few seconds as a safety net; it appends SSE frames and resumes the
 * connection.  libmicrohttpd's content reader copies out what is buffered;
 * with nothing buffered it suspends the connection (MHD_suspend_connection)
 * and returns 0, so an idle stream costs no thread and no polling.  Ten
 * seconds of silence bring a ": keepalive" comment, which also detects
 * clients that went away.  The stream ends after the event that made the
 * deployment terminal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct request;
struct sse_hub;

#define SSE_KEEPALIVE_USEC (10 * 1000 * 1000)

/* Loop thread.  Borrows s (the server outlives its hub); *ret only on success. */
int sse_hub_new(struct server *s, struct sse_hub **ret);
/* Loop thread: end every stream and resume them all, so that the HTTP
 * server can be stopped (libmicrohttpd must not stop with suspended
 * connections). */
void sse_hub_shutdown(struct sse_hub *h);
/* After the HTTP server stopped. */
struct sse_hub *sse_hub_free(struct sse_hub *h);
/* Loop thread: Redis came back: fetch every stream again. */
void sse_hub_on_redis(struct sse_hub *h, bool connected);

/* HTTP thread: answer req with the event stream of deployment id, starting
 * after sequence number last_seq (0: from the start). */
void sse_hub_attach(struct sse_hub *h, struct request *req, const char *id, uint64_t last_seq);
/* Open streams (any thread). */
size_t sse_hub_streams(struct sse_hub *h);
