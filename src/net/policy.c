/* SPDX-License-Identifier: Apache-2.0 */
/* Applying, removing and listing environment policies through libnftables (the ruleset text is
 * made by policy_render.c, which says why text rather than libnftnl objects). */
#include <arpa/inet.h>
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "net/policy.h"

static void nft_ctx_freep(struct nft_ctx **c)
{
        if (*c)
                nft_ctx_free(*c);
}
#define _cleanup_nft_ _cleanup_(nft_ctx_freep)

static struct nft_ctx *nft_open(void)
{
        struct nft_ctx *c = nft_ctx_new(NFT_CTX_DEFAULT);

        if (!c)
                return NULL;
        if (nft_ctx_buffer_output(c) < 0 || nft_ctx_buffer_error(c) < 0) {
                nft_ctx_free(c);
                return NULL;
        }
        return c;
}

/* errno from nft's error text; the text itself (first line, trimmed) goes into the message */
static int nft_fail(struct nft_ctx *c, struct moat_error **err, const char *what, const char *env)
{
        const char *e = nft_ctx_get_error_buffer(c);
        int code = EINVAL;
        char line[512] = "";

        if (!e)
                e = "";
        if (strstr(e, "Operation not permitted"))
                code = EPERM;
        else if (strstr(e, "Operation not supported") || strstr(e, "No such file or directory"))
                code = EOPNOTSUPP;
        else if (strstr(e, "Cannot allocate memory"))
                code = ENOMEM;
        /* the first "Error:" line is the useful one */
        const char *l = strstr(e, "Error: ");
        l = l ? l + 7 : e;
        size_t n = strcspn(l, "\n");
        if (n >= sizeof(line))
                n = sizeof(line) - 1;
        memcpy(line, l, n);
        line[n] = 0;
        moat_debug("nft %s for '%s' failed:\n%s", what, env, e);
        return moat_error_input(err, -code, "cannot %s the network policy of environment '%s': %s", what, env,
                                *line ? line : strerror(code));
}

int moat_policy_apply(const struct moat_policy *p, struct moat_error **err)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_nft_ struct nft_ctx *c = NULL;
        int r;

        r = moat_policy_render(p, &text, err);
        if (r < 0)
                return r;
        c = nft_open();
        if (!c)
                return moat_error_set(err, ENOMEM, "cannot set up libnftables for environment '%s'", p->env);
        /* one buffer = one transaction: "add table; delete table; table { ... }" for both tables
         * either all commits or nothing does */
        if (nft_run_cmd_from_buffer(c, text) != 0)
                return nft_fail(c, err, "apply", p->env);
        moat_debug("network policy of '%s' applied (%zu services, %zu pairs)", p->env, p->n_services, p->n_pairs);
        return 0;
}

int moat_policy_remove(const char *env, struct moat_error **err)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_nft_ struct nft_ctx *c = NULL;

        if (!moat_policy_env_name_ok(env))
                return moat_error_input(err, -EINVAL, "'%s' is not an environment name", env ? env : "");
        /* creating an empty table first makes the delete idempotent (nft 1.0.6 has no "destroy") */
        if (asprintf(&text,
                     "table inet moat-%s {}\ndelete table inet moat-%s\n"
                     "table bridge moat-%s {}\ndelete table bridge moat-%s\n",
                     env, env, env, env) < 0)
                return moat_error_set(err, ENOMEM, "removing the network policy of '%s'", env);
        c = nft_open();
        if (!c)
                return moat_error_set(err, ENOMEM, "cannot set up libnftables for environment '%s'", env);
        if (nft_run_cmd_from_buffer(c, text) != 0)
                return nft_fail(c, err, "remove", env);
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int moat_policy_list(char ***envs, struct moat_error **err)
{
        _cleanup_nft_ struct nft_ctx *c = NULL;
        _cleanup_strv_ char **v = NULL;
        size_t n = 0;
        const char *out, *l;

        c = nft_open();
        if (!c)
                return moat_error_set(err, ENOMEM, "cannot set up libnftables");
        if (nft_run_cmd_from_buffer(c, "list tables") != 0)
                return nft_fail(c, err, "list", "*");
        out = nft_ctx_get_output_buffer(c);
        v = calloc(1, sizeof(char *));
        if (!v)
                return moat_error_set(err, ENOMEM, "listing the network policies");
        /* lines: "table <family> <name>" */
        for (l = out ? out : ""; *l; l += strcspn(l, "\n"), l += *l == '\n') {
                char fam[16], name[256];
                if (sscanf(l, "table %15s %255s", fam, name) != 2)
                        continue;
                if (strncmp(name, MOAT_POLICY_TABLE_PREFIX, strlen(MOAT_POLICY_TABLE_PREFIX)) != 0)
                        continue;
                if (!STREQ(fam, "inet") && !STREQ(fam, "bridge"))
                        continue;
                const char *env = name + strlen(MOAT_POLICY_TABLE_PREFIX);
                if (!moat_policy_env_name_ok(env))
                        continue;
                bool seen = false;
                for (size_t i = 0; i < n; i++)
                        seen = seen || STREQ(v[i], env);
                if (seen)
                        continue;
                char **nv = realloc(v, (n + 2) * sizeof(char *));
                if (!nv)
                        return moat_error_set(err, ENOMEM, "listing the network policies");
                v = nv;
                v[n] = strdup(env);
                if (!v[n])
                        return moat_error_set(err, ENOMEM, "listing the network policies");
                v[++n] = NULL;
        }
        qsort(v, n, sizeof(char *), cmp_str);
        *envs = TAKE_PTR(v);
        return (int)n;
}

int moat_policy_parse_egress(const char *s, struct moat_policy_egress *out, struct moat_error **err)
{
        char buf[64];
        char *slash, *colon, *end;
        unsigned long len = 32, port = 0;

        if (!s || strlen(s) >= sizeof(buf))
                return moat_error_input(err, -EINVAL, "egress destination '%s' is not an IPv4 address or CIDR",
                                        s ? s : "");
        strcpy(buf, s);
        colon = strchr(buf, ':');
        if (colon) {
                *colon = 0;
                errno = 0;
                port = strtoul(colon + 1, &end, 10);
                if (colon[1] < '0' || colon[1] > '9' || *end || errno || port == 0 || port > 65535)
                        return moat_error_input(err, -EINVAL, "egress destination '%s': bad port '%s'", s,
                                                colon + 1);
        }
        slash = strchr(buf, '/');
        if (slash) {
                *slash = 0;
                errno = 0;
                len = strtoul(slash + 1, &end, 10);
                if (slash[1] < '0' || slash[1] > '9' || *end || errno || len > 32)
                        return moat_error_input(err, -EINVAL, "egress destination '%s': bad prefix length '%s'", s,
                                                slash + 1);
        }
        *out = (struct moat_policy_egress){ .prefix_len = (uint8_t)len, .port = (uint16_t)port };
        if (inet_pton(AF_INET, buf, &out->addr) != 1)
                return moat_error_input(err, -EINVAL,
                                        "egress destination '%s' is not an IPv4 address or CIDR (resolve host "
                                        "names first)",
                                        s);
        return 0;
}
