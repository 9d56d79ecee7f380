/* SPDX-License-Identifier: Apache-2.0 */
/* Policy ruleset text generation (no root needed), egress parsing, NFLOG record parsing. */
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "net/nflog.h"
#include "net/policy.h"
#include "tap.h"

static struct in_addr ip4(const char *s)
{
        struct in_addr a = {};
        inet_pton(AF_INET, s, &a);
        return a;
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* rules = lines inside chains that are not the "type ... hook" line or a brace */
static size_t count_rules(const char *text)
{
        size_t n = 0;
        bool in_chain = false;
        for (const char *l = text; *l; l += strcspn(l, "\n"), l += *l == '\n') {
                while (*l == ' ')
                        l++;
                if (strncmp(l, "chain ", 6) == 0) {
                        in_chain = true;
                        continue;
                }
                if (!in_chain)
                        continue;
                if (*l == '}') {
                        in_chain = false;
                        continue;
                }
                if (strncmp(l, "type ", 5) != 0 && *l != '\n' && *l)
                        n++;
        }
        return n;
}

#define MAXS 100
static char names[MAXS][16];
static struct moat_policy_service svcs[MAXS];
static struct moat_policy_pair pairs[MAXS * 2];
static const struct moat_policy_port port8080[] = { { IPPROTO_TCP, 8080 }, { IPPROTO_UDP, 53 } };

/* n services in 10.77.0.0/16; service i may reach i+1 (ports) and i+2 (any port) */
static struct moat_policy mk(size_t n, size_t *npairs)
{
        size_t np = 0;
        for (size_t i = 0; i < n; i++) {
                snprintf(names[i], sizeof(names[i]), "svc%u", (unsigned)(i % 100000));
                char a[32];
                snprintf(a, sizeof(a), "10.77.%zu.%zu", (i + 2) / 250, (i + 2) % 250 + 1);
                svcs[i] = (struct moat_policy_service){ names[i], ip4(a) };
        }
        for (size_t i = 0; i + 1 < n; i++)
                pairs[np++] = (struct moat_policy_pair){ names[i], names[i + 1], port8080, 2 };
        for (size_t i = 0; i + 2 < n; i++)
                pairs[np++] = (struct moat_policy_pair){ names[i], names[i + 2], NULL, 0 };
        *npairs = np;
        return (struct moat_policy){ .env = "proj_1", .bridge = "moat-br0", .subnet = ip4("10.77.0.0"),
                                     .subnet_len = 16, .services = svcs, .n_services = n, .pairs = pairs,
                                     .n_pairs = np, .nflog_group = 4242 };
}

static void test_render_small(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *t = NULL;
        size_t np;
        struct moat_policy p = mk(3, &np);
        struct moat_policy_publish pub[] = {
                { ip4("10.77.0.1"), 18080, "svc1", 8080, IPPROTO_TCP },
                { ip4("0.0.0.0"), 5353, "svc2", 53, IPPROTO_UDP },
        };
        struct moat_policy_egress eg[3];
        p.published = pub;
        p.n_published = 2;
        ok(moat_policy_parse_egress("192.0.2.0/24", &eg[0], &err) == 0, "egress CIDR parses");
        ok(moat_policy_parse_egress("198.51.100.7:443", &eg[1], &err) == 0, "egress IP:port parses");
        is_int(eg[1].port, 443, "egress port");
        is_int(eg[1].prefix_len, 32, "egress IP is a /32");
        ok(moat_policy_parse_egress("203.0.113.9", &eg[2], &err) == 0, "egress IP parses");
        eg[2].service = "svc0";
        p.egress = eg;
        p.n_egress = 3;

        is_int(moat_policy_render(&p, &t, &err), 0, "render a 3-service policy");
        if (!t)
                return;
        contains(t, "table inet moat-proj_1 {}\ndelete table inet moat-proj_1\ntable inet moat-proj_1 {",
                 "inet table is replaced in the same transaction");
        contains(t, "table bridge moat-proj_1 {}\ndelete table bridge moat-proj_1\ntable bridge moat-proj_1 {",
                 "bridge table is replaced in the same transaction");
        contains(t, "type filter hook forward priority filter - 1; policy accept;", "forward runs before filter");
        contains(t, "10.77.0.3 . 10.77.0.4 . tcp . 8080", "pair svc0 -> svc1 tcp/8080 in the set");
        contains(t, "10.77.0.3 . 10.77.0.4 . udp . 53", "pair svc0 -> svc1 udp/53 in the set");
        contains(t, "10.77.0.3 . 10.77.0.5\n", "pair svc0 -> svc2 any port");
        contains(t, "10.77.0.1 . tcp . 18080 : 10.77.0.4 . 8080", "published port in the dnat map");
        contains(t, "udp . 5353 : 10.77.0.5 . 53", "published on any local address");
        contains(t, "10.77.0.0/16 . 192.0.2.0/24", "egress CIDR for every service");
        contains(t, "10.77.0.0/16 . 198.51.100.7/32 . tcp . 443", "egress ip:port tcp");
        contains(t, "10.77.0.0/16 . 198.51.100.7/32 . udp . 443", "egress ip:port udp");
        contains(t, "10.77.0.3 . 203.0.113.9/32", "egress for one service");
        contains(t, "log prefix \"moat-deny\" group 4242", "denied traffic is logged to the group");
        contains(t, "meta nfproto ipv6 drop", "IPv6 dropped");
        contains(t, "masquerade", "egress masqueraded");
        ok(!strstr(t, "svc0"), "no service name reaches the ruleset text");
}

static void test_render_linear(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *t10 = NULL, *t100 = NULL;
        size_t np10, np100;
        struct moat_policy p = mk(10, &np10);
        ok(moat_policy_render(&p, &t10, &err) == 0, "render 10 services");
        p = mk(100, &np100);
        ok(moat_policy_render(&p, &t100, &err) == 0, "render 100 services");
        if (!t10 || !t100)
                return;
        size_t r10 = count_rules(t10), r100 = count_rules(t100);
        printf("# rules: %zu with 10 services, %zu with 100; text %zu / %zu bytes\n", r10, r100, strlen(t10),
               strlen(t100));
        is_int(r100, r10, "rule count does not grow with services (pairs are set elements)");
        ok(r100 < 60, "a constant, small number of rules (%zu)", r100);
        /* elements: (n-1) port pairs x 2 ports, in both tables */
        is_int(count(t100, " . tcp . 8080"), 2 * 99, "every tcp pair element is there, once per table");
        ok(strlen(t100) < 64 * 1024, "100-service ruleset text stays small (%zu bytes)", strlen(t100));
}

static void test_render_errors(void)
{
        size_t np;
        struct moat_policy p = mk(3, &np);
        struct moat_policy_pair bad = { "svc0", "nosuch", NULL, 0 };
        struct moat_policy_service outside[] = { { "x", ip4("192.168.1.1") } };
        char *t = NULL;

        {
                _cleanup_error_ struct moat_error *err = NULL;
                p.env = "bad name;flush ruleset";
                ok(moat_policy_render(&p, &t, &err) == -EINVAL && err && strstr(err->msg, "'bad name;flush ruleset'"),
                   "an env name with nft syntax in it is refused, quoted in the message");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                p = mk(3, &np);
                p.bridge = "br\"0";
                ok(moat_policy_render(&p, &t, &err) == -EINVAL, "a bridge name with a quote is refused");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                p = mk(3, &np);
                p.pairs = &bad;
                p.n_pairs = 1;
                ok(moat_policy_render(&p, &t, &err) == -ENOENT && err && strstr(err->msg, "'nosuch'"),
                   "a pair naming an unknown service is refused");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                p = mk(3, &np);
                p.services = outside;
                p.n_services = 1;
                p.n_pairs = 0;
                ok(moat_policy_render(&p, &t, &err) == -EINVAL && err && strstr(err->msg, "outside the subnet"),
                   "a service address outside the subnet is refused");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct moat_policy_egress e;
                ok(moat_policy_parse_egress("example.com:443", &e, &err) == -EINVAL && err &&
                           strstr(err->msg, "resolve host names first"),
                   "an unresolved hostname is refused with a hint");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct moat_policy_egress e;
                ok(moat_policy_parse_egress("10.0.0.1:0", &e, &err) == -EINVAL, "port 0 is refused");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct moat_policy_egress e;
                ok(moat_policy_parse_egress("10.0.0.0/33", &e, &err) == -EINVAL, "prefix /33 is refused");
        }
        ok(!t, "nothing rendered on errors");
        free(t);
}

/* ---- NFLOG parsing of a hand-made record */

static int got;
static struct moat_nflog_record last;
static void rec_cb(const struct moat_nflog_record *r, void *ud)
{
        (void)ud;
        got++;
        last = *r;
}

static size_t mk_record(char *buf, const char *prefix, uint8_t proto, size_t payload_len)
{
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        struct nfgenmsg *nfg;
        uint8_t pkt[40] = {};
        struct iphdr *ip = (struct iphdr *)pkt;
        struct tcphdr *tcp = (struct tcphdr *)(pkt + 20);

        nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
        nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
        nfg->nfgen_family = 7;
        nfg->res_id = htons(4242);
        ip->version = 4;
        ip->ihl = 5;
        ip->protocol = proto;
        ip->saddr = ip4("10.77.0.3").s_addr;
        ip->daddr = ip4("10.77.0.5").s_addr;
        tcp->source = htons(40000);
        tcp->dest = htons(8080);
        if (prefix)
                mnl_attr_put_strz(nlh, NFULA_PREFIX, prefix);
        mnl_attr_put(nlh, NFULA_PAYLOAD, payload_len, pkt);
        return nlh->nlmsg_len;
}

static void test_nflog_parse(void)
{
        char buf[2048];
        size_t n = mk_record(buf, "moat-deny", IPPROTO_TCP, 40);
        n += mk_record(buf + n, NULL, IPPROTO_UDP, 24);

        is_int(moat_nflog_parse(buf, n, rec_cb, NULL), 2, "two records parsed");
        is_int(got, 2, "callback called twice");
        is_int(last.proto, IPPROTO_UDP, "second record: udp");
        is_int(last.dport, 8080, "udp dport");
        is_str(last.prefix, "", "no prefix attribute: empty prefix");

        got = 0;
        n = mk_record(buf, "moat-deny", IPPROTO_TCP, 40);
        moat_nflog_parse(buf, n, rec_cb, NULL);
        char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN];
        is_str(inet_ntop(AF_INET, &last.src, s, sizeof(s)), "10.77.0.3", "src address");
        is_str(inet_ntop(AF_INET, &last.dst, d, sizeof(d)), "10.77.0.5", "dst address");
        is_int(last.dport, 8080, "tcp dport");
        is_int(last.sport, 40000, "tcp sport");
        is_str(last.prefix, "moat-deny", "prefix");
        is_int(last.group, 4242, "group");

        got = 0;
        n = mk_record(buf, "moat-deny", IPPROTO_TCP, 12);
        is_int(moat_nflog_parse(buf, n, rec_cb, NULL), 0, "a truncated IP header is not a record");
        is_int(moat_nflog_parse(buf, 7, rec_cb, NULL), -EINVAL, "a truncated netlink message is refused");
}

int main(void)
{
        test_render_small();
        test_render_linear();
        test_render_errors();
        test_nflog_parse();
        return done_testing();
}
