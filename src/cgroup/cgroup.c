/* SPDX-License-Identifier: Apache-2.0 */
/* Cgroup lifecycle common to v1, v2 and hybrid hosts; resource writes,
 * freezing and statistics go through cg->ops (v1.c, v2.c).
 *
 * Which directories are touched:
 *  - v1 / hybrid: the container's directory in every mounted v1 hierarchy
 *    (named ones such as name=systemd included), and on hybrid hosts also in
 *    the cgroup2 hierarchy, so the processes are tracked there as runc does.
 *  - v2: the container's directory; cgroup.subtree_control is written only in
 *    directories this call created and in the hierarchy's root, never in an
 *    existing cgroup someone else owns.
 *
 * moat_cgroup_path(): when every hierarchy resolves cgroupsPath to the same
 * path (absolute paths, or a relative one on a host where moat sits at the
 * same place everywhere) it is that path.  Otherwise it lists one
 * "<hierarchy name>:<path>" per line, which moat_cgroup_open() accepts too. */
#include "cgroup/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

static void sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

struct cg_dir *cg_dir_for(struct moat_cgroup *cg, const char *ctrl)
{
        for (size_t i = 0; i < cg->n_dirs; i++)
                if (!cg->dirs[i].h->v2 && strv_contains(cg->dirs[i].h->controllers, ctrl))
                        return cg->dirs[i].fd >= 0 ? &cg->dirs[i] : NULL;
        return NULL;
}

struct cg_dir *cg_dir_v2(struct moat_cgroup *cg)
{
        for (size_t i = 0; i < cg->n_dirs; i++)
                if (cg->dirs[i].h->v2)
                        return cg->dirs[i].fd >= 0 ? &cg->dirs[i] : NULL;
        return NULL;
}

void moat_cgroup_free(struct moat_cgroup *cg)
{
        if (!cg)
                return;
        for (size_t i = 0; i < cg->n_dirs; i++) {
                free(cg->dirs[i].rel);
                free(cg->dirs[i].dir);
                strv_free(cg->dirs[i].created);
                if (cg->dirs[i].fd >= 0)
                        close(cg->dirs[i].fd);
        }
        free(cg->dirs);
        free(cg->path);
        free(cg);
}

static void cg_freep(struct moat_cgroup **cg) { moat_cgroup_free(*cg); }

const char *moat_cgroup_path(const struct moat_cgroup *cg) { return cg->path; }

/* The host directory of `rel` in h, or -EXDEV when rel lies outside the mounted part. */
static int host_dir(const struct cg_hier *h, const char *rel, char **out)
{
        size_t rl = strlen(h->root);
        const char *rest = rel;
        if (!STREQ(h->root, "/")) {
                if (strncmp(rel, h->root, rl) != 0 || (rel[rl] != '/' && rel[rl] != '\0'))
                        return -EXDEV;
                rest = rel + rl;
        }
        if (asprintf(out, "%s%s", h->mount, STREQ(rest, "/") ? "" : rest) < 0)
                return -ENOMEM;
        return 0;
}

/* Which hierarchies a cgroup lives in, given the layout. */
static bool uses_hier(const struct cg_layout *l, const struct cg_hier *h)
{
        if (l->layout == MOAT_CG_V2)
                return h->v2;
        return true; /* v1: every v1 hierarchy; hybrid: those and the unified one */
}

static int cg_alloc(const struct cg_layout *l, struct moat_cgroup **out)
{
        struct moat_cgroup *cg = calloc(1, sizeof(*cg));
        if (!cg)
                return -ENOMEM;
        cg->layout = l;
        cg->ops = l->layout == MOAT_CG_V2 ? &cg_v2_ops : &cg_v1_ops;
        cg->dirs = calloc(l->n ? l->n : 1, sizeof(*cg->dirs));
        if (!cg->dirs) {
                free(cg);
                return -ENOMEM;
        }
        *out = cg;
        return 0;
}

static int add_dir(struct moat_cgroup *cg, const struct cg_hier *h, char *rel, struct moat_error **err)
{
        struct cg_dir *d = &cg->dirs[cg->n_dirs];
        int r;
        if (STREQ(rel, "/")) {
                /* Never the root: destroy/kill_all would sweep the whole host. */
                free(rel);
                return moat_error_input(err, EINVAL, "cgroup path '/' is the root of hierarchy '%s'", h->name);
        }
        r = host_dir(h, rel, &d->dir);
        if (r < 0) {
                r = moat_error_input(err, -r, "cgroup path '%s' lies outside the part of hierarchy '%s' mounted at '%s'",
                                     rel, h->name, h->mount);
                free(rel);
                return r;
        }
        d->h = h;
        d->rel = rel;
        d->fd = -EBADF;
        cg->n_dirs++;
        return 0;
}

/* Builds cg->path from the per-hierarchy paths. */
static int make_path_string(struct moat_cgroup *cg)
{
        bool same = true;
        size_t len = 1;
        for (size_t i = 0; i < cg->n_dirs; i++) {
                same = same && STREQ(cg->dirs[i].rel, cg->dirs[0].rel);
                len += strlen(cg->dirs[i].h->name) + strlen(cg->dirs[i].rel) + 2;
        }
        if (cg->n_dirs == 0)
                return -ENOENT;
        if (same) {
                cg->path = strdup(cg->dirs[0].rel);
                return cg->path ? 0 : -ENOMEM;
        }
        cg->path = calloc(1, len);
        if (!cg->path)
                return -ENOMEM;
        for (size_t i = 0, off = 0; i < cg->n_dirs; i++)
                off += (size_t)sprintf(cg->path + off, "%s%s:%s", i ? "\n" : "", cg->dirs[i].h->name,
                                       cg->dirs[i].rel);
        return 0;
}

static void rmdir_created(struct moat_cgroup *cg)
{
        for (size_t i = cg->n_dirs; i-- > 0;) {
                struct cg_dir *d = &cg->dirs[i];
                if (d->fd >= 0) {
                        close(d->fd);
                        d->fd = -EBADF;
                }
                for (size_t k = strv_length(d->created); k-- > 0;)
                        if (rmdir(d->created[k]) < 0 && errno != ENOENT)
                                moat_debug("cgroup: cannot remove '%s': %m", d->created[k]);
        }
}

/* v1 cpuset: a new cgroup starts with empty cpus/mems; copy the parent's. */
static int cpuset_copy_parent(int parentfd, int childfd, struct moat_error **err)
{
        static const char *const files[][2] = { { "cpuset.cpus", "cpuset.effective_cpus" },
                                                 { "cpuset.mems", "cpuset.effective_mems" } };
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                _cleanup_free_ char *v = NULL;
                int r = cg_read_str(parentfd, files[i][0], &v);
                if (r >= 0 && !*v) {
                        free(v);
                        v = NULL;
                        r = cg_read_str(parentfd, files[i][1], &v);
                }
                if (r < 0)
                        return moat_error_set(err, r, "cannot read the parent's %s", files[i][0]);
                if (!*v)
                        continue;
                r = cg_write(childfd, files[i][0], v, files[i][0], err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* v2: enables every controller the directory offers for its children. */
static void enable_subtree(int dirfd, const char *dir)
{
        _cleanup_free_ char *ctrls = NULL;
        char *save = NULL;
        if (cg_read_str(dirfd, "cgroup.controllers", &ctrls) < 0)
                return;
        for (char *c = strtok_r(ctrls, " ", &save); c; c = strtok_r(NULL, " ", &save)) {
                char buf[64];
                snprintf(buf, sizeof(buf), "+%s", c);
                int r = write_string_at(dirfd, "cgroup.subtree_control", buf);
                if (r < 0)
                        moat_debug("cgroup: cannot enable '%s' in '%s': %s", c, dir, strerror(-r));
        }
}

/* Creates d->dir level by level, recording what it made. */
static int create_dir(struct cg_dir *d, struct moat_error **err)
{
        _cleanup_free_ char *cur = strdup(d->h->mount);
        _cleanup_free_ char *rest = strdup(d->dir + strlen(d->h->mount));
        _cleanup_close_ int parentfd = -EBADF;
        char *save = NULL;
        bool cpuset = !d->h->v2 && strv_contains(d->h->controllers, "cpuset");
        int r;
        if (!cur || !rest)
                return moat_error_set(err, ENOMEM, "creating cgroup");
        parentfd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parentfd < 0)
                return moat_error_set(err, errno, "cannot open cgroup hierarchy '%s'", cur);
        bool parent_ours = true; /* the hierarchy root */
        for (char *c = strtok_r(rest, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                char *next = NULL;
                if (asprintf(&next, "%s/%s", cur, c) < 0)
                        return moat_error_set(err, ENOMEM, "creating cgroup");
                free(cur);
                cur = next;
                if (d->h->v2 && parent_ours)
                        enable_subtree(parentfd, cur);
                bool made = false;
                if (mkdirat(parentfd, c, 0755) == 0) {
                        made = true;
                        if ((r = strv_push(&d->created, cur)) < 0) {
                                rmdir(cur);
                                return moat_error_set(err, r, "creating cgroup");
                        }
                } else if (errno != EEXIST) {
                        return moat_error_set(err, errno, "cannot create cgroup '%s'", cur);
                }
                int fd = openat(parentfd, c, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return moat_error_set(err, errno, "cannot open cgroup '%s'", cur);
                if (made && cpuset && (r = cpuset_copy_parent(parentfd, fd, err)) < 0) {
                        close(fd);
                        return moat_error_prefix(err, r, "cgroup '%s'", cur);
                }
                close(parentfd);
                parentfd = fd;
                parent_ours = made;
        }
        if (!d->created || !STREQ(d->created[strv_length(d->created) - 1], d->dir)) {
                /* The leaf existed: accept it only when nothing runs in it. */
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                r = cg_read_procs_recursive(parentfd, &pids, &n);
                if (r < 0)
                        return moat_error_set(err, r, "cannot read processes of cgroup '%s'", d->dir);
                if (n > 0)
                        return moat_error_input(err, EBUSY, "cgroup '%s' already exists and holds %zu process(es)",
                                                d->dir, n);
        }
        d->fd = TAKE_FD(parentfd);
        return 0;
}

int moat_cgroup_create(const char *path, const char *id, const struct moat_resources *res,
                       struct moat_cgroup **out, struct moat_error **err)
{
        const struct cg_layout *l;
        int r = cg_layout_get(&l, err);
        if (r < 0)
                return r;
        return cg_create_in(l, path, id, res, out, err);
}

static int plan_in(const struct cg_layout *l, const char *path, const char *id, struct moat_cgroup **out,
                   struct moat_error **err)
{
        _cleanup_(cg_freep) struct moat_cgroup *cg = NULL;
        int r;
        if (path && !*path)
                path = NULL;
        if ((r = cg_alloc(l, &cg)) < 0)
                return moat_error_set(err, r, "creating cgroup");
        for (size_t i = 0; i < l->n; i++) {
                char *rel = NULL;
                if (!uses_hier(l, &l->h[i]))
                        continue;
                r = cg_resolve_path(path, id, l->h[i].self, &rel, err);
                if (r < 0)
                        return r;
                if ((r = add_dir(cg, &l->h[i], rel, err)) < 0)
                        return r;
        }
        if ((r = make_path_string(cg)) < 0)
                return moat_error_set(err, r, "creating cgroup");
        *out = TAKE_PTR(cg);
        return 0;
}

int moat_cgroup_plan(const char *path, const char *id, struct moat_cgroup **out, struct moat_error **err)
{
        const struct cg_layout *l;
        int r = cg_layout_get(&l, err);
        if (r < 0)
                return r;
        return plan_in(l, path, id, out, err);
}

int moat_cgroup_realize(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        int r;
        for (size_t i = 0; i < cg->n_dirs; i++) {
                r = create_dir(&cg->dirs[i], err);
                if (r < 0)
                        goto fail;
        }
        if (res && res->present) {
                r = cg->ops->apply(cg, res, false, err);
                if (r < 0)
                        goto fail;
        }
        return 0;
fail:
        rmdir_created(cg);
        return r;
}

int cg_create_in(const struct cg_layout *l, const char *path, const char *id, const struct moat_resources *res,
                 struct moat_cgroup **out, struct moat_error **err)
{
        _cleanup_(cg_freep) struct moat_cgroup *cg = NULL;
        int r = plan_in(l, path, id, &cg, err);
        if (r < 0)
                return r;
        r = moat_cgroup_realize(cg, res, err);
        if (r < 0)
                return r;
        *out = TAKE_PTR(cg);
        return 0;
}

int moat_cgroup_open(const char *path, struct moat_cgroup **out, struct moat_error **err)
{
        const struct cg_layout *l;
        int r = cg_layout_get(&l, err);
        if (r < 0)
                return r;
        return cg_open_in(l, path, out, err);
}

int cg_open_in(const struct cg_layout *l, const char *path, struct moat_cgroup **out, struct moat_error **err)
{
        _cleanup_(cg_freep) struct moat_cgroup *cg = NULL;
        size_t found = 0;
        int r;
        if (!path || !*path)
                return moat_error_input(err, EINVAL, "empty cgroup path");
        if ((r = cg_alloc(l, &cg)) < 0)
                return moat_error_set(err, r, "opening cgroup");
        for (size_t i = 0; i < l->n; i++) {
                const struct cg_hier *h = &l->h[i];
                _cleanup_free_ char *want = NULL;
                char *rel = NULL;
                if (!uses_hier(l, h))
                        continue;
                if (path[0] == '/') {
                        want = strdup(path);
                } else {
                        /* "<name>:<path>" lines */
                        size_t nl = strlen(h->name);
                        for (const char *p = path; p && *p;) {
                                const char *e = strchr(p, '\n');
                                size_t len = e ? (size_t)(e - p) : strlen(p);
                                if (len > nl && strncmp(p, h->name, nl) == 0 && p[nl] == ':') {
                                        want = strndup(p + nl + 1, len - nl - 1);
                                        break;
                                }
                                p = e ? e + 1 : NULL;
                        }
                        if (!want)
                                continue;
                }
                if (!want)
                        return moat_error_set(err, ENOMEM, "opening cgroup");
                r = cg_resolve_path(want, NULL, "/", &rel, err);
                if (r < 0)
                        return r;
                if ((r = add_dir(cg, h, rel, err)) < 0)
                        return r;
                struct cg_dir *d = &cg->dirs[cg->n_dirs - 1];
                d->fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (d->fd >= 0)
                        found++;
        }
        if (found == 0)
                return moat_error_set(err, ENOENT, "cgroup '%s' does not exist", path);
        cg->path = strdup(path);
        if (!cg->path)
                return moat_error_set(err, ENOMEM, "opening cgroup");
        *out = TAKE_PTR(cg);
        return 0;
}

int moat_cgroup_v2_dirfd(const struct moat_cgroup *cg)
{
        if (cg->layout->layout != MOAT_CG_V2)
                return -EOPNOTSUPP;
        for (size_t i = 0; i < cg->n_dirs; i++)
                if (cg->dirs[i].h->v2)
                        return cg->dirs[i].fd >= 0 ? cg->dirs[i].fd : -ENOENT;
        return -EOPNOTSUPP;
}

int moat_cgroup_clone_fd(const struct moat_cgroup *cg)
{
        for (size_t i = 0; i < cg->n_dirs; i++)
                if (cg->dirs[i].h->v2)
                        return cg->dirs[i].fd >= 0 ? cg->dirs[i].fd : -ENOENT;
        return -EOPNOTSUPP;
}

int moat_cgroup_enter_self(const struct moat_cgroup *cg, bool in_v2, struct moat_error **err)
{
        for (size_t i = 0; i < cg->n_dirs; i++) {
                const struct cg_dir *d = &cg->dirs[i];
                if (d->h->v2 && in_v2)
                        continue;
                if (d->fd < 0)
                        return moat_error_set(err, ENOENT, "cannot enter cgroup '%s'", d->dir);
                int r = write_string_at(d->fd, d->h->v2 ? "cgroup.procs" : "tasks", "0");
                if (r < 0)
                        return moat_error_set(err, r, "cannot enter cgroup '%s'", d->dir);
        }
        return 0;
}

int moat_cgroup_add_pid(struct moat_cgroup *cg, pid_t pid, struct moat_error **err)
{
        char buf[32];
        snprintf(buf, sizeof(buf), "%d", (int)pid);
        for (size_t i = 0; i < cg->n_dirs; i++) {
                struct cg_dir *d = &cg->dirs[i];
                if (d->fd < 0)
                        return moat_error_set(err, ENOENT, "cannot add process %d to cgroup '%s'", (int)pid, d->dir);
                int r = write_string_at(d->fd, "cgroup.procs", buf);
                if (r < 0)
                        return moat_error_set(err, r, "cannot add process %d to cgroup '%s'", (int)pid, d->dir);
        }
        return 0;
}

int moat_cgroup_update(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        if (!res)
                return 0;
        return cg->ops->apply(cg, res, true, err);
}

int moat_cgroup_freeze(struct moat_cgroup *cg, bool frozen, struct moat_error **err)
{
        return cg->ops->freeze(cg, frozen, err);
}

int moat_cgroup_is_frozen(struct moat_cgroup *cg, bool *frozen)
{
        return cg->ops->is_frozen(cg, frozen);
}

int moat_cgroup_pids(struct moat_cgroup *cg, pid_t **pids, size_t *n)
{
        int fd = cg->ops->procs_dir(cg);
        if (fd < 0)
                return fd;
        return cg_read_procs_recursive(fd, pids, n);
}

int moat_cgroup_kill_all(struct moat_cgroup *cg, int sig)
{
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int count = 0, r;
        struct cg_dir *v2 = cg_dir_v2(cg);

        r = moat_cgroup_pids(cg, &pids, &n);
        if (r == -ENOENT || r == -ENODEV)
                return 0;
        if (r < 0)
                return r;
        if (n == 0)
                return 0;
        if (sig == SIGKILL && v2 && cg_has_file(v2->fd, "cgroup.kill")) {
                r = write_string_at(v2->fd, "cgroup.kill", "1");
                if (r >= 0 && cg->layout->layout == MOAT_CG_V2)
                        return (int)n;
                if (r >= 0)
                        count = (int)n; /* hybrid: also sweep the v1 view for anything left */
        }
        free(pids);
        pids = NULL;

        bool was_frozen = false;
        if (moat_cgroup_is_frozen(cg, &was_frozen) < 0)
                was_frozen = false;
        bool froze = false;
        if (!was_frozen)
                froze = moat_cgroup_freeze(cg, true, NULL) >= 0;
        r = moat_cgroup_pids(cg, &pids, &n);
        if (r >= 0) {
                int c = 0;
                for (size_t i = 0; i < n; i++)
                        if (kill(pids[i], sig) == 0)
                                c++;
                if (c > count)
                        count = c;
        }
        if (froze || (was_frozen && sig == SIGKILL))
                (void)moat_cgroup_freeze(cg, false, NULL);
        return r < 0 && r != -ENOENT ? r : count;
}

int moat_cgroup_stats(struct moat_cgroup *cg, json_t **out, struct moat_error **err)
{
        json_t *data = json_object();
        if (!data)
                return moat_error_set(err, ENOMEM, "cgroup stats");
        int r = cg->ops->stats(cg, data, err);
        if (r < 0) {
                json_decref(data);
                return r;
        }
        *out = data;
        return 0;
}

int moat_cgroup_oom_kills(struct moat_cgroup *cg, uint64_t *n)
{
        return cg->ops->oom_kills(cg, n);
}

/* rmdir of a cgroup directory and every child cgroup below it, leaf first. */
static int rmdir_tree(int parentfd, const char *name, int depth)
{
        if (depth > 64)
                return -ELOOP;
        int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        struct dirent *de;
        int ret = 0;
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
                        continue;
                int r = rmdir_tree(dirfd(d), de->d_name, depth + 1);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        closedir(d);
        /* A cgroup whose last process just died can stay busy for a moment. */
        for (int tries = 0;; tries++) {
                if (unlinkat(parentfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
                        return ret;
                if (errno != EBUSY || tries >= 200)
                        return -errno;
                sleep_ms(10);
        }
}

static bool under_moat(const char *rel)
{
        return strncmp(rel, "/moat/", 6) == 0 && rel[6] != '\0';
}

int moat_cgroup_destroy(struct moat_cgroup *cg, struct moat_error **err)
{
        int ret = 0;
        /* Kill, then wait (bounded: 10 s) for every process to leave. */
        for (int round = 0; round < 1000; round++) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                if (moat_cgroup_pids(cg, &pids, &n) < 0 || n == 0)
                        break;
                if (round % 100 == 0)
                        (void)moat_cgroup_kill_all(cg, SIGKILL);
                sleep_ms(10);
        }
        for (size_t i = 0; i < cg->n_dirs; i++) {
                struct cg_dir *d = &cg->dirs[i];
                if (d->fd >= 0) {
                        close(d->fd);
                        d->fd = -EBADF;
                }
                _cleanup_free_ char *parent = strdup(d->dir);
                if (!parent)
                        return moat_error_set(err, ENOMEM, "removing cgroup");
                char *slash = strrchr(parent, '/');
                if (!slash || slash == parent || strlen(d->dir) <= strlen(d->h->mount))
                        continue; /* never the hierarchy root */
                *slash = '\0';
                _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (pfd < 0) {
                        if (errno == ENOENT)
                                continue;
                        ret = moat_error_set(err, errno, "cannot open '%s'", parent);
                        continue;
                }
                int r = rmdir_tree(pfd, slash + 1, 0);
                if (r < 0) {
                        ret = moat_error_set(err, r, "cannot remove cgroup '%s'", d->dir);
                        continue;
                }
                /* Parents: those this process created, and empty ones below /moat/. */
                for (size_t k = strv_length(d->created); k-- > 0;)
                        if (!STREQ(d->created[k], d->dir) && rmdir(d->created[k]) < 0 && errno != ENOENT)
                                break;
                _cleanup_free_ char *rel = strdup(d->rel);
                if (!rel)
                        return moat_error_set(err, ENOMEM, "removing cgroup");
                for (;;) {
                        char *s = strrchr(rel, '/');
                        if (!s || s == rel)
                                break;
                        *s = '\0';
                        if (!under_moat(rel))
                                break;
                        _cleanup_free_ char *hd = NULL;
                        if (host_dir(d->h, rel, &hd) < 0 || (rmdir(hd) < 0 && errno != ENOENT))
                                break;
                }
        }
        return ret;
}

int moat_cgroup_hierarchies(const struct moat_cgroup *cg, struct moat_cgroup_hier **out, size_t *n)
{
        struct moat_cgroup_hier *h = calloc(cg->n_dirs ? cg->n_dirs : 1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        for (size_t i = 0; i < cg->n_dirs; i++) {
                const struct cg_dir *d = &cg->dirs[i];
                h[i].v2 = d->h->v2;
                h[i].name = strdup(d->h->v2 && cg->layout->layout == MOAT_CG_V2 ? "" : d->h->name);
                h[i].options = d->h->options ? strdup(d->h->options) : NULL;
                h[i].host_dir = strdup(d->dir);
                h[i].rel_path = strdup(d->rel);
                if (!h[i].name || (d->h->options && !h[i].options) || !h[i].host_dir || !h[i].rel_path) {
                        moat_cgroup_hierarchies_free(h, i + 1);
                        return -ENOMEM;
                }
        }
        *out = h;
        *n = cg->n_dirs;
        return 0;
}

void moat_cgroup_hierarchies_free(struct moat_cgroup_hier *h, size_t n)
{
        if (!h)
                return;
        for (size_t i = 0; i < n; i++) {
                free(h[i].name);
                free(h[i].options);
                free(h[i].host_dir);
                free(h[i].rel_path);
        }
        free(h);
}
