/* Byte pumps between TLS sessions and local sockets, one thread each.
 *
 * hiredis 0.14 does its own read(2) and write(2) on an async context's fd, so
 * an async TLS connection reaches it as one end of a connected local stream
 * socket (blocking contexts do their TLS in lib/tls_redis.c instead); a pump
 * thread owns the other end and the TLS session (lib/tls.c) and copies bytes
 * both ways.  Pump threads block every signal, never block outside poll(2),
 * and own only CLOEXEC descriptors, so fork+exec (hooks, `coordctl lock`
 * children) neither inherits nor disturbs them.
 *
 * A pump ends with either side: hiredis closing its end (redisAsyncFree())
 * makes it send close_notify and go; the server closing or
 * failing makes it deliver what it already read, then close the local end,
 * which hiredis sees as the server closing the connection.  When the TLS side
 * fails (or, on the connecting path, never comes up) before any byte from the
 * server reached hiredis, the pump first answers with a RESP error
 * "-TLS: REASON", so the reason reaches whoever waits for the first reply:
 * a refused client certificate, for one, shows only there with TLS 1.3.
 * At exit(), pumps still running are stopped and awaited (at most 1 s). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tls.h"

#define TLS_PUMP_ERROR_PREFIX "TLS: "

/* Pump between a TLS session to peer and plain_fd, our end of a connected
 * local stream socket (an async hiredis context's).  The pump opens the
 * session itself: tls_open(peer, deadline_usec), given up as soon as the other
 * end of plain_fd goes away.  peer is copied; plain_fd is taken, also on
 * failure.  0 or -errno. */
int tls_pump_start_connect(const struct tls_peer *peer, uint64_t deadline_usec, int plain_fd);

/* Pumps running in this process. */
unsigned tls_pump_count(void);
/* Wait until no pump runs, at most timeout_usec: 0 or -ETIMEDOUT.  With stop,
 * first make every pump end (as if hiredis had closed its end). */
int tls_pump_wait_idle(uint64_t timeout_usec, bool stop);

/* The reason, when the text of an error reply is a pump's failure answer
 * (TLS_PUMP_ERROR_PREFIX ...); NULL otherwise.  Points into s. */
const char *tls_pump_failure(const char *s);
