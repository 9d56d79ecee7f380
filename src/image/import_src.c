/* SPDX-License-Identifier: Apache-2.0 */
/* The source of an import: a directory (files opened inside it, never outside) or a
 * tar, optionally compressed (scanned once for names, sizes and the small documents,
 * then once more to stream the layer blobs into the store). */
#include "image/import-src.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"
#include "image/store-internal.h"

#define SMALL_MAX (4 << 20)
#define CACHE_MAX ((size_t)256 << 20)
#define DOC_MAX (64 << 20)

static const char *norm(const char *n)
{
        while (n[0] == '.' && n[1] == '/')
                n += 2;
        while (*n == '/')
                n++;
        return n;
}

static struct import_entry *find(struct import_src *src, const char *name)
{
        name = norm(name);
        for (size_t i = src->n; i-- > 0;)
                if (STREQ(src->entries[i].name, name))
                        return &src->entries[i];
        return NULL;
}

static struct archive *tar_open(const char *path)
{
        struct archive *a = archive_read_new();
        if (!a)
                return NULL;
        archive_read_support_filter_gzip(a);
        archive_read_support_filter_zstd(a);
        archive_read_support_filter_xz(a);
        archive_read_support_format_tar(a);
        if (archive_read_open_filename(a, path, 256 * 1024) != ARCHIVE_OK)
                return a; /* the caller reads the error */
        return a;
}

static int scan(struct import_src *src, struct moat_error **err)
{
        struct archive *a = tar_open(src->path);
        if (!a)
                return -ENOMEM;
        size_t cached = 0;
        int r = 0;
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = moat_error_input(err, -EINVAL, "'%s': %s", src->path,
                                             archive_error_string(a) ? archive_error_string(a) : "not a tar archive");
                        break;
                }
                if (archive_entry_filetype(e) != AE_IFREG || !archive_entry_pathname(e))
                        continue;
                struct import_entry *ne = realloc(src->entries, (src->n + 1) * sizeof(*ne));
                if (!ne) {
                        r = -ENOMEM;
                        break;
                }
                src->entries = ne;
                struct import_entry *x = &src->entries[src->n];
                *x = (struct import_entry){ .name = strdup(norm(archive_entry_pathname(e))),
                                            .size = archive_entry_size(e) };
                if (!x->name) {
                        r = -ENOMEM;
                        break;
                }
                src->n++;
                if (x->size <= SMALL_MAX && cached + (size_t)x->size <= CACHE_MAX) {
                        x->data = malloc((size_t)x->size + 1);
                        if (!x->data) {
                                r = -ENOMEM;
                                break;
                        }
                        la_ssize_t got = archive_read_data(a, x->data, (size_t)x->size);
                        if (got != x->size) {
                                r = moat_error_input(err, -EINVAL, "'%s': entry '%s' is truncated", src->path, x->name);
                                break;
                        }
                        x->data[x->size] = '\0';
                        x->len = (size_t)x->size;
                        cached += x->len;
                        x->headlen = x->len < 8 ? x->len : 8;
                        memcpy(x->head, x->data, x->headlen);
                } else {
                        la_ssize_t got = archive_read_data(a, x->head, sizeof(x->head));
                        x->headlen = got > 0 ? (size_t)got : 0;
                }
        }
        archive_read_free(a);
        return r;
}

int import_src_open(const char *path, struct import_src **out, struct moat_error **err)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return moat_error_set(err, errno, "cannot import '%s'", path);
        struct import_src *src = calloc(1, sizeof(*src));
        if (!src || !(src->path = strdup(path))) {
                free(src);
                return -ENOMEM;
        }
        src->dirfd = -EBADF;
        int r = 0;
        if (S_ISDIR(st.st_mode)) {
                src->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (src->dirfd < 0)
                        r = moat_error_set(err, errno, "cannot open '%s'", path);
        } else {
                r = scan(src, err);
        }
        if (r < 0) {
                import_src_free(src);
                return r;
        }
        *out = src;
        return 0;
}

void import_src_free(struct import_src *src)
{
        if (!src)
                return;
        for (size_t i = 0; i < src->n; i++) {
                free(src->entries[i].name);
                free(src->entries[i].data);
        }
        free(src->entries);
        if (src->dirfd >= 0)
                close(src->dirfd);
        free(src->path);
        free(src);
}

static int dir_open(struct import_src *src, const char *name)
{
        return path_open_in_root(src->dirfd, norm(name), O_RDONLY | O_NOFOLLOW, 0);
}

bool import_src_has(struct import_src *src, const char *name)
{
        if (src->dirfd < 0)
                return find(src, name) != NULL;
        _cleanup_close_ int fd = dir_open(src, name);
        return fd >= 0;
}

int import_src_read(struct import_src *src, const char *name, char **data, size_t *len, struct moat_error **err)
{
        if (src->dirfd < 0) {
                struct import_entry *e = find(src, name);
                if (!e)
                        return moat_error_input(err, -ENOENT, "'%s' has no '%s'", src->path, name);
                if (!e->data)
                        return moat_error_input(err, -EFBIG, "'%s': '%s' is too large for a document", src->path, name);
                *data = malloc(e->len + 1);
                if (!*data)
                        return -ENOMEM;
                memcpy(*data, e->data, e->len + 1);
                *len = e->len;
                return 0;
        }
        _cleanup_close_ int fd = dir_open(src, name);
        if (fd < 0)
                return moat_error_set(err, fd, "cannot open '%s' in '%s'", name, src->path);
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > DOC_MAX)
                return moat_error_input(err, -EINVAL, "'%s': '%s' is not a small regular file", src->path, name);
        int r = read_fd_all(fd, data, len);
        if (r < 0)
                return moat_error_set(err, r, "cannot read '%s' in '%s'", name, src->path);
        return 0;
}

int import_src_stat(struct import_src *src, const char *name, struct import_entry *info, struct moat_error **err)
{
        memset(info, 0, sizeof(*info));
        if (src->dirfd < 0) {
                struct import_entry *e = find(src, name);
                if (!e)
                        return moat_error_input(err, -ENOENT, "'%s' has no '%s'", src->path, name);
                info->size = e->size;
                info->headlen = e->headlen;
                memcpy(info->head, e->head, sizeof(info->head));
                return 0;
        }
        _cleanup_close_ int fd = dir_open(src, name);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return moat_error_set(err, fd < 0 ? fd : errno, "cannot open '%s' in '%s'", name, src->path);
        info->size = st.st_size;
        ssize_t n = pread(fd, info->head, sizeof(info->head), 0);
        info->headlen = n > 0 ? (size_t)n : 0;
        return 0;
}

/* ---------------------------------------------------------------- fetch */

struct pending {
        struct moat_blob_writer *w; /* hashes what it writes */
        bool done;
};

static int feed(struct pending *p, const void *data, size_t len, struct moat_error **err)
{
        return moat_blob_writer_write(p->w, data, len, err);
}

static int fetch_dir(struct import_src *src, const struct import_blob *b, struct pending *p, struct moat_error **err)
{
        _cleanup_close_ int fd = dir_open(src, b->path);
        if (fd < 0)
                return moat_error_set(err, fd, "cannot open '%s' in '%s'", b->path, src->path);
        char buf[256 * 1024];
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return moat_error_set(err, errno, "cannot read '%s' in '%s'", b->path, src->path);
                }
                if (n == 0)
                        break;
                int r = feed(p, buf, (size_t)n, err);
                if (r < 0)
                        return r;
        }
        p->done = true;
        return 0;
}

static int fetch_tar(struct import_src *src, const struct import_blob *blobs, struct pending *ps, size_t n,
                     struct moat_error **err)
{
        /* from memory what the scan kept */
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
                struct import_entry *e = find(src, blobs[i].path);
                if (e && e->data) {
                        int r = feed(&ps[i], e->data, e->len, err);
                        if (r < 0)
                                return r;
                        ps[i].done = true;
                } else {
                        left++;
                }
        }
        if (left == 0)
                return 0;
        struct archive *a = tar_open(src->path);
        if (!a)
                return -ENOMEM;
        int r = 0;
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = moat_error_input(err, -EINVAL, "'%s': %s", src->path, archive_error_string(a));
                        break;
                }
                if (archive_entry_filetype(e) != AE_IFREG || !archive_entry_pathname(e))
                        continue;
                const char *name = norm(archive_entry_pathname(e));
                for (size_t i = 0; i < n && r >= 0; i++) {
                        if (ps[i].done || strcmp(norm(blobs[i].path), name) != 0)
                                continue;
                        const void *buf;
                        size_t len;
                        la_int64_t off;
                        while ((ar = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
                                if ((r = feed(&ps[i], buf, len, err)) < 0)
                                        break;
                        if (r >= 0 && ar != ARCHIVE_EOF)
                                r = moat_error_input(err, -EIO, "'%s': cannot read '%s': %s", src->path, name,
                                                     archive_error_string(a));
                        ps[i].done = true;
                        break;
                }
                if (r < 0)
                        break;
        }
        archive_read_free(a);
        return r;
}

int import_src_fetch(struct moat_store *s, struct import_src *src, const struct import_blob *blobs, size_t n,
                     struct moat_error **err)
{
        struct pending *ps = calloc(n + 1, sizeof(*ps));
        if (!ps)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = moat_blob_writer_new(s, blobs[i].digest, &ps[i].w, err);
                if (r >= 0 && moat_blob_writer_offset(ps[i].w) > 0) { /* a partial one of an earlier pull: start over */
                        moat_blob_writer_free(ps[i].w, true);
                        ps[i].w = NULL;
                        r = moat_blob_writer_new(s, blobs[i].digest, &ps[i].w, err);
                }
        }
        if (r >= 0) {
                if (src->dirfd >= 0)
                        for (size_t i = 0; i < n && r >= 0; i++)
                                r = fetch_dir(src, &blobs[i], &ps[i], err);
                else
                        r = fetch_tar(src, blobs, ps, n, err);
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                char got[72];
                if (!ps[i].done) {
                        r = moat_error_input(err, -ENOENT, "'%s' has no '%s'", src->path, blobs[i].path);
                        break;
                }
                got[0] = '\0';
                int v = store_blob_writer_verify(ps[i].w, got, NULL);
                if (v < 0 && v != -EBADMSG)
                        r = moat_error_set(err, v, "'%s': blob '%s'", src->path, blobs[i].path);
                else if (v < 0)
                        r = moat_error_input(err, -EBADMSG, "'%s': blob '%s' is corrupt (its content hashes to '%s')",
                                             src->path, blobs[i].path, got);
        }
        /* one sync for all of them, then the renames (see import.c) */
        if (r >= 0 && n > 0)
                r = store_sync(s, err);
        for (size_t i = 0; i < n && r >= 0; i++)
                r = store_blob_writer_commit(ps[i].w, false, err);
        for (size_t i = 0; i < n; i++)
                if (ps[i].w)
                        moat_blob_writer_free(ps[i].w, true);
        free(ps);
        return r;
}

int import_src_open_file(struct import_src *src, const char *name, struct moat_error **err)
{
        if (src->dirfd < 0)
                return moat_error_input(err, -EINVAL, "'%s' is not a directory", src->path);
        int fd = dir_open(src, name);
        if (fd < 0)
                return moat_error_set(err, fd, "cannot open '%s' in '%s'", name, src->path);
        return fd;
}

int import_src_copy(struct import_src *src, const char *name, struct moat_blob_writer *w, struct moat_error **err)
{
        _cleanup_close_ int fd = import_src_open_file(src, name, err);
        if (fd < 0)
                return fd;
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        _cleanup_free_ char *buf = malloc(1 << 20);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf, 1 << 20);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return moat_error_set(err, errno, "cannot read '%s' in '%s'", name, src->path);
                if (n == 0)
                        return 0;
                int r = moat_blob_writer_write(w, buf, (size_t)n, err);
                if (r < 0)
                        return r;
        }
}
