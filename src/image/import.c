/* SPDX-License-Identifier: Apache-2.0 */
/* moat image import: an OCI image layout (a directory or a tar of one) or a
 * docker-archive tar (docker save / podman save: manifest.json with Config, RepoTags,
 * Layers as legacy "<id>/layer.tar" paths or "blobs/sha256/<hex>").
 *
 * Per image: the small documents (index, manifest, config) are read and checked
 * against their digests first.  Then every layer needing work is a job, all run in
 * parallel threads: copy the blob to a store temp file while hashing it (a directory
 * source; a tar is read once for all its blobs beforehand) and unpack the layer into
 * its own temp dir, its diff id checked against the config.  Only when every job
 * succeeded is anything committed (one sync, then the renames), so a corrupted blob
 * leaves nothing in blobs/ or layers/. */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"
#include "image/import-src.h"
#include "image/store-internal.h"

#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"

struct plan_layer {
        char *path;     /* in the source */
        char *digest;   /* of the blob */
        char *diff_id;
        int64_t size;
        char *media_type;
};

struct plan {
        char **names;
        char *manifest;        /* bytes (NULL: generate from the layers, docker-archive) */
        size_t manifest_len;
        char *config;
        size_t config_len;
        char config_digest[72];
        struct plan_layer *layers;
        size_t n_layers;
};

static void plan_clear(struct plan *p)
{
        strv_free(p->names);
        free(p->manifest);
        free(p->config);
        for (size_t i = 0; i < p->n_layers; i++) {
                free(p->layers[i].path);
                free(p->layers[i].digest);
                free(p->layers[i].diff_id);
                free(p->layers[i].media_type);
        }
        free(p->layers);
        memset(p, 0, sizeof(*p));
}

static void digest_of(const void *data, size_t len, char out[72])
{
        struct moat_sha256 *h = moat_sha256_new();
        if (!h) {
                out[0] = '\0';
                return;
        }
        moat_sha256_update(h, data, len);
        moat_sha256_final(h, out);
}

/* "blobs/sha256/<hex>" for a digest. */
static char *blob_path(const char *digest)
{
        char *p = NULL;
        if (moat_digest_validate(digest) < 0)
                return NULL;
        if (asprintf(&p, "blobs/sha256/%s", digest + 7) < 0)
                return NULL;
        return p;
}

/* Reads a blob of the layout by digest and checks it. */
static int read_blob(struct import_src *src, const char *digest, char **data, size_t *len, struct moat_error **err)
{
        _cleanup_free_ char *p = blob_path(digest);
        if (!p)
                return moat_error_input(err, -EINVAL, "'%s': '%s' is not a sha256 digest", src->path, digest);
        int r = import_src_read(src, p, data, len, err);
        if (r < 0)
                return r;
        char got[72];
        digest_of(*data, *len, got);
        if (!STREQ(got, digest)) {
                free(*data);
                *data = NULL;
                return moat_error_input(err, -EBADMSG, "'%s': blob '%s' is corrupt (its content hashes to '%s')", src->path,
                                        digest, got);
        }
        return 0;
}

static const char *media_of_head(const unsigned char *h, size_t n)
{
        if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
                return MT_OCI_LAYER "+gzip";
        if (n >= 4 && h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd)
                return MT_OCI_LAYER "+zstd";
        return MT_OCI_LAYER;
}

/* Name to give: --name wins for a single image; "repo:tag" names are kept; a bare tag
 * (an OCI ref.name like "latest") needs --name for its repository. */
static int add_name(struct plan *p, struct import_src *src, const char *given, const char *found, size_t n_images,
                    struct moat_error **err)
{
        const char *use = given && (n_images == 1 || !found) ? given : found;
        _cleanup_free_ char *joined = NULL;
        if (given && found && n_images > 1 && !strchr(found, '/') && !strchr(found, ':')) {
                struct moat_ref r = { 0 };
                if (moat_ref_parse(given, &r, err) < 0)
                        return -EINVAL;
                free(r.tag);
                r.tag = strdup(found);
                free(r.digest);
                r.digest = NULL;
                joined = moat_ref_string(&r);
                moat_ref_clear(&r);
                use = joined;
        }
        if (!use)
                return moat_error_input(err, -EINVAL, "'%s' names no image: give one with --name", src->path);
        if (!given && !strchr(use, '/') && !strchr(use, ':'))
                return moat_error_input(err, -EINVAL, "'%s': the image is tagged '%s' but names no repository: give --name",
                                        src->path, use);
        struct moat_ref r = { 0 };
        int ret = moat_ref_parse(use, &r, err);
        if (ret < 0)
                return moat_error_prefix(err, ret, "'%s'", src->path);
        char *canon = moat_ref_string(&r);
        moat_ref_clear(&r);
        if (!canon || strv_push(&p->names, canon) < 0) {
                free(canon);
                return -ENOMEM;
        }
        free(canon);
        return 0;
}

static int push_layer(struct plan *p, const char *path, const char *digest, const char *diff_id, int64_t size,
                      const char *mt)
{
        struct plan_layer *nl = realloc(p->layers, (p->n_layers + 1) * sizeof(*nl));
        if (!nl)
                return -ENOMEM;
        p->layers = nl;
        struct plan_layer *l = &p->layers[p->n_layers];
        *l = (struct plan_layer){ strdup(path), strdup(digest), strdup(diff_id), size, strdup(mt) };
        p->n_layers++;
        return l->path && l->digest && l->diff_id && l->media_type ? 0 : -ENOMEM;
}

static int config_load(struct plan *p, struct import_src *src, struct moat_image_config *c, struct moat_error **err)
{
        int r = moat_image_config_parse(p->config, p->config_len, c, err);
        if (r < 0)
                return moat_error_prefix(err, r, "'%s': config '%s'", src->path, p->config_digest);
        return 0;
}

/* ---------------------------------------------------------------- OCI layout */

static int plan_oci_manifest(struct import_src *src, const char *mdigest, struct plan *p, struct moat_error **err)
{
        int r = read_blob(src, mdigest, &p->manifest, &p->manifest_len, err);
        if (r < 0)
                return r;
        struct moat_manifest m = { 0 };
        struct moat_image_config c = { 0 };
        if ((r = moat_manifest_parse(p->manifest, p->manifest_len, &m, err)) < 0) {
                moat_error_prefix(err, r, "'%s': manifest '%s'", src->path, mdigest);
                goto out;
        }
        snprintf(p->config_digest, sizeof(p->config_digest), "%s", m.config.digest ? m.config.digest : "");
        if ((r = read_blob(src, p->config_digest, &p->config, &p->config_len, err)) < 0 ||
            (r = config_load(p, src, &c, err)) < 0)
                goto out;
        if (c.n_diff_ids != m.n_layers) {
                r = moat_error_input(err, -EINVAL, "'%s': manifest '%s' has %zu layers but its config %zu diff ids",
                                     src->path, mdigest, m.n_layers, c.n_diff_ids);
                goto out;
        }
        for (size_t i = 0; i < m.n_layers && r >= 0; i++) {
                _cleanup_free_ char *bp = blob_path(m.layers[i].digest);
                if (!bp) {
                        r = moat_error_input(err, -EINVAL, "'%s': layer digest '%s' is not sha256", src->path,
                                             m.layers[i].digest);
                        break;
                }
                r = push_layer(p, bp, m.layers[i].digest, c.diff_ids[i], m.layers[i].size,
                               m.layers[i].media_type ? m.layers[i].media_type : MT_OCI_LAYER);
        }
out:
        moat_manifest_clear(&m);
        moat_image_config_clear(&c);
        return r;
}

static int plan_oci(struct import_src *src, const char *name, struct plan **out, size_t *n_out, struct moat_error **err)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = import_src_read(src, "index.json", &data, &len, err);
        if (r < 0)
                return r;
        json_error_t je;
        json_t *ix = json_loadb(data, len, 0, &je);
        if (!ix)
                return moat_error_input(err, -EINVAL, "'%s': index.json: %s", src->path, je.text);
        json_t *ms = json_object_get(ix, "manifests");
        size_t n = json_is_array(ms) ? json_array_size(ms) : 0;
        if (n == 0) {
                json_decref(ix);
                return moat_error_input(err, -EINVAL, "'%s': index.json lists no image", src->path);
        }
        struct plan *plans = calloc(n, sizeof(*plans));
        if (!plans) {
                json_decref(ix);
                return -ENOMEM;
        }
        size_t i;
        for (i = 0; i < n; i++) {
                json_t *d = json_array_get(ms, i);
                const char *mt = json_string_value(json_object_get(d, "mediaType"));
                const char *dg = json_string_value(json_object_get(d, "digest"));
                json_t *ann = json_object_get(d, "annotations");
                const char *full = json_string_value(json_object_get(ann, "io.containerd.image.name"));
                const char *tag = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
                if (!dg) {
                        r = moat_error_input(err, -EINVAL, "'%s': index.json entry %zu has no digest", src->path, i);
                        break;
                }
                _cleanup_free_ char *sel = NULL;
                if (mt && moat_media_is_index(mt)) { /* a multi-platform image: this host's */
                        _cleanup_free_ char *ibuf = NULL;
                        size_t ilen;
                        struct moat_index sub = { 0 };
                        const struct moat_descriptor *dsc = NULL;
                        if ((r = read_blob(src, dg, &ibuf, &ilen, err)) < 0)
                                break;
                        if ((r = moat_index_parse(ibuf, ilen, &sub, err)) >= 0 &&
                            (r = moat_index_select(&sub, NULL, NULL, NULL, &dsc, err)) >= 0)
                                sel = strdup(dsc->digest);
                        moat_index_clear(&sub);
                        if (r < 0)
                                break;
                        if (!sel) {
                                r = -ENOMEM;
                                break;
                        }
                }
                if ((r = plan_oci_manifest(src, sel ? sel : dg, &plans[i], err)) < 0 ||
                    (r = add_name(&plans[i], src, name, full ? full : tag, n, err)) < 0)
                        break;
        }
        json_decref(ix);
        if (r < 0) {
                for (size_t j = 0; j < n; j++)
                        plan_clear(&plans[j]);
                free(plans);
                return r;
        }
        *out = plans;
        *n_out = n;
        return 0;
}

/* ---------------------------------------------------------------- docker-archive */

/* "blobs/sha256/<hex>" or "<hex>.json" / "<hex>.tar" / "<hex>/layer.tar": the digest the name promises, if any. */
static bool digest_in_name(const char *path, char out[72])
{
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        if (strncmp(path, "blobs/sha256/", 13) == 0) {
                snprintf(out, 72, "sha256:%s", path + 13);
                return moat_digest_validate(out) == 0;
        }
        if (strlen(b) == 69 && (strcmp(b + 64, ".json") == 0)) {
                snprintf(out, 72, "sha256:%.64s", b);
                return moat_digest_validate(out) == 0;
        }
        return false;
}

static int plan_docker_one(struct import_src *src, json_t *e, const char *name, size_t n_images, struct plan *p,
                           struct moat_error **err)
{
        const char *cpath = json_string_value(json_object_get(e, "Config"));
        json_t *layers = json_object_get(e, "Layers");
        if (!cpath || !json_is_array(layers))
                return moat_error_input(err, -EINVAL, "'%s': manifest.json: an entry without Config or Layers", src->path);
        int r = import_src_read(src, cpath, &p->config, &p->config_len, err);
        if (r < 0)
                return r;
        digest_of(p->config, p->config_len, p->config_digest);
        char want[72];
        if (digest_in_name(cpath, want) && !STREQ(want, p->config_digest))
                return moat_error_input(err, -EBADMSG, "'%s': config '%s' is corrupt (its content hashes to '%s')",
                                        src->path, cpath, p->config_digest);
        struct moat_image_config c = { 0 };
        if ((r = config_load(p, src, &c, err)) < 0)
                return r;
        if (c.n_diff_ids != json_array_size(layers)) {
                r = moat_error_input(err, -EINVAL, "'%s': manifest.json lists %zu layers but the config %zu diff ids",
                                     src->path, json_array_size(layers), c.n_diff_ids);
                goto out;
        }
        for (size_t i = 0; i < c.n_diff_ids && r >= 0; i++) {
                const char *lp = json_string_value(json_array_get(layers, i));
                struct import_entry info;
                if (!lp || (r = import_src_stat(src, lp, &info, err)) < 0) {
                        r = r < 0 ? r : moat_error_input(err, -EINVAL, "'%s': manifest.json: bad layer %zu", src->path, i);
                        break;
                }
                char dg[72];
                if (strncmp(lp, "blobs/sha256/", 13) != 0 || !digest_in_name(lp, dg))
                        snprintf(dg, sizeof(dg), "%s", c.diff_ids[i]); /* a legacy layer.tar: uncompressed */
                const char *mt = STREQ(dg, c.diff_ids[i]) ? MT_OCI_LAYER : media_of_head(info.head, info.headlen);
                r = push_layer(p, lp, dg, c.diff_ids[i], info.size, mt);
        }
        if (r < 0)
                goto out;
        json_t *tags = json_object_get(e, "RepoTags");
        size_t nt = json_is_array(tags) ? json_array_size(tags) : 0;
        if (name || nt == 0)
                r = add_name(p, src, name, NULL, 1, err);
        for (size_t i = 0; !name && i < nt && r >= 0; i++)
                r = add_name(p, src, NULL, json_string_value(json_array_get(tags, i)), n_images, err);
out:
        moat_image_config_clear(&c);
        return r;
}

static int plan_docker(struct import_src *src, const char *name, struct plan **out, size_t *n_out,
                       struct moat_error **err)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = import_src_read(src, "manifest.json", &data, &len, err);
        if (r < 0)
                return r;
        json_error_t je;
        json_t *m = json_loadb(data, len, 0, &je);
        if (!m)
                return moat_error_input(err, -EINVAL, "'%s': manifest.json: %s", src->path, je.text);
        size_t n = json_is_array(m) ? json_array_size(m) : 0;
        if (n == 0) {
                json_decref(m);
                return moat_error_input(err, -EINVAL, "'%s': manifest.json lists no image", src->path);
        }
        if (name && n > 1) {
                json_decref(m);
                return moat_error_input(err, -EINVAL, "'%s' holds %zu images: --name needs exactly one", src->path, n);
        }
        struct plan *plans = calloc(n, sizeof(*plans));
        if (!plans) {
                json_decref(m);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && r >= 0; i++)
                r = plan_docker_one(src, json_array_get(m, i), name, n, &plans[i], err);
        json_decref(m);
        if (r < 0) {
                for (size_t j = 0; j < n; j++)
                        plan_clear(&plans[j]);
                free(plans);
                return r;
        }
        *out = plans;
        *n_out = n;
        return 0;
}

static char *docker_manifest(const struct plan *p)
{
        json_t *ls = json_array();
        for (size_t i = 0; i < p->n_layers; i++)
                json_array_append_new(ls, json_pack("{s:s, s:s, s:I}", "mediaType", p->layers[i].media_type, "digest",
                                                    p->layers[i].digest, "size", (json_int_t)p->layers[i].size));
        json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType", MOAT_MT_OCI_MANIFEST,
                              "config", "mediaType", MT_OCI_CONFIG, "digest", p->config_digest, "size",
                              (json_int_t)p->config_len, "layers", ls);
        char *s = m ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);
        return s;
}

/* ---------------------------------------------------------------- store */

/* One layer of the plan that needs work: its blob (dir sources: copied and verified by the
 * worker; tar sources: fetched before, in one pass over the tar) and/or its unpacked tree. */
struct job {
        struct import_src *src;
        struct moat_store *s;
        const struct plan_layer *l;
        struct moat_blob_writer *w; /* the blob to copy and verify here; NULL if not needed or fetched */
        char *tmpdir;               /* the layer to unpack; NULL if in the store already */
        int dirfd;
        int ret, copy_ret;                /* of the unpack, of the copy */
        struct moat_error *err, *copy_err;
};

struct jobs {
        struct job *v;
        size_t n;
        size_t next; /* the next task to take (see worker), under lock */
        pthread_mutex_t lock;
};

/* The blob of a directory source: copied to its store temp file, hashed on the way, verified. */
static int job_copy(struct job *j)
{
        char got[72] = "";
        int r = import_src_copy(j->src, j->l->path, j->w, &j->copy_err);
        if (r < 0)
                return r;
        r = store_blob_writer_verify(j->w, got, NULL);
        if (r == -EBADMSG)
                return moat_error_input(&j->copy_err, -EBADMSG, "'%s': blob '%s' is corrupt (its content hashes to '%s')",
                                        j->src->path, j->l->path, got);
        if (r < 0)
                return moat_error_set(&j->copy_err, r, "'%s': blob '%s'", j->src->path, j->l->path);
        return 0;
}

/* The layer unpacked into its temp dir and its diff id checked.  A directory source is read
 * again (from the page cache, at the same time as the copy runs in another thread) rather
 * than the temp copy: what is unpacked is checked against the config's diff id all the same,
 * whatever was read; a tar source's blobs were committed to the store beforehand. */
static int job_unpack(struct job *j)
{
        int r;
        _cleanup_close_ int fd = -EBADF;
        if (j->src->dirfd >= 0)
                fd = import_src_open_file(j->src, j->l->path, &j->err);
        else if ((r = moat_store_blob_open(j->s, j->l->digest, &fd, &j->err)) < 0)
                return r;
        if (fd < 0)
                return fd;
        char diff[72] = "";
        if ((r = moat_layer_unpack(fd, j->dirfd, diff, &j->err)) < 0)
                return moat_error_prefix(&j->err, r, "'%s': layer '%s'", j->src->path, j->l->digest);
        if (!STREQ(diff, j->l->diff_id))
                return moat_error_input(&j->err, -EBADMSG, "'%s': layer '%s' unpacks to '%s', not the config's diff id '%s'",
                                        j->src->path, j->l->digest, diff, j->l->diff_id);
        return 0;
}

/* Tasks 0..n-1 unpack job i (the long ones, first), n..2n-1 copy the blob of job i-n. */
static void *worker(void *arg)
{
        struct jobs *js = arg;
        for (;;) {
                pthread_mutex_lock(&js->lock);
                size_t t = js->next < 2 * js->n ? js->next++ : 2 * js->n;
                pthread_mutex_unlock(&js->lock);
                if (t >= 2 * js->n)
                        return NULL;
                struct job *j = &js->v[t % js->n];
                bool copy = t >= js->n;
                if (copy ? !j->w : !j->tmpdir)
                        continue;
                int64_t t0 = now_ns();
                if (copy)
                        j->copy_ret = job_copy(j);
                else
                        j->ret = job_unpack(j);
                moat_debug("image import: layer %s %s in %.0f ms", j->l->digest, copy ? "copied" : "unpacked",
                           (double)(now_ns() - t0) / 1e6);
        }
}

/* Runs the tasks on up to max(nproc, 4) threads (the layers are independent until stacked: each
 * has its own temp dir), the calling thread one of them. */
static void jobs_run(struct jobs *js)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t nt = (size_t)(cpus > 4 ? cpus : 4);
        if (nt > 2 * js->n)
                nt = 2 * js->n;
        pthread_t *t = calloc(nt ? nt : 1, sizeof(*t));
        size_t started = 0;
        for (size_t i = 1; t && i < nt; i++, started++)
                if (pthread_create(&t[started], NULL, worker, js) != 0)
                        break;
        worker(js);
        for (size_t i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        free(t);
}

static int import_plan(struct moat_store *s, struct import_src *src, struct plan *p, struct moat_error **err)
{
        /* 1. what needs doing: blobs missing (each digest once), layers not yet unpacked */
        struct jobs js = { .v = calloc(p->n_layers + 1, sizeof(struct job)) };
        struct import_blob *blobs = calloc(p->n_layers + 1, sizeof(*blobs));
        size_t nb = 0;
        int r = js.v && blobs ? 0 : -ENOMEM;
        for (size_t i = 0; i < p->n_layers && r >= 0; i++) {
                const struct plan_layer *l = &p->layers[i];
                bool dup = false, has_layer = moat_store_has_layer(s, l->diff_id);
                for (size_t j = 0; j < js.n; j++) {
                        dup |= STREQ(js.v[j].l->digest, l->digest);
                        has_layer |= js.v[j].tmpdir && STREQ(js.v[j].l->diff_id, l->diff_id); /* unpacked once */
                }
                if (dup || (moat_store_has_blob(s, l->digest) && has_layer))
                        continue;
                struct job *j = &js.v[js.n++];
                *j = (struct job){ .src = src, .s = s, .l = l, .dirfd = -EBADF };
                if (!moat_store_has_blob(s, l->digest)) {
                        if (src->dirfd < 0) {
                                blobs[nb].path = l->path;
                                blobs[nb].digest = l->digest;
                                nb++;
                        } else {
                                r = moat_blob_writer_new(s, l->digest, &j->w, err);
                                if (r >= 0 && moat_blob_writer_offset(j->w) > 0) { /* an earlier pull's partial one */
                                        moat_blob_writer_free(j->w, true);
                                        j->w = NULL;
                                        r = moat_blob_writer_new(s, l->digest, &j->w, err);
                                }
                        }
                }
                if (r >= 0 && !has_layer && (r = moat_store_layer_begin(s, &j->tmpdir, err)) >= 0 &&
                    (j->dirfd = open(j->tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                        r = moat_error_set(err, errno, "cannot open '%s'", j->tmpdir);
        }
        /* a tar is read in one pass for all its blobs, committed all or none, before the unpacking */
        if (r >= 0 && nb > 0)
                r = import_src_fetch(s, src, blobs, nb, err);
        free(blobs);

        /* 2. copy, verify and unpack every layer at once */
        if (r >= 0 && js.n > 0) {
                pthread_mutex_init(&js.lock, NULL);
                jobs_run(&js);
                pthread_mutex_destroy(&js.lock);
                /* the first failure in layer order; a corrupt blob rather than what it unpacks to */
                for (size_t i = 0; i < js.n && r >= 0; i++) {
                        bool c = js.v[i].copy_ret < 0;
                        if (c || js.v[i].ret < 0) {
                                r = c ? js.v[i].copy_ret : js.v[i].ret;
                                struct moat_error **e = c ? &js.v[i].copy_err : &js.v[i].err;
                                if (err && !*err)
                                        *err = TAKE_PTR(*e);
                        }
                }
        }

        /* 3. Durability, once: the renames below are what make blobs and layers trusted, so all
         * their content must be on disk before the first one; one syncfs of the store's file
         * system does it for every file of every layer (a syncfs per layer, as the single-layer
         * moat_store_layer_commit does, wrote the same data back in 5 rounds of waiting). */
        if (r >= 0 && js.n > 0)
                r = store_sync(s, err);
        for (size_t i = 0; i < js.n && r >= 0; i++)
                if (js.v[i].w)
                        r = store_blob_writer_commit(js.v[i].w, false, err);

        /* 4. config and manifest */
        char mdigest[72];
        if (r >= 0) {
                char got[72];
                r = moat_store_put_blob(s, p->config, p->config_len, got, err);
        }
        if (r >= 0 && !p->manifest) {
                if (!(p->manifest = docker_manifest(p)))
                        r = -ENOMEM;
                else
                        p->manifest_len = strlen(p->manifest);
        }
        if (r >= 0)
                r = moat_store_put_blob(s, p->manifest, p->manifest_len, mdigest, err);

        /* 5. layers */
        for (size_t i = 0; i < js.n && r >= 0; i++)
                if (js.v[i].tmpdir) {
                        closep(&js.v[i].dirfd);
                        if ((r = store_layer_commit(s, js.v[i].tmpdir, js.v[i].l->diff_id, false, err)) >= 0)
                                free(TAKE_PTR(js.v[i].tmpdir));
                }
        if (r >= 0 && js.n > 0)
                (void)fsync(s->blobsfd), (void)fsync(s->layersfd);

        for (size_t i = 0; i < js.n; i++) {
                struct job *j = &js.v[i];
                if (j->w)
                        moat_blob_writer_free(j->w, true);
                closep(&j->dirfd);
                if (j->tmpdir)
                        moat_store_layer_abort(s, j->tmpdir);
                free(j->tmpdir);
                moat_error_free(j->err);
                moat_error_free(j->copy_err);
        }
        free(js.v);
        if (r < 0)
                return r;

        /* 6. names */
        for (size_t i = 0; p->names && p->names[i]; i++)
                if ((r = moat_store_tag(s, p->names[i], mdigest, err)) < 0)
                        return r;
        return 0;
}

int moat_image_import(struct moat_store *s, const char *path, const char *name, char ***names, struct moat_error **err)
{
        _cleanup_(import_src_freep) struct import_src *src = NULL;
        int r = import_src_open(path, &src, err);
        if (r < 0)
                return r;
        struct plan *plans = NULL;
        size_t n = 0;
        if (import_src_has(src, "index.json") && import_src_has(src, "oci-layout"))
                r = plan_oci(src, name, &plans, &n, err);
        else if (import_src_has(src, "manifest.json"))
                r = plan_docker(src, name, &plans, &n, err);
        else
                r = moat_error_input(err, -EINVAL,
                                     "'%s' is neither an OCI image layout (index.json, oci-layout) nor a docker archive "
                                     "(manifest.json)",
                                     path);
        if (r < 0)
                return r;
        _cleanup_strv_ char **all = NULL;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = import_plan(s, src, &plans[i], err);
                for (size_t j = 0; r >= 0 && plans[i].names && plans[i].names[j]; j++)
                        if (strv_push(&all, plans[i].names[j]) < 0)
                                r = -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                plan_clear(&plans[i]);
        free(plans);
        if (r < 0)
                return r;
        if (names)
                *names = TAKE_PTR(all);
        return 0;
}
