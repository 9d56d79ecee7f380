/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime <-> container-init channel: a SOCK_SEQPACKET pair, one message
 * per packet: a fixed header, an optional fd (SCM_RIGHTS) and an optional
 * text (error messages).  Every read is bounded and checked. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

enum moat_sync_type {
        SYNC_GO = 1,          /* parent -> child: carry on */
        SYNC_USERMAP,         /* child -> parent: write my uid/gid maps (value: pid) */
        SYNC_INIT_PID,        /* child -> parent: the init's pid (two-stage spawn) */
        SYNC_HOOKS,           /* child -> parent: run prestart + createRuntime now */
        SYNC_PTY,             /* child -> parent: pty master attached */
        SYNC_SECCOMP_FD,      /* child -> parent: seccomp listener fd attached */
        SYNC_READY,           /* child -> parent: waiting for `start` (or about to exec, for run/exec) */
        SYNC_ERROR,           /* child -> parent: text attached, errno in value */
};

struct moat_sync_msg {
        uint32_t type;
        int32_t value;
};

#define MOAT_SYNC_TEXT_MAX 60000

int moat_sync_pair(int fds[2]);
/* fd < 0: no fd.  text may be NULL; longer than MOAT_SYNC_TEXT_MAX: -EMSGSIZE. */
int moat_sync_send(int sock, uint32_t type, int32_t value, int fd, const char *text);
/* Receives one message; *fd gets an attached fd or -EBADF; *text (if non-NULL) a
 * malloc'ed NUL-terminated text or NULL.  -ECONNRESET when the peer is gone. */
int moat_sync_recv(int sock, struct moat_sync_msg *m, int *fd, char **text);
/* Receives and expects `type`; a SYNC_ERROR becomes *err; anything else is a protocol error. */
int moat_sync_expect(int sock, uint32_t type, struct moat_sync_msg *m, int *fd, struct moat_error **err);
/* Child side: reports err (or a plain message) and returns. */
void moat_sync_send_error(int sock, const struct moat_error *e, int errnum, const char *fallback);
