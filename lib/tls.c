/* See tls.h.
 *
 * One SSL_CTX holds the settings in force; every session takes a reference
 * (SSL_new), so tls_set_options() can swap it while sessions run.  Sockets are
 * non-blocking from the start and every wait goes through tls_wait(), which
 * bounds it by the caller's deadline and lets the async path give up the
 * moment hiredis drops its end.  OpenSSL is initialised without its atexit
 * cleanup: pump threads may still hold sessions while the process exits
 * (lib/tls_pump.c drains them first anyway). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "duration.h"
#include "log.h"
#include "strutil.h"
#include "tls.h"

#define KEEPALIVE_IDLE_SEC 15 /* as hiredis' redisEnableKeepAlive() */

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *ctx_current; /* the settings in force; NULL: not loaded yet */
static bool ctx_insecure;

/* The most specific reason on OpenSSL's error queue, which is then cleared. */
static const char *ssl_reason(void) {
        unsigned long e = ERR_peek_last_error();
        const char *s = e ? ERR_reason_error_string(e) : NULL;

        ERR_clear_error();
        return s ? s : "unknown error";
}

/* ---- settings ------------------------------------------------------------ */

void tls_options_done(struct tls_options *o) {
        if (!o)
                return;
        free(o->ca_file);
        free(o->cert_file);
        free(o->key_file);
        *o = (struct tls_options) { 0 };
}

static int dup_or_null(const char *s, char **ret) {
        *ret = s && *s ? strdup(s) : NULL;
        return s && *s && !*ret ? -ENOMEM : 0;
}

int tls_options_from_env(struct tls_options *ret) {
        struct tls_options o = { 0 };

        if (!ret)
                return -EINVAL;
        if (dup_or_null(getenv("COORD_TLS_CA_FILE"), &o.ca_file) < 0 ||
            dup_or_null(getenv("COORD_TLS_CERT_FILE"), &o.cert_file) < 0 ||
            dup_or_null(getenv("COORD_TLS_KEY_FILE"), &o.key_file) < 0) {
                tls_options_done(&o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

static int check_readable(const char *what, const char *path, char *errbuf, size_t errlen) {
        int r;

        if (access(path, R_OK) == 0)
                return 0;
        r = -errno;
        errbuf_printf(errbuf, errlen, "TLS %s %s: %s", what, path, strerror(-r));
        return r;
}

/* Where a failure to load settings goes: the message, and the setting it is about. */
struct load_error {
        char *buf;
        size_t len;
        enum tls_file file;
        bool quiet; /* a check only: no warning, no system store (put in force later, and loaded then) */
};

static int ctx_load_trust(SSL_CTX *ctx, const struct tls_options *o, struct load_error *e) {
        int r;

        e->file = TLS_FILE_CA;
        if (o->insecure_skip_verify) {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
                return 0;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (!o->ca_file) {
                /* Loading the system store takes a good 0.1 s; a check is
                 * about the files configured, and it is no file. */
                if (e->quiet)
                        return 0;
                if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
                        errbuf_printf(e->buf, e->len, "TLS: cannot load the system certificate store: %s", ssl_reason());
                        return -EINVAL;
                }
                return 0;
        }
        r = check_readable("CA file", o->ca_file, e->buf, e->len);
        if (r < 0)
                return r;
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
                errbuf_printf(e->buf, e->len, "TLS CA file %s: %s", o->ca_file, ssl_reason());
                return -EINVAL;
        }
        return 0;
}

/* An expired client certificate is for the server to refuse (a refusal like
 * any other), but whoever reads the log learns it here first. */
static void warn_if_expired(SSL_CTX *ctx, const char *path) {
        X509 *x = SSL_CTX_get0_certificate(ctx);
        struct tm tm;
        char when[32] = "?";

        if (!x || X509_cmp_current_time(X509_get0_notAfter(x)) >= 0)
                return;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
                (void) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        log_warning("TLS certificate file %s: the certificate expired on %s; servers will refuse it", path, when);
}

/* OpenSSL's default would prompt on a terminal: nothing can type a
 * passphrase for a daemon, so an encrypted key is refused, and said to be. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
        bool *asked = userdata;

        (void) buf;
        (void) size;
        (void) rwflag;
        *asked = true;
        return -1;
}

static int ctx_load_key(SSL_CTX *ctx, const char *key, struct load_error *e) {
        bool asked = false;
        int ok;

        e->file = TLS_FILE_KEY;
        SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
        ok = SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 && SSL_CTX_check_private_key(ctx) == 1;
        SSL_CTX_set_default_passwd_cb(ctx, NULL);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
        if (ok)
                return 0;
        if (asked) {
                ERR_clear_error();
                errbuf_printf(e->buf, e->len, "TLS key file %s: the key is encrypted, and a passphrase cannot be given; "
                        "store it unencrypted, readable by the service only (a systemd credential)", key);
        } else
                errbuf_printf(e->buf, e->len, "TLS key file %s: %s", key, ssl_reason());
        return -EINVAL;
}

static int ctx_load_client_cert(SSL_CTX *ctx, const struct tls_options *o, struct load_error *e) {
        const char *key = o->key_file ? o->key_file : o->cert_file;
        int r;

        e->file = o->cert_file ? TLS_FILE_CERT : TLS_FILE_KEY;
        if (!o->cert_file) {
                if (o->key_file) {
                        errbuf_printf(e->buf, e->len, "TLS key file %s given without a certificate file", o->key_file);
                        return -EINVAL;
                }
                return 0;
        }
        r = check_readable("certificate file", o->cert_file, e->buf, e->len);
        if (r < 0)
                return r;
        e->file = TLS_FILE_KEY;
        r = check_readable("key file", key, e->buf, e->len);
        if (r < 0)
                return r;
        e->file = TLS_FILE_CERT;
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
                errbuf_printf(e->buf, e->len, "TLS certificate file %s: %s", o->cert_file, ssl_reason());
                return -EINVAL;
        }
        r = ctx_load_key(ctx, key, e);
        if (r < 0)
                return r;
        if (!e->quiet)
                warn_if_expired(ctx, o->cert_file);
        return 0;
}

static int ctx_new_report(const struct tls_options *o, SSL_CTX **ret, struct load_error *e) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        int r;

        e->file = TLS_FILE_NONE;
        if (OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_LOAD_SSL_STRINGS, NULL) != 1) {
                errbuf_printf(e->buf, e->len, "TLS: OpenSSL failed to initialise");
                return -ENOMEM;
        }
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx) {
                errbuf_printf(e->buf, e->len, "TLS: %s", ssl_reason());
                return -ENOMEM;
        }
        (void) SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
        /* The pump retries writes from a buffer that moves on partial writes. */
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_read_ahead(ctx, 1); /* one read(2) per burst of records, not two per record */
        r = ctx_load_trust(ctx, o, e);
        if (r >= 0)
                r = ctx_load_client_cert(ctx, o, e);
        if (r < 0)
                return r;
        e->file = TLS_FILE_NONE;
        *ret = TAKE_PTR(ctx);
        return 0;
}

static int ctx_new(const struct tls_options *o, SSL_CTX **ret, char *errbuf, size_t errlen) {
        struct load_error e = { .buf = errbuf, .len = errlen };

        return ctx_new_report(o, ret, &e);
}

int tls_options_check(const struct tls_options *opts, enum tls_file *ret_file, char *errbuf, size_t errlen) {
        struct load_error e = { .buf = errbuf, .len = errlen, .quiet = true };
        SSL_CTX *ctx = NULL;
        int r;

        if (!opts)
                return -EINVAL;
        r = ctx_new_report(opts, &ctx, &e);
        SSL_CTX_free(ctx);
        if (ret_file)
                *ret_file = r < 0 ? e.file : TLS_FILE_NONE;
        return r;
}

bool tls_options_equal(const struct tls_options *a, const struct tls_options *b) {
        return streq_ptr(a->ca_file, b->ca_file) && streq_ptr(a->cert_file, b->cert_file) &&
               streq_ptr(a->key_file, b->key_file) && a->insecure_skip_verify == b->insecure_skip_verify;
}

/* Replace the settings in force (ctx NULL: forget them). */
static void ctx_swap(SSL_CTX *ctx, bool insecure) {
        SSL_CTX *old;

        pthread_mutex_lock(&ctx_lock);
        old = ctx_current;
        ctx_current = ctx;
        ctx_insecure = insecure;
        pthread_mutex_unlock(&ctx_lock);
        SSL_CTX_free(old);
}

int tls_set_options(const struct tls_options *opts, char *errbuf, size_t errlen) {
        SSL_CTX *ctx = NULL;
        int r;

        if (!opts) {
                ctx_swap(NULL, false);
                return 0;
        }
        r = ctx_new(opts, &ctx, errbuf, errlen);
        if (r < 0)
                return r;
        ctx_swap(ctx, opts->insecure_skip_verify);
        return 0;
}

int tls_setup_from_env(char *errbuf, size_t errlen) {
        struct tls_options o;
        int r;

        r = tls_options_from_env(&o);
        if (r < 0)
                return r;
        r = tls_set_options(&o, errbuf, errlen);
        tls_options_done(&o);
        if (r < 0 && errbuf && errlen > 0) {
                size_t n = strlen(errbuf);

                snprintf(errbuf + n, errlen - n, " (from the COORD_TLS_* environment)");
        }
        return r;
}

struct tls_settings {
        SSL_CTX *ctx; /* NULL: none loaded (the environment is read at the next connection) */
        bool insecure;
};

struct tls_settings *tls_settings_save(void) {
        struct tls_settings *s = calloc(1, sizeof *s);

        if (!s)
                return NULL;
        pthread_mutex_lock(&ctx_lock);
        if (ctx_current)
                (void) SSL_CTX_up_ref(ctx_current);
        s->ctx = ctx_current;
        s->insecure = ctx_insecure;
        pthread_mutex_unlock(&ctx_lock);
        return s;
}

void tls_settings_restore(struct tls_settings *s) {
        if (!s)
                return;
        ctx_swap(s->ctx, s->insecure); /* the reference moves back in */
        free(s);
}

struct tls_settings *tls_settings_free(struct tls_settings *s) {
        if (s) {
                SSL_CTX_free(s->ctx);
                free(s);
        }
        return NULL;
}

/* A reference to the settings in force, loading them from the environment
 * the first time. */
static int ctx_acquire(SSL_CTX **ret, bool *ret_insecure, char *errbuf, size_t errlen) {
        struct tls_options o;
        int r = 0;

        pthread_mutex_lock(&ctx_lock);
        if (!ctx_current) {
                r = tls_options_from_env(&o);
                if (r >= 0) {
                        r = ctx_new(&o, &ctx_current, errbuf, errlen);
                        ctx_insecure = false;
                        tls_options_done(&o);
                }
        }
        if (r >= 0) {
                (void) SSL_CTX_up_ref(ctx_current);
                *ret = ctx_current;
                *ret_insecure = ctx_insecure;
        }
        pthread_mutex_unlock(&ctx_lock);
        return r;
}

bool tls_insecure(void) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        bool insecure = false;

        return ctx_acquire(&ctx, &insecure, NULL, 0) >= 0 && insecure;
}

/* ---- TCP ------------------------------------------------------------------ */

int tls_wait(int fd, short events, uint64_t deadline_usec, int abort_fd) {
        struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = abort_fd, .events = 0 } };

        for (;;) {
                uint64_t now = now_usec();
                int timeout = -1, n;

                if (deadline_usec != 0) {
                        if (now >= deadline_usec)
                                return -ETIMEDOUT;
                        timeout = (int) MIN((deadline_usec - now + 999) / 1000, (uint64_t) INT_MAX);
                }
                n = poll(p, 2, timeout);
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n > 0 && p[1].revents)
                        return -ECANCELED;
                if (n > 0 && p[0].revents)
                        return 0;
        }
}

static void socket_tune(int fd) {
        int one = 1, idle = KEEPALIVE_IDLE_SEC, intvl = KEEPALIVE_IDLE_SEC / 3, cnt = 3;

        /* Best effort, as hiredis does it: a vanished server is noticed on an idle
         * connection too (the pump has no timeout of its own). */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static bool is_ip_literal(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int tcp_connect_one(const struct addrinfo *ai, uint64_t deadline_usec, int abort_fd, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        socklen_t len = sizeof(int);
        int err = 0, r;

        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                r = tls_wait(fd, POLLOUT, deadline_usec, abort_fd);
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }
        socket_tune(fd);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int tcp_connect(const struct tls_peer *peer, uint64_t deadline_usec, int abort_fd, int *ret_fd, char *errbuf,
                       size_t errlen) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        char service[16];
        int r = -EHOSTUNREACH, g;

        snprintf(service, sizeof service, "%d", peer->port);
        if (is_ip_literal(peer->host))
                hints.ai_flags = AI_NUMERICHOST; /* no resolver round for an address */
        g = getaddrinfo(peer->host, service, &hints, &ai);
        if (g != 0) {
                errbuf_printf(errbuf, errlen, "Failed to connect to Redis at %s:%d: %s", peer->host, peer->port,
                        gai_strerror(g));
                return -EHOSTUNREACH;
        }
        for (const struct addrinfo *a = ai; a; a = a->ai_next) {
                r = tcp_connect_one(a, deadline_usec, abort_fd, ret_fd);
                if (r >= 0 || r == -ETIMEDOUT || r == -ECANCELED)
                        break;
        }
        freeaddrinfo(ai);
        if (r < 0)
                errbuf_printf(errbuf, errlen, "Failed to connect to Redis at %s:%d: %s", peer->host, peer->port,
                        r == -ETIMEDOUT ? "connection timed out" : strerror(-r));
        return r;
}

/* ---- failures ---------------------------------------------------------------- */

static const char *verify_hint(long v) {
        switch (v) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
                return "; sslHost= sets the name the certificate must carry";
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
                return "; is the server's CA in the CA file (tls_ca_file, COORD_TLS_CA_FILE)?";
        default:
                return "";
        }
}

/* A fatal alert the server sent about our certificate. */
static bool alert_about_us(int reason) {
        switch (reason - SSL_AD_REASON_OFFSET) {
        case SSL_AD_BAD_CERTIFICATE:
        case SSL_AD_UNSUPPORTED_CERTIFICATE:
        case SSL_AD_CERTIFICATE_REVOKED:
        case SSL_AD_CERTIFICATE_EXPIRED:
        case SSL_AD_CERTIFICATE_UNKNOWN:
        case SSL_AD_UNKNOWN_CA:
        case SSL_AD_ACCESS_DENIED:
        case SSL_AD_CERTIFICATE_REQUIRED:
                return true;
        default:
                return false;
        }
}

int tls_describe_failure(SSL *ssl, int ssl_error, const char *what, const char *where, char *buf, size_t len) {
        long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        unsigned long e = ERR_peek_last_error();
        int reason = e ? ERR_GET_REASON(e) : 0, r = -EPROTO;
        const char *text = e ? ERR_reason_error_string(e) : NULL, *hint = "";

        if (v != X509_V_OK) {
                text = X509_verify_cert_error_string(v);
                hint = verify_hint(v);
                r = -EPERM;
                errbuf_printf(buf, len, "%s with Redis at %s failed: certificate verify failed: %s%s", what, where, text, hint);
                ERR_clear_error();
                return r;
        }
        if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && alert_about_us(reason)) {
                r = -EACCES;
                hint = "; the server refused our client certificate (tls_cert_file, COORD_TLS_CERT_FILE)";
        } else if (!e && ssl_error == SSL_ERROR_SYSCALL && errno != 0) {
                r = errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -errno;
                text = strerror(errno);
        } else if ((e && ERR_GET_LIB(e) == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) || !e) {
                r = -ECONNRESET;
                text = "the server closed the connection";
        }
        errbuf_printf(buf, len, "%s with Redis at %s failed: %s%s", what, where, text ? text : "unknown error", hint);
        ERR_clear_error();
        return r;
}

/* ---- handshake --------------------------------------------------------------- */

/* The first byte the server sent: tells a plain-text Redis (RESP) from a
 * server that speaks TLS badly. */
struct first_byte {
        bool seen;
        unsigned char c;
};

static long first_byte_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
                          size_t *processed) {
        struct first_byte *f = (struct first_byte *) BIO_get_callback_arg(b);

        (void) len;
        (void) argi;
        (void) argl;
        if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed && *processed > 0 && !f->seen) {
                f->seen = true;
                f->c = (unsigned char) argp[0];
        }
        return ret;
}

/* A session on fd (borrowed until it succeeds) verifying name. */
static int session_new(SSL_CTX *ctx, int fd, const char *name, bool insecure, struct first_byte *f, SSL **ret) {
        SSL *ssl = SSL_new(ctx);
        BIO *bio;

        if (!ssl)
                return -ENOMEM;
        bio = BIO_new_socket(fd, BIO_NOCLOSE);
        if (!bio) {
                SSL_free(ssl);
                return -ENOMEM;
        }
        BIO_set_callback_arg(bio, (char *) f);
        BIO_set_callback_ex(bio, first_byte_cb);
        SSL_set_bio(ssl, bio, bio);
        /* SNI is for host names only (RFC 6066); SSL_set1_host() takes IP literals too. */
        if ((!is_ip_literal(name) && SSL_set_tlsext_host_name(ssl, name) != 1) ||
            (!insecure && SSL_set1_host(ssl, name) != 1)) {
                SSL_free(ssl);
                return -ENOMEM;
        }
        *ret = ssl;
        return 0;
}

static int handshake(SSL *ssl, const struct first_byte *f, uint64_t deadline_usec, int abort_fd, const char *where,
                     char *errbuf, size_t errlen) {
        int fd = SSL_get_fd(ssl), r, e;

        for (;;) {
                ERR_clear_error();
                errno = 0;
                r = SSL_connect(ssl);
                if (r == 1)
                        return 0;
                e = SSL_get_error(ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                        r = tls_wait(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_usec, abort_fd);
                else if (f->seen && strchr("+-:$*", f->c)) {
                        ERR_clear_error();
                        errbuf_printf(errbuf, errlen,
                                "TLS handshake with Redis at %s failed: the server answered in plain text (RESP): "
                                "this port does not speak TLS; use ssl=false or the server's TLS port", where);
                        return -EPROTO;
                } else
                        return tls_describe_failure(ssl, e, "TLS handshake", where, errbuf, errlen);
                if (r == -ETIMEDOUT) {
                        errbuf_printf(errbuf, errlen, "TLS handshake with Redis at %s timed out%s", where,
                                f->seen ? "" : " (no answer: a plain-text Redis waits like this; is it a TLS port?)");
                        return r;
                }
                if (r < 0) {
                        errbuf_printf(errbuf, errlen, "TLS handshake with Redis at %s: %s", where,
                                r == -ECANCELED ? "abandoned" : strerror(-r));
                        return r;
                }
        }
}

int tls_open(const struct tls_peer *peer, uint64_t deadline_usec, int abort_fd, SSL **ret, char *errbuf,
             size_t errlen) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        _cleanup_close_ int fd = -1;
        struct first_byte f = { 0 };
        char where[300];
        SSL *ssl = NULL;
        bool insecure;
        int r;

        if (!peer || !peer->host || !ret)
                return -EINVAL;
        r = ctx_acquire(&ctx, &insecure, errbuf, errlen);
        if (r < 0)
                return r;
        r = tcp_connect(peer, deadline_usec, abort_fd, &fd, errbuf, errlen);
        if (r < 0)
                return r;
        r = session_new(ctx, fd, peer->name ? peer->name : peer->host, insecure, &f, &ssl);
        if (r < 0) {
                errbuf_printf(errbuf, errlen, "TLS: out of memory");
                return r;
        }
        snprintf(where, sizeof where, "%s:%d", peer->host, peer->port);
        r = handshake(ssl, &f, deadline_usec, abort_fd, where, errbuf, errlen);
        if (r < 0) {
                SSL_free(ssl);
                return r;
        }
        BIO_set_callback_ex(SSL_get_rbio(ssl), NULL);
        (void) TAKE_FD(fd); /* now the session's */
        *ret = ssl;
        return 0;
}

SSL *tls_close(SSL *ssl, bool clean) {
        int fd;

        if (!ssl)
                return NULL;
        fd = SSL_get_fd(ssl);
        if (clean)
                (void) SSL_shutdown(ssl); /* non-blocking socket: sends close_notify or gives up */
        SSL_free(ssl);
        if (fd >= 0)
                close(fd);
        ERR_clear_error();
        return NULL;
}
