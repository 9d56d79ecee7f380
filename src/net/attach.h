/* SPDX-License-Identifier: Apache-2.0 */
/* The network of an environment, from the pieces in link.h / addr.h / ipam.h:
 * its bridge (with the gateway address) and, per container, a veth whose
 * "eth0" end is inside the container's netns with its address and default
 * route.  IPv6 is disabled on all of them: never open by accident. */
#pragma once

#include <net/if.h>
#include <netinet/in.h>

#include "core/error.h"
#include "net/ipam.h"
#include "net/netlink.h"

/* Creates the environment's bridge "moat-<tag>" if missing, gives it the
 * gateway address of net, hairpin off on its ports, IPv6 off, and sets it up.
 * nl: the host side's netns (NULL: the caller's); host_netns_fd the same netns
 * as an fd for the sysctl (-1: the caller's).  mtu 0: default. */
int moat_net_bridge_ensure(struct moat_nl *nl, int host_netns_fd, const char *env, const struct moat_ipam_net *net,
                           unsigned mtu, struct moat_error **err);

/* Plugs the netns of netns_fd into the environment's bridge: veth
 * "moat-<tag>-<last byte of addr>" on the host side (a bridge port, up,
 * hairpin off, IPv6 off) and "eth0" inside with addr/24, Ethernet address
 * 02:6d:<the 4 bytes of addr> (stable across re-attach), up, lo up, IPv6 off,
 * default route via the gateway.  On failure nothing is left behind.
 * host_if (may be NULL) receives the host end's name. */
int moat_net_attach(struct moat_nl *nl, int host_netns_fd, const char *env, int netns_fd, struct in_addr addr,
                    const struct moat_ipam_net *net, unsigned mtu, char host_if[IFNAMSIZ], struct moat_error **err);
