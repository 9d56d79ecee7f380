/* SPDX-License-Identifier: Apache-2.0 */
/* moat_rootfs_prepare + moat_rootfs_finish with a typical spec, checked from
 * inside the new root: with the new mount API, with mount(2), with the path
 * walk fallback, and with --no-pivot. */
#include <dirent.h>
#include <linux/magic.h>
#include <sys/sysmacros.h>

#include "core/path.h"
#include "linux/mounts.h"
#include "linux/rootfs.h"
#include "test-rootfs-util.h"

#ifndef MQUEUE_MAGIC
#define MQUEUE_MAGIC 0x19800202
#endif

struct variant {
        const char *name;
        bool legacy, walk, no_pivot;
        unsigned long propagation;
};

static char *rootfs, *hostdir;
static const char *masked_file; /* a /proc file that exists on this host */

static void build_spec(struct moat_spec *s, struct moat_mount *ms, size_t *n)
{
        size_t i = 0;
        ms[i++] = mnt("/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
        ms[i++] = mnt("/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
        ms[i++] = mnt("/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
        ms[i++] = mnt("/dev/shm", "tmpfs", "shm", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k");
        ms[i++] = mnt("/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
        ms[i++] = mnt("/sys", "sysfs", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL);
        ms[i++] = mnt("/sys/fs/cgroup", "cgroup", "cgroup", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY,
                      NULL);
        ms[i++] = mnt("/mnt/ro", "bind", hostdir, MS_BIND | MS_REC | MS_RDONLY, NULL);
        ms[i++] = mnt("/mnt/rw", "bind", hostdir, MS_BIND, NULL);
        ms[i] = mnt("/data", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755");
        ms[i++].tmpcopyup = true;
        *n = i;
        s->root.path = rootfs;
        s->root.readonly = true;
        s->mounts = ms;
        s->n_mounts = i;
        const char *masked[] = { masked_file, "/proc/acpi", "/sys/firmware", "/proc/does-not-exist", NULL };
        const char *ro[] = { "/proc/sys", "/proc/sysrq-trigger", "/proc/nope", NULL };
        s->linux_.masked_paths = strv_new(masked);
        s->linux_.readonly_paths = strv_new(ro);
}

static struct moat_cgroup_hier hiers[] = {
        { .name = (char *)"memory", .options = (char *)"memory", .host_dir = (char *)"/sys/fs/cgroup/memory" },
        { .name = (char *)"cpu,cpuacct", .options = (char *)"cpu", .host_dir = (char *)"/sys/fs/cgroup/cpu" },
        { .name = (char *)"unified", .v2 = true, .host_dir = (char *)"/sys/fs/cgroup/unified" },
};

static bool is_chr(const char *path, unsigned maj, unsigned min)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == maj && minor(st.st_rdev) == min;
}

static bool link_is(const char *path, const char *want)
{
        char buf[256];
        ssize_t n = readlink(path, buf, sizeof(buf) - 1);
        if (n < 0)
                return false;
        buf[n] = '\0';
        return strcmp(buf, want) == 0;
}

static int write_errno(const char *path, int flags)
{
        int fd = open(path, flags | O_WRONLY | O_CLOEXEC, 0644);
        if (fd >= 0) {
                close(fd);
                return 0;
        }
        return errno;
}

static void inside(void *arg)
{
        const struct variant *v = arg;
        moat_mount_force_legacy(v->legacy);
        path_force_fallback(v->walk);
        struct moat_spec s = { 0 };
        struct moat_mount ms[16];
        size_t n;
        build_spec(&s, ms, &n);
        s.linux_.rootfs_propagation = v->propagation;
        struct moat_rootfs_opts o = { .no_pivot = v->no_pivot, .cg_hier = hiers, .n_cg_hier = ARRAY_SIZE(hiers) };
        struct moat_error *err = NULL;
        int r = moat_rootfs_prepare(&s, &o, &err);
        if (!report(r == 0, "prepare (%s)", err ? err->msg : "ok"))
                _exit(1);
        r = moat_rootfs_finish(&s, &o, &err);
        if (!report(r == 0, "finish (%s)", err ? err->msg : "ok"))
                _exit(1);
        report(!v->legacy || !moat_mount_new_api(), "legacy mode really used mount(2)");
        char *mi = read_str("/proc/self/mountinfo");
        char *rootline = NULL;
        for (char *line = mi ? strtok(mi, "\n") : NULL; line; line = strtok(NULL, "\n")) {
                char *f = line; /* the 5th field is the mount point */
                for (int k = 0; k < 4 && f; k++)
                        f = strchr(f, ' ') ? strchr(f, ' ') + 1 : NULL;
                if (f && strncmp(f, "/ ", 2) == 0)
                        rootline = line;
        }
        if (rootline && v->propagation)
                dprintf(report_fd, "#%s\n", rootline);
        if (v->propagation & MS_SHARED)
                report(rootline && strstr(rootline, "shared:"), "rootfsPropagation rshared applied to /");
        else if (v->propagation & MS_PRIVATE)
                report(rootline && !strstr(rootline, "shared:") && !strstr(rootline, "master:"),
                       "rootfsPropagation rprivate applied to /");
        free(mi);

        char *marker = read_str("/.moat-marker");
        report(marker && strcmp(marker, "rootfs-marker") == 0, "/ is the rootfs (marker file)");
        free(marker);
        report(access("/bin/busybox", X_OK) == 0, "/bin/busybox is there");
        report(access("/work", F_OK) < 0 && access("/usr", F_OK) < 0, "no host directory under /");
        DIR *d = opendir("/");
        int extra = 0;
        const char *expected[] = { ".", "..", "bin", "proc", "sys", "dev", "etc", "tmp", "run", "mnt", "data",
                                   ".moat-marker" };
        for (struct dirent *e; d && (e = readdir(d));) {
                bool found = false;
                for (size_t i = 0; i < ARRAY_SIZE(expected); i++)
                        found |= strcmp(e->d_name, expected[i]) == 0;
                if (!found) {
                        dprintf(report_fd, "#unexpected /%s\n", e->d_name);
                        extra++;
                }
        }
        if (d)
                closedir(d);
        report_int(extra, 0, "nothing but the rootfs under /");
        char **mps = NULL;
        int roots = 0, strays = 0;
        moat_mountinfo_below("/", true, &mps);
        for (size_t i = 0; mps && mps[i]; i++) {
                roots += strcmp(mps[i], "/") == 0;
                if (strncmp(mps[i], "/tmp/moat-", 10) == 0 || strncmp(mps[i], "/work", 5) == 0 ||
                    strncmp(mps[i], "/mnt/sandboxing", 15) == 0 || strcmp(mps[i], "/sys/fs/cgroup/pids") == 0) {
                        dprintf(report_fd, "#stray mount %s\n", mps[i]);
                        strays++;
                }
        }
        report(mps && roots == 1 && strays == 0, "old root not in mountinfo (%d mounts on /, %d strays)", roots, strays);
        strv_free(mps);

        report(getpid() == 1 && link_is("/proc/self", "1"), "/proc is the container's pid namespace");
        report(is_fs("/proc", PROC_SUPER_MAGIC), "/proc is procfs");
        report(is_fs("/sys", SYSFS_MAGIC), "/sys is sysfs");
        report_int(mkdir("/sys/moat-x", 0755) < 0 ? errno : 0, EROFS, "/sys is read-only");
        report(is_fs("/dev", TMPFS_MAGIC), "/dev is tmpfs");
        report(is_fs("/dev/pts", DEVPTS_SUPER_MAGIC), "/dev/pts is devpts");
        report(is_fs("/dev/shm", TMPFS_MAGIC), "/dev/shm is tmpfs");
        report(is_fs("/dev/mqueue", MQUEUE_MAGIC), "/dev/mqueue is mqueue");
        report(is_chr("/dev/null", 1, 3), "/dev/null is char 1:3");
        report(is_chr("/dev/zero", 1, 5) && is_chr("/dev/full", 1, 7) && is_chr("/dev/random", 1, 8) &&
                       is_chr("/dev/urandom", 1, 9) && is_chr("/dev/tty", 5, 0),
               "default devices");
        struct stat st;
        report(stat("/dev/null", &st) == 0 && (st.st_mode & 0777) == 0666, "/dev/null mode 0666");
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        report(fd >= 0 && write(fd, "x", 1) == 1, "/dev/null is writable");
        if (fd >= 0)
                close(fd);
        report(link_is("/dev/fd", "/proc/self/fd") && link_is("/dev/stdin", "/proc/self/fd/0") &&
                       link_is("/dev/stdout", "/proc/self/fd/1") && link_is("/dev/stderr", "/proc/self/fd/2"),
               "/dev/fd and stdio symlinks");
        report(link_is("/dev/ptmx", "pts/ptmx"), "/dev/ptmx -> pts/ptmx");
        report(access("/proc/kcore", F_OK) == 0 ? link_is("/dev/core", "/proc/kcore") : access("/dev/core", F_OK) < 0,
               "/dev/core only when /proc/kcore exists");
        fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        report(fd >= 0, "a pty from /dev/ptmx");
        if (fd >= 0)
                close(fd);

        report(is_chr(masked_file, 1, 3), "masked %s is /dev/null", masked_file);
        char buf[16];
        fd = open(masked_file, O_RDONLY | O_CLOEXEC);
        report(fd >= 0 && read(fd, buf, sizeof(buf)) == 0, "masked %s reads empty", masked_file);
        if (fd >= 0)
                close(fd);
        if (access("/proc/acpi", F_OK) == 0) {
                report(is_fs("/proc/acpi", TMPFS_MAGIC), "masked /proc/acpi is a tmpfs");
                report(mkdir("/proc/acpi/x", 0755) < 0 && errno == EROFS, "masked /proc/acpi is read-only");
        }
        report(is_fs("/sys/firmware", TMPFS_MAGIC), "masked /sys/firmware is a tmpfs");
        d = opendir("/sys/firmware");
        int entries = 0;
        for (struct dirent *e; d && (e = readdir(d));)
                entries += e->d_name[0] != '.';
        if (d)
                closedir(d);
        report_int(entries, 0, "masked /sys/firmware is empty");
        report_int(write_errno("/proc/sys/kernel/hostname", 0), EROFS, "readonly /proc/sys refuses writes");
        report_int(write_errno("/proc/sys/net/core/somaxconn", 0), EROFS, "readonly /proc/sys is recursive");
        if (access("/proc/sysrq-trigger", F_OK) == 0)
                report_int(write_errno("/proc/sysrq-trigger", 0), EROFS, "readonly /proc/sysrq-trigger");

        char *hello = read_str("/mnt/ro/hello");
        report(hello && strcmp(hello, "hello") == 0, "ro bind shows the host dir");
        free(hello);
        report_int(write_errno("/mnt/ro/new", O_CREAT), EROFS, "ro bind refuses writes");
        report_int(write_errno("/mnt/ro/sub/x", O_CREAT), EROFS, "ro rbind is read-only below too");
        report_int(write_errno("/mnt/rw/written", O_CREAT), 0, "rw bind accepts writes");
        report_int(mkdir("/newdir", 0755) < 0 ? errno : 0, EROFS, "root.readonly: / refuses writes");
        report_int(write_errno("/etc/passwd", 0), EROFS, "root.readonly: files refuse writes");

        report(is_fs("/data", TMPFS_MAGIC), "/data is a tmpfs");
        char *kept = read_str("/data/keep");
        char *deep = read_str("/data/sub/deep");
        report(kept && strcmp(kept, "kept") == 0 && deep && strcmp(deep, "deep") == 0, "tmpcopyup copied the files");
        free(kept);
        free(deep);
        report(link_is("/data/link", "keep"), "tmpcopyup copied the symlink");
        report_int(write_errno("/data/new", O_CREAT), 0, "tmpcopyup tmpfs is writable");

        report(is_fs("/sys/fs/cgroup", TMPFS_MAGIC), "/sys/fs/cgroup is a tmpfs");
        report(is_fs("/sys/fs/cgroup/memory", CGROUP_SUPER_MAGIC), "/sys/fs/cgroup/memory is cgroup v1");
        report(is_fs("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC), "/sys/fs/cgroup/unified is cgroup2");
        report(link_is("/sys/fs/cgroup/cpu", "cpu,cpuacct") && link_is("/sys/fs/cgroup/cpuacct", "cpu,cpuacct"),
               "cpu, cpuacct -> cpu,cpuacct");
        report(access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0, "memory controller files visible");
        report_int(mkdir("/sys/fs/cgroup/memory/moat-x", 0755) < 0 ? errno : 0, EROFS, "ro cgroup refuses mkdir");
        report_int(mkdir("/sys/fs/cgroup/x", 0755) < 0 ? errno : 0, EROFS, "ro cgroup tmpfs refuses mkdir");
        if (err)
                moat_error_free(err);
}

/* The spec `moat spec` writes, parsed by the real parser (cgroup namespace: cgroup filesystems mounted). */
static void inside_default(void *arg)
{
        moat_mount_force_legacy(arg != NULL);
        _cleanup_free_ char *json = moat_spec_default_json(false);
        struct moat_spec *s = NULL;
        struct moat_error *err = NULL;
        if (!report(json && moat_spec_parse(json, strlen(json), "default", &s, &err) == 0, "parse the default spec"))
                _exit(1);
        free(s->root.path);
        s->root.path = strdup(rootfs);
        struct moat_rootfs_opts o = { .cgroupns = true, .cg_hier = hiers, .n_cg_hier = ARRAY_SIZE(hiers) };
        int r = moat_rootfs_prepare(s, &o, &err);
        if (!report(r == 0, "prepare (%s)", err ? err->msg : "ok"))
                _exit(1);
        r = moat_rootfs_finish(s, &o, &err);
        if (!report(r == 0, "finish (%s)", err ? err->msg : "ok"))
                _exit(1);
        report(is_fs("/proc", PROC_SUPER_MAGIC) && is_fs("/dev/pts", DEVPTS_SUPER_MAGIC), "proc and devpts");
        report(is_fs("/sys/fs/cgroup/memory", CGROUP_SUPER_MAGIC), "cgroup v1 filesystem mounted (cgroupns)");
        report(is_fs("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC), "cgroup2 filesystem mounted (cgroupns)");
        report_int(mkdir("/sys/fs/cgroup/memory/moat-x", 0755) < 0 ? errno : 0, EROFS, "cgroup ro");
        report(is_chr("/proc/keys", 1, 3), "/proc/keys masked");
        report_int(write_errno("/proc/sys/kernel/hostname", 0), EROFS, "/proc/sys read-only");
        report_int(mkdir("/x", 0755) < 0 ? errno : 0, EROFS, "root read-only");
        moat_spec_free(s);
}

/* In a new user namespace (full id map) with its own mount and pid namespaces
 * but the host's network namespace: devices are bound from the host, /sys is an rbind. */
static void userns_body(void)
{
        struct moat_spec s = { 0 };
        struct moat_mount ms[16];
        size_t n;
        build_spec(&s, ms, &n);
        struct moat_rootfs_opts o = { .userns = true, .cg_hier = hiers, .n_cg_hier = ARRAY_SIZE(hiers) };
        struct moat_error *err = NULL;
        int r = moat_rootfs_prepare(&s, &o, &err);
        if (!report(r == 0, "prepare (%s)", err ? err->msg : "ok"))
                _exit(1);
        r = moat_rootfs_finish(&s, &o, &err);
        if (!report(r == 0, "finish (%s)", err ? err->msg : "ok"))
                _exit(1);
        report(is_chr("/dev/null", 1, 3) && is_chr("/dev/tty", 5, 0), "devices bound from the host");
        struct stat a, b;
        report(stat("/dev/null", &a) == 0 && stat("/dev", &b) == 0 && a.st_dev != b.st_dev,
               "/dev/null is a bind of the host's node, not a node on /dev");
        int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        char c = 1;
        report(fd >= 0 && read(fd, &c, 1) == 1 && c == 0, "/dev/zero reads zeros");
        if (fd >= 0)
                close(fd);
        report(is_fs("/sys", SYSFS_MAGIC), "/sys is the host's sysfs (rbind)");
        report_int(mkdir("/sys/moat-x", 0755) < 0 ? errno : 0, EROFS, "/sys read-only");
        report(is_fs("/proc", PROC_SUPER_MAGIC) && getpid() == 1, "own proc");
        report(is_chr(masked_file, 1, 3), "masked %s", masked_file);
        report_int(write_errno("/proc/sys/kernel/hostname", 0), EROFS, "readonly /proc/sys");
        report_int(write_errno("/mnt/ro/new", O_CREAT), EROFS, "ro bind");
        report_int(mkdir("/newdir", 0755) < 0 ? errno : 0, EROFS, "root.readonly");
        char *kept = read_str("/data/keep");
        report(kept && strcmp(kept, "kept") == 0, "tmpcopyup");
        free(kept);
}

static void inside_userns(void *arg)
{
        moat_mount_force_legacy(arg != NULL);
        int go[2], ready[2];
        if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
                _exit(1);
        pid_t a = fork();
        if (a == 0) {
                char x = 0;
                if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC) < 0) {
                        report(false, "unshare(user): %s", strerror(errno));
                        _exit(1);
                }
                if (write(ready[1], "r", 1) != 1 || read(go[0], &x, 1) != 1 || x != 'g')
                        _exit(1);
                if (setresuid(0, 0, 0) < 0 || setresgid(0, 0, 0) < 0)
                        _exit(1);
                pid_t b = fork();
                if (b == 0) {
                        userns_body();
                        _exit(0);
                }
                int st;
                waitpid(b, &st, 0);
                _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
        }
        char x = 0;
        if (read(ready[0], &x, 1) != 1)
                _exit(1);
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/uid_map", a);
        bool ok1 = write_string_at(AT_FDCWD, p, "0 0 4294967295") == 0;
        snprintf(p, sizeof(p), "/proc/%d/gid_map", a);
        ok1 = ok1 && write_string_at(AT_FDCWD, p, "0 0 4294967295") == 0;
        report(ok1, "id maps written");
        if (write(go[1], ok1 ? "g" : "x", 1) != 1)
                _exit(1);
        int st;
        waitpid(a, &st, 0);
        report(WIFEXITED(st) && WEXITSTATUS(st) == 0, "user namespace child exited cleanly");
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
        put_file(hostdir, "hello", "hello");
        put_dir(hostdir, "sub");
        masked_file = access("/proc/kcore", F_OK) == 0 ? "/proc/kcore" : "/proc/keys";

        char **before = host_mounts();
        struct variant vs[] = {
                { "new-api", false, false, false },
                { "legacy", true, false, false },
                { "walk", false, true, false },
                { "legacy+walk", true, true, false },
                { "no-pivot", false, false, true },
                { "rshared", false, false, false, MS_SHARED | MS_REC },
                { "rprivate legacy", true, false, false, MS_PRIVATE | MS_REC },
        };
        for (size_t i = 0; i < ARRAY_SIZE(vs); i++)
                run_child(vs[i].name, true, inside, &vs[i]);
        run_child("userns", false, inside_userns, NULL);
        run_child("userns legacy", false, inside_userns, "legacy");
        run_child("oci-default", true, inside_default, NULL);
        run_child("oci-default legacy", true, inside_default, "legacy");
        is_int(host_leaks(before), 0, "no mount leaked into the host");
        strv_free(before);
        ok(access("/tmp/moat-host-written-check", F_OK) < 0, "nothing written on the host by accident");
        char p[4096];
        snprintf(p, sizeof(p), "%s/written", hostdir);
        ok(access(p, F_OK) == 0, "the rw bind wrote through to the host dir");
        rm_tree(rootfs);
        rm_tree(hostdir);
        return done_testing();
}
