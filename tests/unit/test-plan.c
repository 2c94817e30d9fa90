/* Unit tests for migrations/plan.c: states from hand-made directories and histories. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "migrate-fixtures.h"
#include "migrations/plan.h"
#include "test-main.h"

static struct migration file(enum migration_type t, const char *version, const char *script, const char *sum) {
        struct migration m = { .type = t, .version = (char *) version, .description = (char *) "d",
                               .script = (char *) script };
        snprintf(m.checksum, sizeof(m.checksum), "%s", sum);
        return m;
}

/* A versioned "-- coord:post-deploy" file. */
static struct migration post(const char *version, const char *script, const char *sum) {
        struct migration m = file(MIGRATION_VERSIONED, version, script, sum);
        m.post_deploy = true;
        return m;
}

static struct history_row row(int64_t rank, const char *version, const char *type, const char *script,
                              const char *sum, bool success) {
        return (struct history_row) { .rank = rank, .version = version, .description = "d", .type = type,
                                      .script = script, .checksum = sum, .installed_by = "u@h",
                                      .installed_at = "2026-01-01T00:00:00.000Z", .success = success,
                                      .fencing_token = 7 };
}

/* The scripts apply would run, in order, joined by ' '. */
static const char *run_order(const struct migrate_report *r) {
        static char buf[512];
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < r->n && o < sizeof(buf); i++)
                if (r->v[i].will_run)
                        o += (size_t) snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? " " : "", r->v[i].script);
        return buf;
}

/* One row of a phase table: what a file is, in the plan for a phase. */
struct phase_case {
        const char *script;
        enum migrate_state state;
        bool will_run, problem, held, defer, blocked, deferred;
};

static void expect_phase(const struct migration_set *s, const struct history *h, enum migrate_phase phase,
                         const char *order, const struct phase_case *c, size_t n) {
        struct migrate_report r = {};

        ck_assert_int_eq(plan_compute(s, h, false, phase, &r), 0);
        ck_assert_msg(strcmp(run_order(&r), order) == 0, "phase %s: runs '%s', want '%s'",
                      migrate_phase_to_string(phase), run_order(&r), order);
        for (size_t i = 0; i < n; i++) {
                const struct migrate_entry *e = find(&r, c[i].script);
                expect(&r, c[i].script, c[i].state, c[i].will_run, c[i].problem);
                ck_assert_msg(e->held == c[i].held && e->defer == c[i].defer && e->blocked == c[i].blocked &&
                                      e->deferred == c[i].deferred,
                              "phase %s: %s: held %d defer %d blocked %d deferred %d", migrate_phase_to_string(phase),
                              c[i].script, e->held, e->defer, e->blocked, e->deferred);
        }
        report_free(&r);
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

        ck_assert_int_eq(plan_compute(&s, &h, false, MIGRATE_PHASE_ALL, &r), 0);
        ck_assert_uint_eq(r.n, 4);
        for (size_t i = 0; i < 4; i++) {
                ck_assert_str_eq(r.v[i].script, f[i].script); /* order kept */
                ck_assert(r.v[i].state == STATE_PENDING && r.v[i].will_run && !r.v[i].problem);
        }
        report_free(&r);
        r = (struct migrate_report) {};
        ck_assert_int_eq(plan_compute(&s, NULL, true, MIGRATE_PHASE_ALL, &r), 0);
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

        ck_assert_int_eq(plan_compute(&s, &h, false, MIGRATE_PHASE_ALL, &r), 0);
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

        ck_assert_int_eq(plan_compute(&s, &h, false, MIGRATE_PHASE_ALL, &r), 0);
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

        ck_assert_int_eq(plan_compute(&s, &h, false, MIGRATE_PHASE_ALL, &r), 0);
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

START_TEST(test_phase_names) {
        enum migrate_phase p = MIGRATE_PHASE_PRE;
        ck_assert_int_eq(migrate_phase_from_string("post", &p), 0);
        ck_assert_int_eq(p, MIGRATE_PHASE_POST);
        ck_assert_int_eq(migrate_phase_from_string("all", &p), 0);
        ck_assert_int_eq(p, MIGRATE_PHASE_ALL);
        ck_assert_int_eq(migrate_phase_from_string("bogus", &p), -EINVAL);
        ck_assert_int_eq(migrate_phase_from_string("", &p), -EINVAL);
        ck_assert_int_eq(migrate_phase_from_string("PRE", &p), -EINVAL);
        ck_assert_int_eq(p, MIGRATE_PHASE_ALL); /* untouched */
        ck_assert_str_eq(migrate_phase_to_string(MIGRATE_PHASE_PRE), "pre");
}
END_TEST

/* Release N+1 adds an expand step V3 above a contract step V2 (post-deploy); V1 is applied. */
START_TEST(test_phase_pre_with_lower_post_pending) {
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__t.sql", "c1"),
                post("2", "V2__drop_a.sql", "c2"),
                file(MIGRATION_VERSIONED, "3", "V3__add_c.sql", "c3"),
                file(MIGRATION_REPEATABLE, NULL, "R__v.sql", "cr"),
                file(MIGRATION_SEED, NULL, "S__s.sql", "cs"),
        };
        struct history_row rows[] = { row(1, "1", "versioned", "V1__t.sql", "c1", true) };
        struct migration_set s = set_of(f, 5);
        struct history h = { .exists = true, .rows = rows, .n = 1 };
        struct migrate_report r = {};
        const struct phase_case pre[] = {
                { "V1__t.sql", STATE_APPLIED, false, false, false, false, false, false },
                /* held back, and to be recorded as deferred when V3 is applied */
                { "V2__drop_a.sql", STATE_PENDING, false, false, true, true, false, false },
                { "V3__add_c.sql", STATE_PENDING, true, false, false, false, false, false },
                { "R__v.sql", STATE_PENDING, true, false, false, false, false, false },
                { "S__s.sql", STATE_PENDING, true, false, false, false, false, false },
        };
        const struct phase_case postc[] = {
                { "V2__drop_a.sql", STATE_PENDING, true, false, false, false, false, false },
                { "V3__add_c.sql", STATE_PENDING, false, false, true, false, false, false },
                { "R__v.sql", STATE_PENDING, false, false, true, false, false, false },
                { "S__s.sql", STATE_PENDING, false, false, true, false, false, false },
        };
        const struct phase_case all[] = {
                { "V2__drop_a.sql", STATE_PENDING, true, false, false, false, false, false },
                { "V3__add_c.sql", STATE_PENDING, true, false, false, false, false, false },
        };

        expect_phase(&s, &h, MIGRATE_PHASE_PRE, "V3__add_c.sql R__v.sql S__s.sql", pre, ELEMENTSOF(pre));
        /* post before pre: V2 is below the pending V3, so it may run first (no gap either way) */
        expect_phase(&s, &h, MIGRATE_PHASE_POST, "V2__drop_a.sql", postc, ELEMENTSOF(postc));
        expect_phase(&s, &h, MIGRATE_PHASE_ALL, "V2__drop_a.sql V3__add_c.sql R__v.sql S__s.sql", all,
                     ELEMENTSOF(all));

        ck_assert_int_eq(plan_compute(&s, &h, false, MIGRATE_PHASE_PRE, &r), 0);
        ck_assert_str_eq(find(&r, "V2__drop_a.sql")->phase, "post");
        ck_assert_str_eq(find(&r, "V3__add_c.sql")->phase, "pre");
        ck_assert_str_eq(find(&r, "R__v.sql")->phase, "pre");
        ck_assert(strstr(find(&r, "V2__drop_a.sql")->detail, "held back by --phase pre"));
        report_free(&r);
}
END_TEST

/* After --phase pre applied V3 and recorded V2 as deferred. */
START_TEST(test_phase_post_after_pre) {
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__t.sql", "c1"),
                post("2", "V2__drop_a.sql", "c2"),
                file(MIGRATION_VERSIONED, "3", "V3__add_c.sql", "c3"),
        };
        struct history_row rows[] = {
                row(1, "1", "versioned", "V1__t.sql", "c1", true),
                row(2, "2", "deferred", "V2__drop_a.sql", "c2", true),
                row(3, "3", "versioned", "V3__add_c.sql", "c3", true),
                row(4, "2", "versioned", "V2__drop_a.sql", "c2", true),
        };
        struct migration_set s = set_of(f, 3);
        struct history h = { .exists = true, .rows = rows, .n = 3 };
        const struct phase_case deferred[] = {
                { "V1__t.sql", STATE_APPLIED, false, false, false, false, false, false },
                /* below the applied 3, but recorded as deferred: not a gap */
                { "V2__drop_a.sql", STATE_PENDING, true, false, false, false, false, true },
                { "V3__add_c.sql", STATE_APPLIED, false, false, false, false, false, false },
        };
        const struct phase_case deferred_pre[] = {
                /* held again, but already recorded: nothing more to record */
                { "V2__drop_a.sql", STATE_PENDING, false, false, true, false, false, true },
        };
        const struct phase_case applied[] = {
                { "V1__t.sql", STATE_APPLIED, false, false, false, false, false, false },
                { "V2__drop_a.sql", STATE_APPLIED, false, false, false, false, false, false },
                { "V3__add_c.sql", STATE_APPLIED, false, false, false, false, false, false },
        };
        struct migrate_report r = {};

        expect_phase(&s, &h, MIGRATE_PHASE_POST, "V2__drop_a.sql", deferred, ELEMENTSOF(deferred));
        expect_phase(&s, &h, MIGRATE_PHASE_ALL, "V2__drop_a.sql", deferred, ELEMENTSOF(deferred));
        expect_phase(&s, &h, MIGRATE_PHASE_PRE, "", deferred_pre, ELEMENTSOF(deferred_pre));
        ck_assert_int_eq(plan_compute(&s, &h, false, MIGRATE_PHASE_ALL, &r), 0);
        ck_assert_uint_eq(r.n, 3); /* the deferred row is the file's, not an entry of its own */
        ck_assert(strstr(find(&r, "V2__drop_a.sql")->detail, "deferred at 2026-01-01T00:00:00.000Z"));
        ck_assert_ptr_null(find(&r, "V2__drop_a.sql")->installed_at); /* not applied */
        report_free(&r);

        /* --phase post ran: the versioned row (higher rank) wins over the deferred one. */
        h.n = 4;
        expect_phase(&s, &h, MIGRATE_PHASE_POST, "", applied, ELEMENTSOF(applied));
        expect_phase(&s, &h, MIGRATE_PHASE_ALL, "", applied, ELEMENTSOF(applied));
        expect_phase(&s, &h, MIGRATE_PHASE_PRE, "", applied, ELEMENTSOF(applied));

        /* A post-deploy file edited after it was applied is a checksum mismatch like any versioned one. */
        f[1] = post("2", "V2__drop_a.sql", "c2-edited");
        {
                const struct phase_case changed[] = {
                        { "V2__drop_a.sql", STATE_CHANGED, false, true, false, false, false, false },
                };
                expect_phase(&s, &h, MIGRATE_PHASE_POST, "", changed, ELEMENTSOF(changed));
                expect_phase(&s, &h, MIGRATE_PHASE_PRE, "", changed, ELEMENTSOF(changed));
        }
}
END_TEST

START_TEST(test_phase_gaps) {
        /* A post-deploy version below an applied one and never deferred was added out of order:
         * a gap in every phase (validate fails, apply refuses). */
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__t.sql", "c1"),
                post("2", "V2__late.sql", "c2"),
                file(MIGRATION_VERSIONED, "3", "V3__c.sql", "c3"),
        };
        struct history_row rows[] = {
                row(1, "1", "versioned", "V1__t.sql", "c1", true),
                row(2, "3", "versioned", "V3__c.sql", "c3", true),
        };
        struct migration_set s = set_of(f, 3);
        struct history h = { .exists = true, .rows = rows, .n = 2 };
        const struct phase_case gap[] = {
                { "V2__late.sql", STATE_PENDING, false, true, false, false, false, false },
        };

        expect_phase(&s, &h, MIGRATE_PHASE_ALL, "", gap, ELEMENTSOF(gap));
        expect_phase(&s, &h, MIGRATE_PHASE_PRE, "", gap, ELEMENTSOF(gap));
        expect_phase(&s, &h, MIGRATE_PHASE_POST, "", gap, ELEMENTSOF(gap));
}
END_TEST

START_TEST(test_phase_post_blocked_by_pending_pre) {
        /* --phase post with a pre-deploy V4 still pending: V2 (below it) may run, V5 (above) may
         * not, since V4 would then be a gap. */
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__t.sql", "c1"),
                post("2", "V2__drop.sql", "c2"),
                file(MIGRATION_VERSIONED, "3", "V3__c.sql", "c3"),
                file(MIGRATION_VERSIONED, "4", "V4__d.sql", "c4"),
                post("5", "V5__drop.sql", "c5"),
        };
        struct history_row rows[] = {
                row(1, "1", "versioned", "V1__t.sql", "c1", true),
                row(2, "2", "deferred", "V2__drop.sql", "c2", true),
                row(3, "3", "versioned", "V3__c.sql", "c3", true),
        };
        struct migration_set s = set_of(f, 5);
        struct history h = { .exists = true, .rows = rows, .n = 3 };
        const struct phase_case postc[] = {
                { "V2__drop.sql", STATE_PENDING, true, false, false, false, false, true },
                { "V4__d.sql", STATE_PENDING, false, false, true, false, false, false },
                { "V5__drop.sql", STATE_PENDING, false, false, false, false, true, false },
        };
        const struct phase_case pre[] = {
                { "V2__drop.sql", STATE_PENDING, false, false, true, false, false, true },
                { "V4__d.sql", STATE_PENDING, true, false, false, false, false, false },
                /* above everything that runs: held, and recorded only if something above it ran */
                { "V5__drop.sql", STATE_PENDING, false, false, true, true, false, false },
        };
        struct migrate_report r = {};

        /* (apply refuses the whole run because of V5's blocked: see migrate.c) */
        expect_phase(&s, &h, MIGRATE_PHASE_POST, "V2__drop.sql", postc, ELEMENTSOF(postc));
        ck_assert_int_eq(plan_compute(&s, &h, false, MIGRATE_PHASE_POST, &r), 0);
        ck_assert(strstr(find(&r, "V5__drop.sql")->detail, "pre-deploy V4__d.sql below it is pending"));
        report_free(&r);
        expect_phase(&s, &h, MIGRATE_PHASE_PRE, "V4__d.sql", pre, ELEMENTSOF(pre));
        expect_phase(&s, &h, MIGRATE_PHASE_ALL, "V2__drop.sql V4__d.sql V5__drop.sql", NULL, 0);
}
END_TEST

START_TEST(test_phase_deferred_without_file) {
        /* A deferred version whose file was dropped from the release was never applied: no entry,
         * no problem (and neither for an older release's directory, where it is above the highest). */
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__t.sql", "c1"),
                file(MIGRATION_VERSIONED, "3", "V3__c.sql", "c3"),
        };
        struct history_row rows[] = {
                row(1, "1", "versioned", "V1__t.sql", "c1", true),
                row(2, "2", "deferred", "V2__drop.sql", "c2", true),
                row(3, "3", "versioned", "V3__c.sql", "c3", true),
                row(4, "5", "deferred", "V5__drop.sql", "c5", true),
                row(5, "6", "versioned", "V6__f.sql", "c6", true),
        };
        struct migration_set s = set_of(f, 2);
        struct history h = { .exists = true, .rows = rows, .n = 5 };
        struct migrate_report r = {};

        ck_assert_int_eq(plan_compute(&s, &h, false, MIGRATE_PHASE_ALL, &r), 0);
        ck_assert_uint_eq(r.n, 3);
        expect(&r, "V1__t.sql", STATE_APPLIED, false, false);
        expect(&r, "V3__c.sql", STATE_APPLIED, false, false);
        expect(&r, "V6__f.sql", STATE_FUTURE, false, false);
        report_free(&r);
}
END_TEST

/* plan says which files run without a transaction, and why (every phase, every state). */
START_TEST(test_no_transaction) {
        struct migration f[] = {
                file(MIGRATION_VERSIONED, "1", "V1__table.sql", "c1"),
                file(MIGRATION_VERSIONED, "2", "V2__index.sql", "c2"),
                file(MIGRATION_VERSIONED, "3", "V3__vacuum.sql", "c3"),
                file(MIGRATION_REPEATABLE, NULL, "R__directive.sql", "cr"),
        };
        static const struct {
                const char *script, *no_transaction;
                bool will_run;
        } want[] = {
                { "V1__table.sql", NULL, false },
                { "V2__index.sql", "detected: CREATE INDEX CONCURRENTLY at line 3", true },
                { "V3__vacuum.sql", "detected: VACUUM at line 1", true },
                { "R__directive.sql", "-- coord:no-transaction", true },
        };
        struct history_row rows[] = { row(1, "1", "versioned", "V1__table.sql", "c1", true) };
        struct history h = { .exists = true, .rows = rows, .n = 1 };
        struct migration_set s;
        struct migrate_report r = {};

        f[1].no_transaction = true;
        f[1].no_transaction_reason = (char *) "detected: CREATE INDEX CONCURRENTLY at line 3";
        f[2].no_transaction = true;
        f[2].no_transaction_reason = (char *) "detected: VACUUM at line 1";
        f[3].no_transaction = true; /* the directive (a reason-less hand-made entry reads as it) */
        s = set_of(f, 4);
        for (enum migrate_phase ph = MIGRATE_PHASE_ALL; ph <= MIGRATE_PHASE_PRE; ph++) {
                ck_assert_int_eq(plan_compute(&s, &h, false, ph, &r), 0);
                for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                        const struct migrate_entry *e = find(&r, want[i].script);
                        ck_assert_msg(e->will_run == want[i].will_run, "%s: will_run %d", want[i].script, e->will_run);
                        if (want[i].no_transaction)
                                ck_assert_str_eq(e->no_transaction, want[i].no_transaction);
                        else
                                ck_assert_ptr_null(e->no_transaction);
                }
                report_free(&r);
        }
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_fresh);
        tcase_add_test(tc, test_changed_missing);
        tcase_add_test(tc, test_baseline_failed);
        tcase_add_test(tc, test_partial_future_deleted_out_of_order);
        tcase_add_test(tc, test_phase_names);
        tcase_add_test(tc, test_phase_pre_with_lower_post_pending);
        tcase_add_test(tc, test_phase_post_after_pre);
        tcase_add_test(tc, test_phase_gaps);
        tcase_add_test(tc, test_phase_post_blocked_by_pending_pre);
        tcase_add_test(tc, test_phase_deferred_without_file);
        tcase_add_test(tc, test_no_transaction);
}

TEST_MAIN("plan", add_tests)
