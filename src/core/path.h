/* SPDX-License-Identifier: Apache-2.0 */
/* Paths resolved inside a root without ever leaving it: openat2 with
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, or (kernels before 5.6, or when
 * forced for tests) a walk one component at a time that treats the root as "/"
 * for "..", absolute symlinks and relative ones alike. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Opens `path` inside rootfd.  flags as for openat (O_CREAT allowed for the
 * last component; O_NOFOLLOW applies to the last component).  Returns fd or -errno. */
int path_open_in_root(int rootfd, const char *path, int flags, mode_t mode);
/* mkdir -p inside rootfd; returns an O_PATH|O_DIRECTORY fd of the last directory. */
int path_mkdir_in_root(int rootfd, const char *path, mode_t mode);
/* Creates the parents and an empty regular file (if nothing exists there);
 * returns an O_PATH fd of what is at `path` (file, or existing node of any kind). */
int path_mkfile_in_root(int rootfd, const char *path, mode_t mode);
/* Splits "a/b/c" into a dir fd for "a/b" (created if mkparents) and "c". */
int path_parent_in_root(int rootfd, const char *path, bool mkparents, char **base);

/* Tests: force the component walk even where openat2 exists. */
void path_force_fallback(bool on);
/* "/proc/self/fd/N" for an fd, in a caller buffer of >= 32 bytes. */
const char *fd_path(int fd, char buf[static 32]);
