/* notify-listen PATH [SECONDS]: bind an AF_UNIX datagram socket at PATH (the
 * NOTIFY_SOCKET of a process under test) and print every sd_notify message,
 * one line per assignment, flushed, until SIGTERM or SECONDS (default 60). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "strutil.h"

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, secs = 60;
        time_t end;

        if (argc < 2 || strlen(argv[1]) >= sizeof sa.sun_path) {
                fprintf(stderr, "usage: notify-listen PATH [SECONDS]\n");
                return 2;
        }
        if (argc > 2 && (parse_int(argv[2], &secs) < 0 || secs < 1)) {
                fprintf(stderr, "notify-listen: bad SECONDS '%s'\n", argv[2]);
                return 2;
        }
        memcpy(sa.sun_path, argv[1], strlen(argv[1]));
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                fprintf(stderr, "notify-listen: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        end = time(NULL) + secs;
        while (time(NULL) < end) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char buf[4097];
                ssize_t n;

                if (poll(&p, 1, 500) <= 0)
                        continue;
                n = recv(fd, buf, sizeof buf - 1, 0);
                if (n <= 0)
                        continue;
                buf[n] = '\0';
                for (char *line = buf, *nl; line && *line; line = nl) {
                        nl = strchr(line, '\n');
                        if (nl)
                                *nl++ = '\0';
                        printf("%s\n", line);
                }
                fflush(stdout);
        }
        return 0;
}
