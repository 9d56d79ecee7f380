/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup v2 (unified hierarchy).  Not exercised on the hybrid test host
 * except for the helpers v1.c borrows (freeze, unified keys). */
#include "cgroup/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

static void sleep_us(long us)
{
        struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int cg_unified_apply(struct moat_cgroup *cg, const struct moat_resources *res, struct moat_error **err)
{
        struct cg_dir *d;
        if (res->n_unified == 0)
                return 0;
        d = cg_dir_v2(cg);
        for (size_t i = 0; i < res->n_unified; i++) {
                const char *k = res->unified[i].key, *v = res->unified[i].value;
                if (!k || !*k || strchr(k, '/') || strstr(k, "..") || STREQ(k, "."))
                        return moat_error_input(err, EINVAL, "'unified' key '%s' is not a cgroup file name", k ? k : "");
                if (!d)
                        return moat_error_input(err, EOPNOTSUPP,
                                                "'unified' key '%s': no cgroup v2 hierarchy is mounted", k);
                if (cg->layout->layout != MOAT_CG_V2) {
                        /* Hybrid: only controllers the unified hierarchy really has. */
                        _cleanup_free_ char *ctrls = NULL, *ctrl = strndup(k, strcspn(k, "."));
                        bool ok = ctrl && STREQ(ctrl, "cgroup");
                        if (!ok && ctrl && cg_read_str(d->fd, "cgroup.controllers", &ctrls) >= 0) {
                                char *save = NULL;
                                for (char *c = strtok_r(ctrls, " ", &save); c && !ok; c = strtok_r(NULL, " ", &save))
                                        ok = STREQ(c, ctrl);
                        }
                        if (!ok)
                                return moat_error_input(err, EOPNOTSUPP,
                                                        "'unified' key '%s': controller '%s' is on cgroup v1 on this host, "
                                                        "not in the unified hierarchy",
                                                        k, ctrl ? ctrl : "");
                }
                char field[160];
                snprintf(field, sizeof(field), "unified.%s", k);
                int r = cg_write(d->fd, k, v ? v : "", field, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int apply_memory(int fd, const struct moat_resources *res, bool update, struct moat_error **err)
{
        const typeof(res->memory) *m = &res->memory;
        int r;
        if (update && m->has_check_before_update && m->check_before_update && m->has_limit && m->limit > 0) {
                uint64_t usage = 0;
                if (cg_read_u64(fd, "memory.current", &usage) >= 0 && usage > (uint64_t)m->limit)
                        return moat_error_input(err, EBUSY,
                                                "'memory.limit' %" PRId64 " is below the current usage %" PRIu64,
                                                m->limit, usage);
        }
        if (m->has_swap) {
                int64_t sw;
                bool skip;
                if ((r = cg_swap_v2(m->limit, m->has_limit, m->swap, &sw, &skip, err)) < 0)
                        return r;
                if (!skip) {
                        if (!cg_has_file(fd, "memory.swap.max"))
                                moat_warn("'memory.swap' ignored: this kernel has no memory.swap.max");
                        else if (sw < 0 ? (r = cg_write(fd, "memory.swap.max", "max", "memory.swap", err)) < 0
                                        : (r = cg_writef(fd, "memory.swap.max", "memory.swap", err, "%" PRId64, sw)) < 0)
                                return r;
                }
        }
        if (m->has_limit && m->limit != 0) {
                r = m->limit < 0 ? cg_write(fd, "memory.max", "max", "memory.limit", err)
                                 : cg_writef(fd, "memory.max", "memory.limit", err, "%" PRId64, m->limit);
                if (r < 0)
                        return r;
        }
        if (m->has_reservation) {
                r = m->reservation < 0 ? cg_write(fd, "memory.low", "max", "memory.reservation", err)
                                       : cg_writef(fd, "memory.low", "memory.reservation", err, "%" PRId64,
                                                   m->reservation);
                if (r < 0)
                        return r;
        }
        if (m->has_kernel || m->has_kernel_tcp)
                moat_warn("'memory.kernel' and 'memory.kernelTCP' are ignored on cgroup v2");
        if (m->has_swappiness)
                moat_warn("'memory.swappiness' is ignored on cgroup v2");
        if (m->has_disable_oom_killer && m->disable_oom_killer)
                moat_warn("'memory.disableOOMKiller' is ignored on cgroup v2");
        return 0;
}

static int apply_cpu(int fd, const struct moat_resources *res, struct moat_error **err)
{
        const typeof(res->cpu) *c = &res->cpu;
        int r;
        if (c->has_shares && c->shares) {
                if ((r = cg_writef(fd, "cpu.weight", "cpu.shares", err, "%" PRIu64, cg_shares_to_weight(c->shares))) < 0)
                        return r;
        }
        if ((c->has_quota && c->quota) || (c->has_period && c->period)) {
                char quota[32] = "max", buf[80];
                if (c->has_quota && c->quota > 0) {
                        snprintf(quota, sizeof(quota), "%" PRId64, c->quota);
                } else if (!c->has_quota) {
                        _cleanup_free_ char *cur = NULL;
                        if (cg_read_str(fd, "cpu.max", &cur) >= 0)
                                snprintf(quota, sizeof(quota), "%.*s", (int)strcspn(cur, " "), cur);
                }
                if (c->has_period && c->period)
                        snprintf(buf, sizeof(buf), "%s %" PRIu64, quota, c->period);
                else
                        snprintf(buf, sizeof(buf), "%s", quota);
                if ((r = cg_write(fd, "cpu.max", buf, "cpu.quota", err)) < 0)
                        return r;
        }
        if (c->has_burst && (r = cg_writef(fd, "cpu.max.burst", "cpu.burst", err, "%" PRIu64, c->burst)) < 0)
                return r;
        if ((c->has_realtime_runtime && c->realtime_runtime) || (c->has_realtime_period && c->realtime_period))
                return moat_error_input(err, EOPNOTSUPP,
                                        "'cpu.realtimeRuntime' / 'cpu.realtimePeriod' are not supported on cgroup v2");
        if (c->has_idle && (r = cg_writef(fd, "cpu.idle", "cpu.idle", err, "%" PRId64, c->idle)) < 0)
                return r;
        if (c->cpus && (r = cg_write(fd, "cpuset.cpus", c->cpus, "cpu.cpus", err)) < 0)
                return r;
        if (c->mems && (r = cg_write(fd, "cpuset.mems", c->mems, "cpu.mems", err)) < 0)
                return r;
        return 0;
}

static int apply_io(int fd, const struct moat_resources *res, struct moat_error **err)
{
        const typeof(res->blkio) *b = &res->blkio;
        static const char *const key[4] = { "rbps", "wbps", "riops", "wiops" };
        bool bfq = cg_has_file(fd, "io.bfq.weight");
        int r;
        if (b->has_weight && b->weight) {
                r = bfq ? cg_writef(fd, "io.bfq.weight", "blkio.weight", err, "%u", b->weight)
                        : cg_writef(fd, "io.weight", "blkio.weight", err, "default %" PRIu64,
                                    cg_blkio_to_io_weight(b->weight));
                if (r < 0)
                        return r;
        }
        if (b->has_leaf_weight)
                moat_warn("'blkio.leafWeight' is ignored on cgroup v2");
        for (size_t i = 0; i < b->n_weight_device; i++) {
                const struct moat_blkio_weight_device *w = &b->weight_device[i];
                if (!w->has_weight)
                        continue;
                r = bfq ? cg_writef(fd, "io.bfq.weight", "blkio.weightDevice", err, "%" PRId64 ":%" PRId64 " %u",
                                    w->major, w->minor, w->weight)
                        : cg_writef(fd, "io.weight", "blkio.weightDevice", err, "%" PRId64 ":%" PRId64 " %" PRIu64,
                                    w->major, w->minor, cg_blkio_to_io_weight(w->weight));
                if (r < 0)
                        return r;
        }
        for (int t = 0; t < 4; t++)
                for (size_t i = 0; i < b->n_throttle[t]; i++) {
                        const struct moat_blkio_throttle *x = &b->throttle[t][i];
                        if ((r = cg_writef(fd, "io.max", "blkio.throttle", err, "%" PRId64 ":%" PRId64 " %s=%" PRIu64,
                                           x->major, x->minor, key[t], x->rate)) < 0)
                                return r;
                }
        return 0;
}

static int v2_apply(struct moat_cgroup *cg, const struct moat_resources *res, bool update, struct moat_error **err)
{
        struct cg_dir *d = cg_dir_v2(cg);
        int r;
        if (!d)
                return moat_error_set(err, ENOENT, "cgroup '%s' is gone", cg->path);
        if ((r = apply_memory(d->fd, res, update, err)) < 0 || (r = apply_cpu(d->fd, res, err)) < 0)
                return r;
        if (res->pids.has_limit) {
                r = res->pids.limit > 0 ? cg_writef(d->fd, "pids.max", "pids.limit", err, "%" PRId64, res->pids.limit)
                                        : cg_write(d->fd, "pids.max", "max", "pids.limit", err);
                if (r < 0)
                        return r;
        }
        if ((r = apply_io(d->fd, res, err)) < 0 || (r = cg_hugepages_check(res, err)) < 0)
                return r;
        if ((r = cg_hugepages_write(d->fd, res, "max", err)) < 0)
                return r;
        if (res->n_devices && (r = cg_ebpf_devices_install(d->fd, res->devices, res->n_devices, err)) < 0)
                return r;
        if (res->network.has_class_id || res->network.n_priorities)
                moat_warn("'network' (net_cls/net_prio) is ignored on cgroup v2");
        return cg_unified_apply(cg, res, err);
}

int cg_v2_freeze_dir(int dirfd, bool frozen, struct moat_error **err)
{
        int r = write_string_at(dirfd, "cgroup.freeze", frozen ? "1" : "0");
        if (r < 0)
                return moat_error_set(err, r, "cannot write cgroup.freeze");
        for (int i = 0; i < 1000; i++) {
                bool now;
                if ((r = cg_v2_is_frozen_dir(dirfd, &now)) < 0)
                        return moat_error_set(err, r, "cannot read cgroup.events");
                if (now == frozen)
                        return 0;
                sleep_us(i < 10 ? 100 : 5000);
        }
        if (frozen)
                (void)write_string_at(dirfd, "cgroup.freeze", "0");
        return moat_error_input(err, ETIMEDOUT, "the cgroup did not become %s within 5 s", frozen ? "frozen" : "thawed");
}

int cg_v2_is_frozen_dir(int dirfd, bool *frozen)
{
        uint64_t v = 0;
        int r = cg_read_keyed(dirfd, "cgroup.events", "frozen", &v);
        if (r < 0)
                return r;
        *frozen = v == 1;
        return 0;
}

static int v2_freeze(struct moat_cgroup *cg, bool frozen, struct moat_error **err)
{
        struct cg_dir *d = cg_dir_v2(cg);
        if (!d)
                return moat_error_set(err, ENOENT, "cgroup '%s' is gone", cg->path);
        int r = cg_v2_freeze_dir(d->fd, frozen, err);
        return r < 0 ? moat_error_prefix(err, r, "cgroup '%s'", d->dir) : 0;
}

static int v2_is_frozen(struct moat_cgroup *cg, bool *frozen)
{
        struct cg_dir *d = cg_dir_v2(cg);
        return d ? cg_v2_is_frozen_dir(d->fd, frozen) : -ENOENT;
}

static int v2_oom_kills(struct moat_cgroup *cg, uint64_t *n)
{
        struct cg_dir *d = cg_dir_v2(cg);
        if (!d)
                return -ENOENT;
        int r = cg_read_keyed(d->fd, "memory.events", "oom_kill", n);
        if (r == -ENOENT) {
                *n = 0;
                return 0;
        }
        return r;
}

static int v2_procs_dir(struct moat_cgroup *cg)
{
        struct cg_dir *d = cg_dir_v2(cg);
        return d ? d->fd : -ENOENT;
}

const struct cg_ops cg_v2_ops = {
        .apply = v2_apply,
        .freeze = v2_freeze,
        .is_frozen = v2_is_frozen,
        .stats = cg_v2_stats,
        .oom_kills = v2_oom_kills,
        .procs_dir = v2_procs_dir,
};
