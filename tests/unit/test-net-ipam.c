/* SPDX-License-Identifier: Apache-2.0 */
/* IPAM: allocation, persistence, host-route collisions, release, the config
 * file pool, and concurrent allocations from several processes.  Needs no
 * root: host routes are given (fake) except in one test that reads the real
 * ones through netlink. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/util.h"
#include "net/addr.h"
#include "net/ipam.h"
#include "net/link.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-t-ipam.XXXXXX";

static const char *ip(struct in_addr a)
{
        static char buf[4][INET_ADDRSTRLEN];
        static int i;
        i = (i + 1) % 4;
        inet_ntop(AF_INET, &a, buf[i], sizeof(buf[i]));
        return buf[i];
}

static struct moat_route4 rt(const char *cidr, const char *dev)
{
        struct moat_route4 r = { .len = 0 };
        if (moat_cidr4_parse(cidr, &r.dst, &r.len, false) < 0)
                abort();
        snprintf(r.dev, sizeof(r.dev), "%s", dev ? dev : "");
        return r;
}

static void put_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");
        if (!f || fputs(text, f) < 0 || fclose(f) != 0)
                abort();
}

static void opts_for(struct moat_ipam_opts *o, const char *sub)
{
        static char dirs[8][256];
        static int n;
        char *d = dirs[n++ % 8];
        snprintf(d, 256, "%s/%s", tmpdir, sub);
        *o = (struct moat_ipam_opts){ .state_dir = d, .conf_path = "/nonexistent/moat.conf", .routes_given = true };
}

static void test_basic(void)
{
        struct moat_ipam_opts o;
        opts_for(&o, "basic");
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_ipam_net net;
        struct in_addr a, b, c;
        is_int(moat_ipam_alloc(&o, "shop", "web", &a, &net, &err), 0, "allocate web");
        is_str(ip(net.subnet), "10.213.0.0", "first /24 of the default pool");
        is_int(net.prefixlen, 24, "prefix /24");
        is_str(ip(net.gateway), "10.213.0.1", "gateway is .1");
        is_str(ip(a), "10.213.0.2", "first service gets .2");
        is_int(moat_ipam_alloc(&o, "shop", "api", &b, NULL, &err), 0, "allocate api");
        is_str(ip(b), "10.213.0.3", "second service gets .3");
        is_int(moat_ipam_alloc(&o, "shop", "web", &c, NULL, &err), 0, "allocate web again");
        is_str(ip(c), "10.213.0.2", "same service, same address");
        is_int(moat_ipam_env_net(&o, "blog", &net, &err), 0, "second environment");
        is_str(ip(net.subnet), "10.213.1.0", "second environment gets the next /24");

        /* persistence: the file is what a new process reads */
        char path[300];
        snprintf(path, sizeof(path), "%s/ipam.json", o.state_dir);
        json_error_t je;
        json_t *root = json_load_file(path, 0, &je);
        ok(root != NULL, "ipam.json is valid JSON");
        const char *s = json_string_value(json_object_get(
                json_object_get(json_object_get(json_object_get(json_object_get(root, "envs"), "shop"), "services"),
                                "api"),
                "address"));
        is_str(s, "10.213.0.3", "ipam.json records api's address");
        json_decref(root);
        ok(access(path, F_OK) == 0 && err == NULL, "no error message left behind");
}

static void test_persistence_release(void)
{
        struct moat_ipam_opts o;
        opts_for(&o, "persist");
        _cleanup_error_ struct moat_error *err = NULL;
        struct in_addr a, b, c, d;
        moat_ipam_alloc(&o, "env1", "db", &a, NULL, &err);
        moat_ipam_alloc(&o, "env1", "api", &b, NULL, &err);
        /* "reopen": a child process with the same state dir sees the same records */
        pid_t pid = fork();
        if (pid == 0) {
                struct in_addr x;
                struct moat_error *e2 = NULL;
                if (moat_ipam_alloc(&o, "env1", "api", &x, NULL, &e2) < 0)
                        _exit(2);
                _exit(x.s_addr == b.s_addr ? 0 : 1);
        }
        int st = -1;
        waitpid(pid, &st, 0);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "another process gets api's recorded address");

        is_int(moat_ipam_release(&o, "env1", NULL, &err), 0, "release the environment (down)");
        /* another environment must not take env1's subnet while a fresh one exists */
        struct moat_ipam_net net2, net1;
        moat_ipam_env_net(&o, "env2", &net2, &err);
        is_str(ip(net2.subnet), "10.213.1.0", "a released subnet is kept as a hint");
        /* second up of env1: api first this time, then db: each keeps its address */
        is_int(moat_ipam_alloc(&o, "env1", "api", &c, &net1, &err), 0, "second up: api");
        is_int(moat_ipam_alloc(&o, "env1", "db", &d, NULL, &err), 0, "second up: db");
        is_str(ip(net1.subnet), "10.213.0.0", "same subnet on the second up");
        ok(c.s_addr == b.s_addr && d.s_addr == a.s_addr, "same addresses on the second up (api %s, db %s)", ip(c),
           ip(d));
        /* a released service's address goes to a newcomer only when nothing else is left */
        moat_ipam_release(&o, "env1", "db", &err);
        struct in_addr e;
        moat_ipam_alloc(&o, "env1", "cache", &e, NULL, &err);
        ok(e.s_addr != a.s_addr, "newcomer does not take released db's address (%s)", ip(e));
        is_int(moat_ipam_release(&o, "env1", "nosuch", &err), 0, "releasing an unknown service is fine");
        is_int(moat_ipam_forget(&o, "env1", &err), 0, "forget the environment");
        moat_ipam_env_net(&o, "env3", &net1, &err);
        is_str(ip(net1.subnet), "10.213.0.0", "a forgotten subnet is free again");
}

static void test_routes(void)
{
        struct moat_ipam_opts o;
        opts_for(&o, "routes");
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_route4 routes[] = {
                rt("0.0.0.0/0", "eth0"),        /* default route: ignored */
                rt("10.213.0.0/24", "eth0"),    /* the first /24 */
                rt("10.213.1.128/25", "wg0"),   /* part of the second */
                rt("10.213.2.7/32", "tun0"),    /* a host route in the third */
                rt("10.213.4.0/22", "vpn0"),    /* 4..7 */
                rt("127.0.0.0/8", "lo"),
        };
        o.routes = routes;
        o.n_routes = ARRAY_SIZE(routes);
        struct moat_ipam_net net;
        is_int(moat_ipam_env_net(&o, "a", &net, &err), 0, "allocate with host routes");
        is_str(ip(net.subnet), "10.213.3.0", "overlapping /24s skipped");
        is_int(moat_ipam_env_net(&o, "b", &net, &err), 0, "allocate a second");
        is_str(ip(net.subnet), "10.213.8.0", "a covering /22 skips four /24s");

        /* a route that appears while "a" is down moves it to another subnet */
        moat_ipam_release(&o, "a", NULL, &err);
        struct moat_route4 more[ARRAY_SIZE(routes) + 1];
        memcpy(more, routes, sizeof(routes));
        more[ARRAY_SIZE(routes)] = rt("10.213.3.0/24", "docker0");
        o.routes = more;
        o.n_routes = ARRAY_SIZE(more);
        moat_ipam_env_net(&o, "a", &net, &err);
        is_str(ip(net.subnet), "10.213.9.0", "a subnet now taken by the host is given up");
        /* but the environment's own bridge route is not a conflict */
        char br[IFNAMSIZ];
        moat_net_bridge_name("a", br);
        moat_ipam_release(&o, "a", NULL, &err);
        more[ARRAY_SIZE(routes)] = rt("10.213.9.0/24", br);
        moat_ipam_env_net(&o, "a", &net, &err);
        is_str(ip(net.subnet), "10.213.9.0", "a route via the environment's own bridge '%s' is no conflict", br);
}

static void test_pool(void)
{
        struct moat_ipam_opts o;
        opts_for(&o, "pool");
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_ipam_net net;
        char conf[300];
        snprintf(conf, sizeof(conf), "%s/moat.conf", tmpdir);
        put_file(conf, "# moat settings\nother_key = x\n  subnet_pool = 172.31.16.0/23  \n");
        o.conf_path = conf;
        is_int(moat_ipam_env_net(&o, "x", &net, &err), 0, "pool from moat.conf");
        is_str(ip(net.subnet), "172.31.16.0", "first /24 of the configured pool");
        moat_ipam_env_net(&o, "y", &net, &err);
        is_str(ip(net.subnet), "172.31.17.0", "second /24 of the configured pool");
        is_int(moat_ipam_env_net(&o, "z", &net, &err), -ENOSPC, "pool exhausted");
        contains(err ? err->msg : NULL, "no free /24 left in subnet pool '172.31.16.0/23'", "message names the pool");
        moat_error_free(TAKE_PTR(err));
        moat_ipam_release(&o, "x", NULL, &err);
        is_int(moat_ipam_env_net(&o, "z", &net, &err), 0, "an inactive environment's subnet is reclaimed");
        is_str(ip(net.subnet), "172.31.16.0", "z got x's old subnet");

        opts_for(&o, "pool2");
        o.conf_path = conf;
        o.pool = "10.99.0.0/24"; /* a parameter wins over the file */
        is_int(moat_ipam_env_net(&o, "x", &net, &err), 0, "pool from a parameter");
        is_str(ip(net.subnet), "10.99.0.0", "the parameter's pool");
        o.pool = "10.99.0.1/16";
        is_int(moat_ipam_env_net(&o, "q", &net, &err), -EINVAL, "host bits in the pool refused");
        contains(err ? err->msg : NULL, "'10.99.0.1/16'", "message names the pool");
        moat_error_free(TAKE_PTR(err));
        o.pool = NULL;
        o.conf_path = conf;
        put_file(conf, "subnet_pool = 10.0.0.0/25\n");
        is_int(moat_ipam_env_net(&o, "q", &net, &err), -EINVAL, "a pool smaller than /24 refused");
        contains(err ? err->msg : NULL, "moat.conf:1", "message names the file and line");
        moat_error_free(TAKE_PTR(err));

        /* every address of a /24 */
        opts_for(&o, "full");
        int n = 0, r = 0;
        for (int i = 0; i < 300 && r >= 0; i++) {
                char svc[16];
                struct in_addr a;
                snprintf(svc, sizeof(svc), "s%d", i);
                r = moat_ipam_alloc(&o, "big", svc, &a, NULL, &err);
                if (r >= 0)
                        n++;
        }
        is_int(n, 253, ".2 to .254: 253 services");
        is_int(r, -ENOSPC, "the 254th gets ENOSPC");
        moat_error_free(TAKE_PTR(err));
}

static void test_concurrent(void)
{
        struct moat_ipam_opts o;
        opts_for(&o, "conc");
        enum { PROCS = 4, EACH = 20 };
        int pfd[2];
        if (pipe(pfd) < 0)
                abort();
        pid_t pids[PROCS];
        for (int p = 0; p < PROCS; p++) {
                pids[p] = fork();
                if (pids[p] == 0) {
                        close(pfd[0]);
                        for (int i = 0; i < EACH; i++) {
                                char svc[32];
                                struct in_addr a;
                                struct moat_error *e = NULL;
                                snprintf(svc, sizeof(svc), "p%d-s%d", p, i);
                                /* two environments at once, too */
                                if (moat_ipam_alloc(&o, i % 2 ? "odd" : "even", svc, &a, NULL, &e) < 0)
                                        _exit(1);
                                if (write(pfd[1], &a, sizeof(a)) != sizeof(a))
                                        _exit(1);
                        }
                        _exit(0);
                }
        }
        close(pfd[1]);
        struct in_addr got[PROCS * EACH];
        size_t n = 0;
        while (n < ARRAY_SIZE(got) && read(pfd[0], &got[n], sizeof(got[n])) == sizeof(got[n]))
                n++;
        close(pfd[0]);
        int bad = 0;
        for (int p = 0; p < PROCS; p++) {
                int st;
                waitpid(pids[p], &st, 0);
                bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        is_int(bad, 0, "%d processes allocated without error", PROCS);
        is_int(n, PROCS * EACH, "%d addresses handed out", PROCS * EACH);
        int dup = 0;
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        dup += got[i].s_addr == got[j].s_addr;
        is_int(dup, 0, "all addresses distinct across processes and environments");
}

static void test_real_routes(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_route4 *v = NULL;
        size_t n = 0;
        int r = moat_routes4_list(NULL, &v, &n, &err);
        is_int(r, 0, "read the host's IPv4 routes through netlink%s%s", err ? ": " : "", err ? err->msg : "");
        bool lo = false;
        for (size_t i = 0; i < n; i++)
                if (v[i].len == 8 && ntohl(v[i].dst.s_addr) == 0x7f000000 && STREQ(v[i].dev, "lo"))
                        lo = true;
        ok(lo, "127.0.0.0/8 via 'lo' among %zu routes", n);
        free(v);
        /* and the allocator avoids them: no real route overlaps what it picks */
        struct moat_ipam_opts o;
        opts_for(&o, "real");
        o.routes_given = false;
        struct moat_ipam_net net;
        is_int(moat_ipam_env_net(&o, "r", &net, &err), 0, "allocate against the real routes");
        r = moat_routes4_list(NULL, &v, &n, &err);
        bool clash = false;
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (v[i].len && moat_cidr4_overlap(v[i].dst, v[i].len, net.subnet, 24))
                        clash = true;
        ok(!clash, "%s/24 overlaps no host route", ip(net.subnet));
        free(v);
}

static void test_cidr(void)
{
        struct in_addr a;
        unsigned l;
        is_int(moat_cidr4_parse("10.1.2.0/24", &a, &l, true), 0, "parse 10.1.2.0/24");
        is_int(l, 24, "length 24");
        is_int(moat_cidr4_parse("10.1.2.3/24", &a, &l, true), -EINVAL, "strict: host bits refused");
        is_int(moat_cidr4_parse("10.1.2.3/24", &a, &l, false), 0, "not strict: host bits accepted");
        is_int(moat_cidr4_parse("10.1.2.0/33", &a, &l, false), -EINVAL, "/33 refused");
        is_int(moat_cidr4_parse("10.1.2.0", &a, &l, false), -EINVAL, "no length refused");
        is_int(moat_cidr4_parse("10.1.2.0/+8", &a, &l, false), -EINVAL, "sign refused");
        struct in_addr x, y;
        inet_pton(AF_INET, "10.0.0.0", &x);
        inet_pton(AF_INET, "10.0.1.0", &y);
        ok(moat_cidr4_overlap(x, 8, y, 24), "10/8 overlaps 10.0.1/24");
        ok(!moat_cidr4_overlap(x, 24, y, 24), "10.0.0/24 does not overlap 10.0.1/24");
}

int main(void)
{
        if (!mkdtemp(tmpdir))
                return skip_all("cannot create a temporary directory");
        test_cidr();
        test_basic();
        test_persistence_release();
        test_routes();
        test_pool();
        test_concurrent();
        test_real_routes();
        rm_rf_at(AT_FDCWD, tmpdir);
        return done_testing();
}
