/* SPDX-License-Identifier: Apache-2.0 */
/* Disks of the vm tier (see proto.h): vda, the container's root filesystem as a read-only ext4
 * image, cached per image content; vdb, a per-container writable ext4 layer on a sparse host
 * file that holds upper/ and work/ for the guest's overlay root.  Both are made by e2fsprogs'
 * mkfs.ext4 (fork/exec, fixed argv, no shell); nothing here mounts anything on the host. */
#pragma once

#include <stdint.h>
#include <time.h>

#include "core/error.h"

/* The minimum size of a writable layer. */
#define MOAT_VM_DISK_RW_MIN (16ull << 20)

/* The root disk of rootfs_dir: `mkfs.ext4 -d rootfs_dir` into <cache_dir>/<key>.ext4 (mode 0600;
 * cache_dir is created 0700 if missing).  key identifies the content (e.g. the image digest,
 * [a-zA-Z0-9_.-]{1,128}, not "." or "..").  If the file exists it is reused as is (its atime is
 * set to now, for moat_vm_disk_prune) and rootfs_dir is not read.  Otherwise it is built into a
 * temporary file in cache_dir and renamed into place, under an flock on <cache_dir>/<key>.lock so
 * that concurrent builders of one key build once.  The filesystem: ext4, 4 KiB blocks, no journal,
 * no resize inode, label "moat-root", root directory 0755 0:0; it keeps owners, modes (setuid,
 * sticky), mtimes, symlinks, hard links, device nodes, fifos, sockets and xattrs (security.*,
 * trusted.*, user.*).  Size: the tree's blocks * 1.2 + 256 bytes per inode + 16 MiB, in MiB.
 * On success *out_path is the image's path (caller frees). */
int moat_vm_disk_root(const char *cache_dir, const char *key, const char *rootfs_dir, char **out_path,
                      struct moat_error **err);

/* The writable layer: a new sparse file of `size` bytes at path (mode 0600, -EEXIST if anything is
 * there) holding an empty ext4 (label "moat-rw", lazy inode tables, no discard, no reserved blocks)
 * with the directories upper/ and work/ (0755, 0:0) at its root.  size >= MOAT_VM_DISK_RW_MIN.
 * On failure nothing is left at path. */
int moat_vm_disk_rw(const char *path, uint64_t size, struct moat_error **err);

/* Removes the root disks in cache_dir whose atime (set on every moat_vm_disk_root hit) is more than
 * older_than seconds before now, each under its key's lock (a disk being built or looked up is
 * not touched).  A running VM keeps its open disk: unlinking does not affect it.  Returns the
 * number removed. */
int moat_vm_disk_prune(const char *cache_dir, time_t older_than, struct moat_error **err);
