/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between rootfs*.c only. */
#pragma once

#include <stdbool.h>

/* Copies the contents of directory srcfd into directory dstfd (both readable
 * dir fds): files, dirs, symlinks, nodes; owner, mode and times kept; never
 * follows a symlink. */
int moat_copy_tree(int srcfd, int dstfd);
