/* See lock.h.  (Being written: placeholder that fails loudly.) */
#include <errno.h>

#include "lock.h"
