/* SPDX-License-Identifier: Apache-2.0 */
/* Health checks of an environment's services (Compose `healthcheck:`).
 *
 * Two halves, used by the supervisor's event loop:
 *   - struct moat_health: the state machine (pure: no I/O, times passed in as
 *     CLOCK_MONOTONIC ns), with Docker/Compose semantics;
 *   - struct moat_health_probe: one probe running `test` inside a running
 *     container without blocking the caller (a forked helper does the exec;
 *     the caller polls moat_health_probe_fd()).
 *
 * Typical use:
 *     moat_health_init(&h, &svc->healthcheck, now);
 *     ... when moat_health_due(&h, now): moat_health_probe_start(), add its fd to epoll,
 *         remember deadline = now + moat_health_timeout_ns(&h)
 *     ... fd readable:   moat_health_probe_finish(p, &st, &out); moat_health_record(&h, now, st == 0)
 *     ... deadline hit:  moat_health_probe_kill(p); moat_health_record(&h, now, false)
 *     then moat_health_probe_free(p). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "env/envfile.h"

struct moat_runtime;

enum moat_health_status { MOAT_HEALTH_NONE, MOAT_HEALTH_STARTING, MOAT_HEALTH_HEALTHY, MOAT_HEALTH_UNHEALTHY };

/* "", "starting", "healthy", "unhealthy" */
const char *moat_health_status_name(enum moat_health_status s);

/* Defaults (Compose / Docker) used where the healthcheck has 0 or less. */
#define MOAT_HEALTH_DEFAULT_INTERVAL_NS (30LL * 1000000000LL)
#define MOAT_HEALTH_DEFAULT_TIMEOUT_NS (30LL * 1000000000LL)
#define MOAT_HEALTH_DEFAULT_START_INTERVAL_NS (5LL * 1000000000LL)
#define MOAT_HEALTH_DEFAULT_RETRIES 3
/* The tail of a probe's output that is kept. */
#define MOAT_HEALTH_OUTPUT_MAX 4096

struct moat_health {
        const struct moat_env_healthcheck *hc;
        enum moat_health_status status;
        int failures;       /* consecutive (those counted: not during the start period) */
        int64_t started_ns; /* when the service (re)started */
        int64_t next_ns;    /* when the next probe is due; INT64_MAX: never (NONE) */
        int64_t probe_started_ns; /* set by moat_health_probe_began (0: unknown) */
};

/* STARTING if hc is present, not disabled and has a test; else NONE (never due).
 * Also what to call when the service restarts. The first probe is due one
 * (start_)interval after now_ns, as in Docker. */
void moat_health_init(struct moat_health *h, const struct moat_env_healthcheck *hc, int64_t now_ns);

/* True when a probe should be started now. Never for NONE. */
bool moat_health_due(const struct moat_health *h, int64_t now_ns);

/* Optional: when the probe now recorded was started. Docker decides whether a
 * failure falls within the start period by the probe's start time; without
 * this call the time passed to moat_health_record is used. */
void moat_health_probe_began(struct moat_health *h, int64_t now_ns);

/* The probe timeout to apply (the healthcheck's, or the default 30s). */
int64_t moat_health_timeout_ns(const struct moat_health *h);

/* Records a probe result at now_ns (ok: exit status 0; a timeout is !ok) and
 * schedules next_ns; returns true when the status changed.
 *   - success: healthy, failures reset (this also ends the start period);
 *   - failure while still STARTING and within start_period (measured from
 *     started_ns): not counted;
 *   - otherwise failures++, and `retries` consecutive failures: unhealthy.
 * While STARTING within the start period probes run every start_interval
 * (default 5s), else every interval (default 30s). Ignored for NONE. */
bool moat_health_record(struct moat_health *h, int64_t now_ns, bool ok);

struct moat_health_probe;

/* Runs test inside the running container id, as `moat exec` would: the
 * container's own process (moat_container_process: user, env, cwd, caps...)
 * with args replaced by test, no terminal, stdin /dev/null, stdout and stderr
 * captured (the last MOAT_HEALTH_OUTPUT_MAX bytes kept).  Does not block: it
 * forks a helper that performs the exec and waits; *out's fd (a pidfd of the
 * helper) becomes readable when the probe has ended. */
int moat_health_probe_start(const struct moat_runtime *rt, const char *id, char *const *test,
                            struct moat_health_probe **out, struct moat_error **err);
int moat_health_probe_fd(const struct moat_health_probe *p);
/* After the fd is readable (blocks until the probe has ended otherwise): reaps,
 * *status = exit status (0..255, 128+signal), *output = the captured text
 * (malloc'ed, NUL-terminated, NULL when there was none).  A probe that could
 * not be started in the container (no such command, container gone...) ends
 * with status 126 (127: command not found) and the error as its output.
 * Any process the probe left behind in its process group is killed. */
int moat_health_probe_finish(struct moat_health_probe *p, int *status, char **output);
/* On timeout: ends the probe and the process it started in the container
 * (with what stayed in its process group), then reaps.  Afterwards
 * moat_health_probe_finish may still be called (status 137, the output so far). */
void moat_health_probe_kill(struct moat_health_probe *p);
/* Kills the probe first if it is still running. NULL is fine. */
void moat_health_probe_free(struct moat_health_probe *p);
