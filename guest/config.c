/* SPDX-License-Identifier: Apache-2.0 */
/* CONFIG (TLVs, see src/vm/proto.h) -> struct vm_config.  The lengths are the host's: every
 * one is checked against the value it claims to be before it is read, counts are bounded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vminit.h"

static char *dup_str(const uint8_t *v, size_t len)
{
        if (len > VM_MAX_STR || memchr(v, 0, len))
                return NULL;
        char *s = malloc(len + 1);
        if (!s)
                return NULL;
        memcpy(s, v, len);
        s[len] = 0;
        return s;
}

/* Appends to a NULL-terminated string array. */
static int push_str(char ***arr, size_t *n, const uint8_t *v, size_t len)
{
        if (*n >= MOAT_VM_MAX_ARGS)
                return -E2BIG;
        char *s = dup_str(v, len);
        if (!s)
                return -EBADMSG;
        char **na = realloc(*arr, (*n + 2) * sizeof *na);
        if (!na) {
                free(s);
                return -ENOMEM;
        }
        na[(*n)++] = s;
        na[*n] = NULL;
        *arr = na;
        return 0;
}

/* One u16-length-prefixed string of a MOUNT value. */
static int take_str16(const uint8_t **p, const uint8_t *end, char **out)
{
        if (end - *p < 2)
                return -EBADMSG;
        size_t l = moat_vm_get_u16(*p);
        *p += 2;
        if ((size_t)(end - *p) < l)
                return -EBADMSG;
        *out = dup_str(*p, l);
        if (!*out)
                return -EBADMSG;
        *p += l;
        return 0;
}

static int parse_mount(struct vm_config *c, const uint8_t *v, size_t len)
{
        if (c->n_mounts >= MOAT_VM_MAX_ARGS)
                return -E2BIG;
        if (len < 1)
                return -EBADMSG;
        struct vm_mount m = { .kind = v[0] };
        const uint8_t *p = v + 1, *end = v + len;
        int r;
        if ((r = take_str16(&p, end, &m.source)) < 0 || (r = take_str16(&p, end, &m.target)) < 0 ||
            (r = take_str16(&p, end, &m.options)) < 0 || p != end || m.kind < MOAT_VM_M_VIRTIOFS ||
            m.kind > MOAT_VM_M_SHARE) {
                free(m.source);
                free(m.target);
                free(m.options);
                return -EBADMSG;
        }
        struct vm_mount *nm = realloc(c->mounts, (c->n_mounts + 1) * sizeof *nm);
        if (!nm) {
                free(m.source);
                free(m.target);
                free(m.options);
                return -ENOMEM;
        }
        nm[c->n_mounts++] = m;
        c->mounts = nm;
        return 0;
}

static int set_str(char **dst, const uint8_t *v, size_t len)
{
        char *s = dup_str(v, len);
        if (!s)
                return -EBADMSG;
        free(*dst);
        *dst = s;
        return 0;
}

int vm_config_parse(struct vm_config *c, const uint8_t *p, size_t len, const char **why)
{
        struct moat_vm_tlv_iter it = { .p = p, .end = p + len };
        uint16_t tag;
        const uint8_t *v;
        size_t l;
        int r;

        memset(c, 0, sizeof *c);
        *why = NULL;
        while ((r = moat_vm_tlv_next(&it, &tag, &v, &l)) > 0) {
                switch (tag) {
                case MOAT_VM_T_ARG:
                        r = push_str(&c->args, &c->n_args, v, l);
                        *why = "bad ARG";
                        break;
                case MOAT_VM_T_ENV:
                        r = push_str(&c->env, &c->n_env, v, l);
                        if (r == 0 && !strchr(c->env[c->n_env - 1], '='))
                                r = -EBADMSG;
                        *why = "bad ENV";
                        break;
                case MOAT_VM_T_CWD:
                        r = set_str(&c->cwd, v, l);
                        *why = "bad CWD";
                        break;
                case MOAT_VM_T_HOSTNAME:
                        r = set_str(&c->hostname, v, l);
                        *why = "bad HOSTNAME";
                        break;
                case MOAT_VM_T_USER:
                        r = l == 8 ? 0 : -EBADMSG;
                        if (r == 0) {
                                c->has_user = true;
                                c->uid = moat_vm_get_u32(v);
                                c->gid = moat_vm_get_u32(v + 4);
                        }
                        *why = "bad USER";
                        break;
                case MOAT_VM_T_GROUP: {
                        r = l == 4 && c->n_groups < MOAT_VM_MAX_ARGS ? 0 : -EBADMSG;
                        *why = "bad GROUP";
                        if (r < 0)
                                break;
                        uint32_t *ng = realloc(c->groups, (c->n_groups + 1) * sizeof *ng);
                        if (!ng) {
                                r = -ENOMEM;
                                break;
                        }
                        ng[c->n_groups++] = moat_vm_get_u32(v);
                        c->groups = ng;
                        break;
                }
                case MOAT_VM_T_UMASK:
                        r = l == 4 && moat_vm_get_u32(v) <= 0777 ? 0 : -EBADMSG;
                        if (r == 0) {
                                c->has_umask = true;
                                c->umask = moat_vm_get_u32(v);
                        }
                        *why = "bad UMASK";
                        break;
                case MOAT_VM_T_TERMINAL:
                        c->terminal = true;
                        r = 0;
                        break;
                case MOAT_VM_T_WINSIZE:
                        r = l == 4 ? 0 : -EBADMSG;
                        *why = "bad WINSIZE";
                        if (r == 0) {
                                c->rows = moat_vm_get_u16(v);
                                c->cols = moat_vm_get_u16(v + 2);
                        }
                        break;
                case MOAT_VM_T_RLIMIT: {
                        r = l == 20 && c->n_rlimits < MOAT_VM_MAX_ARGS ? 0 : -EBADMSG;
                        *why = "bad RLIMIT";
                        if (r < 0)
                                break;
                        struct vm_rlimit *nr = realloc(c->rlimits, (c->n_rlimits + 1) * sizeof *nr);
                        if (!nr) {
                                r = -ENOMEM;
                                break;
                        }
                        nr[c->n_rlimits++] = (struct vm_rlimit){ moat_vm_get_u32(v), moat_vm_get_u64(v + 4),
                                                                 moat_vm_get_u64(v + 12) };
                        c->rlimits = nr;
                        break;
                }
                case MOAT_VM_T_NO_NEW_PRIVS:
                        c->no_new_privs = true;
                        r = 0;
                        break;
                case MOAT_VM_T_CAPS:
                        r = l == 40 ? 0 : -EBADMSG;
                        if (r == 0) {
                                c->has_caps = true;
                                for (int i = 0; i < 5; i++)
                                        c->caps[i] = moat_vm_get_u64(v + 8 * i);
                        }
                        *why = "bad CAPS";
                        break;
                case MOAT_VM_T_SECCOMP:
                        /* BPF_MAXINSNS = 4096 */
                        r = l > 0 && l % 8 == 0 && l / 8 <= 4096 && !c->seccomp ? 0 : -EBADMSG;
                        *why = "bad SECCOMP";
                        if (r < 0)
                                break;
                        c->seccomp = malloc(l);
                        if (!c->seccomp) {
                                r = -ENOMEM;
                                break;
                        }
                        memcpy(c->seccomp, v, l);
                        c->seccomp_len = l;
                        break;
                case MOAT_VM_T_ROOT:
                        r = l == 1 ? 0 : -EBADMSG;
                        if (r == 0) {
                                c->has_root = true;
                                c->root_readonly = v[0] != 0;
                        }
                        *why = "bad ROOT";
                        break;
                case MOAT_VM_T_MOUNT:
                        r = parse_mount(c, v, l);
                        *why = "bad MOUNT";
                        break;
                case MOAT_VM_T_NET:
                        r = l == 9 && v[4] >= 1 && v[4] <= 30 && !c->has_net ? 0 : -EBADMSG;
                        if (r == 0) {
                                c->has_net = true;
                                memcpy(c->net_addr, v, 4);
                                c->net_prefix = v[4];
                                memcpy(c->net_gateway, v + 5, 4);
                        }
                        *why = "bad NET";
                        break;
                default:
                        r = 0;  /* unknown tags are skipped: newer hosts may add some */
                        break;
                }
                if (r < 0)
                        goto fail;
                *why = NULL;
        }
        if (r < 0) {
                *why = "truncated TLV";
                goto fail;
        }
        if (c->n_args == 0) {
                *why = "no ARG";
                r = -EBADMSG;
                goto fail;
        }
        if (!c->env) {
                c->env = calloc(1, sizeof *c->env);
                if (!c->env) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        return 0;
fail:
        vm_config_free(c);
        return r == -ENOMEM ? r : -EBADMSG;
}

void vm_config_free(struct vm_config *c)
{
        for (size_t i = 0; i < c->n_args; i++)
                free(c->args[i]);
        free(c->args);
        for (size_t i = 0; i < c->n_env; i++)
                free(c->env[i]);
        free(c->env);
        free(c->cwd);
        free(c->hostname);
        free(c->groups);
        free(c->rlimits);
        free(c->seccomp);
        for (size_t i = 0; i < c->n_mounts; i++) {
                free(c->mounts[i].source);
                free(c->mounts[i].target);
                free(c->mounts[i].options);
        }
        free(c->mounts);
        memset(c, 0, sizeof *c);
}
