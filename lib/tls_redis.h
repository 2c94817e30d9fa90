/* hiredis contexts over TLS, for hiredis 0.14 (which has none): each is one end
 * of a local stream socket whose other end a pump (lib/tls_pump.h) connects to
 * the server through TLS (lib/tls.h).  To hiredis and its callers they are
 * ordinary contexts: timeouts, pipelining, pub/sub and redisFree() work as on
 * TCP; the context's type is REDIS_CONN_UNIX (TCP keepalive runs on the pump's
 * socket).  Both warn at every connect while verification is off.
 * With hiredis >= 1.0 these become redisConnect*() + redisInitiateSSLWithContext(). */
#pragma once

#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "tls.h"

/* A blocking context, like redisConnectWithTimeout(): TCP connect and TLS
 * handshake happen here, bounded by timeout_usec.  On failure returns the
 * -errno of tls_open() with its message in errbuf. */
int tls_redis_connect(const struct tls_peer *peer, uint64_t timeout_usec, redisContext **ret, char *errbuf,
                      size_t errlen);

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
