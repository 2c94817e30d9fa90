/* The raw limit for bench/migrate.sh: N single-transaction CREATE TABLE commits
 * over one libpq connection, one round trip each (autocommit), nothing else.
 *
 *   bench/migrate-raw PGURL N [PREFIX]   prints "N SECONDS" */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse-util.h"
#include "strutil.h"

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
        const char *prefix = argc > 3 ? argv[3] : "raw";
        PGconn *c;
        int n;
        double t0, t1;

        if (argc < 3 || parse_int(argv[2], &n) < 0 || n <= 0) {
                fprintf(stderr, "usage: %s PGURL N [PREFIX]\n", argv[0]);
                return 2;
        }
        c = PQconnectdb(argv[1]);
        if (PQstatus(c) != CONNECTION_OK) {
                fprintf(stderr, "migrate-raw: cannot connect: %s", PQerrorMessage(c));
                PQfinish(c);
                return 3;
        }
        t0 = now();
        for (int i = 1; i <= n; i++) {
                char sql[128];
                PGresult *res;
                snprintf(sql, sizeof(sql), "CREATE TABLE %s_%d (id int)", prefix, i);
                res = PQexec(c, sql);
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        fprintf(stderr, "migrate-raw: %s: %s", sql, PQerrorMessage(c));
                        PQclear(res);
                        PQfinish(c);
                        return 1;
                }
                PQclear(res);
        }
        t1 = now();
        printf("%d %.3f\n", n, t1 - t0);
        PQfinish(c);
        return 0;
}
