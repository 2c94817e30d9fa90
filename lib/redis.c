/* See redis.h.  (Being written: placeholder that fails loudly.) */
#include <errno.h>

#include "redis.h"
