/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the vm tier's unit tests: finding and starting moat-vminit in its test
 * mode (--channel-fd N over a socketpair), a monotonic clock, and an argv joined for matching. */
#pragma once

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* moat-vminit: $MOAT_VMINIT, else ../guest/moat-vminit next to this test's directory.  0 when
 * it is there and executable. */
static inline int vm_test_find_vminit(char *out, size_t size)
{
        const char *e = getenv("MOAT_VMINIT");
        if (e) {
                snprintf(out, size, "%s", e);
                return access(out, X_OK);
        }
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
                return -1;
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (!slash)
                return -1;
        *slash = 0;
        snprintf(out, size, "%s/../guest/moat-vminit", self);
        return access(out, X_OK);
}

/* Starts `vminit --channel-fd N`; *fd is our end of the channel (non-blocking). */
static inline pid_t vm_test_spawn_vminit(const char *vminit, int *fd)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        pid_t pid = fork();
        if (pid == 0) {
                int c = dup(sv[1]);     /* without O_CLOEXEC */
                char arg[16];
                snprintf(arg, sizeof arg, "%d", c);
                execl(vminit, "moat-vminit", "--channel-fd", arg, (char *)NULL);
                _exit(126);
        }
        close(sv[1]);
        *fd = sv[0];
        fcntl(*fd, F_SETFL, O_NONBLOCK);
        return pid;
}

static inline double vm_test_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The strings of v, space-separated (malloc'ed). */
static inline char *vm_test_join(char **v)
{
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);
        for (size_t i = 0; f && v && v[i]; i++)
                fprintf(f, "%s%s", i ? " " : "", v[i]);
        if (f)
                fclose(f);
        return s;
}
