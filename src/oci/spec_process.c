/* SPDX-License-Identifier: Apache-2.0 */
/* "process": user, args, env, capabilities, rlimits, scheduler, ioPriority, ... */
#include <errno.h>
#include <linux/ioprio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "oci/spec-internal.h"

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#define MOAT_SCHED_ISO 4 /* reserved by Linux, never implemented */

void moat_process_free(struct moat_process *p)
{
        if (!p)
                return;
        free(p->additional_gids);
        strv_free(p->args);
        free(p->command_line);
        strv_free(p->env);
        free(p->cwd);
        for (size_t i = 0; i < p->n_rlimits; i++)
                free(p->rlimits[i].name);
        free(p->rlimits);
        free(p->apparmor_profile);
        free(p->selinux_label);
        free(p->exec_cpu_affinity_initial);
        free(p->exec_cpu_affinity_final);
        free(p);
}

static void process_freep(struct moat_process **p)
{
        moat_process_free(*p);
}

static int parse_user(struct jctx *c, json_t *v, struct moat_process *p)
{
        int r;
        if ((r = jc_u32(c, v, "uid", &p->uid)) < 0 || (r = jc_u32(c, v, "gid", &p->gid)) < 0)
                return r;
        if ((r = jc_u32(c, v, "umask", &p->umask)) < 0)
                return r;
        if (r > 0) {
                if (p->umask > 0777)
                        return jc_errk(c, "umask", "expected a mode between 0 and 0777, got %#o", p->umask);
                p->has_umask = true;
        }
        json_t *a = NULL;
        if ((r = jc_arr(c, v, "additionalGids", &a)) <= 0)
                return r;
        size_t n = json_array_size(a);
        if (n == 0)
                return 0;
        if (!(p->additional_gids = calloc(n, sizeof(uint32_t))))
                return SPEC_OOM(c);
        size_t o = jc_push(c, "additionalGids");
        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t o2 = jc_pushi(c, i);
                r = jv_u32(c, json_array_get(a, i), &p->additional_gids[i]);
                jc_pop(c, o2);
        }
        jc_pop(c, o);
        p->n_additional_gids = n;
        return r < 0 ? r : 0;
}

static const char *const cap_set_names[MOAT_CAP__COUNT] = {
        [MOAT_CAP_BOUNDING] = "bounding",   [MOAT_CAP_EFFECTIVE] = "effective",
        [MOAT_CAP_INHERITABLE] = "inheritable", [MOAT_CAP_PERMITTED] = "permitted",
        [MOAT_CAP_AMBIENT] = "ambient",
};

static int parse_caps(struct jctx *c, json_t *v, struct moat_process *p)
{
        p->has_caps = true;
        int last = moat_cap_last();
        for (int s = 0; s < MOAT_CAP__COUNT; s++) {
                json_t *a = NULL;
                int r = jc_arr(c, v, cap_set_names[s], &a);
                if (r <= 0) {
                        if (r < 0)
                                return r;
                        continue;
                }
                size_t o = jc_push(c, cap_set_names[s]);
                for (size_t i = 0; i < json_array_size(a); i++) {
                        size_t o2 = jc_pushi(c, i);
                        const char *name = NULL;
                        r = jv_strref(c, json_array_get(a, i), &name);
                        if (r >= 0) {
                                int cap = moat_cap_from_name(name);
                                if (cap < 0)
                                        r = jc_err(c, "unknown capability \"%s\"", name);
                                else if (cap > last)
                                        moat_warn("%s: '%s': capability %s is not known to this kernel, ignored",
                                                  c->origin ? c->origin : "process", c->path, name);
                                else
                                        p->caps[s] |= UINT64_C(1) << cap;
                        }
                        jc_pop(c, o2);
                        if (r < 0) {
                                jc_pop(c, o);
                                return r;
                        }
                }
                jc_pop(c, o);
        }
        return 0;
}

static int parse_rlimit(struct jctx *c, json_t *v, struct moat_process *p, struct moat_rlimit *rl)
{
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        if ((r = jc_str(c, v, "type", &rl->name)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "type", "missing (e.g. \"RLIMIT_NOFILE\")");
        if ((rl->resource = moat_rlimit_from_name(rl->name)) < 0)
                return jc_errk(c, "type", "unknown rlimit \"%s\"", rl->name);
        for (struct moat_rlimit *o = p->rlimits; o < rl; o++)
                if (o->resource == rl->resource)
                        return jc_errk(c, "type", "duplicate rlimit \"%s\"", rl->name);
        if ((r = jc_u64(c, v, "soft", &rl->soft)) < 0 || (r = jc_u64(c, v, "hard", &rl->hard)) < 0)
                return r;
        if (rl->soft > rl->hard)
                return jc_errk(c, "soft", "soft limit %llu is above the hard limit %llu",
                               (unsigned long long)rl->soft, (unsigned long long)rl->hard);
        return 0;
}

static int parse_rlimits(struct jctx *c, json_t *a, struct moat_process *p)
{
        size_t n = json_array_size(a);
        if (n == 0)
                return 0;
        if (!(p->rlimits = calloc(n, sizeof(*p->rlimits))))
                return SPEC_OOM(c);
        for (size_t i = 0; i < n; i++) {
                size_t o = jc_pushi(c, i);
                p->n_rlimits = i + 1;
                int r = parse_rlimit(c, json_array_get(a, i), p, &p->rlimits[i]);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const struct {
        const char *name;
        int value;
} sched_policies[] = {
        { "SCHED_OTHER", SCHED_OTHER }, { "SCHED_FIFO", SCHED_FIFO },   { "SCHED_RR", SCHED_RR },
        { "SCHED_BATCH", SCHED_BATCH }, { "SCHED_ISO", MOAT_SCHED_ISO }, { "SCHED_IDLE", SCHED_IDLE },
        { "SCHED_DEADLINE", SCHED_DEADLINE },
}, sched_flags[] = {
        { "SCHED_FLAG_RESET_ON_FORK", 0x01 }, { "SCHED_FLAG_RECLAIM", 0x02 },
        { "SCHED_FLAG_DL_OVERRUN", 0x04 },    { "SCHED_FLAG_KEEP_POLICY", 0x08 },
        { "SCHED_FLAG_KEEP_PARAMS", 0x10 },   { "SCHED_FLAG_UTIL_CLAMP_MIN", 0x20 },
        { "SCHED_FLAG_UTIL_CLAMP_MAX", 0x40 },
};

static int parse_scheduler(struct jctx *c, json_t *v, struct moat_process *p)
{
        _cleanup_free_ char *policy = NULL;
        _cleanup_strv_ char **flags = NULL;
        int r = jc_str(c, v, "policy", &policy);
        if (r < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "policy", "missing (e.g. \"SCHED_OTHER\")");
        p->sched_policy = -1;
        for (size_t i = 0; i < ARRAY_SIZE(sched_policies); i++)
                if (STREQ(sched_policies[i].name, policy))
                        p->sched_policy = sched_policies[i].value;
        if (p->sched_policy < 0)
                return jc_errk(c, "policy", "unknown scheduling policy \"%s\"", policy);
        if ((r = jc_int(c, v, "nice", &p->sched_nice)) < 0 || (r = jc_int(c, v, "priority", &p->sched_priority)) < 0 ||
            (r = jc_u64(c, v, "runtime", &p->sched_runtime)) < 0 ||
            (r = jc_u64(c, v, "deadline", &p->sched_deadline)) < 0 ||
            (r = jc_u64(c, v, "period", &p->sched_period)) < 0 || (r = jc_strv(c, v, "flags", &flags)) < 0)
                return r;
        if (p->sched_nice < -20 || p->sched_nice > 19)
                return jc_errk(c, "nice", "expected a value between -20 and 19, got %d", p->sched_nice);
        if (p->sched_priority != 0 && p->sched_policy != SCHED_FIFO && p->sched_policy != SCHED_RR)
                return jc_errk(c, "priority", "only SCHED_FIFO and SCHED_RR take a priority");
        if (p->sched_priority < 0 || p->sched_priority > 99)
                return jc_errk(c, "priority", "expected a value between 1 and 99, got %d", p->sched_priority);
        if (p->sched_policy != SCHED_DEADLINE && (p->sched_runtime || p->sched_deadline || p->sched_period))
                return jc_err(c, "runtime, deadline and period are only for SCHED_DEADLINE");
        for (size_t i = 0; flags && flags[i]; i++) {
                size_t j;
                for (j = 0; j < ARRAY_SIZE(sched_flags); j++)
                        if (STREQ(sched_flags[j].name, flags[i]))
                                break;
                if (j == ARRAY_SIZE(sched_flags)) {
                        size_t o = jc_push(c, "flags");
                        jc_pushi(c, i);
                        r = jc_err(c, "unknown scheduler flag \"%s\"", flags[i]);
                        jc_pop(c, o);
                        return r;
                }
                p->sched_flags |= (uint64_t)sched_flags[j].value;
        }
        p->has_scheduler = true;
        return 0;
}

static int parse_io_priority(struct jctx *c, json_t *v, struct moat_process *p)
{
        _cleanup_free_ char *cls = NULL;
        int r = jc_str(c, v, "class", &cls);
        if (r < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "class", "missing (e.g. \"IOPRIO_CLASS_BE\")");
        if (STREQ(cls, "IOPRIO_CLASS_RT"))
                p->io_priority_class = IOPRIO_CLASS_RT;
        else if (STREQ(cls, "IOPRIO_CLASS_BE"))
                p->io_priority_class = IOPRIO_CLASS_BE;
        else if (STREQ(cls, "IOPRIO_CLASS_IDLE"))
                p->io_priority_class = IOPRIO_CLASS_IDLE;
        else
                return jc_errk(c, "class", "unknown I/O priority class \"%s\" (expected IOPRIO_CLASS_RT, "
                               "IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)", cls);
        if ((r = jc_int(c, v, "priority", &p->io_priority)) < 0)
                return r;
        if (p->io_priority < 0 || p->io_priority > 7)
                return jc_errk(c, "priority", "expected a value between 0 and 7, got %d", p->io_priority);
        p->has_io_priority = true;
        return 0;
}

/* "0-3,7": numbers, ranges, commas. */
static int check_cpu_list(struct jctx *c, const char *key, const char *s)
{
        const char *p = s;
        if (*p == '\0')
                return jc_errk(c, key, "empty CPU list");
        while (*p) {
                char *end;
                if (*p < '0' || *p > '9')
                        goto bad;
                errno = 0;
                unsigned long a = strtoul(p, &end, 10);
                if (end == p || errno)
                        goto bad;
                p = end;
                if (*p == '-') {
                        p++;
                        if (*p < '0' || *p > '9')
                                goto bad;
                        unsigned long b = strtoul(p, &end, 10);
                        if (errno || b < a)
                                goto bad;
                        p = end;
                }
                if (*p == ',') {
                        p++;
                        if (*p == '\0')
                                goto bad;
                } else if (*p != '\0')
                        goto bad;
        }
        return 0;
bad:
        return jc_errk(c, key, "invalid CPU list \"%s\" (expected e.g. \"0-3,7\")", s);
}

static int parse_env(struct jctx *c, struct moat_process *p)
{
        for (size_t i = 0; p->env && p->env[i]; i++) {
                const char *eq = strchr(p->env[i], '=');
                if (!eq || eq == p->env[i]) {
                        size_t o = jc_push(c, "env");
                        jc_pushi(c, i);
                        int r = jc_err(c, "\"%s\" is not NAME=VALUE", p->env[i]);
                        jc_pop(c, o);
                        return r;
                }
        }
        return 0;
}

static int process_fields(struct jctx *c, json_t *v, struct moat_process *p)
{
        json_t *sub = NULL;
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        if ((r = jc_bool(c, v, "terminal", &p->terminal)) < 0)
                return r;
        if ((r = jc_obj(c, v, "consoleSize", &sub)) < 0)
                return r;
        if (r > 0) {
                size_t o = jc_push(c, "consoleSize");
                if ((r = jc_uint(c, sub, "height", &p->console_height)) >= 0)
                        r = jc_uint(c, sub, "width", &p->console_width);
                jc_pop(c, o);
                if (r < 0)
                        return r;
                p->has_console_size = true;
        }
        if ((r = jc_obj(c, v, "user", &sub)) < 0)
                return r;
        if (r > 0) {
                size_t o = jc_push(c, "user");
                r = parse_user(c, sub, p);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = jc_strv(c, v, "args", &p->args)) < 0)
                return r;
        if (!p->args || !p->args[0])
                return jc_errk(c, "args", "must name the program to run (at least one element)");
        if ((r = jc_str(c, v, "commandLine", &p->command_line)) < 0)
                return r;
        if (r > 0)
                return jc_errk(c, "commandLine", "only for Windows; use \"args\"");
        if ((r = jc_strv(c, v, "env", &p->env)) < 0 || (r = parse_env(c, p)) < 0)
                return r;
        if ((r = jc_str(c, v, "cwd", &p->cwd)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "cwd", "missing (an absolute path is required)");
        if (p->cwd[0] != '/')
                return jc_errk(c, "cwd", "\"%s\" is not an absolute path", p->cwd);
        JC_SUB(jc_obj, "capabilities", parse_caps(c, sub, p));
        JC_SUB(jc_arr, "rlimits", parse_rlimits(c, sub, p));
        if ((r = jc_bool(c, v, "noNewPrivileges", &p->no_new_privileges)) < 0 ||
            (r = jc_str(c, v, "apparmorProfile", &p->apparmor_profile)) < 0 ||
            (r = jc_str(c, v, "selinuxLabel", &p->selinux_label)) < 0)
                return r;
        if ((r = jc_int(c, v, "oomScoreAdj", &p->oom_score_adj)) < 0)
                return r;
        if (r > 0) {
                if (p->oom_score_adj < -1000 || p->oom_score_adj > 1000)
                        return jc_errk(c, "oomScoreAdj", "expected a value between -1000 and 1000, got %d",
                                       p->oom_score_adj);
                p->has_oom_score_adj = true;
        }
        JC_SUB(jc_obj, "scheduler", parse_scheduler(c, sub, p));
        JC_SUB(jc_obj, "ioPriority", parse_io_priority(c, sub, p));
        if ((r = jc_obj(c, v, "execCPUAffinity", &sub)) < 0)
                return r;
        if (r > 0) {
                size_t o = jc_push(c, "execCPUAffinity");
                if ((r = jc_str(c, sub, "initial", &p->exec_cpu_affinity_initial)) > 0)
                        r = check_cpu_list(c, "initial", p->exec_cpu_affinity_initial);
                if (r >= 0 && (r = jc_str(c, sub, "final", &p->exec_cpu_affinity_final)) > 0)
                        r = check_cpu_list(c, "final", p->exec_cpu_affinity_final);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

int spec_parse_process(struct jctx *c, json_t *v, struct moat_process **out)
{
        _cleanup_(process_freep) struct moat_process *p = calloc(1, sizeof(*p));
        if (!p)
                return SPEC_OOM(c);
        int r = process_fields(c, v, p);
        if (r < 0)
                return r;
        *out = TAKE_PTR(p);
        return 0;
}

int moat_process_parse(const char *json, size_t len, const char *origin, struct moat_process **out,
                       struct moat_error **err)
{
        struct jctx c;
        _cleanup_json_ json_t *root = NULL;
        jctx_init(&c, origin ? origin : "process.json", err);
        int r = jctx_load(&c, json, len, &root);
        if (r >= 0)
                r = spec_parse_process(&c, root, out);
        jctx_fini(&c);
        return r;
}
