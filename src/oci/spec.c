/* SPDX-License-Identifier: Apache-2.0 */
/* config.json: the top level (ociVersion, root, hostname, hooks, annotations),
 * freeing, loading a bundle, lookups. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "oci/spec-internal.h"

static void hook_free(struct moat_hook *h)
{
        free(h->path);
        strv_free(h->args);
        strv_free(h->env);
}

void moat_spec_free(struct moat_spec *s)
{
        if (!s)
                return;
        free(s->oci_version);
        free(s->root.path);
        moat_process_free(s->process);
        free(s->hostname);
        free(s->domainname);
        for (size_t i = 0; i < s->n_mounts; i++)
                spec_mount_free(&s->mounts[i]);
        free(s->mounts);
        for (int k = 0; k < MOAT_HOOK__COUNT; k++) {
                for (size_t i = 0; i < s->n_hooks[k]; i++)
                        hook_free(&s->hooks[k][i]);
                free(s->hooks[k]);
        }
        for (size_t i = 0; i < s->n_annotations; i++) {
                free(s->annotations[i].key);
                free(s->annotations[i].value);
        }
        free(s->annotations);
        spec_linux_free(&s->linux_);
        free(s);
}

static void spec_freep(struct moat_spec **s)
{
        moat_spec_free(*s);
}

const struct moat_namespace *moat_spec_ns(const struct moat_spec *s, enum moat_ns_type t)
{
        for (size_t i = 0; s && i < s->linux_.n_namespaces; i++)
                if (s->linux_.namespaces[i].type == t)
                        return &s->linux_.namespaces[i];
        return NULL;
}

const char *moat_spec_annotation(const struct moat_spec *s, const char *key)
{
        for (size_t i = 0; s && key && i < s->n_annotations; i++)
                if (STREQ(s->annotations[i].key, key))
                        return s->annotations[i].value;
        return NULL;
}

static int parse_version(struct jctx *c, json_t *root, struct moat_spec *s)
{
        int r = jc_str(c, root, "ociVersion", &s->oci_version);
        if (r < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "ociVersion", "missing (e.g. \"%s\")", MOAT_OCI_VERSION);
        const char *v = s->oci_version;
        if (v[0] != '1' || (v[1] != '\0' && v[1] != '.'))
                return jc_errk(c, "ociVersion", "version \"%s\" is not supported (expected 1.x)", v);
        return 0;
}

static int parse_root(struct jctx *c, json_t *root, struct moat_spec *s)
{
        json_t *v = NULL;
        int r = jc_obj(c, root, "root", &v);
        if (r < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "root", "missing (\"root\": {\"path\": \"rootfs\"})");
        size_t o = jc_push(c, "root");
        if ((r = jc_str(c, v, "path", &s->root.path)) == 0)
                r = jc_errk(c, "path", "missing");
        else if (r > 0 && s->root.path[0] == '\0')
                r = jc_errk(c, "path", "must not be empty");
        if (r >= 0)
                r = jc_bool(c, v, "readonly", &s->root.readonly);
        jc_pop(c, o);
        return r;
}

static int parse_hook(struct jctx *c, json_t *v, struct moat_hook *h)
{
        int r = jv_obj(c, v);
        if (r < 0)
                return r;
        if ((r = jc_str(c, v, "path", &h->path)) < 0)
                return r;
        if (r == 0)
                return jc_errk(c, "path", "missing");
        if (h->path[0] != '/')
                return jc_errk(c, "path", "\"%s\" is not an absolute path", h->path);
        if ((r = jc_strv(c, v, "args", &h->args)) < 0 || (r = jc_strv(c, v, "env", &h->env)) < 0)
                return r;
        if ((r = jc_int(c, v, "timeout", &h->timeout)) < 0)
                return r;
        if (r > 0 && h->timeout <= 0)
                return jc_errk(c, "timeout", "must be greater than 0, got %d", h->timeout);
        return 0;
}

static int parse_hooks(struct jctx *c, json_t *root, struct moat_spec *s)
{
        json_t *hooks = NULL;
        int r = jc_obj(c, root, "hooks", &hooks);
        if (r <= 0)
                return r;
        size_t o = jc_push(c, "hooks");
        for (int k = 0; k < MOAT_HOOK__COUNT && r >= 0; k++) {
                json_t *a = NULL;
                if ((r = jc_arr(c, hooks, moat_hook_kind_name(k), &a)) <= 0)
                        continue;
                size_t n = json_array_size(a);
                if (n == 0)
                        continue;
                if (!(s->hooks[k] = calloc(n, sizeof(struct moat_hook)))) {
                        r = SPEC_OOM(c);
                        break;
                }
                size_t o2 = jc_push(c, moat_hook_kind_name(k));
                for (size_t i = 0; i < n && r >= 0; i++) {
                        size_t o3 = jc_pushi(c, i);
                        s->n_hooks[k] = i + 1;
                        r = parse_hook(c, json_array_get(a, i), &s->hooks[k][i]);
                        jc_pop(c, o3);
                }
                jc_pop(c, o2);
        }
        jc_pop(c, o);
        return r < 0 ? r : 0;
}

static int parse_annotations(struct jctx *c, json_t *root, struct moat_spec *s)
{
        json_t *obj = NULL;
        int r = jc_obj(c, root, "annotations", &obj);
        if (r <= 0)
                return r;
        size_t n = json_object_size(obj);
        if (n == 0)
                return 0;
        if (!(s->annotations = calloc(n, sizeof(*s->annotations))))
                return SPEC_OOM(c);
        size_t o = jc_push(c, "annotations");
        const char *key;
        json_t *v;
        r = 0;
        json_object_foreach(obj, key, v) {
                struct moat_kv *kv = &s->annotations[s->n_annotations++];
                size_t o2 = jc_push(c, key);
                if (key[0] == '\0')
                        r = jc_err(c, "an annotation key must not be empty");
                if (r >= 0 && (r = jv_str(c, v, &kv->value)) >= 0 && !(kv->key = strdup(key)))
                        r = SPEC_OOM(c);
                jc_pop(c, o2);
                if (r < 0)
                        break;
        }
        jc_pop(c, o);
        return r;
}

static int spec_fields(struct jctx *c, json_t *root, struct moat_spec *s)
{
        json_t *v = NULL;
        size_t o;
        int r;
        if ((r = parse_version(c, root, s)) < 0 || (r = parse_root(c, root, s)) < 0)
                return r;
        if ((r = jc_obj(c, root, "process", &v)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "process");
                r = spec_parse_process(c, v, &s->process);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = jc_str(c, root, "hostname", &s->hostname)) < 0 ||
            (r = jc_str(c, root, "domainname", &s->domainname)) < 0)
                return r;
        if ((r = jc_arr(c, root, "mounts", &v)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "mounts");
                r = spec_parse_mounts(c, v, s);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        if ((r = parse_hooks(c, root, s)) < 0 || (r = parse_annotations(c, root, s)) < 0)
                return r;
        if ((r = jc_obj(c, root, "linux", &v)) < 0)
                return r;
        if (r > 0) {
                o = jc_push(c, "linux");
                r = spec_parse_linux(c, v, s);
                jc_pop(c, o);
                if (r < 0)
                        return r;
        }
        return spec_check_linux(c, s);
}

int moat_spec_parse(const char *json, size_t len, const char *origin, struct moat_spec **out,
                    struct moat_error **err)
{
        struct jctx c;
        _cleanup_json_ json_t *root = NULL;
        _cleanup_(spec_freep) struct moat_spec *s = NULL;
        jctx_init(&c, origin ? origin : "config.json", err);
        int r = jctx_load(&c, json, len, &root);
        if (r >= 0 && !(s = calloc(1, sizeof(*s))))
                r = SPEC_OOM(&c);
        if (r >= 0)
                r = spec_fields(&c, root, s);
        jctx_fini(&c);
        if (r < 0)
                return r;
        *out = TAKE_PTR(s);
        return 0;
}

/* "a//b/./c/" -> "a/b/c"; keeps a leading "/" and any "..". */
static void path_simplify(char *p)
{
        char *w = p, *r = p;
        bool abs = *p == '/';
        if (abs)
                *w++ = *r++;
        while (*r) {
                while (*r == '/')
                        r++;
                if (!*r)
                        break;
                char *end = strchrnul(r, '/');
                size_t n = (size_t)(end - r);
                if (n == 1 && r[0] == '.') {
                        r = end;
                        continue;
                }
                if (w > p && w[-1] != '/')
                        *w++ = '/';
                memmove(w, r, n);
                w += n;
                r = end;
        }
        if (w == p)
                *w++ = abs ? '/' : '.';
        *w = '\0';
}

int moat_spec_load_bundle(const char *bundle, struct moat_spec **out, struct moat_error **err)
{
        _cleanup_free_ char *cfg = NULL, *text = NULL, *abs_bundle = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_(spec_freep) struct moat_spec *s = NULL;
        struct stat st;
        size_t len = 0;
        if (!bundle || !*bundle)
                bundle = ".";
        if (asprintf(&cfg, "%s/config.json", bundle) < 0)
                return moat_error_set(err, ENOMEM, "out of memory");
        fd = open(cfg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot open '%s'", cfg);
        if (fstat(fd, &st) < 0)
                return moat_error_set(err, errno, "cannot stat '%s'", cfg);
        if (!S_ISREG(st.st_mode))
                return moat_error_input(err, EINVAL, "'%s' is not a regular file", cfg);
        if ((uint64_t)st.st_size > JCTX_MAX_INPUT)
                return moat_error_input(err, EINVAL, "%s: too large (%lld bytes, at most 4 MiB)", cfg,
                                        (long long)st.st_size);
        int r = read_fd_all(fd, &text, &len);
        if (r < 0)
                return moat_error_set(err, r, "cannot read '%s'", cfg);
        if ((r = moat_spec_parse(text, len, cfg, &s, err)) < 0)
                return r;
        if (s->root.path[0] != '/') {
                abs_bundle = realpath(bundle, NULL);
                if (!abs_bundle)
                        return moat_error_set(err, errno, "cannot resolve bundle '%s'", bundle);
                char *p = NULL;
                if (asprintf(&p, "%s/%s", abs_bundle, s->root.path) < 0)
                        return moat_error_set(err, ENOMEM, "out of memory");
                free(s->root.path);
                s->root.path = p;
        }
        path_simplify(s->root.path);
        *out = TAKE_PTR(s);
        return 0;
}
