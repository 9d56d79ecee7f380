/* SPDX-License-Identifier: Apache-2.0 */
/* Per-environment network policy, enforced on the host with nftables.
 *
 * One environment = one Linux bridge + one IPv4 subnet.  moat_policy_apply() replaces, in one
 * nftables transaction, two tables named after the environment:
 *   inet   moat-<env>  forward/input/output filter (routed traffic, host <-> containers, egress,
 *                      and bridged traffic when br_netfilter passes it up), DNAT for published
 *                      ports, masquerade for declared egress;
 *   bridge moat-<env>  forward filter for container <-> container traffic on the same bridge
 *                      (bridged frames never reach the inet forward hook without br_netfilter),
 *                      matched by the ports' name prefix.
 * Allowed pairs, egress destinations and published ports live in sets/maps, so the rule count
 * is constant and per-packet cost stays flat however many services there are.
 * Everything from/to the bridge that is not allowed is logged to NFLOG group `nflog_group`
 * with prefix "moat-deny" and dropped.  IPv6 on the bridge is dropped, never opened. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MOAT_POLICY_LOG_PREFIX "moat-deny"
#define MOAT_POLICY_TABLE_PREFIX "moat-"
/* env names: [A-Za-z0-9_.-], starting with a letter or digit, at most this long */
#define MOAT_POLICY_ENV_MAX 48

struct moat_policy_service {
        const char *name;
        struct in_addr addr;
};

struct moat_policy_port {
        uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
        uint16_t port; /* host order, 1..65535 */
};

/* src may connect to dst on the given ports; n_ports == 0: on any port and protocol. */
struct moat_policy_pair {
        const char *src, *dst;
        const struct moat_policy_port *ports;
        size_t n_ports;
};

/* host_addr:host_port/proto -> service:port.  host_addr INADDR_ANY: every local address.
 * 127.0.0.1 only works with net.ipv4.conf.<if>.route_localnet=1: prefer the bridge's address. */
struct moat_policy_publish {
        struct in_addr host_addr;
        uint16_t host_port;
        const char *service;
        uint16_t port;
        uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
};

/* service (NULL: every service of the environment) may reach addr/prefix_len, on port
 * (0: any) over proto (0: tcp and udp).  Hostnames are resolved by the caller. */
struct moat_policy_egress {
        const char *service;
        struct in_addr addr;
        uint8_t prefix_len;
        uint16_t port;
        uint8_t proto;
};

enum moat_policy_ipv6 {
        MOAT_POLICY_IPV6_DROP = 0,       /* drop every IPv6 packet from/to/across the bridge */
        MOAT_POLICY_IPV6_LINKS_DISABLED, /* IPv6 also disabled on the links; still dropped here */
};

struct moat_policy {
        const char *env;    /* table name is moat-<env> */
        const char *bridge; /* interface name of the environment's bridge */
        /* name prefix of the bridge's ports (host ends of the veths); NULL: "<bridge>-", the
         * naming of net/link.h.  The bridge family cannot match the bridge itself on kernels
         * without CONFIG_NFT_BRIDGE_META (meta ibrname), so its chain matches the ports. */
        const char *port_prefix;
        struct in_addr subnet;
        uint8_t subnet_len;
        const struct moat_policy_service *services;
        size_t n_services;
        const struct moat_policy_pair *pairs;
        size_t n_pairs;
        const struct moat_policy_publish *published;
        size_t n_published;
        const struct moat_policy_egress *egress;
        size_t n_egress;
        uint16_t nflog_group;
        enum moat_policy_ipv6 ipv6;
};

/* The nftables ruleset text for p (the whole transaction: create-if-missing, delete, define,
 * for both tables).  *out is malloc'ed. */
int moat_policy_render(const struct moat_policy *p, char **out, struct moat_error **err);
/* Validates p, renders it and runs it through libnftables as one transaction: the tables are
 * replaced atomically (packets see either the old or the new policy, never none). */
int moat_policy_apply(const struct moat_policy *p, struct moat_error **err);
/* Deletes the environment's tables.  Idempotent: no error if they are not there. */
int moat_policy_remove(const char *env, struct moat_error **err);
/* The environments that have a moat-<env> table (inet or bridge) in the current network
 * namespace: a NULL-terminated, sorted, deduplicated strv (free with strv_free). */
int moat_policy_list(char ***envs, struct moat_error **err);

/* "10.1.2.0/24", "10.1.2.3", "10.1.2.3:443", "10.1.2.0/24:53" (port: tcp and udp) -> *out
 * (service = NULL).  what names the input in messages. */
int moat_policy_parse_egress(const char *s, struct moat_policy_egress *out, struct moat_error **err);
/* Name checks used by apply (exported for callers that validate early). */
bool moat_policy_env_name_ok(const char *env);
bool moat_policy_ifname_ok(const char *ifname);
