/* Unit tests for agent/state.c: state_dir records of the instance and of
 * commands in flight. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "state.h"
#include "strutil.h"
#include "test-main.h"

static char dir[] = "/tmp/test-state.XXXXXX";

static char *path_in(const char *name) {
        return strdup_printf("%s/%s", dir, name);
}

START_TEST(test_state_records) {
        char *sd = path_in("state"), *v = NULL;
        json_t *rec, *got = NULL;
        int64_t cv = -1;

        ck_assert_int_eq(state_init(sd), 0);
        ck_assert_int_eq(state_load_instance(sd, "web-1", &v, &cv), -ENOENT);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(cv, -1);
        ck_assert_int_eq(state_save_instance(sd, "web-1", "2.0", 7), 0);
        ck_assert_int_eq(state_load_instance(sd, "web-1", &v, &cv), 0);
        ck_assert_str_eq(v, "2.0");
        ck_assert_int_eq(cv, 7);
        free(v);

        ck_assert_int_eq(state_command_get(sd, "c1", &got), -ENOENT);
        rec = json_pack("{s:s}", "state", "started");
        ck_assert_int_eq(state_command_put(sd, "c1", rec), 0);
        ck_assert_int_eq(state_command_get(sd, "c1", &got), 0);
        ck_assert_str_eq(json_string_value(json_object_get(got, "state")), "started");
        json_decref(got);
        ck_assert_int_eq(state_command_remove(sd, "c1"), 0);
        ck_assert_int_eq(state_command_remove(sd, "c1"), 0);
        ck_assert_int_eq(state_command_get(sd, "c1", &got), -ENOENT);
        json_decref(rec);
        free(sd);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_state_records);
}

TEST_MAIN_TMPDIR("state", dir, add_tests)
