/* SPDX-License-Identifier: Apache-2.0 */
/* moat up: an environment's services as containers on one bridge behind its nft policy.
 * Order: the record, IPAM addresses for every service, the bridge, the policy (before any
 * service runs: nothing is ever unprotected), /etc/hosts, each service's bundle; then the
 * supervisor (env/supervisor.h) starts the services in dependency order. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "env/supervisor.h"
#include "env/svcopts.h"
#include "env/volumes.h"
#include "env/up.h"
#include "image/bundle.h"
#include "image/image.h"
#include "net/attach.h"
#include "net/ipam.h"
#include "net/link.h"
#include "net/policy.h"
#include "runtime/container.h"
#include "vm/config.h"

#define DEFAULT_IPAM_DIR "/var/lib/moat/ipam"

struct up {
        const struct moat_plan *p;
        const struct moat_env_opts *o;
        struct moat_ipam_opts io;
        struct moat_ipam_net net;
        struct in_addr *addrs;       /* per service index */
        struct moat_image **images;  /* per service index */
        struct moat_store *store;
        char *dir, *runtime_root;
        json_t *state;
        struct moat_runtime rt;
};

static const char *ipam_dir(const struct moat_env_opts *o)
{
        return o->ipam_dir ? o->ipam_dir : DEFAULT_IPAM_DIR;
}

static const char *addr_str(struct in_addr a, char buf[static INET_ADDRSTRLEN])
{
        return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static json_t *ports_json(const struct moat_env_service *s)
{
        json_t *a = json_array();
        for (size_t i = 0; i < s->n_ports; i++) {
                const struct moat_env_port *pt = &s->ports[i];
                char b[128];
                if (pt->host_port_end != pt->host_port)
                        snprintf(b, sizeof b, "%s%s%u-%u->%u-%u/%s", pt->host_ip ? pt->host_ip : "",
                                 pt->host_ip ? ":" : "", pt->host_port, pt->host_port_end, pt->container_port,
                                 pt->container_port_end, pt->protocol);
                else
                        snprintf(b, sizeof b, "%s%s%u->%u/%s", pt->host_ip ? pt->host_ip : "", pt->host_ip ? ":" : "",
                                 pt->host_port, pt->container_port, pt->protocol);
                json_array_append_new(a, json_string(b));
        }
        return a;
}

static int save(struct up *u, struct moat_error **err)
{
        return moat_env_state_save(u->dir, u->state, err);
}

/* ---------------------------------------------------------------- checks before anything is made */

static int check_services(struct up *u, struct moat_error **err)
{
        const struct moat_envfile *f = u->p->file;
        int r = moat_store_open(u->o->store, &u->store, err);
        if (r < 0)
                return moat_error_prefix(err, r, "cannot open the image store");
        for (size_t i = 0; i < f->n_services; i++) {
                const struct moat_env_service *s = &f->services[i];
                if (!s->image)
                        return moat_error_input(err, -EINVAL, "service '%s' has no 'image' (build: is not supported)",
                                                s->name);
                struct moat_error *lerr = NULL;
                r = moat_store_lookup(u->store, s->image, &u->images[i], &lerr);
                if (r == -ENOENT) {
                        moat_error_free(lerr);
                        return moat_error_input(err, r, "service '%s': image '%s' is not in the store '%s' (moat "
                                                "image pull/import it first)", s->name, s->image, u->o->store);
                }
                if (r < 0) {
                        *err = lerr;
                        return moat_error_prefix(err, r, "service '%s': image '%s'", s->name, s->image);
                }
                for (size_t k = 0; k < s->n_depends_on; k++) {
                        const struct moat_env_dep *d = &s->depends_on[k];
                        const struct moat_env_service *t = moat_envfile_service(f, d->service);
                        const struct moat_env_healthcheck *h = t ? &t->healthcheck : NULL;
                        if (d->condition == MOAT_DEP_HEALTHY && (!h || !h->present || h->disable || !h->test))
                                return moat_error_input(err, -EINVAL, "service '%s': depends_on '%s' with condition "
                                                        "service_healthy, but '%s' has no healthcheck", s->name,
                                                        d->service, d->service);
                }
        }
        return 0;
}

/* ---------------------------------------------------------------- the policy */

static int push_egress(const struct moat_env_service *s, const char *host, uint16_t port,
                       struct moat_policy_egress **eg, size_t *n, size_t *cap, struct moat_error **err)
{
        if (*n == *cap) {
                struct moat_policy_egress *ne = reallocarray(*eg, *cap * 2, sizeof(**eg));
                if (!ne)
                        return -ENOMEM;
                *eg = ne;
                *cap *= 2;
        }
        _cleanup_free_ char *spec = NULL;
        if ((port ? asprintf(&spec, "%s:%u", host, port) : asprintf(&spec, "%s", host)) < 0)
                return -ENOMEM;
        int r = moat_policy_parse_egress(spec, &(*eg)[*n], err);
        if (r < 0)
                return moat_error_prefix(err, r, "service '%s': egress", s->name);
        (*eg)[(*n)++].service = s->name;
        return 0;
}

/* An egress entry: a CIDR as it is, a host name as the IPv4 addresses it resolves to now
 * (the policy is made once, at up: a name that moves later is not followed). */
static int add_egress(const struct moat_env_service *s, const struct moat_env_egress *x,
                      struct moat_policy_egress **eg, size_t *n, size_t *cap, struct moat_error **err)
{
        if (x->is_cidr && strchr(x->host, ':')) {
                moat_warn("service '%s': egress '%s': IPv6 is dropped in environments, left out", s->name, x->host);
                return 0;
        }
        if (x->is_cidr)
                return push_egress(s, x->host, x->port, eg, n, cap, err);
        _cleanup_strv_ char **addrs = NULL;
        int r = moat_env_egress_resolve(s, x, &addrs, err);
        if (r < 0)
                return r;
        for (char **a = addrs; a && *a; a++) {
                r = push_egress(s, *a, x->port, eg, n, cap, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int apply_policy(struct up *u, struct moat_error **err)
{
        const struct moat_plan *p = u->p;
        const struct moat_envfile *f = p->file;
        size_t n = f->n_services, n_pub = 0, n_eg = 0, n_ports = 0;
        for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < f->services[i].n_ports; k++) {
                        const struct moat_env_port *pt = &f->services[i].ports[k];
                        n_pub += (size_t)(pt->host_port_end - pt->host_port) + 1;
                }
                n_eg += f->services[i].n_egress;
        }
        for (size_t e = 0; e < p->n_edges; e++)
                n_ports += 2 * p->edges[e].n_ports;
        _cleanup_free_ struct moat_policy_service *svcs = calloc(n ? n : 1, sizeof(*svcs));
        _cleanup_free_ struct moat_policy_pair *pairs = calloc(p->n_edges ? p->n_edges : 1, sizeof(*pairs));
        _cleanup_free_ struct moat_policy_port *ports = calloc(n_ports ? n_ports : 1, sizeof(*ports));
        _cleanup_free_ struct moat_policy_publish *pub = calloc(n_pub ? n_pub : 1, sizeof(*pub));
        size_t cap_eg = n_eg ? n_eg : 1;
        _cleanup_free_ struct moat_policy_egress *eg = calloc(cap_eg, sizeof(*eg));
        if (!svcs || !pairs || !ports || !pub || !eg)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                svcs[i] = (struct moat_policy_service){ .name = f->services[i].name, .addr = u->addrs[i] };
        size_t np = 0;
        for (size_t e = 0; e < p->n_edges; e++) {
                const struct moat_plan_edge *ed = &p->edges[e];
                pairs[e] = (struct moat_policy_pair){ .src = f->services[ed->from].name,
                                                      .dst = f->services[ed->to].name,
                                                      .ports = ports + np,
                                                      .n_ports = 2 * ed->n_ports };
                for (size_t k = 0; k < ed->n_ports; k++) {
                        ports[np++] = (struct moat_policy_port){ .proto = IPPROTO_TCP, .port = ed->ports[k] };
                        ports[np++] = (struct moat_policy_port){ .proto = IPPROTO_UDP, .port = ed->ports[k] };
                }
        }
        size_t npub = 0, neg = 0;
        for (size_t i = 0; i < n; i++) {
                const struct moat_env_service *s = &f->services[i];
                for (size_t k = 0; k < s->n_ports; k++) {
                        const struct moat_env_port *pt = &s->ports[k];
                        if (!pt->host_port) {
                                moat_warn("service '%s': port %u without a host port: ephemeral host ports are "
                                          "not supported yet, not published", s->name, pt->container_port);
                                continue;
                        }
                        struct in_addr ha = { .s_addr = htonl(INADDR_ANY) };
                        if (pt->host_ip && inet_pton(AF_INET, pt->host_ip, &ha) != 1) {
                                moat_warn("service '%s': host address '%s' is not IPv4: port %u not published",
                                          s->name, pt->host_ip, pt->host_port);
                                continue;
                        }
                        for (unsigned hp = pt->host_port; hp <= pt->host_port_end; hp++)
                                pub[npub++] = (struct moat_policy_publish){
                                        .host_addr = ha,
                                        .host_port = (uint16_t)hp,
                                        .service = s->name,
                                        .port = (uint16_t)(pt->container_port + (hp - pt->host_port)),
                                        .proto = strcmp(pt->protocol, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP,
                                };
                }
                for (size_t k = 0; k < s->n_egress; k++) {
                        int r = add_egress(s, &s->egress[k], &eg, &neg, &cap_eg, err);
                        if (r < 0)
                                return r;
                }
        }
        char bridge[IFNAMSIZ];
        moat_net_bridge_name(p->project, bridge);
        struct moat_policy pol = {
                .env = p->project,
                .bridge = bridge,
                .subnet = u->net.subnet,
                .subnet_len = (uint8_t)u->net.prefixlen,
                .services = svcs,
                .n_services = n,
                .pairs = pairs,
                .n_pairs = p->n_edges,
                .published = pub,
                .n_published = npub,
                .egress = eg,
                .n_egress = neg,
                .nflog_group = (uint16_t)moat_env_nflog_group(p->project),
                .ipv6 = MOAT_POLICY_IPV6_LINKS_DISABLED,
        };
        return moat_policy_apply(&pol, err);
}

/* ---------------------------------------------------------------- /etc/hosts */

static int write_hosts(struct up *u, struct moat_error **err)
{
        const struct moat_envfile *f = u->p->file;
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        if (asprintf(&path, "%s/hosts", u->dir) < 0)
                return -ENOMEM;
        _cleanup_fclose_ FILE *m = open_memstream(&text, &len);
        if (!m)
                return -ENOMEM;
        fprintf(m, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (size_t i = 0; i < f->n_services; i++) {
                const struct moat_env_service *s = &f->services[i];
                char a[INET_ADDRSTRLEN];
                fprintf(m, "%s\t%s", addr_str(u->addrs[i], a), s->name);
                for (size_t k = 0; k < s->n_networks; k++)
                        for (char **al = s->networks[k].aliases; al && *al; al++)
                                fprintf(m, " %s", *al);
                fputc('\n', m);
        }
        if (fclose(TAKE_PTR(m)) != 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 || write_all(fd, text, len) != (ssize_t)len)
                return moat_error_set(err, errno ? errno : EIO, "cannot write '%s'", path);
        return 0;
}

/* ---------------------------------------------------------------- one service */

static char *num_i64(int64_t v)
{
        char *s = NULL;
        return asprintf(&s, "%lld", (long long)v) < 0 ? NULL : s;
}

static char *num_dbl(double v)
{
        char *s = NULL;
        return asprintf(&s, "%g", v) < 0 ? NULL : s;
}

static json_t *mount_json(const char *dst, const char *type, const char *src, const char *const *opts)
{
        json_t *m = json_pack("{s:s, s:s, s:s}", "destination", dst, "type", type, "source", src);
        json_t *o = json_array();
        for (; *opts; opts++)
                json_array_append_new(o, json_string(*opts));
        json_object_set_new(m, "options", o);
        return m;
}

/* A service with isolation: vm: the annotations that make the runtime boot it in a VM
 * (vm/vm.h) with a TAP on the environment's bridge in place of a veth (vm/config.h). */
static int vm_config(struct up *u, const struct moat_env_service *s, json_t *doc, struct moat_error **err)
{
        size_t i = (size_t)(s - u->p->file->services);
        char a[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
        json_t *ann = json_object_get(doc, "annotations");
        if (!json_is_object(ann)) {
                ann = json_object();
                if (!ann || json_object_set_new(doc, "annotations", ann) < 0)
                        return -ENOMEM;
        }
        if (json_object_set_new(ann, "moat.isolation", json_string("vm")) < 0 ||
            json_object_set_new(ann, MOAT_VM_ANN_NET_ENV, json_string(u->p->project)) < 0 ||
            json_object_set_new(ann, MOAT_VM_ANN_NET_ADDR,
                                json_sprintf("%s/%u", addr_str(u->addrs[i], a), u->net.prefixlen)) < 0 ||
            json_object_set_new(ann, MOAT_VM_ANN_NET_GW, json_string(addr_str(u->net.gateway, gw))) < 0)
                return moat_error_set(err, ENOMEM, "service '%s'", s->name);
        return 0;
}

/* moat-init as PID 1, /etc/hosts, tmpfs mounts, read_only, entrypoint overrides. */
static int patch_config(struct up *u, const struct moat_env_service *s, const char *bundle, char **full_cmd,
                        struct moat_error **err)
{
        _cleanup_free_ char *path = NULL, *hosts = NULL;
        if (asprintf(&path, "%s/config.json", bundle) < 0 || asprintf(&hosts, "%s/hosts", u->dir) < 0)
                return -ENOMEM;
        json_error_t je;
        json_t *doc = json_load_file(path, 0, &je);
        if (!doc)
                return moat_error_input(err, -EBADMSG, "cannot read '%s': %s", path, je.text);
        int r = -ENOMEM;
        json_t *proc = json_object_get(doc, "process");
        json_t *old = json_object_get(proc, "args");
        if (s->isolation == MOAT_ISOLATION_VM) {
                r = vm_config(u, s, doc, err);
                if (r < 0)
                        goto out;
                r = -ENOMEM;
        }
        json_t *args = json_array();
        char grace[32];
        snprintf(grace, sizeof grace, "%d", MOAT_ENV_STOP_GRACE_MS);
        size_t n_init = 0;
        if (s->isolation != MOAT_ISOLATION_VM) { /* a VM's PID 1 is the guest's init already */
                json_array_append_new(args, json_string(MOAT_ENV_INIT_PATH));
                json_array_append_new(args, json_string("--grace"));
                json_array_append_new(args, json_string(grace));
                json_array_append_new(args, json_string("--"));
                n_init = 4;
        }
        if (full_cmd) {
                for (char **a = full_cmd; *a; a++)
                        json_array_append_new(args, json_string(*a));
        } else {
                json_array_extend(args, old);
        }
        if (json_array_size(args) == n_init) {
                json_decref(args);
                r = moat_error_input(err, -EINVAL, "service '%s': no command (neither the image '%s' nor the file "
                                     "gives one)", s->name, s->image);
                goto out;
        }
        json_object_set_new(proc, "args", args);
        json_t *mounts = json_object_get(doc, "mounts");
        if (!json_is_array(mounts)) {
                mounts = json_array();
                json_object_set_new(doc, "mounts", mounts);
        }
        static const char *const ro_bind[] = { "bind", "ro", "nosuid", "nodev", NULL };
        if (s->isolation != MOAT_ISOLATION_VM)
                json_array_append_new(mounts, mount_json(MOAT_ENV_INIT_PATH, "bind", u->o->init_path, ro_bind));
        json_array_append_new(mounts, mount_json("/etc/hosts", "bind", hosts, ro_bind));
        for (size_t k = 0; k < s->n_mounts; k++) {
                const struct moat_env_mount *mt = &s->mounts[k];
                if (mt->type != MOAT_MOUNT_TMPFS)
                        continue;
                char size[48] = "";
                if (mt->tmpfs_size)
                        snprintf(size, sizeof size, "size=%llu", (unsigned long long)mt->tmpfs_size);
                const char *o[] = { "nosuid", "nodev", mt->read_only ? "ro" : "rw", size[0] ? size : NULL, NULL };
                json_array_append_new(mounts, mount_json(mt->target, "tmpfs", "tmpfs", o));
        }
        _cleanup_free_ char *rootfs = NULL;
        if (asprintf(&rootfs, "%s/rootfs", bundle) < 0)
                goto out;
        r = moat_env_volumes_mounts(u->p->file, s, u->p->project, u->o->volumes ? u->o->volumes : MOAT_VOLUMES_DIR,
                                    u->dir, rootfs, mounts, err);
        if (r < 0)
                goto out;
        r = moat_env_caps_apply(s, proc, err);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        if (s->read_only)
                json_object_set_new(json_object_get(doc, "root"), "readonly", json_true());
        if (json_dump_file(doc, path, JSON_INDENT(2)) < 0) {
                r = moat_error_set(err, EIO, "cannot write '%s'", path);
                goto out;
        }
        r = 0;
out:
        json_decref(doc);
        return r;
}

static int make_bundle(struct up *u, size_t i, const char *bundle, struct moat_error **err)
{
        const struct moat_env_service *s = &u->p->file->services[i];
        _cleanup_strv_ char **vols = NULL, **full = NULL;
        for (size_t k = 0; k < s->n_mounts; k++) {
                const struct moat_env_mount *mt = &s->mounts[k];
                if (mt->type != MOAT_MOUNT_BIND)
                        continue;
                _cleanup_free_ char *v = NULL;
                if (asprintf(&v, "%s:%s:%s", mt->source, mt->target, mt->read_only ? "ro" : "rw") < 0 ||
                    strv_push(&vols, v) < 0)
                        return -ENOMEM;
        }
        if (s->entrypoint) {
                /* Compose: an entrypoint drops the image's cmd too */
                full = strv_dup(s->entrypoint);
                if (!full)
                        return -ENOMEM;
                for (char **c = s->command; c && *c; c++)
                        if (strv_push(&full, *c) < 0)
                                return -ENOMEM;
        }
        _cleanup_free_ char *mem = NULL, *cpus = NULL, *pids = NULL;
        if ((s->memory && !(mem = num_i64(s->memory))) || (s->cpus && !(cpus = num_dbl(s->cpus))) ||
            (s->pids && !(pids = num_i64(s->pids))))
                return -ENOMEM;
        struct moat_run_opts ro = {
                .cmd = full ? full : s->command,
                .env = s->environment,
                .volumes = vols,
                .workdir = s->working_dir,
                .user = s->user,
                .memory = mem,
                .cpus = cpus,
                .pids_limit = pids,
                .network = "none",
                .hostname = s->name,
                .terminal = 0,
        };
        int r = moat_bundle_from_image(u->store, u->images[i], &ro, bundle, err);
        if (r < 0)
                return moat_error_prefix(err, r, "service '%s'", s->name);
        return patch_config(u, s, bundle, full, err);
}

/* What the supervisor needs of a service beyond its bundle: its log, restart policy,
 * health check and dependencies (it starts the services: env/sup_run.c). */
static int record_service(struct up *u, size_t i, json_t *e)
{
        const struct moat_env_service *s = &u->p->file->services[i];
        json_t *deps = json_array(), *hc = NULL;
        if (!deps)
                return -ENOMEM;
        json_object_set_new(e, "depends_on", deps);
        json_object_set_new(e, "log", json_sprintf("%s/logs/%s.log", u->dir, s->name));
        json_object_set_new(e, "restart", json_string(moat_env_restart_name(s->restart)));
        if (s->isolation == MOAT_ISOLATION_VM)
                json_object_set_new(e, "isolation", json_string("vm"));
        json_object_set_new(e, "restart_max", json_integer(s->restart_max));
        if (s->log_max)
                json_object_set_new(e, "log_max", json_integer(s->log_max));
        if (s->log_files)
                json_object_set_new(e, "log_files", json_integer(s->log_files));
        for (size_t k = 0; k < s->n_depends_on; k++) {
                const struct moat_env_dep *d = &s->depends_on[k];
                json_array_append_new(deps, json_pack("{s:s, s:s, s:b}", "service", d->service, "condition",
                                                      moat_env_condition_name(d->condition), "required", d->required));
        }
        const struct moat_env_healthcheck *h = &s->healthcheck;
        if (h->present && !h->disable && h->test && h->test[0]) {
                json_t *test = json_array();
                for (char **t = h->test; *t; t++)
                        json_array_append_new(test, json_string(*t));
                hc = json_pack("{s:o, s:I, s:I, s:I, s:I, s:i}", "test", test, "interval_ns", (json_int_t)h->interval_ns,
                               "timeout_ns", (json_int_t)h->timeout_ns, "start_period_ns",
                               (json_int_t)h->start_period_ns, "start_interval_ns", (json_int_t)h->start_interval_ns,
                               "retries", h->retries);
                if (!hc)
                        return -ENOMEM;
                json_object_set_new(e, "healthcheck", hc);
        }
        return 0;
}

static int prepare_service(struct up *u, size_t i, struct moat_error **err)
{
        const struct moat_env_service *s = &u->p->file->services[i];
        json_t *e = moat_env_state_service(u->state, s->name);
        const char *bundle = json_string_value(json_object_get(e, "bundle"));
        json_object_set_new(e, "state", json_string("preparing"));
        int r = save(u, err);
        if (r < 0)
                return r;
        r = make_bundle(u, i, bundle, err);
        if (r < 0)
                return r;
        json_object_set_new(e, "state", json_string("planned"));
        return 0;
}

/* ---------------------------------------------------------------- up */

static int make_dirs(struct up *u, struct moat_error **err)
{
        _cleanup_free_ char *envroot = NULL, *sub = NULL;
        if (asprintf(&envroot, "%s/env", u->o->root) < 0)
                return -ENOMEM;
        int r = mkdir_p(envroot, 0700);
        if (r < 0)
                return moat_error_set(err, -r, "cannot make '%s'", envroot);
        if (mkdir(u->dir, 0700) < 0) {
                if (errno != EEXIST)
                        return moat_error_set(err, errno, "cannot make '%s'", u->dir);
                json_t *old = NULL;
                r = moat_env_state_load(u->dir, &old, err);
                json_decref(old);
                if (r != -ENOENT)
                        return moat_error_input(err, -EEXIST, "environment '%s' is up (or was not taken down: "
                                                "its record is in '%s'); run moat down -p %s first",
                                                u->p->project, u->dir, u->p->project);
        }
        static const char *const subs[] = { "runtime", "bundles", "logs" };
        for (size_t k = 0; k < ARRAY_SIZE(subs); k++) {
                free(sub);
                if (asprintf(&sub, "%s/%s", u->dir, subs[k]) < 0)
                        return -ENOMEM;
                if (mkdir(sub, 0700) < 0 && errno != EEXIST)
                        return moat_error_set(err, errno, "cannot make '%s'", sub);
        }
        return 0;
}

static int do_up(struct up *u, struct moat_error **err)
{
        const struct moat_plan *p = u->p;
        const struct moat_envfile *f = p->file;
        if (!moat_policy_env_name_ok(p->project))
                return moat_error_input(err, -EINVAL, "project name '%s' is not usable (letters, digits, '_', '-'; "
                                        "at most %d characters)", p->project, MOAT_POLICY_ENV_MAX);
        if (!u->o->init_path || access(u->o->init_path, X_OK) < 0)
                return moat_error_input(err, -ENOENT, "moat-init not found at '%s' (it is installed next to moat)",
                                        u->o->init_path ? u->o->init_path : "");
        int r = check_services(u, err);
        if (r < 0)
                return r;
        r = make_dirs(u, err);
        if (r < 0)
                return r;
        char bridge[IFNAMSIZ];
        moat_net_bridge_name(p->project, bridge);
        u->state = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[]}", "project", p->project, "ipam_dir",
                             u->io.state_dir, "runtime_root", u->runtime_root, "bridge", bridge, "nft_table",
                             "moat-", "status", "starting", "services");
        if (!u->state)
                return -ENOMEM;
        json_object_set_new(u->state, "nft_table", json_sprintf("%s%s", MOAT_POLICY_TABLE_PREFIX, p->project));
        json_t *svcs = json_object_get(u->state, "services");
        for (size_t k = 0; k < f->n_services; k++) {
                const struct moat_env_service *s = &f->services[p->order[k]];
                json_t *e = json_pack("{s:s, s:s++, s:s++, s:s, s:o}", "name", s->name, "id", p->project, "-",
                                      s->name, "bundle", u->dir, "/bundles/", s->name, "state", "planned", "ports",
                                      ports_json(s));
                if (!e)
                        return -ENOMEM;
                json_object_set_new(e, "on_violation", json_string(moat_env_violation_name(s->on_violation)));
                json_array_append_new(svcs, e);
                if (record_service(u, p->order[k], e) < 0)
                        return -ENOMEM;
        }
        r = save(u, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < f->n_services; i++) {
                r = moat_ipam_alloc(&u->io, p->project, f->services[i].name, &u->addrs[i], &u->net, err);
                if (r < 0)
                        return moat_error_prefix(err, r, "service '%s': no address", f->services[i].name);
                char a[INET_ADDRSTRLEN];
                json_object_set_new(moat_env_state_service(u->state, f->services[i].name), "address",
                                    json_string(addr_str(u->addrs[i], a)));
        }
        char sn[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
        json_object_set_new(u->state, "subnet", json_sprintf("%s/%u", addr_str(u->net.subnet, sn), u->net.prefixlen));
        json_object_set_new(u->state, "gateway", json_string(addr_str(u->net.gateway, gw)));
        r = save(u, err);
        if (r < 0)
                return r;
        r = moat_net_bridge_ensure(NULL, -1, p->project, &u->net, 0, err);
        if (r < 0)
                return r;
        r = apply_policy(u, err);
        if (r < 0)
                return moat_error_prefix(err, r, "cannot apply the environment's policy");
        r = write_hosts(u, err);
        if (r < 0)
                return r;
        for (size_t k = 0; k < f->n_services; k++) {
                r = prepare_service(u, p->order[k], err);
                if (r < 0)
                        return r;
        }
        json_object_set_new(u->state, "status", json_string("up"));
        return save(u, err);
}

int moat_env_up(const struct moat_plan *p, const struct moat_env_opts *o, struct moat_error **err)
{
        size_t n = p->file->n_services;
        struct up u = {
                .p = p,
                .o = o,
                .io = { .state_dir = ipam_dir(o) },
                .addrs = calloc(n ? n : 1, sizeof(struct in_addr)),
                .images = calloc(n ? n : 1, sizeof(struct moat_image *)),
                .dir = moat_env_dir(o, p->project),
        };
        int r = -ENOMEM;
        if (u.addrs && u.images && u.dir && asprintf(&u.runtime_root, "%s/runtime", u.dir) >= 0) {
                u.rt.root = u.runtime_root;
                r = do_up(&u, err);
                if (r >= 0) {
                        struct moat_env_sup_opts so = { .wait_healthy = o->wait_healthy, .progress = o->progress,
                                                        .userdata = o->userdata };
                        r = moat_env_supervisor_start(u.dir, &so, err);
                }
        }
        for (size_t i = 0; u.images && i < n; i++)
                moat_image_free(u.images[i]);
        free(u.images);
        free(u.addrs);
        if (u.store)
                moat_store_close(u.store);
        json_decref(u.state);
        free(u.dir);
        free(u.runtime_root);
        return r;
}

int moat_env_nflog_group(const char *project)
{
        uint32_t h = 2166136261u; /* FNV-1a */
        for (const unsigned char *c = (const unsigned char *)project; c && *c; c++)
                h = (h ^ *c) * 16777619u;
        return 2000 + (int)(h % 63000u);
}
