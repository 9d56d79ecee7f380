/* SPDX-License-Identifier: Apache-2.0 */
/* PID 1 only: the early mounts, kernel modules, the control port, the container's root and
 * its mounts, the root switch, power-off. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "vminit.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

static void sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static bool ends_with(const char *s, const char *suf)
{
        size_t a = strlen(s), b = strlen(suf);
        return a >= b && strcmp(s + a - b, suf) == 0;
}

void vm_early_mounts(void)
{
        (void)mkdir("/dev", 0755);
        (void)mkdir("/proc", 0555);
        (void)mkdir("/sys", 0555);
        if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 && errno != EBUSY)
                vm_log("mount devtmpfs: %s", strerror(errno));
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                vm_log("mount proc: %s", strerror(errno));
        if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                vm_log("mount sysfs: %s", strerror(errno));
}

static int load_module(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int flags = ends_with(path, ".xz") || ends_with(path, ".zst") || ends_with(path, ".gz")
                            ? MODULE_INIT_COMPRESSED_FILE : 0;
        long r = syscall(SYS_finit_module, fd, "", flags);
        int e = errno;
        close(fd);
        return r < 0 && e != EEXIST ? -e : 0;
}

/* One path per line.  A module that fails is a warning only (soft dependencies such as
 * crc32c-intel fail on CPUs without the instructions); what really is missing shows up
 * later as a missing device or filesystem. */
void vm_load_modules(const char *list)
{
        FILE *f = fopen(list, "re");
        char line[512];

        if (!f)
                return;
        while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\r\n")] = 0;
                if (!line[0] || line[0] == '#')
                        continue;
                int r = load_module(line);
                if (r < 0)
                        vm_log("warning: module '%s': %s", line, strerror(-r));
        }
        fclose(f);
}

static bool port_named(const char *port, const char *name)
{
        char p[300], buf[128];
        snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", port);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return strcmp(buf, name) == 0;
}

int vm_open_port(const char *name, int timeout_ms)
{
        char dev[300] = "";

        for (int t = 0; t < timeout_ms; t += 2) {
                DIR *d = opendir("/sys/class/virtio-ports");
                struct dirent *de;
                while (d && !dev[0] && (de = readdir(d)))
                        if (de->d_name[0] != '.' && strlen(de->d_name) < 64 && port_named(de->d_name, name))
                                snprintf(dev, sizeof dev, "/dev/%s", de->d_name);
                if (d)
                        closedir(d);
                if (dev[0]) {
                        int fd = open(dev, O_RDWR | O_CLOEXEC | O_NOCTTY);
                        if (fd >= 0)
                                return fd;
                        if (errno != ENOENT)
                                return -errno;
                }
                sleep_ms(2);
        }
        return -ENOENT;
}

static bool wait_dev(const char *dev, int ms)
{
        for (int t = 0; t <= ms; t += 2) {
                if (access(dev, F_OK) == 0)
                        return true;
                if (t < ms)
                        sleep_ms(2);
        }
        return false;
}

static int mkdir_p(const char *path, mode_t mode)
{
        char tmp[4096];
        if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
                return -ENAMETOOLONG;
        for (char *p = tmp + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Splits mount options into MS_* flags and the filesystem's data. */
static void parse_options(const char *opts, unsigned long *flags, char *data, size_t datalen)
{
        static const struct { const char *name; unsigned long set, clear; } map[] = {
                { "ro", MS_RDONLY, 0 }, { "rw", 0, MS_RDONLY }, { "nosuid", MS_NOSUID, 0 },
                { "suid", 0, MS_NOSUID }, { "nodev", MS_NODEV, 0 }, { "dev", 0, MS_NODEV },
                { "noexec", MS_NOEXEC, 0 }, { "exec", 0, MS_NOEXEC }, { "noatime", MS_NOATIME, 0 },
                { "relatime", MS_RELATIME, 0 }, { "strictatime", MS_STRICTATIME, 0 },
                { "nodiratime", MS_NODIRATIME, 0 }, { "sync", MS_SYNCHRONOUS, 0 },
        };
        char buf[4096];
        size_t dl = 0;

        data[0] = 0;
        snprintf(buf, sizeof buf, "%s", opts ? opts : "");
        for (char *save = NULL, *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                bool known = false;
                for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
                        if (strcmp(o, map[i].name) == 0) {
                                *flags = (*flags | map[i].set) & ~map[i].clear;
                                known = true;
                        }
                if (known)
                        continue;
                int n = snprintf(data + dl, datalen - dl, "%s%s", dl ? "," : "", o);
                if (n > 0 && dl + (size_t)n < datalen)
                        dl += (size_t)n;
        }
}

/* A target inside the new root: absolute, no "..". */
static int target_path(const char *t, char *out, size_t outlen)
{
        if (t[0] != '/' || strstr(t, "/../") || ends_with(t, "/.."))
                return -EINVAL;
        if ((size_t)snprintf(out, outlen, "/newroot%s", t) >= outlen)
                return -ENAMETOOLONG;
        return 0;
}

/* The basic device nodes of a tmpfs /dev. */
static void populate_dev(const char *dev)
{
        static const struct { const char *name; unsigned maj, min; } nodes[] = {
                { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
                { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
        };
        static const struct { const char *name, *to; } links[] = {
                { "ptmx", "pts/ptmx" }, { "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" },
                { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
        };
        char p[4200];
        mode_t old = umask(0);

        for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
                snprintf(p, sizeof p, "%s/%s", dev, nodes[i].name);
                if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0 && errno != EEXIST)
                        vm_log("mknod %s: %s", p, strerror(errno));
        }
        for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
                snprintf(p, sizeof p, "%s/%s", dev, links[i].name);
                (void)symlink(links[i].to, p);
        }
        snprintf(p, sizeof p, "%s/pts", dev);
        (void)mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/shm", dev);
        (void)mkdir(p, 01777);
        umask(old);
}

/* Shares (MOUNT kind SHARE): the host's virtiofsd serves one filesystem holding every bind
 * mount's source under a name; it is mounted here, outside the new root, each name is bound
 * onto its target, and then it is detached (vm_setup_root): the process sees only its binds. */
#define SHARES_DIR "/.moat-shares"
static bool shares_mounted;

static bool share_name_ok(const char *n)
{
        size_t l = strlen(n);
        if (l < 1 || l > 64)
                return false;
        for (const char *c = n; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '-' || *c == '_'))
                        return false;
        return true;
}

static int do_share(const struct vm_mount *m, const char *target, unsigned long flags, char *why, size_t whylen)
{
        char src[128], parent[4200];
        struct stat st;

        if (!share_name_ok(m->source)) {
                snprintf(why, whylen, "bad share name for '%s'", m->target);
                return -EINVAL;
        }
        if (!shares_mounted) {
                (void)mkdir(SHARES_DIR, 0700);
                if (mount(MOAT_VM_SHARES_TAG, SHARES_DIR, "virtiofs", MS_NOSUID | MS_NODEV, NULL) < 0) {
                        int e = errno;
                        snprintf(why, whylen, "cannot mount the shared filesystem (virtiofs '%s'): %s",
                                 MOAT_VM_SHARES_TAG, strerror(e));
                        return -e;
                }
                shares_mounted = true;
        }
        snprintf(src, sizeof src, SHARES_DIR "/%s", m->source);
        if (stat(src, &st) < 0) {
                int e = errno;
                snprintf(why, whylen, "the share for '%s' is not there: %s", m->target, strerror(e));
                return -e;
        }
        int r;
        if (S_ISDIR(st.st_mode)) {
                r = mkdir_p(target, 0755);
        } else {
                /* a file: its mount point is a file (made empty when missing) */
                snprintf(parent, sizeof parent, "%s", target);
                char *slash = strrchr(parent, '/');
                if (slash)
                        *slash = 0;
                r = mkdir_p(parent, 0755);
                if (r == 0) {
                        int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644);
                        if (fd < 0 && errno != EEXIST && errno != EISDIR)
                                r = -errno;
                        if (fd >= 0)
                                close(fd);
                }
        }
        if (r < 0) {
                snprintf(why, whylen, "cannot create the mount point '%s': %s", m->target, strerror(-r));
                return r;
        }
        if (mount(src, target, NULL, MS_BIND, NULL) < 0) {
                int e = errno;
                snprintf(why, whylen, "cannot bind the share onto '%s': %s", m->target, strerror(e));
                return -e;
        }
        if ((flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)) &&
            mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | (flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)),
                  NULL) < 0) {
                int e = errno;
                snprintf(why, whylen, "cannot remount '%s' with its options: %s", m->target, strerror(e));
                return -e;
        }
        return 0;
}

static int do_mount(const struct vm_mount *m, char *why, size_t whylen)
{
        static const char *const fstype[] = {
                [MOAT_VM_M_VIRTIOFS] = "virtiofs", [MOAT_VM_M_TMPFS] = "tmpfs", [MOAT_VM_M_PROC] = "proc",
                [MOAT_VM_M_SYSFS] = "sysfs", [MOAT_VM_M_DEVPTS] = "devpts", [MOAT_VM_M_MQUEUE] = "mqueue",
                [MOAT_VM_M_CGROUP] = "cgroup2", [MOAT_VM_M_SHARE] = "virtiofs",
        };
        char target[4200], data[4096];
        unsigned long flags = 0;
        const char *opts = m->options;

        if (target_path(m->target, target, sizeof target) < 0) {
                snprintf(why, whylen, "bad mount target '%s'", m->target);
                return -EINVAL;
        }
        if (m->kind == MOAT_VM_M_DEVPTS && !opts[0])
                opts = "newinstance,ptmxmode=0666,mode=0620";
        parse_options(opts, &flags, data, sizeof data);
        if (m->kind == MOAT_VM_M_SHARE)
                return do_share(m, target, flags, why, whylen);
        int r = mkdir_p(target, 0755);
        if (r < 0) {
                snprintf(why, whylen, "cannot create the mount point '%s': %s", m->target, strerror(-r));
                return r;
        }
        const char *src = m->kind == MOAT_VM_M_VIRTIOFS ? m->source : fstype[m->kind];
        if (mount(src, target, fstype[m->kind], flags, data[0] ? data : NULL) < 0) {
                int e = errno;
                snprintf(why, whylen, "cannot mount %s '%s' on '%s': %s", fstype[m->kind], src, m->target,
                         strerror(e));
                return -e;
        }
        if (m->kind == MOAT_VM_M_TMPFS && strcmp(m->target, "/dev") == 0)
                populate_dev(target);
        return 0;
}

int vm_setup_root(const struct vm_config *c, char *why, size_t whylen)
{
        bool ro = c->has_root && c->root_readonly;

        (void)mkdir("/newroot", 0755);
        if (!wait_dev("/dev/vda", 5000)) {
                snprintf(why, whylen, "no root disk /dev/vda");
                return -ENODEV;
        }
        if (wait_dev("/dev/vdb", 100)) {
                (void)mkdir("/lower", 0755);
                (void)mkdir("/rw", 0755);
                if (mount("/dev/vda", "/lower", "ext4", MS_RDONLY, NULL) < 0) {
                        snprintf(why, whylen, "cannot mount /dev/vda (ext4): %s", strerror(errno));
                        return -errno;
                }
                if (mount("/dev/vdb", "/rw", "ext4", 0, NULL) < 0) {
                        snprintf(why, whylen, "cannot mount /dev/vdb (ext4): %s", strerror(errno));
                        return -errno;
                }
                (void)mkdir("/rw/upper", 0755);
                (void)mkdir("/rw/work", 0755);
                if (mount("overlay", "/newroot", "overlay", 0,
                          "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work") < 0) {
                        snprintf(why, whylen, "cannot mount the overlay root: %s", strerror(errno));
                        return -errno;
                }
        } else if (mount("/dev/vda", "/newroot", "ext4", ro ? MS_RDONLY : 0, NULL) < 0) {
                snprintf(why, whylen, "cannot mount /dev/vda (ext4): %s", strerror(errno));
                return -errno;
        }

        bool have_dev = false;
        for (size_t i = 0; i < c->n_mounts; i++)
                if (strcmp(c->mounts[i].target, "/dev") == 0)
                        have_dev = true;
        if (!have_dev) {
                /* a tmpfs with the basic nodes, not devtmpfs: the guest's disks and the control
                 * port stay out of the container's reach */
                (void)mkdir("/newroot/dev", 0755);
                if (mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k") < 0) {
                        snprintf(why, whylen, "cannot mount /dev: %s", strerror(errno));
                        return -errno;
                }
                populate_dev("/newroot/dev");
        }
        for (size_t i = 0; i < c->n_mounts; i++) {
                int r = do_mount(&c->mounts[i], why, whylen);
                if (r < 0)
                        return r;
        }
        if (shares_mounted) /* bound where they go: the raw tree goes */
                (void)umount2(SHARES_DIR, MNT_DETACH);
        if (ro && mount(NULL, "/newroot", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
                snprintf(why, whylen, "cannot make the root read-only: %s", strerror(errno));
                return -errno;
        }

        /* the initramfs' /dev /proc /sys are not the container's */
        (void)umount2("/dev", MNT_DETACH);
        (void)umount2("/proc", MNT_DETACH);
        (void)umount2("/sys", MNT_DETACH);
        if (chdir("/newroot") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
                snprintf(why, whylen, "cannot switch to the new root: %s", strerror(errno));
                return -errno;
        }
        if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0) {
                snprintf(why, whylen, "cannot set the hostname '%s': %s", c->hostname, strerror(errno));
                return -errno;
        }
        return 0;
}

void vm_poweroff(void)
{
        sync();
        (void)reboot(RB_POWER_OFF);
        for (;;)
                pause();
}
