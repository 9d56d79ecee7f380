/* SPDX-License-Identifier: Apache-2.0 */
/* The guest kernel of the vm tier: a directory made by scripts/vm-kernel.sh
 * (<dir>/vmlinux, the uncompressed ELF booted through PVH; <dir>/moat-modules, the
 * module files the guest loads, relative to <dir>, in load order; <dir>/moat-modules-net,
 * the same for a guest with a network, optional). */
#pragma once

#include "core/error.h"

#define MOAT_VM_KERNEL_DEFAULT "/var/lib/moat/vm/kernels/current"

struct moat_vm_kernel {
        char *dir;      /* absolute, symlinks resolved */
        char *version;  /* the basename of dir, e.g. "6.12.117+deb12-cloud-amd64" */
        char *vmlinux;  /* absolute */
        char **modules; /* absolute paths, load order; NULL-terminated (may be empty) */
        char **net_modules; /* the same for the network; NULL when the kernel dir has no list */
};

/* dir NULL: $MOAT_VM_KERNEL if set, else MOAT_VM_KERNEL_DEFAULT.  Checks that vmlinux is an
 * ELF file and that every listed module exists.  Errors say how to get a kernel. */
int moat_vm_kernel_find(const char *dir, struct moat_vm_kernel **out, struct moat_error **err);
void moat_vm_kernel_free(struct moat_vm_kernel *k);
static inline void moat_vm_kernel_freep(struct moat_vm_kernel **k) { moat_vm_kernel_free(*k); }
#define _cleanup_vm_kernel_ __attribute__((cleanup(moat_vm_kernel_freep)))
