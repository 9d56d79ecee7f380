/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between envfile*.c: the parse context and node helpers. */
#pragma once

#include <yaml.h>

#include "env/envfile.h"

/* A billion-laughs guard: the document API keeps an alias as a reference to the
 * anchored node (memory stays proportional to the file), but walking the tree
 * visits a node once per reference; the walk stops after this many visits. */
#define EF_MAX_VISITS 500000
#define EF_MAX_MERGE_DEPTH 16
#define EF_MAX_LIST 10000 /* entries in one list (ports, environment, ...) */

struct ef_ctx {
        yaml_document_t *doc;
        const char *name;            /* file name in messages */
        const char *dir;             /* base for relative paths */
        char *const *environ;        /* NULL: the process environment */
        char **dotenv;               /* "KEY=VALUE" from DIR/.env */
        long visits;
        struct moat_error **err;
        const char *svc;             /* current service, in messages */
};

typedef int (*ef_map_cb)(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data);

yaml_node_t *ef_node(struct ef_ctx *c, int idx);
int ef_line(const yaml_node_t *n);
int ef_fail(struct ef_ctx *c, const yaml_node_t *n, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void ef_unknown(struct ef_ctx *c, const yaml_node_t *k, const char *where, const char *key);
bool ef_is_null(const yaml_node_t *n);
int ef_too_big(struct ef_ctx *c, const yaml_node_t *n); /* the visit budget ran out */
/* Iterates a mapping (merge keys "<<" included), calling cb for each pair. */
int ef_map_foreach(struct ef_ctx *c, yaml_node_t *map, const char *key, ef_map_cb cb, void *data);
/* A scalar, interpolated; a copy in *out. */
int ef_string(struct ef_ctx *c, yaml_node_t *n, const char *key, char **out);
int ef_bool(struct ef_ctx *c, yaml_node_t *n, const char *key, bool *out);
int ef_int(struct ef_ctx *c, yaml_node_t *n, const char *key, int64_t min, int64_t max, int64_t *out);
/* A sequence of scalars (or one scalar when allow_scalar) into a vector. */
int ef_strv(struct ef_ctx *c, yaml_node_t *n, const char *key, bool allow_scalar, char ***out);
int ef_interpolate(struct ef_ctx *c, const yaml_node_t *n, const char *key, const char *in, char **out);

/* envfile_values.c */
int ef_parse_dotenv(const char *data, char ***out, int *bad_line);
const char *ef_lookup_var(struct ef_ctx *c, const char *name);
int ef_parse_port_string(const char *s, struct moat_env_port *p); /* -EINVAL with nothing allocated */
int ef_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi);
int ef_parse_egress(const char *s, struct moat_env_egress *e);
bool ef_valid_name(const char *s); /* service / network / volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]* */
int ef_grow(void *arrayp, size_t *n, size_t elem);  /* appends one zeroed element */

/* envfile_service.c */
int ef_parse_service(struct ef_ctx *c, const char *name, yaml_node_t *k, yaml_node_t *v, struct moat_env_service *s);
void ef_service_free(struct moat_env_service *s);

/* envfile_mounts.c */
int ef_parse_ports(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s);
int ef_parse_volumes(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s);
int ef_parse_tmpfs(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s);
