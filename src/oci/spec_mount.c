/* SPDX-License-Identifier: Apache-2.0 */
/* "mounts": the entries and the mount option table of runc and crun. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "oci/spec-internal.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

enum opt_kind { OPT_FLAG, OPT_PROPAGATION, OPT_ATTR, OPT_EXTRA };
enum { EXTRA_TMPCOPYUP = 1, EXTRA_IDMAP, EXTRA_RIDMAP, EXTRA_DEFAULTS };

static const struct mount_opt {
        const char *name;
        enum opt_kind kind;
        bool clear;
        unsigned long value; /* MS_*, MOUNT_ATTR_* or EXTRA_* */
} mount_opts[] = {
        { "defaults", OPT_EXTRA, false, EXTRA_DEFAULTS },
        { "ro", OPT_FLAG, false, MS_RDONLY },
        { "rw", OPT_FLAG, true, MS_RDONLY },
        { "suid", OPT_FLAG, true, MS_NOSUID },
        { "nosuid", OPT_FLAG, false, MS_NOSUID },
        { "dev", OPT_FLAG, true, MS_NODEV },
        { "nodev", OPT_FLAG, false, MS_NODEV },
        { "exec", OPT_FLAG, true, MS_NOEXEC },
        { "noexec", OPT_FLAG, false, MS_NOEXEC },
        { "sync", OPT_FLAG, false, MS_SYNCHRONOUS },
        { "async", OPT_FLAG, true, MS_SYNCHRONOUS },
        { "dirsync", OPT_FLAG, false, MS_DIRSYNC },
        { "remount", OPT_FLAG, false, MS_REMOUNT },
        { "mand", OPT_FLAG, false, MS_MANDLOCK },
        { "nomand", OPT_FLAG, true, MS_MANDLOCK },
        { "atime", OPT_FLAG, true, MS_NOATIME },
        { "noatime", OPT_FLAG, false, MS_NOATIME },
        { "diratime", OPT_FLAG, true, MS_NODIRATIME },
        { "nodiratime", OPT_FLAG, false, MS_NODIRATIME },
        { "relatime", OPT_FLAG, false, MS_RELATIME },
        { "norelatime", OPT_FLAG, true, MS_RELATIME },
        { "strictatime", OPT_FLAG, false, MS_STRICTATIME },
        { "nostrictatime", OPT_FLAG, true, MS_STRICTATIME },
        { "lazytime", OPT_FLAG, false, MS_LAZYTIME },
        { "nolazytime", OPT_FLAG, true, MS_LAZYTIME },
        { "iversion", OPT_FLAG, false, MS_I_VERSION },
        { "noiversion", OPT_FLAG, true, MS_I_VERSION },
        { "silent", OPT_FLAG, false, MS_SILENT },
        { "loud", OPT_FLAG, true, MS_SILENT },
        { "nosymfollow", OPT_FLAG, false, MS_NOSYMFOLLOW },
        { "bind", OPT_FLAG, false, MS_BIND },
        { "rbind", OPT_FLAG, false, MS_BIND | MS_REC },

        { "private", OPT_PROPAGATION, false, MS_PRIVATE },
        { "rprivate", OPT_PROPAGATION, false, MS_PRIVATE | MS_REC },
        { "shared", OPT_PROPAGATION, false, MS_SHARED },
        { "rshared", OPT_PROPAGATION, false, MS_SHARED | MS_REC },
        { "slave", OPT_PROPAGATION, false, MS_SLAVE },
        { "rslave", OPT_PROPAGATION, false, MS_SLAVE | MS_REC },
        { "unbindable", OPT_PROPAGATION, false, MS_UNBINDABLE },
        { "runbindable", OPT_PROPAGATION, false, MS_UNBINDABLE | MS_REC },

        /* mount_setattr(2) with AT_RECURSIVE, as runc. */
        { "rro", OPT_ATTR, false, MOUNT_ATTR_RDONLY },
        { "rrw", OPT_ATTR, true, MOUNT_ATTR_RDONLY },
        { "rnosuid", OPT_ATTR, false, MOUNT_ATTR_NOSUID },
        { "rsuid", OPT_ATTR, true, MOUNT_ATTR_NOSUID },
        { "rnodev", OPT_ATTR, false, MOUNT_ATTR_NODEV },
        { "rdev", OPT_ATTR, true, MOUNT_ATTR_NODEV },
        { "rnoexec", OPT_ATTR, false, MOUNT_ATTR_NOEXEC },
        { "rexec", OPT_ATTR, true, MOUNT_ATTR_NOEXEC },
        { "rnodiratime", OPT_ATTR, false, MOUNT_ATTR_NODIRATIME },
        { "rdiratime", OPT_ATTR, true, MOUNT_ATTR_NODIRATIME },
        { "rrelatime", OPT_ATTR, false, MOUNT_ATTR_RELATIME },
        { "rnorelatime", OPT_ATTR, true, MOUNT_ATTR_RELATIME },
        { "rnoatime", OPT_ATTR, false, MOUNT_ATTR_NOATIME },
        { "ratime", OPT_ATTR, true, MOUNT_ATTR_NOATIME },
        { "rstrictatime", OPT_ATTR, false, MOUNT_ATTR_STRICTATIME },
        { "rnostrictatime", OPT_ATTR, true, MOUNT_ATTR_STRICTATIME },
        { "rnosymfollow", OPT_ATTR, false, MOUNT_ATTR_NOSYMFOLLOW },
        { "rsymfollow", OPT_ATTR, true, MOUNT_ATTR_NOSYMFOLLOW },

        { "tmpcopyup", OPT_EXTRA, false, EXTRA_TMPCOPYUP },
        { "idmap", OPT_EXTRA, false, EXTRA_IDMAP },
        { "ridmap", OPT_EXTRA, false, EXTRA_RIDMAP },
};

int spec_propagation_from_name(const char *name, unsigned long *out)
{
        for (size_t i = 0; i < ARRAY_SIZE(mount_opts); i++)
                if (mount_opts[i].kind == OPT_PROPAGATION && STREQ(mount_opts[i].name, name)) {
                        *out = mount_opts[i].value;
                        return 0;
                }
        return -EINVAL;
}

static int data_append(char **data, const char *opt)
{
        char *n = NULL;
        if (asprintf(&n, "%s%s%s", *data ? *data : "", *data ? "," : "", opt) < 0)
                return -ENOMEM;
        free(*data);
        *data = n;
        return 0;
}

int spec_mount_options(struct jctx *c, struct moat_mount *m)
{
        m->flags = m->clear_flags = m->propagation = 0;
        m->attr_set = m->attr_clr = 0;
        m->bind = m->tmpcopyup = m->idmap = m->ridmap = false;
        free(m->data);
        m->data = NULL;
        if (m->type && STREQ(m->type, "bind")) {
                m->bind = true;
                m->flags |= MS_BIND;
        }
        for (char **o = m->options; o && *o; o++) {
                const struct mount_opt *t = NULL;
                for (size_t i = 0; i < ARRAY_SIZE(mount_opts); i++)
                        if (STREQ(mount_opts[i].name, *o)) {
                                t = &mount_opts[i];
                                break;
                        }
                if (!t) {
                        if (**o == '\0')
                                continue;
                        if (data_append(&m->data, *o) < 0)
                                return SPEC_OOM(c);
                        continue;
                }
                switch (t->kind) {
                case OPT_FLAG:
                        if (t->clear) {
                                m->flags &= ~t->value;
                                m->clear_flags |= t->value;
                        } else {
                                m->flags |= t->value;
                                m->clear_flags &= ~t->value;
                        }
                        if (t->value & MS_BIND)
                                m->bind = true;
                        break;
                case OPT_PROPAGATION:
                        m->propagation = t->value; /* the last one wins */
                        break;
                case OPT_ATTR:
                        if (t->clear) {
                                m->attr_clr |= t->value;
                        } else {
                                m->attr_set |= t->value;
                                /* mount_setattr(2): an atime mode needs MOUNT_ATTR__ATIME in attr_clr. */
                                if ((t->value & MOUNT_ATTR__ATIME) == t->value)
                                        m->attr_clr |= MOUNT_ATTR__ATIME;
                        }
                        break;
                case OPT_EXTRA:
                        if (t->value == EXTRA_TMPCOPYUP)
                                m->tmpcopyup = true;
                        else if (t->value == EXTRA_IDMAP)
                                m->idmap = true;
                        else if (t->value == EXTRA_RIDMAP)
                                m->ridmap = true;
                        break;
                }
        }
        return 0;
}

int moat_mount_parse_options(struct moat_mount *m, const char *field, struct moat_error **err)
{
        struct jctx c;
        jctx_init(&c, NULL, err);
        jc_push(&c, field ? field : "options");
        int r = spec_mount_options(&c, m);
        jctx_fini(&c);
        return r;
}

void spec_mount_free(struct moat_mount *m)
{
        free(m->destination);
        free(m->type);
        free(m->source);
        strv_free(m->options);
        free(m->uid_mappings);
        free(m->gid_mappings);
        free(m->data);
}

static int parse_mount(struct jctx *c, json_t *v, struct moat_mount *m)
{
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        if ((r = jc_str(c, v, "destination", &m->destination)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "destination", "missing (the path inside the container is required)");
        size_t o = jc_push(c, "destination");
        r = spec_check_abs(c, m->destination);
        jc_pop(c, o);
        if (r < 0)
                return r;
        if ((r = jc_str(c, v, "type", &m->type)) < 0 || (r = jc_str(c, v, "source", &m->source)) < 0 ||
            (r = jc_strv(c, v, "options", &m->options)) < 0)
                return r;
        if ((r = spec_parse_idmaps(c, v, "uidMappings", &m->uid_mappings, &m->n_uid_mappings)) < 0 ||
            (r = spec_parse_idmaps(c, v, "gidMappings", &m->gid_mappings, &m->n_gid_mappings)) < 0)
                return r;
        if ((m->n_uid_mappings > 0) != (m->n_gid_mappings > 0))
                return jc_err(c, "an idmapped mount needs both uidMappings and gidMappings");
        o = jc_push(c, "options");
        r = spec_mount_options(c, m);
        jc_pop(c, o);
        return r;
}

int spec_parse_mounts(struct jctx *c, json_t *arr, struct moat_spec *s)
{
        size_t n = json_array_size(arr);
        if (n == 0)
                return 0;
        s->mounts = calloc(n, sizeof(*s->mounts));
        if (!s->mounts)
                return SPEC_OOM(c);
        for (size_t i = 0; i < n; i++) {
                size_t o = jc_pushi(c, i);
                s->n_mounts = i + 1;
                int r = parse_mount(c, json_array_get(arr, i), &s->mounts[i]);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return 0;
}
