/* SPDX-License-Identifier: Apache-2.0 */
/* vm tier disks: the cached read-only root image and the per-container writable layer, both ext4
 * made by mkfs.ext4 (e2fsprogs), whose -d option copies a directory tree into the new filesystem
 * without mounting anything (owners, modes, hard links, devices, xattrs included). */
#include "vm/disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "core/util.h"

#define KEY_MAX 128
#define BLOCK 4096ull
#define MIB (1ull << 20)
#define WALK_MAX_DEPTH 256
#define TOOL_OUTPUT_MAX 2048 /* the tail of mkfs's output kept for the error */
#define TMP_PREFIX ".tmp-"

/* ---- running mkfs.ext4 ---------------------------------------------------------------------- */

static const char *const tool_dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin" };

static int find_tool(const char *name, char *buf, size_t len, struct moat_error **err)
{
        for (size_t i = 0; i < ARRAY_SIZE(tool_dirs); i++) {
                snprintf(buf, len, "%s/%s", tool_dirs[i], name);
                if (access(buf, X_OK) == 0)
                        return 0;
        }
        return moat_error_input(err, ENOENT, "'%s' not found in /usr/sbin, /sbin, /usr/bin or /bin (install e2fsprogs)",
                                name);
}

/* In the forked child: async-signal-safe calls only. */
static _Noreturn void tool_child(const char *path, char *const *argv, int out_w, int null_fd)
{
        static const char msg[] = "cannot execute the program\n";
        static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
        if (dup2(null_fd, 0) < 0 || dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0)
                _exit(127);
        if (close_fds_from(3, NULL, 0) < 0)
                _exit(127);
        moat_signals_reset();
        execve(path, argv, envp);
        if (write(2, msg, sizeof(msg) - 1) < 0) {
                /* nothing left to report through */
        }
        _exit(127);
}

/* One line of text from the tail of the tool's output: whitespace runs folded to one space. */
static void tidy_output(char *s)
{
        char *w = s;
        bool space = false;
        for (const char *r = s; *r; r++) {
                if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
                        space = w != s;
                        continue;
                }
                if (space)
                        *w++ = ' ';
                space = false;
                *w++ = *r;
        }
        *w = '\0';
}

/* Runs argv (argv[0] is the tool's name, looked up in tool_dirs) with stdin /dev/null and a clean
 * environment; fails with its output in the error unless it exits 0. */
static int run_tool(char *const *argv, struct moat_error **err)
{
        char path[PATH_MAX];
        int r = find_tool(argv[0], path, sizeof(path), err);
        if (r < 0)
                return r;
        _cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0)
                return moat_error_set(err, errno, "cannot open '/dev/null'");
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return moat_error_set(err, errno, "cannot create a pipe for '%s'", argv[0]);
        _cleanup_close_ int out_r = p[0], out_w = p[1];
        pid_t pid = fork();
        if (pid < 0)
                return moat_error_set(err, errno, "cannot fork to run '%s'", argv[0]);
        if (pid == 0)
                tool_child(path, argv, out_w, null_fd);
        closep(&out_w);

        char tail[TOOL_OUTPUT_MAX + 1];
        size_t len = 0;
        char buf[4096];
        for (;;) {
                ssize_t n = read(out_r, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                size_t k = (size_t)n;
                if (k >= TOOL_OUTPUT_MAX) {
                        memcpy(tail, buf + k - TOOL_OUTPUT_MAX, TOOL_OUTPUT_MAX);
                        len = TOOL_OUTPUT_MAX;
                } else {
                        if (len + k > TOOL_OUTPUT_MAX) {
                                size_t drop = len + k - TOOL_OUTPUT_MAX;
                                memmove(tail, tail + drop, len - drop);
                                len -= drop;
                        }
                        memcpy(tail + len, buf, k);
                        len += k;
                }
        }
        tail[len] = '\0';
        int status;
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return moat_error_set(err, errno, "cannot wait for '%s'", argv[0]);
        }
        tidy_output(tail);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                if (tail[0])
                        moat_debug("%s: %s", argv[0], tail);
                return 0;
        }
        if (WIFEXITED(status))
                return moat_error_input(err, EIO, "'%s' failed (exit status %d)%s%s", path, WEXITSTATUS(status),
                                        tail[0] ? ": " : "", tail);
        return moat_error_input(err, EIO, "'%s' killed by signal %d%s%s", path,
                                WIFSIGNALED(status) ? WTERMSIG(status) : 0, tail[0] ? ": " : "", tail);
}

/* ---- sizing a tree ---------------------------------------------------------------------------- */

struct tree_size {
        uint64_t bytes;  /* data and directory blocks, in 4 KiB blocks */
        uint64_t inodes; /* entries, the top included */
};

static uint64_t round_up(uint64_t v, uint64_t to)
{
        return (v + to - 1) / to * to;
}

static void add_entry(struct tree_size *ts, const struct stat *st)
{
        uint64_t b = round_up((uint64_t)st->st_blocks * 512, BLOCK);
        ts->inodes++;
        if (S_ISREG(st->st_mode)) {
                /* Small files inline on the host (ext4 inline_data, btrfs) need a block here;
                 * larger ones without blocks are sparse and stay so (mkfs -d keeps holes). */
                if (b == 0 && st->st_size > 0 && (uint64_t)st->st_size <= BLOCK)
                        b = BLOCK;
        } else if (S_ISDIR(st->st_mode)) {
                if (b < BLOCK)
                        b = BLOCK;
        } else if (S_ISLNK(st->st_mode)) {
                b = st->st_size >= 60 ? BLOCK : 0; /* shorter targets live in the inode */
        } else {
                b = 0;
        }
        ts->bytes += b;
}

/* Takes dfd. */
static int tree_walk(int dfd, const char *top, unsigned depth, struct tree_size *ts, struct moat_error **err)
{
        if (depth > WALK_MAX_DEPTH) {
                close(dfd);
                return moat_error_input(err, ELOOP, "'%s': directories nested deeper than %d levels", top,
                                        WALK_MAX_DEPTH);
        }
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                int e = errno;
                close(dfd);
                return moat_error_set(err, e, "cannot read '%s'", top);
        }
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno)
                                return moat_error_set(err, errno, "cannot read '%s'", top);
                        return 0;
                }
                if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return moat_error_set(err, errno, "cannot stat '%s' in '%s'", de->d_name, top);
                }
                add_entry(ts, &st);
                if (!S_ISDIR(st.st_mode))
                        continue;
                int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        return moat_error_set(err, errno, "cannot open '%s' in '%s'", de->d_name, top);
                int r = tree_walk(sub, top, depth + 1, ts, err);
                if (r < 0)
                        return r;
        }
}

/* ---- the cache ------------------------------------------------------------------------------- */

static bool key_valid(const char *key)
{
        size_t n = key ? strlen(key) : 0;
        if (n == 0 || n > KEY_MAX || STREQ(key, ".") || STREQ(key, ".."))
                return false;
        return strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Takes the flock of <key>.lock in dirfd.  Retries when the file it locked was unlinked (by prune)
 * or replaced meanwhile, so that two holders never hold two different files. */
static int lock_key(int dirfd, const char *key, bool wait, int *out_fd)
{
        char name[KEY_MAX + 8];
        snprintf(name, sizeof(name), "%s.lock", key);
        for (;;) {
                _cleanup_close_ int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                while (flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) < 0)
                        if (errno != EINTR)
                                return -errno;
                struct stat a, b;
                if (fstat(fd, &a) < 0)
                        return -errno;
                if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
                        *out_fd = TAKE_FD(fd);
                        return 0;
                }
        }
}

static int open_cache_dir(const char *cache_dir, struct moat_error **err)
{
        int r = mkdir_p(cache_dir, 0700);
        if (r < 0)
                return moat_error_set(err, r, "cannot create the disk cache directory '%s'", cache_dir);
        int fd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot open the disk cache directory '%s'", cache_dir);
        return fd;
}

/* Builds <key>.ext4 in dirfd (the caller holds the key's lock). */
static int build_root(int dirfd, const char *cache_dir, const char *key, const char *rootfs_dir,
                      struct moat_error **err)
{
        int rootfd = open(rootfs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return moat_error_set(err, errno, "cannot open the rootfs directory '%s'", rootfs_dir);
        struct stat st;
        if (fstat(rootfd, &st) < 0) {
                int e = errno;
                close(rootfd);
                return moat_error_set(err, e, "cannot stat the rootfs directory '%s'", rootfs_dir);
        }
        struct tree_size ts = { 0 };
        add_entry(&ts, &st);
        int r = tree_walk(rootfd, rootfs_dir, 0, &ts, err);
        if (r < 0)
                return r;

        uint64_t inodes = ts.inodes + ts.inodes / 5 + 256;
        uint64_t size = round_up(ts.bytes + ts.bytes / 5 + inodes * 256 + 16 * MIB, MIB);
        if (inodes > UINT32_MAX)
                return moat_error_input(err, EFBIG, "the rootfs directory '%s' has too many files (%llu)", rootfs_dir,
                                        (unsigned long long)ts.inodes);

        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s/" TMP_PREFIX "%s-XXXXXX", cache_dir, key) < 0)
                return moat_error_set(err, ENOMEM, "cannot build the root disk");
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot create a temporary file in '%s'", cache_dir);
        if (ftruncate(fd, (off_t)size) < 0) {
                r = moat_error_set(err, errno, "cannot size '%s'", tmp);
                goto fail;
        }

        char nbuf[32];
        snprintf(nbuf, sizeof(nbuf), "%llu", (unsigned long long)inodes);
        char *const argv[] = { "mkfs.ext4", "-q", "-F", "-t", "ext4", "-b", "4096", "-N", nbuf, "-m", "0",
                               "-L", "moat-root", "-O", "^has_journal,^resize_inode",
                               "-E", "root_owner=0:0,nodiscard", "-d", (char *)rootfs_dir, tmp, NULL };
        int64_t t0 = now_ns();
        r = run_tool(argv, err);
        if (r < 0) {
                moat_error_prefix(err, r, "cannot build the root disk of '%s'", rootfs_dir);
                goto fail;
        }
        if (fsync(fd) < 0) {
                r = moat_error_set(err, errno, "cannot write '%s'", tmp);
                goto fail;
        }
        char name[KEY_MAX + 8];
        snprintf(name, sizeof(name), "%s.ext4", key);
        if (renameat(AT_FDCWD, tmp, dirfd, name) < 0) {
                r = moat_error_set(err, errno, "cannot rename '%s' to '%s/%s'", tmp, cache_dir, name);
                goto fail;
        }
        moat_debug("root disk '%s/%s': %llu files, %llu MiB, built in %lld ms", cache_dir, name,
                   (unsigned long long)ts.inodes, (unsigned long long)(size / MIB),
                   (long long)((now_ns() - t0) / 1000000));
        return 0;
fail:
        unlink(tmp);
        return r;
}

int moat_vm_disk_root(const char *cache_dir, const char *key, const char *rootfs_dir, char **out_path,
                      struct moat_error **err)
{
        if (!cache_dir || !*cache_dir || !rootfs_dir || !out_path)
                return moat_error_input(err, EINVAL, "root disk: no cache directory, rootfs or result given");
        if (!key_valid(key))
                return moat_error_input(err, EINVAL,
                                        "invalid root disk key '%s' (1 to %d characters of a-z A-Z 0-9 _ . -)",
                                        key ? key : "", KEY_MAX);
        _cleanup_close_ int dirfd = open_cache_dir(cache_dir, err);
        if (dirfd < 0)
                return dirfd;
        _cleanup_close_ int lockfd = -EBADF;
        int r = lock_key(dirfd, key, true, &lockfd);
        if (r < 0)
                return moat_error_set(err, r, "cannot lock '%s/%s.lock'", cache_dir, key);

        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s.ext4", cache_dir, key) < 0)
                return moat_error_set(err, ENOMEM, "cannot build the root disk");
        struct stat st;
        if (fstatat(dirfd, path + strlen(cache_dir) + 1, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!S_ISREG(st.st_mode))
                        return moat_error_input(err, EEXIST, "'%s' exists and is not a regular file", path);
                /* Mark it used (for prune); mtime stays the build time. */
                const struct timespec ts[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_OMIT } };
                if (utimensat(dirfd, path + strlen(cache_dir) + 1, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        moat_debug("cannot set the atime of '%s': %m", path);
                moat_debug("root disk '%s': cached", path);
        } else if (errno != ENOENT) {
                return moat_error_set(err, errno, "cannot stat '%s'", path);
        } else {
                r = build_root(dirfd, cache_dir, key, rootfs_dir, err);
                if (r < 0)
                        return r;
        }
        *out_path = TAKE_PTR(path);
        return 0;
}

/* ---- the writable layer ---------------------------------------------------------------------- */

int moat_vm_disk_rw(const char *path, uint64_t size, struct moat_error **err)
{
        if (!path || !*path)
                return moat_error_input(err, EINVAL, "writable disk: no path given");
        if (size < MOAT_VM_DISK_RW_MIN || size > (uint64_t)INT64_MAX)
                return moat_error_input(err, EINVAL, "writable disk '%s': size %llu out of range (at least %llu MiB)",
                                        path, (unsigned long long)size, MOAT_VM_DISK_RW_MIN / MIB);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return moat_error_set(err, errno, "cannot create the writable disk '%s'", path);
        int r;
        _cleanup_free_ char *tdir = NULL;
        if (ftruncate(fd, (off_t)size) < 0) {
                r = moat_error_set(err, errno, "cannot size the writable disk '%s'", path);
                goto fail;
        }
        /* The tree to copy in: next to path, so no other directory needs to be writable. */
        if (asprintf(&tdir, "%s.init-XXXXXX", path) < 0) {
                r = moat_error_set(err, ENOMEM, "cannot make the writable disk '%s'", path);
                goto fail;
        }
        if (!mkdtemp(tdir)) {
                r = moat_error_set(err, errno, "cannot create a temporary directory next to '%s'", path);
                free(tdir);
                tdir = NULL;
                goto fail;
        }
        {
                _cleanup_close_ int tfd = open(tdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                static const char *const dirs[] = { "upper", "work" };
                if (tfd < 0) {
                        r = moat_error_set(err, errno, "cannot open '%s'", tdir);
                        goto fail;
                }
                for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                        if (mkdirat(tfd, dirs[i], 0755) < 0 || fchmodat(tfd, dirs[i], 0755, 0) < 0) {
                                r = moat_error_set(err, errno, "cannot create '%s/%s'", tdir, dirs[i]);
                                goto fail;
                        }
                }
        }
        {
                char *const argv[] = { "mkfs.ext4", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-L", "moat-rw",
                                       "-E", "root_owner=0:0,nodiscard,lazy_itable_init=1,lazy_journal_init=1",
                                       "-d", tdir, (char *)path, NULL };
                r = run_tool(argv, err);
        }
        if (r < 0) {
                moat_error_prefix(err, r, "cannot make the writable disk '%s'", path);
                goto fail;
        }
        if (fsync(fd) < 0) {
                r = moat_error_set(err, errno, "cannot write the writable disk '%s'", path);
                goto fail;
        }
        rm_rf_at(AT_FDCWD, tdir);
        return 0;
fail:
        if (tdir)
                rm_rf_at(AT_FDCWD, tdir);
        unlink(path);
        return r;
}

/* ---- prune ----------------------------------------------------------------------------------- */

/* "<key>.ext4" -> key, ".tmp-<key>-XXXXXX" -> key (a builder that died); else false. */
static bool cache_entry_key(const char *name, char key[KEY_MAX + 1])
{
        size_t n = strlen(name);
        const char *k = name, *end = NULL;
        if (n > 5 && STREQ(name + n - 5, ".ext4")) {
                end = name + n - 5;
        } else if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
                k = name + strlen(TMP_PREFIX);
                end = strrchr(k, '-');
        }
        if (!end || end <= k || (size_t)(end - k) > KEY_MAX)
                return false;
        memcpy(key, k, (size_t)(end - k));
        key[end - k] = '\0';
        return key_valid(key);
}

int moat_vm_disk_prune(const char *cache_dir, time_t older_than, struct moat_error **err)
{
        if (!cache_dir || !*cache_dir)
                return moat_error_input(err, EINVAL, "prune: no cache directory given");
        int dfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                if (errno == ENOENT)
                        return 0;
                return moat_error_set(err, errno, "cannot open the disk cache directory '%s'", cache_dir);
        }
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                int e = errno;
                close(dfd);
                return moat_error_set(err, e, "cannot read the disk cache directory '%s'", cache_dir);
        }
        time_t now = time(NULL);
        int removed = 0;
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno)
                                return moat_error_set(err, errno, "cannot read the disk cache directory '%s'",
                                                      cache_dir);
                        break;
                }
                char key[KEY_MAX + 1];
                if (!cache_entry_key(de->d_name, key))
                        continue;
                bool is_tmp = de->d_name[0] == '.';
                _cleanup_close_ int lockfd = -EBADF;
                if (lock_key(dirfd(d), key, false, &lockfd) < 0)
                        continue; /* being built or looked up right now, or cannot tell */
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                time_t used = is_tmp ? st.st_mtime : st.st_atime;
                if (now - used <= older_than)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
                        if (errno != ENOENT)
                                moat_debug("cannot remove '%s/%s': %m", cache_dir, de->d_name);
                        continue;
                }
                if (!is_tmp) {
                        removed++;
                        char lname[KEY_MAX + 8];
                        snprintf(lname, sizeof(lname), "%s.lock", key);
                        unlinkat(dirfd(d), lname, 0); /* lockers re-check the file they locked */
                }
        }
        return removed;
}
