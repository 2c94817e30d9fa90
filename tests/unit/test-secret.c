/* Unit tests for lib/secret.c: which keys name secrets, and a table of
 * connection-string shapes whose secrets secret_mask_string() must hide while
 * leaving the host readable. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "secret.h"
#include "test-main.h"

struct shape {
        const char *in;
        const char *secret;  /* must not appear in the masked output */
        const char *secret2; /* a second one, or NULL */
        const char *keep;    /* must still appear (the host, say), or NULL */
};

static const struct shape shapes[] = {
        /* redis:// and friends: the parser's userinfo ends at the LAST '@' */
        { "redis://u:pa/ss@h:6379/0", "pa/ss", "ss@", "@h:6379/0" },
        { "redis://:s3cr3t@redis.internal:6379", "s3cr3t", NULL, "redis.internal:6379" },
        { "redis://bare-secret@h:6379/15", "bare-secret", NULL, "@h:6379/15" },
        { "rediss://app:p%40ss%2Cw@redis.internal:6380/2", "p%40ss", "%2Cw", "redis.internal:6380" },
        { "redis://user:pa:ss@w,o=r/d@host:1/3", "pa:ss", "o=r/d", "host:1/3" },
        { "unix://u:s3c@ret@/run/redis.sock", "s3c@ret", NULL, "/run/redis.sock" },
        { "redis://u:PW-x@h:99999", "PW-x", NULL, "h:99999" },
        { "redis://10.0.0.1:6379/0?password=Leak-q1", "Leak-q1", NULL, "10.0.0.1:6379" },
        { "unix:///run/redis.sock?password=Leak-q2", "Leak-q2", NULL, "/run/redis.sock" },
        /* other URLs */
        { "postgresql://app:pw/x@db/app", "pw/x", NULL, "@db/app" },
        { "postgres://app:Pg-pw1@db.internal:5432/app?sslmode=require", "Pg-pw1", NULL, "db.internal:5432" },
        { "postgresql://app@db/app?password=Pg-pw2&sslmode=require", "Pg-pw2", NULL, "sslmode=require" },
        { "http://h/x?password=leak1", "leak1", NULL, "http://h/x" },
        { "https://api.example.com/v1?api_key=K-123&limit=5", "K-123", NULL, "limit=5" },
        { "https://api.example.com/v1?access_token=T-456#frag", "T-456", NULL, "#frag" },
        { "https://ghp_T0ken@github.com/org/repo.git", "ghp_T0ken", NULL, "github.com/org/repo.git" },
        { "mongodb://u:Mg-pw@h1:27017,h2:27017/db?replicaSet=rs0", "Mg-pw", NULL, "h1:27017,h2:27017" },
        { "amqp://guest:Rb-pw@rabbit:5672/vhost", "Rb-pw", NULL, "rabbit:5672" },
        { "mysql://root:My;pw@db:3306/app", "My;pw", NULL, "db:3306" },
        { "sqlserver://sa:Sq@l@db:1433", "Sq@l", NULL, "db:1433" },
        { "jdbc:postgresql://h/db?user=u&password=Jd-pw&ssl=true", "Jd-pw", NULL, "jdbc:postgresql://h/db" },
        { "jdbc:mysql://u:Jm-pw@db:3306/app", "Jm-pw", NULL, "db:3306" },
        { "Url=redis://u:Emb-pw@h:6379;Other=1", "Emb-pw", NULL, "Other=1" },
        { "see https://u:Tx-pw@example.com/path for details", "Tx-pw", NULL, "for details" },
        /* StackExchange.Redis */
        { "h:6379,password=Se-pw1,ssl=true", "Se-pw1", NULL, "ssl=true" },
        { "h1:6379,h2:6380,password=Se,pw2=x,abortConnect=false", "Se,pw2", NULL, "abortConnect=false" },
        { "h:6379,password=p@ss:w=rd,ssl=true", "p@ss:w=rd", NULL, "h:6379" },
        { "h:6379, Password = Se pw3 ,defaultDatabase=1", "Se pw3", NULL, "defaultDatabase=1" },
        { "h:6379,password=Se-pw4,h2:6380", "Se-pw4", NULL, "h2:6380" },
        { "h:6379,password=Se-pw5,syncTimeout=5000", "Se-pw5", NULL, "h:6379" },
        { "h:0,password=Se-pw6", "Se-pw6", NULL, "h:0" },
        { "h,password=Se-pw7,ssl=maybe", "Se-pw7", NULL, "ssl=maybe" },
        { "h,pasword=Se-pw8", "Se-pw8", NULL, "h," },
        { "h,pass=Se-pw9", "Se-pw9", NULL, "h," },
        { "redis1:6379,password:Se-pwA,ssl=true", "Se-pwA", NULL, "ssl=true" },
        { "s1:26379,s2:26379,serviceName=mymaster,password=Se-pwB", "Se-pwB", NULL, "serviceName=mymaster" },
        { "password=one-pw,password=two-pw,h", "one-pw", "two-pw", NULL },
        /* ADO.NET, Npgsql, ODBC, JDBC-style key=value lists */
        { "Server=x;Password=\"a;leak2\"", "leak2", "a;", "Server=x" },
        { "Server=x;Password='a;leak3';Database=d", "leak3", NULL, "Database=d" },
        { "Server=x;Password=\"a\"\"b;leak4\";Database=d", "leak4", "b;", "Database=d" },
        { "Server=x;Password='it''s;leak5';Database=d", "leak5", "it''s", "Database=d" },
        { "Host=db;Username=app;Password=Np-pw;Database=app", "Np-pw", NULL, "Host=db;Username=app" },
        { "Host=db;Port=5432;Database=app;Username=app;Password=Np;pw2", "Np", NULL, "Database=app" },
        { "Data Source=srv;Initial Catalog=app;User ID=sa;Pwd=Ms-pw;", "Ms-pw", NULL, "User ID=sa" },
        { "Server=tcp:srv.database.windows.net,1433;User Id=u;Password=Az-pw;Encrypt=True", "Az-pw", NULL,
          "srv.database.windows.net,1433" },
        { "Driver={ODBC Driver 18};Server=s;UID=u;PWD={a;b}}c-leak6};", "c-leak6", "a;b", "Server=s" },
        { "Server=s; Password = Sp-pw ; Database=d", "Sp-pw", NULL, "Database=d" },
        { "Server=s;Database=d;Password=", NULL, NULL, "Password=" },
        { "Password=Pf-pw;Host=h", "Pf-pw", NULL, NULL },
        { "AccountName=acct;AccountKey=Az+Key/0==;EndpointSuffix=core.windows.net", "Az+Key/0==", NULL,
          "EndpointSuffix=core.windows.net" },
        { "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=Sb-K=", "Sb-K=", NULL,
          "SharedAccessKeyName=root" },
        { "User ID=u;Pwd=U-pw", "U-pw", NULL, "User ID=u" },
        /* libpq keyword/value */
        { "host=h port=5432 password=Lq-pw dbname=d", "Lq-pw", NULL, "dbname=d" },
        { "host=h password='Lq pw2' dbname=d", "Lq pw2", NULL, "dbname=d" },
        /* Go/MySQL DSN */
        { "user:pw@tcp(db:3306)/x", "pw", NULL, "tcp(db:3306)/x" },
        { "app:Dsn-pw@tcp(db.internal:3306)/app?parseTime=true", "Dsn-pw", NULL, "db.internal:3306" },
        { "Dsn=app:Dsn-pw2@unix(/run/mysqld.sock)/app", "Dsn-pw2", NULL, "unix(/run/mysqld.sock)" },
        /* JSON-ish, YAML-ish, env-ish strings */
        { "{\"password\":\"Js-pw\",\"host\":\"h\"}", "Js-pw", NULL, "\"host\":\"h\"" },
        { "{'password': 'Js pw2', 'host': 'h'}", "Js pw2", NULL, "'host': 'h'" },
        { "{\"password\":\"Js\\\"pw3\",\"host\":\"h\"}", "pw3", NULL, "\"host\":\"h\"" },
        { "{\"ApiKey\": 12345678, \"Host\": \"h\"}", "12345678", NULL, "\"Host\": \"h\"" },
        { "password: Ym pw with spaces", "Ym pw", "with spaces", NULL },
        { "DB_HOST=h\nDB_PASSWORD=Ev-pw\nDB_NAME=d", "Ev-pw", NULL, "DB_NAME=d" },
        { "--password=Cl-pw --host=h", "Cl-pw", NULL, "--host=h" },
        /* secret key names */
        { "X-API-KEY: Hk-123", "Hk-123", NULL, "X-API-KEY" },
        { "Api-Key=Ak-1;Host=h", "Ak-1", NULL, "Host=h" },
        { "Jwt:Key=Jk-1;Issuer=me", "Jk-1", NULL, "Issuer=me" },
        { "client_secret=Cs-1&grant_type=client_credentials", "Cs-1", NULL, NULL },
        { "token=Tk-1", "Tk-1", NULL, "token=" },
        { "SigningKey=Sk-1", "Sk-1", NULL, NULL },
        { "Credentials=Cr-1", "Cr-1", NULL, NULL },
        /* nothing to mask */
        { "no secrets here, passwordless=1", NULL, NULL, "passwordless=1" },
        { "Host=h;PasswordPolicy=strict;TokenEndpoint=/t", NULL, NULL, "PasswordPolicy=strict;TokenEndpoint=/t" },
        { "redis://h:6379/0", NULL, NULL, "redis://h:6379/0" },
        { "ops@example.com", NULL, NULL, "ops@example.com" },
        { "just some text", NULL, NULL, "just some text" },
};

START_TEST(test_shapes) {
        const struct shape *t = &shapes[_i];
        char *m = secret_mask_string(t->in);

        ck_assert_ptr_nonnull(m);
        if (t->secret) {
                ck_assert_msg(!strstr(m, t->secret), "'%s' masks to '%s': shows '%s'", t->in, m, t->secret);
                ck_assert_msg(strstr(m, SECRET_MASK), "'%s' masks to '%s': no mask", t->in, m);
        } else
                ck_assert_msg(!strstr(m, SECRET_MASK) || strcmp(t->in, m) == 0, "'%s' masks to '%s'", t->in, m);
        if (t->secret2)
                ck_assert_msg(!strstr(m, t->secret2), "'%s' masks to '%s': shows '%s'", t->in, m, t->secret2);
        if (t->keep)
                ck_assert_msg(strstr(m, t->keep), "'%s' masks to '%s': lost '%s'", t->in, m, t->keep);
        free(m);
}
END_TEST

/* Exact outputs for a few, so the masking stays readable. */
START_TEST(test_exact) {
        static const struct {
                const char *in, *out;
        } t[] = {
                { "redis://u:pa/ss@h:6379/0", "redis://u:*****@h:6379/0" },
                { "Server=x;Password=\"a;leak2\";Database=d", "Server=x;Password=\"*****\";Database=d" },
                { "Host=h;Username=u;Password=p;Database=d", "Host=h;Username=u;Password=*****;Database=d" },
                { "user:pw@tcp(db:3306)/x", "user:*****@tcp(db:3306)/x" },
                { "http://h/x?password=leak1&a=b", "http://h/x?password=*****&a=b" },
                { "h:6379,password=x,ssl=true", "h:6379,password=*****,ssl=true" },
                { "a:1, password = spaced ,b=c", "a:1, password = *****" },
                { "host=h password=x dbname=d", "host=h password=***** dbname=d" },
                { "{\"password\":\"p\",\"host\":\"h\"}", "{\"password\":\"*****\",\"host\":\"h\"}" },
                { "Driver={D};PWD={a;b}}c};UID=u", "Driver={D};PWD={*****};UID=u" },
                { "", "" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                char *m = secret_mask_string(t[i].in);
                ck_assert_ptr_nonnull(m);
                ck_assert_msg(strcmp(m, t[i].out) == 0, "mask('%s') = '%s', want '%s'", t[i].in, m, t[i].out);
                free(m);
        }
        ck_assert_ptr_null(secret_mask_string(NULL));
}
END_TEST

static void collect(const char *span, size_t len, void *userdata) {
        char *out = userdata;
        size_t ol = strlen(out);

        snprintf(out + ol, 256 - ol, "[%.*s]", (int) len, span);
}

/* secret_foreach() reports the spans themselves (the agent registers them
 * with the logger), and for an accepted Redis string exactly the parser's. */
START_TEST(test_foreach) {
        char out[256] = "";

        secret_foreach("Host=h;Password=p1;Token='t 2'", collect, out);
        ck_assert_str_eq(out, "[p1][t 2]");
        out[0] = '\0';
        secret_foreach("h:1,password=a,b=c,ssl=true", collect, out);
        ck_assert_str_eq(out, "[a,b=c]");
        out[0] = '\0';
        secret_foreach("redis://u:x@y@h", collect, out);
        ck_assert_str_eq(out, "[x@y]");
        out[0] = '\0';
        secret_foreach(NULL, collect, out);
        secret_foreach("plain", collect, out);
        ck_assert_str_eq(out, "");
}
END_TEST

struct key_case {
        const char *key;
        bool secret;
};

static const struct key_case keys[] = {
        { "password", true },
        { "Password", true },
        { "DbPassword", true },
        { "redis__password", true },
        { "ConnectionStrings__RedisPassword", true },
        { "Api-Key", true },
        { "X-API-KEY", true },
        { "ApiKey", true },
        { "api_key", true },
        { "SigningKey", true },
        { "Jwt:Key", true },
        { "Key", true },
        { "AccessKey", true },
        { "PrivateKey", true },
        { "private_key", true },
        { "client_secret", true },
        { "ClientSecret", true },
        { "Secrets", true },
        { "Cred", true },
        { "Creds", true },
        { "Credential", true },
        { "Credentials", true },
        { "ApiToken", true },
        { "TOKEN", true },
        { "Tokens", true },
        { "Pwd", true },
        { "Pass", true },
        { "Passwd", true },
        { "Passphrase", true },
        { "pasword", true },  /* one letter missing */
        { "Passowrd", true }, /* two letters swapped */
        { "Passwort", true },
        { "password_", true }, /* trailing separators are skipped */
        { "Monkey", true },    /* ends in "key": accepted false positive */
        { "Bypass", true },    /* ends in "pass": accepted false positive */
        { "UseDistributedMode", false },
        { "Redis", false },
        { "ConnectionString", false }, /* masked by its password parts instead */
        { "ConnectionStrings", false },
        { "PasswordPolicy", false },
        { "TokenEndpoint", false },
        { "SecretName", false },
        { "KeySpace", false },
        { "Keyspace", false },
        { "Passport", false },
        { "Host", false },
        { "User ID", false },
        { "Username", false },
        { "", false },
        { "__", false },
};

START_TEST(test_keys) {
        const struct key_case *k = &keys[_i];

        ck_assert_msg(secret_key_is_secret(k->key) == k->secret, "'%s' should %sbe secret", k->key,
                      k->secret ? "" : "not ");
}
END_TEST

START_TEST(test_key_null) {
        ck_assert(!secret_key_is_secret(NULL));
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_loop_test(tc, test_shapes, 0, (int) (sizeof shapes / sizeof shapes[0]));
        tcase_add_test(tc, test_exact);
        tcase_add_test(tc, test_foreach);
        tcase_add_loop_test(tc, test_keys, 0, (int) (sizeof keys / sizeof keys[0]));
        tcase_add_test(tc, test_key_null);
}

TEST_MAIN("secret", add_tests)
