/* See pgutil.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
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
                snprintf(errbuf, errlen, "--database: not a valid PostgreSQL connection string or URI");
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

int pg_connect(const char *conninfo, const char *application_name, PGconn **ret, char *errbuf, size_t errlen) {
        const char *keys[] = { "connect_timeout", "dbname", "fallback_application_name", NULL };
        const char *vals[] = { "10", conninfo, application_name, NULL };
        PGconn *c;

        c = PQconnectdbParams(keys, vals, 1);
        if (!c) {
                snprintf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        if (PQstatus(c) != CONNECTION_OK) {
                _cleanup_free_ char *masked = NULL, *where = pg_describe(conninfo);
                const char *m = PQerrorMessage(c);
                bool auth = strstr(m, "authentication failed") || strstr(m, "password") ||
                            strstr(m, "no pg_hba.conf entry");
                masked = log_mask_secrets(m);
                snprintf(errbuf, errlen, "cannot connect to PostgreSQL %s: %s", where ?: "",
                         masked ? masked : "(error)");
                /* Trim libpq's trailing newline. */
                size_t l = strlen(errbuf);
                while (l > 0 && (errbuf[l - 1] == '\n' || errbuf[l - 1] == ' '))
                        errbuf[--l] = '\0';
                PQfinish(c);
                return auth ? -EACCES : -ECONNREFUSED;
        }
        if (PQpass(c) && *PQpass(c))
                log_add_secret(PQpass(c));
        *ret = c;
        return 0;
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
        /* One line: libpq messages end in newlines and may span several. */
        for (char *p = buf; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        l = strlen(buf);
        while (l > 0 && buf[l - 1] == ' ')
                buf[--l] = '\0';
}

int pg_query(PGconn *c, const char *sql, int nparams, const char *const *params, PGresult **ret, char *errbuf,
             size_t errlen) {
        PGresult *res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
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
        _cleanup_pgresult_ PGresult *res = PQexec(c, sql);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                pg_format_error(res, c, errbuf, errlen);
                return PQstatus(c) == CONNECTION_BAD ? -ECONNRESET : -EIO;
        }
        return 0;
}
