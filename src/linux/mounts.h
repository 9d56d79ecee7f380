/* SPDX-License-Identifier: Apache-2.0 */
/* Mount primitives that only ever act on file descriptors: the new mount API
 * (fsopen/fsconfig/fsmount, open_tree, move_mount, mount_setattr) first, and
 * mount(2) on "/proc/self/fd/N" where the kernel lacks it (ENOSYS) or when a
 * test forces it.  No function here resolves a path inside a rootfs: callers
 * resolve with core/path.h and pass an O_PATH fd of the mount point. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Tests: use mount(2) even where the new API exists. */
void moat_mount_force_legacy(bool on);
/* Whether the new mount API is in use (not forced off, not known missing). */
bool moat_mount_new_api(void);

/* Where a mount goes.  `fd` is an O_PATH fd of the mount point; after a
 * legacy mount(2) the new mount is found again by resolving `path` inside
 * `rootfd` (core/path.h), so it never leaves the root. */
struct moat_mnt_target {
        int fd;
        int rootfd;
        const char *path;
};

/* Mounts a new `type` filesystem (source may be NULL; data is the
 * comma-separated option string, may be NULL) on t.  msflags: MS_RDONLY,
 * MS_NOSUID, MS_NODEV, MS_NOEXEC, atime flags, MS_SYNCHRONOUS, MS_DIRSYNC,
 * MS_LAZYTIME.  Returns an O_PATH fd of the new mount's root, or -errno. */
int moat_mnt_fs(const char *type, const char *source, unsigned long msflags, const char *data,
                const struct moat_mnt_target *t);
/* Bind-mounts what srcfd (any fd, O_PATH fine) names onto t; recursive for
 * rbind.  Returns an O_PATH fd of the new mount's root, or -errno. */
int moat_mnt_bind(int srcfd, bool recursive, const struct moat_mnt_target *t);
/* Changes per-mount flags of the mount whose root mntfd is.  set/clr are
 * MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|atime flags (MS_*); the legacy
 * path remounts with MS_BIND|MS_REMOUNT keeping every flag not cleared (so
 * locked flags in a user namespace survive); recursive applies to every mount
 * below as well. */
int moat_mnt_setattr(int mntfd, bool recursive, unsigned long set, unsigned long clr);
/* Same with MOUNT_ATTR_* values (the spec's r* options). */
int moat_mnt_setattr_raw(int mntfd, bool recursive, uint64_t attr_set, uint64_t attr_clr);
/* Sets propagation (MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE, + MS_REC). */
int moat_mnt_propagation(int mntfd, unsigned long prop);

/* Mount points (host paths, as in /proc/self/mountinfo) strictly below `path`
 * (or equal to it when include_self), in mountinfo order. */
int moat_mountinfo_below(const char *path, bool include_self, char ***out);
/* The host path of an fd (readlink of /proc/self/fd/N); NULL on error. */
char *moat_fd_host_path(int fd);

struct moat_idmap;
/* A user namespace fd (O_RDONLY of /proc/PID/ns/user) whose maps are the given
 * "containerID hostID size" lines, for MOUNT_ATTR_IDMAP.  Forks a short-lived
 * child that is killed before returning. */
int moat_userns_fd_from_maps(const struct moat_idmap *uid, size_t nu, const struct moat_idmap *gid, size_t ng);
/* An idmapped bind (new mount API only, -EOPNOTSUPP otherwise): clones srcfd
 * (recursively for rbind), sets MOUNT_ATTR_IDMAP with userns_fd on the detached
 * tree (on every mount of it when idmap_recursive), then attaches it onto t.
 * Returns an O_PATH fd of the new mount's root. */
int moat_mnt_bind_idmap(int srcfd, bool recursive, int userns_fd, bool idmap_recursive,
                        const struct moat_mnt_target *t);
