/* Unit tests for the decisions of `coordctl doctor` (deploy/coordctl-doctor.c):
 * each check is a pure function of collected facts, tested here over tables.
 * The collection itself runs against real servers in tests/e2e/doctor.sh. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "deploy/coordctl-doctor.h"
#include "exitcode.h"
#include "keys.h"
#include "test-main.h"

static char msg[DOCTOR_MESSAGE_MAX];

/* Every string in need (NULL-terminated) appears in msg; none in avoid. */
static void assert_msg(size_t row, const char *const *need, const char *const *avoid) {
        for (size_t i = 0; need && need[i]; i++)
                ck_assert_msg(strstr(msg, need[i]), "row %zu: '%s' lacks '%s'", row, msg, need[i]);
        for (size_t i = 0; avoid && avoid[i]; i++)
                ck_assert_msg(!strstr(msg, avoid[i]), "row %zu: '%s' has '%s'", row, msg, avoid[i]);
}
#define S(...) ((const char *const[]) { __VA_ARGS__, NULL })

START_TEST(test_status_table) {
        ck_assert_str_eq(doctor_status_to_string(DOCTOR_OK), "ok");
        ck_assert_str_eq(doctor_status_to_string(DOCTOR_FAIL), "fail");
        ck_assert_int_eq(doctor_status_from_string("warn"), DOCTOR_WARN);
        ck_assert_int_eq(doctor_status_from_string("skip"), DOCTOR_SKIP);
        ck_assert_int_eq(doctor_status_from_string("bogus"), -EINVAL);
        ck_assert_ptr_null(doctor_status_to_string(_DOCTOR_STATUS_MAX));
}
END_TEST

START_TEST(test_version) {
        static const struct {
                const char *version;
                int lmove;
                enum doctor_status want;
                const char *says;
        } t[] = {
                { "7.0.15", -1, DOCTOR_OK, "7.0.15" },
                { "6.2.0", -1, DOCTOR_OK, "6.2 or newer" },
                { "6.2", -1, DOCTOR_OK, "6.2" },
                { "10.0.1", -1, DOCTOR_OK, "10.0.1" },
                { "6.0.16", -1, DOCTOR_FAIL, "older than 6.2" },
                { "5.0.7", -1, DOCTOR_FAIL, "upgrade" },
                { "6", -1, DOCTOR_FAIL, "older" },
                { "7", -1, DOCTOR_OK, "7" },
                { "x.y", -1, DOCTOR_WARN, "cannot tell" },
                { NULL, 1, DOCTOR_OK, "LMOVE works" },
                { NULL, 0, DOCTOR_FAIL, "does not know LMOVE" },
                { NULL, -1, DOCTOR_SKIP, "not permitted" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                ck_assert_int_eq(doctor_check_version(t[i].version, t[i].lmove, msg, sizeof msg), t[i].want);
                assert_msg(i, S(t[i].says), NULL);
        }
}
END_TEST

START_TEST(test_persistence_config) {
        static const struct {
                const char *appendonly, *save;
                enum doctor_status want;
                const char *says;
        } t[] = {
                { "yes", "", DOCTOR_OK, "AOF on" },
                { "yes", "3600 1 300 100 60 10000", DOCTOR_OK, "RDB snapshots too" },
                { "YES", "", DOCTOR_OK, "AOF on" },
                { "no", "3600 1 300 100 60 10000", DOCTOR_WARN, "RDB snapshots only" },
                { "no", "900 1", DOCTOR_WARN, "save '900 1'" },
                { "no", "", DOCTOR_FAIL, "neither AOF nor RDB" },
                { "no", "  ", DOCTOR_FAIL, "appendonly yes" },
                { "no", "\"\"", DOCTOR_FAIL, "neither" },
                { NULL, NULL, DOCTOR_FAIL, "neither" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct doctor_persistence p = { .appendonly = t[i].appendonly, .save = t[i].save };
                ck_assert_int_eq(doctor_check_persistence(&p, msg, sizeof msg), t[i].want);
                assert_msg(i, S(t[i].says, "CONFIG GET"), S("INFO"));
        }
}
END_TEST

START_TEST(test_persistence_info) {
        const int64_t now = 1800000000;
        static const struct {
                int aof;
                int64_t changes, last_save_ago, saves, uptime;
                enum doctor_status want;
                const char *says;
        } t[] = {
                /* AOF visible: fine whatever RDB does */
                { 1, 5, 10, -1, 100, DOCTOR_OK, "AOF on" },
                /* a snapshot since the start (Redis 7 counts them; older: last save after start) */
                { 0, 3, 60, 4, 7200, DOCTOR_WARN, "RDB snapshots only" },
                { 0, 3, 60, -1, 7200, DOCTOR_WARN, "the last one 60s ago" },
                /* an hour and more of changes and never a snapshot: off */
                { 0, 17, 9000, 0, 9000, DOCTOR_FAIL, "neither AOF nor RDB" },
                { 0, 17, 9000, -1, 9000, DOCTOR_FAIL, "17 changes" },
                /* too early to tell */
                { 0, 17, 100, 0, 100, DOCTOR_WARN, "cannot be told yet" },
                { 0, 0, 9000, 0, 9000, DOCTOR_WARN, "cannot be told yet" },
                /* no aof_enabled at all */
                { -1, 0, 0, 0, 0, DOCTOR_SKIP, "no aof_enabled" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct doctor_persistence p = {
                        .from_info = true,
                        .config_error = "NOPERM this user has no permissions to run the 'config|get' command",
                        .aof_enabled = t[i].aof,
                        .rdb_changes_since_last_save = t[i].changes,
                        .rdb_last_save_time = now - t[i].last_save_ago,
                        .rdb_saves = t[i].saves,
                        .uptime_s = t[i].uptime,
                        .now_s = now,
                };
                ck_assert_int_eq(doctor_check_persistence(&p, msg, sizeof msg), t[i].want);
                assert_msg(i, S(t[i].says, "INFO persistence", "NOPERM"), NULL);
        }
}
END_TEST

START_TEST(test_eviction) {
        static const struct {
                const char *policy;
                int64_t maxmemory;
                enum doctor_status want;
                const char *says;
        } t[] = {
                { "noeviction", 0, DOCTOR_OK, "refuses writes" },
                { "volatile-lru", 1 << 30, DOCTOR_OK, "1024 MiB" },
                { "volatile-lfu", -1, DOCTOR_OK, "least used" },
                { "volatile-ttl", 1 << 30, DOCTOR_WARN, "short TTLs" },
                { "volatile-random", 1 << 30, DOCTOR_WARN, "could be evicted" },
                { "allkeys-lru", 1 << 30, DOCTOR_WARN, "locks and deployments" },
                { "allkeys-lfu", 0, DOCTOR_WARN, "maxmemory 0 (no limit yet)" },
                { "allkeys-random", -1, DOCTOR_WARN, "any key" },
                { "weird", 0, DOCTOR_WARN, "not one coord knows" },
                { NULL, 0, DOCTOR_SKIP, "unknown" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                ck_assert_int_eq(doctor_check_eviction(t[i].policy, t[i].maxmemory, "CONFIG GET", msg, sizeof msg),
                                 t[i].want);
                assert_msg(i, S(t[i].says), NULL);
        }
}
END_TEST

START_TEST(test_classify_key) {
        static const struct {
                const char *key;
                int kind;
                const char *ns;
        } t[] = {
                { "coord:{prod}:instances", 1, "prod" },
                { "coord:{prod:lock:leader}", 2, "prod" },
                { "coord:{prod:lock:leader}:fence", 3, "prod" },
                { "coord:{a.b_c-1}:instances", 1, "a.b_c-1" },
                { "coord:{prod:lock:leader}:holder", 0, NULL },
                { "coord:{prod:lock:other}", 0, NULL },
                { "coord:{prod}:instance:web-1", 0, NULL },
                { "coord:{prod}:instances:x", 0, NULL },
                { "coord:{}:instances", 0, NULL },
                { "coord:{:lock:leader}", 0, NULL },
                { "coord:{a b}:instances", 0, NULL },
                { "coord:{x:y}:instances", 0, NULL },
                { "coord:prod:instances", 0, NULL },
                { "coord:{prod:instances", 0, NULL },
                { "other:{prod}:instances", 0, NULL },
                { "coord:{0123456789012345678901234567890123456789012345678901234567890123456789}:instances", 0, NULL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                char ns[65] = "untouched";
                ck_assert_msg(doctor_classify_key(t[i].key, ns, sizeof ns) == t[i].kind, "row %zu: %s", i, t[i].key);
                if (t[i].ns)
                        ck_assert_str_eq(ns, t[i].ns);
        }
        /* The parser follows the layout the key builders write (lib/keys.c). */
        char *built[] = { key_instances("prod"), key_lock("prod", "leader"), key_lock_fence("prod", "leader"),
                          key_lock_holder("prod", "leader") };
        static const int kind[] = { 1, 2, 3, 0 };
        for (size_t i = 0; i < sizeof built / sizeof built[0]; i++) {
                char ns[65] = "";
                ck_assert_ptr_nonnull(built[i]);
                ck_assert_msg(doctor_classify_key(built[i], ns, sizeof ns) == kind[i], "built %zu: %s", i, built[i]);
                if (kind[i])
                        ck_assert_str_eq(ns, "prod");
                free(built[i]);
        }
}
END_TEST

START_TEST(test_namespaces) {
        /* alive > 0: agents run there; leader: a coordinatord leads there */
        static const struct doctor_ns prod_both[] = { { "prod", 3, 3, true, true } };
        static const struct doctor_ns mismatch[] = { { "prod", 3, 3, false, false }, { "default", 0, 0, true, true } };
        static const struct doctor_ns agents_only[] = { { "prod", 2, 2, false, true } };
        static const struct doctor_ns agents_never[] = { { "prod", 2, 2, false, false } };
        static const struct doctor_ns cd_only[] = { { "default", 0, 0, true, true } };
        static const struct doctor_ns stray_cd[] = { { "prod", 3, 3, true, true }, { "default", 0, 0, true, true } };
        static const struct doctor_ns stale[] = { { "old", 5, 0, false, true } };
        static const struct doctor_ns two_ok[] = { { "prod", 3, 3, true, true }, { "stage", 1, 1, true, true } };
        static const struct doctor_ns partial[] = { { "prod", 3, 3, true, true }, { "stage", 1, 1, false, false } };
        static const struct doctor_ns lost_only[] = { { "prod", 4, 0, true, true } };
        const struct {
                const struct doctor_ns *ns;
                size_t n;
                const char *focus;
                enum doctor_status want;
                const char *const *says;
        } t[] = {
                { prod_both, 1, NULL, DOCTOR_OK, S("'prod'") },
                { prod_both, 1, "prod", DOCTOR_OK, S("namespace 'prod'", "3 live instances") },
                { mismatch, 2, NULL, DOCTOR_FAIL,
                  S("agents register in namespace 'prod' but coordinatord runs in 'default'") },
                { mismatch, 2, "prod", DOCTOR_FAIL,
                  S("agents register in namespace 'prod' but coordinatord runs in 'default'") },
                { mismatch, 2, "default", DOCTOR_FAIL,
                  S("coordinatord runs in namespace 'default' but agents register in 'prod'") },
                { mismatch, 2, "other", DOCTOR_FAIL, S("nothing runs in namespace 'other'", "'prod'", "'default'") },
                { agents_only, 1, NULL, DOCTOR_FAIL, S("'prod'", "no coordinatord leads") },
                { agents_only, 1, "prod", DOCTOR_FAIL, S("no coordinatord leads there now (one did before)") },
                { agents_never, 1, "prod", DOCTOR_FAIL, S("none ever did") },
                { cd_only, 1, NULL, DOCTOR_WARN, S("'default'", "no agent is alive") },
                { cd_only, 1, "default", DOCTOR_WARN, S("no agent is alive there") },
                { stray_cd, 2, NULL, DOCTOR_FAIL,
                  S("coordinatord runs in 'default' where no agent is alive, while agents register in 'prod'") },
                { stray_cd, 2, "prod", DOCTOR_OK, S("'prod'") },
                { stale, 1, NULL, DOCTOR_WARN, S("used before: 'old'") },
                { NULL, 0, NULL, DOCTOR_WARN, S("no coord data") },
                { NULL, 0, "prod", DOCTOR_WARN, S("'prod' is empty") },
                { two_ok, 2, NULL, DOCTOR_OK, S("'prod' and 'stage'") },
                { partial, 2, NULL, DOCTOR_FAIL, S("'stage'", "runs only in 'prod'") },
                { lost_only, 1, NULL, DOCTOR_WARN, S("'prod'", "no agent is alive") },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                ck_assert_msg(doctor_check_namespaces(t[i].ns, t[i].n, t[i].focus, true, NULL, msg, sizeof msg) ==
                                      t[i].want,
                              "row %zu: %s", i, msg);
                assert_msg(i, t[i].says, NULL);
        }
        /* An incomplete scan says so. */
        doctor_check_namespaces(prod_both, 1, NULL, false, "SCAN not permitted", msg, sizeof msg);
        assert_msg(99, S("(SCAN not permitted)"), NULL);
        doctor_check_namespaces(prod_both, 1, NULL, true, "SCAN not permitted", msg, sizeof msg);
        assert_msg(100, NULL, S("SCAN"));
}
END_TEST

START_TEST(test_config_namespaces) {
        static const struct doctor_config_ns same[] = { { "/a/agent.json", true, "prod" },
                                                        { "/a/coordinatord.json", false, "prod" } };
        static const struct doctor_config_ns differ[] = { { "/a/coordinatord.json", false, "default" },
                                                          { "/a/agent.json", true, "prod" } };
        static const struct doctor_config_ns agents[] = { { "/a/a1.json", true, "x" }, { "/a/a2.json", true, "y" } };
        static const struct doctor_config_ns mixed[] = { { "/a/a1.json", true, "x" },
                                                         { "/a/a2.json", true, "y" },
                                                         { "/a/cd.json", false, "x" } };

        ck_assert_int_eq(doctor_check_config_namespaces(same, 2, msg, sizeof msg), DOCTOR_OK);
        assert_msg(0, S("'prod'"), NULL);
        ck_assert_int_eq(doctor_check_config_namespaces(differ, 2, msg, sizeof msg), DOCTOR_FAIL);
        assert_msg(1, S("/a/agent.json uses namespace 'prod' but /a/coordinatord.json uses 'default'"), NULL);
        ck_assert_int_eq(doctor_check_config_namespaces(agents, 2, msg, sizeof msg), DOCTOR_FAIL);
        assert_msg(2, S("'x'", "'y'"), NULL);
        /* The agent/coordinatord pair is named, not the two agents. */
        ck_assert_int_eq(doctor_check_config_namespaces(mixed, 3, msg, sizeof msg), DOCTOR_FAIL);
        assert_msg(3, S("/a/a2.json uses namespace 'y' but /a/cd.json uses 'x'"), NULL);
        ck_assert_int_eq(doctor_check_config_namespaces(same, 1, msg, sizeof msg), DOCTOR_SKIP);
}
END_TEST

START_TEST(test_skew_ms) {
        const int64_t now = 1800000000000;
        static const struct {
                int64_t last_seen_ago, ttl, pttl, want;
        } t[] = {
                /* With a PTTL the write time is known exactly: now - (ttl - pttl). */
                { 1000, 3000, 2000, 0 },       /* written 1 s ago, says 1 s ago */
                { -3000, 3000, 2900, 3100 },   /* says 3 s in the future, written 100 ms ago */
                { 0, 3000, 3000, 0 },          /* just written */
                { 2500, 3000, 2900, -2400 },   /* written 100 ms ago, says 2.5 s ago: behind */
                { 600, 3000, 2900, -500 },
                /* Without a usable PTTL: only "within the last ttl" */
                { -800, 3000, -1, 800 },       /* ahead of now */
                { 2000, 3000, -1, 0 },         /* inside the window */
                { 5000, 3000, -1, -2000 },     /* older than the window */
                { 100, 3000, 9000, 0 },        /* PTTL larger than ttl: window */
                { 60000, -1, -1, 0 },          /* no ttl: only "ahead" is provable */
                { -200, -1, -1, 200 },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
                ck_assert_msg(doctor_skew_ms(now - t[i].last_seen_ago, t[i].ttl, t[i].pttl, now) == t[i].want,
                              "row %zu: got %lld, want %lld", i,
                              (long long) doctor_skew_ms(now - t[i].last_seen_ago, t[i].ttl, t[i].pttl, now),
                              (long long) t[i].want);
}
END_TEST

START_TEST(test_skew_thresholds) {
        static const struct {
                int64_t skew;
                enum doctor_status want;
        } t[] = {
                { 0, DOCTOR_OK },          { 499, DOCTOR_OK },       { 500, DOCTOR_OK },
                { 501, DOCTOR_WARN },      { -501, DOCTOR_WARN },    { 1250, DOCTOR_WARN },
                { 1251, DOCTOR_FAIL },     { -1251, DOCTOR_FAIL },   { 3000, DOCTOR_FAIL },
                { INT64_MIN, DOCTOR_FAIL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct doctor_skew s[] = { { "web-1", 3 }, { "web-2", t[i].skew } };
                ck_assert_msg(doctor_check_skew(s, 2, msg, sizeof msg) == t[i].want, "row %zu: %s", i, msg);
                if (t[i].want != DOCTOR_OK)
                        assert_msg(i, S("web-2", t[i].skew > 0 ? "ahead" : "behind", "NTP"), S("web-1"));
        }
        /* One verdict per host, its worst instance; several hosts named. */
        struct doctor_skew many[] = { { "a", 10 }, { "b", 3012 }, { "b", 20 }, { "c", -700 }, { "a", -5 } };
        ck_assert_int_eq(doctor_check_skew(many, 5, msg, sizeof msg), DOCTOR_FAIL);
        assert_msg(0, S("b 3012 ms ahead", "c 700 ms behind", "those hosts"), S("a 10 ms", "a 5 ms"));
        struct doctor_skew fine[] = { { "a", 10 }, { "a", -40 }, { "b", 3 } };
        ck_assert_int_eq(doctor_check_skew(fine, 3, msg, sizeof msg), DOCTOR_OK);
        assert_msg(1, S("2 hosts", "a, -40 ms"), NULL);
        ck_assert_int_eq(doctor_check_skew(NULL, 0, msg, sizeof msg), DOCTOR_SKIP);
}
END_TEST

START_TEST(test_local_clock) {
        static const struct {
                int64_t offset_usec;
                uint64_t rtt_usec;
                enum doctor_status want;
        } t[] = {
                { 0, 100, DOCTOR_OK },
                { 400000, 1000, DOCTOR_OK },
                { 600000, 1000, DOCTOR_WARN },
                { -600000, 1000, DOCTOR_WARN },
                { 600000, 300000, DOCTOR_OK },   /* within the uncertainty */
                { 2000000, 1000, DOCTOR_FAIL },
                { -2000000, 1000, DOCTOR_FAIL },
                { 2000000, 2000000, DOCTOR_WARN }, /* at least 1 s off */
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
                ck_assert_msg(doctor_check_local_clock(t[i].offset_usec, t[i].rtt_usec, msg, sizeof msg) == t[i].want,
                              "row %zu: %s", i, msg);
        doctor_check_local_clock(-20, 100, msg, sizeof msg);
        assert_msg(0, S("+0.0 ms off"), S("-0.0"));
}
END_TEST

START_TEST(test_probes) {
        static const struct doctor_probe all[] = { { "w1", "h1", "http" }, { "w2", "h2", "tcp" },
                                                   { "w3", "h3", "exec" } };
        static const struct doctor_probe one_none[] = { { "w1", "h1", "http" }, { "w2", "h2", "none" } };
        static const struct doctor_probe unknown[] = { { "w1", "h1", NULL }, { "w2", "h2", "" } };
        static const struct doctor_probe some_unknown[] = { { "w1", "h1", "http" }, { "w2", "h2", NULL } };

        ck_assert_int_eq(doctor_check_probes(all, 3, msg, sizeof msg), DOCTOR_OK);
        assert_msg(0, S("http 1, tcp 1, exec 1"), NULL);
        ck_assert_int_eq(doctor_check_probes(one_none, 2, msg, sizeof msg), DOCTOR_WARN);
        assert_msg(1, S("1 instance without a health check", "'w2' on 'h2'", "agent.json"), S("'w1'"));
        ck_assert_int_eq(doctor_check_probes(unknown, 2, msg, sizeof msg), DOCTOR_SKIP);
        assert_msg(2, S("probe"), NULL);
        ck_assert_int_eq(doctor_check_probes(some_unknown, 2, msg, sizeof msg), DOCTOR_OK);
        assert_msg(3, S("1 does not say"), NULL);
        ck_assert_int_eq(doctor_check_probes(NULL, 0, msg, sizeof msg), DOCTOR_SKIP);
}
END_TEST

START_TEST(test_file_modes) {
        static const struct {
                mode_t mode;
                bool owner_ok, group_expected;
                enum doctor_status want;
                const char *says;
        } t[] = {
                { S_IFREG | 0600, true, false, DOCTOR_OK, "mode 0600" },
                { S_IFREG | 0400, true, false, DOCTOR_OK, "mode 0400" },
                { S_IFREG | 0640, true, false, DOCTOR_WARN, "readable by its group" },
                { S_IFREG | 0640, true, true, DOCTOR_OK, "mode 0640" },
                { S_IFREG | 0620, true, false, DOCTOR_WARN, "writable by its group" },
                { S_IFREG | 0644, true, false, DOCTOR_FAIL, "readable by everyone (mode 0644)" },
                { S_IFREG | 0604, true, true, DOCTOR_FAIL, "readable by everyone" },
                { S_IFREG | 0602, true, false, DOCTOR_FAIL, "writable by everyone" },
                { S_IFREG | 0666, false, false, DOCTOR_FAIL, "chmod 0600 /etc/coord/ci.token" },
                { S_IFREG | 0600, false, false, DOCTOR_WARN, "owned by bob" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct doctor_file f = { .path = "/etc/coord/ci.token", .what = "token_file in x.json",
                                         .mode = t[i].mode, .uid = 1000, .owner = "bob",
                                         .owner_ok = t[i].owner_ok, .group_expected = t[i].group_expected };
                ck_assert_msg(doctor_check_file(&f, msg, sizeof msg) == t[i].want, "row %zu: %s", i, msg);
                assert_msg(i, S(t[i].says, "/etc/coord/ci.token"), NULL);
        }
        struct doctor_file anon = { .path = "/x", .what = "w", .mode = 0600, .uid = 4242, .owner_ok = false };
        doctor_check_file(&anon, msg, sizeof msg);
        assert_msg(0, S("uid 4242"), NULL);
}
END_TEST

START_TEST(test_config_parse) {
        const struct {
                const char *json, *name;
                bool agent;
                const char *ns;
                size_t n_files, n_inline;
                const char *const *says; /* file keys and inline secret descriptions, joined */
                const char *const *avoid;
        } t[] = {
                { "{\"listen\":\"127.0.0.1:8470\",\"redis\":\"redis://127.0.0.1:6379/0\",\"namespace\":\"prod\","
                  "\"tokens\":[{\"name\":\"ci\",\"role\":\"deploy\",\"sha256\":\"ab\"},"
                  "{\"name\":\"ops\",\"role\":\"admin\",\"token_file\":\"/run/credentials/c/ops\"}]}",
                  "/etc/coord/coordinatord.json", false, "prod", 1, 0, S("tokens[1].token_file"), NULL },
                { "{\"redis\":\"redis://u:s3cret@h:6379/0\",\"tokens\":[{\"name\":\"a\",\"role\":\"read\","
                  "\"token\":\"0123456789abcdef0123\"}]}",
                  "cd.json", false, "default", 0, 2, S("the password in redis", "tokens[0].token"),
                  S("s3cret", "0123") },
                { "{\"redis\":\"h:6379,password=p@ss,ssl=false\",\"services\":[]}", "/x/y.json", true, "default", 0,
                  1, S("the password in redis"), S("p@ss") },
                { "{\"redis_file\":\"/etc/coord/credentials/redis\",\"namespace\":\"prod\",\"services\":[{\"name\":"
                  "\"web\",\"version\":\"1\",\"config_file\":\"/run/coord/web.env\"}]}",
                  "agent.json", true, "prod", 2, 0, S("redis_file", "services[0].config_file"), NULL },
                { "{\"tls_ca_file\":\"/etc/ssl/ca.pem\",\"tls_cert_file\":\"/c.pem\",\"tls_key_file\":\"/k.pem\"}",
                  "/etc/coord/agent.json", true, "default", 1, 0, S("tls_key_file"), S("tls_ca_file") },
                { "{\"redis\":\"redis://127.0.0.1:6379/0\"}", "coordinatord.json", false, "default", 0, 0, NULL, NULL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                json_t *j = json_loads(t[i].json, 0, NULL);
                struct doctor_config c;
                ck_assert_ptr_nonnull(j);
                ck_assert_int_eq(doctor_config_parse(j, t[i].name, &c), 0);
                ck_assert_msg(c.agent == t[i].agent, "row %zu: agent", i);
                ck_assert_str_eq(c.ns, t[i].ns);
                ck_assert_uint_eq(c.n_files, t[i].n_files);
                ck_assert_uint_eq(c.n_inline, t[i].n_inline);
                msg[0] = '\0';
                for (size_t k = 0; k < c.n_files; k++) {
                        strncat(msg, c.file_keys[k], sizeof msg - strlen(msg) - 2);
                        strncat(msg, " ", sizeof msg - strlen(msg) - 1);
                }
                for (size_t k = 0; k < c.n_inline; k++) {
                        strncat(msg, c.inline_secrets[k], sizeof msg - strlen(msg) - 2);
                        strncat(msg, " ", sizeof msg - strlen(msg) - 1);
                }
                assert_msg(i, t[i].says, t[i].avoid);
                doctor_config_done(&c);
                json_decref(j);
        }
        /* config_file may be group-readable by design; secrets may not. */
        json_t *j = json_loads("{\"redis_file\":\"/r\",\"services\":[{\"config_file\":\"/c\"}]}", 0, NULL);
        struct doctor_config c;
        ck_assert_int_eq(doctor_config_parse(j, NULL, &c), 0);
        ck_assert_uint_eq(c.n_files, 2);
        for (size_t k = 0; k < 2; k++)
                ck_assert(c.file_group_ok[k] == (strcmp(c.file_paths[k], "/c") == 0));
        ck_assert_str_eq(c.redis_file, "/r");
        doctor_config_done(&c);
        json_decref(j);
        j = json_array();
        ck_assert_int_eq(doctor_config_parse(j, NULL, &c), -EINVAL);
        json_decref(j);
}
END_TEST

START_TEST(test_redis_password) {
        static const struct {
                const char *s;
                bool want;
        } t[] = {
                { "redis://127.0.0.1:6379/0", false },
                { "redis://:pw@h:6379/0", true },
                { "redis://user:pw@h:6379/0", true },
                { "h:6379", false },
                { "h:6379,password=x", true },
                { "h:6379,Password=x,ssl=false", true },
                { "h:6379,user=coord", false },
                { "redis://u:p@h:99999", true }, /* unparseable, still looks like one */
                { "h:6379,password=", false },        /* empty: nothing to hide */
                { "h:6379,password=x,bogus=1", true }, /* unparseable, still looks like one */
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
                ck_assert_msg(doctor_redis_has_password(t[i].s) == t[i].want, "row %zu: %s", i, t[i].s);
}
END_TEST

START_TEST(test_listen_url) {
        static const struct {
                const char *listen, *want;
        } t[] = {
                { "127.0.0.1:8470", "http://127.0.0.1:8470" },
                { "0.0.0.0:9000", "http://127.0.0.1:9000" },
                { "*:8470", "http://127.0.0.1:8470" },
                { "[::]:8470", "http://[::1]:8470" },
                { "[::1]:8470", "http://[::1]:8470" },
                { "localhost:8470", "http://localhost:8470" },
                { "nohost", NULL },
                { "h:0", NULL },
                { "h:x", NULL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                char *u = doctor_listen_to_url(t[i].listen);
                if (t[i].want)
                        ck_assert_str_eq(u, t[i].want);
                else
                        ck_assert_ptr_null(u);
                free(u);
        }
}
END_TEST

START_TEST(test_leader) {
        static const struct doctor_leader one[] = { { "http://a", 200, "cd-a", 7, "prod", 3, NULL } };
        static const struct doctor_leader agree[] = { { "http://a", 200, "cd-a", 7, "prod", 3, NULL },
                                                      { "http://b", 200, "cd-a", 7, "prod", 3, NULL } };
        static const struct doctor_leader disagree[] = { { "http://a", 200, "cd-a", 7, "prod", 3, NULL },
                                                         { "http://b", 200, "cd-b", 2, "default", 0, NULL } };
        static const struct doctor_leader none[] = { { "http://a", 200, NULL, 0, NULL, 0, NULL } };
        static const struct doctor_leader elsewhere[] = { { "http://a", 200, "cd-a", 7, NULL, 0, NULL } };
        static const struct doctor_leader wrong_ns[] = { { "http://a", 200, "cd-a", 7, "default", 0, "prod" } };
        static const struct doctor_leader refused[] = { { "http://a", 401, NULL, 0, NULL, 0, NULL } };
        static const struct doctor_leader down[] = { { "http://a", 0, NULL, 0, NULL, 0, NULL },
                                                     { "http://b", 503, NULL, 0, NULL, 0, NULL } };
        static const struct doctor_leader unreached[] = { { "http://a", 0, NULL, 0, NULL, 0, NULL } };
        const struct {
                const struct doctor_leader *v;
                size_t n;
                bool redis;
                enum doctor_status want;
                const char *const *says;
        } t[] = {
                { one, 1, true, DOCTOR_OK, S("leader 'cd-a' (term 7) in namespace 'prod'") },
                { agree, 2, true, DOCTOR_OK, S("all 2 coordinatords agree") },
                { disagree, 2, true, DOCTOR_FAIL, S("disagree", "'cd-a'", "'cd-b'") },
                { none, 1, true, DOCTOR_FAIL, S("sees no leader") },
                { elsewhere, 1, true, DOCTOR_WARN, S("another Redis or database") },
                { elsewhere, 1, false, DOCTOR_OK, S("leader 'cd-a'") },
                { wrong_ns, 1, true, DOCTOR_FAIL, S("runs in namespace 'default'", "agents register in 'prod'") },
                { refused, 1, true, DOCTOR_SKIP, S("token") },
                { down, 2, true, DOCTOR_FAIL, S("http://b answers 503") },
                { unreached, 1, true, DOCTOR_SKIP, S("no coordinatord answered") },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                ck_assert_msg(doctor_check_leader(t[i].v, t[i].n, t[i].redis, msg, sizeof msg) == t[i].want,
                              "row %zu: %s", i, msg);
                assert_msg(i, t[i].says, NULL);
        }
}
END_TEST

START_TEST(test_token) {
        static const struct {
                bool have;
                long rs, ds, as;
                enum doctor_status want;
                const char *says;
        } t[] = {
                { true, 200, 403, 0, DOCTOR_OK, "read role" },
                { true, 200, 400, 403, DOCTOR_OK, "deploy role" },
                { true, 200, 400, 400, DOCTOR_OK, "admin role" },
                { true, 401, 0, 0, DOCTOR_FAIL, "refuses the token" },
                { false, 401, 0, 0, DOCTOR_SKIP, "no token given" },
                { false, 200, 400, 400, DOCTOR_WARN, "insecure_no_auth" },
                { true, 0, 0, 0, DOCTOR_SKIP, "no coordinatord" },
                { true, 503, 0, 0, DOCTOR_WARN, "503" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                ck_assert_msg(doctor_check_token(t[i].have, t[i].rs, t[i].ds, t[i].as, msg, sizeof msg) == t[i].want,
                              "row %zu: %s", i, msg);
                assert_msg(i, S(t[i].says), NULL);
        }
}
END_TEST

START_TEST(test_report) {
        struct doctor_report r = {};
        char *text;
        json_t *j;

        ck_assert_int_eq(doctor_exit_code(&r, true), EXIT_OK);
        ck_assert_int_eq(doctor_report_add(&r, "redis", DOCTOR_OK, "answers"), 0);
        ck_assert_int_eq(doctor_report_addf(&r, "clock-skew", DOCTOR_WARN, "host %s", "h\033[2Jx"), 0);
        ck_assert_int_eq(doctor_report_add(&r, "token", DOCTOR_SKIP, "no token"), 0);
        ck_assert_int_eq(doctor_report_worst(&r), DOCTOR_WARN);
        ck_assert_int_eq(doctor_exit_code(&r, true), EXIT_OK);
        ck_assert_int_eq(doctor_exit_code(&r, false), EXIT_UNAVAILABLE);

        text = doctor_render_text(&r, false);
        ck_assert_ptr_nonnull(text);
        /* Aligned columns; control characters from the server never reach the terminal. */
        ck_assert_str_eq(text, "ok    redis       answers\n"
                               "warn  clock-skew  host h [2Jx\n"
                               "skip  token       no token\n");
        free(text);

        ck_assert_int_eq(doctor_report_add(&r, "persistence", DOCTOR_FAIL, "neither"), 0);
        ck_assert_int_eq(doctor_exit_code(&r, true), EXIT_FAILED);
        ck_assert_int_eq(doctor_exit_code(&r, false), EXIT_UNAVAILABLE);
        text = doctor_render_text(&r, true);
        ck_assert_ptr_nonnull(strstr(text, "\033[1;31mFAIL\033[0m  persistence  neither\n"));
        ck_assert_ptr_nonnull(strstr(text, "\033[32mok  \033[0m  redis"));
        free(text);

        j = doctor_render_json(&r);
        ck_assert_ptr_nonnull(j);
        ck_assert_uint_eq(json_array_size(json_object_get(j, "checks")), 4);
        json_t *c = json_array_get(json_object_get(j, "checks"), 3);
        ck_assert_str_eq(json_string_value(json_object_get(c, "name")), "persistence");
        ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "fail");
        ck_assert_str_eq(json_string_value(json_object_get(c, "message")), "neither");
        json_decref(j);
        doctor_report_done(&r);
        ck_assert_uint_eq(r.n, 0);
}
END_TEST

START_TEST(test_message_bounded) {
        struct doctor_ns many[40];
        char names[40][16];
        char small[64];

        for (size_t i = 0; i < 40; i++) {
                snprintf(names[i], sizeof names[i], "ns%zu", i);
                many[i] = (struct doctor_ns) { .name = names[i], .instances = 1, .alive = 1 };
        }
        ck_assert_int_eq(doctor_check_namespaces(many, 40, NULL, true, NULL, msg, sizeof msg), DOCTOR_FAIL);
        assert_msg(0, S("'ns0', 'ns1', 'ns2', 'ns3' and 36 more"), S("ns4'"));
        /* A short buffer is cut with "..." and stays terminated. */
        ck_assert_int_eq(doctor_check_namespaces(many, 40, NULL, true, NULL, small, sizeof small), DOCTOR_FAIL);
        ck_assert_uint_eq(strlen(small), sizeof small - 1);
        ck_assert_str_eq(small + sizeof small - 4, "...");
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_status_table);
        tcase_add_test(tc, test_version);
        tcase_add_test(tc, test_persistence_config);
        tcase_add_test(tc, test_persistence_info);
        tcase_add_test(tc, test_eviction);
        tcase_add_test(tc, test_classify_key);
        tcase_add_test(tc, test_namespaces);
        tcase_add_test(tc, test_config_namespaces);
        tcase_add_test(tc, test_skew_ms);
        tcase_add_test(tc, test_skew_thresholds);
        tcase_add_test(tc, test_local_clock);
        tcase_add_test(tc, test_probes);
        tcase_add_test(tc, test_file_modes);
        tcase_add_test(tc, test_config_parse);
        tcase_add_test(tc, test_redis_password);
        tcase_add_test(tc, test_listen_url);
        tcase_add_test(tc, test_leader);
        tcase_add_test(tc, test_token);
        tcase_add_test(tc, test_report);
        tcase_add_test(tc, test_message_bounded);
}

TEST_MAIN("doctor", add_tests)
