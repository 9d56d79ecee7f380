/* SPDX-License-Identifier: Apache-2.0 */
/* The vm tier's runtime face (vm/runtime_vm.c), what it has of a container: the cgroup's
 * resources for a VMM, and the terminal (a host pty whose master goes to --console-socket and
 * whose slave is the monitor's stdio; the guest makes the process's own pty). rtface.c */
#pragma once

#include <stdbool.h>

#include "core/error.h"
#include "oci/spec.h"
#include "vm/config.h"
#include "vm/proto.h"

/* What QEMU needs above the guest's RAM in the cgroup's memory limit: the TCG translation cache
 * (tb-size=32 MiB), its heap, threads and I/O buffers (~55 MiB anonymous, measured under TCG
 * with a guest that filled its RAM), and maybe the page cache of its binary and libraries
 * (~75 MB) and of the disks.  docs/vm.md says why. */
#define MOAT_VM_MEM_OVERHEAD_MIB 192
/* A pids limit is raised to this: it counts the monitor's and QEMU's threads, not the guest's
 * processes (those are the guest kernel's). */
#define MOAT_VM_MIN_PIDS 128

/* The cgroup's resources for the monitor and its QEMU, from config.json's (a shallow copy:
 * out points into s): the memory limit is the guest's RAM (vm.c) + MOAT_VM_MEM_OVERHEAD_MIB
 * (a swap limit grows by as much), no device rules (they describe the guest's /dev; QEMU may
 * need /dev/kvm, and is confined otherwise), pids at least MOAT_VM_MIN_PIDS; the rest (cpu
 * quota and shares, cpuset, blkio, ...) as given.  NULL when config.json has no resources. */
const struct moat_resources *moat_vm_cgroup_resources(const struct moat_spec *s, struct moat_resources *out);

/* The terminal of `create --console-socket`: a host pty in raw mode (the guest's pty does the
 * line discipline), process.consoleSize applied, its master sent over the socket; *slave is
 * the monitor's stdio and controlling terminal (so it gets SIGWINCH). */
int moat_vm_tty_open(const struct moat_spec *s, const char *console_socket, int *slave, struct moat_error **err);
/* The same for any process (exec -t --console-socket, vm/exec.h): p's consoleSize applied. */
int moat_vm_pty_open(const struct moat_process *p, const char *console_socket, int *slave,
                     struct moat_error **err);

/* For vm.c (opts.tty_resize): the size of the terminal tty (TIOCGWINSZ) appended to CONFIG as
 * a WINSIZE TLV (nothing when unknown or 0x0), so the guest's pty has it before the process
 * runs; and a RESIZE frame with its size now (on SIGWINCH). */
int moat_vm_tty_config(int tty, struct moat_vm_config *cfg);
int moat_vm_tty_resize(int tty, int chan);
/* The pieces, for exec too: the size of tty (TIOCGWINSZ) as u16 rows, u16 cols (1, 0 when 0x0,
 * -errno); a WINSIZE TLV of it (nothing when unknown or 0x0); a frame of `type` (RESIZE,
 * EXEC_RESIZE) with it over fd. */
int moat_vm_tty_size(int tty, uint8_t size[4]);
void moat_vm_tlv_put_winsize(struct moat_vm_tlv_writer *w, int tty);
int moat_vm_tty_send_size(int tty, int fd, uint8_t type);
