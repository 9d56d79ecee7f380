/* SPDX-License-Identifier: Apache-2.0 */
/* The container lifecycle behind moat-runtime's verbs. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"
#include "oci/spec.h"

struct moat_runtime {
        const char *root; /* --root: the state directory */
};

struct moat_create_opts {
        const char *id;
        const char *bundle;         /* default "." */
        const char *pid_file;
        const char *console_socket;
        int preserve_fds;           /* fds 3 .. 3+n-1 pass into the container */
        bool no_pivot;
        bool no_new_keyring;
        bool detach;                /* run -d */
        bool keep;                  /* run --keep: do not delete the container when it ends */
};

int moat_container_create(const struct moat_runtime *rt, const struct moat_create_opts *o,
                          struct moat_error **err);
/* create + start; unless detached, waits and puts the exit status (0..255, 128+sig) in *status. */
int moat_container_run(const struct moat_runtime *rt, const struct moat_create_opts *o, int *status,
                       struct moat_error **err);
int moat_container_start(const struct moat_runtime *rt, const char *id, struct moat_error **err);
/* The OCI state document (runc's fields). */
int moat_container_state(const struct moat_runtime *rt, const char *id, json_t **out, struct moat_error **err);
int moat_container_kill(const struct moat_runtime *rt, const char *id, int sig, bool all,
                        struct moat_error **err);
int moat_container_delete(const struct moat_runtime *rt, const char *id, bool force, struct moat_error **err);
/* Array of state documents, one per container under the root. */
int moat_container_list(const struct moat_runtime *rt, json_t **out, struct moat_error **err);
int moat_container_pids(const struct moat_runtime *rt, const char *id, pid_t **pids, size_t *n,
                        struct moat_error **err);
int moat_container_pause(const struct moat_runtime *rt, const char *id, bool pause, struct moat_error **err);
int moat_container_update(const struct moat_runtime *rt, const char *id, const struct moat_resources *res,
                          struct moat_error **err);
/* {"type":"stats","id":...,"data":{...}} */
int moat_container_stats(const struct moat_runtime *rt, const char *id, json_t **out, struct moat_error **err);
/* OOM kills so far, and whether the container is still alive. */
int moat_container_oom_count(const struct moat_runtime *rt, const char *id, uint64_t *n, bool *alive,
                             struct moat_error **err);

struct moat_exec_opts {
        const char *id;
        struct moat_process *process; /* complete: the CLI merged flags into it */
        const char *pid_file;
        const char *console_socket;
        int preserve_fds;
        bool detach;
};
/* The container's config.json process, as a base for `exec ARGS` (caller frees). */
int moat_container_process(const struct moat_runtime *rt, const char *id, struct moat_process **out,
                           struct moat_error **err);
int moat_container_exec(const struct moat_runtime *rt, const struct moat_exec_opts *o, int *status,
                        struct moat_error **err);

/* CVE-2019-5736: runs the rest of this program from a sealed memfd copy of
 * itself, so nothing inside a container can reach the binary on disk through
 * /proc/PID/exe.  Returns 0 when already sealed; on success it does not return. */
int moat_selfexe_ensure_sealed(char **argv, struct moat_error **err);
