/* SPDX-License-Identifier: Apache-2.0 */
/* The environment file: a service's ports, volumes and tmpfs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "env/envfile-internal.h"

static const char *path_key(char *buf, size_t n, const char *a, const char *b)
{
        snprintf(buf, n, "%s.%s", a, b);
        return buf;
}

/* ------------------------------------------------------------ ports */

struct port_long {
        struct moat_env_port *p;
        yaml_node_t *node;
};

static int port_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct port_long *pl = data;
        struct moat_env_port *p = pl->p;
        _cleanup_free_ char *s = NULL;
        if (STREQ(key, "mode") || STREQ(key, "name") || STREQ(key, "app_protocol"))
                return 0;
        char kb[64];
        const char *full = path_key(kb, sizeof(kb), "ports", key);
        if (!STREQ(key, "target") && !STREQ(key, "published") && !STREQ(key, "host_ip") && !STREQ(key, "protocol")) {
                ef_unknown(c, k, NULL, full);
                return 0;
        }
        int r = ef_string(c, v, full, &s);
        if (r < 0)
                return r;
        if (STREQ(key, "target")) {
                if (ef_parse_port_range(s, &p->container_port, &p->container_port_end) < 0)
                        return ef_fail(c, v, full, "'%s' is not a port (1-65535)", s);
        } else if (STREQ(key, "published")) {
                if (ef_parse_port_range(s, &p->host_port, &p->host_port_end) < 0)
                        return ef_fail(c, v, full, "'%s' is not a port or port range", s);
        } else if (STREQ(key, "host_ip")) {
                free(p->host_ip);
                p->host_ip = TAKE_PTR(s);
        } else {
                if (!STREQ(s, "tcp") && !STREQ(s, "udp"))
                        return ef_fail(c, v, full, "'%s' is not a protocol (tcp or udp)", s);
                strcpy(p->protocol, s);
        }
        return 0;
}

int ef_parse_ports(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s)
{
        if (v->type != YAML_SEQUENCE_NODE)
                return ef_fail(c, v, "ports", "must be a list");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *e = ef_node(c, *it);
                if (!e)
                        return ef_too_big(c, v);
                int r = ef_grow(&s->ports, &s->n_ports, sizeof(*s->ports));
                if (r < 0)
                        return r;
                struct moat_env_port *p = &s->ports[s->n_ports - 1];
                if (e->type == YAML_MAPPING_NODE) {
                        strcpy(p->protocol, "tcp");
                        struct port_long pl = { p, e };
                        r = ef_map_foreach(c, e, "ports", port_map, &pl);
                        if (r < 0)
                                return r;
                        if (!p->container_port)
                                return ef_fail(c, e, "ports", "the long form needs 'target'");
                        if (p->host_port && p->host_port_end - p->host_port != p->container_port_end - p->container_port)
                                return ef_fail(c, e, "ports", "the published and target ranges differ in length");
                        continue;
                }
                _cleanup_free_ char *str = NULL;
                r = ef_string(c, e, "ports", &str);
                if (r < 0)
                        return r;
                r = ef_parse_port_string(str, p);
                if (r == -EINVAL)
                        return ef_fail(c, e, "ports", "'%s' is not a port mapping ([IP:][HOST:]CONTAINER[/tcp|udp])",
                                       str);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ------------------------------------------------------------ volumes, tmpfs */

static int abs_source(struct ef_ctx *c, const char *src, char **out)
{
        if (src[0] == '/')
                return (*out = strdup(src)) ? 0 : -ENOMEM;
        if (src[0] == '~' && (src[1] == '/' || !src[1])) {
                const char *home = ef_lookup_var(c, "HOME");
                return asprintf(out, "%s%s", home ? home : "/root", src + 1) < 0 ? -ENOMEM : 0;
        }
        while (src[0] == '.' && src[1] == '/')
                src += 2;
        if (STREQ(src, "."))
                return (*out = strdup(c->dir)) ? 0 : -ENOMEM;
        return asprintf(out, "%s/%s", c->dir, src) < 0 ? -ENOMEM : 0;
}

static bool is_path(const char *s)
{
        return s[0] == '/' || s[0] == '.' || s[0] == '~';
}

static int check_mount(struct ef_ctx *c, yaml_node_t *n, const char *key, struct moat_env_mount *m)
{
        if (!m->target || m->target[0] != '/')
                return ef_fail(c, n, key, "the target '%s' is not an absolute path", m->target ? m->target : "");
        if (m->type == MOAT_MOUNT_VOLUME && m->source && !ef_valid_name(m->source))
                return ef_fail(c, n, key, "'%s' is not a volume name (or a path: start it with ./ or /)",
                               m->source);
        if (m->type == MOAT_MOUNT_BIND && !m->source)
                return ef_fail(c, n, key, "a bind mount needs a source");
        return 0;
}

static int volume_string(struct ef_ctx *c, yaml_node_t *e, const char *str, struct moat_env_mount *m)
{
        _cleanup_free_ char *s = strdup(str);
        if (!s)
                return -ENOMEM;
        char *parts[3] = { NULL };
        int n = 0;
        for (char *q = s;;) {
                if (n == 3)
                        return ef_fail(c, e, "volumes", "'%s' is not SOURCE:TARGET[:MODE]", str);
                parts[n++] = q;
                char *colon = strchr(q, ':');
                if (!colon)
                        break;
                *colon = '\0';
                q = colon + 1;
        }
        const char *src = n > 1 ? parts[0] : NULL, *dst = n > 1 ? parts[1] : parts[0];
        m->type = src && is_path(src) ? MOAT_MOUNT_BIND : MOAT_MOUNT_VOLUME;
        if (src && !*src)
                return ef_fail(c, e, "volumes", "'%s' has an empty source", str);
        if (n == 3) {
                _cleanup_free_ char *mode = strdup(parts[2]);
                if (!mode)
                        return -ENOMEM;
                char *save = NULL;
                for (char *o = strtok_r(mode, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                        if (STREQ(o, "ro"))
                                m->read_only = true;
                        else if (STREQ(o, "rw"))
                                m->read_only = false;
                        else if (!STREQ(o, "z") && !STREQ(o, "Z") && !STREQ(o, "cached") &&
                                 !STREQ(o, "delegated") && !STREQ(o, "consistent") && !STREQ(o, "nocopy"))
                                return ef_fail(c, e, "volumes", "'%s': unknown mode '%s' (ro, rw)", str, o);
                }
        }
        if (!(m->target = strdup(dst)))
                return -ENOMEM;
        if (src) {
                int r = m->type == MOAT_MOUNT_BIND ? abs_source(c, src, &m->source)
                                                   : ((m->source = strdup(src)) ? 0 : -ENOMEM);
                if (r < 0)
                        return r;
        }
        return check_mount(c, e, "volumes", m);
}

struct vol_long {
        struct moat_env_mount *m;
        char *type, *source;
};

static int vol_sub(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct moat_env_mount *m = data;
        if (STREQ(key, "size")) {
                _cleanup_free_ char *s = NULL;
                int64_t sz;
                int r = ef_string(c, v, "volumes.tmpfs.size", &s);
                if (r < 0)
                        return r;
                if (moat_env_parse_size(s, &sz) < 0)
                        return ef_fail(c, v, "volumes.tmpfs.size", "'%s' is not a size", s);
                m->tmpfs_size = (uint64_t)sz;
                return 0;
        }
        /* bind.propagation, bind.create_host_path, volume.nocopy, tmpfs.mode... */
        return 0;
}

static int vol_map(struct ef_ctx *c, const char *key, yaml_node_t *k, yaml_node_t *v, void *data)
{
        struct vol_long *vl = data;
        if (STREQ(key, "type"))
                return ef_string(c, v, "volumes.type", &vl->type);
        if (STREQ(key, "source"))
                return ef_string(c, v, "volumes.source", &vl->source);
        if (STREQ(key, "target"))
                return ef_string(c, v, "volumes.target", &vl->m->target);
        if (STREQ(key, "read_only"))
                return ef_bool(c, v, "volumes.read_only", &vl->m->read_only);
        if (STREQ(key, "bind") || STREQ(key, "volume") || STREQ(key, "tmpfs"))
                return ef_is_null(v) ? 0 : ef_map_foreach(c, v, "volumes", vol_sub, vl->m);
        if (STREQ(key, "consistency"))
                return 0;
        char kb[64];
        ef_unknown(c, k, NULL, path_key(kb, sizeof(kb), "volumes", key));
        return 0;
}

int ef_parse_volumes(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s)
{
        if (v->type != YAML_SEQUENCE_NODE)
                return ef_fail(c, v, "volumes", "must be a list");
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *e = ef_node(c, *it);
                if (!e)
                        return ef_too_big(c, v);
                int r = ef_grow(&s->mounts, &s->n_mounts, sizeof(*s->mounts));
                if (r < 0)
                        return r;
                struct moat_env_mount *m = &s->mounts[s->n_mounts - 1];
                m->line = ef_line(e);
                if (e->type != YAML_MAPPING_NODE) {
                        _cleanup_free_ char *str = NULL;
                        r = ef_string(c, e, "volumes", &str);
                        if (r < 0 || (r = volume_string(c, e, str, m)) < 0)
                                return r;
                        continue;
                }
                struct vol_long vl = { .m = m };
                r = ef_map_foreach(c, e, "volumes", vol_map, &vl);
                if (r >= 0) {
                        if (!vl.type || STREQ(vl.type, "volume"))
                                m->type = MOAT_MOUNT_VOLUME;
                        else if (STREQ(vl.type, "bind"))
                                m->type = MOAT_MOUNT_BIND;
                        else if (STREQ(vl.type, "tmpfs"))
                                m->type = MOAT_MOUNT_TMPFS;
                        else
                                r = ef_fail(c, e, "volumes.type", "'%s' is not a mount type (bind, volume, tmpfs)",
                                            vl.type);
                }
                if (r >= 0 && vl.source && m->type == MOAT_MOUNT_BIND)
                        r = abs_source(c, vl.source, &m->source);
                else if (r >= 0 && vl.source && m->type == MOAT_MOUNT_VOLUME)
                        m->source = TAKE_PTR(vl.source);
                if (r >= 0)
                        r = check_mount(c, e, "volumes", m);
                free(vl.type);
                free(vl.source);
                if (r < 0)
                        return r;
        }
        return 0;
}

int ef_parse_tmpfs(struct ef_ctx *c, yaml_node_t *v, struct moat_env_service *s)
{
        _cleanup_strv_ char **l = NULL;
        int r = ef_strv(c, v, "tmpfs", true, &l);
        if (r < 0)
                return r;
        for (char **p = l; *p; p++) {
                r = ef_grow(&s->mounts, &s->n_mounts, sizeof(*s->mounts));
                if (r < 0)
                        return r;
                struct moat_env_mount *m = &s->mounts[s->n_mounts - 1];
                m->type = MOAT_MOUNT_TMPFS;
                m->line = ef_line(v);
                char *colon = strchr(*p, ':');
                if (!(m->target = colon ? strndup(*p, colon - *p) : strdup(*p)))
                        return -ENOMEM;
                if (colon) {
                        char *save = NULL;
                        for (char *o = strtok_r(colon + 1, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                                int64_t sz;
                                if (!strncmp(o, "size=", 5)) {
                                        if (moat_env_parse_size(o + 5, &sz) < 0)
                                                return ef_fail(c, v, "tmpfs", "'%s' is not a size", o + 5);
                                        m->tmpfs_size = (uint64_t)sz;
                                } else if (!STREQ(o, "ro") && !STREQ(o, "rw") && strncmp(o, "mode=", 5) &&
                                           !STREQ(o, "noexec") && !STREQ(o, "nosuid") && !STREQ(o, "nodev") &&
                                           !STREQ(o, "exec")) {
                                        return ef_fail(c, v, "tmpfs", "unknown option '%s'", o);
                                } else if (STREQ(o, "ro")) {
                                        m->read_only = true;
                                }
                        }
                }
                if (m->target[0] != '/')
                        return ef_fail(c, v, "tmpfs", "'%s' is not an absolute path", m->target);
        }
        return 0;
}
