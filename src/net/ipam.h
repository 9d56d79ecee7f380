/* SPDX-License-Identifier: Apache-2.0 */
/* Persistent IPv4 address management for environments.
 *
 * Each environment gets a /24 from a pool (default 10.213.0.0/16; settable by
 * `subnet_pool = A.B.C.D/N` in /etc/moat/moat.conf or by opts->pool) that does
 * not overlap any IPv4 route of the host (every table; default routes aside).
 * .1 is the gateway (the bridge's address), .2 to .254 go to services.
 * Records live in <state_dir>/ipam.json, rewritten atomically (temp file +
 * rename) under an flock on <state_dir>/ipam.lock, so several processes can
 * allocate at once.  Released records stay as inactive hints: the same
 * environment gets the same subnet, and the same service the same address, on
 * the next up when they are still free.  Inactive records are reclaimed only
 * when nothing else is left. */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "net/addr.h"

#define MOAT_IPAM_DEFAULT_POOL "10.213.0.0/16"
#define MOAT_CONF_PATH "/etc/moat/moat.conf"

struct moat_ipam_opts {
        const char *state_dir;   /* required; created if missing */
        const char *pool;        /* NULL: subnet_pool from conf_path, else the default */
        const char *conf_path;   /* NULL: MOAT_CONF_PATH */
        /* Host routes to avoid.  routes_given false: read through netlink from
         * the caller's netns when a new subnet must be chosen. */
        bool routes_given;
        const struct moat_route4 *routes;
        size_t n_routes;
};

struct moat_ipam_net {
        struct in_addr subnet;   /* a.b.c.0 */
        unsigned prefixlen;      /* 24 */
        struct in_addr gateway;  /* a.b.c.1 */
};

/* The pool in effect: opts->pool, else the config file's, else the default. */
int moat_ipam_pool(const struct moat_ipam_opts *o, struct in_addr *pool, unsigned *len, struct moat_error **err);

/* The environment's subnet, allocated if it has none (and marked in use). */
int moat_ipam_env_net(const struct moat_ipam_opts *o, const char *env, struct moat_ipam_net *net,
                      struct moat_error **err);
/* An address for (env, service); allocates the environment's subnet too if
 * needed.  net may be NULL. */
int moat_ipam_alloc(const struct moat_ipam_opts *o, const char *env, const char *service, struct in_addr *addr,
                    struct moat_ipam_net *net, struct moat_error **err);
/* Marks a service's address (service NULL: the whole environment) free,
 * keeping it as a hint for the next up.  Unknown names are not an error. */
int moat_ipam_release(const struct moat_ipam_opts *o, const char *env, const char *service,
                      struct moat_error **err);
/* Drops every record of an environment. */
int moat_ipam_forget(const struct moat_ipam_opts *o, const char *env, struct moat_error **err);
