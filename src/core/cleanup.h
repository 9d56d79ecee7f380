/* SPDX-License-Identifier: Apache-2.0 */
/* Scope-bound cleanup, as in systemd and crun.  fds start at -EBADF. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
        *fd = -EBADF;
}
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void closedirp(DIR **d) { if (*d) closedir(*d); }
/* Kills (SIGKILL) and reaps a child that was never handed over. */
static inline void pid_killp(pid_t *pid)
{
        if (*pid > 0) {
                int saved = errno;
                kill(*pid, SIGKILL);
                while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                errno = saved;
        }
}
void strv_free(char **v);
static inline void strv_freep(char ***v) { strv_free(*v); }

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_pid_ _cleanup_(pid_killp)
#define _cleanup_strv_ _cleanup_(strv_freep)

#define TAKE_PTR(p) ({ __typeof__(p) _tp = (p); (p) = NULL; _tp; })
#define TAKE_FD(fd) ({ int _tf = (fd); (fd) = -EBADF; _tf; })
#define TAKE_PID(p) ({ pid_t _tp = (p); (p) = 0; _tp; })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define STREQ(a, b) (strcmp((a), (b)) == 0)
