/* SPDX-License-Identifier: Apache-2.0 */
#include "net/attach.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/cleanup.h"
#include "net/addr.h"
#include "net/link.h"
#include "net/tap.h"

int moat_net_bridge_ensure(struct moat_nl *nl, int host_netns_fd, const char *env, const struct moat_ipam_net *net,
                           unsigned mtu, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        char br[IFNAMSIZ];
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        moat_net_bridge_name(env, br);
        struct moat_link_info info;
        r = moat_link_get(s, br, &info, err);
        if (r == -ENODEV)
                r = moat_bridge_create_nl(s, br, mtu, err);
        else if (r >= 0 && !STREQ(info.kind, "bridge"))
                return moat_error_input(err, -EEXIST, "link '%s' of environment '%s' exists and is not a bridge "
                                        "(kind '%s'): remove it", br, env, info.kind);
        if (r < 0)
                return r;
        if ((r = moat_link_disable_ipv6(host_netns_fd, br, true, err)) < 0 ||
            (r = moat_addr_add4(s, br, net->gateway, net->prefixlen, err)) < 0 ||
            (r = moat_link_set_up(s, br, true, err)) < 0)
                return moat_error_prefix(err, r, "network of environment '%s'", env);
        return 0;
}

int moat_net_attach(struct moat_nl *nl, int host_netns_fd, const char *env, int netns_fd, struct in_addr addr,
                    const struct moat_ipam_net *net, unsigned mtu, char host_if[IFNAMSIZ], struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        _cleanup_nl_ struct moat_nl *inner = NULL;
        struct moat_nl *s;
        char br[IFNAMSIZ], veth[IFNAMSIZ], ip[INET_ADDRSTRLEN];
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        inet_ntop(AF_INET, &addr, ip, sizeof(ip));
        moat_net_bridge_name(env, br);
        moat_net_veth_name(env, ntohl(addr.s_addr) & 0xff, veth);
        /* a leftover of a crash has the name we want: it is ours, it goes */
        if ((r = moat_link_delete(s, veth, err)) < 0)
                return r;
        if ((r = moat_veth_create(s, veth, netns_fd, "eth0", mtu, err)) < 0)
                return moat_error_prefix(err, r, "network of environment '%s'", env);
        if ((r = moat_link_set_master(s, veth, br, err)) < 0 || (r = moat_bridge_port_hairpin(s, veth, false, err)) < 0 ||
            (r = moat_link_disable_ipv6(host_netns_fd, veth, true, err)) < 0 ||
            (r = moat_link_set_up(s, veth, true, err)) < 0)
                goto fail;
        /* A MAC derived from the address (02:6d:a.b.c.d, locally administered):
         * a container attached again after a crash keeps it, so its peers'
         * ARP caches stay right. */
        unsigned char mac[6];
        moat_net_addr_mac(addr, mac);
        if ((r = moat_nl_open(netns_fd, &inner, err)) < 0 || (r = moat_link_set_mac(inner, "eth0", mac, err)) < 0 ||
            (r = moat_link_disable_ipv6(netns_fd, "eth0", true, err)) < 0 ||
            (r = moat_addr_add4(inner, "eth0", addr, net->prefixlen, err)) < 0 ||
            (r = moat_link_set_up(inner, "eth0", true, err)) < 0 || (r = moat_loopback_up(inner, err)) < 0 ||
            (r = moat_route_add_default4(inner, net->gateway, "eth0", err)) < 0)
                goto fail;
        if (host_if)
                memcpy(host_if, veth, IFNAMSIZ);
        return 0;
fail:
        (void)moat_link_delete(s, veth, NULL); /* takes eth0 with it */
        return moat_error_prefix(err, r, "attaching '%s' to environment '%s'", ip, env);
}
