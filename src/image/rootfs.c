/* SPDX-License-Identifier: Apache-2.0 */
/* The root of a container made from an image: an overlayfs of the layers (new mount
 * API: fsopen + "lowerdir+" per layer, or the "lowerdir=a:b:c" string on kernels
 * before 6.8) with upper/ and work/ under the container dir, mounted on dir/rootfs.
 * Without overlayfs, a copy of the layers in order with the whiteouts applied. */
#include "image/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/copytree.h"
#include "core/log.h"
#include "core/util.h"
#include "image/rootfs-internal.h"

static bool force_copy, force_lowerdir_string;

void moat_rootfs_force_copy(bool on)
{
        force_copy = on;
}

void moat_rootfs_force_lowerdir_string(bool on)
{
        force_lowerdir_string = on;
}

/* ---------------------------------------------------------------- overlay */

/* The kernel's own words about a failed fsconfig, if it left any. */
static void fs_log(int fsfd, char *buf, size_t size)
{
        buf[0] = '\0';
        for (;;) {
                char line[512];
                ssize_t n = read(fsfd, line, sizeof(line) - 1);
                if (n <= 0)
                        break;
                line[n] = '\0';
                snprintf(buf, size, "%s", line);
        }
}

/* "a:b" with ':' ',' and '\' escaped, top layer first. */
static char *lowerdir_string(char *const *layers, size_t n)
{
        size_t cap = 1;
        for (size_t i = 0; i < n; i++)
                cap += 2 * strlen(layers[i]) + 1;
        char *s = malloc(cap), *p = s;
        if (!s)
                return NULL;
        for (size_t i = n; i-- > 0;) {
                for (const char *c = layers[i]; *c; c++) {
                        if (*c == ':' || *c == ',' || *c == '\\')
                                *p++ = '\\';
                        *p++ = *c;
                }
                if (i > 0)
                        *p++ = ':';
        }
        *p = '\0';
        return s;
}

/* 0 mounted; -ENODEV / -EOPNOTSUPP: no usable overlayfs here; other -errno: failure. */
static int overlay_mount(char *const *layers, size_t n, const char *upper, const char *work, const char *target,
                         struct moat_error **err)
{
        bool plus = !force_lowerdir_string;
        char klog[512] = "";
        for (;;) {
                _cleanup_close_ int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
                if (fsfd < 0) {
                        if (errno == ENODEV || errno == ENOSYS)
                                return -ENODEV;
                        return moat_error_set(err, errno, "cannot open an overlay filesystem");
                }
                int r = 0;
                if (plus) {
                        for (size_t i = n; i-- > 0 && r == 0;)
                                r = fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", layers[i], 0);
                        if (r < 0 && errno == EINVAL) {
                                moat_debug("overlay refused \"lowerdir+\"; using the lowerdir string");
                                plus = false;
                                continue;
                        }
                } else {
                        _cleanup_free_ char *ld = lowerdir_string(layers, n);
                        if (!ld)
                                return -ENOMEM;
                        r = fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir", ld, 0);
                }
                if (r == 0)
                        r = fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0);
                if (r == 0)
                        r = fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0);
                if (r == 0)
                        r = fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
                if (r < 0) {
                        int e = errno;
                        fs_log(fsfd, klog, sizeof(klog));
                        if (e == EINVAL || e == EOPNOTSUPP) {
                                moat_debug("overlay on '%s' refused (%s%s%s); copying the layers instead", target,
                                           strerror(e), klog[0] ? ": " : "", klog);
                                return -EOPNOTSUPP;
                        }
                        return moat_error_set(err, e, "cannot create the overlay for '%s'%s%s", target,
                                              klog[0] ? ": " : "", klog);
                }
                _cleanup_close_ int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
                if (mfd < 0)
                        return moat_error_set(err, errno, "cannot mount the overlay for '%s'", target);
                if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return moat_error_set(err, errno, "cannot mount the overlay on '%s'", target);
                return 0;
        }
}

bool moat_rootfs_is_overlay(const char *dir)
{
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/rootfs", dir) < 0)
                return false;
        struct statx a, b;
        if (statx(AT_FDCWD, p, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &a) < 0 ||
            statx(AT_FDCWD, dir, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &b) < 0)
                return false;
        return (a.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) ? !!(a.stx_attributes & STATX_ATTR_MOUNT_ROOT)
                                                                : a.stx_dev_major != b.stx_dev_major ||
                                                                          a.stx_dev_minor != b.stx_dev_minor;
}

/* ---------------------------------------------------------------- copy */

struct copy_ctx {
        struct { dev_t dev; ino_t ino; char *path; } *links; /* hardlinks of this layer */
        size_t n_links;
        int rootfd;
};

static int copy_xattrs(int sfd, const char *sname, int dfd, const char *dname)
{
        char sp[PATH_MAX + 32], dp[PATH_MAX + 32];
        snprintf(sp, sizeof(sp), "/proc/self/fd/%d/%s", sfd, sname);
        snprintf(dp, sizeof(dp), "/proc/self/fd/%d/%s", dfd, dname);
        char names[8192];
        ssize_t n = llistxattr(sp, names, sizeof(names));
        if (n < 0)
                return errno == ENOTSUP ? 0 : -errno;
        for (char *x = names; x < names + n; x += strlen(x) + 1) {
                if (strncmp(x, "trusted.overlay.", 16) == 0)
                        continue;
                char val[65536];
                ssize_t v = lgetxattr(sp, x, val, sizeof(val));
                if (v < 0)
                        return -errno;
                if (lsetxattr(dp, x, val, (size_t)v, 0) < 0 && errno != EPERM)
                        return -errno;
        }
        return 0;
}

static int copy_meta(int sfd, const char *name, int dfd, const struct stat *st)
{
        if (fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
                return -errno;
        if (!S_ISLNK(st->st_mode) && fchmodat(dfd, name, st->st_mode & 07777, 0) < 0)
                return -errno;
        int r = copy_xattrs(sfd, name, dfd, name);
        if (r < 0)
                return r;
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

static int copy_data(int sfd, const char *name, int dfd)
{
        _cleanup_close_ int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (in < 0 || out < 0)
                return -errno;
        return moat_copy_data(in, out);
}

static int clear_dir(int dfd)
{
        _cleanup_close_ int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        _cleanup_closedir_ DIR *dd = d;
        struct dirent *de;
        while ((de = readdir(dd))) {
                if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
                        continue;
                int r = rm_rf_at(dirfd(dd), de->d_name);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int copy_tree(struct copy_ctx *c, int sfd, int dfd, const char *rel, struct moat_error **err)
{
        _cleanup_close_ int lfd = openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lfd < 0)
                return moat_error_set(err, errno, "cannot read layer dir '%s'", rel);
        DIR *d = fdopendir(lfd);
        if (!d)
                return moat_error_set(err, errno, "cannot read layer dir '%s'", rel);
        TAKE_FD(lfd);
        _cleanup_closedir_ DIR *dd = d;
        struct dirent *de;
        while ((errno = 0, de = readdir(dd))) {
                const char *name = de->d_name;
                if (STREQ(name, ".") || STREQ(name, ".."))
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s%s", rel, *rel ? "/" : "", name) < 0)
                        return -ENOMEM;
                struct stat st, dst;
                if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return moat_error_set(err, errno, "cannot stat '%s' in a layer", path);
                bool exists = fstatat(dfd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0;
                int r = 0;
                if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) { /* whiteout */
                        if (exists && (r = rm_rf_at(dfd, name)) < 0)
                                return moat_error_set(err, r, "cannot remove '%s' (whited out)", path);
                        continue;
                }
                if (exists && !(S_ISDIR(st.st_mode) && S_ISDIR(dst.st_mode))) {
                        if ((r = rm_rf_at(dfd, name)) < 0)
                                return moat_error_set(err, r, "cannot replace '%s'", path);
                        exists = false;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (!exists && mkdirat(dfd, name, 0700) < 0)
                                return moat_error_set(err, errno, "cannot create '%s'", path);
                        _cleanup_close_ int s2 = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_close_ int d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (s2 < 0 || d2 < 0)
                                return moat_error_set(err, errno, "cannot open '%s'", path);
                        char v[4];
                        if (exists && fgetxattr(s2, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y' &&
                            (r = clear_dir(d2)) < 0)
                                return moat_error_set(err, r, "cannot empty opaque dir '%s'", path);
                        r = copy_tree(c, s2, d2, path, err);
                        if (r < 0)
                                return r;
                } else if (S_ISREG(st.st_mode)) {
                        const char *first = NULL;
                        for (size_t i = 0; st.st_nlink > 1 && i < c->n_links; i++)
                                if (c->links[i].dev == st.st_dev && c->links[i].ino == st.st_ino)
                                        first = c->links[i].path;
                        if (first) {
                                if (linkat(c->rootfd, first, dfd, name, 0) < 0)
                                        return moat_error_set(err, errno, "cannot link '%s' to '%s'", path, first);
                                continue;
                        }
                        if ((r = copy_data(sfd, name, dfd)) < 0)
                                return moat_error_set(err, r, "cannot copy '%s'", path);
                        if (st.st_nlink > 1) {
                                void *nl = realloc(c->links, (c->n_links + 1) * sizeof(*c->links));
                                if (!nl)
                                        return -ENOMEM;
                                c->links = nl;
                                c->links[c->n_links].dev = st.st_dev;
                                c->links[c->n_links].ino = st.st_ino;
                                c->links[c->n_links++].path = TAKE_PTR(path);
                        }
                } else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);
                        if (n < 0)
                                return moat_error_set(err, errno, "cannot read symlink '%s'", path);
                        target[n] = '\0';
                        if (symlinkat(target, dfd, name) < 0)
                                return moat_error_set(err, errno, "cannot create symlink '%s'", path);
                } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
                        if (mknodat(dfd, name, st.st_mode, st.st_rdev) < 0)
                                return moat_error_set(err, errno, "cannot create '%s'", path);
                } else {
                        continue; /* sockets */
                }
                if ((r = copy_meta(sfd, name, dfd, &st)) < 0)
                        return moat_error_set(err, r, "cannot copy the attributes of '%s'", path ? path : name);
        }
        if (errno)
                return moat_error_set(err, errno, "cannot read layer dir '%s'", rel);
        return 0;
}

static int copy_layers(char *const *layers, size_t n, const char *target, struct moat_error **err)
{
        _cleanup_close_ int dfd = open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return moat_error_set(err, errno, "cannot open '%s'", target);
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int sfd = open(layers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sfd < 0)
                        return moat_error_set(err, errno, "cannot open layer '%s'", layers[i]);
                struct copy_ctx c = { .rootfd = dfd };
                int r = copy_tree(&c, sfd, dfd, "", err);
                for (size_t j = 0; j < c.n_links; j++)
                        free(c.links[j].path);
                free(c.links);
                if (r < 0)
                        return moat_error_prefix(err, r, "copying layer '%s'", layers[i]);
        }
        return 0;
}

/* ---------------------------------------------------------------- entry points */

int moat_rootfs_mount_layers(char *const *layers, size_t n, const char *dir, char **rootfs, struct moat_error **err)
{
        _cleanup_free_ char *upper = NULL, *work = NULL, *target = NULL, *empty = NULL;
        if (asprintf(&upper, "%s/upper", dir) < 0 || asprintf(&work, "%s/work", dir) < 0 ||
            asprintf(&target, "%s/rootfs", dir) < 0 || asprintf(&empty, "%s/empty", dir) < 0)
                return -ENOMEM;
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return moat_error_set(err, r, "cannot create '%s'", dir);
        if (mkdir(target, 0755) < 0 && errno != EEXIST)
                return moat_error_set(err, errno, "cannot create '%s'", target);
        r = force_copy ? -ENODEV : 0;
        if (!force_copy) {
                if ((mkdir(upper, 0755) < 0 && errno != EEXIST) || (mkdir(work, 0700) < 0 && errno != EEXIST))
                        return moat_error_set(err, errno, "cannot create '%s' or '%s'", upper, work);
                char *one[1] = { empty };
                if (n == 0 && mkdir(empty, 0755) < 0 && errno != EEXIST)
                        return moat_error_set(err, errno, "cannot create '%s'", empty);
                r = n ? overlay_mount(layers, n, upper, work, target, err) : overlay_mount(one, 1, upper, work, target, err);
                if (r < 0 && r != -ENODEV && r != -EOPNOTSUPP)
                        return r;
        }
        if (r < 0) {
                moat_debug("no overlayfs for '%s': copying %zu layers", target, n);
                r = copy_layers(layers, n, target, err);
                if (r < 0)
                        return r;
        }
        if (rootfs)
                *rootfs = TAKE_PTR(target);
        return 0;
}

int moat_image_rootfs_mount(struct moat_store *s, const struct moat_image *img, const char *dir, char **rootfs,
                            struct moat_error **err)
{
        char **layers = calloc(img->n_layers + 1, sizeof(char *));
        if (!layers)
                return -ENOMEM;
        _cleanup_strv_ char **lv = layers;
        for (size_t i = 0; i < img->n_layers; i++) {
                if (!moat_store_has_layer(s, img->layers[i]))
                        return moat_error_input(err, -ENOENT, "image '%s': layer '%s' is not in the store (pull it again)",
                                                img->name ? img->name : "?", img->layers[i]);
                layers[i] = moat_store_layer_path(s, img->layers[i]);
                if (!layers[i])
                        return -ENOMEM;
        }
        return moat_rootfs_mount_layers(layers, img->n_layers, dir, rootfs, err);
}

int moat_image_rootfs_umount(const char *dir, struct moat_error **err)
{
        _cleanup_free_ char *target = NULL;
        if (asprintf(&target, "%s/rootfs", dir) < 0)
                return -ENOMEM;
        for (int i = 0; i < 64; i++) { /* anything stacked on it too */
                if (umount2(target, UMOUNT_NOFOLLOW) == 0)
                        continue;
                if (errno == EBUSY && umount2(target, UMOUNT_NOFOLLOW | MNT_DETACH) == 0)
                        continue;
                if (errno == EINVAL || errno == ENOENT)
                        break; /* not (or no longer) a mount point */
                return moat_error_set(err, errno, "cannot unmount '%s'", target);
        }
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return errno == ENOENT ? 0 : moat_error_set(err, errno, "cannot open '%s'", dir);
        static const char *const parts[] = { "rootfs", "upper", "work", "empty" };
        for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
                int r = rm_rf_at(dfd, parts[i]);
                if (r < 0)
                        return moat_error_set(err, r, "cannot remove '%s/%s'", dir, parts[i]);
        }
        return 0;
}
