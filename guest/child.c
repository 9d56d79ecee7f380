/* SPDX-License-Identifier: Apache-2.0 */
/* The forked child: stdio, session, rlimits, credentials, capabilities, umask, cwd,
 * no_new_privs, seccomp (last; without no_new_privs first, while every capability is held),
 * execve.  Any failure goes to errfd as {u32 exit code, text}
 * and the child _exits; the parent turns it into ERROR + EXIT. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vminit.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void fail(const struct vm_child_io *io, uint32_t code, int e, const char *fmt, ...)
        __attribute__((format(printf, 4, 5), noreturn));
static void fail(const struct vm_child_io *io, uint32_t code, int e, const char *fmt, ...)
{
        uint8_t buf[4 + 1024];
        va_list ap;

        moat_vm_put_u32(buf, code);
        va_start(ap, fmt);
        int n = vsnprintf((char *)buf + 4, sizeof buf - 4, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if ((size_t)n >= sizeof buf - 4)
                n = (int)(sizeof buf - 5);
        if (e) {
                int m = snprintf((char *)buf + 4 + n, sizeof buf - 4 - (size_t)n, ": %s", strerror(e));
                if (m > 0)
                        n += m;
                if ((size_t)n >= sizeof buf - 4)
                        n = (int)(sizeof buf - 5);
        }
        (void)!write(io->errfd, buf, 4 + (size_t)n);
        _exit((int)code);
}

static const char *env_get(char *const *env, const char *name)
{
        size_t l = strlen(name);

        for (; env && *env; env++)
                if (strncmp(*env, name, l) == 0 && (*env)[l] == '=')
                        return *env + l + 1;
        return NULL;
}

/* PATH search as execvp does it, with the process env's PATH: resolved before seccomp. */
static int find_exec(const char *file, char *const *env, char *out, size_t outlen)
{
        if (strchr(file, '/')) {
                if ((size_t)snprintf(out, outlen, "%s", file) >= outlen)
                        return -ENAMETOOLONG;
                return 0;
        }
        const char *path = env_get(env, "PATH");
        if (!path)
                path = DEFAULT_PATH;
        int seen_eacces = 0;
        for (const char *p = path;; p++) {
                const char *colon = strchrnul(p, ':');
                size_t dl = (size_t)(colon - p);
                int n = dl ? snprintf(out, outlen, "%.*s/%s", (int)dl, p, file)
                           : snprintf(out, outlen, "%s", file);
                if (n > 0 && (size_t)n < outlen) {
                        struct stat st;
                        if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
                                if (access(out, X_OK) == 0)
                                        return 0;
                                seen_eacces = 1;
                        }
                }
                if (!*colon)
                        break;
                p = colon;
        }
        return seen_eacces ? -EACCES : -ENOENT;
}

static int cap_last(void)
{
        int last = 0;

        while (last < 63 && prctl(PR_CAPBSET_READ, (unsigned long)(last + 1), 0, 0, 0) >= 0)
                last++;
        return last;
}

static void set_caps(const struct vm_config *c, const struct vm_child_io *io, int last)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2];

        memset(d, 0, sizeof d);
        for (int i = 0; i < 2; i++) {
                d[i].effective = (uint32_t)(c->caps[1] >> (32 * i));
                d[i].permitted = (uint32_t)(c->caps[2] >> (32 * i));
                d[i].inheritable = (uint32_t)(c->caps[3] >> (32 * i));
        }
        if (syscall(SYS_capset, &h, d) < 0 && !io->test_mode)
                fail(io, 1, errno, "capset");
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                fail(io, 1, errno, "clearing the ambient capabilities");
        for (int cap = 0; cap <= last; cap++)
                if (c->caps[4] & (1ULL << cap))
                        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)cap, 0, 0) < 0 &&
                            !io->test_mode)
                                fail(io, 1, errno, "raising ambient capability %d", cap);
}

static void install_seccomp(const struct vm_config *c, const struct vm_child_io *io)
{
        size_t n = c->seccomp_len / 8;
        struct sock_filter *f = calloc(n, sizeof *f);

        if (!f)
                fail(io, 1, ENOMEM, "seccomp");
        for (size_t i = 0; i < n; i++) {
                const uint8_t *p = c->seccomp + 8 * i;
                f[i].code = moat_vm_get_u16(p);
                f[i].jt = p[2];
                f[i].jf = p[3];
                f[i].k = moat_vm_get_u32(p + 4);
        }
        struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) < 0)
                fail(io, 1, errno, "installing the seccomp filter");
}

void vm_child_exec(const struct vm_config *c, const struct vm_child_io *io)
{
        sigset_t all;
        char exe[4096];

        /* the parent blocks signals and ignores SIGPIPE: undo both */
        for (int s = 1; s < NSIG; s++)
                signal(s, SIG_DFL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);

        if (setsid() < 0)
                fail(io, 1, errno, "setsid");
        if (io->pty_slave >= 0) {
                if (ioctl(io->pty_slave, TIOCSCTTY, 0) < 0)
                        fail(io, 1, errno, "cannot make the terminal the controlling one");
                for (int i = 0; i < 3; i++)
                        if (dup2(io->pty_slave, i) < 0)
                                fail(io, 1, errno, "dup2");
        } else {
                /* dup2 clears O_CLOEXEC on 0, 1, 2; the originals are O_CLOEXEC */
                if (dup2(io->in, 0) < 0 || dup2(io->out, 1) < 0 || dup2(io->err, 2) < 0)
                        fail(io, 1, errno, "dup2");
        }

        for (size_t i = 0; i < c->n_rlimits; i++) {
                struct rlimit rl = { .rlim_cur = c->rlimits[i].soft, .rlim_max = c->rlimits[i].hard };
                if (setrlimit((int)c->rlimits[i].resource, &rl) < 0)
                        fail(io, 1, errno, "setrlimit %u", c->rlimits[i].resource);
        }

        /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it now, while we
         * still have every capability (as runc does), and let it govern the steps below. */
        bool seccomp_early = c->seccomp && !c->no_new_privs && geteuid() == 0;
        if (seccomp_early)
                install_seccomp(c, io);

        int last = cap_last();
        if (c->has_caps) {
                for (int cap = 0; cap <= last; cap++)
                        if (!(c->caps[0] & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0, 0, 0) < 0 &&
                            !io->test_mode)
                                fail(io, 1, errno, "dropping capability %d from the bounding set", cap);
                /* keep the permitted set across setuid; capset below sets the final sets */
                if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                        fail(io, 1, errno, "PR_SET_KEEPCAPS");
        }
        if (c->has_user) {
                bool can = geteuid() == 0;
                if (can || !io->test_mode) {
                        if (setgroups(c->n_groups, (const gid_t *)c->groups) < 0)
                                fail(io, 1, errno, "setgroups");
                        if (setresgid(c->gid, c->gid, c->gid) < 0)
                                fail(io, 1, errno, "setgid %u", c->gid);
                        if (setresuid(c->uid, c->uid, c->uid) < 0)
                                fail(io, 1, errno, "setuid %u", c->uid);
                }
        }
        if (c->has_caps) {
                prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
                set_caps(c, io, last);
        }
        if (c->has_umask)
                umask((mode_t)c->umask);
        if (c->cwd && chdir(c->cwd) < 0)
                fail(io, 1, errno, "cannot change to the working directory '%s'", c->cwd);
        if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                fail(io, 1, errno, "no_new_privs");

        int r = find_exec(c->args[0], c->env, exe, sizeof exe);
        if (r < 0)
                fail(io, r == -ENOENT ? 127 : 126, -r, "cannot run '%s'", c->args[0]);
        if (c->seccomp && !seccomp_early)
                install_seccomp(c, io);
        execve(exe, c->args, c->env);
        int e = errno;
        fail(io, e == ENOENT ? 127 : 126, e, "cannot run '%s'", c->args[0]);
}
