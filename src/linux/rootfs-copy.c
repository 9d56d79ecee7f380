/* SPDX-License-Identifier: Apache-2.0 */
/* tmpcopyup: copy what was at a tmpfs destination into the new tmpfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "linux/rootfs-internal.h"

static int copy_file(int srcdir, int dstdir, const char *name, mode_t mode)
{
        _cleanup_close_ int in = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
                return -errno;
        _cleanup_close_ int out = openat(dstdir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
        if (out < 0)
                return -errno;
        char buf[65536];
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                if (write_all(out, buf, (size_t)n) < 0)
                        return -errno;
        }
        return 0;
}

static int copy_tree_depth(int srcfd, int dstfd, int depth)
{
        if (depth > 128)
                return -ELOOP;
        int dfd = openat(srcfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        struct dirent *e;
        while ((errno = 0, e = readdir(d))) {
                if (STREQ(e->d_name, ".") || STREQ(e->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(srcfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                int r = 0;
                if (S_ISDIR(st.st_mode)) {
                        if (mkdirat(dstfd, e->d_name, st.st_mode & 07777) < 0 && errno != EEXIST)
                                return -errno;
                        _cleanup_close_ int s2 = openat(srcfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_close_ int d2 = openat(dstfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (s2 < 0 || d2 < 0)
                                return -errno;
                        r = copy_tree_depth(s2, d2, depth + 1);
                } else if (S_ISREG(st.st_mode)) {
                        r = copy_file(srcfd, dstfd, e->d_name, st.st_mode);
                } else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(srcfd, e->d_name, target, sizeof(target) - 1);
                        if (n < 0)
                                return -errno;
                        target[n] = '\0';
                        if (symlinkat(target, dstfd, e->d_name) < 0)
                                return -errno;
                } else {
                        if (mknodat(dstfd, e->d_name, st.st_mode, st.st_rdev) < 0)
                                return -errno;
                }
                if (r < 0)
                        return r;
                if (fchownat(dstfd, e->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
                        return -errno;
                if (!S_ISLNK(st.st_mode) && fchmodat(dstfd, e->d_name, st.st_mode & 07777, 0) < 0)
                        return -errno;
                struct timespec ts[2] = { st.st_atim, st.st_mtim };
                (void)utimensat(dstfd, e->d_name, ts, AT_SYMLINK_NOFOLLOW);
        }
        return errno ? -errno : 0;
}

int moat_copy_tree(int srcfd, int dstfd)
{
        return copy_tree_depth(srcfd, dstfd, 0);
}
