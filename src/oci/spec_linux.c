/* SPDX-License-Identifier: Apache-2.0 */
/* "linux": namespaces, id maps, devices, sysctl, paths, personality, and the
 * checks that tie fields together. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "oci/spec-internal.h"

int spec_check_abs(struct jctx *c, const char *path)
{
        if (path[0] != '/')
                return jc_err(c, "\"%s\" is not an absolute path", path);
        return 0;
}

static bool has_dotdot(const char *p)
{
        for (const char *s = p; (s = strstr(s, "..")); s += 2)
                if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
                        return true;
        return false;
}

/* ---- id maps ---- */

static int parse_idmap(struct jctx *c, json_t *v, struct moat_idmap *m)
{
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        static const char *const keys[] = { "containerID", "hostID", "size" };
        uint32_t *vals[] = { &m->container_id, &m->host_id, &m->size };
        for (size_t i = 0; i < 3; i++) {
                if ((r = jc_u32(c, v, keys[i], vals[i])) < 0)
                        return r;
                if (r == 0)
                        return jc_errk(c, keys[i], "missing");
        }
        if (m->size == 0)
                return jc_errk(c, "size", "must be greater than 0");
        if ((uint64_t)m->container_id + m->size > (uint64_t)UINT32_MAX + 1)
                return jc_errk(c, "size", "containerID %" PRIu32 " + size %" PRIu32 " is beyond 2^32",
                               m->container_id, m->size);
        if ((uint64_t)m->host_id + m->size > (uint64_t)UINT32_MAX + 1)
                return jc_errk(c, "size", "hostID %" PRIu32 " + size %" PRIu32 " is beyond 2^32", m->host_id,
                               m->size);
        return 0;
}

static bool overlap(uint32_t a, uint32_t b, uint32_t size_a, uint32_t size_b)
{
        return (uint64_t)a < (uint64_t)b + size_b && (uint64_t)b < (uint64_t)a + size_a;
}

int spec_parse_idmaps(struct jctx *c, json_t *obj, const char *key, struct moat_idmap **out, size_t *n_out)
{
        json_t *a = NULL;
        int r = jc_arr(c, obj, key, &a);
        if (r <= 0)
                return r;
        size_t n = json_array_size(a);
        if (n == 0)
                return 0;
        struct moat_idmap *m = calloc(n, sizeof(*m));
        if (!m)
                return SPEC_OOM(c);
        free(*out);
        *out = m;
        *n_out = n;
        size_t o = jc_push(c, key);
        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t o2 = jc_pushi(c, i);
                r = parse_idmap(c, json_array_get(a, i), &m[i]);
                for (size_t j = 0; j < i && r >= 0; j++) {
                        if (overlap(m[i].container_id, m[j].container_id, m[i].size, m[j].size))
                                r = jc_err(c, "container IDs %" PRIu32 "-%" PRIu64 " overlap those of [%zu]",
                                           m[i].container_id, (uint64_t)m[i].container_id + m[i].size - 1, j);
                        else if (overlap(m[i].host_id, m[j].host_id, m[i].size, m[j].size))
                                r = jc_err(c, "host IDs %" PRIu32 "-%" PRIu64 " overlap those of [%zu]",
                                           m[i].host_id, (uint64_t)m[i].host_id + m[i].size - 1, j);
                }
                jc_pop(c, o2);
        }
        jc_pop(c, o);
        return r < 0 ? r : 1;
}

/* ---- namespaces ---- */

static int parse_namespaces(struct jctx *c, json_t *a, struct moat_linux *l)
{
        size_t n = json_array_size(a);
        if (n == 0)
                return 0;
        if (!(l->namespaces = calloc(n, sizeof(*l->namespaces))))
                return SPEC_OOM(c);
        for (size_t i = 0; i < n; i++) {
                json_t *v = json_array_get(a, i);
                size_t o = jc_pushi(c, i);
                _cleanup_free_ char *type = NULL;
                struct moat_namespace *ns = &l->namespaces[i];
                int r = jv_obj(c, v);
                if (r >= 0 && (r = jc_str(c, v, "type", &type)) == 0)
                        r = jc_errk(c, "type", "missing");
                if (r >= 0) {
                        int t = spec_ns_from_name(type);
                        if (t < 0)
                                r = jc_errk(c, "type",
                                            "unknown namespace \"%s\" (expected pid, network, mount, ipc, uts, "
                                            "user, cgroup, time)", type);
                        else
                                ns->type = (enum moat_ns_type)t;
                }
                for (size_t j = 0; j < i && r >= 0; j++)
                        if (l->namespaces[j].type == ns->type)
                                r = jc_errk(c, "type", "duplicate namespace \"%s\" (also at [%zu])", type, j);
                l->n_namespaces = i + 1;
                if (r >= 0 && (r = jc_str(c, v, "path", &ns->path)) > 0) {
                        if (ns->path[0] == '\0') {
                                free(ns->path);
                                ns->path = NULL;
                        } else {
                                size_t o2 = jc_push(c, "path");
                                r = spec_check_abs(c, ns->path);
                                jc_pop(c, o2);
                        }
                }
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- devices ---- */

static int parse_device(struct jctx *c, json_t *v, struct moat_device *d)
{
        _cleanup_free_ char *type = NULL;
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        if ((r = jc_str(c, v, "path", &d->path)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "path", "missing");
        if (strncmp(d->path, "/dev/", 5) != 0 || d->path[5] == '\0' || has_dotdot(d->path))
                return jc_errk(c, "path", "\"%s\" is not a path under /dev", d->path);
        if ((r = jc_str(c, v, "type", &type)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "type", "missing (c, b, u or p)");
        if (strlen(type) != 1 || !strchr("cbup", type[0]))
                return jc_errk(c, "type", "unknown device type \"%s\" (expected c, b, u or p)", type);
        d->type = type[0];
        int has_major = jc_i64(c, v, "major", &d->major);
        if (has_major < 0)
                return has_major;
        int has_minor = jc_i64(c, v, "minor", &d->minor);
        if (has_minor < 0)
                return has_minor;
        if (d->type != 'p' && !has_major)
                return jc_errk(c, "major", "missing (required for type '%c')", d->type);
        if (d->type != 'p' && !has_minor)
                return jc_errk(c, "minor", "missing (required for type '%c')", d->type);
        if (d->major < 0 || d->major > UINT32_MAX)
                return jc_errk(c, "major", "out of range: %" PRId64, d->major);
        if (d->minor < 0 || d->minor > UINT32_MAX)
                return jc_errk(c, "minor", "out of range: %" PRId64, d->minor);
        if ((r = jc_u32(c, v, "fileMode", &d->file_mode)) < 0)
                return r;
        d->has_file_mode = r > 0;
        if (d->has_file_mode && d->file_mode > 07777)
                return jc_errk(c, "fileMode", "expected permission bits (at most 07777), got %#o", d->file_mode);
        if ((r = jc_u32(c, v, "uid", &d->uid)) < 0)
                return r;
        d->has_uid = r > 0;
        if ((r = jc_u32(c, v, "gid", &d->gid)) < 0)
                return r;
        d->has_gid = r > 0;
        return 0;
}

static int parse_devices(struct jctx *c, json_t *a, struct moat_linux *l)
{
        size_t n = json_array_size(a);
        if (n == 0)
                return 0;
        if (!(l->devices = calloc(n, sizeof(*l->devices))))
                return SPEC_OOM(c);
        for (size_t i = 0; i < n; i++) {
                size_t o = jc_pushi(c, i);
                l->n_devices = i + 1;
                int r = parse_device(c, json_array_get(a, i), &l->devices[i]);
                for (size_t j = 0; j < i && r >= 0; j++)
                        if (STREQ(l->devices[j].path, l->devices[i].path))
                                r = jc_errk(c, "path", "duplicate device \"%s\" (also at [%zu])",
                                            l->devices[i].path, j);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- sysctl ---- */

static int parse_sysctl(struct jctx *c, json_t *obj, struct moat_linux *l)
{
        size_t n = json_object_size(obj);
        if (n == 0)
                return 0;
        if (!(l->sysctl = calloc(n, sizeof(*l->sysctl))))
                return SPEC_OOM(c);
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v) {
                struct moat_kv *kv = &l->sysctl[l->n_sysctl];
                size_t o = jc_push(c, key);
                int r = 0;
                if (key[0] == '\0' || strchr(key, '/') || strstr(key, "..") || key[0] == '.' ||
                    key[strlen(key) - 1] == '.')
                        r = jc_err(c, "invalid sysctl name (dot-separated, no '/', no empty components)");
                if (r >= 0 && (r = jv_str(c, v, &kv->value)) >= 0 && !(kv->key = strdup(key)))
                        r = SPEC_OOM(c);
                l->n_sysctl++;
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* As runc's validator: a sysctl must belong to a namespace the container has. */
static int check_sysctl(struct jctx *c, struct moat_spec *s)
{
        static const char *const ipc[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                           "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                                           "kernel.shm_rmid_forced" };
        size_t o = jc_push(c, "linux.sysctl");
        int r = 0;
        for (size_t i = 0; i < s->linux_.n_sysctl && r >= 0; i++) {
                const char *k = s->linux_.sysctl[i].key;
                bool is_ipc = strncmp(k, "fs.mqueue.", 10) == 0;
                for (size_t j = 0; j < ARRAY_SIZE(ipc); j++)
                        is_ipc = is_ipc || STREQ(k, ipc[j]);
                if (is_ipc) {
                        if (!moat_spec_ns(s, MOAT_NS_IPC))
                                r = jc_errk(c, k, "needs an ipc namespace");
                } else if (strncmp(k, "net.", 4) == 0) {
                        if (!moat_spec_ns(s, MOAT_NS_NET))
                                r = jc_errk(c, k, "needs a network namespace");
                } else if (STREQ(k, "kernel.domainname")) {
                        if (!moat_spec_ns(s, MOAT_NS_UTS))
                                r = jc_errk(c, k, "needs a uts namespace");
                } else if (STREQ(k, "kernel.hostname")) {
                        r = jc_errk(c, k, "conflicts with the \"hostname\" field; use that");
                } else {
                        r = jc_errk(c, k, "is not in a separate kernel namespace");
                }
        }
        jc_pop(c, o);
        return r;
}

/* ---- the rest ---- */

static int parse_paths(struct jctx *c, json_t *v, const char *key, char ***out, bool *has)
{
        int r = jc_strv(c, v, key, out);
        if (r <= 0)
                return r;
        *has = true;
        size_t o = jc_push(c, key);
        for (size_t i = 0; (*out)[i] && r >= 0; i++) {
                size_t o2 = jc_pushi(c, i);
                r = spec_check_abs(c, (*out)[i]);
                jc_pop(c, o2);
        }
        jc_pop(c, o);
        return r;
}

static int parse_time_offsets(struct jctx *c, json_t *obj, struct moat_linux *l)
{
        const char *key;
        json_t *v;
        l->has_time_offsets = true;
        json_object_foreach(obj, key, v) {
                struct moat_time_offset *t;
                if (STREQ(key, "monotonic"))
                        t = &l->time_monotonic;
                else if (STREQ(key, "boottime"))
                        t = &l->time_boottime;
                else
                        return jc_errk(c, key, "unknown clock (expected monotonic or boottime)");
                size_t o = jc_push(c, key);
                int r = jv_obj(c, v);
                if (r >= 0 && (r = jc_i64(c, v, "secs", &t->secs)) >= 0 &&
                    (r = jc_u32(c, v, "nanosecs", &t->nanosecs)) >= 0 && t->nanosecs >= 1000000000)
                        r = jc_errk(c, "nanosecs", "must be below 1000000000");
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_personality(struct jctx *c, json_t *v, struct moat_linux *l)
{
        _cleanup_free_ char *domain = NULL;
        _cleanup_strv_ char **flags = NULL;
        int r = jc_str(c, v, "domain", &domain);
        if (r < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "domain", "missing (LINUX or LINUX32)");
        if (STREQ(domain, "LINUX"))
                l->personality = PER_LINUX;
        else if (STREQ(domain, "LINUX32"))
                l->personality = PER_LINUX32;
        else
                return jc_errk(c, "domain", "unknown personality \"%s\" (expected LINUX or LINUX32)", domain);
        if ((r = jc_strv(c, v, "flags", &flags)) < 0)
                return r;
        if (flags && flags[0])
                return jc_errk(c, "flags", "personality flags are not supported (got \"%s\")", flags[0]);
        l->has_personality = true;
        return 0;
}

static int linux_fields(struct jctx *c, json_t *v, struct moat_spec *s)
{
        struct moat_linux *l = &s->linux_;
        json_t *sub = NULL;
        _cleanup_free_ char *prop = NULL;
        size_t o;
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        if ((r = jc_arr(c, v, "namespaces", &sub)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "namespaces");
                r = parse_namespaces(c, sub, l);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = spec_parse_idmaps(c, v, "uidMappings", &l->uid_mappings, &l->n_uid_mappings)) < 0 ||
            (r = spec_parse_idmaps(c, v, "gidMappings", &l->gid_mappings, &l->n_gid_mappings)) < 0)
                return r;
        if ((r = jc_obj(c, v, "timeOffsets", &sub)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "timeOffsets");
                r = parse_time_offsets(c, sub, l);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = jc_arr(c, v, "devices", &sub)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "devices");
                r = parse_devices(c, sub, l);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = jc_str(c, v, "cgroupsPath", &l->cgroups_path)) < 0)
                return r;
        if (r > 0 && has_dotdot(l->cgroups_path))
                return jc_errk(c, "cgroupsPath", "\"%s\" must not contain \"..\" components", l->cgroups_path);
        if ((r = jc_obj(c, v, "resources", &sub)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "resources");
                r = spec_parse_resources(c, sub, &l->resources);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = jc_str(c, v, "rootfsPropagation", &prop)) < 0)
                return r;
        if (r > 0 && prop[0] && spec_propagation_from_name(prop, &l->rootfs_propagation) < 0)
                return jc_errk(c, "rootfsPropagation",
                               "unknown propagation \"%s\" (expected private, rprivate, shared, rshared, slave, "
                               "rslave, unbindable or runbindable)", prop);
        if ((r = parse_paths(c, v, "maskedPaths", &l->masked_paths, &l->has_masked_paths)) < 0 ||
            (r = parse_paths(c, v, "readonlyPaths", &l->readonly_paths, &l->has_readonly_paths)) < 0 ||
            (r = jc_str(c, v, "mountLabel", &l->mount_label)) < 0)
                return r;
        if ((r = jc_obj(c, v, "sysctl", &sub)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "sysctl");
                r = parse_sysctl(c, sub, l);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = jc_obj(c, v, "seccomp", &sub)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "seccomp");
                r = spec_seccomp_parse(c, sub, &l->seccomp);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = jc_obj(c, v, "personality", &sub)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "personality");
                r = parse_personality(c, sub, l);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = jc_obj(c, v, "intelRdt", &sub)) < 0)
                return r;
        l->has_intel_rdt = r > 0;
        return 0;
}

int spec_parse_linux(struct jctx *c, json_t *v, struct moat_spec *s)
{
        return linux_fields(c, v, s);
}

int spec_check_linux(struct jctx *c, struct moat_spec *s)
{
        const struct moat_linux *l = &s->linux_;
        const struct moat_namespace *user = moat_spec_ns(s, MOAT_NS_USER);
        if (s->hostname && s->hostname[0] && !moat_spec_ns(s, MOAT_NS_UTS))
                return jc_errk(c, "hostname", "setting the hostname needs a uts namespace in linux.namespaces");
        if (s->domainname && s->domainname[0] && !moat_spec_ns(s, MOAT_NS_UTS))
                return jc_errk(c, "domainname", "setting the domainname needs a uts namespace in linux.namespaces");
        if (user && !user->path) {
                if (l->n_uid_mappings == 0)
                        return jc_errk(c, "linux.uidMappings", "a new user namespace needs uid mappings");
                if (l->n_gid_mappings == 0)
                        return jc_errk(c, "linux.gidMappings", "a new user namespace needs gid mappings");
        }
        if (!user && l->n_uid_mappings)
                return jc_errk(c, "linux.uidMappings", "uid mappings without a user namespace");
        if (!user && l->n_gid_mappings)
                return jc_errk(c, "linux.gidMappings", "gid mappings without a user namespace");
        if (l->has_time_offsets && !moat_spec_ns(s, MOAT_NS_TIME))
                return jc_errk(c, "linux.timeOffsets", "time offsets need a time namespace");
        return check_sysctl(c, s);
}

void spec_linux_free(struct moat_linux *l)
{
        for (size_t i = 0; i < l->n_namespaces; i++)
                free(l->namespaces[i].path);
        free(l->namespaces);
        free(l->uid_mappings);
        free(l->gid_mappings);
        for (size_t i = 0; i < l->n_devices; i++)
                free(l->devices[i].path);
        free(l->devices);
        free(l->cgroups_path);
        spec_resources_free(&l->resources);
        strv_free(l->masked_paths);
        strv_free(l->readonly_paths);
        free(l->mount_label);
        for (size_t i = 0; i < l->n_sysctl; i++) {
                free(l->sysctl[i].key);
                free(l->sysctl[i].value);
        }
        free(l->sysctl);
        spec_seccomp_free(l->seccomp);
}
