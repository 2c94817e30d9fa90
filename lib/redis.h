/* Synchronous Redis connections (hiredis), for command-line tools and workers.
 *
 * redis_connect() resolves Sentinel endpoints (service_name) to the current
 * master (SENTINEL get-master-addr-by-name, then ROLE check on the master),
 * connects with the URL's connect timeout, authenticates (AUTH pass, or AUTH
 * user pass for ACL users), SELECTs the db and sets a command timeout.
 * ssl=true (rediss://) connects every sentinel and the master with TLS
 * (lib/tls_redis.h; settings from tls_set_options() or COORD_TLS_*), verifying
 * the certificate and the name (sslHost=, else the host connected to); a TLS
 * failure is an error, never a plain-text fallback.  A plain connection the
 * server drops at once gets the hint "does it need ssl=true?".
 * hiredis writes with write(2): programs must ignore SIGPIPE, or a Redis that
 * went away kills them on the next command. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "macro.h"
#include "redis_url.h"

/* hiredis' synchronous calls, for every context redis_connect() makes, TLS
 * ones included (their TLS runs on the caller's thread, tls_redis.h): use
 * these, never redisCommand*(), redisGetReply(), redisBufferRead() or
 * redisFree() themselves.  Same arguments and results as hiredis'. */
redisReply *redis_ctx_command(redisContext *c, const char *fmt, ...); /* hiredis formats: %s %b ... */
redisReply *redis_ctx_vcommand(redisContext *c, const char *fmt, va_list ap);
redisReply *redis_ctx_commandargv(redisContext *c, int argc, const char **argv, const size_t *argvlen);
int redis_ctx_get_reply(redisContext *c, void **reply);
int redis_ctx_buffer_read(redisContext *c);
/* Whether a reply may be read without the socket turning readable (bytes
 * decrypted but not yet fed to the reader): check before poll(2). */
bool redis_ctx_buffered(const redisContext *c);
void redis_ctx_free(redisContext *c);
/* Close c's connection now (the server sees it go); its memory (over TLS, the
 * session too) waits for redis_ctx_free(), off a latency-critical path. */
void redis_ctx_close(redisContext *c);

/* Scope-bound hiredis handles: a reply, a synchronous context. */
DEFINE_TRIVIAL_CLEANUP_FUNC(redisReply *, freeReplyObject)
#define _cleanup_reply_ _cleanup_(freeReplyObjectp)
DEFINE_TRIVIAL_CLEANUP_FUNC(redisContext *, redis_ctx_free)
#define _cleanup_redis_ _cleanup_(redis_ctx_freep)

/* The one translation of a failed hiredis context into -errno, for every
 * module: saved_errno is errno right after the failing call.  -ENOMEM for a
 * NULL context; -ETIMEDOUT when a socket timeout expired; the socket's errno;
 * -ECONNRESET at end of stream; -EPROTO for a protocol error (not Redis on the
 * other end, or a stream out of step); -ECONNREFUSED, -EHOSTUNREACH, -EIO from
 * the error text otherwise. */
int redis_context_errno(const redisContext *c, int saved_errno);

/* Connect.  command_timeout_usec 0 means none.  On failure returns -errno
 * (-ECONNREFUSED, -ETIMEDOUT, -EACCES for auth, -EHOSTUNREACH when no sentinel
 * knows the master; with TLS also -EPERM: the server's certificate failed
 * verification, -EPROTO: no TLS on that port, -ECONNABORTED: the server
 * refused the session after the handshake (a client certificate), -EINVAL:
 * the TLS files cannot be loaded, or ssl=true with a unix socket) and writes
 * a message (password masked) to errbuf. */
int redis_connect(const struct redis_url *u, uint64_t command_timeout_usec, redisContext **ret,
                  char *errbuf, size_t errlen);
/* Resolve the address to connect to: the host itself, or the sentinel's master. */
int redis_resolve_master(const struct redis_url *u, char **ret_host, int *ret_port, char *errbuf, size_t errlen);

/* Run a command; a NULL reply (I/O error) or a REDIS_REPLY_ERROR becomes a
 * negative errno (-EIO / -EPROTO) with the text in errbuf.  On success *ret
 * owns the reply.  Typed helpers for the common cases.
 * Also: -ETIMEDOUT when the command timeout expired, -ECONNRESET when the server
 * closed the connection, -ENOTCONN on a context that already failed (hiredis
 * contexts are unusable after an I/O error: reconnect). */
int redis_command(redisContext *c, redisReply **ret, char *errbuf, size_t errlen, const char *fmt, ...);
int redis_commandargv(redisContext *c, redisReply **ret, char *errbuf, size_t errlen, int argc,
                      const char **argv, const size_t *argvlen);

/* The value of field name in an HGETALL reply (a flat field/value array), or
 * NULL when absent, not a string, or reply is not an array.  Borrowed. */
const char *redis_reply_field(const redisReply *reply, const char *name);
