/* SPDX-License-Identifier: Apache-2.0 */
/* exec: a new process inside a running container. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "core/log.h"
#include "core/util.h"
#include "linux/seccomp.h"
#include "linux/terminal.h"
#include "runtime/container.h"
#include "runtime/internal.h"
#include "runtime/spawn.h"
#include "runtime/state.h"
#include "runtime/sync.h"
#include "vm/exec.h"

/* Opens the init's namespaces that differ from ours. */
static int open_init_namespaces(pid_t pid, int fds[MOAT_NS__COUNT], struct moat_error **err)
{
        for (int t = 0; t < MOAT_NS__COUNT; t++) {
                char path[64], self[64];
                snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, moat_ns_proc_name((enum moat_ns_type)t));
                snprintf(self, sizeof(self), "/proc/self/ns/%s", moat_ns_proc_name((enum moat_ns_type)t));
                struct stat a, b;
                if (stat(path, &a) < 0) {
                        if (errno == ENOENT)
                                continue; /* kernel without this namespace */
                        return moat_error_set(err, errno, "cannot inspect the container's %s namespace",
                                              moat_ns_name((enum moat_ns_type)t));
                }
                if (stat(self, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
                        continue;
                fds[t] = open(path, O_RDONLY | O_CLOEXEC);
                if (fds[t] < 0)
                        return moat_error_set(err, errno, "cannot open the container's %s namespace",
                                              moat_ns_name((enum moat_ns_type)t));
        }
        return 0;
}


static int vm_started(pid_t pid, void *userdata, struct moat_error **err)
{
        const char *pid_file = userdata;
        return pid_file ? moat_write_pid_file(pid_file, pid, err) : 0;
}

static int exec_vm(const struct moat_runtime *rt, const struct moat_exec_opts *o, const struct moat_spec *spec,
                   int *status, struct moat_error **err)
{
        _cleanup_free_ char *state_dir = NULL;
        if (asprintf(&state_dir, "%s/%s", rt->root, o->id) < 0)
                return -ENOMEM;
        struct moat_vm_exec_opts vo = { .id = o->id, .state_dir = state_dir, .spec = spec, .process = o->process,
                                        .started = vm_started, .userdata = (void *)o->pid_file, .detach = o->detach,
                                        .in = 0, .out = 1, .err = 2, .console_socket = o->console_socket };
        return moat_vm_exec(&vo, status, err);
}

static int exec_in(const struct moat_runtime *rt, const struct moat_exec_opts *o, int *status,
                   struct moat_error **err)
{
        int ns[MOAT_NS__COUNT];
        for (int i = 0; i < MOAT_NS__COUNT; i++)
                ns[i] = -EBADF;
        _cleanup_close_ int rootfd = -EBADF, dirfd = -EBADF;
        struct moat_state *st = NULL;
        struct moat_spec *spec = NULL;
        struct moat_cgroup *cg = NULL;
        struct moat_seccomp_prog *prog = NULL;
        int sync[2] = { -EBADF, -EBADF };
        pid_t child = 0;
        struct moat_ns_children saved_ns = { -EBADF, -EBADF };
        _cleanup_close_ int master = -EBADF;
        int r;

        r = moat_id_validate(o->id, err);
        if (r < 0)
                goto out;
        rootfd = open(rt->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
                r = moat_error_input(err, ENOENT, "container '%s' does not exist", o->id);
                goto out;
        }
        r = moat_state_dir_open(rootfd, o->id, true, &dirfd, err);
        if (r >= 0)
                r = moat_state_read(dirfd, o->id, &st, err);
        if (r < 0)
                goto out;
        enum moat_status s = moat_state_status(dirfd, st);
        if (st->cgroup_path && (r = moat_cgroup_open(st->cgroup_path, &cg, err)) < 0)
                goto out;
        if (s == MOAT_STATUS_RUNNING && cg) {
                bool frozen = false;
                if (moat_cgroup_is_frozen(cg, &frozen) >= 0 && frozen)
                        s = MOAT_STATUS_PAUSED;
        }
        if (s != MOAT_STATUS_RUNNING && s != MOAT_STATUS_CREATED) {
                r = moat_error_input(err, EINVAL, "cannot exec in container '%s': it is %s", o->id,
                                     moat_status_name(s));
                goto out;
        }
        {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                r = read_file_at(dirfd, MOAT_CONFIG_COPY, &text, &len);
                if (r < 0) {
                        r = moat_error_set(err, r, "cannot read the config of '%s'", o->id);
                        goto out;
                }
                r = moat_spec_parse(text, len, "config.json", &spec, err);
                if (r < 0)
                        goto out;
        }
        if (moat_state_is_vm(st)) { /* the VM's monitor takes it on <state>/exec.sock (vm/exec.h) */
                r = s == MOAT_STATUS_RUNNING ? exec_vm(rt, o, spec, status, err)
                                             : moat_error_input(err, EINVAL, "cannot exec in container '%s': it "
                                                                "is created (start it first)", o->id);
                goto out;
        }
        if (spec->linux_.seccomp) {
                r = moat_seccomp_build(spec->linux_.seccomp, &prog, err);
                if (r < 0)
                        goto out;
        }
        r = open_init_namespaces(st->pid, ns, err);
        if (r < 0)
                goto out;
        /* The init must still be the same process now that we hold its namespaces. */
        {
                _cleanup_close_ int pidfd = moat_state_pidfd(st);
                if (pidfd < 0) {
                        r = moat_error_input(err, ESRCH, "container '%s' is not running", o->id);
                        goto out;
                }
        }
        r = moat_ns_children_save(&saved_ns);
        if (r < 0) {
                r = moat_error_set(err, r, "cannot open our own namespaces");
                goto out;
        }
        if (ns[MOAT_NS_PID] >= 0 && setns(ns[MOAT_NS_PID], CLONE_NEWPID) < 0) {
                r = moat_error_set(err, errno, "cannot join the pid namespace of '%s'", o->id);
                goto out;
        }
        closep(&ns[MOAT_NS_PID]);
        if (ns[MOAT_NS_TIME] >= 0 && setns(ns[MOAT_NS_TIME], CLONE_NEWTIME) < 0) {
                r = moat_error_set(err, errno, "cannot join the time namespace of '%s'", o->id);
                goto out;
        }
        closep(&ns[MOAT_NS_TIME]);
        r = moat_sync_pair(sync);
        if (r < 0) {
                r = moat_error_set(err, r, "sync socket");
                goto out;
        }
        struct init_ctx ic = {
                .spec = spec,
                .process = o->process,
                .sync = sync[1],
                .fifo_fd = -EBADF,
                .exec = true,
                .wait_go = true,
                .preserve_fds = o->preserve_fds,
                .seccomp = prog,
        };
        memcpy(ic.ns_fds, ns, sizeof(ns));
        int cgfd = cg ? moat_cgroup_clone_fd(cg) : -1;
        ic.cg = cg;
        ic.in_v2 = cgfd >= 0;
        child = moat_spawn(0, cgfd, NULL);
        if (child == -EOPNOTSUPP && cgfd >= 0) {
                ic.in_v2 = false;
                child = moat_spawn(0, -1, NULL);
        }
        if (child == 0) {
                closep(&sync[0]);
                moat_init_child(&ic);
        }
        moat_ns_children_restore(&saved_ns);
        if (child < 0) {
                r = moat_error_set(err, child, "cannot create the process");
                child = 0;
                goto out;
        }
        closep(&sync[1]);
        r = moat_sync_send(sync[0], SYNC_GO, 0, -1, NULL);
        if (r < 0) {
                r = moat_error_set(err, r, "cannot talk to the new process");
                goto out;
        }
        for (;;) {
                struct moat_sync_msg m;
                int fd = -EBADF;
                _cleanup_free_ char *text = NULL;
                r = moat_sync_recv(sync[0], &m, &fd, &text);
                if (r < 0) {
                        r = r == -ECONNRESET ? moat_error_input(err, ECHILD, "the process exited during setup")
                                             : moat_error_set(err, r, "reading from the new process");
                        goto out;
                }
                if (m.type == SYNC_PTY && fd >= 0) {
                        if (o->console_socket) {
                                r = moat_console_socket_send(o->console_socket, fd, err);
                                close(fd);
                                if (r < 0)
                                        goto out;
                        } else {
                                closep(&master);
                                master = fd;
                        }
                        continue;
                }
                closep(&fd);
                if (m.type == SYNC_READY)
                        break;
                r = moat_error_input(err, m.value > 0 ? m.value : EPROTO, "%s",
                                     m.type == SYNC_ERROR && text ? text : "unexpected message from the new process");
                goto out;
        }
        if (o->pid_file) {
                r = moat_write_pid_file(o->pid_file, child, err);
                if (r < 0)
                        goto out;
        }
        r = moat_sync_send(sync[0], SYNC_GO, 0, -1, NULL);
        if (r < 0) {
                r = moat_error_set(err, r, "cannot start the process");
                goto out;
        }
        pid_t started = child;
        child = 0; /* handed over: never killed by our cleanup from here */
        if (o->detach) {
                *status = 0;
                r = 0;
                goto out;
        }
        if (master >= 0) {
                int ws = 0;
                r = moat_pty_relay(master, started, &ws, err);
                if (r >= 0)
                        *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        } else {
                r = moat_wait_status(started, status);
                if (r < 0)
                        r = moat_error_set(err, r, "waiting for the process");
        }
out:
        moat_ns_children_restore(&saved_ns);
        if (child > 0) {
                kill(child, SIGKILL);
                while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        for (int i = 0; i < MOAT_NS__COUNT; i++)
                closep(&ns[i]);
        closep(&sync[0]);
        closep(&sync[1]);
        moat_seccomp_prog_free(prog);
        moat_cgroup_free(cg);
        moat_spec_free(spec);
        moat_state_free(st);
        return r;
}

int moat_container_exec(const struct moat_runtime *rt, const struct moat_exec_opts *o, int *status,
                        struct moat_error **err)
{
        int r = exec_in(rt, o, status, err);
        if (r < 0)
                moat_error_prefix(err, r, "exec in container '%s'", o->id ? o->id : "");
        return r;
}
