/* TLS for Redis connections, with OpenSSL: the settings, the TCP connect, the
 * handshake and verification, and what a failure is called.
 *
 * Debian 12's hiredis (0.14) has no TLS and reads and writes its fd itself, so
 * TLS sits under it (docs/architecture.md, "TLS to Redis"): lib/tls_pump.c
 * shuttles bytes between a session opened here and a local socket hiredis
 * owns, lib/tls_redis.c hands hiredis that socket.  With hiredis >= 1.0
 * (redisInitiateSSLWithContext) both go and this file keeps the settings.
 *
 * Settings are process-wide: every Redis connection with ssl=true (rediss://)
 * uses the last tls_set_options(), or, if that was never called, the
 * COORD_TLS_* environment read at the first TLS connection.  The server's
 * certificate chain and name are verified (against the system store unless a
 * CA file is given) unless insecure_skip_verify; never a plain-text fallback. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "macro.h"

struct tls_options {
        char *ca_file;             /* PEM CA bundle to verify the server with; NULL: the system store */
        char *cert_file;           /* client certificate (chain), PEM; NULL: none */
        char *key_file;            /* its private key, PEM; NULL: read from cert_file */
        bool insecure_skip_verify; /* no verification at all; warned about at every connect */
};

/* Which setting a failure is about (tls_options_check()). */
enum tls_file {
        TLS_FILE_NONE,
        TLS_FILE_CA,
        TLS_FILE_CERT,
        TLS_FILE_KEY,
};

/* Free the strings of o and zero it.  o may be NULL. */
void tls_options_done(struct tls_options *o);
/* Fill *ret from COORD_TLS_CA_FILE, COORD_TLS_CERT_FILE and COORD_TLS_KEY_FILE
 * (unset or empty: NULL).  There is no environment switch for skipping
 * verification.  0 or -ENOMEM; *ret untouched on failure. */
int tls_options_from_env(struct tls_options *ret);
/* Use opts (copied) for every TLS connection opened from now on; open ones
 * keep what they had.  Files are loaded now: on failure returns -errno
 * (-ENOENT, -EACCES: unreadable; -EINVAL: not a usable certificate or key)
 * with a message naming the file, and the settings in force stay.  NULL goes
 * back to the start: the environment is read again at the next connection. */
int tls_set_options(const struct tls_options *opts, char *errbuf, size_t errlen);
/* Load opts as tls_set_options() would, without putting them in force (and
 * without its warning about an expired certificate, nor the system store
 * when no CA file is given: that is no file to check): 0, or its -errno and
 * message, and in *ret_file (may be NULL) the setting the failure is about.
 * A key protected by a passphrase is refused (-EINVAL), by both: nothing can
 * type one for a daemon. */
int tls_options_check(const struct tls_options *opts, enum tls_file *ret_file, char *errbuf, size_t errlen);
/* Whether a and b name the same files and the same verification. */
bool tls_options_equal(const struct tls_options *a, const struct tls_options *b);
/* tls_set_options() with tls_options_from_env(). */
int tls_setup_from_env(char *errbuf, size_t errlen);
/* The settings in force, kept to be put back: a daemon trying new
 * credentials (redis_client_set_url()) installs them with tls_set_options()
 * and, when they do not work, restores what it saved, the files as they were
 * read then (they may have been rewritten since).  tls_settings_save() returns
 * NULL when out of memory; tls_settings_restore() consumes s. */
struct tls_settings;
struct tls_settings *tls_settings_save(void);
void tls_settings_restore(struct tls_settings *s);
struct tls_settings *tls_settings_free(struct tls_settings *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct tls_settings *, tls_settings_free)
/* Whether the settings in force skip verification (loading them if needed:
 * false when they cannot be loaded). */
bool tls_insecure(void);

/* A server to connect to.  name is what the certificate must be valid for and
 * the SNI (sslHost=); NULL: host. */
struct tls_peer {
        const char *host;
        int port;
        const char *name;
};

/* Wait until fd has one of events, or the deadline passes (now_usec() clock;
 * 0: none): 0, -ETIMEDOUT, -ECANCELED when abort_fd (ignored when < 0) hung
 * up or failed, or -errno. */
int tls_wait(int fd, short events, uint64_t deadline_usec, int abort_fd);

/* Connect to peer over TCP and complete the TLS handshake before
 * deadline_usec, giving up early when abort_fd hangs up.  On success *ret owns
 * the session and its non-blocking socket (SSL_get_fd()); free with
 * tls_close().  On failure returns -errno with a message naming the server:
 * the connect errors as for plain text (-ECONNREFUSED, -EHOSTUNREACH, ...),
 * -ETIMEDOUT, -ECANCELED, -EPERM when the server's certificate or name failed
 * verification (the X.509 reason in the message), -EPROTO when the server
 * does not speak TLS there or the handshake failed otherwise, -EACCES when
 * the server refused our client certificate, -ECONNRESET when it closed the
 * connection, -EINVAL when the settings cannot be loaded. */
int tls_open(const struct tls_peer *peer, uint64_t deadline_usec, int abort_fd, SSL **ret, char *errbuf,
             size_t errlen);
/* Send close_notify when clean (best effort, never blocks), close the socket,
 * free.  Returns NULL. */
SSL *tls_close(SSL *ssl, bool clean);
DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free)

/* Describe why an I/O call on ssl failed (ssl_error from SSL_get_error(),
 * the OpenSSL error queue, the verification result), as "TLS ... with Redis
 * at WHERE failed: REASON[; hint]", and return the -errno named for
 * tls_open().  Clears the error queue. */
int tls_describe_failure(SSL *ssl, int ssl_error, const char *what, const char *where, char *buf, size_t len);
