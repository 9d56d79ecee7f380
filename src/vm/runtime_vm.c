/* SPDX-License-Identifier: Apache-2.0 */
/* `moat-runtime create` for the vm tier (vm/vm.h): the state directory as for a container,
 * a monitor process that runs the VM (moat_vm_run) and stands for the container's init, and
 * the exec.fifo handshake for `start`.  The monitor and its QEMU run in the container's cgroup
 * (linux.cgroupsPath, made as for a container: pause, ps, kill --all and delete work on it);
 * with process.terminal the monitor's stdio is a host pty whose master went to --console-socket. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "oci/spec.h"
#include "runtime/container.h"
#include "runtime/state.h"
#include "cgroup/cgroup.h"
#include "linux/terminal.h"
#include "vm/rtface.h"
#include "vm/vm.h"

struct monitor {
        int ready;            /* to `create`: "" once the guest is up, or the error */
        const char *fifo;     /* the state dir's exec.fifo */
};

/* The guest is up: tell `create`, then wait for `start` (it opens exec.fifo for reading). */
static int wait_start(void *userdata)
{
        struct monitor *m = userdata;
        (void)write_all(m->ready, "", 1);
        closep(&m->ready);
        int fifo = open(m->fifo, O_WRONLY | O_CLOEXEC);
        if (fifo < 0)
                return -errno;
        int r = write_all(fifo, "0", 1) < 0 ? -errno : 0;
        close(fifo);
        return r;
}

/* The monitor: in the container's cgroup before anything else (QEMU and every helper it
 * spawns inherit it), on the terminal if there is one, then the VM. */
static _Noreturn void monitor_main(const char *id, const struct moat_spec *spec, const char *state_dir,
                                   struct moat_cgroup *cg, int tty, int ready)
{
        struct moat_error *err = NULL;
        _cleanup_free_ char *fifo = NULL;
        if (asprintf(&fifo, "%s/" MOAT_EXEC_FIFO, state_dir) < 0)
                _exit(125);
        struct monitor m = { .ready = ready, .fifo = fifo };
        int status = 0;
        int r = cg ? moat_cgroup_enter_self(cg, false, &err) : 0;
        if (r >= 0 && tty >= 0) { /* the slave: stdio and controlling terminal (SIGWINCH comes here) */
                r = moat_pty_make_controlling(tty, &err);
                if (tty > 2)
                        close(tty);
        } else if (r >= 0) {
                (void)setsid();
        }
        /* nothing of the caller's (a supervisor's sockets, pipes someone waits on) */
        (void)close_fds_from(3, &ready, 1);
        if (r >= 0) {
                _cleanup_free_ char *init = moat_vm_find_init();
                struct moat_vm_run_opts vo = { .id = id, .spec = spec, .state_dir = state_dir, .init_path = init,
                                               .in = 0, .out = 1, .err = 2, .before_config = wait_start,
                                               .userdata = &m, .all_signals = true, .tty_resize = tty >= 0,
                                               .exec_socket = true };
                r = moat_vm_run(&vo, &status, &err);
        }
        if (r < 0) {
                const char *msg = err && err->msg ? err->msg : strerror(-r);
                if (m.ready >= 0)
                        (void)write_all(m.ready, msg, strlen(msg));
                else
                        fprintf(stderr, "moat: %s\n", msg);
                status = 125;
        }
        moat_error_free(err);
        _exit(status);
}

static int write_pid_file(const char *path, pid_t pid, struct moat_error **err)
{
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d", (int)pid);
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write_all(fd, buf, (size_t)n) < 0 || rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                return moat_error_set(err, e, "cannot write pid file '%s'", path);
        }
        return 0;
}

static char **annotations_of(const struct moat_spec *s)
{
        char **a = calloc(2 * s->n_annotations + 1, sizeof(char *));
        for (size_t i = 0; a && i < s->n_annotations; i++) {
                a[2 * i] = strdup(s->annotations[i].key);
                a[2 * i + 1] = strdup(s->annotations[i].value);
                if (!a[2 * i] || !a[2 * i + 1]) {
                        strv_free(a);
                        return NULL;
                }
        }
        return a;
}

static void spec_freep(struct moat_spec **s)
{
        moat_spec_free(*s);
}

/* state.json: with pid 0 once the cgroup is planned (a create killed after that leaves a
 * record `delete --force` cleans), then with the monitor's pid. */
static int save_state(int dirfd, const char *id, const char *bundle, const struct moat_spec *spec,
                      const struct moat_cgroup *cg, pid_t pid, struct moat_error **err)
{
        _cleanup_free_ char *rootfs = NULL, *created = moat_now_rfc3339();
        _cleanup_strv_ char **ann = annotations_of(spec);
        struct moat_state st = { .id = (char *)id, .pid = pid, .bundle = (char *)bundle,
                                 .cgroup_path = cg ? (char *)moat_cgroup_path(cg) : NULL, .owner = getuid(),
                                 .exit_status = -1 };
        if (!created || !ann || asprintf(&rootfs, "%s/rootfs", bundle) < 0 ||
            (pid > 0 && moat_pid_start_time(pid, &st.pid_start) < 0))
                return moat_error_set(err, ENOMEM, "container '%s'", id);
        st.rootfs = rootfs;
        st.created = created;
        st.annotations = ann;
        return moat_state_write(dirfd, &st, err);
}

/* What the monitor says on the pipe: "" once the VM is up (0), else why not. */
static int wait_ready(int fd, const char *id, struct moat_error **err)
{
        char msg[1024];
        ssize_t n, got = 0;
        while (got < (ssize_t)sizeof msg - 1 && (n = read(fd, msg + got, sizeof msg - 1 - (size_t)got)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        break;
                got += n;
                if (msg[0] == '\0')
                        return 0; /* ready */
        }
        msg[got] = '\0';
        return moat_error_input(err, -EIO, "container '%s': the VM did not come up: %s", id,
                                got ? msg : "its monitor died");
}

/* The config's copy in the state dir, as a container has it: exec's base process and its
 * seccomp profile, the hooks of start and delete. */
static int save_config(int dirfd, const char *bundle)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        if (asprintf(&path, "%s/config.json", bundle) < 0)
                return -ENOMEM;
        int r = read_file_at(AT_FDCWD, path, &text, &len);
        if (r < 0) {
                errno = -r;
                return r;
        }
        _cleanup_close_ int fd = openat(dirfd, MOAT_CONFIG_COPY, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, text, len) < 0)
                return -errno;
        return 0;
}

int moat_vm_create(const struct moat_runtime *rt, const struct moat_create_opts *o, struct moat_error **err)
{
        int r = moat_id_validate(o->id, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *bundle = realpath(o->bundle ? o->bundle : ".", NULL), *state_dir = NULL;
        if (!bundle)
                return moat_error_set(err, errno, "bundle '%s'", o->bundle ? o->bundle : ".");
        _cleanup_(spec_freep) struct moat_spec *spec = NULL;
        r = moat_spec_load_bundle(bundle, &spec, err);
        if (r < 0)
                return r;
        bool terminal = spec->process && spec->process->terminal;
        if (o->console_socket && !terminal)
                return moat_error_input(err, -EINVAL, "--console-socket '%s' given but 'process.terminal' is false",
                                        o->console_socket);
        if (terminal && !o->console_socket)
                return moat_error_input(err, -EINVAL, "'process.terminal' is true: a VM's terminal needs "
                                        "--console-socket");
        _cleanup_close_ int rootfd = moat_root_open(rt->root, true, err);
        if (rootfd < 0)
                return rootfd;
        _cleanup_close_ int dirfd = -EBADF, tty = -EBADF;
        struct moat_cgroup *cg = NULL;
        pid_t pid = 0;
        r = moat_state_dir_create(rootfd, o->id, &dirfd, err);
        if (r < 0)
                return r;
        if (asprintf(&state_dir, "%s/%s", rt->root, o->id) < 0 || mkfifoat(dirfd, MOAT_EXEC_FIFO, 0600) < 0 ||
            moat_state_mark_creating(dirfd, true) < 0 || save_config(dirfd, bundle) < 0) {
                r = moat_error_set(err, errno ? errno : ENOMEM, "container '%s': cannot prepare its state", o->id);
                goto fail;
        }
        /* the container's cgroup, as for a container: the monitor, QEMU and its helpers go in it */
        struct moat_resources res;
        if ((r = moat_cgroup_plan(spec->linux_.cgroups_path, o->id, &cg, err)) < 0 ||
            (r = save_state(dirfd, o->id, bundle, spec, cg, 0, err)) < 0 ||
            (r = moat_cgroup_realize(cg, moat_vm_cgroup_resources(spec, &res), err)) < 0)
                goto fail;
        if (terminal && (r = moat_vm_tty_open(spec, o->console_socket, &tty, err)) < 0)
                goto fail;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = moat_error_set(err, errno, "pipe");
                goto fail;
        }
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                r = moat_error_set(err, errno, "cannot fork the VM's monitor");
                close(p[0]);
                close(p[1]);
                goto fail;
        }
        if (pid == 0) {
                close(p[0]);
                close(dirfd); /* its lock is `create`'s: state, start and kill must get it */
                close(rootfd);
                monitor_main(o->id, spec, state_dir, cg, tty, p[1]);
        }
        close(p[1]);
        closep(&tty);
        r = wait_ready(p[0], o->id, err);
        close(p[0]);
        if (r < 0)
                goto fail;
        r = save_state(dirfd, o->id, bundle, spec, cg, pid, err);
        if (r >= 0 && o->pid_file)
                r = write_pid_file(o->pid_file, pid, err);
        if (r < 0)
                goto fail;
        (void)moat_state_mark_creating(dirfd, false);
        moat_cgroup_free(cg);
        return 0;
fail:
        if (pid > 0) {
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        if (cg) {
                (void)moat_cgroup_destroy(cg, NULL); /* QEMU (PDEATHSIG) and anything else left go first */
                moat_cgroup_free(cg);
        }
        moat_state_dir_remove(rootfd, o->id);
        return r;
}
