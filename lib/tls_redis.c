/* See tls_redis.h.
 *
 * The blocking path uses socketpair(2) and redisConnectFd().  The async API of
 * hiredis 0.14 has no way to adopt an fd (redisAsyncInitialize() is static),
 * so the async path lets redisAsyncConnectUnix() connect to a one-shot
 * listener and takes the accepted end for the pump: a unix connect completes
 * in the kernel at once, so connect, accept and removal of the listener all
 * happen inside this call and leave nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "duration.h"
#include "log.h"
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

int tls_redis_connect(const struct tls_peer *peer, uint64_t timeout_usec, redisContext **ret, char *errbuf,
                      size_t errlen) {
        redisContext *c;
        SSL *ssl = NULL;
        int sv[2], r;

        if (!peer || !peer->host || !ret)
                return -EINVAL;
        warn_insecure(peer);
        r = tls_open(peer, deadline_after(timeout_usec), -1, &ssl, errbuf, errlen);
        if (r < 0)
                return r;
        /* The pump's end is non-blocking, hiredis' end blocking (SO_RCVTIMEO). */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                r = -errno;
                tls_close(ssl, true);
        } else if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                tls_close(ssl, true);
                close(sv[0]);
                close(sv[1]);
        } else if ((r = tls_pump_start(ssl, peer, sv[1])) < 0)
                close(sv[0]);
        if (r < 0) {
                errbuf_printf(errbuf, errlen, "TLS to Redis at %s:%d: cannot set up the local socket: %s",
                              peer->host, peer->port, strerror(-r));
                return r;
        }
        c = redisConnectFd(sv[0]);
        if (!c) {
                close(sv[0]); /* the pump sees EOF and goes */
                errbuf_printf(errbuf, errlen, "out of memory connecting to Redis");
                return -ENOMEM;
        }
        c->connection_type = REDIS_CONN_UNIX; /* no TCP options on the local socket */
        *ret = c;
        return 0;
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
