/* SPDX-License-Identifier: Apache-2.0 */
/* Ruleset text for an environment's policy (see policy.h).
 *
 * Why text through libnftables and not libnftnl objects: the ruleset is a few sets and a
 * constant number of rules; as text it is readable, diffable (`moat config` and the tests can
 * show exactly what will be loaded), and `nft -f` can replay it by hand when debugging.  nft's
 * parser does the hard parts we would otherwise re-implement over libnftnl (concatenated and
 * interval set keys, the evaluation of `th dport`, dnat maps, the batch with its begin/end
 * markers) and the whole buffer is still committed as ONE netlink transaction, so a re-apply is
 * atomic.  Everything we put into the text is validated first (names against a strict charset,
 * addresses formatted by us), so nothing from the environment file reaches the parser raw. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "net/policy.h"

static bool name_chars_ok(const char *s, size_t max)
{
        size_t n;

        if (!s || !*s)
                return false;
        n = strlen(s);
        if (n > max)
                return false;
        if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9')))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-' || c == '.'))
                        return false;
        }
        return true;
}

bool moat_policy_env_name_ok(const char *env)
{
        /* nft identifiers start with a letter: the table is "moat-<env>", so any first char works */
        return name_chars_ok(env, MOAT_POLICY_ENV_MAX);
}

bool moat_policy_ifname_ok(const char *ifname)
{
        return name_chars_ok(ifname, 15);
}

static const struct moat_policy_service *find_service(const struct moat_policy *p, const char *name)
{
        if (!name)
                return NULL;
        for (size_t i = 0; i < p->n_services; i++)
                if (p->services[i].name && STREQ(p->services[i].name, name))
                        return &p->services[i];
        return NULL;
}

static const char *proto_name(uint8_t proto)
{
        return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : NULL;
}

static uint32_t prefix_mask(uint8_t len)
{
        return len == 0 ? 0 : htonl(~(uint32_t)0 << (32 - len));
}

static bool in_subnet(const struct moat_policy *p, struct in_addr a)
{
        uint32_t m = prefix_mask(p->subnet_len);
        return (a.s_addr & m) == (p->subnet.s_addr & m);
}

static int validate(const struct moat_policy *p, struct moat_error **err)
{
        if (!p)
                return moat_error_input(err, -EINVAL, "no policy");
        if (!moat_policy_env_name_ok(p->env))
                return moat_error_input(err, -EINVAL,
                                        "environment name '%s' cannot name a policy table: use 1-%d of "
                                        "[A-Za-z0-9_.-], starting with a letter or digit",
                                        p->env ? p->env : "", MOAT_POLICY_ENV_MAX);
        if (!moat_policy_ifname_ok(p->bridge))
                return moat_error_input(err, -EINVAL, "bridge name '%s' is not a valid interface name",
                                        p->bridge ? p->bridge : "");
        if (p->port_prefix && (!*p->port_prefix || strlen(p->port_prefix) > 14 ||
                               !name_chars_ok(p->port_prefix, 14)))
                return moat_error_input(err, -EINVAL, "bridge port prefix '%s' is not a valid interface name prefix",
                                        p->port_prefix);
        if (!p->port_prefix && strlen(p->bridge) > 13)
                return moat_error_input(err, -EINVAL,
                                        "bridge name '%s' is too long to name its ports '%s-<n>': give a port prefix",
                                        p->bridge, p->bridge);
        if (p->subnet_len < 8 || p->subnet_len > 30)
                return moat_error_input(err, -EINVAL, "subnet prefix length /%u of environment '%s' must be 8..30",
                                        p->subnet_len, p->env);
        for (size_t i = 0; i < p->n_services; i++) {
                const struct moat_policy_service *s = &p->services[i];
                if (!s->name || !*s->name)
                        return moat_error_input(err, -EINVAL, "service #%zu of environment '%s' has no name", i,
                                                p->env);
                if (!in_subnet(p, s->addr)) {
                        char a[INET_ADDRSTRLEN];
                        inet_ntop(AF_INET, &s->addr, a, sizeof(a));
                        return moat_error_input(err, -EINVAL, "service '%s' address %s is outside the subnet of '%s'",
                                                s->name, a, p->env);
                }
                if (find_service(p, s->name) != s)
                        return moat_error_input(err, -EINVAL, "service '%s' is listed twice", s->name);
        }
        for (size_t i = 0; i < p->n_pairs; i++) {
                const struct moat_policy_pair *pr = &p->pairs[i];
                if (!find_service(p, pr->src))
                        return moat_error_input(err, -ENOENT, "allowed pair #%zu: unknown source service '%s'", i,
                                                pr->src ? pr->src : "");
                if (!find_service(p, pr->dst))
                        return moat_error_input(err, -ENOENT, "'%s' may connect to unknown service '%s'", pr->src,
                                                pr->dst ? pr->dst : "");
                for (size_t j = 0; j < pr->n_ports; j++)
                        if (!proto_name(pr->ports[j].proto) || pr->ports[j].port == 0)
                                return moat_error_input(err, -EINVAL,
                                                        "'%s' -> '%s': port #%zu must be tcp or udp and 1..65535",
                                                        pr->src, pr->dst, j);
        }
        for (size_t i = 0; i < p->n_published; i++) {
                const struct moat_policy_publish *pb = &p->published[i];
                if (!find_service(p, pb->service))
                        return moat_error_input(err, -ENOENT, "published port %u: unknown service '%s'",
                                                pb->host_port, pb->service ? pb->service : "");
                if (!proto_name(pb->proto) || pb->host_port == 0 || pb->port == 0)
                        return moat_error_input(err, -EINVAL,
                                                "published port of '%s': ports must be 1..65535, tcp or udp",
                                                pb->service);
        }
        for (size_t i = 0; i < p->n_egress; i++) {
                const struct moat_policy_egress *e = &p->egress[i];
                if (e->service && !find_service(p, e->service))
                        return moat_error_input(err, -ENOENT, "egress rule #%zu: unknown service '%s'", i, e->service);
                if (e->prefix_len > 32 || (e->proto && !proto_name(e->proto)))
                        return moat_error_input(err, -EINVAL, "egress rule #%zu: bad prefix length or protocol", i);
        }
        return 0;
}

/* ---- element lists: collected as strings, sorted and deduplicated (nft refuses some
 * duplicates inside one set definition) */

struct elems {
        char **v;
        size_t n, cap;
};

static void elems_free(struct elems *e)
{
        for (size_t i = 0; i < e->n; i++)
                free(e->v[i]);
        free(e->v);
        e->v = NULL;
        e->n = e->cap = 0;
}

static int elems_add(struct elems *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int elems_add(struct elems *e, const char *fmt, ...)
{
        va_list ap;
        char *s;
        int r;

        if (e->n == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 16;
                char **v = realloc(e->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                e->v = v;
                e->cap = cap;
        }
        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        e->v[e->n++] = s;
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void elems_uniq(struct elems *e)
{
        size_t w = 0;

        if (e->n == 0)
                return;
        qsort(e->v, e->n, sizeof(*e->v), cmp_str);
        for (size_t i = 1; i < e->n; i++) {
                if (STREQ(e->v[i], e->v[w]))
                        free(e->v[i]);
                else
                        e->v[++w] = e->v[i];
        }
        e->n = w + 1;
}

static void emit_set(FILE *f, const char *kind, const char *name, const char *type, bool interval, struct elems *e)
{
        elems_uniq(e);
        fprintf(f, "  %s %s {\n    type %s\n", kind, name, type);
        if (interval)
                fputs("    flags interval\n", f);
        if (e->n) {
                fputs("    elements = {\n", f);
                for (size_t i = 0; i < e->n; i++)
                        fprintf(f, "      %s%s\n", e->v[i], i + 1 < e->n ? "," : "");
                fputs("    }\n", f);
        }
        fputs("  }\n", f);
}

#define IP(a, buf) inet_ntop(AF_INET, &(a), (buf), sizeof(buf))

struct sets {
        struct elems pairs, pairs_any, pair_hosts, egress, egress_port, pub, pub_any, port_addrs;
};

static void sets_free(struct sets *s)
{
        elems_free(&s->pairs);
        elems_free(&s->pairs_any);
        elems_free(&s->pair_hosts);
        elems_free(&s->egress);
        elems_free(&s->egress_port);
        elems_free(&s->pub);
        elems_free(&s->pub_any);
        elems_free(&s->port_addrs);
}

static int collect(const struct moat_policy *p, const char *subnet, struct sets *s)
{
        char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
        int r = 0;

        /* each port of the bridge speaks for one address: "<prefix><last byte of the address>" */
        for (size_t i = 0; i < p->n_services && r >= 0; i++) {
                const struct moat_policy_service *sv = &p->services[i];
                r = elems_add(&s->port_addrs, "\"%s%s%u\" . %s", p->port_prefix ? p->port_prefix : p->bridge,
                              p->port_prefix ? "" : "-", (unsigned)(ntohl(sv->addr.s_addr) & 0xff), IP(sv->addr, a));
        }
        for (size_t i = 0; i < p->n_pairs && r >= 0; i++) {
                const struct moat_policy_pair *pr = &p->pairs[i];
                IP(find_service(p, pr->src)->addr, a);
                IP(find_service(p, pr->dst)->addr, b);
                r = elems_add(&s->pair_hosts, "%s . %s", a, b);
                if (pr->n_ports == 0 && r >= 0)
                        r = elems_add(&s->pairs_any, "%s . %s", a, b);
                for (size_t j = 0; j < pr->n_ports && r >= 0; j++)
                        r = elems_add(&s->pairs, "%s . %s . %s . %u", a, b, proto_name(pr->ports[j].proto),
                                      pr->ports[j].port);
        }
        for (size_t i = 0; i < p->n_egress && r >= 0; i++) {
                const struct moat_policy_egress *e = &p->egress[i];
                const char *src = subnet;
                struct in_addr net = { e->addr.s_addr & prefix_mask(e->prefix_len) };

                if (e->service)
                        src = IP(find_service(p, e->service)->addr, a);
                IP(net, b);
                if (e->port == 0 && e->proto == 0)
                        r = elems_add(&s->egress, "%s . %s/%u", src, b, e->prefix_len);
                else
                        for (uint8_t proto = IPPROTO_TCP; proto; proto = proto == IPPROTO_TCP ? IPPROTO_UDP : 0) {
                                if (e->proto && e->proto != proto)
                                        continue;
                                if (e->port)
                                        r = elems_add(&s->egress_port, "%s . %s/%u . %s . %u", src, b, e->prefix_len,
                                                      proto_name(proto), e->port);
                                else
                                        r = elems_add(&s->egress_port, "%s . %s/%u . %s . 1-65535", src, b,
                                                      e->prefix_len, proto_name(proto));
                                if (r < 0)
                                        break;
                        }
        }
        for (size_t i = 0; i < p->n_published && r >= 0; i++) {
                const struct moat_policy_publish *pb = &p->published[i];
                IP(find_service(p, pb->service)->addr, b);
                if (pb->host_addr.s_addr == htonl(INADDR_ANY))
                        r = elems_add(&s->pub_any, "%s . %u : %s . %u", proto_name(pb->proto), pb->host_port, b,
                                      pb->port);
                else
                        r = elems_add(&s->pub, "%s . %s . %u : %s . %u", IP(pb->host_addr, a), proto_name(pb->proto),
                                      pb->host_port, b, pb->port);
        }
        return r;
}

#define PAIR_KEY "ipv4_addr . ipv4_addr . inet_proto . inet_service"

static void render_inet(FILE *f, const struct moat_policy *p, const char *subnet, struct sets *s)
{
        const char *B = p->bridge;
        unsigned G = p->nflog_group;

        fprintf(f, "table inet moat-%s {}\ndelete table inet moat-%s\ntable inet moat-%s {\n", p->env, p->env, p->env);
        emit_set(f, "set", "pairs", PAIR_KEY, false, &s->pairs);
        emit_set(f, "set", "pairs_any", "ipv4_addr . ipv4_addr", false, &s->pairs_any);
        emit_set(f, "set", "egress", "ipv4_addr . ipv4_addr", true, &s->egress);
        emit_set(f, "set", "egress_port", PAIR_KEY, true, &s->egress_port);
        emit_set(f, "map", "pub", "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service", false, &s->pub);
        emit_set(f, "map", "pub_any", "inet_proto . inet_service : ipv4_addr . inet_service", false, &s->pub_any);

        /* before docker's/podman's filter chains; traffic not touching our bridge is not ours */
        fprintf(f,
                "  chain forward {\n"
                "    type filter hook forward priority filter - 1; policy accept;\n"
                "    iifname != \"%s\" oifname != \"%s\" accept\n"
                "    meta nfproto ipv6 drop\n"
                "    ct state established,related accept\n"
                "    ct state invalid drop\n"
                /* bridged traffic shows up here only through br_netfilter (iif = oif = bridge);
                 * the bridge table below has already filtered it: same sets, same answer */
                "    iifname \"%s\" oifname \"%s\" ip saddr . ip daddr . meta l4proto . th dport @pairs accept\n"
                "    iifname \"%s\" oifname \"%s\" ip saddr . ip daddr @pairs_any accept\n"
                /* published ports (our DNAT), from outside the environment only */
                "    iifname != \"%s\" oifname \"%s\" ip daddr %s ct status dnat accept\n"
                "    iifname \"%s\" oifname != \"%s\" ip saddr . ip daddr @egress accept\n"
                "    iifname \"%s\" oifname != \"%s\" ip saddr . ip daddr . meta l4proto . th dport @egress_port accept\n"
                "    limit rate 200/second burst 400 packets log prefix \"" MOAT_POLICY_LOG_PREFIX "\" group %u\n"
                "    drop\n"
                "  }\n",
                B, B, B, B, B, B, B, B, subnet, B, B, B, B, G);
        /* containers -> the host itself: only replies */
        fprintf(f,
                "  chain input {\n"
                "    type filter hook input priority filter - 1; policy accept;\n"
                "    iifname != \"%s\" accept\n"
                "    meta nfproto ipv6 drop\n"
                "    ct state established,related accept\n"
                "    limit rate 200/second burst 400 packets log prefix \"" MOAT_POLICY_LOG_PREFIX "\" group %u\n"
                "    drop\n"
                "  }\n"
                "  chain output {\n"
                "    type filter hook output priority filter - 1; policy accept;\n"
                "    oifname \"%s\" meta nfproto ipv6 drop\n"
                "  }\n",
                B, G, B);
        fputs("  chain prerouting {\n"
              "    type nat hook prerouting priority dstnat - 1; policy accept;\n"
              "    fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @pub\n"
              "    fib daddr type local dnat ip to meta l4proto . th dport map @pub_any\n"
              "  }\n"
              "  chain output_nat {\n"
              "    type nat hook output priority -101; policy accept;\n"
              "    fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @pub\n"
              "    fib daddr type local dnat ip to meta l4proto . th dport map @pub_any\n"
              "  }\n",
              f);
        fprintf(f,
                "  chain postrouting {\n"
                "    type nat hook postrouting priority srcnat - 1; policy accept;\n"
                "    oifname != \"%s\" ip saddr . ip daddr @egress masquerade\n"
                "    oifname != \"%s\" ip saddr . ip daddr . meta l4proto . th dport @egress_port masquerade\n"
                "  }\n"
                "}\n",
                B, B);
}

/* Container to container on one bridge: the frame is switched by the bridge and never reaches
 * the inet forward hook unless br_netfilter is on; the bridge family's forward hook sees it
 * always.  Our frames are recognised by the input port's name (meta ibrname needs
 * CONFIG_NFT_BRIDGE_META, which not every kernel has).
 * There is no conntrack in the bridge family without nf_conntrack_bridge, so replies are matched
 * statelessly by the reversed pair: a TCP reply must not be a bare SYN (the server side cannot
 * open connections), a UDP reply must come from the allowed port.  With br_netfilter on, the
 * inet forward chain adds the stateful check on top.
 * Published ports are for the host and the outside: a container reaching a published port of
 * its own environment is still held to the allow list (with br_netfilter the DNATed frame is
 * bridged to the target and dropped here; without, the inet forward chain drops it). */
static void render_bridge(FILE *f, const struct moat_policy *p, struct sets *s)
{
        unsigned G = p->nflog_group;
        char ports[IFNAMSIZ + 2];

        snprintf(ports, sizeof(ports), "%s%s*", p->port_prefix ? p->port_prefix : p->bridge,
                 p->port_prefix ? "" : "-");

        fprintf(f, "table bridge moat-%s {}\ndelete table bridge moat-%s\ntable bridge moat-%s {\n", p->env, p->env,
                p->env);
        emit_set(f, "set", "pairs", PAIR_KEY, false, &s->pairs);
        emit_set(f, "set", "pairs_any", "ipv4_addr . ipv4_addr", false, &s->pairs_any);
        emit_set(f, "set", "pair_hosts", "ipv4_addr . ipv4_addr", false, &s->pair_hosts);
        emit_set(f, "set", "port_addrs", "ifname . ipv4_addr", false, &s->port_addrs);
        /* Anti-spoofing, for every frame a container sends (bridged or for the host): IPv4 from
         * its own address and ARP for its own address only.  Everything else goes: IPv6, other
         * ether types, and 802.1Q-tagged frames (which would carry IPv4 past the address
         * matches below, the tag hiding the ether type; receivers strip a VLAN 0 tag). */
        fprintf(f,
                "  chain prerouting {\n"
                "    type filter hook prerouting priority filter; policy accept;\n"
                "    iifname != \"%s\" accept\n"
                "    ether type arp iifname . arp saddr ip @port_addrs accept\n"
                "    ether type ip iifname . ip saddr @port_addrs accept\n"
                "    limit rate 200/second burst 400 packets log prefix \"" MOAT_POLICY_LOG_PREFIX "\" group %u\n"
                "    drop\n"
                "  }\n",
                ports, G);
        fprintf(f,
                "  chain forward {\n"
                "    type filter hook forward priority filter; policy accept;\n"
                "    iifname != \"%s\" accept\n"
                "    ether type arp accept\n"
                "    ether type != ip drop\n"
                "    ip saddr . ip daddr . meta l4proto . th dport @pairs accept\n"
                "    ip saddr . ip daddr @pairs_any accept\n"
                "    ip daddr . ip saddr . meta l4proto . th sport @pairs tcp flags & (syn | ack) != syn accept\n"
                "    meta l4proto udp ip daddr . ip saddr . meta l4proto . th sport @pairs accept\n"
                "    ip daddr . ip saddr @pairs_any tcp flags & (syn | ack) != syn accept\n"
                "    ip daddr . ip saddr @pairs_any meta l4proto udp accept\n"
                "    ip daddr . ip saddr @pair_hosts icmp type { echo-reply, destination-unreachable, time-exceeded, "
                "parameter-problem } accept\n"
                "    limit rate 200/second burst 400 packets log prefix \"" MOAT_POLICY_LOG_PREFIX "\" group %u\n"
                "    drop\n"
                "  }\n"
                "}\n",
                ports, G);
}

int moat_policy_render(const struct moat_policy *p, char **out, struct moat_error **err)
{
        struct sets s = {};
        char net[INET_ADDRSTRLEN], subnet[INET_ADDRSTRLEN + 4];
        char *buf = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        r = validate(p, err);
        if (r < 0)
                return r;
        struct in_addr n = { p->subnet.s_addr & prefix_mask(p->subnet_len) };
        snprintf(subnet, sizeof(subnet), "%s/%u", IP(n, net), p->subnet_len);

        r = collect(p, subnet, &s);
        if (r < 0) {
                sets_free(&s);
                return moat_error_set(err, r, "rendering the policy of '%s'", p->env);
        }
        f = open_memstream(&buf, &len);
        if (!f) {
                sets_free(&s);
                return moat_error_set(err, errno, "rendering the policy of '%s'", p->env);
        }
        render_inet(f, p, subnet, &s);
        render_bridge(f, p, &s);
        sets_free(&s);
        if (fclose(f) != 0 || !buf) {
                free(buf);
                return moat_error_set(err, ENOMEM, "rendering the policy of '%s'", p->env);
        }
        *out = buf;
        return 0;
}
