/* Fixtures of the planner's unit tests (test-plan.c, test-flyway.c): a set from hand-made
 * files, and checks on the report plan_compute() fills.  Header-only: each test is a
 * program of its own. */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "migrations/plan.h"

/* A set over v[0..n) (borrowed), counted by type; v in the set's order. */
static inline struct migration_set set_of(struct migration *v, size_t n) {
        struct migration_set s = { .v = v, .n = n };
        for (size_t i = 0; i < n; i++) {
                if (v[i].type == MIGRATION_VERSIONED)
                        s.n_versioned++;
                else if (v[i].type == MIGRATION_REPEATABLE)
                        s.n_repeatable++;
                else
                        s.n_seed++;
        }
        return s;
}

/* The entry of script; the test fails without one. */
static inline const struct migrate_entry *find(const struct migrate_report *r, const char *script) {
        for (size_t i = 0; i < r->n; i++)
                if (strcmp(r->v[i].script, script) == 0)
                        return &r->v[i];
        ck_abort_msg("no entry for %s", script);
        return NULL;
}

static inline void expect(const struct migrate_report *r, const char *script, enum migrate_state st, bool will_run,
                          bool problem) {
        const struct migrate_entry *e = find(r, script);
        ck_assert_msg(e->state == st, "%s: state %s, want %s (%s)", script, migrate_state_to_string(e->state),
                      migrate_state_to_string(st), e->detail ?: "");
        ck_assert_msg(e->will_run == will_run, "%s: will_run %d", script, e->will_run);
        ck_assert_msg(e->problem == problem, "%s: problem %d", script, e->problem);
}

/* The entries and their details (not the set or history, which the tests own). */
static inline void report_free(struct migrate_report *r) {
        for (size_t i = 0; i < r->n; i++)
                free(r->v[i].detail);
        free(r->v);
        *r = (struct migrate_report) {};
}
