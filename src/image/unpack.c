/* SPDX-License-Identifier: Apache-2.0 */
/* Layer unpacking with libarchive.  Two archive readers are chained: the outer one
 * (format "raw", every compression filter we accept) turns the file into the plain tar
 * stream, which is hashed on its way into the inner one (format tar, no filter); the
 * sha256 of that stream is the layer's diff id.  Every entry is created relative to
 * a parent directory resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
 * under the layer dir, so no name, symlink or hardlink can reach outside it. */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/path.h"
#include "core/util.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

struct dir_time {
        char *path;
        struct timespec ts[2];
};

struct unpack {
        struct archive *outer;
        EVP_MD_CTX *md;
        const void *pending; /* outer block not yet handed to the inner reader */
        size_t pending_len;
        int outer_status;    /* ARCHIVE_OK until the outer stream ends or fails */
        int dirfd;
        bool root;
        struct dir_time *dirs;
        size_t n_dirs;
};

/* ---------------------------------------------------------------- the stream */

static la_ssize_t inner_read(struct archive *a, void *data, const void **buf)
{
        struct unpack *u = data;
        if (u->outer_status != ARCHIVE_OK)
                return 0;
        size_t len = 0;
        la_int64_t off;
        int r = archive_read_data_block(u->outer, buf, &len, &off);
        if (r == ARCHIVE_EOF) {
                u->outer_status = ARCHIVE_EOF;
                return 0;
        }
        if (r < ARCHIVE_WARN) {
                u->outer_status = r;
                archive_set_error(a, archive_errno(u->outer) ? archive_errno(u->outer) : EIO, "%s",
                                  archive_error_string(u->outer) ? archive_error_string(u->outer)
                                                                 : "cannot decompress");
                return -1;
        }
        EVP_DigestUpdate(u->md, *buf, len);
        return (la_ssize_t)len;
}

/* The rest of the stream after the tar end marker still counts for the digest. */
static int drain(struct unpack *u)
{
        while (u->outer_status == ARCHIVE_OK) {
                const void *buf;
                if (inner_read(NULL, u, &buf) < 0)
                        return -EIO;
        }
        return u->outer_status == ARCHIVE_EOF ? 0 : -EIO;
}

/* ---------------------------------------------------------------- names */

/* "./a//b/" -> "a/b"; refuses absolute names, ".." and empty ones.  *out is the
 * cleaned copy ("." for the layer root itself). */
static int clean_name(const char *name, char **out)
{
        if (!name || !*name)
                return -EINVAL;
        if (name[0] == '/')
                return -EXDEV;
        _cleanup_free_ char *copy = strdup(name);
        _cleanup_free_ char *res = calloc(1, strlen(name) + 2);
        if (!copy || !res)
                return -ENOMEM;
        char *save = NULL;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (STREQ(c, "."))
                        continue;
                if (STREQ(c, ".."))
                        return -EXDEV;
                if (*res)
                        strcat(res, "/");
                strcat(res, c);
        }
        if (!*res)
                strcpy(res, ".");
        *out = TAKE_PTR(res);
        return 0;
}

static int openat2_beneath(int dirfd, const char *path, int flags)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS)
                return fd >= 0 ? fd : -errno;
        /* No openat2: the stricter walk, one component at a time, following no symlink at all. */
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int cur = openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        char *save = NULL;
        char *c = strtok_r(copy, "/", &save);
        while (c) {
                char *next = strtok_r(NULL, "/", &save);
                int f = openat(cur, c, (next ? O_PATH | O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC);
                if (f < 0)
                        return -errno;
                closep(&cur);
                cur = f;
                c = next;
        }
        return TAKE_FD(cur);
}

/* The directory `path` (a cleaned name) under root, created with its missing parents.
 * Each prefix is resolved again from the root, beneath it. */
static int mkdir_beneath(int root, const char *path, int flags)
{
        int fd = openat2_beneath(root, path, flags | O_DIRECTORY);
        if (fd != -ENOENT)
                return fd;
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int cur = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        for (char *p = copy;;) {
                char *slash = strchr(p, '/');
                if (slash)
                        *slash = '\0';
                int f = openat2_beneath(root, copy, O_PATH | O_DIRECTORY);
                if (f == -ENOENT) {
                        if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        f = openat2_beneath(root, copy, O_PATH | O_DIRECTORY);
                }
                if (f < 0)
                        return f;
                closep(&cur);
                cur = f;
                if (!slash)
                        break;
                *slash = '/';
                p = slash + 1;
        }
        return openat2_beneath(root, path, flags | O_DIRECTORY);
}

/* Splits a cleaned name; returns the parent dir fd (created if missing) and the base. */
static int parent_of(int root, const char *name, const char **base, bool create)
{
        const char *slash = strrchr(name, '/');
        if (!slash) {
                *base = name;
                int fd = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
                return fd < 0 ? -errno : fd;
        }
        *base = slash + 1;
        _cleanup_free_ char *dir = strndup(name, (size_t)(slash - name));
        if (!dir)
                return -ENOMEM;
        return create ? mkdir_beneath(root, dir, O_PATH) : openat2_beneath(root, dir, O_PATH | O_DIRECTORY);
}

/* ---------------------------------------------------------------- metadata */

static int remove_existing(int parent, const char *base, bool keep_dir)
{
        struct stat st;
        if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode)) {
                if (keep_dir)
                        return 1;
                return rm_rf_at(parent, base);
        }
        return unlinkat(parent, base, 0) < 0 ? -errno : 0;
}

static int set_xattrs(struct archive_entry *e, int fd, int parent, const char *base)
{
        const char *name;
        const void *value;
        size_t size;
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (strncmp(name, "trusted.overlay.", 16) == 0) {
                        moat_debug("layer entry '%s': xattr '%s' ignored", archive_entry_pathname(e), name);
                        continue;
                }
                int r;
                if (fd >= 0) {
                        r = fsetxattr(fd, name, value, size, 0);
                } else {
                        char p[64 + 4096];
                        snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", parent, base);
                        r = lsetxattr(p, name, value, size, 0);
                }
                if (r < 0) {
                        if (errno == EPERM && fd < 0 && strncmp(name, "user.", 5) == 0)
                                continue; /* user.* is not allowed on symlinks and devices */
                        return -errno;
                }
        }
        return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
        ts[1].tv_sec = archive_entry_mtime(e);
        ts[1].tv_nsec = archive_entry_mtime_is_set(e) ? archive_entry_mtime_nsec(e) : 0;
        if (archive_entry_atime_is_set(e)) {
                ts[0].tv_sec = archive_entry_atime(e);
                ts[0].tv_nsec = archive_entry_atime_nsec(e);
        } else {
                ts[0] = ts[1];
        }
}

/* Ownership, mode, xattrs, times, in that order (chown clears setuid bits and
 * security.capability).  fd: an fd of the node, or -1 (symlinks, devices). */
static int set_meta(struct unpack *u, struct archive_entry *e, int fd, int parent, const char *base, bool is_link)
{
        uid_t uid = (uid_t)archive_entry_uid(e);
        gid_t gid = (gid_t)archive_entry_gid(e);
        int r = fd >= 0 ? fchown(fd, uid, gid) : fchownat(parent, base, uid, gid, AT_SYMLINK_NOFOLLOW);
        if (r < 0 && !(errno == EPERM && !u->root))
                return -errno;
        if (!is_link) {
                mode_t mode = archive_entry_perm(e) & 07777;
                r = fd >= 0 ? fchmod(fd, mode) : fchmodat(parent, base, mode, 0);
                if (r < 0)
                        return -errno;
        }
        r = set_xattrs(e, fd, parent, base);
        if (r < 0)
                return r;
        return 0;
}

/* ---------------------------------------------------------------- entries */

static int write_data(struct unpack *u, struct archive *a, int fd)
{
        const void *buf;
        size_t len;
        la_int64_t off;
        for (;;) {
                int r = archive_read_data_block(a, &buf, &len, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return -EIO;
                if (len == 0)
                        continue;
                const char *p = buf;
                while (len > 0) {
                        ssize_t n = pwrite(fd, p, len, off);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        p += n;
                        off += n;
                        len -= (size_t)n;
                }
        }
        return 0;
}

static int do_whiteout(int parent, const char *base, const char *entry, struct moat_error **err)
{
        if (STREQ(base, WH_OPAQUE)) {
                _cleanup_close_ int d = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (d < 0 || fsetxattr(d, "trusted.overlay.opaque", "y", 1, 0) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot mark the directory opaque",
                                              entry);
                return 0;
        }
        const char *target = base + strlen(WH_PREFIX);
        if (!*target || STREQ(target, ".") || STREQ(target, "..") || strncmp(target, WH_PREFIX, 4) == 0)
                return moat_error_input(err, -EXDEV, "layer entry '%s': invalid whiteout name", entry);
        int r = remove_existing(parent, target, false);
        if (r < 0)
                return moat_error_set(err, r, "layer entry '%s': cannot replace '%s'", entry, target);
        if (mknodat(parent, target, S_IFCHR | 0, makedev(0, 0)) < 0)
                return moat_error_set(err, errno, "layer entry '%s': cannot create a whiteout", entry);
        return 0;
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e, struct moat_error **err)
{
        const char *entry = archive_entry_pathname(e);
        if (!entry)
                entry = "";
        _cleanup_free_ char *name = NULL;
        int r = clean_name(entry, &name);
        if (r == -ENOMEM)
                return moat_error_set(err, r, "layer entry '%s'", entry);
        if (r < 0)
                return moat_error_input(err, -EXDEV, "layer entry '%s': the name leaves the layer directory", entry);
        /* no directory component may be a whiteout */
        for (const char *p = name; (p = strstr(p, WH_PREFIX));) {
                bool starts = p == name || p[-1] == '/';
                const char *end = strchr(p, '/');
                if (starts && end)
                        return moat_error_input(err, -EXDEV, "layer entry '%s': a whiteout cannot be a directory",
                                                entry);
                p += 4;
        }
        if (STREQ(name, ".")) {
                if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
                        return moat_error_input(err, -EINVAL, "layer entry '%s': the layer root must be a directory",
                                                entry);
                struct dir_time *nd = realloc(u->dirs, (u->n_dirs + 1) * sizeof(*nd));
                if (!nd)
                        return -ENOMEM;
                u->dirs = nd;
                _cleanup_close_ int d = openat(u->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (d < 0)
                        return moat_error_set(err, errno, "layer entry '%s'", entry);
                r = set_meta(u, e, d, -1, NULL, false);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot set its attributes", entry);
                u->dirs[u->n_dirs].path = strdup(".");
                entry_times(e, u->dirs[u->n_dirs].ts);
                if (!u->dirs[u->n_dirs].path)
                        return -ENOMEM;
                u->n_dirs++;
                return 0;
        }

        const char *base = NULL;
        _cleanup_close_ int parent = parent_of(u->dirfd, name, &base, true);
        if (parent < 0) {
                if (parent == -EXDEV || parent == -ELOOP || parent == -ENOTDIR)
                        return moat_error_input(err, -EXDEV,
                                                "layer entry '%s': its directory leaves the layer directory or is "
                                                "not a directory (through a symlink?)",
                                                entry);
                return moat_error_set(err, parent, "layer entry '%s': cannot create its directory", entry);
        }
        if (strncmp(base, WH_PREFIX, 4) == 0)
                return do_whiteout(parent, base, entry, err);

        const char *link = archive_entry_hardlink(e);
        if (link) {
                _cleanup_free_ char *tname = NULL;
                r = clean_name(link, &tname);
                if (r == -ENOMEM)
                        return -ENOMEM;
                if (r < 0 || STREQ(tname, "."))
                        return moat_error_input(err, -EXDEV, "layer entry '%s': hardlink target '%s' is outside the layer",
                                                entry, link);
                const char *tbase = NULL;
                _cleanup_close_ int tparent = parent_of(u->dirfd, tname, &tbase, false);
                if (tparent < 0)
                        return moat_error_input(err, tparent == -ENOENT ? -ENOENT : -EXDEV,
                                                "layer entry '%s': hardlink target '%s' is missing or outside the layer",
                                                entry, link);
                struct stat st;
                if (fstatat(tparent, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return moat_error_input(err, -ENOENT, "layer entry '%s': hardlink target '%s' is missing",
                                                entry, link);
                if (S_ISDIR(st.st_mode))
                        return moat_error_input(err, -EINVAL, "layer entry '%s': hardlink target '%s' is a directory",
                                                entry, link);
                struct stat cur;
                if (fstatat(parent, base, &cur, AT_SYMLINK_NOFOLLOW) == 0 && cur.st_ino == st.st_ino &&
                    cur.st_dev == st.st_dev)
                        return 0;
                r = remove_existing(parent, base, false);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot replace it", entry);
                if (linkat(tparent, tbase, parent, base, 0) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot link to '%s'", entry, link);
                return 0;
        }

        struct timespec ts[2];
        entry_times(e, ts);
        mode_t type = archive_entry_filetype(e);
        switch (type) {
        case AE_IFDIR: {
                r = remove_existing(parent, base, true);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot replace it", entry);
                if (r == 0 && mkdirat(parent, base, 0700) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot create the directory", entry);
                _cleanup_close_ int d = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (d < 0)
                        return moat_error_set(err, errno, "layer entry '%s'", entry);
                r = set_meta(u, e, d, parent, base, false);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot set its attributes", entry);
                struct dir_time *nd = realloc(u->dirs, (u->n_dirs + 1) * sizeof(*nd));
                if (!nd)
                        return -ENOMEM;
                u->dirs = nd;
                u->dirs[u->n_dirs].path = strdup(name);
                if (!u->dirs[u->n_dirs].path)
                        return -ENOMEM;
                u->dirs[u->n_dirs].ts[0] = ts[0];
                u->dirs[u->n_dirs].ts[1] = ts[1];
                u->n_dirs++;
                return 0;
        }
        case AE_IFREG: {
                r = remove_existing(parent, base, false);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot replace it", entry);
                _cleanup_close_ int f = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (f < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot create the file", entry);
                r = write_data(u, a, f);
                if (r == -EIO)
                        return moat_error_input(err, -EIO, "layer entry '%s': cannot read its data: %s", entry,
                                                archive_error_string(a) ? archive_error_string(a) : "truncated");
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot write the file", entry);
                if (ftruncate(f, archive_entry_size(e)) < 0)
                        return moat_error_set(err, errno, "layer entry '%s'", entry);
                r = set_meta(u, e, f, parent, base, false);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot set its attributes", entry);
                if (futimens(f, ts) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot set its times", entry);
                return 0;
        }
        case AE_IFLNK: {
                const char *target = archive_entry_symlink(e);
                if (!target || !*target)
                        return moat_error_input(err, -EINVAL, "layer entry '%s': symlink without a target", entry);
                r = remove_existing(parent, base, false);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot replace it", entry);
                if (symlinkat(target, parent, base) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot create the symlink", entry);
                r = set_meta(u, e, -1, parent, base, true);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot set its attributes", entry);
                if (utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot set its times", entry);
                return 0;
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO: {
                r = remove_existing(parent, base, false);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot replace it", entry);
                dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(e);
                if (mknodat(parent, base, type | 0600, dev) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot create the node", entry);
                r = set_meta(u, e, -1, parent, base, false);
                if (r < 0)
                        return moat_error_set(err, r, "layer entry '%s': cannot set its attributes", entry);
                if (utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot set its times", entry);
                return 0;
        }
        default:
                moat_debug("layer entry '%s': file type 0%o skipped", entry, (unsigned)type);
                return 0;
        }
}

/* Directory times last (creating their children changed them), deepest first. */
static int apply_dir_times(struct unpack *u, struct moat_error **err)
{
        for (size_t i = u->n_dirs; i-- > 0;) {
                _cleanup_close_ int d = openat2_beneath(u->dirfd, u->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
                if (d == -ENOENT)
                        continue; /* removed again by a later entry */
                if (d < 0)
                        return moat_error_set(err, d, "layer entry '%s'", u->dirs[i].path);
                if (futimens(d, u->dirs[i].ts) < 0)
                        return moat_error_set(err, errno, "layer entry '%s': cannot set its times", u->dirs[i].path);
        }
        return 0;
}

int moat_layer_unpack(int fd, int dirfd, char diff_id[72], struct moat_error **err)
{
        struct unpack u = { .dirfd = dirfd, .root = geteuid() == 0, .outer_status = ARCHIVE_OK };
        struct archive *inner = NULL;
        int ret = 0;

        u.md = EVP_MD_CTX_new();
        u.outer = archive_read_new();
        inner = archive_read_new();
        if (!u.md || !u.outer || !inner || EVP_DigestInit_ex(u.md, EVP_sha256(), NULL) != 1) {
                ret = moat_error_set(err, ENOMEM, "cannot unpack the layer");
                goto out;
        }
        archive_read_support_filter_gzip(u.outer);
        archive_read_support_filter_zstd(u.outer);
        archive_read_support_filter_xz(u.outer);
        archive_read_support_filter_bzip2(u.outer);
        archive_read_support_format_raw(u.outer);
        if (archive_read_open_fd(u.outer, fd, 128 * 1024) != ARCHIVE_OK) {
                ret = moat_error_input(err, -EINVAL, "cannot read the layer: %s", archive_error_string(u.outer));
                goto out;
        }
        struct archive_entry *re;
        if (archive_read_next_header(u.outer, &re) != ARCHIVE_OK) {
                ret = moat_error_input(err, -EINVAL, "cannot read the layer: %s", archive_error_string(u.outer));
                goto out;
        }
        archive_read_support_format_tar(inner);
        if (archive_read_open(inner, &u, NULL, inner_read, NULL) != ARCHIVE_OK) {
                ret = moat_error_input(err, -EINVAL, "the layer is not a tar archive: %s",
                                       archive_error_string(inner) ? archive_error_string(inner) : "empty");
                goto out;
        }
        for (;;) {
                struct archive_entry *e;
                int r = archive_read_next_header(inner, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN) {
                        ret = moat_error_input(err, -EINVAL, "cannot read the layer: %s",
                                               archive_error_string(inner) ? archive_error_string(inner) : "bad tar");
                        goto out;
                }
                ret = unpack_entry(&u, inner, e, err);
                if (ret < 0)
                        goto out;
        }
        ret = apply_dir_times(&u, err);
        if (ret < 0)
                goto out;
        if (drain(&u) < 0) {
                ret = moat_error_input(err, -EIO, "cannot read the layer: %s",
                                       archive_error_string(u.outer) ? archive_error_string(u.outer) : "read error");
                goto out;
        }
        if (diff_id) {
                unsigned char md[EVP_MAX_MD_SIZE];
                unsigned int n = 0;
                EVP_DigestFinal_ex(u.md, md, &n);
                strcpy(diff_id, "sha256:");
                for (unsigned i = 0; i < n && i < 32; i++)
                        snprintf(diff_id + 7 + 2 * i, 3, "%02x", md[i]);
        }
out:
        if (inner)
                archive_read_free(inner);
        if (u.outer)
                archive_read_free(u.outer);
        EVP_MD_CTX_free(u.md);
        for (size_t i = 0; i < u.n_dirs; i++)
                free(u.dirs[i].path);
        free(u.dirs);
        return ret;
}
