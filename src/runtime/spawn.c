/* SPDX-License-Identifier: Apache-2.0 */
#include "runtime/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool force_legacy;
static int clone3_state; /* 0 unknown, 1 works, -1 missing */

void moat_spawn_force_legacy(bool on)
{
        force_legacy = on;
}

static pid_t spawn_legacy(uint64_t flags, int *pidfd)
{
        /* A raw clone with a NULL stack behaves like fork() (the child gets a
         * copy-on-write copy of our stack).  glibc's fork() would not take the
         * namespace flags. */
        int fd = -1;
        unsigned long f = (unsigned long)flags | SIGCHLD;
        if (pidfd)
                f |= CLONE_PIDFD;
        long r = syscall(SYS_clone, f, NULL, pidfd ? &fd : NULL, NULL, 0);
        if (r < 0)
                return -errno;
        if (r > 0 && pidfd)
                *pidfd = fd;
        return (pid_t)r;
}

pid_t moat_spawn(uint64_t flags, int cgroup_fd, int *pidfd)
{
        if (pidfd)
                *pidfd = -EBADF;
        if (!force_legacy && clone3_state >= 0) {
                int fd = -1;
                struct clone_args args;
                memset(&args, 0, sizeof(args));
                args.flags = flags;
                args.exit_signal = SIGCHLD;
                if (pidfd) {
                        args.flags |= CLONE_PIDFD;
                        args.pidfd = (uint64_t)(uintptr_t)&fd;
                }
                if (cgroup_fd >= 0) {
                        args.flags |= CLONE_INTO_CGROUP;
                        args.cgroup = (uint64_t)cgroup_fd;
                }
                long r = syscall(SYS_clone3, &args, sizeof(args));
                if (r >= 0) {
                        clone3_state = 1;
                        if (r > 0 && pidfd)
                                *pidfd = fd;
                        return (pid_t)r;
                }
                if (errno != ENOSYS)
                        return -errno;
                clone3_state = -1;
        }
        if (cgroup_fd >= 0)
                return -EOPNOTSUPP; /* the caller then adds the pid by hand */
        return spawn_legacy(flags, pidfd);
}

int moat_ns_children_save(struct moat_ns_children *s)
{
        s->pid = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (s->pid < 0)
                return -errno;
        s->time = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
        if (s->time < 0)
                s->time = -EBADF; /* kernel without time namespaces */
        return 0;
}

void moat_ns_children_restore(struct moat_ns_children *s)
{
        /* Our own active namespaces: always allowed to go back to them. */
        if (s->pid >= 0) {
                (void)setns(s->pid, CLONE_NEWPID);
                close(s->pid);
        }
        if (s->time >= 0) {
                (void)setns(s->time, CLONE_NEWTIME);
                close(s->time);
        }
        s->pid = s->time = -EBADF;
}
