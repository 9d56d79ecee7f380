/* SPDX-License-Identifier: Apache-2.0 */
/* The child side: everything between clone3 and execve of the user's process,
 * for a new container's init and for `exec`. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"
#include "linux/caps.h"
#include "linux/hooks.h"
#include "linux/procattr.h"
#include "linux/rootfs.h"
#include "linux/seccomp.h"
#include "linux/sysctl.h" /* moat_set_hostname */
#include "linux/terminal.h"
#include "runtime/internal.h"
#include "runtime/spawn.h"
#include "runtime/sync.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_Noreturn static void fail(struct init_ctx *c, struct moat_error *e, int errnum, const char *what)
{
        if (e) {
                moat_sync_send_error(c->sync, e, errnum, what);
        } else {
                char buf[512];
                snprintf(buf, sizeof(buf), "%s: %s", what, strerror(errnum < 0 ? -errnum : errnum));
                moat_sync_send_error(c->sync, NULL, errnum, buf);
        }
        _exit(1);
}

static void expect_go(struct init_ctx *c, char **text)
{
        struct moat_sync_msg m;
        int r = moat_sync_recv(c->sync, &m, NULL, text);
        if (r < 0 || m.type != SYNC_GO)
                _exit(1); /* the runtime went away or gave up: nothing to report to */
}

int moat_find_executable(const char *file, char *const *env, char **out)
{
        if (!file || !*file)
                return -ENOENT;
        if (strchr(file, '/')) {
                /* As runc: a missing program fails `create`, not a later `start`. */
                struct stat st;
                if (stat(file, &st) < 0)
                        return -errno;
                if (!S_ISREG(st.st_mode))
                        return -EACCES;
                if (access(file, X_OK) < 0)
                        return -errno;
                *out = strdup(file);
                return *out ? 0 : -ENOMEM;
        }
        const char *path = NULL;
        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], "PATH=", 5) == 0)
                        path = env[i] + 5;
        if (!path)
                path = DEFAULT_PATH;
        int last = -ENOENT;
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                char cand[PATH_MAX];
                if (snprintf(cand, sizeof(cand), "%s/%s", *dir ? dir : ".", file) >= (int)sizeof(cand))
                        continue;
                struct stat st;
                if (stat(cand, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (access(cand, X_OK) < 0) {
                        last = -EACCES;
                        continue;
                }
                *out = strdup(cand);
                return *out ? 0 : -ENOMEM;
        }
        return last;
}

static int join_namespaces(struct init_ctx *c, bool user_first, struct moat_error **err)
{
        /* user first (it grants the rights for the rest), mount last but one... order
         * as runc: user, ipc, uts, net, pid(for children, done by the parent), mnt, cgroup. */
        static const enum moat_ns_type order[] = { MOAT_NS_USER, MOAT_NS_IPC, MOAT_NS_UTS, MOAT_NS_NET,
                                                   MOAT_NS_MNT, MOAT_NS_CGROUP };
        for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
                enum moat_ns_type t = order[i];
                if (t == MOAT_NS_USER && !user_first)
                        continue;
                if (c->ns_fds[t] < 0)
                        continue;
                if (setns(c->ns_fds[t], moat_ns_clone_flag(t)) < 0)
                        return moat_error_set(err, errno, "cannot join the %s namespace", moat_ns_name(t));
                closep(&c->ns_fds[t]);
        }
        return 0;
}

/* The last fds: stdio, --preserve-fds, and our own (all O_CLOEXEC). */
static int close_other_fds(struct init_ctx *c, int extra)
{
        int keep[64];
        size_t n = 0;
        for (int i = 0; i < c->preserve_fds && n < 60; i++)
                keep[n++] = 3 + i;
        keep[n++] = c->sync;
        if (c->fifo_fd >= 0)
                keep[n++] = c->fifo_fd;
        if (extra >= 0)
                keep[n++] = extra;
        int r = close_fds_from(3, keep, n);
        /* Preserved fds must survive execve. */
        for (int i = 0; r >= 0 && i < c->preserve_fds; i++)
                (void)fd_cloexec(3 + i, false);
        return r;
}

static int setup_terminal(struct init_ctx *c, struct moat_error **err)
{
        _cleanup_close_ int master = -EBADF, slave = -EBADF;
        _cleanup_free_ char *name = NULL;
        int r = moat_pty_open(&master, &slave, &name, err);
        if (r < 0)
                return r;
        if (c->process->has_console_size) {
                r = moat_pty_set_size(master, c->process->console_height, c->process->console_width, err);
                if (r < 0)
                        return r;
        }
        if (!c->exec) {
                r = moat_rootfs_bind_console(slave, err);
                if (r < 0)
                        return r;
        }
        r = moat_sync_send(c->sync, SYNC_PTY, 0, master, NULL);
        if (r < 0)
                return moat_error_set(err, r, "cannot pass the terminal to the runtime");
        return moat_pty_make_controlling(slave, err);
}

/* A new network namespace gets its loopback up, as runc does. */
static int loopback_up(const struct moat_spec *spec, struct moat_error **err)
{
        const struct moat_namespace *ns = moat_spec_ns(spec, MOAT_NS_NET);
        if (!ns || ns->path)
                return 0;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot bring up 'lo': socket");
        struct ifreq ifr = { 0 };
        strcpy(ifr.ifr_name, "lo");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return moat_error_set(err, errno, "cannot bring up 'lo'");
        if (ifr.ifr_flags & IFF_UP)
                return 0;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                return moat_error_set(err, errno, "cannot bring up 'lo'");
        return 0;
}

/* As runc: a missing cwd of the container's init is created (inside the new
 * root, still as root), so images whose WORKDIR does not exist yet work. */
static int make_cwd(const char *cwd, struct moat_error **err)
{
        if (!cwd || !*cwd || strcmp(cwd, "/") == 0)
                return 0;
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return moat_error_set(err, errno, "cannot open '/'");
        int fd = path_mkdir_in_root(root, cwd, 0755);
        if (fd < 0)
                return moat_error_set(err, fd, "cannot create the working directory '%s'", cwd);
        close(fd);
        return 0;
}

static int check_cwd(const char *cwd, struct moat_error **err)
{
        const char *dir = cwd && *cwd ? cwd : "/";
        if (chdir(dir) < 0)
                return moat_error_set(err, errno, "cannot change to the working directory '%s'", dir);
        /* CVE-2024-21626: a cwd reached through a leaked fd lies outside the root;
         * getcwd() then fails or answers "(unreachable)/...". */
        char buf[PATH_MAX];
        if (!getcwd(buf, sizeof(buf)) || buf[0] != '/')
                return moat_error_input(err, EPERM, "working directory '%s' is outside the container's root", dir);
        return 0;
}

static void init_process(struct init_ctx *c, const char *state_json)
{
        struct moat_error *e = NULL;
        const struct moat_process *p = c->process;
        int r;

        r = close_other_fds(c, -1);
        if (r < 0)
                fail(c, NULL, r, "cannot close inherited file descriptors");
        if (p->terminal) {
                r = setup_terminal(c, &e);
                if (r < 0)
                        fail(c, e, r, "terminal");
        }
        r = c->exec ? 0 : make_cwd(p->cwd, &e);
        if (r >= 0)
                r = check_cwd(p->cwd, &e);
        if (r < 0)
                fail(c, e, r, "cwd");
        _cleanup_free_ char *exe = NULL;
        r = moat_find_executable(p->args ? p->args[0] : NULL, p->env, &exe);
        if (r < 0) {
                const char *a0 = p->args && p->args[0] ? p->args[0] : "";
                if (strchr(a0, '/'))
                        moat_error_set(&e, r, "'process.args[0]' '%s' cannot be run in the container", a0);
                else
                        moat_error_set(&e, r, "'process.args[0]' '%s' is not in the container's PATH", a0);
                fail(c, e, r, "exec");
        }
        r = moat_rlimits_apply(p, &e);
        if (r >= 0)
                r = moat_procattr_apply(p, &e);
        if (r >= 0 && c->spec->linux_.has_personality)
                r = moat_personality_apply(c->spec->linux_.personality, &e);
        if (r < 0)
                fail(c, e, r, "process attributes");

        int notify_fd = -EBADF;
        r = moat_process_finalize(p, c->seccomp, &notify_fd, &e);
        if (r < 0)
                fail(c, e, r, "credentials");
        if (notify_fd >= 0) {
                r = moat_sync_send(c->sync, SYNC_SECCOMP_FD, 0, notify_fd, NULL);
                close(notify_fd);
                if (r < 0)
                        fail(c, NULL, r, "cannot pass the seccomp listener to the runtime");
        }
        /* From here on the runtime may end (create, run -d, exec -d) and we must live on. */
        (void)prctl(PR_SET_PDEATHSIG, 0);
        r = moat_sync_send(c->sync, SYNC_READY, 0, -1, NULL);
        if (r < 0)
                _exit(1);
        /* `start` opens the fifo for reading, which lets our open return.  We
         * then run the startContainer hooks, write one byte, and execve: the
         * write end is O_CLOEXEC, so `start` reads the byte and then EOF once
         * the user's process runs (runtime-spec: startContainer hooks, the
         * process, then poststart hooks). */
        int fifo = -EBADF;
        if (c->wait_go) {
                expect_go(c, NULL);
        } else {
                char path[32];
                fifo = open(fd_path(c->fifo_fd, path), O_WRONLY | O_CLOEXEC);
                if (fifo < 0)
                        _exit(1);
                closep(&c->fifo_fd);
        }
        closep(&c->sync);
        if (!c->exec && c->spec->n_hooks[MOAT_HOOK_START_CONTAINER] > 0) {
                r = moat_hooks_run(c->spec, MOAT_HOOK_START_CONTAINER, state_json, &e);
                if (r < 0) {
                        fprintf(stderr, "moat: %s\n", e ? e->msg : "startContainer hook failed");
                        _exit(1);
                }
        }
        umask(p->has_umask ? p->umask : 022);
        /* signals as in a new process: what the runtime's caller blocked or ignored (a
         * supervisor blocks TERM for its signalfd) is not the container's */
        moat_signals_reset();
        if (fifo >= 0 && write_all(fifo, "0", 1) < 0)
                _exit(1);
        execve(exe, p->args, p->env ? p->env : (char *[]){ NULL });
        int saved = errno;
        fprintf(stderr, "moat: cannot exec '%s': %s\n", exe, strerror(saved));
        _exit(saved == ENOENT ? 127 : 126);
}

/* Waits until the runtime has put us into the container's cgroup, then
 * enters a new cgroup namespace rooted there if one was asked for. */
static int cgroup_ready(void *data, struct moat_error **err)
{
        struct init_ctx *c = data;
        if (c->cg) {
                int r = moat_cgroup_enter_self(c->cg, c->in_v2, err);
                if (r < 0)
                        return r;
        }
        if (c->unshare_flags && unshare((int)c->unshare_flags) < 0)
                return moat_error_set(err, errno, "cannot create the cgroup namespace");
        return 0;
}

_Noreturn void moat_init_child(struct init_ctx *c)
{
        struct moat_error *e = NULL;
        _cleanup_free_ char *state_json = NULL;
        int r;

        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);

        if (c->exec) {
                expect_go(c, NULL);
                if (c->cg && (r = moat_cgroup_enter_self(c->cg, c->in_v2, &e)) < 0)
                        fail(c, e, r, "cgroup");
                r = join_namespaces(c, true, &e);
                if (r < 0)
                        fail(c, e, r, "setns");
                init_process(c, NULL);
        }

        if (c->two_stage) {
                if (c->cg && (r = moat_cgroup_enter_self(c->cg, c->in_v2, &e)) < 0)
                        fail(c, e, r, "cgroup");
                r = join_namespaces(c, true, &e);
                if (r < 0)
                        fail(c, e, r, "setns");
                if (unshare(CLONE_NEWUSER) < 0)
                        fail(c, NULL, errno, "cannot create the user namespace");
                if (moat_sync_send(c->sync, SYNC_USERMAP, 0, -1, NULL) < 0)
                        _exit(1);
                expect_go(c, NULL);
                (void)setresgid(0, 0, 0);
                (void)setresuid(0, 0, 0);
                if (unshare((int)c->unshare_flags) < 0)
                        fail(c, NULL, errno, "cannot create the namespaces");
                pid_t pid = moat_spawn(0, -1, NULL);
                if (pid < 0)
                        fail(c, NULL, pid, "cannot fork the container init");
                if (pid > 0) {
                        (void)moat_sync_send(c->sync, SYNC_INIT_PID, pid, -1, NULL);
                        _exit(0);
                }
                expect_go(c, &state_json);
        } else {
                /* We move ourselves into the cgroup right before the first
                 * cgroup mount (see cgroup_ready). */
                expect_go(c, &state_json);
                r = join_namespaces(c, true, &e);
                if (r < 0)
                        fail(c, e, r, "setns");
        }

        r = moat_set_hostname(c->spec, &e);
        if (r < 0)
                fail(c, e, r, "hostname");
        r = loopback_up(c->spec, &e);
        if (r < 0)
                fail(c, e, r, "network");
        struct moat_rootfs_opts ro = {
                .before_cgroup = c->two_stage ? NULL : cgroup_ready,
                .before_cgroup_data = c,
                .no_pivot = c->no_pivot,
                .userns = c->new_userns,
                .cgroupns = c->new_cgroupns,
                .cg_hier = c->cg_hier,
                .n_cg_hier = c->n_cg_hier,
        };
        r = moat_rootfs_prepare(c->spec, &ro, &e);
        if (r < 0)
                fail(c, e, r, "rootfs");
        if (c->spec->n_hooks[MOAT_HOOK_PRESTART] + c->spec->n_hooks[MOAT_HOOK_CREATE_RUNTIME] > 0) {
                if (moat_sync_send(c->sync, SYNC_HOOKS, 0, -1, NULL) < 0)
                        _exit(1);
                expect_go(c, NULL);
        }
        if (c->spec->n_hooks[MOAT_HOOK_CREATE_CONTAINER] > 0) {
                r = moat_hooks_run(c->spec, MOAT_HOOK_CREATE_CONTAINER, state_json, &e);
                if (r < 0)
                        fail(c, e, r, "createContainer hook");
        }
        r = moat_rootfs_finish(c->spec, &ro, &e);
        if (r < 0)
                fail(c, e, r, "rootfs");
        init_process(c, state_json);
        _exit(1);
}
