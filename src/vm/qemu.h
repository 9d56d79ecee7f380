/* SPDX-License-Identifier: Apache-2.0 */
/* Running the guest: which accelerator, QEMU's command line, and the QEMU process.
 *
 * The machine: microvm with pcie=on (virtio-pci, built into Debian's 6.12 cloud kernel, so the
 * console can be hvc0 from the start), no option ROMs, no ISA serial, rtc kept (rtc=off costs
 * 2.5 s under TCG), PVH boot of the uncompressed vmlinux.  One virtio-serial-pci device carries
 * the console (hvc0 -> console_log) and the control port (MOAT_VM_PORT_NAME -> ctl_socket,
 * QEMU connects to it as a client: the caller must be listening before the spawn).
 * Disks: vda = root_disk (read-only), vdb = rw_disk (if any), both virtio-blk-pci, raw.
 * Shares: with fs_socket, -object memory-backend-memfd,id=mem,share=on (microvm's
 * memory-backend=mem) and -device vhost-user-fs-pci on that socket (virtiofsd serves it). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"

enum moat_vm_accel {
        MOAT_VM_ACCEL_TCG = 0,
        MOAT_VM_ACCEL_KVM = 1,
};

/* KVM only when /dev/kvm opens, KVM_GET_API_VERSION answers 12, and the module behind it is
 * kvm_intel or kvm_amd (kvm_pvm, PVM's paravirtual KVM, cannot boot stock kernels: TCG).
 * $MOAT_VM_ACCEL=kvm|tcg forces one (anything else: -EINVAL).  *why (malloc'd, may be NULL
 * when why is NULL) says how the choice was made.  Returns 0, -EINVAL or -ENOMEM. */
int moat_vm_accel_detect(enum moat_vm_accel *out, char **why);
/* The same with a root prefix for /dev and /sys ("" or NULL: the real ones) and the forced
 * value given (NULL: not forced) instead of read from the environment: for tests. */
int moat_vm_accel_detect_at(const char *root, const char *force, enum moat_vm_accel *out, char **why);
const char *moat_vm_accel_name(enum moat_vm_accel a);

/* The host's TSC frequency in kHz (TCG's guest TSC runs at the host's rate, and microvm
 * has no PIT/HPET to calibrate it: the guest hangs without tsc_early_khz).  Sources, in order:
 *   /sys/devices/system/cpu/cpu0/tsc_freq_khz (exists with some drivers/kernels),
 *   /proc/cpuinfo "model name ... @ X.XXGHz" (the nominal = TSC rate on Intel),
 *   /proc/cpuinfo "cpu MHz" of the first CPU (a VM host or a constant_tsc CPU reports the TSC).
 * root: prefix for tests (NULL: "/").  -ENOENT when none gives a value. */
int moat_vm_host_tsc_khz(const char *root, unsigned long *khz);

struct moat_vm_qemu_opts {
        const char *qemu;               /* NULL: "qemu-system-x86_64" from $PATH */
        enum moat_vm_accel accel;
        unsigned vcpus;                 /* 0: 1 */
        unsigned mem_mib;               /* 0: 256 */
        const char *kernel, *initrd, *cmdline_extra;
        const char *ctl_socket;         /* unix socket path QEMU connects to (virtserialport org.moat.ctl) */
        const char *root_disk;          /* vda, read-only; may be NULL (no disk) */
        const char *rw_disk;            /* vdb, may be NULL */
        const char *console_log;        /* the guest console (hvc0) to this file; NULL: discarded */
        bool net;                       /* a virtio-net device on the TAP tap_fd with Ethernet address mac */
        int tap_fd;                     /* QEMU gets it as fd MOAT_VM_QEMU_TAP_FD */
        unsigned char mac[6];
        /* Shares (vm/virtiofs.h): a vhost-user-fs-pci device on this socket with this tag; the
         * guest memory is then a shared memfd (vhost-user needs it).  NULL: none, no cost. */
        const char *fs_socket, *fs_tag;
};
#define MOAT_VM_QEMU_TAP_FD 4

/* A NULL-terminated argv (strv_free it).  -EINVAL for missing kernel/ctl_socket. */
int moat_vm_qemu_argv(const struct moat_vm_qemu_opts *o, char ***argv, struct moat_error **err);

/* Starts QEMU: stdin and stdout /dev/null; stderr appended to console_log (truncated first) or,
 * without one, inherited; every other fd closed; default signal mask and dispositions.  *pid
 * and *pidfd (O_CLOEXEC) for the caller to wait on (the caller reaps it).  An exec failure is
 * reported here (not as an exit status).  QEMU is not tied to our lifetime. */
int moat_vm_qemu_spawn(const struct moat_vm_qemu_opts *o, pid_t *pid, int *pidfd, struct moat_error **err);
