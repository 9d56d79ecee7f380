/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's control socket (env/sup.h, env/control.h).  Requests:
 *   {"op":"status"}                        -> {"project", "services":[{name,state,health,pid,restarts}]}
 *   {"op":"restart","services":[NAME...]}  -> answered once each named service (all when none
 *                                             are named) runs again or failed to:
 *                                             {"services":[{name,state,error?}]}
 * Names are checked before anything is done: one unknown name refuses the whole request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "env/control.h"
#include "env/sup.h"

struct sup_ctl_wait {
        struct sup_ctl_wait *next;
        struct moat_control_conn *conn;
        bool *pending; /* per service */
        size_t n_pending;
        json_t *done;  /* [{name,state,error?}] */
};

static json_t *svc_json(const struct sup_svc *v)
{
        json_t *o = json_pack("{s:s, s:O}", "name", v->name, "state", json_object_get(v->rec, "state"));
        if (!o)
                return NULL;
        static const char *const keys[] = { "health", "pid", "restarts", "exit_status", "error" };
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
                json_t *x = json_object_get(v->rec, keys[k]);
                if (x)
                        json_object_set(o, keys[k], x);
        }
        return o;
}

/* {"error": "<what>[ '<name>']"} */
static json_t *error_reply(const char *what, const char *name)
{
        return name ? json_pack("{s:o}", "error", json_sprintf("%s '%s'", what, name))
                    : json_pack("{s:s}", "error", what);
}

static void do_status(struct sup *s, struct moat_control_conn *conn)
{
        json_t *a = json_array();
        for (size_t k = 0; k < s->n; k++)
                json_array_append_new(a, svc_json(&s->svc[k]));
        moat_control_reply(conn, json_pack("{s:s, s:o}", "project", s->project, "services", a));
}

static void do_restart(struct sup *s, struct moat_control_conn *conn, json_t *req)
{
        json_t *names = json_object_get(req, "services");
        if (names && !json_is_array(names)) {
                moat_control_reply(conn, error_reply("'services' must be a list of names", NULL));
                return;
        }
        struct sup_ctl_wait *w = calloc(1, sizeof(*w));
        if (w)
                w->pending = calloc(s->n + 1, sizeof(bool));
        if (!w || !w->pending || !(w->done = json_array())) {
                if (w)
                        free(w->pending);
                free(w);
                moat_control_reply(conn, error_reply("out of memory", NULL));
                return;
        }
        size_t i;
        json_t *n;
        json_array_foreach(names, i, n) {
                struct sup_svc *v = sup_svc_by_name(s, json_string_value(n));
                if (!v) {
                        moat_control_reply(conn, json_is_string(n) ? error_reply("no service", json_string_value(n))
                                                                   : error_reply("service names are strings", NULL));
                        json_decref(w->done);
                        free(w->pending);
                        free(w);
                        return;
                }
                w->pending[v->idx] = true;
        }
        if (json_array_size(names) == 0)
                for (size_t k = 0; k < s->n; k++)
                        w->pending[k] = true;
        for (size_t k = 0; k < s->n; k++)
                w->n_pending += w->pending[k];
        w->conn = conn;
        w->next = s->waits;
        s->waits = w;
        for (size_t k = 0; k < s->n; k++) {
                if (!w->pending[k])
                        continue;
                struct sup_svc *v = &s->svc[k];
                int r = sup_service_restart(v);
                if (r < 0) {
                        json_object_set_new(v->rec, "error", json_sprintf("cannot stop it: %s", strerror(-r)));
                        sup_ctl_service_settled(s, v);
                }
        }
}

static void handle(struct moat_control_conn *conn, json_t *req, void *userdata)
{
        struct sup *s = userdata;
        const char *op = json_string_value(json_object_get(req, "op"));
        if (strcmp(op, "status") == 0)
                do_status(s, conn);
        else if (strcmp(op, "restart") == 0)
                do_restart(s, conn, req);
        else
                moat_control_reply(conn, error_reply("unknown op", op));
}

void sup_ctl_service_settled(struct sup *s, struct sup_svc *v)
{
        for (struct sup_ctl_wait **pw = &s->waits; *pw;) {
                struct sup_ctl_wait *w = *pw;
                if (w->pending[v->idx]) {
                        w->pending[v->idx] = false;
                        w->n_pending--;
                        json_array_append_new(w->done, svc_json(v));
                }
                if (w->n_pending > 0) {
                        pw = &w->next;
                        continue;
                }
                *pw = w->next;
                moat_control_reply(w->conn, json_pack("{s:o}", "services", w->done));
                free(w->pending);
                free(w);
        }
}

int sup_ctl_listen(struct sup *s, struct moat_error **err)
{
        return moat_control_listen(s->dir, s->loop, handle, s, &s->ctl, err);
}

void sup_ctl_free(struct sup *s)
{
        while (s->waits) {
                struct sup_ctl_wait *w = s->waits;
                s->waits = w->next;
                json_decref(w->done);
                free(w->pending);
                free(w); /* its conn is closed with the control */
        }
        if (s->ctl)
                moat_control_free(s->ctl);
        s->ctl = NULL;
}
