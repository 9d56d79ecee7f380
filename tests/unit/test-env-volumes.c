/* SPDX-License-Identifier: Apache-2.0 */
/* Volumes of environment services: named (with the image's content copied in),
 * external, anonymous, hostile symlinks in the rootfs, a copy that fails half-way,
 * and `down -v`. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/error.h"
#include "core/util.h"
#include "env/volumes.h"
#include "tap.h"

static char base[] = "/tmp/moat-vol-XXXXXX";
static char volroot[256], envdir[256], rootfs[256], outside[256];
static bool have_xattr;

static struct moat_env_volume vols[] = {
        { .name = "dvol" },  { .name = "evil" },  { .name = "evil2" }, { .name = "okvol" },  { .name = "emptyvol" },
        { .name = "filevol" }, { .name = "ext", .external = true }, { .name = "deep" }, { .name = "stale" },
        { .name = "norootfs" }, { .name = ".hidden" }, { .name = "a/b" },
};
static struct moat_envfile file = { .volumes = vols, .n_volumes = ARRAY_SIZE(vols) };

static void die(const char *what)
{
        perror(what);
        exit(1);
}

/* write_string_at does not create */
static int wr(const char *path, const char *data)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return write_all(fd, data, strlen(data)) < 0 ? -errno : 0;
}

static void put(const char *rel, const char *data, mode_t mode, uid_t uid, gid_t gid)
{
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", rootfs, rel);
        if (wr(p, data) < 0 || chown(p, uid, gid) < 0 || chmod(p, mode) < 0)
                die(p);
}

static void mk(const char *rel, mode_t mode, uid_t uid, gid_t gid)
{
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", rootfs, rel);
        if (mkdir_p(p, 0755) < 0 || chown(p, uid, gid) < 0 || chmod(p, mode) < 0)
                die(p);
}

static void lnk(const char *target, const char *rel)
{
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", rootfs, rel);
        if (symlink(target, p) < 0)
                die(p);
}

static void make_rootfs(void)
{
        mk("data", 0750, 1234, 5678);
        put("data/a.txt", "hello", 0640, 1000, 1001);
        put("data/b", "#!/bin/sh\n", 04755, 0, 0);
        mk("data/sub", 0700, 33, 33);
        put("data/sub/c.txt", "deep", 0600, 33, 33);
        lnk("a.txt", "data/link");
        lnk("/etc/passwd", "data/esc");     /* copied as a link, never followed */
        lnk("../../../../..", "data/up");  /* same */
        char p[PATH_MAX], q[PATH_MAX];
        snprintf(p, sizeof p, "%s/data/a.txt", rootfs);
        snprintf(q, sizeof q, "%s/data/hl", rootfs);
        if (link(p, q) < 0)
                die(q);
        snprintf(p, sizeof p, "%s/data/fifo", rootfs);
        if (mkfifo(p, 0620) < 0 || chmod(p, 0620) < 0)
                die(p);
        snprintf(p, sizeof p, "%s/data/a.txt", rootfs);
        have_xattr = setxattr(p, "user.moat", "yes", 3, 0) == 0;
        mk("empty", 0711, 0, 0);
        put("file", "not a dir", 0644, 0, 0);
        /* hostile: the volume targets are symlinks out of the rootfs */
        lnk("../outside", "evil"); /* rootfs/../outside: the host's base/outside */
        lnk(outside, "evil2");
        lnk("/data", "ok"); /* resolved inside the rootfs: rootfs/data */
        /* deeper than the copy goes: the copy fails half-way */
        char d[PATH_MAX * 2];
        int n = snprintf(d, sizeof d, "%s/deep", rootfs);
        for (int i = 0; i < 300; i++)
                n += snprintf(d + n, sizeof d - n, "/d");
        if (mkdir_p(d, 0755) < 0)
                die("deep");
        snprintf(p, sizeof p, "%s/deep/first", rootfs);
        if (wr(p, "x") < 0)
                die(p);
}

static struct moat_env_mount mnt(const char *source, const char *target, bool ro)
{
        return (struct moat_env_mount){ .type = MOAT_MOUNT_VOLUME, .source = (char *)source, .target = (char *)target,
                                        .read_only = ro };
}

/* Runs moat_env_volumes_mounts for one mount; *source: the bind source (NULL on failure). */
static int run1(struct moat_env_mount m, const char *project, const char *root, char **source, char **msg)
{
        struct moat_env_mount ms[2] = { { .type = MOAT_MOUNT_TMPFS, .target = "/tmp" }, m };
        struct moat_env_service s = { .name = "web", .mounts = ms, .n_mounts = 2 };
        json_t *mounts = json_array();
        struct moat_error *err = NULL;
        int r = moat_env_volumes_mounts(&file, &s, project, volroot, envdir, root, mounts, &err);
        *source = NULL;
        if (msg)
                *msg = NULL;
        if (r >= 0 && json_array_size(mounts) == 1)
                *source = strdup(json_string_value(json_object_get(json_array_get(mounts, 0), "source")));
        if (err && msg)
                *msg = strdup(err->msg);
        moat_error_free(err);
        json_decref(mounts);
        return r;
}

static bool exists(const char *dir, const char *rel)
{
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, rel);
        return lstat(p, &st) == 0;
}

static int count_entries(const char *dir)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (!STREQ(e->d_name, ".") && !STREQ(e->d_name, ".."))
                        n++;
        return n;
}

static bool has_tmp(const char *dir)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)))
                if (!strncmp(e->d_name, ".tmp-", 5))
                        return true;
        return false;
}

static void test_named(void)
{
        /* the mount object itself */
        struct moat_env_mount ms[] = { mnt("dvol", "/data", false) };
        struct moat_env_service s = { .name = "web", .mounts = ms, .n_mounts = 1 };
        json_t *mounts = json_array();
        json_array_append_new(mounts, json_string("kept"));
        struct moat_error *err = NULL;
        int r = moat_env_volumes_mounts(&file, &s, "proj", volroot, envdir, rootfs, mounts, &err);
        is_int(r, 0, "named volume: made (%s)", err ? err->msg : "");
        is_int(json_array_size(mounts), 2, "named volume: one mount appended");
        json_t *m = json_array_get(mounts, 1);
        char want[512];
        snprintf(want, sizeof want, "%s/proj/dvol/_data", volroot);
        is_str(json_string_value(json_object_get(m, "destination")), "/data", "mount destination");
        is_str(json_string_value(json_object_get(m, "type")), "bind", "mount type");
        is_str(json_string_value(json_object_get(m, "source")), want, "mount source is <volroot>/<project>/<name>/_data");
        json_t *o = json_object_get(m, "options");
        is_int(json_array_size(o), 2, "two options");
        is_str(json_string_value(json_array_get(o, 0)), "rbind", "option rbind");
        is_str(json_string_value(json_array_get(o, 1)), "rw", "option rw");
        moat_error_free(err);
        json_decref(mounts);

        /* the content of the image, copied */
        char p[PATH_MAX], buf[PATH_MAX];
        struct stat st, st2;
        _cleanup_free_ char *data = NULL;
        snprintf(p, sizeof p, "%s/a.txt", want);
        ok(read_file_at(AT_FDCWD, p, &data, NULL) >= 0 && STREQ(data, "hello"), "a.txt copied");
        ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0640 && st.st_uid == 1000 && st.st_gid == 1001,
           "a.txt: mode 0640, owner 1000:1001");
        snprintf(p, sizeof p, "%s/hl", want);
        ok(stat(p, &st2) == 0 && st2.st_ino == st.st_ino && st2.st_nlink == 2, "hl is a hard link of a.txt again");
        if (have_xattr) {
                char v[8] = "";
                snprintf(p, sizeof p, "%s/a.txt", want);
                ok(getxattr(p, "user.moat", v, sizeof v) == 3 && !memcmp(v, "yes", 3), "a.txt: xattr kept");
        } else
                skip("the filesystem under /tmp takes no user xattrs");
        snprintf(p, sizeof p, "%s/b", want);
        ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 04755, "b: setuid mode 04755 kept");
        snprintf(p, sizeof p, "%s/sub", want);
        ok(stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 && st.st_uid == 33,
           "sub: dir 0700 owned by 33");
        ok(exists(want, "sub/c.txt"), "sub/c.txt copied");
        snprintf(p, sizeof p, "%s/link", want);
        ssize_t n = readlink(p, buf, sizeof buf - 1);
        ok(n == 5 && !memcmp(buf, "a.txt", 5), "link copied as a symlink to 'a.txt'");
        snprintf(p, sizeof p, "%s/esc", want);
        n = readlink(p, buf, sizeof buf - 1);
        ok(n == 11 && !memcmp(buf, "/etc/passwd", 11), "hostile symlink copied as a link, not followed");
        ok(lstat(p, &st) == 0 && S_ISLNK(st.st_mode), "esc is a symlink in the volume");
        snprintf(p, sizeof p, "%s/up", want);
        ok(lstat(p, &st) == 0 && S_ISLNK(st.st_mode), "up ('../../..') is a symlink in the volume");
        snprintf(p, sizeof p, "%s/fifo", want);
        ok(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0620, "fifo copied, mode 0620");
        ok(stat(want, &st) == 0 && (st.st_mode & 07777) == 0750 && st.st_uid == 1234 && st.st_gid == 5678,
           "_data takes the target's mode 0750 and owner 1234:5678");
        snprintf(p, sizeof p, "%s/proj/dvol", volroot);
        ok(!has_tmp(p), "no temporary directory left");
        is_int(count_entries(p), 1, "the volume dir holds only _data");

        /* an existing volume is used as it is: no copy again */
        snprintf(p, sizeof p, "%s/a.txt", want);
        unlink(p);
        snprintf(p, sizeof p, "%s/marker", want);
        wr(p, "mine");
        _cleanup_free_ char *src = NULL, *msg = NULL;
        r = run1(mnt("dvol", "/data", true), "proj", rootfs, &src, &msg);
        is_int(r, 0, "existing volume: ok (%s)", msg ? msg : "");
        is_str(src, want, "existing volume: same source");
        ok(exists(want, "marker") && !exists(want, "a.txt"), "existing volume: left as it was, not copied again");
        /* read-only */
        struct moat_env_mount ms2[] = { mnt("dvol", "/data", true) };
        s.mounts = ms2;
        mounts = json_array();
        r = moat_env_volumes_mounts(&file, &s, "proj", volroot, envdir, rootfs, mounts, NULL);
        is_str(json_string_value(json_array_get(json_object_get(json_array_get(mounts, 0), "options"), 1)), "ro",
               "read_only: option ro");
        json_decref(mounts);
}

static void test_hostile(void)
{
        static const char *const names[] = { "evil", "evil2" };
        for (size_t i = 0; i < 2; i++) {
                char target[32];
                snprintf(target, sizeof target, "/%s", names[i]);
                _cleanup_free_ char *src = NULL, *msg = NULL;
                int r = run1(mnt(names[i], target, false), "proj", rootfs, &src, &msg);
                is_int(r, 0, "%s: a symlink out of the rootfs at the target: ok (%s)", names[i], msg ? msg : "");
                ok(src && !exists(src, "secret"), "%s: nothing of the outside copied", names[i]);
                is_int(src ? count_entries(src) : -1, 0, "%s: the volume is empty", names[i]);
        }
        _cleanup_free_ char *src = NULL, *msg = NULL;
        int r = run1(mnt("okvol", "/ok", false), "proj", rootfs, &src, &msg);
        is_int(r, 0, "a symlink inside the rootfs: ok (%s)", msg ? msg : "");
        ok(src && exists(src, "a.txt") && exists(src, "sub/c.txt"), "okvol: resolved in the rootfs, /data copied");
}

static void test_plain(void)
{
        struct stat st;
        _cleanup_free_ char *src = NULL, *msg = NULL;
        int r = run1(mnt("emptyvol", "/empty", false), "proj", rootfs, &src, &msg);
        is_int(r, 0, "empty target: ok");
        ok(src && stat(src, &st) == 0 && (st.st_mode & 07777) == 0755 && count_entries(src) == 0,
           "empty target: an empty 0755 volume");
        free(src);
        r = run1(mnt("filevol", "/file", false), "proj", rootfs, &src, &msg);
        is_int(r, 0, "a file at the target: ok");
        is_int(src ? count_entries(src) : -1, 0, "a file at the target: empty volume");
        free(src);
        r = run1(mnt("norootfs", "/data", false), "proj", NULL, &src, &msg);
        is_int(r, 0, "no rootfs: ok");
        is_int(src ? count_entries(src) : -1, 0, "no rootfs: empty volume");
}

static void test_external(void)
{
        char want[512];
        snprintf(want, sizeof want, "%s/external/ext/_data", volroot);
        _cleanup_free_ char *src = NULL, *msg = NULL;
        int r = run1(mnt("ext", "/data", false), "proj", rootfs, &src, &msg);
        is_int(r, -ENOENT, "external missing: -ENOENT");
        contains(msg, "'ext'", "the message names the volume");
        contains(msg, want, "the message names the path");
        contains(msg, "'web'", "the message names the service");
        ok(!exists(volroot, "external"), "external missing: nothing made");
        free(msg);
        msg = NULL;
        mkdir_p(want, 0755);
        r = run1(mnt("ext", "/data", false), "proj", rootfs, &src, &msg);
        is_int(r, 0, "external present: ok");
        is_str(src, want, "external present: its path");
        is_int(count_entries(want), 0, "external: nothing copied into it");
        free(src);
        free(msg);
        msg = NULL;
        /* a project named external would take the external volumes' directory */
        r = run1(mnt("dvol", "/data", false), "external", rootfs, &src, &msg);
        is_int(r, -EINVAL, "project 'external' with a named volume: refused");
        contains(msg, "external", "the message says why");
}

static void test_anonymous(void)
{
        char want[512];
        /* run1 puts the volume at index 1 of the service's mounts */
        snprintf(want, sizeof want, "%s/volumes/web-1/_data", envdir);
        _cleanup_free_ char *src = NULL, *msg = NULL;
        int r = run1(mnt(NULL, "/data", false), "proj", rootfs, &src, &msg);
        is_int(r, 0, "anonymous: ok (%s)", msg ? msg : "");
        is_str(src, want, "anonymous: <envdir>/volumes/<service>-<k>/_data");
        ok(exists(want, "a.txt"), "anonymous: the image's content copied");
}

static void test_bad(void)
{
        static const char *const bad[] = { ".hidden", "a/b" };
        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *src = NULL, *msg = NULL;
                int r = run1(mnt(bad[i], "/data", false), "proj", rootfs, &src, &msg);
                is_int(r, -EINVAL, "volume name '%s': refused", bad[i]);
                contains(msg, bad[i], "the message names it");
        }
        _cleanup_free_ char *src = NULL, *msg = NULL;
        int r = run1(mnt("nope", "/data", false), "proj", rootfs, &src, &msg);
        is_int(r, -EINVAL, "undeclared volume: refused");
        contains(msg, "'nope'", "the message names it");
        free(msg);
        r = run1(mnt("dvol", "/data", false), "../x", rootfs, &src, &msg);
        is_int(r, -EINVAL, "project '../x': refused");
}

static void test_crash(void)
{
        /* a leftover of an interrupted copy is removed, the volume made anew */
        char dir[512], p[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/proj/stale", volroot);
        snprintf(p, sizeof p, "%s/.tmp-_data-abcdef", dir);
        mkdir_p(p, 0755);
        snprintf(p, sizeof p, "%s/.tmp-_data-abcdef/half", dir);
        wr(p, "half");
        _cleanup_free_ char *src = NULL, *msg = NULL;
        int r = run1(mnt("stale", "/data", false), "proj", rootfs, &src, &msg);
        is_int(r, 0, "stale temporary copy: ok");
        ok(!has_tmp(dir), "stale temporary copy removed");
        ok(src && exists(src, "a.txt") && !exists(src, "half"), "the volume is the full copy");

        /* a copy failing half-way leaves no _data (nor a temp dir) */
        free(src);
        r = run1(mnt("deep", "/deep", false), "proj", rootfs, &src, &msg);
        ok(r < 0, "copy failing half-way: an error (%d)", r);
        contains(msg, "'web'", "the message names the service");
        contains(msg, "'deep'", "the message names the volume");
        contains(msg, "/deep/d/d", "the message names the path that failed");
        snprintf(dir, sizeof dir, "%s/proj/deep", volroot);
        ok(!exists(dir, "_data"), "no _data that would look complete");
        ok(!has_tmp(dir), "no temporary copy left");
}

static void test_remove(void)
{
        char p[PATH_MAX];
        struct moat_error *err = NULL;
        snprintf(p, sizeof p, "%s/proj", volroot);
        ok(exists(p, "dvol/_data"), "before remove: the volumes are there");
        int r = moat_env_volumes_remove(volroot, "proj", &err);
        is_int(r, 0, "remove: ok (%s)", err ? err->msg : "");
        ok(!exists(volroot, "proj"), "remove: <volroot>/<project> gone");
        ok(exists(volroot, "external/ext/_data"), "remove: the external volume is kept");
        is_int(moat_env_volumes_remove(volroot, "proj", NULL), 0, "remove again: missing is not an error");
        is_int(moat_env_volumes_remove(volroot, "external", NULL), 0, "remove of project 'external': no-op");
        ok(exists(volroot, "external/ext/_data"), "project 'external': the external volumes are kept");
        moat_error_free(err);
        err = NULL;
        r = moat_env_volumes_remove(volroot, "../x", &err);
        is_int(r, -EINVAL, "remove '../x': refused");
        contains(err ? err->msg : NULL, "'../x'", "the message names the project");
        moat_error_free(err);
        is_int(moat_env_volumes_remove(volroot, ".", NULL), -EINVAL, "remove '.': refused");
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (chown of the fake rootfs)");
        if (!mkdtemp(base))
                die("mkdtemp");
        snprintf(volroot, sizeof volroot, "%s/vols", base);
        snprintf(envdir, sizeof envdir, "%s/env", base);
        snprintf(rootfs, sizeof rootfs, "%s/rootfs", base);
        snprintf(outside, sizeof outside, "%s/outside", base);
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/secret", outside);
        if (mkdir_p(rootfs, 0755) < 0 || mkdir_p(outside, 0755) < 0 || wr(p, "s") < 0)
                die("setup");
        make_rootfs();

        test_named();
        test_hostile();
        test_plain();
        test_external();
        test_anonymous();
        test_bad();
        test_crash();
        test_remove();

        rm_rf_at(AT_FDCWD, base);
        return done_testing();
}
