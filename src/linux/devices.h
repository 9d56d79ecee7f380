/* SPDX-License-Identifier: Apache-2.0 */
/* Device nodes and /dev symlinks inside the rootfs, created only under the
 * container's /dev (a path that resolves elsewhere is refused). */
#pragma once

#include <stdbool.h>

#include "core/error.h"
#include "oci/spec.h"

/* Creates one device at d->path inside rootfd: mknod (mode, uid, gid), or in
 * a user namespace an empty file with the host's node bind-mounted on it. */
int moat_device_create(int rootfd, const struct moat_device *d, bool userns, struct moat_error **err);
/* /dev/null zero full random urandom tty, unless linux.devices names them. */
int moat_devices_default(int rootfd, const struct moat_spec *s, bool userns, struct moat_error **err);
/* /dev/fd, stdin, stdout, stderr, ptmx, core (if /proc/kcore exists). */
int moat_devices_symlinks(int rootfd, struct moat_error **err);
/* Opens `path` (an absolute path under /dev) inside rootfd with the last
 * component not followed, checking that its parent lies in rootfd's /dev.
 * Returns the parent dir fd and the last component in *base. */
int moat_dev_parent(int rootfd, const char *path, bool mkparents, char **base);
