/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between rootfs*.c only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* tmpcopyup: copies what was in the directory oldfd (opened before the mount)
 * into the new tmpfs mfd, as moat_copy_tree (core/copytree.h) does. */
int moat_rootfs_tmpcopyup(int oldfd, int mfd, char *where, size_t where_size);
