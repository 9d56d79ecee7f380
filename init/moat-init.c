/* SPDX-License-Identifier: Apache-2.0 */
/*
 * moat-init: the small PID 1 moat runs in each container (like tini or catatonit).
 *
 *   moat-init [--grace MS] [--] CMD [ARGS...]
 *
 * It forks and execs CMD (PID 2, in its own process group, given the terminal when stdin is
 * one), forwards every catchable signal it receives to that process group, reaps every zombie
 * of the container (it is PID 1, or else a child subreaper), and exits with CMD's status
 * (128 + N when CMD was killed by signal N) once CMD has exited.
 *
 * On SIGTERM, when CMD has not exited --grace milliseconds later (default 10000, 0 = never),
 * the whole process group gets SIGKILL: a service that ignores SIGTERM still stops. As CMD is
 * not PID 1, the kernel's default action for SIGTERM applies to it unless it handles the signal.
 *
 * Tiny and robust: static, no libmoat, no malloc, no signal handlers (signals stay blocked and
 * are taken with sigtimedwait), no file descriptors of its own, no /proc.
 *
 * Exit status: CMD's; 127 when CMD is not found, 126 when it cannot be run; 2 for a usage
 * error; 1 when moat-init itself fails (fork).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_GRACE_MS 10000UL
#define MAX_GRACE_MS (7UL * 24 * 3600 * 1000) /* a week */

static const char usage_text[] =
        "usage: moat-init [--grace MS] [--] CMD [ARGS...]\n"
        "  Runs CMD as the child of a minimal init: forwards signals to its process group,\n"
        "  reaps zombies, exits with CMD's status. On SIGTERM, when CMD has not exited after\n"
        "  MS milliseconds (default 10000; 0 = never), its process group gets SIGKILL.\n";

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        int n = snprintf(buf, sizeof buf, "moat-init: ");

        va_start(ap, fmt);
        n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof buf - 1)
                n = (int)sizeof buf - 2;
        buf[n++] = '\n';
        /* one write: never interleaved with the service's output mid-line */
        while (write(STDERR_FILENO, buf, (size_t)n) < 0 && errno == EINTR)
                ;
}

/* Signals moat-init takes itself (all of them blocked): everything catchable except the
 * synchronous faults, which must stay deliverable so a bug here is not silently looped on. */
static void wait_set(sigset_t *set)
{
        static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS };

        sigfillset(set);
        for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
                sigdelset(set, faults[i]);
}

static int parse_ms(const char *s, unsigned long *out)
{
        char *end;
        unsigned long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > MAX_GRACE_MS)
                return -EINVAL;
        *out = v;
        return 0;
}

struct opts {
        unsigned long grace_ms;
        char **argv; /* CMD ARGS... */
};

/* 0: run o->argv; -1: --help was printed (exit 0); > 0: a usage error, the exit status */
static int parse_args(int argc, char **argv, struct opts *o)
{
        int i;

        o->grace_ms = DEFAULT_GRACE_MS;
        o->argv = NULL;
        for (i = 1; i < argc; i++) {
                const char *a = argv[i], *val = NULL;

                if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                }
                if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        fputs(usage_text, stdout);
                        return -1;
                }
                if (strcmp(a, "--grace") == 0 || strcmp(a, "-g") == 0) {
                        if (i + 1 >= argc) {
                                msg("option '%s' needs a value (milliseconds)", a);
                                return 2;
                        }
                        val = argv[++i];
                } else if (strncmp(a, "--grace=", 8) == 0) {
                        val = a + 8;
                } else if (a[0] == '-' && a[1]) {
                        msg("unknown option '%s'", a);
                        fputs(usage_text, stderr);
                        return 2;
                } else {
                        break; /* CMD */
                }
                if (parse_ms(val, &o->grace_ms) < 0) {
                        msg("invalid --grace '%s': expected milliseconds from 0 to %lu", val, MAX_GRACE_MS);
                        return 2;
                }
        }
        if (i >= argc || !argv[i][0]) {
                msg("no command given");
                fputs(usage_text, stderr);
                return 2;
        }
        o->argv = argv + i;
        return 0;
}

/* execvp without its fallback of running a file that is no binary nor #! script with /bin/sh:
 * as runc and crun, such a file fails with ENOEXEC. PATH from the environment, as execvp.
 * Returns errno: the first error that is not "not here" (ENOENT, ENOTDIR), else EACCES when
 * some candidate was not executable, else ENOENT. */
static int exec_path(char **argv)
{
        const char *path, *p;
        char buf[PATH_MAX];
        bool eacces = false;
        size_t len = strlen(argv[0]);

        if (strchr(argv[0], '/')) {
                execv(argv[0], argv);
                return errno;
        }
        path = getenv("PATH");
        if (!path)
                path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (p = path;; p++) {
                const char *end = strchrnul(p, ':'), *dir = p;
                size_t dl = (size_t)(end - p);

                if (dl == 0) /* an empty entry is the current directory */
                        dir = ".", dl = 1;
                if (dl + 1 + len < sizeof buf) {
                        memcpy(buf, dir, dl);
                        buf[dl] = '/';
                        memcpy(buf + dl + 1, argv[0], len + 1);
                        execv(buf, argv);
                        if (errno == EACCES)
                                eacces = true;
                        else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
                                return errno;
                }
                if (!*end)
                        break;
                p = end;
        }
        return eacces ? EACCES : ENOENT;
}

/* The child: own process group, the terminal's foreground group, the original signal mask,
 * then exec. Never returns. */
static _Noreturn void run_child(char **argv, const sigset_t *orig_mask)
{
        int e;

        setpgid(0, 0);
        /* SIGTTOU is still blocked here, so tcsetpgrp from a background group succeeds.
         * stdin may be a terminal that is not our controlling one (ENOTTY): then nothing to do. */
        if (isatty(STDIN_FILENO))
                (void)tcsetpgrp(STDIN_FILENO, getpgrp());
        sigprocmask(SIG_SETMASK, orig_mask, NULL);
        e = exec_path(argv);
        msg("cannot run '%s': %s", argv[0], strerror(e));
        _exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
}

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* to the child's process group; to the child alone when the group is gone (it moved) */
static void forward(pid_t child, int sig)
{
        if (kill(-child, sig) < 0 && errno == ESRCH)
                (void)kill(child, sig);
}

static int status_code(int st)
{
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return 1;
}

/* Reaps every zombie; returns true (and sets *code) once the child is among them. */
static bool reap(pid_t child, int *code)
{
        bool done = false;
        int st;
        pid_t p;

        for (;;) {
                p = waitpid(-1, &st, WNOHANG);
                if (p < 0 && errno == EINTR)
                        continue;
                if (p <= 0)
                        break;
                if (p == child) {
                        *code = status_code(st);
                        done = true;
                }
        }
        return done;
}

int main(int argc, char **argv)
{
        struct opts o;
        sigset_t set, orig_mask;
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        long long deadline = -1; /* when SIGKILL goes to the group, ms on CLOCK_MONOTONIC */
        int r, code = 1;
        pid_t child;

        r = parse_args(argc, argv, &o);
        if (r != 0)
                return r < 0 ? 0 : r;

        /* Block every signal we take before the child exists, so none is lost in between.
         * SIGCHLD back to its default: ignored (SIG_IGN inherited) would auto-reap the child
         * and lose its status. */
        wait_set(&set);
        sigaction(SIGCHLD, &dfl, NULL);
        sigprocmask(SIG_BLOCK, &set, &orig_mask);

        /* PID 1 of a pid namespace reaps orphans anyway; elsewhere become their reaper. */
        if (getpid() != 1)
                (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

        child = fork();
        if (child < 0) {
                msg("cannot fork: %s", strerror(errno));
                return 1;
        }
        if (child == 0)
                run_child(o.argv, &orig_mask);
        /* also here: a signal forwarded before the child ran setpgid must find the group
         * (EACCES once it has exec'd, and then it has set it itself) */
        (void)setpgid(child, child);

        for (;;) {
                struct timespec ts, *tmo = NULL;
                siginfo_t si;
                int sig;

                if (deadline >= 0) {
                        long long left = deadline - now_ms();
                        if (left < 0)
                                left = 0;
                        ts.tv_sec = (time_t)(left / 1000);
                        ts.tv_nsec = (long)(left % 1000) * 1000000;
                        tmo = &ts;
                }
                sig = sigtimedwait(&set, &si, tmo);
                if (sig < 0) {
                        if (errno == EAGAIN && deadline >= 0) {
                                /* the grace is over: the group, and the child if it left it */
                                msg("'%s' did not exit %lu ms after SIGTERM: sending SIGKILL", o.argv[0],
                                    o.grace_ms);
                                (void)kill(-child, SIGKILL);
                                (void)kill(child, SIGKILL);
                                deadline = -1;
                        }
                        continue; /* EINTR (a stop/continue), or spurious */
                }
                if (sig == SIGCHLD) {
                        if (reap(child, &code))
                                break;
                        continue;
                }
                forward(child, sig);
                if (sig == SIGTERM && o.grace_ms > 0 && deadline < 0)
                        deadline = now_ms() + (long long)o.grace_ms;
        }
        /* any zombie that exited meanwhile; the rest of the container dies with PID 1 */
        (void)reap(child, &r);
        return code;
}
