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
 * drops get a NULL reply.  Callers retry from their own timers. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <systemd/sd-event.h>

#include "redis_url.h"

typedef struct redis_client redis_client;

/* reply is NULL when the command could not be sent or the connection dropped;
 * a REDIS_REPLY_ERROR reply is passed through.  The reply is freed after the
 * callback returns. */
typedef void (*redis_client_reply_cb)(redis_client *c, redisReply *reply, void *userdata);
/* connected: true when both connections are up (after (re)connect), false when lost. */
typedef void (*redis_client_state_cb)(redis_client *c, bool connected, void *userdata);
/* A message on a subscribed channel (or pattern). */
typedef void (*redis_client_message_cb)(redis_client *c, const char *channel, const char *data, size_t len,
                                        void *userdata);

/* Create and start connecting.  url is copied. */
int redis_client_new(sd_event *e, const struct redis_url *url, redis_client_state_cb on_state,
                     void *userdata, redis_client **ret);
/* Safe from inside any of the client's callbacks.  Pending commands get their
 * callback with a NULL reply (so owners can free per-command state) before this
 * returns; on_state and message callbacks are not called any more. */
redis_client *redis_client_free(redis_client *c);
bool redis_client_is_connected(redis_client *c);

/* Queue a command (printf-style as redisAsyncCommand, or argv). cb may be NULL.
 * Returns 0 when sent, -ENOTCONN when disconnected (cb is then NOT called). */
int redis_client_command(redis_client *c, redis_client_reply_cb cb, void *userdata, const char *fmt, ...);
int redis_client_commandargv(redis_client *c, redis_client_reply_cb cb, void *userdata, int argc,
                             const char **argv, const size_t *argvlen);

/* Subscribe to channel (kept across reconnects).  Multiple subscriptions allowed. */
int redis_client_subscribe(redis_client *c, const char *channel, redis_client_message_cb cb, void *userdata);
int redis_client_unsubscribe(redis_client *c, const char *channel);

/* Counters for /metrics. */
unsigned long redis_client_reconnects(redis_client *c);

/* Liveness probe: every interval the client publishes to its private channel
 * "coord:keepalive:<random>" (keys.h) on the command connection and expects it
 * back on the pub/sub connection; nothing back within timeout means the server
 * is dead or hung and both connections are re-established.  Defaults 1s / 3s.
 * An ACL user therefore needs the channel permission "&coord:*". */
void redis_client_set_keepalive(redis_client *c, uint64_t interval_usec, uint64_t timeout_usec);
