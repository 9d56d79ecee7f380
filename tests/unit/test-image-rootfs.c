/* SPDX-License-Identifier: Apache-2.0 */
/* rootfs.c: three layers (a whiteout, an opaque dir) stacked by overlayfs ("lowerdir+"
 * and the "lowerdir=" string) and by the copy fallback give the same view; writes go
 * to upper/; umount leaves nothing mounted and nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/util.h"
#include "image/image.h"
#include "image/rootfs-internal.h"
#include "tap.h"

static char base[64];

static void put(const char *layer, const char *rel, const char *data)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/%s/%s", base, layer, rel);
        char *slash = strrchr(p, '/');
        *slash = '\0';
        mkdir_p(p, 0755);
        *slash = '/';
        if (!data) { /* whiteout */
                mknod(p, S_IFCHR | 0, makedev(0, 0));
                return;
        }
        FILE *f = fopen(p, "we");
        if (f) {
                fputs(data, f);
                fclose(f);
        }
}

static char *slurp(const char *root, const char *rel)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        char *data = NULL;
        size_t len;
        if (read_file_at(AT_FDCWD, p, &data, &len) < 0)
                return NULL;
        return data;
}

static bool exists(const char *root, const char *rel)
{
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        return lstat(p, &st) == 0;
}

static bool mounted_under(const char *dir)
{
        char *mi = NULL;
        size_t len;
        read_file_at(AT_FDCWD, "/proc/self/mountinfo", &mi, &len);
        bool r = mi && strstr(mi, dir);
        free(mi);
        return r;
}

static void check_view(const char *label, const char *root)
{
        char *s;
        is_str(s = slurp(root, "a/file1"), "2", "%s: upper layer's file wins", label);
        free(s);
        ok(!exists(root, "a/keep"), "%s: whiteout hides a/keep", label);
        ok(exists(root, "c") && !exists(root, "c/x"), "%s: whiteout hides c/x, c stays", label);
        ok(!exists(root, "b/old"), "%s: opaque dir hides the lower b/old", label);
        is_str(s = slurp(root, "b/new"), "n", "%s: opaque dir's own content", label);
        free(s);
        is_str(s = slurp(root, "top"), "t3", "%s: top layer", label);
        free(s);
        is_str(s = slurp(root, "d/only1"), "o1", "%s: untouched lower file", label);
        free(s);
        ok(exists(root, "e") && !exists(root, "e/x"), "%s: dir created in layer 3 over a whiteout", label);
}

static void run(const char *label, int mode)
{
        char l1[128], l2[128], l3[128], dir[128];
        snprintf(l1, sizeof(l1), "%s/l1", base);
        snprintf(l2, sizeof(l2), "%s/l2", base);
        snprintf(l3, sizeof(l3), "%s/l3", base);
        snprintf(dir, sizeof(dir), "%s/c-%s", base, label);
        char *layers[] = { l1, l2, l3 };
        moat_rootfs_force_copy(mode == 2);
        moat_rootfs_force_lowerdir_string(mode == 1);
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *rootfs = NULL;
        int r = moat_rootfs_mount_layers(layers, 3, dir, &rootfs, &err);
        if (!is_int(r, 0, "%s: mounted (%s)", label, err ? err->msg : "ok"))
                return;
        ok(moat_rootfs_is_overlay(dir) == (mode != 2), "%s: %s", label, mode == 2 ? "a copy" : "an overlay mount");
        check_view(label, rootfs);
        char p[512];
        snprintf(p, sizeof(p), "%s/written", rootfs);
        FILE *f = fopen(p, "we");
        if (f) {
                fputs("w", f);
                fclose(f);
        }
        snprintf(p, sizeof(p), "%s/a/file1", rootfs);
        unlink(p);
        char up[256];
        snprintf(up, sizeof(up), "%s/upper", dir);
        if (mode != 2) {
                ok(exists(up, "written"), "%s: a write lands in upper/", label);
                ok(exists(up, "a/file1"), "%s: a delete leaves a whiteout in upper/", label);
        }
        ok(!exists(l3, "written") && !exists(l2, "written") && exists(l2, "a/file1"), "%s: the layers are unchanged",
           label);
        r = moat_image_rootfs_umount(dir, &err);
        is_int(r, 0, "%s: umount (%s)", label, err ? err->msg : "ok");
        ok(!mounted_under(dir), "%s: nothing left mounted", label);
        ok(!exists(dir, "rootfs") && !exists(dir, "upper") && !exists(dir, "work"), "%s: rootfs, upper, work removed",
           label);
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (mounts, whiteout devices)");
        snprintf(base, sizeof(base), "/tmp/moat-rootfs-XXXXXX");
        if (!mkdtemp(base))
                return skip_all("no temp dir");
        put("l1", "a/file1", "1");
        put("l1", "a/keep", "k");
        put("l1", "b/old", "o");
        put("l1", "c/x", "x");
        put("l1", "top", "t1");
        put("l1", "d/only1", "o1");
        put("l1", "e/x", "x");
        put("l2", "a/file1", "2");
        put("l2", "b/new", "n");
        put("l2", "c/x", NULL);
        put("l2", "e", NULL);
        char p[256];
        snprintf(p, sizeof(p), "%s/l2/b", base);
        ok(setxattr(p, "trusted.overlay.opaque", "y", 1, 0) == 0, "layer 2: b marked opaque");
        put("l3", "top", "t3");
        put("l3", "a/keep", NULL);
        snprintf(p, sizeof(p), "%s/l3/e", base);
        mkdir(p, 0755);

        run("lowerdir+", 0);
        run("lowerdir-string", 1);
        run("copy", 2);
        /* zero layers: an empty root */
        char dir[128];
        snprintf(dir, sizeof(dir), "%s/c-empty", base);
        moat_rootfs_force_copy(false);
        moat_rootfs_force_lowerdir_string(false);
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *rootfs = NULL;
        is_int(moat_rootfs_mount_layers(NULL, 0, dir, &rootfs, &err), 0, "no layers: mounted (%s)",
               err ? err->msg : "ok");
        is_int(moat_image_rootfs_umount(dir, &err), 0, "no layers: umount");
        ok(!mounted_under(dir), "no layers: nothing left mounted");
        rm_rf_at(AT_FDCWD, base);
        return done_testing();
}
