/* SPDX-License-Identifier: Apache-2.0 */
/* The policy on real traffic (root): a private "host" netns holding a bridge moat-tp<rand>,
 * three container netns a, b, c and one "outside" netns x, all made with ip(8) and removed at
 * the end (also on failure or a signal).  The policy tables live in the private host netns, so
 * the real host's tables are never touched.  Run twice: with br_netfilter passing bridged
 * traffic to the inet hooks (the usual host default) and without (only the bridge table sees
 * container-to-container frames). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "net/nflog.h"
#include "net/policy.h"
#include "tap.h"

static char ns_h[64], ns_a[64], ns_b[64], ns_c[64], ns_x[64], br[16], env[32];
static pid_t servers[8];
static int n_servers;
static int host_ns_fd = -EBADF;
#define NET "10.213.7"
#define GROUP 4711

static bool sh_quiet;
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
        char *cmd;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -1;
        r = system(cmd);
        if (r != 0 && !sh_quiet)
                printf("# command failed (%d): %s\n", r, cmd);
        free(cmd);
        return r == 0 ? 0 : -1;
}

static void cleanup(void)
{
        for (int i = 0; i < n_servers; i++)
                if (servers[i] > 0) {
                        kill(servers[i], SIGKILL);
                        waitpid(servers[i], NULL, 0);
                        servers[i] = 0;
                }
        n_servers = 0;
        if (host_ns_fd >= 0)
                setns(host_ns_fd, CLONE_NEWNET);
        const char *all[] = { ns_a, ns_b, ns_c, ns_x, ns_h };
        for (size_t i = 0; i < ARRAY_SIZE(all); i++)
                if (*all[i]) {
                        char cmd[128];
                        snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", all[i]);
                        if (system(cmd) != 0) {
                                /* already gone */
                        }
                }
}

static void on_signal(int sig)
{
        cleanup();
        signal(sig, SIG_DFL);
        raise(sig);
}

static int enter_ns(const char *ns)
{
        char path[128];
        _cleanup_close_ int fd = -EBADF;
        snprintf(path, sizeof(path), "/run/netns/%s", ns);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
                return -errno;
        return 0;
}

/* a TCP server on port in netns ns: busybox httpd in the foreground */
static pid_t server(const char *ns, int port)
{
        pid_t pid = fork();
        if (pid == 0) {
                char p[16];
                snprintf(p, sizeof(p), "%d", port);
                int fd = open("/dev/null", O_RDWR);
                dup2(fd, 1);
                dup2(fd, 2);
                execlp("ip", "ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", p, "-h", "/tmp", NULL);
                _exit(127);
        }
        if (pid > 0)
                servers[n_servers++] = pid;
        return pid;
}

enum { CONN_OK = 0, CONN_REFUSED = 1, CONN_TIMEOUT = 2, CONN_ERR = 3 };

/* connect from netns `from` ("" = the current one) to ip:port within timeout_ms */
static int tcp_connect(const char *from, const char *ip, int port, int timeout_ms)
{
        pid_t pid = fork();
        int st;

        if (pid < 0)
                return CONN_ERR;
        if (pid == 0) {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
                if (*from && enter_ns(from) < 0)
                        _exit(CONN_ERR);
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                inet_pton(AF_INET, ip, &sa.sin_addr);
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        _exit(CONN_OK);
                if (errno == ECONNREFUSED)
                        _exit(CONN_REFUSED);
                if (errno != EINPROGRESS)
                        _exit(CONN_ERR);
                struct pollfd p = { fd, POLLOUT, 0 };
                if (poll(&p, 1, timeout_ms) <= 0)
                        _exit(CONN_TIMEOUT);
                int e = 0;
                socklen_t l = sizeof(e);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
                _exit(e == 0 ? CONN_OK : e == ECONNREFUSED ? CONN_REFUSED : CONN_ERR);
        }
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(st) ? WEXITSTATUS(st) : CONN_ERR;
}

/* wait until the server answers (without policy) */
static bool wait_up(const char *from, const char *ip, int port)
{
        for (int i = 0; i < 100; i++) {
                if (tcp_connect(from, ip, port, 200) == CONN_OK)
                        return true;
                usleep(30000);
        }
        return false;
}

static struct moat_nflog_record denied[64];
static int n_denied;
static void on_denied(const struct moat_nflog_record *r, void *ud)
{
        (void)ud;
        if (n_denied < (int)ARRAY_SIZE(denied))
                denied[n_denied++] = *r;
}

static bool saw_denied(struct moat_nflog *l, const char *src, const char *dst, int dport)
{
        struct in_addr s, d;
        inet_pton(AF_INET, src, &s);
        inet_pton(AF_INET, dst, &d);
        for (int tries = 0; tries < 40; tries++) {
                struct pollfd p = { moat_nflog_fd(l), POLLIN, 0 };
                if (poll(&p, 1, 50) > 0)
                        moat_nflog_receive(l, on_denied, NULL, NULL);
                for (int i = 0; i < n_denied; i++)
                        if (denied[i].src.s_addr == s.s_addr && denied[i].dst.s_addr == d.s_addr &&
                            denied[i].dport == dport && STREQ(denied[i].prefix, MOAT_POLICY_LOG_PREFIX))
                                return true;
        }
        for (int i = 0; i < n_denied; i++) {
                char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
                printf("#   record: %s -> %s proto %u dport %u prefix '%s' family %u\n",
                       inet_ntop(AF_INET, &denied[i].src, a, sizeof(a)), inet_ntop(AF_INET, &denied[i].dst, b, sizeof(b)),
                       denied[i].proto, denied[i].dport, denied[i].prefix, denied[i].family);
        }
        return false;
}

static struct in_addr ip4(const char *s)
{
        struct in_addr a = {};
        inet_pton(AF_INET, s, &a);
        return a;
}

static int setup(bool brnf)
{
        unsigned r = (unsigned)getpid() ^ (unsigned)time(NULL);
        snprintf(ns_h, sizeof(ns_h), "moat-t-pol%x-h", r);
        snprintf(ns_a, sizeof(ns_a), "moat-t-pol%x-a", r);
        snprintf(ns_b, sizeof(ns_b), "moat-t-pol%x-b", r);
        snprintf(ns_c, sizeof(ns_c), "moat-t-pol%x-c", r);
        snprintf(ns_x, sizeof(ns_x), "moat-t-pol%x-x", r);
        snprintf(br, sizeof(br), "moat-tp%04x", r & 0xffff);
        snprintf(env, sizeof(env), "tp%x", r);

        if (sh("ip netns add %s && ip netns add %s && ip netns add %s && ip netns add %s && ip netns add %s", ns_h,
               ns_a, ns_b, ns_c, ns_x) < 0)
                return -1;
        if (sh("ip -n %s link set lo up && ip -n %s link add %s type bridge && ip -n %s link set %s up && "
               "ip -n %s addr add " NET ".1/24 dev %s && ip -n %s addr add fd00:7::1/64 dev %s nodad && "
               "ip netns exec %s sysctl -qw net.ipv4.ip_forward=1 && "
               "ip netns exec %s sysctl -qw net.bridge.bridge-nf-call-iptables=%d "
               "net.bridge.bridge-nf-call-ip6tables=%d",
               ns_h, ns_h, br, ns_h, br, ns_h, br, ns_h, br, ns_h, ns_h, brnf, brnf) < 0)
                return -1;
        const char *c[] = { ns_a, ns_b, ns_c };
        /* ports named as moat names them: <bridge>-<last byte of the address> (the policy's
         * anti-spoofing binds each port to that address) */
        for (int i = 0; i < 3; i++)
                if (sh("ip -n %s link add %s-%d type veth peer name eth0 netns %s && ip -n %s link set %s-%d master %s up && "
                       "ip -n %s link set lo up && ip -n %s link set eth0 up && "
                       "ip -n %s addr add " NET ".%d/24 dev eth0 && ip -n %s route add default via " NET ".1 && "
                       "ip -n %s addr add fd00:7::%d/64 dev eth0 nodad",
                       ns_h, br, i + 2, c[i], ns_h, br, i + 2, br, c[i], c[i], c[i], i + 2, c[i], c[i], i + 2) < 0)
                        return -1;
        /* "outside": 198.51.100.0/24 behind the host netns */
        if (sh("ip -n %s link add vx type veth peer name eth0 netns %s && ip -n %s link set vx up && "
               "ip -n %s addr add 198.51.100.1/24 dev vx && ip -n %s link set lo up && ip -n %s link set eth0 up && "
               "ip -n %s addr add 198.51.100.2/24 dev eth0 && ip -n %s route add " NET ".0/24 via 198.51.100.1",
               ns_h, ns_x, ns_h, ns_h, ns_x, ns_x, ns_x, ns_x) < 0)
                return -1;
        if (server(ns_b, 8080) < 0 || server(ns_c, 8080) < 0 || server(ns_x, 8080) < 0)
                return -1;
        return enter_ns(ns_h);
}

static const struct moat_policy_service svcs[] = {
        { "a", { 0 } }, { "b", { 0 } }, { "c", { 0 } },
};

static void scenario(bool brnf)
{
        const char *mode = brnf ? "br_netfilter on" : "br_netfilter off";
        struct moat_policy_service s[3];
        const struct moat_policy_port p8080[] = { { IPPROTO_TCP, 8080 } };
        struct moat_policy_pair pair_ab = { "a", "b", p8080, 1 }, pair_ac = { "a", "c", p8080, 1 };
        struct moat_policy_publish pub[] = {
                { ip4(NET ".1"), 18080, "b", 8080, IPPROTO_TCP },
                { ip4(NET ".1"), 18081, "c", 8080, IPPROTO_TCP },
        };
        struct moat_policy_egress eg = { .service = "a", .addr = ip4("198.51.100.2"), .prefix_len = 32, .port = 8080 };
        _cleanup_nflog_ struct moat_nflog *nl = NULL;
        _cleanup_strv_ char **envs = NULL;

        memcpy(s, svcs, sizeof(s));
        s[0].addr = ip4(NET ".2");
        s[1].addr = ip4(NET ".3");
        s[2].addr = ip4(NET ".4");

        if (!ok(setup(brnf) == 0, "[%s] netns, bridge and veths set up", mode))
                return;
        /* without policy everything connects: so the denials below are the policy's doing */
        ok(wait_up(ns_a, NET ".4", 8080), "[%s] without policy a -> c:8080 connects", mode);
        ok(wait_up(ns_a, NET ".3", 8080), "[%s] without policy a -> b:8080 connects", mode);
        ok(sh("ip netns exec %s busybox ping6 -c1 -W2 fd00:7::3 >/dev/null", ns_a) == 0,
           "[%s] without policy IPv6 a -> b answers", mode);
        ok(sh("ip netns exec %s busybox ping6 -c1 -W2 fd00:7::1 >/dev/null", ns_a) == 0,
           "[%s] without policy IPv6 a -> the host answers", mode);
        ok(wait_up("", "198.51.100.2", 8080), "[%s] the outside server is up", mode);

        struct moat_policy p = { .env = env, .bridge = br, .subnet = ip4(NET ".0"), .subnet_len = 24,
                                 .services = s, .n_services = 3, .pairs = &pair_ab, .n_pairs = 1,
                                 .published = pub, .n_published = 2, .egress = &eg, .n_egress = 1,
                                 .nflog_group = GROUP };
        {
                _cleanup_error_ struct moat_error *err = NULL;
                ok(moat_nflog_open(GROUP, &nl, &err) == 0, "[%s] NFLOG group bound%s%s", mode, err ? ": " : "",
                   err ? err->msg : "");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                int r = moat_policy_apply(&p, &err);
                if (!ok(r == 0, "[%s] policy applied", mode))
                        printf("#   %s\n", err ? err->msg : "?");
        }
        is_int(tcp_connect(ns_a, NET ".3", 8080, 1000), CONN_OK, "[%s] allowed a -> b:8080 connects", mode);
        n_denied = 0;
        is_int(tcp_connect(ns_a, NET ".4", 8080, 500), CONN_TIMEOUT, "[%s] a -> c:8080 is dropped", mode);
        ok(nl && saw_denied(nl, NET ".2", NET ".4", 8080), "[%s] NFLOG reports a -> c:8080 with prefix moat-deny",
           mode);
        is_int(tcp_connect(ns_b, NET ".2", 8080, 500), CONN_TIMEOUT, "[%s] b -> a (reverse of the pair) is dropped",
               mode);
        is_int(tcp_connect(ns_a, NET ".3", 9999, 500), CONN_TIMEOUT, "[%s] a -> b on another port is dropped", mode);
        is_int(tcp_connect(ns_a, NET ".1", 22, 500), CONN_TIMEOUT, "[%s] a -> the host itself is dropped", mode);
        sh_quiet = true;
        ok(sh("ip netns exec %s busybox ping6 -c1 -W1 fd00:7::3 >/dev/null 2>&1", ns_a) != 0,
           "[%s] IPv6 a -> b is dropped", mode);
        ok(sh("ip netns exec %s busybox ping6 -c1 -W1 fd00:7::1 >/dev/null 2>&1", ns_a) != 0,
           "[%s] IPv6 a -> the host's bridge address is dropped", mode);
        sh_quiet = false;
        is_int(tcp_connect("", NET ".1", 18080, 1000), CONN_OK, "[%s] published " NET ".1:18080 reaches b:8080 from the host",
               mode);
        is_int(tcp_connect(ns_x, NET ".1", 18080, 1000), CONN_OK,
               "[%s] published " NET ".1:18080 reaches b:8080 from outside (prerouting)", mode);
        is_int(tcp_connect(ns_x, NET ".3", 8080, 500), CONN_TIMEOUT, "[%s] outside -> b:8080 directly is dropped",
               mode);
        is_int(tcp_connect(ns_a, NET ".1", 18081, 500), CONN_TIMEOUT,
               "[%s] a cannot reach c through c's published port (the allow list holds inside)", mode);
        is_int(tcp_connect(ns_x, NET ".1", 18081, 1000), CONN_OK, "[%s] c's published port works from outside", mode);
        /* counts, on the outside, connections that arrive masqueraded (from the host's address) */
        sh("ip netns exec %s nft 'add table ip moatt; add chain ip moatt in { type filter hook input priority 0; }; "
           "add rule ip moatt in ip saddr 198.51.100.1 tcp dport 8080 tcp flags & (syn | ack) == syn counter'",
           ns_x);
        is_int(tcp_connect(ns_a, "198.51.100.2", 8080, 1000), CONN_OK, "[%s] declared egress a -> outside:8080", mode);
        ok(sh("ip netns exec %s nft list chain ip moatt in | grep -q 'packets [1-9]'", ns_x) == 0,
           "[%s] egress arrives masqueraded to the host's address", mode);
        is_int(tcp_connect(ns_b, "198.51.100.2", 8080, 500), CONN_TIMEOUT, "[%s] undeclared egress b -> outside is dropped", mode);
        /* spoofing: c sends as a (a's address on c's eth0, the route to b from it): b:8080 is
         * open to a, so only the bridge's anti-spoofing (each port speaks for its own address)
         * stops it; counted at b */
        sh("ip netns exec %s nft 'add table ip moatt; add chain ip moatt in { type filter hook input priority 0; }; "
           "add rule ip moatt in ip saddr " NET ".2 tcp dport 8080 tcp flags & (syn | ack) == syn counter'",
           ns_b);
        sh("ip -n %s addr add " NET ".2/32 dev eth0 && ip -n %s route add " NET ".3/32 dev eth0 src " NET ".2", ns_c,
           ns_c);
        is_int(tcp_connect(ns_c, NET ".3", 8080, 500), CONN_TIMEOUT, "[%s] c posing as a cannot reach b:8080", mode);
        ok(sh("ip netns exec %s nft list chain ip moatt in | grep -q 'packets 0 '", ns_b) == 0,
           "[%s] ... not one SYN from the forged address reached b", mode);
        sh("ip -n %s route del " NET ".3/32 && ip -n %s addr del " NET ".2/32 dev eth0 && "
           "ip netns exec %s nft delete table ip moatt", ns_c, ns_c, ns_b);

        /* re-apply with a changed allow list: a -> c instead of a -> b */
        p.pairs = &pair_ac;
        {
                _cleanup_error_ struct moat_error *err = NULL;
                ok(moat_policy_apply(&p, &err) == 0, "[%s] re-applied with a -> c", mode);
        }
        is_int(tcp_connect(ns_a, NET ".4", 8080, 1000), CONN_OK, "[%s] after re-apply a -> c:8080 connects", mode);
        is_int(tcp_connect(ns_a, NET ".3", 8080, 500), CONN_TIMEOUT, "[%s] after re-apply a -> b:8080 is dropped",
               mode);
        {
                _cleanup_error_ struct moat_error *err = NULL;
                int n = moat_policy_list(&envs, &err);
                ok(n == 1 && envs && envs[0] && STREQ(envs[0], env), "[%s] moat_policy_list finds '%s'", mode, env);
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                ok(moat_policy_remove(env, &err) == 0, "[%s] policy removed", mode);
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                ok(moat_policy_remove(env, &err) == 0, "[%s] remove again is fine (idempotent)", mode);
        }
        strv_free(envs);
        envs = NULL;
        {
                _cleanup_error_ struct moat_error *err = NULL;
                is_int(moat_policy_list(&envs, &err), 0, "[%s] no moat table left", mode);
        }
        is_int(tcp_connect(ns_a, NET ".3", 8080, 1000), CONN_OK, "[%s] after remove a -> b connects again", mode);
        cleanup();
}

/* the 100-service policy text really loads (sets with hundreds of elements) */
static void big_policy(void)
{
        static char names[100][8];
        static struct moat_policy_service s[100];
        static struct moat_policy_pair pr[300];
        static const struct moat_policy_port ports[] = { { IPPROTO_TCP, 80 }, { IPPROTO_TCP, 443 } };
        size_t np = 0;
        unsigned r = (unsigned)getpid();

        snprintf(ns_h, sizeof(ns_h), "moat-t-pol%x-big", r);
        ns_a[0] = ns_b[0] = ns_c[0] = ns_x[0] = 0;
        if (!ok(sh("ip netns add %s", ns_h) == 0 && enter_ns(ns_h) == 0, "netns for the 100-service policy"))
                return;
        for (int i = 0; i < 100; i++) {
                char a[32];
                snprintf(names[i], sizeof(names[i]), "s%d", i);
                snprintf(a, sizeof(a), "10.99.%d.%d", i / 200, i % 200 + 2);
                s[i] = (struct moat_policy_service){ names[i], ip4(a) };
        }
        for (int i = 0; i < 100; i++)
                for (int k = 1; k <= 3; k++)
                        pr[np++] = (struct moat_policy_pair){ names[i], names[(i + k) % 100], k == 3 ? NULL : ports,
                                                              k == 3 ? 0 : 2 };
        struct moat_policy p = { .env = "big", .bridge = "moat-big0", .subnet = ip4("10.99.0.0"), .subnet_len = 16,
                                 .services = s, .n_services = 100, .pairs = pr, .n_pairs = np, .nflog_group = 9 };
        struct timespec t0, t1;
        _cleanup_error_ struct moat_error *err = NULL;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int ret = moat_policy_apply(&p, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (!ok(ret == 0, "100 services, 300 pairs: applied"))
                printf("#   %s\n", err ? err->msg : "?");
        printf("# apply took %.1f ms\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        ok(sh("nft list set bridge moat-big pairs | grep -q '10.99.0.101 . 10.99.0.2 . tcp . 443'") == 0,
           "the last pair element is in the loaded set");
        cleanup();
}

/* For tests/integration/net-policy.sh (crash recovery):
 *   --apply-and-wait NETNS ENV   applies a small policy inside NETNS, prints "applied", sleeps
 *                                (the script kills it with SIGKILL: nothing is cleaned up)
 *   --recover NETNS              lists the leftover moat tables in NETNS and removes them all */
static int tool(int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_strv_ char **envs = NULL;

        if (argc < 3 || enter_ns(argv[2]) < 0) {
                fprintf(stderr, "cannot enter netns '%s'\n", argc > 2 ? argv[2] : "");
                return 2;
        }
        if (STREQ(argv[1], "--apply-and-wait") && argc == 4) {
                struct moat_policy_service s[] = { { "a", ip4("10.213.8.2") }, { "b", ip4("10.213.8.3") } };
                struct moat_policy_pair pr = { "a", "b", NULL, 0 };
                struct moat_policy p = { .env = argv[3], .bridge = "moat-crash", .subnet = ip4("10.213.8.0"),
                                         .subnet_len = 24, .services = s, .n_services = 2, .pairs = &pr,
                                         .n_pairs = 1, .nflog_group = 77 };
                if (moat_policy_apply(&p, &err) < 0) {
                        fprintf(stderr, "%s\n", err->msg);
                        return 1;
                }
                printf("applied\n");
                fflush(stdout);
                for (;;)
                        pause();
        }
        if (STREQ(argv[1], "--recover") && argc == 3) {
                int n = moat_policy_list(&envs, &err);
                if (n < 0) {
                        fprintf(stderr, "%s\n", err->msg);
                        return 1;
                }
                for (int i = 0; i < n; i++) {
                        printf("%s\n", envs[i]);
                        if (moat_policy_remove(envs[i], &err) < 0) {
                                fprintf(stderr, "%s\n", err->msg);
                                return 1;
                        }
                }
                return 0;
        }
        fprintf(stderr, "usage: %s [--apply-and-wait NETNS ENV | --recover NETNS]\n", argv[0]);
        return 2;
}

int main(int argc, char **argv)
{
        if (argc > 1)
                return tool(argc, argv);
        if (geteuid() != 0)
                return skip_all("needs root (network namespaces and nftables)");
        if (system("command -v ip >/dev/null && command -v busybox >/dev/null && command -v nft >/dev/null") != 0)
                return skip_all("needs ip(8), busybox and nft (scripts/deps.sh)");
        host_ns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        atexit(cleanup);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);

        scenario(true);
        scenario(false);
        big_policy();
        return done_testing();
}
