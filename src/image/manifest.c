/* SPDX-License-Identifier: Apache-2.0 */
/* OCI and Docker v2 schema 2 manifests, image indexes / manifest lists, and image
 * configs.  Strict: every error names the field ("layers[2].digest"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "image/image.h"

#define DOC_MAX (4u << 20)     /* manifests, indexes and configs */
#define MAX_LAYERS 1024
#define MAX_MANIFESTS 4096
#define MAX_STRV 65536

static const char *const layer_types[] = {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
        NULL,
};
static const char *const config_types[] = {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
        NULL,
};
static const char *const manifest_types[] = {
        MOAT_MT_OCI_MANIFEST, MOAT_MT_DOCKER_MANIFEST, MOAT_MT_OCI_INDEX, MOAT_MT_DOCKER_LIST, NULL,
};

static bool in_list(const char *const *l, const char *s)
{
        for (; *l; l++)
                if (STREQ(*l, s))
                        return true;
        return false;
}

bool moat_media_is_index(const char *media_type)
{
        return media_type && (STREQ(media_type, MOAT_MT_OCI_INDEX) || STREQ(media_type, MOAT_MT_DOCKER_LIST));
}

static int load(const char *json, size_t len, const char *what, json_t **out, struct moat_error **err)
{
        if (!json)
                return moat_error_input(err, -EINVAL, "%s: no document", what);
        if (len > DOC_MAX)
                return moat_error_input(err, -E2BIG, "%s: %zu bytes is over the limit of %u", what, len, DOC_MAX);
        json_error_t je;
        json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
        if (!root)
                return moat_error_input(err, -EINVAL, "%s: invalid JSON at line %d column %d: %s", what, je.line,
                                        je.column, je.text);
        if (!json_is_object(root)) {
                json_decref(root);
                return moat_error_input(err, -EINVAL, "%s: not a JSON object", what);
        }
        *out = root;
        return 0;
}

/* Optional string member; -EINVAL if present and not a string. */
static int get_str(json_t *obj, const char *key, const char *field, bool required, char **out,
                   struct moat_error **err)
{
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v)) {
                if (required)
                        return moat_error_input(err, -EINVAL, "'%s' is missing", field);
                return 0;
        }
        if (!json_is_string(v))
                return moat_error_input(err, -EINVAL, "'%s' must be a string", field);
        if (memchr(json_string_value(v), '\0', json_string_length(v)))
                return moat_error_input(err, -EINVAL, "'%s' contains a NUL byte", field);
        if (!(*out = strdup(json_string_value(v))))
                return -ENOMEM;
        return 0;
}

static int check_schema(json_t *root, struct moat_error **err)
{
        json_t *v = json_object_get(root, "schemaVersion");
        if (!v)
                return moat_error_input(err, -EINVAL, "'schemaVersion' is missing");
        if (!json_is_integer(v) || json_integer_value(v) != 2)
                return moat_error_input(err, -EINVAL, "'schemaVersion' must be 2");
        return 0;
}

static void descriptor_clear(struct moat_descriptor *d)
{
        free(d->media_type);
        free(d->digest);
        free(d->os);
        free(d->arch);
        free(d->variant);
        *d = (struct moat_descriptor){ 0 };
}

/* kinds: the allowed media types (NULL: any string) */
static int descriptor_parse(json_t *v, const char *field, const char *const *kinds, bool platform,
                            struct moat_descriptor *d, struct moat_error **err)
{
        char f[96];
        int r;
        if (!json_is_object(v))
                return moat_error_input(err, -EINVAL, "'%s' must be an object", field);
        snprintf(f, sizeof(f), "%s.mediaType", field);
        if ((r = get_str(v, "mediaType", f, true, &d->media_type, err)) < 0)
                return r;
        if (kinds && !in_list(kinds, d->media_type))
                return moat_error_input(err, -EINVAL, "'%s': unsupported media type '%s'", f, d->media_type);
        snprintf(f, sizeof(f), "%s.digest", field);
        if ((r = get_str(v, "digest", f, true, &d->digest, err)) < 0)
                return r;
        if (moat_digest_validate(d->digest) < 0)
                return moat_error_input(err, -EINVAL, "'%s': '%s' is not a sha256 digest", f, d->digest);
        json_t *sz = json_object_get(v, "size");
        if (!sz)
                return moat_error_input(err, -EINVAL, "'%s.size' is missing", field);
        if (!json_is_integer(sz) || json_integer_value(sz) < 0)
                return moat_error_input(err, -EINVAL, "'%s.size' must be a non-negative integer", field);
        d->size = json_integer_value(sz);
        if (platform) {
                json_t *p = json_object_get(v, "platform");
                if (p && !json_is_null(p)) {
                        if (!json_is_object(p))
                                return moat_error_input(err, -EINVAL, "'%s.platform' must be an object", field);
                        snprintf(f, sizeof(f), "%s.platform.os", field);
                        if ((r = get_str(p, "os", f, true, &d->os, err)) < 0)
                                return r;
                        snprintf(f, sizeof(f), "%s.platform.architecture", field);
                        if ((r = get_str(p, "architecture", f, true, &d->arch, err)) < 0)
                                return r;
                        snprintf(f, sizeof(f), "%s.platform.variant", field);
                        if ((r = get_str(p, "variant", f, false, &d->variant, err)) < 0)
                                return r;
                }
        }
        return 0;
}

void moat_manifest_clear(struct moat_manifest *m)
{
        if (!m)
                return;
        descriptor_clear(&m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                descriptor_clear(&m->layers[i]);
        free(m->layers);
        *m = (struct moat_manifest){ 0 };
}

void moat_index_clear(struct moat_index *ix)
{
        if (!ix)
                return;
        for (size_t i = 0; i < ix->n_manifests; i++)
                descriptor_clear(&ix->manifests[i]);
        free(ix->manifests);
        *ix = (struct moat_index){ 0 };
}

static int parse_manifest(json_t *root, struct moat_manifest *m, struct moat_error **err)
{
        int r = check_schema(root, err);
        if (r < 0)
                return r;
        json_t *mt = json_object_get(root, "mediaType");
        if (mt) {
                if (!json_is_string(mt))
                        return moat_error_input(err, -EINVAL, "'mediaType' must be a string");
                const char *s = json_string_value(mt);
                if (moat_media_is_index(s))
                        return moat_error_input(err, -EINVAL, "'mediaType': '%s' is an index, not a manifest", s);
                if (!STREQ(s, MOAT_MT_OCI_MANIFEST) && !STREQ(s, MOAT_MT_DOCKER_MANIFEST))
                        return moat_error_input(err, -EINVAL, "'mediaType': unsupported manifest type '%s'", s);
        } else if (json_object_get(root, "manifests"))
                return moat_error_input(err, -EINVAL, "'manifests': this is an index, not a manifest");
        json_t *cfg = json_object_get(root, "config");
        if (!cfg)
                return moat_error_input(err, -EINVAL, "'config' is missing");
        if ((r = descriptor_parse(cfg, "config", config_types, false, &m->config, err)) < 0)
                return r;
        json_t *layers = json_object_get(root, "layers");
        if (!layers)
                return moat_error_input(err, -EINVAL, "'layers' is missing");
        if (!json_is_array(layers))
                return moat_error_input(err, -EINVAL, "'layers' must be an array");
        size_t n = json_array_size(layers);
        if (n > MAX_LAYERS)
                return moat_error_input(err, -E2BIG, "'layers': %zu layers is over the limit of %d", n, MAX_LAYERS);
        if (n && !(m->layers = calloc(n, sizeof(*m->layers))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char f[32];
                snprintf(f, sizeof(f), "layers[%zu]", i);
                m->n_layers = i + 1;
                if ((r = descriptor_parse(json_array_get(layers, i), f, layer_types, false, &m->layers[i], err)) < 0)
                        return r;
        }
        return 0;
}

int moat_manifest_parse(const char *json, size_t len, struct moat_manifest *out, struct moat_error **err)
{
        *out = (struct moat_manifest){ 0 };
        json_t *root = NULL;
        int r = load(json, len, "manifest", &root, err);
        if (r < 0)
                return r;
        r = parse_manifest(root, out, err);
        json_decref(root);
        if (r < 0) {
                moat_error_prefix(err, r, "manifest");
                moat_manifest_clear(out);
        }
        return r;
}

static int parse_index(json_t *root, struct moat_index *ix, struct moat_error **err)
{
        int r = check_schema(root, err);
        if (r < 0)
                return r;
        json_t *mt = json_object_get(root, "mediaType");
        if (mt) {
                if (!json_is_string(mt))
                        return moat_error_input(err, -EINVAL, "'mediaType' must be a string");
                if (!moat_media_is_index(json_string_value(mt)))
                        return moat_error_input(err, -EINVAL, "'mediaType': '%s' is not an index",
                                                json_string_value(mt));
        }
        json_t *ms = json_object_get(root, "manifests");
        if (!ms)
                return moat_error_input(err, -EINVAL, "'manifests' is missing");
        if (!json_is_array(ms))
                return moat_error_input(err, -EINVAL, "'manifests' must be an array");
        size_t n = json_array_size(ms);
        if (n > MAX_MANIFESTS)
                return moat_error_input(err, -E2BIG, "'manifests': %zu entries is over the limit of %d", n,
                                        MAX_MANIFESTS);
        if (n && !(ix->manifests = calloc(n, sizeof(*ix->manifests))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char f[32];
                snprintf(f, sizeof(f), "manifests[%zu]", i);
                ix->n_manifests = i + 1;
                if ((r = descriptor_parse(json_array_get(ms, i), f, manifest_types, true, &ix->manifests[i], err)) <
                    0)
                        return r;
        }
        return 0;
}

int moat_index_parse(const char *json, size_t len, struct moat_index *out, struct moat_error **err)
{
        *out = (struct moat_index){ 0 };
        json_t *root = NULL;
        int r = load(json, len, "index", &root, err);
        if (r < 0)
                return r;
        r = parse_index(root, out, err);
        json_decref(root);
        if (r < 0) {
                moat_error_prefix(err, r, "index");
                moat_index_clear(out);
        }
        return r;
}

void moat_image_config_clear(struct moat_image_config *c)
{
        if (!c)
                return;
        free(c->os);
        free(c->arch);
        strv_free(c->env);
        strv_free(c->entrypoint);
        strv_free(c->cmd);
        free(c->user);
        free(c->workdir);
        for (size_t i = 0; i < c->n_diff_ids; i++)
                free(c->diff_ids[i]);
        free(c->diff_ids);
        free(c->created);
        json_decref(c->raw);
        *c = (struct moat_image_config){ 0 };
}

/* A string array or null: NULL stays NULL (not given). */
static int get_strv(json_t *obj, const char *key, const char *field, char ***out, struct moat_error **err)
{
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return moat_error_input(err, -EINVAL, "'%s' must be an array of strings", field);
        size_t n = json_array_size(v);
        if (n > MAX_STRV)
                return moat_error_input(err, -E2BIG, "'%s': %zu entries is over the limit", field, n);
        char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        *out = l;
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(v, i);
                if (!json_is_string(e))
                        return moat_error_input(err, -EINVAL, "'%s[%zu]' must be a string", field, i);
                if (memchr(json_string_value(e), '\0', json_string_length(e)))
                        return moat_error_input(err, -EINVAL, "'%s[%zu]' contains a NUL byte", field, i);
                if (!(l[i] = strdup(json_string_value(e))))
                        return -ENOMEM;
        }
        return 0;
}

static int parse_config(json_t *root, struct moat_image_config *c, struct moat_error **err)
{
        int r;
        if ((r = get_str(root, "os", "os", true, &c->os, err)) < 0 ||
            (r = get_str(root, "architecture", "architecture", true, &c->arch, err)) < 0 ||
            (r = get_str(root, "created", "created", false, &c->created, err)) < 0)
                return r;
        json_t *cfg = json_object_get(root, "config");
        if (cfg && !json_is_null(cfg)) {
                if (!json_is_object(cfg))
                        return moat_error_input(err, -EINVAL, "'config' must be an object");
                if ((r = get_strv(cfg, "Env", "config.Env", &c->env, err)) < 0 ||
                    (r = get_strv(cfg, "Entrypoint", "config.Entrypoint", &c->entrypoint, err)) < 0 ||
                    (r = get_strv(cfg, "Cmd", "config.Cmd", &c->cmd, err)) < 0 ||
                    (r = get_str(cfg, "User", "config.User", false, &c->user, err)) < 0 ||
                    (r = get_str(cfg, "WorkingDir", "config.WorkingDir", false, &c->workdir, err)) < 0)
                        return r;
        }
        json_t *rootfs = json_object_get(root, "rootfs");
        if (!rootfs)
                return moat_error_input(err, -EINVAL, "'rootfs' is missing");
        if (!json_is_object(rootfs))
                return moat_error_input(err, -EINVAL, "'rootfs' must be an object");
        json_t *type = json_object_get(rootfs, "type");
        if (!json_is_string(type) || !STREQ(json_string_value(type), "layers"))
                return moat_error_input(err, -EINVAL, "'rootfs.type' must be \"layers\"");
        json_t *ids = json_object_get(rootfs, "diff_ids");
        if (!ids)
                return moat_error_input(err, -EINVAL, "'rootfs.diff_ids' is missing");
        if (!json_is_array(ids))
                return moat_error_input(err, -EINVAL, "'rootfs.diff_ids' must be an array");
        size_t n = json_array_size(ids);
        if (n > MAX_LAYERS)
                return moat_error_input(err, -E2BIG, "'rootfs.diff_ids': %zu layers is over the limit of %d", n,
                                        MAX_LAYERS);
        if (n && !(c->diff_ids = calloc(n, sizeof(char *))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(ids, i);
                if (!json_is_string(e) || moat_digest_validate(json_string_value(e)) < 0)
                        return moat_error_input(err, -EINVAL, "'rootfs.diff_ids[%zu]' must be a sha256 digest", i);
                if (!(c->diff_ids[i] = strdup(json_string_value(e))))
                        return -ENOMEM;
                c->n_diff_ids = i + 1;
        }
        return 0;
}

int moat_image_config_parse(const char *json, size_t len, struct moat_image_config *out, struct moat_error **err)
{
        *out = (struct moat_image_config){ 0 };
        json_t *root = NULL;
        int r = load(json, len, "image config", &root, err);
        if (r < 0)
                return r;
        r = parse_config(root, out, err);
        if (r < 0) {
                json_decref(root);
                moat_error_prefix(err, r, "image config");
                moat_image_config_clear(out);
                return r;
        }
        out->raw = root;
        return 0;
}

static const char *host_arch(void)
{
        static char buf[65];
        struct utsname u;
        if (uname(&u) < 0)
                return "amd64";
        static const struct {
                const char *k, *go;
        } map[] = {
                { "x86_64", "amd64" }, { "aarch64", "arm64" }, { "armv7l", "arm" },   { "armv6l", "arm" },
                { "i686", "386" },     { "i386", "386" },     { "ppc64le", "ppc64le" }, { "s390x", "s390x" },
                { "riscv64", "riscv64" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (STREQ(u.machine, map[i].k))
                        return map[i].go;
        snprintf(buf, sizeof(buf), "%s", u.machine);
        return buf;
}

int moat_index_select(const struct moat_index *ix, const char *os, const char *arch, const char *variant,
                      const struct moat_descriptor **out, struct moat_error **err)
{
        if (!os || !*os)
                os = "linux";
        if (!arch || !*arch)
                arch = host_arch();
        if (variant && !*variant)
                variant = NULL;
        const struct moat_descriptor *best = NULL, *no_platform = NULL;
        size_t n_no_platform = 0;
        int best_score = -1;
        for (size_t i = 0; i < ix->n_manifests; i++) {
                const struct moat_descriptor *d = &ix->manifests[i];
                if (moat_media_is_index(d->media_type))
                        continue;
                if (!d->os || !d->arch) {
                        n_no_platform++;
                        no_platform = d;
                        continue;
                }
                if (!STREQ(d->os, os) || !STREQ(d->arch, arch))
                        continue;
                int score;
                if (variant)
                        score = d->variant && STREQ(d->variant, variant) ? 2 : -1;
                else /* no variant asked: an entry without one, then arm64's v8, then any */
                        score = !d->variant ? 2 : STREQ(d->variant, "v8") ? 1 : 0;
                if (score > best_score) {
                        best_score = score;
                        best = d;
                }
        }
        if (best) {
                *out = best;
                return 0;
        }
        if (n_no_platform == 1) {
                *out = no_platform;
                return 0;
        }
        /* Name what there is. */
        char have[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < ix->n_manifests && used < sizeof(have) - 1; i++) {
                const struct moat_descriptor *d = &ix->manifests[i];
                int w = snprintf(have + used, sizeof(have) - used, "%s%s/%s%s%s", used ? ", " : "",
                                 d->os ? d->os : "?", d->arch ? d->arch : "?", d->variant ? "/" : "",
                                 d->variant ? d->variant : "");
                if (w < 0)
                        break;
                used += (size_t)w;
                if (used >= sizeof(have))
                        used = sizeof(have) - 1;
        }
        return moat_error_input(err, -ENOENT, "no manifest for platform '%s/%s%s%s' in the index (it has: %s)", os,
                                arch, variant ? "/" : "", variant ? variant : "", used ? have : "nothing");
}
