/* See sdevent_redis.h.  (Being written: placeholder that fails loudly.) */
#include <errno.h>

#include "sdevent_redis.h"
