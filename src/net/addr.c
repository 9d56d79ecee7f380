/* SPDX-License-Identifier: Apache-2.0 */
#include "net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "net/link.h"

static uint32_t mask_of(unsigned len)
{
        return len == 0 ? 0 : 0xffffffffu << (32 - len);
}

int moat_cidr4_parse(const char *s, struct in_addr *addr, unsigned *len, bool strict)
{
        char ip[INET_ADDRSTRLEN];
        const char *slash = s ? strchr(s, '/') : NULL;
        if (!slash || (size_t)(slash - s) >= sizeof(ip))
                return -EINVAL;
        memcpy(ip, s, (size_t)(slash - s));
        ip[slash - s] = '\0';
        int l;
        if (slash[1] < '0' || slash[1] > '9')
                return -EINVAL;
        if (inet_pton(AF_INET, ip, addr) != 1 || parse_int(slash + 1, &l) < 0 || l < 0 || l > 32)
                return -EINVAL;
        if (strict && (ntohl(addr->s_addr) & ~mask_of((unsigned)l)))
                return -EINVAL;
        *len = (unsigned)l;
        return 0;
}

bool moat_cidr4_overlap(struct in_addr a, unsigned alen, struct in_addr b, unsigned blen)
{
        uint32_t m = mask_of(alen < blen ? alen : blen);
        return (ntohl(a.s_addr) & m) == (ntohl(b.s_addr) & m);
}

int moat_addr_add4(struct moat_nl *nl, const char *name, struct in_addr addr, unsigned prefixlen,
                   struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &addr, ip, sizeof(ip));
        if (prefixlen < 1 || prefixlen > 32)
                return moat_error_input(err, -EINVAL, "invalid prefix length %u for '%s'", prefixlen, ip);
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        int idx = moat_link_index(s, name, err);
        if (idx == -ENODEV)
                return moat_error_set(err, idx, "cannot add address '%s/%u' to '%s'", ip, prefixlen, name);
        if (idx < 0)
                return idx;
        char buf[MOAT_NL_BUFSZ];
        struct ifaddrmsg *ifa;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifa), (void **)&ifa);
        ifa->ifa_family = AF_INET;
        ifa->ifa_prefixlen = (unsigned char)prefixlen;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        ifa->ifa_index = (unsigned)idx;
        mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
        mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
        if (prefixlen < 31) {
                struct in_addr brd = { .s_addr = htonl(ntohl(addr.s_addr) | ~mask_of(prefixlen)) };
                mnl_attr_put(nlh, IFA_BROADCAST, sizeof(brd), &brd);
        }
        r = moat_nl_request_ignore(s, nlh, EEXIST, err, "cannot add address '%s/%u' to '%s'", ip, prefixlen, name);
        return r == -EEXIST ? 0 : r;
}

int moat_route_add_default4(struct moat_nl *nl, struct in_addr gw, const char *dev, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &gw, ip, sizeof(ip));
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        int idx = 0;
        if (dev) {
                idx = moat_link_index(s, dev, err);
                if (idx == -ENODEV)
                        return moat_error_set(err, idx, "cannot add default route via '%s' dev '%s'", ip, dev);
                if (idx < 0)
                        return idx;
        }
        char buf[MOAT_NL_BUFSZ];
        struct rtmsg *rtm;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(*rtm), (void **)&rtm);
        rtm->rtm_family = AF_INET;
        rtm->rtm_dst_len = 0;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = RTPROT_STATIC;
        rtm->rtm_scope = RT_SCOPE_UNIVERSE;
        rtm->rtm_type = RTN_UNICAST;
        mnl_attr_put(nlh, RTA_GATEWAY, sizeof(gw), &gw);
        if (idx > 0)
                mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)idx);
        return moat_nl_request(s, nlh, err, "cannot add default route via '%s'", ip);
}

int moat_loopback_up(struct moat_nl *nl, struct moat_error **err)
{
        return moat_link_set_up(nl, "lo", true, err);
}

/* ---------------------------------------------------------------- dumps */

struct route_list {
        struct moat_route4 *v;
        size_t n, cap;
        int filter_index; /* addresses: only this link (0 = all) */
        int r;
};

static struct moat_route4 *route_push(struct route_list *l)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                struct moat_route4 *v = realloc(l->v, cap * sizeof(*v));
                if (!v) {
                        l->r = -ENOMEM;
                        return NULL;
                }
                l->v = v;
                l->cap = cap;
        }
        struct moat_route4 *e = &l->v[l->n++];
        memset(e, 0, sizeof(*e));
        return e;
}

static int route_attr(const struct nlattr *a, void *data)
{
        struct moat_route4 *e = data;
        switch (mnl_attr_get_type(a)) {
        case RTA_DST:
                if (mnl_attr_get_payload_len(a) == sizeof(e->dst))
                        memcpy(&e->dst, mnl_attr_get_payload(a), sizeof(e->dst));
                break;
        case RTA_GATEWAY:
                if (mnl_attr_get_payload_len(a) == sizeof(e->gw))
                        memcpy(&e->gw, mnl_attr_get_payload(a), sizeof(e->gw));
                break;
        case RTA_OIF:
                if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
                        e->oif = (int)mnl_attr_get_u32(a);
                break;
        case RTA_TABLE:
                if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
                        e->table = mnl_attr_get_u32(a);
                break;
        }
        return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
        struct route_list *l = data;
        const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
        if (nlh->nlmsg_type != RTM_NEWROUTE || rtm->rtm_family != AF_INET || l->r < 0)
                return MNL_CB_OK;
        struct moat_route4 *e = route_push(l);
        if (!e)
                return MNL_CB_OK;
        e->len = rtm->rtm_dst_len;
        e->table = rtm->rtm_table;
        (void)mnl_attr_parse(nlh, sizeof(*rtm), route_attr, e);
        return MNL_CB_OK;
}

static int list_finish(struct route_list *l, int r, struct moat_route4 **out, size_t *n, struct moat_error **err,
                       const char *what)
{
        if (r >= 0 && l->r < 0)
                r = moat_error_set(err, l->r, "%s", what);
        if (r < 0) {
                free(l->v);
                return r;
        }
        *out = l->v;
        *n = l->n;
        return 0;
}

int moat_routes4_list(struct moat_nl *nl, struct moat_route4 **out, size_t *n, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        char buf[MOAT_NL_BUFSZ];
        struct rtmsg *rtm;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_GETROUTE, 0, sizeof(*rtm), (void **)&rtm);
        rtm->rtm_family = AF_INET;
        struct route_list l = { 0 };
        r = moat_nl_dump(s, nlh, route_cb, &l, err, "cannot list the IPv4 routes");
        /* names of the output links, asked on the same socket (the same netns) */
        for (size_t i = 0; r >= 0 && i < l.n; i++)
                if (l.v[i].oif > 0 && moat_link_name(s, l.v[i].oif, l.v[i].dev) < 0)
                        l.v[i].dev[0] = '\0';
        return list_finish(&l, r, out, n, err, "cannot list the IPv4 routes");
}

static int addr_attr(const struct nlattr *a, void *data)
{
        struct moat_route4 *e = data;
        if (mnl_attr_get_type(a) == IFA_LOCAL && mnl_attr_get_payload_len(a) == sizeof(e->dst))
                memcpy(&e->dst, mnl_attr_get_payload(a), sizeof(e->dst));
        return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
        struct route_list *l = data;
        const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
        if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET || l->r < 0)
                return MNL_CB_OK;
        if (l->filter_index && (int)ifa->ifa_index != l->filter_index)
                return MNL_CB_OK;
        struct moat_route4 *e = route_push(l);
        if (!e)
                return MNL_CB_OK;
        e->len = ifa->ifa_prefixlen;
        e->oif = (int)ifa->ifa_index;
        (void)mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, e);
        return MNL_CB_OK;
}

int moat_addrs4_list(struct moat_nl *nl, const char *name, struct moat_route4 **out, size_t *n,
                     struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        struct route_list l = { 0 };
        if (name) {
                l.filter_index = moat_link_index(s, name, err);
                if (l.filter_index == -ENODEV)
                        return moat_error_set(err, -ENODEV, "cannot list the addresses of '%s'", name);
                if (l.filter_index < 0)
                        return l.filter_index;
        }
        char buf[MOAT_NL_BUFSZ];
        struct ifaddrmsg *ifa;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_GETADDR, 0, sizeof(*ifa), (void **)&ifa);
        ifa->ifa_family = AF_INET;
        r = moat_nl_dump(s, nlh, addr_cb, &l, err, "cannot list the IPv4 addresses");
        r = list_finish(&l, r, out, n, err, "cannot list the IPv4 addresses");
        if (r >= 0 && name)
                for (size_t i = 0; i < *n; i++)
                        snprintf((*out)[i].dev, IFNAMSIZ, "%s", name);
        return r;
}
