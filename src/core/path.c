/* SPDX-License-Identifier: Apache-2.0 */
#include "core/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"

static bool force_fallback;
static int openat2_state; /* 0 unknown, 1 works, -1 missing */

void path_force_fallback(bool on)
{
        force_fallback = on;
}

const char *fd_path(int fd, char buf[static 32])
{
        snprintf(buf, 32, "/proc/self/fd/%d", fd);
        return buf;
}

#define MAX_SYMLINKS 40

/* The component walk.  `stack` holds fds of the directories from the root
 * down to the current one, so ".." pops without ever asking the kernel. */
static int walk_open(int rootfd, const char *path, int flags, mode_t mode)
{
        int stack[256];
        int depth = 0, links = 0, ret;
        char *buf = strdup(path);
        if (!buf)
                return -ENOMEM;
        stack[0] = rootfd;
        char *rest = buf;
        for (;;) {
                while (*rest == '/')
                        rest++;
                if (*rest == '\0') { /* path named a directory (or the root) */
                        if (flags & O_CREAT && !(flags & O_DIRECTORY)) {
                                ret = -EISDIR;
                                goto out;
                        }
                        ret = openat(stack[depth], ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
                        ret = ret < 0 ? -errno : ret;
                        goto out;
                }
                char *slash = strchr(rest, '/');
                bool last = true;
                if (slash) {
                        *slash = '\0';
                        const char *after = slash + 1;
                        while (*after == '/')
                                after++;
                        last = *after == '\0';
                }
                char *name = rest;
                char *next = slash ? slash + 1 : rest + strlen(rest);
                if (strcmp(name, ".") == 0) {
                        rest = next;
                        continue;
                }
                if (strcmp(name, "..") == 0) {
                        if (depth > 0)
                                close(stack[depth--]);
                        rest = next;
                        continue;
                }
                struct stat st;
                bool exists = fstatat(stack[depth], name, &st, AT_SYMLINK_NOFOLLOW) == 0;
                if (exists && S_ISLNK(st.st_mode) && (!last || !(flags & O_NOFOLLOW))) {
                        if (++links > MAX_SYMLINKS) {
                                ret = -ELOOP;
                                goto out;
                        }
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(stack[depth], name, target, sizeof(target) - 1);
                        if (n < 0) {
                                ret = -errno;
                                goto out;
                        }
                        target[n] = '\0';
                        if (target[0] == '/')
                                while (depth > 0)
                                        close(stack[depth--]);
                        char *nb = NULL;
                        if (asprintf(&nb, "%s/%s", target, next) < 0) {
                                ret = -ENOMEM;
                                goto out;
                        }
                        free(buf);
                        buf = rest = nb;
                        continue;
                }
                if (last) {
                        ret = openat(stack[depth], name, flags | O_CLOEXEC | O_NOFOLLOW, mode);
                        if (ret < 0 && errno == ELOOP && !(flags & O_NOFOLLOW))
                                errno = ELOOP;
                        ret = ret < 0 ? -errno : ret;
                        goto out;
                }
                if (!exists) {
                        ret = -ENOENT;
                        goto out;
                }
                if (!S_ISDIR(st.st_mode)) {
                        ret = -ENOTDIR;
                        goto out;
                }
                if (depth + 1 >= (int)ARRAY_SIZE(stack)) {
                        ret = -ENAMETOOLONG;
                        goto out;
                }
                int fd = openat(stack[depth], name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        ret = -errno;
                        goto out;
                }
                stack[++depth] = fd;
                rest = next;
        }
out:
        while (depth > 0)
                close(stack[depth--]);
        free(buf);
        return ret;
}

int path_open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
        if (!force_fallback && openat2_state >= 0) {
                struct open_how how = {
                        .flags = (uint64_t)(flags | O_CLOEXEC),
                        .mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
                        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                };
                int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
                if (fd >= 0) {
                        openat2_state = 1;
                        return fd;
                }
                if (errno != ENOSYS && errno != EAGAIN)
                        return -errno;
                if (errno == ENOSYS)
                        openat2_state = -1;
        }
        return walk_open(rootfd, path, flags, mode);
}

int path_parent_in_root(int rootfd, const char *path, bool mkparents, char **base)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        size_t len = strlen(p);
        while (len > 1 && p[len - 1] == '/')
                p[--len] = '\0';
        char *slash = strrchr(p, '/');
        const char *name = slash ? slash + 1 : p;
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return -EINVAL;
        *base = strdup(name);
        if (!*base)
                return -ENOMEM;
        int fd;
        if (slash) {
                *slash = '\0';
                fd = mkparents ? path_mkdir_in_root(rootfd, p[0] ? p : "/", 0755)
                               : path_open_in_root(rootfd, p[0] ? p : "/", O_PATH | O_DIRECTORY, 0);
        } else {
                fd = path_open_in_root(rootfd, ".", O_PATH | O_DIRECTORY, 0);
        }
        if (fd < 0) {
                free(*base);
                *base = NULL;
        }
        return fd;
}

int path_mkdir_in_root(int rootfd, const char *path, mode_t mode)
{
        int fd = path_open_in_root(rootfd, path, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0 || fd != -ENOENT)
                return fd;
        _cleanup_free_ char *base = NULL;
        _cleanup_close_ int parent = path_parent_in_root(rootfd, path, true, &base);
        if (parent < 0)
                return parent;
        if (mkdirat(parent, base, mode) < 0 && errno != EEXIST)
                return -errno;
        /* Re-resolve through the root: if it raced into a symlink, the walk keeps us inside. */
        return path_open_in_root(rootfd, path, O_PATH | O_DIRECTORY, 0);
}

int path_mkfile_in_root(int rootfd, const char *path, mode_t mode)
{
        int fd = path_open_in_root(rootfd, path, O_PATH, 0);
        if (fd >= 0 || fd != -ENOENT)
                return fd;
        _cleanup_free_ char *base = NULL;
        _cleanup_close_ int parent = path_parent_in_root(rootfd, path, true, &base);
        if (parent < 0)
                return parent;
        int f = openat(parent, base, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
        if (f < 0 && errno != EEXIST)
                return -errno;
        if (f >= 0)
                close(f);
        return path_open_in_root(rootfd, path, O_PATH, 0);
}
