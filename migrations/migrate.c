/* The migration engine (being written). */
#include "migrate.h"
