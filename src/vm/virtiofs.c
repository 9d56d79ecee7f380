/* SPDX-License-Identifier: Apache-2.0 */
/* One virtiofsd per VM serving a staging directory of its shares (vm/virtiofs.h). */
#include "vm/virtiofs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "vm/config.h"

#define STOP_GRACE_MS 3000 /* the daemon exits by itself once QEMU is gone */

const char *moat_vm_virtiofsd_path(void)
{
        const char *e = getenv("MOAT_VM_VIRTIOFSD");
        return e && *e ? e : MOAT_VM_VIRTIOFSD;
}

int moat_vm_shares_check(struct moat_vm_share *s, size_t n, struct moat_error **err)
{
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                char *abs = realpath(s[i].source, NULL);
                if (!abs) {
                        int e = errno;
                        if (e == ENOENT || e == ENOTDIR)
                                return moat_error_input(err, -e, "the bind mount source '%s' (for '%s') does not "
                                                        "exist on the host", s[i].source, s[i].target);
                        return moat_error_set(err, e, "the bind mount source '%s' (for '%s')", s[i].source,
                                              s[i].target);
                }
                free(s[i].source);
                s[i].source = abs;
                if (stat(abs, &st) < 0)
                        return moat_error_set(err, errno, "the bind mount source '%s' (for '%s')", abs, s[i].target);
                if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                        return moat_error_input(err, -EINVAL, "the bind mount source '%s' (for '%s') is neither a "
                                                "directory nor a regular file: it cannot be shared with a VM", abs,
                                                s[i].target);
                s[i].is_file = !S_ISDIR(st.st_mode);
        }
        if (n == 0)
                return 0;
        const char *exe = moat_vm_virtiofsd_path();
        if (access(exe, X_OK) < 0)
                return moat_error_input(err, -ENOENT, "bind mounts in a VM need virtiofsd, and '%s' %s (on Debian "
                                        "it comes with qemu-system-common: apt-get install qemu-system-common)",
                                        exe, errno == ENOENT ? "does not exist" : "cannot be run");
        return 0;
}

int moat_vm_vfsd_argv(const char *exe, const char *dir, char ***argv)
{
        _cleanup_strv_ char **v = calloc(1, sizeof(char *));
        _cleanup_free_ char *src = NULL;
        *argv = NULL;
        /* virtiofsd's -o parser splits at commas */
        if (strpbrk(dir, ",\\"))
                return -EINVAL;
        if (!v || asprintf(&src, "source=%s", dir) < 0)
                return -ENOMEM;
        const char *args[] = {
                exe, "--fd=3", "-o", src, "-o", "cache=none", "-o", "sandbox=namespace", "-o", "log_level=warn",
                /* we raise the soft limit ourselves: raising the hard one needs CAP_SYS_RESOURCE */
                "--rlimit-nofile=0",
        };
        for (size_t i = 0; i < ARRAY_SIZE(args); i++)
                if (strv_push(&v, args[i]) < 0)
                        return -ENOMEM;
        *argv = TAKE_PTR(v);
        return 0;
}

/* What the child reports on its error pipe when it cannot get to the exec. */
struct child_fail {
        int err;
        int step;  /* enum below */
        int share; /* index, or -1 */
};
enum { STEP_SETUP, STEP_TMPFS, STEP_MKPOINT, STEP_BIND, STEP_RDONLY, STEP_SEAL, STEP_EXEC };

struct child_ctx {
        const char *exe, *dir;
        char **argv;
        const struct moat_vm_share *s;
        char **points; /* dir/<tag> for each share */
        size_t n;
        int nullfd, logfd, lfd, errfd;
        pid_t parent;
};

/* In the forked child. */
__attribute__((noreturn)) static void child_run(struct child_ctx *c)
{
        struct child_fail f = { .step = STEP_SETUP, .share = -1 };
        int nullfd, logfd = -1, lfd, errfd;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->parent)
                goto fail;
        nullfd = fcntl(c->nullfd, F_DUPFD_CLOEXEC, 10);
        if (c->logfd >= 0)
                logfd = fcntl(c->logfd, F_DUPFD_CLOEXEC, 10);
        lfd = fcntl(c->lfd, F_DUPFD_CLOEXEC, 10);
        errfd = fcntl(c->errfd, F_DUPFD_CLOEXEC, 10);
        if (nullfd < 0 || lfd < 0 || errfd < 0 || (c->logfd >= 0 && logfd < 0))
                goto fail;
        c->errfd = errfd;
        if (dup2(nullfd, 0) < 0 || dup2(nullfd, 1) < 0 || dup2(logfd >= 0 ? logfd : nullfd, 2) < 0 ||
            dup2(lfd, 3) < 0 || dup3(errfd, 4, O_CLOEXEC) < 0)
                goto fail;
        c->errfd = 4;
        if (close_fds_from(5, NULL, 0) < 0)
                goto fail;
        moat_signals_reset();
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        /* everything below happens in this process's own mount namespace: nothing on the host */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                goto fail;
        f.step = STEP_TMPFS;
        if (mount("moat-shares", c->dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") < 0)
                goto fail;
        for (size_t i = 0; i < c->n; i++) {
                const struct moat_vm_share *sh = &c->s[i];
                f.share = (int)i;
                f.step = STEP_MKPOINT;
                if (sh->is_file) {
                        int fd = open(c->points[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
                        if (fd < 0)
                                goto fail;
                        close(fd);
                } else if (mkdir(c->points[i], 0755) < 0)
                        goto fail;
                f.step = STEP_BIND;
                if (mount(sh->source, c->points[i], NULL, MS_BIND | (sh->recursive ? MS_REC : 0), NULL) < 0)
                        goto fail;
                if (sh->read_only) {
                        f.step = STEP_RDONLY;
                        struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
                        if (mount_setattr(AT_FDCWD, c->points[i], sh->recursive ? AT_RECURSIVE : 0, &a, sizeof a) < 0 &&
                            mount(NULL, c->points[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                                goto fail;
                }
        }
        f.share = -1;
        f.step = STEP_SEAL;
        if (mount(NULL, c->dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                goto fail;
        f.step = STEP_EXEC;
        execv(c->exe, c->argv);
fail:
        f.err = errno;
        (void)!write(c->errfd, &f, sizeof f);
        _exit(127);
}

static int listen_at(const char *path, int *out, struct moat_error **err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return moat_error_input(err, -ENAMETOOLONG, "'%s' is too long for a socket path", path);
        strcpy(sa.sun_path, path);
        (void)unlink(path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0)
                return moat_error_set(err, errno, "cannot listen on '%s'", path);
        *out = TAKE_FD(fd);
        return 0;
}

static const char *step_name(int step)
{
        switch (step) {
        case STEP_TMPFS: return "cannot mount the staging tmpfs";
        case STEP_MKPOINT: return "cannot make the staging mount point";
        case STEP_BIND: return "cannot bind-mount it";
        case STEP_RDONLY: return "cannot make it read-only";
        case STEP_SEAL: return "cannot make the staging directory read-only";
        case STEP_EXEC: return "cannot run";
        default: return "cannot set up";
        }
}

int moat_vm_vfsd_start(const char *state_dir, const struct moat_vm_share *s, size_t n, const char *console_log,
                       struct moat_vm_vfsd *d, struct moat_error **err)
{
        _cleanup_strv_ char **argv = NULL, **points = NULL;
        _cleanup_close_ int nullfd = -EBADF, logfd = -EBADF, lfd = -EBADF;
        const char *exe = moat_vm_virtiofsd_path();
        int pipefd[2] = { -EBADF, -EBADF };
        int r;

        *d = (struct moat_vm_vfsd){ .pidfd = -EBADF };
        if (asprintf(&d->dir, "%s/shares", state_dir) < 0 || asprintf(&d->sock, "%s/vfs.sock", state_dir) < 0)
                return -ENOMEM;
        r = moat_vm_vfsd_argv(exe, d->dir, &argv);
        if (r == -EINVAL)
                return moat_error_input(err, r, "'%s': a comma or backslash in the path cannot go to virtiofsd", d->dir);
        if (r < 0)
                return r;
        points = calloc(n + 1, sizeof(char *));
        if (!points)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (asprintf(&points[i], "%s/%s", d->dir, s[i].tag) < 0)
                        return -ENOMEM;
        if (mkdir(d->dir, 0700) < 0 && errno != EEXIST)
                return moat_error_set(err, errno, "cannot make '%s'", d->dir);
        r = listen_at(d->sock, &lfd, err);
        if (r < 0)
                return r;
        nullfd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (nullfd < 0)
                return moat_error_set(err, errno, "cannot open '/dev/null'");
        if (console_log) {
                logfd = open(console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
                if (logfd < 0)
                        return moat_error_set(err, errno, "cannot open '%s'", console_log);
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return moat_error_set(err, errno, "cannot create a pipe");
        struct child_ctx c = { .exe = exe, .dir = d->dir, .argv = argv, .s = s, .points = points, .n = n,
                               .nullfd = nullfd, .logfd = logfd, .lfd = lfd, .errfd = pipefd[1], .parent = getpid() };
        pid_t pid = fork();
        if (pid < 0) {
                r = moat_error_set(err, errno, "cannot fork for '%s'", exe);
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0)
                child_run(&c);
        close(pipefd[1]);
        struct child_fail f;
        ssize_t got;
        do
                got = read(pipefd[0], &f, sizeof f);
        while (got < 0 && errno == EINTR);
        close(pipefd[0]);
        if (got != 0) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                (void)rmdir(d->dir);
                (void)unlink(d->sock);
                if (got != (ssize_t)sizeof f)
                        return moat_error_set(err, EIO, "cannot start '%s'", exe);
                if (f.share >= 0 && (size_t)f.share < n)
                        return moat_error_set(err, f.err, "cannot share '%s' (for '%s') with the VM: %s",
                                              s[f.share].source, s[f.share].target, step_name(f.step));
                return moat_error_set(err, f.err, "virtiofsd '%s': %s", exe, step_name(f.step));
        }
        d->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (d->pidfd < 0) {
                r = -errno;
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return moat_error_set(err, -r, "pidfd_open(%d) for '%s'", (int)pid, exe);
        }
        d->pid = pid;
        moat_debug("vm: started %s as pid %d for %zu share(s)", exe, (int)pid, n);
        return 0;
}

static bool wait_gone(int pidfd, int ms)
{
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r;
        do
                r = poll(&p, 1, ms);
        while (r < 0 && errno == EINTR);
        return r > 0;
}

int moat_vm_vfsd_reap(struct moat_vm_vfsd *d, char *buf, size_t len)
{
        int status = 0;
        pid_t r;

        if (d->pid <= 0)
                return -ECHILD;
        do
                r = waitpid(d->pid, &status, 0);
        while (r < 0 && errno == EINTR);
        if (r != d->pid)
                snprintf(buf, len, "gone");
        else if (WIFSIGNALED(status))
                snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
        else
                snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
        close(d->pidfd);
        d->pid = 0;
        d->pidfd = -EBADF;
        return 0;
}

void moat_vm_vfsd_stop(struct moat_vm_vfsd *d)
{
        if (d->pid > 0) {
                /* normally gone already or going: its client (QEMU) disconnected */
                if (!wait_gone(d->pidfd, STOP_GRACE_MS)) {
                        moat_debug("vm: virtiofsd %d still runs: SIGTERM", (int)d->pid);
                        syscall(SYS_pidfd_send_signal, d->pidfd, SIGTERM, NULL, 0);
                        if (!wait_gone(d->pidfd, 1000))
                                syscall(SYS_pidfd_send_signal, d->pidfd, SIGKILL, NULL, 0);
                }
                while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                close(d->pidfd);
                d->pid = 0;
                d->pidfd = -EBADF;
        }
        if (d->sock)
                (void)unlink(d->sock);
        if (d->dir)
                (void)rmdir(d->dir);
        free(d->sock);
        free(d->dir);
        d->sock = d->dir = NULL;
}
