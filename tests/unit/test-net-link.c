/* SPDX-License-Identifier: Apache-2.0 */
/* Links and addresses over rtnetlink, as root, in network namespaces this
 * test creates ("moat-t-<random>-*", removed at exit, also on failure): only
 * one bridge is made in the test's own netns ("moat-t<random>") and deleted.
 * Traffic (ping) goes only between namespaces created here.
 *
 * `test-net-link tool ...` is a small driver for tests/integration/net-link.sh:
 *   tool up STATE_DIR ENV SERVICE NETNS_PATH [crash]   allocate + bridge + attach; prints the address
 *                                                      (crash: SIGKILL itself after the veth is made)
 *   tool down STATE_DIR ENV                            delete the env's links, release its addresses
 *   tool list PREFIX                                   link names starting with PREFIX */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/util.h"
#include "net/addr.h"
#include "net/attach.h"
#include "net/ipam.h"
#include "net/link.h"
#include "net/netlink.h"
#include "tap.h"

static char ns_h[64], ns_a[64], ns_b[64], host_bridge[IFNAMSIZ];
static const char *ping_cmd = "ping";

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
        char cmd[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Output of a command, trimmed (static buffer). */
static const char *sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *sh_out(const char *fmt, ...)
{
        static char out[4096];
        char cmd[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        out[0] = '\0';
        FILE *p = popen(cmd, "r");
        if (!p)
                return out;
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        pclose(p);
        while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
                out[--n] = '\0';
        return out;
}

/* One ping, tried up to 3 times: a veth just set up carries nothing until the
 * kernel's link watch has run for it (up to a second after an earlier event). */
static int reach(const char *ns, const char *addr)
{
        int r = 1;
        for (int i = 0; i < 3 && r != 0; i++)
                r = sh("ip netns exec %s %s -c1 -W1 %s >/dev/null 2>&1", ns, ping_cmd, addr);
        return r;
}

static void cleanup(void)
{
        static bool done;
        if (done)
                return;
        done = true;
        if (host_bridge[0])
                (void)moat_link_delete(NULL, host_bridge, NULL);
        const char *nss[] = { ns_a, ns_b, ns_h };
        for (size_t i = 0; i < ARRAY_SIZE(nss); i++)
                if (nss[i][0])
                        sh("ip netns del %s 2>/dev/null", nss[i]);
}

static void on_signal(int sig)
{
        cleanup();
        signal(sig, SIG_DFL);
        raise(sig);
}

static int ns_open(const char *name)
{
        char p[128];
        snprintf(p, sizeof(p), "/run/netns/%s", name);
        return open(p, O_RDONLY | O_CLOEXEC);
}

static const char *ip(struct in_addr a)
{
        static char buf[4][INET_ADDRSTRLEN];
        static int i;
        i = (i + 1) % 4;
        inet_ntop(AF_INET, &a, buf[i], sizeof(buf[i]));
        return buf[i];
}

static struct in_addr a4(const char *s)
{
        struct in_addr a;
        inet_pton(AF_INET, s, &a);
        return a;
}

/* ---------------------------------------------------------------- tests */

static void test_names(void)
{
        char t[8], n[IFNAMSIZ];
        moat_net_env_tag("shop", t);
        is_str(t, "shop", "a short name is its own tag");
        moat_net_env_tag("my-project_with-a-long-name", t);
        is_int(strlen(t), 6, "a long name gets a 6-character tag ('%s')", t);
        ok(strncmp(t, "my", 2) == 0 && !strchr(t, '-'), "tag keeps the name's start, no '-'");
        char t2[8];
        moat_net_env_tag("my-project_with-a-long-namf", t2);
        ok(!STREQ(t, t2), "different long names, different tags ('%s', '%s')", t, t2);
        moat_net_bridge_name("shop", n);
        is_str(n, "moat-shop", "bridge name");
        moat_net_veth_name("my-project_with-a-long-name", 254, n);
        ok(strlen(n) <= 15 && strncmp(n, "moat-my", 7) == 0, "veth name fits IFNAMSIZ ('%s')", n);
        ok(!moat_ifname_valid("0123456789abcdef"), "16 characters invalid");
        ok(!moat_ifname_valid("a/b") && !moat_ifname_valid("a b") && !moat_ifname_valid(""), "bad characters invalid");
        ok(moat_ifname_valid("moat-x-12"), "moat-x-12 valid");
}

static void test_bridge_host(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_link_info info;
        is_int(moat_bridge_create(host_bridge, 1400, &err), 0, "create bridge '%s'%s%s", host_bridge,
               err ? ": " : "", err ? err->msg : "");
        is_int(moat_link_get(NULL, host_bridge, &info, &err) > 0, 1, "it exists");
        is_str(info.kind, "bridge", "kind bridge");
        is_int(info.mtu, 1400, "MTU 1400");
        is_int(moat_bridge_create(host_bridge, 0, &err), -EEXIST, "creating it again: EEXIST");
        contains(err ? err->msg : NULL, host_bridge, "message names the bridge");
        moat_error_free(TAKE_PTR(err));
        is_int(moat_link_set_mtu(NULL, host_bridge, 1300, &err), 0, "set MTU");
        moat_link_get(NULL, host_bridge, &info, &err);
        is_int(info.mtu, 1300, "MTU now 1300");
        is_int(moat_link_set_up(NULL, host_bridge, true, &err), 0, "set up");
        moat_link_get(NULL, host_bridge, &info, &err);
        ok(info.flags & IFF_UP, "IFF_UP set");
        is_int(moat_link_delete(NULL, host_bridge, &err), 0, "delete");
        is_int(moat_link_index(NULL, host_bridge, &err), -ENODEV, "gone");
        is_int(moat_link_delete(NULL, host_bridge, &err), 0, "delete again: no error (idempotent)");
        ok(err == NULL, "no message set");
        is_int(moat_bridge_create("moat-this-is-too-long", 0, &err), -EINVAL, "too long a name refused");
        contains(err ? err->msg : NULL, "'moat-this-is-too-long'", "message names it");
        moat_error_free(TAKE_PTR(err));
        is_int(moat_link_set_mtu(NULL, "moat-nonexist", 1400, &err), -ENODEV, "MTU of a missing link: ENODEV");
        contains(err ? err->msg : NULL, "'moat-nonexist'", "message names the link");
        moat_error_free(TAKE_PTR(err));
}

static void test_env(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int hfd = ns_open(ns_h), afd = ns_open(ns_a), bfd = ns_open(ns_b);
        if (hfd < 0 || afd < 0 || bfd < 0) {
                ok(0, "open the test namespaces: %m");
                return;
        }
        _cleanup_nl_ struct moat_nl *h = NULL, *na = NULL;
        is_int(moat_nl_open(hfd, &h, &err), 0, "netlink socket in '%s'", ns_h);
        is_int(moat_nl_open(afd, &na, &err), 0, "netlink socket in '%s'", ns_a);
        if (!h || !na)
                return;
        const char *env = "t-env";
        struct moat_ipam_net net = { .subnet = a4("10.213.200.0"), .prefixlen = 24, .gateway = a4("10.213.200.1") };
        char br[IFNAMSIZ], ha[IFNAMSIZ] = "", hb[IFNAMSIZ] = "";
        moat_net_bridge_name(env, br);

        /* extended ack: a gateway that is not on-link, before eth0 has an address */
        is_int(moat_veth_create(h, "moat-t-probe", afd, "eth9", 0, &err), 0, "veth with a peer in '%s'", ns_a);
        struct moat_link_info info;
        is_int(moat_link_get(na, "eth9", &info, &err) > 0, 1, "peer 'eth9' is inside '%s'", ns_a);
        is_int(moat_link_index(NULL, "eth9", &err), -ENODEV, "and not in the test's own netns");
        int r = moat_route_add_default4(na, a4("192.0.2.1"), "eth9", &err);
        ok(r < 0, "default route via an off-link gateway refused (%d)", r);
        printf("# %s\n", err ? err->msg : "(no message)");
        contains(err ? err->msg : NULL, "'192.0.2.1'", "message names the gateway");
        moat_error_free(TAKE_PTR(err));
        is_int(moat_link_delete(h, "moat-t-probe", &err), 0, "delete the probe veth");
        is_int(moat_link_index(na, "eth9", &err), -ENODEV, "its peer went with it");

        is_int(moat_net_bridge_ensure(h, hfd, env, &net, 0, &err), 0, "bridge '%s' in '%s'%s%s", br, ns_h,
               err ? ": " : "", err ? err->msg : "");
        is_int(moat_net_bridge_ensure(h, hfd, env, &net, 0, &err), 0, "ensuring it again is fine");
        is_int(moat_net_attach(h, hfd, env, afd, a4("10.213.200.2"), &net, 0, ha, &err), 0, "attach '%s'%s%s", ns_a,
               err ? ": " : "", err ? err->msg : "");
        is_int(moat_net_attach(h, hfd, env, bfd, a4("10.213.200.3"), &net, 0, hb, &err), 0, "attach '%s'%s%s", ns_b,
               err ? ": " : "", err ? err->msg : "");
        char want[IFNAMSIZ];
        moat_net_veth_name(env, 2, want);
        is_str(ha, want, "host end named after the address");

        /* eth0 inside with its address, up; lo up */
        is_int(moat_link_get(na, "eth0", &info, &err) > 0, 1, "'eth0' exists in '%s'", ns_a);
        is_str(info.kind, "veth", "it is a veth");
        ok(info.flags & IFF_UP, "eth0 is up");
        contains(sh_out("ip -n %s link show eth0", ns_a), "link/ether 02:6d:0a:d5:c8:02", "eth0's MAC from its address");
        moat_link_get(na, "lo", &info, &err);
        ok(info.flags & IFF_UP, "lo is up");
        struct moat_route4 *v = NULL;
        size_t n = 0;
        is_int(moat_addrs4_list(na, "eth0", &v, &n, &err), 0, "list eth0's addresses");
        ok(n == 1 && v[0].len == 24 && STREQ(ip(v[0].dst), "10.213.200.2"), "eth0 has 10.213.200.2/24");
        free(TAKE_PTR(v));
        is_int(moat_routes4_list(na, &v, &n, &err), 0, "list routes in '%s'", ns_a);
        bool def = false;
        for (size_t i = 0; i < n; i++)
                if (v[i].len == 0 && v[i].table == 254 && STREQ(ip(v[i].gw), "10.213.200.1") && STREQ(v[i].dev, "eth0"))
                        def = true;
        ok(def, "default via 10.213.200.1 dev eth0");
        free(TAKE_PTR(v));
        contains(sh_out("ip -n %s route show default", ns_b), "via 10.213.200.1 dev eth0", "ip(8) agrees for '%s'",
                 ns_b);

        /* host side: ports of the bridge, hairpin off, IPv6 off everywhere */
        int bri = moat_link_index(h, br, &err);
        moat_link_get(h, ha, &info, &err);
        is_int(info.master, bri, "'%s' is a port of '%s'", ha, br);
        ok(info.flags & IFF_UP, "'%s' is up", ha);
        is_str(sh_out("ip netns exec %s cat /sys/class/net/%s/brport/hairpin_mode", ns_h, ha), "0", "hairpin off");
        is_int(moat_bridge_port_hairpin(h, ha, true, &err), 0, "hairpin on");
        is_str(sh_out("ip netns exec %s cat /sys/class/net/%s/brport/hairpin_mode", ns_h, ha), "1", "hairpin is on");
        moat_bridge_port_hairpin(h, ha, false, &err);
        is_str(sh_out("ip netns exec %s cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6", ns_a), "1", "IPv6 off in '%s'",
               ns_a);
        is_str(sh_out("ip netns exec %s cat /proc/sys/net/ipv6/conf/%s/disable_ipv6", ns_h, br), "1",
               "IPv6 off on the bridge");
        is_str(sh_out("ip netns exec %s cat /proc/sys/net/ipv6/conf/%s/disable_ipv6", ns_h, hb), "1",
               "IPv6 off on '%s'", hb);
        is_str(sh_out("cat /proc/sys/net/ipv6/conf/lo/disable_ipv6"), sh_out("cat /proc/sys/net/ipv6/conf/lo/disable_ipv6"),
               "(the test's own netns is not touched)");
        is_int(moat_link_disable_ipv6(afd, "eth0", false, &err), 0, "IPv6 back on in '%s'", ns_a);
        is_str(sh_out("ip netns exec %s cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6", ns_a), "0", "reads 0");
        moat_link_disable_ipv6(afd, "eth0", true, &err);

        /* traffic between the two namespaces through the bridge */
        is_int(reach(ns_a, "10.213.200.3"), 0,
               "'%s' pings '%s' (10.213.200.3)", ns_a, ns_b);
        is_int(reach(ns_b, "10.213.200.2"), 0,
               "'%s' pings '%s' (10.213.200.2)", ns_b, ns_a);
        is_int(reach(ns_a, "10.213.200.1"), 0,
               "'%s' pings the gateway", ns_a);
        is_int(moat_link_set_up(h, hb, false, &err), 0, "set '%s' down", hb);
        ok(sh("ip netns exec %s %s -c1 -W1 10.213.200.3 >/dev/null 2>&1", ns_a, ping_cmd) != 0,
           "'%s' no longer reaches '%s'", ns_a, ns_b);
        moat_link_set_up(h, hb, true, &err);

        /* a second address into a netns that has its eth0 already: refused, nothing left half-made */
        is_int(moat_net_attach(h, hfd, env, bfd, a4("10.213.200.9"), &net, 0, NULL, &err), -EEXIST,
               "attach while eth0 exists in '%s': EEXIST", ns_b);
        contains(err ? err->msg : NULL, "'eth0'", "message names eth0");
        moat_error_free(TAKE_PTR(err));
        _cleanup_strv_ char **names = NULL;
        is_int(moat_link_list(h, br, &names, &err), 3, "prefix '%s' lists the bridge and two ports", br);
        ok(names && strv_contains(names, br) && strv_contains(names, ha) && strv_contains(names, hb),
           "bridge, '%s' and '%s' listed", ha, hb);
        strv_free(TAKE_PTR(names));
        /* re-attaching the same address (after a crash) replaces the leftover veth */
        is_int(moat_net_attach(h, hfd, env, bfd, a4("10.213.200.3"), &net, 0, hb, &err), 0,
               "attach '%s' again with the same address", ns_b);
        int pr = reach(ns_a, "10.213.200.3");
        if (pr)
                sh("ip -n %s neigh | sed 's/^/# /'", ns_a);
        is_int(pr, 0, "'%s' reaches '%s' again", ns_a, ns_b);
        is_int(moat_net_delete_env_links(h, env, &err), 3, "delete the environment's 3 links");
        strv_free(TAKE_PTR(names));
        is_int(moat_link_list(h, "moat-", &names, &err), 0, "no moat-* link left in '%s'", ns_h);
        is_int(moat_link_index(na, "eth0", &err), -ENODEV, "eth0 in '%s' went with its veth", ns_a);
        is_int(moat_net_delete_env_links(h, env, &err), 0, "deleting again deletes nothing, no error");
}

/* ---------------------------------------------------------------- tool */

static int tool(int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;
        int r = -EINVAL;
        if (argc >= 6 && STREQ(argv[2], "up")) {
                struct moat_ipam_opts o = { .state_dir = argv[3] };
                const char *env = argv[4], *svc = argv[5];
                _cleanup_close_ int nsfd = open(argv[6], O_RDONLY | O_CLOEXEC);
                struct moat_ipam_net net;
                struct in_addr a;
                char hif[IFNAMSIZ];
                if (nsfd < 0)
                        r = moat_error_set(&err, errno, "cannot open '%s'", argv[6]);
                else if ((r = moat_ipam_alloc(&o, env, svc, &a, &net, &err)) >= 0 &&
                         (r = moat_net_bridge_ensure(NULL, -1, env, &net, 0, &err)) >= 0) {
                        if (argc > 7 && STREQ(argv[7], "crash")) {
                                char veth[IFNAMSIZ];
                                moat_net_veth_name(env, ntohl(a.s_addr) & 0xff, veth);
                                moat_veth_create(NULL, veth, nsfd, "eth0", 0, &err);
                                kill(getpid(), SIGKILL);
                        }
                        r = moat_net_attach(NULL, -1, env, nsfd, a, &net, 0, hif, &err);
                }
                if (r >= 0)
                        printf("%s %s\n", ip(a), hif);
        } else if (argc >= 5 && STREQ(argv[2], "down")) {
                struct moat_ipam_opts o = { .state_dir = argv[3] };
                r = moat_net_delete_env_links(NULL, argv[4], &err);
                if (r >= 0)
                        r = moat_ipam_release(&o, argv[4], NULL, &err);
        } else if (argc >= 4 && STREQ(argv[2], "list")) {
                _cleanup_strv_ char **names = NULL;
                r = moat_link_list(NULL, argv[3], &names, &err);
                for (char **p = names; r >= 0 && *p; p++)
                        printf("%s\n", *p);
        } else {
                fprintf(stderr, "usage: see the top of tests/unit/test-net-link.c\n");
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "error: %s\n", err ? err->msg : strerror(-r));
                return 1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        if (argc > 1 && STREQ(argv[1], "tool"))
                return tool(argc, argv);
        test_names();
        if (geteuid() != 0) {
                skip("needs root: links, bridges and network namespaces");
                return done_testing();
        }
        if (sh("command -v ip >/dev/null 2>&1") != 0) {
                skip("ip(8) is not installed (iproute2, scripts/deps.sh)");
                return done_testing();
        }
        if (sh("command -v ping >/dev/null 2>&1") != 0)
                ping_cmd = "busybox ping";
        srand((unsigned)(time(NULL) ^ getpid()));
        unsigned id = (unsigned)rand() % 10000;
        snprintf(ns_h, sizeof(ns_h), "moat-t-%u-h", id);
        snprintf(ns_a, sizeof(ns_a), "moat-t-%u-a", id);
        snprintf(ns_b, sizeof(ns_b), "moat-t-%u-b", id);
        snprintf(host_bridge, sizeof(host_bridge), "moat-t%04u", id);
        atexit(cleanup);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGSEGV, on_signal);
        signal(SIGABRT, on_signal);
        if (sh("ip netns add %s && ip netns add %s && ip netns add %s", ns_h, ns_a, ns_b) != 0) {
                skip("cannot create network namespaces with ip netns add");
                return done_testing();
        }
        test_bridge_host();
        test_env();
        cleanup();
        ok(sh("ip netns list | grep -q 'moat-t-%u-'", id) != 0, "test namespaces removed");
        ok(moat_link_index(NULL, host_bridge, NULL) == -ENODEV, "test bridge removed");
        return done_testing();
}
