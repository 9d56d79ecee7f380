/* SPDX-License-Identifier: Apache-2.0 */
/* QEMU's root: a fresh tmpfs (pivot_root) that holds only what QEMU opens.
 *
 *   /usr                     read-only, recursive bind (Debian 12 is merged-/usr: /bin, /sbin,
 *                            /lib, /lib64... are the host's symlinks into usr, copied as such;
 *                            a real directory there is bound read-only instead)
 *   /etc/ld.so.cache         read-only (the loader finds QEMU's ~50 libraries at once)
 *   /dev/null, /dev/zero, /dev/urandom, and /dev/kvm only under KVM
 *   the executable           read-only, when it is not under /usr (a test's fake VMM)
 *   kernel, initrd, root disk            read-only binds
 *   writable disk, console log           read-write binds
 *   control socket, virtiofs socket      binds (connect needs no write on the mount)
 * each at the same absolute path as on the host (parents made in the tmpfs), so the argv is
 * unchanged (a relative path: the child's cwd is the same directory, made in the root).  No
 * /proc, /sys, nor the rest of /etc: QEMU 7.2 does without (its data and module directories come
 * from /proc/self/exe, else realpath(argv[0]), else the compiled-in /usr/bin: the same
 * /usr/bin/../share/qemu; libnuma, libselinux, glib only probe /proc and /sys).  The tmpfs
 * itself is then made read-only.
 *
 * Everything is prepared before the fork (paths, kinds, parents); the child only makes
 * syscalls.  $MOAT_VM_NO_ROOT_CONFINE=1 (debugging only) keeps the old behaviour: a private copy
 * of the host's mount namespace. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

struct moat_vm_qemu_opts;

struct moat_vm_qemu_root_ent {
        char *path;      /* absolute, as QEMU opens it */
        const char *what; /* "the kernel", ... for errors */
        bool dir;        /* a directory (recursive bind) or a file */
        bool rw;         /* writable (else read-only) */
        bool dev;        /* a device node (no nodev) */
        bool exec;       /* programs may run from it (/usr, the VMM): else noexec */
        int fd;          /* the child's open_tree clone */
};

struct moat_vm_qemu_root {
        bool enabled;
        struct moat_vm_qemu_root_ent *ents;
        size_t n;
        char **dirs;     /* relative to the new root, parents first */
        char **links;    /* pairs: name (relative), target */
        char *cwd;       /* set when a path was relative: the child's cwd after the pivot */
};

/* The steps the child reports (with the entry's index, or -1). */
enum {
        MOAT_VM_ROOT_STEP_NONE = 0,
        MOAT_VM_ROOT_STEP_SETUP,   /* namespaces, fds, capabilities */
        MOAT_VM_ROOT_STEP_CLONE,   /* open_tree of an entry */
        MOAT_VM_ROOT_STEP_ATTR,    /* read-only etc. on an entry */
        MOAT_VM_ROOT_STEP_TMPFS,   /* the new root */
        MOAT_VM_ROOT_STEP_MKDIR,   /* a parent directory */
        MOAT_VM_ROOT_STEP_LINK,    /* /bin -> usr/bin ... */
        MOAT_VM_ROOT_STEP_POINT,   /* an entry's mount point */
        MOAT_VM_ROOT_STEP_MOVE,    /* an entry's move_mount */
        MOAT_VM_ROOT_STEP_SEAL,    /* the tmpfs read-only */
        MOAT_VM_ROOT_STEP_PIVOT,   /* pivot_root, detaching the host's tree */
        MOAT_VM_ROOT_STEP_EXEC,
};

/* The paths QEMU will open for these options and this executable (absolute).  Every one must
 * exist (-ENOENT naming it).  With $MOAT_VM_NO_ROOT_CONFINE=1: r->enabled false, nothing else. */
int moat_vm_qemu_root_prepare(const struct moat_vm_qemu_opts *o, const char *exe, struct moat_vm_qemu_root *r,
                              struct moat_error **err);
/* In the forked child, in its own mount namespace (private), with CAP_SYS_ADMIN: builds the
 * root and pivots into it; cwd "/".  Async-signal-safe.  -1 with errno, *step and *item set. */
int moat_vm_qemu_root_enter(struct moat_vm_qemu_root *r, int *step, int *item);
const char *moat_vm_qemu_root_step_name(int step);
void moat_vm_qemu_root_free(struct moat_vm_qemu_root *r);
