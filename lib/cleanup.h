/* Cleanup helpers for foreign handles: hiredis, jansson, libpq, sd-event.
 * Include where those types are used. */
#pragma once

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <systemd/sd-event.h>

#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(redisReply *, freeReplyObject)
#define _cleanup_reply_ _cleanup_(freeReplyObjectp)
DEFINE_TRIVIAL_CLEANUP_FUNC(redisContext *, redisFree)
#define _cleanup_redis_ _cleanup_(redisFreep)
/* jansson >= 2.9 ships json_decrefp() itself (GNU C); older ones do not. */
#if !defined(JANSSON_VERSION_HEX) || JANSSON_VERSION_HEX < 0x020900 || !(defined(__GNUC__) || defined(__clang__))
DEFINE_TRIVIAL_CLEANUP_FUNC(json_t *, json_decref)
#endif
#define _cleanup_json_ _cleanup_(json_decrefp)
