/* SPDX-License-Identifier: Apache-2.0 */
#include "linux/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/path.h"
#include "linux/mounts.h"
#include "linux/rootfs.h"

/* Whether dirfd is `anc` or lies below it (walking "..", stopping at stop). */
static int fd_is_below(int dirfd, int anc, int stop)
{
        struct stat a, s, st;
        if (fstat(anc, &a) < 0 || fstat(stop, &s) < 0)
                return -errno;
        _cleanup_close_ int cur = openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        for (int depth = 0; depth < 256; depth++) {
                if (fstat(cur, &st) < 0)
                        return -errno;
                if (st.st_dev == a.st_dev && st.st_ino == a.st_ino)
                        return 1;
                if (st.st_dev == s.st_dev && st.st_ino == s.st_ino)
                        return 0;
                int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (up < 0)
                        return -errno;
                struct stat u;
                if (fstat(up, &u) < 0 || (u.st_dev == st.st_dev && u.st_ino == st.st_ino)) {
                        close(up);
                        return 0; /* reached the real root */
                }
                close(cur);
                cur = up;
        }
        return 0;
}

int moat_dev_parent(int rootfd, const char *path, bool mkparents, char **base)
{
        const char *p = path;
        while (*p == '/')
                p++;
        if (strncmp(p, "dev/", 4) != 0)
                return -EXDEV;
        _cleanup_close_ int devfd = path_open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY, 0);
        if (devfd < 0)
                return devfd;
        _cleanup_close_ int parent = path_parent_in_root(rootfd, path, mkparents, base);
        if (parent < 0)
                return parent;
        int r = fd_is_below(parent, devfd, rootfd);
        if (r <= 0) {
                free(*base);
                *base = NULL;
                return r < 0 ? r : -EXDEV;
        }
        return TAKE_FD(parent);
}

static int dev_error(struct moat_error **err, int r, const char *path)
{
        if (r == -EXDEV)
                return moat_error_input(err, r, "device '%s': path resolves outside the container's /dev", path);
        if (r == -ELOOP)
                return moat_error_input(err, r, "device '%s': path is a symlink", path);
        return moat_error_set(err, r, "cannot create device '%s'", path);
}

int moat_device_create(int rootfd, const struct moat_device *d, bool userns, struct moat_error **err)
{
        _cleanup_free_ char *base = NULL;
        _cleanup_close_ int parent = moat_dev_parent(rootfd, d->path, true, &base);
        if (parent < 0)
                return dev_error(err, parent, d->path);
        struct stat st;
        if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISLNK(st.st_mode))
                        return dev_error(err, -ELOOP, d->path);
                if (S_ISDIR(st.st_mode))
                        return moat_error_input(err, -EISDIR, "device '%s': a directory is in the way", d->path);
                if (unlinkat(parent, base, 0) < 0)
                        return dev_error(err, -errno, d->path);
        }
        mode_t perm = d->has_file_mode ? (d->file_mode & 07777) : 0666;
        if (userns) {
                int f = openat(parent, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0000);
                if (f < 0)
                        return dev_error(err, -errno, d->path);
                close(f);
                _cleanup_close_ int target = openat(parent, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_close_ int host = open(d->path, O_PATH | O_CLOEXEC);
                if (target < 0 || host < 0)
                        return moat_error_set(err, errno, "cannot bind device '%s' from the host", d->path);
                struct moat_mnt_target t = { .fd = target, .rootfd = rootfd, .path = d->path };
                int m = moat_mnt_bind(host, false, &t);
                if (m < 0)
                        return moat_error_set(err, m, "cannot bind device '%s' from the host", d->path);
                close(m);
                return 0;
        }
        mode_t type;
        switch (d->type) {
        case 'c':
        case 'u':
                type = S_IFCHR;
                break;
        case 'b':
                type = S_IFBLK;
                break;
        case 'p':
                type = S_IFIFO;
                break;
        default:
                return moat_error_input(err, -EINVAL, "device '%s': unknown type '%c'", d->path, d->type);
        }
        dev_t dev = type == S_IFIFO ? 0 : makedev((unsigned)d->major, (unsigned)d->minor);
        if (mknodat(parent, base, type | perm, dev) < 0)
                return dev_error(err, -errno, d->path);
        /* Just created by us, no container process runs yet: following is not a concern,
         * and fchmodat has no AT_SYMLINK_NOFOLLOW; check anyway. */
        if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || (st.st_mode & S_IFMT) != type)
                return dev_error(err, -EIO, d->path);
        if (fchmodat(parent, base, perm, 0) < 0)
                return dev_error(err, -errno, d->path);
        uid_t uid = d->has_uid ? d->uid : 0;
        gid_t gid = d->has_gid ? d->gid : 0;
        if (fchownat(parent, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return dev_error(err, -errno, d->path);
        return 0;
}

int moat_devices_default(int rootfd, const struct moat_spec *s, bool userns, struct moat_error **err)
{
        static const struct {
                const char *path;
                int major, minor;
        } defs[] = { { "/dev/null", 1, 3 },    { "/dev/zero", 1, 5 },    { "/dev/full", 1, 7 },
                     { "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 } };
        for (size_t i = 0; i < ARRAY_SIZE(defs); i++) {
                bool given = false;
                for (size_t j = 0; j < s->linux_.n_devices; j++)
                        if (STREQ(s->linux_.devices[j].path, defs[i].path))
                                given = true;
                if (given)
                        continue;
                struct moat_device d = { .type = 'c', .path = (char *)defs[i].path, .major = defs[i].major,
                                         .minor = defs[i].minor, .file_mode = 0666, .has_file_mode = true };
                int r = moat_device_create(rootfd, &d, userns, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int moat_devices_symlinks(int rootfd, struct moat_error **err)
{
        _cleanup_close_ int devfd = path_mkdir_in_root(rootfd, "/dev", 0755);
        if (devfd < 0)
                return moat_error_set(err, devfd, "cannot open '/dev' in the rootfs");
        static const struct {
                const char *name, *target;
        } links[] = { { "fd", "/proc/self/fd" },
                      { "stdin", "/proc/self/fd/0" },
                      { "stdout", "/proc/self/fd/1" },
                      { "stderr", "/proc/self/fd/2" },
                      { "core", "/proc/kcore" } };
        for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
                if (STREQ(links[i].name, "core") && access("/proc/kcore", F_OK) < 0)
                        continue;
                if (symlinkat(links[i].target, devfd, links[i].name) < 0 && errno != EEXIST)
                        return moat_error_set(err, errno, "cannot create symlink '/dev/%s'", links[i].name);
        }
        struct stat st;
        if (fstatat(devfd, "ptmx", &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
            unlinkat(devfd, "ptmx", 0) < 0)
                return moat_error_set(err, errno, "cannot remove '/dev/ptmx'");
        if (symlinkat("pts/ptmx", devfd, "ptmx") < 0)
                return moat_error_set(err, errno, "cannot create symlink '/dev/ptmx'");
        return 0;
}

int moat_rootfs_bind_console(int slave_fd, struct moat_error **err)
{
        _cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return moat_error_set(err, errno, "cannot open '/'");
        _cleanup_close_ int devfd = path_open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY, 0);
        if (devfd < 0)
                return moat_error_set(err, devfd, "cannot open '/dev'");
        _cleanup_close_ int cfd = openat(devfd, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0 && errno == ENOENT) {
                int f = openat(devfd, "console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
                if (f < 0)
                        return moat_error_set(err, errno, "cannot create '/dev/console'");
                close(f);
                cfd = openat(devfd, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        }
        if (cfd < 0)
                return moat_error_set(err, errno, "cannot open '/dev/console'");
        struct stat st, dst;
        if (fstat(cfd, &st) < 0 || fstat(devfd, &dst) < 0)
                return moat_error_set(err, errno, "cannot stat '/dev/console'");
        if (S_ISLNK(st.st_mode))
                return moat_error_input(err, -ELOOP, "refusing to bind the console: '/dev/console' is a symlink");
        if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
                return moat_error_input(err, -EINVAL,
                                        "refusing to bind the console: '/dev/console' is not a file or device");
        if (!S_ISCHR(st.st_mode) && st.st_dev != dst.st_dev)
                return moat_error_input(err, -EXDEV,
                                        "refusing to bind the console: '/dev/console' is not on the container's /dev");
        struct moat_mnt_target t = { .fd = cfd, .rootfd = rootfd, .path = "/dev/console" };
        int m = moat_mnt_bind(slave_fd, false, &t);
        if (m < 0)
                return moat_error_set(err, m, "cannot bind the console onto '/dev/console'");
        close(m);
        return 0;
}
