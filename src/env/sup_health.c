/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's health checks (env/sup.h): one probe at a time per service, run inside
 * its container (env/health.h), timed out by the supervisor's timer; every change of health
 * is recorded, reported as a "health" event, and may let dependents start. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "env/sup.h"

static void health_changed(struct sup_svc *v, const char *output)
{
        struct sup *s = v->s;
        const char *name = moat_health_status_name(v->h.status);
        json_object_set_new(v->rec, "health", json_string(name));
        sup_save(s);
        _cleanup_event_ struct moat_event *ev = NULL;
        if (moat_event_new(s->project, v->name, MOAT_EV_HEALTH, &ev) >= 0) {
                moat_event_set_str(ev, "status", name);
                moat_event_set_int(ev, "failures", v->h.failures);
                if (output && *output)
                        moat_event_set_str(ev, "output", output);
                sup_emit(s, ev);
        }
        sup_progress(s, "%s %s", v->name, name);
}

static void probe_done(struct sup_svc *v, bool ok, const char *output)
{
        if (moat_health_record(&v->h, sup_now_ns(), ok))
                health_changed(v, output);
}

static void probe_drop(struct sup_svc *v)
{
        if (!v->probe)
                return;
        moat_events_loop_remove_fd(v->s->loop, moat_health_probe_fd(v->probe));
        moat_health_probe_free(v->probe);
        v->probe = NULL;
}

static int probe_ready(int fd, uint32_t revents, void *userdata)
{
        (void)fd;
        (void)revents;
        struct sup_svc *v = userdata;
        int status = -1;
        _cleanup_free_ char *out = NULL;
        int r = moat_health_probe_finish(v->probe, &status, &out);
        probe_drop(v);
        if (r < 0)
                moat_warn("health check of '%s': %s", v->name, strerror(-r));
        probe_done(v, r >= 0 && status == 0, out);
        sup_schedule(v->s);
        return 0;
}

void sup_health_start(struct sup_svc *v)
{
        probe_drop(v);
        moat_health_init(&v->h, &v->hc, sup_now_ns());
}

void sup_health_stop(struct sup_svc *v)
{
        probe_drop(v);
        v->h.status = MOAT_HEALTH_NONE;
}

int64_t sup_health_deadline(const struct sup_svc *v)
{
        if (v->run != SV_RUNNING || v->h.status == MOAT_HEALTH_NONE)
                return INT64_MAX;
        return v->probe ? v->probe_deadline_ns : v->h.next_ns;
}

void sup_health_due(struct sup_svc *v, int64_t now)
{
        if (v->probe) {
                if (now < v->probe_deadline_ns)
                        return;
                moat_health_probe_kill(v->probe);
                probe_drop(v);
                probe_done(v, false, "timed out");
                return;
        }
        if (v->run != SV_RUNNING || v->h.status == MOAT_HEALTH_NONE || now < v->h.next_ns)
                return;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_health_probe_start(&v->s->rt, v->id, v->hc_test, &v->probe, &err);
        if (r >= 0)
                r = moat_events_loop_add_fd(v->s->loop, moat_health_probe_fd(v->probe), EPOLLIN, probe_ready, v);
        if (r < 0) {
                moat_warn("health check of '%s': %s", v->name, err && err->msg ? err->msg : strerror(-r));
                probe_drop(v);
                probe_done(v, false, "the probe did not start");
                return;
        }
        moat_health_probe_began(&v->h, now);
        v->probe_deadline_ns = now + moat_health_timeout_ns(&v->h);
}
