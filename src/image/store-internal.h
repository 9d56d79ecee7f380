/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between store.c (blobs, layers, tmp) and store_images.c (images.json, prune). */
#pragma once

#include "image/image.h"

struct store_tmpdir {
        char *path; /* full path of a layer being unpacked, under tmp/ */
        int fd;     /* the directory, flocked while in use */
};

struct moat_store {
        char *root;
        int rootfd, blobsfd, layersfd, tmpfd;
        struct store_tmpdir *tmpdirs;
        size_t n_tmpdirs;
};

/* The store lock (root/lock, flock LOCK_EX): images.json updates and prune.  Returns the fd. */
int store_lock(struct moat_store *s, struct moat_error **err);
/* Removes tmp/ entries no live process holds (flock) and, if min_age_s > 0, only those
 * older than that.  Adds what it freed. */
int store_clean_tmp(struct moat_store *s, int64_t min_age_s, uint64_t *bytes, size_t *items);
/* Size of a file or tree (st_size of everything in it). */
uint64_t store_du_at(int dirfd, const char *name);

/* The batch path of import (many blobs and layers written at once, then one sync):
 *   store_blob_writer_verify   checks the digest of what was written (got: what it is, may be
 *                              NULL), commits nothing
 *                              (-EBADMSG on a mismatch, the temp file removed); may run in a thread
 *   store_sync                 syncfs of the store's file system: everything written so far
 *                              reaches the disk; call it after the writes, before the commits
 *   store_blob_writer_commit / store_layer_commit with sync=false: the rename only, for data
 *                              a store_sync already covered (sync=true: what the public
 *                              moat_blob_writer_commit / moat_store_layer_commit do). */
int store_blob_writer_verify(struct moat_blob_writer *w, char got[72], struct moat_error **err);
int store_sync(struct moat_store *s, struct moat_error **err);
int store_blob_writer_commit(struct moat_blob_writer *w, bool sync, struct moat_error **err);
int store_layer_commit(struct moat_store *s, const char *tmpdir, const char *diff_id, bool sync,
                       struct moat_error **err);
