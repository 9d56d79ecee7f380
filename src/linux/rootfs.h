/* SPDX-License-Identifier: Apache-2.0 */
/* The container's root filesystem: spec mounts, devices, pivot_root, masked
 * and read-only paths, the console.  Every path inside the rootfs is resolved
 * with core/path.h (never leaving the root) and every mount targets an fd. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cgroup/cgroup.h"
#include "core/error.h"
#include "oci/spec.h"

struct moat_rootfs_opts {
        bool no_pivot;                          /* --no-pivot: MS_MOVE + chroot instead of pivot_root */
        bool userns;                            /* in a new user namespace: bind devices from the host instead of mknod */
        bool cgroupns;                          /* in a new cgroup namespace */
        const struct moat_cgroup_hier *cg_hier; /* from moat_cgroup_hierarchies(); may be NULL/0 */
        size_t n_cg_hier;
        /* Called once, right before the first "cgroup" mount (or at the end of
         * prepare when there is none): the runtime moves the init into its
         * cgroup meanwhile, and enters the cgroup namespace there.  May be NULL. */
        int (*before_cgroup)(void *data, struct moat_error **err);
        void *before_cgroup_data;
};

/* Runs in the container's init, in its new mount namespace, before pivot_root:
 * sets / to rslave (or linux.rootfsPropagation), binds root.path onto itself,
 * performs every spec mount in order, creates default devices, linux.devices
 * and the /dev symlinks.  Afterwards the createContainer hooks run (the
 * caller's job). */
int moat_rootfs_prepare(const struct moat_spec *s, const struct moat_rootfs_opts *o, struct moat_error **err);
/* pivot_root (or no_pivot), detach the old root, masked paths, readonly paths,
 * root.readonly, rootfsPropagation, chdir("/"). */
int moat_rootfs_finish(const struct moat_spec *s, const struct moat_rootfs_opts *o, struct moat_error **err);
/* After finish: bind the pty slave (given as an fd) onto /dev/console safely
 * (create /dev/console as an empty regular file with O_NOFOLLOW if missing;
 * refuse if it is a symlink or not on the container's /dev). */
int moat_rootfs_bind_console(int slave_fd, struct moat_error **err);

/* One spec mount (mounts[idx]) inside the root given as rootfd (an fd of
 * root.path).  Exposed for tests; moat_rootfs_prepare calls it in order. */
int moat_rootfs_mount_one(int rootfd, const struct moat_spec *s, size_t idx, const struct moat_rootfs_opts *o,
                          struct moat_error **err);
/* Whether SELinux is enabled on the host (mountLabel is applied only then). */
bool moat_selinux_enabled(void);
