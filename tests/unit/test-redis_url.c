/* Unit tests for lib/redis_url.c: both connection-string forms, good and
 * malformed inputs (mistyped ones included), and masking (the password never
 * appears in masked output or in an error message). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "secret.h"
#include "test-main.h"

struct good {
        const char *in;
        const char *host0; /* NULL: unix socket */
        int port0;
        size_t n_hosts;
        const char *unix_path;
        const char *user;
        const char *password;
        int db;
        bool ssl;
        const char *service;
        int timeout_ms;
        bool abort_connect;
        const char *masked; /* expected redis_url_to_string_masked(), or NULL to skip */
};

static const struct good goods[] = {
        { "redis://127.0.0.1:6379/0", "127.0.0.1", 6379, 1, NULL, NULL, NULL, 0, false, NULL, 5000, true,
          "redis://127.0.0.1:6379/0" },
        { "redis://localhost", "localhost", 6379, 1, NULL, NULL, NULL, 0, false, NULL, 5000, true,
          "redis://localhost:6379/0" },
        { "REDIS://Cache-1.example.com:7000/", "Cache-1.example.com", 7000, 1, NULL, NULL, NULL, 0, false, NULL, 5000,
          true, NULL },
        { "rediss://app:p%40ss%2Cw%3Ard@redis.internal:6380/2", "redis.internal", 6380, 1, NULL, "app", "p@ss,w:rd", 2,
          true, NULL, 5000, true, "rediss://app:*****@redis.internal:6380/2" },
        /* raw @ : , = / in the password: userinfo ends at the last '@', user at the first ':' */
        { "redis://user:pa:ss@w,o=r/d@host:1/3", "host", 1, 1, NULL, "user", "pa:ss@w,o=r/d", 3, false, NULL, 5000,
          true, "redis://user:*****@host:1/3" },
        { "redis://:only-a-password@h", "h", 6379, 1, NULL, NULL, "only-a-password", 0, false, NULL, 5000, true,
          "redis://:*****@h:6379/0" },
        { "redis://bare-secret@h:6379/15", "h", 6379, 1, NULL, NULL, "bare-secret", 15, false, NULL, 5000, true,
          "redis://:*****@h:6379/15" },
        { "redis://aclbob:@h", "h", 6379, 1, NULL, "aclbob", NULL, 0, false, NULL, 5000, true, "redis://aclbob@h:6379/0" },
        { "redis://[::1]:6390/4", "::1", 6390, 1, NULL, NULL, NULL, 4, false, NULL, 5000, true, "redis://[::1]:6390/4" },
        { "redis://[fe80::1%eth0]", "fe80::1%eth0", 6379, 1, NULL, NULL, NULL, 0, false, NULL, 5000, true, NULL },
        { "unix:///run/redis/redis.sock", NULL, 0, 0, "/run/redis/redis.sock", NULL, NULL, 0, false, NULL, 5000, true,
          "unix:///run/redis/redis.sock" },
        { "unix:///run/redis.sock?db=3", NULL, 0, 0, "/run/redis.sock", NULL, NULL, 3, false, NULL, 5000, true,
          "unix:///run/redis.sock?db=3" },
        { "unix://u:s3c@ret@/tmp/r.sock", NULL, 0, 0, "/tmp/r.sock", "u", "s3c@ret", 0, false, NULL, 5000, true,
          "unix://u:*****@/tmp/r.sock" },
        /* StackExchange.Redis form */
        { "localhost:6379", "localhost", 6379, 1, NULL, NULL, NULL, 0, false, NULL, 5000, true,
          "redis://localhost:6379/0" },
        { "redis-a", "redis-a", 6379, 1, NULL, NULL, NULL, 0, false, NULL, 5000, true, NULL },
        { "h1:6379,h2:6380,password=abcdef,ssl=true,defaultDatabase=3,abortConnect=false,connectTimeout=2000,user=bob",
          "h1", 6379, 2, NULL, "bob", "abcdef", 3, true, NULL, 2000, false,
          "h1:6379,h2:6380,user=bob,password=*****,ssl=true,defaultDatabase=3,connectTimeout=2000,abortConnect=false" },
        { "s1:26380,s2,serviceName=mymaster,password=x=y,zz", "s1", 26380, 2, NULL, NULL, "x=y,zz", 0, false,
          "mymaster", 5000, true, "s1:26380,s2:26379,password=*****,serviceName=mymaster" },
        { "h,serviceName=mymaster", "h", 26379, 1, NULL, NULL, NULL, 0, false, "mymaster", 5000, true,
          "h:26379,serviceName=mymaster" },
        { "h,PASSWORD=a,b=c", "h", 6379, 1, NULL, NULL, "a,b=c", 0, false, NULL, 5000, true, "redis://:*****@h:6379/0" },
        { "h,password=p@s:s=,x,SSL=True", "h", 6379, 1, NULL, NULL, "p@s:s=,x", 0, true, NULL, 5000, true,
          "rediss://:*****@h:6379/0" },
        { "h,password=a,b,h2:6380", "h", 6379, 2, NULL, NULL, "a,b", 0, false, NULL, 5000, true, NULL },
        { "h,password=a://b@c:d", "h", 6379, 1, NULL, NULL, "a://b@c:d", 0, false, NULL, 5000, true,
          "redis://:*****@h:6379/0" },
        { "password=first1,[::1]:7000", "::1", 7000, 1, NULL, NULL, "first1", 0, false, NULL, 5000, true,
          "redis://:*****@[::1]:7000/0" },
        { " h , Password = spaced-out , ssl = false ", "h", 6379, 1, NULL, NULL, "spaced-out", 0, false, NULL, 5000, true,
          NULL },
        { "h,", "h", 6379, 1, NULL, NULL, NULL, 0, false, NULL, 5000, true, NULL },
        { "h,defaultdatabase=7,ABORTCONNECT=false,connecttimeout=100", "h", 6379, 1, NULL, NULL, NULL, 7, false, NULL,
          100, false, NULL },
        /* sslHost: the TLS name; the masked form keeps it, so it is the StackExchange form */
        { "10.0.0.7:6380,ssl=true,sslHost=redis.example.com,password=pw-x", "10.0.0.7", 6380, 1, NULL, NULL, "pw-x", 0,
          true, NULL, 5000, true, "10.0.0.7:6380,password=*****,ssl=true,sslHost=redis.example.com" },
        { "h,SSLHOST=Cache-1.internal,sslhost=cache-2.internal", "h", 6379, 1, NULL, NULL, NULL, 0, false, NULL, 5000,
          true, "h:6379,sslHost=cache-2.internal" },
        /* a host that happens to be named like an option */
        { "user:6379,password=x", "user", 6379, 1, NULL, NULL, "x", 0, false, NULL, 5000, true, NULL },
};

struct bad {
        const char *in;
        const char *mention; /* the error must contain this */
};

static const struct bad bads[] = {
        { "", "empty" },
        { "redis://", "empty host" },
        { "redis:///0", "empty host" },
        { "redis://h:0", "port '0'" },
        { "redis://h:65536", "port '65536'" },
        { "redis://h:abc", "port after 'h:' is not a number" },
        { "redis://h:", "port" },
        { "redis://h/x", "database after '/': not a number" },
        { "redis://h/-1", "database after '/'" },
        { "redis://h/1/2", "database" },
        { "redis://u:p%zz@h", "percent-encoding in the password" },
        { "redis://u:p%0@h", "percent-encoding in the password" },
        { "redis://u%4:p@h", "percent-encoding in the user" },
        { "http://h", "unknown scheme 'http'" },
        { "redis://h?db=1", "unexpected '?' after the host" },
        { "redis://::1:6379", "brackets" },
        { "redis://[::1", "closing ']'" },
        { "redis://[zz]:1", "IPv6" },
        { "redis://[::1]x", "after the IPv6 address" },
        { "redis://bad_host!:1", "character 9 of the host name" },
        { "unix://", "absolute" },
        { "unix:///", "empty unix socket path" },
        { "unix:///p?foo=1", "unknown parameter after '?'" },
        { "unix:///p?db=x", "database in ?db=" },
        { "h,foo=bar", "unknown option 'foo'" },
        { "h,ssl=maybe", "ssl: expected true or false" },
        { "h,abortConnect=1", "abortConnect: expected true or false" },
        { "h,defaultDatabase=x", "defaultDatabase: not a number" },
        { "h,connectTimeout=0", "connectTimeout: not milliseconds" },
        { "h,connectTimeout=5s", "connectTimeout: not milliseconds" },
        { "h,serviceName=", "serviceName: empty" },
        { "h,serviceName=a/b", "serviceName: character 2" },
        { "h,sslHost=", "sslHost: empty" },
        { "h,sslHost=a b", "sslHost: character 2" },
        { "h,ssl=true,sslHost=[::1]", "sslHost: character 1" },
        { "password=no-host-here", "no host:port" },
        { ",,", "no host:port" },
        { "h:port", "port after 'h:' is not a number" },
        { "h:1:2", "brackets" },
        { "h,h2:x", "element 2: port after 'h2:' is not a number" },
        /* a host:port ends a password even with its port out of range */
        { "h,password=a,h2:99999", "element 3: bad port '99999'" },
        { "h1,h2,h3,h4,h5,h6,h7,h8,h9,h10,h11,h12,h13,h14,h15,h16,h17", "too many endpoints" },
        { "h\n", "control character" },
};

/* Bad inputs that carry the secret "Sup3rS3cret": no error may show it. */
static const char *const bad_with_secret[] = {
        "redis://u:Sup3rS3cret@h:99999",
        "redis://u:Sup3rS3cret@/0",
        "redis://u:Sup3rS3cret%@h",
        "redis://Sup3rS3cret@h/x",
        "rediss://u:Sup3rS3cret@[::1",
        "unix://u:Sup3rS3cret@/p?db=-1",
        "h:0,password=Sup3rS3cret",
        "h,password=Sup3rS3cret,ssl=maybe",
        "h,password=Sup3rS3cret,defaultDatabase=x",
        "password=Sup3rS3cret",
        "password=Sup3rS3cret,h:bad",
        "h,password=Sup3rS3cret,foo=1,serviceName=",
        "h,pasword=Sup3rS3cret",
        "h,pass=Sup3rS3cret",
        "redis://10.0.0.1:6379/0?password=Sup3rS3cret",
        "unix:///run/redis.sock?password=Sup3rS3cret",
};

/* Mistyped connection strings with the password "PW": every error is
 * non-empty, says what is wrong (mention) and never shows the password. */
static const struct bad mistyped[] = {
        { "redis:/u:PW@h:6379", "the scheme 'redis' must be followed by '://'" },
        { "rediss:/:PW@h", "the scheme 'rediss' must be followed by '://'" },
        { "redis//:PW@h:6379", "the scheme 'redis' must be followed by '://'" },
        { "unix:/u:PW@/run/redis.sock", "the scheme 'unix' must be followed by '://'" },
        { "Redis:PW@h:6379", "'@' in a host part" },
        { "//:PW@h:6379", "missing scheme before '//'" },
        { "u:PW@h:6379", "element 1: '@' in a host part (put credentials in redis://user:password@host" },
        { "PW@h:6379", "element 1: '@' in a host part" },
        { ":PW@h:6379", "'@' in a host part" },
        { "PW:6379@h", "'@' in a host part" },
        { "h:6379,u:PW@h2", "element 2: '@' in a host part" },
        { "redis:\\u:PW@h", "'@' in a host part" },
        { "h:6379,password PW", "element 2: option password needs '=' (password=...)" },
        { "h:6379,password:PW", "option password needs '='" },
        { "h:6379,Password :PW,ssl=true", "option password needs '='" },
        { "h:6379;password=PW", "';' is not a separator here" },
        { "h:6379 password=PW", "element 1: unknown option" },
        { "h:6379,pass/word=PW", "'/' outside a redis:// URL" },
        { "redis://:PW", "empty host name before ':'" },
        { "redis://u:PW", "port after 'u:' is not a number" },
        { "redis://PW:", "bad port ''" },
        { "redis://u:PW@h:99999", "bad port '99999'" },
        { "redis://u:PW@h/PW", "database after '/'" },
        { "redis://u:PW@h,h2:6379", "character 2 of the host name" },
        { "redis://u:PW@[::1", "closing ']'" },
        { "redis:///u:PW@", "empty host" },
        { "http://u:PW@h", "unknown scheme 'http'" },
        { "h,password=PW,ssl=PW", "ssl: expected true or false" },
        { "h,password=PW,defaultDatabase=PW", "defaultDatabase: not a number" },
        { "h,password=PW,sslHost=PW/x", "sslHost: character 3" },
        { "h,password=PW,connectTimeout=PW", "connectTimeout: not milliseconds" },
};

START_TEST(test_mistyped) {
        const struct bad *b = &mistyped[_i];
        struct redis_url *u = NULL;
        char err[512] = "";

        ck_assert_int_eq(redis_url_parse(b->in, &u, err, sizeof err), -EINVAL);
        ck_assert_ptr_null(u);
        ck_assert_msg(err[0] != '\0', "no message for '%s'", b->in);
        ck_assert_msg(!strstr(err, "PW"), "error for '%s' shows the password: '%s'", b->in, err);
        ck_assert_msg(strstr(err, b->mention), "error for '%s' is '%s', should mention '%s'", b->in, err, b->mention);
}
END_TEST

static void collect_span(const char *span, size_t len, void *userdata) {
        char *out = userdata;
        size_t ol = strlen(out);

        snprintf(out + ol, 256 - ol, "[%.*s]", (int) len, span);
}

/* The spans the parser reads as passwords, as secret_mask_string() uses them. */
START_TEST(test_password_spans) {
        static const struct {
                const char *in, *spans;
        } t[] = {
                { "redis://u:pa/ss@h:6379/0", "[pa/ss]" },
                { "redis://p@ss@h", "[p@ss]" },
                { "redis://u:@h", "" },
                { "unix://u:s@c@/run/r.sock", "[s@c]" },
                { "unix:///run/a@b.sock", "" },
                { "h:1, password = a b ,b=c,ssl=true,password=x", "[a b ,b=c][x]" },
                { "password=,h:1", "" },
                { "h,user=bob", "" },
                /* lexical: also where the parser fails */
                { "h:0,password=PW,ssl=maybe", "[PW]" },
                { "http://u:PW@h", "[PW]" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                char out[256] = "";
                redis_url_foreach_password(t[i].in, collect_span, out);
                ck_assert_msg(strcmp(out, t[i].spans) == 0, "spans of '%s' are '%s', want '%s'", t[i].in, out, t[i].spans);
        }
        redis_url_foreach_password(NULL, collect_span, NULL);
}
END_TEST

START_TEST(test_ssl_host) {
        struct redis_url *u = NULL;
        char err[256] = "";

        ck_assert_int_eq(redis_url_parse("10.0.0.7:6380,ssl=true,sslHost=Redis-1.example.com", &u, err, sizeof err), 0);
        ck_assert_str_eq(u->ssl_host, "Redis-1.example.com");
        ck_assert(u->ssl);
        u = redis_url_free(u);
        /* the last one wins; absent means NULL */
        ck_assert_int_eq(redis_url_parse("h,sslHost=a,SSLHOST=b", &u, err, sizeof err), 0);
        ck_assert_str_eq(u->ssl_host, "b");
        u = redis_url_free(u);
        ck_assert_int_eq(redis_url_parse("rediss://h:6380", &u, err, sizeof err), 0);
        ck_assert_ptr_null(u->ssl_host);
        u = redis_url_free(u);
}
END_TEST

/* A typo ("password:" for "password=") makes the secret look like a port: the
 * error must still not show it. */
START_TEST(test_typo_never_leaks) {
        struct redis_url *u = NULL;
        char err[512] = "";

        ck_assert_int_eq(redis_url_parse("redis1:6379,password:Sup3rS3cret,ssl=true", &u, err, sizeof err), -EINVAL);
        ck_assert_msg(err[0] && !strstr(err, "Sup3r") && !strstr(err, "S3cret"), "error '%s' leaks", err);
}
END_TEST

START_TEST(test_good) {
        const struct good *g = &goods[_i];
        struct redis_url *u = NULL;
        char err[256] = "";
        int r = redis_url_parse(g->in, &u, err, sizeof err);

        ck_assert_msg(r == 0, "'%s' should parse, got %d: %s", g->in, r, err);
        ck_assert_ptr_nonnull(u);
        ck_assert_uint_eq(u->n_hosts, g->n_hosts);
        if (g->host0) {
                ck_assert_str_eq(u->hosts[0].host, g->host0);
                ck_assert_int_eq(u->hosts[0].port, g->port0);
                ck_assert_ptr_null(u->unix_path);
        } else
                ck_assert_str_eq(u->unix_path, g->unix_path);
        if (g->user)
                ck_assert_str_eq(u->user, g->user);
        else
                ck_assert_ptr_null(u->user);
        if (g->password)
                ck_assert_str_eq(u->password, g->password);
        else
                ck_assert_ptr_null(u->password);
        ck_assert_int_eq(u->db, g->db);
        ck_assert_int_eq(u->ssl, g->ssl);
        if (g->service)
                ck_assert_str_eq(u->service_name, g->service);
        else
                ck_assert_ptr_null(u->service_name);

        ck_assert_int_eq(u->connect_timeout_ms, g->timeout_ms);
        ck_assert_int_eq(u->abort_connect, g->abort_connect);

        char *m = redis_url_to_string_masked(u);
        ck_assert_ptr_nonnull(m);
        if (g->masked)
                ck_assert_str_eq(m, g->masked);
        if (g->password) {
                ck_assert_msg(!strstr(m, g->password), "masked '%s' leaks the password", m);
                ck_assert_ptr_nonnull(strstr(m, "*****"));
        }

        /* The masked rendering parses back to the same endpoints. */
        struct redis_url *back = NULL;
        ck_assert_msg(redis_url_parse(m, &back, err, sizeof err) == 0, "'%s' does not re-parse: %s", m, err);
        ck_assert_uint_eq(back->n_hosts, u->n_hosts);
        for (size_t i = 0; i < u->n_hosts; i++) {
                ck_assert_str_eq(back->hosts[i].host, u->hosts[i].host);
                ck_assert_int_eq(back->hosts[i].port, u->hosts[i].port);
        }
        ck_assert_int_eq(back->db, u->db);
        ck_assert_int_eq(back->ssl, u->ssl);
        if (u->ssl_host)
                ck_assert_str_eq(back->ssl_host, u->ssl_host);
        else
                ck_assert_ptr_null(back->ssl_host);
        redis_url_free(back);
        free(m);

        /* The string masker hides the raw and the decoded password. */
        m = secret_mask_string(g->in);
        ck_assert_ptr_nonnull(m);
        if (g->password) {
                ck_assert_msg(!strstr(m, g->password), "mask_string('%s') = '%s' leaks", g->in, m);
                ck_assert_ptr_nonnull(strstr(m, "*****"));
        } else
                ck_assert_str_eq(m, g->in);
        free(m);

        ck_assert_ptr_null(redis_url_free(u));
}
END_TEST

START_TEST(test_bad) {
        const struct bad *b = &bads[_i];
        struct redis_url *u = (struct redis_url *) 0x1;
        char err[256] = "";

        ck_assert_int_eq(redis_url_parse(b->in, &u, err, sizeof err), -EINVAL);
        ck_assert_ptr_eq(u, (struct redis_url *) 0x1); /* untouched on failure */
        ck_assert_msg(strstr(err, b->mention), "error for '%s' is '%s', should mention '%s'", b->in, err, b->mention);
        /* no errbuf is fine too */
        ck_assert_int_eq(redis_url_parse(b->in, &u, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_bad_never_leaks) {
        const char *in = bad_with_secret[_i];
        struct redis_url *u = NULL;
        char err[512] = "";

        ck_assert_int_eq(redis_url_parse(in, &u, err, sizeof err), -EINVAL);
        ck_assert_ptr_null(u);
        ck_assert_msg(err[0] != '\0', "no message for '%s'", in);
        ck_assert_msg(!strstr(err, "Sup3rS3cret"), "error '%s' leaks the password", err);

        char *m = secret_mask_string(in);
        ck_assert_ptr_nonnull(m);
        ck_assert_msg(!strstr(m, "Sup3rS3cret"), "mask_string('%s') = '%s' leaks", in, m);
        free(m);
}
END_TEST

START_TEST(test_mask_string) {
        static const struct {
                const char *in, *out;
        } t[] = {
                { "redis://u:p@h:1/0", "redis://u:*****@h:1/0" },
                { "redis://:p@h", "redis://:*****@h" },
                { "redis://p@h", "redis://*****@h" },
                { "redis://u:a@b@c@h", "redis://u:*****@h" },
                { "redis://h:1", "redis://h:1" },
                { "redis://h?password=xyz&db=1", "redis://h?password=*****&db=1" },
                { "h:1,password=a,b=c,ssl=true", "h:1,password=*****,ssl=true" },
                { "h:1,Password=a,h2:2", "h:1,Password=*****,h2:2" },
                { "password=one,password=two,h", "password=*****,password=*****" },
                { "h,user=bob", "h,user=bob" },
                { "h:1,password=x://y@z", "h:1,password=*****" },
                { "not a url at all", "not a url at all" },
                { "", "" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                char *m = secret_mask_string(t[i].in);
                ck_assert_ptr_nonnull(m);
                ck_assert_msg(strcmp(m, t[i].out) == 0, "mask_string('%s') = '%s', want '%s'", t[i].in, m, t[i].out);
                free(m);
        }
        ck_assert_ptr_null(secret_mask_string(NULL));
        ck_assert_ptr_null(redis_url_to_string_masked(NULL));
        ck_assert_ptr_null(redis_url_free(NULL));
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_loop_test(tc, test_good, 0, (int) (sizeof goods / sizeof goods[0]));
        tcase_add_loop_test(tc, test_bad, 0, (int) (sizeof bads / sizeof bads[0]));
        tcase_add_test(tc, test_typo_never_leaks);
        tcase_add_loop_test(tc, test_mistyped, 0, (int) (sizeof mistyped / sizeof mistyped[0]));
        tcase_add_test(tc, test_password_spans);
        tcase_add_test(tc, test_ssl_host);
        tcase_add_loop_test(tc, test_bad_never_leaks, 0, (int) (sizeof bad_with_secret / sizeof bad_with_secret[0]));
        tcase_add_test(tc, test_mask_string);
}

TEST_MAIN("redis_url", add_tests)
