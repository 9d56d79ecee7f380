/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's initramfs: an uncompressed newc cpio holding
 *   /init                   the guest init (mode 0755)
 *   /modules/<basename>     each module of the kernel, as shipped (.ko.xz: the guest loads them with
 *                           finit_module(MODULE_INIT_COMPRESSED_FILE))
 *   /modules/order          their paths inside the initramfs, one a line, in load order
 *   /dev /proc /sys /lower /rw /newroot    empty directories (0755)
 *   /dev/console            char 5:1 (0600)
 * Cached as <cache_dir>/initramfs-<sha256 of the inputs>.cpio, built once (temp file + rename). */
#pragma once

#include "core/error.h"
#include "vm/kernel.h"

/* *out_path: the cached cpio (malloc'd).  The cache dir is created (0700) if missing. */
int moat_vm_initramfs(const char *cache_dir, const char *init_path, const struct moat_vm_kernel *k,
                      char **out_path, struct moat_error **err);
