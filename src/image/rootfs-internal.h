/* SPDX-License-Identifier: Apache-2.0 */
/* rootfs.c below the store: stacks given layer directories.  For tests and for
 * callers that have layer paths rather than an image. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

/* layers: bottom first (as moat_image.layers).  Mounts an overlay (or makes a copy)
 * on dir/rootfs with dir/upper and dir/work; *rootfs gets the path. */
int moat_rootfs_mount_layers(char *const *layers, size_t n, const char *dir, char **rootfs, struct moat_error **err);
/* Tests: always copy (as where overlayfs is missing). */
void moat_rootfs_force_copy(bool on);
/* Tests: skip "lowerdir+" and use the "lowerdir=a:b:c" string (as before kernel 6.8). */
void moat_rootfs_force_lowerdir_string(bool on);
/* After mount: true when dir/rootfs is an overlay mount, false for a copy. */
bool moat_rootfs_is_overlay(const char *dir);
