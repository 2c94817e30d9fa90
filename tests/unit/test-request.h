/* The check program's side of the request protocol of tests/e2e/redis-client.sh
 * and tls-client.sh (harness_serve_requests in tests/harness.sh): the program
 * asks its script to act on a server (kill, start, stop, cont, failover). */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "duration.h"
#include "fileio.h"
#include "macro.h"
#include "strutil.h"

/* Write the word what to ctl_dir/request (renamed into place: the script never
 * sees half a request) and wait until the script echoes it in ctl_dir/ack,
 * turning e meanwhile (sleeping when e is NULL); fail after secs. */
static inline void test_request(sd_event *e, const char *ctl_dir, const char *what, unsigned secs) {
        _cleanup_free_ char *path = strdup_printf("%s/request", ctl_dir), *tmp = strdup_printf("%s/request.tmp", ctl_dir),
                            *ack = strdup_printf("%s/ack", ctl_dir), *got = NULL;
        uint64_t deadline = now_usec() + secs * 1000000ULL;
        FILE *f;

        (void) unlink(ack);
        f = fopen(tmp, "we");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "%s\n", what);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(rename(tmp, path), 0);
        while (access(ack, F_OK) != 0) {
                if (e)
                        ck_assert_int_ge(sd_event_run(e, 20000), 0);
                else
                        usleep(20000);
                ck_assert_msg(now_usec() < deadline, "script did not serve request '%s'", what);
        }
        ck_assert_int_eq(fileio_read_string(ack, 64, true, &got), 0);
        ck_assert_str_eq(got, what);
        (void) unlink(ack);
}
