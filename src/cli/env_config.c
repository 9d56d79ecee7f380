/* SPDX-License-Identifier: Apache-2.0 */
/* moat config [-f FILE] [-p NAME] [--format json]: parses the environment file,
 * resolves it (env/plan.h) and prints the plan: YAML-like text by default, JSON
 * with --format json.  Exit 1 with the message (file:line: service: key) on a
 * bad file. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "core/util.h"
#include "env/plan.h"

static void usage(void)
{
        printf("Usage: moat config [-f FILE] [-p NAME] [--format json]\n\n"
               "Checks an environment file and prints the resolved plan: every service with its\n"
               "effective settings, the start order, the networks and who may connect to whom.\n\n"
               "  -f, --file FILE       the file (default: compose.yaml, compose.yml,\n"
               "                        docker-compose.yml or docker-compose.yaml here)\n"
               "  -p, --project-name N  the project name (default: the directory's name)\n"
               "      --format json     JSON instead of text\n");
}

static json_t *strv_json(char *const *v)
{
        json_t *a = json_array();
        for (; v && *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

static double secs(int64_t ns)
{
        return (double)ns / 1e9;
}

static json_t *service_json(const struct moat_plan *p, size_t idx)
{
        const struct moat_env_service *s = &p->file->services[idx];
        json_t *o = json_object();
        json_object_set_new(o, "image", json_string(s->image));
        if (s->entrypoint)
                json_object_set_new(o, "entrypoint", strv_json(s->entrypoint));
        if (s->command)
                json_object_set_new(o, "command", strv_json(s->command));
        if (s->environment && s->environment[0]) {
                json_t *env = json_object();
                for (char **e = s->environment; *e; e++) {
                        char *eq = strchr(*e, '=');
                        _cleanup_free_ char *k = strndup(*e, eq - *e);
                        if (k)
                                json_object_set_new(env, k, json_string(eq + 1));
                }
                json_object_set_new(o, "environment", env);
        }
        if (s->user)
                json_object_set_new(o, "user", json_string(s->user));
        if (s->working_dir)
                json_object_set_new(o, "working_dir", json_string(s->working_dir));
        if (s->read_only)
                json_object_set_new(o, "read_only", json_true());
        if (s->n_ports) {
                json_t *a = json_array();
                for (size_t i = 0; i < s->n_ports; i++) {
                        const struct moat_env_port *pt = &s->ports[i];
                        json_t *po = json_object();
                        if (pt->host_ip)
                                json_object_set_new(po, "host_ip", json_string(pt->host_ip));
                        json_object_set_new(po, "published", json_integer(pt->host_port));
                        if (pt->host_port_end != pt->host_port)
                                json_object_set_new(po, "published_end", json_integer(pt->host_port_end));
                        json_object_set_new(po, "target", json_integer(pt->container_port));
                        if (pt->container_port_end != pt->container_port)
                                json_object_set_new(po, "target_end", json_integer(pt->container_port_end));
                        json_object_set_new(po, "protocol", json_string(pt->protocol));
                        json_array_append_new(a, po);
                }
                json_object_set_new(o, "ports", a);
        }
        if (s->n_mounts) {
                static const char *const types[] = { "bind", "volume", "tmpfs" };
                json_t *a = json_array();
                for (size_t i = 0; i < s->n_mounts; i++) {
                        const struct moat_env_mount *m = &s->mounts[i];
                        json_t *mo = json_object();
                        json_object_set_new(mo, "type", json_string(types[m->type]));
                        if (m->source)
                                json_object_set_new(mo, "source", json_string(m->source));
                        json_object_set_new(mo, "target", json_string(m->target));
                        if (m->read_only)
                                json_object_set_new(mo, "read_only", json_true());
                        if (m->tmpfs_size)
                                json_object_set_new(mo, "size", json_integer((json_int_t)m->tmpfs_size));
                        json_array_append_new(a, mo);
                }
                json_object_set_new(o, "volumes", a);
        }
        json_t *nets = json_array();
        if (!s->n_networks)
                json_array_append_new(nets, json_string("default"));
        for (size_t i = 0; i < s->n_networks; i++)
                json_array_append_new(nets, json_string(s->networks[i].name));
        json_object_set_new(o, "networks", nets);
        if (s->n_depends_on) {
                json_t *d = json_object();
                for (size_t i = 0; i < s->n_depends_on; i++)
                        json_object_set_new(d, s->depends_on[i].service,
                                            json_string(moat_env_condition_name(s->depends_on[i].condition)));
                json_object_set_new(o, "depends_on", d);
        }
        if (s->healthcheck.present) {
                const struct moat_env_healthcheck *h = &s->healthcheck;
                json_t *hc = json_object();
                if (h->disable) {
                        json_object_set_new(hc, "disable", json_true());
                } else {
                        json_object_set_new(hc, "test", strv_json(h->test));
                        json_object_set_new(hc, "interval", json_real(secs(h->interval_ns)));
                        json_object_set_new(hc, "timeout", json_real(secs(h->timeout_ns)));
                        json_object_set_new(hc, "retries", json_integer(h->retries));
                        json_object_set_new(hc, "start_period", json_real(secs(h->start_period_ns)));
                }
                json_object_set_new(o, "healthcheck", hc);
        }
        char restart[32];
        if (s->restart == MOAT_RESTART_ON_FAILURE && s->restart_max)
                snprintf(restart, sizeof(restart), "on-failure:%d", s->restart_max);
        else
                snprintf(restart, sizeof(restart), "%s", moat_env_restart_name(s->restart));
        json_object_set_new(o, "restart", json_string(restart));
        if (s->cap_add)
                json_object_set_new(o, "cap_add", strv_json(s->cap_add));
        if (s->cap_drop)
                json_object_set_new(o, "cap_drop", strv_json(s->cap_drop));
        json_t *lim = json_object();
        if (s->memory)
                json_object_set_new(lim, "memory", json_integer(s->memory));
        if (s->cpus)
                json_object_set_new(lim, "cpus", json_real(s->cpus));
        if (s->pids)
                json_object_set_new(lim, "pids", json_integer(s->pids));
        if (json_object_size(lim))
                json_object_set_new(o, "limits", lim);
        else
                json_decref(lim);
        json_t *reach = json_array();
        for (size_t i = 0; i < p->n_edges; i++) {
                const struct moat_plan_edge *e = &p->edges[i];
                if (e->from != idx)
                        continue;
                const char *to = p->file->services[e->to].name;
                if (!e->n_ports)
                        json_array_append_new(reach, json_string(to));
                for (size_t k = 0; k < e->n_ports; k++)
                        json_array_append_new(reach, json_sprintf("%s:%u", to, e->ports[k]));
        }
        json_object_set_new(o, "reaches", reach);
        json_t *eg = json_array();
        for (size_t i = 0; i < s->n_egress; i++) {
                if (s->egress[i].port)
                        json_array_append_new(eg, json_sprintf(strchr(s->egress[i].host, ':') ? "[%s]:%u" : "%s:%u",
                                                               s->egress[i].host, s->egress[i].port));
                else
                        json_array_append_new(eg, json_string(s->egress[i].host));
        }
        json_object_set_new(o, "egress", eg);
        json_object_set_new(o, "isolation", json_string(s->isolation == MOAT_ISOLATION_VM ? "vm" : "container"));
        json_object_set_new(o, "on_violation", json_string(moat_env_violation_name(s->on_violation)));
        return o;
}

static json_t *plan_json(const struct moat_plan *p)
{
        json_t *o = json_object();
        json_object_set_new(o, "project", json_string(p->project));
        json_object_set_new(o, "file", json_string(p->file->path));
        json_object_set_new(o, "policy", json_string(p->policy == MOAT_POLICY_OPEN ? "open" : "default"));
        json_t *order = json_array();
        for (size_t i = 0; i < p->file->n_services; i++)
                json_array_append_new(order, json_string(p->file->services[p->order[i]].name));
        json_object_set_new(o, "order", order);
        json_t *nets = json_object();
        for (size_t i = 0; i < p->n_networks; i++) {
                json_t *n = json_object();
                json_object_set_new(n, "name", json_string(p->networks[i].full_name));
                json_object_set_new(n, "internal", json_boolean(p->networks[i].internal));
                json_object_set_new(nets, p->networks[i].name, n);
        }
        json_object_set_new(o, "networks", nets);
        json_t *vols = json_object();
        for (size_t i = 0; i < p->file->n_volumes; i++)
                json_object_set_new(vols, p->file->volumes[i].name,
                                    json_sprintf("%s_%s", p->project, p->file->volumes[i].name));
        json_object_set_new(o, "volumes", vols);
        json_t *svcs = json_object();
        for (size_t i = 0; i < p->file->n_services; i++)
                json_object_set_new(svcs, p->file->services[i].name, service_json(p, i));
        json_object_set_new(o, "services", svcs);
        return o;
}

/* ---------------------------------------------------------------- text */

static void print_scalar(json_t *v)
{
        if (json_is_string(v)) {
                const char *s = json_string_value(v);
                bool plain = *s && !strchr(":#{}[],&*!|>'\"%@`", s[0]) && !strpbrk(s, "\n\t\"\\") &&
                             !strstr(s, ": ") && !strstr(s, " #") && s[strlen(s) - 1] != ' ' && s[0] != ' ';
                static const char *const special[] = { "true", "false", "yes", "no", "on", "off", "null", "~" };
                for (size_t i = 0; i < ARRAY_SIZE(special) && plain; i++)
                        plain = strcasecmp(s, special[i]) != 0;
                char *end;
                if (plain) {
                        (void)strtod(s, &end);
                        plain = *end != '\0';
                }
                if (plain) {
                        fputs(s, stdout);
                        return;
                }
        }
        _cleanup_free_ char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fputs(d ? d : "?", stdout);
}

static bool all_scalars(json_t *a)
{
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v)
                if (json_is_object(v) || json_is_array(v))
                        return false;
        return true;
}

static void print_yaml(json_t *v, int indent);

static void print_value_after_key(json_t *v, int indent)
{
        if (json_is_object(v) && json_object_size(v)) {
                putchar('\n');
                print_yaml(v, indent + 2);
        } else if (json_is_object(v)) {
                fputs(" {}\n", stdout);
        } else if (json_is_array(v) && all_scalars(v)) {
                fputs(" [", stdout);
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) {
                        if (i)
                                fputs(", ", stdout);
                        print_scalar(e);
                }
                fputs("]\n", stdout);
        } else if (json_is_array(v)) {
                putchar('\n');
                print_yaml(v, indent + 2);
        } else {
                putchar(' ');
                print_scalar(v);
                putchar('\n');
        }
}

static void print_yaml(json_t *v, int indent)
{
        if (json_is_object(v)) {
                const char *k;
                json_t *e;
                json_object_foreach(v, k, e) {
                        printf("%*s", indent, "");
                        json_t *ks = json_string(k);
                        print_scalar(ks);
                        json_decref(ks);
                        putchar(':');
                        print_value_after_key(e, indent);
                }
        } else if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) {
                        printf("%*s-", indent, "");
                        if (json_is_object(e) && json_object_size(e)) {
                                /* "- key: value" then the other keys under it */
                                const char *k;
                                json_t *f;
                                bool first = true;
                                json_object_foreach(e, k, f) {
                                        printf("%*s", first ? 1 : indent + 2, "");
                                        first = false;
                                        json_t *ks = json_string(k);
                                        print_scalar(ks);
                                        json_decref(ks);
                                        putchar(':');
                                        print_value_after_key(f, indent + 2);
                                }
                        } else {
                                print_value_after_key(e, indent);
                        }
                }
        }
}

static void print_text(const struct moat_plan *p, json_t *j)
{
        print_yaml(j, 0);
        (void)p;
}

int cli_env_config(struct moat_globals *g, int argc, char **argv, int idx)
{
        const char *file = NULL, *project = NULL, *format = NULL;
        bool help = false;
        const struct opt opts[] = {
                { "file", 'f', OPT_STR, &file, NULL },
                { "project-name", 'p', OPT_STR, &project, NULL },
                { "format", 0, OPT_STR, &format, NULL },
                { "help", 'h', OPT_BOOL, &help, NULL },
                { 0 },
        };
        char *msg = NULL;
        if (args_parse(argc, argv, &idx, opts, "moat config", &msg) < 0) {
                fprintf(stderr, "moat config: %s\n", msg ? msg : "bad arguments");
                free(msg);
                return 1;
        }
        if (help) {
                usage();
                return 0;
        }
        if (idx < argc) {
                fprintf(stderr, "moat config: unexpected argument '%s' (see moat config --help)\n", argv[idx]);
                return 1;
        }
        bool json = false;
        if (format && STREQ(format, "json"))
                json = true;
        else if (format && !STREQ(format, "text") && !STREQ(format, "yaml")) {
                fprintf(stderr, "moat config: unknown format '%s' (json or text)\n", format);
                return 1;
        }
        _cleanup_plan_ struct moat_plan *plan = NULL;
        if (cli_env_load_plan("config", file, project, &plan) != 0)
                return 1;
        json_t *j = plan_json(plan);
        if (!j) {
                fprintf(stderr, "moat config: out of memory\n");
                return 1;
        }
        if (json) {
                _cleanup_free_ char *d = json_dumps(j, JSON_INDENT(2));
                if (d)
                        puts(d);
        } else {
                print_text(plan, j);
        }
        json_decref(j);
        (void)g;
        return fflush(stdout) == 0 ? 0 : 1;
}
