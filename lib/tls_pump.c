/* See tls_pump.h.
 *
 * Each direction has one buffer: app -> server reads the local socket only
 * when its buffer is empty and SSL_write() took all of it, server -> app
 * calls SSL_read() only when the previous record reached the local socket, so
 * a slow side holds the other back (no unbounded buffering) and nothing waits
 * inside OpenSSL unseen (SSL_read() runs until it wants the socket again).
 * The socket is polled only for what OpenSSL asked for, so a hung-up socket
 * cannot make poll(2) spin while the app end is full.
 *
 * The registry of running pumps exists for exit: OpenSSL's state must not be
 * torn down under a pump, and LeakSanitizer must not find a session a pump
 * was about to free.  A pump's local fd is closed under the registry lock,
 * so tls_pump_wait_idle() never shuts down a number that was reused. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "duration.h"
#include "tls_pump.h"

#define PUMP_BUFFER 16384
#define EXIT_DRAIN_USEC (1000 * 1000ULL)
#define ANSWER_WAIT_USEC (1000 * 1000ULL) /* for the first command, to answer a failure */

struct buffer {
        size_t off, len; /* pending: data[off .. len) */
        char data[PUMP_BUFFER];
};

struct pump {
        struct pump *prev, *next; /* the registry */
        SSL *ssl;                 /* NULL until connected */
        int plain;                /* our end of the local socket; -1 once closed */
        struct tls_peer peer;     /* strings owned; for the connecting path */
        uint64_t deadline_usec;
        char where[300];
        bool registered;
        bool sent;       /* the app sent something */
        bool relayed;    /* a byte from the server reached the app */
        bool tls_done;     /* nothing more to read from the server */
        bool tls_failed;   /* ... or write: not cleanly, no close_notify */
        bool write_failed; /* the reader may still learn why (an alert before a reset) */
        short tcp_events;
        char failure[512]; /* why the TLS side ended */
        struct buffer up, down;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_idle = PTHREAD_COND_INITIALIZER;
static struct pump *reg_head;
static unsigned reg_count;
static pid_t reg_pid;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* ---- registry ------------------------------------------------------------ */

static void drain_at_exit(void) {
        /* A forked child inherited the list, not the threads. */
        if (getpid() == reg_pid)
                (void) tls_pump_wait_idle(EXIT_DRAIN_USEC, true);
}

static void register_exit_handler(void) {
        (void) atexit(drain_at_exit);
}

static void registry_add(struct pump *p) {
        (void) pthread_once(&exit_once, register_exit_handler);
        pthread_mutex_lock(&reg_lock);
        reg_pid = getpid();
        p->registered = true;
        p->next = reg_head;
        if (reg_head)
                reg_head->prev = p;
        reg_head = p;
        reg_count++;
        pthread_mutex_unlock(&reg_lock);
}

static void registry_remove(struct pump *p) {
        if (!p->registered)
                return;
        pthread_mutex_lock(&reg_lock);
        if (p->prev)
                p->prev->next = p->next;
        else
                reg_head = p->next;
        if (p->next)
                p->next->prev = p->prev;
        if (--reg_count == 0)
                pthread_cond_broadcast(&reg_idle);
        pthread_mutex_unlock(&reg_lock);
}

unsigned tls_pump_count(void) {
        unsigned n;

        pthread_mutex_lock(&reg_lock);
        n = reg_count;
        pthread_mutex_unlock(&reg_lock);
        return n;
}

int tls_pump_wait_idle(uint64_t timeout_usec, bool stop) {
        struct timespec ts;
        int r = 0;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t) (timeout_usec / 1000000);
        ts.tv_nsec += (long) (timeout_usec % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&reg_lock);
        for (struct pump *p = reg_head; stop && p; p = p->next)
                if (p->plain >= 0)
                        (void) shutdown(p->plain, SHUT_RDWR);
        while (reg_count > 0 && r == 0)
                r = pthread_cond_timedwait(&reg_idle, &reg_lock, &ts);
        r = reg_count > 0 ? -ETIMEDOUT : 0;
        pthread_mutex_unlock(&reg_lock);
        return r;
}

const char *tls_pump_failure(const char *s) {
        size_t n = strlen(TLS_PUMP_ERROR_PREFIX);

        return s && strncmp(s, TLS_PUMP_ERROR_PREFIX, n) == 0 ? s + n : NULL;
}

/* ---- lifetime -------------------------------------------------------------- */

/* Close both ends.  Idempotent. */
static void pump_close(struct pump *p) {
        int fd;

        pthread_mutex_lock(&reg_lock);
        fd = p->plain;
        p->plain = -1;
        pthread_mutex_unlock(&reg_lock);
        if (fd >= 0)
                close(fd);
        p->ssl = tls_close(p->ssl, !p->tls_failed);
}

static struct pump *pump_free(struct pump *p) {
        if (!p)
                return NULL;
        pump_close(p);
        free((char *) p->peer.host);
        free((char *) p->peer.name);
        registry_remove(p);
        free(p);
        return NULL;
}

/* ---- the two directions ------------------------------------------------------ */

/* SSL wants the socket (0: tcp_events says for what) or the TLS side ended
 * (-1).  A server that refuses us (TLS 1.3: after the handshake) sends an
 * alert and closes with our first command unread, so the write can fail with
 * a reset while the alert waits to be read: a failed write only stops
 * writing, the reader ends the session with the better reason. */
static int ssl_blocked(struct pump *p, int ret, bool reading) {
        int e = SSL_get_error(p->ssl, ret);

        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                p->tcp_events |= e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                return 0;
        }
        if (!reading) {
                p->write_failed = p->tls_failed = true;
                (void) tls_describe_failure(p->ssl, e, "TLS connection", p->where, p->failure, sizeof p->failure);
                return -1;
        }
        p->tls_done = true;
        if (e == SSL_ERROR_ZERO_RETURN) {
                snprintf(p->failure, sizeof p->failure, "the server at %s closed the TLS connection", p->where);
                ERR_clear_error();
                return -1;
        }
        p->tls_failed = true;
        (void) tls_describe_failure(p->ssl, e, "TLS connection", p->where, p->failure, sizeof p->failure);
        return -1;
}

/* App -> server, as far as it goes without blocking.  -1 when the app is gone. */
static int pump_up(struct pump *p, short *plain_events) {
        while (!p->tls_done && !p->write_failed) {
                int n;

                if (p->up.off == p->up.len) {
                        ssize_t got = recv(p->plain, p->up.data, sizeof p->up.data, MSG_DONTWAIT);

                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                                *plain_events |= POLLIN;
                                return 0;
                        }
                        if (got <= 0)
                                return -1;
                        p->up.off = 0;
                        p->up.len = (size_t) got;
                        p->sent = true;
                }
                ERR_clear_error();
                errno = 0;
                n = SSL_write(p->ssl, p->up.data + p->up.off, (int) (p->up.len - p->up.off));
                if (n <= 0) {
                        (void) ssl_blocked(p, n, false);
                        return 0;
                }
                p->up.off += (size_t) n;
        }
        return 0;
}

/* Server -> app, as far as it goes without blocking.  -1 when done: the app
 * is gone, or the TLS side ended and everything read was delivered. */
static int pump_down(struct pump *p, short *plain_events) {
        for (;;) {
                ssize_t w;

                if (p->down.off == p->down.len) {
                        int n;

                        if (p->tls_done)
                                return -1;
                        ERR_clear_error();
                        errno = 0;
                        n = SSL_read(p->ssl, p->down.data, (int) sizeof p->down.data);
                        if (n <= 0) {
                                if (ssl_blocked(p, n, true) == 0)
                                        return 0;
                                continue;
                        }
                        p->down.off = 0;
                        p->down.len = (size_t) n;
                }
                w = send(p->plain, p->down.data + p->down.off, p->down.len - p->down.off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        *plain_events |= POLLOUT;
                        return 0;
                }
                if (w < 0)
                        return -1;
                p->relayed = true;
                p->down.off += (size_t) w;
        }
}

static void pump_run(struct pump *p) {
        int fd = SSL_get_fd(p->ssl);

        for (;;) {
                short plain_events = 0;
                struct pollfd f[2];

                p->tcp_events = 0;
                if (pump_up(p, &plain_events) < 0 || pump_down(p, &plain_events) < 0)
                        return;
                f[0] = (struct pollfd) { .fd = p->plain, .events = plain_events };
                f[1] = (struct pollfd) { .fd = p->tcp_events ? fd : -1, .events = p->tcp_events };
                if (poll(f, 2, -1) < 0 && errno != EINTR) {
                        snprintf(p->failure, sizeof p->failure, "poll: %s", strerror(errno));
                        p->tls_failed = true;
                        return;
                }
                if (f[0].revents & (POLLHUP | POLLERR | POLLNVAL))
                        return; /* the app closed its end */
        }
}

/* The TLS side failed before the server said anything: tell the app why, in
 * RESP, as the answer to its first command, once that command is here (it
 * may be on its way: answering before would only earn it EPIPE). */
static void answer_failure(struct pump *p) {
        char line[sizeof p->failure + 16];
        int n;

        if (!p->sent && tls_wait(p->plain, POLLIN, now_usec() + ANSWER_WAIT_USEC, -1) < 0)
                return;
        /* Read what the app sent, so closing reads as EOF to it, not ECONNRESET. */
        while (recv(p->plain, p->up.data, sizeof p->up.data, MSG_DONTWAIT) > 0)
                ;
        for (char *c = p->failure; *c; c++)
                if (*c == '\r' || *c == '\n')
                        *c = ' ';
        n = snprintf(line, sizeof line, "-%s%s\r\n", TLS_PUMP_ERROR_PREFIX, p->failure);
        if (n > 0)
                (void) send(p->plain, line, MIN((size_t) n, sizeof line - 1), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void *pump_main(void *arg) {
        struct pump *p = arg;
        bool answer = false;

        if (!p->ssl) {
                int r = tls_open(&p->peer, p->deadline_usec, p->plain, &p->ssl, p->failure, sizeof p->failure);

                /* -ECANCELED: the app is gone, nobody to tell. */
                answer = r < 0 && r != -ECANCELED;
        }
        if (p->ssl) {
                pump_run(p);
                answer = p->failure[0] && !p->relayed;
        }
        if (answer)
                answer_failure(p);
        pump_close(p);
        OPENSSL_thread_stop(); /* this thread's OpenSSL state, before it is counted out */
        pump_free(p);
        return NULL;
}

/* ---- starting ----------------------------------------------------------------- */

static int pump_spawn(struct pump *p) {
        pthread_attr_t attr;
        sigset_t all, old;
        pthread_t t;
        int r;

        r = pthread_attr_init(&attr);
        if (r != 0) {
                pump_free(p);
                return -r;
        }
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* Signals stay with the program's own threads (sd-event's signalfd, the
         * handlers of coordctl): the pump inherits a full mask. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        registry_add(p);
        r = pthread_create(&t, &attr, pump_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                pump_free(p);
                return -r;
        }
        return 0;
}

/* A pump for plain_fd (taken, also on failure) with a copy of peer. */
static struct pump *pump_for(const struct tls_peer *peer, int plain_fd) {
        struct pump *p = calloc(1, sizeof *p);

        if (!p) {
                close(plain_fd);
                return NULL;
        }
        p->plain = plain_fd;
        p->peer.port = peer->port;
        p->peer.host = strdup(peer->host);
        p->peer.name = peer->name ? strdup(peer->name) : NULL;
        if (!p->peer.host || (peer->name && !p->peer.name))
                return pump_free(p);
        snprintf(p->where, sizeof p->where, "%s:%d", peer->host, peer->port);
        return p;
}

int tls_pump_start_connect(const struct tls_peer *peer, uint64_t deadline_usec, int plain_fd) {
        struct pump *p;

        if (!peer || !peer->host) {
                close(plain_fd);
                return -EINVAL;
        }
        p = pump_for(peer, plain_fd);
        if (!p)
                return -ENOMEM;
        p->deadline_usec = deadline_usec;
        return pump_spawn(p);
}
