/* SPDX-License-Identifier: Apache-2.0 */
/* moat_layer_unpack: entry kinds round-trip, whiteouts, compression, diff id,
 * and hostile tars that must fail without touching anything outside the layer. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "image-tar-util.h"
#include "image/image.h"
#include "tap.h"

static char base[64];

static int unpack_file(const char *tar, const char *dir, char diff[72], struct moat_error **err)
{
        mkdir(dir, 0755);
        int fd = open(tar, O_RDONLY | O_CLOEXEC);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = moat_layer_unpack(fd, dfd, diff, err);
        close(fd);
        close(dfd);
        return r;
}

static void sha256_file(const char *path, char out[72])
{
        char *data = NULL;
        size_t len = 0;
        read_file_at(AT_FDCWD, path, &data, &len);
        unsigned char md[32];
        unsigned int n = 0;
        EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
        strcpy(out, "sha256:");
        for (int i = 0; i < 32; i++)
                snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
        free(data);
}

static char *path_in(const char *dir, const char *rel)
{
        static char buf[4][512];
        static int i;
        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, rel);
        return buf[i];
}

/* ------------------------------------------------------------ round trip */

static const unsigned char cap_blob[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00 }; /* v2, eff, net_bind_service */

static void test_roundtrip(const char *filter)
{
        const struct tent ents[] = {
                { T_DIR, "./d", NULL, 0751, 1000, 1001 },
                { T_FILE, "d/f", "hello", 04755, 1000, 1001, .xname = "user.test", .xval = "v1", .xlen = 2 },
                { T_FILE, "d/cap", "#!", 0755, 0, 0, .xname = "security.capability", .xval = cap_blob, .xlen = 20 },
                { T_LINK, "d/l", "f", 0, 7, 8 },
                { T_HARD, "d/h", "d/f" },
                { T_CHR, "dev/null", NULL, 0666, 0, 0, 1, 3 },
                { T_BLK, "dev/loop0", NULL, 0660, 0, 6, 7, 0 },
                { T_FIFO, "p", NULL, 0640, 5, 5 },
                { T_FILE, "x/y/z", "deep", 0600 },
                { T_FILE, "d/f2", "first" },
                { T_FILE, "d/f2", "second" },
                { T_END },
        };
        char tar[128], dir[128], diff[72] = "", plain_digest[72];
        snprintf(tar, sizeof(tar), "%s/rt-%s.tar", base, filter);
        snprintf(dir, sizeof(dir), "%s/rt-%s", base, filter);
        ok(tar_write(tar, filter, ents) == 0, "%s: wrote the tar", filter);
        _cleanup_error_ struct moat_error *err = NULL;
        int r = unpack_file(tar, dir, diff, &err);
        is_int(r, 0, "%s: unpacked (%s)", filter, err ? err->msg : "no error");

        struct stat st;
        ok(stat(path_in(dir, "d"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0751 &&
                   st.st_uid == 1000 && st.st_gid == 1001 && st.st_mtime == 1000000,
           "%s: dir mode, owner and mtime", filter);
        ok(stat(path_in(dir, "d/f"), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 04755 &&
                   st.st_uid == 1000 && st.st_gid == 1001 && st.st_size == 5 && st.st_mtime == 1000001 &&
                   st.st_mtim.tv_nsec == 500,
           "%s: file mode (setuid kept), owner, size, mtime with ns", filter);
        char *data = NULL;
        size_t len;
        read_file_at(AT_FDCWD, path_in(dir, "d/f"), &data, &len);
        is_str(data, "hello", "%s: file content", filter);
        free(data);
        char xv[64] = "";
        ssize_t xn = getxattr(path_in(dir, "d/f"), "user.test", xv, sizeof(xv) - 1);
        ok(xn == 2 && memcmp(xv, "v1", 2) == 0, "%s: user xattr", filter);
        unsigned char cv[64];
        xn = getxattr(path_in(dir, "d/cap"), "security.capability", cv, sizeof(cv));
        ok(xn == 20 && memcmp(cv, cap_blob, 20) == 0, "%s: security.capability kept", filter);
        char lt[64] = "";
        ssize_t ln = readlink(path_in(dir, "d/l"), lt, sizeof(lt) - 1);
        ok(ln == 1 && lt[0] == 'f' && lstat(path_in(dir, "d/l"), &st) == 0 && st.st_uid == 7 && st.st_gid == 8,
           "%s: symlink target and owner", filter);
        struct stat a, b;
        ok(stat(path_in(dir, "d/h"), &a) == 0 && stat(path_in(dir, "d/f"), &b) == 0 && a.st_ino == b.st_ino &&
                   b.st_nlink == 2,
           "%s: hardlink shares the inode", filter);
        ok(stat(path_in(dir, "dev/null"), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) &&
                   (st.st_mode & 0777) == 0666,
           "%s: char device", filter);
        ok(stat(path_in(dir, "dev/loop0"), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == makedev(7, 0) &&
                   st.st_gid == 6,
           "%s: block device", filter);
        ok(lstat(path_in(dir, "p"), &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0640 &&
                   st.st_uid == 5,
           "%s: fifo", filter);
        ok(stat(path_in(dir, "x/y/z"), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600,
           "%s: file whose parents have no entries", filter);
        read_file_at(AT_FDCWD, path_in(dir, "d/f2"), &data, &len);
        is_str(data, "second", "%s: a later entry of the same name replaces the earlier", filter);
        free(data);

        /* diff id = sha256 of the uncompressed tar */
        char plain[128];
        snprintf(plain, sizeof(plain), "%s/rt-plain-ref.tar", base);
        tar_write(plain, "none", ents);
        sha256_file(plain, plain_digest);
        is_str(diff, plain_digest, "%s: diff id is the sha256 of the plain tar", filter);
        if (strcmp(filter, "none") != 0) {
                char comp[72];
                sha256_file(tar, comp);
                ok(strcmp(comp, diff) != 0, "%s: (and not of the compressed file)", filter);
        }
}

/* ------------------------------------------------------------ whiteouts */

static void test_whiteouts(void)
{
        const struct tent ents[] = {
                { T_FILE, ".wh.gone" },
                { T_DIR, "o" },
                { T_FILE, "o/.wh..wh..opq" },
                { T_FILE, "o/new", "n" },
                { T_FILE, "s/.wh.sub" },
                { T_END },
        };
        char tar[128], dir[128];
        snprintf(tar, sizeof(tar), "%s/wh.tar", base);
        snprintf(dir, sizeof(dir), "%s/wh", base);
        tar_write(tar, "none", ents);
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(unpack_file(tar, dir, NULL, &err), 0, "whiteout layer unpacked (%s)", err ? err->msg : "ok");
        struct stat st;
        ok(lstat(path_in(dir, "gone"), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0),
           ".wh.gone became a 0:0 char device 'gone'");
        ok(lstat(path_in(dir, ".wh.gone"), &st) < 0, "no '.wh.gone' file left");
        ok(lstat(path_in(dir, "s/sub"), &st) == 0 && S_ISCHR(st.st_mode), "whiteout in a subdir");
        char v[8] = "";
        ssize_t n = getxattr(path_in(dir, "o"), "trusted.overlay.opaque", v, sizeof(v));
        ok(n == 1 && v[0] == 'y', "opaque marker set trusted.overlay.opaque=y");
        ok(lstat(path_in(dir, "o/.wh..wh..opq"), &st) < 0 && lstat(path_in(dir, "o/new"), &st) == 0,
           "no opaque marker file; siblings kept");
}

/* ------------------------------------------------------------ hostile tars */

static bool canary_intact(void)
{
        char *data = NULL;
        size_t len;
        bool okk = read_file_at(AT_FDCWD, path_in(base, "canary/file"), &data, &len) >= 0 && STREQ(data, "canary");
        free(data);
        _cleanup_closedir_ DIR *d = opendir(path_in(base, "canary"));
        int n = 0;
        struct dirent *de;
        while (d && (de = readdir(d)))
                n++;
        struct stat st;
        return okk && n == 3 && lstat(path_in(base, "x"), &st) < 0 && lstat(path_in(base, "evil"), &st) < 0;
}

static void hostile(const char *label, const struct tent *ents, const char *must_name)
{
        static int n;
        char tar[128], dir[128];
        snprintf(tar, sizeof(tar), "%s/hostile-%d.tar", base, n);
        snprintf(dir, sizeof(dir), "%s/layer%d", base, n++);
        if (!ok(tar_write(tar, "none", ents) == 0, "%s: wrote the tar", label))
                return;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = unpack_file(tar, dir, NULL, &err);
        ok(r < 0, "%s: refused (%d)", label, r);
        contains(err ? err->msg : NULL, must_name, "%s: the error names the entry", label);
        ok(canary_intact(), "%s: nothing outside the layer dir created or changed", label);
}

static void test_hostile(void)
{
        mkdir(path_in(base, "canary"), 0755);
        FILE *f = fopen(path_in(base, "canary/file"), "we");
        if (f) {
                fputs("canary", f);
                fclose(f);
        }
        ok(canary_intact(), "canary in place before the hostile tars");
        char abs[128];
        snprintf(abs, sizeof(abs), "%s/evil", base);
        struct tent t_dotdot[] = { { T_FILE, "../x", "bad" }, { T_END } };
        hostile("'../x'", t_dotdot, "'../x'");
        struct tent t_deep[] = { { T_DIR, "a" }, { T_FILE, "a/../../x", "bad" }, { T_END } };
        hostile("'a/../../x'", t_deep, "'a/../../x'");
        struct tent t_abs[] = { { T_FILE, abs, "bad" }, { T_END } };
        hostile("absolute name", t_abs, abs);
        struct tent t_etc[] = { { T_FILE, "/etc/moat-unpack-test-x", "bad" }, { T_END } };
        hostile("'/etc/x'", t_etc, "/etc/moat-unpack-test-x");
        struct stat st;
        ok(lstat("/etc/moat-unpack-test-x", &st) < 0, "/etc untouched");
        struct tent t_symroot[] = { { T_LINK, "a", "/" }, { T_FILE, "a/etc/passwd", "bad" }, { T_END } };
        hostile("symlink 'a -> /' then 'a/etc/passwd'", t_symroot, "'a/etc/passwd'");
        struct tent t_symabs[] = { { T_LINK, "a", base }, { T_FILE, "a/evil", "bad" }, { T_END } };
        hostile("symlink to the outside dir then a file through it", t_symabs, "'a/evil'");
        struct tent t_chain[] = { { T_DIR, "d" },
                                  { T_LINK, "d/up", ".." },
                                  { T_LINK, "b", "d/up/d/up/.." },
                                  { T_FILE, "b/canary/file", "bad" },
                                  { T_END } };
        hostile("symlink chain to '..'", t_chain, "'b/canary/file'");
        struct tent t_chain2[] = { { T_LINK, "u", ".." }, { T_DIR, "u/canary/sub" }, { T_END } };
        hostile("dir through a symlink to '..'", t_chain2, "'u/canary/sub");
        struct tent t_hard[] = { { T_HARD, "h", "../../x" }, { T_END } };
        hostile("hardlink to '../../x'", t_hard, "'h'");
        struct tent t_hard2[] = { { T_LINK, "up", ".." }, { T_HARD, "h", "up/canary/file" }, { T_END } };
        hostile("hardlink through a symlink to outside", t_hard2, "'h'");
        struct tent t_hardabs[] = { { T_HARD, "h", "/etc/passwd" }, { T_END } };
        hostile("hardlink to '/etc/passwd'", t_hardabs, "'h'");
        struct tent t_wh[] = { { T_FILE, ".wh..." }, { T_END } };
        hostile("whiteout of '..'", t_wh, "'.wh...'");
        struct tent t_wh2[] = { { T_DIR, "s" }, { T_FILE, "s/.wh.." }, { T_END } };
        hostile("whiteout of '.'", t_wh2, "'s/.wh..'");
        struct tent t_wh3[] = { { T_FILE, ".wh../canary/file" }, { T_END } };
        hostile("'.wh..' with a slash trick", t_wh3, "'.wh../canary/file'");
        struct tent t_wh4[] = { { T_FILE, "s/.wh.../canary" }, { T_END } };
        hostile("'.wh...' with a slash trick", t_wh4, "'s/.wh.../canary'");
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (ownership, devices, security.capability)");
        snprintf(base, sizeof(base), "/tmp/moat-unpack-XXXXXX");
        if (!mkdtemp(base))
                return skip_all("no temp dir");
        test_roundtrip("none");
        test_roundtrip("gzip");
        test_roundtrip("zstd");
        test_whiteouts();
        test_hostile();
        rm_rf_at(AT_FDCWD, base);
        return done_testing();
}
