/* SPDX-License-Identifier: Apache-2.0 */
/* `moat-runtime create` for the vm tier (vm/vm.h): the state directory as for a container,
 * a monitor process that runs the VM (moat_vm_run) and stands for the container's init, and
 * the exec.fifo handshake for `start`. */
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

static _Noreturn void monitor_main(const char *id, const char *bundle, const char *state_dir, int ready)
{
        struct moat_error *err = NULL;
        struct moat_spec *spec = NULL;
        _cleanup_free_ char *fifo = NULL;
        if (asprintf(&fifo, "%s/" MOAT_EXEC_FIFO, state_dir) < 0)
                _exit(125);
        struct monitor m = { .ready = ready, .fifo = fifo };
        int status = 0;
        int r = moat_spec_load_bundle(bundle, &spec, &err);
        if (r >= 0 && spec->process && spec->process->terminal)
                r = moat_error_input(&err, -EOPNOTSUPP, "'process.terminal': a terminal is not available for VMs "
                                     "through moat-runtime yet (moat run --isolation vm -t is)");
        if (r >= 0) {
                _cleanup_free_ char *init = moat_vm_find_init();
                struct moat_vm_run_opts vo = { .id = id, .spec = spec, .state_dir = state_dir, .init_path = init,
                                               .in = 0, .out = 1, .err = 2, .before_config = wait_start,
                                               .userdata = &m, .all_signals = true, .exec_socket = true };
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
        moat_spec_free(spec);
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

static int annotations_of(const char *bundle, char ***out)
{
        struct moat_spec *s = NULL;
        struct moat_error *e = NULL;
        if (moat_spec_load_bundle(bundle, &s, &e) < 0) {
                moat_error_free(e);
                return -EINVAL;
        }
        char **a = calloc(2 * s->n_annotations + 1, sizeof(char *));
        for (size_t i = 0; a && i < s->n_annotations; i++) {
                a[2 * i] = strdup(s->annotations[i].key);
                a[2 * i + 1] = strdup(s->annotations[i].value);
        }
        moat_spec_free(s);
        *out = a;
        return a ? 0 : -ENOMEM;
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
        if (o->console_socket)
                return moat_error_input(err, -EOPNOTSUPP, "container '%s': --console-socket (a terminal) is not "
                                        "available for VMs yet", o->id);
        _cleanup_free_ char *bundle = realpath(o->bundle ? o->bundle : ".", NULL), *state_dir = NULL, *rootfs = NULL,
                            *created = NULL;
        _cleanup_strv_ char **ann = NULL;
        if (!bundle)
                return moat_error_set(err, errno, "bundle '%s'", o->bundle ? o->bundle : ".");
        _cleanup_close_ int rootfd = moat_root_open(rt->root, true, err);
        if (rootfd < 0)
                return rootfd;
        _cleanup_close_ int dirfd = -EBADF;
        r = moat_state_dir_create(rootfd, o->id, &dirfd, err);
        if (r < 0)
                return r;
        if (asprintf(&state_dir, "%s/%s", rt->root, o->id) < 0 || mkfifoat(dirfd, MOAT_EXEC_FIFO, 0600) < 0 ||
            moat_state_mark_creating(dirfd, true) < 0 || save_config(dirfd, bundle) < 0) {
                r = moat_error_set(err, errno ? errno : ENOMEM, "container '%s': cannot prepare its state", o->id);
                goto fail;
        }
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = moat_error_set(err, errno, "pipe");
                goto fail;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
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
                (void)setsid();
                monitor_main(o->id, bundle, state_dir, p[1]);
        }
        close(p[1]);
        char msg[1024];
        ssize_t n, got = 0;
        while (got < (ssize_t)sizeof msg - 1 && (n = read(p[0], msg + got, sizeof msg - 1 - (size_t)got)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        break;
                got += n;
                if (msg[0] == '\0')
                        break; /* ready */
        }
        close(p[0]);
        msg[got] = '\0';
        if (got == 0 || msg[0] != '\0') {
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                r = moat_error_input(err, -EIO, "container '%s': the VM did not come up: %s", o->id,
                                     got ? msg : "its monitor died");
                goto fail;
        }
        struct moat_state st = { .id = (char *)o->id, .pid = pid, .bundle = bundle, .owner = getuid(),
                                 .exit_status = -1 };
        created = moat_now_rfc3339();
        if (!created || asprintf(&rootfs, "%s/rootfs", bundle) < 0 || annotations_of(bundle, &ann) < 0 ||
            moat_pid_start_time(pid, &st.pid_start) < 0) {
                r = moat_error_set(err, ENOMEM, "container '%s'", o->id);
                goto kill_fail;
        }
        st.rootfs = rootfs;
        st.created = created;
        st.annotations = ann;
        r = moat_state_write(dirfd, &st, err);
        if (r >= 0 && o->pid_file)
                r = write_pid_file(o->pid_file, pid, err);
        if (r < 0)
                goto kill_fail;
        (void)moat_state_mark_creating(dirfd, false);
        return 0;
kill_fail:
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
fail:
        moat_state_dir_remove(rootfd, o->id);
        return r;
}
