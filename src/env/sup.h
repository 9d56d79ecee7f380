/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's insides, shared by its files:
 *   supervisor.c  the daemon: start/stop, the loop, signals, NFLOG denials, on-violation
 *   sup_run.c     the services: start in dependency order, exits, restart policies, timers
 *   sup_health.c  health checks          sup_ctl.c  the control socket (restart, ps)
 *   sup_log.c     log size caps
 * Single-threaded: everything runs from the epoll loop's callbacks. */
#pragma once

#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "cgroup/cgroup.h"
#include "env/envfile.h"
#include "env/health.h"
#include "events/bus.h"
#include "events/cgroup_watch.h"
#include "net/ipam.h"
#include "net/nflog.h"
#include "runtime/container.h"

#define SUP_RESTART_BACKOFF_MIN_MS 100
#define SUP_RESTART_BACKOFF_MAX_MS 10000
#define SUP_RESTART_RESET_MS 10000   /* a service up this long starts its backoff again */
#define SUP_LOG_CHECK_MS 1000
#define SUP_LOG_MAX_DEFAULT (10LL << 20)
#define SUP_LOG_FILES_DEFAULT 2

enum sup_run {
        SV_PLANNED,   /* not started yet (waiting for its dependencies) */
        SV_RUNNING,
        SV_EXITED,    /* ended; may be restarted (restart_at) */
        SV_FAILED,    /* could not start, or a dependency failed */
        SV_STOPPED,   /* stopped by on-violation: no restart */
};

struct sup_dep {
        size_t idx;
        enum moat_env_condition cond;
        bool required;
};

struct sup;

struct sup_svc {
        struct sup *s;
        size_t idx;
        json_t *rec;                    /* its entry in s->state (borrowed) */
        const char *name, *id, *bundle, *log;
        struct in_addr addr;
        bool has_addr;
        enum moat_on_violation ov;
        enum moat_env_restart restart;
        int restart_max;
        struct sup_dep *deps;
        size_t n_deps;
        struct moat_env_healthcheck hc; /* test points into rec's strings: hc_test */
        char **hc_test;
        int64_t log_max;
        int log_files;

        enum sup_run run;
        int exit_status;                /* -1: not known */
        int restarts;
        int64_t started_ns, restart_at_ns;
        int backoff_ms;
        bool stop_requested;            /* on-violation stop/kill: never restarted */
        bool restart_requested;         /* `moat restart`: start again at once */
        bool lost;                      /* runs, but could not be watched: ended */
        int lost_status;                /* ... with this status (-1: unknown) */
        char *failure;                  /* why it is SV_FAILED */

        pid_t pid;
        int pidfd;
        struct moat_cgroup *cg;
        struct moat_cgroup_watch *w;

        struct moat_health h;
        struct moat_health_probe *probe;
        int64_t probe_deadline_ns;
};

struct sup_ctl_wait;
struct moat_control;

struct sup {
        const char *dir;
        const char *project;
        json_t *state;
        char *rtroot;
        struct moat_runtime rt;
        struct moat_ipam_net net;
        struct sup_svc *svc;
        size_t n;
        struct moat_events_loop *loop;
        struct moat_event_bus *bus;
        struct moat_event_log *log;
        struct moat_nflog *nfl;
        struct moat_violation_sink vs;
        struct moat_control *ctl;
        int sigfd, retryfd, timerfd;
        int ready;                      /* the pipe to `moat up` (-EBADF once answered) */
        bool wait_healthy;              /* up --wait: ready only when every health check passed */
        bool quit;
        int64_t log_check_ns;
        struct sup_ctl_wait *waits;     /* restarts being answered */
};

int64_t sup_now_ns(void);
void sup_emit(struct sup *s, struct moat_event *ev);
struct sup_svc *sup_svc_by_name(struct sup *s, const char *name);
int sup_save(struct sup *s);   /* state.json; failures are warned */
/* A line for `moat up` while it waits (nothing once it was answered). */
void sup_progress(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sup_run.c */
int sup_services_load(struct sup *s, struct moat_error **err);
void sup_services_free(struct sup *s);
/* Watches the services a previous supervisor started (after a restart of the supervisor). */
void sup_services_adopt(struct sup *s);
/* Starts what can start, answers `moat up` when everything is settled; call after any change. */
void sup_schedule(struct sup *s);
/* The single timer: armed to the earliest of every deadline. */
int sup_timer_ready(int fd, uint32_t revents, void *userdata);
void sup_timer_arm(struct sup *s);
/* Stops svc for good (on-violation): SIGKILL (kill) or SIGTERM (stop), no restart. */
int sup_service_stop(struct sup_svc *v, bool kill);
/* Starts it again now (stopped first if running); done is called once it runs or failed. */
int sup_service_restart(struct sup_svc *v);
void sup_set_state(struct sup_svc *v, const char *state);

/* sup_health.c */
void sup_health_start(struct sup_svc *v);          /* the service (re)started */
void sup_health_stop(struct sup_svc *v);           /* it ended: no probe runs */
void sup_health_due(struct sup_svc *v, int64_t now); /* timer: start or time out probes */
int64_t sup_health_deadline(const struct sup_svc *v); /* INT64_MAX: none */

/* sup_log.c: keeps path under max bytes with files-1 older copies (path.1 ...). */
int sup_log_cap(const char *path, int64_t max, int files);

/* sup_ctl.c */
int sup_ctl_listen(struct sup *s, struct moat_error **err);
void sup_ctl_free(struct sup *s);
void sup_ctl_service_settled(struct sup *s, struct sup_svc *v); /* a restart finished (running or failed) */
