/* SPDX-License-Identifier: Apache-2.0 */
/* "linux.seccomp": actions, operators, architectures, flags, the notify listener. */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "oci/spec-internal.h"

static const struct {
        const char *name;
        uint32_t action;
} seccomp_actions[] = {
        { "SCMP_ACT_KILL", SCMP_ACT_KILL },
        { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
        { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD },
        { "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
        { "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0) },
        { "SCMP_ACT_TRACE", SCMP_ACT_TRACE(0) },
        { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
        { "SCMP_ACT_LOG", SCMP_ACT_LOG },
        { "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY },
};

static const struct {
        const char *name;
        int op;
} seccomp_ops[] = {
        { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
        { "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
        { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

/* The runtime-spec's list; libseccomp may know fewer, the seccomp code decides. */
static const char *const seccomp_arches[] = {
        "SCMP_ARCH_X86",         "SCMP_ARCH_X86_64",  "SCMP_ARCH_X32",        "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64",     "SCMP_ARCH_MIPS",    "SCMP_ARCH_MIPS64",     "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",      "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",       "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",       "SCMP_ARCH_S390X",
        "SCMP_ARCH_PARISC",      "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",   "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K",        "SCMP_ARCH_SH",      "SCMP_ARCH_SHEB",
};

static const char *const seccomp_flags[] = {
        "SECCOMP_FILTER_FLAG_TSYNC",      "SECCOMP_FILTER_FLAG_LOG",         "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_NEW_LISTENER", "SECCOMP_FILTER_FLAG_TSYNC_ESRCH",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
};

void spec_seccomp_free(struct moat_seccomp *s)
{
        if (!s)
                return;
        strv_free(s->architectures);
        strv_free(s->flags);
        free(s->listener_path);
        free(s->listener_metadata);
        for (size_t i = 0; i < s->n_syscalls; i++) {
                strv_free(s->syscalls[i].names);
                free(s->syscalls[i].args);
        }
        free(s->syscalls);
        free(s);
}

static void seccomp_freep(struct moat_seccomp **s)
{
        spec_seccomp_free(*s);
}

static int parse_action(struct jctx *c, json_t *obj, const char *key, uint32_t *out)
{
        _cleanup_free_ char *name = NULL;
        int r = jc_str(c, obj, key, &name);
        if (r < 0)
                return r;
        if (r == 0)
                return jc_errk(c, key, "missing (e.g. \"SCMP_ACT_ERRNO\")");
        for (size_t i = 0; i < ARRAY_SIZE(seccomp_actions); i++)
                if (STREQ(seccomp_actions[i].name, name)) {
                        *out = seccomp_actions[i].action;
                        return 0;
                }
        return jc_errk(c, key, "unknown seccomp action \"%s\" (expected SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, "
                       "SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, "
                       "SCMP_ACT_LOG or SCMP_ACT_NOTIFY)", name);
}

/* errnoRet: only for ERRNO and TRACE, and it must fit the 16 bits of the action data. */
static int parse_errno_ret(struct jctx *c, json_t *obj, const char *key, uint32_t action, uint32_t *out,
                           bool *has)
{
        int r = jc_u32(c, obj, key, out);
        if (r <= 0)
                return r;
        if (action != SCMP_ACT_ERRNO(0) && action != SCMP_ACT_TRACE(0))
                return jc_errk(c, key, "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return value");
        if (*out > 0xffff)
                return jc_errk(c, key, "%u is too large for a seccomp return value (at most 65535)", *out);
        *has = true;
        return 0;
}

static int parse_check_names(struct jctx *c, json_t *obj, const char *key, char ***out, const char *const *table,
                             size_t n_table, const char *what)
{
        int r = jc_strv(c, obj, key, out);
        if (r <= 0)
                return r;
        for (size_t i = 0; (*out)[i]; i++) {
                size_t j;
                for (j = 0; j < n_table; j++)
                        if (STREQ(table[j], (*out)[i]))
                                break;
                if (j == n_table) {
                        size_t o = jc_push(c, key);
                        jc_pushi(c, i);
                        r = jc_err(c, "unknown seccomp %s \"%s\"", what, (*out)[i]);
                        jc_pop(c, o);
                        return r;
                }
        }
        return 0;
}

static int parse_arg(struct jctx *c, json_t *v, struct moat_seccomp_arg *a)
{
        _cleanup_free_ char *op = NULL;
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        if ((r = jc_uint(c, v, "index", &a->index)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "index", "missing");
        if (a->index >= 6)
                return jc_errk(c, "index", "a system call has 6 arguments (0 to 5), got %u", a->index);
        if ((r = jc_u64(c, v, "value", &a->value)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "value", "missing");
        if ((r = jc_u64(c, v, "valueTwo", &a->value_two)) < 0 || (r = jc_str(c, v, "op", &op)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "op", "missing (e.g. \"SCMP_CMP_EQ\")");
        for (size_t i = 0; i < ARRAY_SIZE(seccomp_ops); i++)
                if (STREQ(seccomp_ops[i].name, op)) {
                        a->op = seccomp_ops[i].op;
                        return 0;
                }
        return jc_errk(c, "op", "unknown seccomp operator \"%s\" (expected SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, "
                       "SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT or SCMP_CMP_MASKED_EQ)", op);
}

static int parse_rule(struct jctx *c, json_t *v, struct moat_seccomp_rule *rule)
{
        json_t *args = NULL;
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        if ((r = jc_strv(c, v, "names", &rule->names)) < 0)
                return r;
        if (!rule->names || !rule->names[0])
                return jc_errk(c, "names", "must list at least one system call");
        for (size_t i = 0; rule->names[i]; i++)
                if (rule->names[i][0] == '\0') {
                        size_t o = jc_push(c, "names");
                        jc_pushi(c, i);
                        r = jc_err(c, "empty system call name");
                        jc_pop(c, o);
                        return r;
                }
        if ((r = parse_action(c, v, "action", &rule->action)) < 0 ||
            (r = parse_errno_ret(c, v, "errnoRet", rule->action, &rule->errno_ret, &rule->has_errno_ret)) < 0)
                return r;
        if ((r = jc_arr(c, v, "args", &args)) <= 0)
                return r;
        size_t n = json_array_size(args);
        if (n == 0)
                return 0;
        if (!(rule->args = calloc(n, sizeof(*rule->args))))
                return SPEC_OOM(c);
        rule->n_args = n;
        size_t o = jc_push(c, "args");
        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t o2 = jc_pushi(c, i);
                r = parse_arg(c, json_array_get(args, i), &rule->args[i]);
                jc_pop(c, o2);
        }
        jc_pop(c, o);
        return r < 0 ? r : 0;
}

static int seccomp_fields(struct jctx *c, json_t *v, struct moat_seccomp *s)
{
        json_t *a = NULL;
        int r;
        if ((r = parse_action(c, v, "defaultAction", &s->default_action)) < 0 ||
            (r = parse_errno_ret(c, v, "defaultErrnoRet", s->default_action, &s->default_errno_ret,
                                 &s->has_default_errno_ret)) < 0)
                return r;
        if (s->default_action == SCMP_ACT_NOTIFY)
                return jc_errk(c, "defaultAction", "SCMP_ACT_NOTIFY cannot be the default action");
        if ((r = parse_check_names(c, v, "architectures", &s->architectures, seccomp_arches,
                                   ARRAY_SIZE(seccomp_arches), "architecture")) < 0 ||
            (r = parse_check_names(c, v, "flags", &s->flags, seccomp_flags, ARRAY_SIZE(seccomp_flags), "flag")) < 0 ||
            (r = jc_str(c, v, "listenerPath", &s->listener_path)) < 0 ||
            (r = jc_str(c, v, "listenerMetadata", &s->listener_metadata)) < 0)
                return r;
        if (s->listener_path && s->listener_path[0] != '/')
                return jc_errk(c, "listenerPath", "\"%s\" is not an absolute path", s->listener_path);
        if ((r = jc_arr(c, v, "syscalls", &a)) < 0)
                return r;
        size_t n = r > 0 ? json_array_size(a) : 0;
        bool notify = false;
        if (n > 0) {
                if (!(s->syscalls = calloc(n, sizeof(*s->syscalls))))
                        return SPEC_OOM(c);
                size_t o = jc_push(c, "syscalls");
                for (size_t i = 0; i < n && r >= 0; i++) {
                        size_t o2 = jc_pushi(c, i);
                        s->n_syscalls = i + 1;
                        r = parse_rule(c, json_array_get(a, i), &s->syscalls[i]);
                        notify = notify || s->syscalls[i].action == SCMP_ACT_NOTIFY;
                        jc_pop(c, o2);
                }
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if (notify && !s->listener_path)
                return jc_errk(c, "listenerPath", "missing: SCMP_ACT_NOTIFY needs a listener socket");
        if (!notify && s->listener_path)
                return jc_errk(c, "listenerPath", "given, but no rule uses SCMP_ACT_NOTIFY");
        return 0;
}

int spec_seccomp_parse(struct jctx *c, json_t *v, struct moat_seccomp **out)
{
        _cleanup_(seccomp_freep) struct moat_seccomp *s = calloc(1, sizeof(*s));
        if (!s)
                return SPEC_OOM(c);
        int r = seccomp_fields(c, v, s);
        if (r < 0)
                return r;
        *out = TAKE_PTR(s);
        return 0;
}
