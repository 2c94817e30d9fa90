/* Planning: the state of every migration (applied, pending, changed, missing,
 * failed, partial, future, baseline, ignored, deleted), whether apply would run
 * it and whether it fails validation.  Pure: no I/O, so it is unit-tested
 * against hand-made histories (tests/unit/test-plan.c). */
#pragma once

#include <stdbool.h>

#include "history.h"
#include "migrate.h"
#include "source.h"

/* Fill r->v/r->n (entries point into set and h, which must outlive r's use):
 * files in order (versioned ascending, repeatables, seeds), merged with history
 * rows that have no file.  no_seed: seeds never will_run.  phase: which of the
 * pending files will_run (the states and problems do not depend on it; held,
 * defer and blocked do).  0 or -ENOMEM. */
int plan_compute(const struct migration_set *set, const struct history *h, bool no_seed, enum migrate_phase phase,
                 struct migrate_report *r);
