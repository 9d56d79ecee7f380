/* SPDX-License-Identifier: Apache-2.0 */
/* One spec mount (config.json "mounts"), by type. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"
#include "linux/mounts.h"
#include "linux/rootfs-internal.h"
#include "linux/rootfs.h"

#define MNT_FLAGS                                                                                        \
        (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME | MS_NOATIME | MS_STRICTATIME | MS_RELATIME | \
         MS_NOSYMFOLLOW)

/* What a single mount works with. */
struct mctx {
        int rootfd;
        const struct moat_spec *s;
        const struct moat_mount *m;
        size_t idx;
        const char *type;
        const struct moat_rootfs_opts *o;
        struct moat_error **err;
};

static int merr(const struct mctx *c, int r, const char *why)
{
        if (why)
                return moat_error_input(c->err, r, "mounts[%zu]: mount '%s' on '%s': %s", c->idx, c->type,
                                        c->m->destination, why);
        return moat_error_set(c->err, r, "mounts[%zu]: cannot mount '%s' on '%s'", c->idx, c->type,
                              c->m->destination);
}

bool moat_selinux_enabled(void)
{
        return access("/sys/fs/selinux/enforce", F_OK) == 0;
}

/* m->data plus context="label" when SELinux is on and a mountLabel is given. */
static char *mount_data(const struct moat_spec *s, const char *data)
{
        const char *label = s->linux_.mount_label;
        if (!label || !*label || !moat_selinux_enabled())
                return data ? strdup(data) : NULL;
        char *out = NULL;
        if (asprintf(&out, "%s%scontext=\"%s\"", data ? data : "", data && *data ? "," : "", label) < 0)
                return NULL;
        return out;
}

static bool fd_on_fs(int fd, unsigned long magic)
{
        struct statfs sf;
        return fstatfs(fd, &sf) == 0 && (unsigned long)sf.f_type == magic;
}

/* Lexically cleaned absolute path ("//proc/./x/" -> "/proc/x"); no "..". */
static char *clean_path(const char *p)
{
        char *out = malloc(strlen(p) + 2);
        if (!out)
                return NULL;
        size_t n = 0;
        const char *s = p;
        while (*s) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                const char *e = strchrnul(s, '/');
                size_t len = (size_t)(e - s);
                if (!(len == 1 && s[0] == '.')) {
                        out[n++] = '/';
                        memcpy(out + n, s, len);
                        n += len;
                }
                s = e;
        }
        if (n == 0)
                out[n++] = '/';
        out[n] = '\0';
        return out;
}

/* runc's checkProcMount: only a few binds may land on procfs (lxcfs style). */
static bool proc_bind_allowed(const char *dest)
{
        static const char *const ok[] = { "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
                                          "/proc/swaps",   "/proc/uptime",    "/proc/loadavg", "/proc/slabinfo",
                                          "/proc/net/dev", "/proc/sys/kernel/ns_last_pid" };
        _cleanup_free_ char *c = clean_path(dest);
        if (!c)
                return false;
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
                if (STREQ(c, ok[i]))
                        return true;
        return false;
}

/* The destination as a real directory: the last component must not be a
 * symlink (proc, sysfs).  Intermediate components resolve inside the root. */
static int strict_dir(const struct mctx *c)
{
        _cleanup_free_ char *base = NULL;
        _cleanup_close_ int parent = path_parent_in_root(c->rootfd, c->m->destination, true, &base);
        if (parent < 0)
                return merr(c, parent, NULL);
        struct stat st;
        if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT)
                        return merr(c, -errno, NULL);
                if (mkdirat(parent, base, 0755) < 0 && errno != EEXIST)
                        return merr(c, -errno, NULL);
                if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return merr(c, -errno, NULL);
        }
        if (S_ISLNK(st.st_mode))
                return merr(c, -ELOOP, "destination resolves to a symlink");
        if (!S_ISDIR(st.st_mode))
                return merr(c, -ENOTDIR, "destination is not a directory");
        int fd = openat(parent, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return merr(c, -errno, NULL);
        if (fd_on_fs(fd, PROC_SUPER_MAGIC)) {
                close(fd);
                return merr(c, -EPERM, "destination is inside a proc filesystem");
        }
        return fd;
}

static int target_dir(const struct mctx *c, const char *path)
{
        int fd = path_mkdir_in_root(c->rootfd, path, 0755);
        if (fd < 0)
                return merr(c, fd, NULL);
        if (fd_on_fs(fd, PROC_SUPER_MAGIC)) {
                close(fd);
                return merr(c, -EPERM, "destination is inside a proc filesystem");
        }
        return fd;
}

/* Flags after a bind (or an fs mount done as a bind): plain ones, r* ones, propagation. */
static int apply_attrs(const struct mctx *c, int mfd, bool recursive, unsigned long set, unsigned long clr)
{
        int r = 0;
        if (set || clr)
                r = moat_mnt_setattr(mfd, recursive, set, clr);
        if (r >= 0)
                r = moat_mnt_setattr_raw(mfd, true, c->m->attr_set, c->m->attr_clr);
        if (r >= 0)
                r = moat_mnt_propagation(mfd, c->m->propagation);
        if (r < 0)
                return merr(c, r, NULL);
        return 0;
}

static int fs_mount_at(const struct mctx *c, int target, const char *type, const char *source, unsigned long flags,
                       const char *data, const char *path)
{
        _cleanup_free_ char *d = mount_data(c->s, data);
        struct moat_mnt_target t = { .fd = target, .rootfd = c->rootfd, .path = path };
        int mfd = moat_mnt_fs(type, source, flags, d, &t);
        if (mfd < 0)
                return merr(c, mfd, NULL);
        return mfd;
}

static int bind_at(const struct mctx *c, int srcfd, bool rec, int target, const char *path)
{
        struct moat_mnt_target t = { .fd = target, .rootfd = c->rootfd, .path = path };
        int mfd = moat_mnt_bind(srcfd, rec, &t);
        if (mfd < 0)
                return merr(c, mfd, NULL);
        return mfd;
}

/* idmap / ridmap: the mount's own uid/gid mappings, else the container's. */
static int bind_idmapped(const struct mctx *c, int src, bool rec, int target)
{
        const struct moat_mount *m = c->m;
        const struct moat_linux *l = &c->s->linux_;
        bool own = m->n_uid_mappings || m->n_gid_mappings;
        const struct moat_idmap *u = own ? m->uid_mappings : l->uid_mappings;
        const struct moat_idmap *g = own ? m->gid_mappings : l->gid_mappings;
        size_t nu = own ? m->n_uid_mappings : l->n_uid_mappings;
        size_t ng = own ? m->n_gid_mappings : l->n_gid_mappings;
        if (!nu || !ng)
                return merr(c, -EINVAL, "an idmapped mount needs uidMappings and gidMappings (on the mount or in linux)");
        _cleanup_close_ int userns = moat_userns_fd_from_maps(u, nu, g, ng);
        if (userns < 0)
                return moat_error_set(c->err, userns, "mounts[%zu]: cannot create the user namespace for the idmapped mount on '%s'",
                                      c->idx, m->destination);
        struct moat_mnt_target t = { .fd = target, .rootfd = c->rootfd, .path = m->destination };
        int mfd = moat_mnt_bind_idmap(src, rec, userns, m->ridmap, &t);
        if (mfd == -EOPNOTSUPP)
                return merr(c, mfd, "idmapped mounts need the new mount API (mount_setattr), which is not available");
        if (mfd < 0)
                return merr(c, mfd, NULL);
        return mfd;
}

static int mount_bind(const struct mctx *c)
{
        const struct moat_mount *m = c->m;
        if (!m->source)
                return merr(c, -EINVAL, "a bind mount needs a source");
        _cleanup_close_ int src = open(m->source, O_PATH | O_CLOEXEC);
        if (src < 0)
                return moat_error_set(c->err, errno, "mounts[%zu]: cannot open bind source '%s'", c->idx, m->source);
        struct stat st, tst;
        if (fstat(src, &st) < 0)
                return merr(c, -errno, NULL);
        _cleanup_close_ int target = S_ISDIR(st.st_mode) ? path_mkdir_in_root(c->rootfd, m->destination, 0755)
                                                          : path_mkfile_in_root(c->rootfd, m->destination, 0644);
        if (target == -ENOTDIR && S_ISDIR(st.st_mode))
                return merr(c, target, "source is a directory, destination is not");
        if (target < 0)
                return merr(c, target, NULL);
        if (fstat(target, &tst) < 0)
                return merr(c, -errno, NULL);
        if (S_ISDIR(st.st_mode) != S_ISDIR(tst.st_mode))
                return merr(c, S_ISDIR(st.st_mode) ? -ENOTDIR : -EISDIR,
                            S_ISDIR(st.st_mode) ? "source is a directory, destination is not"
                                                : "source is not a directory, destination is one");
        if (fd_on_fs(target, PROC_SUPER_MAGIC) && !proc_bind_allowed(m->destination))
                return merr(c, -EPERM, "destination is inside a proc filesystem");
        bool rec = (m->flags & MS_REC) != 0;
        _cleanup_close_ int mfd = -EBADF;
        if (m->idmap || m->ridmap) {
                mfd = bind_idmapped(c, src, rec, target);
                if (mfd < 0)
                        return mfd;
        } else {
                mfd = bind_at(c, src, rec, target, m->destination);
                if (mfd < 0)
                        return mfd;
        }
        return apply_attrs(c, mfd, rec, m->flags & MNT_FLAGS, m->clear_flags & MNT_FLAGS);
}

static int mount_typed(const struct mctx *c, unsigned long magic)
{
        const struct moat_mount *m = c->m;
        _cleanup_close_ int target = magic ? strict_dir(c) : target_dir(c, m->destination);
        if (target < 0)
                return target;
        /* tmpcopyup: keep the old directory open, copy after the tmpfs covers it. */
        _cleanup_close_ int old = -EBADF;
        if (m->tmpcopyup) {
                old = openat(target, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (old < 0)
                        return merr(c, -errno, NULL);
        }
        _cleanup_close_ int mfd = fs_mount_at(c, target, c->type, m->source, m->flags & ~(MS_BIND | MS_REC), m->data,
                                              m->destination);
        if (mfd < 0)
                return mfd;
        if (magic && !fd_on_fs(mfd, magic))
                return merr(c, -EXDEV, "the mounted filesystem is not of the expected type");
        if (old >= 0) {
                char where[PATH_MAX] = "";
                int r = moat_rootfs_tmpcopyup(old, mfd, where, sizeof where);
                if (r < 0)
                        return moat_error_set(c->err, r, "mounts[%zu]: tmpcopyup into '%s'%s%s%s", c->idx,
                                              m->destination, where[0] ? ": cannot copy '" : "", where,
                                              where[0] ? "'" : "");
        }
        return apply_attrs(c, mfd, false, 0, 0);
}

static bool new_netns(const struct moat_spec *s)
{
        for (size_t i = 0; i < s->linux_.n_namespaces; i++)
                if (s->linux_.namespaces[i].type == MOAT_NS_NET)
                        return !s->linux_.namespaces[i].path;
        return false;
}

/* In a user namespace without its own network namespace sysfs cannot be
 * mounted: bind the host's /sys (rbind) instead, as runc does. */
static int mount_sysfs(const struct mctx *c)
{
        if (!(c->o && c->o->userns && !new_netns(c->s)))
                return mount_typed(c, SYSFS_MAGIC);
        _cleanup_close_ int target = strict_dir(c);
        if (target < 0)
                return target;
        _cleanup_close_ int src = open("/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (src < 0)
                return merr(c, -errno, NULL);
        _cleanup_close_ int mfd = bind_at(c, src, true, target, c->m->destination);
        if (mfd < 0)
                return mfd;
        return apply_attrs(c, mfd, true, c->m->flags & MNT_FLAGS, 0);
}

/* mqueue cannot be mounted in a user namespace that does not own the IPC
 * namespace: bind the host's /dev/mqueue instead (as crun does). */
static int mount_mqueue(const struct mctx *c)
{
        int r = mount_typed(c, 0);
        if (r != -EPERM || !c->o || !c->o->userns)
                return r;
        moat_error_free(*c->err);
        *c->err = NULL;
        _cleanup_close_ int target = target_dir(c, c->m->destination);
        if (target < 0)
                return target;
        _cleanup_close_ int src = open("/dev/mqueue", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (src < 0)
                return merr(c, -errno, "cannot mount mqueue in this user namespace nor bind the host's /dev/mqueue");
        _cleanup_close_ int mfd = bind_at(c, src, false, target, c->m->destination);
        if (mfd < 0)
                return mfd;
        return apply_attrs(c, mfd, false, c->m->flags & MNT_FLAGS, 0);
}

static int cgroup_one(const struct mctx *c, const struct moat_cgroup_hier *h, int target, const char *path,
                      unsigned long flags)
{
        _cleanup_close_ int mfd = -EBADF;
        if (c->o && c->o->cgroupns) {
                mfd = fs_mount_at(c, target, h->v2 ? "cgroup2" : "cgroup", "cgroup", flags, h->v2 ? NULL : h->options,
                                  path);
                if (mfd < 0)
                        return mfd;
                return apply_attrs(c, mfd, false, 0, 0);
        }
        _cleanup_free_ char *dflt = NULL;
        const char *host = h->host_dir;
        if (!host && asprintf(&dflt, "/sys/fs/cgroup/%s", h->name) >= 0)
                host = dflt;
        if (!host)
                return merr(c, -ENOMEM, NULL);
        _cleanup_close_ int src = open(host, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (src < 0)
                return moat_error_set(c->err, errno, "mounts[%zu]: cannot open cgroup '%s'", c->idx, host);
        mfd = bind_at(c, src, false, target, path);
        if (mfd < 0)
                return mfd;
        return apply_attrs(c, mfd, false, flags, 0);
}

static int mount_cgroup(const struct mctx *c)
{
        const struct moat_mount *m = c->m;
        unsigned long flags = m->flags & MNT_FLAGS;
        bool ro = flags & MS_RDONLY;
        size_t n = c->o ? c->o->n_cg_hier : 0;
        const struct moat_cgroup_hier *hs = c->o ? c->o->cg_hier : NULL;
        if (!hs || n == 0) {
                /* No hierarchies given: the host's /sys/fs/cgroup as it is. */
                _cleanup_close_ int host = open("/sys/fs/cgroup", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (host < 0)
                        return merr(c, -errno, NULL);
                if (fd_on_fs(host, CGROUP2_SUPER_MAGIC)) {
                        struct moat_cgroup_hier h = { .name = (char *)"", .v2 = true, .host_dir = (char *)"/sys/fs/cgroup" };
                        _cleanup_close_ int target = target_dir(c, m->destination);
                        if (target < 0)
                                return target;
                        return cgroup_one(c, &h, target, m->destination, flags);
                }
                _cleanup_close_ int target = target_dir(c, m->destination);
                if (target < 0)
                        return target;
                _cleanup_close_ int mfd = bind_at(c, host, true, target, m->destination);
                if (mfd < 0)
                        return mfd;
                return apply_attrs(c, mfd, true, flags, 0);
        }
        _cleanup_close_ int target = target_dir(c, m->destination);
        if (target < 0)
                return target;
        if (n == 1 && hs[0].v2)
                return cgroup_one(c, &hs[0], target, m->destination, flags);
        /* v1 or hybrid: a tmpfs, one mount per hierarchy, the co-mount symlinks. */
        _cleanup_close_ int tfd = fs_mount_at(c, target, "tmpfs", "tmpfs", flags & ~(unsigned long)MS_RDONLY,
                                              "mode=755", m->destination);
        if (tfd < 0)
                return tfd;
        for (size_t i = 0; i < n; i++) {
                const struct moat_cgroup_hier *h = &hs[i];
                if (!h->name || !*h->name || strchr(h->name, '/') || STREQ(h->name, ".") || STREQ(h->name, ".."))
                        return merr(c, -EINVAL, "bad cgroup hierarchy name");
                _cleanup_free_ char *sub = NULL;
                if (asprintf(&sub, "%s/%s", m->destination, h->name) < 0)
                        return merr(c, -ENOMEM, NULL);
                if (mkdirat(tfd, h->name, 0755) < 0 && errno != EEXIST)
                        return merr(c, -errno, NULL);
                _cleanup_close_ int sfd = openat(tfd, h->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sfd < 0)
                        return merr(c, -errno, NULL);
                int r = cgroup_one(c, h, sfd, sub, flags);
                if (r < 0)
                        return r;
                if (!strchr(h->name, ','))
                        continue;
                _cleanup_free_ char *names = strdup(h->name);
                char *save = NULL;
                for (char *p = names ? strtok_r(names, ",", &save) : NULL; p; p = strtok_r(NULL, ",", &save)) {
                        if (strncmp(p, "name=", 5) == 0)
                                continue;
                        if (symlinkat(h->name, tfd, p) < 0 && errno != EEXIST)
                                return merr(c, -errno, NULL);
                }
        }
        return apply_attrs(c, tfd, false, ro ? MS_RDONLY : 0, 0);
}

int moat_rootfs_mount_one(int rootfd, const struct moat_spec *s, size_t idx, const struct moat_rootfs_opts *o,
                          struct moat_error **err)
{
        const struct moat_mount *m = &s->mounts[idx];
        struct mctx c = { .rootfd = rootfd, .s = s, .m = m, .idx = idx, .o = o, .err = err,
                          .type = m->type ? m->type : (m->bind ? "bind" : "none") };
        if (!m->destination || m->destination[0] != '/')
                return moat_error_input(err, -EINVAL, "mounts[%zu]: destination '%s' is not an absolute path", idx,
                                        m->destination ? m->destination : "");
        bool bind = m->bind || STREQ(c.type, "bind") || STREQ(c.type, "rbind");
        if (m->attr_set & MOUNT_ATTR_IDMAP)
                return merr(&c, -EINVAL, "MOUNT_ATTR_IDMAP in options: use idmap or ridmap");
        if ((m->idmap || m->ridmap) && !bind)
                return merr(&c, -EOPNOTSUPP, "idmapped mounts are supported for bind mounts only, not yet for this type");
        if (bind)
                return mount_bind(&c);
        if (STREQ(c.type, "proc"))
                return mount_typed(&c, PROC_SUPER_MAGIC);
        if (STREQ(c.type, "sysfs"))
                return mount_sysfs(&c);
        if (STREQ(c.type, "mqueue"))
                return mount_mqueue(&c);
        if (STREQ(c.type, "cgroup") || STREQ(c.type, "cgroup2"))
                return mount_cgroup(&c);
        return mount_typed(&c, 0);
}
