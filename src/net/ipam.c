/* SPDX-License-Identifier: Apache-2.0 */
#include "net/ipam.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "net/link.h"

/* ---------------------------------------------------------------- pool */

static char *trim(char *s)
{
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
                s[--n] = '\0';
        return s;
}

static int check_pool(const char *where, const char *s, struct in_addr *pool, unsigned *len, struct moat_error **err)
{
        if (moat_cidr4_parse(s, pool, len, true) < 0)
                return moat_error_input(err, -EINVAL, "%s: invalid subnet pool '%s' (want an IPv4 network as "
                                        "A.B.C.D/N with no host bits set)", where, s);
        if (*len > 24 || *len < 8)
                return moat_error_input(err, -EINVAL, "%s: subnet pool '%s' must be /8 to /24 (it is split in /24s)",
                                        where, s);
        return 0;
}

int moat_ipam_pool(const struct moat_ipam_opts *o, struct in_addr *pool, unsigned *len, struct moat_error **err)
{
        if (o->pool)
                return check_pool("subnet pool", o->pool, pool, len, err);
        const char *path = o->conf_path ? o->conf_path : MOAT_CONF_PATH;
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f && errno != ENOENT)
                return moat_error_set(err, errno, "cannot read '%s'", path);
        if (f) {
                _cleanup_free_ char *line = NULL;
                size_t cap = 0;
                unsigned lineno = 0;
                while (getline(&line, &cap, f) >= 0) {
                        lineno++;
                        char *l = trim(line);
                        if (!*l || *l == '#')
                                continue;
                        char *eq = strchr(l, '=');
                        if (!eq)
                                continue; /* not ours to judge: other keys may have other syntax */
                        *eq = '\0';
                        if (!STREQ(trim(l), "subnet_pool"))
                                continue;
                        char where[PATH_MAX + 32];
                        snprintf(where, sizeof(where), "%s:%u: subnet_pool", path, lineno);
                        return check_pool(where, trim(eq + 1), pool, len, err);
                }
        }
        return check_pool("default", MOAT_IPAM_DEFAULT_POOL, pool, len, err);
}

/* ---------------------------------------------------------------- store */

struct store {
        int lockfd;
        char *path;
        json_t *root;
        json_t *envs; /* borrowed from root */
};

static void store_close(struct store *s)
{
        if (s->root)
                json_decref(s->root);
        if (s->lockfd >= 0)
                close(s->lockfd); /* drops the flock */
        free(s->path);
        memset(s, 0, sizeof(*s));
        s->lockfd = -EBADF;
}

static int store_open(const struct moat_ipam_opts *o, struct store *s, struct moat_error **err)
{
        memset(s, 0, sizeof(*s));
        s->lockfd = -EBADF;
        if (!o->state_dir || !*o->state_dir)
                return moat_error_input(err, -EINVAL, "IPAM: no state directory given");
        int r = mkdir_p(o->state_dir, 0700);
        if (r < 0)
                return moat_error_set(err, r, "cannot create state directory '%s'", o->state_dir);
        _cleanup_free_ char *lock = NULL;
        if (asprintf(&lock, "%s/ipam.lock", o->state_dir) < 0 || asprintf(&s->path, "%s/ipam.json", o->state_dir) < 0)
                return moat_error_set(err, ENOMEM, "IPAM");
        s->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lockfd < 0)
                return moat_error_set(err, errno, "cannot open '%s'", lock);
        while (flock(s->lockfd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return moat_error_set(err, errno, "cannot lock '%s'", lock);
        json_error_t je;
        s->root = json_load_file(s->path, 0, &je);
        if (!s->root) {
                if (access(s->path, F_OK) == 0)
                        return moat_error_input(err, -EINVAL, "'%s' is damaged (line %d: %s): move it away to start "
                                                "over", s->path, je.line, je.text);
                s->root = json_pack("{s:i, s:{}}", "version", 1, "envs");
                if (!s->root)
                        return moat_error_set(err, ENOMEM, "IPAM");
        }
        s->envs = json_object_get(s->root, "envs");
        if (!json_is_object(s->envs))
                return moat_error_input(err, -EINVAL, "'%s': no \"envs\" object: move it away to start over", s->path);
        return 0;
}

static int store_save(struct store *s, struct moat_error **err)
{
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.XXXXXX", s->path) < 0)
                return moat_error_set(err, ENOMEM, "IPAM");
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot write '%s'", s->path);
        _cleanup_free_ char *text = json_dumps(s->root, JSON_INDENT(2) | JSON_SORT_KEYS);
        int r = 0;
        if (!text)
                r = -ENOMEM;
        else if (write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0 || fsync(fd) < 0)
                r = -errno;
        else if (rename(tmp, s->path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return moat_error_set(err, r, "cannot write '%s'", s->path);
        }
        return 0;
}

/* ---------------------------------------------------------------- helpers */

static int json_addr(json_t *obj, const char *key, struct in_addr *out)
{
        const char *s = json_string_value(json_object_get(obj, key));
        return s && inet_pton(AF_INET, s, out) == 1 ? 0 : -EINVAL;
}

static int json_set_addr(json_t *obj, const char *key, struct in_addr a)
{
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a, ip, sizeof(ip));
        return json_object_set_new(obj, key, json_string(ip)) < 0 ? -ENOMEM : 0;
}

static struct in_addr host_in(struct in_addr net, unsigned host)
{
        return (struct in_addr){ .s_addr = htonl(ntohl(net.s_addr) + host) };
}

static bool env_active(json_t *e)
{
        return json_is_true(json_object_get(e, "active"));
}

/* A /24 overlapping a host route, other than the environment's own bridge's. */
static bool route_conflict(const struct moat_route4 *rt, size_t n, struct in_addr net, const char *own_bridge)
{
        for (size_t i = 0; i < n; i++) {
                if (rt[i].len == 0 || (own_bridge && STREQ(rt[i].dev, own_bridge)))
                        continue;
                if (moat_cidr4_overlap(rt[i].dst, rt[i].len, net, 24))
                        return true;
        }
        return false;
}

/* Which env record (other than skip) holds subnet net; NULL if none. */
static const char *subnet_holder(json_t *envs, struct in_addr net, const char *skip, bool active_only)
{
        const char *k;
        json_t *e;
        json_object_foreach(envs, k, e) {
                struct in_addr a;
                if (STREQ(k, skip) || json_addr(e, "subnet", &a) < 0 || a.s_addr != net.s_addr)
                        continue;
                if (!active_only || env_active(e))
                        return k;
        }
        return NULL;
}

struct routes {
        const struct moat_route4 *v;
        size_t n;
        struct moat_route4 *owned;
        bool loaded;
};

static int routes_get(const struct moat_ipam_opts *o, struct routes *r, struct moat_error **err)
{
        if (r->loaded)
                return 0;
        if (o->routes_given) {
                r->v = o->routes;
                r->n = o->n_routes;
        } else {
                int ret = moat_routes4_list(NULL, &r->owned, &r->n, err);
                if (ret < 0)
                        return ret;
                r->v = r->owned;
        }
        r->loaded = true;
        return 0;
}

/* Finds or makes env's record with a usable subnet; returns it (borrowed). */
static int env_record(const struct moat_ipam_opts *o, struct store *s, const char *env, json_t **out,
                      struct moat_error **err)
{
        char bridge[IFNAMSIZ];
        moat_net_bridge_name(env, bridge);
        struct routes rt = { 0 };
        int r;
        json_t *e = json_object_get(s->envs, env);
        struct in_addr net;
        if (e && json_addr(e, "subnet", &net) == 0) {
                bool ok = env_active(e);
                if (!ok) {
                        if ((r = routes_get(o, &rt, err)) < 0)
                                goto out;
                        ok = !route_conflict(rt.v, rt.n, net, bridge) && !subnet_holder(s->envs, net, env, true);
                }
                if (ok)
                        goto found;
                moat_debug("IPAM: environment '%s' cannot have its old subnet again", env);
        }
        struct in_addr pool;
        unsigned plen;
        if ((r = moat_ipam_pool(o, &pool, &plen, err)) < 0 || (r = routes_get(o, &rt, err)) < 0)
                goto out;
        unsigned count = 1u << (24 - plen);
        /* pass 0: never used; pass 1: reclaim an inactive environment's subnet */
        for (int pass = 0; pass < 2; pass++)
                for (unsigned i = 0; i < count; i++) {
                        net.s_addr = htonl(ntohl(pool.s_addr) + (i << 8));
                        if (route_conflict(rt.v, rt.n, net, NULL))
                                continue;
                        const char *holder = subnet_holder(s->envs, net, env, pass == 1);
                        if (holder)
                                continue;
                        if (pass == 1) {
                                const char *old;
                                while ((old = subnet_holder(s->envs, net, env, false))) {
                                        moat_debug("IPAM: reclaiming the subnet of inactive environment '%s'", old);
                                        json_object_del(s->envs, old);
                                }
                        }
                        e = json_pack("{s:{}}", "services");
                        if (!e || json_set_addr(e, "subnet", net) < 0 || json_object_set_new(s->envs, env, e) < 0) {
                                r = moat_error_set(err, ENOMEM, "IPAM");
                                goto out;
                        }
                        goto found;
                }
        char p[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &pool, p, sizeof(p));
        r = moat_error_input(err, -ENOSPC, "no free /24 left in subnet pool '%s/%u' for environment '%s' (set "
                             "subnet_pool in %s)", p, plen, env, MOAT_CONF_PATH);
        goto out;
found:
        if (json_object_set_new(e, "active", json_true()) < 0) {
                r = moat_error_set(err, ENOMEM, "IPAM");
                goto out;
        }
        if (!json_is_object(json_object_get(e, "services")))
                json_object_set_new(e, "services", json_object());
        *out = e;
        r = 0;
out:
        free(rt.owned);
        return r;
}

static void fill_net(json_t *e, struct moat_ipam_net *net)
{
        memset(net, 0, sizeof(*net));
        (void)json_addr(e, "subnet", &net->subnet);
        net->prefixlen = 24;
        net->gateway = host_in(net->subnet, 1);
}

/* ---------------------------------------------------------------- API */

int moat_ipam_env_net(const struct moat_ipam_opts *o, const char *env, struct moat_ipam_net *net,
                      struct moat_error **err)
{
        struct store s;
        json_t *e;
        int r = store_open(o, &s, err);
        if (r >= 0)
                r = env_record(o, &s, env, &e, err);
        if (r >= 0)
                r = store_save(&s, err);
        if (r >= 0 && net)
                fill_net(e, net);
        store_close(&s);
        return r;
}

/* The service (other than skip) holding address a in svcs. */
static const char *addr_holder(json_t *svcs, struct in_addr a, const char *skip, bool active_only)
{
        const char *k;
        json_t *v;
        json_object_foreach(svcs, k, v) {
                struct in_addr b;
                if ((skip && STREQ(k, skip)) || json_addr(v, "address", &b) < 0 || b.s_addr != a.s_addr)
                        continue;
                if (!active_only || json_is_true(json_object_get(v, "active")))
                        return k;
        }
        return NULL;
}

int moat_ipam_alloc(const struct moat_ipam_opts *o, const char *env, const char *service, struct in_addr *addr,
                    struct moat_ipam_net *net, struct moat_error **err)
{
        struct store s;
        json_t *e = NULL;
        int r = store_open(o, &s, err);
        if (r < 0 || (r = env_record(o, &s, env, &e, err)) < 0)
                goto out;
        struct moat_ipam_net n;
        fill_net(e, &n);
        json_t *svcs = json_object_get(e, "services");
        json_t *rec = json_object_get(svcs, service);
        struct in_addr a;
        if (rec && json_addr(rec, "address", &a) == 0 && moat_cidr4_overlap(a, 32, n.subnet, 24) &&
            (ntohl(a.s_addr) & 0xff) >= 2 && (ntohl(a.s_addr) & 0xff) <= 254 && !addr_holder(svcs, a, service, true))
                goto found;
        for (int pass = 0; pass < 2; pass++)
                for (unsigned h = 2; h <= 254; h++) {
                        a = host_in(n.subnet, h);
                        if (addr_holder(svcs, a, service, pass == 1))
                                continue;
                        const char *old;
                        while ((old = addr_holder(svcs, a, service, false)))
                                json_object_del(svcs, old);
                        goto found;
                }
        r = moat_error_input(err, -ENOSPC, "no free address left in the subnet of environment '%s' for service '%s'",
                             env, service);
        goto out;
found:
        rec = json_object();
        if (!rec || json_set_addr(rec, "address", a) < 0 || json_object_set_new(rec, "active", json_true()) < 0 ||
            json_object_set_new(svcs, service, rec) < 0) {
                r = moat_error_set(err, ENOMEM, "IPAM");
                goto out;
        }
        if ((r = store_save(&s, err)) < 0)
                goto out;
        *addr = a;
        if (net)
                *net = n;
out:
        store_close(&s);
        return r;
}

int moat_ipam_release(const struct moat_ipam_opts *o, const char *env, const char *service,
                      struct moat_error **err)
{
        struct store s;
        int r = store_open(o, &s, err);
        if (r < 0)
                goto out;
        json_t *e = json_object_get(s.envs, env);
        if (!e)
                goto out;
        json_t *svcs = json_object_get(e, "services");
        const char *k;
        json_t *v;
        json_object_foreach(svcs, k, v)
                if (!service || STREQ(k, service))
                        json_object_set_new(v, "active", json_false());
        if (!service)
                json_object_set_new(e, "active", json_false());
        r = store_save(&s, err);
out:
        store_close(&s);
        return r;
}

int moat_ipam_forget(const struct moat_ipam_opts *o, const char *env, struct moat_error **err)
{
        struct store s;
        int r = store_open(o, &s, err);
        if (r >= 0 && json_object_get(s.envs, env)) {
                json_object_del(s.envs, env);
                r = store_save(&s, err);
        }
        store_close(&s);
        return r;
}
