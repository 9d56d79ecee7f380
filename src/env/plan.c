/* SPDX-License-Identifier: Apache-2.0 */
/* The resolved plan of an environment (see plan.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "env/plan.h"

extern char **environ;

int moat_project_name(const char *name, bool strict, char **out, struct moat_error **err)
{
        _cleanup_free_ char *n = malloc(strlen(name) + 1);
        if (!n)
                return -ENOMEM;
        size_t j = 0;
        for (const char *p = name; *p; p++) {
                char ch = *p;
                bool okc = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
                if (strict && !okc)
                        return moat_error_input(err, EINVAL,
                                                "'%s' is not a project name: use lowercase letters, digits, '_' "
                                                "and '-'", name);
                if (!strict)
                        ch = (char)tolower((unsigned char)ch);
                okc = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
                if (okc && (j > 0 || isalnum((unsigned char)ch)))
                        n[j++] = ch;
                else if (strict)
                        return moat_error_input(err, EINVAL, "'%s' is not a project name: it must start with a "
                                                             "letter or a digit", name);
        }
        n[j] = '\0';
        if (!j)
                return moat_error_input(err, EINVAL,
                                        "cannot make a project name of '%s': give one with -p NAME", name);
        if (j > 63)
                n[63] = '\0';
        *out = TAKE_PTR(n);
        return 0;
}

ssize_t moat_plan_service_index(const struct moat_plan *p, const char *name)
{
        for (size_t i = 0; i < p->file->n_services; i++)
                if (STREQ(p->file->services[i].name, name))
                        return (ssize_t)i;
        return -ENOENT;
}

bool moat_plan_service_on(const struct moat_plan *p, size_t i, const char *network)
{
        const struct moat_env_service *s = &p->file->services[i];
        if (s->n_networks == 0)
                return STREQ(network, "default");
        for (size_t k = 0; k < s->n_networks; k++)
                if (STREQ(s->networks[k].name, network))
                        return true;
        return false;
}

static bool share_network(const struct moat_plan *p, size_t a, size_t b)
{
        for (size_t k = 0; k < p->n_networks; k++)
                if (moat_plan_service_on(p, a, p->networks[k].name) && moat_plan_service_on(p, b, p->networks[k].name))
                        return true;
        return false;
}

bool moat_plan_can_reach(const struct moat_plan *p, size_t from, size_t to, uint16_t port)
{
        for (size_t i = 0; i < p->n_edges; i++) {
                const struct moat_plan_edge *e = &p->edges[i];
                if (e->from != from || e->to != to)
                        continue;
                if (e->n_ports == 0)
                        return true;
                if (port == 0)
                        return false; /* "any port" asked, only some allowed */
                for (size_t k = 0; k < e->n_ports; k++)
                        if (e->ports[k] == port)
                                return true;
                return false;
        }
        return false;
}

/* ------------------------------------------------------------ checks */

static int add_network(struct moat_plan *p, const char *name, bool internal, bool is_default)
{
        for (size_t i = 0; i < p->n_networks; i++)
                if (STREQ(p->networks[i].name, name))
                        return 0;
        struct moat_plan_network *n = realloc(p->networks, (p->n_networks + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        p->networks = n;
        n = &p->networks[p->n_networks];
        memset(n, 0, sizeof(*n));
        n->internal = internal;
        n->is_default = is_default;
        if (!(n->name = strdup(name)) || asprintf(&n->full_name, "%s_%s", p->project, name) < 0) {
                free(n->name);
                return -ENOMEM;
        }
        p->n_networks++;
        return 0;
}

static int check_refs(struct moat_plan *p, struct moat_error **err)
{
        struct moat_envfile *f = p->file;
        bool uses_default = false;
        for (size_t i = 0; i < f->n_services; i++) {
                struct moat_env_service *s = &f->services[i];
                if (s->n_networks == 0)
                        uses_default = true;
                for (size_t k = 0; k < s->n_networks; k++) {
                        const char *n = s->networks[k].name;
                        bool found = STREQ(n, "default");
                        for (size_t j = 0; j < f->n_networks && !found; j++)
                                found = STREQ(f->networks[j].name, n);
                        if (!found)
                                return moat_error_input(err, EINVAL, "%s:%d: service '%s': 'networks': '%s' is not "
                                                        "declared in the top-level 'networks'", f->path, s->line,
                                                        s->name, n);
                        if (STREQ(n, "default"))
                                uses_default = true;
                }
                for (size_t k = 0; k < s->n_mounts; k++) {
                        const struct moat_env_mount *m = &s->mounts[k];
                        if (m->type != MOAT_MOUNT_VOLUME || !m->source)
                                continue;
                        bool found = false;
                        for (size_t j = 0; j < f->n_volumes && !found; j++)
                                found = STREQ(f->volumes[j].name, m->source);
                        if (!found)
                                return moat_error_input(err, EINVAL, "%s:%d: service '%s': 'volumes': '%s' is not "
                                                        "declared in the top-level 'volumes' (a host path starts "
                                                        "with ./ or /)", f->path, m->line, s->name, m->source);
                }
                for (size_t k = 0; k < s->n_depends_on; k++) {
                        struct moat_env_dep *d = &s->depends_on[k];
                        if (STREQ(d->service, s->name))
                                return moat_error_input(err, EINVAL, "%s:%d: service '%s': 'depends_on': a service "
                                                        "cannot depend on itself", f->path, d->line, s->name);
                        if (!moat_envfile_service(f, d->service) && !d->required) {
                                moat_warn("%s:%d: service '%s': 'depends_on': no service '%s' (required: false); "
                                          "ignored", f->path, d->line, s->name, d->service);
                                continue;
                        }
                        if (!moat_envfile_service(f, d->service))
                                return moat_error_input(err, EINVAL, "%s:%d: service '%s': 'depends_on': no service "
                                                        "'%s'", f->path, d->line, s->name, d->service);
                }
                for (size_t k = 0; k < s->n_allow; k++)
                        if (!moat_envfile_service(f, s->allow[k].service))
                                return moat_error_input(err, EINVAL, "%s:%d: service '%s': 'x-moat.allow': no "
                                                        "service '%s'", f->path, s->allow[k].line, s->name,
                                                        s->allow[k].service);
        }
        int r;
        for (size_t j = 0; j < f->n_networks; j++)
                if ((r = add_network(p, f->networks[j].name, f->networks[j].internal,
                                     STREQ(f->networks[j].name, "default"))) < 0)
                        return r;
        if (uses_default && (r = add_network(p, "default", false, true)) < 0)
                return r;
        return 0;
}

/* ------------------------------------------------------------ order */

struct dfs {
        struct moat_plan *p;
        int *state;    /* 0 new, 1 on the stack, 2 done */
        size_t *stack;
        size_t depth;
        size_t n_order;
        struct moat_error **err;
};

static int visit(struct dfs *d, size_t i)
{
        struct moat_envfile *f = d->p->file;
        if (d->state[i] == 2)
                return 0;
        if (d->state[i] == 1) {
                /* a cycle: from i's place on the stack to here */
                size_t from = 0;
                while (d->stack[from] != i)
                        from++;
                _cleanup_free_ char *msg = NULL;
                size_t len = 0;
                FILE *m = open_memstream(&msg, &len);
                if (!m)
                        return -ENOMEM;
                for (size_t k = from; k < d->depth; k++)
                        fprintf(m, "%s -> ", f->services[d->stack[k]].name);
                fprintf(m, "%s", f->services[i].name);
                fclose(m);
                return moat_error_input(d->err, ELOOP, "%s: services depend on each other in a cycle: %s", f->path,
                                        msg);
        }
        d->state[i] = 1;
        d->stack[d->depth++] = i;
        const struct moat_env_service *s = &f->services[i];
        for (size_t k = 0; k < s->n_depends_on; k++) {
                ssize_t j = moat_plan_service_index(d->p, s->depends_on[k].service);
                if (j < 0)
                        continue;
                int r = visit(d, (size_t)j);
                if (r < 0)
                        return r;
        }
        d->depth--;
        d->state[i] = 2;
        d->p->order[d->n_order++] = i;
        return 0;
}

static int make_order(struct moat_plan *p, struct moat_error **err)
{
        size_t n = p->file->n_services;
        _cleanup_free_ int *state = calloc(n, sizeof(int));
        _cleanup_free_ size_t *stack = calloc(n + 1, sizeof(size_t));
        p->order = calloc(n, sizeof(size_t));
        if (!state || !stack || !p->order)
                return -ENOMEM;
        struct dfs d = { .p = p, .state = state, .stack = stack, .err = err };
        for (size_t i = 0; i < n; i++) {
                int r = visit(&d, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ------------------------------------------------------------ reachability */

static int add_edge(struct moat_plan *p, size_t from, size_t to, uint16_t port, bool dep)
{
        for (size_t i = 0; i < p->n_edges; i++) {
                struct moat_plan_edge *e = &p->edges[i];
                if (e->from != from || e->to != to)
                        continue;
                e->via_depends_on |= dep;
                if (e->n_ports == 0)
                        return 0;
                if (port == 0) {
                        free(e->ports);
                        e->ports = NULL;
                        e->n_ports = 0;
                        return 0;
                }
                for (size_t k = 0; k < e->n_ports; k++)
                        if (e->ports[k] == port)
                                return 0;
                uint16_t *np = realloc(e->ports, (e->n_ports + 1) * sizeof(uint16_t));
                if (!np)
                        return -ENOMEM;
                e->ports = np;
                e->ports[e->n_ports++] = port;
                return 0;
        }
        struct moat_plan_edge *ne = realloc(p->edges, (p->n_edges + 1) * sizeof(*ne));
        if (!ne)
                return -ENOMEM;
        p->edges = ne;
        ne = &p->edges[p->n_edges];
        memset(ne, 0, sizeof(*ne));
        ne->from = from;
        ne->to = to;
        ne->via_depends_on = dep;
        if (port) {
                if (!(ne->ports = malloc(sizeof(uint16_t))))
                        return -ENOMEM;
                ne->ports[0] = port;
                ne->n_ports = 1;
        }
        p->n_edges++;
        return 0;
}

static int edge_cmp(const void *a, const void *b)
{
        const struct moat_plan_edge *x = a, *y = b;
        if (x->from != y->from)
                return x->from < y->from ? -1 : 1;
        return x->to < y->to ? -1 : x->to > y->to;
}

static bool allows(const struct moat_env_service *s, const char *name)
{
        for (size_t k = 0; k < s->n_allow; k++)
                if (STREQ(s->allow[k].service, name))
                        return true;
        return false;
}

static int make_edges(struct moat_plan *p, struct moat_error **err)
{
        struct moat_envfile *f = p->file;
        int r;
        for (size_t a = 0; a < f->n_services; a++) {
                const struct moat_env_service *s = &f->services[a];
                if (p->policy == MOAT_POLICY_OPEN) {
                        for (size_t b = 0; b < f->n_services; b++)
                                if (a != b && share_network(p, a, b) && (r = add_edge(p, a, b, 0, false)) < 0)
                                        return r;
                }
                for (size_t k = 0; k < s->n_depends_on; k++) {
                        ssize_t bi = moat_plan_service_index(p, s->depends_on[k].service);
                        if (bi < 0)
                                continue; /* required: false and absent */
                        size_t b = (size_t)bi;
                        if (allows(s, s->depends_on[k].service))
                                continue; /* x-moat.allow names its ports: it decides */
                        if (!share_network(p, a, b)) {
                                moat_debug("%s depends on %s without a shared network: order only", s->name,
                                           f->services[b].name);
                                continue;
                        }
                        if ((r = add_edge(p, a, b, 0, true)) < 0)
                                return r;
                }
                for (size_t k = 0; k < s->n_allow; k++) {
                        size_t b = (size_t)moat_plan_service_index(p, s->allow[k].service);
                        if (a == b)
                                continue;
                        if (!share_network(p, a, b))
                                return moat_error_input(err, EINVAL, "%s:%d: service '%s': 'x-moat.allow': '%s' is "
                                                        "on no network of '%s'", f->path, s->allow[k].line, s->name,
                                                        s->allow[k].service, s->name);
                        if ((r = add_edge(p, a, b, s->allow[k].port, false)) < 0)
                                return r;
                }
        }
        if (p->n_edges)
                qsort(p->edges, p->n_edges, sizeof(*p->edges), edge_cmp);
        return 0;
}

static const char *env_get(char *const *env, const char *name)
{
        size_t l = strlen(name);
        for (; env && *env; env++)
                if (!strncmp(*env, name, l) && (*env)[l] == '=')
                        return *env + l + 1;
        return NULL;
}

int moat_plan_build(struct moat_envfile *f, const char *project, char *const *env, struct moat_plan **out,
                    struct moat_error **err)
{
        _cleanup_plan_ struct moat_plan *p = calloc(1, sizeof(*p));
        if (!p) {
                moat_envfile_free(f);
                return -ENOMEM;
        }
        p->file = f;
        p->policy = f->policy;
        const char *envname = env_get(env ? env : environ, "COMPOSE_PROJECT_NAME");
        int r;
        if (project)
                r = moat_project_name(project, true, &p->project, err);
        else if (envname && *envname)
                r = moat_project_name(envname, true, &p->project, err);
        else if (f->name)
                r = moat_project_name(f->name, true, &p->project, err);
        else {
                const char *base = strrchr(f->dir, '/');
                base = base && base[1] ? base + 1 : f->dir;
                r = moat_project_name(base, false, &p->project, err);
        }
        if (r < 0)
                return r;
        if ((r = check_refs(p, err)) < 0)
                return r;
        if ((r = make_order(p, err)) < 0)
                return r;
        if ((r = make_edges(p, err)) < 0)
                return r;
        *out = TAKE_PTR(p);
        return 0;
}

void moat_plan_free(struct moat_plan *p)
{
        if (!p)
                return;
        moat_envfile_free(p->file);
        free(p->project);
        free(p->order);
        for (size_t i = 0; i < p->n_networks; i++) {
                free(p->networks[i].name);
                free(p->networks[i].full_name);
        }
        free(p->networks);
        for (size_t i = 0; i < p->n_edges; i++)
                free(p->edges[i].ports);
        free(p->edges);
        free(p);
}
