/* SPDX-License-Identifier: Apache-2.0 */
/* Copying a directory tree (volumes filled from the image, tmpcopyup). */
#pragma once

#include <stddef.h>

/* Deepest directory level moat_copy_tree descends to (-ELOOP beyond). */
#define MOAT_COPY_TREE_MAX_DEPTH 256

/* Copies the entries under directory srcfd into directory dstfd (both readable
 * directory fds; dstfd need not be empty, but a name already in it fails with
 * -EEXIST, nothing is merged): files, directories, symlinks (copied as links,
 * never followed), fifos, sockets and device nodes; hard links within srcfd are
 * kept as links within the copy.  Owner (EPERM/EINVAL, e.g. an unmapped id,
 * leave it), then mode including set-id bits, then xattrs (those the
 * destination cannot take are left out), then times.  srcfd's own metadata is
 * not copied (see moat_copy_tree_meta).
 * Returns 0 or -errno; on failure, if where != NULL, where holds the path that
 * failed relative to srcfd ("" for srcfd itself), truncated to where_size. */
int moat_copy_tree(int srcfd, int dstfd, char *where, size_t where_size);

/* Copies the owner, mode, xattrs and times of srcfd onto dstfd (fds of the
 * same kind of file, e.g. the roots given to moat_copy_tree), in that order. */
int moat_copy_tree_meta(int srcfd, int dstfd);

/* 1 if directory fd has no entries but "." and "..", 0 if it has, or -errno. */
int moat_dir_is_empty(int fd);

/* Copies the rest of in to out (copy_file_range, else read/write). */
int moat_copy_data(int in, int out);
