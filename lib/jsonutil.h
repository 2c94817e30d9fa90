/* jansson glue: the cleanup helper for json_t. Include where json_t is freed
 * by scope; a file that only frees memory needs macro.h alone. */
#pragma once

#include <jansson.h>

#include "macro.h"

/* jansson >= 2.9 ships json_decrefp() itself (GNU C); older ones do not. */
#if !defined(JANSSON_VERSION_HEX) || JANSSON_VERSION_HEX < 0x020900 || !(defined(__GNUC__) || defined(__clang__))
DEFINE_TRIVIAL_CLEANUP_FUNC(json_t *, json_decref)
#endif
#define _cleanup_json_ _cleanup_(json_decrefp)
