/* Unit tests for migrations/plan.c: states from hand-made directories and histories. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrations/plan.h"

static struct migration file(enum migration_type t, const char *version, const char *script, const char *sum) {
        struct migration m = { .type = t, .version = (char *) version, .description = (char *) "d",
                               .script = (char *) script };
        snprintf(m.checksum, sizeof(m.checksum), "%s", sum);
        return m;
}

static struct history_row row(int64_t rank, const char *version, const char *type, const char *script,
                              const char *sum, bool success) {
        return (struct history_row) { .rank = rank, .version = version, .description = "d", .type = type,
                                      .script = script, .checksum = sum, .installed_by = "u@h",
                                      .installed_at = "2026-01-01T00:00:00.000Z", .success = success,
                                      .fencing_token = 7 };
}

static struct migration_set set_of(struct migration *v, size_t n) {
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

static const struct migrate_entry *find(const struct migrate_report *r, const char *script) {
        for (size_t i = 0; i < r->n; i++)
                if (strcmp(r->v[i].script, script) == 0)
                        return &r->v[i];
        ck_abort_msg("no entry for %s", script);
        return NULL;
}

static void expect(const struct migrate_report *r, const char *script, enum migrate_state st, bool will_run,
                   bool problem) {
        const struct migrate_entry *e = find(r, script);
        ck_assert_msg(e->state == st, "%s: state %s, want %s", script, migrate_state_to_string(e->state),
                      migrate_state_to_string(st));
        ck_assert_msg(e->will_run == will_run, "%s: will_run %d", script, e->will_run);
        ck_assert_msg(e->problem == problem, "%s: problem %d", script, e->problem);
}

static void report_free(struct migrate_report *r) {
        for (size_t i = 0; i < r->n; i++)
                free(r->v[i].detail);
        free(r->v);
}

START_TEST(test_fresh) {
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__a.sql", "c1"),
                file(MIGRATION_VERSIONED, "2", "V2__b.sql", "c2"),
                file(MIGRATION_REPEATABLE, NULL, "R__v.sql", "cr"),
                file(MIGRATION_SEED, NULL, "S__s.sql", "cs"),
        };
        struct migration_set s = set_of(f, 4);
        struct history h = { .exists = false };
        struct migrate_report r = {};

        ck_assert_int_eq(plan_compute(&s, &h, false, &r), 0);
        ck_assert_uint_eq(r.n, 4);
        for (size_t i = 0; i < 4; i++) {
                ck_assert_str_eq(r.v[i].script, f[i].script); /* order kept */
                ck_assert(r.v[i].state == STATE_PENDING && r.v[i].will_run && !r.v[i].problem);
        }
        report_free(&r);
        r = (struct migrate_report) {};
        ck_assert_int_eq(plan_compute(&s, NULL, true, &r), 0);
        expect(&r, "S__s.sql", STATE_PENDING, false, false); /* --no-seed */
        expect(&r, "R__v.sql", STATE_PENDING, true, false);
        report_free(&r);
}
END_TEST

START_TEST(test_changed_missing) {
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__a.sql", "c1"),
                file(MIGRATION_VERSIONED, "2", "V2__b.sql", "c2-edited"),
                file(MIGRATION_VERSIONED, "4", "V4__d.sql", "c4"),
                file(MIGRATION_REPEATABLE, NULL, "R__a.sql", "ca-edited"),
                file(MIGRATION_SEED, NULL, "S__s.sql", "cs"),
        };
        struct history_row rows[] = {
                row(1, "1", "versioned", "V1__a.sql", "c1", true),
                row(2, "2", "versioned", "V2__b.sql", "c2", true),
                row(3, "3", "versioned", "V3__c.sql", "c3", true),
                row(4, NULL, "repeatable", "R__a.sql", "ca", true),
                row(5, NULL, "seed", "S__s.sql", "cs", true),
                row(6, NULL, "repeatable", "R__gone.sql", "cg", true),
        };
        struct migration_set s = set_of(f, 5);
        struct history h = { .exists = true, .rows = rows, .n = 6 };
        struct migrate_report r = {};

        ck_assert_int_eq(plan_compute(&s, &h, false, &r), 0);
        ck_assert_uint_eq(r.n, 7);
        expect(&r, "V1__a.sql", STATE_APPLIED, false, false);
        expect(&r, "V2__b.sql", STATE_CHANGED, false, true);
        expect(&r, "V3__c.sql", STATE_MISSING, false, true);
        expect(&r, "V4__d.sql", STATE_PENDING, true, false);
        expect(&r, "R__a.sql", STATE_CHANGED, true, false);
        expect(&r, "R__gone.sql", STATE_MISSING, false, true);
        expect(&r, "S__s.sql", STATE_APPLIED, false, false);
        /* Merged in order: V1 V2 V3 V4, repeatables, seeds. */
        ck_assert_str_eq(r.v[2].script, "V3__c.sql");
        ck_assert_str_eq(r.v[5].script, "R__gone.sql");
        ck_assert_str_eq(r.v[6].script, "S__s.sql");
        ck_assert_str_eq(find(&r, "V1__a.sql")->installed_by, "u@h");
        report_free(&r);
}
END_TEST

START_TEST(test_baseline_failed) {
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__a.sql", "c1"),
                file(MIGRATION_VERSIONED, "5", "V5__e.sql", "c5"),
                file(MIGRATION_VERSIONED, "6", "V6__f.sql", "c6"),
        };
        struct history_row rows[] = {
                row(1, "5", "baseline", "<< baseline >>", NULL, true),
                row(2, "6", "versioned", "V6__f.sql", "c6", false),
        };
        struct migration_set s = set_of(f, 3);
        struct history h = { .exists = true, .rows = rows, .n = 2 };
        struct migrate_report r = {};

        ck_assert_int_eq(plan_compute(&s, &h, false, &r), 0);
        ck_assert_uint_eq(r.n, 3);
        expect(&r, "V1__a.sql", STATE_IGNORED, false, false);
        expect(&r, "V5__e.sql", STATE_IGNORED, false, false);
        expect(&r, "V6__f.sql", STATE_FAILED, false, true);
        report_free(&r);
}
END_TEST

START_TEST(test_partial_future_deleted_out_of_order) {
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__a.sql", "c1"),
                file(MIGRATION_VERSIONED, "2", "V2__b.sql", "c2"),
                file(MIGRATION_VERSIONED, "3", "V3__c.sql", "c3-edited"),
                file(MIGRATION_VERSIONED, "3.5", "V3_5__late.sql", "c35"),
        };
        struct history_row rows[] = {
                row(1, "1", "versioned", "V1__a.sql", "c1", true),
                row(2, "3.1", "versioned", "V3_1__x.sql", "c31", true),
                row(3, "3.1", "deleted", "V3_1__x.sql", NULL, true),
                row(4, "9", "versioned", "V9__z.sql", "c9", true),
        };
        struct progress_row prog[] = {
                { .script = "V2__b.sql", .checksum = "c2", .done = 1, .total = 3 },
                { .script = "V3__c.sql", .checksum = "c3", .done = 2, .total = 4 },
        };
        struct migration_set s = set_of(f, 4);
        struct history h = { .exists = true, .rows = rows, .n = 4, .progress = prog, .n_progress = 2 };
        struct migrate_report r = {};

        ck_assert_int_eq(plan_compute(&s, &h, false, &r), 0);
        ck_assert_uint_eq(r.n, 6);
        expect(&r, "V1__a.sql", STATE_APPLIED, false, false);
        expect(&r, "V2__b.sql", STATE_PARTIAL, true, false);
        ck_assert(strstr(find(&r, "V2__b.sql")->detail, "1 of 3"));
        expect(&r, "V3__c.sql", STATE_PARTIAL, false, true); /* changed while partial */
        expect(&r, "V3_5__late.sql", STATE_PENDING, false, true); /* below the applied 9 */
        ck_assert(strstr(find(&r, "V3_5__late.sql")->detail, "out of order"));
        expect(&r, "V3_1__x.sql", STATE_DELETED, false, false);
        expect(&r, "V9__z.sql", STATE_FUTURE, false, false);
        report_free(&r);
}
END_TEST

int main(void) {
        Suite *s = suite_create("plan");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_fresh);
        tcase_add_test(tc, test_changed_missing);
        tcase_add_test(tc, test_baseline_failed);
        tcase_add_test(tc, test_partial_future_deleted_out_of_order);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
