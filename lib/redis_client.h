/* A reconnecting asynchronous Redis client on sd-event, for the daemons.
 *
 * Owns two hiredis async connections: one for commands, one for pub/sub.
 * On loss of either it reconnects with capped exponential backoff and jitter
 * (100ms .. 5s), re-resolving Sentinel masters, re-authenticating, SELECTing,
 * and re-subscribing every channel.  Through Sentinel it also listens for
 * "+switch-master" on the sentinel that answered and moves to a new master at
 * once (a READONLY reply triggers the same).  on_state is called on every
 * transition so the owner can re-register and reconcile (pub/sub loses messages
 * while disconnected).  Commands issued while disconnected fail at once with
 * -ENOTCONN (callback not called); commands in flight when the connection
 * drops get a NULL reply.  Callers retry from their own timers.
 * With ssl=true every connection (sentinel watch included) is TLS
 * (lib/tls_redis.h): the handshake runs off the loop, bounded by the connect
 * timeout, and its failure is logged as the reason of the attempt. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <systemd/sd-event.h>

#include "redis_url.h"
#include "tls.h"

struct redis_client;

/* reply is NULL when the command could not be sent or the connection dropped;
 * a REDIS_REPLY_ERROR reply is passed through.  The reply is freed after the
 * callback returns. */
typedef void (*redis_client_reply_cb)(struct redis_client *c, redisReply *reply, void *userdata);
/* connected: true when both connections are up (after (re)connect), false when lost. */
typedef void (*redis_client_state_cb)(struct redis_client *c, bool connected, void *userdata);
/* A message on a subscribed channel (or pattern). */
typedef void (*redis_client_message_cb)(struct redis_client *c, const char *channel, const char *data, size_t len,
                                        void *userdata);

/* The outcome of redis_client_set_url(): error 0 when the client now uses the
 * new URL, else -errno (-EACCES: the server refused the credentials or the
 * client certificate; -ETIMEDOUT; -ECANCELED: superseded by a newer call;
 * -ECONNREFUSED: anything else) with the reason (no password in it). */
typedef void (*redis_client_swap_cb)(struct redis_client *c, int error, const char *reason, void *userdata);

/* Create and start connecting.  url is copied; e gets a reference; userdata is
 * borrowed (it must outlive the client).  *ret written only on success. */
int redis_client_new(sd_event *e, const struct redis_url *url, redis_client_state_cb on_state,
                     void *userdata, struct redis_client **ret);
/* Safe from inside any of the client's callbacks.  Pending commands get their
 * callback with a NULL reply (so owners can free per-command state) before this
 * returns; on_state and message callbacks are not called any more. */
struct redis_client *redis_client_free(struct redis_client *c);
bool redis_client_is_connected(struct redis_client *c);

/* Queue a command (printf-style as redisAsyncCommand, or argv). cb may be NULL.
 * Returns 0 when sent, -ENOTCONN when disconnected (cb is then NOT called). */
int redis_client_command(struct redis_client *c, redis_client_reply_cb cb, void *userdata, const char *fmt, ...);
int redis_client_commandargv(struct redis_client *c, redis_client_reply_cb cb, void *userdata, int argc,
                             const char **argv, const size_t *argvlen);

/* Subscribe to channel (copied; kept across reconnects).  Multiple subscriptions
 * allowed.  userdata is borrowed: it must outlive the subscription. */
int redis_client_subscribe(struct redis_client *c, const char *channel, redis_client_message_cb cb, void *userdata);
int redis_client_unsubscribe(struct redis_client *c, const char *channel);

/* New credentials or a new server, without a gap ("make before break"): a
 * second pair of connections is made with url (copied), through the whole
 * handshake (TLS, AUTH, SELECT, ROLE, PING, every subscription), while the
 * current ones keep serving.  Only when it is up does it replace them: the
 * old command connection still delivers the replies it owes, then closes; no
 * command fails, no message callback is skipped, and on_state is not called
 * unless the client was disconnected or the new URL leads to another server
 * (then on_state(true), as after a reconnect).  When it fails the client goes
 * on as before.  With tls non-NULL the process-wide TLS settings
 * (tls_set_options()) become tls first, and the previous ones, as they were
 * loaded, are put back if the new connection fails.
 * Returns 0 when the attempt started: done (may be NULL) is called once, from
 * the loop, with the outcome; not after redis_client_free().  A pending
 * attempt is superseded: its done gets -ECANCELED first, from within this
 * call.  Or -errno with errbuf set, nothing changed (-EINVAL: a TLS file is
 * unusable, ssl=true with a unix socket). */
int redis_client_set_url(struct redis_client *c, const struct redis_url *url, const struct tls_options *tls,
                         redis_client_swap_cb done, void *userdata, char *errbuf, size_t errlen);

/* What a daemon does with redis and tls_* on SIGHUP: try the new settings
 * with redis_client_set_url() when the connection string or the TLS files
 * changed, when TLS is in use (files renewed in place keep their names), or
 * when retry (the last attempt failed); with the string parsed here, and the
 * TLS settings only when it asks for TLS.
 * Returns 1 when an attempt started (done follows), 0 when there is nothing
 * to do, or -errno with errbuf set (password masked). */
struct redis_client_settings {
        const char *url;                /* connection string */
        const struct tls_options *tls;
};
int redis_client_reload(struct redis_client *c, const struct redis_client_settings *old,
                        const struct redis_client_settings *new, bool retry, redis_client_swap_cb done, void *userdata,
                        char *errbuf, size_t errlen);
/* The URL in use (borrowed: valid until the next swap or the free). */
const struct redis_url *redis_client_url(struct redis_client *c);

/* Counters for /metrics. */
unsigned long redis_client_reconnects(struct redis_client *c);

/* Liveness probe: every interval the client publishes to its private channel
 * "coord:keepalive:<random>" (keys.h) on the command connection and expects it
 * back on the pub/sub connection; nothing back within timeout means the server
 * is dead or hung and both connections are re-established.  Defaults 1s / 3s.
 * An ACL user therefore needs the channel permission "&coord:*". */
void redis_client_set_keepalive(struct redis_client *c, uint64_t interval_usec, uint64_t timeout_usec);
