/* SPDX-License-Identifier: Apache-2.0 */
/* A VM's port on an environment's bridge: a TAP device where a container has a veth
 * (net/attach.h), with the same name "moat-<tag>-<last byte of addr>", so the environment's
 * policy (its per-port anti-spoofing set and everything keyed on addresses) applies to a VM
 * exactly as to a container.  The TAP is not persistent: it goes when the last fd on it
 * closes (QEMU's and ours), so a VMM that dies leaves no link behind. */
#pragma once

#include <net/if.h>
#include <netinet/in.h>

#include "core/error.h"
#include "net/netlink.h"

/* The Ethernet address of the guest (or container) with addr: 02:6d:<the 4 bytes of addr>,
 * locally administered, stable across restarts so the peers' ARP caches stay right. */
void moat_net_addr_mac(struct in_addr addr, unsigned char mac[static 6]);

/* Creates the TAP for addr on the bridge of env (which must exist: the environment is up),
 * up, hairpin off, IPv6 off; a leftover link of that name (a crash) is deleted first.
 * *tap_fd (O_CLOEXEC, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) for the VMM; name (may be NULL)
 * receives the TAP's name.  On failure nothing is left. */
int moat_net_tap_attach(struct moat_nl *nl, const char *env, struct in_addr addr, int *tap_fd,
                        char name[IFNAMSIZ], struct moat_error **err);
