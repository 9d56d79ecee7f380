/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor of an environment: a daemon started by `moat up` once the network, the policy
 * and the bundles are ready.  It starts the services in dependency order (depends_on
 * conditions), runs their health checks, applies restart policies, caps their logs, answers
 * the control socket <envdir>/supervisor.sock (env/control.h), and turns the environment's
 * event sources into events in <envdir>/events.jsonl:
 *   the policy's NFLOG group (moat_env_nflog_group(project)) -> "denied" (src/dst service names, dport);
 *   each service's cgroup                            -> "oom" / "pids_limit";
 *   a pidfd of each service's init                   -> "exit";
 * and applies each service's on-violation (state.json: services[].on_violation: log|kill|stop).
 * Its pid and start time are in <envdir>/supervisor.pid ("PID STARTTIME\n"); its own messages go
 * to <envdir>/supervisor.log.  It runs until SIGTERM (moat_env_supervisor_stop). */
#pragma once

#include <stdbool.h>

#include "core/error.h"

#define MOAT_ENV_SUPERVISOR_PID "supervisor.pid"
#define MOAT_ENV_SUPERVISOR_LOG "supervisor.log"
#define MOAT_ENV_SUPERVISOR_COMM "moat-supervisor"

struct moat_env_sup_opts {
        bool wait_healthy;  /* answer only once every health check has passed (up --wait) */
        void (*progress)(const char *line, void *userdata); /* "web started", ... (may be NULL) */
        void *userdata;
};

/* Forks the daemon (setsid, double fork, stdio to supervisor.log) for the environment whose
 * record (services prepared: bundles made) is in dir.  The daemon starts the services in
 * dependency order; this returns once every service has settled (running, completed, or
 * failed: then the error names them) or the daemon failed to set up (then none is left). */
int moat_env_supervisor_start(const char *dir, const struct moat_env_sup_opts *o, struct moat_error **err);

/* Stops the daemon recorded in dir (if any, and only if that pid is still it: same start time
 * and name): SIGTERM, a wait, then SIGKILL.  A missing or stale record is not an error.
 * Returns 1 if a supervisor was stopped, 0 if there was none. */
int moat_env_supervisor_stop(const char *dir);
