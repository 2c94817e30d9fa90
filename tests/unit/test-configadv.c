/* Unit tests for coordinatord/configadv.c (masking and validation of
 * advertised config), coordinatord/auth.c and cd_listen_parse(). */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "coordinatord/auth.h"
#include "coordinatord/cd-config.h"
#include "coordinatord/configadv.h"
#include "strutil.h"

static void check_mask(const char *in, const char *want) {
        char *got = configadv_mask_string(in);
        ck_assert_ptr_nonnull(got);
        ck_assert_msg(strcmp(got, want) == 0, "mask(%s) = %s, want %s", in, got, want);
        free(got);
}

START_TEST(test_mask_strings) {
        check_mask("127.0.0.1:6379,password=s3cr3t,abortConnect=False", "127.0.0.1:6379,password=*****,abortConnect=False");
        check_mask("host:1,Password=x,ssl=true", "host:1,Password=*****,ssl=true");
        check_mask("password=only", "password=*****");
        check_mask("a:1, password = spaced ,b=c", "a:1, password =*****,b=c");
        check_mask("Host=h;Port=5432;Username=u;Password=pg-pw;Database=d", "Host=h;Port=5432;Username=u;Password=*****;Database=d");
        check_mask("Server=h;Pwd=p;", "Server=h;Pwd=*****;");
        check_mask("redis://user:pa55@host:6379/0", "redis://user:*****@host:6379/0");
        check_mask("redis://:pa55@host:6379", "redis://:*****@host:6379");
        check_mask("postgresql://u:p@h/db?sslmode=require", "postgresql://u:*****@h/db?sslmode=require");
        check_mask("redis://host:6379/0", "redis://host:6379/0");
        check_mask("https://example.com/a:b@c", "https://example.com/a:b@c");
        check_mask("no secrets here, passwordless=1", "no secrets here, passwordless=1");
        /* A userinfo without ':' is a password (redis:// reads it so); ',' may be in it. */
        check_mask("redis://hunter2pw@10.0.0.1:6379/0", "redis://*****@10.0.0.1:6379/0");
        check_mask("redis://u:p,w@h:1/0", "redis://u:*****@h:1/0");
        /* StackExchange: a ',' ends the password only before "option=" or "host:port". */
        check_mask("h:1,password=abc,def,ssl=true", "h:1,password=*****,ssl=true");
        check_mask("h:1,password=abc,h2:6380", "h:1,password=*****,h2:6380");
        check_mask("", "");
}
END_TEST

START_TEST(test_mask_keys) {
        ck_assert(configadv_key_is_secret("password"));
        ck_assert(configadv_key_is_secret("DbPassword"));
        ck_assert(configadv_key_is_secret("client_secret"));
        ck_assert(configadv_key_is_secret("ApiToken"));
        ck_assert(configadv_key_is_secret("TOKEN"));
        ck_assert(configadv_key_is_secret("ApiKey"));
        ck_assert(configadv_key_is_secret("Pwd"));
        ck_assert(configadv_key_is_secret("Pass"));
        ck_assert(configadv_key_is_secret("PrivateKey"));
        ck_assert(configadv_key_is_secret("Credentials"));
        ck_assert(!configadv_key_is_secret("UseDistributedMode"));
        ck_assert(!configadv_key_is_secret("Redis"));

        json_t *in = json_loads("{\"UseDistributedMode\":true,\"ConnectionStrings\":{\"Redis\":\"h:1,password=pw\"},"
                                "\"Jwt\":{\"Secret\":{\"nested\":1},\"Issuer\":\"me\"},\"Tokens\":[\"a\",\"b\"],"
                                "\"List\":[{\"password\":\"x\"},\"redis://:y@h\"],\"Password\":null,\"N\":5}",
                                0, NULL);
        ck_assert_ptr_nonnull(in);
        json_t *m = configadv_mask(in);
        char *s = json_dumps(m, JSON_COMPACT);
        ck_assert_str_eq(s, "{\"UseDistributedMode\":true,\"ConnectionStrings\":{\"Redis\":\"h:1,password=*****\"},"
                            "\"Jwt\":{\"Secret\":\"*****\",\"Issuer\":\"me\"},\"Tokens\":\"*****\","
                            "\"List\":[{\"password\":\"*****\"},\"redis://:*****@h\"],\"Password\":null,\"N\":5}");
        /* The input is untouched. */
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(in, "ConnectionStrings"), "Redis")),
                         "h:1,password=pw");
        free(s);
        json_decref(m);
        json_decref(in);
}
END_TEST

START_TEST(test_validate) {
        char err[256];
        json_t *ok = json_loads("{\"a\":{\"b\":[1,{\"c\":true}]},\"Key:With:Colons\":\"v\"}", 0, NULL);
        ck_assert_int_eq(configadv_validate(ok, err, sizeof err), 0);
        json_decref(ok);

        json_t *arr = json_loads("[1]", 0, NULL);
        ck_assert_int_eq(configadv_validate(arr, err, sizeof err), -EINVAL);
        json_decref(arr);

        json_t *eq = json_loads("{\"a\":{\"x=y\":1}}", 0, NULL);
        ck_assert_int_eq(configadv_validate(eq, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "a:") == err, "error names the path: %s", err);
        ck_assert_msg(strstr(err, "key \"x=y\""), "error names the key: %s", err);
        json_decref(eq);

        json_t *ctl = json_loads("{\"a\\nb\":1}", 0, NULL);
        ck_assert_int_eq(configadv_validate(ctl, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "key \"a\\x0ab\""), "control character escaped: %s", err);
        json_decref(ctl);

        json_t *deep = json_object(), *cur = deep;
        for (int i = 0; i < CONFIG_MAX_DEPTH + 1; i++) {
                json_t *n = json_object();
                json_object_set_new(cur, "k", n);
                cur = n;
        }
        ck_assert_int_eq(configadv_validate(deep, err, sizeof err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "nested deeper"));
        json_decref(deep);
}
END_TEST

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

START_TEST(test_listen) {
        struct sockaddr_storage ss;
        size_t len;
        bool lo;

        ck_assert_int_eq(cd_listen_parse("127.0.0.1:8470", &ss, &len, &lo), 0);
        ck_assert(lo);
        ck_assert_int_eq(ntohs(((struct sockaddr_in *) &ss)->sin_port), 8470);
        ck_assert_int_eq(cd_listen_parse("127.1.2.3:1", &ss, &len, &lo), 0);
        ck_assert(lo);
        ck_assert_int_eq(cd_listen_parse("0.0.0.0:8470", &ss, &len, &lo), 0);
        ck_assert(!lo);
        ck_assert_int_eq(cd_listen_parse(":8470", &ss, &len, &lo), 0);
        ck_assert(!lo);
        ck_assert_int_eq(cd_listen_parse("[::1]:8470", &ss, &len, &lo), 0);
        ck_assert(lo);
        ck_assert_int_eq(ss.ss_family, AF_INET6);
        ck_assert_int_eq(cd_listen_parse("[::]:8470", &ss, &len, &lo), 0);
        ck_assert(!lo);
        ck_assert_int_eq(cd_listen_parse("localhost:0", &ss, &len, &lo), 0);
        ck_assert(lo);
        ck_assert_int_eq(cd_listen_parse("example.com:80", &ss, &len, &lo), -EINVAL);
        ck_assert_int_eq(cd_listen_parse("127.0.0.1", &ss, &len, &lo), -EINVAL);
        ck_assert_int_eq(cd_listen_parse("127.0.0.1:65536", &ss, &len, &lo), -EINVAL);
        ck_assert_int_eq(cd_listen_parse("127.0.0.1:x", &ss, &len, &lo), -EINVAL);
        ck_assert_int_eq(cd_listen_parse("[::1:80", &ss, &len, &lo), -EINVAL);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("configadv");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_mask_strings);
        tcase_add_test(tc, test_mask_keys);
        tcase_add_test(tc, test_validate);
        tcase_add_test(tc, test_auth);
        tcase_add_test(tc, test_listen);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
