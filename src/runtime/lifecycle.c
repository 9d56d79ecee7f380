/* SPDX-License-Identifier: Apache-2.0 */
/* start, state, kill, delete, list, ps, pause/resume, update, stats. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "core/log.h"
#include "core/util.h"
#include "linux/hooks.h"
#include "runtime/container.h"
#include "runtime/internal.h"
#include "runtime/state.h"
#include "vm/rtface.h"

/* One container opened for a verb: its locked state dir and state. */
struct opened {
        int rootfd, dirfd;
        struct moat_state *st;
        struct moat_cgroup *cg;
        bool busy;             /* a create is still at work on it: read without the lock */
};

static void opened_close(struct opened *o)
{
        closep(&o->dirfd);
        closep(&o->rootfd);
        moat_state_free(o->st);
        moat_cgroup_free(o->cg);
        memset(o, 0, sizeof(*o));
        o->rootfd = o->dirfd = -EBADF;
}

/* The common start of every verb: a valid id and the state root. */
static int open_root(const struct moat_runtime *rt, const char *id, struct opened *o, struct moat_error **err)
{
        memset(o, 0, sizeof(*o));
        o->rootfd = o->dirfd = -EBADF;
        int r = moat_id_validate(id, err);
        if (r < 0)
                return r;
        o->rootfd = open(rt->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (o->rootfd < 0) {
                if (errno == ENOENT)
                        return moat_error_input(err, ENOENT, "container '%s' does not exist", id);
                return moat_error_set(err, errno, "cannot open state root '%s'", rt->root);
        }
        return 0;
}

static int open_container(const struct moat_runtime *rt, const char *id, bool shared, bool want_cgroup,
                          struct opened *o, struct moat_error **err)
{
        int r = open_root(rt, id, o, err);
        if (r < 0)
                return r;
        r = moat_state_dir_open(o->rootfd, id, shared, &o->dirfd, err);
        if (r < 0)
                return r;
        r = moat_state_read(o->dirfd, id, &o->st, err);
        if (r < 0)
                return r;
        if (want_cgroup && o->st->cgroup_path) {
                r = moat_cgroup_open(o->st->cgroup_path, &o->cg, err);
                if (r == -ENOENT) /* recorded, never made (or already gone) */
                        moat_error_freep(err);
                else if (r < 0)
                        return r;
        }
        return 0;
}

/* For state and list: never wait behind a create that holds the lock (a
 * createRuntime hook may take long); such a container is "creating". */
static int open_container_nowait(const struct moat_runtime *rt, const char *id, struct opened *o,
                                 struct moat_error **err)
{
        int r = open_root(rt, id, o, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = openat(o->rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return moat_error_input(err, ENOENT, "container '%s' does not exist", id);
                return moat_error_set(err, errno, "cannot open state of container '%s'", id);
        }
        if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK && moat_state_is_creating(fd)) {
                o->busy = true;
                o->dirfd = TAKE_FD(fd);
                r = moat_state_read(o->dirfd, id, &o->st, err);
                if (r < 0)
                        return r;
                if (o->st->cgroup_path)
                        (void)moat_cgroup_open(o->st->cgroup_path, &o->cg, NULL);
                return 0;
        }
        closep(&fd);
        closep(&o->rootfd);
        return open_container(rt, id, true, true, o, err);
}

static enum moat_status status_of(struct opened *o)
{
        if (o->busy)
                return MOAT_STATUS_CREATING;
        enum moat_status s = moat_state_status(o->dirfd, o->st);
        if (s == MOAT_STATUS_RUNNING && o->cg) {
                bool frozen = false;
                if (moat_cgroup_is_frozen(o->cg, &frozen) >= 0 && frozen)
                        s = MOAT_STATUS_PAUSED;
        }
        return s;
}

static int load_config(int dirfd, const char *id, struct moat_spec **spec, struct moat_error **err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_at(dirfd, MOAT_CONFIG_COPY, &text, &len);
        if (r < 0)
                return moat_error_set(err, r, "cannot read the config of container '%s'", id);
        return moat_spec_parse(text, len, "config.json", spec, err);
}

int moat_container_start(const struct moat_runtime *rt, const char *id, struct moat_error **err)
{
        struct opened o;
        _cleanup_close_ int pidfd = -EBADF, fifo = -EBADF;
        int r = open_container(rt, id, false, false, &o, err);
        if (r < 0)
                goto out;
        enum moat_status s = status_of(&o);
        if (s != MOAT_STATUS_CREATED) {
                r = moat_error_input(err, EINVAL, "cannot start container '%s': it is %s, not created", id,
                                     moat_status_name(s));
                goto out;
        }
        pidfd = moat_state_pidfd(o.st);
        fifo = openat(o.dirfd, MOAT_EXEC_FIFO, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fifo < 0 || pidfd < 0) {
                r = moat_error_set(err, fifo < 0 ? errno : ESRCH, "cannot start container '%s'", id);
                goto out;
        }
        /* The init is blocked opening the fifo for writing; our open released it.
         * It runs the startContainer hooks, writes one byte and execs; its
         * end is close-on-exec, so the byte and then EOF mean "the process
         * runs".  EOF without the byte, or its death first, is a failure. */
        struct pollfd p[2] = { { .fd = fifo, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
        bool got_byte = false;
        for (;;) {
                int n = poll(p, 2, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = moat_error_set(err, errno, "starting container '%s'", id);
                        goto out;
                }
                if (p[0].revents & (POLLIN | POLLHUP)) {
                        char byte;
                        ssize_t got = read(fifo, &byte, 1);
                        if (got == 1) {
                                got_byte = true;
                                continue;
                        }
                        if (got == 0) /* the writer is gone: exec'd, or died */
                                break;
                        if (got < 0 && errno != EAGAIN && errno != EINTR) {
                                r = moat_error_set(err, errno, "starting container '%s'", id);
                                goto out;
                        }
                }
                if (p[1].revents) /* the init ended (a quick process, or a failure) */
                        break;
        }
        if (!got_byte) {
                r = moat_error_input(err, ECHILD, "cannot start container '%s': its init exited before its process "
                                     "started (a failing startContainer hook?)", id);
                goto out;
        }
        (void)unlinkat(o.dirfd, MOAT_EXEC_FIFO, 0);
        struct moat_spec *spec = NULL;
        if (load_config(o.dirfd, id, &spec, NULL) >= 0 && spec->n_hooks[MOAT_HOOK_POSTSTART] > 0) {
                _cleanup_free_ char *st = moat_hook_state_json(spec, id, "running", o.st->pid, o.st->bundle);
                r = moat_hooks_run(spec, MOAT_HOOK_POSTSTART, st, err);
        }
        moat_spec_free(spec);
out:
        opened_close(&o);
        return r;
}

static json_t *state_json(struct opened *o, enum moat_status s)
{
        json_t *ann = json_object();
        for (size_t i = 0; o->st->annotations[i] && o->st->annotations[i + 1]; i += 2)
                json_object_set_new(ann, o->st->annotations[i], json_string(o->st->annotations[i + 1]));
        struct passwd *pw = getpwuid(o->st->owner);
        json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:o}", "ociVersion", MOAT_OCI_VERSION, "id",
                              o->st->id, "pid", s == MOAT_STATUS_STOPPED ? 0 : (int)o->st->pid, "status",
                              moat_status_name(s), "bundle", o->st->bundle, "rootfs", o->st->rootfs, "created",
                              o->st->created, "owner", pw ? pw->pw_name : "", "annotations", ann);
        return j;
}

int moat_container_state(const struct moat_runtime *rt, const char *id, json_t **out, struct moat_error **err)
{
        struct opened o;
        int r = open_container_nowait(rt, id, &o, err);
        if (r >= 0) {
                *out = state_json(&o, status_of(&o));
                if (!*out)
                        r = moat_error_set(err, ENOMEM, "state");
        }
        opened_close(&o);
        return r;
}

static int signal_init(const struct moat_state *st, int sig)
{
        _cleanup_close_ int pidfd = moat_state_pidfd(st);
        if (pidfd < 0)
                return pidfd;
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
}

int moat_container_kill(const struct moat_runtime *rt, const char *id, int sig, bool all, struct moat_error **err)
{
        struct opened o;
        int r = open_container(rt, id, true, all, &o, err);
        if (r < 0)
                goto out;
        /* Without --all the cgroup is only needed to see a pause: optional. */
        if (!o.cg && o.st->cgroup_path && moat_cgroup_open(o.st->cgroup_path, &o.cg, NULL) < 0)
                o.cg = NULL;
        enum moat_status s = status_of(&o);
        if (all && o.cg) {
                r = moat_cgroup_kill_all(o.cg, sig);
                if (r < 0)
                        r = moat_error_set(err, r, "cannot signal the processes of container '%s'", id);
                else
                        r = 0;
                goto out;
        }
        if (s == MOAT_STATUS_STOPPED) {
                r = moat_error_input(err, ESRCH, "container '%s' is not running", id);
                goto out;
        }
        r = signal_init(o.st, sig);
        if (r < 0)
                r = moat_error_set(err, r, "cannot signal container '%s'", id);
        /* A frozen (v1) task dies only once thawed: SIGKILL of a paused
         * container thaws it, as runc does. */
        else if (sig == SIGKILL && s == MOAT_STATUS_PAUSED && o.cg)
                (void)moat_cgroup_freeze(o.cg, false, NULL);
out:
        opened_close(&o);
        return r;
}

/* Waits (bounded) for a killed init to go. */
static void wait_gone(const struct moat_state *st, int timeout_ms)
{
        _cleanup_close_ int pidfd = moat_state_pidfd(st);
        if (pidfd < 0)
                return;
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR)
                ;
        /* If we are its parent (run), reap it; otherwise its reaper will. */
        (void)waitpid(st->pid, NULL, WNOHANG);
}

int moat_container_delete(const struct moat_runtime *rt, const char *id, bool force, struct moat_error **err)
{
        struct opened o;
        int r = open_container(rt, id, false, true, &o, err);
        if (r < 0) {
                /* A creation that died half-way leaves a dir without state: delete --force cleans it. */
                if (r == -ENOENT && o.dirfd >= 0 && force) {
                        moat_error_freep(err);
                        r = moat_state_dir_remove(o.rootfd, id);
                } else if (r == -ENOENT && force && o.dirfd < 0) {
                        moat_error_freep(err);
                        r = 0; /* runc: delete --force of a missing container succeeds */
                }
                goto out;
        }
        enum moat_status s = status_of(&o);
        if (s == MOAT_STATUS_RUNNING || s == MOAT_STATUS_PAUSED || s == MOAT_STATUS_CREATING) {
                if (!force) {
                        r = moat_error_input(err, EBUSY, "cannot delete container '%s' that is %s (stop it, or use --force)",
                                             id, moat_status_name(s));
                        goto out;
                }
        }
        if (s != MOAT_STATUS_STOPPED) {
                /* a half-made container: whatever the create left in its cgroup goes too */
                if (o.cg && (o.st->own_pidns == false || s == MOAT_STATUS_PAUSED || s == MOAT_STATUS_CREATING))
                        (void)moat_cgroup_kill_all(o.cg, SIGKILL);
                (void)signal_init(o.st, SIGKILL);
                if (s == MOAT_STATUS_PAUSED && o.cg)
                        (void)moat_cgroup_freeze(o.cg, false, NULL);
                wait_gone(o.st, 5000);
        }
        if (o.cg) {
                r = moat_cgroup_destroy(o.cg, err);
                if (r < 0)
                        goto out;
        }
        struct moat_spec *spec = NULL;
        if (load_config(o.dirfd, id, &spec, NULL) >= 0 && spec->n_hooks[MOAT_HOOK_POSTSTOP] > 0) {
                _cleanup_free_ char *st = moat_hook_state_json(spec, id, "stopped", 0, o.st->bundle);
                (void)moat_hooks_run(spec, MOAT_HOOK_POSTSTOP, st, NULL);
        }
        moat_spec_free(spec);
        r = moat_state_dir_remove(o.rootfd, id);
        if (r < 0)
                r = moat_error_set(err, r, "cannot remove the state of container '%s'", id);
out:
        opened_close(&o);
        return r;
}

int moat_container_list(const struct moat_runtime *rt, json_t **out, struct moat_error **err)
{
        json_t *arr = json_array();
        if (!arr)
                return moat_error_set(err, ENOMEM, "list");
        DIR *d = opendir(rt->root);
        if (!d) {
                if (errno == ENOENT) {
                        *out = arr;
                        return 0;
                }
                json_decref(arr);
                return moat_error_set(err, errno, "cannot read state root '%s'", rt->root);
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                struct opened o;
                if (open_container_nowait(rt, de->d_name, &o, NULL) >= 0) {
                        json_t *j = state_json(&o, status_of(&o));
                        if (j)
                                json_array_append_new(arr, j);
                }
                opened_close(&o);
        }
        closedir(d);
        *out = arr;
        return 0;
}

int moat_container_pids(const struct moat_runtime *rt, const char *id, pid_t **pids, size_t *n,
                        struct moat_error **err)
{
        struct opened o;
        int r = open_container(rt, id, true, true, &o, err);
        if (r >= 0) {
                if (!o.cg) {
                        *pids = NULL;
                        *n = 0;
                        if (status_of(&o) != MOAT_STATUS_STOPPED) {
                                *pids = malloc(sizeof(pid_t));
                                if (*pids) {
                                        (*pids)[0] = o.st->pid;
                                        *n = 1;
                                }
                        }
                } else {
                        r = moat_cgroup_pids(o.cg, pids, n);
                        if (r < 0)
                                r = moat_error_set(err, r, "cannot list the processes of '%s'", id);
                }
        }
        opened_close(&o);
        return r;
}

int moat_container_pause(const struct moat_runtime *rt, const char *id, bool pause, struct moat_error **err)
{
        struct opened o;
        int r = open_container(rt, id, false, true, &o, err);
        if (r < 0)
                goto out;
        enum moat_status s = status_of(&o);
        enum moat_status want = pause ? MOAT_STATUS_RUNNING : MOAT_STATUS_PAUSED;
        if (s != want) {
                r = moat_error_input(err, EINVAL, "cannot %s container '%s': it is %s", pause ? "pause" : "resume",
                                     id, moat_status_name(s));
                goto out;
        }
        if (!o.cg) {
                r = moat_error_input(err, EOPNOTSUPP, "container '%s' has no cgroup to freeze", id);
                goto out;
        }
        r = moat_cgroup_freeze(o.cg, pause, err);
out:
        opened_close(&o);
        return r;
}

/* A VM's cgroup holds its monitor and QEMU (vm/rtface.h): its memory limit is the guest's RAM,
 * fixed at boot, plus QEMU's allowance, so a new one is refused rather than set under QEMU's
 * feet; a pids limit counts QEMU's threads (raised to MOAT_VM_MIN_PIDS); cpu and blkio apply. */
static int update_vm(struct moat_cgroup *cg, const char *id, const struct moat_resources *res,
                     struct moat_error **err)
{
        if (res->memory.has_limit || res->memory.has_reservation || res->memory.has_swap)
                return moat_error_input(err, -EOPNOTSUPP, "container '%s' runs in a VM: its memory is the guest's "
                                        "RAM, fixed when it booted (update changes its cpu, pids and blkio)", id);
        struct moat_resources r = *res;
        if (r.pids.has_limit && r.pids.limit > 0 && r.pids.limit < MOAT_VM_MIN_PIDS)
                r.pids.limit = MOAT_VM_MIN_PIDS;
        return moat_cgroup_update(cg, &r, err);
}

int moat_container_update(const struct moat_runtime *rt, const char *id, const struct moat_resources *res,
                          struct moat_error **err)
{
        struct opened o;
        int r = open_container(rt, id, false, true, &o, err);
        if (r >= 0) {
                if (status_of(&o) == MOAT_STATUS_STOPPED)
                        r = moat_error_input(err, EINVAL, "container '%s' is stopped", id);
                else if (!o.cg)
                        r = moat_error_input(err, EOPNOTSUPP, "container '%s' has no cgroup", id);
                else if (moat_state_is_vm(o.st))
                        r = update_vm(o.cg, id, res, err);
                else
                        r = moat_cgroup_update(o.cg, res, err);
        }
        opened_close(&o);
        return r;
}

int moat_container_stats(const struct moat_runtime *rt, const char *id, json_t **out, struct moat_error **err)
{
        struct opened o;
        int r = open_container(rt, id, true, true, &o, err);
        if (r >= 0) {
                if (status_of(&o) == MOAT_STATUS_STOPPED || !o.cg) {
                        r = moat_error_input(err, ESRCH, "container '%s' is not running", id);
                } else {
                        json_t *data = NULL;
                        r = moat_cgroup_stats(o.cg, &data, err);
                        if (r >= 0)
                                *out = json_pack("{s:s, s:s, s:o}", "type", "stats", "id", id, "data", data);
                }
        }
        opened_close(&o);
        return r;
}

int moat_container_oom_count(const struct moat_runtime *rt, const char *id, uint64_t *n, bool *alive,
                             struct moat_error **err)
{
        struct opened o;
        int r = open_container(rt, id, true, true, &o, err);
        if (r >= 0) {
                *alive = status_of(&o) != MOAT_STATUS_STOPPED;
                *n = 0;
                if (o.cg)
                        (void)moat_cgroup_oom_kills(o.cg, n);
        }
        opened_close(&o);
        return r;
}

int moat_container_process(const struct moat_runtime *rt, const char *id, struct moat_process **out,
                           struct moat_error **err)
{
        struct opened o;
        int r = open_container(rt, id, true, false, &o, err);
        if (r >= 0) {
                struct moat_spec *spec = NULL;
                r = load_config(o.dirfd, id, &spec, err);
                if (r >= 0) {
                        *out = TAKE_PTR(spec->process);
                        if (!*out)
                                r = moat_error_input(err, EINVAL, "container '%s' has no process", id);
                }
                moat_spec_free(spec);
        }
        opened_close(&o);
        return r;
}
