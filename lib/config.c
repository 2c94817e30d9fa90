/* See config.h.  (Being written: placeholder that fails loudly.) */
#include <errno.h>

#include "config.h"
