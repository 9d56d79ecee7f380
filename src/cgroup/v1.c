/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup v1 (and hybrid: v1 controllers plus an unnamed cgroup2 hierarchy
 * that only tracks processes). */
#include "cgroup/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

static int need(struct moat_cgroup *cg, const char *ctrl, const char *field, struct cg_dir **out,
                struct moat_error **err)
{
        *out = cg_dir_for(cg, ctrl);
        if (!*out)
                return moat_error_input(err, EOPNOTSUPP, "'%s' is set but the %s cgroup controller is not mounted",
                                        field, ctrl);
        return 0;
}

static int wr_i64(int fd, const char *file, const char *field, int64_t v, struct moat_error **err)
{
        return cg_writef(fd, file, field, err, "%" PRId64, v);
}

/* Optional files (kernel memory): warn when missing or refused. */
static void wr_optional(int fd, const char *file, const char *field, int64_t v)
{
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        if (!cg_has_file(fd, file)) {
                moat_warn("'%s' ignored: this kernel has no %s", field, file);
                return;
        }
        int r = write_string_at(fd, file, buf);
        if (r < 0)
                moat_warn("'%s' ignored: the kernel refused %s for %s: %s", field, buf, file, strerror(-r));
}

static int apply_memory(struct moat_cgroup *cg, const struct moat_resources *res, bool update,
                        struct moat_error **err)
{
        const typeof(res->memory) *m = &res->memory;
        struct cg_dir *d;
        int r;
        if (!m->has_limit && !m->has_reservation && !m->has_swap && !m->has_kernel && !m->has_kernel_tcp &&
            !m->has_swappiness && !m->has_disable_oom_killer && !m->has_use_hierarchy)
                return 0;
        if ((r = need(cg, "memory", "memory", &d, err)) < 0)
                return r;
        int64_t limit = m->has_limit ? m->limit : 0, swap = m->has_swap ? m->swap : 0;
        bool memsw = cg_has_file(d->fd, "memory.memsw.limit_in_bytes");
        if (update && m->has_check_before_update && m->check_before_update && limit > 0) {
                uint64_t usage = 0;
                if (cg_read_u64(d->fd, "memory.usage_in_bytes", &usage) >= 0 && usage > (uint64_t)limit)
                        return moat_error_input(err, EBUSY,
                                                "'memory.limit' %" PRId64 " is below the current usage %" PRIu64,
                                                limit, usage);
        }
        if (limit == -1 && swap == 0 && memsw)
                swap = -1;
        if (limit != 0 && swap != 0 && memsw) {
                /* memsw >= limit at every step: raise memsw first, lower limit first. */
                uint64_t cur = 0;
                (void)cg_read_u64(d->fd, "memory.limit_in_bytes", &cur);
                if (swap == -1 || cur < (uint64_t)swap) {
                        if ((r = wr_i64(d->fd, "memory.memsw.limit_in_bytes", "memory.swap", swap, err)) < 0 ||
                            (r = wr_i64(d->fd, "memory.limit_in_bytes", "memory.limit", limit, err)) < 0)
                                return r;
                } else {
                        if ((r = wr_i64(d->fd, "memory.limit_in_bytes", "memory.limit", limit, err)) < 0 ||
                            (r = wr_i64(d->fd, "memory.memsw.limit_in_bytes", "memory.swap", swap, err)) < 0)
                                return r;
                }
        } else {
                if (limit != 0 && (r = wr_i64(d->fd, "memory.limit_in_bytes", "memory.limit", limit, err)) < 0)
                        return r;
                if (swap != 0) {
                        if (memsw) {
                                if ((r = wr_i64(d->fd, "memory.memsw.limit_in_bytes", "memory.swap", swap, err)) < 0)
                                        return r;
                        } else if (m->has_swap) {
                                moat_warn("'memory.swap' ignored: swap accounting is off (no memory.memsw.limit_in_bytes)");
                        }
                }
        }
        if (m->has_reservation &&
            (r = wr_i64(d->fd, "memory.soft_limit_in_bytes", "memory.reservation", m->reservation, err)) < 0)
                return r;
        if (m->has_kernel)
                wr_optional(d->fd, "memory.kmem.limit_in_bytes", "memory.kernel", m->kernel);
        if (m->has_kernel_tcp)
                wr_optional(d->fd, "memory.kmem.tcp.limit_in_bytes", "memory.kernelTCP", m->kernel_tcp);
        if (m->has_swappiness) {
                if (m->swappiness > 100)
                        return moat_error_input(err, EINVAL, "'memory.swappiness' %" PRIu64 " is not in 0..100",
                                                m->swappiness);
                if ((r = cg_writef(d->fd, "memory.swappiness", "memory.swappiness", err, "%" PRIu64,
                                   m->swappiness)) < 0)
                        return r;
        }
        if (m->has_disable_oom_killer && (m->disable_oom_killer || update) &&
            (r = cg_write(d->fd, "memory.oom_control", m->disable_oom_killer ? "1" : "0",
                          "memory.disableOOMKiller", err)) < 0)
                return r;
        if (m->has_use_hierarchy)
                wr_optional(d->fd, "memory.use_hierarchy", "memory.useHierarchy", m->use_hierarchy);
        return 0;
}

/* Writes a then b; when a is refused with EINVAL (the pair must stay
 * consistent), writes b first and then a, as runc does. */
static int write_pair(int fd, const char *fa, const char *na, bool has_a, int64_t a, const char *fb,
                      const char *nb, bool has_b, int64_t b, struct moat_error **err)
{
        char va[32], vb[32];
        snprintf(va, sizeof(va), "%" PRId64, a);
        snprintf(vb, sizeof(vb), "%" PRId64, b);
        if (has_a) {
                int r = write_string_at(fd, fa, va);
                if (r == -EINVAL && has_b) {
                        if ((r = cg_write(fd, fb, vb, nb, err)) < 0)
                                return r;
                        return cg_write(fd, fa, va, na, err);
                }
                if (r < 0)
                        return moat_error_set(err, r, "cannot set '%s' to '%s' (%s)", na, va, fa);
        }
        return has_b ? cg_write(fd, fb, vb, nb, err) : 0;
}

static int apply_cpu(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        const typeof(res->cpu) *c = &res->cpu;
        struct cg_dir *d;
        int r;
        if (c->has_shares || c->has_quota || c->has_period || c->has_burst || c->has_realtime_runtime ||
            c->has_realtime_period || c->has_idle) {
                if ((r = need(cg, "cpu", "cpu", &d, err)) < 0)
                        return r;
                if (c->has_shares && c->shares && (r = cg_writef(d->fd, "cpu.shares", "cpu.shares", err, "%" PRIu64, c->shares)) < 0)
                        return r;
                if ((r = write_pair(d->fd, "cpu.cfs_period_us", "cpu.period", c->has_period && c->period,
                                    (int64_t)c->period, "cpu.cfs_quota_us", "cpu.quota", c->has_quota && c->quota,
                                    c->quota, err)) < 0)
                        return r;
                if (c->has_burst) {
                        if (!cg_has_file(d->fd, "cpu.cfs_burst_us"))
                                moat_warn("'cpu.burst' ignored: this kernel has no cpu.cfs_burst_us");
                        else if ((r = cg_writef(d->fd, "cpu.cfs_burst_us", "cpu.burst", err, "%" PRIu64, c->burst)) < 0)
                                return r;
                }
                if ((r = write_pair(d->fd, "cpu.rt_period_us", "cpu.realtimePeriod",
                                    c->has_realtime_period && c->realtime_period, (int64_t)c->realtime_period,
                                    "cpu.rt_runtime_us", "cpu.realtimeRuntime",
                                    c->has_realtime_runtime && c->realtime_runtime, c->realtime_runtime, err)) < 0)
                        return r;
                if (c->has_idle) {
                        if (!cg_has_file(d->fd, "cpu.idle"))
                                moat_warn("'cpu.idle' ignored: this kernel has no cpu.idle on cgroup v1");
                        else if ((r = wr_i64(d->fd, "cpu.idle", "cpu.idle", c->idle, err)) < 0)
                                return r;
                }
        }
        if (c->cpus || c->mems) {
                if ((r = need(cg, "cpuset", "cpu.cpus", &d, err)) < 0)
                        return r;
                if (c->cpus && (r = cg_write(d->fd, "cpuset.cpus", c->cpus, "cpu.cpus", err)) < 0)
                        return r;
                if (c->mems && (r = cg_write(d->fd, "cpuset.mems", c->mems, "cpu.mems", err)) < 0)
                        return r;
        }
        return 0;
}

static int apply_pids(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        struct cg_dir *d;
        int r;
        if (!res->pids.has_limit)
                return 0;
        if ((r = need(cg, "pids", "pids.limit", &d, err)) < 0)
                return r;
        if (res->pids.limit > 0)
                return wr_i64(d->fd, "pids.max", "pids.limit", res->pids.limit, err);
        return cg_write(d->fd, "pids.max", "max", "pids.limit", err);
}

static const char *pick(int fd, const char *a, const char *b)
{
        if (cg_has_file(fd, a))
                return a;
        if (b && cg_has_file(fd, b))
                return b;
        return NULL;
}

static int apply_blkio(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        const typeof(res->blkio) *b = &res->blkio;
        static const char *const thr[4][2] = {
                { "blkio.throttle.read_bps_device", "blkio.throttleReadBpsDevice" },
                { "blkio.throttle.write_bps_device", "blkio.throttleWriteBpsDevice" },
                { "blkio.throttle.read_iops_device", "blkio.throttleReadIOPSDevice" },
                { "blkio.throttle.write_iops_device", "blkio.throttleWriteIOPSDevice" },
        };
        struct cg_dir *d;
        const char *f;
        int r;
        bool any = b->has_weight || b->has_leaf_weight || b->n_weight_device;
        for (int t = 0; t < 4; t++)
                any = any || b->n_throttle[t];
        if (!any)
                return 0;
        if ((r = need(cg, "blkio", "blkio", &d, err)) < 0)
                return r;
        if (b->has_weight) {
                if (!(f = pick(d->fd, "blkio.weight", "blkio.bfq.weight")))
                        return moat_error_input(err, EOPNOTSUPP,
                                                "'blkio.weight' %u: this kernel has no blkio.weight (no CFQ/BFQ)",
                                                b->weight);
                if ((r = cg_writef(d->fd, f, "blkio.weight", err, "%u", b->weight)) < 0)
                        return r;
        }
        if (b->has_leaf_weight) {
                if (!cg_has_file(d->fd, "blkio.leaf_weight"))
                        return moat_error_input(err, EOPNOTSUPP, "'blkio.leafWeight' %u: this kernel has no blkio.leaf_weight",
                                                b->leaf_weight);
                if ((r = cg_writef(d->fd, "blkio.leaf_weight", "blkio.leafWeight", err, "%u", b->leaf_weight)) < 0)
                        return r;
        }
        for (size_t i = 0; i < b->n_weight_device; i++) {
                const struct moat_blkio_weight_device *w = &b->weight_device[i];
                if (w->has_weight) {
                        if (!(f = pick(d->fd, "blkio.weight_device", "blkio.bfq.weight_device")))
                                return moat_error_input(err, EOPNOTSUPP,
                                                        "'blkio.weightDevice[%zu]': this kernel has no blkio.weight_device", i);
                        if ((r = cg_writef(d->fd, f, "blkio.weightDevice", err, "%" PRId64 ":%" PRId64 " %u",
                                           w->major, w->minor, w->weight)) < 0)
                                return r;
                }
                if (w->has_leaf_weight &&
                    (r = cg_writef(d->fd, "blkio.leaf_weight_device", "blkio.weightDevice.leafWeight", err,
                                   "%" PRId64 ":%" PRId64 " %u", w->major, w->minor, w->leaf_weight)) < 0)
                        return r;
        }
        for (int t = 0; t < 4; t++)
                for (size_t i = 0; i < b->n_throttle[t]; i++) {
                        const struct moat_blkio_throttle *x = &b->throttle[t][i];
                        if ((r = cg_writef(d->fd, thr[t][0], thr[t][1], err, "%" PRId64 ":%" PRId64 " %" PRIu64,
                                           x->major, x->minor, x->rate)) < 0)
                                return r;
                }
        return 0;
}

static int apply_hugetlb(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        struct cg_dir *d;
        int r;
        if (res->n_hugepages == 0)
                return 0;
        if ((r = cg_hugepages_check(res, err)) < 0)
                return r;
        if ((r = need(cg, "hugetlb", "hugepageLimits", &d, err)) < 0)
                return r;
        if ((r = cg_hugepages_write(d->fd, res, "limit_in_bytes", err)) < 0)
                return r;
        return 0;
}

static void dev_num(char *buf, size_t len, int64_t v)
{
        if (v < 0)
                snprintf(buf, len, "*");
        else
                snprintf(buf, len, "%" PRId64, v);
}

static int apply_devices(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        struct cg_dir *d;
        int r;
        if (res->n_devices == 0)
                return 0;
        if ((r = need(cg, "devices", "devices", &d, err)) < 0)
                return r;
        if ((r = cg_write(d->fd, "devices.deny", "a", "devices", err)) < 0)
                return r;
        for (size_t i = 0; i < res->n_devices; i++) {
                const struct moat_device_rule *x = &res->devices[i];
                char ma[24], mi[24], rule[80];
                dev_num(ma, sizeof(ma), x->major);
                dev_num(mi, sizeof(mi), x->minor);
                snprintf(rule, sizeof(rule), "%c %s:%s %s", x->type ? x->type : 'a', ma, mi,
                         x->access[0] ? x->access : "rwm");
                r = write_string_at(d->fd, x->allow ? "devices.allow" : "devices.deny", rule);
                if (r < 0)
                        return moat_error_set(err, r, "cannot apply 'devices[%zu]' ('%s')", i, rule);
        }
        return 0;
}

static int apply_network(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        struct cg_dir *d;
        int r;
        if (res->network.has_class_id) {
                if (!(d = cg_dir_for(cg, "net_cls")))
                        moat_warn("'network.classID' ignored: the net_cls cgroup controller is not mounted");
                else if ((r = cg_writef(d->fd, "net_cls.classid", "network.classID", err, "%u",
                                        res->network.class_id)) < 0)
                        return r;
        }
        if (res->network.n_priorities) {
                if (!(d = cg_dir_for(cg, "net_prio"))) {
                        moat_warn("'network.priorities' ignored: the net_prio cgroup controller is not mounted");
                        return 0;
                }
                for (size_t i = 0; i < res->network.n_priorities; i++)
                        if ((r = cg_writef(d->fd, "net_prio.ifpriomap", "network.priorities", err, "%s %u",
                                           res->network.priorities[i].name, res->network.priorities[i].priority)) < 0)
                                return r;
        }
        return 0;
}

static int v1_apply(struct moat_cgroup *cg, const struct moat_resources *res, bool update, struct moat_error **err)
{
        int r;
        if ((r = apply_memory(cg, res, update, err)) < 0 || (r = apply_cpu(cg, res, err)) < 0 ||
            (r = apply_pids(cg, res, err)) < 0 || (r = apply_blkio(cg, res, err)) < 0 ||
            (r = apply_hugetlb(cg, res, err)) < 0 || (r = apply_devices(cg, res, err)) < 0 ||
            (r = apply_network(cg, res, err)) < 0 || (r = cg_unified_apply(cg, res, err)) < 0)
                return r;
        return 0;
}

static void sleep_us(long us)
{
        struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int v1_freeze(struct moat_cgroup *cg, bool frozen, struct moat_error **err)
{
        struct cg_dir *d = cg_dir_for(cg, "freezer");
        const char *want = frozen ? "FROZEN" : "THAWED";
        if (!d) {
                struct cg_dir *v2 = cg_dir_v2(cg);
                if (v2 && cg_has_file(v2->fd, "cgroup.freeze"))
                        return cg_v2_freeze_dir(v2->fd, frozen, err);
                return moat_error_input(err, EOPNOTSUPP, "cannot %s cgroup '%s': the freezer controller is not mounted",
                                        frozen ? "freeze" : "thaw", cg->path);
        }
        /* Up to ~5 s: FREEZING can stall on tasks in uninterruptible sleep;
         * rewriting FROZEN retries them, as runc does. */
        for (int i = 0; i < 1000; i++) {
                if (i % 50 == 0) {
                        int r = write_string_at(d->fd, "freezer.state", want);
                        if (r < 0)
                                return moat_error_set(err, r, "cannot write %s to '%s/freezer.state'", want, d->dir);
                }
                _cleanup_free_ char *s = NULL;
                int r = cg_read_str(d->fd, "freezer.state", &s);
                if (r < 0)
                        return moat_error_set(err, r, "cannot read '%s/freezer.state'", d->dir);
                if (STREQ(s, want))
                        return 0;
                sleep_us(i < 10 ? 100 : 5000);
        }
        if (frozen)
                (void)write_string_at(d->fd, "freezer.state", "THAWED");
        return moat_error_input(err, ETIMEDOUT, "cgroup '%s' did not reach %s within 5 s (a task may be stuck in the kernel)",
                                d->dir, want);
}

static int v1_is_frozen(struct moat_cgroup *cg, bool *frozen)
{
        struct cg_dir *d = cg_dir_for(cg, "freezer");
        _cleanup_free_ char *s = NULL;
        if (!d) {
                struct cg_dir *v2 = cg_dir_v2(cg);
                if (v2)
                        return cg_v2_is_frozen_dir(v2->fd, frozen);
                *frozen = false;
                return -EOPNOTSUPP;
        }
        int r = cg_read_str(d->fd, "freezer.state", &s);
        if (r < 0)
                return r;
        *frozen = STREQ(s, "FROZEN");
        return 0;
}

static int v1_oom_kills(struct moat_cgroup *cg, uint64_t *n)
{
        struct cg_dir *d = cg_dir_for(cg, "memory");
        if (!d)
                return -EOPNOTSUPP;
        int r = cg_read_keyed(d->fd, "memory.oom_control", "oom_kill", n);
        if (r == -ENOENT) {
                *n = 0;
                return 0;
        }
        return r;
}

static int v1_procs_dir(struct moat_cgroup *cg)
{
        static const char *const pref[] = { "pids", "freezer", "memory", "cpu", "devices" };
        for (size_t i = 0; i < ARRAY_SIZE(pref); i++) {
                struct cg_dir *d = cg_dir_for(cg, pref[i]);
                if (d)
                        return d->fd;
        }
        for (size_t i = 0; i < cg->n_dirs; i++)
                if (cg->dirs[i].fd >= 0)
                        return cg->dirs[i].fd;
        return -ENOENT;
}

const struct cg_ops cg_v1_ops = {
        .apply = v1_apply,
        .freeze = v1_freeze,
        .is_frozen = v1_is_frozen,
        .stats = cg_v1_stats,
        .oom_kills = v1_oom_kills,
        .procs_dir = v1_procs_dir,
};
