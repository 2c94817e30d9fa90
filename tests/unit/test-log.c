/* Unit tests for lib/log.c: level names, the secret set (masking, the length
 * floor, duplicates, its bound, clearing) and that a logged line never shows a
 * registered secret, in the message or in its fields. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "strutil.h"
#include "test-main.h"

/* The most secrets the set holds (LOG_SECRETS_MAX in log.c). */
#define SECRETS_MAX 64

#define CAPTURE_MAX 32768

/* Run fn(arg) with stderr on a temporary file (and the log forced to stderr);
 * the text written (caller frees). */
static char *capture_stderr(void (*fn)(const void *arg), const void *arg) {
        char path[] = "/tmp/coord-test-log.XXXXXX";
        int fd, saved;
        char *buf = calloc(1, CAPTURE_MAX);
        ssize_t n;

        ck_assert_ptr_nonnull(buf);
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        log_force_stderr(1);
        fn(arg);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        lseek(fd, 0, SEEK_SET);
        n = read(fd, buf, CAPTURE_MAX - 1);
        ck_assert_int_ge(n, 0);
        close(fd);
        unlink(path);
        return buf;
}

static void log_error_msg(const void *msg) {
        log_error("%s", (const char *) msg);
}

/* Run log_error(msg) with stderr on a temporary file; the text written (caller frees). */
static char *capture_error(const char *msg) {
        return capture_stderr(log_error_msg, msg);
}

static void check_mask(const char *in, const char *want) {
        char *m = log_mask_secrets(in);

        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m, want);
        free(m);
}

START_TEST(test_level_from_string) {
        static const struct {
                const char *in;
                int want;
        } t[] = {
                { "emerg", LOG_EMERG },     { "alert", LOG_ALERT },   { "crit", LOG_CRIT },
                { "error", LOG_ERR },       { "err", LOG_ERR },       { "warning", LOG_WARNING },
                { "warn", LOG_WARNING },    { "notice", LOG_NOTICE }, { "info", LOG_INFO },
                { "debug", LOG_DEBUG },     { "0", 0 },               { "3", 3 },
                { "7", 7 },                 { "8", -EINVAL },         { "-1", -EINVAL },
                { "07", -EINVAL },          { "", -EINVAL },          { "ERROR", -EINVAL },
                { "Info", -EINVAL },        { "debug ", -EINVAL },    { "trace", -EINVAL },
        };

        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
                ck_assert_msg(log_level_from_string(t[i].in) == t[i].want, "\"%s\": %d, want %d", t[i].in,
                              log_level_from_string(t[i].in), t[i].want);
        ck_assert_int_eq(log_level_from_string(NULL), -EINVAL);
}
END_TEST

START_TEST(test_level_to_string) {
        for (int l = LOG_EMERG; l <= LOG_DEBUG; l++)
                ck_assert_int_eq(log_level_from_string(log_level_to_string(l)), l);
        ck_assert_str_eq(log_level_to_string(LOG_ERR), "error");
        ck_assert_ptr_null(log_level_to_string(-1));
        ck_assert_ptr_null(log_level_to_string(LOG_DEBUG + 1));
}
END_TEST

START_TEST(test_max_level) {
        int old = log_get_max_level();
        char *out;

        log_set_max_level(LOG_WARNING);
        ck_assert_int_eq(log_get_max_level(), LOG_WARNING);
        out = capture_error("shown at warning");
        ck_assert_msg(strstr(out, ": error: shown at warning\n"), "got: %s", out);
        free(out);
        log_set_max_level(LOG_CRIT);
        out = capture_error("hidden at crit");
        ck_assert_str_eq(out, "");
        free(out);
        /* The return value is -abs(error), also when the entry is filtered. */
        ck_assert_int_eq(log_error_errno(EIO, "x"), -EIO);
        ck_assert_int_eq(log_error_errno(-EIO, "x"), -EIO);
        ck_assert_int_eq(log_error_errno(0, "x"), 0);
        log_set_max_level(old);
}
END_TEST

static void log_secret_fields(const void *unused) {
        const char *fields[] = { "COORD_INSTANCE=web-1", "COORD_REDIS=redis://:s3cr3t,p@ss@h", NULL };

        (void) unused;
        log_open("test");
        log_fields(LOG_ERR, fields, "connecting with s3cr3t,p@ss failed");
}

START_TEST(test_mask_secrets) {
        _cleanup_free_ char *buf = NULL;
        char *m;

        log_clear_secrets();
        log_add_secret("s3cr3t,p@ss");
        log_add_secret("ab"); /* too short: ignored */
        m = log_mask_secrets("password=s3cr3t,p@ss and again s3cr3t,p@ss; ab");
        ck_assert_str_eq(m, "password=***** and again *****; ab");
        free(m);

        /* The secret never reaches stderr, in the message or in fields. */
        buf = capture_stderr(log_secret_fields, NULL);
        ck_assert_uint_gt(strlen(buf), 0);
        ck_assert_msg(strstr(buf, "s3cr3t") == NULL, "secret leaked: %s", buf);
        ck_assert_msg(strstr(buf, "connecting with ***** failed"), "got: %s", buf);
        ck_assert_msg(strstr(buf, "instance=web-1"), "field missing: %s", buf);
}
END_TEST

/* Secrets shorter than the mask, repeated up to the end of a line that must be
 * cut: the line shrinks safely and never shows a secret (ASan checks the bounds). */
static void log_error_big(const void *big) {
        log_error("%s", (const char *) big);
        log_error("x%s", (const char *) big + 1);
}

START_TEST(test_mask_long_line) {
        static const char *const secrets[] = { "abc", "abcd" };
        static char big[9000];

        for (size_t k = 0; k < 2; k++) {
                size_t sl = strlen(secrets[k]), o = 0;
                _cleanup_free_ char *buf = NULL;

                log_clear_secrets();
                log_add_secret(secrets[k]);
                while (o + sl < sizeof big - 1) {
                        memcpy(big + o, secrets[k], sl);
                        o += sl;
                }
                big[o] = '\0';
                buf = capture_stderr(log_error_big, big);
                ck_assert_uint_gt(strlen(buf), 0);
                ck_assert_msg(strstr(buf, secrets[k]) == NULL, "secret %s shown", secrets[k]);
                ck_assert_msg(strstr(buf, "*****"), "nothing masked");
        }
        log_clear_secrets();
}
END_TEST

START_TEST(test_secret_set) {
        char name[SECRETS_MAX + 1][16];

        log_clear_secrets();
        log_add_secret(NULL);
        log_add_secret("");
        log_add_secret("xy");      /* shorter than 3: ignored */
        log_add_secret("pw1");     /* 3: the shortest masked */
        log_add_secret("pw1");     /* a duplicate: one entry */
        check_mask("xy pw1 pw1x xpw1", "xy ***** *****x x*****");
        ck_assert_ptr_null(log_mask_secrets(NULL));
        check_mask("", "");

        /* Longer than the mask, shorter than it, adjacent, overlapping. */
        log_add_secret("hunter2-long-secret");
        check_mask("a=hunter2-long-secret,b=pw1pw1", "a=*****,b=**********");

        log_clear_secrets();
        check_mask("pw1 hunter2-long-secret", "pw1 hunter2-long-secret");

        /* The set is bounded: past SECRETS_MAX distinct secrets, more are ignored. */
        for (int i = 0; i <= SECRETS_MAX; i++) {
                snprintf(name[i], sizeof name[i], "sec-%03d", i);
                log_add_secret(name[i]);
        }
        for (int i = 0; i < SECRETS_MAX; i++)
                check_mask(name[i], "*****");
        check_mask(name[SECRETS_MAX], name[SECRETS_MAX]);
        /* Clearing frees the room again. */
        log_clear_secrets();
        check_mask(name[0], name[0]);
        log_add_secret(name[SECRETS_MAX]);
        check_mask(name[SECRETS_MAX], "*****");
        log_clear_secrets();
}
END_TEST

/* A line with a secret is written masked, never with the secret; the rest intact. */
START_TEST(test_logged_line_masked) {
        char *out;

        log_open("test-log");
        log_clear_secrets();
        log_add_secret("tok-9f8e7d");
        out = capture_error("auth tok-9f8e7d rejected (tok-9f8e7d)");
        ck_assert_msg(strstr(out, "tok-9f8e7d") == NULL, "secret leaked: %s", out);
        ck_assert_msg(strstr(out, " test-log[") != NULL, "ident missing: %s", out);
        ck_assert_msg(strstr(out, ": error: auth ***** rejected (*****)\n") != NULL, "got: %s", out);
        free(out);
        log_clear_secrets();
        out = capture_error("auth tok-9f8e7d rejected");
        ck_assert_msg(strstr(out, ": error: auth tok-9f8e7d rejected\n") != NULL, "got: %s", out);
        free(out);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_level_from_string);
        tcase_add_test(tc, test_level_to_string);
        tcase_add_test(tc, test_max_level);
        tcase_add_test(tc, test_mask_secrets);
        tcase_add_test(tc, test_mask_long_line);
        tcase_add_test(tc, test_secret_set);
        tcase_add_test(tc, test_logged_line_masked);
}

TEST_MAIN("log", add_tests)
