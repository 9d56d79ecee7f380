/* SPDX-License-Identifier: Apache-2.0 */
/* The resolved plan of an environment: the parsed file checked as a whole
 * (depends_on / allow name real services, networks and named volumes are
 * declared), the project name, the start order (topological over depends_on;
 * a cycle is an error naming it), the networks, and the reachability matrix:
 * which service may open connections to which (and on which ports).
 *
 * Reachability: with the default policy a service reaches the services it
 * lists in depends_on (any port) or x-moat.allow (SERVICE: any port, SERVICE:PORT:
 * that port; a service named in allow gets only the ports allow gives it),
 * provided they share a network; with x-moat.policy: open, every service
 * reaches every other one it shares a network with (plain Compose). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"
#include "env/envfile.h"

struct moat_plan_network {
        char *name;          /* as in the file ("default" for the implicit one) */
        char *full_name;     /* "<project>_<name>" */
        bool internal;
        bool is_default;
};

struct moat_plan_edge {
        size_t from, to;     /* indexes into file->services */
        uint16_t *ports;     /* n_ports == 0: any port */
        size_t n_ports;
        bool via_depends_on; /* from depends_on (else allow or policy: open) */
};

struct moat_plan {
        char *project;
        struct moat_envfile *file;    /* owned */
        enum moat_env_policy policy;
        size_t *order;                /* service indexes, dependencies first */
        struct moat_plan_network *networks;
        size_t n_networks;
        struct moat_plan_edge *edges; /* sorted by (from, to) */
        size_t n_edges;
};

/* Builds the plan; takes f (freed on failure too).  project: -p, or NULL:
 * $COMPOSE_PROJECT_NAME, the file's top-level name:, else its directory's name
 * (lowercased, reduced to [a-z0-9_-]).  environ as in moat_envfile_options
 * (NULL: the process environment). */
int moat_plan_build(struct moat_envfile *f, const char *project, char *const *environ, struct moat_plan **out,
                    struct moat_error **err);
void moat_plan_free(struct moat_plan *p);
static inline void moat_plan_freep(struct moat_plan **p) { moat_plan_free(*p); }
#define _cleanup_plan_ __attribute__((cleanup(moat_plan_freep)))

/* Normalizes a name into a project name; strict: an error when name has
 * characters outside [a-z0-9_-] or does not start with [a-z0-9]; else: lowercases
 * and drops them (directory names). */
int moat_project_name(const char *name, bool strict, char **out, struct moat_error **err);

/* Whether service from may connect to service to on port (0: any port asked). */
bool moat_plan_can_reach(const struct moat_plan *p, size_t from, size_t to, uint16_t port);
/* The index of a service, or -ENOENT. */
ssize_t moat_plan_service_index(const struct moat_plan *p, const char *name);
/* Whether service i is on network name. */
bool moat_plan_service_on(const struct moat_plan *p, size_t i, const char *network);
