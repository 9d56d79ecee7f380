/* SPDX-License-Identifier: Apache-2.0 */
/* config.json -> the guest's CONFIG TLVs (vm/config.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "linux/seccomp.h"
#include "vm/config.h"
#include "vm/proto.h"

static void put_mount(struct moat_vm_tlv_writer *w, uint8_t kind, const char *src, const char *dst, const char *opts)
{
        const char *parts[3] = { src ? src : "", dst ? dst : "", opts ? opts : "" };
        size_t len = 1;
        for (int i = 0; i < 3; i++)
                len += 2 + strlen(parts[i]);
        if (len > 65535) {
                w->err = w->err ? w->err : -EMSGSIZE;
                return;
        }
        _cleanup_free_ uint8_t *v = malloc(len);
        if (!v) {
                w->err = w->err ? w->err : -ENOMEM;
                return;
        }
        size_t o = 0;
        v[o++] = kind;
        for (int i = 0; i < 3; i++) {
                size_t l = strlen(parts[i]);
                v[o++] = (uint8_t)l;
                v[o++] = (uint8_t)(l >> 8);
                memcpy(v + o, parts[i], l);
                o += l;
        }
        moat_vm_tlv_put(w, MOAT_VM_T_MOUNT, v, o);
}

static int mount_kind(const struct moat_mount *m, uint8_t *kind)
{
        static const struct {
                const char *type;
                uint8_t kind;
        } kinds[] = {
                { "proc", MOAT_VM_M_PROC },   { "sysfs", MOAT_VM_M_SYSFS },   { "devpts", MOAT_VM_M_DEVPTS },
                { "tmpfs", MOAT_VM_M_TMPFS }, { "mqueue", MOAT_VM_M_MQUEUE }, { "cgroup", MOAT_VM_M_CGROUP },
                { "cgroup2", MOAT_VM_M_CGROUP },
        };
        for (size_t i = 0; m->type && i < ARRAY_SIZE(kinds); i++)
                if (STREQ(m->type, kinds[i].type)) {
                        *kind = kinds[i].kind;
                        return 0;
                }
        return -ENOENT;
}

static int add_share(struct moat_vm_config *c, const struct moat_mount *m)
{
        struct moat_vm_share *ns = reallocarray(c->shares, c->n_shares + 1, sizeof(*ns));
        if (!ns)
                return -ENOMEM;
        c->shares = ns;
        struct moat_vm_share *sh = &c->shares[c->n_shares];
        *sh = (struct moat_vm_share){ .read_only = (m->flags & MS_RDONLY) != 0 ||
                                                   (m->attr_set & MOUNT_ATTR_RDONLY) != 0,
                                      .recursive = (m->flags & MS_REC) != 0 };
        if (asprintf(&sh->tag, "moat%zu", c->n_shares) < 0)
                return -ENOMEM;
        sh->source = strdup(m->source ? m->source : "");
        sh->target = strdup(m->destination);
        c->n_shares++;
        return sh->source && sh->target ? 0 : -ENOMEM;
}

static void put_share(struct moat_vm_tlv_writer *w, const struct moat_vm_share *sh, const struct moat_mount *m)
{
        char opts[64] = "";
        size_t n = 0;
        static const struct {
                unsigned long flag;
                const char *name;
        } f[] = { { MS_NOSUID, "nosuid" }, { MS_NODEV, "nodev" }, { MS_NOEXEC, "noexec" } };
        if (sh->read_only)
                n += (size_t)snprintf(opts + n, sizeof opts - n, "ro");
        for (size_t i = 0; i < ARRAY_SIZE(f); i++)
                if (m->flags & f[i].flag)
                        n += (size_t)snprintf(opts + n, sizeof opts - n, "%s%s", n ? "," : "", f[i].name);
        put_mount(w, MOAT_VM_M_SHARE, sh->tag, sh->target, opts);
}

static int put_mounts(const struct moat_spec *s, struct moat_vm_tlv_writer *w, struct moat_vm_config *c,
                      struct moat_error **err)
{
        for (size_t i = 0; i < s->n_mounts; i++) {
                const struct moat_mount *m = &s->mounts[i];
                uint8_t kind;
                if (m->bind) {
                        /* exported by the VM's virtiofsd as "moat<N>" (vm/virtiofs.c); the guest
                         * binds it onto the target, in this order among the other mounts */
                        int r = add_share(c, m);
                        if (r < 0)
                                return r;
                        put_share(w, &c->shares[c->n_shares - 1], m);
                        continue;
                }
                if (mount_kind(m, &kind) < 0) {
                        moat_warn("mounts[%zu]: type '%s' on '%s' is not available in a VM: left out", i,
                                  m->type ? m->type : "", m->destination);
                        continue;
                }
                _cleanup_free_ char *opts = NULL;
                if ((m->flags & MS_RDONLY) && asprintf(&opts, "ro%s%s", m->data ? "," : "", m->data ? m->data : "") < 0)
                        return -ENOMEM;
                put_mount(w, kind, m->source, m->destination, opts ? opts : m->data);
        }
        (void)err;
        return 0;
}

/* The network annotations (vm/config.h): all three or none. */
static int put_net(const struct moat_spec *s, struct moat_vm_tlv_writer *w, struct moat_vm_net *net,
                   struct moat_error **err)
{
        const char *env = moat_spec_annotation(s, MOAT_VM_ANN_NET_ENV);
        const char *addr = moat_spec_annotation(s, MOAT_VM_ANN_NET_ADDR);
        const char *gw = moat_spec_annotation(s, MOAT_VM_ANN_NET_GW);
        if (!env && !addr && !gw)
                return 0;
        if (!env || !*env || !addr || !gw)
                return moat_error_input(err, -EINVAL, "annotations '%s', '%s' and '%s' go together (a VM on an "
                                        "environment's network)", MOAT_VM_ANN_NET_ENV, MOAT_VM_ANN_NET_ADDR,
                                        MOAT_VM_ANN_NET_GW);
        const char *slash = strchr(addr, '/');
        char ip[INET_ADDRSTRLEN];
        uint64_t prefix = 0;
        if (!slash || (size_t)(slash - addr) >= sizeof ip || parse_u64(slash + 1, &prefix) < 0 || prefix < 1 ||
            prefix > 30)
                return moat_error_input(err, -EINVAL, "annotation '%s': '%s' is not an IPv4 address/prefix "
                                        "(e.g. 10.89.0.5/24)", MOAT_VM_ANN_NET_ADDR, addr);
        memcpy(ip, addr, (size_t)(slash - addr));
        ip[slash - addr] = '\0';
        if (inet_pton(AF_INET, ip, &net->addr) != 1)
                return moat_error_input(err, -EINVAL, "annotation '%s': '%s' is not an IPv4 address",
                                        MOAT_VM_ANN_NET_ADDR, addr);
        if (inet_pton(AF_INET, gw, &net->gateway) != 1)
                return moat_error_input(err, -EINVAL, "annotation '%s': '%s' is not an IPv4 address",
                                        MOAT_VM_ANN_NET_GW, gw);
        net->env = strdup(env);
        if (!net->env)
                return -ENOMEM;
        net->prefix = (unsigned)prefix;
        net->present = true;
        uint8_t v[9];
        memcpy(v, &net->addr.s_addr, 4);
        v[4] = (uint8_t)prefix;
        memcpy(v + 5, &net->gateway.s_addr, 4);
        moat_vm_tlv_put(w, MOAT_VM_T_NET, v, sizeof v);
        return 0;
}

int moat_vm_process_tlv(struct moat_vm_tlv_writer *w, const struct moat_process *p,
                        const struct moat_seccomp *seccomp, struct moat_error **err)
{
        for (char **a = p->args; a && *a; a++)
                moat_vm_tlv_put_str(w, MOAT_VM_T_ARG, *a);
        for (char **e = p->env; e && *e; e++)
                moat_vm_tlv_put_str(w, MOAT_VM_T_ENV, *e);
        moat_vm_tlv_put_str(w, MOAT_VM_T_CWD, p->cwd && *p->cwd ? p->cwd : "/");
        uint8_t ug[8];
        moat_vm_put_u32(ug, p->uid);
        moat_vm_put_u32(ug + 4, p->gid);
        moat_vm_tlv_put(w, MOAT_VM_T_USER, ug, sizeof ug);
        for (size_t i = 0; i < p->n_additional_gids; i++)
                moat_vm_tlv_put_u32(w, MOAT_VM_T_GROUP, p->additional_gids[i]);
        moat_vm_tlv_put_u32(w, MOAT_VM_T_UMASK, p->has_umask ? p->umask : 022);
        if (p->terminal)
                moat_vm_tlv_put(w, MOAT_VM_T_TERMINAL, NULL, 0);
        for (size_t i = 0; i < p->n_rlimits; i++) {
                uint8_t rl[20];
                moat_vm_put_u32(rl, (uint32_t)p->rlimits[i].resource);
                moat_vm_put_u64(rl + 4, p->rlimits[i].soft);
                moat_vm_put_u64(rl + 12, p->rlimits[i].hard);
                moat_vm_tlv_put(w, MOAT_VM_T_RLIMIT, rl, sizeof rl);
        }
        if (p->no_new_privileges)
                moat_vm_tlv_put(w, MOAT_VM_T_NO_NEW_PRIVS, NULL, 0);
        if (p->has_caps) {
                static const enum moat_cap_set order[5] = { MOAT_CAP_BOUNDING, MOAT_CAP_EFFECTIVE, MOAT_CAP_PERMITTED,
                                                            MOAT_CAP_INHERITABLE, MOAT_CAP_AMBIENT };
                uint8_t caps[40];
                for (int i = 0; i < 5; i++)
                        moat_vm_put_u64(caps + 8 * i, p->caps[order[i]]);
                moat_vm_tlv_put(w, MOAT_VM_T_CAPS, caps, sizeof caps);
        }
        if (!seccomp)
                return 0;
        _cleanup_seccomp_prog_ struct moat_seccomp_prog *prog = NULL;
        int r = moat_seccomp_build(seccomp, &prog, err);
        if (r < 0)
                return r;
        if (moat_seccomp_uses_notify(prog))
                return moat_error_input(err, -EOPNOTSUPP, "'linux.seccomp': SCMP_ACT_NOTIFY cannot reach a "
                                        "listener from inside a VM");
        unsigned n = 0;
        const void *filter = moat_seccomp_prog_filter(prog, &n);
        moat_vm_tlv_put(w, MOAT_VM_T_SECCOMP, filter, (size_t)n * 8);
        return 0;
}

int moat_vm_config_build(const struct moat_spec *s, struct moat_vm_config *out, struct moat_error **err)
{
        const struct moat_process *p = s->process;
        *out = (struct moat_vm_config){ 0 };
        if (!p || !p->args || !p->args[0])
                return moat_error_input(err, -EINVAL, "'process.args' is empty: nothing to run in the VM");
        struct moat_vm_tlv_writer w = { 0 };
        int r = moat_vm_process_tlv(&w, p, s->linux_.seccomp, err);
        if (s->hostname)
                moat_vm_tlv_put_str(&w, MOAT_VM_T_HOSTNAME, s->hostname);
        uint8_t ro = s->root.readonly ? 1 : 0;
        moat_vm_tlv_put(&w, MOAT_VM_T_ROOT, &ro, 1);
        if (r >= 0)
                r = put_mounts(s, &w, out, err);
        if (r >= 0)
                r = put_net(s, &w, &out->net, err);
        if (r >= 0 && w.err)
                r = moat_error_set(err, -w.err, "the VM's configuration");
        if (r < 0) {
                moat_vm_tlv_free(&w);
                moat_vm_config_free(out);
                return r;
        }
        out->tlv = w.buf;
        out->len = w.len;
        return 0;
}

void moat_vm_config_free(struct moat_vm_config *c)
{
        for (size_t i = 0; i < c->n_shares; i++) {
                free(c->shares[i].tag);
                free(c->shares[i].source);
                free(c->shares[i].target);
        }
        free(c->shares);
        free(c->net.env);
        free(c->tlv);
        *c = (struct moat_vm_config){ 0 };
}
