/* SPDX-License-Identifier: Apache-2.0 */
/* "linux.resources": device rules, memory, cpu, pids, blkio, hugepages, network, unified. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "oci/spec-internal.h"

void spec_resources_free(struct moat_resources *r)
{
        free(r->devices);
        free(r->cpu.cpus);
        free(r->cpu.mems);
        free(r->blkio.weight_device);
        for (int i = 0; i < 4; i++)
                free(r->blkio.throttle[i]);
        for (size_t i = 0; i < r->n_hugepages; i++)
                free(r->hugepages[i].page_size);
        free(r->hugepages);
        for (size_t i = 0; i < r->network.n_priorities; i++)
                free(r->network.priorities[i].name);
        free(r->network.priorities);
        for (size_t i = 0; i < r->n_unified; i++) {
                free(r->unified[i].key);
                free(r->unified[i].value);
        }
        free(r->unified);
}

/* Runs fn on every element of array `key` of obj (an n-element array of size sz at *items). */
typedef int (*elem_fn)(struct jctx *c, json_t *v, void *item);
static int parse_array(struct jctx *c, json_t *obj, const char *key, void **items, size_t *n_items, size_t sz,
                       elem_fn fn)
{
        json_t *a = NULL;
        int r = jc_arr(c, obj, key, &a);
        if (r <= 0)
                return r;
        size_t n = json_array_size(a);
        if (n == 0)
                return 0;
        char *mem = calloc(n, sz);
        if (!mem)
                return SPEC_OOM(c);
        *items = mem;
        size_t o = jc_push(c, key);
        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t o2 = jc_pushi(c, i);
                *n_items = i + 1;
                r = jv_obj(c, json_array_get(a, i));
                if (r >= 0)
                        r = fn(c, json_array_get(a, i), mem + i * sz);
                jc_pop(c, o2);
        }
        jc_pop(c, o);
        return r < 0 ? r : 0;
}

static int parse_dev_rule(struct jctx *c, json_t *v, void *item)
{
        struct moat_device_rule *d = item;
        _cleanup_free_ char *type = NULL, *access = NULL;
        int r = jc_bool(c, v, "allow", &d->allow);
        if (r < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "allow", "missing (true or false)");
        d->type = 'a';
        d->major = d->minor = -1;
        if ((r = jc_str(c, v, "type", &type)) < 0)
                return r;
        if (r > 0 && type[0]) {
                if (strlen(type) != 1 || !strchr("acb", type[0]))
                        return jc_errk(c, "type", "unknown device type \"%s\" (expected a, c or b)", type);
                d->type = type[0];
        }
        if ((r = jc_i64(c, v, "major", &d->major)) < 0 || (r = jc_i64(c, v, "minor", &d->minor)) < 0)
                return r;
        if (d->major < -1 || d->major > UINT32_MAX)
                return jc_errk(c, "major", "out of range: %" PRId64, d->major);
        if (d->minor < -1 || d->minor > UINT32_MAX)
                return jc_errk(c, "minor", "out of range: %" PRId64, d->minor);
        if ((r = jc_str(c, v, "access", &access)) < 0)
                return r;
        if (r == 0 || access[0] == '\0') {
                strcpy(d->access, "rwm");
                return 0;
        }
        size_t n = 0;
        for (const char *p = access; *p; p++) {
                if (!strchr("rwm", *p) || memchr(d->access, *p, n))
                        return jc_errk(c, "access", "\"%s\" is not a combination of r, w and m", access);
                d->access[n++] = *p;
        }
        d->access[n] = '\0';
        return 0;
}

static int parse_memory(struct jctx *c, json_t *v, struct moat_resources *res)
{
        int r;
#define MEM(key, type, field)                                                                           \
        if ((r = jc_##type(c, v, key, &res->memory.field)) < 0)                                         \
                return r;                                                                               \
        res->memory.has_##field = r > 0;
        MEM("limit", i64, limit)
        MEM("reservation", i64, reservation)
        MEM("swap", i64, swap)
        MEM("kernel", i64, kernel)
        MEM("kernelTCP", i64, kernel_tcp)
        MEM("swappiness", u64, swappiness)
        MEM("disableOOMKiller", bool, disable_oom_killer)
        MEM("useHierarchy", bool, use_hierarchy)
        MEM("checkBeforeUpdate", bool, check_before_update)
#undef MEM
        if (res->memory.has_swappiness && res->memory.swappiness > 100)
                return jc_errk(c, "swappiness", "expected a value between 0 and 100, got %" PRIu64,
                               res->memory.swappiness);
        return 0;
}

static int parse_cpu(struct jctx *c, json_t *v, struct moat_resources *res)
{
        int r;
#define CPU(key, type, field)                                                                           \
        if ((r = jc_##type(c, v, key, &res->cpu.field)) < 0)                                            \
                return r;                                                                               \
        res->cpu.has_##field = r > 0;
        CPU("shares", u64, shares)
        CPU("quota", i64, quota)
        CPU("burst", u64, burst)
        CPU("period", u64, period)
        CPU("realtimeRuntime", i64, realtime_runtime)
        CPU("realtimePeriod", u64, realtime_period)
        CPU("idle", i64, idle)
#undef CPU
        if ((r = jc_str(c, v, "cpus", &res->cpu.cpus)) < 0 || (r = jc_str(c, v, "mems", &res->cpu.mems)) < 0)
                return r;
        return 0;
}

static int parse_weight_device(struct jctx *c, json_t *v, void *item)
{
        struct moat_blkio_weight_device *w = item;
        int r;
        if ((r = jc_i64(c, v, "major", &w->major)) < 0 || (r = jc_i64(c, v, "minor", &w->minor)) < 0)
                return r;
        if ((r = jc_u16(c, v, "weight", &w->weight)) < 0)
                return r;
        w->has_weight = r > 0;
        if ((r = jc_u16(c, v, "leafWeight", &w->leaf_weight)) < 0)
                return r;
        w->has_leaf_weight = r > 0;
        return 0;
}

static int parse_throttle(struct jctx *c, json_t *v, void *item)
{
        struct moat_blkio_throttle *t = item;
        int r;
        if ((r = jc_i64(c, v, "major", &t->major)) < 0 || (r = jc_i64(c, v, "minor", &t->minor)) < 0 ||
            (r = jc_u64(c, v, "rate", &t->rate)) < 0)
                return r;
        return 0;
}

static int parse_blkio(struct jctx *c, json_t *v, struct moat_resources *res)
{
        static const char *const throttle_keys[4] = { "throttleReadBpsDevice", "throttleWriteBpsDevice",
                                                      "throttleReadIOPSDevice", "throttleWriteIOPSDevice" };
        int r;
        if ((r = jc_u16(c, v, "weight", &res->blkio.weight)) < 0)
                return r;
        res->blkio.has_weight = r > 0;
        if ((r = jc_u16(c, v, "leafWeight", &res->blkio.leaf_weight)) < 0)
                return r;
        res->blkio.has_leaf_weight = r > 0;
        if ((r = parse_array(c, v, "weightDevice", (void **)&res->blkio.weight_device, &res->blkio.n_weight_device,
                             sizeof(struct moat_blkio_weight_device), parse_weight_device)) < 0)
                return r;
        for (int i = 0; i < 4; i++)
                if ((r = parse_array(c, v, throttle_keys[i], (void **)&res->blkio.throttle[i],
                                     &res->blkio.n_throttle[i], sizeof(struct moat_blkio_throttle),
                                     parse_throttle)) < 0)
                        return r;
        return 0;
}

static int parse_hugepage(struct jctx *c, json_t *v, void *item)
{
        struct moat_hugepage_limit *h = item;
        int r = jc_str(c, v, "pageSize", &h->page_size);
        if (r < 0)
                return r;
        if (r == 0 || h->page_size[0] == '\0')
                return jc_errk(c, "pageSize", "missing (e.g. \"2MB\")");
        /* The name becomes part of a cgroup file name: digits and a unit only. */
        const char *p = h->page_size;
        while (*p >= '0' && *p <= '9')
                p++;
        if (p == h->page_size || !(STREQ(p, "KB") || STREQ(p, "MB") || STREQ(p, "GB") || STREQ(p, "kB")))
                return jc_errk(c, "pageSize", "invalid page size \"%s\" (expected e.g. \"2MB\" or \"1GB\")",
                               h->page_size);
        if ((r = jc_u64(c, v, "limit", &h->limit)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "limit", "missing");
        return 0;
}

static int parse_priority(struct jctx *c, json_t *v, void *item)
{
        struct moat_net_priority *p = item;
        int r = jc_str(c, v, "name", &p->name);
        if (r < 0)
                return r;
        if (r == 0 || p->name[0] == '\0' || strchr(p->name, '/'))
                return jc_errk(c, "name", "missing or not an interface name");
        if ((r = jc_u32(c, v, "priority", &p->priority)) < 0)
                return r;
        return 0;
}

static int parse_unified(struct jctx *c, json_t *obj, struct moat_resources *res)
{
        size_t n = json_object_size(obj);
        if (n == 0)
                return 0;
        if (!(res->unified = calloc(n, sizeof(*res->unified))))
                return SPEC_OOM(c);
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v) {
                struct moat_kv *kv = &res->unified[res->n_unified++];
                size_t o = jc_push(c, key);
                int r = 0;
                if (key[0] == '\0' || key[0] == '.' || strchr(key, '/'))
                        r = jc_err(c, "invalid cgroup file name");
                if (r >= 0 && (r = jv_str(c, v, &kv->value)) >= 0 && !(kv->key = strdup(key)))
                        r = SPEC_OOM(c);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

int spec_parse_resources(struct jctx *c, json_t *v, struct moat_resources *res)
{
        json_t *sub = NULL;
        int r;
        res->present = true;
        if ((r = parse_array(c, v, "devices", (void **)&res->devices, &res->n_devices, sizeof(struct moat_device_rule),
                             parse_dev_rule)) < 0)
                return r;
#define SUB(key, call) JC_SUB(jc_obj, key, call);
        SUB("memory", parse_memory(c, sub, res))
        SUB("cpu", parse_cpu(c, sub, res))
        SUB("pids", ({
                    int _r = jc_i64(c, sub, "limit", &res->pids.limit);
                    res->pids.has_limit = _r > 0;
                    _r;
            }))
        SUB("blockIO", parse_blkio(c, sub, res))
        SUB("network", ({
                    int _r = jc_u32(c, sub, "classID", &res->network.class_id);
                    res->network.has_class_id = _r > 0;
                    if (_r >= 0)
                            _r = parse_array(c, sub, "priorities", (void **)&res->network.priorities,
                                             &res->network.n_priorities, sizeof(struct moat_net_priority),
                                             parse_priority);
                    _r;
            }))
        SUB("unified", parse_unified(c, sub, res))
#undef SUB
        return parse_array(c, v, "hugepageLimits", (void **)&res->hugepages, &res->n_hugepages,
                           sizeof(struct moat_hugepage_limit), parse_hugepage);
}
