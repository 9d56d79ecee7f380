/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's services (env/sup.h): loaded from the record `moat up` wrote, started in
 * dependency order as their conditions are met (service_started, service_healthy,
 * service_completed_successfully), watched through pidfds (the supervisor made them: it
 * collects their exit statuses), restarted by their restart policy with a backoff, and
 * the answer to `moat up` once every service has settled. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "env/launch.h"
#include "env/sup.h"
#include "runtime/state.h"

int64_t sup_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void sup_set_state(struct sup_svc *v, const char *state)
{
        json_object_set_new(v->rec, "state", json_string(state));
}

/* ---------------------------------------------------------------- loading the record */

static int restart_from_name(const char *n, enum moat_env_restart *out)
{
        for (int r = MOAT_RESTART_NO; r <= MOAT_RESTART_UNLESS_STOPPED; r++)
                if (n && strcmp(n, moat_env_restart_name((enum moat_env_restart)r)) == 0) {
                        *out = (enum moat_env_restart)r;
                        return 0;
                }
        return -EINVAL;
}

static int condition_from_name(const char *n, enum moat_env_condition *out)
{
        for (int c = MOAT_DEP_STARTED; c <= MOAT_DEP_COMPLETED; c++)
                if (n && strcmp(n, moat_env_condition_name((enum moat_env_condition)c)) == 0) {
                        *out = (enum moat_env_condition)c;
                        return 0;
                }
        return -EINVAL;
}

static int64_t jint(json_t *o, const char *key, int64_t dflt)
{
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static int load_health(struct sup_svc *v, json_t *hc)
{
        if (!json_is_object(hc))
                return 0;
        json_t *test = json_object_get(hc, "test");
        size_t i;
        json_t *a;
        json_array_foreach(test, i, a) {
                if (!json_is_string(a) || strv_push(&v->hc_test, json_string_value(a)) < 0)
                        return -EINVAL;
        }
        if (!v->hc_test)
                return 0;
        v->hc = (struct moat_env_healthcheck){
                .present = true,
                .test = v->hc_test,
                .interval_ns = jint(hc, "interval_ns", 30000000000LL),
                .timeout_ns = jint(hc, "timeout_ns", 30000000000LL),
                .start_period_ns = jint(hc, "start_period_ns", 0),
                .start_interval_ns = jint(hc, "start_interval_ns", 5000000000LL),
                .retries = (int)jint(hc, "retries", 3),
        };
        return 0;
}

static int load_service(struct sup *s, struct sup_svc *v, json_t *e)
{
        v->s = s;
        v->rec = e;
        v->pidfd = -EBADF;
        v->exit_status = -1;
        v->backoff_ms = SUP_RESTART_BACKOFF_MIN_MS;
        v->name = json_string_value(json_object_get(e, "name"));
        v->id = json_string_value(json_object_get(e, "id"));
        v->bundle = json_string_value(json_object_get(e, "bundle"));
        v->log = json_string_value(json_object_get(e, "log"));
        if (!v->name || !v->id || !v->bundle || !v->log)
                return -EBADMSG;
        const char *a = json_string_value(json_object_get(e, "address"));
        v->has_addr = a && inet_pton(AF_INET, a, &v->addr) == 1;
        const char *ov = json_string_value(json_object_get(e, "on_violation"));
        if (!ov || moat_on_violation_from_name(ov, &v->ov) < 0)
                v->ov = MOAT_ON_VIOLATION_LOG;
        if (restart_from_name(json_string_value(json_object_get(e, "restart")), &v->restart) < 0)
                v->restart = MOAT_RESTART_NO;
        v->restart_max = (int)jint(e, "restart_max", 0);
        v->log_max = jint(e, "log_max", SUP_LOG_MAX_DEFAULT);
        v->log_files = (int)jint(e, "log_files", SUP_LOG_FILES_DEFAULT);
        if (load_health(v, json_object_get(e, "healthcheck")) < 0)
                return -EBADMSG;
        /* a service the record shows as started before a supervisor restart is left as it is */
        const char *st = json_string_value(json_object_get(e, "state"));
        v->run = st && strcmp(st, "planned") != 0 ? SV_RUNNING : SV_PLANNED;
        return 0;
}

static int load_deps(struct sup *s, struct sup_svc *v)
{
        json_t *deps = json_object_get(v->rec, "depends_on");
        v->deps = calloc(json_array_size(deps) + 1, sizeof(*v->deps));
        if (!v->deps)
                return -ENOMEM;
        size_t i;
        json_t *d;
        json_array_foreach(deps, i, d) {
                struct sup_svc *t = sup_svc_by_name(s, json_string_value(json_object_get(d, "service")));
                struct sup_dep *dep = &v->deps[v->n_deps];
                if (!t || condition_from_name(json_string_value(json_object_get(d, "condition")), &dep->cond) < 0)
                        return -EBADMSG;
                dep->idx = t->idx;
                dep->required = !json_is_false(json_object_get(d, "required"));
                v->n_deps++;
        }
        return 0;
}

int sup_services_load(struct sup *s, struct moat_error **err)
{
        json_t *svcs = json_object_get(s->state, "services");
        s->svc = calloc(json_array_size(svcs) + 1, sizeof(*s->svc));
        if (!s->svc)
                return -ENOMEM;
        size_t i;
        json_t *e;
        json_array_foreach(svcs, i, e) {
                struct sup_svc *v = &s->svc[s->n];
                v->idx = s->n;
                int r = load_service(s, v, e);
                if (r < 0)
                        return moat_error_input(err, r, "the record in '%s': service %zu is incomplete", s->dir, i);
                s->n++;
        }
        for (size_t k = 0; k < s->n; k++) {
                int r = load_deps(s, &s->svc[k]);
                if (r < 0)
                        return moat_error_input(err, r, "the record in '%s': service '%s': bad depends_on", s->dir,
                                                s->svc[k].name);
        }
        return 0;
}

static void watch_free(struct sup_svc *v)
{
        if (v->w) {
                moat_cgroup_watch_detach(v->w, v->s->loop);
                moat_cgroup_watch_free(v->w);
                v->w = NULL;
        }
        moat_cgroup_free(v->cg);
        v->cg = NULL;
        if (v->pidfd >= 0) {
                moat_events_loop_remove_fd(v->s->loop, v->pidfd);
                close(v->pidfd);
                v->pidfd = -EBADF;
        }
}

void sup_services_free(struct sup *s)
{
        for (size_t k = 0; s->svc && k < s->n; k++) {
                struct sup_svc *v = &s->svc[k];
                sup_health_stop(v);
                watch_free(v);
                free(v->deps);
                free(v->hc_test); /* the strings belong to the record */
                free(v->failure);
        }
        free(s->svc);
        s->svc = NULL;
}

/* ---------------------------------------------------------------- watching one service */

static int exit_ready(int fd, uint32_t revents, void *userdata);

/* pidfd and cgroup events of the container as it runs now. */
static int watch(struct sup_svc *v)
{
        struct sup *s = v->s;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int rootfd = moat_root_open(s->rtroot, false, &err);
        _cleanup_close_ int dirfd = -EBADF;
        struct moat_state *st = NULL;
        int r = rootfd < 0 ? rootfd : moat_state_dir_open(rootfd, v->id, true, &dirfd, &err);
        if (r >= 0)
                r = moat_state_read(dirfd, v->id, &st, &err);
        if (r < 0) {
                moat_warn("service '%s': no container state: %s", v->name, err && err->msg ? err->msg : strerror(-r));
                return r;
        }
        v->pid = st->pid;
        v->pidfd = moat_state_pidfd(st);
        v->lost_status = -1;
        if (v->pidfd < 0) {
                /* gone already: pidfd_open refuses a zombie here; ours (we made it) it still
                 * is, its pid not reusable until we reap it: collect the status directly */
                siginfo_t si = { 0 };
                if (waitid(P_PID, (id_t)st->pid, &si, WEXITED | WNOHANG) == 0 && si.si_pid == st->pid)
                        v->lost_status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
        }
        if (v->pidfd >= 0 && (r = moat_events_loop_add_fd(s->loop, v->pidfd, EPOLLIN, exit_ready, v)) < 0) {
                moat_state_free(st);
                return r;
        }
        if (st->cgroup_path && moat_cgroup_open(st->cgroup_path, &v->cg, &err) >= 0) {
                r = moat_cgroup_watch_new(v->cg, s->project, v->name, moat_event_bus_emit_cb, s->bus, &v->w, &err);
                if (r >= 0)
                        r = moat_cgroup_watch_attach(v->w, s->loop);
                if (r < 0)
                        moat_warn("service '%s': no cgroup events: %s", v->name,
                                  err && err->msg ? err->msg : strerror(-r));
        }
        moat_state_free(st);
        return 0;
}

static void emit_simple(struct sup_svc *v, enum moat_event_type t, const char *key, int64_t val)
{
        _cleanup_event_ struct moat_event *ev = NULL;
        if (moat_event_new(v->s->project, v->name, t, &ev) < 0)
                return;
        if (key)
                moat_event_set_int(ev, key, val);
        sup_emit(v->s, ev);
}

static void fail(struct sup_svc *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct sup_svc *v, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        free(v->failure);
        if (vasprintf(&v->failure, fmt, ap) < 0)
                v->failure = NULL;
        va_end(ap);
        v->run = SV_FAILED;
        sup_set_state(v, "failed");
        json_object_set_new(v->rec, "error", json_string(v->failure ? v->failure : "failed"));
        moat_warn("service '%s': %s", v->name, v->failure ? v->failure : "failed");
}

void sup_progress(struct sup *s, const char *fmt, ...)
{
        if (s->ready < 0)
                return;
        char line[512] = "P ";
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + 2, sizeof line - 3, fmt, ap);
        va_end(ap);
        strcat(line, "\n");
        (void)write_all(s->ready, line, strlen(line));
}

static int launch(struct sup_svc *v)
{
        struct sup *s = v->s;
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_env_launch l = { .rt = &s->rt, .project = s->project, .id = v->id, .bundle = v->bundle,
                                     .log = v->log, .addr = v->addr, .net = &s->net };
        const char *iso = json_string_value(json_object_get(v->rec, "isolation"));
        l.vm = iso && STREQ(iso, "vm");
        char host_if[IFNAMSIZ] = "";
        pid_t pid = 0;
        watch_free(v);
        int r = moat_env_unlaunch(&s->rt, v->id, &err); /* what is left of a previous run */
        moat_error_free(TAKE_PTR(err));
        sup_set_state(v, "starting");
        sup_save(s);
        r = moat_env_launch(&l, &pid, host_if, &err);
        if (r < 0) {
                fail(v, "cannot start: %s", err && err->msg ? err->msg : strerror(-r));
                sup_save(s);
                return r;
        }
        v->run = SV_RUNNING;
        v->exit_status = -1;
        v->started_ns = sup_now_ns();
        json_object_set_new(v->rec, "pid", json_integer(pid));
        json_object_set_new(v->rec, "host_if", json_string(host_if));
        json_object_del(v->rec, "exit_status");
        json_object_del(v->rec, "error");
        sup_set_state(v, "running");
        if (watch(v) < 0 || v->pidfd < 0) {
                /* it ended before we could open it (or its state is unreadable): an exit of
                 * unknown status, handled from the timer (not from inside this launch) */
                moat_debug("service '%s': its process is gone already", v->name);
                v->lost = true;
                v->restart_at_ns = 0;
        }
        sup_health_start(v);
        json_object_set_new(v->rec, "health", json_string(moat_health_status_name(v->h.status)));
        sup_save(s);
        emit_simple(v, MOAT_EV_START, "pid", pid);
        sup_progress(s, "%s started", v->name);
        return 0;
}

/* ---------------------------------------------------------------- exits and restarts */

static bool wants_restart(const struct sup_svc *v)
{
        if (v->stop_requested)
                return false;
        switch (v->restart) {
        case MOAT_RESTART_NO: return false;
        case MOAT_RESTART_ALWAYS:
        case MOAT_RESTART_UNLESS_STOPPED: return true;
        case MOAT_RESTART_ON_FAILURE:
                return v->exit_status != 0 && (v->restart_max == 0 || v->restarts < v->restart_max);
        }
        return false;
}

static void restart_now(struct sup_svc *v, bool by_policy);

/* The service's init is gone: status as collected (-1: unknown). */
static void service_ended(struct sup_svc *v, int status)
{
        struct sup *s = v->s;
        if (v->w)
                moat_cgroup_watch_process(v->w); /* an OOM kill just before the exit comes first */
        v->exit_status = status;
        _cleanup_event_ struct moat_event *ev = NULL;
        if (moat_event_new(s->project, v->name, MOAT_EV_EXIT, &ev) >= 0) {
                moat_event_set_int(ev, "pid", v->pid);
                if (v->exit_status >= 0)
                        moat_event_set_int(ev, "status", v->exit_status);
                sup_emit(s, ev);
        }
        watch_free(v);
        sup_health_stop(v);
        v->run = v->stop_requested ? SV_STOPPED : SV_EXITED;
        sup_set_state(v, v->stop_requested ? "stopped" : "exited");
        json_object_del(v->rec, "pid");
        if (v->exit_status >= 0)
                json_object_set_new(v->rec, "exit_status", json_integer(v->exit_status));
        json_object_set_new(v->rec, "health", json_string(""));
        if (v->restart_requested) {
                sup_save(s);
                v->restart_requested = false;
                v->stop_requested = false;
                restart_now(v, false);
        } else if (wants_restart(v)) {
                int64_t now = sup_now_ns();
                if (now - v->started_ns > (int64_t)SUP_RESTART_RESET_MS * 1000000)
                        v->backoff_ms = SUP_RESTART_BACKOFF_MIN_MS;
                v->restart_at_ns = now + (int64_t)v->backoff_ms * 1000000;
                v->backoff_ms = v->backoff_ms * 2 > SUP_RESTART_BACKOFF_MAX_MS ? SUP_RESTART_BACKOFF_MAX_MS
                                                                               : v->backoff_ms * 2;
                sup_set_state(v, "restarting");
        }
        sup_save(s);
        sup_schedule(s);
}

static int exit_ready(int fd, uint32_t revents, void *userdata)
{
        (void)revents;
        struct sup_svc *v = userdata;
        siginfo_t si = { 0 };
        int status = -1, r;
        /* Our child (we created it, or it was reparented to us, the subreaper): its status.
         * Blocking: the pidfd says it exited, the zombie is there or comes at once; a process
         * not ours (after a supervisor restart) is ECHILD at once: unknown. */
        while ((r = waitid((idtype_t)3 /* P_PIDFD */, (id_t)fd, &si, WEXITED)) < 0 && errno == EINTR)
                ;
        if (r == 0 && si.si_pid > 0)
                status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
        else
                moat_warn("service '%s' (pid %d) ended: no exit status (%s)", v->name, (int)v->pid,
                          r < 0 ? strerror(errno) : "not waitable");
        service_ended(v, status);
        return 0;
}

static void restart_now(struct sup_svc *v, bool by_policy)
{
        v->restart_at_ns = 0;
        if (by_policy)
                v->restarts++;
        json_object_set_new(v->rec, "restarts", json_integer(v->restarts));
        if (launch(v) >= 0 && by_policy)
                emit_simple(v, MOAT_EV_RESTART, "restarts", v->restarts);
        sup_ctl_service_settled(v->s, v);
}

int sup_service_restart(struct sup_svc *v)
{
        if (v->run == SV_RUNNING) {
                v->restart_requested = true;
                _cleanup_error_ struct moat_error *err = NULL;
                int r = moat_container_kill(&v->s->rt, v->id, SIGTERM, false, &err);
                if (r < 0 && r != -ESRCH) {
                        v->restart_requested = false;
                        return r;
                }
                return 0; /* exit_ready starts it again */
        }
        v->stop_requested = false;
        restart_now(v, false);
        return 0;
}

int sup_service_stop(struct sup_svc *v, bool kill)
{
        v->stop_requested = true;
        v->restart_at_ns = 0;
        if (v->run != SV_RUNNING) {
                if (v->run == SV_EXITED) {
                        v->run = SV_STOPPED;
                        sup_set_state(v, "stopped");
                        sup_save(v->s);
                }
                return 0;
        }
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_container_kill(&v->s->rt, v->id, kill ? SIGKILL : SIGTERM, kill, &err);
        if (r < 0)
                moat_warn("stopping '%s': %s", v->name, err && err->msg ? err->msg : strerror(-r));
        return r;
}

void sup_services_adopt(struct sup *s)
{
        for (size_t k = 0; k < s->n; k++) {
                struct sup_svc *v = &s->svc[k];
                if (v->run != SV_RUNNING)
                        continue;
                if (watch(v) < 0 || v->pidfd < 0) {
                        v->run = SV_EXITED; /* gone while no supervisor watched */
                        sup_set_state(v, "exited");
                        continue;
                }
                v->started_ns = sup_now_ns();
                sup_health_start(v);
        }
}

/* ---------------------------------------------------------------- starting in order */

/* 1: met, 0: not yet, -1: can never be met (why in *why) */
static int dep_state(struct sup *s, const struct sup_dep *d, const char **why)
{
        const struct sup_svc *t = &s->svc[d->idx];
        if (t->run == SV_FAILED || t->run == SV_STOPPED) {
                *why = t->run == SV_FAILED ? "failed to start" : "was stopped";
                return -1;
        }
        switch (d->cond) {
        case MOAT_DEP_STARTED:
                return t->run != SV_PLANNED;
        case MOAT_DEP_HEALTHY:
                if (t->run == SV_RUNNING && t->h.status == MOAT_HEALTH_HEALTHY)
                        return 1;
                if (t->run == SV_RUNNING && t->h.status == MOAT_HEALTH_UNHEALTHY) {
                        *why = "is unhealthy";
                        return -1;
                }
                if (t->run == SV_EXITED && !t->restart_at_ns) {
                        *why = "exited";
                        return -1;
                }
                return 0;
        case MOAT_DEP_COMPLETED:
                if (t->run == SV_EXITED && t->exit_status == 0)
                        return 1;
                if (t->run == SV_EXITED && !t->restart_at_ns) {
                        *why = t->exit_status < 0 ? "exited with an unknown status" : "exited with an error";
                        return -1;
                }
                return 0;
        }
        return 0;
}

static void start_ready_ones(struct sup *s)
{
        bool again = true;
        while (again && !s->quit) {
                again = false;
                for (size_t k = 0; k < s->n; k++) {
                        struct sup_svc *v = &s->svc[k];
                        if (v->run != SV_PLANNED)
                                continue;
                        int ok = 1;
                        for (size_t d = 0; d < v->n_deps && ok == 1; d++) {
                                const char *why = NULL;
                                int st = dep_state(s, &v->deps[d], &why);
                                if (st < 0 && !v->deps[d].required)
                                        st = 1;
                                if (st < 0) {
                                        const struct sup_svc *t = &s->svc[v->deps[d].idx];
                                        if (t->exit_status > 0)
                                                fail(v, "dependency '%s' %s (status %d)", t->name, why, t->exit_status);
                                        else
                                                fail(v, "dependency '%s' %s", t->name, why);
                                        sup_save(s);
                                        again = true;
                                }
                                ok = st;
                        }
                        if (ok == 1) {
                                launch(v);
                                again = true; /* a service_started dependent may go now */
                        }
                }
        }
}

/* Settled: nothing planned, nothing waiting for its first health result when asked to. */
static bool settled(struct sup *s)
{
        for (size_t k = 0; k < s->n; k++) {
                const struct sup_svc *v = &s->svc[k];
                if (v->run == SV_PLANNED)
                        return false;
                if (s->wait_healthy && v->run == SV_RUNNING && v->h.status == MOAT_HEALTH_STARTING)
                        return false;
        }
        return true;
}

static void answer_up(struct sup *s)
{
        if (s->ready < 0 || !settled(s))
                return;
        _cleanup_free_ char *msg = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&msg, &len);
        if (!m)
                return;
        for (size_t k = 0; k < s->n; k++) {
                const struct sup_svc *v = &s->svc[k];
                if (v->run == SV_FAILED)
                        fprintf(m, "%sservice '%s': %s", ftell(m) ? "; " : "", v->name, v->failure ? v->failure : "failed");
                else if (s->wait_healthy && v->run == SV_RUNNING && v->h.status == MOAT_HEALTH_UNHEALTHY)
                        fprintf(m, "%sservice '%s' is unhealthy", ftell(m) ? "; " : "", v->name);
        }
        fclose(m);
        _cleanup_free_ char *line = NULL;
        if (asprintf(&line, "%s%s\n", len ? "E " : "K", len ? msg : "") >= 0)
                (void)write_all(s->ready, line, strlen(line));
        close(s->ready);
        s->ready = -EBADF;
}

void sup_schedule(struct sup *s)
{
        start_ready_ones(s);
        answer_up(s);
        sup_timer_arm(s);
}

/* ---------------------------------------------------------------- the timer */

void sup_timer_arm(struct sup *s)
{
        int64_t next = s->log_check_ns;
        for (size_t k = 0; k < s->n; k++) {
                const struct sup_svc *v = &s->svc[k];
                if (v->restart_at_ns && v->restart_at_ns < next)
                        next = v->restart_at_ns;
                if (v->lost)
                        next = 1;
                int64_t h = sup_health_deadline(v);
                if (h < next)
                        next = h;
        }
        if (next <= 0)
                next = 1;
        struct itimerspec its = { .it_value = { .tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL } };
        if (timerfd_settime(s->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                moat_warn("timerfd: %s", strerror(errno));
}

int sup_timer_ready(int fd, uint32_t revents, void *userdata)
{
        (void)revents;
        struct sup *s = userdata;
        uint64_t ticks;
        if (read(fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                return -errno;
        int64_t now = sup_now_ns();
        for (size_t k = 0; k < s->n && !s->quit; k++) {
                struct sup_svc *v = &s->svc[k];
                if (v->run == SV_RUNNING && v->pidfd < 0 && v->lost) {
                        v->lost = false;
                        service_ended(v, v->lost_status); /* gone before we could watch it */
                        continue;
                }
                if (v->restart_at_ns && v->restart_at_ns <= now && v->run != SV_RUNNING)
                        restart_now(v, true);
                if (sup_health_deadline(v) <= now)
                        sup_health_due(v, now);
        }
        if (s->log_check_ns <= now) {
                for (size_t k = 0; k < s->n; k++) {
                        int r = sup_log_cap(s->svc[k].log, s->svc[k].log_max, s->svc[k].log_files);
                        if (r < 0)
                                moat_warn("log of '%s': %s", s->svc[k].name, strerror(-r));
                }
                s->log_check_ns = now + (int64_t)SUP_LOG_CHECK_MS * 1000000;
        }
        sup_schedule(s);
        return 0;
}
