/* SPDX-License-Identifier: Apache-2.0 */
/* Escape attempts through the rootfs: symlinked destinations (CVE-2021-30465),
 * a symlinked /proc, masked paths and /dev/console that are symlinks
 * (CVE-2025-31133, CVE-2025-52565), devices outside /dev.  Each runs with the
 * new mount API and with mount(2). */
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include "core/path.h"
#include "linux/devices.h"
#include "linux/mounts.h"
#include "linux/rootfs.h"
#include "test-rootfs-util.h"

struct variant {
        const char *name;
        bool legacy, walk;
};

static char *rootfs, *hostdir, *base;

static char *subroot(void)
{
        char *p = NULL;
        if (asprintf(&p, "%s/rootXXXXXX", base) < 0 || !mkdtemp(p))
                _exit(1);
        return p;
}

static void setup(const struct variant *v)
{
        moat_mount_force_legacy(v->legacy);
        path_force_fallback(v->walk);
}

static void free_err(struct moat_error **e)
{
        moat_error_free(*e);
        *e = NULL;
}

/* A tmpfs and a bind on destinations that are symlinks pointing far up. */
static void escape_dest(void *arg)
{
        setup(arg);
        char esc[4096], p[4096];
        snprintf(esc, sizeof(esc), "../../../../../../../..%s", hostdir);
        put_link(rootfs, "evil-abs", "/../../../../etc");
        put_link(rootfs, "evil-rel", esc);
        char dang[4096];
        snprintf(dang, sizeof(dang), "../../../../..%s-nope", hostdir);
        put_link(rootfs, "dangling", dang);
        snprintf(p, sizeof(p), "%s%s", rootfs, hostdir);
        mkdir_p(p, 0755); /* the symlink's target, inside the rootfs */
        struct moat_mount ms[] = {
                mnt("/evil-abs", "tmpfs", "tmpfs", 0, NULL),
                mnt("/evil-rel/sub", "tmpfs", "tmpfs", 0, NULL),
                mnt("/evil-rel/file", "bind", "/etc/hostname", MS_BIND, NULL),
                mnt("/dangling/sub", "tmpfs", "tmpfs", 0, NULL),
        };
        struct moat_spec s = { .root.path = rootfs, .mounts = ms, .n_mounts = ARRAY_SIZE(ms) };
        int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct moat_error *err = NULL;
        for (size_t i = 0; i < 3; i++) {
                int r = moat_rootfs_mount_one(rootfd, &s, i, NULL, &err);
                report(r == 0, "mounts[%zu] on a symlinked destination (%s)", i, err ? err->msg : "ok");
                free_err(&err);
        }
        /* A dangling symlink is not followed out to create its target. */
        int r = moat_rootfs_mount_one(rootfd, &s, 3, NULL, &err);
        report(r < 0, "mounts[3] through a dangling symlink fails (%s)", err ? err->msg : "ok");
        snprintf(p, sizeof(p), "%s-nope", hostdir);
        report(access(p, F_OK) < 0, "dangling symlink target not created on the host");
        free_err(&err);
        report(!is_fs("/etc", TMPFS_MAGIC), "host /etc is not covered");
        snprintf(p, sizeof(p), "%s/etc", rootfs);
        report(is_fs(p, TMPFS_MAGIC), "the tmpfs landed on <rootfs>/etc");
        snprintf(p, sizeof(p), "%s/sub", hostdir);
        report(access(p, F_OK) < 0, "nothing created in the host dir (sub)");
        snprintf(p, sizeof(p), "%s/file", hostdir);
        report(access(p, F_OK) < 0, "nothing created in the host dir (file)");
        snprintf(p, sizeof(p), "%s%s/sub", rootfs, hostdir);
        report(is_fs(p, TMPFS_MAGIC), "the second tmpfs landed inside the rootfs");
        snprintf(p, sizeof(p), "%s%s/file", rootfs, hostdir);
        char *hn = read_str(p), *hn2 = read_str("/etc/hostname");
        report(hn && hn2 && strcmp(hn, hn2) == 0, "the bind landed inside the rootfs");
        free(hn);
        free(hn2);
        close(rootfd);
}

/* /proc (and /sys) that are symlinks to a directory are refused. */
static void proc_symlink(void *arg)
{
        setup(arg);
        char *root2 = subroot();
        put_dir(root2, "elsewhere");
        put_link(root2, "proc", "/elsewhere");
        put_link(root2, "sys", hostdir);
        struct moat_mount ms[] = { mnt("/tmp", "tmpfs", "tmpfs", 0, NULL), mnt("/proc", "proc", "proc", 0, NULL),
                                   mnt("/sys", "sysfs", "sysfs", 0, NULL) };
        struct moat_spec s = { .root.path = root2, .mounts = ms, .n_mounts = ARRAY_SIZE(ms) };
        struct moat_error *err = NULL;
        int r = moat_rootfs_prepare(&s, NULL, &err);
        report(r < 0, "prepare refuses /proc as a symlink");
        report_has(err ? err->msg : NULL, "mounts[1]: mount 'proc' on '/proc': destination resolves to a symlink",
                   "error names the mount");
        free_err(&err);
        char p[4096];
        snprintf(p, sizeof(p), "%s/elsewhere", root2);
        report(!is_fs(p, PROC_SUPER_MAGIC), "no proc on the symlink's target");
        int rootfd = open(root2, O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_rootfs_mount_one(rootfd, &s, 2, NULL, &err);
        report(r < 0 && err && strstr(err->msg, "symlink"), "sysfs on a symlink refused (%s)", err ? err->msg : "ok");
        free_err(&err);
        report(!is_fs(hostdir, SYSFS_MAGIC), "no sysfs on the host dir");
        /* proc onto a path already on procfs. */
        put_dir(root2, "p");
        struct moat_mount ms2[] = { mnt("/p", "proc", "proc", 0, NULL), mnt("/p/sys", "proc", "proc", 0, NULL),
                                    mnt("/p/sys/kernel/core_pattern", "bind", hostdir, MS_BIND, NULL),
                                    mnt("/p/self/fd", "tmpfs", "tmpfs", 0, NULL) };
        struct moat_spec s2 = { .root.path = root2, .mounts = ms2, .n_mounts = ARRAY_SIZE(ms2) };
        r = moat_rootfs_mount_one(rootfd, &s2, 0, NULL, &err);
        report(r == 0, "proc on /p (%s)", err ? err->msg : "ok");
        free_err(&err);
        r = moat_rootfs_mount_one(rootfd, &s2, 1, NULL, &err);
        report_has(err ? err->msg : NULL, "inside a proc filesystem", "proc over a path on procfs refused");
        free_err(&err);
        r = moat_rootfs_mount_one(rootfd, &s2, 2, NULL, &err);
        report(r < 0 && err, "bind onto /proc/sys/kernel/core_pattern refused (%s)", err ? err->msg : "ok");
        free_err(&err);
        r = moat_rootfs_mount_one(rootfd, &s2, 3, NULL, &err);
        report_has(err ? err->msg : NULL, "inside a proc filesystem", "tmpfs onto procfs refused");
        free_err(&err);
        close(rootfd);
}

/* Devices whose path leaves /dev, or is a symlink. */
static void dev_symlink(void *arg)
{
        setup(arg);
        put_dir(rootfs, "dev");
        put_link(rootfs, "dev/evil", "../etc");
        put_link(rootfs, "dev/evil2", "/etc/passwd");
        struct moat_device d1 = { .type = 'c', .path = (char *)"/dev/evil/null", .major = 1, .minor = 3 };
        struct moat_device d2 = { .type = 'c', .path = (char *)"/dev/evil2", .major = 1, .minor = 3 };
        struct moat_device d3 = { .type = 'c', .path = (char *)"/etc/null", .major = 1, .minor = 3 };
        struct moat_device d4 = { .type = 'c', .path = (char *)"/dev/../etc/null2", .major = 1, .minor = 3 };
        struct moat_device d5 = { .type = 'c', .path = (char *)"/dev/ok/mynull", .major = 1, .minor = 3,
                                  .has_file_mode = true, .file_mode = 0640, .has_uid = true, .uid = 12,
                                  .has_gid = true, .gid = 34 };
        int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct moat_error *err = NULL;
        int r = moat_device_create(rootfd, &d1, false, &err);
        report_has(err ? err->msg : NULL, "outside the container's /dev", "device through a symlink out of /dev refused");
        free_err(&err);
        r = moat_device_create(rootfd, &d2, false, &err);
        report(r < 0 && err && strstr(err->msg, "symlink"), "device path that is a symlink refused (%s)",
               err ? err->msg : "ok");
        free_err(&err);
        r = moat_device_create(rootfd, &d3, false, &err);
        report(r < 0, "device outside /dev refused");
        free_err(&err);
        r = moat_device_create(rootfd, &d4, false, &err);
        report(r < 0, "device /dev/../etc refused");
        free_err(&err);
        char p[4096];
        snprintf(p, sizeof(p), "%s/etc/null", rootfs);
        report(access(p, F_OK) < 0, "nothing created in <rootfs>/etc");
        snprintf(p, sizeof(p), "%s/etc/passwd", rootfs);
        char *pw = read_str(p);
        report(pw && strncmp(pw, "root:", 5) == 0, "<rootfs>/etc/passwd untouched");
        free(pw);
        struct stat st;
        report(lstat("/etc/passwd", &st) == 0 && S_ISREG(st.st_mode), "host /etc/passwd still a file");
        r = moat_device_create(rootfd, &d5, false, &err);
        report(r == 0, "a device in a new /dev subdir (%s)", err ? err->msg : "ok");
        free_err(&err);
        snprintf(p, sizeof(p), "%s/dev/ok/mynull", rootfs);
        report(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) && (st.st_mode & 07777) == 0640 &&
                       st.st_uid == 12 && st.st_gid == 34,
               "mknod with mode, uid, gid");
        put_dir(rootfs, "dev");
        struct moat_device d6 = { .type = 'c', .path = (char *)"/dev/zero", .major = 1, .minor = 5 };
        r = moat_device_create(rootfd, &d6, true, &err);
        report(r == 0, "userns-style device bind from the host (%s)", err ? err->msg : "ok");
        free_err(&err);
        snprintf(p, sizeof(p), "%s/dev/zero", rootfs);
        report(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5), "bound device is 1:5");
        close(rootfd);
}

/* A masked path that is a symlink to a file the container sees from the host
 * must stay as it is; and a /dev/null that is not 1:3 is never bound. */
static void masked_symlink(void *arg)
{
        setup(arg);
        char *root2 = subroot();
        put_dir(root2, "etc");
        put_dir(root2, "dev");
        put_dir(root2, "proc");
        put_link(root2, "etc/masked", "/hostdir/secret");
        put_file(root2, "etc/plain", "plain");
        /* The mount(2) fallback needs /proc/self/fd, as runc does. */
        struct moat_mount ms[] = { mnt("/hostdir", "bind", hostdir, MS_BIND, NULL),
                                   mnt("/dev", "tmpfs", "tmpfs", 0, "mode=755"), mnt("/proc", "proc", "proc", 0, NULL) };
        const char *masked[] = { "/etc/masked", "/etc/plain", NULL };
        struct moat_spec s = { .root.path = root2, .mounts = ms, .n_mounts = ARRAY_SIZE(ms) };
        s.linux_.masked_paths = strv_new(masked);
        struct moat_error *err = NULL;
        int r = moat_rootfs_prepare(&s, NULL, &err);
        report(r == 0, "prepare (%s)", err ? err->msg : "ok");
        free_err(&err);
        r = moat_rootfs_finish(&s, NULL, &err);
        report(r == 0, "finish (%s)", err ? err->msg : "ok");
        free_err(&err);
        char *sec = read_str("/etc/masked");
        report(sec && strcmp(sec, "secret") == 0, "symlinked masked path left alone (reads the host file)");
        free(sec);
        struct stat st;
        report(stat("/etc/plain", &st) == 0 && S_ISCHR(st.st_mode), "plain masked file is /dev/null");
        report(stat("/hostdir/secret", &st) == 0 && S_ISREG(st.st_mode), "host file not masked");
}

static void fake_devnull(void *arg)
{
        setup(arg);
        char *root2 = subroot();
        put_dir(root2, "etc");
        put_dir(root2, "dev");
        put_file(root2, "etc/target", "target");
        put_file(root2, "etc/secret", "secret");
        /* /dev is a bind (so moat creates no devices) holding a /dev/null symlink. */
        char devsrc[4096];
        snprintf(devsrc, sizeof(devsrc), "%s/devsrc", hostdir);
        put_dir(hostdir, "devsrc");
        put_link(hostdir, "devsrc/null", "/etc/secret");
        struct moat_mount ms[] = { mnt("/dev", "bind", devsrc, MS_BIND, NULL) };
        const char *masked[] = { "/etc/target", NULL };
        struct moat_spec s = { .root.path = root2, .mounts = ms, .n_mounts = ARRAY_SIZE(ms) };
        s.linux_.masked_paths = strv_new(masked);
        struct moat_error *err = NULL;
        int r = moat_rootfs_prepare(&s, NULL, &err);
        report(r == 0, "prepare (%s)", err ? err->msg : "ok");
        free_err(&err);
        r = moat_rootfs_finish(&s, NULL, &err);
        report(r < 0, "finish refuses a /dev/null that is a symlink");
        report_has(err ? err->msg : NULL, "/dev/null", "error names /dev/null (%s)", err ? err->msg : "none");
        free_err(&err);
        char *t = read_str("/etc/target");
        report(t && strcmp(t, "target") == 0, "masked target not replaced by the attacker's file");
        free(t);
}

static void console(void *arg)
{
        setup(arg);
        char *root2 = subroot();
        struct moat_mount ms[] = { mnt("/proc", "proc", "proc", 0, NULL), mnt("/dev", "tmpfs", "tmpfs", 0, "mode=755"),
                                   mnt("/dev/pts", "devpts", "devpts", 0, "newinstance,ptmxmode=0666") };
        struct moat_spec s = { .root.path = root2, .mounts = ms, .n_mounts = ARRAY_SIZE(ms) };
        struct moat_error *err = NULL;
        int r = moat_rootfs_prepare(&s, NULL, &err);
        r = r < 0 ? r : moat_rootfs_finish(&s, NULL, &err);
        if (!report(r == 0, "prepare+finish (%s)", err ? err->msg : "ok"))
                return;
        int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        int unlock = 0;
        char name[64];
        if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0 || ptsname_r(master, name, sizeof(name)) != 0) {
                report(false, "cannot open a pty: %s", strerror(errno));
                return;
        }
        int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        struct stat sst, cst;
        fstat(slave, &sst);
        char *before = read_str("/proc/sys/kernel/core_pattern");
        symlink("/proc/sys/kernel/core_pattern", "/dev/console");
        r = moat_rootfs_bind_console(slave, &err);
        report(r < 0 && err && strstr(err->msg, "symlink"), "bind_console refuses a symlink (%s)",
               err ? err->msg : "ok");
        free_err(&err);
        char *after = read_str("/proc/sys/kernel/core_pattern");
        report(before && after && strcmp(before, after) == 0 && lstat("/proc/sys/kernel/core_pattern", &cst) == 0 && S_ISREG(cst.st_mode),
               "core_pattern untouched");
        free(before);
        free(after);
        unlink("/dev/console");
        r = moat_rootfs_bind_console(slave, &err);
        report(r == 0, "bind_console creates /dev/console (%s)", err ? err->msg : "ok");
        free_err(&err);
        report(stat("/dev/console", &cst) == 0 && S_ISCHR(cst.st_mode) && cst.st_rdev == sst.st_rdev,
               "/dev/console is the pty slave");
        close(slave);
        close(master);
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (mount namespaces)");
        const char *why = NULL;
        rootfs = make_rootfs(&why);
        if (!rootfs)
                return skip_all(why);
        char tmpl[] = "/tmp/moat-host-XXXXXX";
        hostdir = strdup(mkdtemp(tmpl));
        put_file(hostdir, "secret", "secret");
        char btmpl[] = "/tmp/moat-attack-XXXXXX";
        base = strdup(mkdtemp(btmpl));
        char **before = host_mounts();
        char *cp = read_str("/proc/sys/kernel/core_pattern");
        struct variant vs[] = { { "new-api", false, false }, { "legacy", true, false }, { "legacy+walk", true, true } };
        for (size_t i = 0; i < ARRAY_SIZE(vs); i++) {
                char n[128];
                snprintf(n, sizeof(n), "%s escape-dest", vs[i].name);
                run_child(n, false, escape_dest, &vs[i]);
                snprintf(n, sizeof(n), "%s proc-symlink", vs[i].name);
                run_child(n, true, proc_symlink, &vs[i]);
                snprintf(n, sizeof(n), "%s dev-symlink", vs[i].name);
                run_child(n, false, dev_symlink, &vs[i]);
                snprintf(n, sizeof(n), "%s masked-symlink", vs[i].name);
                run_child(n, true, masked_symlink, &vs[i]);
                snprintf(n, sizeof(n), "%s fake-devnull", vs[i].name);
                run_child(n, true, fake_devnull, &vs[i]);
                snprintf(n, sizeof(n), "%s console", vs[i].name);
                run_child(n, true, console, &vs[i]);
        }
        is_int(host_leaks(before), 0, "no mount leaked into the host");
        strv_free(before);
        char *cp2 = read_str("/proc/sys/kernel/core_pattern");
        ok(cp && cp2 && strcmp(cp, cp2) == 0, "host core_pattern unchanged");
        char p[4096];
        snprintf(p, sizeof(p), "%s/secret", hostdir);
        char *sec = read_str(p);
        ok(sec && strcmp(sec, "secret") == 0, "host secret file unchanged");
        ok(!is_fs("/etc", TMPFS_MAGIC), "host /etc is not a tmpfs");
        free(cp);
        free(cp2);
        free(sec);
        rm_tree(base);
        rm_tree(rootfs);
        rm_tree(hostdir);
        return done_testing();
}
