/* Unit tests for coordinatord/configadv.c (masking and validation of
 * advertised config, key collisions) and cd_listen_parse(); auth.c: test-auth.c. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "coordinatord/cd-config.h"
#include "coordinatord/configadv.h"
#include "strutil.h"
#include "test-main.h"

/* configadv_mask() of {"v": in}: the string as GET /v1/config shows it. */
static void check_mask(const char *in, const char *want) {
        json_t *doc = json_pack("{ss}", "v", in), *m = configadv_mask(doc);

        ck_assert_ptr_nonnull(m);
        const char *got = json_string_value(json_object_get(m, "v"));
        ck_assert_msg(strcmp(got, want) == 0, "mask(%s) = %s, want %s", in, got, want);
        json_decref(m);
        json_decref(doc);
}

/* The string masker is lib/secret.c's (tests/unit/test-secret.c has the
 * table); here the shapes GET /v1/config shows most. */
START_TEST(test_mask_strings) {
        check_mask("127.0.0.1:6379,password=s3cr3t,abortConnect=False", "127.0.0.1:6379,password=*****,abortConnect=False");
        check_mask("host:1,Password=x,ssl=true", "host:1,Password=*****,ssl=true");
        check_mask("password=only", "password=*****");
        /* As the Redis parser reads it, the password is "spaced ,b=c". */
        check_mask("a:1, password = spaced ,b=c", "a:1, password = *****");
        check_mask("Host=h;Port=5432;Username=u;Password=pg-pw;Database=d", "Host=h;Port=5432;Username=u;Password=*****;Database=d");
        check_mask("Server=h;Pwd=p;", "Server=h;Pwd=*****;");
        check_mask("Server=x;Password=\"a;leak2\"", "Server=x;Password=\"*****\"");
        check_mask("redis://user:pa55@host:6379/0", "redis://user:*****@host:6379/0");
        check_mask("redis://u:pa/ss@h:6379/0", "redis://u:*****@h:6379/0");
        check_mask("redis://:pa55@host:6379", "redis://:*****@host:6379");
        check_mask("postgresql://u:p@h/db?sslmode=require", "postgresql://u:*****@h/db?sslmode=require");
        check_mask("postgresql://app:pw/x@db/app", "postgresql://app:*****@db/app");
        check_mask("http://h/x?password=leak1", "http://h/x?password=*****");
        check_mask("redis://host:6379/0", "redis://host:6379/0");
        /* A string starting with scheme:// is read as coord's parser reads a
         * URL: its userinfo runs to the last '@'. */
        check_mask("https://example.com/a:b@c", "https://example.com/a:*****@c");
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
        json_t *in = json_loads("{\"UseDistributedMode\":true,\"ConnectionStrings\":{\"Redis\":\"h:1,password=pw\"},"
                                "\"Jwt\":{\"Secret\":{\"nested\":1},\"Issuer\":\"me\",\"Key\":\"jwt-key\"},"
                                "\"Tokens\":[\"a\",\"b\"],\"X-API-KEY\":\"k\",\"Stripe\":{\"client_secret\":7},"
                                "\"List\":[{\"password\":\"x\"},\"redis://:y@h\"],\"Password\":null,\"N\":5}",
                                0, NULL);
        ck_assert_ptr_nonnull(in);
        json_t *m = configadv_mask(in);
        char *s = json_dumps(m, JSON_COMPACT);
        ck_assert_str_eq(s, "{\"UseDistributedMode\":true,\"ConnectionStrings\":{\"Redis\":\"h:1,password=*****\"},"
                            "\"Jwt\":{\"Secret\":\"*****\",\"Issuer\":\"me\",\"Key\":\"*****\"},\"Tokens\":\"*****\","
                            "\"X-API-KEY\":\"*****\",\"Stripe\":{\"client_secret\":\"*****\"},"
                            "\"List\":[{\"password\":\"*****\"},\"redis://:*****@h\"],\"Password\":null,\"N\":5}");
        /* The input is untouched. */
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(in, "ConnectionStrings"), "Redis")),
                         "h:1,password=pw");
        free(s);
        json_decref(m);
        json_decref(in);
}
END_TEST

/* Two values that ASP.NET would read under one name are refused, naming both. */
START_TEST(test_collisions) {
        static const struct {
                const char *json, *mention1, *mention2;
        } bad[] = {
                { "{\"a__b\":1,\"a\":{\"b\":2}}", "keys 'a__b' and 'a.b' both render as the env name a__b", NULL },
                { "{\"a\":{\"b\":2},\"a__b\":1}", "keys 'a.b' and 'a__b'", NULL },
                { "{\"A\":{\"B\":1},\"a__b\":2}", "'A.B' and 'a__b'", "(ASP.NET ignores case)" },
                { "{\"Redis\":\"x\",\"redis\":\"y\"}", "'Redis' and 'redis'", "ignores case" },
                { "{\"a:b\":1,\"a\":{\"b\":2}}", "keys 'a:b' and 'a.b' both name the ASP.NET configuration key a:b", NULL },
                { "{\"Hosts\":[\"x\"],\"Hosts__0\":\"y\"}", "'Hosts[0]' and 'Hosts__0'", NULL },
                { "{\"a__b\":null,\"a\":{\"b\":1}}", "'a__b' and 'a.b'", NULL },
                { "{\"x\":{\"a_\":{\"b\":1},\"a\":{\"_b\":2}}}", "'x.a_.b' and 'x.a._b' both render as the env name x__a___b", NULL },
        };
        static const char *const good[] = {
                "{\"a\":{\"b\":1},\"a__c\":2,\"a\\u005fb\":3}",
                "{\"a\":1,\"a__b\":2}", /* a value and a section: ASP.NET keeps both */
                "{\"Hosts\":[\"x\",\"y\"],\"Hosts__2\":\"z\"}",
                "{\"a\":{},\"b\":[]}",
        };
        char err[512];

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                json_t *j = json_loads(bad[i].json, 0, NULL);
                ck_assert_ptr_nonnull(j);
                err[0] = '\0';
                ck_assert_int_eq(configadv_validate(j, err, sizeof err), -EINVAL);
                ck_assert_msg(strstr(err, bad[i].mention1), "%s: error '%s' lacks '%s'", bad[i].json, err, bad[i].mention1);
                ck_assert_msg(!bad[i].mention2 || strstr(err, bad[i].mention2), "%s: error '%s' lacks '%s'", bad[i].json,
                              err, bad[i].mention2);
                json_decref(j);
        }
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                json_t *j = json_loads(good[i], 0, NULL);
                ck_assert_ptr_nonnull(j);
                ck_assert_msg(configadv_validate(j, err, sizeof err) == 0, "%s: %s", good[i], err);
                json_decref(j);
        }
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

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_mask_strings);
        tcase_add_test(tc, test_mask_keys);
        tcase_add_test(tc, test_validate);
        tcase_add_test(tc, test_collisions);
        tcase_add_test(tc, test_listen);
}

TEST_MAIN("configadv", add_tests)
