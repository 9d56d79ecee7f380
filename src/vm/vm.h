/* SPDX-License-Identifier: Apache-2.0 */
/* Running an OCI bundle in its own VM (the vm tier): the kernel (vm/kernel.h), an initramfs
 * with the guest init (vm/initramfs.h), the root and writable disks (vm/disk.h), QEMU
 * (vm/qemu.h), and the channel to the guest init (vm/proto.h): CONFIG in, the process's
 * output, its exit status and signals through it.
 *   vm.c  moat_vm_run: one VM from start to end          config.c  config.json -> CONFIG */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "oci/spec.h"

#define MOAT_VM_CACHE_DIR "/var/lib/moat/vm/cache"
#define MOAT_VM_BOOT_TIMEOUT_MS 120000  /* TCG on a loaded host boots in seconds; this is a hang */
#define MOAT_VM_DEFAULT_MEM_MIB 256
#define MOAT_VM_MIN_MEM_MIB 128
#define MOAT_VM_RW_SIZE (1ULL << 30)    /* the writable layer (sparse) */

struct moat_vm_run_opts {
        const char *id;
        const struct moat_spec *spec; /* parsed config.json; root.path absolute */
        const char *state_dir;        /* the container's own dir: socket, writable disk, console log */
        const char *cache_dir;        /* NULL: MOAT_VM_CACHE_DIR (root disks, initramfs) */
        const char *disk_key;         /* the root disk's cache key (the image); NULL: from the rootfs dir */
        const char *init_path;        /* the guest init (moat-vminit) */
        const char *kernel_dir;       /* NULL: $MOAT_VM_KERNEL or the installed one */
        int in, out, err;             /* the process's stdio (in < 0: none) */
        /* Called once the guest init said HELLO, before it gets CONFIG (the runtime face's
         * `create` returns here and `start` lets the process go): < 0 ends the VM. */
        int (*before_config)(void *userdata);
        void *userdata;
        bool all_signals;             /* pass on every catchable signal, not only INT/TERM/HUP */
        bool tty_resize;              /* `out` is the process's terminal on the host: its size goes into
                                       * CONFIG, and SIGWINCH becomes a RESIZE with its new size */
        bool exec_socket;             /* listen on <state_dir>/exec.sock for exec (vm/exec.h) */
};

/* Boots the VM, runs the process, returns once the VM is gone: *status is the process's exit
 * status (0..255, 128+signal).  SIGINT, SIGTERM and SIGHUP to the caller are passed to the
 * process.  Nothing of the VM stays: QEMU killed if needed, the writable layer removed.  A
 * guest that breaks the channel protocol ends its VM and is an error here, nothing more. */
int moat_vm_run(const struct moat_vm_run_opts *o, int *status, struct moat_error **err);

/* The guest's RAM in MiB for config.json's memory limit. */
unsigned moat_vm_mem_mib(const struct moat_spec *s);

/* Where moat-vminit is: $MOAT_VMINIT, else next to this program (malloc'ed; NULL if none). */
char *moat_vm_find_init(void);

/* The runtime face (moat-runtime create with the annotation moat.isolation=vm): a monitor
 * process boots the VM and waits for `start` on the state dir's exec.fifo, as a container's
 * init does; the state's pid is the monitor's, which exits with the process's status, so
 * start/state/kill/delete and podman's conmon work unchanged.  vm/runtime_vm.c */
struct moat_create_opts;
struct moat_runtime;
int moat_vm_create(const struct moat_runtime *rt, const struct moat_create_opts *o, struct moat_error **err);
