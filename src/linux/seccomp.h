/* SPDX-License-Identifier: Apache-2.0 */
/* seccomp: compile linux.seccomp from config.json into a BPF program ahead of
 * time (libseccomp), so that installing it just before execve is a single
 * seccomp(2) call with no allocation; plus the runtime-spec "listenerPath"
 * hand-off of the user-notification fd. */
#pragma once

/* With -Isrc this file shadows the kernel's <linux/seccomp.h> (libseccomp's
 * <seccomp.h> includes it): pull the kernel header in from here so both sets
 * of declarations are always present, whichever is included first. */
#include_next <linux/seccomp.h>

#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"
#include "oci/spec.h"

struct moat_seccomp_prog; /* a compiled filter */

/* Compiles sc.  Syscall names this libseccomp does not know are skipped (debug
 * log), as runc does; a rule whose action equals the default action is
 * skipped.  Errors name the field ("'linux.seccomp.architectures[1]'"). */
int moat_seccomp_build(const struct moat_seccomp *sc, struct moat_seccomp_prog **out, struct moat_error **err);

/* seccomp(SECCOMP_SET_MODE_FILTER, flags [| NEW_LISTENER]).  *notify_fd gets the
 * listener fd (O_CLOEXEC) when the filter has SCMP_ACT_NOTIFY rules, else
 * -EBADF.  Without no_new_privs this needs CAP_SYS_ADMIN (the caller's job).
 * notify_fd may be NULL when the caller does not want the listener (it is
 * then closed). */
int moat_seccomp_load(struct moat_seccomp_prog *p, int *notify_fd, struct moat_error **err);

bool moat_seccomp_uses_notify(const struct moat_seccomp_prog *p);
/* The compiled BPF program (*n instructions of struct sock_filter, 8 bytes each): the vm tier
 * sends it to its guest init. */
const void *moat_seccomp_prog_filter(const struct moat_seccomp_prog *p, unsigned int *n);
/* Number of BPF instructions (tests, debug). */
unsigned int moat_seccomp_prog_len(const struct moat_seccomp_prog *p);
/* SECCOMP_FILTER_FLAG_* the load will use (without NEW_LISTENER). */
unsigned int moat_seccomp_prog_flags(const struct moat_seccomp_prog *p);
void moat_seccomp_prog_free(struct moat_seccomp_prog *p);
static inline void moat_seccomp_prog_freep(struct moat_seccomp_prog **p)
{
        moat_seccomp_prog_free(*p);
}
#define _cleanup_seccomp_prog_ __attribute__((cleanup(moat_seccomp_prog_freep)))

/* runtime-spec "listenerPath": connects to the unix socket and sends
 * state_json (the container process state, see below) with notify_fd as
 * SCM_RIGHTS in the same message. */
int moat_seccomp_send_listener(const char *listener_path, int notify_fd, const char *state_json,
                               struct moat_error **err);

/* {"ociVersion","fds":["seccompFd"],"pid","metadata","state":{...}}.
 * metadata may be NULL (omitted).  container_state_json is the state object
 * (`state` verb output).  NULL on bad state JSON or ENOMEM; free() it. */
char *moat_seccomp_process_state_json(const char *metadata, pid_t pid, const char *container_state_json);

/* Spec architecture name ("SCMP_ARCH_X86_64") -> libseccomp token.
 * Returns 0 and sets *token (0 when the name is a valid spec name this
 * libseccomp cannot handle), or -EINVAL for a name the spec does not know. */
int moat_seccomp_arch_token(const char *name, uint32_t *token);
