/* SPDX-License-Identifier: Apache-2.0 */
/* Idmapped mounts: a user namespace built from id maps, and mount_setattr
 * MOUNT_ATTR_IDMAP on a detached clone before it is attached. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "linux/mounts.h"
#include "oci/spec.h"

static char *map_text(const struct moat_idmap *m, size_t n)
{
        size_t cap = n * 40 + 1, len = 0;
        char *s = malloc(cap);
        if (!s)
                return NULL;
        s[0] = '\0';
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(s + len, cap - len, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
        return s;
}

int moat_userns_fd_from_maps(const struct moat_idmap *uid, size_t nu, const struct moat_idmap *gid, size_t ng)
{
        if (nu == 0 || ng == 0)
                return -EINVAL;
        _cleanup_free_ char *um = map_text(uid, nu);
        _cleanup_free_ char *gm = map_text(gid, ng);
        if (!um || !gm)
                return -ENOMEM;
        int ready[2], hold[2];
        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(hold, O_CLOEXEC) < 0) {
                int e = -errno;
                close(ready[0]);
                close(ready[1]);
                return e;
        }
        _cleanup_pid_ pid_t pid = fork();
        if (pid < 0) {
                int e = -errno;
                close(ready[0]);
                close(ready[1]);
                close(hold[0]);
                close(hold[1]);
                return e;
        }
        if (pid == 0) {
                char c = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'x';
                close(hold[1]);
                if (write(ready[1], &c, 1) != 1)
                        _exit(1);
                (void)read(hold[0], &c, 1); /* until the parent is done */
                _exit(0);
        }
        close(ready[1]);
        close(hold[0]);
        char c = 0;
        ssize_t n = read(ready[0], &c, 1);
        close(ready[0]);
        int ret;
        char p[64];
        if (n != 1 || c != 'u') {
                ret = -EPERM;
                goto out;
        }
        snprintf(p, sizeof(p), "/proc/%d/uid_map", pid);
        if ((ret = write_string_at(AT_FDCWD, p, um)) < 0)
                goto out;
        snprintf(p, sizeof(p), "/proc/%d/setgroups", pid);
        (void)write_string_at(AT_FDCWD, p, "deny");
        snprintf(p, sizeof(p), "/proc/%d/gid_map", pid);
        if ((ret = write_string_at(AT_FDCWD, p, gm)) < 0)
                goto out;
        snprintf(p, sizeof(p), "/proc/%d/ns/user", pid);
        ret = open(p, O_RDONLY | O_CLOEXEC);
        if (ret < 0)
                ret = -errno;
out:
        close(hold[1]); /* the child exits; _cleanup_pid_ reaps it */
        return ret;
}

int moat_mnt_bind_idmap(int srcfd, bool recursive, int userns_fd, bool idmap_recursive,
                        const struct moat_mnt_target *t)
{
        if (!moat_mount_new_api())
                return -EOPNOTSUPP;
        _cleanup_close_ int mfd = open_tree(srcfd, "",
                                            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH |
                                                    (recursive ? AT_RECURSIVE : 0));
        if (mfd < 0)
                return errno == ENOSYS ? -EOPNOTSUPP : -errno;
        struct mount_attr a = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd };
        if (mount_setattr(mfd, "", AT_EMPTY_PATH | (idmap_recursive ? AT_RECURSIVE : 0), &a, sizeof(a)) < 0)
                return errno == ENOSYS ? -EOPNOTSUPP : -errno;
        if (move_mount(mfd, "", t->fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return -errno;
        return TAKE_FD(mfd);
}
