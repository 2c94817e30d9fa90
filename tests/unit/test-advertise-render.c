/* Unit tests for agent/advertise-render.c: env and json rendering, secrets. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advertise-render.h"

static char *render(const char *json, const char *format, int *ret_r, char *err, size_t errlen) {
        json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
        char *out = NULL;
        size_t len = 0;

        ck_assert_ptr_nonnull(j);
        err[0] = '\0';
        *ret_r = advertise_render(j, format, &out, &len, err, errlen);
        if (*ret_r == 0)
                ck_assert_uint_eq(len, strlen(out));
        json_decref(j);
        return out;
}

START_TEST(test_env_nested) {
        char err[256];
        int r;
        char *out = render("{\"UseDistributedMode\":true,\"Off\":false,"
                           "\"ConnectionStrings\":{\"Redis\":\"r:6379,password=pw1,ssl=True\"},"
                           "\"Logging\":{\"LogLevel\":{\"Default\":\"Warning\",\"Microsoft.AspNetCore\":\"Error\"}},"
                           "\"Hosts\":[\"a\",\"b\"],\"N\":42,\"F\":1.5,\"Z\":null}",
                           "env", &r, err, sizeof err);

        ck_assert_int_eq(r, 0);
        ck_assert_str_eq(out, "UseDistributedMode=true\n"
                              "Off=false\n"
                              "ConnectionStrings__Redis=r:6379,password=pw1,ssl=True\n"
                              "Logging__LogLevel__Default=Warning\n"
                              "Logging__LogLevel__Microsoft.AspNetCore=Error\n"
                              "Hosts__0=a\n"
                              "Hosts__1=b\n"
                              "N=42\n"
                              "F=1.5\n"
                              "Z=\n");
        free(out);
}
END_TEST

START_TEST(test_env_quoting) {
        char err[256];
        int r;
        char *out = render("{\"A\":\"Host=db;Password=x y\",\"B\":\"say \\\"hi\\\" $HOME `id` \\\\\",\"C\":\"\"}",
                           "env", &r, err, sizeof err);

        ck_assert_int_eq(r, 0);
        ck_assert_str_eq(out, "A=\"Host=db;Password=x y\"\n"
                              "B=\"say \\\"hi\\\" \\$HOME \\`id\\` \\\\\"\n"
                              "C=\n");
        free(out);
}
END_TEST

START_TEST(test_env_bad_keys) {
        char err[256];
        int r;

        ck_assert_ptr_null(render("{\"Ok\":{\"bad key\":1}}", "env", &r, err, sizeof err));
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(err, "Ok__bad key"), "error names the key: %s", err);
        ck_assert_ptr_null(render("{\"A=B\":1}", "env", &r, err, sizeof err));
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_ptr_null(render("[1,2]", "env", &r, err, sizeof err));
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_ptr_null(render("{}", "yaml", &r, err, sizeof err));
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(err, "yaml"), "%s", err);
}
END_TEST

START_TEST(test_json) {
        char err[256];
        int r;
        char *out = render("{\"B\":1,\"A\":{\"X\":true}}", "json", &r, err, sizeof err);
        json_t *back;

        ck_assert_int_eq(r, 0);
        ck_assert(out[strlen(out) - 1] == '\n');
        /* Order preserved, indented. */
        ck_assert_ptr_nonnull(strstr(out, "\"B\": 1"));
        ck_assert(strstr(out, "\"B\"") < strstr(out, "\"A\""));
        back = json_loads(out, 0, NULL);
        ck_assert_ptr_nonnull(back);
        ck_assert(json_is_true(json_object_get(json_object_get(back, "A"), "X")));
        json_decref(back);
        free(out);
}
END_TEST

static char found[16][64];
static size_t n_found;

static void collect(const char *s, void *ud) {
        if (n_found < 16)
                snprintf(found[n_found++], sizeof found[0], "%s", s);
}

static bool has(const char *s) {
        for (size_t i = 0; i < n_found; i++)
                if (strcmp(found[i], s) == 0)
                        return true;
        return false;
}

START_TEST(test_secrets) {
        json_t *j = json_loads("{\"ConnectionStrings\":{\"Redis\":\"r:6379,password=redispw,ssl=True\","
                               "\"Db\":\"Host=db;Username=u;Password=dbpw;\",\"Url\":\"redis://user:urlpw@h:1/0\"},"
                               "\"Jwt\":{\"SigningSecret\":\"sig\"},\"ApiToken\":\"tok\",\"AdminPassword\":\"adm\","
                               "\"Secrets\":{\"Nested\":{\"Deep\":\"deepval\"}},\"Plain\":\"visible\",\"Port\":8080}",
                               0, NULL);

        n_found = 0;
        advertise_walk_secrets(j, collect, NULL);
        ck_assert(has("redispw"));
        ck_assert(has("dbpw"));
        ck_assert(has("urlpw"));
        ck_assert(has("sig"));
        ck_assert(has("tok"));
        ck_assert(has("adm"));
        ck_assert(has("deepval"));
        ck_assert(!has("visible"));
        ck_assert(!has("8080"));
        ck_assert(!has("r:6379,password=redispw,ssl=True"));
        json_decref(j);
}
END_TEST

int main(void) {
        Suite *s = suite_create("advertise-render");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_env_nested);
        tcase_add_test(tc, test_env_quoting);
        tcase_add_test(tc, test_env_bad_keys);
        tcase_add_test(tc, test_json);
        tcase_add_test(tc, test_secrets);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
