/* SPDX-License-Identifier: Apache-2.0 */
/* Links of an environment: one bridge "moat-<tag>" per environment, a veth
 * per container whose host end is "moat-<tag>-<n>" (a port of the bridge) and
 * whose other end is "eth0" inside the container's netns.
 *
 * Every function taking `struct moat_nl *nl` works in that socket's netns;
 * nl may be NULL for the caller's netns. */
#pragma once

#include <net/if.h>
#include <stdbool.h>

#include "core/error.h"
#include "net/netlink.h"

/* Environment tag: the environment name when it is 1..6 characters of
 * [a-z0-9], else its first [a-z0-9] characters (up to 2) and 4 hex digits of a
 * hash of the whole name.  Never contains '-', so "moat-<tag>" and
 * "moat-<tag>-*" name exactly one environment's links.  out: >= 8 bytes. */
void moat_net_env_tag(const char *env, char out[static 8]);
/* "moat-<tag>" (bridge) and "moat-<tag>-<n>" (host end of a veth, n <= 999). */
void moat_net_bridge_name(const char *env, char out[static IFNAMSIZ]);
int moat_net_veth_name(const char *env, unsigned n, char out[static IFNAMSIZ]);

/* Valid interface name: 1..15 bytes, no '/', ':' or whitespace, not "." / "..". */
bool moat_ifname_valid(const char *name);

/* ifindex of name, or -ENODEV. */
int moat_link_index(struct moat_nl *nl, const char *name, struct moat_error **err);

/* Name of link index (no message on error: -ENODEV if none). */
int moat_link_name(struct moat_nl *nl, int index, char out[static IFNAMSIZ]);

/* Creates a bridge (down; mtu 0 = kernel default).  -EEXIST if the name is taken. */
int moat_bridge_create_nl(struct moat_nl *nl, const char *name, unsigned mtu, struct moat_error **err);
/* The same in the caller's netns. */
int moat_bridge_create(const char *name, unsigned mtu, struct moat_error **err);

/* Deletes a link; a link that does not exist is not an error. */
int moat_link_delete(struct moat_nl *nl, const char *name, struct moat_error **err);

/* Creates a veth pair: host_name in nl's netns, the peer directly inside the
 * netns of peer_netns_fd, named peer_name there (NULL: "eth0").  mtu 0 =
 * default.  Both ends stay down. */
int moat_veth_create(struct moat_nl *nl, const char *host_name, int peer_netns_fd, const char *peer_name,
                     unsigned mtu, struct moat_error **err);

/* Enslaves name to bridge master (master NULL: releases it from its master). */
int moat_link_set_master(struct moat_nl *nl, const char *name, const char *master, struct moat_error **err);
int moat_link_set_up(struct moat_nl *nl, const char *name, bool up, struct moat_error **err);
/* Sets the Ethernet address (the link should be down). */
int moat_link_set_mac(struct moat_nl *nl, const char *name, const unsigned char mac[6], struct moat_error **err);
int moat_link_set_mtu(struct moat_nl *nl, const char *name, unsigned mtu, struct moat_error **err);
/* Hairpin mode of a bridge port (off: a frame never goes back out the port it came in by). */
int moat_bridge_port_hairpin(struct moat_nl *nl, const char *name, bool on, struct moat_error **err);
/* Writes /proc/sys/net/ipv6/conf/<name>/disable_ipv6 inside the netns of
 * netns_fd (< 0: the caller's).  A kernel without IPv6 is not an error. */
int moat_link_disable_ipv6(int netns_fd, const char *name, bool disable, struct moat_error **err);

struct moat_link_info {
        int index;
        unsigned mtu;
        unsigned flags;   /* IFF_UP, ... */
        int master;       /* ifindex of the master, 0 if none */
        char name[IFNAMSIZ];
        char kind[16];    /* "bridge", "veth", "" */
};
/* Reads a link's state; -ENODEV if it does not exist. */
int moat_link_get(struct moat_nl *nl, const char *name, struct moat_link_info *out, struct moat_error **err);

/* Names of every link whose name starts with prefix (NULL-terminated, strv_free). */
int moat_link_list(struct moat_nl *nl, const char *prefix, char ***names, struct moat_error **err);
/* Deletes every link of an environment: "moat-<tag>" and "moat-<tag>-*"
 * (cleanup after a crash).  Returns how many were deleted. */
int moat_net_delete_env_links(struct moat_nl *nl, const char *env, struct moat_error **err);
