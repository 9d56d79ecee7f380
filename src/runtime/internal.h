/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the runtime's parent side (create.c, exec.c) and the code that
 * runs in the child before execve (init.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "oci/spec.h"

struct moat_seccomp_prog;

struct init_ctx {
        const struct moat_spec *spec;
        const struct moat_process *process;
        int sync;                      /* the child's end of the sync pair */
        int fifo_fd;                   /* O_PATH exec.fifo (create), -EBADF otherwise */
        int ns_fds[MOAT_NS__COUNT];    /* namespaces to join, -EBADF where none */
        uint64_t unshare_flags;        /* namespaces the child creates itself */
        bool two_stage;                /* new user ns: unshare it, get mapped, fork the init */
        bool exec;                     /* `exec` into a running container, no rootfs work */
        bool wait_go;                  /* after READY wait for GO (run, exec) instead of the fifo */
        int preserve_fds;
        bool no_pivot;
        bool new_userns;
        bool new_cgroupns;
        const struct moat_cgroup_hier *cg_hier;
        size_t n_cg_hier;
        struct moat_seccomp_prog *seccomp;
        const struct moat_cgroup *cg;  /* the child moves itself in (NULL: none) */
        bool in_v2;                    /* clone3 already put it in the v2 directory */
};

/* Never returns: on failure it reports over c->sync and _exit()s. */
_Noreturn void moat_init_child(struct init_ctx *c);

/* The state JSON handed to hooks and seccomp listeners. */
char *moat_hook_state_json(const struct moat_spec *spec, const char *id, const char *status, pid_t pid,
                           const char *bundle);
/* Finds args[0] in PATH (from env, else the default PATH) as execvp does, inside the current root. */
int moat_find_executable(const char *file, char *const *env, char **out);
/* Writes pid to path atomically (temp + rename), as conmon and containerd expect. */
int moat_write_pid_file(const char *path, pid_t pid, struct moat_error **err);
/* Waits for a child (pidfd, or pid when pidfd < 0) and turns its end into a shell-style status. */
int moat_wait_status(pid_t pid, int *status);
