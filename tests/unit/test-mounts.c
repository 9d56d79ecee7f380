/* SPDX-License-Identifier: Apache-2.0 */
/* linux/mounts.h primitives with the new mount API and with mount(2), and the
 * error messages of spec mounts; nothing may leak into the host. */
#include <linux/magic.h>
#include <sys/statvfs.h>

#include "core/path.h"
#include "linux/mounts.h"
#include "linux/rootfs.h"
#include "test-rootfs-util.h"

struct variant {
        const char *name;
        bool legacy;
};

static char *base;

static unsigned long vflags(const char *p)
{
        struct statvfs sv;
        return statvfs(p, &sv) == 0 ? sv.f_flag : ~0UL;
}

static int wr_errno(const char *dir, const char *name)
{
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return errno;
        close(fd);
        unlink(p);
        return 0;
}

static bool mountinfo_has(const char *mp, const char *word)
{
        char *mi = read_str("/proc/self/mountinfo");
        bool found = false;
        char needle[4200];
        snprintf(needle, sizeof(needle), " %s ", mp);
        for (char *line = mi ? strtok(mi, "\n") : NULL; line; line = strtok(NULL, "\n"))
                if (strstr(line, needle) && strstr(line, word))
                        found = true;
        free(mi);
        return found;
}

static void primitives(void *arg)
{
        const struct variant *v = arg;
        moat_mount_force_legacy(v->legacy);
        char dir[1024], src[1024], sub[2048];
        snprintf(dir, sizeof(dir), "%s/%s-t", base, v->name);
        snprintf(src, sizeof(src), "%s/%s-src", base, v->name);
        snprintf(sub, sizeof(sub), "%s/sub", src);
        mkdir_p(dir, 0755);
        mkdir_p(sub, 0755);
        int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

        int tfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct moat_mnt_target t = { .fd = tfd, .rootfd = rootfd, .path = dir };
        int m = moat_mnt_fs("tmpfs", "tmpfs", MS_RDONLY | MS_NOSUID, "mode=700,size=1m", &t);
        report(m >= 0, "moat_mnt_fs tmpfs (%s)", m < 0 ? strerror(-m) : "ok");
        report(is_fs(dir, TMPFS_MAGIC), "a tmpfs is there");
        struct stat st;
        report(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0700, "data mode=700 applied");
        report((vflags(dir) & (ST_RDONLY | ST_NOSUID)) == (ST_RDONLY | ST_NOSUID), "ro,nosuid applied");
        struct statfs sf;
        report(m >= 0 && fstatfs(m, &sf) == 0 && sf.f_type == TMPFS_MAGIC, "returned fd is the new mount's root");
        report_int(wr_errno(dir, "x"), EROFS, "ro tmpfs refuses writes");
        if (m >= 0)
                close(m);
        umount2(dir, MNT_DETACH);
        /* (mount(2) makes the superblock ro as well: start rw to toggle the mount flag.) */
        m = moat_mnt_fs("tmpfs", "tmpfs", MS_NOSUID, NULL, &t);
        int r = m >= 0 ? moat_mnt_setattr(m, false, MS_RDONLY, 0) : -EBADF;
        report(r == 0 && wr_errno(dir, "x") == EROFS, "setattr sets ro (%s)", strerror(-r));
        r = m >= 0 ? moat_mnt_setattr(m, false, 0, MS_RDONLY) : -EBADF;
        report(r == 0 && wr_errno(dir, "x") == 0, "setattr clears ro (%s)", strerror(-r));
        report(vflags(dir) & ST_NOSUID, "nosuid kept when clearing ro");
        if (m >= 0)
                close(m);
        umount2(dir, MNT_DETACH);

        /* A source with a submount, rbind, then ro on top only, then recursive. */
        int sfd = open(sub, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct moat_mnt_target ts = { .fd = sfd, .rootfd = rootfd, .path = sub };
        int sm = moat_mnt_fs("tmpfs", "tmpfs", 0, NULL, &ts);
        report(sm >= 0, "tmpfs under the source");
        int srcfd = open(src, O_PATH | O_DIRECTORY | O_CLOEXEC);
        m = moat_mnt_bind(srcfd, true, &t);
        report(m >= 0, "moat_mnt_bind recursive (%s)", m < 0 ? strerror(-m) : "ok");
        char dsub[4200];
        snprintf(dsub, sizeof(dsub), "%s/sub", dir);
        report(is_fs(dsub, TMPFS_MAGIC), "rbind carried the submount");
        r = moat_mnt_setattr(m, false, MS_RDONLY | MS_NODEV, 0);
        report(r == 0, "setattr ro on top");
        report_int(wr_errno(dir, "x"), EROFS, "top is ro");
        report_int(wr_errno(dsub, "x"), 0, "submount still rw");
        r = moat_mnt_setattr(m, true, MS_RDONLY, 0);
        report(r == 0, "setattr ro recursive");
        report_int(wr_errno(dsub, "x"), EROFS, "submount now ro");
        report(vflags(dir) & ST_NODEV, "nodev kept on recursive remount");
        report_int(wr_errno(src, "x"), 0, "source itself untouched (rw)");
        char **below = NULL;
        r = moat_mountinfo_below(dir, false, &below);
        report(r == 0 && below && below[0] && strcmp(below[0], dsub) == 0 && !below[1], "mountinfo_below lists '%s'",
               dsub);
        strv_free(below);
        r = moat_mnt_propagation(m, MS_SHARED);
        report(r == 0 && mountinfo_has(dir, "shared:"), "propagation shared");
        r = moat_mnt_propagation(m, MS_PRIVATE | MS_REC);
        report(r == 0 && !mountinfo_has(dir, "shared:") && !mountinfo_has(dsub, "shared:"), "propagation rprivate");
        r = moat_mnt_setattr_raw(m, true, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_RDONLY);
        report(r == 0 && (vflags(dsub) & ST_NOEXEC) && !(vflags(dsub) & ST_RDONLY), "setattr_raw recursive");
        if (m >= 0)
                close(m);

        /* A file bind. */
        char ffile[4200], tfile[4200];
        snprintf(ffile, sizeof(ffile), "%s/file", src);
        snprintf(tfile, sizeof(tfile), "%s/%s-file", base, v->name);
        put_file(src, "file", "content");
        put_file(base, strrchr(tfile, '/') + 1, "");
        int ffd = open(ffile, O_RDONLY | O_CLOEXEC);
        int tffd = open(tfile, O_PATH | O_CLOEXEC);
        struct moat_mnt_target tf = { .fd = tffd, .rootfd = rootfd, .path = tfile };
        m = moat_mnt_bind(ffd, false, &tf);
        char *c = read_str(tfile);
        report(m >= 0 && c && strcmp(c, "content") == 0, "file bind");
        free(c);
        close(rootfd);
}

static void errors(void *arg)
{
        const struct variant *v = arg;
        moat_mount_force_legacy(v->legacy);
        char root[1024];
        snprintf(root, sizeof(root), "%s/%s-root", base, v->name);
        mkdir_p(root, 0755);
        struct moat_mount ms[] = {
                mnt("/tmp", "tmpfs", "tmpfs", 0, NULL),
                mnt("/bad", "nosuchfs", "x", 0, NULL),
                mnt("/run", "tmpfs", "tmpfs", 0, "mode=notanumber"),
                mnt("/idm", "bind", "/etc", MS_BIND, NULL),
                mnt("/nosrc", "bind", "/nonexistent/moat", MS_BIND, NULL),
                mnt("/etc/hostname", "bind", "/etc", MS_BIND, NULL),
                mnt("relative", "tmpfs", "tmpfs", 0, NULL),
        };
        ms[3].idmap = true;
        put_dir(root, "etc");
        put_file(root, "etc/hostname", "x");
        struct moat_spec s = { .root.path = root, .mounts = ms, .n_mounts = ARRAY_SIZE(ms) };
        struct moat_error *err = NULL;
        int r = moat_rootfs_prepare(&s, NULL, &err);
        report(r < 0, "prepare fails on a bad type");
        report_has(err ? err->msg : NULL, "mounts[1]: cannot mount 'nosuchfs' on '/bad'", "error names mounts[1]");
        moat_error_free(err);
        err = NULL;
        int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_rootfs_mount_one(rootfd, &s, 2, NULL, &err);
        report_has(err ? err->msg : NULL, "mounts[2]: cannot mount 'tmpfs' on '/run': Invalid argument",
                   "bad tmpfs option");
        moat_error_free(err);
        err = NULL;
        r = moat_rootfs_mount_one(rootfd, &s, 3, NULL, &err);
        report_has(err ? err->msg : NULL, "mounts[3]: mount 'bind' on '/idm': an idmapped mount needs uidMappings",
                   "idmap without mappings refused");
        moat_error_free(err);
        err = NULL;
        /* With mappings: on-disk 0 shows as 1000 through the mount (new API only). */
        struct moat_idmap um = { 0, 1000, 65536 }, gm = { 0, 2000, 65536 };
        ms[3].uid_mappings = &um;
        ms[3].gid_mappings = &gm;
        ms[3].n_uid_mappings = ms[3].n_gid_mappings = 1;
        free(ms[3].source);
        ms[3].source = strdup(base);
        r = moat_rootfs_mount_one(rootfd, &s, 3, NULL, &err);
        char idm[1200];
        snprintf(idm, sizeof(idm), "%s/idm", root);
        struct stat st;
        if (v->legacy) {
                report_has(err ? err->msg : NULL, "idmapped mounts need the new mount API", "idmap under mount(2) refused");
        } else {
                report(r == 0, "idmap bind (%s)", err ? err->msg : "ok");
                report(stat(idm, &st) == 0 && st.st_uid == 1000 && st.st_gid == 2000,
                       "idmapped: root-owned dir shows as 1000:2000 (got %u:%u)", st.st_uid, st.st_gid);
                struct stat hst;
                report(stat(base, &hst) == 0 && hst.st_uid == 0, "source itself still owned by 0");
        }
        moat_error_free(err);
        err = NULL;
        r = moat_rootfs_mount_one(rootfd, &s, 4, NULL, &err);
        report_has(err ? err->msg : NULL, "mounts[4]: cannot open bind source '/nonexistent/moat'", "missing source");
        moat_error_free(err);
        err = NULL;
        r = moat_rootfs_mount_one(rootfd, &s, 5, NULL, &err);
        report_has(err ? err->msg : NULL, "source is a directory, destination is not", "dir onto a file refused");
        moat_error_free(err);
        err = NULL;
        r = moat_rootfs_mount_one(rootfd, &s, 6, NULL, &err);
        report_has(err ? err->msg : NULL, "mounts[6]: destination 'relative' is not an absolute path", "relative dest");
        moat_error_free(err);
        close(rootfd);
}

int main(void)
{
        if (geteuid() != 0)
                return skip_all("needs root (mount namespaces)");
        char tmpl[] = "/tmp/moat-mounts-XXXXXX";
        if (!mkdtemp(tmpl))
                return skip_all("mkdtemp failed");
        base = tmpl;
        char **before = host_mounts();
        struct variant vs[] = { { "new-api", false }, { "legacy", true } };
        for (size_t i = 0; i < ARRAY_SIZE(vs); i++) {
                char n[64];
                snprintf(n, sizeof(n), "%s primitives", vs[i].name);
                run_child(n, false, primitives, &vs[i]);
                snprintf(n, sizeof(n), "%s errors", vs[i].name);
                run_child(n, false, errors, &vs[i]);
        }
        is_int(host_leaks(before), 0, "no mount leaked into the host");
        strv_free(before);
        rm_tree(base);
        return done_testing();
}
