/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 addresses and routes over rtnetlink.  nl may be NULL (caller's netns). */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "net/netlink.h"

/* Adds addr/prefixlen to link name (with the subnet's broadcast address).
 * An address already there is not an error. */
int moat_addr_add4(struct moat_nl *nl, const char *name, struct in_addr addr, unsigned prefixlen,
                   struct moat_error **err);
/* Adds "default via gw" to the main table (dev: the link to use, may be NULL). */
int moat_route_add_default4(struct moat_nl *nl, struct in_addr gw, const char *dev, struct moat_error **err);
/* Sets "lo" up. */
int moat_loopback_up(struct moat_nl *nl, struct moat_error **err);

/* One IPv4 route of the host: dst/len (len 0: a default route), its output link. */
struct moat_route4 {
        struct in_addr dst;
        unsigned len;
        struct in_addr gw;  /* 0.0.0.0 if none */
        unsigned table;
        int oif;
        char dev[IFNAMSIZ]; /* "" if none or unknown */
};
/* Every IPv4 route of every table (main, local, policy tables...). */
int moat_routes4_list(struct moat_nl *nl, struct moat_route4 **out, size_t *n, struct moat_error **err);
/* IPv4 addresses of a link, as dst/len pairs in a moat_route4 array (dev set). */
int moat_addrs4_list(struct moat_nl *nl, const char *name, struct moat_route4 **out, size_t *n,
                     struct moat_error **err);

/* "a.b.c.d/len" into addr (host order bits below len must be zero unless !strict). */
int moat_cidr4_parse(const char *s, struct in_addr *addr, unsigned *len, bool strict);
/* Do a/alen and b/blen share any address? */
bool moat_cidr4_overlap(struct in_addr a, unsigned alen, struct in_addr b, unsigned blen);
