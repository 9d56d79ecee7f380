/* SPDX-License-Identifier: Apache-2.0 */
/* images.json (name -> manifest, with what `ls` shows), lookup by name, digest or id
 * prefix, and prune.  images.json is rewritten through a temp file and rename under
 * the store lock; readers need no lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "image/store-internal.h"

#define INDEX_MAX (64u << 20)

void moat_image_free(struct moat_image *img)
{
        if (!img)
                return;
        free(img->name);
        free(img->manifest_digest);
        free(img->config_digest);
        for (size_t i = 0; i < img->n_layers; i++)
                free(img->layers[i]);
        free(img->layers);
        free(img->created);
        free(img);
}

void moat_images_free(struct moat_image **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                moat_image_free(v[i]);
        free(v);
}

static void image_freep(struct moat_image **p)
{
        moat_image_free(*p);
}
#define _cleanup_image_ _cleanup_(image_freep)

static struct moat_image *image_dup(const struct moat_image *a)
{
        struct moat_image *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->size = a->size;
        if ((a->name && !(b->name = strdup(a->name))) || !(b->manifest_digest = strdup(a->manifest_digest)) ||
            !(b->config_digest = strdup(a->config_digest)) || (a->created && !(b->created = strdup(a->created))))
                goto fail;
        if (a->n_layers && !(b->layers = calloc(a->n_layers, sizeof(char *))))
                goto fail;
        for (size_t i = 0; i < a->n_layers; i++) {
                if (!(b->layers[i] = strdup(a->layers[i])))
                        goto fail;
                b->n_layers = i + 1;
        }
        return b;
fail:
        moat_image_free(b);
        return NULL;
}

/* ---------------------------------------------------------------- images.json */

struct index {
        struct moat_image **v;
        size_t n;
};

static void index_clear(struct index *ix)
{
        moat_images_free(ix->v, ix->n);
        ix->v = NULL;
        ix->n = 0;
}

static int index_push(struct index *ix, struct moat_image *img)
{
        struct moat_image **v = realloc(ix->v, (ix->n + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        ix->v = v;
        v[ix->n++] = img;
        return 0;
}

static const char *jstr(json_t *o, const char *k)
{
        json_t *v = json_object_get(o, k);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static struct moat_image *image_from_json(json_t *e)
{
        const char *name = jstr(e, "name"), *m = jstr(e, "manifest"), *c = jstr(e, "config");
        json_t *layers = json_object_get(e, "layers");
        if (!name || moat_digest_validate(m) < 0 || moat_digest_validate(c) < 0 || !json_is_array(layers))
                return NULL;
        struct moat_image *img = calloc(1, sizeof(*img));
        if (!img)
                return NULL;
        img->size = json_integer_value(json_object_get(e, "size"));
        const char *created = jstr(e, "created");
        if (!(img->name = strdup(name)) || !(img->manifest_digest = strdup(m)) || !(img->config_digest = strdup(c)) ||
            (created && !(img->created = strdup(created))))
                goto fail;
        size_t n = json_array_size(layers);
        if (n && !(img->layers = calloc(n, sizeof(char *))))
                goto fail;
        for (size_t i = 0; i < n; i++) {
                const char *l = json_string_value(json_array_get(layers, i));
                if (moat_digest_validate(l) < 0 || !(img->layers[i] = strdup(l)))
                        goto fail;
                img->n_layers = i + 1;
        }
        return img;
fail:
        moat_image_free(img);
        return NULL;
}

static json_t *image_to_json(const struct moat_image *img)
{
        json_t *layers = json_array();
        for (size_t i = 0; layers && i < img->n_layers; i++)
                json_array_append_new(layers, json_string(img->layers[i]));
        return json_pack("{s:s?, s:s, s:s, s:o, s:I, s:s?}", "name", img->name, "manifest", img->manifest_digest,
                         "config", img->config_digest, "layers", layers ? layers : json_array(), "size",
                         (json_int_t)img->size, "created", img->created);
}

static int index_read(struct moat_store *s, struct index *ix, struct moat_error **err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        *ix = (struct index){ 0 };
        int r = read_file_at(s->rootfd, "images.json", &buf, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return moat_error_set(err, r, "cannot read '%s/images.json'", s->root);
        if (len > INDEX_MAX)
                return moat_error_input(err, -E2BIG, "'%s/images.json' is too large", s->root);
        json_error_t je;
        json_t *root = json_loadb(buf, len, 0, &je);
        if (!root)
                return moat_error_input(err, -EINVAL, "'%s/images.json' is corrupt: line %d: %s", s->root, je.line,
                                        je.text);
        json_t *images = json_object_get(root, "images");
        size_t i;
        json_t *e;
        json_array_foreach (images, i, e) {
                struct moat_image *img = image_from_json(e);
                if (!img) {
                        moat_warn("'%s/images.json': entry %zu is not valid, ignored", s->root, i);
                        continue;
                }
                if (index_push(ix, img) < 0) {
                        moat_image_free(img);
                        json_decref(root);
                        index_clear(ix);
                        return -ENOMEM;
                }
        }
        json_decref(root);
        return 0;
}

/* Call with the store lock held. */
static int index_write(struct moat_store *s, const struct index *ix, struct moat_error **err)
{
        json_t *images = json_array();
        for (size_t i = 0; images && i < ix->n; i++)
                json_array_append_new(images, image_to_json(ix->v[i]));
        json_t *root = json_pack("{s:i, s:o}", "version", 1, "images", images ? images : json_array());
        _cleanup_free_ char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        json_decref(root);
        if (!text)
                return -ENOMEM;
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s/tmp/images.json.XXXXXX", s->root) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot create a temp file in '%s/tmp'", s->root);
        int r = 0;
        if (write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0 || fchmod(fd, 0644) < 0 ||
            fsync(fd) < 0)
                r = -errno;
        else if (renameat(AT_FDCWD, tmp, s->rootfd, "images.json") < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return moat_error_set(err, r, "cannot write '%s/images.json'", s->root);
        }
        (void)fsync(s->rootfd);
        return 0;
}

/* ---------------------------------------------------------------- records from blobs */

static int image_from_blobs(struct moat_store *s, const char *manifest_digest, const char *name,
                            struct moat_image **out, struct moat_error **err)
{
        _cleanup_free_ char *mbuf = NULL, *cbuf = NULL;
        size_t mlen = 0, clen = 0;
        int r = moat_store_blob_read(s, manifest_digest, &mbuf, &mlen, err);
        if (r < 0)
                return r;
        struct moat_manifest m = { 0 };
        if ((r = moat_manifest_parse(mbuf, mlen, &m, err)) < 0)
                return moat_error_prefix(err, r, "blob '%s'", manifest_digest);
        struct moat_image_config c = { 0 };
        struct moat_image *img = NULL;
        if ((r = moat_store_blob_read(s, m.config.digest, &cbuf, &clen, err)) < 0)
                goto out;
        if ((r = moat_image_config_parse(cbuf, clen, &c, err)) < 0) {
                moat_error_prefix(err, r, "blob '%s'", m.config.digest);
                goto out;
        }
        if (c.n_diff_ids != m.n_layers) {
                r = moat_error_input(err, -EINVAL, "image '%s': the manifest has %zu layers but the config %zu diff ids",
                                     manifest_digest, m.n_layers, c.n_diff_ids);
                goto out;
        }
        r = -ENOMEM;
        if (!(img = calloc(1, sizeof(*img))))
                goto out;
        if ((name && !(img->name = strdup(name))) || !(img->manifest_digest = strdup(manifest_digest)) ||
            !(img->config_digest = strdup(m.config.digest)) || (c.created && !(img->created = strdup(c.created))))
                goto out;
        if (c.n_diff_ids) {
                img->layers = TAKE_PTR(c.diff_ids);
                img->n_layers = c.n_diff_ids;
                c.n_diff_ids = 0;
        }
        for (size_t i = 0; i < m.n_layers; i++)
                img->size += m.layers[i].size;
        *out = TAKE_PTR(img);
        r = 0;
out:
        moat_image_free(img);
        moat_manifest_clear(&m);
        moat_image_config_clear(&c);
        return r;
}

/* ---------------------------------------------------------------- tag, lookup, list, untag */

static int canonical_name(const char *name, char **out, struct moat_error **err)
{
        struct moat_ref ref;
        int r = moat_ref_parse(name, &ref, err);
        if (r < 0)
                return r;
        *out = moat_ref_string(&ref);
        moat_ref_clear(&ref);
        return *out ? 0 : -ENOMEM;
}

int moat_store_tag(struct moat_store *s, const char *name, const char *manifest_digest, struct moat_error **err)
{
        _cleanup_free_ char *canon = NULL;
        int r = canonical_name(name, &canon, err);
        if (r < 0)
                return r;
        if (moat_digest_validate(manifest_digest) < 0)
                return moat_error_input(err, -EINVAL, "'%s' is not a sha256 digest", manifest_digest ? manifest_digest : "");
        _cleanup_image_ struct moat_image *img = NULL;
        if ((r = image_from_blobs(s, manifest_digest, canon, &img, err)) < 0)
                return moat_error_prefix(err, r, "cannot tag '%s'", canon);
        _cleanup_close_ int lock = store_lock(s, err);
        if (lock < 0)
                return lock;
        struct index ix;
        if ((r = index_read(s, &ix, err)) < 0)
                return r;
        bool replaced = false;
        for (size_t i = 0; i < ix.n; i++)
                if (STREQ(ix.v[i]->name, canon)) {
                        if (ix.v[i]->manifest_digest && STREQ(ix.v[i]->manifest_digest, manifest_digest)) {
                                /* already so (a pull of an unchanged image): every field of the
                                 * record derives from the manifest, so there is nothing to rewrite */
                                index_clear(&ix);
                                return 0;
                        }
                        moat_image_free(ix.v[i]);
                        ix.v[i] = TAKE_PTR(img);
                        replaced = true;
                        break;
                }
        if (!replaced && (r = index_push(&ix, img)) < 0) {
                index_clear(&ix);
                return r;
        }
        if (!replaced)
                img = NULL;
        r = index_write(s, &ix, err);
        index_clear(&ix);
        if (r >= 0)
                moat_debug("image store: tagged %s as %s", manifest_digest, canon);
        return r;
}

static bool is_hex(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

int moat_store_lookup(struct moat_store *s, const char *what, struct moat_image **out, struct moat_error **err)
{
        if (!what || !*what)
                return moat_error_input(err, -EINVAL, "no image name given");
        struct index ix;
        int r = index_read(s, &ix, err);
        if (r < 0)
                return r;
        const struct moat_image *found = NULL;
        /* 1. a full digest: the manifest (or config, the image id) */
        if (moat_digest_validate(what) == 0) {
                for (size_t i = 0; i < ix.n && !found; i++)
                        if (STREQ(ix.v[i]->manifest_digest, what) || STREQ(ix.v[i]->config_digest, what))
                                found = ix.v[i];
                if (!found && moat_store_has_blob(s, what)) {
                        index_clear(&ix);
                        return image_from_blobs(s, what, NULL, out, err); /* an untagged manifest */
                }
        }
        /* 2. a name */
        _cleanup_free_ char *canon = NULL;
        struct moat_ref ref = { 0 };
        if (!found && moat_ref_parse(what, &ref, NULL) >= 0) {
                canon = moat_ref_string(&ref);
                for (size_t i = 0; canon && i < ix.n && !found; i++)
                        if (STREQ(ix.v[i]->name, canon))
                                found = ix.v[i];
                if (!found && ref.digest) { /* name@digest: any name of that repository with that manifest */
                        _cleanup_free_ char *prefix = NULL;
                        if (asprintf(&prefix, "%s/%s:", ref.registry, ref.repository) >= 0)
                                for (size_t i = 0; i < ix.n && !found; i++)
                                        if (STREQ(ix.v[i]->manifest_digest, ref.digest) &&
                                            strncmp(ix.v[i]->name, prefix, strlen(prefix)) == 0)
                                                found = ix.v[i];
                }
                moat_ref_clear(&ref);
        }
        /* 3. an id prefix (hex of the config digest) */
        const char *id = strncmp(what, "sha256:", 7) == 0 ? what + 7 : what;
        if (!found && is_hex(id) && strlen(id) <= 64) {
                for (size_t i = 0; i < ix.n; i++) {
                        if (strncmp(ix.v[i]->config_digest + 7, id, strlen(id)) != 0)
                                continue;
                        if (found && !STREQ(found->config_digest, ix.v[i]->config_digest)) {
                                index_clear(&ix);
                                return moat_error_input(err, -EINVAL, "image id '%s' is ambiguous: give more of it",
                                                        what);
                        }
                        if (!found)
                                found = ix.v[i];
                }
        }
        if (!found) {
                index_clear(&ix);
                return moat_error_input(err, -ENOENT, "image '%s' is not in the store '%s'", what, s->root);
        }
        *out = image_dup(found);
        index_clear(&ix);
        return *out ? 0 : -ENOMEM;
}

static int cmp_image(const void *a, const void *b)
{
        return strcmp((*(struct moat_image *const *)a)->name, (*(struct moat_image *const *)b)->name);
}

int moat_store_list(struct moat_store *s, struct moat_image ***out, size_t *n, struct moat_error **err)
{
        struct index ix;
        int r = index_read(s, &ix, err);
        if (r < 0)
                return r;
        if (ix.n)
                qsort(ix.v, ix.n, sizeof(*ix.v), cmp_image);
        *out = ix.v;
        *n = ix.n;
        return 0;
}

int moat_store_untag(struct moat_store *s, const char *name, struct moat_error **err)
{
        if (!name || !*name)
                return moat_error_input(err, -EINVAL, "no image name given");
        _cleanup_free_ char *canon = NULL;
        struct moat_ref ref;
        if (moat_ref_parse(name, &ref, NULL) >= 0) {
                canon = moat_ref_string(&ref);
                moat_ref_clear(&ref);
                if (!canon)
                        return -ENOMEM;
        }
        _cleanup_close_ int lock = store_lock(s, err);
        if (lock < 0)
                return lock;
        struct index ix;
        int r = index_read(s, &ix, err);
        if (r < 0)
                return r;
        /* By name; else every name of the image a digest or id names. */
        _cleanup_free_ char *manifest = NULL;
        bool by_name = false;
        for (size_t i = 0; canon && i < ix.n; i++)
                if (STREQ(ix.v[i]->name, canon))
                        by_name = true;
        if (!by_name) {
                struct moat_image *img = NULL;
                if (moat_store_lookup(s, name, &img, NULL) >= 0 && img->name) {
                        manifest = strdup(img->manifest_digest);
                        moat_image_free(img);
                        if (!manifest) {
                                index_clear(&ix);
                                return -ENOMEM;
                        }
                } else
                        moat_image_free(img);
        }
        size_t kept = 0, removed = 0;
        for (size_t i = 0; i < ix.n; i++) {
                bool drop = by_name ? STREQ(ix.v[i]->name, canon) : manifest && STREQ(ix.v[i]->manifest_digest, manifest);
                if (drop) {
                        moat_debug("image store: untagged %s", ix.v[i]->name);
                        moat_image_free(ix.v[i]);
                        removed++;
                } else
                        ix.v[kept++] = ix.v[i];
        }
        ix.n = kept;
        if (!removed) {
                index_clear(&ix);
                return moat_error_input(err, -ENOENT, "no image named '%s' in the store '%s'", name, s->root);
        }
        r = index_write(s, &ix, err);
        index_clear(&ix);
        return r;
}

/* ---------------------------------------------------------------- prune */

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ref_has(char **v, size_t n, const char *hex)
{
        return n && bsearch(&hex, v, n, sizeof(char *), cmp_str);
}

static int prune_dir(int dfd, bool dirs, char **keep, size_t n_keep, uint64_t *bytes, size_t *items)
{
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        struct dirent *de;
        int ret = 0;
        while ((de = readdir(d))) {
                if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
                        continue;
                if (strlen(de->d_name) == 64 && is_hex(de->d_name) && ref_has(keep, n_keep, de->d_name))
                        continue;
                uint64_t sz = store_du_at(dfd, de->d_name);
                int r = rm_rf_at(dfd, de->d_name);
                if (r < 0) {
                        ret = r;
                        continue;
                }
                moat_debug("image store: pruned %s %s", dirs ? "layer" : "blob", de->d_name);
                *bytes += sz;
                (*items)++;
        }
        return ret;
}

int moat_store_prune(struct moat_store *s, uint64_t *bytes_freed, size_t *items, struct moat_error **err)
{
        uint64_t bytes = 0;
        size_t n_items = 0;
        _cleanup_close_ int lock = store_lock(s, err);
        if (lock < 0)
                return lock;
        struct index ix;
        int r = index_read(s, &ix, err);
        if (r < 0)
                return r;
        _cleanup_strv_ char **keep = NULL;
        for (size_t i = 0; i < ix.n && r >= 0; i++) {
                const struct moat_image *img = ix.v[i];
                if ((r = strv_push(&keep, img->manifest_digest + 7)) < 0 ||
                    (r = strv_push(&keep, img->config_digest + 7)) < 0)
                        break;
                for (size_t j = 0; j < img->n_layers && r >= 0; j++)
                        r = strv_push(&keep, img->layers[j] + 7);
                _cleanup_free_ char *buf = NULL;
                size_t len = 0;
                struct moat_manifest m;
                if (r < 0 || moat_store_blob_read(s, img->manifest_digest, &buf, &len, NULL) < 0 ||
                    moat_manifest_parse(buf, len, &m, NULL) < 0)
                        continue;
                for (size_t j = 0; j < m.n_layers && r >= 0; j++)
                        r = strv_push(&keep, m.layers[j].digest + 7);
                moat_manifest_clear(&m);
        }
        index_clear(&ix);
        if (r < 0)
                return r;
        size_t n_keep = strv_length(keep);
        if (n_keep)
                qsort(keep, n_keep, sizeof(char *), cmp_str);
        if ((r = prune_dir(s->blobsfd, false, keep, n_keep, &bytes, &n_items)) < 0 ||
            (r = prune_dir(s->layersfd, true, keep, n_keep, &bytes, &n_items)) < 0) {
                moat_error_set(err, r, "cannot prune the image store '%s'", s->root);
                goto out;
        }
        store_clean_tmp(s, 0, &bytes, &n_items);
out:
        if (bytes_freed)
                *bytes_freed = bytes;
        if (items)
                *items = n_items;
        return r;
}
