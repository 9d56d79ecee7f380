/* SPDX-License-Identifier: Apache-2.0 */
#include "net/link.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

/* ---------------------------------------------------------------- names */

void moat_net_env_tag(const char *env, char out[static 8])
{
        size_t n = strlen(env);
        bool plain = n >= 1 && n <= 5;
        for (size_t i = 0; plain && i < n; i++)
                plain = (env[i] >= 'a' && env[i] <= 'z') || (env[i] >= '0' && env[i] <= '9');
        if (plain) {
                memcpy(out, env, n + 1);
                return;
        }
        /* Hashed tags are exactly 6 characters and plain ones at most 5: they never meet. */
        uint32_t h = 2166136261u; /* FNV-1a */
        for (const unsigned char *p = (const unsigned char *)env; *p; p++)
                h = (h ^ *p) * 16777619u;
        char pre[3] = "xx";
        size_t k = 0;
        for (const char *p = env; *p && k < 2; p++) {
                char c = (char)tolower((unsigned char)*p);
                if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
                        pre[k++] = c;
        }
        snprintf(out, 8, "%s%04x", pre, (unsigned)((h ^ (h >> 16)) & 0xffff));
}

void moat_net_bridge_name(const char *env, char out[static IFNAMSIZ])
{
        char tag[8];
        moat_net_env_tag(env, tag);
        snprintf(out, IFNAMSIZ, "moat-%.6s", tag);
}

int moat_net_veth_name(const char *env, unsigned n, char out[static IFNAMSIZ])
{
        char tag[8];
        if (n > 999)
                return -ERANGE;
        moat_net_env_tag(env, tag);
        snprintf(out, IFNAMSIZ, "moat-%.6s-%u", tag, n);
        return 0;
}

bool moat_ifname_valid(const char *name)
{
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n >= IFNAMSIZ || STREQ(name, ".") || STREQ(name, ".."))
                return false;
        for (const char *p = name; *p; p++)
                if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
                        return false;
        return true;
}

static int check_name(const char *name, struct moat_error **err)
{
        if (!moat_ifname_valid(name))
                return moat_error_input(err, -EINVAL, "invalid interface name '%s' (1 to %d characters, no '/', ':' "
                                        "or spaces)", name ? name : "", IFNAMSIZ - 1);
        return 0;
}

/* ---------------------------------------------------------------- get */

static int linkinfo_attr(const struct nlattr *a, void *data)
{
        struct moat_link_info *info = data;
        if (mnl_attr_get_type(a) == IFLA_INFO_KIND && mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
                snprintf(info->kind, sizeof(info->kind), "%.*s", (int)mnl_attr_get_payload_len(a),
                         (const char *)mnl_attr_get_payload(a));
        return MNL_CB_OK;
}

static int link_attr(const struct nlattr *a, void *data)
{
        struct moat_link_info *info = data;
        switch (mnl_attr_get_type(a)) {
        case IFLA_IFNAME:
                if (mnl_attr_validate(a, MNL_TYPE_STRING) >= 0)
                        snprintf(info->name, sizeof(info->name), "%s", mnl_attr_get_str(a));
                break;
        case IFLA_MTU:
                if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
                        info->mtu = mnl_attr_get_u32(a);
                break;
        case IFLA_MASTER:
                if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
                        info->master = (int)mnl_attr_get_u32(a);
                break;
        case IFLA_LINKINFO:
                if (mnl_attr_validate(a, MNL_TYPE_NESTED) >= 0)
                        (void)mnl_attr_parse_nested(a, linkinfo_attr, info);
                break;
        }
        return MNL_CB_OK;
}

static void parse_link(const struct nlmsghdr *nlh, struct moat_link_info *info)
{
        const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
        memset(info, 0, sizeof(*info));
        info->index = ifi->ifi_index;
        info->flags = ifi->ifi_flags;
        (void)mnl_attr_parse(nlh, sizeof(*ifi), link_attr, info);
}

static int get_cb(const struct nlmsghdr *nlh, void *data)
{
        if (nlh->nlmsg_type == RTM_NEWLINK)
                parse_link(nlh, data);
        return MNL_CB_OK;
}

int moat_link_get(struct moat_nl *nl, const char *name, struct moat_link_info *out, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = check_name(name, err);
        if (r < 0 || (r = moat_nl_or_open(nl, &tmp, &s, err)) < 0)
                return r;
        char buf[MOAT_NL_BUFSZ];
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_GETLINK, 0, sizeof(*ifi), (void **)&ifi);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        struct moat_link_info info = { .index = 0 };
        r = moat_nl_get(s, nlh, get_cb, &info);
        if (r == -ENODEV)
                return -ENODEV;
        if (r < 0)
                return moat_error_set(err, r, "cannot read link '%s'", name);
        if (info.index <= 0)
                return -ENODEV;
        if (out)
                *out = info;
        return info.index;
}

int moat_link_index(struct moat_nl *nl, const char *name, struct moat_error **err)
{
        return moat_link_get(nl, name, NULL, err);
}

int moat_link_name(struct moat_nl *nl, int index, char out[static IFNAMSIZ])
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = moat_nl_or_open(nl, &tmp, &s, NULL);
        if (r < 0)
                return r;
        char buf[MOAT_NL_BUFSZ];
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_GETLINK, 0, sizeof(*ifi), (void **)&ifi);
        ifi->ifi_index = index;
        mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        struct moat_link_info info = { .index = 0 };
        r = moat_nl_get(s, nlh, get_cb, &info);
        if (r < 0)
                return r;
        if (info.index != index || !info.name[0])
                return -ENODEV;
        memcpy(out, info.name, IFNAMSIZ);
        return 0;
}

/* ---------------------------------------------------------------- create / delete */

int moat_bridge_create_nl(struct moat_nl *nl, const char *name, unsigned mtu, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = check_name(name, err);
        if (r < 0 || (r = moat_nl_or_open(nl, &tmp, &s, err)) < 0)
                return r;
        char buf[MOAT_NL_BUFSZ];
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifi), (void **)&ifi);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        if (mtu)
                mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
        struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
        mnl_attr_nest_end(nlh, li);
        return moat_nl_request(s, nlh, err, "cannot create bridge '%s'", name);
}

int moat_bridge_create(const char *name, unsigned mtu, struct moat_error **err)
{
        return moat_bridge_create_nl(NULL, name, mtu, err);
}

int moat_link_delete(struct moat_nl *nl, const char *name, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = check_name(name, err);
        if (r < 0 || (r = moat_nl_or_open(nl, &tmp, &s, err)) < 0)
                return r;
        char buf[MOAT_NL_BUFSZ];
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_DELLINK, 0, sizeof(*ifi), (void **)&ifi);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        r = moat_nl_request_ignore(s, nlh, ENODEV, err, "cannot delete link '%s'", name);
        return r < 0 && r != -ENODEV ? r : 0;
}

int moat_veth_create(struct moat_nl *nl, const char *host_name, int peer_netns_fd, const char *peer_name,
                     unsigned mtu, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        if (!peer_name)
                peer_name = "eth0";
        int r = check_name(host_name, err);
        if (r < 0 || (r = check_name(peer_name, err)) < 0 || (r = moat_nl_or_open(nl, &tmp, &s, err)) < 0)
                return r;
        char buf[MOAT_NL_BUFSZ];
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifi), (void **)&ifi);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, host_name);
        if (mtu)
                mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
        struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
        mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
        struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
        struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
        /* the peer's own ifinfomsg, then its attributes */
        (void)mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
        mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name);
        if (mtu)
                mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
        if (peer_netns_fd >= 0)
                mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
        mnl_attr_nest_end(nlh, peer);
        mnl_attr_nest_end(nlh, data);
        mnl_attr_nest_end(nlh, li);
        return moat_nl_request(s, nlh, err, "cannot create veth '%s' (peer '%s')", host_name, peer_name);
}

/* ---------------------------------------------------------------- set */

static int set_link(struct moat_nl *nl, const char *name, struct moat_error **err, const char *what,
                    void (*fill)(struct nlmsghdr *nlh, struct ifinfomsg *ifi, const void *arg), const void *arg)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = check_name(name, err);
        if (r < 0 || (r = moat_nl_or_open(nl, &tmp, &s, err)) < 0)
                return r;
        char buf[MOAT_NL_BUFSZ];
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_SETLINK, 0, sizeof(*ifi), (void **)&ifi);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
        fill(nlh, ifi, arg);
        return moat_nl_request(s, nlh, err, "cannot %s '%s'", what, name);
}

static void fill_master(struct nlmsghdr *nlh, struct ifinfomsg *ifi, const void *arg)
{
        mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)*(const int *)arg);
}

int moat_link_set_master(struct moat_nl *nl, const char *name, const char *master, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        int idx = 0;
        if (master) {
                idx = moat_link_index(s, master, err);
                if (idx == -ENODEV)
                        return moat_error_set(err, idx, "cannot attach '%s' to bridge '%s'", name, master);
                if (idx < 0)
                        return idx;
        }
        return set_link(s, name, err, master ? "attach to its bridge" : "detach from its bridge", fill_master,
                        &idx);
}

static void fill_up(struct nlmsghdr *nlh, struct ifinfomsg *ifi, const void *arg)
{
        ifi->ifi_change = IFF_UP;
        ifi->ifi_flags = *(const bool *)arg ? IFF_UP : 0;
}

int moat_link_set_up(struct moat_nl *nl, const char *name, bool up, struct moat_error **err)
{
        return set_link(nl, name, err, up ? "set up link" : "set down link", fill_up, &up);
}

static void fill_mtu(struct nlmsghdr *nlh, struct ifinfomsg *ifi, const void *arg)
{
        mnl_attr_put_u32(nlh, IFLA_MTU, *(const unsigned *)arg);
}

int moat_link_set_mtu(struct moat_nl *nl, const char *name, unsigned mtu, struct moat_error **err)
{
        if (mtu < 68 || mtu > 65535)
                return moat_error_input(err, -EINVAL, "invalid MTU %u for '%s' (68 to 65535)", mtu, name);
        return set_link(nl, name, err, "set the MTU of", fill_mtu, &mtu);
}

static void fill_mac(struct nlmsghdr *nlh, struct ifinfomsg *ifi, const void *arg)
{
        mnl_attr_put(nlh, IFLA_ADDRESS, 6, arg);
}

int moat_link_set_mac(struct moat_nl *nl, const char *name, const unsigned char mac[6], struct moat_error **err)
{
        return set_link(nl, name, err, "set the Ethernet address of", fill_mac, mac);
}

int moat_bridge_port_hairpin(struct moat_nl *nl, const char *name, bool on, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        int idx = moat_link_index(s, name, err);
        if (idx == -ENODEV)
                return moat_error_set(err, idx, "cannot set hairpin mode of '%s'", name);
        if (idx < 0)
                return idx;
        char buf[MOAT_NL_BUFSZ];
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_SETLINK, 0, sizeof(*ifi), (void **)&ifi);
        ifi->ifi_family = AF_BRIDGE;
        ifi->ifi_index = idx;
        struct nlattr *pi = mnl_attr_nest_start(nlh, IFLA_PROTINFO | NLA_F_NESTED);
        mnl_attr_put_u8(nlh, IFLA_BRPORT_MODE, on ? 1 : 0);
        mnl_attr_nest_end(nlh, pi);
        return moat_nl_request(s, nlh, err, "cannot set hairpin mode of bridge port '%s'", name);
}

struct sysctl_job {
        const char *name;
        const char *value;
};

static int write_disable_ipv6(void *data)
{
        const struct sysctl_job *job = data;
        char path[128];
        snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", job->name);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (write_all(fd, job->value, strlen(job->value)) < 0)
                return -errno;
        return 0;
}

int moat_link_disable_ipv6(int netns_fd, const char *name, bool disable, struct moat_error **err)
{
        int r = check_name(name, err);
        if (r < 0)
                return r;
        struct sysctl_job job = { .name = name, .value = disable ? "1\n" : "0\n" };
        r = moat_netns_run(netns_fd, write_disable_ipv6, &job);
        if (r == -ENOENT && access("/proc/sys/net/ipv6", F_OK) < 0) {
                moat_debug("no IPv6 in this kernel: '%s' has none to disable", name);
                return 0;
        }
        if (r < 0)
                return moat_error_set(err, r, "cannot %s IPv6 on '%s'", disable ? "disable" : "enable", name);
        return 0;
}

/* ---------------------------------------------------------------- list */

struct list_ctx {
        const char *prefix;
        char **names;
        int r;
};

static int list_cb(const struct nlmsghdr *nlh, void *data)
{
        struct list_ctx *c = data;
        struct moat_link_info info;
        if (nlh->nlmsg_type != RTM_NEWLINK)
                return MNL_CB_OK;
        parse_link(nlh, &info);
        if (info.name[0] && strncmp(info.name, c->prefix, strlen(c->prefix)) == 0 && c->r == 0)
                c->r = strv_push(&c->names, info.name);
        return MNL_CB_OK;
}

int moat_link_list(struct moat_nl *nl, const char *prefix, char ***names, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        char buf[MOAT_NL_BUFSZ];
        struct ifinfomsg *ifi;
        struct nlmsghdr *nlh = moat_nl_msg(buf, RTM_GETLINK, 0, sizeof(*ifi), (void **)&ifi);
        mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        struct list_ctx c = { .prefix = prefix ? prefix : "" };
        r = moat_nl_dump(s, nlh, list_cb, &c, err, "cannot list links");
        if (r >= 0 && c.r < 0)
                r = moat_error_set(err, c.r, "cannot list links");
        if (r < 0) {
                strv_free(c.names);
                return r;
        }
        if (!c.names) {
                c.names = calloc(1, sizeof(char *));
                if (!c.names)
                        return moat_error_set(err, ENOMEM, "cannot list links");
        }
        *names = c.names;
        return (int)strv_length(c.names);
}

int moat_net_delete_env_links(struct moat_nl *nl, const char *env, struct moat_error **err)
{
        _cleanup_nl_ struct moat_nl *tmp = NULL;
        struct moat_nl *s;
        int r = moat_nl_or_open(nl, &tmp, &s, err);
        if (r < 0)
                return r;
        char bridge[IFNAMSIZ], prefix[IFNAMSIZ + 1];
        moat_net_bridge_name(env, bridge);
        snprintf(prefix, sizeof(prefix), "%s-", bridge);
        _cleanup_strv_ char **names = NULL;
        r = moat_link_list(s, bridge, &names, err);
        if (r < 0)
                return r;
        int n = 0;
        /* ports first, the bridge last */
        for (int pass = 0; pass < 2; pass++)
                for (char **p = names; *p; p++) {
                        bool port = strncmp(*p, prefix, strlen(prefix)) == 0;
                        if ((pass == 0 && !port) || (pass == 1 && !STREQ(*p, bridge)))
                                continue;
                        r = moat_link_delete(s, *p, err);
                        if (r < 0)
                                return r;
                        n++;
                }
        return n;
}
