/* SPDX-License-Identifier: Apache-2.0 */
#include "linux/rootfs.h"
#include "linux/sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"
#include "linux/devices.h"
#include "linux/mounts.h"

/* pivot_root refuses when the rootfs's parent mount is shared: make the mount
 * holding root.path private (only needed with a shared rootfsPropagation). */
static int parent_mount_private(const char *root)
{
        _cleanup_strv_ char **all = NULL;
        int r = moat_mountinfo_below("/", true, &all);
        if (r < 0)
                return r;
        const char *best = "/";
        size_t blen = 1;
        for (size_t i = 0; all[i]; i++) {
                size_t l = strlen(all[i]);
                if (l > blen && strncmp(root, all[i], l) == 0 && (root[l] == '/' || root[l] == '\0')) {
                        best = all[i];
                        blen = l;
                }
        }
        _cleanup_close_ int fd = open(best, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return moat_mnt_propagation(fd, MS_PRIVATE);
}

static bool dev_is_bind(const struct moat_spec *s)
{
        for (size_t i = 0; i < s->n_mounts; i++) {
                const struct moat_mount *m = &s->mounts[i];
                if (m->destination && m->bind && strcmp(m->destination, "/dev") == 0)
                        return true;
        }
        return false;
}

int moat_rootfs_prepare(const struct moat_spec *s, const struct moat_rootfs_opts *o, struct moat_error **err)
{
        static const struct moat_rootfs_opts none;
        if (!o)
                o = &none;
        if (!s->root.path)
                return moat_error_input(err, -EINVAL, "'root.path' is not set");
        char root[PATH_MAX];
        if (!realpath(s->root.path, root))
                return moat_error_set(err, errno, "cannot resolve root '%s'", s->root.path);
        _cleanup_close_ int hostroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (hostroot < 0)
                return moat_error_set(err, errno, "cannot open '/'");
        unsigned long prop = s->linux_.rootfs_propagation ? s->linux_.rootfs_propagation : (MS_SLAVE | MS_REC);
        int r = moat_mnt_propagation(hostroot, prop);
        if (r < 0)
                return moat_error_set(err, r, "cannot set the propagation of '/'");
        if (prop & MS_SHARED) {
                r = parent_mount_private(root);
                if (r < 0)
                        return moat_error_set(err, r, "cannot make the mount holding '%s' private", root);
        }
        _cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return moat_error_set(err, errno, "cannot open root '%s'", root);
        struct moat_mnt_target t = { .fd = rfd, .rootfd = hostroot, .path = root };
        _cleanup_close_ int rootfd = moat_mnt_bind(rfd, true, &t);
        if (rootfd < 0)
                return moat_error_set(err, rootfd, "cannot bind the root '%s' onto itself", root);
        bool cgroup_called = !o->before_cgroup;
        for (size_t i = 0; i < s->n_mounts; i++) {
                if (!cgroup_called && s->mounts[i].type && strcmp(s->mounts[i].type, "cgroup") == 0) {
                        cgroup_called = true;
                        r = o->before_cgroup(o->before_cgroup_data, err);
                        if (r < 0)
                                return r;
                }
                r = moat_rootfs_mount_one(rootfd, s, i, o, err);
                if (r < 0)
                        return r;
        }
        if (!cgroup_called) {
                r = o->before_cgroup(o->before_cgroup_data, err);
                if (r < 0)
                        return r;
        }
        if (dev_is_bind(s))
                return 0;
        r = moat_devices_default(rootfd, s, o->userns, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->linux_.n_devices; i++) {
                r = moat_device_create(rootfd, &s->linux_.devices[i], o->userns, err);
                if (r < 0)
                        return moat_error_prefix(err, r, "'linux.devices[%zu]'", i);
        }
        return moat_devices_symlinks(rootfd, err);
}

static int do_pivot(const char *root, bool no_pivot, struct moat_error **err)
{
        if (no_pivot) {
                if (chdir(root) < 0)
                        return moat_error_set(err, errno, "cannot enter '%s'", root);
                if (mount(root, "/", NULL, MS_MOVE, NULL) < 0)
                        return moat_error_set(err, errno, "cannot move '%s' to '/'", root);
                if (chroot(".") < 0)
                        return moat_error_set(err, errno, "cannot chroot into '%s'", root);
                if (chdir("/") < 0)
                        return moat_error_set(err, errno, "cannot chdir to '/'");
                return 0;
        }
        _cleanup_close_ int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int newroot = open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (oldroot < 0 || newroot < 0)
                return moat_error_set(err, errno, "cannot open '%s'", root);
        if (fchdir(newroot) < 0)
                return moat_error_set(err, errno, "cannot enter '%s'", root);
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return moat_error_set(err, errno, "pivot_root into '%s'", root);
        if (fchdir(oldroot) < 0)
                return moat_error_set(err, errno, "cannot enter the old root");
        /* Never propagate the unmount to the host. */
        if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
                return moat_error_set(err, errno, "cannot make the old root a slave");
        if (umount2(".", MNT_DETACH) < 0)
                return moat_error_set(err, errno, "cannot detach the old root");
        if (chdir("/") < 0)
                return moat_error_set(err, errno, "cannot chdir to '/'");
        return 0;
}

/* CVE-2025-31133: bind only a /dev/null that really is the null device. */
static int open_dev_null(int rootfd, struct moat_error **err)
{
        _cleanup_close_ int fd = path_open_in_root(rootfd, "/dev/null", O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return moat_error_set(err, fd, "cannot open '/dev/null' to mask paths");
        struct stat st;
        if (fstat(fd, &st) < 0)
                return moat_error_set(err, errno, "cannot stat '/dev/null'");
        if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
                return moat_error_input(err, -EPERM, "refusing to mask paths: '/dev/null' is not the null device (1:3)");
        return TAKE_FD(fd);
}

static int mask_paths(int rootfd, const struct moat_spec *s, struct moat_error **err)
{
        char **paths = s->linux_.masked_paths;
        if (!paths || !paths[0])
                return 0;
        _cleanup_close_ int devnull = -EBADF;
        for (size_t i = 0; paths[i]; i++) {
                _cleanup_close_ int fd = path_open_in_root(rootfd, paths[i], O_PATH | O_NOFOLLOW, 0);
                if (fd == -ENOENT || fd == -ENOTDIR)
                        continue;
                if (fd < 0)
                        return moat_error_set(err, fd, "cannot mask '%s'", paths[i]);
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return moat_error_set(err, errno, "cannot mask '%s'", paths[i]);
                struct moat_mnt_target t = { .fd = fd, .rootfd = rootfd, .path = paths[i] };
                int m;
                if (S_ISLNK(st.st_mode)) {
                        moat_debug("not masking '%s': it is a symlink", paths[i]);
                        continue;
                } else if (S_ISDIR(st.st_mode)) {
                        m = moat_mnt_fs("tmpfs", "tmpfs", MS_RDONLY, NULL, &t);
                } else {
                        if (devnull < 0 && (devnull = open_dev_null(rootfd, err)) < 0)
                                return devnull;
                        m = moat_mnt_bind(devnull, false, &t);
                }
                if (m < 0)
                        return moat_error_set(err, m, "cannot mask '%s'", paths[i]);
                close(m);
        }
        return 0;
}

static int readonly_paths(int rootfd, const struct moat_spec *s, struct moat_error **err)
{
        char **paths = s->linux_.readonly_paths;
        for (size_t i = 0; paths && paths[i]; i++) {
                _cleanup_close_ int fd = path_open_in_root(rootfd, paths[i], O_PATH, 0);
                if (fd == -ENOENT || fd == -ENOTDIR)
                        continue;
                if (fd < 0)
                        return moat_error_set(err, fd, "cannot make '%s' read-only", paths[i]);
                struct moat_mnt_target t = { .fd = fd, .rootfd = rootfd, .path = paths[i] };
                _cleanup_close_ int m = moat_mnt_bind(fd, true, &t);
                if (m < 0)
                        return moat_error_set(err, m, "cannot make '%s' read-only", paths[i]);
                int r = moat_mnt_setattr(m, true, MS_RDONLY, 0);
                if (r < 0)
                        return moat_error_set(err, r, "cannot make '%s' read-only", paths[i]);
        }
        return 0;
}

int moat_rootfs_finish(const struct moat_spec *s, const struct moat_rootfs_opts *o, struct moat_error **err)
{
        char root[PATH_MAX];
        if (!s->root.path || !realpath(s->root.path, root))
                return moat_error_set(err, errno ? errno : EINVAL, "cannot resolve root '%s'",
                                      s->root.path ? s->root.path : "");
        int r = do_pivot(root, o && o->no_pivot, err);
        if (r < 0)
                return r;
        _cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return moat_error_set(err, errno, "cannot open the new '/'");
        /* sysctls go in before /proc/sys turns read-only (a readonlyPath) */
        r = moat_sysctl_apply(s, err);
        if (r < 0)
                return r;
        r = mask_paths(rootfd, s, err);
        if (r < 0)
                return r;
        r = readonly_paths(rootfd, s, err);
        if (r < 0)
                return r;
        if (s->root.readonly) {
                r = moat_mnt_setattr(rootfd, false, MS_RDONLY, 0);
                if (r < 0)
                        return moat_error_set(err, r, "cannot make the root read-only");
        }
        if (s->linux_.rootfs_propagation) {
                r = moat_mnt_propagation(rootfd, s->linux_.rootfs_propagation);
                if (r < 0)
                        return moat_error_set(err, r, "cannot set 'linux.rootfsPropagation'");
        }
        if (chdir("/") < 0)
                return moat_error_set(err, errno, "cannot chdir to '/'");
        return 0;
}
