/* See redis_client.h.  (Being written: placeholder that fails loudly.) */
#include <errno.h>

#include "redis_client.h"
