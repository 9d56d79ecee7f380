/* SPDX-License-Identifier: Apache-2.0 */
/* Bind mounts into a VM: one virtiofsd per VM (QEMU's C daemon), started by moat before QEMU,
 * as moat's child (it dies with moat: PDEATHSIG), and stopped once QEMU is gone.
 *
 * What it serves is a staging directory that holds only the shares: before the exec, the
 * daemon's process gets a mount namespace of its own, mounts a tmpfs on <state_dir>/shares and
 * binds each share's source there as "moat<N>" (a directory onto a directory, a file onto an
 * empty file; read-only ones made read-only with mount_setattr, recursively for an rbind), then
 * makes the tmpfs read-only.  Nothing is mounted on the host, and the mounts go with the daemon.
 * The guest (MOUNT kind SHARE, vm/proto.h) mounts the filesystem tagged MOAT_VM_SHARES_TAG
 * outside its new root and binds each name onto its target.  Read-only is enforced on the host
 * (the daemon's own bind) and again in the guest.
 *
 * The socket: moat binds and listens on <state_dir>/vfs.sock and passes it to virtiofsd
 * (--fd), so it is ready before QEMU connects (no wait, no race).  virtiofsd's messages go to
 * the console log (appended), so they show in moat's errors about the VM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/error.h"

#define MOAT_VM_VIRTIOFSD "/usr/lib/qemu/virtiofsd" /* Debian's qemu-system-common */

struct moat_vm_share;

struct moat_vm_vfsd {
        pid_t pid;      /* 0: not running */
        int pidfd;      /* valid only while pid > 0 */
        char *dir;      /* <state_dir>/shares: an empty directory on the host */
        char *sock;     /* <state_dir>/vfs.sock */
};

/* $MOAT_VM_VIRTIOFSD (for tests) or MOAT_VM_VIRTIOFSD. */
const char *moat_vm_virtiofsd_path(void);

/* Before anything is started: every share's source exists (a directory or a regular file; made
 * absolute, symlinks resolved, is_file set) and virtiofsd is there.  Errors name the source and
 * its target, or virtiofsd's path and its package. */
int moat_vm_shares_check(struct moat_vm_share *s, size_t n, struct moat_error **err);

/* Starts the daemon for these shares (checked).  console_log: where its stderr is appended
 * (NULL: /dev/null).  On success d->sock is the path for QEMU's vhost-user-fs chardev. */
int moat_vm_vfsd_start(const char *state_dir, const struct moat_vm_share *s, size_t n, const char *console_log,
                       struct moat_vm_vfsd *d, struct moat_error **err);

/* Once QEMU is gone: the daemon exits by itself when its client disconnects; it is waited for
 * (up to 3 s), then killed.  The socket and the staging directory are removed.  Safe on a
 * zeroed struct and twice. */
void moat_vm_vfsd_stop(struct moat_vm_vfsd *d);

/* The daemon's pidfd became readable (it is gone): reaps it (d->pid 0 after) and describes how
 * it ended in buf ("killed by signal 9", "exit status 1").  0, or -ECHILD when it was not
 * running. */
int moat_vm_vfsd_reap(struct moat_vm_vfsd *d, char *buf, size_t len);

/* The virtiofsd argv for a staging dir, the socket as fd 3 (NULL-terminated; strv_free). */
int moat_vm_vfsd_argv(const char *exe, const char *dir, char ***argv);
