/* See tls_redis.h.
 *
 * The blocking path does TLS on the caller's thread: redisConnectFd() on the
 * TCP socket, whose I/O only the functions below do (hiredis' reader and
 * output buffer, with SSL_read()/SSL_write()).  The async API of
 * hiredis 0.14 has no way to adopt an fd (redisAsyncInitialize() is static),
 * so the async path lets redisAsyncConnectUnix() connect to a one-shot
 * listener and takes the accepted end for the pump: a unix connect completes
 * in the kernel at once, so connect, accept and removal of the listener all
 * happen inside this call and leave nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <hiredis/sds.h>
#include <openssl/err.h>

#include "duration.h"
#include "log.h"
#include "macro.h"
#include "strutil.h"
#include "tls_pump.h"
#include "tls_redis.h"

/* Longest $TMPDIR used for the rendezvous; longer ones fall back to /tmp. */
#define RENDEZVOUS_BASE_MAX 64

struct rendezvous {
        char dir[RENDEZVOUS_BASE_MAX + 32];
        struct sockaddr_un sa;
        int fd;
};

static void warn_insecure(const struct tls_peer *peer) {
        if (tls_insecure())
                log_warning("TLS to Redis at %s:%d: certificate verification is OFF (tls_insecure_skip_verify): "
                            "anyone on the path can impersonate the server",
                            peer->host, peer->port);
}

static uint64_t deadline_after(uint64_t timeout_usec) {
        return timeout_usec == 0 ? 0 : now_usec() + timeout_usec;
}

/* ---- sync: TLS on the caller's thread ---------------------------------------- */

/* The sessions of the blocking contexts, by context.  A context is used by one
 * thread at a time; the table itself is shared. */
struct sync_session {
        redisContext *c;
        SSL *ssl;
        bool relayed;           /* a byte from the server reached the reader */
        char where[300];        /* "host:port" for messages */
        char failure[512];      /* why the TLS side failed, "" while it did not */
};

static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sync_session **sync_v;
static size_t sync_n, sync_cap;

static struct sync_session *sync_find(const redisContext *c) {
        struct sync_session *s = NULL;

        if (!c)
                return NULL;
        pthread_mutex_lock(&sync_lock);
        for (size_t i = 0; i < sync_n; i++)
                if (sync_v[i]->c == c) {
                        s = sync_v[i];
                        break;
                }
        pthread_mutex_unlock(&sync_lock);
        return s;
}

static int sync_add(struct sync_session *s) {
        int r = 0;

        pthread_mutex_lock(&sync_lock);
        if (sync_n == sync_cap) {
                size_t ncap = sync_cap ? sync_cap * 2 : 16;
                struct sync_session **nv = reallocarray(sync_v, ncap, sizeof *nv);
                if (!nv)
                        r = -ENOMEM;
                else {
                        sync_v = nv;
                        sync_cap = ncap;
                }
        }
        if (r == 0)
                sync_v[sync_n++] = s;
        pthread_mutex_unlock(&sync_lock);
        return r;
}

static struct sync_session *sync_take(const redisContext *c) {
        struct sync_session *s = NULL;

        pthread_mutex_lock(&sync_lock);
        for (size_t i = 0; i < sync_n; i++)
                if (sync_v[i]->c == c) {
                        s = sync_v[i];
                        sync_v[i] = sync_v[--sync_n];
                        break;
                }
        pthread_mutex_unlock(&sync_lock);
        return s;
}

int tls_redis_connect(const struct tls_peer *peer, uint64_t timeout_usec, redisContext **ret, char *errbuf,
                      size_t errlen) {
        struct sync_session *s;
        redisContext *c;
        SSL *ssl = NULL;
        int fd, r;

        if (!peer || !peer->host || !ret)
                return -EINVAL;
        warn_insecure(peer);
        r = tls_open(peer, deadline_after(timeout_usec), -1, &ssl, errbuf, errlen);
        if (r < 0)
                return r;
        /* Blocking from now on, as hiredis' own sockets: redisSetTimeout() bounds reads and writes. */
        fd = SSL_get_fd(ssl);
        s = calloc(1, sizeof *s);
        if (!s || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
                r = s ? -errno : -ENOMEM;
                free(s);
                tls_close(ssl, true);
                errbuf_printf(errbuf, errlen, "TLS to Redis at %s:%d: cannot set up the connection: %s", peer->host,
                              peer->port, strerror(-r));
                return r;
        }
        c = redisConnectFd(fd);
        if (!c || c->err) {
                if (c)
                        redisFree(c); /* closes fd */
                else
                        close(fd);
                SSL_free(ssl);
                free(s);
                errbuf_printf(errbuf, errlen, "out of memory connecting to Redis");
                return -ENOMEM;
        }
        s->c = c;
        s->ssl = ssl;
        snprintf(s->where, sizeof s->where, "%s:%d", peer->host, peer->port);
        if (sync_add(s) < 0) {
                SSL_free(ssl);
                redisFree(c);
                free(s);
                errbuf_printf(errbuf, errlen, "out of memory connecting to Redis");
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

bool tls_redis_is_tls(const redisContext *c) {
        return sync_find(c) != NULL;
}

const char *tls_redis_failure(const redisContext *c) {
        struct sync_session *s = sync_find(c);

        return s && s->failure[0] && !s->relayed ? s->failure : NULL;
}

void tls_redis_free(redisContext *c) {
        struct sync_session *s = sync_take(c);

        if (s) {
                SSL_free(s->ssl); /* the socket BIO does not own the fd: redisFree() closes it */
                free(s);
        }
        redisFree(c);
}

/* The context failed: hiredis' error fields, as its own I/O would set them
 * (REDIS_ERR_IO with errno's text, so a timeout reads "Resource temporarily
 * unavailable"; REDIS_ERR_EOF at the end of the stream). */
static int set_failed(struct sync_session *s, int ret, bool reading) {
        redisContext *c = s->c;
        int e = SSL_get_error(s->ssl, ret), saved = errno;

        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && (saved == EAGAIN || saved == EWOULDBLOCK)) {
                c->err = REDIS_ERR_IO;
                snprintf(c->errstr, sizeof c->errstr, "%s", strerror(saved));
                ERR_clear_error();
                errno = saved;
                return REDIS_ERR;
        }
        if (reading && e == SSL_ERROR_ZERO_RETURN) {
                c->err = REDIS_ERR_EOF;
                snprintf(c->errstr, sizeof c->errstr, "Server closed the connection");
                ERR_clear_error();
                errno = 0;
                return REDIS_ERR;
        }
        (void) tls_describe_failure(s->ssl, e, "TLS connection", s->where, s->failure, sizeof s->failure);
        c->err = reading ? REDIS_ERR_EOF : REDIS_ERR_IO;
        errbuf_printf(c->errstr, sizeof c->errstr, "%s", s->failure); /* cut: the whole text is in s->failure */
        errno = reading ? 0 : ECONNRESET;
        return REDIS_ERR;
}

static int sync_read(struct sync_session *s) {
        char buf[16384];
        int n;

        if (s->c->err)
                return REDIS_ERR;
        ERR_clear_error();
        errno = 0;
        n = SSL_read(s->ssl, buf, (int) sizeof buf);
        if (n <= 0)
                return set_failed(s, n, true);
        s->relayed = true;
        if (redisReaderFeed(s->c->reader, buf, (size_t) n) != REDIS_OK) {
                s->c->err = s->c->reader->err;
                snprintf(s->c->errstr, sizeof s->c->errstr, "%s", s->c->reader->errstr);
                return REDIS_ERR;
        }
        return REDIS_OK;
}

/* Everything hiredis queued (c->obuf), encrypted.  A server that refuses us
 * (TLS 1.3: after the handshake) may reset the connection while its alert
 * waits to be read: then the alert's reason is the better one. */
static int sync_flush(struct sync_session *s) {
        redisContext *c = s->c;

        while (sdslen(c->obuf) > 0) {
                int n;

                ERR_clear_error();
                errno = 0;
                n = SSL_write(s->ssl, c->obuf, (int) MIN(sdslen(c->obuf), (size_t) INT_MAX));
                if (n <= 0) {
                        int e = SSL_get_error(s->ssl, n), saved = errno;

                        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
                            (saved == EAGAIN || saved == EWOULDBLOCK))
                                return set_failed(s, n, false); /* timed out */
                        ERR_clear_error();
                        if (sync_read(s) != REDIS_OK)
                                return REDIS_ERR; /* the alert, or the reset, as the reader saw it */
                        c->err = REDIS_ERR_IO;
                        snprintf(c->errstr, sizeof c->errstr, "%s", strerror(saved ? saved : ECONNRESET));
                        errno = saved ? saved : ECONNRESET;
                        return REDIS_ERR;
                }
                sdsrange(c->obuf, n, -1);
        }
        return REDIS_OK;
}

static int sync_get_reply(struct sync_session *s, void **reply) {
        redisContext *c = s->c;
        void *aux = NULL;

        if (redisGetReplyFromReader(c, &aux) == REDIS_ERR)
                return REDIS_ERR;
        if (!aux) {
                if (sync_flush(s) != REDIS_OK)
                        return REDIS_ERR;
                do {
                        if (sync_read(s) != REDIS_OK || redisGetReplyFromReader(c, &aux) == REDIS_ERR)
                                return REDIS_ERR;
                } while (!aux);
        }
        if (reply)
                *reply = aux;
        else
                freeReplyObject(aux);
        return REDIS_OK;
}

int tls_redis_get_reply(redisContext *c, void **reply) {
        struct sync_session *s = sync_find(c);

        return s ? sync_get_reply(s, reply) : redisGetReply(c, reply);
}

/* One lookup per command: the session's, then append and wait, as hiredis'
 * redisCommand() does for a plain context. */
redisReply *tls_redis_vcommand(redisContext *c, const char *fmt, va_list ap) {
        struct sync_session *s = sync_find(c);
        void *reply = NULL;

        if (!s)
                return redisvCommand(c, fmt, ap);
        if (redisvAppendCommand(c, fmt, ap) != REDIS_OK || sync_get_reply(s, &reply) != REDIS_OK)
                return NULL;
        return reply;
}

redisReply *tls_redis_commandargv(redisContext *c, int argc, const char **argv, const size_t *argvlen) {
        struct sync_session *s = sync_find(c);
        void *reply = NULL;

        if (!s)
                return redisCommandArgv(c, argc, argv, argvlen);
        if (redisAppendCommandArgv(c, argc, argv, argvlen) != REDIS_OK || sync_get_reply(s, &reply) != REDIS_OK)
                return NULL;
        return reply;
}

int tls_redis_buffer_read(redisContext *c) {
        struct sync_session *s = sync_find(c);

        return s ? sync_read(s) : redisBufferRead(c);
}

bool tls_redis_buffered(const redisContext *c) {
        struct sync_session *s = sync_find(c);

        return s && SSL_has_pending(s->ssl);
}

/* ---- async ------------------------------------------------------------------ */

static int rendezvous_open(struct rendezvous *rv) {
        const char *base = getenv("TMPDIR");
        int n;

        if (!base || !*base || strlen(base) > RENDEZVOUS_BASE_MAX)
                base = "/tmp";
        snprintf(rv->dir, sizeof rv->dir, "%s/coord-tls-XXXXXX", base);
        if (!mkdtemp(rv->dir)) /* mode 0700 */
                return -errno;
        rv->sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        n = snprintf(rv->sa.sun_path, sizeof rv->sa.sun_path, "%s/s", rv->dir);
        rv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (n < 0 || (size_t) n >= sizeof rv->sa.sun_path || rv->fd < 0 ||
            bind(rv->fd, (struct sockaddr *) &rv->sa, sizeof rv->sa) < 0 || listen(rv->fd, 1) < 0) {
                int r = errno > 0 ? -errno : -ENAMETOOLONG;

                if (rv->fd >= 0)
                        close(rv->fd);
                (void) unlink(rv->sa.sun_path);
                (void) rmdir(rv->dir);
                return r;
        }
        return 0;
}

static void rendezvous_close(struct rendezvous *rv) {
        close(rv->fd);
        (void) unlink(rv->sa.sun_path);
        (void) rmdir(rv->dir);
}

/* The connection our redisAsyncConnectUnix() made, and nobody else's. */
static int rendezvous_accept(struct rendezvous *rv, int *ret_fd) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        int fd;

        fd = accept4(rv->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid != getpid()) {
                close(fd);
                return -EPERM;
        }
        *ret_fd = fd;
        return 0;
}

/* A non-blocking context and the pump's end of its socket. */
static int async_pair(redisAsyncContext **ret, int *ret_fd) {
        struct rendezvous rv;
        redisAsyncContext *ac;
        int r;

        r = rendezvous_open(&rv);
        if (r < 0)
                return r;
        ac = redisAsyncConnectUnix(rv.sa.sun_path);
        r = !ac ? -ENOMEM : ac->err ? -EIO : rendezvous_accept(&rv, ret_fd);
        rendezvous_close(&rv);
        if (r < 0) {
                if (ac)
                        redisAsyncFree(ac);
                return r;
        }
        (void) fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
        *ret = ac;
        return 0;
}

int tls_redis_async_connect(const struct tls_peer *peer, uint64_t timeout_usec, redisAsyncContext **ret,
                            char *errbuf, size_t errlen) {
        redisAsyncContext *ac = NULL;
        int fd = -1, r;

        if (!peer || !peer->host || !ret)
                return -EINVAL;
        warn_insecure(peer);
        r = async_pair(&ac, &fd);
        if (r >= 0) {
                r = tls_pump_start_connect(peer, deadline_after(timeout_usec), fd);
                if (r < 0)
                        redisAsyncFree(ac);
        }
        if (r < 0) {
                errbuf_printf(errbuf, errlen, "TLS to Redis at %s:%d: cannot set up the local socket: %s",
                              peer->host, peer->port, strerror(-r));
                return r;
        }
        *ret = ac;
        return 0;
}
