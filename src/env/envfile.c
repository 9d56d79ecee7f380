/* SPDX-License-Identifier: Apache-2.0 */
/* The environment file: loading, the YAML tree helpers, the top level.
 *
 * libyaml's document API (yaml_parser_load) rather than the event API: the
 * planner-facing structs need random access (a key's value may come from a
 * "<<" merge of an anchored mapping declared anywhere above), and every node
 * keeps its start mark, so errors can name the line.  Aliases are references
 * to the anchored node, not copies, so the document's memory stays
 * proportional to the file; the expansion risk (billion laughs) is only in
 * walking it, which ef_node() bounds by counting visits. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "env/envfile-internal.h"

yaml_node_t *ef_node(struct ef_ctx *c, int idx)
{
        if (++c->visits > EF_MAX_VISITS)
                return NULL;
        return yaml_document_get_node(c->doc, idx);
}

int ef_line(const yaml_node_t *n)
{
        return n ? (int)n->start_mark.line + 1 : 0;
}

int ef_fail(struct ef_ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
        if (c->err && *c->err)
                return -EINVAL;
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        char svc[300] = "", k[300] = "";
        if (c->svc)
                snprintf(svc, sizeof(svc), "service '%s': ", c->svc);
        if (key)
                snprintf(k, sizeof(k), "'%s': ", key);
        if (n)
                return moat_error_input(c->err, EINVAL, "%s:%d: %s%s%s", c->name, ef_line(n), svc, k,
                                        msg ? msg : "invalid");
        return moat_error_input(c->err, EINVAL, "%s: %s%s%s", c->name, svc, k, msg ? msg : "invalid");
}

int ef_too_big(struct ef_ctx *c, const yaml_node_t *n)
{
        return ef_fail(c, n, NULL, "the file expands to more than %d nodes (YAML aliases?); refusing it",
                       EF_MAX_VISITS);
}

void ef_unknown(struct ef_ctx *c, const yaml_node_t *k, const char *where, const char *key)
{
        moat_warn("%s:%d: %s%s%s%sunknown key '%s' ignored", c->name, ef_line(k), c->svc ? "service '" : "",
                  c->svc ? c->svc : "", c->svc ? "': " : "", where ? where : "", key);
}

bool ef_is_null(const yaml_node_t *n)
{
        if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *v = (const char *)n->data.scalar.value;
        return !*v || STREQ(v, "~") || STREQ(v, "null") || STREQ(v, "Null") || STREQ(v, "NULL");
}

static const char *scalar(const yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool map_has_key(struct ef_ctx *c, yaml_node_t *map, const char *key)
{
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                const char *k = scalar(yaml_document_get_node(c->doc, p->key));
                if (k && STREQ(k, key))
                        return true;
        }
        return false;
}

/* Calls cb for the pairs of map, then for those of merged mappings ("<<") whose
 * key is not in map (nor in an earlier merge source). */
static int map_walk(struct ef_ctx *c, yaml_node_t *map, yaml_node_t *top, const char *key, ef_map_cb cb,
                    void *data, int depth)
{
        if (depth > EF_MAX_MERGE_DEPTH)
                return ef_fail(c, map, key, "'<<' merges nest too deep");
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = ef_node(c, p->key), *v = ef_node(c, p->value);
                if (!k || !v)
                        return ef_too_big(c, map);
                const char *ks = scalar(k);
                if (!ks)
                        return ef_fail(c, k, key, "a key must be a string");
                if (STREQ(ks, "<<") && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                        continue;
                if (depth > 0 && map_has_key(c, top, ks))
                        continue;
                /* duplicate keys: the first one wins only in broken parsers; refuse */
                if (depth == 0) {
                        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
                                const char *qs = scalar(yaml_document_get_node(c->doc, q->key));
                                if (qs && STREQ(qs, ks))
                                        return ef_fail(c, k, key, "duplicate key '%s'", ks);
                        }
                }
                int r = cb(c, ks, k, v, data);
                if (r < 0)
                        return r;
        }
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = ef_node(c, p->key), *v = ef_node(c, p->value);
                if (!k || !v)
                        return ef_too_big(c, map);
                const char *ks = scalar(k);
                if (!ks || !STREQ(ks, "<<") || k->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                        continue;
                /* "<<: *a" or "<<: [*a, *b]" (earlier sources win) */
                if (v->type == YAML_MAPPING_NODE) {
                        int r = map_walk(c, v, top, key, cb, data, depth + 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (v->type != YAML_SEQUENCE_NODE)
                        return ef_fail(c, v, key, "'<<' needs a mapping or a list of mappings");
                for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                        yaml_node_t *m = ef_node(c, *it);
                        if (!m)
                                return ef_too_big(c, v);
                        if (m->type != YAML_MAPPING_NODE)
                                return ef_fail(c, m, key, "'<<' needs a mapping or a list of mappings");
                        int r = map_walk(c, m, top, key, cb, data, depth + 1);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int ef_map_foreach(struct ef_ctx *c, yaml_node_t *map, const char *key, ef_map_cb cb, void *data)
{
        if (!map || map->type != YAML_MAPPING_NODE)
                return ef_fail(c, map, key, "must be a mapping");
        if (map->data.mapping.pairs.top - map->data.mapping.pairs.start > EF_MAX_LIST)
                return ef_fail(c, map, key, "more than %d entries", EF_MAX_LIST);
        return map_walk(c, map, map, key, cb, data, 0);
}

int ef_string(struct ef_ctx *c, yaml_node_t *n, const char *key, char **out)
{
        const char *s = scalar(n);
        if (!s)
                return ef_fail(c, n, key, "must be a string");
        char *v = NULL;
        int r = ef_interpolate(c, n, key, s, &v);
        if (r < 0)
                return r;
        free(*out);
        *out = v;
        return 0;
}

int ef_bool(struct ef_ctx *c, yaml_node_t *n, const char *key, bool *out)
{
        _cleanup_free_ char *s = NULL;
        int r = ef_string(c, n, key, &s);
        if (r < 0)
                return r;
        if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
                *out = true;
        else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
                *out = false;
        else
                return ef_fail(c, n, key, "'%s' is not a boolean (true or false)", s);
        return 0;
}

int ef_int(struct ef_ctx *c, yaml_node_t *n, const char *key, int64_t min, int64_t max, int64_t *out)
{
        _cleanup_free_ char *s = NULL;
        int r = ef_string(c, n, key, &s);
        if (r < 0)
                return r;
        int64_t v;
        if (parse_i64(s, &v) < 0)
                return ef_fail(c, n, key, "'%s' is not an integer", s);
        if (v < min || v > max)
                return ef_fail(c, n, key, "%s is out of range (%lld..%lld)", s, (long long)min, (long long)max);
        *out = v;
        return 0;
}

int ef_strv(struct ef_ctx *c, yaml_node_t *n, const char *key, bool allow_scalar, char ***out)
{
        _cleanup_strv_ char **v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        if (n->type == YAML_SCALAR_NODE && allow_scalar) {
                _cleanup_free_ char *s = NULL;
                int r = ef_string(c, n, key, &s);
                if (r < 0)
                        return r;
                if (strv_push(&v, s) < 0)
                        return -ENOMEM;
        } else if (n->type == YAML_SEQUENCE_NODE) {
                if (n->data.sequence.items.top - n->data.sequence.items.start > EF_MAX_LIST)
                        return ef_fail(c, n, key, "more than %d entries", EF_MAX_LIST);
                for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
                        yaml_node_t *e = ef_node(c, *it);
                        if (!e)
                                return ef_too_big(c, n);
                        _cleanup_free_ char *s = NULL;
                        int r = ef_string(c, e, key, &s);
                        if (r < 0)
                                return r;
                        if (strv_push(&v, s) < 0)
                                return -ENOMEM;
                }
        } else {
                return ef_fail(c, n, key, allow_scalar ? "must be a string or a list of strings"
                                                       : "must be a list of strings");
        }
        strv_free(*out);
        *out = TAKE_PTR(v);
        return 0;
}

int ef_grow(void *arrayp, size_t *n, size_t elem)
{
        void **a = arrayp;
        if (*n >= EF_MAX_LIST)
                return -E2BIG;
        /* the capacity is the next power of two: grow when n is one */
        if ((*n & (*n - 1)) == 0) {
                void *p = realloc(*a, (*n ? *n * 2 : 1) * elem);
                if (!p)
                        return -ENOMEM;
                *a = p;
        }
        memset((char *)*a + *n * elem, 0, elem);
        (*n)++;
        return 0;
}

/* ------------------------------------------------------------ top level */

struct top {
        struct moat_envfile *f;
        yaml_node_t *services;
};

static int parse_network(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_network *n = data;
        char full[300];
        snprintf(full, sizeof(full), "networks.%s.%s", n->name, key);
        if (STREQ(key, "internal"))
                return ef_bool(c, v, full, &n->internal);
        if (STREQ(key, "external"))
                return ef_bool(c, v, full, &n->external);
        if (STREQ(key, "driver")) {
                _cleanup_free_ char *d = NULL;
                int r = ef_string(c, v, full, &d);
                if (r < 0)
                        return r;
                if (!STREQ(d, "bridge"))
                        return ef_fail(c, v, full, "driver '%s' is not supported (only bridge)", d);
                return 0;
        }
        if (!strncmp(key, "x-", 2))
                return 0;
        if (STREQ(key, "name") || STREQ(key, "labels") || STREQ(key, "ipam") || STREQ(key, "enable_ipv6") ||
            STREQ(key, "driver_opts") || STREQ(key, "attachable")) {
                moat_warn("%s:%d: '%s' is not supported by moat; ignored", c->name, ef_line(k), full);
                return 0;
        }
        ef_unknown(c, k, NULL, full);
        return 0;
}

static int parse_networks_entry(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_envfile *f = data;
        if (!ef_valid_name(key))
                return ef_fail(c, k, "networks", "'%s' is not a valid network name", key);
        int r = ef_grow(&f->networks, &f->n_networks, sizeof(*f->networks));
        if (r < 0)
                return r;
        struct moat_env_network *n = &f->networks[f->n_networks - 1];
        n->line = ef_line(k);
        if (!(n->name = strdup(key)))
                return -ENOMEM;
        if (ef_is_null(v))
                return 0;
        char full[300];
        snprintf(full, sizeof(full), "networks.%s", key);
        r = ef_map_foreach(c, v, full, parse_network, n);
        if (r < 0)
                return r;
        if (n->external)
                return ef_fail(c, k, full, "external networks are not supported: an environment's network is its own");
        return 0;
}

static int parse_volume(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_volume *vol = data;
        char full[300];
        snprintf(full, sizeof(full), "volumes.%s.%s", vol->name, key);
        if (STREQ(key, "external"))
                return ef_bool(c, v, full, &vol->external);
        if (STREQ(key, "driver")) {
                _cleanup_free_ char *d = NULL;
                int r = ef_string(c, v, full, &d);
                if (r < 0)
                        return r;
                if (!STREQ(d, "local"))
                        return ef_fail(c, v, full, "driver '%s' is not supported (only local)", d);
                return 0;
        }
        if (!strncmp(key, "x-", 2))
                return 0;
        if (STREQ(key, "name") || STREQ(key, "labels") || STREQ(key, "driver_opts")) {
                moat_warn("%s:%d: '%s' is not supported by moat; ignored", c->name, ef_line(k), full);
                return 0;
        }
        ef_unknown(c, k, NULL, full);
        return 0;
}

static int parse_volumes_entry(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_envfile *f = data;
        if (!ef_valid_name(key))
                return ef_fail(c, k, "volumes", "'%s' is not a valid volume name", key);
        int r = ef_grow(&f->volumes, &f->n_volumes, sizeof(*f->volumes));
        if (r < 0)
                return r;
        struct moat_env_volume *vol = &f->volumes[f->n_volumes - 1];
        vol->line = ef_line(k);
        if (!(vol->name = strdup(key)))
                return -ENOMEM;
        if (ef_is_null(v))
                return 0;
        char full[300];
        snprintf(full, sizeof(full), "volumes.%s", key);
        return ef_map_foreach(c, v, full, parse_volume, vol);
}

static int parse_xmoat_top(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_envfile *f = data;
        if (STREQ(key, "policy")) {
                _cleanup_free_ char *s = NULL;
                int r = ef_string(c, v, "x-moat.policy", &s);
                if (r < 0)
                        return r;
                if (STREQ(s, "open"))
                        f->policy = MOAT_POLICY_OPEN;
                else if (STREQ(s, "default"))
                        f->policy = MOAT_POLICY_DEFAULT;
                else
                        return ef_fail(c, v, "x-moat.policy", "'%s' is not a policy (open or default)", s);
                return 0;
        }
        ef_unknown(c, k, "x-moat: ", key);
        return 0;
}

static int parse_top(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct top *t = data;
        if (STREQ(key, "services")) {
                if (v->type != YAML_MAPPING_NODE && !ef_is_null(v))
                        return ef_fail(c, v, "services", "must be a mapping of service names");
                t->services = v;
                return 0;
        }
        if (STREQ(key, "networks"))
                return ef_is_null(v) ? 0 : ef_map_foreach(c, v, "networks", parse_networks_entry, t->f);
        if (STREQ(key, "volumes"))
                return ef_is_null(v) ? 0 : ef_map_foreach(c, v, "volumes", parse_volumes_entry, t->f);
        if (STREQ(key, "x-moat"))
                return ef_is_null(v) ? 0 : ef_map_foreach(c, v, "x-moat", parse_xmoat_top, t->f);
        if (STREQ(key, "name"))
                return ef_string(c, v, "name", &t->f->name);
        if (STREQ(key, "version") || !strncmp(key, "x-", 2))
                return 0; /* obsolete / extension fields */
        if (STREQ(key, "secrets") || STREQ(key, "configs") || STREQ(key, "include")) {
                moat_warn("%s:%d: '%s' is not supported by moat; ignored", c->name, ef_line(k), key);
                return 0;
        }
        ef_unknown(c, k, NULL, key);
        return 0;
}

static int parse_services_entry(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_envfile *f = data;
        if (!ef_valid_name(key))
                return ef_fail(c, k, "services", "'%s' is not a valid service name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)",
                               key);
        if (f->n_services >= MOAT_ENVFILE_MAX_SERVICES)
                return ef_fail(c, k, "services", "more than %d services", MOAT_ENVFILE_MAX_SERVICES);
        int r = ef_grow(&f->services, &f->n_services, sizeof(*f->services));
        if (r < 0)
                return r;
        struct moat_env_service *s = &f->services[f->n_services - 1];
        c->svc = key;
        r = ef_parse_service(c, key, k, v, s);
        c->svc = NULL;
        return r;
}

static void load_dotenv(struct ef_ctx *c, const char *dir)
{
        _cleanup_free_ char *p = NULL, *data = NULL;
        if (asprintf(&p, "%s/.env", dir) < 0)
                return;
        size_t len;
        struct stat st;
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MOAT_ENVFILE_MAX_SIZE)
                return;
        if (read_file_at(AT_FDCWD, p, &data, &len) < 0)
                return;
        int bad = 0;
        if (ef_parse_dotenv(data, &c->dotenv, &bad) < 0)
                moat_warn("%s:%d: not a KEY=VALUE line; ignored the rest", p, bad);
}

static const char *yaml_problem(yaml_parser_t *p)
{
        return p->problem ? p->problem : "syntax error";
}

int moat_envfile_parse(const char *data, size_t len, const char *name, const char *dir,
                       const struct moat_envfile_options *opts, struct moat_envfile **out,
                       struct moat_error **err)
{
        if (!name)
                name = "compose.yaml";
        if (!dir)
                dir = ".";
        if (len > MOAT_ENVFILE_MAX_SIZE)
                return moat_error_input(err, EFBIG, "%s: the file is over %u MiB; refusing it", name,
                                        MOAT_ENVFILE_MAX_SIZE >> 20);
        struct ef_ctx c = { .name = name, .dir = dir, .err = err };
        if (opts)
                c.environ = opts->environ;
        _cleanup_strv_ char **dotenv = NULL;
        if (!opts || !opts->no_dotenv) {
                load_dotenv(&c, dir);
                dotenv = c.dotenv;
        }

        yaml_parser_t parser;
        yaml_document_t doc;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
        if (!yaml_parser_load(&parser, &doc)) {
                int r = moat_error_input(err, EINVAL, "%s:%zu: %s%s%s", name, parser.problem_mark.line + 1,
                                         yaml_problem(&parser), parser.context ? " " : "",
                                         parser.context ? parser.context : "");
                yaml_parser_delete(&parser);
                return r;
        }
        /* a second document in the stream is not a compose file */
        yaml_document_t extra;
        bool more = false;
        if (yaml_parser_load(&parser, &extra)) {
                more = yaml_document_get_root_node(&extra) != NULL;
                yaml_document_delete(&extra);
        }
        yaml_parser_delete(&parser);
        c.doc = &doc;

        int r = 0;
        _cleanup_envfile_ struct moat_envfile *f = calloc(1, sizeof(*f));
        if (!f) {
                r = -ENOMEM;
                goto out;
        }
        if (!(f->path = strdup(name)) || !(f->dir = strdup(dir))) {
                r = -ENOMEM;
                goto out;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root || ef_is_null(root)) {
                r = moat_error_input(err, EINVAL, "%s: the file is empty (it needs a 'services' mapping)", name);
                goto out;
        }
        if (more) {
                r = moat_error_input(err, EINVAL, "%s: more than one YAML document; a compose file is one", name);
                goto out;
        }
        if (root->type != YAML_MAPPING_NODE) {
                r = ef_fail(&c, root, NULL, "the top level must be a mapping (services:, networks:, volumes:)");
                goto out;
        }
        struct top t = { .f = f };
        r = ef_map_foreach(&c, root, NULL, parse_top, &t);
        if (r < 0)
                goto out;
        if (!t.services || ef_is_null(t.services)) {
                r = moat_error_input(err, EINVAL, "%s: no services (a 'services' mapping is needed)", name);
                goto out;
        }
        r = ef_map_foreach(&c, t.services, "services", parse_services_entry, f);
        if (r < 0)
                goto out;
        if (f->n_services == 0) {
                r = moat_error_input(err, EINVAL, "%s: 'services' is empty", name);
                goto out;
        }
        *out = TAKE_PTR(f);
out:
        if (r == -E2BIG && err && !*err)
                moat_error_input(err, E2BIG, "%s: a list or mapping has more than %d entries", name, EF_MAX_LIST);
        else if (r < 0 && err && !*err)
                moat_error_set(err, r, "%s", name);
        yaml_document_delete(&doc);
        return r;
}

int moat_envfile_load(const char *path, const struct moat_envfile_options *opts, struct moat_envfile **out,
                      struct moat_error **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot open '%s'", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return moat_error_set(err, errno, "cannot stat '%s'", path);
        if (!S_ISREG(st.st_mode))
                return moat_error_input(err, EINVAL, "'%s' is not a regular file", path);
        if (st.st_size > MOAT_ENVFILE_MAX_SIZE)
                return moat_error_input(err, EFBIG, "%s: the file is over %u MiB; refusing it", path,
                                        MOAT_ENVFILE_MAX_SIZE >> 20);
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_fd_all(fd, &data, &len);
        if (r < 0)
                return moat_error_set(err, r, "cannot read '%s'", path);
        _cleanup_free_ char *copy = strdup(path), *abs = NULL;
        if (!copy)
                return -ENOMEM;
        char *slash = strrchr(copy, '/');
        const char *dir = ".";
        if (slash == copy)
                dir = "/";
        else if (slash) {
                *slash = '\0';
                dir = copy;
        }
        abs = realpath(dir, NULL);
        if (!abs)
                return moat_error_set(err, errno, "cannot resolve the directory of '%s'", path);
        return moat_envfile_parse(data, len, path, abs, opts, out, err);
}

void moat_envfile_free(struct moat_envfile *f)
{
        if (!f)
                return;
        for (size_t i = 0; i < f->n_services; i++)
                ef_service_free(&f->services[i]);
        free(f->services);
        for (size_t i = 0; i < f->n_networks; i++)
                free(f->networks[i].name);
        free(f->networks);
        for (size_t i = 0; i < f->n_volumes; i++)
                free(f->volumes[i].name);
        free(f->volumes);
        free(f->path);
        free(f->dir);
        free(f->name);
        free(f);
}

const struct moat_env_service *moat_envfile_service(const struct moat_envfile *f, const char *name)
{
        for (size_t i = 0; i < f->n_services; i++)
                if (STREQ(f->services[i].name, name))
                        return &f->services[i];
        return NULL;
}
