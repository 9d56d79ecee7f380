/* SPDX-License-Identifier: Apache-2.0 */
/* Exec into a running VM (the vm tier's `moat-runtime exec`).  The VM's monitor listens on
 * <state>/exec.sock (0600, peers of uid 0 or ours only); a client sends one EXEC (the process
 * as TLVs, vm/proto.h) and then EXEC_STDIN / EXEC_SIGNAL / EXEC_RESIZE; it gets EXEC_STARTED,
 * EXEC_STDOUT, EXEC_STDERR, EXEC_ERROR and EXEC_EXIT back: the channel's EXEC_* frames
 * without the session id, which the monitor adds (and checks) on the guest's channel.
 *   exec_host.c  the monitor's side (hooks in vm.c's relay loop)
 *   exec_client.c  the client: moat_container_exec for a VM container */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "oci/spec.h"
#include "vm/proto.h"

#define MOAT_VM_EXEC_SOCK "exec.sock"

/* ---- the monitor ---- */
struct moat_vm_exec_host;
int moat_vm_exec_host_open(const char *state_dir, struct moat_vm_exec_host **out, struct moat_error **err);
void moat_vm_exec_host_free(struct moat_vm_exec_host *h); /* clients closed, socket removed */
#define MOAT_VM_EXEC_HOST_MAX_POLL (1 + MOAT_VM_MAX_EXECS)
/* The listening socket and the clients to poll.  hold: the main process is not running
 * yet (`start` came, STARTED not yet): new clients' requests wait in their sockets.
 * running (poll_done): the main process runs (STARTED, no EXIT): only then are requests
 * taken to the guest; after EXIT they are refused. */
size_t moat_vm_exec_host_poll_add(struct moat_vm_exec_host *h, struct pollfd *p, size_t max, bool hold);
void moat_vm_exec_host_poll_done(struct moat_vm_exec_host *h, const struct pollfd *p, size_t n, int chan,
                                 bool running);
/* A frame from the guest: 1 not an exec frame, 0 handled, < 0 it broke the protocol (*what). */
int moat_vm_exec_host_frame(struct moat_vm_exec_host *h, uint8_t type, const uint8_t *p, size_t len,
                            const char **what);

/* ---- the client ---- */
struct moat_vm_exec_opts {
        const char *id;
        const char *state_dir;          /* the container's */
        const struct moat_spec *spec;   /* its config.json: the seccomp profile */
        const struct moat_process *process;
        /* once the process runs: pid is ours, or with detach the child that relays on (a pid
         * file names it); < 0 kills the process and fails */
        int (*started)(pid_t pid, void *userdata, struct moat_error **err);
        void *userdata;
        bool detach;
        int in, out, err;               /* stdio to relay (in < 0: none) */
        /* with process->terminal: the pty's master goes there and its slave is the stdio
         * relayed (in, out, err unused); NULL: in, if a terminal, is set raw and followed */
        const char *console_socket;
};
/* Runs the process in the VM, relays stdio and signals (INT TERM HUP QUIT USR1 USR2 WINCH...;
 * with a terminal WINCH is its resize)
 * until it exits: *status its exit status.  With detach, returns once it started and a
 * child of ours relays on (the pid file names that child). */
int moat_vm_exec(const struct moat_vm_exec_opts *o, int *status, struct moat_error **err);
/* The EXEC payload (vm/proto.h, without the session id): the process part of CONFIG
 * (vm/config.h moat_vm_process_tlv), seccomp from spec; with p->terminal and tty >= 0 the size
 * of tty as WINSIZE (the guest's pty gets it before the process runs). */
int moat_vm_exec_tlv(const struct moat_spec *spec, const struct moat_process *p, int tty, uint8_t **out,
                     size_t *len, struct moat_error **err);
