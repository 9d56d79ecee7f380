/* SPDX-License-Identifier: Apache-2.0 */
/* create and run: the parent side of a new container. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"
#include "linux/hooks.h"
#include "linux/seccomp.h"
#include "linux/terminal.h"
#include "runtime/container.h"
#include "runtime/internal.h"
#include "runtime/spawn.h"
#include "runtime/state.h"
#include "runtime/sync.h"

/* Everything a create owns until it hands the container over. */
struct creation {
        const struct moat_runtime *rt;
        const struct moat_create_opts *o;
        struct moat_spec *spec;
        char *config_text;
        size_t config_len;
        char *bundle;          /* absolute */
        int rootfd, dirfd;
        bool dir_created;
        struct moat_cgroup *cg;
        struct moat_cgroup_hier *hier;
        size_t n_hier;
        int sync[2];
        pid_t child;           /* what we cloned */
        pid_t init;            /* the container's init (== child unless two-stage) */
        int ns_fds[MOAT_NS__COUNT];
        struct moat_seccomp_prog *seccomp;
        int pty_master;
        bool run_mode;
        char *created;         /* RFC 3339, the same in every state.json written */
        struct moat_ns_children saved_ns;
};

static void creation_init(struct creation *c, const struct moat_runtime *rt, const struct moat_create_opts *o)
{
        memset(c, 0, sizeof(*c));
        c->rt = rt;
        c->o = o;
        c->rootfd = c->dirfd = c->pty_master = -EBADF;
        c->sync[0] = c->sync[1] = -EBADF;
        c->saved_ns.pid = c->saved_ns.time = -EBADF;
        for (int i = 0; i < MOAT_NS__COUNT; i++)
                c->ns_fds[i] = -EBADF;
}

/* Undo everything on failure: nothing may be left behind. */
static void creation_abort(struct creation *c)
{
        if (c->init > 0 && c->init != c->child)
                kill(c->init, SIGKILL);
        if (c->child > 0) {
                kill(c->child, SIGKILL);
                while (waitpid(c->child, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        if (c->cg) {
                (void)moat_cgroup_destroy(c->cg, NULL);
        }
        if (c->dir_created)
                (void)moat_state_dir_remove(c->rootfd, c->o->id);
}

static void creation_free(struct creation *c)
{
        moat_ns_children_restore(&c->saved_ns);
        moat_spec_free(c->spec);
        free(c->config_text);
        free(c->bundle);
        free(c->created);
        closep(&c->rootfd);
        closep(&c->dirfd);
        moat_cgroup_hierarchies_free(c->hier, c->n_hier);
        moat_cgroup_free(c->cg);
        closep(&c->sync[0]);
        closep(&c->sync[1]);
        for (int i = 0; i < MOAT_NS__COUNT; i++)
                closep(&c->ns_fds[i]);
        moat_seccomp_prog_free(c->seccomp);
        closep(&c->pty_master);
}

char *moat_hook_state_json(const struct moat_spec *spec, const char *id, const char *status, pid_t pid,
                           const char *bundle)
{
        json_t *ann = json_object();
        for (size_t i = 0; spec && i < spec->n_annotations; i++)
                json_object_set_new(ann, spec->annotations[i].key, json_string(spec->annotations[i].value));
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:o}", "ociVersion", MOAT_OCI_VERSION, "id", id,
                              "status", status, "pid", (int)pid, "bundle", bundle, "annotations", ann);
        if (!o)
                return NULL;
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

int moat_write_pid_file(const char *path, pid_t pid, struct moat_error **err)
{
        _cleanup_free_ char *tmp = NULL;
        char buf[32];
        if (asprintf(&tmp, "%s.moat-tmp", path) < 0)
                return moat_error_set(err, ENOMEM, "pid file");
        int n = snprintf(buf, sizeof(buf), "%d", (int)pid);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot write pid file '%s'", path);
        if (write_all(fd, buf, (size_t)n) < 0 || rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                return moat_error_set(err, e, "cannot write pid file '%s'", path);
        }
        return 0;
}

int moat_wait_status(pid_t pid, int *status)
{
        int ws;
        while (waitpid(pid, &ws, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        return 0;
}

/* As runc: after the spec's device rules, allow mknod of anything (the
 * devices themselves stay denied), the default devices, /dev/pts, ptmx,
 * tun, and every linux.devices entry. */
static int add_default_device_rules(struct moat_spec *s)
{
        static const struct moat_device_rule defaults[] = {
                { true, 'c', -1, -1, "m" }, { true, 'b', -1, -1, "m" },   { true, 'c', 1, 3, "rwm" },
                { true, 'c', 1, 8, "rwm" }, { true, 'c', 1, 7, "rwm" },   { true, 'c', 5, 0, "rwm" },
                { true, 'c', 1, 5, "rwm" }, { true, 'c', 1, 9, "rwm" },   { true, 'c', 136, -1, "rwm" },
                { true, 'c', 5, 2, "rwm" }, { true, 'c', 10, 200, "rwm" },
        };
        struct moat_resources *r = &s->linux_.resources;
        size_t n = r->n_devices + ARRAY_SIZE(defaults) + s->linux_.n_devices;
        struct moat_device_rule *d = realloc(r->devices, n * sizeof(*d));
        if (!d)
                return -ENOMEM;
        r->devices = d;
        memcpy(d + r->n_devices, defaults, sizeof(defaults));
        r->n_devices += ARRAY_SIZE(defaults);
        for (size_t i = 0; i < s->linux_.n_devices; i++) {
                const struct moat_device *dev = &s->linux_.devices[i];
                if (dev->type == 'p')
                        continue;
                d[r->n_devices++] = (struct moat_device_rule){
                        .allow = true, .type = dev->type == 'u' ? 'c' : dev->type,
                        .major = dev->major, .minor = dev->minor, .access = "rwm",
                };
        }
        r->present = true;
        return 0;
}

static int open_namespaces(struct creation *c, struct moat_error **err)
{
        const struct moat_linux *l = &c->spec->linux_;
        for (size_t i = 0; i < l->n_namespaces; i++) {
                const struct moat_namespace *ns = &l->namespaces[i];
                if (!ns->path)
                        continue;
                int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return moat_error_set(err, errno, "cannot open %s namespace '%s'", moat_ns_name(ns->type),
                                              ns->path);
                c->ns_fds[ns->type] = fd;
                int type = ioctl(fd, NS_GET_NSTYPE);
                if (type < 0 || type != moat_ns_clone_flag(ns->type))
                        return moat_error_input(err, EINVAL, "'%s' is not a %s namespace", ns->path,
                                                moat_ns_name(ns->type));
        }
        return 0;
}

static int write_id_map(pid_t pid, const char *file, const struct moat_idmap *m, size_t n, struct moat_error **err)
{
        char buf[4096], path[64];
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
                int w = snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i].container_id, m[i].host_id,
                                 m[i].size);
                if (w < 0 || (size_t)w >= sizeof(buf) - len)
                        return moat_error_input(err, E2BIG, "too many id mappings for %s", file);
                len += (size_t)w;
        }
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
        int r = write_file_at(AT_FDCWD, path, buf, len);
        if (r < 0)
                return moat_error_set(err, r, "cannot write %s of the container", file);
        return 0;
}

/* state.json as far as the creation got: written once the cgroup exists (pid 0),
 * again when the init's pid is known, and at the end (then "creating" goes). */
static int save_state(struct creation *c, struct moat_error **err)
{
        const struct moat_spec *s = c->spec;
        const struct moat_namespace *pidns = moat_spec_ns(s, MOAT_NS_PID);
        struct moat_state state = {
                .id = (char *)c->o->id,
                .pid = c->init,
                .bundle = c->bundle,
                .rootfs = s->root.path,
                .cgroup_path = c->cg ? (char *)moat_cgroup_path(c->cg) : NULL,
                .owner = getuid(),
                .own_pidns = pidns && !pidns->path,
                .exit_status = -1,
        };
        if (!c->created && !(c->created = moat_now_rfc3339()))
                return moat_error_set(err, ENOMEM, "state");
        state.created = c->created;
        if (c->init > 0) {
                int r = moat_pid_start_time(c->init, &state.pid_start);
                if (r < 0)
                        return moat_error_set(err, r, "container init died during setup");
        }
        _cleanup_strv_ char **ann = calloc(2 * s->n_annotations + 1, sizeof(char *));
        if (!ann)
                return moat_error_set(err, ENOMEM, "state");
        for (size_t i = 0; i < s->n_annotations; i++) {
                ann[2 * i] = strdup(s->annotations[i].key);
                ann[2 * i + 1] = strdup(s->annotations[i].value);
                if (!ann[2 * i] || !ann[2 * i + 1])
                        return moat_error_set(err, ENOMEM, "state");
        }
        state.annotations = ann;
        return moat_state_write(c->dirfd, &state, err);
}

/* A send to the init failed: it has most likely died after reporting why.  Prefer its words. */
static int talk_failed(struct creation *c, int r, struct moat_error **err)
{
        struct pollfd p = { .fd = c->sync[0], .events = POLLIN };
        if (c->sync[0] >= 0 && poll(&p, 1, 2000) > 0) {
                struct moat_sync_msg m;
                int fd = -EBADF;
                _cleanup_free_ char *text = NULL;
                if (moat_sync_recv(c->sync[0], &m, &fd, &text) >= 0) {
                        closep(&fd);
                        if (m.type == SYNC_ERROR)
                                return moat_error_input(err, m.value ? m.value : EIO, "%s",
                                                        text ? text : "container init failed");
                }
        }
        return moat_error_set(err, r, "cannot talk to the container init");
}

/* Answers the child until it reports READY. */
static int serve_child(struct creation *c, const char *state_json, struct moat_error **err)
{
        for (;;) {
                struct moat_sync_msg m;
                int fd = -EBADF;
                _cleanup_free_ char *text = NULL;
                int r = moat_sync_recv(c->sync[0], &m, &fd, &text);
                if (r == -ECONNRESET)
                        return moat_error_input(err, ECHILD, "container init exited during setup");
                if (r < 0)
                        return moat_error_set(err, r, "reading from container init");
                switch (m.type) {
                case SYNC_ERROR:
                        closep(&fd);
                        return moat_error_input(err, m.value ? m.value : EIO, "%s",
                                                text ? text : "container init failed");
                case SYNC_HOOKS: {
                        _cleanup_free_ char *st = moat_hook_state_json(c->spec, c->o->id, "created", c->init,
                                                                        c->bundle);
                        r = moat_hooks_run(c->spec, MOAT_HOOK_PRESTART, st, err);
                        if (r >= 0)
                                r = moat_hooks_run(c->spec, MOAT_HOOK_CREATE_RUNTIME, st, err);
                        if (r < 0)
                                return r;
                        r = moat_sync_send(c->sync[0], SYNC_GO, 0, -1, NULL);
                        if (r < 0)
                                return talk_failed(c, r, err);
                        break;
                }
                case SYNC_PTY:
                        if (fd < 0)
                                return moat_error_input(err, EPROTO, "container init sent no terminal");
                        if (c->o->console_socket) {
                                r = moat_console_socket_send(c->o->console_socket, fd, err);
                                close(fd);
                                if (r < 0)
                                        return r;
                        } else {
                                closep(&c->pty_master);
                                c->pty_master = fd;
                        }
                        break;
                case SYNC_SECCOMP_FD: {
                        if (fd < 0)
                                return moat_error_input(err, EPROTO, "container init sent no seccomp fd");
                        const struct moat_seccomp *sc = c->spec->linux_.seccomp;
                        _cleanup_free_ char *ps = moat_seccomp_process_state_json(
                                sc->listener_metadata, c->init, state_json);
                        r = ps ? moat_seccomp_send_listener(sc->listener_path, fd, ps, err)
                               : moat_error_set(err, ENOMEM, "seccomp listener state");
                        close(fd);
                        if (r < 0)
                                return r;
                        break;
                }
                case SYNC_READY:
                        closep(&fd);
                        return 0;
                default:
                        closep(&fd);
                        return moat_error_input(err, EPROTO, "container init sent unexpected message %u", m.type);
                }
                if (r < 0)
                        return moat_error_set(err, r, "talking to container init");
        }
}

static int do_create(struct creation *c, struct moat_error **err)
{
        const struct moat_create_opts *o = c->o;
        int r = moat_id_validate(o->id, err);
        if (r < 0)
                return r;
        const char *bundle = o->bundle && *o->bundle ? o->bundle : ".";
        c->bundle = realpath(bundle, NULL);
        if (!c->bundle)
                return moat_error_set(err, errno, "bundle '%s'", bundle);
        _cleanup_close_ int bfd = open(c->bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bfd < 0)
                return moat_error_set(err, errno, "cannot open bundle '%s'", c->bundle);
        r = read_file_at(bfd, "config.json", &c->config_text, &c->config_len);
        if (r < 0)
                return moat_error_set(err, r, "cannot read '%s/config.json'", c->bundle);
        r = moat_spec_parse(c->config_text, c->config_len, "config.json", &c->spec, err);
        if (r < 0)
                return r;
        struct moat_spec *s = c->spec;
        /* sethostname/setdomainname refuse more than 64 bytes: say so by name, before any work */
        if (s->hostname && strlen(s->hostname) > 64)
                return moat_error_input(err, EINVAL, "config.json: 'hostname': '%.32s...' is longer than 64 bytes",
                                        s->hostname);
        if (s->domainname && strlen(s->domainname) > 64)
                return moat_error_input(err, EINVAL,
                                        "config.json: 'domainname': '%.32s...' is longer than 64 bytes", s->domainname);
        if (!s->process)
                return moat_error_input(err, EINVAL, "config.json: 'process' is required to create a container");
        if (s->root.path[0] != '/') {
                char *abs = NULL;
                if (asprintf(&abs, "%s/%s", c->bundle, s->root.path) < 0)
                        return moat_error_set(err, ENOMEM, "root.path");
                free(s->root.path);
                s->root.path = abs;
        }
        struct stat st;
        if (stat(s->root.path, &st) < 0 || !S_ISDIR(st.st_mode))
                return moat_error_input(err, ENOENT, "config.json: 'root.path': '%s' is not a directory",
                                        s->root.path);
        if (o->console_socket && !s->process->terminal)
                return moat_error_input(err, EINVAL,
                                        "--console-socket '%s' given but 'process.terminal' is false",
                                        o->console_socket);
        if (s->process->terminal && !o->console_socket && (!c->run_mode || o->detach))
                return moat_error_input(err, EINVAL,
                                        "'process.terminal' is true: a detached container needs --console-socket "
                                        "to hand its terminal to");
        if (o->preserve_fds < 0 || o->preserve_fds > 50)
                return moat_error_input(err, EINVAL, "--preserve-fds %d: expected 0 to 50", o->preserve_fds);
        if (s->linux_.seccomp) {
                r = moat_seccomp_build(s->linux_.seccomp, &c->seccomp, err);
                if (r < 0)
                        return r;
        }
        r = open_namespaces(c, err);
        if (r < 0)
                return r;

        c->rootfd = moat_root_open(c->rt->root, true, err);
        if (c->rootfd < 0)
                return c->rootfd;
        r = moat_state_dir_create(c->rootfd, o->id, &c->dirfd, err);
        if (r < 0)
                return r;
        c->dir_created = true;
        /* Until the end, the dir says "creating": a crash from here on is cleaned by delete --force. */
        r = moat_state_mark_creating(c->dirfd, true);
        if (r < 0)
                return moat_error_set(err, r, "cannot write state of '%s'", o->id);
        {
                _cleanup_close_ int cfd = openat(c->dirfd, MOAT_CONFIG_COPY, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                                                 0600);
                if (cfd < 0 || write_all(cfd, c->config_text, c->config_len) < 0)
                        return moat_error_set(err, errno, "cannot save config of '%s'", o->id);
        }
        _cleanup_close_ int fifo = -EBADF;
        if (!c->run_mode) {
                if (mkfifoat(c->dirfd, MOAT_EXEC_FIFO, 0622) < 0)
                        return moat_error_set(err, errno, "cannot create the exec fifo");
                /* umask may have masked the "others may write" bit a non-root user needs */
                if (fchmodat(c->dirfd, MOAT_EXEC_FIFO, 0622, 0) < 0)
                        return moat_error_set(err, errno, "cannot create the exec fifo");
                fifo = openat(c->dirfd, MOAT_EXEC_FIFO, O_PATH | O_CLOEXEC);
                if (fifo < 0)
                        return moat_error_set(err, errno, "cannot open the exec fifo");
        }

        if (add_default_device_rules(s) < 0)
                return moat_error_set(err, ENOMEM, "device rules");
        /* Record the cgroup before it exists: a create killed in between leaves
         * a path that delete --force can clean. */
        r = moat_cgroup_plan(s->linux_.cgroups_path, o->id, &c->cg, err);
        if (r < 0)
                return r;
        r = save_state(c, err);
        if (r < 0)
                return r;
        r = moat_cgroup_realize(c->cg, s->linux_.resources.present ? &s->linux_.resources : NULL, err);
        if (r < 0)
                return r;
        r = moat_cgroup_hierarchies(c->cg, &c->hier, &c->n_hier);
        if (r < 0)
                return moat_error_set(err, r, "cannot list cgroup hierarchies");

        /* Namespaces: which are new, which joined, which the child makes itself. */
        uint64_t new_flags = 0;
        bool new_user = false, new_cgroup = false;
        for (size_t i = 0; i < s->linux_.n_namespaces; i++) {
                const struct moat_namespace *ns = &s->linux_.namespaces[i];
                if (ns->path)
                        continue;
                if (ns->type == MOAT_NS_USER)
                        new_user = true;
                else if (ns->type == MOAT_NS_CGROUP)
                        new_cgroup = true;
                else if (ns->type == MOAT_NS_TIME)
                        ; /* handled below, for children of this process */
                else
                        new_flags |= (uint64_t)moat_ns_clone_flag(ns->type);
        }
        r = moat_ns_children_save(&c->saved_ns);
        if (r < 0)
                return moat_error_set(err, r, "cannot open our own namespaces");
        if (c->ns_fds[MOAT_NS_PID] >= 0 && setns(c->ns_fds[MOAT_NS_PID], CLONE_NEWPID) < 0)
                return moat_error_set(err, errno, "cannot join the pid namespace");
        if (c->ns_fds[MOAT_NS_TIME] >= 0 && setns(c->ns_fds[MOAT_NS_TIME], CLONE_NEWTIME) < 0)
                return moat_error_set(err, errno, "cannot join the time namespace");
        const struct moat_namespace *tns = moat_spec_ns(s, MOAT_NS_TIME);
        if (tns && !tns->path) {
                if (unshare(CLONE_NEWTIME) < 0)
                        return moat_error_set(err, errno, "cannot create the time namespace");
                if (s->linux_.has_time_offsets) {
                        char buf[128];
                        int n = snprintf(buf, sizeof(buf), "monotonic %lld %u\nboottime %lld %u\n",
                                         (long long)s->linux_.time_monotonic.secs, s->linux_.time_monotonic.nanosecs,
                                         (long long)s->linux_.time_boottime.secs, s->linux_.time_boottime.nanosecs);
                        r = write_file_at(AT_FDCWD, "/proc/self/timens_offsets", buf, (size_t)n);
                        if (r < 0)
                                return moat_error_set(err, r, "cannot set 'linux.timeOffsets'");
                }
        }

        r = moat_sync_pair(c->sync);
        if (r < 0)
                return moat_error_set(err, r, "cannot create the sync socket");

        struct init_ctx ic = {
                .spec = s,
                .process = s->process,
                .sync = c->sync[1],
                .fifo_fd = fifo,
                .two_stage = new_user,
                .wait_go = c->run_mode,
                .preserve_fds = o->preserve_fds,
                .no_pivot = o->no_pivot,
                .new_userns = new_user,
                .new_cgroupns = new_cgroup,
                .cg_hier = c->hier,
                .n_cg_hier = c->n_hier,
                .seccomp = c->seccomp,
        };
        memcpy(ic.ns_fds, c->ns_fds, sizeof(ic.ns_fds));
        uint64_t clone_flags;
        if (new_user) {
                clone_flags = 0;
                ic.unshare_flags = new_flags | (new_cgroup ? CLONE_NEWCGROUP : 0);
        } else {
                clone_flags = new_flags;
                ic.unshare_flags = new_cgroup ? CLONE_NEWCGROUP : 0;
        }
        /* v2 (pure, or hybrid's unified dir): born in the cgroup; v1: the
         * child moves itself (moat_cgroup_enter_self), which is cheap. */
        int cgfd = moat_cgroup_clone_fd(c->cg);
        ic.cg = c->cg;
        ic.in_v2 = cgfd >= 0;
        pid_t pid = moat_spawn(clone_flags, cgfd, NULL);
        if (pid == -EOPNOTSUPP && cgfd >= 0) {
                ic.in_v2 = false;
                pid = moat_spawn(clone_flags, -1, NULL);
        }
        if (pid == 0) {
                closep(&c->sync[0]);
                moat_init_child(&ic);
        }
        moat_ns_children_restore(&c->saved_ns);
        if (pid < 0)
                return moat_error_set(err, pid, "cannot create the container process");
        c->child = c->init = pid;
        closep(&c->sync[1]);
        r = save_state(c, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *state_json = moat_hook_state_json(s, o->id, "creating", c->init, c->bundle);
        if (!state_json)
                return moat_error_set(err, ENOMEM, "state");
        if (new_user) {
                r = moat_sync_expect(c->sync[0], SYNC_USERMAP, NULL, NULL, err);
                if (r < 0)
                        return r;
                r = write_id_map(pid, "uid_map", s->linux_.uid_mappings, s->linux_.n_uid_mappings, err);
                if (r >= 0)
                        r = write_id_map(pid, "gid_map", s->linux_.gid_mappings, s->linux_.n_gid_mappings, err);
                if (r < 0)
                        return r;
                r = moat_sync_send(c->sync[0], SYNC_GO, 0, -1, NULL);
                struct moat_sync_msg m;
                if (r >= 0)
                        r = moat_sync_expect(c->sync[0], SYNC_INIT_PID, &m, NULL, err);
                if (r < 0)
                        return r;
                int ws;
                while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
                        ;
                c->child = 0; /* reaped; the init is its orphan now */
                c->init = m.value;
                if (c->init <= 0)
                        return moat_error_input(err, EPROTO, "container init reported pid %d", c->init);
                r = save_state(c, err);
                if (r < 0)
                        return r;
        }
        r = moat_sync_send(c->sync[0], SYNC_GO, 0, -1, state_json);
        if (r < 0)
                return talk_failed(c, r, err);
        r = serve_child(c, state_json, err);
        if (r < 0)
                return r;

        r = save_state(c, err);
        if (r < 0)
                return r;
        r = moat_state_mark_creating(c->dirfd, false);
        if (r < 0)
                return moat_error_set(err, r, "cannot write state of '%s'", o->id);
        if (o->pid_file) {
                r = moat_write_pid_file(o->pid_file, c->init, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int moat_container_create(const struct moat_runtime *rt, const struct moat_create_opts *o, struct moat_error **err)
{
        struct creation c;
        creation_init(&c, rt, o);
        int r = do_create(&c, err);
        if (r < 0) {
                creation_abort(&c);
                moat_error_prefix(err, r, "cannot create container '%s'", o->id ? o->id : "");
        } else if (c.child > 0) {
                /* The init carries on without us; its parent becomes our subreaper. */
        }
        creation_free(&c);
        return r;
}

static volatile sig_atomic_t forwarded_signal;
static void on_signal(int sig)
{
        forwarded_signal = sig;
}

int moat_container_run(const struct moat_runtime *rt, const struct moat_create_opts *o, int *status,
                       struct moat_error **err)
{
        struct creation c;
        creation_init(&c, rt, o);
        c.run_mode = true;
        /* With a user namespace the init is our grandchild: be its reaper. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                return moat_error_set(err, errno, "cannot become a subreaper");
        int r = do_create(&c, err);
        if (r < 0) {
                creation_abort(&c);
                moat_error_prefix(err, r, "cannot run container '%s'", o->id ? o->id : "");
                creation_free(&c);
                return r;
        }
        /* Let state, exec and kill at the container while it runs. */
        closep(&c.dirfd);
        /* Started: it is "running" as soon as GO is sent (no exec fifo in run mode). */
        r = moat_sync_send(c.sync[0], SYNC_GO, 0, -1, NULL);
        closep(&c.sync[0]);
        if (r < 0) {
                moat_error_set(err, r, "cannot start container '%s'", o->id);
                creation_abort(&c);
                creation_free(&c);
                return r;
        }
        if (c.spec->n_hooks[MOAT_HOOK_POSTSTART] > 0) {
                _cleanup_free_ char *st = moat_hook_state_json(c.spec, o->id, "running", c.init, c.bundle);
                r = moat_hooks_run(c.spec, MOAT_HOOK_POSTSTART, st, err);
                if (r < 0) {
                        creation_free(&c);
                        return r; /* runc: the container stays; delete cleans */
                }
        }
        if (o->detach) {
                creation_free(&c);
                *status = 0;
                return 0;
        }
        /* Foreground: forward the usual signals, relay the terminal, wait. */
        struct sigaction sa = { .sa_handler = on_signal };
        int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                sigaction(sigs[i], &sa, NULL);
        int ws = 0;
        if (c.pty_master >= 0) {
                r = moat_pty_relay(c.pty_master, c.init, &ws, err);
                if (r < 0) {
                        creation_free(&c);
                        return r;
                }
        }
        for (; c.pty_master < 0;) {
                pid_t w = waitpid(c.init, &ws, 0);
                if (w == c.init)
                        break;
                if (w < 0 && errno == EINTR) {
                        if (forwarded_signal) {
                                kill(c.init, forwarded_signal);
                                forwarded_signal = 0;
                        }
                        continue;
                }
                r = moat_error_set(err, errno, "waiting for container '%s'", o->id);
                creation_free(&c);
                return r;
        }
        *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        /* runc run removes the container when it ends (unless detached or --keep). */
        c.child = 0;
        c.init = 0;
        closep(&c.dirfd);
        if (!o->keep) {
                struct moat_error *derr = NULL;
                r = moat_container_delete(rt, o->id, true, &derr);
                if (r < 0) {
                        moat_warn("%s", derr ? derr->msg : "cannot delete the container");
                        moat_error_free(derr);
                }
        }
        creation_free(&c);
        return 0;
}
