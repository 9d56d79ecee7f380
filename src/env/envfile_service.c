/* SPDX-License-Identifier: Apache-2.0 */
/* The environment file: one service's keys. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "env/envfile-internal.h"

struct svc {
        struct moat_env_service *s;
        yaml_node_t *key;
        char **env_file;     /* from env_file, in order */
        char **env;          /* from environment */
        int64_t mem[2], pids[2];
        double cpus[2];
        bool pids_set[2];
};

/* ------------------------------------------------------------ helpers */

static int strv_set_env(char ***v, const char *entry)
{
        const char *eq = strchr(entry, '=');
        size_t kl = eq ? (size_t)(eq - entry) : strlen(entry);
        for (char **p = *v; p && *p; p++)
                if (!strncmp(*p, entry, kl) && ((*p)[kl] == '=' || !(*p)[kl])) {
                        char *d = strdup(entry);
                        if (!d)
                                return -ENOMEM;
                        free(*p);
                        *p = d;
                        return 0;
                }
        return strv_push(v, entry);
}

static const char *path_key(char *buf, size_t n, const char *a, const char *b)
{
        snprintf(buf, n, "%s.%s", a, b);
        return buf;
}

static int command_words(struct ef_ctx *c, yaml_node_t *v, const char *key, char ***out)
{
        if (v->type == YAML_SCALAR_NODE) {
                _cleanup_free_ char *s = NULL;
                int r = ef_string(c, v, key, &s);
                if (r < 0)
                        return r;
                char **w = NULL;
                r = moat_env_split_command(s, &w);
                if (r == -EINVAL)
                        return ef_fail(c, v, key, "'%s': unbalanced quotes or a trailing backslash", s);
                if (r < 0)
                        return r;
                strv_free(*out);
                *out = w;
                return 0;
        }
        return ef_strv(c, v, key, false, out);
}

/* ------------------------------------------------------------ environment */

static int env_entry(struct ef_ctx *c, struct svc *sv, const char *k, const char *val)
{
        _cleanup_free_ char *e = NULL;
        if (val ? asprintf(&e, "%s=%s", k, val) < 0 : !(e = strdup(k)))
                return -ENOMEM;
        return strv_set_env(&sv->env, e);
}

static int env_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        if (!*key || strchr(key, '='))
                return ef_fail(c, k, "environment", "'%s' is not a variable name", key);
        if (ef_is_null(v))
                return env_entry(c, data, key, NULL);
        _cleanup_free_ char *s = NULL;
        int r = ef_string(c, v, "environment", &s);
        if (r < 0)
                return r;
        return env_entry(c, data, key, s);
}

static int parse_environment(struct ef_ctx *c, yaml_node_t *v, struct svc *sv)
{
        if (v->type == YAML_MAPPING_NODE)
                return ef_map_foreach(c, v, "environment", env_map, sv);
        _cleanup_strv_ char **l = NULL;
        int r = ef_strv(c, v, "environment", false, &l);
        if (r < 0)
                return r == -EINVAL ? ef_fail(c, v, "environment", "must be a mapping or a list of KEY=VALUE") : r;
        for (char **p = l; *p; p++) {
                if (**p == '=' || !**p)
                        return ef_fail(c, v, "environment", "'%s' is not KEY=VALUE", *p);
                r = strv_set_env(&sv->env, *p);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int read_env_file(struct ef_ctx *c, yaml_node_t *n, struct svc *sv, const char *path, bool required)
{
        _cleanup_free_ char *full = NULL, *data = NULL;
        if (path[0] == '/' ? !(full = strdup(path)) : asprintf(&full, "%s/%s", c->dir, path) < 0)
                return -ENOMEM;
        struct stat st;
        if (stat(full, &st) < 0) {
                if (!required)
                        return 0;
                return ef_fail(c, n, "env_file", "cannot read '%s': %s", full, strerror(errno));
        }
        if (!S_ISREG(st.st_mode) || st.st_size > MOAT_ENVFILE_MAX_SIZE)
                return ef_fail(c, n, "env_file", "'%s' is not a regular file of at most 4 MiB", full);
        size_t len;
        int r = read_file_at(AT_FDCWD, full, &data, &len);
        if (r < 0)
                return ef_fail(c, n, "env_file", "cannot read '%s': %s", full, strerror(-r));
        _cleanup_strv_ char **l = NULL;
        int bad = 0;
        r = ef_parse_dotenv(data, &l, &bad);
        if (r == -EINVAL)
                return ef_fail(c, n, "env_file", "%s:%d: not a KEY=VALUE line", full, bad);
        if (r < 0)
                return r;
        for (char **p = l; p && *p; p++)
                if ((r = strv_set_env(&sv->env_file, *p)) < 0)
                        return r;
        return 0;
}

struct envf {
        char *path;
        bool required;
};

static int env_file_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct envf *e = data;
        if (STREQ(key, "path"))
                return ef_string(c, v, "env_file.path", &e->path);
        if (STREQ(key, "required"))
                return ef_bool(c, v, "env_file.required", &e->required);
        ef_unknown(c, k, "env_file: ", key);
        return 0;
}

static int parse_env_file(struct ef_ctx *c, yaml_node_t *v, struct svc *sv)
{
        if (v->type == YAML_SCALAR_NODE) {
                _cleanup_free_ char *p = NULL;
                int r = ef_string(c, v, "env_file", &p);
                return r < 0 ? r : read_env_file(c, v, sv, p, true);
        }
        if (v->type != YAML_SEQUENCE_NODE)
                return ef_fail(c, v, "env_file", "must be a path or a list of paths");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *e = ef_node(c, *it);
                if (!e)
                        return ef_too_big(c, v);
                struct envf f = { .required = true };
                int r;
                if (e->type == YAML_MAPPING_NODE)
                        r = ef_map_foreach(c, e, "env_file", env_file_map, &f);
                else
                        r = ef_string(c, e, "env_file", &f.path);
                if (r >= 0 && !f.path)
                        r = ef_fail(c, e, "env_file", "needs a path");
                if (r >= 0)
                        r = read_env_file(c, e, sv, f.path, f.required);
                free(f.path);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ------------------------------------------------------------ networks, depends_on */

static int net_sub(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_svc_network *n = data;
        if (STREQ(key, "aliases"))
                return ef_strv(c, v, "networks.aliases", false, &n->aliases);
        if (STREQ(key, "ipv4_address"))
                return ef_string(c, v, "networks.ipv4_address", &n->ipv4_address);
        char kb[64];
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "networks", key));
        return 0;
}

static int add_net(struct moat_env_service *s, const char *name)
{
        int r = ef_grow(&s->networks, &s->n_networks, sizeof(*s->networks));
        if (r < 0)
                return r;
        return (s->networks[s->n_networks - 1].name = strdup(name)) ? 0 : -ENOMEM;
}

static int net_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_service *s = data;
        int r = add_net(s, key);
        if (r < 0 || ef_is_null(v))
                return r;
        return ef_map_foreach(c, v, "networks", net_sub, &s->networks[s->n_networks - 1]);
}

static int parse_networks(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s)
{
        if (v->type == YAML_MAPPING_NODE)
                return ef_map_foreach(c, v, "networks", net_map, s);
        _cleanup_strv_ char **l = NULL;
        int r = ef_strv(c, v, "networks", false, &l);
        if (r < 0)
                return r;
        for (char **p = l; *p; p++)
                if ((r = add_net(s, *p)) < 0)
                        return r;
        return 0;
}

static int dep_sub(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_dep *d = data;
        if (STREQ(key, "condition")) {
                _cleanup_free_ char *s = NULL;
                int r = ef_string(c, v, "depends_on.condition", &s);
                if (r < 0)
                        return r;
                if (STREQ(s, "service_started"))
                        d->condition = MOAT_DEP_STARTED;
                else if (STREQ(s, "service_healthy"))
                        d->condition = MOAT_DEP_HEALTHY;
                else if (STREQ(s, "service_completed_successfully"))
                        d->condition = MOAT_DEP_COMPLETED;
                else
                        return ef_fail(c, v, "depends_on.condition",
                                       "'%s' is not a condition (service_started, service_healthy, "
                                       "service_completed_successfully)", s);
                return 0;
        }
        if (STREQ(key, "restart"))
                return ef_bool(c, v, "depends_on.restart", &d->restart);
        if (STREQ(key, "required"))
                return ef_bool(c, v, "depends_on.required", &d->required);
        char kb[64];
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "depends_on", key));
        return 0;
}

static int add_dep(struct moat_env_service *s, const char *name, int line, struct moat_env_dep **out)
{
        for (size_t i = 0; i < s->n_depends_on; i++)
                if (STREQ(s->depends_on[i].service, name)) {
                        *out = &s->depends_on[i];
                        return 0;
                }
        int r = ef_grow(&s->depends_on, &s->n_depends_on, sizeof(*s->depends_on));
        if (r < 0)
                return r;
        struct moat_env_dep *d = *out = &s->depends_on[s->n_depends_on - 1];
        d->required = true;
        d->line = line;
        return (d->service = strdup(name)) ? 0 : -ENOMEM;
}

static int dep_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_dep *d;
        int r = add_dep(data, key, ef_line(k), &d);
        if (r < 0 || ef_is_null(v))
                return r;
        return ef_map_foreach(c, v, "depends_on", dep_sub, d);
}

static int parse_depends_on(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s)
{
        if (v->type == YAML_MAPPING_NODE)
                return ef_map_foreach(c, v, "depends_on", dep_map, s);
        if (v->type != YAML_SEQUENCE_NODE)
                return ef_fail(c, v, "depends_on", "must be a list of services or a mapping");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *e = ef_node(c, *it);
                if (!e)
                        return ef_too_big(c, v);
                _cleanup_free_ char *name = NULL;
                struct moat_env_dep *d;
                int r = ef_string(c, e, "depends_on", &name);
                if (r < 0 || (r = add_dep(s, name, ef_line(e), &d)) < 0)
                        return r;
        }
        return 0;
}

/* ------------------------------------------------------------ healthcheck */

static int hc_duration(struct ef_ctx *c, yaml_node_t *v, const char *key, int64_t *out)
{
        _cleanup_free_ char *s = NULL;
        int r = ef_string(c, v, key, &s);
        if (r < 0)
                return r;
        if (moat_env_parse_duration(s, out) < 0)
                return ef_fail(c, v, key, "'%s' is not a duration (like 1m30s, 10s, 500ms)", s);
        return 0;
}

static int hc_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_healthcheck *h = data;
        if (STREQ(key, "test")) {
                strv_free(h->test);
                h->test = NULL;
                if (v->type == YAML_SCALAR_NODE) {
                        _cleanup_free_ char *s = NULL;
                        int r = ef_string(c, v, "healthcheck.test", &s);
                        if (r < 0)
                                return r;
                        if (strv_push(&h->test, "/bin/sh") < 0 || strv_push(&h->test, "-c") < 0 ||
                            strv_push(&h->test, s) < 0)
                                return -ENOMEM;
                        return 0;
                }
                _cleanup_strv_ char **l = NULL;
                int r = ef_strv(c, v, "healthcheck.test", false, &l);
                if (r < 0)
                        return r;
                if (!l[0])
                        return ef_fail(c, v, "healthcheck.test", "is empty");
                if (STREQ(l[0], "NONE")) {
                        h->disable = true;
                        return 0;
                }
                if (STREQ(l[0], "CMD-SHELL")) {
                        if (strv_length(l) != 2)
                                return ef_fail(c, v, "healthcheck.test", "CMD-SHELL takes one command string");
                        if (strv_push(&h->test, "/bin/sh") < 0 || strv_push(&h->test, "-c") < 0 ||
                            strv_push(&h->test, l[1]) < 0)
                                return -ENOMEM;
                        return 0;
                }
                if (!STREQ(l[0], "CMD") || !l[1])
                        return ef_fail(c, v, "healthcheck.test",
                                       "a list must start with CMD, CMD-SHELL or NONE (and name a command)");
                h->test = strv_dup(l + 1);
                return h->test ? 0 : -ENOMEM;
        }
        if (STREQ(key, "interval"))
                return hc_duration(c, v, "healthcheck.interval", &h->interval_ns);
        if (STREQ(key, "timeout"))
                return hc_duration(c, v, "healthcheck.timeout", &h->timeout_ns);
        if (STREQ(key, "start_period"))
                return hc_duration(c, v, "healthcheck.start_period", &h->start_period_ns);
        if (STREQ(key, "start_interval"))
                return hc_duration(c, v, "healthcheck.start_interval", &h->start_interval_ns);
        if (STREQ(key, "retries")) {
                int64_t n;
                int r = ef_int(c, v, "healthcheck.retries", 0, 1000000, &n);
                h->retries = (int)n;
                return r;
        }
        if (STREQ(key, "disable"))
                return ef_bool(c, v, "healthcheck.disable", &h->disable);
        char kb[64];
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "healthcheck", key));
        return 0;
}

/* ------------------------------------------------------------ limits, caps, restart */

static int parse_cpus(struct ef_ctx *c, yaml_node_t *v, const char *key, double *out)
{
        _cleanup_free_ char *s = NULL;
        int r = ef_string(c, v, key, &s);
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (errno || end == s || *end || !(d > 0) || d > 4096)
                return ef_fail(c, v, key, "'%s' is not a CPU count (like 0.5 or 2)", s);
        *out = d;
        return 0;
}

static int parse_mem(struct ef_ctx *c, yaml_node_t *v, const char *key, int64_t *out)
{
        _cleanup_free_ char *s = NULL;
        int r = ef_string(c, v, key, &s);
        if (r < 0)
                return r;
        if (moat_env_parse_size(s, out) < 0 || *out <= 0)
                return ef_fail(c, v, key, "'%s' is not a size", s);
        if (*out < 6 * 1024 * 1024)
                return ef_fail(c, v, key, "'%s' is below the 6 MiB minimum", s);
        return 0;
}

static int parse_pids(struct ef_ctx *c, yaml_node_t *v, const char *key, int64_t *out)
{
        int r = ef_int(c, v, key, -1, INT32_MAX, out);
        if (r >= 0 && *out == -1)
                *out = 0; /* -1: unlimited, as docker */
        return r;
}

static int limits_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct svc *sv = data;
        if (STREQ(key, "memory"))
                return parse_mem(c, v, "deploy.resources.limits.memory", &sv->mem[1]);
        if (STREQ(key, "cpus"))
                return parse_cpus(c, v, "deploy.resources.limits.cpus", &sv->cpus[1]);
        if (STREQ(key, "pids")) {
                sv->pids_set[1] = true;
                return parse_pids(c, v, "deploy.resources.limits.pids", &sv->pids[1]);
        }
        char kb[96];
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "deploy.resources.limits", key));
        return 0;
}

static int resources_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        if (STREQ(key, "limits"))
                return ef_map_foreach(c, v, "deploy.resources.limits", limits_map, data);
        if (STREQ(key, "reservations")) {
                moat_warn("%s:%d: service '%s': 'deploy.resources.reservations' is not supported; ignored", c->name,
                          ef_line(k), c->svc);
                return 0;
        }
        char kb[96];
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "deploy.resources", key));
        return 0;
}

/* logging: the log moat keeps of the service is size-capped: options max-size and max-file
 * (json-file / local drivers' names) set the cap; other drivers are not there. */
static int log_options_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_service *s = data;
        if (STREQ(key, "max-size")) {
                _cleanup_free_ char *str = NULL;
                int r = ef_string(c, v, "logging.options.max-size", &str);
                if (r < 0)
                        return r;
                if (moat_env_parse_size(str, &s->log_max) < 0 || s->log_max <= 0)
                        return ef_fail(c, v, "logging.options.max-size", "'%s' is not a size", str);
                return 0;
        }
        if (STREQ(key, "max-file")) {
                int64_t n = 0;
                int r = ef_int(c, v, "logging.options.max-file", 1, 100, &n);
                s->log_files = (int)n;
                return r;
        }
        char kb[96];
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "logging.options", key));
        return 0;
}

static int logging_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        if (STREQ(key, "options"))
                return ef_map_foreach(c, v, "logging.options", log_options_map, data);
        if (STREQ(key, "driver")) {
                _cleanup_free_ char *d = NULL;
                int r = ef_string(c, v, "logging.driver", &d);
                if (r >= 0 && !STREQ(d, "json-file") && !STREQ(d, "local"))
                        moat_warn("%s:%d: service '%s': logging driver '%s' is not supported: the service's log is "
                                  "a file moat keeps (moat logs)", c->name, ef_line(v), c->svc, d);
                return r;
        }
        char kb[96];
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "logging", key));
        return 0;
}

static int deploy_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        if (STREQ(key, "resources"))
                return ef_map_foreach(c, v, "deploy.resources", resources_map, data);
        char kb[96];
        if (STREQ(key, "replicas") || STREQ(key, "restart_policy") || STREQ(key, "mode") || STREQ(key, "labels") ||
            STREQ(key, "placement") || STREQ(key, "update_config") || STREQ(key, "rollback_config")) {
                moat_warn("%s:%d: service '%s': 'deploy.%s' is not supported; ignored", c->name, ef_line(k), c->svc,
                          key);
                return 0;
        }
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "deploy", key));
        return 0;
}

static int parse_caps(struct ef_ctx *c, yaml_node_t *v, const char *key, char ***out)
{
        _cleanup_strv_ char **l = NULL;
        int r = ef_strv(c, v, key, false, &l);
        if (r < 0)
                return r;
        for (char **p = l; *p; p++) {
                _cleanup_free_ char *norm = NULL;
                const char *n = *p;
                if (!strncasecmp(n, "CAP_", 4))
                        n += 4;
                if (!strcasecmp(n, "ALL")) {
                        if (strv_push(out, "ALL") < 0)
                                return -ENOMEM;
                        continue;
                }
                if (asprintf(&norm, "CAP_%s", n) < 0)
                        return -ENOMEM;
                for (char *q = norm; *q; q++)
                        *q = (char)toupper((unsigned char)*q);
                cap_value_t cv;
                _cleanup_free_ char *lower = strdup(norm);
                if (!lower)
                        return -ENOMEM;
                for (char *q = lower; *q; q++)
                        *q = (char)tolower((unsigned char)*q);
                if (cap_from_name(lower, &cv) < 0)
                        return ef_fail(c, v, key, "'%s' is not a capability", *p);
                if (!strv_contains(*out, norm) && strv_push(out, norm) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_restart(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s)
{
        _cleanup_free_ char *str = NULL;
        int r = ef_string(c, v, "restart", &str);
        if (r < 0)
                return r;
        if (STREQ(str, "no") || STREQ(str, "false"))
                s->restart = MOAT_RESTART_NO;
        else if (STREQ(str, "always"))
                s->restart = MOAT_RESTART_ALWAYS;
        else if (STREQ(str, "unless-stopped"))
                s->restart = MOAT_RESTART_UNLESS_STOPPED;
        else if (STREQ(str, "on-failure"))
                s->restart = MOAT_RESTART_ON_FAILURE;
        else if (!strncmp(str, "on-failure:", 11)) {
                int n;
                if (parse_int(str + 11, &n) < 0 || n < 0)
                        return ef_fail(c, v, "restart", "'%s': the retry count is not a number", str);
                s->restart = MOAT_RESTART_ON_FAILURE;
                s->restart_max = n;
        } else
                return ef_fail(c, v, "restart", "'%s' is not a restart policy (no, always, on-failure[:N], "
                                                "unless-stopped)", str);
        return 0;
}

/* ------------------------------------------------------------ x-moat */

static int xmoat_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_service *s = data;
        _cleanup_free_ char *str = NULL;
        _cleanup_strv_ char **l = NULL;
        int r;
        if (STREQ(key, "isolation")) {
                if ((r = ef_string(c, v, "x-moat.isolation", &str)) < 0)
                        return r;
                if (STREQ(str, "container"))
                        s->isolation = MOAT_ISOLATION_CONTAINER;
                else if (STREQ(str, "vm"))
                        s->isolation = MOAT_ISOLATION_VM;
                else
                        return ef_fail(c, v, "x-moat.isolation", "'%s' is not an isolation (container or vm)", str);
                return 0;
        }
        if (STREQ(key, "on-violation")) {
                if ((r = ef_string(c, v, "x-moat.on-violation", &str)) < 0)
                        return r;
                if (STREQ(str, "log"))
                        s->on_violation = MOAT_VIOLATION_LOG;
                else if (STREQ(str, "kill"))
                        s->on_violation = MOAT_VIOLATION_KILL;
                else if (STREQ(str, "stop"))
                        s->on_violation = MOAT_VIOLATION_STOP;
                else
                        return ef_fail(c, v, "x-moat.on-violation", "'%s' is not log, kill or stop", str);
                return 0;
        }
        if (STREQ(key, "allow")) {
                if ((r = ef_strv(c, v, "x-moat.allow", false, &l)) < 0)
                        return r;
                for (char **p = l; *p; p++) {
                        char *colon = strchr(*p, ':');
                        int port = 0;
                        if (colon && (parse_int(colon + 1, &port) < 0 || port < 1 || port > 65535))
                                return ef_fail(c, v, "x-moat.allow", "'%s': '%s' is not a port", *p, colon + 1);
                        _cleanup_free_ char *name = colon ? strndup(*p, colon - *p) : strdup(*p);
                        if (!name)
                                return -ENOMEM;
                        if (!ef_valid_name(name))
                                return ef_fail(c, v, "x-moat.allow", "'%s' is not SERVICE[:PORT]", *p);
                        if ((r = ef_grow(&s->allow, &s->n_allow, sizeof(*s->allow))) < 0)
                                return r;
                        struct moat_env_allow *a = &s->allow[s->n_allow - 1];
                        a->service = TAKE_PTR(name);
                        a->port = (uint16_t)port;
                        a->line = ef_line(v);
                }
                return 0;
        }
        if (STREQ(key, "egress")) {
                if ((r = ef_strv(c, v, "x-moat.egress", false, &l)) < 0)
                        return r;
                for (char **p = l; *p; p++) {
                        struct moat_env_egress e;
                        r = ef_parse_egress(*p, &e);
                        if (r == -EINVAL)
                                return ef_fail(c, v, "x-moat.egress", "'%s' is not HOST-OR-CIDR[:PORT]", *p);
                        if (r < 0)
                                return r;
                        if ((r = ef_grow(&s->egress, &s->n_egress, sizeof(*s->egress))) < 0) {
                                free(e.host);
                                return r;
                        }
                        s->egress[s->n_egress - 1] = e;
                }
                return 0;
        }
        ef_unknown(c, k, "x-moat: ", key);
        return 0;
}

/* ------------------------------------------------------------ the service */

static const char *const unsupported[] = {
        "build", "container_name", "hostname", "labels", "expose", "extra_hosts", "dns", "dns_search",
        "stop_signal", "stop_grace_period", "init", "privileged", "devices", "security_opt",
        "ulimits", "shm_size", "profiles", "platform", "pull_policy", "stdin_open", "tty", "domainname",
        "sysctls", "ipc", "pid", "network_mode", "secrets", "configs", "links", "external_links",
        "group_add", "mac_address", "oom_score_adj", "memswap_limit", "mem_reservation", "cpu_shares",
        "cpuset", "userns_mode", "cgroup_parent", "develop", "annotations", "attach", "scale",
};

static int service_key(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct svc *sv = data;
        struct moat_env_service *s = sv->s;
        if (ef_is_null(v) && !STREQ(key, "healthcheck") && !STREQ(key, "x-moat"))
                return 0; /* "key:" with no value: as if absent */
        if (STREQ(key, "image"))
                return ef_string(c, v, key, &s->image);
        if (STREQ(key, "command"))
                return command_words(c, v, key, &s->command);
        if (STREQ(key, "entrypoint"))
                return command_words(c, v, key, &s->entrypoint);
        if (STREQ(key, "environment"))
                return parse_environment(c, v, sv);
        if (STREQ(key, "env_file"))
                return parse_env_file(c, v, sv);
        if (STREQ(key, "ports"))
                return ef_parse_ports(c, v, s);
        if (STREQ(key, "volumes"))
                return ef_parse_volumes(c, v, s);
        if (STREQ(key, "tmpfs"))
                return ef_parse_tmpfs(c, v, s);
        if (STREQ(key, "networks"))
                return parse_networks(c, v, s);
        if (STREQ(key, "depends_on"))
                return parse_depends_on(c, v, s);
        if (STREQ(key, "healthcheck")) {
                s->healthcheck.present = true;
                return ef_is_null(v) ? 0 : ef_map_foreach(c, v, "healthcheck", hc_map, &s->healthcheck);
        }
        if (STREQ(key, "restart"))
                return parse_restart(c, v, s);
        if (STREQ(key, "user"))
                return ef_string(c, v, key, &s->user);
        if (STREQ(key, "working_dir")) {
                int r = ef_string(c, v, key, &s->working_dir);
                if (r >= 0 && s->working_dir[0] != '/')
                        return ef_fail(c, v, key, "'%s' is not an absolute path", s->working_dir);
                return r;
        }
        if (STREQ(key, "read_only"))
                return ef_bool(c, v, key, &s->read_only);
        if (STREQ(key, "logging"))
                return ef_map_foreach(c, v, "logging", logging_map, s);
        if (STREQ(key, "cap_add"))
                return parse_caps(c, v, key, &s->cap_add);
        if (STREQ(key, "cap_drop"))
                return parse_caps(c, v, key, &s->cap_drop);
        if (STREQ(key, "mem_limit"))
                return parse_mem(c, v, key, &sv->mem[0]);
        if (STREQ(key, "cpus"))
                return parse_cpus(c, v, key, &sv->cpus[0]);
        if (STREQ(key, "pids_limit")) {
                sv->pids_set[0] = true;
                return parse_pids(c, v, key, &sv->pids[0]);
        }
        if (STREQ(key, "deploy"))
                return ef_map_foreach(c, v, "deploy", deploy_map, sv);
        if (STREQ(key, "x-moat"))
                return ef_is_null(v) ? 0 : ef_map_foreach(c, v, "x-moat", xmoat_map, s);
        if (!strncmp(key, "x-", 2))
                return 0;
        for (size_t i = 0; i < ARRAY_SIZE(unsupported); i++)
                if (STREQ(key, unsupported[i])) {
                        moat_warn("%s:%d: service '%s': '%s' is not supported by moat yet; ignored", c->name,
                                  ef_line(k), c->svc, key);
                        return 0;
                }
        ef_unknown(c, k, NULL, key);
        return 0;
}

static int finish_env(struct ef_ctx *c, struct svc *sv)
{
        char **all = NULL;
        int r = 0;
        char **lists[2] = { sv->env_file, sv->env };
        for (int l = 0; l < 2 && r >= 0; l++)
                for (char **p = lists[l]; p && *p && r >= 0; p++) {
                        if (strchr(*p, '=')) {
                                r = strv_set_env(&all, *p);
                                continue;
                        }
                        /* "KEY" alone: our value, when we have one */
                        const char *val = ef_lookup_var(c, *p);
                        _cleanup_free_ char *e = NULL;
                        if (!val)
                                continue;
                        if (asprintf(&e, "%s=%s", *p, val) < 0)
                                r = -ENOMEM;
                        else
                                r = strv_set_env(&all, e);
                }
        if (r < 0) {
                strv_free(all);
                return r;
        }
        sv->s->environment = all;
        return 0;
}

int ef_parse_service(struct ef_ctx *c, const char *name, yaml_node_t *k, yaml_node_t *v, struct moat_env_service *s)
{
        s->line = ef_line(k);
        s->healthcheck.interval_ns = 30000000000LL;
        s->healthcheck.timeout_ns = 30000000000LL;
        s->healthcheck.start_interval_ns = 5000000000LL;
        s->healthcheck.retries = 3;
        if (!(s->name = strdup(name)))
                return -ENOMEM;
        if (ef_is_null(v))
                return ef_fail(c, k, NULL, "the service is empty (it needs at least 'image')");
        struct svc sv = { .s = s, .key = k };
        int r = ef_map_foreach(c, v, NULL, service_key, &sv);
        if (r >= 0)
                r = finish_env(c, &sv);
        strv_free(sv.env);
        strv_free(sv.env_file);
        if (r < 0)
                return r;
        if (!s->image)
                return ef_fail(c, k, NULL, "no 'image' (building images from 'build' is not supported)");
        if (s->healthcheck.present && !s->healthcheck.disable && !s->healthcheck.test)
                return ef_fail(c, k, "healthcheck", "needs 'test'");
        if (sv.mem[0] && sv.mem[1] && sv.mem[0] != sv.mem[1])
                return ef_fail(c, k, "mem_limit", "differs from deploy.resources.limits.memory");
        if (sv.cpus[0] && sv.cpus[1] && sv.cpus[0] != sv.cpus[1])
                return ef_fail(c, k, "cpus", "differs from deploy.resources.limits.cpus");
        if (sv.pids_set[0] && sv.pids_set[1] && sv.pids[0] != sv.pids[1])
                return ef_fail(c, k, "pids_limit", "differs from deploy.resources.limits.pids");
        s->memory = sv.mem[0] ? sv.mem[0] : sv.mem[1];
        s->cpus = sv.cpus[0] ? sv.cpus[0] : sv.cpus[1];
        s->pids = sv.pids_set[0] ? sv.pids[0] : sv.pids[1];
        return 0;
}

void ef_service_free(struct moat_env_service *s)
{
        free(s->name);
        free(s->image);
        strv_free(s->command);
        strv_free(s->entrypoint);
        strv_free(s->environment);
        for (size_t i = 0; i < s->n_ports; i++)
                free(s->ports[i].host_ip);
        free(s->ports);
        for (size_t i = 0; i < s->n_mounts; i++) {
                free(s->mounts[i].source);
                free(s->mounts[i].target);
        }
        free(s->mounts);
        for (size_t i = 0; i < s->n_networks; i++) {
                free(s->networks[i].name);
                strv_free(s->networks[i].aliases);
                free(s->networks[i].ipv4_address);
        }
        free(s->networks);
        for (size_t i = 0; i < s->n_depends_on; i++)
                free(s->depends_on[i].service);
        free(s->depends_on);
        strv_free(s->healthcheck.test);
        free(s->user);
        free(s->working_dir);
        strv_free(s->cap_add);
        strv_free(s->cap_drop);
        for (size_t i = 0; i < s->n_allow; i++)
                free(s->allow[i].service);
        free(s->allow);
        for (size_t i = 0; i < s->n_egress; i++)
                free(s->egress[i].host);
        free(s->egress);
}
