/* SPDX-License-Identifier: Apache-2.0 */
/* import.c's view of what it imports: a directory or a tar (read twice: once for the
 * small documents and the sizes, once to stream the layer blobs). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "image/image.h"

struct import_entry {
        char *name;             /* "blobs/sha256/<hex>", "manifest.json" */
        int64_t size;
        unsigned char head[8];  /* the first bytes (compression magic) */
        size_t headlen;
        char *data;             /* tar: kept in memory when small */
        size_t len;
};

struct import_src {
        char *path;
        int dirfd;              /* a directory; -EBADF for a tar */
        struct import_entry *entries;
        size_t n;
};

struct import_blob {
        const char *path;       /* in the source */
        const char *digest;     /* expected */
};

int import_src_open(const char *path, struct import_src **out, struct moat_error **err);
void import_src_free(struct import_src *src);
static inline void import_src_freep(struct import_src **p) { import_src_free(*p); }
bool import_src_has(struct import_src *src, const char *name);
int import_src_read(struct import_src *src, const char *name, char **data, size_t *len, struct moat_error **err);
int import_src_stat(struct import_src *src, const char *name, struct import_entry *info, struct moat_error **err);
/* Writes the blobs to store temp files, checks every digest, and commits them all or none. */
int import_src_fetch(struct moat_store *s, struct import_src *src, const struct import_blob *blobs, size_t n,
                     struct moat_error **err);

/* A directory source only: the file `name` opened (read-only, inside the directory), or -errno
 * with err set; and its whole content written to w (which hashes it). */
int import_src_open_file(struct import_src *src, const char *name, struct moat_error **err);
int import_src_copy(struct import_src *src, const char *name, struct moat_blob_writer *w, struct moat_error **err);
