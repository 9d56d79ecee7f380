/* SPDX-License-Identifier: Apache-2.0 */
/* The content-addressed store: blobs and unpacked layers.  Everything is written under
 * tmp/ and appears under blobs/ or layers/ only by rename (or link) once it is complete,
 * verified and synced, so a crash leaves nothing half-written that is later trusted.
 * Two processes writing the same blob or layer both succeed: the first rename wins,
 * RENAME_NOREPLACE makes the second drop its copy. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"
#include "image/store-internal.h"

#define BLOB_SMALL_MAX (4u << 20)
#define TMP_MAX_AGE_S 3600

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

static int open_dir_at(int dirfd, const char *name, int *out)
{
        if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        *out = fd;
        return 0;
}

int moat_store_open(const char *root, struct moat_store **out, struct moat_error **err)
{
        if (!root || !*root)
                return moat_error_input(err, -EINVAL, "no image store directory given");
        int r = mkdir_p(root, 0700);
        if (r < 0)
                return moat_error_set(err, r, "cannot create the image store '%s'", root);
        struct moat_store *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->rootfd = s->blobsfd = s->layersfd = s->tmpfd = -EBADF;
        if (!(s->root = strdup(root))) {
                moat_store_close(s);
                return -ENOMEM;
        }
        int blobs = -EBADF, layers = -EBADF;
        s->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->rootfd < 0) {
                r = -errno;
                goto fail;
        }
        if ((r = open_dir_at(s->rootfd, "blobs", &blobs)) < 0 || (r = open_dir_at(blobs, "sha256", &s->blobsfd)) < 0 ||
            (r = open_dir_at(s->rootfd, "layers", &layers)) < 0 ||
            (r = open_dir_at(layers, "sha256", &s->layersfd)) < 0 || (r = open_dir_at(s->rootfd, "tmp", &s->tmpfd)) < 0)
                goto fail;
        close(blobs);
        close(layers);
        /* Debris of crashed writers; a live writer holds a flock on its entry. */
        store_clean_tmp(s, TMP_MAX_AGE_S, NULL, NULL);
        *out = s;
        return 0;
fail:
        if (blobs >= 0)
                close(blobs);
        if (layers >= 0)
                close(layers);
        moat_store_close(s);
        return moat_error_set(err, r, "cannot open the image store '%s'", root);
}

void moat_store_close(struct moat_store *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n_tmpdirs; i++) {
                /* Layers begun and neither committed nor aborted: leave them to the next cleaner. */
                if (s->tmpdirs[i].fd >= 0)
                        close(s->tmpdirs[i].fd);
                free(s->tmpdirs[i].path);
        }
        free(s->tmpdirs);
        closep(&s->rootfd);
        closep(&s->blobsfd);
        closep(&s->layersfd);
        closep(&s->tmpfd);
        free(s->root);
        free(s);
}

const char *moat_store_root(const struct moat_store *s)
{
        return s->root;
}

int store_lock(struct moat_store *s, struct moat_error **err)
{
        int fd = openat(s->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot open the lock of the image store '%s'", s->root);
        while (flock(fd, LOCK_EX) < 0) {
                if (errno == EINTR)
                        continue;
                int e = errno;
                close(fd);
                return moat_error_set(err, e, "cannot lock the image store '%s'", s->root);
        }
        return fd;
}

uint64_t store_du_at(int at, const char *name)
{
        struct stat st;
        if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        if (!S_ISDIR(st.st_mode))
                return S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return 0;
        }
        uint64_t sum = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!STREQ(de->d_name, ".") && !STREQ(de->d_name, ".."))
                        sum += store_du_at(dirfd(d), de->d_name);
        return sum;
}

int store_clean_tmp(struct moat_store *s, int64_t min_age_s, uint64_t *bytes, size_t *items)
{
        int fd = openat(s->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        time_t now = time(NULL);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(s->tmpfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (min_age_s > 0 && now - st.st_mtime < min_age_s)
                        continue;
                _cleanup_close_ int efd = -EBADF;
                if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
                        efd = openat(s->tmpfd, de->d_name,
                                     O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
                        if (efd < 0)
                                continue;
                        if (flock(efd, LOCK_EX | LOCK_NB) < 0)
                                continue; /* a live writer */
                        struct stat st2;
                        if (fstat(efd, &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)
                                continue;
                }
                uint64_t sz = store_du_at(s->tmpfd, de->d_name);
                if (rm_rf_at(s->tmpfd, de->d_name) < 0) {
                        moat_debug("image store: cannot remove tmp/%s", de->d_name);
                        continue;
                }
                moat_debug("image store: removed tmp/%s", de->d_name);
                if (bytes)
                        *bytes += sz;
                if (items)
                        (*items)++;
        }
        return 0;
}

/* ---------------------------------------------------------------- blobs */

static const char *hex_of(const char *digest)
{
        return digest + 7;
}

bool moat_store_has_blob(struct moat_store *s, const char *digest)
{
        struct stat st;
        if (moat_digest_validate(digest) < 0)
                return false;
        return fstatat(s->blobsfd, hex_of(digest), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

int moat_store_blob_open(struct moat_store *s, const char *digest, int *fd, struct moat_error **err)
{
        if (moat_digest_validate(digest) < 0)
                return moat_error_input(err, -EINVAL, "'%s' is not a sha256 digest", digest ? digest : "");
        int f = openat(s->blobsfd, hex_of(digest), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (f < 0) {
                if (errno == ENOENT)
                        return moat_error_input(err, -ENOENT, "blob '%s' is not in the image store '%s'", digest,
                                                s->root);
                return moat_error_set(err, errno, "cannot open blob '%s'", digest);
        }
        *fd = f;
        return 0;
}

int moat_store_blob_read(struct moat_store *s, const char *digest, char **data, size_t *len, struct moat_error **err)
{
        _cleanup_close_ int fd = -EBADF;
        int r = moat_store_blob_open(s, digest, &fd, err);
        if (r < 0)
                return r;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return moat_error_set(err, errno, "cannot stat blob '%s'", digest);
        if (!S_ISREG(st.st_mode))
                return moat_error_input(err, -EINVAL, "blob '%s' is not a regular file", digest);
        if ((uint64_t)st.st_size > BLOB_SMALL_MAX)
                return moat_error_input(err, -E2BIG, "blob '%s' is %lld bytes, over the limit of %u for a document",
                                        digest, (long long)st.st_size, BLOB_SMALL_MAX);
        if ((r = read_fd_all(fd, data, len)) < 0)
                return moat_error_set(err, r, "cannot read blob '%s'", digest);
        return 0;
}

struct moat_blob_writer {
        struct moat_store *s;
        char expected[72];
        int fd;
        char *tmpname; /* under tmp/; NULL for an O_TMPFILE */
        struct moat_sha256 *h;
        int64_t offset;
        bool verified; /* the digest matched (w->h is gone) */
        bool committed;
};

/* The resumable temp file tmp/blob-<hex>.partial, flocked by its one writer.
 * Returns 1 with w->fd set, 0 if another writer holds it, -errno. */
static int writer_open_partial(struct moat_blob_writer *w)
{
        _cleanup_free_ char *name = NULL;
        if (asprintf(&name, "blob-%s.partial", hex_of(w->expected)) < 0)
                return -ENOMEM;
        for (int tries = 0; tries < 8; tries++) {
                _cleanup_close_ int fd =
                        openat(w->s->tmpfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return -errno;
                if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                        return errno == EWOULDBLOCK ? 0 : -errno;
                /* The name may have been renamed into blobs/ or removed since we opened it. */
                struct stat a, b;
                if (fstat(fd, &a) < 0)
                        return -errno;
                if (fstatat(w->s->tmpfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0 || a.st_ino != b.st_ino ||
                    a.st_dev != b.st_dev)
                        continue;
                w->fd = TAKE_FD(fd);
                w->tmpname = TAKE_PTR(name);
                return 1;
        }
        return 0;
}

/* A private temp file: O_TMPFILE (vanishes on a crash), else a flocked unique name. */
static int writer_open_private(struct moat_blob_writer *w)
{
        int fd = openat(w->s->tmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0) {
                w->fd = fd;
                return 0;
        }
        for (int tries = 0; tries < 100; tries++) {
                _cleanup_free_ char *name = NULL;
                unsigned rnd = (unsigned)random() ^ (unsigned)now_ns();
                if (asprintf(&name, "blob-%s.%d.%08x", hex_of(w->expected), (int)getpid(), rnd) < 0)
                        return -ENOMEM;
                fd = openat(w->s->tmpfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0 && errno == EEXIST)
                        continue;
                if (fd < 0)
                        return -errno;
                if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                        int e = errno;
                        close(fd);
                        return -e;
                }
                w->fd = fd;
                w->tmpname = TAKE_PTR(name);
                return 0;
        }
        return -EEXIST;
}

/* Hashes what a resumed temp file already holds. */
static int writer_rehash(struct moat_blob_writer *w)
{
        struct stat st;
        if (fstat(w->fd, &st) < 0)
                return -errno;
        _cleanup_free_ char *buf = malloc(1 << 17);
        if (!buf)
                return -ENOMEM;
        off_t pos = 0;
        while (pos < st.st_size) {
                ssize_t n = pread(w->fd, buf, 1 << 17, pos);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                moat_sha256_update(w->h, buf, (size_t)n);
                pos += n;
        }
        if (ftruncate(w->fd, pos) < 0 || lseek(w->fd, pos, SEEK_SET) < 0)
                return -errno;
        w->offset = pos;
        return 0;
}

static int writer_new(struct moat_store *s, const char *expected, bool resumable, struct moat_blob_writer **out,
                      struct moat_error **err)
{
        if (moat_digest_validate(expected) < 0)
                return moat_error_input(err, -EINVAL, "'%s' is not a sha256 digest", expected ? expected : "");
        struct moat_blob_writer *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->s = s;
        w->fd = -EBADF;
        snprintf(w->expected, sizeof(w->expected), "%s", expected);
        int r = -ENOMEM;
        if (!(w->h = moat_sha256_new()))
                goto fail;
        r = resumable ? writer_open_partial(w) : 0;
        if (r < 0)
                goto fail;
        if (r == 1)
                r = writer_rehash(w);
        else
                r = writer_open_private(w);
        if (r < 0)
                goto fail;
        moat_debug("image store: writing blob %s (from offset %lld)", expected, (long long)w->offset);
        *out = w;
        return 0;
fail:
        moat_blob_writer_free(w, false);
        return moat_error_set(err, r, "cannot create a temp file for blob '%s' in '%s/tmp'", expected, s->root);
}

int moat_blob_writer_new(struct moat_store *s, const char *expected_digest, struct moat_blob_writer **out,
                         struct moat_error **err)
{
        return writer_new(s, expected_digest, true, out, err);
}

int moat_blob_writer_write(struct moat_blob_writer *w, const void *data, size_t len, struct moat_error **err)
{
        if (w->committed || w->fd < 0)
                return moat_error_input(err, -EINVAL, "blob '%s': write after commit", w->expected);
        if (write_all(w->fd, data, len) < 0)
                return moat_error_set(err, errno, "cannot write blob '%s' to '%s/tmp'", w->expected, w->s->root);
        moat_sha256_update(w->h, data, len);
        w->offset += (int64_t)len;
        return 0;
}

int64_t moat_blob_writer_offset(const struct moat_blob_writer *w)
{
        return w->offset;
}

int store_blob_writer_verify(struct moat_blob_writer *w, char got[72], struct moat_error **err)
{
        if (w->verified) {
                if (got)
                        snprintf(got, 72, "%s", w->expected);
                return 0;
        }
        if (w->committed || w->fd < 0 || !w->h)
                return moat_error_input(err, -EINVAL, "blob '%s': already committed", w->expected);
        char buf[72];
        if (!got)
                got = buf;
        moat_sha256_final(w->h, got);
        w->h = NULL;
        if (!STREQ(got, w->expected)) {
                /* Nothing of it is kept: a resume would only repeat the error. */
                if (w->tmpname && unlinkat(w->s->tmpfd, w->tmpname, 0) == 0)
                        free(TAKE_PTR(w->tmpname));
                closep(&w->fd);
                return moat_error_input(err, -EBADMSG, "blob '%s' does not match its digest: the content is '%s' (%lld bytes)",
                                        w->expected, got, (long long)w->offset);
        }
        w->verified = true;
        return 0;
}

int moat_blob_writer_commit(struct moat_blob_writer *w, struct moat_error **err)
{
        return store_blob_writer_commit(w, true, err);
}

int store_blob_writer_commit(struct moat_blob_writer *w, bool sync, struct moat_error **err)
{
        int ret = store_blob_writer_verify(w, NULL, err);
        if (ret < 0)
                return ret;
        if (w->committed || w->fd < 0)
                return moat_error_input(err, -EINVAL, "blob '%s': already committed", w->expected);
        struct moat_store *s = w->s;
        const char *hex = hex_of(w->expected);
        if (sync && fsync(w->fd) < 0)
                return moat_error_set(err, errno, "cannot sync blob '%s'", w->expected);
        (void)fchmod(w->fd, 0644);
        if (w->tmpname) {
                int r = renameat2(s->tmpfd, w->tmpname, s->blobsfd, hex, RENAME_NOREPLACE);
                if (r < 0 && errno == EINVAL) { /* no RENAME_NOREPLACE here: link never replaces */
                        r = linkat(s->tmpfd, w->tmpname, s->blobsfd, hex, 0);
                        if (r == 0 || errno == EEXIST) {
                                unlinkat(s->tmpfd, w->tmpname, 0);
                                r = 0;
                        }
                }
                if (r < 0 && errno == EEXIST) {
                        /* Another writer committed the same content first: keep theirs. */
                        unlinkat(s->tmpfd, w->tmpname, 0);
                        r = 0;
                }
                if (r < 0)
                        return moat_error_set(err, errno, "cannot move blob '%s' into '%s/blobs'", w->expected,
                                              s->root);
                free(TAKE_PTR(w->tmpname));
        } else {
                char p[64];
                snprintf(p, sizeof(p), "/proc/self/fd/%d", w->fd);
                int r = linkat(AT_FDCWD, p, s->blobsfd, hex, AT_SYMLINK_FOLLOW);
                if (r < 0 && errno == ENOENT)
                        r = linkat(w->fd, "", s->blobsfd, hex, AT_EMPTY_PATH);
                if (r < 0 && errno != EEXIST)
                        return moat_error_set(err, errno, "cannot link blob '%s' into '%s/blobs'", w->expected,
                                              s->root);
        }
        if (sync)
                (void)fsync(s->blobsfd);
        w->committed = true;
        closep(&w->fd);
        moat_debug("image store: blob %s stored", w->expected);
        return 0;
}

void moat_blob_writer_free(struct moat_blob_writer *w, bool discard)
{
        if (!w)
                return;
        if (!w->committed && discard && w->tmpname && w->fd >= 0)
                unlinkat(w->s->tmpfd, w->tmpname, 0); /* we hold its flock: still ours */
        closep(&w->fd);
        if (w->h) {
                char dummy[72];
                moat_sha256_final(w->h, dummy);
        }
        free(w->tmpname);
        free(w);
}

int moat_store_put_blob(struct moat_store *s, const void *data, size_t len, char digest_out[72],
                        struct moat_error **err)
{
        struct moat_sha256 *h = moat_sha256_new();
        if (!h)
                return -ENOMEM;
        moat_sha256_update(h, data, len);
        moat_sha256_final(h, digest_out);
        if (!digest_out[0])
                return moat_error_set(err, EIO, "cannot compute a sha256 digest");
        if (moat_store_has_blob(s, digest_out))
                return 0;
        struct moat_blob_writer *w = NULL;
        int r = writer_new(s, digest_out, false, &w, err);
        if (r < 0)
                return r;
        if ((r = moat_blob_writer_write(w, data, len, err)) >= 0)
                r = moat_blob_writer_commit(w, err);
        moat_blob_writer_free(w, true);
        return r;
}

/* ---------------------------------------------------------------- layers */

bool moat_store_has_layer(struct moat_store *s, const char *diff_id)
{
        struct stat st;
        if (moat_digest_validate(diff_id) < 0)
                return false;
        return fstatat(s->layersfd, hex_of(diff_id), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

char *moat_store_layer_path(struct moat_store *s, const char *diff_id)
{
        char *p = NULL;
        if (moat_digest_validate(diff_id) < 0)
                return NULL;
        if (asprintf(&p, "%s/layers/sha256/%s", s->root, hex_of(diff_id)) < 0)
                return NULL;
        return p;
}

int moat_store_layer_begin(struct moat_store *s, char **tmpdir, struct moat_error **err)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/tmp/layer-XXXXXX", s->root) < 0)
                return -ENOMEM;
        if (!mkdtemp(path))
                return moat_error_set(err, errno, "cannot create a layer directory in '%s/tmp'", s->root);
        struct store_tmpdir *v = realloc(s->tmpdirs, (s->n_tmpdirs + 1) * sizeof(*v));
        if (!v) {
                rmdir(path);
                return -ENOMEM;
        }
        s->tmpdirs = v;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                rmdir(path);
                return moat_error_set(err, e, "cannot lock the layer directory '%s'", path);
        }
        (void)fchmod(fd, 0755);
        char *copy = strdup(path);
        if (!copy) {
                close(fd);
                rmdir(path);
                return -ENOMEM;
        }
        s->tmpdirs[s->n_tmpdirs++] = (struct store_tmpdir){ .path = TAKE_PTR(path), .fd = fd };
        *tmpdir = copy;
        return 0;
}

static struct store_tmpdir *find_tmpdir(struct moat_store *s, const char *tmpdir)
{
        for (size_t i = 0; tmpdir && i < s->n_tmpdirs; i++)
                if (STREQ(s->tmpdirs[i].path, tmpdir))
                        return &s->tmpdirs[i];
        return NULL;
}

static void drop_tmpdir(struct moat_store *s, struct store_tmpdir *t)
{
        closep(&t->fd);
        free(t->path);
        size_t i = (size_t)(t - s->tmpdirs);
        memmove(t, t + 1, (s->n_tmpdirs - i - 1) * sizeof(*t));
        s->n_tmpdirs--;
}

int moat_store_layer_commit(struct moat_store *s, const char *tmpdir, const char *diff_id, struct moat_error **err)
{
        return store_layer_commit(s, tmpdir, diff_id, true, err);
}

int store_sync(struct moat_store *s, struct moat_error **err)
{
        if (syncfs(s->tmpfd) < 0)
                return moat_error_set(err, errno, "cannot sync the store '%s'", s->root);
        return 0;
}

int store_layer_commit(struct moat_store *s, const char *tmpdir, const char *diff_id, bool sync,
                       struct moat_error **err)
{
        if (moat_digest_validate(diff_id) < 0)
                return moat_error_input(err, -EINVAL, "'%s' is not a sha256 digest", diff_id ? diff_id : "");
        struct store_tmpdir *t = find_tmpdir(s, tmpdir);
        if (!t)
                return moat_error_input(err, -EINVAL, "'%s' is not a layer directory begun in this store",
                                        tmpdir ? tmpdir : "");
        const char *base = strrchr(t->path, '/') + 1;
        const char *hex = hex_of(diff_id);
        /* Everything unpacked reaches the disk before the name makes it trusted. */
        if (sync && syncfs(t->fd) < 0)
                return moat_error_set(err, errno, "cannot sync layer '%s'", diff_id);
        int r = renameat2(s->tmpfd, base, s->layersfd, hex, RENAME_NOREPLACE);
        if (r < 0 && errno == EINVAL) {
                struct stat st;
                if (fstatat(s->layersfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        errno = EEXIST, r = -1;
                else
                        r = renameat(s->tmpfd, base, s->layersfd, hex);
        }
        if (r < 0 && (errno == EEXIST || errno == ENOTEMPTY)) {
                moat_debug("image store: layer %s was committed by another writer, dropping ours", diff_id);
                rm_rf_at(s->tmpfd, base);
                r = 0;
        } else if (r < 0) {
                return moat_error_set(err, errno, "cannot move layer '%s' into '%s/layers'", diff_id, s->root);
        }
        if (sync)
                (void)fsync(s->layersfd);
        drop_tmpdir(s, t);
        return 0;
}

void moat_store_layer_abort(struct moat_store *s, const char *tmpdir)
{
        struct store_tmpdir *t = find_tmpdir(s, tmpdir);
        if (!t)
                return;
        rm_rf_at(s->tmpfd, strrchr(t->path, '/') + 1);
        drop_tmpdir(s, t);
}
