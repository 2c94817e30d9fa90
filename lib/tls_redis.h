/* hiredis contexts over TLS, for hiredis 0.14 (which has none).  A blocking
 * context is hiredis' own over the TCP socket of the handshake (lib/tls.h);
 * its TLS runs on the caller's thread, in the functions below.  An async
 * context is one end of a local stream socket whose other end a pump
 * (lib/tls_pump.h) connects to the server through TLS: to hiredis and its
 * callers an ordinary context.  Both warn at every connect while
 * verification is off.  With hiredis >= 1.0 these become redisConnect*() +
 * redisInitiateSSLWithContext(). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "tls.h"

/* A blocking context, like redisConnectWithTimeout(): TCP connect and TLS
 * handshake happen here, bounded by timeout_usec.  On failure returns the
 * -errno of tls_open() with its message in errbuf.
 *
 * Its TLS runs on the caller's thread, so hiredis' own I/O calls
 * (redisCommand*(), redisGetReply(), redisBufferRead(), redisFree()) must not
 * be used on it: the functions below (and lib/redis.h's redis_ctx_*()) work
 * on every context, TLS or not.  Appending commands (redisAppendCommand*())
 * and reading buffered replies (redisGetReplyFromReader()) are fine. */
int tls_redis_connect(const struct tls_peer *peer, uint64_t timeout_usec, redisContext **ret, char *errbuf,
                      size_t errlen);
/* Whether c is a TLS context from tls_redis_connect(). */
bool tls_redis_is_tls(const redisContext *c);
/* redisGetReply(): send what is queued, read until a reply is complete.
 * REDIS_OK or REDIS_ERR with c->err/errstr set as hiredis would (a timeout is
 * REDIS_ERR_IO with errno EAGAIN). */
int tls_redis_get_reply(redisContext *c, void **reply);
/* redisvCommand() and redisCommandArgv(), for every context. */
redisReply *tls_redis_vcommand(redisContext *c, const char *fmt, va_list ap);
redisReply *tls_redis_commandargv(redisContext *c, int argc, const char **argv, const size_t *argvlen);
/* redisBufferRead(): one read into the reader (blocks until data). */
int tls_redis_buffer_read(redisContext *c);
/* Whether decrypted bytes wait inside the session (poll(2) on the socket
 * does not see them). */
bool tls_redis_buffered(const redisContext *c);
/* Why the TLS side failed before the server said anything (a refused client
 * certificate), for messages; NULL otherwise. */
const char *tls_redis_failure(const redisContext *c);
/* redisFree() for every context. */
void tls_redis_free(redisContext *c);

/* A non-blocking context for the async API, like redisAsyncConnect(): it
 * returns at once, while the pump connects, within timeout_usec, and
 * completes the handshake.  A failure there reaches the context as the error
 * reply "TLS: REASON" to its first command, then the connection closes (see
 * tls_pump.h).  The socket is made with redisAsyncConnectUnix() to a listener
 * that lives for this call only, in a fresh 0700 directory under $TMPDIR (or
 * /tmp), accepted at once and checked to come from this process.  Returns
 * -errno with a message when the context cannot be made. */
int tls_redis_async_connect(const struct tls_peer *peer, uint64_t timeout_usec, redisAsyncContext **ret,
                            char *errbuf, size_t errlen);
