/* SPDX-License-Identifier: Apache-2.0 */
/* Copying a directory tree (see core/copytree.h). */
#include "core/copytree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

struct hardlink {
        dev_t dev;
        ino_t ino;
        char *path; /* relative to the destination root */
};

struct copy {
        int dstroot;
        struct hardlink *links;
        size_t n_links;
        char *where; /* what failed, relative to the source root; NULL: not wanted */
        size_t where_size;
};

static void copy_where(struct copy *c, const char *rel)
{
        if (c->where && c->where_size)
                snprintf(c->where, c->where_size, "%s", rel);
}

static void copy_done(struct copy *c)
{
        for (size_t i = 0; i < c->n_links; i++)
                free(c->links[i].path);
        free(c->links);
}

static const char *link_lookup(const struct copy *c, const struct stat *st)
{
        for (size_t i = 0; i < c->n_links; i++)
                if (c->links[i].dev == st->st_dev && c->links[i].ino == st->st_ino)
                        return c->links[i].path;
        return NULL;
}

static int link_add(struct copy *c, const struct stat *st, const char *rel)
{
        if (st->st_nlink < 2)
                return 0;
        struct hardlink *n = realloc(c->links, (c->n_links + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        c->links = n;
        char *p = strdup(rel);
        if (!p)
                return -ENOMEM;
        c->links[c->n_links++] = (struct hardlink){ .dev = st->st_dev, .ino = st->st_ino, .path = p };
        return 0;
}

/* Extended attributes of a file or directory (security.capability and the like).
 * Attributes this filesystem or this process cannot set are left out. */
static int copy_xattrs(int in, int out)
{
        ssize_t n = flistxattr(in, NULL, 0);
        if (n < 0)
                return errno == ENOTSUP ? 0 : -errno;
        if (n == 0)
                return 0;
        _cleanup_free_ char *names = malloc((size_t)n);
        if (!names)
                return -ENOMEM;
        n = flistxattr(in, names, (size_t)n);
        if (n < 0)
                return -errno;
        for (char *k = names; k < names + n; k += strlen(k) + 1) {
                ssize_t vl = fgetxattr(in, k, NULL, 0);
                if (vl < 0)
                        return -errno;
                _cleanup_free_ char *v = malloc(vl ? (size_t)vl : 1);
                if (!v)
                        return -ENOMEM;
                vl = fgetxattr(in, k, v, (size_t)vl);
                if (vl < 0)
                        return -errno;
                if (fsetxattr(out, k, v, (size_t)vl, 0) < 0) {
                        if (errno != ENOTSUP && errno != EPERM)
                                return -errno;
                        moat_debug("copy: xattr '%s' not kept: %m", k);
                }
        }
        return 0;
}

/* Owner, then mode (chown clears set-id bits), then xattrs (chown clears
 * security.capability), then times. */
static int copy_meta_fd(int in, int out, const struct stat *st)
{
        if (fchown(out, st->st_uid, st->st_gid) < 0 && errno != EPERM && errno != EINVAL)
                return -errno;
        if (fchmod(out, st->st_mode & 07777) < 0)
                return -errno;
        int r = copy_xattrs(in, out);
        if (r < 0)
                return r;
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        (void)futimens(out, ts);
        return 0;
}

int moat_copy_tree_meta(int srcfd, int dstfd)
{
        struct stat st;
        if (fstat(srcfd, &st) < 0)
                return -errno;
        return copy_meta_fd(srcfd, dstfd, &st);
}

int moat_copy_data(int in, int out)
{
        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
                if (n == 0)
                        return 0;
                if (n > 0)
                        continue;
                if (errno == EINTR)
                        continue;
                if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
                        return -errno;
                break;
        }
        char buf[65536];
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                if (write_all(out, buf, (size_t)n) < 0)
                        return -errno;
        }
}

/* Owner, mode and times of something that cannot be opened (a link, a node). */
static int copy_meta_at(int dstfd, const char *name, const struct stat *st)
{
        if (fchownat(dstfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM &&
            errno != EINVAL)
                return -errno;
        if (!S_ISLNK(st->st_mode) && fchmodat(dstfd, name, st->st_mode & 07777, 0) < 0)
                return -errno;
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        (void)utimensat(dstfd, name, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
}

static int copy_dir(struct copy *c, int srcfd, int dstfd, const char *rel, int depth);

static int copy_entry(struct copy *c, int srcfd, int dstfd, const char *name, const char *rel, int depth)
{
        struct stat st;
        if (fstatat(srcfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                const char *first = link_lookup(c, &st);
                if (first)
                        return linkat(c->dstroot, first, dstfd, name, 0) < 0 ? -errno : 0;
        }
        int r;
        if (S_ISDIR(st.st_mode)) {
                if (mkdirat(dstfd, name, 0700) < 0)
                        return -errno;
                _cleanup_close_ int s2 = openat(srcfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (s2 < 0)
                        return -errno;
                _cleanup_close_ int d2 = openat(dstfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (d2 < 0)
                        return -errno;
                r = copy_dir(c, s2, d2, rel, depth + 1);
                if (r < 0)
                        return r;
                copy_where(c, rel);
                return copy_meta_fd(s2, d2, &st);
        }
        if (S_ISREG(st.st_mode)) {
                _cleanup_close_ int in = openat(srcfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
                if (in < 0)
                        return -errno;
                _cleanup_close_ int out =
                        openat(dstfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (out < 0)
                        return -errno;
                r = moat_copy_data(in, out);
                if (r >= 0)
                        r = copy_meta_fd(in, out, &st);
        } else if (S_ISLNK(st.st_mode)) {
                /* copied as a link, never followed */
                char target[PATH_MAX];
                ssize_t n = readlinkat(srcfd, name, target, sizeof(target) - 1);
                if (n < 0)
                        return -errno;
                target[n] = '\0';
                if (symlinkat(target, dstfd, name) < 0)
                        return -errno;
                r = copy_meta_at(dstfd, name, &st);
        } else {
                /* fifos, sockets, device nodes */
                if (mknodat(dstfd, name, (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0)
                        return -errno;
                r = copy_meta_at(dstfd, name, &st);
        }
        if (r < 0)
                return r;
        return link_add(c, &st, rel);
}

/* A DIR of its own on directory fd (fd stays the caller's). */
static int dir_open(int fd, DIR **out)
{
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        *out = fdopendir(dfd);
        if (!*out) {
                int r = -errno;
                close(dfd);
                return r;
        }
        return 0;
}

int moat_dir_is_empty(int fd)
{
        _cleanup_closedir_ DIR *d = NULL;
        int r = dir_open(fd, &d);
        if (r < 0)
                return r;
        struct dirent *e;
        while ((errno = 0, e = readdir(d)))
                if (!STREQ(e->d_name, ".") && !STREQ(e->d_name, ".."))
                        return 0;
        return errno ? -errno : 1;
}

static int copy_dir(struct copy *c, int srcfd, int dstfd, const char *rel, int depth)
{
        if (depth > MOAT_COPY_TREE_MAX_DEPTH)
                return -ELOOP;
        _cleanup_closedir_ DIR *d = NULL;
        int r = dir_open(srcfd, &d);
        if (r < 0)
                return r;
        struct dirent *e;
        while ((errno = 0, e = readdir(d))) {
                if (STREQ(e->d_name, ".") || STREQ(e->d_name, ".."))
                        continue;
                _cleanup_free_ char *child = NULL;
                if (asprintf(&child, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) < 0)
                        return -ENOMEM;
                copy_where(c, child);
                r = copy_entry(c, srcfd, dstfd, e->d_name, child, depth);
                if (r < 0)
                        return r;
        }
        if (errno) {
                copy_where(c, rel);
                return -errno;
        }
        return 0;
}

int moat_copy_tree(int srcfd, int dstfd, char *where, size_t where_size)
{
        struct copy c = { .dstroot = dstfd, .where = where, .where_size = where_size };
        copy_where(&c, "");
        int r = copy_dir(&c, srcfd, dstfd, "", 0);
        if (r >= 0)
                copy_where(&c, "");
        copy_done(&c);
        return r;
}
