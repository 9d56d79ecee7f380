/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor of an environment, v0: a daemon started at the end of `moat up -d` that turns
 * the environment's event sources into events in <envdir>/events.jsonl:
 *   the policy's NFLOG group (moat_env_nflog_group(project)) -> "denied" (src/dst service names, dport);
 *   each service's cgroup                            -> "oom" / "pids_limit";
 *   a pidfd of each service's init                   -> "exit";
 * and applies each service's on-violation (state.json: services[].on_violation: log|kill|stop).
 * Its pid and start time are in <envdir>/supervisor.pid ("PID STARTTIME\n"); its own messages go
 * to <envdir>/supervisor.log.  It runs until SIGTERM (moat_env_supervisor_stop). */
#pragma once

#include "core/error.h"

#define MOAT_ENV_SUPERVISOR_PID "supervisor.pid"
#define MOAT_ENV_SUPERVISOR_LOG "supervisor.log"
#define MOAT_ENV_SUPERVISOR_COMM "moat-supervisor"

/* Forks the daemon (setsid, double fork, stdio to supervisor.log) for the environment whose
 * record is in dir, and returns once it has written supervisor.pid and its sources are set up
 * (or failed: then the error says why and no daemon is left). */
int moat_env_supervisor_start(const char *dir, struct moat_error **err);

/* Stops the daemon recorded in dir (if any, and only if that pid is still it: same start time
 * and name): SIGTERM, a wait, then SIGKILL.  A missing or stale record is not an error.
 * Returns 1 if a supervisor was stopped, 0 if there was none. */
int moat_env_supervisor_stop(const char *dir);
