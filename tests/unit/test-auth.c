/* Unit tests for coordinatord/auth.c: bearer tokens (plain and SHA-256), roles,
 * and the open mode without tokens. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coordinatord/auth.h"
#include "coordinatord/cd-config.h"
#include "strutil.h"
#include "test-main.h"

START_TEST(test_auth) {
        char h_read[65];
        sha256_hex("reader-token-0123456789", strlen("reader-token-0123456789"), h_read);
        for (char *p = h_read; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char) (*p - 'a' + 'A'); /* upper-case hex is accepted */
        struct cd_token tokens[] = {
                { .name = (char *) "r", .role = (char *) "read", .sha256 = h_read },
                { .name = (char *) "a", .role = (char *) "admin", .token = (char *) "admin-token-0123456789" },
        };
        struct auth *a = auth_new(tokens, 2);
        const char *name;

        ck_assert_ptr_nonnull(a);
        ck_assert(!auth_disabled(a));
        ck_assert_int_eq(auth_check(a, "Bearer reader-token-0123456789", &name), ROLE_READ);
        ck_assert_str_eq(name, "r");
        ck_assert_int_eq(auth_check(a, "bearer  admin-token-0123456789 ", &name), ROLE_ADMIN);
        ck_assert_str_eq(name, "a");
        ck_assert_int_eq(auth_check(a, "Bearer admin-token-012345678", &name), ROLE_NONE);
        ck_assert_ptr_null(name);
        ck_assert_int_eq(auth_check(a, "Basic YWRtaW4=", NULL), ROLE_NONE);
        ck_assert_int_eq(auth_check(a, "Bearer ", NULL), ROLE_NONE);
        ck_assert_int_eq(auth_check(a, NULL, NULL), ROLE_NONE);
        auth_free(a);

        struct auth *open = auth_new(NULL, 0);
        ck_assert(auth_disabled(open));
        ck_assert_int_eq(auth_check(open, NULL, NULL), ROLE_ADMIN);
        auth_free(open);
        ck_assert_int_eq(role_from_string("deploy"), ROLE_DEPLOY);
        ck_assert_int_eq(role_from_string("root"), -EINVAL);
}
END_TEST

START_TEST(test_role_names) {
        for (int r = ROLE_READ; r < _ROLE_MAX; r++)
                ck_assert_int_eq(role_from_string(role_to_string((enum role) r)), r);
        ck_assert_str_eq(role_to_string(ROLE_NONE), "none");
        ck_assert_int_eq(role_from_string("none"), -EINVAL);
        ck_assert_int_eq(role_from_string("Admin"), -EINVAL);
        ck_assert_int_eq(role_from_string(NULL), -EINVAL);
        ck_assert_ptr_null(role_to_string(_ROLE_MAX));
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_auth);
        tcase_add_test(tc, test_role_names);
}

TEST_MAIN("auth", add_tests)
