/* See redis_url.h.  (Being written: placeholder that fails loudly.) */
#include <errno.h>

#include "redis_url.h"
