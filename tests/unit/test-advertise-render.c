/* Unit tests for agent/advertise-render.c: env and json rendering, secrets.
 * The env output is parsed back by two reference readers written from the
 * rules of systemd's EnvironmentFile= (systemd.exec(5), src/basic/env-file.c)
 * and of DotNetEnv (its Parsers.cs), and, where the host has it, by systemd's
 * own parser (load_env_file() of libsystemd-shared, via dlopen). */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advertise-render.h"
#include "test-main.h"

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

/* ---- reference reader 1: systemd's EnvironmentFile= ---- */

enum sd_state { SD_PRE_KEY, SD_KEY, SD_PRE_VALUE, SD_VALUE, SD_VALUE_ESC, SD_SQUOTE, SD_DQUOTE, SD_DQUOTE_ESC, SD_COMMENT };

struct sd_reader {
        json_t *out;
        char key[1100], value[4096];
        size_t kl, vl, key_ws, value_ws; /* trailing whitespace starts here (SIZE_MAX: none) */
};

static void sd_add(struct sd_reader *r, char **p, size_t *n, size_t max, char c) {
        ck_assert_uint_lt(*n + 1, max);
        (*p)[(*n)++] = c;
}

static void sd_push(struct sd_reader *r, bool trim_value) {
        if (r->key_ws != SIZE_MAX)
                r->kl = r->key_ws;
        if (trim_value && r->value_ws != SIZE_MAX)
                r->vl = r->value_ws;
        r->key[r->kl] = r->value[r->vl] = '\0';
        json_object_set_new(r->out, r->key, json_string(r->value));
        r->kl = r->vl = 0;
}

static bool sd_newline(char c) {
        return c == '\n' || c == '\r';
}

static bool sd_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static enum sd_state sd_step(struct sd_reader *r, enum sd_state st, char c) {
        char *k = r->key, *v = r->value;

        switch (st) {
        case SD_PRE_KEY:
                if (c == '#' || c == ';')
                        return SD_COMMENT;
                if (sd_space(c))
                        return st;
                r->key_ws = SIZE_MAX;
                sd_add(r, &k, &r->kl, sizeof r->key, c);
                return SD_KEY;
        case SD_KEY:
                if (sd_newline(c)) {
                        r->kl = 0;
                        return SD_PRE_KEY;
                }
                if (c == '=') {
                        r->value_ws = SIZE_MAX;
                        return SD_PRE_VALUE;
                }
                if (!sd_space(c))
                        r->key_ws = SIZE_MAX;
                else if (r->key_ws == SIZE_MAX)
                        r->key_ws = r->kl;
                sd_add(r, &k, &r->kl, sizeof r->key, c);
                return st;
        case SD_PRE_VALUE:
        case SD_VALUE:
                if (sd_newline(c)) {
                        sd_push(r, st == SD_VALUE);
                        return SD_PRE_KEY;
                }
                if (st == SD_PRE_VALUE && (c == '\'' || c == '"'))
                        return c == '"' ? SD_DQUOTE : SD_SQUOTE;
                if (c == '\\') {
                        r->value_ws = SIZE_MAX;
                        return SD_VALUE_ESC;
                }
                if (st == SD_PRE_VALUE && sd_space(c))
                        return st;
                if (!sd_space(c))
                        r->value_ws = SIZE_MAX;
                else if (r->value_ws == SIZE_MAX)
                        r->value_ws = r->vl;
                sd_add(r, &v, &r->vl, sizeof r->value, c);
                return SD_VALUE;
        case SD_VALUE_ESC:
                if (!sd_newline(c))
                        sd_add(r, &v, &r->vl, sizeof r->value, c);
                return SD_VALUE;
        case SD_SQUOTE:
                if (c == '\'')
                        return SD_PRE_VALUE;
                sd_add(r, &v, &r->vl, sizeof r->value, c);
                return st;
        case SD_DQUOTE:
                if (c == '"')
                        return SD_PRE_VALUE;
                if (c == '\\')
                        return SD_DQUOTE_ESC;
                sd_add(r, &v, &r->vl, sizeof r->value, c);
                return st;
        case SD_DQUOTE_ESC:
                if (strchr("\"\\`$", c))
                        sd_add(r, &v, &r->vl, sizeof r->value, c);
                else if (c != '\n') {
                        sd_add(r, &v, &r->vl, sizeof r->value, '\\');
                        sd_add(r, &v, &r->vl, sizeof r->value, c);
                }
                return SD_DQUOTE;
        case SD_COMMENT:
                return sd_newline(c) ? SD_PRE_KEY : st;
        }
        return st;
}

static json_t *parse_systemd(const char *s) {
        struct sd_reader r = { .out = json_object(), .key_ws = SIZE_MAX, .value_ws = SIZE_MAX };
        enum sd_state st = SD_PRE_KEY;

        for (const char *p = s; *p; p++)
                st = sd_step(&r, st, *p);
        if (st != SD_PRE_KEY && st != SD_KEY && st != SD_COMMENT)
                sd_push(&r, st == SD_VALUE);
        return r.out;
}

/* ---- reference reader 2: DotNetEnv (the common .env reader for .NET) ---- */

static bool net_space(unsigned char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool net_control(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

static bool net_ident_start(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool net_ident(char c) {
        return net_ident_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* "$NAME" or "${NAME}" would be interpolated: the writer must never produce it. */
static bool net_interpolates(const char *p) {
        return p[0] == '$' && (net_ident_start(p[1]) || p[1] == '{');
}

/* A double-quoted value at *pp (after the quote); false on what DotNetEnv refuses or reads differently. */
static bool net_double(const char **pp, char *v, size_t *vl) {
        const char *p = *pp;

        for (; *p && *p != '"'; p++) {
                if (net_interpolates(p) || (net_control((unsigned char) *p) && !net_space((unsigned char) *p)))
                        return false;
                if (*p == '\\') {
                        const char *from = "abfnrtv\\'\"?$`", *to = "\a\b\f\n\r\t\v\\'\"?$`";
                        const char *e = strchr(from, p[1]);
                        if (!p[1] || strchr("xuU01234567", p[1]))
                                return false; /* byte codes: never written */
                        if (e)
                                v[(*vl)++] = to[e - from];
                        else {
                                v[(*vl)++] = '\\';
                                v[(*vl)++] = p[1];
                        }
                        p++;
                        continue;
                }
                v[(*vl)++] = *p;
        }
        if (*p != '"')
                return false;
        *pp = p + 1;
        return true;
}

/* An unquoted value: no whitespace-led '#', quotes, '$NAME' or control characters. */
static bool net_unquoted(const char **pp, char *v, size_t *vl) {
        const char *p = *pp;

        for (; *p && *p != '\n'; p++) {
                if ((*p == '#' && *vl > 0 && (v[*vl - 1] == ' ' || v[*vl - 1] == '\t')) || *p == '"' || *p == '\'' ||
                    net_interpolates(p) || net_control((unsigned char) *p) || *p == '\\')
                        return *p == '#';
                v[(*vl)++] = *p;
        }
        while (*vl > 0 && (v[*vl - 1] == ' ' || v[*vl - 1] == '\t'))
                (*vl)--;
        *pp = p;
        return true;
}

/* NULL when DotNetEnv would refuse the file or read something the writer never meant. */
static json_t *parse_dotnetenv(const char *s) {
        json_t *out = json_object();
        const char *p = s;
        static char k[1100], v[4096];

        while (*p) {
                size_t kl = 0, vl = 0;
                p += strspn(p, " \t");
                if (*p == '\n') {
                        p++;
                        continue;
                }
                if (!net_ident_start(*p))
                        goto refuse;
                while (net_ident(*p))
                        k[kl++] = *p++;
                k[kl] = '\0';
                p += strspn(p, " \t");
                if (*p++ != '=')
                        goto refuse;
                p += strspn(p, " \t");
                if (*p == '"' ? (p++, !net_double(&p, v, &vl)) : !net_unquoted(&p, v, &vl))
                        goto refuse;
                p += strspn(p, " \t");
                if (*p && *p++ != '\n')
                        goto refuse;
                v[vl] = '\0';
                json_object_set_new(out, k, json_string(v));
        }
        return out;
refuse:
        json_decref(out);
        return NULL;
}

/* ---- oracle 3: systemd itself, when its shared library is installed ---- */

typedef int (*load_env_file_fn)(FILE *f, const char *fname, char ***ret);

static load_env_file_fn systemd_loader(void) {
        static void *h;
        glob_t g = {};

        if (h)
                return (load_env_file_fn) dlsym(h, "load_env_file");
        if (glob("/usr/lib/*/systemd/libsystemd-shared-*.so", 0, NULL, &g) != 0 &&
            glob("/lib/systemd/libsystemd-shared-*.so", 0, NULL, &g) != 0)
                return NULL;
        /* load_env_file(FILE *, const char *, char ***) since systemd 240 */
        const char *ver = strrchr(g.gl_pathv[0], '-');
        if (ver && atoi(ver + 1) >= 245) /* NOLINT: a test, not input */
                h = dlopen(g.gl_pathv[0], RTLD_NOW | RTLD_LOCAL);
        globfree(&g);
        return h ? (load_env_file_fn) dlsym(h, "load_env_file") : NULL;
}

static json_t *parse_with_systemd(load_env_file_fn load, const char *s) {
        FILE *f = fmemopen((void *) s, strlen(s), "r");
        char **l = NULL;
        json_t *out = json_object();

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(load(f, "test.env", &l), 0);
        fclose(f);
        for (char **e = l; e && *e; e++) {
                char *eq = strchr(*e, '=');
                *eq = '\0';
                json_object_set_new(out, *e, json_string(eq + 1));
                free(*e);
        }
        free(l);
        return out;
}

static void assert_same(const char *who, json_t *want, json_t *got, const char *text) {
        ck_assert_msg(got, "%s refuses the rendered file:\n%s", who, text);
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v) {
                json_t *g = json_object_get(got, k);
                ck_assert_msg(g, "%s: key %s missing from:\n%s", who, k, text);
                ck_assert_msg(strcmp(json_string_value(g), json_string_value(v)) == 0,
                              "%s reads %s as [%s], want [%s]; file:\n%s", who, k, json_string_value(g),
                              json_string_value(v), text);
        }
        ck_assert_msg(json_object_size(got) == json_object_size(want), "%s reads %zu keys, want %zu:\n%s", who,
                      json_object_size(got), json_object_size(want), text);
}

/* Property: the env file read back, by either reader, gives exactly the values written. */
START_TEST(test_env_roundtrip) {
        static const char *const values[] = {
                "plain", "", "x\nEVIL=1", "quote\"inside", "back\\slash", "$HOME and ${PATH} and $", "`id`",
                "a=b=c", "#notcomment", "a #notcomment", " leading", "trailing ", "  both  ", "tab\there",
                "cr\rlf\r\n", "multi\nline\n", "\n", "\nEVIL=2\n#c", "'single'", "ends with backslash\\",
                "\\\"", "unicode \u2713 \u00e9", "# hash", "semi;colon", "\\n literal", "\"", "'", "$", "`", "\\",
                "vt\vff\f", "a\\$b", "Host=db;Password=\"p;w\"", "=", "--x", "\\x41\\101\\u0041",
        };
        json_t *cfg = json_object(), *want = json_object(), *nested = json_object();
        load_env_file_fn sd = systemd_loader();
        char err[256];
        int r;

        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
                char key[32];
                snprintf(key, sizeof key, "V%zu", i);
                json_object_set_new(cfg, key, json_string(values[i]));
                json_object_set_new(want, key, json_string(values[i]));
        }
        json_object_set_new(nested, "Pass_word", json_string("n\"1\n2"));
        json_object_set_new(cfg, "Nested", nested);
        json_object_set_new(want, "Nested__Pass_word", json_string("n\"1\n2"));

        char *text = NULL;
        size_t len = 0;
        r = advertise_render(cfg, "env", &text, &len, err, sizeof err);
        ck_assert_msg(r == 0, "render: %s", err);

        json_t *a = parse_systemd(text), *b = parse_dotnetenv(text);
        assert_same("systemd rules", want, a, text);
        assert_same("DotNetEnv rules", want, b, text);
        if (sd) {
                json_t *c = parse_with_systemd(sd, text);
                assert_same("systemd's load_env_file()", want, c, text);
                json_decref(c);
        } else
                fprintf(stderr, "test_env_roundtrip: libsystemd-shared not found, checked against the reference readers only\n");
        json_decref(a);
        json_decref(b);
        free(text);
        json_decref(cfg);
        json_decref(want);
}
END_TEST

/* The readers themselves: what they refuse or read differently. */
START_TEST(test_reference_readers) {
        json_t *j = parse_systemd("A=\"x\\ny\"\nB='a\\b'\n# c\nC = v  \nD=\"a\nb\"");
        ck_assert_str_eq(json_string_value(json_object_get(j, "A")), "x\\ny"); /* no \n escape in systemd */
        ck_assert_str_eq(json_string_value(json_object_get(j, "B")), "a\\b");
        ck_assert_str_eq(json_string_value(json_object_get(j, "C")), "v");
        ck_assert_str_eq(json_string_value(json_object_get(j, "D")), "a\nb");
        json_decref(j);
        j = parse_dotnetenv("A=\"x\\ny\"\n");
        ck_assert_str_eq(json_string_value(json_object_get(j, "A")), "x\ny"); /* ... but in DotNetEnv */
        json_decref(j);
        ck_assert_ptr_null(parse_dotnetenv("A=\"$HOME\"\n"));
        ck_assert_ptr_null(parse_dotnetenv("A=\"\001\"\n"));
}
END_TEST

START_TEST(test_env_refuses) {
        static const struct {
                const char *json, *mention;
        } t[] = {
                { "{\"a__b\":1,\"a\":{\"b\":2}}", "a__b: two config keys render as this name" },
                { "{\"A\":{\"B\":1},\"a__b\":2}", "a__b: two config keys render as this name (the other: A__B)" },
                { "{\"Hosts\":[\"x\"],\"Hosts__0\":\"y\"}", "Hosts__0: two config keys" },
                { "{\"Ctl\":{\"Bell\":\"a\\u0007b\"}}", "Ctl__Bell: character 2 of the value is a control character" },
                { "{\"Del\":\"\\u007f\"}", "Del: character 1" },
                { "{\"C1\":\"x\\u0085\"}", "C1: character 2" },
        };
        char err[256];
        int r;

        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                ck_assert_ptr_null(render(t[i].json, "env", &r, err, sizeof err));
                ck_assert_int_eq(r, -EINVAL);
                ck_assert_msg(strstr(err, t[i].mention), "%s: error '%s' lacks '%s'", t[i].json, err, t[i].mention);
        }
        json_t *nul = json_pack("{s:s%}", "Nul", "a\0b", (size_t) 3);
        char *text = NULL;
        size_t len;
        ck_assert_int_eq(advertise_render(nul, "env", &text, &len, err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "Nul: character 2"), "%s", err);
        json_decref(nul);
        /* json carries all of them */
        char *out = render("{\"Ctl\":\"a\\u0007b\",\"a__b\":1,\"a\":{\"b\":2}}", "json", &r, err, sizeof err);
        ck_assert_int_eq(r, 0);
        free(out);
}
END_TEST

static void add_tests(TCase *tc) {
        tcase_add_test(tc, test_env_nested);
        tcase_add_test(tc, test_env_quoting);
        tcase_add_test(tc, test_env_bad_keys);
        tcase_add_test(tc, test_json);
        tcase_add_test(tc, test_secrets);
        tcase_add_test(tc, test_env_roundtrip);
        tcase_add_test(tc, test_reference_readers);
        tcase_add_test(tc, test_env_refuses);
}

TEST_MAIN("advertise-render", add_tests)
