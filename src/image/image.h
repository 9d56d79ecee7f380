/* SPDX-License-Identifier: Apache-2.0 */
/* Images: references, digests, the content-addressed store, layer unpacking,
 * import, pull, and the root filesystem of a container made from an image.
 * One header for the module's public interface; each .c file owns one part. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

/* ---------------------------------------------------------------- ref.c */
/* A reference as users write it: "busybox", "postgres:16",
 * "registry.local:5000/team/api@sha256:...", "localhost/x:1" (docker/distribution
 * reference grammar; "docker.io" and "library/" are the defaults). */
struct moat_ref {
        char *registry;   /* "docker.io", "localhost:5000", "registry.local:5000" */
        char *repository; /* "library/busybox", "team/api" */
        char *tag;        /* "latest" when neither tag nor digest is given; NULL with a digest only */
        char *digest;     /* "sha256:<64 hex>" or NULL */
};
int moat_ref_parse(const char *s, struct moat_ref *out, struct moat_error **err);
char *moat_ref_string(const struct moat_ref *r); /* canonical: "docker.io/library/busybox:latest" */
void moat_ref_clear(struct moat_ref *r);

/* ---------------------------------------------------------------- digest.c (OpenSSL libcrypto) */
struct moat_sha256; /* streaming */
struct moat_sha256 *moat_sha256_new(void);
void moat_sha256_update(struct moat_sha256 *h, const void *data, size_t len);
void moat_sha256_final(struct moat_sha256 *h, char out[72]); /* "sha256:<hex>", frees h */
int moat_digest_validate(const char *digest); /* "sha256:" + 64 lowercase hex; -EINVAL otherwise */
int moat_digest_file(int fd, char out[72]);

/* ---------------------------------------------------------------- manifest.c */
#define MOAT_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MOAT_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MOAT_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MOAT_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

struct moat_descriptor {
        char *media_type;
        char *digest;
        int64_t size;
        char *os, *arch, *variant; /* platform (index entries) */
};
struct moat_manifest {
        struct moat_descriptor config;
        struct moat_descriptor *layers;
        size_t n_layers;
};
struct moat_index {
        struct moat_descriptor *manifests;
        size_t n_manifests;
};
/* The parts of an image config a container needs. */
struct moat_image_config {
        char *os, *arch;
        char **env, **entrypoint, **cmd;
        char *user, *workdir;
        char **diff_ids; size_t n_diff_ids;
        char *created;
        json_t *raw; /* the whole document, for `inspect` */
};
bool moat_media_is_index(const char *media_type);
int moat_manifest_parse(const char *json, size_t len, struct moat_manifest *out, struct moat_error **err);
int moat_index_parse(const char *json, size_t len, struct moat_index *out, struct moat_error **err);
int moat_image_config_parse(const char *json, size_t len, struct moat_image_config *out, struct moat_error **err);
/* Picks the entry for os/arch (default: this host's, "linux"/"amd64"); -ENOENT names what is there. */
int moat_index_select(const struct moat_index *ix, const char *os, const char *arch, const char *variant,
                      const struct moat_descriptor **out, struct moat_error **err);
void moat_manifest_clear(struct moat_manifest *m);
void moat_index_clear(struct moat_index *ix);
void moat_image_config_clear(struct moat_image_config *c);

/* ---------------------------------------------------------------- store.c */
/* Under root (default /var/lib/moat, MOAT_STORE or --store):
 *   blobs/sha256/<hex>        verified content; written to tmp/ then renamed
 *   layers/sha256/<hex>/      an unpacked layer, keyed by its diff id (uncompressed digest)
 *   tmp/                      work in progress; anything here at open is garbage
 *   images.json               name -> manifest digest, rewritten atomically under lock
 *   lock                      flock: images.json updates and prune
 * Nothing in blobs/ or layers/ is ever half-written: a crash leaves only tmp/ debris. */
struct moat_store;
int moat_store_open(const char *root, struct moat_store **out, struct moat_error **err);
void moat_store_close(struct moat_store *s);
const char *moat_store_root(const struct moat_store *s);
bool moat_store_has_blob(struct moat_store *s, const char *digest);
int moat_store_blob_open(struct moat_store *s, const char *digest, int *fd, struct moat_error **err);
int moat_store_blob_read(struct moat_store *s, const char *digest, char **data, size_t *len,
                         struct moat_error **err); /* small blobs: manifests, configs (<= 4 MiB) */

struct moat_blob_writer; /* a temp file + running sha256 */
int moat_blob_writer_new(struct moat_store *s, const char *expected_digest, struct moat_blob_writer **out,
                         struct moat_error **err);
int moat_blob_writer_write(struct moat_blob_writer *w, const void *data, size_t len, struct moat_error **err);
/* Resume support: the bytes already in the temp file (kept under tmp/ by digest) */
int64_t moat_blob_writer_offset(const struct moat_blob_writer *w);
/* Verifies the digest, fsyncs, renames into blobs/.  A mismatch deletes the temp file: -EBADMSG. */
int moat_blob_writer_commit(struct moat_blob_writer *w, struct moat_error **err);
/* Keeps the partial temp file for a later resume (interrupted download) unless discard. */
void moat_blob_writer_free(struct moat_blob_writer *w, bool discard);
int moat_store_put_blob(struct moat_store *s, const void *data, size_t len, char digest_out[72],
                        struct moat_error **err);

bool moat_store_has_layer(struct moat_store *s, const char *diff_id);
char *moat_store_layer_path(struct moat_store *s, const char *diff_id); /* ".../layers/sha256/<hex>" */
/* A fresh empty dir under tmp/ to unpack into; commit renames it to layers/ (if another process
 * committed the same layer first, ours is removed and theirs kept). */
int moat_store_layer_begin(struct moat_store *s, char **tmpdir, struct moat_error **err);
int moat_store_layer_commit(struct moat_store *s, const char *tmpdir, const char *diff_id,
                            struct moat_error **err);
void moat_store_layer_abort(struct moat_store *s, const char *tmpdir);

struct moat_image {
        char *name;              /* canonical ref, e.g. "localhost:5000/team/api:1" */
        char *manifest_digest;
        char *config_digest;
        char **layers;           /* diff ids, bottom first */
        size_t n_layers;
        int64_t size;            /* sum of the compressed layer sizes */
        char *created;
};
/* Records name -> manifest (the manifest and config blobs must be in the store). */
int moat_store_tag(struct moat_store *s, const char *name, const char *manifest_digest, struct moat_error **err);
/* By name (any form moat_ref_parse takes), by manifest digest, or by a unique id prefix (config digest hex). */
int moat_store_lookup(struct moat_store *s, const char *what, struct moat_image **out, struct moat_error **err);
int moat_store_list(struct moat_store *s, struct moat_image ***out, size_t *n, struct moat_error **err);
int moat_store_untag(struct moat_store *s, const char *name, struct moat_error **err);
/* Removes blobs and layers no image refers to (and tmp/ debris); reports what it freed. */
int moat_store_prune(struct moat_store *s, uint64_t *bytes_freed, size_t *items, struct moat_error **err);
void moat_image_free(struct moat_image *img);
void moat_images_free(struct moat_image **v, size_t n);

/* ---------------------------------------------------------------- unpack.c (libarchive) */
/* Unpacks one layer (tar; gzip, zstd or plain, detected) read from fd into the empty
 * directory dirfd.  Whiteouts become overlayfs whiteouts (0:0 char devices; opaque dirs get
 * trusted.overlay.opaque=y) so layers stack with overlayfs.  No entry may write outside dirfd:
 * absolute names, "..", symlinks planted by earlier entries and hardlinks to outside are refused
 * with an error naming the entry.  Ownership, modes, xattrs, devices, hardlinks, symlinks kept.
 * sha256 of the uncompressed stream goes to diff_id (may be NULL). */
int moat_layer_unpack(int fd, int dirfd, char diff_id[72], struct moat_error **err);

/* ---------------------------------------------------------------- rootfs.c */
/* The root of a container from an image: overlayfs of the layers (top first) with upper/ and
 * work/ under dir, mounted on dir/rootfs; where overlayfs is missing, a copy (whiteouts applied).
 * Returns the rootfs path. */
int moat_image_rootfs_mount(struct moat_store *s, const struct moat_image *img, const char *dir, char **rootfs,
                            struct moat_error **err);
int moat_image_rootfs_umount(const char *dir, struct moat_error **err); /* and removes upper/work */

/* ---------------------------------------------------------------- import.c */
/* An OCI image layout (directory or tar) or a docker-archive tar (docker/podman save).
 * name: the name to give (required when the archive names none); out: the names imported. */
int moat_image_import(struct moat_store *s, const char *path, const char *name, char ***names,
                      struct moat_error **err);

/* ---------------------------------------------------------------- pull.c, registry.c (libcurl) */
struct moat_pull_opts {
        bool insecure;       /* plain http (loopback registries) */
        const char *os, *arch, *variant; /* platform; default the host's */
        const char *auth_file; /* default $REGISTRY_AUTH_FILE, then ~/.docker/config.json */
        int progress_fd;     /* -1: quiet; a tty gets a bar, anything else plain lines */
        int parallel;        /* layers at once; default 4 */
};
int moat_image_pull(struct moat_store *s, const char *ref, const struct moat_pull_opts *o, struct moat_image **out,
                    struct moat_error **err);
