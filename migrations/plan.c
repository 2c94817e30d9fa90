/* See plan.h: each migration's state, from the directory and the history alone. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "flyway.h"
#include "macro.h"
#include "parse-util.h"
#include "plan.h"
#include "strutil.h"

static int row_version_cmp(const void *a, const void *b) {
        const struct history_row *x = *(const struct history_row *const *) a, *y = *(const struct history_row *const *) b;
        int c = version_compare(x->version, y->version);
        if (c != 0)
                return c;
        return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int row_script_cmp(const void *a, const void *b) {
        const struct history_row *x = *(const struct history_row *const *) a, *y = *(const struct history_row *const *) b;
        int c = strcmp(x->type, y->type);
        if (c != 0)
                return c;
        c = strcmp(x->script, y->script);
        if (c != 0)
                return c;
        return x->rank < y->rank ? -1 : x->rank > y->rank;
}

struct index {
        const struct history_row **v; /* versioned: latest row per version */
        size_t nv;
        const struct history_row **s; /* repeatable/seed: latest per (type, script) */
        size_t ns;
        const char *baseline;
        const char *max_applied;
};

static void index_free(struct index *ix) {
        free(ix->v);
        free(ix->s);
}

static int index_build(const struct history *h, struct index *ix) {
        size_t nv = 0, ns = 0;

        *ix = (struct index) {};
        if (!h || h->n == 0)
                return 0;
        ix->v = calloc(h->n, sizeof(*ix->v));
        ix->s = calloc(h->n, sizeof(*ix->s));
        if (!ix->v || !ix->s)
                return -ENOMEM;
        for (size_t i = 0; i < h->n; i++) {
                const struct history_row *w = &h->rows[i];
                if (w->version)
                        ix->v[nv++] = w;
                else
                        ix->s[ns++] = w;
                if (w->version && strcmp(w->type, "baseline") == 0)
                        ix->baseline = w->version;
        }
        /* Rows usually come in version order already (rank order): check before sorting. */
        for (size_t i = 1; i < nv; i++)
                if (row_version_cmp(&ix->v[i - 1], &ix->v[i]) > 0) {
                        qsort(ix->v, nv, sizeof(*ix->v), row_version_cmp);
                        break;
                }
        qsort(ix->s, ns, sizeof(*ix->s), row_script_cmp);
        /* Keep the latest row of each key. */
        for (size_t i = 0; i < nv; i++)
                if (ix->nv > 0 && version_compare(ix->v[ix->nv - 1]->version, ix->v[i]->version) == 0)
                        ix->v[ix->nv - 1] = ix->v[i];
                else
                        ix->v[ix->nv++] = ix->v[i];
        for (size_t i = 0; i < ns; i++)
                if (ix->ns > 0 && strcmp(ix->s[ix->ns - 1]->script, ix->s[i]->script) == 0 &&
                    strcmp(ix->s[ix->ns - 1]->type, ix->s[i]->type) == 0)
                        ix->s[ix->ns - 1] = ix->s[i];
                else
                        ix->s[ix->ns++] = ix->s[i];
        for (size_t i = 0; i < ix->nv; i++)
                if (strcmp(ix->v[i]->type, "versioned") == 0 && ix->v[i]->success)
                        ix->max_applied = ix->v[i]->version; /* ascending: the last wins */
        return 0;
}

static const struct history_row *find_version(const struct index *ix, const char *version) {
        size_t lo = 0, hi = ix->nv;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = version_compare(ix->v[mid]->version, version);
                if (c == 0)
                        return ix->v[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static const struct history_row *find_script(const struct index *ix, const char *type, const char *script) {
        size_t lo = 0, hi = ix->ns;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(ix->s[mid]->type, type);
                if (c == 0)
                        c = strcmp(ix->s[mid]->script, script);
                if (c == 0)
                        return ix->s[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static struct migrate_entry *add_entry(struct migrate_report *r, size_t *allocated) {
        if (r->n == *allocated) {
                size_t na = *allocated ? *allocated * 2 : 64;
                struct migrate_entry *nv = reallocarray(r->v, na, sizeof(*nv));
                if (!nv)
                        return NULL;
                r->v = nv;
                *allocated = na;
        }
        r->v[r->n] = (struct migrate_entry) {};
        return &r->v[r->n++];
}

/* Whether a versioned row's recorded checksum is the file's: its SHA-256 or, for a row
 * taken over from Flyway with Flyway's checksum only (flyway.h), Flyway's CRC32 of it. */
static bool checksum_matches(const char *recorded, const struct migration *m) {
        size_t pl = strlen(FLYWAY_CHECKSUM_PREFIX);
        int crc;

        if (!recorded)
                return false;
        if (strncmp(recorded, FLYWAY_CHECKSUM_PREFIX, pl) == 0)
                return parse_int(recorded + pl, &crc) == 0 && flyway_checksum_matches(m->sql, m->sql_len, crc);
        return strcmp(recorded, m->checksum) == 0;
}

static void set_applied(struct migrate_entry *e, const struct history_row *w) {
        e->applied_checksum = w->checksum;
        e->installed_at = w->installed_at;
        e->installed_by = w->installed_by;
        e->execution_ms = w->execution_ms;
        e->fencing_token = w->fencing_token;
}

static int entry_order(const struct migrate_entry *e) {
        if (e->version)
                return 0;
        return strcmp(e->type, "repeatable") == 0 ? 1 : 2;
}

static int entry_cmp(const void *a, const void *b) {
        const struct migrate_entry *x = a, *y = b;
        int ox = entry_order(x), oy = entry_order(y);
        if (ox != oy)
                return ox < oy ? -1 : 1;
        if (ox == 0) {
                int c = version_compare(x->version, y->version);
                if (c != 0)
                        return c;
        }
        return strcmp(x->script, y->script);
}

/* Narrow what will_run to one phase.  The file entries are r->v[0..set->n), in the
 * directory's order (versioned ascending first), one per set->v[i]. */
static void plan_phase(const struct migration_set *set, enum migrate_phase phase, struct migrate_report *r) {
        const struct migrate_entry *pre_pending = NULL; /* the lowest pre-deploy version that runs with 'all' */

        if (phase == MIGRATE_PHASE_ALL)
                return;
        for (size_t i = 0; i < set->n; i++) {
                const struct migration *m = &set->v[i];
                struct migrate_entry *e = &r->v[i];

                if (!e->will_run)
                        continue;
                if (phase == MIGRATE_PHASE_PRE) {
                        if (!m->post_deploy)
                                continue;
                        e->will_run = false;
                        e->held = true;
                        /* Recorded only once something above it is applied: until then it is no gap. */
                        e->defer = !e->deferred;
                        migrate_entry_add_detail(e, "post-deploy: held back by --phase pre (runs with --phase post or "
                                                    "all)");
                } else if (!m->post_deploy) {
                        if (m->type == MIGRATION_VERSIONED && !pre_pending)
                                pre_pending = e;
                        e->will_run = false;
                        e->held = true;
                        migrate_entry_add_detail(e, m->type == MIGRATION_VERSIONED
                                                            ? "pre-deploy: not run by --phase post (runs with --phase "
                                                              "pre or all)"
                                                            : "not run by --phase post (repeatables and seeds run "
                                                              "with --phase pre or all)");
                } else if (pre_pending) {
                        /* Applying it would leave that version pending below an applied one: a gap. */
                        _cleanup_free_ char *d = strdup_printf("post-deploy, but the pre-deploy %s below it is "
                                                               "pending: run --phase pre first",
                                                               pre_pending->script);
                        e->will_run = false;
                        e->blocked = true;
                        if (d)
                                migrate_entry_add_detail(e, d);
                }
        }
}

/* The state of versioned file m (its entry e) from its latest history row and progress p. */
static void plan_versioned(const struct index *ix, const struct migration *m, const struct progress_row *p,
                           struct migrate_entry *e) {
        const struct history_row *w = find_version(ix, m->version), *deferred = NULL;

        if (w && strcmp(w->type, "deleted") == 0)
                w = NULL;
        if (w && strcmp(w->type, "deferred") == 0) {
                /* Held back by a --phase pre run that applied a higher version: not applied. */
                deferred = w;
                w = NULL;
                e->deferred = true;
        }
        if (w && strcmp(w->type, "baseline") == 0) {
                e->state = STATE_IGNORED;
                set_applied(e, w);
                e->detail = strdup("the baseline version: not run");
        } else if (w && !w->success) {
                e->state = STATE_FAILED;
                set_applied(e, w);
                e->problem = true;
                e->detail = strdup_printf("failed%s%s%s; fix the schema by hand, then run "
                                          "'coordctl migrate repair'",
                                          p && p->error ? " (" : "", p && p->error ? p->error : "",
                                          p && p->error ? ")" : "");
        } else if (w) {
                set_applied(e, w);
                if (checksum_matches(w->checksum, m))
                        e->state = STATE_APPLIED;
                else {
                        e->state = STATE_CHANGED;
                        e->problem = true;
                        e->detail = strdup("file changed after it was applied (checksum differs); "
                                           "restore it, or run 'coordctl migrate repair' to accept");
                }
        } else if (ix->baseline && version_compare(m->version, ix->baseline) <= 0) {
                e->state = STATE_IGNORED;
                e->detail = strdup_printf("at or below the baseline %s: not run", ix->baseline);
        } else if (p) {
                e->state = STATE_PARTIAL;
                e->will_run = true;
                if (strcmp(p->checksum, m->checksum) != 0) {
                        e->problem = true;
                        e->will_run = false;
                        e->detail = strdup_printf("%" PRId64 " of %" PRId64 " statements ran, then the "
                                                  "file changed; fix the schema, then run "
                                                  "'coordctl migrate repair'",
                                                  p->done, p->total);
                } else
                        e->detail = strdup_printf("%" PRId64 " of %" PRId64
                                                  " statements ran; apply resumes after them",
                                                  p->done, p->total);
        } else if (ix->max_applied && version_compare(m->version, ix->max_applied) < 0 && !deferred) {
                e->state = STATE_PENDING;
                e->problem = true;
                e->detail = strdup_printf("version %s is lower than the applied %s: added out of "
                                          "order; give it a version above %s",
                                          m->version, ix->max_applied, ix->max_applied);
        } else {
                e->state = STATE_PENDING;
                e->will_run = true;
                if (deferred)
                        e->detail = strdup_printf("deferred at %s by a --phase pre run that applied "
                                                  "a higher version; runs with --phase post or all",
                                                  deferred->installed_at);
        }
}

/* The state of repeatable or seed m (its entry e) from its latest history row and progress p. */
static void plan_script(const struct index *ix, const struct migration *m, const struct progress_row *p,
                        bool no_seed, struct migrate_entry *e) {
        const struct history_row *w = find_script(ix, e->type, m->script);

        if (w && strcmp(w->type, "deleted") == 0)
                w = NULL;
        if (p && !(w && !w->success)) {
                /* A no-transaction run stopped midway: resume it, unless the file changed. */
                if (w)
                        set_applied(e, w);
                e->state = STATE_PARTIAL;
                e->will_run = strcmp(p->checksum, m->checksum) == 0;
                e->problem = !e->will_run;
                e->detail = e->will_run ? strdup_printf("%" PRId64 " of %" PRId64 " statements ran; "
                                                        "apply resumes after them", p->done, p->total)
                                        : strdup_printf("%" PRId64 " of %" PRId64 " statements ran, "
                                                        "then the file changed; fix the schema, then "
                                                        "run 'coordctl migrate repair'",
                                                        p->done, p->total);
        } else if (!w) {
                e->state = STATE_PENDING;
                e->will_run = true;
        } else if (!w->success) {
                e->state = STATE_FAILED;
                set_applied(e, w);
                e->problem = true;
                e->detail = strdup("failed; fix the schema by hand, then run 'coordctl migrate repair'");
        } else {
                set_applied(e, w);
                if (w->checksum && strcmp(w->checksum, m->checksum) == 0)
                        e->state = STATE_APPLIED;
                else {
                        e->state = STATE_CHANGED;
                        e->will_run = true;
                        e->detail = strdup("changed since it last ran: apply re-runs it");
                }
        }
        if (m->type == MIGRATION_SEED && no_seed && e->will_run) {
                e->will_run = false;
                free(e->detail);
                e->detail = strdup("seed: skipped with --no-seed");
        }
}

/* Entries for the versioned history rows without a file: baseline, deleted, future (above
 * max_dir, the directory's highest version) or missing.  0 or -ENOMEM. */
static int plan_versioned_rows(const struct index *ix, const struct migration_set *set, struct migrate_report *r,
                               size_t *allocated) {
        const char *max_dir = set->n_versioned > 0 ? set->v[set->n_versioned - 1].version : NULL;

        for (size_t i = 0; i < ix->nv; i++) {
                const struct history_row *w = ix->v[i];
                struct migrate_entry *e;
                bool have = false;

                /* A deferred version whose file is gone was never applied: nothing to show or do. */
                if (strcmp(w->type, "deferred") == 0)
                        continue;

                for (size_t lo = 0, hi = set->n_versioned; lo < hi;) {
                        size_t mid = (lo + hi) / 2;
                        int c = version_compare(set->v[mid].version, w->version);
                        if (c == 0) {
                                have = true;
                                break;
                        }
                        if (c < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                if (have)
                        continue;
                e = add_entry(r, allocated);
                if (!e)
                        return -ENOMEM;
                e->type = strcmp(w->type, "baseline") == 0 ? "baseline" : "versioned";
                e->version = w->version;
                e->description = w->description;
                e->script = w->script;
                set_applied(e, w);
                if (strcmp(w->type, "baseline") == 0)
                        e->state = STATE_BASELINE;
                else if (strcmp(w->type, "deleted") == 0)
                        e->state = STATE_DELETED;
                else if (!max_dir || version_compare(w->version, max_dir) > 0) {
                        e->state = STATE_FUTURE;
                        e->detail = strdup("applied by a newer release (above this directory's highest version)");
                } else {
                        e->state = STATE_MISSING;
                        e->problem = true;
                        e->detail = strdup("applied, but its file is gone; restore it, or run 'coordctl migrate "
                                           "repair' to mark it deleted");
                }
        }
        return 0;
}

/* Entries for the repeatable and seed history rows without a file: missing, or deleted.
 * 0 or -ENOMEM. */
static int plan_script_rows(const struct index *ix, const struct migration_set *set, struct migrate_report *r,
                            size_t *allocated) {
        for (size_t i = 0; i < ix->ns; i++) {
                const struct history_row *w = ix->s[i];
                struct migrate_entry *e;
                bool have = false;

                if (strcmp(w->type, "deleted") == 0)
                        continue; /* shown through the type it replaced, below */
                for (size_t j = set->n_versioned; j < set->n && !have; j++)
                        have = strcmp(set->v[j].script, w->script) == 0 &&
                               strcmp(migration_type_to_string(set->v[j].type), w->type) == 0;
                if (have)
                        continue;
                e = add_entry(r, allocated);
                if (!e)
                        return -ENOMEM;
                e->type = w->type;
                e->description = w->description;
                e->script = w->script;
                set_applied(e, w);
                /* Marked deleted later than this row? */
                e->state = STATE_MISSING;
                for (size_t j = 0; j < ix->ns; j++)
                        if (strcmp(ix->s[j]->type, "deleted") == 0 && strcmp(ix->s[j]->script, w->script) == 0 &&
                            ix->s[j]->rank > w->rank)
                                e->state = STATE_DELETED;
                if (e->state == STATE_MISSING) {
                        e->problem = true;
                        e->detail = strdup("applied, but its file is gone; restore it, or run 'coordctl migrate "
                                           "repair' to mark it deleted");
                }
        }
        return 0;
}

int plan_compute(const struct migration_set *set, const struct history *h, bool no_seed, enum migrate_phase phase,
                 struct migrate_report *r) {
        _cleanup_(index_free) struct index ix = {};
        size_t allocated = 0;
        int k;

        assert(set);
        assert(r);
        k = index_build(h, &ix);
        if (k < 0)
                return k;
        for (size_t i = 0; i < set->n; i++) {
                const struct migration *m = &set->v[i];
                struct migrate_entry *e = add_entry(r, &allocated);
                const struct progress_row *p = history_find_progress(h, m->script);

                if (!e)
                        return -ENOMEM;
                e->file = m;
                e->type = migration_type_to_string(m->type);
                e->version = m->version;
                e->description = m->description;
                e->script = m->script;
                e->phase = m->post_deploy ? "post" : "pre";
                e->no_transaction = migration_no_transaction(m);
                e->checksum = m->checksum;
                if (m->type == MIGRATION_VERSIONED)
                        plan_versioned(&ix, m, p, e);
                else
                        plan_script(&ix, m, p, no_seed, e);
        }
        plan_phase(set, phase, r);
        k = plan_versioned_rows(&ix, set, r, &allocated);
        if (k >= 0)
                k = plan_script_rows(&ix, set, r, &allocated);
        if (k < 0)
                return k;
        /* Entries of files come out sorted already; only rows without a file need merging in. */
        if (r->n > set->n)
                qsort(r->v, r->n, sizeof(*r->v), entry_cmp);
        return 0;
}
