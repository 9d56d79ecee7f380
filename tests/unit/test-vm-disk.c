/* SPDX-License-Identifier: Apache-2.0 */
/* vm/disk.c: the cached root disk (mkfs.ext4 -d) and the writable layer, checked without mounting
 * through e2fsprogs' debugfs/dumpe2fs, and through a read-only loop mount where that works.
 * Prints timings (busybox rootfs, a ~150 MB tree, a 1 GiB writable disk) as diagnostics. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "core/copytree.h"
#include "core/error.h"
#include "core/util.h"
#include "tap.h"
#include "vm/disk.h"

static char base[64];

static const char *tool(const char *name)
{
        static char buf[PATH_MAX];
        const char *dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                snprintf(buf, sizeof(buf), "%s/%s", dirs[i], name);
                if (access(buf, X_OK) == 0)
                        return buf;
        }
        return NULL;
}

/* Runs argv, returns its stdout (stderr dropped) or NULL. */
static char *capture(char *const *argv)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return NULL;
        pid_t pid = fork();
        if (pid == 0) {
                int null_fd = open("/dev/null", O_WRONLY);
                dup2(p[1], 1);
                dup2(null_fd, 2);
                execv(argv[0], argv);
                _exit(127);
        }
        close(p[1]);
        char *out = NULL;
        size_t len;
        int r = read_fd_all(p[0], &out, &len);
        close(p[0]);
        int st;
        waitpid(pid, &st, 0);
        if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

static char *debugfs(const char *img, const char *req)
{
        char *argv[] = { (char *)tool("debugfs"), "-R", (char *)req, (char *)img, NULL };
        return argv[0] ? capture(argv) : NULL;
}

static long inode_of(const char *stat_out)
{
        const char *p = stat_out ? strstr(stat_out, "Inode: ") : NULL;
        return p ? strtol(p + 7, NULL, 10) : -1;
}

static double ms_since(int64_t t0)
{
        return (double)(now_ns() - t0) / 1e6;
}

static void put(const char *dir, const char *name, const char *data)
{
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
                write_all(fd, data, strlen(data));
                close(fd);
        }
}

/* The small tree; returns whether the device node could be made. */
static bool make_tree(const char *t)
{
        char p[PATH_MAX], q[PATH_MAX];
        mkdir(t, 0755);
        snprintf(p, sizeof(p), "%s/d", t);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/d/sub", t);
        mkdir(p, 0711);
        chmod(p, 0711);
        put(t, "a", "hello\n");
        snprintf(p, sizeof(p), "%s/a", t);
        chown(p, 1000, 1000);
        chmod(p, 04750);
        setxattr(p, "user.moat", "yes", 3, 0);
        const struct timespec ts[2] = { { .tv_sec = 978307200 }, { .tv_sec = 978307200 } }; /* 2001-01-01 */
        utimensat(AT_FDCWD, p, ts, 0);
        snprintf(q, sizeof(q), "%s/hl", t);
        link(p, q);
        snprintf(p, sizeof(p), "%s/sl", t);
        symlink("a", p);
        snprintf(p, sizeof(p), "%s/d/long", t);
        symlink("/a/very/long/target/that/does/not/fit/in/the/inode/itself/0123456789/0123456789", p);
        snprintf(p, sizeof(p), "%s/fifo", t);
        mkfifo(p, 0640);
        put(t, "d/sub/deep", "deep\n");
        snprintf(p, sizeof(p), "%s/nod", t);
        return mknod(p, S_IFCHR | 0620, makedev(1, 3)) == 0 && chmod(p, 0620) == 0;
}

/* Read-only loop mount of img in a private mount namespace, checked with plain syscalls. */
static void check_loop_mount(const char *img, bool have_dev)
{
        char mnt[128];
        snprintf(mnt, sizeof(mnt), "%s/mnt", base);
        int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        int n = ctl >= 0 ? ioctl(ctl, LOOP_CTL_GET_FREE) : -1;
        if (ctl >= 0)
                close(ctl);
        if (n < 0) {
                skip("loop mount: no free loop device (/dev/loop-control)");
                return;
        }
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                skip("loop mount: cannot make a private mount namespace");
                return;
        }
        char dev[64];
        snprintf(dev, sizeof(dev), "/dev/loop%d", n);
        int lfd = open(dev, O_RDONLY | O_CLOEXEC);
        int ifd = open(img, O_RDONLY | O_CLOEXEC);
        struct loop_config cfg = { .fd = (uint32_t)ifd, .info = { .lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR } };
        if (lfd < 0 || ifd < 0 || ioctl(lfd, LOOP_CONFIGURE, &cfg) < 0) {
                skip("loop mount: LOOP_CONFIGURE failed");
                goto out;
        }
        mkdir(mnt, 0755);
        if (mount(dev, mnt, "ext4", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "") < 0) {
                skip("loop mount: mounting ext4 from a loop device failed here");
                goto out;
        }
        char p[PATH_MAX], buf[256];
        struct stat a, hl, st;
        snprintf(p, sizeof(p), "%s/a", mnt);
        ok(lstat(p, &a) == 0 && a.st_uid == 1000 && a.st_gid == 1000 && (a.st_mode & 07777) == 04750 &&
                   a.st_mtime == 978307200,
           "mounted: /a is 1000:1000 04750 with its mtime");
        snprintf(p, sizeof(p), "%s/hl", mnt);
        ok(lstat(p, &hl) == 0 && hl.st_ino == a.st_ino && a.st_nlink == 2, "mounted: /hl is a hard link of /a");
        snprintf(p, sizeof(p), "%s/a", mnt);
        ssize_t xl = lgetxattr(p, "user.moat", buf, sizeof(buf));
        ok(xl == 3 && memcmp(buf, "yes", 3) == 0, "mounted: user.moat xattr kept");
        snprintf(p, sizeof(p), "%s/sl", mnt);
        ssize_t rl = readlink(p, buf, sizeof(buf) - 1);
        ok(rl == 1 && buf[0] == 'a', "mounted: /sl -> a");
        snprintf(p, sizeof(p), "%s/d/sub/deep", mnt);
        char *data = NULL;
        size_t len;
        ok(read_file_at(AT_FDCWD, p, &data, &len) >= 0 && data && STREQ(data, "deep\n"), "mounted: /d/sub/deep content");
        free(data);
        if (have_dev) {
                snprintf(p, sizeof(p), "%s/nod", mnt);
                ok(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3), "mounted: /nod is c 1:3");
        }
        ok(umount2(mnt, 0) == 0, "unmounted");
out:
        if (ifd >= 0)
                close(ifd);
        if (lfd >= 0)
                close(lfd); /* autoclear detaches */
}

/* The root disk of the small tree, checked through debugfs. */
static void test_root_contents(const char *cache, const char *tree, bool have_dev, char **img_out)
{
        _cleanup_error_ struct moat_error *err = NULL;
        char *img = NULL;
        int r = moat_vm_disk_root(cache, "sha256_abc.1-x", tree, &img, &err);
        is_int(r, 0, "root disk built%s%s", err ? ": " : "", err ? err->msg : "");
        char want[PATH_MAX];
        snprintf(want, sizeof(want), "%s/sha256_abc.1-x.ext4", cache);
        is_str(img, want, "at <cache>/<key>.ext4");
        struct stat st;
        ok(img && stat(img, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600, "image is a 0600 file");
        *img_out = img;
        if (!img)
                return;

        _cleanup_free_ char *sa = debugfs(img, "stat /a");
        contains(sa, "Type: regular    Mode:  04750", "/a: regular, 04750");
        contains(sa, "User:  1000   Group:  1000", "/a: owner 1000:1000");
        contains(sa, "Links: 2", "/a: two links");
        contains(sa, "mtime: 0x3a4fc880", "/a: mtime kept");
        _cleanup_free_ char *shl = debugfs(img, "stat /hl");
        ok(inode_of(sa) > 0 && inode_of(sa) == inode_of(shl), "/hl is the same inode as /a (hard links kept)");
        _cleanup_free_ char *ca = debugfs(img, "cat /a");
        is_str(ca, "hello\n", "/a content");
        _cleanup_free_ char *ea = debugfs(img, "ea_list /a");
        contains(ea, "user.moat (3) = \"yes\"", "/a: xattr user.moat kept");
        _cleanup_free_ char *ssl = debugfs(img, "stat /sl");
        contains(ssl, "Fast link dest: \"a\"", "/sl -> a");
        _cleanup_free_ char *sll = debugfs(img, "stat /d/long");
        contains(sll, "Type: symlink", "/d/long: a long symlink");
        _cleanup_free_ char *ssub = debugfs(img, "stat /d/sub");
        contains(ssub, "Type: directory    Mode:  0711", "/d/sub: directory 0711");
        _cleanup_free_ char *cdeep = debugfs(img, "cat /d/sub/deep");
        is_str(cdeep, "deep\n", "/d/sub/deep content");
        _cleanup_free_ char *sfifo = debugfs(img, "stat /fifo");
        contains(sfifo, "Type: FIFO    Mode:  0640", "/fifo: fifo 0640");
        if (have_dev) {
                _cleanup_free_ char *snod = debugfs(img, "stat /nod");
                contains(snod, "Type: character special    Mode:  0620", "/nod: char device 0620");
                contains(snod, "Device major/minor number: 01:03", "/nod: 1:3");
        } else {
                skip("mknod failed here: no device node in the tree");
        }
        _cleanup_free_ char *sroot = debugfs(img, "stat /");
        contains(sroot, "Mode:  0755", "/: 0755");
        contains(sroot, "User:     0   Group:     0", "/: 0:0");

        char *dargv[] = { (char *)tool("dumpe2fs"), "-h", img, NULL };
        _cleanup_free_ char *hdr = dargv[0] ? capture(dargv) : NULL;
        contains(hdr, "moat-root", "label moat-root");
        ok(hdr && !strstr(hdr, "has_journal"), "no journal");
        contains(hdr, "Block size:               4096", "4 KiB blocks");

        check_loop_mount(img, have_dev);
}

static void test_cache_hit(const char *cache, const char *img)
{
        struct stat before, after;
        ok(img && stat(img, &before) == 0, "image there");
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *again = NULL;
        /* The rootfs is not read on a hit: a missing one proves no rebuild happened. */
        int r = moat_vm_disk_root(cache, "sha256_abc.1-x", "/nonexistent/rootfs", &again, &err);
        is_int(r, 0, "cache hit%s%s", err ? ": " : "", err ? err->msg : "");
        is_str(again, img, "same path");
        ok(img && stat(img, &after) == 0 && after.st_ino == before.st_ino &&
                   after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
           "same inode, mtime unchanged");
}

static void test_bad_input(const char *cache, const char *tree)
{
        char longkey[200];
        memset(longkey, 'k', 129);
        longkey[129] = '\0';
        const char *bad[] = { "", ".", "..", "a/b", "../x", "a b", "k\n", longkey, "sha256:abc" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_error_ struct moat_error *err = NULL;
                char *out = NULL;
                int r = moat_vm_disk_root(cache, bad[i], tree, &out, &err);
                ok(r == -EINVAL && !out && err && strstr(err->msg, "invalid root disk key"), "bad key #%zu refused", i);
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                char *out = NULL;
                is_int(moat_vm_disk_root(cache, NULL, tree, &out, &err), -EINVAL, "NULL key refused");
        }
        memset(longkey, 'k', 128);
        longkey[128] = '\0';
        {
                _cleanup_error_ struct moat_error *err = NULL;
                _cleanup_free_ char *out = NULL;
                is_int(moat_vm_disk_root(cache, longkey, tree, &out, &err), 0, "a 128-character key is fine");
                if (out)
                        unlink(out);
        }

        _cleanup_error_ struct moat_error *err = NULL;
        char *out = NULL;
        int r = moat_vm_disk_root(cache, "missing", "/nonexistent/moat-rootfs", &out, &err);
        is_int(r, -ENOENT, "missing rootfs dir fails");
        contains(err ? err->msg : NULL, "'/nonexistent/moat-rootfs'", "the error names it");
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/missing.ext4", cache);
        ok(access(p, F_OK) < 0, "no image left behind");

        _cleanup_error_ struct moat_error *err2 = NULL;
        snprintf(p, sizeof(p), "%s/a", tree);
        r = moat_vm_disk_root(cache, "notadir", p, &out, &err2);
        is_int(r, -ENOTDIR, "a rootfs that is a file fails");
        contains(err2 ? err2->msg : NULL, p, "naming it");

        /* mkfs's own failure reaches the message: an xattr too large for a 4 KiB block (ext4 without
         * ea_inode; mkfs.ext4 1.47.0 -d with ea_inode writes a filesystem e2fsck rejects). */
        char shm[64];
        snprintf(shm, sizeof(shm), "/dev/shm/moat-vmdisk-XXXXXX");
        static char big[60000];
        memset(big, 'x', sizeof(big));
        if (mkdtemp(shm) && (put(shm, "f", ""), 1)) {
                snprintf(p, sizeof(p), "%s/f", shm);
                if (setxattr(p, "user.big", big, sizeof(big), 0) == 0) {
                        _cleanup_error_ struct moat_error *err4 = NULL;
                        r = moat_vm_disk_root(cache, "bigxattr", shm, &out, &err4);
                        ok(r < 0 && !out, "a 60000-byte xattr fails the build");
                        contains(err4 ? err4->msg : NULL, "mkfs.ext4' failed (exit status 1): ", "with mkfs's status");
                        contains(err4 ? err4->msg : NULL, "Insufficient space to store extended attribute",
                                 "and mkfs's message");
                        int tmps = 0;
                        DIR *d = opendir(cache);
                        for (struct dirent *de; d && (de = readdir(d));)
                                tmps += strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, "bigxattr.ext4", 13) == 0;
                        if (d)
                                closedir(d);
                        is_int(tmps, 0, "no temporary file or image left");
                } else {
                        skip("no user xattrs on /dev/shm: mkfs failure not tested");
                }
                rm_rf_at(AT_FDCWD, shm);
        } else {
                skip("no /dev/shm: mkfs failure not tested");
        }

        _cleanup_error_ struct moat_error *err3 = NULL;
        snprintf(p, sizeof(p), "%s/rw-small", base);
        is_int(moat_vm_disk_rw(p, 1 << 20, &err3), -EINVAL, "a 1 MiB writable disk is refused");
        ok(access(p, F_OK) < 0, "and nothing is left at its path");
}

static void test_concurrent(const char *tree)
{
        char cache[128];
        snprintf(cache, sizeof(cache), "%s/cache2", base);
        int go[2], res[2];
        if (pipe(go) < 0 || pipe(res) < 0) {
                ok(0, "pipes");
                return;
        }
        pid_t pids[2];
        for (int i = 0; i < 2; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        char c;
                        close(go[1]);
                        if (read(go[0], &c, 1) < 0)
                                _exit(3);
                        struct moat_error *err = NULL;
                        char *out = NULL;
                        if (moat_vm_disk_root(cache, "conc", tree, &out, &err) < 0)
                                _exit(1);
                        struct stat st;
                        if (stat(out, &st) < 0)
                                _exit(2);
                        uint64_t ino = st.st_ino;
                        _exit(write(res[1], &ino, sizeof(ino)) == sizeof(ino) ? 0 : 4);
                }
        }
        close(go[0]);
        close(go[1]); /* both start now */
        close(res[1]);
        int good = 0;
        for (int i = 0; i < 2; i++) {
                int st;
                if (waitpid(pids[i], &st, 0) == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
                        good++;
        }
        uint64_t ino[2] = { 0, 1 };
        ssize_t n0 = read(res[0], &ino[0], sizeof(ino[0]));
        ssize_t n1 = read(res[0], &ino[1], sizeof(ino[1]));
        close(res[0]);
        is_int(good, 2, "two concurrent builders both succeed");
        ok(n0 == 8 && n1 == 8 && ino[0] == ino[1], "both got the same file (built once)");
        int files = 0, tmps = 0;
        DIR *d = opendir(cache);
        for (struct dirent *de; d && (de = readdir(d));) {
                if (de->d_name[0] == '.' && (STREQ(de->d_name, ".") || STREQ(de->d_name, "..")))
                        continue;
                files++;
                tmps += strncmp(de->d_name, ".tmp-", 5) == 0;
        }
        if (d)
                closedir(d);
        ok(files == 2 && tmps == 0, "cache holds conc.ext4 and conc.lock only (%d entries)", files);
}

static void test_rw(void)
{
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/rw.img", base);
        _cleanup_error_ struct moat_error *err = NULL;
        int64_t t0 = now_ns();
        int r = moat_vm_disk_rw(p, 1ull << 30, &err);
        double ms = ms_since(t0);
        is_int(r, 0, "1 GiB writable disk made%s%s", err ? ": " : "", err ? err->msg : "");
        printf("# timing: moat_vm_disk_rw 1 GiB: %.0f ms\n", ms);
        struct stat st;
        ok(stat(p, &st) == 0 && st.st_size == (off_t)(1ull << 30), "size is 1 GiB");
        printf("# rw disk allocated: %lld KiB of 1048576 KiB\n", (long long)st.st_blocks / 2);
        ok((uint64_t)st.st_blocks * 512 < (64ull << 20), "sparse: less than 64 MiB allocated");
        ok((st.st_mode & 0777) == 0600, "mode 0600");
        _cleanup_free_ char *ls = debugfs(p, "ls -l /");
        contains(ls, " upper", "has upper/");
        contains(ls, " work", "has work/");
        _cleanup_free_ char *su = debugfs(p, "stat /upper");
        contains(su, "Type: directory    Mode:  0755", "upper/ is a 0755 directory");
        contains(su, "User:     0   Group:     0", "upper/ is 0:0");
        char *dargv[] = { (char *)tool("dumpe2fs"), "-h", p, NULL };
        _cleanup_free_ char *hdr = dargv[0] ? capture(dargv) : NULL;
        contains(hdr, "moat-rw", "label moat-rw");
        contains(hdr, "Reserved block count:     0", "no reserved blocks");
        char *fargv[] = { (char *)tool("e2fsck"), "-n", "-f", p, NULL };
        _cleanup_free_ char *fsck = fargv[0] ? capture(fargv) : NULL;
        ok(fsck != NULL, "e2fsck -n -f finds it clean");

        _cleanup_error_ struct moat_error *err2 = NULL;
        r = moat_vm_disk_rw(p, 1ull << 30, &err2);
        is_int(r, -EEXIST, "an existing path is refused");
        ok(stat(p, &st) == 0 && st.st_size == (off_t)(1ull << 30), "and left alone");
        unlink(p);

        /* No temporary directory left next to it. */
        int left = 0;
        DIR *d = opendir(base);
        for (struct dirent *de; d && (de = readdir(d));)
                left += strncmp(de->d_name, "rw.img.init-", 12) == 0;
        if (d)
                closedir(d);
        is_int(left, 0, "no rw.img.init-* directory left");
}

static void test_prune(const char *cache)
{
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/sha256_abc.1-x.ext4", cache);
        const struct timespec old[2] = { { .tv_sec = time(NULL) - 7200 }, { .tv_nsec = UTIME_OMIT } };
        utimensat(AT_FDCWD, p, old, 0);
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_vm_disk_prune(cache, 3600, &err);
        is_int(r, 1, "prune removed the one disk unused for 2 h");
        ok(access(p, F_OK) < 0, "it is gone");
        snprintf(p, sizeof(p), "%s/sha256_abc.1-x.lock", cache);
        ok(access(p, F_OK) < 0, "its lock file too");
        is_int(moat_vm_disk_prune(cache, 3600, &err), 0, "nothing else old");
}

/* Copies regular files and symlinks at the top of src into dst until about limit bytes. */
static uint64_t copy_some(const char *src, const char *dst, uint64_t limit)
{
        uint64_t total = 0;
        mkdir(dst, 0755);
        DIR *d = opendir(src);
        for (struct dirent *de; d && total < limit && (de = readdir(d));) {
                char s[PATH_MAX], t[PATH_MAX], l[PATH_MAX];
                snprintf(s, sizeof(s), "%s/%s", src, de->d_name);
                snprintf(t, sizeof(t), "%s/%s", dst, de->d_name);
                struct stat st;
                if (lstat(s, &st) < 0)
                        continue;
                if (S_ISLNK(st.st_mode)) {
                        ssize_t n = readlink(s, l, sizeof(l) - 1);
                        if (n > 0) {
                                l[n] = '\0';
                                symlink(l, t);
                        }
                } else if (S_ISREG(st.st_mode)) {
                        int in = open(s, O_RDONLY | O_CLOEXEC);
                        int out = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777);
                        if (in >= 0 && out >= 0 && moat_copy_data(in, out) >= 0)
                                total += (uint64_t)st.st_size;
                        if (in >= 0)
                                close(in);
                        if (out >= 0)
                                close(out);
                }
        }
        if (d)
                closedir(d);
        return total;
}

static void timings(void)
{
        char exe[PATH_MAX], rootfs[PATH_MAX + 32], cache[128];
        snprintf(cache, sizeof(cache), "%s/cache3", base);
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                exe[n] = '\0';
                char *slash = strrchr(exe, '/');
                if (slash)
                        *slash = '\0';
        }
        snprintf(rootfs, sizeof(rootfs), "%s/helpers/rootfs", n > 0 ? exe : ".");
        if (access(rootfs, F_OK) == 0) {
                _cleanup_error_ struct moat_error *err = NULL;
                _cleanup_free_ char *out = NULL;
                int64_t t0 = now_ns();
                int r = moat_vm_disk_root(cache, "busybox", rootfs, &out, &err);
                double ms = ms_since(t0);
                is_int(r, 0, "root disk of the busybox test rootfs%s%s", err ? ": " : "", err ? err->msg : "");
                struct stat st;
                if (out && stat(out, &st) == 0)
                        printf("# timing: moat_vm_disk_root busybox rootfs: %.0f ms (image %lld MiB, %lld KiB allocated)\n",
                               ms, (long long)st.st_size >> 20, (long long)st.st_blocks / 2);
                _cleanup_free_ char *out2 = NULL;
                t0 = now_ns();
                r = moat_vm_disk_root(cache, "busybox", rootfs, &out2, &err);
                printf("# timing: moat_vm_disk_root busybox rootfs, cached: %.2f ms\n", ms_since(t0));
                ok(r == 0, "cached lookup");
        } else {
                skip("no busybox test rootfs at <build>/tests/helpers/rootfs (ninja -C build builds it)");
        }

        char big[128];
        snprintf(big, sizeof(big), "%s/big", base);
        int64_t t0 = now_ns();
        uint64_t bytes = copy_some("/usr/lib/x86_64-linux-gnu", big, 150ull << 20);
        printf("# copied %llu MB of /usr/lib/x86_64-linux-gnu in %.0f ms\n", (unsigned long long)(bytes / 1000000),
               ms_since(t0));
        if (bytes < (100ull << 20)) {
                skip("could not copy ~150 MB of /usr/lib/x86_64-linux-gnu for the timing");
                return;
        }
        sync();
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *out = NULL;
        t0 = now_ns();
        int r = moat_vm_disk_root(cache, "big", big, &out, &err);
        double ms = ms_since(t0);
        is_int(r, 0, "root disk of a %llu MB tree%s%s", (unsigned long long)(bytes / 1000000), err ? ": " : "",
               err ? err->msg : "");
        struct stat st;
        if (out && stat(out, &st) == 0)
                printf("# timing: moat_vm_disk_root %llu MB tree: %.0f ms (image %lld MiB, %lld MiB allocated)\n",
                       (unsigned long long)(bytes / 1000000), ms, (long long)st.st_size >> 20,
                       (long long)st.st_blocks / 2048);
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (owners, device nodes, loop mount)");
        if (!tool("mkfs.ext4") || !tool("debugfs") || !tool("dumpe2fs"))
                return skip_all("e2fsprogs not installed (apt-get install e2fsprogs)");
        snprintf(base, sizeof(base), "/var/tmp/moat-vmdisk-XXXXXX");
        if (!mkdtemp(base))
                return skip_all("cannot create a temporary directory in /var/tmp");
        umask(022);
        char tree[128], cache[128];
        snprintf(tree, sizeof(tree), "%s/tree", base);
        snprintf(cache, sizeof(cache), "%s/cache/sub", base); /* created by moat_vm_disk_root */
        bool have_dev = make_tree(tree);
        char *img = NULL;

        test_root_contents(cache, tree, have_dev, &img);
        test_cache_hit(cache, img);
        test_bad_input(cache, tree);
        test_concurrent(tree);
        test_rw();
        test_prune(cache);
        timings();

        free(img);
        rm_rf_at(AT_FDCWD, base);
        ok(access(base, F_OK) < 0, "temporary files removed");
        return done_testing();
}
