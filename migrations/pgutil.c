/* See pgutil.h. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse-util.h"
#include "pgutil.h"
#include "strutil.h"

static void PQconninfoFreep(PQconninfoOption **o) {
        if (*o)
                PQconninfoFree(*o);
}

int pg_register_secrets(const char *conninfo, char *errbuf, size_t errlen) {
        _cleanup_(PQconninfoFreep) PQconninfoOption *opts = NULL;
        char *err = NULL;
        const char *e;

        opts = PQconninfoParse(conninfo, &err);
        if (!opts) {
                /* libpq's message quotes the offending part, which could contain the password. */
                if (err)
                        PQfreemem(err);
                errbuf_printf(errbuf, errlen, "--database: not a valid PostgreSQL connection string or URI");
                return -EINVAL;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++)
                if (strcmp(o->keyword, "password") == 0 && o->val)
                        log_add_secret(o->val);
        e = getenv("PGPASSWORD");
        if (e)
                log_add_secret(e);
        return 0;
}

char *pg_describe(const char *conninfo) {
        _cleanup_(PQconninfoFreep) PQconninfoOption *opts = NULL;
        const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;
        char *err = NULL;

        opts = PQconninfoParse(conninfo, &err);
        if (!opts) {
                if (err)
                        PQfreemem(err);
                return strdup("(unparsable connection string)");
        }
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (!o->val || !*o->val)
                        continue;
                if (strcmp(o->keyword, "user") == 0)
                        user = o->val;
                else if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && !host))
                        host = o->val;
                else if (strcmp(o->keyword, "port") == 0)
                        port = o->val;
                else if (strcmp(o->keyword, "dbname") == 0)
                        db = o->val;
        }
        return strdup_printf("%s%s%s%s%s/%s", user ?: "", user ? "@" : "", host ?: "localhost", port ? ":" : "",
                             port ?: "", db ?: (user ?: ""));
}

/* Server notices (and libpq's own messages while idle) go to the log, masked, one line. */
static void notice_to_log(void *userdata, const char *message) {
        _cleanup_free_ char *m = strdup(message);
        size_t l;

        if (!m)
                return;
        for (char *p = m; *p; p++)
                if (*p == '\n' || *p == '\t')
                        *p = ' ';
        l = strlen(m);
        while (l > 0 && m[l - 1] == ' ')
                m[--l] = '\0';
        log_notice("PostgreSQL: %s", m);
}

int pg_connect(const char *conninfo, const char *application_name, PGconn **ret, char *errbuf, size_t errlen) {
        const char *keys[] = { "connect_timeout", "dbname", "fallback_application_name", NULL };
        const char *vals[] = { "10", conninfo, application_name, NULL };
        PGconn *c;

        assert(conninfo);
        assert(ret);
        c = PQconnectdbParams(keys, vals, 1);
        if (!c) {
                errbuf_printf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        if (PQstatus(c) != CONNECTION_OK) {
                _cleanup_free_ char *masked = NULL, *where = pg_describe(conninfo);
                const char *m = PQerrorMessage(c);
                bool auth = strstr(m, "authentication failed") || strstr(m, "password") ||
                            strstr(m, "no pg_hba.conf entry");
                masked = log_mask_secrets(m);
                errbuf_printf(errbuf, errlen, "cannot connect to PostgreSQL %s: %s", where ?: "",
                              masked ? masked : "(error)");
                /* Trim libpq's trailing newline. */
                for (size_t l = errbuf ? strlen(errbuf) : 0; l > 0 && (errbuf[l - 1] == '\n' || errbuf[l - 1] == ' ');)
                        errbuf[--l] = '\0';
                PQfinish(c);
                return auth ? -EACCES : -ECONNREFUSED;
        }
        if (PQpass(c) && *PQpass(c))
                log_add_secret(PQpass(c));
        PQsetNoticeProcessor(c, notice_to_log, NULL);
        *ret = c;
        return 0;
}

int pg_detect_pooler(PGconn *c, bool *ret_pooled, int *ret_server_pid, char *errbuf, size_t errlen) {
        _cleanup_pgresult_ PGresult *res = NULL;
        int pid = 0, r;

        r = pg_query(c, "SELECT pg_backend_pid()", 0, NULL, &res, errbuf, errlen);
        if (r < 0)
                return r;
        if (parse_int(PQgetvalue(res, 0, 0), &pid) < 0) {
                errbuf_printf(errbuf, errlen, "unexpected reply to SELECT pg_backend_pid()");
                return -EIO;
        }
        *ret_pooled = pid != PQbackendPID(c);
        *ret_server_pid = pid;
        return 0;
}

static char *schema_ident; /* quoted, e.g. "app" */

int pg_set_schema(PGconn *c, const char *schema) {
        char *q = NULL;

        if (schema) {
                char *e = PQescapeIdentifier(c, schema, strlen(schema));
                if (!e)
                        return -ENOMEM;
                q = strdup(e);
                PQfreemem(e);
                if (!q)
                        return -ENOMEM;
        }
        free(schema_ident);
        schema_ident = q;
        return 0;
}

char *pg_qualify(const char *sql) {
        static const char prefix[] = "coord_schema_";
        size_t n = 0, sl, pl = sizeof(prefix) - 1, out = 0;
        const char *p;
        char *r;

        if (!schema_ident)
                return strdup(sql);
        sl = strlen(schema_ident);
        for (p = sql; (p = strstr(p, prefix)); p += pl)
                n++;
        r = malloc(strlen(sql) + n * (sl + 1) + 1);
        if (!r)
                return NULL;
        for (p = sql; *p;) {
                /* A name right after a quote is a string or identifier literal (relname = '...'): keep it. */
                if (strncmp(p, prefix, pl) == 0 && (p == sql || (p[-1] != '\'' && p[-1] != '"' && p[-1] != '.'))) {
                        memcpy(r + out, schema_ident, sl);
                        out += sl;
                        r[out++] = '.';
                        memcpy(r + out, prefix, pl);
                        out += pl;
                        p += pl;
                } else
                        r[out++] = *p++;
        }
        r[out] = '\0';
        return r;
}

const char *pg_sqlstate(const PGresult *res) {
        const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        return s ?: "";
}

void pg_format_error(const PGresult *res, PGconn *c, char *buf, size_t len) {
        const char *state = pg_sqlstate(res);
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
        const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
        size_t l;

        if (!msg) {
                msg = res ? PQresultErrorMessage(res) : NULL;
                if (!msg || !*msg)
                        msg = c ? PQerrorMessage(c) : "unknown error";
        }
        if (!*state && c && PQstatus(c) == CONNECTION_BAD)
                state = "08006"; /* connection_failure: the server closed or lost the connection */
        snprintf(buf, len, "%s%s%s%s%s%s%s", state, *state ? ": " : "", msg, detail ? " (DETAIL: " : "",
                 detail ?: "", detail ? ")" : "", "");
        l = strlen(buf);
        if (hint && l + 10 < len)
                snprintf(buf + l, len - l, " (HINT: %s)", hint);
        /* One line: libpq messages end in newlines and may span several, indented with tabs. */
        {
                char *w = buf;
                for (const char *p = buf; *p; p++) {
                        char ch = (*p == '\n' || *p == '\t') ? ' ' : *p;
                        if (ch == ' ' && w > buf && w[-1] == ' ')
                                continue;
                        *w++ = ch;
                }
                *w = '\0';
        }
        l = strlen(buf);
        while (l > 0 && buf[l - 1] == ' ')
                buf[--l] = '\0';
}

int pg_query(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **ret, char *errbuf,
             size_t errlen) {
        _cleanup_free_ char *q = pg_qualify(sql);
        PGresult *res;

        if (!q) {
                errbuf_printf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        res = PQexecParams(c, q, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                pg_format_error(res, c, errbuf, errlen);
                PQclear(res);
                return PQstatus(c) == CONNECTION_BAD ? -ECONNRESET : -EIO;
        }
        *ret = res;
        return 0;
}

int pg_exec(PGconn *c, const char *sql, char *errbuf, size_t errlen) {
        /* Simple protocol: sql may hold several statements. */
        _cleanup_free_ char *q = pg_qualify(sql);
        _cleanup_pgresult_ PGresult *res = NULL;
        ExecStatusType st;

        if (!q) {
                errbuf_printf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        res = PQexec(c, q);
        st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                pg_format_error(res, c, errbuf, errlen);
                return PQstatus(c) == CONNECTION_BAD ? -ECONNRESET : -EIO;
        }
        return 0;
}
